/* notify.h - the notify daemon: events of every daemon turned into messages
 * to owners and staff, delivered once through SMS and email gateways.
 *
 * The path of a message (README.md tells it at length):
 *   1. an event arrives (plan.c): the rules (rules.c) say which templates go
 *      to whom on which channel; each message is rendered (templates.c) and
 *      written PENDING, DEFERRED or FAILED in the event's own transaction
 *      (deliveries.c), keyed by a dedupe key so it exists once;
 *   2. the dispatcher (dispatch.c, the app's loop watchers, never a handler)
 *      claims due messages in a write of its own (SENDING, attempt counted),
 *      hands them to the channel's gateway (gateway_*.c), and commits each
 *      outcome in another write (SENT, RETRYING with backoff, FAILED = dead
 *      letter) before it decides the next attempt.
 *
 * Tables (keys from pm/key.h):
 *   contacts     s(unit_id)                 -> ContactRecord
 *   messages     s(message_id)              -> MessageRecord (rewritten at every step)
 *   texts        s(message_id)              -> the rendered text (UTF-8, written once)
 *   dedupe       s(dedupe_key)              -> message id
 *   ready_sms,   t(due) s(id)               -> ""   PENDING, DEFERRED, RETRYING: the dispatcher's
 *   ready_email                                      queue per channel (its count is the backlog)
 *   sending      s(id)                      -> ""   SENDING: claimed, at a gateway
 *   by_unit      s(unit_id) s(id)           -> ""
 *   topics       s(topic) s(id)             -> ""   scheduled reminders, superseded by their next event
 *   by_invoice   s(invoice_id) s(id)        -> ""   reminders dropped when the invoice is settled
 *   invoices     s(invoice_id)              -> InvoiceRecord (from billing.invoice.*)
 *   dead_letters s(id)                      -> QueueItem (FAILED messages)
 *   optouts      s(channel) s(address)      -> OptOut
 *   caps         u(local day) s(address)    -> u32 SMS sent that day
 *   awaiting     s(unit_id) s(event id)     -> Awaiting (events waiting for the unit's contacts)
 *   notices      s(unit_id) s(id)           -> pm.v1.MessageOutcome (notices sent: the snapshot)
 * Meta: "owners", "msg_seq" (= messages made), "waiting:DEFERRED", "waiting:RETRYING",
 *       "total:<what>" (sent, failed, dropped, deferred, skipped, segments ...). */
#ifndef NOTIFY_H
#define NOTIFY_H

#include "pm/daemon.h"
#include "notify_store.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

enum {
    NOTIFY_CONTACTS = PM_DB_FIRST_DOMAIN,
    NOTIFY_MESSAGES,
    NOTIFY_TEXTS,
    NOTIFY_DEDUPE,
    NOTIFY_READY_SMS,   /* NOTIFY_READY_SMS + channel */
    NOTIFY_READY_EMAIL,
    NOTIFY_SENDING,
    NOTIFY_BY_UNIT,
    NOTIFY_TOPICS,
    NOTIFY_BY_INVOICE,
    NOTIFY_INVOICES,
    NOTIFY_DEAD,
    NOTIFY_OPTOUTS,
    NOTIFY_CAPS,
    NOTIFY_AWAITING,
    NOTIFY_NOTICES,
    NOTIFY_NTABLES
};

extern const pm_daemon_spec_t notify_spec;

/* --- channels and recipients ---------------------------------------------------- */

enum { NOTIFY_SMS = 0, NOTIFY_EMAIL, NOTIFY_NCHANNELS };
extern const char *const notify_channels[NOTIFY_NCHANNELS]; /* "sms", "email" */
/* The channel called name, or -1. */
int notify_channel (const char *name);

enum { NOTIFY_TO_OWNERS = 0, NOTIFY_TO_TECHNICIAN, NOTIFY_TO_TEAM_LEAD, NOTIFY_TO_MANAGER, NOTIFY_NTO };
extern const char *const notify_to_names[NOTIFY_NTO]; /* "owners", "technician", ... */

