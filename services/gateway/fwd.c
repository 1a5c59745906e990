/* fwd.c - requests from the gateway's loop to the daemons' ROUTERs.
 *
 * One DEALER per daemon of the config (the gateway's own included: the
 * webhook worker records its progress through its own ROUTER, so it commits
 * in the group commit like any command), each watched by the loop with
 * pm/zwatch.h. pm/client.h blocks, so it is not used here. Many requests are
 * in flight on one DEALER; a reply is matched to its request by Reply.id (and
 * the DEALER it came on). Two requests with the same id in flight (an
 * integrator retrying with the same Idempotency-Key before the first answer)
 * are answered in the order they were sent: each gets one reply, and the
 * daemon answers a repeated id with the stored first reply anyway.
 *
 * A DEALER is watched only while requests to its daemon are in flight: a
 * watched ZeroMQ socket costs the loop two system calls a turn (pm/zwatch.h),
 * and most of the time the gateway talks to one or two daemons. A reply that
 * comes after its request was given up waits in the socket and is dropped
 * when the next request's watch starts.
 *
 * A request is resent, same bytes, every S_RESEND_MS until its deadline (a
 * daemon that restarted lost what it had not read; a write is applied once
 * whatever the resends); at the deadline its callback gets NULL. Deadlines are
 * on the monotonic clock: they measure real waiting, not the daemon clock. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/curve.h"
#include "pm/log.h"
#include "pm/mem.h"
#include "pm/zwatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_BUCKETS 4096
#define S_RESEND_MS 2000
#define S_SWEEP_S 0.05
#define S_DRAIN_MAX 4096

typedef struct s_call s_call_t;
struct s_call {
    s_call_t *hnext;        /* same bucket, oldest first */
    s_call_t *prev, *next;  /* every call, oldest first */
    int daemon;
    unsigned hash;
    char *id;
    void *packed;
    size_t len;
    int64_t sent_ms, deadline_ms;
    gw_reply_fn fn;
    void *arg;
};

typedef struct {
    gw_fwd_t *f;
    int index;
    const char *name;
    void *sock;
    pm_zwatch_t *w;
    size_t inflight;   /* requests waiting for this daemon: the socket is watched while > 0 */
} s_daemon_t;

struct gw_fwd {
    gw_t *gw;
    void *zctx;
    s_daemon_t daemons[GW_MAX_DAEMONS];
    const char *names[GW_MAX_DAEMONS + 1];
    size_t n;
    s_call_t *buckets[S_BUCKETS];
    s_call_t *head, *tail;
    size_t inflight;
    ev_timer sweep;
};

void
gw_request_id (char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    static uint64_t prefix, counter;
    if (!prefix) {
        randombytes_buf (&prefix, sizeof prefix);
        prefix |= 1;
    }
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000, p = prefix, n = ++counter;
    for (int i = 9; i >= 0; i--, ms >>= 5) /* 10 characters of time: ids sort by creation */
        out[i] = b32[ms & 31];
    for (int i = 17; i >= 10; i--, p >>= 5) /* 8 of this process's random prefix */
        out[i] = b32[p & 31];
    for (int i = 25; i >= 18; i--, n >>= 5) /* 8 of a counter */
        out[i] = b32[n & 31];
    out[26] = '\0';
}

