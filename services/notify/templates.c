/* templates.c - the message texts, loaded from deploy/notify/templates.conf
 * and checked whole at start: an unknown variable, a malformed {, a missing
 * text or an SMS over its budget is an error naming the file and the line,
 * never a blank in a message already on its way.
 *
 *   [appointment_booked.sms]
 *   segments = 2
 *   text = {name}您好，您已预约{slot}在{place}办理入住手续。
 *
 *   [move_in_notice.email]
 *   subject = 入住通知书：{unit_name}
 *   body = {name}您好：
 *     | 您的房屋{unit_name}已具备交付条件……
 *
 * A template is compiled into parts (literal text or a variable), so
 * rendering is a concatenation. */
#define _GNU_SOURCE
#include "notify.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DEFAULT_SEGMENTS 2
#define S_MAX_SEGMENTS 10

typedef struct {
    int var;   /* >= 0: a variable; -1: literal text */
    char *lit;
} s_part_t;

typedef struct {
    s_part_t *parts;
    size_t n;
    bool set;
    int line;
} s_text_t;

struct notify_template {
    char *name;
    int channel;
    int line;
    s_text_t subject, body;
    uint64_t vars;
    unsigned segments;  /* the SMS budget */
    int segments_line;
};

struct notify_templates {
    char *path;
    notify_template_t *t;
    size_t n, cap;
};

static void
s_text_free (s_text_t *x)
{
    for (size_t i = 0; i < x->n; i++)
        free (x->parts[i].lit);
    free (x->parts);
    memset (x, 0, sizeof *x);
}

void
notify_templates_destroy (notify_templates_t **p)
{
    if (!p || !*p)
        return;
    notify_templates_t *t = *p;
    for (size_t i = 0; i < t->n; i++) {
        free (t->t[i].name);
        s_text_free (&t->t[i].subject);
        s_text_free (&t->t[i].body);
    }
    free (t->t);
    free (t->path);
    free (t);
    *p = NULL;
}

static char *
s_err (const char *path, int line, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static char *
s_err (const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *msg = NULL;
    if (vasprintf (&msg, fmt, ap) < 0)
        pm_oom ("template error", 0);
    va_end (ap);
    char *s = pm_xasprintf ("%s:%d: %s", path, line, msg);
    free (msg);
    return s;
}

static char *
s_known_vars (void)
{
    size_t len = 1;
    for (int i = 0; i < NOTIFY_NVARS; i++)
        len += strlen (notify_vars[i].name) + 2;
    char *s = pm_xcalloc (1, len);
    for (int i = 0; i < NOTIFY_NVARS; i++) {
        if (i)
            strcat (s, ", ");
        strcat (s, notify_vars[i].name);
    }
    return s;
}

static void
s_part_add (s_text_t *x, int var, const char *lit, size_t len)
{
    if (var < 0 && len == 0)
        return;
    x->parts = pm_xrealloc (x->parts, (x->n + 1) * sizeof *x->parts);
    x->parts[x->n].var = var;
    x->parts[x->n].lit = var < 0 ? pm_xstrndup (lit, len) : NULL;
    x->n++;
}

/* Compiles value into x. NULL, or the error (malloc'd). */
static char *
s_compile (const char *path, int line, const char *section, const char *key, const char *value, s_text_t *x,
           uint64_t *vars)
{
    s_text_free (x);
    x->set = true;
    x->line = line;
    char *lit = pm_xmalloc (strlen (value) + 1);
    size_t n = 0;
    for (const char *p = value; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            lit[n++] = '{';
            p += 2;
            continue;
        }
        if (p[0] == '}' && p[1] == '}') {
            lit[n++] = '}';
            p += 2;
            continue;
        }
        if (*p == '}') {
            free (lit);
            return s_err (path, line, "[%s] %s: a lone '}' (write '}}' for a brace)", section, key);
        }
        if (*p != '{') {
            lit[n++] = *p++;
            continue;
        }
        const char *end = strchr (p + 1, '}');
        const char *nl = strchr (p + 1, '\n');
        if (!end || (nl && nl < end)) {
            free (lit);
            return s_err (path, line, "[%s] %s: '{' without its '}' (write '{{' for a brace)", section, key);
        }
        int var = notify_var_find (p + 1, (size_t) (end - p - 1));
        if (var < 0) {
            char *known = s_known_vars ();
            char *e = s_err (path, line, "[%s] %s: unknown variable {%.*s}; known: %s", section, key, (int) (end - p - 1),
                             p + 1, known);
            free (known);
            free (lit);
            return e;
        }
        s_part_add (x, -1, lit, n);
        n = 0;
        s_part_add (x, var, NULL, 0);
        *vars |= NOTIFY_VAR (var);
        p = end + 1;
    }
    s_part_add (x, -1, lit, n);
    free (lit);
    return NULL;
}

/* Characters of x with every variable at its longest. */
static size_t
s_max_chars (const s_text_t *x)
{
    size_t n = 0;
    for (size_t i = 0; i < x->n; i++)
        n += x->parts[i].var >= 0 ? notify_vars[x->parts[i].var].width : pm_utf8_chars (x->parts[i].lit);
    return n;
}

