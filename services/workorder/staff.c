/* staff.c - technicians and teams (维修班组): the staff file, applied at
 * start when it changed, and workorder.staff.set / workorder.staff.get.
 *
 * The store holds the roster. A changed staff file (its hash is kept in
 * meta) is written over it: each technician it names as the file says, and
 * the ones an earlier file named and this one does not are removed.
 * workorder.staff.set changes one technician (a shift, a skill, a new hire)
 * and stays until a changed file names that technician again. A team's lead
 * (role lead) gets the escalations of its orders. */
#include "workorder.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/text.h"

#include <ctype.h>
#include <string.h>

static bool
s_has (char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (v[i], s) == 0)
            return true;
    return false;
}

static bool
s_covers (const Pm__V1__Technician *t, const char *estate)
{
    return s_has (t->estates, t->n_estates, estate) || s_has (t->estates, t->n_estates, "*");
}

/* Writes the team's lead to the teams table (the first lead by id), or
 * removes the team when it has none. Scans the staff: only on staff changes. */
static void
s_team_update (pm_txn_t *txn, const char *team)
{
    if (!*team)
        return;
    pm_key_t k;
    pm_scan_t s;
    char *lead = NULL;
    for (pm_scan_prefix (&s, txn, WO_STAFF, NULL); s.ok && !lead; pm_scan_next (&s)) {
        Pm__Workorder__StaffRecord *sr;
        if (pm_scan_msg (&s, &pm__workorder__staff_record__descriptor, &sr) == PM_OK && sr->tech
            && strcmp (sr->tech->role, "lead") == 0 && strcmp (sr->tech->team, team) == 0)
            lead = pm_arena_printf (txn->arena, "%s %s", sr->tech->technician, sr->tech->name);
    }
    pm_scan_end (&s);
    pm_key (&k, "s", team);
    if (lead)
        pm_txn_put_key (txn, WO_TEAMS, &k, lead, strlen (lead));
    else
        pm_txn_del_key (txn, WO_TEAMS, &k);
}

/* Writes technician t (from the file or not) over what was stored, keeping
 * the pick index and the teams' leads in step. old: as stored, or NULL. */
static void
s_staff_put (pm_txn_t *txn, const Pm__V1__Technician *old, Pm__V1__Technician *t, bool from_file)
{
    pm_key_t k;
    if (old)
        wo_pick_index (txn, old, false);
    Pm__Workorder__StaffRecord sr = PM__WORKORDER__STAFF_RECORD__INIT;
    sr.tech = t;
    sr.from_file = from_file;
    pm_txn_put_msg (txn, WO_STAFF, pm_key (&k, "s", t->technician), &sr.base);
    wo_pick_index (txn, t, true);
    if (old && strcmp (old->team, t->team) != 0)
        s_team_update (txn, old->team);
    s_team_update (txn, t->team);
}

static void
s_staff_del (pm_txn_t *txn, const Pm__V1__Technician *old)
{
    pm_key_t k;
    wo_pick_index (txn, old, false);
    pm_txn_del_key (txn, WO_STAFF, pm_key (&k, "s", old->technician));
    s_team_update (txn, old->team);
}

int
wo_staff_apply_file (pm_store_t *store, workorder_t *wo)
{
    pm_txn_t t;
    if (pm_txn_begin (&t, store, NULL) != PM_OK)
        return t.err;
    pm_arena_t *a = pm_arena_new ();
    t.arena = a;
    if (pm_meta_get_u64 (&t, "staff_file_hash") == wo->staff_hash) {
        pm_txn_abort (&t);
        pm_arena_destroy (&a);
        return PM_OK;
    }
    /* technicians an earlier file brought and this one does not name */
    Pm__V1__Technician **gone = NULL;
    size_t ngone = 0;
    pm_scan_t s;
    for (pm_scan_prefix (&s, &t, WO_STAFF, NULL); s.ok; pm_scan_next (&s)) {
        Pm__Workorder__StaffRecord *sr;
        if (pm_scan_msg (&s, &pm__workorder__staff_record__descriptor, &sr) != PM_OK || !sr->tech || !sr->from_file)
            continue;
        bool named = false;
        for (size_t i = 0; i < wo->nstaff && !named; i++)
            named = strcmp (wo->staff[i]->technician, sr->tech->technician) == 0;
        if (!named) {
            Pm__V1__Technician **nv = pm_arena_alloc (a, (ngone + 1) * sizeof *nv);
            if (ngone)
                memcpy (nv, gone, ngone * sizeof *nv);
            nv[ngone++] = sr->tech;
            gone = nv;
        }
    }
    pm_scan_end (&s);
    for (size_t i = 0; i < ngone; i++)
        s_staff_del (&t, gone[i]);
    for (size_t i = 0; i < wo->nstaff; i++)
        s_staff_put (&t, wo_tech_get (&t, wo->staff[i]->technician, NULL), wo->staff[i], true);
    pm_meta_put_u64 (&t, "staff_file_hash", wo->staff_hash);
    int rc = pm_txn_commit (&t);
    pm_arena_destroy (&a);
    if (rc == PM_OK)
        pm_info ("workorder: staff file %s applied: %zu technicians, %zu removed", wo->staff_name, wo->nstaff, ngone);
    return rc;
}

