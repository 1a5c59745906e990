/* workorder.h - the workorder daemon: work orders (整改, 报修, 投诉), their
 * dispatch to technicians, durable SLA timers, owner sign-off, and the
 * service KPIs 及时率 and 合格率 (README.md in this directory is the manual).
 *
 * Tables (keys from pm/key.h; an order's key is s(estate) U(number), so one
 * estate's orders are neighbours and its queues are prefix scans):
 *   units        s(unit_id)                  -> pm.workorder.UnitRecord (intake's units)
 *   orders       s(estate) U(n)              -> pm.workorder.OrderRecord
 *   by_unit      s(unit_id) U(n)             -> estate id (a unit's orders)
 *   by_defect    s(defect_id)                -> order id (the defect's order)
 *   staff        s(technician)               -> pm.workorder.StaffRecord
 *   loads        s(technician)               -> pm.workorder.LoadRecord
 *   pick         s(estate|*) s(skill) u(open) t(last assigned) s(technician) -> ""
 *                the technicians on shift by load: the first entry under
 *                (estate, skill) is the one automatic dispatch picks
 *   teams        s(team)                     -> its lead, "T01 王建国"
 *   estates      s(estate)                   -> pm.workorder.EstateRecord (dispatch.set)
 *   stats        s(estate)                   -> pm.workorder.StatsRecord
 *   kpi          s(estate) s(group) s(value) u(local day) -> pm.workorder.KpiCounts
 *   q_*          s(estate) U(n)              -> since (u64 BE ms): one table per queue
 * Timers (pm/timer.h), keyed by order id: workorder.sla.respond and
 * workorder.sla.complete (payload "W": the warning, "B": the breach; at most
 * one of each per order, moved or cancelled by every save) and
 * workorder.unsigned (DONE for longer than unsigned_after). */
#ifndef WORKORDER_H
#define WORKORDER_H

#include "pm/daemon.h"
#include "workorder_store.pb-c.h"

enum {
    WO_UNITS = PM_DB_FIRST_DOMAIN,
    WO_ORDERS,
    WO_BY_UNIT,
    WO_BY_DEFECT,
    WO_STAFF,
    WO_LOADS,
    WO_PICK,
    WO_TEAMS,
    WO_ESTATES,
    WO_STATS,
    WO_KPI,
    WO_Q_UNASSIGNED, /* the queue tables, in WO_QB_* order */
    WO_Q_WARNED,
    WO_Q_BREACHED,
    WO_Q_UNSIGNED,
    WO_Q_REJECTED,
    WO_NTABLES
};

/* Queue bits (OrderRecord.queues): queue i is table WO_Q_UNASSIGNED + i. */
enum { WO_QB_UNASSIGNED = 0, WO_QB_WARNED, WO_QB_BREACHED, WO_QB_UNSIGNED, WO_QB_REJECTED, WO_NQUEUES };

/* Timer kinds. */
#define WO_TIMER_RESPOND "workorder.sla.respond"
#define WO_TIMER_COMPLETE "workorder.sla.complete"
#define WO_TIMER_UNSIGNED "workorder.unsigned"

#define WO_DAY_MS (86400000LL)

/* Dispatch modes. */
enum { WO_MANUAL = 0, WO_AUTO, WO_CLAIM };

/* Kinds of order a category serves. */
enum { WO_KIND_REPAIR = 0, WO_KIND_COMPLAINT, WO_KIND_DEFECT };

/* A duration from the categories file: ms, or whole local days (to the end
 * of the local day `days` days after the start's). Both 0: none. */
typedef struct {
    int64_t ms;
    int days;
} wo_dur_t;

/* One category of the categories file. */
typedef struct {
    char *id;                   /* water, electric, elevator, civil, general, complaint, defect */
    char *name;                 /* 给排水, ... */
    int kind;                   /* WO_KIND_* */
    wo_dur_t respond, complete; /* normal priority */
    wo_dur_t urgent_respond, urgent_complete; /* urgent (none: as normal) */
    int64_t warn_before_ms;     /* the warning this long before a deadline (0: none) */
    char *skill;                /* what a technician needs to take it */
    char **defect_categories;   /* inspection's defect categories whose orders need this skill */
    size_t ndefect_categories;
    int line;                   /* where it was defined */
} wo_category_t;

