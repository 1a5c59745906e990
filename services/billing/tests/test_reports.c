/* test_reports - 收缴率 per estate, building and fee item, arrears aging, a
 * unit's statement, the gauges and the snapshot, each checked against a
 * recomputation made independently from billing's own events (the outbox,
 * replayed from seq 1): what an accountant reconciling the reports with the
 * invoices and payments would find. */
#include "billing_test.h"

#define S_MAX_INV 256
#define S_UNITS 48

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
    return 0;
}

/* --- the books as the events tell them ---------------------------------------------- */

typedef struct {
    Pm__V1__Invoice *inv[S_MAX_INV]; /* the latest state of each invoice (full-state events) */
    int ninv;
    int64_t paid_in, kept_as_credit;  /* over every payment */
    int npay;
} s_books_t;

static void
s_take (const Pm__V1__Event *ev, void *arg)
{
    s_books_t *b = arg;
    if (ev->payload_case == PM__V1__EVENT__PAYLOAD_PAYMENT) {
        b->paid_in += ev->payment->amount_fen;
        b->kept_as_credit += ev->payment->credit_fen;
        b->npay++;
        return;
    }
    if (ev->payload_case != PM__V1__EVENT__PAYLOAD_INVOICE)
        return;
    /* a copy that outlives the reply */
    size_t len = pm__v1__invoice__get_packed_size (ev->invoice);
    uint8_t *buf = pm_xmalloc (len + 1);
    pm__v1__invoice__pack (ev->invoice, buf);
    Pm__V1__Invoice *copy = pm__v1__invoice__unpack (NULL, len, buf);
    free (buf);
    for (int i = 0; i < b->ninv; i++)
        if (strcmp (b->inv[i]->invoice_id, copy->invoice_id) == 0) {
            pm__v1__invoice__free_unpacked (b->inv[i], NULL);
            b->inv[i] = copy;
            return;
        }
    assert_true (b->ninv < S_MAX_INV);
    b->inv[b->ninv++] = copy;
}

static void
s_books (bt_t *t, s_books_t *b)
{
    memset (b, 0, sizeof *b);
    bt_replay (t, s_take, b);
}

static void
s_books_free (s_books_t *b)
{
    for (int i = 0; i < b->ninv; i++)
        pm__v1__invoice__free_unpacked (b->inv[i], NULL);
    b->ninv = 0;
}

/* The collection period of an invoice: its period, or the month it was issued in. */
static void
s_period (const Pm__V1__Invoice *inv, char out[16])
{
    if (*inv->period) {
        snprintf (out, 16, "%s", inv->period);
        return;
    }
    int y, m, d;
    billing_civil_from_days ((inv->issued_ms + 8 * 3600 * 1000LL) / BT_DAY, &y, &m, &d);
    snprintf (out, 16, "%04d-%02d", y, m);
}

typedef struct {
    int64_t billed, collected;
    uint32_t invoices, settled;
} s_sum_t;

/* What the report should say for one row: dim "estate" (value ""), "building" or "item". */
static s_sum_t
s_expected (const s_books_t *b, const char *period, const char *dim, const char *value)
{
    s_sum_t s = { 0 };
    for (int i = 0; i < b->ninv; i++) {
        const Pm__V1__Invoice *inv = b->inv[i];
        char p[16];
        s_period (inv, p);
        if (*period && strcmp (p, period) != 0)
            continue;
        int64_t collected = inv->paid_fen + inv->credit_applied_fen;
        if (strcmp (dim, "item") == 0) {
            /* money pays the lines in their order */
            int64_t left = collected;
            for (size_t j = 0; j < inv->n_lines; j++) {
                int64_t x = left < inv->lines[j]->amount_fen ? left : inv->lines[j]->amount_fen;
                left -= x;
                if (strcmp (inv->lines[j]->item, value) == 0) {
                    s.billed += inv->lines[j]->amount_fen;
                    s.collected += x;
                }
            }
            continue;
        }
        if (strcmp (dim, "building") == 0) {
            const char *slash = strchr (inv->unit_id, '/');
            const char *dash = strchr (slash, '-');
            if ((size_t) (dash - slash - 1) != strlen (value) || strncmp (slash + 1, value, strlen (value)) != 0)
                continue;
        }
        s.billed += inv->total_fen;
        s.collected += collected;
        s.invoices++;
        s.settled += inv->state == PM__V1__INVOICE_STATE__SETTLED;
    }
    return s;
}

