/* test_sla - deadlines from category, priority and the owner's window across
 * days in the estates' zone, and the SLA timers on the manual clock: warned
 * before, breached at the deadline with the team lead named, moved and
 * cancelled as the order moves on, surviving a restart. */
#include "wo_test.h"

#include <time.h>

static int
s_setup (void **state)
{
    wt_t *t = wt_new (NULL);
    wt_unit (t, "E01/1-101", true);
    *state = t;
    return 0;
}

static int
s_teardown (void **state)
{
    wt_free ((wt_t **) state);
    return 0;
}

/* ms of a local (UTC+8) wall time. */
static int64_t
s_local (int y, int mo, int d, int h, int mi)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi };
    return ((int64_t) timegm (&tm) - 8 * 3600) * 1000;
}

static const char *
s_create (wt_t *t, const char *category, const char *priority, const char *window)
{
    Pm__V1__WorkorderCreateRequest b = PM__V1__WORKORDER_CREATE_REQUEST__INIT;
    b.unit_id = "E01/1-101";
    b.kind = strcmp (category, "complaint") == 0 ? "complaint" : "repair";
    b.category = (char *) category;
    b.description = "需要维修";
    b.priority = (char *) priority;
    b.preferred_window = (char *) window;
    Pm__V1__Reply *r = wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__OK);
    return wt_keep (t, r->workorder_create->order->order_id);
}

static void
s_deadlines (wt_t *t, const char *id, int64_t respond_by, int64_t complete_by)
{
    Pm__V1__WorkOrder *o = wt_get (t, id);
    if (o->respond_by_ms != respond_by || o->complete_by_ms != complete_by)
        fail_msg ("%s (%s): respond by %lld, complete by %lld; expected %lld and %lld", id, o->category,
                  (long long) o->respond_by_ms, (long long) o->complete_by_ms, (long long) respond_by,
                  (long long) complete_by);
}

static void
test_deadlines_from_category_priority_and_window (void **state)
{
    wt_t *t = *state;
    /* 2026-12-01 09:00 local: 随报随修 water, 30 min to arrive, 24 h to finish */
    s_deadlines (t, s_create (t, "water", "", ""), s_local (2026, 12, 1, 9, 30), s_local (2026, 12, 2, 9, 0));
    s_deadlines (t, s_create (t, "water", "urgent", ""), s_local (2026, 12, 1, 9, 15), s_local (2026, 12, 1, 13, 0));
    /* 土建: within 3 days = to the end of the third local day after the report's */
    s_deadlines (t, s_create (t, "civil", "", ""), s_local (2026, 12, 1, 13, 0), s_local (2026, 12, 5, 0, 0) - 1);
    s_deadlines (t, s_create (t, "general", "", ""), s_local (2026, 12, 2, 9, 0), s_local (2026, 12, 9, 0, 0) - 1);
    s_deadlines (t, s_create (t, "complaint", "", ""), s_local (2026, 12, 2, 9, 0), s_local (2026, 12, 9, 0, 0) - 1);
    /* the owner's window: arriving in it is on time; the work runs from its start */
    s_deadlines (t, s_create (t, "water", "", "2026-12-02 14:00-18:00"), s_local (2026, 12, 2, 18, 0),
                 s_local (2026, 12, 3, 14, 0));
    s_deadlines (t, s_create (t, "civil", "", "2026-12-03"), s_local (2026, 12, 4, 0, 0),
                 s_local (2026, 12, 7, 0, 0) - 1);
    /* across midnight local (16:00 UTC): one hour apart, one day apart */
    wt_advance (t, "14h30m"); /* 23:30 local */
    s_deadlines (t, s_create (t, "civil", "", ""), s_local (2026, 12, 2, 3, 30), s_local (2026, 12, 5, 0, 0) - 1);
    wt_advance (t, "1h"); /* 00:30 local, the next day */
    s_deadlines (t, s_create (t, "civil", "", ""), s_local (2026, 12, 2, 4, 30), s_local (2026, 12, 6, 0, 0) - 1);
    const char *w = s_create (t, "water", "", "2026-12-02 22:00-02:00");
    s_deadlines (t, w, s_local (2026, 12, 3, 2, 0), s_local (2026, 12, 3, 22, 0));
    assert_true (wt_get (t, w)->preferred_from_ms == s_local (2026, 12, 2, 22, 0));
}

