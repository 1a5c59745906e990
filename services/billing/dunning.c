/* dunning.c - the collection ladder (催缴), instalment plans, and what the
 * people who chase arrears record.
 *
 * The ladder is [billing] dunning (by default T-7 message, T+3 call, T+7
 * visit, T+15 letter, T+30 escalation), counted in days from the due date.
 * An open invoice has one durable timer (pm/timer.h, kind billing.dunning,
 * keyed by its id): its next step. When it fires, billing emits
 * billing.dunning.step with the amount still open, puts a task in the
 * step's queue (calls, visits, letters, escalations) and sets the timer to
 * the next step. Steps already past when an invoice is issued are skipped
 * (the bill itself is the news); steps that come due while the daemon was
 * away fire in order, one batch after the other.
 *
 * A payment that settles an invoice cancels its timer in the same
 * transaction (ledger.c calls billing_ladder_stop), so no step fires for an
 * invoice paid before the step's instant, and the invoice's tasks leave the
 * queues. A partly paid invoice stays on the ladder with its open amount.
 *
 * An instalment plan (billing.instalment.set) replaces the invoice's own
 * ladder: each part ("INV-E01-000123/2") has its own due date and its own
 * ladder, and payments fill the parts in due order. */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_PARTS 24

int64_t
billing_part_open (const Pm__Billing__Part *p)
{
    return p->amount_fen - p->paid_fen;
}

static char *
s_key (pm_ctx_t *ctx, const Pm__Billing__InvoiceRecord *rec, uint32_t part)
{
    return part ? pm_arena_printf (ctx->arena, "%s/%u", rec->invoice->invoice_id, part) : rec->invoice->invoice_id;
}

static Pm__Billing__Part *
s_part (const Pm__Billing__InvoiceRecord *rec, uint32_t no)
{
    for (size_t i = 0; i < rec->n_parts; i++)
        if (rec->parts[i]->no == no)
            return rec->parts[i];
    return NULL;
}

/* Sets the timer of key to the first step at or after index `from` whose
 * instant is after now (when only_future), else to step `from`. Returns the
 * index set, or nsteps when none. */
static uint32_t
s_arm (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, int64_t due_ms, uint32_t from, bool only_future)
{
    const billing_t *b = ctx->app;
    for (uint32_t i = from; i < b->nsteps; i++) {
        int64_t at = due_ms + (int64_t) b->steps[i].days * BILLING_DAY_MS;
        if (only_future && at <= ctx->now_ms)
            continue;
        Pm__Billing__DunningTimer t = PM__BILLING__DUNNING_TIMER__INIT;
        t.step = i;
        pm_timer_set_msg (txn, BILLING_TIMER_DUNNING, key, at, &t.base);
        return i;
    }
    pm_timer_cancel (txn, BILLING_TIMER_DUNNING, key);
    return b->nsteps;
}

void
billing_ladder_start (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Billing__InvoiceRecord *rec)
{
    if (!rec->n_parts) {
        rec->next_step = s_arm (ctx, txn, rec->invoice->invoice_id, rec->invoice->due_ms, 0, true);
        return;
    }
    for (size_t i = 0; i < rec->n_parts; i++) {
        Pm__Billing__Part *p = rec->parts[i];
        if (billing_part_open (p) > 0)
            p->next_step = s_arm (ctx, txn, s_key (ctx, rec, p->no), p->due_ms, 0, true);
    }
}

void
billing_ladder_stop (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Billing__InvoiceRecord *rec, uint32_t part)
{
    const billing_t *b = ctx->app;
    const char *key = s_key (ctx, rec, part);
    pm_timer_cancel (txn, BILLING_TIMER_DUNNING, key);
    if (part) {
        Pm__Billing__Part *p = s_part (rec, part);
        if (p)
            p->next_step = b->nsteps;
    }
    else
        rec->next_step = b->nsteps;
    /* its tasks leave the queues: "<table>\t<key>\t<step>" */
    size_t kept = 0, klen = strlen (key);
    for (size_t i = 0; i < rec->n_tasks; i++) {
        const char *t = rec->tasks[i];
        const char *k1 = strchr (t, '\t');
        const char *k2 = k1 ? strchr (k1 + 1, '\t') : NULL;
        if (k2 && (size_t) (k2 - k1 - 1) == klen && strncmp (k1 + 1, key, klen) == 0) {
            pm_key_t k;
            pm_txn_del_key (txn, atoi (t), pm_key (&k, "ss", key, k2 + 1));
            continue;
        }
        rec->tasks[kept++] = rec->tasks[i];
    }
    rec->n_tasks = kept;
}

