/* rounds.c - visits (rounds) and their outcome.
 *
 * A round is OPEN -> PASSED or FAILED. Round 1 copies the estate's checklist
 * (every line PENDING) and cannot complete while a line is unrecorded: each
 * is OK, NOT_APPLICABLE or carries defects. A later round is a re-inspection:
 * it must verify or reopen each defect that was RECTIFIED when it started
 * (unless `full`, it has no checklist of its own; new defects may still be
 * recorded on any line of the estate's checklist). A round PASSES when no
 * defect of the unit is left unverified, else it FAILS with the open defects.
 *
 * A failed unit waits for its orders; when every open defect is RECTIFIED and
 * no round is open, inspection.reinspection.due is emitted once and the unit
 * waits in ops.queues `reinspections_due` until a round starts. The owner may
 * instead accept the unit with open defects (inspection.accept_with_defects):
 * intake's key gate may then open, and the rectification loop goes on. */
#include "inspection.h"
#include "pm/text.h"

#include <stdlib.h>
#include <string.h>

#define S_LIST_MAX 10 /* items named in a refusal */

Pm__Inspection__RoundRecord *
inspection_round_load (pm_txn_t *txn, const char *unit_id, uint32_t round_no)
{
    Pm__Inspection__RoundRecord *r;
    pm_key_t k;
    if (pm_txn_get_msg (txn, INSP_ROUNDS, pm_key (&k, "su", unit_id, round_no),
                        &pm__inspection__round_record__descriptor, &r)
        != PM_OK)
        return NULL;
    return r;
}

static void
s_round_save (pm_txn_t *txn, const char *unit_id, const Pm__Inspection__RoundRecord *r)
{
    pm_key_t k;
    pm_txn_put_msg (txn, INSP_ROUNDS, pm_key (&k, "su", unit_id, r->round_no), &r->base);
}

static const char *
s_outcome (Pm__V1__RoundState s)
{
    return s == PM__V1__ROUND_STATE__ROUND_PASSED ? "PASSED" : s == PM__V1__ROUND_STATE__ROUND_FAILED ? "FAILED" : "OPEN";
}

bool
inspection_line_has_defect (const Pm__Inspection__RoundRecord *r, uint32_t position)
{
    for (size_t i = 0; i < r->n_defect_lines; i++)
        if (r->defect_lines[i] == position)
            return true;
    return false;
}

int
inspection_no_round (pm_ctx_t *ctx, pm_out_t *out, const Pm__Inspection__UnitRecord *u, const char *what)
{
    if (u->passed_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: %s needs an open round, but the inspection PASSED at round %u (%s): every defect "
                         "is verified and no round can start",
                         u->unit_id, what, u->last_completed, inspection_time (ctx, u->passed_ms));
    if (!u->opened_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: %s needs an open round, but the inspection is not open: it opens at check-in, or "
                         "with inspection.open {\"unit_id\":\"%s\"}; then inspection.round.start",
                         u->unit_id, what, u->unit_id);
    if (u->rounds == 0)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: %s needs an open round, and no round has started: start one with "
                         "inspection.round.start {\"unit_id\":\"%s\",\"inspector\":\"...\"}",
                         u->unit_id, what, u->unit_id);
    return pm_reply (out, PM__V1__STATUS__CONFLICT,
                     "unit %s: %s needs an open round, but round %u is completed (%s); start round %u first with "
                     "inspection.round.start",
                     u->unit_id, what, u->last_completed, s_outcome (u->last_outcome), u->rounds + 1);
}

/* The unit's defects in a given state (any: DEFECT_STATE_UNSET = not verified). */
static char **
s_defect_ids (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, Pm__V1__DefectState state, size_t *n)
{
    size_t cap = 8;
    char **ids = pm_arena_alloc (ctx->arena, cap * sizeof *ids);
    *n = 0;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INSP_DEFECTS, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        Pm__Inspection__DefectRecord *d;
        if (pm_scan_msg (&s, &pm__inspection__defect_record__descriptor, &d) != PM_OK || !d->defect)
            continue;
        bool want = state == PM__V1__DEFECT_STATE__DEFECT_STATE_UNSET ? d->defect->state != PM__V1__DEFECT_STATE__VERIFIED
                                                                      : d->defect->state == state;
        if (!want)
            continue;
        if (*n == cap) {
            char **a = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *a);
            memcpy (a, ids, cap * sizeof *a);
            ids = a;
            cap *= 2;
        }
        ids[(*n)++] = d->defect->defect_id;
    }
    pm_scan_end (&s);
    return ids;
}

