/* batch.c - one turn of the loop: the group commit.
 *
 *   1. drain   the ready messages of the ROUTER and of each upstream, and the
 *              due timers, into `items`. A read is answered on the spot from
 *              the last committed state and never joins the batch. The batch
 *              stops at batch_max messages or at about batch_max_us of work:
 *              the cost of a byte of request (apply + commit) is measured on
 *              every large batch, so the budget follows the real work. While
 *              more is waiting (a drain stopped at its bounds: a bulk import,
 *              a consumer catching up) the next batch's bounds double, up to
 *              batch_bulk_us of work; a drain that empties every socket sets
 *              them back. Big batches amortise the commit and, above all,
 *              the pages a commit rewrites: rows scattered over a large
 *              table dirty a page each, so rows per commit is what bulk
 *              work costs. Reads are answered during a batch all the same;
 *   2. apply   every write item in ONE LMDB write transaction (s_apply): idem
 *              lookup, handler, stored reply, inbox cursor, outbox events;
 *   3. commit  once (one fsync);
 *   4. answer  send every reply in arrival order, publish the new events,
 *              arm the timer watcher for the earliest durable timer.
 * Nothing is sent before step 3 succeeded. If it fails, nothing is applied:
 * commands get UNAVAILABLE (not stored, so a retry re-runs them) and the
 * upstreams replay from their committed cursors.
 *
 * A handler that fails after writing must be undone alone: the batch is
 * redone with that command in a nested transaction. Nested transactions cost
 * a page copy each, so they are only paid for where a command actually fails
 * after writing (DESIGN.md section 4). */
#define _GNU_SOURCE
#include "daemon_int.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_BUDGET_FIRST (1u << 20) /* bytes of work before the cost is known */
#define S_BUDGET_MIN (64u << 10)
#define S_BUDGET_MAX (256u << 20)
#define S_SAMPLE_MIN (32u << 10)  /* batches smaller than this say more about fsync than bytes */
#define S_TIMER_COST 256

/* --- items and the handler API ------------------------------------------------- */

