/* test_dispatch - the dispatcher on the daemon's loop (run here until it
 * rests), with the file gateway and with a gateway whose answers the test
 * decides: each message goes once; an outcome is durable before the next
 * attempt is decided; retries back off; permanent errors and exhausted
 * attempts become dead letters; a restart resends what was at the gateway
 * with the same key; quiet hours, the daily cap and settlements hold
 * messages back at the moment they would go; the snapshot restates notices. */
#include "notify_test.h"

#include <unistd.h>

#define UNIT "E01/1-101"

static int
s_setup (void **state)
{
    *state = nt_new (NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    nt_destroy ((nt_t **) state);
    return 0;
}

/* The lines of the file gateway's file for channel. */
static int
s_lines (nt_t *t, const char *channel, const char *needle)
{
    char *path = pm_xasprintf ("%s/notify/outbox/%s.jsonl", t->f->dir, channel);
    FILE *f = fopen (path, "r");
    free (path);
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets (line, sizeof line, f))
        n += !needle || strstr (line, needle) != NULL;
    fclose (f);
    return n;
}

static void
test_file_gateway_sends_each_message_once (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), nt_li (t));
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), nt_li (t)));
    size_t sent = nt_settle_count (t, "notify.message.sent");
    assert_int_equal (sent, 3);
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", "张伟")->state, "SENT");
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", "李娜")->state, "SENT");
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "email", "张伟")->state, "SENT");
    /* what would have been sent, one line each, the idempotency key in it */
    assert_int_equal (s_lines (t, "sms", NULL), 2);
    assert_int_equal (s_lines (t, "sms", "\"to\":\"13812345678\""), 1);
    assert_int_equal (s_lines (t, "sms", "\"idempotency_key\":\"intake:2/move_in_notice/sms/"), 2);
    assert_int_equal (s_lines (t, "email", "\"subject\":\"入住通知书：翠湖花园1栋101室\""), 1);
    /* the events say which notice reached the unit (intake marks it NOTIFIED) */
    char first[24];
    assert_int_equal (nt_outbox (t, 0, "notify.message.sent", first, sizeof first), 3);
    assert_int_equal (nt_metric (t, "notify_sent_total", "channel=\"sms\""), 2);
    assert_int_equal (nt_metric (t, "notify_backlog", "channel=\"sms\""), 0);
    assert_int_equal (nt_metric (t, "notify_messages", "state=\"SENT\""), 3);
    assert_int_equal (nt_metric (t, "notify_messages", "state=\"PENDING\""), 0);
    unsigned seg = nt_get (t, nt_message (t, UNIT, "move_in_notice", "sms", "张伟")->message_id)->segments;
    assert_int_equal (nt_metric (t, "notify_sms_segments_total", ""), 2 * seg); /* both SMS, as billed */
    /* nothing more goes however often the dispatcher looks */
    nt_advance (t, "1h");
    assert_int_equal (s_lines (t, "sms", NULL), 2);
    assert_int_equal (nt_outbox (t, 0, "notify.message.sent", NULL, 0), 3);
}

static void
test_bulk_notice_drains_each_message_once (void **state)
{
    nt_t *t = *state;
    /* 400 units, a notice each: more than a claim ahead (file: 1000) in
     * claim writes of 128, all in a few commits */
    for (int i = 0; i < 400; i++) {
        char unit[32], phone[16];
        snprintf (unit, sizeof unit, "E01/9-%03d", i);
        snprintf (phone, sizeof phone, "1370000%04d", i);
        Pm__V1__Owner *o = nt_owner (t, "业主", phone, "");
        nt_unit (t, unit, o, NULL);
        nt_apply (t, nt_notice (t, unit, o, NULL));
    }
    assert_int_equal (nt_metric (t, "notify_backlog", "channel=\"sms\""), 400);
    assert_int_equal (nt_settle_count (t, "notify.message.sent"), 400);
    assert_int_equal (s_lines (t, "sms", NULL), 400);
    assert_int_equal (nt_metric (t, "notify_sent_total", "channel=\"sms\""), 400);
    assert_int_equal (nt_metric (t, "notify_backlog", "channel=\"sms\""), 0);
    assert_int_equal (pmt_queue (t->f->d, "sending")->count, 0);
    /* each number once, each message once */
    assert_int_equal (s_lines (t, "sms", "\"to\":\"13700000000\""), 1);
    assert_int_equal (s_lines (t, "sms", "\"to\":\"13700000399\""), 1);
    nt_advance (t, "1d");
    assert_int_equal (s_lines (t, "sms", NULL), 400);
}

