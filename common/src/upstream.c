/* upstream.c - consuming another daemon's events (the zguide's Clone pattern).
 *
 * Following: at start, on a seq gap, or when a heartbeat shows a newer seq than
 * we hold, ask the upstream's ROUTER for `events.replay` from our cursor + 1,
 * then follow the live PUB. One request to the upstream is in flight at a
 * time; it is resent after replay_timeout_ms without an answer.
 *
 * Loading a snapshot: when the replay answers that the events we need were
 * pruned, when ops.rebuild asks for it, or when a load was interrupted (the
 * meta key "snapshot:<source>" is durable), ask for `events.snapshot` page by
 * page. The first page's batch empties the tables built only from this source
 * (ITEM_SNAP_BEGIN); each page's events go through the ordinary event routes
 * (Event.snapshot set, no cursor move); the last page's batch moves the cursor
 * to the snapshot's seq (ITEM_SNAP_END), and following resumes from there.
 * The next page is asked for only after the previous one committed, so memory
 * stays bounded and a crash resumes the load from its start.
 *
 * An upstream that keeps no snapshot leaves us stranded: said once in the
 * log, shown in ops.queues `upstreams`, retried every 30 s without more noise. */
#define _GNU_SOURCE
#include "daemon_int.h"
#include "pm/curve.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static void s_upstream_cb (pm_zwatch_t *w, void *sock, void *arg);

s_upstream_t *
pm__upstream_find (pm_daemon_t *d, const char *source)
{
    for (int i = 0; i < d->nups; i++)
        if (strcmp (d->ups[i].name, source) == 0)
            return &d->ups[i];
    return NULL;
}

static char *
s_snapshot_key (s_upstream_t *u, char *buf, size_t size)
{
    snprintf (buf, size, "snapshot:%s", u->name);
    return buf;
}

int
pm__upstream_add (pm_daemon_t *d, const pm_upstream_t *spec)
{
    const char *source = spec->source;
    const char *events = pm_config_get (d->cfg, source, "events", NULL);
    const char *command = pm_config_get (d->cfg, source, "command", NULL);
    if (!events || !command) {
        pm_error ("%s: [%s] needs 'events' and 'command' endpoints to subscribe to %s", pm_config_name (d->cfg), source,
                  source);
        return PM_ECONFIG;
    }
    if (d->nups == PM_MAX_UPSTREAMS) {
        pm_error ("%s: more than %d upstreams", d->name, PM_MAX_UPSTREAMS);
        return PM_EINVAL;
    }
    s_upstream_t *u = &d->ups[d->nups++];
    memset (u, 0, sizeof *u);
    u->d = d;
    u->spec = spec;
    u->name = spec->source;
    u->snap_token = pm_xstrdup ("");
    pm_txn_t t;
    if (pm_txn_begin_read (&t, d->store) != PM_OK)
        return PM_ESTORE;
    MDB_val v;
    if (pm_txn_get (&t, PM_DB_INBOX, source, strlen (source), &v) == PM_OK && v.mv_size == 8)
        u->applied = pm_be_u64 (v.mv_data);
    char key[96];
    snprintf (key, sizeof key, "applied_n:%s", source);
    u->applied_n = pm_meta_get_u64 (&t, key);
    bool loading = pm_meta_get_u64 (&t, s_snapshot_key (u, key, sizeof key)) != 0;
    pm_txn_abort (&t);
    u->queued = u->applied;
    if (loading) {
        u->state = UP_SNAPSHOT;
        u->why = pm_xstrdup ("a snapshot load was interrupted; it starts again");
    }
    char labels[96];
    snprintf (labels, sizeof labels, "source=\"%s\"", source);
    u->m_gaps = pm_metric (d->metrics, PM_COUNTER, "pm_consumer_gaps_total", labels,
                           "Seq gaps seen on the live feed (repaired by replay)");
    u->m_applied = pm_metric (d->metrics, PM_COUNTER, "pm_consumer_applied_total", labels,
                              "Events consumed from this source, applied or dead-lettered (durable count)");
    u->m_lag = pm_metric (d->metrics, PM_GAUGE, "pm_consumer_lag", labels, "Upstream's latest seq minus our applied seq");
    u->m_snapshots = pm_metric (d->metrics, PM_COUNTER, "pm_consumer_snapshots_total", labels,
                                "Snapshots of this source loaded (rebuilds and recoveries from pruned events)");
    pm_metric_set (u->m_applied, (double) u->applied_n);

    u->sub = pm__socket (d, ZMQ_SUB);
    /* Live events not read yet wait here, in this process's memory: at most
     * PM_LIVE_HWM (about 10 MiB of events). A consumer further behind (a bulk
     * import) loses the rest of the live feed and reads it from the
     * upstream's log by replay, as after any gap: a queue of 100,000 was
     * 120 MiB of a consumer's private memory at a million units. */
    int sub_hwm = PM_LIVE_HWM;
    zmq_setsockopt (u->sub, ZMQ_RCVHWM, &sub_hwm, sizeof sub_hwm);
    zmq_setsockopt (u->sub, ZMQ_SUBSCRIBE, "", 0);
    /* Not ZMQ_IMMEDIATE: a request made before the upstream is up waits in the
     * pipe and goes out when it connects. */
    u->dealer = pm__socket (d, ZMQ_DEALER);
    const char *keys = pm_curve_secret_file (d->cfg, d->name); /* our own pair, as a client of theirs */
    if (pm_curve_client (d->cfg, source, keys, u->sub) != PM_OK || pm_curve_client (d->cfg, source, keys, u->dealer) != PM_OK)
        return PM_ECONFIG;
    if (zmq_connect (u->sub, events) != 0 || zmq_connect (u->dealer, command) != 0) {
        pm_error ("cannot connect to %s at %s / %s: %s", source, events, command, zmq_strerror (errno));
        return PM_EIO;
    }
    u->wsub = pm_zwatch_new (d->loop, u->sub, s_upstream_cb, u);
    u->wdealer = pm_zwatch_new (d->loop, u->dealer, s_upstream_cb, u);
    pm_info ("%s: consuming %s from seq %llu%s", d->name, source, (unsigned long long) u->applied + 1,
             loading ? " after loading its snapshot" : "");
    return PM_OK;
}