/* --- the timer -------------------------------------------------------------------- */

static const char *
s_task_reason (pm_ctx_t *ctx, int action, const char *open, const char *due, const char *step)
{
    switch (action) {
    case BILLING_ACT_CALL:
        return pm_arena_printf (ctx->arena, "%s: call the owner (a friendly call): %s open, due %s; record the outcome "
                                            "with billing.dunning.record", step, open, due);
    case BILLING_ACT_VISIT:
        return pm_arena_printf (ctx->arena, "%s: visit the owner: %s open, due %s; understand the reason, offer "
                                            "instalments; record the outcome with billing.dunning.record", step, open, due);
    case BILLING_ACT_LETTER:
        return pm_arena_printf (ctx->arena, "%s: send the formal letter (正式催缴函): %s open, due %s; record it as "
                                            "sent with billing.dunning.record", step, open, due);
    default:
        return pm_arena_printf (ctx->arena, "%s: escalate to a manager: %s open since %s; record the decision with "
                                            "billing.dunning.record", step, open, due);
    }
}

int
billing_on_dunning_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                          pm_out_t *out)
{
    const billing_t *b = ctx->app;
    Pm__Billing__DunningTimer *t = pm__billing__dunning_timer__unpack (pm_arena_pb (ctx->arena), plen, payload);
    if (!t || t->step >= b->nsteps)
        return pm_reply (out, PM__V1__STATUS__INVALID, "dunning timer %s: step %u is not on the ladder (%u steps)", key,
                         t ? t->step : 0, b->nsteps);
    const char *slash = strchr (key, '/');
    char *invoice_id = slash ? pm_arena_printf (ctx->arena, "%.*s", (int) (slash - key), key) : (char *) key;
    uint32_t part = slash ? (uint32_t) strtoul (slash + 1, NULL, 10) : 0;
    Pm__Billing__InvoiceRecord *rec;
    int rc = billing_invoice_load (ctx, txn, invoice_id, &rec);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "dunning timer %s: no invoice %s", key, invoice_id);
    Pm__V1__Invoice *inv = rec->invoice;
    Pm__Billing__Part *p = part ? s_part (rec, part) : NULL;
    if (inv->state == PM__V1__INVOICE_STATE__SETTLED || inv->state == PM__V1__INVOICE_STATE__VOID
        || (part && (!p || billing_part_open (p) == 0)) || (!part && rec->n_parts))
        return PM__V1__STATUS__OK; /* nothing to chase (a stop always cancels; this is belt and braces) */
    const billing_step_t *st = &b->steps[t->step];
    int64_t open = p ? billing_part_open (p) : inv->open_fen;
    int64_t due = p ? p->due_ms : inv->due_ms;

    Pm__V1__DunningStep ds = PM__V1__DUNNING_STEP__INIT;
    ds.invoice_id = inv->invoice_id;
    ds.unit_id = inv->unit_id;
    ds.estate_id = inv->estate_id;
    ds.step = (char *) st->label;
    ds.action = (char *) billing_action_name (st->action);
    ds.open_fen = open;
    ds.due_ms = due;
    ds.instalment = p ? (char *) key : "";
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "billing.dunning.step";
    ev.estate_id = inv->estate_id;
    ev.unit_id = inv->unit_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_DUNNING;
    ev.dunning = &ds;
    pm_emit (out, txn, &ev);

    Pm__V1__BillingDunningEntry *e = pm_arena_alloc (ctx->arena, sizeof *e);
    pm__v1__billing_dunning_entry__init (e);
    e->key = (char *) key;
    e->step = (char *) st->label;
    e->action = (char *) ds.action;
    e->at_ms = ctx->now_ms;
    e->open_fen = open;
    Pm__V1__BillingDunningEntry **log = pm_arena_alloc (ctx->arena, (rec->n_dunning + 1) * sizeof *log);
    if (rec->n_dunning)
        memcpy (log, rec->dunning, rec->n_dunning * sizeof *log);
    log[rec->n_dunning++] = e;
    rec->dunning = log;

    int table = billing_action_table (st->action);
    if (table >= 0) {
        const char *due_text = billing_date_of (ctx->arena, b, due);
        const char *open_text = billing_yuan (ctx->arena, open);
        Pm__V1__QueueItem *item =
            pm_queue_item (ctx, pm_arena_printf (ctx->arena, "%s %s", key, st->label), inv->estate_id, inv->unit_id,
                           ctx->now_ms, s_task_reason (ctx, st->action, open_text, due_text, st->label));
        pm_queue_field (ctx, item, "invoice", "%s", inv->invoice_id);
        if (p)
            pm_queue_field (ctx, item, "instalment", "%s", key);
        pm_queue_field (ctx, item, "step", "%s", st->label);
        pm_queue_field (ctx, item, "action", "%s", ds.action);
        pm_queue_field (ctx, item, "open_fen", "%lld", (long long) open);
        pm_queue_field (ctx, item, "due", "%s", due_text);
        pm_key_t k;
        pm_queue_put (txn, table, pm_key (&k, "ss", key, st->label), item);
        char **tasks = pm_arena_alloc (ctx->arena, (rec->n_tasks + 1) * sizeof *tasks);
        if (rec->n_tasks)
            memcpy (tasks, rec->tasks, rec->n_tasks * sizeof *tasks);
        tasks[rec->n_tasks++] = pm_arena_printf (ctx->arena, "%d\t%s\t%s", table, key, st->label);
        rec->tasks = tasks;
    }
    /* the next step: due even if its instant is past (it fires in the next batch) */
    uint32_t next = s_arm (ctx, txn, key, due, t->step + 1, false);
    if (p)
        p->next_step = next;
    else
        rec->next_step = next;
    billing_invoice_save (txn, rec);
    pm_count (ctx->metrics, "billing_dunning_steps_total", pm_arena_printf (ctx->arena, "step=\"%s\"", st->label), 1);
    return PM__V1__STATUS__OK;
}

