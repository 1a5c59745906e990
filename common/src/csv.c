/* csv.c - the CSV scanner (see pm/csv.h), on libcsv in strict mode.
 *
 * Lines. libcsv is fed one physical line at a time (or one block of a line
 * longer than a block), so the line a record starts on is known: it is the
 * line before which the parser stood between records. Where that line and
 * the one after it start in the file is remembered too.
 *
 * Resynchronising. On a strict-mode parse error (a quote inside an unquoted
 * field, text after a closing quote, a quote never closed) the record is
 * handed over as an error, the parser is reset and parsing starts again on
 * the line after the one the record started on; for a record that spanned
 * lines that means seeking back. A record may not grow past max_record bytes:
 * only an unclosed quote makes one that long, and without the limit it would
 * swallow the rest of the file into memory.
 *
 * libcsv reports records through callbacks, and one physical line can end
 * more than one record (a lone CR ends one too), so completed records wait
 * in a small queue until pm_csv_next hands them over. */
#include "pm/csv.h"
#include "pm/mem.h"

#include <csv.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#define S_OPTS (CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)
#define S_BLOCK 65536 /* read size */

/* A record with the storage for its error text. */
typedef struct {
    pm_csv_record_t rec;
    char why[320];
} s_rec_t;

struct pm_csv {
    FILE *f;                 /* borrowed */
    size_t max_record;       /* bytes */
    struct csv_parser csv;
    unsigned char *buf;      /* S_BLOCK bytes */
    size_t len, pos;         /* bytes in buf, next to feed */
    off_t buf_off;           /* file offset of buf[0] */
    bool eof;                /* the last read hit the end of the file */
    bool done;               /* nothing more will be read */
    int io_errno;            /* a read or seek error, else 0 */
    uint64_t line;           /* the line of the next byte */
    bool line_start;         /* the next byte starts a line */
    bool skip_line;          /* dropping the rest of a line after an error */
    bool cr_pending;         /* the last block ended on a CR that may pair with an LF */
    uint64_t rec_line;       /* the line the current record started on */
    off_t rec_off;           /* where that line starts */
    off_t next_off;          /* where the line after it starts; -1 until known */
    char **fields;           /* the current record's fields so far */
    size_t *lens;
    size_t nfields, cap;
    size_t rec_bytes;        /* their bytes, separators counted */
    bool any;                /* one of them is not empty */
    s_rec_t *queue;          /* completed records not yet handed over */
    size_t qhead, qlen, qcap;
    s_rec_t out;             /* the record handed over last */
    void (*tap) (void *arg, const void *data, size_t len);
    void *tap_arg;
    off_t tapped;            /* bytes the tap has seen */
};

/* Frees fields[0..n) (slots the caller took are NULL). */
static void
s_fields_free (char **fields, size_t n)
{
    for (size_t i = 0; fields && i < n; i++)
        free (fields[i]);
}

/* Drops the record being parsed. */
static void
s_current_reset (pm_csv_t *c)
{
    s_fields_free (c->fields, c->nfields);
    c->nfields = 0;
    c->rec_bytes = 0;
    c->any = false;
}

/* Frees a record's fields and arrays. */
static void
s_rec_clear (s_rec_t *r)
{
    s_fields_free (r->rec.fields, r->rec.nfields);
    free (r->rec.fields);
    free (r->rec.lens);
    memset (&r->rec, 0, sizeof r->rec);
}

/* A new empty slot at the end of the queue. */
static s_rec_t *
s_push (pm_csv_t *c)
{
    if (c->qhead + c->qlen == c->qcap) {
        if (c->qhead > 0) {
            memmove (c->queue, c->queue + c->qhead, c->qlen * sizeof *c->queue);
            c->qhead = 0;
        }
        else {
            c->qcap = c->qcap ? c->qcap * 2 : 4;
            c->queue = pm_xrealloc (c->queue, c->qcap * sizeof *c->queue);
        }
    }
    s_rec_t *r = &c->queue[c->qhead + c->qlen++];
    memset (r, 0, sizeof *r);
    return r;
}

/* max_record in words: "64 KiB" or "100 bytes". */
static const char *
s_size_text (size_t n, char *buf, size_t size)
{
    if (n >= 1024 && n % 1024 == 0)
        snprintf (buf, size, "%zu KiB", n / 1024);
    else
        snprintf (buf, size, "%zu bytes", n);
    return buf;
}

