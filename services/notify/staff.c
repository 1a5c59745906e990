/* staff.c - the staff directory: who the technicians, team leads and estate
 * managers named in work orders and SLA alerts are, and how to reach them.
 * deploy/notify/staff.conf, one person a line, checked at start:
 *
 *   # NAME   ROLE        ESTATE  TEAM    PHONE        EMAIL
 *   王建国   technician  E01     水电组  13900001001  wang.jg@example.com
 *   李明     team_lead   E01     水电组  13900001002  -
 *
 * A work order names its technician (and team); an SLA alert names the team
 * lead; a defect overdue goes to the estate's manager. */
#define _GNU_SOURCE
#include "notify.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct notify_directory {
    notify_staff_t *s;
    size_t n;
};

void
notify_staff_destroy (notify_directory_t **p)
{
    if (!p || !*p)
        return;
    notify_directory_t *d = *p;
    for (size_t i = 0; i < d->n; i++) {
        free (d->s[i].name);
        free (d->s[i].role);
        free (d->s[i].estate);
        free (d->s[i].team);
        free (d->s[i].phone);
        free (d->s[i].email);
    }
    free (d->s);
    free (d);
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
        pm_oom ("staff error", 0);
    va_end (ap);
    char *s = pm_xasprintf ("%s:%d: %s", path, line, msg);
    free (msg);
    return s;
}

static bool
s_phone_ok (const char *p)
{
    size_t n = strlen (p);
    if (p[0] == '+') {
        if (n < 8 || n > 16)
            return false;
        for (size_t i = 1; i < n; i++)
            if (!isdigit ((unsigned char) p[i]))
                return false;
        return true;
    }
    if (n != 11 || p[0] != '1' || p[1] < '3' || p[1] > '9')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit ((unsigned char) p[i]))
            return false;
    return true;
}

static char *
s_field (const char *t)
{
    return pm_xstrdup (strcmp (t, "-") == 0 ? "" : t);
}

notify_directory_t *
notify_staff_load (const char *path, const char *text, char **err)
{
    notify_directory_t *d = pm_xcalloc (1, sizeof *d);
    size_t cap = 0;
    char *copy = pm_xstrdup (text), *e = NULL;
    int line = 0;
    for (char *p = copy; p && !e;) {
        char *nl = strchr (p, '\n');
        if (nl)
            *nl = '\0';
        char *s = p;
        p = nl ? nl + 1 : NULL;
        line++;
        if (!pm_utf8_valid_str (s)) {
            e = s_err (path, line, "not UTF-8 (save the file as UTF-8)");
            break;
        }
        char *hash = strchr (s, '#');
        if (hash)
            *hash = '\0';
        char *tok[8], *save = NULL;
        int ntok = 0;
        for (char *t = strtok_r (s, " \t\r", &save); t; t = strtok_r (NULL, " \t\r", &save))
            if (ntok < 8)
                tok[ntok++] = t;
            else
                ntok++;
        if (!ntok)
            continue;
        if (ntok != 6) {
            e = s_err (path, line, "expected NAME ROLE ESTATE TEAM PHONE EMAIL ('-' for none), got %d fields", ntok);
            break;
        }
        int role = -1;
        for (int i = NOTIFY_TO_TECHNICIAN; i < NOTIFY_NTO; i++)
            if (strcmp (tok[1], notify_to_names[i]) == 0)
                role = i;
        if (role < 0) {
            e = s_err (path, line, "%s: unknown role '%s'; expected technician, team_lead or manager", tok[0], tok[1]);
            break;
        }
        if (strcmp (tok[4], "-") != 0 && !s_phone_ok (tok[4])) {
            e = s_err (path, line, "%s: phone '%s' is not a mobile number (13812345678 or +85291234567)", tok[0], tok[4]);
            break;
        }
        if (strcmp (tok[5], "-") != 0 && (!strchr (tok[5], '@') || strchr (tok[5], '@') == tok[5])) {
            e = s_err (path, line, "%s: email '%s' is not an address", tok[0], tok[5]);
            break;
        }
        if (strcmp (tok[4], "-") == 0 && strcmp (tok[5], "-") == 0) {
            e = s_err (path, line, "%s: neither a phone nor an email: notify could never reach them", tok[0]);
            break;
        }
        for (size_t i = 0; i < d->n && !e; i++)
            if (strcmp (d->s[i].name, tok[0]) == 0 && strcmp (d->s[i].role, tok[1]) == 0
                && strcmp (d->s[i].estate, strcmp (tok[2], "-") == 0 ? "" : tok[2]) == 0)
                e = s_err (path, line, "%s (%s, %s) is listed twice (first on line %d)", tok[0], tok[1], tok[2],
                           d->s[i].line);
        if (e)
            break;
        if (d->n == cap) {
            cap = cap ? 2 * cap : 16;
            d->s = pm_xrealloc (d->s, cap * sizeof *d->s);
        }
        notify_staff_t *st = &d->s[d->n++];
        st->name = s_field (tok[0]);
        st->role = s_field (tok[1]);
        st->estate = s_field (tok[2]);
        st->team = s_field (tok[3]);
        st->phone = s_field (tok[4]);
        st->email = s_field (tok[5]);
        st->line = line;
    }
    free (copy);
    if (e) {
        *err = e;
        notify_staff_destroy (&d);
        return NULL;
    }
    return d;
}

const notify_staff_t *
notify_staff_find (const notify_directory_t *dir, int to, const char *name, const char *estate, const char *team)
{
    const char *role = notify_to_names[to];
    const notify_staff_t *fallback = NULL;
    for (size_t i = 0; i < dir->n; i++) {
        const notify_staff_t *s = &dir->s[i];
        if (strcmp (s->role, role) != 0)
            continue;
        bool estate_ok = !*s->estate || !estate || !*estate || strcmp (s->estate, estate) == 0;
        if (name && *name) {
            if (strcmp (s->name, name) != 0)
                continue;
            if (estate_ok && estate && *estate && strcmp (s->estate, estate) == 0)
                return s; /* the same name in this estate first */
            if (!fallback)
                fallback = s;
            continue;
        }
        if (!estate_ok)
            continue;
        if (to == NOTIFY_TO_TEAM_LEAD && team && *team && strcmp (s->team, team) != 0)
            continue;
        return s;
    }
    return fallback;
}

size_t
notify_staff_count (const notify_directory_t *dir)
{
    return dir->n;
}
