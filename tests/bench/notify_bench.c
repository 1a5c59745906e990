/* notify-bench - messages a second through notify's gateways, and how fast
 * notify answers ops.queues meanwhile.
 *
 *   notify-bench [--messages N] [--gateway file|http|both] [--inflight K] [--dir DIR]
 *
 * It starts pm-notify (from the build tree next to this binary) in a temp
 * PM_HOME under DIR, with no rate limit, no quiet hours, no daily cap, and
 * plays intake itself: a ROUTER answering events.replay and a PUB with
 * heartbeats, with N intake.notice.requested events, each to one owner with
 * a phone and no email (one SMS each): published live at once, as intake
 * does when it commits a bulk notice (--replay: served by events.replay, as
 * when notify catches up after a stop). For the http gateway it also
 * plays the SMS provider: libmicrohttpd on loopback, in its own thread,
 * answering 200 {"id": ...} at once; notify keeps K requests in flight.
 *
 * The clock runs from the first replay notify asks for (so its start-up does
 * not count) until notify_sent_total{channel="sms"} reaches N: every message
 * planned from its event, claimed, handed to the gateway, and its outcome
 * committed with its notify.message.sent event. Meanwhile a reader sends
 * ops.queues every 20 ms (one at a time, timed from its send) and the
 * latencies are printed. */
#define _GNU_SOURCE
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/proto.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_REPLAY_MAX 1000
#define S_QUEUES_EVERY_MS 20
#define S_DEADLINE_S 600

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (p);
}

/* --- the SMS provider -------------------------------------------------------------- */

static atomic_ulong s_http_requests;
static const char s_answer[] = "{\"id\":\"bench\"}";

