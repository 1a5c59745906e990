/* billing.c - the billing daemon's whole declaration: tables, routes,
 * subscriptions, gauges. */
#include "billing.h"

static const char *const s_tables[BILLING_NTABLES] = {
    [BILLING_UNITS] = "units",
};

static const pm_route_t s_routes[] = {
    { "billing.unit.get", billing_on_unit_get, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

static const pm_event_route_t s_intake_events[] = {
    { "intake.unit.", PM__V1__EVENT__PAYLOAD_UNIT, billing_on_unit },
    { NULL, 0, NULL },
};

static const int s_intake_tables[] = { BILLING_UNITS, -1 };

static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, s_intake_tables },
    { NULL, NULL, NULL },
};

const pm_daemon_spec_t billing_spec = {
    .name = "billing",
    .tables = s_tables,
    .ntables = BILLING_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .gauges = billing_gauges,
};
