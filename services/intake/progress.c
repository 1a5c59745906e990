/* progress.c - intake.progress: an estate's move-in at a glance (进度跟踪).
 *
 * Read from counters only (case.c keeps them in the write path): units per
 * state per building, blocked at the key gate and on what, the waitlist,
 * notices not delivered, no-shows; today's slots against their capacity and
 * the check-ins per hour. The work is a few dozen counters per estate,
 * whatever its number of units. */
#include "intake.h"
#include "pm/err.h"

#include <stdlib.h>
#include <string.h>

#define S_NSTATES 6
#define S_DAY_MS 86400000LL

typedef struct {
    const char *building;
    uint64_t states[S_NSTATES];
    uint64_t blocked;
} s_building_t;

/* Estate totals of the counters that are not states. */
typedef struct {
    uint64_t owners, blocked, blocked_invoice, blocked_inspection, waitlist, undelivered, missed;
} s_totals_t;

static int
s_natcmp_buildings (const void *pa, const void *pb)
{
    const char *a = ((const s_building_t *) pa)->building, *b = ((const s_building_t *) pb)->building;
    /* digits as numbers: building 2 before 10 */
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            char *ea, *eb;
            unsigned long long x = strtoull (a, &ea, 10), y = strtoull (b, &eb, 10);
            if (x != y)
                return x < y ? -1 : 1;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static Pm__V1__StateCount **
s_states (pm_ctx_t *ctx, const uint64_t *counts, size_t *n)
{
    Pm__V1__StateCount **v = pm_arena_alloc (ctx->arena, S_NSTATES * sizeof *v);
    for (int i = 0; i < S_NSTATES; i++) {
        v[i] = pm_arena_alloc (ctx->arena, sizeof *v[i]);
        pm__v1__state_count__init (v[i]);
        v[i]->state = (char *) intake_state_name (i);
        v[i]->units = (uint32_t) counts[i];
    }
    *n = S_NSTATES;
    return v;
}

/* One estate's progress (arena). */
static Pm__V1__EstateProgress *
s_estate (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Intake__EstateRecord *est)
{
    intake_t *in = ctx->app;
    Pm__V1__EstateProgress *p = pm_arena_alloc (ctx->arena, sizeof *p);
    pm__v1__estate_progress__init (p);
    p->estate_id = est->estate_id;
    p->estate_name = est->estate_name;

    size_t nb = 0, cap = 16;
    s_building_t *b = pm_arena_alloc (ctx->arena, cap * sizeof *b);
    uint64_t states[S_NSTATES] = { 0 };
    s_totals_t t = { 0 };
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INTAKE_COUNTS, pm_key (&k, "s", est->estate_id)); s.ok; pm_scan_next (&s)) {
        const char *building, *name;
        if (s.val.mv_size != 8
            || pm_key_parse (s.key.mv_data, s.key.mv_size, "sss", NULL, &building, &name) != PM_OK)
            continue;
        uint64_t v = pm_be_u64 (s.val.mv_data);
        if (nb == 0 || strcmp (b[nb - 1].building, building) != 0) {
            if (nb == cap) {
                s_building_t *more = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *b);
                memcpy (more, b, cap * sizeof *b);
                b = more;
                cap *= 2;
            }
            memset (&b[nb], 0, sizeof b[nb]);
            b[nb++].building = pm_arena_strdup (ctx->arena, building);
        }
        s_building_t *x = &b[nb - 1];
        if (strncmp (name, "s:", 2) == 0) {
            for (int i = 0; i < S_NSTATES; i++)
                if (strcmp (name + 2, intake_state_name (i)) == 0) {
                    x->states[i] += v;
                    states[i] += v;
                }
        }
        else if (strcmp (name, "owners") == 0)
            t.owners += v;
        else if (strcmp (name, "blocked") == 0) {
            x->blocked += v;
            t.blocked += v;
        }
        else if (strcmp (name, "blocked:invoice") == 0)
            t.blocked_invoice += v;
        else if (strcmp (name, "blocked:inspection") == 0)
            t.blocked_inspection += v;
        else if (strcmp (name, "waitlist") == 0)
            t.waitlist += v;
        else if (strcmp (name, "undelivered") == 0)
            t.undelivered += v;
        else if (strcmp (name, "missed") == 0)
            t.missed += v;
    }
    qsort (b, nb, sizeof *b, s_natcmp_buildings);
    p->buildings = pm_arena_alloc (ctx->arena, (nb + 1) * sizeof *p->buildings);
    for (size_t i = 0; i < nb; i++) {
        uint64_t units = 0;
        for (int j = 0; j < S_NSTATES; j++)
            units += b[i].states[j];
        if (!units)
            continue;
        Pm__V1__BuildingProgress *bp = pm_arena_alloc (ctx->arena, sizeof *bp);
        pm__v1__building_progress__init (bp);
        bp->building = (char *) b[i].building;
        bp->units = (uint32_t) units;
        bp->states = s_states (ctx, b[i].states, &bp->n_states);
        bp->blocked = (uint32_t) b[i].blocked;
        p->buildings[p->n_buildings++] = bp;
    }
    for (int j = 0; j < S_NSTATES; j++)
        p->units += (uint32_t) states[j];
    p->states = s_states (ctx, states, &p->n_states);
    p->owners = (uint32_t) t.owners;
    p->no_shows = (uint32_t) states[PM__INTAKE__UNIT_STATE__NO_SHOW];
    p->keys_handed = (uint32_t) states[PM__INTAKE__UNIT_STATE__KEYS_HANDED];
    p->missed_total = (uint32_t) t.missed;
    p->blocked = (uint32_t) t.blocked;
    p->blocked_invoice = (uint32_t) t.blocked_invoice;
    p->blocked_inspection = (uint32_t) t.blocked_inspection;
    p->waitlist = (uint32_t) t.waitlist;
    p->notices_undelivered = (uint32_t) t.undelivered;
    p->completion_pct = p->units ? (uint32_t) ((uint64_t) p->keys_handed * 100 / p->units) : 0;

    /* today: its slots and its check-ins by hour */
    int64_t day = intake_day_start (in, ctx->now_ms);
    char *today = intake_local_format (ctx->arena, in, day);
    today[10] = '\0';
    p->today = today;
    pm_key_t from, to;
    pm_key (&from, "st", est->estate_id, day);
    pm_key (&to, "st", est->estate_id, day + S_DAY_MS);
    size_t nslots = 0, scap = 16;
    p->today_slots = pm_arena_alloc (ctx->arena, scap * sizeof *p->today_slots);
    for (pm_scan_range (&s, txn, INTAKE_SLOTS, &from, &to); s.ok; pm_scan_next (&s)) {
        Pm__Intake__SlotRecord *sl;
        if (pm_scan_msg (&s, &pm__intake__slot_record__descriptor, &sl) != PM_OK)
            continue;
        if (nslots == scap) {
            Pm__V1__SlotLoad **more = pm_arena_alloc (ctx->arena, 2 * scap * sizeof *more);
            memcpy (more, p->today_slots, scap * sizeof *more);
            p->today_slots = more;
            scap *= 2;
        }
        Pm__V1__SlotLoad *l = pm_arena_alloc (ctx->arena, sizeof *l);
        pm__v1__slot_load__init (l);
        l->start_ms = sl->start_ms;
        l->end_ms = sl->end_ms;
        l->start = intake_hhmm (ctx->arena, in, sl->start_ms);
        l->capacity = sl->counters * sl->per_counter;
        l->booked = sl->booked;
        p->today_capacity += l->capacity;
        p->today_booked += l->booked;
        p->today_slots[nslots++] = l;
    }
    p->n_today_slots = nslots;
    p->checkins_by_hour = pm_arena_alloc (ctx->arena, 25 * sizeof *p->checkins_by_hour);
    for (pm_scan_range (&s, txn, INTAKE_HOURLY, &from, &to); s.ok && p->n_checkins_by_hour < 25; pm_scan_next (&s)) {
        int64_t hour;
        if (s.val.mv_size != 8 || pm_key_parse (s.key.mv_data, s.key.mv_size, "st", NULL, &hour) != PM_OK)
            continue;
        Pm__V1__HourCount *h = pm_arena_alloc (ctx->arena, sizeof *h);
        pm__v1__hour_count__init (h);
        h->hour = intake_hhmm (ctx->arena, in, hour);
        h->checkins = (uint32_t) pm_be_u64 (s.val.mv_data);
        p->checkins_today += h->checkins;
        p->checkins_by_hour[p->n_checkins_by_hour++] = h;
    }
    return p;
}

