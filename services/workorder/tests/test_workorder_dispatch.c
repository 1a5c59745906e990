/* test_dispatch - who gets an order: the least-loaded fit technician with
 * deterministic ties (auto), the dispatcher's choice (manual), the first
 * claim (抢单); refusals that name why; the roster from the staff file and
 * workorder.staff.set. */
#include "wo_test.h"

#include <unistd.h>

static int
s_setup (void **state)
{
    wt_t *t = wt_new (NULL);
    wt_unit (t, "E01/1-101", true);
    wt_unit (t, "E02/5-501", true);
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
s_tech_of (wt_t *t, const char *id)
{
    return wt_keep (t, wt_get (t, id)->technician);
}

static void
test_auto_picks_the_least_loaded_with_deterministic_ties (void **state)
{
    wt_t *t = *state;
    /* water in E01: T01 (the lead) and T02; both free: the smaller id */
    const char *o1 = wt_create (t, "E01/1-101", "water");
    assert_string_equal (s_tech_of (t, o1), "T01");
    wt_advance (t, "1m");
    const char *o2 = wt_create (t, "E01/1-101", "water"); /* T01 has one */
    assert_string_equal (s_tech_of (t, o2), "T02");
    wt_advance (t, "1m");
    wt_cancel (t, o1, "重复报修", PM__V1__STATUS__OK);
    wt_cancel (t, o2, "重复报修", PM__V1__STATUS__OK);
    /* both free again: the one waiting longest since its last assignment (T01) */
    const char *o3 = wt_create (t, "E01/1-101", "water");
    assert_string_equal (s_tech_of (t, o3), "T01");
    const char *o4 = wt_create (t, "E01/1-101", "water");
    assert_string_equal (s_tech_of (t, o4), "T02");
    /* electric: only T01 and T03 have the skill */
    const char *o5 = wt_create (t, "E01/1-101", "electric");
    assert_string_equal (s_tech_of (t, o5), "T03");
    /* elevator: T03 alone, however loaded */
    assert_string_equal (s_tech_of (t, wt_create (t, "E01/1-101", "elevator")), "T03");
    assert_int_equal (wt_tech (t, "T03")->open_orders, 2);
    assert_int_equal (wt_tech (t, "T01")->open_orders, 1);
}

static void
test_assigning_the_unfit_is_refused_with_who_fits (void **state)
{
    wt_t *t = *state;
    wt_shift (t, "T01", false);
    const char *id = wt_create (t, "E01/1-101", "water");
    assert_string_equal (s_tech_of (t, id), "T02"); /* T01 is off shift */
    uint64_t seq = wt_last_seq (t);
    Pm__V1__Reply *r = wt_assign (t, id, "T01", PM__V1__STATUS__CONFLICT);
    wt_says (r, "cannot go to T01", "T01 王建国 is off shift", "fit now: T02", "stays ASSIGNED", NULL);
    r = wt_assign (t, id, "T03", PM__V1__STATUS__CONFLICT);
    wt_says (r, "no 'water' skill", "has electric, elevator", NULL);
    r = wt_assign (t, id, "T11", PM__V1__STATUS__CONFLICT);
    wt_says (r, "does not cover E01", NULL);
    r = wt_assign (t, id, "T99", PM__V1__STATUS__NOT_FOUND);
    wt_says (r, "no technician 'T99'", "T01, T02, T03, T04", NULL);
    r = wt_assign (t, id, "", PM__V1__STATUS__INVALID);
    assert_true (wt_last_seq (t) == seq);
    assert_string_equal (s_tech_of (t, id), "T02");
    /* reassigning moves the load */
    wt_shift (t, "T01", true);
    wt_assign (t, id, "T01", PM__V1__STATUS__OK);
    assert_int_equal (wt_tech (t, "T01")->open_orders, 1);
    assert_int_equal (wt_tech (t, "T02")->open_orders, 0);
    assert_string_equal (wt_get (t, id)->dispatch, "manual");
}

static void
test_order_waits_until_a_fit_technician_comes_on_shift (void **state)
{
    wt_t *t = *state;
    wt_shift (t, "T01", false);
    wt_shift (t, "T02", false);
    const char *id = wt_create (t, "E01/1-101", "water");
    assert_int_equal (wt_state (t, id), PM__V1__ORDER_STATE__ORDER_OPEN);
    const Pm__V1__QueueItem *it = wt_queued (t, "unassigned", id);
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "no technician on shift with the 'water' skill covers E01"));
    assert_non_null (strstr (it->reason, "off shift: T01, T02"));
    Pm__V1__Reply *r = wt_shift (t, "T02", true);
    assert_int_equal (r->workorder_staff_set->n_assigned, 1);
    assert_string_equal (r->workorder_staff_set->assigned[0], id);
    assert_string_equal (s_tech_of (t, id), "T02");
    assert_null (wt_queued (t, "unassigned", id));
    wt_events_t e = wt_events (t, 1);
    assert_int_equal (wt_count (&e, "workorder.order.assigned", id), 1);
    wt_events_free (&e);
}

