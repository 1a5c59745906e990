/* deliver.c - the webhook delivery worker, on the loop.
 *
 * Each subscription has at most one POST in flight (libcurl multi, pm/curl.h,
 * one easy handle per subscription so its connection is kept alive), so its
 * events arrive in log order; subscriptions never wait for one another, so a
 * slow receiver delays only itself. A 2xx moves the in-memory cursor and the
 * next matching event goes out at once; the durable cursor follows through
 * gateway.webhook.ack, sent S_ACK_EVERY_S after a delivery (or at once when
 * the subscription has caught up), at most one in flight per subscription:
 * a fast receiver costs a few commits a second, not one per event (a commit
 * holds the loop for an fsync). A crash between a 2xx and its ack sends that
 * event again: delivery is at least once, and Webhook-Id lets the receiver
 * drop the repeat.
 *
 * Anything else (a non-2xx, a refused connection, webhook_timeout_ms passed)
 * is told to the store with gateway.webhook.failed, which applies the ladder
 * (hooks.c); the worker waits for that reply before it looks at the
 * subscription again, and retries only when the durable timer made it ACTIVE. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/client.h"
#include "pm/curl.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SCAN_MAX 20000  /* log entries one look at a subscription reads */
#define S_RESP_MAX 300    /* bytes of a failed answer kept for the error text */
#define S_ACK_EVERY_S 0.2 /* how long a delivered cursor may wait to be made durable */

enum { S_ACTIVE, S_RETRYING, S_PAUSED };

typedef struct s_hook s_hook_t;
struct s_hook {
    gw_hooks_t *hs;
    s_hook_t *next;
    char id[32];
    char *url;
    char **types;
    size_t ntypes;
    char secret[257];
    int secret_len;
    int state;
    uint64_t cursor;        /* delivered through (memory; the store follows) */
    char cursor_event[96];
    uint64_t acked;         /* the store's cursor, as far as known */
    uint64_t delivered;
    bool busy;              /* a POST in flight */
    bool waiting;           /* a .failed in flight: wait for its answer */
    bool ack_busy;
    uint64_t ack_sent;
    bool gone;              /* deleted: freed when nothing is in flight */
    bool seen;
    /* the delivery in flight */
    uint64_t pos;
    char event_id[96];
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char resp[S_RESP_MAX + 1];
    size_t resp_len;
};

struct gw_hooks {
    gw_t *gw;
    pm_curl_t *curl;
    s_hook_t *list;
    ev_idle idle;  /* a look stopped at S_SCAN_MAX: go on when the loop is idle */
    ev_timer ack;  /* makes the delivered cursors durable */
};

static void s_kick (s_hook_t *h);

/* Arms the ack timer unless it is armed (set again each time: a one-shot
 * ev_timer that fired keeps an expired time, and would fire at once). */
static void
s_ack_soon (gw_hooks_t *hs)
{
    if (ev_is_active (&hs->ack))
        return;
    ev_timer_set (&hs->ack, S_ACK_EVERY_S, 0.0);
    ev_timer_start (hs->gw->loop, &hs->ack);
}

static int
s_state (const char *s)
{
    return strcmp (s, "ACTIVE") == 0 ? S_ACTIVE : strcmp (s, "RETRYING") == 0 ? S_RETRYING : S_PAUSED;
}

static void
s_types_free (s_hook_t *h)
{
    for (size_t i = 0; i < h->ntypes; i++)
        free (h->types[i]);
    free (h->types);
    h->types = NULL;
    h->ntypes = 0;
}

static void
s_hook_free (s_hook_t *h)
{
    if (h->easy)
        curl_easy_cleanup (h->easy);
    curl_slist_free_all (h->headers);
    free (h->body);
    free (h->url);
    s_types_free (h);
    sodium_memzero (h->secret, sizeof h->secret);
    free (h);
}

/* Frees a deleted subscription once nothing of it is in flight. */
static void
s_reap (gw_hooks_t *hs)
{
    for (s_hook_t **pp = &hs->list; *pp;) {
        s_hook_t *h = *pp;
        if (h->gone && !h->busy && !h->waiting && !h->ack_busy) {
            *pp = h->next;
            s_hook_free (h);
        }
        else
            pp = &h->next;
    }
}

