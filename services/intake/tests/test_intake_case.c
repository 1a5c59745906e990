/* test_intake_case - the move-in case after the import, on a real LMDB
 * through the runtime's group commit: notices, the plan and its slots (never
 * over capacity, deterministic, waitlist), moves and cancels, the no-show
 * timer on the manual clock, the check-in (identity, checklist, walk-ins),
 * the key gate under every order of arrival of inspection's and billing's
 * facts, the key ledger, progress from counters, and the snapshot. Requests
 * and upstream events are written as JSON and mapped through the
 * descriptors, as pmctl does. */
#define _GNU_SOURCE
#include "support.h"

#include "intake.h"
#include "pm/err.h"
#include "pm/json.h"
#include "pm/log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ALL_AGREEMENTS \
    "[\"前期物业服务协议\",\"业主临时公约\",\"消防安全责任书\",\"装修协议\",\"委托银行代收款协议书\"]"
#define S_DOCS "[\"身份证\",\"购房合同\"]"

static unsigned s_next_id;      /* request ids */
static uint64_t s_seq[3];       /* upstream seqs: inspection, billing, notify */

/* --- requests and events from JSON ------------------------------------------------ */

/* A message of desc from printf-style JSON (caller frees with protobuf_c_message_free_unpacked). */
static ProtobufCMessage *
s_msg (const ProtobufCMessageDescriptor *desc, const char *json)
{
    cJSON *j = cJSON_Parse (json);
    if (!j)
        fail_msg ("bad JSON in the test: %s", json);
    char *err = NULL;
    ProtobufCMessage *m = pm_json_to_msg (desc, j, &err);
    cJSON_Delete (j);
    if (!m)
        fail_msg ("JSON %s: %s", json, err ? err : "?");
    return m;
}

/* Calls method with the JSON body; the reply lives until the next apply. */
static Pm__V1__Reply *
s_call (pm_daemon_t *d, const char *method, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static Pm__V1__Reply *
s_call (pm_daemon_t *d, const char *method, const char *fmt, ...)
{
    char *json;
    va_list ap;
    va_start (ap, fmt);
    if (vasprintf (&json, fmt, ap) < 0)
        abort ();
    va_end (ap);
    const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, method);
    assert_non_null (f);
    ProtobufCMessage *body = s_msg (f->descriptor, json);
    char id[32];
    snprintf (id, sizeof id, "case-%u", ++s_next_id);
    Pm__V1__Reply *r = pmt_call (d, id, method, body);
    protobuf_c_message_free_unpacked (body, NULL);
    free (json);
    return r;
}

/* The same, failing the test unless the status is want. */
#define S_EXPECT(d, want, method, ...) \
    ({ \
        Pm__V1__Reply *r_ = s_call (d, method, __VA_ARGS__); \
        if ((int) r_->status != (want)) \
            fail_msg ("%s: expected %s, got %s: %s", method, pm_status_name (want), pm_status_name (r_->status), \
                      r_->message); \
        r_; \
    })
#define S_OK(d, method, ...) S_EXPECT (d, PM__V1__STATUS__OK, method, __VA_ARGS__)

/* Applies an upstream event given as JSON (source, type, payload); seq and id are filled. */
static Pm__V1__Reply *
s_event (pm_daemon_t *d, const char *source, const char *type, const char *payload_json)
{
    int i = strcmp (source, "inspection") == 0 ? 0 : strcmp (source, "billing") == 0 ? 1 : 2;
    char *json;
    unsigned long long seq = ++s_seq[i];
    if (asprintf (&json, "{\"source\":\"%s\",\"seq\":%llu,\"id\":\"%s:%llu\",\"type\":\"%s\",\"at_ms\":1,%s}", source,
                  seq, source, seq, type, payload_json)
        < 0)
        abort ();
    Pm__V1__Event *ev = (Pm__V1__Event *) s_msg (&pm__v1__event__descriptor, json);
    free (json);
    Pm__V1__Reply *r = pmt_apply_event (d, ev);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("event %s: %s: %s", type, pm_status_name (r->status), r->message);
    assert_true (pm_daemon_applied (d, source) == seq);
    pm__v1__event__free_unpacked (ev, NULL);
    return r;
}

/* --- the estate -------------------------------------------------------------------- */

/* The ISO 7064 check character of 17 digits. */
static char
s_id_check (const char *digits17)
{
    static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    static const char check[] = "10X98765432";
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (digits17[i] - '0') * w[i];
    return check[sum % 11];
}

/* The resident ID of owner n (>= 19 bytes). */
static const char *
s_rid (char *out, unsigned n)
{
    snprintf (out, 19, "310104198001%05u", n % 100000);
    out[17] = s_id_check (out);
    out[18] = '\0';
    return out;
}

/* Imports estate units: buildings[b] has floors x per_floor units "F0U" (unit
 * 101, 102, ...), owner n has resident ID s_rid(n) in import order. */
static unsigned
s_import (pm_daemon_t *d, const char *estate, const char *const *buildings, int nb, int floors, int per_floor)
{
    unsigned n = 0;
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "batch_id", "import:test");
    cJSON *rows = cJSON_AddArrayToObject (body, "rows");
    for (int b = 0; b < nb; b++)
        for (int fl = floors; fl >= 1; fl--) /* out of order on purpose: the plan sorts */
            for (int u = 1; u <= per_floor; u++) {
                char unit[16], floor[8], id[19], phone[16], name[32];
                snprintf (unit, sizeof unit, "%d%02d", fl, u);
                snprintf (floor, sizeof floor, "%d", fl);
                snprintf (phone, sizeof phone, "139%08u", n);
                snprintf (name, sizeof name, "业主%u", n);
                cJSON *r = cJSON_CreateObject ();
                cJSON_AddNumberToObject (r, "line", n + 2);
                cJSON_AddStringToObject (r, "estate_id", estate);
                cJSON_AddStringToObject (r, "estate_name", "翠湖花园");
                cJSON_AddStringToObject (r, "building", buildings[b]);
                cJSON_AddStringToObject (r, "unit", unit);
                cJSON_AddStringToObject (r, "floor", floor);
                cJSON_AddStringToObject (r, "area_m2", "89.50");
                cJSON_AddStringToObject (r, "owner_name", name);
                cJSON_AddStringToObject (r, "phone", phone);
                cJSON_AddStringToObject (r, "id_number", s_rid (id, n));
                cJSON_AddItemToArray (rows, r);
                n++;
            }
    char *json = cJSON_PrintUnformatted (body);
    cJSON_Delete (body);
    Pm__V1__Reply *r = S_OK (d, "intake.import", "%s", json);
    assert_int_equal (r->intake_import->created, n);
    free (json);
    return n;
}

/* intake.unit.get's body for a unit that must exist. */
static Pm__V1__IntakeUnitGetReply *
s_unit (pm_daemon_t *d, const char *unit_id)
{
    return S_OK (d, "intake.unit.get", "{\"unit_id\":\"%s\"}", unit_id)->intake_unit_get;
}

