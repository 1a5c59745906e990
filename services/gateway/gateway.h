/* gateway.h - the gateway daemon: the daemons' HTTP/JSON face.
 *
 * It runs on the same runtime as the others (one libev loop, one LMDB) and
 * consumes every daemon's events into a log of its own, so that it can serve
 * them again over Server-Sent Events and signed webhooks with durable cursors,
 * whatever the upstreams retain. Its HTTP server (libmicrohttpd in epoll mode,
 * its fd one io watcher on the loop) forwards POST /v1/{daemon}/{method} to
 * the daemon's ROUTER on a DEALER watched by the loop, so no call blocks it.
 *
 * Parts, one file each:
 *   gateway.c   the spec: tables, routes, upstreams, timers, queues
 *   app.c       the context: config, keys, the loop's wake-ups, status, gauges
 *   log.c       the event log: consumed events, lookups, pruning, estates, unit.get
 *   tokens.c    API tokens (hashed), roles and what each may call
 *   hooks.c     webhook subscriptions: create, resume, delete, the retry ladder
 *   deliver.c   the delivery worker: signed POSTs with libcurl multi, in order
 *   fwd.c       requests to the daemons (one DEALER each), replies matched by id
 *   server.c    the HTTP server: routes, auth, bodies, responses, static board
 *   sse.c       GET /v1/events: replay then live, resumable
 *   openapi.c   GET /v1/openapi.json from the proto descriptors
 *
 * Tables (keys from pm/key.h):
 *   log             U pos                -> log entry (format in log.c)
 *   log_index       s source, U seq      -> u64 pos (big-endian)
 *   log_units       s unit_id, U pos     -> ""
 *   tokens          s name               -> pm.gateway.TokenRecord
 *   token_hashes    32-byte keyed hash   -> name
 *   webhooks        s id                 -> pm.gateway.WebhookRecord
 *   webhooks_paused s id                 -> pm.v1.QueueItem (ops.queues)
 *   estates         s estate_id          -> pm.gateway.EstateRecord */
#ifndef GATEWAY_H
#define GATEWAY_H

#include "pm/daemon.h"
#include "pm/metrics.h"
#include "gateway_store.pb-c.h"

#include <ev.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>

enum {
    GW_LOG = PM_DB_FIRST_DOMAIN,
    GW_LOG_INDEX,
    GW_LOG_UNITS,
    GW_TOKENS,
    GW_TOKEN_HASHES,
    GW_WEBHOOKS,
    GW_WEBHOOKS_PAUSED,
    GW_ESTATES,
    GW_NTABLES
};

extern const pm_daemon_spec_t gateway_spec;

/* Roles of API tokens. */
enum { GW_ROLE_OPERATOR = 0, GW_ROLE_FINANCE, GW_ROLE_INTEGRATION, GW_ROLE_ADMIN, GW_NROLES };

#define GW_HOOK_RETRY "gateway.webhook.retry"
#define GW_LOG_PRUNE "gateway.log.prune"
#define GW_MAX_DAEMONS 16

typedef struct gw_http gw_http_t;
typedef struct gw_fwd gw_fwd_t;
typedef struct gw_hooks gw_hooks_t;

