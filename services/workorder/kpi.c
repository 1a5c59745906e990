/* kpi.c - the service KPIs, exact, from counters kept in the write path.
 *
 * Every fact that a KPI counts (a creation, a first arrival, a first
 * completion, a deadline decided, a confirmation, a rejection, a breach, a
 * cancellation) adds to one bucket per grouping of its order - the whole
 * estate, its team, its technician, its category - for one local day. A
 * period is the sum of its days' buckets, so workorder.kpi reads a few rows
 * per group and day and never an order. The definitions are in README.md:
 *
 *   及时率 (on-time rate) = on_time / due: orders whose complete-by fell in
 *       the period, counted once decided (done, or the deadline passed first),
 *       on time when the first DONE came by the complete-by;
 *   合格率 (first-pass rate) = first_pass / confirmed: orders confirmed in the
 *       period that were never rejected nor reopened;
 *   mean time to respond (first arrival - creation) and to complete (first
 *       DONE - creation), over the orders that reached it in the period;
 *   satisfaction: the mean of the owners' scores given in the period.
 *
 * A fact is attributed to the technician and team holding the order when it
 * happens ("(none)" before the first assignment). */
#include "workorder.h"
#include "pm/err.h"

#include <stdio.h>
#include <string.h>

#define S_NONE "(none)"

static const char *const s_groups[] = { "estate", "team", "technician", "category", NULL };

/* The same counters in three shapes: the stored message, the signed delta, a row. */
#define S_FIELDS(X)                                                                                                    \
    X (due)                                                                                                            \
    X (on_time)                                                                                                        \
    X (confirmed)                                                                                                      \
    X (first_pass)                                                                                                     \
    X (responded)                                                                                                      \
    X (respond_ms_sum)                                                                                                 \
    X (completed)                                                                                                      \
    X (complete_ms_sum)                                                                                                \
    X (rated)                                                                                                          \
    X (satisfaction_sum)                                                                                               \
    X (created)                                                                                                        \
    X (cancelled)                                                                                                      \
    X (rejected)                                                                                                       \
    X (respond_breaches)                                                                                               \
    X (complete_breaches)

static void
s_add_one (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *group, const char *value, uint32_t day,
           const wo_kpi_t *d)
{
    pm_key_t k;
    pm_key (&k, "sssu", estate, group, value, day);
    Pm__Workorder__KpiCounts *c;
    if (pm_txn_get_msg (txn, WO_KPI, &k, &pm__workorder__kpi_counts__descriptor, &c) != PM_OK) {
        c = pm_arena_alloc (ctx->arena, sizeof *c);
        pm__workorder__kpi_counts__init (c);
    }
#define S_ADD(f) c->f = (__typeof__ (c->f)) ((int64_t) c->f + d->f);
    S_FIELDS (S_ADD)
#undef S_ADD
    pm_txn_put_msg (txn, WO_KPI, &k, &c->base);
}

void
wo_kpi_add (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__WorkOrder *o, int64_t at_ms, const wo_kpi_t *k)
{
    uint32_t day = (uint32_t) wo_day (ctx->app, at_ms);
    s_add_one (ctx, txn, o->estate_id, "estate", "", day, k);
    s_add_one (ctx, txn, o->estate_id, "team", *o->team ? o->team : S_NONE, day, k);
    s_add_one (ctx, txn, o->estate_id, "technician", *o->technician ? o->technician : S_NONE, day, k);
    s_add_one (ctx, txn, o->estate_id, "category", o->category, day, k);
}

/* Adds stored counts c to row r. */
static void
s_sum (Pm__V1__KpiRow *r, const Pm__Workorder__KpiCounts *c)
{
#define S_SUM(f) r->f += c->f;
    S_FIELDS (S_SUM)
#undef S_SUM
}

static void
s_sum_row (Pm__V1__KpiRow *r, const Pm__V1__KpiRow *c)
{
#define S_SUM(f) r->f += c->f;
    S_FIELDS (S_SUM)
#undef S_SUM
}

/* The rates and means of a row from its counts. */
static void
s_finish (Pm__V1__KpiRow *r)
{
    r->on_time_rate = r->due ? (double) r->on_time / (double) r->due : 0;
    r->first_pass_rate = r->confirmed ? (double) r->first_pass / (double) r->confirmed : 0;
    r->mean_respond_ms = r->responded ? r->respond_ms_sum / (int64_t) r->responded : 0;
    r->mean_complete_ms = r->completed ? r->complete_ms_sum / (int64_t) r->completed : 0;
    r->mean_satisfaction = r->rated ? (double) r->satisfaction_sum / (double) r->rated : 0;
}

static Pm__V1__KpiRow *
s_row (pm_ctx_t *ctx, const char *estate, const char *group)
{
    Pm__V1__KpiRow *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__kpi_row__init (r);
    r->estate_id = pm_arena_strdup (ctx->arena, estate);
    r->group = pm_arena_strdup (ctx->arena, group);
    return r;
}

