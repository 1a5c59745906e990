/* test_invoices - fee schedules, the move-in invoice at check-in (lines,
 * basis, rounding, due date, numbering under concurrent check-ins) and the
 * monthly run (prepaid months, proration, idempotency, steps), on a real
 * LMDB through the runtime's group commit. */
#include "billing_test.h"

#include <unistd.h>

static int
s_setup (void **state)
{
    *state = bt_new (NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    bt_free ((bt_t **) state);
    pmt_log_stop ();
    return 0;
}

static const Pm__V1__InvoiceLine *
s_line (const Pm__V1__Invoice *inv, const char *item)
{
    for (size_t i = 0; i < inv->n_lines; i++)
        if (strcmp (inv->lines[i]->item, item) == 0)
            return inv->lines[i];
    fail_msg ("invoice %s has no line %s", inv->invoice_id, item);
    return NULL;
}

/* --- the move-in invoice -------------------------------------------------------------- */

static void
test_check_in_issues_the_move_in_invoice (void **state)
{
    bt_t *t = *state;
    static const char *const items[] = { "垃圾清运费=300.00", NULL };
    static const char *const deposits[] = { "装修押金=2000.00", NULL };
    Pm__V1__Reply *r = bt_schedule_try (t, "E01", "2026-01-01", "2.85", "60.00", "150.00", 12, items, deposits);
    assert_int_equal (r->status, PM__V1__STATUS__OK);

    bt_check_in (t, "E01/3-1201", 8953, 1, "residential");
    Pm__V1__Event *ev = pmt_emitted_type (t->d, "billing.invoice.issued");
    assert_non_null (ev);
    assert_int_equal (ev->payload_case, PM__V1__EVENT__PAYLOAD_INVOICE);
    const Pm__V1__Invoice *inv = ev->invoice;
    assert_string_equal (inv->invoice_id, "INV-E01-000001");
    assert_string_equal (inv->kind, "move_in");
    assert_string_equal (inv->unit_id, "E01/3-1201");
    assert_string_equal (ev->unit_id, "E01/3-1201");
    assert_int_equal (inv->state, PM__V1__INVOICE_STATE__ISSUED);
    /* one line per item, in this order, each with its basis */
    assert_int_equal (inv->n_lines, 5);
    assert_string_equal (inv->lines[0]->item, "物业费");
    assert_string_equal (inv->lines[0]->basis, "89.53 m2 x 2.85 元/m2/月 x 12 月 (2026-12 to 2027-11)");
    assert_int_equal (inv->lines[0]->amount_fen, 306193); /* 3061.926 元, half-up */
    assert_string_equal (inv->lines[1]->item, "停车费");
    assert_string_equal (inv->lines[1]->basis, "1 车位 x 150.00 元/月 x 12 月 (2026-12 to 2027-11)");
    assert_int_equal (inv->lines[1]->amount_fen, 180000);
    assert_string_equal (inv->lines[2]->item, "维修基金");
    assert_int_equal (inv->lines[2]->amount_fen, 537180); /* 89.53 x 60.00 */
    assert_string_equal (inv->lines[3]->item, "垃圾清运费");
    assert_int_equal (inv->lines[3]->amount_fen, 30000);
    assert_string_equal (inv->lines[4]->item, "装修押金");
    assert_int_equal (inv->lines[4]->amount_fen, 200000);
    /* the total adds up to the fen */
    int64_t sum = 0;
    for (size_t i = 0; i < inv->n_lines; i++)
        sum += inv->lines[i]->amount_fen;
    assert_int_equal (inv->total_fen, sum);
    assert_int_equal (inv->total_fen, 1253373);
    assert_int_equal (inv->open_fen, 1253373);
    assert_int_equal (inv->paid_fen, 0);
    /* due 15 days after the check-in day, at the start of that day (estate time) */
    assert_true (inv->due_ms == bt_date (2026, 12, 16));
    assert_true (inv->issued_ms == bt_now (t));

    Pm__V1__BillingUnitGetReply *u = bt_unit (t, "E01/3-1201");
    assert_string_equal (u->move_in_invoice, "INV-E01-000001");
    assert_string_equal (u->prepaid_to, "2027-11");
    assert_int_equal (u->n_invoices, 1);
    assert_int_equal (u->open_fen, 1253373);
    assert_int_equal (u->balance_fen, 1253373);
    assert_int_equal (u->area_cm2, 8953);
    assert_int_equal (u->parking_spaces, 1);
    assert_string_equal (u->building, "3");
}

static void
test_rounding_is_half_up_per_line_not_per_month (void **state)
{
    bt_t *t = *state;
    bt_schedule_plain (t, "E01", "2026-01-01", "2.83", 12);
    bt_check_in (t, "E01/1-101", 8950, 0, ""); /* 253.285 元 a month */
    const Pm__V1__Invoice *inv = pmt_emitted_type (t->d, "billing.invoice.issued")->invoice;
    assert_int_equal (inv->n_lines, 1); /* no 维修基金 or parking at a rate of 0: no zero lines */
    assert_int_equal (inv->lines[0]->amount_fen, 303942); /* 3039.42 exactly; 12 x 253.29 would be 3039.48 */
    assert_int_equal (inv->total_fen, 303942);

    bt_schedule_plain (t, "E02", "2026-01-01", "2.83", 1);
    bt_check_in (t, "E02/1-101", 8950, 0, "");
    inv = pmt_emitted_type (t->d, "billing.invoice.issued")->invoice;
    assert_int_equal (inv->lines[0]->amount_fen, 25329); /* 253.285 -> 253.29: half-up, not half-even */
}

static void
test_rate_by_unit_type (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingScheduleSetRequest q = PM__V1__BILLING_SCHEDULE_SET_REQUEST__INIT;
    Pm__V1__FeeTypeRate shop = PM__V1__FEE_TYPE_RATE__INIT, *types[1] = { &shop };
    shop.unit_type = "commercial";
    shop.property_fee = "4.50";
    q.estate_id = "E01";
    q.effective_date = "2026-01-01";
    q.property_fee = "2.80";
    q.maintenance_fund = "0";
    q.parking = "0";
    q.prepaid_months = 1;
    q.property_fee_by_type = types;
    q.n_property_fee_by_type = 1;
    pmt_call_expect (t->d, bt_id (t), "billing.schedule.set", &q.base, PM__V1__STATUS__OK);
    bt_check_in (t, "E01/S-01", 10000, 0, "commercial");
    assert_int_equal (pmt_emitted_type (t->d, "billing.invoice.issued")->invoice->total_fen, 45000);
    bt_check_in (t, "E01/1-101", 10000, 0, "residential");
    assert_int_equal (pmt_emitted_type (t->d, "billing.invoice.issued")->invoice->total_fen, 28000);
}

static void
test_numbers_are_gapless_per_estate_under_concurrent_check_ins (void **state)
{
    bt_t *t = *state;
    bt_schedule (t, "E01", "2026-01-01", 12);
    bt_schedule (t, "E02", "2026-01-01", 12);
    /* one batch: eight check-ins of two estates, one that cannot be billed
     * (no area), and the same unit twice */
    bt_event_t e[10];
    const char *units[10] = { "E01/1-101", "E02/1-101", "E01/1-102", "E01/1-103", "E02/1-102",
                              "E01/1-104", "E01/1-105", "E02/1-103", "E01/1-101", "E01/1-106" };
    pm_batch_item_t items[10];
    for (int i = 0; i < 10; i++) {
        bt_event (t, &e[i], "intake.unit.checked_in", units[i], 9000 + i, 0, "");
        items[i] = (pm_batch_item_t) { NULL, &e[i].ev, NULL };
    }
    e[5].ci.unit = NULL; /* E01/1-104: billing has never seen it: no area */
    assert_int_equal (pm_daemon_apply (t->d, items, 10), PM_OK);
    assert_int_equal (items[5].reply->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (items[5].reply->message, "E01/1-104"));
    for (int i = 0; i < 10; i++)
        if (i != 5)
            assert_int_equal (items[i].reply->status, PM__V1__STATUS__OK);

    /* E01: 101, 102, 103, 105, 106 -> 1..5 in arrival order; E02: 1..3 */
    assert_int_equal (bt_emitted_count (t, "billing.invoice.issued"), 8);
    assert_string_equal (bt_move_in (t, "E01/1-101"), "INV-E01-000001");
    assert_string_equal (bt_move_in (t, "E01/1-102"), "INV-E01-000002");
    assert_string_equal (bt_move_in (t, "E01/1-103"), "INV-E01-000003");
    assert_string_equal (bt_move_in (t, "E01/1-105"), "INV-E01-000004");
    assert_string_equal (bt_move_in (t, "E01/1-106"), "INV-E01-000005");
    assert_string_equal (bt_move_in (t, "E02/1-101"), "INV-E02-000001");
    assert_string_equal (bt_move_in (t, "E02/1-102"), "INV-E02-000002");
    assert_string_equal (bt_move_in (t, "E02/1-103"), "INV-E02-000003");
    assert_int_equal (bt_unit (t, "E01/1-101")->n_invoices, 1); /* checked in twice, billed once */
    assert_non_null (pmt_queue_item (pmt_queue (t->d, "dead_events"), "intake:6"));

    /* the next check-in takes the next number */
    bt_check_in (t, "E01/1-107", 9000, 0, "");
    assert_string_equal (bt_move_in (t, "E01/1-107"), "INV-E01-000006");
    assert_int_equal (pmt_metric (t->d, "billing_invoices", ""), 9);
}

static void
test_check_in_without_a_schedule_waits_for_one (void **state)
{
    bt_t *t = *state;
    bt_check_in (t, "E05/2-201", 8000, 0, "");
    assert_null (pmt_emitted_type (t->d, "billing.invoice.issued"));
    Pm__V1__Queue *q = pmt_queue (t->d, "waiting_check_ins");
    assert_int_equal (q->count, 1);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, "E05/2-201");
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "no fee schedule"));

    /* a schedule effective after the check-in does not apply to it */
    bt_schedule (t, "E05", "2027-01-01", 12);
    assert_int_equal (pmt_queue (t->d, "waiting_check_ins")->count, 1);
    /* one in force at the check-in does, and the invoice is issued at once */
    static const char *const none[] = { NULL };
    Pm__V1__Reply *r = bt_schedule_try (t, "E05", "2026-11-01", "2.00", "0", "0", 6, none, none);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    assert_int_equal (r->billing_schedule_set->invoices_issued, 1);
    assert_int_equal (r->billing_schedule_set->versions, 2);
    Pm__V1__Event *ev = pmt_emitted_type (t->d, "billing.invoice.issued");
    assert_non_null (ev);
    assert_int_equal (ev->invoice->total_fen, 8000 * 200 * 6 / 100);
    assert_int_equal (pmt_queue (t->d, "waiting_check_ins")->count, 0);
}