static const char *
s_state (pm_daemon_t *d, const char *unit_id)
{
    static char buf[32];
    snprintf (buf, sizeof buf, "%s", s_unit (d, unit_id)->state);
    return buf;
}

static Pm__V1__EstateProgress *
s_progress (pm_daemon_t *d, const char *estate)
{
    Pm__V1__Reply *r = S_OK (d, "intake.progress", "{\"estate_id\":\"%s\"}", estate);
    assert_int_equal (r->intake_progress->n_estates, 1);
    return r->intake_progress->estates[0];
}

static uint32_t
s_state_count (const Pm__V1__EstateProgress *p, const char *state)
{
    for (size_t i = 0; i < p->n_states; i++)
        if (strcmp (p->states[i]->state, state) == 0)
            return p->states[i]->units;
    fail_msg ("no state %s in the progress", state);
    return 0;
}

static size_t
s_count_emitted (pm_daemon_t *d, const char *type)
{
    Pm__V1__Event **evs;
    size_t n = pmt_emitted (d, &evs), k = 0;
    for (size_t i = 0; i < n; i++)
        k += strcmp (evs[i]->type, type) == 0;
    return k;
}

static pmt_fixture_t *
s_fixture (const char *extra)
{
    memset (s_seq, 0, sizeof s_seq);
    pmt_fixture_t *f = pmt_fixture_new (&intake_spec, extra);
    pmt_clock_set (f->d, "2026-12-05T00:00:00Z"); /* 08:00 estate time */
    return f;
}

/* A plan for E01 on 2026-12-05, hours and capacity as given. */
static Pm__V1__IntakeSchedulePlanReply *
s_plan (pm_daemon_t *d, const char *opens, const char *closes, int slot_min, int counters, int per_counter)
{
    return S_OK (d, "intake.schedule.plan",
                 "{\"estate_id\":\"E01\",\"days\":[{\"date\":\"2026-12-05\"}],\"opens\":\"%s\",\"closes\":\"%s\","
                 "\"slot_minutes\":%d,\"counters\":%d,\"per_counter\":%d,\"place\":\"3号楼一层\"}",
                 opens, closes, slot_min, counters, per_counter)
        ->intake_schedule_plan;
}

/* --- notices ------------------------------------------------------------------------ */

static void
test_notice_once_per_unit_and_notified_by_notify (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 3);
    Pm__V1__Reply *r = S_OK (f->d, "intake.notice.send",
                             "{\"estate_id\":\"E01\",\"window\":\"2026-12-05 to 2026-12-20\",\"place\":\"3号楼\","
                             "\"fees_note\":\"物业费 12 个月\"}");
    assert_int_equal (r->intake_notice_send->requested, 3);
    char notice[64];
    snprintf (notice, sizeof notice, "%s", r->intake_notice_send->notice_id);
    assert_int_equal (s_count_emitted (f->d, "intake.notice.requested"), 3);
    Pm__V1__Event *ev = pmt_emitted_type (f->d, "intake.notice.requested");
    assert_int_equal (ev->payload_case, PM__V1__EVENT__PAYLOAD_NOTICE);
    assert_string_equal (ev->notice->window, "2026-12-05 to 2026-12-20");
    assert_int_equal (ev->notice->n_owners, 1);
    assert_int_equal (ev->notice->n_bring, 3); /* 身份证, 购房合同, 入住通知书 by default */
    /* the same notice again asks nothing twice */
    r = S_OK (f->d, "intake.notice.send",
              "{\"estate_id\":\"E01\",\"window\":\"2026-12-05 to 2026-12-20\",\"place\":\"3号楼\","
              "\"fees_note\":\"物业费 12 个月\"}");
    assert_int_equal (r->intake_notice_send->requested, 0);
    assert_int_equal (r->intake_notice_send->already, 3);
    assert_int_equal (s_count_emitted (f->d, "intake.notice.requested"), 0);
    assert_string_equal (s_state (f->d, "E01/1/101"), "REGISTERED");

    /* notify sent 101's; another notice's outcome changes nothing; 102's failed */
    char p[512];
    snprintf (p, sizeof p, "\"unit_id\":\"E01/1/101\",\"message\":{\"unit_id\":\"E01/1/101\",\"notice_id\":\"%s\","
                           "\"channel\":\"sms\",\"at_ms\":5}", notice);
    s_event (f->d, "notify", "notify.message.sent", p);
    s_event (f->d, "notify", "notify.message.sent",
             "\"message\":{\"unit_id\":\"E01/1/103\",\"notice_id\":\"N-other\",\"channel\":\"sms\"}");
    snprintf (p, sizeof p, "\"message\":{\"unit_id\":\"E01/1/102\",\"notice_id\":\"%s\",\"channel\":\"sms\","
                           "\"recipient\":\"139****0001\",\"reason\":\"number not in service\"}", notice);
    s_event (f->d, "notify", "notify.message.failed", p);
    assert_string_equal (s_state (f->d, "E01/1/101"), "NOTIFIED");
    assert_string_equal (s_state (f->d, "E01/1/102"), "REGISTERED");
    assert_string_equal (s_state (f->d, "E01/1/103"), "REGISTERED");
    assert_non_null (strstr (s_unit (f->d, "E01/1/102")->notice_failure, "number not in service"));

    /* a day later the two not sent wait in the queue, with what notify said */
    assert_true (pmt_queue (f->d, "notices_undelivered")->count == 0);
    pmt_clock_advance (f->d, "25h");
    Pm__V1__Queue *q = pmt_queue (f->d, "notices_undelivered");
    assert_true (q->count == 2);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, "E01/1/102");
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "number not in service"));
    assert_null (pmt_queue_item (q, "E01/1/101"));
    Pm__V1__EstateProgress *pr = s_progress (f->d, "E01");
    assert_int_equal (pr->notices_undelivered, 2);
    assert_int_equal (s_state_count (pr, "NOTIFIED"), 1);
    assert_int_equal (s_state_count (pr, "REGISTERED"), 2);
    /* sent late: it leaves the queue */
    snprintf (p, sizeof p, "\"message\":{\"unit_id\":\"E01/1/103\",\"notice_id\":\"%s\",\"channel\":\"email\"}",
              notice);
    s_event (f->d, "notify", "notify.message.sent", p);
    assert_true (pmt_queue (f->d, "notices_undelivered")->count == 1);
    assert_int_equal (s_progress (f->d, "E01")->notices_undelivered, 1);
    pmt_fixture_destroy (&f);
}

/* --- the plan ------------------------------------------------------------------------ */

/* unit id -> "start/counter" of its appointment, or "waitlist", for every unit of E01. */
static char *
s_assignment (pm_daemon_t *d, const char *const *units, size_t n)
{
    char *out = calloc (1, 64 * n + 1);
    for (size_t i = 0; i < n; i++) {
        Pm__V1__IntakeUnitGetReply *u = s_unit (d, units[i]);
        char one[96];
        if (u->appointment)
            snprintf (one, sizeof one, "%s=%lld/%u;", units[i], (long long) u->appointment->slot_start_ms,
                      u->appointment->counter);
        else
            snprintf (one, sizeof one, "%s=%s;", units[i], u->waitlisted ? "waitlist" : "none");
        strcat (out, one);
    }
    return out;
}

