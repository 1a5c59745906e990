/* test_orders - the work order's state machine on a real LMDB, through the
 * runtime's group commit: what the owner, the technician and the dispatcher
 * see (replies, the order, its events), and what a refused command leaves
 * (nothing). */
#include "wo_test.h"

static int
s_setup (void **state)
{
    wt_t *t = wt_new (NULL);
    wt_unit (t, "E01/1-101", true);
    wt_unit (t, "E01/1-102", false); /* keys not handed yet */
    *state = t;
    return 0;
}

static int
s_teardown (void **state)
{
    wt_free ((wt_t **) state);
    return 0;
}

static void
test_repair_runs_from_report_to_archive (void **state)
{
    wt_t *t = *state;
    uint64_t seq0 = wt_last_seq (t);
    const char *id = wt_create (t, "E01/1-101", "water");
    assert_string_equal (id, "WO-E01-000001");
    /* E01 dispatches automatically: the least-loaded water technician, ties by id */
    Pm__V1__WorkOrder *o = wt_get (t, id);
    assert_int_equal (o->state, PM__V1__ORDER_STATE__ASSIGNED);
    assert_string_equal (o->technician, "T01");
    assert_string_equal (o->technician_name, "王建国"); /* what notify and the owner go by */
    assert_string_equal (o->team, "A");
    assert_string_equal (o->team_lead, "T01 王建国");
    assert_string_equal (o->team_lead_name, "王建国");
    assert_string_equal (o->dispatch, "auto");
    assert_string_equal (o->reporter, "张伟"); /* the unit's owner, from intake's event */
    assert_string_equal (o->category, "water");
    assert_int_equal (o->source, PM__V1__ORDER_SOURCE__REPAIR);
    assert_int_equal (wt_tech (t, "T01")->open_orders, 1);

    wt_advance (t, "10m");
    wt_start (t, id, PM__V1__STATUS__OK);
    o = wt_get (t, id);
    assert_int_equal (o->state, PM__V1__ORDER_STATE__IN_PROGRESS);
    assert_true (o->responded_ms == WT_T0_MS + 10 * WT_MIN);
    wt_advance (t, "1h");
    wt_says (wt_done (t, id, PM__V1__STATUS__OK), "DONE on time", NULL);
    assert_int_equal (wt_tech (t, "T01")->open_orders, 0);
    Pm__V1__Reply *r = wt_confirm (t, id, 5, PM__V1__STATUS__OK);
    o = r->workorder_confirm->order;
    assert_int_equal (o->state, PM__V1__ORDER_STATE__ARCHIVED);
    assert_int_equal (o->satisfaction, 5);
    assert_string_equal (o->signed_by, "张伟");
    assert_true (o->confirmed_ms == WT_T0_MS + 70 * WT_MIN);

    /* every transition is an event carrying the whole order, in order */
    wt_events_t e = wt_events (t, seq0 + 1);
    static const char *const types[] = { "workorder.order.created", "workorder.order.assigned",
                                         "workorder.order.started", "workorder.order.done",
                                         "workorder.order.confirmed", "workorder.order.archived" };
    assert_int_equal (e.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal (e.ev[i]->type, types[i]);
        assert_int_equal (e.ev[i]->payload_case, PM__V1__EVENT__PAYLOAD_ORDER);
        assert_string_equal (e.ev[i]->order->order_id, id);
        assert_string_equal (e.ev[i]->unit_id, "E01/1-101");
        assert_string_equal (e.ev[i]->estate_id, "E01");
    }
    assert_int_equal (e.ev[0]->order->state, PM__V1__ORDER_STATE__ORDER_OPEN);
    assert_string_equal (e.ev[1]->order->technician, "T01");
    assert_int_equal (e.ev[4]->order->state, PM__V1__ORDER_STATE__CONFIRMED);
    wt_events_free (&e);

    /* the unit's part of its case, and the estate's counts */
    Pm__V1__WorkorderUnitGetRequest ub = PM__V1__WORKORDER_UNIT_GET_REQUEST__INIT;
    ub.unit_id = "E01/1-101";
    Pm__V1__WorkorderUnitGetReply *u =
        wt_call (t, "workorder.unit.get", &ub.base, PM__V1__STATUS__OK)->workorder_unit_get;
    assert_true (u->known && u->keys_handed);
    assert_int_equal (u->n_orders, 1);
    assert_int_equal (u->open_orders, 0);
    assert_string_equal (u->orders[0]->order_id, id);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_orders", "estate=\"E01\",state=\"ARCHIVED\""), 1);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_open_orders", "estate=\"E01\""), 0);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 0); /* nothing armed for a closed order */
}

