/* gateway_smtp.c - email through libcurl's SMTP with its MIME API, one
 * transfer per message on the daemon's loop (pm/curl.h).
 *
 * Config ([notify]): smtp_url (smtp://host:port, or smtps:// for TLS from the
 * start), smtp_tls (true: require STARTTLS), smtp_user, smtp_password,
 * smtp_from ("物业服务中心 <noreply@example.com>"), email_timeout.
 *
 * Headers are RFC 5322 with RFC 2047 encoded words for UTF-8 (subject and
 * names); the body is a text/plain; charset=UTF-8 part, base64-encoded. The
 * Message-ID is made from the dedupe key: a message resent after a crash
 * carries the same one.
 *
 * Answers: accepted = sent; no connection, timeout, a 4xx reply = retryable;
 * a 5xx reply (unknown mailbox, refused) or refused credentials = permanent. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/curl.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct s_job s_job_t;

typedef struct {
    notify_gateway_t base;
    pm_curl_t *curl;
    char *url, *user, *password;
    char *from_header, *from_address;
    bool tls;
    long timeout_ms;
    s_job_t *jobs;
} s_smtp_t;

struct s_job {
    s_smtp_t *g;
    notify_send_t *msg;
    notify_sent_fn done;
    void *arg;
    curl_mime *mime;
    struct curl_slist *headers, *rcpt;
    char message_id[160];
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
    curl_mime_free (j->mime);
    curl_slist_free_all (j->headers);
    curl_slist_free_all (j->rcpt);
    free (j);
}

static bool
s_ascii (const char *s)
{
    for (; *s; s++)
        if ((unsigned char) *s >= 0x80 || *s == '"' || *s == '\r' || *s == '\n')
            return false;
    return true;
}

/* An RFC 2047 encoded word for s (malloc'd), or a copy when plain ASCII. */
static char *
s_word (const char *s)
{
    if (s_ascii (s))
        return pm_xstrdup (s);
    size_t len = strlen (s);
    size_t b64 = sodium_base64_encoded_len (len, sodium_base64_VARIANT_ORIGINAL);
    char *enc = pm_xmalloc (b64);
    sodium_bin2base64 (enc, b64, (const unsigned char *) s, len, sodium_base64_VARIANT_ORIGINAL);
    char *w = pm_xasprintf ("=?UTF-8?B?%s?=", enc);
    free (enc);
    return w;
}

static uint64_t
s_fnv (const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ULL;
    }
    return h;
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
    if (rc == CURLE_OK) {
        res.outcome = NOTIFY_OK;
        snprintf (res.provider_ref, sizeof res.provider_ref, "%.*s", (int) sizeof res.provider_ref - 1, j->message_id);
    }
    else if (rc == CURLE_LOGIN_DENIED) {
        res.outcome = NOTIFY_PERMANENT;
        snprintf (res.reason, sizeof res.reason, "the mail server refused the credentials (smtp_user, smtp_password)");
    }
    else if (code >= 500 && code < 600) {
        res.outcome = NOTIFY_PERMANENT;
        snprintf (res.reason, sizeof res.reason, "the mail server refused it (%ld): %s", code, curl_easy_strerror (rc));
    }
    else {
        res.outcome = NOTIFY_RETRY;
        if (code >= 400)
            snprintf (res.reason, sizeof res.reason, "the mail server asked to try later (%ld): %s", code,
                      curl_easy_strerror (rc));
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            snprintf (res.reason, sizeof res.reason, "the mail server did not answer within %ld ms", j->g->timeout_ms);
        else
            snprintf (res.reason, sizeof res.reason, "the mail server cannot be reached: %s", curl_easy_strerror (rc));
    }
    curl_easy_cleanup (easy);
    notify_send_t *msg = j->msg;
    notify_sent_fn done = j->done;
    void *darg = j->arg;
    s_job_free (j);
    done (msg, &res, darg);
}

static void
s_header (s_job_t *j, const char *fmt, const char *value)
{
    char *h = pm_xasprintf (fmt, value);
    j->headers = curl_slist_append (j->headers, h);
    free (h);
}

