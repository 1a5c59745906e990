/* intake.h - the intake daemon: estates, units and owners.
 *
 * Tables (keys from pm/key.h):
 *   units    s(unit_id)          -> pm.intake.UnitRecord
 *   estates  s(estate_id)        -> pm.intake.EstateRecord
 *   rejects  s(file) u(line)     -> pm.v1.QueueItem (a rejected import row)
 * Owners' ID numbers are sealed with libsodium's secretbox under the key in
 * [intake] key_file before they are stored, and masked wherever they are shown. */
#ifndef INTAKE_H
#define INTAKE_H

#include "pm/daemon.h"
#include "intake_store.pb-c.h"

#include <sodium.h>

enum { INTAKE_UNITS = PM_DB_FIRST_DOMAIN, INTAKE_ESTATES, INTAKE_REJECTS, INTAKE_NTABLES };

/* The app context (ctx->app). */
typedef struct {
    unsigned char key[crypto_secretbox_KEYBYTES]; /* seals ID numbers at rest */
    unsigned char nonce_prefix[16];               /* random per process start ... */
    uint64_t nonce_n;                             /* ... then a counter: nonces never repeat */
} intake_t;

extern const pm_daemon_spec_t intake_spec;

/* seal.c: the sealing key and ID numbers at rest. */
/* [intake] key_file, or ${home}/keys/intake.key. Borrowed from cfg or static. */
const char *intake_key_file (const pm_config_t *cfg);
/* Loads (or creates, mode 0600) the sealing key. PM_OK or an error (logged). */
int intake_load_key (intake_t *in, const char *path);
/* The app context: the key loaded from config. NULL (logged) on failure. */
void *intake_app_new (pm_daemon_t *d, const pm_config_t *cfg);
void intake_app_destroy (void *app);
/* nonce || secretbox of id, in arena memory. */
ProtobufCBinaryData intake_seal (pm_ctx_t *ctx, intake_t *in, const char *id);
/* The ID number a sealed box holds (arena), or NULL when it does not open. */
char *intake_unseal (pm_ctx_t *ctx, const intake_t *in, ProtobufCBinaryData b);

/* keys.c: this daemon's key schema. */
/* "E01/3-1201" into buf; PM_EINVAL when a part holds '/' or is too long. */
int intake_unit_id (char *buf, size_t size, const char *estate_id, const char *building, const char *unit);
const pm_key_t *intake_unit_key (pm_key_t *k, const char *unit_id);
const pm_key_t *intake_estate_key (pm_key_t *k, const char *estate_id);
const pm_key_t *intake_reject_key (pm_key_t *k, const char *file, uint32_t line);

/* rows.c: validation of one import row, shared by the handler and its tests. */
typedef struct {
    const char *field;
    const char *value;
    const char *reason;
} intake_row_error_t;
/* Checks a row; fills area_cm2 and floor. Returns false and *err when it is rejected. */
bool intake_row_check (const Pm__V1__ImportRow *row, int64_t *area_cm2, int32_t *floor,
                       intake_row_error_t *err);

/* import.c */
int intake_on_import (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* reads.c */
int intake_on_estate_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void intake_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
void intake_gauges (pm_ctx_t *ctx, pm_txn_t *txn);
int intake_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap);

#endif
