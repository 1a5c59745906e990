/* dispatch.c - how an order finds its technician (派单). Each estate has one
 * of three modes: manual (workorder.assign by the dispatcher), auto (the
 * least-loaded technician on shift with the skill, at once), or claim (抢单:
 * the order is open to every fit technician; the first workorder.claim wins,
 * a later one gets CONFLICT naming the winner).
 *
 * The least-loaded choice is deterministic: fewest orders assigned or in
 * progress, then the longest since the last assignment, then the smallest id. */
#include "workorder.h"
#include "pm/err.h"

#include <string.h>

const char *
wo_mode_name (int mode)
{
    return mode == WO_AUTO ? "auto" : mode == WO_CLAIM ? "claim" : "manual";
}

int
wo_mode_parse (const char *s)
{
    if (strcmp (s, "manual") == 0)
        return WO_MANUAL;
    if (strcmp (s, "auto") == 0)
        return WO_AUTO;
    if (strcmp (s, "claim") == 0)
        return WO_CLAIM;
    return -1;
}

int
wo_estate_mode (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate)
{
    workorder_t *wo = ctx->app;
    Pm__Workorder__EstateRecord *er;
    pm_key_t k;
    if (pm_txn_get_msg (txn, WO_ESTATES, pm_key (&k, "s", estate), &pm__workorder__estate_record__descriptor, &er)
            == PM_OK
        && wo_mode_parse (er->dispatch) >= 0)
        return wo_mode_parse (er->dispatch);
    for (size_t i = 0; i < wo->nestates; i++)
        if (strcmp (wo->estates[i].estate_id, estate) == 0)
            return wo->estates[i].mode;
    return wo->dispatch_default;
}

/* --- loads and the pick index ------------------------------------------------------------ */

void
wo_load_get (pm_txn_t *txn, const char *tech, uint32_t *open, int64_t *last_ms)
{
    Pm__Workorder__LoadRecord *l;
    pm_key_t k;
    *open = 0;
    *last_ms = 0;
    if (pm_txn_get_msg (txn, WO_LOADS, pm_key (&k, "s", tech), &pm__workorder__load_record__descriptor, &l) == PM_OK) {
        *open = l->open;
        *last_ms = l->last_assigned_ms;
    }
}

static void
s_pick (pm_txn_t *txn, const Pm__V1__Technician *t, uint32_t open, int64_t last, bool add)
{
    if (!t->on_shift)
        return;
    pm_key_t k;
    for (size_t e = 0; e < t->n_estates; e++)
        for (size_t s = 0; s < t->n_skills; s++) {
            pm_key (&k, "ssuts", t->estates[e], t->skills[s], open, last, t->technician);
            if (add)
                pm_txn_put_key (txn, WO_PICK, &k, "", 0);
            else
                pm_txn_del_key (txn, WO_PICK, &k);
        }
}

void
wo_pick_index (pm_txn_t *txn, const Pm__V1__Technician *t, bool add)
{
    uint32_t open;
    int64_t last;
    wo_load_get (txn, t->technician, &open, &last);
    s_pick (txn, t, open, last, add);
}

void
wo_load_add (pm_ctx_t *ctx, pm_txn_t *txn, const char *tech, int delta)
{
    Pm__Workorder__LoadRecord l = PM__WORKORDER__LOAD_RECORD__INIT;
    uint32_t open;
    wo_load_get (txn, tech, &open, &l.last_assigned_ms);
    Pm__V1__Technician *t = wo_tech_get (txn, tech, NULL); /* NULL: removed since */
    if (t)
        s_pick (txn, t, open, l.last_assigned_ms, false);
    l.open = delta < 0 && open < (uint32_t) -delta ? 0 : (uint32_t) ((int64_t) open + delta);
    if (delta > 0)
        l.last_assigned_ms = ctx->now_ms;
    pm_key_t k;
    pm_txn_put_msg (txn, WO_LOADS, pm_key (&k, "s", tech), &l.base);
    if (t)
        s_pick (txn, t, l.open, l.last_assigned_ms, true);
}

/* --- who fits ------------------------------------------------------------------------------- */

static bool
s_has (char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (v[i], s) == 0)
            return true;
    return false;
}

static char *
s_join (pm_arena_t *a, char **v, size_t n)
{
    char *s = "";
    for (size_t i = 0; i < n; i++)
        s = pm_arena_printf (a, "%s%s%s", s, i ? ", " : "", v[i]);
    return s;
}

