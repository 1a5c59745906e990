/* inspection.c - the inspection daemon's whole declaration: tables, routes,
 * subscriptions to intake and workorder, timers, queues, gauges, snapshot and
 * app context. */
#include "inspection.h"

static const char *const s_tables[INSP_NTABLES] = {
    [INSP_UNITS] = "units",
    [INSP_ROUNDS] = "rounds",
    [INSP_ITEMS] = "items",
    [INSP_DEFECTS] = "defects",
    [INSP_TEMPLATES] = "templates",
    [INSP_KPI] = "kpi",
    [INSP_Q_DUE] = "q_due",
    [INSP_Q_OVERDUE] = "q_overdue",
    [INSP_Q_FAILED] = "q_failed",
    [INSP_Q_UNINSPECTED] = "q_uninspected",
};

static const pm_route_t s_routes[] = {
    { "inspection.open", inspection_on_open, PM_ROUTE_WRITE },
    { "inspection.round.start", inspection_on_round_start, PM_ROUTE_WRITE },
    { "inspection.items.record", inspection_on_items_record, PM_ROUTE_WRITE },
    { "inspection.defect.record", inspection_on_defect_record, PM_ROUTE_WRITE },
    { "inspection.defect.verify", inspection_on_defect_verify, PM_ROUTE_WRITE },
    { "inspection.defect.reopen", inspection_on_defect_reopen, PM_ROUTE_WRITE },
    { "inspection.round.complete", inspection_on_round_complete, PM_ROUTE_WRITE },
    { "inspection.accept_with_defects", inspection_on_accept_with_defects, PM_ROUTE_WRITE },
    { "inspection.template.set", inspection_on_template_set, PM_ROUTE_WRITE },
    { "inspection.template.get", inspection_on_template_get, PM_ROUTE_READ },
    { "inspection.unit.get", inspection_on_unit_get, PM_ROUTE_READ },
    { "inspection.kpi", inspection_on_kpi, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

static const pm_event_route_t s_intake_events[] = {
    { "intake.unit.registered", PM__V1__EVENT__PAYLOAD_UNIT, inspection_on_unit },
    { "intake.unit.updated", PM__V1__EVENT__PAYLOAD_UNIT, inspection_on_unit },
    { "intake.unit.checked_in", PM__V1__EVENT__PAYLOAD_CHECKED_IN, inspection_on_checked_in },
    { NULL, 0, NULL },
};

static const pm_event_route_t s_workorder_events[] = {
    { "workorder.order.", PM__V1__EVENT__PAYLOAD_ORDER, inspection_on_order },
    { NULL, 0, NULL },
};

/* Inspection owns everything it stores: no table is a pure projection of an
 * upstream, so a rebuild from intake or workorder empties nothing (units are
 * upserted again from the snapshot's events). */
static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, NULL },
    { "workorder", s_workorder_events, NULL },
    { NULL, NULL, NULL },
};

static const pm_timer_route_t s_timers[] = {
    { INSP_TIMER_DEADLINE, inspection_on_deadline },
    { INSP_TIMER_UNINSPECTED, inspection_on_uninspected },
    { NULL, NULL },
};

const pm_daemon_spec_t inspection_spec = {
    .name = "inspection",
    .tables = s_tables,
    .ntables = INSP_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .timers = s_timers,
    .queues = inspection_queues,
    .gauges = inspection_gauges,
    .snapshot = inspection_snapshot,
    .app_new = inspection_app_new,
    .app_destroy = inspection_app_destroy,
};
