/* workorder.c - the workorder daemon's whole declaration: tables, routes,
 * subscriptions to intake and inspection, timers, queues, gauges, snapshot
 * and app context. */
#include "workorder.h"

static const char *const s_tables[WO_NTABLES] = {
    [WO_UNITS] = "units",
    [WO_ORDERS] = "orders",
    [WO_BY_UNIT] = "by_unit",
    [WO_BY_DEFECT] = "by_defect",
    [WO_STAFF] = "staff",
    [WO_LOADS] = "loads",
    [WO_PICK] = "pick",
    [WO_TEAMS] = "teams",
    [WO_ESTATES] = "estates",
    [WO_STATS] = "stats",
    [WO_KPI] = "kpi",
    [WO_Q_UNASSIGNED] = "q_unassigned",
    [WO_Q_WARNED] = "q_warned",
    [WO_Q_BREACHED] = "q_breached",
    [WO_Q_UNSIGNED] = "q_unsigned",
    [WO_Q_REJECTED] = "q_rejected",
};

static const pm_route_t s_routes[] = {
    { "workorder.create", wo_on_create, PM_ROUTE_WRITE },
    { "workorder.assign", wo_on_assign, PM_ROUTE_WRITE },
    { "workorder.claim", wo_on_claim, PM_ROUTE_WRITE },
    { "workorder.start", wo_on_start, PM_ROUTE_WRITE },
    { "workorder.checklist", wo_on_checklist, PM_ROUTE_WRITE },
    { "workorder.done", wo_on_done, PM_ROUTE_WRITE },
    { "workorder.confirm", wo_on_confirm, PM_ROUTE_WRITE },
    { "workorder.reject", wo_on_reject, PM_ROUTE_WRITE },
    { "workorder.cancel", wo_on_cancel, PM_ROUTE_WRITE },
    { "workorder.staff.set", wo_on_staff_set, PM_ROUTE_WRITE },
    { "workorder.dispatch.set", wo_on_dispatch_set, PM_ROUTE_WRITE },
    { "workorder.get", wo_on_get, PM_ROUTE_READ },
    { "workorder.unit.get", wo_on_unit_get, PM_ROUTE_READ },
    { "workorder.staff.get", wo_on_staff_get, PM_ROUTE_READ },
    { "workorder.kpi", wo_on_kpi, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

static const pm_event_route_t s_intake_events[] = {
    { "intake.unit.registered", PM__V1__EVENT__PAYLOAD_UNIT, wo_on_unit },
    { "intake.unit.updated", PM__V1__EVENT__PAYLOAD_UNIT, wo_on_unit },
    { "intake.keys.handed", PM__V1__EVENT__PAYLOAD_KEYS_HANDED, wo_on_keys_handed },
    { NULL, 0, NULL },
};

static const pm_event_route_t s_inspection_events[] = {
    { "inspection.defect.recorded", PM__V1__EVENT__PAYLOAD_DEFECT, wo_on_defect_recorded },
    { "inspection.defect.verified", PM__V1__EVENT__PAYLOAD_DEFECT, wo_on_defect_verified },
    { "inspection.defect.reopened", PM__V1__EVENT__PAYLOAD_DEFECT, wo_on_defect_reopened },
    { "inspection.defect.overdue", PM__V1__EVENT__PAYLOAD_DEFECT, wo_on_defect_overdue },
    { NULL, 0, NULL },
};

/* Neither upstream's rebuild empties a table: units keep their keys-handed
 * mark (see units.c), and orders are workorder's own. */
static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, NULL },
    { "inspection", s_inspection_events, NULL },
    { NULL, NULL, NULL },
};

static const pm_timer_route_t s_timers[] = {
    { WO_TIMER_RESPOND, wo_on_respond_timer },
    { WO_TIMER_COMPLETE, wo_on_complete_timer },
    { WO_TIMER_UNSIGNED, wo_on_unsigned_timer },
    { NULL, NULL },
};

const pm_daemon_spec_t workorder_spec = {
    .name = "workorder",
    .tables = s_tables,
    .ntables = WO_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .timers = s_timers,
    .queues = wo_queues,
    .gauges = wo_gauges,
    .snapshot = wo_snapshot,
    .app_new = workorder_app_new,
    .app_destroy = workorder_app_destroy,
};
