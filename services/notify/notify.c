/* notify.c - the notify daemon's whole declaration: tables, routes,
 * subscriptions to every daemon, timers, queues, gauges, snapshot, app. */
#include "notify.h"

static const char *const s_tables[NOTIFY_NTABLES] = {
    [NOTIFY_CONTACTS] = "contacts",
    [NOTIFY_MESSAGES] = "messages",
    [NOTIFY_TEXTS] = "texts",
    [NOTIFY_DEDUPE] = "dedupe",
    [NOTIFY_READY_SMS] = "ready_sms",
    [NOTIFY_READY_EMAIL] = "ready_email",
    [NOTIFY_SENDING] = "sending",
    [NOTIFY_BY_UNIT] = "by_unit",
    [NOTIFY_TOPICS] = "topics",
    [NOTIFY_BY_INVOICE] = "by_invoice",
    [NOTIFY_INVOICES] = "invoices",
    [NOTIFY_DEAD] = "dead_letters",
    [NOTIFY_OPTOUTS] = "optouts",
    [NOTIFY_CAPS] = "caps",
    [NOTIFY_AWAITING] = "awaiting",
    [NOTIFY_NOTICES] = "notices",
};

static const pm_route_t s_routes[] = {
    { "notify.contact.get", notify_on_contact_get, PM_ROUTE_READ },
    { "notify.unit.get", notify_on_unit_get, PM_ROUTE_READ },
    { "notify.message.get", notify_on_message_get, PM_ROUTE_READ },
    { "notify.message.retry", notify_on_message_retry, PM_ROUTE_WRITE },
    { "notify.message.drop", notify_on_message_drop, PM_ROUTE_WRITE },
    { "notify.optout.set", notify_on_optout_set, PM_ROUTE_WRITE },
    { NULL, NULL, 0 },
};

#define P(x) PM__V1__EVENT__PAYLOAD_##x

static const pm_event_route_t s_intake_events[] = {
    { "intake.unit.registered", P (UNIT), notify_on_unit },
    { "intake.unit.updated", P (UNIT), notify_on_unit },
    { "intake.notice.requested", P (NOTICE), notify_on_event },
    { "intake.appointment.", P (APPOINTMENT), notify_on_event },
    { "intake.keys.handed", P (KEYS_HANDED), notify_on_event },
    { NULL, 0, NULL },
};

static const pm_event_route_t s_inspection_events[] = {
    { "inspection.round.", P (ROUND), notify_on_event },
    { "inspection.reinspection.due", P (REINSPECTION), notify_on_event },
    { "inspection.defect.", P (DEFECT), notify_on_event },
    { NULL, 0, NULL },
};

static const pm_event_route_t s_workorder_events[] = {
    { "workorder.order.", P (ORDER), notify_on_event },
    { "workorder.sla.", P (SLA), notify_on_event },
    { NULL, 0, NULL },
};

static const pm_event_route_t s_billing_events[] = {
    { "billing.invoice.", P (INVOICE), notify_on_invoice },
    { "billing.payment.recorded", P (PAYMENT), notify_on_event },
    { "billing.dunning.step", P (DUNNING), notify_on_event },
    { NULL, 0, NULL },
};

static const int s_intake_tables[] = { NOTIFY_CONTACTS, -1 };
static const int s_billing_tables[] = { NOTIFY_INVOICES, -1 };

static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, s_intake_tables },
    { "inspection", s_inspection_events, NULL },
    { "workorder", s_workorder_events, NULL },
    { "billing", s_billing_events, s_billing_tables },
    { NULL, NULL, NULL },
};

static const pm_timer_route_t s_timers[] = {
    { "notify.await", notify_on_await_expired },
    { "notify.caps", notify_on_caps_prune },
    { NULL, NULL },
};

const pm_daemon_spec_t notify_spec = {
    .name = "notify",
    .tables = s_tables,
    .ntables = NOTIFY_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .timers = s_timers,
    .queues = notify_queues,
    .gauges = notify_gauges,
    .snapshot = notify_snapshot,
    .app_new = notify_app_new,
    .app_destroy = notify_app_destroy,
    .committed = notify_app_committed,
};
