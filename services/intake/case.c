/* case.c - one unit's move-in case, and everything derived from it.
 *
 * Every handler that changes a case loads it with intake_case_load, changes
 * the record, and saves it with intake_case_save. The save compares what the
 * case now says with what it said when loaded and moves, in the same
 * transaction, the counters that intake.progress reads (units per state per
 * building, blocked at the key gate and on what, waitlisted, notices not
 * delivered) and the queue entries ops.queues lists (no-shows, blocked,
 * waitlist, undelivered). So a progress figure is always a few counter reads,
 * never a scan, and no handler can forget one.
 *
 * The key gate (DESIGN.md section 7: keys need the move-in invoice settled
 * and the inspection passed, or the owner's acceptance with open defects) is
 * judged here too, from the facts inspection's and billing's events left in
 * the case, whichever arrived first. */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"

#include <string.h>

static const char *const s_states[] = {
    [PM__INTAKE__UNIT_STATE__REGISTERED] = "REGISTERED", [PM__INTAKE__UNIT_STATE__NOTIFIED] = "NOTIFIED",
    [PM__INTAKE__UNIT_STATE__SCHEDULED] = "SCHEDULED",   [PM__INTAKE__UNIT_STATE__NO_SHOW] = "NO_SHOW",
    [PM__INTAKE__UNIT_STATE__CHECKED_IN] = "CHECKED_IN", [PM__INTAKE__UNIT_STATE__KEYS_HANDED] = "KEYS_HANDED",
};

const char *
intake_state_name (int state)
{
    return state >= 0 && state < (int) (sizeof s_states / sizeof s_states[0]) && s_states[state] ? s_states[state]
                                                                                                 : "UNKNOWN";
}

int
intake_reply_no_unit (pm_out_t *out, const char *unit_id)
{
    if (!*unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "unit_id: empty; expected ESTATE/BUILDING/UNIT, e.g. E01/3/2-301");
    return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                     "unit_id: no unit '%s' (expected ESTATE/BUILDING/UNIT, e.g. E01/3/2-301; import it first)",
                     unit_id);
}

int
intake_unit_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, Pm__Intake__UnitRecord **rec)
{
    pm_key_t k;
    int rc = pm_txn_get_msg (txn, INTAKE_UNITS, intake_unit_key (&k, unit_id), &pm__intake__unit_record__descriptor,
                             rec);
    if (rc == PM_OK && !(*rec)->unit)
        rc = PM_EPROTO;
    return rc;
}

int
intake_emit (pm_out_t *out, pm_txn_t *txn, const char *type, const char *estate_id, const char *unit_id,
             Pm__V1__Event *ev)
{
    ev->type = (char *) type;
    ev->estate_id = (char *) estate_id;
    ev->unit_id = (char *) unit_id;
    return pm_emit (out, txn, ev);
}

/* --- the gate ------------------------------------------------------------------ */

static bool
s_invoice_ok (const Pm__Intake__CaseRecord *r)
{
    size_t live = 0;
    for (size_t i = 0; i < r->n_invoices; i++) {
        if (r->invoices[i]->state == PM__V1__INVOICE_STATE__VOID)
            continue;
        live++;
        if (r->invoices[i]->state != PM__V1__INVOICE_STATE__SETTLED)
            return false;
    }
    return live > 0;
}

static bool
s_inspection_ok (const Pm__Intake__CaseRecord *r)
{
    return r->inspection && (r->inspection->passed || r->inspection->accepted);
}

