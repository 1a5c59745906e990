/* test_csv - the CSV scanner on files as spreadsheets and people write them:
 * records with their physical lines, CRLF, BOM, broken rows that cost only
 * themselves, over-long records, empty files. */
#include "support.h"

#include "pm/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A temp file holding data[0..len), rewound. */
static FILE *
s_file (const char *data, size_t len)
{
    FILE *f = tmpfile ();
    assert_non_null (f);
    assert_int_equal (fwrite (data, 1, len, f), len);
    rewind (f);
    return f;
}

/* Asserts the next item is a record on lines first..last with the fields in
 * want (a NULL-terminated list). */
static void
s_expect_record (pm_csv_t *c, uint32_t first, uint32_t last, const char *const *want)
{
    pm_csv_record_t *r = pm_csv_next (c);
    assert_non_null (r);
    if (r->error != PM_CSV_OK)
        fail_msg ("line %u: expected a record, got an error: %s", r->first_line, r->why);
    assert_null (r->why);
    assert_int_equal (r->first_line, first);
    assert_int_equal (r->last_line, last);
    size_t n = 0;
    while (want[n])
        n++;
    assert_int_equal (r->nfields, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal (r->fields[i], want[i]);
        assert_int_equal (r->lens[i], strlen (want[i]));
    }
}

/* Asserts the next item is an error of kind error starting on line first,
 * whose text contains words. */
static void
s_expect_error (pm_csv_t *c, pm_csv_error_t error, uint32_t first, const char *words)
{
    pm_csv_record_t *r = pm_csv_next (c);
    assert_non_null (r);
    if (r->error != error)
        fail_msg ("line %u: expected error %d, got %d (%s)", r->first_line, error, r->error,
                  r->why ? r->why : r->fields[0]);
    assert_int_equal (r->first_line, first);
    assert_int_equal (r->nfields, 0);
    assert_non_null (r->why);
    if (!strstr (r->why, words))
        fail_msg ("'%s' does not say '%s'", r->why, words);
}

/* Asserts the scan is over without a read error. */
static void
s_expect_end (pm_csv_t *c)
{
    assert_null (pm_csv_next (c));
    assert_null (pm_csv_next (c)); /* and stays over */
    assert_int_equal (pm_csv_errno (c), 0);
}

static void
test_quoted_commas_and_newlines_keep_their_lines (void **state)
{
    static const char data[] = "unit,note,owner\n"                 /* 1 */
                               "101,\"a, b\",王一\n"               /* 2 */
                               "102,\"two\nlines, \"\"quoted\"\"\n" /* 3 */
                               "and three\",李四\n"                /* 4-5 */
                               "\n"                                /* 6: blank, skipped */
                               ",,\n"                              /* 7: empty fields, skipped */
                               "103,,\"\"\n"                       /* 8 */
                               "104,last,no newline";              /* 9 */
    FILE *f = s_file (data, sizeof data - 1);
    pm_csv_t *c = pm_csv_new (f, 0);
    s_expect_record (c, 1, 1, (const char *[]) { "unit", "note", "owner", NULL });
    s_expect_record (c, 2, 2, (const char *[]) { "101", "a, b", "王一", NULL });
    s_expect_record (c, 3, 5, (const char *[]) { "102", "two\nlines, \"quoted\"\nand three", "李四", NULL });
    s_expect_record (c, 8, 8, (const char *[]) { "103", "", "", NULL });
    s_expect_record (c, 9, 9, (const char *[]) { "104", "last", "no newline", NULL });
    s_expect_end (c);
    pm_csv_destroy (&c);
    pm_csv_destroy (&c); /* safe twice */
    fclose (f);
}

static void
test_crlf (void **state)
{
    static const char data[] = "a,b\r\n"          /* 1 */
                               "\"p\r\nq\",r\r\n" /* 2-3: the CRLF inside quotes is kept */
                               "s,t\r\n";         /* 4 */
    FILE *f = s_file (data, sizeof data - 1);
    pm_csv_t *c = pm_csv_new (f, 0);
    s_expect_record (c, 1, 1, (const char *[]) { "a", "b", NULL });
    s_expect_record (c, 2, 3, (const char *[]) { "p\r\nq", "r", NULL });
    s_expect_record (c, 4, 4, (const char *[]) { "s", "t", NULL });
    s_expect_end (c);
    pm_csv_destroy (&c);
    fclose (f);
}

