/* log.c - one line per event on stderr, written with one write() so lines
 * from several processes sharing the stream never interleave. */
#define _GNU_SOURCE
#include "pm/log.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *s_name = "pm";
static int s_level = PM_LOG_INFO;

static const char *const s_level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
static pm_log_sink_fn s_sink;
static void *s_sink_arg;

void
pm_log_set_sink (pm_log_sink_fn fn, void *arg)
{
    s_sink = fn;
    s_sink_arg = arg;
}

void
pm_log_init (const char *name, int level)
{
    s_name = (name && *name) ? name : "pm";
    if (level < PM_LOG_DEBUG)
        level = PM_LOG_DEBUG;
    if (level > PM_LOG_ERROR)
        level = PM_LOG_ERROR;
    s_level = level;
}

int
pm_log_level_parse (const char *s)
{
    if (!s)
        return -1;
    if (strcasecmp (s, "debug") == 0)
        return PM_LOG_DEBUG;
    if (strcasecmp (s, "info") == 0)
        return PM_LOG_INFO;
    if (strcasecmp (s, "warn") == 0)
        return PM_LOG_WARN;
    if (strcasecmp (s, "error") == 0)
        return PM_LOG_ERROR;
    return -1;
}

/* Writes all of buf, retrying on EINTR and short writes. */
static void
s_write_all (const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write (STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t) n;
    }
}

/* Formats the whole line into one buffer (the stack one if it fits) and
 * writes it at once. errno is preserved for the caller. */
void
pm_log (int level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    if (level < PM_LOG_DEBUG)
        level = PM_LOG_DEBUG;
    if (level > PM_LOG_ERROR)
        level = PM_LOG_ERROR;
    int saved_errno = errno;

    struct timespec ts;
    struct tm tm;
    clock_gettime (CLOCK_REALTIME, &ts);
    gmtime_r (&ts.tv_sec, &tm);
    char prefix[160];
    int plen = snprintf (prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000L, s_name, s_level_names[level]);
    if (plen < 0)
        plen = 0;
    if ((size_t) plen >= sizeof prefix)
        plen = (int) sizeof prefix - 1;

    va_list ap, ap2;
    va_start (ap, fmt);
    va_copy (ap2, ap);
    char stack[2048];
    char *line = stack;
    int mlen = vsnprintf (NULL, 0, fmt, ap);
    if (mlen < 0)
        mlen = 0;
    size_t need = (size_t) plen + (size_t) mlen + 2;
    if (need > sizeof stack) {
        line = pm_xmalloc (need);
    }
    memcpy (line, prefix, (size_t) plen);
    size_t room = need - (size_t) plen - 1;
    int w = vsnprintf (line + plen, room, fmt, ap2);
    va_end (ap2);
    va_end (ap);
    size_t len = (size_t) plen;
    if (w > 0)
        len += (size_t) w < room ? (size_t) w : room - 1;
    for (size_t i = (size_t) plen; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    if (s_sink) {
        line[len - 1] = '\0';
        s_sink (level, line + plen, s_sink_arg);
        line[len - 1] = '\n';
    }
    s_write_all (line, len);
    if (line != stack)
        free (line);
    errno = saved_errno;
}

/* 11 or more characters: first 3 and last 4 kept. Shorter: last 2 kept
 * (last 1 for two characters, none for one), never the whole value. */
const char *
pm_mask_phone (const char *phone, char *buf, size_t size)
{
    size_t len = phone ? pm_utf8_chars (phone) : 0;
    if (len >= 11)
        return pm_mask_chars (phone, 3, 4, buf, size);
    return pm_mask_chars (phone, 0, 2, buf, size);
}

/* 15 or more characters (both ID card lengths): first 4 and last 4 kept.
 * Shorter: everything but the last character masked (all of a single one). */
const char *
pm_mask_id (const char *id, char *buf, size_t size)
{
    size_t len = id ? pm_utf8_chars (id) : 0;
    if (len >= 15)
        return pm_mask_chars (id, 4, 4, buf, size);
    return pm_mask_chars (id, 0, 1, buf, size);
}
