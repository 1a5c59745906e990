/* Test support: temp directories that clean up after themselves. */
#ifndef PM_TEST_SUPPORT_H
#define PM_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* mkdtemp under $TMPDIR (or /tmp) with a short name (ipc paths are short). Caller frees. */
char *pmt_tmpdir (void);
/* rm -rf dir, then free(dir). */
void pmt_rmdir (char *dir);

#endif

/* --- a small test daemon on a real LMDB (support.c) ---------------------- */
#include "pm/daemon.h"

/* Config text for daemons "pub" and "sub" with ipc endpoints and data under dir,
 * manual clock allowed. Caller frees. extra is appended to [general] (may be ""). */
char *pmt_config_text (const char *dir, const char *extra);
/* The "pub" daemon: routes test.put (writes kv[actor] = id, emits event
 * "test.put" with unit_id = actor), test.fail (INVALID, writes nothing),
 * test.failw (writes, then CONFLICT), test.timer (schedules timer "test.fire"
 * for key actor at now + 1h), test.big (writes a 16 KiB value under actor). */
extern const pm_daemon_spec_t pmt_pub_spec;
/* The "sub" daemon: applies pub's "test.put" events into kv[unit_id] and
 * counts applications in meta "applied". */
extern const pm_daemon_spec_t pmt_sub_spec;
extern const pm_event_route_t pmt_sub_events[];
/* New daemon from pmt_config_text(dir, extra) on loop; asserts success. */
pm_daemon_t *pmt_daemon (const pm_daemon_spec_t *spec, const char *dir, const char *extra, struct ev_loop *loop);
/* Value of key in table "kv" (malloc'd) or NULL. */
char *pmt_kv (pm_daemon_t *d, const char *key);
/* A request (static storage per call site is not safe: caller frees with pmt_req_free). */
Pm__V1__Request *pmt_req (const char *id, const char *method, const char *actor);
void pmt_req_free (Pm__V1__Request *r);

/* --- intake's events, for the daemons that consume them ------------------- */
#define PMT_MAX_OWNERS 4

/* One intake.unit.* event and the storage for its text (test-owned memory). */
typedef struct {
    Pm__V1__Event ev;
    Pm__V1__Unit unit;
    Pm__V1__Owner owners[PMT_MAX_OWNERS];
    Pm__V1__Owner *ownerp[PMT_MAX_OWNERS];
    char id[32];
    char unit_id[32];
    char owner_text[PMT_MAX_OWNERS][3][64];
} pmt_unit_event_t;

/* An event as intake emits it: source "intake", seq, id "intake:<seq>", type,
 * unit_id "E01/<unit>" with area_cm2 and no owners yet. */
void pmt_unit_event (pmt_unit_event_t *e, uint64_t seq, const char *type, const char *unit, int64_t area_cm2);
/* Adds an owner to the event's unit. */
void pmt_unit_event_owner (pmt_unit_event_t *e, const char *name, const char *phone, const char *email);
/* A daemon of spec with its LMDB in data, consuming intake's events with
 * routes (endpoints under dir; nothing bound). Fails the test if it cannot start. */
pm_daemon_t *pmt_consumer (const pm_daemon_spec_t *spec, const pm_event_route_t *routes, const char *dir,
                           const char *data, struct ev_loop *loop);

/* --- one request or event through pm_daemon_apply ------------------------- */
/* Applies req as its own batch; the reply is valid until the next apply. */
Pm__V1__Reply *pmt_apply (pm_daemon_t *d, Pm__V1__Request *req);
/* Applies an upstream event as its own batch; the reply as pmt_apply's. */
Pm__V1__Reply *pmt_apply_event (pm_daemon_t *d, Pm__V1__Event *ev);
/* Applies ev, which must be applied: reply OK and the cursor at its seq. */
void pmt_event_applied (pm_daemon_t *d, Pm__V1__Event *ev);
/* Applies ev, which the runtime must turn away (duplicate, out of order): cursor unchanged. */
void pmt_event_ignored (pm_daemon_t *d, Pm__V1__Event *ev);
/* The value of metric name{labels} from ops.metrics; fails the test when absent. */
double pmt_metric (pm_daemon_t *d, const char *name, const char *labels);
/* The queue called name from ops.queues (valid until the next apply); fails when absent. */
Pm__V1__Queue *pmt_queue (pm_daemon_t *d, const char *name);
/* The queue's item with key, or NULL. */
const Pm__V1__QueueItem *pmt_queue_item (const Pm__V1__Queue *q, const char *key);
