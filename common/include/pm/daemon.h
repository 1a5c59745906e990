/* pm/daemon.h - the runtime every daemon is built on: one libev loop, one LMDB
 * store, a ROUTER for commands and replay, a PUB for events, and one
 * subscription per upstream daemon.
 *
 * Group commit. Each turn of the loop drains every ready message from every
 * socket (at most batch_max messages or batch_max_us), applies them all in ONE
 * write transaction, commits once (one fsync), and only then sends the replies
 * and publishes the new events. A command whose handler fails after writing is
 * rolled back alone (the batch is redone with that command in a nested
 * transaction). MDB_MAP_FULL grows the map and redoes the batch.
 *
 * Exactly once. For a command, the state change, the events it emits and its
 * stored reply (idem, keyed by request id) commit together: a retried id gets
 * the stored reply. For a consumed event, the handler's changes and the inbox
 * cursor (source -> seq) commit together: a restart on either side replays
 * from the cursor and applies nothing twice.
 *
 * Handlers are pure: they read and write through txn, take time and memory
 * from ctx, emit events and set the reply through out. No sockets, no clock. */
#ifndef PM_DAEMON_H
#define PM_DAEMON_H

#include "pm/arena.h"
#include "pm/clock.h"
#include "pm/config.h"
#include "pm/err.h"
#include "pm/metrics.h"
#include "pm/proto.h"
#include "pm/store.h"

#include <ev.h>
#include <stdbool.h>

typedef struct pm_daemon pm_daemon_t;
typedef struct pm_out pm_out_t;

/* What a handler sees. */
typedef struct {
    pm_daemon_t *daemon;
    const char *name;   /* daemon name */
    pm_store_t *store;
    pm_arena_t *arena;  /* this batch's memory: use for reply bodies and event payloads */
    pm_metrics_t *metrics;
    int64_t now_ms;     /* the daemon clock when the batch started */
    void *app;          /* the daemon's own context */
} pm_ctx_t;

/* A command handler: returns a pm.v1.Status (PM__V1__STATUS__OK, ...). On OK
 * the writes commit with the batch; on anything else they are rolled back. */
