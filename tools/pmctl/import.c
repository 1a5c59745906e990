/* import.c - `pmctl import FILE.csv`: a developer's sales list into intake.
 *
 * Two streaming passes over the file with the CSV scanner (pm/csv.h). The
 * first hashes the whole file (SHA-256: the batch id, the events'
 * correlation id, is "import:" + its first 16 hex digits; chunk N of lines
 * A..B goes out with the request id "<batch id>:<run>:N:A-B", kept across
 * retries within this run, so intake applies each chunk once however often
 * it is resent), checks the header and counts the rows, for the progress
 * line. The second parses again and sends the rows in chunks of --chunk
 * rows, --inflight chunks at once on one DEALER (pm_inflight_t); only the
 * chunks being filled are in memory.
 *
 * Rows that are wrong as CSV (broken quoting, a record that never ends,
 * fewer fields than the header, a field that is not UTF-8) are rejected
 * here, with line and column, and never sent; every other row goes to intake
 * as text, which judges the values themselves (missing fields, areas,
 * phones, ID numbers).
 *
 * The columns are the string fields of ImportRow, found through its
 * descriptor: a new column is one field in proto/pm/v1/intake.proto and one
 * validation rule in intake, nothing here.
 *
 * Encoding. Spreadsheets in China save CSV as GBK unless told otherwise, so
 * a pass over the raw bytes comes first: a file that is valid UTF-8 (or
 * mostly: more well-formed multi-byte characters than broken sequences, so
 * one stray byte costs its row, not the file) is read as it is; otherwise a
 * file that is valid GB18030 (GBK's superset) is converted with iconv into
 * a temporary file and read from there, said once on stderr; UTF-16 is
 * refused once, naming the fix. GB18030 never uses a byte below 0x40 inside
 * a character, so quotes, commas and line ends mean the same in both.
 *
 * Dry run (--dry-run). Every chunk goes to intake marked dry_run: intake
 * judges each row against what it holds, in a transaction it throws away,
 * and answers what it would do. Later rows depend on earlier ones (a
 * co-owner row on its unit's first row, an estate's name), so the chunks go
 * one at a time and carry what the earlier chunks would have written: the
 * first pass notes the last line of each unit, and a chunk asks intake to
 * hand back the would-be state of every unit a later line touches again
 * (dry_carry), which goes with the next chunk (dry_units), as do the estates
 * the run would create. */
#include "pmctl.h"

#include "pm/clock.h"
#include "pm/csv.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_SILENCE_MS 30000          /* no reply at all for this long: intake is gone */
#define S_CHUNK_DEFAULT 500
#define S_CHUNK_MAX 10000           /* intake's limit per request */
#define S_INFLIGHT_DEFAULT 4
#define S_INFLIGHT_MAX 64
/* The pace when neither --chunk nor --inflight is given: from 4 x 500 rows
 * in flight up to 16 x 2,000 while intake answers a chunk within
 * S_PACE_FAST_MS, halved when an answer takes over S_PACE_SLOW_MS. Larger
 * batches cost intake fewer commits and fewer pages per row (DESIGN.md
 * section 4); the ceiling keeps its memory and its answer times bounded. */
#define S_PACE_INFLIGHT_MAX 16
#define S_PACE_CHUNK_MAX 2000
#define S_PACE_FAST_MS 400
#define S_PACE_SLOW_MS 1500

/* Columns a file may leave out of its header. Every other column (every
 * other string field of ImportRow) must be there; whether a value may be
 * empty is for intake to say. */
static const char *const s_optional[] = { "email", "delivery_date", "parking_spaces" };

/* A column intake reads: an ImportRow string field. */
typedef struct {
    const char *name;  /* the field's name; the header may spell it in any case */
    size_t offset;     /* of the char * in Pm__V1__ImportRow */
    bool required;     /* must be in the header (not in s_optional) */
} s_col_t;

/* A row that was not imported, from here or from intake. */
typedef struct {
    uint32_t line;
    uint32_t column;   /* 1-based; 0 for the whole row */
    char *field;
    char *value;       /* masked by intake for phones and ID numbers; "" from here */
    char *reason;
    bool whole_row;    /* shown as "line N: reason" */
} s_reject_t;

/* A chunk sent and not yet answered (the user pointer of its request in flight). */
typedef struct {
    bool busy;
    char id[160];      /* its request id, for messages */
    size_t nrows;
    uint32_t first_line, last_line;
    int64_t sent_ms;   /* for the pace */
} s_slot_t;