static bool
s_ascii (const s_text_t *x)
{
    for (size_t i = 0; i < x->n; i++) {
        if (x->parts[i].var >= 0)
            continue; /* values are checked when rendered */
        for (const unsigned char *p = (const unsigned char *) x->parts[i].lit; *p; p++)
            if (*p >= 0x80)
                return false;
    }
    return true;
}

static unsigned
s_segments (size_t chars, bool ascii)
{
    size_t one = ascii ? 160 : 70, part = ascii ? 153 : 67;
    if (chars <= one)
        return 1;
    return (unsigned) ((chars + part - 1) / part);
}

unsigned
notify_sms_segments (const char *text)
{
    bool ascii = true;
    for (const unsigned char *p = (const unsigned char *) text; *p && ascii; p++)
        ascii = *p < 0x80;
    return s_segments (pm_utf8_chars (text), ascii);
}

/* Checks a finished section: what its channel needs, and the SMS budget. */
static char *
s_check (const char *path, notify_template_t *t)
{
    const char *ch = notify_channels[t->channel];
    if (t->channel == NOTIFY_SMS) {
        if (!t->body.set)
            return s_err (path, t->line, "[%s.%s]: no text (an SMS template needs 'text = ...')", t->name, ch);
        size_t max = s_max_chars (&t->body);
        unsigned seg = s_segments (max, s_ascii (&t->body));
        if (seg > t->segments) {
            char *vars = pm_xcalloc (1, 1);
            for (size_t i = 0; i < t->body.n; i++)
                if (t->body.parts[i].var >= 0) {
                    char *v = pm_xasprintf ("%s%s{%s} %u", vars, *vars ? ", " : "", notify_vars[t->body.parts[i].var].name,
                                            notify_vars[t->body.parts[i].var].width);
                    free (vars);
                    vars = v;
                }
            char *e = s_err (path, t->body.line,
                             "[%s.%s] text: up to %zu characters with every variable at its longest (%s) make %u SMS "
                             "segments; the budget is %u (shorten the text, or raise 'segments = N')",
                             t->name, ch, max, *vars ? vars : "no variables", seg, t->segments);
            free (vars);
            return e;
        }
    }
    else {
        if (!t->subject.set)
            return s_err (path, t->line, "[%s.%s]: no subject (an email template needs 'subject = ...')", t->name, ch);
        if (!t->body.set)
            return s_err (path, t->line, "[%s.%s]: no body (an email template needs 'body = ...')", t->name, ch);
    }
    return NULL;
}

/* One "key = value" (value complete, continuations joined) into t. */
static char *
s_key (const char *path, int line, notify_template_t *t, const char *key, const char *value)
{
    char section[160];
    snprintf (section, sizeof section, "%s.%s", t->name, notify_channels[t->channel]);
    bool sms = t->channel == NOTIFY_SMS;
    if (strcmp (key, "text") == 0 && sms)
        return s_compile (path, line, section, key, value, &t->body, &t->vars);
    if (strcmp (key, "subject") == 0 && !sms && strchr (value, '\n'))
        return s_err (path, line, "[%s] subject: one line only (a '|' continuation follows it)", section);
    if ((strcmp (key, "subject") == 0 || strcmp (key, "body") == 0) && !sms)
        return s_compile (path, line, section, key, value, key[0] == 's' ? &t->subject : &t->body, &t->vars);
    if (strcmp (key, "segments") == 0 && sms) {
        char *end;
        long n = strtol (value, &end, 10);
        if (!*value || *end || n < 1 || n > S_MAX_SEGMENTS)
            return s_err (path, line, "[%s] segments = '%s': expected a number of SMS segments from 1 to %d", section,
                          value, S_MAX_SEGMENTS);
        t->segments = (unsigned) n;
        t->segments_line = line;
        return NULL;
    }
    return s_err (path, line, "[%s]: unknown key '%s'; an %s template takes %s", section, key, sms ? "SMS" : "email",
                  sms ? "text and segments" : "subject and body");
}

/* A section header "[name.channel]" into a new template. */
static char *
s_section (const char *path, int line, notify_templates_t *ts, char *head)
{
    size_t len = strlen (head);
    if (len < 2 || head[len - 1] != ']')
        return s_err (path, line, "expected a section header like [move_in_notice.sms], got '%s'", head);
    head[len - 1] = '\0';
    char *name = pm_trim (head + 1);
    char *dot = strrchr (name, '.');
    if (!dot || dot == name || !dot[1])
        return s_err (path, line, "[%s]: expected [TEMPLATE.CHANNEL], e.g. [move_in_notice.sms]", name);
    *dot = '\0';
    int ch = notify_channel (dot + 1);
    if (ch < 0)
        return s_err (path, line, "[%s.%s]: unknown channel '%s'; channels are sms and email", name, dot + 1, dot + 1);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return s_err (path, line, "[%s.%s]: a template name is lower case letters, digits and '_'", name, dot + 1);
    for (size_t i = 0; i < ts->n; i++)
        if (ts->t[i].channel == ch && strcmp (ts->t[i].name, name) == 0)
            return s_err (path, line, "[%s.%s]: defined twice (first on line %d)", name, dot + 1, ts->t[i].line);
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? 2 * ts->cap : 32;
        ts->t = pm_xrealloc (ts->t, ts->cap * sizeof *ts->t);
    }
    notify_template_t *t = &ts->t[ts->n++];
    memset (t, 0, sizeof *t);
    t->name = pm_xstrdup (name);
    t->channel = ch;
    t->line = line;
    t->segments = S_DEFAULT_SEGMENTS;
    return NULL;
}

