/* test_notify - notify's projection of owners' contacts on a real LMDB, fed
 * with intake's events through the runtime's group commit (pm_daemon_apply),
 * without sockets: what an operator reading notify's contacts and metrics
 * would notice. */
#define _GNU_SOURCE
#include "support.h"

#include "notify.h"
#include "pm/err.h"
#include "pm/log.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef pmt_fixture_t s_fixture_t;
typedef pmt_unit_event_t s_event_t;

static int
s_setup (void **state)
{
    *state = pmt_fixture_new (&notify_spec, NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    pmt_fixture_destroy ((pmt_fixture_t **) state);
    return 0;
}

/* --- intake's events ------------------------------------------------------------ */

/* A registered event for unit (89.50 m2) without owners: add them with s_event_owner. */
static void
s_registered (s_event_t *e, uint64_t seq, const char *unit)
{
    pmt_unit_event (e, seq, "intake.unit.registered", unit, 8950);
}

static void
s_updated (s_event_t *e, uint64_t seq, const char *unit)
{
    pmt_unit_event (e, seq, "intake.unit.updated", unit, 8950);
}

/* The two owners used throughout. */
static void
s_owner_zhang (s_event_t *e)
{
    pmt_unit_event_owner (e, "Zhang Wei", "13812345678", "zhang.wei@example.com");
}

static void
s_owner_li (s_event_t *e)
{
    pmt_unit_event_owner (e, "Li Na", "13987654321", "li.na@example.com");
}

/* --- applying ---------------------------------------------------------------------- */

/* notify.contact.get (a READ route); the reply is valid until the next apply. */
static Pm__V1__Reply *
s_contact_get (s_fixture_t *f, const char *unit_id)
{
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    Pm__V1__NotifyContactGetRequest body = PM__V1__NOTIFY_CONTACT_GET_REQUEST__INIT;
    body.unit_id = (char *) unit_id;
    req.id = "read-contact";
    req.method = "notify.contact.get";
    assert_int_equal (pm_body_set (&req.base, "notify.contact.get", &body.base), PM_OK);
    return pmt_apply (f->d, &req);
}

static Pm__V1__NotifyContactGetReply *
s_contact_ok (s_fixture_t *f, const char *unit_id)
{
    Pm__V1__Reply *r = s_contact_get (f, unit_id);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("notify.contact.get %s: %s: %s", unit_id, pm_status_name (r->status), r->message);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_NOTIFY_CONTACT_GET);
    assert_non_null (r->notify_contact_get);
    return r->notify_contact_get;
}

static const Pm__V1__Owner *
s_owner (const Pm__V1__NotifyContactGetReply *c, const char *name)
{
    for (size_t i = 0; i < c->n_owners; i++)
        if (strcmp (c->owners[i]->name, name) == 0)
            return c->owners[i];
    return NULL;
}

static double
s_applied_total (s_fixture_t *f)
{
    return pmt_metric (f->d, "pm_consumer_applied_total", "source=\"intake\"");
}

/* notify_units and notify_contacts (total owners) must be units and owners. */
static void
s_assert_gauges (s_fixture_t *f, double units, double owners)
{
    double u = pmt_metric (f->d, "notify_units", "");
    double o = pmt_metric (f->d, "notify_contacts", "");
    if (u != units || o != owners)
        fail_msg ("notify_units %.0f, notify_contacts %.0f; expected %.0f and %.0f", u, o, units, owners);
}

/* --- tests ----------------------------------------------------------------------- */

