/* defects.c - defects (问题记录) and the rectification loop (整改闭环).
 *
 *   OPEN --workorder.order.created--> RECTIFYING --workorder.order.done--> RECTIFIED
 *     ^                                   |                                    |
 *     |  (its order cancelled)            |                 inspection.defect.verify (at a round)
 *     +-----------------------------------+                                    v
 *     +------- inspection.defect.reopen (at a round, with a reason) ------- VERIFIED
 *
 * Every move goes through s_move, which keeps the unit's counters (open,
 * rectified), the KPI counters, the deadline timer and the overdue queue in
 * step with the state, writes the change into the defect's history and emits
 * the defect as it now stands. A defect's deadline comes from its severity
 * ([inspection] deadline_minor / _major / _critical); the timer is cancelled
 * when the defect is rectified and set again (from then) when the inspector
 * reopens it, so inspection.defect.overdue is emitted at most once per
 * deadline. An order that goes back to work from DONE keeps the old deadline.
 *
 * A work order follows a defect when its source is DEFECT and its defect_id
 * names it. Decisions are taken from the order's state in the event (not its
 * type), so an event restated by workorder's snapshot moves the defect the
 * same way: OPEN / ASSIGNED / IN_PROGRESS -> RECTIFYING (also from RECTIFIED:
 * the order was reopened or its DONE rejected), DONE -> RECTIFIED, CANCELLED
 * -> OPEN (no event: none in the contract fits, and .reopened would make
 * workorder reopen the cancelled order; the next order created for the defect
 * makes it RECTIFYING again). Events of an older order of the defect are
 * ignored. */
#include "inspection.h"
#include "pm/log.h"
#include "pm/text.h"

#include <stdlib.h>
#include <string.h>

#define S_DESCRIPTION_MAX 2000
#define S_TEXT_MAX 200
#define S_PHOTOS_MAX 20
#define S_PHOTO_MAX 1024

static const pm_key_t *
s_key (pm_key_t *k, const char *unit_id, uint32_t no)
{
    return pm_key (k, "su", unit_id, no);
}

bool
inspection_defect_id_parse (pm_ctx_t *ctx, const char *defect_id, char **unit_id, uint32_t *no)
{
    const char *hash = strrchr (defect_id, '#');
    if (!hash || hash == defect_id || !hash[1] || strlen (hash + 1) > 9)
        return false;
    uint32_t n = 0;
    for (const char *p = hash + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10 + (uint32_t) (*p - '0');
    }
    if (n == 0)
        return false;
    size_t len = (size_t) (hash - defect_id);
    char *u = pm_arena_alloc (ctx->arena, len + 1);
    memcpy (u, defect_id, len);
    *unit_id = u;
    *no = n;
    return true;
}

Pm__Inspection__DefectRecord *
inspection_defect_load (pm_txn_t *txn, const char *unit_id, uint32_t no)
{
    Pm__Inspection__DefectRecord *d;
    pm_key_t k;
    if (pm_txn_get_msg (txn, INSP_DEFECTS, s_key (&k, unit_id, no), &pm__inspection__defect_record__descriptor, &d)
            != PM_OK
        || !d->defect)
        return NULL;
    return d;
}

static void
s_save (pm_txn_t *txn, const char *unit_id, uint32_t no, const Pm__Inspection__DefectRecord *d)
{
    pm_key_t k;
    pm_txn_put_msg (txn, INSP_DEFECTS, s_key (&k, unit_id, no), &d->base);
}

const char *
inspection_defect_state_name (Pm__V1__DefectState s)
{
    switch (s) {
    case PM__V1__DEFECT_STATE__DEFECT_OPEN: return "OPEN";
    case PM__V1__DEFECT_STATE__RECTIFYING: return "RECTIFYING";
    case PM__V1__DEFECT_STATE__RECTIFIED: return "RECTIFIED";
    case PM__V1__DEFECT_STATE__VERIFIED: return "VERIFIED";
    default: return "?";
    }
}

