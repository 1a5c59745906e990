/* store.c - LMDB environment, tables and the first-error transaction.
 *
 * Why the map grows here and not in callers: MDB_MAP_FULL can come back from a
 * put or from the commit itself. Either way the whole write transaction is
 * lost, so the txn records PM_EMAPFULL as its first error, the caller aborts,
 * calls pm_store_grow (no txn open in this process: we are single-threaded)
 * and redoes the batch from its inputs. */
#define _GNU_SOURCE
#include "pm/store.h"
#include "pm/mem.h"
#include "pm/err.h"
#include "pm/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PM_MAX_TABLES 32

struct pm_store {
    MDB_env *env;
    MDB_dbi dbi[PM_MAX_TABLES];
    char *names[PM_MAX_TABLES];
    int ntables;
    size_t map_size;
};

static const char *s_lib_tables[PM_DB_FIRST_DOMAIN] = { "outbox", "inbox", "idem", "timers", "meta", "dead", "timer_index" };

int
pm_mkdirs (const char *dir)
{
    char *p = pm_xstrdup (dir);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir (p, 0750) != 0 && errno != EEXIST) {
                free (p);
                return PM_EIO;
            }
            *s = '/';
        }
    }
    int rc = (mkdir (p, 0750) != 0 && errno != EEXIST) ? PM_EIO : PM_OK;
    free (p);
    return rc;
}

/* True when dir holds no LMDB environment yet. */
static bool
s_fresh (const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    return stat (path, &st) != 0;
}

pm_store_t *
pm_store_open (const char *dir, size_t map_size, const char *const *domain_tables)
{
    pm_store_t *s = pm_xcalloc (1, sizeof *s);
    MDB_txn *txn = NULL;
    int rc;
    if (!s)
        return NULL;
    if (pm_mkdirs (dir) != PM_OK) {
        pm_error ("store: cannot create %s: %s", dir, strerror (errno));
        goto fail;
    }
    for (int i = 0; i < PM_DB_FIRST_DOMAIN; i++)
        s->names[s->ntables++] = pm_xstrdup (s_lib_tables[i]);
    for (int i = 0; domain_tables && domain_tables[i]; i++) {
        if (s->ntables == PM_MAX_TABLES) {
            pm_error ("store: too many tables (max %d)", PM_MAX_TABLES);
            goto fail;
        }
        s->names[s->ntables++] = pm_xstrdup (domain_tables[i]);
    }
    if ((rc = mdb_env_create (&s->env)) != 0
        || (rc = mdb_env_set_maxdbs (s->env, PM_MAX_TABLES)) != 0
        || (rc = mdb_env_set_maxreaders (s->env, 126)) != 0
        || (rc = s_fresh (dir) ? mdb_env_set_mapsize (s->env, map_size) : 0) != 0
        || (rc = mdb_env_open (s->env, dir, MDB_NOTLS, 0640)) != 0) {
        pm_error ("store: cannot open LMDB in %s: %s", dir, mdb_strerror (rc));
        goto fail;
    }
    /* An existing environment is opened without a size: LMDB then keeps the size the environment recorded, so a
     * map that grew before a restart stays grown; only a smaller one is raised
     * to the configured size. */
    MDB_envinfo info;
    mdb_env_info (s->env, &info);
    s->map_size = info.me_mapsize;
    if (s->map_size < map_size) {
        if ((rc = mdb_env_set_mapsize (s->env, map_size)) != 0) {
            pm_error ("store: cannot set the map of %s to %zu bytes: %s", dir, map_size, mdb_strerror (rc));
            goto fail;
        }
        s->map_size = map_size;
    }

    int dead = 0;
    mdb_reader_check (s->env, &dead);
    if (dead > 0)
        pm_warn ("store: cleared %d stale reader slot(s) left by a crashed process", dead);

    if ((rc = mdb_txn_begin (s->env, NULL, 0, &txn)) != 0)
        goto fail_rc;
    for (int i = 0; i < s->ntables; i++)
        if ((rc = mdb_dbi_open (txn, s->names[i], MDB_CREATE, &s->dbi[i])) != 0)
            goto fail_rc;
    if ((rc = mdb_txn_commit (txn)) != 0) {
        txn = NULL;
        goto fail_rc;
    }
    return s;
fail_rc:
    pm_error ("store: cannot open tables in %s: %s", dir, mdb_strerror (rc));
    if (txn)
        mdb_txn_abort (txn);
fail:
    pm_store_destroy (&s);
    return NULL;
}