static unsigned
s_hash (const char *id, int daemon)
{
    unsigned h = 2166136261u ^ (unsigned) daemon;
    for (const unsigned char *p = (const unsigned char *) id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static void
s_unlink (gw_fwd_t *f, s_call_t *c)
{
    s_daemon_t *dm = &f->daemons[c->daemon];
    if (--dm->inflight == 0)
        pm_zwatch_stop (dm->w);
    s_call_t **pp = &f->buckets[c->hash % S_BUCKETS];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    if (c->prev)
        c->prev->next = c->next;
    else
        f->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        f->tail = c->prev;
    f->inflight--;
}

static void
s_free (s_call_t *c)
{
    free (c->id);
    free (c->packed);
    free (c);
}

static bool
s_send (s_daemon_t *dm, const void *buf, size_t len)
{
    return zmq_send (dm->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
           && zmq_send (dm->sock, buf, len, ZMQ_DONTWAIT) >= 0;
}

/* Hands reply (or NULL: timed out) to c's caller and forgets c. */
static void
s_finish (gw_fwd_t *f, s_call_t *c, const Pm__V1__Reply *reply)
{
    s_unlink (f, c);
    if (!f->inflight)
        ev_timer_stop (f->gw->loop, &f->sweep);
    c->fn (c->arg, reply);
    s_free (c);
}

static void
s_reply_cb (pm_zwatch_t *w, void *sock, void *arg)
{
    s_daemon_t *dm = arg;
    gw_fwd_t *f = dm->f;
    for (int k = 0; k < S_DRAIN_MAX; k++) {
        zmq_msg_t m;
        zmq_msg_init (&m);
        if (zmq_msg_recv (&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&m);
            return;
        }
        while (zmq_msg_more (&m)) { /* keep the last frame: [empty][Reply] */
            zmq_msg_close (&m);
            zmq_msg_init (&m);
            if (zmq_msg_recv (&m, sock, ZMQ_DONTWAIT) < 0)
                break;
        }
        Pm__V1__Reply *r = pm__v1__reply__unpack (NULL, zmq_msg_size (&m), zmq_msg_data (&m));
        zmq_msg_close (&m);
        if (!r)
            continue;
        unsigned h = s_hash (r->id, dm->index);
        s_call_t *c = f->buckets[h % S_BUCKETS];
        while (c && !(c->daemon == dm->index && strcmp (c->id, r->id) == 0))
            c = c->hnext;
        if (c)
            s_finish (f, c, r);
        pm__v1__reply__free_unpacked (r, NULL); /* or a late reply to a call given up */
    }
}

static void
s_sweep_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    gw_fwd_t *f = w->data;
    int64_t now = pm_mono_ms ();
    s_call_t *c = f->head;
    while (c) {
        s_call_t *next = c->next;
        if (now >= c->deadline_ms) {
            pm_metric_inc (f->gw->m_timeouts, 1);
            s_finish (f, c, NULL);
        }
        else if (now - c->sent_ms >= S_RESEND_MS) {
            s_send (&f->daemons[c->daemon], c->packed, c->len);
            c->sent_ms = now;
        }
        c = next;
    }
}

gw_fwd_t *
gw_fwd_new (gw_t *gw)
{
    gw_fwd_t *f = pm_xcalloc (1, sizeof *f);
    f->gw = gw;
    f->zctx = zmq_ctx_new ();
    size_t n;
    const char *const *names = pm_config_daemons (gw->cfg, &n);
    for (size_t i = 0; i < n && f->n < GW_MAX_DAEMONS; i++) {
        const char *ep = pm_config_get (gw->cfg, names[i], "command", NULL);
        if (!ep || !*ep)
            continue;
        s_daemon_t *dm = &f->daemons[f->n];
        dm->f = f;
        dm->index = (int) f->n;
        dm->name = names[i];
        dm->sock = zmq_socket (f->zctx, ZMQ_DEALER);
        int linger = 0, hwm = 100000;
        zmq_setsockopt (dm->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt (dm->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt (dm->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        /* CurveZMQ to a daemon with a public key, with the gateway's own pair */
        if (pm_curve_client (gw->cfg, names[i], pm_curve_secret_file (gw->cfg, "gateway"), dm->sock) != PM_OK) {
            zmq_close (dm->sock);
            dm->sock = NULL;
            gw_fwd_destroy (&f);
            return NULL;
        }
        if (zmq_connect (dm->sock, ep) != 0) {
            pm_error ("gateway: cannot connect to %s at %s: %s", names[i], ep, zmq_strerror (errno));
            zmq_close (dm->sock);
            dm->sock = NULL;
            gw_fwd_destroy (&f);
            return NULL;
        }
        dm->w = pm_zwatch_new (gw->loop, dm->sock, s_reply_cb, dm);
        f->names[f->n++] = dm->name;
    }
    f->names[f->n] = NULL;
    ev_timer_init (&f->sweep, s_sweep_cb, S_SWEEP_S, S_SWEEP_S);
    f->sweep.data = f;
    return f;
}

void
gw_fwd_destroy (gw_fwd_t **p)
{
    if (!p || !*p)
        return;
    gw_fwd_t *f = *p;
    ev_timer_stop (f->gw->loop, &f->sweep);
    while (f->head) {
        s_call_t *c = f->head;
        s_unlink (f, c);
        s_free (c);
    }
    for (size_t i = 0; i < f->n; i++) {
        pm_zwatch_destroy (&f->daemons[i].w);
        if (f->daemons[i].sock)
            zmq_close (f->daemons[i].sock);
    }
    zmq_ctx_term (f->zctx);
    free (f);
    *p = NULL;
}

const char *const *
gw_fwd_daemons (const gw_fwd_t *f, size_t *n)
{
    *n = f->n;
    return f->names;
}

static int
s_find (const gw_fwd_t *f, const char *daemon)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp (f->names[i], daemon) == 0)
            return (int) i;
    return -1;
}

bool
gw_fwd_has (const gw_fwd_t *f, const char *daemon)
{
    return s_find (f, daemon) >= 0;
}

size_t
gw_fwd_inflight (const gw_fwd_t *f)
{
    return f->inflight;
}

int
gw_fwd_call (gw_fwd_t *f, const char *daemon, const Pm__V1__Request *req, int64_t timeout_ms, gw_reply_fn fn,
             void *arg)
{
    int i = s_find (f, daemon);
    if (i < 0)
        return PM_ENOTFOUND;
    s_call_t *c = pm_xcalloc (1, sizeof *c);
    c->len = pm__v1__request__get_packed_size (req);
    c->packed = pm_xmalloc (c->len ? c->len : 1);
    pm__v1__request__pack (req, c->packed);
    if (!s_send (&f->daemons[i], c->packed, c->len)) {
        s_free (c);
        return PM_EIO;
    }
    c->daemon = i;
    c->id = pm_xstrdup (req->id);
    c->hash = s_hash (c->id, i);
    c->fn = fn;
    c->arg = arg;
    c->sent_ms = pm_mono_ms ();
    c->deadline_ms = c->sent_ms + timeout_ms;
    s_call_t **pp = &f->buckets[c->hash % S_BUCKETS];
    while (*pp)
        pp = &(*pp)->hnext;
    *pp = c;
    c->prev = f->tail;
    if (f->tail)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    if (f->daemons[i].inflight++ == 0)
        pm_zwatch_start (f->daemons[i].w);
    if (f->inflight++ == 0) {
        ev_timer_set (&f->sweep, S_SWEEP_S, S_SWEEP_S);
        ev_timer_start (f->gw->loop, &f->sweep);
    }
    return PM_OK;
}
