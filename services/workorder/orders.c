/* orders.c - the work order and its state machine:
 *
 *   OPEN -> ASSIGNED -> IN_PROGRESS -> DONE -> CONFIRMED -> ARCHIVED
 *     \________\______________\--> CANCELLED (with a reason, before DONE)
 *   DONE -> ASSIGNED: the owner rejects it (a reason; counts against 合格率)
 *
 * Every change of an order goes through wo_order_save, which keeps what
 * follows from the order in the same transaction: the state counts of its
 * estate, its technician's load, its queue tables, its SLA timers (moved or
 * cancelled), the unit and defect indexes, and the event with the whole
 * order. So no handler can forget one of them. */
#include "workorder.h"
#include "pm/err.h"
#include "pm/text.h"

#include <stdlib.h>
#include <string.h>

/* --- ids and keys ----------------------------------------------------------------------- */

bool
wo_order_id_parse (pm_arena_t *a, const char *id, const char **estate, uint64_t *n)
{
    if (strncmp (id, "WO-", 3) != 0)
        return false;
    const char *dash = strrchr (id, '-');
    if (dash <= id + 3 || !dash[1] || strspn (dash + 1, "0123456789") != strlen (dash + 1) || strlen (dash + 1) > 12)
        return false;
    size_t elen = (size_t) (dash - (id + 3));
    char *e = pm_arena_alloc (a, elen + 1);
    memcpy (e, id + 3, elen);
    *estate = e;
    *n = strtoull (dash + 1, NULL, 10);
    return *n > 0;
}

const pm_key_t *
wo_order_key (pm_key_t *k, const char *estate, uint64_t n)
{
    return pm_key (k, "sU", estate, n);
}

int
wo_order_load_key (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, uint64_t n, wo_order_t *w)
{
    pm_key_t k;
    memset (w, 0, sizeof *w);
    int rc = pm_txn_get_msg (txn, WO_ORDERS, wo_order_key (&k, estate, n), &pm__workorder__order_record__descriptor,
                             &w->rec);
    if (rc != PM_OK)
        return rc;
    if (!w->rec->order)
        return PM_EPROTO;
    w->o = w->rec->order;
    w->estate = estate;
    w->n = n;
    w->old_state = w->o->state;
    w->old_queues = w->rec->queues;
    return PM_OK;
}

int
wo_order_load (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *id, wo_order_t *w)
{
    const char *estate;
    uint64_t n;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "order_id: empty; expected an order id such as WO-E01-000042");
    if (!wo_order_id_parse (ctx->arena, id, &estate, &n))
        return pm_reply (out, PM__V1__STATUS__INVALID, "order_id '%s': not an order id; expected e.g. WO-E01-000042",
                         id);
    int rc = wo_order_load_key (ctx, txn, estate, n, w);
    if (rc == PM_ENOTFOUND)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "order_id: no order %s", id);
    if (rc != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "order %s: stored record does not decode", id);
    return PM__V1__STATUS__OK;
}

void
wo_order_new (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, wo_order_t *w)
{
    char *seq = pm_arena_printf (ctx->arena, "order_seq:%s", estate);
    uint64_t n = pm_meta_get_u64 (txn, seq) + 1;
    pm_meta_put_u64 (txn, seq, n);
    memset (w, 0, sizeof *w);
    w->rec = pm_arena_alloc (ctx->arena, sizeof *w->rec);
    pm__workorder__order_record__init (w->rec);
    w->o = pm_arena_alloc (ctx->arena, sizeof *w->o);
    pm__v1__work_order__init (w->o);
    w->rec->order = w->o;
    w->o->order_id = pm_arena_printf (ctx->arena, "WO-%s-%06llu", estate, (unsigned long long) n);
    w->o->estate_id = (char *) estate;
    w->o->state = PM__V1__ORDER_STATE__ORDER_OPEN;
    w->o->created_ms = ctx->now_ms;
    w->estate = estate;
    w->n = n;
    w->old_state = PM__V1__ORDER_STATE__ORDER_STATE_UNSET;
    w->is_new = true;
}

void
wo_strv_push (pm_arena_t *a, char ***v, size_t *n, const char *s)
{
    char **nv = pm_arena_alloc (a, (*n + 1) * sizeof *nv);
    if (*n)
        memcpy (nv, *v, *n * sizeof *nv);
    nv[(*n)++] = pm_arena_strdup (a, s);
    *v = nv;
}

