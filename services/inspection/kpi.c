/* kpi.c - the figures a property company reports to the developer (承接查验
 * feedback), kept exact by counting in the write path.
 *
 * Every change that moves a KPI adds to a counter of the unit's estate and of
 * its building in the same transaction (table kpi: estate, building, name ->
 * u64; building "" is the estate as a whole). A read never scans units or
 * defects: inspection.kpi reads one estate's counters (a few dozen keys per
 * building), so it costs the same for 100 units or 100,000.
 *
 * Counters and what adds to them:
 *   units            a unit first seen (intake.unit.registered / checked_in)
 *   opened           an inspection opened (check-in or inspection.open)
 *   inspected        a unit's round 1 started
 *   first_completed  a unit's round 1 completed;  first_passed: ... and passed
 *   passed           a unit's inspection passed (a round with every defect verified)
 *   accepted         the owner accepted with open defects
 *   failed_twice     a unit's second failed round
 *   rounds_open      +1 at round start, -1 at completion
 *   defects          a defect recorded; cat:<category> and room:<room> with it
 *   defects_open     +1 recorded, -1 verified
 *   verified         a defect verified; verify_ms adds verified_ms - recorded_ms
 *   overdue          inspection.defect.overdue emitted; overdue_open: +1 then,
 *                    -1 when that defect is rectified or verified
 * The rates are computed from them when read:
 *   first_time_pass_rate = first_passed / first_completed
 *   defects_per_unit     = defects / inspected (by category and room likewise)
 *   mean_days_to_verify  = verify_ms / verified / 86,400,000 */
#include "inspection.h"
#include "pm/metrics.h"

#include <string.h>

static void
s_add (pm_txn_t *txn, const char *estate_id, const char *building, const char *name, int64_t delta)
{
    pm_key_t k;
    MDB_val v;
    pm_key (&k, "sss", estate_id, building, name);
    uint64_t n = pm_txn_get_key (txn, INSP_KPI, &k, &v) == PM_OK && v.mv_size == 8 ? pm_be_u64 (v.mv_data) : 0;
    unsigned char buf[8];
    pm_u64_be (n + (uint64_t) delta, buf);
    pm_txn_put_key (txn, INSP_KPI, &k, buf, sizeof buf);
}

void
inspection_kpi_add (pm_txn_t *txn, const char *estate_id, const char *building, const char *name, int64_t delta)
{
    if (!delta || !*estate_id)
        return;
    s_add (txn, estate_id, "", name, delta);
    if (*building)
        s_add (txn, estate_id, building, name, delta);
}

/* --- reading them ----------------------------------------------------------- */

/* The counters of one estate's building (or of the estate), as read. */
typedef struct {
    Pm__V1__InspectionKpi *kpi;
    size_t cat_cap, room_cap;
} s_fig_t;

static Pm__V1__InspectionKpi *
s_kpi_new (pm_ctx_t *ctx, const char *building)
{
    Pm__V1__InspectionKpi *k = pm_arena_alloc (ctx->arena, sizeof *k);
    pm__v1__inspection_kpi__init (k);
    k->building = pm_arena_strdup (ctx->arena, building);
    return k;
}

static void
s_count_add (pm_ctx_t *ctx, Pm__V1__DefectCount ***arr, size_t *n, size_t *cap, const char *name, uint64_t count)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        Pm__V1__DefectCount **a = pm_arena_alloc (ctx->arena, ncap * sizeof *a);
        if (*n)
            memcpy (a, *arr, *n * sizeof *a);
        *arr = a;
        *cap = ncap;
    }
    Pm__V1__DefectCount *c = pm_arena_alloc (ctx->arena, sizeof *c);
    pm__v1__defect_count__init (c);
    c->name = pm_arena_strdup (ctx->arena, name);
    c->count = count;
    (*arr)[(*n)++] = c;
}

static void
s_set (pm_ctx_t *ctx, s_fig_t *f, const char *name, uint64_t v)
{
    Pm__V1__InspectionKpi *k = f->kpi;
    if (strncmp (name, "cat:", 4) == 0)
        s_count_add (ctx, &k->by_category, &k->n_by_category, &f->cat_cap, name + 4, v);
    else if (strncmp (name, "room:", 5) == 0)
        s_count_add (ctx, &k->by_room, &k->n_by_room, &f->room_cap, name + 5, v);
    else if (!strcmp (name, "units"))
        k->units = v;
    else if (!strcmp (name, "opened"))
        k->units_opened = v;
    else if (!strcmp (name, "inspected"))
        k->units_inspected = v;
    else if (!strcmp (name, "first_completed"))
        k->first_rounds_completed = v;
    else if (!strcmp (name, "first_passed"))
        k->first_rounds_passed = v;
    else if (!strcmp (name, "passed"))
        k->units_passed = v;
    else if (!strcmp (name, "accepted"))
        k->units_accepted_with_defects = v;
    else if (!strcmp (name, "failed_twice"))
        k->units_failed_twice = v;
    else if (!strcmp (name, "defects"))
        k->defects = v;
    else if (!strcmp (name, "defects_open"))
        k->defects_open = v;
    else if (!strcmp (name, "verified"))
        k->defects_verified = v;
    else if (!strcmp (name, "verify_ms"))
        k->verify_ms_total = (int64_t) v;
    else if (!strcmp (name, "overdue"))
        k->overdue = v;
    else if (!strcmp (name, "overdue_open"))
        k->overdue_open = v;
}

