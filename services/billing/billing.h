/* billing.h - the billing daemon: fee schedules, invoices, payments, bank
 * reconciliation, the dunning ladder and the collection rate (收缴率).
 *
 * Money is int64 fen everywhere; every line is computed in integer
 * arithmetic and rounded half-up to the fen once (money.c), so every total
 * adds up to the fen. Dates are the estate's (UTC+8 unless configured).
 *
 * Tables (keys from pm/key.h, natural order: estate, then number or unit):
 *   units           s(unit_id)                      -> UnitRecord   projection of intake's units
 *   accounts        s(unit_id)                      -> Account      credit, move-in, keys, prepaid months
 *   schedules       s(estate) t(effective_ms)       -> pm.v1.FeeSchedule (versions)
 *   invoices        s(estate) U(no)                 -> InvoiceRecord ("INV-E01-000123" is E01, 123)
 *   unit_invoices   s(unit_id) U(no)                -> ""           a unit's invoices
 *   unit_periods    s(unit_id) s(period)            -> invoice id   monthly runs: once per unit and period
 *   payments        s(estate) U(no)                 -> pm.v1.Payment ("PAY-E01-000007")
 *   unit_payments   s(unit_id) U(no)                -> ""
 *   refs            s(channel) s(external_ref)      -> payment or refund id: one payment per reference
 *   numbers         s(kind) s(estate)               -> u64 last number issued (gapless per estate)
 *   collection      s(estate) s(period) s(dim) s(v) -> Counter      收缴率 rows: dim "estate" / "building" / "item"
 *   arrears         s(estate) t(due_ms)             -> Arrears      open amounts by due day (aging)
 *   billable        s(estate) s(unit_id)            -> Billable     keys handed: monthly runs bill it
 *   runs            s(estate) s(period)             -> Run
 *   waiting         s(estate) s(unit_id)            -> QueueItem    check-ins waiting for a fee schedule
 *   calls, visits, letters, escalations
 *                   s(invoice or instalment) s(step) -> QueueItem   dunning tasks for people
 *   unmatched       s(file) u(line)                 -> QueueItem    reconciliation lines a person must look at
 *   unmatched_refs  s(external_ref)                 -> s(file) u(line) of its unmatched line
 *
 * Timers: "billing.dunning" keyed by invoice or instalment id (its next
 * ladder step), "billing.run" keyed "ESTATE/PERIOD" (the next chunk of a
 * monthly run), "billing.waiting" (check-ins waiting for a schedule that the
 * schedule file may now cover). */
#ifndef BILLING_H
#define BILLING_H

#include "pm/daemon.h"
#include "billing_store.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

enum {
    BILLING_UNITS = PM_DB_FIRST_DOMAIN,
    BILLING_ACCOUNTS,
    BILLING_SCHEDULES,
    BILLING_INVOICES,
    BILLING_UNIT_INVOICES,
    BILLING_UNIT_PERIODS,
    BILLING_PAYMENTS,
    BILLING_UNIT_PAYMENTS,
    BILLING_REFS,
    BILLING_NUMBERS,
    BILLING_COLLECTION,
    BILLING_ARREARS,
    BILLING_BILLABLE,
    BILLING_RUNS,
    BILLING_WAITING,
    BILLING_CALLS,
    BILLING_VISITS,
    BILLING_LETTERS,
    BILLING_ESCALATIONS,
    BILLING_UNMATCHED,
    BILLING_UNMATCHED_REFS,
    BILLING_NTABLES
};

extern const pm_daemon_spec_t billing_spec;

#define BILLING_TIMER_DUNNING "billing.dunning"
#define BILLING_TIMER_RUN "billing.run"
#define BILLING_TIMER_WAITING "billing.waiting"
#define BILLING_MAX_STEPS 12
#define BILLING_DAY_MS (86400LL * 1000)

/* What a step of the ladder does. */
enum {
    BILLING_ACT_MESSAGE = 0, /* a message to the owner (notify sends it) */
    BILLING_ACT_CALL,        /* a phone call: a task in `calls` */
    BILLING_ACT_VISIT,       /* a visit: a task in `visits` */
    BILLING_ACT_LETTER,      /* 正式催缴函: a message and a task in `letters` */
    BILLING_ACT_ESCALATION,  /* to a manager: a task in `escalations` */
    BILLING_NACTS
};

typedef struct {
    char label[12]; /* "T-7", "T+3" */
    int32_t days;   /* offset from the due date */
    int action;     /* BILLING_ACT_* */
} billing_step_t;

