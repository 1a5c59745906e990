/* test_kpi - the KPIs are exact: a hand-computed estate, then estates driven
 * at random through every path of the loop (defects, orders created, done and
 * cancelled, overdue deadlines, verification, reopening, acceptance, units
 * left mid-round), whose inspection.kpi, per estate and per building, must
 * equal what is recomputed independently from the events inspection emitted
 * (and the intake events it was fed). */
#include "insp_test.h"

/* --- a small estate by hand ---------------------------------------------------------- */

static void
test_kpi_arithmetic_by_hand (void **state)
{
    /* building 1: A passes round 1; B fails with 2 defects, verified 2 and 3 days later.
     * building 2: C fails with 1 defect, accepted with it; D registered only. */
    const char *A = "E01/1/1-101", *B = "E01/1/1-102", *C = "E01/2/2-201", *D = "E01/2/2-202";
    t_checked_in (A);
    t_checked_in (B);
    t_checked_in (C);
    t_intake_unit ("intake.unit.registered", D);
    t_start (A, false, PM__V1__STATUS__OK);
    t_all_ok (A, PM__V1__STATUS__OK);
    t_complete (A, PM__V1__STATUS__OK);
    t_start (B, false, PM__V1__STATUS__OK);
    char b1[64], b2[64];
    strcpy (b1, t_defect (B, "厨房", "给排水"));
    strcpy (b2, t_defect (B, "卫生间", "给排水"));
    t_all_ok (B, PM__V1__STATUS__OK);
    t_complete (B, PM__V1__STATUS__OK);
    t_start (C, false, PM__V1__STATUS__OK);
    t_defect (C, "厨房", "电气");
    t_all_ok (C, PM__V1__STATUS__OK);
    t_complete (C, PM__V1__STATUS__OK);
    t_accept (C, "SIG-C", PM__V1__STATUS__OK);
    t_rectify (b1);
    t_rectify (b2);
    t_advance ("2d");
    t_start (B, false, PM__V1__STATUS__OK);
    t_verify (b1, PM__V1__STATUS__OK);
    t_reopen (b2, "仍渗水", PM__V1__STATUS__OK);
    t_complete (B, PM__V1__STATUS__OK);
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", b2);
    t_order ("reopened", oid, b2, PM__V1__ORDER_STATE__ASSIGNED);
    t_order ("done", oid, b2, PM__V1__ORDER_STATE__DONE);
    t_advance ("1d");
    t_start (B, false, PM__V1__STATUS__OK);
    t_verify (b2, PM__V1__STATUS__OK);
    t_complete (B, PM__V1__STATUS__OK);

    Pm__V1__InspectionKpiReply *r = t_kpi ("E01");
    Pm__V1__InspectionKpi *e = r->estate;
    assert_int_equal (e->units, 4);
    assert_int_equal (e->units_opened, 3);
    assert_int_equal (e->units_inspected, 3);
    assert_int_equal (e->first_rounds_completed, 3);
    assert_int_equal (e->first_rounds_passed, 1);
    assert_true (e->first_time_pass_rate == 1.0 / 3.0);
    assert_int_equal (e->units_passed, 2);
    assert_int_equal (e->units_accepted_with_defects, 1);
    assert_int_equal (e->units_failed_twice, 1);
    assert_int_equal (e->defects, 3);
    assert_true (e->defects_per_unit == 1.0);
    assert_int_equal (e->defects_open, 1);
    assert_int_equal (e->defects_verified, 2);
    assert_true (e->verify_ms_total == 5 * 86400000LL);
    assert_true (e->mean_days_to_verify == 2.5);
    assert_int_equal (e->overdue, 1); /* C's MAJOR defect: 3 days passed */
    assert_int_equal (e->overdue_open, 1);
    assert_int_equal (e->n_by_category, 2);
    assert_string_equal (e->by_category[0]->name, "给排水"); /* in the form's order */
    assert_int_equal (e->by_category[0]->count, 2);
    assert_string_equal (e->by_category[1]->name, "电气");
    assert_true (e->by_category[1]->per_unit == 1.0 / 3.0);
    assert_int_equal (e->n_by_room, 2);
    assert_int_equal (r->n_buildings, 2);
    Pm__V1__InspectionKpi *b = r->buildings[0];
    assert_string_equal (b->building, "1");
    assert_int_equal (b->units, 2);
    assert_true (b->first_time_pass_rate == 0.5);
    assert_true (b->defects_per_unit == 1.0);
    assert_true (b->mean_days_to_verify == 2.5);
    b = r->buildings[1];
    assert_string_equal (b->building, "2");
    assert_int_equal (b->units, 2);
    assert_int_equal (b->units_inspected, 1);
    assert_true (b->first_time_pass_rate == 0.0);
    assert_int_equal (b->defects_verified, 0);
    assert_true (b->mean_days_to_verify == 0.0);

    /* the same in ops.metrics */
    assert_true (pmt_metric (g->f->d, "inspection_first_time_pass_rate", "estate=\"E01\"") == 1.0 / 3.0);
    /* per building only in inspection.kpi: a gauge per building was 75,000 series at a million units */
    assert_true (pmt_metric_or (g->f->d, "inspection_first_time_pass_rate", "estate=\"E01\",building=\"1\"", -1) == -1);
    assert_true (pmt_metric (g->f->d, "inspection_mean_days_to_verify", "estate=\"E01\"") == 2.5);
    assert_true (pmt_metric (g->f->d, "inspection_defects_by_category", "estate=\"E01\",category=\"给排水\"") == 2);
    assert_true (pmt_metric (g->f->d, "inspection_defects_by_room", "estate=\"E01\",room=\"厨房\"") == 2);
    assert_true (pmt_metric (g->f->d, "inspection_defects_overdue", "estate=\"E01\"") == 1);
}

