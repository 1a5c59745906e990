/* gateway_sms.c - SMS through an HTTP provider: one JSON POST per message to
 * [notify] sms_url, asynchronously on the daemon's loop (pm/curl.h).
 *
 *   POST sms_url
 *   Content-Type: application/json; charset=utf-8
 *   Idempotency-Key: <dedupe key>          (a provider that honours it closes
 *   Authorization: Bearer <sms_token>       the resend-after-crash window)
 *   {"to":"13812345678","text":"...","message_id":"M0000000042",
 *    "idempotency_key":"...","template":"...","segments":2}
 *
 * The provider's answer, as its documentation promises it:
 *   2xx with {"id": "..."}        sent (id kept as provider_ref)
 *   429 (Retry-After: seconds)     retryable, not before Retry-After
 *   408, 5xx, timeout, no answer   retryable (backoff)
 *   other 4xx                      permanent (the message names the provider's
 *                                  {"message"} or {"error"}): a dead letter
 *   anything else (a 2xx without its JSON, a 3xx) is not what the provider
 *   documents: retried with the same idempotency key, with a reason that says
 *   so, and dead-lettered when attempts run out. Nothing is lost. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/curl.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_ANSWER_MAX 8192

typedef struct s_job s_job_t;

typedef struct {
    notify_gateway_t base;
    pm_curl_t *curl;
    char *url, *token;
    long timeout_ms, connect_ms;
    s_job_t *jobs; /* in flight, for destroy */
} s_sms_t;

struct s_job {
    s_sms_t *g;
    notify_send_t *msg;
    notify_sent_fn done;
    void *arg;
    char *body;
    struct curl_slist *headers;
    char answer[S_ANSWER_MAX];
    size_t alen;
    int64_t retry_after_ms;
    s_job_t *prev, *next;
};

static void
s_unlink (s_job_t *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        j->g->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
}

static void
s_job_free (s_job_t *j)
{
    curl_slist_free_all (j->headers);
    free (j->body);
    free (j);
}

static size_t
s_write_cb (char *data, size_t size, size_t n, void *arg)
{
    s_job_t *j = arg;
    size_t len = size * n, room = sizeof j->answer - 1 - j->alen;
    memcpy (j->answer + j->alen, data, len < room ? len : room);
    j->alen += len < room ? len : room;
    j->answer[j->alen] = '\0';
    return len;
}

static size_t
s_header_cb (char *data, size_t size, size_t n, void *arg)
{
    s_job_t *j = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp (data, "Retry-After:", 12) == 0) {
        const char *v = data + 12;
        while (*v == ' ' || *v == '\t')
            v++;
        char *end;
        double s = strtod (v, &end);
        if (end != v && s >= 0)
            j->retry_after_ms = (int64_t) (s * 1000.0);
        else {
            char date[64];
            snprintf (date, sizeof date, "%.*s", (int) (len - (size_t) (v - data)), v);
            time_t t = curl_getdate (date, NULL);
            if (t > 0) {
                time_t now = time (NULL);
                j->retry_after_ms = t > now ? (int64_t) (t - now) * 1000 : 0;
            }
        }
    }
    return len;
}

/* The provider's own words for a refusal: {"message"} or {"error"}, else the body. */
static const char *
s_words (const s_job_t *j, char *buf, size_t size)
{
    cJSON *a = cJSON_ParseWithLength (j->answer, j->alen);
    const char *w = NULL;
    if (cJSON_IsObject (a)) {
        cJSON *m = cJSON_GetObjectItemCaseSensitive (a, "message");
        if (!cJSON_IsString (m))
            m = cJSON_GetObjectItemCaseSensitive (a, "error");
        if (cJSON_IsString (m))
            w = notify_gateway_clean (m->valuestring, strlen (m->valuestring), 160, buf, size);
    }
    cJSON_Delete (a);
    return w ? w : notify_gateway_clean (j->answer, j->alen, 160, buf, size);
}

static void
s_done_cb (CURL *easy, CURLcode rc, void *arg)
{
    s_job_t *j = arg;
    s_unlink (j);
    notify_result_t res;
    memset (&res, 0, sizeof res);
    snprintf (res.message_id, sizeof res.message_id, "%s", j->msg->message_id);
    long code = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &code);
    char words[320];
    if (rc != CURLE_OK) {
        res.outcome = NOTIFY_RETRY;
        if (rc == CURLE_OPERATION_TIMEDOUT)
            snprintf (res.reason, sizeof res.reason, "the SMS provider did not answer within %ld ms", j->g->timeout_ms);
        else
            snprintf (res.reason, sizeof res.reason, "the SMS provider cannot be reached: %s", curl_easy_strerror (rc));
    }
    else if (code >= 200 && code < 300) {
        cJSON *a = cJSON_ParseWithLength (j->answer, j->alen);
        cJSON *id = cJSON_IsObject (a) ? cJSON_GetObjectItemCaseSensitive (a, "id") : NULL;
        if (cJSON_IsString (id) && *id->valuestring) {
            res.outcome = NOTIFY_OK;
            notify_gateway_clean (id->valuestring, strlen (id->valuestring), sizeof res.provider_ref - 8,
                                  res.provider_ref, sizeof res.provider_ref);
        }
        else {
            res.outcome = NOTIFY_RETRY;
            snprintf (res.reason, sizeof res.reason,
                      "the SMS provider answered %ld without the documented JSON {\"id\": ...} ('%s'); retried "
                      "with the same idempotency key",
                      code, notify_gateway_clean (j->answer, j->alen, 80, words, sizeof words));
        }
        cJSON_Delete (a);
    }
    else if (code == 429) {
        res.outcome = NOTIFY_RETRY;
        res.retry_after_ms = j->retry_after_ms > 0 ? j->retry_after_ms : 1000;
        snprintf (res.reason, sizeof res.reason, "the SMS provider is rate-limiting (429, retry after %lld ms)",
                  (long long) res.retry_after_ms);
    }
    else if (code == 408 || code >= 500) {
        res.outcome = NOTIFY_RETRY;
        res.retry_after_ms = code == 503 ? j->retry_after_ms : 0;
        snprintf (res.reason, sizeof res.reason, "the SMS provider failed (%ld): %s", code, s_words (j, words, sizeof words));
    }
    else if (code >= 400) {
        res.outcome = NOTIFY_PERMANENT;
        snprintf (res.reason, sizeof res.reason, "the SMS provider refused it (%ld): %s", code,
                  s_words (j, words, sizeof words));
    }
    else {
        res.outcome = NOTIFY_RETRY;
        snprintf (res.reason, sizeof res.reason, "the SMS provider answered %ld, which it does not document", code);
    }
    curl_easy_cleanup (easy);
    notify_send_t *msg = j->msg;
    notify_sent_fn done = j->done;
    void *darg = j->arg;
    s_job_free (j);
    done (msg, &res, darg);
}