static void
s_check_row (const s_books_t *b, const char *period, const Pm__V1__BillingCollectionRow *row)
{
    s_sum_t want = s_expected (b, period, row->dimension, row->value);
    if (row->billed_fen != want.billed || row->collected_fen != want.collected)
        fail_msg ("%s %s '%s': report billed %lld collected %lld; the events say %lld and %lld", period, row->dimension,
                  row->value, (long long) row->billed_fen, (long long) row->collected_fen, (long long) want.billed,
                  (long long) want.collected);
    if (strcmp (row->dimension, "item") != 0) {
        assert_int_equal (row->invoices, want.invoices);
        assert_int_equal (row->settled, want.settled);
    }
    /* the rate, recomputed: half-up basis points */
    uint32_t bp = want.billed ? (uint32_t) ((want.collected * 20000 + want.billed) / (2 * want.billed)) : 0;
    assert_int_equal (row->rate_bp, bp);
    if (want.billed) {
        char text[16];
        snprintf (text, sizeof text, "%u.%02u%%", bp / 100, bp % 100);
        assert_string_equal (row->rate, text);
    }
}

static Pm__V1__BillingReportCollectionReply *
s_report (bt_t *t, const char *period)
{
    Pm__V1__BillingReportCollectionRequest q = PM__V1__BILLING_REPORT_COLLECTION_REQUEST__INIT;
    q.estate_id = "E01";
    q.period = (char *) period;
    return pmt_call_expect (t->d, "read", "billing.report.collection", &q.base, PM__V1__STATUS__OK)
        ->billing_report_collection;
}

static void
s_check_report (bt_t *t, const s_books_t *b, const char *period)
{
    Pm__V1__BillingReportCollectionReply *r = s_report (t, period);
    s_check_row (b, period, r->estate);
    assert_int_equal (r->n_buildings, 4);
    for (size_t i = 0; i < r->n_buildings; i++)
        s_check_row (b, period, r->buildings[i]);
    assert_true (r->n_items >= 2);
    for (size_t i = 0; i < r->n_items; i++)
        s_check_row (b, period, r->items[i]);
    /* the parts add up to the whole, to the fen */
    int64_t sum = 0;
    for (size_t i = 0; i < r->n_buildings; i++)
        sum += r->buildings[i]->collected_fen;
    assert_int_equal (sum, r->estate->collected_fen);
    sum = 0;
    for (size_t i = 0; i < r->n_items; i++)
        sum += r->items[i]->billed_fen;
    assert_int_equal (sum, r->estate->billed_fen);
    assert_int_equal (r->target_bp, 9000);
}

/* --- a month of an estate ----------------------------------------------------------------- */

static uint32_t s_rng = 12345;

static uint32_t
s_rand (void)
{
    s_rng = s_rng * 1103515245u + 12345u;
    return (s_rng >> 8) & 0xffffff;
}

static void
s_unit (int i, char *buf, size_t size)
{
    snprintf (buf, size, "E01/%d-%d", i % 4 + 1, 101 + i);
}

/* Check-ins, payments of every kind (none, part, all, more than all), keys, a
 * monthly run that takes the credit, more payments. */