static void
test_plan_building_floor_unit_within_capacity_and_deterministic (void **state)
{
    static const char *const units[] = { "E01/1/101", "E01/1/102", "E01/1/201", "E01/1/202", "E01/2/101",
                                         "E01/2/102", "E01/2/201", "E01/2/202", "E01/10/101", "E01/10/102",
                                         "E01/10/201", "E01/10/202" };
    const size_t n = sizeof units / sizeof units[0];
    const char *b[] = { "10", "2", "1" };
    char *first = NULL;
    for (int run = 0; run < 2; run++) {
        pmt_fixture_t *f = s_fixture (NULL);
        s_import (f->d, "E01", b, 3, 2, 2);
        /* 09:00-10:00, 30-minute slots, 2 counters x 2: 4 a slot, 8 places for 12 units */
        Pm__V1__IntakeSchedulePlanReply *p = s_plan (f->d, "09:00", "10:00", 30, 2, 2);
        assert_int_equal (p->slots, 2);
        assert_int_equal (p->capacity, 8);
        assert_int_equal (p->booked, 8);
        assert_int_equal (p->waitlisted, 4);
        assert_int_equal (s_count_emitted (f->d, "intake.appointment.booked"), 8);
        /* building, floor, unit in natural order: 1 and 2 first, 10 waits */
        Pm__V1__Event **evs;
        size_t ne = pmt_emitted (f->d, &evs);
        assert_string_equal (evs[0]->unit_id, "E01/1/101");
        assert_string_equal (evs[ne - 1]->unit_id, "E01/2/202");
        assert_int_equal (evs[0]->appointment->n_owners, 1);
        assert_int_equal (evs[0]->appointment->counter, 1);
        assert_string_equal (evs[0]->appointment->place, "3号楼一层");
        assert_true (s_unit (f->d, "E01/10/101")->waitlisted);
        Pm__V1__EstateProgress *pr = s_progress (f->d, "E01");
        assert_int_equal (pr->today_capacity, 8);
        assert_int_equal (pr->today_booked, 8);
        assert_int_equal (pr->waitlist, 4);
        for (size_t i = 0; i < pr->n_today_slots; i++)
            assert_true (pr->today_slots[i]->booked <= pr->today_slots[i]->capacity);
        assert_int_equal (s_state_count (pr, "SCHEDULED"), 8);
        assert_true (pmt_queue (f->d, "waitlist")->count == 4);
        /* the same plan again changes nothing */
        p = s_plan (f->d, "09:00", "10:00", 30, 2, 2);
        assert_int_equal (p->unchanged, 8);
        assert_int_equal (p->booked + p->moved, 0);
        assert_int_equal (p->waitlisted, 4);
        assert_int_equal (pmt_emitted (f->d, &evs), 0);
        /* and the same inputs give the same plan in another store */
        char *a = s_assignment (f->d, units, n);
        if (!first)
            first = a;
        else {
            assert_string_equal (a, first);
            free (a);
        }
        pmt_fixture_destroy (&f);
    }
    free (first);
}

static void
test_plan_given_buildings_per_day_and_replan_keeps_checked_in (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1", "2" };
    s_import (f->d, "E01", b, 2, 1, 2);
    /* day 1: building 2 only; day 2: any */
    S_OK (f->d, "intake.schedule.plan",
          "{\"estate_id\":\"E01\",\"days\":[{\"date\":\"2026-12-06\"},{\"date\":\"2026-12-05\",\"buildings\":[\"2\"]}],"
          "\"opens\":\"09:00\",\"closes\":\"10:00\",\"slot_minutes\":60,\"counters\":1,\"per_counter\":4}");
    int64_t d1, d2;
    assert_int_equal (pm_time_parse ("2026-12-05T01:00:00Z", &d1), PM_OK);
    assert_int_equal (pm_time_parse ("2026-12-06T01:00:00Z", &d2), PM_OK);
    assert_true (s_unit (f->d, "E01/2/101")->appointment->slot_start_ms == d1);
    assert_true (s_unit (f->d, "E01/2/102")->appointment->slot_start_ms == d1);
    assert_true (s_unit (f->d, "E01/1/101")->appointment->slot_start_ms == d2);
    /* a building-1 unit cannot be moved into building 2's day */
    Pm__V1__Reply *r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.appointment.move",
                                 "{\"unit_id\":\"E01/1/101\",\"slot\":\"2026-12-05 09:00\"}");
    assert_non_null (strstr (r->message, "building 2 only"));
    /* 2/101 checks in; a re-plan on other days never moves it */
    pmt_clock_set (f->d, "2026-12-05T01:10:00Z");
    char id[19];
    S_OK (f->d, "intake.checkin",
          "{\"unit_id\":\"E01/2/101\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
          ",\"agreements\":" S_ALL_AGREEMENTS "}",
          s_rid (id, 2));
    Pm__V1__IntakeSchedulePlanReply *p =
        S_OK (f->d, "intake.schedule.plan",
              "{\"estate_id\":\"E01\",\"days\":[{\"date\":\"2026-12-07\"}],\"opens\":\"09:00\",\"closes\":\"10:00\","
              "\"slot_minutes\":60,\"counters\":1,\"per_counter\":4}")
            ->intake_schedule_plan;
    assert_int_equal (p->kept, 1);
    assert_int_equal (p->moved, 3);
    Pm__V1__IntakeUnitGetReply *u = s_unit (f->d, "E01/2/101");
    assert_string_equal (u->state, "CHECKED_IN");
    assert_true (u->appointment->slot_start_ms == d1);
    Pm__V1__Event *ev = pmt_emitted_type (f->d, "intake.appointment.moved");
    assert_non_null (ev);
    assert_true (ev->appointment->previous_start_ms != 0);
    pmt_fixture_destroy (&f);
}

