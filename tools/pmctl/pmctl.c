/* pmctl - the operator CLI: talks to the daemons' ROUTERs (DEALER requests)
 * and PUBs (events), with the endpoints from the same config the daemons use.
 *
 * main reads the global options and the config, then hands the rest of the
 * command line to one command function; each returns the exit code. Requests
 * go out through pm/client.h: the same id is resent until the deadline, so a
 * retried write is applied at most once. */
#include "pmctl.h"

#include "pm/clock.h"
#include "pm/err.h"
#include "pm/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_WAIT_TRY_MS 200 /* ping --wait: resend this often */

static void
s_usage (FILE *f)
{
    fprintf (f,
             "usage: pmctl [-c FILE] [--json] [--timeout MS] COMMAND [ARGS]\n"
             "\n"
             "Operator CLI for the move-in daemons (intake, inspection, workorder, billing,\n"
             "notify). Endpoints come from -c FILE, else $PM_CONFIG, else the embedded\n"
             "default (deploy/pm.conf); PM_HOME moves var/.\n"
             "\n"
             "commands:\n"
             "  endpoints                         each daemon's command and event endpoints\n"
             "  call DAEMON METHOD [JSON]         send one request; JSON is the method's body,\n"
             "                                    e.g. call intake intake.unit.get '{\"unit_id\":\"E01/1-0101\"}'\n"
             "  ping [DAEMON...] [--wait SECONDS] is each daemon up? --wait: until it is\n"
             "  metrics DAEMON [--prom]           counters, gauges, latency histograms\n"
             "                                    (--prom: Prometheus text format)\n"
             "  queues DAEMON [--limit N]         work waiting on people, N items per queue\n"
             "  clock [get | set TIME | advance DURATION]\n"
             "                                    every daemon's clock; set/advance need\n"
             "                                    [general] manual_clock = true\n"
             "  events [--follow] [--from SEQ] [DAEMON] [PREFIX]\n"
             "                                    events as JSON lines, replayed from SEQ\n"
             "                                    (default 1); --follow: then live\n"
             "  import FILE.csv [--chunk ROWS] [--inflight N]\n"
             "                                    import units and owners into intake\n"
             "                                    (default 500 rows per request, 4 in flight)\n"
             "  sync [--wait SECONDS]             wait until every daemon has applied every\n"
             "                                    event committed upstream (default 30 s)\n"
             "\n"
             "options:\n"
             "  -c FILE       config file\n"
             "  --json        machine-readable output\n"
             "  --timeout MS  per-request timeout (default 5000)\n"
             "  -h, --help    this help\n"
             "\n"
             "exit status: 0 ok; 1 failure (no answer, error reply); 2 usage, input or\n"
             "config error; 3 import finished with rejected rows.\n");
}

/* --- shared helpers (pmctl.h) -------------------------------------------------- */

const char *
pmctl_endpoint (const pmctl_t *ctl, const char *daemon, const char *key)
{
    size_t n;
    const char *const *names = pm_config_daemons (ctl->cfg, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp (names[i], daemon) == 0)
            return pm_config_get (ctl->cfg, daemon, key, NULL);
    return NULL;
}

void
pmctl_unknown_daemon (const pmctl_t *ctl, const char *daemon)
{
    size_t n;
    const char *const *names = pm_config_daemons (ctl->cfg, &n);
    fprintf (stderr, "pmctl: unknown daemon '%s'; daemons in %s:", daemon, pm_config_name (ctl->cfg));
    for (size_t i = 0; i < n; i++)
        fprintf (stderr, "%s %s", i ? "," : "", names[i]);
    fputc ('\n', stderr);
}

bool
pmctl_parse_int (const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll (s, &end, 10) : 0;
    if (!s || !*s || *end || errno == ERANGE || v < min || v > max) {
        fprintf (stderr, "pmctl: %s '%s': expected a whole number from %" PRId64 " to %" PRId64 "\n", opt,
                 s ? s : "", min, max);
        return false;
    }
    *out = v;
    return true;
}

int
pmctl_late_option (pmctl_t *ctl, int argc, char **argv, int *i)
{
    if (strcmp (argv[*i], "--json") == 0) {
        ctl->json = true;
        return 1;
    }
    if (strcmp (argv[*i], "--timeout") == 0) {
        int64_t ms;
        if (*i + 1 >= argc) {
            fprintf (stderr, "pmctl: --timeout needs a value in milliseconds\n");
            return -1;
        }
        if (!pmctl_parse_int ("--timeout", argv[*i + 1], 1, 3600000, &ms))
            return -1;
        ctl->timeout_ms = (int) ms;
        (*i)++;
        return 1;
    }
    return 0;
}

void
pmctl_request (const pmctl_t *ctl, Pm__V1__Request *req, char id[27], const char *method,
               ProtobufCMessage *body)
{
    pm__v1__request__init (req);
    pm_request_id (id);
    req->id = id;
    req->method = (char *) method;
    req->actor = (char *) ctl->actor;
    pm_body_set (&req->base, method, body);
}

