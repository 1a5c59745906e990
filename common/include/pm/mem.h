/* pm/mem.h - the out-of-memory policy: abort with a message.
 *
 * A daemon that cannot allocate cannot keep its promises either, and every
 * write it acknowledged is already durable; so, as czmq and Redis do, running
 * out of memory ends the process with one line on stderr, and systemd (or
 * ./pm start) restarts it. Nothing here ever returns NULL. */
#ifndef PM_MEM_H
#define PM_MEM_H

#include <stddef.h>

void *pm_xmalloc (size_t size);
void *pm_xcalloc (size_t n, size_t size);
void *pm_xrealloc (void *p, size_t size);
char *pm_xstrdup (const char *s);
char *pm_xstrndup (const char *s, size_t n);
/* asprintf that aborts on failure. */
char *pm_xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* Prints "pm: out of memory (what, N bytes)" and aborts. */
void pm_oom (const char *what, size_t size) __attribute__ ((noreturn));

#endif
