/* pm-inspection: inspections, rounds, checklist items and defects (验房). */
#include "inspection.h"

int
main (int argc, char **argv)
{
    return pm_daemon_main (&inspection_spec, argc, argv);
}