static char *
s_join (pm_ctx_t *ctx, char **ids, size_t n)
{
    char *s = pm_arena_strdup (ctx->arena, "");
    for (size_t i = 0; i < n && i < S_LIST_MAX; i++)
        s = pm_arena_printf (ctx->arena, "%s%s%s", s, i ? ", " : "", ids[i]);
    if (n > S_LIST_MAX)
        s = pm_arena_printf (ctx->arena, "%s and %zu more", s, n - S_LIST_MAX);
    return s;
}

Pm__V1__InspectionRound *
inspection_round_event (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Inspection__UnitRecord *u,
                        const Pm__Inspection__RoundRecord *r)
{
    Pm__V1__InspectionRound *e = pm_arena_alloc (ctx->arena, sizeof *e);
    pm__v1__inspection_round__init (e);
    e->unit_id = u->unit_id;
    e->estate_id = u->estate_id;
    e->building = u->building;
    e->round_no = r->round_no;
    e->inspector = r->inspector;
    e->passed = r->state == PM__V1__ROUND_STATE__ROUND_PASSED;
    e->reinspection = r->reinspection;
    e->at_ms = r->completed_ms ? r->completed_ms : r->started_ms;
    if (r->state == PM__V1__ROUND_STATE__ROUND_FAILED && r->n_open_defects) {
        e->defects = pm_arena_alloc (ctx->arena, r->n_open_defects * sizeof *e->defects);
        for (size_t i = 0; i < r->n_open_defects; i++) {
            char *unit_id;
            uint32_t no;
            Pm__Inspection__DefectRecord *d = NULL;
            if (inspection_defect_id_parse (ctx, r->open_defects[i], &unit_id, &no))
                d = inspection_defect_load (txn, unit_id, no);
            if (d)
                e->defects[e->n_defects++] = d->defect;
        }
    }
    return e;
}

static void
s_emit_round (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *type, Pm__V1__InspectionRound *e)
{
    Pm__V1__Event *ev = inspection_event (ctx, type, e->estate_id, e->unit_id);
    ev->payload_case = PM__V1__EVENT__PAYLOAD_ROUND;
    ev->round = e;
    pm_emit (out, txn, ev);
}

