/* dispatch.c - the dispatcher: the only part of notify that talks to the
 * outside world, and never from a handler.
 *
 * It lives in the app context, driven by the loop: the spec's committed hook
 * (something was just made durable), a timer per channel (the next due
 * message, the next rate token, the end of a provider's Retry-After pause) and
 * the gateways' completions. Per channel ("lane"):
 *
 *   1. claim    it reads the committed queue (table ready: channel, due, id),
 *               takes as many due messages as the lane has room and tokens
 *               for, and queues ONE claim write (pm_daemon_write). That write
 *               runs in the next group commit: it admits each message again
 *               (settled invoice, opt-out, quiet hours, daily cap) and marks
 *               the rest SENDING with their attempt counted;
 *   2. send     after that commit, each claimed message goes to the gateway
 *               (asynchronously: libcurl multi on the loop);
 *   3. report   answers are collected and committed by ONE report write at a
 *               time: SENT, RETRYING (its next due time from the backoff or
 *               Retry-After) or FAILED. Only that commit puts a retry back in
 *               the queue, so the next attempt is decided on a durable outcome.
 *
 * One claim and one report are queued per lane at a time; both ride in the
 * ordinary group commit with whatever else the batch holds.
 *
 * The window: a message the gateway took but whose SENT was not committed
 * when the process died is SENDING in the store. At the next start the first
 * write puts every SENDING message back to PENDING (counted as resent), so
 * it goes again with the same dedupe key as the provider's idempotency key;
 * a provider that honours it delivers once. At most the messages in flight of
 * one lane (its concurrency) plus one report are in that window.
 *
 * Rate: a token bucket per lane (rate per second, burst), in real time; a
 * 429 pauses the lane for its Retry-After. Deferred messages that become due
 * together (08:00 after quiet hours) thus drain at the lane's rate. */
#include "gateway.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WINDOW_US 5000000 /* the drain rate is measured over 5 s */

typedef struct s_lane s_lane_t;

/* One message at the gateway. */
typedef struct s_flight {
    s_lane_t *lane;
    notify_send_t *msg;
    int64_t t0_us;
    struct s_flight *prev, *next;
} s_flight_t;

struct s_lane {
    notify_dispatch_t *dp;
    int channel;
    notify_gateway_t *gw;
    double rate, burst;     /* tokens a second (0: no limit), bucket size */
    double tokens;
    int64_t refill_us;
    int64_t concurrency;    /* messages claimed and not yet answered, at most */
    int64_t batch;          /* messages per claim, at most */
    int64_t inflight;       /* claimed (or being claimed) and not yet answered */
    int64_t paused_until_us;
    bool claiming, reporting;
    notify_claim_t claim;
    notify_report_t report;
    notify_result_t *results; /* answers waiting for the next report */
    size_t nresults, rcap;
    s_flight_t *flights;
    ev_timer timer;
    int64_t window_start_us;
    uint64_t window_n;
    double drain_rate;
    pm_metric_t *m_send_us, *m_rate_limited, *m_paused;
};

struct notify_dispatch {
    notify_app_t *app;
    pm_daemon_t *d;
    struct ev_loop *loop;
    s_lane_t lanes[NOTIFY_NCHANNELS];
    notify_requeue_t requeue;
    bool recovered, recovering;
    bool in_kick, again;
    ev_timer start;
};

static void s_lane_timer_cb (struct ev_loop *loop, ev_timer *w, int revents);

/* --- time ------------------------------------------------------------------------------- */

static void
s_refill (s_lane_t *l, int64_t now_us)
{
    if (l->rate <= 0)
        return;
    l->tokens += (double) (now_us - l->refill_us) * l->rate / 1e6;
    if (l->tokens > l->burst)
        l->tokens = l->burst;
    l->refill_us = now_us;
}

/* Wakes the lane in `wait_us` (the earliest asked for wins until it fires). */
static void
s_wake_in (s_lane_t *l, int64_t wait_us)
{
    struct ev_loop *loop = l->dp->loop;
    double after = wait_us > 0 ? (double) wait_us / 1e6 : 0.0;
    if (ev_is_active (&l->timer) && ev_timer_remaining (loop, &l->timer) <= after)
        return;
    ev_timer_stop (loop, &l->timer);
    ev_timer_set (&l->timer, after, 0.0);
    ev_timer_start (loop, &l->timer);
}

