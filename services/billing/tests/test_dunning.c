/* test_dunning - the ladder with the manual clock: each step at its instant
 * and not before, no step for an invoice paid before the step's instant,
 * a partly paid invoice chased for what is still open, tasks in the queues
 * and their outcomes, steps that came due while nobody looked, instalment
 * plans with a ladder each, and timers that survive a restart.
 *
 * The invoice: 100.00 m2 x 2.00 x 12 months = 2,400.00 元, checked in on
 * 2026-12-01, due 2026-12-16 (estate time): T-7 is 12-09, T+3 12-19, T+7
 * 12-23, T+15 12-31, T+30 2027-01-15. */
#include "billing_test.h"

#define S_INV "INV-E01-000001"

static int
s_setup (void **state)
{
    bt_t *t = bt_new (NULL);
    bt_schedule_plain (t, "E01", "2026-01-01", "2.00", 12);
    bt_check_in (t, "E01/1-101", 10000, 0, "");
    *state = t;
    return 0;
}

static int
s_teardown (void **state)
{
    bt_free ((bt_t **) state);
    return 0;
}

/* Local midnight of a day of December 2026 (or later), as RFC 3339 for pmt_clock_set. */
static const char *
s_at (int y, int m, int d, int hour)
{
    static char buf[4][40];
    static unsigned n;
    char *s = buf[n++ % 4];
    char tmp[40];
    pm_time_format (bt_date (y, m, d) + hour * 3600 * 1000LL, tmp, sizeof tmp);
    snprintf (s, 40, "%.19sZ", tmp);
    return s;
}

/* Moves the clock and fires every timer that came due, as the loop would. */
static void
s_clock (bt_t *t, int y, int m, int d, int hour)
{
    pmt_clock_set (t->d, s_at (y, m, d, hour));
    while (pm_daemon_fire_timers (t->d) > 0)
        ;
}

typedef struct {
    char steps[32][48]; /* "T-7 message 240000 INV-E01-000001/1" */
    int n;
} s_steps_t;

static void
s_collect (const Pm__V1__Event *ev, void *arg)
{
    s_steps_t *s = arg;
    if (strcmp (ev->type, "billing.dunning.step") != 0 || s->n == 32)
        return;
    snprintf (s->steps[s->n++], sizeof s->steps[0], "%s %s %lld%s%s", ev->dunning->step, ev->dunning->action,
              (long long) ev->dunning->open_fen, *ev->dunning->instalment ? " " : "", ev->dunning->instalment);
}

/* Every dunning step billing ever emitted, in order. */
static s_steps_t *
s_steps (bt_t *t)
{
    static s_steps_t s;
    memset (&s, 0, sizeof s);
    bt_replay (t, s_collect, &s);
    return &s;
}

static void
test_each_step_at_its_instant (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingInvoiceGetReply *g = bt_invoice (t, S_INV);
    assert_string_equal (g->next_step, "T-7");
    assert_true (g->next_step_ms == bt_date (2026, 12, 9));
    pmt_clock_set (t->d, "2026-12-08T15:59:59Z"); /* a second before */
    assert_int_equal (s_steps (t)->n, 0);
    pmt_clock_set (t->d, "2026-12-08T16:00:00Z");
    Pm__V1__Event *ev = pmt_emitted_type (t->d, "billing.dunning.step");
    assert_non_null (ev);
    assert_string_equal (ev->dunning->step, "T-7");
    assert_string_equal (ev->dunning->action, "message");
    assert_string_equal (ev->dunning->invoice_id, S_INV);
    assert_string_equal (ev->dunning->unit_id, "E01/1-101");
    assert_int_equal (ev->dunning->open_fen, 240000);
    assert_true (ev->dunning->due_ms == bt_date (2026, 12, 16));
    assert_string_equal (ev->unit_id, "E01/1-101");
    /* a message step leaves no task */
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 0);
    g = bt_invoice (t, S_INV);
    assert_string_equal (g->next_step, "T+3");
    assert_true (g->next_step_ms == bt_date (2026, 12, 19));
    s_clock (t, 2026, 12, 19, 0);
    assert_int_equal (s_steps (t)->n, 2);
    Pm__V1__Queue *q = pmt_queue (t->d, "dunning_calls");
    assert_int_equal (q->count, 1);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, S_INV " T+3");
    assert_non_null (it);
    assert_string_equal (it->unit_id, "E01/1-101");
    assert_string_equal (pmt_queue_field (it, "open_fen"), "240000");
    assert_string_equal (pmt_queue_field (it, "due"), "2026-12-16");
    assert_non_null (strstr (it->reason, "call"));
    assert_int_equal (pmt_metric (t->d, "billing_dunning_tasks", "queue=\"calls\""), 1);
}

