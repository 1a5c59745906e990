/* timer.c - durable timers, and the one place their record format lives.
 *
 *   timers       t(due_ms) s(kind) s(key)  -> payload bytes
 *   timer_index  s(kind) s(key)            -> t(due_ms) (8 bytes)
 *
 * The first table is what the runtime walks (earliest first: "found by due
 * time, never by scanning"); the second is what makes set-again and cancel
 * cost one lookup. Both change together in the caller's transaction. */
#include "pm/timer.h"
#include "pm/mem.h"
#include "pm/err.h"
#include "pm/key.h"

#include <stdlib.h>
#include <string.h>

static int
s_index_get (pm_txn_t *t, const char *kind, const char *key, int64_t *due_ms)
{
    pm_key_t k;
    MDB_val v;
    int rc = pm_txn_get_key (t, PM_DB_TIMER_INDEX, pm_key (&k, "ss", kind, key), &v);
    if (rc != PM_OK)
        return rc;
    if (pm_key_parse (v.mv_data, v.mv_size, "t", due_ms) != PM_OK)
        return PM_EPROTO;
    return PM_OK;
}

int
pm_timer_remove (pm_txn_t *t, const char *kind, const char *key, int64_t due_ms)
{
    pm_key_t k;
    pm_txn_del_key (t, PM_DB_TIMERS, pm_key (&k, "tss", due_ms, kind, key));
    return pm_txn_del_key (t, PM_DB_TIMER_INDEX, pm_key (&k, "ss", kind, key));
}

int
pm_timer_set (pm_txn_t *t, const char *kind, const char *key, int64_t due_ms, const void *payload, size_t plen)
{
    if (!kind || !*kind || !key || !*key)
        return pm_txn_fail (t, PM_EINVAL);
    int64_t old;
    if (s_index_get (t, kind, key, &old) == PM_OK) {
        pm_key_t k;
        pm_txn_del_key (t, PM_DB_TIMERS, pm_key (&k, "tss", old, kind, key));
    }
    pm_key_t k, due;
    pm_key (&due, "t", due_ms);
    pm_txn_put_key (t, PM_DB_TIMERS, pm_key (&k, "tss", due_ms, kind, key), payload ? payload : "", plen);
    return pm_txn_put_key (t, PM_DB_TIMER_INDEX, pm_key (&k, "ss", kind, key), due.buf, due.len);
}

int
pm_timer_set_msg (pm_txn_t *t, const char *kind, const char *key, int64_t due_ms, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size (m);
    unsigned char stack[512], *buf = len <= sizeof stack ? stack : pm_xmalloc (len);
    if (!buf)
        return pm_txn_fail (t, PM_ENOMEM);
    protobuf_c_message_pack (m, buf);
    int rc = pm_timer_set (t, kind, key, due_ms, buf, len);
    if (buf != stack)
        free (buf);
    return rc;
}

int
pm_timer_cancel (pm_txn_t *t, const char *kind, const char *key)
{
    int64_t due;
    int rc = s_index_get (t, kind, key, &due);
    if (rc == PM_ENOTFOUND)
        return t->err;
    if (rc != PM_OK)
        return rc;
    return pm_timer_remove (t, kind, key, due);
}

int
pm_timer_due (pm_txn_t *t, const char *kind, const char *key, int64_t *due_ms)
{
    return s_index_get (t, kind, key, due_ms);
}

int64_t
pm_timer_next_due (pm_txn_t *t)
{
    pm_scan_t s;
    int64_t due = INT64_MAX;
    if (pm_scan_prefix (&s, t, PM_DB_TIMERS, NULL)
        && pm_key_parse (s.key.mv_data, s.key.mv_size, "tss", &due, NULL, NULL) != PM_OK)
        due = INT64_MAX;
    pm_scan_end (&s);
    return due;
}

bool
pm_timer_scan (pm_scan_t *s, pm_txn_t *t, int64_t now_ms)
{
    pm_key_t to;
    /* every key whose due part is <= now: below the first key of now + 1 ms */
    return pm_scan_range (s, t, PM_DB_TIMERS, NULL, pm_key (&to, "t", now_ms + 1));
}

int
pm_timer_read (const pm_scan_t *s, pm_timer_t *tm)
{
    memset (tm, 0, sizeof *tm);
    if (!s->ok || pm_key_parse (s->key.mv_data, s->key.mv_size, "tss", &tm->due_ms, &tm->kind, &tm->key) != PM_OK)
        return PM_EPROTO;
    tm->payload = s->val.mv_data;
    tm->plen = s->val.mv_size;
    return PM_OK;
}
