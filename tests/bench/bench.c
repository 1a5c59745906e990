/* pm-bench - durable command throughput of one daemon, and read latency
 * while it imports, beside the raw LMDB durable-commit rate of the same disk.
 *
 *   pm-bench [--commands N] [--inflight K] [--rows R] [--dir DIR]
 *   pm-bench --mixed [--importers N] [--import-rows N] [--read-rate R] [--dir DIR]
 *
 * It starts pm-intake (from the build tree next to this binary) in a temp
 * PM_HOME under DIR. Every reply is sent only after its command is durable
 * (group commit), so replies counted are commands committed.
 *
 * The default run keeps K intake.import commands in flight on one DEALER,
 * each a small command of R rows (a new unit each), and counts replies.
 *
 * The mixed run (--mixed) is the move-in day: N importers, each with its own
 * DEALER in its own thread, stream intake.import chunks of 500 generated rows
 * with 4 in flight (as pmctl import does), while a reader calls
 * intake.unit.get on units imported beforehand at a steady R reads/s. Reads
 * are sent on schedule whatever the answers do (open loop), and each read's
 * latency runs from its scheduled time, so a stall counts in full for every
 * read it delays, not just the first.
 *
 * The raw LMDB rate (one small put per durable commit) is measured before
 * and after the run, with the daemon stopped: on a busy machine it moves, so
 * both are printed and the daemon's rate is compared with their mean. */
#define _GNU_SOURCE
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/store.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_LMDB_COMMITS 2000
#define S_CHUNK_ROWS 500       /* rows per intake.import chunk in the mixed run, as pmctl import */
#define S_CHUNK_INFLIGHT 4     /* chunks in flight per importer, as pmctl import */
#define S_SEED_UNITS 1000      /* units imported before the mixed run, for the reader */
#define S_RETRY_MS 5000        /* resend a request unanswered this long (same id) */
#define S_DEADLINE_MS 30000    /* give a request up after this long */

static const char *const s_columns[] = { "estate_id", "estate_name", "building", "unit", "floor",
                                         "area_m2", "owner_name", "phone", "email", "id_number" };

/* --- the machine and the daemon ------------------------------------------------- */

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (p);
}

/* Raw LMDB: one small put per durable commit, as one-commit-per-command
 * would do, in a store of its own under dir/name. Commits/s, 0 on failure. */
static double
s_lmdb_rate (const char *dir, const char *name, int commits)
{
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    pm_store_t *s = pm_store_open (path, 64u << 20, NULL);
    if (!s)
        return 0;
    double rate = 0;
    int64_t t0 = pm_mono_us ();
    for (int i = 0; i < commits; i++) {
        pm_txn_t t;
        unsigned char k[8];
        pm_u64_be ((uint64_t) i, k);
        pm_txn_begin (&t, s, NULL);
        pm_txn_put (&t, PM_DB_META, k, 8, "0123456789abcdef0123456789abcdef", 32);
        if (pm_txn_commit (&t) != PM_OK)
            goto done;
    }
    rate = commits / ((double) (pm_mono_us () - t0) / 1e6);
done:
    pm_store_destroy (&s);
    return rate;
}

/* Starts pm-intake from the build tree with PM_HOME dir. Its pid, or -1. */
static pid_t
s_intake_start (const char *dir)
{
    char self[PATH_MAX], daemon[PATH_MAX + 64];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr (self, '/') = '\0';
    snprintf (daemon, sizeof daemon, "%s/../../services/intake/pm-intake", self);
    setenv ("PM_HOME", dir, 1);
    setenv ("PM_GENERAL_LOG_LEVEL", "warn", 1);
    setenv ("PM_INTAKE_MAP_SIZE_MB", "1024", 1);
    pid_t pid = fork ();
    if (pid == 0) {
        execl (daemon, "pm-intake", (char *) NULL);
        fprintf (stderr, "pm-bench: cannot run %s: %s\n", daemon, strerror (errno));
        _exit (127);
    }
    return pid;
}

static void
s_intake_stop (pid_t pid)
{
    if (pid <= 0)
        return;
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
}