const char *
wo_tech_unfit (pm_ctx_t *ctx, const Pm__V1__Technician *t, const char *estate, const char *skill)
{
    if (!s_has (t->estates, t->n_estates, estate) && !s_has (t->estates, t->n_estates, "*"))
        return pm_arena_printf (ctx->arena, "%s %s does not cover %s (covers %s)", t->technician, t->name, estate,
                                s_join (ctx->arena, t->estates, t->n_estates));
    if (!s_has (t->skills, t->n_skills, skill))
        return pm_arena_printf (ctx->arena, "%s %s has no '%s' skill (has %s)", t->technician, t->name, skill,
                                s_join (ctx->arena, t->skills, t->n_skills));
    if (!t->on_shift)
        return pm_arena_printf (ctx->arena, "%s %s is off shift", t->technician, t->name);
    return NULL;
}

/* The first pick entry under (estate, skill): its key's tail after the
 * prefix (load, last assignment, id: byte order is the choice's order). */
static bool
s_first (pm_txn_t *txn, const char *estate, const char *skill, MDB_val *tail, size_t *plen)
{
    pm_key_t k;
    pm_key (&k, "ss", estate, skill);
    pm_scan_t s;
    bool ok = pm_scan_prefix (&s, txn, WO_PICK, &k);
    if (ok) {
        *plen = k.len;
        tail->mv_data = (char *) s.key.mv_data + k.len;
        tail->mv_size = s.key.mv_size - k.len;
    }
    pm_scan_end (&s);
    return ok;
}

static int
s_tail_cmp (const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = memcmp (a->mv_data, b->mv_data, n);
    return c ? c : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

Pm__V1__Technician *
wo_choose (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *skill, const char **why)
{
    MDB_val a, b;
    size_t la, lb;
    bool ha = s_first (txn, estate, skill, &a, &la), hb = s_first (txn, "*", skill, &b, &lb);
    if (ha || hb) {
        const MDB_val *best = ha && (!hb || s_tail_cmp (&a, &b) <= 0) ? &a : &b;
        const char *id;
        if (pm_key_parse (best->mv_data, best->mv_size, "uts", NULL, NULL, &id) == PM_OK) {
            Pm__V1__Technician *t = wo_tech_get (txn, pm_arena_strdup (ctx->arena, id), NULL);
            if (t)
                return t;
        }
    }
    if (!why)
        return NULL;
    /* nobody: say who has the skill here but is off shift */
    char *off = "";
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, WO_STAFF, NULL); s.ok; pm_scan_next (&s)) {
        Pm__Workorder__StaffRecord *sr;
        if (pm_scan_msg (&s, &pm__workorder__staff_record__descriptor, &sr) != PM_OK || !sr->tech)
            continue;
        Pm__V1__Technician *t = sr->tech;
        if (!t->on_shift && s_has (t->skills, t->n_skills, skill)
            && (s_has (t->estates, t->n_estates, estate) || s_has (t->estates, t->n_estates, "*")))
            off = pm_arena_printf (ctx->arena, "%s%s%s", off, *off ? ", " : "", t->technician);
    }
    pm_scan_end (&s);
    *why = pm_arena_printf (ctx->arena, "no technician on shift with the '%s' skill covers %s%s%s%s", skill, estate,
                            *off ? " (off shift: " : "", off, *off ? ")" : "");
    return NULL;
}

/* Technicians that fit now, for a refusal's message: "T01, T03" or "none". */
static char *
s_fit_list (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *skill)
{
    char *s = "";
    pm_scan_t sc;
    for (pm_scan_prefix (&sc, txn, WO_STAFF, NULL); sc.ok; pm_scan_next (&sc)) {
        Pm__Workorder__StaffRecord *sr;
        if (pm_scan_msg (&sc, &pm__workorder__staff_record__descriptor, &sr) == PM_OK && sr->tech
            && !wo_tech_unfit (ctx, sr->tech, estate, skill))
            s = pm_arena_printf (ctx->arena, "%s%s%s", s, *s ? ", " : "", sr->tech->technician);
    }
    pm_scan_end (&sc);
    return *s ? s : "none";
}

void
wo_assign_to (pm_ctx_t *ctx, pm_txn_t *txn, wo_order_t *w, const Pm__V1__Technician *t, const char *how)
{
    Pm__V1__WorkOrder *o = w->o;
    o->technician = t->technician;
    o->technician_name = t->name;
    o->team = t->team;
    o->team_lead = (char *) wo_team_lead (ctx, txn, t->team, o->estate_id);
    o->team_lead_name = (char *) wo_person_name (o->team_lead);
    o->assigned_ms = ctx->now_ms;
    o->dispatch = (char *) how;
    o->state = PM__V1__ORDER_STATE__ASSIGNED;
    w->rec->waiting = "";
}

