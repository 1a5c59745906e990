/* pm-inspection-bench - inspection's two performance targets (issue 8):
 *
 *   1. recording defects: at least 20,000 inspection.defect.record/s through
 *      the daemon, durable (a reply is sent only after its group commit);
 *   2. inspection.kpi for an estate of 10,000 units answers in under 10 ms.
 *
 *   pm-inspection-bench [--units N] [--defects D] [--inflight K] [--kpi-reads R] [--dir DIR]
 *
 * It starts pm-inspection (from the build tree next to this binary) in a
 * temp PM_HOME under DIR, and plays intake itself (a thread binding intake's
 * command and event endpoints, as the integration tests' FakeUpstream does):
 * N units of estate B01 in buildings of 100, each registered and checked in.
 * Once inspection has applied them, every unit's round 1 is started, then
 * D defects per unit are recorded, unit after unit (the natural order of an
 * inspection day), K commands in flight on one DEALER; the rate counts
 * replies, i.e. defects committed. Then inspection.kpi {B01} is asked R
 * times, one at a time, and its latency reported; then, the daemon stopped,
 * the same store is opened in this process and inspection.kpi timed without
 * sockets (pm_daemon_apply), which is the handler's own cost whatever the
 * machine's scheduling does to a round trip. The raw LMDB durable commit
 * rate of the same disk is printed beside it for context. */
#define _GNU_SOURCE
#include "inspection.h"
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/config.h"
#include "pm/err.h"
#include "pm/log.h"
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_RETRY_MS 5000
#define S_DEADLINE_MS 60000
#define S_PER_BUILDING 100

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (p);
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static double
s_ms_at (const int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t) (p * (double) n + 0.999999);
    return v[i > 0 ? i - 1 : 0] / 1000.0;
}

