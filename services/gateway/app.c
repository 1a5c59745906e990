/* app.c - the gateway's context: its config, its key, its parts, and the
 * one place where the loop picks up what the handlers asked for.
 *
 * Handlers are pure, so they cannot resume an SSE stream or start a delivery;
 * they leave a hint in the context (log_grew, hooks_changed). An ev_prepare
 * watcher runs before the loop next blocks - after the batch that set the
 * hint has committed - and does the work: streams read the new entries,
 * the delivery worker reloads subscriptions or starts deliveries. A batch that
 * failed to commit leaves a hint that finds nothing new: harmless. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_READS_DEFAULT \
    "*.get *.list *.kpi *.progress *.report.* *.statement *.status ops.ping ops.metrics ops.queues " \
    "events.replay events.snapshot"

int64_t
gw_now_ms (gw_t *gw)
{
    return pm_clock_now_ms (pm_daemon_clock (gw->d));
}

void
gw_wake (gw_t *gw)
{
    if (gw->hooks_changed) {
        gw->hooks_changed = false;
        if (gw->hooks)
            gw_hooks_reload (gw->hooks);
    }
    if (gw->log_grew) {
        gw->log_grew = false;
        if (gw->http)
            gw_http_wake_streams (gw->http);
        if (gw->hooks)
            gw_hooks_kick (gw->hooks);
    }
    if (gw->http)
        gw_http_flush (gw->http);
}

static void
s_prepare_cb (struct ev_loop *loop, ev_prepare *w, int revents)
{
    gw_wake (w->data);
}

/* --- config -------------------------------------------------------------------------- */

static int
s_int (const pm_config_t *cfg, const char *section, const char *key, int64_t def, int64_t min, int64_t *out)
{
    char *err = NULL;
    if (pm_config_int (cfg, section, key, def, out, &err) != PM_OK) {
        pm_error ("%s", err);
        free (err);
        return PM_ECONFIG;
    }
    if (*out < min) {
        char why[64];
        snprintf (why, sizeof why, "expected at least %lld", (long long) min);
        char *msg = pm_config_error (cfg, section, key, why);
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    return PM_OK;
}

static int
s_duration (const pm_config_t *cfg, const char *key, const char *def, int64_t *out)
{
    const char *v = pm_config_get (cfg, "gateway", key, def);
    if (pm_duration_parse (v, out) != PM_OK || *out <= 0) {
        char *msg = pm_config_error (cfg, "gateway", key, "expected a duration, e.g. 3d, 36h or 90m");
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    return PM_OK;
}

/* read_methods: patterns split on blanks and commas. */
static void
s_reads (gw_t *gw, const char *text)
{
    char *copy = pm_xstrdup (text), *save = NULL;
    for (char *t = strtok_r (copy, " \t,", &save); t; t = strtok_r (NULL, " \t,", &save)) {
        gw->reads = pm_xrealloc (gw->reads, (gw->nreads + 1) * sizeof *gw->reads);
        gw->reads[gw->nreads++] = pm_xstrdup (t);
    }
    free (copy);
}

/* --- the key ------------------------------------------------------------------------ */

static const char *
s_key_file (const pm_config_t *cfg)
{
    static char path[4096];
    const char *v = pm_config_get (cfg, "gateway", "key_file", NULL);
    if (v && *v)
        return v;
    snprintf (path, sizeof path, "%s/keys/gateway.key", pm_config_home (cfg));
    return path;
}

/* Reads (or creates, 0600) the gateway's master key; the token and sealing
 * keys are derived from it. A key of the wrong size stops the start: a new
 * one would turn every token away and lose every webhook secret. */
static int
s_load_key (gw_t *gw, const char *path)
{
    unsigned char master[crypto_kdf_KEYBYTES];
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read (fd, master, sizeof master);
        close (fd);
        if (n != (ssize_t) sizeof master) {
            pm_error ("%s: expected a %zu-byte key; refusing to start rather than invalidate every API token",
                      path, sizeof master);
            return PM_EIO;
        }
    }
    else if (errno != ENOENT) {
        pm_error ("cannot read %s: %s", path, strerror (errno));
        return PM_EIO;
    }
    else {
        char *dir = pm_xstrdup (path), *slash = strrchr (dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            pm_mkdirs (dir);
        }
        free (dir);
        crypto_kdf_keygen (master);
        fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write (fd, master, sizeof master) != (ssize_t) sizeof master || fsync (fd) != 0) {
            pm_error ("cannot create %s: %s", path, strerror (errno));
            if (fd >= 0)
                close (fd);
            return PM_EIO;
        }
        close (fd);
        pm_info ("created the gateway key %s (API tokens and webhook secrets depend on it: back it up)", path);
    }
    crypto_kdf_derive_from_key (gw->token_key, sizeof gw->token_key, 1, "pmtokens", master);
    crypto_kdf_derive_from_key (gw->seal_key, sizeof gw->seal_key, 2, "pmhooks_", master);
    sodium_memzero (master, sizeof master);
    return PM_OK;
}

