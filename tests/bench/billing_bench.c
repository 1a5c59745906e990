/* billing-bench - billing's targets, measured on its real process:
 *
 *   1. payments: billing.payment.record commands kept --inflight at a time on
 *      one DEALER, each settling a move-in invoice (payment, receipt number,
 *      invoice, collection counters, arrears, its dunning timer cancelled,
 *      two events, stored reply): durable payments per second (>= 50,000);
 *   2. a monthly run (billing.run) of --units units, from the request to
 *      billing.run.get saying done (< 5 s for 100,000);
 *   3. `pmctl billing reconcile` of a bank file of --units lines, each paying
 *      a monthly invoice, timed around the real pmctl process (< 5 s for
 *      100,000 lines).
 *
 *   billing-bench [--units N] [--inflight K] [--dir DIR] [--keep]
 *
 * It plays intake itself (a ROUTER answering events.replay and a PUB sending
 * heartbeats, as tests/integration/harness.py's FakeUpstream does): every
 * unit is checked in and handed its keys on 2026-12-01, so billing issues a
 * move-in invoice per unit (维修基金: area x 60.00, a whole number of fen)
 * and bills each in the run of 2027-01. pm-billing and pmctl are started from
 * the build tree next to this binary, with a temp PM_HOME under DIR and the
 * manual clock. Every reply counted was sent after its commit (group commit). */
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
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_START "2026-12-01T01:00:00Z" /* 09:00 estate time */
#define S_START_MS 1796086800000LL
#define S_RETRY_MS 5000
#define S_DEADLINE_MS 60000
#define S_FUND_FEN 6000  /* 维修基金 60.00 元/m2 */
#define S_FEE_FEN 280    /* 物业费 2.80 元/m2/月 */

static char s_bin[PATH_MAX];  /* the build tree's directory of this binary */

/* --- the fake intake --------------------------------------------------------------- */

typedef struct {
    void *zctx;
    char cmd[PATH_MAX + 32], pub[PATH_MAX + 32];
    int units;
    atomic_ullong published; /* events visible to billing: 2 per unit */
    atomic_bool stop;
    pthread_t thread;
} s_intake_t;

static int64_t
s_area (int i)
{
    return 8000 + i % 5000;
}

static void
s_unit_id (int i, char *buf, size_t size)
{
    snprintf (buf, size, "E01/%03d-%06d", i / 1000, i); /* key order = unit order */
}

/* Event seq (from 1): odd, unit (seq-1)/2 checked in; even, its keys handed. Packed into buf. */
static size_t
s_event (uint64_t seq, uint8_t *buf, size_t size)
{
    int i = (int) ((seq - 1) / 2);
    char unit_id[48], building[16], unit[16], id[32];
    s_unit_id (i, unit_id, sizeof unit_id);
    snprintf (building, sizeof building, "%03d", i / 1000);
    snprintf (unit, sizeof unit, "%06d", i);
    snprintf (id, sizeof id, "intake:%" PRIu64, seq);
    Pm__V1__Unit u = PM__V1__UNIT__INIT;
    u.unit_id = unit_id;
    u.estate_id = "E01";
    u.building = building;
    u.unit = unit;
    u.area_cm2 = s_area (i);
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.source = "intake";
    ev.seq = seq;
    ev.id = id;
    ev.at_ms = S_START_MS;
    ev.estate_id = "E01";
    ev.unit_id = unit_id;
    ev.correlation_id = "bench";
    Pm__V1__CheckedIn ci = PM__V1__CHECKED_IN__INIT;
    Pm__V1__KeysHanded kh = PM__V1__KEYS_HANDED__INIT;
    if (seq % 2) {
        ev.type = "intake.unit.checked_in";
        ci.unit_id = unit_id;
        ci.estate_id = "E01";
        ci.at_ms = S_START_MS;
        ci.unit = &u;
        ev.payload_case = PM__V1__EVENT__PAYLOAD_CHECKED_IN;
        ev.checked_in = &ci;
    }
    else {
        ev.type = "intake.keys.handed";
        kh.unit_id = unit_id;
        kh.estate_id = "E01";
        kh.at_ms = S_START_MS;
        ev.payload_case = PM__V1__EVENT__PAYLOAD_KEYS_HANDED;
        ev.keys_handed = &kh;
    }
    size_t len = pm__v1__event__get_packed_size (&ev);
    if (len > size)
        return 0;
    return pm__v1__event__pack (&ev, buf);
}