/* How much is in flight: fixed by --chunk/--inflight, or paced by intake's answers. */
typedef struct {
    size_t chunk, inflight;
    bool adaptive;
} s_pace_t;

/* After an answer that took ms: widen while intake keeps up, narrow when it does not. */
static void
s_pace (s_pace_t *p, int64_t ms)
{
    if (!p->adaptive)
        return;
    if (ms > S_PACE_SLOW_MS) {
        p->inflight = p->inflight / 2 > 2 ? p->inflight / 2 : 2;
        return;
    }
    if (ms >= S_PACE_FAST_MS)
        return;
    if (p->inflight < S_PACE_INFLIGHT_MAX / 2)
        p->inflight++;
    else if (p->chunk < S_PACE_CHUNK_MAX)
        p->chunk = p->chunk * 3 / 2 < S_PACE_CHUNK_MAX ? p->chunk * 3 / 2 : S_PACE_CHUNK_MAX;
    else if (p->inflight < S_PACE_INFLIGHT_MAX)
        p->inflight++;
}

typedef struct {
    pmctl_t *ctl;
    const char *path;
    const char *base;        /* file name sent to intake */
    bool tty;                /* stderr is a terminal */
    /* the columns and the header */
    s_col_t *cols;           /* from the ImportRow descriptor */
    size_t ncols;
    bool have_header;
    char **header;           /* the names as written (trimmed) */
    size_t nheader;
    int *map;                /* header index of each of cols, or -1 */
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
    const char *encoding;    /* "UTF-8" or "GB18030" (converted) */
    /* a dry run */
    bool dry_run;
    uint64_t *unit_hash;     /* open addressing: hash of each unit id ... */
    uint32_t *unit_last;     /* ... and the last line it is on */
    size_t unit_cap, unit_used;
    Pm__V1__Reply *dry_reply;        /* the last dry answer (owned) ... */
    const Pm__V1__IntakeImportReply *dry; /* ... its body: what the next chunk carries */
    const char *file_name;   /* the full path sent to intake (rejections are kept by it) */
} s_import_t;

/* --- a dry run's memory of where each unit appears last ------------------------ */

/* The unit id of a row as intake makes it: ESTATE/BUILDING/UNIT, each trimmed. */
static char *
s_unit_id (const char *estate, const char *building, const char *unit)
{
    const char *p[3] = { estate ? estate : "", building ? building : "", unit ? unit : "" }, *s[3];
    size_t n[3];
    for (int i = 0; i < 3; i++)
        pm_trim_span (p[i], &s[i], &n[i]);
    return pm_xasprintf ("%.*s/%.*s/%.*s", (int) n[0], s[0], (int) n[1], s[1], (int) n[2], s[2]);
}

static uint64_t
s_hash64 (const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ULL;
    return h ? h : 1;
}

/* The slot of h (empty: its hash is 0). Two units with one hash share a
 * slot and the later last line: a unit is then carried longer than needed,
 * never shorter. */
static size_t
s_unit_slot (const s_import_t *im, uint64_t h)
{
    size_t i = (size_t) h & (im->unit_cap - 1);
    while (im->unit_hash[i] && im->unit_hash[i] != h)
        i = (i + 1) & (im->unit_cap - 1);
    return i;
}

static void
s_unit_seen (s_import_t *im, const char *unit_id, uint32_t line)
{
    if (im->unit_used * 2 >= im->unit_cap) { /* grow at half full */
        size_t old_cap = im->unit_cap;
        uint64_t *old_hash = im->unit_hash;
        uint32_t *old_last = im->unit_last;
        im->unit_cap = old_cap ? old_cap * 2 : 1024;
        im->unit_hash = pm_xcalloc (im->unit_cap, sizeof *im->unit_hash);
        im->unit_last = pm_xcalloc (im->unit_cap, sizeof *im->unit_last);
        for (size_t k = 0; k < old_cap; k++)
            if (old_hash[k]) {
                size_t i = s_unit_slot (im, old_hash[k]);
                im->unit_hash[i] = old_hash[k];
                im->unit_last[i] = old_last[k];
            }
        free (old_hash);
        free (old_last);
    }
    uint64_t h = s_hash64 (unit_id);
    size_t i = s_unit_slot (im, h);
    if (!im->unit_hash[i]) {
        im->unit_hash[i] = h;
        im->unit_used++;
    }
    if (line > im->unit_last[i])
        im->unit_last[i] = line;
}