static void
test_schedule_versions_by_effective_date (void **state)
{
    bt_t *t = *state;
    bt_schedule_plain (t, "E01", "2026-01-01", "2.00", 1);
    bt_schedule_plain (t, "E01", "2026-12-10", "3.00", 1);
    bt_check_in (t, "E01/1-101", 10000, 0, "");
    assert_int_equal (pmt_emitted_type (t->d, "billing.invoice.issued")->invoice->total_fen, 20000);
    pmt_clock_advance (t->d, "10d"); /* 2026-12-11 */
    bt_check_in (t, "E01/1-102", 10000, 0, "");
    assert_int_equal (pmt_emitted_type (t->d, "billing.invoice.issued")->invoice->total_fen, 30000);
    /* an issued invoice keeps its amounts when the schedule changes */
    bt_schedule_plain (t, "E01", "2026-01-01", "9.99", 1);
    assert_int_equal (bt_unit (t, "E01/1-101")->invoices[0]->total_fen, 20000);

    Pm__V1__BillingScheduleGetRequest g = PM__V1__BILLING_SCHEDULE_GET_REQUEST__INIT;
    g.estate_id = "E01";
    g.date = "2026-12-09";
    Pm__V1__Reply *r = pmt_call_expect (t->d, "read", "billing.schedule.get", &g.base, PM__V1__STATUS__OK);
    assert_int_equal (r->billing_schedule_get->n_versions, 2);
    assert_string_equal (r->billing_schedule_get->effective->effective_date, "2026-01-01");
    assert_int_equal (r->billing_schedule_get->effective->property_fee_fen, 999);
    assert_non_null (strstr (r->billing_schedule_get->effective->source, "request"));
}

