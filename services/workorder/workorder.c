/* workorder.c - the workorder daemon's whole declaration. */
#include "workorder.h"

static const pm_route_t s_routes[] = {
    { NULL, NULL, 0 },
};

/* No handlers yet: inspection's events advance the inbox cursor and nothing else. */
static const pm_event_route_t s_inspection_events[] = {
    { NULL, 0, NULL },
};

static const pm_upstream_t s_upstreams[] = {
    { "inspection", s_inspection_events, NULL },
    { NULL, NULL, NULL },
};

const pm_daemon_spec_t workorder_spec = {
    .name = "workorder",
    .routes = s_routes,
    .upstreams = s_upstreams,
};