/* The estate's group rows over days [from, to], appended to rows (arena vector). */
static void
s_estate_rows (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *group, int64_t from, int64_t to,
               Pm__V1__KpiRow ***rows, size_t *n, size_t *cap)
{
    pm_key_t k, end;
    pm_scan_t s;
    if (strcmp (group, "estate") == 0) {
        Pm__V1__KpiRow *r = s_row (ctx, estate, "");
        pm_key (&k, "sssu", estate, "estate", "", (uint32_t) from);
        pm_key (&end, "sssu", estate, "estate", "", (uint32_t) to + 1);
        for (pm_scan_range (&s, txn, WO_KPI, &k, &end); s.ok; pm_scan_next (&s)) {
            Pm__Workorder__KpiCounts *c;
            if (pm_scan_msg (&s, &pm__workorder__kpi_counts__descriptor, &c) == PM_OK)
                s_sum (r, c);
        }
        pm_scan_end (&s);
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            Pm__V1__KpiRow **nv = pm_arena_alloc (ctx->arena, *cap * sizeof *nv);
            if (*n)
                memcpy (nv, *rows, *n * sizeof *nv);
            *rows = nv;
        }
        (*rows)[(*n)++] = r;
        return;
    }
    Pm__V1__KpiRow *r = NULL;
    for (pm_scan_prefix (&s, txn, WO_KPI, pm_key (&k, "ss", estate, group)); s.ok; pm_scan_next (&s)) {
        const char *value;
        uint32_t day;
        Pm__Workorder__KpiCounts *c;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sssu", NULL, NULL, &value, &day) != PM_OK || day < from
            || day > to || pm_scan_msg (&s, &pm__workorder__kpi_counts__descriptor, &c) != PM_OK)
            continue;
        if (!r || strcmp (r->group, value) != 0) { /* keys sort by value, then day */
            r = s_row (ctx, estate, value);
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 16;
                Pm__V1__KpiRow **nv = pm_arena_alloc (ctx->arena, *cap * sizeof *nv);
                if (*n)
                    memcpy (nv, *rows, *n * sizeof *nv);
                *rows = nv;
            }
            (*rows)[(*n)++] = r;
        }
        s_sum (r, c);
    }
    pm_scan_end (&s);
}

int
wo_on_kpi (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderKpiRequest *b = req->workorder_kpi;
    int64_t from, to;
    if (!wo_date_parse (b->from, &from))
        return pm_reply (out, PM__V1__STATUS__INVALID, "from '%s': expected a local date such as 2026-12-01", b->from);
    if (!*b->to)
        to = from;
    else if (!wo_date_parse (b->to, &to))
        return pm_reply (out, PM__V1__STATUS__INVALID, "to '%s': expected a local date such as 2026-12-31", b->to);
    if (to < from)
        return pm_reply (out, PM__V1__STATUS__INVALID, "to %s is before from %s", b->to, b->from);
    if (to - from > 3660)
        return pm_reply (out, PM__V1__STATUS__INVALID, "from %s to %s: more than ten years; ask for less", b->from,
                         b->to);
    const char *group = *b->group_by ? b->group_by : "estate";
    bool known = false;
    for (int i = 0; s_groups[i]; i++)
        known = known || strcmp (group, s_groups[i]) == 0;
    if (!known)
        return pm_reply (out, PM__V1__STATUS__INVALID, "group_by '%s': expected estate, team, technician or category",
                         b->group_by);
    pm_key_t k;
    if (*b->estate_id && !pm_txn_has (txn, WO_STATS, pm_key (&k, "s", b->estate_id)))
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "estate_id: workorder has no orders in '%s'", b->estate_id);

    Pm__V1__WorkorderKpiReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__workorder_kpi_reply__init (r);
    char f[16], t[16];
    r->from = pm_arena_strdup (ctx->arena, wo_date_format (from, f, sizeof f));
    r->to = pm_arena_strdup (ctx->arena, wo_date_format (to, t, sizeof t));
    r->group_by = (char *) group;
    size_t cap = 0;
    if (*b->estate_id)
        s_estate_rows (ctx, txn, b->estate_id, group, from, to, &r->rows, &r->n_rows, &cap);
    else {
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, WO_STATS, NULL); s.ok; pm_scan_next (&s)) {
            const char *e;
            if (pm_key_parse (s.key.mv_data, s.key.mv_size, "s", &e) == PM_OK)
                s_estate_rows (ctx, txn, pm_arena_strdup (ctx->arena, e), group, from, to, &r->rows, &r->n_rows, &cap);
        }
        pm_scan_end (&s);
    }
    r->total = s_row (ctx, *b->estate_id ? b->estate_id : "", "");
    for (size_t i = 0; i < r->n_rows; i++) {
        s_sum_row (r->total, r->rows[i]);
        s_finish (r->rows[i]);
    }
    s_finish (r->total);
    pm_reply_body (out, &r->base);
    const Pm__V1__KpiRow *T = r->total;
    return pm_reply (out, PM__V1__STATUS__OK,
                     "%s %s to %s: 及时率 %.2f%% (%llu of %llu due), 合格率 %.2f%% (%llu of %llu confirmed), "
                     "satisfaction %.2f (%llu scores)",
                     *b->estate_id ? b->estate_id : "all estates", r->from, r->to, 100 * T->on_time_rate,
                     (unsigned long long) T->on_time, (unsigned long long) T->due, 100 * T->first_pass_rate,
                     (unsigned long long) T->first_pass, (unsigned long long) T->confirmed, T->mean_satisfaction,
                     (unsigned long long) T->rated);
}

