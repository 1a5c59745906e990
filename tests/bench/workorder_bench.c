/* workorder-bench - workorder's performance targets, measured:
 *
 *   1. durable order transitions per second: N orders through pm-workorder's
 *      ROUTER, K commands in flight, phase by phase (create, which also
 *      dispatches automatically; start; done; confirm, which also archives).
 *      Every reply is sent after its command is durable (group commit), and
 *      each transition is one committed event, so events/s = transitions/s.
 *   2. the cost of 100,000 open orders with armed SLA timers: the daemon's
 *      anonymous memory (RssAnon in /proc/PID/status: LMDB's map is file
 *      backed and shows as RssFile) before and after creating them;
 *   3. the timer tick when nothing is due: on the daemon's own store (the
 *      process stopped), the runtime's timer pass (pm_daemon_fire_timers:
 *      one read transaction, one range lookup by due time) and the arming
 *      lookup (pm_timer_next_due), timed many times over.
 *
 *   workorder-bench [--orders N] [--open N] [--inflight K] [--dir DIR]
 *
 * Units (intake's events) and technicians are loaded into the store in this
 * process first, through the runtime's pm_daemon_apply, as the subscription
 * and workorder.staff.set would; then pm-workorder (from the build tree next
 * to this binary) is started on it in a temp PM_HOME under DIR. */
#define _GNU_SOURCE
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/config.h"
#include "pm/daemon.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"
#include "workorder.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_UNITS 1000
#define S_TECHS 40
#define S_ESTATE "B01"
#define S_RETRY_MS 10000
#define S_DEADLINE_MS 60000

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (p);
}

/* Raw LMDB: one small put per durable commit (what one commit per command
 * would cost on this disk now), in a store of its own under dir. Commits/s. */
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

static pm_daemon_t *
s_inprocess (void)
{
    char *err = NULL;
    pm_config_t *cfg = pm_config_load (NULL, &err);
    if (!cfg) {
        fprintf (stderr, "workorder-bench: config: %s\n", err ? err : "?");
        free (err);
        return NULL;
    }
    return pm_daemon_new (&workorder_spec, cfg, NULL);
}

/* --- 0. units and technicians, in this process -------------------------------------------- */

static bool
s_preload (void)
{
    pm_daemon_t *d = s_inprocess ();
    if (!d)
        return false;
    enum { CHUNK = 500 };
    static Pm__V1__Event ev[CHUNK];
    static Pm__V1__Unit unit[CHUNK];
    static Pm__V1__KeysHanded kh[CHUNK];
    static char uid[CHUNK][32], eid[CHUNK][32];
    pm_batch_item_t items[CHUNK];
    uint64_t seq = 0;
    bool ok = true;
    for (int phase = 0; phase < 2 && ok; phase++) /* registered, then keys handed */
        for (int first = 0; first < S_UNITS && ok; first += CHUNK) {
            for (int i = 0; i < CHUNK; i++) {
                int u = first + i;
                snprintf (uid[i], sizeof uid[i], "%s/%d-%04d", S_ESTATE, 1 + u / 100, u % 100 + 101);
                pm__v1__unit__init (&unit[i]);
                unit[i].unit_id = uid[i];
                unit[i].estate_id = S_ESTATE;
                unit[i].building = "1";
                unit[i].area_cm2 = 8950;
                pm__v1__event__init (&ev[i]);
                ev[i].source = "intake";
                ev[i].seq = ++seq;
                snprintf (eid[i], sizeof eid[i], "intake:%" PRIu64, seq);
                ev[i].id = eid[i];
                ev[i].estate_id = S_ESTATE;
                ev[i].unit_id = uid[i];
                if (phase == 0) {
                    ev[i].type = "intake.unit.registered";
                    ev[i].payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
                    ev[i].unit = &unit[i];
                }
                else {
                    pm__v1__keys_handed__init (&kh[i]);
                    kh[i].unit_id = uid[i];
                    kh[i].estate_id = S_ESTATE;
                    kh[i].unit = &unit[i];
                    ev[i].type = "intake.keys.handed";
                    ev[i].payload_case = PM__V1__EVENT__PAYLOAD_KEYS_HANDED;
                    ev[i].keys_handed = &kh[i];
                }
                items[i] = (pm_batch_item_t) { NULL, &ev[i], NULL };
            }
            ok = pm_daemon_apply (d, items, CHUNK) == PM_OK;
        }
    /* technicians covering the bench estate, every skill */
    char *skills[] = { "water", "electric", "elevator", "civil", "general" }, *estates[] = { S_ESTATE };
    for (int i = 0; i < S_TECHS && ok; i++) {
        char id[16], name[32], rid[32];
        snprintf (id, sizeof id, "B%03d", i);
        snprintf (name, sizeof name, "技工%d", i);
        snprintf (rid, sizeof rid, "bench-staff-%03d", i);
        Pm__V1__WorkorderStaffSetRequest b = PM__V1__WORKORDER_STAFF_SET_REQUEST__INIT;
        b.technician = id;
        b.name = name;
        b.team = i < S_TECHS / 2 ? "BA" : "BB";
        b.role = i % (S_TECHS / 2) == 0 ? "lead" : "technician";
        b.estates = estates;
        b.n_estates = 1;
        b.skills = skills;
        b.n_skills = 5;
        Pm__V1__Request req = PM__V1__REQUEST__INIT;
        req.id = rid;
        req.method = "workorder.staff.set";
        pm_body_set (&req.base, req.method, &b.base);
        pm_batch_item_t it = { &req, NULL, NULL };
        ok = pm_daemon_apply (d, &it, 1) == PM_OK && it.reply->status == PM__V1__STATUS__OK;
    }
    pm_daemon_destroy (&d);
    return ok;
}

