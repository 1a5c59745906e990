/* log.c - the gateway's event log: every event consumed from every daemon,
 * in the order the gateway applied them.
 *
 * Why a log of its own: the SSE stream and the webhooks must give an
 * integrator every event, in one order, resumable from any point, however
 * long the integrator was away and whatever the upstreams have pruned. The
 * upstreams' seqs are per source; the log's position (`pos`, from 1, no gaps)
 * is one total order over all of them, fixed once written. So an SSE
 * client's Last-Event-ID "billing:7" names a position (billing:7's pos), and
 * everything after that position is exactly what the client has not seen,
 * from every source: one id is enough to resume. A webhook's cursor is a
 * position too.
 *
 * Each entry keeps the event as JSON (rendered once, when consumed), so the
 * stream and the webhooks copy bytes instead of re-encoding per reader.
 *
 *   value = seq (u64 BE) | at_ms (u64 BE) | source \0 | type \0 | unit_id \0 | packed pm.v1.Event
 * (the event as its source published it, packed again: JSON is rendered
 * only when an event is served, on the SSE stream or to a webhook)
 *
 * Snapshot events (Event.snapshot) restate an upstream's state after a
 * rebuild; they are not new facts and do not enter the log (the estates
 * projection does take them). Entries older than [general] event_retention_d
 * are pruned by a durable timer, an hour apart. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/json.h"
#include "pm/mem.h"
#include "pm/log.h"

#include <stdlib.h>
#include <string.h>

#define S_HEADER 16
#define S_PRUNE_EVERY_MS (3600 * 1000)
#define S_PRUNE_MAX 10000
#define S_UNIT_EVENTS 100

bool
gw_types_match (char *const *patterns, size_t n, const char *type)
{
    if (n == 0)
        return true;
    size_t tl = strlen (type);
    for (size_t i = 0; i < n; i++) {
        const char *p = patterns[i];
        size_t pl = strlen (p);
        if (pl == 0)
            continue;
        if (pl == tl && memcmp (p, type, tl) == 0)
            return true;
        if (p[pl - 1] == '.' && pl <= tl && memcmp (p, type, pl) == 0)
            return true;
        if (p[pl - 1] != '.' && pl < tl && memcmp (p, type, pl) == 0 && type[pl] == '.')
            return true;
    }
    return false;
}

int
gw_entry_parse (uint64_t pos, const void *val, size_t len, gw_entry_t *e)
{
    const char *v = val;
    if (len < S_HEADER + 3)
        return PM_EPROTO;
    e->pos = pos;
    e->seq = pm_be_u64 (v);
    e->at_ms = (int64_t) pm_be_u64 (v + 8);
    const char *p = v + S_HEADER, *end = v + len;
    const char **parts[3] = { &e->source, &e->type, &e->unit_id };
    for (int i = 0; i < 3; i++) {
        const char *z = memchr (p, '\0', (size_t) (end - p));
        if (!z)
            return PM_EPROTO;
        *parts[i] = p;
        p = z + 1;
    }
    e->packed = p;
    e->packed_len = (size_t) (end - p);
    return PM_OK;
}

char *
gw_entry_json (const gw_entry_t *e, size_t *len)
{
    Pm__V1__Event *ev = pm__v1__event__unpack (NULL, e->packed_len, (const uint8_t *) e->packed);
    cJSON *j = ev ? pm_msg_to_json (&ev->base) : NULL;
    char *json = j ? cJSON_PrintUnformatted (j) : NULL;
    cJSON_Delete (j);
    if (ev)
        pm__v1__event__free_unpacked (ev, NULL);
    if (!json)
        json = pm_xstrdup ("{}"); /* a stored event that no longer decodes: nothing to show */
    *len = strlen (json);
    return json;
}

uint64_t
gw_log_last (pm_txn_t *txn)
{
    return pm_meta_get_u64 (txn, "log_last");
}

int
gw_log_find (pm_txn_t *txn, const char *source, uint64_t seq, uint64_t *pos)
{
    pm_key_t k;
    MDB_val v;
    int rc = pm_txn_get_key (txn, GW_LOG_INDEX, pm_key (&k, "sU", source, seq), &v);
    if (rc != PM_OK)
        return rc;
    if (v.mv_size != 8)
        return PM_EPROTO;
    *pos = pm_be_u64 (v.mv_data);
    return PM_OK;
}

uint64_t
gw_log_first_after (pm_txn_t *txn, const char *source, uint64_t after)
{
    if (after == UINT64_MAX)
        return 0;
    pm_key_t from, to;
    pm_key (&from, "sU", source, after + 1);
    pm_key (&to, "sU", source, UINT64_MAX);
    pm_scan_t s;
    uint64_t pos = 0;
    pm_scan_range (&s, txn, GW_LOG_INDEX, &from, &to);
    if (s.ok && s.val.mv_size == 8)
        pos = pm_be_u64 (s.val.mv_data);
    pm_scan_end (&s);
    return pos;
}

