/* openapi.c - GET /v1/openapi.json, made from the protobuf descriptors at
 * start, so it always says what this binary serves: one path per method of
 * Request.body (method `a.b.c` is field `a_b_c`, dots for underscores), its
 * request schema from the body message and its reply schema from the Reply
 * field of the same name, every nested message a component schema. Methods
 * no role may call over HTTP (the worker's own, tokens) are left out; each
 * operation says whether it is a read and which roles may call it. */
#define _GNU_SOURCE
#include "gateway.h"
#include "pm/mem.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static const char *
s_ref (cJSON *schemas, const ProtobufCMessageDescriptor *d);

static cJSON *
s_field (cJSON *schemas, const ProtobufCFieldDescriptor *f)
{
    cJSON *s = cJSON_CreateObject ();
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        cJSON_AddStringToObject (s, "type", "integer");
        cJSON_AddStringToObject (s, "format", "int32");
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        cJSON_AddStringToObject (s, "type", "integer");
        cJSON_AddStringToObject (s, "format", "int64");
        cJSON_AddNumberToObject (s, "minimum", 0);
        cJSON_AddNumberToObject (s, "maximum", 4294967295.0);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        cJSON_AddStringToObject (s, "type", "integer");
        cJSON_AddStringToObject (s, "format", "int64");
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        cJSON_AddStringToObject (s, "type", "integer");
        cJSON_AddStringToObject (s, "format", "int64");
        cJSON_AddNumberToObject (s, "minimum", 0);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        cJSON_AddStringToObject (s, "type", "number");
        cJSON_AddStringToObject (s, "format", "float");
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        cJSON_AddStringToObject (s, "type", "number");
        cJSON_AddStringToObject (s, "format", "double");
        break;
    case PROTOBUF_C_TYPE_BOOL:
        cJSON_AddStringToObject (s, "type", "boolean");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        cJSON_AddStringToObject (s, "type", "string");
        cJSON *e = cJSON_AddArrayToObject (s, "enum");
        for (unsigned i = 0; i < ed->n_values; i++)
            cJSON_AddItemToArray (e, cJSON_CreateString (ed->values[i].name));
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        cJSON_AddStringToObject (s, "type", "string");
        break;
    case PROTOBUF_C_TYPE_BYTES:
        cJSON_AddStringToObject (s, "type", "string");
        cJSON_AddStringToObject (s, "format", "byte");
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        cJSON_AddStringToObject (s, "$ref", s_ref (schemas, f->descriptor));
        break;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        cJSON *a = cJSON_CreateObject ();
        cJSON_AddStringToObject (a, "type", "array");
        cJSON_AddItemToObject (a, "items", s);
        return a;
    }
    return s;
}

/* "#/components/schemas/NAME" for d, adding its schema (and its messages') once. */
static const char *
s_ref (cJSON *schemas, const ProtobufCMessageDescriptor *d)
{
    static char ref[256];
    if (!cJSON_GetObjectItemCaseSensitive (schemas, d->short_name)) {
        cJSON *s = cJSON_CreateObject ();
        cJSON_AddItemToObject (schemas, d->short_name, s); /* first, so a message that refers to itself stops here */
        cJSON_AddStringToObject (s, "type", "object");
        cJSON_AddStringToObject (s, "description", d->name);
        cJSON *props = cJSON_AddObjectToObject (s, "properties");
        for (unsigned i = 0; i < d->n_fields; i++)
            cJSON_AddItemToObject (props, d->fields[i].name, s_field (schemas, &d->fields[i]));
    }
    snprintf (ref, sizeof ref, "#/components/schemas/%s", d->short_name);
    return ref;
}

static cJSON *
s_json_body (cJSON *schema)
{
    cJSON *c = cJSON_CreateObject ();
    cJSON *j = cJSON_AddObjectToObject (c, "application/json");
    cJSON_AddItemToObject (j, "schema", schema);
    return c;
}

static cJSON *
s_ref_schema (const char *ref)
{
    cJSON *s = cJSON_CreateObject ();
    cJSON_AddStringToObject (s, "$ref", ref);
    return s;
}

static void
s_response (cJSON *responses, const char *code, const char *description, cJSON *schema)
{
    cJSON *r = cJSON_AddObjectToObject (responses, code);
    cJSON_AddStringToObject (r, "description", description);
    if (schema)
        cJSON_AddItemToObject (r, "content", s_json_body (schema));
}

