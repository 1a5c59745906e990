/* test_reads - what inspection answers without writing: one unit's whole
 * case (inspection.unit.get), ops.queues, and the snapshot that restates its
 * state as contract events, paged, so a consumer can rebuild from it. */
#include "insp_test.h"

#define U1 "E01/3/2-301"
#define U2 "E01/3/2-302"
#define U3 "E01/4/1-101"

static void
test_unit_get_tells_the_whole_case (void **state)
{
    t_checked_in (U1);
    t_start (U1, false, PM__V1__STATUS__OK);
    char d1[64], d2[64];
    strcpy (d1, t_defect (U1, "客厅", "门窗"));
    strcpy (d2, t_defect (U1, "阳台", "地面"));
    t_item (U1, "厨房", "燃气", PM__V1__ITEM_RESULT__ITEM_NOT_APPLICABLE, PM__V1__STATUS__OK);
    t_all_ok (U1, PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
    t_rectify (d1);
    t_rectify (d2);
    t_start (U1, false, PM__V1__STATUS__OK);
    t_verify (d1, PM__V1__STATUS__OK);

    Pm__V1__InspectionUnitGetRequest b = PM__V1__INSPECTION_UNIT_GET_REQUEST__INIT;
    b.unit_id = U1;
    Pm__V1__Reply *r = t_call ("inspection.unit.get", &b.base, PM__V1__STATUS__OK);
    assert_non_null (strstr (r->message, "IN_ROUND; 2 round(s), 2 defect(s), 1 open"));
    Pm__V1__InspectionUnitGetReply *u = r->inspection_unit_get;
    assert_string_equal (u->unit_id, U1);
    assert_string_equal (u->estate_id, "E01");
    assert_int_equal (u->status, PM__V1__INSPECTION_STATUS__INSPECTION_IN_ROUND);
    assert_int_equal (u->rounds_failed, 1);
    assert_int_equal (u->n_rounds, 2);
    Pm__V1__InspectionRoundView *r1 = u->rounds[0], *r2 = u->rounds[1];
    assert_int_equal (r1->state, PM__V1__ROUND_STATE__ROUND_FAILED);
    assert_string_equal (r1->inspector, "李工");
    assert_true (r1->completed_ms >= r1->started_ms);
    assert_int_equal (r1->n_items, 35);
    assert_string_equal (r1->items[0]->room, "入户门厅"); /* checklist order, not key order */
    assert_int_equal (r1->n_defects_found, 2);
    assert_int_equal (r1->n_open_defects, 2);
    assert_int_equal (r2->state, PM__V1__ROUND_STATE__ROUND_OPEN);
    assert_true (r2->reinspection);
    assert_int_equal (r2->n_items, 0);
    assert_int_equal (r2->n_to_verify, 2);
    assert_int_equal (r2->n_verified, 1);
    assert_string_equal (r2->verified[0], d1);
    assert_int_equal (u->n_defects, 2);
    Pm__V1__DefectView *v = t_defect_view (u, d1);
    assert_int_equal (v->defect->state, PM__V1__DEFECT_STATE__VERIFIED);
    assert_int_equal (v->n_history, 4);
    assert_string_equal (v->history[3]->what, "verified");
    assert_string_equal (v->history[3]->by, "李工");
    assert_int_equal (t_defect_view (u, d2)->defect->state, PM__V1__DEFECT_STATE__RECTIFIED);

    b.unit_id = "E01/3/2-399";
    r = t_call ("inspection.unit.get", &b.base, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "E01/3/2-399"));
    b.unit_id = "";
    t_call ("inspection.unit.get", &b.base, PM__V1__STATUS__INVALID);
}

static void
test_ops_queues_lists_inspections_queues (void **state)
{
    Pm__V1__OpsQueuesRequest b = PM__V1__OPS_QUEUES_REQUEST__INIT;
    Pm__V1__Reply *r = t_call ("ops.queues", &b.base, PM__V1__STATUS__OK);
    const char *want[] = { "reinspections_due", "overdue_defects", "failed_twice", "uninspected" };
    for (size_t w = 0; w < 4; w++) {
        bool found = false;
        for (size_t i = 0; i < r->ops_queues->n_queues; i++)
            if (!strcmp (r->ops_queues->queues[i]->name, want[w])) {
                found = true;
                assert_true (*r->ops_queues->queues[i]->description);
            }
        assert_true (found);
    }
}