s_item_t *
pm__item_new (pm_daemon_t *d, int kind)
{
    if (d->nitems == d->cap) {
        d->cap *= 2;
        d->items = pm_xrealloc (d->items, d->cap * sizeof *d->items);
    }
    s_item_t *it = &d->items[d->nitems++];
    memset (it, 0, sizeof *it);
    it->kind = kind;
    it->arena = d->arena;
    it->route = -1;
    it->t_recv_us = d->drain_start_us;
    it->reply = pm_arena_alloc (d->arena, sizeof *it->reply);
    pm__v1__reply__init (it->reply);
    return it;
}

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
        d->emitted = pm_xrealloc (d->emitted, d->emitted_cap * sizeof *d->emitted);
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
pm_emit (pm_out_t *out, pm_txn_t *txn, Pm__V1__Event *ev)
{
    pm_daemon_t *d = out->d;
    uint64_t seq = d->next_seq;
    ev->source = (char *) d->name;
    ev->seq = seq;
    ev->id = s_event_id (d, seq);
    ev->at_ms = out->now_ms;
    ev->snapshot = false;
    if ((!ev->correlation_id || !*ev->correlation_id) && out->correlation_id)
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

/* A dead letter: a consumed event or a timer that could not be applied. */
void
pm__dead (pm_daemon_t *d, pm_txn_t *txn, const char *key, const char *estate_id, const char *unit_id,
          const char *reason, const char *what)
{
    s_bctx_t b = pm__bctx (d, d->arena);
    Pm__V1__QueueItem *item = pm_queue_item (&b.ctx, key, estate_id, unit_id, b.ctx.now_ms, reason);
    pm_queue_field (&b.ctx, item, "what", "%s", what);
    pm_key_t k;
    pm_queue_put (txn, PM_DB_DEAD, pm_key (&k, "p", key), item);
    pm_metric_inc (d->m_dead, 1);
    pm_error ("%s (%s) could not be applied: %s", key, what, reason);
}

/* --- receiving ---------------------------------------------------------------------- */

static void
s_answer (s_item_t *it, pm_daemon_t *d, int status, const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

/* An item answered at once, without touching state (bad input). */
static void
s_answer (s_item_t *it, pm_daemon_t *d, int status, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    it->kind = ITEM_ANSWERED;
    it->reply->status = (Pm__V1__Status) status;
    it->reply->message = pm_arena_vprintf (it->arena, fmt, ap);
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
s_method_list (pm_daemon_t *d, pm_arena_t *a)
{
    size_t n = 0;
    for (int i = 0; i < d->nroutes; i++)
        n += strlen (d->routes[i].method) + 2;
    char *s = pm_arena_alloc (a, n + 1);
    for (int i = 0; i < d->nroutes; i++) {
        strcat (s, d->routes[i].method);
        if (i + 1 < d->nroutes)
            strcat (s, ", ");
    }
    return s;
}

/* A request refused at the door: counted, logged (rate-limited), answered. */
static void
s_refuse (pm_daemon_t *d, s_item_t *it, const char *why)
{
    pm_metric_inc (d->m_bad, 1);
    pm_metric_inc (d->m_unknown, 1);
    pm__log_rate (d, "refused a request", "%s", why);
}

/* Classifies one request; bad ones are answered without touching state. */
static void
s_request (pm_daemon_t *d, s_item_t *it, const void *data, size_t len)
{
    it->cost = len;
    if ((int64_t) len > d->max_request_bytes) {
        s_answer (it, d, PM__V1__STATUS__INVALID,
                  "request is %zu bytes; the limit is %lld ([general] max_request_bytes): send it in smaller chunks",
                  len, (long long) d->max_request_bytes);
        s_refuse (d, it, it->reply->message);
        return;
    }
    it->req = pm__v1__request__unpack (pm_arena_pb (it->arena), len, data);
    if (!it->req) {
        s_answer (it, d, PM__V1__STATUS__INVALID, "malformed request: %zu bytes that do not decode as pm.v1.Request",
                  len);
        s_refuse (d, it, it->reply->message);
        return;
    }
    it->reply->id = it->req->id;
    int r = s_route_find (d, it->req->method);
    if (r < 0) {
        s_answer (it, d, PM__V1__STATUS__INVALID, "method: unknown method '%.64s' for %s; it answers: %s",
                  it->req->method, d->name, s_method_list (d, it->arena));
        s_refuse (d, it, pm_arena_printf (it->arena, "unknown method '%.64s'", it->req->method));
        return;
    }
    const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, it->req->method);
    if (it->req->body_case != PM__V1__REQUEST__BODY__NOT_SET && (!f || (uint32_t) it->req->body_case != f->id)) {
        const ProtobufCFieldDescriptor *got =
            protobuf_c_message_descriptor_get_field (&pm__v1__request__descriptor, it->req->body_case);
        s_answer (it, d, PM__V1__STATUS__INVALID, "body: request carries '%s' but method '%s' expects '%s'",
                  got ? got->name : "?", it->req->method, f ? f->name : "no body");
        s_refuse (d, it, it->reply->message);
        return;
    }
    if (it->req->body_case == PM__V1__REQUEST__BODY__NOT_SET && f) {
        /* An absent body is the empty body: handlers never see NULL. */
        const ProtobufCMessageDescriptor *bd = f->descriptor;
        ProtobufCMessage *empty = pm_arena_alloc (it->arena, bd->sizeof_message);
        bd->message_init (empty);
        pm_body_set (&it->req->base, it->req->method, empty);
    }
    if (strlen (it->req->id) > PM_MAX_ID) {
        s_answer (it, d, PM__V1__STATUS__INVALID, "id: %zu bytes; an idempotency key has at most %d",
                  strlen (it->req->id), PM_MAX_ID);
        s_refuse (d, it, it->reply->message);
        return;
    }
    if (!(d->routes[r].flags & PM_ROUTE_READ) && !*it->req->id) {
        s_answer (it, d, PM__V1__STATUS__INVALID,
                  "id: empty; every command needs a unique idempotency key (retries reuse it)");
        s_refuse (d, it, pm_arena_printf (it->arena, "%s without an id", it->req->method));
        return;
    }
    it->route = r;
    it->kind = (d->routes[r].flags & PM_ROUTE_READ) ? ITEM_READ : ITEM_CMD;
}

static void
s_count_status (pm_daemon_t *d, int route, int status)
{
    if (route < 0)
        return;
    int st = status < 0 || status >= PM_STATUSES ? PM__V1__STATUS__INTERNAL : status;
    s_route_t *r = &d->routes[route];
    if (!r->m_status[st]) {
        char labels[160];
        snprintf (labels, sizeof labels, "method=\"%s\",status=\"%s\"", r->method, pm_status_name (st));
        r->m_status[st] = pm_metric (d->metrics, PM_COUNTER, "pm_requests_total", labels,
                                     "Requests answered, by method and status");
    }
    pm_metric_inc (r->m_status[st], 1);
}

static void
s_pack_reply (pm_arena_t *a, s_item_t *it)
{
    size_t len = pm__v1__reply__get_packed_size (it->reply);
    it->reply_buf = pm_arena_alloc (a, len + 8);
    it->reply_len = len;
    pm__v1__reply__pack (it->reply, (uint8_t *) it->reply_buf + 8);
}

/* Answers a read from a read txn of the committed state, with memory from a. */
static void
s_read (pm_daemon_t *d, s_item_t *it, pm_arena_t *a)
{
    pm_txn_t t;
    pm_out_t out = { d, it, it->reply, it->req->method, it->req->id, pm_clock_now_ms (d->clock) };
    if (pm_txn_begin_read (&t, d->store) != PM_OK) {
        s_answer (it, d, PM__V1__STATUS__UNAVAILABLE, "storage: cannot read");
        return;
    }
    t.arena = a;
    s_bctx_t b = pm__bctx (d, a);
    d->routes[it->route].fn (&b.ctx, &t, it->req, &out);
    pm_txn_abort (&t);
}

static bool
s_send (pm_daemon_t *d, s_item_t *it)
{
    int flags = ZMQ_DONTWAIT | ZMQ_SNDMORE;
    if (zmq_send (d->router, it->identity, it->identity_len, flags) < 0
        || (it->delimiter && zmq_send (d->router, "", 0, flags) < 0)
        || zmq_send (d->router, (uint8_t *) it->reply_buf + 8, it->reply_len, ZMQ_DONTWAIT) < 0) {
        pm_metric_inc (d->m_undeliverable, 1);
        return false;
    }
    return true;
}

/* A read off the socket: answered now, its memory released now. */
static void
s_read_now (pm_daemon_t *d, s_item_t *it)
{
    s_read (d, it, d->rarena);
    s_pack_reply (d->rarena, it);
    if (s_send (d, it))
        pm_metric_observe (d->m_read_us, (double) (pm_mono_us () - it->t_recv_us));
    s_count_status (d, it->route, it->reply->status);
    pm_arena_reset (d->rarena);
}

/* Takes one multipart message off the ROUTER; false when none is ready. */
static bool
s_router_take (pm_daemon_t *d, s_frames_t *fr)
{
    int more = 1;
    fr->n = 0;
    fr->total = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init (&m);
        if (zmq_msg_recv (&m, d->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&m);
            if (fr->n == 0)
                return false;
            break; /* cannot happen: multipart messages arrive whole */
        }
        more = zmq_msg_more (&m);
        fr->total += zmq_msg_size (&m);
        if (fr->n < 4) {
            zmq_msg_init (&fr->parts[fr->n]);
            zmq_msg_move (&fr->parts[fr->n++], &m);
            zmq_msg_close (&m);
        }
        else {
            zmq_msg_close (&m);
            fr->n = 5;
        }
    }
    fr->seen_us = d->look_us;
    return true;
}

static void
s_frames_close (s_frames_t *fr)
{
    for (int i = 0; i < (fr->n > 4 ? 4 : fr->n); i++)
        zmq_msg_close (&fr->parts[i]);
}

/* The request frame of a well-shaped message, or -1. */
static int
s_body_frame (const s_frames_t *fr)
{
    if (fr->n == 3 && zmq_msg_size ((zmq_msg_t *) &fr->parts[1]) == 0)
        return 2;
    return fr->n == 2 ? 1 : -1;
}

/* Fills it (kind ITEM_ANSWERED, arena set) from a message of the ROUTER. */
static void
s_router_item (pm_daemon_t *d, s_item_t *it, s_frames_t *fr)
{
    /* what a client waited, as far as the loop can see: since the loop's look
     * at the socket before the one that found this message */
    it->t_recv_us = fr->seen_us;
    it->identity_len = zmq_msg_size (&fr->parts[0]);
    it->identity = pm_arena_alloc (it->arena, it->identity_len + 1);
    memcpy (it->identity, zmq_msg_data (&fr->parts[0]), it->identity_len);
    int body = s_body_frame (fr);
    if (body >= 0) {
        it->delimiter = body == 2;
        s_request (d, it, zmq_msg_data (&fr->parts[body]), zmq_msg_size (&fr->parts[body]));
        return;
    }
    int n = fr->n;
    it->delimiter = n >= 2 && zmq_msg_size (&fr->parts[1]) == 0;
    s_answer (it, d, PM__V1__STATUS__INVALID, "wrong message shape: %s%d frames; expected [empty delimiter][pm.v1.Request]",
              n > 4 ? "more than " : "", n > 4 ? 4 : n - 1);
    s_refuse (d, it, pm_arena_printf (it->arena, "a request of %d frames (%zu bytes)", n, fr->total));
}

/* A message of the ROUTER into the batch (a read is answered at once). */
static void
s_router_handle (pm_daemon_t *d, s_frames_t *fr)
{
    s_item_t *it = pm__item_new (d, ITEM_ANSWERED);
    s_router_item (d, it, fr);
    s_frames_close (fr);
    if (it->kind == ITEM_READ) {
        s_read_now (d, it);
        d->nitems--; /* it was the last item: reads never join the batch */
    }
    else
        d->batch_bytes += it->cost;
}

static bool
s_router_recv (pm_daemon_t *d)
{
    s_frames_t fr;
    if (!s_router_take (d, &fr))
        return false;
    s_router_handle (d, &fr);
    return true;
}

/* While a long batch is applied (between two of its items): answers the
 * reads waiting on the ROUTER from the committed state (a read txn beside the
 * open write txn), and keeps the other messages, in order, for the next batch. */
static void
s_poll_reads (pm_daemon_t *d)
{
    int64_t now = pm_mono_us ();
    if (!d->router || now - d->look_us < 2000)
        return;
    for (int k = 0; k < 256; k++) {
        s_frames_t fr;
        if (!s_router_take (d, &fr))
            break;
        int body = s_body_frame (&fr);
        bool read = false;
        if (body >= 0 && (int64_t) zmq_msg_size (&fr.parts[body]) <= d->max_request_bytes) {
            Pm__V1__Request *req = pm__v1__request__unpack (pm_arena_pb (d->rarena), zmq_msg_size (&fr.parts[body]),
                                                            zmq_msg_data (&fr.parts[body]));
            int r = req ? s_route_find (d, req->method) : -1;
            read = r >= 0 && (d->routes[r].flags & PM_ROUTE_READ);
            pm_arena_reset (d->rarena);
        }
        if (read) {
            s_item_t it;
            memset (&it, 0, sizeof it);
            it.arena = d->rarena;
            it.route = -1;
            it.reply = pm_arena_alloc (d->rarena, sizeof *it.reply);
            pm__v1__reply__init (it.reply);
            s_router_item (d, &it, &fr);
            s_frames_close (&fr);
            if (it.kind == ITEM_READ)
                s_read_now (d, &it);
            pm_arena_reset (d->rarena);
            continue;
        }

        if (d->nstash == d->stash_cap) {
            d->stash_cap = d->stash_cap ? 2 * d->stash_cap : 64;
            d->stash = pm_xrealloc (d->stash, d->stash_cap * sizeof *d->stash);
        }
        s_frames_t *kept = &d->stash[d->nstash++];
        *kept = fr;
        for (int i = 0; i < (fr.n > 4 ? 4 : fr.n); i++) { /* libzmq moves messages, never copies them */
            zmq_msg_init (&kept->parts[i]);
            zmq_msg_move (&kept->parts[i], &fr.parts[i]);
            zmq_msg_close (&fr.parts[i]);
        }
    }
    d->look_us = now;
}

void
pm__stash_free (pm_daemon_t *d)
{
    for (size_t i = 0; i < d->nstash; i++)
        s_frames_close (&d->stash[i]);
    free (d->stash);
    d->stash = NULL;
    d->nstash = d->stash_cap = 0;
}

/* The messages kept while the last batch was applied, first. */
static void
s_unstash (pm_daemon_t *d)
{
    for (size_t i = 0; i < d->nstash; i++)
        s_router_handle (d, &d->stash[i]);
    d->nstash = 0;
}

/* The bytes of work this batch may take in. */
size_t
pm__batch_budget (const pm_daemon_t *d)
{
    int bulk = d->bulk > 1 ? d->bulk : 1;
    if (d->ns_per_byte <= 0)
        return S_BUDGET_FIRST * (size_t) bulk;
    double b = (double) d->batch_max_us * bulk * 1000.0 / d->ns_per_byte;
    return b < S_BUDGET_MIN ? S_BUDGET_MIN : b > S_BUDGET_MAX ? S_BUDGET_MAX : (size_t) b;
}

static bool
s_full (pm_daemon_t *d, size_t budget)
{
    return (int64_t) d->nitems >= d->batch_max || d->batch_bytes >= budget;
}

/* The next batch's bounds: doubled while a drain stops at its bounds with
 * more to read, up to batch_bulk_us; back to batch_max_us when it drained
 * everything. */
static void
s_bulk_next (pm_daemon_t *d, bool more)
{
    int most = (int) (d->batch_bulk_us / d->batch_max_us);
    if (most < 1)
        most = 1;
    int next = !more ? 1 : d->bulk < 1 ? 2 : d->bulk * 2;
    d->bulk = next > most ? most : next;
}

/* Collects durable timers that are due. */
static void
s_timers_due (pm_daemon_t *d, size_t budget)
{
    if (!d->spec->timers && !d->nups)
        return;
    int64_t now = pm_clock_now_ms (d->clock);
    pm_txn_t t;
    if (pm_txn_begin_read (&t, d->store) != PM_OK)
        return;
    pm_scan_t s;
    for (pm_timer_scan (&s, &t, now); s.ok && !s_full (d, budget); pm_scan_next (&s)) {
        pm_timer_t tm;
        if (pm_timer_read (&s, &tm) != PM_OK)
            continue;
        s_item_t *it = pm__item_new (d, ITEM_TIMER);
        it->timer = tm;
        it->timer.kind = pm_arena_strdup (d->arena, tm.kind);
        it->timer.key = pm_arena_strdup (d->arena, tm.key);
        void *payload = pm_arena_alloc (d->arena, tm.plen + 1);
        memcpy (payload, tm.payload, tm.plen);
        it->timer.payload = payload;
        it->cost = S_TIMER_COST + tm.plen;
        d->batch_bytes += it->cost;
        for (int i = 0; d->spec->timers && d->spec->timers[i].kind; i++)
            if (strcmp (d->spec->timers[i].kind, tm.kind) == 0)
                it->tfn = d->spec->timers[i].fn;
    }
    pm_txn_abort (&t);
}

/* The in-process writes queued since the last batch join this one, first. */
static void
s_writes_take (pm_daemon_t *d)
{
    for (size_t i = 0; i < d->nwrites; i++) {
        s_item_t *it = pm__item_new (d, ITEM_WRITE);
        it->write = d->writes[i];
        it->cost = S_TIMER_COST;
        d->batch_bytes += it->cost;
    }
    d->nwrites = 0;
}

void
pm_daemon_write (pm_daemon_t *d, pm_write_fn fn, pm_written_fn done, void *arg)
{
    if (d->nwrites == d->writes_cap) {
        d->writes_cap = d->writes_cap ? 2 * d->writes_cap : 16;
        d->writes = pm_xrealloc (d->writes, d->writes_cap * sizeof *d->writes);
    }
    d->writes[d->nwrites++] = (s_write_t) { fn, done, arg };
    if (d->loop && !d->in_pump) /* inside a pump, its next turn takes them */
        ev_feed_event (d->loop, &d->wake, EV_IDLE);
}

size_t
pm_daemon_writes_queued (pm_daemon_t *d)
{
    return d->nwrites;
}

static void
s_drain (pm_daemon_t *d)
{
    int64_t start = pm_mono_us ();
    size_t budget = pm__batch_budget (d);
    int64_t drain_us = d->batch_max_us * (d->bulk > 1 ? d->bulk : 1) / 4;
    d->drain_start_us = start;
    d->batch_bytes = 0;
    d->look_us = start; /* what this drain reads waited since (at least) now */
    s_unstash (d);
    /* A socket that came back empty is not asked again in this drain: with
     * nothing to read, libzmq checks its command mailbox with a poll()
     * syscall, and asking every idle socket on every message made that the
     * main cost of a consumer. The watchers call us again when more arrives. */
    bool router_dry = !d->router;
    for (int i = 0; i < d->nups; i++)
        d->ups[i].sub_dry = d->ups[i].dealer_dry = false;
    s_writes_take (d);
    for (;;) {
        int progressed = 0;
        if (!router_dry) {
            if (s_router_recv (d))
                progressed++;
            else
                router_dry = true;
        }
        for (int i = 0; i < d->nups; i++)
            pm__upstream_drain (&d->ups[i], &progressed);
        if (!progressed) {
            s_bulk_next (d, false);
            break;
        }
        if (s_full (d, budget) || pm_mono_us () - start >= drain_us) {
            s_bulk_next (d, true);
            break;
        }
    }
    d->look_us = pm_mono_us ();
    s_timers_due (d, budget);
}

/* --- applying: one write transaction per batch --------------------------------------- */

static bool
s_storable (int status)
{
    return status == PM__V1__STATUS__OK || status == PM__V1__STATUS__INVALID || status == PM__V1__STATUS__NOT_FOUND
           || status == PM__V1__STATUS__CONFLICT;
}

static const char *
s_payload_name (int payload)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field (&pm__v1__event__descriptor, (unsigned) payload);
    return f ? f->name : payload == 0 ? "none" : "?";
}