void
pmctl_no_answer (const char *daemon, const char *endpoint, int ms)
{
    fprintf (stderr, "pmctl: %s did not answer at %s within %d ms: is it running? (./pm status)\n", daemon,
             endpoint, ms);
}

int
pmctl_call (const pmctl_t *ctl, pm_client_t *c, const char *daemon, const char *endpoint,
            const Pm__V1__Request *req, Pm__V1__Reply **reply)
{
    int retry = ctl->timeout_ms / 2 > 0 ? ctl->timeout_ms / 2 : 1;
    int rc = pm_client_call (c, req, ctl->timeout_ms, retry, reply);
    if (rc == PM_OK)
        return PMCTL_OK;
    if (rc == PM_ETIMEDOUT)
        pmctl_no_answer (daemon, endpoint, ctl->timeout_ms);
    else
        fprintf (stderr, "pmctl: %s at %s: %s\n", daemon, endpoint, pm_strerror (rc));
    return PMCTL_FAIL;
}

int
pmctl_print_json (cJSON *j, bool pretty)
{
    char *s = j ? (pretty ? cJSON_Print (j) : cJSON_PrintUnformatted (j)) : NULL;
    cJSON_Delete (j);
    if (!s) {
        fprintf (stderr, "pmctl: out of memory rendering JSON\n");
        return PMCTL_FAIL;
    }
    fputs (s, stdout);
    fputc ('\n', stdout);
    free (s);
    return PMCTL_OK;
}

/* --- one request to one daemon ---------------------------------------------------- */

/* Connects to daemon's command endpoint. NULL (after printing why) if the
 * daemon is not in the config or the endpoint is unusable; *code says which. */
static pm_client_t *
s_connect (const pmctl_t *ctl, const char *daemon, const char **endpoint, int *code)
{
    *endpoint = pmctl_endpoint (ctl, daemon, "command");
    if (!*endpoint) {
        pmctl_unknown_daemon (ctl, daemon);
        *code = PMCTL_USAGE;
        return NULL;
    }
    pm_client_t *c = pm_client_new (NULL, *endpoint);
    if (!c) {
        fprintf (stderr, "pmctl: cannot connect to %s at %s: %s\n", daemon, *endpoint, zmq_strerror (errno));
        *code = PMCTL_USAGE;
    }
    return c;
}

/* Sends method with body to daemon and waits for the reply (the caller's).
 * Returns PMCTL_OK or the exit code after printing what went wrong. A non-OK
 * status is not an error here: the caller decides how to show it. */
static int
s_request (const pmctl_t *ctl, const char *daemon, const char *method, ProtobufCMessage *body,
           Pm__V1__Reply **reply)
{
    const char *endpoint;
    int code = PMCTL_OK;
    *reply = NULL;
    pm_client_t *c = s_connect (ctl, daemon, &endpoint, &code);
    if (!c)
        return code;
    Pm__V1__Request req;
    char id[27];
    pmctl_request (ctl, &req, id, method, body);
    code = pmctl_call (ctl, c, daemon, endpoint, &req, reply);
    pm_client_destroy (&c);
    return code;
}

/* Prints a non-OK reply's status and message to stderr; returns PMCTL_FAIL. */
static int
s_reply_failed (const char *daemon, const Pm__V1__Reply *r)
{
    fprintf (stderr, "pmctl: %s: %s: %s\n", daemon, pm_status_name (r->status), r->message);
    return PMCTL_FAIL;
}

/* --- the same request to many daemons at once -------------------------------------- */

/* One daemon of a fan-out: its connection, its request and its answer. */
typedef struct {
    const char *daemon;
    const char *endpoint;
    pm_client_t *client;    /* NULL if the endpoint could not be used */
    char id[27];
    Pm__V1__Request req;
    Pm__V1__Reply *reply;   /* the answer, or NULL */
} s_target_t;

/* Sends method to every target (each with its own id and DEALER) and waits
 * until all answered or timeout_ms passed, resending the unanswered ones
 * (same id) every retry_ms. body is borrowed. Targets without an answer keep
 * reply NULL. */
static void
s_fan_out (const pmctl_t *ctl, void *zctx, s_target_t *t, size_t n, const char *method,
           ProtobufCMessage *body, int timeout_ms, int retry_ms)
{
    int64_t deadline = pm_mono_ms () + timeout_ms;
    for (size_t i = 0; i < n; i++) {
        t[i].client = pm_client_new (zctx, t[i].endpoint);
        if (!t[i].client)
            fprintf (stderr, "pmctl: cannot connect to %s at %s: %s\n", t[i].daemon, t[i].endpoint,
                     zmq_strerror (errno));
        pmctl_request (ctl, &t[i].req, t[i].id, method, body);
    }
    zmq_pollitem_t *items = calloc (n ? n : 1, sizeof *items);
    size_t *which = calloc (n ? n : 1, sizeof *which);
    while (items && which) {
        int64_t now = pm_mono_ms ();
        if (now >= deadline)
            break;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (t[i].client && !t[i].reply) {
                pm_client_send (t[i].client, &t[i].req);
                items[k] = (zmq_pollitem_t) { pm_client_socket (t[i].client), 0, ZMQ_POLLIN, 0 };
                which[k++] = i;
            }
        if (k == 0)
            break;
        int64_t resend = now + retry_ms < deadline ? now + retry_ms : deadline;
        while (k > 0 && (now = pm_mono_ms ()) < resend) {
            if (zmq_poll (items, (int) k, (long) (resend - now)) < 0)
                break; /* EINTR: resend and go on until the deadline */
            for (size_t j = 0; j < k; j++) {
                if (!(items[j].revents & ZMQ_POLLIN))
                    continue;
                s_target_t *x = &t[which[j]];
                Pm__V1__Reply *r = NULL;
                if (pm_client_recv (x->client, 0, &r) != PM_OK || !r)
                    continue;
                if (strcmp (r->id, x->id) == 0 && !x->reply)
                    x->reply = r;
                else
                    pm__v1__reply__free_unpacked (r, NULL); /* an answer to an earlier try */
            }
            size_t left = 0; /* keep polling only the unanswered */
            for (size_t j = 0; j < k; j++)
                if (!t[which[j]].reply) {
                    items[left] = items[j];
                    items[left].revents = 0;
                    which[left++] = which[j];
                }
            k = left;
        }
    }
    free (items);
    free (which);
}

