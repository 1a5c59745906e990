/* key.c - composite keys (see pm/key.h for the encoding). */
#include "pm/key.h"
#include "pm/err.h"
#include "pm/store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void
s_put (pm_key_t *k, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (k->bad || k->len + n > PM_KEY_MAX) {
        k->bad = true;
        return;
    }
    memcpy (k->buf + k->len, p, n);
    k->len += n;
}

static void
s_add (pm_key_t *k, const char *spec, va_list ap)
{
    unsigned char b[8];
    for (const char *c = spec; *c; c++) {
        switch (*c) {
        case 's':
        case 'p': {
            const char *s = va_arg (ap, const char *);
            if (!s) {
                k->bad = true;
                break;
            }
            s_put (k, s, strlen (s) + (*c == 's'));
            break;
        }
        case 'u': {
            uint32_t v = va_arg (ap, uint32_t);
            b[0] = (unsigned char) (v >> 24), b[1] = (unsigned char) (v >> 16);
            b[2] = (unsigned char) (v >> 8), b[3] = (unsigned char) v;
            s_put (k, b, 4);
            break;
        }
        case 'U':
            pm_u64_be (va_arg (ap, uint64_t), b);
            s_put (k, b, 8);
            break;
        case 't':
            pm_u64_be ((uint64_t) va_arg (ap, int64_t) ^ (UINT64_C (1) << 63), b);
            s_put (k, b, 8);
            break;
        default:
            k->bad = true; /* a programmer's error: the key is refused, never mis-built */
            break;
        }
    }
}

const pm_key_t *
pm_key (pm_key_t *k, const char *spec, ...)
{
    va_list ap;
    k->len = 0;
    k->bad = false;
    va_start (ap, spec);
    s_add (k, spec, ap);
    va_end (ap);
    return k;
}

const pm_key_t *
pm_key_add (pm_key_t *k, const char *spec, ...)
{
    va_list ap;
    va_start (ap, spec);
    s_add (k, spec, ap);
    va_end (ap);
    return k;
}

const pm_key_t *
pm_key_raw (pm_key_t *k, const void *data, size_t len)
{
    k->len = 0;
    k->bad = false;
    s_put (k, data, len);
    return k;
}

int
pm_key_parse (const void *key, size_t len, const char *spec, ...)
{
    const unsigned char *p = key;
    size_t left = len;
    int rc = PM_OK;
    va_list ap;
    va_start (ap, spec);
    for (const char *c = spec; *c && rc == PM_OK; c++) {
        switch (*c) {
        case 's': {
            const char **out = va_arg (ap, const char **);
            const unsigned char *nul = memchr (p, 0, left);
            if (!nul) {
                rc = PM_EINVAL;
                break;
            }
            if (out)
                *out = (const char *) p;
            left -= (size_t) (nul - p) + 1;
            p = nul + 1;
            break;
        }
        case 'p': {
            const char **out = va_arg (ap, const char **);
            size_t *n = va_arg (ap, size_t *);
            if (out)
                *out = (const char *) p;
            if (n)
                *n = left;
            p += left;
            left = 0;
            break;
        }
        case 'u': {
            uint32_t *out = va_arg (ap, uint32_t *);
            if (left < 4) {
                rc = PM_EINVAL;
                break;
            }
            if (out)
                *out = (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
            p += 4, left -= 4;
            break;
        }
        case 'U':
        case 't': {
            void *out = va_arg (ap, void *);
            if (left < 8) {
                rc = PM_EINVAL;
                break;
            }
            uint64_t v = pm_be_u64 (p);
            if (*c == 't')
                v ^= UINT64_C (1) << 63;
            if (out)
                memcpy (out, &v, 8);
            p += 8, left -= 8;
            break;
        }
        default:
            rc = PM_EINVAL;
        }
    }
    va_end (ap);
    return rc == PM_OK && left == 0 ? PM_OK : PM_EINVAL;
}

char *
pm_key_text (pm_arena_t *a, const void *key, size_t len, const char *spec)
{
    const unsigned char *p = key;
    size_t left = len, cap = len * 3 + 32, out = 0;
    char *s = pm_arena_alloc (a, cap);
    for (const char *c = spec; *c && left; c++) {
        if (out)
            s[out++] = '/';
        if (*c == 's' || *c == 'p') {
            size_t n = strnlen ((const char *) p, left);
            memcpy (s + out, p, n);
            out += n;
            n += n < left;
            p += n, left -= n;
        }
        else {
            size_t w = *c == 'u' ? 4 : 8;
            if (left < w)
                break;
            uint64_t v = 0;
            for (size_t i = 0; i < w; i++)
                v = v << 8 | p[i];
            if (*c == 't')
                out += (size_t) snprintf (s + out, cap - out, "%" PRId64, (int64_t) (v ^ (UINT64_C (1) << 63)));
            else
                out += (size_t) snprintf (s + out, cap - out, "%" PRIu64, v);
            p += w, left -= w;
        }
    }
    s[out] = '\0';
    return s;
}