void
pm_store_destroy (pm_store_t **p)
{
    if (!p || !*p)
        return;
    pm_store_t *s = *p;
    if (s->env)
        mdb_env_close (s->env);
    for (int i = 0; i < s->ntables; i++)
        free (s->names[i]);
    free (s);
    *p = NULL;
}

MDB_dbi
pm_store_dbi (pm_store_t *s, int table)
{
    return s->dbi[table];
}

int
pm_store_table (pm_store_t *s, const char *name)
{
    for (int i = PM_DB_FIRST_DOMAIN; i < s->ntables; i++)
        if (strcmp (s->names[i], name) == 0)
            return i;
    return -1;
}

MDB_env *
pm_store_env (pm_store_t *s)
{
    return s->env;
}

size_t
pm_store_map_size (pm_store_t *s)
{
    return s->map_size;
}

int
pm_store_grow (pm_store_t *s)
{
    size_t want = s->map_size * 2;
    int rc = mdb_env_set_mapsize (s->env, want);
    if (rc != 0) {
        pm_error ("store: cannot grow the map to %zu KiB: %s", want >> 10, mdb_strerror (rc));
        return pm_err_from_mdb (rc);
    }
    pm_info ("store: map grown from %zu to %zu KiB", s->map_size >> 10, want >> 10);
    s->map_size = want;
    return PM_OK;
}

size_t
pm_store_count (pm_store_t *s, int table)
{
    pm_txn_t t;
    if (pm_txn_begin_read (&t, s) != PM_OK)
        return 0;
    size_t n = pm_txn_count (&t, table);
    pm_txn_abort (&t);
    return n;
}

/* --- transactions --------------------------------------------------------- */

static int
s_begin (pm_txn_t *t, pm_store_t *s, pm_txn_t *parent, unsigned flags)
{
    memset (t, 0, sizeof *t);
    t->store = s;
    t->rdonly = (flags & MDB_RDONLY) != 0;
    if (parent)
        t->arena = parent->arena;
    if (parent && parent->err)
        return t->err = PM_ETXN;
    int rc = mdb_txn_begin (s->env, parent ? parent->txn : NULL, flags, &t->txn);
    if (rc != 0) {
        t->txn = NULL;
        t->err = pm_err_from_mdb (rc);
        pm_error ("store: cannot begin a transaction: %s", mdb_strerror (rc));
    }
    return t->err;
}

int
pm_txn_begin (pm_txn_t *t, pm_store_t *s, pm_txn_t *parent)
{
    return s_begin (t, s, parent, 0);
}

int
pm_txn_begin_read (pm_txn_t *t, pm_store_t *s)
{
    return s_begin (t, s, NULL, MDB_RDONLY);
}

/* Read txns' cursors must be closed by hand; write txns free theirs, but
 * closing them here too keeps one rule. */
void
pm_txn_close_cursors (pm_txn_t *t, int keep)
{
    while (t->ncursors > keep)
        mdb_cursor_close (t->cursors[--t->ncursors]);
}

static void
s_close_cursors (pm_txn_t *t)
{
    pm_txn_close_cursors (t, 0);
    free (t->cursors);
    t->cursors = NULL;
    t->cursors_cap = 0;
}

int
pm_txn_commit (pm_txn_t *t)
{
    s_close_cursors (t);
    if (!t->txn)
        return t->err ? t->err : PM_ETXN;
    if (t->err) {
        mdb_txn_abort (t->txn);
        t->txn = NULL;
        return t->err;
    }
    int rc = mdb_txn_commit (t->txn);
    t->txn = NULL;
    if (rc != 0)
        t->err = pm_err_from_mdb (rc);
    return t->err;
}

void
pm_txn_abort (pm_txn_t *t)
{
    s_close_cursors (t);
    if (t->txn)
        mdb_txn_abort (t->txn);
    t->txn = NULL;
}

