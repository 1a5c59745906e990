/* pm-intake: estates, units and owners, imported in batches. */
#include "intake.h"
#include "pm/log.h"

int
main (int argc, char **argv)
{
    int code;
    pm_config_t *cfg = pm_daemon_config ("intake", argc, argv, &code);
    if (!cfg)
        return code;
    pm_daemon_t *d = pm_daemon_new (&intake_spec, cfg, NULL);
    if (!d)
        return 1;
    intake_t intake;
    if (intake_load_key (&intake, intake_key_file (cfg)) != PM_OK) {
        pm_daemon_destroy (&d);
        return 1;
    }
    pm_daemon_set_app (d, &intake);
    if (pm_daemon_bind (d) != PM_OK) {
        pm_daemon_destroy (&d);
        return 1;
    }
    int rc = pm_daemon_run (d);
    pm_daemon_destroy (&d);
    sodium_memzero (&intake, sizeof intake);
    return rc;
}