/* The gateway's context (ctx->app). */
typedef struct {
    pm_daemon_t *d;
    const pm_config_t *cfg;
    struct ev_loop *loop;
    unsigned char token_key[crypto_generichash_KEYBYTES]; /* keys tokens' hashes */
    unsigned char seal_key[crypto_secretbox_KEYBYTES];    /* seals webhook secrets at rest */

    /* config ([gateway]) */
    char **reads;               /* read_methods: glob patterns any role may call */
    size_t nreads;
    int64_t max_body;           /* max_body_bytes */
    int64_t call_timeout_ms;    /* a daemon that does not answer in this long: 503 */
    int64_t retry_after_s;      /* Retry-After on 503 */
    int64_t keepalive_ms;       /* SSE comment when a stream is idle this long */
    int64_t hook_timeout_ms;    /* one webhook POST */
    int64_t pause_after_ms;     /* a failing subscription pauses after this long */
    int64_t retention_ms;       /* log entries kept this long ([general] event_retention_d) */
    char *www_dir;              /* serve the board from here instead of the embedded copy */

    /* parts (NULL in handler tests: no HTTP, no deliveries) */
    gw_http_t *http;
    gw_fwd_t *fwd;
    gw_hooks_t *hooks;
    char *openapi;              /* GET /v1/openapi.json, made once */

    /* hints handlers leave for the loop, read after the commit */
    bool log_grew;              /* new log entries: wake SSE streams and deliveries */
    bool hooks_changed;         /* subscriptions changed: the worker reloads them */
    ev_prepare prepare;

    pm_metric_t *m_auth401, *m_auth403, *m_sse_events, *m_hook_ok, *m_hook_fail, *m_call_us, *m_timeouts;
} gw_t;

/* --- app.c --------------------------------------------------------------------- */
void *gateway_app_new (pm_daemon_t *d, const pm_config_t *cfg);
void gateway_app_destroy (void *app);
void gateway_gauges (pm_ctx_t *ctx, pm_txn_t *txn);
int gateway_on_status (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* The gateway's clock (the daemon's: manual in tests). */
int64_t gw_now_ms (gw_t *gw);
/* Runs the loop-side work the handlers asked for (after a commit). */
void gw_wake (gw_t *gw);

/* --- log.c: the event log ------------------------------------------------------- */

/* One entry, pointing into the stored value (valid inside its txn). */
typedef struct {
    uint64_t pos;        /* position in the log, from 1 */
    uint64_t seq;        /* the source's seq */
    int64_t at_ms;
    const char *source;
    const char *type;
    const char *unit_id;
    const void *packed;  /* the event, packed */
    size_t packed_len;
} gw_entry_t;