/* --- states ----------------------------------------------------------------------------- */

const char *
wo_state_name (int state)
{
    switch (state) {
    case PM__V1__ORDER_STATE__ORDER_OPEN: return "OPEN";
    case PM__V1__ORDER_STATE__ASSIGNED: return "ASSIGNED";
    case PM__V1__ORDER_STATE__IN_PROGRESS: return "IN_PROGRESS";
    case PM__V1__ORDER_STATE__DONE: return "DONE";
    case PM__V1__ORDER_STATE__CONFIRMED: return "CONFIRMED";
    case PM__V1__ORDER_STATE__ARCHIVED: return "ARCHIVED";
    case PM__V1__ORDER_STATE__CANCELLED: return "CANCELLED";
    default: return "UNSET";
    }
}

bool
wo_is_active (int state)
{
    return state == PM__V1__ORDER_STATE__ORDER_OPEN || state == PM__V1__ORDER_STATE__ASSIGNED
           || state == PM__V1__ORDER_STATE__IN_PROGRESS;
}

const char *
wo_next_steps (const Pm__V1__WorkOrder *o)
{
    bool defect = o->source == PM__V1__ORDER_SOURCE__DEFECT;
    switch (o->state) {
    case PM__V1__ORDER_STATE__ORDER_OPEN:
        return "from OPEN: workorder.assign (or workorder.claim where the estate is open for claiming), "
               "workorder.cancel";
    case PM__V1__ORDER_STATE__ASSIGNED:
        return o->source == PM__V1__ORDER_SOURCE__COMPLAINT
                   ? "from ASSIGNED: workorder.start (the handler took it up), workorder.checklist, "
                     "workorder.assign (another handler), workorder.cancel"
                   : "from ASSIGNED: workorder.start (the technician arrived on site), workorder.assign "
                     "(another technician), workorder.cancel";
    case PM__V1__ORDER_STATE__IN_PROGRESS:
        return o->source == PM__V1__ORDER_SOURCE__COMPLAINT
                   ? "from IN_PROGRESS: workorder.checklist (the five steps), then workorder.done; workorder.cancel"
                   : "from IN_PROGRESS: workorder.done, workorder.cancel";
    case PM__V1__ORDER_STATE__DONE:
        return defect ? "from DONE: the inspector's verification (inspection.defect.verified) confirms it, or "
                        "inspection reopens it"
                      : "from DONE: workorder.confirm (the owner signs, satisfaction 1-5) or workorder.reject "
                        "(with the owner's reason)";
    case PM__V1__ORDER_STATE__CONFIRMED:
    case PM__V1__ORDER_STATE__ARCHIVED: return "it is closed: nothing more can be done to it";
    case PM__V1__ORDER_STATE__CANCELLED: return "it was cancelled: nothing more can be done to it";
    default: return "";
    }
}

/* CONFLICT: "WO-E01-000042 is DONE; from DONE: ..." */
static int
s_conflict (pm_out_t *out, const Pm__V1__WorkOrder *o, const char *what)
{
    return pm_reply (out, PM__V1__STATUS__CONFLICT, "%s is %s, so it cannot %s; %s", o->order_id,
                     wo_state_name (o->state), what, wo_next_steps (o));
}

/* --- the save ------------------------------------------------------------------------------ */

static uint32_t
s_queue_mask (const Pm__Workorder__OrderRecord *rec)
{
    const Pm__V1__WorkOrder *o = rec->order;
    uint32_t q = 0;
    bool active = wo_is_active (o->state);
    if (o->state == PM__V1__ORDER_STATE__ORDER_OPEN)
        q |= 1u << WO_QB_UNASSIGNED;
    if (active
        && ((rec->respond_stage == 1 && o->state != PM__V1__ORDER_STATE__IN_PROGRESS) || rec->complete_stage == 1))
        q |= 1u << WO_QB_WARNED;
    if (active && (rec->respond_stage == 2 || rec->complete_stage == 2))
        q |= 1u << WO_QB_BREACHED;
    if (o->state == PM__V1__ORDER_STATE__DONE && rec->unsigned_overdue)
        q |= 1u << WO_QB_UNSIGNED;
    if (o->rejections >= 2 && (active || o->state == PM__V1__ORDER_STATE__DONE))
        q |= 1u << WO_QB_REJECTED;
    return q;
}

