/* reads.c - what billing answers without writing: a unit's part of the case
 * (billing.unit.get, for pmctl unit), its statement (对账单), one invoice,
 * the queues of work waiting on people, and the snapshot that restates
 * billing's state as contract events for a consumer rebuilding from it. */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdlib.h>
#include <string.h>

/* The unit's invoices and payments, in number order (arena). */
static void
s_unit_docs (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, const char *estate, Pm__V1__Invoice ***invs,
             size_t *ninvs, Pm__V1__Payment ***pays, size_t *npays)
{
    pm_key_t k, dk;
    pm_scan_t s;
    size_t cap = 8;
    *invs = pm_arena_alloc (ctx->arena, cap * sizeof **invs);
    *ninvs = 0;
    for (pm_scan_prefix (&s, txn, BILLING_UNIT_INVOICES, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        uint64_t no;
        Pm__Billing__InvoiceRecord *rec;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &no) != PM_OK
            || pm_txn_get_msg (txn, BILLING_INVOICES, pm_key (&dk, "sU", estate, no),
                               &pm__billing__invoice_record__descriptor, &rec)
                   != PM_OK)
            continue;
        if (*ninvs == cap) {
            Pm__V1__Invoice **g = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *g);
            memcpy (g, *invs, *ninvs * sizeof *g);
            *invs = g;
            cap *= 2;
        }
        (*invs)[(*ninvs)++] = rec->invoice;
    }
    pm_scan_end (&s);
    cap = 8;
    *pays = pm_arena_alloc (ctx->arena, cap * sizeof **pays);
    *npays = 0;
    for (pm_scan_prefix (&s, txn, BILLING_UNIT_PAYMENTS, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        uint64_t no;
        Pm__V1__Payment *p;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &no) != PM_OK
            || pm_txn_get_msg (txn, BILLING_PAYMENTS, pm_key (&dk, "sU", estate, no), &pm__v1__payment__descriptor, &p)
                   != PM_OK)
            continue;
        if (*npays == cap) {
            Pm__V1__Payment **g = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *g);
            memcpy (g, *pays, *npays * sizeof *g);
            *pays = g;
            cap *= 2;
        }
        (*pays)[(*npays)++] = p;
    }
    pm_scan_end (&s);
}

int
billing_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->billing_unit_get->unit_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/3-1201");
    Pm__Billing__UnitRecord *rec = billing_unit (ctx, txn, id);
    Pm__Billing__Account *acct;
    pm_key_t k;
    bool has_acct = pm_txn_get_msg (txn, BILLING_ACCOUNTS, pm_key (&k, "s", id), &pm__billing__account__descriptor,
                                    &acct)
                    == PM_OK;
    if (!rec && !has_acct)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: billing knows no unit '%s' (not imported, or intake's event not yet applied)", id);
    Pm__V1__BillingUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_unit_get_reply__init (r);
    r->unit_id = pm_arena_strdup (ctx->arena, id);
    if (rec) {
        r->estate_id = rec->estate_id;
        r->area_cm2 = rec->area_cm2;
        r->from_event = rec->from_event;
        r->building = rec->building;
        r->parking_spaces = rec->parking_spaces;
        r->unit_type = rec->unit_type;
    }
    if (has_acct) {
        if (!rec)
            r->estate_id = acct->estate_id;
        r->credit_fen = acct->credit_fen;
        r->move_in_invoice = acct->move_in_invoice;
        r->checked_in_ms = acct->checked_in_ms;
        r->keys_handed_ms = acct->keys_handed_ms;
        r->prepaid_to = acct->prepaid_to;
        r->refunds = acct->refunds;
        r->n_refunds = acct->n_refunds;
        s_unit_docs (ctx, txn, id, acct->estate_id, &r->invoices, &r->n_invoices, &r->payments, &r->n_payments);
    }
    for (size_t i = 0; i < r->n_invoices; i++)
        r->open_fen += r->invoices[i]->open_fen;
    r->balance_fen = r->open_fen - r->credit_fen;
    pm_reply_body (out, &r->base);
    char area[32];
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s m2; %zu invoice(s), %s open, credit %s, balance %s", id,
                     billing_area_fmt (r->area_cm2, area, sizeof area), r->n_invoices,
                     billing_yuan (ctx->arena, r->open_fen), billing_yuan (ctx->arena, r->credit_fen),
                     billing_yuan (ctx->arena, r->balance_fen));
}

