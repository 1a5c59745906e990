/* notify_test.h - what notify's handler and dispatcher tests share: a
 * fixture (notify on a temp LMDB, the manual clock at a known time), builders
 * for the events of every upstream as the contract has them, reads of the
 * messages an owner would get, the loop run until the dispatcher rests, and a
 * fake gateway whose answers the test decides. Static inline: each test
 * program takes what it uses. */
#ifndef NOTIFY_TEST_H
#define NOTIFY_TEST_H

#define _GNU_SOURCE
#include "support.h"

#include "gateway.h"
#include "notify.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NT_INTAKE, NT_INSPECTION, NT_WORKORDER, NT_BILLING, NT_SOURCES };
static const char *const nt_sources[NT_SOURCES] = { "intake", "inspection", "workorder", "billing" };

typedef struct {
    pmt_fixture_t *f;
    pm_arena_t *a;            /* the events' memory */
    uint64_t seq[NT_SOURCES];
} nt_t;

/* 2026-12-01 10:00 in Shanghai: daytime, no quiet hours. */
#define NT_DAY "2026-12-01T02:00:00Z"
/* 2026-12-01 22:00 in Shanghai: quiet hours. */
#define NT_NIGHT "2026-12-01T14:00:00Z"

static inline nt_t *
nt_new (const char *extra)
{
    nt_t *t = pm_xcalloc (1, sizeof *t);
    char *cfg = pm_xasprintf ("[notify]\nsms_rate = 0\nemail_rate = 0\n%s", extra ? extra : "");
    t->f = pmt_fixture_new (&notify_spec, cfg);
    free (cfg);
    t->a = pm_arena_new ();
    pmt_clock_set (t->f->d, NT_DAY);
    return t;
}

static inline void
nt_destroy (nt_t **p)
{
    pm_arena_destroy (&(*p)->a);
    pmt_fixture_destroy (&(*p)->f);
    free (*p);
    *p = NULL;
}

static inline notify_app_t *
nt_app (nt_t *t)
{
    return pm_daemon_app (t->f->d);
}

static inline int64_t
nt_now (nt_t *t)
{
    return pm_clock_now_ms (pm_daemon_clock (t->f->d));
}

/* An event of source, next in its seq, for unit (E01/...). */
static inline Pm__V1__Event *
nt_event (nt_t *t, int source, const char *type, const char *unit_id)
{
    Pm__V1__Event *ev = pm_arena_alloc (t->a, sizeof *ev);
    pm__v1__event__init (ev);
    ev->source = (char *) nt_sources[source];
    ev->seq = ++t->seq[source];
    ev->id = pm_arena_printf (t->a, "%s:%llu", nt_sources[source], (unsigned long long) ev->seq);
    ev->type = pm_arena_strdup (t->a, type);
    ev->estate_id = "E01";
    ev->unit_id = pm_arena_strdup (t->a, unit_id);
    ev->at_ms = nt_now (t);
    return ev;
}

static inline Pm__V1__Owner *
nt_owner (nt_t *t, const char *name, const char *phone, const char *email)
{
    Pm__V1__Owner *o = pm_arena_alloc (t->a, sizeof *o);
    pm__v1__owner__init (o);
    o->name = pm_arena_strdup (t->a, name);
    o->phone = pm_arena_strdup (t->a, phone);
    o->email = pm_arena_strdup (t->a, email);
    o->owner_key = pm_arena_printf (t->a, "key-%s", phone);
    return o;
}

static inline Pm__V1__Owner **
nt_owners (nt_t *t, Pm__V1__Owner *a, Pm__V1__Owner *b)
{
    Pm__V1__Owner **o = pm_arena_alloc (t->a, 3 * sizeof *o);
    o[0] = a;
    o[1] = b;
    return o;
}

/* The two owners used throughout. */
static inline Pm__V1__Owner *
nt_zhang (nt_t *t)
{
    return nt_owner (t, "张伟", "13812345678", "zhang.wei@example.com");
}

