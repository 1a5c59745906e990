/* intake.c - the intake daemon's whole declaration: tables, routes, queues,
 * gauges, snapshot and app context. */
#include "intake.h"

static const char *const s_tables[INTAKE_NTABLES] = {
    [INTAKE_UNITS] = "units",
    [INTAKE_ESTATES] = "estates",
    [INTAKE_REJECTS] = "rejects",
};

static const pm_route_t s_routes[] = {
    { "intake.import", intake_on_import, PM_ROUTE_WRITE },
    { "intake.estate.get", intake_on_estate_get, PM_ROUTE_READ },
    { "intake.unit.get", intake_on_unit_get, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

const pm_daemon_spec_t intake_spec = {
    .name = "intake",
    .tables = s_tables,
    .ntables = INTAKE_NTABLES,
    .routes = s_routes,
    .queues = intake_queues,
    .gauges = intake_gauges,
    .snapshot = intake_snapshot,
    .app_new = intake_app_new,
    .app_destroy = intake_app_destroy,
};
