/* test_gateway_log - the gateway's log of every daemon's events, on a real
 * LMDB through the runtime's group commit: one order over all sources, each
 * event once, findable by source:seq (what SSE resumes from), the estates the
 * board lists, a unit's events with their deliveries, and pruning. */
#define _GNU_SOURCE
#include "support.h"

#include "gateway.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *s_home;

static int
s_setup (void **state)
{
    *state = pmt_fixture_new (&gateway_spec, NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    pmt_fixture_destroy ((pmt_fixture_t **) state);
    return 0;
}

/* An event of source with no payload (the log keeps any). */
typedef struct {
    Pm__V1__Event ev;
    char id[48], type[64], unit[48];
} s_event_t;

static Pm__V1__Event *
s_event (s_event_t *e, pmt_fixture_t *f, const char *source, uint64_t seq, const char *type, const char *unit)
{
    memset (e, 0, sizeof *e);
    pm__v1__event__init (&e->ev);
    snprintf (e->id, sizeof e->id, "%s:%llu", source, (unsigned long long) seq);
    snprintf (e->type, sizeof e->type, "%s", type);
    snprintf (e->unit, sizeof e->unit, "%s", unit ? unit : "");
    e->ev.source = (char *) source;
    e->ev.seq = seq;
    e->ev.id = e->id;
    e->ev.type = e->type;
    e->ev.unit_id = e->unit;
    e->ev.estate_id = "E01";
    e->ev.at_ms = pm_clock_now_ms (pm_daemon_clock (f->d));
    return &e->ev;
}

/* The entry at pos, copied out of its txn (caller frees type/json via the struct's buffers). */
typedef struct {
    bool found;
    char source[32], type[64], unit[48];
    uint64_t seq;
    char *json;
} s_entry_t;

static s_entry_t
s_entry (pmt_fixture_t *f, uint64_t pos)
{
    s_entry_t out = { 0 };
    pm_txn_t t;
    assert_int_equal (pm_txn_begin_read (&t, pm_daemon_store (f->d)), PM_OK);
    pm_key_t k;
    MDB_val v;
    gw_entry_t e;
    if (pm_txn_get_key (&t, GW_LOG, pm_key (&k, "U", pos), &v) == PM_OK
        && gw_entry_parse (pos, v.mv_data, v.mv_size, &e) == PM_OK) {
        out.found = true;
        snprintf (out.source, sizeof out.source, "%s", e.source);
        snprintf (out.type, sizeof out.type, "%s", e.type);
        snprintf (out.unit, sizeof out.unit, "%s", e.unit_id);
        out.seq = e.seq;
        size_t n;
        out.json = gw_entry_json (&e, &n); /* rendered when served, as the stream and webhooks do */
    }
    pm_txn_abort (&t);
    return out;
}

static uint64_t
s_find (pmt_fixture_t *f, const char *source, uint64_t seq)
{
    pm_txn_t t;
    assert_int_equal (pm_txn_begin_read (&t, pm_daemon_store (f->d)), PM_OK);
    uint64_t pos = 0;
    if (gw_log_find (&t, source, seq, &pos) != PM_OK)
        pos = 0;
    pm_txn_abort (&t);
    return pos;
}

static uint64_t
s_first_after (pmt_fixture_t *f, const char *source, uint64_t seq)
{
    pm_txn_t t;
    assert_int_equal (pm_txn_begin_read (&t, pm_daemon_store (f->d)), PM_OK);
    uint64_t pos = gw_log_first_after (&t, source, seq);
    pm_txn_abort (&t);
    return pos;
}

/* --- tests ------------------------------------------------------------------------------ */

static void
test_events_of_every_source_in_one_order (void **state)
{
    pmt_fixture_t *f = *state;
    s_event_t e;
    pmt_event_applied (f->d, s_event (&e, f, "intake", 1, "intake.unit.registered", "E01/1-101"));
    pmt_event_applied (f->d, s_event (&e, f, "billing", 1, "billing.invoice.issued", "E01/1-101"));
    pmt_event_applied (f->d, s_event (&e, f, "intake", 2, "intake.unit.registered", "E01/1-102"));
    pmt_event_applied (f->d, s_event (&e, f, "notify", 1, "notify.message.sent", ""));
    pmt_event_applied (f->d, s_event (&e, f, "billing", 2, "billing.payment.recorded", "E01/1-101"));

    const char *want[][2] = { { "intake", "intake.unit.registered" },
                              { "billing", "billing.invoice.issued" },
                              { "intake", "intake.unit.registered" },
                              { "notify", "notify.message.sent" },
                              { "billing", "billing.payment.recorded" } };
    for (uint64_t pos = 1; pos <= 5; pos++) {
        s_entry_t en = s_entry (f, pos);
        assert_true (en.found);
        assert_string_equal (en.source, want[pos - 1][0]);
        assert_string_equal (en.type, want[pos - 1][1]);
        /* the stored JSON is the event as pmctl events prints it */
        assert_non_null (strstr (en.json, "\"type\":\""));
        assert_non_null (strstr (en.json, want[pos - 1][1]));
        free (en.json);
    }
    assert_false (s_entry (f, 6).found);
    assert_int_equal (pmt_metric (f->d, "gateway_log_last", ""), 5);
    /* source:seq names a position: what Last-Event-ID resumes from */
    assert_int_equal (s_find (f, "billing", 1), 2);
    assert_int_equal (s_find (f, "intake", 2), 3);
    assert_int_equal (s_find (f, "billing", 3), 0);
    /* from=intake:1 -> intake's next is at 3; billing after 2: none yet */
    assert_int_equal (s_first_after (f, "intake", 1), 3);
    assert_int_equal (s_first_after (f, "billing", 0), 2);
    assert_int_equal (s_first_after (f, "billing", 2), 0);
}

static void
test_an_event_enters_once (void **state)
{
    pmt_fixture_t *f = *state;
    s_event_t e;
    pmt_event_applied (f->d, s_event (&e, f, "intake", 1, "intake.unit.registered", "E01/1-101"));
    pmt_event_ignored (f->d, s_event (&e, f, "intake", 1, "intake.unit.registered", "E01/1-101")); /* replayed */
    pmt_event_ignored (f->d, s_event (&e, f, "intake", 3, "intake.unit.registered", "E01/1-103")); /* a gap */
    pmt_event_applied (f->d, s_event (&e, f, "intake", 2, "intake.unit.registered", "E01/1-102"));
    assert_int_equal (pmt_metric (f->d, "gateway_log_entries", ""), 2);
    assert_int_equal (s_find (f, "intake", 2), 2);
    pmt_fixture_restart (f);
    pmt_event_ignored (f->d, s_event (&e, f, "intake", 2, "intake.unit.registered", "E01/1-102"));
    pmt_event_applied (f->d, s_event (&e, f, "intake", 3, "intake.unit.registered", "E01/1-103"));
    assert_int_equal (s_find (f, "intake", 3), 3); /* the log continues after a restart */
}

static void
test_snapshot_events_build_estates_but_stay_out_of_the_log (void **state)
{
    pmt_fixture_t *f = *state;
    pmt_unit_event_t u;
    pmt_unit_event (&u, 1, "intake.unit.registered", "1-101", 9000);
    u.unit.building = "1";
    pmt_event_applied (f->d, &u.ev);
    pmt_unit_event (&u, 2, "intake.unit.registered", "2-201", 9000);
    u.unit.building = "2";
    pmt_event_applied (f->d, &u.ev);
    pmt_unit_event (&u, 3, "intake.unit.registered", "1-102", 9000);
    u.unit.building = "1";
    pmt_event_applied (f->d, &u.ev);
    /* a snapshot event (a rebuild restating intake's state: its handler is
     * called like any event's, with Event.snapshot set) */
    pmt_unit_event (&u, 4, "intake.unit.registered", "3-301", 9000);
    u.unit.building = "3";
    u.unit.estate_id = "E02";
    u.unit.estate_name = "Lakeside";
    u.ev.snapshot = true;
    pm_batch_item_t item = { NULL, &u.ev, NULL };
    assert_int_equal (pm_daemon_apply (f->d, &item, 1), PM_OK);
    assert_int_equal (pmt_metric (f->d, "gateway_log_entries", ""), 3);

    Pm__V1__GatewayEstateListRequest b = PM__V1__GATEWAY_ESTATE_LIST_REQUEST__INIT;
    Pm__V1__Reply *r = pmt_call_expect (f->d, "l", "gateway.estate.list", &b.base, PM__V1__STATUS__OK);
    Pm__V1__GatewayEstateListReply *l = r->gateway_estate_list;
    assert_int_equal (l->n_estates, 2);
    assert_string_equal (l->estates[0]->estate_id, "E01");
    assert_string_equal (l->estates[0]->estate_name, "Riverside Gardens");
    assert_int_equal (l->estates[0]->n_buildings, 2);
    assert_string_equal (l->estates[0]->buildings[0], "1");
    assert_string_equal (l->estates[0]->buildings[1], "2");
    assert_string_equal (l->estates[1]->estate_id, "E02");
    assert_string_equal (l->estates[1]->buildings[0], "3");
}

static void
test_unit_get_shows_its_events_and_deliveries (void **state)
{
    pmt_fixture_t *f = *state;
    s_event_t e;
    pmt_event_applied (f->d, s_event (&e, f, "intake", 1, "intake.unit.registered", "E01/1-101"));
    pmt_event_applied (f->d, s_event (&e, f, "intake", 2, "intake.unit.registered", "E01/1-102"));
    pmt_event_applied (f->d, s_event (&e, f, "billing", 1, "billing.invoice.issued", "E01/1-101"));

    Pm__V1__GatewayWebhookCreateRequest cb = PM__V1__GATEWAY_WEBHOOK_CREATE_REQUEST__INIT;
    char *t1[1] = { "billing." }, *t2[1] = { "intake.unit." };
    cb.url = "https://finance.example.com/h";
    cb.secret = "0123456789abcdef";
    cb.types = t1;
    cb.n_types = 1;
    cb.from_start = true;
    pmt_call_expect (f->d, "c1", "gateway.webhook.create", &cb.base, PM__V1__STATUS__OK);
    cb.url = "https://crm.example.com/h";
    cb.types = t2;
    pmt_call_expect (f->d, "c2", "gateway.webhook.create", &cb.base, PM__V1__STATUS__OK);
    Pm__V1__GatewayWebhookAckRequest ab = PM__V1__GATEWAY_WEBHOOK_ACK_REQUEST__INIT;
    ab.id = "WH-2";
    ab.cursor = 1;
    ab.cursor_event = "intake:1";
    pmt_call_expect (f->d, "a1", "gateway.webhook.ack", &ab.base, PM__V1__STATUS__OK);

    Pm__V1__GatewayUnitGetRequest ub = PM__V1__GATEWAY_UNIT_GET_REQUEST__INIT;
    ub.unit_id = "E01/1-101";
    Pm__V1__Reply *r = pmt_call_expect (f->d, "u", "gateway.unit.get", &ub.base, PM__V1__STATUS__OK);
    Pm__V1__GatewayUnitGetReply *u = r->gateway_unit_get;
    assert_int_equal (u->n_events, 2);
    assert_string_equal (u->events[0]->id, "intake:1");
    assert_int_equal (u->events[0]->n_delivered_to, 1);
    assert_string_equal (u->events[0]->delivered_to[0], "WH-2");
    assert_int_equal (u->events[0]->n_pending_for, 0); /* WH-1 takes billing's only */
    assert_string_equal (u->events[1]->id, "billing:1");
    assert_int_equal (u->events[1]->n_pending_for, 1);
    assert_string_equal (u->events[1]->pending_for[0], "WH-1");
    ub.unit_id = "E01/9-999";
    pmt_call_expect (f->d, "u2", "gateway.unit.get", &ub.base, PM__V1__STATUS__NOT_FOUND);
    ub.unit_id = "";
    pmt_call_expect (f->d, "u3", "gateway.unit.get", &ub.base, PM__V1__STATUS__INVALID);
}

static void
test_types_match_whole_dotted_parts (void **state)
{
    char *p1[] = { "billing.invoice." };
    assert_true (gw_types_match (p1, 1, "billing.invoice.issued"));
    assert_false (gw_types_match (p1, 1, "billing.payment.recorded"));
    char *p2[] = { "billing.invoice" };
    assert_true (gw_types_match (p2, 1, "billing.invoice.settled"));
    assert_false (gw_types_match (p2, 1, "billing.invoices.x")); /* not half a part */
    char *p3[] = { "intake.keys.handed", "notify." };
    assert_true (gw_types_match (p3, 2, "intake.keys.handed"));
    assert_true (gw_types_match (p3, 2, "notify.message.failed"));
    assert_false (gw_types_match (p3, 2, "intake.unit.registered"));
    assert_true (gw_types_match (NULL, 0, "anything.at.all"));
}

static void
test_old_entries_are_pruned (void **state)
{
    pmt_fixture_t *f = *state;
    s_event_t e;
    pmt_event_applied (f->d, s_event (&e, f, "intake", 1, "intake.unit.registered", "E01/1-101"));
    pmt_event_applied (f->d, s_event (&e, f, "billing", 1, "billing.invoice.issued", "E01/1-101"));
    pmt_clock_advance (f->d, "29d");
    pmt_event_applied (f->d, s_event (&e, f, "intake", 2, "intake.unit.registered", "E01/1-102"));
    assert_int_equal (pmt_metric (f->d, "gateway_log_entries", ""), 3); /* 29 days: kept */
    pmt_clock_advance (f->d, "2d"); /* the first two are 31 days old now */
    assert_int_equal (pmt_metric (f->d, "gateway_log_entries", ""), 1);
    assert_int_equal (s_find (f, "intake", 1), 0);
    assert_int_equal (s_find (f, "billing", 1), 0);
    assert_int_equal (s_find (f, "intake", 2), 3);
    Pm__V1__GatewayUnitGetRequest ub = PM__V1__GATEWAY_UNIT_GET_REQUEST__INIT;
    ub.unit_id = "E01/1-101";
    pmt_call_expect (f->d, "u", "gateway.unit.get", &ub.base, PM__V1__STATUS__NOT_FOUND);
    /* positions go on from where they were */
    pmt_event_applied (f->d, s_event (&e, f, "intake", 3, "intake.unit.registered", "E01/1-103"));
    assert_int_equal (s_find (f, "intake", 3), 4);
}

int
main (void)
{
    pm_log_init ("test_gateway_log", PM_LOG_ERROR);
    s_home = pmt_tmpdir ();
    setenv ("PM_HOME", s_home, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_events_of_every_source_in_one_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_an_event_enters_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_events_build_estates_but_stay_out_of_the_log, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_unit_get_shows_its_events_and_deliveries, s_setup, s_teardown),
        cmocka_unit_test (test_types_match_whole_dotted_parts),
        cmocka_unit_test_setup_teardown (test_old_entries_are_pruned, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    pmt_rmdir (s_home);
    return rc;
}