static inline Pm__V1__Owner *
nt_li (nt_t *t)
{
    return nt_owner (t, "李娜", "13987654321", "");
}

/* Applies ev, which must be applied (OK, cursor moved). */
static inline void
nt_apply (nt_t *t, Pm__V1__Event *ev)
{
    pmt_event_applied (t->f->d, ev);
}

/* intake.unit.registered for unit with its owners: notify's contacts. */
static inline void
nt_unit (nt_t *t, const char *unit_id, Pm__V1__Owner *a, Pm__V1__Owner *b)
{
    Pm__V1__Event *ev = nt_event (t, NT_INTAKE, "intake.unit.registered", unit_id);
    Pm__V1__Unit *u = pm_arena_alloc (t->a, sizeof *u);
    pm__v1__unit__init (u);
    u->unit_id = ev->unit_id;
    u->estate_id = "E01";
    u->estate_name = "翠湖花园";
    const char *slash = strchr (unit_id, '/'), *dash = slash ? strchr (slash, '-') : NULL;
    u->building = slash && dash ? pm_arena_printf (t->a, "%.*s", (int) (dash - slash - 1), slash + 1) : "";
    u->unit = dash ? pm_arena_strdup (t->a, dash + 1) : "";
    u->owners = nt_owners (t, a, b);
    u->n_owners = b ? 2 : a ? 1 : 0;
    ev->payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
    ev->unit = u;
    nt_apply (t, ev);
}

static inline Pm__V1__Event *
nt_notice (nt_t *t, const char *unit_id, Pm__V1__Owner *a, Pm__V1__Owner *b)
{
    Pm__V1__Event *ev = nt_event (t, NT_INTAKE, "intake.notice.requested", unit_id);
    Pm__V1__Notice *n = pm_arena_alloc (t->a, sizeof *n);
    pm__v1__notice__init (n);
    n->notice_id = "NOTICE-E01-1";
    n->unit_id = ev->unit_id;
    n->estate_id = "E01";
    n->owners = nt_owners (t, a, b);
    n->n_owners = b ? 2 : a ? 1 : 0;
    n->window = "12月5日至12月20日";
    n->place = "3号楼一层物业服务中心";
    static char *bring[] = { "身份证", "购房合同" };
    n->bring = bring;
    n->n_bring = 2;
    n->fees_note = "物业费一年及维修基金";
    ev->payload_case = PM__V1__EVENT__PAYLOAD_NOTICE;
    ev->notice = n;
    return ev;
}

static inline Pm__V1__Event *
nt_appointment (nt_t *t, const char *type, const char *unit_id, const char *start, Pm__V1__Owner *a)
{
    Pm__V1__Event *ev = nt_event (t, NT_INTAKE, type, unit_id);
    Pm__V1__Appointment *ap = pm_arena_alloc (t->a, sizeof *ap);
    pm__v1__appointment__init (ap);
    ap->unit_id = ev->unit_id;
    ap->estate_id = "E01";
    pm_time_parse (start, &ap->slot_start_ms);
    ap->slot_end_ms = ap->slot_start_ms + 30 * 60000;
    ap->counter = 2;
    ap->place = "3号楼一层物业服务中心";
    ap->owners = nt_owners (t, a, NULL);
    ap->n_owners = a ? 1 : 0;
    ev->payload_case = PM__V1__EVENT__PAYLOAD_APPOINTMENT;
    ev->appointment = ap;
    return ev;
}

static inline Pm__V1__Event *
nt_invoice (nt_t *t, const char *type, const char *unit_id, const char *invoice_id, int64_t total, int state)
{
    Pm__V1__Event *ev = nt_event (t, NT_BILLING, type, unit_id);
    Pm__V1__Invoice *i = pm_arena_alloc (t->a, sizeof *i);
    pm__v1__invoice__init (i);
    i->invoice_id = pm_arena_strdup (t->a, invoice_id);
    i->unit_id = ev->unit_id;
    i->estate_id = "E01";
    i->kind = "move_in";
    i->total_fen = total;
    i->open_fen = state == PM__V1__INVOICE_STATE__SETTLED ? 0 : total;
    i->paid_fen = total - i->open_fen;
    i->due_ms = nt_now (t) + 15 * 86400000LL;
    i->state = state;
    ev->payload_case = PM__V1__EVENT__PAYLOAD_INVOICE;
    ev->invoice = i;
    return ev;
}