const char *
inspection_severity_name (Pm__V1__Severity s)
{
    switch (s) {
    case PM__V1__SEVERITY__MINOR: return "MINOR";
    case PM__V1__SEVERITY__MAJOR: return "MAJOR";
    case PM__V1__SEVERITY__CRITICAL: return "CRITICAL";
    default: return "?";
    }
}

/* The defect's number from its id (the id is always unit#no). */
static uint32_t
s_no (const Pm__V1__Defect *d)
{
    const char *hash = strrchr (d->defect_id, '#');
    return hash ? (uint32_t) strtoul (hash + 1, NULL, 10) : 0;
}

/* Appends a change to d's history (arena). */
static void
s_history (pm_ctx_t *ctx, Pm__Inspection__DefectRecord *d, const char *what, const char *by, const char *reason,
           uint32_t round_no)
{
    Pm__V1__DefectChange *c = pm_arena_alloc (ctx->arena, sizeof *c);
    pm__v1__defect_change__init (c);
    c->at_ms = ctx->now_ms;
    c->by = (char *) (by ? by : "");
    c->what = (char *) what;
    c->state = d->defect->state;
    c->reason = (char *) (reason ? reason : "");
    c->order_id = d->defect->order_id;
    c->round_no = round_no;
    Pm__V1__DefectChange **h = pm_arena_alloc (ctx->arena, (d->n_history + 1) * sizeof *h);
    if (d->n_history)
        memcpy (h, d->history, d->n_history * sizeof *h);
    h[d->n_history++] = c;
    d->history = h;
}

static void
s_emit (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__Defect *d, const char *what)
{
    Pm__V1__Event *ev =
        inspection_event (ctx, pm_arena_printf (ctx->arena, "inspection.defect.%s", what), d->estate_id, d->unit_id);
    ev->payload_case = PM__V1__EVENT__PAYLOAD_DEFECT;
    ev->defect = (Pm__V1__Defect *) d;
    pm_emit (out, txn, ev);
}

static void
s_overdue_queue_del (pm_txn_t *txn, const Pm__V1__Defect *d)
{
    pm_key_t k;
    pm_txn_del_key (txn, INSP_Q_OVERDUE, s_key (&k, d->unit_id, s_no (d)));
}

/* Puts an overdue defect in the overdue_defects queue (or refreshes it). */
static void
s_overdue_queue_put (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Defect *d)
{
    Pm__V1__QueueItem *item = pm_queue_item (
        ctx, d->defect_id, d->estate_id, d->unit_id, d->deadline_ms,
        pm_arena_printf (ctx->arena, "%s defect not rectified by its deadline %s (%s): chase work order %s",
                         inspection_severity_name (d->severity), inspection_time (ctx, d->deadline_ms),
                         inspection_defect_state_name (d->state), *d->order_id ? d->order_id : "(none yet)"));
    pm_queue_field (ctx, item, "room", "%s", d->room);
    pm_queue_field (ctx, item, "category", "%s", d->category);
    pm_queue_field (ctx, item, "description", "%s", d->description);
    pm_queue_field (ctx, item, "order_id", "%s", d->order_id);
    pm_key_t k;
    pm_queue_put (txn, INSP_Q_OVERDUE, s_key (&k, d->unit_id, s_no (d)), item);
}

/* Moves the defect to `to` (see the top of the file); what names the event
 * (inspection.defect.<what>) and the history entry; emit false records the
 * change without an event. u and d are saved here. */