/* Releases the targets' connections and replies. */
static void
s_targets_free (s_target_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pm_client_destroy (&t[i].client);
        if (t[i].reply)
            pm__v1__reply__free_unpacked (t[i].reply, NULL);
    }
    free (t);
}

/* Targets for the named daemons, or every daemon in the config when none is
 * named. NULL (after printing why) for an unknown name; *code says which. */
static s_target_t *
s_targets (const pmctl_t *ctl, char **names, size_t nnames, size_t *n, int *code)
{
    size_t nall;
    const char *const *all = pm_config_daemons (ctl->cfg, &nall);
    *n = nnames ? nnames : nall;
    s_target_t *t = calloc (*n ? *n : 1, sizeof *t);
    if (!t) {
        fprintf (stderr, "pmctl: out of memory\n");
        *code = PMCTL_FAIL;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        t[i].daemon = nnames ? names[i] : all[i];
        t[i].endpoint = pmctl_endpoint (ctl, t[i].daemon, "command");
        if (!t[i].endpoint) {
            pmctl_unknown_daemon (ctl, t[i].daemon);
            free (t);
            *code = PMCTL_USAGE;
            return NULL;
        }
    }
    if (*n == 0) {
        fprintf (stderr, "pmctl: %s names no daemons\n", pm_config_name (ctl->cfg));
        free (t);
        *code = PMCTL_USAGE;
        return NULL;
    }
    return t;
}

/* --- endpoints ------------------------------------------------------------------- */

/* `endpoints`: each daemon's command and event endpoints. */
static int
s_cmd_endpoints (pmctl_t *ctl, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int rc = pmctl_late_option (ctl, argc, argv, &i);
        if (rc < 0)
            return PMCTL_USAGE;
        if (rc == 0) {
            fprintf (stderr, "pmctl: endpoints takes no arguments (got '%s')\n", argv[i]);
            return PMCTL_USAGE;
        }
    }
    size_t n;
    const char *const *names = pm_config_daemons (ctl->cfg, &n);
    if (ctl->json) {
        cJSON *a = cJSON_CreateArray ();
        for (size_t i = 0; a && i < n; i++) {
            cJSON *o = cJSON_CreateObject ();
            cJSON_AddStringToObject (o, "daemon", names[i]);
            cJSON_AddStringToObject (o, "command", pm_config_get (ctl->cfg, names[i], "command", ""));
            cJSON_AddStringToObject (o, "events", pm_config_get (ctl->cfg, names[i], "events", ""));
            cJSON_AddItemToArray (a, o);
        }
        return pmctl_print_json (a, false);
    }
    int w = 6, wc = 7;
    for (size_t i = 0; i < n; i++) {
        int l = (int) strlen (names[i]), lc = (int) strlen (pm_config_get (ctl->cfg, names[i], "command", ""));
        w = l > w ? l : w;
        wc = lc > wc ? lc : wc;
    }
    printf ("%-*s  %-*s  %s\n", w, "DAEMON", wc, "COMMAND", "EVENTS");
    for (size_t i = 0; i < n; i++)
        printf ("%-*s  %-*s  %s\n", w, names[i], wc, pm_config_get (ctl->cfg, names[i], "command", ""),
                pm_config_get (ctl->cfg, names[i], "events", ""));
    return PMCTL_OK;
}

/* --- call -------------------------------------------------------------------------- */

/* Prints "unknown method 'x'; methods: a.b, ..." listing Request's body fields. */
static void
s_unknown_method (const char *method)
{
    const ProtobufCMessageDescriptor *d = &pm__v1__request__descriptor;
    fprintf (stderr, "pmctl: unknown method '%s'; methods:", method);
    bool first = true;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        fprintf (stderr, "%s ", first ? "" : ",");
        for (const char *p = f->name; *p; p++)
            fputc (*p == '_' ? '.' : *p, stderr);
        first = false;
    }
    fputc ('\n', stderr);
}

/* The body for method from json text (NULL text: an empty body). NULL after
 * printing why; the result is the caller's (protobuf_c_message_free_unpacked). */