static void
s_errors (cJSON *responses, bool reply_codes)
{
    if (reply_codes) {
        s_response (responses, "400", "INVALID: the message names the field, the value and what was expected",
                    s_ref_schema ("#/components/schemas/Answer"));
        s_response (responses, "404", "NOT_FOUND (or no such daemon or method)",
                    s_ref_schema ("#/components/schemas/Answer"));
        s_response (responses, "409", "CONFLICT: the message names the current state and what is needed first",
                    s_ref_schema ("#/components/schemas/Answer"));
        s_response (responses, "500", "INTERNAL", s_ref_schema ("#/components/schemas/Answer"));
        s_response (responses, "503", "UNAVAILABLE, or the daemon did not answer in time: see Retry-After",
                    s_ref_schema ("#/components/schemas/Answer"));
    }
    s_response (responses, "401", "no, unknown or revoked token", s_ref_schema ("#/components/schemas/Error"));
    s_response (responses, "403", "the token's role may not do this", s_ref_schema ("#/components/schemas/Error"));
    s_response (responses, "413", "body over [gateway] max_body_bytes", s_ref_schema ("#/components/schemas/Error"));
}

static cJSON *
s_param (const char *name, const char *in, const char *description, bool required)
{
    cJSON *p = cJSON_CreateObject ();
    cJSON_AddStringToObject (p, "name", name);
    cJSON_AddStringToObject (p, "in", in);
    cJSON_AddStringToObject (p, "description", description);
    cJSON_AddBoolToObject (p, "required", required);
    cJSON *s = cJSON_AddObjectToObject (p, "schema");
    cJSON_AddStringToObject (s, "type", "string");
    return p;
}

/* The fixed schemas: the answer envelope and the gateway's own errors. */
static void
s_envelopes (cJSON *schemas)
{
    cJSON *e = cJSON_AddObjectToObject (schemas, "Error");
    cJSON_AddStringToObject (e, "type", "object");
    cJSON *p = cJSON_AddObjectToObject (e, "properties");
    cJSON_AddItemToObject (p, "status", cJSON_Parse ("{\"type\":\"string\",\"example\":\"FORBIDDEN\"}"));
    cJSON_AddItemToObject (p, "message", cJSON_Parse ("{\"type\":\"string\"}"));
    cJSON *a = cJSON_AddObjectToObject (schemas, "Answer");
    cJSON_AddStringToObject (a, "type", "object");
    cJSON_AddStringToObject (a, "description", "Every forwarded call's answer: the daemon's Reply");
    p = cJSON_AddObjectToObject (a, "properties");
    cJSON_AddItemToObject (p, "id",
                           cJSON_Parse ("{\"type\":\"string\",\"description\":\"the Idempotency-Key (sent or made)\"}"));
    cJSON_AddItemToObject (p, "status", cJSON_Parse ("{\"type\":\"string\",\"enum\":[\"OK\",\"INVALID\",\"NOT_FOUND\","
                                                      "\"CONFLICT\",\"UNAVAILABLE\",\"INTERNAL\"]}"));
    cJSON_AddItemToObject (p, "message", cJSON_Parse ("{\"type\":\"string\"}"));
    cJSON_AddItemToObject (p, "body", cJSON_Parse ("{\"type\":\"object\"}"));
}