/* Sends method (empty body) on c and waits for its own reply: replies to
 * earlier tries of it that arrive later are dropped by whoever reads c next,
 * as every read here goes through pm_inflight_t. NULL if none in timeout_ms. */
static Pm__V1__Reply *
s_call (pm_client_t *c, const char *method, int timeout_ms, int retry_ms)
{
    char id[27];
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "pm-bench";
    Pm__V1__Reply *r = NULL;
    return pm_client_call (c, &req, timeout_ms, retry_ms, &r) == PM_OK ? r : NULL;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/* The p-quantile (0 < p <= 1) of sorted v[0..n), in ms. */
static double
s_ms_at (const int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t) (p * (double) n + 0.999999);
    return v[i > 0 ? i - 1 : 0] / 1000.0;
}

/* --- the command run ------------------------------------------------------------ */

/* What the command run measured. */
typedef struct {
    int done, failed;
    double secs;
    int64_t *lat_us;   /* done of them, sorted */
} s_commands_t;

/* commands intake.import commands of rows rows each, inflight at a time on c. */
static void
s_run_commands (pm_client_t *c, int commands, int inflight, int rows, s_commands_t *out)
{
    /* one prepared row set, units renamed per command */
    Pm__V1__ImportRow *rowv = pm_xcalloc ((size_t) rows, sizeof *rowv);
    Pm__V1__ImportRow **rowp = pm_xcalloc ((size_t) rows, sizeof *rowp);
    char (*unit)[16] = pm_xcalloc ((size_t) rows, 16);
    for (int i = 0; i < rows; i++) {
        pm__v1__import_row__init (&rowv[i]);
        rowv[i].line = (uint32_t) i + 2;
        rowv[i].estate_id = "B01";
        rowv[i].estate_name = "Bench Garden";
        rowv[i].floor = "12";
        rowv[i].area_m2 = "89.50";
        rowv[i].owner_name = "Owner";
        rowv[i].phone = "13812345678";
        rowv[i].email = "o@example.com";
        rowv[i].id_number = "11010519491231002X";
        rowv[i].unit = unit[i];
        snprintf (unit[i], 16, "%04d", i);
        rowp[i] = &rowv[i];
    }
    int64_t *sent_us = pm_xcalloc ((size_t) commands, sizeof *sent_us);
    out->lat_us = pm_xcalloc ((size_t) commands, sizeof *out->lat_us);
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    int sent = 0;
    char building[32], id[40];
    int64_t t0 = pm_mono_us ();
    while (out->done + out->failed < commands) {
        while (sent < commands && pm_inflight_size (fl) < (size_t) inflight) {
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            Pm__V1__IntakeImportRequest body = PM__V1__INTAKE_IMPORT_REQUEST__INIT;
            snprintf (id, sizeof id, "bench-%010d", sent); /* time-ordered, like ULIDs */
            snprintf (building, sizeof building, "%06d", sent);
            for (int i = 0; i < rows; i++)
                rowv[i].building = building;
            req.id = id;
            req.method = "intake.import";
            body.batch_id = "bench";
            body.n_rows = (size_t) rows;
            body.rows = rowp;
            pm_body_set (&req.base, "intake.import", &body.base);
            sent_us[sent] = pm_mono_us ();
            if (pm_inflight_add (fl, c, &req, S_DEADLINE_MS, &sent_us[sent]) != PM_OK) {
                fprintf (stderr, "pm-bench: cannot send: %s\n", zmq_strerror (errno));
                goto done;
            }
            sent++;
        }
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, -1, &r, &user);
        if (rc != PM_OK) {
            if (rc == PM_EIO && errno == EINTR)
                continue;
            fprintf (stderr, "pm-bench: receiving: %s\n", pm_strerror (rc));
            goto done;
        }
        if (!r) {
            fprintf (stderr, "pm-bench: no reply within %d s after %d of %d\n", S_DEADLINE_MS / 1000,
                     out->done, commands);
            out->failed++;
            goto done;
        }
        out->lat_us[out->done++] = pm_mono_us () - *(int64_t *) user;
        if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_INTAKE_IMPORT
            || r->intake_import->created != (uint32_t) rows)
            out->failed++;
        pm__v1__reply__free_unpacked (r, NULL);
    }