/* --- the writes' callbacks ----------------------------------------------------------------- */

static void s_sent_cb (notify_send_t *msg, const notify_result_t *res, void *arg);

static void
s_claim_free (notify_claim_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free (c->keys[i]);
    free (c->keys);
    free (c->klens);
    for (size_t i = 0; i < c->nclaimed; i++)
        notify_send_free (c->claimed[i]);
    free (c->claimed);
    memset (c, 0, sizeof *c);
}

static void
s_claimed_cb (int status, void *arg)
{
    s_lane_t *l = (s_lane_t *) ((char *) arg - offsetof (s_lane_t, claim));
    notify_claim_t *c = &l->claim;
    l->claiming = false;
    size_t asked = c->n, got = status == PM__V1__STATUS__OK ? c->nclaimed : 0;
    if (status != PM__V1__STATUS__OK)
        pm_warn ("notify: claiming %zu %s message(s) failed (%s); trying again", asked, notify_channels[l->channel],
                 pm_status_name (status));
    /* what was asked for and not claimed (not due, deferred, dropped) gives its room and token back */
    l->inflight -= (int64_t) (asked - got);
    if (l->rate > 0)
        l->tokens += (double) (asked - got);
    int64_t now = pm_mono_us ();
    s_flight_t **fresh = pm_xcalloc (got + 1, sizeof *fresh);
    for (size_t i = 0; i < got; i++) {
        s_flight_t *f = pm_xcalloc (1, sizeof *f);
        f->lane = l;
        f->msg = c->claimed[i];
        f->t0_us = now;
        f->next = l->flights;
        if (l->flights)
            l->flights->prev = f;
        l->flights = f;
        c->claimed[i] = NULL;
        fresh[i] = f;
    }
    c->nclaimed = 0;
    /* the sends, in claim order (earliest due first); a synchronous gateway
     * answers inside send, whose kick then only marks work to do */
    notify_dispatch_t *dp = l->dp;
    bool was = dp->in_kick;
    dp->in_kick = true;
    for (size_t i = 0; i < got; i++)
        l->gw->send (l->gw, fresh[i]->msg, s_sent_cb, fresh[i]);
    free (fresh);
    if (l->gw->flush)
        l->gw->flush (l->gw);
    dp->in_kick = was;
    s_claim_free (c);
    notify_dispatch_kick (dp);
}

static void
s_sent_cb (notify_send_t *msg, const notify_result_t *res, void *arg)
{
    s_flight_t *f = arg;
    s_lane_t *l = f->lane;
    int64_t now = pm_mono_us ();
    pm_metric_observe (l->m_send_us, (double) (now - f->t0_us));
    if (l->nresults == l->rcap) {
        l->rcap = l->rcap ? 2 * l->rcap : 64;
        l->results = pm_xrealloc (l->results, l->rcap * sizeof *l->results);
    }
    l->results[l->nresults++] = *res;
    if (res->outcome == NOTIFY_RETRY && res->retry_after_ms > 0) { /* the provider asks us to slow down */
        l->paused_until_us = now + res->retry_after_ms * 1000;
        l->tokens = 0;
        pm_metric_inc (l->m_paused, 1);
    }
    if (res->outcome == NOTIFY_OK) {
        if (now - l->window_start_us >= S_WINDOW_US) {
            double secs = (double) (now - l->window_start_us) / 1e6;
            l->drain_rate = l->window_start_us ? (double) l->window_n / secs : 0;
            l->window_start_us = now;
            l->window_n = 0;
        }
        l->window_n++;
    }
    l->inflight--;
    if (f->prev)
        f->prev->next = f->next;
    else
        l->flights = f->next;
    if (f->next)
        f->next->prev = f->prev;
    notify_send_free (msg);
    free (f);
    notify_dispatch_kick (l->dp);
}

