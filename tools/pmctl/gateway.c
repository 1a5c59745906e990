/* gateway.c - pmctl's gateway commands: API tokens and webhook subscriptions.
 *
 *   pmctl token create NAME --role ROLE   draws a token, shows it once
 *   pmctl token list | revoke NAME
 *   pmctl webhook list | resume ID | delete ID
 *   pmctl webhook create URL --secret S [--type T]... [--from-start]
 *
 * The token is drawn here (32 random bytes, "pmk_" + base64url) and sent to
 * the gateway once; the gateway keeps only its keyed hash, so this is the
 * only time anyone sees it. */
#include "pmctl.h"

#include "pm/err.h"
#include "pm/json.h"
#include "pm/mem.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* method with body to the gateway; PMCTL_OK with *reply (the caller's) whatever its status. */
static int
s_gateway (pmctl_t *ctl, const char *method, ProtobufCMessage *body, Pm__V1__Reply **reply)
{
    const char *ep = pmctl_endpoint (ctl, "gateway", "command");
    if (!ep) {
        pmctl_unknown_daemon (ctl, "gateway");
        return PMCTL_USAGE;
    }
    pm_client_t *c = pmctl_client (ctl, NULL, "gateway");
    if (!c) {
        fprintf (stderr, "pmctl: cannot connect to gateway at %s\n", ep);
        return PMCTL_USAGE;
    }
    Pm__V1__Request req;
    char id[27];
    pmctl_request (ctl, &req, id, method, body);
    int code = pmctl_call (ctl, c, "gateway", ep, &req, reply);
    pm_client_destroy (&c);
    return code;
}

/* Prints a non-OK reply; PMCTL_FAIL. */
static int
s_refused (const Pm__V1__Reply *r)
{
    fprintf (stderr, "pmctl: gateway: %s: %s\n", pm_status_name (r->status), r->message);
    return PMCTL_FAIL;
}

static const char *
s_when (int64_t ms, char *buf, size_t size)
{
    if (ms <= 0)
        return "-";
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (buf, size, "%Y-%m-%dT%H:%MZ", &tm);
    return buf;
}

/* The whole reply body as JSON, for --json. */
static int
s_print_body (const Pm__V1__Reply *r, const char *method)
{
    ProtobufCMessage *b = pm_body_get (&r->base, method);
    return pmctl_print_json (b ? pm_msg_to_json (b) : cJSON_CreateObject (), false);
}

/* --- token ----------------------------------------------------------------------------- */

