/* units.c - the units inspection knows, and when their inspection opens.
 *
 * Units come from intake's events (intake.unit.registered / .updated; the
 * CheckedIn payload carries the unit too). An inspection opens when
 * intake.unit.checked_in arrives, or by inspection.open for a unit inspected
 * before its owner checks in. An open unit that no round has visited after
 * [inspection] uninspected_after waits in ops.queues `uninspected` (a durable
 * timer per unit, cancelled by the first round). */
#include "inspection.h"
#include "pm/log.h"

#include <string.h>

const pm_key_t *
inspection_unit_key (pm_key_t *k, const char *unit_id)
{
    return pm_key (k, "s", unit_id);
}

Pm__Inspection__UnitRecord *
inspection_unit_load (pm_txn_t *txn, const char *unit_id)
{
    Pm__Inspection__UnitRecord *u;
    pm_key_t k;
    if (!*unit_id
        || pm_txn_get_msg (txn, INSP_UNITS, inspection_unit_key (&k, unit_id), &pm__inspection__unit_record__descriptor,
                           &u)
               != PM_OK)
        return NULL;
    return u;
}

void
inspection_unit_save (pm_txn_t *txn, const Pm__Inspection__UnitRecord *u)
{
    pm_key_t k;
    pm_txn_put_msg (txn, INSP_UNITS, inspection_unit_key (&k, u->unit_id), &u->base);
}

Pm__V1__InspectionStatus
inspection_unit_status (const Pm__Inspection__UnitRecord *u)
{
    if (u->passed_ms)
        return PM__V1__INSPECTION_STATUS__INSPECTION_PASSED;
    if (!u->opened_ms)
        return PM__V1__INSPECTION_STATUS__INSPECTION_NOT_OPENED;
    if (u->round_open)
        return PM__V1__INSPECTION_STATUS__INSPECTION_IN_ROUND;
    if (u->rounds == 0)
        return PM__V1__INSPECTION_STATUS__INSPECTION_AWAITING;
    if (u->due_round)
        return PM__V1__INSPECTION_STATUS__INSPECTION_REINSPECTION_DUE;
    return PM__V1__INSPECTION_STATUS__INSPECTION_FAILED;
}

const char *
inspection_status_name (Pm__V1__InspectionStatus s)
{
    switch (s) {
    case PM__V1__INSPECTION_STATUS__INSPECTION_NOT_OPENED: return "NOT_OPENED";
    case PM__V1__INSPECTION_STATUS__INSPECTION_AWAITING: return "AWAITING (open, no round yet)";
    case PM__V1__INSPECTION_STATUS__INSPECTION_IN_ROUND: return "IN_ROUND";
    case PM__V1__INSPECTION_STATUS__INSPECTION_FAILED: return "FAILED (defects being rectified)";
    case PM__V1__INSPECTION_STATUS__INSPECTION_REINSPECTION_DUE: return "REINSPECTION_DUE";
    case PM__V1__INSPECTION_STATUS__INSPECTION_PASSED: return "PASSED";
    default: return "?";
    }
}

/* The unit from an intake payload, created when new (counted in the KPIs);
 * *changed when it must be saved. */
static Pm__Inspection__UnitRecord *
s_upsert (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Unit *unit, bool *changed)
{
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, unit->unit_id);
    *changed = !u || !u->registered;
    if (!u) {
        u = pm_arena_alloc (ctx->arena, sizeof *u);
        pm__inspection__unit_record__init (u);
        u->unit_id = unit->unit_id;
        u->estate_id = unit->estate_id;
        u->building = unit->building;
        inspection_kpi_add (txn, u->estate_id, u->building, "units", 1);
    }
    /* The building is fixed at first sight: KPI counters were kept under it
     * (a unit id names its building, so intake never moves a unit). */
    u->registered = true;
    return u;
}

