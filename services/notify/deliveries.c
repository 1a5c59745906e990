/* deliveries.c - a message's life, in the store, one transaction at a time:
 *
 *   created  PENDING | DEFERRED (quiet hours) | DROPPED (invoice settled,
 *            opted out) | FAILED (no usable address)  - in the event's txn
 *   claimed  SENDING, attempt counted, daily cap counted - the dispatcher's
 *            claim write, which admits it again first (settled? opted out?
 *            quiet now? over the cap? -> DROPPED or DEFERRED instead)
 *   reported SENT | RETRYING (backoff, Retry-After) | FAILED (permanent,
 *            attempts or age exhausted) - the dispatcher's report write
 *
 * Every transition goes through s_unqueue / s_queue, which keep the indexes
 * that say where a message waits (ready, sending, dead_letters) and the
 * per-state counters in step with the record. A message's dedupe key (source
 * event id / template / channel / recipient hash) is stored once: the same
 * event planned twice (a replay, a rebuild) finds it and creates nothing. */
#define _GNU_SOURCE
#include "notify.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_state_names[] = {
    [PM__NOTIFY__MSG_STATE__MSG_STATE_UNSET] = "UNSET", [PM__NOTIFY__MSG_STATE__PENDING] = "PENDING",
    [PM__NOTIFY__MSG_STATE__DEFERRED] = "DEFERRED",     [PM__NOTIFY__MSG_STATE__SENDING] = "SENDING",
    [PM__NOTIFY__MSG_STATE__SENT] = "SENT",             [PM__NOTIFY__MSG_STATE__RETRYING] = "RETRYING",
    [PM__NOTIFY__MSG_STATE__FAILED] = "FAILED",         [PM__NOTIFY__MSG_STATE__DROPPED] = "DROPPED",
};

const char *
notify_state_name (int state)
{
    return state >= 0 && state <= PM__NOTIFY__MSG_STATE__DROPPED ? s_state_names[state] : "?";
}

#define ST(x) PM__NOTIFY__MSG_STATE__##x

static bool
s_waiting (int st)
{
    return st == ST (PENDING) || st == ST (DEFERRED) || st == ST (RETRYING);
}

/* --- counters ---------------------------------------------------------------------------
 *
 * Durable totals live in meta ("total:sent:sms" ...). A write that moves a
 * thousand messages would update each a thousand times, so the dispatcher's
 * writes open a tally: counts add up in memory and are written once, in the
 * same transaction, when the write ends (s_tally_flush). Outside a tally a
 * count goes to meta at once. States are not counted per transition: the
 * queues are their own counts (ready_*, sending, dead_letters), and only the
 * rarer waits (DEFERRED, RETRYING) keep a counter. */

#define S_TALLY_MAX 32

static struct {
    bool open;
    size_t n;
    char key[S_TALLY_MAX][48];
    int64_t by[S_TALLY_MAX];
} s_tally;

static void
s_tally_open (void)
{
    s_tally.open = true;
    s_tally.n = 0;
}

static void
s_add (pm_txn_t *txn, const char *what, int64_t by)
{
    if (s_tally.open) {
        for (size_t i = 0; i < s_tally.n; i++)
            if (strcmp (s_tally.key[i], what) == 0) {
                s_tally.by[i] += by;
                return;
            }
        if (s_tally.n < S_TALLY_MAX) {
            snprintf (s_tally.key[s_tally.n], sizeof s_tally.key[0], "%s", what);
            s_tally.by[s_tally.n++] = by;
            return;
        }
    }
    uint64_t v = pm_meta_get_u64 (txn, what);
    pm_meta_put_u64 (txn, what, by < 0 && (uint64_t) -by > v ? 0 : v + (uint64_t) by);
}

static void
s_tally_flush (pm_txn_t *txn)
{
    s_tally.open = false;
    for (size_t i = 0; i < s_tally.n; i++)
        if (s_tally.by[i])
            s_add (txn, s_tally.key[i], s_tally.by[i]);
    s_tally.n = 0;
}

void
notify_count (pm_txn_t *txn, const char *what, uint64_t by)
{
    s_add (txn, what, (int64_t) by);
}

static void
s_count2 (pm_txn_t *txn, const char *a, const char *b)
{
    char key[96];
    snprintf (key, sizeof key, "%s:%s", a, b);
    s_add (txn, key, 1);
}

/* --- masking ------------------------------------------------------------------------------- */