static inline Pm__V1__Event *
nt_dunning (nt_t *t, const char *unit_id, const char *invoice_id, const char *step, const char *action)
{
    Pm__V1__Event *ev = nt_event (t, NT_BILLING, "billing.dunning.step", unit_id);
    Pm__V1__DunningStep *s = pm_arena_alloc (t->a, sizeof *s);
    pm__v1__dunning_step__init (s);
    s->invoice_id = pm_arena_strdup (t->a, invoice_id);
    s->unit_id = ev->unit_id;
    s->estate_id = "E01";
    s->step = pm_arena_strdup (t->a, step);
    s->action = pm_arena_strdup (t->a, action);
    s->open_fen = 324000;
    s->due_ms = nt_now (t) + 7 * 86400000LL;
    ev->payload_case = PM__V1__EVENT__PAYLOAD_DUNNING;
    ev->dunning = s;
    return ev;
}

static inline Pm__V1__Event *
nt_order (nt_t *t, const char *type, const char *unit_id, const char *order_id, int source, const char *technician)
{
    Pm__V1__Event *ev = nt_event (t, NT_WORKORDER, type, unit_id);
    Pm__V1__WorkOrder *o = pm_arena_alloc (t->a, sizeof *o);
    pm__v1__work_order__init (o);
    o->order_id = pm_arena_strdup (t->a, order_id);
    o->source = source;
    o->unit_id = ev->unit_id;
    o->estate_id = "E01";
    o->category = "water";
    o->description = "厨房水龙头漏水";
    o->technician = pm_arena_strdup (t->a, technician);
    o->team = "水电组";
    o->complete_by_ms = nt_now (t) + 86400000LL;
    ev->payload_case = PM__V1__EVENT__PAYLOAD_ORDER;
    ev->order = o;
    return ev;
}

static inline Pm__V1__Event *
nt_sla (nt_t *t, const char *type, const char *unit_id, const char *order_id, const char *team_lead)
{
    Pm__V1__Event *ev = nt_event (t, NT_WORKORDER, type, unit_id);
    Pm__V1__SlaAlert *s = pm_arena_alloc (t->a, sizeof *s);
    pm__v1__sla_alert__init (s);
    s->order_id = pm_arena_strdup (t->a, order_id);
    s->unit_id = ev->unit_id;
    s->estate_id = "E01";
    s->deadline = "complete";
    s->due_ms = nt_now (t);
    s->technician = "王建国";
    s->team = "水电组";
    s->team_lead = pm_arena_strdup (t->a, team_lead);
    s->category = "water";
    ev->payload_case = PM__V1__EVENT__PAYLOAD_SLA;
    ev->sla = s;
    return ev;
}

/* --- reads ------------------------------------------------------------------------ */

/* notify.unit.get (valid until the next apply). */
static inline Pm__V1__NotifyUnitGetReply *
nt_unit_get (nt_t *t, const char *unit_id)
{
    Pm__V1__NotifyUnitGetRequest body = PM__V1__NOTIFY_UNIT_GET_REQUEST__INIT;
    body.unit_id = (char *) unit_id;
    body.limit = 500;
    Pm__V1__Reply *r = pmt_call (t->f->d, "", "notify.unit.get", &body.base);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("notify.unit.get %s: %s: %s", unit_id, pm_status_name (r->status), r->message);
    return r->notify_unit_get;
}

