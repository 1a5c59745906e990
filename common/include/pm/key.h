/* pm/key.h - composite LMDB keys whose byte order is their natural order.
 *
 * LMDB compares keys as bytes. A key built here from parts sorts by its first
 * part, then its second, and so on, so "all defects of unit X", "invoices of
 * unit X by number" and "orders due before T" are prefix or range scans over
 * neighbouring pages (DESIGN.md section 4: keys follow the batch's natural
 * order, so a group commit touches few pages).
 *
 * Encoding, one rule per part type:
 *   s  string: its bytes then 0x00 (so "E01" sorts before "E011"; no NUL inside)
 *   p  string prefix: its bytes, no terminator (last part only, for prefix scans)
 *   u  u32, big-endian (4 bytes)
 *   U  u64, big-endian (8 bytes)
 *   t  time in ms (i64), big-endian with the sign bit flipped (negatives first)
 *   N  a '/'-separated path in natural order ("E01/3/2-301"): numbers compare
 *      as numbers (building 2 before building 10, unit 901 before 1001), '/'
 *      sorts before any other character, then 0x00. Leading zeros are kept
 *      (E1 and E01 stay two keys). Reversible: pm_key_parse gives the text back.
 *   Q  the same without the terminator: a prefix ("E01/" = every unit of E01)
 *
 * Unit-keyed tables use N: an import's rows arrive estate by estate and
 * building by building, and natural order keeps each batch's writes on few
 * pages (string order would put "1001" between "100" and "101").
 *
 *   pm_key_t k;
 *   pm_txn_get_msg (txn, T_DEFECTS, pm_key (&k, "su", unit_id, defect_no), desc, &rec);
 *
 * A key is at most PM_KEY_MAX bytes (LMDB's limit); a longer one is marked bad
 * and every store call given it fails that command alone with PM_EINVAL. */
#ifndef PM_KEY_H
#define PM_KEY_H

#include "pm/arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_KEY_MAX 511

typedef struct {
    unsigned char buf[PM_KEY_MAX];
    size_t len;
    bool bad; /* too long, a NULL string, or a NUL inside a string part */
} pm_key_t;

/* Resets k and appends parts by spec (letters above). Returns k. */
const pm_key_t *pm_key (pm_key_t *k, const char *spec, ...);
/* Appends parts to k by spec. Returns k. */
const pm_key_t *pm_key_add (pm_key_t *k, const char *spec, ...);
/* A key made of raw bytes (another table's key, a stored cursor). Returns k. */
const pm_key_t *pm_key_raw (pm_key_t *k, const void *data, size_t len);

/* Parses key[0..len) by spec into pointers: s/p -> const char ** (pointing into
 * the key, NUL-terminated for s; p is the rest of the key and is NOT
 * terminated: use the returned length in *(size_t *) after it), N -> two
 * arguments, a pm_arena_t * and a char ** (the path decoded into the arena),
 * u -> uint32_t *,
 * U -> uint64_t *, t -> int64_t *. A NULL pointer skips the part.
 * PM_OK, or PM_EINVAL when the key does not have that shape. */
int pm_key_parse (const void *key, size_t len, const char *spec, ...);
/* The key as text for people ("E01/3/12"): strings as they are, numbers in
 * decimal, parts joined by '/'. Arena memory. */
char *pm_key_text (pm_arena_t *a, const void *key, size_t len, const char *spec);

#endif
