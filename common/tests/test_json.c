/* test_json.c - pm_json_to_msg / pm_msg_to_json on the pm.v1 messages, and on a
 * hand-written descriptor that covers the types pm.v1 does not use (bytes,
 * float, double, sint32, repeated scalars, a scalar oneof, a proto2 optional). */
#define _GNU_SOURCE
#include "support.h"

#include "pm/json.h"
#include "pm/v1/envelope.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a test message: pmtest.Kitchen ---------------------------------------- */

typedef struct {
    ProtobufCMessage base;
    ProtobufCBinaryData b;           /* 1 bytes */
    size_t n_rb;
    ProtobufCBinaryData *rb;         /* 2 repeated bytes */
    protobuf_c_boolean flag;         /* 3 bool */
    float f;                         /* 4 float */
    double d;                        /* 5 double */
    int64_t i64;                     /* 6 int64 */
    uint64_t u64;                    /* 7 uint64 */
    int32_t s32;                     /* 8 sint32 */
    Pm__V1__MetricKind kind;         /* 9 enum */
    size_t n_ri;
    int32_t *ri;                     /* 10 repeated int32 */
    size_t n_rs;
    char **rs;                       /* 11 repeated string */
    size_t n_rk;
    Pm__V1__MetricKind *rk;          /* 12 repeated enum */
    protobuf_c_boolean has_opt;
    int32_t opt;                     /* 13 optional int32 (proto2 style) */
    uint32_t choice_case;
    union {
        char *name;                  /* 14 oneof choice */
        int32_t num;                 /* 15 oneof choice */
    };
    Pm__V1__Owner *owner;            /* 16 message */
    char *label;                     /* 17 string */
} Kitchen;

extern const ProtobufCMessageDescriptor kitchen_descriptor;

static void
s_kitchen_init (ProtobufCMessage *m)
{
    Kitchen *k = (Kitchen *) m;
    memset (k, 0, sizeof *k);
    k->base.descriptor = &kitchen_descriptor;
    k->label = (char *) protobuf_c_empty_string;
}

#define KF(nm, id, lab, ty, q, member, desc, def, fl)                                        \
    { nm, id, PROTOBUF_C_LABEL_##lab, PROTOBUF_C_TYPE_##ty, q, offsetof (Kitchen, member),    \
      desc, def, fl, 0, NULL, NULL }

static const ProtobufCFieldDescriptor s_kitchen_fields[] = {
    KF ("b", 1, NONE, BYTES, 0, b, NULL, NULL, 0),
    KF ("rb", 2, REPEATED, BYTES, offsetof (Kitchen, n_rb), rb, NULL, NULL, 0),
    KF ("flag", 3, NONE, BOOL, 0, flag, NULL, NULL, 0),
    KF ("f", 4, NONE, FLOAT, 0, f, NULL, NULL, 0),
    KF ("d", 5, NONE, DOUBLE, 0, d, NULL, NULL, 0),
    KF ("i64", 6, NONE, INT64, 0, i64, NULL, NULL, 0),
    KF ("u64", 7, NONE, UINT64, 0, u64, NULL, NULL, 0),
    KF ("s32", 8, NONE, SINT32, 0, s32, NULL, NULL, 0),
    KF ("kind", 9, NONE, ENUM, 0, kind, &pm__v1__metric_kind__descriptor, NULL, 0),
    KF ("ri", 10, REPEATED, INT32, offsetof (Kitchen, n_ri), ri, NULL, NULL,
        PROTOBUF_C_FIELD_FLAG_PACKED),
    KF ("rs", 11, REPEATED, STRING, offsetof (Kitchen, n_rs), rs, NULL, NULL, 0),
    KF ("rk", 12, REPEATED, ENUM, offsetof (Kitchen, n_rk), rk,
        &pm__v1__metric_kind__descriptor, NULL, PROTOBUF_C_FIELD_FLAG_PACKED),
    KF ("opt", 13, OPTIONAL, INT32, offsetof (Kitchen, has_opt), opt, NULL, NULL, 0),
    KF ("name", 14, NONE, STRING, offsetof (Kitchen, choice_case), name, NULL, NULL,
        PROTOBUF_C_FIELD_FLAG_ONEOF),
    KF ("num", 15, NONE, INT32, offsetof (Kitchen, choice_case), num, NULL, NULL,
        PROTOBUF_C_FIELD_FLAG_ONEOF),
    KF ("owner", 16, NONE, MESSAGE, 0, owner, &pm__v1__owner__descriptor, NULL, 0),
    KF ("label", 17, NONE, STRING, 0, label, NULL, &protobuf_c_empty_string, 0),
};

