/* The bus: events reach subscribers exactly once, whether they were running,
 * started late, restarted, or missed the last event of a burst. Two daemons
 * run in this process on their own libev loops and real ipc sockets; the test
 * turns both loops until a condition holds or a deadline passes. */
#include "support.h"
#include "pm/client.h"
#include "pm/err.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *dir;
    struct ev_loop *lpub, *lsub;
    pm_daemon_t *pub, *sub;
    pm_client_t *client;
    int replies;
} fx_t;

static void
s_turn (fx_t *f)
{
    ev_run (f->lpub, EVRUN_NOWAIT);
    if (f->sub)
        ev_run (f->lsub, EVRUN_NOWAIT);
    Pm__V1__Reply *r;
    while (f->client && pm_client_recv (f->client, 0, &r) == PM_OK) {
        assert_int_equal (r->status, PM__V1__STATUS__OK);
        f->replies++;
        pm__v1__reply__free_unpacked (r, NULL);
    }
    struct timespec ts = { 0, 200000 };
    nanosleep (&ts, NULL); /* yield the CPU between polls */
}

/* Turns the loops until cond holds; fails the test after 20 s. */
#define SPIN_UNTIL(f, cond) \
    do { \
        int64_t deadline_ = pm_mono_ms () + 20000; \
        while (!(cond)) { \
            assert_true (pm_mono_ms () < deadline_); \
            s_turn (f); \
        } \
    } while (0)

static void
s_start_sub (fx_t *f)
{
    f->sub = pmt_daemon (&pmt_sub_spec, f->dir, "", f->lsub);
    assert_int_equal (pm_daemon_bind (f->sub), PM_OK);
    pm_daemon_run (f->sub);
}

static int
s_setup (void **state)
{
    fx_t *f = calloc (1, sizeof *f);
    f->dir = pmt_tmpdir ();
    f->lpub = ev_loop_new (0);
    f->lsub = ev_loop_new (0);
    f->pub = pmt_daemon (&pmt_pub_spec, f->dir, "", f->lpub);
    assert_int_equal (pm_daemon_bind (f->pub), PM_OK);
    pm_daemon_run (f->pub);
    char ep[512];
    snprintf (ep, sizeof ep, "ipc://%s/pub.cmd", f->dir);
    f->client = pm_client_new (NULL, ep);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *f = *state;
    pm_client_destroy (&f->client);
    pm_daemon_destroy (&f->sub);
    pm_daemon_destroy (&f->pub);
    ev_loop_destroy (f->lpub);
    ev_loop_destroy (f->lsub);
    pmt_rmdir (f->dir);
    free (f);
    return 0;
}

/* Sends n test.put commands with keys prefix0..prefixN and waits for the replies. */
static void
s_put (fx_t *f, const char *prefix, int n)
{
    int want = f->replies + n;
    for (int i = 0; i < n; i++) {
        char id[27], actor[64];
        pm_request_id (id);
        snprintf (actor, sizeof actor, "%s%05d", prefix, i);
        Pm__V1__Request req = PM__V1__REQUEST__INIT;
        req.id = id;
        req.method = "test.put";
        req.actor = actor;
        assert_int_equal (pm_client_send (f->client, &req), PM_OK);
    }
    SPIN_UNTIL (f, f->replies >= want);
}

static uint64_t
s_applied (pm_daemon_t *d)
{
    pm_txn_t t;
    pm_txn_begin_read (&t, pm_daemon_store (d));
    uint64_t n = pm_meta_get_u64 (&t, "applied");
    pm_txn_abort (&t);
    return n;
}

static void
test_late_subscriber_gets_everything_by_replay (void **state)
{
    fx_t *f = *state;
    s_put (f, "early", 25000); /* several replay pages (5,000 events each) */
    assert_int_equal (pm_daemon_last_seq (f->pub), 25000);
    s_start_sub (f); /* started after every event was published */
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 25000);
    assert_int_equal (s_applied (f->sub), 25000);
    char *v = pmt_kv (f->sub, "early24999");
    assert_string_equal (v, "pub:25000");
    free (v);
}

/* ops.ping on the subscriber over its socket (the loops turned meanwhile). */
static Pm__V1__Reply *
s_ping_sub (fx_t *f)
{
    char ep[512], id[27];
    snprintf (ep, sizeof ep, "ipc://%s/sub.cmd", f->dir);
    pm_client_t *c = pm_client_new (NULL, ep);
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = "ops.ping";
    assert_int_equal (pm_client_send (c, &req), PM_OK);
    Pm__V1__Reply *r = NULL;
    SPIN_UNTIL (f, pm_client_recv (c, 0, &r) == PM_OK);
    pm_client_destroy (&c);
    return r;
}

