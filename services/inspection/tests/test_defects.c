/* test_defects - the defect state machine on a real LMDB: work orders move it
 * (created -> RECTIFYING, done -> RECTIFIED, cancelled -> OPEN), the inspector
 * verifies or reopens it at a round, and its deadline is a durable timer on
 * the manual clock that emits inspection.defect.overdue once, is cancelled
 * when the defect is rectified and set again when it is reopened. */
#include "insp_test.h"

#define U1 "E01/3/2-301"

/* A unit with round 1 open. */
static void
s_round1 (void)
{
    t_checked_in (U1);
    t_start (U1, false, PM__V1__STATUS__OK);
}

/* Completes the open round 1 (every other line OK). */
static void
s_fail_round1 (void)
{
    t_all_ok (U1, PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
}

static void
test_recorded_defect_carries_what_workorder_needs (void **state)
{
    s_round1 ();
    Pm__V1__Reply *r = t_defect_sev (U1, "卫生间", "给排水", PM__V1__SEVERITY__CRITICAL, PM__V1__STATUS__OK);
    assert_non_null (strstr (r->message, "CRITICAL, rectify by 2026-12-02 09:00"));
    Pm__V1__Event *ev = t_last ("inspection.defect.recorded");
    assert_non_null (ev);
    const Pm__V1__Defect *d = ev->defect;
    assert_string_equal (ev->unit_id, U1);
    assert_string_equal (d->defect_id, U1 "#1");
    assert_string_equal (d->unit_id, U1);
    assert_string_equal (d->estate_id, "E01");
    assert_string_equal (d->building, "3");
    assert_string_equal (d->room, "卫生间");
    assert_string_equal (d->category, "给排水");
    assert_int_equal (d->severity, PM__V1__SEVERITY__CRITICAL);
    assert_string_equal (d->description, "墙面空鼓");
    assert_string_equal (d->location, "东墙窗下");
    assert_int_equal (d->n_photos, 2);
    assert_string_equal (d->photos[1], "https://photos.example.com/p/456.jpg");
    assert_string_equal (d->recorded_by, "李工");
    assert_int_equal (d->round_no, 1);
    assert_int_equal (d->state, PM__V1__DEFECT_STATE__DEFECT_OPEN);
    assert_true (d->deadline_ms - d->recorded_ms == 86400000LL); /* critical: 1d by default */
    assert_true (ev->at_ms == d->recorded_ms);
    t_defect_sev (U1, "卫生间", "地面", PM__V1__SEVERITY__MAJOR, PM__V1__STATUS__OK);
    d = t_last ("inspection.defect.recorded")->defect;
    assert_true (d->deadline_ms - d->recorded_ms == 3 * 86400000LL);
    t_defect_sev (U1, "卫生间", "门窗", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__OK);
    d = t_last ("inspection.defect.recorded")->defect;
    assert_true (d->deadline_ms - d->recorded_ms == 7 * 86400000LL);
    assert_string_equal (d->defect_id, U1 "#3");
}

static void
test_deadlines_from_config (void **state)
{
    t_teardown (state);
    t_setup_with (state, "[inspection]\ndeadline_minor = 10d\ndeadline_major = 36h\ndeadline_critical = 4h\n");
    s_round1 ();
    t_defect_sev (U1, "客厅", "电气", PM__V1__SEVERITY__CRITICAL, PM__V1__STATUS__OK);
    const Pm__V1__Defect *d = t_last ("inspection.defect.recorded")->defect;
    assert_true (d->deadline_ms - d->recorded_ms == 4 * 3600000LL);
    t_defect_sev (U1, "客厅", "门窗", PM__V1__SEVERITY__MAJOR, PM__V1__STATUS__OK);
    d = t_last ("inspection.defect.recorded")->defect;
    assert_true (d->deadline_ms - d->recorded_ms == 36 * 3600000LL);
}

static void
test_overdue_once_per_deadline_and_in_the_queue (void **state)
{
    s_round1 ();
    char crit[64], major[64], minor[64];
    t_defect_sev (U1, "厨房", "燃气", PM__V1__SEVERITY__CRITICAL, PM__V1__STATUS__OK);
    strcpy (crit, t_last ("inspection.defect.recorded")->defect->defect_id);
    t_defect_sev (U1, "厨房", "地面", PM__V1__SEVERITY__MAJOR, PM__V1__STATUS__OK);
    strcpy (major, t_last ("inspection.defect.recorded")->defect->defect_id);
    t_defect_sev (U1, "厨房", "门窗", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__OK);
    strcpy (minor, t_last ("inspection.defect.recorded")->defect->defect_id);
    s_fail_round1 ();
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", major);
    t_order ("created", oid, major, PM__V1__ORDER_STATE__ORDER_OPEN);

    size_t before = g->nlog;
    t_advance ("23h59m");
    assert_int_equal (t_count (before, "inspection.defect.overdue"), 0);
    t_advance ("2m");
    assert_int_equal (t_count (before, "inspection.defect.overdue"), 1);
    Pm__V1__Event *ev = t_last ("inspection.defect.overdue");
    assert_string_equal (ev->defect->defect_id, crit);
    assert_true (ev->defect->overdue);
    Pm__V1__Queue *q = pmt_queue (g->f->d, "overdue_defects");
    assert_int_equal (q->count, 1);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, crit);
    assert_non_null (it);
    assert_string_equal (pmt_queue_field (it, "category"), "燃气");
    assert_non_null (strstr (it->reason, "CRITICAL"));

    /* the rest fall due; nothing fires twice */
    t_advance ("3d");
    t_advance ("4d");
    t_advance ("30d");
    assert_int_equal (t_count (before, "inspection.defect.overdue"), 3);
    assert_int_equal (pmt_queue (g->f->d, "overdue_defects")->count, 3);
    /* the RECTIFYING one says which order to chase */
    it = pmt_queue_item (pmt_queue (g->f->d, "overdue_defects"), major);
    assert_string_equal (pmt_queue_field (it, "order_id"), oid);
    Pm__V1__InspectionKpi *k = t_kpi ("E01")->estate;
    assert_int_equal (k->overdue, 3);
    assert_int_equal (k->overdue_open, 3);

    /* rectified late: out of the queue, still counted as having gone overdue */
    t_order ("done", oid, major, PM__V1__ORDER_STATE__DONE);
    assert_int_equal (pmt_queue (g->f->d, "overdue_defects")->count, 2);
    assert_null (pmt_queue_item (pmt_queue (g->f->d, "overdue_defects"), major));
    k = t_kpi ("E01")->estate;
    assert_int_equal (k->overdue, 3);
    assert_int_equal (k->overdue_open, 2);
    assert_true (t_last ("inspection.defect.rectified")->defect->overdue);
    assert_int_equal (pmt_metric (g->f->d, "inspection_defects_overdue_open", "estate=\"E01\""), 2);
}