/* --- gauges (ops.metrics) ---------------------------------------------------------------------- */

#define S_WINDOW_DAYS 30

void
wo_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    static const char *const qnames[WO_NQUEUES] = { "unassigned", "about_to_breach", "breached", "unsigned",
                                                    "rejected_twice" };
    pm_metrics_t *m = ctx->metrics;
    pm_gauge (m, "workorder_units", NULL, "Units in workorder's projection of intake's units",
              (double) pm_txn_count (txn, WO_UNITS));
    pm_gauge (m, "workorder_technicians", NULL, "Technicians on the roster", (double) pm_txn_count (txn, WO_STAFF));
    pm_gauge (m, "workorder_timers", NULL, "Durable timers armed (SLA deadlines and sign-off reminders)",
              (double) pm_txn_count (txn, PM_DB_TIMER_INDEX));
    int64_t today = wo_day (ctx->app, ctx->now_ms);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, WO_STATS, NULL); s.ok; pm_scan_next (&s)) {
        const char *e;
        Pm__Workorder__StatsRecord *st;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "s", &e) != PM_OK
            || pm_scan_msg (&s, &pm__workorder__stats_record__descriptor, &st) != PM_OK)
            continue;
        e = pm_arena_strdup (ctx->arena, e);
        uint64_t open = 0;
        for (int state = PM__V1__ORDER_STATE__ORDER_OPEN; state <= PM__V1__ORDER_STATE__CANCELLED; state++) {
            uint64_t v = (size_t) state < st->n_by_state ? st->by_state[state] : 0;
            if (wo_is_active (state))
                open += v;
            pm_gauge (m, "workorder_orders", pm_arena_printf (ctx->arena, "estate=\"%s\",state=\"%s\"", e,
                                                             wo_state_name (state)),
                      "Work orders by estate and state", (double) v);
        }
        pm_gauge (m, "workorder_open_orders", pm_arena_printf (ctx->arena, "estate=\"%s\"", e),
                  "Orders not yet done (OPEN, ASSIGNED, IN_PROGRESS)", (double) open);
        for (int q = 0; q < WO_NQUEUES; q++)
            pm_gauge (m, "workorder_queue", pm_arena_printf (ctx->arena, "estate=\"%s\",queue=\"%s\"", e, qnames[q]),
                      "Orders waiting in each queue (ops.queues)",
                      (double) ((size_t) q < st->n_by_queue ? st->by_queue[q] : 0));
        Pm__V1__KpiRow **rows = NULL;
        size_t n = 0, cap = 0;
        s_estate_rows (ctx, txn, e, "estate", today - (S_WINDOW_DAYS - 1), today, &rows, &n, &cap);
        Pm__V1__KpiRow *r = rows[0];
        s_finish (r);
        const char *l = pm_arena_printf (ctx->arena, "estate=\"%s\"", e);
        pm_gauge (m, "workorder_due_30d", l, "Orders due in the last 30 local days (decided)", (double) r->due);
        pm_gauge (m, "workorder_on_time_rate", l, "及时率 over the last 30 local days (1 when nothing was due)",
                  r->due ? r->on_time_rate : 1.0);
        pm_gauge (m, "workorder_confirmed_30d", l, "Orders confirmed in the last 30 local days", (double) r->confirmed);
        pm_gauge (m, "workorder_first_pass_rate", l,
                  "合格率 over the last 30 local days (1 when nothing was confirmed)",
                  r->confirmed ? r->first_pass_rate : 1.0);
        pm_gauge (m, "workorder_respond_mean_seconds", l, "Mean time to respond over the last 30 local days",
                  (double) r->mean_respond_ms / 1000.0);
        pm_gauge (m, "workorder_complete_mean_seconds", l, "Mean time to complete over the last 30 local days",
                  (double) r->mean_complete_ms / 1000.0);
        pm_gauge (m, "workorder_satisfaction_mean", l, "Owners' mean satisfaction (1-5) over the last 30 local days",
                  r->mean_satisfaction);
    }
    pm_scan_end (&s);
}
