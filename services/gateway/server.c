/* server.c - the gateway's HTTP server: libmicrohttpd in its epoll mode with
 * no thread of its own (its epoll fd is one io watcher on the daemon's loop,
 * as common/src/http.c does for /metrics), so every request is handled on
 * the loop's thread and reads the store without locks.
 *
 * Routes:
 *   GET  /  /index.html /board.js /board.css   the operations board (no token)
 *   GET  /healthz  /metrics  /v1/openapi.json   (no token)
 *   POST /v1/{daemon}/{method}                  any method, JSON <-> protobuf by descriptor
 *   GET  /v1/events                             SSE (sse.c)
 *   POST /v1/webhooks   GET /v1/webhooks   POST /v1/webhooks/{id}/resume   DELETE /v1/webhooks/{id}  (admin)
 *
 * A forwarded call suspends its connection (MHD_suspend_connection) until the
 * daemon's reply comes back on the loop (fwd.c), then resumes it; the access
 * handler is called again and queues the answer. Nothing waits on a socket.
 *
 * Status mapping: OK 200, INVALID 400, NOT_FOUND 404, CONFLICT 409,
 * UNAVAILABLE 503 with Retry-After, INTERNAL 500; the body is always
 * {"id", "status", "message", "body"}. The gateway's own refusals carry
 * {"status", "message"}: 401 UNAUTHENTICATED, 403 FORBIDDEN, 413 TOO_LARGE,
 * 404 NOT_FOUND, 405 METHOD_NOT_ALLOWED, 503 UNAVAILABLE (a daemon that did
 * not answer in call_timeout_ms). */
#define _GNU_SOURCE
#include "http_int.h"
#include "assets.h"
#include "pm/client.h"
#include "pm/json.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_KEY_MAX 200

enum {
    R_NONE,
    R_ASSET,
    R_HEALTH,
    R_METRICS,
    R_OPENAPI,
    R_EVENTS,
    R_HOOKS,
    R_HOOK_RESUME,
    R_HOOK,
    R_API,
};

static const unsigned s_codes[GW_NCODES] = { 200, 400, 401, 403, 404, 405, 409, 410, 413, 500, 503, 204 };

void
gw_http_count (gw_http_t *h, unsigned code)
{
    for (int i = 0; i < GW_NCODES; i++)
        if (s_codes[i] == code) {
            pm_metric_inc (h->codes[i], 1);
            return;
        }
    pm_metric_inc (h->code_other, 1);
}

/* Queues body (taken when mode is MUST_FREE) with code and Content-Type. */
static enum MHD_Result
s_send (gw_http_t *h, struct MHD_Connection *c, unsigned code, const char *type, void *body, size_t len,
        enum MHD_ResponseMemoryMode mode, const char *hname, const char *hvalue)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer (len, body, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free (body);
        return MHD_NO;
    }
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (hname)
        MHD_add_response_header (resp, hname, hvalue);
    if (code == 401)
        MHD_add_response_header (resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"pm-gateway\"");
    enum MHD_Result rc = MHD_queue_response (c, code, resp);
    MHD_destroy_response (resp);
    gw_http_count (h, code);
    return rc;
}

static enum MHD_Result
s_send_json (gw_http_t *h, struct MHD_Connection *c, unsigned code, cJSON *j, const char *hname, const char *hvalue)
{
    char *s = cJSON_PrintUnformatted (j);
    cJSON_Delete (j);
    if (!s)
        pm_oom ("cJSON_PrintUnformatted", 0);
    return s_send (h, c, code, "application/json; charset=utf-8", s, strlen (s), MHD_RESPMEM_MUST_FREE, hname,
                   hvalue);
}

static cJSON *
s_error_json (const char *status, const char *msg)
{
    cJSON *j = cJSON_CreateObject ();
    cJSON_AddStringToObject (j, "status", status);
    cJSON_AddStringToObject (j, "message", msg);
    return j;
}

enum MHD_Result
gw_http_error (gw_http_t *h, struct MHD_Connection *c, unsigned code, const char *status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    return s_send_json (h, c, code, s_error_json (status, msg), NULL, NULL);
}

