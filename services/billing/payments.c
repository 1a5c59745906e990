/* payments.c - money in (payments, receipts) and deposits out (refunds).
 *
 * One payment per reference: the same (channel, external_ref) is the same
 * payment whatever the request id, so a cashier's retry, a second import of
 * a bank file or a replayed integration never charges twice. The reference
 * asked again with the same amount and target answers "already recorded"
 * with the first payment; with another amount or target it is a CONFLICT.
 *
 * A payment pays one invoice, or a unit's open invoices oldest first. What
 * exceeds the open amount is refused unless allow_credit is set; then it is
 * kept as the unit's credit and applied to its next invoices. Each payment
 * has a receipt number (RCP-E01-000007, gapless per estate like the payment
 * number it shares). Everything is checked before anything is written: a
 * refused payment leaves no trace. */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/text.h"

#include <stdio.h>
#include <string.h>

static const char *const s_channels[] = { "counter_cash", "counter_card", "bank_withholding", "online", NULL };

bool
billing_channel_valid (const char *channel)
{
    for (int i = 0; s_channels[i]; i++)
        if (strcmp (s_channels[i], channel) == 0)
            return true;
    return false;
}

int
billing_payment_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *payment_id, Pm__V1__Payment **p)
{
    char estate[64];
    uint64_t no;
    if (!billing_doc_parse (payment_id, "PAY", estate, sizeof estate, &no))
        return PM_EINVAL;
    pm_key_t k;
    return pm_txn_get_msg (txn, BILLING_PAYMENTS, pm_key (&k, "sU", estate, no), &pm__v1__payment__descriptor, p);
}

/* The open invoices of a unit, oldest first (arena). */
static Pm__Billing__InvoiceRecord **
s_open_invoices (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, const char *estate, size_t *n, int64_t *open)
{
    size_t cap = 8;
    Pm__Billing__InvoiceRecord **v = pm_arena_alloc (ctx->arena, cap * sizeof *v);
    *n = 0;
    *open = 0;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, BILLING_UNIT_INVOICES, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        uint64_t no;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &no) != PM_OK)
            continue;
        pm_key_t ik;
        Pm__Billing__InvoiceRecord *rec;
        if (pm_txn_get_msg (txn, BILLING_INVOICES, pm_key (&ik, "sU", estate, no), &pm__billing__invoice_record__descriptor,
                            &rec)
                != PM_OK
            || rec->invoice->open_fen <= 0)
            continue;
        if (*n == cap) {
            Pm__Billing__InvoiceRecord **g = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *g);
            memcpy (g, v, *n * sizeof *g);
            v = g;
            cap *= 2;
        }
        v[(*n)++] = rec;
        *open += rec->invoice->open_fen;
    }
    pm_scan_end (&s);
    return v;
}

static const char *
s_target (pm_ctx_t *ctx, const billing_pay_t *p)
{
    return *p->invoice_id ? p->invoice_id : p->unit_id;
}

