/* pm/http.h - the Prometheus scrape endpoint: GET /metrics over HTTP.
 *
 * libmicrohttpd in its epoll mode, with no thread of its own: its epoll fd is
 * one more io watcher on the daemon's libev loop, so the metrics are read from
 * the loop's own thread and need no lock. */
#ifndef PM_HTTP_H
#define PM_HTTP_H

#include <ev.h>
#include <stdint.h>

typedef struct pm_http pm_http_t;

/* Returns the body for GET /metrics: malloc'd text (the caller of this
 * callback frees it), or NULL on failure. */
typedef char *(*pm_http_metrics_fn) (void *arg);

/* Listens on "HOST:PORT" (IPv4; PORT 0 picks a free one) and serves
 * /metrics from fn. NULL (logged) when listen is malformed or busy. */
pm_http_t *pm_http_new (struct ev_loop *loop, const char *listen, pm_http_metrics_fn fn, void *arg);
void pm_http_destroy (pm_http_t **p);
/* The port actually bound. */
uint16_t pm_http_port (const pm_http_t *h);
/* Lets libmicrohttpd expire idle connections; call about once a second. */
void pm_http_tick (pm_http_t *h);

#endif