static void
test_kpi_refusals (void **state)
{
    Pm__V1__InspectionKpiRequest b = PM__V1__INSPECTION_KPI_REQUEST__INIT;
    b.estate_id = "";
    t_call ("inspection.kpi", &b.base, PM__V1__STATUS__INVALID);
    b.estate_id = "E77";
    Pm__V1__Reply *r = t_call ("inspection.kpi", &b.base, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "E77"));
}

/* --- at random, recomputed from the events -------------------------------------------- */

static uint64_t s_rng;

static unsigned
s_rand (unsigned n)
{
    s_rng = s_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned) ((s_rng >> 33) % n);
}

#define S_UNITS 36
#define S_MAXB 8

/* What the test recomputes for one estate or building. */
typedef struct {
    char building[8];
    uint64_t units, opened, inspected, first_completed, first_passed, passed, accepted, failed_twice, defects,
        defects_open, verified, overdue, overdue_open;
    int64_t verify_ms;
    struct {
        char name[64];
        uint64_t n;
    } cat[16], room[32];
    size_t ncat, nroom;
} s_calc_t;

/* Counts by name (category or room). */
static void
s_named (void *arr, size_t *count, const char *what)
{
    struct {
        char name[64];
        uint64_t n;
    } *a = arr;
    for (size_t i = 0; i < *count; i++)
        if (strcmp (a[i].name, what) == 0) {
            a[i].n++;
            return;
        }
    snprintf (a[*count].name, sizeof a[*count].name, "%s", what);
    a[(*count)++].n = 1;
}

/* The entry for building b ("" = the estate). */
static s_calc_t *
s_calc_of (s_calc_t *c, size_t *n, const char *b)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp (c[i].building, b) == 0)
            return &c[i];
    memset (&c[*n], 0, sizeof c[*n]);
    snprintf (c[*n].building, sizeof c[*n].building, "%s", b);
    return &c[(*n)++];
}

