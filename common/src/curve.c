/* curve.c - CurveZMQ keys, sockets and the ZAP handler (see pm/curve.h).
 *
 * The ZAP handler follows RFC 27 (ZAP 1.0): libzmq sends each CURVE
 * handshake's client public key to inproc://zeromq.zap.01 in the socket's
 * context and waits for "200" or "400". The handler is a REP socket watched
 * on the daemon's loop, so it needs no thread. */
#define _GNU_SOURCE
#include "pm/curve.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"
#include "pm/text.h"
#include "pm/zwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_MAX_ALLOWED 4096

struct pm_zap {
    void *sock;
    pm_zwatch_t *w;
    char (*keys)[32];   /* binary public keys admitted */
    char **names;
    size_t nkeys;
    unsigned long admitted, refused;
};

static bool
s_z85_key (const char *s)
{
    if (strlen (s) != 40)
        return false;
    unsigned char bin[32];
    return zmq_z85_decode (bin, s) != NULL;
}

int
pm_curve_load (const char *path, char pub[41], char sec[41], const char **why)
{
    FILE *f = fopen (path, "r");
    pub[0] = sec[0] = '\0';
    if (!f) {
        *why = "cannot be read";
        return PM_EIO;
    }
    char line[256];
    while (fgets (line, sizeof line, f)) {
        char *t = pm_trim (line);
        char *eq = strchr (t, '=');
        if (*t == '#' || !eq)
            continue;
        *eq = '\0';
        char *k = pm_trim (t), *v = pm_trim (eq + 1);
        if (strcmp (k, "public-key") == 0 && strlen (v) == 40)
            memcpy (pub, v, 41);
        else if (strcmp (k, "secret-key") == 0 && strlen (v) == 40)
            memcpy (sec, v, 41);
    }
    fclose (f);
    if (!s_z85_key (pub) || !s_z85_key (sec)) {
        *why = "is not a key pair (expected public-key = and secret-key = lines of 40 Z85 characters; "
               "pmctl keys NAME makes one)";
        return PM_EINVAL;
    }
    return PM_OK;
}

int
pm_curve_create (const char *path, const char *name, char pub[41])
{
    char sec[41];
    if (zmq_curve_keypair (pub, sec) != 0)
        return PM_EIO;
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? PM_EEXIST : PM_EIO;
    char *text = pm_xasprintf ("# pm CurveZMQ key pair of %s: keep this file secret\npublic-key = %s\nsecret-key = %s\n",
                               name, pub, sec);
    ssize_t n = write (fd, text, strlen (text));
    int rc = n == (ssize_t) strlen (text) && fsync (fd) == 0 ? PM_OK : PM_EIO;
    close (fd);
    free (text);
    explicit_bzero (sec, sizeof sec);
    return rc;
}

const char *
pm_curve_secret_file (const pm_config_t *cfg, const char *name)
{
    const char *v = pm_config_get (cfg, name, "curve_secret_file", "");
    return *v ? v : NULL;
}

static int
s_config_fail (const pm_config_t *cfg, const char *section, const char *key, const char *why)
{
    char *msg = pm_config_error (cfg, section, key, why);
    pm_error ("%s", msg);
    free (msg);
    return PM_ECONFIG;
}

int
pm_curve_server (const pm_config_t *cfg, const char *name, void *sock)
{
    const char *path = pm_curve_secret_file (cfg, name);
    if (!path)
        return PM_OK;
    char pub[41], sec[41];
    const char *why;
    if (pm_curve_load (path, pub, sec, &why) != PM_OK)
        return s_config_fail (cfg, name, "curve_secret_file", why);
    int one = 1;
    int rc = zmq_setsockopt (sock, ZMQ_CURVE_SERVER, &one, sizeof one) == 0
                     && zmq_setsockopt (sock, ZMQ_CURVE_SECRETKEY, sec, 40) == 0
                 ? PM_OK
                 : PM_EIO;
    explicit_bzero (sec, sizeof sec);
    return rc;
}

int
pm_curve_client (const pm_config_t *cfg, const char *server, const char *secret_file, void *sock)
{
    const char *server_key = pm_config_get (cfg, server, "curve_public_key", "");
    if (!*server_key)
        return PM_OK;
    if (!s_z85_key (server_key))
        return s_config_fail (cfg, server, "curve_public_key", "expected the daemon's public key: 40 Z85 characters");
    if (!secret_file)
        return s_config_fail (cfg, server, "curve_public_key",
                              "this client has no key pair of its own to speak CurveZMQ with "
                              "(set its curve_secret_file; pmctl keys NAME makes one)");
    char pub[41], sec[41];
    const char *why;
    if (pm_curve_load (secret_file, pub, sec, &why) != PM_OK) {
        pm_error ("%s %s", secret_file, why);
        return PM_ECONFIG;
    }
    int rc = zmq_setsockopt (sock, ZMQ_CURVE_SERVERKEY, server_key, 40) == 0
                     && zmq_setsockopt (sock, ZMQ_CURVE_PUBLICKEY, pub, 40) == 0
                     && zmq_setsockopt (sock, ZMQ_CURVE_SECRETKEY, sec, 40) == 0
                 ? PM_OK
                 : PM_EIO;
    explicit_bzero (sec, sizeof sec);
    return rc;
}

/* --- ZAP ------------------------------------------------------------------------ */

