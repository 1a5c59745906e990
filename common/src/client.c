/* client.c - DEALER clients, request ids, and requests in flight.
 *
 * The in-flight set keeps each request three ways: in a hash table by
 * (client, id), to match a reply in O(1) with hundreds in flight (pm-bench
 * keeps 512); in a list by the time its last copy went out, oldest first, so
 * the requests due for a resend are found at the head (one retry_ms for the
 * whole set keeps that list in order); and, when it has a deadline, in a list
 * by deadline, soonest first. Each request keeps its packed bytes, so a
 * resend is the same frame with the same id. */
#include "pm/client.h"
#include "pm/curve.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/mem.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct pm_client {
    void *zctx;
    bool own_ctx;
    void *sock;
};

static pm_client_t *
s_new (void *zctx, const char *endpoint, const pm_config_t *cfg, const char *daemon, const char *secret_file)
{
    pm_client_t *c = pm_xcalloc (1, sizeof *c);
    c->own_ctx = zctx == NULL;
    c->zctx = zctx ? zctx : zmq_ctx_new ();
    c->sock = c->zctx ? zmq_socket (c->zctx, ZMQ_DEALER) : NULL;
    if (!c->sock)
        goto fail;
    int linger = 0, hwm = 100000;
    zmq_setsockopt (c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (cfg && pm_curve_client (cfg, daemon, secret_file, c->sock) != PM_OK)
        goto fail;
    if (!endpoint || zmq_connect (c->sock, endpoint) != 0)
        goto fail;
    return c;
fail:
    pm_client_destroy (&c);
    return NULL;
}

pm_client_t *
pm_client_new (void *zctx, const char *endpoint)
{
    return s_new (zctx, endpoint, NULL, NULL, NULL);
}

pm_client_t *
pm_client_new_daemon (void *zctx, const pm_config_t *cfg, const char *daemon, const char *secret_file)
{
    return s_new (zctx, pm_config_get (cfg, daemon, "command", NULL), cfg, daemon, secret_file);
}

void
pm_client_destroy (pm_client_t **p)
{
    if (!p || !*p)
        return;
    pm_client_t *c = *p;
    if (c->sock)
        zmq_close (c->sock);
    if (c->own_ctx && c->zctx)
        zmq_ctx_term (c->zctx);
    free (c);
    *p = NULL;
}

void *
pm_client_socket (pm_client_t *c)
{
    return c->sock;
}

void
pm_request_id (char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    static int init;
    if (!init) {
        if (sodium_init () < 0)
            abort ();
        init = 1;
    }
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    unsigned char rnd[16];
    randombytes_buf (rnd, sizeof rnd);
    for (int i = 9; i >= 0; i--) { /* 10 chars of time: sorts by creation */
        out[i] = b32[ms & 31];
        ms >>= 5;
    }
    for (int i = 0; i < 16; i++)
        out[10 + i] = b32[rnd[i] & 31];
    out[26] = '\0';
}

/* Sends [empty][frame]. PM_OK or PM_EIO. */
static int
s_send_frame (void *sock, const void *frame, size_t len)
{
    if (zmq_send (sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send (sock, frame, len, 0) < 0)
        return PM_EIO;
    return PM_OK;
}

/* req packed into a new buffer (the caller's), its length in *len. */
static void *
s_pack (const Pm__V1__Request *req, size_t *len)
{
    *len = pm__v1__request__get_packed_size (req);
    void *buf = pm_xmalloc (*len ? *len : 1);
    pm__v1__request__pack (req, buf);
    return buf;
}

int
pm_client_send (pm_client_t *c, const Pm__V1__Request *req)
{
    size_t len;
    void *buf = s_pack (req, &len);
    int rc = s_send_frame (c->sock, buf, len);
    free (buf);
    return rc;
}

/* Takes one whole message from sock (flags: 0 or ZMQ_DONTWAIT). PM_OK with
 * *reply (the caller's); PM_EPROTO for a message that is not [empty][Reply]
 * (consumed and dropped); PM_ETIMEDOUT when there is none (ZMQ_DONTWAIT);
 * PM_EIO on a socket error. */
static int
s_recv_reply (void *sock, int flags, Pm__V1__Reply **reply)
{
    *reply = NULL;
    zmq_msg_t part;
    zmq_msg_init (&part);
    if (zmq_msg_recv (&part, sock, flags) < 0) {
        zmq_msg_close (&part);
        return errno == EAGAIN ? PM_ETIMEDOUT : PM_EIO;
    }
    int nparts = 1;
    bool empty_first = zmq_msg_size (&part) == 0;
    while (zmq_msg_more (&part)) { /* the parts of one message arrive together */
        zmq_msg_close (&part);
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, sock, 0) < 0) {
            zmq_msg_close (&part);
            return PM_EIO;
        }
        nparts++;
    }
    if (nparts == 2 && empty_first)
        *reply = pm__v1__reply__unpack (NULL, zmq_msg_size (&part), zmq_msg_data (&part));
    zmq_msg_close (&part);
    return *reply ? PM_OK : PM_EPROTO;
}

