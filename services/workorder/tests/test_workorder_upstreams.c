/* test_upstreams - what workorder does with intake's and inspection's events
 * (fed through the runtime as the subscription would): the projection of
 * units, one rectification order per defect, the inspector's verification as
 * its sign-off, reopening, escalation of an overdue defect; and the snapshot
 * that restates every order as the event of its state. */
#include "wo_test.h"

static int
s_setup (void **state)
{
    wt_t *t = wt_new (NULL);
    *state = t;
    return 0;
}

static int
s_teardown (void **state)
{
    wt_free ((wt_t **) state);
    return 0;
}

static const char *
s_order_of_defect (wt_t *t, const char *unit, unsigned no)
{
    Pm__V1__WorkorderUnitGetRequest b = PM__V1__WORKORDER_UNIT_GET_REQUEST__INIT;
    b.unit_id = (char *) unit;
    Pm__V1__WorkorderUnitGetReply *u =
        wt_call (t, "workorder.unit.get", &b.base, PM__V1__STATUS__OK)->workorder_unit_get;
    char defect_id[64];
    snprintf (defect_id, sizeof defect_id, "%s#%u", unit, no);
    for (size_t i = 0; i < u->n_orders; i++)
        if (strcmp (u->orders[i]->defect_id, defect_id) == 0)
            return wt_keep (t, u->orders[i]->order_id);
    fail_msg ("no order for defect %s", defect_id);
    return NULL;
}

static void
test_units_and_keys_come_from_intake (void **state)
{
    wt_t *t = *state;
    Pm__V1__WorkorderUnitGetRequest b = PM__V1__WORKORDER_UNIT_GET_REQUEST__INIT;
    b.unit_id = "E01/1-101";
    wt_says (wt_call (t, "workorder.unit.get", &b.base, PM__V1__STATUS__NOT_FOUND), "knows no unit", NULL);
    wt_unit (t, "E01/1-101", false);
    Pm__V1__WorkorderUnitGetReply *u =
        wt_call (t, "workorder.unit.get", &b.base, PM__V1__STATUS__OK)->workorder_unit_get;
    assert_true (u->known);
    assert_false (u->keys_handed);
    wt_create_ex (t, "E01/1-101", "repair", "water", NULL, PM__V1__STATUS__CONFLICT);
    /* the keys: repairs open; a later update of the unit keeps that */
    wt_unit (t, "E01/1-101", true);
    wt_unit (t, "E01/1-101", false);
    u = wt_call (t, "workorder.unit.get", &b.base, PM__V1__STATUS__OK)->workorder_unit_get;
    assert_true (u->keys_handed);
    wt_create (t, "E01/1-101", "water");
    assert_int_equal (pmt_metric (wt_d (t), "workorder_units", ""), 1);
}

static void
test_each_defect_gets_one_rectification_order (void **state)
{
    wt_t *t = *state;
    int64_t deadline = WT_T0_MS + 7 * 24 * WT_HOUR;
    wt_defect (t, "inspection.defect.recorded", "E01/3-301", 1, "给排水", PM__V1__SEVERITY__MAJOR, deadline, NULL);
    wt_defect (t, "inspection.defect.recorded", "E01/3-301", 2, "墙面/天花", PM__V1__SEVERITY__MINOR, deadline, NULL);
    /* the same defect again (a restatement): no second order */
    wt_says (wt_defect (t, "inspection.defect.recorded", "E01/3-301", 1, "给排水", PM__V1__SEVERITY__MAJOR, deadline,
                        NULL),
             "has its order", NULL);
    const char *w = s_order_of_defect (t, "E01/3-301", 1);
    const char *c = s_order_of_defect (t, "E01/3-301", 2);
    Pm__V1__WorkOrder *o = wt_get (t, w);
    assert_int_equal (o->source, PM__V1__ORDER_SOURCE__DEFECT);
    assert_string_equal (o->defect_id, "E01/3-301#1");
    assert_string_equal (o->category, "defect");
    assert_string_equal (o->skill, "water"); /* 给排水 needs a plumber */
    assert_string_equal (o->channel, "inspection");
    assert_string_equal (o->reporter, "验房员小刘");
    assert_true (o->complete_by_ms == deadline); /* the defect's own deadline */
    assert_true (o->respond_by_ms == WT_T0_MS + 24 * WT_HOUR);
    assert_string_equal (o->technician, "T01");
    assert_string_equal (wt_get (t, c)->skill, "civil");
    assert_string_equal (wt_get (t, c)->technician, "T04");
    /* the created event names the defect, for inspection to follow */
    wt_events_t e = wt_events (t, 1);
    const Pm__V1__Event *ev = wt_last (&e, "workorder.order.created", w);
    assert_non_null (ev);
    assert_string_equal (ev->order->defect_id, "E01/3-301#1");
    assert_int_equal (wt_count (&e, "workorder.order.created", NULL), 2);
    wt_events_free (&e);
}

