/* config.c - INI configuration: libinih parses, this file keeps every
 * (section, key, value, line) in file order and answers lookups with the
 * environment override and ${home} applied. */
#define _GNU_SOURCE
#include "pm/config.h"
#include "pm/mem.h"

#include "pm/err.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const char pm_default_conf[];

#define S_EMBEDDED_NAME "<embedded pm.conf>"
#define S_HOME_REF "${home}"

typedef struct {
    char *section;
    char *key;
    char *value;
    int line;
} s_entry_t;

/* Strings handed out by pm_config_get / pm_config_home that are not file
 * values (expanded or from the environment), kept until destroy. */
typedef struct {
    char **v;
    size_t n, cap;
} s_cache_t;

struct pm_config {
    char *name;
    s_entry_t *e;
    size_t n, cap;
    const char **daemons;
    size_t ndaemons;
    s_cache_t *cache;
};

/* Where a looked-up value came from. */
typedef struct {
    const char *raw;    /* before ${home} expansion */
    const s_entry_t *entry;  /* NULL when from the environment */
    char env[160];      /* PM_<SECTION>_<KEY> */
} s_source_t;

/* Parser state shared by the line reader and the inih handler. */
typedef struct {
    pm_config_t *c;
    const char *p;      /* next unread character */
    int line;           /* number of the line last handed to inih */
    bool indented;      /* that line starts with blank space */
    char *err;          /* first error, malloc'd */
    int err_line;
    size_t last;        /* 1 + index of the previous key (0: none), for continuation lines */
} s_parse_t;


static void
s_set_err (char **err, char *msg)
{
    if (err)
        *err = msg;
    else
        free (msg);
}

/* fgets-style reader over a string that tracks line numbers and refuses
 * lines longer than inih's buffer (which it would split silently). */
static char *
s_reader (char *str, int num, void *stream)
{
    s_parse_t *st = stream;
    if (!*st->p || st->err)
        return NULL;
    const char *nl = strchr (st->p, '\n');
    size_t len = nl ? (size_t) (nl - st->p) + 1 : strlen (st->p);
    size_t content = len;
    if (content && st->p[content - 1] == '\n')
        content--;
    if (content && st->p[content - 1] == '\r')
        content--;
    st->line++;
    if (num < 4 || content > (size_t) num - 3) {
        st->err = pm_xasprintf ("%s:%d: line longer than %d characters", st->c->name, st->line,
                             num - 3);
        st->err_line = st->line;
        return NULL;
    }
    memcpy (str, st->p, len);
    str[len] = '\0';
    st->indented = (str[0] == ' ' || str[0] == '\t');
    st->p += len;
    return str;
}

static const s_entry_t *
s_find (const pm_config_t *c, const char *section, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp (c->e[i].section, section) == 0 && strcmp (c->e[i].key, key) == 0)
            return &c->e[i];
    return NULL;
}

static int
s_handler (void *user, const char *section, const char *name, const char *value)
{
    s_parse_t *st = user;
    pm_config_t *c = st->c;
    if (st->err)
        return 0;
    const char *why = NULL;
    if (!*section)
        st->err = pm_xasprintf ("%s:%d: %s: key outside any [section]", c->name, st->line, name);
    else if (st->indented && st->last && strcmp (c->e[st->last - 1].section, section) == 0
             && strcmp (c->e[st->last - 1].key, name) == 0)
        why = "indented line continues the value (continuation lines are not supported)";
    else if (s_find (c, section, name))
        why = "duplicate key";
    if (why)
        st->err = pm_xasprintf ("%s:%d: [%s] %s: %s", c->name, st->line, section, name, why);
    if (st->err) {
        st->err_line = st->line;
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        c->e = pm_xrealloc (c->e, c->cap * sizeof *c->e);
    }
    s_entry_t *e = &c->e[c->n++];
    e->section = pm_xstrdup (section);
    e->key = pm_xstrdup (name);
    e->value = pm_xstrdup (value ? value : "");
    e->line = st->line;
    st->last = c->n;
    return 1;
}