static void
test_retryable_errors_back_off_until_sent (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_RETRY, "the SMS provider failed (503): busy");
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    nt_settle (t);
    assert_int_equal (gw->sends, 1);
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_string_equal (m->state, "RETRYING");
    assert_int_equal (m->attempts, 1);
    assert_non_null (strstr (m->reason, "attempt 1 failed: the SMS provider failed (503): busy; next at"));
    int64_t wait = m->due_ms - nt_now (t);
    assert_true (wait >= 15000 && wait <= 30000); /* retry_base 30 s, with jitter */
    /* not before its time */
    nt_advance (t, "10s");
    assert_int_equal (gw->sends, 1);
    nt_advance (t, "21s");
    assert_int_equal (gw->sends, 2);
    m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_int_equal (m->attempts, 2);
    wait = m->due_ms - nt_now (t);
    assert_true (wait >= 30000 && wait <= 60000); /* doubled */
    gw->answer = NOTIFY_OK;
    nt_advance (t, "61s");
    assert_int_equal (gw->sends, 3);
    /* each attempt went after the last one's outcome was committed: attempts 1, 2, 3 */
    assert_int_equal (gw->sent_attempt[0], 1);
    assert_int_equal (gw->sent_attempt[1], 2);
    assert_int_equal (gw->sent_attempt[2], 3);
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", NULL)->state, "SENT");
    assert_int_equal (nt_outbox (t, 0, "notify.message.sent", NULL, 0), 2); /* the sms, and the email (file) */
    assert_int_equal (nt_metric (t, "notify_retries_total", ""), 2);
}

static void
test_permanent_error_is_a_dead_letter_resent_by_hand (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_PERMANENT, "the SMS provider refused it (400): invalid number");
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    assert_int_equal (nt_settle_count (t, "notify.message.failed"), 1);
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_string_equal (m->state, "FAILED");
    char id[24];
    snprintf (id, sizeof id, "%s", m->message_id);
    Pm__V1__Queue *dead = pmt_queue (t->f->d, "dead_letters");
    assert_int_equal (dead->count, 1);
    assert_non_null (strstr (pmt_queue_item (dead, id)->reason, "the SMS provider refused it (400): invalid number"));
    nt_advance (t, "2d");
    assert_int_equal (gw->sends, 1); /* a dead letter is never retried by itself */

    gw->answer = NOTIFY_OK;
    Pm__V1__NotifyMessageRetryRequest rq = PM__V1__NOTIFY_MESSAGE_RETRY_REQUEST__INIT;
    rq.message_id = id;
    pmt_call_expect (t->f->d, "retry-1", "notify.message.retry", &rq.base, PM__V1__STATUS__OK);
    nt_settle (t);
    assert_int_equal (gw->sends, 2);
    assert_string_equal (nt_get (t, id)->state, "SENT");
    assert_int_equal (pmt_queue (t->f->d, "dead_letters")->count, 0);
}

static void
test_attempts_run_out_into_a_dead_letter (void **state)
{
    nt_t *t = *state;
    nt_destroy ((nt_t **) state);
    *state = t = nt_new ("max_attempts = 3\n");
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_RETRY, "the SMS provider cannot be reached: Couldn't connect");
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    nt_settle (t);
    nt_advance (t, "1m");
    nt_advance (t, "2m");
    assert_int_equal (gw->sends, 3);
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_string_equal (m->state, "FAILED");
    assert_string_equal (m->reason, "gave up after 3 attempts; the last: the SMS provider cannot be reached: Couldn't connect");
    nt_advance (t, "1h");
    assert_int_equal (gw->sends, 3);
    assert_int_equal (nt_metric (t, "notify_failed_total", "channel=\"sms\""), 1);
}