static enum MHD_Result
s_http (void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
        const char *upload, size_t *upload_size, void **state)
{
    static int marker;
    if (!*state) { /* headers: wait for the body */
        *state = &marker;
        return MHD_YES;
    }
    if (*upload_size) { /* the body: read and forgotten */
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add (&s_http_requests, 1);
    struct MHD_Response *r = MHD_create_response_from_buffer (sizeof s_answer - 1, (void *) s_answer,
                                                              MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response (c, 200, r);
    MHD_destroy_response (r);
    return ret;
}

/* --- intake, played ------------------------------------------------------------------ */

typedef struct {
    void **buf;
    size_t *len;
    size_t n;
} s_events_t;

/* N notices, one owner each (a phone, no email). */
static void
s_events_make (s_events_t *e, size_t n)
{
    e->buf = pm_xcalloc (n, sizeof *e->buf);
    e->len = pm_xcalloc (n, sizeof *e->len);
    e->n = n;
    static char *bring[] = { "身份证", "购房合同" };
    for (size_t i = 0; i < n; i++) {
        char id[32], unit[48], phone[32], name[32];
        snprintf (id, sizeof id, "intake:%zu", i + 1);
        snprintf (unit, sizeof unit, "E01/%zu-%zu", i / 1000 + 1, i % 1000 + 1);
        snprintf (phone, sizeof phone, "139%08zu", i % 100000000);
        snprintf (name, sizeof name, "业主%zu", i);
        Pm__V1__Owner o = PM__V1__OWNER__INIT, *op = &o;
        o.name = name;
        o.phone = phone;
        o.owner_key = phone;
        Pm__V1__Notice nt = PM__V1__NOTICE__INIT;
        nt.notice_id = "NOTICE-BENCH";
        nt.unit_id = unit;
        nt.estate_id = "E01";
        nt.owners = &op;
        nt.n_owners = 1;
        nt.window = "12月5日至12月20日";
        nt.place = "3号楼一层物业服务中心";
        nt.bring = bring;
        nt.n_bring = 2;
        nt.fees_note = "物业费一年及维修基金";
        Pm__V1__Event ev = PM__V1__EVENT__INIT;
        ev.source = "intake";
        ev.seq = i + 1;
        ev.id = id;
        ev.type = "intake.notice.requested";
        ev.at_ms = 1;
        ev.estate_id = "E01";
        ev.unit_id = unit;
        ev.correlation_id = "bench";
        ev.payload_case = PM__V1__EVENT__PAYLOAD_NOTICE;
        ev.notice = &nt;
        e->len[i] = pm__v1__event__get_packed_size (&ev);
        e->buf[i] = pm_xmalloc (e->len[i]);
        pm__v1__event__pack (&ev, e->buf[i]);
    }
}

static void
s_events_free (s_events_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free (e->buf[i]);
    free (e->buf);
    free (e->len);
}

/* Answers one request on the played intake's ROUTER. Returns the from_seq of
 * a replay (0 for anything else). */
static uint64_t
s_intake_answer (void *router, const s_events_t *e, uint64_t published)
{
    zmq_msg_t parts[4];
    int n = 0, more = 1;
    while (more && n < 4) {
        zmq_msg_init (&parts[n]);
        if (zmq_msg_recv (&parts[n], router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&parts[n]);
            return 0;
        }
        more = zmq_msg_more (&parts[n]);
        n++;
    }
    uint64_t from = 0;
    Pm__V1__Request *req = pm__v1__request__unpack (NULL, zmq_msg_size (&parts[n - 1]), zmq_msg_data (&parts[n - 1]));
    if (req) {
        Pm__V1__Reply rep = PM__V1__REPLY__INIT;
        rep.id = req->id;
        Pm__V1__EventsReplayReply rr = PM__V1__EVENTS_REPLAY_REPLY__INIT;
        Pm__V1__OpsPingReply pr = PM__V1__OPS_PING_REPLY__INIT;
        Pm__V1__Event **evs = NULL;
        if (strcmp (req->method, "events.replay") == 0 && req->events_replay) {
            from = req->events_replay->from_seq ? req->events_replay->from_seq : 1;
            size_t max = req->events_replay->max && req->events_replay->max < S_REPLAY_MAX ? req->events_replay->max
                                                                                          : S_REPLAY_MAX;
            evs = pm_xcalloc (max + 1, sizeof *evs);
            for (uint64_t s = from; s <= published && rr.n_events < max; s++)
                evs[rr.n_events++] = pm__v1__event__unpack (NULL, e->len[s - 1], e->buf[s - 1]);
            rr.events = evs;
            rr.last_seq = published;
            rr.first_seq = 1;
            pm_body_set (&rep.base, "events.replay", &rr.base);
        }
        else {
            pr.daemon = "intake";
            pr.last_seq = published;
            pm_body_set (&rep.base, "ops.ping", &pr.base);
        }
        size_t len = pm__v1__reply__get_packed_size (&rep);
        void *buf = pm_xmalloc (len + 1);
        pm__v1__reply__pack (&rep, buf);
        for (int i = 0; i < n - 1; i++)
            zmq_send (router, zmq_msg_data (&parts[i]), zmq_msg_size (&parts[i]), ZMQ_SNDMORE);
        zmq_send (router, buf, len, 0);
        free (buf);
        for (size_t i = 0; i < rr.n_events; i++)
            pm__v1__event__free_unpacked (evs[i], NULL);
        free (evs);
        pm__v1__request__free_unpacked (req, NULL);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close (&parts[i]);
    return from;
}

static void
s_heartbeat (void *pub, uint64_t last)
{
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    Pm__V1__Heartbeat hb = PM__V1__HEARTBEAT__INIT;
    unsigned char buf[128];
    ev.source = "intake";
    ev.type = "heartbeat";
    hb.last_seq = last;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_HEARTBEAT;
    ev.heartbeat = &hb;
    size_t len = pm__v1__event__pack (&ev, buf);
    zmq_send (pub, "heartbeat", 9, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (pub, buf, len, ZMQ_DONTWAIT);
}

/* --- notify ---------------------------------------------------------------------------- */

static pid_t
s_notify_start (const char *home, const char *gateway, const char *url, int inflight)
{
    char self[PATH_MAX], daemon[PATH_MAX + 64], conc[16];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr (self, '/') = '\0';
    snprintf (daemon, sizeof daemon, "%s/../../services/notify/pm-notify", self);
    snprintf (conc, sizeof conc, "%d", inflight);
    setenv ("PM_HOME", home, 1);
    setenv ("PM_GENERAL_LOG_LEVEL", getenv ("NOTIFY_BENCH_LOG") ? getenv ("NOTIFY_BENCH_LOG") : "warn", 1);
    setenv ("PM_NOTIFY_MAP_SIZE_MB", "2048", 1);
    setenv ("PM_NOTIFY_QUIET_HOURS", "none", 1);
    setenv ("PM_NOTIFY_SMS_RATE", "0", 1);
    setenv ("PM_NOTIFY_EMAIL_RATE", "0", 1);
    setenv ("PM_NOTIFY_SMS_DAILY_CAP", "0", 1);
    setenv ("PM_NOTIFY_SMS_GATEWAY", gateway, 1);
    setenv ("PM_NOTIFY_SMS_URL", url, 1);
    if (strcmp (gateway, "file") != 0)
        setenv ("PM_NOTIFY_SMS_CONCURRENCY", conc, 1);
    else
        unsetenv ("PM_NOTIFY_SMS_CONCURRENCY");
    pid_t pid = fork ();
    if (pid == 0) {
        execl (daemon, "pm-notify", (char *) NULL);
        fprintf (stderr, "notify-bench: cannot run %s: %s\n", daemon, strerror (errno));
        _exit (127);
    }
    return pid;
}

/* A metric's value from an ops.metrics reply, or -1. */
static double
s_metric (const Pm__V1__Reply *r, const char *name, const char *labels)
{
    if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_METRICS)
        return -1;
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        if (strcmp (m->name, name) == 0 && strcmp (m->labels, labels) == 0)
            return m->value;
    }
    return -1;
}

/* The group commits' figures, from notify's own histograms. */
static void
s_histograms (const Pm__V1__Reply *r)
{
    static const char *const names[] = { "pm_commit_us", "pm_batch_messages", "pm_loop_turn_us", "notify_gateway_us",
                                         "pm_read_us" };
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strcmp (m->name, names[k]) == 0 && m->count && getenv ("NOTIFY_BENCH_VERBOSE"))
                printf ("      %s{%s}: %llu, p50 %.0f, p99 %.0f, max %.0f, mean %.0f\n", m->name, m->labels,
                        (unsigned long long) m->count, m->p50, m->p99, m->max, m->value / (double) m->count);
    }
}