int
pm_client_recv (pm_client_t *c, int timeout_ms, Pm__V1__Reply **reply)
{
    *reply = NULL;
    zmq_pollitem_t item = { c->sock, 0, ZMQ_POLLIN, 0 };
    int n = zmq_poll (&item, 1, timeout_ms);
    if (n < 0)
        return PM_EIO;
    if (n == 0)
        return PM_ETIMEDOUT;
    int rc = s_recv_reply (c->sock, ZMQ_DONTWAIT, reply);
    return rc == PM_ETIMEDOUT ? PM_EPROTO : rc; /* ready, yet nothing whole: treat as bad */
}

int
pm_client_call (pm_client_t *c, const Pm__V1__Request *req, int timeout_ms, int retry_ms,
                Pm__V1__Reply **reply)
{
    *reply = NULL;
    pm_inflight_t *f = pm_inflight_new (retry_ms);
    void *user = NULL;
    int rc = pm_inflight_add (f, c, req, timeout_ms > 0 ? timeout_ms : 1, NULL);
    if (rc == PM_OK)
        rc = pm_inflight_wait (f, -1, reply, &user);
    if (rc == PM_OK && !*reply)
        rc = PM_ETIMEDOUT; /* its deadline passed */
    pm_inflight_destroy (&f);
    return rc;
}

/* --- requests in flight ------------------------------------------------------ */

typedef struct s_req s_req_t;

/* One request in flight. */
struct s_req {
    pm_client_t *client;      /* borrowed */
    char *id;
    uint32_t hash;            /* of id */
    void *frame;              /* the packed Request, resent as it is */
    size_t len;
    void *user;               /* the caller's */
    int64_t sent_ms;          /* when its last copy went out */
    int64_t deadline_ms;      /* INT64_MAX: none */
    s_req_t *bucket_next;     /* hash chain */
    s_req_t *sent_prev, *sent_next; /* by sent_ms */
    s_req_t *due_prev, *due_next;   /* by deadline_ms (only with a deadline) */
};

/* A client with requests in flight, and how many. */
typedef struct {
    pm_client_t *client;
    size_t n;
} s_sock_t;

struct pm_inflight {
    int retry_ms;
    s_req_t **buckets;        /* nbuckets, a power of two */
    size_t nbuckets;
    size_t count;             /* requests in flight */
    s_req_t *sent_head, *sent_tail; /* oldest last copy first */
    s_req_t *due_head, *due_tail;   /* soonest deadline first */
    s_sock_t *socks;          /* the clients they are on */
    size_t nsocks, sock_cap;
    zmq_pollitem_t *items;    /* sock_cap of them, for zmq_poll */
    size_t next_sock;         /* where the next read starts, so no client starves */
};

pm_inflight_t *
pm_inflight_new (int retry_ms)
{
    pm_inflight_t *f = pm_xcalloc (1, sizeof *f);
    f->retry_ms = retry_ms > 0 ? retry_ms : 1;
    f->nbuckets = 16;
    f->buckets = pm_xcalloc (f->nbuckets, sizeof *f->buckets);
    return f;
}

static void
s_req_free (s_req_t *r)
{
    free (r->id);
    free (r->frame);
    free (r);
}

void
pm_inflight_destroy (pm_inflight_t **p)
{
    if (!p || !*p)
        return;
    pm_inflight_t *f = *p;
    for (s_req_t *r = f->sent_head, *next; r; r = next) {
        next = r->sent_next;
        s_req_free (r);
    }
    free (f->buckets);
    free (f->socks);
    free (f->items);
    free (f);
    *p = NULL;
}