/* --- life ---------------------------------------------------------------------------- */

void *
gateway_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    if (sodium_init () < 0) {
        pm_error ("libsodium failed to initialise");
        return NULL;
    }
    gw_t *gw = sodium_malloc (sizeof *gw);
    if (!gw)
        pm_oom ("sodium_malloc", sizeof *gw);
    memset (gw, 0, sizeof *gw);
    gw->d = d;
    gw->cfg = cfg;
    gw->loop = pm_daemon_loop (d);
    int64_t days = 0;
    if (s_int (cfg, "gateway", "max_body_bytes", 1 << 20, 1024, &gw->max_body)
        || s_int (cfg, "gateway", "call_timeout_ms", 10000, 10, &gw->call_timeout_ms)
        || s_int (cfg, "gateway", "retry_after_s", 5, 1, &gw->retry_after_s)
        || s_int (cfg, "gateway", "sse_keepalive_s", 15, 1, &gw->keepalive_ms)
        || s_int (cfg, "gateway", "webhook_timeout_ms", 10000, 100, &gw->hook_timeout_ms)
        || s_int (cfg, "general", "event_retention_d", 30, 1, &days)
        || s_duration (cfg, "webhook_pause_after", "3d", &gw->pause_after_ms))
        goto fail;
    gw->keepalive_ms *= 1000;
    gw->retention_ms = days * 86400 * 1000;
    s_reads (gw, pm_config_get (cfg, "gateway", "read_methods", S_READS_DEFAULT));
    const char *www = pm_config_get (cfg, "gateway", "www_dir", "");
    gw->www_dir = *www ? pm_xstrdup (www) : NULL;
    if (s_load_key (gw, s_key_file (cfg)) != PM_OK)
        goto fail;

    pm_metrics_t *m = pm_daemon_metrics (d);
    gw->m_auth401 = pm_metric (m, PM_COUNTER, "gateway_auth_failures_total", "code=\"401\"",
                               "HTTP requests refused: 401 no or unknown token, 403 role without the right");
    gw->m_auth403 = pm_metric (m, PM_COUNTER, "gateway_auth_failures_total", "code=\"403\"",
                               "HTTP requests refused: 401 no or unknown token, 403 role without the right");
    gw->m_sse_events = pm_metric (m, PM_COUNTER, "gateway_sse_events_total", NULL, "Events written to SSE streams");
    gw->m_hook_ok = pm_metric (m, PM_COUNTER, "gateway_webhook_attempts_total", "result=\"ok\"",
                               "Webhook POSTs, by result (ok: a 2xx)");
    gw->m_hook_fail = pm_metric (m, PM_COUNTER, "gateway_webhook_attempts_total", "result=\"failed\"",
                                 "Webhook POSTs, by result (ok: a 2xx)");
    gw->m_call_us = pm_metric (m, PM_HISTOGRAM, "gateway_call_us", NULL,
                               "API calls: request read to reply queued, microseconds");
    gw->m_timeouts = pm_metric (m, PM_COUNTER, "gateway_call_timeouts_total", NULL,
                                "API calls a daemon did not answer in call_timeout_ms (503)");
    gw->m_down = pm_metric (m, PM_COUNTER, "gateway_calls_down_total", NULL,
                            "API calls answered 503 at once: their daemon was not connected (down)");

    gw->fwd = gw_fwd_new (gw);
    if (!gw->fwd)
        goto fail;
    gw->hooks = gw_hooks_new (gw);
    if (!gw->hooks)
        goto fail;
    size_t nd;
    const char *const *daemons = gw_fwd_daemons (gw->fwd, &nd);
    gw->openapi = gw_openapi (gw, daemons, nd);
    bool failed = false;
    gw->http = gw_http_new (gw, &failed);
    if (failed)
        goto fail;
    ev_prepare_init (&gw->prepare, s_prepare_cb);
    gw->prepare.data = gw;
    ev_prepare_start (gw->loop, &gw->prepare);
    gw->hooks_changed = true; /* load the subscriptions on the first turn */
    return gw;