/* --- the estates intake's units belong to ---------------------------------------- */

static int
s_estate (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Unit *u)
{
    if (!u || !*u->estate_id)
        return PM_OK;
    pm_key_t k;
    Pm__Gateway__EstateRecord *rec = NULL, fresh = PM__GATEWAY__ESTATE_RECORD__INIT;
    int rc = pm_txn_get_msg (txn, GW_ESTATES, pm_key (&k, "s", u->estate_id), &pm__gateway__estate_record__descriptor,
                             &rec);
    if (rc == PM_ENOTFOUND || rc == PM_EPROTO) {
        fresh.estate_id = u->estate_id;
        rec = &fresh;
    }
    else if (rc != PM_OK)
        return rc;
    bool changed = rec == &fresh;
    if (*u->estate_name && strcmp (rec->estate_name, u->estate_name) != 0) {
        rec->estate_name = u->estate_name;
        changed = true;
    }
    if (*u->building) {
        bool known = false;
        for (size_t i = 0; i < rec->n_buildings && !known; i++)
            known = strcmp (rec->buildings[i], u->building) == 0;
        if (!known) {
            char **b = pm_arena_alloc (ctx->arena, (rec->n_buildings + 1) * sizeof *b);
            if (rec->n_buildings)
                memcpy (b, rec->buildings, rec->n_buildings * sizeof *b);
            b[rec->n_buildings++] = u->building;
            rec->buildings = b;
            changed = true;
        }
    }
    if (changed)
        pm_txn_put_msg (txn, GW_ESTATES, &k, &rec->base);
    return PM_OK;
}

/* --- consuming ------------------------------------------------------------------- */

int
gateway_on_event (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    if (ev->payload_case == PM__V1__EVENT__PAYLOAD_UNIT && strcmp (ev->source, "intake") == 0)
        s_estate (ctx, txn, ev->unit);
    if (ev->snapshot)
        return PM__V1__STATUS__OK;

    uint64_t pos = gw_log_last (txn) + 1;
    const char *unit = ev->unit_id ? ev->unit_id : "";
    size_t ls = strlen (ev->source) + 1, lt = strlen (ev->type) + 1, lu = strlen (unit) + 1,
           lj = pm__v1__event__get_packed_size (ev);
    size_t len = S_HEADER + ls + lt + lu + lj;
    unsigned char *v = pm_arena_alloc (ctx->arena, len);
    pm_u64_be (ev->seq, v);
    pm_u64_be ((uint64_t) ev->at_ms, v + 8);
    unsigned char *p = v + S_HEADER;
    memcpy (p, ev->source, ls);
    memcpy (p += ls, ev->type, lt);
    memcpy (p += lt, unit, lu);
    pm__v1__event__pack (ev, p + lu);

    pm_key_t k;
    unsigned char posbe[8];
    pm_u64_be (pos, posbe);
    pm_txn_put_key (txn, GW_LOG, pm_key (&k, "U", pos), v, len);
    pm_txn_put_key (txn, GW_LOG_INDEX, pm_key (&k, "sU", ev->source, ev->seq), posbe, 8);
    if (*unit)
        pm_txn_put_key (txn, GW_LOG_UNITS, pm_key (&k, "sU", unit, pos), "", 0);
    pm_meta_put_u64 (txn, "log_last", pos);
    int64_t due;
    if (pm_timer_due (txn, GW_LOG_PRUNE, "log", &due) == PM_ENOTFOUND)
        pm_timer_set (txn, GW_LOG_PRUNE, "log", ctx->now_ms + S_PRUNE_EVERY_MS, NULL, 0);
    if (gw)
        gw->log_grew = true;
    return PM__V1__STATUS__OK;
}

/* Durable timer: drops entries past the retention, oldest first. */
int
gateway_on_prune (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    int64_t cutoff = ctx->now_ms - gw->retention_ms;
    size_t n = 0;
    bool more = false;
    pm_scan_t s;
    pm_key_t k;
    for (pm_scan_prefix (&s, txn, GW_LOG, NULL); s.ok; pm_scan_next (&s)) {
        gw_entry_t e;
        uint64_t pos = pm_be_u64 (s.key.mv_data);
        if (gw_entry_parse (pos, s.val.mv_data, s.val.mv_size, &e) == PM_OK) {
            if (e.at_ms >= cutoff)
                break;
            if (n == S_PRUNE_MAX) {
                more = true;
                break;
            }
            pm_txn_del_key (txn, GW_LOG_INDEX, pm_key (&k, "sU", e.source, e.seq));
            if (*e.unit_id)
                pm_txn_del_key (txn, GW_LOG_UNITS, pm_key (&k, "sU", e.unit_id, pos));
        }
        pm_scan_del (&s);
        n++;
    }
    pm_scan_end (&s);
    if (n)
        pm_info ("gateway: pruned %zu log entries past retention", n);
    if (more || pm_txn_count (txn, GW_LOG) > 0)
        pm_timer_set (txn, GW_LOG_PRUNE, "log", ctx->now_ms + (more ? 0 : S_PRUNE_EVERY_MS), NULL, 0);
    return PM__V1__STATUS__OK;
}

