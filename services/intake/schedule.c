/* schedule.c - slots by building and floor (分批办理, 时间分流, 预约制度).
 *
 * intake.schedule.plan lays an estate's days out in slots (opening hours,
 * slot length, counters, units per counter) and books its units building ->
 * floor -> unit (natural order: building 2 before 10, unit 2-301 before
 * 2-1201), or the given units first, or only the given buildings on a day.
 * A slot never takes more than counters x per_counter units; a unit that
 * fits nowhere waits on the waitlist, and is booked by itself when a slot
 * frees (a cancel or a move). Planning is a function of its inputs and the
 * units' states: the same plan twice changes nothing the second time, and a
 * re-plan keeps every unit that checked in where it was.
 *
 * Invariant (tested under random moves and cancels): a slot's `booked` is the
 * number of units whose appointment is in it, and never more than its
 * capacity except where a re-plan shrank a slot some units had already come
 * through.
 *
 * An appointment whose slot ends without a check-in becomes NO_SHOW through
 * a durable timer (one per unit, moved with the appointment, cancelled by the
 * check-in) and waits in ops.queues `no_shows` for rebooking. */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define S_NOSHOW_TIMER "intake.noshow"
#define S_MAX_SLOTS 20000

/* --- natural order ------------------------------------------------------------- */

/* Compares strings with digit runs as numbers: "2" < "10", "2-301" < "2-1201". */
static int
s_natcmp (const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit ((unsigned char) *a) && isdigit ((unsigned char) *b)) {
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            size_t la = 0, lb = 0;
            while (isdigit ((unsigned char) a[la]))
                la++;
            while (isdigit ((unsigned char) b[lb]))
                lb++;
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = memcmp (a, b, la);
            if (c)
                return c;
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b)
            return (unsigned char) *a < (unsigned char) *b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

/* --- slots --------------------------------------------------------------------- */

static uint32_t
s_capacity (const Pm__Intake__SlotRecord *s)
{
    return s->counters * s->per_counter;
}

static bool
s_slot_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate_id, int64_t start_ms, Pm__Intake__SlotRecord **slot)
{
    pm_key_t k;
    return pm_txn_get_msg (txn, INTAKE_SLOTS, intake_slot_key (&k, estate_id, start_ms),
                           &pm__intake__slot_record__descriptor, slot)
           == PM_OK;
}

static int
s_slot_save (pm_txn_t *txn, const char *estate_id, const Pm__Intake__SlotRecord *slot)
{
    pm_key_t k;
    return pm_txn_put_msg (txn, INTAKE_SLOTS, intake_slot_key (&k, estate_id, slot->start_ms), &slot->base);
}

/* The counter with the fewest units and room (1-based), or 0 when the slot is full. */
static uint32_t
s_counter (const Pm__Intake__SlotRecord *s)
{
    uint32_t best = 0;
    for (uint32_t i = 0; i < s->counters && i < s->n_counter_load; i++)
        if (s->counter_load[i] < s->per_counter && (!best || s->counter_load[i] < s->counter_load[best - 1]))
            best = i + 1;
    return s->booked < s_capacity (s) ? best : 0;
}

static bool
s_building_allowed (const Pm__Intake__SlotRecord *s, const char *building)
{
    if (s->n_buildings == 0)
        return true;
    for (size_t i = 0; i < s->n_buildings; i++)
        if (strcmp (s->buildings[i], building) == 0)
            return true;
    return false;
}

static char *
s_buildings_text (pm_ctx_t *ctx, const Pm__Intake__SlotRecord *s)
{
    char *t = "";
    for (size_t i = 0; i < s->n_buildings; i++)
        t = pm_arena_printf (ctx->arena, "%s%s%s", t, i ? ", " : "", s->buildings[i]);
    return t;
}

/* The appointment a case gets in a slot (arena). */
static Pm__V1__Appointment *
s_appointment (pm_ctx_t *ctx, const Pm__Intake__CaseRecord *r, const Pm__Intake__SlotRecord *slot, uint32_t counter)
{
    Pm__V1__Appointment *a = pm_arena_alloc (ctx->arena, sizeof *a);
    pm__v1__appointment__init (a);
    a->unit_id = r->unit_id;
    a->estate_id = r->estate_id;
    a->slot_start_ms = slot->start_ms;
    a->slot_end_ms = slot->end_ms;
    a->counter = counter;
    a->place = slot->place;
    a->state = "SCHEDULED";
    return a;
}

