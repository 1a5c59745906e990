/* units.c - billing's projection of unit areas, from intake.unit.* events. */
#include "billing.h"

#include <string.h>

int
billing_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__Unit *u = ev->unit;
    if (!*u->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries a unit without unit_id", ev->type);
    if (u->area_cm2 <= 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit %s: area_cm2 %lld is not positive", u->unit_id,
                         (long long) u->area_cm2);
    Pm__Billing__UnitRecord rec = PM__BILLING__UNIT_RECORD__INIT;
    rec.estate_id = u->estate_id;
    rec.area_cm2 = u->area_cm2;
    rec.from_event = ev->id;
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_UNITS, pm_key (&k, "s", u->unit_id), &rec.base);
    return PM__V1__STATUS__OK;
}

int
billing_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->billing_unit_get->unit_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building/unit, e.g. E01/3/1201");
    Pm__Billing__UnitRecord *rec;
    pm_key_t k;
    int rc = pm_txn_get_msg (txn, BILLING_UNITS, pm_key (&k, "s", id), &pm__billing__unit_record__descriptor, &rec);
    if (rc == PM_ENOTFOUND)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: billing knows no unit '%s' (not imported, or intake's event not yet applied)", id);
    if (rc != PM_OK)
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
    pm_gauge (ctx->metrics, "billing_units", NULL, "Units in billing's projection of areas",
              (double) pm_txn_count (txn, BILLING_UNITS));
}