static void
test_owner_rejection_sends_it_back_and_twice_is_queued (void **state)
{
    wt_t *t = *state;
    const char *id = wt_create (t, "E01/1-101", "water");
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    Pm__V1__Reply *r = wt_reject (t, id, "仍然漏水", PM__V1__STATUS__OK);
    Pm__V1__WorkOrder *o = r->workorder_reject->order;
    assert_int_equal (o->state, PM__V1__ORDER_STATE__ASSIGNED); /* back to the same technician */
    assert_string_equal (o->technician, "T01");
    assert_int_equal (o->rejections, 1);
    assert_string_equal (o->reason, "仍然漏水");
    assert_int_equal (wt_tech (t, "T01")->open_orders, 1);
    assert_null (wt_queued (t, "rejected_twice", id));
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    wt_reject (t, id, "还是漏", PM__V1__STATUS__OK);
    const Pm__V1__QueueItem *it = wt_queued (t, "rejected_twice", id);
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "rejected 2 times"));
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    wt_confirm (t, id, 3, PM__V1__STATUS__OK);
    assert_null (wt_queued (t, "rejected_twice", id));
    wt_events_t e = wt_events (t, 1);
    assert_int_equal (wt_count (&e, "workorder.order.rejected", id), 2);
    assert_int_equal (wt_count (&e, "workorder.order.done", id), 3);
    wt_events_free (&e);
    /* 合格率: confirmed once, not first pass */
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-01", "", "estate");
    assert_int_equal (k->total->confirmed, 1);
    assert_int_equal (k->total->first_pass, 0);
    assert_int_equal (k->total->rejected, 2);
}

/* A refused command changes nothing: same order, no event. */
static void
s_unchanged (wt_t *t, const char *id, int state, uint64_t seq)
{
    assert_int_equal (wt_state (t, id), state);
    assert_true (wt_last_seq (t) == seq);
}

static void
test_transitions_the_machine_forbids_are_refused_clearly (void **state)
{
    wt_t *t = *state;
    const char *id = wt_create (t, "E01/1-101", "water");
    uint64_t seq = wt_last_seq (t);
    Pm__V1__Reply *r = wt_confirm (t, id, 5, PM__V1__STATUS__CONFLICT);
    wt_says (r, id, "is ASSIGNED", "cannot be confirmed", "workorder.start", NULL);
    s_unchanged (t, id, PM__V1__ORDER_STATE__ASSIGNED, seq);
    r = wt_done (t, id, PM__V1__STATUS__CONFLICT);
    wt_says (r, "is ASSIGNED", "from ASSIGNED", NULL);
    r = wt_reject (t, id, "不满意", PM__V1__STATUS__CONFLICT);
    wt_says (r, "is ASSIGNED", NULL);
    s_unchanged (t, id, PM__V1__ORDER_STATE__ASSIGNED, seq);

    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    seq = wt_last_seq (t);
    r = wt_cancel (t, id, "业主撤销", PM__V1__STATUS__CONFLICT);
    wt_says (r, "is DONE", "only orders before DONE", "workorder.confirm", "workorder.reject", NULL);
    r = wt_start (t, id, PM__V1__STATUS__CONFLICT);
    wt_says (r, "is DONE", NULL);
    r = wt_assign (t, id, "T02", PM__V1__STATUS__CONFLICT);
    wt_says (r, "is DONE", "only OPEN or ASSIGNED", NULL);
    r = wt_reject (t, id, "", PM__V1__STATUS__INVALID);
    wt_says (r, "reason: empty", NULL);
    r = wt_confirm (t, id, 0, PM__V1__STATUS__INVALID);
    wt_says (r, "satisfaction 0", "1 to 5", NULL);
    r = wt_confirm (t, id, 6, PM__V1__STATUS__INVALID);
    s_unchanged (t, id, PM__V1__ORDER_STATE__DONE, seq);

    wt_confirm (t, id, 4, PM__V1__STATUS__OK);
    seq = wt_last_seq (t);
    r = wt_confirm (t, id, 4, PM__V1__STATUS__CONFLICT);
    wt_says (r, "is ARCHIVED", "closed", NULL);
    r = wt_cancel (t, id, "x", PM__V1__STATUS__CONFLICT);
    s_unchanged (t, id, PM__V1__ORDER_STATE__ARCHIVED, seq);

    /* ids that are not orders */
    Pm__V1__WorkorderStartRequest b = PM__V1__WORKORDER_START_REQUEST__INIT;
    b.order_id = "WO-E01-000999";
    wt_says (wt_call (t, "workorder.start", &b.base, PM__V1__STATUS__NOT_FOUND), "no order WO-E01-000999", NULL);
    b.order_id = "42";
    wt_says (wt_call (t, "workorder.start", &b.base, PM__V1__STATUS__INVALID), "not an order id",
             "WO-E01-000042", NULL);
    b.order_id = "";
    wt_call (t, "workorder.start", &b.base, PM__V1__STATUS__INVALID);
    assert_true (wt_last_seq (t) == seq);
}