/* All events of a snapshot, taken max per page (copies: the caller frees). */
static size_t
s_snapshot (uint32_t max, Pm__V1__Event ***out)
{
    Pm__V1__EventsSnapshotRequest b = PM__V1__EVENTS_SNAPSHOT_REQUEST__INIT;
    b.max = max;
    char token[128] = "";
    uint8_t after[600];
    size_t alen = 0, n = 0;
    *out = NULL;
    for (int page = 0; page < 1000; page++) {
        b.token = token;
        b.after.data = after;
        b.after.len = alen;
        Pm__V1__Reply *r = t_call ("events.snapshot", &b.base, PM__V1__STATUS__OK);
        Pm__V1__EventsSnapshotReply *s = r->events_snapshot;
        *out = realloc (*out, (n + s->n_events + 1) * sizeof **out);
        for (size_t i = 0; i < s->n_events; i++) {
            assert_true (s->events[i]->snapshot);
            size_t len = pm__v1__event__get_packed_size (s->events[i]);
            uint8_t *buf = malloc (len + 1);
            pm__v1__event__pack (s->events[i], buf);
            (*out)[n++] = pm__v1__event__unpack (NULL, len, buf);
            free (buf);
        }
        if (s->done)
            return n;
        snprintf (token, sizeof token, "%s", s->token);
        assert_true (s->after.len <= sizeof after);
        memcpy (after, s->after.data, s->after.len);
        alen = s->after.len;
    }
    fail_msg ("snapshot never ended");
    return n;
}

static void
s_free_events (Pm__V1__Event **evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pm__v1__event__free_unpacked (evs[i], NULL);
    free (evs);
}

static void
test_snapshot_restates_the_state_as_contract_events (void **state)
{
    /* U1: failed, one defect verified at round 2 (open), one rectified, one reopened
     * U2: passed.  U3: failed, accepted with defects, re-inspection due. */
    t_checked_in (U1);
    t_checked_in (U2);
    t_checked_in (U3);
    t_start (U1, false, PM__V1__STATUS__OK);
    char a[64], bb[64], c[64];
    strcpy (a, t_defect (U1, "客厅", "门窗"));
    strcpy (bb, t_defect (U1, "卧室", "门窗"));
    strcpy (c, t_defect (U1, "厨房", "门窗"));
    t_all_ok (U1, PM__V1__STATUS__OK);
    t_complete (U1, PM__V1__STATUS__OK);
    t_rectify (a);
    t_rectify (bb);
    t_rectify (c);
    t_start (U1, false, PM__V1__STATUS__OK);
    t_verify (a, PM__V1__STATUS__OK);
    t_reopen (c, "仍有缝隙", PM__V1__STATUS__OK);
    t_start (U2, false, PM__V1__STATUS__OK);
    t_all_ok (U2, PM__V1__STATUS__OK);
    t_complete (U2, PM__V1__STATUS__OK);
    t_start (U3, false, PM__V1__STATUS__OK);
    char d[64];
    strcpy (d, t_defect (U3, "卫生间", "给排水"));
    t_all_ok (U3, PM__V1__STATUS__OK);
    t_complete (U3, PM__V1__STATUS__OK);
    t_accept (U3, "SIG-3", PM__V1__STATUS__OK);
    t_rectify (d);

    Pm__V1__Event **evs;
    size_t n = s_snapshot (0, &evs);
    const char *want[][2] = {
        { U1, "inspection.defect.verified" },   { U1, "inspection.defect.rectified" },
        { U1, "inspection.defect.reopened" },   { U1, "inspection.round.failed" },
        { U1, "inspection.round.opened" },      { U2, "inspection.round.passed" },
        { U3, "inspection.defect.rectified" },  { U3, "inspection.round.failed" },
        { U3, "inspection.accepted_with_defects" }, { U3, "inspection.reinspection.due" },
    };
    assert_int_equal (n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal (evs[i]->unit_id, want[i][0]);
        assert_string_equal (evs[i]->type, want[i][1]);
        assert_string_equal (evs[i]->estate_id, "E01");
        assert_string_equal (evs[i]->source, "inspection");
    }
    /* each payload is the thing as it stands now */
    assert_string_equal (evs[0]->defect->defect_id, a);
    assert_int_equal (evs[0]->defect->state, PM__V1__DEFECT_STATE__VERIFIED);
    assert_string_equal (evs[2]->defect->reason, "仍有缝隙");
    assert_int_equal (evs[3]->round->round_no, 1);
    assert_int_equal (evs[3]->round->n_defects, 3);
    assert_int_equal (evs[4]->round->round_no, 2);
    assert_true (evs[5]->round->passed);
    assert_int_equal (evs[8]->accepted->open_defects, 1);
    assert_string_equal (evs[8]->accepted->signature_ref, "SIG-3");
    assert_int_equal (evs[9]->reinspection->n_defect_ids, 1);
    assert_string_equal (evs[9]->reinspection->defect_ids[0], d);

    /* any page size gives the same events, each once */
    for (uint32_t max = 1; max <= 4; max++) {
        Pm__V1__Event **paged;
        size_t m = s_snapshot (max, &paged);
        assert_int_equal (m, n);
        for (size_t i = 0; i < m; i++) {
            assert_string_equal (paged[i]->type, evs[i]->type);
            assert_string_equal (paged[i]->unit_id, evs[i]->unit_id);
        }
        s_free_events (paged, m);
    }
    s_free_events (evs, n);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_unit_get_tells_the_whole_case, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_ops_queues_lists_inspections_queues, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_restates_the_state_as_contract_events, t_setup, t_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