/* ops.ping says where a consumer stands in each upstream, so that a sync
 * (pmctl sync, the move-in bench) needs no rendering of every metric. */
static void
test_ping_reports_upstream_positions (void **state)
{
    fx_t *f = *state;
    s_put (f, "early", 30);
    s_start_sub (f);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 30);
    Pm__V1__Reply *r = s_ping_sub (f);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_OPS_PING);
    assert_int_equal (r->ops_ping->n_upstreams, 1);
    assert_string_equal (r->ops_ping->upstreams[0]->source, "pub");
    assert_int_equal (r->ops_ping->upstreams[0]->applied_seq, 30);
    assert_true (r->ops_ping->upstreams[0]->following);
    pm__v1__reply__free_unpacked (r, NULL);
}

static double
s_replays (fx_t *f)
{
    return pmt_metric_or (f->pub, "pm_requests_total", "method=\"events.replay\",status=\"OK\"", 0);
}

static void
test_live_events_follow (void **state)
{
    fx_t *f = *state;
    s_start_sub (f);
    SPIN_UNTIL (f, s_replays (f) >= 1); /* its start-up replay was answered */
    /* A first event proves the SUB is connected: it arrives live, or by a
     * replay that a heartbeat (which came over the same SUB) asked for. */
    s_put (f, "probe", 1);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 1);
    double replays = s_replays (f);
    s_put (f, "live", 300);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 301);
    assert_int_equal (s_applied (f->sub), 301);
    /* they came live: no gap was seen and no replay was asked for */
    assert_int_equal (pmt_metric (f->sub, "pm_consumer_gaps_total", "source=\"pub\""), 0);
    assert_true (s_replays (f) == replays);
}

static void
test_restarted_subscriber_applies_each_event_once (void **state)
{
    fx_t *f = *state;
    s_start_sub (f);
    s_put (f, "a", 400);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") >= 100);
    pm_daemon_destroy (&f->sub); /* goes away mid-stream */
    s_put (f, "b", 400);
    s_start_sub (f);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 800);
    assert_int_equal (s_applied (f->sub), 800); /* not one applied twice */
}

static void
test_lost_last_event_is_found_by_heartbeat (void **state)
{
    fx_t *f = *state;
    s_start_sub (f);
    s_put (f, "x", 10);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 10);
    /* Commit an event that is never published live (as if PUB dropped it):
     * only the heartbeat's last_seq tells the subscriber it exists. */
    Pm__V1__Request *req = pmt_req ("unpublished", "test.put", "ghost");
    pm_batch_item_t item = { .req = req };
    assert_int_equal (pm_daemon_apply (f->pub, &item, 1), PM_OK);
    pmt_req_free (req);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 11);
    char *v = pmt_kv (f->sub, "ghost");
    assert_string_equal (v, "pub:11");
    free (v);
}

static void
test_durable_timer_fires_after_restart (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request *req = pmt_req ("t1", "test.timer", "remind");
    pm_batch_item_t item = { .req = req };
    assert_int_equal (pm_daemon_apply (f->pub, &item, 1), PM_OK);
    pmt_req_free (req);
    /* restart: the timer is in LMDB, not in memory */
    pm_daemon_destroy (&f->pub);
    f->pub = pmt_daemon (&pmt_pub_spec, f->dir, "", f->lpub);
    assert_int_equal (pm_daemon_bind (f->pub), PM_OK);
    pm_daemon_run (f->pub);
    for (int i = 0; i < 20; i++)
        s_turn (f);
    char *fired = pmt_kv (f->pub, "fired:remind");
    assert_null (fired); /* not due yet: due in 1 h */
    Pm__V1__Request *adv = pmt_req ("adv", "ops.clock", "test");
    Pm__V1__OpsClockRequest body = PM__V1__OPS_CLOCK_REQUEST__INIT;
    body.advance_by = "2h";
    pm_body_set (&adv->base, "ops.clock", &body.base);
    pm_batch_item_t a = { .req = adv };
    assert_int_equal (pm_daemon_apply (f->pub, &a, 1), PM_OK);
    assert_int_equal (a.reply->status, PM__V1__STATUS__OK);
    adv->ops_clock = NULL;
    adv->body_case = PM__V1__REQUEST__BODY__NOT_SET;
    pmt_req_free (adv);
    SPIN_UNTIL (f, (fired = pmt_kv (f->pub, "fired:remind")) != NULL);
    assert_string_equal (fired, "payload");
    free (fired);
    assert_int_equal (pm_store_count (pm_daemon_store (f->pub), PM_DB_TIMERS), 0);
    assert_int_equal (pm_daemon_last_seq (f->pub), 1); /* the timer's event */
}

