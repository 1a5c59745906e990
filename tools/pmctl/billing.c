/* billing.c - `pmctl billing ...`: the accountant's commands.
 *
 *   pmctl billing reconcile FILE.csv [--chunk LINES] [--inflight N]
 *
 * 账务核对: a bank's withholding result file against billing's books. The
 * file is streamed once with the CSV scanner (pm/csv.h) and sent in chunks
 * of --chunk lines, --inflight chunks at once on one DEALER (pm_inflight_t);
 * only the chunks being filled and the lines that did not match are kept in
 * memory. Each chunk is one idempotent request ("<run>:<chunk>:<lines>",
 * resent with the same id until billing answers), and billing makes one
 * payment of one bank reference whatever the request, so a rerun of the
 * file, or of a run cut short, pays nothing twice.
 *
 * Columns by header name, in any order: external_ref, unit_id, invoice_id,
 * amount_fen or amount (yuan with two decimals), status, paid_at (the
 * string fields of ReconcileLine). Lines that are not CSV are reported
 * here; billing judges the rest. The report lists every line that is not
 * matched, by line, then a summary: matched / already recorded / mismatched
 * / unknown / failed / rejected. Exit status 3 when a line did not match.
 * The lines billing could not match also wait in ops.queues billing
 * unmatched_lines. */
#include "pmctl.h"

#include "pm/clock.h"
#include "pm/csv.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_SILENCE_MS 30000
#define S_CHUNK_DEFAULT 500
#define S_CHUNK_MAX 10000
#define S_INFLIGHT_DEFAULT 4
#define S_INFLIGHT_MAX 64

typedef struct {
    const char *name;
    size_t offset; /* of the char * in Pm__V1__ReconcileLine */
} s_col_t;

/* A line that did not become a payment, from here or from billing. */
typedef struct {
    uint32_t line;
    char *outcome, *reason, *invoice_id, *payment_id;
    int64_t fen;
} s_result_t;

typedef struct {
    bool busy;
    char id[96];
    size_t nlines;
    uint32_t first_line, last_line;
} s_slot_t;

typedef struct {
    pmctl_t *ctl;
    const char *path, *base;
    char run[27];
    s_col_t *cols;
    size_t ncols;
    int *map;              /* header index of each column, or -1 */
    size_t nheader;
    char **header;
    uint64_t lines, matched, already, mismatched, unknown, failed, rejected;
    int64_t matched_fen;
    Pm__V1__ReconcileLine **pending;
    size_t npending, cap;
    s_result_t *results;
    size_t nresults, rcap;
} s_rec_t;

static void
s_columns (s_rec_t *r)
{
    const ProtobufCMessageDescriptor *d = &pm__v1__reconcile_line__descriptor;
    r->cols = pm_xcalloc (d->n_fields, sizeof *r->cols);
    r->map = pm_xcalloc (d->n_fields, sizeof *r->map);
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].type == PROTOBUF_C_TYPE_STRING)
            r->cols[r->ncols++] = (s_col_t) { d->fields[i].name, d->fields[i].offset };
}

static int
s_col (const s_rec_t *r, const char *name)
{
    for (size_t k = 0; k < r->ncols; k++)
        if (strcmp (r->cols[k].name, name) == 0)
            return r->map[k];
    return -1;
}

static void
s_result (s_rec_t *r, uint32_t line, const char *outcome, const char *reason, const char *invoice_id,
          const char *payment_id, int64_t fen)
{
    if (r->nresults == r->rcap) {
        r->rcap = r->rcap ? 2 * r->rcap : 64;
        r->results = pm_xrealloc (r->results, r->rcap * sizeof *r->results);
    }
    r->results[r->nresults++] = (s_result_t) { line, pm_xstrdup (outcome), pm_xstrdup (reason ? reason : ""),
                                               pm_xstrdup (invoice_id ? invoice_id : ""),
                                               pm_xstrdup (payment_id ? payment_id : ""), fen };
}