static void
s_noshow_timer (pm_txn_t *txn, const Pm__Intake__CaseRecord *r)
{
    unsigned char start[8];
    pm_u64_be ((uint64_t) r->appointment->slot_start_ms, start);
    pm_timer_set (txn, S_NOSHOW_TIMER, r->unit_id, r->appointment->slot_end_ms, start, sizeof start);
}

int
intake_slot_take (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, intake_case_t *c, const char *estate_id,
                  int64_t start_ms, bool walk_in)
{
    intake_t *in = ctx->app;
    Pm__Intake__SlotRecord *slot;
    const char *when = intake_local_format (ctx->arena, in, start_ms);
    if (!s_slot_load (ctx, txn, estate_id, start_ms, &slot))
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "slot: estate %s has no slot starting %s (plan the days first with intake.schedule.plan, "
                         "or see the slots in intake.progress)",
                         estate_id, when);
    if (!walk_in && slot->end_ms <= ctx->now_ms)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "slot %s has ended (at %s): choose a later slot", when,
                         intake_hhmm (ctx->arena, in, slot->end_ms));
    if (!s_building_allowed (slot, c->rec->building))
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "slot %s is on a day planned for building%s %s only; unit %s is in building %s", when,
                         slot->n_buildings == 1 ? "" : "s", s_buildings_text (ctx, slot), c->rec->unit_id,
                         c->rec->building);
    uint32_t counter = s_counter (slot);
    if (!counter)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "slot %s is full: %u of %u booked (%u counter%s x %u per counter); choose another slot",
                         when, slot->booked, s_capacity (slot), slot->counters, slot->counters == 1 ? "" : "s",
                         slot->per_counter);
    slot->counter_load[counter - 1]++;
    slot->booked++;
    s_slot_save (txn, estate_id, slot);
    c->rec->appointment = s_appointment (ctx, c->rec, slot, counter);
    c->rec->walk_in = walk_in;
    c->rec->waitlist_pos = 0;
    if (!walk_in)
        s_noshow_timer (txn, c->rec);
    return PM__V1__STATUS__OK;
}

int64_t
intake_slot_release (pm_ctx_t *ctx, pm_txn_t *txn, intake_case_t *c)
{
    Pm__V1__Appointment *a = c->rec->appointment;
    if (!a || !a->slot_start_ms)
        return 0;
    int64_t start = a->slot_start_ms;
    Pm__Intake__SlotRecord *slot;
    if (s_slot_load (ctx, txn, c->rec->estate_id, start, &slot) && slot->booked > 0) {
        slot->booked--;
        if (a->counter >= 1 && a->counter <= slot->n_counter_load && slot->counter_load[a->counter - 1] > 0)
            slot->counter_load[a->counter - 1]--;
        s_slot_save (txn, c->rec->estate_id, slot);
    }
    pm_timer_cancel (txn, S_NOSHOW_TIMER, c->rec->unit_id);
    c->rec->appointment = NULL;
    c->rec->walk_in = false;
    return start;
}

Pm__V1__Appointment *
intake_appointment (pm_ctx_t *ctx, pm_txn_t *txn, const intake_case_t *c)
{
    Pm__V1__Appointment *a = pm_arena_alloc (ctx->arena, sizeof *a);
    pm__v1__appointment__init (a);
    if (c->rec->appointment)
        *a = *c->rec->appointment;
    a->unit_id = c->rec->unit_id;
    a->estate_id = c->rec->estate_id;
    Pm__Intake__UnitRecord *u;
    if (intake_unit_load (ctx, txn, c->rec->unit_id, &u) == PM_OK) {
        a->owners = u->unit->owners;
        a->n_owners = u->unit->n_owners;
    }
    return a;
}

/* Emits an appointment event for c (owners from its unit). */
static int
s_emit (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const intake_case_t *c, const char *type,
        Pm__V1__Appointment *a)
{
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_APPOINTMENT;
    ev.appointment = a;
    return intake_emit (out, txn, type, c->rec->estate_id, c->rec->unit_id, &ev);
}

/* The state a unit goes back to without an appointment. */
static int
s_unbooked_state (const Pm__Intake__CaseRecord *r)
{
    return r->notified_ms ? PM__INTAKE__UNIT_STATE__NOTIFIED : PM__INTAKE__UNIT_STATE__REGISTERED;
}

