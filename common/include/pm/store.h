/* pm/store.h - one LMDB environment per daemon, and a transaction that keeps
 * its first error (as Knot DNS does): domain code reads as a straight line and
 * checks once, at commit.
 *
 * Library-owned tables:
 *   outbox  seq (u64 BE)            -> packed pm.v1.Event
 *   inbox   source name             -> last applied seq (u64 BE)
 *   idem    request id              -> at_ms (u64 BE) + packed pm.v1.Reply
 *   timers  due_ms (u64 BE) + n (u64 BE) -> kind NUL key NUL payload
 *   meta    name                    -> value
 *   dead    event id ("source:seq")   -> why it could not be applied
 * Domain tables are opened by name at pm_store_open.
 *
 * The map starts at the configured size and doubles when a put or a commit
 * answers MDB_MAP_FULL (PM_EMAPFULL: abort, pm_store_grow, redo the batch).
 * LMDB's default durable flags are used: every commit is fsync'd. */
#ifndef PM_STORE_H
#define PM_STORE_H

#include <lmdb.h>
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
    PM_DB_FIRST_DOMAIN, /* domain tables follow, in the order given to pm_store_open */
};

typedef struct {
    MDB_txn *txn;
    pm_store_t *store;
    int err;         /* first error, PM_OK while all went well */
    unsigned writes; /* puts and dels done through this txn */
    bool rdonly;
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

/* Begins a write txn (parent NULL), a nested write txn (parent given) or a read txn. */
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

/* Big-endian u64 keys, so LMDB's byte order is numeric order. */
void pm_u64_be (uint64_t v, unsigned char out[8]);
uint64_t pm_be_u64 (const void *in);

/* Counters in the meta table (u64), read-modify-write in txn. */
uint64_t pm_meta_get_u64 (pm_txn_t *t, const char *name);
int pm_meta_put_u64 (pm_txn_t *t, const char *name, uint64_t v);

/* Durable timers: due_ms, kind ("dunning.step"), key ("INV-7"), payload bytes. */
int pm_timer_add (pm_txn_t *t, int64_t due_ms, const char *kind, const char *key,
                  const void *payload, size_t plen);
/* Earliest due time, or INT64_MAX when there is none. */
int64_t pm_timer_next_due (pm_txn_t *t);

#endif
