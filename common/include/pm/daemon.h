/* pm/daemon.h - the runtime every daemon is built on: one libev loop, one LMDB
 * store, a ROUTER for commands, reads and replay, a PUB for events, and one
 * subscription per upstream daemon. A daemon is a pm_daemon_spec_t (its
 * tables, routes, subscriptions, timers, queues, gauges and app context) and
 * a one-line main: `return pm_daemon_main (&intake_spec, argc, argv);`.
 *
 * Group commit. Each turn of the loop drains the ready messages from every
 * socket and the due timers, applies all the writes in ONE write transaction,
 * commits once (one fsync), and only then sends their replies and publishes
 * the new events. A batch is bounded by messages (batch_max) and by its work:
 * the runtime measures what a byte of request costs to apply and commit and
 * takes in about batch_max_us of work, so a batch is large under bulk load,
 * small when idle, and never holds the loop much longer than batch_max_us. A
 * command whose handler fails after writing is rolled back alone (the batch
 * is redone with that command in a nested transaction). MDB_MAP_FULL grows
 * the map and redoes the batch.
 *
 * Reads do not wait for writes. A route marked PM_ROUTE_READ is answered as
 * soon as it is read off the socket, from a read transaction of the last
 * committed state: it never sees a batch in flight, and it never waits for
 * one to commit.
 *
 * Exactly once. For a command, the state change, the events it emits and its
 * stored reply (idem, keyed by request id) commit together: a retried id gets
 * the stored reply. For a consumed event, the handler's changes and the inbox
 * cursor (source -> seq) commit together: a restart on either side replays
 * from the cursor and applies nothing twice. A due timer is removed in the
 * same transaction as its handler's writes.
 *
 * Never stranded. A consumer whose cursor fell behind the upstream's
 * retention, or that is told to rebuild (ops.rebuild), loads the upstream's
 * snapshot (events.snapshot: its state as events, as of one seq) and follows
 * from there. An upstream without a snapshot leaves the consumer stranded:
 * said once in the log and shown in ops.queues `upstreams`, retried slowly.
 *
 * Handlers are pure: they read and write through txn, take time and memory
 * from ctx, emit events and set the reply through out. No sockets, no clock. */
#ifndef PM_DAEMON_H
#define PM_DAEMON_H

#include "pm/arena.h"
#include "pm/clock.h"
#include "pm/config.h"
#include "pm/err.h"
#include "pm/key.h"
#include "pm/metrics.h"
#include "pm/proto.h"
#include "pm/store.h"
#include "pm/timer.h"

#include <ev.h>
#include <stdbool.h>

typedef struct pm_daemon pm_daemon_t;
typedef struct pm_out pm_out_t;
typedef struct pm_snapshot pm_snapshot_t;

/* What a handler sees: only what a pure handler needs. */
typedef struct {
    const char *name;      /* the daemon's name */
    pm_arena_t *arena;     /* this batch's memory: reply bodies, event payloads, decoded records */
    pm_metrics_t *metrics; /* for the daemon's own counters and gauges */
    int64_t now_ms;        /* the daemon clock when the batch started */
    void *app;             /* the daemon's own context (spec.app_new) */
} pm_ctx_t;

/* A command handler: returns a pm.v1.Status (PM__V1__STATUS__OK, ...). On OK
 * the writes commit with the batch; on anything else they are rolled back. */