static void
s_month (bt_t *t)
{
    bt_schedule (t, "E01", "2026-01-01", 1);
    char unit[32], ref[32];
    for (int i = 0; i < S_UNITS; i++) {
        s_unit (i, unit, sizeof unit);
        bt_check_in (t, unit, 6000 + (int64_t) (s_rand () % 9000), i % 3 == 0 ? 1 : 0, "");
    }
    for (int i = 0; i < S_UNITS; i++) {
        s_unit (i, unit, sizeof unit);
        Pm__V1__BillingUnitGetReply *u = bt_unit (t, unit);
        int64_t open = u->open_fen;
        snprintf (ref, sizeof ref, "M-%d", i);
        switch (s_rand () % 5) {
        case 0:
            break;
        case 1:
            bt_pay_ok (t, NULL, unit, 1 + (int64_t) (s_rand () % (uint32_t) open), "counter_card", ref);
            break;
        case 2:
        case 3:
            bt_pay_ok (t, NULL, unit, open, "bank_withholding", ref);
            break;
        default:
            assert_int_equal (bt_pay (t, NULL, unit, open + 1 + (int64_t) (s_rand () % 50000), "online", ref, true)->status,
                              PM__V1__STATUS__OK);
            break;
        }
        if (i % 5 != 4)
            bt_keys (t, unit, 0, 0);
    }
    pmt_clock_set (t->d, "2026-12-28T01:00:00Z");
    assert_int_equal (bt_run (t, "E01", "2027-01")->status, PM__V1__STATUS__OK);
    for (int i = 0; i < S_UNITS; i += 2) {
        s_unit (i, unit, sizeof unit);
        int64_t open = bt_unit (t, unit)->open_fen;
        snprintf (ref, sizeof ref, "J-%d", i);
        if (open > 0)
            bt_pay_ok (t, NULL, unit, s_rand () % 2 ? open : (open + 1) / 2, "online", ref);
    }
}

static void
test_collection_rate_matches_the_events (void **state)
{
    bt_t *t = *state;
    s_month (t);
    s_books_t b;
    s_books (t, &b);
    assert_true (b.ninv > S_UNITS);
    s_check_report (t, &b, "2026-12");
    s_check_report (t, &b, "2027-01");
    s_check_report (t, &b, "");
    /* money in = money applied + credit still held */
    int64_t applied = 0, credit_applied = 0, credit_held = 0;
    for (int i = 0; i < b.ninv; i++) {
        applied += b.inv[i]->paid_fen;
        credit_applied += b.inv[i]->credit_applied_fen;
    }
    char unit[32];
    for (int i = 0; i < S_UNITS; i++) {
        s_unit (i, unit, sizeof unit);
        credit_held += bt_unit (t, unit)->credit_fen;
    }
    assert_true (credit_applied > 0); /* the run took some credit */
    assert_int_equal (b.paid_in, applied + b.kept_as_credit);
    assert_int_equal (b.kept_as_credit, credit_applied + credit_held);
    /* the gauge over every period */
    Pm__V1__BillingReportCollectionReply *all = s_report (t, "");
    int64_t billed = all->estate->billed_fen, collected = all->estate->collected_fen; /* the reply ends at the next call */
    double rate = pmt_metric (t->d, "billing_collection_rate", "estate=\"E01\"");
    assert_true (rate > 0.0 && rate < 1.0);
    assert_true (rate * (double) billed > (double) collected - 0.5);
    assert_true (rate * (double) billed < (double) collected + 0.5);
    assert_int_equal (pmt_metric (t->d, "billing_billed_fen", "estate=\"E01\""), billed);
    assert_int_equal (pmt_metric (t->d, "billing_collected_fen", "estate=\"E01\""), collected);
    s_books_free (&b);

    Pm__V1__BillingReportCollectionRequest q = PM__V1__BILLING_REPORT_COLLECTION_REQUEST__INIT;
    q.estate_id = "E01";
    q.period = "2025-01";
    pmt_call_expect (t->d, "read", "billing.report.collection", &q.base, PM__V1__STATUS__NOT_FOUND);
    q.period = "2025-1x";
    pmt_call_expect (t->d, "read", "billing.report.collection", &q.base, PM__V1__STATUS__INVALID);
}

