/* dispatch.c - the dispatcher: the only part of notify that talks to the
 * outside world, and never from a handler.
 *
 * It lives in the app context, driven by the loop: the spec's committed hook
 * (something was just made durable), a timer per channel (the next due
 * message, the next rate token, the end of a provider's Retry-After pause) and
 * the gateways' completions. Per channel ("lane"):
 *
 *   1. claim    it reads the committed queue (table ready_<channel>: due, id),
 *               takes as many due messages as the lane claims ahead, and
 *               queues claim writes (pm_daemon_write), 128 messages each. A write
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
 * one lane (its concurrency) plus the answers not yet reported (a few ms) are
 * in that window; messages claimed ahead but not yet handed over are put back
 * too, but they were never sent.
 *
 * Rate: a token bucket per lane (rate per second, burst), in real time,
 * taken at each send; a 429 pauses the lane for its Retry-After. Deferred
 * messages that become due together (08:00 after quiet hours) thus drain at
 * the lane's rate. */
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
/* Messages per claim or report write: each write is one item of the group
 * commit, and reads are answered between items, so a write stays short. */
#define S_CHUNK 128
/* Answers wait at most this long for more before they are committed: one
 * commit for many answers, not one each. */
#define S_REPORT_WAIT_S 0.002

typedef struct s_lane s_lane_t;

/* One message at the gateway. */
typedef struct s_flight {
    s_lane_t *lane;
    notify_send_t *msg;
    int64_t t0_us;
    struct s_flight *prev, *next; /* every claimed message of the lane */
    struct s_flight *qnext;       /* the queue of those not yet handed to the gateway */
} s_flight_t;

struct s_lane {
    notify_dispatch_t *dp;
    int channel;
    notify_gateway_t *gw;
    double rate, burst;     /* tokens a second (0: no limit), bucket size */
    double tokens;
    int64_t refill_us;
    int64_t concurrency;    /* messages at the gateway at once, at most */
    int64_t prefetch;       /* messages claimed ahead (queued or being claimed), at most */
    int64_t inflight;       /* at the gateway, not yet answered */
    int64_t asked;          /* in claim writes not yet committed */
    int64_t nqueued;        /* claimed, waiting for room at the gateway */
    int64_t paused_until_us;
    int claiming, reporting;  /* claim and report writes queued (chunks of S_CHUNK messages) */
    notify_result_t *results; /* answers waiting for the next report */
    size_t nresults, rcap;
    s_flight_t *flights;
    s_flight_t *qhead, *qtail;
    ev_timer timer;
    ev_timer report_timer;  /* a short wait for more answers before a report */
    int64_t window_start_us;
    uint64_t window_n;
    double drain_rate;
    pm_metric_t *m_send_us, *m_rate_limited, *m_paused;
};

/* A claim or report write queued: the write's argument is the first member;
 * every one is on the dispatcher's list, so that writes the runtime drops
 * when the daemon stops (their callbacks never run) are freed. */
typedef struct s_pending s_pending_t;
struct s_pending {
    s_pending_t *prev, *next;
    bool claim;
};

typedef struct {
    notify_claim_t claim;
    s_lane_t *lane;
    s_pending_t node;
} s_claim_t;

typedef struct {
    notify_report_t report;
    s_lane_t *lane;
    s_pending_t node;
} s_report_t;

