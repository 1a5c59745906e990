/* rules.c - which events become which messages, to whom, on which channels:
 * deploy/notify/rules.conf, one rule a line, checked whole at start against
 * the event contract (vars.c) and the templates:
 *
 *   # EVENT                     TEMPLATE              TO      CHANNELS    OPTIONS
 *   intake.appointment.booked   appointment_reminder  owners  sms         at=slot_start-1d
 *   billing.dunning.step        dunning_reminder      owners  sms,email?  unless_settled if=action=message
 *
 * An unknown event type, channel, recipient or option, a template that is
 * missing or uses a variable the event does not give, is an error naming the
 * file and the line (and the template's line). */
#define _GNU_SOURCE
#include "notify.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_TOKENS 16

typedef struct {
    const notify_rule_t **rules;
    size_t n;
} s_index_t;

struct notify_rules {
    notify_rule_t *r;
    size_t n;
    s_index_t *by_kind; /* indexed like notify_event_kinds */
    size_t nkinds;
};

void
notify_rules_destroy (notify_rules_t **p)
{
    if (!p || !*p)
        return;
    notify_rules_t *r = *p;
    for (size_t i = 0; i < r->n; i++) {
        free (r->r[i].template_name);
        free (r->r[i].cond_value);
    }
    for (size_t i = 0; i < r->nkinds; i++)
        free (r->by_kind[i].rules);
    free (r->by_kind);
    free (r->r);
    free (r);
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
        pm_oom ("rule error", 0);
    va_end (ap);
    char *s = pm_xasprintf ("%s:%d: %s", path, line, msg);
    free (msg);
    return s;
}

/* "a, b, c" of the variables in mask (malloc'd). */
static char *
s_var_list (uint64_t mask)
{
    char *s = pm_xstrdup ("");
    for (int i = 0; i < NOTIFY_NVARS; i++)
        if (mask & NOTIFY_VAR (i)) {
            char *t = pm_xasprintf ("%s%s%s", s, *s ? ", " : "", notify_vars[i].name);
            free (s);
            s = t;
        }
    return s;
}

static char *
s_check_template (const char *path, int line, const notify_rule_t *r, const notify_templates_t *tpl, int ch)
{
    const notify_template_t *t = r->tpl[ch];
    uint64_t missing = notify_template_vars (t) & ~r->kind->vars;
    if (!missing)
        return NULL;
    char *uses = s_var_list (missing), *gives = s_var_list (r->kind->vars);
    char *e = s_err (path, line, "template %s.%s (%s:%d) uses {%s}, which %s does not give; it gives: %s", r->template_name,
                     notify_channels[ch], notify_templates_path (tpl), notify_template_line (t), uses, r->kind->type,
                     gives);
    free (uses);
    free (gives);
    return e;
}

/* at=TIME-DURATION or at=TIME+DURATION. */
static char *
s_option_at (const char *path, int line, notify_rule_t *r, const char *v)
{
    const char *sign = strpbrk (v, "+-");
    size_t nlen = sign ? (size_t) (sign - v) : strlen (v);
    r->at = -1;
    for (int i = 0; i < NOTIFY_NTIMES; i++)
        if (strlen (notify_time_names[i]) == nlen && memcmp (notify_time_names[i], v, nlen) == 0)
            r->at = i;
    if (r->at < 0 || !(r->kind->times & (1u << r->at))) {
        char given[96] = "";
        for (int i = 0; i < NOTIFY_NTIMES; i++)
            if (r->kind->times & (1u << i))
                snprintf (given + strlen (given), sizeof given - strlen (given), "%s%s", *given ? ", " : "",
                          notify_time_names[i]);
        return s_err (path, line, "at=%s: %s gives no time '%.*s'%s%s (e.g. at=slot_start-1d)", v, r->kind->type,
                      (int) nlen, v, *given ? "; it gives " : "; it gives none", given);
    }
    r->at_offset_ms = 0;
    if (sign) {
        int64_t ms;
        if (pm_duration_parse (sign + 1, &ms) != PM_OK)
            return s_err (path, line, "at=%s: '%s' is not a duration (e.g. 1d, 3h, 30m)", v, sign + 1);
        r->at_offset_ms = *sign == '-' ? -ms : ms;
    }
    return NULL;
}

/* if=VAR=VALUE or if=VAR!=VALUE. */
static char *
s_option_if (const char *path, int line, notify_rule_t *r, const char *v)
{
    const char *op = strstr (v, "!=");
    r->cond_neg = op != NULL;
    if (!op)
        op = strchr (v, '=');
    if (!op || op == v)
        return s_err (path, line, "if=%s: expected if=VARIABLE=VALUE or if=VARIABLE!=VALUE, e.g. if=action=message", v);
    r->cond_var = notify_var_find (v, (size_t) (op - v));
    if (r->cond_var < 0 || !(r->kind->vars & NOTIFY_VAR (r->cond_var))) {
        char *gives = s_var_list (r->kind->vars);
        char *e = s_err (path, line, "if=%s: %s gives no variable '%.*s'; it gives: %s", v, r->kind->type, (int) (op - v),
                         v, gives);
        free (gives);
        return e;
    }
    r->cond_value = pm_xstrdup (op + (r->cond_neg ? 2 : 1));
    return NULL;
}

