/* pm/curve.h - CurveZMQ between hosts: encryption, and clients checked
 * against an allow-list (a ZAP handler on the daemon's own loop).
 *
 * Plain ipc stays the local default. A daemon that has a key pair
 * ([<daemon>] curve_secret_file) serves its ROUTER and PUB with CURVE, and
 * admits only the client public keys listed in [general] curve_allow; a
 * client (another daemon, pmctl, the gateway) speaks CURVE to a daemon whose
 * [<daemon>] curve_public_key is set, with its own key pair. Key files are
 * what `pmctl keys NAME` writes:
 *
 *     # pm CurveZMQ key pair of NAME: keep this file secret
 *     public-key = <40 Z85 characters>
 *     secret-key = <40 Z85 characters>
 *
 * and an allow-list has one public key a line (its first word), then a space
 * and a name; other lines starting with '#' are comments. */
#ifndef PM_CURVE_H
#define PM_CURVE_H

#include "pm/config.h"

#include <ev.h>

typedef struct pm_zap pm_zap_t;

/* Reads a key pair file into pub and sec (41 bytes each, Z85 + NUL).
 * PM_OK, or an error with *why set (static text). */
int pm_curve_load (const char *path, char pub[41], char sec[41], const char **why);
/* Writes a new key pair to path (mode 0600, refusing to overwrite); pub gets
 * the public key. PM_OK, or PM_EEXIST / PM_EIO. */
int pm_curve_create (const char *path, const char *name, char pub[41]);

/* Makes sock (a ROUTER or PUB of daemon `name`) a CURVE server when
 * [name] curve_secret_file is set; PM_OK and nothing done when it is not.
 * Errors are logged with the file and line of the config. */
int pm_curve_server (const pm_config_t *cfg, const char *name, void *sock);
/* Makes sock a CURVE client of daemon `server` when [server] curve_public_key
 * is set, with the key pair in secret_file (a daemon's own, or pmctl's
 * [pmctl] curve_secret_file). PM_OK and nothing done when it is not set. */
int pm_curve_client (const pm_config_t *cfg, const char *server, const char *secret_file, void *sock);
/* The key pair a client of other daemons uses: the daemon's own
 * [name] curve_secret_file. Borrowed; NULL when unset. */
const char *pm_curve_secret_file (const pm_config_t *cfg, const char *name);

/* The ZAP handler for zctx (bound at inproc://zeromq.zap.01) on loop,
 * admitting the public keys in [general] curve_allow. NULL with *err PM_OK
 * when this daemon serves no CURVE; NULL with an error (logged) otherwise. */
pm_zap_t *pm_zap_new (const pm_config_t *cfg, const char *name, void *zctx, struct ev_loop *loop, int *err);
void pm_zap_destroy (pm_zap_t **p);
/* Clients admitted and refused so far. */
unsigned long pm_zap_admitted (const pm_zap_t *z);
unsigned long pm_zap_refused (const pm_zap_t *z);

#endif