/* The unit named by unit_id, or the reply's status (INVALID / NOT_FOUND). */
static int
s_unit (pm_txn_t *txn, pm_out_t *out, const char *unit_id, Pm__Inspection__UnitRecord **u)
{
    if (!*unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected a unit such as E01/3/2-301");
    *u = inspection_unit_load (txn, unit_id);
    if (!*u)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: inspection knows no unit '%s' (not registered with intake, or intake's event not "
                         "applied yet); expected a unit such as E01/3/2-301",
                         unit_id);
    return PM__V1__STATUS__OK;
}

/* --- inspection.round.start ------------------------------------------------------ */

int
inspection_on_round_start (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionRoundStartRequest *q = req->inspection_round_start;
    Pm__Inspection__UnitRecord *u;
    int st = s_unit (txn, out, q->unit_id, &u);
    if (st != PM__V1__STATUS__OK)
        return st;
    const char *t;
    size_t tlen;
    pm_trim_span (q->inspector, &t, &tlen);
    if (tlen == 0 || tlen > 100 || !pm_utf8_valid_str (q->inspector))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "inspector: %s; expected who inspects, e.g. {\"unit_id\":\"%s\",\"inspector\":\"李工\"}",
                         tlen ? "not a name of 1 to 100 bytes of UTF-8" : "empty", u->unit_id);
    if (u->passed_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: inspection PASSED at round %u (%s): every defect is verified; nothing left to inspect",
                         u->unit_id, u->last_completed, inspection_time (ctx, u->passed_ms));
    if (!u->opened_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: inspection not open: it opens when the owner checks in (intake), or with "
                         "inspection.open {\"unit_id\":\"%s\"} for a unit inspected before check-in",
                         u->unit_id, u->unit_id);
    if (u->round_open) {
        Pm__Inspection__RoundRecord *r = inspection_round_load (txn, u->unit_id, u->rounds);
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: round %u is open since %s (inspector %s); complete it first (inspection.round.complete)",
                         u->unit_id, u->rounds, r ? inspection_time (ctx, r->started_ms) : "?", r ? r->inspector : "?");
    }
    uint32_t no = u->rounds + 1;
    bool reinspection = no > 1, full = !reinspection || q->full;
    size_t nverify = 0;
    char **to_verify = reinspection ? s_defect_ids (ctx, txn, u->unit_id, PM__V1__DEFECT_STATE__RECTIFIED, &nverify) : NULL;
    if (reinspection && !full && nverify == 0)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: no defect is RECTIFIED yet (%u open, waiting for their work orders); a "
                         "re-inspection checks rectified defects: wait for inspection.reinspection.due, or ask for a "
                         "full round (\"full\": true)",
                         u->unit_id, u->defects_open);

    Pm__Inspection__RoundRecord r = PM__INSPECTION__ROUND_RECORD__INIT;
    r.round_no = no;
    r.inspector = q->inspector;
    r.state = PM__V1__ROUND_STATE__ROUND_OPEN;
    r.reinspection = reinspection;
    r.full = full;
    r.started_ms = ctx->now_ms;
    r.to_verify = to_verify;
    r.n_to_verify = nverify;
    inspection_checklist_t c = { NULL, 0, NULL };
    if (full) {
        inspection_checklist_of (ctx, txn, u->estate_id, &c);
        for (size_t i = 0; i < c.n; i++) {
            Pm__V1__RoundItemView it = PM__V1__ROUND_ITEM_VIEW__INIT;
            it.room = c.items[i]->room;
            it.category = c.items[i]->category;
            it.check = c.items[i]->check;
            it.result = PM__V1__ITEM_RESULT__ITEM_PENDING;
            it.position = (uint32_t) i + 1;
            pm_key_t k;
            pm_txn_put_msg (txn, INSP_ITEMS, pm_key (&k, "suss", u->unit_id, no, it.room, it.category), &it.base);
        }
        r.items_total = (uint32_t) c.n;
    }
    s_round_save (txn, u->unit_id, &r);

    u->rounds = no;
    u->round_open = true;
    if (u->due_round) {
        pm_key_t k;
        pm_txn_del_key (txn, INSP_Q_DUE, inspection_unit_key (&k, u->unit_id));
        u->due_round = 0;
        u->due_ms = 0;
    }
    if (no == 1) {
        pm_key_t k;
        pm_timer_cancel (txn, INSP_TIMER_UNINSPECTED, u->unit_id);
        pm_txn_del_key (txn, INSP_Q_UNINSPECTED, inspection_unit_key (&k, u->unit_id));
        inspection_kpi_add (txn, u->estate_id, u->building, "inspected", 1);
    }
    inspection_unit_save (txn, u);
    Pm__V1__InspectionRound *e = inspection_round_event (ctx, txn, u, &r);
    s_emit_round (ctx, txn, out, "inspection.round.opened", e);

    Pm__V1__InspectionRoundStartReply *rep = pm_arena_alloc (ctx->arena, sizeof *rep);
    pm__v1__inspection_round_start_reply__init (rep);
    rep->round = e;
    rep->items = c.items;
    rep->n_items = c.n;
    rep->to_verify = to_verify;
    rep->n_to_verify = nverify;
    pm_reply_body (out, &rep->base);
    if (!reinspection)
        return pm_reply (out, PM__V1__STATUS__OK, "unit %s: round 1 open (inspector %s): %zu checklist items to record",
                         u->unit_id, q->inspector, c.n);
    return pm_reply (out, PM__V1__STATUS__OK,
                     "unit %s: round %u open (re-inspection, inspector %s): %zu rectified defect(s) to verify or "
                     "reopen%s%s",
                     u->unit_id, no, q->inspector, nverify, nverify ? ": " : "", s_join (ctx, to_verify, nverify));
}

/* --- inspection.items.record ------------------------------------------------------ */