void
pm__upstream_free (s_upstream_t *u)
{
    pm_zwatch_destroy (&u->wsub);
    pm_zwatch_destroy (&u->wdealer);
    if (u->sub)
        zmq_close (u->sub);
    if (u->dealer)
        zmq_close (u->dealer);
    free (u->snap_token);
    free (u->snap_after);
    free (u->why);
    u->sub = u->dealer = NULL;
    u->snap_token = NULL;
    u->snap_after = NULL;
    u->why = NULL;
}

/* --- requests to the upstream ------------------------------------------------------ */

static void
s_send (s_upstream_t *u, const char *what, const char *method, ProtobufCMessage *body)
{
    pm_daemon_t *d = u->d;
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    snprintf (u->pending_id, sizeof u->pending_id, "%s:%s:%s:%u", what, d->name, u->name, ++u->request_n);
    req.id = u->pending_id;
    req.method = (char *) method;
    req.actor = (char *) d->name;
    pm_body_set (&req.base, method, body);
    size_t len = pm__v1__request__get_packed_size (&req);
    void *buf = pm_xmalloc (len ? len : 1);
    pm__v1__request__pack (&req, buf);
    u->pending = true;
    u->pending_sent_ms = pm_mono_ms ();
    if (zmq_send (u->dealer, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 || zmq_send (u->dealer, buf, len, ZMQ_DONTWAIT) < 0)
        pm_debug ("%s request to %s not sent (%s); will retry", what, u->name, zmq_strerror (errno));
    free (buf);
}

static void
s_replay_request (s_upstream_t *u)
{
    Pm__V1__EventsReplayRequest body = PM__V1__EVENTS_REPLAY_REQUEST__INIT;
    body.from_seq = u->queued + 1;
    body.max = PM_REPLAY_MAX;
    body.raw = true;
    s_send (u, "replay", "events.replay", &body.base);
}

static void
s_snapshot_request (s_upstream_t *u)
{
    Pm__V1__EventsSnapshotRequest body = PM__V1__EVENTS_SNAPSHOT_REQUEST__INIT;
    body.token = u->snap_token;
    body.after.data = u->snap_after;
    body.after.len = u->snap_after_len;
    body.max = PM_SNAPSHOT_MAX;
    s_send (u, "snapshot", "events.snapshot", &body.base);
}

/* Asks for whatever this upstream needs next. */
static void
s_request (s_upstream_t *u)
{
    if (u->state == UP_FOLLOW)
        s_replay_request (u);
    else if (u->state == UP_SNAPSHOT && !u->snap_page_queued)
        s_snapshot_request (u);
}

void
pm__upstream_start (s_upstream_t *u)
{
    pm_zwatch_start (u->wsub);
    pm_zwatch_start (u->wdealer);
    u->snap_since_ms = pm_clock_now_ms (u->d->clock);
    s_request (u);
}

static void
s_set_why (s_upstream_t *u, const char *why)
{
    free (u->why);
    u->why = why ? pm_xstrdup (why) : NULL;
}

void
pm__upstream_snapshot (s_upstream_t *u, const char *why)
{
    pm_daemon_t *d = u->d;
    if (u->state != UP_SNAPSHOT || !u->snap_since_ms)
        pm_warn ("%s: loading %s's snapshot: %s", d->name, u->name, why);
    u->state = UP_SNAPSHOT;
    s_set_why (u, why);
    free (u->snap_token);
    u->snap_token = pm_xstrdup ("");
    free (u->snap_after);
    u->snap_after = NULL;
    u->snap_after_len = 0;
    u->snap_page_queued = false;
    u->snap_done = false;
    u->snap_since_ms = pm_clock_now_ms (d->clock);
    u->queued = u->applied;
    s_snapshot_request (u);
}

static void
s_stranded (s_upstream_t *u, const char *why)
{
    pm_daemon_t *d = u->d;
    if (u->state != UP_STRANDED || !u->why || strcmp (u->why, why) != 0)
        pm_error ("%s: stranded behind %s: %s; retrying every %d s (see ops.queues upstreams)", d->name, u->name, why,
                  PM_STRANDED_RETRY_MS / 1000);
    if (u->state != UP_STRANDED)
        u->snap_since_ms = pm_clock_now_ms (d->clock);
    u->state = UP_STRANDED;
    s_set_why (u, why);
    u->pending = false;
    u->stranded_retry_ms = pm_mono_ms () + PM_STRANDED_RETRY_MS;
}

/* --- events into the batch ------------------------------------------------------------ */

static const pm_event_route_t *
s_route_n (s_upstream_t *u, const char *type, size_t len)
{
    for (int i = 0; u->spec->routes && u->spec->routes[i].type; i++) {
        const char *t = u->spec->routes[i].type;
        size_t n = strlen (t);
        if ((n && t[n - 1] == '.') ? len >= n && memcmp (type, t, n) == 0 : len == n && memcmp (type, t, n) == 0)
            return &u->spec->routes[i];
    }
    return NULL;
}

static const pm_event_route_t *
s_route (s_upstream_t *u, const char *type)
{
    return s_route_n (u, type, strlen (type));
}

/* A packed event into the batch: decoded when a route handles its type;
 * otherwise only its seq and type are read (it moves the cursor and nothing
 * else). type/type_len: the type when the caller knows it (the live feed's
 * first frame), else NULL. Returns false for a malformed one. */
static bool
s_packed_event (s_upstream_t *u, const void *buf, size_t len, const char *type, size_t type_len, bool from_replay)
{
    pm_daemon_t *d = u->d;
    uint64_t seq = 0;
    const char *ptype = NULL;
    size_t plen = 0;
    if (!type) {
        if (pm_event_peek (buf, len, &seq, &ptype, &plen) != PM_OK)
            return false;
        type = ptype, type_len = plen;
    }
    Pm__V1__Event *ev;
    if (s_route_n (u, type, type_len)) {
        ev = pm__v1__event__unpack (pm_arena_pb (d->arena), len, buf);
        if (!ev)
            return false;
    }
    else {
        if (type != ptype && pm_event_peek (buf, len, &seq, &ptype, &plen) != PM_OK)
            return false;
        ev = pm_arena_alloc (d->arena, sizeof *ev);
        pm__v1__event__init (ev);
        ev->source = (char *) u->name;
        ev->seq = seq;
        ev->type = pm_arena_alloc (d->arena, type_len + 1);
        memcpy (ev->type, type, type_len);
    }
    size_t before = d->nitems;
    pm__upstream_event (u, ev, from_replay);
    if (d->nitems > before)
        d->items[before].cost = len;
    return true;
}

void
pm__upstream_event (s_upstream_t *u, Pm__V1__Event *ev, bool from_replay)
{
    pm_daemon_t *d = u->d;
    if (ev->seq > u->known_last)
        u->known_last = ev->seq;
    if (u->state != UP_FOLLOW || ev->seq <= u->queued)
        return; /* loading a snapshot (it ends with a replay), or already applied or queued */
    if (ev->seq != u->queued + 1 || (u->pending && !from_replay)) {
        if (!u->pending) {
            pm_metric_inc (u->m_gaps, 1);
            pm_debug ("gap from %s: have %llu, got %llu; replaying", u->name, (unsigned long long) u->queued,
                      (unsigned long long) ev->seq);
            s_replay_request (u);
        }
        return;
    }
    s_item_t *it = pm__item_new (d, ITEM_EVENT);
    it->ev = ev;
    it->up = u;
    it->eroute = s_route (u, ev->type);
    u->queued = ev->seq;
}

static void
s_replay_reply (s_upstream_t *u, Pm__V1__Reply *r, size_t len)
{
    pm_daemon_t *d = u->d;
    if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_EVENTS_REPLAY) {
        Pm__V1__EventsReplayReply *rr = r->body_case == PM__V1__REPLY__BODY_EVENTS_REPLAY ? r->events_replay : NULL;
        if (r->status == PM__V1__STATUS__NOT_FOUND && rr && rr->first_seq > u->queued + 1) {
            char *why = pm_arena_printf (d->arena, "%s's events %llu..%llu were pruned before we applied them", u->name,
                                         (unsigned long long) u->queued + 1, (unsigned long long) rr->first_seq - 1);
            pm__upstream_snapshot (u, why);
            return;
        }
        if (!u->why || strcmp (u->why, r->message) != 0) /* once per distinct answer, not every retry */
            pm_error ("replay from %s failed: %s: %s (retrying)", u->name, pm_status_name (r->status), r->message);
        s_set_why (u, r->message);
        return; /* pending stays set; the tick retries after replay_timeout_ms */
    }
    u->pending = false;
    s_set_why (u, NULL);
    Pm__V1__EventsReplayReply *rr = r->events_replay;
    if (rr->last_seq > u->known_last)
        u->known_last = rr->last_seq;
    if (rr->last_seq < u->queued)
        pm_error ("%s's latest seq is %llu but we applied up to %llu: was its store reset? "
                  "(pmctl rebuild %s --from %s reloads it)",
                  u->name, (unsigned long long) rr->last_seq, (unsigned long long) u->queued, d->name, u->name);
    size_t before = d->nitems;
    for (size_t i = 0; i < rr->n_events; i++) /* an upstream that answered without raw */
        pm__upstream_event (u, rr->events[i], true);
    for (size_t i = 0; i < rr->n_raw_events; i++)
        if (!s_packed_event (u, rr->raw_events[i].data, rr->raw_events[i].len, NULL, 0, true)) {
            pm_metric_inc (d->m_bad, 1);
            pm_warn ("malformed event in %s's replay dropped (seq %llu + %zu)", u->name,
                     (unsigned long long) u->queued, i);
            break; /* the gap is asked for again */
        }
    size_t added = d->nitems - before;
    for (size_t i = before; i < d->nitems && rr->n_events; i++) /* the work of an event: its share of the page */
        d->items[i].cost = len / (added ? added : 1);
    d->batch_bytes += len;
    if (u->queued < rr->last_seq && (rr->n_events > 0 || rr->n_raw_events > 0))
        s_replay_request (u);
}

