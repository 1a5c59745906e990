/* hooks.c - webhook subscriptions: their records, durable cursors and the
 * retry ladder. The HTTP side of a delivery is deliver.c; what it learns
 * comes back here as gateway.webhook.ack / .failed, so every change of a
 * subscription is one command in the group commit.
 *
 * A subscription is ACTIVE (deliveries go out), RETRYING (an event failed;
 * a durable timer says when to try it again) or PAUSED (it kept failing for
 * [gateway] webhook_pause_after, 3 days; shown in ops.queues
 * `webhooks_paused` until `pmctl webhook resume ID`). Its cursor is a log
 * position (log.c) and moves only on a 2xx, so delivery is at least once and
 * in log order; a receiver drops repeats by Webhook-Id.
 *
 * The ladder, after the n-th failed attempt at one event: at once, 1 min,
 * 5 min, 30 min, 2 h, 6 h, then daily; the last try falls exactly at
 * webhook_pause_after after the first failure, and if that fails too the
 * subscription pauses. Times are the daemon's clock, so tests move it. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/log.h"

#include <stdio.h>
#include <string.h>

#define S_URL_MAX 2048
#define S_SECRET_MIN 16
#define S_SECRET_MAX 256
#define S_TYPES_MAX 32
#define S_TYPE_MAX 128

static const int64_t s_ladder[] = { 0, 60000, 300000, 1800000, 7200000, 21600000, 86400000 };

int64_t
gw_ladder_ms (uint32_t failures)
{
    size_t n = sizeof s_ladder / sizeof s_ladder[0];
    if (failures == 0)
        return 0;
    return s_ladder[failures - 1 < n ? failures - 1 : n - 1];
}

void
gw_sign (const char *secret, size_t secret_len, const char *id, int64_t ts, const char *body, size_t body_len,
         char *out, size_t size)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char tsbuf[24];
    int tl = snprintf (tsbuf, sizeof tsbuf, "%lld", (long long) ts);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init (&st, (const unsigned char *) secret, secret_len);
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) id, strlen (id));
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) ".", 1);
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) tsbuf, (size_t) tl);
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) ".", 1);
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) body, body_len);
    crypto_auth_hmacsha256_final (&st, mac);
    char b64[sodium_base64_ENCODED_LEN (sizeof mac, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    snprintf (out, size, "v1,%s", b64);
}

/* The nonce of a subscription's sealed secret: unique per id (ids are never
 * reused), so it needs no randomness in the handler. */
static void
s_nonce (const char *id, int64_t created_ms, unsigned char nonce[crypto_secretbox_NONCEBYTES])
{
    crypto_generichash_state st;
    unsigned char t[8];
    pm_u64_be ((uint64_t) created_ms, t);
    crypto_generichash_init (&st, NULL, 0, crypto_secretbox_NONCEBYTES);
    crypto_generichash_update (&st, (const unsigned char *) id, strlen (id) + 1);
    crypto_generichash_update (&st, t, sizeof t);
    crypto_generichash_final (&st, nonce, crypto_secretbox_NONCEBYTES);
}