static int
s_entry_cmp (const void *a, const void *b)
{
    const Pm__V1__BillingStatementEntry *x = *(Pm__V1__BillingStatementEntry *const *) a;
    const Pm__V1__BillingStatementEntry *y = *(Pm__V1__BillingStatementEntry *const *) b;
    if (x->at_ms != y->at_ms)
        return x->at_ms < y->at_ms ? -1 : 1;
    int kx = x->kind[0] == 'i' ? 0 : x->kind[0] == 'p' ? 1 : 2, ky = y->kind[0] == 'i' ? 0 : y->kind[0] == 'p' ? 1 : 2;
    if (kx != ky)
        return kx - ky;
    return strcmp (x->ref, y->ref);
}

int
billing_on_unit_statement (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const billing_t *b = ctx->app;
    const char *id = req->billing_unit_statement->unit_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/3-1201");
    Pm__Billing__Account *acct;
    pm_key_t k;
    if (pm_txn_get_msg (txn, BILLING_ACCOUNTS, pm_key (&k, "s", id), &pm__billing__account__descriptor, &acct) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "unit_id: billing has no account for '%s' (no invoice or "
                                                         "payment yet)", id);
    Pm__V1__BillingUnitStatementReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_unit_statement_reply__init (r);
    r->unit_id = acct->unit_id;
    r->estate_id = acct->estate_id;
    r->credit_fen = acct->credit_fen;
    r->refunds = acct->refunds;
    r->n_refunds = acct->n_refunds;
    s_unit_docs (ctx, txn, id, acct->estate_id, &r->invoices, &r->n_invoices, &r->payments, &r->n_payments);
    size_t n = r->n_invoices + r->n_payments + acct->n_refunds;
    r->entries = pm_arena_alloc (ctx->arena, (n + 1) * sizeof *r->entries);
    for (size_t i = 0; i < r->n_invoices; i++) {
        const Pm__V1__Invoice *inv = r->invoices[i];
        Pm__V1__BillingStatementEntry *e = pm_arena_alloc (ctx->arena, sizeof *e);
        pm__v1__billing_statement_entry__init (e);
        e->at_ms = inv->issued_ms;
        e->kind = "invoice";
        e->ref = inv->invoice_id;
        char *items = "";
        for (size_t j = 0; j < inv->n_lines; j++)
            items = pm_arena_printf (ctx->arena, "%s%s%s %s", items, j ? ", " : "", inv->lines[j]->item,
                                     billing_yuan (ctx->arena, inv->lines[j]->amount_fen));
        e->text = pm_arena_printf (ctx->arena, "%s%s%s, due %s: %s%s", inv->kind, *inv->period ? " " : "", inv->period,
                                   billing_date_of (ctx->arena, b, inv->due_ms), items,
                                   inv->credit_applied_fen ? pm_arena_printf (ctx->arena, " (credit applied %s)",
                                                                              billing_yuan (ctx->arena,
                                                                                            inv->credit_applied_fen))
                                                           : "");
        e->debit_fen = inv->total_fen;
        r->entries[r->n_entries++] = e;
        r->billed_fen += inv->total_fen;
        r->open_fen += inv->open_fen;
    }
    for (size_t i = 0; i < r->n_payments; i++) {
        const Pm__V1__Payment *p = r->payments[i];
        Pm__V1__BillingStatementEntry *e = pm_arena_alloc (ctx->arena, sizeof *e);
        pm__v1__billing_statement_entry__init (e);
        e->at_ms = p->paid_at_ms;
        e->kind = "payment";
        e->ref = p->payment_id;
        e->text = pm_arena_printf (ctx->arena, "%s %s, receipt %s%s", p->channel, p->external_ref, p->receipt_no,
                                   p->credit_fen ? pm_arena_printf (ctx->arena, ", %s kept as credit",
                                                                    billing_yuan (ctx->arena, p->credit_fen))
                                                 : "");
        e->credit_fen = p->amount_fen;
        r->entries[r->n_entries++] = e;
        r->paid_fen += p->amount_fen;
    }
    for (size_t i = 0; i < acct->n_refunds; i++) {
        const Pm__V1__BillingRefund *f = acct->refunds[i];
        Pm__V1__BillingStatementEntry *e = pm_arena_alloc (ctx->arena, sizeof *e);
        pm__v1__billing_statement_entry__init (e);
        e->at_ms = f->at_ms;
        e->kind = "refund";
        e->ref = f->refund_id;
        e->text = pm_arena_printf (ctx->arena, "deposit %s of %s paid back by %s (%s): the deposit and its payment "
                                               "cancel out", f->item, f->invoice_id, f->channel,
                                   billing_yuan (ctx->arena, f->amount_fen));
        r->entries[r->n_entries++] = e;
    }
    qsort (r->entries, r->n_entries, sizeof *r->entries, s_entry_cmp);
    int64_t bal = 0;
    for (size_t i = 0; i < r->n_entries; i++) {
        bal += r->entries[i]->debit_fen - r->entries[i]->credit_fen;
        r->entries[i]->balance_fen = bal;
    }
    r->balance_fen = r->open_fen - r->credit_fen;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: billed %s, paid %s, open %s, credit %s, balance %s", id,
                     billing_yuan (ctx->arena, r->billed_fen), billing_yuan (ctx->arena, r->paid_fen),
                     billing_yuan (ctx->arena, r->open_fen), billing_yuan (ctx->arena, r->credit_fen),
                     billing_yuan (ctx->arena, r->balance_fen));
}