const char *
notify_mask (pm_arena_t *a, const char *address)
{
    const char *at = strchr (address, '@');
    if (at) {
        if (at == address)
            return pm_arena_strdup (a, address);
        size_t first = 1;
        while (first < (size_t) (at - address) && ((unsigned char) address[first] & 0xC0) == 0x80)
            first++;
        return pm_arena_printf (a, "%.*s***%s", (int) first, address, at);
    }
    char buf[64];
    return pm_arena_strdup (a, pm_mask_phone (address, buf, sizeof buf));
}

/* --- indexes ------------------------------------------------------------------------------- */

static int
s_ready_table (const Pm__Notify__MessageRecord *rec)
{
    return rec->channel[0] == 'e' ? NOTIFY_READY_EMAIL : NOTIFY_READY_SMS;
}

static const pm_key_t *
s_ready_key (pm_key_t *k, const Pm__Notify__MessageRecord *rec)
{
    return pm_key (k, "ts", rec->due_ms, rec->message_id);
}

/* The dead letter an operator sees in ops.queues. */
static void
s_dead_put (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Notify__MessageRecord *rec)
{
    Pm__V1__QueueItem *item = pm_queue_item (ctx, rec->message_id, rec->estate_id, rec->unit_id, ctx->now_ms,
                                             pm_arena_printf (ctx->arena,
                                                              "%s; resend with `pmctl notify retry %s`, or give up "
                                                              "with `pmctl notify drop %s`",
                                                              rec->reason, rec->message_id, rec->message_id));
    pm_queue_field (ctx, item, "template", "%s", rec->template_);
    pm_queue_field (ctx, item, "channel", "%s", rec->channel);
    pm_queue_field (ctx, item, "recipient", "%s%s%s (%s)", rec->recipient_name, *rec->address ? " " : "",
                    *rec->address ? notify_mask (ctx->arena, rec->address) : "", rec->role);
    pm_queue_field (ctx, item, "attempts", "%u", rec->attempts);
    pm_queue_field (ctx, item, "source_event", "%s %s", rec->source_event_id, rec->source_event_type);
    pm_key_t k;
    pm_queue_put (txn, NOTIFY_DEAD, pm_key (&k, "s", rec->message_id), item);
}

/* Takes rec out of the index of its state (before a transition). */
static void
s_unqueue (pm_txn_t *txn, const Pm__Notify__MessageRecord *rec)
{
    pm_key_t k;
    if (s_waiting (rec->state))
        pm_txn_del_key (txn, s_ready_table (rec), s_ready_key (&k, rec));
    else if (rec->state == ST (SENDING))
        pm_txn_del_key (txn, NOTIFY_SENDING, pm_key (&k, "s", rec->message_id));
    else if (rec->state == ST (FAILED))
        pm_txn_del_key (txn, NOTIFY_DEAD, pm_key (&k, "s", rec->message_id));
}

/* Puts rec in the index of its (new) state, counts the waits and stores it. */
static void
s_queue (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Notify__MessageRecord *rec, int old_state)
{
    pm_key_t k;
    if (s_waiting (rec->state))
        pm_txn_put_key (txn, s_ready_table (rec), s_ready_key (&k, rec), "", 0);
    else if (rec->state == ST (SENDING))
        pm_txn_put_key (txn, NOTIFY_SENDING, pm_key (&k, "s", rec->message_id), "", 0);
    else if (rec->state == ST (FAILED))
        s_dead_put (ctx, txn, rec);
    if (old_state != (int) rec->state) {
        if (old_state == ST (DEFERRED))
            s_add (txn, "waiting:DEFERRED", -1);
        else if (old_state == ST (RETRYING))
            s_add (txn, "waiting:RETRYING", -1);
        if (rec->state == ST (DEFERRED))
            s_add (txn, "waiting:DEFERRED", 1);
        else if (rec->state == ST (RETRYING))
            s_add (txn, "waiting:RETRYING", 1);
    }
    pm_txn_put_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", rec->message_id), &rec->base);
}

/* --- outcomes: the events intake (and anyone) reads -------------------------------------- */

