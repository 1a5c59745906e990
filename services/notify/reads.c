/* reads.c - what notify answers without writing: a unit's contacts and
 * messages (notify.unit.get, for pmctl unit), one message, its queues
 * (dead letters, backlog, in flight, events waiting for contacts), its
 * gauges and counters, and its snapshot (the notices it delivered, so intake
 * can rebuild which units are NOTIFIED). */
#include "notify.h"

#include <stdio.h>
#include <string.h>

#define S_UNIT_MESSAGES 50
#define S_UNIT_MESSAGES_MAX 500

static Pm__V1__Owner **
s_masked_owners (pm_ctx_t *ctx, Pm__V1__Owner **owners, size_t n)
{
    Pm__V1__Owner **out = pm_arena_alloc (ctx->arena, (n + 1) * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        Pm__V1__Owner *o = pm_arena_alloc (ctx->arena, sizeof *o);
        pm__v1__owner__init (o);
        o->name = owners[i]->name;
        o->owner_key = owners[i]->owner_key;
        o->phone = (char *) (*owners[i]->phone ? notify_mask (ctx->arena, owners[i]->phone) : "");
        o->email = (char *) (*owners[i]->email ? notify_mask (ctx->arena, owners[i]->email) : "");
        out[i] = o;
    }
    return out;
}

int
notify_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__NotifyUnitGetRequest *q = req->notify_unit_get;
    if (!*q->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/1-101");
    uint32_t limit = q->limit == 0 ? S_UNIT_MESSAGES : q->limit > S_UNIT_MESSAGES_MAX ? S_UNIT_MESSAGES_MAX : q->limit;
    Pm__V1__NotifyUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__notify_unit_get_reply__init (r);
    r->unit_id = pm_arena_strdup (ctx->arena, q->unit_id);
    Pm__Notify__ContactRecord *c = notify_contacts (ctx, txn, q->unit_id);
    if (c) {
        r->estate_id = c->estate_id;
        r->owners = s_masked_owners (ctx, c->owners, c->n_owners);
        r->n_owners = c->n_owners;
    }
    r->messages = pm_arena_alloc (ctx->arena, (limit + 1) * sizeof *r->messages);
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix_rev (&s, txn, NOTIFY_BY_UNIT, pm_key (&k, "s", q->unit_id)); s.ok; pm_scan_next (&s)) {
        r->total++;
        if (r->n_messages == limit)
            continue;
        const char *id;
        Pm__Notify__MessageRecord *rec;
        pm_key_t mk;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "ss", NULL, &id) == PM_OK
            && pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&mk, "s", id), &pm__notify__message_record__descriptor, &rec)
                   == PM_OK)
            r->messages[r->n_messages++] = notify_message_view (ctx, txn, rec, false);
    }
    pm_scan_end (&s);
    if (!c && !r->total)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: notify knows no unit '%s' (no contacts from intake, no messages)", q->unit_id);
    if (!r->estate_id || !*r->estate_id)
        r->estate_id = r->n_messages ? r->messages[0]->estate_id : "";
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %zu owner(s), %u message(s)", q->unit_id, r->n_owners, r->total);
}

int
notify_on_message_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->notify_message_get->message_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "message_id: empty; expected a message id such as M0000000042");
    pm_key_t k;
    Pm__Notify__MessageRecord *rec;
    if (pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", id), &pm__notify__message_record__descriptor, &rec)
        != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "message_id: no message '%s' (ids look like M0000000042)", id);
    Pm__V1__NotifyMessageGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__notify_message_get_reply__init (r);
    r->message = notify_message_view (ctx, txn, rec, true);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s %s %s", id, rec->template_, rec->channel,
                     notify_state_name (rec->state));
}

/* --- queues -------------------------------------------------------------------------------- */

