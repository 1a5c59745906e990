/* checkin.c - the check-in at the counter (一站式办理): identity, documents,
 * agreements.
 *
 * The owner who came is identified by the ID number they show: intake hashes
 * it with the owner key and compares the hash with the owner's (in constant
 * time), so the number is never unsealed, stored, echoed or logged. The
 * estate's checklist must be complete: [intake] checkin_documents and
 * checkin_agreements, or checkin_documents_<ESTATE> / checkin_agreements_<ESTATE>
 * for one estate (comma-separated; 、 and ， work too). A unit without an
 * appointment (NOTIFIED, or NO_SHOW) may walk in when the slot under way has
 * room; the walk-in takes a place in it. */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/text.h"

#include <string.h>

static const char *const s_default_documents = "身份证, 购房合同";
static const char *const s_default_agreements = "前期物业服务协议, 业主临时公约, 消防安全责任书, 装修协议, 委托银行代收款协议书";

/* The estate's list for key (arena): per-estate setting, else the general one. */
static const char *
s_setting (pm_ctx_t *ctx, const char *key, const char *estate_id, const char *def)
{
    intake_t *in = ctx->app;
    const char *v = pm_config_get (in->cfg, "intake", pm_arena_printf (ctx->arena, "%s_%s", key, estate_id), NULL);
    if (!v)
        v = pm_config_get (in->cfg, "intake", key, NULL);
    return v ? v : def;
}

/* Whether the trimmed item list holds name. */
static bool
s_has (char **items, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        const char *s;
        size_t l;
        pm_trim_span (items[i], &s, &l);
        if (l == len && memcmp (s, name, len) == 0)
            return true;
    }
    return false;
}

/* Appends to *missing each item of the list that the request does not hold. */
static char *
s_missing (pm_ctx_t *ctx, const char *list, char **items, size_t n, char *missing)
{
    const char *p = list;
    while (*p) {
        size_t cut = strcspn (p, ",");
        const char *alt1 = strstr (p, "、"), *alt2 = strstr (p, "，");
        if (alt1 && (size_t) (alt1 - p) < cut)
            cut = (size_t) (alt1 - p);
        if (alt2 && (size_t) (alt2 - p) < cut)
            cut = (size_t) (alt2 - p);
        char *one = pm_arena_alloc (ctx->arena, cut + 1);
        memcpy (one, p, cut);
        const char *s;
        size_t l;
        pm_trim_span (one, &s, &l);
        if (l && !s_has (items, n, s, l))
            missing = pm_arena_printf (ctx->arena, "%s%s%.*s", missing, *missing ? ", " : "", (int) l, s);
        p += cut;
        if (*p == ',')
            p++;
        else if (*p)
            p += 3; /* 、 or ， */
    }
    return missing;
}

/* The slot under way for the estate now (its start), or 0 when none is. */
static int64_t
s_current_slot (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate_id, bool *any)
{
    pm_key_t k, from, to;
    pm_scan_t s;
    *any = pm_scan_prefix (&s, txn, INTAKE_SLOTS, pm_key (&k, "s", estate_id));
    pm_scan_end (&s);
    int64_t start = 0;
    pm_key (&from, "st", estate_id, ctx->now_ms - 86400000LL);
    pm_key (&to, "st", estate_id, ctx->now_ms + 1);
    for (pm_scan_range (&s, txn, INTAKE_SLOTS, &from, &to); s.ok; pm_scan_next (&s)) {
        Pm__Intake__SlotRecord *sl;
        if (pm_scan_msg (&s, &pm__intake__slot_record__descriptor, &sl) == PM_OK && sl->start_ms <= ctx->now_ms
            && ctx->now_ms < sl->end_ms)
            start = sl->start_ms;
    }
    return start;
}