/* Answers one request of billing's (events.replay, ops.ping). */
static void
s_intake_answer (s_intake_t *in, void *router, zmq_msg_t *parts, int n)
{
    Pm__V1__Request *req = pm__v1__request__unpack (NULL, zmq_msg_size (&parts[n - 1]), zmq_msg_data (&parts[n - 1]));
    if (!req)
        return;
    Pm__V1__Reply rep = PM__V1__REPLY__INIT;
    Pm__V1__EventsReplayReply rr = PM__V1__EVENTS_REPLAY_REPLY__INIT;
    Pm__V1__OpsPingReply pr = PM__V1__OPS_PING_REPLY__INIT;
    rep.id = req->id;
    uint64_t last = atomic_load (&in->published);
    Pm__V1__Event **evs = NULL;
    uint8_t *bufs = NULL;
    size_t nevs = 0;
    if (strcmp (req->method, "events.replay") == 0 && req->events_replay) {
        uint64_t from = req->events_replay->from_seq ? req->events_replay->from_seq : 1;
        uint32_t max = req->events_replay->max && req->events_replay->max < 1000 ? req->events_replay->max : 1000;
        evs = pm_xcalloc (max, sizeof *evs);
        bufs = pm_xmalloc ((size_t) max * 512);
        for (uint64_t s = from; s <= last && nevs < max; s++) {
            size_t len = s_event (s, bufs + nevs * 512, 512);
            evs[nevs] = pm__v1__event__unpack (NULL, len, bufs + nevs * 512);
            nevs++;
        }
        rr.events = evs;
        rr.n_events = nevs;
        rr.last_seq = last;
        rr.first_seq = 1;
        rep.body_case = PM__V1__REPLY__BODY_EVENTS_REPLAY;
        rep.events_replay = &rr;
    }
    else if (strcmp (req->method, "ops.ping") == 0) {
        pr.daemon = "intake";
        pr.last_seq = last;
        rep.body_case = PM__V1__REPLY__BODY_OPS_PING;
        rep.ops_ping = &pr;
    }
    else {
        rep.status = PM__V1__STATUS__INVALID;
        rep.message = "the bench's intake answers events.replay and ops.ping";
    }
    size_t len = pm__v1__reply__get_packed_size (&rep);
    uint8_t *out = pm_xmalloc (len + 1);
    pm__v1__reply__pack (&rep, out);
    for (int i = 0; i < n - 1; i++)
        zmq_send (router, zmq_msg_data (&parts[i]), zmq_msg_size (&parts[i]), ZMQ_SNDMORE);
    zmq_send (router, out, len, 0);
    free (out);
    for (size_t i = 0; i < nevs; i++)
        pm__v1__event__free_unpacked (evs[i], NULL);
    free (evs);
    free (bufs);
    pm__v1__request__free_unpacked (req, NULL);
}

