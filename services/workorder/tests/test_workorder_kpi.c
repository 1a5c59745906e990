/* test_kpi - the KPIs (及时率, 合格率, mean times, satisfaction) are exact:
 * a worked example by hand, then a random day-by-day run of many orders
 * whose workorder.kpi answers, for every grouping and period, are recomputed
 * independently from the event stream a consumer reads (events.replay). */
#include "wo_test.h"

#include <math.h>

static int
s_setup (void **state)
{
    wt_t *t = wt_new (NULL);
    wt_unit (t, "E01/1-101", true);
    wt_unit (t, "E01/1-102", true);
    wt_unit (t, "E02/5-501", true);
    wt_unit (t, "E02/5-502", true);
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
test_worked_example (void **state)
{
    wt_t *t = *state;
    /* four water repairs at 09:00; complete-by 09:00 tomorrow */
    const char *o1 = wt_create (t, "E01/1-101", "water");
    const char *o2 = wt_create (t, "E01/1-101", "water");
    const char *o3 = wt_create (t, "E01/1-102", "water");
    const char *o4 = wt_create (t, "E01/1-102", "water");
    wt_advance (t, "10m");
    wt_start (t, o1, PM__V1__STATUS__OK);
    wt_advance (t, "10m");
    wt_start (t, o2, PM__V1__STATUS__OK);
    wt_advance (t, "7m");
    wt_start (t, o3, PM__V1__STATUS__OK); /* 27 minutes: inside the respond-by */
    wt_cancel (t, o4, "业主取消", PM__V1__STATUS__OK);
    wt_advance (t, "1h33m"); /* 11:00 */
    wt_done (t, o1, PM__V1__STATUS__OK);
    wt_confirm (t, o1, 5, PM__V1__STATUS__OK);
    wt_done (t, o2, PM__V1__STATUS__OK);
    wt_reject (t, o2, "还在滴水", PM__V1__STATUS__OK);
    wt_start (t, o2, PM__V1__STATUS__OK);
    wt_advance (t, "1h"); /* 12:00 */
    wt_done (t, o2, PM__V1__STATUS__OK);
    wt_confirm (t, o2, 3, PM__V1__STATUS__OK);
    wt_advance (t, "1d"); /* o3 passes its complete-by unfinished */
    wt_done (t, o3, PM__V1__STATUS__OK);

    /* 2026-12-02 is the day all three were due */
    Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "E01", "2026-12-02", "", "estate");
    Pm__V1__KpiRow *r = k->total;
    assert_int_equal (r->due, 3);
    assert_int_equal (r->on_time, 2);
    assert_true (fabs (r->on_time_rate - 2.0 / 3.0) < 1e-12);
    assert_int_equal (r->complete_breaches, 1);
    assert_int_equal (r->completed, 1); /* o3, done on the 2nd */
    /* 2026-12-01: created, arrived, done, confirmed */
    k = wt_kpi (t, "E01", "2026-12-01", "2026-12-01", "estate");
    r = k->total;
    assert_int_equal (r->created, 4);
    assert_int_equal (r->cancelled, 1);
    assert_int_equal (r->responded, 3);
    assert_true (r->mean_respond_ms == 19 * WT_MIN); /* 10, 20 and 27 minutes */
    assert_int_equal (r->completed, 2);
    assert_true (r->mean_complete_ms == 2 * WT_HOUR); /* o1, and o2's first completion, at 11:00 */
    assert_int_equal (r->respond_breaches, 0);
    assert_int_equal (r->confirmed, 2);
    assert_int_equal (r->first_pass, 1);
    assert_true (r->first_pass_rate == 0.5);
    assert_int_equal (r->rated, 2);
    assert_true (r->mean_satisfaction == 4.0);
    assert_int_equal (r->rejected, 1);
    assert_int_equal (r->due, 0);
    /* the whole period adds up */
    k = wt_kpi (t, "", "2026-12-01", "2026-12-02", "estate");
    assert_int_equal (k->n_rows, 1);
    assert_int_equal (k->total->due, 3);
    assert_int_equal (k->total->confirmed, 2);
    /* by technician: T01 had o1 and o3, T02 had o2 and o4 */
    k = wt_kpi (t, "E01", "2026-12-01", "2026-12-02", "technician");
    for (size_t i = 0; i < k->n_rows; i++) {
        Pm__V1__KpiRow *row = k->rows[i];
        if (strcmp (row->group, "T01") == 0) {
            assert_int_equal (row->due, 2);
            assert_int_equal (row->on_time, 1);
            assert_int_equal (row->first_pass, 1);
        }
        else if (strcmp (row->group, "T02") == 0) {
            assert_int_equal (row->due, 1);
            assert_int_equal (row->on_time, 1);
            assert_int_equal (row->confirmed, 1);
            assert_int_equal (row->first_pass, 0);
        }
        else
            assert_string_equal (row->group, "(none)"); /* the creations, before dispatch */
    }
    /* the gauges: the last 30 days of the estate */
    assert_true (fabs (pmt_metric (wt_d (t), "workorder_on_time_rate", "estate=\"E01\"") - 2.0 / 3.0) < 1e-9);
    assert_true (pmt_metric (wt_d (t), "workorder_first_pass_rate", "estate=\"E01\"") == 0.5);
    assert_true (pmt_metric (wt_d (t), "workorder_satisfaction_mean", "estate=\"E01\"") == 4.0);
    /* bad questions */
    Pm__V1__WorkorderKpiRequest b = PM__V1__WORKORDER_KPI_REQUEST__INIT;
    b.from = "2026-13-01";
    wt_says (wt_call (t, "workorder.kpi", &b.base, PM__V1__STATUS__INVALID), "from '2026-13-01'", NULL);
    b.from = "2026-12-02";
    b.to = "2026-12-01";
    wt_says (wt_call (t, "workorder.kpi", &b.base, PM__V1__STATUS__INVALID), "before from", NULL);
    b.to = "";
    b.group_by = "floor";
    wt_says (wt_call (t, "workorder.kpi", &b.base, PM__V1__STATUS__INVALID), "group_by 'floor'", NULL);
    b.group_by = "";
    b.estate_id = "E77";
    wt_call (t, "workorder.kpi", &b.base, PM__V1__STATUS__NOT_FOUND);
}