int
billing_pay (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const billing_pay_t *p, billing_paid_t *res)
{
    memset (res, 0, sizeof *res);
    if (!billing_channel_valid (p->channel))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "channel: '%s'; expected counter_cash, counter_card, bank_withholding or online", p->channel);
    if (!*p->external_ref)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "external_ref: empty; every payment carries its channel's reference (bank serial, POS trace, "
                         "receipt book number), which makes a retry the same payment");
    if (strlen (p->external_ref) > 128 || !pm_utf8_valid_str (p->external_ref))
        return pm_reply (out, PM__V1__STATUS__INVALID, "external_ref: not a reference (UTF-8, up to 128 bytes)");
    if (p->amount_fen <= 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "amount: %lld fen; a payment is greater than 0 (amount_fen, or amount in 元 such as 3240.00)",
                         (long long) p->amount_fen);
    if (p->amount_fen > 100000000000000LL)
        return pm_reply (out, PM__V1__STATUS__INVALID, "amount: %lld fen is more than any payment (10^12 元)",
                         (long long) p->amount_fen);
    if (!*p->invoice_id && !*p->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "invoice_id and unit_id: both empty; pay an invoice (INV-E01-000123) or a unit's open invoices "
                         "(E01/3-1201)");

    /* one payment per (channel, reference) */
    pm_key_t rk;
    MDB_val v;
    pm_key (&rk, "ss", p->channel, p->external_ref);
    if (!p->ref_unused && pm_txn_get_key (txn, BILLING_REFS, &rk, &v) == PM_OK) {
        char *id = pm_arena_alloc (ctx->arena, v.mv_size + 1);
        memcpy (id, v.mv_data, v.mv_size);
        Pm__V1__Payment *old;
        if (billing_payment_load (ctx, txn, id, &old) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__CONFLICT, "external_ref %s on %s is already used by %s", p->external_ref,
                             p->channel, id);
        bool same_target = *p->invoice_id ? strcmp (old->invoice_id, p->invoice_id) == 0
                                          : strcmp (old->unit_id, p->unit_id) == 0;
        if (old->amount_fen != p->amount_fen || !same_target)
            return pm_reply (out, PM__V1__STATUS__CONFLICT,
                             "external_ref %s on %s is already payment %s (%s to %s); this asks %s to %s: one reference "
                             "is one payment (a correction is a new reference)", p->external_ref, p->channel,
                             old->payment_id, billing_yuan (ctx->arena, old->amount_fen),
                             *old->invoice_id ? old->invoice_id : old->unit_id, billing_yuan (ctx->arena, p->amount_fen),
                             s_target (ctx, p));
        res->payment = old;
        res->already = true;
        return pm_reply (out, PM__V1__STATUS__OK, "already recorded as %s (%s, receipt %s): nothing changed",
                         old->payment_id, billing_yuan (ctx->arena, old->amount_fen), old->receipt_no);
    }

    /* what it pays */
    Pm__Billing__InvoiceRecord **invs;
    size_t ninvs;
    int64_t open;
    const char *unit_id, *estate;
    if (*p->invoice_id) {
        Pm__Billing__InvoiceRecord *rec = p->invoice;
        int rc = rec ? PM_OK : billing_invoice_load (ctx, txn, p->invoice_id, &rec);
        if (rc == PM_EINVAL)
            return pm_reply (out, PM__V1__STATUS__INVALID, "invoice_id: '%s' is not an invoice id (INV-E01-000123)",
                             p->invoice_id);
        if (rc != PM_OK)
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "invoice_id: no invoice %s", p->invoice_id);
        Pm__V1__Invoice *inv = rec->invoice;
        if (*p->unit_id && strcmp (p->unit_id, inv->unit_id) != 0)
            return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: %s, but invoice %s is unit %s's", p->unit_id,
                             inv->invoice_id, inv->unit_id);
        if (inv->state == PM__V1__INVOICE_STATE__VOID)
            return pm_reply (out, PM__V1__STATUS__CONFLICT, "invoice %s is VOID: it asks for nothing", inv->invoice_id);
        if (inv->state == PM__V1__INVOICE_STATE__SETTLED && !p->allow_credit)
            return pm_reply (out, PM__V1__STATUS__CONFLICT,
                             "invoice %s is SETTLED (total %s): to keep this %s as unit %s's credit, set allow_credit",
                             inv->invoice_id, billing_yuan (ctx->arena, inv->total_fen),
                             billing_yuan (ctx->arena, p->amount_fen), inv->unit_id);
        invs = pm_arena_alloc (ctx->arena, sizeof *invs);
        invs[0] = rec;
        ninvs = 1;
        open = inv->open_fen;
        unit_id = inv->unit_id;
        estate = inv->estate_id;
    }
    else {
        estate = billing_unit_estate (ctx->arena, p->unit_id);
        pm_key_t k;
        if (!estate || (!pm_txn_has (txn, BILLING_ACCOUNTS, pm_key (&k, "s", p->unit_id))
                        && !pm_txn_has (txn, BILLING_UNITS, &k)))
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "unit_id: billing knows no unit '%s' (expected "
                                                             "estate/building-unit, e.g. E01/3-1201)", p->unit_id);
        invs = s_open_invoices (ctx, txn, p->unit_id, estate, &ninvs, &open);
        unit_id = p->unit_id;
    }
    if (p->amount_fen > open && !p->allow_credit)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "amount: %s is more than the %s open on %s: pay at most that, or set allow_credit to keep %s "
                         "as the unit's credit", billing_yuan (ctx->arena, p->amount_fen), billing_yuan (ctx->arena, open),
                         s_target (ctx, p), billing_yuan (ctx->arena, p->amount_fen - open));

    /* apply it */
    uint64_t no = billing_next_no (txn, "PAY", estate);
    Pm__V1__Payment *pay = pm_arena_alloc (ctx->arena, sizeof *pay);
    pm__v1__payment__init (pay);
    pay->payment_id = billing_doc_id (ctx->arena, "PAY", estate, no);
    pay->receipt_no = billing_doc_id (ctx->arena, "RCP", estate, no);
    pay->invoice_id = (char *) (*p->invoice_id ? p->invoice_id : "");
    pay->unit_id = (char *) unit_id;
    pay->estate_id = (char *) estate;
    pay->amount_fen = p->amount_fen;
    pay->channel = (char *) p->channel;
    pay->external_ref = (char *) p->external_ref;
    pay->paid_at_ms = p->paid_at_ms ? p->paid_at_ms : ctx->now_ms;
    pay->payer = (char *) (p->payer ? p->payer : "");
    pay->allocations = pm_arena_alloc (ctx->arena, (ninvs + 1) * sizeof *pay->allocations);
    res->invoices = pm_arena_alloc (ctx->arena, (ninvs + 1) * sizeof *res->invoices);
    int64_t left = p->amount_fen;
    for (size_t i = 0; i < ninvs && left > 0; i++) {
        Pm__Billing__InvoiceRecord *rec = invs[i];
        int64_t x = billing_apply (ctx, txn, rec, left, false);
        if (x <= 0)
            continue;
        left -= x;
        Pm__V1__PaymentAllocation *al = pm_arena_alloc (ctx->arena, sizeof *al);
        pm__v1__payment_allocation__init (al);
        al->invoice_id = rec->invoice->invoice_id;
        al->amount_fen = x;
        pay->allocations[pay->n_allocations++] = al;
        if (!*pay->invoice_id)
            pay->invoice_id = rec->invoice->invoice_id; /* the first it paid */
        char **ids = pm_arena_alloc (ctx->arena, (rec->n_payments + 1) * sizeof *ids);
        if (rec->n_payments)
            memcpy (ids, rec->payments, rec->n_payments * sizeof *ids);
        ids[rec->n_payments++] = pay->payment_id;
        rec->payments = ids;
        billing_invoice_save (txn, rec);
        billing_invoice_emit (out, txn, rec, rec->invoice->state == PM__V1__INVOICE_STATE__SETTLED
                                                 ? "billing.invoice.settled"
                                                 : "billing.invoice.updated");
        res->invoices[res->ninvoices++] = rec;
    }
    pay->credit_fen = left;
    res->credit_fen = -1;
    if (left > 0) {
        Pm__Billing__Account *acct = billing_account (ctx, txn, unit_id, NULL);
        acct->credit_fen += left;
        billing_account_save (txn, acct);
        res->credit_fen = acct->credit_fen;
    }
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_PAYMENTS, pm_key (&k, "sU", estate, no), &pay->base);
    pm_txn_put_key (txn, BILLING_UNIT_PAYMENTS, pm_key (&k, "sU", unit_id, no), "", 0);
    pm_txn_put_key (txn, BILLING_REFS, &rk, pay->payment_id, strlen (pay->payment_id));
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "billing.payment.recorded";
    ev.estate_id = (char *) estate;
    ev.unit_id = (char *) unit_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_PAYMENT;
    ev.payment = pay;
    pm_emit (out, txn, &ev);
    if (strcmp (p->channel, "bank_withholding") == 0)
        billing_unmatched_settle (txn, p->external_ref);
    res->payment = pay;
    return PM__V1__STATUS__OK;
}

