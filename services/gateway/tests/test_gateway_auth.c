/* test_gateway_auth - API tokens, roles and the API's description, on a real
 * LMDB: a token is found by its keyed hash and never stored as it is; each
 * role may call what its job needs and nothing else; openapi.json lists every
 * method a role may call, with its schemas, and none of the private ones. */
#define _GNU_SOURCE
#include "support.h"

#include "gateway.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *s_home;

#define TOKEN_A "pmk_AAAAaaaaBBBBbbbbCCCCccccDDDDddddEEEEeeee123"
#define TOKEN_B "pmk_ZZZZzzzzYYYYyyyyXXXXxxxxWWWWwwwwVVVVvvvv987"

static int
s_setup (void **state)
{
    *state = pmt_fixture_new (&gateway_spec, NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    pmt_fixture_destroy ((pmt_fixture_t **) state);
    return 0;
}

static Pm__V1__Reply *
s_create (pmt_fixture_t *f, const char *id, const char *name, const char *role, const char *token, int want)
{
    Pm__V1__GatewayTokenCreateRequest b = PM__V1__GATEWAY_TOKEN_CREATE_REQUEST__INIT;
    b.name = (char *) name;
    b.role = (char *) role;
    b.token = (char *) token;
    return pmt_call_expect (f->d, id, "gateway.token.create", &b.base, want);
}

/* The token's name and role as the HTTP server finds them, or "" and -1. */
static int
s_check (pmt_fixture_t *f, const char *token, char name[64])
{
    pm_txn_t t;
    assert_int_equal (pm_txn_begin_read (&t, pm_daemon_store (f->d)), PM_OK);
    pm_arena_t *a = pm_arena_new ();
    t.arena = a;
    int role = -1;
    if (gw_token_check (pm_daemon_app (f->d), &t, token, name, 64, &role) != PM_OK) {
        role = -1;
        name[0] = '\0';
    }
    pm_txn_abort (&t);
    pm_arena_destroy (&a);
    return role;
}

static bool
s_file_has (const char *path, const char *needle)
{
    FILE *fp = fopen (path, "rb");
    assert_non_null (fp);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream (&buf, &len);
    char chunk[65536];
    size_t n;
    while ((n = fread (chunk, 1, sizeof chunk, fp)) > 0)
        fwrite (chunk, 1, n, m);
    fclose (fp);
    fclose (m);
    bool found = memmem (buf, len, needle, strlen (needle)) != NULL;
    free (buf);
    return found;
}

/* --- tests ------------------------------------------------------------------------------ */

static void
test_token_is_found_by_its_hash_and_never_stored (void **state)
{
    pmt_fixture_t *f = *state;
    Pm__V1__Reply *r = s_create (f, "t1", "erp", "integration", TOKEN_A, PM__V1__STATUS__OK);
    assert_string_equal (r->gateway_token_create->token->name, "erp");
    assert_int_equal (strlen (r->gateway_token_create->token->fingerprint), 8);
    assert_null (strstr (r->message, TOKEN_A)); /* the stored reply does not carry it either */
    s_create (f, "t2", "ops-desk", "operator", TOKEN_B, PM__V1__STATUS__OK);

    char name[64];
    assert_int_equal (s_check (f, TOKEN_A, name), GW_ROLE_INTEGRATION);
    assert_string_equal (name, "erp");
    assert_int_equal (s_check (f, TOKEN_B, name), GW_ROLE_OPERATOR);
    assert_string_equal (name, "ops-desk");
    assert_int_equal (s_check (f, "pmk_nothing-like-a-real-token-at-all-000000", name), -1);
    assert_int_equal (s_check (f, "", name), -1);

    /* the store holds the hash, never the token */
    char *path = pm_xasprintf ("%s/gateway/data.mdb", f->dir);
    assert_false (s_file_has (path, TOKEN_A));
    assert_false (s_file_has (path, TOKEN_B));
    assert_true (s_file_has (path, "ops-desk")); /* (the file is the store: names are in it) */
    free (path);

    /* a restart keeps them (the key file stays) */
    pmt_fixture_restart (f);
    assert_int_equal (s_check (f, TOKEN_A, name), GW_ROLE_INTEGRATION);
    assert_int_equal (pmt_metric (f->d, "gateway_tokens", ""), 2);
}

static void
test_token_refusals_and_revoke (void **state)
{
    pmt_fixture_t *f = *state;
    s_create (f, "t1", "erp", "integration", TOKEN_A, PM__V1__STATUS__OK);
    Pm__V1__Reply *r = s_create (f, "t2", "erp", "admin", TOKEN_B, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "pmctl token revoke erp"));
    r = s_create (f, "t3", "erp2", "boss", TOKEN_B, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "role"));
    r = s_create (f, "t4", "erp2", "admin", "short", PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "token"));
    r = s_create (f, "t5", "has space", "admin", TOKEN_B, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "name"));
    s_create (f, "t6", "erp2", "admin", TOKEN_A, PM__V1__STATUS__CONFLICT); /* the same secret twice */
    /* the same request again is the same answer (pmctl resends on a timeout) */
    r = s_create (f, "t1", "erp", "integration", TOKEN_A, PM__V1__STATUS__OK);

    Pm__V1__GatewayTokenListRequest lb = PM__V1__GATEWAY_TOKEN_LIST_REQUEST__INIT;
    r = pmt_call_expect (f->d, "l1", "gateway.token.list", &lb.base, PM__V1__STATUS__OK);
    assert_int_equal (r->gateway_token_list->n_tokens, 1);
    assert_string_equal (r->gateway_token_list->tokens[0]->role, "integration");
    assert_string_equal (r->gateway_token_list->tokens[0]->created_by, "test");

    Pm__V1__GatewayTokenRevokeRequest rb = PM__V1__GATEWAY_TOKEN_REVOKE_REQUEST__INIT;
    rb.name = "erp";
    pmt_call_expect (f->d, "r1", "gateway.token.revoke", &rb.base, PM__V1__STATUS__OK);
    char name[64];
    assert_int_equal (s_check (f, TOKEN_A, name), -1);
    pmt_call_expect (f->d, "r2", "gateway.token.revoke", &rb.base, PM__V1__STATUS__NOT_FOUND);
    /* the name and the secret are free again */
    s_create (f, "t7", "erp", "finance", TOKEN_A, PM__V1__STATUS__OK);
    assert_int_equal (s_check (f, TOKEN_A, name), GW_ROLE_FINANCE);
}