int
gw_hook_secret (const gw_t *gw, const Pm__Gateway__WebhookRecord *rec, char *out, size_t size)
{
    size_t n = rec->secret_sealed.len;
    if (n < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return -1;
    size_t plain = n - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if (plain + 1 > size)
        return -1;
    const unsigned char *d = rec->secret_sealed.data;
    if (crypto_secretbox_open_easy ((unsigned char *) out, d + crypto_secretbox_NONCEBYTES,
                                    n - crypto_secretbox_NONCEBYTES, d, gw->seal_key)
        != 0)
        return -1;
    out[plain] = '\0';
    return (int) plain;
}

/* --- showing -------------------------------------------------------------------------- */

static Pm__V1__GatewayWebhook *
s_shown (pm_ctx_t *ctx, const Pm__Gateway__WebhookRecord *rec, uint64_t log_last)
{
    Pm__V1__GatewayWebhook *w = pm_arena_alloc (ctx->arena, sizeof *w);
    pm__v1__gateway_webhook__init (w);
    w->id = rec->id;
    w->url = rec->url;
    w->types = rec->types;
    w->n_types = rec->n_types;
    w->state = rec->state;
    w->cursor = rec->cursor;
    w->cursor_event = rec->cursor_event;
    w->attempts = rec->attempts;
    w->failing_since_ms = rec->failing_since_ms;
    w->next_attempt_ms = rec->next_attempt_ms;
    w->last_error = rec->last_error;
    w->pending_event = rec->pending_event;
    w->created_ms = rec->created_ms;
    w->created_by = rec->created_by;
    w->delivered = rec->delivered;
    w->behind = log_last > rec->cursor ? log_last - rec->cursor : 0;
    w->paused_ms = rec->paused_ms;
    return w;
}

static int
s_get (pm_txn_t *txn, const char *id, pm_key_t *k, Pm__Gateway__WebhookRecord **rec)
{
    return pm_txn_get_msg (txn, GW_WEBHOOKS, pm_key (k, "s", id), &pm__gateway__webhook_record__descriptor, rec);
}

static int
s_not_found (pm_out_t *out, const char *id)
{
    return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "id: no webhook '%.64s' (pmctl webhook list shows them)", id);
}

/* --- checks ------------------------------------------------------------------------- */

static const char *
s_url_problem (const char *url)
{
    size_t n = strlen (url);
    if (n == 0)
        return "empty";
    if (n > S_URL_MAX)
        return "longer than 2048 characters";
    const char *host;
    if (strncmp (url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp (url, "https://", 8) == 0)
        host = url + 8;
    else
        return "not an http:// or https:// URL";
    if (!*host || *host == '/' || *host == ':')
        return "has no host";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) url[i] <= ' ' || url[i] == 0x7f)
            return "contains a space or a control character";
    return NULL;
}

static bool
s_type_ok (const char *t)
{
    size_t n = strlen (t);
    if (n == 0 || n > S_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'))
            return false;
    }
    return true;
}

/* --- handlers ------------------------------------------------------------------------ */

int
gateway_on_hook_create (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    const Pm__V1__GatewayWebhookCreateRequest *q = req->gateway_webhook_create;
    const char *why = s_url_problem (q->url);
    if (why)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "url: '%.80s' is %s; expected e.g. https://erp.example.com/hooks/move-in", q->url, why);
    size_t sl = strlen (q->secret);
    if (sl < S_SECRET_MIN || sl > S_SECRET_MAX)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "secret: %zu bytes; the signing secret needs %d to %d (e.g. 32 random characters), and the "
                         "receiver keeps a copy to check Webhook-Signature",
                         sl, S_SECRET_MIN, S_SECRET_MAX);
    if (q->n_types > S_TYPES_MAX)
        return pm_reply (out, PM__V1__STATUS__INVALID, "types: %zu given; at most %d", q->n_types, S_TYPES_MAX);
    for (size_t i = 0; i < q->n_types; i++)
        if (!s_type_ok (q->types[i]))
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "types[%zu]: '%.64s' is not an event type or prefix; expected e.g. billing.invoice. or "
                             "intake.keys.handed",
                             i, q->types[i]);

    uint64_t n = pm_meta_get_u64 (txn, "webhook_n") + 1;
    pm_meta_put_u64 (txn, "webhook_n", n);
    Pm__Gateway__WebhookRecord rec = PM__GATEWAY__WEBHOOK_RECORD__INIT;
    rec.id = pm_arena_printf (ctx->arena, "WH-%llu", (unsigned long long) n);
    rec.url = q->url;
    rec.types = q->types;
    rec.n_types = q->n_types;
    rec.state = "ACTIVE";
    rec.cursor = q->from_start ? 0 : gw_log_last (txn);
    rec.created_ms = ctx->now_ms;
    rec.created_by = req->actor;
    size_t len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + sl;
    unsigned char *sealed = pm_arena_alloc (ctx->arena, len);
    s_nonce (rec.id, rec.created_ms, sealed);
    crypto_secretbox_easy (sealed + crypto_secretbox_NONCEBYTES, (const unsigned char *) q->secret, sl, sealed,
                           gw->seal_key);
    rec.secret_sealed.data = sealed;
    rec.secret_sealed.len = len;
    pm_key_t k;
    pm_txn_put_msg (txn, GW_WEBHOOKS, pm_key (&k, "s", rec.id), &rec.base);
    gw->hooks_changed = true;
    Pm__V1__GatewayWebhookCreateReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_webhook_create_reply__init (r);
    r->webhook = s_shown (ctx, &rec, gw_log_last (txn));
    pm_reply_body (out, &r->base);
    pm_info ("gateway: webhook %s to %s created by %s", rec.id, rec.url, req->actor);
    return pm_reply (out, PM__V1__STATUS__OK, "webhook %s created: %s from log position %llu", rec.id,
                     q->from_start ? "every retained event" : "events", (unsigned long long) rec.cursor + 1);
}

