/* test_rounds - the round state machine on a real LMDB: check-in opens the
 * inspection, round 1 records every checklist line, a round passes only when
 * no defect is open, the re-inspection loop, acceptance with defects, the
 * uninspected queue, and every refusal naming the state and changing nothing. */
#include "insp_test.h"

#define U1 "E01/3/2-301"
#define U2 "E01/3/2-302"

static void
test_check_in_opens_and_a_clean_round_passes (void **state)
{
    t_checked_in (U1);
    Pm__V1__InspectionUnitGetReply *u = t_unit (U1);
    assert_int_equal (u->status, PM__V1__INSPECTION_STATUS__INSPECTION_AWAITING);
    assert_string_equal (u->building, "3");
    assert_true (u->checked_in_ms > 0);

    Pm__V1__Reply *r = t_start (U1, false, PM__V1__STATUS__OK);
    assert_int_equal (r->inspection_round_start->n_items, 35); /* the default checklist */
    Pm__V1__Event *ev = t_last ("inspection.round.opened");
    assert_non_null (ev);
    assert_string_equal (ev->unit_id, U1);
    assert_string_equal (ev->estate_id, "E01");
    assert_int_equal (ev->round->round_no, 1);
    assert_string_equal (ev->round->inspector, "李工");
    assert_false (ev->round->reinspection);

    /* not every line is recorded: refused, naming what is missing */
    r = t_complete (U1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "35 of 35 checklist items not recorded"));
    assert_non_null (strstr (r->message, "入户门厅/门窗"));
    t_item (U1, "厨房", "燃气", PM__V1__ITEM_RESULT__ITEM_NOT_APPLICABLE, PM__V1__STATUS__OK);
    r = t_all_ok (U1, PM__V1__STATUS__OK);
    assert_int_equal (r->inspection_items_record->recorded, 34);
    assert_int_equal (r->inspection_items_record->pending, 0);
    size_t before = g->nlog;
    t_complete (U1, PM__V1__STATUS__OK);
    assert_int_equal (t_count (before, "inspection.round.passed"), 1);
    ev = t_last ("inspection.round.passed");
    assert_true (ev->round->passed);
    assert_int_equal (ev->round->n_defects, 0);
    assert_string_equal (ev->round->building, "3");

    u = t_unit (U1);
    assert_int_equal (u->status, PM__V1__INSPECTION_STATUS__INSPECTION_PASSED);
    assert_int_equal (u->n_rounds, 1);
    assert_int_equal (u->rounds[0]->state, PM__V1__ROUND_STATE__ROUND_PASSED);
    assert_int_equal (u->rounds[0]->items_recorded, 35);
    /* the not-applicable line kept its mark */
    bool na = false;
    for (size_t i = 0; i < u->rounds[0]->n_items; i++)
        if (!strcmp (u->rounds[0]->items[i]->room, "厨房") && !strcmp (u->rounds[0]->items[i]->category, "燃气"))
            na = u->rounds[0]->items[i]->result == PM__V1__ITEM_RESULT__ITEM_NOT_APPLICABLE;
    assert_true (na);

    /* completing twice, a new round and a defect after the pass: refused, nothing emitted */
    before = g->nlog;
    r = t_complete (U1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "round 1 is already completed: PASSED"));
    r = t_start (U1, false, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "PASSED"));
    r = t_defect_sev (U1, "客厅", "地面", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "PASSED"));
    assert_int_equal (g->nlog, before);
}

static void
test_a_unit_not_checked_in_is_opened_by_hand (void **state)
{
    t_intake_unit ("intake.unit.registered", U1);
    assert_int_equal (t_unit (U1)->status, PM__V1__INSPECTION_STATUS__INSPECTION_NOT_OPENED);
    Pm__V1__Reply *r = t_start (U1, false, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "inspection not open"));
    assert_non_null (strstr (r->message, "inspection.open"));

    Pm__V1__InspectionOpenRequest b = PM__V1__INSPECTION_OPEN_REQUEST__INIT;
    b.unit_id = U1;
    t_call ("inspection.open", &b.base, PM__V1__STATUS__OK);
    r = t_call ("inspection.open", &b.base, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "already open"));
    t_start (U1, false, PM__V1__STATUS__OK);
    /* the check-in that comes later does not open it again */
    t_intake_unit ("intake.unit.checked_in", U1);
    Pm__V1__InspectionUnitGetReply *u = t_unit (U1);
    assert_int_equal (u->status, PM__V1__INSPECTION_STATUS__INSPECTION_IN_ROUND);
    assert_true (u->checked_in_ms > 0);
    assert_int_equal (t_kpi ("E01")->estate->units_opened, 1);

    b.unit_id = "E01/9/9-999";
    r = t_call ("inspection.open", &b.base, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "E01/9/9-999"));
}

