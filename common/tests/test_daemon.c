/* Group commit, without sockets: pm_daemon_apply runs one batch exactly as the
 * loop would (one write transaction, replies after the commit). */
#include "support.h"
#include "pm/err.h"
#include "pm/mem.h"

#include <ev.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *dir;
    struct ev_loop *loop;
    pm_daemon_t *d;
} fx_t;

static int
s_setup (void **state)
{
    fx_t *f = calloc (1, sizeof *f);
    f->dir = pmt_tmpdir ();
    f->loop = ev_loop_new (0);
    f->d = pmt_daemon (&pmt_pub_spec, f->dir, "", f->loop);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *f = *state;
    pm_daemon_destroy (&f->d);
    ev_loop_destroy (f->loop);
    pmt_rmdir (f->dir);
    free (f);
    return 0;
}

/* Applies n requests made by mk(i) in one batch; returns the items (caller frees). */
static pm_batch_item_t *
s_batch (pm_daemon_t *d, Pm__V1__Request **reqs, size_t n, int *rc)
{
    pm_batch_item_t *items = calloc (n, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i].req = reqs[i];
    *rc = pm_daemon_apply (d, items, n);
    return items;
}

static uint64_t
s_outbox_count (pm_daemon_t *d)
{
    return pm_store_count (pm_daemon_store (d), PM_DB_OUTBOX);
}

static void
test_batch_applies_all_in_one_commit (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request *reqs[200];
    char id[32], actor[32];
    for (int i = 0; i < 200; i++) {
        snprintf (id, sizeof id, "r%03d", i);
        snprintf (actor, sizeof actor, "k%03d", i);
        reqs[i] = pmt_req (id, "test.put", actor);
    }
    int rc;
    pm_batch_item_t *items = s_batch (f->d, reqs, 200, &rc);
    assert_int_equal (rc, PM_OK);
    for (int i = 0; i < 200; i++) {
        assert_int_equal (items[i].reply->status, PM__V1__STATUS__OK);
        assert_string_equal (items[i].reply->id, reqs[i]->id);
    }
    /* one event per command, seqs 1..200 without gaps */
    assert_int_equal (pm_daemon_last_seq (f->d), 200);
    assert_int_equal (s_outbox_count (f->d), 200);
    char *v = pmt_kv (f->d, "k123");
    assert_string_equal (v, "r123");
    free (v);
    /* all 200 went through one commit */
    pm_metric_t *m = pm_metric (pm_daemon_metrics (f->d), PM_HISTOGRAM, "pm_batch_messages", NULL, NULL);
    assert_int_equal (pm_metric_count (m), 1);
    assert_true (pm_metric_quantile (m, 1.0) >= 200);
    for (int i = 0; i < 200; i++)
        pmt_req_free (reqs[i]);
    free (items);
}

/* What GET /metrics serves: the gauges refreshed first, so the text says
 * what is committed now, not what the last ops.metrics saw. */
static void
test_prometheus_text_has_fresh_gauges (void **state)
{
    fx_t *f = *state;
    char *text = pm_daemon_prometheus (f->d);
    assert_non_null (text);
    assert_non_null (strstr (text, "pm_outbox_last_seq{daemon=\"pub\"} 0"));
    free (text);
    Pm__V1__Request *req = pmt_req ("p1", "test.put", "k1");
    pmt_apply (f->d, req);
    pmt_req_free (req);
    text = pm_daemon_prometheus (f->d);
    assert_non_null (strstr (text, "pm_outbox_last_seq{daemon=\"pub\"} 1"));
    assert_non_null (strstr (text, "pm_outbox_events{daemon=\"pub\"} 1"));
    free (text);
}