static void
test_rectified_in_time_never_goes_overdue_and_reopen_sets_a_new_deadline (void **state)
{
    s_round1 ();
    char d1[64];
    strcpy (d1, t_defect (U1, "客厅", "墙面/天花")); /* MAJOR: 3 days */
    s_fail_round1 ();
    t_advance ("2d");
    t_rectify (d1);
    size_t before = g->nlog;
    t_advance ("5d");
    assert_int_equal (t_count (before, "inspection.defect.overdue"), 0);

    t_start (U1, false, PM__V1__STATUS__OK);
    Pm__V1__Reply *r = t_reopen (d1, "墙面仍有裂缝", PM__V1__STATUS__OK);
    const Pm__V1__Defect *d = r->inspection_defect_reopen->defect;
    int64_t reopened_at = pm_clock_now_ms (pm_daemon_clock (g->f->d));
    assert_true (d->deadline_ms == reopened_at + 3 * 86400000LL);
    assert_false (d->overdue);
    assert_int_equal (d->rectified_ms, 0);
    t_complete (U1, PM__V1__STATUS__OK);
    t_advance ("2d23h");
    assert_int_equal (t_count (before, "inspection.defect.overdue"), 0);
    t_advance ("1h");
    assert_int_equal (t_count (before, "inspection.defect.overdue"), 1);
    assert_true (t_last ("inspection.defect.overdue")->defect->deadline_ms == reopened_at + 3 * 86400000LL);
}

