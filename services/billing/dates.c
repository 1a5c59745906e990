/* dates.c - the estate's calendar: dates, months (periods) and local times at
 * a fixed UTC offset (Asia/Shanghai has no daylight saving). Civil-date
 * arithmetic after Howard Hinnant's days_from_civil / civil_from_days. */
#include "billing.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int64_t
billing_days_from_civil (int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
billing_civil_from_days (int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (*m <= 2));
}

int
billing_days_in_month (int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[(m - 1) % 12];
}

/* n digits at *p into *v; advances *p. */
static bool
s_num (const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit ((unsigned char) (*p)[i]))
            return false;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return true;
}

static bool
s_valid (int y, int m, int d)
{
    return y >= 1970 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= billing_days_in_month (y, m);
}

/* The date at *p (2026-12-05, 2026/12/05, 20261205); advances *p. */
static bool
s_date (const char **p, int *y, int *m, int *d)
{
    const char *s = *p;
    if (!s_num (&s, 4, y))
        return false;
    if (*s == '-' || *s == '/') {
        char sep = *s++;
        if (!s_num (&s, 2, m) || *s++ != sep || !s_num (&s, 2, d))
            return false;
    }
    else if (!s_num (&s, 2, m) || !s_num (&s, 2, d))
        return false;
    *p = s;
    return s_valid (*y, *m, *d);
}

bool
billing_date_parse (const char *s, int *y, int *m, int *d)
{
    if (!s || !s_date (&s, y, m, d))
        return false;
    return *s == '\0';
}

bool
billing_period_parse (const char *s, int *y, int *m)
{
    if (!s || !s_num (&s, 4, y))
        return false;
    if (*s == '-' || *s == '/')
        s++;
    if (!s_num (&s, 2, m) || *s)
        return false;
    return s_valid (*y, *m, 1);
}

int64_t
billing_local_ms (const billing_t *b, int y, int m, int d)
{
    return billing_days_from_civil (y, m, d) * BILLING_DAY_MS - b->utc_offset_ms;
}

void
billing_local_date (const billing_t *b, int64_t ms, int *y, int *m, int *d)
{
    int64_t local = ms + b->utc_offset_ms;
    int64_t days = local >= 0 ? local / BILLING_DAY_MS : -((-local + BILLING_DAY_MS - 1) / BILLING_DAY_MS);
    billing_civil_from_days (days, y, m, d);
}

const char *
billing_period_fmt (int index, char *buf, size_t size)
{
    snprintf (buf, size, "%04d-%02d", index / 12, index % 12 + 1);
    return buf;
}

char *
billing_period_of (pm_arena_t *a, const billing_t *b, int64_t ms)
{
    int y, m, d;
    billing_local_date (b, ms, &y, &m, &d);
    return pm_arena_printf (a, "%04d-%02d", y, m);
}

char *
billing_date_of (pm_arena_t *a, const billing_t *b, int64_t ms)
{
    int y, m, d;
    billing_local_date (b, ms, &y, &m, &d);
    return pm_arena_printf (a, "%04d-%02d-%02d", y, m, d);
}

bool
billing_time_parse (const billing_t *b, const char *s, int64_t *ms)
{
    int y, m, d, hh = 0, mi = 0, ss = 0;
    if (!s)
        return false;
    while (isspace ((unsigned char) *s))
        s++;
    const char *p = s;
    if (!s_date (&p, &y, &m, &d))
        return false;
    int64_t offset = b->utc_offset_ms;
    if (*p == 'T' || *p == ' ' || isdigit ((unsigned char) *p)) {
        bool compact = isdigit ((unsigned char) *p);
        if (!compact)
            p++;
        if (!s_num (&p, 2, &hh))
            return false;
        if (!compact && *p++ != ':')
            return false;
        if (!s_num (&p, 2, &mi))
            return false;
        if ((compact && isdigit ((unsigned char) *p)) || (!compact && *p == ':')) {
            if (!compact)
                p++;
            if (!s_num (&p, 2, &ss))
                return false;
        }
        if (*p == '.') /* fractions of a second are dropped */
            for (p++; isdigit ((unsigned char) *p); p++)
                ;
        if (*p == 'Z') {
            offset = 0;
            p++;
        }
        else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!s_num (&p, 2, &oh))
                return false;
            if (*p == ':')
                p++;
            if (*p && !s_num (&p, 2, &om))
                return false;
            offset = sign * ((int64_t) oh * 3600 + om * 60) * 1000;
        }
    }
    while (isspace ((unsigned char) *p))
        p++;
    if (*p || hh > 23 || mi > 59 || ss > 60)
        return false;
    *ms = billing_days_from_civil (y, m, d) * BILLING_DAY_MS + ((int64_t) hh * 3600 + mi * 60 + ss) * 1000 - offset;
    return true;
}
