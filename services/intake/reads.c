/* reads.c - what intake answers without writing: estates, a unit's whole
 * case, its queues, its gauges, and its snapshot (every unit's case restated
 * as events, for a consumer rebuilding). */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"

#include <string.h>

/* The estate's units and owners: sums of its counters. */
static void
s_estate_sums (pm_txn_t *txn, const char *estate_id, uint32_t *units, uint32_t *owners)
{
    *units = *owners = 0;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INTAKE_COUNTS, pm_key (&k, "s", estate_id)); s.ok; pm_scan_next (&s)) {
        const char *name;
        if (s.val.mv_size != 8 || pm_key_parse (s.key.mv_data, s.key.mv_size, "sss", NULL, NULL, &name) != PM_OK)
            continue;
        if (strncmp (name, "s:", 2) == 0)
            *units += (uint32_t) pm_be_u64 (s.val.mv_data);
        else if (strcmp (name, "owners") == 0)
            *owners += (uint32_t) pm_be_u64 (s.val.mv_data);
    }
}

int
intake_on_estate_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->intake_estate_get->estate_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    Pm__Intake__EstateRecord *est;
    pm_key_t k;
    if (pm_txn_get_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, id), &pm__intake__estate_record__descriptor, &est)
        != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "estate_id: no estate '%s' (%zu estates are known; import its units first)", id,
                         pm_txn_count (txn, INTAKE_ESTATES));
    Pm__V1__IntakeEstateGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_estate_get_reply__init (r);
    r->estate_id = est->estate_id;
    r->estate_name = est->estate_name;
    s_estate_sums (txn, est->estate_id, &r->units, &r->owners);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s %s: %u units, %u owners", est->estate_id, est->estate_name,
                     r->units, r->owners);
}

int
intake_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->intake_unit_get->unit_id;
    Pm__Intake__UnitRecord *rec;
    if (!*id || intake_unit_load (ctx, txn, id, &rec) != PM_OK)
        return intake_reply_no_unit (out, id);
    intake_case_t c;
    if (intake_case_load (ctx, txn, id, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: its case does not decode", id);
    const Pm__Intake__CaseRecord *cr = c.rec;
    Pm__V1__IntakeUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_unit_get_reply__init (r);
    r->unit = rec->unit;
    r->registered_ms = rec->registered_ms;
    r->id_numbers_masked = pm_arena_alloc (ctx->arena, (rec->n_id_numbers_sealed + 1) * sizeof (char *));
    for (size_t i = 0; i < rec->n_id_numbers_sealed; i++) {
        char buf[64];
        char *plain = intake_unseal (ctx, ctx->app, rec->id_numbers_sealed[i]);
        r->id_numbers_masked[r->n_id_numbers_masked++] = pm_arena_strdup (
            ctx->arena, plain ? pm_mask_id (plain, buf, sizeof buf) : "(cannot unseal: wrong key_file?)");
        if (plain)
            sodium_memzero (plain, strlen (plain));
    }
    r->state = (char *) intake_state_name (cr->state);
    if (cr->appointment && cr->appointment->slot_start_ms)
        r->appointment = intake_appointment (ctx, txn, &c);
    r->notices = cr->notices;
    r->n_notices = cr->n_notices;
    r->notified_ms = cr->notified_ms;
    r->notice_failure = cr->notice_failure;
    r->checked_in = cr->checked_in;
    r->keys = cr->keys;
    uint32_t outstanding, lost;
    r->n_key_ledger = intake_ledger (ctx, txn, id, &r->key_ledger, &outstanding, &lost);
    r->gate = intake_gate (ctx, cr);
    r->waitlisted = cr->waitlist_pos != 0;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s, %zu owner(s)%s", rec->unit->unit_id, r->state,
                     rec->unit->n_owners,
                     cr->state == PM__INTAKE__UNIT_STATE__CHECKED_IN
                         ? (r->gate->open ? "; key gate open" : "; keys wait (see gate)")
                         : "");
}

void
intake_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    pm_queue_from_table (ctx, txn, r, "no_shows",
                         "units that missed their appointment: rebook them (intake.appointment.move) or cancel",
                         INTAKE_NOSHOWS, limit);
    pm_queue_from_table (ctx, txn, r, "waitlist",
                         "units no slot had room for, in the order they wait: each is booked by itself when a slot "
                         "frees, or book it (intake.appointment.book)",
                         INTAKE_WAITLIST, limit);
    pm_queue_from_table (ctx, txn, r, "blocked_at_key_gate",
                         "units checked in whose keys wait for the move-in invoice to be settled and the inspection "
                         "to pass (or an acceptance with defects): chase what each names",
                         INTAKE_BLOCKED, limit);
    pm_queue_from_table (ctx, txn, r, "notices_undelivered",
                         "move-in notices requested over a day ago that notify has not sent: check the owners' "
                         "phones and emails, or reach them another way",
                         INTAKE_UNDELIVERED, limit);
    pm_queue_from_table (ctx, txn, r, "import_rejections",
                         "import rows rejected and not yet fixed: correct the file and import it again "
                         "(a row that then passes leaves this queue)",
                         INTAKE_REJECTS, limit);
}