static uint32_t
s_unit_last (const s_import_t *im, const char *unit_id)
{
    if (!im->unit_cap)
        return 0;
    size_t i = s_unit_slot (im, s_hash64 (unit_id));
    return im->unit_hash[i] ? im->unit_last[i] : 0;
}

/* The columns: ImportRow's string fields in declaration order (`line`, a
 * number, is where the row was, not a column). */
static void
s_columns (s_import_t *im)
{
    const ProtobufCMessageDescriptor *d = &pm__v1__import_row__descriptor;
    im->cols = pm_xcalloc (d->n_fields, sizeof *im->cols);
    im->map = pm_xcalloc (d->n_fields, sizeof *im->map);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        s_col_t *c = &im->cols[im->ncols++];
        c->name = f->name;
        c->offset = f->offset;
        c->required = true;
        for (size_t k = 0; k < sizeof s_optional / sizeof s_optional[0]; k++)
            if (strcmp (f->name, s_optional[k]) == 0)
                c->required = false;
    }
}

/* Records a rejection (strings copied). */
static void
s_reject (s_import_t *im, uint32_t line, uint32_t column, const char *field, const char *value,
          const char *reason, bool whole_row)
{
    if (im->nrejects == im->rcap) {
        im->rcap = im->rcap ? im->rcap * 2 : 16;
        im->rejects = pm_xrealloc (im->rejects, im->rcap * sizeof *im->rejects);
    }
    im->rejects[im->nrejects++] = (s_reject_t) { line, column, pm_xstrdup (field ? field : ""),
                                                 pm_xstrdup (value ? value : ""),
                                                 pm_xstrdup (reason ? reason : ""), whole_row };
}

/* Reads the header record: names, and where each column is. PMCTL_OK or
 * PMCTL_USAGE after printing what is wrong with it. */
static int
s_header (s_import_t *im, pm_csv_record_t *rec)
{
    if (rec->error == PM_CSV_TOO_LONG) {
        fprintf (stderr, "pmctl: %s: line %u is longer than 64 KiB, so it is not a header: the first line must "
                         "name the columns (estate_id, estate_name, building, unit, ...)\n", im->path,
                 rec->first_line);
        return PMCTL_USAGE;
    }
    if (rec->error != PM_CSV_OK) {
        fprintf (stderr, "pmctl: %s: line %u: the header is not valid CSV: %s\n", im->path, rec->first_line,
                 rec->why);
        return PMCTL_USAGE;
    }
    im->header = pm_xcalloc (rec->nfields, sizeof *im->header);
    for (size_t i = 0; i < rec->nfields; i++) {
        if (memchr (rec->fields[i], '\0', rec->lens[i])) {
            fprintf (stderr, "pmctl: %s: line %u, column %zu of the header holds a NUL byte: is this a text "
                             "file? save it as 'CSV UTF-8'\n", im->path, rec->first_line, i + 1);
            return PMCTL_USAGE;
        }
        if (!pm_utf8_valid (rec->fields[i], rec->lens[i])) {
            fprintf (stderr, "pmctl: %s: line %u, column %zu of the header: not UTF-8 (nor GBK); save the file "
                             "as 'CSV UTF-8'\n", im->path, rec->first_line, i + 1);
            return PMCTL_USAGE;
        }
        im->header[im->nheader++] = pm_xstrdup (pm_trim (rec->fields[i]));
    }
    while (im->nheader > 0 && im->header[im->nheader - 1][0] == '\0') /* "a,b,c,," from a spreadsheet */
        free (im->header[--im->nheader]);
    for (size_t k = 0; k < im->ncols; k++) {
        im->map[k] = -1;
        for (size_t i = 0; i < im->nheader; i++) {
            if (strcasecmp (im->header[i], im->cols[k].name) != 0)
                continue;
            if (im->map[k] >= 0) {
                fprintf (stderr, "pmctl: %s: the header has column '%s' twice (columns %d and %zu)\n", im->path,
                         im->cols[k].name, im->map[k] + 1, i + 1);
                return PMCTL_USAGE;
            }
            im->map[k] = (int) i;
        }
    }
    for (size_t k = 0; k < im->ncols; k++)
        if (im->cols[k].required && im->map[k] < 0) {
            fprintf (stderr, "pmctl: %s: header has no column '%s' (columns:", im->path, im->cols[k].name);
            for (size_t i = 0; i < im->nheader; i++)
                fprintf (stderr, "%s %s", i ? "," : "", im->header[i]);
            fprintf (stderr, ")\n");
            return PMCTL_USAGE;
        }
    im->have_header = true;
    return PMCTL_OK;
}