static void
test_move_cancel_and_waitlist_promotion (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 3);
    /* two 30-minute slots of one place each: 101 at 09:00, 102 at 09:30, 103 waits */
    s_plan (f->d, "09:00", "10:00", 30, 1, 1);
    assert_true (s_unit (f->d, "E01/1/103")->waitlisted);
    Pm__V1__Reply *r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.appointment.move",
                                 "{\"unit_id\":\"E01/1/101\",\"slot\":\"2026-12-05 09:30\"}");
    assert_non_null (strstr (r->message, "is full: 1 of 1 booked"));
    Pm__V1__Event **none;
    assert_int_equal (pmt_emitted (f->d, &none), 0);
    /* 101 cancels: 103 is booked from the waitlist into its slot */
    r = S_OK (f->d, "intake.appointment.cancel", "{\"unit_id\":\"E01/1/101\",\"reason\":\"owner abroad\"}");
    assert_string_equal (r->intake_appointment_cancel->promoted_unit_id, "E01/1/103");
    Pm__V1__Event *ev = pmt_emitted_type (f->d, "intake.appointment.cancelled");
    assert_non_null (ev);
    assert_string_equal (ev->appointment->reason, "owner abroad");
    ev = pmt_emitted_type (f->d, "intake.appointment.booked");
    assert_non_null (ev);
    assert_string_equal (ev->unit_id, "E01/1/103");
    assert_false (s_unit (f->d, "E01/1/103")->waitlisted);
    assert_string_equal (s_state (f->d, "E01/1/101"), "REGISTERED");
    assert_true (pmt_queue (f->d, "waitlist")->count == 0);
    /* booking twice is refused, naming the state */
    r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.appointment.book",
                  "{\"unit_id\":\"E01/1/103\",\"slot\":\"2026-12-05 09:30\"}");
    assert_non_null (strstr (r->message, "SCHEDULED"));
    /* a slot outside opening hours does not exist */
    r = S_EXPECT (f->d, PM__V1__STATUS__NOT_FOUND, "intake.appointment.book",
                  "{\"unit_id\":\"E01/1/101\",\"slot\":\"2026-12-05 20:00\"}");
    assert_non_null (strstr (r->message, "no slot starting 2026-12-05 20:00"));
    pmt_fixture_destroy (&f);
}

/* The invariant: each slot's load is the number of units booked into it, never over its capacity. */
static void
s_check_loads (pm_daemon_t *d, const char *const *units, size_t n)
{
    Pm__V1__EstateProgress *p = s_progress (d, "E01");
    size_t ns = p->n_today_slots;
    int64_t starts[16];
    uint32_t booked[16], capacity[16], seen[16] = { 0 };
    assert_true (ns <= 16);
    for (size_t i = 0; i < ns; i++) {
        starts[i] = p->today_slots[i]->start_ms;
        booked[i] = p->today_slots[i]->booked;
        capacity[i] = p->today_slots[i]->capacity;
        if (booked[i] > capacity[i])
            fail_msg ("slot %zu: %u booked of %u", i, booked[i], capacity[i]);
    }
    for (size_t k = 0; k < n; k++) {
        Pm__V1__IntakeUnitGetReply *u = s_unit (d, units[k]);
        if (!u->appointment)
            continue;
        for (size_t i = 0; i < ns; i++)
            if (starts[i] == u->appointment->slot_start_ms)
                seen[i]++;
    }
    for (size_t i = 0; i < ns; i++)
        if (seen[i] != booked[i])
            fail_msg ("slot %zu: load %u, but %u units are booked into it", i, booked[i], seen[i]);
}

static void
test_capacity_never_exceeded_under_random_moves_and_cancels (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1", "2" };
    s_import (f->d, "E01", b, 2, 3, 2); /* 12 units */
    static const char *const units[] = { "E01/1/101", "E01/1/102", "E01/1/201", "E01/1/202", "E01/1/301",
                                         "E01/1/302", "E01/2/101", "E01/2/102", "E01/2/201", "E01/2/202",
                                         "E01/2/301", "E01/2/302" };
    static const char *const slots[] = { "09:00", "09:30", "10:00", "10:30" };
    s_plan (f->d, "09:00", "11:00", 30, 2, 1); /* 4 slots of 2: 8 places */
    s_check_loads (f->d, units, 12);
    unsigned seed = 77;
    for (int op = 0; op < 200; op++) {
        const char *u = units[rand_r (&seed) % 12];
        const char *slot = slots[rand_r (&seed) % 4];
        switch (rand_r (&seed) % 3) {
        case 0:
            s_call (f->d, "intake.appointment.move", "{\"unit_id\":\"%s\",\"slot\":\"2026-12-05 %s\"}", u, slot);
            break;
        case 1:
            s_call (f->d, "intake.appointment.book", "{\"unit_id\":\"%s\",\"slot\":\"2026-12-05 %s\"}", u, slot);
            break;
        default:
            s_call (f->d, "intake.appointment.cancel", "{\"unit_id\":\"%s\"}", u);
        }
        s_check_loads (f->d, units, 12);
    }
    pmt_fixture_destroy (&f);
}

static void
test_no_show_by_timer_and_rebooked (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 2);
    s_plan (f->d, "09:00", "10:00", 30, 1, 1); /* 101 09:00, 102 09:30 */
    char id[19];
    pmt_clock_set (f->d, "2026-12-05T01:35:00Z"); /* 09:35: 101's slot ended, nobody came */
    Pm__V1__Event *ev = pmt_emitted_type (f->d, "intake.appointment.missed");
    assert_non_null (ev);
    assert_string_equal (ev->unit_id, "E01/1/101");
    assert_string_equal (ev->appointment->state, "NO_SHOW");
    assert_string_equal (s_state (f->d, "E01/1/101"), "NO_SHOW");
    assert_string_equal (s_state (f->d, "E01/1/102"), "SCHEDULED");
    Pm__V1__Queue *q = pmt_queue (f->d, "no_shows");
    assert_true (q->count == 1);
    assert_non_null (pmt_queue_item (q, "E01/1/101"));
    Pm__V1__EstateProgress *p = s_progress (f->d, "E01");
    assert_int_equal (p->no_shows, 1);
    assert_int_equal (p->missed_total, 1);
    /* 102 comes during its slot: no no-show for it */
    S_OK (f->d, "intake.checkin",
          "{\"unit_id\":\"E01/1/102\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
          ",\"agreements\":" S_ALL_AGREEMENTS "}",
          s_rid (id, 1));
    pmt_clock_set (f->d, "2026-12-05T02:05:00Z");
    assert_null (pmt_emitted_type (f->d, "intake.appointment.missed"));
    assert_string_equal (s_state (f->d, "E01/1/102"), "CHECKED_IN");
    /* 101 is rebooked on another day: it leaves the queue */
    S_OK (f->d, "intake.schedule.plan",
          "{\"estate_id\":\"E01\",\"days\":[{\"date\":\"2026-12-05\"},{\"date\":\"2026-12-06\"}],\"opens\":\"09:00\","
          "\"closes\":\"10:00\",\"slot_minutes\":30,\"counters\":1,\"per_counter\":1}");
    assert_string_equal (s_state (f->d, "E01/1/101"), "SCHEDULED");
    assert_true (pmt_queue (f->d, "no_shows")->count == 0);
    assert_int_equal (s_progress (f->d, "E01")->no_shows, 0);
    pmt_fixture_destroy (&f);
}

/* --- check-in ------------------------------------------------------------------------ */