/* The rates, from the counts; categories in the order of the 验房 form. */
static void
s_finish (Pm__V1__InspectionKpi *k)
{
    k->first_time_pass_rate =
        k->first_rounds_completed ? (double) k->first_rounds_passed / (double) k->first_rounds_completed : 0;
    k->defects_per_unit = k->units_inspected ? (double) k->defects / (double) k->units_inspected : 0;
    k->mean_days_to_verify =
        k->defects_verified ? (double) k->verify_ms_total / (double) k->defects_verified / 86400000.0 : 0;
    for (size_t i = 0; i < k->n_by_category; i++)
        k->by_category[i]->per_unit =
            k->units_inspected ? (double) k->by_category[i]->count / (double) k->units_inspected : 0;
    for (size_t i = 0; i < k->n_by_room; i++)
        k->by_room[i]->per_unit = k->units_inspected ? (double) k->by_room[i]->count / (double) k->units_inspected : 0;
    /* counters are keyed by name bytes: put categories in the form's order */
    size_t out = 0;
    for (size_t c = 0; c < inspection_ncategories; c++)
        for (size_t i = out; i < k->n_by_category; i++)
            if (strcmp (k->by_category[i]->name, inspection_categories[c]) == 0) {
                Pm__V1__DefectCount *t = k->by_category[out];
                k->by_category[out++] = k->by_category[i];
                k->by_category[i] = t;
                break;
            }
}

/* Calls fn for the estate and each of its buildings (counters read, rates
 * computed); estate_id NULL walks every estate. Returns how many were found. */
static size_t
s_walk (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate_id,
        void (*fn) (pm_ctx_t *ctx, const char *estate, Pm__V1__InspectionKpi *k, void *arg), void *arg)
{
    pm_key_t k;
    pm_scan_t s;
    char *cur_estate = NULL, *cur_building = NULL;
    s_fig_t f = { NULL, 0, 0 };
    size_t n = 0;
    for (pm_scan_prefix (&s, txn, INSP_KPI, estate_id ? pm_key (&k, "s", estate_id) : NULL); s.ok; pm_scan_next (&s)) {
        const char *e, *b, *name;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sss", &e, &b, &name) != PM_OK || s.val.mv_size != 8)
            continue;
        if (!cur_estate || strcmp (e, cur_estate) || strcmp (b, cur_building)) {
            if (f.kpi) {
                s_finish (f.kpi);
                fn (ctx, cur_estate, f.kpi, arg);
            }
            cur_estate = pm_arena_strdup (ctx->arena, e);
            cur_building = pm_arena_strdup (ctx->arena, b);
            f = (s_fig_t) { s_kpi_new (ctx, b), 0, 0 };
            n++;
        }
        s_set (ctx, &f, name, pm_be_u64 (s.val.mv_data));
    }
    pm_scan_end (&s);
    if (f.kpi) {
        s_finish (f.kpi);
        fn (ctx, cur_estate, f.kpi, arg);
    }
    return n;
}

static void
s_collect (pm_ctx_t *ctx, const char *estate, Pm__V1__InspectionKpi *k, void *arg)
{
    Pm__V1__InspectionKpiReply *r = arg;
    if (!*k->building) {
        r->estate = k;
        return;
    }
    Pm__V1__InspectionKpi **a = pm_arena_alloc (ctx->arena, (r->n_buildings + 1) * sizeof *a);
    if (r->n_buildings)
        memcpy (a, r->buildings, r->n_buildings * sizeof *a);
    a[r->n_buildings++] = k;
    r->buildings = a;
}

int
inspection_on_kpi (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *estate = req->inspection_kpi->estate_id;
    if (!*estate)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate such as E01");
    Pm__V1__InspectionKpiReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_kpi_reply__init (r);
    r->estate_id = (char *) estate;
    if (s_walk (ctx, txn, estate, s_collect, r) == 0 || !r->estate)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "estate_id: inspection knows no unit of estate '%s' (units come from intake's events)", estate);
    pm_reply_body (out, &r->base);
    const Pm__V1__InspectionKpi *k = r->estate;
    return pm_reply (out, PM__V1__STATUS__OK,
                     "%s: %llu units, %llu inspected; first-time pass rate %.1f%% (%llu/%llu); %.2f defects per unit; "
                     "%llu verified in %.1f days on average; %llu overdue (%llu still open)",
                     estate, (unsigned long long) k->units, (unsigned long long) k->units_inspected,
                     100.0 * k->first_time_pass_rate, (unsigned long long) k->first_rounds_passed,
                     (unsigned long long) k->first_rounds_completed, k->defects_per_unit,
                     (unsigned long long) k->defects_verified, k->mean_days_to_verify, (unsigned long long) k->overdue,
                     (unsigned long long) k->overdue_open);
}