/* Adds d to a repeated counter at index i, growing it (arena) when short. */
static void
s_count (pm_arena_t *a, uint64_t **v, size_t *n, size_t i, int64_t d)
{
    if (*n <= i) {
        uint64_t *nv = pm_arena_alloc (a, (i + 1) * sizeof *nv);
        if (*n)
            memcpy (nv, *v, *n * sizeof *nv);
        *v = nv;
        *n = i + 1;
    }
    (*v)[i] = (uint64_t) ((int64_t) (*v)[i] + d);
}

int
wo_emit_order (pm_out_t *out, pm_txn_t *txn, Pm__V1__WorkOrder *o, const char *type)
{
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = (char *) type;
    ev.estate_id = o->estate_id;
    ev.unit_id = o->unit_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_ORDER;
    ev.order = o;
    return pm_emit (out, txn, &ev);
}

int
wo_order_save (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, const char *type)
{
    Pm__Workorder__OrderRecord *rec = w->rec;
    Pm__V1__WorkOrder *o = w->o;
    pm_key_t k, ok;
    wo_order_key (&ok, w->estate, w->n);

    /* the technician's load: orders assigned or in progress */
    const char *holder = o->state == PM__V1__ORDER_STATE__ASSIGNED || o->state == PM__V1__ORDER_STATE__IN_PROGRESS
                             ? o->technician
                             : "";
    if (strcmp (holder, rec->holder) != 0) {
        if (*rec->holder)
            wo_load_add (ctx, txn, rec->holder, -1);
        if (*holder)
            wo_load_add (ctx, txn, holder, +1);
        rec->holder = (char *) holder;
    }

    /* queues */
    uint32_t q = s_queue_mask (rec), changed = q ^ rec->queues;
    for (int i = 0; i < WO_NQUEUES; i++) {
        if (!(changed & (1u << i)))
            continue;
        if (q & (1u << i)) {
            unsigned char since[8];
            pm_u64_be ((uint64_t) ctx->now_ms, since);
            pm_txn_put_key (txn, WO_Q_UNASSIGNED + i, &ok, since, sizeof since);
        }
        else
            pm_txn_del_key (txn, WO_Q_UNASSIGNED + i, &ok);
    }

    /* the estate's counts by state and by queue */
    if (changed || w->old_state != (int) o->state) {
        Pm__Workorder__StatsRecord *st;
        pm_key (&k, "s", w->estate);
        if (pm_txn_get_msg (txn, WO_STATS, &k, &pm__workorder__stats_record__descriptor, &st) != PM_OK) {
            st = pm_arena_alloc (ctx->arena, sizeof *st);
            pm__workorder__stats_record__init (st);
        }
        if (w->old_state != (int) o->state) {
            if (w->old_state)
                s_count (ctx->arena, &st->by_state, &st->n_by_state, (size_t) w->old_state, -1);
            s_count (ctx->arena, &st->by_state, &st->n_by_state, (size_t) o->state, +1);
        }
        for (int i = 0; i < WO_NQUEUES; i++)
            if (changed & (1u << i))
                s_count (ctx->arena, &st->by_queue, &st->n_by_queue, (size_t) i, q & (1u << i) ? 1 : -1);
        pm_txn_put_msg (txn, WO_STATS, &k, &st->base);
    }
    rec->queues = q;

    wo_sla_sync (ctx, txn, w);

    pm_txn_put_msg (txn, WO_ORDERS, &ok, &rec->base);
    if (w->is_new) {
        pm_txn_put_key (txn, WO_BY_UNIT, pm_key (&k, "sU", o->unit_id, w->n), o->estate_id, strlen (o->estate_id));
        if (*o->defect_id)
            pm_txn_put_key (txn, WO_BY_DEFECT, pm_key (&k, "s", o->defect_id), o->order_id, strlen (o->order_id));
    }
    if (type)
        wo_emit_order (out, txn, o, type);
    w->old_state = o->state;
    w->old_queues = q;
    w->is_new = false;
    return txn->err;
}

void
wo_reply_order (pm_ctx_t *ctx, pm_out_t *out, const Pm__V1__WorkOrder *o)
{
    Pm__V1__WorkorderOrderReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__workorder_order_reply__init (r);
    r->order = (Pm__V1__WorkOrder *) o;
    pm_reply_body (out, &r->base);
}