/* One estate of the estates file. */
typedef struct {
    char *estate_id;
    int mode;                   /* WO_MANUAL, WO_AUTO, WO_CLAIM */
} wo_estate_t;

/* The app context (ctx->app): the files, parsed once at start. */
typedef struct {
    wo_category_t *cats;
    size_t ncats;
    wo_estate_t *estates;
    size_t nestates;
    Pm__V1__Technician **staff; /* the staff file's rows (applied to the store at start) */
    size_t nstaff;
    uint64_t staff_hash;        /* of the staff file's bytes: applied again only when it changed */
    char *staff_name;           /* the staff file's name, for the log */
    int dispatch_default;       /* for estates in no file and never set */
    int64_t utc_offset_ms;      /* the estates' time zone (Asia/Shanghai: +8 h) */
    int64_t unsigned_after_ms;  /* DONE and unsigned this long: queue `unsigned` */
} workorder_t;

/* An order being changed: its record (arena) and what it was when loaded. */
typedef struct {
    Pm__Workorder__OrderRecord *rec;
    Pm__V1__WorkOrder *o;       /* rec->order */
    const char *estate;         /* key parts */
    uint64_t n;
    int old_state;              /* ORDER_STATE_UNSET for a new order */
    uint32_t old_queues;
    bool is_new;
} wo_order_t;

extern const pm_daemon_spec_t workorder_spec;

/* --- config.c: the files, durations, local time, deadlines ------------------------ */

void *workorder_app_new (pm_daemon_t *d, const pm_config_t *cfg);
void workorder_app_destroy (void *app);
/* Parses the categories / staff / estates CSV text (name is for messages:
 * "categories.csv:4: respond '30x': ..."). PM_OK, or PM_ECONFIG with *err set
 * (malloc'd, the caller's). Tests call these directly. */
int wo_categories_parse (workorder_t *wo, const char *name, const char *text, size_t len, char **err);
int wo_staff_parse (workorder_t *wo, const char *name, const char *text, size_t len, char **err);
int wo_estates_parse (workorder_t *wo, const char *name, const char *text, size_t len, char **err);
/* Frees what the files put in wo (not wo itself). */
void wo_files_free (workorder_t *wo);
/* The category called id, or NULL. */
const wo_category_t *wo_category (const workorder_t *wo, const char *id);
/* The first category of a kind, or NULL. */
const wo_category_t *wo_category_of_kind (const workorder_t *wo, int kind);
/* "water, electric, ..." for messages (arena): the categories of a kind (-1: all). */
char *wo_category_list (pm_arena_t *a, const workorder_t *wo, int kind);
/* Whether some category's skill is s. */
bool wo_skill_known (const workorder_t *wo, const char *s);
/* "water, electric, ..." (arena): every skill. */
char *wo_skill_list (pm_arena_t *a, const workorder_t *wo);
/* The skill an inspection defect of category defect_category needs. */
const char *wo_defect_skill (const workorder_t *wo, const char *defect_category);
/* "30m", "24h", "3d" into d; false when it is neither ms units nor whole days. */
bool wo_dur_parse (const char *s, wo_dur_t *d);
/* The local day (days since 1970-01-01 in the estates' zone) of ms. */
int64_t wo_day (const workorder_t *wo, int64_t ms);
/* The first ms of a local day. */
int64_t wo_day_start (const workorder_t *wo, int64_t day);
/* "2026-12-01" -> local day; false when not a date. */
bool wo_date_parse (const char *s, int64_t *day);
/* Local day -> "2026-12-01" into buf (size >= 16). */
const char *wo_date_format (int64_t day, char *buf, size_t size);
/* ms -> "2026-12-01 14:30" local time (arena). */
char *wo_local_time (pm_arena_t *a, const workorder_t *wo, int64_t ms);
/* "2026-12-05 14:00-18:00" (local) -> [from, to) in ms; false when not that shape. */
bool wo_window_parse (const workorder_t *wo, const char *s, int64_t *from_ms, int64_t *to_ms);
/* start + d: exact for ms, the last ms of the local day d.days later for days; 0 for none. */
int64_t wo_deadline (const workorder_t *wo, int64_t start_ms, wo_dur_t d);
/* An order's respond-by and complete-by from its category, priority and the
 * owner's preferred window (pref 0: none); defect_deadline_ms (0: none) is a
 * defect's own deadline (it is the complete-by of its order). */