static void
test_verify_and_reopen_need_a_rectified_defect_and_a_round (void **state)
{
    s_round1 ();
    char d1[64];
    strcpy (d1, t_defect (U1, "阳台", "给排水"));
    s_fail_round1 ();
    size_t before = g->nlog;
    Pm__V1__Reply *r = t_verify (d1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "is OPEN (no work order on it yet)"));
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", d1);
    t_order ("created", oid, d1, PM__V1__ORDER_STATE__ORDER_OPEN);
    t_order ("assigned", oid, d1, PM__V1__ORDER_STATE__ASSIGNED);
    r = t_verify (d1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "RECTIFYING (work order WO-"));
    t_order ("done", oid, d1, PM__V1__ORDER_STATE__DONE);
    r = t_verify (d1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "start round 2"));
    r = t_reopen (d1, "still leaking", PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "start round 2"));
    t_start (U1, false, PM__V1__STATUS__OK);
    r = t_reopen (d1, "  ", PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "reason: empty"));
    r = t_verify ("E01/3/2-301", PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "unit#number"));
    r = t_verify ("E01/3/2-301#0", PM__V1__STATUS__INVALID);
    r = t_verify ("E01/3/2-301#9", PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "#1 to #1"));
    r = t_verify ("E09/1/1-101#1", PM__V1__STATUS__NOT_FOUND);
    t_verify (d1, PM__V1__STATUS__OK);
    r = t_verify (d1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "VERIFIED already"));
    /* one verified event, after the two order moves */
    assert_int_equal (t_count (before, "inspection.defect.verified"), 1);
    assert_int_equal (t_count (before, "inspection.defect.rectifying"), 1); /* assigned changes nothing */
    Pm__V1__Event *ev = t_last ("inspection.defect.verified");
    assert_int_equal (ev->defect->state, PM__V1__DEFECT_STATE__VERIFIED);
    assert_true (ev->defect->verified_ms == ev->at_ms);
    assert_string_equal (ev->defect->order_id, oid);
    /* later order events (confirmed, archived) change nothing */
    before = g->nlog;
    t_order ("confirmed", oid, d1, PM__V1__ORDER_STATE__CONFIRMED);
    t_order ("archived", oid, d1, PM__V1__ORDER_STATE__ARCHIVED);
    assert_int_equal (g->nlog, before);
}

static void
test_a_cancelled_order_puts_the_defect_back_to_open (void **state)
{
    s_round1 ();
    char d1[64];
    strcpy (d1, t_defect (U1, "卧室", "门窗"));
    s_fail_round1 ();
    t_order ("created", "WO-A", d1, PM__V1__ORDER_STATE__ORDER_OPEN);
    size_t before = g->nlog;
    t_order ("cancelled", "WO-A", d1, PM__V1__ORDER_STATE__CANCELLED);
    assert_int_equal (g->nlog, before); /* no event fits (see defects.c) */
    Pm__V1__DefectView *v = t_defect_view (t_unit (U1), d1);
    assert_int_equal (v->defect->state, PM__V1__DEFECT_STATE__DEFECT_OPEN);
    assert_string_equal (v->history[v->n_history - 1]->what, "order_cancelled");
    Pm__V1__Reply *r = t_verify (d1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "work order WO-A was cancelled"));
    /* a new order takes over; the old one's events are ignored */
    t_order ("created", "WO-B", d1, PM__V1__ORDER_STATE__ORDER_OPEN);
    assert_string_equal (t_last ("inspection.defect.rectifying")->defect->order_id, "WO-B");
    before = g->nlog;
    t_order ("done", "WO-C", d1, PM__V1__ORDER_STATE__DONE);
    assert_int_equal (g->nlog, before);
    t_order ("done", "WO-B", d1, PM__V1__ORDER_STATE__DONE);
    assert_int_equal (t_count (before, "inspection.defect.rectified"), 1);
    assert_int_equal (t_count (before, "inspection.reinspection.due"), 1);
}

static void
test_orders_that_are_not_for_defects_are_ignored_and_strangers_dead_lettered (void **state)
{
    s_round1 ();
    char d1[64];
    strcpy (d1, t_defect (U1, "卧室", "电气"));
    /* a repair order */
    Pm__V1__WorkOrder o = PM__V1__WORK_ORDER__INIT;
    o.order_id = "WO-R1";
    o.source = PM__V1__ORDER_SOURCE__REPAIR;
    o.state = PM__V1__ORDER_STATE__DONE;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.source = "workorder";
    ev.seq = ++g->wo_seq;
    ev.id = "workorder:x";
    ev.type = "workorder.order.done";
    ev.payload_case = PM__V1__EVENT__PAYLOAD_ORDER;
    ev.order = &o;
    size_t before = g->nlog;
    pmt_event_applied (g->f->d, &ev);
    assert_int_equal (pmt_queue (g->f->d, "dead_events")->count, 0);
    /* an order for a defect inspection does not know, and one with a malformed id */
    Pm__V1__Reply *r = t_order ("created", "WO-X", U1 "#7", PM__V1__ORDER_STATE__ORDER_OPEN);
    assert_int_equal (r->status, PM__V1__STATUS__NOT_FOUND);
    r = t_order ("created", "WO-Y", "not-a-defect", PM__V1__ORDER_STATE__ORDER_OPEN);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    Pm__V1__Queue *q = pmt_queue (g->f->d, "dead_events");
    assert_int_equal (q->count, 2);
    assert_true (pm_daemon_applied (g->f->d, "workorder") == g->wo_seq); /* the cursor moved on */
    assert_int_equal (g->nlog, before);
    assert_int_equal (t_defect_view (t_unit (U1), d1)->defect->state, PM__V1__DEFECT_STATE__DEFECT_OPEN);
}

