/* support.c - the test-support library (see support.h). */
#define _GNU_SOURCE
#include "support.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
pmt_tmpdir (void)
{
    const char *base = getenv ("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *path = pm_xasprintf ("%s/pmt.XXXXXX", base);
    if (!mkdtemp (path))
        abort ();
    return path;
}

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;
    return remove (p);
}

void
pmt_rmdir (char *dir)
{
    if (!dir)
        return;
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (dir);
}

/* --- the fixture -------------------------------------------------------------------- */

char *
pmt_config (const char *dir, const char *const *names, const char *extra)
{
    char *s = pm_xasprintf ("[general]\nmanual_clock = true\nheartbeat_ms = 50\nreplay_timeout_ms = 200\n");
    for (int i = 0; names[i]; i++) {
        char *t = pm_xasprintf ("%s[%s]\ncommand = ipc://%s/%s.cmd\nevents = ipc://%s/%s.ev\ndata = %s/%s\n"
                                "map_size_mb = 2\n",
                                s, names[i], dir, names[i], dir, names[i], dir, names[i]);
        free (s);
        s = t;
    }
    if (extra && *extra) {
        char *t = pm_xasprintf ("%s%s\n", s, extra);
        free (s);
        s = t;
    }
    return s;
}

static pm_daemon_t *
s_start (const pm_daemon_spec_t *spec, const char *dir, const char *extra, struct ev_loop *loop)
{
    const char *names[8 + 2];
    int n = 0;
    names[n++] = spec->name;
    for (int i = 0; spec->upstreams && spec->upstreams[i].source && n < 8; i++)
        names[n++] = spec->upstreams[i].source;
    names[n] = NULL;
    char *text = pmt_config (dir, names, extra), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    if (!cfg)
        fail_msg ("config: %s", err ? err : "?");
    pm_daemon_t *d = pm_daemon_new (spec, cfg, loop);
    if (!d)
        fail_msg ("%s did not start (see the log above)", spec->name);
    return d;
}

pmt_fixture_t *
pmt_fixture_new (const pm_daemon_spec_t *spec, const char *extra)
{
    pmt_fixture_t *f = pm_xcalloc (1, sizeof *f);
    f->dir = pmt_tmpdir ();
    f->spec = spec;
    f->extra = pm_xstrdup (extra ? extra : "");
    f->loop = ev_loop_new (EVFLAG_AUTO);
    f->d = s_start (spec, f->dir, f->extra, f->loop);
    return f;
}

void
pmt_fixture_restart (pmt_fixture_t *f)
{
    pm_daemon_destroy (&f->d);
    f->d = s_start (f->spec, f->dir, f->extra, f->loop);
}

void
pmt_fixture_destroy (pmt_fixture_t **p)
{
    if (!p || !*p)
        return;
    pmt_fixture_t *f = *p;
    pm_daemon_destroy (&f->d);
    if (f->loop)
        ev_loop_destroy (f->loop);
    pmt_rmdir (f->dir);
    free (f->extra);
    free (f);
    *p = NULL;
}

/* --- requests and events -------------------------------------------------------------- */

Pm__V1__Request *
pmt_req (const char *id, const char *method, const char *actor)
{
    Pm__V1__Request *r = pm_xcalloc (1, sizeof *r);
    pm__v1__request__init (r);
    r->id = pm_xstrdup (id);
    r->method = pm_xstrdup (method);
    r->actor = pm_xstrdup (actor);
    return r;
}

void
pmt_req_free (Pm__V1__Request *r)
{
    pm__v1__request__free_unpacked (r, NULL);
}

Pm__V1__Reply *
pmt_apply (pm_daemon_t *d, Pm__V1__Request *req)
{
    pm_batch_item_t item = { req, NULL, NULL };
    assert_int_equal (pm_daemon_apply (d, &item, 1), PM_OK);
    assert_non_null (item.reply);
    return item.reply;
}