/* indices into s_kitchen_fields, by strcmp of the names */
static const unsigned s_kitchen_by_name[] = {
    0,  /* b */
    4,  /* d */
    3,  /* f */
    2,  /* flag */
    5,  /* i64 */
    8,  /* kind */
    16, /* label */
    13, /* name */
    14, /* num */
    12, /* opt */
    15, /* owner */
    1,  /* rb */
    9,  /* ri */
    11, /* rk */
    10, /* rs */
    7,  /* s32 */
    6,  /* u64 */
};

static const ProtobufCIntRange s_kitchen_ranges[] = { { 1, 0 }, { 0, 17 } };

const ProtobufCMessageDescriptor kitchen_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "pmtest.Kitchen", "Kitchen", "Kitchen", "pmtest",
    sizeof (Kitchen),
    17, s_kitchen_fields, s_kitchen_by_name,
    1, s_kitchen_ranges,
    s_kitchen_init,
    NULL, NULL, NULL,
};

/* ---- helpers --------------------------------------------------------------- */

/* pm_json_to_msg on JSON text; the text must parse. */
static ProtobufCMessage *
s_parse (const ProtobufCMessageDescriptor *desc, const char *text, char **err)
{
    cJSON *j = cJSON_Parse (text);
    if (!j)
        fail_msg ("test JSON does not parse: %s", text);
    ProtobufCMessage *m = pm_json_to_msg (desc, j, err);
    cJSON_Delete (j);
    return m;
}

/* Parsing text must fail with an error containing want. */
static void
s_expect_err (const ProtobufCMessageDescriptor *desc, const char *text, const char *want)
{
    char *err = NULL;
    ProtobufCMessage *m = s_parse (desc, text, &err);
    if (m) {
        protobuf_c_message_free_unpacked (m, NULL);
        fail_msg ("expected an error containing \"%s\" for %s", want, text);
    }
    assert_non_null (err);
    if (!strstr (err, want))
        fail_msg ("error \"%s\" does not contain \"%s\"", err, want);
    free (err);
}

/* Parsing text must fail with exactly want. */
static void
s_expect_err_exact (const ProtobufCMessageDescriptor *desc, const char *text, const char *want)
{
    char *err = NULL;
    ProtobufCMessage *m = s_parse (desc, text, &err);
    assert_null (m);
    assert_non_null (err);
    assert_string_equal (err, want);
    free (err);
}

/* msg as JSON must equal the JSON text want (key order ignored). */
static void
s_expect_json (const ProtobufCMessage *msg, const char *want)
{
    cJSON *got = pm_msg_to_json (msg);
    cJSON *w = cJSON_Parse (want);
    assert_non_null (got);
    assert_non_null (w);
    if (!cJSON_Compare (got, w, 1)) {
        char *s = cJSON_PrintUnformatted (got);
        print_error ("got:  %s\nwant: %s\n", s, want);
        free (s);
        fail ();
    }
    cJSON_Delete (got);
    cJSON_Delete (w);
}

/* Parses text, checks the message is valid, packs and unpacks it, and expects
 * both the parsed and the unpacked message to print back as text. */
static ProtobufCMessage *
s_roundtrip (const ProtobufCMessageDescriptor *desc, const char *text)
{
    char *err = NULL;
    ProtobufCMessage *m = s_parse (desc, text, &err);
    if (!m)
        fail_msg ("parse failed: %s", err);
    assert_null (err);
    assert_true (protobuf_c_message_check (m));
    s_expect_json (m, text);

    size_t n = protobuf_c_message_get_packed_size (m);
    uint8_t *buf = malloc (n ? n : 1);
    assert_non_null (buf);
    assert_int_equal (protobuf_c_message_pack (m, buf), n);
    ProtobufCMessage *u = protobuf_c_message_unpack (desc, NULL, n, buf);
    assert_non_null (u);
    s_expect_json (u, text);
    protobuf_c_message_free_unpacked (u, NULL);
    free (buf);
    return m;
}

