/* ops.c - the methods every daemon answers without a line of its own code:
 * events.replay, events.snapshot, ops.ping, ops.metrics, ops.queues,
 * ops.clock and ops.rebuild; the typed queues behind ops.queues; and the
 * housekeeping that prunes stored replies and events past their retention.
 *
 * Built-ins get the runtime's private context (s_bctx_t: a handler's context
 * plus the daemon); domain handlers never see the daemon. */
#define _GNU_SOURCE
#include "daemon_int.h"
#include "pm/curve.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_PRUNE_EVERY_MS 60000
#define S_PRUNE_MAX 10000

static pm_daemon_t *
s_d (pm_ctx_t *ctx)
{
    return ((s_bctx_t *) ctx)->d;
}

/* --- queues -------------------------------------------------------------------------- */

Pm__V1__Queue *
pm_queue_new (pm_ctx_t *ctx, Pm__V1__OpsQueuesReply *r, const char *name, const char *description, uint32_t limit)
{
    Pm__V1__Queue *q = pm_arena_alloc (ctx->arena, sizeof *q);
    pm__v1__queue__init (q);
    q->name = (char *) name;
    q->description = (char *) description;
    q->items = pm_arena_alloc (ctx->arena, (limit + 1) * sizeof *q->items);
    /* r->queues grows by doubling; its capacity is the next power of two */
    size_t n = r->n_queues;
    if (n == 0 || (n & (n - 1)) == 0) {
        Pm__V1__Queue **grown = pm_arena_alloc (ctx->arena, (n ? 2 * n : 8) * sizeof *grown);
        if (n)
            memcpy (grown, r->queues, n * sizeof *grown);
        r->queues = grown;
    }
    r->queues[r->n_queues++] = q;
    return q;
}

/* Items beyond the limit given to pm_queue_new are counted by the caller, not kept. */
void
pm_queue_add (Pm__V1__Queue *q, Pm__V1__QueueItem *item)
{
    q->items[q->n_items++] = item;
}

Pm__V1__QueueItem *
pm_queue_item (pm_ctx_t *ctx, const char *key, const char *estate_id, const char *unit_id, int64_t since_ms,
               const char *reason)
{
    Pm__V1__QueueItem *it = pm_arena_alloc (ctx->arena, sizeof *it);
    pm__v1__queue_item__init (it);
    it->key = (char *) (key ? key : "");
    it->estate_id = (char *) (estate_id ? estate_id : "");
    it->unit_id = (char *) (unit_id ? unit_id : "");
    it->since_ms = since_ms;
    it->reason = (char *) (reason ? reason : "");
    return it;
}

void
pm_queue_field (pm_ctx_t *ctx, Pm__V1__QueueItem *item, const char *name, const char *fmt, ...)
{
    Pm__V1__QueueField *f = pm_arena_alloc (ctx->arena, sizeof *f);
    pm__v1__queue_field__init (f);
    va_list ap;
    va_start (ap, fmt);
    f->name = (char *) name;
    f->value = pm_arena_vprintf (ctx->arena, fmt, ap);
    va_end (ap);
    Pm__V1__QueueField **fields = pm_arena_alloc (ctx->arena, (item->n_fields + 1) * sizeof *fields);
    if (item->n_fields)
        memcpy (fields, item->fields, item->n_fields * sizeof *fields);
    fields[item->n_fields++] = f;
    item->fields = fields;
}

int
pm_queue_put (pm_txn_t *txn, int table, const pm_key_t *k, const Pm__V1__QueueItem *item)
{
    return pm_txn_put_msg (txn, table, k, &item->base);
}