static void
test_repeated_id_is_applied_once (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request *a = pmt_req ("same-id", "test.put", "once");
    Pm__V1__Request *b = pmt_req ("same-id", "test.put", "twice"); /* same id, other body */
    Pm__V1__Request *reqs[] = { a, b };
    int rc;
    pm_batch_item_t *items = s_batch (f->d, reqs, 2, &rc); /* both in one batch */
    assert_int_equal (rc, PM_OK);
    assert_string_equal (items[1].reply->message, items[0].reply->message);
    free (items);
    items = s_batch (f->d, reqs, 1, &rc); /* and again in a later batch */
    assert_string_equal (items[0].reply->message, "put once");
    free (items);
    char *twice = pmt_kv (f->d, "twice");
    assert_null (twice);
    assert_int_equal (s_outbox_count (f->d), 1);
    pmt_req_free (a);
    pmt_req_free (b);
}

static void
test_failed_command_rolls_back_alone (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request *reqs[] = {
        pmt_req ("1", "test.put", "before"),
        pmt_req ("2", "test.failw", "half"), /* writes, emits, then fails */
        pmt_req ("3", "test.fail", "refused"),
        pmt_req ("4", "test.put", "after"),
    };
    int rc;
    pm_batch_item_t *items = s_batch (f->d, reqs, 4, &rc);
    assert_int_equal (rc, PM_OK);
    assert_int_equal (items[0].reply->status, PM__V1__STATUS__OK);
    assert_int_equal (items[1].reply->status, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (items[1].reply->message, "changed my mind"));
    assert_int_equal (items[2].reply->status, PM__V1__STATUS__INVALID);
    assert_int_equal (items[3].reply->status, PM__V1__STATUS__OK);
    free (items);
    char *half = pmt_kv (f->d, "half"), *before = pmt_kv (f->d, "before"), *after = pmt_kv (f->d, "after");
    assert_null (half);
    assert_non_null (before);
    assert_non_null (after);
    free (before);
    free (after);
    /* the failed command's event is gone and the seqs stay contiguous */
    assert_int_equal (pm_daemon_last_seq (f->d), 2);
    assert_int_equal (s_outbox_count (f->d), 2);
    for (int i = 0; i < 4; i++)
        pmt_req_free (reqs[i]);
}

static void
test_bad_requests_change_nothing (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request *reqs[] = {
        pmt_req ("a", "no.such.method", "x"),
        pmt_req ("", "test.put", "no-id"),
        pmt_req ("c", "ops.metrics", "x"),
    };
    /* a body that does not belong to the method */
    Pm__V1__OpsPingRequest ping = PM__V1__OPS_PING_REQUEST__INIT;
    pm_body_set (&reqs[2]->base, "ops.ping", &ping.base);
    int rc;
    pm_batch_item_t *items = s_batch (f->d, reqs, 3, &rc);
    assert_int_equal (items[0].reply->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (items[0].reply->message, "no.such.method"));
    assert_non_null (strstr (items[0].reply->message, "test.put")); /* lists what it answers */
    assert_int_equal (items[1].reply->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (items[1].reply->message, "idempotency key"));
    assert_int_equal (items[2].reply->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (items[2].reply->message, "ops_metrics"));
    free (items);
    reqs[2]->ops_ping = NULL; /* stack body: do not free it */
    reqs[2]->body_case = PM__V1__REQUEST__BODY__NOT_SET;
    assert_int_equal (s_outbox_count (f->d), 0);
    assert_int_equal (pm_store_count (pm_daemon_store (f->d), PM_DB_IDEM), 0);
    for (int i = 0; i < 3; i++)
        pmt_req_free (reqs[i]);
}

