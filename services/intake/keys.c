/* keys.c - intake's LMDB key schema and its counters. Keys follow the batch's
 * natural order (estate / building / unit), so an import touches
 * neighbouring pages.
 *
 * A unit id is ESTATE/BUILDING/UNIT ("E01/3/2-301"): every part non-empty and
 * without '/', so the id splits back into exactly one (estate, building,
 * unit) and two different units can never share an id, whatever dashes
 * their numbers hold (2单元301 is written 2-301). */
#include "intake.h"
#include "pm/err.h"

#include <stdio.h>
#include <string.h>

int
intake_unit_id (char *buf, size_t size, const char *estate_id, const char *building, const char *unit)
{
    if (!*estate_id || !*building || !*unit || strchr (estate_id, '/') || strchr (building, '/')
        || strchr (unit, '/'))
        return PM_EINVAL;
    int n = snprintf (buf, size, "%s/%s/%s", estate_id, building, unit);
    return n < 0 || (size_t) n >= size ? PM_EINVAL : PM_OK;
}

int
intake_unit_id_parts (pm_arena_t *a, const char *unit_id, char **estate_id, char **building)
{
    const char *s1 = strchr (unit_id, '/');
    const char *s2 = s1 ? strchr (s1 + 1, '/') : NULL;
    if (!s1 || !s2 || s1 == unit_id || s2 == s1 + 1 || !s2[1] || strchr (s2 + 1, '/'))
        return PM_EINVAL;
    size_t el = (size_t) (s1 - unit_id), bl = (size_t) (s2 - s1 - 1);
    *estate_id = pm_arena_alloc (a, el + 1);
    memcpy (*estate_id, unit_id, el);
    *building = pm_arena_alloc (a, bl + 1);
    memcpy (*building, s1 + 1, bl);
    return PM_OK;
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

const pm_key_t *
intake_count_key (pm_key_t *k, const char *estate_id, const char *building, const char *name)
{
    return pm_key (k, "sss", estate_id, building, name);
}

const pm_key_t *
intake_slot_key (pm_key_t *k, const char *estate_id, int64_t start_ms)
{
    return pm_key (k, "st", estate_id, start_ms);
}

uint64_t
intake_count_get (pm_txn_t *txn, const char *estate_id, const char *building, const char *name)
{
    pm_key_t k;
    MDB_val v;
    if (pm_txn_get_key (txn, INTAKE_COUNTS, intake_count_key (&k, estate_id, building, name), &v) != PM_OK
        || v.mv_size != 8)
        return 0;
    return pm_be_u64 (v.mv_data);
}

int
intake_count_add (pm_txn_t *txn, const char *estate_id, const char *building, const char *name, int64_t delta)
{
    if (delta == 0)
        return PM_OK;
    pm_key_t k;
    MDB_val v;
    intake_count_key (&k, estate_id, building, name);
    uint64_t n = 0;
    if (pm_txn_get_key (txn, INTAKE_COUNTS, &k, &v) == PM_OK && v.mv_size == 8)
        n = pm_be_u64 (v.mv_data);
    n = delta < 0 && (uint64_t) -delta > n ? 0 : n + (uint64_t) delta;
    if (n == 0)
        return pm_txn_del_key (txn, INTAKE_COUNTS, &k);
    unsigned char b[8];
    pm_u64_be (n, b);
    return pm_txn_put_key (txn, INTAKE_COUNTS, &k, b, sizeof b);
}
