/* test_curl - HTTP transfers through libcurl multi on a libev loop, against
 * a real HTTP server on loopback (libmicrohttpd in its own thread): several
 * at once, each called back once with its result; a refused connection is an
 * error, not a hang; the loop keeps turning while a slow answer is pending. */
#include "support.h"
#include "pm/curl.h"
#include "pm/err.h"
#include "pm/log.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int done, ok;
    long status[8];
    CURLcode rc[8];
    char body[8][64];
    size_t body_len[8];
} fx_t;

typedef struct {
    fx_t *f;
    int i;
} s_arg_t;

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
          const char *upload, size_t *upload_size, void **state)
{
    char body[64];
    int n = snprintf (body, sizeof body, "you asked for %s", url);
    struct MHD_Response *r = MHD_create_response_from_buffer ((size_t) n, body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response (conn, strcmp (url, "/missing") == 0 ? 404 : 200, r);
    MHD_destroy_response (r);
    return rc;
}

static size_t
s_write (char *p, size_t size, size_t n, void *arg)
{
    s_arg_t *a = arg;
    size_t len = size * n, room = sizeof a->f->body[0] - 1 - a->f->body_len[a->i];
    size_t take = len < room ? len : room;
    memcpy (a->f->body[a->i] + a->f->body_len[a->i], p, take);
    a->f->body_len[a->i] += take;
    return len;
}

static void
s_done (CURL *easy, CURLcode rc, void *arg)
{
    s_arg_t *a = arg;
    a->f->rc[a->i] = rc;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &a->f->status[a->i]);
    a->f->done++;
    curl_easy_cleanup (easy);
}

static void
s_check (struct ev_loop *loop, ev_prepare *w, int revents)
{
    fx_t *f = w->data;
    if (f->done == f->ok)
        ev_break (loop, EVBREAK_ALL);
}

static void
s_give_up (struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break (loop, EVBREAK_ALL);
}

static void
test_transfers_run_on_the_loop (void **state)
{
    struct MHD_Daemon *mhd = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, s_answer, NULL,
                                               MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
    assert_non_null (mhd);
    unsigned port = MHD_get_daemon_info (mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
    struct ev_loop *loop = ev_loop_new (0);
    pm_curl_t *c = pm_curl_new (loop);
    assert_non_null (c);
    fx_t f;
    memset (&f, 0, sizeof f);
    s_arg_t args[4];
    const char *paths[3] = { "/a", "/b", "/missing" };
    for (int i = 0; i < 4; i++) {
        char url[96];
        if (i < 3)
            snprintf (url, sizeof url, "http://127.0.0.1:%u%s", port, paths[i]);
        else
            snprintf (url, sizeof url, "http://127.0.0.1:1/refused");
        args[i] = (s_arg_t) { &f, i };
        CURL *e = curl_easy_init ();
        curl_easy_setopt (e, CURLOPT_URL, url);
        curl_easy_setopt (e, CURLOPT_WRITEFUNCTION, s_write);
        curl_easy_setopt (e, CURLOPT_WRITEDATA, &args[i]);
        assert_int_equal (pm_curl_add (c, e, s_done, &args[i]), PM_OK);
    }
    assert_int_equal (pm_curl_running (c), 4);
    f.ok = 4;
    ev_prepare prep;
    ev_prepare_init (&prep, s_check);
    prep.data = &f;
    ev_prepare_start (loop, &prep);
    ev_timer deadline;
    ev_timer_init (&deadline, s_give_up, 20.0, 0.0);
    ev_timer_start (loop, &deadline);
    ev_run (loop, 0);
    assert_int_equal (f.done, 4);
    assert_int_equal (pm_curl_running (c), 0);
    assert_int_equal (f.rc[0], CURLE_OK);
    assert_int_equal (f.status[0], 200);
    assert_string_equal (f.body[0], "you asked for /a");
    assert_string_equal (f.body[1], "you asked for /b");
    assert_int_equal (f.status[2], 404);
    assert_int_equal (f.rc[3], CURLE_COULDNT_CONNECT);
    ev_prepare_stop (loop, &prep);
    ev_timer_stop (loop, &deadline);
    pm_curl_destroy (&c);
    assert_null (c);
    ev_loop_destroy (loop);
    MHD_stop_daemon (mhd);
}

static void
test_destroy_aborts_what_runs (void **state)
{
    struct ev_loop *loop = ev_loop_new (0);
    pm_curl_t *c = pm_curl_new (loop);
    fx_t f;
    memset (&f, 0, sizeof f);
    s_arg_t a = { &f, 0 };
    CURL *e = curl_easy_init ();
    curl_easy_setopt (e, CURLOPT_URL, "http://192.0.2.1:9/never"); /* TEST-NET: never answers */
    assert_int_equal (pm_curl_add (c, e, s_done, &a), PM_OK);
    ev_run (loop, EVRUN_NOWAIT);
    pm_curl_destroy (&c); /* no callback, no leak (ASan checks) */
    assert_int_equal (f.done, 0);
    ev_loop_destroy (loop);
}

int
main (void)
{
    pm_log_init ("test_curl", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_transfers_run_on_the_loop),
        cmocka_unit_test (test_destroy_aborts_what_runs),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
