/* test_client - requests in flight (pm_inflight_t) against fake daemons: a
 * ROUTER in a thread of this process that loses the first copy of some
 * requests, never answers others, answers out of order and mixes in replies
 * that match nothing. What must hold: every request ends exactly once, with
 * its own reply (matched by id and client) or given up at its deadline; a
 * lost request is resent with the same id. */
#include "support.h"

#include "pm/client.h"
#include "pm/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_RETRY_MS 20       /* resend quickly: the fake loses requests on purpose */
#define S_DEADLINE_MS 20000 /* long enough never to be reached by a request that is answered */
#define S_MAX_IDS 64

/* A fake daemon: a ROUTER served by its own thread. Requests whose id starts
 * with "drop-" lose their first copy, "mute-" ones are never answered; the
 * others are answered, after `hold` different ids have come in (held replies
 * go out newest first), each reply preceded by one to an id nobody asked
 * for and by a frame that is not a Reply. */
typedef struct {
    const char *name;
    void *sock;
    int hold;
    atomic_bool stop;
    pthread_t thread;
    bool running;
    /* what it saw; read by the test after the thread ended */
    struct {
        char id[64];
        int copies;
    } seen[S_MAX_IDS];
    int nseen;
    int undecodable;
    /* replies held back: identity and packed reply */
    struct {
        zmq_msg_t who;
        void *buf;
        size_t len;
    } held[S_MAX_IDS];
    int nheld;
    bool released;
} s_fake_t;

typedef struct {
    void *zctx;
    s_fake_t a, b;
    pm_client_t *ca, *cb;
} fx_t;

/* Sends [who][empty][data] (who is copied). */
static void
s_fake_send (s_fake_t *fk, zmq_msg_t *who, const void *data, size_t len)
{
    zmq_msg_t w;
    zmq_msg_init (&w);
    zmq_msg_copy (&w, who);
    zmq_msg_send (&w, fk->sock, ZMQ_SNDMORE);
    zmq_send (fk->sock, "", 0, ZMQ_SNDMORE);
    zmq_send (fk->sock, data, len, 0);
}

/* A stray reply and a broken frame, then the real one. */
static void
s_fake_answer (s_fake_t *fk, zmq_msg_t *who, const void *buf, size_t len)
{
    Pm__V1__Reply stray = PM__V1__REPLY__INIT;
    stray.id = "nobody-asked";
    stray.message = "a reply to nothing in flight";
    uint8_t sbuf[128];
    s_fake_send (fk, who, sbuf, pm__v1__reply__pack (&stray, sbuf));
    s_fake_send (fk, who, "\xff\xff\xff", 3);
    s_fake_send (fk, who, buf, len);
}

/* Handles one [who][empty][Request]. */
static void
s_fake_on_request (s_fake_t *fk, zmq_msg_t *who, zmq_msg_t *body)
{
    Pm__V1__Request *req = pm__v1__request__unpack (NULL, zmq_msg_size (body), zmq_msg_data (body));
    if (!req) {
        fk->undecodable++;
        return;
    }
    int k = 0;
    while (k < fk->nseen && strcmp (fk->seen[k].id, req->id) != 0)
        k++;
    if (k == fk->nseen && fk->nseen < S_MAX_IDS)
        snprintf (fk->seen[fk->nseen++].id, sizeof fk->seen[0].id, "%s", req->id);
    int copies = ++fk->seen[k].copies;
    bool answer = !(strncmp (req->id, "mute-", 5) == 0 || (strncmp (req->id, "drop-", 5) == 0 && copies == 1));
    if (answer) {
        char text[160];
        snprintf (text, sizeof text, "%s: %s copy %d", fk->name, req->id, copies);
        Pm__V1__Reply rep = PM__V1__REPLY__INIT;
        rep.id = req->id;
        rep.message = text;
        size_t len = pm__v1__reply__get_packed_size (&rep);
        void *buf = malloc (len);
        pm__v1__reply__pack (&rep, buf);
        if (!fk->released && fk->nheld < S_MAX_IDS) {
            zmq_msg_init (&fk->held[fk->nheld].who);
            zmq_msg_copy (&fk->held[fk->nheld].who, who);
            fk->held[fk->nheld].buf = buf;
            fk->held[fk->nheld++].len = len;
        }
        else {
            s_fake_answer (fk, who, buf, len);
            free (buf);
        }
    }
    if (!fk->released && fk->nseen >= fk->hold) {
        fk->released = true;
        for (int i = fk->nheld - 1; i >= 0; i--) { /* newest first */
            s_fake_answer (fk, &fk->held[i].who, fk->held[i].buf, fk->held[i].len);
            zmq_msg_close (&fk->held[i].who);
            free (fk->held[i].buf);
        }
        fk->nheld = 0;
    }
    pm__v1__request__free_unpacked (req, NULL);
}