size_t
pm_inflight_size (const pm_inflight_t *f)
{
    return f->count;
}

/* FNV-1a. */
static uint32_t
s_hash (const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 16777619u;
    return h;
}

static s_req_t **
s_bucket (pm_inflight_t *f, uint32_t hash)
{
    return &f->buckets[hash & (f->nbuckets - 1)];
}

/* The request in flight with id on c, or NULL. */
static s_req_t *
s_find (pm_inflight_t *f, const pm_client_t *c, const char *id)
{
    uint32_t h = s_hash (id);
    for (s_req_t *r = *s_bucket (f, h); r; r = r->bucket_next)
        if (r->hash == h && r->client == c && strcmp (r->id, id) == 0)
            return r;
    return NULL;
}

/* Doubles the hash table. */
static void
s_grow (pm_inflight_t *f)
{
    s_req_t **old = f->buckets;
    size_t n = f->nbuckets;
    f->nbuckets *= 2;
    f->buckets = pm_xcalloc (f->nbuckets, sizeof *f->buckets);
    for (size_t i = 0; i < n; i++)
        for (s_req_t *r = old[i], *next; r; r = next) {
            next = r->bucket_next;
            s_req_t **b = s_bucket (f, r->hash);
            r->bucket_next = *b;
            *b = r;
        }
    free (old);
}

static void
s_sent_append (pm_inflight_t *f, s_req_t *r)
{
    r->sent_next = NULL;
    r->sent_prev = f->sent_tail;
    if (f->sent_tail)
        f->sent_tail->sent_next = r;
    else
        f->sent_head = r;
    f->sent_tail = r;
}

static void
s_sent_unlink (pm_inflight_t *f, s_req_t *r)
{
    if (r->sent_prev)
        r->sent_prev->sent_next = r->sent_next;
    else
        f->sent_head = r->sent_next;
    if (r->sent_next)
        r->sent_next->sent_prev = r->sent_prev;
    else
        f->sent_tail = r->sent_prev;
}

/* Puts r in deadline order, searching from the end: with one timeout for
 * all, a new request goes last. */
static void
s_due_insert (pm_inflight_t *f, s_req_t *r)
{
    s_req_t *after = f->due_tail;
    while (after && after->deadline_ms > r->deadline_ms)
        after = after->due_prev;
    r->due_prev = after;
    r->due_next = after ? after->due_next : f->due_head;
    if (r->due_next)
        r->due_next->due_prev = r;
    else
        f->due_tail = r;
    if (after)
        after->due_next = r;
    else
        f->due_head = r;
}

static void
s_due_unlink (pm_inflight_t *f, s_req_t *r)
{
    if (r->due_prev)
        r->due_prev->due_next = r->due_next;
    else
        f->due_head = r->due_next;
    if (r->due_next)
        r->due_next->due_prev = r->due_prev;
    else
        f->due_tail = r->due_prev;
}

/* Counts one more request on c. */
static void
s_sock_ref (pm_inflight_t *f, pm_client_t *c)
{
    for (size_t i = 0; i < f->nsocks; i++)
        if (f->socks[i].client == c) {
            f->socks[i].n++;
            return;
        }
    if (f->nsocks == f->sock_cap) {
        f->sock_cap = f->sock_cap ? f->sock_cap * 2 : 4;
        f->socks = pm_xrealloc (f->socks, f->sock_cap * sizeof *f->socks);
        f->items = pm_xrealloc (f->items, f->sock_cap * sizeof *f->items);
    }
    f->socks[f->nsocks++] = (s_sock_t) { c, 1 };
}

/* Counts one request less on c; forgets c at none. */
static void
s_sock_unref (pm_inflight_t *f, pm_client_t *c)
{
    for (size_t i = 0; i < f->nsocks; i++)
        if (f->socks[i].client == c) {
            if (--f->socks[i].n == 0)
                f->socks[i] = f->socks[--f->nsocks];
            return;
        }
}

/* Takes r out of the set and frees it; returns its user pointer. */
static void *
s_remove (pm_inflight_t *f, s_req_t *r)
{
    s_req_t **p = s_bucket (f, r->hash);
    while (*p != r)
        p = &(*p)->bucket_next;
    *p = r->bucket_next;
    s_sent_unlink (f, r);
    if (r->deadline_ms != INT64_MAX)
        s_due_unlink (f, r);
    s_sock_unref (f, r->client);
    f->count--;
    void *user = r->user;
    s_req_free (r);
    return user;
}