/* Fills r as an error record for lines first..last: what is wrong, in words. */
static void
s_describe (pm_csv_t *c, s_rec_t *r, pm_csv_error_t error, uint32_t first, uint32_t last)
{
    const char *lib = csv_strerror (csv_error (&c->csv));
    char max[32];
    s_size_text (c->max_record, max, sizeof max);
    switch (error) {
    case PM_CSV_QUOTING:
        if (last > first)
            snprintf (r->why, sizeof r->why, "bad quoting: the quoted field opened here runs to line %u and is "
                      "followed by text there (libcsv: %s); quote whole fields and double each '\"' inside one",
                      last, lib);
        else
            snprintf (r->why, sizeof r->why, "bad quoting: a '\"' inside an unquoted field, or text after a "
                      "closing quote (libcsv: %s); quote whole fields and double each '\"' inside one", lib);
        break;
    case PM_CSV_UNCLOSED:
        snprintf (r->why, sizeof r->why, "unterminated quote: a quoted field opened here is never closed "
                  "(libcsv: %s)", lib);
        break;
    default:
        if (last > first)
            snprintf (r->why, sizeof r->why, "record runs past %s (to line %u): a quote that is never closed?",
                      max, last);
        else
            snprintf (r->why, sizeof r->why, "line longer than %s: not a CSV row", max);
        break;
    }
    r->rec.first_line = first;
    r->rec.last_line = last;
    r->rec.error = error;
}

/* libcsv's field callback: keeps a copy of the field. */
static void
s_on_field (void *s, size_t len, void *data)
{
    pm_csv_t *c = data;
    if (c->nfields == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->fields = pm_xrealloc (c->fields, c->cap * sizeof *c->fields);
        c->lens = pm_xrealloc (c->lens, c->cap * sizeof *c->lens);
    }
    char *copy = pm_xmalloc (len + 1);
    if (len)
        memcpy (copy, s, len);
    copy[len] = '\0';
    c->fields[c->nfields] = copy;
    c->lens[c->nfields++] = len;
    c->rec_bytes += len + 1;
    c->any |= len > 0;
}

/* libcsv's record callback: queues a non-blank record (or, when it came out
 * longer than max_record, an error in its place). */
static void
s_on_record (int term, void *data)
{
    pm_csv_t *c = data;
    if (!c->any) {
        s_current_reset (c);
        return;
    }
    s_rec_t *r = s_push (c);
    if (c->rec_bytes > c->max_record) {
        s_describe (c, r, PM_CSV_TOO_LONG, (uint32_t) c->rec_line, (uint32_t) c->line);
        s_current_reset (c);
        return;
    }
    r->rec.first_line = (uint32_t) c->rec_line;
    r->rec.last_line = (uint32_t) c->line;
    r->rec.fields = c->fields; /* the record takes the arrays */
    r->rec.lens = c->lens;
    r->rec.nfields = c->nfields;
    c->fields = NULL;
    c->lens = NULL;
    c->nfields = c->cap = 0;
    c->rec_bytes = 0;
    c->any = false;
}

/* Continues reading at file offset off (the buffer is refilled from there). */
static void
s_seek (pm_csv_t *c, off_t off)
{
    if (fseeko (c->f, off, SEEK_SET) != 0)
        c->io_errno = errno ? errno : EIO;
    c->buf_off = off;
    c->len = c->pos = 0;
    c->eof = false;
}

/* Makes bytes available at buf + pos. False at the end of the file or on a
 * read error (io_errno). The tap sees bytes read for the first time. */
static bool
s_fill (pm_csv_t *c)
{
    if (c->pos < c->len)
        return true;
    if (c->eof || c->io_errno)
        return false;
    c->buf_off += (off_t) c->len;
    c->len = fread (c->buf, 1, S_BLOCK, c->f);
    c->pos = 0;
    if (c->len == 0) {
        if (ferror (c->f))
            c->io_errno = errno ? errno : EIO;
        c->eof = true;
        return false;
    }
    off_t end = c->buf_off + (off_t) c->len;
    if (c->tap && c->buf_off <= c->tapped && end > c->tapped) {
        c->tap (c->tap_arg, c->buf + (c->tapped - c->buf_off), (size_t) (end - c->tapped));
        c->tapped = end;
    }
    if (c->buf_off == 0 && c->len >= 3 && memcmp (c->buf, "\xEF\xBB\xBF", 3) == 0)
        c->pos = 3; /* the UTF-8 BOM Excel writes */
    return c->pos < c->len || s_fill (c);
}

/* A record that is not valid CSV: queues it as an error, resets the parser
 * and goes on with the line after the one the record started on.
 * line_done: the current line's newline has been consumed. */
static void
s_resync (pm_csv_t *c, pm_csv_error_t error, bool line_done)
{
    s_describe (c, s_push (c), error, (uint32_t) c->rec_line, (uint32_t) c->line);
    s_current_reset (c);
    csv_free (&c->csv);
    csv_init (&c->csv, S_OPTS);
    if (c->line > c->rec_line && c->next_off >= 0) {
        s_seek (c, c->next_off);
        c->line = c->rec_line + 1;
        c->line_start = true;
    }
    else if (line_done) {
        c->line++;
        c->line_start = true;
    }
    else
        c->skip_line = true;
}