/* --- variables and event kinds (vars.c) ------------------------------------------
 *
 * A template names variables ({unit_name}); an event kind says which it
 * provides. Both are checked when the files load, so a message never goes out
 * with a blank. Widths are the longest value a variable is expected to take,
 * in characters: an SMS template's budget is checked with every variable at
 * its width. */
enum notify_var {
    V_NAME, V_UNIT_NAME, V_UNIT_ID, V_ESTATE_NAME,
    V_NOTICE_ID, V_WINDOW, V_PLACE, V_BRING, V_FEES_NOTE,
    V_SLOT, V_PREVIOUS_SLOT, V_COUNTER, V_REASON,
    V_KEY_SET, V_KEYS, V_RECEIVED_BY,
    V_ROUND_NO, V_INSPECTOR, V_DEFECTS,
    V_DEFECT_ID, V_ROOM, V_CATEGORY, V_DESCRIPTION, V_DEADLINE, V_SEVERITY,
    V_ORDER_ID, V_TECHNICIAN, V_TEAM, V_COMPLETE_BY, V_SOURCE, V_SOURCE_TEXT, V_PRIORITY,
    V_TEAM_LEAD, V_DEADLINE_KIND, V_SLA_KIND, V_DUE,
    V_INVOICE_ID, V_AMOUNT, V_OPEN_AMOUNT, V_DUE_DATE, V_PERIOD, V_KIND,
    V_RECEIPT_NO, V_PAID_AT, V_PAY_CHANNEL,
    V_STEP, V_ACTION,
    NOTIFY_NVARS
};

typedef struct {
    const char *name;
    unsigned width;
} notify_var_def_t;
extern const notify_var_def_t notify_vars[NOTIFY_NVARS];
/* The variable called name[0..len), or -1. */
int notify_var_find (const char *name, size_t len);
#define NOTIFY_VAR(v) ((uint64_t) 1 << (v))

/* Times a scheduled rule may be set against (at=slot_start-1d). */
enum { T_SLOT_START = 0, T_DUE, T_DEADLINE, T_COMPLETE_BY, NOTIFY_NTIMES };
extern const char *const notify_time_names[NOTIFY_NTIMES];

/* What one event gives its messages. Strings are arena or event memory. */
typedef struct {
    const char *v[NOTIFY_NVARS];          /* NULL: not provided by this kind */
    int64_t t[NOTIFY_NTIMES];             /* 0: not provided */
    Pm__V1__Owner **owners;               /* the payload's owners, or NULL: from contacts */
    size_t n_owners;
    const char *unit_id, *estate_id;
    const char *invoice_id, *notice_id;
    const char *technician, *team, *team_lead;
} notify_vals_t;

typedef struct notify_app notify_app_t;

typedef struct {
    const char *type;       /* "intake.notice.requested" */
    int payload;            /* the Event.payload case it carries */
    uint64_t vars;          /* NOTIFY_VAR bits it provides */
    unsigned times;         /* 1 << T_* it provides */
    void (*fill) (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals);
} notify_event_kind_t;

/* The kind of event type, or NULL when the contract has no such type. */
const notify_event_kind_t *notify_event_kind (const char *type);
/* Every kind, NULL-terminated (for error messages). */
extern const notify_event_kind_t notify_event_kinds[];

/* Amount in fen as people read it: 324000 -> "¥3,240.00". Returns buf (>= 32). */
const char *notify_fen_text (int64_t fen, char *buf, size_t size);
/* "12月5日 09:00" / "12月5日" in the configured zone (offset in minutes). Arena. */
char *notify_time_text (pm_arena_t *a, int64_t ms, int tz_min);
char *notify_date_text (pm_arena_t *a, int64_t ms, int tz_min);
/* "翠湖花园1栋101室" from the parts (arena); the unit id when they are missing. */
char *notify_unit_name (pm_arena_t *a, const char *estate_name, const char *building, const char *unit,
                        const char *unit_id);