Pm__V1__KeyGate *
intake_gate (pm_ctx_t *ctx, const Pm__Intake__CaseRecord *r)
{
    Pm__V1__KeyGate *g = pm_arena_alloc (ctx->arena, sizeof *g);
    pm__v1__key_gate__init (g);
    g->missing = pm_arena_alloc (ctx->arena, (r->n_invoices + 3) * sizeof *g->missing);
    /* the invoice */
    size_t live = 0;
    char *text = "";
    for (size_t i = 0; i < r->n_invoices; i++) {
        const Pm__Intake__InvoiceFacts *f = r->invoices[i];
        if (f->state == PM__V1__INVOICE_STATE__VOID)
            continue;
        live++;
        char *one;
        if (f->state == PM__V1__INVOICE_STATE__SETTLED)
            one = pm_arena_printf (ctx->arena, "%s settled (%s)", f->invoice_id, intake_yuan (ctx->arena, f->total_fen));
        else {
            one = pm_arena_printf (ctx->arena, "invoice %s open: %s", f->invoice_id,
                                   intake_yuan (ctx->arena, f->open_fen));
            g->missing[g->n_missing++] = one;
        }
        text = *text ? pm_arena_printf (ctx->arena, "%s; %s", text, one) : one;
    }
    if (live == 0) {
        text = r->n_invoices ? "move-in invoice voided, none issued since" : "move-in invoice not issued yet";
        g->missing[g->n_missing++] =
            r->n_invoices ? "move-in invoice voided and none issued since (billing issues one at check-in)"
                          : "move-in invoice not issued yet (billing issues it when the unit checks in)";
    }
    g->invoice = text;
    /* the inspection */
    const Pm__Intake__InspectionFacts *in = r->inspection;
    if (in && in->accepted)
        g->inspection = pm_arena_printf (ctx->arena, "accepted with %u open defect%s", in->accepted_open,
                                         in->accepted_open == 1 ? "" : "s");
    else if (in && in->passed)
        g->inspection = pm_arena_printf (ctx->arena, "round %u passed", in->round_no);
    else if (in && in->failed) {
        g->inspection = pm_arena_printf (ctx->arena, "inspection round %u failed: %u defect%s open%s", in->round_no,
                                         in->open_defects, in->open_defects == 1 ? "" : "s",
                                         in->reinspection_due ? " (all rectified: re-inspection due)" : "");
        g->missing[g->n_missing++] = g->inspection;
    }
    else {
        g->inspection = "not inspected yet";
        g->missing[g->n_missing++] = "inspection not passed yet (no round has passed, nor an acceptance with defects)";
    }
    g->open = s_invoice_ok (r) && s_inspection_ok (r);
    return g;
}

/* --- load and save ------------------------------------------------------------- */

static bool
s_blocked (const Pm__Intake__CaseRecord *r)
{
    return r->state == PM__INTAKE__UNIT_STATE__CHECKED_IN && !(s_invoice_ok (r) && s_inspection_ok (r));
}

static bool
s_undelivered (const Pm__Intake__CaseRecord *r)
{
    return r->notice_overdue && r->notified_ms == 0 && r->state < PM__INTAKE__UNIT_STATE__CHECKED_IN;
}

int
intake_case_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, intake_case_t *c)
{
    memset (c, 0, sizeof *c);
    pm_key_t k;
    int rc = pm_txn_get_msg (txn, INTAKE_CASES, intake_unit_key (&k, unit_id), &pm__intake__case_record__descriptor,
                             &c->rec);
    if (rc == PM_ENOTFOUND) {
        c->rec = pm_arena_alloc (ctx->arena, sizeof *c->rec);
        pm__intake__case_record__init (c->rec);
        c->rec->unit_id = pm_arena_strdup (ctx->arena, unit_id);
        char *estate, *building;
        if (intake_unit_id_parts (ctx->arena, unit_id, &estate, &building) != PM_OK)
            return PM_EINVAL;
        c->rec->estate_id = estate;
        c->rec->building = building;
        return PM_OK;
    }
    if (rc != PM_OK)
        return rc;
    Pm__Intake__CaseRecord *r = c->rec;
    c->existed = true;
    c->state0 = r->state;
    c->blocked0 = s_blocked (r);
    c->blk_invoice0 = c->blocked0 && !s_invoice_ok (r);
    c->blk_inspection0 = c->blocked0 && !s_inspection_ok (r);
    c->undelivered0 = s_undelivered (r);
    c->waitlist0 = r->waitlist_pos;
    c->slot0 = r->appointment ? r->appointment->slot_start_ms : 0;
    return PM_OK;
}

void
intake_case_state (pm_ctx_t *ctx, intake_case_t *c, int state)
{
    if ((int) c->rec->state != state)
        c->rec->since_ms = ctx->now_ms;
    c->rec->state = state;
}

/* Moves a counter by the change of a flag. */
static void
s_flag (pm_txn_t *txn, const Pm__Intake__CaseRecord *r, const char *name, bool before, bool now)
{
    if (before != now)
        intake_count_add (txn, r->estate_id, r->building, name, now ? 1 : -1);
}

/* A queue item about the case's unit (arena). */
static Pm__V1__QueueItem *
s_item (pm_ctx_t *ctx, const Pm__Intake__CaseRecord *r, const char *reason)
{
    return pm_queue_item (ctx, r->unit_id, r->estate_id, r->unit_id, r->since_ms ? r->since_ms : ctx->now_ms,
                          reason);
}