/* --- shared transitions ------------------------------------------------------------------- */

void
wo_mark_done (pm_ctx_t *ctx, pm_txn_t *txn, wo_order_t *w)
{
    Pm__V1__WorkOrder *o = w->o;
    o->state = PM__V1__ORDER_STATE__DONE;
    o->done_ms = ctx->now_ms;
    w->rec->unsigned_overdue = false;
    if (!w->rec->done_counted) {
        wo_kpi_t k = { .completed = 1, .complete_ms_sum = ctx->now_ms - o->created_ms };
        wo_kpi_add (ctx, txn, o, ctx->now_ms, &k);
        w->rec->done_counted = true;
    }
    if (!w->rec->due_counted && o->complete_by_ms > 0) {
        /* 及时率: decided by the first completion (or by the deadline passing first) */
        wo_kpi_t k = { .due = 1, .on_time = ctx->now_ms <= o->complete_by_ms };
        wo_kpi_add (ctx, txn, o, o->complete_by_ms, &k);
        w->rec->due_counted = true;
    }
}

int
wo_confirm_and_archive (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, uint32_t satisfaction,
                        const char *signed_by)
{
    Pm__V1__WorkOrder *o = w->o;
    o->state = PM__V1__ORDER_STATE__CONFIRMED;
    o->confirmed_ms = ctx->now_ms;
    o->satisfaction = satisfaction;
    o->signed_by = pm_arena_strdup (ctx->arena, signed_by);
    wo_kpi_t k = { .confirmed = 1,
                   .first_pass = o->rejections == 0,
                   .rated = satisfaction > 0,
                   .satisfaction_sum = satisfaction };
    wo_kpi_add (ctx, txn, o, ctx->now_ms, &k);
    w->rec->confirm_counted = true;
    w->rec->confirm_day = wo_day (ctx->app, ctx->now_ms);
    wo_order_save (ctx, txn, out, w, "workorder.order.confirmed");
    o->state = PM__V1__ORDER_STATE__ARCHIVED;
    o->archived_ms = ctx->now_ms;
    return wo_order_save (ctx, txn, out, w, "workorder.order.archived");
}

int
wo_send_back (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, const char *reason, const char *type)
{
    workorder_t *wo = ctx->app;
    Pm__V1__WorkOrder *o = w->o;
    if (w->rec->confirm_counted) { /* its confirmation no longer stands */
        wo_kpi_t k = { .confirmed = -1,
                       .first_pass = -(int64_t) (o->rejections == 0),
                       .rated = -(int64_t) (o->satisfaction > 0),
                       .satisfaction_sum = -(int64_t) o->satisfaction };
        wo_kpi_add (ctx, txn, o, wo_day_start (wo, w->rec->confirm_day), &k);
        w->rec->confirm_counted = false;
    }
    o->rejections++;
    o->reason = pm_arena_strdup (ctx->arena, reason);
    o->confirmed_ms = 0;
    o->archived_ms = 0;
    o->satisfaction = 0;
    o->signed_by = "";
    w->rec->unsigned_overdue = false;
    o->state = *o->technician ? PM__V1__ORDER_STATE__ASSIGNED : PM__V1__ORDER_STATE__ORDER_OPEN;
    wo_kpi_t k = { .rejected = 1 };
    wo_kpi_add (ctx, txn, o, ctx->now_ms, &k);
    wo_order_save (ctx, txn, out, w, type);
    if (o->state == PM__V1__ORDER_STATE__ORDER_OPEN)
        wo_dispatch (ctx, txn, out, w);
    return txn->err;
}

/* --- workorder.create ---------------------------------------------------------------------- */

static bool
s_one_of (const char *s, const char *const *set)
{
    for (int i = 0; set[i]; i++)
        if (strcmp (s, set[i]) == 0)
            return true;
    return false;
}

