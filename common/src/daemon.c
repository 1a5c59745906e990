/* daemon.c - a daemon's life: options, config, creation, sockets, the loop,
 * signals, teardown. The work of each turn is in batch.c; consuming other
 * daemons in upstream.c; the built-in methods in ops.c (see daemon_int.h).
 *
 * pm_daemon_main reads as the whole story (as Redis's main does):
 *   config -> store + app + subscriptions -> sockets -> loop -> teardown. */
#define _GNU_SOURCE
#include "daemon_int.h"
#include "pm/curve.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <zmq.h>

/* --- options and configuration ------------------------------------------------ */

static void
s_usage (const char *name, FILE *f)
{
    fprintf (f,
             "usage: pm-%s [-c FILE]\n"
             "  Runs the %s daemon until SIGTERM or SIGINT.\n"
             "\n"
             "  -c, --config FILE  configuration (default: $PM_CONFIG, else the embedded\n"
             "                     deploy/pm.conf); PM_HOME puts var/ elsewhere and\n"
             "                     PM_<SECTION>_<KEY> overrides any key\n"
             "  -h, --help         this help\n",
             name, name);
}

pm_config_t *
pm_daemon_config (const char *name, int argc, char **argv, int *exit_code)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = getenv ("PM_CONFIG");
    *exit_code = 2;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long (argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            s_usage (name, stdout);
            *exit_code = 0;
            return NULL;
        case ':':
            fprintf (stderr, "pm-%s: %s needs a value (try --help)\n", name, argv[optind - 1]);
            return NULL;
        default:
            fprintf (stderr, "pm-%s: unknown option '%s' (try --help)\n", name, argv[optind - 1]);
            return NULL;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "pm-%s: unexpected argument '%s' (try --help)\n", name, argv[optind]);
        return NULL;
    }
    char *err = NULL;
    pm_config_t *cfg = pm_config_load (path && *path ? path : NULL, &err);
    if (!cfg) {
        fprintf (stderr, "pm-%s: %s\n", name, err ? err : "cannot load config");
        free (err);
        return NULL;
    }
    const char *lv = pm_config_get (cfg, "general", "log_level", "info");
    int level = pm_log_level_parse (lv);
    if (level < 0) {
        char *msg = pm_config_error (cfg, "general", "log_level", "expected debug, info, warn or error");
        fprintf (stderr, "pm-%s: %s\n", name, msg);
        free (msg);
        pm_config_destroy (&cfg);
        return NULL;
    }
    pm_log_init (name, level);
    *exit_code = 0;
    return cfg;
}

