/* pm-bench - durable command throughput of one daemon, beside the raw LMDB
 * durable-commit rate measured in the same run on the same disk.
 *
 *   pm-bench [--commands N] [--inflight K] [--rows R] [--dir DIR]
 *
 * It starts pm-intake (from the build tree next to this binary) in a temp
 * PM_HOME, keeps K intake.import commands in flight on one DEALER, each a
 * small command of R rows (a new unit each), and counts replies: every reply
 * is sent only after its command is durable (group commit). */
#define _GNU_SOURCE
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/store.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (p);
}

/* Raw LMDB: one small put per durable commit, as one-commit-per-command would do. */
static double
s_lmdb_rate (const char *dir, int commits)
{
    char path[PATH_MAX + 8];
    snprintf (path, sizeof path, "%s/raw", dir);
    pm_store_t *s = pm_store_open (path, 64u << 20, NULL);
    if (!s)
        return 0;
    int64_t t0 = pm_mono_us ();
    for (int i = 0; i < commits; i++) {
        pm_txn_t t;
        unsigned char k[8];
        pm_u64_be ((uint64_t) i, k);
        pm_txn_begin (&t, s, NULL);
        pm_txn_put (&t, PM_DB_META, k, 8, "0123456789abcdef0123456789abcdef", 32);
        if (pm_txn_commit (&t) != PM_OK)
            return 0;
    }
    double secs = (double) (pm_mono_us () - t0) / 1e6;
    pm_store_destroy (&s);
    return commits / secs;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    int commands = 200000, inflight = 512, rows = 1;
    const char *base = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--commands") == 0 && i + 1 < argc)
            commands = atoi (argv[++i]);
        else if (strcmp (argv[i], "--inflight") == 0 && i + 1 < argc)
            inflight = atoi (argv[++i]);
        else if (strcmp (argv[i], "--rows") == 0 && i + 1 < argc)
            rows = atoi (argv[++i]);
        else if (strcmp (argv[i], "--dir") == 0 && i + 1 < argc)
            base = argv[++i];
        else {
            fprintf (stderr, "usage: pm-bench [--commands N] [--inflight K] [--rows R] [--dir DIR]\n");
            return 2;
        }
    }
    if (commands < 1 || inflight < 1 || rows < 1 || rows > 1000) {
        fprintf (stderr, "pm-bench: --commands, --inflight >= 1 and 1 <= --rows <= 1000\n");
        return 2;
    }
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/pmbench.XXXXXX", base);
    if (!mkdtemp (dir)) {
        fprintf (stderr, "pm-bench: mkdtemp in %s: %s\n", base, strerror (errno));
        return 1;
    }

    double lmdb = s_lmdb_rate (dir, 2000);

    /* the daemon, from the build tree */
    char self[PATH_MAX], daemon[PATH_MAX + 64];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
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
    char ep[PATH_MAX + 32];
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.cmd", dir);
    pm_client_t *c = pm_client_new (NULL, ep);
    Pm__V1__Request ping = PM__V1__REQUEST__INIT;
    ping.id = "ping";
    ping.method = "ops.ping";
    Pm__V1__Reply *r = NULL;
    if (pm_client_call (c, &ping, 10000, 200, &r) != PM_OK) {
        fprintf (stderr, "pm-bench: intake did not start (%s)\n", daemon);
        kill (pid, SIGKILL);
        return 1;
    }
    pm__v1__reply__free_unpacked (r, NULL);

    /* one prepared row set, units renamed per command */
    Pm__V1__ImportRow *rowv = calloc ((size_t) rows, sizeof *rowv);
    Pm__V1__ImportRow **rowp = calloc ((size_t) rows, sizeof *rowp);
    char (*unit)[16] = calloc ((size_t) rows, 16);
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
        rowp[i] = &rowv[i];
    }
    int64_t *sent_us = calloc ((size_t) commands, sizeof *sent_us);
    int64_t *lat = calloc ((size_t) commands, sizeof *lat);
    int sent = 0, done = 0, failed = 0;
    char building[32], id[40];
    int64_t t0 = pm_mono_us ();
    while (done < commands) {
        while (sent < commands && sent - done < inflight) {
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            Pm__V1__IntakeImportRequest body = PM__V1__INTAKE_IMPORT_REQUEST__INIT;
            snprintf (id, sizeof id, "bench-%010d", sent); /* time-ordered, like ULIDs */
            snprintf (building, sizeof building, "%06d", sent);
            for (int i = 0; i < rows; i++) {
                rowv[i].building = building;
                snprintf (unit[i], 16, "%04d", i);
            }
            req.id = id;
            req.method = "intake.import";
            body.batch_id = "bench";
            body.n_rows = (size_t) rows;
            body.rows = rowp;
            pm_body_set (&req.base, "intake.import", &body.base);
            sent_us[sent] = pm_mono_us ();
            if (pm_client_send (c, &req) != PM_OK)
                break;
            sent++;
        }
        if (pm_client_recv (c, 10000, &r) != PM_OK) {
            fprintf (stderr, "pm-bench: no reply within 10 s after %d of %d\n", done, commands);
            break;
        }
        int k = atoi (r->id + 6);
        if (k >= 0 && k < commands)
            lat[done] = pm_mono_us () - sent_us[k];
        if (r->status != PM__V1__STATUS__OK || !r->intake_import || r->intake_import->created != (uint32_t) rows)
            failed++;
        pm__v1__reply__free_unpacked (r, NULL);
        done++;
    }
    double secs = (double) (pm_mono_us () - t0) / 1e6;
    qsort (lat, (size_t) done, sizeof *lat, s_cmp);

    /* the daemon's own view: commands per commit */
    Pm__V1__Request mreq = PM__V1__REQUEST__INIT;
    mreq.id = "metrics";
    mreq.method = "ops.metrics";
    double batch_p50 = 0, commit_p50 = 0;
    if (pm_client_call (c, &mreq, 10000, 2000, &r) == PM_OK && r->ops_metrics) {
        for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
            Pm__V1__Metric *m = r->ops_metrics->metrics[i];
            if (strcmp (m->name, "pm_batch_messages") == 0)
                batch_p50 = m->count ? m->value / (double) m->count : 0;
            if (strcmp (m->name, "pm_commit_us") == 0)
                commit_p50 = m->p50;
        }
        pm__v1__reply__free_unpacked (r, NULL);
    }
    pm_client_destroy (&c);
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);

    double rate = done / secs;
    printf ("raw LMDB, one put per durable commit:   %8.0f commits/s\n", lmdb);
    printf ("intake.import (%d row%s/command, %d in flight): %8.0f durable commands/s  (%.1fx one-commit-per-command)\n",
            rows, rows == 1 ? "" : "s", inflight, rate, lmdb > 0 ? rate / lmdb : 0);
    printf ("  %d commands in %.2f s, %d not OK; client latency p50 %.2f ms, p99 %.2f ms; "
            "%.0f commands per commit on average, commit p50 <= %.0f us\n",
            done, secs, failed, done ? lat[done / 2] / 1000.0 : 0, done ? lat[done * 99 / 100] / 1000.0 : 0,
            batch_p50, commit_p50);
    free (sent_us);
    free (lat);
    free (rowv);
    free (rowp);
    free (unit);
    return failed || done < commands ? 1 : 0;
}