Pm__V1__Reply *
pmt_call (pm_daemon_t *d, const char *id, const char *method, ProtobufCMessage *body)
{
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = (char *) id;
    req.method = (char *) method;
    req.actor = "test";
    if (body && pm_body_set (&req.base, method, body) != PM_OK)
        fail_msg ("no body field for method %s", method);
    return pmt_apply (d, &req);
}

Pm__V1__Reply *
pmt_call_expect (pm_daemon_t *d, const char *id, const char *method, ProtobufCMessage *body, int want)
{
    Pm__V1__Reply *r = pmt_call (d, id, method, body);
    if ((int) r->status != want)
        fail_msg ("%s (%s): expected %s, got %s: %s", method, id, pm_status_name (want), pm_status_name (r->status),
                  r->message);
    return r;
}

Pm__V1__Reply *
pmt_apply_event (pm_daemon_t *d, Pm__V1__Event *ev)
{
    pm_batch_item_t item = { NULL, ev, NULL };
    assert_int_equal (pm_daemon_apply (d, &item, 1), PM_OK);
    assert_non_null (item.reply);
    return item.reply;
}

void
pmt_event_applied (pm_daemon_t *d, Pm__V1__Event *ev)
{
    Pm__V1__Reply *r = pmt_apply_event (d, ev);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("event %s: %s: %s", ev->id, pm_status_name (r->status), r->message);
    if (pm_daemon_applied (d, ev->source) != ev->seq)
        fail_msg ("event %s: cursor at %llu, expected %llu (reply: %s)", ev->id,
                  (unsigned long long) pm_daemon_applied (d, ev->source), (unsigned long long) ev->seq,
                  r->message ? r->message : "");
}

void
pmt_event_ignored (pm_daemon_t *d, Pm__V1__Event *ev)
{
    uint64_t cursor = pm_daemon_applied (d, ev->source);
    Pm__V1__Reply *r = pmt_apply_event (d, ev);
    assert_non_null (r->message);
    if (!strstr (r->message, "not applied"))
        fail_msg ("event %s: expected 'not applied', got %s: %s", ev->id, pm_status_name (r->status), r->message);
    assert_true (pm_daemon_applied (d, ev->source) == cursor);
}

static void
s_clock (pm_daemon_t *d, const char *set_to, const char *advance_by)
{
    static unsigned n;
    char id[32];
    snprintf (id, sizeof id, "pmt-clock-%u", ++n);
    Pm__V1__OpsClockRequest body = PM__V1__OPS_CLOCK_REQUEST__INIT;
    body.set_to = (char *) set_to;
    body.advance_by = (char *) advance_by;
    pmt_call_expect (d, id, "ops.clock", &body.base, PM__V1__STATUS__OK);
    pm_daemon_fire_timers (d);
}

void
pmt_clock_advance (pm_daemon_t *d, const char *by)
{
    s_clock (d, "", by);
}

void
pmt_clock_set (pm_daemon_t *d, const char *to)
{
    s_clock (d, to, "");
}

size_t
pmt_emitted (pm_daemon_t *d, Pm__V1__Event ***events)
{
    return pm_daemon_emitted (d, events);
}

Pm__V1__Event *
pmt_emitted_type (pm_daemon_t *d, const char *type)
{
    Pm__V1__Event **evs;
    size_t n = pm_daemon_emitted (d, &evs);
    for (size_t i = 0; i < n; i++)
        if (strcmp (evs[i]->type, type) == 0)
            return evs[i];
    return NULL;
}

double
pmt_metric_or (pm_daemon_t *d, const char *name, const char *labels, double def)
{
    Pm__V1__Reply *r = pmt_call_expect (d, "read-metrics", "ops.metrics", NULL, PM__V1__STATUS__OK);
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        if (strcmp (m->name, name) == 0 && strcmp (m->labels ? m->labels : "", labels) == 0)
            return m->value;
    }
    return def;
}

