/* daemon_int.h - the runtime's private state, shared by its four parts:
 *
 *   daemon.c    lifecycle: options, config, creation, sockets, the loop, signals
 *   batch.c     receiving, group commit (apply, commit, reply, publish), timers
 *   upstream.c  consuming other daemons: subscription, replay, snapshot loading
 *   ops.c       the built-in methods (events.*, ops.*) and queues */
#ifndef PM_DAEMON_INT_H
#define PM_DAEMON_INT_H

#include "pm/daemon.h"
#include "pm/http.h"
#include "pm/zwatch.h"

#include <zmq.h>

#define PM_MAX_UPSTREAMS 8
#define PM_MAX_SNAPSHOTS 8
#define PM_REPLAY_MAX 5000 /* events a replay page holds at most: a consumer catching up applies about a page a batch */
#define PM_REPLAY_MAX_BYTES (4u << 20)
#define PM_SNAPSHOT_MAX 1000
#define PM_LIVE_HWM 10000 /* live events queued per subscriber (PUB) and unread (SUB) at most */
#define PM_SNAPSHOT_IDLE_MS 60000
#define PM_STRANDED_RETRY_MS 30000
#define PM_STATUSES 6
#define PM_MAX_ID 256 /* request ids are LMDB keys (max 511 bytes) */

enum {
    ITEM_CMD,           /* a write command */
    ITEM_READ,          /* a read (pm_daemon_apply only: sockets answer reads at once) */
    ITEM_EVENT,         /* an upstream event, or a snapshot event (snapshot set) */
    ITEM_TIMER,         /* a due durable timer */
    ITEM_SNAP_BEGIN,    /* a snapshot load starts: empty the source's tables */
    ITEM_SNAP_END,      /* a snapshot load ends: the cursor moves to its seq */
    ITEM_ANSWERED,      /* answered without touching state (bad input) */
    ITEM_WRITE,         /* an in-process write (pm_daemon_write) */
};

typedef struct {
    pm_write_fn fn;
    pm_written_fn done;
    void *arg;
} s_write_t;

typedef struct s_upstream s_upstream_t;

typedef struct {
    int kind;
    pm_arena_t *arena;    /* where its request and reply live (the batch's, or a read's) */
    /* where the reply goes (commands) */
    void *identity;
    size_t identity_len;
    bool delimiter;
    int64_t t_recv_us;    /* when the loop first read the socket for this batch */
    size_t cost;          /* bytes of work, for sizing the batch */
    Pm__V1__Request *req;
    int route;            /* index in routes, or -1 */
    Pm__V1__Event *ev;    /* ITEM_EVENT */
    s_upstream_t *up;     /* ITEM_EVENT, ITEM_SNAP_* */
    const pm_event_route_t *eroute;
    bool snapshot;        /* a snapshot event: no cursor move */
    uint64_t snap_seq;    /* ITEM_SNAP_END */
    pm_timer_t timer;     /* ITEM_TIMER (strings and payload copied to the arena) */
    pm_timer_fn tfn;
    s_write_t write;      /* ITEM_WRITE */
    bool nested;          /* redo in a nested txn: it failed after writing */
    Pm__V1__Reply *reply;
    void *reply_buf;      /* packed reply (arena), 8 bytes of time in front */
    size_t reply_len;
} s_item_t;

typedef struct {
    const char *type;
    void *buf;
    size_t len;
} s_emitted_t;

/* One multipart message off the ROUTER, as libzmq gave it. */
typedef struct {
    zmq_msg_t parts[4];
    int n;          /* frames kept (at most 4); 5 when there were more */
    size_t total;   /* bytes in all frames */
    int64_t seen_us; /* the loop's look at the socket before the one that found it */
} s_frames_t;

enum { UP_FOLLOW, UP_SNAPSHOT, UP_STRANDED };