void
intake_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_gauge (ctx->metrics, "intake_units", NULL, "Units registered", (double) pm_txn_count (txn, INTAKE_UNITS));
    pm_gauge (ctx->metrics, "intake_estates", NULL, "Estates with registered units",
              (double) pm_txn_count (txn, INTAKE_ESTATES));
    pm_gauge (ctx->metrics, "intake_import_rejections", NULL, "Rejected import rows not yet fixed",
              (double) pm_txn_count (txn, INTAKE_REJECTS));
    pm_gauge (ctx->metrics, "intake_no_shows", NULL, "Units that missed their appointment, to rebook",
              (double) pm_txn_count (txn, INTAKE_NOSHOWS));
    pm_gauge (ctx->metrics, "intake_waitlist", NULL, "Units waiting for a slot",
              (double) pm_txn_count (txn, INTAKE_WAITLIST));
    pm_gauge (ctx->metrics, "intake_blocked_at_key_gate", NULL, "Units checked in whose keys wait",
              (double) pm_txn_count (txn, INTAKE_BLOCKED));
    pm_gauge (ctx->metrics, "intake_notices_undelivered", NULL, "Notices not sent a day after they were requested",
              (double) pm_txn_count (txn, INTAKE_UNDELIVERED));
}

/* --- the snapshot ---------------------------------------------------------------- */

/* Which event of a unit's case a snapshot page ended on. */
enum { S_SNAP_UNIT = 0, S_SNAP_APPOINTMENT, S_SNAP_CHECKIN, S_SNAP_KEYS, S_SNAP_DONE };

/* Adds one event of the case; false when the page is full. */
static bool
s_snap_add (pm_ctx_t *ctx, pm_snapshot_t *snap, const Pm__Intake__UnitRecord *u, const char *type, int part,
            Pm__V1__Event *ev, const void *key, size_t klen)
{
    ev->type = (char *) type;
    ev->estate_id = u->unit->estate_id;
    ev->unit_id = u->unit->unit_id;
    unsigned char *after = pm_arena_alloc (ctx->arena, klen + 1);
    memcpy (after, key, klen);
    after[klen] = (unsigned char) part;
    return pm_snapshot_add (snap, ev, after, klen + 1);
}

/* Every unit's case as events of the contract, in key order: its
 * registration (the unit, no ID numbers), then, where they happened, its
 * booked appointment, its check-in and its keys. A page may end inside a
 * unit's case: `after` is the unit's key and the part last sent. */
int
intake_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap)
{
    size_t alen;
    const unsigned char *after = pm_snapshot_after (snap, &alen);
    int skip = -1; /* parts of the first unit already sent */
    pm_key_t from;
    if (alen > 1) {
        pm_key_raw (&from, after, alen - 1);
        skip = after[alen - 1];
    }
    pm_scan_t s;
    for (pm_scan_range (&s, txn, INTAKE_UNITS, alen > 1 ? &from : NULL, NULL); s.ok; pm_scan_next (&s), skip = -1) {
        Pm__Intake__UnitRecord *u;
        if (pm_scan_msg (&s, &pm__intake__unit_record__descriptor, &u) != PM_OK || !u->unit)
            continue;
        if (alen > 1 && skip >= 0
            && (s.key.mv_size != alen - 1 || memcmp (s.key.mv_data, after, alen - 1) != 0))
            skip = -1; /* that unit is gone: start this one from its beginning */
        intake_case_t c;
        if (intake_case_load (ctx, txn, u->unit->unit_id, &c) != PM_OK)
            c.rec = NULL;
        const Pm__Intake__CaseRecord *r = c.rec;
        if (skip < S_SNAP_UNIT) {
            Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
            pm__v1__event__init (ev);
            ev->payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
            ev->unit = u->unit;
            if (!s_snap_add (ctx, snap, u, "intake.unit.registered", S_SNAP_UNIT, ev, s.key.mv_data, s.key.mv_size))
                break;
        }
        if (skip < S_SNAP_APPOINTMENT && r && r->state == PM__INTAKE__UNIT_STATE__SCHEDULED && r->appointment
            && r->appointment->slot_start_ms) {
            Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
            pm__v1__event__init (ev);
            ev->payload_case = PM__V1__EVENT__PAYLOAD_APPOINTMENT;
            ev->appointment = intake_appointment (ctx, txn, &c);
            if (!s_snap_add (ctx, snap, u, "intake.appointment.booked", S_SNAP_APPOINTMENT, ev, s.key.mv_data,
                             s.key.mv_size))
                break;
        }
        if (skip < S_SNAP_CHECKIN && r && r->checked_in) {
            Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
            pm__v1__event__init (ev);
            ev->payload_case = PM__V1__EVENT__PAYLOAD_CHECKED_IN;
            ev->checked_in = pm_arena_alloc (ctx->arena, sizeof *ev->checked_in);
            *ev->checked_in = *r->checked_in;
            ev->checked_in->unit = u->unit;
            if (!s_snap_add (ctx, snap, u, "intake.unit.checked_in", S_SNAP_CHECKIN, ev, s.key.mv_data, s.key.mv_size))
                break;
        }
        if (skip < S_SNAP_KEYS && r && r->keys) {
            Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
            pm__v1__event__init (ev);
            ev->payload_case = PM__V1__EVENT__PAYLOAD_KEYS_HANDED;
            ev->keys_handed = pm_arena_alloc (ctx->arena, sizeof *ev->keys_handed);
            *ev->keys_handed = *r->keys;
            ev->keys_handed->unit = u->unit;
            if (!s_snap_add (ctx, snap, u, "intake.keys.handed", S_SNAP_KEYS, ev, s.key.mv_data, s.key.mv_size))
                break;
        }
    }
    pm_scan_end (&s); /* the snapshot's read transaction outlives this page: close the cursor now */
    return PM_OK;
}
