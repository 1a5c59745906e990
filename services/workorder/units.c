/* units.c - workorder's projection of intake's units and owners: which units
 * exist (an order for any other is NOT_FOUND), their owners (the reporter by
 * default), and whether their keys were handed (repairs open to the owner).
 *
 * The table is not emptied by a rebuild from intake: units are never removed
 * there, and a snapshot restates units as intake.unit.registered, which would
 * otherwise lose the keys-handed mark kept beside each unit. */
#include "workorder.h"
#include "pm/err.h"

#include <string.h>

Pm__Workorder__UnitRecord *
wo_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id)
{
    Pm__Workorder__UnitRecord *rec;
    pm_key_t k;
    if (pm_txn_get_msg (txn, WO_UNITS, pm_key (&k, "s", unit_id), &pm__workorder__unit_record__descriptor, &rec)
            != PM_OK
        || !rec->unit)
        return NULL;
    return rec;
}

/* Stores unit u (keeping the keys-handed mark unless keys is set). */
static int
s_put (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, Pm__V1__Unit *u, bool keys, int64_t keys_ms,
       pm_out_t *out)
{
    if (!*u->unit_id || !*u->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries a unit without unit_id or estate_id", ev->type);
    if (strlen (u->unit_id) > 200)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: unit_id longer than 200 bytes", ev->type);
    Pm__Workorder__UnitRecord *old = wo_unit_get (ctx, txn, u->unit_id);
    Pm__Workorder__UnitRecord rec = PM__WORKORDER__UNIT_RECORD__INIT;
    rec.unit = u;
    rec.keys_handed = keys || (old && old->keys_handed);
    rec.keys_handed_ms = keys ? keys_ms : old ? old->keys_handed_ms : 0;
    rec.from_event = ev->id;
    pm_key_t k;
    pm_txn_put_msg (txn, WO_UNITS, pm_key (&k, "s", u->unit_id), &rec.base);
    return PM__V1__STATUS__OK;
}

int
wo_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    return s_put (ctx, txn, ev, ev->unit, false, 0, out);
}

int
wo_on_keys_handed (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__KeysHanded *kh = ev->keys_handed;
    Pm__V1__Unit *u = kh->unit;
    if (!u || !*u->unit_id) { /* the event without its unit: mark the unit already known */
        Pm__Workorder__UnitRecord *old = wo_unit_get (ctx, txn, kh->unit_id);
        if (!old)
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                             "intake.keys.handed for unit '%s', which workorder does not know and the event does "
                             "not describe",
                             kh->unit_id);
        u = old->unit;
    }
    return s_put (ctx, txn, ev, u, true, kh->at_ms ? kh->at_ms : ev->at_ms, out);
}
