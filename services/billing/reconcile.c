/* reconcile.c - 账务核对: a bank's withholding result file against the books.
 *
 * pmctl billing reconcile streams the file in chunks; each chunk is one
 * idempotent request of lines as read (text). For each line billing says:
 *
 *   matched           a successful withholding of exactly the invoice's open
 *                     amount (or, by unit, the unit's open total): recorded as
 *                     a bank_withholding payment under its external_ref;
 *   already_recorded  that reference is a payment already, for the same amount
 *                     and invoice (a second import of the file changes nothing);
 *   mismatched        the amount is not what is open, the invoice is another
 *                     unit's, or the reference was recorded with other values;
 *   unknown           no such invoice or unit;
 *   failed            the bank says the withholding failed;
 *   rejected          the line cannot be read (amount with three decimals, no
 *                     reference, unknown status, bad date).
 *
 * Every line that is not matched or already recorded waits in the queue
 * `unmatched_lines` under its file name and line, with its reason, until a
 * person deals with it: a payment recorded by hand with the same reference
 * on bank_withholding takes it out, and so does billing.reconcile.resolve; a
 * later import of the file in which the line matches takes it out too. */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/text.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define S_MAX_LINES 10000

static const char *const s_success[] = { "success", "succeeded", "ok", "paid", "s", "0", "00", "0000",
                                         "成功", "扣款成功", "已扣款", NULL };
static const char *const s_failed[] = { "failed", "fail", "failure", "f", "error", "rejected", "失败", "扣款失败",
                                        "余额不足", "账户异常", NULL };

static int
s_status (const char *s)
{
    const char *start;
    size_t len;
    pm_trim_span (s, &start, &len);
    for (int i = 0; s_success[i]; i++)
        if (strlen (s_success[i]) == len && strncasecmp (start, s_success[i], len) == 0)
            return 1;
    for (int i = 0; s_failed[i]; i++)
        if (strlen (s_failed[i]) == len && strncasecmp (start, s_failed[i], len) == 0)
            return 0;
    return -1;
}

static char *
s_trim (pm_ctx_t *ctx, const char *s)
{
    const char *start;
    size_t len;
    pm_trim_span (s ? s : "", &start, &len);
    char *t = pm_arena_alloc (ctx->arena, len + 1);
    memcpy (t, start, len);
    return t;
}

typedef struct {
    Pm__V1__BillingReconcileReply *r;
    const Pm__V1__BillingReconcileRequest *q;
} s_run_t;

/* Records a line's outcome: the reply, the counts and (unless matched or
 * already recorded) the queue. */
static void
s_outcome (pm_ctx_t *ctx, pm_txn_t *txn, s_run_t *run, const Pm__V1__ReconcileLine *l, const char *outcome,
           const char *reason, const char *invoice_id, int64_t fen, const char *payment_id, const char *unit_id)
{
    Pm__V1__BillingReconcileReply *r = run->r;
    const char *file = run->q->file_name;
    pm_key_t k;
    pm_key (&k, "su", file, l->line);
    if (strcmp (outcome, "matched") == 0) {
        r->matched++;
        r->matched_fen += fen;
        if (pm_txn_has (txn, BILLING_UNMATCHED, &k))
            pm_txn_del_key (txn, BILLING_UNMATCHED, &k);
        return;
    }
    Pm__V1__ReconcileResult *x = pm_arena_alloc (ctx->arena, sizeof *x);
    pm__v1__reconcile_result__init (x);
    x->line = l->line;
    x->outcome = (char *) outcome;
    x->reason = (char *) reason;
    x->invoice_id = (char *) (invoice_id ? invoice_id : "");
    x->amount_fen = fen;
    x->payment_id = (char *) (payment_id ? payment_id : "");
    r->results[r->n_results++] = x;
    if (strcmp (outcome, "already_recorded") == 0) {
        r->already_recorded++;
        if (pm_txn_has (txn, BILLING_UNMATCHED, &k))
            pm_txn_del_key (txn, BILLING_UNMATCHED, &k);
        return;
    }
    if (strcmp (outcome, "mismatched") == 0)
        r->mismatched++;
    else if (strcmp (outcome, "unknown") == 0)
        r->unknown++;
    else if (strcmp (outcome, "failed") == 0)
        r->failed++;
    else
        r->rejected++;
    Pm__V1__QueueItem *item =
        pm_queue_item (ctx, pm_arena_printf (ctx->arena, "%s:%u", file, l->line),
                       unit_id ? billing_unit_estate (ctx->arena, unit_id) : "", unit_id ? unit_id : "", ctx->now_ms,
                       pm_arena_printf (ctx->arena, "%s: %s", outcome, reason));
    pm_queue_field (ctx, item, "batch", "%s", run->q->batch_id);
    pm_queue_field (ctx, item, "outcome", "%s", outcome);
    pm_queue_field (ctx, item, "external_ref", "%s", l->external_ref);
    pm_queue_field (ctx, item, "invoice_id", "%s", l->invoice_id);
    pm_queue_field (ctx, item, "amount_fen", "%lld", (long long) fen);
    pm_queue_field (ctx, item, "status", "%s", l->status);
    pm_queue_put (txn, BILLING_UNMATCHED, &k, item);
    if (*l->external_ref) {
        pm_key_t rk;
        pm_txn_put_key (txn, BILLING_UNMATCHED_REFS, pm_key (&rk, "s", l->external_ref), k.buf, k.len);
    }
}

