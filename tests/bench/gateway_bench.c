/* pm-gateway-bench - the gateway's three rates, on the real daemons.
 *
 *   pm-gateway-bench [--units N] [--connections C] [--seconds S] [--live N] [--hook-events N] [--dir DIR]
 *
 * It starts pm-intake and pm-gateway (from the build tree next to this
 * binary) in a temp PM_HOME, imports N units into intake (one
 * intake.unit.registered event each, which the gateway logs), makes an API
 * token, then measures:
 *
 *   1. API calls/s: C HTTP/1.1 keep-alive connections, each sending
 *      POST /v1/intake/intake.unit.get back to back for S seconds (after a
 *      second of warm-up); every answer must be 200. Latency per call.
 *   2. SSE events/s to one client: GET /v1/events?from=intake:0 replays the
 *      N events from the gateway's log (timed from the request to the N-th
 *      event); then a live stream while N/2 more units are imported.
 *   3. Webhook deliveries/s to one local receiver (libmicrohttpd, its own
 *      thread, answers 200): a subscription from the start of the log, timed
 *      from the receiver's first POST to its K-th.
 *
 * The client is single-threaded epoll on raw sockets, so it costs little of
 * the two cores it shares with the daemons. */
#define _GNU_SOURCE
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define S_CHUNK 500
#define S_INFLIGHT 8

static const char *const s_columns[] = { "estate_id", "estate_name", "building", "unit", "floor",
                                         "area_m2", "owner_name", "phone", "email", "id_number" };

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (p);
}