int
pm_inflight_add (pm_inflight_t *f, pm_client_t *c, const Pm__V1__Request *req, int timeout_ms, void *user)
{
    const char *id = req->id ? req->id : "";
    if (s_find (f, c, id))
        return PM_EEXIST;
    s_req_t *r = pm_xcalloc (1, sizeof *r);
    r->frame = s_pack (req, &r->len);
    if (s_send_frame (c->sock, r->frame, r->len) != PM_OK) {
        free (r->frame);
        free (r);
        return PM_EIO;
    }
    r->client = c;
    r->id = pm_xstrdup (id);
    r->hash = s_hash (id);
    r->user = user;
    r->sent_ms = pm_mono_ms ();
    r->deadline_ms = timeout_ms > 0 ? r->sent_ms + timeout_ms : INT64_MAX;
    if (f->count >= f->nbuckets)
        s_grow (f);
    s_req_t **b = s_bucket (f, r->hash);
    r->bucket_next = *b;
    *b = r;
    s_sent_append (f, r);
    if (r->deadline_ms != INT64_MAX)
        s_due_insert (f, r);
    s_sock_ref (f, c);
    f->count++;
    return PM_OK;
}

/* Reads what has arrived on the clients, dropping replies to nothing in
 * flight, until one matches. True with *reply and *user set; false when
 * nothing more is waiting (or a socket failed: the next poll says so). */
static bool
s_take_reply (pm_inflight_t *f, Pm__V1__Reply **reply, void **user)
{
    for (size_t k = 0; k < f->nsocks; k++) {
        size_t i = (f->next_sock + k) % f->nsocks;
        pm_client_t *c = f->socks[i].client;
        for (;;) {
            Pm__V1__Reply *r = NULL;
            int rc = s_recv_reply (c->sock, ZMQ_DONTWAIT, &r);
            if (rc == PM_EPROTO)
                continue; /* not a Reply: dropped (its request is resent in time) */
            if (rc != PM_OK)
                break;
            s_req_t *q = s_find (f, c, r->id);
            if (!q) {
                pm__v1__reply__free_unpacked (r, NULL); /* a second answer, or a stranger's */
                continue;
            }
            f->next_sock = i + 1;
            *user = s_remove (f, q);
            *reply = r;
            return true;
        }
    }
    return false;
}

/* Sends again every request whose last copy went out retry_ms ago. */
static void
s_resend (pm_inflight_t *f, int64_t now)
{
    while (f->sent_head && f->sent_head->sent_ms + f->retry_ms <= now) {
        s_req_t *r = f->sent_head;
        s_send_frame (r->client->sock, r->frame, r->len); /* if it fails, the next round tries again */
        r->sent_ms = now;
        s_sent_unlink (f, r);
        s_sent_append (f, r);
    }
}

int
pm_inflight_wait (pm_inflight_t *f, int timeout_ms, Pm__V1__Reply **reply, void **user)
{
    *reply = NULL;
    *user = NULL;
    int64_t end = timeout_ms < 0 ? INT64_MAX : pm_mono_ms () + timeout_ms;
    for (;;) {
        if (f->count == 0)
            return PM_ETIMEDOUT;
        if (s_take_reply (f, reply, user))
            return PM_OK;
        int64_t now = pm_mono_ms ();
        if (f->due_head && f->due_head->deadline_ms <= now) {
            *user = s_remove (f, f->due_head); /* given up: no reply */
            return PM_OK;
        }
        s_resend (f, now);
        if (now >= end)
            return PM_ETIMEDOUT;
        int64_t wake = f->sent_head->sent_ms + f->retry_ms;
        if (f->due_head && f->due_head->deadline_ms < wake)
            wake = f->due_head->deadline_ms;
        if (end < wake)
            wake = end;
        for (size_t i = 0; i < f->nsocks; i++)
            f->items[i] = (zmq_pollitem_t) { f->socks[i].client->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (f->items, (int) f->nsocks, (long) (wake > now ? wake - now : 0)) < 0)
            return PM_EIO;
    }
}
