/* app.c - billing's configuration ([billing] in pm.conf), read once at start:
 *
 *   schedule         = deploy/billing/schedules.conf  the fee schedule file ("" = none)
 *   utc_offset       = +08:00      the estates' time zone (Asia/Shanghai, no DST)
 *   move_in_due_days = 15          a move-in invoice is due this many days after check-in
 *   monthly_due_day  = 15          a monthly invoice is due on this day of its month
 *   run_chunk        = 2000        units billed per step of a monthly run
 *   dunning          = T-7:message, T+3:call, T+7:visit, T+15:letter, T+30:escalation
 *
 * A wrong value stops the start with the file, line and key. */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LADDER_DEFAULT "T-7:message, T+3:call, T+7:visit, T+15:letter, T+30:escalation"

static const char *const s_actions[BILLING_NACTS] = { "message", "call", "visit", "letter", "escalation" };

const char *
billing_action_name (int action)
{
    return action >= 0 && action < BILLING_NACTS ? s_actions[action] : "?";
}

int
billing_action_table (int action)
{
    switch (action) {
    case BILLING_ACT_CALL:
        return BILLING_CALLS;
    case BILLING_ACT_VISIT:
        return BILLING_VISITS;
    case BILLING_ACT_LETTER:
        return BILLING_LETTERS;
    case BILLING_ACT_ESCALATION:
        return BILLING_ESCALATIONS;
    default:
        return -1;
    }
}

bool
billing_ladder_parse (const char *s, billing_step_t *steps, uint32_t *n, char *why, size_t size)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        while (isspace ((unsigned char) *p) || *p == ',')
            p++;
        if (!*p)
            break;
        const char *start = p;
        if (*p != 'T' || (p[1] != '+' && p[1] != '-') || !isdigit ((unsigned char) p[2])) {
            snprintf (why, size, "'%.20s': a step is T-DAYS:ACTION or T+DAYS:ACTION, e.g. T+3:call", start);
            return false;
        }
        int sign = p[1] == '-' ? -1 : 1;
        p += 2;
        long days = 0;
        while (isdigit ((unsigned char) *p) && days <= 1000)
            days = days * 10 + (*p++ - '0');
        if (days > 365) {
            snprintf (why, size, "'%.20s': more than 365 days from the due date", start);
            return false;
        }
        if (*p++ != ':') {
            snprintf (why, size, "'%.20s': a step is T-DAYS:ACTION or T+DAYS:ACTION, e.g. T+3:call", start);
            return false;
        }
        const char *a = p;
        while (*p && *p != ',' && !isspace ((unsigned char) *p))
            p++;
        int action = -1;
        for (int i = 0; i < BILLING_NACTS; i++)
            if (strlen (s_actions[i]) == (size_t) (p - a) && strncmp (a, s_actions[i], (size_t) (p - a)) == 0)
                action = i;
        if (action < 0) {
            snprintf (why, size, "'%.*s': unknown action (message, call, visit, letter, escalation)", (int) (p - a), a);
            return false;
        }
        if (*n == BILLING_MAX_STEPS) {
            snprintf (why, size, "more than %d steps", BILLING_MAX_STEPS);
            return false;
        }
        billing_step_t *st = &steps[(*n)++];
        st->days = (int32_t) (sign * days);
        st->action = action;
        snprintf (st->label, sizeof st->label, "T%c%d", sign < 0 ? '-' : '+', (int) (days % 1000));
        if (*n > 1 && st->days <= steps[*n - 2].days) {
            snprintf (why, size, "%s comes after %s: steps go in time order", st->label, steps[*n - 2].label);
            return false;
        }
    }
    if (*n == 0) {
        snprintf (why, size, "no steps (the default is %s)", S_LADDER_DEFAULT);
        return false;
    }
    return true;
}

/* "+08:00", "+8", "-05:30" -> ms. */
static bool
s_offset (const char *s, int64_t *ms)
{
    int sign = 1, h = 0, m = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!isdigit ((unsigned char) *s))
        return false;
    while (isdigit ((unsigned char) *s))
        h = h * 10 + (*s++ - '0');
    if (*s == ':') {
        s++;
        if (!isdigit ((unsigned char) s[0]) || !isdigit ((unsigned char) s[1]))
            return false;
        m = (s[0] - '0') * 10 + (s[1] - '0');
        s += 2;
    }
    if (*s || h > 14 || m > 59)
        return false;
    *ms = sign * ((int64_t) h * 3600 + m * 60) * 1000;
    return true;
}

static bool
s_int (const pm_config_t *cfg, const char *key, int64_t def, int64_t min, int64_t max, int32_t *out)
{
    int64_t v;
    char *err = NULL;
    if (pm_config_int (cfg, "billing", key, def, &v, &err) != PM_OK) {
        pm_error ("%s", err);
        free (err);
        return false;
    }
    if (v < min || v > max) {
        char why[96];
        snprintf (why, sizeof why, "expected a whole number from %lld to %lld", (long long) min, (long long) max);
        err = pm_config_error (cfg, "billing", key, why);
        pm_error ("%s", err);
        free (err);
        return false;
    }
    *out = (int32_t) v;
    return true;
}

void *
billing_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    billing_t *b = pm_xcalloc (1, sizeof *b);
    char why[160];
    const char *off = pm_config_get (cfg, "billing", "utc_offset", "+08:00");
    if (!s_offset (off, &b->utc_offset_ms)) {
        char *err = pm_config_error (cfg, "billing", "utc_offset", "expected an offset from UTC such as +08:00");
        pm_error ("%s", err);
        free (err);
        goto fail;
    }
    if (!s_int (cfg, "move_in_due_days", 15, 0, 365, &b->move_in_due_days)
        || !s_int (cfg, "monthly_due_day", 15, 1, 28, &b->monthly_due_day)
        || !s_int (cfg, "run_chunk", 2000, 1, 100000, &b->run_chunk))
        goto fail;
    const char *ladder = pm_config_get (cfg, "billing", "dunning", S_LADDER_DEFAULT);
    if (!billing_ladder_parse (ladder, b->steps, &b->nsteps, why, sizeof why)) {
        char *err = pm_config_error (cfg, "billing", "dunning", why);
        pm_error ("%s", err);
        free (err);
        goto fail;
    }
    const char *path = pm_config_get (cfg, "billing", "schedule", "");
    if (path && *path) {
        b->schedule_path = billing_schedule_path (cfg, path);
        bool changed;
        if (billing_schedule_file_load (d, b, b->schedule_path, &changed) != PM_OK)
            goto fail;
    }
    return b;
fail:
    billing_app_destroy (b);
    return NULL;
}

void
billing_app_destroy (void *app)
{
    billing_t *b = app;
    if (!b)
        return;
    free (b->schedule_path);
    free (b);
}