/* --- gauges ----------------------------------------------------------------- */

/* value with '"' and '\' escaped, for a label (arena). */
static const char *
s_esc (pm_ctx_t *ctx, const char *v)
{
    if (!strpbrk (v, "\"\\\n"))
        return v;
    char *o = pm_arena_alloc (ctx->arena, 2 * strlen (v) + 1), *p = o;
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            *p++ = '\\';
        *p++ = *v == '\n' ? ' ' : *v;
    }
    return o;
}

/* An estate's gauges. Per building only in inspection.kpi: as gauges, a
 * million units were 5,000 buildings x 15 series, 65 MiB of the registry and
 * 77 ms a scrape. */
static void
s_gauges_of (pm_ctx_t *ctx, const char *estate, Pm__V1__InspectionKpi *k, void *arg)
{
    if (*k->building)
        return;
    const char *l = pm_arena_printf (ctx->arena, "estate=\"%s\"", s_esc (ctx, estate));
    pm_metrics_t *m = ctx->metrics;
    pm_gauge (m, "inspection_units", l, "Units known to inspection", (double) k->units);
    pm_gauge (m, "inspection_units_inspected", l, "Units whose first round started", (double) k->units_inspected);
    pm_gauge (m, "inspection_first_rounds_completed", l, "Units whose first round completed",
              (double) k->first_rounds_completed);
    pm_gauge (m, "inspection_first_rounds_passed", l, "Units whose first round passed", (double) k->first_rounds_passed);
    pm_gauge (m, "inspection_first_time_pass_rate", l, "First rounds passed / first rounds completed",
              k->first_time_pass_rate);
    pm_gauge (m, "inspection_units_passed", l, "Units whose inspection passed", (double) k->units_passed);
    pm_gauge (m, "inspection_units_accepted_with_defects", l, "Units the owner accepted with open defects",
              (double) k->units_accepted_with_defects);
    pm_gauge (m, "inspection_units_failed_twice", l, "Units with two or more failed rounds",
              (double) k->units_failed_twice);
    pm_gauge (m, "inspection_defects", l, "Defects recorded", (double) k->defects);
    pm_gauge (m, "inspection_defects_per_unit", l, "Defects recorded / units inspected", k->defects_per_unit);
    pm_gauge (m, "inspection_defects_open", l, "Defects not yet verified", (double) k->defects_open);
    pm_gauge (m, "inspection_defects_verified", l, "Defects verified", (double) k->defects_verified);
    pm_gauge (m, "inspection_mean_days_to_verify", l, "Mean days from a defect's recording to its verification",
              k->mean_days_to_verify);
    pm_gauge (m, "inspection_defects_overdue", l, "Defects that went past their rectification deadline",
              (double) k->overdue);
    pm_gauge (m, "inspection_defects_overdue_open", l, "Defects past their deadline and not yet rectified",
              (double) k->overdue_open);
    /* by category and by room: per estate here (inspection.kpi has them per building too) */
    for (size_t i = 0; i < k->n_by_category; i++)
        pm_gauge (m, "inspection_defects_by_category",
                  pm_arena_printf (ctx->arena, "%s,category=\"%s\"", l, s_esc (ctx, k->by_category[i]->name)),
                  "Defects recorded by category", (double) k->by_category[i]->count);
    for (size_t i = 0; i < k->n_by_room; i++)
        pm_gauge (m, "inspection_defects_by_room",
                  pm_arena_printf (ctx->arena, "%s,room=\"%s\"", l, s_esc (ctx, k->by_room[i]->name)),
                  "Defects recorded by room", (double) k->by_room[i]->count);
}

void
inspection_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    s_walk (ctx, txn, NULL, s_gauges_of, NULL);
    pm_gauge (ctx->metrics, "inspection_units_known", NULL, "Units known to inspection",
              (double) pm_txn_count (txn, INSP_UNITS));
    pm_gauge (ctx->metrics, "inspection_reinspections_due", NULL, "Units waiting for a re-inspection",
              (double) pm_txn_count (txn, INSP_Q_DUE));
    pm_gauge (ctx->metrics, "inspection_overdue_defects", NULL, "Defects past their deadline, not yet rectified",
              (double) pm_txn_count (txn, INSP_Q_OVERDUE));
    pm_gauge (ctx->metrics, "inspection_units_failed_twice_open", NULL,
              "Units failed twice or more and not yet passed", (double) pm_txn_count (txn, INSP_Q_FAILED));
    pm_gauge (ctx->metrics, "inspection_units_uninspected", NULL, "Open units never inspected after the limit",
              (double) pm_txn_count (txn, INSP_Q_UNINSPECTED));
}