static void
test_retention_prunes_and_replay_says_so (void **state)
{
    fx_t *f = *state;
    s_put (f, "old", 5);
    assert_int_equal (pm_store_count (pm_daemon_store (f->pub), PM_DB_IDEM), 5);
    Pm__V1__Request *adv = pmt_req ("adv31d", "ops.clock", "test");
    Pm__V1__OpsClockRequest body = PM__V1__OPS_CLOCK_REQUEST__INIT;
    body.advance_by = "31d"; /* past event_retention_d = 30 and idem_retention_h = 48 */
    pm_body_set (&adv->base, "ops.clock", &body.base);
    pm_batch_item_t a = { .req = adv };
    assert_int_equal (pm_daemon_apply (f->pub, &a, 1), PM_OK);
    adv->ops_clock = NULL;
    adv->body_case = PM__V1__REQUEST__BODY__NOT_SET;
    pmt_req_free (adv);
    /* the outbox keeps the latest event; the old replies go too */
    SPIN_UNTIL (f, pm_store_count (pm_daemon_store (f->pub), PM_DB_OUTBOX) == 1);
    assert_true (pm_store_count (pm_daemon_store (f->pub), PM_DB_IDEM) <= 1);
    Pm__V1__Request *rp = pmt_req ("rp", "events.replay", "test");
    Pm__V1__EventsReplayRequest rb = PM__V1__EVENTS_REPLAY_REQUEST__INIT;
    rb.from_seq = 1;
    pm_body_set (&rp->base, "events.replay", &rb.base);
    pm_batch_item_t r = { .req = rp };
    pm_daemon_apply (f->pub, &r, 1);
    assert_int_equal (r.reply->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r.reply->message, "pruned"));
    assert_non_null (strstr (r.reply->message, "oldest retained is 5"));
    rb.from_seq = 5; /* from the oldest retained on, replay works */
    pm_daemon_apply (f->pub, &r, 1);
    assert_int_equal (r.reply->status, PM__V1__STATUS__OK);
    assert_int_equal (r.reply->events_replay->n_events, 1);
    rp->events_replay = NULL;
    rp->body_case = PM__V1__REQUEST__BODY__NOT_SET;
    pmt_req_free (rp);
}

/* Moves pub's clock past the retention and waits until its outbox holds only
 * the latest event. */
static void
s_prune_pub (fx_t *f)
{
    pmt_clock_advance (f->pub, "31d");
    SPIN_UNTIL (f, pm_store_count (pm_daemon_store (f->pub), PM_DB_OUTBOX) == 1);
}

static void
test_consumer_behind_retention_loads_the_snapshot (void **state)
{
    fx_t *f = *state;
    s_put (f, "old", 5);
    s_prune_pub (f); /* events 1..4 are gone: a new consumer cannot replay them */
    pmt_log_start ();
    s_start_sub (f);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 5);
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf (key, sizeof key, "old%05d", i);
        char *v = pmt_kv (f->sub, key);
        if (!v)
            fail_msg ("%s missing after the snapshot", key);
        free (v);
    }
    assert_int_equal (pmt_metric (f->sub, "pm_consumer_snapshots_total", "source=\"pub\""), 1);
    assert_int_equal (pmt_log_count ("loading pub's snapshot:"), 1); /* said once, with the reason */
    assert_true (pmt_log_has ("were pruned"));
    pmt_log_stop ();
    /* then it follows from the snapshot's seq */
    s_put (f, "new", 3);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 8);
    char *v = pmt_kv (f->sub, "new00002");
    assert_string_equal (v, "pub:8");
    free (v);
    assert_int_equal (pmt_queue (f->sub, "upstreams")->count, 0);
    assert_int_equal (pmt_metric (f->sub, "pm_consumer_following", "source=\"pub\""), 1);
}

static void
test_rebuild_reloads_a_damaged_projection (void **state)
{
    fx_t *f = *state;
    s_start_sub (f);
    s_put (f, "k", 10);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 10);
    /* damage the projection by hand */
    pm_txn_t t;
    assert_int_equal (pm_txn_begin (&t, pm_daemon_store (f->sub), NULL), PM_OK);
    pm_txn_del (&t, PMT_KV, "k00003", 6);
    pm_txn_put (&t, PMT_KV, "stray", 5, "x", 1);
    assert_int_equal (pm_txn_commit (&t), PM_OK);

    Pm__V1__OpsRebuildRequest body = PM__V1__OPS_REBUILD_REQUEST__INIT;
    body.source = "nosuch";
    Pm__V1__Reply *r = pmt_call_expect (f->sub, "rb0", "ops.rebuild", &body.base, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "it consumes: pub"));
    body.source = "pub";
    r = pmt_call_expect (f->sub, "rb1", "ops.rebuild", &body.base, PM__V1__STATUS__OK);
    assert_true (r->ops_rebuild->cursor_before == 10);
    SPIN_UNTIL (f, pmt_metric (f->sub, "pm_consumer_snapshots_total", "source=\"pub\"") == 1);
    char *v = pmt_kv (f->sub, "k00003");
    assert_non_null (v); /* back */
    free (v);
    assert_null (pmt_kv (f->sub, "stray")); /* the table was emptied first */
    assert_true (pm_daemon_applied (f->sub, "pub") == 10);
    s_put (f, "after", 2);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 12);
}