/* The app context (ctx->app): the [billing] config. */
typedef struct {
    int64_t utc_offset_ms;        /* the estates' time zone: +8 h */
    int32_t move_in_due_days;     /* a move-in invoice is due this many days after check-in */
    int32_t monthly_due_day;      /* a monthly invoice is due on this day of its period */
    int32_t run_chunk;            /* units per step of a monthly run */
    billing_step_t steps[BILLING_MAX_STEPS];
    uint32_t nsteps;
    char *schedule_path;          /* the schedule file, or NULL */
} billing_t;

/* --- billing.c / app.c: the config ---------------------------------------------- */

void *billing_app_new (pm_daemon_t *d, const pm_config_t *cfg);
void billing_app_destroy (void *app);
/* Parses a ladder ("T-7:message, T+3:call, ..."). false with *why (static text or
 * written into whybuf) when it is not one. */
bool billing_ladder_parse (const char *s, billing_step_t *steps, uint32_t *n, char *whybuf, size_t size);
/* The name of an action ("call"), and its queue table (-1 for message). */
const char *billing_action_name (int action);
int billing_action_table (int action);

/* --- money.c: fen arithmetic and amounts as people write them ----------------------- */

/* num / den rounded half-up (num >= 0, den > 0): the rounding rule of every line. */
int64_t billing_round_half_up (__int128 num, int64_t den);
/* One line: qty / qty_den x rate_fen x mult / mult_den, rounded half-up once.
 * -1 when it does not fit in int64. */
int64_t billing_line_fen (int64_t qty, int64_t qty_den, int64_t rate_fen, int64_t mult, int64_t mult_den);
/* "3240", "3240.5", "3,240.50", "¥3240.50" -> fen. Zero allowed only when
 * allow_zero. false with *why (static text) when it is not an amount. */
bool billing_yuan_parse (const char *s, bool allow_zero, int64_t *fen, const char **why);
/* Whole fen as text ("324000"). */
bool billing_fen_parse (const char *s, int64_t *fen, const char **why);
/* "3,240.00" (no currency sign; "-" for negatives). Returns buf (size >= 32). */
const char *billing_yuan_fmt (int64_t fen, char *buf, size_t size);
/* "¥3,240.00" in arena memory. */
char *billing_yuan (pm_arena_t *a, int64_t fen);
/* The amount in Chinese capitals as written on receipts (人民币叁仟贰佰肆拾元整). Returns buf. */
const char *billing_amount_words (int64_t fen, char *buf, size_t size);
/* An area in cm2 as "89.50". Returns buf (size >= 32). */
const char *billing_area_fmt (int64_t area_cm2, char *buf, size_t size);

/* --- dates.c: the estate's calendar ---------------------------------------------- */

int64_t billing_days_from_civil (int y, int m, int d);
void billing_civil_from_days (int64_t days, int *y, int *m, int *d);
int billing_days_in_month (int y, int m);
/* "2026-12-05" (also 2026/12/05, 20261205). */
bool billing_date_parse (const char *s, int *y, int *m, int *d);
/* "2026-12". */
bool billing_period_parse (const char *s, int *y, int *m);
/* Local midnight of y-m-d, in ms since the epoch. */
int64_t billing_local_ms (const billing_t *b, int y, int m, int d);
void billing_local_date (const billing_t *b, int64_t ms, int *y, int *m, int *d);
/* Months since year 0 (for comparing and stepping periods). */
static inline int
billing_month_index (int y, int m)
{
    return y * 12 + (m - 1);
}
/* "2026-12" of an index, into buf (size >= 16). */
const char *billing_period_fmt (int index, char *buf, size_t size);
/* The period (month) of a time, "2026-12", in arena memory. */
char *billing_period_of (pm_arena_t *a, const billing_t *b, int64_t ms);
/* "2026-12-05" of a time, in arena memory. */
char *billing_date_of (pm_arena_t *a, const billing_t *b, int64_t ms);
/* A payment time as banks and cashiers write it: "2026-12-20", "2026-12-20
 * 10:15[:30]", "2026/12/20 10:15", "20261220101530" (estate time), or RFC
 * 3339 with Z or an offset. */
bool billing_time_parse (const billing_t *b, const char *s, int64_t *ms);

/* --- keys.c: ids and keys ------------------------------------------------------- */

/* "INV-E01-000123" -> estate "E01" (into estate[size]) and 123. false when not one. */
bool billing_doc_parse (const char *id, const char *prefix, char *estate, size_t size, uint64_t *no);
/* "INV-E01-000123" in arena memory. */
char *billing_doc_id (pm_arena_t *a, const char *prefix, const char *estate, uint64_t no);
/* The next number of a kind ("INV", "PAY", "RFD") in an estate: gapless, since
 * it is taken in the command's own transaction. */