typedef int (*pm_cmd_fn) (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* An event handler: same contract, for an event consumed from an upstream
 * daemon. A non-OK status dead-letters the event (ops.queues dead_events). */
typedef int (*pm_event_fn) (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
/* A durable timer handler (pm/timer.h); key and payload are what was set. */
typedef int (*pm_timer_fn) (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload,
                            size_t plen, pm_out_t *out);
/* Adds the daemon's own queues to an ops.queues reply (read txn). */
typedef void (*pm_queues_fn) (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
/* Refreshes the daemon's own gauges before ops.metrics answers (read txn). */
typedef void (*pm_gauges_fn) (pm_ctx_t *ctx, pm_txn_t *txn);
/* Streams the daemon's current state as events for events.snapshot: appends
 * events with pm_snapshot_add, resuming after pm_snapshot_after(), until
 * pm_snapshot_add says the page is full or the state is exhausted (read txn). */
typedef int (*pm_snapshot_fn) (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap);
/* An in-process write (pm_daemon_write): runs in a batch's write transaction
 * exactly as a command handler does (same ctx, txn and out: it may emit
 * events; a non-OK status rolls back its writes alone). It may run more than
 * once when the batch is redone, so it resets whatever it fills in arg first. */
typedef int (*pm_write_fn) (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out);
/* Called on the loop once that batch is over: status is the write's own, or
 * PM__V1__STATUS__UNAVAILABLE when the group commit failed (nothing applied). */
typedef void (*pm_written_fn) (int status, void *arg);

enum {
    PM_ROUTE_WRITE = 0, /* runs in the batch's write txn; reply stored under the request id */
    PM_ROUTE_READ = 1,  /* answered at once from the committed state; nothing stored */
};

typedef struct {
    const char *method; /* "intake.import": its body is Request.intake_import */
    pm_cmd_fn fn;
    int flags;          /* PM_ROUTE_* */
} pm_route_t;

/* Any payload (or none): an event route that checks nothing. */
#define PM_ANY_PAYLOAD (-1)

typedef struct {
    const char *type;   /* exact event type, or a prefix ending in '.' ("intake.unit.") */
    int payload;        /* the Event.payload case it expects (PM__V1__EVENT__PAYLOAD_UNIT),
                         * or PM_ANY_PAYLOAD; the runtime dead-letters a mismatch */
    pm_event_fn fn;
} pm_event_route_t;

/* One upstream daemon this daemon consumes. */
typedef struct {
    const char *source;              /* "intake": endpoints from its config section */
    const pm_event_route_t *routes;  /* terminated by {NULL}; other types only move the cursor */
    const int *tables;               /* tables built only from this source, emptied by
                                      * ops.rebuild; terminated by -1; may be NULL */
} pm_upstream_t;

typedef struct {
    const char *kind;   /* "workorder.sla.respond" */
    pm_timer_fn fn;
} pm_timer_route_t;

/* A daemon's description (all borrowed, static). Tables are an enum starting
 * at PM_DB_FIRST_DOMAIN and an array indexed by it, so an id and its name
 * cannot drift apart:
 *
 *   enum { BILLING_UNITS = PM_DB_FIRST_DOMAIN, BILLING_INVOICES, BILLING_NTABLES };
 *   static const char *const s_tables[BILLING_NTABLES] = {
 *       [BILLING_UNITS] = "units", [BILLING_INVOICES] = "invoices" };
 */
typedef struct {
    const char *name;
    const char *const *tables;          /* indexed by table id; may be NULL */
    int ntables;                        /* one past the last table id (BILLING_NTABLES) */
    const pm_route_t *routes;           /* terminated by {NULL} */
    const pm_upstream_t *upstreams;     /* terminated by {NULL}; may be NULL */
    const pm_timer_route_t *timers;     /* terminated by {NULL}; may be NULL */
    pm_queues_fn queues;                /* may be NULL */
    pm_gauges_fn gauges;                /* may be NULL */
    pm_snapshot_fn snapshot;            /* may be NULL: consumers then cannot rebuild from it */
    /* The daemon's own context, made after the store is open and given to
     * every handler as ctx->app; NULL (after logging why) stops the start. */
    void *(*app_new) (pm_daemon_t *d, const pm_config_t *cfg);
    void (*app_destroy) (void *app);
    /* Called on the loop after each group commit that changed state, once its
     * replies are sent and its events published (also after pm_daemon_apply
     * and pm_daemon_fire_timers). For application work that follows what was
     * just made durable, outside the handlers (notify's dispatcher). May be NULL. */
    void (*committed) (void *app);
} pm_daemon_spec_t;

/* The whole life of a daemon process: options (-c FILE, --help), config,
 * store, app, subscriptions, sockets, loop until SIGTERM, teardown. Returns
 * the exit code. */
int pm_daemon_main (const pm_daemon_spec_t *spec, int argc, char **argv);

/* Reads the command line (-c/--config FILE, -h/--help), loads the config,
 * opens the log. Returns NULL (after printing why) when the daemon should
 * exit; *exit_code is set (0 for --help). */
pm_config_t *pm_daemon_config (const char *name, int argc, char **argv, int *exit_code);

/* Creates the daemon from config: clock, metrics, store (with spec's tables),
 * the app context, and the subscriptions to spec's upstreams (connected, not
 * yet started). Takes cfg (destroyed with the daemon). loop NULL = a new loop
 * of its own. Returns NULL (logged) on failure. */
pm_daemon_t *pm_daemon_new (const pm_daemon_spec_t *spec, pm_config_t *cfg, struct ev_loop *loop);
void pm_daemon_destroy (pm_daemon_t **p);
/* Binds the ROUTER and PUB endpoints from config. */
int pm_daemon_bind (pm_daemon_t *d);
/* Starts the watchers, asks each upstream for a replay from its cursor, then
 * runs the loop until SIGTERM/SIGINT and returns the exit code. When the
 * daemon was given a loop (tests), it only starts and returns 0 at once: the
 * caller runs that loop. */
int pm_daemon_run (pm_daemon_t *d);
/* Asks the loop to stop after the current batch. */
void pm_daemon_stop (pm_daemon_t *d);
/* Queues an in-process write for the next batch of the loop (which is woken
 * for it): how application code outside the handlers (an app's own watchers)
 * commits state and emits events. fn runs in that batch's transaction; then
 * done (may be NULL) gets its status. arg is the caller's and must live until
 * done; writes still queued when the daemon is destroyed are dropped without
 * done. Never called from a handler. Only the loop applies them
 * (pm_daemon_apply does not). */
void pm_daemon_write (pm_daemon_t *d, pm_write_fn fn, pm_written_fn done, void *arg);
/* In-process writes queued and not yet applied. */
size_t pm_daemon_writes_queued (pm_daemon_t *d);

pm_store_t *pm_daemon_store (pm_daemon_t *d);
pm_metrics_t *pm_daemon_metrics (pm_daemon_t *d);
pm_clock_t *pm_daemon_clock (pm_daemon_t *d);
struct ev_loop *pm_daemon_loop (pm_daemon_t *d);
void *pm_daemon_app (pm_daemon_t *d);
const char *pm_daemon_name (pm_daemon_t *d);
/* Latest committed outbox seq. */
uint64_t pm_daemon_last_seq (pm_daemon_t *d);
/* Last applied seq of an upstream (committed inbox cursor). */
uint64_t pm_daemon_applied (pm_daemon_t *d, const char *source);
/* The daemon's metrics in the Prometheus text format, its gauges refreshed
 * from a read transaction first: what GET /metrics serves (for a daemon that
 * serves HTTP itself). Caller frees; NULL when the store cannot be read.
 * Not from inside a handler (it opens a read txn and uses the read arena). */
char *pm_daemon_prometheus (pm_daemon_t *d);

/* --- for handlers ---------------------------------------------------------- */

/* Sets the reply status and message (printf-style). Returns status, so a
 * handler can `return pm_reply (out, PM__V1__STATUS__INVALID, "...")`. */
int pm_reply (pm_out_t *out, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
/* Sets the reply body for the request's method (body from ctx->arena). */
void pm_reply_body (pm_out_t *out, ProtobufCMessage *body);
/* Emits an event in txn: the runtime fills source, seq, id and at_ms, stores
 * it in the outbox and publishes it after the commit. ev is read, not kept.
 * correlation_id defaults to the request's id (or the consumed event's). */
int pm_emit (pm_out_t *out, pm_txn_t *txn, Pm__V1__Event *ev);

/* --- queues: the work waiting on people (ops.queues) ------------------------- */

/* Appends an empty queue to r (arena memory) with room for limit items. */
Pm__V1__Queue *pm_queue_new (pm_ctx_t *ctx, Pm__V1__OpsQueuesReply *r, const char *name, const char *description,
                             uint32_t limit);
/* Appends item to q when there is room (q->count is the caller's to set). */
void pm_queue_add (Pm__V1__Queue *q, Pm__V1__QueueItem *item);
/* Appends to r the queue stored in table (values are packed QueueItems):
 * count = entries, items = the first `limit` in key order. */
Pm__V1__Queue *pm_queue_from_table (pm_ctx_t *ctx, pm_txn_t *txn, Pm__V1__OpsQueuesReply *r, const char *name,
                                    const char *description, int table, uint32_t limit);
/* A new item (arena): key, estate, unit, since and reason set (strings borrowed). */
Pm__V1__QueueItem *pm_queue_item (pm_ctx_t *ctx, const char *key, const char *estate_id, const char *unit_id,
                                  int64_t since_ms, const char *reason);
/* Adds the field name = value (printf-style value, arena) to item. */
void pm_queue_field (pm_ctx_t *ctx, Pm__V1__QueueItem *item, const char *name, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
/* Stores item under k in a queue table (its key text is item->key). */
int pm_queue_put (pm_txn_t *txn, int table, const pm_key_t *k, const Pm__V1__QueueItem *item);

/* --- snapshots (events.snapshot) -------------------------------------------- */

/* Where this page starts: the `after` given to the previous pm_snapshot_add
 * (len 0 at the start). Borrowed. */
const void *pm_snapshot_after (const pm_snapshot_t *s, size_t *len);
/* Adds ev (type, unit, payload set by the caller; arena memory) to the page,
 * remembering after[0..len) as the point the next page resumes after.
 * Returns false when the page is full: stop, the event was not added. */
bool pm_snapshot_add (pm_snapshot_t *s, Pm__V1__Event *ev, const void *after, size_t len);

/* --- for tests: the batch without sockets ----------------------------------- */

typedef struct {
    Pm__V1__Request *req;     /* a command or a read, or */
    Pm__V1__Event *ev;        /* an upstream event (ev->source names the upstream) */
    Pm__V1__Reply *reply;     /* out: the reply (arena memory, valid until next call) */
} pm_batch_item_t;

/* Applies items as one group commit and fills each reply (valid until the next
 * call); reads are answered from the state committed before the batch.
 * Returns PM_OK, or PM_EIO when the commit failed (replies UNAVAILABLE).
 * Publishes nothing (no sockets needed). Then fires the timers that are due. */
int pm_daemon_apply (pm_daemon_t *d, pm_batch_item_t *items, size_t n);
/* Fires the timers due at the daemon's clock, as the loop would; returns how many fired. */
size_t pm_daemon_fire_timers (pm_daemon_t *d);
/* Events this daemon emitted in the last pm_daemon_apply / fire (arena memory). */
size_t pm_daemon_emitted (pm_daemon_t *d, Pm__V1__Event ***events);

#endif