int
billing_on_invoice_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const billing_t *b = ctx->app;
    const char *id = req->billing_invoice_get->invoice_id;
    Pm__Billing__InvoiceRecord *rec;
    int rc = billing_invoice_load (ctx, txn, id, &rec);
    if (rc == PM_EINVAL)
        return pm_reply (out, PM__V1__STATUS__INVALID, "invoice_id: '%s' is not an invoice id (INV-E01-000123)", id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "invoice_id: no invoice %s", id);
    Pm__V1__BillingInvoiceGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_invoice_get_reply__init (r);
    r->invoice = rec->invoice;
    r->building = rec->building;
    r->payments = rec->payments;
    r->n_payments = rec->n_payments;
    r->dunning = rec->dunning;
    r->n_dunning = rec->n_dunning;
    r->parts = billing_parts_view (ctx, txn, rec, &r->n_parts);
    if (!rec->n_parts)
        r->next_step = (char *) billing_next_step (ctx, txn, rec->invoice->invoice_id, rec->next_step, &r->next_step_ms);
    r->tasks = pm_arena_alloc (ctx->arena, (rec->n_tasks + 1) * sizeof *r->tasks);
    for (size_t i = 0; i < rec->n_tasks; i++) {
        const char *k1 = strchr (rec->tasks[i], '\t');
        const char *k2 = k1 ? strchr (k1 + 1, '\t') : NULL;
        int table = atoi (rec->tasks[i]);
        r->tasks[r->n_tasks++] = pm_arena_printf (
            ctx->arena, "%.*s %s %s", k1 && k2 ? (int) (k2 - k1 - 1) : 0, k1 ? k1 + 1 : "", k2 ? k2 + 1 : "",
            table == BILLING_CALLS ? "call" : table == BILLING_VISITS ? "visit" : table == BILLING_LETTERS ? "letter"
                                                                                                           : "escalation");
    }
    pm_reply_body (out, &r->base);
    const Pm__V1__Invoice *inv = rec->invoice;
    return pm_reply (out, PM__V1__STATUS__OK, "%s %s (%s): total %s, paid %s, open %s, due %s%s%s", inv->invoice_id,
                     billing_state_name (inv->state), inv->unit_id, billing_yuan (ctx->arena, inv->total_fen),
                     billing_yuan (ctx->arena, inv->paid_fen + inv->credit_applied_fen),
                     billing_yuan (ctx->arena, inv->open_fen), billing_date_of (ctx->arena, b, inv->due_ms),
                     *r->next_step ? "; next step " : "",
                     *r->next_step ? pm_arena_printf (ctx->arena, "%s on %s", r->next_step,
                                                      billing_date_of (ctx->arena, b, r->next_step_ms))
                                   : "");
}

