/* test_gateway_hooks - webhook subscriptions on a real LMDB through the
 * runtime's group commit: what an admin sees in pmctl webhook list and in
 * ops.queues as deliveries fail, retry up the ladder on the manual clock,
 * pause after three days and resume; and the signature a receiver checks. */
#define _GNU_SOURCE
#include "support.h"

#include "gateway.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *s_home;

static int
s_setup (void **state)
{
    *state = pmt_fixture_new (&gateway_spec, NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    pmt_fixture_destroy ((pmt_fixture_t **) state);
    return 0;
}

static Pm__V1__GatewayWebhook *
s_create (pmt_fixture_t *f, const char *id, const char *url, const char *type, bool from_start, int want)
{
    Pm__V1__GatewayWebhookCreateRequest b = PM__V1__GATEWAY_WEBHOOK_CREATE_REQUEST__INIT;
    char *types[1] = { (char *) type };
    b.url = (char *) url;
    b.secret = "s3cret-for-signing-0001";
    b.types = types;
    b.n_types = type ? 1 : 0;
    b.from_start = from_start;
    Pm__V1__Reply *r = pmt_call_expect (f->d, id, "gateway.webhook.create", &b.base, want);
    return want == PM__V1__STATUS__OK ? r->gateway_webhook_create->webhook : NULL;
}

static Pm__V1__GatewayWebhook *
s_hook (pmt_fixture_t *f, const char *id)
{
    Pm__V1__GatewayWebhookListRequest b = PM__V1__GATEWAY_WEBHOOK_LIST_REQUEST__INIT;
    Pm__V1__Reply *r = pmt_call_expect (f->d, "list", "gateway.webhook.list", &b.base, PM__V1__STATUS__OK);
    for (size_t i = 0; i < r->gateway_webhook_list->n_webhooks; i++)
        if (strcmp (r->gateway_webhook_list->webhooks[i]->id, id) == 0)
            return r->gateway_webhook_list->webhooks[i];
    return NULL;
}

static Pm__V1__GatewayWebhook *
s_failed (pmt_fixture_t *f, const char *id, uint64_t cursor, uint64_t pos, const char *event, const char *error)
{
    static int n;
    char rid[32];
    snprintf (rid, sizeof rid, "fail-%d", ++n);
    Pm__V1__GatewayWebhookFailedRequest b = PM__V1__GATEWAY_WEBHOOK_FAILED_REQUEST__INIT;
    b.id = (char *) id;
    b.cursor = cursor;
    b.event_pos = pos;
    b.event_id = (char *) event;
    b.error = (char *) error;
    Pm__V1__Reply *r = pmt_call_expect (f->d, rid, "gateway.webhook.failed", &b.base, PM__V1__STATUS__OK);
    return r->gateway_webhook_failed->webhook;
}

static void
s_ack (pmt_fixture_t *f, const char *id, uint64_t cursor, const char *event, uint64_t delivered)
{
    static int n;
    char rid[32];
    snprintf (rid, sizeof rid, "ack-%d", ++n);
    Pm__V1__GatewayWebhookAckRequest b = PM__V1__GATEWAY_WEBHOOK_ACK_REQUEST__INIT;
    b.id = (char *) id;
    b.cursor = cursor;
    b.cursor_event = (char *) event;
    b.delivered = delivered;
    pmt_call_expect (f->d, rid, "gateway.webhook.ack", &b.base, PM__V1__STATUS__OK);
}

/* Three intake events in the log (positions 1..3). */
static void
s_events (pmt_fixture_t *f, int n)
{
    for (int i = 1; i <= n; i++) {
        pmt_unit_event_t e;
        char unit[16];
        snprintf (unit, sizeof unit, "1-10%d", i);
        pmt_unit_event (&e, (uint64_t) i, "intake.unit.registered", unit, 9000);
        pmt_event_applied (f->d, &e.ev);
    }
}

/* --- tests ------------------------------------------------------------------------------ */

static void
test_create_checks_what_it_is_given (void **state)
{
    pmt_fixture_t *f = *state;
    s_events (f, 3);
    Pm__V1__GatewayWebhook *w = s_create (f, "c1", "https://erp.example.com/hooks", "billing.invoice.", false,
                                          PM__V1__STATUS__OK);
    assert_string_equal (w->id, "WH-1");
    assert_string_equal (w->state, "ACTIVE");
    assert_int_equal (w->cursor, 3); /* new events only */
    w = s_create (f, "c2", "http://127.0.0.1:9/x", NULL, true, PM__V1__STATUS__OK);
    assert_string_equal (w->id, "WH-2");
    assert_int_equal (w->cursor, 0); /* from_start: every retained event */
    assert_int_equal (w->behind, 3);

    Pm__V1__GatewayWebhookCreateRequest b = PM__V1__GATEWAY_WEBHOOK_CREATE_REQUEST__INIT;
    b.url = "ftp://example.com/x";
    b.secret = "0123456789abcdef";
    Pm__V1__Reply *r = pmt_call_expect (f->d, "c3", "gateway.webhook.create", &b.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "url"));
    b.url = "https://ok.example.com/";
    b.secret = "short";
    r = pmt_call_expect (f->d, "c4", "gateway.webhook.create", &b.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "secret"));
    char *types[1] = { "Billing Invoice" };
    b.secret = "0123456789abcdef";
    b.types = types;
    b.n_types = 1;
    r = pmt_call_expect (f->d, "c5", "gateway.webhook.create", &b.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "types[0]"));
    assert_null (s_hook (f, "WH-3")); /* nothing was made by the refused ones */
}