static void
s_outcome (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__Notify__MessageRecord *rec, bool sent)
{
    Pm__V1__MessageOutcome *m = pm_arena_alloc (ctx->arena, sizeof *m);
    pm__v1__message_outcome__init (m);
    m->message_id = rec->message_id;
    m->dedupe_key = rec->dedupe_key;
    m->source_event_id = rec->source_event_id;
    m->source_event_type = rec->source_event_type;
    m->template_ = rec->template_;
    m->channel = rec->channel;
    m->recipient = (char *) (*rec->address ? notify_mask (ctx->arena, rec->address) : "");
    m->unit_id = rec->unit_id;
    m->estate_id = rec->estate_id;
    m->notice_id = rec->notice_id;
    m->attempts = rec->attempts;
    m->reason = sent ? "" : rec->reason;
    m->at_ms = ctx->now_ms;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = sent ? "notify.message.sent" : "notify.message.failed";
    ev.unit_id = rec->unit_id;
    ev.estate_id = rec->estate_id;
    ev.correlation_id = rec->source_event_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_MESSAGE;
    ev.message = m;
    pm_emit (out, txn, &ev);
    if (sent && *rec->notice_id && *rec->unit_id) { /* restated by the snapshot: intake rebuilds NOTIFIED from it */
        pm_key_t k;
        pm_txn_put_msg (txn, NOTIFY_NOTICES, pm_key (&k, "ss", rec->unit_id, rec->message_id), &m->base);
    }
}

/* A message given up: DROPPED, with why; an event says so. */
static void
s_drop (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__Notify__MessageRecord *rec, const char *what,
        const char *why)
{
    int old = rec->state;
    s_unqueue (txn, rec);
    rec->state = ST (DROPPED);
    rec->reason = (char *) why;
    s_queue (ctx, txn, rec, old);
    s_count2 (txn, "total:dropped", what);
    s_outcome (ctx, txn, out, rec, false);
}

static void
s_fail (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__Notify__MessageRecord *rec, const char *why)
{
    int old = rec->state;
    s_unqueue (txn, rec);
    rec->state = ST (FAILED);
    rec->reason = (char *) why;
    s_queue (ctx, txn, rec, old);
    s_count2 (txn, "total:failed", rec->channel);
    s_outcome (ctx, txn, out, rec, false);
}

/* The daily SMS cap spares owners a flood of texts; it is not for staff: a
 * technician's sixth assignment of the day, held until tomorrow, is an order
 * nobody knows about. */
static bool
s_capped (const Pm__Notify__MessageRecord *rec)
{
    return strcmp (rec->role, "owner") == 0;
}

/* --- admission: may it go now? ------------------------------------------------------------ */

enum { S_GO, S_WAIT, S_DROPPED };

/* Decides what rec may do at ctx->now_ms: S_GO (send it), S_WAIT (rec's state
 * and due set: DEFERRED or PENDING later) or S_DROPPED (done, evented).
 * claiming: the dispatcher wants to send it now (the daily cap counts). */
static int
s_admit (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__Notify__MessageRecord *rec, bool claiming)
{
    const notify_app_t *app = ctx->app;
    const notify_limits_t *l = &app->limits;
    int ch = notify_channel (rec->channel);
    if (rec->unless_settled && *rec->invoice_id && notify_invoice_settled (txn, rec->invoice_id)) {
        s_drop (ctx, txn, out, rec, "settled",
                pm_arena_printf (ctx->arena, "invoice %s was settled before this reminder went out", rec->invoice_id));
        return S_DROPPED;
    }
    if (notify_opted_out (txn, ch, rec->address)) {
        s_drop (ctx, txn, out, rec, "opted_out",
                pm_arena_printf (ctx->arena, "%s opted out of %s", notify_mask (ctx->arena, rec->address), rec->channel));
        return S_DROPPED;
    }
    int old = rec->state;
    if (rec->due_ms > ctx->now_ms) { /* scheduled: a reminder the day before */
        if (!claiming) {
            s_unqueue (txn, rec);
            rec->state = ST (PENDING);
            rec->reason = pm_arena_printf (ctx->arena, "scheduled for %s",
                                           notify_time_text (ctx->arena, rec->due_ms, l->tz_min));
            if (ch == NOTIFY_SMS && !rec->urgent && notify_quiet (l, rec->due_ms)) {
                rec->state = ST (DEFERRED);
                rec->due_ms = notify_quiet_end (l, rec->due_ms);
                rec->reason = pm_arena_printf (ctx->arena, "scheduled in quiet hours: goes at %s",
                                               notify_time_text (ctx->arena, rec->due_ms, l->tz_min));
            }
            s_queue (ctx, txn, rec, old);
        }
        return S_WAIT;
    }
    if (ch == NOTIFY_SMS && !rec->urgent && notify_quiet (l, ctx->now_ms)) {
        s_unqueue (txn, rec);
        rec->state = ST (DEFERRED);
        rec->due_ms = notify_quiet_end (l, ctx->now_ms);
        rec->reason = pm_arena_printf (ctx->arena, "quiet hours %02d:%02d-%02d:%02d (%s): goes at %s", l->quiet_from / 60,
                                       l->quiet_from % 60, l->quiet_to / 60, l->quiet_to % 60, l->tz_name,
                                       notify_time_text (ctx->arena, rec->due_ms, l->tz_min));
        s_queue (ctx, txn, rec, old);
        s_count2 (txn, "total:deferred", "quiet_hours");
        return S_WAIT;
    }
    if (claiming && ch == NOTIFY_SMS && !rec->urgent && l->sms_daily_cap && s_capped (rec)
        && notify_cap_get (txn, notify_local_day (l, ctx->now_ms), rec->address) >= l->sms_daily_cap) {
        s_unqueue (txn, rec);
        rec->state = ST (DEFERRED);
        rec->due_ms = notify_next_morning (l, ctx->now_ms);
        rec->reason = pm_arena_printf (ctx->arena, "daily cap: %u SMS to %s today already; goes at %s", l->sms_daily_cap,
                                       notify_mask (ctx->arena, rec->address),
                                       notify_time_text (ctx->arena, rec->due_ms, l->tz_min));
        s_queue (ctx, txn, rec, old);
        s_count2 (txn, "total:deferred", "daily_cap");
        return S_WAIT;
    }
    return S_GO;
}