/* --- templates (templates.c) -------------------------------------------------------
 *
 * deploy/notify/templates.conf: sections [NAME.CHANNEL], keys text (sms),
 * subject and body (email), segments (an SMS budget). A value continues on
 * lines starting with '|'. Variables are {name}; "{{" and "}}" are braces. */
typedef struct notify_template notify_template_t;
typedef struct notify_templates notify_templates_t;

/* Loads and checks the templates in text (path names it in errors). NULL with
 * *err (malloc'd, "path:line: ...") on the first error. Caller owns. */
notify_templates_t *notify_templates_load (const char *path, const char *text, char **err);
void notify_templates_destroy (notify_templates_t **p);
/* The template NAME for channel, or NULL. Borrowed. */
const notify_template_t *notify_template_find (const notify_templates_t *t, const char *name, int channel);
/* The variables a template uses (NOTIFY_VAR bits) and the line of its section. */
uint64_t notify_template_vars (const notify_template_t *t);
int notify_template_line (const notify_template_t *t);
const char *notify_template_name (const notify_template_t *t);
const char *notify_templates_path (const notify_templates_t *t);
/* The rendered subject (email) and body (arena; subject NULL for SMS). */
void notify_render (pm_arena_t *a, const notify_template_t *t, const notify_vals_t *vals, const char **subject,
                    const char **body);
/* SMS segments of text: 70 characters alone or 67 a part when concatenated
 * (UCS-2, any Chinese); 160 / 153 when every character is plain ASCII. */
unsigned notify_sms_segments (const char *text);

/* --- rules (rules.c) ------------------------------------------------------------------
 *
 * deploy/notify/rules.conf, one rule a line:
 *   EVENT  TEMPLATE  TO  CHANNELS  [urgent] [unless_settled] [at=TIME-DURATION] [if=VAR=VALUE|VAR!=VALUE] */
typedef struct {
    int line;
    const notify_event_kind_t *kind;
    char *template_name;
    const notify_template_t *tpl[NOTIFY_NCHANNELS]; /* NULL: the rule does not use the channel */
    bool optional[NOTIFY_NCHANNELS];                /* "email?": skipped when there is no address */
    int to;                                         /* NOTIFY_TO_* */
    bool urgent, unless_settled;
    int at;                                         /* T_* or -1 */
    int64_t at_offset_ms;
    int cond_var;                                   /* -1: none */
    bool cond_neg;
    char *cond_value;
} notify_rule_t;

typedef struct notify_rules notify_rules_t;
/* Loads and checks the rules in text against the templates. NULL with *err
 * (malloc'd, naming the file and line) on the first error. Caller owns. */
notify_rules_t *notify_rules_load (const char *path, const char *text, const notify_templates_t *tpl, char **err);
void notify_rules_destroy (notify_rules_t **p);
/* The rules for an event type, in file order: *n set, borrowed. */
const notify_rule_t *const *notify_rules_for (const notify_rules_t *r, const char *type, size_t *n);
size_t notify_rules_count (const notify_rules_t *r);

/* --- staff directory (staff.c) -------------------------------------------------------
 *
 * deploy/notify/staff.conf, one person a line: NAME ROLE ESTATE TEAM PHONE EMAIL
 * (ROLE technician, team_lead or manager; '-' for an empty field). */
typedef struct {
    char *name, *role, *estate, *team, *phone, *email;
    int line;
} notify_staff_t;
typedef struct notify_directory notify_directory_t;
notify_directory_t *notify_staff_load (const char *path, const char *text, char **err);
void notify_staff_destroy (notify_directory_t **p);
/* The person of role named name (name may be NULL or "": then by estate and
 * team for a team lead, by estate for a manager). NULL when nobody fits. */
const notify_staff_t *notify_staff_find (const notify_directory_t *dir, int to, const char *name, const char *estate,
                                         const char *team);
size_t notify_staff_count (const notify_directory_t *dir);

/* --- limits (limits.c) ---------------------------------------------------------------- */

