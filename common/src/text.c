/* text.c - UTF-8, trimming and masking by character (see pm/text.h).
 *
 * Hand-written because none of the allowed libraries offers a UTF-8 check
 * without pulling in glib or ICU; it is the one validator of the project. */
#include "pm/text.h"

#include <string.h>

/* Length of the well-formed sequence at s[0..n), or 0 when it is not one. */
static size_t
s_seq (const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

bool
pm_utf8_valid (const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *) str;
    size_t i = 0;
    while (i < n) {
        size_t len = s_seq (s + i, n - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

bool
pm_utf8_valid_str (const char *s)
{
    return s ? pm_utf8_valid (s, strlen (s)) : true;
}

uint32_t
pm_utf8_next (const char *str, size_t *len)
{
    const unsigned char *s = (const unsigned char *) str;
    unsigned c = s[0];
    if (c == 0) {
        *len = 0;
        return 0;
    }
    if (c < 0x80 || c < 0xC0) { /* ASCII, or a stray continuation byte taken alone */
        *len = 1;
        return c;
    }
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    uint32_t cp = c & (0x7F >> n);
    size_t k = 1;
    for (; k < n && (s[k] & 0xC0) == 0x80; k++)
        cp = cp << 6 | (s[k] & 0x3F);
    *len = k;
    return cp;
}

size_t
pm_utf8_chars (const char *s)
{
    size_t n = 0, len;
    while (pm_utf8_next (s, &len), len) {
        s += len;
        n++;
    }
    return n;
}

bool
pm_is_blank (uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == 0x3000;
}

void
pm_trim_span (const char *s, const char **start, size_t *len)
{
    size_t n;
    if (!s)
        s = "";
    for (;;) {
        uint32_t cp = pm_utf8_next (s, &n);
        if (!n || !pm_is_blank (cp))
            break;
        s += n;
    }
    const char *end = s, *p = s;
    for (;;) {
        uint32_t cp = pm_utf8_next (p, &n);
        if (!n)
            break;
        p += n;
        if (!pm_is_blank (cp))
            end = p;
    }
    *start = s;
    *len = (size_t) (end - s);
}

char *
pm_trim (char *s)
{
    const char *start;
    size_t len;
    pm_trim_span (s, &start, &len);
    ((char *) start)[len] = '\0';
    return (char *) start;
}

const char *
pm_mask_chars (const char *s, size_t head, size_t tail, char *buf, size_t size)
{
    if (!buf || size == 0)
        return "";
    buf[0] = '\0';
    if (!s || !*s)
        return buf;
    size_t chars = pm_utf8_chars (s);
    if (chars < head + tail + 1) { /* too short to show head and tail: keep less */
        head = 0;
        if (tail >= chars)
            tail = chars ? chars - 1 : 0;
    }
    size_t out = 0, i = 0, len;
    const char *p = s;
    while (pm_utf8_next (p, &len), len) {
        bool keep = i < head || i >= chars - tail;
        size_t need = keep ? len : 1;
        if (out + need + 1 > size)
            break;
        if (keep)
            memcpy (buf + out, p, len);
        else
            buf[out] = '*';
        out += need;
        p += len;
        i++;
    }
    buf[out] = '\0';
    return buf;
}