/* Why a record is not a row, or NULL when it is one; column and field set
 * for a reason that concerns one column. */
static const char *
s_csv_problem (const s_import_t *im, const pm_csv_record_t *rec, char *buf, size_t size, uint32_t *column,
               const char **field, bool *whole_row)
{
    *column = 0;
    *field = "";
    *whole_row = true;
    if (rec->error != PM_CSV_OK)
        return rec->why; /* the scanner says what is wrong with the quoting */
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
    for (size_t k = 0; k < im->ncols; k++) {
        int i = im->map[k];
        if (i < 0)
            continue;
        if (memchr (rec->fields[i], '\0', rec->lens[i])) {
            *column = (uint32_t) i + 1;
            *field = im->cols[k].name;
            *whole_row = false;
            return "holds a NUL byte (binary data pasted into the cell?): retype the value";
        }
        if (!pm_utf8_valid (rec->fields[i], rec->lens[i])) {
            *column = (uint32_t) i + 1;
            *field = im->cols[k].name;
            *whole_row = false;
            return "not UTF-8, though the rest of the file is: retype this value, or save the file as 'CSV UTF-8'";
        }
    }
    return NULL;
}

/* Second pass: a data record becomes a pending row or a rejection. */
static void
s_collect (s_import_t *im, pm_csv_record_t *rec)
{
    char buf[512];
    uint32_t column;
    const char *field;
    bool whole_row;
    const char *why = s_csv_problem (im, rec, buf, sizeof buf, &column, &field, &whole_row);
    if (why) {
        s_reject (im, rec->first_line, column, field, "", why, whole_row);
        im->local++;
        im->done++;
        return;
    }
    if (im->npending == im->cap) {
        im->cap = im->cap ? im->cap * 2 : 64;
        im->pending = pm_xrealloc (im->pending, im->cap * sizeof *im->pending);
    }
    Pm__V1__ImportRow *row = pm_xmalloc (sizeof *row);
    pm__v1__import_row__init (row);
    row->line = rec->first_line;
    for (size_t k = 0; k < im->ncols; k++) {
        int i = im->map[k];
        if (i < 0)
            continue;
        *(char **) ((char *) row + im->cols[k].offset) = rec->fields[i]; /* taken from the scanner */
        rec->fields[i] = NULL;
    }
    im->pending[im->npending++] = row;
}

/* The next chunk's request (the caller's: pm__v1__request__free_unpacked), or
 * NULL with *code PMCTL_OK when the file is done, else the exit code. */
/* A dry chunk: what earlier chunks would have written (borrowed from the
 * last answer: s_dry_unborrow takes it out again before the request is
 * freed), and the units later lines touch again, to be handed back. */
static void
s_dry_chunk (s_import_t *im, Pm__V1__IntakeImportRequest *q)
{
    q->dry_run = true;
    uint32_t last = q->rows[q->n_rows - 1]->line;
    const Pm__V1__IntakeImportReply *prev = im->dry;
    size_t nprev = prev ? prev->n_dry_units : 0;
    q->dry_carry = pm_xcalloc (q->n_rows + nprev + 1, sizeof *q->dry_carry);
    for (size_t i = 0; i < q->n_rows; i++) {
        const Pm__V1__ImportRow *r = q->rows[i];
        char *id = s_unit_id (r->estate_id, r->building, r->unit);
        if (s_unit_last (im, id) > last
            && (q->n_dry_carry == 0 || strcmp (q->dry_carry[q->n_dry_carry - 1], id) != 0))
            q->dry_carry[q->n_dry_carry++] = id;
        else
            free (id);
    }
    for (size_t i = 0; i < nprev; i++)
        if (s_unit_last (im, prev->dry_units[i]->unit_id) > last)
            q->dry_carry[q->n_dry_carry++] = pm_xstrdup (prev->dry_units[i]->unit_id);
    if (prev) { /* borrowed */
        q->dry_units = prev->dry_units;
        q->n_dry_units = prev->n_dry_units;
        q->dry_estates = prev->dry_estates;
        q->n_dry_estates = prev->n_dry_estates;
    }
}

