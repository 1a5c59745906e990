/* reads.c - what inspection answers without writing: one unit's case
 * (inspection.unit.get), its queues, and its snapshot (its state restated as
 * contract events, so intake, workorder and notify can rebuild from it). */
#include "inspection.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_ZONE_MS (8 * 3600 * 1000LL) /* Asia/Shanghai: UTC+8, no DST */

const char *
inspection_time (pm_ctx_t *ctx, int64_t ms)
{
    if (!ms)
        return "-";
    time_t t = (time_t) ((ms + S_ZONE_MS) / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    return pm_arena_printf (ctx->arena, "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                            tm.tm_hour, tm.tm_min);
}

Pm__V1__Event *
inspection_event (pm_ctx_t *ctx, const char *type, const char *estate_id, const char *unit_id)
{
    Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
    pm__v1__event__init (ev);
    ev->type = (char *) type;
    ev->estate_id = (char *) estate_id;
    ev->unit_id = (char *) unit_id;
    return ev;
}

/* --- inspection.unit.get ------------------------------------------------------------- */

static int
s_by_position (const void *a, const void *b)
{
    const Pm__V1__RoundItemView *x = *(Pm__V1__RoundItemView *const *) a, *y = *(Pm__V1__RoundItemView *const *) b;
    return x->position < y->position ? -1 : x->position > y->position;
}

/* Appends p to the array arr of n elements (a new arena copy each time: the
 * arrays here are short, and some start as decoded arrays of exactly n). */
#define S_PUSH(ctx, arr, n, p)                                                                                         \
    do {                                                                                                               \
        __typeof__ (arr) s_a_ = pm_arena_alloc ((ctx)->arena, ((n) + 1) * sizeof *s_a_);                               \
        if (n)                                                                                                         \
            memcpy (s_a_, (arr), (n) * sizeof *s_a_);                                                                  \
        s_a_[(n)++] = (p);                                                                                             \
        (arr) = s_a_;                                                                                                  \
    } while (0)

static Pm__V1__InspectionRoundView *
s_round_view (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, const Pm__Inspection__RoundRecord *r)
{
    Pm__V1__InspectionRoundView *v = pm_arena_alloc (ctx->arena, sizeof *v);
    pm__v1__inspection_round_view__init (v);
    v->round_no = r->round_no;
    v->inspector = r->inspector;
    v->state = r->state;
    v->reinspection = r->reinspection;
    v->full = r->full;
    v->started_ms = r->started_ms;
    v->completed_ms = r->completed_ms;
    v->items_total = r->items_total;
    v->items_recorded = r->items_recorded;
    v->to_verify = r->to_verify;
    v->n_to_verify = r->n_to_verify;
    v->verified = r->verified;
    v->n_verified = r->n_verified;
    v->reopened = r->reopened;
    v->n_reopened = r->n_reopened;
    v->open_defects = r->open_defects;
    v->n_open_defects = r->n_open_defects;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INSP_ITEMS, pm_key (&k, "su", unit_id, r->round_no)); s.ok; pm_scan_next (&s)) {
        Pm__V1__RoundItemView *it;
        if (pm_scan_msg (&s, &pm__v1__round_item_view__descriptor, &it) == PM_OK)
            S_PUSH (ctx, v->items, v->n_items, it);
    }
    pm_scan_end (&s);
    if (v->n_items)
        qsort (v->items, v->n_items, sizeof *v->items, s_by_position);
    /* a line with defects of this round is ITEM_DEFECT (derived: see inspection_item_defect_t) */
    inspection_item_defect_t *found;
    size_t nfound = inspection_round_defects (ctx, txn, unit_id, r->round_no, &found);
    for (size_t i = 0; i < nfound; i++) {
        S_PUSH (ctx, v->defects_found, v->n_defects_found, (char *) found[i].defect_id);
        for (size_t j = 0; j < v->n_items; j++) {
            Pm__V1__RoundItemView *it = v->items[j];
            if (strcmp (it->room, found[i].room) || strcmp (it->category, found[i].category))
                continue;
            if (it->result == PM__V1__ITEM_RESULT__ITEM_PENDING) {
                it->by = (char *) found[i].by;
                it->at_ms = found[i].at_ms;
            }
            it->result = PM__V1__ITEM_RESULT__ITEM_DEFECT;
            S_PUSH (ctx, it->defect_ids, it->n_defect_ids, (char *) found[i].defect_id);
        }
    }
    return v;
}