static void *
s_intake_run (void *arg)
{
    s_intake_t *in = arg;
    void *router = zmq_socket (in->zctx, ZMQ_ROUTER), *pub = zmq_socket (in->zctx, ZMQ_PUB);
    int linger = 0;
    zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (pub, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind (router, in->cmd) != 0 || zmq_bind (pub, in->pub) != 0) {
        fprintf (stderr, "billing-bench: cannot bind the fake intake: %s\n", zmq_strerror (errno));
        exit (1);
    }
    int64_t last_hb = 0;
    while (!atomic_load (&in->stop)) {
        zmq_pollitem_t it = { router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&it, 1, 20) > 0 && (it.revents & ZMQ_POLLIN)) {
            zmq_msg_t parts[8];
            int n = 0, more = 1;
            while (more) {
                zmq_msg_t m;
                zmq_msg_init (&m);
                if (zmq_msg_recv (&m, router, 0) < 0) {
                    zmq_msg_close (&m);
                    break;
                }
                more = zmq_msg_more (&m);
                if (n < 8)
                    parts[n++] = m;
                else
                    zmq_msg_close (&m);
            }
            if (n >= 2)
                s_intake_answer (in, router, parts, n);
            for (int i = 0; i < n; i++)
                zmq_msg_close (&parts[i]);
        }
        if (pm_mono_ms () - last_hb > 100) {
            Pm__V1__Event hb = PM__V1__EVENT__INIT;
            Pm__V1__Heartbeat h = PM__V1__HEARTBEAT__INIT;
            hb.source = "intake";
            hb.type = "heartbeat";
            hb.payload_case = PM__V1__EVENT__PAYLOAD_HEARTBEAT;
            hb.heartbeat = &h;
            h.last_seq = atomic_load (&in->published);
            uint8_t buf[128];
            size_t len = pm__v1__event__pack (&hb, buf);
            zmq_send (pub, "heartbeat", 9, ZMQ_SNDMORE);
            zmq_send (pub, buf, len, 0);
            last_hb = pm_mono_ms ();
        }
    }
    zmq_close (router);
    zmq_close (pub);
    return NULL;
}

/* --- the machine ------------------------------------------------------------------- */

/* Raw LMDB: one small put per durable commit, in a store of its own under
 * dir: what one commit per payment would give on this disk now. Commits/s. */
static double
s_lmdb_rate (const char *dir)
{
    char path[PATH_MAX + 16];
    snprintf (path, sizeof path, "%s/raw", dir);
    pm_store_t *st = pm_store_open (path, 64u << 20, NULL);
    if (!st)
        return 0;
    int64_t t0 = pm_mono_us ();
    int n = 0;
    for (; n < 1000 && pm_mono_us () - t0 < 2000000; n++) {
        pm_txn_t t;
        unsigned char k[8];
        pm_u64_be ((uint64_t) n, k);
        pm_txn_begin (&t, st, NULL);
        pm_txn_put (&t, PM_DB_META, k, 8, "0123456789abcdef0123456789abcdef", 32);
        if (pm_txn_commit (&t) != PM_OK)
            break;
    }
    double rate = n / ((double) (pm_mono_us () - t0) / 1e6);
    pm_store_destroy (&st);
    return rate;
}

/* --- the daemon -------------------------------------------------------------------- */

static pid_t
s_billing_start (const char *home)
{
    char daemon[PATH_MAX + 64];
    snprintf (daemon, sizeof daemon, "%s/../../services/billing/pm-billing", s_bin);
    setenv ("PM_HOME", home, 1);
    setenv ("PM_GENERAL_LOG_LEVEL", "warn", 1);
    setenv ("PM_GENERAL_MANUAL_CLOCK", "true", 1);
    setenv ("PM_BILLING_MAP_SIZE_MB", "4096", 1);
    setenv ("PM_BILLING_SCHEDULE", "", 1);
    pid_t pid = fork ();
    if (pid == 0) {
        execl (daemon, "pm-billing", (char *) NULL);
        fprintf (stderr, "billing-bench: cannot run %s: %s\n", daemon, strerror (errno));
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
    req.actor = "billing-bench";
    pm_body_set (&req.base, method, body);
    Pm__V1__Reply *r = NULL;
    return pm_client_call (c, &req, S_DEADLINE_MS, S_RETRY_MS, &r) == PM_OK ? r : NULL;
}

static Pm__V1__Reply *
s_call_ok (pm_client_t *c, const char *method, ProtobufCMessage *body)
{
    Pm__V1__Reply *r = s_call (c, method, body);
    if (!r || r->status != PM__V1__STATUS__OK) {
        fprintf (stderr, "billing-bench: %s: %s\n", method, r ? r->message : "no answer");
        exit (1);
    }
    return r;
}

/* A metric's value from ops.metrics (-1 when absent). */
static double
s_metric (pm_client_t *c, const char *name, const char *labels)
{
    Pm__V1__Reply *r = s_call_ok (c, "ops.metrics", NULL);
    double v = -1;
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++)
        if (strcmp (r->ops_metrics->metrics[i]->name, name) == 0
            && strcmp (r->ops_metrics->metrics[i]->labels, labels) == 0)
            v = r->ops_metrics->metrics[i]->value;
    pm__v1__reply__free_unpacked (r, NULL);
    return v;
}