static void
test_bad_schedules_are_refused_with_the_field (void **state)
{
    bt_t *t = *state;
    static const char *const none[] = { NULL };
    Pm__V1__Reply *r = bt_schedule_try (t, "E01", "2026-01-01", "", "60.00", "150.00", 12, none, none);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "property_fee"));
    assert_non_null (strstr (r->message, "missing"));
    r = bt_schedule_try (t, "E01", "2026-01-01", "2.80", "", "150.00", 12, none, none);
    assert_non_null (strstr (r->message, "maintenance_fund"));
    r = bt_schedule_try (t, "E01", "2026-01-01", "2.80", "60.00", "", 12, none, none);
    assert_non_null (strstr (r->message, "parking"));
    r = bt_schedule_try (t, "E01", "2026-01-01", "2.805", "60.00", "150.00", 12, none, none);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "more than two decimals"));
    r = bt_schedule_try (t, "E01", "2026-02-30", "2.80", "60.00", "150.00", 12, none, none);
    assert_non_null (strstr (r->message, "effective_date"));
    static const char *const bad_item[] = { "垃圾清运费=abc", NULL };
    r = bt_schedule_try (t, "E01", "2026-01-01", "2.80", "60.00", "150.00", 12, bad_item, none);
    assert_non_null (strstr (r->message, "items.amount"));
    r = bt_schedule_try (t, "E/01", "2026-01-01", "2.80", "60.00", "150.00", 12, none, none);
    assert_non_null (strstr (r->message, "estate_id"));
    /* nothing was stored */
    Pm__V1__BillingScheduleGetRequest g = PM__V1__BILLING_SCHEDULE_GET_REQUEST__INIT;
    g.estate_id = "E01";
    pmt_call_expect (t->d, "read", "billing.schedule.get", &g.base, PM__V1__STATUS__NOT_FOUND);
}

