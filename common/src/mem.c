/* mem.c - allocation that aborts on failure (see pm/mem.h). */
#define _GNU_SOURCE
#include "pm/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
pm_oom (const char *what, size_t size)
{
    char line[160];
    int n = snprintf (line, sizeof line, "pm: out of memory (%s, %zu bytes): aborting\n", what, size);
    if (n > 0 && write (2, line, (size_t) n) < 0)
        n = 0;
    abort ();
}

void *
pm_xmalloc (size_t size)
{
    void *p = malloc (size ? size : 1);
    if (!p)
        pm_oom ("malloc", size);
    return p;
}

void *
pm_xcalloc (size_t n, size_t size)
{
    void *p = calloc (n ? n : 1, size ? size : 1);
    if (!p)
        pm_oom ("calloc", n * size);
    return p;
}

void *
pm_xrealloc (void *p, size_t size)
{
    void *q = realloc (p, size ? size : 1);
    if (!q)
        pm_oom ("realloc", size);
    return q;
}

char *
pm_xstrdup (const char *s)
{
    char *p = strdup (s ? s : "");
    if (!p)
        pm_oom ("strdup", strlen (s ? s : ""));
    return p;
}

char *
pm_xstrndup (const char *s, size_t n)
{
    char *p = strndup (s, n);
    if (!p)
        pm_oom ("strndup", n);
    return p;
}

char *
pm_xasprintf (const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start (ap, fmt);
    int n = vasprintf (&s, fmt, ap);
    va_end (ap);
    if (n < 0)
        pm_oom ("asprintf", 0);
    return s;
}
