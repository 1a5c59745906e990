/* intake.h - the intake daemon: each unit's move-in case, from the import of
 * the developer's sales list to the keys (DESIGN.md section 6: REGISTERED ->
 * NOTIFIED -> SCHEDULED (<-> NO_SHOW) -> CHECKED_IN -> KEYS_HANDED).
 *
 * Tables (keys from pm/key.h; unit ids are "ESTATE/BUILDING/UNIT"):
 *   units        s(unit_id)                 -> pm.intake.UnitRecord (owners, sealed ID numbers)
 *   estates      s(estate_id)               -> pm.intake.EstateRecord (its name)
 *   rejects      s(file path) u(line)       -> pm.v1.QueueItem (a rejected import row)
 *   cases        s(unit_id)                 -> pm.intake.CaseRecord (absent: REGISTERED)
 *   counts       s(estate) s(building) s(name) -> u64 BE: the progress counters
 *   hourly       s(estate) t(hour start)    -> u64 BE: check-ins per hour
 *   slots        s(estate) t(start)         -> pm.intake.SlotRecord
 *   waitlist     s(estate) U(position)      -> pm.v1.QueueItem
 *   noshows      s(unit_id)                 -> pm.v1.QueueItem (NO_SHOW, to rebook)
 *   blocked      s(unit_id)                 -> pm.v1.QueueItem (checked in, keys waiting)
 *   undelivered  s(unit_id)                 -> pm.v1.QueueItem (notice not sent after a day)
 *   ledger       s(unit_id) u(no)           -> pm.v1.KeyLedgerEntry
 *
 * Counters are small separate records written in the path that changes what
 * they count (case.c is the one place that does it), so a progress read sums
 * a few dozen counters and never scans units.
 *
 * Owners' ID numbers are sealed with libsodium's secretbox under [intake]
 * key_file before they are stored, and masked wherever they are shown. An
 * owner is identified by a keyed hash of the ID number (generichash under the
 * owner key beside the sealing key): Owner.owner_key, hex. */
#ifndef INTAKE_H
#define INTAKE_H

#include "pm/daemon.h"
#include "intake_store.pb-c.h"

#include <sodium.h>

enum {
    INTAKE_UNITS = PM_DB_FIRST_DOMAIN,
    INTAKE_ESTATES,
    INTAKE_REJECTS,
    INTAKE_CASES,
    INTAKE_COUNTS,
    INTAKE_HOURLY,
    INTAKE_SLOTS,
    INTAKE_WAITLIST,
    INTAKE_NOSHOWS,
    INTAKE_BLOCKED,
    INTAKE_UNDELIVERED,
    INTAKE_LEDGER,
    INTAKE_NTABLES
};

#define INTAKE_OWNER_KEY_BYTES 16 /* the owner hash: 32 hex characters */
#define INTAKE_UNIT_ID_MAX 256

/* The app context (ctx->app). */
#define INTAKE_OLD_KEYS 4

typedef struct {
    unsigned char key[crypto_secretbox_KEYBYTES];      /* seals ID numbers at rest */
    unsigned char owner_key[crypto_generichash_KEYBYTES]; /* hashes ID numbers into owner keys */
    unsigned char old_keys[INTAKE_OLD_KEYS][crypto_secretbox_KEYBYTES]; /* [intake] old_key_files: open only */
    int nold;
    unsigned char nonce_prefix[16];                    /* random per process start ... */
    uint64_t nonce_n;                                  /* ... then a counter: nonces never repeat */
    const pm_config_t *cfg;                            /* borrowed: per-estate checklists */
    uint32_t max_owners;                               /* [intake] max_owners_per_unit */
    int64_t utc_offset_ms;                             /* [intake] utc_offset_minutes: estate time */
    int64_t notice_overdue_ms;                         /* [intake] notice_overdue_h */
} intake_t;

extern const pm_daemon_spec_t intake_spec;

/* --- seal.c: the keys, ID numbers at rest, owner keys ---------------------------- */

/* [intake] key_file, or ${home}/keys/intake.key. Borrowed from cfg or static. */
const char *intake_key_file (const pm_config_t *cfg);
/* [intake] owner_key_file, or intake-owner.key beside key_file. Static. */
const char *intake_owner_key_file (const pm_config_t *cfg);
/* Loads (or creates, mode 0600) the sealing key and the owner key. PM_OK or an error (logged). */
int intake_load_key (intake_t *in, const char *path);
int intake_load_owner_key (intake_t *in, const char *path);
/* The app context: keys and settings from config. NULL (logged) on failure. */
void *intake_app_new (pm_daemon_t *d, const pm_config_t *cfg);
void intake_app_destroy (void *app);
/* nonce || secretbox of id, in arena memory. */
ProtobufCBinaryData intake_seal (pm_ctx_t *ctx, intake_t *in, const char *id);
/* The ID number a sealed box holds (arena), or NULL when it opens with
 * neither the key nor an old key; *old (may be NULL) says it took an old one. */