/* --- the schedule file --------------------------------------------------------------- */

static char *
s_write (const char *dir, const char *text)
{
    char *path = pm_xasprintf ("%s/schedules.conf", dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
    return path;
}

/* Starts billing on dir with the schedule file; NULL when it refuses. */
static pm_daemon_t *
s_start (const char *dir, const char *path)
{
    static const char *const names[] = { "billing", "intake", NULL };
    char *extra = pm_xasprintf ("[billing]\nschedule = %s\n", path);
    char *text = pmt_config (dir, names, extra), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (extra);
    free (text);
    assert_non_null (cfg);
    return pm_daemon_new (&billing_spec, cfg, NULL);
}

static void
test_schedule_file_errors_name_file_and_line (void **state)
{
    char *dir = pmt_tmpdir ();
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "[E01 2026-01-01]\nproperty_fee = 2.80\nmaintenance_fund = 60\nparking = 15O.00\nprepaid_months = 12\n",
          "schedules.conf:4: parking = '15O.00': not an amount" },
        { "; fees\n[E01 2026-01-01]\nproperty_fee = 2.80\nparking = 150\nprepaid_months = 12\n",
          "schedules.conf:2: [E01 2026-01-01] maintenance_fund: missing" },
        { "[E01 2026-01-01]\nproperty_fee = 2.805\n", "schedules.conf:2: property_fee = '2.805': more than two decimals" },
        { "[E01 2026-01-01]\nproperty_fee = 2.80\nmaintenance_fund = 60\nparking = 0\n",
          "schedules.conf:1: [E01 2026-01-01] prepaid_months: missing" },
        { "[E01 2026-01-01]\nproperty_fee = 2.80\nproperty_fee = 2.90\n", "schedules.conf:3: property_fee: given twice" },
        { "[E01 2026-01-01]\nproperty_fees = 2.80\n", "schedules.conf:2: unknown key 'property_fees'" },
        { "property_fee = 2.80\n", "schedules.conf:1: 'property_fee = 2.80' before the first" },
        { "[E01 2026-14-01]\n", "schedules.conf:1: '[E01 2026-14-01]': a section is [ESTATE YYYY-MM-DD]" },
        { "[E01 2026-01-01]\nitem = 垃圾清运费 300\n", "schedules.conf:2: item = '垃圾清运费 300': expected NAME, AMOUNT" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = s_write (dir, cases[i].text);
        pmt_log_start ();
        pm_daemon_t *d = s_start (dir, path);
        if (d)
            fail_msg ("case %zu: billing started on a bad schedule file", i);
        if (!pmt_log_has (cases[i].want))
            fail_msg ("case %zu: the log does not say '%s'", i, cases[i].want);
        pmt_log_stop ();
        free (path);
    }
    pmt_rmdir (dir);
}

