/* spec.c - inspection's tables, routes and subscriptions. */
#include "inspection.h"

static const char *const s_tables[] = { NULL };

static const pm_route_t s_routes[] = {
    { NULL, NULL, 0 },
};

/* No handlers yet: intake's events advance the inbox cursor and nothing else. */
const pm_event_route_t inspection_intake_events[] = {
    { NULL, NULL },
};

const pm_daemon_spec_t inspection_spec = {
    .name = "inspection",
    .tables = s_tables,
    .routes = s_routes,
};