int
intake_on_progress (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->intake_progress->estate_id;
    Pm__V1__IntakeProgressReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_progress_reply__init (r);
    pm_key_t k;
    if (*id) {
        Pm__Intake__EstateRecord *est;
        if (pm_txn_get_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, id), &pm__intake__estate_record__descriptor,
                            &est)
            != PM_OK)
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                             "estate_id: no estate '%s' (%zu estates are known; import its units first)", id,
                             pm_txn_count (txn, INTAKE_ESTATES));
        r->estates = pm_arena_alloc (ctx->arena, sizeof *r->estates);
        r->estates[r->n_estates++] = s_estate (ctx, txn, est);
    }
    else {
        size_t n = pm_txn_count (txn, INTAKE_ESTATES);
        r->estates = pm_arena_alloc (ctx->arena, (n + 1) * sizeof *r->estates);
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, INTAKE_ESTATES, NULL); s.ok && r->n_estates < n; pm_scan_next (&s)) {
            Pm__Intake__EstateRecord *est;
            if (pm_scan_msg (&s, &pm__intake__estate_record__descriptor, &est) == PM_OK)
                r->estates[r->n_estates++] = s_estate (ctx, txn, est);
        }
    }
    pm_reply_body (out, &r->base);
    if (r->n_estates == 1) {
        const Pm__V1__EstateProgress *p = r->estates[0];
        return pm_reply (out, PM__V1__STATUS__OK,
                         "%s %s: %u units, %u keys handed (%u%%), %u blocked at the key gate, %u no-shows", p->estate_id,
                         p->estate_name, p->units, p->keys_handed, p->completion_pct, p->blocked, p->no_shows);
    }
    return pm_reply (out, PM__V1__STATUS__OK, "%zu estates", r->n_estates);
}