static void
test_bad_input_is_refused_and_changes_nothing (void **state)
{
    t_checked_in (U1);
    Pm__V1__Reply *r = t_start ("E01/9/9-999", false, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "E01/9/9-999"));
    Pm__V1__InspectionRoundStartRequest b = PM__V1__INSPECTION_ROUND_START_REQUEST__INIT;
    b.unit_id = U1;
    b.inspector = " ";
    r = t_call ("inspection.round.start", &b.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "inspector"));
    /* a defect before any round */
    r = t_defect_sev (U1, "客厅", "地面", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "no round has started"));
    t_start (U1, false, PM__V1__STATUS__OK);
    r = t_start (U1, false, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "round 1 is open"));

    size_t before = g->nlog;
    r = t_defect_sev (U1, "书房", "地面", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "room: '书房' is not on the checklist"));
    assert_non_null (strstr (r->message, "客厅"));
    r = t_defect_sev (U1, "卧室", "燃气", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "category: '燃气' is not on the checklist of room 卧室"));
    assert_non_null (strstr (r->message, "墙面/天花, 地面, 门窗, 电气"));
    r = t_defect_sev (U1, "卧室", "地面", PM__V1__SEVERITY__SEVERITY_UNSET, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "severity"));
    Pm__V1__InspectionDefectRecordRequest d = PM__V1__INSPECTION_DEFECT_RECORD_REQUEST__INIT;
    d.unit_id = U1;
    d.room = "卧室";
    d.category = "地面";
    d.severity = PM__V1__SEVERITY__MINOR;
    r = t_call ("inspection.defect.record", &d.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "description: empty"));
    r = t_item (U1, "卧室", "燃气", PM__V1__ITEM_RESULT__ITEM_OK, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "燃气"));
    r = t_item (U1, "卧室", "地面", PM__V1__ITEM_RESULT__ITEM_DEFECT, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "inspection.defect.record"));
    /* nothing of it was kept */
    assert_int_equal (g->nlog, before);
    Pm__V1__InspectionUnitGetReply *u = t_unit (U1);
    assert_int_equal (u->n_defects, 0);
    assert_int_equal (u->rounds[0]->items_recorded, 0);
    assert_int_equal (t_kpi ("E01")->estate->defects, 0);
}

static void
test_a_line_with_a_defect_cannot_also_be_ok (void **state)
{
    t_checked_in (U1);
    t_start (U1, false, PM__V1__STATUS__OK);
    const char *id = t_defect (U1, "客厅", "地面");
    assert_string_equal (id, U1 "#1");
    Pm__V1__Reply *r = t_item (U1, "客厅", "地面", PM__V1__ITEM_RESULT__ITEM_OK, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, U1 "#1"));
    /* a second defect on the same line is fine, and numbers run on */
    assert_string_equal (t_defect (U1, "客厅", "地面"), U1 "#2");
    r = t_all_ok (U1, PM__V1__STATUS__OK);
    assert_int_equal (r->inspection_items_record->recorded, 34);
    Pm__V1__InspectionUnitGetReply *u = t_unit (U1);
    for (size_t i = 0; i < u->rounds[0]->n_items; i++) {
        const Pm__V1__RoundItemView *it = u->rounds[0]->items[i];
        assert_int_equal (it->position, i + 1);
        if (!strcmp (it->room, "客厅") && !strcmp (it->category, "地面")) {
            assert_int_equal (it->result, PM__V1__ITEM_RESULT__ITEM_DEFECT);
            assert_int_equal (it->n_defect_ids, 2);
        } else
            assert_int_equal (it->result, PM__V1__ITEM_RESULT__ITEM_OK);
    }
}

