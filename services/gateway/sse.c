/* sse.c - GET /v1/events: the gateway's log as Server-Sent Events.
 *
 *   GET /v1/events?sources=intake,billing&types=billing.invoice.&from=intake:120,billing:7
 *   Last-Event-ID: billing:9
 *
 * Each event is `id: SOURCE:SEQ` and `data: {the event as JSON}`. The stream
 * replays the log from its starting point, then follows it live: it is one
 * libmicrohttpd response fed by a content reader, which fills from the log
 * and, when it has nothing more, suspends the connection; a commit that
 * grows the log resumes every suspended stream (app.c, after the commit).
 *
 * Where a stream starts:
 *   - Last-Event-ID (the header EventSource sends back on reconnect, or the
 *     last_event_id parameter): just after that event's log position. The log
 *     is one total order (log.c), so that single id resumes every source.
 *   - from=SOURCE:SEQ,...: every retained event of the selected sources whose
 *     seq is above the one given for its source (a source not named: from its
 *     first retained event). With Last-Event-ID too, both apply.
 *   - neither: live, from the next event.
 * An idle stream gets a `: keepalive` comment every [gateway] sse_keepalive_s,
 * which is also how a client that went away is noticed. */
#define _GNU_SOURCE
#include "http_int.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FILL_BYTES (256u << 10)
#define S_FILL_ENTRIES 4096
#define S_MAX_TYPES 32

struct gw_stream {
    gw_http_t *h;
    struct MHD_Connection *conn;
    gw_stream_t *prev, *next;
    uint64_t next_pos;                /* the next log position to look at */
    bool want[GW_MAX_DAEMONS];        /* by upstream index; all true when no sources= */
    bool floored[GW_MAX_DAEMONS];
    uint64_t floor[GW_MAX_DAEMONS];   /* from=: skip seqs at or below */
    char *types[S_MAX_TYPES];
    size_t ntypes;
    char *out;                        /* bytes formatted, not yet handed to libmicrohttpd */
    size_t out_len, out_off, out_cap;
    bool suspended;
    bool more;                        /* the last fill stopped at its bound: the log goes on */
    int64_t last_write_ms;
    char actor[64];
};

static int
s_upstream (const char *name, size_t len)
{
    for (int i = 0; gateway_spec.upstreams[i].source; i++)
        if (strlen (gateway_spec.upstreams[i].source) == len && memcmp (gateway_spec.upstreams[i].source, name, len) == 0)
            return i;
    return -1;
}

static void
s_append (gw_stream_t *s, const char *data, size_t len)
{
    if (s->out_len + len > s->out_cap) {
        s->out_cap = (s->out_len + len) * 2;
        s->out = pm_xrealloc (s->out, s->out_cap);
    }
    memcpy (s->out + s->out_len, data, len);
    s->out_len += len;
}

/* Formats the next matching entries of the log into s->out. */
static void
s_fill (gw_stream_t *s)
{
    gw_t *gw = s->h->gw;
    pm_txn_t t;
    if (pm_txn_begin_read (&t, pm_daemon_store (gw->d)) != PM_OK)
        return;
    pm_scan_t sc;
    pm_key_t from;
    size_t looked = 0, written = 0;
    for (pm_scan_range (&sc, &t, GW_LOG, pm_key (&from, "U", s->next_pos), NULL);
         sc.ok && looked < S_FILL_ENTRIES && s->out_len < S_FILL_BYTES; pm_scan_next (&sc)) {
        looked++;
        gw_entry_t e;
        uint64_t pos = pm_be_u64 (sc.key.mv_data);
        s->next_pos = pos + 1;
        if (gw_entry_parse (pos, sc.val.mv_data, sc.val.mv_size, &e) != PM_OK)
            continue;
        int src = s_upstream (e.source, strlen (e.source));
        if (src < 0 || !s->want[src] || (s->floored[src] && e.seq <= s->floor[src]))
            continue;
        if (!gw_types_match (s->types, s->ntypes, e.type))
            continue;
        char head[160];
        int n = snprintf (head, sizeof head, "id: %s:%llu\ndata: ", e.source, (unsigned long long) e.seq);
        s_append (s, head, (size_t) n);
        size_t jlen;
        char *json = gw_entry_json (&e, &jlen);
        s_append (s, json, jlen);
        free (json);
        s_append (s, "\n\n", 2);
        written++;
    }
    s->more = sc.ok; /* stopped at a bound, not at the end */
    pm_scan_end (&sc);
    pm_txn_abort (&t);
    if (written)
        pm_metric_inc (gw->m_sse_events, (double) written);
}