static int
s_token_create (pmctl_t *ctl, const char *name, const char *role)
{
    if (sodium_init () < 0) {
        fprintf (stderr, "pmctl: libsodium failed to initialise\n");
        return PMCTL_FAIL;
    }
    unsigned char raw[32];
    randombytes_buf (raw, sizeof raw);
    char b64[sodium_base64_ENCODED_LEN (sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64 (b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (raw, sizeof raw);
    char token[8 + sizeof b64];
    snprintf (token, sizeof token, "pmk_%s", b64);
    Pm__V1__GatewayTokenCreateRequest body = PM__V1__GATEWAY_TOKEN_CREATE_REQUEST__INIT;
    body.name = (char *) name;
    body.role = (char *) role;
    body.token = token;
    Pm__V1__Reply *r = NULL;
    int code = s_gateway (ctl, "gateway.token.create", &body.base, &r);
    if (code != PMCTL_OK)
        return code;
    if (r->status != PM__V1__STATUS__OK) {
        code = s_refused (r);
        pm__v1__reply__free_unpacked (r, NULL);
        return code;
    }
    const char *fp = r->gateway_token_create && r->gateway_token_create->token ? r->gateway_token_create->token->fingerprint
                                                                               : "";
    /* where the board is, to hand the token over in the link's fragment (never sent to the server) */
    Pm__V1__Reply *st = NULL;
    Pm__V1__GatewayStatusRequest sb = PM__V1__GATEWAY_STATUS_REQUEST__INIT;
    const char *url = "";
    if (s_gateway (ctl, "gateway.status", &sb.base, &st) == PMCTL_OK && st->status == PM__V1__STATUS__OK
        && st->gateway_status)
        url = st->gateway_status->url;
    if (ctl->json) {
        cJSON *j = cJSON_CreateObject ();
        cJSON_AddStringToObject (j, "name", name);
        cJSON_AddStringToObject (j, "role", role);
        cJSON_AddStringToObject (j, "token", token);
        cJSON_AddStringToObject (j, "fingerprint", fp);
        cJSON_AddStringToObject (j, "url", url);
        code = pmctl_print_json (j, false);
    }
    else {
        printf ("token %s (role %s, fingerprint %s) - shown only this once, keep it safe:\n%s\n", name, role, fp, token);
        printf ("use it as:   Authorization: Bearer %s\n", token);
        if (*url)
            printf ("the board:   %s#token=%s\n", url, token);
    }
    sodium_memzero (token, sizeof token);
    if (st)
        pm__v1__reply__free_unpacked (st, NULL);
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}

static int
s_token_list (pmctl_t *ctl)
{
    Pm__V1__GatewayTokenListRequest body = PM__V1__GATEWAY_TOKEN_LIST_REQUEST__INIT;
    Pm__V1__Reply *r = NULL;
    int code = s_gateway (ctl, "gateway.token.list", &body.base, &r);
    if (code != PMCTL_OK)
        return code;
    if (r->status != PM__V1__STATUS__OK)
        code = s_refused (r);
    else if (ctl->json)
        code = s_print_body (r, "gateway.token.list");
    else {
        const Pm__V1__GatewayTokenListReply *l = r->gateway_token_list;
        printf ("%-24s %-12s %-18s %-20s %s\n", "NAME", "ROLE", "CREATED", "BY", "FINGERPRINT");
        for (size_t i = 0; l && i < l->n_tokens; i++) {
            char when[32];
            const Pm__V1__GatewayToken *t = l->tokens[i];
            printf ("%-24s %-12s %-18s %-20s %s\n", t->name, t->role, s_when (t->created_ms, when, sizeof when),
                    t->created_by, t->fingerprint);
        }
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}

static int
s_token_revoke (pmctl_t *ctl, const char *name)
{
    Pm__V1__GatewayTokenRevokeRequest body = PM__V1__GATEWAY_TOKEN_REVOKE_REQUEST__INIT;
    body.name = (char *) name;
    Pm__V1__Reply *r = NULL;
    int code = s_gateway (ctl, "gateway.token.revoke", &body.base, &r);
    if (code != PMCTL_OK)
        return code;
    if (r->status != PM__V1__STATUS__OK)
        code = s_refused (r);
    else if (ctl->json)
        code = s_print_body (r, "gateway.token.revoke");
    else
        printf ("%s\n", r->message);
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}

int
pmctl_token (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "role", required_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 },
    };
    const char *role = NULL;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "r:", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        role = optarg;
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos < 1)
        return pmctl_usage_error (ctl, "needs create, list or revoke");
    const char *sub = pos[0];
    if (strcmp (sub, "create") == 0) {
        if (npos != 2)
            return pmctl_usage_error (ctl, "create needs one NAME");
        if (!role)
            return pmctl_usage_error (ctl, "create needs --role operator|finance|integration|admin");
    }
    else if (strcmp (sub, "revoke") == 0) {
        if (npos != 2)
            return pmctl_usage_error (ctl, "revoke needs one NAME");
    }
    else if (strcmp (sub, "list") == 0) {
        if (npos != 1)
            return pmctl_usage_error (ctl, "list takes no arguments");
    }
    else
        return pmctl_usage_error (ctl, "unknown subcommand '%s'", sub);
    if (role && strcmp (sub, "create") != 0)
        return pmctl_usage_error (ctl, "--role goes with create");
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (strcmp (sub, "create") == 0)
        return s_token_create (ctl, pos[1], role);
    if (strcmp (sub, "revoke") == 0)
        return s_token_revoke (ctl, pos[1]);
    return s_token_list (ctl);
}

/* --- webhook --------------------------------------------------------------------------- */

static void
s_hook_line (const Pm__V1__GatewayWebhook *w)
{
    char types[256] = "";
    for (size_t i = 0; i < w->n_types; i++)
        snprintf (types + strlen (types), sizeof types - strlen (types), "%s%s", i ? "," : "", w->types[i]);
    printf ("%-8s %-9s %-9llu %-16s %-7llu %s  %s\n", w->id, w->state, (unsigned long long) w->delivered,
            *w->cursor_event ? w->cursor_event : "-", (unsigned long long) w->behind, w->url, *types ? types : "(all)");
    if (*w->last_error && strcmp (w->state, "ACTIVE") != 0) {
        char when[32];
        printf ("         %u failed attempts at %s; next %s; last error: %s\n", w->attempts, w->pending_event,
                s_when (w->next_attempt_ms, when, sizeof when), w->last_error);
    }
}

static int
s_hook_print (pmctl_t *ctl, const Pm__V1__Reply *r, const char *method, const Pm__V1__GatewayWebhook *w)
{
    if (ctl->json)
        return s_print_body (r, method);
    printf ("%s\n", r->message);
    if (w) {
        printf ("%-8s %-9s %-9s %-16s %-7s %s\n", "ID", "STATE", "DELIVERED", "THROUGH", "BEHIND", "URL  TYPES");
        s_hook_line (w);
    }
    return PMCTL_OK;
}

int
pmctl_webhook (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "secret", required_argument, NULL, 's' },
        { "type", required_argument, NULL, 't' },
        { "from-start", no_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    const char *secret = NULL;
    char *types[32];
    size_t ntypes = 0;
    bool from_start = false;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "s:t:f", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (opt == 's')
            secret = optarg;
        else if (opt == 'f')
            from_start = true;
        else if (ntypes == 32)
            return pmctl_usage_error (ctl, "at most 32 --type");
        else
            types[ntypes++] = optarg;
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos < 1)
        return pmctl_usage_error (ctl, "needs list, create, resume or delete");
    const char *sub = pos[0];
    bool create = strcmp (sub, "create") == 0;
    if (!create && (secret || ntypes || from_start))
        return pmctl_usage_error (ctl, "--secret, --type and --from-start go with create");
    int want;
    if (strcmp (sub, "list") == 0)
        want = 1;
    else if (create || strcmp (sub, "resume") == 0 || strcmp (sub, "delete") == 0)
        want = 2;
    else
        return pmctl_usage_error (ctl, "unknown subcommand '%s'", sub);
    if (npos != want)
        return pmctl_usage_error (ctl, "%s takes %s", sub, want == 1 ? "no arguments" : create ? "one URL" : "one ID");
    if (create && !secret)
        return pmctl_usage_error (ctl, "create needs --secret S (16 to 256 bytes; the receiver checks signatures with it)");
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    Pm__V1__Reply *r = NULL;
    const char *method;
    if (create) {
        Pm__V1__GatewayWebhookCreateRequest body = PM__V1__GATEWAY_WEBHOOK_CREATE_REQUEST__INIT;
        body.url = pos[1];
        body.secret = (char *) secret;
        body.types = types;
        body.n_types = ntypes;
        body.from_start = from_start;
        method = "gateway.webhook.create";
        code = s_gateway (ctl, method, &body.base, &r);
    }
    else if (strcmp (sub, "resume") == 0) {
        Pm__V1__GatewayWebhookResumeRequest body = PM__V1__GATEWAY_WEBHOOK_RESUME_REQUEST__INIT;
        body.id = pos[1];
        method = "gateway.webhook.resume";
        code = s_gateway (ctl, method, &body.base, &r);
    }
    else if (strcmp (sub, "delete") == 0) {
        Pm__V1__GatewayWebhookDeleteRequest body = PM__V1__GATEWAY_WEBHOOK_DELETE_REQUEST__INIT;
        body.id = pos[1];
        method = "gateway.webhook.delete";
        code = s_gateway (ctl, method, &body.base, &r);
    }
    else {
        Pm__V1__GatewayWebhookListRequest body = PM__V1__GATEWAY_WEBHOOK_LIST_REQUEST__INIT;
        method = "gateway.webhook.list";
        code = s_gateway (ctl, method, &body.base, &r);
    }
    if (code != PMCTL_OK)
        return code;
    if (r->status != PM__V1__STATUS__OK)
        code = s_refused (r);
    else if (create)
        code = s_hook_print (ctl, r, method, r->gateway_webhook_create->webhook);
    else if (strcmp (sub, "resume") == 0)
        code = s_hook_print (ctl, r, method, r->gateway_webhook_resume->webhook);
    else if (strcmp (sub, "delete") == 0)
        code = s_hook_print (ctl, r, method, r->gateway_webhook_delete->webhook);
    else if (ctl->json)
        code = s_print_body (r, method);
    else {
        const Pm__V1__GatewayWebhookListReply *l = r->gateway_webhook_list;
        printf ("%-8s %-9s %-9s %-16s %-7s %s\n", "ID", "STATE", "DELIVERED", "THROUGH", "BEHIND", "URL  TYPES");
        for (size_t i = 0; l && i < l->n_webhooks; i++)
            s_hook_line (l->webhooks[i]);
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}