static void
test_the_rectification_loop_until_the_unit_passes (void **state)
{
    t_checked_in (U1);
    t_start (U1, false, PM__V1__STATUS__OK);
    char d1[64], d2[64], d3[64];
    strcpy (d1, t_defect (U1, "客厅", "墙面/天花"));
    strcpy (d2, t_defect (U1, "厨房", "给排水"));
    strcpy (d3, t_defect (U1, "卫生间", "地面"));
    t_all_ok (U1, PM__V1__STATUS__OK);
    size_t before = g->nlog;
    Pm__V1__Reply *r = t_complete (U1, PM__V1__STATUS__OK);
    assert_non_null (strstr (r->message, "FAILED: 3 defect(s) open"));
    Pm__V1__Event *ev = t_last ("inspection.round.failed");
    assert_non_null (ev);
    assert_false (ev->round->passed);
    assert_int_equal (ev->round->n_defects, 3);
    assert_string_equal (ev->round->defects[0]->defect_id, d1);
    assert_int_equal (ev->round->defects[2]->state, PM__V1__DEFECT_STATE__DEFECT_OPEN);
    assert_int_equal (t_count (before, "inspection.reinspection.due"), 0);

    /* a re-inspection before anything is rectified has nothing to check */
    r = t_start (U1, false, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "no defect is RECTIFIED yet"));

    before = g->nlog;
    t_rectify (d1);
    t_rectify (d2);
    assert_int_equal (t_count (before, "inspection.defect.rectifying"), 2);
    assert_int_equal (t_count (before, "inspection.defect.rectified"), 2);
    assert_int_equal (t_count (before, "inspection.reinspection.due"), 0);
    assert_int_equal (pmt_queue (g->f->d, "reinspections_due")->count, 0);
    t_rectify (d3);
    assert_int_equal (t_count (before, "inspection.reinspection.due"), 1);
    ev = t_last ("inspection.reinspection.due");
    assert_int_equal (ev->reinspection->round_no, 1);
    assert_int_equal (ev->reinspection->n_defect_ids, 3);
    Pm__V1__Queue *q = pmt_queue (g->f->d, "reinspections_due");
    assert_int_equal (q->count, 1);
    assert_non_null (pmt_queue_item (q, U1));
    assert_int_equal (t_unit (U1)->status, PM__V1__INSPECTION_STATUS__INSPECTION_REINSPECTION_DUE);

    /* round 2 checks the three rectified defects, nothing else */
    r = t_start (U1, false, PM__V1__STATUS__OK);
    assert_int_equal (r->inspection_round_start->n_to_verify, 3);
    assert_int_equal (r->inspection_round_start->n_items, 0);
    assert_true (t_last ("inspection.round.opened")->round->reinspection);
    assert_int_equal (pmt_queue (g->f->d, "reinspections_due")->count, 0);
    r = t_all_ok (U1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "re-inspection"));
    r = t_complete (U1, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "3 rectified defect(s) not yet checked"));
    t_verify (d1, PM__V1__STATUS__OK);
    t_verify (d2, PM__V1__STATUS__OK);
    t_reopen (d3, "地面仍有积水", PM__V1__STATUS__OK);
    ev = t_last ("inspection.defect.reopened");
    assert_string_equal (ev->defect->reason, "地面仍有积水");
    assert_int_equal (ev->defect->state, PM__V1__DEFECT_STATE__DEFECT_OPEN);
    before = g->nlog;
    t_complete (U1, PM__V1__STATUS__OK);
    ev = t_last ("inspection.round.failed");
    assert_int_equal (ev->round->round_no, 2);
    assert_int_equal (ev->round->n_defects, 1);
    assert_string_equal (ev->round->defects[0]->defect_id, d3);
    /* failed twice: in the queue */
    q = pmt_queue (g->f->d, "failed_twice");
    assert_non_null (pmt_queue_item (q, U1));
    assert_string_equal (pmt_queue_field (pmt_queue_item (q, U1), "rounds_failed"), "2");

    /* workorder reopens the order, finishes it again: due again */
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", d3);
    t_order ("reopened", oid, d3, PM__V1__ORDER_STATE__ASSIGNED);
    assert_int_equal (t_last ("inspection.defect.rectifying")->defect->state, PM__V1__DEFECT_STATE__RECTIFYING);
    t_order ("done", oid, d3, PM__V1__ORDER_STATE__DONE);
    assert_int_equal (t_count (before, "inspection.reinspection.due"), 1);
    assert_int_equal (t_last ("inspection.reinspection.due")->reinspection->round_no, 2);

    t_start (U1, false, PM__V1__STATUS__OK);
    t_verify (d3, PM__V1__STATUS__OK);
    before = g->nlog;
    t_complete (U1, PM__V1__STATUS__OK);
    ev = t_last ("inspection.round.passed");
    assert_non_null (ev);
    assert_int_equal (ev->round->round_no, 3);
    assert_int_equal (t_count (before, "inspection.round.passed"), 1);
    assert_int_equal (pmt_queue (g->f->d, "failed_twice")->count, 0);
    Pm__V1__InspectionUnitGetReply *u = t_unit (U1);
    assert_int_equal (u->status, PM__V1__INSPECTION_STATUS__INSPECTION_PASSED);
    assert_int_equal (u->n_rounds, 3);
    assert_int_equal (u->rounds_failed, 2);
    assert_int_equal (u->defects_open, 0);
}