static void
s_move (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, Pm__Inspection__UnitRecord *u, Pm__Inspection__DefectRecord *rec,
        Pm__V1__DefectState to, const char *what, const char *by, const char *reason, bool emit)
{
    const inspection_t *in = ctx->app;
    Pm__V1__Defect *d = rec->defect;
    Pm__V1__DefectState from = d->state;
    bool working = from == PM__V1__DEFECT_STATE__DEFECT_OPEN || from == PM__V1__DEFECT_STATE__RECTIFYING;
    if (from == PM__V1__DEFECT_STATE__RECTIFIED && to != PM__V1__DEFECT_STATE__RECTIFIED) {
        u->defects_rectified--;
        if (to != PM__V1__DEFECT_STATE__VERIFIED && u->due_round) { /* no longer all rectified */
            pm_key_t k;
            pm_txn_del_key (txn, INSP_Q_DUE, inspection_unit_key (&k, u->unit_id));
            u->due_round = 0;
            u->due_ms = 0;
        }
    }
    d->state = to;
    switch (to) {
    case PM__V1__DEFECT_STATE__RECTIFIED:
        u->defects_rectified++;
        d->rectified_ms = ctx->now_ms;
        pm_timer_cancel (txn, INSP_TIMER_DEADLINE, d->defect_id);
        if (working && d->overdue) {
            inspection_kpi_add (txn, d->estate_id, d->building, "overdue_open", -1);
            s_overdue_queue_del (txn, d);
        }
        break;
    case PM__V1__DEFECT_STATE__VERIFIED:
        u->defects_open--;
        d->verified_ms = ctx->now_ms;
        d->reason = "";
        pm_timer_cancel (txn, INSP_TIMER_DEADLINE, d->defect_id);
        inspection_kpi_add (txn, d->estate_id, d->building, "verified", 1);
        inspection_kpi_add (txn, d->estate_id, d->building, "verify_ms", ctx->now_ms - d->recorded_ms);
        inspection_kpi_add (txn, d->estate_id, d->building, "defects_open", -1);
        break;
    case PM__V1__DEFECT_STATE__DEFECT_OPEN:
    case PM__V1__DEFECT_STATE__RECTIFYING:
        if (from != PM__V1__DEFECT_STATE__RECTIFIED)
            break;
        d->rectified_ms = 0;
        if (strcmp (what, "reopened") == 0) { /* the inspector's: a new deadline from now */
            d->deadline_ms = ctx->now_ms + in->deadline_ms[d->severity];
            d->overdue = false;
            pm_timer_set (txn, INSP_TIMER_DEADLINE, d->defect_id, d->deadline_ms, NULL, 0);
        } else if (d->overdue) { /* its order went back to work: overdue again */
            inspection_kpi_add (txn, d->estate_id, d->building, "overdue_open", 1);
            s_overdue_queue_put (ctx, txn, d);
        } else { /* ... under its old deadline (a past one fires at once) */
            pm_timer_set (txn, INSP_TIMER_DEADLINE, d->defect_id, d->deadline_ms, NULL, 0);
        }
        break;
    default:
        break;
    }
    s_history (ctx, rec, what, by, reason, u->round_open ? u->rounds : 0);
    s_save (txn, d->unit_id, s_no (d), rec);
    if (emit)
        s_emit (ctx, txn, out, d, what);
    if (to == PM__V1__DEFECT_STATE__RECTIFIED)
        inspection_check_due (ctx, txn, u, out);
    inspection_unit_save (txn, u);
}

/* --- inspection.defect.record --------------------------------------------------- */

size_t
inspection_round_defects (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, uint32_t round_no,
                          inspection_item_defect_t **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INSP_DEFECTS, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        Pm__Inspection__DefectRecord *rec;
        if (pm_scan_msg (&s, &pm__inspection__defect_record__descriptor, &rec) != PM_OK || !rec->defect
            || rec->defect->round_no != round_no)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            inspection_item_defect_t *a = pm_arena_alloc (ctx->arena, cap * sizeof *a);
            if (n)
                memcpy (a, *out, n * sizeof *a);
            *out = a;
        }
        const Pm__V1__Defect *d = rec->defect;
        (*out)[n++] = (inspection_item_defect_t) { d->room, d->category, d->defect_id, d->recorded_by, d->recorded_ms };
    }
    pm_scan_end (&s);
    return n;
}

const inspection_item_defect_t *
inspection_item_defect (const inspection_item_defect_t *d, size_t n, const char *room, const char *category)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (d[i].room, room) == 0 && strcmp (d[i].category, category) == 0)
            return &d[i];
    return NULL;
}

static int
s_text (pm_out_t *out, const char *field, const char *v, size_t max)
{
    if (!pm_utf8_valid_str (v))
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: not UTF-8 text", field);
    if (strlen (v) > max)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: %zu bytes; at most %zu", field, strlen (v), max);
    return PM__V1__STATUS__OK;
}

