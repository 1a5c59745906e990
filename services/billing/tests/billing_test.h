/* billing_test.h - what billing's test programs share: the daemon on a temp
 * LMDB with the manual clock at 2026-12-01 09:00 (estate time), intake's
 * events as intake emits them (in seq order), and the calls a cashier or an
 * accountant makes. Static inline: each test program takes what it uses. */
#ifndef BILLING_TEST_H
#define BILLING_TEST_H

#define _GNU_SOURCE
#include "support.h"

#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BT_START "2026-12-01T01:00:00Z" /* 09:00 in Shanghai */
#define BT_DAY (86400LL * 1000)

typedef struct {
    pmt_fixture_t *f;
    pm_daemon_t *d;
    uint64_t seq;     /* intake's last event seq */
    unsigned reqno;
} bt_t;

static inline bt_t *
bt_new (const char *extra)
{
    bt_t *t = pm_xcalloc (1, sizeof *t);
    t->f = pmt_fixture_new (&billing_spec, extra);
    t->d = t->f->d;
    pmt_clock_set (t->d, BT_START);
    return t;
}

static inline void
bt_restart (bt_t *t)
{
    pmt_fixture_restart (t->f);
    t->d = t->f->d;
}

static inline void
bt_free (bt_t **p)
{
    if (!*p)
        return;
    pmt_fixture_destroy (&(*p)->f);
    free (*p);
    *p = NULL;
}

static inline int64_t
bt_now (bt_t *t)
{
    return pm_clock_now_ms (pm_daemon_clock (t->d));
}

/* A fresh request id (arena-free, static buffers in rotation). */
static inline const char *
bt_id (bt_t *t)
{
    static char ids[8][32];
    char *s = ids[t->reqno % 8];
    snprintf (s, 32, "req-%06u", ++t->reqno);
    return s;
}

/* Local midnight of a date, ms. */
static inline int64_t
bt_date (int y, int m, int d)
{
    return billing_days_from_civil (y, m, d) * BT_DAY - 8 * 3600 * 1000LL;
}

/* --- intake's events ---------------------------------------------------------------- */

typedef struct {
    Pm__V1__Event ev;
    Pm__V1__Unit unit;
    Pm__V1__CheckedIn ci;
    Pm__V1__KeysHanded kh;
    char id[32], unit_id[64], estate[16], building[16], unit_type[16];
} bt_event_t;

/* An event of intake's for unit_id ("E01/3-1201"): its unit with area, parking and type. */
static inline void
bt_event (bt_t *t, bt_event_t *e, const char *type, const char *unit_id, int64_t area_cm2, uint32_t parking,
          const char *unit_type)
{
    memset (e, 0, sizeof *e);
    pm__v1__event__init (&e->ev);
    pm__v1__unit__init (&e->unit);
    snprintf (e->unit_id, sizeof e->unit_id, "%s", unit_id);
    const char *slash = strchr (unit_id, '/'), *dash = slash ? strchr (slash, '-') : NULL;
    snprintf (e->estate, sizeof e->estate, "%.*s", slash ? (int) (slash - unit_id) : 0, unit_id);
    snprintf (e->building, sizeof e->building, "%.*s", slash && dash ? (int) (dash - slash - 1) : 0, slash ? slash + 1 : "");
    snprintf (e->unit_type, sizeof e->unit_type, "%s", unit_type ? unit_type : "");
    e->unit.unit_id = e->unit_id;
    e->unit.estate_id = e->estate;
    e->unit.building = e->building;
    e->unit.unit = dash ? (char *) dash + 1 : "";
    e->unit.area_cm2 = area_cm2;
    e->unit.parking_spaces = parking;
    e->unit.unit_type = e->unit_type;
    e->ev.source = "intake";
    e->ev.seq = ++t->seq;
    snprintf (e->id, sizeof e->id, "intake:%llu", (unsigned long long) e->ev.seq);
    e->ev.id = e->id;
    e->ev.type = (char *) type;
    e->ev.at_ms = bt_now (t);
    e->ev.estate_id = e->estate;
    e->ev.unit_id = e->unit_id;
    if (strcmp (type, "intake.unit.checked_in") == 0) {
        pm__v1__checked_in__init (&e->ci);
        e->ci.unit_id = e->unit_id;
        e->ci.estate_id = e->estate;
        e->ci.owner_name = "张伟";
        e->ci.at_ms = bt_now (t);
        e->ci.unit = &e->unit;
        e->ev.payload_case = PM__V1__EVENT__PAYLOAD_CHECKED_IN;
        e->ev.checked_in = &e->ci;
    }
    else if (strcmp (type, "intake.keys.handed") == 0) {
        pm__v1__keys_handed__init (&e->kh);
        e->kh.unit_id = e->unit_id;
        e->kh.estate_id = e->estate;
        e->kh.key_set = "A";
        e->kh.keys = 3;
        e->kh.received_by = "张伟";
        e->kh.at_ms = bt_now (t);
        e->kh.unit = area_cm2 > 0 ? &e->unit : NULL; /* 0: as billing already knows it */
        e->ev.payload_case = PM__V1__EVENT__PAYLOAD_KEYS_HANDED;
        e->ev.keys_handed = &e->kh;
    }
    else {
        e->ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
        e->ev.unit = &e->unit;
    }
}