/* The unit's message of template on channel to the recipient named who (NULL: any), or NULL. */
static inline Pm__V1__MessageView *
nt_find (nt_t *t, const char *unit_id, const char *tpl, const char *channel, const char *who)
{
    Pm__V1__NotifyUnitGetReply *u = nt_unit_get (t, unit_id);
    for (size_t i = 0; i < u->n_messages; i++) {
        Pm__V1__MessageView *m = u->messages[i];
        if (strcmp (m->template_, tpl) == 0 && strcmp (m->channel, channel) == 0
            && (!who || strcmp (m->recipient_name, who) == 0))
            return m;
    }
    return NULL;
}

/* The same, failing the test when there is none. */
static inline Pm__V1__MessageView *
nt_message (nt_t *t, const char *unit_id, const char *tpl, const char *channel, const char *who)
{
    Pm__V1__MessageView *m = nt_find (t, unit_id, tpl, channel, who);
    if (!m)
        fail_msg ("no %s %s message for %s of %s", tpl, channel, who ? who : "anyone", unit_id);
    return m;
}

/* The full message (with its text) by id. */
static inline Pm__V1__MessageView *
nt_get (nt_t *t, const char *id)
{
    char copy[64]; /* id may point into the last reply, which the next apply releases */
    snprintf (copy, sizeof copy, "%s", id);
    Pm__V1__NotifyMessageGetRequest body = PM__V1__NOTIFY_MESSAGE_GET_REQUEST__INIT;
    body.message_id = copy;
    Pm__V1__Reply *r = pmt_call (t->f->d, "", "notify.message.get", &body.base);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("notify.message.get %s: %s", id, r->message);
    return r->notify_message_get->message;
}

static inline double
nt_metric (nt_t *t, const char *name, const char *labels)
{
    return pmt_metric_or (t->f->d, name, labels, 0);
}

/* How many of the last apply's events had type. */
static inline size_t
nt_emitted (nt_t *t, const char *type)
{
    Pm__V1__Event **evs;
    size_t n = pmt_emitted (t->f->d, &evs), k = 0;
    for (size_t i = 0; i < n; i++)
        k += strcmp (evs[i]->type, type) == 0;
    return k;
}

/* --- the loop and the dispatcher ----------------------------------------------------- */

/* The events in notify's outbox after seq `after` of type (prefix match), and
 * the first such event's message id in *first (NULL: not wanted). */
static inline size_t
nt_outbox (nt_t *t, uint64_t after, const char *type, char *first, size_t size)
{
    pm_txn_t tx;
    size_t n = 0;
    if (first)
        first[0] = '\0';
    pm_txn_begin_read (&tx, pm_daemon_store (t->f->d));
    tx.arena = t->a;
    unsigned char k[8];
    pm_u64_be (after + 1, k);
    pm_key_t from;
    pm_scan_t s;
    for (pm_scan_range (&s, &tx, PM_DB_OUTBOX, pm_key_raw (&from, k, 8), NULL); s.ok; pm_scan_next (&s)) {
        Pm__V1__Event *ev = pm__v1__event__unpack (pm_arena_pb (t->a), s.val.mv_size, s.val.mv_data);
        if (ev && strncmp (ev->type, type, strlen (type)) == 0) {
            if (first && !n && ev->message)
                snprintf (first, size, "%s", ev->message->message_id);
            n++;
        }
    }
    pm_txn_abort (&tx);
    return n;
}

/* Runs the loop until no write is queued and nothing more commits (a fake
 * gateway may still hold messages). Returns how many events of type the
 * loop's batches emitted (type NULL: 0). */
static inline size_t
nt_settle_count (nt_t *t, const char *type)
{
    struct ev_loop *loop = pm_daemon_loop (t->f->d);
    uint64_t start = pm_daemon_last_seq (t->f->d);
    for (int i = 0, calm = 0; i < 2000 && calm < 3; i++) {
        uint64_t before = pm_daemon_last_seq (t->f->d);
        ev_run (loop, EVRUN_NOWAIT);
        calm = pm_daemon_writes_queued (t->f->d) == 0 && pm_daemon_last_seq (t->f->d) == before ? calm + 1 : 0;
    }
    return type ? nt_outbox (t, start, type, NULL, 0) : 0;
}