static void
test_verification_confirms_and_archives_the_defect_order (void **state)
{
    wt_t *t = *state;
    wt_defect (t, "inspection.defect.recorded", "E01/3-301", 1, "给排水", PM__V1__SEVERITY__MAJOR,
               WT_T0_MS + 72 * WT_HOUR, NULL);
    const char *id = s_order_of_defect (t, "E01/3-301", 1);
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    /* the owner does not sign a defect's order: the inspector's verification does */
    wt_says (wt_confirm (t, id, 5, PM__V1__STATUS__CONFLICT), "inspection.defect.verified", NULL);
    wt_says (wt_reject (t, id, "no", PM__V1__STATUS__CONFLICT), "inspection.defect.reopened", NULL);
    uint64_t seq = wt_last_seq (t);
    wt_defect (t, "inspection.defect.verified", "E01/3-301", 1, "给排水", PM__V1__SEVERITY__MAJOR, 0, NULL);
    Pm__V1__WorkOrder *o = wt_get (t, id);
    assert_int_equal (o->state, PM__V1__ORDER_STATE__ARCHIVED);
    assert_string_equal (o->signed_by, "inspection");
    wt_events_t e = wt_events (t, seq + 1);
    assert_int_equal (e.n, 2);
    assert_string_equal (e.ev[0]->type, "workorder.order.confirmed");
    assert_string_equal (e.ev[1]->type, "workorder.order.archived");
    wt_events_free (&e);
    /* again: nothing more */
    seq = wt_last_seq (t);
    wt_defect (t, "inspection.defect.verified", "E01/3-301", 1, "给排水", PM__V1__SEVERITY__MAJOR, 0, NULL);
    assert_true (wt_last_seq (t) == seq);
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-01", "", "category");
    assert_int_equal (k->n_rows, 1);
    assert_string_equal (k->rows[0]->group, "defect");
    assert_int_equal (k->rows[0]->confirmed, 1);
    assert_int_equal (k->rows[0]->first_pass, 1);
    assert_int_equal (k->rows[0]->rated, 0); /* no owner's score for a defect */
    /* a verification for a defect workorder never saw is not an error */
    wt_defect (t, "inspection.defect.verified", "E01/9-999", 7, "地面", PM__V1__SEVERITY__MINOR, 0, NULL);
    assert_int_equal (pmt_queue (wt_d (t), "dead_events")->count, 0);
}

static void
test_reopened_defect_goes_back_to_its_technician (void **state)
{
    wt_t *t = *state;
    wt_defect (t, "inspection.defect.recorded", "E01/3-301", 1, "电气", PM__V1__SEVERITY__MAJOR,
               WT_T0_MS + 72 * WT_HOUR, NULL);
    const char *id = s_order_of_defect (t, "E01/3-301", 1);
    assert_string_equal (wt_get (t, id)->technician, "T01");
    /* reopened while still being worked on: nothing to do */
    uint64_t seq = wt_last_seq (t);
    wt_defect (t, "inspection.defect.reopened", "E01/3-301", 1, "电气", PM__V1__SEVERITY__MAJOR, 0, "x");
    assert_true (wt_last_seq (t) == seq);
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    wt_advance (t, "1d");
    int64_t later = WT_T0_MS + 5 * 24 * WT_HOUR;
    wt_defect (t, "inspection.defect.reopened", "E01/3-301", 1, "电气", PM__V1__SEVERITY__MAJOR, later, "插座仍无电");
    Pm__V1__WorkOrder *o = wt_get (t, id);
    assert_int_equal (o->state, PM__V1__ORDER_STATE__ASSIGNED);
    assert_string_equal (o->technician, "T01");
    assert_int_equal (o->rejections, 1);
    assert_string_equal (o->reason, "插座仍无电");
    assert_true (o->complete_by_ms == later); /* the new rectification deadline */
    wt_events_t e = wt_events (t, 1);
    assert_int_equal (wt_count (&e, "workorder.order.reopened", id), 1);
    wt_events_free (&e);
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_done (t, id, PM__V1__STATUS__OK);
    wt_defect (t, "inspection.defect.verified", "E01/3-301", 1, "电气", PM__V1__SEVERITY__MAJOR, 0, NULL);
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-01", "2026-12-31", "estate");
    assert_int_equal (k->total->confirmed, 1);
    assert_int_equal (k->total->first_pass, 0); /* reopened: not right the first time */
    assert_int_equal (k->total->rejected, 1);
}