done:
    out->secs = (double) (pm_mono_us () - t0) / 1e6;
    qsort (out->lat_us, (size_t) out->done, sizeof *out->lat_us, s_cmp);
    pm_inflight_destroy (&fl);
    free (sent_us);
    free (rowv);
    free (rowp);
    free (unit);
}

/* --- the mixed run --------------------------------------------------------------- */

/* One importer: a DEALER of its own streaming generated rows into one estate. */
typedef struct {
    void *zctx;
    const char *endpoint;
    char estate[16];       /* units <estate>/<chunk no>/<row no> */
    int rows;              /* to import */
    /* results */
    int chunks;            /* answered */
    int failed;            /* chunks answered not OK, or not answered at all */
    uint64_t created;
    int64_t *chunk_lat_us; /* chunks of them */
    int64_t start_us, end_us;
    pthread_t thread;
} s_importer_t;

/* One chunk's rows and the text they point to. */
typedef struct {
    Pm__V1__ImportRow row[S_CHUNK_ROWS];
    Pm__V1__ImportRow *rowp[S_CHUNK_ROWS];
    char unit[S_CHUNK_ROWS][16];
    char building[16];
} s_chunk_t;

/* Fills req with chunk no of im's rows (pointing into ch and id). */
static void
s_chunk (const s_importer_t *im, s_chunk_t *ch, int no, Pm__V1__Request *req, Pm__V1__IntakeImportRequest *body,
         char id[27], char batch[32])
{
    int first = no * S_CHUNK_ROWS;
    int n = im->rows - first < S_CHUNK_ROWS ? im->rows - first : S_CHUNK_ROWS;
    snprintf (ch->building, sizeof ch->building, "%04d", no);
    for (int i = 0; i < n; i++) {
        Pm__V1__ImportRow *r = &ch->row[i];
        pm__v1__import_row__init (r);
        snprintf (ch->unit[i], sizeof ch->unit[i], "%04d", i);
        r->line = (uint32_t) (first + i + 2);
        r->estate_id = (char *) im->estate;
        r->estate_name = "Bench Garden";
        r->building = ch->building;
        r->unit = ch->unit[i];
        r->floor = "12";
        r->area_m2 = "89.50";
        r->owner_name = "Owner";
        r->phone = "13812345678";
        r->email = "o@example.com";
        r->id_number = "11010519491231002X";
        ch->rowp[i] = r;
    }
    pm__v1__request__init (req);
    pm__v1__intake_import_request__init (body);
    pm_request_id (id);
    snprintf (batch, 32, "bench:%s", im->estate);
    req->id = id;
    req->method = "intake.import";
    req->actor = "pm-bench";
    body->batch_id = batch;
    body->file_name = batch;
    body->chunk_no = (uint32_t) no + 1;
    body->columns = (char **) s_columns;
    body->n_columns = sizeof s_columns / sizeof s_columns[0];
    body->rows = ch->rowp;
    body->n_rows = (size_t) n;
    pm_body_set (&req->base, "intake.import", &body->base);
}

