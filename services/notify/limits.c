/* limits.c - what holds a message back: quiet hours in the estates' zone,
 * the per-recipient daily SMS cap, owners' opt-outs, and the backoff between
 * attempts. All pure: time comes from ctx, jitter from a hash of the
 * message id, so a redone batch decides the same. (The gateways' rates and
 * concurrency are the dispatcher's: dispatch.c.) */
#include "notify.h"
#include "pm/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DAY_MS (86400LL * 1000)

/* --- time of day in the estates' zone -------------------------------------------- */

static int64_t
s_floor_div (int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int
s_minute (const notify_limits_t *l, int64_t t_ms)
{
    int64_t local = t_ms + (int64_t) l->tz_min * 60000;
    return (int) ((local - s_floor_div (local, S_DAY_MS) * S_DAY_MS) / 60000);
}

bool
notify_quiet (const notify_limits_t *l, int64_t t_ms)
{
    if (l->quiet_from == l->quiet_to)
        return false;
    int m = s_minute (l, t_ms);
    if (l->quiet_from > l->quiet_to)
        return m >= l->quiet_from || m < l->quiet_to;
    return m >= l->quiet_from && m < l->quiet_to;
}

int64_t
notify_quiet_end (const notify_limits_t *l, int64_t t_ms)
{
    if (!notify_quiet (l, t_ms))
        return t_ms;
    int64_t tz = (int64_t) l->tz_min * 60000;
    int64_t local = t_ms + tz;
    int64_t end = s_floor_div (local, S_DAY_MS) * S_DAY_MS + (int64_t) l->quiet_to * 60000;
    if (end <= local)
        end += S_DAY_MS;
    return end - tz;
}

uint32_t
notify_local_day (const notify_limits_t *l, int64_t t_ms)
{
    return (uint32_t) s_floor_div (t_ms + (int64_t) l->tz_min * 60000, S_DAY_MS);
}

int64_t
notify_next_morning (const notify_limits_t *l, int64_t t_ms)
{
    int64_t tz = (int64_t) l->tz_min * 60000;
    int64_t next = (s_floor_div (t_ms + tz, S_DAY_MS) + 1) * S_DAY_MS;
    if (l->quiet_from != l->quiet_to && l->quiet_from > l->quiet_to)
        next += (int64_t) l->quiet_to * 60000; /* the night's quiet hours end in the morning */
    return next - tz;
}

/* --- backoff ------------------------------------------------------------------------ */

static uint64_t
s_hash (const char *s, uint64_t salt)
{
    uint64_t h = 1469598103934665603ULL ^ salt;
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

int64_t
notify_backoff_ms (const notify_limits_t *l, const char *id, uint32_t attempts)
{
    int64_t delay = l->retry_base_ms;
    for (uint32_t i = 1; i < attempts && delay < l->retry_max_ms; i++)
        delay *= 2;
    if (delay > l->retry_max_ms)
        delay = l->retry_max_ms;
    int64_t half = delay / 2;
    return half + (int64_t) (s_hash (id, attempts) % (uint64_t) (delay - half + 1));
}

/* --- config values ------------------------------------------------------------------- */

int
notify_parse_quiet (const char *s, int *from, int *to)
{
    unsigned h1, m1, h2, m2;
    char tail;
    if (!*s || strcmp (s, "none") == 0) {
        *from = *to = 0;
        return PM_OK;
    }
    if (sscanf (s, "%u:%u-%u:%u%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 > 24 || h2 > 24 || m1 > 59 || m2 > 59
        || (h1 == 24 && m1) || (h2 == 24 && m2))
        return PM_EINVAL;
    *from = (int) (h1 * 60 + m1) % 1440;
    *to = (int) (h2 * 60 + m2) % 1440;
    return PM_OK;
}

int
notify_parse_zone (const char *s, int *tz_min)
{
    static const struct {
        const char *name;
        int min;
    } zones[] = {
        { "Asia/Shanghai", 480 }, { "Asia/Chongqing", 480 }, { "Asia/Harbin", 480 }, { "Asia/Hong_Kong", 480 },
        { "Asia/Macau", 480 },    { "Asia/Taipei", 480 },    { "Asia/Urumqi", 360 }, { "Asia/Singapore", 480 },
        { "UTC", 0 },             { "Etc/UTC", 0 },
    };
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++)
        if (strcmp (s, zones[i].name) == 0) {
            *tz_min = zones[i].min;
            return PM_OK;
        }
    unsigned h, m;
    char sign, tail;
    if (sscanf (s, "%c%u:%u%c", &sign, &h, &m, &tail) == 3 && (sign == '+' || sign == '-') && h <= 14 && m <= 59) {
        *tz_min = (sign == '-' ? -1 : 1) * (int) (h * 60 + m);
        return PM_OK;
    }
    return PM_EINVAL;
}

/* --- opt-outs -------------------------------------------------------------------------- */

bool
notify_opted_out (pm_txn_t *txn, int channel, const char *address)
{
    if (!*address)
        return false;
    pm_key_t k;
    return pm_txn_has (txn, NOTIFY_OPTOUTS, pm_key (&k, "ss", notify_channels[channel], address));
}

int
notify_on_optout_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__NotifyOptoutSetRequest *q = req->notify_optout_set;
    int ch = notify_channel (q->channel);
    if (ch < 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "channel: '%s' is not a channel; expected sms or email", q->channel);
    if (!*q->address)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "address: empty; expected the phone (13812345678) or email address that opts %s",
                         q->opted_out ? "out" : "back in");
    pm_key_t k;
    pm_key (&k, "ss", notify_channels[ch], q->address);
    if (q->opted_out) {
        Pm__Notify__OptOut o = PM__NOTIFY__OPT_OUT__INIT;
        o.since_ms = ctx->now_ms;
        o.reason = q->reason;
        o.actor = req->actor;
        pm_txn_put_msg (txn, NOTIFY_OPTOUTS, &k, &o.base);
    }
    else
        pm_txn_del_key (txn, NOTIFY_OPTOUTS, &k);
    Pm__V1__NotifyOptoutSetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__notify_optout_set_reply__init (r);
    r->channel = (char *) notify_channels[ch];
    r->recipient = (char *) notify_mask (ctx->arena, q->address);
    r->opted_out = q->opted_out;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s %s %s", r->recipient,
                     q->opted_out ? "opted out of" : "opted back in to", notify_channels[ch]);
}

