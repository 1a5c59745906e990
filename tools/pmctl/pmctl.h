/* pmctl.h - what pmctl's command files share: the global options, exit codes
 * and the request helpers. Commands live in pmctl.c (endpoints, call, ping,
 * metrics, queues, clock), events.c and import.c. */
#ifndef PMCTL_H
#define PMCTL_H

#include "pm/client.h"
#include "pm/config.h"
#include "pm/proto.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes. */
enum {
    PMCTL_OK = 0,       /* done */
    PMCTL_FAIL = 1,     /* no answer, an error reply, an I/O failure */
    PMCTL_USAGE = 2,    /* bad arguments, bad input file or JSON, bad config */
    PMCTL_REJECTED = 3, /* import completed, but some rows were rejected */
};

/* The global options, read before the command. */
typedef struct {
    pm_config_t *cfg;  /* owned by main */
    bool json;         /* --json: machine output */
    int timeout_ms;    /* --timeout: per request */
    char actor[96];    /* "pmctl:$USER" */
} pmctl_t;

/* Endpoint `key` ("command" or "events") of daemon, or NULL when the config
 * has no such daemon (nothing printed). Borrowed from the config. */
const char *pmctl_endpoint (const pmctl_t *ctl, const char *daemon, const char *key);
/* Prints "pmctl: unknown daemon 'x'; daemons in CONFIG: a, b, ..." to stderr. */
void pmctl_unknown_daemon (const pmctl_t *ctl, const char *daemon);
/* Consumes a global option (--json, --timeout MS) met after the command, so
 * `pmctl call intake ops.ping --json` works too. Returns 1 when argv[*i] was
 * one (and advances *i past its value), 0 when not, -1 after printing an error. */
int pmctl_late_option (pmctl_t *ctl, int argc, char **argv, int *i);
/* Parses a decimal integer in [min, max] given to option opt; prints why not. */
bool pmctl_parse_int (const char *opt, const char *s, int64_t min, int64_t max, int64_t *out);

/* Fills req for method with body (borrowed): a new time-ordered id written
 * into id, and the actor. */
void pmctl_request (const pmctl_t *ctl, Pm__V1__Request *req, char id[27], const char *method,
                    ProtobufCMessage *body);
/* Sends req with pm_client_call (global timeout, resent every timeout/2 with
 * the same id). PMCTL_OK with *reply set (the caller's), or PMCTL_FAIL after
 * printing "DAEMON did not answer at ENDPOINT within N ms ...". */
int pmctl_call (const pmctl_t *ctl, pm_client_t *c, const char *daemon, const char *endpoint,
                const Pm__V1__Request *req, Pm__V1__Reply **reply);
/* Prints "DAEMON did not answer at ENDPOINT within N ms: is it running? (./pm status)". */
void pmctl_no_answer (const char *daemon, const char *endpoint, int ms);

/* Prints j on one line (or indented when pretty) with a newline to stdout and
 * deletes it. PMCTL_OK, or PMCTL_FAIL when it could not be rendered. */
int pmctl_print_json (cJSON *j, bool pretty);

/* events.c: `pmctl events [--follow] [--from SEQ] [DAEMON] [PREFIX]`. */
int pmctl_events (pmctl_t *ctl, int argc, char **argv);
/* import.c: `pmctl import FILE.csv [--chunk ROWS] [--inflight N]`. */
int pmctl_import (pmctl_t *ctl, int argc, char **argv);

#endif
