/* test_gateway_fwd - calls from the gateway's loop to a daemon's ROUTER (the
 * test plays intake on its endpoint): a daemon that answers is answered; a
 * daemon that is down is answered UNAVAILABLE, saying so, without waiting
 * for call_timeout_ms (a call in flight when it died, and a new one); when
 * it is back, calls go through again. */
#define _GNU_SOURCE
#include "support.h"

#include "gateway.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_CALL_TIMEOUT_MS 60000 /* far beyond the test's deadlines: a timeout is not what ends a call here */

typedef struct {
    int n;
    int status; /* -1: timed out (NULL reply) */
    char message[256];
} s_got_t;

typedef struct {
    pmt_fixture_t *f;
    gw_t *gw;
    void *zctx;
    void *router; /* the test's intake, or NULL while it is down */
    const char *endpoint;
    int answered;
} s_t;

static void
s_got_cb (void *arg, const Pm__V1__Reply *r)
{
    s_got_t *g = arg;
    g->n++;
    g->status = r ? (int) r->status : -1;
    snprintf (g->message, sizeof g->message, "%s", r && r->message ? r->message : "(no answer)");
}

static void
s_up (s_t *t)
{
    t->router = zmq_socket (t->zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt (t->router, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_bind (t->router, t->endpoint), 0);
}

static void
s_down (s_t *t)
{
    zmq_close (t->router);
    t->router = NULL;
}

/* The test's intake answers every request OK. */
static void
s_serve (s_t *t)
{
    while (t->router) {
        zmq_msg_t part[3];
        int n = 0, more = 1;
        for (; more && n < 3; n++) {
            zmq_msg_init (&part[n]);
            if (zmq_msg_recv (&part[n], t->router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&part[n]);
                return;
            }
            more = zmq_msg_more (&part[n]);
        }
        assert_int_equal (n, 3); /* [identity][empty][Request] */
        Pm__V1__Request *req = pm__v1__request__unpack (NULL, zmq_msg_size (&part[2]), zmq_msg_data (&part[2]));
        assert_non_null (req);
        Pm__V1__Reply rep = PM__V1__REPLY__INIT;
        rep.id = req->id;
        rep.status = PM__V1__STATUS__OK;
        rep.message = "intake is here";
        size_t len = pm__v1__reply__get_packed_size (&rep);
        void *buf = malloc (len);
        pm__v1__reply__pack (&rep, buf);
        zmq_send (t->router, zmq_msg_data (&part[0]), zmq_msg_size (&part[0]), ZMQ_SNDMORE);
        zmq_send (t->router, "", 0, ZMQ_SNDMORE);
        zmq_send (t->router, buf, len, 0);
        free (buf);
        pm__v1__request__free_unpacked (req, NULL);
        for (int i = 0; i < n; i++)
            zmq_msg_close (&part[i]);
        t->answered++;
    }
}

static void
s_call (s_t *t, s_got_t *g)
{
    memset (g, 0, sizeof *g);
    Pm__V1__OpsPingRequest b = PM__V1__OPS_PING_REQUEST__INIT;
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    char id[27];
    gw_request_id (id);
    req.id = id;
    req.method = "ops.ping";
    req.body_case = PM__V1__REQUEST__BODY_OPS_PING;
    req.ops_ping = &b;
    assert_int_equal (gw_fwd_call (t->gw->fwd, "intake", &req, S_CALL_TIMEOUT_MS, s_got_cb, g), PM_OK);
}

/* Runs the gateway's loop (and the test's intake) until g is answered. */
static void
s_wait (s_t *t, s_got_t *g)
{
    for (int i = 0; i < 30000 && !g->n; i++) {
        ev_run (t->f->loop, EVRUN_NOWAIT);
        s_serve (t);
        usleep (1000);
    }
    assert_int_equal (g->n, 1);
}

static double
s_metric (s_t *t, const char *name)
{
    return pmt_metric (t->f->d, name, "");
}

static void
test_a_daemon_down_is_answered_at_once (void **state)
{
    (void) state;
    s_t t = { 0 };
    t.f = pmt_fixture_new (&gateway_spec, "[gateway]\nlisten =\n");
    t.gw = pm_daemon_app (t.f->d);
    t.zctx = zmq_ctx_new ();
    t.endpoint = pm_config_get (t.gw->cfg, "intake", "command", NULL);
    assert_non_null (t.endpoint);
    s_up (&t);

    s_got_t g;
    s_call (&t, &g);
    s_wait (&t, &g);
    assert_int_equal (g.status, PM__V1__STATUS__OK);
    assert_string_equal (g.message, "intake is here");

    /* intake dies with a call in flight: the call is answered UNAVAILABLE once
     * it is clearly down, not after the call's timeout */
    s_got_t inflight;
    s_call (&t, &inflight);
    s_down (&t);
    s_wait (&t, &inflight);
    assert_int_equal (inflight.status, PM__V1__STATUS__UNAVAILABLE);
    assert_non_null (strstr (inflight.message, "intake is not running or cannot be reached"));
    assert_non_null (strstr (inflight.message, "try again later with the same id"));
    /* a new call is not even sent: answered at the next sweep */
    s_call (&t, &g);
    s_wait (&t, &g);
    assert_int_equal (g.status, PM__V1__STATUS__UNAVAILABLE);
    assert_non_null (strstr (g.message, "nothing was sent: try again later"));
    assert_int_equal (t.answered, 1);
    assert_int_equal (s_metric (&t, "gateway_calls_down_total"), 2);
    assert_int_equal (s_metric (&t, "gateway_call_timeouts_total"), 0);

    /* intake is back: calls go through again */
    s_up (&t);
    int64_t give_up = pm_mono_ms () + 30000; /* each refusal is at once: bound the wait by time, not by tries */
    for (;;) {
        s_call (&t, &g);
        s_wait (&t, &g);
        if (g.status == PM__V1__STATUS__OK)
            break;
        assert_int_equal (g.status, PM__V1__STATUS__UNAVAILABLE); /* not reconnected yet */
        assert_true (pm_mono_ms () < give_up);
    }
    assert_string_equal (g.message, "intake is here");

    s_down (&t);
    pmt_fixture_destroy (&t.f);
    zmq_ctx_term (t.zctx);
}

int
main (void)
{
    pm_log_init ("test_gateway_fwd", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_daemon_down_is_answered_at_once),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