static void *
s_fake_run (void *arg)
{
    s_fake_t *fk = arg;
    zmq_pollitem_t item = { fk->sock, 0, ZMQ_POLLIN, 0 };
    while (!atomic_load (&fk->stop)) {
        if (zmq_poll (&item, 1, 20) <= 0) /* wakes to notice stop */
            continue;
        zmq_msg_t who, empty, body;
        zmq_msg_init (&who);
        zmq_msg_init (&empty);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&who, fk->sock, 0) >= 0 && zmq_msg_more (&who) && zmq_msg_recv (&empty, fk->sock, 0) >= 0
            && zmq_msg_more (&empty) && zmq_msg_recv (&body, fk->sock, 0) >= 0)
            s_fake_on_request (fk, &who, &body);
        zmq_msg_close (&who);
        zmq_msg_close (&empty);
        zmq_msg_close (&body);
    }
    return NULL;
}

static void
s_fake_start (fx_t *f, s_fake_t *fk, const char *name, const char *endpoint)
{
    fk->name = name;
    fk->hold = 1;
    fk->sock = zmq_socket (f->zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt (fk->sock, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_bind (fk->sock, endpoint), 0);
}

static void
s_fake_go (s_fake_t *fk)
{
    atomic_store (&fk->stop, false);
    assert_int_equal (pthread_create (&fk->thread, NULL, s_fake_run, fk), 0);
    fk->running = true;
}

/* Stops the thread; what it saw can be read from then on. */
static void
s_fake_end (s_fake_t *fk)
{
    if (!fk->running)
        return;
    atomic_store (&fk->stop, true);
    pthread_join (fk->thread, NULL);
    fk->running = false;
}

/* Frees replies still held (a test that failed early). */
static void
s_fake_free (s_fake_t *fk)
{
    for (int i = 0; i < fk->nheld; i++) {
        zmq_msg_close (&fk->held[i].who);
        free (fk->held[i].buf);
    }
    fk->nheld = 0;
    zmq_close (fk->sock);
}

/* How many copies of id the fake saw (0: none). */
static int
s_copies (const s_fake_t *fk, const char *id)
{
    for (int i = 0; i < fk->nseen; i++)
        if (strcmp (fk->seen[i].id, id) == 0)
            return fk->seen[i].copies;
    return 0;
}

static int
s_setup (void **state)
{
    fx_t *f = calloc (1, sizeof *f);
    f->zctx = zmq_ctx_new ();
    s_fake_start (f, &f->a, "a", "inproc://fake-a");
    s_fake_start (f, &f->b, "b", "inproc://fake-b");
    f->ca = pm_client_new (f->zctx, "inproc://fake-a");
    f->cb = pm_client_new (f->zctx, "inproc://fake-b");
    assert_non_null (f->ca);
    assert_non_null (f->cb);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *f = *state;
    s_fake_end (&f->a);
    s_fake_end (&f->b);
    pm_client_destroy (&f->ca);
    pm_client_destroy (&f->cb);
    s_fake_free (&f->a);
    s_fake_free (&f->b);
    zmq_ctx_term (f->zctx);
    free (f);
    return 0;
}

/* A request the test keeps track of. */
typedef struct {
    char id[32];
    int ended;             /* times it ended: must be exactly once */
    char message[160];     /* its reply's message */
} s_call_t;

static void
s_request (Pm__V1__Request *req, const char *id)
{
    pm__v1__request__init (req);
    req->id = (char *) id;
    req->method = "ops.ping";
}

/* Eight requests on one DEALER; the fake loses the first copy of four and
 * answers the others newest first. Each ends once with its own reply; the
 * lost ones were resent under the same id. */
static void
test_resend_same_id_and_match_by_id (void **state)
{
    fx_t *f = *state;
    enum { N = 8 };
    s_call_t calls[N];
    memset (calls, 0, sizeof calls);
    f->a.hold = N; /* every first copy is in before any answer goes out */
    s_fake_go (&f->a);
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    for (int i = 0; i < N; i++) {
        snprintf (calls[i].id, sizeof calls[i].id, "%s-%d", i % 2 ? "drop" : "keep", i);
        Pm__V1__Request req;
        s_request (&req, calls[i].id);
        assert_int_equal (pm_inflight_add (fl, f->ca, &req, S_DEADLINE_MS, &calls[i]), PM_OK);
    }
    assert_int_equal (pm_inflight_size (fl), N);
    s_call_t *order[N];
    for (int k = 0; k < N; k++) {
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        assert_int_equal (pm_inflight_wait (fl, -1, &r, &user), PM_OK);
        assert_non_null (r); /* answered, not given up */
        s_call_t *c = user;
        assert_non_null (c);
        assert_string_equal (r->id, c->id);
        snprintf (c->message, sizeof c->message, "%s", r->message);
        c->ended++;
        order[k] = c;
        pm__v1__reply__free_unpacked (r, NULL);
    }
    assert_int_equal (pm_inflight_size (fl), 0);
    Pm__V1__Reply *r = NULL;
    void *user = NULL;
    assert_int_equal (pm_inflight_wait (fl, -1, &r, &user), PM_ETIMEDOUT); /* nothing in flight: at once */
    pm_inflight_destroy (&fl);
    pm_inflight_destroy (&fl);
    s_fake_end (&f->a);
    for (int i = 0; i < N; i++) {
        assert_int_equal (calls[i].ended, 1);
        if (i % 2) { /* lost once: answered a later copy of the same id */
            assert_true (s_copies (&f->a, calls[i].id) >= 2);
            assert_null (strstr (calls[i].message, "copy 1"));
        }
        else
            assert_true (s_copies (&f->a, calls[i].id) >= 1);
    }
    assert_int_equal (f->a.nseen, N); /* no other id reached it: resends kept theirs */
    assert_int_equal (f->a.undecodable, 0);
    /* the held replies came back newest first, and were matched all the same */
    assert_string_equal (order[0]->id, "keep-6");
    assert_string_equal (order[1]->id, "keep-4");
}

/* A request nobody answers ends once, at its deadline, without a reply;
 * before that a wait that times out leaves it in flight. */
static void
test_deadline_gives_up (void **state)
{
    fx_t *f = *state;
    s_fake_go (&f->a);
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    s_call_t mute = { .id = "mute-1" }, slow = { .id = "mute-2" };
    Pm__V1__Request req;
    s_request (&req, mute.id);
    assert_int_equal (pm_inflight_add (fl, f->ca, &req, 200, &mute), PM_OK);
    s_request (&req, slow.id);
    assert_int_equal (pm_inflight_add (fl, f->ca, &req, 0, &slow), PM_OK); /* no deadline */
    assert_int_equal (pm_inflight_add (fl, f->ca, &req, 0, &slow), PM_EEXIST); /* that id is in flight */
    Pm__V1__Reply *r = NULL;
    void *user = NULL;
    assert_int_equal (pm_inflight_wait (fl, 0, &r, &user), PM_ETIMEDOUT);
    assert_null (user);
    assert_int_equal (pm_inflight_size (fl), 2);
    assert_int_equal (pm_inflight_wait (fl, -1, &r, &user), PM_OK);
    assert_ptr_equal (user, &mute);
    assert_null (r);
    assert_int_equal (pm_inflight_size (fl), 1); /* the one without a deadline waits on */
    pm_inflight_destroy (&fl);
    s_fake_end (&f->a);
    assert_true (s_copies (&f->a, "mute-1") >= 1);
}

/* The same id in flight on two clients (two daemons): each reply goes to the
 * request on the client it came from. */
static void
test_fan_out_matches_by_client (void **state)
{
    fx_t *f = *state;
    s_fake_go (&f->a);
    s_fake_go (&f->b);
    pm_inflight_t *fl = pm_inflight_new (S_RETRY_MS);
    s_call_t ca = { .id = "drop-same" }, cb = { .id = "drop-same" };
    Pm__V1__Request req;
    s_request (&req, "drop-same");
    assert_int_equal (pm_inflight_add (fl, f->ca, &req, S_DEADLINE_MS, &ca), PM_OK);
    assert_int_equal (pm_inflight_add (fl, f->cb, &req, S_DEADLINE_MS, &cb), PM_OK);
    for (int k = 0; k < 2; k++) {
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        assert_int_equal (pm_inflight_wait (fl, -1, &r, &user), PM_OK);
        assert_non_null (r);
        s_call_t *c = user;
        snprintf (c->message, sizeof c->message, "%s", r->message);
        c->ended++;
        pm__v1__reply__free_unpacked (r, NULL);
    }
    pm_inflight_destroy (&fl);
    assert_int_equal (ca.ended, 1);
    assert_int_equal (cb.ended, 1);
    assert_true (strncmp (ca.message, "a: drop-same", 12) == 0);
    assert_true (strncmp (cb.message, "b: drop-same", 12) == 0);
}

/* pm_client_call is the same machinery for one request: a lost first copy is
 * resent; a request nobody answers times out. */
static void
test_call_resends_and_times_out (void **state)
{
    fx_t *f = *state;
    s_fake_go (&f->a);
    Pm__V1__Request req;
    s_request (&req, "drop-call");
    Pm__V1__Reply *r = NULL;
    assert_int_equal (pm_client_call (f->ca, &req, S_DEADLINE_MS, S_RETRY_MS, &r), PM_OK);
    assert_string_equal (r->id, "drop-call");
    assert_null (strstr (r->message, "copy 1"));
    pm__v1__reply__free_unpacked (r, NULL);
    s_request (&req, "mute-call");
    assert_int_equal (pm_client_call (f->ca, &req, 100, S_RETRY_MS, &r), PM_ETIMEDOUT);
    assert_null (r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_resend_same_id_and_match_by_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_deadline_gives_up, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fan_out_matches_by_client, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_call_resends_and_times_out, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