static int
s_allow_load (pm_zap_t *z, const pm_config_t *cfg)
{
    const char *path = pm_config_get (cfg, "general", "curve_allow", "");
    if (!*path)
        return s_config_fail (cfg, "general", "curve_allow",
                              "missing: a daemon with a curve_secret_file admits only the client keys listed here");
    FILE *f = fopen (path, "r");
    if (!f)
        return s_config_fail (cfg, "general", "curve_allow", "cannot be read");
    char line[512];
    unsigned lineno = 0;
    int rc = PM_OK;
    while (rc == PM_OK && fgets (line, sizeof line, f)) {
        lineno++;
        /* Z85 has '#' among its characters: the key is the line's first word,
         * the rest its name; a line that is not a key but starts with '#' is a comment */
        char *key = pm_trim (line), *name = key + strcspn (key, " \t");
        if (*name)
            *name++ = '\0';
        while (*name == ' ' || *name == '\t' || *name == '#')
            name++;
        if (!*key || (*key == '#' && !s_z85_key (key)))
            continue;
        if (!s_z85_key (key) || z->nkeys == S_MAX_ALLOWED) {
            pm_error ("%s:%u: '%s' is not a public key (40 Z85 characters, then a space and a name)", path, lineno,
                      key);
            rc = PM_ECONFIG;
            break;
        }
        z->keys = pm_xrealloc (z->keys, (z->nkeys + 1) * sizeof *z->keys);
        z->names = pm_xrealloc (z->names, (z->nkeys + 1) * sizeof *z->names);
        zmq_z85_decode ((uint8_t *) z->keys[z->nkeys], key);
        z->names[z->nkeys++] = pm_xstrdup (*name ? name : key);
    }
    fclose (f);
    return rc;
}

static void
s_zap_cb (pm_zwatch_t *w, void *sock, void *arg)
{
    pm_zap_t *z = arg;
    for (int k = 0; k < 64; k++) {
        zmq_msg_t parts[8];
        int n = 0, more = 1;
        while (more && n < 8) {
            zmq_msg_init (&parts[n]);
            if (zmq_msg_recv (&parts[n], sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&parts[n]);
                break;
            }
            more = zmq_msg_more (&parts[n]);
            n++;
        }
        if (n == 0)
            return;
        /* version, request id, domain, address, identity, mechanism, credentials... */
        const char *status = "400", *text = "not allowed";
        const char *who = "";
        if (n >= 7 && zmq_msg_size (&parts[5]) == 5 && memcmp (zmq_msg_data (&parts[5]), "CURVE", 5) == 0
            && zmq_msg_size (&parts[6]) == 32) {
            for (size_t i = 0; i < z->nkeys; i++)
                if (memcmp (z->keys[i], zmq_msg_data (&parts[6]), 32) == 0) {
                    status = "200", text = "OK", who = z->names[i];
                    break;
                }
        }
        if (*status == '2')
            z->admitted++;
        else {
            z->refused++;
            char key[41] = "?";
            if (n >= 7 && zmq_msg_size (&parts[6]) == 32)
                zmq_z85_encode (key, zmq_msg_data (&parts[6]), 32);
            pm_warn ("refused a CurveZMQ client whose key %s is not in [general] curve_allow (from %.*s)", key,
                     n >= 4 ? (int) zmq_msg_size (&parts[3]) : 1, n >= 4 ? (char *) zmq_msg_data (&parts[3]) : "?");
        }
        zmq_send (sock, "1.0", 3, ZMQ_SNDMORE);
        zmq_send (sock, n >= 2 ? zmq_msg_data (&parts[1]) : "", n >= 2 ? zmq_msg_size (&parts[1]) : 0, ZMQ_SNDMORE);
        zmq_send (sock, status, 3, ZMQ_SNDMORE);
        zmq_send (sock, text, strlen (text), ZMQ_SNDMORE);
        zmq_send (sock, who, strlen (who), ZMQ_SNDMORE); /* user id: the key's name */
        zmq_send (sock, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close (&parts[i]);
    }
}

pm_zap_t *
pm_zap_new (const pm_config_t *cfg, const char *name, void *zctx, struct ev_loop *loop, int *err)
{
    *err = PM_OK;
    if (!pm_curve_secret_file (cfg, name))
        return NULL;
    pm_zap_t *z = pm_xcalloc (1, sizeof *z);
    if ((*err = s_allow_load (z, cfg)) != PM_OK)
        goto fail;
    z->sock = zmq_socket (zctx, ZMQ_REP);
    int linger = 0;
    zmq_setsockopt (z->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind (z->sock, "inproc://zeromq.zap.01") != 0) {
        pm_error ("cannot bind the ZAP handler: %s", zmq_strerror (errno));
        *err = PM_EIO;
        goto fail;
    }
    z->w = pm_zwatch_new (loop, z->sock, s_zap_cb, z);
    pm_zwatch_start (z->w);
    pm_info ("%s: CurveZMQ on; %zu client keys allowed", name, z->nkeys);
    return z;
fail:
    pm_zap_destroy (&z);
    return NULL;
}

void
pm_zap_destroy (pm_zap_t **p)
{
    if (!p || !*p)
        return;
    pm_zap_t *z = *p;
    pm_zwatch_destroy (&z->w);
    if (z->sock)
        zmq_close (z->sock);
    for (size_t i = 0; i < z->nkeys; i++)
        free (z->names[i]);
    free (z->names);
    free (z->keys);
    free (z);
    *p = NULL;
}

unsigned long pm_zap_admitted (const pm_zap_t *z) { return z ? z->admitted : 0; }
unsigned long pm_zap_refused (const pm_zap_t *z) { return z ? z->refused : 0; }
