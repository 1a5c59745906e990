/* pm/store.h - one LMDB environment per daemon, and a transaction that keeps
 * its first error (as Knot DNS does): domain code reads as a straight line and
 * checks once, at commit.
 *
 * Library-owned tables:
 *   outbox  seq (u64 BE)            -> packed pm.v1.Event
 *   inbox   source name             -> last applied seq (u64 BE)
 *   idem    request id              -> at_ms (u64 BE) + packed pm.v1.Reply
 *   timers  (format in timer.c)     -> due timers, and their index by kind and key
 *   meta    name                    -> value
 *   dead    "source:seq" / "timer:kind:key" -> packed pm.v1.QueueItem (why it failed)
 * Domain tables are opened by name at pm_store_open.
 *
 * The map starts at the configured size and doubles when a put or a commit
 * answers MDB_MAP_FULL (PM_EMAPFULL: abort, pm_store_grow, redo the batch).
 * LMDB's default durable flags are used: every commit is fsync'd. */
#ifndef PM_STORE_H
#define PM_STORE_H

#include "pm/arena.h"
#include "pm/key.h"

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pm_store pm_store_t;

enum {
    PM_DB_OUTBOX = 0,
    PM_DB_INBOX,
    PM_DB_IDEM,
    PM_DB_TIMERS,
    PM_DB_META,
    PM_DB_DEAD,
    PM_DB_TIMER_INDEX,
    PM_DB_FIRST_DOMAIN, /* domain tables follow, in the order given to pm_store_open */
};

typedef struct {
    MDB_txn *txn;
    pm_store_t *store;
    int err;            /* first error, PM_OK while all went well */
    unsigned writes;    /* puts and dels done through this txn */
    bool rdonly;
    pm_arena_t *arena;  /* where typed reads and scans decode messages (the runtime sets it) */
    MDB_cursor **cursors; /* scans' cursors, closed when the txn ends (or by pm_txn_close_cursors) */
    int ncursors, cursors_cap;
} pm_txn_t;

/* mkdir -p dir (mode 0750). PM_OK, or PM_EIO with errno set. */
int pm_mkdirs (const char *dir);

/* Opens (creating) the environment in dir with map_size bytes, the library
 * tables and the NULL-terminated list of domain tables; clears stale readers.
 * Returns NULL on failure and logs why. Caller owns. */
pm_store_t *pm_store_open (const char *dir, size_t map_size, const char *const *domain_tables);
void pm_store_destroy (pm_store_t **p);
/* The dbi of a table: PM_DB_* or PM_DB_FIRST_DOMAIN + i. */
MDB_dbi pm_store_dbi (pm_store_t *s, int table);
/* Domain table by name; -1 if unknown. */
int pm_store_table (pm_store_t *s, const char *name);
MDB_env *pm_store_env (pm_store_t *s);
size_t pm_store_map_size (pm_store_t *s);
/* Doubles the map (no transaction may be open). */
int pm_store_grow (pm_store_t *s);
/* Entries in a table (committed state). */
size_t pm_store_count (pm_store_t *s, int table);

/* Begins a write txn (parent NULL), a nested write txn (parent given: it
 * shares the parent's arena) or a read txn. Its arena is NULL until set. */
int pm_txn_begin (pm_txn_t *t, pm_store_t *s, pm_txn_t *parent);
int pm_txn_begin_read (pm_txn_t *t, pm_store_t *s);
/* Commits; returns the first error seen (and aborts) if any. */
int pm_txn_commit (pm_txn_t *t);
void pm_txn_abort (pm_txn_t *t);

/* Reads key; *val is valid only inside the txn. PM_ENOTFOUND if absent (not kept as error). */
int pm_txn_get (pm_txn_t *t, int table, const void *key, size_t klen, MDB_val *val);
int pm_txn_put (pm_txn_t *t, int table, const void *key, size_t klen, const void *val, size_t vlen);
/* Deletes key; absent is not an error. */
int pm_txn_del (pm_txn_t *t, int table, const void *key, size_t klen);
/* Records err as the txn's first error (for domain-level failures). */
int pm_txn_fail (pm_txn_t *t, int err);
/* Entries in a table as seen by this txn. */
size_t pm_txn_count (pm_txn_t *t, int table);
/* Closes the cursors opened after the first `keep` (the runtime calls it
 * after each handler). The number open is t->ncursors. */
