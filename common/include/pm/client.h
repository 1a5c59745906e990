/* pm/client.h - a DEALER client for a daemon's ROUTER, and many requests in
 * flight on such clients.
 *
 * Frames: [empty][Request] out, [empty][Reply] back (REQ-compatible). Replies
 * are matched to requests by Reply.id, so many requests can be in flight on
 * one DEALER. A request that waited too long is resent as it was, same id:
 * the daemon answers a retry from its stored first reply, so a write is
 * applied at most once however often it is resent. */
#ifndef PM_CLIENT_H
#define PM_CLIENT_H

#include "pm/config.h"
#include "pm/proto.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pm_client pm_client_t;

/* Connects to endpoint with a context of its own (zctx NULL) or the given one
 * (borrowed; it must outlive the client). NULL if the endpoint is unusable. */
pm_client_t *pm_client_new (void *zctx, const char *endpoint);
void pm_client_destroy (pm_client_t **p);
/* A client of daemon (its [daemon] command endpoint from cfg), speaking
 * CurveZMQ with the key pair in secret_file when the daemon's
 * curve_public_key is set (pm/curve.h). NULL (logged) on failure. */
pm_client_t *pm_client_new_daemon (void *zctx, const pm_config_t *cfg, const char *daemon, const char *secret_file);

/* A new time-ordered request id ("01JD3...": 48-bit ms + random, Crockford base32). */
void pm_request_id (char out[27]);

/* Sends req (packed at once, not kept). PM_OK or PM_EIO. */
int pm_client_send (pm_client_t *c, const Pm__V1__Request *req);
/* Waits up to timeout_ms for any reply, whatever its id. *reply is the
 * caller's (pm__v1__reply__free_unpacked (r, NULL)). PM_ETIMEDOUT, PM_EPROTO
 * (a message that is not [empty][Reply]: dropped), PM_EIO. */
int pm_client_recv (pm_client_t *c, int timeout_ms, Pm__V1__Reply **reply);
/* Sends req and waits for its own reply (others are dropped), resending it
 * every retry_ms until timeout_ms passed: a pm_inflight_t of one. *reply is
 * the caller's. PM_OK, PM_ETIMEDOUT, PM_EIO. */
int pm_client_call (pm_client_t *c, const Pm__V1__Request *req, int timeout_ms, int retry_ms,
                    Pm__V1__Reply **reply);
/* The DEALER socket (for zmq_poll). Borrowed. */
void *pm_client_socket (pm_client_t *c);

/* --- requests in flight ------------------------------------------------------
 *
 * A pm_inflight_t holds the requests sent and not yet answered, on one client
 * or on several (a fan-out asks every daemon at once, each on its own DEALER).
 * pm_inflight_wait reads the replies, matches each to its request by its id
 * and the client it came on, and drops the rest (the second answer to a
 * resent request, a reply that does not decode). On the way it resends every
 * request whose last copy went out retry_ms ago, and gives up a request whose
 * deadline passed unanswered. Each request ends exactly once: answered or
 * given up, handed back with the user pointer it was added with.
 *
 * Not thread-safe: one set, and its clients, belong to one thread. */
typedef struct pm_inflight pm_inflight_t;

/* An empty set that resends a waiting request every retry_ms (at least 1). */
pm_inflight_t *pm_inflight_new (int retry_ms);
/* Forgets the requests still in flight (their user pointers stay the caller's;
 * replies to them that arrive later are dropped by whoever reads next). */
void pm_inflight_destroy (pm_inflight_t **p);

/* Sends req on c and keeps it in flight until its reply comes or, when
 * timeout_ms > 0, until timeout_ms passed (0: no deadline). req is packed at
 * once and not kept (the caller may free it on return); c is borrowed and must
 * outlive the request; user is the caller's, handed back when the request
 * ends. PM_OK; PM_EEXIST when a request with that id is in flight on c
 * already; PM_EIO when it could not be sent (nothing kept). */
int pm_inflight_add (pm_inflight_t *f, pm_client_t *c, const Pm__V1__Request *req, int timeout_ms, void *user);

/* Waits up to timeout_ms (-1: until one ends) for a request to end, resending
 * overdue ones meanwhile. PM_OK when one ended: *user is its pointer and
 * *reply its reply (the caller's: pm__v1__reply__free_unpacked), or NULL when
 * its deadline passed unanswered; it is no longer in flight. PM_ETIMEDOUT when
 * none ended in time (at once when nothing is in flight); PM_EIO when polling
 * failed (errno says why: EINTR for a signal). */
int pm_inflight_wait (pm_inflight_t *f, int timeout_ms, Pm__V1__Reply **reply, void **user);

/* The number of requests in flight. */
size_t pm_inflight_size (const pm_inflight_t *f);

#endif
