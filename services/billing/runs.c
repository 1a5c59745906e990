/* runs.c - the monthly run: billing.run {estate_id, period} bills 物业费 and
 * 停车费 of one month to every unit of the estate whose keys were handed.
 *
 * Idempotent per unit and period (unit_periods): a second run of the same
 * period issues nothing for a unit billed before, and bills only the units
 * whose keys were handed since. A unit whose period is covered by the
 * months prepaid with its move-in invoice is skipped; the month the keys
 * were handed in is prorated by days.
 *
 * A run is done in steps of [billing] run_chunk units, one durable timer
 * (billing.run, keyed ESTATE/PERIOD, due at once) per step, so a run of
 * 100,000 units is many short transactions the loop interleaves with
 * payments and reads, and a restart resumes it where it stopped (the cursor
 * is the last unit done). billing.run answers after its first step;
 * billing.run.get follows it. */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <string.h>

static uint32_t
s_units (pm_txn_t *txn, const char *estate)
{
    pm_key_t k;
    MDB_val v;
    if (pm_txn_get_key (txn, BILLING_NUMBERS, pm_key (&k, "ss", "BILLABLE", estate), &v) != PM_OK || v.mv_size != 8)
        return 0;
    return (uint32_t) pm_be_u64 (v.mv_data);
}

static int
s_run_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *period, Pm__Billing__Run **run)
{
    pm_key_t k;
    return pm_txn_get_msg (txn, BILLING_RUNS, pm_key (&k, "ss", estate, period), &pm__billing__run__descriptor, run);
}

static void
s_run_save (pm_txn_t *txn, const Pm__Billing__Run *run)
{
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_RUNS, pm_key (&k, "ss", run->estate_id, run->period), &run->base);
}

/* Bills one unit for the period. */
static void
s_bill (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__Billing__Run *run, const char *unit_id, int pi,
        const Pm__V1__FeeSchedule *sched)
{
    const billing_t *b = ctx->app;
    Pm__V1__BillingRunReply *p = run->pass;
    pm_key_t k;
    pm_key (&k, "ss", unit_id, run->period);
    if (pm_txn_has (txn, BILLING_UNIT_PERIODS, &k)) {
        p->already++;
        return;
    }
    Pm__Billing__Account *acct = billing_account (ctx, txn, unit_id, NULL);
    Pm__Billing__UnitRecord *u = billing_unit (ctx, txn, unit_id);
    int ky, km, kd;
    billing_local_date (b, acct->keys_handed_ms, &ky, &km, &kd);
    if (!u || !acct->keys_handed_ms || billing_month_index (ky, km) > pi) {
        p->not_yet++;
        return;
    }
    int fy, fm, ty, tm;
    if (*acct->prepaid_from && billing_period_parse (acct->prepaid_from, &fy, &fm)
        && billing_period_parse (acct->prepaid_to, &ty, &tm) && billing_month_index (fy, fm) <= pi
        && pi <= billing_month_index (ty, tm)) {
        p->prepaid++;
        return;
    }
    if (!sched) {
        p->no_schedule++;
        return;
    }
    Pm__V1__InvoiceLine **lines;
    bool *deposit;
    size_t n = billing_monthly_lines (ctx, sched, u, pi, acct->keys_handed_ms, &lines, &deposit);
    if (n == 0 || n == (size_t) -1) {
        p->prepaid++; /* nothing to bill (rates of zero) */
        return;
    }
    int64_t credit = acct->credit_fen;
    billing_new_invoice_t in = {
        .unit_id = unit_id,
        .estate_id = run->estate_id,
        .building = u->building,
        .kind = "monthly",
        .period = run->period,
        .collection_period = run->period,
        .lines = lines,
        .deposit = deposit,
        .nlines = n,
        .due_ms = billing_local_ms (b, pi / 12, pi % 12 + 1, b->monthly_due_day),
    };
    Pm__Billing__InvoiceRecord *rec;
    if (billing_issue (ctx, txn, out, &in, acct, &rec) != PM__V1__STATUS__OK) {
        p->no_schedule++;
        return;
    }
    if (acct->credit_fen != credit)
        billing_account_save (txn, acct);
    pm_txn_put_key (txn, BILLING_UNIT_PERIODS, &k, rec->invoice->invoice_id, strlen (rec->invoice->invoice_id));
    p->issued++;
    p->issued_total++;
    p->billed_fen += rec->invoice->total_fen;
}

/* One step of a run: up to run_chunk units after the cursor. */
static void
s_step (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__Billing__Run *run)
{
    const billing_t *b = ctx->app;
    Pm__V1__BillingRunReply *p = run->pass;
    int y, m;
    billing_period_parse (run->period, &y, &m);
    int pi = billing_month_index (y, m);
    Pm__V1__FeeSchedule *sched = NULL;
    billing_schedule_at (ctx, txn, run->estate_id, billing_local_ms (b, y, m, 1), &sched);
    pm_key_t after, prefix;
    pm_key (&prefix, "s", run->estate_id);
    if (*run->cursor)
        pm_key (&after, "ss", run->estate_id, run->cursor);
    else
        after = prefix;
    /* the units first (the scan's cursor must not see the writes of billing) */
    char **units = pm_arena_alloc (ctx->arena, (size_t) b->run_chunk * sizeof *units);
    int n = 0;
    bool more = false;
    pm_scan_t s;
    for (pm_scan_after (&s, txn, BILLING_BILLABLE, after.buf, after.len); s.ok; pm_scan_next (&s)) {
        if (s.key.mv_size < prefix.len || memcmp (s.key.mv_data, prefix.buf, prefix.len) != 0)
            break;
        if (n == b->run_chunk) {
            more = true;
            break;
        }
        const char *unit_id;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "ss", NULL, &unit_id) == PM_OK)
            units[n++] = pm_arena_strdup (ctx->arena, unit_id);
    }
    pm_scan_end (&s);
    for (int i = 0; i < n; i++) {
        s_bill (ctx, txn, out, run, units[i], pi, sched);
        p->done++;
    }
    if (n)
        run->cursor = units[n - 1];
    if (!more) {
        run->running = false;
        p->state = "done";
        p->finished_ms = ctx->now_ms;
        pm_timer_cancel (txn, BILLING_TIMER_RUN, pm_arena_printf (ctx->arena, "%s/%s", run->estate_id, run->period));
        pm_info ("run %s %s done: %u units, %u issued, %u already billed, %u prepaid, %u not yet handed, %u without "
                 "a schedule", run->estate_id, run->period, p->done, p->issued, p->already, p->prepaid, p->not_yet,
                 p->no_schedule);
    }
    else
        pm_timer_set (txn, BILLING_TIMER_RUN, pm_arena_printf (ctx->arena, "%s/%s", run->estate_id, run->period),
                      ctx->now_ms, NULL, 0);
    s_run_save (txn, run);
}

