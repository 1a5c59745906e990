/* import.c - `pmctl import FILE.csv`: a developer's sales list into intake.
 *
 * Two streaming passes. The first hashes the whole file (SHA-256: the batch
 * id, the events' correlation id, is "import:" + its first 16 hex digits;
 * chunk N of lines A..B goes out with the request id "<batch id>:<run>:N:A-B",
 * kept across retries within this run, so intake applies each chunk once
 * however often it is resent) and counts the rows, for the progress line. The second parses again and
 * sends the rows in chunks of --chunk rows, --inflight chunks at once on one
 * DEALER; only the chunks in flight and the one being filled are in memory.
 *
 * Lines. libcsv is fed one physical line at a time, so the line a record
 * starts on is known: it is the line before which the parser stood between
 * records. Rows that are wrong as CSV (fewer fields than the header, a field
 * that is not UTF-8, bad quoting) are rejected here, with line and column,
 * and never sent; every other row goes to intake as text, which judges the
 * values themselves (missing fields, areas, phones, ID numbers).
 *
 * Bad quoting. On a strict-mode parse error (a quote inside an unquoted
 * field, text after a closing quote, a quote never closed) the record is
 * rejected and parsing starts again on the line after the one the record
 * started on: a stray quote costs its own row, not every row up to the next
 * quote. A record may not grow past 64 KiB: only an unclosed quote does that. */
#include "pmctl.h"

#include "pm/clock.h"
#include "pm/err.h"
#include "pm/json.h"

#include <csv.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_OPTS (CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)
#define S_BLOCK 65536               /* read size */
#define S_RECORD_MAX (64 * 1024)    /* bytes: longer records are an unclosed quote */
#define S_SILENCE_MS 30000          /* no reply at all for this long: intake is gone */
#define S_CHUNK_DEFAULT 500
#define S_CHUNK_MAX 10000           /* intake's limit per request */
#define S_INFLIGHT_DEFAULT 4
#define S_INFLIGHT_MAX 64

/* The columns intake reads, in ImportRow order; matched to the header by name. */
static const struct {
    const char *name;
    size_t offset;  /* of the char * in Pm__V1__ImportRow */
    bool required;  /* in the header (intake decides whether a value may be empty) */
} s_cols[] = {
    { "estate_id", offsetof (Pm__V1__ImportRow, estate_id), true },
    { "estate_name", offsetof (Pm__V1__ImportRow, estate_name), true },
    { "building", offsetof (Pm__V1__ImportRow, building), true },
    { "unit", offsetof (Pm__V1__ImportRow, unit), true },
    { "floor", offsetof (Pm__V1__ImportRow, floor), true },
    { "area_m2", offsetof (Pm__V1__ImportRow, area_m2), true },
    { "owner_name", offsetof (Pm__V1__ImportRow, owner_name), true },
    { "phone", offsetof (Pm__V1__ImportRow, phone), true },
    { "email", offsetof (Pm__V1__ImportRow, email), false },
    { "id_number", offsetof (Pm__V1__ImportRow, id_number), true },
};
#define S_NCOLS (sizeof s_cols / sizeof s_cols[0])

/* --- the scanner: records with their line numbers ------------------------------- */

/* What became of a record. */
enum { S_REC_OK, S_REC_QUOTING, S_REC_UNCLOSED, S_REC_TOO_LONG };

/* One record as the scanner hands it over. */
typedef struct {
    uint32_t line;       /* the line it starts on */
    uint32_t end_line;   /* the line it ends on (or where its error was noticed) */
    int error;           /* S_REC_* */
    const char *why;     /* libcsv's text for the error */
    char **fields;       /* NUL-terminated; a consumer may take one (set the slot to NULL) */
    size_t *lens;        /* their lengths (a field may hold a NUL byte) */
    size_t nfields;
} s_record_t;

/* Called for every non-blank record; returns 0, or an exit code to stop. */
typedef int (*s_record_fn) (void *arg, s_record_t *rec);

typedef struct {
    FILE *f;
    struct csv_parser csv;
    unsigned char *buf;
    size_t len, pos;        /* bytes in buf, next to feed */
    off_t buf_off;          /* file offset of buf[0] */
    bool eof;               /* the last read hit the end of the file */
    bool done;              /* everything was handed over */
    int io_errno;           /* a read error, else 0 */
    uint64_t line;          /* the line of the next byte */
    bool line_start;        /* the next byte starts a line */
    bool skip_line;         /* dropping the rest of a line after an error */
    uint64_t rec_line;      /* the line the current record started on */
    off_t rec_off;          /* where that line starts */
    off_t next_off;         /* where the line after it starts; -1 until known */
    char **fields;          /* the current record's fields */
    size_t *lens;
    size_t nfields, cap;
    bool any;               /* one of them is not empty */
    crypto_hash_sha256_state *sha; /* hashes every byte once (first pass only) */
    off_t hashed;           /* bytes hashed so far */
    s_record_fn fn;
    void *arg;
    int stop;               /* an exit code from fn, or PMCTL_FAIL on out of memory */
} s_scan_t;