Pm__V1__Queue *
pm_queue_from_table (pm_ctx_t *ctx, pm_txn_t *txn, Pm__V1__OpsQueuesReply *r, const char *name,
                     const char *description, int table, uint32_t limit)
{
    Pm__V1__Queue *q = pm_queue_new (ctx, r, name, description, limit);
    q->count = pm_txn_count (txn, table);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, table, NULL); s.ok && q->n_items < limit; pm_scan_next (&s)) {
        Pm__V1__QueueItem *item;
        if (pm_scan_msg (&s, &pm__v1__queue_item__descriptor, &item) != PM_OK) {
            char *key = pm_arena_printf (ctx->arena, "%.*s", (int) s.key.mv_size, (char *) s.key.mv_data);
            item = pm_queue_item (ctx, key, "", "", 0, "stored item does not decode");
        }
        pm_queue_add (q, item);
    }
    pm_scan_end (&s);
    return q;
}

/* --- snapshots, served ------------------------------------------------------------------ */

const void *
pm_snapshot_after (const pm_snapshot_t *s, size_t *len)
{
    *len = s->after_len;
    return s->after;
}

bool
pm_snapshot_add (pm_snapshot_t *s, Pm__V1__Event *ev, const void *after, size_t len)
{
    if (s->n == s->max || s->bytes >= PM_REPLAY_MAX_BYTES)
        return false;
    s->events[s->n++] = ev;
    s->bytes += pm__v1__event__get_packed_size (ev);
    s->next_after = pm_arena_alloc (s->d->rarena, len + 1);
    memcpy (s->next_after, after, len);
    s->next_after_len = len;
    return true;
}

void
pm__served_expire (pm_daemon_t *d, bool all)
{
    int64_t now = pm_mono_ms ();
    for (int i = 0; i < PM_MAX_SNAPSHOTS; i++) {
        s_served_t *sv = &d->served[i];
        if (sv->open && (all || now - sv->used_ms > PM_SNAPSHOT_IDLE_MS)) {
            pm_txn_abort (&sv->txn);
            sv->open = false;
            if (!all)
                pm_info ("snapshot %s (seq %llu) expired after %u pages: its reader went quiet", sv->token,
                         (unsigned long long) sv->seq, sv->pages);
        }
    }
}

static s_served_t *
s_served_find (pm_daemon_t *d, const char *token)
{
    for (int i = 0; i < PM_MAX_SNAPSHOTS; i++)
        if (d->served[i].open && strcmp (d->served[i].token, token) == 0)
            return &d->served[i];
    return NULL;
}

