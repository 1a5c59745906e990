/* notify.c - the notify daemon's whole declaration: tables, routes,
 * subscriptions, gauges. */
#include "notify.h"

static const char *const s_tables[NOTIFY_NTABLES] = {
    [NOTIFY_CONTACTS] = "contacts",
};

static const pm_route_t s_routes[] = {
    { "notify.contact.get", notify_on_contact_get, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

static const pm_event_route_t s_intake_events[] = {
    { "intake.unit.", PM__V1__EVENT__PAYLOAD_UNIT, notify_on_unit },
    { NULL, 0, NULL },
};

static const int s_intake_tables[] = { NOTIFY_CONTACTS, -1 };

static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, s_intake_tables },
    { NULL, NULL, NULL },
};

const pm_daemon_spec_t notify_spec = {
    .name = "notify",
    .tables = s_tables,
    .ntables = NOTIFY_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .gauges = notify_gauges,
};