static void
s_fixed_paths (cJSON *paths, cJSON *schemas)
{
    cJSON *op, *pp, *params, *res;
    pp = cJSON_AddObjectToObject (paths, "/v1/events");
    op = cJSON_AddObjectToObject (pp, "get");
    cJSON_AddStringToObject (op, "summary", "every daemon's events as Server-Sent Events: replay, then live");
    cJSON_AddStringToObject (op, "description",
                             "Each event: `id: SOURCE:SEQ` and `data:` the event as JSON. Resume with the "
                             "Last-Event-ID header (EventSource sends it) or from=SOURCE:SEQ,...; without "
                             "either the stream starts with the next event. Any role.");
    params = cJSON_AddArrayToObject (op, "parameters");
    cJSON_AddItemToArray (params, s_param ("sources", "query", "daemons, comma-separated (default: all)", false));
    cJSON_AddItemToArray (params,
                          s_param ("types", "query", "event types or prefixes, comma-separated: billing.invoice.", false));
    cJSON_AddItemToArray (params, s_param ("from", "query", "the last event held per source: intake:120,billing:7", false));
    cJSON_AddItemToArray (params, s_param ("Last-Event-ID", "header", "the last event received: billing:7", false));
    res = cJSON_AddObjectToObject (op, "responses");
    cJSON *ok = cJSON_AddObjectToObject (res, "200");
    cJSON_AddStringToObject (ok, "description", "text/event-stream");
    s_response (res, "400", "bad sources, types or from", s_ref_schema ("#/components/schemas/Error"));
    s_response (res, "410", "Last-Event-ID is older than the log's retention", s_ref_schema ("#/components/schemas/Error"));
    s_errors (res, false);

    pp = cJSON_AddObjectToObject (paths, "/v1/webhooks");
    op = cJSON_AddObjectToObject (pp, "post");
    cJSON_AddStringToObject (op, "summary", "subscribe a URL to events (admin)");
    cJSON_AddStringToObject (op, "description",
                             "Each matching event is POSTed as JSON with Webhook-Id (the event id), Webhook-Timestamp "
                             "(seconds) and Webhook-Signature: v1,base64(HMAC-SHA256(secret, id.timestamp.body)). "
                             "In order, at least once; failures retry at once, after 1 min, 5 min, 30 min, 2 h, 6 h, "
                             "then daily, and pause after 3 days (pmctl webhook resume ID).");
    cJSON *rb = cJSON_AddObjectToObject (op, "requestBody");
    cJSON_AddItemToObject (rb, "content",
                           s_json_body (s_ref_schema (s_ref (schemas, &pm__v1__gateway_webhook_create_request__descriptor))));
    res = cJSON_AddObjectToObject (op, "responses");
    s_response (res, "200", "the subscription", s_ref_schema ("#/components/schemas/Answer"));
    s_errors (res, true);
    op = cJSON_AddObjectToObject (pp, "get");
    cJSON_AddStringToObject (op, "summary", "the subscriptions, their cursors and failures (admin)");
    res = cJSON_AddObjectToObject (op, "responses");
    s_response (res, "200", "GatewayWebhookListReply in body", s_ref_schema ("#/components/schemas/Answer"));
    s_ref (schemas, &pm__v1__gateway_webhook_list_reply__descriptor);
    s_errors (res, false);
    pp = cJSON_AddObjectToObject (paths, "/v1/webhooks/{id}/resume");
    op = cJSON_AddObjectToObject (pp, "post");
    cJSON_AddStringToObject (op, "summary", "a paused or retrying subscription delivers again from its cursor (admin)");
    params = cJSON_AddArrayToObject (op, "parameters");
    cJSON_AddItemToArray (params, s_param ("id", "path", "WH-1", true));
    res = cJSON_AddObjectToObject (op, "responses");
    s_response (res, "200", "the subscription", s_ref_schema ("#/components/schemas/Answer"));
    s_errors (res, true);
    pp = cJSON_AddObjectToObject (paths, "/v1/webhooks/{id}");
    op = cJSON_AddObjectToObject (pp, "delete");
    cJSON_AddStringToObject (op, "summary", "delete a subscription (admin)");
    params = cJSON_AddArrayToObject (op, "parameters");
    cJSON_AddItemToArray (params, s_param ("id", "path", "WH-1", true));
    res = cJSON_AddObjectToObject (op, "responses");
    s_response (res, "200", "the deleted subscription", s_ref_schema ("#/components/schemas/Answer"));
    s_errors (res, true);

    const char *open[][2] = { { "/healthz", "is the gateway up (no token)" },
                              { "/metrics", "Prometheus text (no token)" },
                              { "/v1/openapi.json", "this document (no token)" },
                              { "/", "the operations board (no token; it asks for one)" } };
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        pp = cJSON_AddObjectToObject (paths, open[i][0]);
        op = cJSON_AddObjectToObject (pp, "get");
        cJSON_AddStringToObject (op, "summary", open[i][1]);
        cJSON_AddItemToArray (cJSON_AddArrayToObject (op, "security"), cJSON_CreateObject ());
        res = cJSON_AddObjectToObject (op, "responses");
        cJSON_AddStringToObject (cJSON_AddObjectToObject (res, "200"), "description", "OK");
    }
}