static void
test_what_each_role_may_call (void **state)
{
    pmt_fixture_t *f = *state;
    gw_t *gw = pm_daemon_app (f->d);
    char why[512];
    struct {
        int role;
        const char *daemon, *method;
        bool ok;
    } cases[] = {
        /* every role reads */
        { GW_ROLE_INTEGRATION, "intake", "intake.unit.get", true },
        { GW_ROLE_FINANCE, "intake", "intake.estate.get", true },
        { GW_ROLE_OPERATOR, "billing", "ops.queues", true },
        { GW_ROLE_INTEGRATION, "workorder", "workorder.kpi", true },
        { GW_ROLE_INTEGRATION, "billing", "billing.report.collection", true },
        { GW_ROLE_INTEGRATION, "intake", "events.replay", true },
        { GW_ROLE_INTEGRATION, "gateway", "gateway.estate.list", true },
        /* writes by role */
        { GW_ROLE_OPERATOR, "intake", "intake.import", true },
        { GW_ROLE_OPERATOR, "inspection", "inspection.defect.record", true },
        { GW_ROLE_OPERATOR, "workorder", "workorder.order.assign", true },
        { GW_ROLE_OPERATOR, "billing", "billing.payment.record", false },
        { GW_ROLE_FINANCE, "billing", "billing.payment.record", true },
        { GW_ROLE_FINANCE, "intake", "intake.import", false },
        { GW_ROLE_INTEGRATION, "intake", "intake.import", false },
        { GW_ROLE_OPERATOR, "notify", "notify.template.set", false },
        { GW_ROLE_ADMIN, "notify", "notify.template.set", true },
        /* the clock and rebuilds are admin's */
        { GW_ROLE_OPERATOR, "intake", "ops.clock", false },
        { GW_ROLE_FINANCE, "billing", "ops.rebuild", false },
        { GW_ROLE_ADMIN, "intake", "ops.clock", true },
        /* webhooks are admin's; tokens and the worker's own methods nobody's over HTTP */
        { GW_ROLE_INTEGRATION, "gateway", "gateway.webhook.list", false },
        { GW_ROLE_ADMIN, "gateway", "gateway.webhook.create", true },
        { GW_ROLE_ADMIN, "gateway", "gateway.token.create", false },
        { GW_ROLE_ADMIN, "gateway", "gateway.token.list", false },
        { GW_ROLE_ADMIN, "gateway", "gateway.webhook.ack", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        why[0] = '\0';
        bool ok = gw_allowed (gw, cases[i].role, cases[i].daemon, cases[i].method, why, sizeof why);
        if (ok != cases[i].ok)
            fail_msg ("role %s, %s on %s: expected %s (%s)", gw_role_name (cases[i].role), cases[i].method,
                      cases[i].daemon, cases[i].ok ? "allowed" : "refused", why);
        if (!ok)
            assert_true (strlen (why) > 20); /* a refusal says why */
    }
    assert_true (!gw_allowed (gw, GW_ROLE_OPERATOR, "billing", "billing.payment.record", why, sizeof why));
    assert_non_null (strstr (why, "finance writes billing"));
}

static void
test_read_methods_come_from_the_config (void **state)
{
    (void) state;
    pmt_fixture_t *f = pmt_fixture_new (&gateway_spec, "[gateway]\nread_methods = *.get, ops.ping\n");
    gw_t *gw = pm_daemon_app (f->d);
    char why[512];
    assert_true (gw_is_read (gw, "intake.unit.get"));
    assert_false (gw_is_read (gw, "workorder.kpi"));
    assert_false (gw_allowed (gw, GW_ROLE_INTEGRATION, "workorder", "workorder.kpi", why, sizeof why));
    assert_true (gw_allowed (gw, GW_ROLE_INTEGRATION, "billing", "ops.ping", why, sizeof why));
    pmt_fixture_destroy (&f);
}

static cJSON *
s_op (cJSON *doc, const char *path)
{
    cJSON *p = cJSON_GetObjectItemCaseSensitive (cJSON_GetObjectItemCaseSensitive (doc, "paths"), path);
    return p ? cJSON_GetObjectItemCaseSensitive (p, "post") : NULL;
}

static void
test_openapi_describes_every_method_from_the_descriptors (void **state)
{
    pmt_fixture_t *f = *state;
    gw_t *gw = pm_daemon_app (f->d);
    static const char *const daemons[] = { "intake", "billing", "gateway" };
    char *text = gw_openapi (gw, daemons, 3);
    cJSON *doc = cJSON_Parse (text);
    free (text);
    assert_non_null (doc);
    assert_string_equal (cJSON_GetObjectItem (doc, "openapi")->valuestring, "3.0.3");

    /* every method of Request.body that some role may call has a path */
    const ProtobufCMessageDescriptor *rd = &pm__v1__request__descriptor;
    char why[512];
    for (unsigned i = 0; i < rd->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &rd->fields[i];
        if (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        char method[128], path[200];
        snprintf (method, sizeof method, "%s", fd->name);
        for (char *p = method; *p; p++)
            *p = *p == '_' ? '.' : *p;
        bool any = strncmp (method, "ops.", 4) == 0 || strncmp (method, "events.", 7) == 0;
        snprintf (path, sizeof path, "/v1/%s/%s", any ? "{daemon}" : strtok (strdupa (method), "."), method);
        bool served = gw_allowed (gw, GW_ROLE_ADMIN, any ? "intake" : strtok (strdupa (method), "."), method, why,
                                  sizeof why);
        if (served != (s_op (doc, path) != NULL))
            fail_msg ("%s: expected %s in openapi.json", path, served ? "a path" : "no path");
    }
    cJSON *op = s_op (doc, "/v1/intake/intake.unit.get");
    assert_non_null (op);
    assert_true (cJSON_IsTrue (cJSON_GetObjectItem (op, "x-pm-read")));
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (op, "x-pm-roles")), 4);
    const char *ref = cJSON_GetObjectItem (
                          cJSON_GetObjectItem (
                              cJSON_GetObjectItem (cJSON_GetObjectItem (cJSON_GetObjectItem (op, "requestBody"), "content"),
                                                   "application/json"),
                              "schema"),
                          "$ref")
                          ->valuestring;
    assert_string_equal (ref, "#/components/schemas/IntakeUnitGetRequest");
    cJSON *schemas = cJSON_GetObjectItem (cJSON_GetObjectItem (doc, "components"), "schemas");
    cJSON *unit = cJSON_GetObjectItem (cJSON_GetObjectItem (schemas, "Unit"), "properties");
    assert_non_null (unit); /* nested messages of replies are components too */
    assert_string_equal (cJSON_GetObjectItem (cJSON_GetObjectItem (unit, "area_cm2"), "format")->valuestring, "int64");
    assert_string_equal (cJSON_GetObjectItem (cJSON_GetObjectItem (unit, "owners"), "type")->valuestring, "array");
    /* intake.import is operator's and admin's */
    op = s_op (doc, "/v1/intake/intake.import");
    assert_false (cJSON_IsTrue (cJSON_GetObjectItem (op, "x-pm-read")));
    char *roles = cJSON_PrintUnformatted (cJSON_GetObjectItem (op, "x-pm-roles"));
    assert_string_equal (roles, "[\"operator\",\"admin\"]");
    free (roles);
    /* the runtime's methods, for any daemon */
    op = s_op (doc, "/v1/{daemon}/ops.queues");
    assert_non_null (op);
    assert_null (s_op (doc, "/v1/gateway/gateway.webhook.ack"));
    assert_null (s_op (doc, "/v1/gateway/gateway.token.create"));
    assert_non_null (cJSON_GetObjectItem (cJSON_GetObjectItem (doc, "paths"), "/v1/events"));
    cJSON_Delete (doc);
}

int
main (void)
{
    pm_log_init ("test_gateway_auth", PM_LOG_ERROR);
    s_home = pmt_tmpdir ();
    setenv ("PM_HOME", s_home, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_token_is_found_by_its_hash_and_never_stored, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_token_refusals_and_revoke, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_what_each_role_may_call, s_setup, s_teardown),
        cmocka_unit_test (test_read_methods_come_from_the_config),
        cmocka_unit_test_setup_teardown (test_openapi_describes_every_method_from_the_descriptors, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    pmt_rmdir (s_home);
    return rc;
}
