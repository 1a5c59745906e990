/* arena.c - bump allocator in 64 KiB blocks; larger requests get a block of
 * their own. Memory is zeroed when handed out (but for protobuf-c, which
 * initialises what it allocates, as it must with plain malloc) and 16-byte
 * aligned. A reset keeps up to S_SPARE_MAX standard blocks for the next
 * batch: a batch of thousands of rows would otherwise malloc and fault in
 * the same memory again each time. */
#include "pm/arena.h"
#include "pm/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BLOCK_SIZE ((size_t) 64 * 1024)
#define S_ALIGN ((size_t) 16)
#define S_SPARE_MAX 256 /* 16 MiB of blocks kept across resets */

typedef struct s_block {
    struct s_block *next;
    size_t size;    /* usable bytes in data */
    size_t used;
    unsigned char data[];
} s_block_t;

struct pm_arena {
    s_block_t *first;   /* kept across resets */
    s_block_t *cur;     /* last block of the chain: where small requests go */
    s_block_t *big;     /* blocks of single large requests */
    s_block_t *spare;   /* standard blocks kept from earlier batches */
    size_t nspare;
    ProtobufCAllocator pb;
};

/* A block with room for size bytes at any alignment of its data. */
static s_block_t *
s_block_new (size_t size)
{
    if (size > SIZE_MAX - sizeof (s_block_t) - S_ALIGN)
        pm_oom ("arena block", size);
    s_block_t *b = pm_xmalloc (sizeof (s_block_t) + size + S_ALIGN - 1);
    b->next = NULL;
    b->size = size + S_ALIGN - 1;
    b->used = 0;
    return b;
}

/* Takes size bytes from b at 16-byte alignment, or NULL if they don't fit. */
static void *
s_take (s_block_t *b, size_t size)
{
    uintptr_t base = (uintptr_t) b->data;
    uintptr_t at = (base + b->used + S_ALIGN - 1) & ~(uintptr_t) (S_ALIGN - 1);
    size_t off = (size_t) (at - base);
    if (off > b->size || b->size - off < size)
        return NULL;
    b->used = off + size;
    return b->data + off;
}

static void *s_alloc (pm_arena_t *a, size_t size);

static void *
s_pb_alloc (void *data, size_t size)
{
    return s_alloc (data, size ? size : 1);
}

static void
s_pb_free (void *data, void *p)
{
    (void) data;
    (void) p;
}

pm_arena_t *
pm_arena_new (void)
{
    pm_arena_t *a = pm_xcalloc (1, sizeof *a);
    a->first = a->cur = s_block_new (S_BLOCK_SIZE);
    a->pb.alloc = s_pb_alloc;
    a->pb.free = s_pb_free;
    a->pb.allocator_data = a;
    return a;
}

static void
s_free_chain (s_block_t *b)
{
    while (b) {
        s_block_t *next = b->next;
        free (b);
        b = next;
    }
}

void
pm_arena_destroy (pm_arena_t **p)
{
    if (!p || !*p)
        return;
    s_free_chain ((*p)->first);
    s_free_chain ((*p)->big);
    s_free_chain ((*p)->spare);
    free (*p);
    *p = NULL;
}

/* size bytes, not zeroed. */
static void *
s_alloc (pm_arena_t *a, size_t size)
{
    void *p = s_take (a->cur, size);
    if (!p) {
        if (size > S_BLOCK_SIZE / 4) {
            s_block_t *b = s_block_new (size);
            b->next = a->big;
            a->big = b;
            p = s_take (b, size);
        } else {
            s_block_t *b = a->spare;
            if (b) {
                a->spare = b->next;
                a->nspare--;
                b->next = NULL;
                b->used = 0;
            }
            else
                b = s_block_new (S_BLOCK_SIZE);
            a->cur->next = b;
            a->cur = b;
            p = s_take (b, size);
        }
    }
    return p;
}

/* Zero-size requests get a distinct minimal allocation. */
void *
pm_arena_alloc (pm_arena_t *a, size_t size)
{
    if (size == 0)
        size = 1;
    void *p = s_alloc (a, size);
    memset (p, 0, size);
    return p;
}

/* NULL gives NULL. */
char *
pm_arena_strdup (pm_arena_t *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen (s) + 1;
    char *d = s_alloc (a, n); /* all of it written below */
    memcpy (d, s, n);
    return d;
}

char *
pm_arena_printf (pm_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *s = pm_arena_vprintf (a, fmt, ap);
    va_end (ap);
    return s;
}

/* NULL only if the format itself fails (an encoding error). */
char *
pm_arena_vprintf (pm_arena_t *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy (ap2, ap);
    int n = vsnprintf (NULL, 0, fmt, ap2);
    va_end (ap2);
    if (n < 0)
        return NULL;
    char *s = s_alloc (a, (size_t) n + 1);
    vsnprintf (s, (size_t) n + 1, fmt, ap);
    return s;
}

void
pm_arena_reset (pm_arena_t *a)
{
    s_block_t *b = a->first->next;
    while (b) { /* standard blocks back to the spares, up to the cap */
        s_block_t *next = b->next;
        if (a->nspare < S_SPARE_MAX) {
            b->next = a->spare;
            a->spare = b;
            a->nspare++;
        }
        else
            free (b);
        b = next;
    }
    a->first->next = NULL;
    a->first->used = 0;
    a->cur = a->first;
    s_free_chain (a->big);
    a->big = NULL;
}

ProtobufCAllocator *
pm_arena_pb (pm_arena_t *a)
{
    return &a->pb;
}