void
billing_unmatched_settle (pm_txn_t *txn, const char *external_ref)
{
    pm_key_t rk, k;
    MDB_val v;
    pm_key (&rk, "s", external_ref);
    if (pm_txn_get_key (txn, BILLING_UNMATCHED_REFS, &rk, &v) != PM_OK)
        return;
    pm_key_raw (&k, v.mv_data, v.mv_size);
    pm_txn_del_key (txn, BILLING_UNMATCHED, &k);
    pm_txn_del_key (txn, BILLING_UNMATCHED_REFS, &rk);
}

/* One line. */
static void
s_line (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, s_run_t *run, const Pm__V1__ReconcileLine *in)
{
    const billing_t *b = ctx->app;
    Pm__V1__ReconcileLine *l = pm_arena_alloc (ctx->arena, sizeof *l);
    pm__v1__reconcile_line__init (l);
    l->line = in->line;
    l->external_ref = s_trim (ctx, in->external_ref);
    l->unit_id = s_trim (ctx, in->unit_id);
    l->invoice_id = s_trim (ctx, in->invoice_id);
    l->amount_fen = s_trim (ctx, in->amount_fen);
    l->amount = s_trim (ctx, in->amount);
    l->status = s_trim (ctx, in->status);
    l->paid_at = s_trim (ctx, in->paid_at);
    const char *unit = *l->unit_id ? l->unit_id : NULL;
#define REJECT(...) \
    do { \
        s_outcome (ctx, txn, run, l, "rejected", pm_arena_printf (ctx->arena, __VA_ARGS__), l->invoice_id, 0, NULL, \
                   unit); \
        return; \
    } while (0)

    if (!*l->external_ref)
        REJECT ("external_ref: missing (the bank's serial number of the withholding)");
    if (!pm_utf8_valid_str (l->external_ref) || strlen (l->external_ref) > 128)
        REJECT ("external_ref: not a reference (UTF-8, up to 128 bytes)");
    int64_t fen = 0, fen2 = 0;
    const char *why;
    if (!*l->amount_fen && !*l->amount)
        REJECT ("amount: missing (amount_fen in fen, or amount in 元 with two decimals)");
    if (*l->amount_fen && !billing_fen_parse (l->amount_fen, &fen, &why))
        REJECT ("amount_fen: '%s' %s", l->amount_fen, why);
    if (*l->amount && !billing_yuan_parse (l->amount, false, &fen2, &why))
        REJECT ("amount: '%s' %s", l->amount, why);
    if (*l->amount_fen && *l->amount && fen != fen2)
        REJECT ("amount '%s' and amount_fen '%s' disagree", l->amount, l->amount_fen);
    if (!*l->amount_fen)
        fen = fen2;
    int status = s_status (l->status);
    if (status < 0)
        REJECT ("status: '%s'; expected success or failed (成功 / 失败)", l->status);
    int64_t paid_at = 0;
    if (*l->paid_at && !billing_time_parse (b, l->paid_at, &paid_at))
        REJECT ("paid_at: '%s' is not a time (2026-12-20 10:15:00, 20261220101500 or RFC 3339)", l->paid_at);
    if (!*l->invoice_id && !unit)
        REJECT ("invoice_id and unit_id: both empty; the line must name what it pays");
#undef REJECT
    if (status == 0) {
        s_outcome (ctx, txn, run, l, "failed",
                   pm_arena_printf (ctx->arena, "the bank reports the withholding of %s failed ('%s'): ask the owner to "
                                                "pay another way, or withhold again",
                                    billing_yuan (ctx->arena, fen), l->status),
                   l->invoice_id, fen, NULL, unit);
        return;
    }

    /* already a payment? */
    pm_key_t rk;
    MDB_val v;
    if (pm_txn_get_key (txn, BILLING_REFS, pm_key (&rk, "ss", "bank_withholding", l->external_ref), &v) == PM_OK) {
        char *id = pm_arena_alloc (ctx->arena, v.mv_size + 1);
        memcpy (id, v.mv_data, v.mv_size);
        Pm__V1__Payment *old = NULL;
        if (billing_payment_load (ctx, txn, id, &old) != PM_OK)
            old = NULL;
        if (old && old->amount_fen == fen
            && (*l->invoice_id ? strcmp (old->invoice_id, l->invoice_id) == 0 : strcmp (old->unit_id, unit) == 0))
            s_outcome (ctx, txn, run, l, "already_recorded",
                       pm_arena_printf (ctx->arena, "reference %s is payment %s already", l->external_ref, id),
                       old->invoice_id, fen, id, old->unit_id);
        else
            s_outcome (ctx, txn, run, l, "mismatched",
                       pm_arena_printf (ctx->arena, "reference %s is payment %s already, with other values (%s to %s)",
                                        l->external_ref, id, old ? billing_yuan (ctx->arena, old->amount_fen) : "?",
                                        old ? (*old->invoice_id ? old->invoice_id : old->unit_id) : "?"),
                       l->invoice_id, fen, id, unit);
        return;
    }

    /* what it pays, and whether the amount is what is open */
    int64_t open;
    const char *what;
    Pm__Billing__InvoiceRecord *rec = NULL;
    if (*l->invoice_id) {
        int rc = billing_invoice_load (ctx, txn, l->invoice_id, &rec);
        if (rc != PM_OK) {
            s_outcome (ctx, txn, run, l, "unknown",
                       pm_arena_printf (ctx->arena, "no invoice %s%s", l->invoice_id,
                                        rc == PM_EINVAL ? " (not an invoice id: INV-E01-000123)" : ""),
                       l->invoice_id, fen, NULL, unit);
            return;
        }
        if (unit && strcmp (unit, rec->invoice->unit_id) != 0) {
            s_outcome (ctx, txn, run, l, "mismatched",
                       pm_arena_printf (ctx->arena, "invoice %s is unit %s's, the line says %s", l->invoice_id,
                                        rec->invoice->unit_id, unit),
                       l->invoice_id, fen, NULL, unit);
            return;
        }
        unit = rec->invoice->unit_id;
        open = rec->invoice->open_fen;
    }
    else {
        pm_key_t k;
        if (!pm_txn_has (txn, BILLING_ACCOUNTS, pm_key (&k, "s", unit))) {
            s_outcome (ctx, txn, run, l, "unknown", pm_arena_printf (ctx->arena, "billing has no unit %s", unit), "",
                       fen, NULL, unit);
            return;
        }
        open = 0;
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, BILLING_UNIT_INVOICES, pm_key (&k, "s", unit)); s.ok; pm_scan_next (&s)) {
            uint64_t no;
            Pm__Billing__InvoiceRecord *u;
            pm_key_t ik;
            if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &no) == PM_OK
                && pm_txn_get_msg (txn, BILLING_INVOICES,
                                   pm_key (&ik, "sU", billing_unit_estate (ctx->arena, unit), no),
                                   &pm__billing__invoice_record__descriptor, &u)
                       == PM_OK)
                open += u->invoice->open_fen;
        }
        pm_scan_end (&s);
    }
    if (fen != open) {
        what = rec ? pm_arena_printf (ctx->arena, "invoice %s (%s, total %s)", l->invoice_id,
                                      billing_state_name (rec->invoice->state),
                                      billing_yuan (ctx->arena, rec->invoice->total_fen))
                   : pm_arena_printf (ctx->arena, "unit %s's open invoices", unit);
        s_outcome (ctx, txn, run, l, "mismatched",
                   pm_arena_printf (ctx->arena, "the bank withheld %s; %s has %s open", billing_yuan (ctx->arena, fen),
                                    what, billing_yuan (ctx->arena, open)),
                   l->invoice_id, fen, NULL, unit);
        return;
    }
    billing_pay_t p = { .invoice_id = l->invoice_id, .unit_id = *l->invoice_id ? "" : unit, .amount_fen = fen,
                        .channel = "bank_withholding", .external_ref = l->external_ref, .paid_at_ms = paid_at,
                        .payer = "bank withholding", .invoice = rec, .ref_unused = true };
    billing_paid_t res;
    int rc = billing_pay (ctx, txn, out, &p, &res);
    if (rc != PM__V1__STATUS__OK) {
        s_outcome (ctx, txn, run, l, "mismatched", pm_arena_printf (ctx->arena, "not recorded: %s", "refused"),
                   l->invoice_id, fen, NULL, unit);
        return;
    }
    s_outcome (ctx, txn, run, l, "matched", "", res.payment->invoice_id, fen, res.payment->payment_id, unit);
}