/* Streams im's rows, S_CHUNK_INFLIGHT chunks in flight (a thread's body). */
static void *
s_importer_run (void *arg)
{
    s_importer_t *im = arg;
    int nchunks = (im->rows + S_CHUNK_ROWS - 1) / S_CHUNK_ROWS;
    int64_t *sent_us = pm_xcalloc ((size_t) nchunks + 1, sizeof *sent_us);
    im->chunk_lat_us = pm_xcalloc ((size_t) nchunks + 1, sizeof *im->chunk_lat_us);
    s_chunk_t *ch = pm_xmalloc (sizeof *ch);
    pm_client_t *c = pm_client_new (im->zctx, im->endpoint);
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    int next = 0;
    im->start_us = pm_mono_us ();
    while (c && (next < nchunks || pm_inflight_size (fl) > 0)) {
        while (next < nchunks && pm_inflight_size (fl) < S_CHUNK_INFLIGHT) {
            Pm__V1__Request req;
            Pm__V1__IntakeImportRequest body;
            char id[27], batch[32];
            s_chunk (im, ch, next, &req, &body, id, batch);
            sent_us[next] = pm_mono_us ();
            if (pm_inflight_add (fl, c, &req, S_DEADLINE_MS, &sent_us[next]) != PM_OK)
                break; /* counted as failed below */
            next++;
        }
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, -1, &r, &user);
        if (rc == PM_EIO && errno == EINTR)
            continue;
        if (rc != PM_OK)
            break;
        if (!r)
            continue; /* given up at its deadline: counted below */
        im->chunk_lat_us[im->chunks++] = pm_mono_us () - *(int64_t *) user;
        if (r->status == PM__V1__STATUS__OK && r->body_case == PM__V1__REPLY__BODY_INTAKE_IMPORT)
            im->created += r->intake_import->created;
        else
            im->failed++;
        pm__v1__reply__free_unpacked (r, NULL);
    }
    im->end_us = pm_mono_us ();
    im->failed += nchunks - im->chunks; /* given up, never sent or never ended */
    qsort (im->chunk_lat_us, (size_t) im->chunks, sizeof *im->chunk_lat_us, s_cmp);
    pm_inflight_destroy (&fl);
    pm_client_destroy (&c);
    free (ch);
    free (sent_us);
    return NULL;
}

/* The reader: intake.unit.get on the seeded units at a steady rate until
 * the importers are done. */
typedef struct {
    void *zctx;
    const char *endpoint;
    const char *estate;    /* the seeded estate */
    int units;             /* how many units it has */
    int rate;              /* reads per second */
    atomic_bool *done;     /* the importers finished */
    /* results */
    int64_t *lat_us;       /* from the scheduled time to the reply, per answered read */
    size_t nlat, cap;
    int sent, failed, unanswered;
    pthread_t thread;
} s_reader_t;

static void *
s_reader_run (void *arg)
{
    s_reader_t *rd = arg;
    pm_client_t *c = pm_client_new (rd->zctx, rd->endpoint);
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    int64_t interval_us = 1000000 / rd->rate;
    int64_t next_us = pm_mono_us ();
    bool stop = false;
    while (c && (!stop || pm_inflight_size (fl) > 0)) {
        stop = stop || atomic_load (rd->done);
        int64_t now = pm_mono_us ();
        while (!stop && next_us <= now) { /* on schedule, answered or not */
            char id[27], unit_id[32];
            int k = rd->sent % rd->units;
            snprintf (unit_id, sizeof unit_id, "%s/%04d/%04d", rd->estate, k / S_CHUNK_ROWS, k % S_CHUNK_ROWS);
            Pm__V1__IntakeUnitGetRequest body = PM__V1__INTAKE_UNIT_GET_REQUEST__INIT;
            body.unit_id = unit_id;
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            pm_request_id (id);
            req.id = id;
            req.method = "intake.unit.get";
            req.actor = "pm-bench";
            pm_body_set (&req.base, "intake.unit.get", &body.base);
            int64_t *at = pm_xmalloc (sizeof *at); /* the request's: freed when it ends */
            *at = next_us;
            if (pm_inflight_add (fl, c, &req, S_DEADLINE_MS, at) != PM_OK) {
                free (at);
                rd->failed++;
            }
            rd->sent++;
            next_us += interval_us;
        }
        int wait_ms = stop ? -1 : (int) ((next_us - now + 999) / 1000);
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, wait_ms, &r, &user);
        if (rc == PM_ETIMEDOUT || (rc == PM_EIO && errno == EINTR))
            continue;
        if (rc != PM_OK)
            break;
        int64_t *at = user;
        if (!r)
            rd->unanswered++;
        else {
            if (rd->nlat == rd->cap) {
                rd->cap = rd->cap ? rd->cap * 2 : 4096;
                rd->lat_us = pm_xrealloc (rd->lat_us, rd->cap * sizeof *rd->lat_us);
            }
            rd->lat_us[rd->nlat++] = pm_mono_us () - *at;
            if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_INTAKE_UNIT_GET)
                rd->failed++;
            pm__v1__reply__free_unpacked (r, NULL);
        }
        free (at);
    }
    qsort (rd->lat_us, rd->nlat, sizeof *rd->lat_us, s_cmp);
    pm_inflight_destroy (&fl); /* (nothing left in flight unless the socket failed) */
    pm_client_destroy (&c);
    return NULL;
}