static inline void
bt_apply (bt_t *t, bt_event_t *e)
{
    pmt_event_applied (t->d, &e->ev);
}

/* intake.unit.checked_in now, for a unit of area (cm2), parking spaces and type. */
static inline void
bt_check_in (bt_t *t, const char *unit_id, int64_t area_cm2, uint32_t parking, const char *unit_type)
{
    bt_event_t e;
    bt_event (t, &e, "intake.unit.checked_in", unit_id, area_cm2, parking, unit_type);
    bt_apply (t, &e);
}

/* intake.keys.handed now (area 0: the event carries no unit). */
static inline void
bt_keys (bt_t *t, const char *unit_id, int64_t area_cm2, uint32_t parking)
{
    bt_event_t e;
    bt_event (t, &e, "intake.keys.handed", unit_id, area_cm2, parking, "");
    bt_apply (t, &e);
}

/* --- commands ------------------------------------------------------------------------- */

/* A schedule: rates in yuan as text; items "垃圾清运费=300.00", deposits "装修押金=2000.00" (NULL-terminated). */
static inline Pm__V1__Reply *
bt_schedule_try (bt_t *t, const char *estate, const char *date, const char *property_fee, const char *fund,
                 const char *parking, uint32_t prepaid, const char *const *items, const char *const *deposits)
{
    Pm__V1__BillingScheduleSetRequest q = PM__V1__BILLING_SCHEDULE_SET_REQUEST__INIT;
    Pm__V1__FeeItem it[16], *itp[16];
    char names[16][64], amounts[16][32];
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (const char *const *x = pass ? deposits : items; x && *x && n < 16; x++, n++) {
            pm__v1__fee_item__init (&it[n]);
            const char *eq = strchr (*x, '=');
            snprintf (names[n], sizeof names[n], "%.*s", (int) (eq - *x), *x);
            snprintf (amounts[n], sizeof amounts[n], "%s", eq + 1);
            it[n].name = names[n];
            it[n].amount = amounts[n];
            it[n].deposit = pass == 1;
            itp[n] = &it[n];
        }
    q.estate_id = (char *) estate;
    q.effective_date = (char *) date;
    q.property_fee = (char *) property_fee;
    q.maintenance_fund = (char *) fund;
    q.parking = (char *) parking;
    q.prepaid_months = prepaid;
    q.items = itp;
    q.n_items = n;
    return pmt_call (t->d, bt_id (t), "billing.schedule.set", &q.base);
}

/* The usual schedule: 2.80 元/m2/月, 维修基金 60.00, parking 150.00, prepaid months, 垃圾清运费 300, 装修押金 2000. */
static inline void
bt_schedule (bt_t *t, const char *estate, const char *date, uint32_t prepaid)
{
    static const char *const items[] = { "垃圾清运费=300.00", NULL };
    static const char *const deposits[] = { "装修押金=2000.00", NULL };
    Pm__V1__Reply *r = bt_schedule_try (t, estate, date, "2.80", "60.00", "150.00", prepaid, items, deposits);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("schedule: %s: %s", pm_status_name (r->status), r->message);
}