/* --- creation ------------------------------------------------------------------------------ */

static uint64_t
s_fnv (const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ULL;
    }
    return h;
}

int
notify_message_create (pm_ctx_t *ctx, pm_txn_t *txn, const notify_draft_t *dr, pm_out_t *out)
{
    const char *tname = dr->rule->template_name;
    const char *who = *dr->address ? dr->address : dr->name;
    char *dedupe = pm_arena_printf (ctx->arena, "%s/%s/%s/%016llx", dr->ev->id, tname, notify_channels[dr->channel],
                                    (unsigned long long) s_fnv (who));
    pm_key_t k;
    pm_key (&k, "s", dedupe);
    if (pm_txn_has (txn, NOTIFY_DEDUPE, &k)) {
        notify_count (txn, "total:duplicates", 1);
        return txn->err;
    }
    uint64_t seq = pm_meta_get_u64 (txn, "msg_seq") + 1;
    pm_meta_put_u64 (txn, "msg_seq", seq);
    char *id = pm_arena_printf (ctx->arena, "M%010llu", (unsigned long long) seq);
    pm_txn_put_key (txn, NOTIFY_DEDUPE, &k, id, strlen (id));

    Pm__Notify__MessageRecord *rec = pm_arena_alloc (ctx->arena, sizeof *rec);
    pm__notify__message_record__init (rec);
    rec->message_id = id;
    rec->dedupe_key = dedupe;
    rec->source_event_id = dr->ev->id;
    rec->source_event_type = dr->ev->type;
    rec->template_ = (char *) tname;
    rec->channel = (char *) notify_channels[dr->channel];
    rec->address = (char *) dr->address;
    rec->recipient_name = (char *) (dr->name ? dr->name : "");
    rec->role = (char *) dr->role;
    rec->owner_key = (char *) (dr->owner_key ? dr->owner_key : "");
    rec->unit_id = (char *) (dr->unit_id ? dr->unit_id : "");
    rec->estate_id = (char *) (dr->estate_id ? dr->estate_id : "");
    rec->notice_id = (char *) (dr->notice_id ? dr->notice_id : "");
    rec->invoice_id = (char *) (dr->invoice_id ? dr->invoice_id : "");
    rec->topic = (char *) (dr->topic ? dr->topic : "");
    rec->subject = (char *) (dr->subject ? dr->subject : "");
    rec->segments = dr->channel == NOTIFY_SMS ? notify_sms_segments (dr->body) : 0;
    /* the text apart, written once: the record is rewritten at every step, the text never */
    pm_txn_put_key (txn, NOTIFY_TEXTS, pm_key (&k, "s", id), dr->body, strlen (dr->body));
    rec->urgent = dr->rule->urgent;
    rec->unless_settled = dr->rule->unless_settled;
    rec->created_ms = ctx->now_ms;
    rec->due_ms = dr->due_ms > ctx->now_ms ? dr->due_ms : ctx->now_ms;
    if (*rec->unit_id)
        pm_txn_put_key (txn, NOTIFY_BY_UNIT, pm_key (&k, "ss", rec->unit_id, id), "", 0);

    if (dr->fail_reason) { /* no usable address: a dead letter at once, counted */
        rec->reason = (char *) dr->fail_reason;
        rec->state = ST (FAILED);
        s_queue (ctx, txn, rec, 0);
        s_count2 (txn, "total:failed", rec->channel);
        notify_count (txn, "total:no_address", 1);
        s_outcome (ctx, txn, out, rec, false);
        return txn->err;
    }
    rec->state = ST (PENDING);
    s_queue (ctx, txn, rec, 0);
    if (s_admit (ctx, txn, out, rec, false) == S_DROPPED)
        return txn->err;
    if (*rec->topic)
        pm_txn_put_key (txn, NOTIFY_TOPICS, pm_key (&k, "ss", rec->topic, id), "", 0);
    if (rec->unless_settled && *rec->invoice_id)
        pm_txn_put_key (txn, NOTIFY_BY_INVOICE, pm_key (&k, "ss", rec->invoice_id, id), "", 0);
    return txn->err;
}

