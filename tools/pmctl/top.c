/* top.c - `pmctl top`: a live board of the move-in, in 80 columns.
 *
 * Each frame asks at once intake for every estate's progress
 * (intake.progress, read from its counters) and every daemon for its queues
 * (ops.queues) and metrics (ops.metrics: latest seq, consumer lag per
 * source), then draws: per estate, units in each state, completion, units
 * blocked at the key gate (on the invoice / on the inspection) and today's
 * slots, check-ins, waitlist and undelivered notices; per daemon, up or
 * down, its latest seq, its lag behind each upstream and the queues with
 * work waiting. Plain ANSI (clear and home), redrawn every --interval
 * seconds until Ctrl-C; --once prints one frame without escapes, for
 * scripts. Every line fits 80 columns (a Chinese character counts two). */
#include "pmctl.h"

#include "pm/clock.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_WIDTH 80

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

/* Columns a character takes on a terminal: two for the wide (CJK) ranges. */
static int
s_cp_width (uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7f)
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F)
        || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F)
        || (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

/* Appends s to out, padded with blanks to width columns or cut to fit them. */
static void
s_cell (char *out, size_t size, const char *s, int width)
{
    size_t o = strlen (out), len;
    int w = 0;
    bool utf8 = pm_utf8_valid_str (s);
    for (const char *p = s; *p && o + 5 < size;) {
        uint32_t cp = utf8 ? pm_utf8_next (p, &len) : (unsigned char) *p;
        if (!utf8)
            len = 1;
        int cw = utf8 ? s_cp_width (cp) : 1;
        if (w + cw > width)
            break;
        memcpy (out + o, p, len);
        o += len;
        w += cw;
        p += len;
    }
    while (w < width && o + 1 < size) {
        out[o++] = ' ';
        w++;
    }
    out[o] = '\0';
}

/* Prints a line cut to the board's width. */
static void
s_line (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static void
s_line (const char *fmt, ...)
{
    char raw[1024], out[1024] = "";
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (raw, sizeof raw, fmt, ap);
    va_end (ap);
    s_cell (out, sizeof out, raw, S_WIDTH);
    size_t n = strlen (out);
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
    puts (out);
}

/* A metric's value from an ops.metrics reply, or -1. */
static double
s_metric (const Pm__V1__Reply *r, const char *name, const char *labels)
{
    if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_METRICS)
        return -1;
    for (size_t i = 0; i < r->ops_metrics->n_metrics; i++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[i];
        if (strcmp (m->name, name) == 0 && strcmp (m->labels, labels) == 0)
            return m->value;
    }
    return -1;
}

static void
s_estate (const Pm__V1__EstateProgress *p)
{
    char row[512] = "", num[64];
    uint32_t st[6] = { 0 };
    for (size_t i = 0; i < p->n_states && i < 6; i++)
        st[i] = p->states[i]->units;
    s_cell (row, sizeof row, p->estate_id, 7);
    s_cell (row, sizeof row, p->estate_name, 13);
    snprintf (num, sizeof num, "%6u ", p->units);
    s_cell (row, sizeof row, num, 7);
    for (int i = 0; i < 6; i++) {
        snprintf (num, sizeof num, "%5u", st[i]);
        s_cell (row, sizeof row, num, 5);
    }
    snprintf (num, sizeof num, "  %3u%% ", p->completion_pct);
    s_cell (row, sizeof row, num, 7);
    snprintf (num, sizeof num, "%u (%u/%u)", p->blocked, p->blocked_invoice, p->blocked_inspection);
    s_cell (row, sizeof row, num, 12);
    s_line ("%s", row);
    s_line ("       %s booked %u/%u, %u checked in; waitlist %u, no-shows %u, notices unsent %u",
            strlen (p->today) == 10 ? p->today + 5 : p->today, p->today_booked, p->today_capacity, p->checkins_today,
            p->waitlist, p->no_shows, p->notices_undelivered);
    if (p->n_checkins_by_hour) {
        char hours[512] = "";
        size_t o = 0;
        for (size_t i = 0; i < p->n_checkins_by_hour && o < sizeof hours - 16; i++)
            o += (size_t) snprintf (hours + o, sizeof hours - o, "%s%.2sh %u", i ? ", " : "",
                                    p->checkins_by_hour[i]->hour, p->checkins_by_hour[i]->checkins);
        s_line ("       check-ins by hour: %s", hours);
    }
}

/* One frame. Returns whether intake answered. */
static bool
s_frame (const pmctl_t *ctl, void *zctx, bool clear)
{
    size_t n;
    const char *const *daemons = pm_config_daemons (ctl->cfg, &n);
    pmctl_ask_t *asks = pm_xcalloc (2 * n + 2, sizeof *asks);
    Pm__V1__IntakeProgressRequest progress = PM__V1__INTAKE_PROGRESS_REQUEST__INIT;
    Pm__V1__OpsQueuesRequest queues = PM__V1__OPS_QUEUES_REQUEST__INIT;
    queues.limit = 1;
    asks[0] = (pmctl_ask_t) { .daemon = "intake", .method = "intake.progress", .body = &progress.base };
    for (size_t i = 0; i < n; i++) {
        asks[1 + i] = (pmctl_ask_t) { .daemon = daemons[i], .method = "ops.metrics" };
        asks[1 + n + i] = (pmctl_ask_t) { .daemon = daemons[i], .method = "ops.queues", .body = &queues.base };
    }
    asks[2 * n + 1] = (pmctl_ask_t) { .daemon = "intake", .method = "ops.ping" };
    pmctl_ask (ctl, zctx, asks, 2 * n + 2, ctl->timeout_ms);
    if (clear)
        fputs ("\033[H\033[2J", stdout);
    /* the daemons' time (intake's clock): on a manual clock it is not this machine's */
    const Pm__V1__Reply *ping = asks[2 * n + 1].reply;
    int64_t now_ms = ping && ping->body_case == PM__V1__REPLY__BODY_OPS_PING ? ping->ops_ping->now_ms : 0;
    char now[40];
    s_line ("pmctl top  %s%s%s", pm_time_format (now_ms ? now_ms : time (NULL) * 1000LL, now, sizeof now),
            now_ms && llabs (now_ms - time (NULL) * 1000LL) > 60000 ? " (the daemons' clock)" : "",
            clear ? "   (Ctrl-C quits)" : "");
    s_line ("%s", "");
    const Pm__V1__Reply *pr = asks[0].reply;
    bool intake_ok = pr && pr->status == PM__V1__STATUS__OK && pr->body_case == PM__V1__REPLY__BODY_INTAKE_PROGRESS;
    char head[256] = "";
    static const char *const cols[] = { "  REG", " NOTI", " SCHD", " NOSH", " CHKD", " KEYS" };
    s_cell (head, sizeof head, "ESTATE", 7);
    s_cell (head, sizeof head, "NAME", 13);
    s_cell (head, sizeof head, " UNITS", 7);
    for (int i = 0; i < 6; i++)
        s_cell (head, sizeof head, cols[i], 5);
    s_cell (head, sizeof head, "  DONE ", 7);
    s_cell (head, sizeof head, "BLOCKED inv/insp", 16);
    s_line ("%s", head);
    if (!intake_ok)
        s_line ("  intake: %s", pr ? pr->message : asks[0].why ? asks[0].why : "no answer");
    else if (pr->intake_progress->n_estates == 0)
        s_line ("  no estates yet: import a sales list (pmctl import FILE.csv)");
    else
        for (size_t i = 0; i < pr->intake_progress->n_estates; i++)
            s_estate (pr->intake_progress->estates[i]);
    s_line ("%s", "");
    s_line ("DAEMON      STATE   SEQ  LAG BEHIND UPSTREAMS / WORK WAITING");
    for (size_t i = 0; i < n; i++) {
        const Pm__V1__Reply *m = asks[1 + i].reply, *q = asks[1 + n + i].reply;
        if (!m) {
            s_line ("%-11s DOWN         (%s)", daemons[i], asks[1 + i].why ? asks[1 + i].why : "no answer");
            continue;
        }
        char lag[512] = "";
        size_t o = 0, ups = 0;
        double behind = 0;
        for (size_t u = 0; u < n; u++) {
            char labels[96];
            snprintf (labels, sizeof labels, "source=\"%s\"", daemons[u]);
            double l = s_metric (m, "pm_consumer_lag", labels);
            if (l >= 0 && o < sizeof lag - 64) {
                o += (size_t) snprintf (lag + o, sizeof lag - o, "%s%s %.0f", o ? ", " : "lag: ", daemons[u], l);
                ups++;
                behind += l;
            }
        }
        if (o > 80 - 25 && behind == 0) /* every upstream, none behind: said in a word, in 80 columns */
            snprintf (lag, sizeof lag, "lag: 0 behind each of its %zu upstreams", ups);
        s_line ("%-11s up   %6.0f  %s", daemons[i], s_metric (m, "pm_outbox_last_seq", ""), o ? lag : "no upstreams");
        char work[1024] = "";
        o = 0;
        if (q && q->body_case == PM__V1__REPLY__BODY_OPS_QUEUES)
            for (size_t k = 0; k < q->ops_queues->n_queues; k++) {
                const Pm__V1__Queue *x = q->ops_queues->queues[k];
                if (x->count && o < sizeof work - 96)
                    o += (size_t) snprintf (work + o, sizeof work - o, "%s%s %" PRIu64, o ? ", " : "", x->name,
                                            x->count);
            }
        s_line ("                         %s", o ? work : "no work waiting");
    }
    pmctl_ask_free (asks, 2 * n + 2);
    free (asks);
    fflush (stdout);
    return intake_ok;
}

int
pmctl_top (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "once", no_argument, NULL, 'o' },
        { "interval", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    bool once = false;
    int64_t interval = 2;
    int opt, code = PMCTL_OK;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (opt == 'o')
            once = true;
        else if (!pmctl_parse_int ("--interval", optarg, 1, 3600, &interval))
            return PMCTL_USAGE;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (optind < argc)
        return pmctl_usage_error (ctl, "unexpected '%s'", argv[optind]);
    void *zctx = zmq_ctx_new ();
    if (once) {
        bool ok = s_frame (ctl, zctx, false);
        zmq_ctx_term (zctx);
        return ok ? PMCTL_OK : PMCTL_FAIL;
    }
    signal (SIGINT, s_on_signal);
    signal (SIGTERM, s_on_signal);
    while (!s_stop) {
        s_frame (ctl, zctx, true);
        for (int64_t t = 0; t < interval * 10 && !s_stop; t++) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            nanosleep (&ts, NULL); /* the refresh interval */
        }
    }
    zmq_ctx_term (zctx);
    return PMCTL_OK;
}
