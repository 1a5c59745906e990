/* test_store - the LMDB store on a real environment in a temp dir: what a
 * user of pm_store / pm_txn would notice (durability, rollback, first error,
 * map growth, key order, meta counters, timers, tables by name). */
#include "support.h"

#include "pm/err.h"
#include "pm/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MB ((size_t) 1 << 20)
#define S_TINY_MAP ((size_t) 32 * 4096)

static const char *const s_tables[] = { "units", "estates", NULL };

enum { S_UNITS = PM_DB_FIRST_DOMAIN, S_ESTATES };

typedef struct {
    char *dir;
    pm_store_t *store;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    if (!f)
        return -1;
    f->dir = pmt_tmpdir ();
    f->store = pm_store_open (f->dir, 8 * S_MB, s_tables);
    if (!f->store)
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    pm_store_destroy (&f->store);
    pmt_rmdir (f->dir);
    free (f);
    return 0;
}

static void
s_reopen (s_fixture_t *f, size_t map_size)
{
    pm_store_destroy (&f->store);
    assert_null (f->store);
    f->store = pm_store_open (f->dir, map_size, s_tables);
    assert_non_null (f->store);
}

/* Commits key = val in table through one write txn. */
static void
s_put_one (pm_store_t *s, int table, const char *key, const char *val)
{
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, s, NULL), PM_OK);
    assert_int_equal (pm_txn_put (&t, table, key, strlen (key), val, strlen (val)), PM_OK);
    assert_int_equal (pm_txn_commit (&t), PM_OK);
}

/* The committed value of key as a string (malloc'd), or NULL when absent. */
static char *
s_get_str (pm_store_t *s, int table, const char *key)
{
    pm_txn_t t;
    MDB_val v;
    char *out = NULL;
    assert_int_equal (pm_txn_begin_read (&t, s), PM_OK);
    int rc = pm_txn_get (&t, table, key, strlen (key), &v);
    if (rc == PM_OK) {
        out = malloc (v.mv_size + 1);
        assert_non_null (out);
        memcpy (out, v.mv_data, v.mv_size);
        out[v.mv_size] = '\0';
    }
    else
        assert_int_equal (rc, PM_ENOTFOUND);
    pm_txn_abort (&t);
    return out;
}

static void
s_assert_value (pm_store_t *s, int table, const char *key, const char *want)
{
    char *got = s_get_str (s, table, key);
    if (!want) {
        if (got)
            fail_msg ("key '%s' should be absent, holds '%s'", key, got);
        return;
    }
    if (!got)
        fail_msg ("key '%s' is absent, expected '%s'", key, want);
    assert_string_equal (got, want);
    free (got);
}

/* --- tests ------------------------------------------------------------------- */

static void
test_put_get_del_round_trip (void **state)
{
    s_fixture_t *f = *state;
    pm_txn_t t;
    MDB_val v;
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_txn_put (&t, S_UNITS, "E01/1-0101", 10, "alpha", 5), PM_OK);
    assert_int_equal (pm_txn_put (&t, S_UNITS, "E01/1-0102", 10, "beta", 4), PM_OK);
    /* a write txn sees its own writes */
    assert_int_equal (pm_txn_get (&t, S_UNITS, "E01/1-0101", 10, &v), PM_OK);
    assert_int_equal (v.mv_size, 5);
    assert_memory_equal (v.mv_data, "alpha", 5);
    /* overwrite keeps one entry per key */
    assert_int_equal (pm_txn_put (&t, S_UNITS, "E01/1-0101", 10, "gamma", 5), PM_OK);
    assert_int_equal (pm_txn_count (&t, S_UNITS), 2);
    assert_int_equal (t.writes, 3);
    assert_int_equal (pm_txn_commit (&t), PM_OK);

    s_assert_value (f->store, S_UNITS, "E01/1-0101", "gamma");
    s_assert_value (f->store, S_UNITS, "E01/1-0102", "beta");
    /* the same key in another table is another entry */
    s_assert_value (f->store, S_ESTATES, "E01/1-0101", NULL);

    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_txn_del (&t, S_UNITS, "E01/1-0102", 10), PM_OK);
    /* deleting an absent key is not an error and does not fail the txn */
    assert_int_equal (pm_txn_del (&t, S_UNITS, "E01/9-9999", 10), PM_OK);
    assert_int_equal (pm_txn_get (&t, S_UNITS, "E01/1-0102", 10, &v), PM_ENOTFOUND);
    /* a missing key is reported but not kept as the txn's error */
    assert_int_equal (t.err, PM_OK);
    assert_int_equal (pm_txn_commit (&t), PM_OK);

    s_assert_value (f->store, S_UNITS, "E01/1-0101", "gamma");
    s_assert_value (f->store, S_UNITS, "E01/1-0102", NULL);
    assert_int_equal (pm_store_count (f->store, S_UNITS), 1);
}