static ProtobufCMessage *
s_body_from_json (const ProtobufCFieldDescriptor *f, const char *method, const char *text)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts (text ? text : "{}", &end, 1);
    if (!j) {
        size_t at = end && text ? (size_t) (end - text) : 0;
        if (end && *end)
            fprintf (stderr, "pmctl: bad JSON at offset %zu: near '%.20s'\n", at, end);
        else
            fprintf (stderr, "pmctl: bad JSON: it ends at offset %zu before it is complete (a missing '}', ']' "
                             "or '\"'?)\n", at);
        return NULL;
    }
    char *err = NULL;
    ProtobufCMessage *body = pm_json_to_msg (f->descriptor, j, &err);
    cJSON_Delete (j);
    if (!body) {
        fprintf (stderr, "pmctl: %s body (%s): %s\n", method,
                 ((const ProtobufCMessageDescriptor *) f->descriptor)->name, err ? err : "invalid");
        free (err);
    }
    return body;
}

/* `call DAEMON METHOD [JSON]`: one request, body from JSON through the descriptors. */
/* Collects a command's positional arguments (at most max) into pos, taking
 * global options met on the way. Returns their count, or -1 after printing
 * "pmctl: USAGE: unexpected 'x'HINT" when there are more. */
static int
s_positionals (pmctl_t *ctl, int argc, char **argv, const char **pos, int max, const char *usage,
               const char *hint)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        int rc = pmctl_late_option (ctl, argc, argv, &i);
        if (rc < 0)
            return -1;
        if (rc > 0)
            continue;
        if (n == max) {
            fprintf (stderr, "pmctl: %s: unexpected '%s'%s\n", usage, argv[i], hint);
            return -1;
        }
        pos[n++] = argv[i];
    }
    return n;
}

static int
s_cmd_call (pmctl_t *ctl, int argc, char **argv)
{
    const char *pos[3] = { NULL, NULL, NULL };
    int npos = s_positionals (ctl, argc, argv, pos, 3, "call DAEMON METHOD [JSON]", " (quote the JSON)");
    if (npos < 0)
        return PMCTL_USAGE;
    if (npos < 2) {
        fprintf (stderr, "usage: pmctl call DAEMON METHOD [JSON]\n");
        return PMCTL_USAGE;
    }
    const char *daemon = pos[0], *method = pos[1];
    if (!pmctl_endpoint (ctl, daemon, "command")) {
        pmctl_unknown_daemon (ctl, daemon);
        return PMCTL_USAGE;
    }
    const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, method);
    if (!f) {
        s_unknown_method (method);
        return PMCTL_USAGE;
    }
    ProtobufCMessage *body = s_body_from_json (f, method, pos[2]);
    if (!body)
        return PMCTL_USAGE;
    Pm__V1__Reply *r = NULL;
    int code = s_request (ctl, daemon, method, body, &r);
    protobuf_c_message_free_unpacked (body, NULL);
    if (code != PMCTL_OK)
        return code;
    bool ok = r->status == PM__V1__STATUS__OK;
    if (ctl->json) {
        cJSON *j = pm_msg_to_json (&r->base);
        if (j && !cJSON_HasObjectItem (j, "status")) /* proto3 leaves OK (0) out; say it */
            cJSON_AddStringToObject (j, "status", pm_status_name (r->status));
        code = pmctl_print_json (j, false);
    }
    else {
        fprintf (ok ? stdout : stderr, "%s: %s\n", pm_status_name (r->status), r->message);
        ProtobufCMessage *rb = pm_body_get (&r->base, method);
        if (rb)
            code = pmctl_print_json (pm_msg_to_json (rb), true);
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return ok ? code : PMCTL_FAIL;
}

/* --- ping ---------------------------------------------------------------------------- */