int
intake_case_save (pm_ctx_t *ctx, pm_txn_t *txn, intake_case_t *c)
{
    intake_t *in = ctx->app;
    Pm__Intake__CaseRecord *r = c->rec;
    pm_key_t k;
    /* state counters: a unit without a case was counted REGISTERED at import */
    if ((int) r->state != c->state0) {
        char name[32];
        snprintf (name, sizeof name, "s:%s", intake_state_name (c->state0));
        intake_count_add (txn, r->estate_id, r->building, name, -1);
        snprintf (name, sizeof name, "s:%s", intake_state_name (r->state));
        intake_count_add (txn, r->estate_id, r->building, name, 1);
    }
    /* the key gate */
    bool blocked = s_blocked (r);
    bool blk_invoice = blocked && !s_invoice_ok (r), blk_inspection = blocked && !s_inspection_ok (r);
    s_flag (txn, r, "blocked", c->blocked0, blocked);
    s_flag (txn, r, "blocked:invoice", c->blk_invoice0, blk_invoice);
    s_flag (txn, r, "blocked:inspection", c->blk_inspection0, blk_inspection);
    if (blocked) {
        Pm__V1__KeyGate *g = intake_gate (ctx, r);
        char *why = "";
        for (size_t i = 0; i < g->n_missing; i++)
            why = *why ? pm_arena_printf (ctx->arena, "%s; %s", why, g->missing[i]) : g->missing[i];
        Pm__V1__QueueItem *item = s_item (ctx, r, why);
        pm_queue_field (ctx, item, "invoice", "%s", g->invoice);
        pm_queue_field (ctx, item, "inspection", "%s", g->inspection);
        pm_queue_put (txn, INTAKE_BLOCKED, intake_unit_key (&k, r->unit_id), item);
    }
    else if (c->blocked0)
        pm_txn_del_key (txn, INTAKE_BLOCKED, intake_unit_key (&k, r->unit_id));
    /* no-shows to rebook */
    bool noshow = r->state == PM__INTAKE__UNIT_STATE__NO_SHOW;
    if (noshow && c->state0 != PM__INTAKE__UNIT_STATE__NO_SHOW) {
        const Pm__V1__Appointment *a = r->appointment;
        Pm__V1__QueueItem *item =
            s_item (ctx, r, "missed the appointment: rebook it (intake.appointment.move) or cancel it");
        if (a && a->slot_start_ms)
            pm_queue_field (ctx, item, "slot", "%s", intake_local_format (ctx->arena, in, a->slot_start_ms));
        pm_queue_put (txn, INTAKE_NOSHOWS, intake_unit_key (&k, r->unit_id), item);
    }
    else if (!noshow && c->state0 == PM__INTAKE__UNIT_STATE__NO_SHOW)
        pm_txn_del_key (txn, INTAKE_NOSHOWS, intake_unit_key (&k, r->unit_id));
    /* the waitlist, in the order units joined it */
    if (r->waitlist_pos != c->waitlist0) {
        if (c->waitlist0)
            pm_txn_del_key (txn, INTAKE_WAITLIST, pm_key (&k, "sU", r->estate_id, c->waitlist0));
        if (r->waitlist_pos) {
            Pm__V1__QueueItem *item = s_item (ctx, r, "no slot had room: booked automatically when one frees");
            item->key = pm_arena_printf (ctx->arena, "%s#%llu", r->unit_id, (unsigned long long) r->waitlist_pos);
            pm_queue_put (txn, INTAKE_WAITLIST, pm_key (&k, "sU", r->estate_id, r->waitlist_pos), item);
        }
        s_flag (txn, r, "waitlist", c->waitlist0 != 0, r->waitlist_pos != 0);
    }
    /* notices requested and not sent after a day */
    bool undelivered = s_undelivered (r);
    if (undelivered) {
        Pm__V1__QueueItem *item = s_item (ctx, r, *r->notice_failure ? r->notice_failure
                                                                     : "no notify.message.sent for the notice yet");
        item->since_ms = r->notice_requested_ms;
        if (r->n_notices)
            pm_queue_field (ctx, item, "notice", "%s", r->notices[r->n_notices - 1]);
        pm_queue_put (txn, INTAKE_UNDELIVERED, intake_unit_key (&k, r->unit_id), item);
    }
    else if (c->undelivered0)
        pm_txn_del_key (txn, INTAKE_UNDELIVERED, intake_unit_key (&k, r->unit_id));
    s_flag (txn, r, "undelivered", c->undelivered0, undelivered);

    int rc = pm_txn_put_msg (txn, INTAKE_CASES, intake_unit_key (&k, r->unit_id), &r->base);
    /* what the counters now say is the new starting point (a case may be saved twice) */
    c->existed = true;
    c->state0 = r->state;
    c->blocked0 = blocked;
    c->blk_invoice0 = blk_invoice;
    c->blk_inspection0 = blk_inspection;
    c->undelivered0 = undelivered;
    c->waitlist0 = r->waitlist_pos;
    c->slot0 = r->appointment ? r->appointment->slot_start_ms : 0;
    return rc;
}
