/* curl.c - libcurl multi on libev (see pm/curl.h).
 *
 * libcurl asks for sockets to be watched through s_socket_cb (one ev_io per
 * socket, its events changed in place) and for a timeout through s_timer_cb
 * (one ev_timer). Both watchers call curl_multi_socket_action, then s_reap
 * hands each finished transfer to its callback. A transfer's callback and
 * argument ride in a small struct kept as the easy handle's CURLOPT_PRIVATE. */
#include "pm/curl.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <stdlib.h>
#include <string.h>

typedef struct s_job s_job_t;
struct s_job {
    pm_curl_done_fn fn;
    void *arg;
    CURL *easy;
    s_job_t *prev, *next; /* the transfers running, for pm_curl_destroy */
};

typedef struct {
    ev_io io;
    pm_curl_t *c;
} s_sock_t;

struct pm_curl {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;
    int running;
    size_t jobs;
    s_job_t *head;
};

static void
s_unlink (pm_curl_t *c, s_job_t *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        c->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    c->jobs--;
}

static void
s_reap (pm_curl_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read (c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        s_job_t *job = NULL;
        curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &job);
        curl_multi_remove_handle (c->multi, easy);
        if (job) {
            s_unlink (c, job);
            pm_curl_done_fn fn = job->fn;
            void *arg = job->arg;
            free (job);
            curl_easy_setopt (easy, CURLOPT_PRIVATE, NULL);
            fn (easy, rc, arg);
        }
    }
}

static void
s_action (pm_curl_t *c, curl_socket_t fd, int events)
{
    curl_multi_socket_action (c->multi, fd, events, &c->running);
    s_reap (c);
}

static void
s_io_cb (struct ev_loop *loop, ev_io *w, int revents)
{
    s_sock_t *s = (s_sock_t *) w;
    int ev = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    s_action (s->c, w->fd, ev);
}

static void
s_timeout_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    s_action (w->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl wants, or stop. */
static int
s_socket_cb (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    pm_curl_t *c = userp;
    s_sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop (c->loop, &s->io);
            free (s);
            curl_multi_assign (c->multi, fd, NULL);
        }
        return 0;
    }
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!s) {
        s = pm_xcalloc (1, sizeof *s);
        s->c = c;
        curl_multi_assign (c->multi, fd, s);
    }
    else
        ev_io_stop (c->loop, &s->io);
    ev_io_init (&s->io, s_io_cb, fd, events);
    ev_io_start (c->loop, &s->io);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: call back after timeout_ms (-1: no timer). */
static int
s_timer_cb (CURLM *multi, long timeout_ms, void *userp)
{
    pm_curl_t *c = userp;
    ev_timer_stop (c->loop, &c->timer);
    if (timeout_ms >= 0) {
        ev_timer_set (&c->timer, (double) timeout_ms / 1000.0, 0.0);
        ev_timer_start (c->loop, &c->timer);
    }
    return 0;
}

pm_curl_t *
pm_curl_new (struct ev_loop *loop)
{
    static int global;
    if (!global) {
        if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            pm_error ("libcurl failed to initialise");
            return NULL;
        }
        global = 1;
    }
    pm_curl_t *c = pm_xcalloc (1, sizeof *c);
    c->loop = loop;
    c->multi = curl_multi_init ();
    if (!c->multi) {
        free (c);
        pm_error ("libcurl: cannot create a multi handle");
        return NULL;
    }
    ev_timer_init (&c->timer, s_timeout_cb, 0.0, 0.0);
    c->timer.data = c;
    curl_multi_setopt (c->multi, CURLMOPT_SOCKETFUNCTION, s_socket_cb);
    curl_multi_setopt (c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt (c->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt (c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

void
pm_curl_destroy (pm_curl_t **p)
{
    if (!p || !*p)
        return;
    pm_curl_t *c = *p;
    ev_timer_stop (c->loop, &c->timer);
    while (c->head) {
        s_job_t *job = c->head;
        s_unlink (c, job);
        curl_multi_remove_handle (c->multi, job->easy); /* stops its socket watchers too */
        curl_easy_cleanup (job->easy);
        free (job);
    }
    curl_multi_cleanup (c->multi);
    free (c);
    *p = NULL;
}

int
pm_curl_add (pm_curl_t *c, CURL *easy, pm_curl_done_fn fn, void *arg)
{
    s_job_t *job = pm_xmalloc (sizeof *job);
    job->fn = fn;
    job->arg = arg;
    job->easy = easy;
    job->prev = NULL;
    curl_easy_setopt (easy, CURLOPT_PRIVATE, job);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    if (curl_multi_add_handle (c->multi, easy) != CURLM_OK) {
        curl_easy_setopt (easy, CURLOPT_PRIVATE, NULL);
        free (job);
        return PM_EIO;
    }
    job->next = c->head;
    if (c->head)
        c->head->prev = job;
    c->head = job;
    c->jobs++;
    return PM_OK; /* libcurl calls s_timer_cb at once: the transfer starts on the loop */
}

size_t
pm_curl_running (const pm_curl_t *c)
{
    return c->jobs;
}