/* `ping [DAEMON...] [--wait SECONDS]`: ops.ping to all of them at once. */
static int
s_cmd_ping (pmctl_t *ctl, int argc, char **argv)
{
    char **names = calloc ((size_t) argc, sizeof *names);
    size_t nnames = 0;
    int64_t wait_s = -1;
    int code = PMCTL_OK;
    if (!names)
        return PMCTL_FAIL;
    for (int i = 1; i < argc; i++) {
        int rc = pmctl_late_option (ctl, argc, argv, &i);
        if (rc < 0) {
            free (names);
            return PMCTL_USAGE;
        }
        if (rc > 0)
            continue;
        if (strcmp (argv[i], "--wait") == 0) {
            if (i + 1 >= argc || !pmctl_parse_int ("--wait", argv[i + 1], 0, 86400, &wait_s)) {
                if (i + 1 >= argc)
                    fprintf (stderr, "pmctl: --wait needs SECONDS\n");
                free (names);
                return PMCTL_USAGE;
            }
            i++;
        }
        else if (argv[i][0] == '-') {
            fprintf (stderr, "pmctl: ping: unknown option '%s' (usage: ping [DAEMON...] [--wait SECONDS])\n",
                     argv[i]);
            free (names);
            return PMCTL_USAGE;
        }
        else
            names[nnames++] = argv[i];
    }
    size_t n;
    s_target_t *t = s_targets (ctl, names, nnames, &n, &code);
    free (names);
    if (!t)
        return code;
    void *zctx = zmq_ctx_new ();
    Pm__V1__OpsPingRequest body = PM__V1__OPS_PING_REQUEST__INIT;
    int timeout = wait_s >= 0 ? (int) wait_s * 1000 : ctl->timeout_ms;
    int retry = wait_s >= 0 ? S_WAIT_TRY_MS : (ctl->timeout_ms / 2 > 0 ? ctl->timeout_ms / 2 : 1);
    if (timeout < S_WAIT_TRY_MS)
        timeout = S_WAIT_TRY_MS; /* --wait 0: one short try */
    s_fan_out (ctl, zctx, t, n, "ops.ping", &body.base, timeout, retry);
    cJSON *a = ctl->json ? cJSON_CreateArray () : NULL;
    for (size_t i = 0; i < n; i++) {
        const Pm__V1__Reply *r = t[i].reply;
        const Pm__V1__OpsPingReply *p = r ? r->ops_ping : NULL;
        bool up = r && r->status == PM__V1__STATUS__OK && r->body_case == PM__V1__REPLY__BODY_OPS_PING;
        if (!up)
            code = PMCTL_FAIL;
        char since[40];
        if (a) {
            cJSON *o = cJSON_CreateObject ();
            cJSON_AddStringToObject (o, "daemon", t[i].daemon);
            cJSON_AddStringToObject (o, "endpoint", t[i].endpoint);
            cJSON_AddBoolToObject (o, "up", up);
            if (up) {
                cJSON_AddNumberToObject (o, "pid", p->pid);
                cJSON_AddNumberToObject (o, "last_seq", (double) p->last_seq);
                cJSON_AddNumberToObject (o, "started_ms", (double) p->started_ms);
                cJSON_AddNumberToObject (o, "now_ms", (double) p->now_ms);
            }
            else if (r)
                cJSON_AddStringToObject (o, "error", r->message);
            cJSON_AddItemToArray (a, o);
        }
        else if (up)
            printf ("%-11s up   pid %d  seq %" PRIu64 "  since %s\n", t[i].daemon, p->pid, p->last_seq,
                    pm_time_format (p->started_ms, since, sizeof since));
        else if (r)
            printf ("%-11s DOWN (%s: %s)\n", t[i].daemon, pm_status_name (r->status), r->message);
        else
            printf ("%-11s DOWN (no answer at %s)\n", t[i].daemon, t[i].endpoint);
    }
    if (a && pmctl_print_json (a, false) != PMCTL_OK)
        code = PMCTL_FAIL;
    s_targets_free (t, n);
    zmq_ctx_term (zctx);
    return code;
}

/* --- metrics --------------------------------------------------------------------------- */

/* A metric value: whole numbers in full (counters), others with 6 digits. */
static void
s_number (char *buf, size_t size, double v)
{
    if (isfinite (v) && v == floor (v) && fabs (v) < 1e15)
        snprintf (buf, size, "%.0f", v);
    else
        snprintf (buf, size, "%.6g", v);
}

