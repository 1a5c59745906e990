/* keys.c - intake's LMDB key schema. Keys follow the batch's natural order
 * (estate / building / unit), so an import touches neighbouring pages. */
#include "intake.h"
#include "pm/err.h"

#include <stdio.h>
#include <string.h>

int
intake_unit_key (char *buf, size_t size, const char *estate_id, const char *building, const char *unit)
{
    if (strchr (estate_id, '/') || strchr (building, '/') || strchr (unit, '/'))
        return PM_EINVAL;
    int n = snprintf (buf, size, "%s/%s-%s", estate_id, building, unit);
    return n < 0 || (size_t) n >= size ? PM_EINVAL : PM_OK;
}

size_t
intake_reject_key (unsigned char *buf, size_t size, const char *file, uint32_t line)
{
    size_t n = strlen (file);
    if (n + 5 > size)
        n = size - 5;
    memcpy (buf, file, n);
    buf[n] = '\0';
    buf[n + 1] = (unsigned char) (line >> 24);
    buf[n + 2] = (unsigned char) (line >> 16);
    buf[n + 3] = (unsigned char) (line >> 8);
    buf[n + 4] = (unsigned char) line;
    return n + 5;
}

size_t
intake_reject_key_parse (const void *key, size_t klen, uint32_t *line)
{
    const unsigned char *k = key;
    size_t n = strnlen (key, klen);
    *line = n + 5 <= klen ? (uint32_t) k[n + 1] << 24 | (uint32_t) k[n + 2] << 16 | (uint32_t) k[n + 3] << 8 | k[n + 4] : 0;
    return n;
}