static void
test_commit_survives_reopen (void **state)
{
    s_fixture_t *f = *state;
    s_put_one (f->store, S_UNITS, "E01/1-0101", "first");
    s_put_one (f->store, S_ESTATES, "E01", "Riverside");
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_meta_put_u64 (&t, "last_seq", 42), PM_OK);
    assert_int_equal (pm_txn_commit (&t), PM_OK);

    s_reopen (f, 8 * S_MB);

    s_assert_value (f->store, S_UNITS, "E01/1-0101", "first");
    s_assert_value (f->store, S_ESTATES, "E01", "Riverside");
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    assert_int_equal (pm_meta_get_u64 (&t, "last_seq"), 42);
    pm_txn_abort (&t);
    assert_int_equal (pm_store_count (f->store, S_UNITS), 1);
    assert_int_equal (pm_store_count (f->store, S_ESTATES), 1);
}

static void
test_aborted_txn_leaves_nothing (void **state)
{
    s_fixture_t *f = *state;
    s_put_one (f->store, S_UNITS, "keep", "kept");
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_txn_put (&t, S_UNITS, "gone", 4, "x", 1), PM_OK);
    assert_int_equal (pm_txn_put (&t, S_UNITS, "keep", 4, "overwritten", 11), PM_OK);
    assert_int_equal (pm_txn_del (&t, S_UNITS, "keep", 4), PM_OK);
    assert_int_equal (pm_meta_put_u64 (&t, "counter", 7), PM_OK);
    pm_txn_abort (&t);
    pm_txn_abort (&t); /* a second abort is harmless */

    s_assert_value (f->store, S_UNITS, "gone", NULL);
    s_assert_value (f->store, S_UNITS, "keep", "kept");
    assert_int_equal (pm_store_count (f->store, S_UNITS), 1);
    assert_int_equal (pm_store_count (f->store, PM_DB_META), 0);

    /* and after a reopen too */
    s_reopen (f, 8 * S_MB);
    s_assert_value (f->store, S_UNITS, "gone", NULL);
    s_assert_value (f->store, S_UNITS, "keep", "kept");
}

static void
test_nested_abort_rolls_back_only_child (void **state)
{
    s_fixture_t *f = *state;
    s_put_one (f->store, S_UNITS, "old", "v0");
    pm_txn_t parent, child, child2;
    MDB_val v;
    assert_int_equal (pm_txn_begin (&parent, f->store, NULL), PM_OK);
    assert_int_equal (pm_txn_put (&parent, S_UNITS, "parent-before", 13, "p1", 2), PM_OK);

    assert_int_equal (pm_txn_begin (&child, f->store, &parent), PM_OK);
    assert_int_equal (pm_txn_put (&child, S_UNITS, "child", 5, "c", 1), PM_OK);
    assert_int_equal (pm_txn_put (&child, S_UNITS, "old", 3, "changed-by-child", 16), PM_OK);
    assert_int_equal (pm_txn_del (&child, S_UNITS, "parent-before", 13), PM_OK);
    /* the child sees the parent's writes and its own */
    assert_int_equal (pm_txn_get (&child, S_UNITS, "child", 5, &v), PM_OK);
    pm_txn_abort (&child);

    /* after the child's abort the parent sees its own state again */
    assert_int_equal (pm_txn_get (&parent, S_UNITS, "child", 5, &v), PM_ENOTFOUND);
    assert_int_equal (pm_txn_get (&parent, S_UNITS, "parent-before", 13, &v), PM_OK);
    assert_int_equal (parent.err, PM_OK);

    /* a committed child's writes belong to the parent */
    assert_int_equal (pm_txn_begin (&child2, f->store, &parent), PM_OK);
    assert_int_equal (pm_txn_put (&child2, S_UNITS, "child2", 6, "c2", 2), PM_OK);
    assert_int_equal (pm_txn_commit (&child2), PM_OK);

    assert_int_equal (pm_txn_put (&parent, S_UNITS, "parent-after", 12, "p2", 2), PM_OK);
    assert_int_equal (pm_txn_commit (&parent), PM_OK);

    s_assert_value (f->store, S_UNITS, "old", "v0");
    s_assert_value (f->store, S_UNITS, "child", NULL);
    s_assert_value (f->store, S_UNITS, "parent-before", "p1");
    s_assert_value (f->store, S_UNITS, "child2", "c2");
    s_assert_value (f->store, S_UNITS, "parent-after", "p2");
    assert_int_equal (pm_store_count (f->store, S_UNITS), 4);
}