static const char *
s_building_of (const char *unit_id, char *buf)
{
    sscanf (unit_id, "%*[^/]/%7[^/]", buf);
    return buf;
}

/* Recomputes the KPIs of estate E01 from the fed intake events and the log. */
static size_t
s_recompute (s_calc_t *c, const char *const *units, size_t nunits, const bool *checked_in)
{
    size_t n = 0;
    char bb[8];
    s_calc_of (c, &n, "");
    for (size_t i = 0; i < nunits; i++) {
        const char *bs[2] = { "", s_building_of (units[i], bb) };
        for (int j = 0; j < 2; j++) {
            s_calc_t *x = s_calc_of (c, &n, bs[j]);
            x->units++;
            x->opened += checked_in[i];
        }
    }
    /* failed rounds per unit, and each defect's latest event */
    struct {
        char unit[48];
        int failed;
    } failed[S_UNITS];
    size_t nfailed = 0;
    struct {
        const Pm__V1__Defect *d;
    } latest[512];
    size_t nlatest = 0;
    for (size_t i = 0; i < g->nlog; i++) {
        const Pm__V1__Event *ev = g->log[i];
        const char *b = "";
        if (ev->payload_case == PM__V1__EVENT__PAYLOAD_DEFECT)
            b = ev->defect->building;
        else if (ev->payload_case == PM__V1__EVENT__PAYLOAD_ROUND)
            b = ev->round->building;
        else if (ev->payload_case == PM__V1__EVENT__PAYLOAD_ACCEPTED)
            b = ev->accepted->building;
        const char *bs[2] = { "", b };
        for (int j = 0; j < 2; j++) {
            s_calc_t *x = s_calc_of (c, &n, bs[j]);
            const char *t = ev->type;
            if (!strcmp (t, "inspection.round.opened") && ev->round->round_no == 1)
                x->inspected++;
            if ((!strcmp (t, "inspection.round.passed") || !strcmp (t, "inspection.round.failed"))
                && ev->round->round_no == 1) {
                x->first_completed++;
                x->first_passed += ev->round->passed;
            }
            if (!strcmp (t, "inspection.round.passed"))
                x->passed++;
            if (!strcmp (t, "inspection.accepted_with_defects"))
                x->accepted++;
            if (!strcmp (t, "inspection.defect.recorded")) {
                x->defects++;
                s_named (x->cat, &x->ncat, ev->defect->category);
                s_named (x->room, &x->nroom, ev->defect->room);
            }
            if (!strcmp (t, "inspection.defect.verified")) {
                x->verified++;
                x->verify_ms += ev->at_ms - ev->defect->recorded_ms;
            }
            if (!strcmp (t, "inspection.defect.overdue"))
                x->overdue++;
        }
        if (!strcmp (ev->type, "inspection.round.failed")) {
            size_t k = 0;
            while (k < nfailed && strcmp (failed[k].unit, ev->unit_id))
                k++;
            if (k == nfailed) {
                snprintf (failed[k].unit, sizeof failed[k].unit, "%s", ev->unit_id);
                failed[nfailed++].failed = 0;
            }
            if (++failed[k].failed == 2) {
                char fb[8];
                s_calc_of (c, &n, "")->failed_twice++;
                s_calc_of (c, &n, s_building_of (ev->unit_id, fb))->failed_twice++;
            }
        }
        if (ev->payload_case == PM__V1__EVENT__PAYLOAD_DEFECT) {
            size_t k = 0;
            while (k < nlatest && strcmp (latest[k].d->defect_id, ev->defect->defect_id))
                k++;
            assert_true (k < 512);
            latest[k].d = ev->defect;
            nlatest += k == nlatest;
        }
    }
    for (size_t k = 0; k < nlatest; k++) {
        const Pm__V1__Defect *d = latest[k].d;
        const char *bs[2] = { "", d->building };
        for (int j = 0; j < 2; j++) {
            s_calc_t *x = s_calc_of (c, &n, bs[j]);
            x->defects_open += d->state != PM__V1__DEFECT_STATE__VERIFIED;
            x->overdue_open += d->overdue && (d->state == PM__V1__DEFECT_STATE__DEFECT_OPEN
                                              || d->state == PM__V1__DEFECT_STATE__RECTIFYING);
        }
    }
    return n;
}

