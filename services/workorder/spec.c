/* spec.c - workorder's tables, routes and subscriptions. */
#include "workorder.h"

static const char *const s_tables[] = { NULL };

static const pm_route_t s_routes[] = {
    { NULL, NULL, 0 },
};

/* No handlers yet: inspection's events advance the inbox cursor and nothing else. */
const pm_event_route_t workorder_inspection_events[] = {
    { NULL, NULL },
};

const pm_daemon_spec_t workorder_spec = {
    .name = "workorder",
    .tables = s_tables,
    .routes = s_routes,
};