static void
test_first_error_is_kept (void **state)
{
    s_fixture_t *f = *state;
    pm_txn_t t;
    MDB_val v;
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_txn_put (&t, S_UNITS, "before", 6, "b", 1), PM_OK);
    assert_int_equal (pm_txn_fail (&t, PM_EINVAL), PM_EINVAL);
    /* a later failure does not replace the first */
    assert_int_equal (pm_txn_fail (&t, PM_ENOSPC), PM_EINVAL);
    assert_int_equal (pm_txn_put (&t, S_UNITS, "after", 5, "a", 1), PM_EINVAL);
    assert_int_equal (pm_txn_del (&t, S_UNITS, "before", 6), PM_EINVAL);
    assert_int_equal (pm_txn_get (&t, S_UNITS, "before", 6, &v), PM_EINVAL);
    assert_int_equal (pm_meta_put_u64 (&t, "n", 1), PM_EINVAL);
    assert_int_equal (pm_timer_set (&t, "k", "x", 1000, NULL, 0), PM_EINVAL);
    assert_int_equal (t.writes, 1); /* nothing after the failure was done */
    /* a nested txn of a failed parent does not begin */
    pm_txn_t child;
    assert_int_equal (pm_txn_begin (&child, f->store, &t), PM_ETXN);
    assert_int_equal (pm_txn_commit (&t), PM_EINVAL);
    /* committing again still answers the error */
    assert_int_equal (pm_txn_commit (&t), PM_EINVAL);

    s_assert_value (f->store, S_UNITS, "before", NULL);
    s_assert_value (f->store, S_UNITS, "after", NULL);
    assert_int_equal (pm_store_count (f->store, S_UNITS), 0);
    assert_int_equal (pm_store_count (f->store, PM_DB_META), 0);
    assert_int_equal (pm_store_count (f->store, PM_DB_TIMERS), 0);
}

/* Starts over in a new directory with a fresh environment of map_size bytes. */
static void
s_fresh (s_fixture_t *f, size_t map_size)
{
    pm_store_destroy (&f->store);
    pmt_rmdir (f->dir);
    f->dir = pmt_tmpdir ();
    f->store = pm_store_open (f->dir, map_size, s_tables);
    assert_non_null (f->store);
}

/* Puts values of vlen bytes as "k00000", "k00001".. in one txn: n of them,
 * or (n < 0) until a put fails. *done is the number of puts attempted.
 * Returns PM_OK when committed, else the first error of a put or of the
 * commit (the txn is aborted then). */
static int
s_fill (pm_store_t *s, int n, size_t vlen, int *done)
{
    pm_txn_t t;
    char key[16];
    char *val = malloc (vlen);
    assert_non_null (val);
    int rc = pm_txn_begin (&t, s, NULL);
    assert_int_equal (rc, PM_OK);
    int i;
    for (i = 0; n < 0 || i < n; i++) {
        snprintf (key, sizeof key, "k%05d", i);
        memset (val, 'a' + i % 26, vlen);
        rc = pm_txn_put (&t, S_UNITS, key, strlen (key), val, vlen);
        if (rc != PM_OK) {
            i++;
            break;
        }
        if (i > 100000)
            fail_msg ("the map never filled up");
    }
    *done = i;
    free (val);
    if (rc != PM_OK) {
        pm_txn_abort (&t);
        return rc;
    }
    return pm_txn_commit (&t);
}

