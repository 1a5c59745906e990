/* billing.c - the billing daemon's whole declaration: tables, routes,
 * subscriptions, timers, queues, gauges, snapshot and app context. */
#include "billing.h"

static const char *const s_tables[BILLING_NTABLES] = {
    [BILLING_UNITS] = "units",
    [BILLING_ACCOUNTS] = "accounts",
    [BILLING_SCHEDULES] = "schedules",
    [BILLING_INVOICES] = "invoices",
    [BILLING_UNIT_INVOICES] = "unit_invoices",
    [BILLING_UNIT_PERIODS] = "unit_periods",
    [BILLING_PAYMENTS] = "payments",
    [BILLING_UNIT_PAYMENTS] = "unit_payments",
    [BILLING_REFS] = "refs",
    [BILLING_NUMBERS] = "numbers",
    [BILLING_COLLECTION] = "collection",
    [BILLING_ARREARS] = "arrears",
    [BILLING_BILLABLE] = "billable",
    [BILLING_RUNS] = "runs",
    [BILLING_WAITING] = "waiting",
    [BILLING_CALLS] = "calls",
    [BILLING_VISITS] = "visits",
    [BILLING_LETTERS] = "letters",
    [BILLING_ESCALATIONS] = "escalations",
    [BILLING_UNMATCHED] = "unmatched",
    [BILLING_UNMATCHED_REFS] = "unmatched_refs",
};

static const pm_route_t s_routes[] = {
    { "billing.schedule.set", billing_on_schedule_set, PM_ROUTE_WRITE },
    { "billing.schedule.get", billing_on_schedule_get, PM_ROUTE_READ },
    { "billing.run", billing_on_run, PM_ROUTE_WRITE },
    { "billing.run.get", billing_on_run_get, PM_ROUTE_READ },
    { "billing.payment.record", billing_on_payment_record, PM_ROUTE_WRITE },
    { "billing.deposit.refund", billing_on_deposit_refund, PM_ROUTE_WRITE },
    { "billing.receipt.get", billing_on_receipt_get, PM_ROUTE_READ },
    { "billing.reconcile", billing_on_reconcile, PM_ROUTE_WRITE },
    { "billing.reconcile.resolve", billing_on_reconcile_resolve, PM_ROUTE_WRITE },
    { "billing.dunning.record", billing_on_dunning_record, PM_ROUTE_WRITE },
    { "billing.instalment.set", billing_on_instalment_set, PM_ROUTE_WRITE },
    { "billing.invoice.get", billing_on_invoice_get, PM_ROUTE_READ },
    { "billing.unit.get", billing_on_unit_get, PM_ROUTE_READ },
    { "billing.unit.statement", billing_on_unit_statement, PM_ROUTE_READ },
    { "billing.report.collection", billing_on_report_collection, PM_ROUTE_READ },
    { "billing.report.aging", billing_on_report_aging, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

/* Exact types first: "intake.unit.checked_in" also starts with "intake.unit.". */
static const pm_event_route_t s_intake_events[] = {
    { "intake.unit.checked_in", PM__V1__EVENT__PAYLOAD_CHECKED_IN, billing_on_checked_in },
    { "intake.unit.registered", PM__V1__EVENT__PAYLOAD_UNIT, billing_on_unit },
    { "intake.unit.updated", PM__V1__EVENT__PAYLOAD_UNIT, billing_on_unit },
    { "intake.keys.handed", PM__V1__EVENT__PAYLOAD_KEYS_HANDED, billing_on_keys_handed },
    { NULL, 0, NULL },
};

/* Only the projection is rebuilt from intake's snapshot: accounts, invoices
 * and payments are billing's own facts. */
static const int s_intake_tables[] = { BILLING_UNITS, -1 };

static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, s_intake_tables },
    { NULL, NULL, NULL },
};

static const pm_timer_route_t s_timers[] = {
    { BILLING_TIMER_DUNNING, billing_on_dunning_timer },
    { BILLING_TIMER_RUN, billing_on_run_timer },
    { BILLING_TIMER_WAITING, billing_on_waiting_timer },
    { NULL, NULL },
};

const pm_daemon_spec_t billing_spec = {
    .name = "billing",
    .tables = s_tables,
    .ntables = BILLING_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .timers = s_timers,
    .queues = billing_queues,
    .gauges = billing_gauges,
    .snapshot = billing_snapshot,
    .app_new = billing_app_new,
    .app_destroy = billing_app_destroy,
};
