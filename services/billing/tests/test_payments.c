/* test_payments - idempotent payments by external reference, partial
 * payments and settlement, overpayment kept as credit and applied to the
 * next invoice, payments by unit, receipts, deposit refunds, and bad input
 * that changes nothing. */
#include "billing_test.h"

static int
s_setup (void **state)
{
    bt_t *t = bt_new (NULL);
    bt_schedule_plain (t, "E01", "2026-01-01", "2.00", 12); /* 100.00 m2: 2,400.00 元 */
    bt_check_in (t, "E01/1-101", 10000, 0, "");
    bt_check_in (t, "E01/1-102", 10000, 0, "");
    *state = t;
    return 0;
}

static int
s_teardown (void **state)
{
    bt_free ((bt_t **) state);
    return 0;
}

static void
test_same_reference_is_one_payment_whatever_the_request_id (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingPaymentRecordReply *p = bt_pay_ok (t, "INV-E01-000001", NULL, 100000, "counter_card", "POS-778812");
    assert_false (p->already_recorded);
    assert_string_equal (p->payment->payment_id, "PAY-E01-000001");
    assert_string_equal (p->payment->receipt_no, "RCP-E01-000001");
    assert_int_equal (bt_emitted_count (t, "billing.payment.recorded"), 1);

    /* a retry with a new request id (the cashier pressed again) */
    Pm__V1__Reply *r = bt_pay (t, "INV-E01-000001", NULL, 100000, "counter_card", "POS-778812", false);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    assert_true (r->billing_payment_record->already_recorded);
    assert_string_equal (r->billing_payment_record->payment->payment_id, "PAY-E01-000001");
    assert_non_null (strstr (r->message, "already recorded"));
    assert_int_equal (bt_emitted_count (t, "billing.payment.recorded"), 0);
    assert_int_equal (bt_invoice (t, "INV-E01-000001")->invoice->paid_fen, 100000);
    assert_int_equal (pmt_metric (t->d, "billing_payments", ""), 1);

    /* the same reference with another amount is not a payment */
    r = bt_pay (t, "INV-E01-000001", NULL, 90000, "counter_card", "POS-778812", false);
    assert_int_equal (r->status, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "PAY-E01-000001"));
    /* ... nor for another invoice */
    r = bt_pay (t, "INV-E01-000002", NULL, 100000, "counter_card", "POS-778812", false);
    assert_int_equal (r->status, PM__V1__STATUS__CONFLICT);
    /* the same text on another channel is another payment */
    p = bt_pay_ok (t, "INV-E01-000001", NULL, 100000, "online", "POS-778812");
    assert_string_equal (p->payment->payment_id, "PAY-E01-000002");
    assert_int_equal (bt_invoice (t, "INV-E01-000001")->invoice->paid_fen, 200000);
}

static void
test_partial_payments_then_settled (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingPaymentRecordReply *p = bt_pay_ok (t, "INV-E01-000001", NULL, 40000, "counter_cash", "CASH-1");
    assert_int_equal (p->n_invoices, 1);
    assert_int_equal (p->invoices[0]->state, PM__V1__INVOICE_STATE__PARTIALLY_PAID);
    assert_int_equal (p->invoices[0]->open_fen, 200000);
    Pm__V1__Event *ev = pmt_emitted_type (t->d, "billing.invoice.updated");
    assert_non_null (ev);
    assert_int_equal (ev->invoice->paid_fen, 40000);
    assert_null (pmt_emitted_type (t->d, "billing.invoice.settled"));

    p = bt_pay_ok (t, "INV-E01-000001", NULL, 200000, "bank_withholding", "BK-2");
    assert_int_equal (p->invoices[0]->state, PM__V1__INVOICE_STATE__SETTLED);
    ev = pmt_emitted_type (t->d, "billing.invoice.settled");
    assert_non_null (ev);
    assert_string_equal (ev->invoice->invoice_id, "INV-E01-000001");
    assert_string_equal (ev->invoice->kind, "move_in");
    assert_int_equal (ev->invoice->open_fen, 0);
    assert_int_equal (ev->invoice->paid_fen, 240000);
    Pm__V1__Event *pe = pmt_emitted_type (t->d, "billing.payment.recorded");
    assert_int_equal (pe->payment->amount_fen, 200000);
    assert_int_equal (pe->payment->n_allocations, 1);
    /* settled: more money only as credit */
    Pm__V1__Reply *r = bt_pay (t, "INV-E01-000001", NULL, 100, "counter_cash", "CASH-3", false);
    assert_int_equal (r->status, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "SETTLED"));
    assert_non_null (strstr (r->message, "allow_credit"));
    Pm__V1__BillingInvoiceGetReply *g = bt_invoice (t, "INV-E01-000001");
    assert_int_equal (g->n_payments, 2);
    assert_string_equal (g->payments[1], "PAY-E01-000002");
}