int
wo_on_create (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    workorder_t *wo = ctx->app;
    const Pm__V1__WorkorderCreateRequest *b = req->workorder_create;
    static const char *const channels[] = { "counter", "phone", "app", NULL };
    if (!*b->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected the unit, e.g. E01/3-1201");
    int kind;
    if (strcmp (b->kind, "repair") == 0)
        kind = WO_KIND_REPAIR;
    else if (strcmp (b->kind, "complaint") == 0)
        kind = WO_KIND_COMPLAINT;
    else
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "kind '%s': expected repair or complaint (a defect's order comes from inspection)", b->kind);
    const char *cat_id = b->category;
    if (!*cat_id && kind == WO_KIND_COMPLAINT)
        cat_id = wo_category_of_kind (wo, WO_KIND_COMPLAINT)->id;
    if (!*cat_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "category: empty; a repair takes one of: %s",
                         wo_category_list (ctx->arena, wo, kind));
    const wo_category_t *c = wo_category (wo, cat_id);
    if (!c)
        return pm_reply (out, PM__V1__STATUS__INVALID, "category '%s': unknown; a %s takes one of: %s", cat_id, b->kind,
                         wo_category_list (ctx->arena, wo, kind));
    if (c->kind != kind)
        return pm_reply (out, PM__V1__STATUS__INVALID, "category '%s' is not for a %s; a %s takes one of: %s", cat_id,
                         b->kind, b->kind, wo_category_list (ctx->arena, wo, kind));
    if (!*b->description || !pm_utf8_valid_str (b->description) || strlen (b->description) > 2000)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "description: %s; expected what is wrong in up to 2000 bytes of UTF-8, e.g. 厨房水管漏水",
                         !*b->description ? "empty" : "not UTF-8 text or too long");
    const char *channel = *b->channel ? b->channel : "counter";
    if (!s_one_of (channel, channels))
        return pm_reply (out, PM__V1__STATUS__INVALID, "channel '%s': expected counter, phone or app", b->channel);
    const char *priority = *b->priority ? b->priority : "normal";
    if (strcmp (priority, "normal") != 0 && strcmp (priority, "urgent") != 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "priority '%s': expected normal or urgent", b->priority);
    if (!pm_utf8_valid_str (b->reporter) || strlen (b->reporter) > 200)
        return pm_reply (out, PM__V1__STATUS__INVALID, "reporter: not UTF-8 text of up to 200 bytes");
    int64_t from = b->preferred_from_ms, to = b->preferred_to_ms;
    if (*b->preferred_window) {
        if (from || to)
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "preferred_window and preferred_from_ms/preferred_to_ms: give one of them, not both");
        if (!wo_window_parse (wo, b->preferred_window, &from, &to))
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "preferred_window '%s': expected the estate's local time, e.g. 2026-12-05 14:00-18:00 "
                             "(or a whole day, 2026-12-05)",
                             b->preferred_window);
    }
    if ((from != 0) != (to != 0) || (from && from >= to))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "preferred window: expected both preferred_from_ms and preferred_to_ms, from before to");
    if (to && to <= ctx->now_ms)
        return pm_reply (out, PM__V1__STATUS__INVALID, "preferred window: it ended at %s, before now (%s)",
                         wo_local_time (ctx->arena, wo, to), wo_local_time (ctx->arena, wo, ctx->now_ms));
    if (to && to - from > 30 * WO_DAY_MS)
        return pm_reply (out, PM__V1__STATUS__INVALID, "preferred window: longer than 30 days; give the days that suit");

    Pm__Workorder__UnitRecord *u = wo_unit_get (ctx, txn, b->unit_id);
    if (!u)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: workorder knows no unit '%s' (not imported, or intake's event not applied yet; "
                         "expected e.g. E01/3-1201)",
                         b->unit_id);
    if (kind == WO_KIND_REPAIR && !u->keys_handed)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: its keys are not handed yet, so repairs are not open to the owner; intake hands the "
                         "keys first (a problem found before that is a defect: record it at the inspection)",
                         b->unit_id);

    wo_order_t w;
    wo_order_new (ctx, txn, u->unit->estate_id, &w);
    Pm__V1__WorkOrder *o = w.o;
    o->source = kind == WO_KIND_COMPLAINT ? PM__V1__ORDER_SOURCE__COMPLAINT : PM__V1__ORDER_SOURCE__REPAIR;
    o->unit_id = u->unit->unit_id;
    o->building = u->unit->building;
    o->category = c->id;
    o->skill = c->skill;
    o->description = b->description;
    o->channel = (char *) channel;
    o->priority = (char *) priority;
    o->reporter = *b->reporter ? b->reporter : u->unit->n_owners ? u->unit->owners[0]->name : "owner";
    o->preferred_from_ms = from;
    o->preferred_to_ms = to;
    wo_deadlines (wo, c, strcmp (priority, "urgent") == 0, o->created_ms, from, to, 0, &o->respond_by_ms,
                  &o->complete_by_ms);
    if (c->warn_before_ms > 0) {
        if (o->respond_by_ms && o->respond_by_ms - c->warn_before_ms > ctx->now_ms)
            w.rec->respond_warn_ms = o->respond_by_ms - c->warn_before_ms;
        if (o->complete_by_ms && o->complete_by_ms - c->warn_before_ms > ctx->now_ms)
            w.rec->complete_warn_ms = o->complete_by_ms - c->warn_before_ms;
    }
    wo_kpi_t k = { .created = 1 };
    wo_kpi_add (ctx, txn, o, ctx->now_ms, &k);
    wo_emit_order (out, txn, o, "workorder.order.created");
    wo_dispatch (ctx, txn, out, &w); /* saves it: assigned, or waiting */
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s created (%s %s): respond by %s, complete by %s; %s", o->order_id,
                     c->id, c->name, o->respond_by_ms ? wo_local_time (ctx->arena, wo, o->respond_by_ms) : "-",
                     wo_local_time (ctx->arena, wo, o->complete_by_ms),
                     *o->technician ? pm_arena_printf (ctx->arena, "assigned to %s", o->technician)
                                    : w.rec->waiting);
}