pm_config_t *
pm_config_load_string (const char *text, const char *name, char **err)
{
    if (err)
        *err = NULL;
    pm_config_t *c = pm_xcalloc (1, sizeof *c);
    c->name = pm_xstrdup (name ? name : "<string>");
    c->cache = pm_xcalloc (1, sizeof *c->cache);
    s_parse_t st = { .c = c, .p = text ? text : "" };
    int rc = ini_parse_stream (s_reader, &st, s_handler, &st);
    if (rc < 0 && !st.err)
        st.err = pm_xasprintf ("%s: cannot parse: %s", c->name,
                            rc == -2 ? "out of memory" : "read error");
    else if (rc > 0 && (!st.err || rc < st.err_line)) {
        free (st.err);
        st.err = pm_xasprintf ("%s:%d: syntax error: expected [section] or key = value", c->name, rc);
    }
    if (st.err) {
        s_set_err (err, st.err);
        pm_config_destroy (&c);
        return NULL;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp (c->e[i].key, "command") != 0)
            continue;
        c->daemons = pm_xrealloc (c->daemons, (c->ndaemons + 2) * sizeof *c->daemons);
        c->daemons[c->ndaemons++] = c->e[i].section;
        c->daemons[c->ndaemons] = NULL;
    }
    return c;
}

/* Reads the whole file so the parse (and its messages) match the string case. */
pm_config_t *
pm_config_load (const char *path, char **err)
{
    if (err)
        *err = NULL;
    if (!path)
        return pm_config_load_string (pm_default_conf, S_EMBEDDED_NAME, err);
    FILE *f = fopen (path, "rb");
    if (!f) {
        s_set_err (err, pm_xasprintf ("%s: cannot open: %s", path, strerror (errno)));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            text = pm_xrealloc (text, cap);
        }
        size_t n = fread (text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    bool bad = ferror (f);
    int saved = errno;
    fclose (f);
    if (bad) {
        free (text);
        s_set_err (err, pm_xasprintf ("%s: cannot read: %s", path, strerror (saved)));
        return NULL;
    }
    text[len] = '\0';
    if (memchr (text, '\0', len)) {
        free (text);
        s_set_err (err, pm_xasprintf ("%s: not a text file (contains NUL bytes)", path));
        return NULL;
    }
    pm_config_t *c = pm_config_load_string (text, path, err);
    free (text);
    return c;
}

void
pm_config_destroy (pm_config_t **p)
{
    if (!p || !*p)
        return;
    pm_config_t *c = *p;
    for (size_t i = 0; i < c->n; i++) {
        free (c->e[i].section);
        free (c->e[i].key);
        free (c->e[i].value);
    }
    free (c->e);
    free (c->daemons);
    if (c->cache) {
        for (size_t i = 0; i < c->cache->n; i++)
            free (c->cache->v[i]);
        free (c->cache->v);
        free (c->cache);
    }
    free (c->name);
    free (c);
    *p = NULL;
}

/* Returns a cached copy of s (taking ownership of s), shared with equal
 * strings handed out before, so repeated lookups do not grow the cache. */
static const char *
s_intern (const pm_config_t *c, char *s)
{
    s_cache_t *k = c->cache;
    for (size_t i = 0; i < k->n; i++)
        if (strcmp (k->v[i], s) == 0) {
            free (s);
            return k->v[i];
        }
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->v = pm_xrealloc (k->v, k->cap * sizeof *k->v);
    }
    k->v[k->n++] = s;
    return s;
}

/* The variable is set only when non-empty. */
static const char *
s_getenv (const char *name)
{
    const char *v = getenv (name);
    return v && *v ? v : NULL;
}

const char *
pm_config_home (const pm_config_t *c)
{
    const char *h = s_getenv ("PM_HOME");
    if (!h)
        return "var";
    return c ? s_intern (c, pm_xstrdup (h)) : h;
}

/* Finds the raw value of section/key: the environment first, then the file.
 * An empty environment variable counts as unset. */
static bool
s_lookup (const pm_config_t *c, const char *section, const char *key, s_source_t *src)
{
    size_t n = (size_t) snprintf (src->env, sizeof src->env, "PM_%s_%s", section, key);
    if (n >= sizeof src->env)
        src->env[0] = '\0';
    for (char *q = src->env; *q; q++)
        *q = isalnum ((unsigned char) *q) ? (char) toupper ((unsigned char) *q) : '_';
    src->entry = NULL;
    src->raw = src->env[0] ? s_getenv (src->env) : NULL;
    if (src->raw)
        return true;
    src->entry = s_find (c, section, key);
    src->raw = src->entry ? src->entry->value : NULL;
    return src->raw != NULL;
}

