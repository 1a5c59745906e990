/* test_billing - billing's projection of unit areas on a real LMDB, fed with
 * intake's events through the runtime's group commit (pm_daemon_apply),
 * without sockets: what an operator reading billing's units, metrics and
 * queues would notice. */
#define _GNU_SOURCE
#include "support.h"

#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef pmt_fixture_t s_fixture_t;
typedef pmt_unit_event_t s_event_t;

static int
s_setup (void **state)
{
    *state = pmt_fixture_new (&billing_spec, NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    pmt_fixture_destroy ((pmt_fixture_t **) state);
    return 0;
}

/* --- intake's events ------------------------------------------------------------ */

/* A registered event for unit with one owner. */
static void
s_registered (s_event_t *e, uint64_t seq, const char *unit, int64_t area_cm2)
{
    pmt_unit_event (e, seq, "intake.unit.registered", unit, area_cm2);
    pmt_unit_event_owner (e, "Zhang Wei", "13812345678", "zhang.wei@example.com");
}

static void
s_updated (s_event_t *e, uint64_t seq, const char *unit, int64_t area_cm2)
{
    pmt_unit_event (e, seq, "intake.unit.updated", unit, area_cm2);
    pmt_unit_event_owner (e, "Zhang Wei", "13812345678", "zhang.wei@example.com");
}

/* --- applying ---------------------------------------------------------------------- */

/* billing.unit.get (a READ route); the reply is valid until the next apply. */
static Pm__V1__Reply *
s_unit_get (s_fixture_t *f, const char *unit_id)
{
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    Pm__V1__BillingUnitGetRequest body = PM__V1__BILLING_UNIT_GET_REQUEST__INIT;
    body.unit_id = (char *) unit_id;
    req.id = "read-unit";
    req.method = "billing.unit.get";
    assert_int_equal (pm_body_set (&req.base, "billing.unit.get", &body.base), PM_OK);
    return pmt_apply (f->d, &req);
}

static Pm__V1__BillingUnitGetReply *
s_unit_ok (s_fixture_t *f, const char *unit_id)
{
    Pm__V1__Reply *r = s_unit_get (f, unit_id);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("billing.unit.get %s: %s: %s", unit_id, pm_status_name (r->status), r->message);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_BILLING_UNIT_GET);
    assert_non_null (r->billing_unit_get);
    return r->billing_unit_get;
}

static double
s_applied_total (s_fixture_t *f)
{
    return pmt_metric (f->d, "pm_consumer_applied_total", "source=\"intake\"");
}

/* --- tests ----------------------------------------------------------------------- */

static void
test_registered_events_build_the_projection (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2;
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 0);
    s_registered (&e1, 1, "1-101", 8950);
    s_registered (&e2, 2, "1-102", 7550);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_applied (f->d, &e2.ev);

    Pm__V1__BillingUnitGetReply *u = s_unit_ok (f, "E01/1-101");
    assert_string_equal (u->unit_id, "E01/1-101");
    assert_string_equal (u->estate_id, "E01");
    assert_int_equal (u->area_cm2, 8950);
    assert_string_equal (u->from_event, "intake:1");
    u = s_unit_ok (f, "E01/1-102");
    assert_int_equal (u->area_cm2, 7550);
    assert_string_equal (u->from_event, "intake:2");
    /* the reply says the area in square metres */
    Pm__V1__Reply *r = s_unit_get (f, "E01/1-102");
    assert_non_null (strstr (r->message, "75.50 m2"));

    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 2);
    assert_true (pm_daemon_applied (f->d, "intake") == 2);
    assert_int_equal (s_applied_total (f), 2);
}

static void
test_updated_area_replaces_the_unit (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    s_registered (&e, 1, "1-101", 8950);
    pmt_event_applied (f->d, &e.ev);
    s_updated (&e, 2, "1-101", 9120);
    pmt_event_applied (f->d, &e.ev);

    Pm__V1__BillingUnitGetReply *u = s_unit_ok (f, "E01/1-101");
    assert_int_equal (u->area_cm2, 9120);
    assert_string_equal (u->from_event, "intake:2");
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 1);
}

static void
test_same_event_again_is_not_applied_twice (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2;
    s_registered (&e1, 1, "1-101", 8950);
    s_updated (&e2, 2, "1-101", 9120);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_applied (f->d, &e2.ev);
    assert_int_equal (s_applied_total (f), 2);

    /* the last one again, then the first one again: were it applied, the
     * area would go back to 8950 */
    pmt_event_ignored (f->d, &e2.ev);
    pmt_event_ignored (f->d, &e1.ev);
    assert_true (pm_daemon_applied (f->d, "intake") == 2);
    assert_int_equal (s_applied_total (f), 2);
    Pm__V1__BillingUnitGetReply *u = s_unit_ok (f, "E01/1-101");
    assert_int_equal (u->area_cm2, 9120);
    assert_string_equal (u->from_event, "intake:2");
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 1);
}

static void
test_same_event_twice_in_one_batch_applies_once (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e1b;
    s_registered (&e1, 1, "1-101", 8950);
    s_registered (&e1b, 1, "1-101", 8950);
    pm_batch_item_t items[2] = { { NULL, &e1.ev, NULL }, { NULL, &e1b.ev, NULL } };
    assert_int_equal (pm_daemon_apply (f->d, items, 2), PM_OK);
    assert_int_equal (items[0].reply->status, PM__V1__STATUS__OK);
    assert_non_null (strstr (items[1].reply->message, "not applied"));
    assert_true (pm_daemon_applied (f->d, "intake") == 1);
    assert_int_equal (s_applied_total (f), 1);
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 1);
}