int
inspection_on_items_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionItemsRecordRequest *q = req->inspection_items_record;
    Pm__Inspection__UnitRecord *u;
    int st = s_unit (txn, out, q->unit_id, &u);
    if (st != PM__V1__STATUS__OK)
        return st;
    if (!u->round_open)
        return inspection_no_round (ctx, out, u, "recording checklist items");
    Pm__Inspection__RoundRecord *r = inspection_round_load (txn, u->unit_id, u->rounds);
    if (!r)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: round %u is open but not stored", u->unit_id, u->rounds);
    if (!r->full)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: round %u is a re-inspection of rectified defects and has no checklist: verify or "
                         "reopen them (inspection.defect.verify / .reopen), record new defects with "
                         "inspection.defect.record, or start a full round (\"full\": true) next time",
                         u->unit_id, u->rounds);
    if (!q->n_items && !q->remaining_ok)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "items: empty; expected e.g. {\"unit_id\":\"%s\",\"items\":[{\"room\":\"客厅\",\"category\":"
                         "\"地面\",\"result\":\"ITEM_OK\"}]} or \"remaining_ok\": true",
                         u->unit_id);
    const char *by = *q->by ? q->by : r->inspector; /* the round's inspector unless said otherwise */
    /* check every item before writing any */
    for (size_t i = 0; i < q->n_items; i++) {
        const Pm__V1__InspectionItem *it = q->items[i];
        if (it->result != PM__V1__ITEM_RESULT__ITEM_OK && it->result != PM__V1__ITEM_RESULT__ITEM_NOT_APPLICABLE)
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "items[%zu].result: expected ITEM_OK or ITEM_NOT_APPLICABLE; a problem is recorded with "
                             "inspection.defect.record",
                             i);
        if (!pm_utf8_valid_str (it->note) || strlen (it->note) > 500)
            return pm_reply (out, PM__V1__STATUS__INVALID, "items[%zu].note: not UTF-8 text of at most 500 bytes", i);
        Pm__V1__RoundItemView *cur;
        pm_key_t k;
        if (pm_txn_get_msg (txn, INSP_ITEMS, pm_key (&k, "suss", u->unit_id, u->rounds, it->room, it->category),
                            &pm__v1__round_item_view__descriptor, &cur)
            != PM_OK)
            return inspection_bad_item (ctx, txn, out, u, u->rounds, true, it->room, it->category);
        if (inspection_line_has_defect (r, cur->position)) {
            inspection_item_defect_t *found;
            size_t nfound = inspection_round_defects (ctx, txn, u->unit_id, u->rounds, &found);
            const inspection_item_defect_t *d = inspection_item_defect (found, nfound, it->room, it->category);
            return pm_reply (out, PM__V1__STATUS__CONFLICT,
                             "items[%zu]: %s / %s has defect %s recorded in round %u; it cannot also be %s", i,
                             it->room, it->category, d ? d->defect_id : "?", u->rounds,
                             it->result == PM__V1__ITEM_RESULT__ITEM_OK ? "OK" : "not applicable");
        }
    }
    uint32_t recorded = 0;
    for (size_t i = 0; i < q->n_items; i++) {
        const Pm__V1__InspectionItem *it = q->items[i];
        Pm__V1__RoundItemView *cur;
        pm_key_t k;
        pm_key (&k, "suss", u->unit_id, u->rounds, it->room, it->category);
        if (pm_txn_get_msg (txn, INSP_ITEMS, &k, &pm__v1__round_item_view__descriptor, &cur) != PM_OK)
            continue;
        if (cur->result == PM__V1__ITEM_RESULT__ITEM_PENDING)
            r->items_recorded++;
        cur->result = it->result;
        cur->note = it->note;
        cur->by = (char *) by;
        cur->at_ms = ctx->now_ms;
        pm_txn_put_msg (txn, INSP_ITEMS, &k, &cur->base);
        recorded++;
    }
    if (q->remaining_ok) {
        size_t n = 0, cap = r->items_total ? r->items_total : 1;
        Pm__V1__RoundItemView **pending = pm_arena_alloc (ctx->arena, cap * sizeof *pending);
        pm_key_t k;
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, INSP_ITEMS, pm_key (&k, "su", u->unit_id, u->rounds)); s.ok && n < cap;
             pm_scan_next (&s)) {
            Pm__V1__RoundItemView *cur;
            if (pm_scan_msg (&s, &pm__v1__round_item_view__descriptor, &cur) == PM_OK
                && cur->result == PM__V1__ITEM_RESULT__ITEM_PENDING
                && !inspection_line_has_defect (r, cur->position))
                pending[n++] = cur;
        }
        pm_scan_end (&s);
        for (size_t i = 0; i < n; i++) {
            pending[i]->result = PM__V1__ITEM_RESULT__ITEM_OK;
            pending[i]->by = (char *) by;
            pending[i]->at_ms = ctx->now_ms;
            pm_txn_put_msg (txn, INSP_ITEMS,
                            pm_key (&k, "suss", u->unit_id, u->rounds, pending[i]->room, pending[i]->category),
                            &pending[i]->base);
            r->items_recorded++;
            recorded++;
        }
    }
    s_round_save (txn, u->unit_id, r);
    Pm__V1__InspectionItemsRecordReply *rep = pm_arena_alloc (ctx->arena, sizeof *rep);
    pm__v1__inspection_items_record_reply__init (rep);
    rep->recorded = recorded;
    rep->pending = r->items_total - r->items_recorded;
    pm_reply_body (out, &rep->base);
    return pm_reply (out, PM__V1__STATUS__OK, "unit %s round %u: %u item(s) recorded; %u of %u still pending", u->unit_id,
                     u->rounds, recorded, rep->pending, r->items_total);
}

