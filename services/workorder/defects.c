/* defects.c - inspection's defects become rectification orders (整改):
 *
 *   inspection.defect.recorded  one order per defect (source DEFECT, linked by
 *                               defect_id), due by the defect's own deadline;
 *   inspection.defect.verified  the inspector's verification is its sign-off:
 *                               the order is confirmed and archived;
 *   inspection.defect.reopened  the rectification failed: back to its
 *                               technician (counts against 合格率);
 *   inspection.defect.overdue   escalated: urgent, and breached now if its
 *                               own complete-by timer has not said so yet.
 *
 * Each is idempotent on the defect's order, so a replayed or restated
 * (snapshot) defect changes nothing twice. */
#include "workorder.h"
#include "pm/err.h"

#include <string.h>

/* The defect's order, or PM_ENOTFOUND. */
static int
s_order_of (pm_ctx_t *ctx, pm_txn_t *txn, const char *defect_id, wo_order_t *w)
{
    pm_key_t k;
    MDB_val v;
    if (pm_txn_get_key (txn, WO_BY_DEFECT, pm_key (&k, "s", defect_id), &v) != PM_OK)
        return PM_ENOTFOUND;
    char *id = pm_arena_alloc (ctx->arena, v.mv_size + 1);
    memcpy (id, v.mv_data, v.mv_size);
    const char *estate;
    uint64_t n;
    if (!wo_order_id_parse (ctx->arena, id, &estate, &n))
        return PM_EPROTO;
    return wo_order_load_key (ctx, txn, estate, n, w);
}

static int
s_check (const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__Defect *d = ev->defect;
    if (!*d->defect_id || !*d->unit_id || !*d->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries a defect without defect_id, unit_id or estate_id",
                         ev->type);
    if (strlen (d->defect_id) > 200 || strlen (d->unit_id) > 200 || strchr (d->estate_id, '/'))
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: defect_id or unit_id too long, or estate_id with '/'",
                         ev->type);
    return PM__V1__STATUS__OK;
}

int
wo_on_defect_recorded (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    workorder_t *wo = ctx->app;
    const Pm__V1__Defect *d = ev->defect;
    int st = s_check (ev, out);
    if (st != PM__V1__STATUS__OK)
        return st;
    wo_order_t w;
    if (s_order_of (ctx, txn, d->defect_id, &w) == PM_OK)
        return pm_reply (out, PM__V1__STATUS__OK, "defect %s has its order %s already", d->defect_id, w.o->order_id);
    if (d->state == PM__V1__DEFECT_STATE__VERIFIED)
        return pm_reply (out, PM__V1__STATUS__OK, "defect %s is verified already: no order", d->defect_id);
    const wo_category_t *c = wo_category_of_kind (wo, WO_KIND_DEFECT);
    wo_order_new (ctx, txn, d->estate_id, &w);
    Pm__V1__WorkOrder *o = w.o;
    o->source = PM__V1__ORDER_SOURCE__DEFECT;
    o->defect_id = d->defect_id;
    o->unit_id = d->unit_id;
    o->building = d->building;
    o->category = c->id;
    o->skill = (char *) wo_defect_skill (wo, d->category);
    o->description = pm_arena_printf (ctx->arena, "%s%s%s: %s%s%s", d->room, *d->room ? " " : "", d->category,
                                      d->description, *d->location ? " @ " : "", d->location);
    o->channel = "inspection";
    o->reporter = d->recorded_by;
    o->priority = d->severity == PM__V1__SEVERITY__CRITICAL ? "urgent" : "normal";
    wo_deadlines (wo, c, d->severity == PM__V1__SEVERITY__CRITICAL, o->created_ms, 0, 0, d->deadline_ms,
                  &o->respond_by_ms, &o->complete_by_ms);
    if (c->warn_before_ms > 0) {
        if (o->respond_by_ms && o->respond_by_ms - c->warn_before_ms > ctx->now_ms)
            w.rec->respond_warn_ms = o->respond_by_ms - c->warn_before_ms;
        if (o->complete_by_ms && o->complete_by_ms - c->warn_before_ms > ctx->now_ms)
            w.rec->complete_warn_ms = o->complete_by_ms - c->warn_before_ms;
    }
    wo_kpi_t k = { .created = 1 };
    wo_kpi_add (ctx, txn, o, ctx->now_ms, &k);
    wo_emit_order (out, txn, o, "workorder.order.created");
    wo_dispatch (ctx, txn, out, &w); /* saves it: assigned, or waiting */
    return pm_reply (out, PM__V1__STATUS__OK, "defect %s: order %s (%s)", d->defect_id, o->order_id,
                     wo_state_name (o->state));
}