void
notify_drop_indexed (pm_ctx_t *ctx, pm_txn_t *txn, int table, const char *key, const char *what, const char *why,
                     pm_out_t *out)
{
    pm_key_t k;
    pm_scan_t s;
    const char **ids = NULL;
    size_t n = 0, cap = 0;
    for (pm_scan_prefix (&s, txn, table, pm_key (&k, "s", key)); s.ok; pm_scan_next (&s)) {
        const char *id;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "ss", NULL, &id) != PM_OK)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            const char **grown = pm_arena_alloc (ctx->arena, cap * sizeof *grown);
            if (n)
                memcpy (grown, ids, n * sizeof *grown);
            ids = grown;
        }
        ids[n++] = pm_arena_strdup (ctx->arena, id);
    }
    pm_scan_end (&s);
    for (size_t i = 0; i < n; i++) {
        pm_txn_del_key (txn, table, pm_key (&k, "ss", key, ids[i]));
        Pm__Notify__MessageRecord *rec;
        if (pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", ids[i]), &pm__notify__message_record__descriptor,
                            &rec)
                == PM_OK
            && s_waiting (rec->state))
            s_drop (ctx, txn, out, rec, what, why);
    }
}

/* --- the dispatcher's writes ------------------------------------------------------------------ */

void
notify_send_free (notify_send_t *m)
{
    if (!m)
        return;
    free (m->message_id);
    free (m->dedupe_key);
    free (m->template_name);
    free (m->address);
    free (m->name);
    free (m->subject);
    free (m->body);
    free (m->unit_id);
    free (m);
}

/* The text of message id (arena), "" when it has none. */
static char *
s_text (pm_txn_t *txn, pm_arena_t *a, const char *id)
{
    pm_key_t k;
    MDB_val v;
    if (pm_txn_get_key (txn, NOTIFY_TEXTS, pm_key (&k, "s", id), &v) != PM_OK)
        return "";
    char *t = pm_arena_alloc (a, v.mv_size + 1);
    memcpy (t, v.mv_data, v.mv_size);
    return t;
}

static notify_send_t *
s_send_new (pm_txn_t *txn, const Pm__Notify__MessageRecord *rec)
{
    notify_send_t *m = pm_xcalloc (1, sizeof *m);
    m->message_id = pm_xstrdup (rec->message_id);
    m->dedupe_key = pm_xstrdup (rec->dedupe_key);
    m->template_name = pm_xstrdup (rec->template_);
    m->address = pm_xstrdup (rec->address);
    m->name = pm_xstrdup (rec->recipient_name);
    m->subject = pm_xstrdup (rec->subject);
    pm_key_t k;
    MDB_val v;
    m->body = pm_txn_get_key (txn, NOTIFY_TEXTS, pm_key (&k, "s", rec->message_id), &v) == PM_OK
                  ? pm_xstrndup (v.mv_data, v.mv_size)
                  : pm_xstrdup ("");
    m->unit_id = pm_xstrdup (rec->unit_id);
    m->channel = notify_channel (rec->channel);
    m->segments = rec->segments;
    m->attempts = rec->attempts;
    return m;
}

static void
s_claim_reset (notify_claim_t *c)
{
    for (size_t i = 0; i < c->nclaimed; i++)
        notify_send_free (c->claimed[i]);
    free (c->claimed);
    c->claimed = NULL;
    c->nclaimed = 0;
}

