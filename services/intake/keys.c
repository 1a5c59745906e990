/* keys.c - intake's LMDB key schema. Keys follow the batch's natural order
 * (estate / building / unit), so an import touches neighbouring pages. */
#include "intake.h"
#include "pm/err.h"

#include <stdio.h>
#include <string.h>

int
intake_unit_id (char *buf, size_t size, const char *estate_id, const char *building, const char *unit)
{
    if (strchr (estate_id, '/') || strchr (building, '/') || strchr (unit, '/'))
        return PM_EINVAL;
    int n = snprintf (buf, size, "%s/%s-%s", estate_id, building, unit);
    return n < 0 || (size_t) n >= size ? PM_EINVAL : PM_OK;
}

const pm_key_t *
intake_unit_key (pm_key_t *k, const char *unit_id)
{
    return pm_key (k, "s", unit_id);
}

const pm_key_t *
intake_estate_key (pm_key_t *k, const char *estate_id)
{
    return pm_key (k, "s", estate_id);
}

const pm_key_t *
intake_reject_key (pm_key_t *k, const char *file, uint32_t line)
{
    return pm_key (k, "su", file, line);
}