/* Drops the current record's fields. */
static void
s_fields_reset (s_scan_t *sc)
{
    for (size_t i = 0; i < sc->nfields; i++)
        free (sc->fields[i]);
    sc->nfields = 0;
    sc->any = false;
}

/* libcsv's field callback: keeps a copy of the field. */
static void
s_on_field (void *s, size_t len, void *data)
{
    s_scan_t *sc = data;
    if (sc->stop)
        return;
    if (sc->nfields == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 16;
        char **f = realloc (sc->fields, cap * sizeof *f);
        if (f)
            sc->fields = f;
        size_t *l = f ? realloc (sc->lens, cap * sizeof *l) : NULL;
        if (!f || !l) {
            sc->stop = PMCTL_FAIL;
            fprintf (stderr, "pmctl: out of memory reading the file\n");
            return;
        }
        sc->lens = l;
        sc->cap = cap;
    }
    char *copy = malloc (len + 1);
    if (!copy) {
        sc->stop = PMCTL_FAIL;
        fprintf (stderr, "pmctl: out of memory reading the file\n");
        return;
    }
    if (len)
        memcpy (copy, s, len);
    copy[len] = '\0';
    sc->fields[sc->nfields] = copy;
    sc->lens[sc->nfields++] = len;
    sc->any |= len > 0;
}

/* libcsv's record callback: hands a non-blank record to fn. */
static void
s_on_record (int c, void *data)
{
    (void) c;
    s_scan_t *sc = data;
    if (sc->any && !sc->stop) {
        s_record_t rec = { (uint32_t) sc->rec_line, (uint32_t) sc->line, S_REC_OK, NULL,
                           sc->fields, sc->lens, sc->nfields };
        sc->stop = sc->fn (sc->arg, &rec);
    }
    s_fields_reset (sc);
}

/* Continues reading at file offset off (the buffer is refilled from there). */
static void
s_seek (s_scan_t *sc, off_t off)
{
    if (fseeko (sc->f, off, SEEK_SET) != 0)
        sc->io_errno = errno;
    sc->buf_off = off;
    sc->len = sc->pos = 0;
    sc->eof = false;
}

/* Makes bytes available at buf + pos. False at the end of the file or on a
 * read error (io_errno). Hashes bytes it reads for the first time. */
static bool
s_fill (s_scan_t *sc)
{
    if (sc->pos < sc->len)
        return true;
    if (sc->eof || sc->io_errno)
        return false;
    sc->buf_off += (off_t) sc->len;
    sc->len = fread (sc->buf, 1, S_BLOCK, sc->f);
    sc->pos = 0;
    if (sc->len == 0) {
        if (ferror (sc->f))
            sc->io_errno = errno ? errno : EIO;
        sc->eof = true;
        return false;
    }
    off_t end = sc->buf_off + (off_t) sc->len;
    if (sc->sha && sc->buf_off <= sc->hashed && end > sc->hashed) {
        crypto_hash_sha256_update (sc->sha, sc->buf + (sc->hashed - sc->buf_off), (size_t) (end - sc->hashed));
        sc->hashed = end;
    }
    if (sc->buf_off == 0 && sc->len >= 3 && memcmp (sc->buf, "\xEF\xBB\xBF", 3) == 0)
        sc->pos = 3; /* the UTF-8 BOM Excel writes */
    return sc->pos < sc->len || s_fill (sc);
}

/* A record that is not valid CSV: hands it over as an error, resets the
 * parser and goes on with the line after the one the record started on.
 * line_done: the current line's newline has been consumed. */
static void
s_resync (s_scan_t *sc, int error, bool line_done)
{
    char why[128];
    snprintf (why, sizeof why, "%s", csv_strerror (csv_error (&sc->csv)));
    if (!sc->stop) {
        s_record_t rec = { (uint32_t) sc->rec_line, (uint32_t) sc->line, error, why, NULL, NULL, 0 };
        sc->stop = sc->fn (sc->arg, &rec);
    }
    s_fields_reset (sc);
    csv_free (&sc->csv);
    csv_init (&sc->csv, S_OPTS);
    if (sc->line > sc->rec_line && sc->next_off >= 0) {
        s_seek (sc, sc->next_off);
        sc->line = sc->rec_line + 1;
        sc->line_start = true;
    }
    else if (line_done) {
        sc->line++;
        sc->line_start = true;
    }
    else
        sc->skip_line = true;
}

/* Feeds the parser one more line (records completed on it go to fn).
 * False when the file is done, on a read error, or when fn stopped it. */