/* ---- pm.v1 ------------------------------------------------------------------ */

static void
test_request_roundtrip (void **state)
{
    const char *text =
        "{\"id\":\"01J0000000000000000000000A\",\"method\":\"intake.import\","
        "\"actor\":\"pmctl:alice\",\"intake_import\":{\"batch_id\":\"import:abc\","
        "\"chunk_no\":2,\"file_name\":\"units.csv\",\"rows\":["
        "{\"line\":2,\"estate_id\":\"E1\",\"estate_name\":\"Harbour View\",\"building\":\"A\","
        "\"unit\":\"1201\",\"floor\":\"12\",\"area_m2\":\"89.50\",\"owner_name\":\"张三\","
        "\"phone\":\"13812345678\",\"id_number\":\"110101199001011234\"},"
        "{\"line\":3,\"estate_id\":\"E1\",\"unit\":\"1202\",\"email\":\"li@example.com\"}]}}";
    Pm__V1__Request *r = (Pm__V1__Request *) s_roundtrip (&pm__v1__request__descriptor, text);
    assert_string_equal (r->method, "intake.import");
    assert_string_equal (r->actor, "pmctl:alice");
    assert_int_equal (r->body_case, PM__V1__REQUEST__BODY_INTAKE_IMPORT);
    Pm__V1__IntakeImportRequest *ii = r->intake_import;
    assert_non_null (ii);
    assert_string_equal (ii->batch_id, "import:abc");
    assert_int_equal (ii->chunk_no, 2);
    assert_int_equal (ii->n_rows, 2);
    assert_int_equal (ii->rows[0]->line, 2);
    assert_string_equal (ii->rows[0]->owner_name, "张三");
    assert_string_equal (ii->rows[0]->area_m2, "89.50");
    assert_int_equal (ii->rows[1]->line, 3);
    assert_string_equal (ii->rows[1]->email, "li@example.com");
    assert_string_equal (ii->rows[1]->phone, "");  /* absent: the default */
    protobuf_c_message_free_unpacked (&r->base, NULL);
}

static void
test_reply_roundtrip (void **state)
{
    const char *text =
        "{\"id\":\"r7\",\"status\":\"NOT_FOUND\",\"message\":\"no unit E1/A-9999\","
        "\"events_replay\":{\"last_seq\":42,\"first_seq\":1,\"events\":["
        "{\"source\":\"intake\",\"seq\":41,\"id\":\"intake:41\",\"type\":\"intake.unit.registered\","
        "\"at_ms\":1764579600000,\"estate_id\":\"E1\",\"unit_id\":\"E1/A-1201\","
        "\"correlation_id\":\"import:abc\",\"unit\":{\"unit_id\":\"E1/A-1201\",\"estate_id\":\"E1\","
        "\"building\":\"A\",\"unit\":\"1201\",\"floor\":-2,\"area_cm2\":8950,\"owners\":["
        "{\"name\":\"张三\",\"phone\":\"13812345678\"},{\"name\":\"李四\",\"email\":\"li@example.com\"}]}},"
        "{\"source\":\"intake\",\"type\":\"heartbeat\",\"heartbeat\":{\"last_seq\":42}}]}}";
    Pm__V1__Reply *r = (Pm__V1__Reply *) s_roundtrip (&pm__v1__reply__descriptor, text);
    assert_int_equal (r->status, PM__V1__STATUS__NOT_FOUND);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_EVENTS_REPLAY);
    Pm__V1__EventsReplayReply *er = r->events_replay;
    assert_int_equal (er->last_seq, 42);
    assert_int_equal (er->n_events, 2);
    Pm__V1__Event *e = er->events[0];
    assert_int_equal (e->seq, 41);
    assert_true (e->at_ms == 1764579600000LL);
    assert_int_equal (e->payload_case, PM__V1__EVENT__PAYLOAD_UNIT);
    assert_int_equal (e->unit->floor, -2);
    assert_true (e->unit->area_cm2 == 8950);
    assert_int_equal (e->unit->n_owners, 2);
    assert_string_equal (e->unit->owners[1]->name, "李四");
    assert_string_equal (e->unit->owners[1]->phone, "");
    assert_int_equal (er->events[1]->payload_case, PM__V1__EVENT__PAYLOAD_HEARTBEAT);
    assert_int_equal (er->events[1]->heartbeat->last_seq, 42);
    protobuf_c_message_free_unpacked (&r->base, NULL);
}