static void
test_registered_events_build_contacts (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2;
    s_assert_gauges (f, 0, 0);
    s_registered (&e1, 1, "1-101");
    s_owner_zhang (&e1);
    s_registered (&e2, 2, "1-102");
    s_owner_zhang (&e2);
    s_owner_li (&e2);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_applied (f->d, &e2.ev);

    Pm__V1__NotifyContactGetReply *c = s_contact_ok (f, "E01/1-101");
    assert_string_equal (c->unit_id, "E01/1-101");
    assert_string_equal (c->estate_id, "E01");
    assert_string_equal (c->from_event, "intake:1");
    assert_int_equal (c->n_owners, 1);
    assert_string_equal (c->owners[0]->name, "Zhang Wei");
    /* the phone comes back in full: reminders are sent to it */
    assert_string_equal (c->owners[0]->phone, "13812345678");
    assert_string_equal (c->owners[0]->email, "zhang.wei@example.com");

    c = s_contact_ok (f, "E01/1-102");
    assert_string_equal (c->from_event, "intake:2");
    assert_int_equal (c->n_owners, 2);
    const Pm__V1__Owner *li = s_owner (c, "Li Na");
    assert_non_null (li);
    assert_string_equal (li->phone, "13987654321");
    assert_string_equal (li->email, "li.na@example.com");
    assert_non_null (s_owner (c, "Zhang Wei"));

    s_assert_gauges (f, 2, 3);
    assert_true (pm_daemon_applied (f->d, "intake") == 2);
    assert_int_equal (s_applied_total (f), 2);
}

static void
test_added_co_owner_raises_contacts_by_one (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    s_registered (&e, 1, "1-101");
    s_owner_zhang (&e);
    pmt_event_applied (f->d, &e.ev);
    s_assert_gauges (f, 1, 1);

    s_updated (&e, 2, "1-101");
    s_owner_zhang (&e);
    s_owner_li (&e);
    pmt_event_applied (f->d, &e.ev);
    s_assert_gauges (f, 1, 2);
    Pm__V1__NotifyContactGetReply *c = s_contact_ok (f, "E01/1-101");
    assert_int_equal (c->n_owners, 2);
    assert_non_null (s_owner (c, "Li Na"));
    assert_string_equal (c->from_event, "intake:2");
}

static void
test_changed_phone_leaves_contacts_unchanged (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    s_registered (&e, 1, "1-101");
    s_owner_zhang (&e);
    s_owner_li (&e);
    pmt_event_applied (f->d, &e.ev);
    s_assert_gauges (f, 1, 2);

    s_updated (&e, 2, "1-101");
    s_owner_zhang (&e);
    pmt_unit_event_owner (&e, "Li Na", "13700001111", "li.na@example.com");
    pmt_event_applied (f->d, &e.ev);
    s_assert_gauges (f, 1, 2);
    Pm__V1__NotifyContactGetReply *c = s_contact_ok (f, "E01/1-101");
    assert_int_equal (c->n_owners, 2);
    assert_string_equal (s_owner (c, "Li Na")->phone, "13700001111");
    assert_string_equal (s_owner (c, "Zhang Wei")->phone, "13812345678");
}

static void
test_removed_owner_lowers_contacts_by_one (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2;
    s_registered (&e1, 1, "1-101");
    s_owner_zhang (&e1);
    s_owner_li (&e1);
    s_registered (&e2, 2, "1-102");
    s_owner_zhang (&e2);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_applied (f->d, &e2.ev);
    s_assert_gauges (f, 2, 3);

    /* Li Na sold her share of 1-101 */
    s_updated (&e1, 3, "1-101");
    s_owner_zhang (&e1);
    pmt_event_applied (f->d, &e1.ev);
    s_assert_gauges (f, 2, 2);
    Pm__V1__NotifyContactGetReply *c = s_contact_ok (f, "E01/1-101");
    assert_int_equal (c->n_owners, 1);
    assert_null (s_owner (c, "Li Na"));
}

static void
test_replayed_seq_changes_nothing (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2;
    s_registered (&e1, 1, "1-101");
    s_owner_zhang (&e1);
    s_updated (&e2, 2, "1-101");
    s_owner_zhang (&e2);
    s_owner_li (&e2);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_applied (f->d, &e2.ev);
    s_assert_gauges (f, 1, 2);
    assert_int_equal (s_applied_total (f), 2);

    /* the last event again, then the first (which, applied, would drop Li Na) */
    pmt_event_ignored (f->d, &e2.ev);
    pmt_event_ignored (f->d, &e1.ev);
    s_assert_gauges (f, 1, 2);
    assert_true (pm_daemon_applied (f->d, "intake") == 2);
    assert_int_equal (s_applied_total (f), 2);
    Pm__V1__NotifyContactGetReply *c = s_contact_ok (f, "E01/1-101");
    assert_int_equal (c->n_owners, 2);
    assert_string_equal (c->from_event, "intake:2");
}

