/* pm-workorder: work orders, technicians and SLA timers (整改/报修). */
#include "workorder.h"

int
main (int argc, char **argv)
{
    int code;
    pm_config_t *cfg = pm_daemon_config ("workorder", argc, argv, &code);
    if (!cfg)
        return code;
    pm_daemon_t *d = pm_daemon_new (&workorder_spec, cfg, NULL);
    if (!d)
        return 1;
    if (pm_daemon_subscribe (d, "inspection", workorder_inspection_events) != PM_OK || pm_daemon_bind (d) != PM_OK) {
        pm_daemon_destroy (&d);
        return 1;
    }
    int rc = pm_daemon_run (d);
    pm_daemon_destroy (&d);
    return rc;
}
