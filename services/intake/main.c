/* pm-intake: estates, units and owners, imported in batches. */
#include "intake.h"

int
main (int argc, char **argv)
{
    return pm_daemon_main (&intake_spec, argc, argv);
}