static void
s_check_aging (bt_t *t)
{
    s_books_t b;
    s_books (t, &b);
    int64_t now = bt_now (t), want[4] = { 0 };
    uint32_t count[4] = { 0 };
    for (int i = 0; i < b.ninv; i++) {
        const Pm__V1__Invoice *inv = b.inv[i];
        if (inv->open_fen == 0)
            continue;
        int k = inv->due_ms > now ? 0 : (now - inv->due_ms) / BT_DAY <= 30 ? 1 : (now - inv->due_ms) / BT_DAY <= 90 ? 2 : 3;
        want[k] += inv->open_fen;
        count[k]++;
    }
    assert_true (want[1] + want[2] + want[3] > 0); /* something is overdue at every look */
    Pm__V1__BillingReportAgingRequest q = PM__V1__BILLING_REPORT_AGING_REQUEST__INIT;
    q.estate_id = "E01";
    Pm__V1__BillingReportAgingReply *r =
        pmt_call_expect (t->d, "read", "billing.report.aging", &q.base, PM__V1__STATUS__OK)->billing_report_aging;
    assert_int_equal (r->n_buckets, 4);
    int64_t open = 0;
    char names[4][16];
    for (int k = 0; k < 4; k++) {
        assert_int_equal (r->buckets[k]->open_fen, want[k]);
        assert_int_equal (r->buckets[k]->invoices, count[k]);
        snprintf (names[k], sizeof names[k], "%s", r->buckets[k]->bucket);
        open += want[k];
    }
    assert_int_equal (r->open_fen, open);
    for (int k = 0; k < 4; k++) { /* (the reply ends at the next call) */
        char labels[64];
        snprintf (labels, sizeof labels, "estate=\"E01\",bucket=\"%s\"", names[k]);
        assert_int_equal (pmt_metric (t->d, "billing_arrears_fen", labels), want[k]);
    }
    assert_int_equal (pmt_metric (t->d, "billing_open_fen", "estate=\"E01\""), open);
    s_books_free (&b);
}

static void
test_arrears_aging_matches_the_events (void **state)
{
    bt_t *t = *state;
    s_month (t);
    s_check_aging (t); /* December: the move-in invoices are overdue (due 12-16), January's not yet due */
    pmt_clock_set (t->d, "2027-02-20T01:00:00Z");
    while (pm_daemon_fire_timers (t->d) > 0)
        ;
    s_check_aging (t);
    pmt_clock_set (t->d, "2027-05-01T01:00:00Z");
    while (pm_daemon_fire_timers (t->d) > 0)
        ;
    s_check_aging (t);
}

static void
test_unit_statement (void **state)
{
    bt_t *t = *state;
    bt_schedule_plain (t, "E01", "2026-01-01", "2.00", 1);
    bt_check_in (t, "E01/1-101", 10000, 0, ""); /* 200.00 */
    bt_keys (t, "E01/1-101", 10000, 0);
    pmt_clock_set (t->d, "2026-12-02T02:00:00Z");
    bt_pay_ok (t, NULL, "E01/1-101", 5000, "counter_cash", "C-1");
    assert_int_equal (bt_pay (t, NULL, "E01/1-101", 25000, "online", "W-1", true)->status, PM__V1__STATUS__OK);
    pmt_clock_set (t->d, "2026-12-20T02:00:00Z");
    bt_run (t, "E01", "2027-01"); /* 200.00, 100.00 of it from credit */
    Pm__V1__BillingUnitStatementRequest q = PM__V1__BILLING_UNIT_STATEMENT_REQUEST__INIT;
    q.unit_id = "E01/1-101";
    Pm__V1__Reply *rep = pmt_call_expect (t->d, "read", "billing.unit.statement", &q.base, PM__V1__STATUS__OK);
    Pm__V1__BillingUnitStatementReply *s = rep->billing_unit_statement;
    assert_int_equal (s->n_entries, 4);
    assert_string_equal (s->entries[0]->kind, "invoice");
    assert_int_equal (s->entries[0]->debit_fen, 20000);
    assert_int_equal (s->entries[0]->balance_fen, 20000);
    assert_string_equal (s->entries[1]->kind, "payment");
    assert_int_equal (s->entries[1]->balance_fen, 15000);
    assert_int_equal (s->entries[2]->balance_fen, -10000); /* 100.00 in credit */
    assert_string_equal (s->entries[3]->ref, "INV-E01-000002");
    assert_non_null (strstr (s->entries[3]->text, "credit applied ¥100.00"));
    assert_int_equal (s->entries[3]->balance_fen, 10000);
    assert_int_equal (s->billed_fen, 40000);
    assert_int_equal (s->paid_fen, 30000);
    assert_int_equal (s->open_fen, 10000);
    assert_int_equal (s->credit_fen, 0);
    assert_int_equal (s->balance_fen, 10000);
    assert_int_equal (s->balance_fen, s->entries[s->n_entries - 1]->balance_fen);
    assert_non_null (strstr (rep->message, "balance ¥100.00"));
    /* billing.unit.get says the same, beside the area */
    Pm__V1__BillingUnitGetReply *u = bt_unit (t, "E01/1-101");
    assert_int_equal (u->balance_fen, 10000);
    assert_int_equal (u->n_payments, 2);
    assert_int_equal (u->n_invoices, 2);
    assert_int_equal (u->area_cm2, 10000);
    q.unit_id = "E01/9-999";
    pmt_call_expect (t->d, "read", "billing.unit.statement", &q.base, PM__V1__STATUS__NOT_FOUND);
}

