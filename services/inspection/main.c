/* pm-inspection: inspections, rounds, checklist items and defects (验房). */
#include "inspection.h"

int
main (int argc, char **argv)
{
    int code;
    pm_config_t *cfg = pm_daemon_config ("inspection", argc, argv, &code);
    if (!cfg)
        return code;
    pm_daemon_t *d = pm_daemon_new (&inspection_spec, cfg, NULL);
    if (!d)
        return 1;
    if (pm_daemon_subscribe (d, "intake", inspection_intake_events) != PM_OK || pm_daemon_bind (d) != PM_OK) {
        pm_daemon_destroy (&d);
        return 1;
    }
    int rc = pm_daemon_run (d);
    pm_daemon_destroy (&d);
    return rc;
}
