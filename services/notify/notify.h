/* notify.h - the notify daemon. So far: its projection of owners' contacts,
 * built from intake's events, that reminders will be sent to.
 *
 * Tables: contacts "estate_id/building-unit" -> NotifyContactRecord
 * Meta:   "owners" -> owners across all units (kept with each upsert) */
#ifndef NOTIFY_H
#define NOTIFY_H

#include "pm/daemon.h"

enum { NOTIFY_CONTACTS = PM_DB_FIRST_DOMAIN };

extern const pm_daemon_spec_t notify_spec;
extern const pm_event_route_t notify_intake_events[];

int notify_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int notify_on_contact_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void notify_gauges (pm_ctx_t *ctx, pm_txn_t *txn);

#endif