static void
test_schedule_file_is_loaded_and_yields_to_commands (void **state)
{
    char *dir = pmt_tmpdir ();
    char *path = s_write (dir, "; 收费标准\n"
                               "[E01 2026-01-01]\n"
                               "property_fee = 2.80          ; 元/m2/月\n"
                               "property_fee.commercial = 4.50\n"
                               "maintenance_fund = 60.00\n"
                               "parking = 150.00\n"
                               "prepaid_months = 12\n"
                               "item = 垃圾清运费, 300.00\n"
                               "deposit = 装修押金, 2,000.00\n"
                               "\n"
                               "[E01 2027-01-01]\n"
                               "property_fee = 3.00\n"
                               "maintenance_fund = 60.00\n"
                               "parking = 150.00\n"
                               "prepaid_months = 6\n");
    pm_daemon_t *d = s_start (dir, path);
    assert_non_null (d);
    Pm__V1__BillingScheduleGetRequest g = PM__V1__BILLING_SCHEDULE_GET_REQUEST__INIT;
    g.estate_id = "E01";
    g.date = "2026-06-01";
    Pm__V1__Reply *r = pmt_call_expect (d, "read", "billing.schedule.get", &g.base, PM__V1__STATUS__OK);
    Pm__V1__FeeSchedule *s = r->billing_schedule_get->effective;
    assert_int_equal (r->billing_schedule_get->n_versions, 2);
    assert_int_equal (s->property_fee_fen, 280);
    assert_int_equal (s->n_property_fee_by_type, 1);
    assert_int_equal (s->property_fee_by_type[0]->property_fee_fen, 450);
    assert_int_equal (s->n_items, 2);
    assert_string_equal (s->items[1]->name, "装修押金");
    assert_true (s->items[1]->deposit);
    assert_int_equal (s->items[1]->amount_fen, 200000);
    assert_non_null (strstr (s->source, "schedules.conf:2"));

    /* a command's version wins over the file's at the next start */
    Pm__V1__BillingScheduleSetRequest q = PM__V1__BILLING_SCHEDULE_SET_REQUEST__INIT;
    q.estate_id = "E01";
    q.effective_date = "2026-01-01";
    q.property_fee = "2.50";
    q.maintenance_fund = "60.00";
    q.parking = "150.00";
    pmt_call_expect (d, "set-1", "billing.schedule.set", &q.base, PM__V1__STATUS__OK);
    pm_daemon_destroy (&d);
    free (path);
    path = s_write (dir, "[E01 2026-01-01]\nproperty_fee = 2.90\nmaintenance_fund = 60\nparking = 150\nprepaid_months = 12\n");
    pmt_log_start ();
    d = s_start (dir, path);
    assert_non_null (d);
    assert_true (pmt_log_has ("wins over the file"));
    r = pmt_call_expect (d, "read", "billing.schedule.get", &g.base, PM__V1__STATUS__OK);
    assert_int_equal (r->billing_schedule_get->effective->property_fee_fen, 250);
    /* the 2027 version the file no longer has is gone */
    assert_int_equal (r->billing_schedule_get->n_versions, 1);
    pm_daemon_destroy (&d);
    free (path);
    pmt_rmdir (dir);
}