static void
test_enum_by_number (void **state)
{
    char *err = NULL;
    ProtobufCMessage *m = s_parse (&pm__v1__reply__descriptor, "{\"status\":3}", &err);
    assert_non_null (m);
    assert_int_equal (((Pm__V1__Reply *) m)->status, PM__V1__STATUS__CONFLICT);
    s_expect_json (m, "{\"status\":\"CONFLICT\"}");
    protobuf_c_message_free_unpacked (m, NULL);

    m = s_parse (&pm__v1__metric__descriptor, "{\"name\":\"x\",\"kind\":\"HISTOGRAM\"}", &err);
    assert_non_null (m);
    assert_int_equal (((Pm__V1__Metric *) m)->kind, PM__V1__METRIC_KIND__HISTOGRAM);
    protobuf_c_message_free_unpacked (m, NULL);
}

/* Built in C: defaults are left out, a oneof member is always written. */
static void
test_defaults_omitted (void **state)
{
    Pm__V1__Reply r = PM__V1__REPLY__INIT;
    s_expect_json (&r.base, "{}");

    Pm__V1__EventsReplayReply er = PM__V1__EVENTS_REPLAY_REPLY__INIT;
    r.body_case = PM__V1__REPLY__BODY_EVENTS_REPLAY;
    r.events_replay = &er;
    s_expect_json (&r.base, "{\"events_replay\":{}}");

    Pm__V1__Metric mt = PM__V1__METRIC__INIT;
    Pm__V1__Metric *mts[] = { &mt };
    Pm__V1__OpsMetricsReply om = PM__V1__OPS_METRICS_REPLY__INIT;
    om.n_metrics = 1;
    om.metrics = mts;
    mt.name = "pm_requests_total";
    mt.value = 3;
    s_expect_json (&om.base, "{\"metrics\":[{\"name\":\"pm_requests_total\",\"value\":3}]}");
    mt.kind = PM__V1__METRIC_KIND__GAUGE;
    mt.p99 = 0.25;
    s_expect_json (&om.base, "{\"metrics\":[{\"name\":\"pm_requests_total\",\"kind\":\"GAUGE\","
                             "\"value\":3,\"p99\":0.25}]}");
}

/* JSON null is an absent field; {} parses to a message of defaults. */
static void
test_null_is_absent (void **state)
{
    char *err = NULL;
    ProtobufCMessage *m = s_parse (&pm__v1__request__descriptor,
                                   "{\"id\":null,\"events_replay\":null,\"ops_ping\":{}}", &err);
    assert_non_null (m);
    Pm__V1__Request *r = (Pm__V1__Request *) m;
    assert_string_equal (r->id, "");
    assert_int_equal (r->body_case, PM__V1__REQUEST__BODY_OPS_PING);
    assert_non_null (r->ops_ping);
    s_expect_json (m, "{\"ops_ping\":{}}");
    protobuf_c_message_free_unpacked (m, NULL);
}

static void
test_err_unknown_field (void **state)
{
    s_expect_err_exact (&pm__v1__events_replay_request__descriptor, "{\"from_seq\":1,\"x\":2}",
                        "unknown field 'x' in pm.v1.EventsReplayRequest; fields: from_seq, max, raw");
    s_expect_err (&pm__v1__request__descriptor,
                  "{\"intake_import\":{\"rows\":[{\"line\":2},{\"lien\":3}]}}",
                  "intake_import.rows[1]: unknown field 'lien' in pm.v1.ImportRow; fields: line, "
                  "estate_id");
    s_expect_err (&pm__v1__ops_ping_request__descriptor, "{\"a\":1}",
                  "unknown field 'a' in pm.v1.OpsPingRequest; fields: (none)");
}