/* Next waitlist position (meta counter): the waitlist is served in the order units joined it. */
static uint64_t
s_waitlist_next (pm_txn_t *txn)
{
    uint64_t n = pm_meta_get_u64 (txn, "intake.waitlist_seq") + 1;
    pm_meta_put_u64 (txn, "intake.waitlist_seq", n);
    return n;
}

const char *
intake_waitlist_promote (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *estate_id, int64_t start_ms)
{
    Pm__Intake__SlotRecord *slot;
    if (!start_ms || !s_slot_load (ctx, txn, estate_id, start_ms, &slot) || slot->end_ms <= ctx->now_ms
        || !s_counter (slot))
        return NULL;
    pm_key_t k;
    pm_scan_t s;
    char *unit_id = NULL;
    for (pm_scan_prefix (&s, txn, INTAKE_WAITLIST, pm_key (&k, "s", estate_id)); s.ok; pm_scan_next (&s)) {
        Pm__V1__QueueItem *item;
        if (pm_scan_msg (&s, &pm__v1__queue_item__descriptor, &item) != PM_OK)
            continue;
        char *e, *b;
        if (intake_unit_id_parts (ctx->arena, item->unit_id, &e, &b) == PM_OK && s_building_allowed (slot, b)) {
            unit_id = item->unit_id;
            break;
        }
    }
    pm_scan_end (&s);
    if (!unit_id)
        return NULL;
    intake_case_t c;
    if (intake_case_load (ctx, txn, unit_id, &c) != PM_OK)
        return NULL;
    if (intake_slot_take (ctx, txn, out, &c, estate_id, start_ms, false) != PM__V1__STATUS__OK)
        return NULL;
    intake_case_state (ctx, &c, PM__INTAKE__UNIT_STATE__SCHEDULED);
    Pm__V1__Appointment *a = intake_appointment (ctx, txn, &c);
    a->reason = "booked from the waitlist: a slot freed";
    intake_case_save (ctx, txn, &c);
    s_emit (ctx, txn, out, &c, "intake.appointment.booked", a);
    return unit_id;
}

/* --- the slot a request names ---------------------------------------------------- */

static int
s_slot_arg (pm_ctx_t *ctx, pm_out_t *out, const char *slot, int64_t slot_ms, int64_t *start)
{
    if (*slot) {
        if (intake_local_parse (ctx->app, slot, start) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "slot: '%s' is not a time; expected its start in estate time, e.g. \"2026-12-05 09:30\"",
                             slot);
        return PM__V1__STATUS__OK;
    }
    if (slot_ms > 0) {
        *start = slot_ms;
        return PM__V1__STATUS__OK;
    }
    return pm_reply (out, PM__V1__STATUS__INVALID,
                     "slot: empty; give the slot's start in estate time, e.g. \"slot\":\"2026-12-05 09:30\"");
}