char *intake_unseal_old (pm_ctx_t *ctx, const intake_t *in, ProtobufCBinaryData b, bool *old);
char *intake_unseal (pm_ctx_t *ctx, const intake_t *in, ProtobufCBinaryData b);
/* intake.seal.rotate: reseals, a page of units at a time, what old keys sealed. */
int intake_on_seal_rotate (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* The owner key of a (normalised) ID number: hex into out (33 bytes). */
void intake_owner_key (const intake_t *in, const char *id, char out[2 * INTAKE_OWNER_KEY_BYTES + 1]);

/* --- keys.c: this daemon's key schema -------------------------------------------- */

/* "E01/3/2-301" into buf; PM_EINVAL when a part is empty, holds '/' or is too long. */
int intake_unit_id (char *buf, size_t size, const char *estate_id, const char *building, const char *unit);
/* Splits a unit id into its estate and building (arena copies). PM_EINVAL if it is not one. */
int intake_unit_id_parts (pm_arena_t *a, const char *unit_id, char **estate_id, char **building);
const pm_key_t *intake_unit_key (pm_key_t *k, const char *unit_id);
const pm_key_t *intake_estate_key (pm_key_t *k, const char *estate_id);
const pm_key_t *intake_reject_key (pm_key_t *k, const char *file, uint32_t line);
const pm_key_t *intake_count_key (pm_key_t *k, const char *estate_id, const char *building, const char *name);
const pm_key_t *intake_slot_key (pm_key_t *k, const char *estate_id, int64_t start_ms);
/* Adds delta to the counter (estate, building, name); the record goes when it reaches 0. */
int intake_count_add (pm_txn_t *txn, const char *estate_id, const char *building, const char *name, int64_t delta);
/* The counter's value (0 when absent). */
uint64_t intake_count_get (pm_txn_t *txn, const char *estate_id, const char *building, const char *name);

/* --- rows.c: what makes an import row acceptable, and the normalisations -------- */

typedef struct {
    const char *field;
    const char *value;  /* as it may be shown: masked where it must be */
    const char *reason;
} intake_row_error_t;

/* A row's values once checked and normalised (strings borrowed or arena). */
typedef struct {
    int64_t area_cm2;
    int32_t floor;
    const char *phone;          /* 13812345678 or +E.164 */
    const char *id_number;      /* upper case, ASCII */
    const char *delivery_date;  /* YYYY-MM-DD or "" */
    uint32_t parking_spaces;
} intake_row_values_t;

/* Checks a row; fills *v (arena memory). Returns false and *err when it is rejected. */
bool intake_row_check (pm_arena_t *a, const Pm__V1__ImportRow *row, intake_row_values_t *v, intake_row_error_t *err);
/* A phone as SMS needs it: mainland mobile "13812345678" or "+<E.164>", from
 * full-width digits, spaces, dashes, dots, brackets and a +86/0086 prefix.
 * NULL and *why when it cannot receive an SMS. Arena memory. */
const char *intake_phone_normalise (pm_arena_t *a, const char *s, const char **why);
/* An ID number with full-width characters made ASCII, blanks removed and x upper case (arena). */
char *intake_id_normalise (pm_arena_t *a, const char *s);
/* Whether s holds an 18-character resident ID number with a valid check character. */
bool intake_has_resident_id (const char *s);
/* Whether an 18-character ASCII string is a resident ID number whose check character matches. */
bool intake_resident_id_valid (const char *s);

/* --- time.c: estate time (UTC+8 unless configured) ------------------------------- */

/* "2026-12-05" -> ms of that day's 00:00 estate time. PM_EINVAL if not a date. */
int intake_date_parse (const intake_t *in, const char *s, int64_t *ms);
/* "2026-12-05" or "2026/12/5" -> "2026-12-05" (arena), or NULL if not a date. */
char *intake_date_normalise (pm_arena_t *a, const char *s);
/* "09:30" -> ms after midnight. PM_EINVAL if not a time. */
int intake_clock_parse (const char *s, int64_t *ms);
/* "2026-12-05 09:30" (or "2026-12-05T09:30") estate time -> ms. PM_EINVAL if not. */
int intake_local_parse (const intake_t *in, const char *s, int64_t *ms);
/* ms -> "2026-12-05 09:30" estate time (arena). */
char *intake_local_format (pm_arena_t *a, const intake_t *in, int64_t ms);
/* ms -> "09:30" estate time (arena). */
char *intake_hhmm (pm_arena_t *a, const intake_t *in, int64_t ms);
/* The start of the estate day holding ms. */
int64_t intake_day_start (const intake_t *in, int64_t ms);
/* Fen as people read it: "¥3,240.00" (arena). */
char *intake_yuan (pm_arena_t *a, int64_t fen);

/* --- case.c: one unit's case, and everything derived from it --------------------- */

/* A case being changed: load it, change it, save it. */
typedef struct {
    Pm__Intake__CaseRecord *rec;  /* arena; never NULL after intake_case_load */
    bool existed;
    /* what the counters and queues say now, to move them on save */
    int state0;
    bool blocked0, blk_invoice0, blk_inspection0, undelivered0;
    uint64_t waitlist0;
    int64_t slot0;
} intake_case_t;

/* Loads unit_id's case (a new REGISTERED one when absent). PM_OK, or PM_EPROTO. */
int intake_case_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, intake_case_t *c);
/* Saves the case and moves its counters and queue entries (state, blocked,
 * waitlist, no-show, undelivered) by what changed since it was loaded. */