static int
s_cfg_int (pm_daemon_t *d, const char *section, const char *key, int64_t def, int64_t min, int64_t *out)
{
    char *err = NULL;
    if (pm_config_int (d->cfg, section, key, def, out, &err) != PM_OK) {
        pm_error ("%s", err);
        free (err);
        return PM_ECONFIG;
    }
    if (*out < min) {
        char why[64];
        snprintf (why, sizeof why, "expected at least %lld", (long long) min);
        char *msg = pm_config_error (d->cfg, section, key, why);
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    return PM_OK;
}

/* --- creation ------------------------------------------------------------------- */

static int
s_lock (pm_daemon_t *d, const char *dir)
{
    char *path = pm_xasprintf ("%s/daemon.lock", dir);
    d->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (d->lock_fd < 0) {
        pm_error ("cannot open %s: %s", path, strerror (errno));
        free (path);
        return PM_EIO;
    }
    if (flock (d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = "";
        ssize_t n = pread (d->lock_fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn (buf, "\n")] = '\0';
        pm_error ("%s is already running (pid %s, lock %s)", d->name, buf[0] ? buf : "?", path);
        free (path);
        return PM_EEXIST;
    }
    char pid[32];
    int n = snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
    if (ftruncate (d->lock_fd, 0) != 0 || pwrite (d->lock_fd, pid, (size_t) n, 0) != n)
        pm_warn ("cannot write pid to %s", path);
    free (path);
    return PM_OK;
}

static void
s_route_add (pm_daemon_t *d, const pm_route_t *r, bool builtin)
{
    s_route_t *x = &d->routes[d->nroutes++];
    memset (x, 0, sizeof *x);
    x->method = r->method;
    x->fn = r->fn;
    x->flags = r->flags;
    x->builtin = builtin;
}

/* The NULL-terminated domain table names the store opens, from the spec's
 * id-indexed array (a gap is a programmer's error). */
static const char **
s_table_names (const pm_daemon_spec_t *spec)
{
    int n = spec->tables ? spec->ntables - PM_DB_FIRST_DOMAIN : 0;
    const char **names = pm_xcalloc ((size_t) (n > 0 ? n : 0) + 1, sizeof *names);
    for (int i = 0; i < n; i++) {
        names[i] = spec->tables[PM_DB_FIRST_DOMAIN + i];
        if (!names[i]) {
            pm_error ("%s: table id %d has no name in the spec", spec->name, PM_DB_FIRST_DOMAIN + i);
            free (names);
            return NULL;
        }
    }
    return names;
}

static void s_tick_cb (struct ev_loop *loop, ev_timer *w, int revents);
static void s_due_cb (struct ev_loop *loop, ev_timer *w, int revents);
static void s_wake_cb (struct ev_loop *loop, ev_idle *w, int revents);

static void
s_metrics_init (pm_daemon_t *d)
{
    pm_metrics_t *m = d->metrics;
    d->m_batch = pm_metric (m, PM_HISTOGRAM, "pm_batch_messages", NULL, "Messages applied per group commit");
    d->m_batch_bytes = pm_metric (m, PM_HISTOGRAM, "pm_batch_bytes", NULL,
                                  "Bytes of requests and events applied per group commit");
    d->m_commit_us = pm_metric (m, PM_HISTOGRAM, "pm_commit_us", NULL,
                                "Apply and durable commit of one batch, microseconds");
    d->m_req_us = pm_metric (m, PM_HISTOGRAM, "pm_request_us", NULL,
                             "Write requests: first read of their batch off the socket to reply sent, microseconds");
    d->m_read_us = pm_metric (m, PM_HISTOGRAM, "pm_read_us", NULL,
                              "Reads: first read of their turn off the socket to reply sent, microseconds");
    d->m_turn_us = pm_metric (m, PM_HISTOGRAM, "pm_loop_turn_us", NULL,
                              "One turn of the loop (drain, apply, commit, reply), microseconds; max is the longest");
    d->m_events = pm_metric (m, PM_COUNTER, "pm_events_published_total", NULL,
                             "Events committed to the outbox and published");
    d->m_bad = pm_metric (m, PM_COUNTER, "pm_bad_frames_total", NULL,
                          "Messages refused at the door: malformed, oversized, unknown method, no id");
    d->m_unknown = pm_metric (m, PM_COUNTER, "pm_requests_total", "method=\"(unknown)\",status=\"INVALID\"",
                              "Requests answered, by method and status");
    d->m_undeliverable = pm_metric (m, PM_COUNTER, "pm_replies_undeliverable_total", NULL,
                                    "Replies whose client was gone (it retries and gets the stored reply)");
    d->m_mapgrow = pm_metric (m, PM_COUNTER, "pm_map_grow_total", NULL,
                              "Times the LMDB map was grown after MDB_MAP_FULL");
    d->m_commit_fail = pm_metric (m, PM_COUNTER, "pm_commit_failures_total", NULL,
                                  "Group commits that failed (nothing applied, clients told UNAVAILABLE)");
    d->m_dead = pm_metric (m, PM_COUNTER, "pm_events_dead_total", NULL,
                           "Consumed events and timers that could not be applied (see ops.queues dead_events)");
    d->m_timers_fired = pm_metric (m, PM_COUNTER, "pm_timers_fired_total", NULL, "Durable timers fired");
    d->m_timer_late_ms = pm_metric (m, PM_HISTOGRAM, "pm_timer_late_ms", NULL,
                                    "How late a durable timer fired after its due time, milliseconds");
    d->m_disconnects = pm_metric (m, PM_COUNTER, "pm_connections_dropped_total", NULL,
                                  "Client connections closed: by the client, or by libzmq for a frame over "
                                  "4 x max_request_bytes (such a frame gets no reply)");
}

pm_daemon_t *
pm_daemon_new (const pm_daemon_spec_t *spec, pm_config_t *cfg, struct ev_loop *loop)
{
    /* A write past RLIMIT_FSIZE (a file size limit: a full disk's cousin) must
     * fail with EFBIG, so the group commit answers UNAVAILABLE and the daemon
     * goes on once there is room, instead of SIGXFSZ ending the process. */
    signal (SIGXFSZ, SIG_IGN);
    pm_daemon_t *d = pm_xcalloc (1, sizeof *d);
    d->spec = spec;
    d->name = spec->name;
    d->cfg = cfg;
    d->lock_fd = -1;
    d->clock_pending = -1;
    d->rebuild_pending = -1;
    d->metrics = pm_metrics_new ();
    d->arena = pm_arena_new ();
    d->rarena = pm_arena_new ();
    s_metrics_init (d);

    int64_t map_mb;
    bool manual = false;
    char *err = NULL;
    if (!pm_config_get (cfg, spec->name, "command", NULL)) {
        pm_error ("%s: no [%s] section with a 'command' endpoint", pm_config_name (cfg), spec->name);
        goto fail;
    }
    if (s_cfg_int (d, "general", "batch_max", 10000, 1, &d->batch_max)
        || s_cfg_int (d, "general", "batch_max_us", 30000, 1000, &d->batch_max_us)
        || s_cfg_int (d, "general", "batch_bulk_us", 240000, 1000, &d->batch_bulk_us)
        || s_cfg_int (d, "general", "max_request_bytes", 4 << 20, 1024, &d->max_request_bytes)
        || s_cfg_int (d, "general", "idem_retention_h", 48, 24, &d->idem_retention_ms)
        || s_cfg_int (d, "general", "event_retention_d", 30, 1, &d->event_retention_ms)
        || s_cfg_int (d, "general", "replay_timeout_ms", 2000, 10, &d->replay_timeout_ms)
        || s_cfg_int (d, "general", "heartbeat_ms", 1000, 10, &d->heartbeat_ms)
        || s_cfg_int (d, spec->name, "map_size_mb", 64, 1, &map_mb))
        goto fail;
    d->idem_retention_ms *= 3600 * 1000;
    d->event_retention_ms *= 86400 * 1000;
    if (pm_config_bool (cfg, "general", "manual_clock", false, &manual, &err) != PM_OK) {
        pm_error ("%s", err);
        free (err);
        goto fail;
    }
    d->clock = pm_clock_new (manual);

    const char *data = pm_config_get (cfg, spec->name, "data", NULL);
    if (!data || !*data) {
        pm_error ("%s: [%s] data: missing (the LMDB directory)", pm_config_name (cfg), spec->name);
        goto fail;
    }
    if (pm_mkdirs (data) != PM_OK) {
        pm_error ("cannot create %s: %s", data, strerror (errno));
        goto fail;
    }
    if (s_lock (d, data) != PM_OK)
        goto fail;
    const char **tables = s_table_names (spec);
    if (!tables)
        goto fail;
    d->store = pm_store_open (data, (size_t) map_mb << 20, tables);
    free (tables);
    if (!d->store)
        goto fail;

    /* Durable state the runtime keeps: outbox seq, manual clock. */
    pm_txn_t t;
    if (pm_txn_begin_read (&t, d->store) != PM_OK)
        goto fail;
    d->committed_seq = pm_meta_get_u64 (&t, "last_seq");
    uint64_t clock_ms = pm_meta_get_u64 (&t, "clock_manual_ms");
    pm_txn_abort (&t);
    d->next_seq = d->committed_seq + 1;
    if (clock_ms && manual)
        pm_clock_set_ms (d->clock, (int64_t) clock_ms);
    d->started_ms = pm_clock_now_ms (d->clock);

    size_t n = 0, nb = 0;
    for (int i = 0; spec->routes && spec->routes[i].method; i++)
        n++;
    while (pm__builtins[nb].method)
        nb++;
    d->routes = pm_xcalloc (n + nb, sizeof *d->routes);
    for (size_t i = 0; i < nb; i++)
        s_route_add (d, &pm__builtins[i], true);
    for (size_t i = 0; i < n; i++)
        s_route_add (d, &spec->routes[i], false);

    d->loop = loop;
    if (!d->loop) {
        d->loop = ev_default_loop (0);
        d->own_loop = true;
    }
    d->zctx = zmq_ctx_new ();
    d->cap = 1024;
    d->items = pm_xcalloc (d->cap, sizeof *d->items);
    d->emitted_cap = 1024;
    d->emitted = pm_xcalloc (d->emitted_cap, sizeof *d->emitted);
    ev_timer_init (&d->tick, s_tick_cb, 0.0, 0.0);
    d->tick.data = d;
    ev_timer_init (&d->due, s_due_cb, 0.0, 0.0);
    d->due.data = d;
    ev_idle_init (&d->wake, s_wake_cb);
    d->wake.data = d;

    if (spec->app_new) {
        d->app = spec->app_new (d, cfg);
        if (!d->app)
            goto fail;
    }
    for (int i = 0; spec->upstreams && spec->upstreams[i].source; i++)
        if (pm__upstream_add (d, &spec->upstreams[i]) != PM_OK)
            goto fail;
    pm_info ("%s: store %s (map %zu MiB), last seq %llu%s", d->name, data, pm_store_map_size (d->store) >> 20,
             (unsigned long long) d->committed_seq, manual ? ", manual clock allowed" : "");
    return d;
fail:
    pm_daemon_destroy (&d);
    return NULL;
}

void *
pm__socket (pm_daemon_t *d, int type)
{
    void *s = zmq_socket (d->zctx, type);
    int linger = 0, hwm = 100000;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    return s;
}

/* For ipc:// endpoints, creates the socket's directory. */
static void
s_ipc_dir (const char *endpoint)
{
    if (strncmp (endpoint, "ipc://", 6) != 0)
        return;
    char *p = pm_xstrdup (endpoint + 6);
    char *slash = strrchr (p, '/');
    if (slash && slash != p) {
        *slash = '\0';
        pm_mkdirs (p);
    }
    free (p);
}

static void
s_router_cb (pm_zwatch_t *w, void *sock, void *arg)
{
    pm__pump (arg);
}

/* libzmq's socket monitor: [event u16 + value u32][endpoint]. Every closed
 * client connection is counted, including the ones libzmq drops for an
 * oversized frame (no reply is possible to those). */
static void
s_monitor_cb (pm_zwatch_t *w, void *sock, void *arg)
{
    pm_daemon_t *d = arg;
    for (;;) {
        zmq_msg_t a;
        zmq_msg_init (&a);
        if (zmq_msg_recv (&a, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&a);
            return;
        }
        bool more = zmq_msg_more (&a);
        if (zmq_msg_size (&a) >= 2) {
            uint16_t ev;
            memcpy (&ev, zmq_msg_data (&a), 2);
            if (ev == ZMQ_EVENT_DISCONNECTED)
                pm_metric_inc (d->m_disconnects, 1);
        }
        zmq_msg_close (&a);
        while (more) {
            zmq_msg_t b;
            zmq_msg_init (&b);
            if (zmq_msg_recv (&b, sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&b);
                break;
            }
            more = zmq_msg_more (&b);
            zmq_msg_close (&b);
        }
    }
}

int
pm_daemon_bind (pm_daemon_t *d)
{
    const char *command = pm_config_get (d->cfg, d->name, "command", NULL);
    const char *events = pm_config_get (d->cfg, d->name, "events", NULL);
    if (!command || !events) {
        pm_error ("%s: [%s] needs 'command' and 'events' endpoints", pm_config_name (d->cfg), d->name);
        return PM_ECONFIG;
    }
    int err;
    d->zap = pm_zap_new (d->cfg, d->name, d->zctx, d->loop, &err); /* before the first CURVE handshake */
    if (err != PM_OK)
        return err;
    d->router = pm__socket (d, ZMQ_ROUTER);
    d->pub = pm__socket (d, ZMQ_PUB);
    /* A subscriber that falls behind by more than this many events loses the
     * rest of the live feed and replays it from the log (DESIGN.md section 3):
     * the queue is this process's memory, per subscriber (100,000 was 100 MiB
     * of intake's at a million units). */
    int pub_hwm = PM_LIVE_HWM;
    zmq_setsockopt (d->pub, ZMQ_SNDHWM, &pub_hwm, sizeof pub_hwm);
    if (pm_curve_server (d->cfg, d->name, d->router) != PM_OK || pm_curve_server (d->cfg, d->name, d->pub) != PM_OK)
        return PM_ECONFIG;
    int one = 1;
    zmq_setsockopt (d->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    int64_t maxmsg = d->max_request_bytes * 4;
    zmq_setsockopt (d->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    s_ipc_dir (command);
    s_ipc_dir (events);
    if (zmq_bind (d->router, command) != 0) {
        pm_error ("cannot bind commands to %s: %s", command, zmq_strerror (errno));
        return PM_EIO;
    }
    if (zmq_bind (d->pub, events) != 0) {
        pm_error ("cannot bind events to %s: %s", events, zmq_strerror (errno));
        return PM_EIO;
    }
    char mon[96];
    snprintf (mon, sizeof mon, "inproc://pm-monitor-%s-%p", d->name, (void *) d);
    if (zmq_socket_monitor (d->router, mon, ZMQ_EVENT_DISCONNECTED) == 0) {
        d->monitor = zmq_socket (d->zctx, ZMQ_PAIR);
        if (zmq_connect (d->monitor, mon) == 0)
            d->wmonitor = pm_zwatch_new (d->loop, d->monitor, s_monitor_cb, d);
    }
    d->wrouter = pm_zwatch_new (d->loop, d->router, s_router_cb, d);
    pm_info ("%s: commands on %s, events on %s", d->name, command, events);
    const char *http = pm_config_get (d->cfg, d->name, "metrics_http", "");
    if (*http) {
        d->http = pm_http_new (d->loop, http, pm__prometheus, d);
        if (!d->http)
            return PM_ECONFIG;
        char host[64] = "127.0.0.1";
        const char *colon = strrchr (http, ':');
        if (colon && colon != http && (size_t) (colon - http) < sizeof host && strncmp (http, "0.0.0.0", 7) != 0)
            snprintf (host, sizeof host, "%.*s", (int) (colon - http), http);
        d->metrics_url = pm_xasprintf ("http://%s:%u/metrics", host, pm_http_port (d->http));
    }
    return PM_OK;
}

void
pm_daemon_destroy (pm_daemon_t **p)
{
    if (!p || !*p)
        return;
    pm_daemon_t *d = *p;
    if (d->loop) {
        ev_timer_stop (d->loop, &d->tick);
        ev_timer_stop (d->loop, &d->due);
        ev_clear_pending (d->loop, &d->wake); /* fed by pm_daemon_write, never started */
    }
    free (d->writes); /* writes never applied: dropped, as pm_daemon_write says */
    pm__served_expire (d, true);
    pm__stash_free (d);
    pm_zwatch_destroy (&d->wrouter);
    pm_zwatch_destroy (&d->wmonitor);
    pm_http_destroy (&d->http);
    free (d->metrics_url);
    for (int i = 0; i < d->nups; i++)
        pm__upstream_free (&d->ups[i]);
    if (d->router) {
        zmq_socket_monitor (d->router, NULL, 0);
        zmq_close (d->router);
    }
    if (d->monitor)
        zmq_close (d->monitor);
    pm_zap_destroy (&d->zap);
    if (d->pub)
        zmq_close (d->pub);
    if (d->zctx)
        zmq_ctx_term (d->zctx);
    if (d->app && d->spec->app_destroy)
        d->spec->app_destroy (d->app);
    pm_store_destroy (&d->store);
    if (d->lock_fd >= 0)
        close (d->lock_fd);
    pm_clock_destroy (&d->clock);
    pm_metrics_destroy (&d->metrics);
    pm_arena_destroy (&d->arena);
    pm_arena_destroy (&d->rarena);
    pm_config_destroy (&d->cfg);
    free (d->routes);
    free (d->items);
    free (d->emitted);
    free (d);
    *p = NULL;
}

pm_store_t *pm_daemon_store (pm_daemon_t *d) { return d->store; }
pm_metrics_t *pm_daemon_metrics (pm_daemon_t *d) { return d->metrics; }
pm_clock_t *pm_daemon_clock (pm_daemon_t *d) { return d->clock; }
struct ev_loop *pm_daemon_loop (pm_daemon_t *d) { return d->loop; }
void *pm_daemon_app (pm_daemon_t *d) { return d->app; }
const char *pm_daemon_name (pm_daemon_t *d) { return d->name; }
uint64_t pm_daemon_last_seq (pm_daemon_t *d) { return d->committed_seq; }

uint64_t
pm_daemon_applied (pm_daemon_t *d, const char *source)
{
    s_upstream_t *u = pm__upstream_find (d, source);
    return u ? u->applied : 0;
}

s_bctx_t
pm__bctx (pm_daemon_t *d, pm_arena_t *arena)
{
    s_bctx_t b = { { d->name, arena, d->metrics, pm_clock_now_ms (d->clock), d->app }, d };
    return b;
}

/* Logs the first of a kind of refusal, then at most one line a second with the
 * count since, so a client in a loop cannot flood the log. */
void
pm__log_rate (pm_daemon_t *d, const char *what, const char *fmt, ...)
{
    static int64_t last_ms;
    static uint64_t suppressed;
    int64_t now = pm_mono_ms ();
    if (now - last_ms < 1000) {
        suppressed++;
        return;
    }
    char line[512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    if (suppressed)
        pm_warn ("%s: %s (and %llu more refusals in the last second)", what, line, (unsigned long long) suppressed);
    else
        pm_warn ("%s: %s", what, line);
    last_ms = now;
    suppressed = 0;
}

/* --- the loop ----------------------------------------------------------------- */

static void
s_tick_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    pm_daemon_t *d = w->data;
    if (d->pub) { /* heartbeat: the latest committed seq, so a lost last event shows as a gap */
        Pm__V1__Event ev = PM__V1__EVENT__INIT;
        Pm__V1__Heartbeat hb = PM__V1__HEARTBEAT__INIT;
        unsigned char buf[128];
        ev.source = (char *) d->name;
        ev.type = "heartbeat";
        ev.at_ms = pm_clock_now_ms (d->clock);
        hb.last_seq = d->committed_seq;
        ev.payload_case = PM__V1__EVENT__PAYLOAD_HEARTBEAT;
        ev.heartbeat = &hb;
        size_t len = pm__v1__event__pack (&ev, buf);
        if (zmq_send (d->pub, "heartbeat", 9, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
            || zmq_send (d->pub, buf, len, ZMQ_DONTWAIT) < 0)
            pm_debug ("heartbeat dropped: %s", zmq_strerror (errno));
    }
    if (d->http)
        pm_http_tick (d->http);
    for (int i = 0; i < d->nups; i++)
        pm__upstream_tick (&d->ups[i]);
    pm__served_expire (d, false);
    pm__prune (d);
    pm__pump (d); /* anything the watchers have not seen yet */
}

static void
s_due_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    pm__pump (w->data);
    pm__timer_arm (w->data); /* woken a little early (the loop's cached time): arm again */
}

/* systemd's watchdog (WatchdogSec=): petted from the loop itself, so a loop
 * stuck in a turn stops petting and systemd restarts the daemon. */
static void
s_watchdog_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    sd_notify (0, "WATCHDOG=1");
}

static void
s_wake_cb (struct ev_loop *loop, ev_idle *w, int revents)
{
    pm__pump (w->data); /* in-process writes were queued (pm_daemon_write) */
}

static void
s_signal_cb (struct ev_loop *loop, ev_signal *w, int revents)
{
    pm_daemon_t *d = w->data;
    pm_info ("%s: signal %d, stopping", d->name, w->signum);
    sd_notify (0, "STOPPING=1");
    pm_daemon_stop (d);
}

void
pm_daemon_stop (pm_daemon_t *d)
{
    ev_break (d->loop, EVBREAK_ALL);
}

int
pm_daemon_run (pm_daemon_t *d)
{
    signal (SIGPIPE, SIG_IGN);
    if (d->own_loop) {
        ev_signal_init (&d->sigterm, s_signal_cb, SIGTERM);
        ev_signal_init (&d->sigint, s_signal_cb, SIGINT);
        d->sigterm.data = d->sigint.data = d;
        ev_signal_start (d->loop, &d->sigterm);
        ev_signal_start (d->loop, &d->sigint);
    }
    if (d->wrouter)
        pm_zwatch_start (d->wrouter);
    if (d->wmonitor)
        pm_zwatch_start (d->wmonitor);
    for (int i = 0; i < d->nups; i++)
        pm__upstream_start (&d->ups[i]); /* catch up from the durable cursor */
    d->last_prune_ms = pm_mono_ms ();
    double period = (double) d->heartbeat_ms / 1000.0;
    ev_timer_set (&d->tick, period, period);
    ev_timer_start (d->loop, &d->tick);
    pm__timer_arm (d);
    pm_info ("%s: ready (pid %d)", d->name, (int) getpid ());
    if (d->own_loop) {
        /* systemd (Type=notify): ready once the sockets are bound and the
         * upstreams asked for; a no-op when not started by systemd */
        uint64_t wd_us = 0;
        sd_notifyf (0, "READY=1\nSTATUS=%s: serving from seq %llu\nMAINPID=%d", d->name,
                    (unsigned long long) d->committed_seq, (int) getpid ());
        if (sd_watchdog_enabled (0, &wd_us) > 0 && wd_us > 0) {
            ev_timer_init (&d->watchdog, s_watchdog_cb, 0.0, (double) wd_us / 2e6);
            ev_timer_again (d->loop, &d->watchdog);
        }
        ev_run (d->loop, 0);
        ev_timer_stop (d->loop, &d->watchdog);
        pm_info ("%s: stopped cleanly at seq %llu", d->name, (unsigned long long) d->committed_seq);
    }
    return 0;
}

int
pm_daemon_main (const pm_daemon_spec_t *spec, int argc, char **argv)
{
    int code;
    pm_config_t *cfg = pm_daemon_config (spec->name, argc, argv, &code);
    if (!cfg)
        return code;
    pm_daemon_t *d = pm_daemon_new (spec, cfg, NULL);
    if (!d)
        return 1;
    if (pm_daemon_bind (d) != PM_OK) {
        pm_daemon_destroy (&d);
        return 1;
    }
    int rc = pm_daemon_run (d);
    pm_daemon_destroy (&d);
    return rc;
}