static void
test_no_step_for_an_invoice_paid_before_its_instant (void **state)
{
    bt_t *t = *state;
    s_clock (t, 2026, 12, 5, 10);
    bt_pay_ok (t, S_INV, NULL, 240000, "counter_cash", "CASH-1");
    Pm__V1__BillingInvoiceGetReply *g = bt_invoice (t, S_INV);
    assert_int_equal (g->invoice->state, PM__V1__INVOICE_STATE__SETTLED);
    assert_string_equal (g->next_step, ""); /* its timer went with the payment, in the same commit */
    int64_t due;
    pm_txn_t txn;
    assert_int_equal (pm_txn_begin_read (&txn, pm_daemon_store (t->d)), PM_OK);
    assert_int_equal (pm_timer_due (&txn, BILLING_TIMER_DUNNING, S_INV, &due), PM_ENOTFOUND);
    pm_txn_abort (&txn);
    /* past every step's instant: nothing */
    s_clock (t, 2027, 3, 1, 0);
    assert_int_equal (s_steps (t)->n, 0);
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 0);
    assert_int_equal (pmt_queue (t->d, "dunning_escalations")->count, 0);
}

static void
test_partly_paid_stays_on_the_ladder_with_the_open_amount (void **state)
{
    bt_t *t = *state;
    s_clock (t, 2026, 12, 10, 12);
    bt_pay_ok (t, S_INV, NULL, 100000, "online", "WX-1");
    s_clock (t, 2026, 12, 19, 0);
    s_steps_t *s = s_steps (t);
    assert_int_equal (s->n, 2);
    assert_string_equal (s->steps[0], "T-7 message 240000");
    assert_string_equal (s->steps[1], "T+3 call 140000");
    assert_string_equal (pmt_queue_field (pmt_queue_item (pmt_queue (t->d, "dunning_calls"), S_INV " T+3"), "open_fen"),
                         "140000");
    /* paid at T+4: the call task goes, T+7 never comes */
    s_clock (t, 2026, 12, 20, 9);
    bt_pay_ok (t, S_INV, NULL, 140000, "online", "WX-2");
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 0);
    s_clock (t, 2027, 3, 1, 0);
    assert_int_equal (s_steps (t)->n, 2);
    assert_int_equal (pmt_queue (t->d, "dunning_visits")->count, 0);
}

static Pm__V1__Reply *
s_record (bt_t *t, const char *invoice, const char *step, const char *outcome, const char *note)
{
    Pm__V1__BillingDunningRecordRequest q = PM__V1__BILLING_DUNNING_RECORD_REQUEST__INIT;
    q.invoice_id = (char *) invoice;
    q.step = (char *) step;
    q.outcome = (char *) outcome;
    q.note = (char *) note;
    return pmt_call (t->d, bt_id (t), "billing.dunning.record", &q.base);
}

static void
test_a_person_records_the_outcome_of_a_task (void **state)
{
    bt_t *t = *state;
    s_clock (t, 2026, 12, 19, 9);
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 1);
    Pm__V1__Reply *r = s_record (t, S_INV, "T+3", "maybe", "");
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "outcome"));
    r = s_record (t, S_INV, "T-7", "reached", "");
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "message"));
    r = s_record (t, S_INV, "T+7", "visited", "");
    assert_int_equal (r->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "T+3"));
    r = s_record (t, S_INV, "T+3", "promised_to_pay", "will pay on the 22nd");
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    assert_int_equal (r->billing_dunning_record->waiting, 0);
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 0);
    r = s_record (t, S_INV, "T+3", "reached", "");
    assert_int_equal (r->status, PM__V1__STATUS__NOT_FOUND);
    Pm__V1__BillingInvoiceGetReply *g = bt_invoice (t, S_INV);
    assert_int_equal (g->n_dunning, 3); /* T-7, T+3, and the outcome */
    assert_string_equal (g->dunning[2]->outcome, "promised_to_pay");
    assert_string_equal (g->dunning[2]->note, "will pay on the 22nd");
    assert_string_equal (g->dunning[2]->actor, "test");
    assert_int_equal (pmt_metric (t->d, "billing_dunning_outcomes_total", "action=\"call\",outcome=\"promised_to_pay\""),
                      1);
}

