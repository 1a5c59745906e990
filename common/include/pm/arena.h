/* pm/arena.h - bump allocator for one batch's messages.
 *
 * Decoded requests, handler replies and packed buffers of a batch live here
 * and are released together by pm_arena_reset after the batch's replies went
 * out. Also usable as a protobuf-c allocator. */
#ifndef PM_ARENA_H
#define PM_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>

typedef struct pm_arena pm_arena_t;

pm_arena_t *pm_arena_new (void);
void pm_arena_destroy (pm_arena_t **p);
/* Zeroed memory valid until the next reset. Never NULL (aborts on OOM). */
void *pm_arena_alloc (pm_arena_t *a, size_t size);
char *pm_arena_strdup (pm_arena_t *a, const char *s);
char *pm_arena_printf (pm_arena_t *a, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
char *pm_arena_vprintf (pm_arena_t *a, const char *fmt, va_list ap);
/* Frees everything allocated since creation (keeps the first block). */
void pm_arena_reset (pm_arena_t *a);
/* A protobuf-c allocator that allocates from a (free is a no-op). */
ProtobufCAllocator *pm_arena_pb (pm_arena_t *a);

#endif
