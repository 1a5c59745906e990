/* pmctl.h - what pmctl's command files share: the command table's entry, the
 * global options, option parsing, exit codes and the request helpers.
 * Commands live in pmctl.c (endpoints, call, ping, metrics, queues, clock,
 * sync), events.c, import.c, unit.c, top.c, keys.c, billing.c, notify.c and
 * gateway.c (token, webhook); the table that names them is in pmctl.c. */
#ifndef PMCTL_H
#define PMCTL_H

#include "pm/client.h"
#include "pm/config.h"
#include "pm/proto.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes. */
enum {
    PMCTL_OK = 0,       /* done */
    PMCTL_FAIL = 1,     /* no answer, an error reply, an I/O failure */
    PMCTL_USAGE = 2,    /* bad arguments, bad input file or JSON, bad config */
    PMCTL_REJECTED = 3, /* import completed, but some rows were rejected */
};

typedef struct pmctl pmctl_t;

/* One command. The table of them (pmctl.c) is both the help and the dispatch. */
typedef struct {
    const char *name;
    int (*fn) (pmctl_t *ctl, int argc, char **argv); /* argv[0] is the name; returns the exit code */
    const char *synopsis;  /* its arguments: "DAEMON METHOD [JSON]" */
    const char *help;      /* a one-line summary, then (after a blank line) the details */
} pmctl_command_t;

/* The global options and what every command needs. */
struct pmctl {
    const char *config_path;        /* -c FILE, else $PM_CONFIG, else NULL: the embedded default */
    pm_config_t *cfg;               /* NULL until pmctl_load_config */
    const pmctl_command_t *command; /* the command running */
    bool json;                      /* --json: machine output */
    int timeout_ms;                 /* --timeout: per request */
    char actor[96];                 /* "pmctl:$USER" */
};

/* pmctl_getopt's answers besides a command's own option characters. */
enum {
    PMCTL_OPT_END = -1,   /* no more options: argv[optind..argc) are the positional arguments */
    PMCTL_OPT_STOP = -2,  /* the command ends now with *code (help printed, or an error) */
};

/* getopt_long over a command's arguments (argv[0] its name), starting over
 * for each new argv: the command's own short and long options plus the global
 * ones, which it takes itself (--json and --timeout MS, so `pmctl call intake
 * ops.ping --json` works; -h/--help prints the command's help). Positional
 * arguments may come before, between or after options. Returns the command's
 * option (optarg set), PMCTL_OPT_END, or PMCTL_OPT_STOP after printing the
 * help (*code PMCTL_OK) or what is wrong (*code PMCTL_USAGE). */
int pmctl_getopt (pmctl_t *ctl, int argc, char **argv, const char *shortopts, const struct option *longopts,
                  int *code);
/* Prints "pmctl: NAME: <message> (usage: pmctl NAME SYNOPSIS)" for the running
 * command to stderr; returns PMCTL_USAGE. */
int pmctl_usage_error (const pmctl_t *ctl, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Loads the config once (after the options, so --help needs none). PMCTL_OK,
 * or PMCTL_USAGE after printing why not. */
int pmctl_load_config (pmctl_t *ctl);

/* Endpoint `key` ("command" or "events") of daemon, or NULL when the config
 * has no such daemon (nothing printed). Borrowed from the config. */
const char *pmctl_endpoint (const pmctl_t *ctl, const char *daemon, const char *key);
/* Prints "pmctl: unknown daemon 'x'; daemons in CONFIG: a, b, ..." to stderr. */
void pmctl_unknown_daemon (const pmctl_t *ctl, const char *daemon);
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
/* The resend interval for requests with the global timeout: half of it. */
int pmctl_retry_ms (const pmctl_t *ctl);

/* Prints j on one line (or indented when pretty) with a newline to stdout and
 * deletes it. PMCTL_OK, or PMCTL_FAIL when it could not be rendered. */
int pmctl_print_json (cJSON *j, bool pretty);

/* events.c: `pmctl events [--follow] [--from SEQ] [DAEMON] [PREFIX]`. */
int pmctl_events (pmctl_t *ctl, int argc, char **argv);
/* import.c: `pmctl import FILE.csv [--dry-run] [--chunk ROWS] [--inflight N]`. */
int pmctl_import (pmctl_t *ctl, int argc, char **argv);
/* gateway.c: `pmctl token create NAME --role ROLE | list | revoke NAME`. */
int pmctl_token (pmctl_t *ctl, int argc, char **argv);
/* gateway.c: `pmctl webhook list | resume ID | delete ID | create URL --secret S [--type T]...`. */
int pmctl_webhook (pmctl_t *ctl, int argc, char **argv);

/* A client of daemon's command endpoint, speaking CurveZMQ with
 * [pmctl] curve_secret_file when the daemon has a curve_public_key. NULL
 * (logged) on failure. zctx NULL: a context of its own. */
pm_client_t *pmctl_client (const pmctl_t *ctl, void *zctx, const char *daemon);

/* keys.c: `pmctl keys NAME [--dir DIR]`. */
int pmctl_keys (pmctl_t *ctl, int argc, char **argv);
/* billing.c: `pmctl billing reconcile FILE.csv [--chunk LINES] [--inflight N]`. */
int pmctl_billing (pmctl_t *ctl, int argc, char **argv);
/* unit.c: `pmctl unit UNIT_ID`: every daemon's part of one unit's case. */
int pmctl_unit (pmctl_t *ctl, int argc, char **argv);
/* top.c: `pmctl top [--once] [--interval SECONDS]`: the live move-in board. */
int pmctl_top (pmctl_t *ctl, int argc, char **argv);

/* One request of a fan-out (unit.c): every daemon asked at once, each on its own DEALER. */
typedef struct {
    const char *daemon;       /* borrowed */
    const char *method;       /* borrowed */
    ProtobufCMessage *body;   /* borrowed; NULL: the empty body */
    Pm__V1__Reply *reply;     /* out: the answer (freed by pmctl_ask_free), NULL when none came */
    const char *why;          /* out: why there is no answer (static text) */
    pm_client_t *client;      /* internal */
} pmctl_ask_t;
/* Sends every ask and waits until each is answered or timeout_ms passed
 * (resending the unanswered ones with the same id). zctx is borrowed. */
void pmctl_ask (const pmctl_t *ctl, void *zctx, pmctl_ask_t *asks, size_t n, int timeout_ms);
/* Frees the asks' replies and connections (not the array). */
void pmctl_ask_free (pmctl_ask_t *asks, size_t n);
/* notify.c: `pmctl notify show|retry|drop ID`, `pmctl notify optout CHANNEL ADDRESS`. */
int pmctl_notify (pmctl_t *ctl, int argc, char **argv);
/* inspection.c: `pmctl checklist ESTATE [FILE.csv]`. */
int pmctl_checklist (pmctl_t *ctl, int argc, char **argv);

#endif