static void
test_a_full_reinspection_records_the_checklist_again (void **state)
{
    t_checked_in (U1);
    t_start (U1, false, PM__V1__STATUS__OK);
    char d1[64];
    strcpy (d1, t_defect (U1, "阳台", "门窗"));
    t_all_ok (U1, PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
    Pm__V1__Reply *r = t_start (U1, true, PM__V1__STATUS__OK); /* full: allowed before rectification */
    assert_int_equal (r->inspection_round_start->n_items, 35);
    assert_string_equal (t_defect (U1, "卧室", "电气"), U1 "#2"); /* a new one, found on this visit */
    t_all_ok (U1, PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
    Pm__V1__Event *ev = t_last ("inspection.round.failed");
    assert_int_equal (ev->round->round_no, 2);
    assert_int_equal (ev->round->n_defects, 2);
    Pm__V1__InspectionUnitGetReply *u = t_unit (U1);
    assert_int_equal (u->rounds[1]->n_defects_found, 1);
    assert_string_equal (u->rounds[1]->defects_found[0], U1 "#2");
    assert_int_equal (u->rounds[0]->n_defects_found, 1);
}

static void
test_accept_with_defects (void **state)
{
    t_checked_in (U1);
    Pm__V1__Reply *r = t_accept (U1, "SIG-1", PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "no round completed yet"));
    t_start (U1, false, PM__V1__STATUS__OK);
    char d1[64], d2[64];
    strcpy (d1, t_defect (U1, "客厅", "门窗"));
    strcpy (d2, t_defect (U1, "厨房", "电气"));
    r = t_accept (U1, "SIG-1", PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "round 1 is in progress"));
    t_all_ok (U1, PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
    r = t_accept (U1, "", PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "signature_ref: empty"));
    size_t before = g->nlog;
    t_accept (U1, "SIG-2026-0042", PM__V1__STATUS__OK);
    Pm__V1__Event *ev = t_last ("inspection.accepted_with_defects");
    assert_non_null (ev);
    assert_int_equal (ev->accepted->open_defects, 2);
    assert_int_equal (ev->accepted->n_defect_ids, 2);
    assert_string_equal (ev->accepted->signature_ref, "SIG-2026-0042");
    assert_int_equal (t_count (before, "inspection.accepted_with_defects"), 1);
    r = t_accept (U1, "SIG-again", PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "already accepted"));
    Pm__V1__InspectionUnitGetReply *u = t_unit (U1);
    assert_true (u->accepted_with_defects);
    assert_string_equal (u->signature_ref, "SIG-2026-0042");
    /* their orders go on, and the loop closes as usual */
    t_rectify (d1);
    t_rectify (d2);
    assert_non_null (t_last ("inspection.reinspection.due"));
    t_start (U1, false, PM__V1__STATUS__OK);
    t_verify (d1, PM__V1__STATUS__OK);
    t_verify (d2, PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
    assert_non_null (t_last ("inspection.round.passed"));
    assert_int_equal (t_kpi ("E01")->estate->units_accepted_with_defects, 1);
}

static void
test_a_checked_in_unit_never_inspected_is_queued (void **state)
{
    t_checked_in (U1);
    t_checked_in (U2);
    t_start (U2, false, PM__V1__STATUS__OK);
    t_advance ("2d");
    assert_int_equal (pmt_queue (g->f->d, "uninspected")->count, 0);
    t_advance ("1d1m");
    Pm__V1__Queue *q = pmt_queue (g->f->d, "uninspected");
    assert_int_equal (q->count, 1);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, U1);
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "3 day(s)"));
    assert_int_equal (pmt_metric (g->f->d, "inspection_units_uninspected", ""), 1);
    t_start (U1, false, PM__V1__STATUS__OK);
    assert_int_equal (pmt_queue (g->f->d, "uninspected")->count, 0);
}