static int
s_send (void *sock, const char *method, char id[27])
{
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "notify-bench";
    unsigned char buf[256];
    size_t len = pm__v1__request__pack (&req, buf);
    if (zmq_send (sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send (sock, buf, len, 0) < 0)
        return PM_EIO;
    return PM_OK;
}

/* The reply waiting on a DEALER (the caller's), or NULL. */
static Pm__V1__Reply *
s_recv (void *sock)
{
    zmq_msg_t m;
    Pm__V1__Reply *r = NULL;
    for (;;) {
        zmq_msg_init (&m);
        if (zmq_msg_recv (&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&m);
            return r;
        }
        bool more = zmq_msg_more (&m);
        if (!more && zmq_msg_size (&m)) {
            if (r)
                pm__v1__reply__free_unpacked (r, NULL);
            r = pm__v1__reply__unpack (NULL, zmq_msg_size (&m), zmq_msg_data (&m));
        }
        zmq_msg_close (&m);
        if (!more)
            return r;
    }
}

/* CPU seconds (user + system) process pid has used so far, or 0. */
static double
s_cpu_s (pid_t pid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    char *p = strrchr (buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double) (ut + st) / (double) sysconf (_SC_CLK_TCK);
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
    return (double) v[i > 0 ? i - 1 : 0] / 1000.0;
}

/* One run. Returns 0 on success. */
static int
s_run (const char *base, const char *gateway, size_t nmsg, int inflight, bool replay)
{
    char home[PATH_MAX];
    snprintf (home, sizeof home, "%s/notify-bench.XXXXXX", base);
    if (!mkdtemp (home)) {
        fprintf (stderr, "notify-bench: mkdtemp %s: %s\n", home, strerror (errno));
        return 1;
    }
    s_events_t ev;
    s_events_make (&ev, nmsg);
    struct MHD_Daemon *mhd = NULL;
    char url[128] = "";
    bool http = strcmp (gateway, "http") == 0;
    if (http) {
        atomic_store (&s_http_requests, 0);
        mhd = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, s_http, NULL,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned) 1024, MHD_OPTION_END);
        if (!mhd) {
            fprintf (stderr, "notify-bench: cannot start the HTTP provider\n");
            return 1;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info (mhd, MHD_DAEMON_INFO_BIND_PORT);
        snprintf (url, sizeof url, "http://127.0.0.1:%u/sms", (unsigned) info->port);
    }
    void *z = zmq_ctx_new ();
    char ep[PATH_MAX + 64];
    snprintf (ep, sizeof ep, "%s/run", home);
    mkdir (ep, 0750);
    void *router = zmq_socket (z, ZMQ_ROUTER), *pub = zmq_socket (z, ZMQ_PUB);
    int zero = 0, hwm = 100000;
    zmq_setsockopt (router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (pub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    int big = (int) nmsg + 1000;
    zmq_setsockopt (pub, ZMQ_SNDHWM, &big, sizeof big);
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.cmd", home);
    zmq_bind (router, ep);
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.pub", home);
    zmq_bind (pub, ep);
    pid_t pid = s_notify_start (home, http ? "http-sms" : "file", url, inflight);
    snprintf (ep, sizeof ep, "ipc://%s/run/notify.cmd", home);
    void *reader = zmq_socket (z, ZMQ_DEALER), *meter = zmq_socket (z, ZMQ_DEALER);
    zmq_setsockopt (reader, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (meter, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect (reader, ep);
    zmq_connect (meter, ep);

    size_t qcap = 1 << 16, nq = 0;
    int64_t *qlat = pm_xcalloc (qcap, sizeof *qlat);
    int64_t t0 = 0, t_applied = 0, t_end = 0, q_sent = 0, m_sent = 0, hb_at = 0;
    uint64_t published = replay ? ev.n : 0;
    int64_t start = pm_mono_us ();
    char qid[27], mid[27];
    double sent = 0, applied = 0;
    int rc = 1;
    while (pm_mono_us () - start < (int64_t) S_DEADLINE_S * 1000000) {
        zmq_pollitem_t items[] = {
            { router, 0, ZMQ_POLLIN, 0 },
            { reader, 0, ZMQ_POLLIN, 0 },
            { meter, 0, ZMQ_POLLIN, 0 },
        };
        zmq_poll (items, 3, 5);
        int64_t now = pm_mono_us ();
        while (items[0].revents & ZMQ_POLLIN) {
            uint64_t from = s_intake_answer (router, &ev, published);
            if (from == 1 && !t0) {
                t0 = pm_mono_us (); /* notify is up and asks for the events: the clock starts */
                if (!replay) { /* intake commits a bulk notice: every event published live at once */
                    for (size_t i = 0; i < ev.n; i++) {
                        zmq_send (pub, "intake.notice.requested", 23, ZMQ_SNDMORE);
                        zmq_send (pub, ev.buf[i], ev.len[i], 0);
                    }
                    published = ev.n;
                }
            }
            int ev_flags = 0;
            size_t sz = sizeof ev_flags;
            if (zmq_getsockopt (router, ZMQ_EVENTS, &ev_flags, &sz) != 0 || !(ev_flags & ZMQ_POLLIN))
                break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            Pm__V1__Reply *r = s_recv (reader);
            if (r && q_sent && strcmp (r->id, qid) == 0) {
                if (nq == qcap) {
                    qcap *= 2;
                    qlat = pm_xrealloc (qlat, qcap * sizeof *qlat);
                }
                qlat[nq++] = pm_mono_us () - q_sent;
                q_sent = 0;
            }
            if (r)
                pm__v1__reply__free_unpacked (r, NULL);
        }
        if (items[2].revents & ZMQ_POLLIN) {
            Pm__V1__Reply *r = s_recv (meter);
            if (r && m_sent && strcmp (r->id, mid) == 0) {
                sent = s_metric (r, "notify_sent_total", "channel=\"sms\"");
                applied = s_metric (r, "pm_consumer_applied_seq", "source=\"intake\"");
                m_sent = 0;
                if (applied >= (double) nmsg && !t_applied)
                    t_applied = pm_mono_us ();
                if (sent >= (double) nmsg) {
                    t_end = pm_mono_us ();
                    s_histograms (r);
                    pm__v1__reply__free_unpacked (r, NULL);
                    rc = 0;
                    break;
                }
            }
            if (r)
                pm__v1__reply__free_unpacked (r, NULL);
        }
        if (now - hb_at > 100000) {
            s_heartbeat (pub, published);
            hb_at = now;
        }
        if (t0 && !q_sent && now - (nq ? 0 : 0) >= 0) {
            static int64_t last_q;
            if (now - last_q >= S_QUEUES_EVERY_MS * 1000 && s_send (reader, "ops.queues", qid) == PM_OK) {
                q_sent = pm_mono_us ();
                last_q = now;
            }
        }
        if (q_sent && now - q_sent > 1000000) { /* a second unanswered: count it as such */
            if (nq == qcap) {
                qcap *= 2;
                qlat = pm_xrealloc (qlat, qcap * sizeof *qlat);
            }
            qlat[nq++] = now - q_sent;
            q_sent = 0;
        }
        static int64_t last_m;
        if (t0 && (!m_sent || now - m_sent > 2000000) && now - last_m >= 100000 /* 10 a second */
            && s_send (meter, "ops.metrics", mid) == PM_OK)
            m_sent = last_m = now;
    }
    if (rc == 0) {
        double secs = (double) (t_end - t0) / 1e6;
        qsort (qlat, nq, sizeof *qlat, s_cmp);
        printf ("%-5s gateway: %zu SMS in %.2f s = %.0f messages/s (events applied after %.2f s)\n", gateway, nmsg, secs,
                (double) nmsg / secs, t_applied ? (double) (t_applied - t0) / 1e6 : 0);
        if (http)
            printf ("      provider answered %lu requests, %d in flight at most\n",
                    (unsigned long) atomic_load (&s_http_requests), inflight);
        printf ("      ops.queues during the burst: %zu answers, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", nq,
                s_ms_at (qlat, nq, 0.5), s_ms_at (qlat, nq, 0.99), s_ms_at (qlat, nq, 1.0));
    }
    else
        fprintf (stderr, "notify-bench: %s: only %.0f of %zu sent after %d s (applied %.0f)\n", gateway, sent, nmsg,
                 S_DEADLINE_S, applied);
    if (pid > 0) {
        double cpu = s_cpu_s (pid);
        if (rc == 0 && cpu > 0)
            printf ("      notify used %.2f s of CPU: %.1f us a message (the machine's load moves the rate, not this)\n",
                    cpu, cpu * 1e6 / (double) nmsg);
        kill (pid, SIGTERM);
        waitpid (pid, NULL, 0);
    }
    zmq_close (reader);
    zmq_close (meter);
    zmq_close (router);
    zmq_close (pub);
    zmq_ctx_term (z);
    if (mhd)
        MHD_stop_daemon (mhd);
    s_events_free (&ev);
    free (qlat);
    nftw (home, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int
main (int argc, char **argv)
{
    static const struct option opts[] = {
        { "messages", required_argument, NULL, 'n' },
        { "gateway", required_argument, NULL, 'g' },
        { "inflight", required_argument, NULL, 'k' },
        { "dir", required_argument, NULL, 'd' },
        { "replay", no_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    long n = 0, k = 64;
    const char *gateway = "both", *dir = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    bool replay = false;
    int c;
    while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            n = strtol (optarg, NULL, 10);
            break;
        case 'g':
            gateway = optarg;
            break;
        case 'k':
            k = strtol (optarg, NULL, 10);
            break;
        case 'd':
            dir = optarg;
            break;
        case 'r':
            replay = true;
            break;
        default:
            printf ("usage: notify-bench [--messages N] [--gateway file|http|both] [--inflight K] [--replay] [--dir DIR]\n"
                    "  file: N (default 100000) notices through the file gateway\n"
                    "  http: N (default 20000) through the http-sms gateway to a loopback provider, K in flight (64)\n"
                    "  --replay: notify catches up by events.replay (1000 a page) instead of the live feed\n");
            return c == 'h' ? 0 : 2;
        }
    }
    signal (SIGPIPE, SIG_IGN);
    int rc = 0;
    if (strcmp (gateway, "file") == 0 || strcmp (gateway, "both") == 0)
        rc |= s_run (dir, "file", n > 0 ? (size_t) n : 100000, (int) k, replay);
    if (strcmp (gateway, "http") == 0 || strcmp (gateway, "both") == 0)
        rc |= s_run (dir, "http", n > 0 ? (size_t) n : 20000, (int) k, replay);
    return rc;
}
