/* client.c - DEALER client with request ids, timeouts and retry. */
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"

#include <sodium.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct pm_client {
    void *zctx;
    bool own_ctx;
    void *sock;
};

pm_client_t *
pm_client_new (void *zctx, const char *endpoint)
{
    pm_client_t *c = calloc (1, sizeof *c);
    if (!c)
        return NULL;
    c->own_ctx = zctx == NULL;
    c->zctx = zctx ? zctx : zmq_ctx_new ();
    c->sock = zmq_socket (c->zctx, ZMQ_DEALER);
    int linger = 0, hwm = 100000;
    zmq_setsockopt (c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect (c->sock, endpoint) != 0) {
        pm_client_destroy (&c);
        return NULL;
    }
    return c;
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

int
pm_client_send (pm_client_t *c, const Pm__V1__Request *req)
{
    size_t len = pm__v1__request__get_packed_size (req);
    void *buf = malloc (len ? len : 1);
    if (!buf)
        return PM_ENOMEM;
    pm__v1__request__pack (req, buf);
    int rc = PM_OK;
    if (zmq_send (c->sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send (c->sock, buf, len, 0) < 0)
        rc = PM_EIO;
    free (buf);
    return rc;
}

int
pm_client_recv (pm_client_t *c, int timeout_ms, Pm__V1__Reply **reply)
{
    zmq_pollitem_t item = { c->sock, 0, ZMQ_POLLIN, 0 };
    *reply = NULL;
    int64_t deadline = pm_mono_ms () + timeout_ms;
    for (;;) {
        int64_t left = deadline - pm_mono_ms ();
        if (left < 0)
            left = 0;
        int n = zmq_poll (&item, 1, (long) left);
        if (n < 0)
            return PM_EIO;
        if (n == 0)
            return PM_ETIMEDOUT;
        zmq_msg_t a, b;
        zmq_msg_init (&a);
        zmq_msg_init (&b);
        int rc = PM_EPROTO;
        if (zmq_msg_recv (&a, c->sock, 0) >= 0 && zmq_msg_more (&a) && zmq_msg_recv (&b, c->sock, 0) >= 0) {
            *reply = pm__v1__reply__unpack (NULL, zmq_msg_size (&b), zmq_msg_data (&b));
            if (*reply)
                rc = PM_OK;
        }
        zmq_msg_close (&a);
        zmq_msg_close (&b);
        return rc;
    }
}

int
pm_client_call (pm_client_t *c, const Pm__V1__Request *req, int timeout_ms, int retry_ms,
                Pm__V1__Reply **reply)
{
    int64_t deadline = pm_mono_ms () + timeout_ms;
    *reply = NULL;
    for (;;) {
        int rc = pm_client_send (c, req);
        if (rc != PM_OK)
            return rc;
        int64_t resend = pm_mono_ms () + retry_ms;
        for (;;) {
            int64_t now = pm_mono_ms ();
            if (now >= deadline)
                return PM_ETIMEDOUT;
            int64_t wait = (resend < deadline ? resend : deadline) - now;
            rc = pm_client_recv (c, (int) wait, reply);
            if (rc == PM_ETIMEDOUT) {
                if (pm_mono_ms () >= deadline)
                    return PM_ETIMEDOUT;
                break; /* resend: same id, so the daemon applies it at most once */
            }
            if (rc != PM_OK)
                return rc;
            if (strcmp ((*reply)->id, req->id) == 0)
                return PM_OK;
            pm__v1__reply__free_unpacked (*reply, NULL); /* an answer to an earlier try */
            *reply = NULL;
        }
    }
}