const char *
billing_next_step (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, uint32_t step, int64_t *at_ms)
{
    const billing_t *b = ctx->app;
    *at_ms = 0;
    if (step >= b->nsteps || pm_timer_due (txn, BILLING_TIMER_DUNNING, key, at_ms) != PM_OK)
        return "";
    return b->steps[step].label;
}

Pm__V1__BillingInstalmentPart **
billing_parts_view (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Billing__InvoiceRecord *rec, size_t *n)
{
    Pm__V1__BillingInstalmentPart **v = pm_arena_alloc (ctx->arena, (rec->n_parts + 1) * sizeof *v);
    for (size_t i = 0; i < rec->n_parts; i++) {
        const Pm__Billing__Part *p = rec->parts[i];
        Pm__V1__BillingInstalmentPart *x = pm_arena_alloc (ctx->arena, sizeof *x);
        pm__v1__billing_instalment_part__init (x);
        x->key = s_key (ctx, rec, p->no);
        x->due_ms = p->due_ms;
        x->amount_fen = p->amount_fen;
        x->paid_fen = p->paid_fen;
        x->open_fen = billing_part_open (p);
        x->next_step = (char *) billing_next_step (ctx, txn, x->key, p->next_step, &x->next_step_ms);
        v[i] = x;
    }
    *n = rec->n_parts;
    return v;
}

/* --- billing.dunning.record ------------------------------------------------------------- */

static const char *const s_outcomes[] = { "reached", "promised_to_pay", "no_answer", "refused", "disputed",
                                          "sent", "visited", "escalated", "other", NULL };