static void
test_secret_is_sealed_at_rest (void **state)
{
    pmt_fixture_t *f = *state;
    s_create (f, "c1", "https://erp.example.com/hooks", NULL, false, PM__V1__STATUS__OK);
    gw_t *gw = pm_daemon_app (f->d);
    pm_txn_t t;
    assert_int_equal (pm_txn_begin_read (&t, pm_daemon_store (f->d)), PM_OK);
    pm_arena_t *a = pm_arena_new ();
    t.arena = a;
    pm_key_t k;
    Pm__Gateway__WebhookRecord *rec;
    assert_int_equal (pm_txn_get_msg (&t, GW_WEBHOOKS, pm_key (&k, "s", "WH-1"), &pm__gateway__webhook_record__descriptor,
                                      &rec),
                      PM_OK);
    assert_null (memmem (rec->secret_sealed.data, rec->secret_sealed.len, "s3cret", 6));
    char secret[257];
    assert_int_equal (gw_hook_secret (gw, rec, secret, sizeof secret), (int) strlen ("s3cret-for-signing-0001"));
    assert_string_equal (secret, "s3cret-for-signing-0001");
    pm_txn_abort (&t);
    pm_arena_destroy (&a);
}

static void
test_signature_is_hmac_sha256_of_id_timestamp_body (void **state)
{
    /* the vector is Python's: base64(hmac.new(secret, b"intake:1.1700000000.{\"a\":1}", sha256)) */
    char sig[128];
    const char *secret = "whsec-test-secret-0001";
    gw_sign (secret, strlen (secret), "intake:1", 1700000000, "{\"a\":1}", 7, sig, sizeof sig);
    assert_string_equal (sig, "v1,ts1GQjv9ZfsQHp2u7YQSIdpdZPUFfzmwuRFzC7F98/k=");
    gw_sign (secret, strlen (secret), "intake:1", 1700000001, "{\"a\":1}", 7, sig, sizeof sig);
    assert_string_not_equal (sig, "v1,ts1GQjv9ZfsQHp2u7YQSIdpdZPUFfzmwuRFzC7F98/k="); /* another timestamp */
}

static void
test_ladder_steps (void **state)
{
    assert_int_equal (gw_ladder_ms (1), 0);
    assert_int_equal (gw_ladder_ms (2), 60000);
    assert_int_equal (gw_ladder_ms (3), 300000);
    assert_int_equal (gw_ladder_ms (4), 1800000);
    assert_int_equal (gw_ladder_ms (5), 7200000);
    assert_int_equal (gw_ladder_ms (6), 21600000);
    assert_int_equal (gw_ladder_ms (7), 86400000);
    assert_int_equal (gw_ladder_ms (12), 86400000);
}

/* A receiver that keeps failing: at once, 1 min, 5 min, 30 min, 2 h, 6 h,
 * daily, the last try exactly 3 days after the first failure, then paused;
 * resumed, it starts over from its cursor. */