static bool
s_step (s_scan_t *sc)
{
    while (!sc->done && !sc->stop) {
        if (!s_fill (sc)) {
            if (sc->io_errno) {
                sc->done = true;
                break;
            }
            if (csv_fini (&sc->csv, s_on_field, s_on_record, sc) != 0) {
                s_resync (sc, S_REC_UNCLOSED, true);
                if (!sc->eof)
                    return !sc->stop; /* went back to the line after the quote */
            }
            sc->done = true;
            break;
        }
        unsigned char *p = sc->buf + sc->pos;
        size_t avail = sc->len - sc->pos;
        unsigned char *nl = memchr (p, '\n', avail);
        size_t n = nl ? (size_t) (nl - p) + 1 : avail;
        sc->pos += n;
        if (sc->skip_line) {
            if (nl) {
                sc->skip_line = false;
                sc->line++;
                sc->line_start = true;
                return true;
            }
            continue;
        }
        if (sc->line_start) {
            if (sc->csv.pstate == 0) { /* between records: the next one starts on this line */
                sc->rec_line = sc->line;
                sc->rec_off = sc->buf_off + (off_t) (sc->pos - n);
                sc->next_off = -1;
            }
            sc->line_start = false;
        }
        size_t used = csv_parse (&sc->csv, p, n, s_on_field, s_on_record, sc);
        if (sc->stop)
            break;
        if (used < n) {
            if (csv_error (&sc->csv) != CSV_EPARSE) {
                fprintf (stderr, "pmctl: reading the file: %s\n", csv_strerror (csv_error (&sc->csv)));
                sc->stop = PMCTL_FAIL;
                break;
            }
            s_resync (sc, S_REC_QUOTING, nl != NULL);
            return !sc->stop;
        }
        if (sc->csv.pstate != 0 && sc->buf_off + (off_t) sc->pos - sc->rec_off > S_RECORD_MAX) {
            s_resync (sc, S_REC_TOO_LONG, nl != NULL);
            return !sc->stop;
        }
        if (nl) {
            if (sc->line == sc->rec_line)
                sc->next_off = sc->buf_off + (off_t) sc->pos;
            sc->line++;
            sc->line_start = true;
            return true;
        }
    }
    return false;
}

/* Starts a scan of f from its beginning. False on out of memory. */
static bool
s_scan_init (s_scan_t *sc, FILE *f, crypto_hash_sha256_state *sha, s_record_fn fn, void *arg)
{
    memset (sc, 0, sizeof *sc);
    sc->f = f;
    sc->sha = sha;
    sc->fn = fn;
    sc->arg = arg;
    sc->line = 1;
    sc->line_start = true;
    sc->next_off = -1;
    sc->buf = malloc (S_BLOCK);
    if (!sc->buf || csv_init (&sc->csv, S_OPTS) != 0) {
        free (sc->buf);
        return false;
    }
    rewind (f);
    return true;
}

static void
s_scan_free (s_scan_t *sc)
{
    s_fields_reset (sc);
    free (sc->fields);
    free (sc->lens);
    free (sc->buf);
    csv_free (&sc->csv);
}

/* --- checks on the text ------------------------------------------------------------ */

/* Whether s[0..n) is well-formed UTF-8 with no NUL (no overlongs, no surrogates). */
static bool
s_utf8 (const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
            || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += len;
    }
    return true;
}

