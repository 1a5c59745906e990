/* invoices.c - notify's projection of billing's invoices (billing.invoice.*),
 * so that a reminder is checked against it before it goes: a reminder for an
 * invoice already settled is dropped and counted, never sent, even when it
 * was queued or deferred before the settlement arrived. */
#include "notify.h"

#include <string.h>

bool
notify_invoice_settled (pm_txn_t *txn, const char *invoice_id)
{
    pm_key_t k;
    Pm__Notify__InvoiceRecord *rec;
    if (pm_txn_get_msg (txn, NOTIFY_INVOICES, pm_key (&k, "s", invoice_id), &pm__notify__invoice_record__descriptor, &rec)
        != PM_OK)
        return false;
    return rec->state == PM__V1__INVOICE_STATE__SETTLED || rec->state == PM__V1__INVOICE_STATE__VOID;
}

int
notify_on_invoice (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__Invoice *inv = ev->invoice;
    if (!*inv->invoice_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries an invoice without invoice_id", ev->type);
    Pm__Notify__InvoiceRecord rec = PM__NOTIFY__INVOICE_RECORD__INIT;
    rec.invoice_id = inv->invoice_id;
    rec.unit_id = inv->unit_id;
    rec.estate_id = inv->estate_id;
    rec.state = inv->state;
    if (strcmp (ev->type, "billing.invoice.settled") == 0 && rec.state != PM__V1__INVOICE_STATE__VOID)
        rec.state = PM__V1__INVOICE_STATE__SETTLED; /* the type says it, whatever the payload forgot */
    rec.open_fen = inv->open_fen;
    rec.total_fen = inv->total_fen;
    rec.due_ms = inv->due_ms;
    rec.from_event = ev->id;
    pm_key_t k;
    pm_txn_put_msg (txn, NOTIFY_INVOICES, pm_key (&k, "s", inv->invoice_id), &rec.base);
    if (rec.state == PM__V1__INVOICE_STATE__SETTLED || rec.state == PM__V1__INVOICE_STATE__VOID)
        notify_drop_indexed (ctx, txn, NOTIFY_BY_INVOICE, inv->invoice_id, "settled",
                             pm_arena_printf (ctx->arena, "invoice %s was %s before this reminder went out (%s)",
                                              inv->invoice_id,
                                              rec.state == PM__V1__INVOICE_STATE__VOID ? "voided" : "settled", ev->id),
                             out);
    return notify_on_event (ctx, txn, ev, out);
}
