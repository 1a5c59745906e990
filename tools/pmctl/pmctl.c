/* pmctl - the operator CLI: talks to the daemons' ROUTERs (DEALER requests)
 * and PUBs (events), with the endpoints from the same config the daemons use.
 *
 * main reads the global options, finds the command in s_commands (the one
 * table that gives both `pmctl --help` and the dispatch) and hands it the
 * rest of the command line; each command reads its options with
 * pmctl_getopt (getopt_long plus the global options, which may also follow
 * the command), loads the config and returns the exit code. Requests go out
 * through pm/client.h: the same id is resent until the deadline, so a
 * retried write is applied at most once. */
#include "pmctl.h"

#include "pm/clock.h"
#include "pm/err.h"
#include "pm/json.h"
#include "pm/mem.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_WAIT_TRY_MS 200 /* ping --wait: resend this often */
#define S_TIMEOUT_DEFAULT 5000

/* --- options -------------------------------------------------------------------- */

/* getopt_long values of the global options that have no short form. */
enum { S_OPT_JSON = 0x100, S_OPT_TIMEOUT };

/* The global options a command takes too (after its name). */
static const struct option s_global_longopts[] = {
    { "json", no_argument, NULL, S_OPT_JSON },
    { "timeout", required_argument, NULL, S_OPT_TIMEOUT },
    { "help", no_argument, NULL, 'h' },
};
#define S_NGLOBAL (sizeof s_global_longopts / sizeof s_global_longopts[0])
#define S_LONGOPTS_MAX 16 /* a command's own long options, globals and the terminator */

/* Applies --json or --timeout MS. False after printing why not. */
static bool
s_global_option (pmctl_t *ctl, int opt, const char *arg)
{
    int64_t ms;
    if (opt == S_OPT_JSON) {
        ctl->json = true;
        return true;
    }
    if (!pmctl_parse_int ("--timeout", arg, 1, 3600000, &ms))
        return false;
    ctl->timeout_ms = (int) ms;
    return true;
}

/* The option getopt_long just refused, as it was written ("--chunk", "-x"). */
static const char *
s_refused (char **argv, char *buf, size_t size)
{
    const char *el = optind > 0 ? argv[optind - 1] : "";
    if (optopt > 0 && optopt < 0x100 && strncmp (el, "--", 2) != 0) {
        snprintf (buf, size, "-%c", optopt);
        return buf;
    }
    snprintf (buf, size, "%.*s", (int) strcspn (el, "="), el);
    return buf;
}

/* `pmctl COMMAND --help`. */
static void
s_command_help (const pmctl_command_t *cmd, FILE *f)
{
    fprintf (f, "usage: pmctl [-c FILE] [--json] [--timeout MS] %s%s%s\n\n%s\n\n", cmd->name,
             *cmd->synopsis ? " " : "", cmd->synopsis, cmd->help);
    fprintf (f, "--json and --timeout MS may also follow the command; pmctl --help lists every command.\n");
}

int
pmctl_getopt (pmctl_t *ctl, int argc, char **argv, const char *shortopts, const struct option *longopts,
              int *code)
{
    static char **started;                  /* the argv being read */
    static struct option all[S_LONGOPTS_MAX];
    static char shorts[64];
    if (argv != started) {
        size_t n = 0;
        for (; longopts && longopts[n].name; n++) {
            assert (n + S_NGLOBAL + 1 < S_LONGOPTS_MAX);
            all[n] = longopts[n];
        }
        memcpy (&all[n], s_global_longopts, sizeof s_global_longopts);
        memset (&all[n + S_NGLOBAL], 0, sizeof all[0]);
        snprintf (shorts, sizeof shorts, ":%sh", shortopts ? shortopts : ""); /* ':': say which needs a value */
        started = argv;
        optind = 0; /* glibc: start over, permuting positionals to the end */
        opterr = 0; /* the messages below say which command */
    }
    *code = PMCTL_OK;
    char buf[64];
    for (;;) {
        int opt = getopt_long (argc, argv, shorts, all, NULL);
        switch (opt) {
        case -1:
            return PMCTL_OPT_END;
        case 'h':
            s_command_help (ctl->command, stdout);
            return PMCTL_OPT_STOP;
        case S_OPT_JSON:
        case S_OPT_TIMEOUT:
            if (s_global_option (ctl, opt, optarg))
                continue;
            *code = PMCTL_USAGE;
            return PMCTL_OPT_STOP;
        case '?':
            *code = pmctl_usage_error (ctl, "unknown option '%s'", s_refused (argv, buf, sizeof buf));
            return PMCTL_OPT_STOP;
        case ':':
            *code = pmctl_usage_error (ctl, "option '%s' needs a value", s_refused (argv, buf, sizeof buf));
            return PMCTL_OPT_STOP;
        default:
            return opt;
        }
    }
}

