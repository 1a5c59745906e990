/* keys.c - document ids and their numbers.
 *
 * Invoices, payments and refunds are numbered per estate without gaps
 * ("INV-E01-000123"), as accountants expect: the next number is read and
 * written in the command's own transaction, so a command that is refused
 * (rolled back alone by the runtime) takes no number, and the commands of one
 * batch take consecutive numbers in their order. The stored key is the
 * estate and the number (s U), so documents sort by number even past
 * 999999. */
#include "billing.h"
#include "pm/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

bool
billing_doc_parse (const char *id, const char *prefix, char *estate, size_t size, uint64_t *no)
{
    size_t pl = strlen (prefix);
    if (!id || strncmp (id, prefix, pl) != 0 || id[pl] != '-')
        return false;
    const char *e = id + pl + 1;
    const char *dash = strrchr (e, '-');
    if (!dash || dash == e || (size_t) (dash - e) >= size)
        return false;
    const char *n = dash + 1;
    if (!*n || strlen (n) > 18)
        return false;
    for (const char *p = n; *p; p++)
        if (!isdigit ((unsigned char) *p))
            return false;
    memcpy (estate, e, (size_t) (dash - e));
    estate[dash - e] = '\0';
    if (strchr (estate, '/'))
        return false;
    *no = strtoull (n, NULL, 10);
    return *no > 0;
}

char *
billing_doc_id (pm_arena_t *a, const char *prefix, const char *estate, uint64_t no)
{
    /* "%s-%s-%06llu" without printf: it is on the path of every payment */
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char) ('0' + no % 10);
    while ((no /= 10) != 0);
    while (n < 6)
        digits[n++] = '0';
    size_t pl = strlen (prefix), el = strlen (estate);
    char *s = pm_arena_alloc (a, pl + el + (size_t) n + 3), *w = s;
    memcpy (w, prefix, pl);
    w += pl;
    *w++ = '-';
    memcpy (w, estate, el);
    w += el;
    *w++ = '-';
    while (n)
        *w++ = digits[--n];
    return s;
}

uint64_t
billing_next_no (pm_txn_t *txn, const char *kind, const char *estate)
{
    pm_key_t k;
    MDB_val v;
    uint64_t n = 0;
    pm_key (&k, "ss", kind, estate);
    if (pm_txn_get_key (txn, BILLING_NUMBERS, &k, &v) == PM_OK && v.mv_size == 8)
        n = pm_be_u64 (v.mv_data);
    unsigned char buf[8];
    pm_u64_be (++n, buf);
    pm_txn_put_key (txn, BILLING_NUMBERS, &k, buf, sizeof buf);
    return n;
}

char *
billing_unit_estate (pm_arena_t *a, const char *unit_id)
{
    const char *slash = unit_id ? strchr (unit_id, '/') : NULL;
    if (!slash || slash == unit_id || !slash[1])
        return NULL;
    char *e = pm_arena_alloc (a, (size_t) (slash - unit_id) + 1);
    memcpy (e, unit_id, (size_t) (slash - unit_id));
    return e;
}
