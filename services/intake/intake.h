/* intake.h - the intake daemon: estates, units and owners.
 *
 * Tables (keys.c): units   "estate_id/building-unit" -> IntakeUnitRecord
 *                  estates "estate_id"               -> IntakeEstateRecord
 *                  rejects file_name NUL line(u32 BE) -> field \t value \t reason
 * Owners' ID numbers are sealed with libsodium's secretbox under the key in
 * [intake] key_file before they are stored, and masked wherever they are shown. */
#ifndef INTAKE_H
#define INTAKE_H

#include "pm/daemon.h"

#include <sodium.h>

enum { INTAKE_UNITS = PM_DB_FIRST_DOMAIN, INTAKE_ESTATES, INTAKE_REJECTS };

typedef struct {
    unsigned char key[crypto_secretbox_KEYBYTES]; /* seals ID numbers at rest */
    unsigned char nonce_prefix[16];               /* random per process start ... */
    uint64_t nonce_n;                             /* ... then a counter: nonces never repeat */
} intake_t;

extern const pm_daemon_spec_t intake_spec;

/* [intake] key_file, or ${home}/keys/intake.key. Borrowed from cfg or static. */
const char *intake_key_file (const pm_config_t *cfg);
/* Loads (or creates, mode 0600) the sealing key. PM_OK or an error (logged). */
int intake_load_key (intake_t *in, const char *path);

/* keys.c: this daemon's key schema. */
/* "E01/3-1201" into buf; PM_EINVAL when a part holds '/' or is too long. */
int intake_unit_key (char *buf, size_t size, const char *estate_id, const char *building, const char *unit);
/* rejects key: file name, NUL, line as u32 BE. Returns the key length. */
size_t intake_reject_key (unsigned char *buf, size_t size, const char *file, uint32_t line);
/* The reverse: sets *line and returns the file name's length. */
size_t intake_reject_key_parse (const void *key, size_t klen, uint32_t *line);

/* rows.c: validation of one import row, shared by the handler and its tests. */
typedef struct {
    const char *field;
    const char *value;
    const char *reason;
} intake_row_error_t;
/* Checks a row; fills area_cm2 and floor. Returns false and *err when it is rejected. */
bool intake_row_check (const Pm__V1__ImportRow *row, int64_t *area_cm2, int32_t *floor,
                       intake_row_error_t *err);

int intake_on_import (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_estate_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int intake_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void intake_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
void intake_gauges (pm_ctx_t *ctx, pm_txn_t *txn);

#endif
