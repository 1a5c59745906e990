/* tokens.c - API tokens and roles.
 *
 * A token is drawn by its creator (pmctl: 32 random bytes) and shown once;
 * the gateway keeps only BLAKE2b-256 of it keyed with the gateway's token key
 * (crypto_generichash). A keyed hash rather than crypto_pwhash: the token is
 * 256 random bits, so there is nothing to slow a guesser down for, and the
 * check runs on every request (10,000 a second); without the key file a stolen
 * store does not even let one test a guess.
 *
 * Roles, as the operators' jobs divide them:
 *   operator     reads, events; writes of intake, inspection, workorder
 *   finance      reads, events; writes of billing
 *   integration  reads and events only
 *   admin        everything, webhooks included
 * A read is a method matching [gateway] read_methods (globs over names, e.g.
 * "*.get *.kpi ops.queues"): the gateway needs no code per method. ops.clock
 * and ops.rebuild are admin's. Tokens are made and revoked only with pmctl on
 * the gateway's host, and the worker's own methods are never served. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/log.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#define S_NAME_MAX 48
#define S_TOKEN_MIN 32
#define S_TOKEN_MAX 256

static const char *const s_roles[GW_NROLES] = {
    [GW_ROLE_OPERATOR] = "operator",
    [GW_ROLE_FINANCE] = "finance",
    [GW_ROLE_INTEGRATION] = "integration",
    [GW_ROLE_ADMIN] = "admin",
};

const char *
gw_role_name (int role)
{
    return role >= 0 && role < GW_NROLES ? s_roles[role] : "?";
}

int
gw_role_parse (const char *s)
{
    for (int i = 0; i < GW_NROLES; i++)
        if (strcmp (s, s_roles[i]) == 0)
            return i;
    return -1;
}

void
gw_token_hash (const gw_t *gw, const char *token, unsigned char out[32])
{
    crypto_generichash (out, 32, (const unsigned char *) token, strlen (token), gw->token_key, sizeof gw->token_key);
}

int
gw_token_check (const gw_t *gw, pm_txn_t *txn, const char *token, char *name, size_t size, int *role)
{
    size_t n = strlen (token);
    if (n < S_TOKEN_MIN || n > S_TOKEN_MAX)
        return PM_ENOTFOUND;
    unsigned char h[32];
    gw_token_hash (gw, token, h);
    MDB_val v;
    if (pm_txn_get (txn, GW_TOKEN_HASHES, h, sizeof h, &v) != PM_OK || v.mv_size == 0 || v.mv_size >= size)
        return PM_ENOTFOUND;
    memcpy (name, v.mv_data, v.mv_size);
    name[v.mv_size] = '\0';
    pm_key_t k;
    Pm__Gateway__TokenRecord *rec;
    if (pm_txn_get_msg (txn, GW_TOKENS, pm_key (&k, "s", name), &pm__gateway__token_record__descriptor, &rec) != PM_OK)
        return PM_ENOTFOUND;
    *role = gw_role_parse (rec->role);
    return *role < 0 ? PM_ENOTFOUND : PM_OK;
}

bool
gw_is_read (const gw_t *gw, const char *method)
{
    for (size_t i = 0; i < gw->nreads; i++)
        if (fnmatch (gw->reads[i], method, 0) == 0)
            return true;
    return false;
}

bool
gw_allowed (const gw_t *gw, int role, const char *daemon, const char *method, char *why, size_t size)
{
    if (strcmp (method, "gateway.webhook.ack") == 0 || strcmp (method, "gateway.webhook.failed") == 0) {
        snprintf (why, size, "%s is the gateway's own bookkeeping and is not served over HTTP", method);
        return false;
    }
    if (strncmp (method, "gateway.token.", 14) == 0) {
        snprintf (why, size,
                  "tokens are managed with pmctl on the gateway's host (pmctl token create NAME --role ROLE), "
                  "never over HTTP");
        return false;
    }
    if (role == GW_ROLE_ADMIN)
        return true;
    if (strncmp (method, "gateway.webhook.", 16) == 0) {
        snprintf (why, size, "webhook subscriptions are admin's; role %s may not call %s", gw_role_name (role), method);
        return false;
    }
    bool read = gw_is_read (gw, method);
    if (read)
        return true;
    bool admin_only = strncmp (method, "gateway.", 8) == 0 || strncmp (method, "ops.", 4) == 0
                      || strncmp (method, "events.", 7) == 0;
    if (!admin_only) {
        if (role == GW_ROLE_OPERATOR
            && (strcmp (daemon, "intake") == 0 || strcmp (daemon, "inspection") == 0 || strcmp (daemon, "workorder") == 0))
            return true;
        if (role == GW_ROLE_FINANCE && strcmp (daemon, "billing") == 0)
            return true;
    }
    snprintf (why, size,
              "role %s may not call %s on %s: it is a write%s; operator writes intake, inspection and workorder, "
              "finance writes billing, integration only reads, admin does everything",
              gw_role_name (role), method, daemon, admin_only ? " kept for admin" : "");
    return false;
}

/* --- handlers ---------------------------------------------------------------------- */