void pm_txn_close_cursors (pm_txn_t *t, int keep);
/* Empties a table (a projection being rebuilt). */
int pm_txn_clear (pm_txn_t *t, int table);

/* --- typed records: a protobuf message per key ------------------------------ */

/* Packs m straight into the page (MDB_RESERVE) under key k. */
int pm_txn_put_msg (pm_txn_t *t, int table, const pm_key_t *k, const ProtobufCMessage *m);
/* Decodes the record under k into *out (a message of desc, in t->arena, valid
 * until the arena is reset). PM_OK; PM_ENOTFOUND when absent; PM_EPROTO when
 * the stored bytes do not decode (logged; not recorded as the txn's error, so
 * the caller decides). out is a pointer to the message pointer (T **). */
int pm_txn_get_msg (pm_txn_t *t, int table, const pm_key_t *k, const ProtobufCMessageDescriptor *desc, void *out);
/* Raw value under k; *val valid inside the txn. PM_ENOTFOUND when absent. */
int pm_txn_get_key (pm_txn_t *t, int table, const pm_key_t *k, MDB_val *val);
int pm_txn_put_key (pm_txn_t *t, int table, const pm_key_t *k, const void *val, size_t vlen);
/* Deletes k; absent is not an error. */
int pm_txn_del_key (pm_txn_t *t, int table, const pm_key_t *k);
/* Whether k is present. */
bool pm_txn_has (pm_txn_t *t, int table, const pm_key_t *k);

/* --- scans (Knot DNS's knot_lmdb_foreach is the model) --------------------- */

/* A forward or backward walk over a table, inside a txn:
 *
 *   pm_scan_t s;
 *   for (pm_scan_prefix (&s, txn, T_DEFECTS, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
 *       Defect *d;
 *       if (pm_scan_msg (&s, &defect__descriptor, &d) == PM_OK) ...
 *   }
 *
 * The cursor belongs to the txn: it is given back when the scan runs off its
 * end, and closed when the txn ends (the runtime also closes what a handler
 * left open when the handler returns), so leaving the loop with break (or
 * return) is safe; pm_scan_end gives it back earlier.
 * A cursor error is kept as the txn's first error and ends the scan. */
typedef struct {
    pm_txn_t *txn;
    MDB_cursor *cur;
    bool ok;         /* positioned on an entry: key and val are valid */
    bool reverse;
    MDB_val key, val;
    pm_key_t bound;  /* prefix, or the exclusive end of a range */
    int mode;        /* 0: whole table, 1: prefix, 2: range */
} pm_scan_t;

/* Entries whose key starts with prefix (NULL: the whole table), in key order. */
bool pm_scan_prefix (pm_scan_t *s, pm_txn_t *t, int table, const pm_key_t *prefix);
/* The same, last key first. */
bool pm_scan_prefix_rev (pm_scan_t *s, pm_txn_t *t, int table, const pm_key_t *prefix);
/* Entries with from <= key < to (NULL from: from the first; NULL to: to the end). */
bool pm_scan_range (pm_scan_t *s, pm_txn_t *t, int table, const pm_key_t *from, const pm_key_t *to);
/* Entries whose key is strictly greater than after[0..len) (len 0: the whole
 * table): how a page of a snapshot resumes after the last key it sent. */
bool pm_scan_after (pm_scan_t *s, pm_txn_t *t, int table, const void *after, size_t len);
/* Moves to the next entry; false (and s->ok false) at the end. */
bool pm_scan_next (pm_scan_t *s);
/* Decodes the current value (as pm_txn_get_msg). */
int pm_scan_msg (pm_scan_t *s, const ProtobufCMessageDescriptor *desc, void *out);
/* Deletes the current entry; pm_scan_next then moves to the one after it. */
int pm_scan_del (pm_scan_t *s);
/* Closes the cursor now (optional). */
void pm_scan_end (pm_scan_t *s);

/* Big-endian u64 keys, so LMDB's byte order is numeric order. */
void pm_u64_be (uint64_t v, unsigned char out[8]);
uint64_t pm_be_u64 (const void *in);

/* Counters in the meta table (u64), read-modify-write in txn. */
uint64_t pm_meta_get_u64 (pm_txn_t *t, const char *name);
int pm_meta_put_u64 (pm_txn_t *t, const char *name, uint64_t v);

#endif