/* `metrics DAEMON [--prom]`: ops.metrics as aligned lines, Prometheus text or JSON. */
static int
s_cmd_metrics (pmctl_t *ctl, int argc, char **argv)
{
    const char *daemon = NULL;
    bool prom = false;
    for (int i = 1; i < argc; i++) {
        int rc = pmctl_late_option (ctl, argc, argv, &i);
        if (rc < 0)
            return PMCTL_USAGE;
        if (rc > 0)
            continue;
        if (strcmp (argv[i], "--prom") == 0)
            prom = true;
        else if (argv[i][0] != '-' && !daemon)
            daemon = argv[i];
        else {
            fprintf (stderr, "pmctl: metrics: unexpected '%s' (usage: metrics DAEMON [--prom])\n", argv[i]);
            return PMCTL_USAGE;
        }
    }
    if (!daemon) {
        fprintf (stderr, "usage: pmctl metrics DAEMON [--prom]\n");
        return PMCTL_USAGE;
    }
    Pm__V1__OpsMetricsRequest body = PM__V1__OPS_METRICS_REQUEST__INIT;
    Pm__V1__Reply *r;
    int code = s_request (ctl, daemon, "ops.metrics", &body.base, &r);
    if (code != PMCTL_OK)
        return code;
    const Pm__V1__OpsMetricsReply *m = r->body_case == PM__V1__REPLY__BODY_OPS_METRICS ? r->ops_metrics : NULL;
    if (r->status != PM__V1__STATUS__OK || !m)
        code = s_reply_failed (daemon, r);
    else if (prom)
        fputs (m->prometheus, stdout);
    else if (ctl->json)
        code = pmctl_print_json (pm_msg_to_json (&m->base), false);
    else {
        int w = 0;
        for (size_t i = 0; i < m->n_metrics; i++) {
            const Pm__V1__Metric *x = m->metrics[i];
            int l = (int) strlen (x->name) + (*x->labels ? (int) strlen (x->labels) + 2 : 0);
            w = l > w ? l : w;
        }
        for (size_t i = 0; i < m->n_metrics; i++) {
            const Pm__V1__Metric *x = m->metrics[i];
            char key[512], v[5][64];
            snprintf (key, sizeof key, *x->labels ? "%s{%s}" : "%s", x->name, x->labels);
            if (x->kind == PM__V1__METRIC_KIND__HISTOGRAM) {
                s_number (v[0], sizeof v[0], x->p50);
                s_number (v[1], sizeof v[1], x->p90);
                s_number (v[2], sizeof v[2], x->p99);
                s_number (v[3], sizeof v[3], x->max);
                printf ("%-*s  count=%" PRIu64 " p50=%s p90=%s p99=%s max=%s\n", w, key, x->count, v[0], v[1],
                        v[2], v[3]);
            }
            else {
                s_number (v[4], sizeof v[4], x->value);
                printf ("%-*s  %s\n", w, key, v[4]);
            }
        }
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}

/* --- queues ---------------------------------------------------------------------------- */

/* `queues DAEMON [--limit N]`: ops.queues, each queue with its items. */
static int
s_cmd_queues (pmctl_t *ctl, int argc, char **argv)
{
    const char *daemon = NULL;
    int64_t limit = 0;
    for (int i = 1; i < argc; i++) {
        int rc = pmctl_late_option (ctl, argc, argv, &i);
        if (rc < 0)
            return PMCTL_USAGE;
        if (rc > 0)
            continue;
        if (strcmp (argv[i], "--limit") == 0) {
            if (i + 1 >= argc || !pmctl_parse_int ("--limit", argv[i + 1], 1, 1000, &limit)) {
                if (i + 1 >= argc)
                    fprintf (stderr, "pmctl: --limit needs N\n");
                return PMCTL_USAGE;
            }
            i++;
        }
        else if (argv[i][0] != '-' && !daemon)
            daemon = argv[i];
        else {
            fprintf (stderr, "pmctl: queues: unexpected '%s' (usage: queues DAEMON [--limit N])\n", argv[i]);
            return PMCTL_USAGE;
        }
    }
    if (!daemon) {
        fprintf (stderr, "usage: pmctl queues DAEMON [--limit N]\n");
        return PMCTL_USAGE;
    }
    Pm__V1__OpsQueuesRequest body = PM__V1__OPS_QUEUES_REQUEST__INIT;
    body.limit = (uint32_t) limit;
    Pm__V1__Reply *r;
    int code = s_request (ctl, daemon, "ops.queues", &body.base, &r);
    if (code != PMCTL_OK)
        return code;
    const Pm__V1__OpsQueuesReply *q = r->body_case == PM__V1__REPLY__BODY_OPS_QUEUES ? r->ops_queues : NULL;
    if (r->status != PM__V1__STATUS__OK || !q)
        code = s_reply_failed (daemon, r);
    else if (ctl->json)
        code = pmctl_print_json (pm_msg_to_json (&q->base), false);
    else if (q->n_queues == 0)
        printf ("%s has no queues\n", daemon);
    else
        for (size_t i = 0; i < q->n_queues; i++) {
            const Pm__V1__Queue *x = q->queues[i];
            printf ("%s (%" PRIu64 "): %s\n", x->name, x->count, x->description);
            for (size_t k = 0; k < x->n_items; k++) {
                const Pm__V1__QueueItem *it = x->items[k];
                printf ("    %s", it->key);
                if (*it->estate_id)
                    printf ("  %s", it->estate_id);
                if (*it->unit_id)
                    printf ("  %s", it->unit_id);
                if (*it->reason)
                    printf ("  %s", it->reason);
                for (size_t f = 0; f < it->n_fields; f++)
                    printf ("  %s=%s", it->fields[f]->name, it->fields[f]->value);
                if (it->since_ms) {
                    char t[40];
                    printf ("  since %s", pm_time_format (it->since_ms, t, sizeof t));
                }
                fputc ('\n', stdout);
            }
            if (x->count > x->n_items)
                printf ("    ... %" PRIu64 " more (--limit N shows up to 1000)\n", x->count - x->n_items);
        }
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}

/* --- clock ------------------------------------------------------------------------------ */

/* `clock [get | set TIME | advance DURATION]`: ops.clock to every daemon in
 * the config; the arguments are checked here before anything is sent. */
static int
s_cmd_clock (pmctl_t *ctl, int argc, char **argv)
{
    const char *pos[2] = { NULL, NULL };
    int npos = s_positionals (ctl, argc, argv, pos, 2, "clock [get | set TIME | advance DURATION]", "");
    if (npos < 0)
        return PMCTL_USAGE;
    Pm__V1__OpsClockRequest body = PM__V1__OPS_CLOCK_REQUEST__INIT;
    const char *verb = pos[0] ? pos[0] : "get";
    int64_t ms;
    if (strcmp (verb, "get") == 0 && npos <= 1)
        ;
    else if (strcmp (verb, "set") == 0 && npos == 2) {
        if (pm_time_parse (pos[1], &ms) != PM_OK) {
            fprintf (stderr, "pmctl: clock set '%s': not a UTC time; expected RFC 3339 such as "
                             "2026-12-01T09:00:00Z\n", pos[1]);
            return PMCTL_USAGE;
        }
        body.set_to = (char *) pos[1];
    }
    else if (strcmp (verb, "advance") == 0 && npos == 2) {
        if (pm_duration_parse (pos[1], &ms) != PM_OK || ms < 0) {
            fprintf (stderr, "pmctl: clock advance '%s': not a duration; expected e.g. 90s, 15m, 3h, 3d, 1d12h "
                             "or 500ms\n", pos[1]);
            return PMCTL_USAGE;
        }
        body.advance_by = (char *) pos[1];
    }
    else {
        fprintf (stderr, "usage: pmctl clock [get | set TIME | advance DURATION]\n");
        return PMCTL_USAGE;
    }
    size_t n;
    int code = PMCTL_OK;
    s_target_t *t = s_targets (ctl, NULL, 0, &n, &code);
    if (!t)
        return code;
    void *zctx = zmq_ctx_new ();
    s_fan_out (ctl, zctx, t, n, "ops.clock", &body.base, ctl->timeout_ms,
               ctl->timeout_ms / 2 > 0 ? ctl->timeout_ms / 2 : 1);
    cJSON *a = ctl->json ? cJSON_CreateArray () : NULL;
    for (size_t i = 0; i < n; i++) {
        const Pm__V1__Reply *r = t[i].reply;
        const Pm__V1__OpsClockReply *c =
            r && r->status == PM__V1__STATUS__OK && r->body_case == PM__V1__REPLY__BODY_OPS_CLOCK ? r->ops_clock
                                                                                                : NULL;
        if (!r)
            pmctl_no_answer (t[i].daemon, t[i].endpoint, ctl->timeout_ms);
        else if (!c)
            s_reply_failed (t[i].daemon, r);
        if (!c)
            code = PMCTL_FAIL;
        if (a) {
            cJSON *o = cJSON_CreateObject ();
            cJSON_AddStringToObject (o, "daemon", t[i].daemon);
            if (c) {
                cJSON_AddStringToObject (o, "now", c->now);
                cJSON_AddNumberToObject (o, "now_ms", (double) c->now_ms);
                cJSON_AddBoolToObject (o, "manual", c->manual);
            }
            else
                cJSON_AddStringToObject (o, "error", r ? r->message : "no answer");
            cJSON_AddItemToArray (a, o);
        }
        else if (c)
            printf ("%-11s %s%s\n", t[i].daemon, c->now, c->manual ? "  (manual)" : "");
    }
    if (a && pmctl_print_json (a, false) != PMCTL_OK)
        code = PMCTL_FAIL;
    s_targets_free (t, n);
    zmq_ctx_term (zctx);
    return code;
}

/* --- sync ------------------------------------------------------------------------- */

/* The applied seq a consumer reports for source (its metric
 * pm_consumer_applied_seq{source="..."}), or -1 when it does not consume it. */
static int64_t
s_applied_seq (const Pm__V1__Reply *r, const char *source)
{
    char labels[128];
    snprintf (labels, sizeof labels, "source=\"%s\"", source);
    if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_METRICS)
        return -1;
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        if (strcmp (m->name, "pm_consumer_applied_seq") == 0 && strcmp (m->labels, labels) == 0)
            return (int64_t) m->value;
    }
    return -1;
}