int
inspection_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *unit_id = req->inspection_unit_get->unit_id;
    if (!*unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected a unit such as E01/3/2-301");
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, unit_id);
    if (!u)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: inspection knows no unit '%s' (not registered with intake, or intake's event not "
                         "applied yet)",
                         unit_id);
    Pm__V1__InspectionUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_unit_get_reply__init (r);
    r->unit_id = u->unit_id;
    r->estate_id = u->estate_id;
    r->building = u->building;
    r->status = inspection_unit_status (u);
    r->checked_in_ms = u->checked_in_ms;
    r->opened_ms = u->opened_ms;
    r->rounds_failed = u->rounds_failed;
    r->defects_open = u->defects_open;
    r->accepted_with_defects = u->accepted_ms != 0;
    r->signature_ref = u->signature_ref;
    r->accepted_ms = u->accepted_ms;
    r->passed_ms = u->passed_ms;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INSP_ROUNDS, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        Pm__Inspection__RoundRecord *rr;
        if (pm_scan_msg (&s, &pm__inspection__round_record__descriptor, &rr) == PM_OK)
            S_PUSH (ctx, r->rounds, r->n_rounds, s_round_view (ctx, txn, unit_id, rr));
    }
    pm_scan_end (&s);
    for (pm_scan_prefix (&s, txn, INSP_DEFECTS, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        Pm__Inspection__DefectRecord *d;
        if (pm_scan_msg (&s, &pm__inspection__defect_record__descriptor, &d) != PM_OK || !d->defect)
            continue;
        Pm__V1__DefectView *v = pm_arena_alloc (ctx->arena, sizeof *v);
        pm__v1__defect_view__init (v);
        v->defect = d->defect;
        v->history = d->history;
        v->n_history = d->n_history;
        S_PUSH (ctx, r->defects, r->n_defects, v);
    }
    pm_scan_end (&s);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s; %zu round(s), %zu defect(s), %u open%s", unit_id,
                     inspection_status_name (r->status), r->n_rounds, r->n_defects, u->defects_open,
                     u->accepted_ms ? pm_arena_printf (ctx->arena, "; accepted with defects (signature %s)",
                                                       u->signature_ref)
                                    : "");
}

/* --- ops.queues ------------------------------------------------------------------- */

void
inspection_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    pm_queue_from_table (ctx, txn, r, "reinspections_due",
                         "units whose defects are all rectified: send the inspector back (inspection.round.start); "
                         "a unit leaves when its round starts",
                         INSP_Q_DUE, limit);
    pm_queue_from_table (ctx, txn, r, "overdue_defects",
                         "defects past their rectification deadline and not yet rectified: chase their work orders; "
                         "a defect leaves when its order is done",
                         INSP_Q_OVERDUE, limit);
    pm_queue_from_table (ctx, txn, r, "failed_twice",
                         "units that failed two rounds or more and have not passed: find out why the rectification "
                         "does not hold; a unit leaves when a round passes",
                         INSP_Q_FAILED, limit);
    pm_queue_from_table (ctx, txn, r, "uninspected",
                         "units open for inspection (checked in) that no round has visited after [inspection] "
                         "uninspected_after: send an inspector; a unit leaves when its first round starts",
                         INSP_Q_UNINSPECTED, limit);
}

/* --- the snapshot ------------------------------------------------------------------ */

/* The events that restate unit u, in order: each defect (typed by its state),
 * the last completed round's outcome, the open round, the acceptance, the
 * re-inspection due. */
