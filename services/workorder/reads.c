/* reads.c - what workorder answers without writing: one order, one unit's
 * orders (for pmctl unit), its queues (ops.queues) and its snapshot (every
 * order as the WorkOrder event of its state, so inspection or notify can
 * rebuild from it). */
#include "workorder.h"
#include "pm/err.h"

#include <string.h>

const char *
wo_state_event (int state)
{
    switch (state) {
    case PM__V1__ORDER_STATE__ASSIGNED: return "workorder.order.assigned";
    case PM__V1__ORDER_STATE__IN_PROGRESS: return "workorder.order.started";
    case PM__V1__ORDER_STATE__DONE: return "workorder.order.done";
    case PM__V1__ORDER_STATE__CONFIRMED: return "workorder.order.confirmed";
    case PM__V1__ORDER_STATE__ARCHIVED: return "workorder.order.archived";
    case PM__V1__ORDER_STATE__CANCELLED: return "workorder.order.cancelled";
    default: return "workorder.order.created";
    }
}

int
wo_on_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, req->workorder_get->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    wo_reply_order (ctx, out, w.o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s %s (%s, %s)%s%s", w.o->order_id, wo_state_name (w.o->state),
                     w.o->category, w.o->unit_id, *w.rec->waiting ? ": " : "", w.rec->waiting);
}

int
wo_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->workorder_unit_get->unit_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/3-1201");
    Pm__V1__WorkorderUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__workorder_unit_get_reply__init (r);
    r->unit_id = (char *) id;
    Pm__Workorder__UnitRecord *u = wo_unit_get (ctx, txn, id);
    r->known = u != NULL;
    r->keys_handed = u && u->keys_handed;
    size_t cap = 0;
    pm_scan_t s;
    pm_key_t k;
    for (pm_scan_prefix (&s, txn, WO_BY_UNIT, pm_key (&k, "s", id)); s.ok; pm_scan_next (&s)) {
        uint64_t n;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &n) != PM_OK)
            continue;
        char *estate = pm_arena_alloc (ctx->arena, s.val.mv_size + 1);
        memcpy (estate, s.val.mv_data, s.val.mv_size);
        wo_order_t w;
        if (wo_order_load_key (ctx, txn, estate, n, &w) != PM_OK)
            continue;
        if (r->n_orders == cap) {
            cap = cap ? cap * 2 : 8;
            Pm__V1__WorkOrder **nv = pm_arena_alloc (ctx->arena, cap * sizeof *nv);
            if (r->n_orders)
                memcpy (nv, r->orders, r->n_orders * sizeof *nv);
            r->orders = nv;
        }
        r->orders[r->n_orders++] = w.o;
        r->open_orders += wo_is_active (w.o->state);
    }
    pm_scan_end (&s);
    if (!u && !r->n_orders)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: workorder knows no unit '%s' and has no orders for it (expected e.g. E01/3-1201)",
                         id);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %zu order%s, %u open%s", id, r->n_orders,
                     r->n_orders == 1 ? "" : "s", r->open_orders,
                     !u ? " (unit not in workorder's projection)" : r->keys_handed ? "" : "; keys not handed yet");
}

/* --- queues --------------------------------------------------------------------------------- */

static const struct {
    const char *name, *description;
} s_queues[WO_NQUEUES] = {
    [WO_QB_UNASSIGNED] = { "unassigned",
                           "orders no technician has yet: assign them (workorder.assign), or they wait for a claim or "
                           "for a fit technician to come on shift" },
    [WO_QB_WARNED] = { "about_to_breach",
                       "orders whose respond-by or complete-by is near: hurry the technician, or reassign" },
    [WO_QB_BREACHED] = { "breached",
                         "orders past a respond-by or complete-by and not yet done: escalated to the team lead" },
    [WO_QB_UNSIGNED] = { "unsigned",
                         "orders DONE for longer than unsigned_after without the owner's sign-off (or, for a defect, "
                         "the re-inspection): call the owner to confirm or reject" },
    [WO_QB_REJECTED] = { "rejected_twice",
                         "orders the owner rejected (or inspection reopened) twice or more: a team lead should look" },
};