static int
s_by_position (const void *a, const void *b)
{
    uint32_t x = (*(Pm__V1__RoundItemView *const *) a)->position, y = (*(Pm__V1__RoundItemView *const *) b)->position;
    return x < y ? -1 : x > y;
}

/* The rooms and categories a round accepts, for an INVALID reply. */
int
inspection_bad_item (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__Inspection__UnitRecord *u, uint32_t round_no,
            bool full, const char *room, const char *category)
{
    inspection_checklist_t c;
    if (full) { /* the round's own copy, in checklist order */
        size_t n = 0, cap = 64;
        Pm__V1__RoundItemView **lines = pm_arena_alloc (ctx->arena, cap * sizeof *lines);
        pm_key_t k;
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, INSP_ITEMS, pm_key (&k, "su", u->unit_id, round_no)); s.ok; pm_scan_next (&s)) {
            if (n == cap) {
                Pm__V1__RoundItemView **a = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *a);
                memcpy (a, lines, cap * sizeof *a);
                lines = a;
                cap *= 2;
            }
            if (pm_scan_msg (&s, &pm__v1__round_item_view__descriptor, &lines[n]) == PM_OK)
                n++;
        }
        pm_scan_end (&s);
        qsort (lines, n, sizeof *lines, s_by_position);
        Pm__V1__ChecklistItem **items = pm_arena_alloc (ctx->arena, (n + 1) * sizeof *items);
        for (size_t i = 0; i < n; i++) {
            items[i] = pm_arena_alloc (ctx->arena, sizeof **items);
            pm__v1__checklist_item__init (items[i]);
            items[i]->room = lines[i]->room;
            items[i]->category = lines[i]->category;
        }
        c = (inspection_checklist_t) { items, n, NULL };
    } else {
        inspection_checklist_of (ctx, txn, u->estate_id, &c);
    }
    const char *cats = inspection_checklist_categories (ctx, &c, room);
    if (*cats)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "category: '%s' is not on the checklist of room %s in %s round %u; expected one of: %s",
                         category, room, u->unit_id, round_no, cats);
    return pm_reply (out, PM__V1__STATUS__INVALID, "room: '%s' is not on the checklist of %s round %u; expected one of: %s",
                     room, u->unit_id, round_no, inspection_checklist_rooms (ctx, &c));
}