Pm__V1__Technician *
wo_tech_get (pm_txn_t *txn, const char *id, bool *from_file)
{
    Pm__Workorder__StaffRecord *sr;
    pm_key_t k;
    if (pm_txn_get_msg (txn, WO_STAFF, pm_key (&k, "s", id), &pm__workorder__staff_record__descriptor, &sr) != PM_OK
        || !sr->tech)
        return NULL;
    if (from_file)
        *from_file = sr->from_file;
    return sr->tech;
}

const char *
wo_team_lead (pm_ctx_t *ctx, pm_txn_t *txn, const char *team, const char *estate)
{
    pm_key_t k;
    MDB_val v;
    if (*team && pm_txn_get_key (txn, WO_TEAMS, pm_key (&k, "s", team), &v) == PM_OK) {
        char *lead = pm_arena_alloc (ctx->arena, v.mv_size + 1);
        memcpy (lead, v.mv_data, v.mv_size);
        return lead;
    }
    /* no team (never assigned), or a team without a lead: a lead covering the estate */
    const char *covering = "";
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, WO_STAFF, NULL); s.ok && !*covering; pm_scan_next (&s)) {
        Pm__Workorder__StaffRecord *sr;
        if (pm_scan_msg (&s, &pm__workorder__staff_record__descriptor, &sr) == PM_OK && sr->tech
            && strcmp (sr->tech->role, "lead") == 0 && s_covers (sr->tech, estate))
            covering = pm_arena_printf (ctx->arena, "%s %s", sr->tech->technician, sr->tech->name);
    }
    pm_scan_end (&s);
    return covering;
}

const char *
wo_person_name (const char *id_and_name)
{
    const char *sp = id_and_name ? strchr (id_and_name, ' ') : NULL;
    return sp ? sp + 1 : "";
}

char *
wo_staff_list (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate)
{
    char *s = "";
    pm_scan_t sc;
    for (pm_scan_prefix (&sc, txn, WO_STAFF, NULL); sc.ok; pm_scan_next (&sc)) {
        Pm__Workorder__StaffRecord *sr;
        if (pm_scan_msg (&sc, &pm__workorder__staff_record__descriptor, &sr) == PM_OK && sr->tech
            && s_covers (sr->tech, estate))
            s = pm_arena_printf (ctx->arena, "%s%s%s", s, *s ? ", " : "", sr->tech->technician);
    }
    pm_scan_end (&sc);
    return *s ? s : "none";
}

/* The technician with its load, as replies show it (arena). */
static Pm__V1__Technician *
s_shown (pm_ctx_t *ctx, pm_txn_t *txn, Pm__V1__Technician *t, bool from_file)
{
    wo_load_get (txn, t->technician, &t->open_orders, &t->last_assigned_ms);
    t->origin = from_file ? "file" : "staff.set";
    return t;
}

static bool
s_id_ok (const char *s)
{
    if (!*s || strlen (s) > 32)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum ((unsigned char) *p) && *p != '_' && *p != '-')
            return false;
    return true;
}