static void
test_restart_resends_what_was_at_the_gateway_with_the_same_key (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, -1, NULL); /* the provider takes it and never answers */
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    nt_settle (t);
    assert_int_equal (gw->sends, 1);
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_string_equal (m->state, "SENDING");
    char id[24], key[160];
    snprintf (id, sizeof id, "%s", m->message_id);
    snprintf (key, sizeof key, "%s", m->dedupe_key);
    assert_int_equal (pmt_queue (t->f->d, "sending")->count, 1);

    /* notify dies with the message at the gateway (its answer never committed) */
    pmt_fixture_restart (t->f);
    gw = nt_fake (t, NOTIFY_SMS, NOTIFY_OK, NULL);
    nt_settle (t);
    assert_int_equal (gw->sends, 1);
    assert_string_equal (gw->sent_id[0], id); /* the same message, the same dedupe key */
    assert_int_equal (gw->sent_attempt[0], 2);
    Pm__V1__MessageView *after = nt_get (t, id);
    assert_string_equal (after->state, "SENT");
    assert_string_equal (after->dedupe_key, key);
    assert_int_equal (nt_metric (t, "notify_resent_after_restart_total", ""), 1);
    /* one sent event for it in all */
    assert_int_equal (nt_outbox (t, 0, "notify.message.sent", NULL, 0), 2); /* sms + email */
}

/* The file gateway, wrapped: writes each message's line and flushes it, but
 * its answer never reaches the dispatcher (notify dies before the SENT is
 * committed). */
typedef struct {
    notify_gateway_t base;
    notify_gateway_t *file;
    int sends;
} s_unanswered_t;

static void
s_swallow (notify_send_t *m, const notify_result_t *res, void *arg)
{
    (void) m;
    (void) res;
    (void) arg;
}

static void
s_unanswered_send (notify_gateway_t *g, notify_send_t *m, notify_sent_fn done, void *arg)
{
    (void) done;
    (void) arg;
    s_unanswered_t *u = (s_unanswered_t *) g;
    u->sends++;
    u->file->send (u->file, m, s_swallow, NULL);
    u->file->flush (u->file);
}

static void
s_unanswered_destroy (notify_gateway_t *g)
{
    s_unanswered_t *u = (s_unanswered_t *) g;
    u->file->destroy (u->file);
    free (u);
}

static notify_gateway_t *
s_file_gateway (nt_t *t, int channel)
{
    char *text = pm_xasprintf ("[notify]\ndata = %s/notify\n", t->f->dir), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test", &err);
    assert_non_null (cfg);
    notify_gateway_t *g = notify_gateway_file_new (channel, cfg, &err);
    assert_non_null (g);
    pm_config_destroy (&cfg);
    free (text);
    return g;
}

static void
test_file_gateway_after_a_crash_writes_each_message_once (void **state)
{
    nt_t *t = *state;
    s_unanswered_t *u = pm_xcalloc (1, sizeof *u);
    u->base.kind = "file, unanswered";
    u->base.send = s_unanswered_send;
    u->base.destroy = s_unanswered_destroy;
    u->file = s_file_gateway (t, NOTIFY_SMS);
    notify_dispatch_set_gateway (nt_app (t)->dispatch, NOTIFY_SMS, &u->base);
    nt_unit (t, UNIT, nt_zhang (t), nt_li (t));
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), nt_li (t)));
    nt_settle (t);
    assert_int_equal (u->sends, 2);
    assert_int_equal (s_lines (t, "sms", NULL), 2); /* written, SENT not committed */
    assert_int_equal (pmt_queue (t->f->d, "sending")->count, 2);
    /* and a third line torn in the middle by the kill (its message never committed either) */
    char *path = pm_xasprintf ("%s/notify/outbox/sms.jsonl", t->f->dir);
    FILE *f = fopen (path, "a");
    fputs ("{\"message_id\":\"M0000009999\",\"written_ms\":17", f);
    fclose (f);

    /* notify restarts with the file gateway: both go again (attempt 2) with their keys */
    pmt_fixture_restart (t->f);
    assert_int_equal (nt_settle_count (t, "notify.message.sent"), 2); /* the 2 sms, sent again */
    assert_int_equal (nt_metric (t, "notify_resent_after_restart_total", ""), 2);
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", "张伟")->state, "SENT");
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", "李娜")->state, "SENT");
    /* each once in the file, and the torn line is gone: every line is whole */
    assert_int_equal (s_lines (t, "sms", NULL), 2);
    assert_int_equal (s_lines (t, "sms", "\"to\":\"13812345678\""), 1);
    assert_int_equal (s_lines (t, "sms", "M0000009999"), 0);
    f = fopen (path, "r");
    char line[8192];
    while (fgets (line, sizeof line, f))
        assert_int_equal (line[strlen (line) - 1], '\n');
    fclose (f);
    free (path);
    /* a new message after the restart is written as usual */
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL)); /* another notice event */
    nt_settle (t);
    assert_int_equal (s_lines (t, "sms", NULL), 3);
}