int
inspection_on_defect_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const inspection_t *in = ctx->app;
    const Pm__V1__InspectionDefectRecordRequest *q = req->inspection_defect_record;
    if (!*q->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected a unit such as E01/3/2-301");
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, q->unit_id);
    if (!u)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: inspection knows no unit '%s' (not registered with intake, or not yet applied)",
                         q->unit_id);
    if (!u->round_open)
        return inspection_no_round (ctx, out, u, "recording a defect");
    if (q->severity != PM__V1__SEVERITY__MINOR && q->severity != PM__V1__SEVERITY__MAJOR
        && q->severity != PM__V1__SEVERITY__CRITICAL)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "severity: not set; expected MINOR, MAJOR or CRITICAL (deadlines %lldh, %lldh, %lldh)",
                         (long long) (in->deadline_ms[1] / 3600000), (long long) (in->deadline_ms[2] / 3600000),
                         (long long) (in->deadline_ms[3] / 3600000));
    const char *trimmed;
    size_t tlen;
    pm_trim_span (q->description, &trimmed, &tlen);
    if (tlen == 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "description: empty; say what is wrong, e.g. \"卫生间地漏返水\" (water backs up from the drain)");
    int st;
    if ((st = s_text (out, "description", q->description, S_DESCRIPTION_MAX)) != PM__V1__STATUS__OK
        || (st = s_text (out, "location", q->location, S_TEXT_MAX)) != PM__V1__STATUS__OK
        || (st = s_text (out, "recorded_by", q->recorded_by, S_TEXT_MAX)) != PM__V1__STATUS__OK
        || (st = s_text (out, "room", q->room, S_TEXT_MAX)) != PM__V1__STATUS__OK
        || (st = s_text (out, "category", q->category, S_TEXT_MAX)) != PM__V1__STATUS__OK)
        return st;
    if (q->n_photos > S_PHOTOS_MAX)
        return pm_reply (out, PM__V1__STATUS__INVALID, "photos: %zu; at most %d per defect", q->n_photos, S_PHOTOS_MAX);
    for (size_t i = 0; i < q->n_photos; i++) {
        if (!*q->photos[i] || strlen (q->photos[i]) > S_PHOTO_MAX || !pm_utf8_valid_str (q->photos[i]))
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "photos[%zu]: expected a photo id or URL of 1 to %d bytes (photos live elsewhere)", i,
                             S_PHOTO_MAX);
    }
    Pm__Inspection__RoundRecord *round = inspection_round_load (txn, u->unit_id, u->rounds);
    if (!round)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: round %u is open but not stored", u->unit_id, u->rounds);
    Pm__V1__RoundItemView *item = NULL;
    pm_key_t ik;
    if (round->full) {
        if (pm_txn_get_msg (txn, INSP_ITEMS, pm_key (&ik, "suss", u->unit_id, u->rounds, q->room, q->category),
                            &pm__v1__round_item_view__descriptor, &item)
            != PM_OK)
            return inspection_bad_item (ctx, txn, out, u, u->rounds, true, q->room, q->category);
    } else {
        inspection_checklist_t c;
        inspection_checklist_of (ctx, txn, u->estate_id, &c);
        if (!inspection_checklist_find (&c, q->room, q->category))
            return inspection_bad_item (ctx, txn, out, u, u->rounds, false, q->room, q->category);
    }

    uint32_t no = u->last_defect + 1;
    Pm__Inspection__DefectRecord *rec = pm_arena_alloc (ctx->arena, sizeof *rec);
    pm__inspection__defect_record__init (rec);
    Pm__V1__Defect *d = pm_arena_alloc (ctx->arena, sizeof *d);
    pm__v1__defect__init (d);
    rec->defect = d;
    d->defect_id = pm_arena_printf (ctx->arena, "%s#%u", u->unit_id, no);
    d->unit_id = u->unit_id;
    d->estate_id = u->estate_id;
    d->building = u->building;
    d->round_no = u->rounds;
    d->room = q->room;
    d->category = q->category;
    d->severity = q->severity;
    d->description = q->description;
    d->location = q->location;
    d->photos = q->photos;
    d->n_photos = q->n_photos;
    d->recorded_by = *q->recorded_by ? q->recorded_by : round->inspector;
    d->recorded_ms = ctx->now_ms;
    d->deadline_ms = ctx->now_ms + in->deadline_ms[q->severity];
    d->state = PM__V1__DEFECT_STATE__DEFECT_OPEN;
    s_history (ctx, rec, "recorded", d->recorded_by, NULL, u->rounds);

    if (item && !inspection_line_has_defect (round, item->position)) {
        /* the line's first defect: the line is recorded (if it was pending) and marked */
        if (item->result == PM__V1__ITEM_RESULT__ITEM_PENDING)
            round->items_recorded++;
        uint32_t *lines = pm_arena_alloc (ctx->arena, (round->n_defect_lines + 1) * sizeof *lines);
        if (round->n_defect_lines)
            memcpy (lines, round->defect_lines, round->n_defect_lines * sizeof *lines);
        lines[round->n_defect_lines++] = item->position;
        round->defect_lines = lines;
        pm_key_t rk;
        pm_txn_put_msg (txn, INSP_ROUNDS, pm_key (&rk, "su", u->unit_id, u->rounds), &round->base);
    }
    s_save (txn, u->unit_id, no, rec);
    pm_timer_set (txn, INSP_TIMER_DEADLINE, d->defect_id, d->deadline_ms, NULL, 0);
    u->last_defect = no;
    u->defects_open++;
    inspection_unit_save (txn, u);

    inspection_kpi_add (txn, u->estate_id, u->building, "defects", 1);
    inspection_kpi_add (txn, u->estate_id, u->building, "defects_open", 1);
    inspection_kpi_add (txn, u->estate_id, u->building, pm_arena_printf (ctx->arena, "cat:%s", d->category), 1);
    inspection_kpi_add (txn, u->estate_id, u->building, pm_arena_printf (ctx->arena, "room:%s", d->room), 1);
    s_emit (ctx, txn, out, d, "recorded");

    /* the reply (stored under the request id) leaves out what the request said
     * itself: description, location, photos */
    Pm__V1__Defect *brief = pm_arena_alloc (ctx->arena, sizeof *brief);
    *brief = *d;
    brief->description = "";
    brief->location = "";
    brief->photos = NULL;
    brief->n_photos = 0;
    Pm__V1__InspectionDefectRecordReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_defect_record_reply__init (r);
    r->defect = brief;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "defect %s recorded: %s / %s, %s, rectify by %s", d->defect_id, d->room,
                     d->category, inspection_severity_name (d->severity), inspection_time (ctx, d->deadline_ms));
}