static void
test_out_of_order_event_is_not_applied (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2, e3;
    s_registered (&e1, 1, "1-101");
    s_owner_zhang (&e1);
    s_registered (&e2, 2, "1-102");
    s_owner_zhang (&e2);
    s_registered (&e3, 3, "1-103");
    s_owner_li (&e3);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_ignored (f->d, &e3.ev);
    assert_int_equal (s_contact_get (f, "E01/1-103")->status, PM__V1__STATUS__NOT_FOUND);
    s_assert_gauges (f, 1, 1);
    pmt_event_applied (f->d, &e2.ev);
    pmt_event_applied (f->d, &e3.ev);
    s_assert_gauges (f, 3, 3);
}

static void
test_event_without_unit_goes_to_dead_events (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    s_registered (&e, 1, "1-101");
    e.ev.payload_case = PM__V1__EVENT__PAYLOAD__NOT_SET;
    e.ev.unit = NULL;
    Pm__V1__Reply *r = pmt_apply_event (f->d, &e.ev);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_true (pm_daemon_applied (f->d, "intake") == 1);
    assert_int_equal (pmt_metric (f->d, "pm_events_dead_total", ""), 1);
    s_assert_gauges (f, 0, 0);

    /* the cursor moved past it: the next event applies */
    s_updated (&e, 2, "1-101");
    s_owner_zhang (&e);
    pmt_event_applied (f->d, &e.ev);
    s_assert_gauges (f, 1, 1);
}

static void
test_unknown_unit_is_not_found (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e;
    s_registered (&e, 1, "1-101");
    s_owner_zhang (&e);
    pmt_event_applied (f->d, &e.ev);
    Pm__V1__Reply *r = s_contact_get (f, "E01/9-999");
    assert_int_equal (r->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "E01/9-999"));
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY__NOT_SET);
}

static void
test_empty_unit_id_is_invalid (void **state)
{
    s_fixture_t *f = *state;
    Pm__V1__Reply *r = s_contact_get (f, "");
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "unit_id"));
}

static void
test_contacts_survive_restart (void **state)
{
    s_fixture_t *f = *state;
    s_event_t e1, e2, e3;
    s_registered (&e1, 1, "1-101");
    s_owner_zhang (&e1);
    s_owner_li (&e1);
    s_registered (&e2, 2, "1-102");
    s_owner_zhang (&e2);
    s_registered (&e3, 3, "1-103");
    s_owner_li (&e3);
    pmt_event_applied (f->d, &e1.ev);
    pmt_event_applied (f->d, &e2.ev);

    pmt_fixture_restart (f);

    assert_true (pm_daemon_applied (f->d, "intake") == 2);
    assert_int_equal (s_applied_total (f), 2);
    s_assert_gauges (f, 2, 3);
    Pm__V1__NotifyContactGetReply *c = s_contact_ok (f, "E01/1-101");
    assert_int_equal (c->n_owners, 2);
    assert_string_equal (s_owner (c, "Li Na")->phone, "13987654321");

    pmt_event_ignored (f->d, &e1.ev);
    pmt_event_ignored (f->d, &e2.ev);
    s_assert_gauges (f, 2, 3);
    pmt_event_applied (f->d, &e3.ev);
    s_assert_gauges (f, 3, 4);
    assert_int_equal (s_applied_total (f), 3);
}

int
main (void)
{
    pm_log_init ("test_notify", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_registered_events_build_contacts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_added_co_owner_raises_contacts_by_one, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_changed_phone_leaves_contacts_unchanged, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_removed_owner_lowers_contacts_by_one, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replayed_seq_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_out_of_order_event_is_not_applied, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_event_without_unit_goes_to_dead_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_unit_is_not_found, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_empty_unit_id_is_invalid, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_contacts_survive_restart, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