static void
test_map_grows_when_full (void **state)
{
    fx_t *f = *state; /* map_size_mb = 1 */
    size_t before = pm_store_map_size (pm_daemon_store (f->d));
    enum { N = 150 }; /* 150 x 16 KiB = 2.4 MiB > 1 MiB */
    Pm__V1__Request *reqs[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf (id, sizeof id, "big%03d", i);
        reqs[i] = pmt_req (id, "test.big", id);
    }
    int rc;
    pm_batch_item_t *items = s_batch (f->d, reqs, N, &rc);
    assert_int_equal (rc, PM_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal (items[i].reply->status, PM__V1__STATUS__OK);
    free (items);
    assert_true (pm_store_map_size (pm_daemon_store (f->d)) > before);
    char *v = pmt_kv (f->d, "big149");
    assert_non_null (v);
    assert_int_equal (strlen (v), 16384);
    free (v);
    pm_metric_t *m = pm_metric (pm_daemon_metrics (f->d), PM_COUNTER, "pm_map_grow_total", NULL, NULL);
    assert_true (pm_metric_value (m) >= 1);
    for (int i = 0; i < N; i++)
        pmt_req_free (reqs[i]);
}

static void
test_state_survives_restart (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request *a = pmt_req ("keep", "test.put", "k");
    Pm__V1__Request *reqs[] = { a };
    int rc;
    free (s_batch (f->d, reqs, 1, &rc));
    pm_daemon_destroy (&f->d);
    f->d = pmt_daemon (&pmt_pub_spec, f->dir, "", f->loop);
    assert_int_equal (pm_daemon_last_seq (f->d), 1);
    pm_batch_item_t *items = s_batch (f->d, reqs, 1, &rc); /* a retry after the restart */
    assert_string_equal (items[0].reply->message, "put k");
    free (items);
    assert_int_equal (pm_daemon_last_seq (f->d), 1);
    Pm__V1__Request *b = pmt_req ("next", "test.put", "k2");
    reqs[0] = b;
    free (s_batch (f->d, reqs, 1, &rc));
    assert_int_equal (pm_daemon_last_seq (f->d), 2); /* seq continues, no reuse */
    pmt_req_free (a);
    pmt_req_free (b);
}

static void
test_key_refused_by_store_fails_alone (void **state)
{
    fx_t *f = *state;
    char long_id[300];
    memset (long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    Pm__V1__Request *reqs[] = {
        pmt_req ("ok-1", "test.put", "a"),
        pmt_req ("empty-key", "test.put", ""), /* the handler writes kv[""]: LMDB refuses it */
        pmt_req (long_id, "test.put", "b"),    /* the id itself is too long to store */
        pmt_req ("ok-2", "test.put", "c"),
    };
    int rc;
    pm_batch_item_t *items = s_batch (f->d, reqs, 4, &rc);
    assert_int_equal (rc, PM_OK);
    assert_int_equal (items[0].reply->status, PM__V1__STATUS__OK);
    assert_int_equal (items[1].reply->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (items[1].reply->message, "key"));
    assert_int_equal (items[2].reply->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (items[2].reply->message, "id: 299 bytes"));
    assert_int_equal (items[3].reply->status, PM__V1__STATUS__OK);
    free (items);
    assert_int_equal (pm_daemon_last_seq (f->d), 2); /* the two good ones, seqs contiguous */
    char *b = pmt_kv (f->d, "b");
    assert_null (b);
    for (int i = 0; i < 4; i++)
        pmt_req_free (reqs[i]);
}

/* Handlers share the batch's transaction: scans one leaves open are closed
 * when it returns, so a batch of many is no limit. */
static void
test_scans_left_open_do_not_add_up (void **state)
{
    fx_t *f = *state;
    enum { N = 64 };
    Pm__V1__Request *reqs[N];
    pm_batch_item_t items[N];
    for (int i = 0; i < N; i++) {
        char id[16], actor[16];
        snprintf (id, sizeof id, "scan-%d", i);
        snprintf (actor, sizeof actor, "s%02d", i);
        reqs[i] = pmt_req (id, "test.scan", actor);
        items[i] = (pm_batch_item_t) { reqs[i], NULL, NULL };
    }
    assert_int_equal (pm_daemon_apply (f->d, items, N), PM_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal (items[i].reply->status, PM__V1__STATUS__OK);
        pmt_req_free (reqs[i]);
    }
    char *v = pmt_kv (f->d, "s63");
    assert_string_equal (v, "scanned");
    free (v);
}

static void
test_second_instance_refused (void **state)
{
    fx_t *f = *state;
    char *text = pmt_config_text (f->dir, ""), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    assert_non_null (cfg);
    struct ev_loop *loop = ev_loop_new (0);
    pmt_log_start ();
    pm_daemon_t *twin = pm_daemon_new (&pmt_pub_spec, cfg, loop);
    bool refused = pmt_log_has ("pub is already running (pid ");
    pmt_log_stop ();
    ev_loop_destroy (loop);
    assert_null (twin);
    assert_true (refused); /* refused for the lock, not for any other reason */
}

/* --- in-process writes (pm_daemon_write) and the committed hook --------------- */

typedef struct {
    int committed;  /* times the spec's committed hook ran */
} s_app_t;

static void *
s_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    return calloc (1, sizeof (s_app_t));
}

static void
s_committed (void *app)
{
    ((s_app_t *) app)->committed++;
}

static pm_daemon_spec_t s_hooked; /* pub, with an app and the committed hook */

typedef struct {
    const char *key;
    bool fail;     /* write, emit, then refuse */
    int done;      /* times done was called */
    int status;    /* the status done got */
} s_write_arg_t;

static int
s_write_fn (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out)
{
    s_write_arg_t *w = arg;
    pm_txn_put (txn, PMT_KV, w->key, strlen (w->key), "written", 7);
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = "test.written";
    ev.unit_id = (char *) w->key;
    pm_emit (out, txn, &ev);
    if (w->fail)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "%s refused after writing", w->key);
    return PM__V1__STATUS__OK;
}