/* Old Mac exports end lines with a lone CR: libcsv ends records there, and
 * the lines are counted the same way (found by fuzz_csv). */
static void
test_lone_cr_ends_a_line (void **state)
{
    static const char data[] = "a,b\r"          /* 1 */
                               "c,d\r\n"       /* 2 */
                               "e,f\n"          /* 3 */
                               "g,\"h\ri\"\r" /* 4-5 */
                               "j,k";           /* 6 */
    FILE *f = s_file (data, sizeof data - 1);
    pm_csv_t *c = pm_csv_new (f, 0);
    s_expect_record (c, 1, 1, (const char *[]) { "a", "b", NULL });
    s_expect_record (c, 2, 2, (const char *[]) { "c", "d", NULL });
    s_expect_record (c, 3, 3, (const char *[]) { "e", "f", NULL });
    s_expect_record (c, 4, 5, (const char *[]) { "g", "h\ri", NULL });
    s_expect_record (c, 6, 6, (const char *[]) { "j", "k", NULL });
    s_expect_end (c);
    pm_csv_destroy (&c);
    fclose (f);
}

/* Collects what the tap sees. */
typedef struct {
    char data[256];
    size_t len;
} s_seen_t;

static void
s_tap (void *arg, const void *data, size_t len)
{
    s_seen_t *s = arg;
    assert_true (s->len + len <= sizeof s->data);
    memcpy (s->data + s->len, data, len);
    s->len += len;
}

static void
test_bom_skipped_but_tapped (void **state)
{
    static const char data[] = "\xEF\xBB\xBF" "estate_id,name\r\nE01,\"x\ny\"\r\nE02,z\r\n";
    FILE *f = s_file (data, sizeof data - 1);
    pm_csv_t *c = pm_csv_new (f, 0);
    s_seen_t seen = { .len = 0 };
    pm_csv_set_tap (c, s_tap, &seen);
    s_expect_record (c, 1, 1, (const char *[]) { "estate_id", "name", NULL }); /* no BOM in the first name */
    s_expect_record (c, 2, 3, (const char *[]) { "E01", "x\ny", NULL });
    s_expect_record (c, 4, 4, (const char *[]) { "E02", "z", NULL });
    s_expect_end (c);
    /* the tap saw every byte once, BOM included */
    assert_int_equal (seen.len, sizeof data - 1);
    assert_memory_equal (seen.data, data, sizeof data - 1);
    pm_csv_destroy (&c);
    fclose (f);
}

static void
test_broken_rows_cost_only_themselves (void **state)
{
    static const char data[] = "a,b\n"          /* 1 */
                               "c,d\"e,f\n"     /* 2: quote inside an unquoted field */
                               "g,h\n"          /* 3 */
                               "k,\"l,m\n"      /* 4: opens a quote ... */
                               "n,o\n"          /* 5 */
                               "p,\"q\"x\n"     /* 6: ... closed here, then text after it */
                               "r,s\n"          /* 7 */
                               "t,\"u\n"        /* 8: a quote never closed */
                               "v,w\n";         /* 9 */
    FILE *f = s_file (data, sizeof data - 1);
    pm_csv_t *c = pm_csv_new (f, 0);
    s_expect_record (c, 1, 1, (const char *[]) { "a", "b", NULL });
    s_expect_error (c, PM_CSV_QUOTING, 2, "inside an unquoted field");
    s_expect_record (c, 3, 3, (const char *[]) { "g", "h", NULL });
    /* the record opened on line 4 is noticed broken on line 6; scanning
     * resumes at line 5, so lines 5 and 6 are judged on their own */
    pm_csv_record_t *r = pm_csv_next (c);
    assert_non_null (r);
    assert_int_equal (r->error, PM_CSV_QUOTING);
    assert_int_equal (r->first_line, 4);
    assert_int_equal (r->last_line, 6);
    assert_non_null (strstr (r->why, "runs to line 6"));
    s_expect_record (c, 5, 5, (const char *[]) { "n", "o", NULL });
    s_expect_error (c, PM_CSV_QUOTING, 6, "after a closing quote");
    s_expect_record (c, 7, 7, (const char *[]) { "r", "s", NULL });
    s_expect_error (c, PM_CSV_UNCLOSED, 8, "unterminated quote");
    s_expect_record (c, 9, 9, (const char *[]) { "v", "w", NULL });
    s_expect_end (c);
    pm_csv_destroy (&c);
    fclose (f);
}

