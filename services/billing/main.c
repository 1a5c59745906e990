/* pm-billing: fee schedules, invoices, payments; consumes intake's units. */
#include "billing.h"

int
main (int argc, char **argv)
{
    return pm_daemon_main (&billing_spec, argc, argv);
}
