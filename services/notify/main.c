/* pm-notify: reminders by SMS and email; consumes owners' contacts from intake. */
#include "notify.h"

int
main (int argc, char **argv)
{
    int code;
    pm_config_t *cfg = pm_daemon_config ("notify", argc, argv, &code);
    if (!cfg)
        return code;
    pm_daemon_t *d = pm_daemon_new (&notify_spec, cfg, NULL);
    if (!d)
        return 1;
    if (pm_daemon_subscribe (d, "intake", notify_intake_events) != PM_OK || pm_daemon_bind (d) != PM_OK) {
        pm_daemon_destroy (&d);
        return 1;
    }
    int rc = pm_daemon_run (d);
    pm_daemon_destroy (&d);
    return rc;
}