static void
test_quiet_hours_hold_sms_until_morning (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_OK, NULL);
    pmt_clock_set (t->f->d, NT_NIGHT);
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    nt_settle (t);
    assert_int_equal (gw->sends, 0);
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "email", NULL)->state, "SENT");
    nt_advance (t, "9h59m"); /* 07:59 */
    assert_int_equal (gw->sends, 0);
    nt_advance (t, "1m"); /* 08:00 */
    assert_int_equal (gw->sends, 1);
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", NULL)->state, "SENT");
}

static void
test_pending_message_found_in_quiet_hours_is_deferred (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_OK, NULL);
    pmt_clock_set (t->f->d, "2026-12-01T12:59:00Z"); /* 20:59: made PENDING */
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", NULL)->state, "PENDING");
    pmt_clock_set (t->f->d, "2026-12-01T13:01:00Z"); /* the dispatcher comes to it at 21:01 */
    nt_settle (t);
    assert_int_equal (gw->sends, 0);
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", NULL)->state, "DEFERRED");
}

static void
test_daily_cap_per_recipient (void **state)
{
    nt_t *t = *state;
    nt_destroy ((nt_t **) state);
    *state = t = nt_new ("sms_daily_cap = 2\n");
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_OK, NULL);
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    for (int i = 0; i < 3; i++) {
        char inv[32];
        snprintf (inv, sizeof inv, "INV-E01-00000%d", i + 1);
        nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, inv, 1000 * (i + 1), PM__V1__INVOICE_STATE__ISSUED));
        nt_settle (t);
    }
    assert_int_equal (gw->sends, 2);
    Pm__V1__NotifyUnitGetReply *u = nt_unit_get (t, UNIT);
    int deferred = 0;
    for (size_t i = 0; i < u->n_messages; i++)
        if (strcmp (u->messages[i]->channel, "sms") == 0 && strcmp (u->messages[i]->state, "DEFERRED") == 0) {
            deferred++;
            assert_non_null (strstr (u->messages[i]->reason, "daily cap: 2 SMS to 138****5678 today already; goes at 12月2日 08:00"));
        }
    assert_int_equal (deferred, 1);
    assert_int_equal (nt_metric (t, "notify_deferred_total", "reason=\"daily_cap\""), 1);
    nt_advance (t, "22h"); /* 08:00 the next day */
    assert_int_equal (gw->sends, 3);
}

/* A technician assigned many orders on a move-in day hears of each at once:
 * the cap is for owners, not for staff's work */
static void
test_daily_cap_spares_staff (void **state)
{
    nt_t *t = *state;
    nt_destroy ((nt_t **) state);
    *state = t = nt_new ("sms_daily_cap = 2\n");
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_OK, NULL);
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf (id, sizeof id, "WO-E01-00000%d", i + 1);
        nt_apply (t, nt_order (t, "workorder.order.assigned", UNIT, id, PM__V1__ORDER_SOURCE__DEFECT, "王建国"));
        nt_settle (t);
    }
    assert_int_equal (gw->sends, 4);
    assert_int_equal (nt_metric (t, "notify_deferred_total", "reason=\"daily_cap\""), 0);
    /* and they do not use up the owner's allowance */
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, "INV-E01-000001", 1000, PM__V1__INVOICE_STATE__ISSUED));
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, "INV-E01-000002", 2000, PM__V1__INVOICE_STATE__ISSUED));
    nt_settle (t);
    assert_int_equal (gw->sends, 6);
}