static int
s_builtin_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = s_d (ctx);
    const Pm__V1__EventsSnapshotRequest *q = req->events_snapshot;
    if (!d->spec->snapshot)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "%s keeps no snapshot of its state; a consumer can only replay its events from seq 1",
                         d->name);
    s_served_t *sv;
    if (!*q->token) {
        sv = NULL;
        for (int i = 0; i < PM_MAX_SNAPSHOTS && !sv; i++)
            if (!d->served[i].open)
                sv = &d->served[i];
        if (!sv)
            return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "%s is serving %d snapshots already; ask again later",
                             d->name, PM_MAX_SNAPSHOTS);
        if (pm_txn_begin_read (&sv->txn, d->store) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: cannot read");
        sv->open = true;
        sv->seq = d->committed_seq;
        sv->pages = 0;
        snprintf (sv->token, sizeof sv->token, "%s-%u-%08x", d->name, ++d->served_n, randombytes_random ());
        pm_info ("snapshot %s for %s: state as of seq %llu", sv->token, req->actor, (unsigned long long) sv->seq);
    }
    else if (!(sv = s_served_find (d, q->token)))
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "token: snapshot '%s' is unknown or expired (idle over %d s, or %s restarted); "
                         "start again with an empty token",
                         q->token, PM_SNAPSHOT_IDLE_MS / 1000, d->name);
    sv->used_ms = pm_mono_ms ();
    sv->txn.arena = ctx->arena;
    pm_snapshot_t snap = { d, q->after.data, q->after.len, NULL, 0, 0, 0, NULL, 0 };
    snap.max = q->max == 0 || q->max > PM_SNAPSHOT_MAX ? PM_SNAPSHOT_MAX : q->max;
    snap.events = pm_arena_alloc (ctx->arena, (snap.max + 1) * sizeof *snap.events);
    int rc = d->spec->snapshot (ctx, &sv->txn, &snap);
    if (rc != PM_OK || sv->txn.err) {
        pm_txn_abort (&sv->txn);
        sv->open = false;
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "snapshot of %s failed: %s", d->name,
                         pm_strerror (rc != PM_OK ? rc : sv->txn.err));
    }
    sv->pages++;
    Pm__V1__EventsSnapshotReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__events_snapshot_reply__init (r);
    r->token = pm_arena_strdup (ctx->arena, sv->token);
    r->seq = sv->seq;
    r->events = snap.events;
    r->n_events = snap.n;
    r->done = snap.n < snap.max && snap.bytes < PM_REPLAY_MAX_BYTES;
    r->after.data = snap.next_after ? snap.next_after : (void *) q->after.data;
    r->after.len = snap.next_after ? snap.next_after_len : q->after.len;
    for (size_t i = 0; i < snap.n; i++) {
        Pm__V1__Event *ev = snap.events[i];
        ev->source = (char *) d->name;
        ev->seq = sv->seq;
        ev->id = pm_arena_printf (ctx->arena, "%s:%llu:snapshot:%u.%zu", d->name, (unsigned long long) sv->seq,
                                  sv->pages, i);
        ev->at_ms = ctx->now_ms;
        ev->snapshot = true;
    }
    if (r->done) {
        pm_info ("snapshot %s done: %u pages", sv->token, sv->pages);
        pm_txn_abort (&sv->txn);
        sv->open = false;
    }
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu events of %s's state as of seq %llu%s", r->n_events, d->name,
                     (unsigned long long) r->seq, r->done ? " (last page)" : "");
}

/* --- the other built-ins ----------------------------------------------------------------- */

static int
s_builtin_ping (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = s_d (ctx);
    Pm__V1__OpsPingReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__ops_ping_reply__init (r);
    r->daemon = (char *) d->name;
    r->pid = getpid ();
    r->last_seq = d->committed_seq;
    r->now_ms = pm_clock_now_ms (d->clock);
    r->started_ms = d->started_ms;
    r->metrics_url = d->metrics_url ? d->metrics_url : "";
    if (d->nups) {
        r->upstreams = pm_arena_alloc (ctx->arena, (size_t) d->nups * sizeof *r->upstreams);
        for (int i = 0; i < d->nups; i++) {
            Pm__V1__UpstreamPosition *p = pm_arena_alloc (ctx->arena, sizeof *p);
            pm__v1__upstream_position__init (p);
            p->source = (char *) d->ups[i].name;
            p->applied_seq = d->ups[i].applied;
            p->following = d->ups[i].state == UP_FOLLOW;
            r->upstreams[r->n_upstreams++] = p;
        }
    }
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s is up", d->name);
}

