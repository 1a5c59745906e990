/* pm-workorder: work orders, dispatch and SLA timers (整改, 报修, 投诉). */
#include "workorder.h"

int
main (int argc, char **argv)
{
    return pm_daemon_main (&workorder_spec, argc, argv);
}