char *
gw_openapi (const gw_t *gw, const char *const *daemons, size_t nd)
{
    cJSON *root = cJSON_CreateObject ();
    cJSON_AddStringToObject (root, "openapi", "3.0.3");
    cJSON *info = cJSON_AddObjectToObject (root, "info");
    cJSON_AddStringToObject (info, "title", "物业集中交付 move-in operations API (pm-gateway)");
    cJSON_AddStringToObject (info, "version", "1");
    cJSON_AddStringToObject (info, "description",
                             "Every daemon method as POST /v1/{daemon}/{method} with the method's body as JSON "
                             "(field names as in the .proto files, 64-bit integers as numbers, enums by name, "
                             "bytes as base64). The answer is {id, status, message, body}. Idempotency-Key becomes "
                             "the request id: a retry with the same key gets the first answer and changes nothing. "
                             "Status: OK 200, INVALID 400, NOT_FOUND 404, CONFLICT 409, UNAVAILABLE 503 "
                             "(Retry-After), INTERNAL 500. Generated from the proto descriptors at start.");
    cJSON *comp = cJSON_AddObjectToObject (root, "components");
    cJSON *sec = cJSON_AddObjectToObject (comp, "securitySchemes");
    cJSON *bearer = cJSON_AddObjectToObject (sec, "bearer");
    cJSON_AddStringToObject (bearer, "type", "http");
    cJSON_AddStringToObject (bearer, "scheme", "bearer");
    cJSON *schemas = cJSON_AddObjectToObject (comp, "schemas");
    s_envelopes (schemas);
    cJSON *security = cJSON_AddArrayToObject (root, "security");
    cJSON *req_bearer = cJSON_CreateObject ();
    cJSON_AddItemToObject (req_bearer, "bearer", cJSON_CreateArray ());
    cJSON_AddItemToArray (security, req_bearer);
    cJSON *paths = cJSON_AddObjectToObject (root, "paths");

    const ProtobufCMessageDescriptor *rd = &pm__v1__request__descriptor;
    for (unsigned i = 0; i < rd->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &rd->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        char method[128];
        snprintf (method, sizeof method, "%s", f->name);
        for (char *p = method; *p; p++)
            if (*p == '_')
                *p = '.';
        size_t dl = strcspn (method, ".");
        char daemon[64];
        snprintf (daemon, sizeof daemon, "%.*s", (int) dl, method);
        bool any = strcmp (daemon, "ops") == 0 || strcmp (daemon, "events") == 0;
        cJSON *roles = cJSON_CreateArray ();
        char why[512];
        for (int r = 0; r < GW_NROLES; r++)
            if (gw_allowed (gw, r, any ? "intake" : daemon, method, why, sizeof why))
                cJSON_AddItemToArray (roles, cJSON_CreateString (gw_role_name (r)));
        if (cJSON_GetArraySize (roles) == 0) {
            cJSON_Delete (roles);
            continue; /* not served over HTTP */
        }
        char path[200];
        snprintf (path, sizeof path, "/v1/%s/%s", any ? "{daemon}" : daemon, method);
        cJSON *op = cJSON_CreateObject ();
        cJSON_AddItemToObject (cJSON_AddObjectToObject (paths, path), "post", op);
        cJSON_AddStringToObject (op, "operationId", f->name);
        cJSON_AddStringToObject (op, "summary", method);
        cJSON_AddItemToArray (cJSON_AddArrayToObject (op, "tags"), cJSON_CreateString (any ? "every daemon" : daemon));
        cJSON_AddBoolToObject (op, "x-pm-read", gw_is_read (gw, method));
        cJSON_AddItemToObject (op, "x-pm-roles", roles);
        cJSON *params = cJSON_AddArrayToObject (op, "parameters");
        cJSON_AddItemToArray (params, s_param ("Idempotency-Key", "header",
                                               "request id: a retry with the same key gets the first answer", false));
        if (any) {
            cJSON *p = s_param ("daemon", "path", "the daemon to ask", true);
            cJSON *e = cJSON_AddArrayToObject (cJSON_GetObjectItem (p, "schema"), "enum");
            for (size_t k = 0; k < nd; k++)
                cJSON_AddItemToArray (e, cJSON_CreateString (daemons[k]));
            cJSON_AddItemToArray (params, p);
        }
        cJSON *rb = cJSON_AddObjectToObject (op, "requestBody");
        cJSON_AddItemToObject (rb, "content", s_json_body (s_ref_schema (s_ref (schemas, f->descriptor))));
        cJSON *res = cJSON_AddObjectToObject (op, "responses");
        const ProtobufCFieldDescriptor *rf =
            protobuf_c_message_descriptor_get_field_by_name (&pm__v1__reply__descriptor, f->name);
        cJSON *okschema = cJSON_CreateObject ();
        cJSON *all = cJSON_AddArrayToObject (okschema, "allOf");
        cJSON_AddItemToArray (all, s_ref_schema ("#/components/schemas/Answer"));
        if (rf && rf->type == PROTOBUF_C_TYPE_MESSAGE) {
            cJSON *b = cJSON_CreateObject ();
            cJSON *bp = cJSON_AddObjectToObject (b, "properties");
            cJSON_AddItemToObject (bp, "body", s_ref_schema (s_ref (schemas, rf->descriptor)));
            cJSON_AddItemToArray (all, b);
        }
        s_response (res, "200", "OK", okschema);
        s_errors (res, true);
    }
    s_fixed_paths (paths, schemas);
    char *s = cJSON_PrintUnformatted (root);
    cJSON_Delete (root);
    if (!s)
        pm_oom ("openapi", 0);
    return s;
}
