/* pm/log.h - one line per event, with level, daemon name and UTC time.
 *
 * Personal data never goes to a log in full: pass phones through
 * pm_mask_phone() and ID numbers through pm_mask_id() first. */
#ifndef PM_LOG_H
#define PM_LOG_H

#include <stddef.h>

enum pm_log_level { PM_LOG_DEBUG = 0, PM_LOG_INFO, PM_LOG_WARN, PM_LOG_ERROR };

/* Sets the name printed on each line (borrowed: keep it alive) and the minimum level. */
void pm_log_init (const char *name, int level);
/* Parses "debug|info|warn|error"; returns the level or -1. */
int pm_log_level_parse (const char *s);
void pm_log (int level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Also hands each line that passes the level (without prefix and newline) to
 * fn: tests read what a daemon said. NULL removes it. */
typedef void (*pm_log_sink_fn) (int level, const char *msg, void *arg);
void pm_log_set_sink (pm_log_sink_fn fn, void *arg);

#define pm_debug(...) pm_log (PM_LOG_DEBUG, __VA_ARGS__)
#define pm_info(...) pm_log (PM_LOG_INFO, __VA_ARGS__)
#define pm_warn(...) pm_log (PM_LOG_WARN, __VA_ARGS__)
#define pm_error(...) pm_log (PM_LOG_ERROR, __VA_ARGS__)

/* "13812345678" -> "138****5678" into buf (size >= 32). Returns buf. */
const char *pm_mask_phone (const char *phone, char *buf, size_t size);
/* "110101199001011234" -> "1101**********1234" into buf (size >= 32). Returns buf. */
const char *pm_mask_id (const char *id, char *buf, size_t size);

#endif
