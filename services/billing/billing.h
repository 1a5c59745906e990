/* billing.h - the billing daemon. So far: its projection of unit areas, built
 * from intake's events (the base of 物业费 = area x rate x months).
 *
 * Tables (keys from pm/key.h):
 *   units   s(unit_id) -> pm.billing.UnitRecord */
#ifndef BILLING_H
#define BILLING_H

#include "pm/daemon.h"
#include "billing_store.pb-c.h"

enum { BILLING_UNITS = PM_DB_FIRST_DOMAIN, BILLING_NTABLES };

extern const pm_daemon_spec_t billing_spec;

/* units.c */
int billing_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int billing_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void billing_gauges (pm_ctx_t *ctx, pm_txn_t *txn);

#endif