/* --- the independent recomputation ------------------------------------------------------------ */

#define S_MAX 4096

typedef struct {
    char estate[16], group[16], value[32];
    int64_t day;
    wo_kpi_t k;
} s_bucket_t;

typedef struct {
    s_bucket_t *b;
    size_t n;
    struct {
        char id[32];
        bool done, started, decided;
        Pm__V1__WorkOrder *last; /* borrowed from the event list */
    } orders[S_MAX];
    size_t norders;
} s_model_t;

static int64_t
s_day (int64_t ms)
{
    int64_t x = ms + 8 * WT_HOUR;
    return x / (24 * WT_HOUR) - (x % (24 * WT_HOUR) < 0);
}

static wo_kpi_t *
s_bucket (s_model_t *m, const char *estate, const char *group, const char *value, int64_t day)
{
    for (size_t i = 0; i < m->n; i++) {
        s_bucket_t *b = &m->b[i];
        if (b->day == day && !strcmp (b->estate, estate) && !strcmp (b->group, group) && !strcmp (b->value, value))
            return &b->k;
    }
    m->b = pm_xrealloc (m->b, (m->n + 1) * sizeof *m->b);
    s_bucket_t *b = &m->b[m->n++];
    memset (b, 0, sizeof *b);
    snprintf (b->estate, sizeof b->estate, "%s", estate);
    snprintf (b->group, sizeof b->group, "%s", group);
    snprintf (b->value, sizeof b->value, "%s", value);
    b->day = day;
    return &b->k;
}

/* Adds the fact d to the four groupings of (estate, team, technician, category). */
static void
s_fact (s_model_t *m, const char *estate, const char *team, const char *tech, const char *category, int64_t at_ms,
        wo_kpi_t d)
{
    int64_t day = s_day (at_ms);
    const char *values[4] = { "", *team ? team : "(none)", *tech ? tech : "(none)", category };
    static const char *const groups[4] = { "estate", "team", "technician", "category" };
    for (int g = 0; g < 4; g++) {
        wo_kpi_t *k = s_bucket (m, estate, groups[g], values[g], day);
#define S_ADD(f) k->f += d.f;
        S_ADD (due) S_ADD (on_time) S_ADD (confirmed) S_ADD (first_pass) S_ADD (responded) S_ADD (respond_ms_sum)
            S_ADD (completed) S_ADD (complete_ms_sum) S_ADD (rated) S_ADD (satisfaction_sum) S_ADD (created)
                S_ADD (cancelled) S_ADD (rejected) S_ADD (respond_breaches) S_ADD (complete_breaches)
#undef S_ADD
    }
}

