/* rpc: a real daemon process (forked, its own loop and signal handling)
 * answered through pm_client, as pmctl and integrations talk to it. */
#include "support.h"
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    char *dir;
    pid_t pid;
    char endpoint[512];
    pm_client_t *client;
} fx_t;

static int
s_setup (void **state)
{
    fx_t *f = calloc (1, sizeof *f);
    f->dir = pmt_tmpdir ();
    snprintf (f->endpoint, sizeof f->endpoint, "ipc://%s/pub.cmd", f->dir);
    f->pid = fork ();
    if (f->pid == 0) {
        pm_daemon_t *d = pmt_daemon (&pmt_pub_spec, f->dir, "max_request_bytes = 2048", NULL);
        if (pm_daemon_bind (d) != PM_OK)
            _exit (3);
        int rc = pm_daemon_run (d);
        pm_daemon_destroy (&d);
        _exit (rc);
    }
    f->client = pm_client_new (NULL, f->endpoint);
    /* ready when it answers a ping */
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = "ping";
    req.method = "ops.ping";
    Pm__V1__Reply *r = NULL;
    assert_int_equal (pm_client_call (f->client, &req, 10000, 100, &r), PM_OK);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    assert_string_equal (r->ops_ping->daemon, "pub");
    pm__v1__reply__free_unpacked (r, NULL);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *f = *state;
    pm_client_destroy (&f->client);
    if (f->pid > 0) {
        kill (f->pid, SIGTERM);
        int st = 0;
        waitpid (f->pid, &st, 0);
        /* a clean shutdown on SIGTERM: exit code 0 */
        assert_true (WIFEXITED (st));
        assert_int_equal (WEXITSTATUS (st), 0);
    }
    pmt_rmdir (f->dir);
    free (f);
    return 0;
}

static Pm__V1__Reply *
s_call (fx_t *f, const char *id, const char *method, const char *actor)
{
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = (char *) id;
    req.method = (char *) method;
    req.actor = (char *) actor;
    Pm__V1__Reply *r = NULL;
    assert_int_equal (pm_client_call (f->client, &req, 10000, 2000, &r), PM_OK);
    return r;
}

/* Sends raw frames on a fresh DEALER and returns the decoded reply. */
static Pm__V1__Reply *
s_raw (fx_t *f, const void *const *frames, const size_t *lens, int n)
{
    void *ctx = zmq_ctx_new ();
    void *s = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (s, f->endpoint);
    for (int i = 0; i < n; i++)
        zmq_send (s, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
    zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 10000), 1);
    zmq_msg_t m;
    zmq_msg_init (&m);
    Pm__V1__Reply *r = NULL;
    while (zmq_msg_recv (&m, s, 0) >= 0) { /* the last frame is the Reply */
        if (!zmq_msg_more (&m)) {
            r = pm__v1__reply__unpack (NULL, zmq_msg_size (&m), zmq_msg_data (&m));
            break;
        }
    }
    zmq_msg_close (&m);
    zmq_close (s);
    zmq_ctx_term (ctx);
    assert_non_null (r);
    return r;
}

static void
test_repeated_request_id_applied_once (void **state)
{
    fx_t *f = *state;
    Pm__V1__Reply *a = s_call (f, "req-1", "test.put", "unit-1");
    Pm__V1__Reply *b = s_call (f, "req-1", "test.put", "unit-1");
    assert_int_equal (a->status, PM__V1__STATUS__OK);
    assert_string_equal (a->message, b->message);
    pm__v1__reply__free_unpacked (a, NULL);
    pm__v1__reply__free_unpacked (b, NULL);
    Pm__V1__Reply *p = s_call (f, "p", "ops.ping", "t");
    assert_int_equal (p->ops_ping->last_seq, 1); /* one event: applied once */
    pm__v1__reply__free_unpacked (p, NULL);
}

static void
test_replies_matched_by_id (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request early = PM__V1__REQUEST__INIT;
    early.id = "early";
    early.method = "test.put";
    early.actor = "e";
    assert_int_equal (pm_client_send (f->client, &early), PM_OK); /* its reply arrives first */
    Pm__V1__Reply *r = s_call (f, "later", "test.put", "l");
    assert_string_equal (r->id, "later");
    assert_string_equal (r->message, "put l");
    pm__v1__reply__free_unpacked (r, NULL);
}