struct s_upstream {
    pm_daemon_t *d;
    const pm_upstream_t *spec;
    const char *name;
    void *sub, *dealer;
    pm_zwatch_t *wsub, *wdealer;
    bool sub_dry, dealer_dry; /* found empty in this drain: not asked again until the next */
    uint64_t applied;     /* committed inbox cursor */
    uint64_t queued;      /* highest seq handed to the current batch */
    uint64_t known_last;  /* latest seq the upstream said it has */
    uint64_t applied_n;   /* durable count of events applied (exactly-once evidence) */
    uint64_t batch_n;     /* events of this source in the current batch */
    uint64_t batch_last;  /* the last of them: the cursor the batch commits */
    int state;            /* UP_* */
    /* the one request in flight to the upstream's ROUTER (replay or snapshot page) */
    bool pending;
    char pending_id[80];
    unsigned request_n;
    int64_t pending_sent_ms;
    /* snapshot loading */
    char *snap_token;     /* "" before the first page */
    void *snap_after;
    size_t snap_after_len;
    bool snap_page_queued; /* a page is in the batch: the next is asked for after the commit */
    bool snap_done;
    int64_t snap_since_ms;
    char *why;            /* UP_SNAPSHOT / UP_STRANDED: what happened, for the log and ops.queues */
    int64_t stranded_retry_ms;
    pm_metric_t *m_gaps, *m_applied, *m_lag, *m_snapshots;
};

/* One snapshot being served: every page from the same read txn. */
typedef struct {
    char token[48];
    pm_txn_t txn;
    uint64_t seq;
    uint32_t pages;
    int64_t used_ms;
    bool open;
} s_served_t;

struct pm_out {
    pm_daemon_t *d;
    s_item_t *item;
    Pm__V1__Reply *reply;
    const char *method;
    const char *correlation_id;
    int64_t now_ms;
};

typedef struct {
    const char *method;
    pm_cmd_fn fn;
    int flags;
    bool builtin;
    pm_metric_t *m_status[PM_STATUSES];
} s_route_t;

struct pm_snapshot {
    pm_daemon_t *d;
    const void *after;
    size_t after_len;
    Pm__V1__Event **events;
    size_t n, max, bytes;
    void *next_after;
    size_t next_after_len;
};

/* The built-ins' context: a handler's, plus the daemon (container_of). */
typedef struct {
    pm_ctx_t ctx;
    pm_daemon_t *d;
} s_bctx_t;

struct pm_daemon {
    const pm_daemon_spec_t *spec;
    const char *name;
    pm_config_t *cfg;
    pm_clock_t *clock;
    pm_metrics_t *metrics;
    pm_store_t *store;
    pm_arena_t *arena;   /* the batch's memory, reset after its replies went out */
    pm_arena_t *rarena;  /* one read's memory, reset after its reply went out */
    struct ev_loop *loop;
    bool own_loop;
    void *app;
    int lock_fd;
    int64_t started_ms;

    /* config */
    int64_t batch_max, batch_max_us, max_request_bytes, idem_retention_ms, event_retention_ms;
    int64_t batch_bulk_us;  /* what a batch may grow to while more is waiting */
    int bulk;               /* this batch's bounds: batch_max and batch_max_us times bulk */
    int64_t replay_timeout_ms, heartbeat_ms;

    /* sockets */
    void *zctx;
    void *router, *pub, *monitor;
    pm_zwatch_t *wrouter, *wmonitor;
    pm_http_t *http;     /* GET /metrics, when [<daemon>] metrics_http is set */
    struct pm_zap *zap;  /* CurveZMQ's client check, when this daemon serves CURVE */
    char *metrics_url;
    s_upstream_t ups[PM_MAX_UPSTREAMS];
    int nups;
    s_served_t served[PM_MAX_SNAPSHOTS];
    unsigned served_n;

    s_route_t *routes;
    int nroutes;

