/* invoices.c - what an invoice asks for, and issuing it.
 *
 * The move-in invoice (kind "move_in", at check-in), in this line order:
 *   物业费    area x rate (by unit type) x prepaid months, the months starting
 *             with the month of check-in ("2026-12 to 2027-11");
 *   停车费    spaces x rate x prepaid months;
 *   维修基金  area x rate, once;
 *   the schedule's one-off items, then its deposits (paid last, refundable).
 * A monthly invoice (kind "monthly", billing.run) asks for 物业费 and 停车费 of
 * one month; the month the keys were handed in is prorated by days
 * (x 22/31 月 from the 10th of a 31-day month). A line of zero is left out.
 *
 * Each line is rounded half-up to the fen once (money.c); the total is the
 * sum of the lines. Issuing takes the estate's next invoice number, applies
 * the unit's credit, counts the invoice in the collection rows, adds its open
 * amount to the arrears of its due day, arms its dunning ladder and emits
 * billing.invoice.issued (and .settled when the credit paid it all). */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <string.h>

const char *
billing_state_name (int state)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value (&pm__v1__invoice_state__descriptor, state);
    return v ? v->name : "?";
}

/* --- lines ---------------------------------------------------------------------- */

typedef struct {
    pm_ctx_t *ctx;
    Pm__V1__InvoiceLine **lines;
    bool *deposit;
    size_t n;
    bool overflow;
} s_lines_t;

static void
s_line (s_lines_t *l, const char *item, int64_t amount, bool deposit, char *basis)
{
    if (amount < 0) {
        l->overflow = true;
        return;
    }
    if (amount == 0)
        return;
    Pm__V1__InvoiceLine *x = pm_arena_alloc (l->ctx->arena, sizeof *x);
    pm__v1__invoice_line__init (x);
    x->item = (char *) item;
    x->basis = basis;
    x->amount_fen = amount;
    l->deposit[l->n] = deposit;
    l->lines[l->n++] = x;
}

static void
s_lines_init (s_lines_t *l, pm_ctx_t *ctx, size_t max)
{
    l->ctx = ctx;
    l->lines = pm_arena_alloc (ctx->arena, (max + 1) * sizeof *l->lines);
    l->deposit = pm_arena_alloc (ctx->arena, (max + 1) * sizeof *l->deposit);
    l->n = 0;
    l->overflow = false;
}

size_t
billing_move_in_lines (pm_ctx_t *ctx, const Pm__V1__FeeSchedule *s, const Pm__Billing__UnitRecord *u,
                       int64_t at_ms, Pm__V1__InvoiceLine ***lines, bool **deposit, int *prepaid_from,
                       int *prepaid_to)
{
    const billing_t *b = ctx->app;
    s_lines_t l;
    s_lines_init (&l, ctx, 3 + s->n_items);
    char area[32], rate[32], from[16], to[16];
    int y, m, d;
    billing_local_date (b, at_ms, &y, &m, &d);
    int pi = billing_month_index (y, m);
    uint32_t months = s->prepaid_months;
    *prepaid_from = pi;
    *prepaid_to = pi + (int) months - 1;
    billing_period_fmt (*prepaid_from, from, sizeof from);
    billing_period_fmt (*prepaid_to, to, sizeof to);
    int64_t prate = billing_property_rate (s, u->unit_type);
    if (months > 0) {
        s_line (&l, "物业费", billing_line_fen (u->area_cm2, 100, prate, months, 1), false,
                pm_arena_printf (ctx->arena, "%s m2 x %s 元/m2/月 x %u 月 (%s to %s)",
                                 billing_area_fmt (u->area_cm2, area, sizeof area),
                                 billing_yuan_fmt (prate, rate, sizeof rate), months, from, to));
        if (u->parking_spaces > 0)
            s_line (&l, "停车费", billing_line_fen (u->parking_spaces, 1, s->parking_fen, months, 1), false,
                    pm_arena_printf (ctx->arena, "%u 车位 x %s 元/月 x %u 月 (%s to %s)", u->parking_spaces,
                                     billing_yuan_fmt (s->parking_fen, rate, sizeof rate), months, from, to));
    }
    s_line (&l, "维修基金", billing_line_fen (u->area_cm2, 100, s->maintenance_fund_fen, 1, 1), false,
            pm_arena_printf (ctx->arena, "%s m2 x %s 元/m2 (once)", billing_area_fmt (u->area_cm2, area, sizeof area),
                             billing_yuan_fmt (s->maintenance_fund_fen, rate, sizeof rate)));
    for (int pass = 0; pass < 2; pass++) /* one-off items, then deposits */
        for (size_t i = 0; i < s->n_items; i++)
            if (s->items[i]->deposit == (pass == 1))
                s_line (&l, s->items[i]->name, s->items[i]->amount_fen, pass == 1,
                        pass == 1 ? "deposit, refundable" : "once, at move-in");
    *lines = l.lines;
    *deposit = l.deposit;
    return l.overflow ? (size_t) -1 : l.n;
}