static void
test_steps_that_came_due_meanwhile_fire_in_order (void **state)
{
    bt_t *t = *state;
    s_clock (t, 2027, 1, 20, 0);
    s_steps_t *s = s_steps (t);
    assert_int_equal (s->n, 5);
    assert_string_equal (s->steps[0], "T-7 message 240000");
    assert_string_equal (s->steps[1], "T+3 call 240000");
    assert_string_equal (s->steps[2], "T+7 visit 240000");
    assert_string_equal (s->steps[3], "T+15 letter 240000");
    assert_string_equal (s->steps[4], "T+30 escalation 240000");
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 1);
    assert_int_equal (pmt_queue (t->d, "dunning_visits")->count, 1);
    assert_int_equal (pmt_queue (t->d, "dunning_letters")->count, 1);
    assert_int_equal (pmt_queue (t->d, "dunning_escalations")->count, 1);
    assert_string_equal (bt_invoice (t, S_INV)->next_step, "");
    /* settling now clears every task it left */
    bt_pay_ok (t, S_INV, NULL, 240000, "counter_card", "POS-1");
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 0);
    assert_int_equal (pmt_queue (t->d, "dunning_visits")->count, 0);
    assert_int_equal (pmt_queue (t->d, "dunning_letters")->count, 0);
    assert_int_equal (pmt_queue (t->d, "dunning_escalations")->count, 0);
}

static Pm__V1__Reply *
s_plan (bt_t *t, const char *d1, int64_t a1, const char *d2, int64_t a2)
{
    Pm__V1__BillingInstalmentSetRequest q = PM__V1__BILLING_INSTALMENT_SET_REQUEST__INIT;
    Pm__V1__BillingInstalment p[2] = { PM__V1__BILLING_INSTALMENT__INIT, PM__V1__BILLING_INSTALMENT__INIT };
    Pm__V1__BillingInstalment *pp[2] = { &p[0], &p[1] };
    p[0].due_date = (char *) d1;
    p[0].amount_fen = a1;
    p[1].due_date = (char *) d2;
    p[1].amount_fen = a2;
    q.invoice_id = S_INV;
    q.parts = pp;
    q.n_parts = d2 ? 2 : 1;
    return pmt_call (t->d, bt_id (t), "billing.instalment.set", &q.base);
}