/* --- the monthly run ------------------------------------------------------------------ */

static void
test_monthly_run_prorates_the_first_month_and_is_idempotent (void **state)
{
    bt_t *t = *state;
    bt_schedule (t, "E02", "2026-01-01", 0); /* nothing prepaid: billing starts with the keys */
    bt_check_in (t, "E02/1-101", 8950, 1, "");
    pmt_clock_set (t->d, "2026-12-10T02:00:00Z"); /* 10:00 on the 10th */
    bt_keys (t, "E02/1-101", 8950, 1);

    Pm__V1__Reply *r = bt_run (t, "E02", "2026-12");
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    Pm__V1__BillingRunReply *run = r->billing_run;
    assert_string_equal (run->state, "done");
    assert_int_equal (run->issued, 1);
    assert_int_equal (run->units, 1);
    const Pm__V1__Invoice *inv = pmt_emitted_type (t->d, "billing.invoice.issued")->invoice;
    assert_string_equal (inv->kind, "monthly");
    assert_string_equal (inv->period, "2026-12");
    assert_string_equal (s_line (inv, "物业费")->basis, "89.50 m2 x 2.80 元/m2/月 x 22/31 月 (from 2026-12-10)");
    assert_int_equal (s_line (inv, "物业费")->amount_fen, 17785); /* 177.845 元 */
    assert_int_equal (s_line (inv, "停车费")->amount_fen, 10645); /* 150 x 22/31 = 106.45 */
    assert_int_equal (inv->total_fen, 17785 + 10645);
    assert_true (inv->due_ms == bt_date (2026, 12, 15));

    /* twice: nothing new */
    r = bt_run (t, "E02", "2026-12");
    assert_int_equal (r->billing_run->issued, 0);
    assert_int_equal (r->billing_run->already, 1);
    assert_int_equal (r->billing_run->issued_total, 1);
    assert_int_equal (bt_emitted_count (t, "billing.invoice.issued"), 0);

    /* the next month is a whole month */
    r = bt_run (t, "E02", "2027-01");
    assert_int_equal (r->billing_run->issued, 1);
    inv = pmt_emitted_type (t->d, "billing.invoice.issued")->invoice;
    assert_string_equal (s_line (inv, "物业费")->basis, "89.50 m2 x 2.80 元/m2/月 x 1 月");
    assert_int_equal (s_line (inv, "物业费")->amount_fen, 25060);
    assert_int_equal (s_line (inv, "停车费")->amount_fen, 15000);
    assert_int_equal (bt_unit (t, "E02/1-101")->n_invoices, 3);

    /* too far ahead, or not a month */
    r = bt_run (t, "E02", "2027-03");
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "more than a month ahead"));
    assert_int_equal (bt_run (t, "E02", "2026-13")->status, PM__V1__STATUS__INVALID);
    assert_int_equal (bt_run (t, "E77", "2026-12")->status, PM__V1__STATUS__NOT_FOUND);
}