int
gateway_on_hook_list (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    Pm__V1__GatewayWebhookListReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_webhook_list_reply__init (r);
    size_t cap = pm_txn_count (txn, GW_WEBHOOKS);
    uint64_t last = gw_log_last (txn);
    r->webhooks = pm_arena_alloc (ctx->arena, (cap + 1) * sizeof *r->webhooks);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, GW_WEBHOOKS, NULL); s.ok && r->n_webhooks < cap; pm_scan_next (&s)) {
        Pm__Gateway__WebhookRecord *rec;
        if (pm_scan_msg (&s, &pm__gateway__webhook_record__descriptor, &rec) == PM_OK)
            r->webhooks[r->n_webhooks++] = s_shown (ctx, rec, last);
    }
    pm_scan_end (&s);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu webhooks", r->n_webhooks);
}

/* Back to ACTIVE with the failure forgotten (its last error is kept to read). */
static void
s_activate (pm_txn_t *txn, Pm__Gateway__WebhookRecord *rec)
{
    pm_key_t k;
    rec->state = "ACTIVE";
    rec->attempts = 0;
    rec->failing_since_ms = 0;
    rec->next_attempt_ms = 0;
    rec->pending_pos = 0;
    rec->pending_event = "";
    rec->paused_ms = 0;
    pm_timer_cancel (txn, GW_HOOK_RETRY, rec->id);
    pm_txn_del_key (txn, GW_WEBHOOKS_PAUSED, pm_key (&k, "s", rec->id));
}

int
gateway_on_hook_resume (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    const char *id = req->gateway_webhook_resume->id;
    pm_key_t k;
    Pm__Gateway__WebhookRecord *rec;
    if (s_get (txn, id, &k, &rec) != PM_OK)
        return s_not_found (out, id);
    bool was_active = strcmp (rec->state, "ACTIVE") == 0;
    const char *before = rec->state;
    if (!was_active) {
        s_activate (txn, rec);
        pm_txn_put_msg (txn, GW_WEBHOOKS, pm_key (&k, "s", id), &rec->base);
        gw->hooks_changed = true;
        pm_info ("gateway: webhook %s resumed by %s (was %s)", id, req->actor, before);
    }
    Pm__V1__GatewayWebhookResumeReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_webhook_resume_reply__init (r);
    r->webhook = s_shown (ctx, rec, gw_log_last (txn));
    pm_reply_body (out, &r->base);
    if (was_active)
        return pm_reply (out, PM__V1__STATUS__OK, "webhook %s is active already (delivered through %s)", id,
                         *rec->cursor_event ? rec->cursor_event : "nothing yet");
    return pm_reply (out, PM__V1__STATUS__OK, "webhook %s was %s; it delivers again from after %s", id, before,
                     *rec->cursor_event ? rec->cursor_event : "its start");
}