/* What the mixed run measured. */
typedef struct {
    int importers, rows, rate;
    uint64_t created;      /* rows imported */
    double secs;           /* from the first importer's start to the last one's end */
    int chunks, failed;    /* chunks answered; chunks not OK or unanswered */
    int64_t *chunk_lat_us; /* chunks of them, sorted */
    s_reader_t reader;
} s_mixed_t;

/* The mixed run: seeds S_SEED_UNITS units, then runs the importers and the
 * reader at once. False when the seeding failed (printed). */
static bool
s_run_mixed (void *zctx, const char *endpoint, s_mixed_t *out)
{
    s_importer_t seed = { .zctx = zctx, .endpoint = endpoint, .estate = "R01", .rows = S_SEED_UNITS };
    s_importer_run (&seed);
    free (seed.chunk_lat_us);
    if (seed.failed || seed.created != S_SEED_UNITS) {
        fprintf (stderr, "pm-bench: seeding %d units for the reader failed\n", S_SEED_UNITS);
        return false;
    }
    atomic_bool done = false;
    s_reader_t *rd = &out->reader;
    *rd = (s_reader_t) { .zctx = zctx, .endpoint = endpoint, .estate = "R01", .units = S_SEED_UNITS,
                         .rate = out->rate, .done = &done };
    s_importer_t *im = pm_xcalloc ((size_t) out->importers, sizeof *im);
    for (int i = 0; i < out->importers; i++) {
        im[i] = (s_importer_t) { .zctx = zctx, .endpoint = endpoint, .rows = out->rows };
        snprintf (im[i].estate, sizeof im[i].estate, "M%02d", i);
    }
    pthread_create (&rd->thread, NULL, s_reader_run, rd);
    for (int i = 0; i < out->importers; i++)
        pthread_create (&im[i].thread, NULL, s_importer_run, &im[i]);
    for (int i = 0; i < out->importers; i++)
        pthread_join (im[i].thread, NULL);
    atomic_store (&done, true);
    pthread_join (rd->thread, NULL);

    int64_t start = INT64_MAX, end = 0;
    for (int i = 0; i < out->importers; i++) {
        start = im[i].start_us < start ? im[i].start_us : start;
        end = im[i].end_us > end ? im[i].end_us : end;
        out->created += im[i].created;
        out->chunks += im[i].chunks;
        out->failed += im[i].failed;
    }
    out->secs = (double) (end - start) / 1e6;
    out->chunk_lat_us = pm_xcalloc ((size_t) out->chunks + 1, sizeof *out->chunk_lat_us);
    for (int i = 0, k = 0; i < out->importers; i++) {
        memcpy (out->chunk_lat_us + k, im[i].chunk_lat_us, (size_t) im[i].chunks * sizeof *out->chunk_lat_us);
        k += im[i].chunks;
        free (im[i].chunk_lat_us);
    }
    qsort (out->chunk_lat_us, (size_t) out->chunks, sizeof *out->chunk_lat_us, s_cmp);
    free (im);
    return true;
}

/* Prints the mixed run's figures. */
static void
s_print_mixed (const s_mixed_t *m)
{
    const s_reader_t *rd = &m->reader;
    size_t nc = (size_t) m->chunks;
    printf ("mixed: %d importers (%d-row chunks, %d in flight each) while intake.unit.get is read at %d/s\n",
            m->importers, S_CHUNK_ROWS, S_CHUNK_INFLIGHT, m->rate);
    printf ("  import: %" PRIu64 " rows created in %.2f s: %.0f rows/s; %d chunks answered, %d not OK or "
            "unanswered; chunk latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
            m->created, m->secs, m->secs > 0 ? (double) m->created / m->secs : 0, m->chunks, m->failed,
            s_ms_at (m->chunk_lat_us, nc, 0.50), s_ms_at (m->chunk_lat_us, nc, 0.99),
            s_ms_at (m->chunk_lat_us, nc, 1.0));
    printf ("  reads: %zu of %d answered, %d not OK, %d unanswered; latency from the scheduled time p50 %.2f ms, "
            "p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
            rd->nlat, rd->sent, rd->failed, rd->unanswered, s_ms_at (rd->lat_us, rd->nlat, 0.50),
            s_ms_at (rd->lat_us, rd->nlat, 0.99), s_ms_at (rd->lat_us, rd->nlat, 0.999),
            s_ms_at (rd->lat_us, rd->nlat, 1.0));
}