int
billing_on_dunning_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const billing_t *b = ctx->app;
    const Pm__V1__BillingDunningRecordRequest *q = req->billing_dunning_record;
    if (!*q->invoice_id)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "invoice_id: empty; the invoice (INV-E01-000123) or instalment (INV-E01-000123/2) chased");
    const char *slash = strchr (q->invoice_id, '/');
    char *invoice_id = slash ? pm_arena_printf (ctx->arena, "%.*s", (int) (slash - q->invoice_id), q->invoice_id)
                             : q->invoice_id;
    Pm__Billing__InvoiceRecord *rec;
    int rc = billing_invoice_load (ctx, txn, invoice_id, &rec);
    if (rc == PM_EINVAL)
        return pm_reply (out, PM__V1__STATUS__INVALID, "invoice_id: '%s' is not an invoice id (INV-E01-000123)",
                         q->invoice_id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "invoice_id: no invoice %s", invoice_id);
    int action = -1;
    for (uint32_t i = 0; i < b->nsteps; i++)
        if (strcmp (b->steps[i].label, q->step) == 0)
            action = b->steps[i].action;
    if (action < 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "step: '%s' is not on the ladder (e.g. T+3)", q->step);
    int table = billing_action_table (action);
    if (table < 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "step: %s is a message to the owner: nothing for a person to "
                                                       "record", q->step);
    bool known = false;
    for (int i = 0; s_outcomes[i]; i++)
        known = known || strcmp (s_outcomes[i], q->outcome) == 0;
    if (!known)
        return pm_reply (out, PM__V1__STATUS__INVALID, "outcome: '%s'; expected reached, promised_to_pay, no_answer, "
                                                       "refused, disputed, sent, visited, escalated or other", q->outcome);
    if (strcmp (q->outcome, "other") == 0 && !*q->note)
        return pm_reply (out, PM__V1__STATUS__INVALID, "note: empty; an 'other' outcome needs a note saying what happened");
    pm_key_t k;
    pm_key (&k, "ss", q->invoice_id, q->step);
    if (!pm_txn_has (txn, table, &k)) {
        char *waiting = "";
        for (size_t i = 0; i < rec->n_tasks; i++) {
            const char *t = strchr (rec->tasks[i], '\t');
            waiting = pm_arena_printf (ctx->arena, "%s%s%s", waiting, *waiting ? ", " : "", t ? t + 1 : "");
        }
        for (char *c = waiting; *c; c++)
            if (*c == '\t')
                *c = ' ';
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "no %s %s task waits for %s (%s); waiting for it: %s",
                         q->step, billing_action_name (action), q->invoice_id, billing_state_name (rec->invoice->state),
                         *waiting ? waiting : "none");
    }
    pm_txn_del_key (txn, table, &k);
    size_t kept = 0;
    char *mine = pm_arena_printf (ctx->arena, "%d\t%s\t%s", table, q->invoice_id, q->step);
    for (size_t i = 0; i < rec->n_tasks; i++)
        if (strcmp (rec->tasks[i], mine) != 0)
            rec->tasks[kept++] = rec->tasks[i];
    rec->n_tasks = kept;
    Pm__V1__BillingDunningEntry *e = pm_arena_alloc (ctx->arena, sizeof *e);
    pm__v1__billing_dunning_entry__init (e);
    e->key = q->invoice_id;
    e->step = q->step;
    e->action = (char *) billing_action_name (action);
    e->at_ms = ctx->now_ms;
    e->outcome = q->outcome;
    e->note = q->note;
    e->actor = req->actor;
    e->open_fen = rec->invoice->open_fen;
    Pm__V1__BillingDunningEntry **log = pm_arena_alloc (ctx->arena, (rec->n_dunning + 1) * sizeof *log);
    if (rec->n_dunning)
        memcpy (log, rec->dunning, rec->n_dunning * sizeof *log);
    log[rec->n_dunning++] = e;
    rec->dunning = log;
    billing_invoice_save (txn, rec);
    pm_count (ctx->metrics, "billing_dunning_outcomes_total",
              pm_arena_printf (ctx->arena, "action=\"%s\",outcome=\"%s\"", e->action, q->outcome), 1);
    Pm__V1__BillingDunningRecordReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_dunning_record_reply__init (r);
    r->waiting = (uint32_t) rec->n_tasks;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s %s %s: %s recorded; %zu task(s) of the invoice still waiting",
                     q->invoice_id, q->step, e->action, q->outcome, rec->n_tasks);
}

/* --- billing.instalment.set -------------------------------------------------------------- */

