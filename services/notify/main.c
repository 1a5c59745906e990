/* pm-notify: messages to owners and staff; consumes every daemon's events. */
#include "notify.h"

int
main (int argc, char **argv)
{
    return pm_daemon_main (&notify_spec, argc, argv);
}