int
billing_on_payment_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const billing_t *b = ctx->app;
    const Pm__V1__BillingPaymentRecordRequest *q = req->billing_payment_record;
    billing_pay_t p = { .invoice_id = q->invoice_id, .unit_id = q->unit_id, .amount_fen = q->amount_fen,
                        .channel = q->channel, .external_ref = q->external_ref, .allow_credit = q->allow_credit,
                        .payer = q->payer };
    if (*q->amount) {
        int64_t fen;
        const char *why;
        if (!billing_yuan_parse (q->amount, false, &fen, &why))
            return pm_reply (out, PM__V1__STATUS__INVALID, "amount: '%s' %s", q->amount, why);
        if (q->amount_fen && q->amount_fen != fen)
            return pm_reply (out, PM__V1__STATUS__INVALID, "amount '%s' and amount_fen %lld disagree: give one",
                             q->amount, (long long) q->amount_fen);
        p.amount_fen = fen;
    }
    if (*q->paid_at && !billing_time_parse (b, q->paid_at, &p.paid_at_ms))
        return pm_reply (out, PM__V1__STATUS__INVALID, "paid_at: '%s' is not a time; expected 2026-12-20 10:15 (estate "
                                                       "time) or RFC 3339", q->paid_at);
    billing_paid_t res;
    int rc = billing_pay (ctx, txn, out, &p, &res);
    if (rc != PM__V1__STATUS__OK)
        return rc;
    Pm__V1__BillingPaymentRecordReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_payment_record_reply__init (r);
    r->payment = res.payment;
    r->already_recorded = res.already;
    /* the invoices as they now stand, without their lines (billing.invoice.get
     * has those): the reply is stored for retries, in every payment's commit */
    r->invoices = pm_arena_alloc (ctx->arena, (res.ninvoices + 1) * sizeof *r->invoices);
    for (size_t i = 0; i < res.ninvoices; i++) {
        Pm__V1__Invoice *lite = pm_arena_alloc (ctx->arena, sizeof *lite);
        *lite = *res.invoices[i]->invoice;
        lite->lines = NULL;
        lite->n_lines = 0;
        r->invoices[r->n_invoices++] = lite;
    }
    if (res.credit_fen < 0) {
        Pm__Billing__Account *acct;
        pm_key_t k;
        r->credit_fen = pm_txn_get_msg (txn, BILLING_ACCOUNTS, pm_key (&k, "s", res.payment->unit_id),
                                        &pm__billing__account__descriptor, &acct)
                                == PM_OK
                            ? acct->credit_fen
                            : 0;
    }
    else
        r->credit_fen = res.credit_fen;
    pm_reply_body (out, &r->base);
    if (res.already)
        return PM__V1__STATUS__OK; /* the message says so */
    /* "PAY-E01-000007: ¥3,240.00 by counter_cash, receipt RCP-E01-000007; INV-E01-000123 SETTLED, ¥0.00 open",
     * put together without printf (it is on the path of every payment) */
    const Pm__V1__Payment *pay = res.payment;
    char msg[512], amount[48];
    size_t n = 0;