static void
test_claims_first_one_wins_and_the_second_hears_who (void **state)
{
    wt_t *t = *state;
    const char *id = wt_create (t, "E02/5-501", "water"); /* E02 is open for claiming */
    assert_int_equal (wt_state (t, id), PM__V1__ORDER_STATE__ORDER_OPEN);
    assert_non_null (strstr (wt_queued (t, "unassigned", id)->reason, "open for claiming"));
    wt_says (wt_claim (t, id, "T13", PM__V1__STATUS__CONFLICT), "no 'water' skill", NULL);
    wt_says (wt_claim (t, id, "T02", PM__V1__STATUS__CONFLICT), "does not cover E02", NULL);

    /* two technicians claim in the same batch: the first wins */
    Pm__V1__WorkorderClaimRequest b1 = PM__V1__WORKORDER_CLAIM_REQUEST__INIT, b2 = b1;
    b1.order_id = b2.order_id = (char *) id;
    b1.technician = "T12";
    b2.technician = "T11";
    Pm__V1__Request *r1 = pmt_req ("claim-1", "workorder.claim", "app:T12");
    Pm__V1__Request *r2 = pmt_req ("claim-2", "workorder.claim", "app:T11");
    pm_body_set (&r1->base, "workorder.claim", &b1.base);
    pm_body_set (&r2->base, "workorder.claim", &b2.base);
    pm_batch_item_t items[2] = { { r1, NULL, NULL }, { r2, NULL, NULL } };
    assert_int_equal (pm_daemon_apply (wt_d (t), items, 2), PM_OK);
    assert_int_equal (items[0].reply->status, PM__V1__STATUS__OK);
    assert_int_equal (items[1].reply->status, PM__V1__STATUS__CONFLICT);
    wt_says (items[1].reply, "claimed first by T12", "is ASSIGNED", NULL);
    r1->body_case = r2->body_case = PM__V1__REQUEST__BODY__NOT_SET; /* the bodies are on the stack */
    pmt_req_free (r1);
    pmt_req_free (r2);
    Pm__V1__WorkOrder *o = wt_get (t, id);
    assert_string_equal (o->technician, "T12");
    assert_string_equal (o->dispatch, "claim");
    assert_string_equal (o->team_lead, "T11 赵国平");
    /* a later claim, after the start, still names the winner */
    wt_start (t, id, PM__V1__STATUS__OK);
    wt_says (wt_claim (t, id, "T11", PM__V1__STATUS__CONFLICT), "claimed first by T12", "IN_PROGRESS", NULL);
    /* claims are not taken where orders go out automatically */
    const char *auto_id = wt_create (t, "E01/1-101", "water");
    wt_says (wt_claim (t, auto_id, "T02", PM__V1__STATUS__CONFLICT), "is ASSIGNED", NULL);
    wt_shift (t, "T01", false);
    wt_shift (t, "T02", false);
    const char *waiting = wt_create (t, "E01/1-101", "water");
    wt_says (wt_claim (t, waiting, "T02", PM__V1__STATUS__CONFLICT), "dispatches automatically", NULL);
}

static void
test_manual_estate_waits_for_the_dispatcher (void **state)
{
    wt_t *t = *state;
    Pm__V1__WorkorderDispatchSetRequest b = PM__V1__WORKORDER_DISPATCH_SET_REQUEST__INIT;
    b.estate_id = "E01";
    b.mode = "by-hand";
    wt_says (wt_call (t, "workorder.dispatch.set", &b.base, PM__V1__STATUS__INVALID), "mode 'by-hand'", NULL);
    b.mode = "manual";
    Pm__V1__Reply *r = wt_call (t, "workorder.dispatch.set", &b.base, PM__V1__STATUS__OK);
    assert_string_equal (r->workorder_dispatch_set->previous, "auto");
    const char *a = wt_create (t, "E01/1-101", "water");
    const char *c = wt_create (t, "E01/1-101", "civil");
    assert_int_equal (wt_state (t, a), PM__V1__ORDER_STATE__ORDER_OPEN);
    assert_non_null (strstr (wt_queued (t, "unassigned", a)->reason, "dispatches by hand"));
    wt_says (wt_start (t, a, PM__V1__STATUS__CONFLICT), "is OPEN", "workorder.assign", NULL);
    wt_assign (t, a, "T02", PM__V1__STATUS__OK);
    assert_int_equal (wt_state (t, a), PM__V1__ORDER_STATE__ASSIGNED);
    assert_int_equal (pmt_queue (wt_d (t), "unassigned")->count, 1);
    /* back to auto: the waiting order goes out at once */
    b.mode = "auto";
    wt_says (wt_call (t, "workorder.dispatch.set", &b.base, PM__V1__STATUS__OK), "1 waiting order, 1 assigned", NULL);
    assert_string_equal (s_tech_of (t, c), "T01");
    assert_int_equal (pmt_queue (wt_d (t), "unassigned")->count, 0);
}