static void
s_reported_cb (int status, void *arg)
{
    s_lane_t *l = (s_lane_t *) ((char *) arg - offsetof (s_lane_t, report));
    l->reporting = false;
    if (status != PM__V1__STATUS__OK) { /* not durable: the answers go in the next report */
        pm_warn ("notify: committing %zu %s outcome(s) failed (%s); trying again", l->report.n,
                 notify_channels[l->channel], pm_status_name (status));
        size_t n = l->report.n + l->nresults;
        notify_result_t *all = pm_xmalloc ((n + 1) * sizeof *all);
        memcpy (all, l->report.results, l->report.n * sizeof *all);
        memcpy (all + l->report.n, l->results, l->nresults * sizeof *all);
        free (l->results);
        l->results = all;
        l->nresults = l->rcap = n;
    }
    free (l->report.results);
    memset (&l->report, 0, sizeof l->report);
    notify_dispatch_kick (l->dp);
}

static void
s_requeued_cb (int status, void *arg)
{
    notify_dispatch_t *dp = (notify_dispatch_t *) ((char *) arg - offsetof (notify_dispatch_t, requeue));
    dp->recovering = false;
    if (status == PM__V1__STATUS__OK) {
        dp->recovered = true;
        if (dp->requeue.requeued)
            pm_warn ("notify: %zu message(s) were at a gateway when notify stopped; they go again with the same "
                     "idempotency key",
                     dp->requeue.requeued);
    }
    notify_dispatch_kick (dp);
}

/* --- one lane ------------------------------------------------------------------------------ */

static void
s_lane_step (s_lane_t *l)
{
    notify_dispatch_t *dp = l->dp;
    if (l->nresults && !l->reporting) {
        l->report.results = l->results;
        l->report.n = l->nresults;
        l->results = NULL;
        l->nresults = l->rcap = 0;
        l->reporting = true;
        pm_daemon_write (dp->d, notify_report_write, s_reported_cb, &l->report);
    }
    if (l->claiming)
        return;
    int64_t now_us = pm_mono_us ();
    if (l->paused_until_us > now_us) {
        s_wake_in (l, l->paused_until_us - now_us);
        return;
    }
    int64_t room = l->concurrency - l->inflight;
    if (room <= 0)
        return; /* an answer makes room and kicks */
    int64_t want = room < l->batch ? room : l->batch;
    if (l->rate > 0) {
        s_refill (l, now_us);
        if (l->tokens < 1.0) {
            s_wake_in (l, (int64_t) ((1.0 - l->tokens) * 1e6 / l->rate) + 1);
            pm_metric_inc (l->m_rate_limited, 1);
            want = 0;
        }
        else if ((double) want > l->tokens)
            want = (int64_t) l->tokens;
        if (!want)
            return;
    }
    pm_clock_t *clock = pm_daemon_clock (dp->d);
    int64_t now_ms = pm_clock_now_ms (clock);
    pm_txn_t t;
    if (pm_txn_begin_read (&t, pm_daemon_store (dp->d)) != PM_OK)
        return;
    pm_key_t from, to;
    pm_key (&from, "s", notify_channels[l->channel]);
    pm_key (&to, "st", notify_channels[l->channel], now_ms + 1);
    pm_scan_t s;
    notify_claim_t *c = &l->claim;
    s_claim_free (c);
    c->channel = l->channel;
    c->keys = pm_xcalloc ((size_t) want, sizeof *c->keys);
    c->klens = pm_xcalloc ((size_t) want, sizeof *c->klens);
    for (pm_scan_range (&s, &t, NOTIFY_READY, &from, &to); s.ok && (int64_t) c->n < want; pm_scan_next (&s)) {
        c->keys[c->n] = pm_xmalloc (s.key.mv_size);
        memcpy (c->keys[c->n], s.key.mv_data, s.key.mv_size);
        c->klens[c->n++] = s.key.mv_size;
    }
    pm_scan_end (&s);
    int64_t next_due = INT64_MAX;
    if (!c->n) { /* nothing due: when is the next? */
        pm_scan_t n;
        if (pm_scan_prefix (&n, &t, NOTIFY_READY, &from)) {
            int64_t due;
            if (pm_key_parse (n.key.mv_data, n.key.mv_size, "sts", NULL, &due, NULL) == PM_OK)
                next_due = due;
        }
        pm_scan_end (&n);
    }
    pm_txn_abort (&t);
    if (!c->n) {
        s_claim_free (c);
        /* a manual clock moves only by ops.clock, whose commit kicks us */
        if (next_due != INT64_MAX && !pm_clock_is_manual (clock))
            s_wake_in (l, (next_due - now_ms) * 1000);
        return;
    }
    if (l->rate > 0)
        l->tokens -= (double) c->n;
    l->inflight += (int64_t) c->n;
    l->claiming = true;
    pm_daemon_write (dp->d, notify_claim_write, s_claimed_cb, &l->claim);
}