static size_t
s_order (s_model_t *m, const char *id)
{
    for (size_t i = 0; i < m->norders; i++)
        if (strcmp (m->orders[i].id, id) == 0)
            return i;
    assert_true (m->norders < S_MAX);
    snprintf (m->orders[m->norders].id, sizeof m->orders[0].id, "%s", id);
    return m->norders++;
}

/* The definitions of README.md, applied to the event stream. */
static void
s_model (s_model_t *m, const wt_events_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        const Pm__V1__Event *ev = e->ev[i];
        if (ev->payload_case == PM__V1__EVENT__PAYLOAD_SLA) {
            const Pm__V1__SlaAlert *a = ev->sla;
            if (strcmp (ev->type, "workorder.sla.breached") != 0)
                continue;
            size_t oi = s_order (m, a->order_id);
            bool respond = strcmp (a->deadline, "respond") == 0;
            wo_kpi_t d = { 0 };
            if (respond)
                d.respond_breaches = 1;
            else {
                d.complete_breaches = 1;
                d.due = !m->orders[oi].decided;
                m->orders[oi].decided = true;
            }
            s_fact (m, a->estate_id, a->team, a->technician, a->category, a->due_ms, d);
            continue;
        }
        if (ev->payload_case != PM__V1__EVENT__PAYLOAD_ORDER)
            continue;
        const Pm__V1__WorkOrder *o = ev->order;
        size_t oi = s_order (m, o->order_id);
        m->orders[oi].last = ev->order;
        const char *type = ev->type + strlen ("workorder.order.");
        wo_kpi_t d = { 0 };
        if (strcmp (type, "created") == 0) {
            d.created = 1;
            s_fact (m, o->estate_id, o->team, o->technician, o->category, o->created_ms, d);
        }
        else if (strcmp (type, "started") == 0 && !m->orders[oi].started) {
            m->orders[oi].started = true;
            d.responded = 1;
            d.respond_ms_sum = o->responded_ms - o->created_ms;
            s_fact (m, o->estate_id, o->team, o->technician, o->category, o->responded_ms, d);
        }
        else if (strcmp (type, "done") == 0 && !m->orders[oi].done) {
            m->orders[oi].done = true;
            d.completed = 1;
            d.complete_ms_sum = o->done_ms - o->created_ms;
            s_fact (m, o->estate_id, o->team, o->technician, o->category, o->done_ms, d);
            if (!m->orders[oi].decided) {
                m->orders[oi].decided = true;
                wo_kpi_t due = { .due = 1, .on_time = o->done_ms <= o->complete_by_ms };
                s_fact (m, o->estate_id, o->team, o->technician, o->category, o->complete_by_ms, due);
            }
        }
        else if (strcmp (type, "cancelled") == 0) {
            d.cancelled = 1;
            s_fact (m, o->estate_id, o->team, o->technician, o->category, o->cancelled_ms, d);
        }
        else if (strcmp (type, "rejected") == 0 || strcmp (type, "reopened") == 0) {
            d.rejected = 1;
            s_fact (m, o->estate_id, o->team, o->technician, o->category, ev->at_ms, d);
        }
    }
    /* confirmations: the orders that stand confirmed at the end */
    for (size_t i = 0; i < m->norders; i++) {
        const Pm__V1__WorkOrder *o = m->orders[i].last;
        if (!o || (o->state != PM__V1__ORDER_STATE__CONFIRMED && o->state != PM__V1__ORDER_STATE__ARCHIVED))
            continue;
        wo_kpi_t d = { .confirmed = 1,
                       .first_pass = o->rejections == 0,
                       .rated = o->satisfaction > 0,
                       .satisfaction_sum = o->satisfaction };
        s_fact (m, o->estate_id, o->team, o->technician, o->category, o->confirmed_ms, d);
    }
}

/* The model's sum for (estate, group, value) over days [from, to]; false when it has no bucket. */
static bool
s_sum (const s_model_t *m, const char *estate, const char *group, const char *value, int64_t from, int64_t to,
       wo_kpi_t *out)
{
    memset (out, 0, sizeof *out);
    bool any = false;
    for (size_t i = 0; i < m->n; i++) {
        const s_bucket_t *b = &m->b[i];
        if (b->day < from || b->day > to || strcmp (b->estate, estate) || strcmp (b->group, group)
            || strcmp (b->value, value))
            continue;
        any = true;
#define S_ADD(f) out->f += b->k.f;
        S_ADD (due) S_ADD (on_time) S_ADD (confirmed) S_ADD (first_pass) S_ADD (responded) S_ADD (respond_ms_sum)
            S_ADD (completed) S_ADD (complete_ms_sum) S_ADD (rated) S_ADD (satisfaction_sum) S_ADD (created)
                S_ADD (cancelled) S_ADD (rejected) S_ADD (respond_breaches) S_ADD (complete_breaches)
#undef S_ADD
    }
    return any;
}