/* Loads the unit's case for a booking command; a reply (and false) when it cannot be. */
static int
s_case_for (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *unit_id, intake_case_t *c)
{
    pm_key_t k;
    if (!*unit_id || !pm_txn_has (txn, INTAKE_UNITS, intake_unit_key (&k, unit_id)))
        return intake_reply_no_unit (out, unit_id);
    if (intake_case_load (ctx, txn, unit_id, c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: its case does not decode", unit_id);
    return PM__V1__STATUS__OK;
}


/* The reply when a unit's state does not allow a booking command. */
static int
s_state_conflict (pm_ctx_t *ctx, pm_out_t *out, const intake_case_t *c, const char *what, const char *need)
{
    const Pm__Intake__CaseRecord *r = c->rec;
    const char *extra = "";
    if (r->appointment && r->appointment->slot_start_ms)
        extra = pm_arena_printf (ctx->arena, " (appointment %s, counter %u)",
                                 intake_local_format (ctx->arena, ctx->app, r->appointment->slot_start_ms),
                                 r->appointment->counter);
    return pm_reply (out, PM__V1__STATUS__CONFLICT, "unit %s cannot %s: it is %s%s; %s", r->unit_id, what,
                     intake_state_name (r->state), extra, need);
}

int
intake_on_book (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeAppointmentBookRequest *q = req->intake_appointment_book;
    intake_case_t c;
    int64_t start = 0;
    int st;
    if ((st = s_case_for (ctx, txn, out, q->unit_id, &c)) != PM__V1__STATUS__OK
        || (st = s_slot_arg (ctx, out, q->slot, q->slot_start_ms, &start)) != PM__V1__STATUS__OK)
        return st;
    int state = c.rec->state;
    if (state == PM__INTAKE__UNIT_STATE__SCHEDULED || state == PM__INTAKE__UNIT_STATE__NO_SHOW)
        return s_state_conflict (ctx, out, &c, "be booked again",
                                 "move its appointment with intake.appointment.move instead");
    if (state >= PM__INTAKE__UNIT_STATE__CHECKED_IN)
        return s_state_conflict (ctx, out, &c, "be booked", "it needs no appointment any more");
    if ((st = intake_slot_take (ctx, txn, out, &c, c.rec->estate_id, start, false)) != PM__V1__STATUS__OK)
        return st;
    intake_case_state (ctx, &c, PM__INTAKE__UNIT_STATE__SCHEDULED);
    intake_case_save (ctx, txn, &c);
    Pm__V1__Appointment *a = intake_appointment (ctx, txn, &c);
    s_emit (ctx, txn, out, &c, "intake.appointment.booked", a);
    Pm__V1__IntakeAppointmentBookReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_appointment_book_reply__init (r);
    r->appointment = a;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s booked for %s at counter %u", c.rec->unit_id,
                     intake_local_format (ctx->arena, ctx->app, a->slot_start_ms), a->counter);
}

int
intake_on_move (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeAppointmentMoveRequest *q = req->intake_appointment_move;
    intake_case_t c;
    int64_t start = 0;
    int st;
    if ((st = s_case_for (ctx, txn, out, q->unit_id, &c)) != PM__V1__STATUS__OK
        || (st = s_slot_arg (ctx, out, q->slot, q->slot_start_ms, &start)) != PM__V1__STATUS__OK)
        return st;
    int state = c.rec->state;
    if (state != PM__INTAKE__UNIT_STATE__SCHEDULED && state != PM__INTAKE__UNIT_STATE__NO_SHOW)
        return s_state_conflict (ctx, out, &c, "move its appointment",
                                 state >= PM__INTAKE__UNIT_STATE__CHECKED_IN
                                     ? "it has checked in and needs no appointment"
                                     : "it has none: book one with intake.appointment.book");
    Pm__V1__Appointment *old = c.rec->appointment;
    int64_t from = old ? old->slot_start_ms : 0;
    Pm__V1__IntakeAppointmentMoveReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_appointment_move_reply__init (r);
    if (from == start && state == PM__INTAKE__UNIT_STATE__SCHEDULED) {
        r->appointment = intake_appointment (ctx, txn, &c);
        pm_reply_body (out, &r->base);
        return pm_reply (out, PM__V1__STATUS__OK, "%s is booked for %s already", c.rec->unit_id,
                         intake_local_format (ctx->arena, ctx->app, start));
    }
    /* take the new slot first: a full one refuses before anything moves */
    intake_case_t probe = c;
    Pm__Intake__CaseRecord copy = *c.rec;
    probe.rec = &copy;
    if ((st = intake_slot_take (ctx, txn, out, &probe, c.rec->estate_id, start, false)) != PM__V1__STATUS__OK)
        return st;
    intake_slot_release (ctx, txn, &c); /* the old slot's load; cancels its timer */
    c.rec->appointment = copy.appointment;
    c.rec->walk_in = false;
    c.rec->waitlist_pos = 0;
    s_noshow_timer (txn, c.rec);
    intake_case_state (ctx, &c, PM__INTAKE__UNIT_STATE__SCHEDULED);
    intake_case_save (ctx, txn, &c);
    Pm__V1__Appointment *a = intake_appointment (ctx, txn, &c);
    a->previous_start_ms = from;
    s_emit (ctx, txn, out, &c, "intake.appointment.moved", a);
    intake_waitlist_promote (ctx, txn, out, c.rec->estate_id, from);
    r->appointment = a;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s moved from %s to %s, counter %u", c.rec->unit_id,
                     from ? intake_local_format (ctx->arena, ctx->app, from) : "(none)",
                     intake_local_format (ctx->arena, ctx->app, start), a->counter);
}