uint64_t billing_next_no (pm_txn_t *txn, const char *kind, const char *estate);
/* Estate of a unit id ("E01/3-1201" -> "E01"), in arena memory; NULL when malformed. */
char *billing_unit_estate (pm_arena_t *a, const char *unit_id);

/* --- schedules.c ---------------------------------------------------------------- */

/* A schedule request checked into a FeeSchedule (arena). false with *field,
 * *value and *why set when it is refused. */
bool billing_schedule_check (pm_ctx_t *ctx, const Pm__V1__BillingScheduleSetRequest *q, Pm__V1__FeeSchedule *out,
                             const char **field, const char **value, const char **why);
/* Reads the schedule file into the store (versions from the file replace
 * file versions, never ones set by a request). PM_OK, or an error after
 * logging "file:line: ..." (the daemon does not start). Sets *changed. */
/* The schedule file's path: relative to the config file's directory when the
 * config came from a file, else to the working directory. Caller frees. */
char *billing_schedule_path (const pm_config_t *cfg, const char *path);
int billing_schedule_file_load (pm_daemon_t *d, const billing_t *b, const char *path, bool *changed);
/* The version in force at at_ms. PM_OK, PM_ENOTFOUND. */
int billing_schedule_at (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, int64_t at_ms,
                         Pm__V1__FeeSchedule **out);
/* 物业费 rate for a unit type (fen per m2 per month). */
int64_t billing_property_rate (const Pm__V1__FeeSchedule *s, const char *unit_type);
int billing_on_schedule_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_schedule_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- units.c: intake's events ------------------------------------------------------ */

int billing_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int billing_on_checked_in (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int billing_on_keys_handed (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
/* The unit's account (a new one in arena memory when absent; *fresh set). */
Pm__Billing__Account *billing_account (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, bool *fresh);
void billing_account_save (pm_txn_t *txn, const Pm__Billing__Account *a);
/* The unit as projected, or NULL. */
Pm__Billing__UnitRecord *billing_unit (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id);
/* Issues the move-in invoices of the units waiting for a schedule of estate
 * (NULL: every estate) that now have one. Returns how many were issued. */
uint32_t billing_issue_waiting (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *estate);
int billing_on_waiting_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                              pm_out_t *out);

/* --- invoices.c: issuing ---------------------------------------------------------- */

/* A new invoice: what the caller computed. Lines and states are parallel. */
typedef struct {
    const char *unit_id, *estate_id, *building;
    const char *kind;                 /* "move_in" or "monthly" */
    const char *period;               /* monthly: its period; move-in: "" */
    const char *collection_period;    /* the period its 收缴率 counts under */
    Pm__V1__InvoiceLine **lines;
    bool *deposit;
    size_t nlines;
    int64_t due_ms;
} billing_new_invoice_t;

/* Issues an invoice: the next number of its estate, the unit's credit applied
 * (acct->credit_fen reduced; the caller saves acct), the counters, the
 * arrears, the first step of its ladder, and billing.invoice.issued (and
 * .settled when credit paid it all). *rec_out (may be NULL) is the record. */
int billing_issue (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const billing_new_invoice_t *in,
                   Pm__Billing__Account *acct, Pm__Billing__InvoiceRecord **rec_out);
/* The move-in invoice's lines for a unit checked in at at_ms under sched; sets
 * *prepaid_from and *prepaid_to (period indexes; to < from when none). */
size_t billing_move_in_lines (pm_ctx_t *ctx, const Pm__V1__FeeSchedule *s, const Pm__Billing__UnitRecord *u,
                              int64_t at_ms, Pm__V1__InvoiceLine ***lines, bool **deposit, int *prepaid_from,
                              int *prepaid_to);
/* A monthly invoice's lines for period index pi; from_ms (keys handed) prorates
 * the first month. */
size_t billing_monthly_lines (pm_ctx_t *ctx, const Pm__V1__FeeSchedule *s, const Pm__Billing__UnitRecord *u, int pi,
                              int64_t from_ms, Pm__V1__InvoiceLine ***lines, bool **deposit);
/* Issues a unit's move-in invoice (checked in at at_ms), or queues it in
 * `waiting` when no schedule is in force. Does nothing when it has one. */
int billing_issue_move_in (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *unit_id, int64_t at_ms);
/* Loads an invoice by id. PM_OK, PM_ENOTFOUND, PM_EINVAL (not an invoice id), PM_EPROTO. */
int billing_invoice_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *invoice_id, Pm__Billing__InvoiceRecord **rec);
void billing_invoice_save (pm_txn_t *txn, const Pm__Billing__InvoiceRecord *rec);
/* Emits the invoice as it stands under type ("billing.invoice.updated"). */
int billing_invoice_emit (pm_out_t *out, pm_txn_t *txn, const Pm__Billing__InvoiceRecord *rec, const char *type);
/* State name as people read it ("PARTIALLY_PAID"). */
const char *billing_state_name (int state);