static void
test_overpayment_is_credit_applied_to_the_next_invoice (void **state)
{
    bt_t *t = *state;
    /* without allow_credit the overpayment is refused and nothing is written */
    Pm__V1__Reply *r = bt_pay (t, "INV-E01-000001", NULL, 250000, "counter_cash", "CASH-9", false);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "allow_credit"));
    assert_non_null (strstr (r->message, "¥2,400.00"));
    assert_int_equal (pmt_metric (t->d, "billing_payments", ""), 0);
    assert_int_equal (bt_invoice (t, "INV-E01-000001")->invoice->open_fen, 240000);

    Pm__V1__BillingPaymentRecordRequest q = PM__V1__BILLING_PAYMENT_RECORD_REQUEST__INIT;
    q.invoice_id = "INV-E01-000001";
    q.amount = "2,600.00";
    q.channel = "counter_cash";
    q.external_ref = "CASH-9";
    q.allow_credit = true;
    r = pmt_call_expect (t->d, bt_id (t), "billing.payment.record", &q.base, PM__V1__STATUS__OK);
    Pm__V1__BillingPaymentRecordReply *p = r->billing_payment_record;
    assert_string_equal (p->payment->payment_id, "PAY-E01-000001"); /* the refused one took no number */
    assert_int_equal (p->payment->credit_fen, 20000);
    assert_int_equal (p->credit_fen, 20000);
    assert_int_equal (p->invoices[0]->state, PM__V1__INVOICE_STATE__SETTLED);
    assert_non_null (strstr (r->message, "kept as credit"));
    assert_int_equal (bt_unit (t, "E01/1-101")->credit_fen, 20000);
    assert_int_equal (bt_unit (t, "E01/1-101")->balance_fen, -20000);

    /* the next invoice takes the credit */
    bt_keys (t, "E01/1-101", 10000, 0);
    pmt_clock_set (t->d, "2027-11-01T01:00:00Z");
    r = bt_run (t, "E01", "2027-12");
    assert_int_equal (r->billing_run->issued, 1);
    Pm__V1__Event *ev = pmt_emitted_type (t->d, "billing.invoice.issued");
    assert_int_equal (ev->invoice->total_fen, 20000);
    assert_int_equal (ev->invoice->credit_applied_fen, 20000);
    assert_int_equal (ev->invoice->open_fen, 0);
    assert_int_equal (ev->invoice->state, PM__V1__INVOICE_STATE__SETTLED);
    assert_non_null (pmt_emitted_type (t->d, "billing.invoice.settled"));
    assert_int_equal (bt_unit (t, "E01/1-101")->credit_fen, 0);
    assert_int_equal (bt_unit (t, "E01/1-101")->balance_fen, 0);
}

static void
test_payment_by_unit_pays_the_oldest_first (void **state)
{
    bt_t *t = *state;
    bt_keys (t, "E01/1-102", 10000, 0);
    pmt_clock_set (t->d, "2027-11-01T01:00:00Z");
    bt_run (t, "E01", "2027-12"); /* INV-E01-000003: 200.00 */
    Pm__V1__BillingPaymentRecordReply *p = bt_pay_ok (t, NULL, "E01/1-102", 250000, "online", "WX-1");
    assert_int_equal (p->payment->n_allocations, 2);
    assert_string_equal (p->payment->allocations[0]->invoice_id, "INV-E01-000002");
    assert_int_equal (p->payment->allocations[0]->amount_fen, 240000);
    assert_string_equal (p->payment->allocations[1]->invoice_id, "INV-E01-000003");
    assert_int_equal (p->payment->allocations[1]->amount_fen, 10000);
    assert_string_equal (p->payment->invoice_id, "INV-E01-000002");
    assert_int_equal (bt_emitted_count (t, "billing.invoice.settled"), 1);
    assert_int_equal (bt_emitted_count (t, "billing.invoice.updated"), 1);
    assert_int_equal (bt_unit (t, "E01/1-102")->open_fen, 10000);
    /* more than the unit owes, without allow_credit */
    Pm__V1__Reply *r = bt_pay (t, NULL, "E01/1-102", 10001, "online", "WX-2", false);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "¥100.00 open"));
}