static void
test_bad_reports_are_refused_with_what_to_do (void **state)
{
    wt_t *t = *state;
    uint64_t seq = wt_last_seq (t);
    Pm__V1__WorkorderCreateRequest b = PM__V1__WORKORDER_CREATE_REQUEST__INIT;
    b.unit_id = "E01/9-999";
    b.kind = "repair";
    b.category = "water";
    b.description = "漏水";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__NOT_FOUND), "knows no unit 'E01/9-999'", NULL);
    b.unit_id = "E01/1-102";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__CONFLICT), "keys are not handed",
             "intake hands the keys first", NULL);
    b.unit_id = "E01/1-101";
    b.category = "plumbing";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "category 'plumbing': unknown",
             "water, electric, elevator, civil, general", NULL);
    b.category = "complaint";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "not for a repair", NULL);
    b.category = "";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "category: empty", NULL);
    b.category = "water";
    b.kind = "wish";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "kind 'wish'",
             "repair or complaint", NULL);
    b.kind = "repair";
    b.description = "";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "description: empty", NULL);
    b.description = "漏水";
    b.channel = "fax";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "channel 'fax'", NULL);
    b.channel = "app";
    b.priority = "asap";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "priority 'asap'", NULL);
    b.priority = "";
    b.preferred_window = "tomorrow afternoon";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "preferred_window",
             "2026-12-05 14:00-18:00", NULL);
    b.preferred_window = "2026-11-30 14:00-18:00";
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "before now", NULL);
    b.preferred_window = "";
    b.preferred_from_ms = WT_T0_MS + 5 * WT_HOUR;
    wt_says (wt_call (t, "workorder.create", &b.base, PM__V1__STATUS__INVALID), "both", NULL);
    assert_true (wt_last_seq (t) == seq); /* nothing was created */
    assert_int_equal (pmt_metric_or (wt_d (t), "workorder_open_orders", "estate=\"E01\"", 0), 0);
}