static void
test_checkin_identity_checklist_and_walk_ins (void **state)
{
    pmt_fixture_t *f = s_fixture ("[intake]\ncheckin_agreements_E02 = 前期物业服务协议、业主临时公约\n");
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 5); /* units 101-105, owners 0-4 */
    s_import (f->d, "E02", b, 1, 1, 1); /* owner 0 again: its own ID */
    char id[19], wrong[19];
    /* REGISTERED, no appointment: not yet */
    Pm__V1__Reply *r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.checkin",
                                 "{\"unit_id\":\"E01/1/101\",\"owner_index\":0,\"id_number\":\"%s\"}", s_rid (id, 0));
    assert_non_null (strstr (r->message, "REGISTERED"));
    s_plan (f->d, "09:00", "10:00", 60, 1, 3); /* one slot, 3 places: 101-103 booked, 104-105 wait */
    pmt_clock_set (f->d, "2026-12-05T01:05:00Z");
    pmt_log_start ();
    /* the wrong ID number: refused, and the number is nowhere */
    r = S_EXPECT (f->d, PM__V1__STATUS__INVALID, "intake.checkin",
                  "{\"unit_id\":\"E01/1/101\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
                  ",\"agreements\":" S_ALL_AGREEMENTS "}",
                  s_rid (wrong, 999));
    assert_non_null (strstr (r->message, "does not match"));
    assert_null (strstr (r->message, wrong));
    /* an incomplete checklist names what is missing */
    r = S_EXPECT (f->d, PM__V1__STATUS__INVALID, "intake.checkin",
                  "{\"unit_id\":\"E01/1/101\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":[\"身份证\"],"
                  "\"agreements\":[\"前期物业服务协议\",\"装修协议\"]}",
                  s_rid (id, 0));
    assert_non_null (strstr (r->message, "购房合同"));
    assert_non_null (strstr (r->message, "业主临时公约"));
    assert_non_null (strstr (r->message, "委托银行代收款协议书"));
    assert_null (strstr (r->message, "装修协议,"));
    /* complete, the ID as typed with a lower-case x or full-width digits is the same number */
    r = S_OK (f->d, "intake.checkin",
              "{\"unit_id\":\"E01/1/101\",\"owner_index\":0,\"id_number\":\" %s \",\"documents\":" S_DOCS
              ",\"agreements\":" S_ALL_AGREEMENTS "}",
              s_rid (id, 0));
    Pm__V1__Event *ev = pmt_emitted_type (f->d, "intake.unit.checked_in");
    assert_non_null (ev);
    assert_int_equal (ev->payload_case, PM__V1__EVENT__PAYLOAD_CHECKED_IN);
    assert_non_null (ev->checked_in->unit);
    assert_int_equal (ev->checked_in->unit->area_cm2, 8950);
    assert_int_equal (ev->checked_in->n_agreements, 5);
    assert_false (ev->checked_in->walk_in);
    /* twice: refused */
    r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.checkin",
                  "{\"unit_id\":\"E01/1/101\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
                  ",\"agreements\":" S_ALL_AGREEMENTS "}",
                  s_rid (id, 0));
    assert_non_null (strstr (r->message, "checked in already"));
    pmt_log_stop ();
    assert_false (pmt_log_has (wrong));
    assert_false (pmt_log_has (id));
    /* walk-ins: 104 and 105 were notified, and leave the waitlist; the slot has no room */
    S_OK (f->d, "intake.notice.send", "{\"unit_ids\":[\"E01/1/104\",\"E01/1/105\"],\"window\":\"w\",\"place\":\"p\","
                                      "\"notice_id\":\"N-1\"}");
    s_event (f->d, "notify", "notify.message.sent", "\"message\":{\"unit_id\":\"E01/1/104\",\"notice_id\":\"N-1\"}");
    s_event (f->d, "notify", "notify.message.sent", "\"message\":{\"unit_id\":\"E01/1/105\",\"notice_id\":\"N-1\"}");
    S_OK (f->d, "intake.appointment.cancel", "{\"unit_id\":\"E01/1/104\"}");
    S_OK (f->d, "intake.appointment.cancel", "{\"unit_id\":\"E01/1/105\"}");
    assert_true (pmt_queue (f->d, "waitlist")->count == 0);
    r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.checkin",
                  "{\"unit_id\":\"E01/1/104\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
                  ",\"agreements\":" S_ALL_AGREEMENTS "}",
                  s_rid (id, 3));
    assert_non_null (strstr (r->message, "is full"));
    /* 102 cancels: 104 walks in and takes its place */
    S_OK (f->d, "intake.appointment.cancel", "{\"unit_id\":\"E01/1/102\"}");
    r = S_OK (f->d, "intake.checkin",
              "{\"unit_id\":\"E01/1/104\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
              ",\"agreements\":" S_ALL_AGREEMENTS "}",
              s_rid (id, 3));
    assert_true (r->intake_checkin->checked_in->walk_in);
    /* after hours a walk-in is refused */
    pmt_clock_set (f->d, "2026-12-05T10:00:00Z");
    r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.checkin",
                  "{\"unit_id\":\"E01/1/105\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
                  ",\"agreements\":" S_ALL_AGREEMENTS "}",
                  s_rid (id, 4));
    assert_non_null (strstr (r->message, "no slot of estate E01 is under way"));
    /* E02's own checklist: two agreements; an estate without a plan takes walk-ins */
    S_OK (f->d, "intake.notice.send", "{\"estate_id\":\"E02\",\"window\":\"w\",\"place\":\"p\",\"notice_id\":\"N-2\"}");
    s_event (f->d, "notify", "notify.message.sent", "\"message\":{\"unit_id\":\"E02/1/101\",\"notice_id\":\"N-2\"}");
    S_OK (f->d, "intake.checkin",
          "{\"unit_id\":\"E02/1/101\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
          ",\"agreements\":[\"前期物业服务协议\",\"业主临时公约\"]}",
          s_rid (id, 0));
    Pm__V1__EstateProgress *pr = s_progress (f->d, "E01");
    assert_int_equal (s_state_count (pr, "CHECKED_IN"), 2);
    assert_int_equal (pr->checkins_today, 2);
    assert_int_equal (pr->n_checkins_by_hour, 1);
    assert_string_equal (pr->checkins_by_hour[0]->hour, "09:00");
    assert_int_equal (pr->blocked, 2);
    /* the ID numbers shown are nowhere in what intake stored or sent */
    pm_txn_t t;
    assert_int_equal (pm_txn_begin_read (&t, pm_daemon_store (f->d)), PM_OK);
    for (int table = PM_DB_OUTBOX; table < INTAKE_NTABLES; table++) {
        MDB_cursor *c;
        MDB_val k, v;
        mdb_cursor_open (t.txn, pm_store_dbi (pm_daemon_store (f->d), table), &c);
        for (int rc = mdb_cursor_get (c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get (c, &k, &v, MDB_NEXT))
            if (memmem (v.mv_data, v.mv_size, s_rid (id, 0), 18) || memmem (v.mv_data, v.mv_size, wrong, 18))
                fail_msg ("table %d holds an ID number in clear", table);
        mdb_cursor_close (c);
    }
    pm_txn_abort (&t);
    pmt_fixture_destroy (&f);
}

/* --- the key gate -------------------------------------------------------------------- */