#define S_PUT(str) \
    do { \
        const char *s_ = (str); \
        size_t l_ = strlen (s_); \
        if (n + l_ < sizeof msg) { \
            memcpy (msg + n, s_, l_); \
            n += l_; \
        } \
    } while (0)
    S_PUT (pay->payment_id);
    S_PUT (": ¥");
    S_PUT (billing_yuan_fmt (pay->amount_fen, amount, sizeof amount));
    S_PUT (" by ");
    S_PUT (pay->channel);
    S_PUT (", receipt ");
    S_PUT (pay->receipt_no);
    if (res.ninvoices == 1) {
        S_PUT ("; ");
        S_PUT (res.invoices[0]->invoice->invoice_id);
        S_PUT (" ");
        S_PUT (billing_state_name (res.invoices[0]->invoice->state));
        S_PUT (", ¥");
        S_PUT (billing_yuan_fmt (res.invoices[0]->invoice->open_fen, amount, sizeof amount));
        S_PUT (" open");
    }
    else if (res.ninvoices > 1) {
        S_PUT ("; invoices paid: ");
        for (size_t i = 0; i < res.ninvoices; i++) {
            S_PUT (i ? ", " : "");
            S_PUT (res.invoices[i]->invoice->invoice_id);
        }
    }
    if (pay->credit_fen) {
        S_PUT ("; ¥");
        S_PUT (billing_yuan_fmt (pay->credit_fen, amount, sizeof amount));
        S_PUT (" kept as credit (unit's credit now ¥");
        S_PUT (billing_yuan_fmt (r->credit_fen, amount, sizeof amount));
        S_PUT (")");
    }