/* Takes the borrowed parts out of a dry chunk before it is freed. */
static void
s_dry_unborrow (Pm__V1__Request *req)
{
    Pm__V1__IntakeImportRequest *q = req->intake_import;
    q->dry_units = NULL;
    q->n_dry_units = 0;
    q->dry_estates = NULL;
    q->n_dry_estates = 0;
}

static char s_run[27]; /* this run's id, part of every chunk's request id */

static Pm__V1__Request *
s_next_chunk (s_import_t *im, pm_csv_t *csv, size_t chunk, const char *batch_id, uint32_t chunk_no, int *code)
{
    *code = PMCTL_OK;
    pm_csv_record_t *rec;
    while (im->npending < chunk && (rec = pm_csv_next (csv)))
        s_collect (im, rec);
    if (pm_csv_errno (csv)) {
        fprintf (stderr, "pmctl: reading %s: %s\n", im->path, strerror (pm_csv_errno (csv)));
        *code = PMCTL_USAGE;
        return NULL;
    }
    if (im->npending == 0)
        return NULL;
    size_t n = im->npending < chunk ? im->npending : chunk;
    Pm__V1__Request *req = pm_xmalloc (sizeof *req);
    Pm__V1__IntakeImportRequest *q = pm_xmalloc (sizeof *q);
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
    req->id = pm_xasprintf ("%.63s:%s:%u:%u-%u", batch_id, s_run, chunk_no, im->pending[0]->line,
                            im->pending[n - 1]->line);
    req->method = pm_xstrdup ("intake.import");
    req->actor = pm_xstrdup (im->ctl->actor);
    q->batch_id = pm_xstrdup (batch_id);
    q->file_name = pm_xstrdup (im->file_name);
    q->chunk_no = chunk_no;
    q->columns = pm_xcalloc (im->nheader ? im->nheader : 1, sizeof *q->columns);
    for (size_t i = 0; i < im->nheader; i++)
        q->columns[q->n_columns++] = pm_xstrdup (im->header[i]);
    q->rows = pm_xmalloc (n * sizeof *q->rows);
    memcpy (q->rows, im->pending, n * sizeof *q->rows);
    q->n_rows = n;
    im->npending -= n;
    memmove (im->pending, im->pending + n, im->npending * sizeof *im->pending);
    if (im->dry_run)
        s_dry_chunk (im, q);
    return req;
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
        fprintf (stderr, "pmctl: intake refused %s (lines %u-%u): %s: %s\n", slot->id, slot->first_line,
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
        for (size_t k = 0; column == 0 && k < im->ncols; k++)
            if (strcmp (x->field, im->cols[k].name) == 0 && im->map[k] >= 0)
                column = (uint32_t) im->map[k] + 1; /* the header spells it differently */
        s_reject (im, x->line, column, x->field, x->value, x->reason, false);
    }
    im->done += slot->nrows;
    s_progress (im);
    return PMCTL_OK;
}

/* Sends the file's rows, inflight chunks at a time on one DEALER, and takes
 * the answers; a chunk unanswered for --timeout is resent (same id). Gives
 * up when intake says nothing at all for S_SILENCE_MS. PMCTL_OK when every
 * chunk was answered OK, else the exit code. */