/* --- verify and reopen ----------------------------------------------------------- */

/* Loads the unit and defect a verify / reopen names, checking that a round is
 * open and the defect is RECTIFIED. OK, or the reply's status. */
static int
s_rectified (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *defect_id, const char *what,
             Pm__Inspection__UnitRecord **up, Pm__Inspection__DefectRecord **recp)
{
    char *unit_id;
    uint32_t no;
    if (!*defect_id || !inspection_defect_id_parse (ctx, defect_id, &unit_id, &no))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "defect_id: '%s' is not a defect id; expected unit#number, e.g. E01/3/2-301#4", defect_id);
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, unit_id);
    Pm__Inspection__DefectRecord *rec = u ? inspection_defect_load (txn, unit_id, no) : NULL;
    if (!rec)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "defect_id: no defect %s (%s)", defect_id,
                         !u ? "inspection knows no such unit"
                            : pm_arena_printf (ctx->arena, "unit %s has defects #1 to #%u", unit_id, u->last_defect));
    const Pm__V1__Defect *d = rec->defect;
    switch (d->state) {
    case PM__V1__DEFECT_STATE__RECTIFIED:
        break;
    case PM__V1__DEFECT_STATE__DEFECT_OPEN:
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "defect %s is OPEN (%s): it can be %s only once it is RECTIFIED (its work order done)",
                         defect_id,
                         !*d->order_id ? "no work order on it yet"
                         : rec->order_state == PM__V1__ORDER_STATE__CANCELLED
                             ? pm_arena_printf (ctx->arena, "work order %s was cancelled", d->order_id)
                             : pm_arena_printf (ctx->arena, "reopened; work order %s to do it again", d->order_id),
                         what);
    case PM__V1__DEFECT_STATE__RECTIFYING:
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "defect %s is RECTIFYING (work order %s not done yet): it can be %s only once it is RECTIFIED",
                         defect_id, d->order_id, what);
    case PM__V1__DEFECT_STATE__VERIFIED:
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "defect %s is VERIFIED already (%s): it is closed", defect_id,
                         inspection_time (ctx, d->verified_ms));
    default:
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "defect %s has no state", defect_id);
    }
    if (!u->round_open)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "defect %s is RECTIFIED; it is %s at a re-inspection: start round %u on %s first "
                         "(inspection.round.start)",
                         defect_id, what, u->rounds + 1, u->unit_id);
    *up = u;
    *recp = rec;
    return PM__V1__STATUS__OK;
}

/* Notes the defect as checked by the open round (verified or reopened). */
static void
s_round_checked (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Inspection__UnitRecord *u, const char *defect_id, bool verified)
{
    Pm__Inspection__RoundRecord *r = inspection_round_load (txn, u->unit_id, u->rounds);
    if (!r)
        return;
    char ***arr = verified ? &r->verified : &r->reopened;
    size_t *n = verified ? &r->n_verified : &r->n_reopened;
    char **a = pm_arena_alloc (ctx->arena, (*n + 1) * sizeof *a);
    if (*n)
        memcpy (a, *arr, *n * sizeof *a);
    a[(*n)++] = (char *) defect_id;
    *arr = a;
    pm_key_t k;
    pm_txn_put_msg (txn, INSP_ROUNDS, pm_key (&k, "su", u->unit_id, u->rounds), &r->base);
}

