/* gateway_file.c - the embedded default gateway: each message appended as
 * one JSON line to ${file_dir}/<channel>.jsonl, so `./pm up` shows what would
 * have been sent. A send is done when its line is in the file's buffer; the
 * buffer is flushed after each run of sends (flush), before the outcomes are
 * committed.
 *
 * It honours the idempotency key as a provider does. A message whose line
 * was written but whose SENT was not committed when notify died is sent
 * again after the restart (dispatch.c, "the window"), with the same dedupe
 * key: the file already holds it, so it is answered as taken and not written
 * twice. Such a resend is an attempt after the first, so the keys in the file
 * are read (once a process life, as hashes) only when a message with
 * attempts > 1 comes; a first attempt is never in the file. A line torn by a
 * kill in the middle of a write is cut off at open: its message was not
 * committed either, and goes again whole. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The line being written (one JSON object), grown as needed. */
typedef struct {
    char *p;
    size_t n, cap;
} s_line_t;

typedef struct {
    notify_gateway_t base;
    FILE *f;
    char *path;
    int channel;
    s_line_t line;
    bool keys_read;       /* keys holds the keys of the lines in the file */
    uint64_t *keys;       /* FNV-1a hashes of their idempotency keys, sorted */
    size_t nkeys;
    size_t skipped;       /* messages found written already (this life) */
} s_file_t;

#define S_KEY_FIELD "\"idempotency_key\":\""

static uint64_t
s_hash (const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) s[i]) * 1099511628211ULL;
    return h;
}

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Reads the idempotency keys of every line in the file into fg->keys. */
static void
s_read_keys (s_file_t *fg)
{
    fg->keys_read = true;
    if (fflush (fg->f) != 0)
        clearerr (fg->f);
    FILE *in = fopen (fg->path, "re");
    if (!in) {
        pm_warn ("file gateway: cannot read %s to find messages written before a restart: %s", fg->path,
                 strerror (errno));
        return;
    }
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline (&line, &lcap, in)) > 0) {
        const char *k = memmem (line, (size_t) len, S_KEY_FIELD, sizeof S_KEY_FIELD - 1);
        if (!k)
            continue;
        k += sizeof S_KEY_FIELD - 1;
        const char *end = memchr (k, '"', (size_t) (line + len - k));
        if (!end)
            continue;
        if (fg->nkeys == cap) {
            cap = cap ? 2 * cap : 1024;
            fg->keys = pm_xrealloc (fg->keys, cap * sizeof *fg->keys);
        }
        fg->keys[fg->nkeys++] = s_hash (k, (size_t) (end - k));
    }
    free (line);
    fclose (in);
    qsort (fg->keys, fg->nkeys, sizeof *fg->keys, s_cmp_u64);
}

/* Whether the file holds a line with this idempotency key (m is a resend). */
static bool
s_written (s_file_t *fg, const notify_send_t *m)
{
    if (m->attempts <= 1)
        return false;
    if (!fg->keys_read)
        s_read_keys (fg);
    uint64_t h = s_hash (m->dedupe_key, strlen (m->dedupe_key));
    return bsearch (&h, fg->keys, fg->nkeys, sizeof h, s_cmp_u64) != NULL;
}