static void
s_lane_timer_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    s_lane_t *l = w->data;
    notify_dispatch_kick (l->dp);
}

void
notify_dispatch_kick (notify_dispatch_t *dp)
{
    if (!dp)
        return;
    if (dp->in_kick) {
        dp->again = true;
        return;
    }
    dp->in_kick = true;
    do {
        dp->again = false;
        if (!dp->recovered) {
            if (!dp->recovering) {
                dp->recovering = true;
                pm_daemon_write (dp->d, notify_requeue_write, s_requeued_cb, &dp->requeue);
            }
            break;
        }
        for (int i = 0; i < NOTIFY_NCHANNELS; i++)
            s_lane_step (&dp->lanes[i]);
    } while (dp->again);
    dp->in_kick = false;
}

static void
s_start_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    notify_dispatch_kick (w->data);
}

/* --- life ---------------------------------------------------------------------------------- */

static int
s_int (const pm_config_t *cfg, const char *key, int64_t def, int64_t min, int64_t *out)
{
    char *err = NULL;
    if (pm_config_int (cfg, "notify", key, def, out, &err) != PM_OK) {
        pm_error ("%s", err);
        free (err);
        return PM_ECONFIG;
    }
    if (*out < min) {
        char why[64];
        snprintf (why, sizeof why, "expected at least %lld", (long long) min);
        char *msg = pm_config_error (cfg, "notify", key, why);
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    return PM_OK;
}

static int
s_lane_init (notify_dispatch_t *dp, s_lane_t *l, int ch, const pm_config_t *cfg)
{
    const char *c = notify_channels[ch];
    char key[64];
    l->dp = dp;
    l->channel = ch;
    snprintf (key, sizeof key, "%s_gateway", c);
    const char *kind = pm_config_get (cfg, "notify", key, "file");
    char *err = NULL;
    l->gw = notify_gateway_new (kind, ch, dp->loop, cfg, &err);
    if (!l->gw) {
        pm_error ("%s", err ? err : "notify: gateway did not start");
        free (err);
        return PM_ECONFIG;
    }
    bool file = strcmp (l->gw->kind, "file") == 0;
    int64_t rate, burst, conc, batch;
    snprintf (key, sizeof key, "%s_rate", c);
    if (s_int (cfg, key, 0, 0, &rate) != PM_OK)
        return PM_ECONFIG;
    snprintf (key, sizeof key, "%s_burst", c);
    if (s_int (cfg, key, rate > 0 ? rate : 1, 1, &burst) != PM_OK)
        return PM_ECONFIG;
    snprintf (key, sizeof key, "%s_concurrency", c);
    if (s_int (cfg, key, file ? 1000 : 16, 1, &conc) != PM_OK)
        return PM_ECONFIG;
    snprintf (key, sizeof key, "%s_batch", c);
    if (s_int (cfg, key, file ? 1000 : conc, 1, &batch) != PM_OK)
        return PM_ECONFIG;
    l->rate = (double) rate;
    l->burst = (double) burst;
    l->tokens = l->burst;
    l->refill_us = pm_mono_us ();
    l->concurrency = conc;
    l->batch = batch;
    ev_timer_init (&l->timer, s_lane_timer_cb, 0.0, 0.0);
    l->timer.data = l;
    pm_metrics_t *m = pm_daemon_metrics (dp->d);
    char labels[64];
    snprintf (labels, sizeof labels, "channel=\"%s\"", c);
    l->m_send_us = pm_metric (m, PM_HISTOGRAM, "notify_gateway_us", labels,
                              "From handing a message to the gateway to its answer, microseconds");
    l->m_rate_limited = pm_metric (m, PM_COUNTER, "notify_rate_limited_total", labels,
                                   "Times the lane waited for a token of its rate limit");
    l->m_paused = pm_metric (m, PM_COUNTER, "notify_provider_pauses_total", labels,
                             "Times the provider asked to slow down (429 with Retry-After)");
    char r[48];
    snprintf (r, sizeof r, rate ? "%lld/s (burst %lld)" : "no rate limit", (long long) rate, (long long) burst);
    pm_info ("notify: %s lane: %s gateway, %s, %lld in flight, %lld a claim", c, l->gw->kind, r, (long long) conc,
             (long long) batch);
    return PM_OK;
}

notify_dispatch_t *
notify_dispatch_new (notify_app_t *app, const pm_config_t *cfg)
{
    notify_dispatch_t *dp = pm_xcalloc (1, sizeof *dp);
    dp->app = app;
    dp->d = app->d;
    dp->loop = pm_daemon_loop (app->d);
    for (int ch = 0; ch < NOTIFY_NCHANNELS; ch++)
        if (s_lane_init (dp, &dp->lanes[ch], ch, cfg) != PM_OK) {
            notify_dispatch_destroy (&dp);
            return NULL;
        }
    ev_timer_init (&dp->start, s_start_cb, 0.0, 0.0);
    dp->start.data = dp;
    ev_timer_start (dp->loop, &dp->start); /* the first look, once the loop runs */
    return dp;
}

void
notify_dispatch_destroy (notify_dispatch_t **p)
{
    if (!p || !*p)
        return;
    notify_dispatch_t *dp = *p;
    ev_timer_stop (dp->loop, &dp->start);
    for (int ch = 0; ch < NOTIFY_NCHANNELS; ch++) {
        s_lane_t *l = &dp->lanes[ch];
        if (l->dp)
            ev_timer_stop (dp->loop, &l->timer);
        if (l->gw)
            l->gw->destroy (l->gw); /* aborts what is in flight: no callbacks */
        while (l->flights) {
            s_flight_t *f = l->flights;
            l->flights = f->next;
            notify_send_free (f->msg);
            free (f);
        }
        s_claim_free (&l->claim);
        free (l->report.results);
        free (l->results);
    }
    free (dp);
    *p = NULL;
}

void
notify_dispatch_set_gateway (notify_dispatch_t *dp, int channel, notify_gateway_t *g)
{
    s_lane_t *l = &dp->lanes[channel];
    if (l->gw)
        l->gw->destroy (l->gw);
    l->gw = g;
}

bool
notify_dispatch_idle (const notify_dispatch_t *dp)
{
    if (!dp->recovered || pm_daemon_writes_queued (dp->d))
        return false;
    for (int ch = 0; ch < NOTIFY_NCHANNELS; ch++) {
        const s_lane_t *l = &dp->lanes[ch];
        if (l->claiming || l->reporting || l->inflight || l->nresults)
            return false;
    }
    return true;
}

void
notify_dispatch_gauges (notify_dispatch_t *dp, pm_metrics_t *m)
{
    int64_t now = pm_mono_us ();
    for (int ch = 0; ch < NOTIFY_NCHANNELS; ch++) {
        s_lane_t *l = &dp->lanes[ch];
        char labels[64];
        snprintf (labels, sizeof labels, "channel=\"%s\"", notify_channels[ch]);
        pm_gauge (m, "notify_in_flight", labels, "Messages claimed and at the gateway, not yet answered",
                  (double) l->inflight);
        double rate = now - l->window_start_us > 2 * S_WINDOW_US ? 0 : l->drain_rate;
        if (l->window_start_us && now - l->window_start_us >= 1000000 && now - l->window_start_us <= S_WINDOW_US
            && l->window_n)
            rate = (double) l->window_n / ((double) (now - l->window_start_us) / 1e6);
        pm_gauge (m, "notify_drain_rate", labels, "Messages the gateway took per second, over the last seconds", rate);
    }
}