int
intake_on_cancel (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeAppointmentCancelRequest *q = req->intake_appointment_cancel;
    intake_case_t c;
    int st;
    if ((st = s_case_for (ctx, txn, out, q->unit_id, &c)) != PM__V1__STATUS__OK)
        return st;
    Pm__V1__IntakeAppointmentCancelReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_appointment_cancel_reply__init (r);
    int state = c.rec->state;
    if (state != PM__INTAKE__UNIT_STATE__SCHEDULED && state != PM__INTAKE__UNIT_STATE__NO_SHOW) {
        if (c.rec->waitlist_pos && state < PM__INTAKE__UNIT_STATE__CHECKED_IN) {
            c.rec->waitlist_pos = 0;
            intake_case_save (ctx, txn, &c);
            pm_reply_body (out, &r->base);
            return pm_reply (out, PM__V1__STATUS__OK, "%s left the waitlist", c.rec->unit_id);
        }
        return s_state_conflict (ctx, out, &c, "cancel an appointment",
                                 state >= PM__INTAKE__UNIT_STATE__CHECKED_IN ? "it has checked in already"
                                                                             : "it has none");
    }
    Pm__V1__Appointment *a = intake_appointment (ctx, txn, &c);
    a->state = "CANCELLED";
    a->reason = *q->reason ? q->reason : "cancelled";
    int64_t freed = intake_slot_release (ctx, txn, &c);
    intake_case_state (ctx, &c, s_unbooked_state (c.rec));
    intake_case_save (ctx, txn, &c);
    s_emit (ctx, txn, out, &c, "intake.appointment.cancelled", a);
    const char *promoted = intake_waitlist_promote (ctx, txn, out, c.rec->estate_id, freed);
    r->appointment = a;
    r->promoted_unit_id = (char *) (promoted ? promoted : "");
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: appointment %s cancelled%s%s", c.rec->unit_id,
                     intake_local_format (ctx->arena, ctx->app, a->slot_start_ms),
                     promoted ? "; booked from the waitlist into it: " : "", promoted ? promoted : "");
}