/* --- reads -------------------------------------------------------------------------- */

typedef struct {
    Pm__Gateway__WebhookRecord **recs;
    size_t n;
} s_hooks_t;

static s_hooks_t
s_hooks_load (pm_ctx_t *ctx, pm_txn_t *txn)
{
    s_hooks_t h = { NULL, 0 };
    size_t cap = pm_txn_count (txn, GW_WEBHOOKS);
    h.recs = pm_arena_alloc (ctx->arena, (cap + 1) * sizeof *h.recs);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, GW_WEBHOOKS, NULL); s.ok && h.n < cap; pm_scan_next (&s)) {
        Pm__Gateway__WebhookRecord *rec;
        if (pm_scan_msg (&s, &pm__gateway__webhook_record__descriptor, &rec) == PM_OK)
            h.recs[h.n++] = rec;
    }
    pm_scan_end (&s);
    return h;
}

int
gateway_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->gateway_unit_get->unit_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/3-1201");
    pm_key_t k;
    uint64_t pos[S_UNIT_EVENTS];
    size_t n = 0;
    pm_scan_t s;
    for (pm_scan_prefix_rev (&s, txn, GW_LOG_UNITS, pm_key (&k, "s", id)); s.ok && n < S_UNIT_EVENTS;
         pm_scan_next (&s)) {
        uint64_t p;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &p) == PM_OK)
            pos[n++] = p;
    }
    pm_scan_end (&s);
    if (n == 0)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: the gateway holds no events about '%s' (not imported, or older than the log's "
                         "retention)",
                         id);
    s_hooks_t hooks = s_hooks_load (ctx, txn);
    Pm__V1__GatewayUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_unit_get_reply__init (r);
    r->unit_id = pm_arena_strdup (ctx->arena, id);
    r->events = pm_arena_alloc (ctx->arena, n * sizeof *r->events);
    for (size_t i = n; i-- > 0;) {
        MDB_val v;
        gw_entry_t e;
        if (pm_txn_get_key (txn, GW_LOG, pm_key (&k, "U", pos[i]), &v) != PM_OK
            || gw_entry_parse (pos[i], v.mv_data, v.mv_size, &e) != PM_OK)
            continue;
        Pm__V1__GatewayUnitEvent *ue = pm_arena_alloc (ctx->arena, sizeof *ue);
        pm__v1__gateway_unit_event__init (ue);
        ue->pos = e.pos;
        ue->id = pm_arena_printf (ctx->arena, "%s:%llu", e.source, (unsigned long long) e.seq);
        ue->type = pm_arena_strdup (ctx->arena, e.type);
        ue->at_ms = e.at_ms;
        ue->delivered_to = pm_arena_alloc (ctx->arena, (hooks.n + 1) * sizeof (char *));
        ue->pending_for = pm_arena_alloc (ctx->arena, (hooks.n + 1) * sizeof (char *));
        for (size_t h = 0; h < hooks.n; h++) {
            Pm__Gateway__WebhookRecord *w = hooks.recs[h];
            if (!gw_types_match (w->types, w->n_types, e.type))
                continue;
            if (w->cursor >= e.pos)
                ue->delivered_to[ue->n_delivered_to++] = w->id;
            else
                ue->pending_for[ue->n_pending_for++] = w->id;
        }
        r->events[r->n_events++] = ue;
    }
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu events about %s", r->n_events, id);
}

int
gateway_on_estate_list (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    Pm__V1__GatewayEstateListReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_estate_list_reply__init (r);
    size_t cap = pm_txn_count (txn, GW_ESTATES);
    r->estates = pm_arena_alloc (ctx->arena, (cap + 1) * sizeof *r->estates);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, GW_ESTATES, NULL); s.ok && r->n_estates < cap; pm_scan_next (&s)) {
        Pm__Gateway__EstateRecord *rec;
        if (pm_scan_msg (&s, &pm__gateway__estate_record__descriptor, &rec) != PM_OK)
            continue;
        Pm__V1__GatewayEstate *e = pm_arena_alloc (ctx->arena, sizeof *e);
        pm__v1__gateway_estate__init (e);
        e->estate_id = rec->estate_id;
        e->estate_name = rec->estate_name;
        e->buildings = rec->buildings;
        e->n_buildings = rec->n_buildings;
        r->estates[r->n_estates++] = e;
    }
    pm_scan_end (&s);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu estates", r->n_estates);
}