static ssize_t
s_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    gw_stream_t *s = cls;
    if (s->h->stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (s->out_off == s->out_len) {
        s->out_off = s->out_len = 0;
        s_fill (s);
    }
    int64_t now = pm_mono_ms ();
    if (s->out_off == s->out_len) {
        if (s->more || now - s->last_write_ms < s->h->gw->keepalive_ms) {
            /* nothing for this client now: wait for the log to grow, or, when
             * the fill stopped at its bound among entries it does not want,
             * for the loop's next idle moment to read on (gw_sse_more_cb) */
            MHD_suspend_connection (s->conn);
            s->suspended = true;
            if (s->more)
                ev_idle_start (s->h->gw->loop, &s->h->more);
            return 0;
        }
        s_append (s, ": keepalive\n\n", 13);
    }
    size_t n = s->out_len - s->out_off;
    if (n > max)
        n = max;
    memcpy (buf, s->out + s->out_off, n);
    s->out_off += n;
    s->last_write_ms = now;
    return (ssize_t) n;
}

static void
s_free (void *cls)
{
    gw_stream_t *s = cls;
    gw_http_t *h = s->h;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->nstreams--;
    pm_info ("gateway: event stream of %s closed", s->actor);
    for (size_t i = 0; i < s->ntypes; i++)
        free (s->types[i]);
    free (s->out);
    free (s);
}

static void
s_resume (gw_stream_t *s)
{
    if (!s->suspended)
        return;
    s->suspended = false;
    MHD_resume_connection (s->conn);
    s->h->resumed = true;
}

void
gw_http_wake_streams (gw_http_t *h)
{
    for (gw_stream_t *s = h->streams; s; s = s->next)
        s_resume (s);
}

size_t
gw_http_streams (const gw_http_t *h)
{
    return h->nstreams;
}

void
gw_sse_more_cb (struct ev_loop *loop, ev_idle *w, int revents)
{
    gw_http_t *h = w->data;
    ev_idle_stop (loop, w);
    for (gw_stream_t *s = h->streams; s; s = s->next)
        if (s->more)
            s_resume (s);
    gw_http_run (h);
}

void
gw_sse_keepalive_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
    gw_http_t *h = w->data;
    int64_t now = pm_mono_ms ();
    for (gw_stream_t *s = h->streams; s; s = s->next)
        if (s->suspended && now - s->last_write_ms >= h->gw->keepalive_ms)
            s_resume (s);
    gw_http_flush (h);
}

void
gw_sse_stop_all (gw_http_t *h)
{
    for (gw_stream_t *s = h->streams; s; s = s->next)
        s_resume (s);
}

/* --- starting a stream ------------------------------------------------------------------ */

/* "SOURCE:SEQ" -> upstream index and seq; false if it is not one. */
static bool
s_event_id (const char *text, size_t len, int *src, uint64_t *seq)
{
    const char *colon = memchr (text, ':', len);
    if (!colon || colon == text || colon + 1 == text + len)
        return false;
    *src = s_upstream (text, (size_t) (colon - text));
    if (*src < 0)
        return false;
    uint64_t v = 0;
    for (const char *p = colon + 1; p < text + len; p++) {
        if (*p < '0' || *p > '9' || v > UINT64_MAX / 10)
            return false;
        v = v * 10 + (uint64_t) (*p - '0');
    }
    *seq = v;
    return true;
}

static const char *
s_sources_list (void)
{
    return "intake, inspection, workorder, billing, notify";
}