double
pmt_metric (pm_daemon_t *d, const char *name, const char *labels)
{
    Pm__V1__Reply *r = pmt_call_expect (d, "read-metrics", "ops.metrics", NULL, PM__V1__STATUS__OK);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_OPS_METRICS);
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        if (strcmp (m->name, name) == 0 && strcmp (m->labels ? m->labels : "", labels) == 0)
            return m->value;
    }
    fail_msg ("ops.metrics has no %s{%s}", name, labels);
    return -1;
}

Pm__V1__Queue *
pmt_queue (pm_daemon_t *d, const char *name)
{
    Pm__V1__OpsQueuesRequest body = PM__V1__OPS_QUEUES_REQUEST__INIT;
    body.limit = 100;
    Pm__V1__Reply *r = pmt_call_expect (d, "read-queues", "ops.queues", &body.base, PM__V1__STATUS__OK);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_OPS_QUEUES);
    for (size_t i = 0; i < r->ops_queues->n_queues; i++)
        if (strcmp (r->ops_queues->queues[i]->name, name) == 0)
            return r->ops_queues->queues[i];
    fail_msg ("ops.queues has no %s queue", name);
    return NULL;
}

const Pm__V1__QueueItem *
pmt_queue_item (const Pm__V1__Queue *q, const char *key)
{
    for (size_t i = 0; i < q->n_items; i++)
        if (strcmp (q->items[i]->key, key) == 0)
            return q->items[i];
    return NULL;
}

const char *
pmt_queue_field (const Pm__V1__QueueItem *item, const char *name)
{
    for (size_t i = 0; item && i < item->n_fields; i++)
        if (strcmp (item->fields[i]->name, name) == 0)
            return item->fields[i]->value;
    return NULL;
}

/* --- the log --------------------------------------------------------------------------- */

static char **s_lines;
static size_t s_nlines;

static void
s_keep (int level, const char *msg, void *arg)
{
    (void) level;
    (void) arg;
    s_lines = pm_xrealloc (s_lines, (s_nlines + 1) * sizeof *s_lines);
    s_lines[s_nlines++] = pm_xstrdup (msg);
}

void
pmt_log_start (void)
{
    pmt_log_stop ();
    pm_log_set_sink (s_keep, NULL);
}

void
pmt_log_stop (void)
{
    pm_log_set_sink (NULL, NULL);
    for (size_t i = 0; i < s_nlines; i++)
        free (s_lines[i]);
    free (s_lines);
    s_lines = NULL;
    s_nlines = 0;
}

int
pmt_log_count (const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < s_nlines; i++)
        n += strstr (s_lines[i], needle) != NULL;
    return n;
}

bool
pmt_log_has (const char *needle)
{
    return pmt_log_count (needle) > 0;
}

/* --- the runtime's test daemons ---------------------------------------------------------- */

static int
s_put (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_txn_put (txn, PMT_KV, req->actor, strlen (req->actor), req->id, strlen (req->id));
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "test.put";
    ev.unit_id = req->actor;
    pm_emit (out, txn, &ev);
    return pm_reply (out, PM__V1__STATUS__OK, "put %s", req->actor);
}

static int
s_fail (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    return pm_reply (out, PM__V1__STATUS__INVALID, "actor: '%s' refused", req->actor);
}

static int
s_failw (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_txn_put (txn, PMT_KV, req->actor, strlen (req->actor), "half", 4);
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "test.half";
    pm_emit (out, txn, &ev);
    return pm_reply (out, PM__V1__STATUS__CONFLICT, "changed my mind about %s", req->actor);
}

static int
s_timer (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_timer_set (txn, "test.fire", req->actor, ctx->now_ms + 3600 * 1000, "payload", 7);
    return pm_reply (out, PM__V1__STATUS__OK, "timer set");
}

static int
s_cancel (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_timer_cancel (txn, "test.fire", req->actor);
    return pm_reply (out, PM__V1__STATUS__OK, "timer cancelled");
}