static void
test_bad_payments_change_nothing (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingPaymentRecordRequest q = PM__V1__BILLING_PAYMENT_RECORD_REQUEST__INIT;
    static const struct {
        const char *invoice, *unit, *amount, *channel, *ref;
        int64_t fen;
        int status;
        const char *says;
    } cases[] = {
        { "INV-E01-000001", "", "", "counter_cash", "C-1", 0, PM__V1__STATUS__INVALID, "amount" },
        { "INV-E01-000001", "", "", "counter_cash", "C-1", -500, PM__V1__STATUS__INVALID, "amount" },
        { "INV-E01-000001", "", "12.345", "counter_cash", "C-1", 0, PM__V1__STATUS__INVALID, "more than two decimals" },
        { "INV-E01-000001", "", "0.00", "counter_cash", "C-1", 0, PM__V1__STATUS__INVALID, "zero" },
        { "INV-E01-000001", "", "12.00", "counter_cash", "C-1", 1300, PM__V1__STATUS__INVALID, "disagree" },
        { "INV-E01-000099", "", "", "counter_cash", "C-1", 100, PM__V1__STATUS__NOT_FOUND, "INV-E01-000099" },
        { "INV-X", "", "", "counter_cash", "C-1", 100, PM__V1__STATUS__INVALID, "not an invoice id" },
        { "", "E01/9-999", "", "counter_cash", "C-1", 100, PM__V1__STATUS__NOT_FOUND, "E01/9-999" },
        { "", "", "", "counter_cash", "C-1", 100, PM__V1__STATUS__INVALID, "invoice_id and unit_id" },
        { "INV-E01-000001", "", "", "cheque", "C-1", 100, PM__V1__STATUS__INVALID, "channel" },
        { "INV-E01-000001", "", "", "counter_cash", "", 100, PM__V1__STATUS__INVALID, "external_ref" },
        { "INV-E01-000001", "E01/1-102", "", "counter_cash", "C-1", 100, PM__V1__STATUS__INVALID, "unit_id" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        q.invoice_id = (char *) cases[i].invoice;
        q.unit_id = (char *) cases[i].unit;
        q.amount = (char *) cases[i].amount;
        q.amount_fen = cases[i].fen;
        q.channel = (char *) cases[i].channel;
        q.external_ref = (char *) cases[i].ref;
        Pm__V1__Reply *r = pmt_call (t->d, bt_id (t), "billing.payment.record", &q.base);
        if ((int) r->status != cases[i].status || !strstr (r->message, cases[i].says))
            fail_msg ("case %zu: %s: %s (expected %s saying '%s')", i, pm_status_name (r->status), r->message,
                      pm_status_name (cases[i].status), cases[i].says);
    }
    q.paid_at = "yesterday";
    q.invoice_id = "INV-E01-000001";
    q.unit_id = "";
    q.amount = "";
    q.amount_fen = 100;
    q.external_ref = "C-1";
    q.channel = "counter_cash";
    Pm__V1__Reply *r = pmt_call (t->d, bt_id (t), "billing.payment.record", &q.base);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "paid_at"));
    assert_int_equal (pmt_metric (t->d, "billing_payments", ""), 0);
    assert_int_equal (bt_invoice (t, "INV-E01-000001")->invoice->open_fen, 240000);
    /* and the reference is still free */
    bt_pay_ok (t, "INV-E01-000001", NULL, 100, "counter_cash", "C-1");
}

static void
test_payment_numbers_stay_gapless_around_refused_payments_in_a_batch (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingPaymentRecordRequest q[4];
    Pm__V1__Request req[4];
    pm_batch_item_t items[4];
    static const char *const refs[4] = { "A", "B", "C", "A" };
    static const int64_t fen[4] = { 1000, 999999999, 2000, 1000 }; /* B is more than open; the second A a retry */
    char ids[4][16];
    for (int i = 0; i < 4; i++) {
        pm__v1__billing_payment_record_request__init (&q[i]);
        q[i].invoice_id = "INV-E01-000001";
        q[i].amount_fen = fen[i];
        q[i].channel = "online";
        q[i].external_ref = (char *) refs[i];
        pm__v1__request__init (&req[i]);
        snprintf (ids[i], sizeof ids[i], "batch-%d", i);
        req[i].id = ids[i];
        req[i].method = "billing.payment.record";
        req[i].actor = "test";
        pm_body_set (&req[i].base, "billing.payment.record", &q[i].base);
        items[i] = (pm_batch_item_t) { &req[i], NULL, NULL };
    }
    assert_int_equal (pm_daemon_apply (t->d, items, 4), PM_OK);
    assert_int_equal (items[0].reply->status, PM__V1__STATUS__OK);
    assert_string_equal (items[0].reply->billing_payment_record->payment->payment_id, "PAY-E01-000001");
    assert_int_equal (items[1].reply->status, PM__V1__STATUS__INVALID);
    assert_string_equal (items[2].reply->billing_payment_record->payment->payment_id, "PAY-E01-000002");
    assert_true (items[3].reply->billing_payment_record->already_recorded);
    assert_int_equal (bt_invoice (t, "INV-E01-000001")->invoice->paid_fen, 3000);
}