typedef struct {
    int tz_min;                 /* the estates' zone, minutes east of UTC (Asia/Shanghai: 480) */
    char tz_name[48];
    int quiet_from, quiet_to;   /* minutes of the local day; from == to: no quiet hours */
    uint32_t sms_daily_cap;     /* per recipient per local day; 0: none */
    int64_t retry_base_ms, retry_max_ms, max_age_ms, await_ms;
    uint32_t max_attempts;
} notify_limits_t;

/* Whether an SMS may not go at t (local quiet hours). */
bool notify_quiet (const notify_limits_t *l, int64_t t_ms);
/* The end of the quiet hours t falls in (the next quiet_to), or t itself. */
int64_t notify_quiet_end (const notify_limits_t *l, int64_t t_ms);
/* The local day of t (days since 1970-01-01 in the zone). */
uint32_t notify_local_day (const notify_limits_t *l, int64_t t_ms);
/* The first moment SMS may go on the local day after t's. */
int64_t notify_next_morning (const notify_limits_t *l, int64_t t_ms);
/* The wait before attempt `attempts + 1` of message id: exponential from
 * retry_base, capped at retry_max, with jitter (half fixed, half from a hash of
 * id and attempts: pure, so a redone batch decides the same). */
int64_t notify_backoff_ms (const notify_limits_t *l, const char *id, uint32_t attempts);
/* "HH:MM-HH:MM" -> minutes; PM_EINVAL if not. */
int notify_parse_quiet (const char *s, int *from, int *to);
/* "Asia/Shanghai", "UTC", "+08:00" -> minutes east of UTC; PM_EINVAL if not. */
int notify_parse_zone (const char *s, int *tz_min);

/* Whether address opted out of channel. */
bool notify_opted_out (pm_txn_t *txn, int channel, const char *address);
/* SMS counted against address on the local day. */
uint32_t notify_cap_get (pm_txn_t *txn, uint32_t day, const char *address);
void notify_cap_add (pm_txn_t *txn, uint32_t day, const char *address);
int notify_on_optout_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int notify_on_caps_prune (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                          pm_out_t *out);

/* --- the app context (app.c) ----------------------------------------------------------- */

typedef struct notify_dispatch notify_dispatch_t;

struct notify_app {
    pm_daemon_t *d;
    notify_templates_t *templates;
    notify_rules_t *rules;
    notify_directory_t *staff;
    notify_limits_t limits;
    notify_dispatch_t *dispatch;
};

void *notify_app_new (pm_daemon_t *d, const pm_config_t *cfg);
void notify_app_destroy (void *app);
/* The spec's committed hook: the dispatcher looks for due messages. */
void notify_app_committed (void *app);

/* --- contacts (contacts.c) ----------------------------------------------------------- */

int notify_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
int notify_on_contact_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
/* The unit's contacts, or NULL (arena). */
Pm__Notify__ContactRecord *notify_contacts (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id);

/* --- invoices (invoices.c) ------------------------------------------------------------ */

