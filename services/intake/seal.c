/* seal.c - owners' ID numbers at rest: the sealing key, sealing and opening.
 *
 * libsodium's secretbox (XSalsa20-Poly1305). The key lives in [intake]
 * key_file, created on first start with mode 0600; without it sealed ID
 * numbers cannot be read, so intake refuses to start on a key of the wrong
 * size rather than make a new one. */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
intake_key_file (const pm_config_t *cfg)
{
    static char path[4096];
    const char *v = pm_config_get (cfg, "intake", "key_file", NULL);
    if (v && *v)
        return v;
    snprintf (path, sizeof path, "%s/keys/intake.key", pm_config_home (cfg));
    return path;
}

int
intake_load_key (intake_t *in, const char *path)
{
    if (sodium_init () < 0) {
        pm_error ("libsodium failed to initialise");
        return PM_EIO;
    }
    randombytes_buf (in->nonce_prefix, sizeof in->nonce_prefix);
    in->nonce_n = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read (fd, in->key, sizeof in->key);
        close (fd);
        if (n != (ssize_t) sizeof in->key) {
            pm_error ("%s: expected a %zu-byte key; refusing to start rather than lose sealed ID numbers",
                      path, sizeof in->key);
            return PM_EIO;
        }
        return PM_OK;
    }
    if (errno != ENOENT) {
        pm_error ("cannot read %s: %s", path, strerror (errno));
        return PM_EIO;
    }
    char *dir = pm_xstrdup (path), *slash = dir ? strrchr (dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        pm_mkdirs (dir);
    }
    free (dir);
    crypto_secretbox_keygen (in->key);
    fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write (fd, in->key, sizeof in->key) != (ssize_t) sizeof in->key || fsync (fd) != 0) {
        pm_error ("cannot create %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return PM_EIO;
    }
    close (fd);
    pm_info ("created the ID-number sealing key %s (back it up with the data)", path);
    return PM_OK;
}

/* Seals an ID number: nonce || secretbox. The nonce is a 128-bit random
 * prefix drawn at start plus a counter: unique for the key without a
 * getrandom() call per owner (XSalsa20 needs unique nonces, not secret ones). */
ProtobufCBinaryData
intake_seal (pm_ctx_t *ctx, intake_t *in, const char *id)
{
    size_t n = strlen (id);
    ProtobufCBinaryData b;
    b.len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    b.data = pm_arena_alloc (ctx->arena, b.len);
    memcpy (b.data, in->nonce_prefix, sizeof in->nonce_prefix);
    pm_u64_be (++in->nonce_n, b.data + sizeof in->nonce_prefix);
    crypto_secretbox_easy (b.data + crypto_secretbox_NONCEBYTES, (const unsigned char *) id, n, b.data, in->key);
    return b;
}

/* Opens a sealed ID number into arena memory; NULL if it does not open. */
char *
intake_unseal (pm_ctx_t *ctx, const intake_t *in, ProtobufCBinaryData b)
{
    if (b.len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return NULL;
    size_t n = b.len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *out = pm_arena_alloc (ctx->arena, n + 1);
    if (crypto_secretbox_open_easy ((unsigned char *) out, b.data + crypto_secretbox_NONCEBYTES,
                                    b.len - crypto_secretbox_NONCEBYTES, b.data, in->key) != 0)
        return NULL;
    return out;
}

void *
intake_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    if (sodium_init () < 0) {
        pm_error ("libsodium failed to initialise");
        return NULL;
    }
    intake_t *in = sodium_malloc (sizeof *in);
    if (!in)
        pm_oom ("sodium_malloc", sizeof *in);
    if (intake_load_key (in, intake_key_file (cfg)) != PM_OK) {
        sodium_free (in);
        return NULL;
    }
    return in;
}

void
intake_app_destroy (void *app)
{
    sodium_free (app); /* zeroes the key */
}
