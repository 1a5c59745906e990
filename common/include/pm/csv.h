/* pm/csv.h - a CSV scanner for the files people make in spreadsheets.
 *
 * Records come out one at a time with their fields, the fields' lengths and
 * the physical lines they span, so an importer can say "line 4, column 8"
 * about a record whose quoted note runs over two lines. The file is read in
 * blocks; only the current record is in memory. A UTF-8 BOM at the start is
 * skipped; CRLF and LF both end a record; blank lines and rows of nothing
 * but empty fields (",,,") are skipped.
 *
 * A row that is not valid CSV (a quote inside an unquoted field, text after
 * a closing quote, a quote never closed, a record longer than max_record)
 * comes out as an error record that names the line it starts on and says
 * what is wrong; scanning then goes on at the line after that one, so a
 * stray quote costs its own row, not every row up to the next quote.
 *
 * Whether a record has the right number of fields, or UTF-8 text, is for the
 * importer to judge: this module knows nothing of columns. */
#ifndef PM_CSV_H
#define PM_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pm_csv pm_csv_t;

/* What is wrong with a row that is not a record. */
typedef enum {
    PM_CSV_OK = 0,       /* a record */
    PM_CSV_QUOTING,      /* a '"' inside an unquoted field, or text after a closing quote */
    PM_CSV_UNCLOSED,     /* a quoted field still open at the end of the file */
    PM_CSV_TOO_LONG,     /* the record grew past max_record bytes */
} pm_csv_error_t;

/* One record, or one row that is not one (error set, no fields). */
typedef struct {
    uint32_t first_line;   /* the physical line it starts on (the first line is 1) */
    uint32_t last_line;    /* the line it ends on; for an error, the line where it was noticed */
    pm_csv_error_t error;  /* PM_CSV_OK for a record */
    const char *why;       /* for an error: what is wrong and how to fix it, in words; else NULL */
    char **fields;         /* NUL-terminated; the caller may take one (it then frees it; set the slot NULL) */
    size_t *lens;          /* their lengths in bytes (a field may hold a NUL byte) */
    size_t nfields;
} pm_csv_record_t;

/* The default max_record: a record longer than this is an unclosed quote. */
#define PM_CSV_RECORD_MAX (64 * 1024)

/* A scanner of f from its beginning (f is rewound). f stays the caller's, who
 * closes it after pm_csv_destroy; it must be seekable (a regular file), as a
 * broken record that spans lines is re-read from its second line. max_record
 * is the most bytes a record may hold (0: PM_CSV_RECORD_MAX). Never NULL. */
pm_csv_t *pm_csv_new (FILE *f, size_t max_record);
void pm_csv_destroy (pm_csv_t **p);

/* Has fn (arg, data, len) see every byte of the file once, in file order, as
 * it is first read, BOM included (e.g. to hash the file while scanning it).
 * Call before the first pm_csv_next. */
void pm_csv_set_tap (pm_csv_t *c, void (*fn) (void *arg, const void *data, size_t len), void *arg);

/* The next record or broken row; borrowed, valid until the next call or
 * pm_csv_destroy (but fields the caller took are the caller's). NULL at the
 * end of the file, or after a read error (pm_csv_errno says which). */
pm_csv_record_t *pm_csv_next (pm_csv_t *c);
/* The errno of the read error that ended the scan, else 0. */
int pm_csv_errno (const pm_csv_t *c);

#endif
