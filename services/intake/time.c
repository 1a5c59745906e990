/* time.c - estate time and money as people read them.
 *
 * Estates keep China Standard Time (UTC+8, no daylight saving) unless
 * [intake] utc_offset_minutes says otherwise, so a fixed offset is the whole
 * time zone: no tz database, and the same input gives the same plan
 * anywhere. Dates are proleptic Gregorian (Howard Hinnant's days_from_civil). */
#include "intake.h"
#include "pm/err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define S_DAY_MS 86400000LL

static int64_t
s_days_from_civil (int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned) (y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

static void
s_civil_from_days (int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned) (z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int) ((int64_t) yoe + era * 400 + (*m <= 2));
}

static bool
s_leap (int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads up to max digits (at least 1); advances *p. */
static bool
s_num (const char **p, int max, int *out)
{
    int v = 0, n = 0;
    while (n < max && isdigit ((unsigned char) **p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n > 0;
}

/* "2026-12-05" (also 2026/12/5): the day number; *end after it. */
static bool
s_date (const char *s, int64_t *days, const char **end)
{
    const char *p = s;
    int y, m, d;
    if (!s_num (&p, 4, &y) || p - s != 4 || (*p != '-' && *p != '/'))
        return false;
    char sep = *p++;
    if (!s_num (&p, 2, &m) || *p++ != sep || !s_num (&p, 2, &d))
        return false;
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && s_leap (y)))
        return false;
    *days = s_days_from_civil (y, (unsigned) m, (unsigned) d);
    *end = p;
    return true;
}

int
intake_date_parse (const intake_t *in, const char *s, int64_t *ms)
{
    int64_t days;
    const char *end;
    if (!s || !s_date (s, &days, &end) || *end)
        return PM_EINVAL;
    *ms = days * S_DAY_MS - in->utc_offset_ms;
    return PM_OK;
}

char *
intake_date_normalise (pm_arena_t *a, const char *s)
{
    int64_t days;
    const char *end;
    if (!s || !s_date (s, &days, &end) || *end)
        return NULL;
    int y;
    unsigned m, d;
    s_civil_from_days (days, &y, &m, &d);
    return pm_arena_printf (a, "%04d-%02u-%02u", y, m, d);
}

int
intake_clock_parse (const char *s, int64_t *ms)
{
    const char *p = s;
    int h, m;
    if (!s || !s_num (&p, 2, &h) || *p++ != ':' || !s_num (&p, 2, &m) || *p
        || h > 24 || m > 59 || (h == 24 && m))
        return PM_EINVAL;
    *ms = ((int64_t) h * 60 + m) * 60000;
    return PM_OK;
}

int
intake_local_parse (const intake_t *in, const char *s, int64_t *ms)
{
    int64_t days, t;
    const char *p;
    if (!s || !s_date (s, &days, &p) || (*p != ' ' && *p != 'T'))
        return PM_EINVAL;
    while (*p == ' ' || *p == 'T')
        p++;
    if (intake_clock_parse (p, &t) != PM_OK)
        return PM_EINVAL;
    *ms = days * S_DAY_MS + t - in->utc_offset_ms;
    return PM_OK;
}

static void
s_local (const intake_t *in, int64_t ms, int *y, unsigned *mo, unsigned *d, int *h, int *mi)
{
    int64_t local = ms + in->utc_offset_ms;
    int64_t days = local >= 0 ? local / S_DAY_MS : -((-local + S_DAY_MS - 1) / S_DAY_MS);
    int64_t rest = local - days * S_DAY_MS;
    s_civil_from_days (days, y, mo, d);
    *h = (int) (rest / 3600000);
    *mi = (int) (rest / 60000 % 60);
}

char *
intake_local_format (pm_arena_t *a, const intake_t *in, int64_t ms)
{
    int y, h, mi;
    unsigned mo, d;
    s_local (in, ms, &y, &mo, &d, &h, &mi);
    return pm_arena_printf (a, "%04d-%02u-%02u %02d:%02d", y, mo, d, h, mi);
}

char *
intake_hhmm (pm_arena_t *a, const intake_t *in, int64_t ms)
{
    int y, h, mi;
    unsigned mo, d;
    s_local (in, ms, &y, &mo, &d, &h, &mi);
    return pm_arena_printf (a, "%02d:%02d", h, mi);
}

int64_t
intake_day_start (const intake_t *in, int64_t ms)
{
    int64_t local = ms + in->utc_offset_ms;
    int64_t days = local >= 0 ? local / S_DAY_MS : -((-local + S_DAY_MS - 1) / S_DAY_MS);
    return days * S_DAY_MS - in->utc_offset_ms;
}

char *
intake_yuan (pm_arena_t *a, int64_t fen)
{
    char digits[32], grouped[48];
    bool neg = fen < 0;
    uint64_t v = neg ? (uint64_t) -(fen + 1) + 1 : (uint64_t) fen;
    snprintf (digits, sizeof digits, "%llu", (unsigned long long) (v / 100));
    size_t n = strlen (digits), o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            grouped[o++] = ',';
        grouped[o++] = digits[i];
    }
    grouped[o] = '\0';
    return pm_arena_printf (a, "%s¥%s.%02llu", neg ? "-" : "", grouped, (unsigned long long) (v % 100));
}