static Pm__V1__GatewayToken *
s_shown (pm_ctx_t *ctx, const Pm__Gateway__TokenRecord *rec)
{
    Pm__V1__GatewayToken *t = pm_arena_alloc (ctx->arena, sizeof *t);
    pm__v1__gateway_token__init (t);
    t->name = rec->name;
    t->role = rec->role;
    t->created_ms = rec->created_ms;
    t->created_by = rec->created_by;
    char hex[17] = "";
    if (rec->hash.len >= 4)
        sodium_bin2hex (hex, sizeof hex, rec->hash.data, 4);
    t->fingerprint = pm_arena_strdup (ctx->arena, hex);
    return t;
}

static bool
s_name_ok (const char *name)
{
    size_t n = strlen (name);
    if (n == 0 || n > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
              || c == '.'))
            return false;
    }
    return true;
}

int
gateway_on_token_create (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    gw_t *gw = ctx->app;
    const Pm__V1__GatewayTokenCreateRequest *q = req->gateway_token_create;
    if (!s_name_ok (q->name))
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "name: '%.64s' is not a token name; use 1 to %d letters, digits, '-', '_' or '.', e.g. erp or "
                         "board-hall-1",
                         q->name, S_NAME_MAX);
    if (gw_role_parse (q->role) < 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "role: '%.32s' is not a role; expected operator, finance, integration or admin", q->role);
    size_t n = strlen (q->token);
    if (n < S_TOKEN_MIN || n > S_TOKEN_MAX)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "token: %zu characters; a token has %d to %d (pmctl token create draws one)", n, S_TOKEN_MIN,
                         S_TOKEN_MAX);
    pm_key_t k;
    Pm__Gateway__TokenRecord *old;
    if (pm_txn_get_msg (txn, GW_TOKENS, pm_key (&k, "s", q->name), &pm__gateway__token_record__descriptor, &old) == PM_OK)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "name: a token '%s' exists already (role %s, created by %s); revoke it first "
                         "(pmctl token revoke %s) or pick another name",
                         q->name, old->role, old->created_by, q->name);
    unsigned char h[32];
    gw_token_hash (gw, q->token, h);
    if (pm_txn_has (txn, GW_TOKEN_HASHES, pm_key_raw (&k, h, sizeof h)))
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "token: this secret is in use by another token; draw a new one");
    Pm__Gateway__TokenRecord rec = PM__GATEWAY__TOKEN_RECORD__INIT;
    rec.name = q->name;
    rec.role = q->role;
    rec.hash.data = h;
    rec.hash.len = sizeof h;
    rec.created_ms = ctx->now_ms;
    rec.created_by = req->actor;
    pm_txn_put_msg (txn, GW_TOKENS, pm_key (&k, "s", q->name), &rec.base);
    pm_txn_put_key (txn, GW_TOKEN_HASHES, pm_key_raw (&k, h, sizeof h), q->name, strlen (q->name));
    Pm__V1__GatewayTokenCreateReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_token_create_reply__init (r);
    r->token = s_shown (ctx, &rec);
    pm_reply_body (out, &r->base);
    pm_info ("gateway: token '%s' (role %s) created by %s", q->name, q->role, req->actor);
    return pm_reply (out, PM__V1__STATUS__OK, "token %s (role %s) created", q->name, q->role);
}

int
gateway_on_token_revoke (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *name = req->gateway_token_revoke->name;
    pm_key_t k;
    Pm__Gateway__TokenRecord *rec;
    if (pm_txn_get_msg (txn, GW_TOKENS, pm_key (&k, "s", name), &pm__gateway__token_record__descriptor, &rec) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "name: no token '%.64s' (pmctl token list shows them)", name);
    pm_txn_del_key (txn, GW_TOKENS, &k);
    pm_txn_del_key (txn, GW_TOKEN_HASHES, pm_key_raw (&k, rec->hash.data, rec->hash.len));
    Pm__V1__GatewayTokenRevokeReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_token_revoke_reply__init (r);
    r->token = s_shown (ctx, rec);
    pm_reply_body (out, &r->base);
    pm_info ("gateway: token '%s' revoked by %s", name, req->actor);
    return pm_reply (out, PM__V1__STATUS__OK, "token %s revoked: requests with it now get 401", name);
}

int
gateway_on_token_list (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    Pm__V1__GatewayTokenListReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__gateway_token_list_reply__init (r);
    size_t cap = pm_txn_count (txn, GW_TOKENS);
    r->tokens = pm_arena_alloc (ctx->arena, (cap + 1) * sizeof *r->tokens);
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, GW_TOKENS, NULL); s.ok && r->n_tokens < cap; pm_scan_next (&s)) {
        Pm__Gateway__TokenRecord *rec;
        if (pm_scan_msg (&s, &pm__gateway__token_record__descriptor, &rec) == PM_OK)
            r->tokens[r->n_tokens++] = s_shown (ctx, rec);
    }
    pm_scan_end (&s);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%zu tokens", r->n_tokens);
}