static int
s_builtin_replay (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = s_d (ctx);
    const Pm__V1__EventsReplayRequest *q = req->events_replay;
    uint64_t from = q->from_seq ? q->from_seq : 1;
    uint32_t max = q->max == 0 || q->max > PM_REPLAY_MAX ? PM_REPLAY_MAX : q->max;
    Pm__V1__EventsReplayReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__events_replay_reply__init (r);
    r->last_seq = d->committed_seq;
    pm_scan_t s;
    pm_scan_prefix (&s, txn, PM_DB_OUTBOX, NULL);
    r->first_seq = s.ok ? pm_be_u64 (s.key.mv_data) : d->committed_seq + 1;
    pm_scan_end (&s);
    if (from < r->first_seq && from <= d->committed_seq) {
        pm_reply_body (out, &r->base);
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "from_seq: events %llu..%llu of %s were pruned ([general] event_retention_d); "
                         "the oldest retained is %llu: load events.snapshot, then replay from its seq",
                         (unsigned long long) from, (unsigned long long) r->first_seq - 1, d->name,
                         (unsigned long long) r->first_seq);
    }
    pm_key_t k;
    size_t bytes = 0, n = 0;
    uint64_t expect = from;
    if (q->raw) /* packed as stored: the consumer decodes only what it handles */
        r->raw_events = pm_arena_alloc (ctx->arena, max * sizeof *r->raw_events);
    else
        r->events = pm_arena_alloc (ctx->arena, max * sizeof *r->events);
    for (pm_scan_range (&s, txn, PM_DB_OUTBOX, pm_key (&k, "U", from), NULL);
         s.ok && n < max && bytes < PM_REPLAY_MAX_BYTES && pm_be_u64 (s.key.mv_data) == expect; pm_scan_next (&s)) {
        if (q->raw) {
            void *copy = pm_arena_alloc (ctx->arena, s.val.mv_size + 1);
            memcpy (copy, s.val.mv_data, s.val.mv_size);
            r->raw_events[r->n_raw_events++] = (ProtobufCBinaryData) { s.val.mv_size, copy };
        }
        else {
            Pm__V1__Event *ev = pm__v1__event__unpack (pm_arena_pb (ctx->arena), s.val.mv_size, s.val.mv_data);
            if (!ev)
                break;
            r->events[r->n_events++] = ev;
        }
        n++;
        bytes += s.val.mv_size;
        expect++;
    }
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu events from %llu", n, (unsigned long long) from);
}

void
pm__refresh_gauges (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_metrics_t *m = d->metrics;
    pm_gauge (m, "pm_outbox_last_seq", NULL, "Latest committed event seq of this daemon", (double) d->committed_seq);
    pm_gauge (m, "pm_outbox_events", NULL, "Events retained for replay", (double) pm_txn_count (txn, PM_DB_OUTBOX));
    pm_gauge (m, "pm_idem_replies", NULL, "Replies stored under their request id", (double) pm_txn_count (txn, PM_DB_IDEM));
    pm_gauge (m, "pm_timers_pending", NULL, "Durable timers not yet fired", (double) pm_txn_count (txn, PM_DB_TIMERS));
    pm_gauge (m, "pm_dead_events", NULL, "Consumed events and timers that could not be applied",
              (double) pm_txn_count (txn, PM_DB_DEAD));
    pm_gauge (m, "pm_map_size_bytes", NULL, "LMDB map size", (double) pm_store_map_size (d->store));
    if (d->zap) {
        pm_gauge (m, "pm_curve_clients_admitted", NULL, "CurveZMQ handshakes admitted (key in curve_allow)",
                  (double) pm_zap_admitted (d->zap));
        pm_gauge (m, "pm_curve_clients_refused", NULL, "CurveZMQ handshakes refused (key not in curve_allow)",
                  (double) pm_zap_refused (d->zap));
    }
    pm_gauge (m, "pm_batch_budget_bytes", NULL, "Bytes of work the next batch may take in (from the measured cost)",
              d->ns_per_byte > 0 ? (double) pm__batch_budget (d) : 0);
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info (pm_store_env (d->store), &info);
    mdb_env_stat (pm_store_env (d->store), &st);
    pm_gauge (m, "pm_map_used_bytes", NULL, "LMDB pages in use", (double) (info.me_last_pgno + 1) * st.ms_psize);
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        char labels[96];
        snprintf (labels, sizeof labels, "source=\"%s\"", u->name);
        pm_gauge (m, "pm_consumer_applied_seq", labels, "Last event seq applied from this source", (double) u->applied);
        pm_gauge (m, "pm_consumer_following", labels,
                  "1 while following this source; 0 while loading its snapshot or stranded",
                  u->state == UP_FOLLOW ? 1 : 0);
        pm_metric_set (u->m_lag, u->known_last > u->applied ? (double) (u->known_last - u->applied) : 0);
    }
    if (d->spec->gauges)
        d->spec->gauges (ctx, txn);
}

