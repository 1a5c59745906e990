/* inspection.c - the inspection daemon's whole declaration. */
#include "inspection.h"

static const pm_route_t s_routes[] = {
    { NULL, NULL, 0 },
};

/* No handlers yet: intake's events advance the inbox cursor and nothing else. */
static const pm_event_route_t s_intake_events[] = {
    { NULL, 0, NULL },
};

static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, NULL },
    { NULL, NULL, NULL },
};

const pm_daemon_spec_t inspection_spec = {
    .name = "inspection",
    .routes = s_routes,
    .upstreams = s_upstreams,
};
