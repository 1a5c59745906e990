/* daemon.c - the runtime: loop, group commit, bus, replay, built-in ops.
 *
 * One turn (s_pump):
 *   1. drain   every ready message from the ROUTER, each upstream's SUB and
 *              replay DEALER, and due durable timers, into `items`, bounded by
 *              batch_max messages and batch_max_us;
 *   2. apply   all write items in ONE LMDB write transaction (s_apply): idem
 *              lookup, handler, stored reply, inbox cursor, outbox events;
 *   3. commit  once (one fsync);
 *   4. answer  read-only requests from a read txn of the committed state,
 *              send every reply in arrival order, publish the new events.
 * Nothing is sent before step 3 succeeded. If it fails, nothing is applied:
 * commands get UNAVAILABLE (not stored, so a retry re-runs them) and the
 * upstreams replay from their committed cursors.
 *
 * A handler that fails after writing must be undone alone: the batch is
 * redone with that command in a nested transaction. Nested transactions cost
 * a page copy each, so they are only paid for where a command actually fails
 * after writing (DESIGN.md section 4).
 *
 * Delivery from upstreams (the zguide's Clone pattern): at start, on a seq gap,
 * or when a heartbeat shows a newer seq than we hold, ask the upstream's
 * ROUTER for `events.replay` from our cursor + 1, then follow the live PUB. */
#define _GNU_SOURCE
#include "pm/daemon.h"
#include "pm/client.h"
#include "pm/err.h"
#include "pm/http.h"
#include "pm/log.h"
#include "pm/zwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define PM_MAX_UPSTREAMS 8
#define PM_REPLAY_MAX 1000
#define PM_REPLAY_MAX_BYTES (2u << 20)
#define PM_PRUNE_EVERY_MS 60000
#define PM_PRUNE_MAX 10000
#define PM_STATUSES 6
#define PM_MAX_ID 256 /* request ids are LMDB keys (max 511 bytes) */

enum { ITEM_CMD, ITEM_READ, ITEM_EVENT, ITEM_TIMER, ITEM_ANSWERED };

typedef struct s_upstream s_upstream_t;

typedef struct {
    int kind;
    /* where the reply goes (commands and reads) */
    void *identity;
    size_t identity_len;
    bool delimiter;
    int64_t t_recv_us;
    Pm__V1__Request *req;
    int route;            /* index in routes, or -1 */
    Pm__V1__Event *ev;    /* ITEM_EVENT */
    s_upstream_t *up;
    pm_event_fn efn;
    unsigned char tkey[16]; /* ITEM_TIMER */
    const char *tkind, *tname;
    const void *tpayload;
    size_t tplen;
    pm_timer_fn tfn;
    bool nested;          /* redo in a nested txn: it failed after writing */
    Pm__V1__Reply *reply;
    void *reply_buf;      /* packed reply (arena) */
    size_t reply_len;
} s_item_t;

typedef struct {
    const char *type;
    void *buf;
    size_t len;
} s_emitted_t;

struct s_upstream {
    pm_daemon_t *d;
    char *name;
    const pm_event_route_t *routes;
    void *sub, *dealer;
    pm_zwatch_t *wsub, *wdealer;
    uint64_t applied;     /* committed inbox cursor */
    uint64_t queued;      /* highest seq handed to the current batch */
    uint64_t known_last;  /* latest seq the upstream said it has */
    uint64_t applied_n;   /* durable count of events applied (exactly-once evidence) */
    uint64_t batch_n;     /* events of this source in the current batch */
    bool replaying;
    unsigned replay_n;
    char replay_id[64];
    int64_t replay_sent_ms;
    pm_metric_t *m_gaps, *m_applied, *m_lag;
};

struct pm_out {
    pm_daemon_t *d;
    s_item_t *item;
    Pm__V1__Reply *reply;
    const char *method;
    const char *correlation_id;
};

typedef struct {
    const char *method;
    pm_cmd_fn fn;
    int flags;
    pm_metric_t *m_status[PM_STATUSES];
} s_route_t;

struct pm_daemon {
    const pm_daemon_spec_t *spec;
    const char *name;
    pm_config_t *cfg;
    pm_clock_t *clock;
    pm_metrics_t *metrics;
    pm_store_t *store;
    pm_arena_t *arena;
    struct ev_loop *loop;
    bool own_loop;
    void *app;
    int lock_fd;
    int64_t started_ms;

    /* config */
    int64_t batch_max, batch_max_us, max_request_bytes, idem_retention_ms, event_retention_ms;
    int64_t replay_timeout_ms, heartbeat_ms;

    /* sockets */
    void *zctx;
    void *router, *pub;
    pm_zwatch_t *wrouter;
    pm_http_t *http;         /* GET /metrics, when [<daemon>] metrics_http is set */
    char *metrics_url;
    s_upstream_t ups[PM_MAX_UPSTREAMS];
    int nups;

    s_route_t *routes;
    int nroutes;

    /* the batch */
    s_item_t *items;
    size_t nitems, cap;
    s_emitted_t *emitted;
    size_t nemitted, emitted_cap;
    uint64_t committed_seq; /* last seq durable in the outbox */
    uint64_t next_seq;      /* next seq to hand out in the open batch */
    int64_t clock_pending;  /* manual clock value to apply after commit, or -1 */
    bool in_pump;
    bool commit_failed; /* the last group commit failed */
    unsigned char prune_idem_key[64];
    size_t prune_idem_klen;
    int64_t last_prune_ms;

    ev_timer tick;
    ev_signal sigterm, sigint;

    pm_metric_t *m_batch, *m_commit_us, *m_req_us, *m_events, *m_bad, *m_undeliverable,
        *m_mapgrow, *m_commit_fail, *m_dead;
};