/* The header: where each column is. PMCTL_OK or PMCTL_USAGE after saying why. */
static int
s_header (s_rec_t *r, pm_csv_record_t *rec)
{
    if (rec->error != PM_CSV_OK) {
        fprintf (stderr, "pmctl: %s: line %u: the header is not valid CSV: %s\n", r->path, rec->first_line, rec->why);
        return PMCTL_USAGE;
    }
    r->header = pm_xcalloc (rec->nfields + 1, sizeof *r->header);
    for (size_t i = 0; i < rec->nfields; i++) {
        if (!pm_utf8_valid (rec->fields[i], rec->lens[i])) {
            fprintf (stderr, "pmctl: %s: column %zu of the header is not UTF-8 (save the file as 'CSV UTF-8')\n",
                     r->path, i + 1);
            return PMCTL_USAGE;
        }
        r->header[r->nheader++] = pm_xstrdup (pm_trim (rec->fields[i]));
    }
    while (r->nheader > 0 && r->header[r->nheader - 1][0] == '\0')
        free (r->header[--r->nheader]);
    for (size_t k = 0; k < r->ncols; k++) {
        r->map[k] = -1;
        for (size_t i = 0; i < r->nheader; i++)
            if (strcasecmp (r->header[i], r->cols[k].name) == 0) {
                if (r->map[k] >= 0) {
                    fprintf (stderr, "pmctl: %s: the header has column '%s' twice\n", r->path, r->cols[k].name);
                    return PMCTL_USAGE;
                }
                r->map[k] = (int) i;
            }
    }
    const char *missing = s_col (r, "external_ref") < 0 ? "external_ref"
                          : s_col (r, "status") < 0     ? "status"
                          : s_col (r, "amount_fen") < 0 && s_col (r, "amount") < 0 ? "amount_fen (or amount)"
                          : s_col (r, "invoice_id") < 0 && s_col (r, "unit_id") < 0 ? "invoice_id (or unit_id)"
                                                                                    : NULL;
    if (missing) {
        fprintf (stderr, "pmctl: %s: the header has no column '%s' (columns:", r->path, missing);
        for (size_t i = 0; i < r->nheader; i++)
            fprintf (stderr, "%s %s", i ? "," : "", r->header[i]);
        fprintf (stderr, "); expected external_ref, unit_id, invoice_id, amount_fen or amount, status, paid_at\n");
        return PMCTL_USAGE;
    }
    return PMCTL_OK;
}

/* A data record: a pending line, or a line rejected here. */
static void
s_collect (s_rec_t *r, pm_csv_record_t *rec)
{
    r->lines++;
    char why[256];
    if (rec->error != PM_CSV_OK) {
        s_result (r, rec->first_line, "rejected", rec->why, NULL, NULL, 0);
        r->rejected++;
        return;
    }
    if (rec->nfields < r->nheader) {
        snprintf (why, sizeof why, "%zu fields, the header has %zu", rec->nfields, r->nheader);
        s_result (r, rec->first_line, "rejected", why, NULL, NULL, 0);
        r->rejected++;
        return;
    }
    for (size_t i = r->nheader; i < rec->nfields; i++)
        if (rec->lens[i]) {
            snprintf (why, sizeof why, "%zu fields, the header has %zu: an unquoted comma in an amount? write "
                                       "\"1,234.50\" in quotes, or 1234.50", rec->nfields, r->nheader);
            s_result (r, rec->first_line, "rejected", why, NULL, NULL, 0);
            r->rejected++;
            return;
        }
    for (size_t k = 0; k < r->ncols; k++) {
        int i = r->map[k];
        if (i >= 0 && !pm_utf8_valid (rec->fields[i], rec->lens[i])) {
            snprintf (why, sizeof why, "column %d (%s) is not UTF-8 (save the file as 'CSV UTF-8')", i + 1,
                      r->cols[k].name);
            s_result (r, rec->first_line, "rejected", why, NULL, NULL, 0);
            r->rejected++;
            return;
        }
    }
    if (r->npending == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->pending = pm_xrealloc (r->pending, r->cap * sizeof *r->pending);
    }
    Pm__V1__ReconcileLine *l = pm_xmalloc (sizeof *l);
    pm__v1__reconcile_line__init (l);
    l->line = rec->first_line;
    for (size_t k = 0; k < r->ncols; k++) {
        int i = r->map[k];
        if (i < 0)
            continue;
        *(char **) ((char *) l + r->cols[k].offset) = rec->fields[i]; /* taken from the scanner */
        rec->fields[i] = NULL;
    }
    r->pending[r->npending++] = l;
}