static void
test_map_full_then_grow_and_redo (void **state)
{
    s_fixture_t *f = *state;
    s_fresh (f, S_TINY_MAP);
    size_t before = pm_store_map_size (f->store);
    assert_int_equal (before, S_TINY_MAP);
    s_put_one (f->store, S_ESTATES, "E01", "committed before");

    /* put 1000-byte values until the map is full (a put or the commit says so) */
    const size_t vlen = 1000;
    int n;
    int rc = s_fill (f->store, -1, vlen, &n);
    assert_int_equal (rc, PM_EMAPFULL);
    assert_true (n > 1);
    /* nothing of the failed batch is there; what was committed before is */
    assert_int_equal (pm_store_count (f->store, S_UNITS), 0);
    s_assert_value (f->store, S_ESTATES, "E01", "committed before");

    /* abort (done), grow, redo the same writes: they commit */
    assert_int_equal (pm_store_grow (f->store), PM_OK);
    assert_int_equal (pm_store_map_size (f->store), 2 * before);
    int n2;
    rc = s_fill (f->store, n, vlen, &n2);
    if (rc != PM_OK)
        fail_msg ("redo of %d puts after growing to %zu bytes: %s", n, pm_store_map_size (f->store),
                  pm_strerror (rc));
    assert_int_equal (n2, n);
    assert_int_equal (pm_store_count (f->store, S_UNITS), (size_t) n);
    pm_txn_t t;
    MDB_val v;
    char key[16];
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    for (int i = 0; i < n; i++) {
        snprintf (key, sizeof key, "k%05d", i);
        assert_int_equal (pm_txn_get (&t, S_UNITS, key, strlen (key), &v), PM_OK);
        assert_int_equal (v.mv_size, vlen);
        assert_int_equal (((char *) v.mv_data)[0], 'a' + i % 26);
        assert_int_equal (((char *) v.mv_data)[vlen - 1], 'a' + i % 26);
    }
    pm_txn_abort (&t);
    s_assert_value (f->store, S_ESTATES, "E01", "committed before");

    /* and they are durable in the grown map */
    s_reopen (f, S_TINY_MAP);
    assert_int_equal (pm_store_count (f->store, S_UNITS), (size_t) n);
}

static void
test_reopen_keeps_grown_map (void **state)
{
    s_fixture_t *f = *state;
    s_fresh (f, S_TINY_MAP);
    assert_int_equal (pm_store_grow (f->store), PM_OK);
    assert_int_equal (pm_store_grow (f->store), PM_OK);
    size_t grown = pm_store_map_size (f->store);
    assert_int_equal (grown, 4 * S_TINY_MAP);
    /* a commit after growing records the size in the environment */
    s_put_one (f->store, S_UNITS, "after-grow", "x");

    /* restart with the configured (smaller) size */
    s_reopen (f, S_TINY_MAP);
    s_assert_value (f->store, S_UNITS, "after-grow", "x");
    if (pm_store_map_size (f->store) < grown)
        fail_msg ("reopened map is %zu bytes; it had grown to %zu and should stay at least that big",
                  pm_store_map_size (f->store), grown);
    MDB_envinfo info;
    mdb_env_info (pm_store_env (f->store), &info);
    if (info.me_mapsize < grown)
        fail_msg ("LMDB map after reopen is %zu bytes; it had grown to %zu", (size_t) info.me_mapsize, grown);
}