static char *
s_rule (const char *path, int line, char **tok, int ntok, const notify_templates_t *tpl, notify_rule_t *r)
{
    memset (r, 0, sizeof *r);
    r->line = line;
    r->at = -1;
    r->cond_var = -1;
    if (ntok < 4)
        return s_err (path, line, "expected EVENT TEMPLATE TO CHANNELS [OPTIONS], e.g. "
                                  "'intake.notice.requested move_in_notice owners sms,email?'");
    r->kind = notify_event_kind (tok[0]);
    if (!r->kind)
        return s_err (path, line, "unknown event type '%s' (the contract's types are listed in README.md, "
                                  "e.g. intake.notice.requested, billing.dunning.step)",
                      tok[0]);
    r->template_name = pm_xstrdup (tok[1]);
    r->to = -1;
    for (int i = 0; i < NOTIFY_NTO; i++)
        if (strcmp (tok[2], notify_to_names[i]) == 0)
            r->to = i;
    if (r->to < 0)
        return s_err (path, line, "unknown recipient '%s'; expected owners, technician, team_lead or manager", tok[2]);
    char *chans = pm_xstrdup (tok[3]), *save = NULL;
    char *e = NULL;
    int nch = 0;
    for (char *c = strtok_r (chans, ",", &save); c && !e; c = strtok_r (NULL, ",", &save)) {
        size_t len = strlen (c);
        bool opt = len > 1 && c[len - 1] == '?';
        if (opt)
            c[len - 1] = '\0';
        int ch = notify_channel (c);
        if (ch < 0) {
            e = s_err (path, line, "unknown channel '%s'; channels are sms and email ('email?': only to those who have one)", c);
            break;
        }
        r->tpl[ch] = notify_template_find (tpl, r->template_name, ch);
        r->optional[ch] = opt;
        if (!r->tpl[ch])
            e = s_err (path, line, "template %s.%s is missing from %s (add a [%s.%s] section)", r->template_name, c,
                       notify_templates_path (tpl), r->template_name, c);
        else
            e = s_check_template (path, line, r, tpl, ch);
        nch++;
    }
    free (chans);
    if (e)
        return e;
    if (!nch)
        return s_err (path, line, "no channel; expected sms, email or both (sms,email)");
    for (int i = 4; i < ntok; i++) {
        if (strcmp (tok[i], "urgent") == 0)
            r->urgent = true;
        else if (strcmp (tok[i], "unless_settled") == 0) {
            if (!(r->kind->vars & NOTIFY_VAR (V_INVOICE_ID)))
                return s_err (path, line, "unless_settled: %s is not about an invoice (only billing's events are)",
                              r->kind->type);
            r->unless_settled = true;
        }
        else if (strncmp (tok[i], "at=", 3) == 0) {
            if ((e = s_option_at (path, line, r, tok[i] + 3)))
                return e;
        }
        else if (strncmp (tok[i], "if=", 3) == 0) {
            if ((e = s_option_if (path, line, r, tok[i] + 3)))
                return e;
        }
        else
            return s_err (path, line, "unknown option '%s'; options are urgent, unless_settled, at=TIME-DURATION "
                                      "and if=VARIABLE=VALUE",
                          tok[i]);
    }
    return NULL;
}

notify_rules_t *
notify_rules_load (const char *path, const char *text, const notify_templates_t *tpl, char **err)
{
    notify_rules_t *rs = pm_xcalloc (1, sizeof *rs);
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
        char *tok[S_MAX_TOKENS], *save = NULL;
        int ntok = 0;
        for (char *t = strtok_r (s, " \t\r", &save); t; t = strtok_r (NULL, " \t\r", &save))
            if (ntok < S_MAX_TOKENS)
                tok[ntok++] = t;
        if (!ntok)
            continue;
        if (rs->n == cap) {
            cap = cap ? 2 * cap : 32;
            rs->r = pm_xrealloc (rs->r, cap * sizeof *rs->r);
        }
        notify_rule_t *r = &rs->r[rs->n++];
        e = s_rule (path, line, tok, ntok, tpl, r);
        for (size_t i = 0; !e && i + 1 < rs->n; i++)
            if (rs->r[i].kind == r->kind && rs->r[i].to == r->to && strcmp (rs->r[i].template_name, r->template_name) == 0)
                e = s_err (path, line, "the same rule as line %d (%s %s %s)", rs->r[i].line, r->kind->type,
                           r->template_name, notify_to_names[r->to]);
    }
    free (copy);
    if (!e && !rs->n)
        e = s_err (path, 1, "no rules (expected lines like 'intake.notice.requested move_in_notice owners sms')");
    if (e) {
        *err = e;
        notify_rules_destroy (&rs);
        return NULL;
    }
    while (notify_event_kinds[rs->nkinds].type)
        rs->nkinds++;
    rs->by_kind = pm_xcalloc (rs->nkinds, sizeof *rs->by_kind);
    for (size_t i = 0; i < rs->n; i++) {
        s_index_t *x = &rs->by_kind[rs->r[i].kind - notify_event_kinds];
        x->rules = pm_xrealloc (x->rules, (x->n + 1) * sizeof *x->rules);
        x->rules[x->n++] = &rs->r[i];
    }
    return rs;
}

const notify_rule_t *const *
notify_rules_for (const notify_rules_t *r, const char *type, size_t *n)
{
    const notify_event_kind_t *k = notify_event_kind (type);
    if (!k) {
        *n = 0;
        return NULL;
    }
    const s_index_t *x = &r->by_kind[k - notify_event_kinds];
    *n = x->n;
    return x->rules;
}

size_t
notify_rules_count (const notify_rules_t *r)
{
    return r->n;
}
