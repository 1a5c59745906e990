/* sla.c - the SLA of each order as durable timers (pm/timer.h).
 *
 * An order has at most one timer per deadline, keyed by its id: kind
 * workorder.sla.respond (until the technician arrives) and
 * workorder.sla.complete (until DONE). Each is armed first for the warning
 * (payload "W", warn_before ahead of the deadline) and then for the breach
 * ("B", at the deadline). wo_sla_sync, called by every save, derives the one
 * wanted from the order's record and moves or cancels the stored one in the
 * same transaction; the record remembers where it is armed, so an unchanged
 * order writes nothing. The runtime keeps the timers by due time: with
 * 100,000 open orders, nothing is scanned until one is due.
 *
 * A breach emits workorder.sla.breached naming the team lead (the
 * escalation), puts the order in the `breached` queue, and counts in the
 * KPIs (a complete-by that passes before DONE is a late order for 及时率). */
#include "workorder.h"
#include "pm/err.h"
#include "pm/log.h"

#include <string.h>

/* One timer of the order: the wanted due time and payload, set or cancelled. */
static void
s_sync_one (pm_txn_t *txn, const char *kind, const char *key, int64_t want, char payload, int64_t *armed)
{
    if (want == *armed)
        return;
    if (want)
        pm_timer_set (txn, kind, key, want, &payload, 1);
    else
        pm_timer_cancel (txn, kind, key);
    *armed = want;
}

void
wo_sla_sync (pm_ctx_t *ctx, pm_txn_t *txn, wo_order_t *w)
{
    workorder_t *wo = ctx->app;
    Pm__Workorder__OrderRecord *rec = w->rec;
    const Pm__V1__WorkOrder *o = w->o;
    bool active = wo_is_active (o->state);
    int64_t want = 0;
    char p = 'B';
    if (active && o->state != PM__V1__ORDER_STATE__IN_PROGRESS && !o->responded_ms && o->respond_by_ms
        && rec->respond_stage < 2) {
        bool warn = rec->respond_stage == 0 && rec->respond_warn_ms;
        want = warn ? rec->respond_warn_ms : o->respond_by_ms;
        p = warn ? 'W' : 'B';
    }
    s_sync_one (txn, WO_TIMER_RESPOND, o->order_id, want, p, &rec->respond_timer_ms);
    want = 0;
    p = 'B';
    if (active && o->complete_by_ms && rec->complete_stage < 2) {
        bool warn = rec->complete_stage == 0 && rec->complete_warn_ms;
        want = warn ? rec->complete_warn_ms : o->complete_by_ms;
        p = warn ? 'W' : 'B';
    }
    s_sync_one (txn, WO_TIMER_COMPLETE, o->order_id, want, p, &rec->complete_timer_ms);
    want = o->state == PM__V1__ORDER_STATE__DONE && !rec->unsigned_overdue ? o->done_ms + wo->unsigned_after_ms : 0;
    s_sync_one (txn, WO_TIMER_UNSIGNED, o->order_id, want, 'U', &rec->unsigned_timer_ms);
}

static void
s_alert (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__WorkOrder *o, bool respond, const char *type)
{
    Pm__V1__SlaAlert *a = pm_arena_alloc (ctx->arena, sizeof *a);
    pm__v1__sla_alert__init (a);
    a->order_id = o->order_id;
    a->unit_id = o->unit_id;
    a->estate_id = o->estate_id;
    a->deadline = respond ? "respond" : "complete";
    a->due_ms = respond ? o->respond_by_ms : o->complete_by_ms;
    a->technician = o->technician;
    a->technician_name = o->technician_name;
    a->team = o->team;
    a->team_lead = o->team_lead;
    a->team_lead_name = (char *) wo_person_name (o->team_lead);
    a->category = o->category;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = (char *) type;
    ev.estate_id = o->estate_id;
    ev.unit_id = o->unit_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_SLA;
    ev.sla = a;
    pm_emit (out, txn, &ev);
}

