/* test_reconcile - a bank withholding result file against the books, line
 * by line: matched lines become payments once however often the file is
 * imported, every other line is reported with its reason and waits in
 * unmatched_lines until a person deals with it. */
#include "billing_test.h"

typedef struct {
    const char *ref, *unit, *invoice, *amount_fen, *amount, *status, *paid_at;
} s_line_t;

/* The bank's file: line 1 is its header. */
static const s_line_t s_file[] = {
    /* 2 */ { "BK-1", "E01/1-101", "INV-E01-000001", "240000", "", "success", "2026-12-18 03:10:00" },
    /* 3 */ { "BK-2", "", "INV-E01-000002", "", "2400.00", "成功", "20261218031000" },
    /* 4 */ { "BK-3", "E01/1-103", "INV-E01-000003", "", "2000.00", "success", "" },
    /* 5 */ { "BK-4", "", "INV-E01-000099", "240000", "", "success", "" },
    /* 6 */ { "BK-5", "E01/1-104", "INV-E01-000004", "240000", "", "余额不足", "" },
    /* 7 */ { "BK-6", "", "INV-E01-000004", "", "12.345", "success", "" },
    /* 8 */ { "", "", "INV-E01-000004", "240000", "", "success", "" },
    /* 9 */ { "BK-1", "E01/1-101", "INV-E01-000001", "240000", "", "success", "" },
    /* 10 */ { "BK-7", "E01/1-101", "INV-E01-000002", "240000", "", "success", "" },
    /* 11 */ { "BK-8", "", "INV-E01-000004", "240000", "", "pending", "" },
    /* 12 */ { "BK-9", "E01/1-104", "", "240000", "", "ok", "" },
};
#define S_LINES (sizeof s_file / sizeof s_file[0])

static int
s_setup (void **state)
{
    bt_t *t = bt_new (NULL);
    bt_schedule_plain (t, "E01", "2026-01-01", "2.00", 12);
    bt_check_in (t, "E01/1-101", 10000, 0, "");
    bt_check_in (t, "E01/1-102", 10000, 0, "");
    bt_check_in (t, "E01/1-103", 10000, 0, "");
    bt_check_in (t, "E01/1-104", 10000, 0, "");
    *state = t;
    return 0;
}

static int
s_teardown (void **state)
{
    bt_free ((bt_t **) state);
    return 0;
}

static Pm__V1__Reply *
s_reconcile (bt_t *t)
{
    Pm__V1__BillingReconcileRequest q = PM__V1__BILLING_RECONCILE_REQUEST__INIT;
    Pm__V1__ReconcileLine l[S_LINES], *lp[S_LINES];
    for (size_t i = 0; i < S_LINES; i++) {
        pm__v1__reconcile_line__init (&l[i]);
        l[i].line = (uint32_t) i + 2;
        l[i].external_ref = (char *) s_file[i].ref;
        l[i].unit_id = (char *) s_file[i].unit;
        l[i].invoice_id = (char *) s_file[i].invoice;
        l[i].amount_fen = (char *) s_file[i].amount_fen;
        l[i].amount = (char *) s_file[i].amount;
        l[i].status = (char *) s_file[i].status;
        l[i].paid_at = (char *) s_file[i].paid_at;
        lp[i] = &l[i];
    }
    q.batch_id = "reconcile:abc";
    q.chunk_no = 1;
    q.file_name = "bank-2026-12.csv";
    q.lines = lp;
    q.n_lines = S_LINES;
    return pmt_call_expect (t->d, bt_id (t), "billing.reconcile", &q.base, PM__V1__STATUS__OK);
}

static const Pm__V1__ReconcileResult *
s_result (const Pm__V1__BillingReconcileReply *r, uint32_t line)
{
    for (size_t i = 0; i < r->n_results; i++)
        if (r->results[i]->line == line)
            return r->results[i];
    return NULL;
}

static void
s_expect (const Pm__V1__BillingReconcileReply *r, uint32_t line, const char *outcome, const char *says)
{
    const Pm__V1__ReconcileResult *x = s_result (r, line);
    if (!x)
        fail_msg ("line %u: no result (matched?)", line);
    if (strcmp (x->outcome, outcome) != 0 || !strstr (x->reason, says))
        fail_msg ("line %u: %s: %s (expected %s saying '%s')", line, x->outcome, x->reason, outcome, says);
}