int intake_case_save (pm_ctx_t *ctx, pm_txn_t *txn, intake_case_t *c);
/* Sets the state (and since). */
void intake_case_state (pm_ctx_t *ctx, intake_case_t *c, int state);
/* The state's name ("CHECKED_IN"). */
const char *intake_state_name (int state);
/* The key gate as intake sees it (arena): open, and each missing condition. */
Pm__V1__KeyGate *intake_gate (pm_ctx_t *ctx, const Pm__Intake__CaseRecord *rec);
/* The unit record (PM_ENOTFOUND when absent). */
int intake_unit_load (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, Pm__Intake__UnitRecord **rec);
/* NOT_FOUND reply for an unknown unit id, naming what a unit id looks like. */
int intake_reply_no_unit (pm_out_t *out, const char *unit_id);
/* Emits an event about a unit: type, payload case and payload set by the caller. */
int intake_emit (pm_out_t *out, pm_txn_t *txn, const char *type, const char *estate_id, const char *unit_id,
                 Pm__V1__Event *ev);

/* --- import.c -------------------------------------------------------------------- */
int intake_on_import (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- notices.c ------------------------------------------------------------------- */
int intake_on_notice_send (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_message (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int intake_on_notice_overdue (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                              pm_out_t *out);

/* --- schedule.c ------------------------------------------------------------------ */
int intake_on_plan (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_book (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_move (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_cancel (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_noshow (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                      pm_out_t *out);
/* Books c's unit into the slot (load, counter, no-show timer; no event).
 * PM__V1__STATUS__OK, or the status of the reply it set (CONFLICT: full,
 * ended, another building's day; NOT_FOUND: no such slot). */
int intake_slot_take (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, intake_case_t *c, const char *estate_id,
                       int64_t start_ms, bool walk_in);
/* Frees c's slot (load); the no-show timer is cancelled. Returns the slot's start (0: none). */
int64_t intake_slot_release (pm_ctx_t *ctx, pm_txn_t *txn, intake_case_t *c);
/* Books the first waitlisted unit of the estate into the slot at start_ms if it
 * has room and has not begun; emits its booking. The unit id, or NULL. */
const char *intake_waitlist_promote (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *estate_id,
                                     int64_t start_ms);
/* The Appointment event for c's current appointment (arena), owners from the unit. */
Pm__V1__Appointment *intake_appointment (pm_ctx_t *ctx, pm_txn_t *txn, const intake_case_t *c);

/* --- checkin.c ------------------------------------------------------------------- */
int intake_on_checkin (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- keys_gate.c: the gate's facts, the handover, the ledger --------------------- */
int intake_on_round (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int intake_on_accepted (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int intake_on_reinspection (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int intake_on_invoice (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int intake_on_keys_handover (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_keys_return (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_keys_ledger (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* The unit's key ledger entries (arena), and the keys still out / lost. */
size_t intake_ledger (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, Pm__V1__KeyLedgerEntry ***entries,
                      uint32_t *outstanding, uint32_t *lost);

/* --- progress.c ------------------------------------------------------------------ */
int intake_on_progress (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* --- reads.c --------------------------------------------------------------------- */
int intake_on_estate_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void intake_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
void intake_gauges (pm_ctx_t *ctx, pm_txn_t *txn);
int intake_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap);

#endif
