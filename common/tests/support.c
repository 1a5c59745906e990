#define _GNU_SOURCE
#include "support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *
pmt_tmpdir (void)
{
    const char *base = getenv ("TMPDIR");
    char *path = NULL;
    if (!base || !*base)
        base = "/tmp";
    if (asprintf (&path, "%s/pmt.XXXXXX", base) < 0)
        abort ();
    if (!mkdtemp (path))
        abort ();
    return path;
}

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
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

/* --- test daemons ----------------------------------------------------------- */
#include "pm/err.h"

#include <string.h>

enum { KV = PM_DB_FIRST_DOMAIN };

char *
pmt_config_text (const char *dir, const char *extra)
{
    char *s = NULL;
    if (asprintf (&s,
                  "[general]\nmanual_clock = true\nheartbeat_ms = 50\nreplay_timeout_ms = 200\n%s\n"
                  "[pub]\ncommand = ipc://%s/pub.cmd\nevents = ipc://%s/pub.ev\ndata = %s/pub\nmap_size_mb = 1\n"
                  "[sub]\ncommand = ipc://%s/sub.cmd\nevents = ipc://%s/sub.ev\ndata = %s/sub\nmap_size_mb = 1\n",
                  extra ? extra : "", dir, dir, dir, dir, dir, dir)
        < 0)
        abort ();
    return s;
}

static int
s_put (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_txn_put (txn, KV, req->actor, strlen (req->actor), req->id, strlen (req->id));
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "test.put";
    ev.unit_id = req->actor;
    pm_emit (ctx, txn, out, &ev);
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
    pm_txn_put (txn, KV, req->actor, strlen (req->actor), "half", 4);
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "test.half";
    pm_emit (ctx, txn, out, &ev);
    return pm_reply (out, PM__V1__STATUS__CONFLICT, "changed my mind about %s", req->actor);
}

static int
s_timer (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    pm_timer_add (txn, ctx->now_ms + 3600 * 1000, "test.fire", req->actor, "payload", 7);
    return pm_reply (out, PM__V1__STATUS__OK, "timer set");
}

static int
s_big (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    char *v = pm_arena_alloc (ctx->arena, 16384);
    memset (v, 'x', 16384);
    pm_txn_put (txn, KV, req->actor, strlen (req->actor), v, 16384);
    return pm_reply (out, PM__V1__STATUS__OK, "big %s", req->actor);
}

static int
s_fire (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen, pm_out_t *out)
{
    char *k = pm_arena_printf (ctx->arena, "fired:%s", key);
    pm_txn_put (txn, KV, k, strlen (k), payload, plen);
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "test.fired";
    ev.unit_id = (char *) key;
    return pm_emit (ctx, txn, out, &ev) == PM_OK ? PM__V1__STATUS__OK : PM__V1__STATUS__INTERNAL;
}

static int
s_on_put (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    pm_txn_put (txn, KV, ev->unit_id, strlen (ev->unit_id), ev->id, strlen (ev->id));
    pm_meta_put_u64 (txn, "applied", pm_meta_get_u64 (txn, "applied") + 1);
    return PM__V1__STATUS__OK;
}

static const char *const s_tables[] = { "kv", NULL };
static const pm_route_t s_pub_routes[] = {
    { "test.put", s_put, PM_ROUTE_WRITE },     { "test.fail", s_fail, PM_ROUTE_WRITE },
    { "test.failw", s_failw, PM_ROUTE_WRITE }, { "test.timer", s_timer, PM_ROUTE_WRITE },
    { "test.big", s_big, PM_ROUTE_WRITE },     { NULL, NULL, 0 },
};
static const pm_timer_route_t s_timers[] = { { "test.fire", s_fire }, { NULL, NULL } };
static const pm_route_t s_no_routes[] = { { NULL, NULL, 0 } };

const pm_daemon_spec_t pmt_pub_spec = { .name = "pub", .tables = s_tables, .routes = s_pub_routes, .timers = s_timers };
const pm_daemon_spec_t pmt_sub_spec = { .name = "sub", .tables = s_tables, .routes = s_no_routes };
const pm_event_route_t pmt_sub_events[] = { { "test.put", s_on_put }, { NULL, NULL } };

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
    if (pm_txn_get (&t, KV, key, strlen (key), &v) == PM_OK)
        out = strndup (v.mv_data, v.mv_size);
    pm_txn_abort (&t);
    return out;
}

Pm__V1__Request *
pmt_req (const char *id, const char *method, const char *actor)
{
    Pm__V1__Request *r = calloc (1, sizeof *r);
    pm__v1__request__init (r);
    r->id = strdup (id);
    r->method = strdup (method);
    r->actor = strdup (actor);
    return r;
}

void
pmt_req_free (Pm__V1__Request *r)
{
    pm__v1__request__free_unpacked (r, NULL);
}

/* --- intake's events ---------------------------------------------------------- */

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

pm_daemon_t *
pmt_consumer (const pm_daemon_spec_t *spec, const pm_event_route_t *routes, const char *dir, const char *data,
              struct ev_loop *loop)
{
    char *text = NULL, *err = NULL;
    if (asprintf (&text,
                  "[general]\nmanual_clock = true\n"
                  "[intake]\ncommand = ipc://%s/i.cmd\nevents = ipc://%s/i.pub\ndata = %s/intake\n"
                  "[%s]\ncommand = ipc://%s/c.cmd\nevents = ipc://%s/c.pub\ndata = %s\nmap_size_mb = 8\n",
                  dir, dir, dir, spec->name, dir, dir, data)
        < 0)
        abort ();
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    if (!cfg)
        fail_msg ("config: %s", err ? err : "?");
    pm_daemon_t *d = pm_daemon_new (spec, cfg, loop);
    assert_non_null (d);
    assert_int_equal (pm_daemon_subscribe (d, "intake", routes), PM_OK);
    return d;
}

/* --- one request or event through pm_daemon_apply ----------------------------- */

Pm__V1__Reply *
pmt_apply (pm_daemon_t *d, Pm__V1__Request *req)
{
    pm_batch_item_t item = { req, NULL, NULL };
    assert_int_equal (pm_daemon_apply (d, &item, 1), PM_OK);
    assert_non_null (item.reply);
    return item.reply;
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

double
pmt_metric (pm_daemon_t *d, const char *name, const char *labels)
{
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = "read-metrics";
    req.method = "ops.metrics";
    Pm__V1__Reply *r = pmt_apply (d, &req);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("ops.metrics: %s: %s", pm_status_name (r->status), r->message);
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
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    Pm__V1__OpsQueuesRequest body = PM__V1__OPS_QUEUES_REQUEST__INIT;
    body.limit = 100;
    req.id = "read-queues";
    req.method = "ops.queues";
    assert_int_equal (pm_body_set (&req.base, "ops.queues", &body.base), PM_OK);
    Pm__V1__Reply *r = pmt_apply (d, &req);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("ops.queues: %s: %s", pm_status_name (r->status), r->message);
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