/* The facts, and the JSON of each for unit u. */
enum { F_ISSUED, F_SETTLED, F_FAILED, F_PASSED, F_ACCEPTED };

static void
s_fact (pm_daemon_t *d, int fact, const char *u)
{
    char p[1024];
    switch (fact) {
    case F_ISSUED:
    case F_SETTLED:
        snprintf (p, sizeof p,
                  "\"unit_id\":\"%s\",\"invoice\":{\"invoice_id\":\"INV-E01-000123\",\"unit_id\":\"%s\","
                  "\"estate_id\":\"E01\",\"kind\":\"move_in\",\"total_fen\":324000,\"paid_fen\":%d,\"open_fen\":%d,"
                  "\"state\":\"%s\"}",
                  u, u, fact == F_SETTLED ? 324000 : 0, fact == F_SETTLED ? 0 : 324000,
                  fact == F_SETTLED ? "SETTLED" : "ISSUED");
        s_event (d, "billing", fact == F_SETTLED ? "billing.invoice.settled" : "billing.invoice.issued", p);
        /* a monthly invoice never gates keys */
        if (fact == F_ISSUED) {
            snprintf (p, sizeof p, "\"invoice\":{\"invoice_id\":\"INV-E01-000999\",\"unit_id\":\"%s\",\"kind\":"
                                   "\"monthly\",\"open_fen\":50000,\"state\":\"ISSUED\"}", u);
            s_event (d, "billing", "billing.invoice.issued", p);
        }
        break;
    case F_FAILED:
        snprintf (p, sizeof p,
                  "\"round\":{\"unit_id\":\"%s\",\"round_no\":1,\"passed\":false,\"defects\":[{\"defect_id\":\"%s#1\"},"
                  "{\"defect_id\":\"%s#2\"},{\"defect_id\":\"%s#3\"}]}",
                  u, u, u, u);
        s_event (d, "inspection", "inspection.round.failed", p);
        break;
    case F_PASSED:
        snprintf (p, sizeof p, "\"round\":{\"unit_id\":\"%s\",\"round_no\":2,\"passed\":true}", u);
        s_event (d, "inspection", "inspection.round.passed", p);
        break;
    case F_ACCEPTED:
        snprintf (p, sizeof p,
                  "\"accepted\":{\"unit_id\":\"%s\",\"open_defects\":3,\"signature_ref\":\"SIG-1\"}", u);
        s_event (d, "inspection", "inspection.accepted_with_defects", p);
        break;
    }
}

/* Asks for the keys: OK when expected open, else CONFLICT naming what is missing. */
static void
s_try_keys (pm_daemon_t *d, const char *u, bool invoice_ok, bool inspection_ok, bool failed_seen, bool issued_seen)
{
    bool open = invoice_ok && inspection_ok;
    Pm__V1__Reply *r = s_call (d, "intake.keys.handover", "{\"unit_id\":\"%s\",\"key_set\":\"A\",\"keys\":2,"
                                                          "\"received_by\":\"业主\"}", u);
    if (open) {
        if (r->status != PM__V1__STATUS__OK)
            fail_msg ("%s: keys refused though the gate is open: %s", u, r->message);
        return;
    }
    if (r->status != PM__V1__STATUS__CONFLICT)
        fail_msg ("%s: keys %s though the gate is shut: %s", u, pm_status_name (r->status), r->message);
    if (!invoice_ok)
        assert_non_null (strstr (r->message, issued_seen ? "invoice INV-E01-000123 open: ¥3,240.00"
                                                         : "move-in invoice not issued yet"));
    else
        assert_null (strstr (r->message, "invoice"));
    if (!inspection_ok)
        assert_non_null (strstr (r->message, failed_seen ? "inspection round 1 failed: 3 defects open"
                                                         : "inspection not passed yet"));
    else
        assert_null (strstr (r->message, "inspection"));
}

/* Applies facts in order to a checked-in unit, asking for the keys after each. */
static void
s_gate_order (pm_daemon_t *d, const char *u, const int *order, int n)
{
    bool issued = false, settled = false, failed = false, passed = false;
    s_try_keys (d, u, false, false, false, false);
    for (int i = 0; i < n; i++) {
        s_fact (d, order[i], u);
        issued |= order[i] == F_ISSUED;
        settled |= order[i] == F_SETTLED;
        failed |= order[i] == F_FAILED;
        passed |= order[i] == F_PASSED || order[i] == F_ACCEPTED;
        s_try_keys (d, u, settled, passed, failed && !passed, issued);
    }
    assert_string_equal (s_state (d, u), "KEYS_HANDED");
}

static void
test_key_gate_every_order_of_arrival (void **state)
{
    /* billing: issued then settled; inspection: failed then passed, or failed then
     * accepted with defects. Every interleaving of the two (6 each), plus the facts
     * arriving before the check-in. */
    static const int inter[6][4] = { { 0, 1, 2, 3 }, { 0, 2, 1, 3 }, { 0, 2, 3, 1 },
                                     { 2, 0, 1, 3 }, { 2, 0, 3, 1 }, { 2, 3, 0, 1 } };
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 13); /* units 101..113, owner n = unit - 101 */
    char id[19];
    S_OK (f->d, "intake.notice.send", "{\"estate_id\":\"E01\",\"window\":\"w\",\"place\":\"p\",\"notice_id\":\"N\"}");
    for (int k = 0; k < 13; k++) {
        char u[16], p[160];
        snprintf (u, sizeof u, "E01/1/1%02d", k + 1);
        snprintf (p, sizeof p, "\"message\":{\"unit_id\":\"%s\",\"notice_id\":\"N\"}", u);
        s_event (f->d, "notify", "notify.message.sent", p);
    }
    for (int k = 0; k < 12; k++) {
        char u[16];
        snprintf (u, sizeof u, "E01/1/1%02d", k + 1);
        S_OK (f->d, "intake.checkin",
              "{\"unit_id\":\"%s\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
              ",\"agreements\":" S_ALL_AGREEMENTS "}",
              u, s_rid (id, (unsigned) k));
    }
    /* twelve units blocked on both */
    Pm__V1__EstateProgress *p = s_progress (f->d, "E01");
    assert_int_equal (p->blocked, 12);
    assert_int_equal (p->blocked_invoice, 12);
    assert_int_equal (p->blocked_inspection, 12);
    const Pm__V1__QueueItem *it = pmt_queue_item (pmt_queue (f->d, "blocked_at_key_gate"), "E01/1/101");
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "not issued yet"));
    for (int k = 0; k < 12; k++) {
        int order[4];
        for (int i = 0; i < 4; i++) { /* 0,1 billing; 2,3 inspection (3: passed, or accepted for k >= 6) */
            int x = inter[k % 6][i];
            order[i] = x == 0 ? F_ISSUED : x == 1 ? F_SETTLED : x == 2 ? F_FAILED : k < 6 ? F_PASSED : F_ACCEPTED;
        }
        char u[16];
        snprintf (u, sizeof u, "E01/1/1%02d", k + 1);
        s_gate_order (f->d, u, order, 4);
        if (k == 5) { /* half way: six through, six still blocked */
            p = s_progress (f->d, "E01");
            assert_int_equal (p->keys_handed, 6);
            assert_int_equal (p->blocked, 6);
        }
    }
    p = s_progress (f->d, "E01");
    assert_int_equal (p->blocked, 0);
    assert_int_equal (p->blocked_invoice, 0);
    assert_int_equal (p->blocked_inspection, 0);
    assert_int_equal (p->keys_handed, 12);
    assert_true (pmt_queue (f->d, "blocked_at_key_gate")->count == 0);
    /* 113: every fact before the check-in; the gate is open at once */
    s_fact (f->d, F_ISSUED, "E01/1/113");
    s_fact (f->d, F_FAILED, "E01/1/113");
    s_fact (f->d, F_SETTLED, "E01/1/113");
    s_fact (f->d, F_PASSED, "E01/1/113");
    Pm__V1__Reply *r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.keys.handover",
                                 "{\"unit_id\":\"E01/1/113\",\"received_by\":\"x\"}");
    assert_non_null (strstr (r->message, "it is NOTIFIED; the owner checks in first"));
    S_OK (f->d, "intake.checkin",
          "{\"unit_id\":\"E01/1/113\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
          ",\"agreements\":" S_ALL_AGREEMENTS "}",
          s_rid (id, 12));
    assert_int_equal (s_progress (f->d, "E01")->blocked, 0);
    s_try_keys (f->d, "E01/1/113", true, true, false, true);
    pmt_fixture_destroy (&f);
}