static void
test_failing_receiver_climbs_the_ladder_then_pauses (void **state)
{
    pmt_fixture_t *f = *state;
    s_events (f, 3);
    s_create (f, "c1", "http://127.0.0.1:9/hook", NULL, true, PM__V1__STATUS__OK);
    s_ack (f, "WH-1", 1, "intake:1", 1); /* event 1 delivered */

    int64_t t0 = pm_clock_now_ms (pm_daemon_clock (f->d));
    Pm__V1__GatewayWebhook *w = s_failed (f, "WH-1", 1, 2, "intake:2", "HTTP 500: boom");
    assert_string_equal (w->state, "RETRYING");
    assert_int_equal (w->attempts, 1);
    assert_int_equal (w->failing_since_ms, t0);
    assert_int_equal (w->next_attempt_ms, t0); /* the first retry is at once */
    assert_string_equal (w->pending_event, "intake:2");
    assert_string_equal (w->last_error, "HTTP 500: boom");
    assert_int_equal (pmt_queue (f->d, "webhooks_retrying")->count, 1);
    pmt_clock_advance (f->d, "0s"); /* the timer fires: ACTIVE again */
    assert_string_equal (s_hook (f, "WH-1")->state, "ACTIVE");

    /* each further failure waits longer */
    const char *waits[] = { "1m", "5m", "30m", "2h", "6h", "1d", "1d" };
    const int64_t ms[] = { 60000, 300000, 1800000, 7200000, 21600000, 86400000, 86400000 };
    for (int i = 0; i < 7; i++) {
        w = s_failed (f, "WH-1", 1, 2, "intake:2", "HTTP 503");
        int64_t now = pm_clock_now_ms (pm_daemon_clock (f->d));
        assert_string_equal (w->state, "RETRYING");
        assert_int_equal (w->attempts, i + 2);
        assert_int_equal (w->next_attempt_ms, now + ms[i]);
        /* not due a moment early */
        pmt_clock_advance (f->d, "1s");
        if (ms[i] > 1000)
            assert_string_equal (s_hook (f, "WH-1")->state, "RETRYING");
        pmt_clock_advance (f->d, waits[i]);
        assert_string_equal (s_hook (f, "WH-1")->state, "ACTIVE");
    }
    /* 2 d 8 h 36 min in: the next daily step would pass 3 days, so the last try is at 3 days sharp */
    w = s_failed (f, "WH-1", 1, 2, "intake:2", "HTTP 503");
    assert_string_equal (w->state, "RETRYING");
    assert_int_equal (w->next_attempt_ms, t0 + 3 * 86400000LL);
    pmt_clock_advance (f->d, "1d");
    assert_string_equal (s_hook (f, "WH-1")->state, "ACTIVE");
    w = s_failed (f, "WH-1", 1, 2, "intake:2", "connection refused");
    assert_string_equal (w->state, "PAUSED");
    assert_int_equal (w->attempts, 10);
    assert_int_equal (w->cursor, 1); /* never moved past the failing event */

    Pm__V1__Queue *q = pmt_queue (f->d, "webhooks_paused");
    assert_int_equal (q->count, 1);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, "WH-1");
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "connection refused"));
    assert_non_null (strstr (it->reason, "pmctl webhook resume WH-1"));
    assert_string_equal (pmt_queue_field (it, "event"), "intake:2");
    assert_int_equal (pmt_queue (f->d, "webhooks_retrying")->count, 0);
    assert_int_equal (pmt_metric (f->d, "gateway_webhooks_paused", ""), 1);

    /* nothing fires while paused */
    pmt_clock_advance (f->d, "7d");
    assert_string_equal (s_hook (f, "WH-1")->state, "PAUSED");

    Pm__V1__GatewayWebhookResumeRequest rb = PM__V1__GATEWAY_WEBHOOK_RESUME_REQUEST__INIT;
    rb.id = "WH-1";
    Pm__V1__Reply *r = pmt_call_expect (f->d, "resume", "gateway.webhook.resume", &rb.base, PM__V1__STATUS__OK);
    assert_string_equal (r->gateway_webhook_resume->webhook->state, "ACTIVE");
    assert_int_equal (r->gateway_webhook_resume->webhook->cursor, 1);
    assert_non_null (strstr (r->message, "after intake:1"));
    assert_int_equal (pmt_queue (f->d, "webhooks_paused")->count, 0);
    /* a new failure starts the ladder again */
    w = s_failed (f, "WH-1", 1, 2, "intake:2", "HTTP 500");
    assert_int_equal (w->attempts, 1);
    assert_string_equal (w->state, "RETRYING");
}