static void
test_over_long_field (void **state)
{
    /* limit 64 bytes: a 100-byte field on one line; then a quote that opens
     * on line 4 and runs on past the limit on line 6 */
    char data[1024];
    char big[101];
    memset (big, 'x', 100);
    big[100] = '\0';
    snprintf (data, sizeof data,
              "a,b\n"      /* 1 */
              "c,%s\n"     /* 2: too long */
              "d,e\n"      /* 3 */
              "f,\"g\n"    /* 4: a quote opens ... */
              "h,i\n"      /* 5 */
              "%s\n"       /* 6: ... and the record passes 64 bytes here */
              "j,k\n",     /* 7 */
              big, big);
    FILE *f = s_file (data, strlen (data));
    pm_csv_t *c = pm_csv_new (f, 64);
    s_expect_record (c, 1, 1, (const char *[]) { "a", "b", NULL });
    s_expect_error (c, PM_CSV_TOO_LONG, 2, "line longer than 64 bytes");
    s_expect_record (c, 3, 3, (const char *[]) { "d", "e", NULL });
    s_expect_error (c, PM_CSV_TOO_LONG, 4, "record runs past 64 bytes (to line 6)");
    s_expect_record (c, 5, 5, (const char *[]) { "h", "i", NULL }); /* resumed at line 5 */
    s_expect_error (c, PM_CSV_TOO_LONG, 6, "line longer than 64 bytes");
    s_expect_record (c, 7, 7, (const char *[]) { "j", "k", NULL });
    s_expect_end (c);
    pm_csv_destroy (&c);
    fclose (f);
}

/* A field of 200 KiB on one line against the default limit: refused, and
 * the row after it is read (the line is longer than one read block). */
static void
test_over_long_line_default_limit (void **state)
{
    size_t n = 200 * 1024;
    char *data = malloc (n + 32);
    memcpy (data, "a,", 2);
    memset (data + 2, 'y', n);
    memcpy (data + 2 + n, "\nb,c\n", 5);
    FILE *f = s_file (data, n + 7);
    free (data);
    pm_csv_t *c = pm_csv_new (f, 0);
    s_expect_error (c, PM_CSV_TOO_LONG, 1, "line longer than 64 KiB");
    s_expect_record (c, 2, 2, (const char *[]) { "b", "c", NULL });
    s_expect_end (c);
    pm_csv_destroy (&c);
    fclose (f);
}

static void
test_empty_file (void **state)
{
    FILE *f = s_file ("", 0);
    pm_csv_t *c = pm_csv_new (f, 0);
    s_expect_end (c);
    pm_csv_destroy (&c);
    fclose (f);
    f = s_file ("\xEF\xBB\xBF\r\n\n", 5); /* a BOM and blank lines: nothing either */
    c = pm_csv_new (f, 0);
    s_expect_end (c);
    pm_csv_destroy (&c);
    fclose (f);
}

/* A caller may take fields out of a record; the rest are freed for it. */
static void
test_fields_taken_and_nul_bytes (void **state)
{
    static const char data[] = "a,\"b\0c\",d\n";
    FILE *f = s_file (data, sizeof data - 1);
    pm_csv_t *c = pm_csv_new (f, 0);
    pm_csv_record_t *r = pm_csv_next (c);
    assert_non_null (r);
    assert_int_equal (r->nfields, 3);
    assert_int_equal (r->lens[1], 3);
    assert_memory_equal (r->fields[1], "b\0c", 4);
    char *taken = r->fields[2];
    r->fields[2] = NULL;
    s_expect_end (c);
    assert_string_equal (taken, "d");
    free (taken);
    pm_csv_destroy (&c);
    fclose (f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_quoted_commas_and_newlines_keep_their_lines),
        cmocka_unit_test (test_crlf),
        cmocka_unit_test (test_lone_cr_ends_a_line),
        cmocka_unit_test (test_bom_skipped_but_tapped),
        cmocka_unit_test (test_broken_rows_cost_only_themselves),
        cmocka_unit_test (test_over_long_field),
        cmocka_unit_test (test_over_long_line_default_limit),
        cmocka_unit_test (test_empty_file),
        cmocka_unit_test (test_fields_taken_and_nul_bytes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