static void
test_an_instalment_plan_has_a_ladder_per_part (void **state)
{
    bt_t *t = *state;
    s_clock (t, 2026, 12, 20, 9); /* overdue: T-7 and T+3 fired, a call task waits */
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 1);
    Pm__V1__Reply *r = s_plan (t, "2027-01-10", 100000, "2027-02-10", 100000);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "¥2,400.00"));
    r = s_plan (t, "2026-12-01", 120000, "2027-02-10", 120000);
    assert_non_null (strstr (r->message, "past"));
    r = s_plan (t, "2027-02-10", 120000, "2027-01-10", 120000);
    assert_non_null (strstr (r->message, "not after"));
    r = s_plan (t, "2027-01-10", 240000, NULL, 0);
    assert_non_null (strstr (r->message, "2 to"));

    r = s_plan (t, "2027-01-10", 120000, "2027-02-10", 120000);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    Pm__V1__BillingInstalmentSetReply *p = r->billing_instalment_set;
    assert_int_equal (p->n_parts, 2);
    assert_string_equal (p->parts[0]->key, S_INV "/1");
    assert_string_equal (p->parts[0]->next_step, "T-7");
    assert_true (p->parts[0]->next_step_ms == bt_date (2027, 1, 3));
    assert_string_equal (p->parts[1]->next_step, "T-7");
    assert_true (p->parts[1]->next_step_ms == bt_date (2027, 2, 3));
    assert_non_null (pmt_emitted_type (t->d, "billing.invoice.updated"));
    /* the invoice's own ladder is gone, and its call with it */
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 0);
    s_clock (t, 2026, 12, 24, 0); /* the invoice's T+7 instant */
    assert_int_equal (s_steps (t)->n, 2);

    s_clock (t, 2027, 1, 3, 0);
    s_steps_t *s = s_steps (t);
    assert_int_equal (s->n, 3);
    assert_string_equal (s->steps[2], "T-7 message 120000 " S_INV "/1");
    /* part 1 paid, and 300.00 of part 2: part 1's ladder stops */
    s_clock (t, 2027, 1, 5, 10);
    Pm__V1__BillingPaymentRecordReply *pay = bt_pay_ok (t, S_INV, NULL, 150000, "online", "WX-9");
    assert_int_equal (pay->invoices[0]->state, PM__V1__INVOICE_STATE__PARTIALLY_PAID);
    Pm__V1__BillingInvoiceGetReply *g = bt_invoice (t, S_INV);
    assert_int_equal (g->parts[0]->open_fen, 0);
    assert_string_equal (g->parts[0]->next_step, "");
    assert_int_equal (g->parts[1]->open_fen, 90000);
    s_clock (t, 2027, 2, 3, 0);
    s = s_steps (t);
    assert_int_equal (s->n, 4);
    assert_string_equal (s->steps[3], "T-7 message 90000 " S_INV "/2");
    s_clock (t, 2027, 2, 13, 0);
    s = s_steps (t);
    assert_int_equal (s->n, 5);
    assert_string_equal (s->steps[4], "T+3 call 90000 " S_INV "/2");
    const Pm__V1__QueueItem *it = pmt_queue_item (pmt_queue (t->d, "dunning_calls"), S_INV "/2 T+3");
    assert_non_null (it);
    assert_string_equal (pmt_queue_field (it, "instalment"), S_INV "/2");
    r = s_record (t, S_INV "/2", "T+3", "reached", "");
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    /* the last part paid: settled, nothing more */
    bt_pay_ok (t, S_INV, NULL, 90000, "online", "WX-10");
    s_clock (t, 2027, 6, 1, 0);
    assert_int_equal (s_steps (t)->n, 5);
    r = s_plan (t, "2027-07-10", 1, "2027-08-10", 1);
    assert_int_equal (r->status, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "SETTLED"));
}

static void
test_the_ladder_survives_a_restart (void **state)
{
    bt_t *t = *state;
    bt_restart (t);
    s_clock (t, 2026, 12, 9, 1);
    assert_int_equal (s_steps (t)->n, 1);
    bt_restart (t);
    s_clock (t, 2026, 12, 19, 1);
    assert_int_equal (s_steps (t)->n, 2);
    assert_int_equal (pmt_queue (t->d, "dunning_calls")->count, 1);
}

static void
test_a_configured_ladder (void **state)
{
    bt_t *t = bt_new ("[billing]\ndunning = T-3:message, T+1:call\nmove_in_due_days = 10\n");
    bt_schedule_plain (t, "E01", "2026-01-01", "2.00", 12);
    bt_check_in (t, "E01/1-101", 10000, 0, "");
    Pm__V1__BillingInvoiceGetReply *g = bt_invoice (t, S_INV);
    assert_true (g->invoice->due_ms == bt_date (2026, 12, 11));
    assert_string_equal (g->next_step, "T-3");
    assert_true (g->next_step_ms == bt_date (2026, 12, 8));
    s_clock (t, 2026, 12, 12, 0);
    s_steps_t *s = s_steps (t);
    assert_int_equal (s->n, 2);
    assert_string_equal (s->steps[1], "T+1 call 240000");
    bt_free (&t);

    /* a bad ladder stops the start, naming the key */
    pmt_log_start ();
    char *dir = pmt_tmpdir ();
    static const char *const names[] = { "billing", "intake", NULL };
    char *text = pmt_config (dir, names, "[billing]\ndunning = T+3:call, T-7:message\n"), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    pm_daemon_t *d = pm_daemon_new (&billing_spec, cfg, NULL);
    assert_null (d);
    assert_true (pmt_log_has ("[billing] dunning"));
    assert_true (pmt_log_has ("time order"));
    pmt_log_stop ();
    pmt_rmdir (dir);
}

int
main (void)
{
    pm_log_init ("test_dunning", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_each_step_at_its_instant, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_step_for_an_invoice_paid_before_its_instant, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_partly_paid_stays_on_the_ladder_with_the_open_amount, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_person_records_the_outcome_of_a_task, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_steps_that_came_due_meanwhile_fire_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_an_instalment_plan_has_a_ladder_per_part, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_ladder_survives_a_restart, s_setup, s_teardown),
        cmocka_unit_test (test_a_configured_ladder),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