static void
s_write_done (int status, void *arg)
{
    s_write_arg_t *w = arg;
    w->done++;
    w->status = status;
}

static int
s_setup_hooked (void **state)
{
    s_hooked = pmt_pub_spec;
    s_hooked.app_new = s_app_new;
    s_hooked.app_destroy = free;
    s_hooked.committed = s_committed;
    fx_t *f = calloc (1, sizeof *f);
    f->dir = pmt_tmpdir ();
    f->loop = ev_loop_new (0);
    f->d = pmt_daemon (&s_hooked, f->dir, "", f->loop);
    *state = f;
    return 0;
}

static void
test_write_is_applied_by_the_loop_then_done (void **state)
{
    fx_t *f = *state;
    s_app_t *app = pm_daemon_app (f->d);
    s_write_arg_t ok = { "w-ok", false, 0, -1 }, bad = { "w-bad", true, 0, -1 };
    pm_daemon_write (f->d, s_write_fn, s_write_done, &ok);
    pm_daemon_write (f->d, s_write_fn, s_write_done, &bad);
    assert_int_equal (pm_daemon_writes_queued (f->d), 2);
    /* queued, not applied: nothing is durable and nobody was told */
    assert_null (pmt_kv (f->d, "w-ok"));
    assert_int_equal (ok.done, 0);
    assert_int_equal (app->committed, 0);

    ev_run (f->loop, EVRUN_NOWAIT); /* the loop was woken for them */

    assert_int_equal (pm_daemon_writes_queued (f->d), 0);
    char *v = pmt_kv (f->d, "w-ok");
    assert_non_null (v);
    assert_string_equal (v, "written");
    free (v);
    assert_int_equal (ok.done, 1);
    assert_int_equal (ok.status, PM__V1__STATUS__OK);
    /* the refused write was undone alone, its event too */
    assert_null (pmt_kv (f->d, "w-bad"));
    assert_int_equal (bad.done, 1);
    assert_int_equal (bad.status, PM__V1__STATUS__CONFLICT);
    assert_int_equal (pm_daemon_last_seq (f->d), 1);
    assert_int_equal (s_outbox_count (f->d), 1);
    /* one batch, one committed call, after the done callbacks */
    assert_int_equal (app->committed, 1);
    pm_metric_t *m = pm_metric (pm_daemon_metrics (f->d), PM_HISTOGRAM, "pm_batch_messages", NULL, NULL);
    assert_int_equal (pm_metric_count (m), 1);
}