/* The next chunk's request (the caller's), NULL with *code PMCTL_OK at the end. */
static Pm__V1__Request *
s_next_chunk (s_rec_t *r, pm_csv_t *csv, size_t chunk, uint32_t chunk_no, int *code)
{
    *code = PMCTL_OK;
    pm_csv_record_t *rec;
    while (r->npending < chunk && (rec = pm_csv_next (csv)))
        s_collect (r, rec);
    if (pm_csv_errno (csv)) {
        fprintf (stderr, "pmctl: reading %s: %s\n", r->path, strerror (pm_csv_errno (csv)));
        *code = PMCTL_USAGE;
        return NULL;
    }
    if (r->npending == 0)
        return NULL;
    size_t n = r->npending < chunk ? r->npending : chunk;
    Pm__V1__Request *req = pm_xmalloc (sizeof *req);
    Pm__V1__BillingReconcileRequest *q = pm_xmalloc (sizeof *q);
    pm__v1__request__init (req);
    pm__v1__billing_reconcile_request__init (q);
    req->body_case = PM__V1__REQUEST__BODY_BILLING_RECONCILE;
    req->billing_reconcile = q;
    req->id = pm_xasprintf ("reconcile:%s:%u:%u-%u", r->run, chunk_no, r->pending[0]->line, r->pending[n - 1]->line);
    req->method = pm_xstrdup ("billing.reconcile");
    req->actor = pm_xstrdup (r->ctl->actor);
    q->batch_id = pm_xasprintf ("reconcile:%s", r->run);
    q->file_name = pm_xstrdup (r->base);
    q->chunk_no = chunk_no;
    q->lines = pm_xmalloc (n * sizeof *q->lines);
    memcpy (q->lines, r->pending, n * sizeof *q->lines);
    q->n_lines = n;
    r->npending -= n;
    memmove (r->pending, r->pending + n, r->npending * sizeof *r->pending);
    return req;
}

static int
s_answer (s_rec_t *r, const s_slot_t *slot, const Pm__V1__Reply *rep)
{
    if (rep->status != PM__V1__STATUS__OK || rep->body_case != PM__V1__REPLY__BODY_BILLING_RECONCILE) {
        fprintf (stderr, "pmctl: billing refused lines %u-%u: %s: %s\n", slot->first_line, slot->last_line,
                 pm_status_name (rep->status), rep->message);
        return PMCTL_FAIL;
    }
    const Pm__V1__BillingReconcileReply *a = rep->billing_reconcile;
    r->matched += a->matched;
    r->matched_fen += a->matched_fen;
    r->already += a->already_recorded;
    r->mismatched += a->mismatched;
    r->unknown += a->unknown;
    r->failed += a->failed;
    r->rejected += a->rejected;
    for (size_t i = 0; i < a->n_results; i++) {
        const Pm__V1__ReconcileResult *x = a->results[i];
        s_result (r, x->line, x->outcome, x->reason, x->invoice_id, x->payment_id, x->amount_fen);
    }
    return PMCTL_OK;
}