static void
test_err_wrong_type (void **state)
{
    s_expect_err_exact (&pm__v1__request__descriptor,
                        "{\"method\":\"intake.import\",\"intake_import\":{\"rows\":["
                        "{\"line\":1},{\"line\":2},{\"line\":\"abc\"}]}}",
                        "intake_import.rows[2].line: expected a number, got \"abc\"");
    s_expect_err_exact (&pm__v1__events_replay_request__descriptor, "{\"max\":\"x\"}",
                        "max: expected a number, got \"x\"");
    s_expect_err (&pm__v1__events_replay_request__descriptor, "{\"max\":1.5}",
                  "max: expected an integer, got 1.5");
    s_expect_err (&pm__v1__events_replay_request__descriptor, "{\"max\":-1}",
                  "max: out of range [0, 4294967295], got -1");
    s_expect_err (&pm__v1__events_replay_request__descriptor, "{\"max\":4294967296}",
                  "max: out of range");
    s_expect_err (&pm__v1__request__descriptor, "{\"method\":5}",
                  "method: expected a string, got 5");
    s_expect_err (&pm__v1__request__descriptor, "{\"events_replay\":[1]}",
                  "events_replay: expected an object (pm.v1.EventsReplayRequest), got an array");
    s_expect_err (&pm__v1__intake_import_request__descriptor, "{\"rows\":{}}",
                  "rows: expected an array, got an object");
    s_expect_err (&pm__v1__intake_import_request__descriptor, "{\"rows\":[{},null]}",
                  "rows[1]: null is not allowed");
    s_expect_err (&pm__v1__ops_clock_reply__descriptor, "{\"manual\":1}",
                  "manual: expected true or false, got 1");
    s_expect_err (&pm__v1__request__descriptor, "{\"id\":\"a\",\"id\":\"b\"}",
                  "id: field given twice");
}

static void
test_err_not_object (void **state)
{
    s_expect_err_exact (&pm__v1__request__descriptor, "[1,2]",
                        "expected a JSON object for pm.v1.Request, got an array");
    s_expect_err (&pm__v1__request__descriptor, "\"intake.import\"",
                  "expected a JSON object for pm.v1.Request, got \"intake.import\"");
    char *err = NULL;
    assert_null (pm_json_to_msg (&pm__v1__request__descriptor, NULL, &err));
    assert_non_null (err);
    free (err);
}

static void
test_err_two_oneof_members (void **state)
{
    s_expect_err_exact (&pm__v1__request__descriptor,
                        "{\"events_replay\":{},\"ops_ping\":{}}",
                        "'events_replay' and 'ops_ping' are members of the same oneof; set only one");
    s_expect_err (&pm__v1__reply__descriptor,
                  "{\"events_replay\":{\"events\":[{\"heartbeat\":{},\"unit\":{\"owners\":[]}}]}}",
                  "events_replay.events[0]: 'heartbeat' and 'unit' are members of the same oneof");
}

static void
test_err_bad_enum (void **state)
{
    s_expect_err_exact (&pm__v1__reply__descriptor, "{\"status\":\"NOPE\"}",
                        "status: unknown value \"NOPE\" for pm.v1.Status; values: OK, INVALID, "
                        "NOT_FOUND, CONFLICT, UNAVAILABLE, INTERNAL");
    s_expect_err (&pm__v1__reply__descriptor, "{\"status\":9}",
                  "status: unknown value 9 for pm.v1.Status");
    s_expect_err (&pm__v1__reply__descriptor, "{\"status\":true}",
                  "status: expected a pm.v1.Status value name, got true");
    s_expect_err (&pm__v1__ops_metrics_reply__descriptor,
                  "{\"metrics\":[{\"kind\":\"COUNTER\"},{\"kind\":\"histogram\"}]}",
                  "metrics[1].kind: unknown value \"histogram\" for pm.v1.MetricKind");
}

/* ---- pmtest.Kitchen ---------------------------------------------------------- */

static void
test_kitchen_descriptor_sane (void **state)
{
    for (unsigned i = 0; i < kitchen_descriptor.n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &s_kitchen_fields[i];
        assert_ptr_equal (protobuf_c_message_descriptor_get_field_by_name (&kitchen_descriptor,
                                                                           fd->name), fd);
        assert_ptr_equal (protobuf_c_message_descriptor_get_field (&kitchen_descriptor, fd->id),
                          fd);
    }
}