static void
s_compare (const char *what, const Pm__V1__KpiRow *r, const wo_kpi_t *k)
{
#define S_EQ(f)                                                                                                        \
    if ((int64_t) r->f != k->f)                                                                                        \
        fail_msg ("%s %s/%s: %s is %lld, recomputed from the events %lld", what, r->estate_id, r->group, #f,          \
                  (long long) r->f, (long long) k->f);
    S_EQ (due) S_EQ (on_time) S_EQ (confirmed) S_EQ (first_pass) S_EQ (responded) S_EQ (respond_ms_sum)
        S_EQ (completed) S_EQ (complete_ms_sum) S_EQ (rated) S_EQ (satisfaction_sum) S_EQ (created) S_EQ (cancelled)
            S_EQ (rejected) S_EQ (respond_breaches) S_EQ (complete_breaches)
#undef S_EQ
    if (k->due && r->on_time_rate != (double) k->on_time / (double) k->due)
        fail_msg ("%s %s/%s: on_time_rate %f", what, r->estate_id, r->group, r->on_time_rate);
    if (k->confirmed && r->first_pass_rate != (double) k->first_pass / (double) k->confirmed)
        fail_msg ("%s %s/%s: first_pass_rate %f", what, r->estate_id, r->group, r->first_pass_rate);
    if (k->responded && r->mean_respond_ms != k->respond_ms_sum / k->responded)
        fail_msg ("%s %s/%s: mean_respond_ms %lld", what, r->estate_id, r->group, (long long) r->mean_respond_ms);
}

/* --- the random run ----------------------------------------------------------------------------- */

static uint64_t s_rng = 0x9E3779B97F4A7C15ULL;

static unsigned
s_rand (unsigned n)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (unsigned) (s_rng % n);
}

static Pm__V1__Reply *
s_try (wt_t *t, const char *method, ProtobufCMessage *body)
{
    char id[32];
    snprintf (id, sizeof id, "rnd-%06u", ++t->nreq);
    Pm__V1__Reply *r = pmt_call (wt_d (t), id, method, body);
    if (r->status != PM__V1__STATUS__OK && r->status != PM__V1__STATUS__CONFLICT)
        fail_msg ("%s: %s: %s", method, pm_status_name (r->status), r->message);
    return r;
}

static void
s_act (wt_t *t, const char *id)
{
    static const char *const e01[] = { "T01", "T02", "T03", "T04" }, *const e02[] = { "T11", "T12", "T13" };
    static const char *const steps[] = { "listen", "apologise", "investigate", "resolve", "follow_up" };
    Pm__V1__WorkOrder *o = wt_get (t, id);
    bool e2 = strcmp (o->estate_id, "E02") == 0;
    unsigned p = s_rand (100);
    switch (o->state) {
    case PM__V1__ORDER_STATE__ORDER_OPEN:
        if (p < 10)
            wt_cancel (t, id, "业主取消", PM__V1__STATUS__OK);
        else if (e2) {
            Pm__V1__WorkorderClaimRequest b = PM__V1__WORKORDER_CLAIM_REQUEST__INIT;
            b.order_id = (char *) id;
            b.technician = (char *) (strcmp (o->category, "complaint") == 0 ? "K02" : e02[s_rand (3)]);
            s_try (t, "workorder.claim", &b.base);
        }
        else {
            Pm__V1__WorkorderAssignRequest b = PM__V1__WORKORDER_ASSIGN_REQUEST__INIT;
            b.order_id = (char *) id;
            b.technician = (char *) e01[s_rand (4)];
            s_try (t, "workorder.assign", &b.base);
        }
        break;
    case PM__V1__ORDER_STATE__ASSIGNED:
        if (p < 10)
            wt_cancel (t, id, "业主取消", PM__V1__STATUS__OK);
        else if (p < 20 && !e2) {
            Pm__V1__WorkorderAssignRequest b = PM__V1__WORKORDER_ASSIGN_REQUEST__INIT;
            b.order_id = (char *) id;
            b.technician = (char *) e01[s_rand (4)];
            s_try (t, "workorder.assign", &b.base);
        }
        else
            wt_start (t, id, PM__V1__STATUS__OK);
        break;
    case PM__V1__ORDER_STATE__IN_PROGRESS:
        if (p < 8)
            wt_cancel (t, id, "无法维修", PM__V1__STATUS__OK);
        else {
            if (o->source == PM__V1__ORDER_SOURCE__COMPLAINT)
                for (int i = 0; i < 5; i++)
                    wt_checklist (t, id, steps[i], PM__V1__STATUS__OK);
            wt_done (t, id, PM__V1__STATUS__OK);
        }
        break;
    case PM__V1__ORDER_STATE__DONE:
        if (p < 30)
            wt_reject (t, id, "不满意", PM__V1__STATUS__OK);
        else
            wt_confirm (t, id, 1 + s_rand (5), PM__V1__STATUS__OK);
        break;
    default: break;
    }
}

