/* inspection.h - the inspection daemon: joint inspection (验房) room by room,
 * defects, and the rectification loop (整改闭环) that closes only when every
 * defect is verified.
 *
 * A unit's inspection opens at check-in (intake.unit.checked_in) or by hand
 * (inspection.open). Each visit is a round: round 1 checks every line of the
 * estate's checklist (rooms x categories); a defect found gets a number, a
 * rectification deadline from its severity (a durable timer) and an event,
 * from which workorder makes one order. The defect follows its order
 * (created -> RECTIFYING, done -> RECTIFIED); when every open defect of a
 * failed unit is RECTIFIED a re-inspection is due; the re-inspection verifies
 * (VERIFIED) or reopens (OPEN again) each one. A round passes when no defect
 * of the unit is left unverified.
 *
 * Tables (keys from pm/key.h, in natural order):
 *   units         s(unit_id)                       -> pm.inspection.UnitRecord
 *   rounds        s(unit_id) u(round)              -> pm.inspection.RoundRecord
 *   items         s(unit_id) u(round) s(room) s(category) -> pm.v1.RoundItemView
 *   defects       s(unit_id) u(defect no)          -> pm.inspection.DefectRecord
 *   templates     s(estate_id)                     -> pm.inspection.TemplateRecord
 *   kpi           s(estate_id) s(building) s(name) -> u64 BE ("" building: the estate)
 *   q_due         s(unit_id)                       -> QueueItem (re-inspections due)
 *   q_overdue     s(unit_id) u(defect no)          -> QueueItem (defects past their deadline)
 *   q_failed      s(unit_id)                       -> QueueItem (failed twice or more)
 *   q_uninspected s(unit_id)                       -> QueueItem (open, never inspected after N days)
 *
 * Timers: inspection.defect.deadline (key: defect id), inspection.uninspected
 * (key: unit id). */
#ifndef INSPECTION_H
#define INSPECTION_H

#include "pm/daemon.h"
#include "inspection_store.pb-c.h"

#include <stdio.h>

enum {
    INSP_UNITS = PM_DB_FIRST_DOMAIN,
    INSP_ROUNDS,
    INSP_ITEMS,
    INSP_DEFECTS,
    INSP_TEMPLATES,
    INSP_KPI,
    INSP_Q_DUE,
    INSP_Q_OVERDUE,
    INSP_Q_FAILED,
    INSP_Q_UNINSPECTED,
    INSP_NTABLES
};

#define INSP_TIMER_DEADLINE "inspection.defect.deadline"
#define INSP_TIMER_UNINSPECTED "inspection.uninspected"

/* A checklist: the lines a full round records (owned by whoever made it). */
typedef struct {
    Pm__V1__ChecklistItem **items;
    size_t n;
    char *source;   /* where it came from: "deploy/inspection/checklist.csv" */
} inspection_checklist_t;

/* The app context (ctx->app): read-only after start. */
typedef struct {
    inspection_checklist_t checklist;  /* the default, from [inspection] checklist */
    int64_t deadline_ms[4];            /* by Severity: MINOR, MAJOR, CRITICAL */
    int64_t uninspected_ms;            /* an open unit with no round after this long is queued */
} inspection_t;

extern const pm_daemon_spec_t inspection_spec;

/* The nine categories of the issue, in display order. */
extern const char *const inspection_categories[];
extern const size_t inspection_ncategories;

/* --- templates.c: checklists ------------------------------------------------ */

/* The app context from config: checklist file (or the built-in copy of
 * deploy/inspection/checklist.csv), deadlines, uninspected_after. NULL (logged,
 * naming file and line) on failure. */
void *inspection_app_new (pm_daemon_t *d, const pm_config_t *cfg);
void inspection_app_destroy (void *app);
/* Parses checklist CSV from f (name for messages). On success fills *out
 * (malloc'd; free with inspection_checklist_free) and returns PM_OK; else
 * returns PM_EINVAL and *err (malloc'd) says "name:line: what is wrong". */
int inspection_checklist_parse (FILE *f, const char *name, inspection_checklist_t *out, char **err);
void inspection_checklist_free (inspection_checklist_t *c);
/* The checklist of estate: its own (arena) or the default (borrowed). */
void inspection_checklist_of (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate_id, inspection_checklist_t *out);
/* The line of c for room and category, or NULL. */
const Pm__V1__ChecklistItem *inspection_checklist_find (const inspection_checklist_t *c, const char *room,
                                                        const char *category);
/* "客厅, 卧室, 厨房" - the rooms of c (arena). */
char *inspection_checklist_rooms (pm_ctx_t *ctx, const inspection_checklist_t *c);
/* "墙面/天花, 地面" - the categories c has for room (arena). */
char *inspection_checklist_categories (pm_ctx_t *ctx, const inspection_checklist_t *c, const char *room);
int inspection_on_template_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_template_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- units.c: the units inspection knows, from intake ------------------------- */