static int
s_send_all (s_import_t *im, pm_csv_t *csv, const char *batch_id, s_pace_t *pace)
{
    const pmctl_t *ctl = im->ctl;
    const char *endpoint = pmctl_endpoint (ctl, "intake", "command");
    pm_client_t *c = pmctl_client (ctl, NULL, "intake");
    if (!c) {
        fprintf (stderr, "pmctl: cannot connect to intake at %s\n", endpoint);
        return PMCTL_FAIL;
    }
    size_t nslots = pace->adaptive ? S_PACE_INFLIGHT_MAX : pace->inflight;
    s_slot_t *slots = pm_xcalloc (nslots, sizeof *slots);
    pm_inflight_t *fl = pm_inflight_new (ctl->timeout_ms);
    int code = PMCTL_OK;
    uint32_t chunk_no = 0;
    bool more = true;
    int64_t heard = pm_mono_ms (); /* the last reply (or when the first chunk went out) */
    for (;;) {
        for (size_t i = 0; i < nslots && pm_inflight_size (fl) < pace->inflight && more && code == PMCTL_OK; i++) {
            if (slots[i].busy)
                continue;
            Pm__V1__Request *req = s_next_chunk (im, csv, pace->chunk, batch_id, chunk_no + 1, &code);
            if (!req) {
                more = false;
                break;
            }
            chunk_no++;
            const Pm__V1__IntakeImportRequest *q = req->intake_import;
            slots[i] = (s_slot_t) { .busy = true, .nrows = q->n_rows, .first_line = q->rows[0]->line,
                                    .last_line = q->rows[q->n_rows - 1]->line, .sent_ms = pm_mono_ms () };
            snprintf (slots[i].id, sizeof slots[i].id, "%s", req->id);
            if (pm_inflight_size (fl) == 0)
                heard = pm_mono_ms ();
            if (pm_inflight_add (fl, c, req, 0, &slots[i]) != PM_OK) { /* no deadline: see S_SILENCE_MS */
                fprintf (stderr, "pmctl: cannot send to intake at %s\n", endpoint);
                code = PMCTL_FAIL;
            }
            s_dry_unborrow (req);
            pm__v1__request__free_unpacked (req, NULL); /* the in-flight set keeps its bytes */
        }
        if (code != PMCTL_OK || pm_inflight_size (fl) == 0)
            break;
        int64_t left = heard + S_SILENCE_MS - pm_mono_ms ();
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, left > 0 ? (int) left : 0, &r, &user);
        if (rc == PM_OK && r) {
            s_slot_t *slot = user;
            heard = pm_mono_ms ();
            code = s_answer (im, slot, r);
            slot->busy = false;
            s_pace (pace, heard - slot->sent_ms);
            if (im->dry_run && code == PMCTL_OK) { /* the next chunk carries what this one would write */
                if (im->dry_reply)
                    pm__v1__reply__free_unpacked (im->dry_reply, NULL);
                im->dry_reply = r;
                im->dry = r->intake_import;
            }
            else
                pm__v1__reply__free_unpacked (r, NULL);
        }
        else if (rc == PM_ETIMEDOUT) {
            if (im->progress_shown)
                fputc ('\n', stderr);
            fprintf (stderr, "pmctl: intake did not answer at %s for %d s: is it running? (./pm status)\n",
                     endpoint, S_SILENCE_MS / 1000);
            code = PMCTL_FAIL;
        }
        else if (rc == PM_EIO && errno != EINTR) {
            fprintf (stderr, "pmctl: receiving from intake: %s\n", strerror (errno));
            code = PMCTL_FAIL;
        }
    }
    pm_inflight_destroy (&fl);
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
        printf ("%s%s: %" PRIu64 " created, %" PRIu64 " updated, %" PRIu64 " unchanged, %" PRIu64 " rejected\n",
                im->path, im->dry_run ? " (dry run, nothing written: what the import would do)" : "", im->created,
                im->updated, im->unchanged, rejected);
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
    cJSON_AddStringToObject (o, "encoding", im->encoding);
    cJSON_AddBoolToObject (o, "dry_run", im->dry_run);
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
        free (im->header[i]);
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
    free (im->cols);
    free (im->map);
    free (im->unit_hash);
    free (im->unit_last);
    if (im->dry_reply)
        pm__v1__reply__free_unpacked (im->dry_reply, NULL);
}

/* --- the encoding -------------------------------------------------------------- */

/* What a pass over the raw bytes saw. */
typedef struct {
    unsigned need;        /* continuation bytes still expected */
    unsigned got;         /* continuation bytes seen of the current character */
    unsigned char lead;
    uint64_t multi;       /* well-formed multi-byte characters */
    uint64_t bad;         /* broken sequences */
    uint64_t nul;         /* NUL bytes */
    uint64_t bytes;
} s_utf8_t;

/* Feeds bytes to the UTF-8 counter (no overlong forms, no surrogates, nothing above U+10FFFF). */
static void
s_utf8_feed (s_utf8_t *u, const unsigned char *p, size_t n)
{
    u->bytes += n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (u->need) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (u->got == 0) {
                if (u->lead == 0xE0)
                    lo = 0xA0;
                else if (u->lead == 0xED)
                    hi = 0x9F;
                else if (u->lead == 0xF0)
                    lo = 0x90;
                else if (u->lead == 0xF4)
                    hi = 0x8F;
            }
            if (c >= lo && c <= hi) {
                u->got++;
                if (--u->need == 0)
                    u->multi++;
                continue;
            }
            u->bad++; /* the sequence broke: c starts afresh */
            u->need = 0;
        }
        if (c < 0x80) {
            u->nul += c == 0;
            continue;
        }
        u->lead = c;
        u->got = 0;
        if (c >= 0xC2 && c <= 0xDF)
            u->need = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            u->need = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            u->need = 3;
        else
            u->bad++;
    }
}

