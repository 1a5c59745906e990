/* contacts.c - notify's projection of owners' contacts, from intake.unit.*
 * events. When a unit's contacts arrive, the events that waited for them
 * (an invoice for a unit notify did not know yet) are planned (plan.c). */
#include "notify.h"

#include <string.h>

Pm__Notify__ContactRecord *
notify_contacts (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id)
{
    pm_key_t k;
    Pm__Notify__ContactRecord *rec;
    if (!unit_id || !*unit_id
        || pm_txn_get_msg (txn, NOTIFY_CONTACTS, pm_key (&k, "s", unit_id), &pm__notify__contact_record__descriptor, &rec)
               != PM_OK)
        return NULL;
    return rec;
}

int
notify_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__Unit *u = ev->unit;
    if (!*u->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries a unit without unit_id", ev->type);
    pm_key_t k;
    pm_key (&k, "s", u->unit_id);
    Pm__Notify__ContactRecord *old;
    size_t before = pm_txn_get_msg (txn, NOTIFY_CONTACTS, &k, &pm__notify__contact_record__descriptor, &old) == PM_OK
                        ? old->n_owners
                        : 0;
    Pm__Notify__ContactRecord rec = PM__NOTIFY__CONTACT_RECORD__INIT;
    rec.estate_id = u->estate_id;
    rec.n_owners = u->n_owners;
    rec.owners = u->owners;
    rec.from_event = ev->id;
    rec.estate_name = u->estate_name;
    rec.building = u->building;
    rec.unit = u->unit;
    pm_txn_put_msg (txn, NOTIFY_CONTACTS, &k, &rec.base);
    uint64_t owners = pm_meta_get_u64 (txn, "owners");
    pm_meta_put_u64 (txn, "owners", owners + u->n_owners - before);
    if (u->n_owners)
        notify_plan_awaiting (ctx, txn, u->unit_id, out);
    return PM__V1__STATUS__OK;
}

int
notify_on_contact_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->notify_contact_get->unit_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building/unit, e.g. E01/3/1201");
    Pm__Notify__ContactRecord *rec;
    pm_key_t k;
    int rc = pm_txn_get_msg (txn, NOTIFY_CONTACTS, pm_key (&k, "s", id), &pm__notify__contact_record__descriptor, &rec);
    if (rc == PM_ENOTFOUND)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: notify has no contacts for '%s' (not imported, or intake's event not yet applied)", id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: stored record does not decode", id);
    Pm__V1__NotifyContactGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__notify_contact_get_reply__init (r);
    r->unit_id = pm_arena_strdup (ctx->arena, id);
    r->estate_id = rec->estate_id;
    r->owners = rec->owners;
    r->n_owners = rec->n_owners;
    r->from_event = rec->from_event;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %zu owner(s)", id, rec->n_owners);
}