int gateway_on_event (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int gateway_on_prune (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                      pm_out_t *out);
int gateway_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_estate_list (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* Decodes the entry stored at pos. PM_OK or PM_EPROTO. */
int gw_entry_parse (uint64_t pos, const void *val, size_t len, gw_entry_t *e);
/* The entry's event as JSON (pm_msg_to_json), NUL-terminated, *len bytes. Caller frees. */
char *gw_entry_json (const gw_entry_t *e, size_t *len);
/* The latest log position (0: empty). */
uint64_t gw_log_last (pm_txn_t *txn);
/* The position of source:seq; PM_ENOTFOUND when the log does not hold it. */
int gw_log_find (pm_txn_t *txn, const char *source, uint64_t seq, uint64_t *pos);
/* The position of source's first entry with a seq above after, or 0 if none. */
uint64_t gw_log_first_after (pm_txn_t *txn, const char *source, uint64_t after);
/* Whether type is selected by patterns (a type, or a prefix of whole dotted
 * parts: "billing.invoice." and "billing.invoice" both take
 * "billing.invoice.issued"); no patterns select every type. */
bool gw_types_match (char *const *patterns, size_t n, const char *type);

/* --- tokens.c -------------------------------------------------------------------- */
int gateway_on_token_create (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_token_revoke (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_token_list (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
const char *gw_role_name (int role);
/* The role named s, or -1. */
int gw_role_parse (const char *s);
/* The keyed hash of token. */
void gw_token_hash (const gw_t *gw, const char *token, unsigned char out[32]);
/* Finds token: PM_OK with its name (copied into name, size >= 64) and role;
 * PM_ENOTFOUND for an unknown or revoked one. Reads in txn. */
int gw_token_check (const gw_t *gw, pm_txn_t *txn, const char *token, char *name, size_t size, int *role);
/* Whether method is a read (matches [gateway] read_methods). */
bool gw_is_read (const gw_t *gw, const char *method);
/* Whether role may call method of daemon over HTTP; when not, *why says so
 * (static text or arena-free: written into why[0..size)). */
bool gw_allowed (const gw_t *gw, int role, const char *daemon, const char *method, char *why, size_t size);

/* --- hooks.c: subscriptions and the ladder ---------------------------------------- */
int gateway_on_hook_create (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_hook_list (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_hook_resume (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_hook_delete (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_hook_ack (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_hook_failed (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int gateway_on_hook_retry (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                           pm_out_t *out);
void gateway_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
/* The wait before retrying after the n-th failed attempt at one event (n >= 1):
 * 0 (at once), 1 min, 5 min, 30 min, 2 h, 6 h, then a day each. */
int64_t gw_ladder_ms (uint32_t failures);
/* The subscription's secret, unsealed into out (size >= 257); its length, or -1. */
int gw_hook_secret (const gw_t *gw, const Pm__Gateway__WebhookRecord *rec, char *out, size_t size);
/* Webhook-Signature for id, timestamp (seconds) and body under secret:
 * "v1," + base64 (HMAC-SHA256 (secret, "id.timestamp.body")), into out (size >= 64). */
void gw_sign (const char *secret, size_t secret_len, const char *id, int64_t ts, const char *body, size_t body_len,
              char *out, size_t size);

/* --- deliver.c: the worker -------------------------------------------------------- */
gw_hooks_t *gw_hooks_new (gw_t *gw);
void gw_hooks_destroy (gw_hooks_t **p);
/* Re-reads the subscriptions from the store (after they changed). */
void gw_hooks_reload (gw_hooks_t *h);
/* Starts the next delivery of every idle subscription (the log grew). */
void gw_hooks_kick (gw_hooks_t *h);

/* --- fwd.c: requests to the daemons ----------------------------------------------- */

/* Called once per request on the loop: reply (borrowed; freed after the call),
 * or NULL when the daemon did not answer in time. */
typedef void (*gw_reply_fn) (void *arg, const Pm__V1__Reply *reply);

gw_fwd_t *gw_fwd_new (gw_t *gw);
void gw_fwd_destroy (gw_fwd_t **p);
/* The daemons in the config (every section with a command endpoint). */
const char *const *gw_fwd_daemons (const gw_fwd_t *f, size_t *n);
bool gw_fwd_has (const gw_fwd_t *f, const char *daemon);
/* Sends req (packed now) to daemon's ROUTER; fn(arg, reply) is called once on
 * the loop, with NULL after timeout_ms. Resent with the same id every couple
 * of seconds until then. PM_OK, PM_ENOTFOUND (no such daemon), PM_EIO. */
int gw_fwd_call (gw_fwd_t *f, const char *daemon, const Pm__V1__Request *req, int64_t timeout_ms, gw_reply_fn fn,
                 void *arg);
size_t gw_fwd_inflight (const gw_fwd_t *f);
/* A request id like pm_request_id's (26 characters, time-ordered), without a
 * system call: a random prefix drawn once per process and a counter. */
void gw_request_id (char out[27]);

/* --- server.c, sse.c ------------------------------------------------------------- */
/* Starts the HTTP server on [gateway] listen ("" = off): NULL with *failed
 * false when off, NULL with *failed true (logged) when it cannot start. */
gw_http_t *gw_http_new (gw_t *gw, bool *failed);
void gw_http_destroy (gw_http_t **p);
uint16_t gw_http_port (const gw_http_t *h);
const char *gw_http_url (const gw_http_t *h);
bool gw_http_tls (const gw_http_t *h);
/* Lets libmicrohttpd work now. */
void gw_http_run (gw_http_t *h);
/* The same, if a connection was resumed since it last ran (before the loop blocks). */
void gw_http_flush (gw_http_t *h);
/* Resumes every SSE stream waiting for events (the log grew). */
void gw_http_wake_streams (gw_http_t *h);
size_t gw_http_streams (const gw_http_t *h);

/* --- openapi.c --------------------------------------------------------------------- */
/* The OpenAPI 3 document of the API, from the Request/Reply descriptors.
 * Caller frees. */
char *gw_openapi (const gw_t *gw, const char *const *daemons, size_t ndaemons);

#endif