static void
test_key_gate_facts_before_checkin_and_keys_twice (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 1);
    char id[19];
    s_fact (f->d, F_PASSED, "E01/1/101");
    s_fact (f->d, F_ISSUED, "E01/1/101");
    s_fact (f->d, F_SETTLED, "E01/1/101");
    Pm__V1__Reply *r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.keys.handover",
                                 "{\"unit_id\":\"E01/1/101\",\"received_by\":\"业主0\"}");
    assert_non_null (strstr (r->message, "check"));
    S_OK (f->d, "intake.notice.send", "{\"estate_id\":\"E01\",\"window\":\"w\",\"place\":\"p\",\"notice_id\":\"N\"}");
    s_event (f->d, "notify", "notify.message.sent", "\"message\":{\"unit_id\":\"E01/1/101\",\"notice_id\":\"N\"}");
    S_OK (f->d, "intake.checkin",
          "{\"unit_id\":\"E01/1/101\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
          ",\"agreements\":" S_ALL_AGREEMENTS "}",
          s_rid (id, 0));
    assert_int_equal (s_progress (f->d, "E01")->blocked, 0); /* never blocked: the facts were there */
    r = S_OK (f->d, "intake.keys.handover",
              "{\"unit_id\":\"E01/1/101\",\"key_set\":\"A\",\"keys\":3,\"received_by\":\"业主0\"}");
    Pm__V1__Event *ev = pmt_emitted_type (f->d, "intake.keys.handed");
    assert_non_null (ev);
    assert_int_equal (ev->keys_handed->keys, 3);
    assert_non_null (ev->keys_handed->unit);
    assert_string_equal (ev->keys_handed->unit->unit_id, "E01/1/101");
    r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.keys.handover",
                  "{\"unit_id\":\"E01/1/101\",\"received_by\":\"业主0\"}");
    assert_non_null (strstr (r->message, "keys handed already (set A, 3 keys, to 业主0"));
    /* the ledger: one back, one lost, one still out */
    r = S_OK (f->d, "intake.keys.return",
              "{\"unit_id\":\"E01/1/101\",\"key_set\":\"A\",\"keys\":1,\"person\":\"装修队\",\"note\":\"spare\"}");
    assert_int_equal (r->intake_keys_return->outstanding, 2);
    r = S_OK (f->d, "intake.keys.return",
              "{\"unit_id\":\"E01/1/101\",\"key_set\":\"A\",\"keys\":1,\"person\":\"业主0\",\"lost\":true}");
    assert_int_equal (r->intake_keys_return->outstanding, 1);
    r = S_EXPECT (f->d, PM__V1__STATUS__CONFLICT, "intake.keys.return",
                  "{\"unit_id\":\"E01/1/101\",\"key_set\":\"A\",\"keys\":2,\"person\":\"x\"}");
    assert_non_null (strstr (r->message, "only 1 key of set A is out"));
    r = S_OK (f->d, "intake.keys.ledger", "{\"unit_id\":\"E01/1/101\"}");
    Pm__V1__IntakeKeysLedgerReply *l = r->intake_keys_ledger;
    assert_int_equal (l->n_entries, 3);
    assert_string_equal (l->entries[0]->kind, "handed");
    assert_int_equal (l->entries[0]->keys, 3);
    assert_string_equal (l->entries[0]->person, "业主0");
    assert_string_equal (l->entries[1]->kind, "returned");
    assert_string_equal (l->entries[2]->kind, "lost");
    assert_int_equal (l->outstanding, 1);
    assert_int_equal (l->lost, 1);
    Pm__V1__EstateProgress *p = s_progress (f->d, "E01");
    assert_int_equal (p->keys_handed, 1);
    assert_int_equal (p->completion_pct, 100);
    pmt_fixture_destroy (&f);
}

/* --- bad input, progress, snapshot ---------------------------------------------------- */

static void
test_bad_input_changes_nothing (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 2);
    uint64_t seq = pm_daemon_last_seq (f->d);
    static const char *const methods[] = { "intake.appointment.book", "intake.appointment.move",
                                           "intake.appointment.cancel", "intake.checkin", "intake.keys.handover",
                                           "intake.keys.return", "intake.keys.ledger", "intake.unit.get" };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        Pm__V1__Reply *r = s_call (f->d, methods[i], "{\"unit_id\":\"E01/1-101\"}");
        if (r->status != PM__V1__STATUS__NOT_FOUND || !strstr (r->message, "E01/1-101")
            || !strstr (r->message, "ESTATE/BUILDING/UNIT"))
            fail_msg ("%s: %s: %s", methods[i], pm_status_name (r->status), r->message);
    }
    Pm__V1__Reply *r = S_EXPECT (f->d, PM__V1__STATUS__NOT_FOUND, "intake.progress", "{\"estate_id\":\"E77\"}");
    assert_non_null (strstr (r->message, "E77"));
    S_EXPECT (f->d, PM__V1__STATUS__NOT_FOUND, "intake.schedule.plan",
              "{\"estate_id\":\"E77\",\"days\":[{\"date\":\"2026-12-05\"}]}");
    r = S_EXPECT (f->d, PM__V1__STATUS__INVALID, "intake.schedule.plan",
                  "{\"estate_id\":\"E01\",\"days\":[{\"date\":\"2026-13-05\"}]}");
    assert_non_null (strstr (r->message, "2026-13-05"));
    r = S_EXPECT (f->d, PM__V1__STATUS__INVALID, "intake.schedule.plan",
                  "{\"estate_id\":\"E01\",\"days\":[{\"date\":\"2026-12-05\"}],\"opens\":\"17:00\",\"closes\":\"09:00\"}");
    assert_non_null (strstr (r->message, "close after it opens"));
    S_EXPECT (f->d, PM__V1__STATUS__INVALID, "intake.notice.send", "{\"estate_id\":\"E01\"}");
    S_EXPECT (f->d, PM__V1__STATUS__NOT_FOUND, "intake.notice.send",
              "{\"unit_ids\":[\"E01/1/101\",\"E01/1/999\"],\"window\":\"w\",\"place\":\"p\"}");
    assert_true (pm_daemon_last_seq (f->d) == seq); /* nothing emitted */
    assert_string_equal (s_state (f->d, "E01/1/101"), "REGISTERED"); /* the first unit was not kept */
    assert_int_equal (s_unit (f->d, "E01/1/101")->n_notices, 0);
    pmt_fixture_destroy (&f);
}