static void
s_send (notify_gateway_t *gw, notify_send_t *m, notify_sent_fn done, void *arg)
{
    s_smtp_t *g = (s_smtp_t *) gw;
    s_job_t *j = pm_xcalloc (1, sizeof *j);
    j->g = g;
    j->msg = m;
    j->done = done;
    j->arg = arg;
    snprintf (j->message_id, sizeof j->message_id, "<%016llx.%s@pm-notify>", (unsigned long long) s_fnv (m->dedupe_key),
              m->message_id);
    CURL *easy = curl_easy_init ();
    if (!easy)
        pm_oom ("curl easy handle", 0);
    char date[64];
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    snprintf (date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
              tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    char *name = s_word (m->name), *subject = s_word (m->subject);
    char *to = *m->name ? pm_xasprintf ("%s <%s>", name, m->address) : pm_xstrdup (m->address);
    s_header (j, "Date: %s", date);
    s_header (j, "From: %s", g->from_header);
    s_header (j, "To: %s", to);
    s_header (j, "Subject: %s", subject);
    s_header (j, "Message-ID: %s", j->message_id);
    s_header (j, "X-Idempotency-Key: %s", m->dedupe_key);
    free (name);
    free (subject);
    free (to);
    j->rcpt = curl_slist_append (NULL, m->address);
    j->mime = curl_mime_init (easy);
    curl_mimepart *part = curl_mime_addpart (j->mime);
    curl_mime_data (part, m->body, CURL_ZERO_TERMINATED);
    curl_mime_type (part, "text/plain; charset=UTF-8");
    curl_mime_encoder (part, "base64");
    curl_easy_setopt (easy, CURLOPT_URL, g->url);
    curl_easy_setopt (easy, CURLOPT_MAIL_FROM, g->from_address);
    curl_easy_setopt (easy, CURLOPT_MAIL_RCPT, j->rcpt);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt (easy, CURLOPT_MIMEPOST, j->mime);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, g->timeout_ms);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, g->timeout_ms < 5000 ? g->timeout_ms : 5000L);
    if (g->tls)
        curl_easy_setopt (easy, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
    if (*g->user) {
        curl_easy_setopt (easy, CURLOPT_USERNAME, g->user);
        curl_easy_setopt (easy, CURLOPT_PASSWORD, g->password);
    }
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
    s_smtp_t *g = (s_smtp_t *) gw;
    pm_curl_destroy (&g->curl);
    while (g->jobs) {
        s_job_t *j = g->jobs;
        s_unlink (j);
        s_job_free (j);
    }
    free (g->url);
    free (g->user);
    free (g->password);
    free (g->from_header);
    free (g->from_address);
    free (g);
}

notify_gateway_t *
notify_gateway_smtp_new (struct ev_loop *loop, const pm_config_t *cfg, char **err)
{
    const char *url = pm_config_get (cfg, "notify", "smtp_url", "");
    if (strncmp (url, "smtp://", 7) != 0 && strncmp (url, "smtps://", 8) != 0) {
        *err = pm_config_error (cfg, "notify", "smtp_url",
                                "expected smtp://host:port or smtps://host:port (email_gateway = smtp needs it)");
        return NULL;
    }
    const char *from = pm_config_get (cfg, "notify", "smtp_from", "");
    const char *lt = strrchr (from, '<'), *gt = strrchr (from, '>');
    char *address = lt && gt > lt ? pm_xstrndup (lt + 1, (size_t) (gt - lt - 1)) : pm_xstrdup (from);
    if (!strchr (address, '@')) {
        free (address);
        *err = pm_config_error (cfg, "notify", "smtp_from",
                                "expected the sender, e.g. 物业服务中心 <noreply@example.com>");
        return NULL;
    }
    bool tls = false;
    int64_t timeout;
    char *e = NULL;
    if (pm_config_bool (cfg, "notify", "smtp_tls", false, &tls, &e) != PM_OK) {
        free (address);
        *err = e;
        return NULL;
    }
    const char *tv = pm_config_get (cfg, "notify", "email_timeout", "30s");
    if (pm_duration_parse (tv, &timeout) != PM_OK || timeout <= 0) {
        free (address);
        *err = pm_config_error (cfg, "notify", "email_timeout", "expected a duration such as 30s");
        return NULL;
    }
    s_smtp_t *g = pm_xcalloc (1, sizeof *g);
    g->base.kind = "smtp";
    g->base.send = s_send;
    g->base.destroy = s_destroy;
    g->url = pm_xstrdup (url);
    g->user = pm_xstrdup (pm_config_get (cfg, "notify", "smtp_user", ""));
    g->password = pm_xstrdup (pm_config_get (cfg, "notify", "smtp_password", ""));
    g->from_address = address;
    if (lt && lt > from) {
        char *name = pm_xstrndup (from, (size_t) (lt - from));
        while (*name && name[strlen (name) - 1] == ' ')
            name[strlen (name) - 1] = '\0';
        char *w = s_word (name);
        g->from_header = pm_xasprintf ("%s <%s>", w, address);
        free (w);
        free (name);
    }
    else
        g->from_header = pm_xasprintf ("<%s>", address);
    g->tls = tls;
    g->timeout_ms = (long) timeout;
    g->curl = pm_curl_new (loop);
    if (!g->curl) {
        *err = pm_xstrdup ("libcurl could not start");
        s_destroy (&g->base);
        return NULL;
    }
    pm_info ("notify: email goes to %s (smtp gateway, from %s)", url, address);
    return &g->base;
}
