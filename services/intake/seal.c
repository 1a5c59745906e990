/* seal.c - owners' ID numbers at rest and owners' identity: the keys, sealing
 * and opening, the owner key, and the app context.
 *
 * libsodium's secretbox (XSalsa20-Poly1305) seals an ID number; its key lives
 * in [intake] key_file, created on first start with mode 0600. An owner is
 * known by a keyed hash of the ID number (generichash, BLAKE2b, 128 bits)
 * under a second key kept beside it ([intake] owner_key_file, by default
 * intake-owner.key in the sealing key's directory): two owners with the same
 * name stay two owners, and the same ID number on a later row is the same
 * owner, without opening any sealed box. Without the keys sealed ID numbers
 * cannot be read and owners cannot be matched, so intake refuses to start on
 * a key file of the wrong size rather than make a new one. */
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

/* Loads a key of size bytes from path, or creates it (random, mode 0600,
 * fsync'd) when the file does not exist. A file of another size is refused:
 * making a new key would lose what the old one protects. */
static int
s_load_keyfile (const char *path, unsigned char *key, size_t size, const char *what)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        unsigned char extra;
        ssize_t n = read (fd, key, size);
        bool longer = n == (ssize_t) size && read (fd, &extra, 1) == 1; /* not a key: some other file */
        close (fd);
        if (n != (ssize_t) size || longer) {
            pm_error ("%s: expected a %zu-byte %s; refusing to start rather than lose what it protects", path, size,
                      what);
            return PM_EIO;
        }
        return PM_OK;
    }
    if (errno != ENOENT) {
        pm_error ("cannot read %s: %s", path, strerror (errno));
        return PM_EIO;
    }
    char *dir = pm_xstrdup (path), *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        pm_mkdirs (dir);
    }
    free (dir);
    randombytes_buf (key, size);
    fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write (fd, key, size) != (ssize_t) size || fsync (fd) != 0) {
        pm_error ("cannot create %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return PM_EIO;
    }
    close (fd);
    pm_info ("created the %s %s (back it up with the data)", what, path);
    return PM_OK;
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
    return s_load_keyfile (path, in->key, sizeof in->key, "ID-number sealing key");
}

int
intake_load_owner_key (intake_t *in, const char *path)
{
    return s_load_keyfile (path, in->owner_key, sizeof in->owner_key, "owner key (owners are known by it)");
}

const char *
intake_owner_key_file (const pm_config_t *cfg)
{
    static char path[4096];
    const char *v = pm_config_get (cfg, "intake", "owner_key_file", NULL);
    if (v && *v)
        return v;
    const char *seal = intake_key_file (cfg);
    const char *slash = strrchr (seal, '/');
    if (slash)
        snprintf (path, sizeof path, "%.*s/intake-owner.key", (int) (slash - seal), seal);
    else
        snprintf (path, sizeof path, "intake-owner.key");
    return path;
}

