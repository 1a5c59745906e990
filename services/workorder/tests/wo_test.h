/* wo_test.h - what the workorder test programs share: the daemon on a temp
 * LMDB (the fixture) with the built-in staff (E01 automatic, E02 open for
 * claims; T01 lead and T02 water in E01, ...), the manual clock at
 * 2026-12-01 09:00 Asia/Shanghai, intake's and inspection's events, calls
 * that check their status, and the daemon's committed events read back from
 * its outbox (events.replay), the way a consumer sees them. */
#ifndef WO_TEST_H
#define WO_TEST_H

#define _GNU_SOURCE
#include "support.h"

#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"
#include "workorder.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WT_T0 "2026-12-01T01:00:00Z" /* 09:00 in the estates' zone */
#define WT_T0_MS 1796086800000LL
#define WT_HOUR (3600000LL)
#define WT_MIN (60000LL)

typedef struct {
    pmt_fixture_t *f;
    uint64_t intake_seq, inspection_seq;
    unsigned nreq;
    char ids[32][40]; /* a ring of order ids handed out */
    unsigned nid;
} wt_t;

static inline wt_t *
wt_new (const char *extra)
{
    wt_t *t = pm_xcalloc (1, sizeof *t);
    t->f = pmt_fixture_new (&workorder_spec, extra);
    pmt_clock_set (t->f->d, WT_T0);
    return t;
}

static inline void
wt_free (wt_t **p)
{
    pmt_fixture_destroy (&(*p)->f);
    free (*p);
    *p = NULL;
}

static inline pm_daemon_t *
wt_d (wt_t *t)
{
    return t->f->d;
}

/* Moves the clock, then fires timers until none is due (a warning's handler
 * arms the breach, which may be due at once after a jump). */
static inline void
wt_advance (wt_t *t, const char *by)
{
    pmt_clock_advance (t->f->d, by);
    for (int i = 0; i < 10 && pm_daemon_fire_timers (t->f->d) > 0; i++)
        ;
}

static inline int64_t
wt_now (wt_t *t)
{
    return pm_clock_now_ms (pm_daemon_clock (t->f->d));
}

/* --- calls ------------------------------------------------------------------------------------ */

static inline Pm__V1__Reply *
wt_call (wt_t *t, const char *method, ProtobufCMessage *body, int want)
{
    char id[32];
    snprintf (id, sizeof id, "req-%06u", ++t->nreq);
    return pmt_call_expect (t->f->d, id, method, body, want);
}

static inline const char *
wt_keep (wt_t *t, const char *id)
{
    char *slot = t->ids[t->nid++ % 32];
    snprintf (slot, 40, "%s", id);
    return slot;
}

static inline Pm__V1__WorkOrder *
wt_get (wt_t *t, const char *order_id)
{
    Pm__V1__WorkorderGetRequest b = PM__V1__WORKORDER_GET_REQUEST__INIT;
    b.order_id = (char *) order_id;
    return wt_call (t, "workorder.get", &b.base, PM__V1__STATUS__OK)->workorder_get->order;
}

static inline int
wt_state (wt_t *t, const char *order_id)
{
    return wt_get (t, order_id)->state;
}

/* workorder.create; the order id (kept in a ring of 32), or NULL when want is not OK. */
static inline const char *
wt_create_ex (wt_t *t, const char *unit, const char *kind, const char *category, const char *window, int want)
{
    Pm__V1__WorkorderCreateRequest b = PM__V1__WORKORDER_CREATE_REQUEST__INIT;
    b.unit_id = (char *) unit;
    b.kind = (char *) kind;
    b.category = (char *) category;
    b.description = "厨房水管漏水";
    b.channel = "phone";
    b.preferred_window = (char *) (window ? window : "");
    Pm__V1__Reply *r = wt_call (t, "workorder.create", &b.base, want);
    if (want != PM__V1__STATUS__OK)
        return NULL;
    return wt_keep (t, r->workorder_create->order->order_id);
}