/* --- inspection.round.complete ------------------------------------------------------ */

/* The pending lines of a full round, as "厨房/燃气, ..." (at most S_LIST_MAX). */
static char *
s_pending (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, const Pm__Inspection__RoundRecord *r)
{
    char *s = pm_arena_strdup (ctx->arena, "");
    size_t n = 0;
    uint32_t round_no = r->round_no;
    pm_key_t k;
    pm_scan_t sc;
    for (pm_scan_prefix (&sc, txn, INSP_ITEMS, pm_key (&k, "su", unit_id, round_no)); sc.ok; pm_scan_next (&sc)) {
        Pm__V1__RoundItemView *it;
        if (pm_scan_msg (&sc, &pm__v1__round_item_view__descriptor, &it) != PM_OK
            || it->result != PM__V1__ITEM_RESULT__ITEM_PENDING
            || inspection_line_has_defect (r, it->position))
            continue;
        if (n++ < S_LIST_MAX)
            s = pm_arena_printf (ctx->arena, "%s%s%s/%s", s, *s ? ", " : "", it->room, it->category);
    }
    pm_scan_end (&sc);
    if (n > S_LIST_MAX)
        s = pm_arena_printf (ctx->arena, "%s and %zu more", s, n - S_LIST_MAX);
    return s;
}

static bool
s_in (char **ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (ids[i], id) == 0)
            return true;
    return false;
}