static void
test_apply_calls_committed_and_leaves_writes_queued (void **state)
{
    fx_t *f = *state;
    s_app_t *app = pm_daemon_app (f->d);
    s_write_arg_t w = { "w-later", false, 0, -1 };
    pm_daemon_write (f->d, s_write_fn, s_write_done, &w);
    Pm__V1__Request *put = pmt_req ("r1", "test.put", "k1");
    assert_int_equal (pmt_apply (f->d, put)->status, PM__V1__STATUS__OK);
    pmt_req_free (put);
    assert_int_equal (app->committed, 1);
    /* pm_daemon_apply is the batch of the items it is given: the write waits for the loop */
    assert_int_equal (pm_daemon_writes_queued (f->d), 1);
    assert_null (pmt_kv (f->d, "w-later"));
    /* a read changes nothing: no committed call */
    Pm__V1__Request *get = pmt_req ("", "test.get", "k1");
    pmt_apply (f->d, get);
    pmt_req_free (get);
    assert_int_equal (app->committed, 1);
    ev_run (f->loop, EVRUN_NOWAIT);
    assert_int_equal (w.done, 1);
    assert_int_equal (app->committed, 2);
}

static void
test_queued_writes_dropped_at_destroy (void **state)
{
    fx_t *f = *state;
    s_write_arg_t w = { "w-never", false, 0, -1 };
    pm_daemon_write (f->d, s_write_fn, s_write_done, &w);
    pm_daemon_destroy (&f->d);
    ev_run (f->loop, EVRUN_NOWAIT); /* the wake-up fed for it is gone with the daemon */
    assert_int_equal (w.done, 0);
    f->d = pmt_daemon (&s_hooked, f->dir, "", f->loop);
    assert_null (pmt_kv (f->d, "w-never"));
}

/* A disk that fills, played by RLIMIT_FSIZE (a write past it fails with
 * EFBIG, and raises SIGXFSZ, which by default ends the process): the batch
 * is answered UNAVAILABLE and applies nothing, the process goes on, and
 * once there is room the same requests apply, once. */
static void
test_file_size_limit_is_an_error_reply_not_a_crash (void **state)
{
    fx_t *f = *state;
    enum { N = 40 }; /* 40 x 16 KiB: far past the limit below */
    Pm__V1__Request *reqs[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf (id, sizeof id, "full%03d", i);
        reqs[i] = pmt_req (id, "test.big", id);
    }
    char *mdb = pm_xasprintf ("%s/pub/data.mdb", f->dir);
    struct stat st;
    assert_int_equal (stat (mdb, &st), 0);
    struct rlimit was, low;
    assert_int_equal (getrlimit (RLIMIT_FSIZE, &was), 0);
    low = was;
    low.rlim_cur = (rlim_t) st.st_size; /* not a byte more */
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &low), 0);
    int rc;
    pm_batch_item_t *items = s_batch (f->d, reqs, N, &rc);
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &was), 0);
    assert_int_not_equal (rc, PM_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal (items[i].reply->status, PM__V1__STATUS__UNAVAILABLE);
        assert_non_null (strstr (items[i].reply->message, "nothing was applied, retry with the same id"));
    }
    free (items);
    assert_null (pmt_kv (f->d, "full000"));
    /* room again: the same requests apply */
    items = s_batch (f->d, reqs, N, &rc);
    assert_int_equal (rc, PM_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal (items[i].reply->status, PM__V1__STATUS__OK);
    free (items);
    for (int i = 0; i < N; i++) {
        char *v = pmt_kv (f->d, reqs[i]->id);
        assert_non_null (v);
        assert_int_equal (strlen (v), 16384);
        free (v);
    }
    free (mdb);
    for (int i = 0; i < N; i++)
        pmt_req_free (reqs[i]);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_batch_applies_all_in_one_commit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_repeated_id_is_applied_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_prometheus_text_has_fresh_gauges, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_command_rolls_back_alone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_requests_change_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_map_grows_when_full, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_file_size_limit_is_an_error_reply_not_a_crash, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_state_survives_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_key_refused_by_store_fails_alone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_scans_left_open_do_not_add_up, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_second_instance_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_write_is_applied_by_the_loop_then_done, s_setup_hooked, s_teardown),
        cmocka_unit_test_setup_teardown (test_apply_calls_committed_and_leaves_writes_queued, s_setup_hooked,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_queued_writes_dropped_at_destroy, s_setup_hooked, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