int
pmctl_usage_error (const pmctl_t *ctl, const char *fmt, ...)
{
    va_list ap;
    fprintf (stderr, "pmctl: %s: ", ctl->command->name);
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fprintf (stderr, " (usage: pmctl %s%s%s)\n", ctl->command->name, *ctl->command->synopsis ? " " : "",
             ctl->command->synopsis);
    return PMCTL_USAGE;
}

int
pmctl_load_config (pmctl_t *ctl)
{
    if (ctl->cfg)
        return PMCTL_OK;
    char *err = NULL;
    ctl->cfg = pm_config_load (ctl->config_path && *ctl->config_path ? ctl->config_path : NULL, &err);
    if (!ctl->cfg) {
        fprintf (stderr, "pmctl: %s\n", err ? err : "cannot load the config");
        free (err);
        return PMCTL_USAGE;
    }
    return PMCTL_OK;
}

/* Reads the options of a command that has only the global ones, then loads
 * the config. True to go on; false to end with *code (help printed: PMCTL_OK). */
static bool
s_no_options (pmctl_t *ctl, int argc, char **argv, int *code)
{
    static const struct option none[] = { { NULL, 0, NULL, 0 } };
    if (pmctl_getopt (ctl, argc, argv, "", none, code) != PMCTL_OPT_END)
        return false;
    *code = pmctl_load_config (ctl);
    return *code == PMCTL_OK;
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
pmctl_retry_ms (const pmctl_t *ctl)
{
    return ctl->timeout_ms / 2 > 0 ? ctl->timeout_ms / 2 : 1;
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
    int rc = pm_client_call (c, req, ctl->timeout_ms, pmctl_retry_ms (ctl), reply);
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

pm_client_t *
pmctl_client (const pmctl_t *ctl, void *zctx, const char *daemon)
{
    const char *keys = pm_config_get (ctl->cfg, "pmctl", "curve_secret_file", "");
    return pm_client_new_daemon (zctx, ctl->cfg, daemon, *keys ? keys : NULL);
}

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
    pm_client_t *c = pmctl_client (ctl, NULL, daemon);
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

/* One daemon of a fan-out: its connection and its answer. */
typedef struct {
    const char *daemon;
    const char *endpoint;
    pm_client_t *client;    /* NULL if the endpoint could not be used */
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
    pm_inflight_t *fl = pm_inflight_new (retry_ms);
    for (size_t i = 0; i < n; i++) {
        t[i].client = pmctl_client (ctl, zctx, t[i].daemon);
        if (!t[i].client) {
            fprintf (stderr, "pmctl: cannot connect to %s at %s: %s\n", t[i].daemon, t[i].endpoint,
                     zmq_strerror (errno));
            continue;
        }
        Pm__V1__Request req;
        char id[27];
        pmctl_request (ctl, &req, id, method, body);
        if (pm_inflight_add (fl, t[i].client, &req, timeout_ms, &t[i]) != PM_OK)
            fprintf (stderr, "pmctl: cannot send to %s at %s: %s\n", t[i].daemon, t[i].endpoint,
                     zmq_strerror (errno));
    }
    while (pm_inflight_size (fl) > 0) {
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, -1, &r, &user);
        if (rc == PM_OK && r)
            ((s_target_t *) user)->reply = r;
        else if (rc == PM_EIO && errno != EINTR)
            break; /* EINTR: go on until the deadline */
    }
    pm_inflight_destroy (&fl);
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
    if (*n == 0) {
        fprintf (stderr, "pmctl: %s names no daemons\n", pm_config_name (ctl->cfg));
        *code = PMCTL_USAGE;
        return NULL;
    }
    s_target_t *t = pm_xcalloc (*n, sizeof *t);
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
    return t;
}

/* --- endpoints ------------------------------------------------------------------- */

/* `endpoints`: each daemon's command and event endpoints. */
static int
s_cmd_endpoints (pmctl_t *ctl, int argc, char **argv)
{
    int code;
    if (!s_no_options (ctl, argc, argv, &code))
        return code;
    if (optind < argc)
        return pmctl_usage_error (ctl, "takes no arguments (got '%s')", argv[optind]);
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
static int
s_cmd_call (pmctl_t *ctl, int argc, char **argv)
{
    int code;
    if (!s_no_options (ctl, argc, argv, &code))
        return code;
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos > 3)
        return pmctl_usage_error (ctl, "unexpected '%s' (quote the JSON)", pos[3]);
    if (npos < 2)
        return pmctl_usage_error (ctl, "needs DAEMON and METHOD");
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
    ProtobufCMessage *body = s_body_from_json (f, method, npos == 3 ? pos[2] : NULL);
    if (!body)
        return PMCTL_USAGE;
    Pm__V1__Reply *r = NULL;
    code = s_request (ctl, daemon, method, body, &r);
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
    static const struct option opts[] = {
        { "wait", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    int64_t wait_s = -1;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (!pmctl_parse_int ("--wait", optarg, 0, 86400, &wait_s))
            return PMCTL_USAGE;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    size_t n;
    s_target_t *t = s_targets (ctl, argv + optind, (size_t) (argc - optind), &n, &code);
    if (!t)
        return code;
    void *zctx = zmq_ctx_new ();
    Pm__V1__OpsPingRequest body = PM__V1__OPS_PING_REQUEST__INIT;
    int timeout = wait_s >= 0 ? (int) wait_s * 1000 : ctl->timeout_ms;
    int retry = wait_s >= 0 ? S_WAIT_TRY_MS : pmctl_retry_ms (ctl);
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
    static const struct option opts[] = {
        { "prom", no_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 },
    };
    bool prom = false;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        prom = true;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (argc - optind != 1)
        return argc - optind > 1 ? pmctl_usage_error (ctl, "unexpected '%s'", argv[optind + 1])
                                 : pmctl_usage_error (ctl, "needs DAEMON");
    const char *daemon = argv[optind];
    Pm__V1__OpsMetricsRequest body = PM__V1__OPS_METRICS_REQUEST__INIT;
    Pm__V1__Reply *r;
    code = s_request (ctl, daemon, "ops.metrics", &body.base, &r);
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
    static const struct option opts[] = {
        { "limit", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    int64_t limit = 0;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (!pmctl_parse_int ("--limit", optarg, 1, 1000, &limit))
            return PMCTL_USAGE;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (argc - optind != 1)
        return argc - optind > 1 ? pmctl_usage_error (ctl, "unexpected '%s'", argv[optind + 1])
                                 : pmctl_usage_error (ctl, "needs DAEMON");
    const char *daemon = argv[optind];
    Pm__V1__OpsQueuesRequest body = PM__V1__OPS_QUEUES_REQUEST__INIT;
    body.limit = (uint32_t) limit;
    Pm__V1__Reply *r;
    code = s_request (ctl, daemon, "ops.queues", &body.base, &r);
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
    int code;
    if (!s_no_options (ctl, argc, argv, &code))
        return code;
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos > 2)
        return pmctl_usage_error (ctl, "unexpected '%s'", pos[2]);
    Pm__V1__OpsClockRequest body = PM__V1__OPS_CLOCK_REQUEST__INIT;
    const char *verb = npos > 0 ? pos[0] : "get";
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
    else if ((strcmp (verb, "set") == 0 || strcmp (verb, "advance") == 0) && npos == 1)
        return pmctl_usage_error (ctl, "%s needs %s", verb, verb[0] == 's' ? "TIME" : "DURATION");
    else
        return pmctl_usage_error (ctl, "unexpected '%s'", npos == 1 ? verb : pos[1]);
    size_t n;
    s_target_t *t = s_targets (ctl, NULL, 0, &n, &code);
    if (!t)
        return code;
    void *zctx = zmq_ctx_new ();
    s_fan_out (ctl, zctx, t, n, "ops.clock", &body.base, ctl->timeout_ms, pmctl_retry_ms (ctl));
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

/* The applied seq a consumer reports for source in its ops.ping, or -1 when
 * it does not consume it. */
static int64_t
s_applied_seq (const Pm__V1__Reply *r, const char *source)
{
    if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_PING)
        return -1;
    for (size_t i = 0; i < r->ops_ping->n_upstreams; i++)
        if (strcmp (r->ops_ping->upstreams[i]->source, source) == 0)
            return (int64_t) r->ops_ping->upstreams[i]->applied_seq;
    return -1;
}

/* `sync [--wait SECONDS]`: waits until every daemon has applied every event its
 * upstreams have committed (projections consistent), e.g. after an import. */
static int
s_cmd_sync (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "wait", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    int64_t wait_s = 30;
    int opt, code = PMCTL_OK;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (!pmctl_parse_int ("--wait", optarg, 0, 86400, &wait_s))
            return PMCTL_USAGE;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (optind < argc)
        return pmctl_usage_error (ctl, "unexpected '%s'", argv[optind]);
    size_t n;
    s_target_t *ping = s_targets (ctl, NULL, 0, &n, &code);
    if (!ping)
        return code;
    void *zctx = zmq_ctx_new ();
    int64_t deadline = pm_mono_ms () + wait_s * 1000;
    char lag[512];
    for (;;) {
        /* every daemon's ops.ping: its last seq, and where it stands in each upstream */
        s_fan_out (ctl, zctx, ping, n, "ops.ping", NULL, ctl->timeout_ms, pmctl_retry_ms (ctl));
        size_t used = 0;
        bool down = false;
        lag[0] = '\0';
        for (size_t i = 0; i < n; i++)
            down |= !ping[i].reply || ping[i].reply->body_case != PM__V1__REPLY__BODY_OPS_PING;
        for (size_t c = 0; c < n && !down; c++)
            for (size_t u = 0; u < n; u++) {
                int64_t applied = s_applied_seq (ping[c].reply, ping[u].daemon);
                uint64_t last = ping[u].reply->ops_ping->last_seq;
                if (applied >= 0 && (uint64_t) applied < last && used < sizeof lag)
                    used += (size_t) snprintf (lag + used, sizeof lag - used, "%s%s has %s:%lld of %llu",
                                               used ? ", " : "", ping[c].daemon, ping[u].daemon,
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
                if (!ping[i].reply)
                    fprintf (stderr, "pmctl: %s did not answer at %s\n", ping[i].daemon, ping[i].endpoint);
            if (lag[0])
                fprintf (stderr, "pmctl: not in sync after %llds: %s\n", (long long) wait_s, lag);
            code = PMCTL_FAIL;
            break;
        }
        for (size_t i = 0; i < n; i++) { /* ask again */
            pm_client_destroy (&ping[i].client);
            if (ping[i].reply)
                pm__v1__reply__free_unpacked (ping[i].reply, NULL);
            ping[i].reply = NULL;
        }
        zmq_poll (NULL, 0, 50); /* polling interval */
    }
    s_targets_free (ping, n);
    zmq_ctx_term (zctx);
    return code;
}

/* --- rebuild ---------------------------------------------------------------------------- */

/* Whether daemon still loads a snapshot (its ops.queues `upstreams` is not
 * empty); -1 when it does not answer. */
static int
s_rebuilding (const pmctl_t *ctl, const char *daemon)
{
    Pm__V1__OpsQueuesRequest body = PM__V1__OPS_QUEUES_REQUEST__INIT;
    Pm__V1__Reply *r;
    if (s_request (ctl, daemon, "ops.queues", &body.base, &r) != PMCTL_OK)
        return -1;
    int busy = -1;
    if (r->status == PM__V1__STATUS__OK && r->body_case == PM__V1__REPLY__BODY_OPS_QUEUES) {
        busy = 0;
        for (size_t i = 0; i < r->ops_queues->n_queues; i++)
            if (strcmp (r->ops_queues->queues[i]->name, "upstreams") == 0)
                busy = r->ops_queues->queues[i]->count > 0;
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return busy;
}

/* `rebuild DAEMON --from UPSTREAM [--wait SECONDS]`: ops.rebuild. */
static int
s_cmd_rebuild (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "from", required_argument, NULL, 'f' },
        { "wait", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    const char *from = NULL;
    int64_t wait_s = 60;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (opt == 'f')
            from = optarg;
        else if (!pmctl_parse_int ("--wait", optarg, 0, 86400, &wait_s))
            return PMCTL_USAGE;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (argc - optind != 1)
        return argc - optind > 1 ? pmctl_usage_error (ctl, "unexpected '%s'", argv[optind + 1])
                                 : pmctl_usage_error (ctl, "needs DAEMON");
    if (!from)
        return pmctl_usage_error (ctl, "needs --from UPSTREAM (the daemon whose events it rebuilds from)");
    const char *daemon = argv[optind];
    Pm__V1__OpsRebuildRequest body = PM__V1__OPS_REBUILD_REQUEST__INIT;
    body.source = (char *) from;
    Pm__V1__Reply *r;
    if ((code = s_request (ctl, daemon, "ops.rebuild", &body.base, &r)) != PMCTL_OK)
        return code;
    if (r->status != PM__V1__STATUS__OK)
        code = s_reply_failed (daemon, r);
    else if (!ctl->json)
        printf ("%s\n", r->message);
    else
        code = pmctl_print_json (pm_msg_to_json (&r->base), false);
    pm__v1__reply__free_unpacked (r, NULL);
    if (code != PMCTL_OK || wait_s == 0)
        return code;
    int64_t deadline = pm_mono_ms () + wait_s * 1000;
    int busy;
    while ((busy = s_rebuilding (ctl, daemon)) != 0) {
        if (pm_mono_ms () >= deadline) {
            fprintf (stderr, "pmctl: %s is still loading %s's snapshot after %lld s (pmctl queues %s shows why)\n",
                     daemon, from, (long long) wait_s, daemon);
            return PMCTL_FAIL;
        }
        usleep (100 * 1000); /* polling a daemon that answers: not a readiness sleep */
    }
    if (!ctl->json)
        printf ("%s follows %s again\n", daemon, from);
    return PMCTL_OK;
}

/* --- the command table, help and main -------------------------------------------------- */

static const pmctl_command_t s_commands[] = {
    { "endpoints", s_cmd_endpoints, "",
      "each daemon's command and event endpoints\n"
      "\n"
      "As the config names them (-c FILE, $PM_CONFIG or the embedded default).\n"
      "--json: an array of {daemon, command, events}." },
    { "call", s_cmd_call, "DAEMON METHOD [JSON]",
      "send one request; JSON is the method's body\n"
      "\n"
      "JSON is the body of METHOD (the Request field named after it), e.g.\n"
      "  pmctl call intake intake.unit.get '{\"unit_id\":\"E01/1/0101\"}'\n"
      "The request is resent with the same id until --timeout, so a write is\n"
      "applied at most once. Prints the status and the reply's body (--json: the\n"
      "whole reply); exit status 1 when the reply is not OK." },
    { "ping", s_cmd_ping, "[DAEMON...] [--wait SECONDS]",
      "is each daemon up? --wait: until it is\n"
      "\n"
      "Asks the named daemons (all in the config when none is named) at once.\n"
      "  --wait SECONDS  keep asking until every one answers or SECONDS pass\n"
      "Exit status 1 when one is down." },
    { "metrics", s_cmd_metrics, "DAEMON [--prom]",
      "counters, gauges, latency histograms\n"
      "\n"
      "  --prom  the Prometheus text format, as the daemon's /metrics serves it" },
    { "queues", s_cmd_queues, "DAEMON [--limit N]",
      "work waiting on people, N items per queue\n"
      "\n"
      "  --limit N  items shown per queue (1 to 1000; the daemon's default otherwise)" },
    { "clock", s_cmd_clock, "[get | set TIME | advance DURATION]",
      "every daemon's clock (set, advance: manual_clock)\n"
      "\n"
      "set and advance need [general] manual_clock = true in the daemons' config.\n"
      "  get                show each daemon's time (the default)\n"
      "  set TIME           RFC 3339 UTC, e.g. 2026-12-01T09:00:00Z\n"
      "  advance DURATION   e.g. 90s, 15m, 3h, 3d, 1d12h or 500ms" },
    { "events", pmctl_events, "[--follow] [--from SEQ] [DAEMON] [PREFIX]",
      "events as JSON lines; --follow: then live ones\n"
      "\n"
      "Every daemon's events, or DAEMON's; PREFIX keeps the types that start with\n"
      "it (a lone argument with a '.' is a PREFIX: events intake.unit.).\n"
      "  -f, --follow  after the replay, print live events until interrupted\n"
      "  --from SEQ    replay from this seq (default 1)" },
    { "billing", pmctl_billing, "reconcile FILE.csv [--chunk LINES] [--inflight N]",
      "a bank's withholding result file against billing's books (账务核对)\n"
      "\n"
      "FILE.csv has a header naming its columns, in any order: external_ref,\n"
      "unit_id, invoice_id, amount_fen or amount (元, two decimals), status\n"
      "(success / failed, 成功 / 失败), paid_at. A line whose withholding succeeded\n"
      "for exactly what is open becomes a bank_withholding payment, once however\n"
      "often the file is imported. Every other line is reported with its line\n"
      "and reason, then a summary (matched / already recorded / mismatched /\n"
      "unknown / failed / rejected); they wait in ops.queues billing\n"
      "unmatched_lines. Exit status 3 when a line did not match.\n"
      "  --chunk LINES  lines per request (1 to 10000, default 500)\n"
      "  --inflight N   requests in flight at once (1 to 64, default 4)" },
    { "import", pmctl_import, "FILE.csv [--dry-run] [--chunk ROWS] [--inflight N]",
      "units and owners from a CSV file into intake\n"
      "\n"
      "FILE.csv has a header line naming the columns, in any order: estate_id,\n"
      "estate_name, building, unit, floor, area_m2, owner_name, phone, id_number,\n"
      "and optionally email, delivery_date (YYYY-MM-DD) and parking_spaces. A unit\n"
      "is ESTATE/BUILDING/UNIT (E01/3/2-301); more rows for it add co-owners. UTF-8\n"
      "or GBK (GB18030, converted; said once). Rows that are not CSV are reported\n"
      "here; intake judges the values. Exit status 3 when rows were rejected.\n"
      "  --dry-run      judge every row against what intake holds and report what the\n"
      "                 import would do (created, updated, unchanged, rejected);\n"
      "                 nothing is written\n"
      "Without --chunk and --inflight it paces itself: from 4 requests of 500 rows\n"
      "in flight up to 16 of 2,000 while intake answers quickly, fewer when it\n"
      "does not (larger batches cost intake less per row).\n"
      "  --chunk ROWS   rows per request (1 to 10000), fixed\n"
      "  --inflight N   requests in flight at once (1 to 64), fixed" },
    { "unit", pmctl_unit, "UNIT_ID",
      "one unit's whole move-in case, each daemon's part\n"
      "\n"
      "Asks every daemon in the config for <daemon>.unit.get {unit_id} at once and\n"
      "prints each part: intake's owners (masked), notice, appointment, check-in,\n"
      "key gate and key ledger, then each other daemon's record of the unit. A\n"
      "daemon that is down or does not answer the method is named as not\n"
      "available, with why. UNIT_ID is ESTATE/BUILDING/UNIT, e.g. E01/3/2-301.\n"
      "Exit status 1 when intake does not know the unit." },
    { "top", pmctl_top, "[--once] [--interval SECONDS]",
      "live board: every estate's progress, every daemon's queues and lag\n"
      "\n"
      "Per estate (intake.progress): units per state, completion, units blocked at\n"
      "the key gate (on the invoice / the inspection), today's slots, check-ins,\n"
      "waitlist, no-shows. Per daemon (ops.metrics, ops.queues): up or down, latest\n"
      "seq, lag behind each upstream, queues with work waiting. 80 columns.\n"
      "  --once              one frame, no escapes (for scripts)\n"
      "  --interval SECONDS  redraw every SECONDS (default 2); Ctrl-C quits" },
    { "rebuild", s_cmd_rebuild, "DAEMON --from UPSTREAM [--wait SECONDS]",
      "rebuild DAEMON's projection of UPSTREAM from its snapshot\n"
      "\n"
      "The tables DAEMON builds from UPSTREAM's events are emptied and reloaded\n"
      "from UPSTREAM's current state (events.snapshot); DAEMON then follows\n"
      "UPSTREAM from the snapshot's seq. For a projection that was damaged or\n"
      "wiped; a daemon that fell behind the retention does this by itself.\n"
      "  --from UPSTREAM  the daemon whose events DAEMON consumes\n"
      "  --wait SECONDS   wait until the load is done (default 60; 0: do not wait)" },
    { "keys", pmctl_keys, "NAME [--dir DIR]",
      "a CurveZMQ key pair for a daemon, pmctl or an integration\n"
      "\n"
      "Writes DIR/NAME.curve (default ${home}/keys; mode 0600, never overwritten) and\n"
      "prints its public key with where each part goes: the daemon's\n"
      "curve_secret_file, the others' curve_public_key for it, and the line for\n"
      "the allow-list ([general] curve_allow) of the daemons a client talks to.\n"
      "  --dir DIR  where to write it" },
    { "token", pmctl_token, "create NAME --role ROLE | list | revoke NAME",
      "the gateway's API tokens: create (shown once), list, revoke\n"
      "\n"
      "A token is drawn here and shown only once; the gateway keeps its keyed hash.\n"
      "Roles: operator (writes intake, inspection, workorder), finance (writes\n"
      "billing), integration (reads and events), admin (everything, webhooks).\n"
      "Every role reads and follows events. Requests carry it as\n"
      "Authorization: Bearer TOKEN; their actor is NAME.\n"
      "  -r, --role ROLE  operator, finance, integration or admin (create)" },
    { "webhook", pmctl_webhook, "list | resume ID | delete ID | create URL --secret S [--type T]...",
      "the gateway's webhook subscriptions: list, resume a paused one, ...\n"
      "\n"
      "Each matching event is POSTed in order, signed (Webhook-Signature); a\n"
      "failing receiver is retried at once, after 1 min, 5 min, 30 min, 2 h, 6 h,\n"
      "then daily, and paused after 3 days (ops.queues webhooks_paused). resume\n"
      "continues from the cursor.\n"
      "  -s, --secret S   signing secret, 16 to 256 bytes (create)\n"
      "  -t, --type T     an event type or prefix, e.g. billing.invoice. (repeat; default all)\n"
      "  -f, --from-start deliver every retained event too (default: from now)" },
    { "notify", pmctl_notify, "show|retry|drop ID | optout CHANNEL ADDRESS",
      "notify's messages: show one, resend a dead letter, drop one, opt-outs\n"
      "\n"
      "  show ID                 one message: state, reason, attempts, its text\n"
      "  retry ID                a dead letter (FAILED) goes back to the queue; fix\n"
      "                          its cause first (pmctl queues notify lists them)\n"
      "  drop ID [--reason TEXT] a waiting message or a dead letter is given up\n"
      "  optout sms|email ADDRESS [--in]  the owner at ADDRESS wants no more\n"
      "                          messages on that channel (--in: again)" },
    { "sync", s_cmd_sync, "[--wait SECONDS]",
      "wait until every committed event is applied\n"
      "\n"
      "Waits until every daemon has applied every event its upstreams committed\n"
      "(projections consistent), e.g. after an import.\n"
      "  --wait SECONDS  give up after SECONDS (default 30)" },
    { "checklist", pmctl_checklist, "ESTATE [FILE.csv]",
      "an estate's inspection checklist; with FILE.csv: replace it\n"
      "\n"
      "Without FILE.csv, prints the checklist the estate's next round will use as\n"
      "CSV (its own, or inspection's default), ready to edit and send back.\n"
      "FILE.csv has a header naming room, category and optionally check (房间,\n"
      "类别, 检查要点); one line per room and category. Categories: 墙面/天花, 地面,\n"
      "门窗, 给排水, 电气, 燃气, 固定设施, 消防, 其他. Rounds already started keep the\n"
      "checklist they started with." },
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

/* `pmctl --help`: the global options and, from the table, every command. */
static void
s_usage (FILE *f)
{
    fprintf (f, "usage: pmctl [-c FILE] [--json] [--timeout MS] COMMAND [ARGS]\n"
                "\n"
                "Operator CLI for the move-in daemons (intake, inspection, workorder, billing,\n"
                "notify). Endpoints come from -c FILE, else $PM_CONFIG, else the embedded\n"
                "default (deploy/pm.conf); PM_HOME moves var/.\n"
                "\n"
                "commands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const pmctl_command_t *c = &s_commands[i];
        char head[128];
        int w = snprintf (head, sizeof head, "%s%s%s", c->name, *c->synopsis ? " " : "", c->synopsis);
        int summary = (int) strcspn (c->help, "\n");
        if (w <= 32)
            fprintf (f, "  %-33s %.*s\n", head, summary, c->help);
        else
            fprintf (f, "  %s\n  %-33s %.*s\n", head, "", summary, c->help);
    }
    fprintf (f, "\n"
                "options:\n"
                "  -c FILE       config file\n"
                "  --json        machine-readable output\n"
                "  --timeout MS  per-request timeout (default %d)\n"
                "  -h, --help    this help; pmctl COMMAND --help: that command's\n"
                "\n"
                "exit status: 0 ok; 1 failure (no answer, error reply); 2 usage, input or\n"
                "config error; 3 import finished with rejected rows, or reconcile with\n"
                "unmatched lines.\n", S_TIMEOUT_DEFAULT);
}

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
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, S_OPT_JSON },
        { "timeout", required_argument, NULL, S_OPT_TIMEOUT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    pmctl_t ctl = { .timeout_ms = S_TIMEOUT_DEFAULT, .config_path = getenv ("PM_CONFIG") };
    char buf[64];
    int opt;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, "+:c:h", opts, NULL)) != -1) { /* '+': stop at the command */
        switch (opt) {
        case 'h':
            s_usage (stdout);
            return PMCTL_OK;
        case 'c':
            ctl.config_path = optarg;
            break;
        case S_OPT_JSON:
        case S_OPT_TIMEOUT:
            if (!s_global_option (&ctl, opt, optarg))
                return PMCTL_USAGE;
            break;
        case ':':
            fprintf (stderr, "pmctl: option '%s' needs a value (try pmctl --help)\n",
                     s_refused (argv, buf, sizeof buf));
            return PMCTL_USAGE;
        default:
            fprintf (stderr, "pmctl: unknown option '%s' (try pmctl --help)\n", s_refused (argv, buf, sizeof buf));
            return PMCTL_USAGE;
        }
    }
    if (optind >= argc) {
        s_usage (stderr);
        return PMCTL_USAGE;
    }
    for (size_t k = 0; k < S_NCOMMANDS && !ctl.command; k++)
        if (strcmp (argv[optind], s_commands[k].name) == 0)
            ctl.command = &s_commands[k];
    if (!ctl.command) {
        fprintf (stderr, "pmctl: unknown command '%s' (try pmctl --help)\n", argv[optind]);
        return PMCTL_USAGE;
    }
    s_actor (&ctl);
    signal (SIGPIPE, SIG_IGN); /* a closed stdout shows as EPIPE on write */
    int code = ctl.command->fn (&ctl, argc - optind, argv + optind);
    pm_config_destroy (&ctl.cfg);
    if (fflush (stdout) != 0 && errno != EPIPE && code == PMCTL_OK) {
        fprintf (stderr, "pmctl: writing output: %s\n", strerror (errno));
        code = PMCTL_FAIL;
    }
    return code;
}