static void
test_kitchen_roundtrip (void **state)
{
    const char *text =
        "{\"b\":\"aGVsbG8=\",\"rb\":[\"\",\"AAEC/w==\"],\"flag\":true,\"f\":1.5,\"d\":-0.125,"
        "\"i64\":-9007199254740992,\"u64\":\"18446744073709551615\",\"s32\":-7,\"kind\":\"GAUGE\","
        "\"ri\":[1,-2,2147483647],\"rs\":[\"a\",\"\",\"c\"],\"rk\":[\"HISTOGRAM\",\"COUNTER\"],"
        "\"opt\":0,\"name\":\"\",\"owner\":{\"name\":\"王五\"},\"label\":\"x\"}";
    Kitchen *k = (Kitchen *) s_roundtrip (&kitchen_descriptor, text);
    assert_int_equal (k->b.len, 5);
    assert_memory_equal (k->b.data, "hello", 5);
    assert_int_equal (k->n_rb, 2);
    assert_int_equal (k->rb[0].len, 0);
    assert_int_equal (k->rb[1].len, 4);
    assert_memory_equal (k->rb[1].data, "\x00\x01\x02\xff", 4);
    assert_true (k->flag);
    assert_true (k->f == 1.5f);
    assert_true (k->d == -0.125);
    assert_true (k->i64 == -9007199254740992LL);
    assert_true (k->u64 == UINT64_MAX);
    assert_int_equal (k->s32, -7);
    assert_int_equal (k->kind, PM__V1__METRIC_KIND__GAUGE);
    assert_int_equal (k->n_ri, 3);
    assert_int_equal (k->ri[1], -2);
    assert_int_equal (k->n_rs, 3);
    assert_string_equal (k->rs[1], "");
    assert_int_equal (k->rk[0], PM__V1__METRIC_KIND__HISTOGRAM);
    assert_true (k->has_opt);
    assert_int_equal (k->opt, 0);
    assert_int_equal (k->choice_case, 14);
    assert_string_equal (k->name, "");
    assert_string_equal (k->owner->name, "王五");
    protobuf_c_message_free_unpacked (&k->base, NULL);

    /* a scalar oneof member with its default value is still written */
    k = (Kitchen *) s_roundtrip (&kitchen_descriptor, "{\"num\":0}");
    assert_int_equal (k->choice_case, 15);
    protobuf_c_message_free_unpacked (&k->base, NULL);
}

static void
test_kitchen_numbers (void **state)
{
    const ProtobufCMessageDescriptor *kd = &kitchen_descriptor;
    char *err = NULL;

    /* 64-bit: strings accepted; beyond 2^53 written back as strings */
    Kitchen *k = (Kitchen *) s_parse (kd, "{\"i64\":\"-9223372036854775808\",\"u64\":\"42\"}",
                                      &err);
    assert_non_null (k);
    assert_true (k->i64 == INT64_MIN);
    assert_true (k->u64 == 42);
    s_expect_json (&k->base, "{\"i64\":\"-9223372036854775808\",\"u64\":42}");
    protobuf_c_message_free_unpacked (&k->base, NULL);

    k = (Kitchen *) s_parse (kd, "{\"u64\":9007199254740992,\"d\":\"NaN\",\"f\":\"-Infinity\"}",
                             &err);
    assert_non_null (k);
    assert_true (k->u64 == 9007199254740992ULL);
    assert_true (isnan (k->d));
    assert_true (isinf (k->f) && k->f < 0);
    s_expect_json (&k->base, "{\"u64\":9007199254740992,\"d\":\"NaN\",\"f\":\"-Infinity\"}");
    protobuf_c_message_free_unpacked (&k->base, NULL);

    s_expect_err (kd, "{\"u64\":18446744073709551615}",
                  "u64: integers beyond 2^53 are not exact as JSON numbers; send it as a string");
    s_expect_err (kd, "{\"u64\":\"18446744073709551616\"}", "u64: out of range");
    s_expect_err (kd, "{\"u64\":\"-1\"}", "u64: expected a non-negative integer, got \"-1\"");
    s_expect_err (kd, "{\"u64\":-1}", "u64: out of range [0, 18446744073709551615], got -1");
    s_expect_err (kd, "{\"i64\":\"12x\"}", "i64: expected an integer, got \"12x\"");
    s_expect_err (kd, "{\"i64\":\" 12\"}", "i64: expected an integer");
    s_expect_err (kd, "{\"i64\":\"\"}", "i64: expected an integer");
    s_expect_err (kd, "{\"i64\":1e30}", "i64: out of range");
    s_expect_err (kd, "{\"i64\":0.5}", "i64: expected an integer, got 0.5");
    s_expect_err (kd, "{\"s32\":\"5\"}", "s32: expected a number, got \"5\"");
    s_expect_err (kd, "{\"s32\":2147483648}", "s32: out of range [-2147483648, 2147483647]");
    s_expect_err (kd, "{\"ri\":[1,2.5]}", "ri[1]: expected an integer, got 2.5");
    s_expect_err (kd, "{\"f\":1e300}", "f: out of range for a float");
    s_expect_err (kd, "{\"d\":\"1.5\"}", "d: expected a number, got \"1.5\"");
    s_expect_err (kd, "{\"rs\":[\"a\",1]}", "rs[1]: expected a string, got 1");
    s_expect_err (kd, "{\"rk\":[\"GAUGE\",\"X\"]}",
                  "rk[1]: unknown value \"X\" for pm.v1.MetricKind; values: COUNTER, GAUGE, "
                  "HISTOGRAM");
}