int
inspection_on_round_complete (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionRoundCompleteRequest *q = req->inspection_round_complete;
    Pm__Inspection__UnitRecord *u;
    int st = s_unit (txn, out, q->unit_id, &u);
    if (st != PM__V1__STATUS__OK)
        return st;
    if (!u->round_open) {
        if (u->last_completed) {
            Pm__Inspection__RoundRecord *last = inspection_round_load (txn, u->unit_id, u->last_completed);
            return pm_reply (out, PM__V1__STATUS__CONFLICT, "unit %s: round %u is already completed: %s at %s; %s",
                             u->unit_id, u->last_completed, s_outcome (u->last_outcome),
                             last ? inspection_time (ctx, last->completed_ms) : "?",
                             u->passed_ms ? "the inspection passed, nothing is left to complete"
                                          : "a new visit starts with inspection.round.start");
        }
        return inspection_no_round (ctx, out, u, "completing a round");
    }
    Pm__Inspection__RoundRecord *r = inspection_round_load (txn, u->unit_id, u->rounds);
    if (!r)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: round %u is open but not stored", u->unit_id, u->rounds);
    if (r->full && r->items_recorded < r->items_total)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s round %u: %u of %u checklist items not recorded (%s); record each as ITEM_OK or "
                         "ITEM_NOT_APPLICABLE (inspection.items.record) or as a defect (inspection.defect.record) first",
                         u->unit_id, u->rounds, r->items_total - r->items_recorded, r->items_total,
                         s_pending (ctx, txn, u->unit_id, r));
    size_t nunchecked = 0;
    char **unchecked = pm_arena_alloc (ctx->arena, (r->n_to_verify + 1) * sizeof *unchecked);
    for (size_t i = 0; i < r->n_to_verify; i++)
        if (!s_in (r->verified, r->n_verified, r->to_verify[i]) && !s_in (r->reopened, r->n_reopened, r->to_verify[i]))
            unchecked[nunchecked++] = r->to_verify[i];
    if (nunchecked)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s round %u: %zu rectified defect(s) not yet checked (%s); verify each "
                         "(inspection.defect.verify) or reopen it with a reason (inspection.defect.reopen) first",
                         u->unit_id, u->rounds, nunchecked, s_join (ctx, unchecked, nunchecked));

    bool passed = u->defects_open == 0;
    r->state = passed ? PM__V1__ROUND_STATE__ROUND_PASSED : PM__V1__ROUND_STATE__ROUND_FAILED;
    r->completed_ms = ctx->now_ms;
    if (!passed)
        r->open_defects = s_defect_ids (ctx, txn, u->unit_id, PM__V1__DEFECT_STATE__DEFECT_STATE_UNSET, &r->n_open_defects);
    s_round_save (txn, u->unit_id, r);

    u->round_open = false;
    u->last_completed = r->round_no;
    u->last_outcome = r->state;
    if (r->round_no == 1) {
        inspection_kpi_add (txn, u->estate_id, u->building, "first_completed", 1);
        if (passed)
            inspection_kpi_add (txn, u->estate_id, u->building, "first_passed", 1);
    }
    pm_key_t k;
    if (passed) {
        u->passed_ms = ctx->now_ms;
        inspection_kpi_add (txn, u->estate_id, u->building, "passed", 1);
        pm_txn_del_key (txn, INSP_Q_FAILED, inspection_unit_key (&k, u->unit_id));
    } else {
        u->rounds_failed++;
        if (u->rounds_failed == 2)
            inspection_kpi_add (txn, u->estate_id, u->building, "failed_twice", 1);
        if (u->rounds_failed >= 2) {
            Pm__V1__QueueItem *item = pm_queue_item (
                ctx, u->unit_id, u->estate_id, u->unit_id, ctx->now_ms,
                pm_arena_printf (ctx->arena,
                                 "failed %u rounds (last: round %u, %u defect(s) open): look at why the "
                                 "rectification does not hold; talk to the owner and the contractor",
                                 u->rounds_failed, r->round_no, u->defects_open));
            pm_queue_field (ctx, item, "rounds_failed", "%u", u->rounds_failed);
            pm_queue_field (ctx, item, "open_defects", "%s", s_join (ctx, r->open_defects, r->n_open_defects));
            pm_queue_put (txn, INSP_Q_FAILED, inspection_unit_key (&k, u->unit_id), item);
        }
    }
    Pm__V1__InspectionRound *e = inspection_round_event (ctx, txn, u, r);
    s_emit_round (ctx, txn, out, passed ? "inspection.round.passed" : "inspection.round.failed", e);
    if (!passed)
        inspection_check_due (ctx, txn, u, out);
    inspection_unit_save (txn, u);

    Pm__V1__InspectionRoundCompleteReply *rep = pm_arena_alloc (ctx->arena, sizeof *rep);
    pm__v1__inspection_round_complete_reply__init (rep);
    rep->round = e;
    pm_reply_body (out, &rep->base);
    if (passed)
        return pm_reply (out, PM__V1__STATUS__OK, "unit %s: round %u PASSED: every defect verified", u->unit_id,
                         r->round_no);
    return pm_reply (out, PM__V1__STATUS__OK, "unit %s: round %u FAILED: %u defect(s) open (%s)", u->unit_id,
                     r->round_no, u->defects_open, s_join (ctx, r->open_defects, r->n_open_defects));
}

/* --- the re-inspection due --------------------------------------------------------- */