/* --- the technician's steps ----------------------------------------------------------------- */

int
wo_on_start (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderStartRequest *b = req->workorder_start;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (o->state != PM__V1__ORDER_STATE__ASSIGNED)
        return s_conflict (out, o, "start");
    if (*b->technician && strcmp (b->technician, o->technician) != 0)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "%s is assigned to %s, not %s; reassign it first (workorder.assign) or start it as %s",
                         o->order_id, o->technician, b->technician, o->technician);
    o->state = PM__V1__ORDER_STATE__IN_PROGRESS;
    if (!o->responded_ms)
        o->responded_ms = ctx->now_ms;
    if (!w.rec->responded_counted) {
        wo_kpi_t k = { .responded = 1, .respond_ms_sum = ctx->now_ms - o->created_ms };
        wo_kpi_add (ctx, txn, o, ctx->now_ms, &k);
        w.rec->responded_counted = true;
    }
    wo_order_save (ctx, txn, out, &w, "workorder.order.started");
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s IN_PROGRESS: %s on site", o->order_id, o->technician);
}

static const char *const s_steps[] = { "listen", "apologise", "investigate", "resolve", "follow_up", NULL };

static bool
s_has_step (const Pm__V1__WorkOrder *o, const char *step)
{
    for (size_t i = 0; i < o->n_checklist; i++)
        if (strcmp (o->checklist[i], step) == 0)
            return true;
    return false;
}

int
wo_on_checklist (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderChecklistRequest *b = req->workorder_checklist;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (o->source != PM__V1__ORDER_SOURCE__COMPLAINT)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "%s is not a complaint: the five-step checklist (投诉处理五步法) is for complaints", o->order_id);
    if (!s_one_of (b->step, s_steps))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "step '%s': expected listen, apologise, investigate, resolve or follow_up", b->step);
    if (o->state != PM__V1__ORDER_STATE__ASSIGNED && o->state != PM__V1__ORDER_STATE__IN_PROGRESS)
        return s_conflict (out, o, "take a checklist step");
    if (!pm_utf8_valid_str (b->note) || strlen (b->note) > 1000)
        return pm_reply (out, PM__V1__STATUS__INVALID, "note: not UTF-8 text of up to 1000 bytes");
    if (!s_has_step (o, b->step)) {
        wo_strv_push (ctx->arena, &o->checklist, &o->n_checklist, b->step);
        if (*b->note)
            o->note = b->note;
        wo_order_save (ctx, txn, out, &w, NULL);
    }
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %s done (%zu of 5 steps)", o->order_id, b->step, o->n_checklist);
}