enum MHD_Result
gw_sse_start (gw_http_t *h, struct MHD_Connection *c, const char *actor)
{
    gw_t *gw = h->gw;
    const char *sources = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "sources");
    const char *types = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "types");
    const char *from = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "from");
    const char *lei = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Last-Event-ID");
    if (!lei || !*lei)
        lei = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "last_event_id");

    gw_stream_t *s = pm_xcalloc (1, sizeof *s);
    s->h = h;
    s->conn = c;
    snprintf (s->actor, sizeof s->actor, "%s", actor);
    enum MHD_Result rc;
    for (int i = 0; i < GW_MAX_DAEMONS; i++)
        s->want[i] = !sources || !*sources;
    for (const char *p = sources; p && *p;) {
        size_t n = strcspn (p, ",");
        int src = s_upstream (p, n);
        if (src < 0 && n) {
            rc = gw_http_error (h, c, 400, "INVALID", "sources: '%.*s' is not a daemon with events; expected some of %s",
                                (int) n, p, s_sources_list ());
            goto refused;
        }
        if (src >= 0)
            s->want[src] = true;
        p += n + (p[n] == ',');
    }
    for (const char *p = types; p && *p;) {
        size_t n = strcspn (p, ",");
        if (n) {
            bool ok = n <= 128;
            for (size_t i = 0; i < n && ok; i++)
                ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == '_';
            if (!ok || s->ntypes == S_MAX_TYPES) {
                rc = gw_http_error (h, c, 400, "INVALID",
                                    "types: '%.*s' is not an event type or prefix (at most %d), e.g. billing.invoice.",
                                    (int) (n > 64 ? 64 : n), p, S_MAX_TYPES);
                goto refused;
            }
            s->types[s->ntypes++] = pm_xstrndup (p, n);
        }
        p += n + (p[n] == ',');
    }
    for (const char *p = from; p && *p;) {
        size_t n = strcspn (p, ",");
        int src;
        uint64_t seq;
        if (n && !s_event_id (p, n, &src, &seq)) {
            rc = gw_http_error (h, c, 400, "INVALID",
                                "from: '%.*s' is not SOURCE:SEQ (the last event you have of that source), e.g. "
                                "from=intake:120,billing:7; sources are %s",
                                (int) (n > 64 ? 64 : n), p, s_sources_list ());
            goto refused;
        }
        if (n) {
            s->floored[src] = true;
            s->floor[src] = seq;
        }
        p += n + (p[n] == ',');
    }

    pm_txn_t t;
    if (pm_txn_begin_read (&t, pm_daemon_store (gw->d)) != PM_OK) {
        rc = gw_http_error (h, c, 503, "UNAVAILABLE", "storage: cannot read");
        goto refused;
    }
    uint64_t last = gw_log_last (&t);
    s->next_pos = last + 1;
    if (lei && *lei) {
        int src;
        uint64_t seq, pos;
        if (!s_event_id (lei, strlen (lei), &src, &seq)) {
            pm_txn_abort (&t);
            rc = gw_http_error (h, c, 400, "INVALID", "Last-Event-ID: '%.64s' is not SOURCE:SEQ, e.g. billing:7", lei);
            goto refused;
        }
        if (gw_log_find (&t, gateway_spec.upstreams[src].source, seq, &pos) != PM_OK) {
            pm_txn_abort (&t);
            rc = gw_http_error (h, c, 410, "GONE",
                                "Last-Event-ID: %.64s is not in the gateway's log (older than its retention, or never "
                                "seen here); reconnect with from=SOURCE:SEQ for each source to resume by source",
                                lei);
            goto refused;
        }
        s->next_pos = pos + 1;
    }
    else if (from && *from) {
        for (int i = 0; gateway_spec.upstreams[i].source; i++) {
            if (!s->want[i])
                continue;
            uint64_t p = gw_log_first_after (&t, gateway_spec.upstreams[i].source, s->floored[i] ? s->floor[i] : 0);
            if (p && p < s->next_pos)
                s->next_pos = p;
        }
    }
    pm_txn_abort (&t);

    char head[128];
    int n = snprintf (head, sizeof head, "retry: 2000\n: pm-gateway events from log position %llu\n\n",
                      (unsigned long long) s->next_pos);
    s_append (s, head, (size_t) n);
    s->last_write_ms = pm_mono_ms ();
    struct MHD_Response *resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 64 * 1024, s_read, s, s_free);
    if (!resp)
        pm_oom ("MHD_create_response_from_callback", 0);
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    h->nstreams++;
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header (resp, "X-Accel-Buffering", "no");
    rc = MHD_queue_response (c, 200, resp);
    MHD_destroy_response (resp); /* the stream lives until libmicrohttpd calls s_free */
    gw_http_count (h, 200);
    pm_info ("gateway: event stream for %s from log position %llu", actor, (unsigned long long) s->next_pos);
    return rc;
refused:
    for (size_t i = 0; i < s->ntypes; i++)
        free (s->types[i]);
    free (s->out);
    free (s);
    return rc;
}
