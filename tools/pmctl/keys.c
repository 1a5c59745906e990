/* keys.c - `pmctl keys NAME [--dir DIR]`: a CurveZMQ key pair for a daemon,
 * pmctl or an integration, and what to put where (pm/curve.h). */
#include "pmctl.h"

#include "pm/curve.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
pmctl_keys (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        dir = optarg;
    }
    if (argc - optind != 1)
        return pmctl_usage_error (ctl, argc - optind > 1 ? "one NAME only" : "needs NAME (e.g. intake, pmctl, erp)");
    const char *name = argv[optind];
    if (!*name || strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen (name))
        return pmctl_usage_error (ctl, "NAME '%s': use letters, digits, '-' and '_'", name);
    char *keys_dir = NULL;
    if (!dir) {
        if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
            return code;
        keys_dir = pm_xasprintf ("%s/keys", pm_config_home (ctl->cfg));
        dir = keys_dir;
    }
    pm_mkdirs (dir);
    char *path = pm_xasprintf ("%s/%s.curve", dir, name), pub[41]; /* not NAME.key: intake's sealing key is intake.key */
    int rc = pm_curve_create (path, name, pub);
    if (rc == PM_EEXIST)
        fprintf (stderr, "pmctl: %s exists; a key pair is never overwritten (remove it first to replace it)\n", path);
    else if (rc != PM_OK)
        fprintf (stderr, "pmctl: cannot write %s\n", path);
    else if (ctl->json)
        printf ("{\"name\":\"%s\",\"secret_file\":\"%s\",\"public_key\":\"%s\"}\n", name, path, pub);
    else
        printf ("wrote %s (mode 0600: it holds the secret key)\n"
                "public key of %s: %s\n"
                "\n"
                "  a daemon:      [%s] curve_secret_file = %s\n"
                "                 and, in every config that talks to it, [%s] curve_public_key = %s\n"
                "  pmctl:         [pmctl] curve_secret_file = %s\n"
                "  any client:    add this line to the file of [general] curve_allow:\n"
                "                 %s %s\n",
                path, name, pub, name, path, name, pub, path, pub, name);
    free (path);
    free (keys_dir);
    return rc == PM_OK ? PMCTL_OK : PMCTL_FAIL;
}