    /* writes read off the ROUTER while a batch was being applied (so that the
     * reads among them could be answered at once): the next batch takes them */
    s_frames_t *stash;
    size_t nstash, stash_cap;
    int64_t look_us;  /* the loop's last look at the ROUTER */

    /* in-process writes queued for the next batch (pm_daemon_write) */
    s_write_t *writes;
    size_t nwrites, writes_cap;
    ev_idle wake;     /* fed (never started) to pump the loop for them */

    /* the batch */
    s_item_t *items;
    size_t nitems, cap;
    size_t batch_bytes;     /* work taken into this batch */
    double ns_per_byte;     /* measured cost of a byte of work (apply + commit) */
    int64_t drain_start_us; /* when this batch's first message was read */
    s_emitted_t *emitted;
    size_t nemitted, emitted_cap;
    uint64_t committed_seq; /* last seq durable in the outbox */
    uint64_t next_seq;      /* next seq to hand out in the open batch */
    int64_t clock_pending;  /* manual clock value to apply after commit, or -1 */
    int rebuild_pending;    /* ups index whose rebuild starts after commit, or -1 */
    bool in_pump;
    bool commit_failed;     /* the last group commit failed */
    unsigned char prune_idem_key[PM_MAX_ID + 1];
    size_t prune_idem_klen;
    int64_t last_prune_ms;

    ev_timer tick;       /* heartbeat, housekeeping, retries */
    ev_timer due;        /* armed for the earliest durable timer */
    ev_timer watchdog;   /* systemd's WATCHDOG=1, when WatchdogSec= is set */
    ev_signal sigterm, sigint;

    pm_metric_t *m_batch, *m_batch_bytes, *m_commit_us, *m_req_us, *m_read_us, *m_turn_us, *m_events, *m_bad,
        *m_undeliverable, *m_mapgrow, *m_commit_fail, *m_dead, *m_timers_fired, *m_timer_late_ms,
        *m_disconnects, *m_unknown;
};

/* daemon.c */
void *pm__socket (pm_daemon_t *d, int type);
void pm__log_rate (pm_daemon_t *d, const char *what, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
s_bctx_t pm__bctx (pm_daemon_t *d, pm_arena_t *arena);

/* batch.c */
void pm__pump (pm_daemon_t *d);
s_item_t *pm__item_new (pm_daemon_t *d, int kind);
void pm__timer_arm (pm_daemon_t *d);
size_t pm__batch_budget (const pm_daemon_t *d); /* bytes of work the next batch may take in */
void pm__stash_free (pm_daemon_t *d);
void pm__dead (pm_daemon_t *d, pm_txn_t *txn, const char *key, const char *estate_id, const char *unit_id,
               const char *reason, const char *what);

/* upstream.c */
int pm__upstream_add (pm_daemon_t *d, const pm_upstream_t *spec);
void pm__upstream_start (s_upstream_t *u);
void pm__upstream_drain (s_upstream_t *u, int *progressed);
void pm__upstream_tick (s_upstream_t *u);
/* Hands event ev to the batch if it is the next one of u; otherwise asks for a replay. */
void pm__upstream_event (s_upstream_t *u, Pm__V1__Event *ev, bool from_replay);
/* After a commit: moves cursors, asks for the next snapshot page or replay. */
void pm__upstream_committed (pm_daemon_t *d);
/* After a failed commit: back to the durable cursors. */
void pm__upstream_failed (pm_daemon_t *d);
/* Starts loading u's snapshot (from its first page). */
void pm__upstream_snapshot (s_upstream_t *u, const char *why);
s_upstream_t *pm__upstream_find (pm_daemon_t *d, const char *source);
void pm__upstream_free (s_upstream_t *u);

/* ops.c */
extern const pm_route_t pm__builtins[];
void pm__refresh_gauges (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn);
char *pm__prometheus (void *arg);
void pm__served_expire (pm_daemon_t *d, bool all);
void pm__prune (pm_daemon_t *d);

#endif