static void
test_progress_of_every_estate (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "2", "10", "1" };
    s_import (f->d, "E01", b, 3, 2, 2);
    s_import (f->d, "E02", b, 1, 1, 1);
    Pm__V1__Reply *r = S_OK (f->d, "intake.progress", "{}");
    assert_int_equal (r->intake_progress->n_estates, 2);
    Pm__V1__EstateProgress *p = r->intake_progress->estates[0];
    assert_string_equal (p->estate_id, "E01");
    assert_int_equal (p->units, 12);
    assert_int_equal (p->owners, 12);
    assert_int_equal (p->n_buildings, 3);
    assert_string_equal (p->buildings[0]->building, "1"); /* natural order */
    assert_string_equal (p->buildings[1]->building, "2");
    assert_string_equal (p->buildings[2]->building, "10");
    assert_int_equal (p->buildings[2]->units, 4);
    assert_int_equal (s_state_count (p, "REGISTERED"), 12);
    assert_string_equal (p->today, "2026-12-05");
    assert_int_equal (r->intake_progress->estates[1]->units, 1);
    pmt_fixture_destroy (&f);
}

/* Loads intake's whole snapshot, max events a page; counts each type. */
static void
s_snapshot (pm_daemon_t *d, unsigned max, size_t counts[4], size_t *pages)
{
    static const char *const types[] = { "intake.unit.registered", "intake.appointment.booked",
                                         "intake.unit.checked_in", "intake.keys.handed" };
    char token[128] = "";
    ProtobufCBinaryData after = { 0, NULL };
    uint8_t *held = NULL;
    memset (counts, 0, 4 * sizeof *counts);
    *pages = 0;
    for (;;) {
        Pm__V1__EventsSnapshotRequest q = PM__V1__EVENTS_SNAPSHOT_REQUEST__INIT;
        q.token = token;
        q.after = after;
        q.max = max;
        char id[32];
        snprintf (id, sizeof id, "snap-%u", ++s_next_id);
        Pm__V1__Reply *r = pmt_call_expect (d, id, "events.snapshot", &q.base, PM__V1__STATUS__OK);
        Pm__V1__EventsSnapshotReply *s = r->events_snapshot;
        (*pages)++;
        for (size_t i = 0; i < s->n_events; i++) {
            assert_true (s->events[i]->snapshot);
            int t;
            for (t = 0; t < 4 && strcmp (s->events[i]->type, types[t]) != 0; t++)
                ;
            if (t >= 4) {
                fail_msg ("snapshot event of type %s", s->events[i]->type);
                continue;
            }
            counts[t]++;
            if (t == 2)
                assert_non_null (s->events[i]->checked_in->unit);
        }
        snprintf (token, sizeof token, "%s", s->token);
        free (held);
        held = malloc (s->after.len + 1);
        memcpy (held, s->after.data, s->after.len);
        after.data = held;
        after.len = s->after.len;
        if (s->done)
            break;
        assert_true (*pages < 1000);
    }
    free (held);
}

static void
test_snapshot_restates_every_case (void **state)
{
    pmt_fixture_t *f = s_fixture (NULL);
    const char *b[] = { "1" };
    s_import (f->d, "E01", b, 1, 1, 5);
    s_plan (f->d, "09:00", "10:00", 60, 1, 3); /* 101, 102, 103 booked; 104, 105 wait */
    pmt_clock_set (f->d, "2026-12-05T01:05:00Z");
    char id[19];
    for (int k = 0; k < 2; k++)
        S_OK (f->d, "intake.checkin",
              "{\"unit_id\":\"E01/1/10%d\",\"owner_index\":0,\"id_number\":\"%s\",\"documents\":" S_DOCS
              ",\"agreements\":" S_ALL_AGREEMENTS "}",
              k + 1, s_rid (id, (unsigned) k));
    s_fact (f->d, F_PASSED, "E01/1/101");
    s_fact (f->d, F_ISSUED, "E01/1/101");
    s_fact (f->d, F_SETTLED, "E01/1/101");
    S_OK (f->d, "intake.keys.handover", "{\"unit_id\":\"E01/1/101\",\"received_by\":\"业主0\"}");
    /* 5 registered, 1 booked (103), 2 checked in, 1 keys: the same whatever the page size */
    for (unsigned max = 1; max <= 4; max++) {
        size_t counts[4], pages;
        s_snapshot (f->d, max, counts, &pages);
        assert_int_equal (counts[0], 5);
        assert_int_equal (counts[1], 1);
        assert_int_equal (counts[2], 2);
        assert_int_equal (counts[3], 1);
        if (max == 1)
            assert_true (pages >= 9);
    }
    pmt_fixture_destroy (&f);
}

int
main (void)
{
    pm_log_init ("test_intake_case", PM_LOG_WARN);
    char *home = pmt_tmpdir (); /* the sealing and owner keys go under PM_HOME/keys */
    setenv ("PM_HOME", home, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_notice_once_per_unit_and_notified_by_notify),
        cmocka_unit_test (test_plan_building_floor_unit_within_capacity_and_deterministic),
        cmocka_unit_test (test_plan_given_buildings_per_day_and_replan_keeps_checked_in),
        cmocka_unit_test (test_move_cancel_and_waitlist_promotion),
        cmocka_unit_test (test_capacity_never_exceeded_under_random_moves_and_cancels),
        cmocka_unit_test (test_no_show_by_timer_and_rebooked),
        cmocka_unit_test (test_checkin_identity_checklist_and_walk_ins),
        cmocka_unit_test (test_key_gate_every_order_of_arrival),
        cmocka_unit_test (test_key_gate_facts_before_checkin_and_keys_twice),
        cmocka_unit_test (test_bad_input_changes_nothing),
        cmocka_unit_test (test_progress_of_every_estate),
        cmocka_unit_test (test_snapshot_restates_every_case),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    pmt_rmdir (home);
    return rc;
}