int
billing_on_instalment_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const billing_t *b = ctx->app;
    const Pm__V1__BillingInstalmentSetRequest *q = req->billing_instalment_set;
    Pm__Billing__InvoiceRecord *rec;
    int rc = billing_invoice_load (ctx, txn, q->invoice_id, &rec);
    if (rc == PM_EINVAL || !*q->invoice_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "invoice_id: '%s' is not an invoice id (INV-E01-000123)",
                         q->invoice_id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "invoice_id: no invoice %s", q->invoice_id);
    Pm__V1__Invoice *inv = rec->invoice;
    if (inv->state == PM__V1__INVOICE_STATE__SETTLED || inv->state == PM__V1__INVOICE_STATE__VOID)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "invoice %s is %s: nothing left to split into instalments",
                         inv->invoice_id, billing_state_name (inv->state));
    if (q->n_parts < 2 || q->n_parts > S_MAX_PARTS)
        return pm_reply (out, PM__V1__STATUS__INVALID, "parts: %zu given; a plan has 2 to %d dated parts, e.g. "
                                                       "[{\"due_date\":\"2027-01-15\",\"amount\":\"1000.00\"}, ...]",
                         q->n_parts, S_MAX_PARTS);
    int ty, tm, td;
    billing_local_date (b, ctx->now_ms, &ty, &tm, &td);
    int64_t today = billing_local_ms (b, ty, tm, td), sum = 0, prev = INT64_MIN;
    Pm__Billing__Part **parts = pm_arena_alloc (ctx->arena, q->n_parts * sizeof *parts);
    for (size_t i = 0; i < q->n_parts; i++) {
        const Pm__V1__BillingInstalment *x = q->parts[i];
        int y, m, d;
        if (!billing_date_parse (x->due_date, &y, &m, &d))
            return pm_reply (out, PM__V1__STATUS__INVALID, "parts[%zu].due_date: '%s' is not a date (YYYY-MM-DD)", i,
                             x->due_date);
        int64_t due = billing_local_ms (b, y, m, d);
        if (due < today)
            return pm_reply (out, PM__V1__STATUS__INVALID, "parts[%zu].due_date: %s is in the past (today is %04d-%02d-%02d)",
                             i, x->due_date, ty, tm, td);
        if (due <= prev)
            return pm_reply (out, PM__V1__STATUS__INVALID, "parts[%zu].due_date: %s is not after the part before it", i,
                             x->due_date);
        prev = due;
        int64_t fen = x->amount_fen;
        const char *why;
        if (*x->amount && !billing_yuan_parse (x->amount, false, &fen, &why))
            return pm_reply (out, PM__V1__STATUS__INVALID, "parts[%zu].amount: '%s' %s", i, x->amount, why);
        if (fen <= 0 || fen > inv->open_fen)
            return pm_reply (out, PM__V1__STATUS__INVALID, "parts[%zu]: amount %lld fen; each part needs an amount "
                                                           "greater than 0 and at most the open amount (amount_fen, or amount in 元)", i,
                             (long long) fen);
        sum += fen;
        Pm__Billing__Part *p = pm_arena_alloc (ctx->arena, sizeof *p);
        pm__billing__part__init (p);
        p->no = (uint32_t) i + 1;
        p->due_ms = due;
        p->amount_fen = fen;
        parts[i] = p;
    }
    if (sum != inv->open_fen)
        return pm_reply (out, PM__V1__STATUS__INVALID, "parts: they add up to %s; invoice %s has %s open: the parts "
                                                       "must add up to it exactly", billing_yuan (ctx->arena, sum),
                         inv->invoice_id, billing_yuan (ctx->arena, inv->open_fen));
    /* the old ladders and their arrears go; the parts take their place */
    if (rec->n_parts)
        for (size_t i = 0; i < rec->n_parts; i++) {
            Pm__Billing__Part *p = rec->parts[i];
            int64_t open = billing_part_open (p);
            if (open > 0)
                billing_arrears_add (ctx, txn, inv->estate_id, p->due_ms, -open, -1);
            billing_ladder_stop (ctx, txn, rec, p->no);
        }
    else
        billing_arrears_add (ctx, txn, inv->estate_id, inv->due_ms, -inv->open_fen, -1);
    billing_ladder_stop (ctx, txn, rec, 0);
    rec->parts = parts;
    rec->n_parts = q->n_parts;
    for (size_t i = 0; i < rec->n_parts; i++)
        billing_arrears_add (ctx, txn, inv->estate_id, parts[i]->due_ms, parts[i]->amount_fen, 1);
    billing_ladder_start (ctx, txn, rec);
    billing_invoice_save (txn, rec);
    billing_invoice_emit (out, txn, rec, "billing.invoice.updated");
    Pm__V1__BillingInstalmentSetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_instalment_set_reply__init (r);
    r->invoice = inv;
    r->parts = billing_parts_view (ctx, txn, rec, &r->n_parts);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s open in %zu instalments, the first due %s, the last %s",
                     inv->invoice_id, billing_yuan (ctx->arena, inv->open_fen), rec->n_parts,
                     billing_date_of (ctx->arena, b, parts[0]->due_ms),
                     billing_date_of (ctx->arena, b, parts[rec->n_parts - 1]->due_ms));
}