/* Converts f from GB18030 to UTF-8 into a temporary file (rewound). NULL
 * when f is not GB18030 (or the conversion cannot be made). */
static FILE *
s_from_gb18030 (FILE *f)
{
    iconv_t cd = iconv_open ("UTF-8", "GB18030");
    if (cd == (iconv_t) -1)
        return NULL;
    FILE *out = tmpfile ();
    char in[65536], buf[4 * 65536 + 16];
    size_t have = 0;
    bool ok = out != NULL;
    rewind (f);
    while (ok) {
        size_t n = fread (in + have, 1, sizeof in - have, f);
        bool eof = n == 0;
        have += n;
        if (eof && have == 0)
            break;
        char *ip = in, *op = buf;
        size_t il = have, ol = sizeof buf;
        size_t rc = iconv (cd, &ip, &il, &op, &ol);
        if (rc == (size_t) -1 && (errno == EILSEQ || (errno == EINVAL && eof)))
            ok = false; /* not GB18030, or it ends inside a character */
        else if (fwrite (buf, 1, (size_t) (op - buf), out) != (size_t) (op - buf))
            ok = false;
        memmove (in, ip, il);
        have = il;
        if (eof)
            break;
    }
    iconv_close (cd);
    if (!ok || ferror (f) || fflush (out) != 0) {
        if (out)
            fclose (out);
        return NULL;
    }
    rewind (out);
    return out;
}

/* The raw pass: SHA-256 of the file into batch_id, and its encoding. *text
 * is the file to read the CSV from: f itself, or a converted copy (the
 * caller closes it when it is not f). PMCTL_OK, or PMCTL_USAGE after saying
 * once what is wrong with the file as a whole. */
static int
s_encoding (s_import_t *im, FILE *f, FILE **text, char batch_id[64])
{
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init (&sha);
    s_utf8_t u = { 0 };
    unsigned char buf[65536], head[2] = { 0, 0 };
    size_t n;
    rewind (f);
    while ((n = fread (buf, 1, sizeof buf, f)) > 0) {
        if (u.bytes == 0 && n >= 2)
            memcpy (head, buf, 2);
        crypto_hash_sha256_update (&sha, buf, n);
        s_utf8_feed (&u, buf, n);
    }
    if (ferror (f)) {
        fprintf (stderr, "pmctl: reading %s: %s\n", im->path, strerror (errno));
        return PMCTL_USAGE;
    }
    u.bad += u.need != 0; /* it ends inside a character */
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256_final (&sha, digest);
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    snprintf (batch_id, 64, "import:%.16s", hex);
    *text = f;
    im->encoding = "UTF-8";
    if ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF) || u.nul * 8 > u.bytes) {
        fprintf (stderr, "pmctl: %s: UTF-16 text (%s): save it as 'CSV UTF-8' (or CSV in GBK) and import that\n",
                 im->path, head[0] == 0xFF || head[0] == 0xFE ? "it starts with a UTF-16 byte order mark"
                                                              : "every other byte is NUL");
        return PMCTL_USAGE;
    }
    if (u.bad == 0 || u.bad <= u.multi) {
        rewind (f);
        return PMCTL_OK; /* UTF-8; a few broken sequences cost their rows */
    }
    FILE *conv = s_from_gb18030 (f);
    rewind (f);
    if (!conv)
        return PMCTL_OK; /* neither: the rows with bytes that are not UTF-8 are rejected */
    fprintf (stderr, "pmctl: %s is not UTF-8: read it as GB18030 (GBK) and converted it\n", im->path);
    im->encoding = "GB18030";
    *text = conv;
    return PMCTL_OK;
}

/* The unit id of a data record (malloc'd), or NULL when it is not a row. */
static char *
s_record_unit_id (const s_import_t *im, const pm_csv_record_t *rec)
{
    if (rec->error != PM_CSV_OK)
        return NULL;
    const char *parts[3] = { "", "", "" };
    static const char *const names[3] = { "estate_id", "building", "unit" };
    for (size_t k = 0; k < im->ncols; k++)
        for (int j = 0; j < 3; j++)
            if (strcmp (im->cols[k].name, names[j]) == 0 && im->map[k] >= 0 && (size_t) im->map[k] < rec->nfields)
                parts[j] = rec->fields[im->map[k]];
    return s_unit_id (parts[0], parts[1], parts[2]);
}