static void
s_snapshot_reply (s_upstream_t *u, Pm__V1__Reply *r, size_t len)
{
    pm_daemon_t *d = u->d;
    if (u->state != UP_SNAPSHOT)
        return;
    if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_EVENTS_SNAPSHOT) {
        if (r->status == PM__V1__STATUS__NOT_FOUND && *u->snap_token) { /* the upstream let it expire */
            pm__upstream_snapshot (u, "the snapshot expired on the upstream; starting it again");
            return;
        }
        if (r->status == PM__V1__STATUS__UNAVAILABLE)
            return; /* busy: the tick asks again */
        s_stranded (u, pm_arena_printf (d->arena, "%s cannot give a snapshot: %s", u->name, r->message));
        return;
    }
    Pm__V1__EventsSnapshotReply *sr = r->events_snapshot;
    u->pending = false;
    if (!*u->snap_token) { /* the first page: the load starts in this batch */
        s_item_t *it = pm__item_new (d, ITEM_SNAP_BEGIN);
        it->up = u;
        free (u->snap_token);
        u->snap_token = pm_xstrdup (sr->token);
        pm_info ("%s: loading %s's snapshot as of seq %llu", d->name, u->name, (unsigned long long) sr->seq);
    }
    for (size_t i = 0; i < sr->n_events; i++) {
        s_item_t *it = pm__item_new (d, ITEM_EVENT);
        it->ev = sr->events[i];
        it->up = u;
        it->snapshot = true;
        it->eroute = s_route (u, it->ev->type);
        it->cost = len / sr->n_events;
    }
    d->batch_bytes += len;
    free (u->snap_after);
    u->snap_after = pm_xmalloc (sr->after.len + 1);
    memcpy (u->snap_after, sr->after.data, sr->after.len);
    u->snap_after_len = sr->after.len;
    u->snap_page_queued = true;
    u->snap_done = sr->done;
    if (sr->done) {
        s_item_t *it = pm__item_new (d, ITEM_SNAP_END);
        it->up = u;
        it->snap_seq = sr->seq;
        if (sr->seq > u->known_last)
            u->known_last = sr->seq;
    }
}