static const char *
s_item_what (const s_item_t *it)
{
    return it->kind == ITEM_CMD     ? it->req->method
           : it->kind == ITEM_EVENT ? it->ev->type
           : it->kind == ITEM_WRITE ? "in-process write"
                                    : it->timer.kind;
}

/* Runs one handler in txn (or a nested txn of it). Returns the status, or a
 * negative pm_err when the txn itself failed (then the batch must be redone). */
static int
s_run (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn, s_item_t *it, bool *redo)
{
    pm_out_t out = { d, it, it->reply, NULL, NULL, ctx->now_ms };
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
        if (!it->eroute)
            status = PM__V1__STATUS__OK;
        else if (it->eroute->payload != PM_ANY_PAYLOAD && (int) it->ev->payload_case != it->eroute->payload)
            status = pm_reply (&out, PM__V1__STATUS__INVALID, "%s carries payload '%s'; its route expects '%s'",
                               it->ev->type, s_payload_name (it->ev->payload_case), s_payload_name (it->eroute->payload));
        else
            status = it->eroute->fn (ctx, use, it->ev, &out);
        break;
    case ITEM_WRITE:
        status = it->write.fn (ctx, use, it->write.arg, &out);
        break;
    default: /* ITEM_TIMER */
        out.correlation_id = it->timer.key;
        status = it->tfn ? it->tfn (ctx, use, it->timer.key, it->timer.payload, it->timer.plen, &out)
                         : pm_reply (&out, PM__V1__STATUS__INTERNAL, "no handler for timer kind '%s'", it->timer.kind);
        break;
    }
    if (use->err == PM_EINVAL) {
        /* The store refused this item's own data (an empty or over-long key):
         * it fails alone, like a handler that said no. */
        if (!it->nested) {
            it->nested = true;
            *redo = true;
            return PM__V1__STATUS__INVALID;
        }
        pm_txn_abort (&child);
        d->next_seq = seq0;
        d->nemitted = emitted0;
        pm_warn ("a %s was refused by the store: a key was empty or longer than 511 bytes", s_item_what (it));
        return pm_reply (&out, PM__V1__STATUS__INVALID, "the store refused a key of this %s: empty, or longer than 511 bytes",
                         it->kind == ITEM_CMD     ? "request"
                         : it->kind == ITEM_EVENT ? "event"
                         : it->kind == ITEM_WRITE ? "in-process write"
                                                  : "timer");
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

static const char *
s_why (const s_item_t *it)
{
    return it->reply->message && *it->reply->message ? it->reply->message : "handler failed";
}

static void
s_dead_event (pm_daemon_t *d, pm_txn_t *txn, s_item_t *it)
{
    /* keyed by what the runtime knows, not by the event's own (unchecked) id */
    char *key = it->snapshot ? pm_arena_printf (d->arena, "%s:snapshot:%s", it->up->name, it->ev->unit_id)
                             : pm_arena_printf (d->arena, "%s:%llu", it->up->name, (unsigned long long) it->ev->seq);
    pm__dead (d, txn, key, it->ev->estate_id, it->ev->unit_id,
              pm_arena_printf (d->arena, "%s: %s", pm_status_name (it->reply->status), s_why (it)), it->ev->type);
}

/* One write item in txn. Returns 0, a negative pm_err (the batch failed), or
 * 1 when the batch must be redone (an item needs a nested txn). */
static int s_apply_item_in (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn, s_item_t *it);

/* One item; the scans its handler left open are closed when it returns
 * (handlers share the batch's transaction, and a cursor is per item). */
static int
s_apply_item (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn, s_item_t *it)
{
    int open = txn->ncursors;
    int rc = s_apply_item_in (d, ctx, txn, it);
    pm_txn_close_cursors (txn, open);
    return rc;
}

static int
s_apply_item_in (pm_daemon_t *d, pm_ctx_t *ctx, pm_txn_t *txn, s_item_t *it)
{
    bool redo = false;
    int status;
    switch (it->kind) {
    case ITEM_CMD: {
        MDB_val v;
        int rc = pm_txn_get (txn, PM_DB_IDEM, it->req->id, strlen (it->req->id), &v);
        if (rc == PM_OK && v.mv_size >= 8) { /* a retry: answer what we answered */
            it->reply_len = v.mv_size - 8;
            it->reply_buf = pm_arena_alloc (d->arena, v.mv_size);
            memcpy (it->reply_buf, v.mv_data, v.mv_size);
            Pm__V1__Reply *stored =
                pm__v1__reply__unpack (pm_arena_pb (d->arena), it->reply_len, (uint8_t *) it->reply_buf + 8);
            if (stored)
                it->reply = stored;
            return 0;
        }
        pm__v1__reply__init (it->reply);
        it->reply->id = it->req->id;
        it->reply_buf = NULL;
        status = s_run (d, ctx, txn, it, &redo);
        if (status < 0 || redo)
            return status < 0 ? status : 1;
        s_pack_reply (d->arena, it);
        if (s_storable (status)) {
            pm_u64_be ((uint64_t) ctx->now_ms, it->reply_buf);
            pm_txn_put (txn, PM_DB_IDEM, it->req->id, strlen (it->req->id), it->reply_buf, it->reply_len + 8);
        }
        return 0;
    }
    case ITEM_EVENT: {
        pm__v1__reply__init (it->reply);
        status = s_run (d, ctx, txn, it, &redo);
        if (status < 0 || redo)
            return status < 0 ? status : 1;
        if (status != PM__V1__STATUS__OK)
            s_dead_event (d, txn, it);
        if (!it->snapshot) { /* the cursor itself is written once per batch (s_apply_once) */
            it->up->batch_last = it->ev->seq;
            it->up->batch_n++;
        }
        return 0;
    }
    case ITEM_TIMER: {
        int64_t due;
        /* moved or cancelled by an earlier item of this batch: not due any more */
        if (pm_timer_due (txn, it->timer.kind, it->timer.key, &due) != PM_OK || due != it->timer.due_ms)
            return txn->err;
        pm__v1__reply__init (it->reply);
        pm_timer_remove (txn, it->timer.kind, it->timer.key, due);
        status = s_run (d, ctx, txn, it, &redo);
        if (status < 0 || redo)
            return status < 0 ? status : 1;
        if (status != PM__V1__STATUS__OK)
            pm__dead (d, txn, pm_arena_printf (d->arena, "timer:%s:%s", it->timer.kind, it->timer.key), "", "",
                      pm_arena_printf (d->arena, "%s: %s", pm_status_name (status), s_why (it)), it->timer.kind);
        return 0;
    }
    case ITEM_WRITE:
        pm__v1__reply__init (it->reply);
        status = s_run (d, ctx, txn, it, &redo);
        if (status < 0 || redo)
            return status < 0 ? status : 1;
        if (status != PM__V1__STATUS__OK)
            pm_warn ("an in-process write was refused (%s): %s", pm_status_name (status), s_why (it));
        return 0;
    case ITEM_SNAP_BEGIN: {
        for (int i = 0; it->up->spec->tables && it->up->spec->tables[i] >= 0; i++)
            pm_txn_clear (txn, it->up->spec->tables[i]);
        char *key = pm_arena_printf (d->arena, "snapshot:%s", it->up->name);
        pm_meta_put_u64 (txn, key, 1);
        return 0;
    }
    case ITEM_SNAP_END: {
        unsigned char seq[8];
        pm_u64_be (it->snap_seq, seq);
        pm_txn_put (txn, PM_DB_INBOX, it->up->name, strlen (it->up->name), seq, 8);
        it->up->batch_last = it->snap_seq; /* should the end-of-batch write happen too, it agrees */
        char *key = pm_arena_printf (d->arena, "snapshot:%s", it->up->name);
        pm_txn_del (txn, PM_DB_META, key, strlen (key));
        return 0;
    }
    default:
        return 0;
    }
}

/* One attempt at the batch. Returns PM_OK, PM_EMAPFULL/other error (aborted),
 * or 1 when it must be redone (an item needs a nested txn). */
static int
s_apply_once (pm_daemon_t *d, pm_ctx_t *ctx)
{
    pm_txn_t txn;
    d->next_seq = d->committed_seq + 1;
    d->nemitted = 0;
    for (int i = 0; i < d->nups; i++)
        d->ups[i].batch_n = 0;
    if (pm_txn_begin (&txn, d->store, NULL) != PM_OK)
        return txn.err;
    txn.arena = d->arena;
    for (size_t i = 0; i < d->nitems; i++) {
        int rc = s_apply_item (d, ctx, &txn, &d->items[i]);
        if (rc != 0) {
            pm_txn_abort (&txn);
            return rc;
        }
        s_poll_reads (d);
    }
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        if (u->batch_n) { /* the inbox cursor and the durable count, with the events' effects */
            unsigned char seq[8];
            pm_u64_be (u->batch_last, seq);
            pm_txn_put (&txn, PM_DB_INBOX, u->name, strlen (u->name), seq, 8);
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
 * for items that need a nested txn. Returns PM_OK or the final error. */
static int
s_apply (pm_daemon_t *d)
{
    s_bctx_t b = pm__bctx (d, d->arena);
    int grows = 0;
    d->clock_pending = -1;
    d->rebuild_pending = -1;
    for (;;) {
        int rc = s_apply_once (d, &b.ctx);
        if (rc == PM_OK)
            return PM_OK;
        if (rc == 1)
            continue;
        d->clock_pending = -1;
        d->rebuild_pending = -1;
        if (rc == PM_EMAPFULL && grows++ < 16) {
            pm_metric_inc (d->m_mapgrow, 1);
            pm__served_expire (d, true); /* no read txn may be open while the map grows */
            if (pm_store_grow (d->store) == PM_OK)
                continue;
        }
        return rc;
    }
}

/* Applies and commits the batch's writes and updates the runtime's view of
 * what is durable. Sends nothing. */
static void
s_commit_batch (pm_daemon_t *d)
{
    bool writes = false;
    for (size_t i = 0; i < d->nitems && !writes; i++)
        writes = d->items[i].kind != ITEM_ANSWERED && d->items[i].kind != ITEM_READ;
    if (!writes)
        return;
    int64_t t0 = pm_mono_us ();
    int rc = s_apply (d);
    int64_t took = pm_mono_us () - t0;
    pm_metric_observe (d->m_commit_us, (double) took);
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
                s_answer (it, d, PM__V1__STATUS__UNAVAILABLE, "storage: %s; nothing was applied, retry with the same id",
                          pm_strerror (rc));
            }
        }
        pm__upstream_failed (d);
        d->next_seq = d->committed_seq + 1;
        d->nemitted = 0;
        return;
    }
    d->committed_seq = d->next_seq - 1;
    if (d->batch_bytes >= S_SAMPLE_MIN) { /* the cost of a byte of work, smoothed */
        double ns = (double) took * 1000.0 / (double) d->batch_bytes;
        d->ns_per_byte = d->ns_per_byte > 0 ? 0.7 * d->ns_per_byte + 0.3 * ns : ns;
    }
    for (size_t i = 0; i < d->nitems; i++)
        if (d->items[i].kind == ITEM_TIMER) {
            pm_metric_inc (d->m_timers_fired, 1);
            int64_t late = pm_clock_now_ms (d->clock) - d->items[i].timer.due_ms;
            pm_metric_observe (d->m_timer_late_ms, (double) (late > 0 ? late : 0));
        }
    pm__upstream_committed (d);
    if (d->clock_pending >= 0) {
        pm_clock_set_ms (d->clock, d->clock_pending);
        d->last_prune_ms = INT64_MIN / 2; /* time jumped: retention is due at the next tick */
    }
    if (d->rebuild_pending >= 0)
        pm__upstream_snapshot (&d->ups[d->rebuild_pending], "rebuild asked for (ops.rebuild)");
    pm_metric_observe (d->m_batch, (double) d->nitems);
    pm_metric_observe (d->m_batch_bytes, (double) d->batch_bytes);
}