static void
test_an_event_replayed_is_applied_once (void **state)
{
    s_round1 ();
    char d1[64];
    strcpy (d1, t_defect (U1, "卧室", "电气"));
    s_fail_round1 ();
    Pm__V1__WorkOrder o = PM__V1__WORK_ORDER__INIT;
    o.order_id = "WO-1";
    o.source = PM__V1__ORDER_SOURCE__DEFECT;
    o.defect_id = d1;
    o.state = PM__V1__ORDER_STATE__ORDER_OPEN;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.source = "workorder";
    ev.seq = ++g->wo_seq;
    ev.id = "workorder:1";
    ev.type = "workorder.order.created";
    ev.payload_case = PM__V1__EVENT__PAYLOAD_ORDER;
    ev.order = &o;
    pmt_event_applied (g->f->d, &ev);
    pmt_event_ignored (g->f->d, &ev);
    Pm__V1__DefectView *v = t_defect_view (t_unit (U1), d1);
    assert_int_equal (v->n_history, 2); /* recorded, rectifying: once */
    assert_int_equal (pmt_metric (g->f->d, "pm_consumer_applied_total", "source=\"workorder\""), 1);
}

static void
test_the_deadline_survives_a_restart (void **state)
{
    s_round1 ();
    char d1[64];
    strcpy (d1, t_defect (U1, "客厅", "消防"));
    pmt_fixture_restart (g->f);
    pmt_clock_set (g->f->d, "2026-12-10T01:00:00Z");
    t_harvest ();
    Pm__V1__Event *ev = t_last ("inspection.defect.overdue");
    assert_non_null (ev);
    assert_string_equal (ev->defect->defect_id, d1);
    assert_int_equal (pmt_queue (g->f->d, "overdue_defects")->count, 1);
}

