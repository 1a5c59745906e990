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

/* Natural order: '/' -> 0x01; a run of digits -> 0x02, the count of its
 * significant digits, the digits, the count of its leading zeros (so numbers
 * compare by size, then digit by digit, and "01" stays apart from "1"); any
 * other byte (>= 0x20) as it is; then 0x00 unless it is a prefix. A byte
 * below 0x20 makes the key bad. */
static void
s_natural (pm_key_t *k, const char *s, bool terminate)
{
    const unsigned char *p = (const unsigned char *) s;
    while (*p && !k->bad) {
        if (*p == '/') {
            unsigned char sep = 0x01;
            s_put (k, &sep, 1);
            p++;
        }
        else if (*p >= '0' && *p <= '9') {
            size_t zeros = 0, n = 0;
            while (p[zeros] == '0' && p[zeros + 1] >= '0' && p[zeros + 1] <= '9' && zeros < 200)
                zeros++;
            while (p[zeros + n] >= '0' && p[zeros + n] <= '9' && n < 200)
                n++;
            unsigned char head[2] = { 0x02, (unsigned char) n }, tail = (unsigned char) zeros;
            s_put (k, head, 2);
            s_put (k, p + zeros, n);
            s_put (k, &tail, 1);
            p += zeros + n;
        }
        else if (*p < 0x20)
            k->bad = true;
        else
            s_put (k, p++, 1);
    }
    if (terminate) {
        unsigned char end = 0;
        s_put (k, &end, 1);
    }
}

/* Decodes a natural-order path at p[0..left) into a (stops at 0x00, which
 * it consumes, or at the end). Sets *used; NULL when malformed. */
static char *
s_natural_text (pm_arena_t *a, const unsigned char *p, size_t left, size_t *used)
{
    char *out = pm_arena_alloc (a, left * 2 + 1);
    size_t i = 0, o = 0;
    while (i < left && p[i]) {
        if (p[i] == 0x01)
            out[o++] = '/', i++;
        else if (p[i] == 0x02) {
            if (i + 2 > left || i + 2 + p[i + 1] + 1 > left)
                return NULL;
            size_t n = p[i + 1], zeros = p[i + 2 + n];
            memset (out + o, '0', zeros);
            o += zeros;
            memcpy (out + o, p + i + 2, n);
            o += n;
            i += 3 + n;
        }
        else
            out[o++] = (char) p[i++];
    }
    if (i < left)
        i++; /* the terminator */
    out[o] = '\0';
    *used = i;
    return out;
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
        case 'N':
        case 'Q': {
            const char *s = va_arg (ap, const char *);
            if (!s)
                k->bad = true;
            else
                s_natural (k, s, *c == 'N');
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
        case 'N': {
            pm_arena_t *a = va_arg (ap, pm_arena_t *);
            char **out = va_arg (ap, char **);
            size_t used = 0;
            char *text = a ? s_natural_text (a, p, left, &used) : NULL;
            if (!text) {
                rc = PM_EINVAL;
                break;
            }
            if (out)
                *out = text;
            p += used, left -= used;
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
        if (*c == 'N' || *c == 'Q') {
            size_t used = 0;
            char *text = s_natural_text (a, p, left, &used);
            if (!text)
                break;
            size_t n = strlen (text);
            memcpy (s + out, text, n);
            out += n;
            p += used, left -= used;
        }
        else if (*c == 's' || *c == 'p') {
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