int notify_on_invoice (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
/* Whether notify's projection holds invoice_id as settled (or void). */
bool notify_invoice_settled (pm_txn_t *txn, const char *invoice_id);

/* --- planning: events into messages (plan.c) ------------------------------------------ */

/* Every message-producing event: rules, recipients, messages (snapshot events ignored). */
int notify_on_event (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out);
/* Plans the owners' messages of the events that waited for unit_id's contacts. */
void notify_plan_awaiting (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, pm_out_t *out);
int notify_on_await_expired (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                             pm_out_t *out);

/* --- deliveries (deliveries.c) --------------------------------------------------------- */

/* What plan.c asks deliveries to create: one message to one recipient. */
typedef struct {
    const Pm__V1__Event *ev;
    const notify_rule_t *rule;
    int channel;
    const char *address;      /* "" when the recipient has none */
    const char *name, *role, *owner_key;
    const char *unit_id, *estate_id, *notice_id, *invoice_id, *topic;
    const char *subject, *body;
    int64_t due_ms;
    const char *fail_reason;  /* set: no usable address, a dead letter at once */
} notify_draft_t;

/* Creates the message unless its dedupe key exists. PM_OK (or the txn error). */
int notify_message_create (pm_ctx_t *ctx, pm_txn_t *txn, const notify_draft_t *dr, pm_out_t *out);
/* Drops the waiting messages indexed under key in table (topics or
 * by_invoice): state DROPPED with why, counted under total:dropped:<what>. */
void notify_drop_indexed (pm_ctx_t *ctx, pm_txn_t *txn, int table, const char *key, const char *what,
                          const char *why, pm_out_t *out);
/* A message as an operator sees it (arena). */
Pm__V1__MessageView *notify_message_view (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__Notify__MessageRecord *rec, bool text);
const char *notify_state_name (int state);
/* Whether a is a usable address on channel: a mainland mobile (13812345678)
 * or +E.164 for sms, name@domain.tld for email. */
bool notify_address_ok (int channel, const char *a);
/* The address masked for people: 138****5678, z***@example.com (arena). */
const char *notify_mask (pm_arena_t *a, const char *address);

int notify_on_message_retry (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int notify_on_message_drop (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);

/* One message handed to a gateway (malloc'd, the dispatcher's). */
typedef struct {
    char *message_id, *dedupe_key, *template_name, *address, *name, *subject, *body, *unit_id;
    int channel;
    unsigned segments, attempts;
} notify_send_t;

void notify_send_free (notify_send_t *m);

/* A gateway's answer. */
enum { NOTIFY_OK = 0, NOTIFY_RETRY, NOTIFY_PERMANENT };
typedef struct {
    char message_id[24];
    int outcome;             /* NOTIFY_OK, NOTIFY_RETRY, NOTIFY_PERMANENT */
    int64_t retry_after_ms;  /* RETRY: the provider asked to wait this long (0: our backoff) */
    char reason[256];
    char provider_ref[96];
} notify_result_t;

/* The dispatcher's writes (pm_daemon_write): claim due messages of one
 * channel, report gateways' answers, requeue what a previous process left
 * SENDING. Each resets its outputs first (a batch may be redone). */
typedef struct {
    int channel;
    void **keys;               /* the ready entries asked for (malloc'd copies of their keys) */
    size_t *klens;
    size_t n;
    notify_send_t **claimed;   /* out: now SENDING (malloc'd) */
    size_t nclaimed;
} notify_claim_t;
int notify_claim_write (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out);

typedef struct {
    notify_result_t *results;
    size_t n;
} notify_report_t;
int notify_report_write (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out);

typedef struct {
    size_t requeued;           /* out */
} notify_requeue_t;
int notify_requeue_write (pm_ctx_t *ctx, pm_txn_t *txn, void *arg, pm_out_t *out);

/* --- reads (reads.c) ----------------------------------------------------------------------- */

int notify_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
int notify_on_message_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out);
void notify_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r);
void notify_gauges (pm_ctx_t *ctx, pm_txn_t *txn);
int notify_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap);

/* --- the dispatcher (dispatch.c) -------------------------------------------------------- */

typedef struct notify_gateway notify_gateway_t;

/* Creates the dispatcher with one gateway per channel from [notify]. NULL
 * (after logging why, naming the config line) on a bad config. */
notify_dispatch_t *notify_dispatch_new (notify_app_t *app, const pm_config_t *cfg);
void notify_dispatch_destroy (notify_dispatch_t **p);
/* Looks for due messages now (after a commit, a send, a timer). */
void notify_dispatch_kick (notify_dispatch_t *dp);
/* Replaces a channel's gateway (tests); takes g. */
void notify_dispatch_set_gateway (notify_dispatch_t *dp, int channel, notify_gateway_t *g);
/* Nothing claimed, in flight or waiting to be reported, and no write queued. */
bool notify_dispatch_idle (const notify_dispatch_t *dp);
/* The dispatcher's own gauges: in flight and drain rate per channel. */
void notify_dispatch_gauges (notify_dispatch_t *dp, pm_metrics_t *m);

/* --- the meta counters every part keeps ------------------------------------------------- */

void notify_count (pm_txn_t *txn, const char *what, uint64_t by);

#endif