static void
s_compare (const s_calc_t *x, const Pm__V1__InspectionKpi *k)
{
    assert_string_equal (k->building, x->building);
    assert_int_equal (k->units, x->units);
    assert_int_equal (k->units_opened, x->opened);
    assert_int_equal (k->units_inspected, x->inspected);
    assert_int_equal (k->first_rounds_completed, x->first_completed);
    assert_int_equal (k->first_rounds_passed, x->first_passed);
    assert_true (k->first_time_pass_rate
                 == (x->first_completed ? (double) x->first_passed / (double) x->first_completed : 0));
    assert_int_equal (k->units_passed, x->passed);
    assert_int_equal (k->units_accepted_with_defects, x->accepted);
    assert_int_equal (k->units_failed_twice, x->failed_twice);
    assert_int_equal (k->defects, x->defects);
    assert_true (k->defects_per_unit == (x->inspected ? (double) x->defects / (double) x->inspected : 0));
    assert_int_equal (k->defects_open, x->defects_open);
    assert_int_equal (k->defects_verified, x->verified);
    assert_true (k->verify_ms_total == x->verify_ms);
    assert_true (k->mean_days_to_verify
                 == (x->verified ? (double) x->verify_ms / (double) x->verified / 86400000.0 : 0));
    assert_int_equal (k->overdue, x->overdue);
    assert_int_equal (k->overdue_open, x->overdue_open);
    assert_int_equal (k->n_by_category, x->ncat);
    for (size_t i = 0; i < x->ncat; i++) {
        bool found = false;
        for (size_t j = 0; j < k->n_by_category; j++)
            if (!strcmp (k->by_category[j]->name, x->cat[i].name)) {
                found = true;
                assert_int_equal (k->by_category[j]->count, x->cat[i].n);
                assert_true (k->by_category[j]->per_unit == (double) x->cat[i].n / (double) x->inspected);
            }
        assert_true (found);
    }
    assert_int_equal (k->n_by_room, x->nroom);
    for (size_t i = 0; i < x->nroom; i++) {
        bool found = false;
        for (size_t j = 0; j < k->n_by_room; j++)
            if (!strcmp (k->by_room[j]->name, x->room[i].name)) {
                found = true;
                assert_int_equal (k->by_room[j]->count, x->room[i].n);
            }
        assert_true (found);
    }
}

