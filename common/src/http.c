/* http.c - GET /metrics with libmicrohttpd on the daemon's libev loop. */
#include "pm/http.h"
#include "pm/mem.h"
#include "pm/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pm_http {
    struct ev_loop *loop;
    struct MHD_Daemon *mhd;
    ev_io io;
    pm_http_metrics_fn fn;
    void *arg;
    uint16_t port;
};

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **req_cls)
{
    pm_http_t *h = cls;
    struct MHD_Response *resp;
    unsigned code = MHD_HTTP_OK;
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
        static const char msg[] = "only GET /metrics is served here\n";
        resp = MHD_create_response_from_buffer (sizeof msg - 1, (void *) msg, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
    }
    else if (strcmp (url, "/metrics") != 0) {
        static const char msg[] = "not found: metrics are at /metrics\n";
        resp = MHD_create_response_from_buffer (sizeof msg - 1, (void *) msg, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_NOT_FOUND;
    }
    else {
        char *body = h->fn (h->arg);
        if (!body) {
            static const char msg[] = "metrics unavailable\n";
            resp = MHD_create_response_from_buffer (sizeof msg - 1, (void *) msg, MHD_RESPMEM_PERSISTENT);
            code = MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        else
            resp = MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header (resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response (conn, code, resp);
    MHD_destroy_response (resp);
    return rc;
}

static void
s_io_cb (struct ev_loop *loop, ev_io *w, int revents)
{
    pm_http_t *h = w->data;
    MHD_run (h->mhd);
}

pm_http_t *
pm_http_new (struct ev_loop *loop, const char *listen, pm_http_metrics_fn fn, void *arg)
{
    struct sockaddr_in sa;
    memset (&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    const char *colon = strrchr (listen, ':');
    char host[64];
    char *end = NULL;
    long port = colon ? strtol (colon + 1, &end, 10) : -1;
    if (!colon || (size_t) (colon - listen) >= sizeof host || !end || *end || port < 0 || port > 65535) {
        pm_error ("metrics_http = '%s': expected HOST:PORT, e.g. 127.0.0.1:9101", listen);
        return NULL;
    }
    memcpy (host, listen, (size_t) (colon - listen));
    host[colon - listen] = '\0';
    if (inet_pton (AF_INET, host, &sa.sin_addr) != 1) {
        pm_error ("metrics_http = '%s': '%s' is not an IPv4 address", listen, host);
        return NULL;
    }
    sa.sin_port = htons ((uint16_t) port);
    pm_http_t *h = pm_xcalloc (1, sizeof *h);
    h->loop = loop;
    h->fn = fn;
    h->arg = arg;
    h->mhd = MHD_start_daemon (MHD_USE_EPOLL, 0, NULL, NULL, s_answer, h, MHD_OPTION_SOCK_ADDR, &sa,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10, MHD_OPTION_END);
    if (!h->mhd) {
        pm_error ("metrics_http: cannot listen on %s (in use?)", listen);
        free (h);
        return NULL;
    }
    const union MHD_DaemonInfo *fd = MHD_get_daemon_info (h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *bp = MHD_get_daemon_info (h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = bp ? bp->port : (uint16_t) port;
    ev_io_init (&h->io, s_io_cb, fd->epoll_fd, EV_READ);
    h->io.data = h;
    ev_io_start (loop, &h->io);
    pm_info ("metrics on http://%s:%u/metrics", host, h->port);
    return h;
}

uint16_t
pm_http_port (const pm_http_t *h)
{
    return h->port;
}

void
pm_http_tick (pm_http_t *h)
{
    MHD_run (h->mhd);
}

void
pm_http_destroy (pm_http_t **p)
{
    if (!p || !*p)
        return;
    pm_http_t *h = *p;
    ev_io_stop (h->loop, &h->io);
    MHD_stop_daemon (h->mhd);
    free (h);
    *p = NULL;
}