/* First pass: header checks, row count (and, for a dry run, each unit's last line). */
static int
s_first_pass (s_import_t *im, FILE *f)
{
    pm_csv_t *csv = pm_csv_new (f, 0);
    int code = PMCTL_OK;
    pm_csv_record_t *rec;
    while (code == PMCTL_OK && (rec = pm_csv_next (csv))) {
        if (!im->have_header)
            code = s_header (im, rec);
        else {
            im->total++;
            if (im->dry_run) {
                char *id = s_record_unit_id (im, rec);
                if (id)
                    s_unit_seen (im, id, rec->first_line);
                free (id);
            }
        }
    }
    if (code == PMCTL_OK && pm_csv_errno (csv)) {
        fprintf (stderr, "pmctl: reading %s: %s\n", im->path, strerror (pm_csv_errno (csv)));
        code = PMCTL_USAGE;
    }
    pm_csv_destroy (&csv);
    if (code != PMCTL_OK)
        return code;
    if (!im->have_header) {
        fprintf (stderr, "pmctl: %s: no header line; expected the column names first:", im->path);
        for (size_t k = 0; k < im->ncols; k++)
            fprintf (stderr, "%s%s", k ? "," : " ", im->cols[k].name);
        fputc ('\n', stderr);
        return PMCTL_USAGE;
    }
    return PMCTL_OK;
}

int
pmctl_import (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "chunk", required_argument, NULL, 'c' },
        { "inflight", required_argument, NULL, 'i' },
        { "dry-run", no_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    int64_t chunk = S_CHUNK_DEFAULT, inflight = S_INFLIGHT_DEFAULT;
    bool dry_run = false, paced = true;
    int opt, code = PMCTL_OK;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (opt == 'c' && !pmctl_parse_int ("--chunk", optarg, 1, S_CHUNK_MAX, &chunk))
            return PMCTL_USAGE;
        if (opt == 'i' && !pmctl_parse_int ("--inflight", optarg, 1, S_INFLIGHT_MAX, &inflight))
            return PMCTL_USAGE;
        if (opt == 'c' || opt == 'i')
            paced = false; /* what the operator asked for, as given */
        if (opt == 'n')
            dry_run = true;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (argc - optind > 1)
        return pmctl_usage_error (ctl, "takes one file (got '%s' and '%s')", argv[optind], argv[optind + 1]);
    if (argc - optind < 1)
        return pmctl_usage_error (ctl, "needs FILE.csv");
    const char *path = argv[optind];
    if (!pmctl_endpoint (ctl, "intake", "command")) {
        pmctl_unknown_daemon (ctl, "intake");
        return PMCTL_USAGE;
    }
    if (sodium_init () < 0) {
        fprintf (stderr, "pmctl: libsodium failed to initialise\n");
        return PMCTL_FAIL;
    }
    pm_request_id (s_run);
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
    /* rejections are kept by the file's full path: a/units.csv and b/units.csv are two files */
    char *full = realpath (path, NULL);
    s_import_t im = { .ctl = ctl, .path = path, .file_name = full ? full : path,
                      .tty = isatty (STDERR_FILENO) == 1, .dry_run = dry_run };
    s_columns (&im);
    char batch_id[64];
    FILE *text = f;
    code = s_encoding (&im, f, &text, batch_id);
    if (code == PMCTL_OK)
        code = s_first_pass (&im, text);
    if (code == PMCTL_OK) {
        pm_csv_t *csv = pm_csv_new (text, 0);
        pm_csv_next (csv); /* the header, read in the first pass */
        s_pace_t pace = { (size_t) chunk, dry_run ? 1 : (size_t) inflight, paced && !dry_run };
        code = s_send_all (&im, csv, batch_id, &pace);
        pm_csv_destroy (&csv);
        if (code == PMCTL_OK)
            s_progress (&im); /* rows rejected here after the last answer */
        if (im.progress_shown)
            fputc ('\n', stderr);
        if (code == PMCTL_OK)
            code = s_report (&im, batch_id);
    }
    s_import_free (&im);
    if (text != f)
        fclose (text);
    fclose (f);
    free (full);
    return code;
}