int
notify_claim_write (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out)
{
    notify_claim_t *c = arg;
    const notify_app_t *app = ctx->app;
    s_claim_reset (c);
    s_tally_open ();
    c->claimed = pm_xcalloc (c->n + 1, sizeof *c->claimed);
    uint32_t day = notify_local_day (&app->limits, ctx->now_ms);
    bool counted = false;
    for (size_t i = 0; i < c->n; i++) {
        const char *id;
        int64_t due;
        pm_key_t k;
        if (pm_key_parse (c->keys[i], c->klens[i], "ts", &due, &id) != PM_OK)
            continue;
        Pm__Notify__MessageRecord *rec;
        int rc = pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", id), &pm__notify__message_record__descriptor, &rec);
        if (rc != PM_OK || !s_waiting (rec->state) || rec->due_ms != due || notify_channel (rec->channel) != c->channel) {
            /* an index entry its message has left: forget it (never spins the dispatcher) */
            if (rc != PM_ENOTFOUND && rc != PM_OK)
                pm_error ("message %s: stored record does not decode; its queue entry is removed", id);
            pm_txn_del_key (txn, NOTIFY_READY_SMS + c->channel, pm_key_raw (&k, c->keys[i], c->klens[i]));
            continue;
        }
        if (rec->due_ms > ctx->now_ms)
            continue; /* not yet (the clock is the batch's) */
        if (s_admit (ctx, txn, out, rec, true) != S_GO)
            continue;
        int old = rec->state;
        s_unqueue (txn, rec);
        rec->state = ST (SENDING);
        rec->attempts++;
        if (!rec->first_try_ms)
            rec->first_try_ms = ctx->now_ms;
        rec->reason = "";
        s_queue (ctx, txn, rec, old);
        if (rec->channel[0] == 's' && app->limits.sms_daily_cap && s_capped (rec)) { /* the cap counts owners' SMS */
            notify_cap_add (txn, day, rec->address);
            counted = true;
        }
        c->claimed[c->nclaimed++] = s_send_new (txn, rec);
    }
    if (counted) /* the day's counts are forgotten the day after tomorrow */
        pm_timer_set (txn, "notify.caps", "prune",
                      notify_next_morning (&app->limits, notify_next_morning (&app->limits, ctx->now_ms)), NULL, 0);
    s_tally_flush (txn);
    return PM__V1__STATUS__OK;
}

int
notify_report_write (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out)
{
    notify_report_t *r = arg;
    const notify_app_t *app = ctx->app;
    const notify_limits_t *l = &app->limits;
    s_tally_open ();
    for (size_t i = 0; i < r->n; i++) {
        const notify_result_t *res = &r->results[i];
        pm_key_t k;
        Pm__Notify__MessageRecord *rec;
        if (pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", res->message_id),
                            &pm__notify__message_record__descriptor, &rec)
                != PM_OK
            || rec->state != ST (SENDING))
            continue;
        int old = rec->state;
        const char *why = res->reason;
        switch (res->outcome) {
        case NOTIFY_OK:
            s_unqueue (txn, rec);
            rec->state = ST (SENT);
            rec->sent_ms = ctx->now_ms;
            rec->provider_ref = (char *) res->provider_ref;
            rec->reason = "";
            s_queue (ctx, txn, rec, old);
            s_count2 (txn, "total:sent", rec->channel);
            if (rec->segments)
                s_add (txn, "total:segments", rec->segments);
            s_outcome (ctx, txn, out, rec, true);
            break;
        case NOTIFY_RETRY:
            if (rec->attempts >= l->max_attempts) {
                s_fail (ctx, txn, out, rec,
                        pm_arena_printf (ctx->arena, "gave up after %u attempts; the last: %s", rec->attempts, why));
                break;
            }
            int64_t wait = notify_backoff_ms (l, rec->message_id, rec->attempts);
            if (res->retry_after_ms > wait)
                wait = res->retry_after_ms;
            if (ctx->now_ms + wait - rec->first_try_ms > l->max_age_ms) {
                s_fail (ctx, txn, out, rec,
                        pm_arena_printf (ctx->arena, "gave up: still failing after %lld min (%u attempts); the last: %s",
                                         (long long) ((ctx->now_ms - rec->first_try_ms) / 60000), rec->attempts, why));
                break;
            }
            s_unqueue (txn, rec);
            rec->state = ST (RETRYING);
            rec->due_ms = ctx->now_ms + wait;
            rec->reason = pm_arena_printf (ctx->arena, "attempt %u failed: %s; next at %s", rec->attempts, why,
                                           notify_time_text (ctx->arena, rec->due_ms, l->tz_min));
            s_queue (ctx, txn, rec, old);
            notify_count (txn, "total:retries", 1);
            break;
        default:
            s_fail (ctx, txn, out, rec, pm_arena_strdup (ctx->arena, why));
        }
    }
    s_tally_flush (txn);
    return PM__V1__STATUS__OK;
}