/* Who checked: as given, else the open round's inspector, else the actor. */
static const char *
s_by (pm_txn_t *txn, const Pm__Inspection__UnitRecord *u, const Pm__V1__Request *req, const char *by)
{
    if (*by)
        return by;
    Pm__Inspection__RoundRecord *r = inspection_round_load (txn, u->unit_id, u->rounds);
    return r && *r->inspector ? r->inspector : *req->actor ? req->actor : "?";
}

int
inspection_on_defect_verify (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionDefectVerifyRequest *q = req->inspection_defect_verify;
    Pm__Inspection__UnitRecord *u;
    Pm__Inspection__DefectRecord *rec;
    int st = s_rectified (ctx, txn, out, q->defect_id, "verified", &u, &rec);
    if (st != PM__V1__STATUS__OK)
        return st;
    s_round_checked (ctx, txn, u, rec->defect->defect_id, true);
    s_move (ctx, txn, out, u, rec, PM__V1__DEFECT_STATE__VERIFIED, "verified", s_by (txn, u, req, q->by), NULL, true);
    Pm__V1__InspectionDefectVerifyReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_defect_verify_reply__init (r);
    r->defect = rec->defect;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "defect %s verified; %u defect(s) of %s still open", q->defect_id,
                     u->defects_open, u->unit_id);
}

int
inspection_on_defect_reopen (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionDefectReopenRequest *q = req->inspection_defect_reopen;
    const char *t;
    size_t tlen;
    pm_trim_span (q->reason, &t, &tlen);
    if (tlen == 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "reason: empty; say why the rectification is not accepted, e.g. \"墙面仍有裂缝\"");
    int st = s_text (out, "reason", q->reason, S_DESCRIPTION_MAX);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__Inspection__UnitRecord *u;
    Pm__Inspection__DefectRecord *rec;
    if ((st = s_rectified (ctx, txn, out, q->defect_id, "reopened", &u, &rec)) != PM__V1__STATUS__OK)
        return st;
    s_round_checked (ctx, txn, u, rec->defect->defect_id, false);
    rec->defect->reason = q->reason;
    s_move (ctx, txn, out, u, rec, PM__V1__DEFECT_STATE__DEFECT_OPEN, "reopened", s_by (txn, u, req, q->by), q->reason,
            true);
    Pm__V1__InspectionDefectReopenReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_defect_reopen_reply__init (r);
    r->defect = rec->defect;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "defect %s reopened: %s; its work order goes back to work, new deadline %s",
                     q->defect_id, q->reason, inspection_time (ctx, rec->defect->deadline_ms));
}

/* --- work orders (workorder.order.*) ------------------------------------------------ */