/* The slot ended and nobody came: NO_SHOW, to be rebooked. */
int
intake_on_noshow (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                  pm_out_t *out)
{
    intake_case_t c;
    if (plen != 8 || intake_case_load (ctx, txn, key, &c) != PM_OK)
        return PM__V1__STATUS__OK;
    Pm__Intake__CaseRecord *r = c.rec;
    if (r->state != PM__INTAKE__UNIT_STATE__SCHEDULED || !r->appointment
        || r->appointment->slot_start_ms != (int64_t) pm_be_u64 (payload))
        return PM__V1__STATUS__OK; /* moved or checked in meanwhile */
    intake_case_state (ctx, &c, PM__INTAKE__UNIT_STATE__NO_SHOW);
    r->appointment->state = "NO_SHOW";
    intake_count_add (txn, r->estate_id, r->building, "missed", 1);
    if (intake_case_save (ctx, txn, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage");
    Pm__V1__Appointment *a = intake_appointment (ctx, txn, &c);
    a->reason = "no check-in by the end of the slot";
    s_emit (ctx, txn, out, &c, "intake.appointment.missed", a);
    return PM__V1__STATUS__OK;
}

/* --- the plan -------------------------------------------------------------------- */

/* A unit of the estate, as the plan sees it. */
typedef struct {
    Pm__Intake__UnitRecord *unit;
    intake_case_t c;
    int given;          /* position in unit_ids (+1), 0 when not given */
    size_t slot;        /* the slot it gets (index + 1), 0: none */
    uint32_t counter;
} s_unit_t;

static int
s_unit_order (const void *pa, const void *pb)
{
    const s_unit_t *a = pa, *b = pb;
    if (a->given != b->given) {
        if (!a->given || !b->given)
            return a->given ? -1 : 1;
        return a->given < b->given ? -1 : 1;
    }
    const Pm__V1__Unit *x = a->unit->unit, *y = b->unit->unit;
    int c = s_natcmp (x->building, y->building);
    if (c)
        return c;
    if (x->floor != y->floor)
        return x->floor < y->floor ? -1 : 1;
    c = s_natcmp (x->unit, y->unit);
    return c ? c : strcmp (x->unit_id, y->unit_id);
}

static int
s_day_order (const void *pa, const void *pb)
{
    const Pm__V1__PlanDay *a = *(Pm__V1__PlanDay *const *) pa, *b = *(Pm__V1__PlanDay *const *) pb;
    return strcmp (a->date, b->date);
}

/* Checks the request; fills the days (sorted) and the hours. A status. */
static int
s_plan_check (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__IntakeSchedulePlanRequest *q,
              Pm__V1__PlanDay ***days, int64_t *opens, int64_t *closes, uint32_t *slot_min, uint32_t *counters,
              uint32_t *per_counter)
{
    intake_t *in = ctx->app;
    pm_key_t k;
    if (!*q->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    if (!pm_txn_has (txn, INTAKE_ESTATES, intake_estate_key (&k, q->estate_id)))
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "estate_id: no estate '%s' (import its units first)",
                         q->estate_id);
    if (q->n_days == 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "days: none given; expected e.g. \"days\":[{\"date\":\"2026-12-05\"},{\"date\":\"2026-12-06\","
                         "\"buildings\":[\"3\"]}]");
    *days = pm_arena_alloc (ctx->arena, q->n_days * sizeof **days);
    memcpy (*days, q->days, q->n_days * sizeof **days);
    qsort (*days, q->n_days, sizeof **days, s_day_order);
    for (size_t i = 0; i < q->n_days; i++) {
        int64_t ms;
        if (intake_date_parse (in, (*days)[i]->date, &ms) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__INVALID, "days[].date: '%s' is not a date; expected YYYY-MM-DD",
                             (*days)[i]->date);
        if (i && strcmp ((*days)[i]->date, (*days)[i - 1]->date) == 0)
            return pm_reply (out, PM__V1__STATUS__INVALID, "days: %s is given twice", (*days)[i]->date);
    }
    if (intake_clock_parse (*q->opens ? q->opens : "09:00", opens) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INVALID, "opens: '%s' is not a time of day; expected HH:MM, e.g. 09:00",
                         q->opens);
    if (intake_clock_parse (*q->closes ? q->closes : "17:00", closes) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INVALID, "closes: '%s' is not a time of day; expected HH:MM, e.g. 17:00",
                         q->closes);
    *slot_min = q->slot_minutes ? q->slot_minutes : 30;
    *counters = q->counters ? q->counters : 1;
    *per_counter = q->per_counter ? q->per_counter : 1;
    if (*slot_min < 5 || *slot_min > 720)
        return pm_reply (out, PM__V1__STATUS__INVALID, "slot_minutes: %u; expected 5 to 720", *slot_min);
    if (*counters > 200 || *per_counter > 1000)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "counters %u, per_counter %u: expected at most 200 counters and 1000 units per counter",
                         *counters, *per_counter);
    if (*closes - *opens < (int64_t) *slot_min * 60000)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "opens %s, closes %s: no %u-minute slot fits; the estate must close after it opens",
                         *q->opens ? q->opens : "09:00", *q->closes ? q->closes : "17:00", *slot_min);
    int64_t per_day = (*closes - *opens) / ((int64_t) *slot_min * 60000);
    if (per_day * (int64_t) q->n_days > S_MAX_SLOTS)
        return pm_reply (out, PM__V1__STATUS__INVALID, "days: %zu days of %lld slots is over %d slots; plan fewer days",
                         q->n_days, (long long) per_day, S_MAX_SLOTS);
    if (*q->order && strcmp (q->order, "building") != 0 && strcmp (q->order, "given") != 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "order: '%s'; expected \"building\" (building, floor, unit) or \"given\" (unit_ids first)",
                         q->order);
    if (strcmp (q->order, "given") == 0 && q->n_unit_ids == 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_ids: empty; order \"given\" books these units first");
    return PM__V1__STATUS__OK;
}