static void
test_receipt_says_the_amount_in_words (void **state)
{
    bt_t *t = *state;
    Pm__V1__BillingPaymentRecordRequest q = PM__V1__BILLING_PAYMENT_RECORD_REQUEST__INIT;
    q.invoice_id = "INV-E01-000001";
    q.amount = "1234.05";
    q.channel = "counter_cash";
    q.external_ref = "BOOK-0042";
    q.paid_at = "2026-12-02 10:15";
    q.payer = "张伟";
    pmt_call_expect (t->d, bt_id (t), "billing.payment.record", &q.base, PM__V1__STATUS__OK);
    Pm__V1__BillingReceiptGetRequest g = PM__V1__BILLING_RECEIPT_GET_REQUEST__INIT;
    g.receipt_no = "RCP-E01-000001";
    Pm__V1__Reply *r = pmt_call_expect (t->d, "read", "billing.receipt.get", &g.base, PM__V1__STATUS__OK);
    Pm__V1__BillingReceiptGetReply *rc = r->billing_receipt_get;
    assert_string_equal (rc->amount_in_words, "人民币壹仟贰佰叁拾肆元零伍分");
    assert_non_null (strstr (rc->text, "RCP-E01-000001"));
    assert_non_null (strstr (rc->text, "张伟"));
    assert_non_null (strstr (rc->text, "¥1,234.05"));
    assert_non_null (strstr (rc->text, "2026-12-02 10:15"));
    assert_non_null (strstr (rc->text, "INV-E01-000001"));
    assert_string_equal (rc->payment->external_ref, "BOOK-0042");
    g.receipt_no = "RCP-E01-000009";
    pmt_call_expect (t->d, "read", "billing.receipt.get", &g.base, PM__V1__STATUS__NOT_FOUND);
}

static void
test_deposit_refund (void **state)
{
    bt_t *t = *state;
    bt_schedule (t, "E03", "2026-01-01", 0); /* 维修基金 6,000 + 垃圾清运费 300 + 装修押金 2,000 for 100 m2 */
    bt_check_in (t, "E03/1-101", 10000, 0, "");
    const char *inv = bt_move_in (t, "E03/1-101");
    Pm__V1__BillingDepositRefundRequest q = PM__V1__BILLING_DEPOSIT_REFUND_REQUEST__INIT;
    q.invoice_id = (char *) inv;
    q.item = "装修押金";
    q.amount = "2000.00";
    q.channel = "counter_cash";
    q.external_ref = "RF-1";
    /* nothing paid on the deposit yet (paid last) */
    Pm__V1__Reply *r = pmt_call (t->d, bt_id (t), "billing.deposit.refund", &q.base);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "¥0.00"));
    bt_pay_ok (t, inv, NULL, 830000, "counter_cash", "P-1");
    r = pmt_call_expect (t->d, bt_id (t), "billing.deposit.refund", &q.base, PM__V1__STATUS__OK);
    assert_string_equal (r->billing_deposit_refund->refund->refund_id, "RFD-E03-000001");
    assert_int_equal (r->billing_deposit_refund->refundable_fen, 0);
    r = pmt_call_expect (t->d, bt_id (t), "billing.deposit.refund", &q.base, PM__V1__STATUS__OK);
    assert_true (r->billing_deposit_refund->already_recorded);
    q.item = "维修基金";
    q.external_ref = "RF-2";
    r = pmt_call (t->d, bt_id (t), "billing.deposit.refund", &q.base);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "not a deposit"));
    assert_int_equal (bt_unit (t, "E03/1-101")->n_refunds, 1);
}

int
main (void)
{
    pm_log_init ("test_payments", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_same_reference_is_one_payment_whatever_the_request_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_partial_payments_then_settled, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_overpayment_is_credit_applied_to_the_next_invoice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_payment_by_unit_pays_the_oldest_first, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_payments_change_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_payment_numbers_stay_gapless_around_refused_payments_in_a_batch, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_receipt_says_the_amount_in_words, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_deposit_refund, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
