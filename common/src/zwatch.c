/* zwatch.c - see pm/zwatch.h for why four libev watchers make one. */
#include "pm/zwatch.h"
#include "pm/mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <zmq.h>

struct pm_zwatch {
    struct ev_loop *loop;
    void *sock;
    pm_zwatch_fn fn;
    void *arg;
    ev_prepare prepare;
    ev_check check;
    ev_idle idle;
    ev_io io;
    int started;
};

static int
s_readable (void *sock)
{
    uint32_t events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt (sock, ZMQ_EVENTS, &events, &len) != 0)
        return 0;
    return (events & ZMQ_POLLIN) != 0;
}

/* Before blocking: if messages are already queued, keep the loop from sleeping. */
static void
s_prepare_cb (struct ev_loop *loop, ev_prepare *w, int revents)
{
    pm_zwatch_t *z = w->data;
    if (s_readable (z->sock))
        ev_idle_start (loop, &z->idle);
}

/* After the poll. Check watchers run before the io and timer callbacks of
 * the same turn (libev invokes the pending ones last queued first), so
 * nothing touched the socket since the prepare looked: if it was not
 * readable then (no idle started) and its fd did not signal (io not
 * pending), it is not readable now, and asking libzmq again (two system
 * calls inside it) is skipped. A message that arrives after the poll is
 * seen by the next prepare. */
static void
s_check_cb (struct ev_loop *loop, ev_check *w, int revents)
{
    pm_zwatch_t *z = w->data;
    bool was_ready = ev_is_active (&z->idle);
    ev_idle_stop (loop, &z->idle);
    if (!was_ready && !ev_is_pending (&z->io))
        return;
    if (s_readable (z->sock))
        z->fn (z, z->sock, z->arg);
}

static void
s_noop_idle (struct ev_loop *loop, ev_idle *w, int revents)
{
}

/* The fd edge only wakes the loop; the check watcher does the work. */
static void
s_noop_io (struct ev_loop *loop, ev_io *w, int revents)
{
}

pm_zwatch_t *
pm_zwatch_new (struct ev_loop *loop, void *sock, pm_zwatch_fn fn, void *arg)
{
    int fd;
    size_t len = sizeof fd;
    if (zmq_getsockopt (sock, ZMQ_FD, &fd, &len) != 0)
        return NULL;
    pm_zwatch_t *z = pm_xcalloc (1, sizeof *z);
    z->loop = loop;
    z->sock = sock;
    z->fn = fn;
    z->arg = arg;
    ev_prepare_init (&z->prepare, s_prepare_cb);
    ev_check_init (&z->check, s_check_cb);
    ev_idle_init (&z->idle, s_noop_idle);
    ev_io_init (&z->io, s_noop_io, fd, EV_READ);
    z->prepare.data = z->check.data = z->idle.data = z->io.data = z;
    return z;
}

void
pm_zwatch_start (pm_zwatch_t *z)
{
    if (z->started)
        return;
    ev_prepare_start (z->loop, &z->prepare);
    ev_check_start (z->loop, &z->check);
    ev_io_start (z->loop, &z->io);
    z->started = 1;
}

void
pm_zwatch_stop (pm_zwatch_t *z)
{
    if (!z->started)
        return;
    ev_prepare_stop (z->loop, &z->prepare);
    ev_check_stop (z->loop, &z->check);
    ev_idle_stop (z->loop, &z->idle);
    ev_io_stop (z->loop, &z->io);
    z->started = 0;
}

void
pm_zwatch_destroy (pm_zwatch_t **p)
{
    if (!p || !*p)
        return;
    pm_zwatch_stop (*p);
    free (*p);
    *p = NULL;
}