static void
test_overdue_defect_escalates_its_order_once (void **state)
{
    wt_t *t = *state;
    int64_t deadline = WT_T0_MS + 48 * WT_HOUR;
    wt_defect (t, "inspection.defect.recorded", "E01/3-301", 1, "墙面/天花", PM__V1__SEVERITY__MINOR, deadline, NULL);
    const char *id = s_order_of_defect (t, "E01/3-301", 1);
    wt_start (t, id, PM__V1__STATUS__OK);
    uint64_t seq = wt_last_seq (t);
    wt_defect (t, "inspection.defect.overdue", "E01/3-301", 1, "墙面/天花", PM__V1__SEVERITY__MINOR, deadline, NULL);
    Pm__V1__WorkOrder *o = wt_get (t, id);
    assert_string_equal (o->priority, "urgent");
    assert_true (o->complete_breached);
    wt_events_t e = wt_events (t, seq + 1);
    assert_int_equal (e.n, 1);
    assert_string_equal (e.ev[0]->type, "workorder.sla.breached");
    assert_string_equal (e.ev[0]->sla->deadline, "complete");
    assert_string_equal (e.ev[0]->sla->team_lead, "T01 王建国");
    wt_events_free (&e);
    assert_non_null (wt_queued (t, "breached", id));
    /* its own complete-by timer does not say it again, nor a second overdue */
    wt_defect (t, "inspection.defect.overdue", "E01/3-301", 1, "墙面/天花", PM__V1__SEVERITY__MINOR, deadline, NULL);
    wt_advance (t, "3d");
    e = wt_events (t, seq + 1);
    assert_int_equal (wt_count (&e, "workorder.sla.breached", id), 1);
    wt_events_free (&e);
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-01", "2026-12-31", "estate");
    assert_int_equal (k->total->due, 1);
    assert_int_equal (k->total->on_time, 0);
}

static void
test_snapshot_restates_every_order_by_state (void **state)
{
    wt_t *t = *state;
    wt_unit (t, "E01/1-101", true);
    const char *a = wt_create (t, "E01/1-101", "water");
    const char *b = wt_create (t, "E01/1-101", "civil");
    wt_start (t, b, PM__V1__STATUS__OK);
    wt_done (t, b, PM__V1__STATUS__OK);
    wt_shift (t, "T01", false);
    wt_shift (t, "T02", false);
    const char *c = wt_create (t, "E01/1-101", "water");
    Pm__V1__EventsSnapshotRequest sb = PM__V1__EVENTS_SNAPSHOT_REQUEST__INIT;
    Pm__V1__Reply *r = wt_call (t, "events.snapshot", &sb.base, PM__V1__STATUS__OK);
    Pm__V1__EventsSnapshotReply *s = r->events_snapshot;
    assert_true (s->done);
    char *types[8] = { 0 }, *ids[8] = { 0 };
    size_t n = 0;
    for (size_t i = 0; i < s->n_events && n < 8; i++, n++) {
        assert_true (s->events[i]->snapshot);
        assert_int_equal (s->events[i]->payload_case, PM__V1__EVENT__PAYLOAD_ORDER);
        types[n] = s->events[i]->type;
        ids[n] = s->events[i]->order->order_id;
    }
    assert_int_equal (n, 3);
    assert_string_equal (ids[0], a);
    assert_string_equal (types[0], "workorder.order.assigned");
    assert_string_equal (ids[1], b);
    assert_string_equal (types[1], "workorder.order.done");
    assert_string_equal (ids[2], c);
    assert_string_equal (types[2], "workorder.order.created");
}

int
main (void)
{
    pm_log_init ("test_upstreams", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_units_and_keys_come_from_intake, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_each_defect_gets_one_rectification_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_verification_confirms_and_archives_the_defect_order, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_reopened_defect_goes_back_to_its_technician, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_overdue_defect_escalates_its_order_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_restates_every_order_by_state, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
