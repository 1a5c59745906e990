/* test_curve - CurveZMQ between daemons: a consumer with an allowed key
 * follows its upstream over CURVE; a client whose key is not on the
 * allow-list, or that speaks plain ZMTP, gets nothing and the refusal is
 * counted. Runs pub and sub in this process on their own loops. */
#include "support.h"
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/curve.h"
#include "pm/err.h"
#include "pm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    char *dir;
    struct ev_loop *lpub, *lsub;
    pm_daemon_t *pub, *sub;
    char pub_key[41], sub_key[41], intruder_key[41];
    char extra[2048];
} fx_t;

static void
s_turn (fx_t *f)
{
    ev_run (f->lpub, EVRUN_NOWAIT);
    if (f->sub)
        ev_run (f->lsub, EVRUN_NOWAIT);
    struct timespec ts = { 0, 200000 };
    nanosleep (&ts, NULL); /* yield between polls */
}

#define SPIN_UNTIL(f, cond) \
    do { \
        int64_t deadline_ = pm_mono_ms () + 20000; \
        while (!(cond)) { \
            assert_true (pm_mono_ms () < deadline_); \
            s_turn (f); \
        } \
    } while (0)

static char *
s_path (fx_t *f, const char *name)
{
    static char buf[4][600];
    static int i;
    i = (i + 1) % 4;
    snprintf (buf[i], sizeof buf[i], "%s/%s", f->dir, name);
    return buf[i];
}

static int
s_setup (void **state)
{
    fx_t *f = calloc (1, sizeof *f);
    f->dir = pmt_tmpdir ();
    assert_int_equal (pm_curve_create (s_path (f, "pub.key"), "pub", f->pub_key), PM_OK);
    assert_int_equal (pm_curve_create (s_path (f, "sub.key"), "sub", f->sub_key), PM_OK);
    assert_int_equal (pm_curve_create (s_path (f, "intruder.key"), "intruder", f->intruder_key), PM_OK);
    /* creating again never overwrites a key */
    char again[41];
    assert_int_equal (pm_curve_create (s_path (f, "pub.key"), "pub", again), PM_EEXIST);
    FILE *a = fopen (s_path (f, "allow"), "w");
    fprintf (a, "# who may talk to pub\n%s  # sub\n%s # pub itself\n", f->sub_key, f->pub_key);
    fclose (a);
    snprintf (f->extra, sizeof f->extra,
              "curve_allow = %s\n[pub]\ncurve_secret_file = %s\ncurve_public_key = %s\n[sub]\ncurve_secret_file = %s\n",
              s_path (f, "allow"), s_path (f, "pub.key"), f->pub_key, s_path (f, "sub.key"));
    f->lpub = ev_loop_new (0);
    f->lsub = ev_loop_new (0);
    f->pub = pmt_daemon (&pmt_pub_spec, f->dir, f->extra, f->lpub);
    assert_int_equal (pm_daemon_bind (f->pub), PM_OK);
    pm_daemon_run (f->pub);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *f = *state;
    pm_daemon_destroy (&f->sub);
    pm_daemon_destroy (&f->pub);
    ev_loop_destroy (f->lpub);
    ev_loop_destroy (f->lsub);
    pmt_rmdir (f->dir);
    free (f);
    return 0;
}

static void
s_put (fx_t *f, const char *id, const char *actor)
{
    Pm__V1__Request *r = pmt_req (id, "test.put", actor);
    assert_int_equal (pmt_apply (f->pub, r)->status, PM__V1__STATUS__OK);
    pmt_req_free (r);
}

static void
test_allowed_consumer_follows_over_curve (void **state)
{
    fx_t *f = *state;
    s_put (f, "a", "k1");
    f->sub = pmt_daemon (&pmt_sub_spec, f->dir, f->extra, f->lsub);
    assert_int_equal (pm_daemon_bind (f->sub), PM_OK);
    pm_daemon_run (f->sub);
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 1);
    s_put (f, "b", "k2");
    SPIN_UNTIL (f, pm_daemon_applied (f->sub, "pub") == 2);
    assert_true (pmt_metric (f->pub, "pm_curve_clients_admitted", "") >= 1);
    assert_int_equal (pmt_metric (f->pub, "pm_curve_clients_refused", ""), 0);
}

/* A DEALER to pub's ROUTER; curve_key NULL: plain ZMTP. */
static void *
s_dealer (fx_t *f, void *ctx, const char *key_file)
{
    void *s = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    if (key_file) {
        char pub[41], sec[41];
        const char *why;
        assert_int_equal (pm_curve_load (key_file, pub, sec, &why), PM_OK);
        zmq_setsockopt (s, ZMQ_CURVE_SERVERKEY, f->pub_key, 40);
        zmq_setsockopt (s, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt (s, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
    char ep[600];
    snprintf (ep, sizeof ep, "ipc://%s/pub.cmd", f->dir);
    zmq_connect (s, ep);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = "p";
    req.method = "ops.ping";
    uint8_t buf[64];
    size_t len = pm__v1__request__pack (&req, buf);
    zmq_send (s, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (s, buf, len, ZMQ_DONTWAIT);
    return s;
}

static bool
s_answered (void *s)
{
    zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
    return zmq_poll (&it, 1, 0) == 1;
}

static void
test_strangers_get_nothing (void **state)
{
    fx_t *f = *state;
    void *ctx = zmq_ctx_new ();
    void *intruder = s_dealer (f, ctx, s_path (f, "intruder.key"));
    void *plain = s_dealer (f, ctx, NULL);
    void *friend = s_dealer (f, ctx, s_path (f, "sub.key"));
    SPIN_UNTIL (f, s_answered (friend)); /* the allowed key is answered ... */
    SPIN_UNTIL (f, pmt_metric (f->pub, "pm_curve_clients_refused", "") >= 1); /* ... the stranger refused */
    for (int i = 0; i < 50; i++)
        s_turn (f);
    assert_false (s_answered (intruder));
    assert_false (s_answered (plain)); /* plain ZMTP never reaches a CURVE server */
    zmq_close (intruder);
    zmq_close (plain);
    zmq_close (friend);
    zmq_ctx_term (ctx);
}

static void
test_client_for_a_daemon_speaks_curve (void **state)
{
    fx_t *f = *state;
    char *text = pmt_config_text (f->dir, f->extra), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    assert_non_null (cfg);
    pm_client_t *c = pm_client_new_daemon (NULL, cfg, "pub", s_path (f, "sub.key"));
    assert_non_null (c);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = "ping";
    req.method = "ops.ping";
    assert_int_equal (pm_client_send (c, &req), PM_OK);
    Pm__V1__Reply *r = NULL;
    SPIN_UNTIL (f, pm_client_recv (c, 0, &r) == PM_OK);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    pm__v1__reply__free_unpacked (r, NULL);
    pm_client_destroy (&c);
    /* without a key pair of its own, a client of a CURVE daemon is refused at once, with the reason */
    pmt_log_start ();
    assert_null (pm_client_new_daemon (NULL, cfg, "pub", NULL));
    assert_true (pmt_log_has ("no key pair of its own"));
    pmt_log_stop ();
    pm_config_destroy (&cfg);
}

int
main (void)
{
    pm_log_init ("test_curve", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_allowed_consumer_follows_over_curve, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_strangers_get_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_client_for_a_daemon_speaks_curve, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
