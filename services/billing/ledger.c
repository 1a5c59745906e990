/* ledger.c - the books, kept in the write path so that every report is a
 * read of a few rows, never a scan of invoices:
 *
 *   collection  (estate, period, "estate" | "building" | "item", value) ->
 *               billed, collected (paid + credit applied), invoices, settled.
 *               收缴率 of a period = collected / billed of the invoices of that
 *               period (a monthly invoice's period, or the month a move-in
 *               invoice was issued), whenever the money came.
 *   arrears     (estate, due day) -> open amount and how many invoices (or
 *               instalments) it is: aging sums these by days overdue.
 *
 * Money applied to an invoice pays its lines in their order (物业费 first,
 * deposits last): that is what "collected" by item means. An instalment plan
 * takes the money in due order. */
#include "billing.h"
#include "pm/err.h"

#include <string.h>

static void
s_row (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *period, const char *dim, const char *value,
       int64_t billed, int64_t collected, int invoices, int settled)
{
    pm_key_t k;
    Pm__Billing__Counter *c;
    pm_key (&k, "ssss", estate, period, dim, value);
    if (pm_txn_get_msg (txn, BILLING_COLLECTION, &k, &pm__billing__counter__descriptor, &c) != PM_OK) {
        c = pm_arena_alloc (ctx->arena, sizeof *c);
        pm__billing__counter__init (c);
    }
    c->billed_fen += billed;
    c->collected_fen += collected;
    c->invoices += (uint32_t) invoices;
    c->settled += (uint32_t) settled;
    pm_txn_put_msg (txn, BILLING_COLLECTION, &k, &c->base);
}

void
billing_count (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *period, const char *building,
               const char *item, int64_t billed, int64_t collected, int invoices, int settled)
{
    if (item) {
        s_row (ctx, txn, estate, period, "item", item, billed, collected, invoices, settled);
        return;
    }
    s_row (ctx, txn, estate, period, "estate", "", billed, collected, invoices, settled);
    s_row (ctx, txn, estate, period, "building", building ? building : "", billed, collected, invoices, settled);
}

void
billing_arrears_add (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, int64_t due_ms, int64_t open_delta,
                     int count_delta)
{
    pm_key_t k;
    Pm__Billing__Arrears *a;
    pm_key (&k, "st", estate, due_ms);
    if (pm_txn_get_msg (txn, BILLING_ARREARS, &k, &pm__billing__arrears__descriptor, &a) != PM_OK) {
        a = pm_arena_alloc (ctx->arena, sizeof *a);
        pm__billing__arrears__init (a);
    }
    a->open_fen += open_delta;
    a->invoices = (uint32_t) ((int64_t) a->invoices + count_delta);
    if (a->open_fen == 0 && a->invoices == 0)
        pm_txn_del_key (txn, BILLING_ARREARS, &k);
    else
        pm_txn_put_msg (txn, BILLING_ARREARS, &k, &a->base);
}

int64_t
billing_apply (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Billing__InvoiceRecord *rec, int64_t amount, bool credit)
{
    Pm__V1__Invoice *inv = rec->invoice;
    int64_t take = amount < inv->open_fen ? amount : inv->open_fen;
    if (take <= 0)
        return 0;
    /* the lines, in order */
    int64_t left = take;
    for (size_t i = 0; i < inv->n_lines && i < rec->n_lines && left > 0; i++) {
        int64_t room = inv->lines[i]->amount_fen - rec->lines[i]->paid_fen;
        int64_t x = room < left ? room : left;
        if (x <= 0)
            continue;
        rec->lines[i]->paid_fen += x;
        left -= x;
        billing_count (ctx, txn, inv->estate_id, rec->period, NULL, inv->lines[i]->item, 0, x, 0, 0);
    }
    inv->open_fen -= take;
    if (credit)
        inv->credit_applied_fen += take;
    else
        inv->paid_fen += take;
    bool settled = inv->open_fen == 0;
    /* the instalments in due order, or the invoice's own due day */
    if (rec->n_parts) {
        left = take;
        for (size_t i = 0; i < rec->n_parts && left > 0; i++) {
            Pm__Billing__Part *p = rec->parts[i];
            int64_t room = billing_part_open (p);
            int64_t x = room < left ? room : left;
            if (x <= 0)
                continue;
            p->paid_fen += x;
            left -= x;
            bool done = billing_part_open (p) == 0;
            billing_arrears_add (ctx, txn, inv->estate_id, p->due_ms, -x, done ? -1 : 0);
            if (done)
                billing_ladder_stop (ctx, txn, rec, p->no);
        }
    }
    else
        billing_arrears_add (ctx, txn, inv->estate_id, inv->due_ms, -take, settled ? -1 : 0);
    billing_count (ctx, txn, inv->estate_id, rec->period, rec->building, NULL, 0, take, 0, settled ? 1 : 0);
    if (settled) {
        inv->state = PM__V1__INVOICE_STATE__SETTLED;
        billing_ladder_stop (ctx, txn, rec, 0); /* in this transaction: no step fires after it */
    }
    else
        inv->state = PM__V1__INVOICE_STATE__PARTIALLY_PAID;
    return take;
}