static void
test_history_says_who_when_and_what (void **state)
{
    s_round1 ();
    char d1[64];
    strcpy (d1, t_defect (U1, "厨房", "给排水"));
    s_fail_round1 ();
    t_rectify (d1);
    t_start (U1, false, PM__V1__STATUS__OK);
    t_reopen (d1, "仍渗水", PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", d1);
    t_order ("reopened", oid, d1, PM__V1__ORDER_STATE__ASSIGNED);
    t_advance ("1d");
    t_order ("done", oid, d1, PM__V1__ORDER_STATE__DONE);
    t_start (U1, false, PM__V1__STATUS__OK);
    t_verify (d1, PM__V1__STATUS__OK);
    Pm__V1__DefectView *v = t_defect_view (t_unit (U1), d1);
    const char *whats[] = { "recorded", "rectifying", "rectified", "reopened", "rectifying", "rectified", "verified" };
    Pm__V1__DefectState states[] = { PM__V1__DEFECT_STATE__DEFECT_OPEN,  PM__V1__DEFECT_STATE__RECTIFYING,
                                     PM__V1__DEFECT_STATE__RECTIFIED,    PM__V1__DEFECT_STATE__DEFECT_OPEN,
                                     PM__V1__DEFECT_STATE__RECTIFYING,   PM__V1__DEFECT_STATE__RECTIFIED,
                                     PM__V1__DEFECT_STATE__VERIFIED };
    assert_int_equal (v->n_history, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal (v->history[i]->what, whats[i]);
        assert_int_equal (v->history[i]->state, states[i]);
        assert_true (v->history[i]->at_ms > 0);
        assert_true (*v->history[i]->by);
    }
    assert_string_equal (v->history[0]->by, "李工");
    assert_string_equal (v->history[1]->by, "王师傅");
    assert_string_equal (v->history[1]->order_id, oid);
    assert_string_equal (v->history[3]->reason, "仍渗水");
    assert_int_equal (v->history[3]->round_no, 2);
    assert_int_equal (v->history[6]->round_no, 3);
    assert_true (v->history[5]->at_ms - v->history[4]->at_ms == 86400000LL);
}

static void
test_a_due_reinspection_is_withdrawn_when_an_order_goes_back_to_work (void **state)
{
    s_round1 ();
    char d1[64], d2[64];
    strcpy (d1, t_defect (U1, "客厅", "地面"));
    strcpy (d2, t_defect (U1, "厨房", "地面"));
    s_fail_round1 ();
    t_rectify (d1);
    t_rectify (d2);
    assert_int_equal (t_count (0, "inspection.reinspection.due"), 1);
    assert_int_equal (pmt_queue (g->f->d, "reinspections_due")->count, 1);
    /* the owner's complaint reopens d2's order before the inspector comes */
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", d2);
    t_order ("rejected", oid, d2, PM__V1__ORDER_STATE__ASSIGNED);
    assert_int_equal (t_last ("inspection.defect.rectifying")->defect->state, PM__V1__DEFECT_STATE__RECTIFYING);
    assert_int_equal (pmt_queue (g->f->d, "reinspections_due")->count, 0);
    assert_int_equal (t_unit (U1)->status, PM__V1__INSPECTION_STATUS__INSPECTION_FAILED);
    t_order ("done", oid, d2, PM__V1__ORDER_STATE__DONE);
    assert_int_equal (t_count (0, "inspection.reinspection.due"), 2);
    assert_int_equal (pmt_queue (g->f->d, "reinspections_due")->count, 1);
}

static void
test_work_rejected_after_rectification_is_under_its_deadline_again (void **state)
{
    s_round1 ();
    char late[64], early[64];
    strcpy (late, t_defect (U1, "客厅", "地面"));  /* MAJOR: 3 days */
    strcpy (early, t_defect (U1, "厨房", "地面"));
    s_fail_round1 ();
    t_order ("created", "WO-L", late, PM__V1__ORDER_STATE__ORDER_OPEN);
    t_rectify (early);
    t_advance ("3d1m");
    assert_int_equal (t_count (0, "inspection.defect.overdue"), 1);
    t_order ("done", "WO-L", late, PM__V1__ORDER_STATE__DONE);
    assert_int_equal (pmt_queue (g->f->d, "overdue_defects")->count, 0);
    assert_int_equal (t_kpi ("E01")->estate->overdue_open, 0);
    /* both orders are rejected: the late one is overdue again at once (no second event),
     * the early one's old deadline has passed meanwhile: it goes overdue now */
    size_t before = g->nlog;
    t_order ("rejected", "WO-L", late, PM__V1__ORDER_STATE__ASSIGNED);
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", early);
    t_order ("rejected", oid, early, PM__V1__ORDER_STATE__ASSIGNED);
    t_advance ("1s");
    assert_int_equal (t_count (before, "inspection.defect.overdue"), 1);
    assert_string_equal (t_last ("inspection.defect.overdue")->defect->defect_id, early);
    Pm__V1__Queue *q = pmt_queue (g->f->d, "overdue_defects");
    assert_int_equal (q->count, 2);
    assert_non_null (pmt_queue_item (q, late));
    Pm__V1__InspectionKpi *k = t_kpi ("E01")->estate;
    assert_int_equal (k->overdue, 2);
    assert_int_equal (k->overdue_open, 2);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_recorded_defect_carries_what_workorder_needs, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_deadlines_from_config, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_overdue_once_per_deadline_and_in_the_queue, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_rectified_in_time_never_goes_overdue_and_reopen_sets_a_new_deadline,
                                         t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_verify_and_reopen_need_a_rectified_defect_and_a_round, t_setup,
                                         t_teardown),
        cmocka_unit_test_setup_teardown (test_a_cancelled_order_puts_the_defect_back_to_open, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_orders_that_are_not_for_defects_are_ignored_and_strangers_dead_lettered,
                                         t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_an_event_replayed_is_applied_once, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_the_deadline_survives_a_restart, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_history_says_who_when_and_what, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_a_due_reinspection_is_withdrawn_when_an_order_goes_back_to_work, t_setup,
                                         t_teardown),
        cmocka_unit_test_setup_teardown (test_work_rejected_after_rectification_is_under_its_deadline_again, t_setup,
                                         t_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
