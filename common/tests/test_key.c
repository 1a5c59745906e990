/* test_key - composite keys sort in their natural order, and scans over them
 * (prefix, range, reverse, resume-after, delete while walking) see exactly
 * the entries a handler asks for, on a real LMDB. */
#include "support.h"
#include "pm/err.h"
#include "pm/key.h"
#include "pm/log.h"
#include "pm/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T = PM_DB_FIRST_DOMAIN };

typedef struct {
    char *dir;
    pm_store_t *s;
    pm_arena_t *a;
} fx_t;

static int
s_setup (void **state)
{
    fx_t *f = calloc (1, sizeof *f);
    static const char *const tables[] = { "t", NULL };
    f->dir = pmt_tmpdir ();
    f->s = pm_store_open (f->dir, 4u << 20, tables);
    f->a = pm_arena_new ();
    assert_non_null (f->s);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *f = *state;
    pm_store_destroy (&f->s);
    pm_arena_destroy (&f->a);
    pmt_rmdir (f->dir);
    free (f);
    return 0;
}

static int
s_cmp (const pm_key_t *a, const pm_key_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp (a->buf, b->buf, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void
test_parts_sort_in_natural_order (void **state)
{
    pm_key_t a, b;
    /* strings: a prefix sorts first, "E01" before "E011" */
    assert_true (s_cmp (pm_key (&a, "s", "E01"), pm_key (&b, "s", "E011")) < 0);
    assert_true (s_cmp (pm_key (&a, "ss", "E01", "zzz"), pm_key (&b, "ss", "E011", "a")) < 0);
    /* numbers: 9 before 10 (big-endian), whatever the decimal text would say */
    assert_true (s_cmp (pm_key (&a, "su", "E01", 9u), pm_key (&b, "su", "E01", 10u)) < 0);
    assert_true (s_cmp (pm_key (&a, "U", (uint64_t) 255), pm_key (&b, "U", (uint64_t) 256)) < 0);
    /* times: negative before zero before positive */
    assert_true (s_cmp (pm_key (&a, "t", (int64_t) -5), pm_key (&b, "t", (int64_t) 0)) < 0);
    assert_true (s_cmp (pm_key (&a, "t", (int64_t) 0), pm_key (&b, "t", (int64_t) 1764000000000)) < 0);
    /* due time first, then id: "orders due before T" is a range */
    assert_true (s_cmp (pm_key (&a, "ts", (int64_t) 100, "WO-9"), pm_key (&b, "ts", (int64_t) 200, "WO-1")) < 0);
}

static char *s_walk (fx_t *f, pm_scan_t *s, pm_txn_t *t);

static void
test_natural_paths (void **state)
{
    fx_t *f = *state;
    pm_key_t a, b;
    /* numbers as numbers: building 2 before 10, unit 901 before 1001 */
    assert_true (s_cmp (pm_key (&a, "N", "E01/2/101"), pm_key (&b, "N", "E01/10/101")) < 0);
    assert_true (s_cmp (pm_key (&a, "N", "E01/3/901"), pm_key (&b, "N", "E01/3/1001")) < 0);
    assert_true (s_cmp (pm_key (&a, "N", "E01/3/2-301"), pm_key (&b, "N", "E01/3/2-1001")) < 0);
    assert_true (s_cmp (pm_key (&a, "N", "E9/1/1"), pm_key (&b, "N", "E10/1/1")) < 0);
    /* a parent before its children, children before a sibling with a suffix */
    assert_true (s_cmp (pm_key (&a, "N", "E01/3"), pm_key (&b, "N", "E01/3/1")) < 0);
    assert_true (s_cmp (pm_key (&a, "N", "E01/3/999"), pm_key (&b, "N", "E01/3-A/1")) < 0);
    /* distinct texts stay distinct keys */
    assert_true (s_cmp (pm_key (&a, "N", "E1/1/1"), pm_key (&b, "N", "E01/1/1")) != 0);
    assert_true (s_cmp (pm_key (&a, "N", "E01/3/2-301"), pm_key (&b, "N", "E01/3-2/301")) != 0);
    /* reversible, also with Chinese and leading zeros */
    static const char *const texts[] = { "E01/3/2-301", "E007/12/0101", "翠湖/3号楼/2单元301", "A/B/C", "0/00/000" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        pm_key (&a, "NU", texts[i], (uint64_t) 7);
        char *back;
        uint64_t seven;
        assert_int_equal (pm_key_parse (a.buf, a.len, "NU", f->a, &back, &seven), PM_OK);
        assert_string_equal (back, texts[i]);
        assert_true (seven == 7);
        assert_string_equal (pm_key_text (f->a, a.buf, a.len, "NU"), pm_arena_printf (f->a, "%s/7", texts[i]));
    }
    /* control characters are refused, not mis-sorted */
    assert_true (pm_key (&a, "N", "E01/\x01")->bad);
}

static void
test_natural_prefix_scan (void **state)
{
    fx_t *f = *state;
    pm_txn_t t;
    pm_key_t k;
    static const char *const units[] = { "E01/10/101", "E01/2/101", "E01/2/1001", "E01/2/901", "E011/1/1", "E1/1/1" };
    assert_int_equal (pm_txn_begin (&t, f->s, NULL), PM_OK);
    for (size_t i = 0; i < 6; i++)
        pm_txn_put_key (&t, T, pm_key (&k, "N", units[i]), units[i], strlen (units[i]));
    pm_scan_t s;
    pm_scan_prefix (&s, &t, T, pm_key (&k, "Q", "E01/"));
    assert_string_equal (s_walk (f, &s, &t), "E01/2/101,E01/2/901,E01/2/1001,E01/10/101");
    pm_scan_prefix (&s, &t, T, pm_key (&k, "Q", "E01/2/"));
    assert_string_equal (s_walk (f, &s, &t), "E01/2/101,E01/2/901,E01/2/1001");
    pm_txn_abort (&t);
}

static void
test_parse_and_text_round_trip (void **state)
{
    fx_t *f = *state;
    pm_key_t k;
    pm_key (&k, "sutU", "E01/3/2-301", 7u, (int64_t) -42, (uint64_t) 1234567890123ULL);
    assert_false (k.bad);
    const char *unit;
    uint32_t n;
    int64_t t;
    uint64_t big;
    assert_int_equal (pm_key_parse (k.buf, k.len, "sutU", &unit, &n, &t, &big), PM_OK);
    assert_string_equal (unit, "E01/3/2-301");
    assert_int_equal (n, 7);
    assert_true (t == -42);
    assert_true (big == 1234567890123ULL);
    assert_string_equal (pm_key_text (f->a, k.buf, k.len, "sutU"), "E01/3/2-301/7/-42/1234567890123");
    /* a key of another shape is refused, not misread */
    assert_int_equal (pm_key_parse (k.buf, k.len, "su", &unit, &n), PM_EINVAL);
    assert_int_equal (pm_key_parse (k.buf, 3, "s", &unit), PM_EINVAL);
}

static void
test_bad_keys_fail_their_txn_only (void **state)
{
    fx_t *f = *state;
    char big[600];
    memset (big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pm_key_t k;
    assert_true (pm_key (&k, "s", big)->bad);
    assert_true (pm_key (&k, "s", NULL)->bad);
    assert_true (pm_key (&k, "?", 1)->bad);
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, f->s, NULL), PM_OK);
    assert_int_equal (pm_txn_put_key (&t, T, pm_key (&k, "s", big), "v", 1), PM_EINVAL);
    assert_int_equal (pm_txn_commit (&t), PM_EINVAL); /* the txn keeps its first error */
    assert_int_equal (pm_store_count (f->s, T), 0);
}

static void
s_fill (fx_t *f)
{
    pm_txn_t t;
    pm_key_t k;
    static const char *const units[] = { "E01/1/101", "E01/1/102", "E01/2/101", "E011/1/101", "E02/1/101" };
    assert_int_equal (pm_txn_begin (&t, f->s, NULL), PM_OK);
    for (size_t u = 0; u < 5; u++)
        for (uint32_t d = 1; d <= 3; d++) {
            char v[64];
            snprintf (v, sizeof v, "%s#%u", units[u], d);
            pm_txn_put_key (&t, T, pm_key (&k, "su", units[u], d), v, strlen (v));
        }
    assert_int_equal (pm_txn_commit (&t), PM_OK);
}

static char *
s_walk (fx_t *f, pm_scan_t *s, pm_txn_t *t)
{
    char *out = pm_arena_strdup (f->a, "");
    for (; s->ok; pm_scan_next (s))
        out = pm_arena_printf (f->a, "%s%s%.*s", out, *out ? "," : "", (int) s->val.mv_size, (char *) s->val.mv_data);
    return out;
}

static void
test_prefix_scans_see_exactly_their_entries (void **state)
{
    fx_t *f = *state;
    s_fill (f);
    pm_txn_t t;
    pm_scan_t s;
    pm_key_t k;
    assert_int_equal (pm_txn_begin_read (&t, f->s), PM_OK);
    /* "all defects of unit E01/1/101" */
    pm_scan_prefix (&s, &t, T, pm_key (&k, "s", "E01/1/101"));
    assert_string_equal (s_walk (f, &s, &t), "E01/1/101#1,E01/1/101#2,E01/1/101#3");
    /* every unit of estate E01 but not E011: a string prefix ending at '/' */
    pm_scan_prefix (&s, &t, T, pm_key (&k, "p", "E01/"));
    char *e01 = s_walk (f, &s, &t);
    assert_non_null (strstr (e01, "E01/2/101#3"));
    assert_null (strstr (e01, "E011"));
    assert_null (strstr (e01, "E02"));
    /* the last first */
    pm_scan_prefix_rev (&s, &t, T, pm_key (&k, "s", "E01/1/102"));
    assert_string_equal (s_walk (f, &s, &t), "E01/1/102#3,E01/1/102#2,E01/1/102#1");
    pm_scan_prefix_rev (&s, &t, T, NULL);
    assert_true (s.ok);
    assert_memory_equal (s.val.mv_data, "E02/1/101#3", 11);
    /* a range: defects 2..3 of one unit */
    pm_key_t from, to;
    pm_scan_range (&s, &t, T, pm_key (&from, "su", "E01/2/101", 2u), pm_key (&to, "su", "E01/2/101", 4u));
    assert_string_equal (s_walk (f, &s, &t), "E01/2/101#2,E01/2/101#3");
    /* resume after a key: the next page of a snapshot */
    pm_key (&from, "su", "E011/1/101", 3u);
    pm_scan_after (&s, &t, T, from.buf, from.len);
    assert_string_equal (s_walk (f, &s, &t), "E02/1/101#1,E02/1/101#2,E02/1/101#3");
    /* nothing matches: not ok at once */
    pm_scan_prefix (&s, &t, T, pm_key (&k, "s", "E09"));
    assert_false (s.ok);
    pm_txn_abort (&t);
}

static void
test_scan_deletes_and_more_scans_than_cursors (void **state)
{
    fx_t *f = *state;
    s_fill (f);
    pm_txn_t t;
    pm_scan_t s;
    pm_key_t k;
    assert_int_equal (pm_txn_begin (&t, f->s, NULL), PM_OK);
    size_t deleted = 0;
    for (pm_scan_prefix (&s, &t, T, pm_key (&k, "p", "E01/")); s.ok; pm_scan_next (&s)) {
        uint32_t n;
        const char *unit;
        assert_int_equal (pm_key_parse (s.key.mv_data, s.key.mv_size, "su", &unit, &n), PM_OK);
        if (n == 2) {
            assert_int_equal (pm_scan_del (&s), PM_OK);
            deleted++;
        }
    }
    assert_int_equal (deleted, 3);
    /* a scan that runs off its end gives its cursor back at once ... */
    int open = t.ncursors;
    for (pm_scan_prefix (&s, &t, T, pm_key (&k, "p", "E01/")); s.ok; pm_scan_next (&s))
        ;
    assert_int_equal (t.ncursors, open);
    /* ... and many left open (a loop left with break) are no limit: the
     * runtime closes them after each handler, the txn at its end */
    pm_scan_t left[40];
    for (int i = 0; i < 40; i++) {
        pm_scan_prefix (&left[i], &t, T, NULL);
        assert_true (left[i].ok);
    }
    assert_int_equal (t.ncursors, open + 40);
    pm_txn_close_cursors (&t, open);
    assert_int_equal (t.ncursors, open);
    assert_int_equal (pm_txn_commit (&t), PM_OK);
    assert_int_equal (pm_store_count (f->s, T), 15 - 3);
}

static void
test_typed_records (void **state)
{
    fx_t *f = *state;
    pm_txn_t t;
    pm_key_t k;
    assert_int_equal (pm_txn_begin (&t, f->s, NULL), PM_OK);
    t.arena = f->a;
    Pm__V1__QueueItem in = PM__V1__QUEUE_ITEM__INIT, *out;
    in.key = "E01/1/101";
    in.reason = "no-show";
    in.since_ms = 1764000000000;
    assert_int_equal (pm_txn_put_msg (&t, T, pm_key (&k, "s", "a"), &in.base), PM_OK);
    assert_int_equal (pm_txn_get_msg (&t, T, &k, &pm__v1__queue_item__descriptor, &out), PM_OK);
    assert_string_equal (out->reason, "no-show");
    assert_true (out->since_ms == 1764000000000);
    /* absent and undecodable are told apart, and neither fails the txn */
    assert_int_equal (pm_txn_get_msg (&t, T, pm_key (&k, "s", "b"), &pm__v1__queue_item__descriptor, &out),
                      PM_ENOTFOUND);
    assert_null (out);
    pm_txn_put_key (&t, T, pm_key (&k, "s", "junk"), "\xff\xff\xff", 3);
    assert_int_equal (pm_txn_get_msg (&t, T, &k, &pm__v1__queue_item__descriptor, &out), PM_EPROTO);
    assert_true (pm_txn_has (&t, T, &k));
    assert_int_equal (pm_txn_commit (&t), PM_OK);
}

int
main (void)
{
    pm_log_init ("test_key", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parts_sort_in_natural_order),
        cmocka_unit_test_setup_teardown (test_parse_and_text_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_natural_paths, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_natural_prefix_scan, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_keys_fail_their_txn_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_prefix_scans_see_exactly_their_entries, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_scan_deletes_and_more_scans_than_cursors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_typed_records, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