static void
test_monthly_run_skips_prepaid_months_and_units_without_keys (void **state)
{
    bt_t *t = *state;
    bt_schedule (t, "E01", "2026-01-01", 1); /* one month prepaid: December */
    bt_check_in (t, "E01/1-101", 10000, 0, "");
    bt_keys (t, "E01/1-101", 10000, 0);
    bt_check_in (t, "E01/1-102", 10000, 0, ""); /* no keys yet */
    Pm__V1__Reply *r = bt_run (t, "E01", "2026-12");
    assert_int_equal (r->billing_run->issued, 0);
    assert_int_equal (r->billing_run->prepaid, 1);
    assert_int_equal (r->billing_run->units, 1);
    r = bt_run (t, "E01", "2027-01");
    assert_int_equal (r->billing_run->issued, 1);
    /* keys handed later: the next run of the same period bills only that unit */
    bt_keys (t, "E01/1-102", 10000, 0);
    r = bt_run (t, "E01", "2027-01");
    assert_int_equal (r->billing_run->issued, 1);
    assert_int_equal (r->billing_run->already, 1);
    assert_int_equal (r->billing_run->issued_total, 2);
}

static void
test_a_large_run_goes_in_steps_and_survives_a_restart (void **state)
{
    bt_t *t = bt_new ("[billing]\nrun_chunk = 3\n");
    bt_schedule (t, "E01", "2026-01-01", 0);
    char unit[32];
    for (int i = 0; i < 10; i++) {
        snprintf (unit, sizeof unit, "E01/%d-%03d", i % 3 + 1, 101 + i);
        bt_check_in (t, unit, 9000 + i, 0, "");
        bt_keys (t, unit, 9000 + i, 0);
    }
    Pm__V1__Reply *r = bt_run (t, "E01", "2027-01");
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    assert_string_equal (r->billing_run->state, "running");
    assert_int_equal (r->billing_run->done, 3);
    assert_int_equal (r->billing_run->units, 10);
    /* asked again while it runs: no second pass */
    r = bt_run (t, "E01", "2027-01");
    assert_int_equal (r->billing_run->done, 3);
    bt_restart (t);
    int steps = 0;
    while (pm_daemon_fire_timers (t->d) > 0)
        steps++;
    assert_int_equal (steps, 3);
    Pm__V1__BillingRunGetRequest g = PM__V1__BILLING_RUN_GET_REQUEST__INIT;
    g.estate_id = "E01";
    g.period = "2027-01";
    r = pmt_call_expect (t->d, "read", "billing.run.get", &g.base, PM__V1__STATUS__OK);
    assert_string_equal (r->billing_run_get->state, "done");
    assert_int_equal (r->billing_run_get->done, 10);
    assert_int_equal (r->billing_run_get->issued, 10);
    assert_int_equal (pmt_metric (t->d, "billing_invoices", ""), 20); /* 10 move-in + 10 monthly */
    for (int i = 0; i < 10; i++) {
        snprintf (unit, sizeof unit, "E01/%d-%03d", i % 3 + 1, 101 + i);
        assert_int_equal (bt_unit (t, unit)->n_invoices, 2);
    }
    bt_free (&t);
}

int
main (void)
{
    pm_log_init ("test_invoices", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_check_in_issues_the_move_in_invoice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rounding_is_half_up_per_line_not_per_month, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rate_by_unit_type, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_numbers_are_gapless_per_estate_under_concurrent_check_ins, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_check_in_without_a_schedule_waits_for_one, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_schedule_versions_by_effective_date, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_schedules_are_refused_with_the_field, s_setup, s_teardown),
        cmocka_unit_test (test_schedule_file_errors_name_file_and_line),
        cmocka_unit_test (test_schedule_file_is_loaded_and_yields_to_commands),
        cmocka_unit_test_setup_teardown (test_monthly_run_prorates_the_first_month_and_is_idempotent, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_monthly_run_skips_prepaid_months_and_units_without_keys, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_a_large_run_goes_in_steps_and_survives_a_restart),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
