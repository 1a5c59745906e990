/* gateway.c - the gateway daemon's whole declaration: tables, routes,
 * subscriptions to every daemon's events, timers, queues, gauges. */
#include "gateway.h"

static const char *const s_tables[GW_NTABLES] = {
    [GW_LOG] = "log",
    [GW_LOG_INDEX] = "log_index",
    [GW_LOG_UNITS] = "log_units",
    [GW_TOKENS] = "tokens",
    [GW_TOKEN_HASHES] = "token_hashes",
    [GW_WEBHOOKS] = "webhooks",
    [GW_WEBHOOKS_PAUSED] = "webhooks_paused",
    [GW_ESTATES] = "estates",
};

static const pm_route_t s_routes[] = {
    { "gateway.token.create", gateway_on_token_create, PM_ROUTE_WRITE },
    { "gateway.token.revoke", gateway_on_token_revoke, PM_ROUTE_WRITE },
    { "gateway.token.list", gateway_on_token_list, PM_ROUTE_READ },
    { "gateway.webhook.create", gateway_on_hook_create, PM_ROUTE_WRITE },
    { "gateway.webhook.list", gateway_on_hook_list, PM_ROUTE_READ },
    { "gateway.webhook.resume", gateway_on_hook_resume, PM_ROUTE_WRITE },
    { "gateway.webhook.delete", gateway_on_hook_delete, PM_ROUTE_WRITE },
    { "gateway.webhook.ack", gateway_on_hook_ack, PM_ROUTE_WRITE },
    { "gateway.webhook.failed", gateway_on_hook_failed, PM_ROUTE_WRITE },
    { "gateway.unit.get", gateway_on_unit_get, PM_ROUTE_READ },
    { "gateway.estate.list", gateway_on_estate_list, PM_ROUTE_READ },
    { "gateway.status", gateway_on_status, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

/* Every event of every daemon goes into the log (the type prefix is the source). */
#define S_EVERYTHING(src) \
    static const pm_event_route_t s_##src##_events[] = { \
        { #src ".", PM_ANY_PAYLOAD, gateway_on_event }, \
        { NULL, 0, NULL }, \
    }
S_EVERYTHING (intake);
S_EVERYTHING (inspection);
S_EVERYTHING (workorder);
S_EVERYTHING (billing);
S_EVERYTHING (notify);

/* The estates projection is built from intake's units; the log is not a
 * projection (it keeps what was consumed) and survives a rebuild. */
static const int s_intake_tables[] = { GW_ESTATES, -1 };

static const pm_upstream_t s_upstreams[] = {
    { "intake", s_intake_events, s_intake_tables },
    { "inspection", s_inspection_events, NULL },
    { "workorder", s_workorder_events, NULL },
    { "billing", s_billing_events, NULL },
    { "notify", s_notify_events, NULL },
    { NULL, NULL, NULL },
};

static const pm_timer_route_t s_timers[] = {
    { GW_HOOK_RETRY, gateway_on_hook_retry },
    { GW_LOG_PRUNE, gateway_on_prune },
    { NULL, NULL },
};

const pm_daemon_spec_t gateway_spec = {
    .name = "gateway",
    .tables = s_tables,
    .ntables = GW_NTABLES,
    .routes = s_routes,
    .upstreams = s_upstreams,
    .timers = s_timers,
    .queues = gateway_queues,
    .gauges = gateway_gauges,
    .app_new = gateway_app_new,
    .app_destroy = gateway_app_destroy,
};