static pid_t
s_start (const char *dir, const char *name)
{
    char self[PATH_MAX], daemon[PATH_MAX + 64];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr (self, '/') = '\0';
    snprintf (daemon, sizeof daemon, "%s/../../services/%s/pm-%s", self, name, name);
    pid_t pid = fork ();
    if (pid == 0) {
        char log[PATH_MAX + 32];
        snprintf (log, sizeof log, "%s/%s.log", dir, name);
        FILE *f = freopen (log, "a", stderr);
        (void) f;
        execl (daemon, daemon, (char *) NULL);
        fprintf (stderr, "pm-gateway-bench: cannot run %s: %s\n", daemon, strerror (errno));
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

static Pm__V1__Reply *
s_call (pm_client_t *c, const char *method, ProtobufCMessage *body)
{
    char id[27];
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "pm-gateway-bench";
    if (body)
        pm_body_set (&req.base, method, body);
    Pm__V1__Reply *r = NULL;
    return pm_client_call (c, &req, 30000, 2000, &r) == PM_OK ? r : NULL;
}

/* A metric's value from ops.metrics, or -1. */
static double
s_metric (pm_client_t *c, const char *name, const char *labels)
{
    Pm__V1__Reply *r = s_call (c, "ops.metrics", NULL);
    double v = -1;
    for (size_t i = 0; r && r->body_case == PM__V1__REPLY__BODY_OPS_METRICS && i < r->ops_metrics->n_metrics; i++)
        if (strcmp (r->ops_metrics->metrics[i]->name, name) == 0 && strcmp (r->ops_metrics->metrics[i]->labels, labels) == 0)
            v = r->ops_metrics->metrics[i]->value;
    if (r)
        pm__v1__reply__free_unpacked (r, NULL);
    return v;
}

/* Imports units first..first+n-1 of estate (buildings of 500), S_INFLIGHT chunks in flight. */
static bool
s_import (pm_client_t *c, const char *estate, int n)
{
    pm_inflight_t *fl = pm_inflight_new (5000);
    int chunks = (n + S_CHUNK - 1) / S_CHUNK, sent = 0, done = 0;
    bool ok = true;
    static Pm__V1__ImportRow rows[S_INFLIGHT][S_CHUNK];
    static Pm__V1__ImportRow *rowp[S_INFLIGHT][S_CHUNK];
    static char units[S_INFLIGHT][S_CHUNK][16], buildings[S_INFLIGHT][16];
    int slot_of[S_INFLIGHT + 1];
    for (int i = 0; i < S_INFLIGHT; i++)
        slot_of[i] = i;
    int free_slots = S_INFLIGHT;
    while (done < chunks && ok) {
        while (sent < chunks && free_slots > 0) {
            int s = slot_of[--free_slots];
            int rows_n = n - sent * S_CHUNK < S_CHUNK ? n - sent * S_CHUNK : S_CHUNK;
            snprintf (buildings[s], sizeof buildings[s], "%04d", sent);
            for (int i = 0; i < rows_n; i++) {
                Pm__V1__ImportRow *r = &rows[s][i];
                pm__v1__import_row__init (r);
                snprintf (units[s][i], sizeof units[s][i], "%04d", i);
                r->line = (uint32_t) (sent * S_CHUNK + i + 2);
                r->estate_id = (char *) estate;
                r->estate_name = "Bench Garden";
                r->building = buildings[s];
                r->unit = units[s][i];
                r->floor = "12";
                r->area_m2 = "89.50";
                r->owner_name = "Owner";
                r->phone = "13812345678";
                r->email = "o@example.com";
                r->id_number = "11010519491231002X";
                rowp[s][i] = r;
            }
            Pm__V1__IntakeImportRequest body = PM__V1__INTAKE_IMPORT_REQUEST__INIT;
            Pm__V1__Request req = PM__V1__REQUEST__INIT;
            char id[27], batch[32];
            pm_request_id (id);
            snprintf (batch, sizeof batch, "bench:%s", estate);
            req.id = id;
            req.method = "intake.import";
            req.actor = "pm-gateway-bench";
            body.batch_id = batch;
            body.file_name = batch;
            body.chunk_no = (uint32_t) sent + 1;
            body.columns = (char **) s_columns;
            body.n_columns = sizeof s_columns / sizeof s_columns[0];
            body.rows = rowp[s];
            body.n_rows = (size_t) rows_n;
            pm_body_set (&req.base, "intake.import", &body.base);
            if (pm_inflight_add (fl, c, &req, 60000, (void *) (intptr_t) s) != PM_OK) {
                ok = false;
                break;
            }
            sent++;
        }
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        if (pm_inflight_wait (fl, 60000, &r, &user) != PM_OK || !r || r->status != PM__V1__STATUS__OK)
            ok = false;
        if (r)
            pm__v1__reply__free_unpacked (r, NULL);
        slot_of[free_slots++] = (int) (intptr_t) user;
        done++;
    }
    pm_inflight_destroy (&fl);
    return ok;
}

static int
s_connect (uint16_t port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

/* --- 1. API calls over keep-alive ----------------------------------------------------------- */

typedef struct {
    int fd;
    char buf[16384];
    size_t len;
    int64_t sent_us;
} s_conn_t;

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static bool
s_api (uint16_t port, const char *token, const char *estate, int nconn, int seconds, double *rate, double *p50,
       double *p99, long *bad)
{
    char body[64], req[1024];
    int64_t *lat = pm_xmalloc (sizeof *lat * 4000000);
    size_t nlat = 0;
    int ep = epoll_create1 (0);
    s_conn_t *conns = pm_xcalloc ((size_t) nconn, sizeof *conns);
    unsigned k = 0;
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = s_connect (port);
        if (conns[i].fd < 0)
            return false;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };
        epoll_ctl (ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    int64_t t0 = pm_mono_us (), warm = t0 + 1000000, end = warm + (int64_t) seconds * 1000000;
    long done = 0;
    *bad = 0;
#define S_SEND(cn)                                                                                                   \
    do {                                                                                                             \
        int bl = snprintf (body, sizeof body, "{\"unit_id\":\"%s/%04u/%04u\"}", estate, (k / 500) % 4, k % 500);     \
        k++;                                                                                                         \
        int rl = snprintf (req, sizeof req,                                                                          \
                           "POST /v1/intake/intake.unit.get HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "   \
                           "%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",                   \
                           token, bl, body);                                                                         \
        (cn)->sent_us = pm_mono_us ();                                                                               \
        if (write ((cn)->fd, req, (size_t) rl) != rl)                                                                \
            return false;                                                                                            \
    } while (0)
    for (int i = 0; i < nconn; i++)
        S_SEND (&conns[i]);
    int64_t now = t0;
    while (now < end) {
        struct epoll_event evs[64];
        int n = epoll_wait (ep, evs, 64, 1000);
        now = pm_mono_us ();
        for (int i = 0; i < n; i++) {
            s_conn_t *cn = evs[i].data.ptr;
            ssize_t r = read (cn->fd, cn->buf + cn->len, sizeof cn->buf - cn->len - 1);
            if (r <= 0)
                return false;
            cn->len += (size_t) r;
            cn->buf[cn->len] = '\0';
            char *hend = strstr (cn->buf, "\r\n\r\n");
            if (!hend)
                continue;
            char *cl = strcasestr (cn->buf, "Content-Length:");
            size_t blen = cl && cl < hend ? strtoul (cl + 15, NULL, 10) : 0;
            size_t total = (size_t) (hend + 4 - cn->buf) + blen;
            if (cn->len < total)
                continue;
            if (strncmp (cn->buf, "HTTP/1.1 200", 12) != 0)
                (*bad)++;
            if (cn->sent_us >= warm) {
                done++;
                if (nlat < 4000000)
                    lat[nlat++] = now - cn->sent_us;
            }
            memmove (cn->buf, cn->buf + total, cn->len - total);
            cn->len -= total;
            S_SEND (cn);
        }
    }
#undef S_SEND
    for (int i = 0; i < nconn; i++)
        close (conns[i].fd);
    close (ep);
    free (conns);
    *rate = (double) done / seconds;
    qsort (lat, nlat, sizeof *lat, s_cmp);
    *p50 = nlat ? lat[nlat / 2] / 1000.0 : 0;
    *p99 = nlat ? lat[(size_t) (nlat * 0.99)] / 1000.0 : 0;
    free (lat);
    return true;
}

/* --- 2. SSE ------------------------------------------------------------------------------------ */

typedef struct {
    int fd;
    char tail[8];
    size_t tail_len;
    long events;
    int64_t first_us, last_us;
} s_sse_t;

static bool
s_sse_open (s_sse_t *s, uint16_t port, const char *token, const char *query)
{
    memset (s, 0, sizeof *s);
    s->fd = s_connect (port);
    if (s->fd < 0)
        return false;
    char req[1024];
    /* HTTP/1.0: the stream comes unchunked (closed-delimited), so events can be counted in the bytes */
    int n = snprintf (req, sizeof req, "GET /v1/events%s HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n", query, token);
    return write (s->fd, req, (size_t) n) == n;
}

/* Reads what is there (waiting up to ms), counting "\nid: " line starts. */
static bool
s_sse_read (s_sse_t *s, int ms)
{
    static char buf[1 << 20];
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    setsockopt (s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t r = read (s->fd, buf + 8, sizeof buf - 8);
    if (r <= 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    memcpy (buf + 8 - s->tail_len, s->tail, s->tail_len);
    char *p = buf + 8 - s->tail_len, *end = buf + 8 + r;
    long before = s->events;
    while ((p = memmem (p, (size_t) (end - p), "\nid: ", 5))) {
        s->events++;
        p += 5;
    }
    if (s->events > before) {
        int64_t now = pm_mono_us ();
        if (!s->first_us)
            s->first_us = now;
        s->last_us = now;
    }
    s->tail_len = r >= 4 ? 4 : (size_t) r;
    memcpy (s->tail, buf + 8 + r - s->tail_len, s->tail_len);
    return true;
}

/* --- 3. webhooks ------------------------------------------------------------------------------ */

static atomic_long s_hook_n;
static _Atomic int64_t s_hook_first, s_hook_last;

static enum MHD_Result
s_hook_answer (void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
               const char *upload, size_t *upload_size, void **req_cls)
{
    static int marker;
    static const char ok[] = "ok";
    if (!*req_cls) {
        *req_cls = &marker;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    int64_t now = pm_mono_us ();
    int64_t zero = 0;
    atomic_compare_exchange_strong (&s_hook_first, &zero, now);
    atomic_store (&s_hook_last, now);
    atomic_fetch_add (&s_hook_n, 1);
    struct MHD_Response *resp = MHD_create_response_from_buffer (2, (void *) ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response (c, 200, resp);
    MHD_destroy_response (resp);
    return rc;
}

/* --- the run ------------------------------------------------------------------------------------- */

static void
s_usage (FILE *f)
{
    fprintf (f, "usage: pm-gateway-bench [--units N] [--connections C] [--seconds S] [--live N] [--hook-events N] "
                "[--dir DIR]\n"
                "  --units N        units imported first: the SSE replay reads their N events (default 100000)\n"
                "  --connections C  keep-alive connections for the API run (default 32)\n"
                "  --seconds S      API run length after 1 s of warm-up (default 5)\n"
                "  --live N         units imported while a live SSE stream reads (default units/2)\n"
                "  --hook-events N  deliveries timed at the webhook receiver (default 20000; at most the events logged)\n"
                "  --dir DIR        where the temp PM_HOME goes (default /tmp)\n");
}

int
main (int argc, char **argv)
{
    enum { O_UNITS = 0x100, O_CONN, O_SECS, O_LIVE, O_HOOK, O_DIR };
    static const struct option opts[] = {
        { "units", required_argument, NULL, O_UNITS }, { "connections", required_argument, NULL, O_CONN },
        { "seconds", required_argument, NULL, O_SECS }, { "live", required_argument, NULL, O_LIVE },
        { "hook-events", required_argument, NULL, O_HOOK }, { "dir", required_argument, NULL, O_DIR },
        { "help", no_argument, NULL, 'h' },             { NULL, 0, NULL, 0 },
    };
    int units = 100000, nconn = 32, secs = 5, live = -1, hook_events = 20000, opt;
    const char *base = "/tmp";
    while ((opt = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_UNITS: units = atoi (optarg); break;
        case O_CONN: nconn = atoi (optarg); break;
        case O_SECS: secs = atoi (optarg); break;
        case O_LIVE: live = atoi (optarg); break;
        case O_HOOK: hook_events = atoi (optarg); break;
        case O_DIR: base = optarg; break;
        case 'h': s_usage (stdout); return 0;
        default: s_usage (stderr); return 2;
        }
    }
    if (units < 2000 || nconn < 1 || secs < 1 || hook_events < 1) {
        s_usage (stderr);
        return 2;
    }
    if (live < 0)
        live = units / 2;
    signal (SIGPIPE, SIG_IGN);
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/pmgwbench.XXXXXX", base);
    if (!mkdtemp (dir))
        return 1;
    setenv ("PM_HOME", dir, 1);
    setenv ("PM_GENERAL_LOG_LEVEL", "warn", 1);
    setenv ("PM_INTAKE_MAP_SIZE_MB", "2048", 1);
    setenv ("PM_GATEWAY_MAP_SIZE_MB", "2048", 1);
    setenv ("PM_GATEWAY_LISTEN", "127.0.0.1:0", 1);
    int code = 1;
    void *zctx = zmq_ctx_new ();
    pid_t pi = s_start (dir, "intake"), pg = s_start (dir, "gateway");
    char ep[PATH_MAX + 32];
    snprintf (ep, sizeof ep, "ipc://%s/run/intake.cmd", dir);
    pm_client_t *ci = pm_client_new (zctx, ep);
    snprintf (ep, sizeof ep, "ipc://%s/run/gateway.cmd", dir);
    pm_client_t *cg = pm_client_new (zctx, ep);
    struct MHD_Daemon *rx = NULL;
    Pm__V1__Reply *r = s_call (ci, "ops.ping", NULL);
    Pm__V1__Reply *st = r ? s_call (cg, "gateway.status", NULL) : NULL;
    if (!r || !st || st->status != PM__V1__STATUS__OK) {
        fprintf (stderr, "pm-gateway-bench: the daemons did not start (logs in %s)\n", dir);
        goto out;
    }
    pm__v1__reply__free_unpacked (r, NULL);
    uint16_t port = (uint16_t) st->gateway_status->port;
    pm__v1__reply__free_unpacked (st, NULL);

    /* a token */
    if (sodium_init () < 0)
        goto out;
    unsigned char raw[32];
    randombytes_buf (raw, sizeof raw);
    char token[64] = "pmk_";
    sodium_bin2base64 (token + 4, sizeof token - 4, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    Pm__V1__GatewayTokenCreateRequest tb = PM__V1__GATEWAY_TOKEN_CREATE_REQUEST__INIT;
    tb.name = "bench";
    tb.role = "integration";
    tb.token = token;
    r = s_call (cg, "gateway.token.create", &tb.base);
    if (!r || r->status != PM__V1__STATUS__OK)
        goto out;
    pm__v1__reply__free_unpacked (r, NULL);

    /* the events */
    int64_t t0 = pm_mono_us ();
    if (!s_import (ci, "B1", units)) {
        fprintf (stderr, "pm-gateway-bench: import failed\n");
        goto out;
    }
    int64_t t1 = pm_mono_us ();
    while (s_metric (cg, "pm_consumer_applied_seq", "source=\"intake\"") < units)
        usleep (20000); /* waiting for the gateway to log them: polled, not a readiness guess */
    int64_t t2 = pm_mono_us ();
    printf ("setup: %d units imported in %.2f s; the gateway logged their %d events %.2f s after the import began "
            "(%.0f events/s)\n",
            units, (t1 - t0) / 1e6, units, (t2 - t0) / 1e6, units / ((t2 - t0) / 1e6));

    /* 1 */
    double rate, p50, p99;
    long bad;
    if (!s_api (port, token, "B1", nconn, secs, &rate, &p50, &p99, &bad)) {
        fprintf (stderr, "pm-gateway-bench: the API run failed\n");
        goto out;
    }
    printf ("API: POST /v1/intake/intake.unit.get over %d keep-alive connections: %.0f calls/s "
            "(target >= 10,000), latency p50 %.2f ms, p99 %.2f ms, %ld not 200\n",
            nconn, rate, p50, p99, bad);

    /* 2 */
    s_sse_t s;
    int64_t a = pm_mono_us ();
    if (!s_sse_open (&s, port, token, "?from=intake:0"))
        goto out;
    while (s.events < units && s_sse_read (&s, 10000) && pm_mono_us () - a < 120000000)
        ;
    double replay = s.events / ((s.last_us - a) / 1e6);
    printf ("SSE replay: %ld events to one client in %.2f s: %.0f events/s (target >= 50,000)\n", s.events,
            (s.last_us - a) / 1e6, replay);
    close (s.fd);
    if (!s_sse_open (&s, port, token, ""))
        goto out;
    s_sse_read (&s, 200); /* the stream's header */
    s.events = 0;
    s.first_us = 0;
    int64_t li = pm_mono_us ();
    if (!s_import (ci, "B2", live))
        goto out;
    while (s.events < live && s_sse_read (&s, 10000) && pm_mono_us () - li < 120000000)
        ;
    printf ("SSE live: %ld events followed while %d units were imported: %.0f events/s from the first to the last "
            "(import to last event %.2f s)\n",
            s.events, live, s.events / ((s.last_us - s.first_us) / 1e6), (s.last_us - li) / 1e6);
    close (s.fd);

    /* 3 */
    rx = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, s_hook_answer, NULL,
                           MHD_OPTION_END);
    if (!rx)
        goto out;
    const union MHD_DaemonInfo *bp = MHD_get_daemon_info (rx, MHD_DAEMON_INFO_BIND_PORT);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%u/hook", bp->port);
    Pm__V1__GatewayWebhookCreateRequest hb = PM__V1__GATEWAY_WEBHOOK_CREATE_REQUEST__INIT;
    char *types[] = { "intake.unit.registered" };
    hb.url = url;
    hb.secret = "bench-secret-0123456789";
    hb.types = types;
    hb.n_types = 1;
    hb.from_start = true; /* the events already logged: the receiver is the only thing that waits */
    r = s_call (cg, "gateway.webhook.create", &hb.base);
    if (!r || r->status != PM__V1__STATUS__OK)
        goto out;
    pm__v1__reply__free_unpacked (r, NULL);
    int64_t hi = pm_mono_us ();
    while (atomic_load (&s_hook_n) < hook_events && pm_mono_us () - hi < 300000000)
        usleep (2000);
    long got = atomic_load (&s_hook_n);
    double hrate = got / ((atomic_load (&s_hook_last) - atomic_load (&s_hook_first)) / 1e6);
    printf ("webhook: %ld logged events POSTed (signed, one at a time, in order) to one local receiver: %.0f "
            "deliveries/s (target >= 5,000)\n",
            got, hrate);
    Pm__V1__GatewayWebhookDeleteRequest db = PM__V1__GATEWAY_WEBHOOK_DELETE_REQUEST__INIT;
    db.id = "WH-1";
    r = s_call (cg, "gateway.webhook.delete", &db.base);
    if (r)
        pm__v1__reply__free_unpacked (r, NULL);
    code = got >= hook_events && bad == 0 ? 0 : 1;
out:
    if (rx)
        MHD_stop_daemon (rx);
    pm_client_destroy (&ci);
    pm_client_destroy (&cg);
    s_stop (pg);
    s_stop (pi);
    zmq_ctx_term (zctx);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return code;
}
