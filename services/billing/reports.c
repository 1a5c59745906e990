/* reports.c - 收缴率 (collection rate), arrears aging and the gauges. Every
 * figure is a read of the rows ledger.c keeps in the write path: a report
 * never scans invoices or payments.
 *
 *   收缴率 of a period = collected / billed of the invoices of that period,
 *   per estate, building and fee item, exact in fen; the rate in basis points
 *   rounded half-up (9345 = 93.45%); the industry's target is 90%.
 *   Aging: the open amounts by days past their due date: not yet due, 0-30,
 *   31-90, 90+ (an instalment counts by its own due date). */
#include "billing.h"
#include "pm/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TARGET_BP 9000

uint32_t
billing_rate_bp (int64_t collected, int64_t billed)
{
    if (billed <= 0 || collected <= 0)
        return 0;
    return (uint32_t) billing_round_half_up ((__int128) collected * 10000, billed);
}

static char *
s_rate_text (pm_ctx_t *ctx, uint32_t bp, int64_t billed)
{
    if (billed <= 0)
        return "-";
    return pm_arena_printf (ctx->arena, "%u.%02u%%", bp / 100, bp % 100);
}

typedef struct {
    Pm__V1__BillingCollectionRow **rows;
    size_t n, cap;
} s_rows_t;

static Pm__V1__BillingCollectionRow *
s_find (pm_ctx_t *ctx, s_rows_t *r, const char *dim, const char *value)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp (r->rows[i]->value, value) == 0)
            return r->rows[i];
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        Pm__V1__BillingCollectionRow **g = pm_arena_alloc (ctx->arena, r->cap * sizeof *g);
        if (r->n)
            memcpy (g, r->rows, r->n * sizeof *g);
        r->rows = g;
    }
    Pm__V1__BillingCollectionRow *x = pm_arena_alloc (ctx->arena, sizeof *x);
    pm__v1__billing_collection_row__init (x);
    x->dimension = (char *) dim;
    x->value = pm_arena_strdup (ctx->arena, value);
    r->rows[r->n++] = x;
    return x;
}

static int
s_row_cmp (const void *a, const void *b)
{
    const Pm__V1__BillingCollectionRow *x = *(Pm__V1__BillingCollectionRow *const *) a;
    const Pm__V1__BillingCollectionRow *y = *(Pm__V1__BillingCollectionRow *const *) b;
    return strcmp (x->value, y->value);
}

static void
s_finish (pm_ctx_t *ctx, Pm__V1__BillingCollectionRow *x)
{
    x->rate_bp = billing_rate_bp (x->collected_fen, x->billed_fen);
    x->rate = s_rate_text (ctx, x->rate_bp, x->billed_fen);
}