static void
test_no_daemon_times_out (void **state)
{
    fx_t *f = *state;
    char ep[600];
    snprintf (ep, sizeof ep, "ipc://%s/nobody.cmd", f->dir);
    pm_client_t *c = pm_client_new (NULL, ep);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = "x";
    req.method = "ops.ping";
    Pm__V1__Reply *r = NULL;
    assert_int_equal (pm_client_call (c, &req, 300, 100, &r), PM_ETIMEDOUT);
    assert_null (r);
    pm_client_destroy (&c);
}

static void
test_bad_frames_get_clear_errors (void **state)
{
    fx_t *f = *state;
    /* not a protobuf */
    const void *fr1[] = { "", "\xff\xff\xff" };
    size_t l1[] = { 0, 3 };
    Pm__V1__Reply *r = s_raw (f, fr1, l1, 2);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "pm.v1.Request"));
    pm__v1__reply__free_unpacked (r, NULL);
    /* wrong multipart shape */
    const void *fr2[] = { "", "a", "b", "c" };
    size_t l2[] = { 0, 1, 1, 1 };
    r = s_raw (f, fr2, l2, 4);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "shape"));
    pm__v1__reply__free_unpacked (r, NULL);
    /* oversized: the limit in this config is 2048 bytes */
    static char big[4096];
    memset (big, 'x', sizeof big);
    const void *fr3[] = { "", big };
    size_t l3[] = { 0, sizeof big };
    r = s_raw (f, fr3, l3, 2);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "2048"));
    pm__v1__reply__free_unpacked (r, NULL);
    /* still serving, nothing applied */
    Pm__V1__Reply *p = s_call (f, "p", "ops.ping", "t");
    assert_int_equal (p->ops_ping->last_seq, 0);
    pm__v1__reply__free_unpacked (p, NULL);
    Pm__V1__Reply *m = s_call (f, "m", "ops.metrics", "t");
    bool counted = false;
    for (size_t i = 0; i < m->ops_metrics->n_metrics; i++)
        if (strcmp (m->ops_metrics->metrics[i]->name, "pm_bad_frames_total") == 0)
            counted = m->ops_metrics->metrics[i]->value == 3;
    assert_true (counted);
    assert_non_null (strstr (m->ops_metrics->prometheus, "pm_bad_frames_total{daemon=\"pub\"} 3"));
    pm__v1__reply__free_unpacked (m, NULL);
}

static double
s_metric (fx_t *f, const char *name, const char *labels)
{
    Pm__V1__Reply *m = s_call (f, "m", "ops.metrics", "t");
    double v = -1;
    for (size_t i = 0; i < m->ops_metrics->n_metrics; i++)
        if (strcmp (m->ops_metrics->metrics[i]->name, name) == 0
            && strcmp (m->ops_metrics->metrics[i]->labels, labels) == 0)
            v = m->ops_metrics->metrics[i]->value;
    pm__v1__reply__free_unpacked (m, NULL);
    return v;
}

static void
test_unknown_methods_and_missing_ids_are_counted (void **state)
{
    fx_t *f = *state;
    double bad0 = s_metric (f, "pm_bad_frames_total", "");
    Pm__V1__Reply *r = s_call (f, "u1", "test.nosuch", "t");
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "unknown method 'test.nosuch'"));
    assert_non_null (strstr (r->message, "test.put")); /* it says what it answers */
    pm__v1__reply__free_unpacked (r, NULL);
    r = s_call (f, "", "test.put", "t");
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "idempotency key"));
    pm__v1__reply__free_unpacked (r, NULL);
    assert_true (s_metric (f, "pm_bad_frames_total", "") == bad0 + 2);
    assert_true (s_metric (f, "pm_requests_total", "method=\"(unknown)\",status=\"INVALID\"") >= 2);
}

/* A frame over 4 x max_request_bytes is dropped by libzmq with its
 * connection: no reply is possible, but the drop is counted. */