/* Raw LMDB: one small put per durable commit. Commits/s, 0 on failure. */
static double
s_lmdb_rate (const char *dir, int commits)
{
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/raw", dir);
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

/* --- intake, played by the bench -------------------------------------------- */

typedef struct {
    const char *home;
    int units;
    atomic_bool stop;
    atomic_int ready;   /* 1 bound, -1 failed */
    pthread_t thread;
} s_intake_t;

static void
s_unit_id (char *buf, size_t size, int k)
{
    int b = 1 + k / S_PER_BUILDING;
    snprintf (buf, size, "B01/%d/%d-%04d", b, b, k % S_PER_BUILDING + 101);
}

/* Intake's event seq (from 1): odd = unit k registered, even = unit k checked in. */
static void
s_event (Pm__V1__Event *ev, Pm__V1__Unit *u, Pm__V1__CheckedIn *ci, uint64_t seq, char *id, char *unit_id,
         char *building)
{
    int k = (int) ((seq - 1) / 2);
    s_unit_id (unit_id, 48, k);
    snprintf (building, 16, "%d", 1 + k / S_PER_BUILDING);
    snprintf (id, 32, "intake:%" PRIu64, seq);
    pm__v1__event__init (ev);
    pm__v1__unit__init (u);
    u->unit_id = unit_id;
    u->estate_id = "B01";
    u->estate_name = "Bench Garden";
    u->building = building;
    u->area_cm2 = 8950;
    ev->source = "intake";
    ev->seq = seq;
    ev->id = id;
    ev->at_ms = 1764550000000; /* 2025-12-01 */
    ev->estate_id = "B01";
    ev->unit_id = unit_id;
    if (seq % 2) {
        ev->type = "intake.unit.registered";
        ev->payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
        ev->unit = u;
    } else {
        pm__v1__checked_in__init (ci);
        ci->unit_id = unit_id;
        ci->estate_id = "B01";
        ci->unit = u;
        ev->type = "intake.unit.checked_in";
        ev->payload_case = PM__V1__EVENT__PAYLOAD_CHECKED_IN;
        ev->checked_in = ci;
    }
}

static void
s_intake_answer (void *router, s_intake_t *in)
{
    zmq_msg_t parts[8];
    int n = 0, more = 1;
    while (more && n < 8) {
        zmq_msg_init (&parts[n]);
        if (zmq_msg_recv (&parts[n], router, 0) < 0)
            return;
        more = zmq_msg_more (&parts[n]);
        n++;
    }
    uint64_t last = (uint64_t) in->units * 2;
    Pm__V1__Request *req =
        n >= 2 ? pm__v1__request__unpack (NULL, zmq_msg_size (&parts[n - 1]), zmq_msg_data (&parts[n - 1])) : NULL;
    Pm__V1__Reply rep = PM__V1__REPLY__INIT;
    Pm__V1__EventsReplayReply rr = PM__V1__EVENTS_REPLAY_REPLY__INIT;
    Pm__V1__OpsPingReply pr = PM__V1__OPS_PING_REPLY__INIT;
    enum { MAXB = 1000 };
    static Pm__V1__Event evs[MAXB];
    static Pm__V1__Unit us[MAXB];
    static Pm__V1__CheckedIn cis[MAXB];
    static char ids[MAXB][32], uids[MAXB][48], bs[MAXB][16];
    Pm__V1__Event *evp[MAXB];
    if (req) {
        rep.id = req->id;
        if (!strcmp (req->method, "events.replay") && req->body_case == PM__V1__REQUEST__BODY_EVENTS_REPLAY) {
            uint64_t from = req->events_replay->from_seq ? req->events_replay->from_seq : 1;
            size_t k = 0;
            for (uint64_t s = from; s <= last && k < MAXB; s++, k++) {
                s_event (&evs[k], &us[k], &cis[k], s, ids[k], uids[k], bs[k]);
                evp[k] = &evs[k];
            }
            rr.events = evp;
            rr.n_events = k;
            rr.last_seq = last;
            rr.first_seq = 1;
            pm_body_set (&rep.base, "events.replay", &rr.base);
        } else if (!strcmp (req->method, "ops.ping")) {
            pr.daemon = "intake";
            pr.last_seq = last;
            pm_body_set (&rep.base, "ops.ping", &pr.base);
        } else {
            rep.status = PM__V1__STATUS__INVALID;
            rep.message = "the bench's intake answers events.replay and ops.ping only";
        }
        size_t len = pm__v1__reply__get_packed_size (&rep);
        uint8_t *buf = pm_xmalloc (len + 1);
        pm__v1__reply__pack (&rep, buf);
        for (int i = 0; i < n - 1; i++)
            zmq_send (router, zmq_msg_data (&parts[i]), zmq_msg_size (&parts[i]), ZMQ_SNDMORE);
        zmq_send (router, buf, len, 0);
        free (buf);
        pm__v1__request__free_unpacked (req, NULL);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close (&parts[i]);
}

static void *
s_intake_run (void *arg)
{
    s_intake_t *in = arg;
    void *z = zmq_ctx_new ();
    void *router = zmq_socket (z, ZMQ_ROUTER), *pub = zmq_socket (z, ZMQ_PUB);
    int zero = 0;
    zmq_setsockopt (router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (pub, ZMQ_LINGER, &zero, sizeof zero);
    char ep[PATH_MAX + 64];
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.cmd", in->home);
    int ok = zmq_bind (router, ep) == 0;
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.pub", in->home);
    ok = ok && zmq_bind (pub, ep) == 0;
    atomic_store (&in->ready, ok ? 1 : -1);
    int64_t last_hb = 0;
    while (ok && !atomic_load (&in->stop)) {
        zmq_pollitem_t item = { router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) > 0)
            s_intake_answer (router, in);
        if (pm_mono_ms () - last_hb > 500) { /* heartbeat: the latest seq */
            Pm__V1__Event hb = PM__V1__EVENT__INIT;
            Pm__V1__Heartbeat h = PM__V1__HEARTBEAT__INIT;
            h.last_seq = (uint64_t) in->units * 2;
            hb.source = "intake";
            hb.type = "heartbeat";
            hb.payload_case = PM__V1__EVENT__PAYLOAD_HEARTBEAT;
            hb.heartbeat = &h;
            uint8_t buf[64];
            size_t len = pm__v1__event__pack (&hb, buf);
            zmq_send (pub, "heartbeat", 9, ZMQ_SNDMORE);
            zmq_send (pub, buf, len, 0);
            last_hb = pm_mono_ms ();
        }
    }
    zmq_close (router);
    zmq_close (pub);
    zmq_ctx_term (z);
    return NULL;
}

/* --- the daemon ----------------------------------------------------------------- */

/* CPU time (user + system) the process used so far, in µs, or 0. */
static uint64_t
s_cpu_us (pid_t pid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    const char *p = strrchr (buf, ')'); /* the name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * 1000000ULL / (uint64_t) sysconf (_SC_CLK_TCK);
}

/* Bytes the process handed to write calls (wchar in /proc/PID/io), or 0. */
static uint64_t
s_wchar (pid_t pid)
{
    char path[64], line[128];
    snprintf (path, sizeof path, "/proc/%d/io", (int) pid);
    FILE *f = fopen (path, "r");
    uint64_t v = 0;
    while (f && fgets (line, sizeof line, f))
        if (sscanf (line, "wchar: %" SCNu64, &v) == 1)
            break;
    if (f)
        fclose (f);
    return v;
}

static pid_t
s_daemon_start (const char *dir)
{
    char self[PATH_MAX], daemon[PATH_MAX + 64];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr (self, '/') = '\0';
    snprintf (daemon, sizeof daemon, "%s/../../services/inspection/pm-inspection", self);
    setenv ("PM_HOME", dir, 1);
    setenv ("PM_GENERAL_LOG_LEVEL", "warn", 1);
    setenv ("PM_INSPECTION_MAP_SIZE_MB", "1024", 1);
    pid_t pid = fork ();
    if (pid == 0) {
        execl (daemon, "pm-inspection", (char *) NULL);
        fprintf (stderr, "pm-inspection-bench: cannot run %s: %s\n", daemon, strerror (errno));
        _exit (127);
    }
    return pid;
}

static Pm__V1__Reply *
s_call (pm_client_t *c, const char *method, ProtobufCMessage *body)
{
    char id[27];
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "pm-inspection-bench";
    if (body)
        pm_body_set (&req.base, method, body);
    Pm__V1__Reply *r = NULL;
    return pm_client_call (c, &req, 10000, 1000, &r) == PM_OK ? r : NULL;
}

static double
s_metric (pm_client_t *c, const char *name, const char *labels)
{
    Pm__V1__Reply *r = s_call (c, "ops.metrics", NULL);
    double v = -1;
    for (size_t i = 0; r && r->body_case == PM__V1__REPLY__BODY_OPS_METRICS && i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        if (!strcmp (m->name, name) && !strcmp (m->labels ? m->labels : "", labels))
            v = m->value;
    }
    if (r)
        pm__v1__reply__free_unpacked (r, NULL);
    return v;
}

/* One kind of command for every unit (or count per unit), K in flight; fills the
 * request through make (i = command no). Returns commands/s, or -1. */
typedef void (*s_make_fn) (int i, Pm__V1__Request *req, char id[40], void *scratch);

static double
s_pipeline (pm_client_t *c, int total, int inflight, s_make_fn make, void *scratch, const char *what)
{
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    int sent = 0, done = 0, bad = 0;
    int64_t t0 = pm_mono_us ();
    while (done < total) {
        while (sent < total && pm_inflight_size (fl) < (size_t) inflight) {
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            char id[40];
            make (sent, &req, id, scratch);
            if (pm_inflight_add (fl, c, &req, S_DEADLINE_MS, NULL) != PM_OK) {
                fprintf (stderr, "pm-inspection-bench: cannot send: %s\n", zmq_strerror (errno));
                pm_inflight_destroy (&fl);
                return -1;
            }
            sent++;
        }
        Pm__V1__Reply *r = NULL;
        void *user;
        int rc = pm_inflight_wait (fl, -1, &r, &user);
        if (rc == PM_EIO && errno == EINTR)
            continue;
        if (rc != PM_OK || !r) {
            fprintf (stderr, "pm-inspection-bench: %s: no reply after %d of %d\n", what, done, total);
            pm_inflight_destroy (&fl);
            return -1;
        }
        if (r->status != PM__V1__STATUS__OK && bad++ < 3)
            fprintf (stderr, "pm-inspection-bench: %s: %s: %s\n", what, pm_status_name (r->status), r->message);
        pm__v1__reply__free_unpacked (r, NULL);
        done++;
    }
    double secs = (double) (pm_mono_us () - t0) / 1e6;
    pm_inflight_destroy (&fl);
    if (bad) {
        fprintf (stderr, "pm-inspection-bench: %s: %d of %d not OK\n", what, bad, total);
        return -1;
    }
    return total / secs;
}

typedef struct {
    int units, defects;
    char unit_id[48];
    Pm__V1__InspectionRoundStartRequest start;
    Pm__V1__InspectionDefectRecordRequest defect;
    Pm__V1__ChecklistItem **lines;
    size_t nlines;
} s_scratch_t;

static void
s_make_start (int i, Pm__V1__Request *req, char id[40], void *arg)
{
    s_scratch_t *s = arg;
    s_unit_id (s->unit_id, sizeof s->unit_id, i);
    pm__v1__inspection_round_start_request__init (&s->start);
    s->start.unit_id = s->unit_id;
    s->start.inspector = "李工";
    snprintf (id, 40, "start-%010d", i);
    req->id = id;
    req->method = "inspection.round.start";
    req->actor = "pm-inspection-bench";
    pm_body_set (&req->base, "inspection.round.start", &s->start.base);
}

static void
s_make_defect (int i, Pm__V1__Request *req, char id[40], void *arg)
{
    s_scratch_t *s = arg;
    s_unit_id (s->unit_id, sizeof s->unit_id, i / s->defects);
    const Pm__V1__ChecklistItem *line = s->lines[(size_t) i % s->nlines];
    pm__v1__inspection_defect_record_request__init (&s->defect);
    s->defect.unit_id = s->unit_id;
    s->defect.room = line->room;
    s->defect.category = line->category;
    s->defect.severity = (Pm__V1__Severity) (1 + i % 3);
    s->defect.description = "墙面空鼓，约 30cm x 20cm";
    s->defect.location = "东墙窗下";
    snprintf (id, 40, "defect-%010d", i); /* time-ordered, like ULIDs */
    req->id = id;
    req->method = "inspection.defect.record";
    req->actor = "pm-inspection-bench";
    pm_body_set (&req->base, "inspection.defect.record", &s->defect.base);
}

static void
s_usage (FILE *f)
{
    fprintf (f, "usage: pm-inspection-bench [--units N] [--defects D] [--inflight K] [--kpi-reads R] [--dir DIR] [--keep]\n"
                "  --units N      units of estate B01 (default 10000), 100 per building\n"
                "  --defects D    defects recorded per unit (default 3)\n"
                "  --inflight K   commands in flight on one DEALER (default 512)\n"
                "  --kpi-reads R  inspection.kpi calls, one at a time (default 200)\n"
                "  --dir DIR      where the temp PM_HOME goes (default /tmp)\n"
                "  --keep         keep it (to look at the store with mdb_stat)\n");
}

int
main (int argc, char **argv)
{
    static const struct option opts[] = {
        { "units", required_argument, NULL, 'u' },     { "defects", required_argument, NULL, 'd' },
        { "inflight", required_argument, NULL, 'k' },  { "kpi-reads", required_argument, NULL, 'r' },
        { "dir", required_argument, NULL, 'D' },       { "keep", no_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int units = 10000, defects = 3, inflight = 512, kpi_reads = 200, opt;
    const char *base = "/tmp";
    bool keep = false;
    while ((opt = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': units = atoi (optarg); break;
        case 'd': defects = atoi (optarg); break;
        case 'k': inflight = atoi (optarg); break;
        case 'r': kpi_reads = atoi (optarg); break;
        case 'D': base = optarg; break;
        case 'K': keep = true; break;
        case 'h': s_usage (stdout); return 0;
        default: s_usage (stderr); return 2;
        }
    }
    if (units < 1 || defects < 1 || inflight < 1 || kpi_reads < 1) {
        s_usage (stderr);
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    pm_log_init ("pm-inspection-bench", PM_LOG_WARN);
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/pminspb.XXXXXX", base);
    if (!mkdtemp (dir)) {
        fprintf (stderr, "pm-inspection-bench: mkdtemp %s: %s\n", dir, strerror (errno));
        return 1;
    }
    char run[PATH_MAX + 8];
    snprintf (run, sizeof run, "%s/run", dir);
    mkdir (run, 0750);
    int code = 1;
    double raw = s_lmdb_rate (dir, 2000);
    s_intake_t in = { .home = dir, .units = units };
    pthread_create (&in.thread, NULL, s_intake_run, &in);
    while (atomic_load (&in.ready) == 0)
        usleep (1000);
    pid_t pid = atomic_load (&in.ready) > 0 ? s_daemon_start (dir) : -1;
    char ep[PATH_MAX + 64];
    snprintf (ep, sizeof ep, "ipc://%s/run/inspection.cmd", dir);
    pm_client_t *c = pid > 0 ? pm_client_new (NULL, ep) : NULL;
    s_scratch_t s = { .units = units, .defects = defects };
    Pm__V1__Reply *tpl = NULL;
    if (!c)
        goto done;

    /* inspection replays intake: every unit registered and checked in */
    int64_t t0 = pm_mono_us ();
    char want[32];
    snprintf (want, sizeof want, "%d", units * 2);
    while (s_metric (c, "pm_consumer_applied_seq", "source=\"intake\"") != units * 2) {
        if (pm_mono_us () - t0 > 300 * 1000000LL) {
            fprintf (stderr, "pm-inspection-bench: inspection did not apply intake's %s events in 300 s\n", want);
            goto done;
        }
        usleep (20000);
    }
    double replay_s = (double) (pm_mono_us () - t0) / 1e6;

    Pm__V1__InspectionTemplateGetRequest tb = PM__V1__INSPECTION_TEMPLATE_GET_REQUEST__INIT;
    tb.estate_id = "B01";
    tpl = s_call (c, "inspection.template.get", &tb.base);
    if (!tpl || tpl->body_case != PM__V1__REPLY__BODY_INSPECTION_TEMPLATE_GET || !tpl->inspection_template_get->n_items)
        goto done;
    s.lines = tpl->inspection_template_get->items;
    s.nlines = tpl->inspection_template_get->n_items;

    double starts = s_pipeline (c, units, inflight, s_make_start, &s, "inspection.round.start");
    if (starts < 0)
        goto done;
    int total = units * defects;
    uint64_t w0 = s_wchar (pid), c0 = s_cpu_us (pid);
    double rate = s_pipeline (c, total, inflight, s_make_defect, &s, "inspection.defect.record");
    if (rate < 0)
        goto done;
    double per_defect = (double) (s_wchar (pid) - w0) / total;
    double cpu_defect = (double) (s_cpu_us (pid) - c0) / total;

    /* the KPIs of the estate, one read at a time */
    int64_t *lat = pm_xcalloc ((size_t) kpi_reads, sizeof *lat);
    Pm__V1__InspectionKpiRequest kb = PM__V1__INSPECTION_KPI_REQUEST__INIT;
    kb.estate_id = "B01";
    uint64_t kpi_units = 0, kpi_defects = 0;
    size_t kpi_buildings = 0;
    for (int i = 0; i < kpi_reads; i++) {
        int64_t t = pm_mono_us ();
        Pm__V1__Reply *r = s_call (c, "inspection.kpi", &kb.base);
        lat[i] = pm_mono_us () - t;
        if (!r || r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_INSPECTION_KPI) {
            fprintf (stderr, "pm-inspection-bench: inspection.kpi failed: %s\n", r ? r->message : "no reply");
            free (lat);
            goto done;
        }
        kpi_units = r->inspection_kpi->estate->units;
        kpi_defects = r->inspection_kpi->estate->defects;
        kpi_buildings = r->inspection_kpi->n_buildings;
        pm__v1__reply__free_unpacked (r, NULL);
    }
    qsort (lat, (size_t) kpi_reads, sizeof *lat, s_cmp);

    printf ("inspection: %d units (%d buildings) replayed from intake in %.2f s; %d rounds started at %.0f/s\n", units,
            (units + S_PER_BUILDING - 1) / S_PER_BUILDING, replay_s, units, starts);
    printf ("defects: %d inspection.defect.record, %d in flight: %.0f durable defect records/s (target >= 20000); "
            "daemon CPU %.1f us and %.0f bytes written per defect; raw LMDB %.0f durable commits/s\n",
            total, inflight, rate, cpu_defect, per_defect, raw);
    printf ("kpi: estate of %" PRIu64 " units, %zu buildings, %" PRIu64 " defects: inspection.kpi p50 %.2f ms, "
            "p99 %.2f ms, max %.2f ms over %d reads (target < 10 ms)\n",
            kpi_units, kpi_buildings, kpi_defects, s_ms_at (lat, (size_t) kpi_reads, 0.5),
            s_ms_at (lat, (size_t) kpi_reads, 0.99), s_ms_at (lat, (size_t) kpi_reads, 1.0), kpi_reads);
    code = kpi_units == (uint64_t) units && kpi_defects == (uint64_t) total ? 0 : 1;
    if (code)
        fprintf (stderr, "pm-inspection-bench: the KPIs count %" PRIu64 " units and %" PRIu64 " defects, expected %d "
                         "and %d\n", kpi_units, kpi_defects, units, total);
    free (lat);
    /* the same store in this process: the read's own cost */
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    pid = -1;
    char *err = NULL;
    pm_config_t *cfg = pm_config_load (NULL, &err);
    pm_daemon_t *d = cfg ? pm_daemon_new (&inspection_spec, cfg, NULL) : NULL;
    if (!d) {
        fprintf (stderr, "pm-inspection-bench: cannot open the store in process: %s\n", err ? err : "see above");
        free (err);
        code = 1;
        goto done;
    }
    int64_t *own = pm_xcalloc ((size_t) kpi_reads, sizeof *own);
    for (int i = 0; i < kpi_reads; i++) {
        Pm__V1__Request req = PM__V1__REQUEST__INIT;
        req.id = "kpi";
        req.method = "inspection.kpi";
        pm_body_set (&req.base, "inspection.kpi", &kb.base);
        pm_batch_item_t item = { &req, NULL, NULL };
        int64_t t = pm_mono_us ();
        pm_daemon_apply (d, &item, 1);
        own[i] = pm_mono_us () - t;
        if (item.reply->status != PM__V1__STATUS__OK)
            code = 1;
    }
    qsort (own, (size_t) kpi_reads, sizeof *own, s_cmp);
    printf ("kpi in process (no sockets): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", s_ms_at (own, (size_t) kpi_reads, 0.5),
            s_ms_at (own, (size_t) kpi_reads, 0.99), s_ms_at (own, (size_t) kpi_reads, 1.0));
    free (own);
    pm_daemon_destroy (&d);
done:
    if (tpl)
        pm__v1__reply__free_unpacked (tpl, NULL);
    pm_client_destroy (&c);
    if (pid > 0) {
        kill (pid, SIGTERM);
        waitpid (pid, NULL, 0);
    }
    atomic_store (&in.stop, true);
    pthread_join (in.thread, NULL);
    if (keep)
        printf ("kept %s (PM_HOME of the run)\n", dir);
    else
        nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return code;
}