enum MHD_Result
gw_http_forbidden (gw_http_t *h, struct MHD_Connection *c, const char *why)
{
    pm_metric_inc (h->gw->m_auth403, 1);
    return gw_http_error (h, c, 403, "FORBIDDEN", "%s", why);
}

bool
gw_http_auth (gw_http_t *h, struct MHD_Connection *c, char *name, size_t size, int *role, enum MHD_Result *rc)
{
    const char *a = MHD_lookup_connection_value (c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *why = NULL;
    if (!a)
        why = "no token: send Authorization: Bearer TOKEN (an admin makes one with pmctl token create NAME --role ROLE)";
    else if (strncasecmp (a, "Bearer ", 7) != 0)
        why = "Authorization: expected 'Bearer TOKEN'";
    else {
        const char *token = a + 7;
        while (*token == ' ')
            token++;
        pm_txn_t t;
        if (pm_txn_begin_read (&t, pm_daemon_store (h->gw->d)) != PM_OK) {
            *rc = gw_http_error (h, c, 503, "UNAVAILABLE", "storage: cannot read");
            return false;
        }
        t.arena = h->arena;
        int found = gw_token_check (h->gw, &t, token, name, size, role);
        pm_txn_abort (&t);
        pm_arena_reset (h->arena);
        if (found == PM_OK)
            return true;
        why = "unknown or revoked token (pmctl token list shows the valid ones)";
    }
    pm_metric_inc (h->gw->m_auth401, 1);
    *rc = gw_http_error (h, c, 401, "UNAUTHENTICATED", "%s", why);
    return false;
}

/* --- routing ------------------------------------------------------------------------- */

static int
s_route (const char *url, const char *verb, char *a, size_t asize, char *b, size_t bsize)
{
    if (strcmp (url, "/") == 0 || strcmp (url, "/index.html") == 0) {
        snprintf (a, asize, "index.html");
        return R_ASSET;
    }
    if (strcmp (url, "/healthz") == 0)
        return R_HEALTH;
    if (strcmp (url, "/metrics") == 0)
        return R_METRICS;
    if (strncmp (url, "/v1/", 4) != 0) {
        if (url[0] == '/' && !strchr (url + 1, '/') && strlen (url + 1) < asize) {
            snprintf (a, asize, "%s", url + 1);
            return R_ASSET;
        }
        return R_NONE;
    }
    const char *p = url + 4;
    if (strcmp (p, "openapi.json") == 0)
        return R_OPENAPI;
    if (strcmp (p, "events") == 0)
        return R_EVENTS;
    if (strcmp (p, "webhooks") == 0)
        return R_HOOKS;
    if (strncmp (p, "webhooks/", 9) == 0) {
        const char *id = p + 9, *slash = strchr (id, '/');
        size_t n = slash ? (size_t) (slash - id) : strlen (id);
        if (n == 0 || n >= asize)
            return R_NONE;
        snprintf (a, asize, "%.*s", (int) n, id);
        if (!slash)
            return R_HOOK;
        return strcmp (slash, "/resume") == 0 ? R_HOOK_RESUME : R_NONE;
    }
    const char *slash = strchr (p, '/');
    if (!slash || slash == p || !slash[1] || strchr (slash + 1, '/'))
        return R_NONE;
    if ((size_t) (slash - p) >= asize || strlen (slash + 1) >= bsize)
        return R_NONE;
    snprintf (a, asize, "%.*s", (int) (slash - p), p);
    snprintf (b, bsize, "%s", slash + 1);
    (void) verb;
    return R_API;
}

/* --- static files, health, metrics -------------------------------------------------- */

static enum MHD_Result
s_asset (gw_http_t *h, struct MHD_Connection *c, const char *name)
{
    const gw_asset_t *a = NULL;
    for (int i = 0; gw_assets[i].name && !a; i++)
        if (strcmp (gw_assets[i].name, name) == 0)
            a = &gw_assets[i];
    if (!a)
        return gw_http_error (h, c, 404, "NOT_FOUND", "no page '/%s': the board is at /, the API under /v1/", name);
    if (h->gw->www_dir) { /* a development copy, read each time (names come from the table: no traversal) */
        char *path = pm_xasprintf ("%s/%s", h->gw->www_dir, a->name);
        FILE *f = fopen (path, "rb");
        free (path);
        if (f) {
            char *buf = NULL;
            size_t len = 0;
            FILE *m = open_memstream (&buf, &len);
            char chunk[8192];
            size_t n;
            while ((n = fread (chunk, 1, sizeof chunk, f)) > 0)
                fwrite (chunk, 1, n, m);
            fclose (f);
            fclose (m);
            return s_send (h, c, 200, a->type, buf, len, MHD_RESPMEM_MUST_FREE, "Cache-Control", "no-cache");
        }
    }
    return s_send (h, c, 200, a->type, (void *) a->data, a->len, MHD_RESPMEM_PERSISTENT, "Cache-Control", "no-cache");
}

static enum MHD_Result
s_health (gw_http_t *h, struct MHD_Connection *c)
{
    gw_t *gw = h->gw;
    pm_txn_t t;
    if (pm_txn_begin_read (&t, pm_daemon_store (gw->d)) != PM_OK)
        return gw_http_error (h, c, 503, "UNAVAILABLE", "storage: cannot read");
    cJSON *j = cJSON_CreateObject ();
    cJSON_AddStringToObject (j, "status", "ok");
    cJSON_AddStringToObject (j, "daemon", "gateway");
    cJSON_AddNumberToObject (j, "log_last", (double) gw_log_last (&t));
    cJSON_AddNumberToObject (j, "webhooks_paused", (double) pm_txn_count (&t, GW_WEBHOOKS_PAUSED));
    pm_txn_abort (&t);
    cJSON *ups = cJSON_AddObjectToObject (j, "applied");
    for (int i = 0; gateway_spec.upstreams[i].source; i++)
        cJSON_AddNumberToObject (ups, gateway_spec.upstreams[i].source,
                                 (double) pm_daemon_applied (gw->d, gateway_spec.upstreams[i].source));
    return s_send_json (h, c, 200, j, "Cache-Control", "no-cache");
}

static enum MHD_Result
s_metrics (gw_http_t *h, struct MHD_Connection *c)
{
    char *text = pm_daemon_prometheus (h->gw->d);
    if (!text)
        return gw_http_error (h, c, 503, "UNAVAILABLE", "metrics unavailable");
    return s_send (h, c, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen (text), MHD_RESPMEM_MUST_FREE,
                   NULL, NULL);
}

/* --- forwarding ----------------------------------------------------------------------- */

static unsigned
s_http_code (int status)
{
    switch (status) {
    case PM__V1__STATUS__OK:
        return 200;
    case PM__V1__STATUS__INVALID:
        return 400;
    case PM__V1__STATUS__NOT_FOUND:
        return 404;
    case PM__V1__STATUS__CONFLICT:
        return 409;
    case PM__V1__STATUS__UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

static void
s_unwait (gw_http_t *h, gw_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->waiting = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* The answer is ready: resume the connection; the access handler queues it. */
static void
s_ready (gw_req_t *r, unsigned code, cJSON *j)
{
    gw_http_t *h = r->h;
    r->code = code;
    r->resp = cJSON_PrintUnformatted (j);
    cJSON_Delete (j);
    if (!r->resp)
        pm_oom ("cJSON_PrintUnformatted", 0);
    r->ready = true;
    r->suspended = false;
    s_unwait (h, r);
    MHD_resume_connection (r->conn);
    h->resumed = true;
}

static void
s_reply_cb (void *arg, const Pm__V1__Reply *rep)
{
    gw_req_t *r = arg;
    gw_t *gw = r->h->gw;
    if (!rep) {
        cJSON *j = s_error_json ("UNAVAILABLE", "");
        char msg[256];
        snprintf (msg, sizeof msg, "no answer to %s within %lld ms: is the daemon running? (try again later)",
                  r->method, (long long) gw->call_timeout_ms);
        cJSON_ReplaceItemInObject (j, "message", cJSON_CreateString (msg));
        cJSON_AddStringToObject (j, "id", r->key);
        r->retry_after = true;
        s_ready (r, 503, j);
        return;
    }
    cJSON *j = cJSON_CreateObject ();
    cJSON_AddStringToObject (j, "id", r->key);
    cJSON_AddStringToObject (j, "status", pm_status_name (rep->status));
    cJSON_AddStringToObject (j, "message", rep->message ? rep->message : "");
    ProtobufCMessage *body = pm_body_get (&rep->base, r->method);
    cJSON_AddItemToObject (j, "body", body ? pm_msg_to_json (body) : cJSON_CreateObject ());
    r->retry_after = rep->status == PM__V1__STATUS__UNAVAILABLE;
    pm_metric_observe (gw->m_call_us, (double) (pm_mono_us () - r->t0_us));
    s_ready (r, s_http_code (rep->status), j);
}

static bool
s_key_ok (const char *k)
{
    size_t n = strlen (k);
    if (n == 0 || n > S_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= ' ' || k[i] > '~')
            return false;
    return true;
}

/* Forwards method with the JSON text body to daemon for the token name. */
static enum MHD_Result
s_forward (gw_http_t *h, gw_req_t *r, const char *name, const char *daemon, const char *method, const char *text,
           size_t len)
{
    gw_t *gw = h->gw;
    struct MHD_Connection *c = r->conn;
    const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, method);
    if (!f)
        return gw_http_error (h, c, 404, "NOT_FOUND", "method: %s has no method '%s' (GET /v1/openapi.json lists them)",
                              daemon, method);
    cJSON *json = len ? cJSON_ParseWithLength (text, len) : cJSON_CreateObject ();
    if (!json || !cJSON_IsObject (json)) {
        cJSON_Delete (json);
        return gw_http_error (h, c, 400, "INVALID", "body: not a JSON object; %s takes e.g. %s", method,
                              strcmp (method, "intake.unit.get") == 0 ? "{\"unit_id\":\"E01/1-101\"}" : "{}");
    }
    char *err = NULL;
    ProtobufCMessage *body = pm_json_to_msg (f->descriptor, json, &err);
    cJSON_Delete (json);
    if (!body) {
        enum MHD_Result rc = gw_http_error (h, c, 400, "INVALID", "body: %s", err ? err : "does not map");
        free (err);
        return rc;
    }
    const char *key = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Idempotency-Key");
    char id[27];
    if (key && !s_key_ok (key)) {
        protobuf_c_message_free_unpacked (body, NULL);
        return gw_http_error (h, c, 400, "INVALID",
                              "Idempotency-Key: 1 to %d printable characters without spaces, e.g. a ULID or "
                              "erp-order-4711",
                              S_KEY_MAX);
    }
    if (!key) {
        gw_request_id (id);
        key = id;
    }
    snprintf (r->key, sizeof r->key, "%s", key);
    snprintf (r->method, sizeof r->method, "%s", method);
    /* ids are per token: one integrator cannot get another's stored reply by reusing its key */
    char *rid = pm_xasprintf ("%s/%s", name, key);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = rid;
    req.method = (char *) method;
    req.actor = (char *) name;
    pm_body_set (&req.base, method, body);
    int rc = gw_fwd_call (gw->fwd, daemon, &req, gw->call_timeout_ms, s_reply_cb, r);
    free (rid);
    protobuf_c_message_free_unpacked (body, NULL);
    if (rc != PM_OK)
        return gw_http_error (h, c, 503, "UNAVAILABLE", "cannot send to %s: %s", daemon, pm_strerror (rc));
    r->suspended = true;
    r->next = h->waiting;
    if (h->waiting)
        h->waiting->prev = r;
    h->waiting = r;
    MHD_suspend_connection (c);
    return MHD_YES;
}

/* POST /v1/{daemon}/{method}: method is "intake.unit.get", or "unit.get" for short. */
static enum MHD_Result
s_api (gw_http_t *h, gw_req_t *r, const char *daemon, const char *given)
{
    gw_t *gw = h->gw;
    struct MHD_Connection *c = r->conn;
    char name[64];
    int role;
    enum MHD_Result rc;
    if (!gw_http_auth (h, c, name, sizeof name, &role, &rc))
        return rc;
    if (!gw_fwd_has (gw->fwd, daemon)) {
        size_t n;
        const char *const *names = gw_fwd_daemons (gw->fwd, &n);
        char list[512] = "";
        for (size_t i = 0; i < n; i++)
            snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? ", " : "", names[i]);
        return gw_http_error (h, c, 404, "NOT_FOUND", "daemon: no daemon '%s'; there are: %s", daemon, list);
    }
    char method[300];
    size_t dl = strlen (daemon);
    bool qualified = (strncmp (given, daemon, dl) == 0 && given[dl] == '.') || strncmp (given, "ops.", 4) == 0
                     || strncmp (given, "events.", 7) == 0;
    if (qualified || pm_method_field (&pm__v1__request__descriptor, given))
        snprintf (method, sizeof method, "%s", given);
    else
        snprintf (method, sizeof method, "%s.%s", daemon, given);
    if (strlen (method) >= 128)
        return gw_http_error (h, c, 404, "NOT_FOUND", "method: no method of that name (GET /v1/openapi.json lists them)");
    if (!qualified && strcmp (method, given) == 0 && pm_method_field (&pm__v1__request__descriptor, method)) {
        const char *dot = strchr (method, '.');
        return gw_http_error (h, c, 400, "INVALID", "method: %s belongs to %.*s; POST it to /v1/%.*s/%s", method,
                              (int) (dot - method), method, (int) (dot - method), method, method);
    }
    char why[512];
    if (!gw_allowed (gw, role, daemon, method, why, sizeof why))
        return gw_http_forbidden (h, c, why);
    return s_forward (h, r, name, daemon, method, r->body, r->body_len);
}

/* /v1/webhooks...: the gateway's own methods, for admin. */
static enum MHD_Result
s_hooks (gw_http_t *h, gw_req_t *r, int route, const char *verb, const char *id)
{
    struct MHD_Connection *c = r->conn;
    char name[64];
    int role;
    enum MHD_Result rc;
    if (!gw_http_auth (h, c, name, sizeof name, &role, &rc))
        return rc;
    if (role != GW_ROLE_ADMIN) {
        char why[160];
        snprintf (why, sizeof why, "webhook subscriptions are admin's; token %s has role %s", name, gw_role_name (role));
        return gw_http_forbidden (h, c, why);
    }
    if (route == R_HOOKS && strcmp (verb, "POST") == 0)
        return s_forward (h, r, name, "gateway", "gateway.webhook.create", r->body, r->body_len);
    if (route == R_HOOKS)
        return s_forward (h, r, name, "gateway", "gateway.webhook.list", "", 0);
    cJSON *j = cJSON_CreateObject ();
    cJSON_AddStringToObject (j, "id", id);
    char *text = cJSON_PrintUnformatted (j);
    cJSON_Delete (j);
    rc = s_forward (h, r, name, "gateway", route == R_HOOK_RESUME ? "gateway.webhook.resume" : "gateway.webhook.delete",
                    text, strlen (text));
    free (text);
    return rc;
}

/* --- the access handler ------------------------------------------------------------------ */

static bool
s_verb_ok (int route, const char *verb, const char **allow)
{
    bool get = strcmp (verb, "GET") == 0 || strcmp (verb, "HEAD") == 0;
    switch (route) {
    case R_API:
    case R_HOOK_RESUME:
        *allow = "POST";
        return strcmp (verb, "POST") == 0;
    case R_HOOKS:
        *allow = "GET, POST";
        return get || strcmp (verb, "POST") == 0;
    case R_HOOK:
        *allow = "DELETE";
        return strcmp (verb, "DELETE") == 0;
    default:
        *allow = "GET";
        return get;
    }
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *c, const char *url, const char *verb, const char *version,
          const char *upload, size_t *upload_size, void **req_cls)
{
    gw_http_t *h = cls;
    gw_req_t *r = *req_cls;
    if (!r) {
        r = pm_xcalloc (1, sizeof *r);
        r->h = h;
        r->conn = c;
        r->t0_us = pm_mono_us ();
        *req_cls = r;
        const char *cl = MHD_lookup_connection_value (c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull (cl, NULL, 10) > (unsigned long long) h->gw->max_body)
            return gw_http_error (h, c, 413, "TOO_LARGE", "body: %s bytes; the limit is %lld ([gateway] max_body_bytes)",
                                  cl, (long long) h->gw->max_body);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && r->body_len + *upload_size > (size_t) h->gw->max_body) {
            r->too_big = true;
            free (r->body);
            r->body = NULL;
        }
        if (!r->too_big) {
            if (r->body_len + *upload_size + 1 > r->body_cap) {
                r->body_cap = (r->body_len + *upload_size + 1) * 2;
                r->body = pm_xrealloc (r->body, r->body_cap);
            }
            memcpy (r->body + r->body_len, upload, *upload_size);
            r->body_len += *upload_size;
            r->body[r->body_len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->ready) {
        char *s = r->resp;
        r->resp = NULL;
        char retry[24];
        snprintf (retry, sizeof retry, "%lld", (long long) h->gw->retry_after_s);
        struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (s), s, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free (s);
            return MHD_NO;
        }
        MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
        MHD_add_response_header (resp, "Idempotency-Key", r->key);
        if (r->retry_after)
            MHD_add_response_header (resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
        enum MHD_Result rc = MHD_queue_response (c, r->code, resp);
        MHD_destroy_response (resp);
        gw_http_count (h, r->code);
        return rc;
    }
    if (r->too_big)
        return gw_http_error (h, c, 413, "TOO_LARGE", "body: over %lld bytes ([gateway] max_body_bytes)",
                              (long long) h->gw->max_body);

    char a[128], b[128];
    int route = s_route (url, verb, a, sizeof a, b, sizeof b);
    if (route == R_NONE)
        return gw_http_error (h, c, 404, "NOT_FOUND",
                              "no route %s %s: the API is POST /v1/{daemon}/{method}, GET /v1/events, /v1/webhooks; "
                              "its description is GET /v1/openapi.json",
                              verb, url);
    const char *allow;
    if (!s_verb_ok (route, verb, &allow)) {
        char msg[160];
        snprintf (msg, sizeof msg, "%s takes %s, not %s", url, allow, verb);
        return s_send_json (h, c, 405, s_error_json ("METHOD_NOT_ALLOWED", msg), MHD_HTTP_HEADER_ALLOW, allow);
    }
    switch (route) {
    case R_ASSET:
        return s_asset (h, c, a);
    case R_HEALTH:
        return s_health (h, c);
    case R_METRICS:
        return s_metrics (h, c);
    case R_OPENAPI:
        return s_send (h, c, 200, "application/json; charset=utf-8", h->gw->openapi, strlen (h->gw->openapi),
                       MHD_RESPMEM_PERSISTENT, "Cache-Control", "no-cache");
    case R_EVENTS: {
        char name[64];
        int role;
        enum MHD_Result rc;
        if (!gw_http_auth (h, c, name, sizeof name, &role, &rc))
            return rc;
        return gw_sse_start (h, c, name);
    }
    case R_HOOKS:
    case R_HOOK:
    case R_HOOK_RESUME:
        return s_hooks (h, r, route, verb, a);
    default:
        return s_api (h, r, a, b);
    }
}

static void
s_completed (void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    gw_req_t *r = *req_cls;
    if (!r)
        return;
    if (r->suspended) /* cannot happen: a suspended connection does not complete; keep it safe */
        s_unwait (r->h, r);
    free (r->body);
    free (r->resp);
    free (r);
    *req_cls = NULL;
}

/* --- libmicrohttpd on the loop --------------------------------------------------------------- */

void
gw_http_run (gw_http_t *h)
{
    h->resumed = false;
    MHD_run (h->mhd);
    MHD_UNSIGNED_LONG_LONG to;
    ev_timer_stop (h->gw->loop, &h->timer);
    if (MHD_get_timeout (h->mhd, &to) == MHD_YES) {
        ev_timer_set (&h->timer, (double) to / 1000.0, 0.0);
        ev_timer_start (h->gw->loop, &h->timer);
    }
}

static void
s_io_cb (struct ev_loop *loop, ev_io *w, int revents)
{
    gw_http_run (w->data);
}

static void
s_timer_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    gw_http_run (w->data);
}

void
gw_http_flush (gw_http_t *h)
{
    if (h->resumed)
        gw_http_run (h);
}

/* PEM file into memory; NULL (logged) on failure. */
static char *
s_slurp (const pm_config_t *cfg, const char *key, const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        char why[300];
        snprintf (why, sizeof why, "cannot read it: %s", strerror (errno));
        char *msg = pm_config_error (cfg, "gateway", key, why);
        pm_error ("%s", msg);
        free (msg);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream (&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread (chunk, 1, sizeof chunk, f)) > 0)
        fwrite (chunk, 1, n, m);
    fclose (f);
    fclose (m);
    return buf;
}

static bool
s_config_error (const pm_config_t *cfg, const char *key, const char *why)
{
    char *msg = pm_config_error (cfg, "gateway", key, why);
    pm_error ("%s", msg);
    free (msg);
    return false;
}

gw_http_t *
gw_http_new (gw_t *gw, bool *failed)
{
    const pm_config_t *cfg = gw->cfg;
    *failed = false;
    const char *listen = pm_config_get (cfg, "gateway", "listen", "");
    if (!*listen) {
        pm_info ("gateway: HTTP off ([gateway] listen is empty)");
        return NULL;
    }
    *failed = true;
    struct sockaddr_in sa;
    memset (&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    const char *colon = strrchr (listen, ':');
    char host[64];
    char *end = NULL;
    long port = colon ? strtol (colon + 1, &end, 10) : -1;
    if (!colon || (size_t) (colon - listen) >= sizeof host || !end || *end || colon[1] == '\0' || port < 0
        || port > 65535) {
        s_config_error (cfg, "listen", "expected HOST:PORT, e.g. 127.0.0.1:8080 (port 0 picks a free one)");
        return NULL;
    }
    memcpy (host, listen, (size_t) (colon - listen));
    host[colon - listen] = '\0';
    if (inet_pton (AF_INET, host, &sa.sin_addr) != 1) {
        s_config_error (cfg, "listen", "the host is not an IPv4 address");
        return NULL;
    }
    sa.sin_port = htons ((uint16_t) port);
    bool loopback = (ntohl (sa.sin_addr.s_addr) >> 24) == 127;
    const char *cert = pm_config_get (cfg, "gateway", "tls_cert", "");
    const char *key = pm_config_get (cfg, "gateway", "tls_key", "");
    bool plain_ok = false;
    char *err = NULL;
    if (pm_config_bool (cfg, "gateway", "plain_http_beyond_loopback", false, &plain_ok, &err) != PM_OK) {
        pm_error ("%s", err);
        free (err);
        return NULL;
    }
    if ((*cert != '\0') != (*key != '\0')) {
        s_config_error (cfg, *cert ? "tls_key" : "tls_cert", "TLS needs both tls_cert and tls_key (PEM files)");
        return NULL;
    }
    if (!*cert && !loopback && !plain_ok) {
        s_config_error (cfg, "listen",
                        "listens beyond this host without TLS: set tls_cert and tls_key (PEM), or "
                        "plain_http_beyond_loopback = true behind a TLS-terminating proxy");
        return NULL;
    }

    gw_http_t *h = pm_xcalloc (1, sizeof *h);
    h->gw = gw;
    h->arena = pm_arena_new ();
    pm_metrics_t *m = pm_daemon_metrics (gw->d);
    for (int i = 0; i < GW_NCODES; i++) {
        char labels[32];
        snprintf (labels, sizeof labels, "code=\"%u\"", s_codes[i]);
        h->codes[i] = pm_metric (m, PM_COUNTER, "gateway_http_responses_total", labels, "HTTP responses, by status code");
    }
    h->code_other = pm_metric (m, PM_COUNTER, "gateway_http_responses_total", "code=\"other\"",
                               "HTTP responses, by status code");
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (*cert) {
        if (!MHD_is_feature_supported (MHD_FEATURE_TLS)) {
            s_config_error (cfg, "tls_cert", "this libmicrohttpd has no TLS support");
            pm_arena_destroy (&h->arena);
            free (h);
            return NULL;
        }
        h->cert = s_slurp (cfg, "tls_cert", cert);
        h->key = s_slurp (cfg, "tls_key", key);
        if (!h->cert || !h->key) {
            free (h->cert);
            free (h->key);
            pm_arena_destroy (&h->arena);
            free (h);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        h->tls = true;
    }
    if (h->tls)
        h->mhd = MHD_start_daemon (flags, 0, NULL, NULL, s_access, h, MHD_OPTION_SOCK_ADDR, &sa,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120, MHD_OPTION_NOTIFY_COMPLETED,
                                   s_completed, h, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (32 * 1024),
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 4096, MHD_OPTION_HTTPS_MEM_KEY, h->key,
                                   MHD_OPTION_HTTPS_MEM_CERT, h->cert, MHD_OPTION_END);
    else
        h->mhd = MHD_start_daemon (flags, 0, NULL, NULL, s_access, h, MHD_OPTION_SOCK_ADDR, &sa,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120, MHD_OPTION_NOTIFY_COMPLETED,
                                   s_completed, h, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (32 * 1024),
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 4096, MHD_OPTION_END);
    if (!h->mhd) {
        pm_error ("gateway: cannot listen on %s%s (in use? a bad certificate?)", listen, h->tls ? " with TLS" : "");
        free (h->cert);
        free (h->key);
        pm_arena_destroy (&h->arena);
        free (h);
        return NULL;
    }
    const union MHD_DaemonInfo *fd = MHD_get_daemon_info (h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *bp = MHD_get_daemon_info (h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = bp ? bp->port : (uint16_t) port;
    const char *shown = strcmp (host, "0.0.0.0") == 0 ? "127.0.0.1" : host;
    snprintf (h->url, sizeof h->url, "%s://%s:%u/", h->tls ? "https" : "http", shown, h->port);
    ev_io_init (&h->io, s_io_cb, fd->epoll_fd, EV_READ);
    h->io.data = h;
    ev_io_start (gw->loop, &h->io);
    ev_timer_init (&h->timer, s_timer_cb, 0.0, 0.0);
    h->timer.data = h;
    double ka = (double) gw->keepalive_ms / 2000.0;
    ev_timer_init (&h->keepalive, gw_sse_keepalive_cb, ka, ka);
    h->keepalive.data = h;
    ev_timer_start (gw->loop, &h->keepalive);
    ev_idle_init (&h->more, gw_sse_more_cb);
    h->more.data = h;
    *failed = false;
    pm_info ("gateway: API, events and board on %s (listen %s%s)", h->url, listen, h->tls ? ", TLS" : "");
    return h;
}

void
gw_http_destroy (gw_http_t **p)
{
    if (!p || !*p)
        return;
    gw_http_t *h = *p;
    h->stopping = true;
    ev_io_stop (h->gw->loop, &h->io);
    ev_timer_stop (h->gw->loop, &h->timer);
    ev_timer_stop (h->gw->loop, &h->keepalive);
    ev_idle_stop (h->gw->loop, &h->more);
    /* libmicrohttpd must not stop with suspended connections: answer and resume them */
    while (h->waiting) {
        gw_req_t *r = h->waiting;
        r->retry_after = true;
        s_ready (r, 503, s_error_json ("UNAVAILABLE", "the gateway is stopping; try again shortly"));
    }
    gw_sse_stop_all (h);
    MHD_run (h->mhd);
    MHD_stop_daemon (h->mhd);
    free (h->cert);
    free (h->key);
    pm_arena_destroy (&h->arena);
    free (h);
    *p = NULL;
}

uint16_t
gw_http_port (const gw_http_t *h)
{
    return h->port;
}

const char *
gw_http_url (const gw_http_t *h)
{
    return h->url;
}

bool
gw_http_tls (const gw_http_t *h)
{
    return h->tls;
}