/* s without leading and trailing blanks, in place. */
static char *
s_trim (char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen (s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* --- the import ------------------------------------------------------------------------ */

/* A row that was not imported, from here or from intake. */
typedef struct {
    uint32_t line;
    uint32_t column;   /* 1-based; 0 for the whole row */
    char *field;
    char *value;       /* masked by intake for phones and ID numbers; "" from here */
    char *reason;
    bool whole_row;    /* shown as "line N: reason" */
} s_reject_t;

/* A chunk sent and not yet answered. */
typedef struct {
    Pm__V1__Request *req;  /* NULL: a free slot */
    size_t nrows;
    uint32_t first_line, last_line;
    int64_t sent_ms;
} s_slot_t;

typedef struct {
    pmctl_t *ctl;
    const char *path;
    const char *base;        /* file name sent to intake */
    bool tty;                /* stderr is a terminal */
    /* the header */
    bool have_header;
    char **header;           /* the names as written (trimmed) */
    size_t nheader;
    int map[S_NCOLS];        /* header index of each of s_cols, or -1 */
    /* counts */
    uint64_t total;          /* data rows (first pass) */
    uint64_t done;           /* rows answered or rejected here */
    uint64_t created, updated, unchanged, rejected; /* as intake answered */
    uint64_t local;          /* rows rejected here, never sent */
    int decile;              /* progress lines printed (not a TTY) */
    bool progress_shown;
    /* rows parsed, waiting for a chunk */
    Pm__V1__ImportRow **pending;
    size_t npending, cap;
    /* every rejection, for the report */
    s_reject_t *rejects;
    size_t nrejects, rcap;
} s_import_t;

/* Records a rejection (strings copied). False on out of memory. */
static bool
s_reject (s_import_t *im, uint32_t line, uint32_t column, const char *field, const char *value,
          const char *reason, bool whole_row)
{
    if (im->nrejects == im->rcap) {
        size_t cap = im->rcap ? im->rcap * 2 : 16;
        s_reject_t *r = realloc (im->rejects, cap * sizeof *r);
        if (!r)
            return false;
        im->rejects = r;
        im->rcap = cap;
    }
    s_reject_t *r = &im->rejects[im->nrejects];
    r->line = line;
    r->column = column;
    r->field = strdup (field ? field : "");
    r->value = strdup (value ? value : "");
    r->reason = strdup (reason ? reason : "");
    r->whole_row = whole_row;
    if (!r->field || !r->value || !r->reason) {
        free (r->field);
        free (r->value);
        free (r->reason);
        return false;
    }
    im->nrejects++;
    return true;
}

/* Reads the header record: names, and where each of s_cols is. PMCTL_OK or
 * PMCTL_USAGE after printing what is wrong with it. */
static int
s_header (s_import_t *im, s_record_t *rec)
{
    if (rec->error) {
        fprintf (stderr, "pmctl: %s: line %u: the header is not valid CSV (%s): check its quotes\n", im->path,
                 rec->line, rec->why);
        return PMCTL_USAGE;
    }
    im->header = calloc (rec->nfields, sizeof *im->header);
    if (!im->header)
        return PMCTL_FAIL;
    im->nheader = rec->nfields;
    for (size_t i = 0; i < rec->nfields; i++) {
        if (!s_utf8 ((const unsigned char *) rec->fields[i], rec->lens[i])) {
            fprintf (stderr, "pmctl: %s: line %u, column %zu of the header: not UTF-8 - was the file saved as "
                             "GBK? save it as 'CSV UTF-8'\n", im->path, rec->line, i + 1);
            return PMCTL_USAGE;
        }
        im->header[i] = strdup (s_trim (rec->fields[i]));
        if (!im->header[i])
            return PMCTL_FAIL;
    }
    while (im->nheader > 0 && im->header[im->nheader - 1][0] == '\0') /* "a,b,c,," from a spreadsheet */
        free (im->header[--im->nheader]);
    for (size_t k = 0; k < S_NCOLS; k++) {
        im->map[k] = -1;
        for (size_t i = 0; i < im->nheader; i++) {
            if (strcasecmp (im->header[i], s_cols[k].name) != 0)
                continue;
            if (im->map[k] >= 0) {
                fprintf (stderr, "pmctl: %s: the header has column '%s' twice (columns %d and %zu)\n", im->path,
                         s_cols[k].name, im->map[k] + 1, i + 1);
                return PMCTL_USAGE;
            }
            im->map[k] = (int) i;
        }
    }
    for (size_t k = 0; k < S_NCOLS; k++)
        if (s_cols[k].required && im->map[k] < 0) {
            fprintf (stderr, "pmctl: %s: header has no column '%s' (columns:", im->path, s_cols[k].name);
            for (size_t i = 0; i < im->nheader; i++)
                fprintf (stderr, "%s %s", i ? "," : "", im->header[i]);
            fprintf (stderr, ")\n");
            return PMCTL_USAGE;
        }
    im->have_header = true;
    return PMCTL_OK;
}

/* First pass: the header, then a count of the data rows. */
static int
s_count (void *arg, s_record_t *rec)
{
    s_import_t *im = arg;
    if (!im->have_header)
        return s_header (im, rec);
    im->total++;
    return PMCTL_OK;
}

/* Why a record is not a row, or NULL when it is one; column and field set
 * for a reason that concerns one column. */
static const char *
s_csv_problem (const s_import_t *im, const s_record_t *rec, char *buf, size_t size, uint32_t *column,
               const char **field, bool *whole_row)
{
    *column = 0;
    *field = "";
    *whole_row = true;
    switch (rec->error) {
    case S_REC_QUOTING:
        if (rec->end_line > rec->line)
            snprintf (buf, size, "bad quoting: the quoted field opened here runs to line %u and is followed by "
                                 "text there (libcsv: %s); quote whole fields and double each '\"' inside one",
                      rec->end_line, rec->why);
        else
            snprintf (buf, size, "bad quoting: a '\"' inside an unquoted field, or text after a closing quote "
                                 "(libcsv: %s); quote whole fields and double each '\"' inside one", rec->why);
        return buf;
    case S_REC_UNCLOSED:
        snprintf (buf, size, "unterminated quote: a quoted field opened here is never closed (libcsv: %s)",
                  rec->why);
        return buf;
    case S_REC_TOO_LONG:
        if (rec->end_line > rec->line)
            snprintf (buf, size, "record runs past %d KiB (to line %u): a quote that is never closed?",
                      S_RECORD_MAX / 1024, rec->end_line);
        else
            snprintf (buf, size, "line longer than %d KiB: not a CSV row", S_RECORD_MAX / 1024);
        return buf;
    default:
        break;
    }
    if (rec->nfields < im->nheader) {
        *column = (uint32_t) rec->nfields + 1;
        *field = im->header[rec->nfields];
        snprintf (buf, size, "%zu fields, the header has %zu: column %zu '%s' missing", rec->nfields, im->nheader,
                  rec->nfields + 1, im->header[rec->nfields]);
        return buf;
    }
    for (size_t i = im->nheader; i < rec->nfields; i++)
        if (rec->lens[i]) {
            *column = (uint32_t) i + 1;
            snprintf (buf, size, "%zu fields, the header has %zu: an unquoted comma in a field? put quotes "
                                 "around fields that contain commas", rec->nfields, im->nheader);
            return buf;
        }
    for (size_t k = 0; k < S_NCOLS; k++) {
        int i = im->map[k];
        if (i >= 0 && !s_utf8 ((const unsigned char *) rec->fields[i], rec->lens[i])) {
            *column = (uint32_t) i + 1;
            *field = s_cols[k].name;
            *whole_row = false;
            return "not UTF-8 - was the file saved as GBK? save it as 'CSV UTF-8'";
        }
    }
    return NULL;
}

/* Second pass: each data record becomes a pending row or a rejection. */
static int
s_collect (void *arg, s_record_t *rec)
{
    s_import_t *im = arg;
    if (!im->have_header) { /* read in the first pass already */
        im->have_header = true;
        return PMCTL_OK;
    }
    char buf[512];
    uint32_t column;
    const char *field;
    bool whole_row;
    const char *why = s_csv_problem (im, rec, buf, sizeof buf, &column, &field, &whole_row);
    if (why) {
        if (!s_reject (im, rec->line, column, field, "", why, whole_row)) {
            fprintf (stderr, "pmctl: out of memory\n");
            return PMCTL_FAIL;
        }
        im->local++;
        im->done++;
        return PMCTL_OK;
    }
    if (im->npending == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 64;
        Pm__V1__ImportRow **p = realloc (im->pending, cap * sizeof *p);
        if (!p)
            goto oom;
        im->pending = p;
        im->cap = cap;
    }
    Pm__V1__ImportRow *row = malloc (sizeof *row);
    if (!row)
        goto oom;
    pm__v1__import_row__init (row);
    row->line = rec->line;
    for (size_t k = 0; k < S_NCOLS; k++) {
        int i = im->map[k];
        if (i < 0)
            continue;
        *(char **) ((char *) row + s_cols[k].offset) = rec->fields[i]; /* taken from the scanner */
        rec->fields[i] = NULL;
    }
    im->pending[im->npending++] = row;
    return PMCTL_OK;
oom:
    fprintf (stderr, "pmctl: out of memory\n");
    return PMCTL_FAIL;
}

/* The next chunk's request (the caller's: pm__v1__request__free_unpacked), or
 * NULL with *code PMCTL_OK when the file is done, else the exit code. */
static char s_run[27]; /* this run's id, part of every chunk's request id */

static Pm__V1__Request *
s_next_chunk (s_import_t *im, s_scan_t *sc, size_t chunk, const char *batch_id, uint32_t chunk_no, int *code)
{
    *code = PMCTL_OK;
    while (im->npending < chunk && s_step (sc))
        ;
    if (sc->stop) {
        *code = sc->stop;
        return NULL;
    }
    if (sc->io_errno) {
        fprintf (stderr, "pmctl: reading %s: %s\n", im->path, strerror (sc->io_errno));
        *code = PMCTL_USAGE;
        return NULL;
    }
    if (im->npending == 0)
        return NULL;
    size_t n = im->npending < chunk ? im->npending : chunk;
    Pm__V1__Request *req = malloc (sizeof *req);
    Pm__V1__IntakeImportRequest *q = malloc (sizeof *q);
    if (!req || !q) {
        free (req);
        free (q);
        goto oom;
    }
    pm__v1__request__init (req);
    pm__v1__intake_import_request__init (q);
    req->body_case = PM__V1__REQUEST__BODY_INTAKE_IMPORT; /* from here on req owns q */
    req->intake_import = q;
    /* "<batch id>:<run>:<chunk no>:<first line>-<last line>". Within this run
     * a resent chunk keeps its id, so intake answers it from the stored reply
     * and applies it once however often it is retried (intake restarted, a
     * reply lost). A new run gets new ids: intake compares every row with
     * what it holds, so a re-run after a crash is safe and reports the rows
     * applied before as unchanged, which is what they are. */
    char id[160];
    snprintf (id, sizeof id, "%.63s:%s:%u:%u-%u", batch_id, s_run, chunk_no, im->pending[0]->line,
              im->pending[n - 1]->line);
    req->id = strdup (id);
    req->method = strdup ("intake.import");
    req->actor = strdup (im->ctl->actor);
    q->batch_id = strdup (batch_id);
    q->file_name = strdup (im->base);
    q->chunk_no = chunk_no;
    q->columns = calloc (im->nheader ? im->nheader : 1, sizeof *q->columns);
    q->rows = malloc (n * sizeof *q->rows);
    if (!req->id || !req->method || !req->actor || !q->batch_id || !q->file_name || !q->columns || !q->rows) {
        pm__v1__request__free_unpacked (req, NULL);
        goto oom;
    }
    for (size_t i = 0; i < im->nheader; i++) {
        q->columns[i] = strdup (im->header[i]);
        if (!q->columns[i]) {
            pm__v1__request__free_unpacked (req, NULL);
            goto oom;
        }
        q->n_columns++;
    }
    memcpy (q->rows, im->pending, n * sizeof *q->rows);
    q->n_rows = n;
    im->npending -= n;
    memmove (im->pending, im->pending + n, im->npending * sizeof *im->pending);
    return req;
oom:
    fprintf (stderr, "pmctl: out of memory\n");
    *code = PMCTL_FAIL;
    return NULL;
}

/* Progress on stderr: one \r-updated line on a terminal, else every 10%. */
static void
s_progress (s_import_t *im)
{
    uint64_t total = im->total > im->done ? im->total : im->done;
    if (total == 0)
        return;
    int pct = (int) (im->done * 100 / total);
    if (im->tty) {
        fprintf (stderr, "\rimported %" PRIu64 "/%" PRIu64 " rows (%d%%)", im->done, total, pct);
        im->progress_shown = true;
    }
    else if (pct / 10 > im->decile) {
        im->decile = pct / 10;
        fprintf (stderr, "imported %" PRIu64 "/%" PRIu64 " rows (%d%%)\n", im->done, total, pct);
    }
}

/* Takes intake's answer to a chunk: counts and rejections. PMCTL_OK, or
 * PMCTL_FAIL after printing why. */
static int
s_answer (s_import_t *im, const s_slot_t *slot, const Pm__V1__Reply *r)
{
    if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_INTAKE_IMPORT) {
        if (im->progress_shown)
            fputc ('\n', stderr);
        fprintf (stderr, "pmctl: intake refused %s (lines %u-%u): %s: %s\n", slot->req->id, slot->first_line,
                 slot->last_line, pm_status_name (r->status), r->message);
        return PMCTL_FAIL;
    }
    const Pm__V1__IntakeImportReply *a = r->intake_import;
    im->created += a->created;
    im->updated += a->updated;
    im->unchanged += a->unchanged;
    im->rejected += a->rejected;
    for (size_t i = 0; i < a->n_rejections; i++) {
        const Pm__V1__RowRejection *x = a->rejections[i];
        uint32_t column = x->column;
        for (size_t k = 0; column == 0 && k < S_NCOLS; k++)
            if (strcmp (x->field, s_cols[k].name) == 0 && im->map[k] >= 0)
                column = (uint32_t) im->map[k] + 1; /* the header spells it differently */
        if (!s_reject (im, x->line, column, x->field, x->value, x->reason, false)) {
            fprintf (stderr, "pmctl: out of memory\n");
            return PMCTL_FAIL;
        }
    }
    im->done += slot->nrows;
    s_progress (im);
    return PMCTL_OK;
}

/* Sends the file's rows, inflight chunks at a time, and takes the answers.
 * PMCTL_OK when every chunk was answered OK, else the exit code. */
static int
s_send_all (s_import_t *im, s_scan_t *sc, const char *batch_id, size_t chunk, size_t inflight)
{
    const pmctl_t *ctl = im->ctl;
    const char *endpoint = pmctl_endpoint (ctl, "intake", "command");
    if (!endpoint) {
        pmctl_unknown_daemon (ctl, "intake");
        return PMCTL_USAGE;
    }
    pm_client_t *c = pm_client_new (NULL, endpoint);
    s_slot_t *slots = calloc (inflight, sizeof *slots);
    if (!c || !slots) {
        fprintf (stderr, "pmctl: cannot connect to intake at %s\n", endpoint);
        pm_client_destroy (&c);
        free (slots);
        return PMCTL_FAIL;
    }
    int code = PMCTL_OK;
    uint32_t chunk_no = 0;
    size_t busy = 0;
    bool more = true;
    int64_t heard = pm_mono_ms (); /* the last reply (or the start) */
    for (;;) {
        for (size_t i = 0; i < inflight && more && code == PMCTL_OK; i++) {
            if (slots[i].req)
                continue;
            Pm__V1__Request *req = s_next_chunk (im, sc, chunk, batch_id, chunk_no + 1, &code);
            if (!req) {
                more = false;
                break;
            }
            chunk_no++;
            const Pm__V1__IntakeImportRequest *q = req->intake_import;
            slots[i] = (s_slot_t) { req, q->n_rows, q->rows[0]->line, q->rows[q->n_rows - 1]->line, pm_mono_ms () };
            if (busy++ == 0)
                heard = pm_mono_ms ();
            if (pm_client_send (c, req) != PM_OK) {
                fprintf (stderr, "pmctl: cannot send to intake at %s\n", endpoint);
                code = PMCTL_FAIL;
            }
        }
        if (code != PMCTL_OK || busy == 0)
            break;
        int64_t now = pm_mono_ms (), wake = heard + S_SILENCE_MS;
        for (size_t i = 0; i < inflight; i++)
            if (slots[i].req && slots[i].sent_ms + ctl->timeout_ms < wake)
                wake = slots[i].sent_ms + ctl->timeout_ms;
        Pm__V1__Reply *r = NULL;
        int rc = pm_client_recv (c, wake > now ? (int) (wake - now) : 0, &r);
        if (rc == PM_OK) {
            heard = pm_mono_ms ();
            for (size_t i = 0; i < inflight; i++) {
                if (!slots[i].req || strcmp (slots[i].req->id, r->id) != 0)
                    continue; /* else: a second answer to a resent chunk */
                code = s_answer (im, &slots[i], r);
                pm__v1__request__free_unpacked (slots[i].req, NULL);
                slots[i].req = NULL;
                busy--;
                break;
            }
            pm__v1__reply__free_unpacked (r, NULL);
        }
        else if (rc == PM_ETIMEDOUT) {
            now = pm_mono_ms ();
            if (now - heard >= S_SILENCE_MS) {
                if (im->progress_shown)
                    fputc ('\n', stderr);
                fprintf (stderr, "pmctl: intake did not answer at %s for %d s: is it running? (./pm status)\n",
                         endpoint, S_SILENCE_MS / 1000);
                code = PMCTL_FAIL;
            }
            for (size_t i = 0; i < inflight && code == PMCTL_OK; i++)
                if (slots[i].req && now - slots[i].sent_ms >= ctl->timeout_ms) {
                    pm_client_send (c, slots[i].req); /* same id: applied at most once */
                    slots[i].sent_ms = now;
                }
        }
        else if (rc != PM_EPROTO) { /* a malformed reply is dropped; the chunk is resent */
            fprintf (stderr, "pmctl: receiving from intake: %s\n", pm_strerror (rc));
            code = PMCTL_FAIL;
        }
        if (code != PMCTL_OK)
            break;
    }
    for (size_t i = 0; i < inflight; i++)
        if (slots[i].req)
            pm__v1__request__free_unpacked (slots[i].req, NULL);
    free (slots);
    pm_client_destroy (&c);
    return code;
}

/* Prints a value on one line: newlines, tabs and other control bytes escaped. */
static void
s_put_value (const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '\n')
            fputs ("\\n", stdout);
        else if (c == '\r')
            fputs ("\\r", stdout);
        else if (c == '\t')
            fputs ("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf ("\\x%02x", c);
        else
            fputc (c, stdout);
    }
}