int
wo_dispatch (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w)
{
    Pm__V1__WorkOrder *o = w->o;
    int mode = wo_estate_mode (ctx, txn, o->estate_id);
    const char *waiting;
    if (mode == WO_AUTO) {
        const char *why = NULL;
        Pm__V1__Technician *t = wo_choose (ctx, txn, o->estate_id, o->skill, &why);
        if (t) {
            wo_assign_to (ctx, txn, w, t, "auto");
            return wo_order_save (ctx, txn, out, w, "workorder.order.assigned");
        }
        waiting = pm_arena_printf (ctx->arena,
                                   "%s: waits for one (a technician coming on shift takes it), or workorder.assign",
                                   why);
    }
    else if (mode == WO_CLAIM)
        waiting = pm_arena_printf (ctx->arena, "%s is open for claiming (抢单): workorder.claim", o->estate_id);
    else
        waiting = pm_arena_printf (ctx->arena, "%s dispatches by hand: workorder.assign", o->estate_id);
    if (!w->is_new && strcmp (waiting, w->rec->waiting) == 0)
        return txn->err;
    w->rec->waiting = (char *) waiting;
    return wo_order_save (ctx, txn, out, w, NULL);
}

void
wo_dispatch_waiting (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__Technician *t, size_t max,
                     char ***ids, size_t *n)
{
    if (!t->on_shift)
        return;
    /* the estates it covers: its list, or every estate with orders for "*" */
    char **estates = NULL;
    size_t nest = 0;
    if (s_has (t->estates, t->n_estates, "*")) {
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, WO_STATS, NULL); s.ok; pm_scan_next (&s)) {
            const char *e;
            if (pm_key_parse (s.key.mv_data, s.key.mv_size, "s", &e) == PM_OK)
                wo_strv_push (ctx->arena, &estates, &nest, e);
        }
        pm_scan_end (&s);
    }
    else {
        estates = t->estates;
        nest = t->n_estates;
    }
    for (size_t i = 0; i < nest && *n < max; i++) {
        if (wo_estate_mode (ctx, txn, estates[i]) != WO_AUTO)
            continue;
        /* the keys first: assigning changes the table being walked */
        uint64_t *nums = pm_arena_alloc (ctx->arena, max * sizeof *nums);
        size_t nn = 0;
        pm_scan_t s;
        pm_key_t k;
        for (pm_scan_prefix (&s, txn, WO_Q_UNASSIGNED, pm_key (&k, "s", estates[i])); s.ok && nn < max - *n;
             pm_scan_next (&s))
            if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &nums[nn]) == PM_OK)
                nn++;
        pm_scan_end (&s);
        for (size_t j = 0; j < nn; j++) {
            wo_order_t w;
            if (wo_order_load_key (ctx, txn, estates[i], nums[j], &w) != PM_OK
                || w.o->state != PM__V1__ORDER_STATE__ORDER_OPEN || !s_has (t->skills, t->n_skills, w.o->skill))
                continue;
            Pm__V1__Technician *best = wo_choose (ctx, txn, w.o->estate_id, w.o->skill, NULL);
            if (!best)
                continue;
            wo_assign_to (ctx, txn, &w, best, "auto");
            wo_order_save (ctx, txn, out, &w, "workorder.order.assigned");
            wo_strv_push (ctx->arena, ids, n, w.o->order_id);
        }
    }
}

/* --- workorder.assign, workorder.claim, workorder.dispatch.set ------------------------------- */

/* The technician named in a request, or a NOT_FOUND reply. */
static Pm__V1__Technician *
s_tech (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *id, const char *estate, int *st)
{
    if (!*id) {
        *st = pm_reply (out, PM__V1__STATUS__INVALID, "technician: empty; technicians covering %s: %s", estate,
                        wo_staff_list (ctx, txn, estate));
        return NULL;
    }
    Pm__V1__Technician *t = wo_tech_get (txn, id, NULL);
    if (!t)
        *st = pm_reply (out, PM__V1__STATUS__NOT_FOUND, "technician: no technician '%s'; technicians covering %s: %s",
                        id, estate, wo_staff_list (ctx, txn, estate));
    return t;
}

int
wo_on_assign (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderAssignRequest *b = req->workorder_assign;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (o->state != PM__V1__ORDER_STATE__ORDER_OPEN && o->state != PM__V1__ORDER_STATE__ASSIGNED)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "%s is %s, so it cannot be assigned (only OPEN or ASSIGNED "
                         "orders can); %s",
                         o->order_id, wo_state_name (o->state), wo_next_steps (o));
    Pm__V1__Technician *t = s_tech (ctx, txn, out, b->technician, o->estate_id, &st);
    if (!t)
        return st;
    const char *why = wo_tech_unfit (ctx, t, o->estate_id, o->skill);
    if (why)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "%s (%s, needs the '%s' skill in %s) cannot go to %s: %s; fit now: %s; it stays %s",
                         o->order_id, o->category, o->skill, o->estate_id, t->technician, why,
                         s_fit_list (ctx, txn, o->estate_id, o->skill), wo_state_name (o->state));
    if (o->state == PM__V1__ORDER_STATE__ASSIGNED && strcmp (o->technician, t->technician) == 0) {
        wo_reply_order (ctx, out, o);
        return pm_reply (out, PM__V1__STATUS__OK, "%s is already assigned to %s", o->order_id, t->technician);
    }
    wo_assign_to (ctx, txn, &w, t, "manual");
    wo_order_save (ctx, txn, out, &w, "workorder.order.assigned");
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s assigned to %s %s (team %s)", o->order_id, t->technician, t->name,
                     t->team);
}