static void
s_message_items (pm_ctx_t *ctx, pm_txn_t *txn, Pm__V1__Queue *q, int table, const char *spec, uint32_t limit)
{
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, table, NULL); s.ok && q->n_items < limit; pm_scan_next (&s)) {
        const char *id = NULL;
        int rc = spec[1] ? pm_key_parse (s.key.mv_data, s.key.mv_size, "ts", NULL, &id)
                         : pm_key_parse (s.key.mv_data, s.key.mv_size, "s", &id);
        if (rc != PM_OK || !id)
            continue;
        pm_key_t k;
        Pm__Notify__MessageRecord *rec;
        if (pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", id), &pm__notify__message_record__descriptor, &rec)
            != PM_OK)
            continue;
        Pm__V1__QueueItem *item =
            pm_queue_item (ctx, rec->message_id, rec->estate_id, rec->unit_id, rec->created_ms,
                           pm_arena_printf (ctx->arena, "%s%s%s", notify_state_name (rec->state), *rec->reason ? ": " : "",
                                            rec->reason));
        pm_queue_field (ctx, item, "template", "%s", rec->template_);
        pm_queue_field (ctx, item, "channel", "%s", rec->channel);
        pm_queue_field (ctx, item, "recipient", "%s %s", rec->recipient_name, notify_mask (ctx->arena, rec->address));
        pm_queue_field (ctx, item, "attempts", "%u", rec->attempts);
        if (rec->state != PM__NOTIFY__MSG_STATE__SENDING)
            pm_queue_field (ctx, item, "due", "%s", notify_time_text (ctx->arena, rec->due_ms, ((notify_app_t *) ctx->app)->limits.tz_min));
        pm_queue_add (q, item);
    }
    pm_scan_end (&s);
}

void
notify_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    pm_queue_from_table (ctx, txn, r, "dead_letters",
                         "messages that could not be delivered (permanent gateway error, attempts or age exhausted, no "
                         "usable address): resend with `pmctl notify retry ID` after fixing the cause, or give up with "
                         "`pmctl notify drop ID`",
                         NOTIFY_DEAD, limit);
    Pm__V1__Queue *q = pm_queue_new (ctx, r, "backlog",
                                     "messages waiting to be sent (PENDING, DEFERRED by quiet hours or the daily cap, "
                                     "RETRYING after an error), by channel and due time: they go by themselves",
                                     limit);
    q->count = pm_txn_count (txn, NOTIFY_READY_SMS) + pm_txn_count (txn, NOTIFY_READY_EMAIL);
    s_message_items (ctx, txn, q, NOTIFY_READY_SMS, "ts", limit);
    s_message_items (ctx, txn, q, NOTIFY_READY_EMAIL, "ts", limit);
    q = pm_queue_new (ctx, r, "sending",
                      "messages claimed by the dispatcher: at a gateway waiting for its answer, or next in line for it "
                      "(a slow or dead gateway shows here)", limit);
    q->count = pm_txn_count (txn, NOTIFY_SENDING);
    s_message_items (ctx, txn, q, NOTIFY_SENDING, "s", limit);
    q = pm_queue_new (ctx, r, "awaiting_contacts",
                      "events whose owners notify cannot name yet (no contacts for the unit from intake): planned when "
                      "intake's unit event arrives, dead-lettered if it never does",
                      limit);
    q->count = pm_txn_count (txn, NOTIFY_AWAITING);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, NOTIFY_AWAITING, NULL); s.ok && q->n_items < limit; pm_scan_next (&s)) {
        Pm__Notify__Awaiting *a;
        if (pm_scan_msg (&s, &pm__notify__awaiting__descriptor, &a) != PM_OK || !a->event)
            continue;
        Pm__V1__QueueItem *item = pm_queue_item (ctx, a->event->id, a->event->estate_id, a->event->unit_id, a->since_ms,
                                                 pm_arena_printf (ctx->arena, "%s: no contacts for %s yet", a->event->type,
                                                                  a->event->unit_id));
        pm_queue_add (q, item);
    }
    pm_scan_end (&s);
}

/* --- gauges and counters ----------------------------------------------------------------------- */