static void s_pump (pm_daemon_t *d);
static int s_builtin_replay (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
static int s_builtin_metrics (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
static int s_builtin_queues (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
static int s_builtin_clock (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
static int s_builtin_ping (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

static const pm_route_t s_builtins[] = {
    { "events.replay", s_builtin_replay, PM_ROUTE_READ },
    { "ops.metrics", s_builtin_metrics, PM_ROUTE_READ },
    { "ops.queues", s_builtin_queues, PM_ROUTE_READ },
    { "ops.ping", s_builtin_ping, PM_ROUTE_READ },
    { "ops.clock", s_builtin_clock, PM_ROUTE_WRITE },
    { NULL, NULL, 0 },
};

/* --- configuration ---------------------------------------------------------- */

static void
s_usage (const char *name)
{
    printf ("usage: pm-%s [-c FILE]\n"
            "  Runs the %s daemon. Without -c (or PM_CONFIG) it uses the embedded\n"
            "  default config (deploy/pm.conf); PM_HOME puts var/ elsewhere;\n"
            "  PM_<SECTION>_<KEY> overrides any key.\n",
            name, name);
}

pm_config_t *
pm_daemon_config (const char *name, int argc, char **argv, int *exit_code)
{
    const char *path = getenv ("PM_CONFIG");
    *exit_code = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp (argv[i], "-h") == 0 || strcmp (argv[i], "--help") == 0) {
            s_usage (name);
            *exit_code = 0;
            return NULL;
        }
        else {
            fprintf (stderr, "pm-%s: unknown argument '%s' (try --help)\n", name, argv[i]);
            return NULL;
        }
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
s_cfg_int (pm_daemon_t *d, const char *section, const char *key, int64_t def, int64_t min,
           int64_t *out)
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

/* --- creation --------------------------------------------------------------- */

static int
s_lock (pm_daemon_t *d, const char *dir)
{
    char *path = NULL;
    if (asprintf (&path, "%s/daemon.lock", dir) < 0)
        return PM_ENOMEM;
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
s_route_add (pm_daemon_t *d, const pm_route_t *r)
{
    s_route_t *x = &d->routes[d->nroutes++];
    memset (x, 0, sizeof *x);
    x->method = r->method;
    x->fn = r->fn;
    x->flags = r->flags;
}

static void s_tick_cb (struct ev_loop *loop, ev_timer *w, int revents);

pm_daemon_t *
pm_daemon_new (const pm_daemon_spec_t *spec, pm_config_t *cfg, struct ev_loop *loop)
{
    pm_daemon_t *d = calloc (1, sizeof *d);
    if (!d) {
        pm_config_destroy (&cfg);
        return NULL;
    }
    d->spec = spec;
    d->name = spec->name;
    d->cfg = cfg;
    d->lock_fd = -1;
    d->clock_pending = -1;
    d->metrics = pm_metrics_new ();
    d->arena = pm_arena_new ();

    int64_t map_mb;
    bool manual = false;
    char *err = NULL;
    if (!pm_config_get (cfg, spec->name, "command", NULL)) {
        pm_error ("%s: no [%s] section with a 'command' endpoint", pm_config_name (cfg), spec->name);
        goto fail;
    }
    if (s_cfg_int (d, "general", "batch_max", 1000, 1, &d->batch_max)
        || s_cfg_int (d, "general", "batch_max_us", 5000, 0, &d->batch_max_us)
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
    d->store = pm_store_open (data, (size_t) map_mb << 20, spec->tables);
    if (!d->store)
        goto fail;

    /* Durable state the runtime keeps: outbox seq, inbox cursors, manual clock. */
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

    size_t n = 0;
    for (int i = 0; spec->routes && spec->routes[i].method; i++)
        n++;
    d->routes = calloc (n + sizeof s_builtins / sizeof s_builtins[0], sizeof *d->routes);
    for (int i = 0; s_builtins[i].method; i++)
        s_route_add (d, &s_builtins[i]);
    for (size_t i = 0; i < n; i++)
        s_route_add (d, &spec->routes[i]);

    d->m_batch = pm_metric (d->metrics, PM_HISTOGRAM, "pm_batch_messages", NULL,
                            "Messages applied per group commit");
    d->m_commit_us = pm_metric (d->metrics, PM_HISTOGRAM, "pm_commit_us", NULL,
                                "Duration of one durable group commit, microseconds");
    d->m_req_us = pm_metric (d->metrics, PM_HISTOGRAM, "pm_request_us", NULL,
                             "Request received to reply sent, microseconds");
    d->m_events = pm_metric (d->metrics, PM_COUNTER, "pm_events_published_total", NULL,
                             "Events committed to the outbox and published");
    d->m_bad = pm_metric (d->metrics, PM_COUNTER, "pm_bad_frames_total", NULL,
                          "Malformed or oversized messages received");
    d->m_undeliverable = pm_metric (d->metrics, PM_COUNTER, "pm_replies_undeliverable_total", NULL,
                                    "Replies whose client was gone (it retries and gets the stored reply)");
    d->m_mapgrow = pm_metric (d->metrics, PM_COUNTER, "pm_map_grow_total", NULL,
                              "Times the LMDB map was grown after MDB_MAP_FULL");
    d->m_commit_fail = pm_metric (d->metrics, PM_COUNTER, "pm_commit_failures_total", NULL,
                                  "Group commits that failed (nothing applied, clients told UNAVAILABLE)");
    d->m_dead = pm_metric (d->metrics, PM_COUNTER, "pm_events_dead_total", NULL,
                           "Consumed events that could not be applied (see ops.queues dead_events)");

    d->loop = loop;
    if (!d->loop) {
        d->loop = ev_default_loop (0);
        d->own_loop = true;
    }
    d->zctx = zmq_ctx_new ();
    d->cap = 1024;
    d->items = calloc (d->cap, sizeof *d->items);
    d->emitted_cap = 1024;
    d->emitted = calloc (d->emitted_cap, sizeof *d->emitted);
    ev_timer_init (&d->tick, s_tick_cb, 0.0, 0.0);
    d->tick.data = d;
    pm_info ("%s: store %s (map %zu MiB), last seq %llu%s", d->name, data,
             pm_store_map_size (d->store) >> 20, (unsigned long long) d->committed_seq,
             manual ? ", manual clock allowed" : "");
    return d;
fail:
    pm_daemon_destroy (&d);
    return NULL;
}

void
pm_daemon_set_app (pm_daemon_t *d, void *app)
{
    d->app = app;
}

static void *
s_socket (pm_daemon_t *d, int type)
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
    char *p = strdup (endpoint + 6);
    char *slash = p ? strrchr (p, '/') : NULL;
    if (slash && slash != p) {
        *slash = '\0';
        pm_mkdirs (p);
    }
    free (p);
}

static void s_router_cb (pm_zwatch_t *w, void *sock, void *arg);
static void s_upstream_cb (pm_zwatch_t *w, void *sock, void *arg);
static char *s_prometheus (void *arg);

int
pm_daemon_subscribe (pm_daemon_t *d, const char *source, const pm_event_route_t *routes)
{
    const char *events = pm_config_get (d->cfg, source, "events", NULL);
    const char *command = pm_config_get (d->cfg, source, "command", NULL);
    if (!events || !command) {
        pm_error ("%s: [%s] needs 'events' and 'command' endpoints to subscribe to %s",
                  pm_config_name (d->cfg), source, source);
        return PM_ECONFIG;
    }
    if (d->nups == PM_MAX_UPSTREAMS)
        return PM_EINVAL;
    s_upstream_t *u = &d->ups[d->nups++];
    memset (u, 0, sizeof *u);
    u->d = d;
    u->name = strdup (source);
    u->routes = routes;
    pm_txn_t t;
    if (pm_txn_begin_read (&t, d->store) != PM_OK)
        return PM_ESTORE;
    MDB_val v;
    if (pm_txn_get (&t, PM_DB_INBOX, source, strlen (source), &v) == PM_OK && v.mv_size == 8)
        u->applied = pm_be_u64 (v.mv_data);
    char key[96];
    snprintf (key, sizeof key, "applied_n:%s", source);
    u->applied_n = pm_meta_get_u64 (&t, key);
    pm_txn_abort (&t);
    u->queued = u->applied;
    char labels[96];
    snprintf (labels, sizeof labels, "source=\"%s\"", source);
    u->m_gaps = pm_metric (d->metrics, PM_COUNTER, "pm_consumer_gaps_total", labels,
                           "Seq gaps seen on the live feed (repaired by replay)");
    u->m_applied = pm_metric (d->metrics, PM_COUNTER, "pm_consumer_applied_total", labels,
                              "Events consumed from this source, applied or dead-lettered (durable count)");
    u->m_lag = pm_metric (d->metrics, PM_GAUGE, "pm_consumer_lag", labels,
                          "Upstream's latest seq minus our applied seq");
    pm_metric_set (u->m_applied, (double) u->applied_n);

    u->sub = s_socket (d, ZMQ_SUB);
    zmq_setsockopt (u->sub, ZMQ_SUBSCRIBE, "", 0);
    /* Not ZMQ_IMMEDIATE: a replay request made before the upstream is up waits
     * in the pipe and goes out when it connects. */
    u->dealer = s_socket (d, ZMQ_DEALER);
    if (zmq_connect (u->sub, events) != 0 || zmq_connect (u->dealer, command) != 0) {
        pm_error ("cannot connect to %s at %s / %s: %s", source, events, command, zmq_strerror (errno));
        return PM_EIO;
    }
    u->wsub = pm_zwatch_new (d->loop, u->sub, s_upstream_cb, u);
    u->wdealer = pm_zwatch_new (d->loop, u->dealer, s_upstream_cb, u);
    pm_info ("%s: consuming %s from seq %llu", d->name, source, (unsigned long long) u->applied + 1);
    return PM_OK;
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
    d->router = s_socket (d, ZMQ_ROUTER);
    d->pub = s_socket (d, ZMQ_PUB);
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
    d->wrouter = pm_zwatch_new (d->loop, d->router, s_router_cb, d);
    pm_info ("%s: commands on %s, events on %s", d->name, command, events);
    const char *http = pm_config_get (d->cfg, d->name, "metrics_http", "");
    if (*http) {
        d->http = pm_http_new (d->loop, http, s_prometheus, d);
        if (!d->http)
            return PM_ECONFIG;
        char host[64] = "127.0.0.1";
        const char *colon = strrchr (http, ':');
        if (colon && colon != http && (size_t) (colon - http) < sizeof host && strncmp (http, "0.0.0.0", 7) != 0)
            snprintf (host, sizeof host, "%.*s", (int) (colon - http), http);
        if (asprintf (&d->metrics_url, "http://%s:%u/metrics", host, pm_http_port (d->http)) < 0)
            d->metrics_url = NULL;
    }
    return PM_OK;
}

void
pm_daemon_destroy (pm_daemon_t **p)
{
    if (!p || !*p)
        return;
    pm_daemon_t *d = *p;
    if (d->loop)
        ev_timer_stop (d->loop, &d->tick);
    pm_zwatch_destroy (&d->wrouter);
    pm_http_destroy (&d->http);
    free (d->metrics_url);
    for (int i = 0; i < d->nups; i++) {
        pm_zwatch_destroy (&d->ups[i].wsub);
        pm_zwatch_destroy (&d->ups[i].wdealer);
        if (d->ups[i].sub)
            zmq_close (d->ups[i].sub);
        if (d->ups[i].dealer)
            zmq_close (d->ups[i].dealer);
        free (d->ups[i].name);
    }
    if (d->router)
        zmq_close (d->router);
    if (d->pub)
        zmq_close (d->pub);
    if (d->zctx)
        zmq_ctx_term (d->zctx);
    pm_store_destroy (&d->store);
    if (d->lock_fd >= 0)
        close (d->lock_fd);
    pm_clock_destroy (&d->clock);
    pm_metrics_destroy (&d->metrics);
    pm_arena_destroy (&d->arena);
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
uint64_t pm_daemon_last_seq (pm_daemon_t *d) { return d->committed_seq; }

uint64_t
pm_daemon_applied (pm_daemon_t *d, const char *source)
{
    for (int i = 0; i < d->nups; i++)
        if (strcmp (d->ups[i].name, source) == 0)
            return d->ups[i].applied;
    return 0;
}

/* --- handler API ------------------------------------------------------------ */

int
pm_reply (pm_out_t *out, int status, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    out->reply->status = (Pm__V1__Status) status;
    out->reply->message = pm_arena_vprintf (out->d->arena, fmt, ap);
    va_end (ap);
    return status;
}

void
pm_reply_body (pm_out_t *out, ProtobufCMessage *body)
{
    if (out->method)
        pm_body_set (&out->reply->base, out->method, body);
}

static void
s_emitted_push (pm_daemon_t *d, const char *type, void *buf, size_t len)
{
    if (d->nemitted == d->emitted_cap) {
        d->emitted_cap *= 2;
        d->emitted = realloc (d->emitted, d->emitted_cap * sizeof *d->emitted);
        if (!d->emitted)
            abort ();
    }
    d->emitted[d->nemitted++] = (s_emitted_t) { type, buf, len };
}

/* "source:seq" in arena memory (on the hot path: no printf). */
static char *
s_event_id (pm_daemon_t *d, uint64_t seq)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char) ('0' + seq % 10);
    while ((seq /= 10) != 0);
    size_t len = strlen (d->name);
    char *id = pm_arena_alloc (d->arena, len + 1 + (size_t) n + 1);
    memcpy (id, d->name, len);
    id[len] = ':';
    for (int i = 0; i < n; i++)
        id[len + 1 + i] = digits[n - 1 - i];
    return id;
}

int
pm_emit (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__V1__Event *ev)
{
    pm_daemon_t *d = ctx->daemon;
    uint64_t seq = d->next_seq;
    ev->source = (char *) d->name;
    ev->seq = seq;
    ev->id = s_event_id (d, seq);
    ev->at_ms = ctx->now_ms;
    if ((!ev->correlation_id || !*ev->correlation_id) && out && out->correlation_id)
        ev->correlation_id = (char *) out->correlation_id;
    size_t len = pm__v1__event__get_packed_size (ev);
    void *buf = pm_arena_alloc (d->arena, len ? len : 1);
    pm__v1__event__pack (ev, buf);
    unsigned char key[8];
    pm_u64_be (seq, key);
    int rc = pm_txn_put (txn, PM_DB_OUTBOX, key, sizeof key, buf, len);
    if (rc != PM_OK)
        return rc;
    d->next_seq++;
    s_emitted_push (d, pm_arena_strdup (d->arena, ev->type), buf, len);
    return PM_OK;
}

/* --- receiving ---------------------------------------------------------------- */

static s_item_t *
s_item_new (pm_daemon_t *d, int kind)
{
    if (d->nitems == d->cap) {
        d->cap *= 2;
        d->items = realloc (d->items, d->cap * sizeof *d->items);
        if (!d->items)
            abort ();
    }
    s_item_t *it = &d->items[d->nitems++];
    memset (it, 0, sizeof *it);
    it->kind = kind;
    it->route = -1;
    it->reply = pm_arena_alloc (d->arena, sizeof *it->reply);
    pm__v1__reply__init (it->reply);
    return it;
}

static void
s_answer (s_item_t *it, pm_daemon_t *d, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/* An item answered at once, without touching state (bad input). */
static void
s_answer (s_item_t *it, pm_daemon_t *d, int status, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    it->kind = ITEM_ANSWERED;
    it->reply->status = (Pm__V1__Status) status;
    it->reply->message = pm_arena_vprintf (d->arena, fmt, ap);
    va_end (ap);
}

static int
s_route_find (pm_daemon_t *d, const char *method)
{
    for (int i = 0; i < d->nroutes; i++)
        if (strcmp (d->routes[i].method, method) == 0)
            return i;
    return -1;
}

static char *
s_method_list (pm_daemon_t *d)
{
    size_t n = 0;
    for (int i = 0; i < d->nroutes; i++)
        n += strlen (d->routes[i].method) + 2;
    char *s = pm_arena_alloc (d->arena, n + 1);
    for (int i = 0; i < d->nroutes; i++) {
        strcat (s, d->routes[i].method);
        if (i + 1 < d->nroutes)
            strcat (s, ", ");
    }
    return s;
}

/* Classifies one request; bad ones are answered without touching state. */
static void
s_request (pm_daemon_t *d, s_item_t *it, const void *data, size_t len)
{
    if ((int64_t) len > d->max_request_bytes) {
        pm_metric_inc (d->m_bad, 1);
        s_answer (it, d, PM__V1__STATUS__INVALID,
                  "request is %zu bytes; the limit is %lld ([general] max_request_bytes): send it in smaller chunks",
                  len, (long long) d->max_request_bytes);
        return;
    }
    it->req = pm__v1__request__unpack (pm_arena_pb (d->arena), len, data);
    if (!it->req) {
        pm_metric_inc (d->m_bad, 1);
        pm_warn ("dropped a malformed request (%zu bytes): not a pm.v1.Request", len);
        s_answer (it, d, PM__V1__STATUS__INVALID,
                  "malformed request: %zu bytes that do not decode as pm.v1.Request", len);
        return;
    }
    it->reply->id = it->req->id;
    int r = s_route_find (d, it->req->method);
    if (r < 0) {
        s_answer (it, d, PM__V1__STATUS__INVALID, "method: unknown method '%.64s' for %s; it answers: %s",
                  it->req->method, d->name, s_method_list (d));
        return;
    }
    const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, it->req->method);
    if (it->req->body_case != PM__V1__REQUEST__BODY__NOT_SET && (!f || (uint32_t) it->req->body_case != f->id)) {
        const ProtobufCFieldDescriptor *got =
            protobuf_c_message_descriptor_get_field (&pm__v1__request__descriptor, it->req->body_case);
        s_answer (it, d, PM__V1__STATUS__INVALID, "body: request carries '%s' but method '%s' expects '%s'",
                  got ? got->name : "?", it->req->method, f ? f->name : "no body");
        return;
    }
    if (it->req->body_case == PM__V1__REQUEST__BODY__NOT_SET && f) {
        /* An absent body is the empty body: handlers never see NULL. */
        const ProtobufCMessageDescriptor *bd = f->descriptor;
        ProtobufCMessage *empty = pm_arena_alloc (d->arena, bd->sizeof_message);
        bd->message_init (empty);
        pm_body_set (&it->req->base, it->req->method, empty);
    }
    if (strlen (it->req->id) > PM_MAX_ID) {
        s_answer (it, d, PM__V1__STATUS__INVALID, "id: %zu bytes; an idempotency key has at most %d",
                  strlen (it->req->id), PM_MAX_ID);
        return;
    }
    if (!(d->routes[r].flags & PM_ROUTE_READ) && (!it->req->id || !*it->req->id)) {
        s_answer (it, d, PM__V1__STATUS__INVALID,
                  "id: empty; every command needs a unique idempotency key (retries reuse it)");
        return;
    }
    it->route = r;
    it->kind = (d->routes[r].flags & PM_ROUTE_READ) ? ITEM_READ : ITEM_CMD;
}

/* Receives one multipart message from the ROUTER; false when none is ready. */
static bool
s_router_recv (pm_daemon_t *d)
{
    zmq_msg_t parts[4];
    int n = 0, more = 1;
    size_t total = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init (&m);
        if (zmq_msg_recv (&m, d->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&m);
            if (n == 0)
                return false;
            break; /* cannot happen: multipart messages arrive whole */
        }
        more = zmq_msg_more (&m);
        total += zmq_msg_size (&m);
        if (n < 4)
            parts[n++] = m;
        else {
            zmq_msg_close (&m);
            n = 5;
        }
    }
    s_item_t *it = s_item_new (d, ITEM_ANSWERED);
    it->t_recv_us = pm_mono_us ();
    it->identity_len = zmq_msg_size (&parts[0]);
    it->identity = pm_arena_alloc (d->arena, it->identity_len + 1);
    memcpy (it->identity, zmq_msg_data (&parts[0]), it->identity_len);
    int count = n > 4 ? 4 : n;
    if (n == 3 && zmq_msg_size (&parts[1]) == 0) {
        it->delimiter = true;
        s_request (d, it, zmq_msg_data (&parts[2]), zmq_msg_size (&parts[2]));
    }
    else if (n == 2) {
        s_request (d, it, zmq_msg_data (&parts[1]), zmq_msg_size (&parts[1]));
    }
    else {
        pm_metric_inc (d->m_bad, 1);
        it->delimiter = n >= 2 && zmq_msg_size (&parts[1]) == 0;
        pm_warn ("dropped a request of %d frames (%zu bytes): expected [empty][Request]", n, total);
        s_answer (it, d, PM__V1__STATUS__INVALID,
                  "wrong message shape: %s%d frames; expected [empty delimiter][pm.v1.Request]",
                  n > 4 ? "more than " : "", n > 4 ? 4 : n - 1);
    }
    for (int i = 0; i < count; i++)
        zmq_msg_close (&parts[i]);
    return true;
}

static void
s_replay_request (s_upstream_t *u)
{
    pm_daemon_t *d = u->d;
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    Pm__V1__EventsReplayRequest body = PM__V1__EVENTS_REPLAY_REQUEST__INIT;
    snprintf (u->replay_id, sizeof u->replay_id, "replay:%s:%s:%u", d->name, u->name, ++u->replay_n);
    req.id = u->replay_id;
    req.method = "events.replay";
    req.actor = (char *) d->name;
    body.from_seq = u->queued + 1;
    body.max = PM_REPLAY_MAX;
    pm_body_set (&req.base, "events.replay", &body.base);
    size_t len = pm__v1__request__get_packed_size (&req);
    void *buf = malloc (len ? len : 1);
    pm__v1__request__pack (&req, buf);
    u->replaying = true;
    u->replay_sent_ms = pm_mono_ms ();
    if (zmq_send (u->dealer, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (u->dealer, buf, len, ZMQ_DONTWAIT) < 0)
        pm_debug ("replay request to %s not sent (%s); will retry", u->name, zmq_strerror (errno));
    free (buf);
}

/* Hands event ev to the batch if it is the next one; otherwise asks for a replay. */
static void
s_upstream_event (s_upstream_t *u, Pm__V1__Event *ev, bool from_replay)
{
    pm_daemon_t *d = u->d;
    if (ev->seq > u->known_last)
        u->known_last = ev->seq;
    if (ev->seq <= u->queued)
        return; /* already applied or queued: a duplicate */
    if (ev->seq != u->queued + 1 || (u->replaying && !from_replay)) {
        if (!u->replaying) {
            pm_metric_inc (u->m_gaps, 1);
            pm_debug ("gap from %s: have %llu, got %llu; replaying", u->name,
                      (unsigned long long) u->queued, (unsigned long long) ev->seq);
            s_replay_request (u);
        }
        return;
    }
    s_item_t *it = s_item_new (d, ITEM_EVENT);
    it->ev = ev;
    it->up = u;
    u->queued = ev->seq;
    for (int i = 0; u->routes && u->routes[i].type; i++) {
        const char *t = u->routes[i].type;
        size_t n = strlen (t);
        if ((n && t[n - 1] == '.') ? strncmp (ev->type, t, n) == 0 : strcmp (ev->type, t) == 0) {
            it->efn = u->routes[i].fn;
            break;
        }
    }
}

static void
s_replay_reply (s_upstream_t *u, const void *data, size_t len)
{
    pm_daemon_t *d = u->d;
    Pm__V1__Reply *r = pm__v1__reply__unpack (pm_arena_pb (d->arena), len, data);
    if (!r) {
        pm_metric_inc (d->m_bad, 1);
        pm_warn ("malformed replay reply from %s (%zu bytes) dropped", u->name, len);
        return;
    }
    if (!u->replaying || strcmp (r->id, u->replay_id) != 0)
        return; /* an answer to a request we already gave up on */
    if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_EVENTS_REPLAY) {
        pm_error ("replay from %s failed: %s: %s (will retry)", u->name, pm_status_name (r->status),
                  r->message);
        return; /* replaying stays set; the tick retries after replay_timeout_ms */
    }
    Pm__V1__EventsReplayReply *rr = r->events_replay;
    if (rr->last_seq > u->known_last)
        u->known_last = rr->last_seq;
    if (rr->last_seq < u->queued)
        pm_error ("%s's latest seq is %llu but we applied up to %llu: was its store reset?", u->name,
                  (unsigned long long) rr->last_seq, (unsigned long long) u->queued);
    for (size_t i = 0; i < rr->n_events; i++)
        s_upstream_event (u, rr->events[i], true);
    if (u->queued < rr->last_seq && rr->n_events > 0)
        s_replay_request (u);
    else
        u->replaying = false;
}

static void
s_upstream_drain (s_upstream_t *u, int *progressed)
{
    zmq_msg_t a, b;
    zmq_msg_init (&a);
    zmq_msg_init (&b);
    /* live events: [type][Event] */
    if (zmq_msg_recv (&a, u->sub, ZMQ_DONTWAIT) >= 0) {
        (*progressed)++;
        if (zmq_msg_more (&a) && zmq_msg_recv (&b, u->sub, ZMQ_DONTWAIT) >= 0 && !zmq_msg_more (&b)) {
            Pm__V1__Event *ev = pm__v1__event__unpack (pm_arena_pb (u->d->arena), zmq_msg_size (&b),
                                                      zmq_msg_data (&b));
            if (!ev) {
                pm_metric_inc (u->d->m_bad, 1);
                pm_warn ("malformed event from %s dropped", u->name);
            }
            else if (ev->payload_case == PM__V1__EVENT__PAYLOAD_HEARTBEAT) {
                uint64_t last = ev->heartbeat->last_seq;
                if (last > u->known_last)
                    u->known_last = last;
                if (last > u->queued && !u->replaying)
                    s_replay_request (u);
            }
            else
                s_upstream_event (u, ev, false);
        }
        else {
            pm_metric_inc (u->d->m_bad, 1);
            int more = zmq_msg_more (&b);
            while (more) { /* discard the rest of a wrongly shaped message */
                zmq_msg_close (&b);
                zmq_msg_init (&b);
                if (zmq_msg_recv (&b, u->sub, ZMQ_DONTWAIT) < 0)
                    break;
                more = zmq_msg_more (&b);
            }
            pm_warn ("event from %s with wrong frames dropped: expected [type][Event]", u->name);
        }
    }
    zmq_msg_close (&a);
    zmq_msg_close (&b);
    zmq_msg_init (&a);
    zmq_msg_init (&b);
    /* replay replies: [empty][Reply] */
    if (zmq_msg_recv (&a, u->dealer, ZMQ_DONTWAIT) >= 0) {
        (*progressed)++;
        if (zmq_msg_more (&a) && zmq_msg_recv (&b, u->dealer, ZMQ_DONTWAIT) >= 0)
            s_replay_reply (u, zmq_msg_data (&b), zmq_msg_size (&b));
    }
    zmq_msg_close (&a);
    zmq_msg_close (&b);
}

/* Collects durable timers that are due. */
static void
s_timers_due (pm_daemon_t *d, int64_t now_ms)
{
    if (!d->spec->timers)
        return;
    pm_txn_t t;
    MDB_cursor *c;
    MDB_val k, v;
    if (pm_txn_begin_read (&t, d->store) != PM_OK)
        return;
    if (mdb_cursor_open (t.txn, pm_store_dbi (d->store, PM_DB_TIMERS), &c) == 0) {
        int rc = mdb_cursor_get (c, &k, &v, MDB_FIRST);
        while (rc == 0 && (int64_t) d->nitems < d->batch_max && k.mv_size == 16
               && (int64_t) pm_be_u64 (k.mv_data) <= now_ms) {
            s_item_t *it = s_item_new (d, ITEM_TIMER);
            memcpy (it->tkey, k.mv_data, 16);
            char *val = pm_arena_alloc (d->arena, v.mv_size + 2);
            memcpy (val, v.mv_data, v.mv_size);
            it->tkind = val;
            it->tname = val + strlen (val) + 1;
            size_t used = strlen (it->tkind) + 1 + strlen (it->tname) + 1;
            it->tpayload = val + used;
            it->tplen = v.mv_size > used ? v.mv_size - used : 0;
            for (int i = 0; d->spec->timers[i].kind; i++)
                if (strcmp (d->spec->timers[i].kind, it->tkind) == 0)
                    it->tfn = d->spec->timers[i].fn;
            rc = mdb_cursor_get (c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close (c);
    }
    pm_txn_abort (&t);
}

static void
s_drain (pm_daemon_t *d)
{
    int64_t start = pm_mono_us ();
    for (;;) {
        int progressed = 0;
        if (d->router && s_router_recv (d))
            progressed++;
        for (int i = 0; i < d->nups; i++)
            s_upstream_drain (&d->ups[i], &progressed);
        if (!progressed || (int64_t) d->nitems >= d->batch_max || pm_mono_us () - start >= d->batch_max_us)
            break;
    }
    s_timers_due (d, pm_clock_now_ms (d->clock));
}

/* --- applying: one write transaction per batch ------------------------------- */

static bool
s_storable (int status)
{
    return status == PM__V1__STATUS__OK || status == PM__V1__STATUS__INVALID
           || status == PM__V1__STATUS__NOT_FOUND || status == PM__V1__STATUS__CONFLICT;
}

static void
s_pack_reply (pm_daemon_t *d, s_item_t *it)
{
    size_t len = pm__v1__reply__get_packed_size (it->reply);
    it->reply_buf = pm_arena_alloc (d->arena, len + 8);
    it->reply_len = len;
    pm__v1__reply__pack (it->reply, (uint8_t *) it->reply_buf + 8);
}

/* Runs one handler in txn (or a nested txn of it). Returns the status, or a
 * negative pm_err when the txn itself failed (then the batch must be redone). */
static int
s_run (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn, s_item_t *it, bool *redo)
{
    pm_out_t out = { d, it, it->reply, NULL, NULL };
    pm_txn_t child, *use = txn;
    uint64_t seq0 = d->next_seq;
    size_t emitted0 = d->nemitted;
    if (it->nested) {
        if (pm_txn_begin (&child, d->store, txn) != PM_OK)
            return child.err;
        use = &child;
    }
    unsigned writes0 = use->writes;
    int status;
    switch (it->kind) {
    case ITEM_CMD:
        out.method = it->req->method;
        out.correlation_id = it->req->id;
        status = d->routes[it->route].fn (ctx, use, it->req, &out);
        break;
    case ITEM_EVENT:
        out.correlation_id = *it->ev->correlation_id ? it->ev->correlation_id : it->ev->id;
        status = it->efn ? it->efn (ctx, use, it->ev, &out) : PM__V1__STATUS__OK;
        break;
    default: /* ITEM_TIMER */
        out.correlation_id = it->tname;
        status = it->tfn ? it->tfn (ctx, use, it->tname, it->tpayload, it->tplen, &out)
                         : pm_reply (&out, PM__V1__STATUS__INTERNAL, "no handler for timer kind '%s'", it->tkind);
        break;
    }
    if (use->err == PM_EINVAL) {
        /* The store refused this command's own data (an empty or over-long
         * key): it fails alone, like a handler that said no. */
        if (!it->nested) {
            it->nested = true;
            *redo = true;
            return PM__V1__STATUS__INVALID;
        }
        pm_txn_abort (&child);
        d->next_seq = seq0;
        d->nemitted = emitted0;
        pm_warn ("a %s was refused by the store: a key was empty or longer than 511 bytes",
                 it->kind == ITEM_CMD ? it->req->method : it->kind == ITEM_EVENT ? it->ev->type : it->tkind);
        return pm_reply (&out, PM__V1__STATUS__INVALID,
                         "the store refused a key of this %s: empty, or longer than 511 bytes",
                         it->kind == ITEM_CMD ? "request" : "event");
    }
    if (use->err) { /* map full, disk full, I/O: the whole batch fails or is redone */
        int err = use->err;
        if (it->nested)
            pm_txn_abort (&child);
        return err;
    }
    if (status != PM__V1__STATUS__OK) {
        if (!it->nested && use->writes != writes0) {
            it->nested = true; /* undo needs a nested txn: redo the batch */
            *redo = true;
            return status;
        }
        if (it->nested)
            pm_txn_abort (&child);
        d->next_seq = seq0;
        d->nemitted = emitted0;
        return status;
    }
    if (it->nested && pm_txn_commit (&child) != PM_OK)
        return pm_txn_fail (txn, child.err);
    return status;
}

static void
s_dead_event (pm_daemon_t *d, pm_txn_t *txn, s_item_t *it)
{
    const char *why = it->reply->message && *it->reply->message ? it->reply->message : "handler failed";
    char *val = pm_arena_printf (d->arena, "%s\t%s\t%s\t%s", it->ev->type, it->ev->unit_id,
                                 pm_status_name (it->reply->status), why);
    /* keyed by what the runtime knows, not by the event's own (unchecked) id */
    char *key = pm_arena_printf (d->arena, "%s:%llu", it->up->name, (unsigned long long) it->ev->seq);
    pm_txn_put (txn, PM_DB_DEAD, key, strlen (key), val, strlen (val));
    pm_metric_inc (d->m_dead, 1);
    pm_error ("event %s (%s) could not be applied: %s: %s", it->ev->id, it->ev->type,
              pm_status_name (it->reply->status), why);
}

/* One attempt at the batch. Returns PM_OK, PM_EMAPFULL/other error (aborted),
 * or 1 when it must be redone (a command needs a nested txn). */
static int
s_apply_once (pm_daemon_t *d, pm_ctx_t *ctx)
{
    pm_txn_t txn;
    bool redo = false;
    d->next_seq = d->committed_seq + 1;
    d->nemitted = 0;
    for (int i = 0; i < d->nups; i++)
        d->ups[i].batch_n = 0;
    if (pm_txn_begin (&txn, d->store, NULL) != PM_OK)
        return txn.err;
    for (size_t i = 0; i < d->nitems && !redo; i++) {
        s_item_t *it = &d->items[i];
        if (it->kind == ITEM_CMD) {
            MDB_val v;
            int rc = pm_txn_get (&txn, PM_DB_IDEM, it->req->id, strlen (it->req->id), &v);
            if (rc == PM_OK && v.mv_size >= 8) { /* a retry: answer what we answered */
                it->reply_len = v.mv_size - 8;
                it->reply_buf = pm_arena_alloc (d->arena, v.mv_size);
                memcpy (it->reply_buf, v.mv_data, v.mv_size);
                Pm__V1__Reply *stored = pm__v1__reply__unpack (pm_arena_pb (d->arena), it->reply_len,
                                                               (uint8_t *) it->reply_buf + 8);
                if (stored)
                    it->reply = stored;
                continue;
            }
            pm__v1__reply__init (it->reply);
            it->reply->id = it->req->id;
            int status = s_run (d, ctx, &txn, it, &redo);
            if (status < 0 || redo)
                break;
            s_pack_reply (d, it);
            if (s_storable (status)) {
                pm_u64_be ((uint64_t) ctx->now_ms, it->reply_buf);
                pm_txn_put (&txn, PM_DB_IDEM, it->req->id, strlen (it->req->id), it->reply_buf,
                            it->reply_len + 8);
            }
        }
        else if (it->kind == ITEM_EVENT) {
            pm__v1__reply__init (it->reply);
            int status = s_run (d, ctx, &txn, it, &redo);
            if (status < 0 || redo)
                break;
            if (status != PM__V1__STATUS__OK)
                s_dead_event (d, &txn, it);
            unsigned char seq[8];
            pm_u64_be (it->ev->seq, seq);
            pm_txn_put (&txn, PM_DB_INBOX, it->up->name, strlen (it->up->name), seq, 8);
            it->up->batch_n++;
        }
        else if (it->kind == ITEM_TIMER) {
            pm__v1__reply__init (it->reply);
            int status = s_run (d, ctx, &txn, it, &redo);
            if (status < 0 || redo)
                break;
            if (status != PM__V1__STATUS__OK)
                pm_error ("timer %s %s failed: %s: %s (dropped)", it->tkind, it->tname,
                          pm_status_name (status), it->reply->message);
            pm_txn_del (&txn, PM_DB_TIMERS, it->tkey, 16);
        }
    }
    if (redo) {
        pm_txn_abort (&txn);
        return 1;
    }
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        if (u->batch_n) {
            char key[96];
            snprintf (key, sizeof key, "applied_n:%s", u->name);
            pm_meta_put_u64 (&txn, key, u->applied_n + u->batch_n);
        }
    }
    if (d->next_seq != d->committed_seq + 1)
        pm_meta_put_u64 (&txn, "last_seq", d->next_seq - 1);
    return pm_txn_commit (&txn);
}

/* Applies the batch's write items: redoes on MAP_FULL (after growing) and
 * for commands that need a nested txn. Returns PM_OK or the final error. */
static int
s_apply (pm_daemon_t *d)
{
    pm_ctx_t ctx = { d, d->name, d->store, d->arena, d->metrics, pm_clock_now_ms (d->clock), d->app };
    int grows = 0;
    d->clock_pending = -1;
    for (;;) {
        int rc = s_apply_once (d, &ctx);
        if (rc == PM_OK)
            return PM_OK;
        if (rc == 1)
            continue;
        d->clock_pending = -1;
        if (rc == PM_EMAPFULL && grows++ < 16) {
            pm_metric_inc (d->m_mapgrow, 1);
            if (pm_store_grow (d->store) == PM_OK)
                continue;
        }
        return rc;
    }
}

/* --- after the commit ---------------------------------------------------------- */

static void
s_send_reply (pm_daemon_t *d, s_item_t *it)
{
    if (!it->reply_buf)
        s_pack_reply (d, it);
    int flags = ZMQ_DONTWAIT | ZMQ_SNDMORE;
    if (zmq_send (d->router, it->identity, it->identity_len, flags) < 0
        || (it->delimiter && zmq_send (d->router, "", 0, flags) < 0)
        || zmq_send (d->router, (uint8_t *) it->reply_buf + 8, it->reply_len, ZMQ_DONTWAIT) < 0) {
        pm_metric_inc (d->m_undeliverable, 1);
        return;
    }
    pm_metric_observe (d->m_req_us, (double) (pm_mono_us () - it->t_recv_us));
    if (it->route >= 0) {
        int st = (int) it->reply->status;
        if (st < 0 || st >= PM_STATUSES)
            st = PM__V1__STATUS__INTERNAL;
        s_route_t *r = &d->routes[it->route];
        if (!r->m_status[st]) {
            char labels[160];
            snprintf (labels, sizeof labels, "method=\"%s\",status=\"%s\"", r->method, pm_status_name (st));
            r->m_status[st] = pm_metric (d->metrics, PM_COUNTER, "pm_requests_total", labels,
                                         "Requests answered, by method and status");
        }
        pm_metric_inc (r->m_status[st], 1);
    }
}

static void
s_publish (pm_daemon_t *d, const char *type, const void *buf, size_t len)
{
    if (!d->pub)
        return;
    if (zmq_send (d->pub, type, strlen (type), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (d->pub, buf, len, ZMQ_DONTWAIT) < 0)
        pm_debug ("publish of %s dropped: %s (subscribers repair it by replay)", type, zmq_strerror (errno));
}

static void
s_heartbeat (pm_daemon_t *d)
{
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
    s_publish (d, "heartbeat", buf, len);
}

/* Applies and commits the batch's writes, updates the runtime's view of what
 * is durable, then answers the reads from the committed state. Sends nothing. */
static void
s_commit_batch (pm_daemon_t *d)
{
    bool writes = false;
    for (size_t i = 0; i < d->nitems && !writes; i++)
        writes = d->items[i].kind == ITEM_CMD || d->items[i].kind == ITEM_EVENT || d->items[i].kind == ITEM_TIMER;
    if (writes) {
        int64_t t0 = pm_mono_us ();
        int rc = s_apply (d);
        pm_metric_observe (d->m_commit_us, (double) (pm_mono_us () - t0));
        d->commit_failed = rc != PM_OK;
        if (rc != PM_OK) {
            pm_metric_inc (d->m_commit_fail, 1);
            pm_error ("group commit of %zu messages failed: %s; nothing applied", d->nitems, pm_strerror (rc));
            for (size_t i = 0; i < d->nitems; i++) {
                s_item_t *it = &d->items[i];
                if (it->kind == ITEM_CMD) {
                    pm__v1__reply__init (it->reply);
                    it->reply->id = it->req->id;
                    it->reply_buf = NULL;
                    s_answer (it, d, PM__V1__STATUS__UNAVAILABLE,
                              "storage: %s; nothing was applied, retry with the same id", pm_strerror (rc));
                }
            }
            for (int i = 0; i < d->nups; i++) { /* replay again from the durable cursor */
                d->ups[i].queued = d->ups[i].applied;
                d->ups[i].replaying = false;
            }
            d->next_seq = d->committed_seq + 1;
            d->nemitted = 0;
        }
        else {
            d->committed_seq = d->next_seq - 1;
            for (size_t i = 0; i < d->nitems; i++)
                if (d->items[i].kind == ITEM_EVENT)
                    d->items[i].up->applied = d->items[i].ev->seq;
            for (int i = 0; i < d->nups; i++) {
                d->ups[i].applied_n += d->ups[i].batch_n;
                pm_metric_set (d->ups[i].m_applied, (double) d->ups[i].applied_n);
            }
            if (d->clock_pending >= 0) {
                pm_clock_set_ms (d->clock, d->clock_pending);
                d->last_prune_ms = INT64_MIN / 2; /* time jumped: retention is due at the next tick */
            }
        }
        pm_metric_observe (d->m_batch, (double) d->nitems);
    }
    pm_txn_t rtxn;
    bool have_rtxn = false;
    pm_ctx_t ctx = { d, d->name, d->store, d->arena, d->metrics, pm_clock_now_ms (d->clock), d->app };
    for (size_t i = 0; i < d->nitems; i++) {
        s_item_t *it = &d->items[i];
        if (it->kind != ITEM_READ)
            continue;
        if (!have_rtxn && pm_txn_begin_read (&rtxn, d->store) != PM_OK) {
            s_answer (it, d, PM__V1__STATUS__UNAVAILABLE, "storage: cannot read");
            continue;
        }
        have_rtxn = true;
        pm_out_t out = { d, it, it->reply, it->req->method, it->req->id };
        d->routes[it->route].fn (&ctx, &rtxn, it->req, &out);
    }
    if (have_rtxn)
        pm_txn_abort (&rtxn);
}

static void
s_flush (pm_daemon_t *d)
{
    s_commit_batch (d);
    for (size_t i = 0; i < d->nitems; i++) {
        s_item_t *it = &d->items[i];
        if (it->identity)
            s_send_reply (d, it);
    }
    for (size_t i = 0; i < d->nemitted; i++)
        s_publish (d, d->emitted[i].type, d->emitted[i].buf, d->emitted[i].len);
    pm_metric_inc (d->m_events, (double) d->nemitted);
    d->nemitted = 0;
    d->nitems = 0;
    pm_arena_reset (d->arena);
}

static void
s_pump (pm_daemon_t *d)
{
    if (d->in_pump)
        return;
    d->in_pump = true;
    int64_t start = pm_mono_us ();
    for (;;) {
        s_drain (d);
        if (d->nitems == 0)
            break;
        s_flush (d);
        if (d->commit_failed)
            break; /* disk full or I/O error: retry at the next tick, do not spin */
        if (pm_mono_us () - start > 50000)
            break; /* let timers and signals run; the watchers call us again */
    }
    d->in_pump = false;
}

static void
s_router_cb (pm_zwatch_t *w, void *sock, void *arg)
{
    s_pump (arg);
}

static void
s_upstream_cb (pm_zwatch_t *w, void *sock, void *arg)
{
    s_pump (((s_upstream_t *) arg)->d);
}

int
pm_daemon_apply (pm_daemon_t *d, pm_batch_item_t *items, size_t n)
{
    pm_arena_reset (d->arena); /* the previous call's replies end here */
    for (size_t i = 0; i < n; i++) {
        size_t before = d->nitems;
        if (items[i].req) {
            s_item_t *it = s_item_new (d, ITEM_ANSWERED);
            size_t len = pm__v1__request__get_packed_size (items[i].req);
            void *buf = pm_arena_alloc (d->arena, len + 1);
            pm__v1__request__pack (items[i].req, buf);
            s_request (d, it, buf, len);
            continue;
        }
        for (int k = 0; k < d->nups; k++)
            if (strcmp (d->ups[k].name, items[i].ev->source) == 0)
                s_upstream_event (&d->ups[k], items[i].ev, true);
        if (d->nitems == before)
            s_item_new (d, ITEM_ANSWERED)->reply->message = "not applied: duplicate, out of order or unknown source";
    }
    s_commit_batch (d);
    int rc = PM_OK;
    for (size_t i = 0; i < n; i++) {
        items[i].reply = d->items[i].reply;
        if (items[i].reply->status == PM__V1__STATUS__UNAVAILABLE)
            rc = PM_EIO;
    }
    d->nemitted = 0;
    d->nitems = 0;
    return rc;
}

/* --- built-in methods ------------------------------------------------------------ */

static int
s_builtin_ping (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = ctx->daemon;
    Pm__V1__OpsPingReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__ops_ping_reply__init (r);
    r->daemon = (char *) d->name;
    r->pid = getpid ();
    r->last_seq = d->committed_seq;
    r->now_ms = pm_clock_now_ms (d->clock);
    r->started_ms = d->started_ms;
    r->metrics_url = d->metrics_url ? d->metrics_url : "";
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s is up", d->name);
}

static int
s_builtin_replay (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = ctx->daemon;
    const Pm__V1__EventsReplayRequest *q = req->events_replay;
    uint64_t from = q->from_seq ? q->from_seq : 1;
    uint32_t max = q->max == 0 || q->max > PM_REPLAY_MAX ? PM_REPLAY_MAX : q->max;
    Pm__V1__EventsReplayReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__events_replay_reply__init (r);
    r->last_seq = d->committed_seq;
    MDB_cursor *c;
    MDB_val k, v;
    if (mdb_cursor_open (txn->txn, pm_store_dbi (d->store, PM_DB_OUTBOX), &c) != 0)
        return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: cannot read the outbox");
    r->first_seq = mdb_cursor_get (c, &k, &v, MDB_FIRST) == 0 ? pm_be_u64 (k.mv_data) : d->committed_seq + 1;
    if (from < r->first_seq && from <= d->committed_seq) {
        mdb_cursor_close (c);
        pm_reply_body (out, &r->base);
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "from_seq: events %llu..%llu of %s were pruned ([general] event_retention_d); "
                         "the oldest retained is %llu: rebuild from a snapshot, then replay from there",
                         (unsigned long long) from, (unsigned long long) r->first_seq - 1, d->name,
                         (unsigned long long) r->first_seq);
    }
    unsigned char key[8];
    pm_u64_be (from, key);
    k.mv_size = 8;
    k.mv_data = key;
    r->events = pm_arena_alloc (ctx->arena, max * sizeof *r->events);
    size_t bytes = 0;
    int rc = mdb_cursor_get (c, &k, &v, MDB_SET_RANGE);
    uint64_t expect = from;
    while (rc == 0 && r->n_events < max && bytes < PM_REPLAY_MAX_BYTES && pm_be_u64 (k.mv_data) == expect) {
        Pm__V1__Event *ev = pm__v1__event__unpack (pm_arena_pb (ctx->arena), v.mv_size, v.mv_data);
        if (!ev)
            break;
        r->events[r->n_events++] = ev;
        bytes += v.mv_size;
        expect++;
        rc = mdb_cursor_get (c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (c);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu events from %llu", r->n_events, (unsigned long long) from);
}

static void
s_refresh_gauges (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_gauge (d->metrics, "pm_outbox_last_seq", NULL, "Latest committed event seq of this daemon", (double) d->committed_seq);
    pm_gauge (d->metrics, "pm_outbox_events", NULL, "Events retained for replay", (double) pm_txn_count (txn, PM_DB_OUTBOX));
    pm_gauge (d->metrics, "pm_idem_replies", NULL, "Replies stored under their request id", (double) pm_txn_count (txn, PM_DB_IDEM));
    pm_gauge (d->metrics, "pm_timers_pending", NULL, "Durable timers not yet due", (double) pm_txn_count (txn, PM_DB_TIMERS));
    pm_gauge (d->metrics, "pm_dead_events", NULL, "Consumed events that could not be applied", (double) pm_txn_count (txn, PM_DB_DEAD));
    pm_gauge (d->metrics, "pm_map_size_bytes", NULL, "LMDB map size", (double) pm_store_map_size (d->store));
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info (pm_store_env (d->store), &info);
    mdb_env_stat (pm_store_env (d->store), &st);
    pm_gauge (d->metrics, "pm_map_used_bytes", NULL, "LMDB pages in use", (double) (info.me_last_pgno + 1) * st.ms_psize);
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        char labels[96];
        snprintf (labels, sizeof labels, "source=\"%s\"", u->name);
        pm_gauge (d->metrics, "pm_consumer_applied_seq", labels, "Last event seq applied from this source", (double) u->applied);
        pm_metric_set (u->m_lag, u->known_last > u->applied ? (double) (u->known_last - u->applied) : 0);
    }
    if (d->spec->gauges)
        d->spec->gauges (ctx, txn);
}

static int
s_builtin_metrics (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = ctx->daemon;
    s_refresh_gauges (d, ctx, txn);
    Pm__V1__OpsMetricsReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__ops_metrics_reply__init (r);
    r->daemon = (char *) d->name;
    size_t n = 0;
    while (pm_metrics_at (d->metrics, n))
        n++;
    r->metrics = pm_arena_alloc (ctx->arena, (n + 1) * sizeof *r->metrics);
    for (size_t i = 0; i < n; i++) {
        pm_metric_t *x = pm_metrics_at (d->metrics, i);
        Pm__V1__Metric *m = pm_arena_alloc (ctx->arena, sizeof *m);
        pm__v1__metric__init (m);
        m->name = (char *) pm_metric_name (x);
        m->labels = (char *) pm_metric_labels (x);
        m->help = (char *) pm_metric_help (x);
        m->kind = (Pm__V1__MetricKind) pm_metric_kind (x);
        m->value = pm_metric_value (x);
        if (m->kind == PM__V1__METRIC_KIND__HISTOGRAM) {
            m->count = pm_metric_count (x);
            m->p50 = pm_metric_quantile (x, 0.5);
            m->p90 = pm_metric_quantile (x, 0.9);
            m->p99 = pm_metric_quantile (x, 0.99);
            m->max = pm_metric_quantile (x, 1.0);
        }
        r->metrics[r->n_metrics++] = m;
    }
    char *prom = pm_metrics_prometheus (d->metrics, d->name);
    r->prometheus = pm_arena_strdup (ctx->arena, prom ? prom : "");
    free (prom);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu metrics", n);
}

/* GET /metrics: the gauges refreshed from a read txn, then the registry as text. */
static char *
s_prometheus (void *arg)
{
    pm_daemon_t *d = arg;
    pm_txn_t t;
    if (pm_txn_begin_read (&t, d->store) != PM_OK)
        return NULL;
    pm_ctx_t ctx = { d, d->name, d->store, d->arena, d->metrics, pm_clock_now_ms (d->clock), d->app };
    s_refresh_gauges (d, &ctx, &t);
    pm_txn_abort (&t);
    return pm_metrics_prometheus (d->metrics, d->name);
}

Pm__V1__Queue *
pm_queue_from_table (pm_ctx_t *ctx, pm_txn_t *txn, Pm__V1__OpsQueuesReply *r, const char *name,
                     const char *description, int table, uint32_t limit, pm_queue_item_fn fn)
{
    Pm__V1__Queue *q = pm_arena_alloc (ctx->arena, sizeof *q);
    pm__v1__queue__init (q);
    q->name = (char *) name;
    q->description = (char *) description;
    q->count = pm_txn_count (txn, table);
    q->items = pm_arena_alloc (ctx->arena, (limit + 1) * sizeof *q->items);
    MDB_cursor *c;
    MDB_val k, v;
    if (mdb_cursor_open (txn->txn, pm_store_dbi (ctx->store, table), &c) == 0) {
        int rc = mdb_cursor_get (c, &k, &v, MDB_FIRST);
        while (rc == 0 && q->n_items < limit) {
            Pm__V1__QueueItem *item = pm_arena_alloc (ctx->arena, sizeof *item);
            pm__v1__queue_item__init (item);
            fn (ctx, &k, &v, item);
            q->items[q->n_items++] = item;
            rc = mdb_cursor_get (c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close (c);
    }
    r->queues[r->n_queues++] = q;
    return q;
}

/* dead: "source:seq" -> type \t unit_id \t status \t why */
static void
s_dead_item (pm_ctx_t *ctx, const MDB_val *k, const MDB_val *v, Pm__V1__QueueItem *item)
{
    item->key = pm_arena_printf (ctx->arena, "%.*s", (int) k->mv_size, (char *) k->mv_data);
    item->detail = pm_arena_printf (ctx->arena, "%.*s", (int) v->mv_size, (char *) v->mv_data);
}

static int
s_builtin_queues (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = ctx->daemon;
    uint32_t limit = req->ops_queues->limit ? req->ops_queues->limit : 20;
    if (limit > 1000)
        limit = 1000;
    Pm__V1__OpsQueuesReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__ops_queues_reply__init (r);
    r->daemon = (char *) d->name;
    r->queues = pm_arena_alloc (ctx->arena, 32 * sizeof *r->queues);
    if (d->nups > 0)
        pm_queue_from_table (ctx, txn, r, "dead_events",
                             "events from other daemons that could not be applied: fix the cause, then "
                             "re-send the fact from its source",
                             PM_DB_DEAD, limit, s_dead_item);
    if (d->spec->queues)
        d->spec->queues (ctx, txn, limit, r);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu queues", r->n_queues);
}

static int
s_builtin_clock (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = ctx->daemon;
    const Pm__V1__OpsClockRequest *q = req->ops_clock;
    int64_t now = d->clock_pending >= 0 ? d->clock_pending : pm_clock_now_ms (d->clock);
    bool change = (q->set_to && *q->set_to) || (q->advance_by && *q->advance_by);
    if (change && !pm_clock_manual_allowed (d->clock))
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "%s runs on the wall clock; manual time needs [general] manual_clock = true "
                         "(or PM_GENERAL_MANUAL_CLOCK=true) at start",
                         d->name);
    if (q->set_to && *q->set_to) {
        int64_t t;
        if (pm_time_parse (q->set_to, &t) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "set_to: '%s' is not a UTC time; expected e.g. 2026-12-01T09:00:00Z", q->set_to);
        now = t;
    }
    if (q->advance_by && *q->advance_by) {
        int64_t delta;
        if (pm_duration_parse (q->advance_by, &delta) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "advance_by: '%s' is not a duration; expected e.g. 90s, 15m, 3h, 3d or 1d12h",
                             q->advance_by);
        now += delta;
    }
    if (change) {
        pm_meta_put_u64 (txn, "clock_manual_ms", (uint64_t) now);
        d->clock_pending = now;
    }
    Pm__V1__OpsClockReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__ops_clock_reply__init (r);
    char buf[40];
    r->now_ms = now;
    r->now = pm_arena_strdup (ctx->arena, pm_time_format (now, buf, sizeof buf));
    r->manual = change || pm_clock_is_manual (d->clock);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s clock: %s", d->name, r->now);
}

/* --- housekeeping and the loop ----------------------------------------------- */

/* Deletes idem replies older than the retention, at most PM_PRUNE_MAX per run. */
static void
s_prune (pm_daemon_t *d)
{
    int64_t now = pm_clock_now_ms (d->clock);
    pm_txn_t t;
    MDB_cursor *c;
    MDB_val k, v;
    size_t idem = 0, events = 0;
    if (pm_txn_begin (&t, d->store, NULL) != PM_OK)
        return;
    if (mdb_cursor_open (t.txn, pm_store_dbi (d->store, PM_DB_IDEM), &c) == 0) {
        k.mv_size = d->prune_idem_klen;
        k.mv_data = d->prune_idem_key;
        int rc = mdb_cursor_get (c, &k, &v, d->prune_idem_klen ? MDB_SET_RANGE : MDB_FIRST);
        size_t seen = 0;
        while (rc == 0 && seen++ < PM_PRUNE_MAX) {
            if (v.mv_size >= 8 && (int64_t) pm_be_u64 (v.mv_data) < now - d->idem_retention_ms) {
                mdb_cursor_del (c, 0);
                idem++;
            }
            rc = mdb_cursor_get (c, &k, &v, MDB_NEXT);
        }
        if (rc == 0 && k.mv_size <= sizeof d->prune_idem_key) { /* resume here next time */
            memcpy (d->prune_idem_key, k.mv_data, k.mv_size);
            d->prune_idem_klen = k.mv_size;
        }
        else
            d->prune_idem_klen = 0;
        mdb_cursor_close (c);
    }
    if (mdb_cursor_open (t.txn, pm_store_dbi (d->store, PM_DB_OUTBOX), &c) == 0) {
        int rc = mdb_cursor_get (c, &k, &v, MDB_FIRST);
        while (rc == 0 && events < PM_PRUNE_MAX) {
            Pm__V1__Event *ev = pm__v1__event__unpack (NULL, v.mv_size, v.mv_data);
            bool old = ev && ev->at_ms < now - d->event_retention_ms && pm_be_u64 (k.mv_data) < d->committed_seq;
            if (ev)
                pm__v1__event__free_unpacked (ev, NULL);
            if (!old)
                break;
            mdb_cursor_del (c, 0);
            events++;
            rc = mdb_cursor_get (c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close (c);
    }
    if (pm_txn_commit (&t) != PM_OK)
        pm_warn ("pruning failed: %s", pm_strerror (t.err));
    else if (idem || events)
        pm_info ("pruned %zu stored replies and %zu events past retention", idem, events);
}

static void
s_tick_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    pm_daemon_t *d = w->data;
    if (d->pub)
        s_heartbeat (d);
    if (d->http)
        pm_http_tick (d->http);
    int64_t mono = pm_mono_ms ();
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        if (u->replaying && mono - u->replay_sent_ms >= d->replay_timeout_ms)
            s_replay_request (u); /* no answer: upstream down or restarted; ask again */
    }
    if (mono - d->last_prune_ms >= PM_PRUNE_EVERY_MS) {
        d->last_prune_ms = mono;
        s_prune (d);
    }
    s_pump (d); /* due timers, and anything the watchers have not seen yet */
}

static void
s_signal_cb (struct ev_loop *loop, ev_signal *w, int revents)
{
    pm_daemon_t *d = w->data;
    pm_info ("%s: signal %d, stopping", d->name, w->signum);
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
    for (int i = 0; i < d->nups; i++) {
        pm_zwatch_start (d->ups[i].wsub);
        pm_zwatch_start (d->ups[i].wdealer);
        s_replay_request (&d->ups[i]); /* catch up from the durable cursor */
    }
    d->last_prune_ms = pm_mono_ms ();
    double period = (double) d->heartbeat_ms / 1000.0;
    ev_timer_set (&d->tick, period, period);
    ev_timer_start (d->loop, &d->tick);
    pm_info ("%s: ready (pid %d)", d->name, (int) getpid ());
    if (d->own_loop) {
        ev_run (d->loop, 0);
        pm_info ("%s: stopped cleanly at seq %llu", d->name, (unsigned long long) d->committed_seq);
    }
    return 0;
}