notify_templates_t *
notify_templates_load (const char *path, const char *text, char **err)
{
    notify_templates_t *ts = pm_xcalloc (1, sizeof *ts);
    ts->path = pm_xstrdup (path);
    char *copy = pm_xstrdup (text);
    char *e = NULL;
    char *key = NULL, *value = NULL; /* the key being read (continuations follow) */
    int key_line = 0, line = 0;
    for (char *p = copy; p && !e; line++) {
        char *nl = strchr (p, '\n');
        if (nl)
            *nl = '\0';
        char *raw = p;
        p = nl ? nl + 1 : NULL;
        if (!nl && !*raw)
            break;
        int ln = line + 1;
        if (!pm_utf8_valid_str (raw)) {
            e = s_err (path, ln, "not UTF-8 (save the file as UTF-8)");
            break;
        }
        size_t rl = strlen (raw);
        if (rl && raw[rl - 1] == '\r')
            raw[rl - 1] = '\0';
        char *s = pm_trim (raw);
        if (*s == '|') { /* a continuation of the value being read */
            if (!key) {
                e = s_err (path, ln, "a '|' line continues a value, but no 'key =' comes before it");
                break;
            }
            const char *more = s[1] == ' ' ? s + 2 : s + 1;
            char *v = pm_xasprintf ("%s%s%s", value, *value ? "\n" : "", more);
            free (value);
            value = v;
            continue;
        }
        if (key) { /* the value is complete */
            e = s_key (path, key_line, &ts->t[ts->n - 1], key, value);
            free (key);
            free (value);
            key = value = NULL;
            if (e)
                break;
        }
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            if (ts->n && (e = s_check (path, &ts->t[ts->n - 1])))
                break;
            e = s_section (path, ln, ts, s);
            continue;
        }
        char *eq = strchr (s, '=');
        if (!eq) {
            e = s_err (path, ln, "expected 'key = value', a [TEMPLATE.CHANNEL] header or a '|' continuation");
            break;
        }
        *eq = '\0';
        if (!ts->n) {
            e = s_err (path, ln, "'%s' before any [TEMPLATE.CHANNEL] section", pm_trim (s));
            break;
        }
        key = pm_xstrdup (pm_trim (s));
        value = pm_xstrdup (pm_trim (eq + 1));
        key_line = ln;
    }
    if (!e && key)
        e = s_key (path, key_line, &ts->t[ts->n - 1], key, value);
    free (key);
    free (value);
    if (!e && ts->n)
        e = s_check (path, &ts->t[ts->n - 1]);
    if (!e && !ts->n)
        e = s_err (path, 1, "no templates (expected sections like [move_in_notice.sms])");
    free (copy);
    if (e) {
        *err = e;
        notify_templates_destroy (&ts);
        return NULL;
    }
    return ts;
}

const notify_template_t *
notify_template_find (const notify_templates_t *t, const char *name, int channel)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->t[i].channel == channel && strcmp (t->t[i].name, name) == 0)
            return &t->t[i];
    return NULL;
}

uint64_t notify_template_vars (const notify_template_t *t) { return t->vars; }
int notify_template_line (const notify_template_t *t) { return t->line; }
const char *notify_template_name (const notify_template_t *t) { return t->name; }
const char *notify_templates_path (const notify_templates_t *t) { return t->path; }

static const char *
s_render (pm_arena_t *a, const s_text_t *x, const notify_vals_t *vals)
{
    size_t len = 1;
    for (size_t i = 0; i < x->n; i++) {
        const char *v = x->parts[i].var >= 0 ? vals->v[x->parts[i].var] : x->parts[i].lit;
        len += v ? strlen (v) : 0;
    }
    char *s = pm_arena_alloc (a, len), *w = s;
    for (size_t i = 0; i < x->n; i++) {
        const char *v = x->parts[i].var >= 0 ? vals->v[x->parts[i].var] : x->parts[i].lit;
        size_t n = v ? strlen (v) : 0;
        memcpy (w, v, n);
        w += n;
    }
    *w = '\0';
    return s;
}

void
notify_render (pm_arena_t *a, const notify_template_t *t, const notify_vals_t *vals, const char **subject,
               const char **body)
{
    *subject = t->subject.set ? s_render (a, &t->subject, vals) : NULL;
    *body = s_render (a, &t->body, vals);
}