int
pm_txn_fail (pm_txn_t *t, int err)
{
    if (!t->err)
        t->err = err;
    return t->err;
}

int
pm_txn_get (pm_txn_t *t, int table, const void *key, size_t klen, MDB_val *val)
{
    if (t->err)
        return t->err;
    MDB_val k = { klen, (void *) key };
    int rc = mdb_get (t->txn, t->store->dbi[table], &k, val);
    if (rc == MDB_NOTFOUND)
        return PM_ENOTFOUND;
    if (rc != 0)
        return pm_txn_fail (t, pm_err_from_mdb (rc));
    return PM_OK;
}

int
pm_txn_put (pm_txn_t *t, int table, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (t->err)
        return t->err;
    MDB_val k = { klen, (void *) key }, v = { vlen, (void *) val };
    int rc = mdb_put (t->txn, t->store->dbi[table], &k, &v, 0);
    if (rc != 0)
        return pm_txn_fail (t, pm_err_from_mdb (rc));
    t->writes++;
    return PM_OK;
}

int
pm_txn_del (pm_txn_t *t, int table, const void *key, size_t klen)
{
    if (t->err)
        return t->err;
    MDB_val k = { klen, (void *) key };
    int rc = mdb_del (t->txn, t->store->dbi[table], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return PM_OK;
    if (rc != 0)
        return pm_txn_fail (t, pm_err_from_mdb (rc));
    t->writes++;
    return PM_OK;
}

size_t
pm_txn_count (pm_txn_t *t, int table)
{
    MDB_stat st;
    if (t->err || mdb_stat (t->txn, t->store->dbi[table], &st) != 0)
        return 0;
    return st.ms_entries;
}

int
pm_txn_clear (pm_txn_t *t, int table)
{
    if (t->err)
        return t->err;
    int rc = mdb_drop (t->txn, t->store->dbi[table], 0);
    if (rc != 0)
        return pm_txn_fail (t, pm_err_from_mdb (rc));
    t->writes++;
    return PM_OK;
}

/* --- typed records ------------------------------------------------------------ */

/* A bad key fails its own command (PM_EINVAL), never the batch. */
static int
s_key_ok (pm_txn_t *t, const pm_key_t *k)
{
    if (t->err)
        return t->err;
    if (k->bad || k->len == 0)
        return pm_txn_fail (t, PM_EINVAL);
    return PM_OK;
}

int
pm_txn_put_msg (pm_txn_t *t, int table, const pm_key_t *k, const ProtobufCMessage *m)
{
    if (s_key_ok (t, k) != PM_OK)
        return t->err;
    size_t len = protobuf_c_message_get_packed_size (m);
    MDB_val kv = { k->len, (void *) k->buf }, v = { len, NULL };
    int rc = mdb_put (t->txn, t->store->dbi[table], &kv, &v, MDB_RESERVE);
    if (rc != 0)
        return pm_txn_fail (t, pm_err_from_mdb (rc));
    if (len)
        protobuf_c_message_pack (m, v.mv_data);
    t->writes++;
    return PM_OK;
}

static int
s_decode (pm_txn_t *t, const MDB_val *v, const ProtobufCMessageDescriptor *desc, void *out)
{
    ProtobufCAllocator *alloc = t->arena ? pm_arena_pb (t->arena) : NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack (desc, alloc, v->mv_size, v->mv_data);
    *(ProtobufCMessage **) out = m;
    if (!m) {
        pm_warn ("store: a stored %s (%zu bytes) does not decode", desc->name, v->mv_size);
        return PM_EPROTO;
    }
    return PM_OK;
}

int
pm_txn_get_msg (pm_txn_t *t, int table, const pm_key_t *k, const ProtobufCMessageDescriptor *desc, void *out)
{
    MDB_val v;
    *(void **) out = NULL;
    int rc = pm_txn_get_key (t, table, k, &v);
    if (rc != PM_OK)
        return rc;
    return s_decode (t, &v, desc, out);
}

int
pm_txn_get_key (pm_txn_t *t, int table, const pm_key_t *k, MDB_val *val)
{
    if (s_key_ok (t, k) != PM_OK)
        return t->err;
    return pm_txn_get (t, table, k->buf, k->len, val);
}

int
pm_txn_put_key (pm_txn_t *t, int table, const pm_key_t *k, const void *val, size_t vlen)
{
    if (s_key_ok (t, k) != PM_OK)
        return t->err;
    return pm_txn_put (t, table, k->buf, k->len, val, vlen);
}

int
pm_txn_del_key (pm_txn_t *t, int table, const pm_key_t *k)
{
    if (s_key_ok (t, k) != PM_OK)
        return t->err;
    return pm_txn_del (t, table, k->buf, k->len);
}

bool
pm_txn_has (pm_txn_t *t, int table, const pm_key_t *k)
{
    MDB_val v;
    return pm_txn_get_key (t, table, k, &v) == PM_OK;
}

/* --- scans ------------------------------------------------------------------------ */

static bool
s_in_bounds (pm_scan_t *s)
{
    if (s->mode == 1)
        return s->key.mv_size >= s->bound.len && memcmp (s->key.mv_data, s->bound.buf, s->bound.len) == 0;
    if (s->mode == 2 && s->bound.len) {
        size_t n = s->key.mv_size < s->bound.len ? s->key.mv_size : s->bound.len;
        int c = memcmp (s->key.mv_data, s->bound.buf, n);
        return c < 0 || (c == 0 && s->key.mv_size < s->bound.len);
    }
    return true;
}

static bool
s_settle (pm_scan_t *s, int rc)
{
    if (rc == MDB_NOTFOUND)
        s->ok = false;
    else if (rc != 0) {
        pm_txn_fail (s->txn, pm_err_from_mdb (rc));
        s->ok = false;
    }
    else
        s->ok = s_in_bounds (s);
    if (!s->ok)
        pm_scan_end (s); /* ran off its end: the cursor goes back at once */
    return s->ok;
}

static bool
s_open (pm_scan_t *s, pm_txn_t *t, int table)
{
    s->txn = t;
    s->cur = NULL;
    s->ok = false;
    if (t->err)
        return false;
    if (t->ncursors == t->cursors_cap) {
        t->cursors_cap = t->cursors_cap ? 2 * t->cursors_cap : 8;
        t->cursors = pm_xrealloc (t->cursors, (size_t) t->cursors_cap * sizeof *t->cursors);
    }
    int rc = mdb_cursor_open (t->txn, t->store->dbi[table], &s->cur);
    if (rc != 0) {
        pm_txn_fail (t, pm_err_from_mdb (rc));
        return false;
    }
    t->cursors[t->ncursors++] = s->cur;
    return true;
}

bool
pm_scan_prefix (pm_scan_t *s, pm_txn_t *t, int table, const pm_key_t *prefix)
{
    memset (s, 0, sizeof *s);
    if (prefix && prefix->bad) {
        pm_txn_fail (t, PM_EINVAL);
        return false;
    }
    if (!s_open (s, t, table))
        return false;
    s->mode = prefix && prefix->len ? 1 : 0;
    if (s->mode) {
        s->bound = *prefix;
        s->key.mv_size = prefix->len;
        s->key.mv_data = s->bound.buf;
        return s_settle (s, mdb_cursor_get (s->cur, &s->key, &s->val, MDB_SET_RANGE));
    }
    return s_settle (s, mdb_cursor_get (s->cur, &s->key, &s->val, MDB_FIRST));
}

/* The smallest key greater than every key with this prefix, or false when
 * there is none (the prefix is all 0xff). */
static bool
s_successor (pm_key_t *k)
{
    while (k->len && k->buf[k->len - 1] == 0xff)
        k->len--;
    if (!k->len)
        return false;
    k->buf[k->len - 1]++;
    return true;
}

bool
pm_scan_prefix_rev (pm_scan_t *s, pm_txn_t *t, int table, const pm_key_t *prefix)
{
    memset (s, 0, sizeof *s);
    s->reverse = true;
    if (prefix && prefix->bad) {
        pm_txn_fail (t, PM_EINVAL);
        return false;
    }
    if (!s_open (s, t, table))
        return false;
    s->mode = prefix && prefix->len ? 1 : 0;
    if (!s->mode)
        return s_settle (s, mdb_cursor_get (s->cur, &s->key, &s->val, MDB_LAST));
    s->bound = *prefix;
    pm_key_t after = *prefix;
    int rc;
    if (s_successor (&after)) {
        MDB_val k = { after.len, after.buf };
        rc = mdb_cursor_get (s->cur, &k, &s->val, MDB_SET_RANGE);
        rc = rc == 0 ? mdb_cursor_get (s->cur, &s->key, &s->val, MDB_PREV)
                     : rc == MDB_NOTFOUND ? mdb_cursor_get (s->cur, &s->key, &s->val, MDB_LAST) : rc;
    }
    else
        rc = mdb_cursor_get (s->cur, &s->key, &s->val, MDB_LAST);
    return s_settle (s, rc);
}

bool
pm_scan_range (pm_scan_t *s, pm_txn_t *t, int table, const pm_key_t *from, const pm_key_t *to)
{
    memset (s, 0, sizeof *s);
    if ((from && from->bad) || (to && to->bad)) {
        pm_txn_fail (t, PM_EINVAL);
        return false;
    }
    if (!s_open (s, t, table))
        return false;
    s->mode = 2;
    if (to)
        s->bound = *to;
    if (from && from->len) {
        s->key.mv_size = from->len;
        s->key.mv_data = (void *) from->buf;
        return s_settle (s, mdb_cursor_get (s->cur, &s->key, &s->val, MDB_SET_RANGE));
    }
    return s_settle (s, mdb_cursor_get (s->cur, &s->key, &s->val, MDB_FIRST));
}

bool
pm_scan_after (pm_scan_t *s, pm_txn_t *t, int table, const void *after, size_t len)
{
    pm_key_t from;
    if (!pm_scan_range (s, t, table, pm_key_raw (&from, after, len), NULL))
        return false;
    if (len && s->key.mv_size == len && memcmp (s->key.mv_data, after, len) == 0)
        return pm_scan_next (s); /* sent already */
    return true;
}

bool
pm_scan_next (pm_scan_t *s)
{
    if (!s->cur || s->txn->err) {
        s->ok = false;
        return false;
    }
    return s_settle (s, mdb_cursor_get (s->cur, &s->key, &s->val, s->reverse ? MDB_PREV : MDB_NEXT));
}

int
pm_scan_msg (pm_scan_t *s, const ProtobufCMessageDescriptor *desc, void *out)
{
    *(void **) out = NULL;
    if (!s->ok)
        return PM_ENOTFOUND;
    return s_decode (s->txn, &s->val, desc, out);
}

int
pm_scan_del (pm_scan_t *s)
{
    if (!s->ok)
        return PM_ENOTFOUND;
    int rc = mdb_cursor_del (s->cur, 0);
    if (rc != 0)
        return pm_txn_fail (s->txn, pm_err_from_mdb (rc));
    /* LMDB leaves the cursor on the entry after the deleted one: MDB_NEXT
     * returns that entry, MDB_PREV the one before the deleted. */
    s->txn->writes++;
    return PM_OK;
}

void
pm_scan_end (pm_scan_t *s)
{
    if (!s->cur)
        return;
    pm_txn_t *t = s->txn;
    for (int i = t->ncursors - 1; i >= 0; i--)
        if (t->cursors[i] == s->cur) {
            mdb_cursor_close (s->cur);
            memmove (&t->cursors[i], &t->cursors[i + 1], (size_t) (t->ncursors - i - 1) * sizeof *t->cursors);
            t->ncursors--;
            break;
        }
    s->cur = NULL;
    s->ok = false;
}

void
pm_u64_be (uint64_t v, unsigned char out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}

uint64_t
pm_be_u64 (const void *in)
{
    const unsigned char *p = in;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint64_t
pm_meta_get_u64 (pm_txn_t *t, const char *name)
{
    MDB_val v;
    if (pm_txn_get (t, PM_DB_META, name, strlen (name), &v) != PM_OK || v.mv_size != 8)
        return 0;
    return pm_be_u64 (v.mv_data);
}

int
pm_meta_put_u64 (pm_txn_t *t, const char *name, uint64_t v)
{
    unsigned char b[8];
    pm_u64_be (v, b);
    return pm_txn_put (t, PM_DB_META, name, strlen (name), b, 8);
}