static inline void
nt_settle (nt_t *t)
{
    nt_settle_count (t, NULL);
}

/* Moves the manual clock (a commit: the dispatcher looks again) and settles. */
static inline void
nt_advance (nt_t *t, const char *by)
{
    pmt_clock_advance (t->f->d, by);
    nt_settle (t);
}

/* --- a gateway whose answers the test decides ------------------------------------------ */

#define NT_FAKE_MAX 256

typedef struct {
    notify_gateway_t base;
    struct {
        notify_send_t *msg;
        notify_sent_fn done;
        void *arg;
    } held[NT_FAKE_MAX];
    size_t nheld;
    int answer;               /* NOTIFY_OK, NOTIFY_RETRY, NOTIFY_PERMANENT, or -1: hold */
    int64_t retry_after_ms;
    char reason[128];
    size_t sends;             /* every send, answered or held */
    char sent_to[NT_FAKE_MAX][32]; /* the addresses, in order */
    char sent_id[NT_FAKE_MAX][24];
    unsigned sent_attempt[NT_FAKE_MAX];
} nt_fake_t;

static inline void
nt_fake_reply (notify_send_t *msg, notify_sent_fn done, void *arg, int outcome, int64_t retry_after,
               const char *reason)
{
    notify_result_t res;
    memset (&res, 0, sizeof res);
    snprintf (res.message_id, sizeof res.message_id, "%s", msg->message_id);
    res.outcome = outcome;
    res.retry_after_ms = retry_after;
    snprintf (res.reason, sizeof res.reason, "%s", reason);
    snprintf (res.provider_ref, sizeof res.provider_ref, "fake-%s", msg->message_id);
    done (msg, &res, arg);
}

static inline void
nt_fake_send (notify_gateway_t *g, notify_send_t *msg, notify_sent_fn done, void *arg)
{
    nt_fake_t *f = (nt_fake_t *) g;
    if (f->sends < NT_FAKE_MAX) {
        snprintf (f->sent_to[f->sends], sizeof f->sent_to[0], "%s", msg->address);
        snprintf (f->sent_id[f->sends], sizeof f->sent_id[0], "%s", msg->message_id);
        f->sent_attempt[f->sends] = msg->attempts;
    }
    f->sends++;
    if (f->answer < 0 && f->nheld < NT_FAKE_MAX) {
        f->held[f->nheld].msg = msg;
        f->held[f->nheld].done = done;
        f->held[f->nheld].arg = arg;
        f->nheld++;
        return;
    }
    nt_fake_reply (msg, done, arg, f->answer < 0 ? NOTIFY_OK : f->answer, f->retry_after_ms, f->reason);
}

static inline void
nt_fake_destroy (notify_gateway_t *g)
{
    free (g);
}

/* A fake gateway for channel, answering answer (-1: holding every message). Owned by the dispatcher. */
static inline nt_fake_t *
nt_fake (nt_t *t, int channel, int answer, const char *reason)
{
    nt_fake_t *f = pm_xcalloc (1, sizeof *f);
    f->base.kind = "fake";
    f->base.send = nt_fake_send;
    f->base.destroy = nt_fake_destroy;
    f->answer = answer;
    snprintf (f->reason, sizeof f->reason, "%s", reason ? reason : "");
    notify_dispatch_set_gateway (nt_app (t)->dispatch, channel, &f->base);
    return f;
}

/* Answers the held messages (all of them) with outcome. */
static inline void
nt_fake_release (nt_fake_t *f, int outcome, const char *reason)
{
    size_t n = f->nheld;
    f->nheld = 0;
    for (size_t i = 0; i < n; i++)
        nt_fake_reply (f->held[i].msg, f->held[i].done, f->held[i].arg, outcome, 0, reason);
}

#endif