int
inspection_on_order (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__WorkOrder *o = ev->order;
    if (o->source != PM__V1__ORDER_SOURCE__DEFECT || !*o->defect_id)
        return PM__V1__STATUS__OK; /* a repair or complaint: not ours */
    char *unit_id;
    uint32_t no;
    if (!inspection_defect_id_parse (ctx, o->defect_id, &unit_id, &no))
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: order %s names defect_id '%s', which is not a defect id",
                         ev->type, o->order_id, o->defect_id);
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, unit_id);
    Pm__Inspection__DefectRecord *rec = u ? inspection_defect_load (txn, unit_id, no) : NULL;
    if (!rec)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "%s: order %s names defect %s, which inspection does not know",
                         ev->type, o->order_id, o->defect_id);
    Pm__V1__Defect *d = rec->defect;
    if (d->state == PM__V1__DEFECT_STATE__VERIFIED)
        return PM__V1__STATUS__OK; /* closed: its order is confirmed and archived after it */
    bool created = strcmp (ev->type, "workorder.order.created") == 0;
    if (*d->order_id && strcmp (d->order_id, o->order_id) != 0 && !created
        && rec->order_state != PM__V1__ORDER_STATE__CANCELLED) {
        pm_debug ("%s: order %s is not the current order %s of defect %s: ignored", ev->type, o->order_id, d->order_id,
                  d->defect_id);
        return PM__V1__STATUS__OK;
    }
    bool changed = strcmp (d->order_id, o->order_id) != 0 || rec->order_state != o->state;
    d->order_id = o->order_id;
    rec->order_state = o->state;
    const char *by = *o->technician ? o->technician : *o->team ? o->team : o->order_id;
    switch (o->state) {
    case PM__V1__ORDER_STATE__ORDER_OPEN:
    case PM__V1__ORDER_STATE__ASSIGNED:
    case PM__V1__ORDER_STATE__IN_PROGRESS:
        if (d->state == PM__V1__DEFECT_STATE__DEFECT_OPEN || d->state == PM__V1__DEFECT_STATE__RECTIFIED) {
            s_move (ctx, txn, out, u, rec, PM__V1__DEFECT_STATE__RECTIFYING, "rectifying", by,
                    d->state == PM__V1__DEFECT_STATE__RECTIFIED ? pm_arena_printf (ctx->arena, "%s%s%s", ev->type,
                                                                                   *o->reason ? ": " : "", o->reason)
                                                                : NULL,
                    true);
            return PM__V1__STATUS__OK;
        }
        break;
    case PM__V1__ORDER_STATE__DONE:
        if (d->state == PM__V1__DEFECT_STATE__DEFECT_OPEN || d->state == PM__V1__DEFECT_STATE__RECTIFYING) {
            s_move (ctx, txn, out, u, rec, PM__V1__DEFECT_STATE__RECTIFIED, "rectified", by, NULL, true);
            return PM__V1__STATUS__OK;
        }
        break;
    case PM__V1__ORDER_STATE__CANCELLED:
        if (d->state == PM__V1__DEFECT_STATE__RECTIFYING || d->state == PM__V1__DEFECT_STATE__RECTIFIED) {
            s_move (ctx, txn, out, u, rec, PM__V1__DEFECT_STATE__DEFECT_OPEN, "order_cancelled", by,
                    pm_arena_printf (ctx->arena, "work order %s cancelled%s%s", o->order_id, *o->reason ? ": " : "",
                                     o->reason),
                    false);
            return PM__V1__STATUS__OK;
        }
        break;
    default: /* CONFIRMED, ARCHIVED: they follow the inspector's verification */
        break;
    }
    if (changed)
        s_save (txn, unit_id, no, rec);
    return PM__V1__STATUS__OK;
}

/* --- the deadline ----------------------------------------------------------------- */

int
inspection_on_deadline (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                        pm_out_t *out)
{
    char *unit_id;
    uint32_t no;
    if (!inspection_defect_id_parse (ctx, key, &unit_id, &no))
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "deadline timer for '%s', which is not a defect id", key);
    Pm__Inspection__UnitRecord *u = inspection_unit_load (txn, unit_id);
    Pm__Inspection__DefectRecord *rec = u ? inspection_defect_load (txn, unit_id, no) : NULL;
    if (!rec)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "deadline of defect %s, which inspection does not know", key);
    Pm__V1__Defect *d = rec->defect;
    if ((d->state != PM__V1__DEFECT_STATE__DEFECT_OPEN && d->state != PM__V1__DEFECT_STATE__RECTIFYING) || d->overdue)
        return PM__V1__STATUS__OK;
    d->overdue = true;
    s_history (ctx, rec, "overdue", "deadline", pm_arena_printf (ctx->arena, "not rectified by %s",
                                                                inspection_time (ctx, d->deadline_ms)),
               u->round_open ? u->rounds : 0);
    s_save (txn, unit_id, no, rec);
    inspection_kpi_add (txn, d->estate_id, d->building, "overdue", 1);
    inspection_kpi_add (txn, d->estate_id, d->building, "overdue_open", 1);
    s_overdue_queue_put (ctx, txn, d);
    s_emit (ctx, txn, out, d, "overdue");
    return PM__V1__STATUS__OK;
}