static void
test_each_line_matched_or_reported_with_its_reason (void **state)
{
    bt_t *t = *state;
    Pm__V1__Reply *rep = s_reconcile (t);
    Pm__V1__BillingReconcileReply *r = rep->billing_reconcile;
    /* the matched lines are payments on bank_withholding, with the bank's time */
    assert_int_equal (bt_emitted_count (t, "billing.invoice.settled"), 3);
    assert_int_equal (bt_emitted_count (t, "billing.payment.recorded"), 3);
    Pm__V1__Event *ev = pmt_emitted_type (t->d, "billing.payment.recorded");
    assert_string_equal (ev->payment->channel, "bank_withholding");
    assert_string_equal (ev->payment->external_ref, "BK-1");
    int64_t want;
    assert_int_equal (pm_time_parse ("2026-12-17T19:10:00Z", &want), PM_OK);
    assert_true (ev->payment->paid_at_ms == want);
    assert_int_equal (r->matched, 3); /* 2, 3 and 12 (by unit) */
    assert_int_equal (r->already_recorded, 1);
    assert_int_equal (r->mismatched, 2);
    assert_int_equal (r->unknown, 1);
    assert_int_equal (r->failed, 1);
    assert_int_equal (r->rejected, 3);
    assert_int_equal (r->matched_fen, 720000);
    assert_null (s_result (r, 2));
    assert_null (s_result (r, 3));
    assert_null (s_result (r, 12));
    s_expect (r, 4, "mismatched", "the bank withheld ¥2,000.00; invoice INV-E01-000003");
    s_expect (r, 4, "mismatched", "¥2,400.00 open");
    s_expect (r, 5, "unknown", "no invoice INV-E01-000099");
    s_expect (r, 6, "failed", "余额不足");
    s_expect (r, 7, "rejected", "more than two decimals");
    s_expect (r, 8, "rejected", "external_ref");
    s_expect (r, 9, "already_recorded", "PAY-E01-000001");
    s_expect (r, 10, "mismatched", "INV-E01-000002 is unit E01/1-102's");
    s_expect (r, 11, "rejected", "status");
    assert_non_null (strstr (rep->message, "3 matched, 1 already recorded, 2 mismatched, 1 unknown, 1 failed, 3 rejected"));
    assert_int_equal (bt_invoice (t, "INV-E01-000001")->invoice->state, PM__V1__INVOICE_STATE__SETTLED);
    assert_int_equal (bt_invoice (t, "INV-E01-000002")->invoice->state, PM__V1__INVOICE_STATE__SETTLED);
    assert_int_equal (bt_invoice (t, "INV-E01-000004")->invoice->state, PM__V1__INVOICE_STATE__SETTLED);
    assert_int_equal (bt_invoice (t, "INV-E01-000003")->invoice->state, PM__V1__INVOICE_STATE__ISSUED);
    /* the lines a person must see wait in the queue, by file and line */
    Pm__V1__Queue *q = pmt_queue (t->d, "unmatched_lines");
    assert_int_equal (q->count, 7);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, "bank-2026-12.csv:4");
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "mismatched"));
    assert_string_equal (pmt_queue_field (it, "external_ref"), "BK-3");
    assert_string_equal (it->unit_id, "E01/1-103");
    assert_non_null (pmt_queue_item (q, "bank-2026-12.csv:6"));
    assert_null (pmt_queue_item (q, "bank-2026-12.csv:9"));
    assert_int_equal (pmt_metric (t->d, "billing_unmatched_lines", ""), 7);
}

static void
test_a_second_import_of_the_file_changes_nothing (void **state)
{
    bt_t *t = *state;
    s_reconcile (t);
    Pm__V1__BillingReconcileReply *r = s_reconcile (t)->billing_reconcile;
    assert_int_equal (r->matched, 0);
    assert_int_equal (r->already_recorded, 4);
    assert_int_equal (r->mismatched, 2);
    assert_int_equal (bt_emitted_count (t, "billing.payment.recorded"), 0);
    assert_int_equal (pmt_metric (t->d, "billing_payments", ""), 3);
    assert_int_equal (pmt_queue (t->d, "unmatched_lines")->count, 7);
}

static void
test_a_person_deals_with_the_unmatched_lines (void **state)
{
    bt_t *t = *state;
    s_reconcile (t);
    /* the accountant checks line 4 with the bank: it was 2,400.00 after all */
    bt_pay_ok (t, "INV-E01-000003", NULL, 240000, "bank_withholding", "BK-3");
    Pm__V1__Queue *q = pmt_queue (t->d, "unmatched_lines");
    assert_int_equal (q->count, 6);
    assert_null (pmt_queue_item (q, "bank-2026-12.csv:4"));
    /* ... and resolves the failed one */
    Pm__V1__BillingReconcileResolveRequest rq = PM__V1__BILLING_RECONCILE_RESOLVE_REQUEST__INIT;
    rq.file_name = "bank-2026-12.csv";
    rq.line = 6;
    Pm__V1__Reply *r = pmt_call (t->d, bt_id (t), "billing.reconcile.resolve", &rq.base);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    rq.note = "paid by line 12 of the same file";
    r = pmt_call_expect (t->d, bt_id (t), "billing.reconcile.resolve", &rq.base, PM__V1__STATUS__OK);
    assert_int_equal (r->billing_reconcile_resolve->remaining, 5);
    pmt_call_expect (t->d, bt_id (t), "billing.reconcile.resolve", &rq.base, PM__V1__STATUS__NOT_FOUND);
    /* a later import: line 4 is now already recorded and stays out */
    Pm__V1__BillingReconcileReply *rr = s_reconcile (t)->billing_reconcile;
    s_expect (rr, 4, "mismatched", "other values"); /* BK-3 is a payment of 2,400.00; the file says 2,000.00 */
    assert_non_null (pmt_queue_item (pmt_queue (t->d, "unmatched_lines"), "bank-2026-12.csv:4"));
}

static void
test_a_request_without_a_file_name_is_refused (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingReconcileRequest q = PM__V1__BILLING_RECONCILE_REQUEST__INIT;
    Pm__V1__Reply *r = pmt_call (t->d, bt_id (t), "billing.reconcile", &q.base);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "file_name"));
}

int
main (void)
{
    pm_log_init ("test_reconcile", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_each_line_matched_or_reported_with_its_reason, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_second_import_of_the_file_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_person_deals_with_the_unmatched_lines, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_request_without_a_file_name_is_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