int
billing_on_report_collection (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingReportCollectionRequest *q = req->billing_report_collection;
    if (!*q->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    int y, m;
    char period[16] = "";
    if (*q->period) {
        if (!billing_period_parse (q->period, &y, &m))
            return pm_reply (out, PM__V1__STATUS__INVALID, "period: '%s' is not a month; expected YYYY-MM, or empty for "
                                                           "every period", q->period);
        snprintf (period, sizeof period, "%04d-%02d", y, m);
    }
    s_rows_t est = { 0 }, bld = { 0 }, itm = { 0 };
    pm_key_t k;
    pm_scan_t s;
    if (*period)
        pm_key (&k, "ss", q->estate_id, period);
    else
        pm_key (&k, "s", q->estate_id);
    for (pm_scan_prefix (&s, txn, BILLING_COLLECTION, &k); s.ok; pm_scan_next (&s)) {
        const char *dim, *value;
        Pm__Billing__Counter *c;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "ssss", NULL, NULL, &dim, &value) != PM_OK
            || pm_scan_msg (&s, &pm__billing__counter__descriptor, &c) != PM_OK)
            continue;
        s_rows_t *r = strcmp (dim, "estate") == 0 ? &est : strcmp (dim, "building") == 0 ? &bld : &itm;
        Pm__V1__BillingCollectionRow *x =
            s_find (ctx, r, r == &est ? "estate" : r == &bld ? "building" : "item", value);
        x->billed_fen += c->billed_fen;
        x->collected_fen += c->collected_fen;
        x->invoices += c->invoices;
        x->settled += c->settled;
    }
    pm_scan_end (&s);
    if (est.n == 0)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "no invoices of %s%s%s yet", q->estate_id,
                         *period ? " for " : "", period);
    Pm__V1__BillingReportCollectionReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_report_collection_reply__init (r);
    r->estate_id = q->estate_id;
    r->period = pm_arena_strdup (ctx->arena, period);
    r->estate = est.rows[0];
    s_finish (ctx, r->estate);
    qsort (bld.rows, bld.n, sizeof *bld.rows, s_row_cmp);
    qsort (itm.rows, itm.n, sizeof *itm.rows, s_row_cmp);
    for (size_t i = 0; i < bld.n; i++)
        s_finish (ctx, bld.rows[i]);
    for (size_t i = 0; i < itm.n; i++)
        s_finish (ctx, itm.rows[i]);
    r->buildings = bld.rows;
    r->n_buildings = bld.n;
    r->items = itm.rows;
    r->n_items = itm.n;
    r->target_bp = S_TARGET_BP;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "收缴率 %s %s: %s (collected %s of %s billed; target 90.00%%%s)",
                     q->estate_id, *period ? period : "all periods", r->estate->rate,
                     billing_yuan (ctx->arena, r->estate->collected_fen), billing_yuan (ctx->arena, r->estate->billed_fen),
                     r->estate->rate_bp >= S_TARGET_BP ? ", met" : ", not met");
}

/* The bucket of an open amount due at due_ms: 0 not due, 1 0-30, 2 31-90, 3 90+. */
static int
s_bucket (int64_t now, int64_t due)
{
    if (due > now)
        return 0;
    int64_t days = (now - due) / BILLING_DAY_MS;
    return days <= 30 ? 1 : days <= 90 ? 2 : 3;
}

static const char *const s_buckets[4] = { "not_due", "0-30", "31-90", "90+" };

int
billing_on_report_aging (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingReportAgingRequest *q = req->billing_report_aging;
    if (!*q->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    Pm__V1__BillingReportAgingReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_report_aging_reply__init (r);
    r->estate_id = q->estate_id;
    r->as_of_ms = ctx->now_ms;
    r->buckets = pm_arena_alloc (ctx->arena, 4 * sizeof *r->buckets);
    for (int i = 0; i < 4; i++) {
        Pm__V1__BillingAgingBucket *bk = pm_arena_alloc (ctx->arena, sizeof *bk);
        pm__v1__billing_aging_bucket__init (bk);
        bk->bucket = (char *) s_buckets[i];
        r->buckets[r->n_buckets++] = bk;
    }
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, BILLING_ARREARS, pm_key (&k, "s", q->estate_id)); s.ok; pm_scan_next (&s)) {
        int64_t due;
        Pm__Billing__Arrears *a;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "st", NULL, &due) != PM_OK
            || pm_scan_msg (&s, &pm__billing__arrears__descriptor, &a) != PM_OK)
            continue;
        int i = s_bucket (ctx->now_ms, due);
        r->buckets[i]->open_fen += a->open_fen;
        r->buckets[i]->invoices += a->invoices;
        r->open_fen += a->open_fen;
        if (i > 0)
            r->overdue_fen += a->open_fen;
    }
    pm_scan_end (&s);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s open, %s overdue (0-30: %s, 31-90: %s, 90+: %s)", q->estate_id,
                     billing_yuan (ctx->arena, r->open_fen), billing_yuan (ctx->arena, r->overdue_fen),
                     billing_yuan (ctx->arena, r->buckets[1]->open_fen), billing_yuan (ctx->arena, r->buckets[2]->open_fen),
                     billing_yuan (ctx->arena, r->buckets[3]->open_fen));
}

/* --- gauges ----------------------------------------------------------------------------------- */

