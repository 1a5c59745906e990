/* http_int.h - what server.c and sse.c share: the server, one request's
 * state, and the helpers that answer. */
#ifndef GATEWAY_HTTP_INT_H
#define GATEWAY_HTTP_INT_H

#include "gateway.h"

#include <microhttpd.h>

typedef struct gw_stream gw_stream_t;
typedef struct gw_req gw_req_t;

#define GW_NCODES 12

struct gw_http {
    gw_t *gw;
    struct MHD_Daemon *mhd;
    ev_io io;               /* libmicrohttpd's epoll fd */
    ev_timer timer;         /* libmicrohttpd's own timeout (0: it has ready connections) */
    ev_timer keepalive;     /* idle SSE streams get a comment */
    ev_idle more;           /* SSE streams whose last fill stopped at its bound read on */
    uint16_t port;
    char url[96];
    bool tls;
    bool stopping;
    bool resumed;           /* a connection was resumed: run libmicrohttpd before blocking */
    char *cert, *key;       /* PEM text, kept for libmicrohttpd */
    pm_arena_t *arena;      /* what a request's reads decode into; reset after each */
    gw_stream_t *streams;   /* open SSE streams */
    size_t nstreams;
    gw_req_t *waiting;      /* API calls suspended until their reply */
    pm_metric_t *codes[GW_NCODES];
    pm_metric_t *code_other;
};

/* One HTTP request (MHD's req_cls), from its first call to its completion. */
struct gw_req {
    gw_http_t *h;
    struct MHD_Connection *conn;
    char *body;
    size_t body_len, body_cap;
    bool too_big;
    bool suspended;
    bool ready;             /* the answer is here (after a resume): queue it */
    unsigned code;
    char *resp;             /* malloc'd JSON */
    bool retry_after;
    char key[208];          /* Idempotency-Key as sent (or made) */
    char method[128];       /* forwarded: the method */
    int64_t t0_us;
    gw_req_t *prev, *next;  /* in h->waiting while suspended */
};

/* Counts a response by its status code. */
void gw_http_count (gw_http_t *h, unsigned code);
/* Answers a JSON error {"status": status, "message": ...} with code. */
enum MHD_Result gw_http_error (gw_http_t *h, struct MHD_Connection *c, unsigned code, const char *status,
                               const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
/* Checks the Authorization header: true with the token's name and role, or
 * false after answering 401 (counted). */
bool gw_http_auth (gw_http_t *h, struct MHD_Connection *c, char *name, size_t size, int *role,
                   enum MHD_Result *rc);
/* Answers 403 (counted) with why. */
enum MHD_Result gw_http_forbidden (gw_http_t *h, struct MHD_Connection *c, const char *why);

/* sse.c: answers GET /v1/events for the token name (any role). */
enum MHD_Result gw_sse_start (gw_http_t *h, struct MHD_Connection *c, const char *actor);
/* sse.c: keepalive watcher. */
void gw_sse_keepalive_cb (struct ev_loop *loop, ev_timer *w, int revents);
/* sse.c: reads on for streams that stopped at a bound (an idle watcher). */
void gw_sse_more_cb (struct ev_loop *loop, ev_idle *w, int revents);
/* sse.c: ends every stream (server stopping). */
void gw_sse_stop_all (gw_http_t *h);

#endif