void
inspection_check_due (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Inspection__UnitRecord *u, pm_out_t *out)
{
    if (u->round_open || u->passed_ms || u->last_outcome != PM__V1__ROUND_STATE__ROUND_FAILED || u->defects_open == 0
        || u->defects_rectified != u->defects_open || u->due_round)
        return;
    u->due_round = u->last_completed;
    u->due_ms = ctx->now_ms;
    Pm__V1__ReinspectionDue *due = pm_arena_alloc (ctx->arena, sizeof *due);
    pm__v1__reinspection_due__init (due);
    due->unit_id = u->unit_id;
    due->estate_id = u->estate_id;
    due->building = u->building;
    due->round_no = u->last_completed;
    due->defect_ids = s_defect_ids (ctx, txn, u->unit_id, PM__V1__DEFECT_STATE__RECTIFIED, &due->n_defect_ids);
    Pm__V1__QueueItem *item =
        pm_queue_item (ctx, u->unit_id, u->estate_id, u->unit_id, ctx->now_ms,
                       pm_arena_printf (ctx->arena,
                                        "every defect of round %u is rectified (%zu): re-inspect with "
                                        "inspection.round.start",
                                        u->last_completed, due->n_defect_ids));
    pm_queue_field (ctx, item, "round", "%u", u->last_completed);
    pm_queue_field (ctx, item, "defects", "%s", s_join (ctx, due->defect_ids, due->n_defect_ids));
    pm_key_t k;
    pm_queue_put (txn, INSP_Q_DUE, inspection_unit_key (&k, u->unit_id), item);
    Pm__V1__Event *ev = inspection_event (ctx, "inspection.reinspection.due", u->estate_id, u->unit_id);
    ev->payload_case = PM__V1__EVENT__PAYLOAD_REINSPECTION;
    ev->reinspection = due;
    pm_emit (out, txn, ev);
}

/* --- inspection.accept_with_defects ---------------------------------------------------- */

int
inspection_on_accept_with_defects (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionAcceptWithDefectsRequest *q = req->inspection_accept_with_defects;
    Pm__Inspection__UnitRecord *u;
    int st = s_unit (txn, out, q->unit_id, &u);
    if (st != PM__V1__STATUS__OK)
        return st;
    const char *t;
    size_t tlen;
    pm_trim_span (q->signature_ref, &t, &tlen);
    if (tlen == 0 || strlen (q->signature_ref) > 200 || !pm_utf8_valid_str (q->signature_ref))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "signature_ref: %s; expected the reference of the owner's signed acceptance, e.g. "
                         "{\"unit_id\":\"%s\",\"signature_ref\":\"SIG-2026-0042\"}",
                         tlen ? "not 1 to 200 bytes of UTF-8" : "empty", u->unit_id);
    if (u->accepted_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "unit %s: already accepted with defects at %s (signature %s)",
                         u->unit_id, inspection_time (ctx, u->accepted_ms), u->signature_ref);
    if (u->passed_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: inspection PASSED at round %u: there is no open defect to accept", u->unit_id,
                         u->last_completed);
    if (u->round_open)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: round %u is in progress: complete it first (inspection.round.complete); the owner "
                         "accepts the open defects of a completed round",
                         u->unit_id, u->rounds);
    if (!u->last_completed)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: no round completed yet (%s): inspect the unit first, then the owner may accept "
                         "its open defects",
                         u->unit_id, inspection_status_name (inspection_unit_status (u)));
    u->accepted_ms = ctx->now_ms;
    u->signature_ref = q->signature_ref;
    inspection_unit_save (txn, u);
    inspection_kpi_add (txn, u->estate_id, u->building, "accepted", 1);
    Pm__V1__AcceptedWithDefects *a = pm_arena_alloc (ctx->arena, sizeof *a);
    pm__v1__accepted_with_defects__init (a);
    a->unit_id = u->unit_id;
    a->estate_id = u->estate_id;
    a->building = u->building;
    a->open_defects = u->defects_open;
    a->defect_ids = s_defect_ids (ctx, txn, u->unit_id, PM__V1__DEFECT_STATE__DEFECT_STATE_UNSET, &a->n_defect_ids);
    a->signature_ref = q->signature_ref;
    Pm__V1__Event *ev = inspection_event (ctx, "inspection.accepted_with_defects", u->estate_id, u->unit_id);
    ev->payload_case = PM__V1__EVENT__PAYLOAD_ACCEPTED;
    ev->accepted = a;
    pm_emit (out, txn, ev);
    Pm__V1__InspectionAcceptWithDefectsReply *rep = pm_arena_alloc (ctx->arena, sizeof *rep);
    pm__v1__inspection_accept_with_defects_reply__init (rep);
    rep->accepted = a;
    pm_reply_body (out, &rep->base);
    return pm_reply (out, PM__V1__STATUS__OK,
                     "unit %s accepted with %u open defect(s) (%s), signature %s; their work orders go on and they "
                     "are verified at re-inspection as usual",
                     u->unit_id, u->defects_open, s_join (ctx, a->defect_ids, a->n_defect_ids), q->signature_ref);
}