static Pm__V1__QueueItem *
s_item (pm_ctx_t *ctx, int q, const wo_order_t *w, int64_t since)
{
    workorder_t *wo = ctx->app;
    const Pm__V1__WorkOrder *o = w->o;
    const Pm__Workorder__OrderRecord *rec = w->rec;
    const char *reason;
    switch (q) {
    case WO_QB_UNASSIGNED: reason = *rec->waiting ? rec->waiting : "waits for a technician"; break;
    case WO_QB_WARNED:
        reason = rec->respond_stage == 1 && !o->responded_ms
                     ? pm_arena_printf (ctx->arena, "respond by %s", wo_local_time (ctx->arena, wo, o->respond_by_ms))
                     : pm_arena_printf (ctx->arena, "complete by %s",
                                        wo_local_time (ctx->arena, wo, o->complete_by_ms));
        break;
    case WO_QB_BREACHED:
        reason = pm_arena_printf (ctx->arena, "%s-by %s passed; escalated to %s",
                                  rec->complete_stage == 2 ? "complete" : "respond",
                                  wo_local_time (ctx->arena, wo,
                                                 rec->complete_stage == 2 ? o->complete_by_ms : o->respond_by_ms),
                                  *o->team_lead ? o->team_lead : "(no team lead on file)");
        break;
    case WO_QB_UNSIGNED:
        reason = o->source == PM__V1__ORDER_SOURCE__DEFECT
                     ? pm_arena_printf (ctx->arena, "DONE since %s, waiting for the re-inspection",
                                        wo_local_time (ctx->arena, wo, o->done_ms))
                     : pm_arena_printf (ctx->arena, "DONE since %s and not signed by the owner",
                                        wo_local_time (ctx->arena, wo, o->done_ms));
        break;
    default:
        reason = pm_arena_printf (ctx->arena, "rejected %u times, last: %s", o->rejections, o->reason);
        break;
    }
    Pm__V1__QueueItem *it = pm_queue_item (ctx, o->order_id, o->estate_id, o->unit_id, since, reason);
    pm_queue_field (ctx, it, "state", "%s", wo_state_name (o->state));
    pm_queue_field (ctx, it, "category", "%s", o->category);
    if (*o->technician)
        pm_queue_field (ctx, it, "technician", "%s", o->technician);
    if (*o->team_lead)
        pm_queue_field (ctx, it, "team_lead", "%s", o->team_lead);
    if (o->respond_by_ms)
        pm_queue_field (ctx, it, "respond_by", "%s", wo_local_time (ctx->arena, wo, o->respond_by_ms));
    if (o->complete_by_ms)
        pm_queue_field (ctx, it, "complete_by", "%s", wo_local_time (ctx->arena, wo, o->complete_by_ms));
    if (*o->defect_id)
        pm_queue_field (ctx, it, "defect_id", "%s", o->defect_id);
    return it;
}

void
wo_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    for (int q = 0; q < WO_NQUEUES; q++) {
        Pm__V1__Queue *queue = pm_queue_new (ctx, r, s_queues[q].name, s_queues[q].description, limit);
        queue->count = pm_txn_count (txn, WO_Q_UNASSIGNED + q);
        uint32_t n = 0;
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, WO_Q_UNASSIGNED + q, NULL); s.ok && n < limit; pm_scan_next (&s)) {
            const char *estate;
            uint64_t num;
            wo_order_t w;
            if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", &estate, &num) != PM_OK
                || wo_order_load_key (ctx, txn, pm_arena_strdup (ctx->arena, estate), num, &w) != PM_OK)
                continue;
            int64_t since = s.val.mv_size == 8 ? (int64_t) pm_be_u64 (s.val.mv_data) : 0;
            pm_queue_add (queue, s_item (ctx, q, &w, since));
            n++;
        }
        pm_scan_end (&s);
    }
}

/* --- snapshot --------------------------------------------------------------------------------- */

int
wo_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap)
{
    size_t alen;
    const void *after = pm_snapshot_after (snap, &alen);
    pm_scan_t s;
    for (pm_scan_after (&s, txn, WO_ORDERS, after, alen); s.ok; pm_scan_next (&s)) {
        Pm__Workorder__OrderRecord *rec;
        if (pm_scan_msg (&s, &pm__workorder__order_record__descriptor, &rec) != PM_OK || !rec->order)
            continue;
        Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
        pm__v1__event__init (ev);
        ev->type = (char *) wo_state_event (rec->order->state);
        ev->estate_id = rec->order->estate_id;
        ev->unit_id = rec->order->unit_id;
        ev->payload_case = PM__V1__EVENT__PAYLOAD_ORDER;
        ev->order = rec->order;
        if (!pm_snapshot_add (snap, ev, s.key.mv_data, s.key.mv_size))
            break;
    }
    pm_scan_end (&s);
    return PM_OK;
}
