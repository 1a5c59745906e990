/* pm/client.h - a DEALER client for a daemon's ROUTER.
 *
 * Frames: [empty][Request] out, [empty][Reply] back (REQ-compatible). Replies
 * are matched by Reply.id, so many requests can be in flight. pm_client_call
 * resends the same request (same id: the daemon answers a retry from its
 * stored reply) until the deadline. */
#ifndef PM_CLIENT_H
#define PM_CLIENT_H

#include "pm/proto.h"

#include <stdint.h>

typedef struct pm_client pm_client_t;

/* Connects to endpoint with a context of its own (zctx NULL) or the given one. */
pm_client_t *pm_client_new (void *zctx, const char *endpoint);
void pm_client_destroy (pm_client_t **p);

/* A new time-ordered request id ("01JD3...": 48-bit ms + random, Crockford base32). */
void pm_request_id (char out[27]);

/* Sends req (not kept). */
int pm_client_send (pm_client_t *c, const Pm__V1__Request *req);
/* Waits up to timeout_ms for any reply. *reply is the caller's
 * (pm__v1__reply__free_unpacked (r, NULL)). PM_ETIMEDOUT, PM_EPROTO. */
int pm_client_recv (pm_client_t *c, int timeout_ms, Pm__V1__Reply **reply);
/* Sends req and waits for its reply, resending every retry_ms until timeout_ms. */
int pm_client_call (pm_client_t *c, const Pm__V1__Request *req, int timeout_ms, int retry_ms,
                    Pm__V1__Reply **reply);
/* The DEALER socket (for zmq_poll). */
void *pm_client_socket (pm_client_t *c);

#endif
