/* gateway_file.c - the embedded default gateway: each message appended as
 * one JSON line to ${file_dir}/<channel>.jsonl, so `./pm up` shows what would
 * have been sent. A send is done when its line is in the file's buffer; the
 * buffer is flushed after each run of sends (flush), before the outcomes are
 * committed. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    notify_gateway_t base;
    FILE *f;
    char *path;
    int channel;
} s_file_t;

static void
s_send (notify_gateway_t *g, notify_send_t *m, notify_sent_fn done, void *arg)
{
    s_file_t *fg = (s_file_t *) g;
    notify_result_t res;
    memset (&res, 0, sizeof res);
    snprintf (res.message_id, sizeof res.message_id, "%s", m->message_id);
    cJSON *j = cJSON_CreateObject ();
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    cJSON_AddNumberToObject (j, "written_ms", (double) ts.tv_sec * 1000.0 + (double) (ts.tv_nsec / 1000000));
    cJSON_AddStringToObject (j, "message_id", m->message_id);
    cJSON_AddStringToObject (j, "idempotency_key", m->dedupe_key);
    cJSON_AddStringToObject (j, "channel", notify_channels[m->channel]);
    cJSON_AddStringToObject (j, "template", m->template_name);
    cJSON_AddStringToObject (j, "to", m->address);
    cJSON_AddStringToObject (j, "name", m->name);
    cJSON_AddStringToObject (j, "unit_id", m->unit_id);
    if (m->channel == NOTIFY_EMAIL)
        cJSON_AddStringToObject (j, "subject", m->subject);
    else
        cJSON_AddNumberToObject (j, "segments", m->segments);
    cJSON_AddStringToObject (j, "text", m->body);
    cJSON_AddNumberToObject (j, "attempt", m->attempts);
    char *line = cJSON_PrintUnformatted (j);
    cJSON_Delete (j);
    if (!line)
        pm_oom ("file gateway line", 0);
    if (fputs (line, fg->f) < 0 || fputc ('\n', fg->f) == EOF) {
        res.outcome = NOTIFY_RETRY;
        snprintf (res.reason, sizeof res.reason, "cannot write %s: %s", fg->path, strerror (errno));
        clearerr (fg->f);
    }
    else {
        res.outcome = NOTIFY_OK;
        snprintf (res.provider_ref, sizeof res.provider_ref, "file:%s", m->message_id);
    }
    free (line);
    done (m, &res, arg);
}

static void
s_flush (notify_gateway_t *g)
{
    s_file_t *fg = (s_file_t *) g;
    if (fflush (fg->f) != 0) {
        pm_error ("file gateway: cannot write %s: %s", fg->path, strerror (errno));
        clearerr (fg->f);
    }
}

static void
s_destroy (notify_gateway_t *g)
{
    s_file_t *fg = (s_file_t *) g;
    if (fg->f)
        fclose (fg->f);
    free (fg->path);
    free (fg);
}

notify_gateway_t *
notify_gateway_file_new (int channel, const pm_config_t *cfg, char **err)
{
    const char *dir = pm_config_get (cfg, "notify", "file_dir", "");
    char *outbox = NULL;
    if (!*dir) /* by default beside notify's data: ${home}/notify/outbox */
        dir = outbox = pm_xasprintf ("%s/outbox", pm_config_get (cfg, "notify", "data", "."));
    if (pm_mkdirs (dir) != PM_OK) {
        char *why = pm_xasprintf ("cannot create %s: %s", dir, strerror (errno));
        *err = pm_config_error (cfg, "notify", "file_dir", why);
        free (why);
        free (outbox);
        return NULL;
    }
    s_file_t *fg = pm_xcalloc (1, sizeof *fg);
    fg->base.kind = "file";
    fg->base.send = s_send;
    fg->base.flush = s_flush;
    fg->base.destroy = s_destroy;
    fg->channel = channel;
    fg->path = pm_xasprintf ("%s/%s.jsonl", dir, notify_channels[channel]);
    free (outbox);
    fg->f = fopen (fg->path, "ae");
    if (!fg->f) {
        char *why = pm_xasprintf ("cannot open %s: %s", fg->path, strerror (errno));
        *err = pm_config_error (cfg, "notify", "file_dir", why);
        free (why);
        s_destroy (&fg->base);
        return NULL;
    }
    setvbuf (fg->f, NULL, _IOFBF, 1 << 20);
    pm_info ("notify: %s messages go to %s (file gateway)", notify_channels[channel], fg->path);
    return &fg->base;
}

/* --- shared by the gateways ------------------------------------------------------------ */

const char *
notify_gateway_clean (const char *s, size_t len, size_t max, char *buf, size_t size)
{
    size_t w = 0;
    if (len > max)
        len = max;
    for (size_t i = 0; i < len && w + 5 < size;) {
        unsigned char c = (unsigned char) s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 1) {
            buf[w++] = c < 0x20 || c == 0x7f ? ' ' : (char) c;
            i++;
            continue;
        }
        bool ok = n && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char) s[i + k] & 0xC0) == 0x80;
        if (ok && n == 3 && c == 0xE0 && (unsigned char) s[i + 1] < 0xA0)
            ok = false; /* overlong */
        if (ok && n == 3 && c == 0xED && (unsigned char) s[i + 1] >= 0xA0)
            ok = false; /* surrogate */
        if (ok && n == 4 && (c > 0xF4 || (c == 0xF0 && (unsigned char) s[i + 1] < 0x90)
                             || (c == 0xF4 && (unsigned char) s[i + 1] >= 0x90)))
            ok = false;
        if (ok && n == 2 && c < 0xC2)
            ok = false;
        if (!ok) {
            buf[w++] = '?';
            i++;
            continue;
        }
        memcpy (buf + w, s + i, n);
        w += n;
        i += n;
    }
    while (w && buf[w - 1] == ' ')
        w--;
    buf[w] = '\0';
    return buf;
}

notify_gateway_t *
notify_gateway_new (const char *kind, int channel, struct ev_loop *loop, const pm_config_t *cfg, char **err)
{
    const char *key = channel == NOTIFY_SMS ? "sms_gateway" : "email_gateway";
    if (strcmp (kind, "file") == 0)
        return notify_gateway_file_new (channel, cfg, err);
    if (strcmp (kind, "http-sms") == 0 && channel == NOTIFY_SMS)
        return notify_gateway_sms_new (loop, cfg, err);
    if (strcmp (kind, "smtp") == 0 && channel == NOTIFY_EMAIL)
        return notify_gateway_smtp_new (loop, cfg, err);
    *err = pm_config_error (cfg, "notify", key,
                            channel == NOTIFY_SMS ? "expected file or http-sms" : "expected file or smtp");
    return NULL;
}