static size_t
s_unit_events (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Inspection__UnitRecord *u, Pm__V1__Event ***evs)
{
    size_t n = 0;
    *evs = NULL;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INSP_DEFECTS, pm_key (&k, "s", u->unit_id)); s.ok; pm_scan_next (&s)) {
        Pm__Inspection__DefectRecord *d;
        if (pm_scan_msg (&s, &pm__inspection__defect_record__descriptor, &d) != PM_OK || !d->defect)
            continue;
        const char *what;
        switch (d->defect->state) {
        case PM__V1__DEFECT_STATE__RECTIFYING: what = "rectifying"; break;
        case PM__V1__DEFECT_STATE__RECTIFIED: what = "rectified"; break;
        case PM__V1__DEFECT_STATE__VERIFIED: what = "verified"; break;
        default: what = *d->defect->reason ? "reopened" : "recorded"; break;
        }
        Pm__V1__Event *ev = inspection_event (ctx, pm_arena_printf (ctx->arena, "inspection.defect.%s", what),
                                              u->estate_id, u->unit_id);
        ev->payload_case = PM__V1__EVENT__PAYLOAD_DEFECT;
        ev->defect = d->defect;
        S_PUSH (ctx, *evs, n, ev);
    }
    pm_scan_end (&s);
    if (u->last_completed) {
        Pm__Inspection__RoundRecord *r = inspection_round_load (txn, u->unit_id, u->last_completed);
        if (r) {
            Pm__V1__Event *ev = inspection_event (
                ctx, r->state == PM__V1__ROUND_STATE__ROUND_PASSED ? "inspection.round.passed" : "inspection.round.failed",
                u->estate_id, u->unit_id);
            ev->payload_case = PM__V1__EVENT__PAYLOAD_ROUND;
            ev->round = inspection_round_event (ctx, txn, u, r);
            S_PUSH (ctx, *evs, n, ev);
        }
    }
    if (u->round_open) {
        Pm__Inspection__RoundRecord *r = inspection_round_load (txn, u->unit_id, u->rounds);
        if (r) {
            Pm__V1__Event *ev = inspection_event (ctx, "inspection.round.opened", u->estate_id, u->unit_id);
            ev->payload_case = PM__V1__EVENT__PAYLOAD_ROUND;
            ev->round = inspection_round_event (ctx, txn, u, r);
            S_PUSH (ctx, *evs, n, ev);
        }
    }
    if (u->accepted_ms) {
        Pm__V1__AcceptedWithDefects *a = pm_arena_alloc (ctx->arena, sizeof *a);
        pm__v1__accepted_with_defects__init (a);
        a->unit_id = u->unit_id;
        a->estate_id = u->estate_id;
        a->building = u->building;
        a->open_defects = u->defects_open;
        a->signature_ref = u->signature_ref;
        for (size_t i = 0; i < n; i++)
            if ((*evs)[i]->payload_case == PM__V1__EVENT__PAYLOAD_DEFECT
                && (*evs)[i]->defect->state != PM__V1__DEFECT_STATE__VERIFIED)
                S_PUSH (ctx, a->defect_ids, a->n_defect_ids, (*evs)[i]->defect->defect_id);
        Pm__V1__Event *ev = inspection_event (ctx, "inspection.accepted_with_defects", u->estate_id, u->unit_id);
        ev->payload_case = PM__V1__EVENT__PAYLOAD_ACCEPTED;
        ev->accepted = a;
        S_PUSH (ctx, *evs, n, ev);
    }
    if (u->due_round) {
        Pm__V1__ReinspectionDue *due = pm_arena_alloc (ctx->arena, sizeof *due);
        pm__v1__reinspection_due__init (due);
        due->unit_id = u->unit_id;
        due->estate_id = u->estate_id;
        due->building = u->building;
        due->round_no = u->due_round;
        for (size_t i = 0; i < n; i++)
            if ((*evs)[i]->payload_case == PM__V1__EVENT__PAYLOAD_DEFECT
                && (*evs)[i]->defect->state == PM__V1__DEFECT_STATE__RECTIFIED)
                S_PUSH (ctx, due->defect_ids, due->n_defect_ids, (*evs)[i]->defect->defect_id);
        Pm__V1__Event *ev = inspection_event (ctx, "inspection.reinspection.due", u->estate_id, u->unit_id);
        ev->payload_case = PM__V1__EVENT__PAYLOAD_REINSPECTION;
        ev->reinspection = due;
        S_PUSH (ctx, *evs, n, ev);
    }
    return n;
}

/* Pages resume after (unit id, index of the unit's last event sent). */
int
inspection_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap)
{
    size_t alen;
    const unsigned char *after = pm_snapshot_after (snap, &alen);
    const char *first_unit = NULL;
    uint32_t sent = 0;
    if (alen && pm_key_parse (after, alen, "su", &first_unit, &sent) == PM_OK)
        first_unit = pm_arena_strdup (ctx->arena, first_unit);
    else
        first_unit = NULL;
    pm_key_t from, k;
    pm_scan_t s;
    for (pm_scan_range (&s, txn, INSP_UNITS, first_unit ? pm_key (&from, "s", first_unit) : NULL, NULL); s.ok;
         pm_scan_next (&s)) {
        Pm__Inspection__UnitRecord *u;
        if (pm_scan_msg (&s, &pm__inspection__unit_record__descriptor, &u) != PM_OK)
            continue;
        bool resumed = first_unit && strcmp (u->unit_id, first_unit) == 0;
        Pm__V1__Event **evs;
        size_t n = s_unit_events (ctx, txn, u, &evs);
        for (size_t i = resumed ? sent + 1 : 0; i < n; i++) {
            pm_key (&k, "su", u->unit_id, (uint32_t) i);
            if (!pm_snapshot_add (snap, evs[i], k.buf, k.len)) {
                pm_scan_end (&s);
                return PM_OK;
            }
        }
    }
    pm_scan_end (&s);
    return PM_OK;
}