/* Rejections by line, then column. */
static int
s_reject_cmp (const void *a, const void *b)
{
    const s_reject_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->column < y->column ? -1 : x->column > y->column;
}

/* The summary: text, or one JSON object with --json. */
static int
s_report (s_import_t *im, const char *batch_id)
{
    if (im->nrejects > 1)
        qsort (im->rejects, im->nrejects, sizeof *im->rejects, s_reject_cmp);
    uint64_t rejected = im->rejected + im->local;
    if (!im->ctl->json) {
        printf ("%s: %" PRIu64 " created, %" PRIu64 " updated, %" PRIu64 " unchanged, %" PRIu64 " rejected\n",
                im->path, im->created, im->updated, im->unchanged, rejected);
        for (size_t i = 0; i < im->nrejects; i++) {
            const s_reject_t *r = &im->rejects[i];
            printf ("  line %u", r->line);
            if (!r->whole_row) {
                if (r->column)
                    printf (", column %u", r->column);
                if (*r->field)
                    printf (" (%s)", r->field);
                if (*r->value) {
                    fputs (": '", stdout);
                    s_put_value (r->value);
                    fputc ('\'', stdout);
                }
            }
            printf (": %s\n", r->reason);
        }
        return rejected ? PMCTL_REJECTED : PMCTL_OK;
    }
    cJSON *o = cJSON_CreateObject ();
    cJSON *a = cJSON_CreateArray ();
    if (!o || !a) {
        cJSON_Delete (o);
        cJSON_Delete (a);
        return PMCTL_FAIL;
    }
    cJSON_AddStringToObject (o, "file", im->path);
    cJSON_AddStringToObject (o, "batch_id", batch_id);
    cJSON_AddNumberToObject (o, "rows", (double) im->total);
    cJSON_AddNumberToObject (o, "created", (double) im->created);
    cJSON_AddNumberToObject (o, "updated", (double) im->updated);
    cJSON_AddNumberToObject (o, "unchanged", (double) im->unchanged);
    cJSON_AddNumberToObject (o, "rejected", (double) rejected);
    for (size_t i = 0; i < im->nrejects; i++) {
        const s_reject_t *r = &im->rejects[i];
        cJSON *x = cJSON_CreateObject ();
        cJSON_AddNumberToObject (x, "line", r->line);
        cJSON_AddNumberToObject (x, "column", r->column);
        cJSON_AddStringToObject (x, "field", r->field);
        cJSON_AddStringToObject (x, "value", r->value);
        cJSON_AddStringToObject (x, "reason", r->reason);
        cJSON_AddItemToArray (a, x);
    }
    cJSON_AddItemToObject (o, "rejections", a);
    int code = pmctl_print_json (o, false);
    return code != PMCTL_OK ? code : rejected ? PMCTL_REJECTED : PMCTL_OK;
}