/* --- ledger.c: the books ---------------------------------------------------------- */

/* Adds to the collection rows of a period: with item NULL, the estate's row
 * and its building's (building may be ""); with an item, that item's row. */
void billing_count (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *period, const char *building,
                    const char *item, int64_t billed, int64_t collected, int invoices, int settled);
/* Moves open_fen and invoices by delta in the arrears row of (estate, due day). */
void billing_arrears_add (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, int64_t due_ms, int64_t open_delta,
                          int count_delta);
/* Applies up to amount fen to the invoice (credit: from the unit's credit),
 * lines in order and instalments by due date; keeps counters and arrears;
 * when the invoice (or an instalment) is settled, stops its ladder and
 * drops its tasks. Returns what was applied. The caller saves and emits. */
int64_t billing_apply (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Billing__InvoiceRecord *rec, int64_t amount, bool credit);

/* --- dunning.c ---------------------------------------------------------------------- */

/* Arms the ladder of a new or re-planned invoice: its first step whose instant
 * is after now (for the invoice, or each open instalment). */
void billing_ladder_start (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Billing__InvoiceRecord *rec);
/* Stops a ladder: the invoice's own (part 0) or an instalment's: cancels its
 * timer and drops its waiting tasks. */
void billing_ladder_stop (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Billing__InvoiceRecord *rec, uint32_t part);
/* The open amount of an instalment. */
int64_t billing_part_open (const Pm__Billing__Part *p);
int billing_on_dunning_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                              pm_out_t *out);
int billing_on_dunning_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_instalment_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* The parts of an invoice as shown (arena). */
Pm__V1__BillingInstalmentPart **billing_parts_view (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Billing__InvoiceRecord *rec,
                                                    size_t *n);
/* The step the ladder of key fires next ("" when none) and when. */
const char *billing_next_step (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, uint32_t step, int64_t *at_ms);

/* --- payments.c --------------------------------------------------------------------- */

typedef struct {
    const char *invoice_id;   /* or */
    const char *unit_id;
    int64_t amount_fen;
    const char *channel;
    const char *external_ref;
    int64_t paid_at_ms;
    bool allow_credit;
    const char *payer;
    Pm__Billing__InvoiceRecord *invoice; /* optional: invoice_id's record, loaded by the caller in this txn */
    bool ref_unused;                     /* the caller found (channel, external_ref) unused in this txn */
} billing_pay_t;

typedef struct {
    Pm__V1__Payment *payment;           /* the payment recorded (or found) */
    bool already;                       /* (channel, ref) was recorded before */
    Pm__Billing__InvoiceRecord **invoices; /* the invoices it paid */
    size_t ninvoices;
    int64_t credit_fen;                 /* the unit's credit after */
} billing_paid_t;

/* Records a payment: validated first (nothing written on a refusal), then
 * applied. Returns a status; the reply message is set on refusal. */
int billing_pay (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const billing_pay_t *p, billing_paid_t *res);
/* Whether a channel is one billing knows. */
bool billing_channel_valid (const char *channel);
/* A payment by id. PM_OK, PM_ENOTFOUND, PM_EINVAL. */
int billing_payment_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *payment_id, Pm__V1__Payment **p);
int billing_on_payment_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_deposit_refund (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_receipt_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- reconcile.c ------------------------------------------------------------------- */

int billing_on_reconcile (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_reconcile_resolve (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* A payment recorded by hand for a reference that waits as an unmatched line
 * takes that line out of the queue. */
void billing_unmatched_settle (pm_txn_t *txn, const char *external_ref);

/* --- runs.c ------------------------------------------------------------------------- */

int billing_on_run (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_run_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_run_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                          pm_out_t *out);

/* --- reports.c ------------------------------------------------------------------------ */

int billing_on_report_collection (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_report_aging (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void billing_gauges (pm_ctx_t *ctx, pm_txn_t *txn);
/* collected / billed in basis points, rounded half-up (0 when nothing was billed). */
uint32_t billing_rate_bp (int64_t collected, int64_t billed);

/* --- reads.c ---------------------------------------------------------------------------- */

int billing_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_unit_statement (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int billing_on_invoice_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void billing_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
int billing_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap);

#endif