/* --- the process ---------------------------------------------------------------------------- */

static pid_t
s_start (void)
{
    char self[PATH_MAX], daemon[PATH_MAX + 64];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr (self, '/') = '\0';
    snprintf (daemon, sizeof daemon, "%s/../../services/workorder/pm-workorder", self);
    pid_t pid = fork ();
    if (pid == 0) {
        execl (daemon, "pm-workorder", (char *) NULL);
        fprintf (stderr, "workorder-bench: cannot run %s: %s\n", daemon, strerror (errno));
        _exit (127);
    }
    return pid;
}

static void
s_stop (pid_t pid)
{
    if (pid <= 0)
        return;
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
}

/* A line "Key:   123 kB" of /proc/pid/status, in KiB; -1 when absent. */
static long
s_status_kb (pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen (path, "r");
    long v = -1;
    size_t kl = strlen (key);
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, key, kl) == 0 && line[kl] == ':')
            v = strtol (line + kl + 1, NULL, 10);
    if (f)
        fclose (f);
    return v;
}

/* The process's CPU time (user + system) in seconds. */
static double
s_cpu (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    unsigned long ut = 0, st = 0;
    if (f) {
        char buf[1024];
        size_t n = fread (buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        char *p = strrchr (buf, ')'); /* fields after the command name */
        if (p && sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            ut = st = 0;
        fclose (f);
    }
    return (double) (ut + st) / (double) sysconf (_SC_CLK_TCK);
}

static Pm__V1__Reply *
s_call (pm_client_t *c, const char *method, ProtobufCMessage *body, int timeout_ms)
{
    char id[27];
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "workorder-bench";
    if (body)
        pm_body_set (&req.base, method, body);
    Pm__V1__Reply *r = NULL;
    return pm_client_call (c, &req, timeout_ms, 500, &r) == PM_OK ? r : NULL;
}

static double
s_metric (pm_client_t *c, const char *name, const char *labels)
{
    Pm__V1__Reply *r = s_call (c, "ops.metrics", NULL, 30000);
    double v = -1;
    for (size_t i = 0; r && r->body_case == PM__V1__REPLY__BODY_OPS_METRICS && i < r->ops_metrics->n_metrics; i++)
        if (strcmp (r->ops_metrics->metrics[i]->name, name) == 0
            && strcmp (r->ops_metrics->metrics[i]->labels, labels) == 0)
            v = r->ops_metrics->metrics[i]->value;
    if (r)
        pm__v1__reply__free_unpacked (r, NULL);
    return v;
}

/* pm_batch_messages: its sum and count (commands per commit = sum / count). */
static void
s_batch (pm_client_t *c, double *sum, double *count)
{
    *sum = *count = 0;
    Pm__V1__Reply *r = s_call (c, "ops.metrics", NULL, 30000);
    for (size_t i = 0; r && r->body_case == PM__V1__REPLY__BODY_OPS_METRICS && i < r->ops_metrics->n_metrics; i++)
        if (strcmp (r->ops_metrics->metrics[i]->name, "pm_batch_messages") == 0) {
            *sum = r->ops_metrics->metrics[i]->value;
            *count = (double) r->ops_metrics->metrics[i]->count;
        }
    if (r)
        pm__v1__reply__free_unpacked (r, NULL);
}

/* --- 1. a phase: one command per order, K in flight --------------------------------------- */

typedef enum { P_CREATE, P_START, P_DONE, P_CONFIRM } s_phase_t;

static const char *const s_methods[] = { "workorder.create", "workorder.start", "workorder.done",
                                         "workorder.confirm" };

typedef struct {
    int done, failed;
    double secs, cpu;    /* wall time; the daemon's CPU time */
    uint64_t events;
    double batch_mean;   /* commands per commit over the phase */
} s_result_t;

static pid_t s_pid;

/* Runs the phase on orders first+1 .. first+n (WO-B01-<number>). */
static s_result_t
s_phase (pm_client_t *c, s_phase_t p, int first, int n, int inflight, const char *category)
{
    s_result_t res = { 0 };
    double seq0 = s_metric (c, "pm_outbox_last_seq", ""), cpu0 = s_cpu (s_pid);
    double bsum0, bn0;
    s_batch (c, &bsum0, &bn0);
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    int sent = 0;
    char id[40], order[32], unit[32];
    int64_t t0 = pm_mono_us ();
    while (res.done + res.failed < n) {
        while (sent < n && pm_inflight_size (fl) < (size_t) inflight) {
            int k = first + sent;
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            snprintf (id, sizeof id, "wb-%d-%010d", (int) p, k); /* time-ordered, like ULIDs */
            snprintf (order, sizeof order, "WO-%s-%06d", S_ESTATE, k + 1);
            req.id = id;
            req.method = (char *) s_methods[p];
            req.actor = "workorder-bench";
            Pm__V1__WorkorderCreateRequest cb = PM__V1__WORKORDER_CREATE_REQUEST__INIT;
            Pm__V1__WorkorderStartRequest sb = PM__V1__WORKORDER_START_REQUEST__INIT;
            Pm__V1__WorkorderDoneRequest db = PM__V1__WORKORDER_DONE_REQUEST__INIT;
            Pm__V1__WorkorderConfirmRequest fb = PM__V1__WORKORDER_CONFIRM_REQUEST__INIT;
            switch (p) {
            case P_CREATE:
                snprintf (unit, sizeof unit, "%s/%d-%04d", S_ESTATE, 1 + (k % S_UNITS) / 100, k % 100 + 101);
                cb.unit_id = unit;
                cb.kind = "repair";
                cb.category = (char *) category;
                cb.description = "卫生间漏水";
                cb.channel = "app";
                pm_body_set (&req.base, req.method, &cb.base);
                break;
            case P_START:
                sb.order_id = order;
                pm_body_set (&req.base, req.method, &sb.base);
                break;
            case P_DONE:
                db.order_id = order;
                pm_body_set (&req.base, req.method, &db.base);
                break;
            case P_CONFIRM:
                fb.order_id = order;
                fb.satisfaction = 1 + (uint32_t) k % 5;
                pm_body_set (&req.base, req.method, &fb.base);
                break;
            }
            if (pm_inflight_add (fl, c, &req, S_DEADLINE_MS, NULL) != PM_OK) {
                fprintf (stderr, "workorder-bench: cannot send: %s\n", zmq_strerror (errno));
                res.failed += n - sent;
                goto done;
            }
            sent++;
        }
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, -1, &r, &user);
        if (rc == PM_EIO && errno == EINTR)
            continue;
        if (rc != PM_OK) {
            fprintf (stderr, "workorder-bench: receiving: %s\n", pm_strerror (rc));
            res.failed += n - res.done - res.failed;
            break;
        }
        if (!r) {
            res.failed++;
            continue;
        }
        if (r->status == PM__V1__STATUS__OK)
            res.done++;
        else {
            if (res.failed++ < 3)
                fprintf (stderr, "workorder-bench: %s: %s: %s\n", s_methods[p], pm_status_name (r->status),
                         r->message);
        }
        pm__v1__reply__free_unpacked (r, NULL);
    }
done:
    res.secs = (double) (pm_mono_us () - t0) / 1e6;
    pm_inflight_destroy (&fl);
    res.cpu = s_cpu (s_pid) - cpu0;
    res.events = (uint64_t) (s_metric (c, "pm_outbox_last_seq", "") - seq0);
    double bsum1, bn1;
    s_batch (c, &bsum1, &bn1);
    res.batch_mean = bn1 > bn0 ? (bsum1 - bsum0) / (bn1 - bn0) : 0;
    return res;
}

static void
s_print (const char *what, const s_result_t *r)
{
    printf ("  %-24s %7d commands in %6.2f s: %7.0f commands/s, %7.0f transitions/s (%" PRIu64
            " events); daemon CPU %.0f%%, %.0f us/command, %.0f commands/commit%s\n",
            what, r->done, r->secs, r->secs > 0 ? r->done / r->secs : 0, r->secs > 0 ? r->events / r->secs : 0,
            r->events, r->secs > 0 ? 100 * r->cpu / r->secs : 0, r->done ? 1e6 * r->cpu / r->done : 0, r->batch_mean,
            r->failed ? " FAILURES" : "");
}

/* --- 3. the tick, in this process on the stopped daemon's store --------------------------- */

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static void
s_tick (int rounds)
{
    pm_log_init ("workorder-bench", PM_LOG_WARN);
    pm_daemon_t *d = s_inprocess ();
    if (!d) {
        fprintf (stderr, "workorder-bench: cannot open the store for the tick\n");
        return;
    }
    size_t timers = pm_store_count (pm_daemon_store (d), PM_DB_TIMER_INDEX);
    int64_t *fire = pm_xcalloc ((size_t) rounds, sizeof *fire), *next = pm_xcalloc ((size_t) rounds, sizeof *next);
    size_t fired = 0;
    int64_t c0 = pm_mono_us ();
    fired += pm_daemon_fire_timers (d); /* the first pass faults the pages it touches in */
    int64_t cold = pm_mono_us () - c0;
    for (int i = 0; i < rounds; i++) {
        int64_t t0 = pm_mono_us ();
        fired += pm_daemon_fire_timers (d);
        int64_t t1 = pm_mono_us ();
        pm_txn_t t;
        pm_txn_begin_read (&t, pm_daemon_store (d));
        int64_t due = pm_timer_next_due (&t);
        pm_txn_abort (&t);
        int64_t t2 = pm_mono_us ();
        fire[i] = t1 - t0;
        next[i] = t2 - t1;
        (void) due;
    }
    qsort (fire, (size_t) rounds, sizeof *fire, s_cmp);
    qsort (next, (size_t) rounds, sizeof *next, s_cmp);
    printf ("tick with nothing due, %zu durable timers armed (%d rounds, in-process on the daemon's store):\n"
            "  timer pass (pm_daemon_fire_timers)  first (cold pages) %" PRId64 " us; then p50 %" PRId64
            " us, p99 %" PRId64 " us, max %" PRId64 " us; %zu fired\n"
            "  next-due lookup (pm_timer_next_due) p50 %" PRId64 " us, p99 %" PRId64 " us, max %" PRId64 " us\n",
            timers, rounds, cold, fire[rounds / 2], fire[rounds * 99 / 100], fire[rounds - 1], fired, next[rounds / 2],
            next[rounds * 99 / 100], next[rounds - 1]);
    free (fire);
    free (next);
    pm_daemon_destroy (&d);
}

/* --- main ------------------------------------------------------------------------------------ */

static bool
s_int (const char *opt, const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol (s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        fprintf (stderr, "workorder-bench: %s '%s': expected a whole number from %ld to %ld\n", opt, s, min, max);
        return false;
    }
    *out = (int) v;
    return true;
}

int
main (int argc, char **argv)
{
    enum { O_ORDERS = 0x100, O_OPEN, O_INFLIGHT, O_DIR };
    static const struct option opts[] = {
        { "orders", required_argument, NULL, O_ORDERS }, { "open", required_argument, NULL, O_OPEN },
        { "inflight", required_argument, NULL, O_INFLIGHT }, { "dir", required_argument, NULL, O_DIR },
        { "help", no_argument, NULL, 'h' },            { NULL, 0, NULL, 0 },
    };
    int orders = 20000, open = 100000, inflight = 512, opt;
    const char *base = "/tmp";
    bool ok = true;
    while (ok && (opt = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_ORDERS: ok = s_int ("--orders", optarg, 1, 1000000, &orders); break;
        case O_OPEN: ok = s_int ("--open", optarg, 0, 1000000, &open); break;
        case O_INFLIGHT: ok = s_int ("--inflight", optarg, 1, 100000, &inflight); break;
        case O_DIR: base = optarg; break;
        case 'h':
            printf ("usage: workorder-bench [--orders N] [--open N] [--inflight K] [--dir DIR]\n"
                    "  --orders N    orders taken through create, start, done, confirm (default 20000)\n"
                    "  --open N      orders then created and left open with SLA timers (default 100000)\n"
                    "  --inflight K  commands in flight (default 512)\n"
                    "  --dir DIR     where the temp PM_HOME goes (default /tmp)\n");
            return 0;
        default: ok = false; break;
        }
    }
    if (!ok || optind < argc)
        return 2;
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/wobench.XXXXXX", base);
    if (!mkdtemp (dir)) {
        fprintf (stderr, "workorder-bench: mkdtemp in %s: %s\n", base, strerror (errno));
        return 1;
    }
    setenv ("PM_HOME", dir, 1);
    setenv ("PM_GENERAL_LOG_LEVEL", "warn", 1);
    setenv ("PM_WORKORDER_MAP_SIZE_MB", "2048", 1);
    pm_log_init ("workorder-bench", PM_LOG_WARN);
    int code = 1;
    pid_t pid = -1;
    void *zctx = zmq_ctx_new ();
    pm_client_t *c = NULL;
    double lmdb_before = s_lmdb_rate (dir, "raw-before", 500);
    if (!s_preload ()) {
        fprintf (stderr, "workorder-bench: preloading units and technicians failed\n");
        goto out;
    }
    pid = s_pid = s_start ();
    char ep[PATH_MAX + 32];
    snprintf (ep, sizeof ep, "ipc://%s/run/workorder.cmd", dir);
    c = pm_client_new (zctx, ep);
    Pm__V1__Reply *r = pid > 0 && c ? s_call (c, "ops.ping", NULL, 20000) : NULL;
    if (!r) {
        fprintf (stderr, "workorder-bench: pm-workorder did not start\n");
        goto out;
    }
    pm__v1__reply__free_unpacked (r, NULL);

    printf ("workorder-bench: %d units, %d technicians in estate %s (automatic dispatch), %d commands in flight\n",
            S_UNITS, S_TECHS, S_ESTATE, inflight);
    printf ("1. durable order transitions (%d orders, each phase one command per order):\n", orders);
    s_result_t ph[4];
    static const char *const names[] = { "create (+ auto-assign)", "start", "done", "confirm (+ archive)" };
    uint64_t events = 0;
    double secs = 0;
    int failed = 0;
    for (int p = 0; p < 4; p++) {
        ph[p] = s_phase (c, (s_phase_t) p, 0, orders, inflight, "general");
        s_print (names[p], &ph[p]);
        events += ph[p].events;
        secs += ph[p].secs;
        failed += ph[p].failed;
    }
    printf ("  all phases: %" PRIu64 " transitions in %.2f s = %.0f durable transitions/s (target >= 20,000)\n",
            events, secs, secs > 0 ? events / secs : 0);

    long anon0 = s_status_kb (pid, "RssAnon"), file0 = s_status_kb (pid, "RssFile");
    double timers0 = s_metric (c, "workorder_timers", "");
    s_result_t op = { 0 };
    if (open > 0) {
        op = s_phase (c, P_CREATE, orders, open, inflight, "general");
        failed += op.failed;
    }
    long anon1 = s_status_kb (pid, "RssAnon"), file1 = s_status_kb (pid, "RssFile");
    double timers1 = s_metric (c, "workorder_timers", ""), openg = s_metric (c, "workorder_open_orders",
                                                                           "estate=\"" S_ESTATE "\"");
    long anon2 = s_status_kb (pid, "RssAnon");
    printf ("2. %d open orders with armed SLA timers:\n", open);
    s_print ("create (+ auto-assign)", &op);
    printf ("  open orders %.0f, durable timers %.0f (were %.0f)\n", openg, timers1, timers0);
    printf ("  pm-workorder RssAnon %ld KiB before, %ld KiB after (+%ld KiB = %.2f MiB), %ld KiB after ops.metrics; "
            "RssFile (LMDB map, page cache) %ld -> %ld KiB\n",
            anon0, anon1, anon1 - anon0, (double) (anon1 - anon0) / 1024.0, anon2, file0, file1);
    s_stop (pid);
    pid = -1;
    s_tick (2000);
    double lmdb_after = s_lmdb_rate (dir, "raw-after", 500);
    printf ("raw LMDB on this disk, one put per durable commit: %.0f commits/s before, %.0f after\n", lmdb_before,
            lmdb_after);
    code = failed ? 1 : 0;
out:
    s_stop (pid);
    pm_client_destroy (&c);
    zmq_ctx_term (zctx);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return code;
}
