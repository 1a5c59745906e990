/* clock.c - wall or manual time, monotonic time, durations and RFC 3339. */
#define _GNU_SOURCE
#include "pm/clock.h"
#include "pm/mem.h"

#include "pm/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pm_clock {
    bool manual_allowed;
    bool manual;
    int64_t manual_ms;
};

static int64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pm_clock_t *
pm_clock_new (bool manual_allowed)
{
    pm_clock_t *c = pm_xcalloc (1, sizeof *c);
    c->manual_allowed = manual_allowed;
    return c;
}

void
pm_clock_destroy (pm_clock_t **p)
{
    if (!p || !*p)
        return;
    free (*p);
    *p = NULL;
}

int64_t
pm_clock_now_ms (const pm_clock_t *c)
{
    if (c && c->manual)
        return c->manual_ms;
    return s_wall_ms ();
}

bool
pm_clock_is_manual (const pm_clock_t *c)
{
    return c && c->manual;
}

bool
pm_clock_manual_allowed (const pm_clock_t *c)
{
    return c && c->manual_allowed;
}

/* Setting may move the clock backwards; negative times are refused. */
int
pm_clock_set_ms (pm_clock_t *c, int64_t now_ms)
{
    if (!c || !c->manual_allowed || now_ms < 0)
        return PM_EINVAL;
    c->manual = true;
    c->manual_ms = now_ms;
    return PM_OK;
}

/* A wall clock first freezes at the current wall time, then moves. */
int
pm_clock_advance_ms (pm_clock_t *c, int64_t delta_ms)
{
    if (!c || !c->manual_allowed || delta_ms < 0)
        return PM_EINVAL;
    int64_t base = c->manual ? c->manual_ms : s_wall_ms ();
    if (base > INT64_MAX - delta_ms)
        return PM_EINVAL;
    c->manual = true;
    c->manual_ms = base + delta_ms;
    return PM_OK;
}

int64_t
pm_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
pm_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Units may repeat ("1h30m15s"); no sign, spaces or bare numbers. */
int
pm_duration_parse (const char *s, int64_t *ms)
{
    if (!s || !*s || !ms)
        return PM_EINVAL;
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (*p < '0' || *p > '9')
            return PM_EINVAL;
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            int d = *p++ - '0';
            if (n > (INT64_MAX - d) / 10)
                return PM_EINVAL;
            n = n * 10 + d;
        }
        int64_t unit;
        if (p[0] == 'm' && p[1] == 's') {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            unit = 3600 * 1000;
            p++;
        } else if (*p == 'd') {
            unit = 86400 * 1000;
            p++;
        } else {
            return PM_EINVAL;
        }
        if (n > INT64_MAX / unit)
            return PM_EINVAL;
        n *= unit;
        if (total > INT64_MAX - n)
            return PM_EINVAL;
        total += n;
    }
    *ms = total;
    return PM_OK;
}

/* Reads exactly n digits at *p into *out and moves *p past them. */
static bool
s_digits (const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool
s_expect (const char **p, char a, char b)
{
    if (**p != a && **p != b)
        return false;
    (*p)++;
    return true;
}

static int
s_days_in_month (int year, int month)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* Fractions may have 1 to 9 digits; digits past milliseconds are dropped.
 * Leap seconds (":60") and offsets other than Z are refused. */
int
pm_time_parse (const char *s, int64_t *ms)
{
    if (!s || !ms)
        return PM_EINVAL;
    const char *p = s;
    int year, mon, day, hour, min, sec, frac = 0;
    if (!s_digits (&p, 4, &year) || !s_expect (&p, '-', '-') || !s_digits (&p, 2, &mon)
        || !s_expect (&p, '-', '-') || !s_digits (&p, 2, &day) || !s_expect (&p, 'T', 't')
        || !s_digits (&p, 2, &hour) || !s_expect (&p, ':', ':') || !s_digits (&p, 2, &min)
        || !s_expect (&p, ':', ':') || !s_digits (&p, 2, &sec))
        return PM_EINVAL;
    if (*p == '.') {
        p++;
        int ndig = 0;
        while (*p >= '0' && *p <= '9') {
            if (ndig < 3)
                frac = frac * 10 + (*p - '0');
            ndig++;
            p++;
        }
        if (ndig == 0 || ndig > 9)
            return PM_EINVAL;
        for (int i = ndig; i < 3; i++)
            frac *= 10;
    }
    if (!s_expect (&p, 'Z', 'z') || *p != '\0')
        return PM_EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > s_days_in_month (year, mon) || hour > 23
        || min > 59 || sec > 59)
        return PM_EINVAL;
    struct tm tm = {
        .tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day,
        .tm_hour = hour, .tm_min = min, .tm_sec = sec,
    };
    time_t t = timegm (&tm);
    *ms = (int64_t) t * 1000 + frac;
    return PM_OK;
}

const char *
pm_time_format (int64_t ms, char *buf, size_t size)
{
    if (!buf || size == 0)
        return "";
    int64_t sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        sec -= 1;
    }
    time_t t = (time_t) sec;
    struct tm tm;
    if (!gmtime_r (&t, &tm)) {
        snprintf (buf, size, "invalid-time");
        return buf;
    }
    snprintf (buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
              tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) rem);
    return buf;
}
