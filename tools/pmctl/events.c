/* events.c - `pmctl events`: each daemon's events as JSON lines, replayed from
 * its outbox and then, with --follow, live from its PUB.
 *
 * The zguide's Clone pattern seen from the client. The SUB is connected (and
 * subscribed to everything) before the catch-up, so nothing published during
 * it is lost. events.replay then fetches the committed events from --from on,
 * 1000 at a time, until the reply's last_seq is reached. Live events continue
 * from the next expected seq of their daemon: a lower seq is a duplicate of
 * what the replay printed and is skipped; a higher seq, or a heartbeat whose
 * last_seq is at or past the expected seq, means events were dropped (slow
 * joiner, HWM), so the gap is replayed before going on. Every event is thus
 * printed once, in seq order per daemon. Heartbeats are never printed. */
#include "pmctl.h"

#include "pm/curve.h"

#include "pm/clock.h"
#include "pm/err.h"
#include "pm/json.h"
#include "pm/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_REPLAY_MAX 1000   /* events per replay request */
#define S_DRAIN_MAX 1000    /* live messages taken from one SUB per poll */
#define S_POLL_MS 500       /* wake up this often to notice a signal */

/* Return values of the steps below besides an exit code (> 0). */
enum {
    S_GO = 0,
    S_STOP = -1,      /* signal or stdout closed: stop cleanly */
    S_NOANSWER = -2,  /* the daemon did not answer (printed): go on with the others */
};

/* One daemon being read. */
typedef struct {
    const char *name;
    const char *command;   /* ROUTER endpoint, for events.replay */
    const char *events;    /* PUB endpoint */
    pm_client_t *client;
    void *sub;             /* NULL without --follow */
    uint64_t next;         /* next seq expected from this daemon */
} s_feed_t;

typedef struct {
    const pmctl_t *ctl;
    const char *prefix;    /* print only types starting with this ("" = all) */
    size_t prefix_len;
} s_out_t;

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

/* Prints ev as one JSON line if its type matches the prefix. S_GO, or S_STOP
 * when stdout is gone (EPIPE), or PMCTL_FAIL when it cannot be rendered. */
static int
s_print (const s_out_t *o, const Pm__V1__Event *ev)
{
    if (strncmp (ev->type, o->prefix, o->prefix_len) != 0)
        return S_GO;
    cJSON *j = pm_msg_to_json (&ev->base);
    char *s = j ? cJSON_PrintUnformatted (j) : NULL;
    cJSON_Delete (j);
    if (!s) {
        fprintf (stderr, "pmctl: out of memory rendering event %s\n", ev->id);
        return PMCTL_FAIL;
    }
    fputs (s, stdout);
    fputc ('\n', stdout);
    free (s);
    return ferror (stdout) ? S_STOP : S_GO;
}

/* Replays f from f->next until its last committed seq, printing each event.
 * S_GO when caught up, S_STOP, S_NOANSWER, or an exit code after printing why. */
static int
s_catch_up (const s_out_t *o, s_feed_t *f)
{
    const pmctl_t *ctl = o->ctl;
    int retry = pmctl_retry_ms (ctl);
    for (;;) {
        if (s_stop)
            return S_STOP;
        Pm__V1__EventsReplayRequest body = PM__V1__EVENTS_REPLAY_REQUEST__INIT;
        body.from_seq = f->next;
        body.max = S_REPLAY_MAX;
        Pm__V1__Request req;
        char id[27];
        pmctl_request (ctl, &req, id, "events.replay", &body.base);
        Pm__V1__Reply *r = NULL;
        int rc = pm_client_call (f->client, &req, ctl->timeout_ms, retry, &r);
        if (rc != PM_OK) {
            if (s_stop)
                return S_STOP;
            if (rc == PM_ETIMEDOUT) {
                pmctl_no_answer (f->name, f->command, ctl->timeout_ms);
                return S_NOANSWER;
            }
            fprintf (stderr, "pmctl: %s at %s: %s\n", f->name, f->command, pm_strerror (rc));
            return PMCTL_FAIL;
        }
        if (r->status != PM__V1__STATUS__OK || r->body_case != PM__V1__REPLY__BODY_EVENTS_REPLAY) {
            fprintf (stderr, "pmctl: %s: events.replay from %" PRIu64 ": %s: %s\n", f->name, f->next,
                     pm_status_name (r->status), r->message);
            pm__v1__reply__free_unpacked (r, NULL);
            return PMCTL_FAIL;
        }
        const Pm__V1__EventsReplayReply *rr = r->events_replay;
        int out = S_GO;
        for (size_t i = 0; i < rr->n_events && out == S_GO; i++) {
            const Pm__V1__Event *ev = rr->events[i];
            if (ev->seq < f->next)
                continue;
            if (ev->seq > f->next) {
                fprintf (stderr, "pmctl: %s: events.replay from %" PRIu64 " skipped to seq %" PRIu64 "\n",
                         f->name, f->next, ev->seq);
                out = PMCTL_FAIL;
                break;
            }
            out = s_print (o, ev);
            f->next = ev->seq + 1;
        }
        uint64_t last = rr->last_seq;
        size_t n = rr->n_events;
        pm__v1__reply__free_unpacked (r, NULL);
        if (out != S_GO)
            return out;
        if (fflush (stdout) != 0)
            return S_STOP;
        if (f->next > last)
            return S_GO;
        if (n == 0) {
            fprintf (stderr, "pmctl: %s: events.replay from %" PRIu64 " returned nothing, though last_seq is %" PRIu64
                             "\n", f->name, f->next, last);
            return PMCTL_FAIL;
        }
    }
}