void wo_deadlines (const workorder_t *wo, const wo_category_t *c, bool urgent, int64_t created_ms,
                   int64_t pref_from_ms, int64_t pref_to_ms, int64_t defect_deadline_ms, int64_t *respond_by,
                   int64_t *complete_by);

/* --- orders.c: the order, its state machine and its save ------------------------------ */

/* "WO-E01-000042" -> estate (arena) and number. false when not an order id. */
bool wo_order_id_parse (pm_arena_t *a, const char *id, const char **estate, uint64_t *n);
const pm_key_t *wo_order_key (pm_key_t *k, const char *estate, uint64_t n);
/* Loads the order called id. PM__V1__STATUS__OK, or INVALID / NOT_FOUND with
 * the reply set (the caller returns it). */
int wo_order_load (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *id, wo_order_t *w);
/* The same by key, without a reply: PM_OK or PM_ENOTFOUND / PM_EPROTO. */
int wo_order_load_key (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, uint64_t n, wo_order_t *w);
/* A new order of estate with the next number (record zeroed but for id, estate, state OPEN). */
void wo_order_new (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, wo_order_t *w);
/* Writes the order and everything that follows from it in the same txn:
 * state counts, the technician's load, queue tables, SLA timers (moved or
 * cancelled), indexes; then emits `type` (NULL: none) with the whole order.
 * Returns the txn's error state (PM_OK). */
int wo_order_save (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, const char *type);
/* Emits `type` with the whole order as it is now (a new order's created
 * event goes out before its dispatch saves it). */
int wo_emit_order (pm_out_t *out, pm_txn_t *txn, Pm__V1__WorkOrder *o, const char *type);
/* Sets the reply body to the order (arena copy not needed: borrowed). */
void wo_reply_order (pm_ctx_t *ctx, pm_out_t *out, const Pm__V1__WorkOrder *o);
/* The state's name, and what may be done from it (for CONFLICT replies). */
const char *wo_state_name (int state);
const char *wo_next_steps (const Pm__V1__WorkOrder *o);
/* Whether the order is still being worked on (OPEN, ASSIGNED, IN_PROGRESS). */
bool wo_is_active (int state);
/* Moves w to DONE at now (KPI counted). */
void wo_mark_done (pm_ctx_t *ctx, pm_txn_t *txn, wo_order_t *w);
/* Confirms w (CONFIRMED: KPI counted) then archives it, emitting both events. */
int wo_confirm_and_archive (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, uint32_t satisfaction,
                            const char *signed_by);
/* Sends a closed order back to work (a reopened defect): ASSIGNED to its
 * technician, or OPEN; counts as a rejection; emits `type`. */
int wo_send_back (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, const char *reason, const char *type);
/* Appends string s (arena) to a repeated string field. */
void wo_strv_push (pm_arena_t *a, char ***v, size_t *n, const char *s);

