/* test_timer - durable timers: set, move, cancel, fire at the due time (also
 * across a restart, on the manual clock), and a failing timer dead-lettered
 * rather than dropped. Runs the "pub" test daemon on a real LMDB. */
#include "support.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_setup (void **state)
{
    *state = pmt_fixture_new (&pmt_pub_spec, NULL);
    pmt_clock_set (((pmt_fixture_t *) *state)->d, "2026-12-01T09:00:00Z");
    return 0;
}

static int
s_teardown (void **state)
{
    pmt_fixture_destroy ((pmt_fixture_t **) state);
    return 0;
}

static void
s_cmd (pm_daemon_t *d, const char *id, const char *method, const char *key)
{
    Pm__V1__Request *r = pmt_req (id, method, key);
    Pm__V1__Reply *rep = pmt_apply (d, r);
    if (rep->status != PM__V1__STATUS__OK)
        fail_msg ("%s %s: %s", method, key, rep->message);
    pmt_req_free (r);
}

static bool
s_fired (pm_daemon_t *d, const char *key)
{
    char k[64];
    snprintf (k, sizeof k, "fired:%s", key);
    char *v = pmt_kv (d, k);
    free (v);
    return v != NULL;
}

static double
s_pending (pm_daemon_t *d)
{
    return pmt_metric (d, "pm_timers_pending", "");
}

static void
test_fires_at_its_due_time (void **state)
{
    pmt_fixture_t *f = *state;
    s_cmd (f->d, "t1", "test.timer", "remind");
    assert_int_equal (s_pending (f->d), 1);
    pmt_clock_advance (f->d, "59m");
    assert_false (s_fired (f->d, "remind"));
    pmt_clock_advance (f->d, "1m");
    assert_true (s_fired (f->d, "remind"));
    char *v = pmt_kv (f->d, "fired:remind");
    assert_string_equal (v, "payload");
    free (v);
    assert_non_null (pmt_emitted_type (f->d, "test.fired"));
    assert_int_equal (s_pending (f->d), 0);
    assert_int_equal (pmt_metric (f->d, "pm_timers_fired_total", ""), 1);
}

static void
test_setting_again_moves_it (void **state)
{
    pmt_fixture_t *f = *state;
    s_cmd (f->d, "t1", "test.timer", "sla");     /* due 10:00 */
    pmt_clock_advance (f->d, "30m");
    s_cmd (f->d, "t2", "test.timer", "sla");     /* moved to 10:30: one timer, not two */
    assert_int_equal (s_pending (f->d), 1);
    pmt_clock_advance (f->d, "31m");             /* 10:01: the old due time has passed */
    assert_false (s_fired (f->d, "sla"));
    pmt_clock_advance (f->d, "29m");             /* 10:30 */
    assert_true (s_fired (f->d, "sla"));
    assert_int_equal (pmt_metric (f->d, "pm_timers_fired_total", ""), 1);
    assert_int_equal (s_pending (f->d), 0);
}

static void
test_cancelled_never_fires (void **state)
{
    pmt_fixture_t *f = *state;
    s_cmd (f->d, "t1", "test.timer", "dun");
    s_cmd (f->d, "t2", "test.timer", "other");
    s_cmd (f->d, "c1", "test.cancel", "dun");
    s_cmd (f->d, "c2", "test.cancel", "never-set"); /* absent is fine */
    assert_int_equal (s_pending (f->d), 1);
    pmt_clock_advance (f->d, "2h");
    assert_false (s_fired (f->d, "dun"));
    assert_true (s_fired (f->d, "other"));
    assert_int_equal (s_pending (f->d), 0);
}

static void
test_survives_a_restart (void **state)
{
    pmt_fixture_t *f = *state;
    s_cmd (f->d, "t1", "test.timer", "keys");
    pmt_fixture_restart (f);
    assert_int_equal (s_pending (f->d), 1);
    pmt_clock_advance (f->d, "1h"); /* the manual clock was kept too */
    assert_true (s_fired (f->d, "keys"));
}

static void
test_failing_timer_is_dead_lettered (void **state)
{
    pmt_fixture_t *f = *state;
    s_cmd (f->d, "t1", "test.timer", "boom");
    pmt_clock_advance (f->d, "1h");
    /* its writes were undone, it left the timers, and it waits for a person */
    assert_false (s_fired (f->d, "boom"));
    assert_int_equal (s_pending (f->d), 0);
    const Pm__V1__QueueItem *it = pmt_queue_item (pmt_queue (f->d, "dead_events"), "timer:test.fire:boom");
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "refused after writing"));
    assert_int_equal (pmt_metric (f->d, "pm_events_dead_total", ""), 1);
    pmt_clock_advance (f->d, "1d"); /* not retried by itself */
    assert_int_equal (pmt_metric (f->d, "pm_events_dead_total", ""), 1);
}

static bool s_seen;

static void
s_give_up (struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break (loop, EVBREAK_ALL);
}

static void
s_watch (struct ev_loop *loop, ev_timer *w, int revents)
{
    pm_daemon_t *d = w->data;
    if (s_fired (d, "soon")) {
        s_seen = true;
        ev_break (loop, EVBREAK_ALL);
    }
}

/* On the wall clock, the loop wakes for the earliest timer by itself: the
 * heartbeat tick is an hour here, so only the armed timer can fire it. */
static void
test_wall_clock_timer_wakes_the_loop (void **state)
{
    setenv ("PM_GENERAL_HEARTBEAT_MS", "3600000", 1);
    pmt_fixture_t *f = pmt_fixture_new (&pmt_pub_spec, NULL);
    unsetenv ("PM_GENERAL_HEARTBEAT_MS");
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, pm_daemon_store (f->d), NULL), PM_OK);
    pm_timer_set (&t, "test.fire", "soon", pm_clock_now_ms (pm_daemon_clock (f->d)) + 20, "x", 1);
    assert_int_equal (pm_txn_commit (&t), PM_OK);
    pm_daemon_run (f->d);
    ev_timer watch, deadline;
    ev_timer_init (&watch, s_watch, 0.005, 0.005);
    watch.data = f->d;
    ev_timer_init (&deadline, s_give_up, 20.0, 0.0);
    ev_timer_start (f->loop, &watch);
    ev_timer_start (f->loop, &deadline);
    s_seen = false;
    ev_run (f->loop, 0);
    ev_timer_stop (f->loop, &watch);
    ev_timer_stop (f->loop, &deadline);
    assert_true (s_seen);
    pmt_fixture_destroy (&f);
}

int
main (void)
{
    pm_log_init ("test_timer", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_fires_at_its_due_time, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_setting_again_moves_it, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cancelled_never_fires, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_survives_a_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failing_timer_is_dead_lettered, s_setup, s_teardown),
        cmocka_unit_test (test_wall_clock_timer_wakes_the_loop),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