static int
s_check_unit (pm_out_t *out, const Pm__V1__Event *ev, const Pm__V1__Unit *unit)
{
    if (!*unit->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries a unit without unit_id", ev->type);
    if (!*unit->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: unit %s has no estate_id", ev->type, unit->unit_id);
    return PM__V1__STATUS__OK;
}

int
inspection_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    int st = s_check_unit (out, ev, ev->unit);
    if (st != PM__V1__STATUS__OK)
        return st;
    bool changed;
    Pm__Inspection__UnitRecord *u = s_upsert (ctx, txn, ev->unit, &changed);
    if (changed)
        inspection_unit_save (txn, u);
    return PM__V1__STATUS__OK;
}

/* Opens u's inspection now (the caller saves u). */
static void
s_open (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Inspection__UnitRecord *u, const char *by)
{
    const inspection_t *in = ctx->app;
    u->opened_ms = ctx->now_ms;
    u->opened_by = (char *) by;
    inspection_kpi_add (txn, u->estate_id, u->building, "opened", 1);
    if (u->rounds == 0)
        pm_timer_set (txn, INSP_TIMER_UNINSPECTED, u->unit_id, ctx->now_ms + in->uninspected_ms, NULL, 0);
}

int
inspection_on_checked_in (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__CheckedIn *c = ev->checked_in;
    const char *unit_id = *c->unit_id ? c->unit_id : ev->unit_id;
    Pm__Inspection__UnitRecord *u;
    if (c->unit && *c->unit->unit_id) {
        int st = s_check_unit (out, ev, c->unit);
        if (st != PM__V1__STATUS__OK)
            return st;
        bool changed;
        u = s_upsert (ctx, txn, c->unit, &changed);
    } else {
        u = inspection_unit_load (txn, unit_id);
        if (!u)
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                             "%s: unit '%s' is unknown to inspection and the event carries no unit", ev->type, unit_id);
    }
    u->checked_in_ms = c->at_ms ? c->at_ms : ev->at_ms;
    if (!u->opened_ms)
        s_open (ctx, txn, u, ev->id);
    inspection_unit_save (txn, u);
    return PM__V1__STATUS__OK;
}

int
inspection_on_open (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *unit_id = req->inspection_open->unit_id;
    if (!*unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected a unit such as E01/3/2-301");
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, unit_id);
    if (!u)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: inspection knows no unit '%s' (not registered with intake, or intake's event not "
                         "applied yet); expected a unit such as E01/3/2-301",
                         unit_id);
    if (u->opened_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "unit %s: inspection already open since %s (by %s); %s", unit_id,
                         inspection_time (ctx, u->opened_ms), u->opened_by,
                         u->rounds ? "its rounds go on with inspection.round.start"
                                   : "start its first round with inspection.round.start");
    const char *by = pm_arena_printf (ctx->arena, "%s (inspection.open)", *req->actor ? req->actor : "?");
    s_open (ctx, txn, u, by);
    inspection_unit_save (txn, u);
    Pm__V1__InspectionOpenReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_open_reply__init (r);
    r->unit_id = u->unit_id;
    r->opened_ms = u->opened_ms;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "unit %s: inspection open; start a round with inspection.round.start",
                     unit_id);
}

int
inspection_on_uninspected (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                           pm_out_t *out)
{
    const inspection_t *in = ctx->app;
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, key);
    if (!u || u->rounds > 0 || !u->opened_ms)
        return PM__V1__STATUS__OK; /* inspected meanwhile */
    int64_t h = in->uninspected_ms / 3600000;
    const char *span = h >= 24 && h % 24 == 0 ? pm_arena_printf (ctx->arena, "%lld day(s)", (long long) (h / 24))
                                              : pm_arena_printf (ctx->arena, "%lld hour(s)", (long long) h);
    Pm__V1__QueueItem *item =
        pm_queue_item (ctx, u->unit_id, u->estate_id, u->unit_id, u->opened_ms,
                       pm_arena_printf (ctx->arena,
                                        "open since %s and not inspected after %s: send an inspector "
                                        "(inspection.round.start)",
                                        inspection_time (ctx, u->opened_ms), span));
    if (u->checked_in_ms)
        pm_queue_field (ctx, item, "checked_in", "%s", inspection_time (ctx, u->checked_in_ms));
    pm_queue_field (ctx, item, "building", "%s", u->building);
    pm_key_t k;
    pm_queue_put (txn, INSP_Q_UNINSPECTED, pm_key (&k, "s", u->unit_id), item);
    return PM__V1__STATUS__OK;
}