static void
test_snapshot_restates_invoices_and_payments (void **state)
{
    bt_t *t = *state;
    s_month (t);
    s_books_t b;
    s_books (t, &b);
    int invoices = 0, settled = 0, payments = 0, pages = 0;
    Pm__V1__EventsSnapshotRequest q = PM__V1__EVENTS_SNAPSHOT_REQUEST__INIT;
    q.max = 7;
    char token[128] = "";
    uint8_t after[600];
    size_t alen = 0;
    for (;;) {
        q.token = token;
        q.after.data = after;
        q.after.len = alen;
        Pm__V1__Reply *r = pmt_call_expect (t->d, "snap", "events.snapshot", &q.base, PM__V1__STATUS__OK);
        Pm__V1__EventsSnapshotReply *s = r->events_snapshot;
        pages++;
        for (size_t i = 0; i < s->n_events; i++) {
            const Pm__V1__Event *ev = s->events[i];
            assert_true (ev->snapshot);
            if (ev->payload_case == PM__V1__EVENT__PAYLOAD_INVOICE) {
                invoices++;
                bool is_settled = ev->invoice->state == PM__V1__INVOICE_STATE__SETTLED;
                settled += is_settled;
                assert_string_equal (ev->type, is_settled ? "billing.invoice.settled" : "billing.invoice.issued");
                for (int k = 0; k < b.ninv; k++)
                    if (strcmp (b.inv[k]->invoice_id, ev->invoice->invoice_id) == 0)
                        assert_int_equal (b.inv[k]->open_fen, ev->invoice->open_fen);
            }
            else if (ev->payload_case == PM__V1__EVENT__PAYLOAD_PAYMENT) {
                assert_string_equal (ev->type, "billing.payment.recorded");
                payments++;
            }
        }
        if (s->done)
            break;
        snprintf (token, sizeof token, "%s", s->token);
        assert_true (s->after.len <= sizeof after);
        memcpy (after, s->after.data, s->after.len);
        alen = s->after.len;
    }
    assert_int_equal (invoices, b.ninv);
    assert_int_equal (payments, b.npay);
    int want_settled = 0;
    for (int k = 0; k < b.ninv; k++)
        want_settled += b.inv[k]->state == PM__V1__INVOICE_STATE__SETTLED;
    assert_int_equal (settled, want_settled);
    assert_true (pages > 2);
    s_books_free (&b);
}

int
main (void)
{
    pm_log_init ("test_reports", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_collection_rate_matches_the_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_arrears_aging_matches_the_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unit_statement, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_restates_invoices_and_payments, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