int
wo_on_claim (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    workorder_t *wo = ctx->app;
    const Pm__V1__WorkorderClaimRequest *b = req->workorder_claim;
    wo_order_t w;
    int st = wo_order_load (ctx, txn, out, b->order_id, &w);
    if (st != PM__V1__STATUS__OK)
        return st;
    Pm__V1__WorkOrder *o = w.o;
    if (o->state != PM__V1__ORDER_STATE__ORDER_OPEN) {
        if (strcmp (o->dispatch, "claim") == 0 && *o->technician)
            return pm_reply (out, PM__V1__STATUS__CONFLICT,
                             "%s was claimed first by %s at %s and is %s; claims are taken only while an order is OPEN",
                             o->order_id, o->technician, wo_local_time (ctx->arena, wo, o->assigned_ms),
                             wo_state_name (o->state));
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "%s is %s%s%s, so it cannot be claimed (only OPEN orders can)",
                         o->order_id, wo_state_name (o->state), *o->technician ? " with " : "", o->technician);
    }
    int mode = wo_estate_mode (ctx, txn, o->estate_id);
    if (mode != WO_CLAIM)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "%s is in %s, which dispatches %s, not by claims; there a dispatcher uses workorder.assign "
                         "(or workorder.dispatch.set mode claim opens the estate to claims)",
                         o->order_id, o->estate_id, mode == WO_AUTO ? "automatically" : "by hand");
    Pm__V1__Technician *t = s_tech (ctx, txn, out, b->technician, o->estate_id, &st);
    if (!t)
        return st;
    const char *why = wo_tech_unfit (ctx, t, o->estate_id, o->skill);
    if (why)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "%s (needs the '%s' skill in %s) cannot be claimed by %s: %s",
                         o->order_id, o->skill, o->estate_id, t->technician, why);
    wo_assign_to (ctx, txn, &w, t, "claim");
    wo_order_save (ctx, txn, out, &w, "workorder.order.assigned");
    wo_reply_order (ctx, out, o);
    return pm_reply (out, PM__V1__STATUS__OK, "%s claimed by %s %s", o->order_id, t->technician, t->name);
}

int
wo_on_dispatch_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderDispatchSetRequest *b = req->workorder_dispatch_set;
    if (!*b->estate_id || strchr (b->estate_id, '/') || strlen (b->estate_id) > 32)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id '%s': expected an estate id such as E01",
                         b->estate_id);
    int mode = wo_mode_parse (b->mode);
    if (mode < 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "mode '%s': expected manual (workorder.assign), auto (least-loaded technician) or claim (抢单)",
                         b->mode);
    int before = wo_estate_mode (ctx, txn, b->estate_id);
    Pm__Workorder__EstateRecord er = PM__WORKORDER__ESTATE_RECORD__INIT;
    er.dispatch = b->mode;
    er.set_ms = ctx->now_ms;
    pm_key_t k;
    pm_txn_put_msg (txn, WO_ESTATES, pm_key (&k, "s", b->estate_id), &er.base);
    /* orders waiting in the estate are dispatched the new way (at most 1000 now) */
    uint64_t *nums = pm_arena_alloc (ctx->arena, 1000 * sizeof *nums);
    size_t nn = 0;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, WO_Q_UNASSIGNED, pm_key (&k, "s", b->estate_id)); s.ok && nn < 1000;
         pm_scan_next (&s))
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "sU", NULL, &nums[nn]) == PM_OK)
            nn++;
    pm_scan_end (&s);
    size_t assigned = 0;
    for (size_t i = 0; i < nn; i++) {
        wo_order_t w;
        if (wo_order_load_key (ctx, txn, b->estate_id, nums[i], &w) != PM_OK
            || w.o->state != PM__V1__ORDER_STATE__ORDER_OPEN)
            continue;
        wo_dispatch (ctx, txn, out, &w);
        assigned += w.o->state == PM__V1__ORDER_STATE__ASSIGNED;
    }
    Pm__V1__WorkorderDispatchSetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__workorder_dispatch_set_reply__init (r);
    r->estate_id = b->estate_id;
    r->mode = b->mode;
    r->previous = (char *) wo_mode_name (before);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s dispatches %s now (was %s); %zu waiting order%s, %zu assigned",
                     b->estate_id, b->mode, r->previous, nn, nn == 1 ? "" : "s", assigned);
}