static void
test_count_is_committed_state (void **state)
{
    s_fixture_t *f = *state;
    assert_int_equal (pm_store_count (f->store, S_UNITS), 0);
    assert_int_equal (pm_store_count (f->store, PM_DB_OUTBOX), 0);
    pm_txn_t t;
    char key[8];
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    for (int i = 0; i < 25; i++) {
        snprintf (key, sizeof key, "u%02d", i);
        assert_int_equal (pm_txn_put (&t, S_UNITS, key, strlen (key), "x", 1), PM_OK);
    }
    assert_int_equal (pm_txn_put (&t, S_ESTATES, "E01", 3, "x", 1), PM_OK);
    assert_int_equal (pm_txn_count (&t, S_UNITS), 25);
    /* not yet committed: the store's count does not see it */
    assert_int_equal (pm_store_count (f->store, S_UNITS), 0);
    assert_int_equal (pm_txn_commit (&t), PM_OK);
    assert_int_equal (pm_store_count (f->store, S_UNITS), 25);
    assert_int_equal (pm_store_count (f->store, S_ESTATES), 1);
    assert_int_equal (pm_store_count (f->store, PM_DB_OUTBOX), 0);

    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_txn_del (&t, S_UNITS, "u00", 3), PM_OK);
    assert_int_equal (pm_txn_del (&t, S_UNITS, "u01", 3), PM_OK);
    assert_int_equal (pm_txn_commit (&t), PM_OK);
    assert_int_equal (pm_store_count (f->store, S_UNITS), 23);
}