typedef int (*pm_cmd_fn) (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* An event handler: same contract, for an event consumed from an upstream daemon. */
typedef int (*pm_event_fn) (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
/* A durable timer handler. */
typedef int (*pm_timer_fn) (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload,
                            size_t plen, pm_out_t *out);
/* Adds the daemon's own queues to an ops.queues reply (read txn). */
typedef void (*pm_queues_fn) (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
/* Refreshes the daemon's own gauges before ops.metrics answers (read txn). */
typedef void (*pm_gauges_fn) (pm_ctx_t *ctx, pm_txn_t *txn);

enum {
    PM_ROUTE_WRITE = 0, /* runs in the batch's write txn; reply stored under the request id */
    PM_ROUTE_READ = 1,  /* runs after the commit in a read txn; nothing stored */
};

typedef struct {
    const char *method; /* "intake.import": its body is Request.intake_import */
    pm_cmd_fn fn;
    int flags;          /* PM_ROUTE_* */
} pm_route_t;

typedef struct {
    const char *type;   /* exact event type, or a prefix ending in '.' ("intake.unit.") */
    pm_event_fn fn;
} pm_event_route_t;

typedef struct {
    const char *kind;
    pm_timer_fn fn;
} pm_timer_route_t;

/* A daemon's description: its tables, routes and hooks (all borrowed, static). */
typedef struct {
    const char *name;
    const char *const *tables;       /* NULL-terminated domain table names */
    const pm_route_t *routes;        /* terminated by {NULL} */
    const pm_timer_route_t *timers;  /* terminated by {NULL}; may be NULL */
    pm_queues_fn queues;             /* may be NULL */
    pm_gauges_fn gauges;             /* may be NULL */
} pm_daemon_spec_t;

/* Reads the command line (-c FILE, --help), loads the config, opens the log.
 * Returns NULL (after printing why) when the daemon should exit; *exit_code is
 * set (0 for --help). */
pm_config_t *pm_daemon_config (const char *name, int argc, char **argv, int *exit_code);

/* Creates the daemon from config: clock, metrics, store (with spec's tables).
 * Takes cfg (destroyed with the daemon). loop NULL = a new loop of its own.
 * Returns NULL (logged) on failure. */
pm_daemon_t *pm_daemon_new (const pm_daemon_spec_t *spec, pm_config_t *cfg, struct ev_loop *loop);
void pm_daemon_destroy (pm_daemon_t **p);
/* The daemon's own context for handlers (borrowed pointer kept). */
void pm_daemon_set_app (pm_daemon_t *d, void *app);
/* Consumes events of upstream daemon `source` (its endpoints from config). */
int pm_daemon_subscribe (pm_daemon_t *d, const char *source, const pm_event_route_t *routes);
/* Binds the ROUTER and PUB endpoints from config. */
int pm_daemon_bind (pm_daemon_t *d);
/* Starts the watchers, asks each upstream for a replay from its cursor, then
 * runs the loop until SIGTERM/SIGINT and returns the exit code. When the
 * daemon was given a loop (tests), it only starts and returns 0 at once: the
 * caller runs that loop. */
int pm_daemon_run (pm_daemon_t *d);
/* Asks the loop to stop after the current batch. */
void pm_daemon_stop (pm_daemon_t *d);

pm_store_t *pm_daemon_store (pm_daemon_t *d);
pm_metrics_t *pm_daemon_metrics (pm_daemon_t *d);
pm_clock_t *pm_daemon_clock (pm_daemon_t *d);
struct ev_loop *pm_daemon_loop (pm_daemon_t *d);
/* Latest committed outbox seq. */
uint64_t pm_daemon_last_seq (pm_daemon_t *d);
/* Last applied seq of an upstream (committed inbox cursor). */
uint64_t pm_daemon_applied (pm_daemon_t *d, const char *source);

/* --- for handlers ---------------------------------------------------------- */

/* Sets the reply status and message (printf-style). Returns status, so a
 * handler can `return pm_reply (out, PM__V1__STATUS__INVALID, "...")`. */
int pm_reply (pm_out_t *out, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
/* Sets the reply body for the request's method (body from ctx->arena). */
void pm_reply_body (pm_out_t *out, ProtobufCMessage *body);
/* Emits an event in txn: the runtime fills source, seq, id, at_ms, stores it in
 * the outbox and publishes it after the commit. ev is read, not kept.
 * correlation_id defaults to the request's id. */
int pm_emit (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__V1__Event *ev);

/* Turns one table entry into a queue item (strings from ctx->arena). */
typedef void (*pm_queue_item_fn) (pm_ctx_t *ctx, const MDB_val *key, const MDB_val *val, Pm__V1__QueueItem *item);
/* Appends to r a queue whose count is the number of entries in table and whose
 * items are its first `limit` entries, made by fn. Returns the queue (arena). */
Pm__V1__Queue *pm_queue_from_table (pm_ctx_t *ctx, pm_txn_t *txn, Pm__V1__OpsQueuesReply *r, const char *name,
                                    const char *description, int table, uint32_t limit, pm_queue_item_fn fn);

/* --- for tests: the batch without sockets ----------------------------------- */

typedef struct {
    Pm__V1__Request *req;     /* a command, or */
    Pm__V1__Event *ev;        /* an upstream event (ev->source names the upstream) */
    Pm__V1__Reply *reply;     /* out: the reply (arena memory, valid until next batch) */
} pm_batch_item_t;

/* Applies items as one group commit and fills each reply (valid until the next
 * call). Returns PM_OK, or PM_EIO when the commit failed (replies UNAVAILABLE).
 * Publishes nothing (no sockets needed). */
int pm_daemon_apply (pm_daemon_t *d, pm_batch_item_t *items, size_t n);

#endif
