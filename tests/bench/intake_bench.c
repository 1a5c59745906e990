/* intake-bench - the move-in case at estate scale: issue 7's targets.
 *
 *   intake-bench [--units N] [--progress-reads N] [--dir DIR]
 *
 * Starts pm-intake (from the build tree next to this binary) in a temp
 * PM_HOME with the manual clock allowed, imports one estate of N units (20
 * buildings, 25 floors, N/500 units a floor; default 10,000), sends the
 * move-in notice to all of it, and then measures, each from the request's
 * send to its durable reply:
 *
 *   - intake.schedule.plan of every unit (10 days, 16 slots a day, 8
 *     counters x 8): target under 1 s for 10,000 units; then the same plan
 *     again (nothing moves);
 *   - intake.progress of the estate, read --progress-reads times one after
 *     another (p50, p99, max): target under 10 ms for 10,000 units.
 *
 * Client and daemon share the machine; figures vary with its load. */
#define _GNU_SOURCE
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/json.h"
#include "pm/mem.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_CHUNK 1000
#define S_TIMEOUT_MS 120000

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;
    return remove (p);
}

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
    setenv ("PM_GENERAL_MANUAL_CLOCK", "true", 1);
    setenv ("PM_INTAKE_MAP_SIZE_MB", "1024", 1);
    pid_t pid = fork ();
    if (pid == 0) {
        execl (daemon, "pm-intake", (char *) NULL);
        fprintf (stderr, "intake-bench: cannot run %s: %s\n", daemon, strerror (errno));
        _exit (127);
    }
    return pid;
}

/* Calls method with a body from JSON; the reply (caller frees) or NULL. *us: the round trip. */
static Pm__V1__Reply *
s_call (pm_client_t *c, const char *method, const char *json, int64_t *us)
{
    const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, method);
    ProtobufCMessage *body = NULL;
    if (json) {
        cJSON *j = cJSON_Parse (json);
        char *err = NULL;
        body = j ? pm_json_to_msg (f->descriptor, j, &err) : NULL;
        cJSON_Delete (j);
        if (!body) {
            fprintf (stderr, "intake-bench: %s body: %s\n", method, err ? err : "bad JSON");
            free (err);
            return NULL;
        }
    }
    char id[27];
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "intake-bench";
    if (body)
        pm_body_set (&req.base, method, body);
    Pm__V1__Reply *r = NULL;
    int64_t t0 = pm_mono_us ();
    int rc = pm_client_call (c, &req, S_TIMEOUT_MS, S_TIMEOUT_MS, &r);
    if (us)
        *us = pm_mono_us () - t0;
    if (body)
        protobuf_c_message_free_unpacked (body, NULL);
    if (rc != PM_OK) {
        fprintf (stderr, "intake-bench: %s: no answer\n", method);
        return NULL;
    }
    if (r->status != PM__V1__STATUS__OK) {
        fprintf (stderr, "intake-bench: %s: %s: %s\n", method, pm_status_name (r->status), r->message);
        pm__v1__reply__free_unpacked (r, NULL);
        return NULL;
    }
    return r;
}