/* Handles one live message [type][Event] of f. S_GO, S_STOP or an exit code. */
static int
s_live (const s_out_t *o, s_feed_t *f, const void *data, size_t len)
{
    Pm__V1__Event *ev = pm__v1__event__unpack (NULL, len, data);
    if (!ev)
        return S_GO; /* not an Event: the seq gap (if any) is repaired by the next heartbeat */
    int rc = S_GO;
    if (ev->payload_case == PM__V1__EVENT__PAYLOAD_HEARTBEAT || strcmp (ev->type, "heartbeat") == 0) {
        if (ev->payload_case == PM__V1__EVENT__PAYLOAD_HEARTBEAT && ev->heartbeat->last_seq >= f->next)
            rc = s_catch_up (o, f); /* the tail of a burst was lost */
    }
    else if (ev->seq > f->next)
        rc = s_catch_up (o, f); /* a gap: the replay brings this one too */
    else if (ev->seq == f->next) {
        rc = s_print (o, ev);
        f->next++;
    }
    pm__v1__event__free_unpacked (ev, NULL);
    return rc == S_NOANSWER ? S_GO : rc; /* the next heartbeat tries again */
}

/* Takes what is waiting on f's SUB (at most S_DRAIN_MAX messages). */
static int
s_drain (const s_out_t *o, s_feed_t *f)
{
    for (int k = 0; k < S_DRAIN_MAX; k++) {
        zmq_msg_t type, body;
        zmq_msg_init (&type);
        if (zmq_msg_recv (&type, f->sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&type);
            return s_stop ? S_STOP : S_GO; /* EAGAIN: nothing more; EINTR: see s_stop */
        }
        bool more = zmq_msg_more (&type);
        zmq_msg_close (&type);
        if (!more)
            continue;
        zmq_msg_init (&body);
        int rc = S_GO;
        if (zmq_msg_recv (&body, f->sub, 0) >= 0) {
            bool extra = zmq_msg_more (&body);
            if (!extra)
                rc = s_live (o, f, zmq_msg_data (&body), zmq_msg_size (&body));
            while (extra) { /* not [type][Event]: drop the rest of it */
                zmq_msg_t x;
                zmq_msg_init (&x);
                extra = zmq_msg_recv (&x, f->sub, 0) >= 0 && zmq_msg_more (&x);
                zmq_msg_close (&x);
            }
        }
        zmq_msg_close (&body);
        if (rc != S_GO)
            return rc;
    }
    return S_GO;
}

/* Follows every feed's SUB until a signal, EPIPE or an error. */
static int
s_follow (const s_out_t *o, s_feed_t *feeds, size_t n)
{
    zmq_pollitem_t *items = pm_xcalloc (n, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (zmq_pollitem_t) { feeds[i].sub, 0, ZMQ_POLLIN, 0 };
    int rc = S_GO;
    while (rc == S_GO && !s_stop) {
        int ready = zmq_poll (items, (int) n, S_POLL_MS);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf (stderr, "pmctl: waiting for events: %s\n", zmq_strerror (errno));
            rc = PMCTL_FAIL;
            break;
        }
        for (size_t i = 0; i < n && rc == S_GO; i++)
            if (items[i].revents & ZMQ_POLLIN)
                rc = s_drain (o, &feeds[i]);
        if (rc == S_GO && fflush (stdout) != 0)
            rc = S_STOP;
    }
    free (items);
    return rc;
}