static int
s_nosnap_setup (void **state)
{
    static pm_daemon_spec_t nosnap;
    nosnap = pmt_pub_spec;
    nosnap.snapshot = NULL;
    fx_t *f = calloc (1, sizeof *f);
    f->dir = pmt_tmpdir ();
    f->lpub = ev_loop_new (0);
    f->lsub = ev_loop_new (0);
    f->pub = pmt_daemon (&nosnap, f->dir, "", f->lpub);
    assert_int_equal (pm_daemon_bind (f->pub), PM_OK);
    pm_daemon_run (f->pub);
    char ep[512];
    snprintf (ep, sizeof ep, "ipc://%s/pub.cmd", f->dir);
    f->client = pm_client_new (NULL, ep);
    *state = f;
    return 0;
}

static void
test_stranded_is_said_once_and_queued (void **state)
{
    fx_t *f = *state;
    s_put (f, "old", 5);
    s_prune_pub (f);
    pmt_log_start ();
    s_start_sub (f);
    SPIN_UNTIL (f, pmt_log_has ("stranded behind pub"));
    int64_t until = pm_mono_ms () + 1500; /* several replay timeouts and ticks */
    while (pm_mono_ms () < until)
        s_turn (f);
    assert_int_equal (pmt_log_count ("stranded behind pub"), 1);
    assert_int_equal (pmt_log_count ("replay from pub failed"), 0);
    pmt_log_stop ();
    const Pm__V1__QueueItem *it = pmt_queue_item (pmt_queue (f->sub, "upstreams"), "pub");
    assert_non_null (it);
    assert_string_equal (pmt_queue_field (it, "state"), "stranded");
    assert_non_null (strstr (it->reason, "keeps no snapshot"));
    assert_int_equal (pmt_metric (f->sub, "pm_consumer_following", "source=\"pub\""), 0);
    assert_true (pm_daemon_applied (f->sub, "pub") == 0);
}

/* Consumers skip events they do not handle by reading only seq and type. */
static void
test_event_peek_reads_seq_and_type (void **state)
{
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    Pm__V1__Unit unit = PM__V1__UNIT__INIT;
    ev.source = "intake";
    ev.seq = 1234567890123ULL;
    ev.id = "intake:1234567890123";
    ev.type = "intake.unit.registered";
    ev.at_ms = -5;
    ev.unit_id = "E01/3/2-301";
    ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
    unit.unit_id = "E01/3/2-301";
    unit.area_cm2 = 8950;
    ev.unit = &unit;
    uint8_t buf[512];
    size_t len = pm__v1__event__pack (&ev, buf);
    uint64_t seq;
    const char *type;
    size_t tlen;
    assert_int_equal (pm_event_peek (buf, len, &seq, &type, &tlen), PM_OK);
    assert_true (seq == 1234567890123ULL);
    assert_int_equal (tlen, strlen ("intake.unit.registered"));
    assert_memory_equal (type, "intake.unit.registered", tlen);
    /* every truncation is refused, never read past the end */
    for (size_t n = 1; n < len; n++) {
        int rc = pm_event_peek (buf, n, &seq, &type, &tlen);
        assert_true (rc == PM_EPROTO || (rc == PM_OK && type + tlen <= (const char *) buf + n));
    }
    const uint8_t bad[] = { 0x0f, 0x01 }; /* wire type 7 */
    assert_int_equal (pm_event_peek (bad, sizeof bad, &seq, &type, &tlen), PM_EPROTO);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_event_peek_reads_seq_and_type),
        cmocka_unit_test_setup_teardown (test_late_subscriber_gets_everything_by_replay, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ping_reports_upstream_positions, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_live_events_follow, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restarted_subscriber_applies_each_event_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lost_last_event_is_found_by_heartbeat, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_durable_timer_fires_after_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retention_prunes_and_replay_says_so, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_consumer_behind_retention_loads_the_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rebuild_reloads_a_damaged_projection, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stranded_is_said_once_and_queued, s_nosnap_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