/* One step of a unit's life, chosen at random among what its state allows. */
static void
s_step (const char *unit, Pm__V1__ChecklistItem **items, size_t nitems, unsigned *orders)
{
    Pm__V1__InspectionUnitGetReply *u = t_unit (unit);
    /* copy what we need: the reply dies with the next call */
    char ids[16][64];
    Pm__V1__DefectState states[16];
    char last[16][24];
    size_t nd = u->n_defects < 16 ? u->n_defects : 16;
    for (size_t i = 0; i < nd; i++) {
        snprintf (ids[i], sizeof ids[i], "%s", u->defects[i]->defect->defect_id);
        states[i] = u->defects[i]->defect->state;
        const Pm__V1__DefectView *v = u->defects[i];
        snprintf (last[i], sizeof last[i], "%s", v->history[v->n_history - 1]->what);
    }
    Pm__V1__InspectionStatus st = u->status;
    bool accepted = u->accepted_with_defects;
    bool full_pending = st == PM__V1__INSPECTION_STATUS__INSPECTION_IN_ROUND
                        && u->rounds[u->n_rounds - 1]->items_recorded < u->rounds[u->n_rounds - 1]->items_total;
    switch (st) {
    case PM__V1__INSPECTION_STATUS__INSPECTION_AWAITING:
        if (s_rand (10) < 8)
            t_start (unit, false, PM__V1__STATUS__OK);
        break;
    case PM__V1__INSPECTION_STATUS__INSPECTION_IN_ROUND: {
        unsigned k = s_rand (10) < 4 ? 0 : 1 + s_rand (3);
        for (unsigned i = 0; i < k && nd + i < 16; i++) {
            const Pm__V1__ChecklistItem *it = items[s_rand ((unsigned) nitems)];
            t_defect_sev (unit, it->room, it->category, (Pm__V1__Severity) (1 + s_rand (3)), PM__V1__STATUS__OK);
        }
        if (full_pending)
            t_all_ok (unit, PM__V1__STATUS__OK);
        for (size_t i = 0; i < nd; i++)
            if (states[i] == PM__V1__DEFECT_STATE__RECTIFIED) {
                if (s_rand (10) < 8)
                    t_verify (ids[i], PM__V1__STATUS__OK);
                else
                    t_reopen (ids[i], "not fixed", PM__V1__STATUS__OK);
            }
        if (s_rand (10) < 8)
            t_complete (unit, PM__V1__STATUS__OK);
        break;
    }
    case PM__V1__INSPECTION_STATUS__INSPECTION_FAILED:
    case PM__V1__INSPECTION_STATUS__INSPECTION_REINSPECTION_DUE:
        for (size_t i = 0; i < nd; i++) {
            char oid[96];
            snprintf (oid, sizeof oid, "WO-%u", *orders);
            if (states[i] == PM__V1__DEFECT_STATE__DEFECT_OPEN && s_rand (10) < 7) {
                if (!strcmp (last[i], "reopened")) {
                    Pm__V1__DefectView *v = t_defect_view (t_unit (unit), ids[i]);
                    snprintf (oid, sizeof oid, "%s", v->defect->order_id);
                    t_order ("reopened", oid, ids[i], PM__V1__ORDER_STATE__ASSIGNED);
                } else {
                    ++*orders;
                    t_order ("created", oid, ids[i], PM__V1__ORDER_STATE__ORDER_OPEN);
                }
            } else if (states[i] == PM__V1__DEFECT_STATE__RECTIFIED && s_rand (10) == 0) {
                /* the owner rejects the work before the inspector comes: back to work */
                Pm__V1__DefectView *v = t_defect_view (t_unit (unit), ids[i]);
                snprintf (oid, sizeof oid, "%s", v->defect->order_id);
                t_order ("rejected", oid, ids[i], PM__V1__ORDER_STATE__ASSIGNED);
            } else if (states[i] == PM__V1__DEFECT_STATE__RECTIFYING) {
                Pm__V1__DefectView *v = t_defect_view (t_unit (unit), ids[i]);
                snprintf (oid, sizeof oid, "%s", v->defect->order_id);
                unsigned r = s_rand (20);
                if (r < 11)
                    t_order ("done", oid, ids[i], PM__V1__ORDER_STATE__DONE);
                else if (r == 11)
                    t_order ("cancelled", oid, ids[i], PM__V1__ORDER_STATE__CANCELLED);
            }
        }
        if (!accepted && s_rand (10) == 0)
            t_accept (unit, "SIG", PM__V1__STATUS__OK);
        /* still due (a rejection above may have sent a defect back to work)? */
        if (s_rand (10) < 8 && t_unit (unit)->status == PM__V1__INSPECTION_STATUS__INSPECTION_REINSPECTION_DUE)
            t_start (unit, s_rand (10) == 0, PM__V1__STATUS__OK);
        break;
    default:
        break;
    }
}

