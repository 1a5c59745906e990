/* pm/curl.h - libcurl's multi interface on the daemon's libev loop.
 *
 * Outgoing HTTP and SMTP (notify's gateways, the gateway's webhooks) never
 * block the loop: each transfer is a CURL easy handle added here; libcurl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one ev_io each)
 * and when to call it back (CURLMOPT_TIMERFUNCTION -> one ev_timer), as in
 * curl's own multi-with-libev example. When a transfer ends, its callback runs
 * on the loop with the result; the loop keeps answering while transfers hang. */
#ifndef PM_CURL_H
#define PM_CURL_H

#include <curl/curl.h>
#include <ev.h>
#include <stddef.h>

typedef struct pm_curl pm_curl_t;

/* Called on the loop when a transfer ends (rc CURLE_OK or the error). The
 * easy handle has been removed from the multi handle and is the callback's
 * to clean up (curl_easy_cleanup) or reuse. */
typedef void (*pm_curl_done_fn) (CURL *easy, CURLcode rc, void *arg);

/* A multi handle driven by loop (borrowed). NULL (logged) on failure. */
pm_curl_t *pm_curl_new (struct ev_loop *loop);
/* Aborts the transfers still running (their callbacks are not called; their
 * easy handles are cleaned up) and frees everything. Safe on NULL. */
void pm_curl_destroy (pm_curl_t **p);
/* Starts easy (configured by the caller: URL, options, private data); fn(arg)
 * is called once when it ends. PM_OK, or PM_EIO when libcurl refused it (then
 * the easy handle is still the caller's). */
int pm_curl_add (pm_curl_t *c, CURL *easy, pm_curl_done_fn fn, void *arg);
/* Transfers running. */
size_t pm_curl_running (const pm_curl_t *c);

#endif