#undef S_PUT
    msg[n] = '\0';
    return pm_reply (out, PM__V1__STATUS__OK, "%s", msg);
}

/* --- deposits refunded -------------------------------------------------------------- */

int
billing_on_deposit_refund (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingDepositRefundRequest *q = req->billing_deposit_refund;
    Pm__Billing__InvoiceRecord *rec;
    int rc = billing_invoice_load (ctx, txn, q->invoice_id, &rec);
    if (rc == PM_EINVAL || !*q->invoice_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "invoice_id: '%s' is not an invoice id (INV-E01-000123)",
                         q->invoice_id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "invoice_id: no invoice %s", q->invoice_id);
    Pm__V1__Invoice *inv = rec->invoice;
    size_t line = inv->n_lines;
    for (size_t i = 0; i < inv->n_lines && i < rec->n_lines; i++)
        if (strcmp (inv->lines[i]->item, q->item) == 0)
            line = i;
    if (line == inv->n_lines)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "item: invoice %s has no line '%s'", inv->invoice_id, q->item);
    if (!rec->lines[line]->deposit)
        return pm_reply (out, PM__V1__STATUS__INVALID, "item: '%s' on %s is not a deposit: only deposits are refunded",
                         q->item, inv->invoice_id);
    int64_t fen = q->amount_fen;
    const char *why;
    if (*q->amount && !billing_yuan_parse (q->amount, false, &fen, &why))
        return pm_reply (out, PM__V1__STATUS__INVALID, "amount: '%s' %s", q->amount, why);
    if (fen <= 0 || fen > 100000000000000LL)
        return pm_reply (out, PM__V1__STATUS__INVALID, "amount: %lld fen; a refund is greater than 0 (and less than "
                                                       "10^12 元)", (long long) fen);
    if (!billing_channel_valid (q->channel))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "channel: '%s'; expected counter_cash, counter_card, bank_withholding or online", q->channel);
    if (!*q->external_ref)
        return pm_reply (out, PM__V1__STATUS__INVALID, "external_ref: empty; the reference of the money paid back");
    Pm__Billing__Account *acct = billing_account (ctx, txn, inv->unit_id, NULL);
    pm_key_t rk;
    MDB_val v;
    pm_key (&rk, "ss", q->channel, q->external_ref);
    Pm__V1__BillingDepositRefundReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_deposit_refund_reply__init (r);
    if (pm_txn_get_key (txn, BILLING_REFS, &rk, &v) == PM_OK) {
        for (size_t i = 0; i < acct->n_refunds; i++) {
            Pm__V1__BillingRefund *old = acct->refunds[i];
            if (strlen (old->refund_id) == v.mv_size && memcmp (old->refund_id, v.mv_data, v.mv_size) == 0
                && strcmp (old->invoice_id, q->invoice_id) == 0 && strcmp (old->item, q->item) == 0
                && old->amount_fen == fen) {
                r->refund = old;
                r->already_recorded = true;
                r->refundable_fen = rec->lines[line]->paid_fen - rec->lines[line]->refunded_fen;
                pm_reply_body (out, &r->base);
                return pm_reply (out, PM__V1__STATUS__OK, "already recorded as %s: nothing changed", old->refund_id);
            }
        }
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "external_ref %s on %s is already used by %.*s", q->external_ref,
                         q->channel, (int) v.mv_size, (char *) v.mv_data);
    }
    int64_t refundable = rec->lines[line]->paid_fen - rec->lines[line]->refunded_fen;
    if (fen > refundable)
        return pm_reply (out, PM__V1__STATUS__INVALID, "amount: %s, but the %s on %s holds %s paid and not refunded",
                         billing_yuan (ctx->arena, fen), q->item, inv->invoice_id, billing_yuan (ctx->arena, refundable));
    uint64_t no = billing_next_no (txn, "RFD", inv->estate_id);
    Pm__V1__BillingRefund *rf = pm_arena_alloc (ctx->arena, sizeof *rf);
    pm__v1__billing_refund__init (rf);
    rf->refund_id = billing_doc_id (ctx->arena, "RFD", inv->estate_id, no);
    rf->invoice_id = inv->invoice_id;
    rf->item = q->item;
    rf->amount_fen = fen;
    rf->channel = q->channel;
    rf->external_ref = q->external_ref;
    rf->at_ms = ctx->now_ms;
    rf->note = q->note;
    rec->lines[line]->refunded_fen += fen;
    billing_invoice_save (txn, rec);
    Pm__V1__BillingRefund **list = pm_arena_alloc (ctx->arena, (acct->n_refunds + 1) * sizeof *list);
    if (acct->n_refunds)
        memcpy (list, acct->refunds, acct->n_refunds * sizeof *list);
    list[acct->n_refunds++] = rf;
    acct->refunds = list;
    billing_account_save (txn, acct);
    pm_txn_put_key (txn, BILLING_REFS, &rk, rf->refund_id, strlen (rf->refund_id));
    r->refund = rf;
    r->refundable_fen = refundable - fen;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s of the %s on %s refunded by %s; %s still held", rf->refund_id,
                     billing_yuan (ctx->arena, fen), q->item, inv->invoice_id, q->channel,
                     billing_yuan (ctx->arena, r->refundable_fen));
}