/* --- the daily SMS cap ----------------------------------------------------------------- */

uint32_t
notify_cap_get (pm_txn_t *txn, uint32_t day, const char *address)
{
    pm_key_t k;
    MDB_val v;
    uint32_t n = 0;
    if (pm_txn_get_key (txn, NOTIFY_CAPS, pm_key (&k, "us", day, address), &v) == PM_OK && v.mv_size == sizeof n)
        memcpy (&n, v.mv_data, sizeof n);
    return n;
}

void
notify_cap_add (pm_txn_t *txn, uint32_t day, const char *address)
{
    uint32_t n = notify_cap_get (txn, day, address) + 1;
    pm_key_t k;
    pm_txn_put_key (txn, NOTIFY_CAPS, pm_key (&k, "us", day, address), &n, sizeof n);
}

/* Timer notify.caps: forgets the counts of days before yesterday. */
int
notify_on_caps_prune (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen, pm_out_t *out)
{
    const notify_app_t *app = ctx->app;
    uint32_t keep = notify_local_day (&app->limits, ctx->now_ms) - 1;
    pm_key_t to;
    pm_key (&to, "u", keep);
    pm_scan_t s;
    size_t n = 0;
    for (pm_scan_range (&s, txn, NOTIFY_CAPS, NULL, &to); s.ok && n < 100000; pm_scan_next (&s), n++)
        pm_scan_del (&s);
    pm_scan_end (&s);
    return PM__V1__STATUS__OK;
}