int
wo_sla_breach (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, bool respond)
{
    Pm__Workorder__OrderRecord *rec = w->rec;
    Pm__V1__WorkOrder *o = w->o;
    if (!*o->team_lead) { /* never assigned: the lead covering the estate */
        o->team_lead = (char *) wo_team_lead (ctx, txn, o->team, o->estate_id);
        o->team_lead_name = (char *) wo_person_name (o->team_lead);
    }
    if (respond) {
        rec->respond_stage = 2;
        o->respond_breached = true;
        wo_kpi_t k = { .respond_breaches = 1 };
        wo_kpi_add (ctx, txn, o, o->respond_by_ms ? o->respond_by_ms : ctx->now_ms, &k);
    }
    else {
        rec->complete_stage = 2;
        o->complete_breached = true;
        int64_t at = o->complete_by_ms ? o->complete_by_ms : ctx->now_ms;
        wo_kpi_t k = { .complete_breaches = 1, .due = !rec->due_counted };
        wo_kpi_add (ctx, txn, o, at, &k);
        rec->due_counted = true;
    }
    s_alert (ctx, txn, out, o, respond, "workorder.sla.breached");
    pm_info ("%s: %s-by %s breached; escalated to %s", o->order_id, respond ? "respond" : "complete",
             wo_local_time (ctx->arena, ctx->app, respond ? o->respond_by_ms : o->complete_by_ms),
             *o->team_lead ? o->team_lead : "(no team lead on file)");
    return txn->err;
}

static int
s_fire (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen, pm_out_t *out, bool respond)
{
    wo_order_t w;
    const char *estate;
    uint64_t n;
    if (!wo_order_id_parse (ctx->arena, key, &estate, &n) || wo_order_load_key (ctx, txn, estate, n, &w) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__OK, "%s: no such order any more", key);
    Pm__Workorder__OrderRecord *rec = w.rec;
    Pm__V1__WorkOrder *o = w.o;
    *(respond ? &rec->respond_timer_ms : &rec->complete_timer_ms) = 0; /* the runtime removed it */
    uint32_t *stage = respond ? &rec->respond_stage : &rec->complete_stage;
    bool relevant = wo_is_active (o->state)
                    && (!respond || (o->state != PM__V1__ORDER_STATE__IN_PROGRESS && !o->responded_ms));
    char what = plen ? *(const char *) payload : 'B';
    if (what == 'W' && ctx->now_ms >= (respond ? o->respond_by_ms : o->complete_by_ms))
        what = 'B'; /* the clock jumped past the deadline too: the breach says it all */
    if (relevant && what == 'W' && *stage == 0) {
        *stage = 1;
        s_alert (ctx, txn, out, o, respond, "workorder.sla.warning");
    }
    else if (relevant && what == 'B' && *stage < 2)
        wo_sla_breach (ctx, txn, out, &w, respond);
    wo_order_save (ctx, txn, out, &w, NULL);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s %s", key, respond ? "respond" : "complete",
                     what == 'W' ? "warning" : "breach");
}

int
wo_on_respond_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen, pm_out_t *out)
{
    return s_fire (ctx, txn, key, payload, plen, out, true);
}

int
wo_on_complete_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                      pm_out_t *out)
{
    return s_fire (ctx, txn, key, payload, plen, out, false);
}

int
wo_on_unsigned_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                      pm_out_t *out)
{
    wo_order_t w;
    const char *estate;
    uint64_t n;
    if (!wo_order_id_parse (ctx->arena, key, &estate, &n) || wo_order_load_key (ctx, txn, estate, n, &w) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__OK, "%s: no such order any more", key);
    w.rec->unsigned_timer_ms = 0;
    if (w.o->state == PM__V1__ORDER_STATE__DONE)
        w.rec->unsigned_overdue = true;
    wo_order_save (ctx, txn, out, &w, NULL);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: done and unsigned", key);
}