/* --- receipts ---------------------------------------------------------------------------- */

int
billing_on_receipt_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const billing_t *b = ctx->app;
    const Pm__V1__BillingReceiptGetRequest *q = req->billing_receipt_get;
    const char *id = q->payment_id;
    char *from_receipt = NULL;
    if (!*id && strncmp (q->receipt_no, "RCP-", 4) == 0)
        id = from_receipt = pm_arena_printf (ctx->arena, "PAY-%s", q->receipt_no + 4);
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "receipt_no or payment_id: give one, e.g. RCP-E01-000007");
    Pm__V1__Payment *p;
    int rc = billing_payment_load (ctx, txn, id, &p);
    if (rc == PM_EINVAL)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: '%s' is not one (RCP-E01-000007 / PAY-E01-000007)",
                         from_receipt ? "receipt_no" : "payment_id", from_receipt ? q->receipt_no : q->payment_id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "no payment %s", id);
    char words[256], amount[48];
    billing_amount_words (p->amount_fen, words, sizeof words);
    billing_yuan_fmt (p->amount_fen, amount, sizeof amount);
    int y, m, d;
    billing_local_date (b, p->paid_at_ms, &y, &m, &d);
    int64_t secs = ((p->paid_at_ms + b->utc_offset_ms) / 1000) % 86400;
    char *text = pm_arena_printf (ctx->arena,
                                  "收据 RECEIPT %s\n"
                                  "单位 unit:      %s\n"
                                  "付款人 payer:   %s\n"
                                  "金额 amount:    ¥%s\n"
                                  "大写:           %s\n"
                                  "渠道 channel:   %s (ref %s)\n"
                                  "时间 paid at:   %04d-%02d-%02d %02lld:%02lld\n"
                                  "付款 payment:   %s\n",
                                  p->receipt_no, p->unit_id, *p->payer ? p->payer : "-", amount, words, p->channel,
                                  p->external_ref, y, m, d, (long long) (secs / 3600), (long long) (secs / 60 % 60),
                                  p->payment_id);
    for (size_t i = 0; i < p->n_allocations; i++)
        text = pm_arena_printf (ctx->arena, "%s  %s  ¥%s\n", text, p->allocations[i]->invoice_id,
                                billing_yuan_fmt (p->allocations[i]->amount_fen, amount, sizeof amount));
    if (p->credit_fen)
        text = pm_arena_printf (ctx->arena, "%s  kept as credit  ¥%s\n", text,
                                billing_yuan_fmt (p->credit_fen, amount, sizeof amount));
    Pm__V1__BillingReceiptGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_receipt_get_reply__init (r);
    r->payment = p;
    r->text = text;
    r->amount_in_words = pm_arena_strdup (ctx->arena, words);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s", text);
}