int
gateway_on_hook_delete (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    const char *id = req->gateway_webhook_delete->id;
    pm_key_t k;
    Pm__Gateway__WebhookRecord *rec;
    if (s_get (txn, id, &k, &rec) != PM_OK)
        return s_not_found (out, id);
    pm_txn_del_key (txn, GW_WEBHOOKS, &k);
    pm_txn_del_key (txn, GW_WEBHOOKS_PAUSED, &k);
    pm_timer_cancel (txn, GW_HOOK_RETRY, id);
    gw->hooks_changed = true;
    Pm__V1__GatewayWebhookDeleteReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_webhook_delete_reply__init (r);
    r->webhook = s_shown (ctx, rec, gw_log_last (txn));
    pm_reply_body (out, &r->base);
    pm_info ("gateway: webhook %s deleted by %s", id, req->actor);
    return pm_reply (out, PM__V1__STATUS__OK, "webhook %s deleted", id);
}

/* Moves the durable cursor forward (never back) and clears a failure it passed. */
static void
s_advance (Pm__Gateway__WebhookRecord *rec, uint64_t cursor, const char *cursor_event, uint64_t delivered)
{
    if (cursor > rec->cursor) {
        rec->cursor = cursor;
        rec->cursor_event = (char *) cursor_event;
    }
    if (delivered > rec->delivered)
        rec->delivered = delivered;
    if (rec->pending_pos && rec->cursor >= rec->pending_pos) {
        rec->attempts = 0;
        rec->failing_since_ms = 0;
        rec->pending_pos = 0;
        rec->pending_event = "";
    }
}

int
gateway_on_hook_ack (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__GatewayWebhookAckRequest *q = req->gateway_webhook_ack;
    pm_key_t k;
    Pm__Gateway__WebhookRecord *rec;
    if (s_get (txn, q->id, &k, &rec) != PM_OK)
        return s_not_found (out, q->id);
    s_advance (rec, q->cursor, q->cursor_event, q->delivered);
    pm_txn_put_msg (txn, GW_WEBHOOKS, &k, &rec->base);
    return pm_reply (out, PM__V1__STATUS__OK, "webhook %s delivered through %llu", q->id,
                     (unsigned long long) rec->cursor);
}

int
gateway_on_hook_failed (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    const Pm__V1__GatewayWebhookFailedRequest *q = req->gateway_webhook_failed;
    pm_key_t k;
    Pm__Gateway__WebhookRecord *rec;
    if (s_get (txn, q->id, &k, &rec) != PM_OK)
        return s_not_found (out, q->id);
    s_advance (rec, q->cursor, q->cursor_event, q->delivered);
    Pm__V1__GatewayWebhookFailedReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_webhook_failed_reply__init (r);
    if (strcmp (rec->state, "ACTIVE") != 0 || q->event_pos <= rec->cursor) {
        /* paused or resumed meanwhile, or an attempt at an event already delivered */
        pm_txn_put_msg (txn, GW_WEBHOOKS, &k, &rec->base);
        r->webhook = s_shown (ctx, rec, gw_log_last (txn));
        pm_reply_body (out, &r->base);
        return pm_reply (out, PM__V1__STATUS__OK, "webhook %s is %s; the failure at %s is not counted", q->id,
                         rec->state, q->event_id);
    }
    if (rec->pending_pos != q->event_pos) {
        rec->pending_pos = q->event_pos;
        rec->pending_event = q->event_id;
        rec->attempts = 0;
        rec->failing_since_ms = ctx->now_ms;
    }
    rec->attempts++;
    rec->last_error = pm_arena_printf (ctx->arena, "%.400s", q->error);
    int64_t deadline = rec->failing_since_ms + gw->pause_after_ms;
    if (ctx->now_ms >= deadline) {
        rec->state = "PAUSED";
        rec->paused_ms = ctx->now_ms;
        rec->next_attempt_ms = 0;
        pm_timer_cancel (txn, GW_HOOK_RETRY, rec->id);
        char *reason = pm_arena_printf (
            ctx->arena,
            "webhook %s to %s paused: %u attempts at %s failed over %lld h; last error: %s. Fix the receiver, "
            "then pmctl webhook resume %s (it continues from %s, in order)",
            rec->id, rec->url, rec->attempts, rec->pending_event, (long long) (gw->pause_after_ms / 3600000),
            rec->last_error, rec->id, rec->pending_event);
        Pm__V1__QueueItem *item = pm_queue_item (ctx, rec->id, "", "", ctx->now_ms, reason);
        pm_queue_field (ctx, item, "url", "%s", rec->url);
        pm_queue_field (ctx, item, "event", "%s", rec->pending_event);
        pm_queue_field (ctx, item, "attempts", "%u", rec->attempts);
        pm_queue_field (ctx, item, "last_error", "%s", rec->last_error);
        pm_queue_field (ctx, item, "failing_since", "%lld", (long long) rec->failing_since_ms);
        pm_queue_put (txn, GW_WEBHOOKS_PAUSED, pm_key (&k, "s", rec->id), item);
        pm_warn ("gateway: %s", reason);
    }
    else {
        int64_t next = ctx->now_ms + gw_ladder_ms (rec->attempts);
        if (next > deadline)
            next = deadline;
        rec->state = "RETRYING";
        rec->next_attempt_ms = next;
        pm_timer_set (txn, GW_HOOK_RETRY, rec->id, next, NULL, 0);
    }
    pm_txn_put_msg (txn, GW_WEBHOOKS, pm_key (&k, "s", rec->id), &rec->base);
    gw->hooks_changed = true;
    r->webhook = s_shown (ctx, rec, gw_log_last (txn));
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "webhook %s: attempt %u at %s failed (%s); %s", rec->id, rec->attempts,
                     rec->pending_event, rec->last_error, strcmp (rec->state, "PAUSED") == 0 ? "paused" : "will retry");
}

