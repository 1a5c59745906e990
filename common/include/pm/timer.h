/* pm/timer.h - durable timers you can set, move and cancel.
 *
 * A timer is named by its kind ("workorder.sla.respond") and a key ("WO-42"):
 * there is at most one timer per (kind, key), so setting it again moves it,
 * and a state change that makes it pointless cancels it in the same
 * transaction (a payment that settles an invoice cancels its dunning steps).
 * Timers live in the store (table `timers`, by due time, and `timer_index`,
 * by kind and key: the format is in timer.c and nowhere else), survive
 * restarts, and the runtime arms one ev_timer for the earliest due one.
 *
 * When a timer is due, the runtime removes it and calls the handler the
 * daemon spec gives for its kind, in one transaction with the handler's
 * writes. A handler may set the same timer again (a repeating reminder). A
 * handler that fails leaves its writes undone and the timer in ops.queues
 * `dead_events` as "timer:KIND:KEY"; it is not retried by itself. */
#ifndef PM_TIMER_H
#define PM_TIMER_H

#include "pm/store.h"

#include <stdint.h>

/* Sets (or moves) the timer (kind, key) to fire at due_ms with payload
 * (copied; may be NULL with plen 0). Kind and key are non-empty strings. */
int pm_timer_set (pm_txn_t *t, const char *kind, const char *key, int64_t due_ms, const void *payload,
                  size_t plen);
/* The same with a protobuf message as payload. */
int pm_timer_set_msg (pm_txn_t *t, const char *kind, const char *key, int64_t due_ms, const ProtobufCMessage *m);
/* Cancels the timer; absent is not an error. */
int pm_timer_cancel (pm_txn_t *t, const char *kind, const char *key);
/* When the timer is due: PM_OK with *due_ms, or PM_ENOTFOUND. */
int pm_timer_due (pm_txn_t *t, const char *kind, const char *key, int64_t *due_ms);
/* The earliest due time of any timer, or INT64_MAX when there is none. */
int64_t pm_timer_next_due (pm_txn_t *t);

/* --- for the runtime ------------------------------------------------------- */

/* One stored timer; the strings and payload point into the store (valid in the txn). */
typedef struct {
    int64_t due_ms;
    const char *kind, *key;
    const void *payload;
    size_t plen;
} pm_timer_t;

/* Starts a walk over the timers due at or before now_ms, earliest first. */
bool pm_timer_scan (pm_scan_t *s, pm_txn_t *t, int64_t now_ms);
/* Decodes the scan's current entry. PM_OK, or PM_EPROTO for a malformed one. */
int pm_timer_read (const pm_scan_t *s, pm_timer_t *tm);
/* Removes a timer that fired (both of its entries). */
int pm_timer_remove (pm_txn_t *t, const char *kind, const char *key, int64_t due_ms);

#endif