static int
s_send_all (s_rec_t *r, pm_csv_t *csv, size_t chunk, size_t inflight)
{
    const pmctl_t *ctl = r->ctl;
    const char *endpoint = pmctl_endpoint (ctl, "billing", "command");
    pm_client_t *c = pmctl_client (ctl, NULL, "billing");
    if (!c) {
        fprintf (stderr, "pmctl: cannot connect to billing at %s\n", endpoint);
        return PMCTL_FAIL;
    }
    s_slot_t *slots = pm_xcalloc (inflight, sizeof *slots);
    pm_inflight_t *fl = pm_inflight_new (ctl->timeout_ms);
    int code = PMCTL_OK;
    uint32_t chunk_no = 0;
    bool more = true;
    int64_t heard = pm_mono_ms ();
    for (;;) {
        for (size_t i = 0; i < inflight && more && code == PMCTL_OK; i++) {
            if (slots[i].busy)
                continue;
            Pm__V1__Request *req = s_next_chunk (r, csv, chunk, chunk_no + 1, &code);
            if (!req) {
                more = false;
                break;
            }
            chunk_no++;
            const Pm__V1__BillingReconcileRequest *q = req->billing_reconcile;
            slots[i] = (s_slot_t) { .busy = true, .nlines = q->n_lines, .first_line = q->lines[0]->line,
                                    .last_line = q->lines[q->n_lines - 1]->line };
            snprintf (slots[i].id, sizeof slots[i].id, "%s", req->id);
            if (pm_inflight_size (fl) == 0)
                heard = pm_mono_ms ();
            if (pm_inflight_add (fl, c, req, 0, &slots[i]) != PM_OK) {
                fprintf (stderr, "pmctl: cannot send to billing at %s\n", endpoint);
                code = PMCTL_FAIL;
            }
            pm__v1__request__free_unpacked (req, NULL);
        }
        if (code != PMCTL_OK || pm_inflight_size (fl) == 0)
            break;
        int64_t left = heard + S_SILENCE_MS - pm_mono_ms ();
        Pm__V1__Reply *rep = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, left > 0 ? (int) left : 0, &rep, &user);
        if (rc == PM_OK && rep) {
            s_slot_t *slot = user;
            heard = pm_mono_ms ();
            code = s_answer (r, slot, rep);
            slot->busy = false;
            pm__v1__reply__free_unpacked (rep, NULL);
        }
        else if (rc == PM_ETIMEDOUT) {
            fprintf (stderr, "pmctl: billing did not answer at %s for %d s: is it running? (./pm status)\n", endpoint,
                     S_SILENCE_MS / 1000);
            code = PMCTL_FAIL;
        }
        else if (rc == PM_EIO && errno != EINTR) {
            fprintf (stderr, "pmctl: receiving from billing: %s\n", strerror (errno));
            code = PMCTL_FAIL;
        }
    }
    pm_inflight_destroy (&fl);
    free (slots);
    pm_client_destroy (&c);
    return code;
}

