/* inspection.h - the inspection daemon: inspections, rounds, checklist items
 * and defects (验房). Its domain work comes with its own issue; today it runs
 * the full path: its own LMDB, the command ROUTER and event PUB, and a
 * durable subscription to intake's events (inbox cursor only, no handlers yet). */
#ifndef INSPECTION_H
#define INSPECTION_H

#include "pm/daemon.h"

extern const pm_daemon_spec_t inspection_spec;

#endif