int
wo_on_staff_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    workorder_t *wo = ctx->app;
    const Pm__V1__WorkorderStaffSetRequest *b = req->workorder_staff_set;
    if (!s_id_ok (b->technician))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "technician '%s': expected a short id of letters, digits, '_' or '-', e.g. T05", b->technician);
    bool from_file = false;
    Pm__V1__Technician *old = wo_tech_get (txn, b->technician, &from_file);
    if (b->remove) {
        if (!old)
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "technician: no technician '%s' to remove",
                             b->technician);
        uint32_t open;
        int64_t last;
        wo_load_get (txn, b->technician, &open, &last);
        if (open)
            return pm_reply (out, PM__V1__STATUS__CONFLICT,
                             "technician %s holds %u order%s assigned or in progress; reassign them first "
                             "(workorder.assign) or let them finish, then remove",
                             b->technician, open, open == 1 ? "" : "s");
        s_staff_del (txn, old);
        Pm__V1__WorkorderStaffSetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
        pm__v1__workorder_staff_set_reply__init (r);
        r->technician = old;
        pm_reply_body (out, &r->base);
        return pm_reply (out, PM__V1__STATUS__OK, "technician %s %s removed", old->technician, old->name);
    }
    if (!old && (!*b->name || !*b->team || !b->n_estates || !b->n_skills))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "technician %s is new: name, team, estates and skills are needed, e.g. "
                         "{\"technician\":\"T05\",\"name\":\"钱师傅\",\"team\":\"A\",\"estates\":[\"E01\"],"
                         "\"skills\":[\"water\"]}",
                         b->technician);
    if (!pm_utf8_valid_str (b->name) || strlen (b->name) > 100 || !pm_utf8_valid_str (b->phone)
        || strlen (b->phone) > 32 || !pm_utf8_valid_str (b->team_name) || strlen (b->team_name) > 100)
        return pm_reply (out, PM__V1__STATUS__INVALID, "name, phone, team_name: expected UTF-8 text, 100 bytes at most");
    if (*b->team && !s_id_ok (b->team))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "team '%s': expected a short id of letters, digits, '_' or '-', e.g. A", b->team);
    if (*b->role && strcmp (b->role, "technician") != 0 && strcmp (b->role, "lead") != 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "role '%s': expected technician or lead", b->role);
    for (size_t i = 0; i < b->n_estates; i++)
        if (!*b->estates[i] || strchr (b->estates[i], '/') || strlen (b->estates[i]) > 32)
            return pm_reply (out, PM__V1__STATUS__INVALID, "estates[%zu] '%s': expected an estate id such as E01, or *",
                             i, b->estates[i]);
    for (size_t i = 0; i < b->n_skills; i++)
        if (!wo_skill_known (wo, b->skills[i]))
            return pm_reply (out, PM__V1__STATUS__INVALID, "skills[%zu] '%s': no category needs it; known skills: %s", i,
                             b->skills[i], wo_skill_list (ctx->arena, wo));
    Pm__V1__Technician *t = pm_arena_alloc (ctx->arena, sizeof *t);
    pm__v1__technician__init (t);
    if (old)
        *t = *old;
    t->technician = b->technician;
    if (*b->name)
        t->name = b->name;
    if (*b->phone)
        t->phone = b->phone;
    if (*b->team)
        t->team = b->team;
    if (*b->team_name)
        t->team_name = b->team_name;
    else if (!old)
        t->team_name = b->team;
    if (*b->role)
        t->role = b->role;
    else if (!old)
        t->role = "technician";
    if (b->n_estates) {
        t->estates = b->estates;
        t->n_estates = b->n_estates;
    }
    if (b->n_skills) {
        t->skills = b->skills;
        t->n_skills = b->n_skills;
    }
    if (b->shift != PM__V1__SHIFT__SHIFT_UNCHANGED)
        t->on_shift = b->shift == PM__V1__SHIFT__ON_SHIFT;
    else if (!old)
        t->on_shift = true;
    t->open_orders = 0;
    t->last_assigned_ms = 0;
    t->origin = "";
    s_staff_put (txn, old, t, false);

    Pm__V1__WorkorderStaffSetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__workorder_staff_set_reply__init (r);
    wo_dispatch_waiting (ctx, txn, out, t, 100, &r->assigned, &r->n_assigned);
    r->technician = s_shown (ctx, txn, t, false);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "technician %s %s %s (team %s, %s); %zu waiting order%s taken",
                     t->technician, t->name, old ? "changed" : "added", t->team, t->on_shift ? "on shift" : "off shift",
                     r->n_assigned, r->n_assigned == 1 ? "" : "s");
}

int
wo_on_staff_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__WorkorderStaffGetRequest *b = req->workorder_staff_get;
    Pm__V1__WorkorderStaffGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__workorder_staff_get_reply__init (r);
    size_t cap = pm_txn_count (txn, WO_STAFF) + 1;
    r->technicians = pm_arena_alloc (ctx->arena, cap * sizeof *r->technicians);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, WO_STAFF, NULL); s.ok && r->n_technicians < cap; pm_scan_next (&s)) {
        Pm__Workorder__StaffRecord *sr;
        if (pm_scan_msg (&s, &pm__workorder__staff_record__descriptor, &sr) != PM_OK || !sr->tech)
            continue;
        if (*b->technician && strcmp (b->technician, sr->tech->technician) != 0)
            continue;
        if (*b->estate_id && !s_covers (sr->tech, b->estate_id))
            continue;
        r->technicians[r->n_technicians++] = s_shown (ctx, txn, sr->tech, sr->from_file);
    }
    pm_scan_end (&s);
    if (*b->technician && !r->n_technicians)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "technician: no technician '%s'", b->technician);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu technician%s", r->n_technicians, r->n_technicians == 1 ? "" : "s");
}