static void
test_warning_then_breach_escalates_to_the_team_lead (void **state)
{
    wt_t *t = *state;
    const char *id = s_create (t, "water", "", "");
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 2);
    uint64_t seq = wt_last_seq (t);
    wt_advance (t, "19m");
    assert_true (wt_last_seq (t) == seq); /* not yet */
    wt_advance (t, "1m");                 /* 09:20: ten minutes before the respond-by */
    wt_events_t e = wt_events (t, seq + 1);
    assert_int_equal (e.n, 1);
    assert_string_equal (e.ev[0]->type, "workorder.sla.warning");
    assert_string_equal (e.ev[0]->sla->deadline, "respond");
    assert_true (e.ev[0]->sla->due_ms == s_local (2026, 12, 1, 9, 30));
    wt_events_free (&e);
    const Pm__V1__QueueItem *it = wt_queued (t, "about_to_breach", id);
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "respond by 2026-12-01 09:30"));
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 2); /* the same timer, moved */

    seq = wt_last_seq (t);
    wt_advance (t, "10m");
    e = wt_events (t, seq + 1);
    assert_int_equal (e.n, 1);
    assert_string_equal (e.ev[0]->type, "workorder.sla.breached");
    const Pm__V1__SlaAlert *a = e.ev[0]->sla;
    assert_string_equal (a->order_id, id);
    assert_string_equal (a->deadline, "respond");
    assert_string_equal (a->technician, "T01");
    assert_string_equal (a->team, "A");
    assert_string_equal (a->team_lead, "T01 王建国");
    /* and by name, as notify's staff directory knows people */
    assert_string_equal (a->technician_name, "王建国");
    assert_string_equal (a->team_lead_name, "王建国");
    assert_string_equal (a->category, "water");
    wt_events_free (&e);
    assert_null (wt_queued (t, "about_to_breach", id));
    it = wt_queued (t, "breached", id);
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "escalated to T01 王建国"));
    assert_string_equal (pmt_queue_field (it, "team_lead"), "T01 王建国");
    assert_true (wt_get (t, id)->respond_breached);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 1); /* complete-by only */
    assert_int_equal (pmt_metric (wt_d (t), "workorder_queue", "estate=\"E01\",queue=\"breached\""), 1);

    wt_start (t, id, PM__V1__STATUS__OK); /* late, but there: still breached until done */
    assert_non_null (wt_queued (t, "breached", id));
    wt_done (t, id, PM__V1__STATUS__OK);
    assert_null (wt_queued (t, "breached", id));
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 1); /* the sign-off reminder */
    wt_confirm (t, id, 4, PM__V1__STATUS__OK);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 0);
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-01", "", "estate");
    assert_int_equal (k->total->respond_breaches, 1);
    assert_int_equal (k->total->due, 0); /* its complete-by is tomorrow */
    k = wt_kpi (t, "E01", "2026-12-02", "", "estate");
    assert_int_equal (k->total->due, 1);
    assert_int_equal (k->total->on_time, 1);
}

static void
test_arrival_cancels_the_respond_timer (void **state)
{
    wt_t *t = *state;
    const char *id = s_create (t, "water", "", "");
    wt_advance (t, "5m");
    wt_start (t, id, PM__V1__STATUS__OK);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 1);
    uint64_t seq = wt_last_seq (t);
    wt_advance (t, "1h");
    assert_true (wt_last_seq (t) == seq); /* no respond warning nor breach */
    assert_false (wt_get (t, id)->respond_breached);
}

static void
test_complete_breach_makes_the_order_late_for_on_time_rate (void **state)
{
    wt_t *t = *state;
    const char *late = s_create (t, "civil", "", "");
    const char *ok = s_create (t, "civil", "", "");
    wt_start (t, late, PM__V1__STATUS__OK);
    wt_start (t, ok, PM__V1__STATUS__OK);
    wt_advance (t, "3d"); /* 2026-12-04 09:00 */
    wt_done (t, ok, PM__V1__STATUS__OK);
    uint64_t seq = wt_last_seq (t);
    wt_advance (t, "10h"); /* 19:00: not yet */
    assert_true (wt_last_seq (t) == seq);
    wt_advance (t, "1h"); /* 20:00: 4 h before the end of the day: the warning */
    wt_events_t e = wt_events (t, seq + 1);
    assert_int_equal (wt_count (&e, "workorder.sla.warning", late), 1);
    assert_int_equal (wt_count (&e, "workorder.sla.breached", late), 0);
    wt_events_free (&e);
    wt_advance (t, "4h"); /* 2026-12-05 00:00 */
    e = wt_events (t, seq + 1);
    assert_int_equal (wt_count (&e, "workorder.sla.breached", late), 1);
    const Pm__V1__Event *b = wt_last (&e, "workorder.sla.breached", late);
    assert_string_equal (b->sla->deadline, "complete");
    assert_true (b->sla->due_ms == s_local (2026, 12, 5, 0, 0) - 1);
    assert_int_equal (wt_count (&e, "workorder.sla.breached", ok), 0);
    wt_events_free (&e);
    assert_true (wt_get (t, late)->complete_breached);
    wt_done (t, late, PM__V1__STATUS__OK);
    /* 及时率 for 2026-12-04, the day both were due: one of two */
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-04", "", "estate");
    assert_int_equal (k->total->due, 2);
    assert_int_equal (k->total->on_time, 1);
    assert_true (k->total->on_time_rate == 0.5);
    assert_int_equal (k->total->complete_breaches, 1);
    k = wt_kpi (t, "E01", "2026-12-05", "", "estate");
    assert_int_equal (k->total->due, 0); /* the late one is not counted again when done */
    assert_int_equal (k->total->completed, 1);
}