static void
test_kitchen_bytes_errors (void **state)
{
    const ProtobufCMessageDescriptor *kd = &kitchen_descriptor;
    s_expect_err (kd, "{\"b\":\"abc\"}", "b: expected standard base64 (with padding), got \"abc\"");
    s_expect_err (kd, "{\"b\":\"!!!!\"}", "b: expected standard base64");
    s_expect_err (kd, "{\"b\":\"aGVsbG8=x\"}", "b: expected standard base64");
    s_expect_err (kd, "{\"b\":\"a-_b\"}", "b: expected standard base64");  /* URL-safe alphabet */
    s_expect_err (kd, "{\"rb\":[\"aGVsbG8=\",\"%%%%\"]}", "rb[1]: expected standard base64");
    s_expect_err (kd, "{\"b\":12}", "b: expected a base64 string, got 12");
}

static void
test_kitchen_oneof (void **state)
{
    const ProtobufCMessageDescriptor *kd = &kitchen_descriptor;
    s_expect_err_exact (kd, "{\"name\":\"a\",\"num\":1}",
                        "'name' and 'num' are members of the same oneof; set only one");
    /* the failed parse frees the string already set (ASan checks) */
    s_expect_err (kd, "{\"num\":1,\"name\":\"a\"}", "'num' and 'name' are members");

    char *err = NULL;
    Kitchen *k = (Kitchen *) s_parse (kd, "{\"name\":null,\"num\":3}", &err);
    assert_non_null (k);
    assert_int_equal (k->choice_case, 15);
    assert_int_equal (k->num, 3);
    assert_false (k->has_opt);
    s_expect_json (&k->base, "{\"num\":3}");
    protobuf_c_message_free_unpacked (&k->base, NULL);
}

/* Errors late in a big input must free everything built before them. */
static void
test_error_frees_partial (void **state)
{
    s_expect_err (&kitchen_descriptor,
                  "{\"b\":\"aGk=\",\"rb\":[\"aGk=\"],\"rs\":[\"x\",\"y\"],\"owner\":{\"name\":\"n\"},"
                  "\"label\":\"l\",\"name\":\"m\",\"ri\":[1,\"two\"]}",
                  "ri[1]: expected a number");
    s_expect_err (&pm__v1__reply__descriptor,
                  "{\"id\":\"x\",\"events_replay\":{\"events\":[{\"id\":\"a\",\"unit\":{\"owners\":"
                  "[{\"name\":\"n\"},{\"name\":\"m\",\"phone\":7}]}}]}}",
                  "events_replay.events[0].unit.owners[1].phone: expected a string, got 7");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_request_roundtrip),
        cmocka_unit_test (test_reply_roundtrip),
        cmocka_unit_test (test_enum_by_number),
        cmocka_unit_test (test_defaults_omitted),
        cmocka_unit_test (test_null_is_absent),
        cmocka_unit_test (test_err_unknown_field),
        cmocka_unit_test (test_err_wrong_type),
        cmocka_unit_test (test_err_not_object),
        cmocka_unit_test (test_err_two_oneof_members),
        cmocka_unit_test (test_err_bad_enum),
        cmocka_unit_test (test_kitchen_descriptor_sane),
        cmocka_unit_test (test_kitchen_roundtrip),
        cmocka_unit_test (test_kitchen_numbers),
        cmocka_unit_test (test_kitchen_bytes_errors),
        cmocka_unit_test (test_kitchen_oneof),
        cmocka_unit_test (test_error_frees_partial),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