static inline const char *
wt_create (wt_t *t, const char *unit, const char *category)
{
    return wt_create_ex (t, unit, strcmp (category, "complaint") == 0 ? "complaint" : "repair", category, NULL,
                         PM__V1__STATUS__OK);
}

static inline Pm__V1__Reply *
wt_assign (wt_t *t, const char *id, const char *tech, int want)
{
    Pm__V1__WorkorderAssignRequest b = PM__V1__WORKORDER_ASSIGN_REQUEST__INIT;
    b.order_id = (char *) id;
    b.technician = (char *) tech;
    return wt_call (t, "workorder.assign", &b.base, want);
}

static inline Pm__V1__Reply *
wt_claim (wt_t *t, const char *id, const char *tech, int want)
{
    Pm__V1__WorkorderClaimRequest b = PM__V1__WORKORDER_CLAIM_REQUEST__INIT;
    b.order_id = (char *) id;
    b.technician = (char *) tech;
    return wt_call (t, "workorder.claim", &b.base, want);
}

static inline Pm__V1__Reply *
wt_start (wt_t *t, const char *id, int want)
{
    Pm__V1__WorkorderStartRequest b = PM__V1__WORKORDER_START_REQUEST__INIT;
    b.order_id = (char *) id;
    return wt_call (t, "workorder.start", &b.base, want);
}

static inline Pm__V1__Reply *
wt_done (wt_t *t, const char *id, int want)
{
    Pm__V1__WorkorderDoneRequest b = PM__V1__WORKORDER_DONE_REQUEST__INIT;
    b.order_id = (char *) id;
    b.note = "换了阀门";
    return wt_call (t, "workorder.done", &b.base, want);
}

static inline Pm__V1__Reply *
wt_confirm (wt_t *t, const char *id, unsigned satisfaction, int want)
{
    Pm__V1__WorkorderConfirmRequest b = PM__V1__WORKORDER_CONFIRM_REQUEST__INIT;
    b.order_id = (char *) id;
    b.satisfaction = satisfaction;
    return wt_call (t, "workorder.confirm", &b.base, want);
}

static inline Pm__V1__Reply *
wt_reject (wt_t *t, const char *id, const char *reason, int want)
{
    Pm__V1__WorkorderRejectRequest b = PM__V1__WORKORDER_REJECT_REQUEST__INIT;
    b.order_id = (char *) id;
    b.reason = (char *) reason;
    return wt_call (t, "workorder.reject", &b.base, want);
}

static inline Pm__V1__Reply *
wt_cancel (wt_t *t, const char *id, const char *reason, int want)
{
    Pm__V1__WorkorderCancelRequest b = PM__V1__WORKORDER_CANCEL_REQUEST__INIT;
    b.order_id = (char *) id;
    b.reason = (char *) reason;
    return wt_call (t, "workorder.cancel", &b.base, want);
}

static inline Pm__V1__Reply *
wt_checklist (wt_t *t, const char *id, const char *step, int want)
{
    Pm__V1__WorkorderChecklistRequest b = PM__V1__WORKORDER_CHECKLIST_REQUEST__INIT;
    b.order_id = (char *) id;
    b.step = (char *) step;
    return wt_call (t, "workorder.checklist", &b.base, want);
}

static inline Pm__V1__Reply *
wt_shift (wt_t *t, const char *tech, bool on)
{
    Pm__V1__WorkorderStaffSetRequest b = PM__V1__WORKORDER_STAFF_SET_REQUEST__INIT;
    b.technician = (char *) tech;
    b.shift = on ? PM__V1__SHIFT__ON_SHIFT : PM__V1__SHIFT__OFF_SHIFT;
    return wt_call (t, "workorder.staff.set", &b.base, PM__V1__STATUS__OK);
}

static inline Pm__V1__Technician *
wt_tech (wt_t *t, const char *tech)
{
    Pm__V1__WorkorderStaffGetRequest b = PM__V1__WORKORDER_STAFF_GET_REQUEST__INIT;
    b.technician = (char *) tech;
    Pm__V1__Reply *r = wt_call (t, "workorder.staff.get", &b.base, PM__V1__STATUS__OK);
    assert_int_equal (r->workorder_staff_get->n_technicians, 1);
    return r->workorder_staff_get->technicians[0];
}