void
billing_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    pm_queue_from_table (ctx, txn, r, "dunning_calls",
                         "owners to call about an overdue invoice (T+3): call, then record the outcome with "
                         "billing.dunning.record {invoice_id, step, outcome}", BILLING_CALLS, limit);
    pm_queue_from_table (ctx, txn, r, "dunning_visits",
                         "owners to visit about an overdue invoice (T+7): visit, offer instalments if it helps "
                         "(billing.instalment.set), record the outcome", BILLING_VISITS, limit);
    pm_queue_from_table (ctx, txn, r, "dunning_letters",
                         "formal letters (正式催缴函) to send (T+15): send, then record it as sent", BILLING_LETTERS, limit);
    pm_queue_from_table (ctx, txn, r, "dunning_escalations",
                         "long arrears for a manager to decide on (T+30): record the decision", BILLING_ESCALATIONS, limit);
    pm_queue_from_table (ctx, txn, r, "unmatched_lines",
                         "bank file lines that did not become payments (mismatched, unknown, failed, unreadable): "
                         "record the payment by hand with the same reference, or billing.reconcile.resolve",
                         BILLING_UNMATCHED, limit);
    pm_queue_from_table (ctx, txn, r, "waiting_check_ins",
                         "check-ins whose move-in invoice waits for a fee schedule: set the estate's schedule",
                         BILLING_WAITING, limit);
}

/* Every invoice (billing.invoice.settled when settled, else .issued) and then
 * every payment (billing.payment.recorded), as of one read transaction. The
 * page's `after` is 'i' or 'p' and the last key sent. */
int
billing_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap)
{
    size_t alen;
    const unsigned char *after = pm_snapshot_after (snap, &alen);
    char part = alen ? (char) after[0] : 'i';
    const unsigned char *key = alen ? after + 1 : NULL;
    size_t klen = alen ? alen - 1 : 0;
    pm_scan_t s;
    if (part == 'i') {
        for (pm_scan_after (&s, txn, BILLING_INVOICES, key, klen); s.ok; pm_scan_next (&s)) {
            Pm__Billing__InvoiceRecord *rec;
            if (pm_scan_msg (&s, &pm__billing__invoice_record__descriptor, &rec) != PM_OK || !rec->invoice)
                continue;
            Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
            pm__v1__event__init (ev);
            ev->type = rec->invoice->state == PM__V1__INVOICE_STATE__SETTLED ? "billing.invoice.settled"
                                                                             : "billing.invoice.issued";
            ev->estate_id = rec->invoice->estate_id;
            ev->unit_id = rec->invoice->unit_id;
            ev->payload_case = PM__V1__EVENT__PAYLOAD_INVOICE;
            ev->invoice = rec->invoice;
            unsigned char *a = pm_arena_alloc (ctx->arena, s.key.mv_size + 1);
            a[0] = 'i';
            memcpy (a + 1, s.key.mv_data, s.key.mv_size);
            if (!pm_snapshot_add (snap, ev, a, s.key.mv_size + 1)) {
                pm_scan_end (&s);
                return PM_OK;
            }
        }
        pm_scan_end (&s);
        key = NULL;
        klen = 0;
    }
    for (pm_scan_after (&s, txn, BILLING_PAYMENTS, key, klen); s.ok; pm_scan_next (&s)) {
        Pm__V1__Payment *p;
        if (pm_scan_msg (&s, &pm__v1__payment__descriptor, &p) != PM_OK)
            continue;
        Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
        pm__v1__event__init (ev);
        ev->type = "billing.payment.recorded";
        ev->estate_id = p->estate_id;
        ev->unit_id = p->unit_id;
        ev->payload_case = PM__V1__EVENT__PAYLOAD_PAYMENT;
        ev->payment = p;
        unsigned char *a = pm_arena_alloc (ctx->arena, s.key.mv_size + 1);
        a[0] = 'p';
        memcpy (a + 1, s.key.mv_data, s.key.mv_size);
        if (!pm_snapshot_add (snap, ev, a, s.key.mv_size + 1))
            break;
    }
    pm_scan_end (&s);
    return PM_OK;
}
