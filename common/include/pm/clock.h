/* pm/clock.h - the only source of time for daemons.
 *
 * Wall clock in production. A manual clock (allowed only when the config says
 * [general] manual_clock = true) starts at the wall time and then moves only
 * when told to (pmctl clock set|advance), so 3-day SLAs are tested in seconds. */
#ifndef PM_CLOCK_H
#define PM_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pm_clock pm_clock_t;

/* New clock; manual_allowed from config. Caller owns; free with pm_clock_destroy. */
pm_clock_t *pm_clock_new (bool manual_allowed);
void pm_clock_destroy (pm_clock_t **p);

/* Now, in ms since the Unix epoch. */
int64_t pm_clock_now_ms (const pm_clock_t *c);
bool pm_clock_is_manual (const pm_clock_t *c);
bool pm_clock_manual_allowed (const pm_clock_t *c);
/* Switches to manual time at now_ms. PM_EINVAL if manual time is not allowed. */
int pm_clock_set_ms (pm_clock_t *c, int64_t now_ms);
/* Manual: moves forward by delta_ms (>= 0). PM_EINVAL if not allowed or negative. */
int pm_clock_advance_ms (pm_clock_t *c, int64_t delta_ms);

/* Monotonic ms / us, for latency and deadlines (never manual). */
int64_t pm_mono_ms (void);
int64_t pm_mono_us (void);

/* Parses "90s", "15m", "3h", "3d", "1d12h", "500ms" into ms. PM_EINVAL if not. */
int pm_duration_parse (const char *s, int64_t *ms);
/* Parses RFC 3339 UTC "2026-12-01T09:00:00Z" (optionally .mmm). PM_EINVAL if not. */
int pm_time_parse (const char *s, int64_t *ms);
/* Formats ms as "2026-12-01T09:00:00.000Z" into buf (size >= 32). Returns buf. */
const char *pm_time_format (int64_t ms, char *buf, size_t size);

#endif