int
notify_requeue_write (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out)
{
    notify_requeue_t *q = arg;
    q->requeued = 0;
    size_t n = pm_txn_count (txn, NOTIFY_SENDING), i = 0;
    const char **ids = pm_arena_alloc (ctx->arena, (n + 1) * sizeof *ids);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, NOTIFY_SENDING, NULL); s.ok && i < n; pm_scan_next (&s)) {
        const char *id;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "s", &id) == PM_OK)
            ids[i++] = pm_arena_strdup (ctx->arena, id);
    }
    pm_scan_end (&s);
    for (size_t j = 0; j < i; j++) {
        pm_key_t k;
        Pm__Notify__MessageRecord *rec;
        if (pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", ids[j]), &pm__notify__message_record__descriptor,
                            &rec)
                != PM_OK
            || rec->state != ST (SENDING)) {
            pm_txn_del_key (txn, NOTIFY_SENDING, pm_key (&k, "s", ids[j]));
            continue;
        }
        int old = rec->state;
        s_unqueue (txn, rec);
        rec->state = ST (PENDING);
        rec->due_ms = ctx->now_ms;
        rec->reason = "resent after a restart: the gateway may have taken it before (same idempotency key)";
        s_queue (ctx, txn, rec, old);
        q->requeued++;
    }
    if (q->requeued)
        notify_count (txn, "total:resent_after_restart", q->requeued);
    return PM__V1__STATUS__OK;
}

/* --- operators' commands ---------------------------------------------------------------------- */

static int
s_get (pm_ctx_t *ctx, pm_txn_t *txn, const char *id, pm_out_t *out, Pm__Notify__MessageRecord **rec)
{
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "message_id: empty; expected a message id such as M0000000042 "
                                                       "(ops.queues dead_letters lists them)");
    pm_key_t k;
    int rc = pm_txn_get_msg (txn, NOTIFY_MESSAGES, pm_key (&k, "s", id), &pm__notify__message_record__descriptor, rec);
    if (rc == PM_ENOTFOUND)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "message_id: no message '%s' (ids look like M0000000042)", id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "message %s: stored record does not decode", id);
    return PM__V1__STATUS__OK;
}

bool
notify_address_ok (int channel, const char *a)
{
    if (!a || !*a)
        return false;
    size_t n = strlen (a);
    if (channel == NOTIFY_EMAIL) {
        const char *at = strchr (a, '@');
        if (!at || at == a || strchr (at + 1, '@') || strchr (a, ' '))
            return false;
        const char *dot = strrchr (at, '.');
        return dot && dot > at + 1 && dot[1];
    }
    if (a[0] == '+') {
        if (n < 8 || n > 16)
            return false;
        for (size_t i = 1; i < n; i++)
            if (!isdigit ((unsigned char) a[i]))
                return false;
        return true;
    }
    if (n != 11 || a[0] != '1' || a[1] < '3')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit ((unsigned char) a[i]))
            return false;
    return true;
}

static bool
s_address_ok (const char *channel, const char *a)
{
    return notify_address_ok (notify_channel (channel), a);
}

/* An owner's address as the contacts now hold it (corrected by a re-import). */
static const char *
s_owner_address (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Notify__MessageRecord *rec)
{
    Pm__Notify__ContactRecord *c = notify_contacts (ctx, txn, rec->unit_id);
    for (size_t i = 0; c && i < c->n_owners; i++) {
        const Pm__V1__Owner *o = c->owners[i];
        if ((*rec->owner_key && strcmp (o->owner_key, rec->owner_key) == 0)
            || (!*rec->owner_key && strcmp (o->name, rec->recipient_name) == 0))
            return rec->channel[0] == 'e' ? o->email : o->phone;
    }
    return NULL;
}

static void
s_view_reply (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__Notify__MessageRecord *rec, int which)
{
    Pm__V1__MessageView *v = notify_message_view (ctx, txn, rec, true);
    if (which == 0) {
        Pm__V1__NotifyMessageRetryReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
        pm__v1__notify_message_retry_reply__init (r);
        r->message = v;
        pm_reply_body (out, &r->base);
    }
    else {
        Pm__V1__NotifyMessageDropReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
        pm__v1__notify_message_drop_reply__init (r);
        r->message = v;
        pm_reply_body (out, &r->base);
    }
}