struct notify_dispatch {
    notify_app_t *app;
    pm_daemon_t *d;
    struct ev_loop *loop;
    s_lane_t lanes[NOTIFY_NCHANNELS];
    notify_requeue_t requeue;
    s_pending_t *pending;   /* claim and report writes queued */
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
s_pending_add (notify_dispatch_t *dp, s_pending_t *p)
{
    p->prev = NULL;
    p->next = dp->pending;
    if (dp->pending)
        dp->pending->prev = p;
    dp->pending = p;
}

static void
s_pending_del (notify_dispatch_t *dp, s_pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        dp->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

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

/* Hands queued messages to the gateway while it has room (and the provider
 * did not ask for a pause). A synchronous gateway answers inside send, whose
 * kick then only marks work to do. */
static void
s_send_queued (s_lane_t *l)
{
    if (!l->qhead || l->paused_until_us > pm_mono_us ())
        return;
    notify_dispatch_t *dp = l->dp;
    bool was = dp->in_kick;
    dp->in_kick = true;
    bool sent = false;
    while (l->qhead && l->inflight < l->concurrency) {
        if (l->rate > 0) { /* the rate holds at the gateway: a token a send */
            s_refill (l, pm_mono_us ());
            if (l->tokens < 1.0) {
                s_wake_in (l, (int64_t) ((1.0 - l->tokens) * 1e6 / l->rate) + 1);
                pm_metric_inc (l->m_rate_limited, 1);
                break;
            }
            l->tokens -= 1.0;
        }
        s_flight_t *f = l->qhead;
        l->qhead = f->qnext;
        if (!l->qhead)
            l->qtail = NULL;
        l->nqueued--;
        l->inflight++;
        f->t0_us = pm_mono_us ();
        sent = true;
        l->gw->send (l->gw, f->msg, s_sent_cb, f);
    }
    if (sent && l->gw->flush)
        l->gw->flush (l->gw);
    dp->in_kick = was;
}

static void
s_claimed_cb (int status, void *arg)
{
    s_claim_t *w = arg;
    s_lane_t *l = w->lane;
    notify_claim_t *c = &w->claim;
    s_pending_del (l->dp, &w->node);
    l->claiming--;
    size_t asked = c->n, got = status == PM__V1__STATUS__OK ? c->nclaimed : 0;
    if (status != PM__V1__STATUS__OK)
        pm_warn ("notify: claiming %zu %s message(s) failed (%s); trying again", asked, notify_channels[l->channel],
                 pm_status_name (status));
    l->asked -= (int64_t) asked;
    for (size_t i = 0; i < got; i++) { /* queued in claim order: earliest due first */
        s_flight_t *f = pm_xcalloc (1, sizeof *f);
        f->lane = l;
        f->msg = c->claimed[i];
        c->claimed[i] = NULL;
        f->next = l->flights;
        if (l->flights)
            l->flights->prev = f;
        l->flights = f;
        if (l->qtail)
            l->qtail->qnext = f;
        else
            l->qhead = f;
        l->qtail = f;
        l->nqueued++;
    }
    c->nclaimed = 0;
    s_claim_free (c);
    free (w);
    s_send_queued (l);
    notify_dispatch_kick (l->dp);
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
    s_report_t *w = arg;
    s_lane_t *l = w->lane;
    s_pending_del (l->dp, &w->node);
    l->reporting--;
    if (status != PM__V1__STATUS__OK) { /* not durable: these answers go in a later report */
        pm_warn ("notify: committing %zu %s outcome(s) failed (%s); trying again", w->report.n,
                 notify_channels[l->channel], pm_status_name (status));
        if (l->nresults + w->report.n > l->rcap) {
            l->rcap = l->nresults + w->report.n;
            l->results = pm_xrealloc (l->results, l->rcap * sizeof *l->results);
        }
        memcpy (l->results + l->nresults, w->report.results, w->report.n * sizeof *l->results);
        l->nresults += w->report.n;
    }
    free (w->report.results);
    free (w);
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

/* Queues the answers collected so far, S_CHUNK a write. */
static void
s_report (s_lane_t *l)
{
    for (size_t i = 0; i < l->nresults; i += S_CHUNK) {
        size_t n = l->nresults - i < S_CHUNK ? l->nresults - i : S_CHUNK;
        s_report_t *w = pm_xcalloc (1, sizeof *w);
        w->lane = l;
        w->report.results = pm_xmalloc (n * sizeof *w->report.results);
        memcpy (w->report.results, l->results + i, n * sizeof *w->report.results);
        w->report.n = n;
        w->node.claim = false;
        s_pending_add (l->dp, &w->node);
        l->reporting++;
        pm_daemon_write (l->dp->d, notify_report_write, s_reported_cb, w);
    }
    l->nresults = 0;
}

static void
s_report_timer_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    s_lane_t *l = w->data;
    if (l->nresults && !l->reporting)
        s_report (l);
    notify_dispatch_kick (l->dp);
}

/* Commits the answers now when there are enough, or none will follow soon;
 * else after a short wait for more (S_REPORT_WAIT_S). */
static void
s_report_maybe (s_lane_t *l, bool now)
{
    if (!l->nresults || l->reporting)
        return;
    if (now || l->nresults >= S_CHUNK || (!l->inflight && !l->nqueued)) {
        ev_timer_stop (l->dp->loop, &l->report_timer);
        s_report (l);
    }
    else if (!ev_is_active (&l->report_timer)) {
        ev_timer_set (&l->report_timer, S_REPORT_WAIT_S, 0.0);
        ev_timer_start (l->dp->loop, &l->report_timer);
    }
}

static void
s_lane_step (s_lane_t *l)
{
    notify_dispatch_t *dp = l->dp;
    s_report_maybe (l, false);
    s_send_queued (l);
    if (l->claiming)
        return;
    int64_t now_us = pm_mono_us ();
    if (l->paused_until_us > now_us) {
        s_wake_in (l, l->paused_until_us - now_us);
        return;
    }
    /* claim ahead of the gateway (one claim's commit takes longer than an
     * answer), but only when the queue ran low: claims stay large */
    int64_t want = l->prefetch - l->nqueued - l->asked;
    if (want <= 0 || (l->nqueued > 0 && want < l->prefetch / 2))
        return; /* an answer, or the claim's commit, kicks again */
    pm_clock_t *clock = pm_daemon_clock (dp->d);
    int64_t now_ms = pm_clock_now_ms (clock);
    int table = NOTIFY_READY_SMS + l->channel;
    pm_txn_t t;
    if (pm_txn_begin_read (&t, pm_daemon_store (dp->d)) != PM_OK)
        return;
    pm_key_t to;
    pm_key (&to, "t", now_ms + 1);
    pm_scan_t s;
    size_t n = 0;
    s_claim_t *w = NULL;
    for (pm_scan_range (&s, &t, table, NULL, &to); s.ok && (int64_t) n < want; pm_scan_next (&s)) {
        if (!w || w->claim.n == S_CHUNK) {
            if (w) {
                l->claiming++;
                pm_daemon_write (dp->d, notify_claim_write, s_claimed_cb, w);
            }
            w = pm_xcalloc (1, sizeof *w);
            w->lane = l;
            w->node.claim = true;
            s_pending_add (dp, &w->node);
            w->claim.channel = l->channel;
            w->claim.keys = pm_xcalloc (S_CHUNK, sizeof *w->claim.keys);
            w->claim.klens = pm_xcalloc (S_CHUNK, sizeof *w->claim.klens);
        }
        w->claim.keys[w->claim.n] = pm_xmalloc (s.key.mv_size);
        memcpy (w->claim.keys[w->claim.n], s.key.mv_data, s.key.mv_size);
        w->claim.klens[w->claim.n++] = s.key.mv_size;
        n++;
    }
    pm_scan_end (&s);
    if (w) {
        l->claiming++;
        pm_daemon_write (dp->d, notify_claim_write, s_claimed_cb, w);
        s_report_maybe (l, true); /* in the same commit */
    }
    int64_t next_due = INT64_MAX;
    if (!n) { /* nothing due: when is the next? */
        pm_scan_t x;
        if (pm_scan_prefix (&x, &t, table, NULL)) {
            int64_t due;
            if (pm_key_parse (x.key.mv_data, x.key.mv_size, "ts", &due, NULL) == PM_OK)
                next_due = due;
        }
        pm_scan_end (&x);
    }
    pm_txn_abort (&t);
    if (!n) {
        /* a manual clock moves only by ops.clock, whose commit kicks us */
        if (next_due != INT64_MAX && !pm_clock_is_manual (clock))
            s_wake_in (l, (next_due - now_ms) * 1000);
        return;
    }
    l->asked += (int64_t) n;
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
    int64_t rate, burst, conc, prefetch;
    snprintf (key, sizeof key, "%s_rate", c);
    if (s_int (cfg, key, 0, 0, &rate) != PM_OK)
        return PM_ECONFIG;
    snprintf (key, sizeof key, "%s_burst", c);
    if (s_int (cfg, key, rate > 0 ? rate : 1, 1, &burst) != PM_OK)
        return PM_ECONFIG;
    if (file) { /* synchronous: a claim's messages are written at once, then flushed */
        if (s_int (cfg, "file_batch", 1000, 1, &prefetch) != PM_OK)
            return PM_ECONFIG;
        conc = prefetch;
    }
    else { /* a claim's commit takes longer than an answer: claim 4 x the concurrency ahead */
        snprintf (key, sizeof key, "%s_concurrency", c);
        if (s_int (cfg, key, 16, 1, &conc) != PM_OK)
            return PM_ECONFIG;
        prefetch = conc * 4;
    }
    if (rate > 0 && prefetch > burst + rate) /* a rate-limited lane claims about a second ahead */
        prefetch = burst + rate;
    l->rate = (double) rate;
    l->burst = (double) burst;
    l->tokens = l->burst;
    l->refill_us = pm_mono_us ();
    l->concurrency = conc;
    l->prefetch = prefetch;
    ev_timer_init (&l->timer, s_lane_timer_cb, 0.0, 0.0);
    l->timer.data = l;
    ev_timer_init (&l->report_timer, s_report_timer_cb, 0.0, 0.0);
    l->report_timer.data = l;
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
    pm_info ("notify: %s lane: %s gateway, %s, %lld in flight, %lld claimed ahead", c, l->gw->kind, r, (long long) conc,
             (long long) prefetch);
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
        if (l->dp) {
            ev_timer_stop (dp->loop, &l->timer);
            ev_timer_stop (dp->loop, &l->report_timer);
        }
        if (l->gw)
            l->gw->destroy (l->gw); /* aborts what is in flight: no callbacks */
        while (l->flights) {
            s_flight_t *f = l->flights;
            l->flights = f->next;
            notify_send_free (f->msg);
            free (f);
        }
        free (l->results); /* claim and report writes still queued are dropped with the daemon */
    }
    while (dp->pending) { /* writes the runtime dropped: their callbacks never ran */
        s_pending_t *n = dp->pending;
        s_pending_del (dp, n);
        if (n->claim) {
            s_claim_t *w = (s_claim_t *) ((char *) n - offsetof (s_claim_t, node));
            s_claim_free (&w->claim);
            free (w);
        }
        else {
            s_report_t *w = (s_report_t *) ((char *) n - offsetof (s_report_t, node));
            free (w->report.results);
            free (w);
        }
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
        if (l->claiming || l->reporting || l->inflight || l->nresults || l->nqueued)
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
