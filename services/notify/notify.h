/* notify.h - the notify daemon. So far: its projection of owners' contacts,
 * built from intake's events, that reminders will be sent to.
 *
 * Tables (keys from pm/key.h):
 *   contacts  s(unit_id) -> pm.notify.ContactRecord
 * Meta:       "owners"   -> owners across all units (kept with each upsert) */
#ifndef NOTIFY_H
#define NOTIFY_H

#include "pm/daemon.h"
#include "notify_store.pb-c.h"

enum { NOTIFY_CONTACTS = PM_DB_FIRST_DOMAIN, NOTIFY_NTABLES };

extern const pm_daemon_spec_t notify_spec;

/* contacts.c */
int notify_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int notify_on_contact_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void notify_gauges (pm_ctx_t *ctx, pm_txn_t *txn);

#endif