/* --- main ------------------------------------------------------------------------ */

static void
s_usage (FILE *f)
{
    fprintf (f, "usage: pm-bench [--commands N] [--inflight K] [--rows R] [--dir DIR]\n"
                "       pm-bench --mixed [--importers N] [--import-rows N] [--read-rate R] [--dir DIR]\n"
                "       pm-bench --raw-lmdb [--dir DIR]   (the disk's durable commits/s only)\n"
                "\n"
                "  --commands N      intake.import commands to send (default 200000)\n"
                "  --inflight K      commands in flight on the DEALER (default 512)\n"
                "  --rows R          rows per command, 1 to 1000 (default 1)\n"
                "  --mixed           importers and a reader at once instead\n"
                "  --importers N     importers in the mixed run (default 8)\n"
                "  --import-rows N   rows each importer streams (default 125000)\n"
                "  --read-rate R     intake.unit.get reads per second (default 200)\n"
                "  --dir DIR         where the temp PM_HOME goes (default /tmp)\n");
}

/* A whole number in [min, max] for option opt, or false after saying why. */
static bool
s_int (const char *opt, const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol (s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        fprintf (stderr, "pm-bench: %s '%s': expected a whole number from %ld to %ld\n", opt, s, min, max);
        return false;
    }
    *out = (int) v;
    return true;
}

