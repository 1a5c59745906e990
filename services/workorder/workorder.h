/* workorder.h - the workorder daemon: work orders, technicians and SLA timers
 * (整改/报修). Its domain work comes with its own issue; today it runs the
 * full path: its own LMDB, the command ROUTER and event PUB, and a durable
 * subscription to inspection's events (inbox cursor only, no handlers yet). */
#ifndef WORKORDER_H
#define WORKORDER_H

#include "pm/daemon.h"

extern const pm_daemon_spec_t workorder_spec;

#endif