static void
test_staff_set_validates_and_keeps_open_orders_safe (void **state)
{
    wt_t *t = *state;
    Pm__V1__WorkorderStaffSetRequest b = PM__V1__WORKORDER_STAFF_SET_REQUEST__INIT;
    b.technician = "T05";
    wt_says (wt_call (t, "workorder.staff.set", &b.base, PM__V1__STATUS__INVALID), "T05 is new", "name", NULL);
    char *estates[] = { "E01" }, *skills[] = { "plumbing" };
    b.name = "钱师傅";
    b.team = "A";
    b.estates = estates;
    b.n_estates = 1;
    b.skills = skills;
    b.n_skills = 1;
    wt_says (wt_call (t, "workorder.staff.set", &b.base, PM__V1__STATUS__INVALID), "skills[0] 'plumbing'",
             "water, electric", NULL);
    skills[0] = "elevator";
    Pm__V1__Reply *r = wt_call (t, "workorder.staff.set", &b.base, PM__V1__STATUS__OK);
    Pm__V1__Technician *tech = r->workorder_staff_set->technician;
    assert_true (tech->on_shift);
    assert_string_equal (tech->origin, "staff.set");
    assert_string_equal (tech->team_name, "A");
    /* elevator orders now split between T03 and T05 */
    const char *e1 = wt_create (t, "E01/1-101", "elevator");
    const char *e2 = wt_create (t, "E01/1-101", "elevator");
    assert_string_equal (s_tech_of (t, e1), "T03");
    assert_string_equal (s_tech_of (t, e2), "T05");
    /* removing a technician holding orders is refused */
    Pm__V1__WorkorderStaffSetRequest rm = PM__V1__WORKORDER_STAFF_SET_REQUEST__INIT;
    rm.technician = "T05";
    rm.remove = true;
    wt_says (wt_call (t, "workorder.staff.set", &rm.base, PM__V1__STATUS__CONFLICT), "holds 1 order", NULL);
    wt_cancel (t, e2, "重复", PM__V1__STATUS__OK);
    wt_call (t, "workorder.staff.set", &rm.base, PM__V1__STATUS__OK);
    Pm__V1__WorkorderStaffGetRequest g = PM__V1__WORKORDER_STAFF_GET_REQUEST__INIT;
    g.technician = "T05";
    wt_call (t, "workorder.staff.get", &g.base, PM__V1__STATUS__NOT_FOUND);
    g.technician = "";
    g.estate_id = "E02";
    r = wt_call (t, "workorder.staff.get", &g.base, PM__V1__STATUS__OK);
    assert_int_equal (r->workorder_staff_get->n_technicians, 5); /* T11-T13 and the complaint desk */
}

/* --- the staff file ------------------------------------------------------------------------ */

static void
s_write (const char *path, const char *text)
{
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
}

static void
test_staff_file_applies_when_it_changes (void **state)
{
    (void) state;
    char *dir = pmt_tmpdir ();
    char path[256], extra[512];
    snprintf (path, sizeof path, "%s/staff.csv", dir);
    s_write (path, "technician,name,team,role,estates,skills,on_shift\n"
                   "X1,甲,A,lead,E01,water,yes\n"
                   "X2,乙,A,technician,E01,water,yes\n");
    snprintf (extra, sizeof extra, "[workorder]\nstaff = %s\n", path);
    wt_t *t = wt_new (extra);
    assert_string_equal (wt_tech (t, "X1")->origin, "file");
    wt_shift (t, "X1", false);
    pmt_fixture_restart (t->f); /* the same file: the shift change stays */
    assert_false (wt_tech (t, "X1")->on_shift);
    s_write (path, "technician,name,team,role,estates,skills,on_shift\n"
                   "X1,甲,A,lead,E01,water;civil,yes\n");
    pmt_fixture_restart (t->f); /* a changed file: as it says, and X2 is gone */
    Pm__V1__Technician *x1 = wt_tech (t, "X1");
    assert_true (x1->on_shift);
    assert_int_equal (x1->n_skills, 2);
    Pm__V1__WorkorderStaffGetRequest g = PM__V1__WORKORDER_STAFF_GET_REQUEST__INIT;
    g.technician = "X2";
    wt_call (t, "workorder.staff.get", &g.base, PM__V1__STATUS__NOT_FOUND);
    wt_free (&t);
    pmt_rmdir (dir);
}

int
main (void)
{
    pm_log_init ("test_dispatch", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_auto_picks_the_least_loaded_with_deterministic_ties, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_assigning_the_unfit_is_refused_with_who_fits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_order_waits_until_a_fit_technician_comes_on_shift, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_claims_first_one_wins_and_the_second_hears_who, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_manual_estate_waits_for_the_dispatcher, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_staff_set_validates_and_keeps_open_orders_safe, s_setup, s_teardown),
        cmocka_unit_test (test_staff_file_applies_when_it_changes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