/* The value of src with every ${home} replaced, cached unless it is the
 * file's own unexpanded string. */
static const char *
s_expand (const pm_config_t *c, const s_source_t *src)
{
    const char *raw = src->raw;
    if (src->entry && !strstr (raw, S_HOME_REF))
        return raw;
    const char *home = pm_config_home (c);
    size_t hlen = strlen (home), rlen = strlen (S_HOME_REF);
    size_t count = 0;
    for (const char *q = strstr (raw, S_HOME_REF); q; q = strstr (q + rlen, S_HOME_REF))
        count++;
    size_t len = strlen (raw) + count * hlen + 1;
    char *out = pm_xrealloc (NULL, len);
    char *w = out;
    const char *q;
    while ((q = strstr (raw, S_HOME_REF))) {
        memcpy (w, raw, (size_t) (q - raw));
        w += q - raw;
        memcpy (w, home, hlen);
        w += hlen;
        raw = q + rlen;
    }
    strcpy (w, raw);
    return s_intern (c, out);
}

const char *
pm_config_get (const pm_config_t *c, const char *section, const char *key, const char *def)
{
    s_source_t src;
    if (!c || !section || !key || !s_lookup (c, section, key, &src))
        return def;
    return s_expand (c, &src);
}

static char *
s_value_error (const pm_config_t *c, const char *section, const char *key, const s_source_t *src,
               const char *value, const char *why)
{
    if (!src->entry)
        return pm_xasprintf ("environment %s = '%s': %s", src->env, value, why);
    return pm_xasprintf ("%s:%d: [%s] %s = '%s': %s", c->name, src->entry->line, section, key, value,
                      why);
}

char *
pm_config_error (const pm_config_t *c, const char *section, const char *key, const char *why)
{
    s_source_t src;
    if (!s_lookup (c, section, key, &src))
        return pm_xasprintf ("%s: [%s] %s: %s", c->name, section, key, why);
    return s_value_error (c, section, key, &src, s_expand (c, &src), why);
}

int
pm_config_int (const pm_config_t *c, const char *section, const char *key, int64_t def,
               int64_t *out, char **err)
{
    if (err)
        *err = NULL;
    s_source_t src;
    if (!c || !section || !key || !s_lookup (c, section, key, &src)) {
        if (out)
            *out = def;
        return PM_OK;
    }
    const char *v = s_expand (c, &src);
    const char *p = v;
    if (*p == '+' || *p == '-')
        p++;
    bool digits = *p != '\0';
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            digits = false;
    if (!digits) {
        s_set_err (err, s_value_error (c, section, key, &src, v, "expected a whole number"));
        return PM_ECONFIG;
    }
    errno = 0;
    long long n = strtoll (v, NULL, 10);
    if (errno == ERANGE) {
        s_set_err (err, s_value_error (c, section, key, &src, v, "whole number out of range"));
        return PM_ECONFIG;
    }
    if (out)
        *out = (int64_t) n;
    return PM_OK;
}

/* Accepts true/false, yes/no, on/off, 1/0 in any case. */
int
pm_config_bool (const pm_config_t *c, const char *section, const char *key, bool def,
                bool *out, char **err)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    if (err)
        *err = NULL;
    s_source_t src;
    if (!c || !section || !key || !s_lookup (c, section, key, &src)) {
        if (out)
            *out = def;
        return PM_OK;
    }
    const char *v = s_expand (c, &src);
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp (v, yes[i]) == 0) {
            if (out)
                *out = true;
            return PM_OK;
        }
        if (strcasecmp (v, no[i]) == 0) {
            if (out)
                *out = false;
            return PM_OK;
        }
    }
    s_set_err (err, s_value_error (c, section, key, &src, v,
                                   "expected true or false (or yes/no, on/off, 1/0)"));
    return PM_ECONFIG;
}

const char *const *
pm_config_daemons (const pm_config_t *c, size_t *n)
{
    static const char *const none[] = { NULL };
    if (n)
        *n = c ? c->ndaemons : 0;
    if (!c || !c->daemons)
        return none;
    return c->daemons;
}

const char *
pm_config_name (const pm_config_t *c)
{
    return c ? c->name : "";
}
