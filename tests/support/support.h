/* support.h - what every test program shares (static library pm_testsupport):
 * temp directories, a fixture that makes a daemon from its spec on a real
 * LMDB in a temp dir, requests and events through pm_daemon_apply, and the
 * small "pub"/"sub" daemons the runtime's own tests run. */
#ifndef PM_TEST_SUPPORT_H
#define PM_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pm/daemon.h"

/* --- temp directories ------------------------------------------------------ */

/* mkdtemp under $TMPDIR (or /tmp) with a short name (ipc paths are short). Caller frees. */
char *pmt_tmpdir (void);
/* rm -rf dir, then free(dir). */
void pmt_rmdir (char *dir);

/* --- a daemon from its spec on a temp LMDB -------------------------------------- */

typedef struct {
    char *dir;                       /* the temp dir (removed by destroy) */
    const pm_daemon_spec_t *spec;
    char *extra;                     /* config text appended, kept for restarts */
    struct ev_loop *loop;            /* the loop given to the daemon (NULL: its own) */
    pm_daemon_t *d;
} pmt_fixture_t;

/* Config text: [general] with the manual clock allowed, quick heartbeats and
 * replay retries, then one section per name in names (NULL-terminated) with
 * ipc endpoints and data under dir, then extra (may be NULL). Caller frees. */
char *pmt_config (const char *dir, const char *const *names, const char *extra);
/* A daemon of spec with sections for itself and its upstreams in a new temp
 * dir, nothing bound (pm_daemon_apply drives it). extra is appended to the
 * config, e.g. "[general]\nbatch_max = 10\n" or "[billing]\nschedule = x\n".
 * Fails the test if it cannot start. */
pmt_fixture_t *pmt_fixture_new (const pm_daemon_spec_t *spec, const char *extra);
/* The same daemon stopped and started again on the same data. */
void pmt_fixture_restart (pmt_fixture_t *f);
void pmt_fixture_destroy (pmt_fixture_t **f);

/* --- one request or event through pm_daemon_apply ------------------------- */

/* A request (caller frees with pmt_req_free). */
Pm__V1__Request *pmt_req (const char *id, const char *method, const char *actor);
void pmt_req_free (Pm__V1__Request *r);
/* Applies req as its own batch; the reply is valid until the next apply. */
Pm__V1__Reply *pmt_apply (pm_daemon_t *d, Pm__V1__Request *req);
/* Calls method with body (borrowed) under request id; the reply as pmt_apply's. */
Pm__V1__Reply *pmt_call (pm_daemon_t *d, const char *id, const char *method, ProtobufCMessage *body);
/* The same, failing the test unless the reply's status is want. */
Pm__V1__Reply *pmt_call_expect (pm_daemon_t *d, const char *id, const char *method, ProtobufCMessage *body, int want);
/* Applies an upstream event as its own batch; the reply as pmt_apply's. */
Pm__V1__Reply *pmt_apply_event (pm_daemon_t *d, Pm__V1__Event *ev);
/* Applies ev, which must be applied: reply OK and the cursor at its seq. */
void pmt_event_applied (pm_daemon_t *d, Pm__V1__Event *ev);
/* Applies ev, which the runtime must turn away (duplicate, out of order): cursor unchanged. */
void pmt_event_ignored (pm_daemon_t *d, Pm__V1__Event *ev);
/* Moves the daemon's manual clock by a duration ("3d", "90m") or to a time
 * ("2026-12-01T09:00:00Z"), then fires the timers that became due. */
void pmt_clock_advance (pm_daemon_t *d, const char *by);
void pmt_clock_set (pm_daemon_t *d, const char *to);
/* The events the last apply or timer run emitted, and the first of a type (or NULL). */
size_t pmt_emitted (pm_daemon_t *d, Pm__V1__Event ***events);
Pm__V1__Event *pmt_emitted_type (pm_daemon_t *d, const char *type);
/* The value of metric name{labels} from ops.metrics; fails the test when absent. */
double pmt_metric (pm_daemon_t *d, const char *name, const char *labels);
/* The same, or def when the metric does not exist (yet). */
double pmt_metric_or (pm_daemon_t *d, const char *name, const char *labels, double def);
/* The queue called name from ops.queues (valid until the next apply); fails when absent. */
Pm__V1__Queue *pmt_queue (pm_daemon_t *d, const char *name);
/* The queue's item with key, or NULL. */
const Pm__V1__QueueItem *pmt_queue_item (const Pm__V1__Queue *q, const char *key);
/* The value of the item's field name, or NULL. */
const char *pmt_queue_field (const Pm__V1__QueueItem *item, const char *name);

/* --- what a daemon logged ----------------------------------------------------- */

/* Starts keeping every log line (msg only) until pmt_log_stop. */
void pmt_log_start (void);
void pmt_log_stop (void);
/* Whether a kept line contains needle. */
bool pmt_log_has (const char *needle);
/* How many kept lines contain needle. */
int pmt_log_count (const char *needle);

/* --- the runtime's test daemons ------------------------------------------------ */

enum { PMT_KV = PM_DB_FIRST_DOMAIN, PMT_NTABLES };

/* The "pub" daemon: routes test.put (writes kv[actor] = id, emits event
 * "test.put" with unit_id = actor), test.fail (INVALID, writes nothing),
 * test.failw (writes, then CONFLICT), test.timer (sets timer "test.fire" for
 * key actor at now + 1h; moves it when set again), test.cancel (cancels it),
 * test.big (writes a 16 KiB value under actor), test.get (a read: kv[actor]),
 * test.scan (writes kv[actor] after opening a scan it never ends).
 * Timer "test.fire" writes kv["fired:KEY"] = payload and emits test.fired;
 * for key "boom" it fails after writing. Its snapshot is one "test.put" event
 * per kv entry. */
extern const pm_daemon_spec_t pmt_pub_spec;
/* The "sub" daemon: consumes pub's "test.put" events into kv[unit_id] = event
 * id, counts applications in meta "applied", and rebuilds kv from pub. */
extern const pm_daemon_spec_t pmt_sub_spec;
/* Config text for pub and sub under dir (pmt_config with both names). Caller frees. */
char *pmt_config_text (const char *dir, const char *extra);
/* A pub or sub daemon under dir on loop (NULL: its own); asserts success. */
pm_daemon_t *pmt_daemon (const pm_daemon_spec_t *spec, const char *dir, const char *extra, struct ev_loop *loop);
/* Value of key in table "kv" (malloc'd) or NULL. */
char *pmt_kv (pm_daemon_t *d, const char *key);

/* --- intake's events, for the daemons that consume them ------------------- */
#define PMT_MAX_OWNERS 4

/* One intake.unit.* event and the storage for its text (test-owned memory). */
typedef struct {
    Pm__V1__Event ev;
    Pm__V1__Unit unit;
    Pm__V1__Owner owners[PMT_MAX_OWNERS];
    Pm__V1__Owner *ownerp[PMT_MAX_OWNERS];
    char id[32];
    char unit_id[48];
    char owner_text[PMT_MAX_OWNERS][3][64];
} pmt_unit_event_t;

/* An event as intake emits it: source "intake", seq, id "intake:<seq>", type,
 * unit_id "E01/<unit>" with area_cm2 and no owners yet. */
void pmt_unit_event (pmt_unit_event_t *e, uint64_t seq, const char *type, const char *unit, int64_t area_cm2);
/* Adds an owner to the event's unit. */
void pmt_unit_event_owner (pmt_unit_event_t *e, const char *name, const char *phone, const char *email);

#endif