static int
s_builtin_metrics (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = s_d (ctx);
    pm__refresh_gauges (d, ctx, txn);
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
char *
pm__prometheus (void *arg)
{
    pm_daemon_t *d = arg;
    pm_txn_t t;
    if (pm_txn_begin_read (&t, d->store) != PM_OK)
        return NULL;
    t.arena = d->rarena;
    s_bctx_t b = pm__bctx (d, d->rarena);
    pm__refresh_gauges (d, &b.ctx, &t);
    pm_txn_abort (&t);
    pm_arena_reset (d->rarena);
    return pm_metrics_prometheus (d->metrics, d->name);
}

char *
pm_daemon_prometheus (pm_daemon_t *d)
{
    return pm__prometheus (d);
}

static void
s_upstreams_queue (pm_ctx_t *ctx, pm_daemon_t *d, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    Pm__V1__Queue *q = pm_queue_new (ctx, r, "upstreams",
                                     "upstreams this daemon is not following: loading a snapshot, or stranded "
                                     "(fix the upstream, or pmctl rebuild DAEMON --from UPSTREAM)",
                                     limit);
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        if (u->state == UP_FOLLOW)
            continue;
        q->count++;
        if (q->n_items == limit)
            continue;
        Pm__V1__QueueItem *it = pm_queue_item (ctx, u->name, "", "", u->snap_since_ms, u->why);
        pm_queue_field (ctx, it, "state", "%s", u->state == UP_SNAPSHOT ? "loading snapshot" : "stranded");
        pm_queue_field (ctx, it, "applied_seq", "%llu", (unsigned long long) u->applied);
        pm_queue_field (ctx, it, "upstream_seq", "%llu", (unsigned long long) u->known_last);
        pm_queue_add (q, it);
    }
}

static int
s_builtin_queues (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = s_d (ctx);
    uint32_t limit = req->ops_queues->limit ? req->ops_queues->limit : 20;
    if (limit > 1000)
        limit = 1000;
    Pm__V1__OpsQueuesReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__ops_queues_reply__init (r);
    r->daemon = (char *) d->name;
    if (d->nups > 0 || d->spec->timers) {
        pm_queue_from_table (ctx, txn, r, "dead_events",
                             "events from other daemons, and timers, that could not be applied: fix the cause, "
                             "then re-send the fact from its source",
                             PM_DB_DEAD, limit);
    }
    if (d->nups > 0)
        s_upstreams_queue (ctx, d, limit, r);
    if (d->spec->queues)
        d->spec->queues (ctx, txn, limit, r);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu queues", r->n_queues);
}

static int
s_builtin_clock (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = s_d (ctx);
    const Pm__V1__OpsClockRequest *q = req->ops_clock;
    int64_t now = d->clock_pending >= 0 ? d->clock_pending : pm_clock_now_ms (d->clock);
    bool change = *q->set_to || *q->advance_by;
    if (change && !pm_clock_manual_allowed (d->clock))
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "%s runs on the wall clock; manual time needs [general] manual_clock = true "
                         "(or PM_GENERAL_MANUAL_CLOCK=true) at start",
                         d->name);
    if (*q->set_to) {
        int64_t t;
        if (pm_time_parse (q->set_to, &t) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__INVALID, "set_to: '%s' is not a UTC time; expected e.g. 2026-12-01T09:00:00Z",
                             q->set_to);
        now = t;
    }
    if (*q->advance_by) {
        int64_t delta;
        if (pm_duration_parse (q->advance_by, &delta) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "advance_by: '%s' is not a duration; expected e.g. 90s, 15m, 3h, 3d or 1d12h", q->advance_by);
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

static int
s_builtin_rebuild (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_daemon_t *d = s_d (ctx);
    const char *source = req->ops_rebuild->source;
    s_upstream_t *u = pm__upstream_find (d, source);
    if (!u) {
        char *names = pm_arena_strdup (ctx->arena, "");
        for (int i = 0; i < d->nups; i++)
            names = pm_arena_printf (ctx->arena, "%s%s%s", names, i ? ", " : "", d->ups[i].name);
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "source: %s does not consume '%s'; it consumes: %s", d->name,
                         source, d->nups ? names : "nothing");
    }
    /* durable before the reply: a restart resumes the rebuild */
    char key[96];
    snprintf (key, sizeof key, "snapshot:%s", u->name);
    pm_meta_put_u64 (txn, key, 1);
    d->rebuild_pending = (int) (u - d->ups);
    Pm__V1__OpsRebuildReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__ops_rebuild_reply__init (r);
    r->source = (char *) u->spec->source;
    r->cursor_before = u->applied;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK,
                     "%s rebuilds its projection of %s from %s's snapshot (it was at seq %llu); "
                     "ops.queues upstreams shows the load until it is done",
                     d->name, u->name, u->name, (unsigned long long) u->applied);
}