int
intake_on_plan (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeSchedulePlanRequest *q = req->intake_schedule_plan;
    intake_t *in = ctx->app;
    Pm__V1__PlanDay **days = NULL;
    int64_t opens = 0, closes = 0;
    uint32_t slot_min = 30, counters = 1, per_counter = 1;
    int st = s_plan_check (ctx, txn, out, q, &days, &opens, &closes, &slot_min, &counters, &per_counter);
    if (st != PM__V1__STATUS__OK)
        return st;
    const char *estate = q->estate_id;
    pm_key_t k;
    pm_scan_t s;

    /* the new slots, in time order */
    int64_t len = (int64_t) slot_min * 60000, per_day = (closes - opens) / len;
    size_t nslots = (size_t) per_day * q->n_days;
    Pm__Intake__SlotRecord *slots = pm_arena_alloc (ctx->arena, nslots * sizeof *slots);
    uint32_t *loads = pm_arena_alloc (ctx->arena, nslots * counters * sizeof *loads);
    for (size_t d = 0, i = 0; d < q->n_days; d++) {
        int64_t day;
        intake_date_parse (in, days[d]->date, &day);
        for (int64_t t = 0; t < per_day; t++, i++) {
            Pm__Intake__SlotRecord *sl = &slots[i];
            pm__intake__slot_record__init (sl);
            sl->start_ms = day + opens + t * len;
            sl->end_ms = sl->start_ms + len;
            sl->counters = counters;
            sl->per_counter = per_counter;
            sl->counter_load = loads + i * counters;
            sl->n_counter_load = counters;
            sl->place = q->place;
            sl->buildings = days[d]->buildings;
            sl->n_buildings = days[d]->n_buildings;
        }
    }

    /* the estate's units and their cases: two scans in the same key order */
    size_t nunits = 0, cap = 1024;
    s_unit_t *units = pm_arena_alloc (ctx->arena, cap * sizeof *units);
    char *prefix = pm_arena_printf (ctx->arena, "%s/", estate);
    for (pm_scan_prefix (&s, txn, INTAKE_UNITS, pm_key (&k, "p", prefix)); s.ok; pm_scan_next (&s)) {
        Pm__Intake__UnitRecord *u;
        if (pm_scan_msg (&s, &pm__intake__unit_record__descriptor, &u) != PM_OK || !u->unit)
            continue;
        if (nunits == cap) {
            s_unit_t *more = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *units);
            memcpy (more, units, cap * sizeof *units);
            units = more;
            cap *= 2;
        }
        s_unit_t *x = &units[nunits++];
        memset (x, 0, sizeof *x);
        x->unit = u;
    }
    size_t j = 0;
    for (pm_scan_prefix (&s, txn, INTAKE_CASES, pm_key (&k, "p", prefix)); s.ok && j < nunits; pm_scan_next (&s)) {
        const char *id = (const char *) s.key.mv_data; /* "s" keys end in their NUL */
        while (j < nunits && strcmp (units[j].unit->unit->unit_id, id) < 0)
            j++;
        if (j < nunits && strcmp (units[j].unit->unit->unit_id, id) == 0) {
            if (intake_case_load (ctx, txn, id, &units[j].c) != PM_OK)
                return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: its case does not decode", id);
            j++;
        }
    }
    for (size_t i = 0; i < nunits; i++)
        if (!units[i].c.rec)
            intake_case_load (ctx, txn, units[i].unit->unit->unit_id, &units[i].c);
    for (size_t g = 0; g < q->n_unit_ids; g++) {
        size_t i;
        for (i = 0; i < nunits && strcmp (units[i].unit->unit->unit_id, q->unit_ids[g]) != 0; i++)
            ;
        if (i == nunits)
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "unit_ids: estate %s has no unit '%s'", estate,
                             q->unit_ids[g]);
        if (!units[i].given)
            units[i].given = (int) g + 1;
    }
    qsort (units, nunits, sizeof *units, s_unit_order);

    /* units that came already keep their slot: its load is theirs */
    Pm__V1__IntakeSchedulePlanReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_schedule_plan_reply__init (r);
    r->slots = (uint32_t) nslots;
    r->capacity = (uint32_t) (nslots * counters * per_counter);
    r->first_slot_ms = slots[0].start_ms;
    r->last_slot_ms = slots[nslots - 1].start_ms;
    for (size_t i = 0; i < nunits; i++) {
        Pm__Intake__CaseRecord *c = units[i].c.rec;
        if (c->state < PM__INTAKE__UNIT_STATE__CHECKED_IN)
            continue;
        r->kept++;
        if (!c->appointment || !c->appointment->slot_start_ms)
            continue;
        for (size_t n = 0; n < nslots; n++)
            if (slots[n].start_ms == c->appointment->slot_start_ms) {
                uint32_t ctr = c->appointment->counter >= 1 && c->appointment->counter <= counters
                                   ? c->appointment->counter
                                   : 1;
                slots[n].counter_load[ctr - 1]++;
                slots[n].booked++;
                break;
            }
    }
    /* the others, in order: a unit keeps its slot (and counter) when the new
     * plan still has it with room; else the first slot with room for its
     * building that has not begun */
    size_t first_open = 0;
    for (size_t i = 0; i < nunits; i++) {
        s_unit_t *x = &units[i];
        Pm__Intake__CaseRecord *c = x->c.rec;
        if (c->state >= PM__INTAKE__UNIT_STATE__CHECKED_IN)
            continue;
        while (first_open < nslots
               && (slots[first_open].booked >= s_capacity (&slots[first_open]) || slots[first_open].start_ms < ctx->now_ms))
            first_open++;
        for (size_t n = first_open; n < nslots && !x->slot; n++) {
            Pm__Intake__SlotRecord *sl = &slots[n];
            uint32_t ctr = s_counter (sl);
            if (!ctr || sl->start_ms < ctx->now_ms || !s_building_allowed (sl, c->building))
                continue;
            const Pm__V1__Appointment *old = c->appointment;
            if (old && old->slot_start_ms == sl->start_ms && old->counter >= 1 && old->counter <= counters
                && sl->counter_load[old->counter - 1] < per_counter)
                ctr = old->counter;
            sl->counter_load[ctr - 1]++;
            sl->booked++;
            x->slot = n + 1;
            x->counter = ctr;
        }
    }

    /* the old slots go, the new ones are written */
    for (pm_scan_prefix (&s, txn, INTAKE_SLOTS, pm_key (&k, "s", estate)); s.ok; pm_scan_next (&s))
        pm_scan_del (&s);
    for (size_t n = 0; n < nslots; n++)
        s_slot_save (txn, estate, &slots[n]);

    /* each unit's case and event */
    for (size_t i = 0; i < nunits; i++) {
        s_unit_t *x = &units[i];
        Pm__Intake__CaseRecord *c = x->c.rec;
        if (c->state >= PM__INTAKE__UNIT_STATE__CHECKED_IN)
            continue;
        const Pm__V1__Appointment *old = c->appointment && c->appointment->slot_start_ms ? c->appointment : NULL;
        const char *type = NULL;
        Pm__V1__Appointment *a;
        if (x->slot) {
            Pm__Intake__SlotRecord *sl = &slots[x->slot - 1];
            if (old && old->slot_start_ms == sl->start_ms && old->counter == x->counter
                && c->state == PM__INTAKE__UNIT_STATE__SCHEDULED && strcmp (old->place, sl->place) == 0) {
                r->unchanged++;
                continue;
            }
            c->appointment = s_appointment (ctx, c, sl, x->counter);
            c->walk_in = false;
            c->waitlist_pos = 0;
            s_noshow_timer (txn, c);
            intake_case_state (ctx, &x->c, PM__INTAKE__UNIT_STATE__SCHEDULED);
            a = pm_arena_alloc (ctx->arena, sizeof *a);
            *a = *c->appointment;
            if (old) {
                a->previous_start_ms = old->slot_start_ms;
                a->reason = "re-planned";
                type = "intake.appointment.moved";
                r->moved++;
            }
            else {
                type = "intake.appointment.booked";
                r->booked++;
            }
        }
        else {
            r->waitlisted++;
            if (!c->waitlist_pos)
                c->waitlist_pos = s_waitlist_next (txn);
            if (!old && c->state != PM__INTAKE__UNIT_STATE__NO_SHOW) {
                intake_case_save (ctx, txn, &x->c);
                continue;
            }
            a = pm_arena_alloc (ctx->arena, sizeof *a);
            *a = old ? *old : (Pm__V1__Appointment) PM__V1__APPOINTMENT__INIT;
            a->state = "CANCELLED";
            a->reason = "re-planned: no slot had room; on the waitlist";
            c->appointment = NULL;
            c->walk_in = false;
            pm_timer_cancel (txn, S_NOSHOW_TIMER, c->unit_id);
            intake_case_state (ctx, &x->c, s_unbooked_state (c));
            type = "intake.appointment.cancelled";
        }
        a->unit_id = c->unit_id;
        a->estate_id = c->estate_id;
        a->owners = x->unit->unit->owners;
        a->n_owners = x->unit->unit->n_owners;
        if (intake_case_save (ctx, txn, &x->c) != PM_OK || s_emit (ctx, txn, out, &x->c, type, a) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: the plan could not be written");
    }
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK,
                     "%s: %u slots (%u places) from %s to %s; %u booked, %u moved, %u unchanged, %u waitlisted, %u "
                     "checked in kept",
                     estate, r->slots, r->capacity, intake_local_format (ctx->arena, in, r->first_slot_ms),
                     intake_local_format (ctx->arena, in, r->last_slot_ms), r->booked, r->moved, r->unchanged,
                     r->waitlisted, r->kept);
}