/* An estate's 收缴率 over every period, and its open amounts by age. */
static void
s_estate_gauges (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, int64_t billed, int64_t collected)
{
    pm_metrics_t *m = ctx->metrics;
    char *labels = pm_arena_printf (ctx->arena, "estate=\"%s\"", estate);
    pm_gauge (m, "billing_billed_fen", labels, "Billed, in fen, over every period", (double) billed);
    pm_gauge (m, "billing_collected_fen", labels, "Collected (paid + credit applied), in fen", (double) collected);
    pm_gauge (m, "billing_collection_rate", labels, "收缴率: collected / billed, over every period",
              billed > 0 ? (double) collected / (double) billed : 0.0);
    int64_t sums[4] = { 0 }, open = 0;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, BILLING_ARREARS, pm_key (&k, "s", estate)); s.ok; pm_scan_next (&s)) {
        int64_t due;
        Pm__Billing__Arrears *a;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "st", NULL, &due) == PM_OK
            && pm_scan_msg (&s, &pm__billing__arrears__descriptor, &a) == PM_OK)
            sums[s_bucket (ctx->now_ms, due)] += a->open_fen;
    }
    pm_scan_end (&s);
    for (int i = 0; i < 4; i++) {
        pm_gauge (m, "billing_arrears_fen",
                  pm_arena_printf (ctx->arena, "estate=\"%s\",bucket=\"%s\"", estate, s_buckets[i]),
                  "Open amounts by days past due, in fen", (double) sums[i]);
        open += sums[i];
    }
    pm_gauge (m, "billing_open_fen", labels, "Open on invoices, in fen", (double) open);
}

void
billing_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_metrics_t *m = ctx->metrics;
    pm_gauge (m, "billing_units", NULL, "Units in billing's projection of areas", (double) pm_txn_count (txn, BILLING_UNITS));
    pm_gauge (m, "billing_invoices", NULL, "Invoices issued", (double) pm_txn_count (txn, BILLING_INVOICES));
    pm_gauge (m, "billing_payments", NULL, "Payments recorded", (double) pm_txn_count (txn, BILLING_PAYMENTS));
    pm_gauge (m, "billing_unmatched_lines", NULL, "Reconciliation lines waiting for a person",
              (double) pm_txn_count (txn, BILLING_UNMATCHED));
    pm_gauge (m, "billing_waiting_check_ins", NULL, "Check-ins whose move-in invoice waits for a fee schedule",
              (double) pm_txn_count (txn, BILLING_WAITING));
    static const struct {
        int table;
        const char *labels;
    } tasks[] = { { BILLING_CALLS, "queue=\"calls\"" },
                  { BILLING_VISITS, "queue=\"visits\"" },
                  { BILLING_LETTERS, "queue=\"letters\"" },
                  { BILLING_ESCALATIONS, "queue=\"escalations\"" } };
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        pm_gauge (m, "billing_dunning_tasks", tasks[i].labels, "Dunning tasks waiting for a person",
                  (double) pm_txn_count (txn, tasks[i].table));

    /* per estate (every estate with invoices), over every period */
    pm_scan_t s;
    char estate[64] = "";
    int64_t billed = 0, collected = 0;
    bool any = false;
    for (bool more = pm_scan_prefix (&s, txn, BILLING_COLLECTION, NULL);; more = pm_scan_next (&s)) {
        const char *e = NULL, *dim = NULL;
        if (more && pm_key_parse (s.key.mv_data, s.key.mv_size, "ssss", &e, NULL, &dim, NULL) != PM_OK)
            continue;
        if (any && (!more || strcmp (e, estate) != 0)) {
            s_estate_gauges (ctx, txn, estate, billed, collected);
            billed = collected = 0;
            any = false;
        }
        if (!more)
            break;
        if (strcmp (dim, "estate") != 0)
            continue;
        Pm__Billing__Counter *c;
        if (pm_scan_msg (&s, &pm__billing__counter__descriptor, &c) != PM_OK)
            continue;
        snprintf (estate, sizeof estate, "%s", e);
        billed += c->billed_fen;
        collected += c->collected_fen;
        any = true;
    }
    pm_scan_end (&s);
}