/* `sync [--wait SECONDS]`: waits until every daemon has applied every event its
 * upstreams have committed (projections consistent), e.g. after an import. */
static int
s_cmd_sync (pmctl_t *ctl, int argc, char **argv)
{
    int64_t wait_s = 30;
    for (int i = 1; i < argc; i++) {
        int late = pmctl_late_option (ctl, argc, argv, &i);
        if (late < 0)
            return PMCTL_USAGE;
        if (late)
            continue;
        if (strcmp (argv[i], "--wait") == 0 && i + 1 < argc) {
            if (!pmctl_parse_int ("--wait", argv[++i], 0, 86400, &wait_s))
                return PMCTL_USAGE;
            continue;
        }
        fprintf (stderr, "pmctl: sync takes [--wait SECONDS], not '%s'\n", argv[i]);
        return PMCTL_USAGE;
    }
    int code = PMCTL_OK;
    size_t n;
    s_target_t *ping = s_targets (ctl, NULL, 0, &n, &code);
    if (!ping)
        return code;
    s_target_t *met = s_targets (ctl, NULL, 0, &n, &code);
    if (!met) {
        free (ping);
        return code;
    }
    void *zctx = zmq_ctx_new ();
    int64_t deadline = pm_mono_ms () + wait_s * 1000;
    char lag[512];
    for (;;) {
        s_fan_out (ctl, zctx, ping, n, "ops.ping", NULL, ctl->timeout_ms, ctl->timeout_ms / 2);
        s_fan_out (ctl, zctx, met, n, "ops.metrics", NULL, ctl->timeout_ms, ctl->timeout_ms / 2);
        size_t used = 0;
        bool down = false;
        lag[0] = '\0';
        for (size_t i = 0; i < n; i++)
            down |= !ping[i].reply || !met[i].reply;
        for (size_t c = 0; c < n && !down; c++)
            for (size_t u = 0; u < n; u++) {
                int64_t applied = s_applied_seq (met[c].reply, ping[u].daemon);
                uint64_t last = ping[u].reply->ops_ping->last_seq;
                if (applied >= 0 && (uint64_t) applied < last && used < sizeof lag)
                    used += (size_t) snprintf (lag + used, sizeof lag - used, "%s%s has %s:%lld of %llu",
                                               used ? ", " : "", met[c].daemon, ping[u].daemon,
                                               (long long) applied, (unsigned long long) last);
            }
        if (!down && !lag[0]) {
            if (!ctl->json)
                printf ("in sync: every daemon has applied every committed event\n");
            else
                printf ("{\"in_sync\":true}\n");
            break;
        }
        if (pm_mono_ms () >= deadline) {
            for (size_t i = 0; i < n; i++)
                if (!ping[i].reply || !met[i].reply)
                    fprintf (stderr, "pmctl: %s did not answer at %s\n", ping[i].daemon, ping[i].endpoint);
            if (lag[0])
                fprintf (stderr, "pmctl: not in sync after %llds: %s\n", (long long) wait_s, lag);
            code = PMCTL_FAIL;
            break;
        }
        for (size_t i = 0; i < n; i++) { /* ask again */
            pm_client_destroy (&ping[i].client);
            pm_client_destroy (&met[i].client);
            if (ping[i].reply)
                pm__v1__reply__free_unpacked (ping[i].reply, NULL);
            if (met[i].reply)
                pm__v1__reply__free_unpacked (met[i].reply, NULL);
            ping[i].reply = met[i].reply = NULL;
        }
        zmq_poll (NULL, 0, 50); /* polling interval */
    }
    s_targets_free (ping, n);
    s_targets_free (met, n);
    zmq_ctx_term (zctx);
    return code;
}