static void
test_random_run_matches_the_event_stream (void **state)
{
    wt_t *t = *state;
    static const char *const units[] = { "E01/1-101", "E01/1-102", "E02/5-501", "E02/5-502" };
    static const char *const cats[] = { "water", "electric", "elevator", "civil", "general", "complaint" };
    static const char *const techs[] = { "T01", "T02", "T03", "T04", "T11", "T12", "T13" };
    char ids[S_MAX][32];
    size_t n = 0;
    for (int step = 0; step < 900; step++) {
        unsigned p = s_rand (100);
        if (p < 16 && n < S_MAX)
            snprintf (ids[n++], 32, "%s", wt_create (t, units[s_rand (4)], cats[s_rand (6)]));
        else if (p < 30) {
            char by[16];
            snprintf (by, sizeof by, "%um", s_rand (10) == 0 ? 60 * (1 + s_rand (30)) : 1 + s_rand (120));
            wt_advance (t, by);
        }
        else if (p < 33)
            wt_shift (t, techs[s_rand (7)], s_rand (3) != 0);
        else if (n)
            s_act (t, ids[s_rand ((unsigned) n)]);
    }
    wt_advance (t, "10d"); /* every deadline passed: every order decided */

    wt_events_t e = wt_events (t, 1);
    s_model_t *m = pm_xcalloc (1, sizeof *m);
    s_model (m, &e);
    int64_t first = s_day (WT_T0_MS), last = s_day (wt_now (t));
    static const char *const groups[] = { "estate", "team", "technician", "category" };
    size_t rows = 0;
    uint64_t due = 0, confirmed = 0;
    for (int g = 0; g < 4; g++)
        for (int64_t from = first - 1; from <= last + 1; from++) {
            /* each day alone, then the whole run */
            int64_t a = from <= last ? from : first, b = from <= last ? from : last;
            char fa[16], fb[16];
            wo_date_format (a, fa, sizeof fa);
            wo_date_format (b, fb, sizeof fb);
            Pm__V1__WorkorderKpiReply *k = wt_kpi (t, "", fa, fb, groups[g]);
            for (size_t i = 0; i < k->n_rows; i++) {
                wo_kpi_t want;
                s_sum (m, k->rows[i]->estate_id, groups[g], k->rows[i]->group, a, b, &want);
                s_compare (groups[g], k->rows[i], &want);
                rows++;
            }
            /* and no group the events have is missing */
            for (size_t i = 0; i < m->n; i++) {
                const s_bucket_t *bk = &m->b[i];
                if (strcmp (bk->group, groups[g]) != 0 || bk->day < a || bk->day > b)
                    continue;
                bool found = false;
                for (size_t j = 0; j < k->n_rows && !found; j++)
                    found = !strcmp (k->rows[j]->estate_id, bk->estate) && !strcmp (k->rows[j]->group, bk->value);
                if (!found)
                    fail_msg ("%s %s/%s on day %lld: in the events, not in workorder.kpi", groups[g], bk->estate,
                              bk->value, (long long) bk->day);
            }
            if (g == 0 && a == first && b == last) {
                due = k->total->due;
                confirmed = k->total->confirmed;
            }
        }
    print_message ("%zu orders, %zu events, %zu KPI rows compared; %llu due, %llu confirmed\n", n, e.n, rows,
                   (unsigned long long) due, (unsigned long long) confirmed);
    assert_true (due > 40 && confirmed > 15); /* the run did exercise them */
    free (m->b);
    free (m);
    wt_events_free (&e);
}

int
main (void)
{
    pm_log_init ("test_kpi", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_worked_example, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_random_run_matches_the_event_stream, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