static void
test_a_retried_request_records_one_defect (void **state)
{
    t_checked_in (U1);
    t_start (U1, false, PM__V1__STATUS__OK);
    Pm__V1__InspectionDefectRecordRequest b = PM__V1__INSPECTION_DEFECT_RECORD_REQUEST__INIT;
    b.unit_id = U1;
    b.room = "客厅";
    b.category = "地面";
    b.severity = PM__V1__SEVERITY__MINOR;
    b.description = "地砖空鼓";
    Pm__V1__Reply *r = pmt_call_expect (g->f->d, "same-id", "inspection.defect.record", &b.base, PM__V1__STATUS__OK);
    assert_string_equal (r->inspection_defect_record->defect->defect_id, U1 "#1");
    r = pmt_call_expect (g->f->d, "same-id", "inspection.defect.record", &b.base, PM__V1__STATUS__OK);
    assert_string_equal (r->inspection_defect_record->defect->defect_id, U1 "#1");
    assert_int_equal (t_unit (U1)->n_defects, 1);
    assert_int_equal (t_kpi ("E01")->estate->defects, 1);
}

/* Many commands that scan, in one group commit (one write transaction): every
 * scan must give its cursor back, or the transaction runs out of them and the
 * batch is redone command by command in nested transactions. */
static void
test_many_rounds_complete_in_one_batch (void **state)
{
    enum { N = 24 };
    char units[N][32];
    Pm__V1__Request *reqs[2 * N];
    Pm__V1__InspectionItemsRecordRequest ok[N];
    Pm__V1__InspectionRoundCompleteRequest done[N];
    pm_batch_item_t items[2 * N];
    for (int i = 0; i < N; i++) {
        snprintf (units[i], sizeof units[i], "E01/5/5-%d", 100 + i);
        t_checked_in (units[i]);
        t_start (units[i], false, PM__V1__STATUS__OK);
        if (i % 2)
            t_defect (units[i], "客厅", "地面");
        char id[32];
        pm__v1__inspection_items_record_request__init (&ok[i]);
        ok[i].unit_id = units[i];
        ok[i].remaining_ok = true;
        snprintf (id, sizeof id, "batch-ok-%d", i);
        reqs[2 * i] = pmt_req (id, "inspection.items.record", "test");
        pm_body_set (&reqs[2 * i]->base, "inspection.items.record", &ok[i].base);
        pm__v1__inspection_round_complete_request__init (&done[i]);
        done[i].unit_id = units[i];
        snprintf (id, sizeof id, "batch-done-%d", i);
        reqs[2 * i + 1] = pmt_req (id, "inspection.round.complete", "test");
        pm_body_set (&reqs[2 * i + 1]->base, "inspection.round.complete", &done[i].base);
    }
    for (int i = 0; i < 2 * N; i++)
        items[i] = (pm_batch_item_t) { reqs[i], NULL, NULL };
    pmt_log_start ();
    assert_int_equal (pm_daemon_apply (g->f->d, items, 2 * N), PM_OK);
    /* the runtime would redo such a batch item by item (nested txns): slow, and said in the log */
    assert_false (pmt_log_has ("scans open in one transaction"));
    pmt_log_stop ();
    for (int i = 0; i < 2 * N; i++) {
        if (items[i].reply->status != PM__V1__STATUS__OK)
            fail_msg ("%s: %s", reqs[i]->method, items[i].reply->message);
        /* the bodies were borrowed: unset them before the requests are freed */
        reqs[i]->body_case = PM__V1__REQUEST__BODY__NOT_SET;
        pmt_req_free (reqs[i]);
    }
    t_harvest ();
    assert_int_equal (t_count (0, "inspection.round.passed"), N / 2);
    assert_int_equal (t_count (0, "inspection.round.failed"), N / 2);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_check_in_opens_and_a_clean_round_passes, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_a_unit_not_checked_in_is_opened_by_hand, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_bad_input_is_refused_and_changes_nothing, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_a_line_with_a_defect_cannot_also_be_ok, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_the_rectification_loop_until_the_unit_passes, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_a_full_reinspection_records_the_checklist_again, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_accept_with_defects, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_a_checked_in_unit_never_inspected_is_queued, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_a_retried_request_records_one_defect, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_many_rounds_complete_in_one_batch, t_setup, t_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