static int
s_answer (pm_ctx_t *ctx, pm_out_t *out, const Pm__Billing__Run *run)
{
    const Pm__V1__BillingRunReply *p = run->pass;
    pm_reply_body (out, (ProtobufCMessage *) &p->base);
    if (run->running)
        return pm_reply (out, PM__V1__STATUS__OK,
                         "run %s %s running: %u of %u units done, %u issued so far (billing.run.get follows it)",
                         run->estate_id, run->period, p->done, p->units, p->issued);
    return pm_reply (out, PM__V1__STATUS__OK,
                     "run %s %s done: %u invoice(s) issued (%s), %u already billed, %u prepaid, %u not yet handed, %u "
                     "without a schedule; %u invoice(s) for the period in all", run->estate_id, run->period, p->issued,
                     billing_yuan (ctx->arena, p->billed_fen), p->already, p->prepaid, p->not_yet, p->no_schedule,
                     p->issued_total);
}

int
billing_on_run (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const billing_t *b = ctx->app;
    const Pm__V1__BillingRunRequest *q = req->billing_run;
    if (!*q->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    int y, m;
    if (!billing_period_parse (q->period, &y, &m))
        return pm_reply (out, PM__V1__STATUS__INVALID, "period: '%s' is not a month; expected YYYY-MM, e.g. 2026-12",
                         q->period);
    int ty, tm, td;
    billing_local_date (b, ctx->now_ms, &ty, &tm, &td);
    if (billing_month_index (y, m) > billing_month_index (ty, tm) + 1)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "period: %s is more than a month ahead of today (%04d-%02d-%02d); a run bills the current or "
                         "the next month", q->period, ty, tm, td);
    char period[16];
    snprintf (period, sizeof period, "%04d-%02d", y, m);
    Pm__Billing__Run *run = NULL;
    if (s_run_load (ctx, txn, q->estate_id, period, &run) != PM_OK)
        run = NULL;
    else if (run->running)
        return s_answer (ctx, out, run);
    if (s_units (txn, q->estate_id) == 0) {
        pm_key_t k;
        pm_scan_t s;
        bool known = pm_scan_prefix (&s, txn, BILLING_SCHEDULES, pm_key (&k, "s", q->estate_id));
        pm_scan_end (&s);
        if (!known)
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                             "estate_id: billing knows no estate '%s' (no fee schedule, no keys handed)", q->estate_id);
    }
    Pm__V1__BillingRunReply *prev = run && run->pass ? run->pass : NULL;
    Pm__V1__BillingRunReply *p = pm_arena_alloc (ctx->arena, sizeof *p);
    pm__v1__billing_run_reply__init (p);
    p->estate_id = pm_arena_strdup (ctx->arena, q->estate_id);
    p->period = pm_arena_strdup (ctx->arena, period);
    p->state = "running";
    p->units = s_units (txn, q->estate_id);
    p->started_ms = ctx->now_ms;
    p->issued_total = prev ? prev->issued_total : 0;
    p->billed_fen = 0;
    run = pm_arena_alloc (ctx->arena, sizeof *run);
    pm__billing__run__init (run);
    run->estate_id = p->estate_id;
    run->period = p->period;
    run->running = true;
    run->cursor = "";
    run->pass = p;
    s_step (ctx, txn, out, run);
    return s_answer (ctx, out, run);
}

int
billing_on_run_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen, pm_out_t *out)
{
    const char *slash = strrchr (key, '/');
    if (!slash)
        return pm_reply (out, PM__V1__STATUS__INVALID, "run timer '%s': expected ESTATE/PERIOD", key);
    char *estate = pm_arena_printf (ctx->arena, "%.*s", (int) (slash - key), key);
    Pm__Billing__Run *run;
    if (s_run_load (ctx, txn, estate, slash + 1, &run) != PM_OK || !run->running || !run->pass)
        return PM__V1__STATUS__OK;
    s_step (ctx, txn, out, run);
    return PM__V1__STATUS__OK;
}

int
billing_on_run_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingRunGetRequest *q = req->billing_run_get;
    int y, m;
    if (!billing_period_parse (q->period, &y, &m))
        return pm_reply (out, PM__V1__STATUS__INVALID, "period: '%s' is not a month; expected YYYY-MM", q->period);
    char period[16];
    snprintf (period, sizeof period, "%04d-%02d", y, m);
    Pm__Billing__Run *run;
    if (s_run_load (ctx, txn, q->estate_id, period, &run) != PM_OK || !run->pass)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "no run of %s for %s yet (start one with billing.run)",
                         q->estate_id, period);
    return s_answer (ctx, out, run);
}
