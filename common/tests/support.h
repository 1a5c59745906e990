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