static void
test_complaint_needs_its_five_steps_before_done (void **state)
{
    wt_t *t = *state;
    /* complaints are open before the keys too */
    const char *id = wt_create_ex (t, "E01/1-102", "complaint", "", NULL, PM__V1__STATUS__OK);
    Pm__V1__WorkOrder *o = wt_get (t, id);
    assert_int_equal (o->source, PM__V1__ORDER_SOURCE__COMPLAINT);
    assert_string_equal (o->category, "complaint");
    assert_string_equal (o->technician, "K01"); /* the complaint desk covers every estate */
    assert_true (o->respond_by_ms == WT_T0_MS + 24 * WT_HOUR);
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_checklist (t, id, "listen", PM__V1__STATUS__OK);
    wt_checklist (t, id, "apologise", PM__V1__STATUS__OK);
    Pm__V1__Reply *r = wt_done (t, id, PM__V1__STATUS__CONFLICT);
    wt_says (r, "five steps", "investigate, resolve, follow_up", NULL);
    wt_says (wt_checklist (t, id, "shout", PM__V1__STATUS__INVALID), "step 'shout'", NULL);
    wt_checklist (t, id, "investigate", PM__V1__STATUS__OK);
    wt_checklist (t, id, "resolve", PM__V1__STATUS__OK);
    wt_checklist (t, id, "resolve", PM__V1__STATUS__OK); /* again: still one */
    wt_says (wt_checklist (t, id, "follow_up", PM__V1__STATUS__OK), "5 of 5", NULL);
    wt_done (t, id, PM__V1__STATUS__OK);
    assert_int_equal (wt_get (t, id)->n_checklist, 5);
    /* the checklist is for complaints */
    const char *repair = wt_create (t, "E01/1-101", "water");
    wt_says (wt_checklist (t, repair, "listen", PM__V1__STATUS__INVALID), "not a complaint", NULL);
}

static void
test_cancel_frees_the_technician_and_the_timers (void **state)
{
    wt_t *t = *state;
    const char *id = wt_create (t, "E01/1-101", "civil");
    assert_string_equal (wt_get (t, id)->technician, "T01");
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 2); /* respond and complete */
    wt_says (wt_cancel (t, id, "", PM__V1__STATUS__INVALID), "reason: empty", NULL);
    Pm__V1__WorkOrder *o = wt_cancel (t, id, "业主自行修好", PM__V1__STATUS__OK)->workorder_cancel->order;
    assert_int_equal (o->state, PM__V1__ORDER_STATE__CANCELLED);
    assert_string_equal (o->reason, "业主自行修好");
    assert_int_equal (wt_tech (t, "T01")->open_orders, 0);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_timers", ""), 0);
    /* nothing fires for it later */
    uint64_t seq = wt_last_seq (t);
    wt_advance (t, "5d");
    assert_true (wt_last_seq (t) == seq);
}

static void
test_retried_request_is_applied_once (void **state)
{
    wt_t *t = *state;
    Pm__V1__WorkorderCreateRequest b = PM__V1__WORKORDER_CREATE_REQUEST__INIT;
    b.unit_id = "E01/1-101";
    b.kind = "repair";
    b.category = "electric";
    b.description = "跳闸";
    Pm__V1__Reply *r = pmt_call_expect (wt_d (t), "same-id", "workorder.create", &b.base, PM__V1__STATUS__OK);
    char first[32];
    snprintf (first, sizeof first, "%s", r->workorder_create->order->order_id);
    uint64_t seq = wt_last_seq (t);
    r = pmt_call_expect (wt_d (t), "same-id", "workorder.create", &b.base, PM__V1__STATUS__OK);
    assert_string_equal (r->workorder_create->order->order_id, first);
    assert_true (wt_last_seq (t) == seq);
    assert_int_equal (pmt_metric (wt_d (t), "workorder_open_orders", "estate=\"E01\""), 1);
}

static void
test_order_ids_count_per_estate (void **state)
{
    wt_t *t = *state;
    wt_unit (t, "E02/5-501", true);
    assert_string_equal (wt_create (t, "E01/1-101", "water"), "WO-E01-000001");
    assert_string_equal (wt_create (t, "E02/5-501", "water"), "WO-E02-000001");
    assert_string_equal (wt_create (t, "E01/1-101", "general"), "WO-E01-000002");
}

int
main (void)
{
    pm_log_init ("test_orders", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_repair_runs_from_report_to_archive, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_owner_rejection_sends_it_back_and_twice_is_queued, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_transitions_the_machine_forbids_are_refused_clearly, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_reports_are_refused_with_what_to_do, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_complaint_needs_its_five_steps_before_done, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cancel_frees_the_technician_and_the_timers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retried_request_is_applied_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_order_ids_count_per_estate, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