static void
test_oversized_frame_drops_the_connection_and_is_counted (void **state)
{
    fx_t *f = *state;
    double before = s_metric (f, "pm_connections_dropped_total", "");
    void *ctx = zmq_ctx_new ();
    void *s = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (s, f->endpoint);
    static char huge[4 * 2048 + 100];
    zmq_send (s, "", 0, ZMQ_SNDMORE);
    zmq_send (s, huge, sizeof huge, 0);
    /* our side stays open: only the daemon's side can have closed it */
    int64_t deadline = pm_mono_ms () + 10000;
    while (s_metric (f, "pm_connections_dropped_total", "") <= before) {
        assert_true (pm_mono_ms () < deadline);
        zmq_pollitem_t item = { s, 0, ZMQ_POLLIN, 0 };
        assert_int_equal (zmq_poll (&item, 1, 20), 0); /* and no reply ever comes */
    }
    zmq_close (s);
    zmq_ctx_term (ctx);
    Pm__V1__Reply *p = s_call (f, "p2", "ops.ping", "t"); /* still serving */
    assert_int_equal (p->status, PM__V1__STATUS__OK);
    pm__v1__reply__free_unpacked (p, NULL);
}

static void
test_manual_clock (void **state)
{
    fx_t *f = *state;
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    Pm__V1__OpsClockRequest body = PM__V1__OPS_CLOCK_REQUEST__INIT;
    req.id = "clock-1";
    req.method = "ops.clock";
    body.set_to = "2026-12-01T09:00:00Z";
    pm_body_set (&req.base, "ops.clock", &body.base);
    Pm__V1__Reply *r = NULL;
    assert_int_equal (pm_client_call (f->client, &req, 10000, 2000, &r), PM_OK);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    assert_string_equal (r->ops_clock->now, "2026-12-01T09:00:00.000Z");
    pm__v1__reply__free_unpacked (r, NULL);
    req.id = "clock-2";
    body.set_to = "";
    body.advance_by = "3d";
    assert_int_equal (pm_client_call (f->client, &req, 10000, 2000, &r), PM_OK);
    assert_string_equal (r->ops_clock->now, "2026-12-04T09:00:00.000Z");
    pm__v1__reply__free_unpacked (r, NULL);
    req.id = "clock-3";
    body.advance_by = "soon";
    assert_int_equal (pm_client_call (f->client, &req, 10000, 2000, &r), PM_OK);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "soon"));
    pm__v1__reply__free_unpacked (r, NULL);
    Pm__V1__Reply *p = s_call (f, "p", "ops.ping", "t"); /* the daemon's own clock moved */
    assert_int_equal (p->ops_ping->now_ms, 1796374800000LL);
    pm__v1__reply__free_unpacked (p, NULL);
}

/* Mutated frames (bit flips, truncations, garbage) never crash the daemon,
 * each gets exactly one reply, and the daemon keeps serving. */
static void
test_mutated_frames_never_crash (void **state)
{
    fx_t *f = *state;
    enum { N = 3000 };
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.method = "test.put";
    req.actor = "fuzz";
    unsigned seed = 12345;
    void *sock = pm_client_socket (f->client);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf (id, sizeof id, "fuzz-%05d", i);
        req.id = id;
        uint8_t buf[256];
        size_t len = pm__v1__request__pack (&req, buf);
        switch (i % 4) {
        case 0: /* flip a few bits */
            for (int k = 0; k < 3; k++)
                buf[rand_r (&seed) % len] ^= (uint8_t) (1u << (rand_r (&seed) % 8));
            break;
        case 1: /* cut short */
            len = (size_t) rand_r (&seed) % len;
            break;
        case 2: /* garbage */
            len = 1 + (size_t) rand_r (&seed) % 200;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t) rand_r (&seed);
            break;
        default: /* intact */
            break;
        }
        assert_int_equal (zmq_send (sock, "", 0, ZMQ_SNDMORE), 0);
        assert_true (zmq_send (sock, buf, len, 0) >= 0);
    }
    int replies = 0;
    Pm__V1__Reply *r = NULL;
    while (replies < N && pm_client_recv (f->client, 10000, &r) == PM_OK) {
        replies++;
        pm__v1__reply__free_unpacked (r, NULL);
    }
    assert_int_equal (replies, N);
    Pm__V1__Reply *p = s_call (f, "after-fuzz", "ops.ping", "t");
    assert_int_equal (p->status, PM__V1__STATUS__OK);
    assert_true (p->ops_ping->last_seq >= N / 4); /* the intact ones were applied */
    pm__v1__reply__free_unpacked (p, NULL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_repeated_request_id_applied_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replies_matched_by_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_daemon_times_out, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_frames_get_clear_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_methods_and_missing_ids_are_counted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_oversized_frame_drops_the_connection_and_is_counted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_manual_clock, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_mutated_frames_never_crash, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