int
wo_on_done (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderDoneRequest *b = req->workorder_done;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (o->state != PM__V1__ORDER_STATE__IN_PROGRESS)
        return s_conflict (out, o, "be done");
    if (!pm_utf8_valid_str (b->note) || strlen (b->note) > 1000)
        return pm_reply (out, PM__V1__STATUS__INVALID, "note: not UTF-8 text of up to 1000 bytes");
    if (o->source == PM__V1__ORDER_SOURCE__COMPLAINT) {
        char *missing = "";
        for (int i = 0; s_steps[i]; i++)
            if (!s_has_step (o, s_steps[i]))
                missing = pm_arena_printf (ctx->arena, "%s%s%s", missing, *missing ? ", " : "", s_steps[i]);
        if (*missing)
            return pm_reply (out, PM__V1__STATUS__CONFLICT,
                             "%s is a complaint: its five steps come before DONE; still to do: %s (workorder.checklist)",
                             o->order_id, missing);
    }
    if (*b->note)
        o->note = b->note;
    wo_mark_done (ctx, txn, &w);
    wo_order_save (ctx, txn, out, &w, "workorder.order.done");
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s DONE%s; %s", o->order_id,
                     o->done_ms <= o->complete_by_ms ? " on time" : " late", wo_next_steps (o));
}

/* --- the owner's sign-off -------------------------------------------------------------------- */

int
wo_on_confirm (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderConfirmRequest *b = req->workorder_confirm;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (o->source == PM__V1__ORDER_SOURCE__DEFECT)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "%s rectifies defect %s: the inspector's verification (inspection.defect.verified) is its "
                         "sign-off, not workorder.confirm",
                         o->order_id, o->defect_id);
    if (o->state != PM__V1__ORDER_STATE__DONE)
        return s_conflict (out, o, "be confirmed");
    if (b->satisfaction < 1 || b->satisfaction > 5)
        return pm_reply (out, PM__V1__STATUS__INVALID, "satisfaction %u: expected the owner's score, 1 to 5",
                         b->satisfaction);
    if (!pm_utf8_valid_str (b->signed_by) || strlen (b->signed_by) > 200)
        return pm_reply (out, PM__V1__STATUS__INVALID, "signed_by: not UTF-8 text of up to 200 bytes");
    wo_confirm_and_archive (ctx, txn, out, &w, b->satisfaction, *b->signed_by ? b->signed_by : o->reporter);
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s confirmed by %s (satisfaction %u) and archived", o->order_id,
                     o->signed_by, o->satisfaction);
}

int
wo_on_reject (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderRejectRequest *b = req->workorder_reject;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (o->source == PM__V1__ORDER_SOURCE__DEFECT)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "%s rectifies defect %s: it goes back to work when inspection reopens the defect "
                         "(inspection.defect.reopened), not by workorder.reject",
                         o->order_id, o->defect_id);
    if (o->state != PM__V1__ORDER_STATE__DONE)
        return s_conflict (out, o, "be rejected");
    if (!*b->reason || !pm_utf8_valid_str (b->reason) || strlen (b->reason) > 1000)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "reason: %s; expected why the owner does not accept the work, e.g. 仍然漏水",
                         !*b->reason ? "empty" : "not UTF-8 text of up to 1000 bytes");
    wo_send_back (ctx, txn, out, &w, b->reason, "workorder.order.rejected");
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s rejected (%u time%s): back to %s %s", o->order_id, o->rejections,
                     o->rejections == 1 ? "" : "s", wo_state_name (o->state), o->technician);
}

int
wo_on_cancel (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderCancelRequest *b = req->workorder_cancel;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (!wo_is_active (o->state))
        return s_conflict (out, o, "be cancelled (only orders before DONE can)");
    if (!*b->reason || !pm_utf8_valid_str (b->reason) || strlen (b->reason) > 1000)
        return pm_reply (out, PM__V1__STATUS__INVALID, "reason: %s; expected why it is cancelled, e.g. 业主撤销报修",
                         !*b->reason ? "empty" : "not UTF-8 text of up to 1000 bytes");
    o->state = PM__V1__ORDER_STATE__CANCELLED;
    o->reason = b->reason;
    o->cancelled_ms = ctx->now_ms;
    wo_kpi_t k = { .cancelled = 1 };
    wo_kpi_add (ctx, txn, o, ctx->now_ms, &k);
    wo_order_save (ctx, txn, out, &w, "workorder.order.cancelled");
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s cancelled: %s", o->order_id, o->reason);
}