const pm_route_t pm__builtins[] = {
    { "events.replay", s_builtin_replay, PM_ROUTE_READ },
    { "events.snapshot", s_builtin_snapshot, PM_ROUTE_READ },
    { "ops.metrics", s_builtin_metrics, PM_ROUTE_READ },
    { "ops.queues", s_builtin_queues, PM_ROUTE_READ },
    { "ops.ping", s_builtin_ping, PM_ROUTE_READ },
    { "ops.clock", s_builtin_clock, PM_ROUTE_WRITE },
    { "ops.rebuild", s_builtin_rebuild, PM_ROUTE_WRITE },
    { NULL, NULL, 0 },
};

/* --- housekeeping ------------------------------------------------------------------------ */

/* Deletes idem replies older than the retention (at most S_PRUNE_MAX looked at
 * per run, resuming where the last run stopped) and outbox events past theirs. */
void
pm__prune (pm_daemon_t *d)
{
    int64_t mono = pm_mono_ms ();
    if (mono - d->last_prune_ms < S_PRUNE_EVERY_MS)
        return;
    d->last_prune_ms = mono;
    int64_t now = pm_clock_now_ms (d->clock);
    pm_txn_t t;
    size_t idem = 0, events = 0, seen = 0;
    if (pm_txn_begin (&t, d->store, NULL) != PM_OK)
        return;
    t.arena = d->rarena;
    pm_scan_t s;
    pm_key_t from;
    pm_key_raw (&from, d->prune_idem_key, d->prune_idem_klen);
    for (pm_scan_range (&s, &t, PM_DB_IDEM, &from, NULL); s.ok && seen++ < S_PRUNE_MAX; pm_scan_next (&s))
        if (s.val.mv_size >= 8 && (int64_t) pm_be_u64 (s.val.mv_data) < now - d->idem_retention_ms) {
            pm_scan_del (&s);
            idem++;
        }
    if (s.ok && s.key.mv_size <= sizeof d->prune_idem_key) { /* resume here next time */
        memcpy (d->prune_idem_key, s.key.mv_data, s.key.mv_size);
        d->prune_idem_klen = s.key.mv_size;
    }
    else
        d->prune_idem_klen = 0;
    for (pm_scan_prefix (&s, &t, PM_DB_OUTBOX, NULL); s.ok && events < S_PRUNE_MAX; pm_scan_next (&s)) {
        Pm__V1__Event *ev = pm__v1__event__unpack (NULL, s.val.mv_size, s.val.mv_data);
        bool old = ev && ev->at_ms < now - d->event_retention_ms && pm_be_u64 (s.key.mv_data) < d->committed_seq;
        if (ev)
            pm__v1__event__free_unpacked (ev, NULL);
        if (!old)
            break;
        pm_scan_del (&s);
        events++;
    }
    if (pm_txn_commit (&t) != PM_OK)
        pm_warn ("pruning failed: %s", pm_strerror (t.err));
    else if (idem || events)
        pm_info ("pruned %zu stored replies and %zu events past retention", idem, events);
    pm_arena_reset (d->rarena);
}