/* A histogram's summary from ops.metrics, as "p50 X, p99 Y, max Z". */
static void
s_hist (pm_client_t *c, const char *name, char *out, size_t size)
{
    Pm__V1__Reply *r = s_call_ok (c, "ops.metrics", NULL);
    snprintf (out, size, "-");
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        if (strcmp (m->name, name) == 0)
            snprintf (out, size, "p50 %.0f, p99 %.0f, max %.0f", m->p50, m->p99, m->max);
    }
    pm__v1__reply__free_unpacked (r, NULL);
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/* --- the payments ------------------------------------------------------------------- */

static int
s_payments (pm_client_t *c, int n, int inflight, double *secs, int64_t *lat_us)
{
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    int64_t *sent_us = pm_xcalloc ((size_t) n, sizeof *sent_us);
    int sent = 0, done = 0, failed = 0;
    int64_t t0 = pm_mono_us ();
    while (done < n) {
        while (sent < n && pm_inflight_size (fl) < (size_t) inflight) {
            char id[27], inv[32], ref[32];
            pm_request_id (id);
            snprintf (inv, sizeof inv, "INV-E01-%06d", sent + 1); /* unit sent's move-in invoice */
            snprintf (ref, sizeof ref, "POS-%08d", sent);
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            Pm__V1__BillingPaymentRecordRequest q = PM__V1__BILLING_PAYMENT_RECORD_REQUEST__INIT;
            q.invoice_id = inv;
            q.amount_fen = s_area (sent) * S_FUND_FEN / 100;
            q.channel = "counter_card";
            q.external_ref = ref;
            req.id = id;
            req.method = "billing.payment.record";
            req.actor = "billing-bench";
            pm_body_set (&req.base, req.method, &q.base);
            sent_us[sent] = pm_mono_us ();
            if (pm_inflight_add (fl, c, &req, S_DEADLINE_MS, &sent_us[sent]) != PM_OK) {
                fprintf (stderr, "billing-bench: cannot send: %s\n", zmq_strerror (errno));
                return -1;
            }
            sent++;
        }
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, -1, &r, &user);
        if (rc != PM_OK) {
            if (rc == PM_EIO && errno == EINTR)
                continue;
            return -1;
        }
        if (!r) {
            fprintf (stderr, "billing-bench: a payment got no answer in %d s\n", S_DEADLINE_MS / 1000);
            return -1;
        }
        lat_us[done++] = pm_mono_us () - *(int64_t *) user;
        if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_BILLING_PAYMENT_RECORD
            || r->billing_payment_record->already_recorded
            || r->billing_payment_record->invoices[0]->state != PM__V1__INVOICE_STATE__SETTLED) {
            if (failed++ < 3)
                fprintf (stderr, "billing-bench: payment: %s: %s\n", pm_status_name (r->status), r->message);
        }
        pm__v1__reply__free_unpacked (r, NULL);
    }
    *secs = (double) (pm_mono_us () - t0) / 1e6;
    pm_inflight_destroy (&fl);
    free (sent_us);
    return failed;
}

/* --- main ---------------------------------------------------------------------------- */

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (p);
}