static int
s_result_cmp (const void *a, const void *b)
{
    const s_result_t *x = a, *y = b;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int
s_report (s_rec_t *r)
{
    if (r->nresults > 1)
        qsort (r->results, r->nresults, sizeof *r->results, s_result_cmp);
    bool clean = r->mismatched + r->unknown + r->failed + r->rejected == 0;
    if (!r->ctl->json) {
        for (size_t i = 0; i < r->nresults; i++) {
            const s_result_t *x = &r->results[i];
            printf ("  line %u: %s: %s\n", x->line, x->outcome, x->reason);
        }
        char fen[48];
        int64_t a = r->matched_fen;
        snprintf (fen, sizeof fen, "%" PRId64 ".%02" PRId64, a / 100, a % 100);
        printf ("%s: %" PRIu64 " lines: %" PRIu64 " matched (¥%s), %" PRIu64 " already recorded, %" PRIu64
                " mismatched, %" PRIu64 " unknown, %" PRIu64 " failed, %" PRIu64 " rejected\n",
                r->path, r->lines, r->matched, fen, r->already, r->mismatched, r->unknown, r->failed, r->rejected);
        if (!clean)
            printf ("the lines that did not match wait in: pmctl queues billing (unmatched_lines)\n");
        return clean ? PMCTL_OK : PMCTL_REJECTED;
    }
    cJSON *o = cJSON_CreateObject ();
    cJSON *arr = cJSON_CreateArray ();
    cJSON_AddStringToObject (o, "file", r->path);
    cJSON_AddNumberToObject (o, "lines", (double) r->lines);
    cJSON_AddNumberToObject (o, "matched", (double) r->matched);
    cJSON_AddNumberToObject (o, "matched_fen", (double) r->matched_fen);
    cJSON_AddNumberToObject (o, "already_recorded", (double) r->already);
    cJSON_AddNumberToObject (o, "mismatched", (double) r->mismatched);
    cJSON_AddNumberToObject (o, "unknown", (double) r->unknown);
    cJSON_AddNumberToObject (o, "failed", (double) r->failed);
    cJSON_AddNumberToObject (o, "rejected", (double) r->rejected);
    for (size_t i = 0; i < r->nresults; i++) {
        const s_result_t *x = &r->results[i];
        cJSON *j = cJSON_CreateObject ();
        cJSON_AddNumberToObject (j, "line", x->line);
        cJSON_AddStringToObject (j, "outcome", x->outcome);
        cJSON_AddStringToObject (j, "reason", x->reason);
        cJSON_AddStringToObject (j, "invoice_id", x->invoice_id);
        cJSON_AddStringToObject (j, "payment_id", x->payment_id);
        cJSON_AddNumberToObject (j, "amount_fen", (double) x->fen);
        cJSON_AddItemToArray (arr, j);
    }
    cJSON_AddItemToObject (o, "results", arr);
    int code = pmctl_print_json (o, false);
    return code != PMCTL_OK ? code : clean ? PMCTL_OK : PMCTL_REJECTED;
}

static void
s_free (s_rec_t *r)
{
    for (size_t i = 0; i < r->nheader; i++)
        free (r->header[i]);
    free (r->header);
    for (size_t i = 0; i < r->npending; i++)
        pm__v1__reconcile_line__free_unpacked (r->pending[i], NULL);
    free (r->pending);
    for (size_t i = 0; i < r->nresults; i++) {
        free (r->results[i].outcome);
        free (r->results[i].reason);
        free (r->results[i].invoice_id);
        free (r->results[i].payment_id);
    }
    free (r->results);
    free (r->cols);
    free (r->map);
}

static int
s_reconcile (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "chunk", required_argument, NULL, 'c' },
        { "inflight", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    int64_t chunk = S_CHUNK_DEFAULT, inflight = S_INFLIGHT_DEFAULT;
    int opt, code = PMCTL_OK;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (opt == 'c' && !pmctl_parse_int ("--chunk", optarg, 1, S_CHUNK_MAX, &chunk))
            return PMCTL_USAGE;
        if (opt == 'i' && !pmctl_parse_int ("--inflight", optarg, 1, S_INFLIGHT_MAX, &inflight))
            return PMCTL_USAGE;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (argc - optind != 1)
        return pmctl_usage_error (ctl, argc - optind < 1 ? "reconcile needs FILE.csv" : "reconcile takes one file");
    if (!pmctl_endpoint (ctl, "billing", "command")) {
        pmctl_unknown_daemon (ctl, "billing");
        return PMCTL_USAGE;
    }
    const char *path = argv[optind];
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "pmctl: %s: %s\n", path, strerror (errno));
        return PMCTL_USAGE;
    }
    struct stat st;
    if (fstat (fileno (f), &st) != 0 || !S_ISREG (st.st_mode)) {
        fprintf (stderr, "pmctl: %s: not a regular file\n", path);
        fclose (f);
        return PMCTL_USAGE;
    }
    const char *slash = strrchr (path, '/');
    s_rec_t r = { .ctl = ctl, .path = path, .base = slash ? slash + 1 : path };
    pm_request_id (r.run);
    s_columns (&r);
    pm_csv_t *csv = pm_csv_new (f, 0);
    pm_csv_record_t *rec = pm_csv_next (csv);
    if (!rec) {
        fprintf (stderr, "pmctl: %s: empty; expected a header line: external_ref, unit_id, invoice_id, amount_fen or "
                         "amount, status, paid_at\n", path);
        code = PMCTL_USAGE;
    }
    else
        code = s_header (&r, rec);
    if (code == PMCTL_OK)
        code = s_send_all (&r, csv, (size_t) chunk, (size_t) inflight);
    pm_csv_destroy (&csv);
    if (code == PMCTL_OK)
        code = s_report (&r);
    s_free (&r);
    fclose (f);
    return code;
}

int
pmctl_billing (pmctl_t *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp (argv[1], "reconcile") == 0)
        return s_reconcile (ctl, argc - 1, argv + 1);
    if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)) {
        int code;
        pmctl_getopt (ctl, argc, argv, "", NULL, &code);
        return code;
    }
    if (argc < 2)
        return pmctl_usage_error (ctl, "needs a subcommand");
    return pmctl_usage_error (ctl, "unknown subcommand '%s'", argv[1]);
}