static void
test_ack_moves_the_cursor_forward_only_and_clears_a_failure (void **state)
{
    pmt_fixture_t *f = *state;
    s_events (f, 3);
    s_create (f, "c1", "http://127.0.0.1:9/hook", NULL, true, PM__V1__STATUS__OK);
    s_failed (f, "WH-1", 0, 1, "intake:1", "HTTP 502");
    pmt_clock_advance (f->d, "0s");
    s_ack (f, "WH-1", 2, "intake:2", 2);
    Pm__V1__GatewayWebhook *w = s_hook (f, "WH-1");
    assert_int_equal (w->cursor, 2);
    assert_string_equal (w->cursor_event, "intake:2");
    assert_int_equal (w->attempts, 0);
    assert_string_equal (w->pending_event, "");
    assert_int_equal (w->delivered, 2);
    assert_int_equal (w->behind, 1);
    s_ack (f, "WH-1", 1, "intake:1", 1); /* a late ack never moves it back */
    w = s_hook (f, "WH-1");
    assert_int_equal (w->cursor, 2);
    assert_int_equal (w->delivered, 2);
    /* a failure report for an event already delivered is not counted */
    w = s_failed (f, "WH-1", 2, 2, "intake:2", "HTTP 500");
    assert_string_equal (w->state, "ACTIVE");
    assert_int_equal (w->attempts, 0);
}

static void
test_delete_and_unknown_ids (void **state)
{
    pmt_fixture_t *f = *state;
    s_create (f, "c1", "http://127.0.0.1:9/hook", NULL, false, PM__V1__STATUS__OK);
    s_failed (f, "WH-1", 0, 1, "intake:1", "HTTP 500");
    Pm__V1__GatewayWebhookDeleteRequest db = PM__V1__GATEWAY_WEBHOOK_DELETE_REQUEST__INIT;
    db.id = "WH-1";
    pmt_call_expect (f->d, "d1", "gateway.webhook.delete", &db.base, PM__V1__STATUS__OK);
    assert_null (s_hook (f, "WH-1"));
    assert_int_equal (pmt_queue (f->d, "webhooks_retrying")->count, 0);
    assert_int_equal (pmt_metric (f->d, "pm_timers_pending", ""), 0); /* its retry timer went with it */
    Pm__V1__Reply *r = pmt_call_expect (f->d, "d2", "gateway.webhook.delete", &db.base, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "WH-1"));
    Pm__V1__GatewayWebhookResumeRequest rb = PM__V1__GATEWAY_WEBHOOK_RESUME_REQUEST__INIT;
    rb.id = "WH-9";
    pmt_call_expect (f->d, "r1", "gateway.webhook.resume", &rb.base, PM__V1__STATUS__NOT_FOUND);
    /* ids are never reused */
    Pm__V1__GatewayWebhook *w = s_create (f, "c2", "http://127.0.0.1:9/hook", NULL, false, PM__V1__STATUS__OK);
    assert_string_equal (w->id, "WH-2");
}

static void
test_retrying_state_survives_restart (void **state)
{
    pmt_fixture_t *f = *state;
    s_events (f, 2);
    s_create (f, "c1", "http://127.0.0.1:9/hook", NULL, true, PM__V1__STATUS__OK);
    s_failed (f, "WH-1", 0, 1, "intake:1", "HTTP 500");
    pmt_clock_advance (f->d, "0s");
    s_failed (f, "WH-1", 0, 1, "intake:1", "HTTP 500"); /* next in 1 min */
    pmt_fixture_restart (f);
    Pm__V1__GatewayWebhook *w = s_hook (f, "WH-1");
    assert_string_equal (w->state, "RETRYING");
    assert_int_equal (w->attempts, 2);
    pmt_clock_advance (f->d, "61s"); /* the durable timer is still there */
    assert_string_equal (s_hook (f, "WH-1")->state, "ACTIVE");
}

int
main (void)
{
    pm_log_init ("test_gateway_hooks", PM_LOG_ERROR);
    s_home = pmt_tmpdir ();
    setenv ("PM_HOME", s_home, 1); /* the gateway's key file goes there */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_create_checks_what_it_is_given, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_secret_is_sealed_at_rest, s_setup, s_teardown),
        cmocka_unit_test (test_signature_is_hmac_sha256_of_id_timestamp_body),
        cmocka_unit_test (test_ladder_steps),
        cmocka_unit_test_setup_teardown (test_failing_receiver_climbs_the_ladder_then_pauses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ack_moves_the_cursor_forward_only_and_clears_a_failure, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_delete_and_unknown_ids, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retrying_state_survives_restart, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    pmt_rmdir (s_home);
    return rc;
}