int wo_on_create (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_start (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_done (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_confirm (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_reject (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_cancel (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_checklist (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- dispatch.c: modes, the least-loaded choice, assign and claim ------------------------ */

const char *wo_mode_name (int mode);
/* "manual" | "auto" | "claim" -> mode; -1 when none of them. */
int wo_mode_parse (const char *s);
/* The estate's mode: set by dispatch.set, else the estates file, else the default. */
int wo_estate_mode (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate);
/* NULL when t may take an order of estate needing skill now; else why not (arena). */
const char *wo_tech_unfit (pm_ctx_t *ctx, const Pm__V1__Technician *t, const char *estate, const char *skill);
/* The technician an automatic estate gives an order to: on shift, covering
 * the estate, with the skill, fewest open orders, then the longest since
 * their last assignment, then the smallest id. NULL (and *why, arena) when
 * there is none. */
Pm__V1__Technician *wo_choose (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, const char *skill, const char **why);
/* Gives w to t (ASSIGNED; team and team lead from the staff; how: manual, auto, claim). */
void wo_assign_to (pm_ctx_t *ctx, pm_txn_t *txn, wo_order_t *w, const Pm__V1__Technician *t, const char *how);
/* Dispatches an OPEN order by its estate's mode and saves it (a new one
 * too): auto assigns it when a technician fits (emits .assigned), otherwise
 * notes why it waits. */
int wo_dispatch (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w);
/* Orders waiting in automatic estates that t can take now go to the least
 * loaded fit technician; their ids are appended to *ids (arena). At most max. */
void wo_dispatch_waiting (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__Technician *t, size_t max,
                          char ***ids, size_t *n);
/* The technician's load, as stored (zeroes when none). */
void wo_load_get (pm_txn_t *txn, const char *tech, uint32_t *open, int64_t *last_ms);
/* Adds delta to the technician's open orders (and stamps last_assigned_ms when delta > 0). */
void wo_load_add (pm_ctx_t *ctx, pm_txn_t *txn, const char *tech, int delta);
/* Adds (add) or removes t's entries in the pick index at its stored load;
 * only a technician on shift has entries. */
void wo_pick_index (pm_txn_t *txn, const Pm__V1__Technician *t, bool add);

int wo_on_assign (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_claim (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_dispatch_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- staff.c: technicians and teams --------------------------------------------------- */

/* Applies the staff file to the store when it changed since it was applied
 * last (its hash in meta): each of its technicians as the file says; those
 * that came from an earlier file and are gone from it are removed. */
int wo_staff_apply_file (pm_store_t *store, workorder_t *wo);
/* The technician called id (txn's arena), or NULL. */
Pm__V1__Technician *wo_tech_get (pm_txn_t *txn, const char *id, bool *from_file);
/* The lead of team (or, with no team, a lead covering estate): "T01 王建国", or "" (arena). */
const char *wo_team_lead (pm_ctx_t *ctx, pm_txn_t *txn, const char *team, const char *estate);
/* The name in a "T01 王建国" person (what wo_team_lead gives): the part after the
 * id, borrowed from it; "" when there is none. */
const char *wo_person_name (const char *id_and_name);
/* "T02, T03" (arena): technicians covering estate (for messages). */
char *wo_staff_list (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate);

int wo_on_staff_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_staff_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- sla.c: timers, warnings, breaches, escalation ---------------------------------------- */

/* Moves, sets or cancels the order's timers to match its record (called by wo_order_save). */
void wo_sla_sync (pm_ctx_t *ctx, pm_txn_t *txn, wo_order_t *w);
/* The complete-by breach now (timer, or inspection's overdue defect):
 * stage 2, sla.breached to the team lead, counted in the KPIs. */
int wo_sla_breach (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, wo_order_t *w, bool respond);
int wo_on_respond_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                         pm_out_t *out);
int wo_on_complete_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                          pm_out_t *out);
int wo_on_unsigned_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                          pm_out_t *out);

/* --- kpi.c: counters in the write path, the kpi read, gauges ------------------------------- */

/* One change to the counters (signed, so a reopen can take a confirmation back). */
typedef struct {
    int64_t due, on_time, confirmed, first_pass, responded, respond_ms_sum, completed, complete_ms_sum, rated,
        satisfaction_sum, created, cancelled, rejected, respond_breaches, complete_breaches;
} wo_kpi_t;

/* Adds k to the buckets of the order's estate (whole estate, its team, its
 * technician, its category) for the local day of at_ms. */
void wo_kpi_add (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__WorkOrder *o, int64_t at_ms, const wo_kpi_t *k);
int wo_on_kpi (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void wo_gauges (pm_ctx_t *ctx, pm_txn_t *txn);

/* --- units.c: the projection of intake's units ------------------------------------------- */

int wo_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int wo_on_keys_handed (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
/* The unit's record (arena) or NULL. */
Pm__Workorder__UnitRecord *wo_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id);

/* --- defects.c: inspection's defects ---------------------------------------------------- */

int wo_on_defect_recorded (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int wo_on_defect_verified (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int wo_on_defect_reopened (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int wo_on_defect_overdue (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);

/* --- reads.c ------------------------------------------------------------------------------ */

int wo_on_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int wo_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void wo_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
int wo_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap);
/* The event type that restates an order in its state ("workorder.order.assigned"). */
const char *wo_state_event (int state);

#endif