int
intake_on_checkin (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeCheckinRequest *q = req->intake_checkin;
    intake_t *in = ctx->app;
    Pm__Intake__UnitRecord *unit;
    if (!*q->unit_id || intake_unit_load (ctx, txn, q->unit_id, &unit) != PM_OK)
        return intake_reply_no_unit (out, q->unit_id);
    intake_case_t c;
    if (intake_case_load (ctx, txn, q->unit_id, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: its case does not decode", q->unit_id);
    Pm__Intake__CaseRecord *r = c.rec;
    const Pm__V1__Unit *u = unit->unit;
    if (r->state >= PM__INTAKE__UNIT_STATE__CHECKED_IN)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "unit %s checked in already (%s, at %s by owner %u %s)%s",
                         r->unit_id, intake_state_name (r->state),
                         intake_local_format (ctx->arena, in, r->checked_in ? r->checked_in->at_ms : r->since_ms),
                         r->checked_in ? r->checked_in->owner_index : 0, r->checked_in ? r->checked_in->owner_name : "",
                         r->state == PM__INTAKE__UNIT_STATE__CHECKED_IN ? "; next: intake.keys.handover" : "");
    if (r->state == PM__INTAKE__UNIT_STATE__REGISTERED)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s cannot check in: it is REGISTERED (no move-in notice delivered, no appointment); "
                         "send its notice first (intake.notice.send) or book it (intake.appointment.book)",
                         r->unit_id);
    if (q->owner_index >= u->n_owners)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "owner_index: %u; unit %s has %zu owner%s (0 to %zu)", q->owner_index, r->unit_id,
                         u->n_owners, u->n_owners == 1 ? "" : "s", u->n_owners ? u->n_owners - 1 : 0);
    const Pm__V1__Owner *ow = u->owners[q->owner_index];
    /* identity: the hash of what was shown against the owner's, never the number itself */
    char *shown = intake_id_normalise (ctx->arena, q->id_number);
    if (!*shown)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "id_number: empty; the owner's ID number (as on the document shown) is required");
    char key[2 * INTAKE_OWNER_KEY_BYTES + 1];
    intake_owner_key (in, shown, key);
    sodium_memzero (shown, strlen (shown));
    if (strlen (ow->owner_key) != strlen (key) || sodium_memcmp (key, ow->owner_key, strlen (key)) != 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "id_number: does not match the ID number on record for owner %u (%s) of %s; check the "
                         "document and the owner_index",
                         q->owner_index, ow->name, r->unit_id);
    /* the estate's checklist */
    char *missing = s_missing (ctx, s_setting (ctx, "checkin_documents", r->estate_id, s_default_documents),
                               q->documents, q->n_documents, "");
    char *docs_missing = missing;
    missing = s_missing (ctx, s_setting (ctx, "checkin_agreements", r->estate_id, s_default_agreements),
                         q->agreements, q->n_agreements, "");
    if (*docs_missing || *missing)
        return pm_reply (out, PM__V1__STATUS__INVALID, "checklist of estate %s incomplete:%s%s%s%s", r->estate_id,
                         *docs_missing ? " documents not seen: " : "", docs_missing,
                         *missing ? (*docs_missing ? "; agreements not signed: " : " agreements not signed: ") : "",
                         missing);
    /* a walk-in takes a place in the slot under way */
    bool walk_in = r->state != PM__INTAKE__UNIT_STATE__SCHEDULED;
    if (walk_in) {
        bool any;
        int64_t now_slot = s_current_slot (ctx, txn, r->estate_id, &any);
        if (any && !now_slot)
            return pm_reply (out, PM__V1__STATUS__CONFLICT,
                             "unit %s has no appointment (%s) and no slot of estate %s is under way at %s: a walk-in "
                             "is taken during opening hours when the slot has room; book it a slot "
                             "(intake.appointment.%s)",
                             r->unit_id, intake_state_name (r->state), r->estate_id,
                             intake_local_format (ctx->arena, in, ctx->now_ms),
                             r->state == PM__INTAKE__UNIT_STATE__NO_SHOW ? "move" : "book");
        if (now_slot) {
            intake_case_t probe = c;
            Pm__Intake__CaseRecord copy = *r;
            probe.rec = &copy;
            int st = intake_slot_take (ctx, txn, out, &probe, r->estate_id, now_slot, true);
            if (st != PM__V1__STATUS__OK)
                return st;
            intake_slot_release (ctx, txn, &c); /* a no-show's old slot */
            r->appointment = copy.appointment;
            r->walk_in = true;
        }
    }
    pm_timer_cancel (txn, "intake.noshow", r->unit_id);
    r->waitlist_pos = 0;
    Pm__V1__CheckedIn *ci = pm_arena_alloc (ctx->arena, sizeof *ci);
    pm__v1__checked_in__init (ci);
    ci->unit_id = r->unit_id;
    ci->estate_id = r->estate_id;
    ci->owner_index = q->owner_index;
    ci->owner_name = ow->name;
    ci->documents = q->documents;
    ci->n_documents = q->n_documents;
    ci->agreements = q->agreements;
    ci->n_agreements = q->n_agreements;
    ci->walk_in = walk_in;
    ci->at_ms = ctx->now_ms;
    r->checked_in = ci;
    if (r->appointment)
        r->appointment->state = "CHECKED_IN";
    intake_case_state (ctx, &c, PM__INTAKE__UNIT_STATE__CHECKED_IN);
    if (intake_case_save (ctx, txn, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: the check-in could not be written");
    /* check-ins per hour, for the progress board */
    pm_key_t k;
    int64_t hour = ctx->now_ms - ((ctx->now_ms + in->utc_offset_ms) % 3600000 + 3600000) % 3600000;
    MDB_val v;
    uint64_t n = 0;
    if (pm_txn_get_key (txn, INTAKE_HOURLY, pm_key (&k, "st", r->estate_id, hour), &v) == PM_OK && v.mv_size == 8)
        n = pm_be_u64 (v.mv_data);
    unsigned char b[8];
    pm_u64_be (n + 1, b);
    pm_txn_put_key (txn, INTAKE_HOURLY, &k, b, sizeof b);

    Pm__V1__CheckedIn *evci = pm_arena_alloc (ctx->arena, sizeof *evci);
    *evci = *ci;
    evci->unit = unit->unit;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_CHECKED_IN;
    ev.checked_in = evci;
    intake_emit (out, txn, "intake.unit.checked_in", r->estate_id, r->unit_id, &ev);
    Pm__V1__IntakeCheckinReply *rep = pm_arena_alloc (ctx->arena, sizeof *rep);
    pm__v1__intake_checkin_reply__init (rep);
    rep->checked_in = ci;
    pm_reply_body (out, &rep->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s checked in%s (owner %u %s); next: inspection, the move-in invoice, "
                                             "then intake.keys.handover",
                     r->unit_id, walk_in ? " as a walk-in" : "", q->owner_index, ow->name);
}