static inline Pm__V1__WorkorderKpiReply *
wt_kpi (wt_t *t, const char *estate, const char *from, const char *to, const char *group_by)
{
    Pm__V1__WorkorderKpiRequest b = PM__V1__WORKORDER_KPI_REQUEST__INIT;
    b.estate_id = (char *) estate;
    b.from = (char *) from;
    b.to = (char *) to;
    b.group_by = (char *) group_by;
    return wt_call (t, "workorder.kpi", &b.base, PM__V1__STATUS__OK)->workorder_kpi;
}

/* A queue's item for the order, or NULL. */
static inline const Pm__V1__QueueItem *
wt_queued (wt_t *t, const char *queue, const char *order_id)
{
    return pmt_queue_item (pmt_queue (t->f->d, queue), order_id);
}

/* --- upstream events ------------------------------------------------------------------------------ */

/* intake.unit.registered (and intake.keys.handed when keys) for unit
 * "ESTATE/BUILDING-UNIT" with one owner. */
static inline void
wt_unit (wt_t *t, const char *unit_id, bool keys)
{
    char estate[16], id[32];
    snprintf (estate, sizeof estate, "%.*s", (int) (strchr (unit_id, '/') - unit_id), unit_id);
    Pm__V1__Owner owner = PM__V1__OWNER__INIT, *owners[1] = { &owner };
    owner.name = "张伟";
    owner.phone = "13812345678";
    Pm__V1__Unit u = PM__V1__UNIT__INIT;
    u.unit_id = (char *) unit_id;
    u.estate_id = estate;
    u.building = "1";
    u.area_cm2 = 8950;
    u.owners = owners;
    u.n_owners = 1;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.source = "intake";
    ev.seq = ++t->intake_seq;
    snprintf (id, sizeof id, "intake:%llu", (unsigned long long) ev.seq);
    ev.id = id;
    ev.type = "intake.unit.registered";
    ev.estate_id = estate;
    ev.unit_id = (char *) unit_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
    ev.unit = &u;
    pmt_event_applied (t->f->d, &ev);
    if (!keys)
        return;
    Pm__V1__KeysHanded kh = PM__V1__KEYS_HANDED__INIT;
    kh.unit_id = (char *) unit_id;
    kh.estate_id = estate;
    kh.key_set = "A";
    kh.keys = 2;
    kh.received_by = "张伟";
    kh.unit = &u;
    ev.seq = ++t->intake_seq;
    snprintf (id, sizeof id, "intake:%llu", (unsigned long long) ev.seq);
    ev.type = "intake.keys.handed";
    ev.payload_case = PM__V1__EVENT__PAYLOAD_KEYS_HANDED;
    ev.keys_handed = &kh;
    pmt_event_applied (t->f->d, &ev);
}

/* An inspection.defect.* event for defect "UNIT#no"; deadline 0: none. */
static inline Pm__V1__Reply *
wt_defect (wt_t *t, const char *type, const char *unit_id, unsigned no, const char *category, int severity,
           int64_t deadline_ms, const char *reason)
{
    char estate[16], id[32], defect_id[64];
    snprintf (estate, sizeof estate, "%.*s", (int) (strchr (unit_id, '/') - unit_id), unit_id);
    snprintf (defect_id, sizeof defect_id, "%s#%u", unit_id, no);
    Pm__V1__Defect d = PM__V1__DEFECT__INIT;
    d.defect_id = defect_id;
    d.unit_id = (char *) unit_id;
    d.estate_id = estate;
    d.building = "1";
    d.round_no = 1;
    d.room = "卫生间";
    d.category = (char *) category;
    d.severity = severity;
    d.description = "地漏返水";
    d.recorded_by = "验房员小刘";
    d.deadline_ms = deadline_ms;
    d.reason = (char *) (reason ? reason : "");
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.source = "inspection";
    ev.seq = ++t->inspection_seq;
    snprintf (id, sizeof id, "inspection:%llu", (unsigned long long) ev.seq);
    ev.id = id;
    ev.type = (char *) type;
    ev.estate_id = estate;
    ev.unit_id = (char *) unit_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_DEFECT;
    ev.defect = &d;
    Pm__V1__Reply *r = pmt_apply_event (t->f->d, &ev);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("%s %s: %s: %s", type, defect_id, pm_status_name (r->status), r->message);
    assert_true (pm_daemon_applied (t->f->d, "inspection") == ev.seq);
    return r;
}