static void
s_send (notify_gateway_t *gw, notify_send_t *m, notify_sent_fn done, void *arg)
{
    s_sms_t *g = (s_sms_t *) gw;
    s_job_t *j = pm_xcalloc (1, sizeof *j);
    j->g = g;
    j->msg = m;
    j->done = done;
    j->arg = arg;
    cJSON *b = cJSON_CreateObject ();
    cJSON_AddStringToObject (b, "to", m->address);
    cJSON_AddStringToObject (b, "text", m->body);
    cJSON_AddStringToObject (b, "message_id", m->message_id);
    cJSON_AddStringToObject (b, "idempotency_key", m->dedupe_key);
    cJSON_AddStringToObject (b, "template", m->template_name);
    cJSON_AddNumberToObject (b, "segments", m->segments);
    j->body = cJSON_PrintUnformatted (b);
    cJSON_Delete (b);
    if (!j->body)
        pm_oom ("sms request", 0);
    char *h = pm_xasprintf ("Idempotency-Key: %s", m->dedupe_key);
    j->headers = curl_slist_append (NULL, "Content-Type: application/json; charset=utf-8");
    j->headers = curl_slist_append (j->headers, h);
    free (h);
    j->headers = curl_slist_append (j->headers, "Expect:");
    if (*g->token) {
        h = pm_xasprintf ("Authorization: Bearer %s", g->token);
        j->headers = curl_slist_append (j->headers, h);
        free (h);
    }
    CURL *easy = curl_easy_init ();
    if (!easy)
        pm_oom ("curl easy handle", 0);
    curl_easy_setopt (easy, CURLOPT_URL, g->url);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE, (long) strlen (j->body));
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_header_cb);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, j);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, g->timeout_ms);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, g->connect_ms);
    curl_easy_setopt (easy, CURLOPT_USERAGENT, "pm-notify/1");
    j->next = g->jobs;
    if (g->jobs)
        g->jobs->prev = j;
    g->jobs = j;
    if (pm_curl_add (g->curl, easy, s_done_cb, j) != PM_OK) {
        s_unlink (j);
        curl_easy_cleanup (easy);
        s_job_free (j);
        notify_result_t res;
        memset (&res, 0, sizeof res);
        snprintf (res.message_id, sizeof res.message_id, "%s", m->message_id);
        res.outcome = NOTIFY_RETRY;
        snprintf (res.reason, sizeof res.reason, "libcurl refused the transfer");
        done (m, &res, arg);
    }
}

static void
s_destroy (notify_gateway_t *gw)
{
    s_sms_t *g = (s_sms_t *) gw;
    pm_curl_destroy (&g->curl); /* aborts the transfers: their callbacks are not called */
    while (g->jobs) {
        s_job_t *j = g->jobs;
        s_unlink (j);
        s_job_free (j);
    }
    free (g->url);
    free (g->token);
    free (g);
}

static long
s_ms (const pm_config_t *cfg, const char *key, const char *def, char **err)
{
    int64_t ms;
    const char *v = pm_config_get (cfg, "notify", key, def);
    if (pm_duration_parse (v, &ms) != PM_OK || ms <= 0) {
        *err = pm_config_error (cfg, "notify", key, "expected a duration such as 10s or 500ms");
        return -1;
    }
    return (long) ms;
}

notify_gateway_t *
notify_gateway_sms_new (struct ev_loop *loop, const pm_config_t *cfg, char **err)
{
    const char *url = pm_config_get (cfg, "notify", "sms_url", "");
    if (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0) {
        *err = pm_config_error (cfg, "notify", "sms_url",
                                "expected the provider's http:// or https:// URL (sms_gateway = http-sms needs it)");
        return NULL;
    }
    long timeout = s_ms (cfg, "sms_timeout", "10s", err);
    if (timeout < 0)
        return NULL;
    s_sms_t *g = pm_xcalloc (1, sizeof *g);
    g->base.kind = "http-sms";
    g->base.send = s_send;
    g->base.destroy = s_destroy;
    g->url = pm_xstrdup (url);
    g->token = pm_xstrdup (pm_config_get (cfg, "notify", "sms_token", ""));
    g->timeout_ms = timeout;
    g->connect_ms = timeout < 5000 ? timeout : 5000;
    g->curl = pm_curl_new (loop);
    if (!g->curl) {
        *err = pm_xstrdup ("libcurl could not start");
        s_destroy (&g->base);
        return NULL;
    }
    pm_info ("notify: sms messages go to %s (http-sms gateway)", url);
    return &g->base;
}
