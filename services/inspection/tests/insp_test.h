/* insp_test.h - what inspection's test programs share: the daemon on a temp
 * LMDB (pmt_fixture), intake's and workorder's events as those daemons emit
 * them, one call per method, and a log of every event inspection emitted
 * (copied out of the arena), so tests can recompute what a consumer sees. */
#ifndef INSP_TEST_H
#define INSP_TEST_H

#define _GNU_SOURCE
#include "support.h"

#include "inspection.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_UNUSED __attribute__ ((unused))

typedef struct {
    pmt_fixture_t *f;
    uint64_t intake_seq, wo_seq;
    unsigned req_n;
    uint64_t seen_seq;   /* events up to this seq are in the log */
    Pm__V1__Event **log; /* every event emitted, in order (malloc'd copies) */
    size_t nlog, caplog;
} t_env_t;

static t_env_t *g;

/* Keeps a copy of what the last apply emitted (a batch of reads leaves the
 * previous batch's events in place: they are taken once, by seq). */
static void
t_harvest (void)
{
    Pm__V1__Event **evs;
    size_t n = pmt_emitted (g->f->d, &evs);
    for (size_t i = 0; i < n; i++) {
        if (evs[i]->seq <= g->seen_seq)
            continue;
        assert_true (evs[i]->seq == g->seen_seq + 1); /* no gap: nothing was missed */
        g->seen_seq = evs[i]->seq;
        size_t len = pm__v1__event__get_packed_size (evs[i]);
        uint8_t *buf = malloc (len + 1);
        pm__v1__event__pack (evs[i], buf);
        Pm__V1__Event *copy = pm__v1__event__unpack (NULL, len, buf);
        free (buf);
        assert_non_null (copy);
        if (g->nlog == g->caplog) {
            g->caplog = g->caplog ? 2 * g->caplog : 64;
            g->log = realloc (g->log, g->caplog * sizeof *g->log);
        }
        g->log[g->nlog++] = copy;
    }
}

static T_UNUSED int
t_setup_with (void **state, const char *extra)
{
    g = calloc (1, sizeof *g);
    g->f = pmt_fixture_new (&inspection_spec, extra);
    pmt_clock_set (g->f->d, "2026-12-01T01:00:00Z"); /* 09:00 in Shanghai */
    *state = g;
    return 0;
}

static T_UNUSED int
t_setup (void **state)
{
    return t_setup_with (state, NULL);
}

static T_UNUSED int
t_teardown (void **state)
{
    pmt_fixture_destroy (&g->f);
    for (size_t i = 0; i < g->nlog; i++)
        pm__v1__event__free_unpacked (g->log[i], NULL);
    free (g->log);
    free (g);
    g = NULL;
    *state = NULL;
    return 0;
}

/* --- upstream events ----------------------------------------------------------- */

/* Applies an intake event for unit "E/B/U" (Unit payload built from the id). */
static T_UNUSED Pm__V1__Reply *
t_intake_unit (const char *type, const char *unit_id)
{
    char estate[32] = "", building[32] = "", id[48];
    sscanf (unit_id, "%31[^/]/%31[^/]", estate, building);
    Pm__V1__Unit unit = PM__V1__UNIT__INIT;
    unit.unit_id = (char *) unit_id;
    unit.estate_id = estate;
    unit.estate_name = "Riverside Gardens";
    unit.building = building;
    unit.unit = (char *) strrchr (unit_id, '/') + 1;
    unit.area_cm2 = 8950;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    Pm__V1__CheckedIn ci = PM__V1__CHECKED_IN__INIT;
    ev.source = "intake";
    ev.seq = ++g->intake_seq;
    snprintf (id, sizeof id, "intake:%llu", (unsigned long long) ev.seq);
    ev.id = id;
    ev.type = (char *) type;
    ev.at_ms = 1764550000000;
    ev.estate_id = estate;
    ev.unit_id = (char *) unit_id;
    ev.correlation_id = "test";
    if (strcmp (type, "intake.unit.checked_in") == 0) {
        ci.unit_id = (char *) unit_id;
        ci.estate_id = estate;
        ci.owner_name = "张伟";
        ci.at_ms = 1764550000000;
        ci.unit = &unit;
        ev.payload_case = PM__V1__EVENT__PAYLOAD_CHECKED_IN;
        ev.checked_in = &ci;
    } else {
        ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
        ev.unit = &unit;
    }
    Pm__V1__Reply *r = pmt_apply_event (g->f->d, &ev);
    t_harvest ();
    return r;
}