int
notify_on_message_retry (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    Pm__Notify__MessageRecord *rec;
    int st = s_get (ctx, txn, req->notify_message_retry->message_id, out, &rec);
    if (st != PM__V1__STATUS__OK)
        return st;
    if (rec->state != ST (FAILED))
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "message %s is %s; only a dead letter (FAILED) is resent by hand%s", rec->message_id,
                         notify_state_name (rec->state),
                         s_waiting (rec->state) ? " (this one is still queued: it goes by itself)" : "");
    const char *address = rec->address;
    if (!s_address_ok (rec->channel, address) && strcmp (rec->role, "owner") == 0) {
        const char *now = s_owner_address (ctx, txn, rec);
        if (now)
            address = now;
    }
    if (!s_address_ok (rec->channel, address))
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "message %s: %s still has no usable %s address ('%s'); correct it first (re-import the "
                         "owner, or edit the staff directory and restart notify), then retry",
                         rec->message_id, rec->recipient_name, rec->channel, notify_mask (ctx->arena, address));
    int old = rec->state;
    s_unqueue (txn, rec);
    rec->address = (char *) address;
    rec->state = ST (PENDING);
    rec->due_ms = ctx->now_ms;
    rec->attempts = 0;
    rec->first_try_ms = 0;
    rec->manual_retries++;
    rec->reason = pm_arena_printf (ctx->arena, "resent by %s", *req->actor ? req->actor : "an operator");
    s_queue (ctx, txn, rec, old);
    s_view_reply (ctx, txn, out, rec, 0);
    return pm_reply (out, PM__V1__STATUS__OK, "%s queued again (%s %s to %s)", rec->message_id, rec->template_,
                     rec->channel, notify_mask (ctx->arena, rec->address));
}

int
notify_on_message_drop (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__NotifyMessageDropRequest *q = req->notify_message_drop;
    Pm__Notify__MessageRecord *rec;
    int st = s_get (ctx, txn, q->message_id, out, &rec);
    if (st != PM__V1__STATUS__OK)
        return st;
    if (rec->state == ST (SENDING))
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "message %s is at the %s gateway (SENDING); wait for its answer, then drop it if it fails",
                         rec->message_id, rec->channel);
    if (!s_waiting (rec->state) && rec->state != ST (FAILED))
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "message %s is %s already; nothing to drop", rec->message_id,
                         notify_state_name (rec->state));
    const char *why = pm_arena_printf (ctx->arena, "dropped by %s%s%s", *req->actor ? req->actor : "an operator",
                                       *q->reason ? ": " : "", q->reason);
    if (rec->state == ST (FAILED)) { /* its .failed event went out already */
        s_unqueue (txn, rec);
        rec->state = ST (DROPPED);
        rec->reason = (char *) why;
        s_queue (ctx, txn, rec, ST (FAILED));
        notify_count (txn, "total:dropped:operator", 1);
    }
    else
        s_drop (ctx, txn, out, rec, "operator", why);
    s_view_reply (ctx, txn, out, rec, 1);
    return pm_reply (out, PM__V1__STATUS__OK, "%s dropped", rec->message_id);
}

/* --- views ------------------------------------------------------------------------------------- */

Pm__V1__MessageView *
notify_message_view (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Notify__MessageRecord *rec, bool text)
{
    Pm__V1__MessageView *v = pm_arena_alloc (ctx->arena, sizeof *v);
    pm__v1__message_view__init (v);
    v->message_id = rec->message_id;
    v->template_ = rec->template_;
    v->channel = rec->channel;
    v->recipient = (char *) (*rec->address ? notify_mask (ctx->arena, rec->address) : "");
    v->recipient_name = rec->recipient_name;
    v->role = rec->role;
    v->state = (char *) notify_state_name (rec->state);
    v->attempts = rec->attempts;
    v->created_ms = rec->created_ms;
    v->due_ms = s_waiting (rec->state) ? rec->due_ms : 0;
    v->sent_ms = rec->sent_ms;
    v->reason = rec->reason;
    v->source_event_id = rec->source_event_id;
    v->source_event_type = rec->source_event_type;
    v->segments = rec->segments;
    v->dedupe_key = rec->dedupe_key;
    v->unit_id = rec->unit_id;
    v->estate_id = rec->estate_id;
    v->notice_id = rec->notice_id;
    v->invoice_id = rec->invoice_id;
    v->urgent = rec->urgent;
    if (text) {
        v->subject = rec->subject;
        v->text = s_text (txn, ctx->arena, rec->message_id);
    }
    return v;
}