static void
test_out_of_order_event_is_not_applied (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2, e3;
    s_registered (&e1, 1, "1-101", 8950);
    s_registered (&e2, 2, "1-102", 7550);
    s_registered (&e3, 3, "1-103", 10200);
    pmt_event_applied (f->d, &e1.ev);

    /* seq 3 before seq 2: a gap */
    pmt_event_ignored (f->d, &e3.ev);
    assert_true (pm_daemon_applied (f->d, "intake") == 1);
    assert_int_equal (s_applied_total (f), 1);
    assert_int_equal (s_unit_get (f, "E01/1-103")->status, PM__V1__STATUS__NOT_FOUND);
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 1);

    /* once the gap is filled, both apply in order */
    pmt_event_applied (f->d, &e2.ev);
    pmt_event_applied (f->d, &e3.ev);
    assert_int_equal (s_unit_ok (f, "E01/1-103")->area_cm2, 10200);
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 3);
    assert_int_equal (s_applied_total (f), 3);
}

static void
test_non_positive_area_goes_to_dead_events (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    assert_int_equal (pmt_queue (f->d, "dead_events")->count, 0);

    s_registered (&e, 1, "1-101", 0);
    Pm__V1__Reply *r = pmt_apply_event (f->d, &e.ev);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "E01/1-101"));
    s_registered (&e, 2, "1-102", -500);
    r = pmt_apply_event (f->d, &e.ev);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);

    /* refused by the handler, but consumed: the cursor moved past both */
    assert_true (pm_daemon_applied (f->d, "intake") == 2);
    Pm__V1__Queue *q = pmt_queue (f->d, "dead_events");
    assert_int_equal (q->count, 2);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, "intake:1");
    assert_non_null (it);
    assert_string_equal (it->unit_id, "E01/1-101");
    assert_non_null (strstr (it->reason, "area_cm2"));
    assert_string_equal (pmt_queue_field (it, "what"), "intake.unit.registered");
    it = pmt_queue_item (q, "intake:2");
    assert_non_null (it);
    assert_string_equal (it->unit_id, "E01/1-102");
    assert_int_equal (pmt_metric (f->d, "pm_events_dead_total", ""), 2);
    assert_int_equal (s_unit_get (f, "E01/1-101")->status, PM__V1__STATUS__NOT_FOUND);
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 0);

    /* later events apply: intake corrects the area */
    s_updated (&e, 3, "1-101", 8950);
    pmt_event_applied (f->d, &e.ev);
    Pm__V1__BillingUnitGetReply *u = s_unit_ok (f, "E01/1-101");
    assert_int_equal (u->area_cm2, 8950);
    assert_string_equal (u->from_event, "intake:3");
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 1);
    /* the dead items stay until someone acts on them */
    assert_int_equal (pmt_queue (f->d, "dead_events")->count, 2);
}

static void
test_event_with_the_wrong_payload_is_dead_lettered (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    s_registered (&e, 1, "1-101", 8950);
    e.ev.payload_case = PM__V1__EVENT__PAYLOAD__NOT_SET; /* a unit event without its unit */
    Pm__V1__Reply *r = pmt_apply_event (f->d, &e.ev);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "expects 'unit'"));
    assert_true (pm_daemon_applied (f->d, "intake") == 1);
    assert_non_null (pmt_queue_item (pmt_queue (f->d, "dead_events"), "intake:1"));
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 0);
}

static void
test_unknown_unit_is_not_found (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    s_registered (&e, 1, "1-101", 8950);
    pmt_event_applied (f->d, &e.ev);
    Pm__V1__Reply *r = s_unit_get (f, "E01/9-999");
    assert_int_equal (r->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "E01/9-999"));
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY__NOT_SET);
}

static void
test_empty_unit_id_is_invalid (void **state)
{
    s_fixture_t *f = *state;
    Pm__V1__Reply *r = s_unit_get (f, "");
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "unit_id"));
}

static void
test_state_survives_restart (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2, e3;
    s_registered (&e1, 1, "1-101", 8950);
    s_registered (&e2, 2, "1-102", 7550);
    s_registered (&e3, 3, "1-103", 10200);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_applied (f->d, &e2.ev);

    pmt_fixture_restart (f);

    assert_true (pm_daemon_applied (f->d, "intake") == 2);
    assert_int_equal (s_applied_total (f), 2);
    Pm__V1__BillingUnitGetReply *u = s_unit_ok (f, "E01/1-101");
    assert_int_equal (u->area_cm2, 8950);
    assert_string_equal (u->from_event, "intake:1");
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 2);

    /* the cursor continues: old events are ignored, the next one applies */
    pmt_event_ignored (f->d, &e2.ev);
    pmt_event_ignored (f->d, &e1.ev);
    assert_int_equal (s_applied_total (f), 2);
    pmt_event_applied (f->d, &e3.ev);
    assert_int_equal (s_unit_ok (f, "E01/1-103")->area_cm2, 10200);
    assert_int_equal (pmt_metric (f->d, "billing_units", ""), 3);
    assert_int_equal (s_applied_total (f), 3);
}

int
main (void)
{
    pm_log_init ("test_billing", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_registered_events_build_the_projection, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_updated_area_replaces_the_unit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_same_event_again_is_not_applied_twice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_same_event_twice_in_one_batch_applies_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_out_of_order_event_is_not_applied, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_non_positive_area_goes_to_dead_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_event_with_the_wrong_payload_is_dead_lettered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_unit_is_not_found, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_empty_unit_id_is_invalid, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_state_survives_restart, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