int
main (int argc, char **argv)
{
    static const struct option opts[] = {
        { "units", required_argument, NULL, 'u' },
        { "inflight", required_argument, NULL, 'k' },
        { "dir", required_argument, NULL, 'd' },
        { "keep", no_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    setvbuf (stdout, NULL, _IOLBF, 0); /* progress as it comes, also into a file */
    int units = 100000, inflight = 512, opt;
    const char *base = "/tmp";
    bool keep = false;
    while ((opt = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'u')
            units = atoi (optarg);
        else if (opt == 'k')
            inflight = atoi (optarg);
        else if (opt == 'd')
            base = optarg;
        else if (opt == 'K')
            keep = true;
        else {
            printf ("usage: billing-bench [--units N] [--inflight K] [--dir DIR] [--keep]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (units < 1 || units > 900000 || inflight < 1) {
        fprintf (stderr, "billing-bench: --units 1..900000, --inflight >= 1\n");
        return 2;
    }
    ssize_t n = readlink ("/proc/self/exe", s_bin, sizeof s_bin - 1);
    if (n <= 0)
        return 1;
    s_bin[n] = '\0';
    *strrchr (s_bin, '/') = '\0';
    char home[PATH_MAX];
    snprintf (home, sizeof home, "%s/billing-bench.XXXXXX", base);
    if (!mkdtemp (home)) {
        fprintf (stderr, "billing-bench: mkdtemp under %s: %s\n", base, strerror (errno));
        return 1;
    }
    char run[PATH_MAX + 16];
    snprintf (run, sizeof run, "%s/run", home);
    mkdir (run, 0750);

    double raw_before = s_lmdb_rate (home);
    s_intake_t in = { .zctx = zmq_ctx_new (), .units = units };
    snprintf (in.cmd, sizeof in.cmd, "ipc://%s/run/intake.cmd", home);
    snprintf (in.pub, sizeof in.pub, "ipc://%s/run/intake.pub", home);
    pthread_create (&in.thread, NULL, s_intake_run, &in);
    pid_t pid = s_billing_start (home);
    char endpoint[PATH_MAX + 32];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/run/billing.cmd", home);
    pm_client_t *c = pm_client_new (NULL, endpoint);
    Pm__V1__Reply *r;
    int64_t until = pm_mono_ms () + 30000;
    while (!(r = s_call (c, "ops.ping", NULL)) && pm_mono_ms () < until)
        ;
    if (!r) {
        fprintf (stderr, "billing-bench: pm-billing did not answer\n");
        return 1;
    }
    pm__v1__reply__free_unpacked (r, NULL);
    Pm__V1__OpsClockRequest clk = PM__V1__OPS_CLOCK_REQUEST__INIT;
    clk.set_to = S_START;
    pm__v1__reply__free_unpacked (s_call_ok (c, "ops.clock", &clk.base), NULL);
    Pm__V1__BillingScheduleSetRequest sch = PM__V1__BILLING_SCHEDULE_SET_REQUEST__INIT;
    sch.estate_id = "E01";
    sch.effective_date = "2026-01-01";
    sch.property_fee = "2.80";
    sch.maintenance_fund = "60.00";
    sch.parking = "0";
    pm__v1__reply__free_unpacked (s_call_ok (c, "billing.schedule.set", &sch.base), NULL);

    /* 0. the units checked in and handed their keys */
    printf ("billing-bench: %d units, %d payments in flight, pm-billing pid %d, PM_HOME %s\n", units, inflight,
            (int) pid, home);
    int64_t t0 = pm_mono_us ();
    atomic_store (&in.published, (unsigned long long) units * 2);
    char labels[] = "source=\"intake\"";
    while (s_metric (c, "pm_consumer_applied_seq", labels) < (double) units * 2)
        usleep (20 * 1000); /* polling a daemon that answers: not a readiness sleep */
    double secs = (double) (pm_mono_us () - t0) / 1e6;
    printf ("intake's events applied:   %d events in %.2f s (%.0f/s), %d move-in invoices issued\n", units * 2, secs,
            units * 2 / secs, units);

    /* 1. payments: every move-in invoice settled */
    int64_t *lat = pm_xcalloc ((size_t) units, sizeof *lat);
    int failed = s_payments (c, units, inflight, &secs, lat);
    if (failed < 0)
        return 1;
    qsort (lat, (size_t) units, sizeof *lat, s_cmp);
    double pay_rate = units / secs;
    printf ("payments:                  %d in %.2f s: %.0f durable payments/s (target >= 50,000)%s; latency p50 %.1f "
            "ms, p99 %.1f ms\n",
            units, secs, units / secs, failed ? " WITH FAILURES" : "", lat[units / 2] / 1000.0,
            lat[(size_t) (units * 0.99)] / 1000.0);
    char h1[96], h2[96];
    s_hist (c, "pm_batch_messages", h1, sizeof h1);
    s_hist (c, "pm_commit_us", h2, sizeof h2);
    printf ("                           messages per commit: %s; commit us: %s\n", h1, h2);

    /* 2. the monthly run */
    Pm__V1__BillingRunRequest rq = PM__V1__BILLING_RUN_REQUEST__INIT;
    rq.estate_id = "E01";
    rq.period = "2027-01";
    t0 = pm_mono_us ();
    pm__v1__reply__free_unpacked (s_call_ok (c, "billing.run", &rq.base), NULL);
    Pm__V1__BillingRunGetRequest rg = PM__V1__BILLING_RUN_GET_REQUEST__INIT;
    rg.estate_id = "E01";
    rg.period = "2027-01";
    uint32_t issued = 0;
    for (;;) {
        r = s_call_ok (c, "billing.run.get", &rg.base);
        bool done = strcmp (r->billing_run_get->state, "done") == 0;
        issued = r->billing_run_get->issued;
        pm__v1__reply__free_unpacked (r, NULL);
        if (done)
            break;
        usleep (5 * 1000);
    }
    secs = (double) (pm_mono_us () - t0) / 1e6;
    printf ("monthly run:               %u invoices in %.2f s (%.0f/s; target < 5 s for 100,000)\n", issued, secs,
            issued / secs);

    /* 3. the bank's file, through pmctl */
    char file[PATH_MAX + 32];
    snprintf (file, sizeof file, "%s/bank.csv", home);
    FILE *f = fopen (file, "w");
    fprintf (f, "external_ref,unit_id,invoice_id,amount_fen,status,paid_at\n");
    for (int i = 0; i < units; i++) {
        char unit_id[48];
        s_unit_id (i, unit_id, sizeof unit_id);
        int64_t fen = (s_area (i) * S_FEE_FEN * 2 + 100) / 200; /* half-up */
        fprintf (f, "BK-%08d,%s,INV-E01-%06d,%" PRId64 ",success,2027-01-10 10:00:00\n", i, unit_id, units + 1 + i, fen);
    }
    fclose (f);
    char pmctl[PATH_MAX + 64], cmd[3 * PATH_MAX];
    snprintf (pmctl, sizeof pmctl, "%s/../../tools/pmctl/pmctl", s_bin);
    snprintf (cmd, sizeof cmd, "'%s' --timeout 30000 billing reconcile '%s' 2>&1 | tail -1", pmctl, file);
    t0 = pm_mono_us ();
    FILE *p = popen (cmd, "r");
    char line[512] = "";
    if (!p || !fgets (line, sizeof line, p))
        line[0] = '\0';
    int status = p ? pclose (p) : -1;
    secs = (double) (pm_mono_us () - t0) / 1e6;
    line[strcspn (line, "\n")] = '\0';
    printf ("reconciliation:            %d lines in %.2f s (%.0f lines/s; target < 5 s for 100,000)\n", units, secs,
            units / secs);
    printf ("                           pmctl: %s (exit %d)\n", line, WIFEXITED (status) ? WEXITSTATUS (status) : -1);

    /* the books */
    Pm__V1__BillingReportCollectionRequest cq = PM__V1__BILLING_REPORT_COLLECTION_REQUEST__INIT;
    cq.estate_id = "E01";
    r = s_call_ok (c, "billing.report.collection", &cq.base);
    printf ("collection:                %s\n", r->message);
    pm__v1__reply__free_unpacked (r, NULL);

    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    double raw_after = s_lmdb_rate (home);
    printf ("raw LMDB, one put per durable commit: %.0f commits/s before, %.0f after: the payments ran at %.1fx one "
            "commit per payment\n", raw_before, raw_after, pay_rate / ((raw_before + raw_after) / 2));
    atomic_store (&in.stop, true);
    pthread_join (in.thread, NULL);
    pm_client_destroy (&c);
    zmq_ctx_term (in.zctx);
    if (keep)
        printf ("kept %s\n", home);
    else
        nftw (home, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (lat);
    return failed ? 1 : 0;
}