const pm_key_t *inspection_unit_key (pm_key_t *k, const char *unit_id);
/* The unit record (arena) or NULL when unknown / undecodable. */
Pm__Inspection__UnitRecord *inspection_unit_load (pm_txn_t *txn, const char *unit_id);
void inspection_unit_save (pm_txn_t *txn, const Pm__Inspection__UnitRecord *u);
/* Where the unit stands. */
Pm__V1__InspectionStatus inspection_unit_status (const Pm__Inspection__UnitRecord *u);
const char *inspection_status_name (Pm__V1__InspectionStatus s);
int inspection_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int inspection_on_checked_in (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int inspection_on_open (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_uninspected (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                               pm_out_t *out);

/* --- rounds.c: visits ---------------------------------------------------------- */

Pm__Inspection__RoundRecord *inspection_round_load (pm_txn_t *txn, const char *unit_id, uint32_t round_no);
/* The round as it goes out in events (defects: the unit's open ones when failed). */
Pm__V1__InspectionRound *inspection_round_event (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Inspection__UnitRecord *u,
                                                 const Pm__Inspection__RoundRecord *r);
int inspection_on_round_start (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_items_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_round_complete (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_accept_with_defects (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* Whether the line at position (1-based) of round r has a defect of r. */
bool inspection_line_has_defect (const Pm__Inspection__RoundRecord *r, uint32_t position);
/* CONFLICT for `what` (e.g. "recording a defect"), which needs an open round on u:
 * says where the unit stands and what to do first. */
int inspection_no_round (pm_ctx_t *ctx, pm_out_t *out, const Pm__Inspection__UnitRecord *u, const char *what);
/* INVALID for a room / category not on the checklist of u's round (the round's
 * copy when full, else the estate's), listing what it has. */
int inspection_bad_item (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__Inspection__UnitRecord *u,
                         uint32_t round_no, bool full, const char *room, const char *category);
/* Emits inspection.reinspection.due when every open defect of a failed unit
 * with no round open is RECTIFIED (once per failed round); u is saved by the caller. */
void inspection_check_due (pm_ctx_t *ctx, pm_txn_t *txn, Pm__Inspection__UnitRecord *u, pm_out_t *out);

/* --- defects.c: defects and the rectification loop ---------------------------- */

/* A defect as the checklist line it was found on sees it. A line with any
 * defect of its round is ITEM_DEFECT: the round keeps the positions of such
 * lines (RoundRecord.defect_lines) and a read derives the rest, so recording
 * a defect never rewrites the line (nor its page). */
typedef struct {
    const char *room, *category, *defect_id, *by;
    int64_t at_ms;
} inspection_item_defect_t;
/* The defects found in round round_no of unit_id, in number order (arena). */
size_t inspection_round_defects (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, uint32_t round_no,
                                 inspection_item_defect_t **out);
/* The first of d[0..n) on room / category, or NULL. */
const inspection_item_defect_t *inspection_item_defect (const inspection_item_defect_t *d, size_t n, const char *room,
                                                        const char *category);
/* Splits "E01/3/2-301#4" into unit id (arena) and number. false when malformed. */
bool inspection_defect_id_parse (pm_ctx_t *ctx, const char *defect_id, char **unit_id, uint32_t *no);
Pm__Inspection__DefectRecord *inspection_defect_load (pm_txn_t *txn, const char *unit_id, uint32_t no);
const char *inspection_defect_state_name (Pm__V1__DefectState s);
const char *inspection_severity_name (Pm__V1__Severity s);
int inspection_on_defect_record (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_defect_verify (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_defect_reopen (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int inspection_on_order (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int inspection_on_deadline (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                            pm_out_t *out);

/* --- kpi.c: counters kept in the write path ---------------------------------- */

/* Adds delta to counter name of the estate and of its building (name is e.g.
 * "defects", "cat:燃气", "room:厨房"). */
void inspection_kpi_add (pm_txn_t *txn, const char *estate_id, const char *building, const char *name, int64_t delta);
int inspection_on_kpi (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void inspection_gauges (pm_ctx_t *ctx, pm_txn_t *txn);

/* --- reads.c: the unit's case, queues, snapshot ------------------------------- */

int inspection_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void inspection_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
int inspection_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap);
/* An event of type with the unit's ids set (arena); the caller sets the payload. */
Pm__V1__Event *inspection_event (pm_ctx_t *ctx, const char *type, const char *estate_id, const char *unit_id);
/* The time as people read it in the estate's zone: "2026-12-01 09:30" (arena). */
const char *inspection_time (pm_ctx_t *ctx, int64_t ms);

#endif