/* Imports the estate: N units, S_CHUNK rows a request, 4 in flight. */
static bool
s_import (pm_client_t *c, int units)
{
    int per_floor = units / 500 > 0 ? units / 500 : 1;
    pm_inflight_t *fl = pm_inflight_new (S_TIMEOUT_MS);
    int sent = 0, done = 0, n = 0;
    bool ok = true;
    static const char *const cols[] = { "estate_id", "estate_name", "building", "unit", "floor", "area_m2",
                                        "owner_name", "phone", "email", "id_number" };
    while (ok && (done < sent || n < units)) {
        while (n < units && pm_inflight_size (fl) < 4) {
            int k = units - n < S_CHUNK ? units - n : S_CHUNK;
            Pm__V1__ImportRow *rows = pm_xcalloc ((size_t) k, sizeof *rows);
            Pm__V1__ImportRow **rowp = pm_xcalloc ((size_t) k, sizeof *rowp);
            char (*text)[4][24] = pm_xcalloc ((size_t) k, sizeof *text);
            for (int i = 0; i < k; i++, n++) {
                int b = n / (25 * per_floor), fl_no = n / per_floor % 25 + 1, u = n % per_floor + 1;
                pm__v1__import_row__init (&rows[i]);
                snprintf (text[i][0], 24, "%d", b + 1);
                snprintf (text[i][1], 24, "%d%02d", fl_no, u);
                snprintf (text[i][2], 24, "%d", fl_no);
                snprintf (text[i][3], 24, "139%08d", n);
                rows[i].line = (uint32_t) n + 2;
                rows[i].estate_id = "E01";
                rows[i].estate_name = "翠湖花园";
                rows[i].building = text[i][0];
                rows[i].unit = text[i][1];
                rows[i].floor = text[i][2];
                rows[i].area_m2 = "89.50";
                rows[i].owner_name = "业主";
                rows[i].phone = text[i][3];
                rows[i].id_number = "11010519491231002X";
                rowp[i] = &rows[i];
            }
            Pm__V1__IntakeImportRequest body = PM__V1__INTAKE_IMPORT_REQUEST__INIT;
            body.batch_id = "bench:intake";
            body.rows = rowp;
            body.n_rows = (size_t) k;
            body.columns = (char **) cols;
            body.n_columns = sizeof cols / sizeof cols[0];
            char id[27];
            pm_request_id (id);
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            req.id = id;
            req.method = "intake.import";
            req.actor = "intake-bench";
            pm_body_set (&req.base, "intake.import", &body.base);
            ok = pm_inflight_add (fl, c, &req, S_TIMEOUT_MS, NULL) == PM_OK;
            sent++;
            free (rows);
            free (rowp);
            free (text);
        }
        Pm__V1__Reply *r = NULL;
        void *user;
        if (pm_inflight_wait (fl, -1, &r, &user) == PM_OK) {
            done++;
            if (!r || r->status != PM__V1__STATUS__OK || r->intake_import->rejected) {
                fprintf (stderr, "intake-bench: import chunk: %s\n", r ? r->message : "no answer");
                ok = false;
            }
            if (r)
                pm__v1__reply__free_unpacked (r, NULL);
        }
    }
    pm_inflight_destroy (&fl);
    return ok;
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
    static const struct option opts[] = {
        { "units", required_argument, NULL, 'u' },
        { "progress-reads", required_argument, NULL, 'r' },
        { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int units = 10000, reads = 1000, opt;
    const char *base = "/tmp";
    while ((opt = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'u')
            units = atoi (optarg);
        else if (opt == 'r')
            reads = atoi (optarg);
        else if (opt == 'd')
            base = optarg;
        else {
            fprintf (opt == 'h' ? stdout : stderr,
                     "usage: intake-bench [--units N] [--progress-reads N] [--dir DIR]\n"
                     "  --units N           units of the estate (default 10000)\n"
                     "  --progress-reads N  intake.progress reads timed (default 1000)\n"
                     "  --dir DIR           where the temp PM_HOME goes (default /tmp)\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (units < 1 || units > 1000000 || reads < 1) {
        fprintf (stderr, "intake-bench: --units 1 to 1000000, --progress-reads at least 1\n");
        return 2;
    }
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/intakebench.XXXXXX", base);
    if (!mkdtemp (dir)) {
        fprintf (stderr, "intake-bench: mkdtemp in %s: %s\n", base, strerror (errno));
        return 1;
    }
    int code = 1;
    void *zctx = zmq_ctx_new ();
    pid_t pid = s_intake_start (dir);
    char ep[PATH_MAX + 32];
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.cmd", dir);
    pm_client_t *c = pm_client_new (zctx, ep);
    Pm__V1__Reply *r = NULL;
    int64_t us, plan_us = 0, replan_us = 0, notice_us = 0, import_us;
    int64_t *lat = pm_xcalloc ((size_t) reads, sizeof *lat);
    if (pid <= 0 || !c || !(r = s_call (c, "ops.ping", NULL, NULL)))
        goto fail;
    pm__v1__reply__free_unpacked (r, NULL);
    int64_t t0 = pm_mono_us ();
    if (!s_import (c, units))
        goto fail;
    import_us = pm_mono_us () - t0;
    if (!(r = s_call (c, "ops.clock", "{\"set_to\":\"2026-12-01T00:00:00Z\"}", NULL)))
        goto fail;
    pm__v1__reply__free_unpacked (r, NULL);
    if (!(r = s_call (c, "intake.notice.send",
                      "{\"estate_id\":\"E01\",\"window\":\"2026-12-05 to 2026-12-20\",\"place\":\"1号楼\"}",
                      &notice_us)))
        goto fail;
    pm__v1__reply__free_unpacked (r, NULL);
    char plan[1024];
    int days = (units + 1023) / 1024;
    size_t o = (size_t) snprintf (plan, sizeof plan, "{\"estate_id\":\"E01\",\"days\":[");
    for (int d = 0; d < days && o < sizeof plan - 200; d++)
        o += (size_t) snprintf (plan + o, sizeof plan - o, "%s{\"date\":\"2026-12-%02d\"}", d ? "," : "", 5 + d % 25);
    snprintf (plan + o, sizeof plan - o, "],\"opens\":\"09:00\",\"closes\":\"17:00\",\"slot_minutes\":30,"
                                        "\"counters\":8,\"per_counter\":8,\"place\":\"1号楼一层\"}");
    if (!(r = s_call (c, "intake.schedule.plan", plan, &plan_us)))
        goto fail;
    printf ("intake.schedule.plan of %d units: %.1f ms (target < 1000 ms): %s\n", units, plan_us / 1000.0,
            r->message);
    pm__v1__reply__free_unpacked (r, NULL);
    if (!(r = s_call (c, "intake.schedule.plan", plan, &replan_us)))
        goto fail;
    printf ("the same plan again: %.1f ms: %s\n", replan_us / 1000.0, r->message);
    pm__v1__reply__free_unpacked (r, NULL);
    for (int i = 0; i < reads; i++) {
        if (!(r = s_call (c, "intake.progress", "{\"estate_id\":\"E01\"}", &us)))
            goto fail;
        lat[i] = us;
        if (i == 0)
            printf ("intake.progress: %s\n", r->message);
        pm__v1__reply__free_unpacked (r, NULL);
    }
    qsort (lat, (size_t) reads, sizeof *lat, s_cmp);
    printf ("intake.progress of %d units, %d reads: p50 %.2f ms, p99 %.2f ms, max %.2f ms (target < 10 ms)\n", units,
            reads, lat[reads / 2] / 1000.0, lat[(size_t) (reads * 0.99)] / 1000.0, lat[reads - 1] / 1000.0);
    printf ("(import of %d units: %.0f rows/s; notice to all: %.1f ms)\n", units, units / (import_us / 1e6),
            notice_us / 1000.0);
    code = plan_us < 1000000 && lat[(size_t) (reads * 0.99)] < 10000 ? 0 : 3;
fail:
    if (code == 1)
        fprintf (stderr, "intake-bench: failed (intake log level warn; see stderr above)\n");
    free (lat);
    pm_client_destroy (&c);
    if (pid > 0) {
        kill (pid, SIGTERM);
        waitpid (pid, NULL, 0);
    }
    zmq_ctx_term (zctx);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return code;
}