static void
test_settled_while_waiting_is_never_sent (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_OK, NULL);
    pmt_clock_set (t->f->d, NT_NIGHT);
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, "INV-E01-000123", 324000, PM__V1__INVOICE_STATE__ISSUED));
    nt_apply (t, nt_dunning (t, UNIT, "INV-E01-000123", "T-7", "message"));
    nt_settle (t);
    assert_int_equal (gw->sends, 0); /* night: both SMS deferred (the bill's email went: no quiet hours for email) */
    nt_apply (t, nt_invoice (t, "billing.invoice.settled", UNIT, "INV-E01-000123", 324000, PM__V1__INVOICE_STATE__SETTLED));
    nt_advance (t, "12h");
    assert_int_equal (gw->sends, 0);
    assert_int_equal (nt_metric (t, "notify_dropped_total", "reason=\"settled\""), 2); /* the bill's sms, the reminder */
    assert_string_equal (nt_message (t, UNIT, "dunning_reminder", "sms", NULL)->state, "DROPPED");
}

static void
test_provider_rate_limit_pauses_the_lane (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, NOTIFY_RETRY, "the SMS provider is rate-limiting (429, retry after 120000 ms)");
    gw->retry_after_ms = 120000;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    nt_settle (t);
    assert_int_equal (gw->sends, 1);
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_true (m->due_ms - nt_now (t) >= 120000); /* Retry-After, not the 30 s backoff */
    /* the lane waits out the pause: another message due now does not go */
    gw->answer = NOTIFY_OK;
    nt_unit (t, "E01/1-102", nt_li (t), NULL);
    nt_apply (t, nt_notice (t, "E01/1-102", nt_li (t), NULL));
    nt_settle (t);
    assert_int_equal (gw->sends, 1);
    assert_string_equal (nt_message (t, "E01/1-102", "move_in_notice", "sms", NULL)->state, "PENDING");
    assert_int_equal (nt_metric (t, "notify_provider_pauses_total", "channel=\"sms\""), 1);
}

static void
test_reads_answer_while_the_gateway_holds (void **state)
{
    nt_t *t = *state;
    nt_fake_t *gw = nt_fake (t, NOTIFY_SMS, -1, NULL);
    nt_unit (t, UNIT, nt_zhang (t), nt_li (t));
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), nt_li (t)));
    nt_settle (t);
    assert_int_equal (gw->nheld, 2);
    Pm__V1__Queue *q = pmt_queue (t->f->d, "sending");
    assert_int_equal (q->count, 2);
    assert_string_equal (pmt_queue_field (q->items[0], "channel"), "sms");
    assert_int_equal (nt_metric (t, "notify_in_flight", "channel=\"sms\""), 2);
    nt_fake_release (gw, NOTIFY_OK, "");
    nt_settle (t);
    assert_int_equal (pmt_queue (t->f->d, "sending")->count, 0);
    assert_int_equal (nt_metric (t, "notify_in_flight", "channel=\"sms\""), 0);
    assert_int_equal (nt_metric (t, "notify_sent_total", "channel=\"sms\""), 2);
}

static void
test_snapshot_restates_the_notices_delivered (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, "INV-1", 100, PM__V1__INVOICE_STATE__ISSUED));
    nt_settle (t);
    Pm__V1__EventsSnapshotRequest q = PM__V1__EVENTS_SNAPSHOT_REQUEST__INIT;
    Pm__V1__Reply *r = pmt_call (t->f->d, "", "events.snapshot", &q.base);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    Pm__V1__EventsSnapshotReply *s = r->events_snapshot;
    assert_true (s->done);
    assert_int_equal (s->n_events, 2); /* the notice's sms and email, not the bill */
    for (size_t i = 0; i < s->n_events; i++) {
        assert_string_equal (s->events[i]->type, "notify.message.sent");
        assert_true (s->events[i]->snapshot);
        assert_string_equal (s->events[i]->unit_id, UNIT);
        assert_string_equal (s->events[i]->message->notice_id, "NOTICE-E01-1");
    }
}

int
main (void)
{
    pm_log_init ("test_dispatch", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_file_gateway_sends_each_message_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bulk_notice_drains_each_message_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retryable_errors_back_off_until_sent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_permanent_error_is_a_dead_letter_resent_by_hand, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_attempts_run_out_into_a_dead_letter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_resends_what_was_at_the_gateway_with_the_same_key, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_file_gateway_after_a_crash_writes_each_message_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quiet_hours_hold_sms_until_morning, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pending_message_found_in_quiet_hours_is_deferred, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_daily_cap_per_recipient, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_daily_cap_spares_staff, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_settled_while_waiting_is_never_sent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_provider_rate_limit_pauses_the_lane, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reads_answer_while_the_gateway_holds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_restates_the_notices_delivered, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