static void
s_total (pm_ctx_t *ctx, pm_txn_t *txn, const char *metric, const char *label, const char *value, const char *meta,
         const char *help)
{
    char labels[96] = "";
    if (label)
        snprintf (labels, sizeof labels, "%s=\"%s\"", label, value);
    pm_metric_set (pm_metric (ctx->metrics, PM_COUNTER, metric, labels, help), (double) pm_meta_get_u64 (txn, meta));
}

/* Messages of a ready table (keyed by due time) due at or before now. */
static uint64_t
s_due (pm_txn_t *txn, int table, int64_t now_ms)
{
    uint64_t n = 0;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, table, NULL); s.ok; pm_scan_next (&s)) {
        int64_t due;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "ts", &due, NULL) != PM_OK)
            continue;
        if (due > now_ms)
            break;
        n++;
    }
    pm_scan_end (&s);
    return n;
}

void
notify_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_gauge (ctx->metrics, "notify_units", NULL, "Units with contacts", (double) pm_txn_count (txn, NOTIFY_CONTACTS));
    pm_gauge (ctx->metrics, "notify_contacts", NULL, "Owners who can be reached", (double) pm_meta_get_u64 (txn, "owners"));
    uint64_t ready = 0, sent = 0, dropped = 0;
    char labels[64], key[64];
    for (int ch = 0; ch < NOTIFY_NCHANNELS; ch++) {
        snprintf (labels, sizeof labels, "channel=\"%s\"", notify_channels[ch]);
        size_t backlog = pm_txn_count (txn, NOTIFY_READY_SMS + ch);
        ready += backlog;
        pm_gauge (ctx->metrics, "notify_backlog", labels,
                  "Messages waiting to be sent (PENDING, DEFERRED, RETRYING), by channel", (double) backlog);
        pm_gauge (ctx->metrics, "notify_due", labels,
                  "Messages of the backlog whose time has come, by channel: the dispatcher is on them (0 when "
                  "notify has sent all it can now; stays up while a gateway stalls or the rate limit holds them)",
                  (double) s_due (txn, NOTIFY_READY_SMS + ch, ctx->now_ms));
        snprintf (key, sizeof key, "total:sent:%s", notify_channels[ch]);
        sent += pm_meta_get_u64 (txn, key);
        s_total (ctx, txn, "notify_sent_total", "channel", notify_channels[ch], key, "Messages the gateway took");
        snprintf (key, sizeof key, "total:failed:%s", notify_channels[ch]);
        s_total (ctx, txn, "notify_failed_total", "channel", notify_channels[ch], key,
                 "Messages dead-lettered (permanent error, attempts or age exhausted, no usable address)");
    }
    static const char *const dropped_why[] = { "settled", "opted_out", "superseded", "operator" };
    for (size_t i = 0; i < sizeof dropped_why / sizeof dropped_why[0]; i++) {
        snprintf (key, sizeof key, "total:dropped:%s", dropped_why[i]);
        dropped += pm_meta_get_u64 (txn, key);
    }
    /* by state, from the queues themselves and the two waits that are counted */
    uint64_t deferred = pm_meta_get_u64 (txn, "waiting:DEFERRED"), retrying = pm_meta_get_u64 (txn, "waiting:RETRYING");
    struct {
        const char *state;
        uint64_t n;
    } by[] = {
        { "PENDING", ready > deferred + retrying ? ready - deferred - retrying : 0 },
        { "DEFERRED", deferred },
        { "RETRYING", retrying },
        { "SENDING", pm_txn_count (txn, NOTIFY_SENDING) },
        { "SENT", sent },
        { "FAILED", pm_txn_count (txn, NOTIFY_DEAD) },
        { "DROPPED", dropped },
    };
    for (size_t i = 0; i < sizeof by / sizeof by[0]; i++) {
        snprintf (labels, sizeof labels, "state=\"%s\"", by[i].state);
        pm_gauge (ctx->metrics, "notify_messages", labels,
                  "Messages by state (SENT and DROPPED: all so far; FAILED: dead letters waiting)", (double) by[i].n);
    }
    pm_gauge (ctx->metrics, "notify_dead_letters", NULL, "Dead letters waiting for an operator",
              (double) pm_txn_count (txn, NOTIFY_DEAD));
    pm_gauge (ctx->metrics, "notify_awaiting_contacts", NULL, "Events waiting for their unit's contacts",
              (double) pm_txn_count (txn, NOTIFY_AWAITING));
    for (size_t i = 0; i < sizeof dropped_why / sizeof dropped_why[0]; i++) {
        snprintf (key, sizeof key, "total:dropped:%s", dropped_why[i]);
        s_total (ctx, txn, "notify_dropped_total", "reason", dropped_why[i], key,
                 "Messages given up before they went: invoice settled, opted out, superseded, by an operator");
    }
    static const char *const deferred_why[] = { "quiet_hours", "daily_cap" };
    for (size_t i = 0; i < sizeof deferred_why / sizeof deferred_why[0]; i++) {
        snprintf (key, sizeof key, "total:deferred:%s", deferred_why[i]);
        s_total (ctx, txn, "notify_deferred_total", "reason", deferred_why[i], key, "Messages held back to a later time");
    }
    static const char *const skipped[] = { "no_phone", "no_email", "past", "no_unit" };
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        snprintf (key, sizeof key, "total:skipped:%s", skipped[i]);
        s_total (ctx, txn, "notify_skipped_total", "reason", skipped[i], key,
                 "Messages not made: an optional channel without address, a reminder already past");
    }
    s_total (ctx, txn, "notify_messages_created_total", NULL, NULL, "msg_seq", "Messages planned from events");
    s_total (ctx, txn, "notify_retries_total", NULL, NULL, "total:retries", "Retryable gateway errors, retried later");
    s_total (ctx, txn, "notify_no_address_total", NULL, NULL, "total:no_address",
             "Messages dead-lettered at once: the recipient has no usable address");
    s_total (ctx, txn, "notify_unknown_staff_total", NULL, NULL, "total:unknown_staff",
             "Staff messages whose recipient is not in the staff directory");
    s_total (ctx, txn, "notify_sms_segments_total", NULL, NULL, "total:segments",
             "SMS segments sent (what the provider bills: 70 characters, 67 when concatenated)");
    s_total (ctx, txn, "notify_duplicates_total", NULL, NULL, "total:duplicates",
             "Messages not made again: their dedupe key existed");
    s_total (ctx, txn, "notify_resent_after_restart_total", NULL, NULL, "total:resent_after_restart",
             "Messages at a gateway when notify stopped, sent again after the restart (same idempotency key)");
    s_total (ctx, txn, "notify_awaiting_contacts_total", NULL, NULL, "total:awaiting_contacts",
             "Events that had to wait for their unit's contacts");
    const notify_app_t *app = ctx->app;
    if (app && app->dispatch)
        notify_dispatch_gauges (app->dispatch, ctx->metrics);
}

/* --- snapshot ------------------------------------------------------------------------------------ */

/* Every notice delivered, as notify.message.sent (so intake can rebuild NOTIFIED). */
int
notify_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap)
{
    size_t alen;
    const void *after = pm_snapshot_after (snap, &alen);
    pm_scan_t s;
    for (pm_scan_after (&s, txn, NOTIFY_NOTICES, after, alen); s.ok; pm_scan_next (&s)) {
        Pm__V1__MessageOutcome *m;
        if (pm_scan_msg (&s, &pm__v1__message_outcome__descriptor, &m) != PM_OK)
            continue;
        Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
        pm__v1__event__init (ev);
        ev->type = "notify.message.sent";
        ev->unit_id = m->unit_id;
        ev->estate_id = m->estate_id;
        ev->correlation_id = m->source_event_id;
        ev->payload_case = PM__V1__EVENT__PAYLOAD_MESSAGE;
        ev->message = m;
        if (!pm_snapshot_add (snap, ev, s.key.mv_data, s.key.mv_size))
            break;
    }
    pm_scan_end (&s);
    return PM_OK;
}