/* --- main ---------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn) (pmctl_t *ctl, int argc, char **argv);
} s_commands[] = {
    { "endpoints", s_cmd_endpoints }, { "call", s_cmd_call },     { "ping", s_cmd_ping },
    { "metrics", s_cmd_metrics },     { "queues", s_cmd_queues }, { "clock", s_cmd_clock },
    { "events", pmctl_events },       { "import", pmctl_import }, { "sync", s_cmd_sync },
};

/* "pmctl:$USER" (the login name if USER is unset). */
static void
s_actor (pmctl_t *ctl)
{
    const char *user = getenv ("USER");
    if (!user || !*user) {
        struct passwd *pw = getpwuid (getuid ());
        user = pw ? pw->pw_name : NULL;
    }
    if (user)
        snprintf (ctl->actor, sizeof ctl->actor, "pmctl:%s", user);
    else
        snprintf (ctl->actor, sizeof ctl->actor, "pmctl:uid%d", (int) getuid ());
}

int
main (int argc, char **argv)
{
    pmctl_t ctl = { .timeout_ms = 5000 };
    const char *path = getenv ("PM_CONFIG");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp (argv[i], "-h") == 0 || strcmp (argv[i], "--help") == 0) {
            s_usage (stdout);
            return PMCTL_OK;
        }
        if (strcmp (argv[i], "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf (stderr, "pmctl: -c needs a config FILE\n");
                return PMCTL_USAGE;
            }
            path = argv[++i];
            continue;
        }
        int rc = pmctl_late_option (&ctl, argc, argv, &i);
        if (rc < 0)
            return PMCTL_USAGE;
        if (rc == 0) {
            fprintf (stderr, "pmctl: unknown option '%s' (try pmctl --help)\n", argv[i]);
            return PMCTL_USAGE;
        }
    }
    if (i >= argc) {
        s_usage (stderr);
        return PMCTL_USAGE;
    }
    for (int k = i + 1; k < argc; k++)
        if (strcmp (argv[k], "-h") == 0 || strcmp (argv[k], "--help") == 0) {
            s_usage (stdout);
            return PMCTL_OK;
        }
    int (*fn) (pmctl_t *, int, char **) = NULL;
    for (size_t k = 0; k < sizeof s_commands / sizeof s_commands[0]; k++)
        if (strcmp (argv[i], s_commands[k].name) == 0)
            fn = s_commands[k].fn;
    if (!fn) {
        fprintf (stderr, "pmctl: unknown command '%s' (try pmctl --help)\n", argv[i]);
        return PMCTL_USAGE;
    }
    char *err = NULL;
    ctl.cfg = pm_config_load (path && *path ? path : NULL, &err);
    if (!ctl.cfg) {
        fprintf (stderr, "pmctl: %s\n", err ? err : "cannot load the config");
        free (err);
        return PMCTL_USAGE;
    }
    s_actor (&ctl);
    signal (SIGPIPE, SIG_IGN); /* a closed stdout shows as EPIPE on write */
    int code = fn (&ctl, argc - i, argv + i);
    pm_config_destroy (&ctl.cfg);
    if (fflush (stdout) != 0 && errno != EPIPE && code == PMCTL_OK) {
        fprintf (stderr, "pmctl: writing output: %s\n", strerror (errno));
        code = PMCTL_FAIL;
    }
    return code;
}