/* --- after the commit --------------------------------------------------------------- */

static void
s_publish (pm_daemon_t *d, const char *type, const void *buf, size_t len)
{
    if (!d->pub)
        return;
    if (zmq_send (d->pub, type, strlen (type), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (d->pub, buf, len, ZMQ_DONTWAIT) < 0)
        pm_debug ("publish of %s dropped: %s (subscribers repair it by replay)", type, zmq_strerror (errno));
}

/* Arms the watcher for the earliest durable timer: at its due time on the
 * wall clock; at once when it is already due (a manual clock moved). */
void
pm__timer_arm (pm_daemon_t *d)
{
    pm_txn_t t;
    if (!d->loop || pm_txn_begin_read (&t, d->store) != PM_OK)
        return;
    int64_t due = pm_timer_next_due (&t);
    pm_txn_abort (&t);
    ev_timer_stop (d->loop, &d->due);
    if (due == INT64_MAX)
        return;
    int64_t wait = due - pm_clock_now_ms (d->clock);
    if (wait > 0 && pm_clock_is_manual (d->clock))
        return; /* manual time moves only by ops.clock, which pumps after the move */
    ev_timer_set (&d->due, wait > 0 ? (double) wait / 1000.0 : 0.0, 0.0);
    ev_timer_start (d->loop, &d->due);
}

/* Tells the in-process writes of the batch how it ended (their callbacks may
 * queue more). Returns whether the batch changed state (it had writes and
 * its commit succeeded), for the spec's committed hook. */
static bool
s_after_commit (pm_daemon_t *d)
{
    bool writes = false;
    for (size_t i = 0; i < d->nitems; i++) {
        s_item_t *it = &d->items[i];
        writes |= it->kind != ITEM_ANSWERED && it->kind != ITEM_READ;
        if (it->kind == ITEM_WRITE && it->write.done)
            it->write.done (d->commit_failed ? PM__V1__STATUS__UNAVAILABLE : (int) it->reply->status, it->write.arg);
    }
    return writes && !d->commit_failed;
}

static void
s_flush (pm_daemon_t *d)
{
    s_commit_batch (d);
    int64_t now = pm_mono_us ();
    for (size_t i = 0; i < d->nitems; i++) {
        s_item_t *it = &d->items[i];
        if (!it->identity)
            continue;
        if (!it->reply_buf)
            s_pack_reply (d->arena, it);
        if (s_send (d, it))
            pm_metric_observe (d->m_req_us, (double) (now - it->t_recv_us));
        s_count_status (d, it->route, it->reply->status);
    }
    for (size_t i = 0; i < d->nemitted; i++)
        s_publish (d, d->emitted[i].type, d->emitted[i].buf, d->emitted[i].len);
    pm_metric_inc (d->m_events, (double) d->nemitted);
    d->nemitted = 0;
    bool wrote = s_after_commit (d);
    d->nitems = 0;
    pm_arena_reset (d->arena);
    pm__timer_arm (d);
    if (wrote && d->spec->committed)
        d->spec->committed (d->app);
}

void
pm__pump (pm_daemon_t *d)
{
    if (d->in_pump)
        return;
    d->in_pump = true;
    int64_t start = pm_mono_us ();
    for (;;) {
        int64_t turn = pm_mono_us ();
        s_drain (d);
        if (d->nitems == 0)
            break;
        s_flush (d);
        pm_metric_observe (d->m_turn_us, (double) (pm_mono_us () - turn));
        if (d->commit_failed)
            break; /* disk full or I/O error: retry at the next tick, do not spin */
        if (pm_mono_us () - start > d->batch_max_us)
            break; /* let timers and signals run; the watchers call us again */
    }
    d->in_pump = false;
    if (d->nwrites && d->loop && !d->commit_failed) /* queued during the last turn: another turn for them */
        ev_feed_event (d->loop, &d->wake, EV_IDLE);
}

/* --- for tests ------------------------------------------------------------------------ */

int
pm_daemon_apply (pm_daemon_t *d, pm_batch_item_t *items, size_t n)
{
    pm_arena_reset (d->arena); /* the previous call's replies end here */
    d->nitems = 0;
    d->batch_bytes = 0;
    d->drain_start_us = pm_mono_us ();
    for (size_t i = 0; i < n; i++) {
        size_t before = d->nitems;
        if (items[i].req) {
            s_item_t *it = pm__item_new (d, ITEM_ANSWERED);
            size_t len = pm__v1__request__get_packed_size (items[i].req);
            void *buf = pm_arena_alloc (d->arena, len + 1);
            pm__v1__request__pack (items[i].req, buf);
            s_request (d, it, buf, len);
            if (it->kind == ITEM_READ) /* from the state committed before this batch */
                s_read (d, it, d->arena);
            continue;
        }
        s_upstream_t *u = pm__upstream_find (d, items[i].ev->source);
        if (u)
            pm__upstream_event (u, items[i].ev, true);
        if (d->nitems == before)
            pm__item_new (d, ITEM_ANSWERED)->reply->message = "not applied: duplicate, out of order or unknown source";
    }
    s_commit_batch (d);
    int rc = PM_OK;
    for (size_t i = 0; i < n; i++) {
        items[i].reply = d->items[i].reply;
        if (items[i].reply->status == PM__V1__STATUS__UNAVAILABLE)
            rc = PM_EIO;
    }
    bool wrote = s_after_commit (d);
    d->nitems = 0;
    if (wrote && d->spec->committed)
        d->spec->committed (d->app);
    return rc;
}

size_t
pm_daemon_fire_timers (pm_daemon_t *d)
{
    pm_arena_reset (d->arena);
    d->nitems = 0;
    d->batch_bytes = 0;
    s_timers_due (d, SIZE_MAX);
    size_t n = d->nitems;
    s_commit_batch (d);
    bool wrote = s_after_commit (d);
    d->nitems = 0;
    if (wrote && d->spec->committed)
        d->spec->committed (d->app);
    return n;
}

size_t
pm_daemon_emitted (pm_daemon_t *d, Pm__V1__Event ***events)
{
    Pm__V1__Event **evs = pm_arena_alloc (d->arena, (d->nemitted + 1) * sizeof *evs);
    size_t n = 0;
    for (size_t i = 0; i < d->nemitted; i++) {
        Pm__V1__Event *ev = pm__v1__event__unpack (pm_arena_pb (d->arena), d->emitted[i].len, d->emitted[i].buf);
        if (ev)
            evs[n++] = ev;
    }
    *events = evs;
    return n;
}
