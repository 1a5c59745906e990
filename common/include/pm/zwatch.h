/* pm/zwatch.h - a ZeroMQ socket as one libev watcher.
 *
 * ZMQ_FD is edge-triggered and only says "look at ZMQ_EVENTS": after any send
 * or receive the socket's readiness may change with no new edge on the fd. So,
 * as flux-core's zwatcher does, a prepare watcher checks ZMQ_EVENTS before the
 * loop blocks and, if the socket is already readable, starts an idle watcher
 * so the loop does not block; the check watcher then calls back. The io
 * watcher on ZMQ_FD wakes the loop for new edges. The callback must drain
 * (receive until EAGAIN or a bound); if it stops early, it is called again. */
#ifndef PM_ZWATCH_H
#define PM_ZWATCH_H

#include <ev.h>

typedef struct pm_zwatch pm_zwatch_t;
typedef void (*pm_zwatch_fn) (pm_zwatch_t *w, void *sock, void *arg);

/* Watches sock (borrowed) for readability on loop. Caller owns the watcher. */
pm_zwatch_t *pm_zwatch_new (struct ev_loop *loop, void *sock, pm_zwatch_fn fn, void *arg);
void pm_zwatch_start (pm_zwatch_t *w);
void pm_zwatch_stop (pm_zwatch_t *w);
void pm_zwatch_destroy (pm_zwatch_t **p);

#endif