int
billing_on_reconcile (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingReconcileRequest *q = req->billing_reconcile;
    if (!*q->file_name)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "file_name: empty; unmatched lines wait in the queue under the file's name and line");
    if (q->n_lines > S_MAX_LINES)
        return pm_reply (out, PM__V1__STATUS__INVALID, "lines: %zu in one request; send at most %d", q->n_lines,
                         S_MAX_LINES);
    Pm__V1__BillingReconcileReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_reconcile_reply__init (r);
    r->results = pm_arena_alloc (ctx->arena, (q->n_lines + 1) * sizeof *r->results);
    s_run_t run = { r, q };
    for (size_t i = 0; i < q->n_lines; i++)
        s_line (ctx, txn, out, &run, q->lines[i]);
    if (txn->err)
        return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: %s", pm_strerror (txn->err));
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK,
                     "%s chunk %u: %u matched, %u already recorded, %u mismatched, %u unknown, %u failed, %u rejected",
                     q->file_name, q->chunk_no, r->matched, r->already_recorded, r->mismatched, r->unknown, r->failed,
                     r->rejected);
}

int
billing_on_reconcile_resolve (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingReconcileResolveRequest *q = req->billing_reconcile_resolve;
    if (!*q->note)
        return pm_reply (out, PM__V1__STATUS__INVALID, "note: empty; say what was done about the line (e.g. \"refunded "
                                                       "by the bank\")");
    pm_key_t k;
    Pm__V1__QueueItem *item;
    pm_key (&k, "su", q->file_name, q->line);
    if (pm_txn_get_msg (txn, BILLING_UNMATCHED, &k, &pm__v1__queue_item__descriptor, &item) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "no unmatched line %s:%u waits (ops.queues billing "
                                                         "unmatched_lines lists them)", q->file_name, q->line);
    for (size_t i = 0; i < item->n_fields; i++)
        if (strcmp (item->fields[i]->name, "external_ref") == 0 && *item->fields[i]->value) {
            pm_key_t rk;
            pm_txn_del_key (txn, BILLING_UNMATCHED_REFS, pm_key (&rk, "s", item->fields[i]->value));
        }
    pm_txn_del_key (txn, BILLING_UNMATCHED, &k);
    pm_info ("unmatched line %s:%u resolved by %s: %s", q->file_name, q->line, req->actor, q->note);
    Pm__V1__BillingReconcileResolveReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_reconcile_resolve_reply__init (r);
    r->remaining = (uint32_t) pm_txn_count (txn, BILLING_UNMATCHED);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s:%u resolved (%s); %u unmatched line(s) still waiting", q->file_name,
                     q->line, q->note, r->remaining);
}