int
main (int argc, char **argv)
{
    enum { O_COMMANDS = 0x100, O_INFLIGHT, O_ROWS, O_DIR, O_MIXED, O_IMPORTERS, O_IMPORT_ROWS, O_READ_RATE, O_RAW };
    static const struct option opts[] = {
        { "commands", required_argument, NULL, O_COMMANDS },
        { "inflight", required_argument, NULL, O_INFLIGHT },
        { "rows", required_argument, NULL, O_ROWS },
        { "dir", required_argument, NULL, O_DIR },
        { "mixed", no_argument, NULL, O_MIXED },
        { "importers", required_argument, NULL, O_IMPORTERS },
        { "import-rows", required_argument, NULL, O_IMPORT_ROWS },
        { "read-rate", required_argument, NULL, O_READ_RATE },
        { "raw-lmdb", no_argument, NULL, O_RAW },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int commands = 200000, inflight = 512, rows = 1, importers = 8, import_rows = 125000, read_rate = 200;
    bool mixed = false, raw = false, ok = true;
    const char *base = "/tmp";
    int opt;
    while (ok && (opt = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_COMMANDS: ok = s_int ("--commands", optarg, 1, INT_MAX / 2, &commands); break;
        case O_INFLIGHT: ok = s_int ("--inflight", optarg, 1, 100000, &inflight); break;
        case O_ROWS: ok = s_int ("--rows", optarg, 1, 1000, &rows); break;
        case O_DIR: base = optarg; break;
        case O_MIXED: mixed = true; break;
        case O_RAW: raw = true; break;
        case O_IMPORTERS: ok = s_int ("--importers", optarg, 1, 64, &importers); break;
        case O_IMPORT_ROWS: ok = s_int ("--import-rows", optarg, 1, 9999 * S_CHUNK_ROWS, &import_rows); break;
        case O_READ_RATE: ok = s_int ("--read-rate", optarg, 1, 100000, &read_rate); break;
        case 'h': s_usage (stdout); return 0;
        default: ok = false; break; /* getopt_long said what */
        }
    }
    if (!ok || optind < argc) {
        s_usage (stderr);
        return 2;
    }
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/pmbench.XXXXXX", base);
    if (!mkdtemp (dir)) {
        fprintf (stderr, "pm-bench: mkdtemp in %s: %s\n", base, strerror (errno));
        return 1;
    }
    if (raw) { /* only the machine's ceiling, for other benches to read as a ratio */
        printf ("raw LMDB, one put per durable commit: %.0f commits/s\n", s_lmdb_rate (dir, "raw", S_LMDB_COMMITS));
        rmdir (dir);
        return 0;
    }
    int code = 1;
    s_commands_t run = { 0 };
    s_mixed_t mix = { .importers = importers, .rows = import_rows, .rate = read_rate };
    void *zctx = zmq_ctx_new ();
    pm_client_t *c = NULL;
    double lmdb_before = s_lmdb_rate (dir, "raw-before", S_LMDB_COMMITS), lmdb_after = 0;
    pid_t pid = s_intake_start (dir);
    char ep[PATH_MAX + 32];
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.cmd", dir);
    c = pm_client_new (zctx, ep);
    Pm__V1__Reply *r = pid > 0 && c ? s_call (c, "ops.ping", 10000, 200) : NULL;
    if (!r) {
        fprintf (stderr, "pm-bench: intake did not start\n");
        goto fail;
    }
    pm__v1__reply__free_unpacked (r, NULL);

    if (mixed) {
        if (!s_run_mixed (zctx, ep, &mix))
            goto fail;
        code = mix.failed || mix.reader.failed || mix.reader.unanswered
               || mix.created != (uint64_t) importers * (uint64_t) import_rows;
    }
    else {
        s_run_commands (c, commands, inflight, rows, &run);
        code = run.failed || run.done < commands ? 1 : 0;
    }

    /* the daemon's own view: commands per commit */
    double batch_mean = 0, commit_p50 = 0, turn_max = 0, read_p99 = 0;
    r = s_call (c, "ops.metrics", 10000, 2000);
    if (r && r->body_case == PM__V1__REPLY__BODY_OPS_METRICS) {
        for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
            Pm__V1__Metric *m = r->ops_metrics->metrics[i];
            if (strcmp (m->name, "pm_batch_messages") == 0)
                batch_mean = m->count ? m->value / (double) m->count : 0;
            if (strcmp (m->name, "pm_commit_us") == 0)
                commit_p50 = m->p50;
            if (strcmp (m->name, "pm_loop_turn_us") == 0)
                turn_max = m->max;
            if (strcmp (m->name, "pm_read_us") == 0)
                read_p99 = m->p99;
        }
    }
    if (r)
        pm__v1__reply__free_unpacked (r, NULL);
    s_intake_stop (pid);
    pid = -1;
    lmdb_after = s_lmdb_rate (dir, "raw-after", S_LMDB_COMMITS);
    double lmdb = (lmdb_before + lmdb_after) / 2;

    printf ("raw LMDB, one put per durable commit: %.0f commits/s before the run, %.0f after (mean %.0f)\n",
            lmdb_before, lmdb_after, lmdb);
    if (mixed) {
        s_print_mixed (&mix);
        printf ("  intake: %.0f commands per commit on average, commit p50 <= %.0f us; longest loop turn <= %.0f us; "
                "reads inside intake p99 <= %.0f us\n",
                batch_mean, commit_p50, turn_max, read_p99);
    }
    else {
        double rate = run.secs > 0 ? run.done / run.secs : 0;
        printf ("intake.import (%d row%s/command, %d in flight): %.0f durable commands/s  (%.1fx one commit per "
                "command at the raw LMDB mean)\n",
                rows, rows == 1 ? "" : "s", inflight, rate, lmdb > 0 ? rate / lmdb : 0);
        printf ("  %d commands in %.2f s, %d not OK; client latency p50 %.2f ms, p99 %.2f ms; "
                "%.0f commands per commit on average, commit p50 <= %.0f us\n",
                run.done, run.secs, run.failed, s_ms_at (run.lat_us, (size_t) run.done, 0.50),
                s_ms_at (run.lat_us, (size_t) run.done, 0.99), batch_mean, commit_p50);
    }
fail:
    free (run.lat_us);
    free (mix.chunk_lat_us);
    free (mix.reader.lat_us);
    s_intake_stop (pid);
    pm_client_destroy (&c);
    zmq_ctx_term (zctx);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return code;
}