/* Registers and checks in a unit: its inspection is open. */
static T_UNUSED void
t_checked_in (const char *unit_id)
{
    assert_int_equal (t_intake_unit ("intake.unit.registered", unit_id)->status, PM__V1__STATUS__OK);
    assert_int_equal (t_intake_unit ("intake.unit.checked_in", unit_id)->status, PM__V1__STATUS__OK);
}

/* Applies workorder.order.<what> for a defect's order in state. */
static T_UNUSED Pm__V1__Reply *
t_order (const char *what, const char *order_id, const char *defect_id, Pm__V1__OrderState state)
{
    char type[64], id[48];
    snprintf (type, sizeof type, "workorder.order.%s", what);
    Pm__V1__WorkOrder o = PM__V1__WORK_ORDER__INIT;
    o.order_id = (char *) order_id;
    o.source = PM__V1__ORDER_SOURCE__DEFECT;
    o.defect_id = (char *) defect_id;
    o.unit_id = "";
    o.category = "defect";
    o.state = state;
    o.technician = "王师傅";
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.source = "workorder";
    ev.seq = ++g->wo_seq;
    snprintf (id, sizeof id, "workorder:%llu", (unsigned long long) ev.seq);
    ev.id = id;
    ev.type = type;
    ev.at_ms = 1764550000000;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_ORDER;
    ev.order = &o;
    Pm__V1__Reply *r = pmt_apply_event (g->f->d, &ev);
    t_harvest ();
    return r;
}

/* An order created and then done for defect_id (order id "WO-<defect>"). */
static T_UNUSED void
t_rectify (const char *defect_id)
{
    char oid[96];
    snprintf (oid, sizeof oid, "WO-%s", defect_id);
    assert_int_equal (t_order ("created", oid, defect_id, PM__V1__ORDER_STATE__ORDER_OPEN)->status, PM__V1__STATUS__OK);
    assert_int_equal (t_order ("done", oid, defect_id, PM__V1__ORDER_STATE__DONE)->status, PM__V1__STATUS__OK);
}

/* Moves the manual clock (fires what fell due) and keeps what it emitted. */
static T_UNUSED void
t_advance (const char *by)
{
    pmt_clock_advance (g->f->d, by);
    t_harvest ();
}

/* --- calls ------------------------------------------------------------------------ */

static T_UNUSED Pm__V1__Reply *
t_call (const char *method, ProtobufCMessage *body, int want)
{
    char id[32];
    snprintf (id, sizeof id, "t-%u", ++g->req_n);
    Pm__V1__Reply *r = pmt_call_expect (g->f->d, id, method, body, want);
    t_harvest ();
    return r;
}

static T_UNUSED Pm__V1__Reply *
t_start (const char *unit_id, bool full, int want)
{
    Pm__V1__InspectionRoundStartRequest b = PM__V1__INSPECTION_ROUND_START_REQUEST__INIT;
    b.unit_id = (char *) unit_id;
    b.inspector = "李工";
    b.full = full;
    return t_call ("inspection.round.start", &b.base, want);
}

static T_UNUSED Pm__V1__Reply *
t_all_ok (const char *unit_id, int want)
{
    Pm__V1__InspectionItemsRecordRequest b = PM__V1__INSPECTION_ITEMS_RECORD_REQUEST__INIT;
    b.unit_id = (char *) unit_id;
    b.remaining_ok = true;
    return t_call ("inspection.items.record", &b.base, want);
}

static T_UNUSED Pm__V1__Reply *
t_item (const char *unit_id, const char *room, const char *category, Pm__V1__ItemResult result, int want)
{
    Pm__V1__InspectionItemsRecordRequest b = PM__V1__INSPECTION_ITEMS_RECORD_REQUEST__INIT;
    Pm__V1__InspectionItem it = PM__V1__INSPECTION_ITEM__INIT, *itp = &it;
    it.room = (char *) room;
    it.category = (char *) category;
    it.result = result;
    b.unit_id = (char *) unit_id;
    b.items = &itp;
    b.n_items = 1;
    return t_call ("inspection.items.record", &b.base, want);
}

static T_UNUSED Pm__V1__Reply *
t_defect_sev (const char *unit_id, const char *room, const char *category, Pm__V1__Severity sev, int want)
{
    Pm__V1__InspectionDefectRecordRequest b = PM__V1__INSPECTION_DEFECT_RECORD_REQUEST__INIT;
    b.unit_id = (char *) unit_id;
    b.room = (char *) room;
    b.category = (char *) category;
    b.severity = sev;
    b.description = "墙面空鼓";
    b.location = "东墙窗下";
    char *photos[] = { "photo:123", "https://photos.example.com/p/456.jpg" };
    b.photos = photos;
    b.n_photos = 2;
    return t_call ("inspection.defect.record", &b.base, want);
}

