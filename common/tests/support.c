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
