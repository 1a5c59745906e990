/* units.c - billing's projection of unit areas, from intake.unit.* events. */
#include "billing.h"

#include <string.h>

int
billing_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    if (ev->payload_case != PM__V1__EVENT__PAYLOAD_UNIT || !*ev->unit->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries no unit payload", ev->type);
    const Pm__V1__Unit *u = ev->unit;
    if (u->area_cm2 <= 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit %s: area_cm2 %lld is not positive", u->unit_id,
                         (long long) u->area_cm2);
    Pm__V1__BillingUnitRecord rec = PM__V1__BILLING_UNIT_RECORD__INIT;
    rec.estate_id = u->estate_id;
    rec.area_cm2 = u->area_cm2;
    rec.from_event = ev->id;
    size_t len = pm__v1__billing_unit_record__get_packed_size (&rec);
    void *buf = pm_arena_alloc (ctx->arena, len);
    pm__v1__billing_unit_record__pack (&rec, buf);
    pm_txn_put (txn, BILLING_UNITS, u->unit_id, strlen (u->unit_id), buf, len);
    return PM__V1__STATUS__OK;
}

int
billing_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->billing_unit_get->unit_id;
    MDB_val v;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/3-1201");
    if (pm_txn_get (txn, BILLING_UNITS, id, strlen (id), &v) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "unit_id: billing knows no unit '%s' (not imported, or intake's event not yet applied)", id);
    Pm__V1__BillingUnitRecord *rec = pm__v1__billing_unit_record__unpack (pm_arena_pb (ctx->arena), v.mv_size, v.mv_data);
    if (!rec)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: stored record does not decode", id);
    Pm__V1__BillingUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_unit_get_reply__init (r);
    r->unit_id = pm_arena_strdup (ctx->arena, id);
    r->estate_id = rec->estate_id;
    r->area_cm2 = rec->area_cm2;
    r->from_event = rec->from_event;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %lld.%02lld m2", id, (long long) (rec->area_cm2 / 100),
                     (long long) (rec->area_cm2 % 100));
}

void
billing_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_gauge (ctx->metrics, "billing_units", NULL, "Units in billing's projection of areas", (double) pm_txn_count (txn, BILLING_UNITS));
}

static const char *const s_tables[] = { "units", NULL };

static const pm_route_t s_routes[] = {
    { "billing.unit.get", billing_on_unit_get, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

const pm_event_route_t billing_intake_events[] = {
    { "intake.unit.", billing_on_unit },
    { NULL, NULL },
};

const pm_daemon_spec_t billing_spec = {
    .name = "billing",
    .tables = s_tables,
    .routes = s_routes,
    .gauges = billing_gauges,
};