static void
s_random_estate (uint64_t seed)
{
    s_rng = seed;
    static char names[S_UNITS][48];
    const char *units[S_UNITS];
    bool checked_in[S_UNITS];
    unsigned nb = 2 + s_rand (3);
    for (unsigned i = 0; i < S_UNITS; i++) {
        snprintf (names[i], sizeof names[i], "E01/%u/%u-%u", 1 + i % nb, 1 + i % nb, 101 + i);
        units[i] = names[i];
        t_intake_unit ("intake.unit.registered", units[i]);
        checked_in[i] = s_rand (10) < 9;
        if (checked_in[i])
            t_intake_unit ("intake.unit.checked_in", units[i]);
    }
    Pm__V1__InspectionTemplateGetRequest tb = PM__V1__INSPECTION_TEMPLATE_GET_REQUEST__INIT;
    tb.estate_id = "E01";
    Pm__V1__InspectionTemplateGetReply *tpl =
        t_call ("inspection.template.get", &tb.base, PM__V1__STATUS__OK)->inspection_template_get;
    /* the checklist outlives the calls to come: copy it */
    Pm__V1__ChecklistItem store[64], *items[64];
    char text[64][2][64];
    size_t nitems = tpl->n_items < 64 ? tpl->n_items : 64;
    for (size_t i = 0; i < nitems; i++) {
        pm__v1__checklist_item__init (&store[i]);
        snprintf (text[i][0], 64, "%s", tpl->items[i]->room);
        snprintf (text[i][1], 64, "%s", tpl->items[i]->category);
        store[i].room = text[i][0];
        store[i].category = text[i][1];
        items[i] = &store[i];
    }
    unsigned orders = 0;
    for (int cycle = 0; cycle < 12; cycle++) {
        for (unsigned i = 0; i < S_UNITS; i++)
            if (s_rand (10) < 7)
                s_step (units[i], items, nitems, &orders);
        char by[16];
        snprintf (by, sizeof by, "%uh", s_rand (60));
        t_advance (by);
    }
    s_calc_t calc[S_MAXB + 1];
    size_t n = s_recompute (calc, units, S_UNITS, checked_in);
    Pm__V1__InspectionKpiReply *r = t_kpi ("E01");
    s_compare (&calc[0], r->estate);
    assert_int_equal (r->n_buildings, n - 1);
    for (size_t i = 1; i < n; i++) {
        const Pm__V1__InspectionKpi *k = NULL;
        for (size_t j = 0; j < r->n_buildings; j++)
            if (!strcmp (r->buildings[j]->building, calc[i].building))
                k = r->buildings[j];
        assert_non_null (k);
        s_compare (&calc[i], k);
    }
    /* the scenario reached the interesting paths */
    assert_true (calc[0].verified > 0);
    assert_true (calc[0].overdue > 0);
    assert_true (calc[0].passed > 0);
    assert_true (calc[0].first_completed > calc[0].first_passed);
    print_message ("seed %llu: %llu units inspected, %llu defects, %llu verified, %llu overdue, %llu passed, "
                   "%llu failed twice, %llu accepted\n",
                   (unsigned long long) seed, (unsigned long long) calc[0].inspected,
                   (unsigned long long) calc[0].defects, (unsigned long long) calc[0].verified,
                   (unsigned long long) calc[0].overdue, (unsigned long long) calc[0].passed,
                   (unsigned long long) calc[0].failed_twice, (unsigned long long) calc[0].accepted);
}

static void
test_kpi_equals_what_the_events_say_seed_1 (void **state)
{
    s_random_estate (1);
}

static void
test_kpi_equals_what_the_events_say_seed_2 (void **state)
{
    s_random_estate (20261201);
}

static void
test_kpi_equals_what_the_events_say_seed_3 (void **state)
{
    s_random_estate (777);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_kpi_arithmetic_by_hand, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_kpi_refusals, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_kpi_equals_what_the_events_say_seed_1, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_kpi_equals_what_the_events_say_seed_2, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_kpi_equals_what_the_events_say_seed_3, t_setup, t_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