static void
s_dealer_reply (s_upstream_t *u, const void *data, size_t len)
{
    pm_daemon_t *d = u->d;
    Pm__V1__Reply *r = pm__v1__reply__unpack (pm_arena_pb (d->arena), len, data);
    if (!r) {
        pm_metric_inc (d->m_bad, 1);
        pm_warn ("malformed reply from %s (%zu bytes) dropped", u->name, len);
        return;
    }
    if (!u->pending || strcmp (r->id, u->pending_id) != 0)
        return; /* an answer to a request we already gave up on */
    if (strncmp (r->id, "replay:", 7) == 0)
        s_replay_reply (u, r, len);
    else
        s_snapshot_reply (u, r, len);
}

void
pm__upstream_drain (s_upstream_t *u, int *progressed)
{
    pm_daemon_t *d = u->d;
    zmq_msg_t a, b;
    zmq_msg_init (&a);
    zmq_msg_init (&b);
    /* live events: [type][Event] */
    if (u->sub_dry)
        ;
    else if (zmq_msg_recv (&a, u->sub, ZMQ_DONTWAIT) < 0)
        u->sub_dry = true;
    else {
        (*progressed)++;
        if (zmq_msg_more (&a) && zmq_msg_recv (&b, u->sub, ZMQ_DONTWAIT) >= 0 && !zmq_msg_more (&b)) {
            bool heartbeat = zmq_msg_size (&a) == 9 && memcmp (zmq_msg_data (&a), "heartbeat", 9) == 0;
            Pm__V1__Event *hb = heartbeat ? pm__v1__event__unpack (pm_arena_pb (d->arena), zmq_msg_size (&b),
                                                                 zmq_msg_data (&b))
                                          : NULL;
            if (hb && hb->payload_case == PM__V1__EVENT__PAYLOAD_HEARTBEAT) {
                uint64_t last = hb->heartbeat->last_seq;
                if (last > u->known_last)
                    u->known_last = last;
                if (u->state == UP_FOLLOW && last > u->queued && !u->pending)
                    s_replay_request (u);
            }
            else if (heartbeat || !s_packed_event (u, zmq_msg_data (&b), zmq_msg_size (&b), zmq_msg_data (&a),
                                                   zmq_msg_size (&a), false)) {
                pm_metric_inc (d->m_bad, 1);
                pm_warn ("malformed event from %s dropped", u->name);
            }
            else
                d->batch_bytes += zmq_msg_size (&b);
        }
        else {
            pm_metric_inc (d->m_bad, 1);
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
    /* answers to replay and snapshot requests: [empty][Reply] */
    if (u->dealer_dry)
        ;
    else if (zmq_msg_recv (&a, u->dealer, ZMQ_DONTWAIT) < 0)
        u->dealer_dry = true;
    else {
        (*progressed)++;
        if (zmq_msg_more (&a) && zmq_msg_recv (&b, u->dealer, ZMQ_DONTWAIT) >= 0)
            s_dealer_reply (u, zmq_msg_data (&b), zmq_msg_size (&b));
    }
    zmq_msg_close (&a);
    zmq_msg_close (&b);
}

static void
s_upstream_cb (pm_zwatch_t *w, void *sock, void *arg)
{
    pm__pump (((s_upstream_t *) arg)->d);
}

void
pm__upstream_tick (s_upstream_t *u)
{
    pm_daemon_t *d = u->d;
    int64_t mono = pm_mono_ms ();
    if (u->state == UP_STRANDED) {
        if (mono >= u->stranded_retry_ms) { /* quietly: s_stranded logs only a new reason */
            u->state = UP_SNAPSHOT;
            free (u->snap_token);
            u->snap_token = pm_xstrdup ("");
            u->snap_page_queued = false;
            s_snapshot_request (u);
            u->state = UP_SNAPSHOT;
        }
        return;
    }
    if (u->pending && mono - u->pending_sent_ms >= d->replay_timeout_ms)
        s_request (u); /* no answer: upstream down or restarted; ask again */
    else if (!u->pending && u->state == UP_SNAPSHOT && !u->snap_page_queued)
        s_request (u);
}

/* --- after the batch ------------------------------------------------------------------ */

void
pm__upstream_committed (pm_daemon_t *d)
{
    for (size_t i = 0; i < d->nitems; i++) {
        s_item_t *it = &d->items[i];
        if (it->kind == ITEM_EVENT && !it->snapshot)
            it->up->applied = it->ev->seq;
        else if (it->kind == ITEM_SNAP_END) {
            s_upstream_t *u = it->up;
            u->applied = u->queued = it->snap_seq;
            u->state = UP_FOLLOW;
            s_set_why (u, NULL);
            u->snap_page_queued = false;
            pm_metric_inc (u->m_snapshots, 1);
            pm_info ("%s: loaded %s's snapshot; following from seq %llu", d->name, u->name,
                     (unsigned long long) u->applied + 1);
            s_replay_request (u);
        }
    }
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        u->applied_n += u->batch_n;
        pm_metric_set (u->m_applied, (double) u->applied_n);
        if (u->state == UP_SNAPSHOT && u->snap_page_queued && !u->snap_done) {
            u->snap_page_queued = false;
            s_snapshot_request (u);
        }
    }
}

void
pm__upstream_failed (pm_daemon_t *d)
{
    for (int i = 0; i < d->nups; i++) {
        s_upstream_t *u = &d->ups[i];
        u->queued = u->applied; /* replay again from the durable cursor */
        u->pending = false;
        if (u->state == UP_SNAPSHOT) { /* a page was lost with the batch: load again from the start */
            free (u->snap_token);
            u->snap_token = pm_xstrdup ("");
            free (u->snap_after);
            u->snap_after = NULL;
            u->snap_after_len = 0;
            u->snap_page_queued = false;
            u->snap_done = false;
        }
    }
}