/* Durable timer: a RETRYING subscription's next attempt is due. */
int
gateway_on_hook_retry (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                       pm_out_t *out)
{
    gw_t *gw = ctx->app;
    pm_key_t k;
    Pm__Gateway__WebhookRecord *rec;
    if (s_get (txn, key, &k, &rec) != PM_OK || strcmp (rec->state, "RETRYING") != 0)
        return PM__V1__STATUS__OK; /* deleted or resumed meanwhile */
    rec->state = "ACTIVE";
    rec->next_attempt_ms = 0;
    pm_txn_put_msg (txn, GW_WEBHOOKS, &k, &rec->base);
    gw->hooks_changed = true;
    return PM__V1__STATUS__OK;
}

void
gateway_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    pm_queue_from_table (ctx, txn, r, "webhooks_paused",
                         "webhook subscriptions that failed for days and stopped: fix the receiver, then "
                         "pmctl webhook resume ID",
                         GW_WEBHOOKS_PAUSED, limit);
    Pm__V1__Queue *q = pm_queue_new (ctx, r, "webhooks_retrying",
                                     "webhook subscriptions waiting to retry a failed delivery (they pause after "
                                     "[gateway] webhook_pause_after)",
                                     limit);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, GW_WEBHOOKS, NULL); s.ok; pm_scan_next (&s)) {
        Pm__Gateway__WebhookRecord *rec;
        if (pm_scan_msg (&s, &pm__gateway__webhook_record__descriptor, &rec) != PM_OK
            || strcmp (rec->state, "RETRYING") != 0)
            continue;
        q->count++;
        if (q->n_items == limit)
            continue;
        char due[40];
        pm_time_format (rec->next_attempt_ms, due, sizeof due);
        Pm__V1__QueueItem *it = pm_queue_item (
            ctx, rec->id, "", "", rec->failing_since_ms,
            pm_arena_printf (ctx->arena, "%u failed attempts at %s; next at %s; last error: %s", rec->attempts,
                             rec->pending_event, due, rec->last_error));
        pm_queue_field (ctx, it, "url", "%s", rec->url);
        pm_queue_field (ctx, it, "next_attempt_ms", "%lld", (long long) rec->next_attempt_ms);
        pm_queue_add (q, it);
    }
    pm_scan_end (&s);
}