/* Records a MAJOR defect; returns its id (static buffer, overwritten by the next call). */
static T_UNUSED const char *
t_defect (const char *unit_id, const char *room, const char *category)
{
    static char id[96];
    Pm__V1__Reply *r = t_defect_sev (unit_id, room, category, PM__V1__SEVERITY__MAJOR, PM__V1__STATUS__OK);
    snprintf (id, sizeof id, "%s", r->inspection_defect_record->defect->defect_id);
    return id;
}

static T_UNUSED Pm__V1__Reply *
t_complete (const char *unit_id, int want)
{
    Pm__V1__InspectionRoundCompleteRequest b = PM__V1__INSPECTION_ROUND_COMPLETE_REQUEST__INIT;
    b.unit_id = (char *) unit_id;
    return t_call ("inspection.round.complete", &b.base, want);
}

static T_UNUSED Pm__V1__Reply *
t_verify (const char *defect_id, int want)
{
    Pm__V1__InspectionDefectVerifyRequest b = PM__V1__INSPECTION_DEFECT_VERIFY_REQUEST__INIT;
    b.defect_id = (char *) defect_id;
    b.by = "李工";
    return t_call ("inspection.defect.verify", &b.base, want);
}

static T_UNUSED Pm__V1__Reply *
t_reopen (const char *defect_id, const char *reason, int want)
{
    Pm__V1__InspectionDefectReopenRequest b = PM__V1__INSPECTION_DEFECT_REOPEN_REQUEST__INIT;
    b.defect_id = (char *) defect_id;
    b.reason = (char *) reason;
    b.by = "李工";
    return t_call ("inspection.defect.reopen", &b.base, want);
}

static T_UNUSED Pm__V1__Reply *
t_accept (const char *unit_id, const char *sig, int want)
{
    Pm__V1__InspectionAcceptWithDefectsRequest b = PM__V1__INSPECTION_ACCEPT_WITH_DEFECTS_REQUEST__INIT;
    b.unit_id = (char *) unit_id;
    b.signature_ref = (char *) sig;
    return t_call ("inspection.accept_with_defects", &b.base, want);
}

static T_UNUSED Pm__V1__InspectionUnitGetReply *
t_unit (const char *unit_id)
{
    Pm__V1__InspectionUnitGetRequest b = PM__V1__INSPECTION_UNIT_GET_REQUEST__INIT;
    b.unit_id = (char *) unit_id;
    Pm__V1__Reply *r = t_call ("inspection.unit.get", &b.base, PM__V1__STATUS__OK);
    assert_non_null (r->inspection_unit_get);
    return r->inspection_unit_get;
}

static T_UNUSED Pm__V1__InspectionKpiReply *
t_kpi (const char *estate_id)
{
    Pm__V1__InspectionKpiRequest b = PM__V1__INSPECTION_KPI_REQUEST__INIT;
    b.estate_id = (char *) estate_id;
    Pm__V1__Reply *r = t_call ("inspection.kpi", &b.base, PM__V1__STATUS__OK);
    assert_non_null (r->inspection_kpi);
    return r->inspection_kpi;
}

/* The defect of unit.get with id, or NULL. */
static T_UNUSED Pm__V1__DefectView *
t_defect_view (Pm__V1__InspectionUnitGetReply *u, const char *defect_id)
{
    for (size_t i = 0; i < u->n_defects; i++)
        if (strcmp (u->defects[i]->defect->defect_id, defect_id) == 0)
            return u->defects[i];
    return NULL;
}

/* --- the event log ----------------------------------------------------------------- */

/* Events logged since index from, of type (exact), counted. */
static T_UNUSED size_t
t_count (size_t from, const char *type)
{
    size_t n = 0;
    for (size_t i = from; i < g->nlog; i++)
        n += strcmp (g->log[i]->type, type) == 0;
    return n;
}

/* The last logged event of type, or NULL. */
static T_UNUSED Pm__V1__Event *
t_last (const char *type)
{
    for (size_t i = g->nlog; i-- > 0;)
        if (strcmp (g->log[i]->type, type) == 0)
            return g->log[i];
    return NULL;
}

#endif