static void
test_done_and_unsigned_joins_the_queue (void **state)
{
    wt_t *t = *state;
    const char *id = s_create (t, "water", "", "");
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    wt_advance (t, "2d23h");
    assert_null (wt_queued (t, "unsigned", id));
    wt_advance (t, "1h");
    const Pm__V1__QueueItem *it = wt_queued (t, "unsigned", id);
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "not signed by the owner"));
    wt_confirm (t, id, 5, PM__V1__STATUS__OK);
    assert_null (wt_queued (t, "unsigned", id));
}

static void
test_rejected_order_is_timed_again_but_decided_once (void **state)
{
    wt_t *t = *state;
    const char *id = s_create (t, "water", "", "");
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_advance (t, "1h");
    wt_done (t, id, PM__V1__STATUS__OK);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 1); /* sign-off reminder only */
    wt_advance (t, "1h");
    wt_reject (t, id, "仍然漏水", PM__V1__STATUS__OK);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 1); /* the complete-by again */
    uint64_t seq = wt_last_seq (t);
    wt_advance (t, "21h55m"); /* 10 minutes before the complete-by */
    wt_advance (t, "10m");
    wt_events_t e = wt_events (t, seq + 1);
    assert_int_equal (wt_count (&e, "workorder.sla.warning", id), 1);
    assert_int_equal (wt_count (&e, "workorder.sla.breached", id), 1);
    wt_events_free (&e);
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-01", "2026-12-03", "estate");
    assert_int_equal (k->total->due, 1);     /* decided by its first completion ... */
    assert_int_equal (k->total->on_time, 1); /* ... on time; the rejection counts against 合格率 */
    assert_int_equal (k->total->complete_breaches, 1);
}

static void
test_timers_survive_a_restart (void **state)
{
    wt_t *t = *state;
    const char *id = s_create (t, "water", "", "");
    pmt_fixture_restart (t->f);
    uint64_t seq = wt_last_seq (t);
    wt_advance (t, "25m"); /* the warning, and the timer moved to the breach ... */
    pmt_fixture_restart (t->f);
    wt_advance (t, "6m"); /* ... which a restart keeps */
    wt_events_t e = wt_events (t, seq + 1);
    assert_int_equal (wt_count (&e, "workorder.sla.warning", id), 1);
    assert_int_equal (wt_count (&e, "workorder.sla.breached", id), 1);
    wt_events_free (&e);
    assert_non_null (wt_queued (t, "breached", id));
}

static void
test_clock_jumping_past_the_deadline_breaches_without_a_stale_warning (void **state)
{
    wt_t *t = *state;
    const char *id = s_create (t, "water", "", "");
    uint64_t seq = wt_last_seq (t);
    wt_advance (t, "2h");
    wt_events_t e = wt_events (t, seq + 1);
    assert_int_equal (wt_count (&e, "workorder.sla.warning", id), 0);
    assert_int_equal (wt_count (&e, "workorder.sla.breached", id), 1);
    wt_events_free (&e);
}

int
main (void)
{
    pm_log_init ("test_sla", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_deadlines_from_category_priority_and_window, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_warning_then_breach_escalates_to_the_team_lead, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_arrival_cancels_the_respond_timer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_complete_breach_makes_the_order_late_for_on_time_rate, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_done_and_unsigned_joins_the_queue, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rejected_order_is_timed_again_but_decided_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timers_survive_a_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_clock_jumping_past_the_deadline_breaches_without_a_stale_warning,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