size_t
billing_monthly_lines (pm_ctx_t *ctx, const Pm__V1__FeeSchedule *s, const Pm__Billing__UnitRecord *u, int pi,
                       int64_t from_ms, Pm__V1__InvoiceLine ***lines, bool **deposit)
{
    const billing_t *b = ctx->app;
    s_lines_t l;
    s_lines_init (&l, ctx, 2);
    int y = pi / 12, m = pi % 12 + 1, dim = billing_days_in_month (y, m);
    int fy, fm, fd, days = dim;
    billing_local_date (b, from_ms, &fy, &fm, &fd);
    if (billing_month_index (fy, fm) == pi && fd > 1)
        days = dim - fd + 1; /* the month the keys were handed in */
    char area[32], rate[32], share[48] = "1 月";
    if (days != dim)
        snprintf (share, sizeof share, "%d/%d 月 (from %04d-%02d-%02d)", days, dim, fy, fm, fd);
    int64_t prate = billing_property_rate (s, u->unit_type);
    s_line (&l, "物业费", billing_line_fen (u->area_cm2, 100, prate, days, dim), false,
            pm_arena_printf (ctx->arena, "%s m2 x %s 元/m2/月 x %s", billing_area_fmt (u->area_cm2, area, sizeof area),
                             billing_yuan_fmt (prate, rate, sizeof rate), share));
    if (u->parking_spaces > 0)
        s_line (&l, "停车费", billing_line_fen (u->parking_spaces, 1, s->parking_fen, days, dim), false,
                pm_arena_printf (ctx->arena, "%u 车位 x %s 元/月 x %s", u->parking_spaces,
                                 billing_yuan_fmt (s->parking_fen, rate, sizeof rate), share));
    *lines = l.lines;
    *deposit = l.deposit;
    return l.overflow ? (size_t) -1 : l.n;
}

/* --- records --------------------------------------------------------------------- */

int
billing_invoice_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *invoice_id, Pm__Billing__InvoiceRecord **rec)
{
    char estate[64];
    uint64_t no;
    if (!billing_doc_parse (invoice_id, "INV", estate, sizeof estate, &no))
        return PM_EINVAL;
    pm_key_t k;
    return pm_txn_get_msg (txn, BILLING_INVOICES, pm_key (&k, "sU", estate, no), &pm__billing__invoice_record__descriptor,
                           rec);
}

void
billing_invoice_save (pm_txn_t *txn, const Pm__Billing__InvoiceRecord *rec)
{
    char estate[64];
    uint64_t no = 0;
    if (!billing_doc_parse (rec->invoice->invoice_id, "INV", estate, sizeof estate, &no)) {
        pm_txn_fail (txn, PM_EINVAL);
        return;
    }
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_INVOICES, pm_key (&k, "sU", estate, no), &rec->base);
}