int
wo_on_defect_verified (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__Defect *d = ev->defect;
    int st = s_check (ev, out);
    if (st != PM__V1__STATUS__OK)
        return st;
    wo_order_t w;
    if (s_order_of (ctx, txn, d->defect_id, &w) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__OK, "defect %s has no order: nothing to confirm", d->defect_id);
    Pm__V1__WorkOrder *o = w.o;
    if (o->state == PM__V1__ORDER_STATE__CONFIRMED || o->state == PM__V1__ORDER_STATE__ARCHIVED
        || o->state == PM__V1__ORDER_STATE__CANCELLED)
        return pm_reply (out, PM__V1__STATUS__OK, "%s is %s already", o->order_id, wo_state_name (o->state));
    if (wo_is_active (o->state)) /* verified before its DONE reached us: the rectification is done */
        wo_mark_done (ctx, txn, &w);
    wo_confirm_and_archive (ctx, txn, out, &w, 0, "inspection");
    return pm_reply (out, PM__V1__STATUS__OK, "%s confirmed by the verification of defect %s and archived",
                     o->order_id, d->defect_id);
}

int
wo_on_defect_reopened (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    workorder_t *wo = ctx->app;
    const Pm__V1__Defect *d = ev->defect;
    int st = s_check (ev, out);
    if (st != PM__V1__STATUS__OK)
        return st;
    wo_order_t w;
    if (s_order_of (ctx, txn, d->defect_id, &w) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__OK, "defect %s has no order to reopen", d->defect_id);
    Pm__V1__WorkOrder *o = w.o;
    if (o->state != PM__V1__ORDER_STATE__DONE && o->state != PM__V1__ORDER_STATE__CONFIRMED
        && o->state != PM__V1__ORDER_STATE__ARCHIVED)
        return pm_reply (out, PM__V1__STATUS__OK, "%s is %s: nothing to reopen", o->order_id, wo_state_name (o->state));
    if (d->deadline_ms > ctx->now_ms && d->deadline_ms != o->complete_by_ms) {
        /* a new rectification deadline: a new complete-by, with its warning */
        const wo_category_t *c = wo_category_of_kind (wo, WO_KIND_DEFECT);
        o->complete_by_ms = d->deadline_ms;
        w.rec->complete_stage = 0;
        w.rec->complete_warn_ms = c->warn_before_ms > 0 && d->deadline_ms - c->warn_before_ms > ctx->now_ms
                                      ? d->deadline_ms - c->warn_before_ms
                                      : 0;
    }
    wo_send_back (ctx, txn, out, &w, *d->reason ? d->reason : "reopened at re-inspection",
                  "workorder.order.reopened");
    return pm_reply (out, PM__V1__STATUS__OK, "%s reopened (defect %s): %s", o->order_id, d->defect_id,
                     wo_state_name (o->state));
}

int
wo_on_defect_overdue (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__Defect *d = ev->defect;
    int st = s_check (ev, out);
    if (st != PM__V1__STATUS__OK)
        return st;
    wo_order_t w;
    if (s_order_of (ctx, txn, d->defect_id, &w) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__OK, "defect %s has no order to escalate", d->defect_id);
    Pm__V1__WorkOrder *o = w.o;
    if (!wo_is_active (o->state))
        return pm_reply (out, PM__V1__STATUS__OK, "%s is %s: no escalation", o->order_id, wo_state_name (o->state));
    o->priority = "urgent";
    if (w.rec->complete_stage < 2)
        wo_sla_breach (ctx, txn, out, &w, false);
    wo_order_save (ctx, txn, out, &w, NULL);
    return pm_reply (out, PM__V1__STATUS__OK, "%s escalated to %s: defect %s is overdue", o->order_id,
                     *o->team_lead ? o->team_lead : "(no team lead)", d->defect_id);
}