/* Feeds the parser one more line (records completed on it are queued).
 * False when nothing more will be read: the end of the file or a read error. */
static bool
s_step (pm_csv_t *c)
{
    while (!c->done) {
        if (!s_fill (c)) {
            if (c->io_errno) {
                c->done = true;
                break;
            }
            if (csv_fini (&c->csv, s_on_field, s_on_record, c) != 0) {
                s_resync (c, PM_CSV_UNCLOSED, true);
                if (!c->eof)
                    return true; /* went back to the line after the quote */
            }
            c->done = true;
            break;
        }
        unsigned char *p = c->buf + c->pos;
        size_t avail = c->len - c->pos;
        if (c->cr_pending) { /* the last block ended on CR: an LF now belongs to that line's end */
            c->cr_pending = false;
            if (*p == '\n') {
                c->pos++;
                if (!c->skip_line && csv_parse (&c->csv, p, 1, s_on_field, s_on_record, c) < 1)
                    s_resync (c, PM_CSV_QUOTING, true);
                continue;
            }
        }
        /* A line ends at LF, CRLF, or a lone CR (old Mac exports): libcsv ends
         * records at all three, so lines are counted the same way. */
        unsigned char *nl = NULL;
        for (size_t i = 0; i < avail && !nl; i++)
            if (p[i] == '\n')
                nl = p + i;
            else if (p[i] == '\r') {
                if (i + 1 < avail)
                    nl = p + i + (p[i + 1] == '\n');
                else {
                    nl = p + i;
                    c->cr_pending = true; /* an LF may open the next block */
                }
            }
        size_t n = nl ? (size_t) (nl - p) + 1 : avail;
        c->pos += n;
        if (c->skip_line) {
            if (nl) {
                c->skip_line = false;
                c->line++;
                c->line_start = true;
                return true;
            }
            continue;
        }
        if (c->line_start) {
            if (c->csv.pstate == 0) { /* between records: the next one starts on this line */
                c->rec_line = c->line;
                c->rec_off = c->buf_off + (off_t) (c->pos - n);
                c->next_off = -1;
            }
            c->line_start = false;
        }
        size_t used = csv_parse (&c->csv, p, n, s_on_field, s_on_record, c);
        if (used < n) {
            if (csv_error (&c->csv) != CSV_EPARSE)
                pm_oom ("libcsv", c->csv.entry_size); /* CSV_ENOMEM: its buffer could not grow */
            s_resync (c, PM_CSV_QUOTING, nl != NULL);
            return true;
        }
        if (c->csv.pstate != 0 && c->buf_off + (off_t) c->pos - c->rec_off > (off_t) c->max_record) {
            s_resync (c, PM_CSV_TOO_LONG, nl != NULL);
            return true;
        }
        if (nl) {
            if (c->line == c->rec_line)
                c->next_off = c->buf_off + (off_t) c->pos;
            c->line++;
            c->line_start = true;
            return true;
        }
    }
    return false;
}

pm_csv_t *
pm_csv_new (FILE *f, size_t max_record)
{
    pm_csv_t *c = pm_xcalloc (1, sizeof *c);
    c->f = f;
    c->max_record = max_record ? max_record : PM_CSV_RECORD_MAX;
    c->line = 1;
    c->line_start = true;
    c->next_off = -1;
    c->buf = pm_xmalloc (S_BLOCK);
    csv_init (&c->csv, S_OPTS);
    rewind (f);
    return c;
}

void
pm_csv_destroy (pm_csv_t **p)
{
    if (!p || !*p)
        return;
    pm_csv_t *c = *p;
    s_current_reset (c);
    free (c->fields);
    free (c->lens);
    for (size_t i = 0; i < c->qlen; i++)
        s_rec_clear (&c->queue[c->qhead + i]);
    free (c->queue);
    s_rec_clear (&c->out);
    free (c->buf);
    csv_free (&c->csv);
    free (c);
    *p = NULL;
}

void
pm_csv_set_tap (pm_csv_t *c, void (*fn) (void *arg, const void *data, size_t len), void *arg)
{
    c->tap = fn;
    c->tap_arg = arg;
}

pm_csv_record_t *
pm_csv_next (pm_csv_t *c)
{
    s_rec_clear (&c->out);
    while (c->qlen == 0 && s_step (c))
        ;
    if (c->qlen == 0)
        return NULL;
    c->out = c->queue[c->qhead++];
    if (--c->qlen == 0)
        c->qhead = 0;
    c->out.rec.why = c->out.rec.error != PM_CSV_OK ? c->out.why : NULL;
    return &c->out.rec;
}

int
pm_csv_errno (const pm_csv_t *c)
{
    return c->io_errno;
}
