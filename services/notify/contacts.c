/* contacts.c - notify's projection of owners' contacts, from intake.unit.* events. */
#include "notify.h"

#include <string.h>

int
notify_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    if (ev->payload_case != PM__V1__EVENT__PAYLOAD_UNIT || !*ev->unit->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries no unit payload", ev->type);
    const Pm__V1__Unit *u = ev->unit;
    size_t before = 0;
    MDB_val v;
    if (pm_txn_get (txn, NOTIFY_CONTACTS, u->unit_id, strlen (u->unit_id), &v) == PM_OK) {
        Pm__V1__NotifyContactRecord *old =
            pm__v1__notify_contact_record__unpack (pm_arena_pb (ctx->arena), v.mv_size, v.mv_data);
        before = old ? old->n_owners : 0;
    }
    Pm__V1__NotifyContactRecord rec = PM__V1__NOTIFY_CONTACT_RECORD__INIT;
    rec.estate_id = u->estate_id;
    rec.n_owners = u->n_owners;
    rec.owners = u->owners;
    rec.from_event = ev->id;
    size_t len = pm__v1__notify_contact_record__get_packed_size (&rec);
    void *buf = pm_arena_alloc (ctx->arena, len);
    pm__v1__notify_contact_record__pack (&rec, buf);
    pm_txn_put (txn, NOTIFY_CONTACTS, u->unit_id, strlen (u->unit_id), buf, len);
    uint64_t owners = pm_meta_get_u64 (txn, "owners");
    pm_meta_put_u64 (txn, "owners", owners + u->n_owners - before);
    return PM__V1__STATUS__OK;
}

int
notify_on_contact_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->notify_contact_get->unit_id;
    MDB_val v;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/3-1201");
    if (pm_txn_get (txn, NOTIFY_CONTACTS, id, strlen (id), &v) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "unit_id: notify has no contacts for '%s' (not imported, or intake's event not yet applied)", id);
    Pm__V1__NotifyContactRecord *rec = pm__v1__notify_contact_record__unpack (pm_arena_pb (ctx->arena), v.mv_size, v.mv_data);
    if (!rec)
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

void
notify_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_gauge (ctx->metrics, "notify_units", NULL, "Units with contacts", (double) pm_txn_count (txn, NOTIFY_CONTACTS));
    pm_gauge (ctx->metrics, "notify_contacts", NULL, "Owners who can be reached", (double) pm_meta_get_u64 (txn, "owners"));
}

static const char *const s_tables[] = { "contacts", NULL };

static const pm_route_t s_routes[] = {
    { "notify.contact.get", notify_on_contact_get, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

const pm_event_route_t notify_intake_events[] = {
    { "intake.unit.", notify_on_unit },
    { NULL, NULL },
};

const pm_daemon_spec_t notify_spec = {
    .name = "notify",
    .tables = s_tables,
    .routes = s_routes,
    .gauges = notify_gauges,
};