static s_hook_t *
s_find (gw_hooks_t *hs, const char *id)
{
    for (s_hook_t *h = hs->list; h; h = h->next)
        if (!h->gone && strcmp (h->id, id) == 0)
            return h;
    return NULL;
}

/* --- telling the store ------------------------------------------------------------- */

static void s_ack (s_hook_t *h);

static void
s_ack_done (void *arg, const Pm__V1__Reply *reply)
{
    s_hook_t *h = arg;
    h->ack_busy = false;
    if (reply && reply->status == PM__V1__STATUS__OK && h->ack_sent > h->acked)
        h->acked = h->ack_sent;
    if (h->gone) {
        s_reap (h->hs);
        return;
    }
    if (h->cursor > h->acked)
        s_ack_soon (h->hs); /* delivered meanwhile: keep that too, soon */
}

static void
s_ack (s_hook_t *h)
{
    gw_t *gw = h->hs->gw;
    if (h->ack_busy || h->cursor <= h->acked || !gw->fwd)
        return;
    Pm__V1__GatewayWebhookAckRequest body = PM__V1__GATEWAY_WEBHOOK_ACK_REQUEST__INIT;
    body.id = h->id;
    body.cursor = h->cursor;
    body.cursor_event = h->cursor_event;
    body.delivered = h->delivered;
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    char id[27];
    gw_request_id (id);
    req.id = id;
    req.method = "gateway.webhook.ack";
    req.actor = "gateway:webhooks";
    pm_body_set (&req.base, req.method, &body.base);
    if (gw_fwd_call (gw->fwd, "gateway", &req, 30000, s_ack_done, h) == PM_OK) {
        h->ack_busy = true;
        h->ack_sent = h->cursor;
    }
}

static void
s_failed_done (void *arg, const Pm__V1__Reply *reply)
{
    s_hook_t *h = arg;
    h->waiting = false;
    if (h->gone) {
        s_reap (h->hs);
        return;
    }
    /* The failure is recorded (or not): read the subscription's state again
     * before the next attempt. Not from this reply: its retry timer may have
     * fired already (an immediate retry), in a batch after the one that
     * answered. Until the reload, nothing goes out. */
    h->state = S_RETRYING;
    h->hs->gw->hooks_changed = true;
}

static void
s_failed (s_hook_t *h, const char *error)
{
    gw_t *gw = h->hs->gw;
    pm_warn ("gateway: webhook %s: %s to %s failed: %s", h->id, h->event_id, h->url, error);
    if (!gw->fwd)
        return;
    Pm__V1__GatewayWebhookFailedRequest body = PM__V1__GATEWAY_WEBHOOK_FAILED_REQUEST__INIT;
    body.id = h->id;
    body.cursor = h->cursor;
    body.cursor_event = h->cursor_event;
    body.delivered = h->delivered;
    body.event_pos = h->pos;
    body.event_id = h->event_id;
    body.error = (char *) error;
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    char id[27];
    gw_request_id (id);
    req.id = id;
    req.method = "gateway.webhook.failed";
    req.actor = "gateway:webhooks";
    pm_body_set (&req.base, req.method, &body.base);
    if (gw_fwd_call (gw->fwd, "gateway", &req, 30000, s_failed_done, h) == PM_OK) {
        h->waiting = true;
        h->ack_sent = h->cursor > h->ack_sent ? h->cursor : h->ack_sent;
    }
}

/* --- one delivery ------------------------------------------------------------------- */

static size_t
s_write_cb (char *data, size_t size, size_t n, void *arg)
{
    s_hook_t *h = arg;
    size_t len = size * n, room = S_RESP_MAX - h->resp_len;
    size_t take = len < room ? len : room;
    memcpy (h->resp + h->resp_len, data, take);
    h->resp_len += take;
    h->resp[h->resp_len] = '\0';
    return len;
}