fail:
    gateway_app_destroy (gw);
    return NULL;
}

void
gateway_app_destroy (void *app)
{
    gw_t *gw = app;
    if (!gw)
        return;
    if (gw->loop)
        ev_prepare_stop (gw->loop, &gw->prepare);
    gw_hooks_destroy (&gw->hooks); /* no more calls from the worker */
    gw_fwd_destroy (&gw->fwd);     /* calls in flight end without their callbacks */
    gw_http_destroy (&gw->http);   /* connections still waiting are answered 503 and closed */
    for (size_t i = 0; i < gw->nreads; i++)
        free (gw->reads[i]);
    free (gw->reads);
    free (gw->www_dir);
    free (gw->openapi);
    sodium_free (gw);
}

/* --- reads ------------------------------------------------------------------------------- */

static uint32_t
s_paused (pm_txn_t *txn)
{
    return (uint32_t) pm_txn_count (txn, GW_WEBHOOKS_PAUSED);
}

int
gateway_on_status (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    Pm__V1__GatewayStatusReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_status_reply__init (r);
    r->url = pm_arena_strdup (ctx->arena, gw->http ? gw_http_url (gw->http) : "");
    r->port = gw->http ? gw_http_port (gw->http) : 0;
    r->tls = gw->http && gw_http_tls (gw->http);
    r->tokens = (uint32_t) pm_txn_count (txn, GW_TOKENS);
    r->webhooks = (uint32_t) pm_txn_count (txn, GW_WEBHOOKS);
    r->webhooks_paused = s_paused (txn);
    r->sse_clients = gw->http ? (uint32_t) gw_http_streams (gw->http) : 0;
    r->log_last = gw_log_last (txn);
    r->log_entries = pm_txn_count (txn, GW_LOG);
    size_t n = 0;
    const char *const *names = gw->fwd ? gw_fwd_daemons (gw->fwd, &n) : NULL;
    r->daemons = pm_arena_alloc (ctx->arena, (n + 1) * sizeof *r->daemons);
    for (size_t i = 0; i < n; i++)
        r->daemons[r->n_daemons++] = (char *) names[i];
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "gateway %s", *r->url ? r->url : "(HTTP off: [gateway] listen is empty)");
}

void
gateway_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    gw_t *gw = ctx->app;
    pm_metrics_t *m = ctx->metrics;
    pm_gauge (m, "gateway_tokens", NULL, "API tokens", (double) pm_txn_count (txn, GW_TOKENS));
    pm_gauge (m, "gateway_webhooks", NULL, "Webhook subscriptions", (double) pm_txn_count (txn, GW_WEBHOOKS));
    pm_gauge (m, "gateway_webhooks_paused", NULL, "Webhook subscriptions paused after failing for days",
              (double) s_paused (txn));
    pm_gauge (m, "gateway_log_entries", NULL, "Events retained in the gateway's log",
              (double) pm_txn_count (txn, GW_LOG));
    pm_gauge (m, "gateway_log_last", NULL, "Latest position of the gateway's log", (double) gw_log_last (txn));
    pm_gauge (m, "gateway_sse_clients", NULL, "Open SSE streams",
              gw->http ? (double) gw_http_streams (gw->http) : 0);
    pm_gauge (m, "gateway_calls_in_flight", NULL, "API calls waiting for a daemon's reply",
              gw->fwd ? (double) gw_fwd_inflight (gw->fwd) : 0);
}
