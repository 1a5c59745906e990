/* intake.c - the intake daemon's whole declaration: tables, routes,
 * subscriptions, timers, queues, gauges, snapshot and app context. */
#include "intake.h"

static const char *const s_tables[INTAKE_NTABLES] = {
    [INTAKE_UNITS] = "units",         [INTAKE_ESTATES] = "estates",   [INTAKE_REJECTS] = "rejects",
    [INTAKE_CASES] = "cases",         [INTAKE_COUNTS] = "counts",     [INTAKE_HOURLY] = "hourly",
    [INTAKE_SLOTS] = "slots",         [INTAKE_WAITLIST] = "waitlist", [INTAKE_NOSHOWS] = "noshows",
    [INTAKE_BLOCKED] = "blocked",     [INTAKE_UNDELIVERED] = "undelivered", [INTAKE_LEDGER] = "ledger",
};

static const pm_route_t s_routes[] = {
    { "intake.import", intake_on_import, PM_ROUTE_WRITE },
    { "intake.notice.send", intake_on_notice_send, PM_ROUTE_WRITE },
    { "intake.schedule.plan", intake_on_plan, PM_ROUTE_WRITE },
    { "intake.appointment.book", intake_on_book, PM_ROUTE_WRITE },
    { "intake.appointment.move", intake_on_move, PM_ROUTE_WRITE },
    { "intake.appointment.cancel", intake_on_cancel, PM_ROUTE_WRITE },
    { "intake.checkin", intake_on_checkin, PM_ROUTE_WRITE },
    { "intake.keys.handover", intake_on_keys_handover, PM_ROUTE_WRITE },
    { "intake.keys.return", intake_on_keys_return, PM_ROUTE_WRITE },
    { "intake.keys.ledger", intake_on_keys_ledger, PM_ROUTE_READ },
    { "intake.progress", intake_on_progress, PM_ROUTE_READ },
    { "intake.seal.rotate", intake_on_seal_rotate, PM_ROUTE_WRITE },
    { "intake.estate.get", intake_on_estate_get, PM_ROUTE_READ },
    { "intake.unit.get", intake_on_unit_get, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

/* DESIGN.md section 6a: what intake follows of the others, into each case. */
static const pm_event_route_t s_inspection_events[] = {
    { "inspection.round.passed", PM__V1__EVENT__PAYLOAD_ROUND, intake_on_round },
    { "inspection.round.failed", PM__V1__EVENT__PAYLOAD_ROUND, intake_on_round },
    { "inspection.accepted_with_defects", PM__V1__EVENT__PAYLOAD_ACCEPTED, intake_on_accepted },
    { "inspection.reinspection.due", PM__V1__EVENT__PAYLOAD_REINSPECTION, intake_on_reinspection },
    { NULL, 0, NULL },
};

static const pm_event_route_t s_billing_events[] = {
    { "billing.invoice.", PM__V1__EVENT__PAYLOAD_INVOICE, intake_on_invoice },
    { NULL, 0, NULL },
};

static const pm_event_route_t s_notify_events[] = {
    { "notify.message.", PM__V1__EVENT__PAYLOAD_MESSAGE, intake_on_message },
    { NULL, 0, NULL },
};

/* The facts live in intake's own cases, beside its own state: no table is
 * built from one source alone, so a rebuild empties nothing and reloads the
 * facts over what is there. */
static const pm_upstream_t s_upstreams[] = {
    { "inspection", s_inspection_events, NULL },
    { "billing", s_billing_events, NULL },
    { "notify", s_notify_events, NULL },
    { NULL, NULL, NULL },
};

static const pm_timer_route_t s_timers[] = {
    { "intake.noshow", intake_on_noshow },
    { "intake.notice.overdue", intake_on_notice_overdue },
    { NULL, NULL },
};

const pm_daemon_spec_t intake_spec = {
    .name = "intake",
    .tables = s_tables,
    .ntables = INTAKE_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .timers = s_timers,
    .queues = intake_queues,
    .gauges = intake_gauges,
    .snapshot = intake_snapshot,
    .app_new = intake_app_new,
    .app_destroy = intake_app_destroy,
};