static int
s_big (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    char *v = pm_arena_alloc (ctx->arena, 16384);
    memset (v, 'x', 16384);
    pm_txn_put (txn, PMT_KV, req->actor, strlen (req->actor), v, 16384);
    return pm_reply (out, PM__V1__STATUS__OK, "big %s", req->actor);
}

static int
s_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    MDB_val v;
    if (pm_txn_get (txn, PMT_KV, req->actor, strlen (req->actor), &v) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "no %s", req->actor);
    return pm_reply (out, PM__V1__STATUS__OK, "%.*s", (int) v.mv_size, (char *) v.mv_data);
}

/* A read of every kv entry through a scan left open (as a loop left with break does). */
static int
s_scan (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_scan_t s;
    pm_scan_prefix (&s, txn, PMT_KV, NULL);
    pm_txn_put (txn, PMT_KV, req->actor, strlen (req->actor), "scanned", 7);
    return pm_reply (out, PM__V1__STATUS__OK, "scanning");
}

static int
s_fire (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen, pm_out_t *out)
{
    char *k = pm_arena_printf (ctx->arena, "fired:%s", key);
    pm_txn_put (txn, PMT_KV, k, strlen (k), payload, plen);
    if (strcmp (key, "boom") == 0)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "timer %s refused after writing", key);
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "test.fired";
    ev.unit_id = (char *) key;
    return pm_emit (out, txn, &ev) == PM_OK ? PM__V1__STATUS__OK : PM__V1__STATUS__INTERNAL;
}

/* kv as "test.put" events, in key order, resuming after the last key sent. */
static int
s_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap)
{
    size_t alen;
    const void *after = pm_snapshot_after (snap, &alen);
    pm_key_t from;
    pm_scan_t s;
    pm_scan_range (&s, txn, PMT_KV, pm_key_raw (&from, after, alen), NULL);
    if (s.ok && alen && s.key.mv_size == alen && memcmp (s.key.mv_data, after, alen) == 0)
        pm_scan_next (&s); /* sent on the previous page */
    for (; s.ok; pm_scan_next (&s)) {
        if (s.key.mv_size > 6 && memcmp (s.key.mv_data, "fired:", 6) == 0)
            continue;
        Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
        pm__v1__event__init (ev);
        ev->type = "test.put";
        ev->unit_id = pm_arena_printf (ctx->arena, "%.*s", (int) s.key.mv_size, (char *) s.key.mv_data);
        if (!pm_snapshot_add (snap, ev, s.key.mv_data, s.key.mv_size))
            break;
    }
    return PM_OK;
}

static int
s_on_put (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    pm_txn_put (txn, PMT_KV, ev->unit_id, strlen (ev->unit_id), ev->id, strlen (ev->id));
    pm_meta_put_u64 (txn, "applied", pm_meta_get_u64 (txn, "applied") + 1);
    return PM__V1__STATUS__OK;
}

static const char *const s_tables[PMT_NTABLES] = { [PMT_KV] = "kv" };
static const pm_route_t s_pub_routes[] = {
    { "test.put", s_put, PM_ROUTE_WRITE },       { "test.fail", s_fail, PM_ROUTE_WRITE },
    { "test.failw", s_failw, PM_ROUTE_WRITE },   { "test.timer", s_timer, PM_ROUTE_WRITE },
    { "test.cancel", s_cancel, PM_ROUTE_WRITE }, { "test.big", s_big, PM_ROUTE_WRITE },
    { "test.get", s_get, PM_ROUTE_READ },        { "test.scan", s_scan, PM_ROUTE_WRITE },
    { NULL, NULL, 0 },
};
static const pm_timer_route_t s_timers[] = { { "test.fire", s_fire }, { NULL, NULL } };
static const pm_route_t s_no_routes[] = { { NULL, NULL, 0 } };
static const pm_event_route_t s_sub_events[] = { { "test.put", PM_ANY_PAYLOAD, s_on_put }, { NULL, 0, NULL } };
static const int s_sub_tables[] = { PMT_KV, -1 };
static const pm_upstream_t s_sub_upstreams[] = { { "pub", s_sub_events, s_sub_tables }, { NULL, NULL, NULL } };