static void
s_import_free (s_import_t *im)
{
    for (size_t i = 0; i < im->nheader; i++)
        free (im->header ? im->header[i] : NULL);
    free (im->header);
    for (size_t i = 0; i < im->npending; i++)
        pm__v1__import_row__free_unpacked (im->pending[i], NULL);
    free (im->pending);
    for (size_t i = 0; i < im->nrejects; i++) {
        free (im->rejects[i].field);
        free (im->rejects[i].value);
        free (im->rejects[i].reason);
    }
    free (im->rejects);
}

/* First pass: SHA-256 of the file into batch_id, header checks, row count. */
static int
s_first_pass (s_import_t *im, FILE *f, char batch_id[64])
{
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init (&sha);
    s_scan_t sc;
    if (!s_scan_init (&sc, f, &sha, s_count, im)) {
        fprintf (stderr, "pmctl: out of memory\n");
        return PMCTL_FAIL;
    }
    while (s_step (&sc))
        ;
    int code = sc.stop;
    if (!code && sc.io_errno) {
        fprintf (stderr, "pmctl: reading %s: %s\n", im->path, strerror (sc.io_errno));
        code = PMCTL_USAGE;
    }
    s_scan_free (&sc);
    if (code)
        return code;
    if (!im->have_header) {
        fprintf (stderr, "pmctl: %s: no header line; expected the column names first:", im->path);
        for (size_t k = 0; k < S_NCOLS; k++)
            fprintf (stderr, "%s%s", k ? "," : " ", s_cols[k].name);
        fputc ('\n', stderr);
        return PMCTL_USAGE;
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256_final (&sha, digest);
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    snprintf (batch_id, 64, "import:%.16s", hex);
    return PMCTL_OK;
}

int
pmctl_import (pmctl_t *ctl, int argc, char **argv)
{
    pm_request_id (s_run);
    const char *path = NULL;
    int64_t chunk = S_CHUNK_DEFAULT, inflight = S_INFLIGHT_DEFAULT;
    for (int i = 1; i < argc; i++) {
        int rc = pmctl_late_option (ctl, argc, argv, &i);
        if (rc < 0)
            return PMCTL_USAGE;
        if (rc > 0)
            continue;
        if (strcmp (argv[i], "--chunk") == 0 || strcmp (argv[i], "--inflight") == 0) {
            bool is_chunk = argv[i][2] == 'c';
            if (i + 1 >= argc) {
                fprintf (stderr, "pmctl: %s needs a number\n", argv[i]);
                return PMCTL_USAGE;
            }
            if (!pmctl_parse_int (argv[i], argv[i + 1], 1, is_chunk ? S_CHUNK_MAX : S_INFLIGHT_MAX,
                                  is_chunk ? &chunk : &inflight))
                return PMCTL_USAGE;
            i++;
        }
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf (stderr, "pmctl: import: unknown option '%s' (usage: import FILE.csv [--chunk ROWS] "
                             "[--inflight N])\n", argv[i]);
            return PMCTL_USAGE;
        }
        else if (path) {
            fprintf (stderr, "pmctl: import takes one file (got '%s' and '%s')\n", path, argv[i]);
            return PMCTL_USAGE;
        }
        else
            path = argv[i];
    }
    if (!path) {
        fprintf (stderr, "usage: pmctl import FILE.csv [--chunk ROWS] [--inflight N]\n");
        return PMCTL_USAGE;
    }
    if (!pmctl_endpoint (ctl, "intake", "command")) {
        pmctl_unknown_daemon (ctl, "intake");
        return PMCTL_USAGE;
    }
    if (sodium_init () < 0) {
        fprintf (stderr, "pmctl: libsodium failed to initialise\n");
        return PMCTL_FAIL;
    }
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "pmctl: %s: %s\n", path, strerror (errno));
        return PMCTL_USAGE;
    }
    struct stat st;
    if (fstat (fileno (f), &st) != 0 || !S_ISREG (st.st_mode)) {
        fprintf (stderr, "pmctl: %s: not a regular file (the import reads it twice)\n", path);
        fclose (f);
        return PMCTL_USAGE;
    }
    const char *slash = strrchr (path, '/');
    s_import_t im = { .ctl = ctl, .path = path, .base = slash ? slash + 1 : path,
                      .tty = isatty (STDERR_FILENO) == 1 };
    char batch_id[64];
    int code = s_first_pass (&im, f, batch_id);
    if (code == PMCTL_OK) {
        im.have_header = false; /* the second pass meets it again */
        s_scan_t sc;
        if (!s_scan_init (&sc, f, NULL, s_collect, &im)) {
            fprintf (stderr, "pmctl: out of memory\n");
            code = PMCTL_FAIL;
        }
        else {
            code = s_send_all (&im, &sc, batch_id, (size_t) chunk, (size_t) inflight);
            s_scan_free (&sc);
            if (code == PMCTL_OK)
                s_progress (&im); /* rows rejected here after the last answer */
        }
        if (im.progress_shown)
            fputc ('\n', stderr);
        if (code == PMCTL_OK)
            code = s_report (&im, batch_id);
    }
    s_import_free (&im);
    fclose (f);
    return code;
}