static void
test_u64_be_keeps_numeric_order (void **state)
{
    s_fixture_t *f = *state;
    static const uint64_t values[] = { 256, 2, UINT64_MAX, 0, 65535, 1, 4294967296ull, 255, 65536 };
    const size_t n = sizeof values / sizeof values[0];
    unsigned char a[8], b[8];

    pm_u64_be (2, a);
    pm_u64_be (256, b);
    assert_true (memcmp (a, b, 8) < 0);
    static const unsigned char want[8] = { 0, 0, 0, 0, 0, 0, 1, 0 };
    assert_memory_equal (b, want, 8);
    for (size_t i = 0; i < n; i++) {
        pm_u64_be (values[i], a);
        assert_true (pm_be_u64 (a) == values[i]);
    }

    /* stored as keys, LMDB returns them in numeric order */
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    for (size_t i = 0; i < n; i++) {
        pm_u64_be (values[i], a);
        assert_int_equal (pm_txn_put (&t, PM_DB_OUTBOX, a, 8, "e", 1), PM_OK);
    }
    assert_int_equal (pm_txn_commit (&t), PM_OK);

    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    MDB_cursor *c;
    MDB_val k, v;
    assert_int_equal (mdb_cursor_open (t.txn, pm_store_dbi (f->store, PM_DB_OUTBOX), &c), 0);
    uint64_t prev = 0;
    size_t seen = 0;
    int rc = mdb_cursor_get (c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        assert_int_equal (k.mv_size, 8);
        uint64_t x = pm_be_u64 (k.mv_data);
        if (seen > 0 && x <= prev)
            fail_msg ("key %llu came after %llu", (unsigned long long) x, (unsigned long long) prev);
        prev = x;
        seen++;
        rc = mdb_cursor_get (c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (c);
    pm_txn_abort (&t);
    assert_int_equal (seen, n);
    assert_true (prev == UINT64_MAX);
}

static void
test_meta_u64_get_put (void **state)
{
    s_fixture_t *f = *state;
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    /* an absent counter reads as 0 and does not fail the txn */
    assert_true (pm_meta_get_u64 (&t, "last_seq") == 0);
    assert_int_equal (t.err, PM_OK);
    assert_int_equal (pm_meta_put_u64 (&t, "last_seq", 1), PM_OK);
    assert_int_equal (pm_meta_put_u64 (&t, "big", UINT64_MAX - 1), PM_OK);
    assert_true (pm_meta_get_u64 (&t, "last_seq") == 1);
    /* read-modify-write */
    assert_int_equal (pm_meta_put_u64 (&t, "last_seq", pm_meta_get_u64 (&t, "last_seq") + 41), PM_OK);
    assert_int_equal (pm_txn_commit (&t), PM_OK);

    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    assert_true (pm_meta_get_u64 (&t, "last_seq") == 42);
    assert_true (pm_meta_get_u64 (&t, "big") == UINT64_MAX - 1);
    assert_true (pm_meta_get_u64 (&t, "other") == 0);
    pm_txn_abort (&t);

    /* a value that is not 8 bytes is not a counter: reads as 0 */
    s_put_one (f->store, PM_DB_META, "text", "hello");
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    assert_true (pm_meta_get_u64 (&t, "text") == 0);
    pm_txn_abort (&t);
}

static void
test_timer_next_due_is_earliest (void **state)
{
    s_fixture_t *f = *state;
    pm_txn_t t;
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    assert_true (pm_timer_next_due (&t) == INT64_MAX);
    pm_txn_abort (&t);

    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_timer_set (&t, "dunning.step", "INV-5", 5000, "p5", 2), PM_OK);
    assert_int_equal (pm_timer_set (&t, "dunning.step", "INV-3", 300, NULL, 0), PM_OK);
    assert_int_equal (pm_timer_set (&t, "sla.check", "WO-1", 259200000, "x", 1), PM_OK);
    assert_int_equal (pm_timer_set (&t, "dunning.step", "INV-3b", 300, NULL, 0), PM_OK);
    assert_int_equal (pm_timer_set (&t, "sla.check", "WO-2", 1000, NULL, 0), PM_OK);
    /* the open txn sees its own timers */
    assert_true (pm_timer_next_due (&t) == 300);
    assert_int_equal (pm_txn_commit (&t), PM_OK);

    /* two timers with the same due time are both kept */
    assert_int_equal (pm_store_count (f->store, PM_DB_TIMERS), 5);
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    assert_true (pm_timer_next_due (&t) == 300);
    pm_txn_abort (&t);

    /* the due ones come earliest first, with kind, key and payload */
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    pm_scan_t s;
    pm_timer_t tm;
    int n = 0;
    for (pm_timer_scan (&s, &t, 1000); s.ok; pm_scan_next (&s), n++) {
        assert_int_equal (pm_timer_read (&s, &tm), PM_OK);
        assert_true (tm.due_ms <= 1000);
    }
    assert_int_equal (n, 3);
    pm_timer_scan (&s, &t, 1000);
    assert_int_equal (pm_timer_read (&s, &tm), PM_OK);
    assert_true (tm.due_ms == 300);
    assert_string_equal (tm.kind, "dunning.step");
    assert_string_equal (tm.key, "INV-3");
    assert_int_equal (tm.plen, 0);
    pm_txn_abort (&t);

    /* a later, earlier-due timer becomes the next */
    assert_int_equal (pm_txn_begin (&t, f->store, NULL), PM_OK);
    assert_int_equal (pm_timer_set (&t, "sla.check", "WO-3", 20, NULL, 0), PM_OK);
    assert_int_equal (pm_txn_commit (&t), PM_OK);
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    assert_true (pm_timer_next_due (&t) == 20);
    pm_txn_abort (&t);

    /* durable: still there after a reopen */
    s_reopen (f, 8 * S_MB);
    assert_int_equal (pm_txn_begin_read (&t, f->store), PM_OK);
    assert_true (pm_timer_next_due (&t) == 20);
    pm_txn_abort (&t);
    assert_int_equal (pm_store_count (f->store, PM_DB_TIMERS), 6);
}

static void
test_domain_table_by_name (void **state)
{
    s_fixture_t *f = *state;
    assert_int_equal (pm_store_table (f->store, "units"), S_UNITS);
    assert_int_equal (pm_store_table (f->store, "estates"), S_ESTATES);
    assert_int_equal (pm_store_table (f->store, "nosuch"), -1);
    assert_int_equal (pm_store_table (f->store, ""), -1);
    assert_int_equal (pm_store_table (f->store, "unit"), -1);

    /* tables are separate: the same key in each holds its own value */
    s_put_one (f->store, pm_store_table (f->store, "units"), "k", "in units");
    s_put_one (f->store, pm_store_table (f->store, "estates"), "k", "in estates");
    s_assert_value (f->store, S_UNITS, "k", "in units");
    s_assert_value (f->store, S_ESTATES, "k", "in estates");
    assert_true (pm_store_dbi (f->store, S_UNITS) != pm_store_dbi (f->store, S_ESTATES));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_put_get_del_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_commit_survives_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_aborted_txn_leaves_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_nested_abort_rolls_back_only_child, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_first_error_is_kept, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_map_full_then_grow_and_redo, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reopen_keeps_grown_map, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_count_is_committed_state, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_u64_be_keeps_numeric_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_meta_u64_get_put, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timer_next_due_is_earliest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_domain_table_by_name, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