const pm_daemon_spec_t pmt_pub_spec = {
    .name = "pub",
    .tables = s_tables,
    .ntables = PMT_NTABLES,
    .routes = s_pub_routes,
    .timers = s_timers,
    .snapshot = s_snapshot,
};
const pm_daemon_spec_t pmt_sub_spec = {
    .name = "sub",
    .tables = s_tables,
    .ntables = PMT_NTABLES,
    .routes = s_no_routes,
    .upstreams = s_sub_upstreams,
};

char *
pmt_config_text (const char *dir, const char *extra)
{
    static const char *const names[] = { "pub", "sub", NULL };
    char *general = pm_xasprintf ("[general]\n%s", extra ? extra : "");
    char *s = pmt_config (dir, names, extra && *extra ? general : NULL);
    free (general);
    return s;
}

pm_daemon_t *
pmt_daemon (const pm_daemon_spec_t *spec, const char *dir, const char *extra, struct ev_loop *loop)
{
    char *text = pmt_config_text (dir, extra), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    if (!cfg) {
        fprintf (stderr, "config: %s\n", err);
        abort ();
    }
    pm_daemon_t *d = pm_daemon_new (spec, cfg, loop);
    if (!d)
        abort ();
    return d;
}

char *
pmt_kv (pm_daemon_t *d, const char *key)
{
    pm_txn_t t;
    MDB_val v;
    char *out = NULL;
    if (pm_txn_begin_read (&t, pm_daemon_store (d)) != PM_OK)
        return NULL;
    if (pm_txn_get (&t, PMT_KV, key, strlen (key), &v) == PM_OK)
        out = pm_xstrndup (v.mv_data, v.mv_size);
    pm_txn_abort (&t);
    return out;
}

/* --- intake's events -------------------------------------------------------------------- */

void
pmt_unit_event (pmt_unit_event_t *e, uint64_t seq, const char *type, const char *unit, int64_t area_cm2)
{
    memset (e, 0, sizeof *e);
    pm__v1__event__init (&e->ev);
    pm__v1__unit__init (&e->unit);
    snprintf (e->id, sizeof e->id, "intake:%llu", (unsigned long long) seq);
    snprintf (e->unit_id, sizeof e->unit_id, "E01/%s", unit);
    e->unit.unit_id = e->unit_id;
    e->unit.estate_id = "E01";
    e->unit.estate_name = "Riverside Gardens";
    e->unit.area_cm2 = area_cm2;
    e->unit.owners = e->ownerp;
    e->ev.source = "intake";
    e->ev.seq = seq;
    e->ev.id = e->id;
    e->ev.type = (char *) type;
    e->ev.at_ms = 1764000000000;
    e->ev.estate_id = "E01";
    e->ev.unit_id = e->unit_id;
    e->ev.correlation_id = "import:test";
    e->ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
    e->ev.unit = &e->unit;
}

void
pmt_unit_event_owner (pmt_unit_event_t *e, const char *name, const char *phone, const char *email)
{
    assert_true (e->unit.n_owners < PMT_MAX_OWNERS);
    size_t i = e->unit.n_owners++;
    Pm__V1__Owner *o = &e->owners[i];
    pm__v1__owner__init (o);
    snprintf (e->owner_text[i][0], sizeof e->owner_text[i][0], "%s", name);
    snprintf (e->owner_text[i][1], sizeof e->owner_text[i][1], "%s", phone);
    snprintf (e->owner_text[i][2], sizeof e->owner_text[i][2], "%s", email);
    o->name = e->owner_text[i][0];
    o->phone = e->owner_text[i][1];
    o->email = e->owner_text[i][2];
    e->ownerp[i] = o;
}