/* Connects f's DEALER and, when following, its SUB (subscribed to everything). */
static bool
s_open (const pmctl_t *ctl, void *zctx, s_feed_t *f, bool follow)
{
    f->client = pmctl_client (ctl, zctx, f->name);
    if (!f->client) {
        fprintf (stderr, "pmctl: cannot connect to %s at %s: %s\n", f->name, f->command, zmq_strerror (errno));
        return false;
    }
    if (!follow)
        return true;
    if (!f->events) {
        fprintf (stderr, "pmctl: [%s] has no 'events' endpoint to follow\n", f->name);
        return false;
    }
    int linger = 0, hwm = 100000;
    f->sub = zmq_socket (zctx, ZMQ_SUB);
    const char *keys = pm_config_get (ctl->cfg, "pmctl", "curve_secret_file", "");
    if (!f->sub || pm_curve_client (ctl->cfg, f->name, *keys ? keys : NULL, f->sub) != PM_OK
        || zmq_setsockopt (f->sub, ZMQ_LINGER, &linger, sizeof linger) != 0
        || zmq_setsockopt (f->sub, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0
        || zmq_setsockopt (f->sub, ZMQ_SUBSCRIBE, "", 0) != 0 || zmq_connect (f->sub, f->events) != 0) {
        fprintf (stderr, "pmctl: cannot subscribe to %s at %s: %s\n", f->name, f->events, zmq_strerror (errno));
        return false;
    }
    return true;
}

int
pmctl_events (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "follow", no_argument, NULL, 'f' },
        { "from", required_argument, NULL, 'F' },
        { NULL, 0, NULL, 0 },
    };
    bool follow = false;
    int64_t from = 1;
    int opt, code = PMCTL_OK;
    while ((opt = pmctl_getopt (ctl, argc, argv, "f", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (opt == 'f')
            follow = true;
        else if (!pmctl_parse_int ("--from", optarg, 0, INT64_MAX, &from))
            return PMCTL_USAGE;
    } /* --json is taken too: events are JSON lines with or without it */
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos > 2)
        return pmctl_usage_error (ctl, "unexpected '%s'", pos[2]);
    const char *daemon = NULL, *prefix = "";
    if (npos >= 1 && pmctl_endpoint (ctl, pos[0], "command"))
        daemon = pos[0];
    else if (npos == 1 && strchr (pos[0], '.'))
        prefix = pos[0]; /* `events intake.unit.`: a type prefix, every daemon */
    else if (npos >= 1) {
        pmctl_unknown_daemon (ctl, pos[0]);
        return PMCTL_USAGE;
    }
    if (npos == 2)
        prefix = pos[1];

    size_t nall;
    const char *const *all = pm_config_daemons (ctl->cfg, &nall);
    size_t n = daemon ? 1 : nall;
    if (n == 0) {
        fprintf (stderr, "pmctl: %s names no daemons\n", pm_config_name (ctl->cfg));
        return PMCTL_USAGE;
    }
    s_feed_t *feeds = pm_xcalloc (n, sizeof *feeds);
    void *zctx = zmq_ctx_new ();
    int rc = S_GO;
    for (size_t i = 0; i < n && rc == S_GO; i++) {
        s_feed_t *f = &feeds[i];
        f->name = daemon ? daemon : all[i];
        f->command = pmctl_endpoint (ctl, f->name, "command");
        f->events = pmctl_endpoint (ctl, f->name, "events");
        f->next = from > 0 ? (uint64_t) from : 1;
        if (!s_open (ctl, zctx, f, follow))
            rc = PMCTL_FAIL;
    }

    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal; /* no SA_RESTART: a blocked poll returns EINTR */
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);

    s_out_t o = { ctl, prefix, strlen (prefix) };
    bool silent = false; /* a daemon did not answer */
    for (size_t i = 0; i < n && rc == S_GO; i++) {
        rc = s_catch_up (&o, &feeds[i]);
        if (rc == S_NOANSWER) {
            if (follow)
                fprintf (stderr, "pmctl: following %s anyway: its events are replayed once it is up\n",
                         feeds[i].name);
            silent = true;
            rc = S_GO;
        }
    }
    if (rc == S_GO && follow)
        rc = s_follow (&o, feeds, n);

    for (size_t i = 0; i < n; i++) {
        pm_client_destroy (&feeds[i].client);
        if (feeds[i].sub)
            zmq_close (feeds[i].sub);
    }
    free (feeds);
    zmq_ctx_term (zctx);
    if (rc > 0)
        return rc;
    return silent && !follow ? PMCTL_FAIL : PMCTL_OK;
}