void
intake_owner_key (const intake_t *in, const char *id, char out[2 * INTAKE_OWNER_KEY_BYTES + 1])
{
    unsigned char h[INTAKE_OWNER_KEY_BYTES];
    crypto_generichash (h, sizeof h, (const unsigned char *) id, strlen (id), in->owner_key, sizeof in->owner_key);
    sodium_bin2hex (out, 2 * INTAKE_OWNER_KEY_BYTES + 1, h, sizeof h);
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

/* Opens a sealed ID number into arena memory with the key, else with an old
 * key (a rotation under way); NULL if none opens it. */
char *
intake_unseal_old (pm_ctx_t *ctx, const intake_t *in, ProtobufCBinaryData b, bool *old)
{
    if (old)
        *old = false;
    if (b.len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return NULL;
    size_t n = b.len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *out = pm_arena_alloc (ctx->arena, n + 1);
    for (int k = -1; k < in->nold; k++) {
        const unsigned char *key = k < 0 ? in->key : in->old_keys[k];
        if (crypto_secretbox_open_easy ((unsigned char *) out, b.data + crypto_secretbox_NONCEBYTES,
                                        b.len - crypto_secretbox_NONCEBYTES, b.data, key)
            == 0) {
            if (old)
                *old = k >= 0;
            return out;
        }
    }
    return NULL;
}

char *
intake_unseal (pm_ctx_t *ctx, const intake_t *in, ProtobufCBinaryData b)
{
    return intake_unseal_old (ctx, in, b, NULL);
}

/* [intake] old_key_files: keys of a rotation under way, which open what they
 * sealed (never created here: a missing one is an error). */
static int
s_load_old_keys (intake_t *in, const pm_config_t *cfg)
{
    char *list = pm_xstrdup (pm_config_get (cfg, "intake", "old_key_files", "")), *save = NULL;
    int rc = PM_OK;
    in->nold = 0;
    for (char *p = strtok_r (list, " \t,", &save); p && rc == PM_OK; p = strtok_r (NULL, " \t,", &save)) {
        struct stat st;
        if (in->nold == INTAKE_OLD_KEYS) {
            char *msg = pm_config_error (cfg, "intake", "old_key_files", "at most 4 old keys at once");
            pm_error ("%s", msg);
            free (msg);
            rc = PM_ECONFIG;
        }
        else if (stat (p, &st) != 0) {
            pm_error ("[intake] old_key_files: %s: %s (an old key is never created)", p, strerror (errno));
            rc = PM_ECONFIG;
        }
        else
            rc = s_load_keyfile (p, in->old_keys[in->nold++], crypto_secretbox_KEYBYTES, "old sealing key");
    }
    free (list);
    if (rc == PM_OK && in->nold)
        pm_info ("intake: %d old sealing key(s) open what they sealed; intake.seal.rotate reseals it", in->nold);
    return rc;
}

/* An integer setting in [lo, hi]; false (logged with file, line and key) if not. */
static bool
s_setting (const pm_config_t *cfg, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out)
{
    char *err = NULL;
    if (pm_config_int (cfg, "intake", key, def, out, &err) != PM_OK) {
        pm_error ("%s", err ? err : key);
        free (err);
        return false;
    }
    if (*out < lo || *out > hi) {
        char *why = pm_xasprintf ("expected %lld to %lld", (long long) lo, (long long) hi);
        err = pm_config_error (cfg, "intake", key, why);
        pm_error ("%s", err);
        free (err);
        free (why);
        return false;
    }
    return true;
}

void *
intake_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    if (sodium_init () < 0) {
        pm_error ("libsodium failed to initialise");
        return NULL;
    }
    int64_t owners, offset, overdue;
    if (!s_setting (cfg, "max_owners_per_unit", 10, 1, 1000, &owners)
        || !s_setting (cfg, "utc_offset_minutes", 480, -720, 840, &offset)
        || !s_setting (cfg, "notice_overdue_h", 24, 1, 24 * 365, &overdue))
        return NULL;
    intake_t *in = sodium_malloc (sizeof *in);
    if (!in)
        pm_oom ("sodium_malloc", sizeof *in);
    in->cfg = cfg;
    in->max_owners = (uint32_t) owners;
    in->utc_offset_ms = offset * 60000;
    in->notice_overdue_ms = overdue * 3600000;
    if (intake_load_key (in, intake_key_file (cfg)) != PM_OK
        || intake_load_owner_key (in, intake_owner_key_file (cfg)) != PM_OK || s_load_old_keys (in, cfg) != PM_OK) {
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

/* intake.seal.rotate {max}: the next `max` units (default 2000) from where the
 * last call stopped; an ID number that opens only with an old key is sealed
 * again with the key. The cursor is durable, so calls resume across restarts;
 * `done` once a pass found nothing left under an old key. */
int
intake_on_seal_rotate (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    intake_t *in = ctx->app;
    uint32_t max = req->intake_seal_rotate->max ? req->intake_seal_rotate->max : 2000;
    if (max > 100000)
        return pm_reply (out, PM__V1__STATUS__INVALID, "max: %u units in one call; at most 100000 (e.g. 2000)", max);
    Pm__V1__IntakeSealRotateReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_seal_rotate_reply__init (r);
    MDB_val v;
    size_t alen = 0;
    const void *after = NULL;
    if (pm_txn_get (txn, PM_DB_META, "seal_rotate:after", 17, &v) == PM_OK) {
        after = pm_arena_alloc (ctx->arena, v.mv_size + 1);
        memcpy ((void *) after, v.mv_data, v.mv_size);
        alen = v.mv_size;
    }
    pm_scan_t s;
    unsigned char last[PM_KEY_MAX];
    size_t last_len = 0;
    for (pm_scan_after (&s, txn, INTAKE_UNITS, after, alen); s.ok && r->scanned < max; pm_scan_next (&s)) {
        Pm__Intake__UnitRecord *rec;
        r->scanned++;
        memcpy (last, s.key.mv_data, s.key.mv_size);
        last_len = s.key.mv_size;
        if (pm_scan_msg (&s, &pm__intake__unit_record__descriptor, &rec) != PM_OK)
            continue;
        bool changed = false;
        for (size_t i = 0; i < rec->n_id_numbers_sealed; i++) {
            bool old;
            char *id = intake_unseal_old (ctx, in, rec->id_numbers_sealed[i], &old);
            if (!id)
                r->unopenable++;
            else if (old) {
                rec->id_numbers_sealed[i] = intake_seal (ctx, in, id);
                sodium_memzero (id, strlen (id));
                r->resealed++;
                changed = true;
            }
        }
        if (changed) {
            pm_key_t k;
            pm_txn_put_msg (txn, INTAKE_UNITS, pm_key_raw (&k, last, last_len), &rec->base);
        }
    }
    r->done = !s.ok;
    uint64_t pass = pm_meta_get_u64 (txn, "seal_rotate:pass_resealed") + r->resealed;
    if (r->done) {
        pm_txn_del (txn, PM_DB_META, "seal_rotate:after", 17);
        pm_meta_put_u64 (txn, "seal_rotate:pass_resealed", 0);
        r->done = pass == 0 || r->scanned == 0; /* a clean pass: nothing was under an old key */
    }
    else {
        pm_txn_put (txn, PM_DB_META, "seal_rotate:after", 17, last, last_len);
        pm_meta_put_u64 (txn, "seal_rotate:pass_resealed", pass);
    }
    pm_reply_body (out, &r->base);
    if (r->done)
        return pm_reply (out, PM__V1__STATUS__OK,
                         "every ID number opens with the key in [intake] key_file%s; old_key_files can be emptied "
                         "and the old keys destroyed",
                         r->unopenable ? " except the unopenable ones counted here" : "");
    return pm_reply (out, PM__V1__STATUS__OK, "%u units looked at, %u ID numbers resealed; call again to go on",
                     r->scanned, r->resealed);
}