static void
s_done (CURL *easy, CURLcode rc, void *arg)
{
    s_hook_t *h = arg;
    gw_t *gw = h->hs->gw;
    h->busy = false;
    long code = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all (h->headers);
    h->headers = NULL;
    free (h->body);
    h->body = NULL;
    if (h->gone) {
        s_reap (h->hs);
        return;
    }
    if (rc == CURLE_OK && code >= 200 && code < 300) {
        pm_metric_inc (gw->m_hook_ok, 1);
        h->cursor = h->pos;
        snprintf (h->cursor_event, sizeof h->cursor_event, "%s", h->event_id);
        h->delivered++;
        s_ack_soon (h->hs);
        s_kick (h);
        return;
    }
    pm_metric_inc (gw->m_hook_fail, 1);
    char error[512];
    if (rc != CURLE_OK)
        snprintf (error, sizeof error, "%s", curl_easy_strerror (rc));
    else {
        for (size_t i = 0; i < h->resp_len; i++)
            if ((unsigned char) h->resp[i] < ' ')
                h->resp[i] = ' ';
        snprintf (error, sizeof error, "HTTP %ld%s%.200s", code, h->resp_len ? ": " : "", h->resp);
    }
    s_failed (h, error);
}

static bool
s_post (s_hook_t *h, const gw_entry_t *e)
{
    gw_t *gw = h->hs->gw;
    h->pos = e->pos;
    snprintf (h->event_id, sizeof h->event_id, "%s:%llu", e->source, (unsigned long long) e->seq);
    size_t body_len;
    h->body = gw_entry_json (e, &body_len);
    h->resp_len = 0;
    h->resp[0] = '\0';
    int64_t ts = gw_now_ms (gw) / 1000;
    char sig[128], line[256];
    gw_sign (h->secret, (size_t) h->secret_len, h->event_id, ts, h->body, body_len, sig, sizeof sig);
    struct curl_slist *l = NULL;
    l = curl_slist_append (l, "Content-Type: application/json");
    l = curl_slist_append (l, "Expect:");
    l = curl_slist_append (l, "User-Agent: pm-gateway");
    snprintf (line, sizeof line, "Webhook-Id: %s", h->event_id);
    l = curl_slist_append (l, line);
    snprintf (line, sizeof line, "Webhook-Timestamp: %lld", (long long) ts);
    l = curl_slist_append (l, line);
    snprintf (line, sizeof line, "Webhook-Signature: %s", sig);
    l = curl_slist_append (l, line);
    h->headers = l;
    if (!h->easy)
        h->easy = curl_easy_init ();
    else
        curl_easy_reset (h->easy); /* options only: its connection stays alive */
    CURL *c = h->easy;
    curl_easy_setopt (c, CURLOPT_URL, h->url);
    curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (c, CURLOPT_POST, 1L);
    curl_easy_setopt (c, CURLOPT_POSTFIELDS, h->body);
    curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE, (long) body_len);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, (long) gw->hook_timeout_ms);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, (long) (gw->hook_timeout_ms < 5000 ? gw->hook_timeout_ms : 5000));
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, h);
    if (pm_curl_add (h->hs->curl, c, s_done, h) != PM_OK) {
        s_failed (h, "libcurl refused the transfer");
        return false;
    }
    h->busy = true;
    return true;
}

/* Starts h's next delivery if it is free to go: the first entry after its
 * cursor that it subscribed to (entries of other types just move the cursor). */
static void
s_kick (s_hook_t *h)
{
    gw_hooks_t *hs = h->hs;
    if (h->gone || h->busy || h->waiting || h->state != S_ACTIVE)
        return;
    pm_txn_t t;
    if (pm_txn_begin_read (&t, pm_daemon_store (hs->gw->d)) != PM_OK)
        return;
    pm_scan_t s;
    pm_key_t from;
    size_t n = 0;
    bool found = false, more = false;
    for (pm_scan_range (&s, &t, GW_LOG, pm_key (&from, "U", h->cursor + 1), NULL); s.ok; pm_scan_next (&s)) {
        if (n++ == S_SCAN_MAX) {
            more = true;
            break;
        }
        gw_entry_t e;
        uint64_t pos = pm_be_u64 (s.key.mv_data);
        if (gw_entry_parse (pos, s.val.mv_data, s.val.mv_size, &e) != PM_OK) {
            h->cursor = pos; /* undecodable: skipped (logged once by the reader of the store) */
            continue;
        }
        if (gw_types_match (h->types, h->ntypes, e.type)) {
            found = true;
            s_post (h, &e);
            break;
        }
        h->cursor = pos;
    }
    pm_scan_end (&s);
    pm_txn_abort (&t);
    if (more)
        ev_idle_start (hs->gw->loop, &hs->idle);
    if (!found)
        s_ack (h); /* the cursor moved over other types: keep that too */
}