/* Cuts a last line that has no newline (a write torn by a kill) off the file. */
static void
s_cut_torn_line (const char *path)
{
    int fd = open (path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    char buf[4096];
    off_t end = fstat (fd, &st) == 0 ? st.st_size : 0, at = end;
    while (at > 0) {
        size_t n = at < (off_t) sizeof buf ? (size_t) at : sizeof buf;
        if (pread (fd, buf, n, at - (off_t) n) != (ssize_t) n)
            break;
        const char *nl = memrchr (buf, '\n', n);
        if (nl) {
            at = at - (off_t) n + (nl - buf) + 1;
            break;
        }
        at -= (off_t) n;
    }
    if (at < end) {
        if (ftruncate (fd, at) == 0)
            pm_warn ("file gateway: %s ended in a torn line (%lld bytes, a write cut short when notify died): "
                     "cut off; its message goes again",
                     path, (long long) (end - at));
        else
            pm_error ("file gateway: cannot cut the torn last line of %s: %s", path, strerror (errno));
    }
    close (fd);
}

static void
s_put (s_line_t *l, const char *s, size_t n)
{
    if (l->n + n + 1 > l->cap) {
        l->cap = (l->n + n + 1) * 2;
        l->p = pm_xrealloc (l->p, l->cap);
    }
    memcpy (l->p + l->n, s, n);
    l->n += n;
}

/* ,"key":"value" with the value escaped as JSON (UTF-8 passes as it is). */
static void
s_str (s_line_t *l, const char *key, const char *v)
{
    s_put (l, l->n > 1 ? ",\"" : "\"", l->n > 1 ? 2 : 1);
    s_put (l, key, strlen (key));
    s_put (l, "\":\"", 3);
    const char *run = v;
    for (; *v; v++) {
        unsigned char c = (unsigned char) *v;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        s_put (l, run, (size_t) (v - run));
        char esc[8];
        int n = c == '"' ? snprintf (esc, sizeof esc, "\\\"") : c == '\\' ? snprintf (esc, sizeof esc, "\\\\")
                : c == '\n' ? snprintf (esc, sizeof esc, "\\n") : snprintf (esc, sizeof esc, "\\u%04x", c);
        s_put (l, esc, (size_t) n);
        run = v + 1;
    }
    s_put (l, run, (size_t) (v - run));
    s_put (l, "\"", 1);
}

static void
s_num (s_line_t *l, const char *key, unsigned long long v)
{
    char buf[64];
    int n = snprintf (buf, sizeof buf, ",\"%s\":%llu", key, v);
    s_put (l, buf, (size_t) n);
}

static void
s_send (notify_gateway_t *g, notify_send_t *m, notify_sent_fn done, void *arg)
{
    s_file_t *fg = (s_file_t *) g;
    notify_result_t res;
    memset (&res, 0, sizeof res);
    snprintf (res.message_id, sizeof res.message_id, "%s", m->message_id);
    if (s_written (fg, m)) { /* taken before a restart: the provider's answer to a repeated key */
        if (fg->skipped++ == 0)
            pm_info ("file gateway: %s was written to %s before notify restarted; not written again (and so for "
                     "every such message)",
                     m->message_id, fg->path);
        res.outcome = NOTIFY_OK;
        snprintf (res.provider_ref, sizeof res.provider_ref, "file:%s", m->message_id);
        done (m, &res, arg);
        return;
    }
    s_line_t *l = &fg->line;
    l->n = 0;
    s_put (l, "{", 1);
    s_str (l, "message_id", m->message_id);
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    s_num (l, "written_ms", (unsigned long long) ts.tv_sec * 1000ULL + (unsigned long long) ts.tv_nsec / 1000000ULL);
    s_str (l, "idempotency_key", m->dedupe_key);
    s_str (l, "channel", notify_channels[m->channel]);
    s_str (l, "template", m->template_name);
    s_str (l, "to", m->address);
    s_str (l, "name", m->name);
    s_str (l, "unit_id", m->unit_id);
    if (m->channel == NOTIFY_EMAIL)
        s_str (l, "subject", m->subject);
    else
        s_num (l, "segments", m->segments);
    s_str (l, "text", m->body);
    s_num (l, "attempt", m->attempts);
    s_put (l, "}\n", 2);
    if (fwrite (l->p, 1, l->n, fg->f) != l->n) {
        res.outcome = NOTIFY_RETRY;
        snprintf (res.reason, sizeof res.reason, "cannot write %s: %s", fg->path, strerror (errno));
        clearerr (fg->f);
    }
    else {
        res.outcome = NOTIFY_OK;
        snprintf (res.provider_ref, sizeof res.provider_ref, "file:%s", m->message_id);
    }
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
    free (fg->line.p);
    free (fg->keys);
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
    s_cut_torn_line (fg->path);
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