int
billing_invoice_emit (pm_out_t *out, pm_txn_t *txn, const Pm__Billing__InvoiceRecord *rec, const char *type)
{
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = (char *) type;
    ev.estate_id = rec->invoice->estate_id;
    ev.unit_id = rec->invoice->unit_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_INVOICE;
    ev.invoice = rec->invoice;
    return pm_emit (out, txn, &ev);
}

/* --- issuing ---------------------------------------------------------------------- */

int
billing_issue (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const billing_new_invoice_t *in,
               Pm__Billing__Account *acct, Pm__Billing__InvoiceRecord **rec_out)
{
    int64_t total = 0;
    for (size_t i = 0; i < in->nlines; i++) {
        total += in->lines[i]->amount_fen;
        if (total < 0 || total > INT64_MAX / 4)
            return pm_reply (out, PM__V1__STATUS__INVALID, "unit %s: the invoice's total overflows", in->unit_id);
    }
    uint64_t no = billing_next_no (txn, "INV", in->estate_id);
    Pm__Billing__InvoiceRecord *rec = pm_arena_alloc (ctx->arena, sizeof *rec);
    pm__billing__invoice_record__init (rec);
    Pm__V1__Invoice *inv = pm_arena_alloc (ctx->arena, sizeof *inv);
    pm__v1__invoice__init (inv);
    rec->invoice = inv;
    inv->invoice_id = billing_doc_id (ctx->arena, "INV", in->estate_id, no);
    inv->unit_id = (char *) in->unit_id;
    inv->estate_id = (char *) in->estate_id;
    inv->kind = (char *) in->kind;
    inv->period = (char *) in->period;
    inv->lines = in->lines;
    inv->n_lines = in->nlines;
    inv->total_fen = total;
    inv->open_fen = total;
    inv->issued_ms = ctx->now_ms;
    inv->due_ms = in->due_ms;
    inv->state = PM__V1__INVOICE_STATE__ISSUED;
    rec->building = (char *) (in->building ? in->building : "");
    rec->period = (char *) in->collection_period;
    rec->lines = pm_arena_alloc (ctx->arena, (in->nlines + 1) * sizeof *rec->lines);
    for (size_t i = 0; i < in->nlines; i++) {
        Pm__Billing__LineState *ls = pm_arena_alloc (ctx->arena, sizeof *ls);
        pm__billing__line_state__init (ls);
        ls->deposit = in->deposit[i];
        rec->lines[rec->n_lines++] = ls;
    }

    /* the books: billed, by estate, building and item; open by due day */
    billing_count (ctx, txn, in->estate_id, rec->period, rec->building, NULL, total, 0, 1, 0);
    for (size_t i = 0; i < in->nlines; i++)
        billing_count (ctx, txn, in->estate_id, rec->period, NULL, in->lines[i]->item, in->lines[i]->amount_fen, 0, 0, 0);
    if (total > 0)
        billing_arrears_add (ctx, txn, in->estate_id, inv->due_ms, total, 1);
    pm_key_t k;
    pm_txn_put_key (txn, BILLING_UNIT_INVOICES, pm_key (&k, "sU", in->unit_id, no), "", 0);

    if (acct && acct->credit_fen > 0 && total > 0) {
        int64_t applied = billing_apply (ctx, txn, rec, acct->credit_fen, true);
        acct->credit_fen -= applied;
    }
    if (total == 0) { /* nothing to pay: settled as issued */
        inv->state = PM__V1__INVOICE_STATE__SETTLED;
        billing_count (ctx, txn, in->estate_id, rec->period, rec->building, NULL, 0, 0, 0, 1);
    }
    if (inv->open_fen > 0)
        billing_ladder_start (ctx, txn, rec);
    billing_invoice_save (txn, rec);
    billing_invoice_emit (out, txn, rec, "billing.invoice.issued");
    if (inv->state == PM__V1__INVOICE_STATE__SETTLED)
        billing_invoice_emit (out, txn, rec, "billing.invoice.settled");
    if (rec_out)
        *rec_out = rec;
    return PM__V1__STATUS__OK;
}