/* A schedule with only 物业费 (and no items): invoices of one line, for arithmetic. */
static inline void
bt_schedule_plain (bt_t *t, const char *estate, const char *date, const char *rate, uint32_t prepaid)
{
    Pm__V1__Reply *r = bt_schedule_try (t, estate, date, rate, "0", "0", prepaid, NULL, NULL);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("schedule: %s: %s", pm_status_name (r->status), r->message);
}

/* billing.payment.record; the reply is valid until the next apply. */
static inline Pm__V1__Reply *
bt_pay (bt_t *t, const char *invoice_id, const char *unit_id, int64_t fen, const char *channel, const char *ref,
        bool allow_credit)
{
    Pm__V1__BillingPaymentRecordRequest q = PM__V1__BILLING_PAYMENT_RECORD_REQUEST__INIT;
    q.invoice_id = (char *) (invoice_id ? invoice_id : "");
    q.unit_id = (char *) (unit_id ? unit_id : "");
    q.amount_fen = fen;
    q.channel = (char *) channel;
    q.external_ref = (char *) ref;
    q.allow_credit = allow_credit;
    return pmt_call (t->d, bt_id (t), "billing.payment.record", &q.base);
}

static inline Pm__V1__BillingPaymentRecordReply *
bt_pay_ok (bt_t *t, const char *invoice_id, const char *unit_id, int64_t fen, const char *channel, const char *ref)
{
    Pm__V1__Reply *r = bt_pay (t, invoice_id, unit_id, fen, channel, ref, false);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("payment %s: %s: %s", ref, pm_status_name (r->status), r->message);
    return r->billing_payment_record;
}

static inline Pm__V1__BillingInvoiceGetReply *
bt_invoice (bt_t *t, const char *invoice_id)
{
    Pm__V1__BillingInvoiceGetRequest q = PM__V1__BILLING_INVOICE_GET_REQUEST__INIT;
    q.invoice_id = (char *) invoice_id;
    Pm__V1__Reply *r = pmt_call_expect (t->d, "read", "billing.invoice.get", &q.base, PM__V1__STATUS__OK);
    return r->billing_invoice_get;
}

static inline Pm__V1__BillingUnitGetReply *
bt_unit (bt_t *t, const char *unit_id)
{
    Pm__V1__BillingUnitGetRequest q = PM__V1__BILLING_UNIT_GET_REQUEST__INIT;
    q.unit_id = (char *) unit_id;
    Pm__V1__Reply *r = pmt_call_expect (t->d, "read", "billing.unit.get", &q.base, PM__V1__STATUS__OK);
    return r->billing_unit_get;
}

/* The move-in invoice id of a unit (copied into a static buffer in rotation). */
static inline const char *
bt_move_in (bt_t *t, const char *unit_id)
{
    static char ids[8][32];
    static unsigned n;
    char *s = ids[n++ % 8];
    snprintf (s, 32, "%s", bt_unit (t, unit_id)->move_in_invoice);
    return s;
}

static inline Pm__V1__Reply *
bt_run (bt_t *t, const char *estate, const char *period)
{
    Pm__V1__BillingRunRequest q = PM__V1__BILLING_RUN_REQUEST__INIT;
    q.estate_id = (char *) estate;
    q.period = (char *) period;
    return pmt_call (t->d, bt_id (t), "billing.run", &q.base);
}

/* How many emitted events of the last apply have this type. */
static inline int
bt_emitted_count (bt_t *t, const char *type)
{
    Pm__V1__Event **evs;
    size_t n = pmt_emitted (t->d, &evs);
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += strcmp (evs[i]->type, type) == 0;
    return c;
}

/* billing's outbox from seq 1 (events.replay, page by page), for a callback. */
static inline uint64_t
bt_replay (bt_t *t, void (*fn) (const Pm__V1__Event *ev, void *arg), void *arg)
{
    uint64_t from = 1, n = 0;
    for (;;) {
        Pm__V1__EventsReplayRequest q = PM__V1__EVENTS_REPLAY_REQUEST__INIT;
        q.from_seq = from;
        q.max = 1000;
        Pm__V1__Reply *r = pmt_call_expect (t->d, "replay", "events.replay", &q.base, PM__V1__STATUS__OK);
        size_t got = r->events_replay->n_events;
        for (size_t i = 0; i < got; i++)
            fn (r->events_replay->events[i], arg);
        n += got;
        from += got;
        if (got == 0 || from > r->events_replay->last_seq)
            return n;
    }
}

#endif