/* --- the outbox, as a consumer reads it ------------------------------------------------------------- */

typedef struct {
    Pm__V1__Event **ev; /* the caller's: wt_events_free */
    size_t n;
} wt_events_t;

/* Every committed event from seq `from` on (events.replay, page by page). */
static inline wt_events_t
wt_events (wt_t *t, uint64_t from)
{
    wt_events_t out = { NULL, 0 };
    for (;;) {
        Pm__V1__EventsReplayRequest b = PM__V1__EVENTS_REPLAY_REQUEST__INIT;
        b.from_seq = from;
        b.max = 1000;
        Pm__V1__Reply *r = wt_call (t, "events.replay", &b.base, PM__V1__STATUS__OK);
        Pm__V1__EventsReplayReply *rr = r->events_replay;
        for (size_t i = 0; i < rr->n_events; i++) {
            size_t len = pm__v1__event__get_packed_size (rr->events[i]);
            uint8_t *buf = pm_xmalloc (len + 1);
            pm__v1__event__pack (rr->events[i], buf);
            out.ev = pm_xrealloc (out.ev, (out.n + 1) * sizeof *out.ev);
            out.ev[out.n++] = pm__v1__event__unpack (NULL, len, buf);
            free (buf);
        }
        if (!rr->n_events || rr->events[rr->n_events - 1]->seq >= rr->last_seq)
            return out;
        from = rr->events[rr->n_events - 1]->seq + 1;
    }
}

static inline void
wt_events_free (wt_events_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        pm__v1__event__free_unpacked (e->ev[i], NULL);
    free (e->ev);
    e->ev = NULL;
    e->n = 0;
}

/* How many of e are of type (and, when order_id, about that order). */
static inline size_t
wt_count (const wt_events_t *e, const char *type, const char *order_id)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++) {
        const Pm__V1__Event *ev = e->ev[i];
        if (strcmp (ev->type, type) != 0)
            continue;
        const char *id = ev->payload_case == PM__V1__EVENT__PAYLOAD_ORDER ? ev->order->order_id
                         : ev->payload_case == PM__V1__EVENT__PAYLOAD_SLA ? ev->sla->order_id
                                                                          : "";
        n += !order_id || strcmp (id, order_id) == 0;
    }
    return n;
}

/* The last event of type about order_id, or NULL. */
static inline const Pm__V1__Event *
wt_last (const wt_events_t *e, const char *type, const char *order_id)
{
    for (size_t i = e->n; i-- > 0;) {
        const Pm__V1__Event *ev = e->ev[i];
        if (strcmp (ev->type, type) != 0)
            continue;
        const char *id = ev->payload_case == PM__V1__EVENT__PAYLOAD_ORDER ? ev->order->order_id
                         : ev->payload_case == PM__V1__EVENT__PAYLOAD_SLA ? ev->sla->order_id
                                                                          : "";
        if (strcmp (id, order_id) == 0)
            return ev;
    }
    return NULL;
}

static inline uint64_t
wt_last_seq (wt_t *t)
{
    return pm_daemon_last_seq (t->f->d);
}

/* Fails unless the reply's message contains every needle (NULL-terminated). */
static inline void
wt_says (const Pm__V1__Reply *r, ...)
{
    va_list ap;
    va_start (ap, r);
    const char *needle;
    while ((needle = va_arg (ap, const char *)))
        if (!r->message || !strstr (r->message, needle))
            fail_msg ("reply '%s' does not say '%s'", r->message ? r->message : "", needle);
    va_end (ap);
}

#endif