static void
s_ack_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    gw_hooks_t *hs = w->data;
    for (s_hook_t *h = hs->list; h; h = h->next)
        if (!h->gone)
            s_ack (h);
}

static void
s_idle_cb (struct ev_loop *loop, ev_idle *w, int revents)
{
    gw_hooks_t *hs = w->data;
    ev_idle_stop (loop, w);
    gw_hooks_kick (hs);
}

/* --- the set ------------------------------------------------------------------------ */

gw_hooks_t *
gw_hooks_new (gw_t *gw)
{
    gw_hooks_t *hs = pm_xcalloc (1, sizeof *hs);
    hs->gw = gw;
    hs->curl = pm_curl_new (gw->loop);
    if (!hs->curl) {
        free (hs);
        return NULL;
    }
    ev_idle_init (&hs->idle, s_idle_cb);
    hs->idle.data = hs;
    ev_timer_init (&hs->ack, s_ack_cb, S_ACK_EVERY_S, 0.0);
    hs->ack.data = hs;
    return hs;
}

void
gw_hooks_destroy (gw_hooks_t **p)
{
    if (!p || !*p)
        return;
    gw_hooks_t *hs = *p;
    ev_idle_stop (hs->gw->loop, &hs->idle);
    ev_timer_stop (hs->gw->loop, &hs->ack);
    for (s_hook_t *h = hs->list; h; h = h->next)
        if (h->busy)
            h->easy = NULL; /* pm_curl_destroy cleans up the transfers in flight */
    pm_curl_destroy (&hs->curl);
    while (hs->list) {
        s_hook_t *h = hs->list;
        hs->list = h->next;
        s_hook_free (h);
    }
    free (hs);
    *p = NULL;
}

void
gw_hooks_reload (gw_hooks_t *hs)
{
    gw_t *gw = hs->gw;
    pm_arena_t *a = pm_arena_new ();
    pm_txn_t t;
    if (pm_txn_begin_read (&t, pm_daemon_store (gw->d)) != PM_OK) {
        pm_arena_destroy (&a);
        return;
    }
    t.arena = a;
    for (s_hook_t *h = hs->list; h; h = h->next)
        h->seen = false;
    pm_scan_t s;
    for (pm_scan_prefix (&s, &t, GW_WEBHOOKS, NULL); s.ok; pm_scan_next (&s)) {
        Pm__Gateway__WebhookRecord *rec;
        if (pm_scan_msg (&s, &pm__gateway__webhook_record__descriptor, &rec) != PM_OK)
            continue;
        s_hook_t *h = s_find (hs, rec->id);
        if (!h) {
            h = pm_xcalloc (1, sizeof *h);
            h->hs = hs;
            snprintf (h->id, sizeof h->id, "%s", rec->id);
            h->next = hs->list;
            hs->list = h;
        }
        h->seen = true;
        free (h->url);
        h->url = pm_xstrdup (rec->url);
        s_types_free (h);
        h->types = pm_xcalloc (rec->n_types + 1, sizeof *h->types);
        for (size_t i = 0; i < rec->n_types; i++)
            h->types[h->ntypes++] = pm_xstrdup (rec->types[i]);
        h->secret_len = gw_hook_secret (gw, rec, h->secret, sizeof h->secret);
        if (h->secret_len < 0) {
            pm_error ("gateway: webhook %s: its secret does not unseal (another key_file?); not delivering", h->id);
            h->state = S_PAUSED;
            continue;
        }
        if (!h->waiting)
            h->state = s_state (rec->state);
        if (rec->cursor > h->cursor) {
            h->cursor = rec->cursor;
            snprintf (h->cursor_event, sizeof h->cursor_event, "%s", rec->cursor_event);
        }
        if (rec->cursor > h->acked)
            h->acked = rec->cursor;
        if (rec->delivered > h->delivered)
            h->delivered = rec->delivered;
    }
    pm_scan_end (&s);
    pm_txn_abort (&t);
    pm_arena_destroy (&a);
    for (s_hook_t *h = hs->list; h; h = h->next)
        if (!h->seen)
            h->gone = true;
    s_reap (hs);
    gw_hooks_kick (hs);
}

void
gw_hooks_kick (gw_hooks_t *hs)
{
    for (s_hook_t *h = hs->list; h; h = h->next)
        s_kick (h);
}
