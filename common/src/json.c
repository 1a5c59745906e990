/* json.c - JSON <-> protobuf-c messages, driven only by the descriptors.
 *
 * Input builds the message in place, attaching every allocation to it as soon
 * as it is made, so that on any error one protobuf_c_message_free_unpacked of
 * the top message releases everything. Storage follows what free_unpacked
 * frees: strings, bytes data, repeated arrays and submessages, all malloc'd. */
#define _GNU_SOURCE
#include "pm/json.h"
#include "pm/mem.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Integers beyond +-2^53 are not exact as JSON numbers (cJSON holds doubles). */
#define S_EXACT_MAX 9007199254740992.0

/* One step of the path to the value being read: a field name, or an index. */
typedef struct s_loc {
    const struct s_loc *up;
    const char *name;  /* NULL: index step */
    size_t index;
} s_loc;

static pthread_once_t s_sodium_once = PTHREAD_ONCE_INIT;

/* The base64 codecs work even if this fails; it is called as libsodium asks. */
static void
s_sodium_init (void)
{
    if (sodium_init () < 0)
        return;
}

#define S_MEMBER(msg, off) ((void *) ((char *) (msg) + (off)))

/* Writes "a.b[2].c" for loc; returns whether anything was written. */
static bool
s_path_print (FILE *f, const s_loc *loc)
{
    if (!loc)
        return false;
    bool any = s_path_print (f, loc->up);
    if (loc->name)
        fprintf (f, "%s%s", any ? "." : "", loc->name);
    else
        fprintf (f, "[%zu]", loc->index);
    return true;
}

/* Short text for a JSON value in an error: the value itself, cut if long. */
static void
s_describe (FILE *f, const cJSON *v)
{
    if (cJSON_IsObject (v)) {
        fputs ("an object", f);
        return;
    }
    if (cJSON_IsArray (v)) {
        fputs ("an array", f);
        return;
    }
    char *s = cJSON_PrintUnformatted (v);
    if (!s) {
        fputs ("a value", f);
        return;
    }
    if (strlen (s) > 64)
        fprintf (f, "%.60s...", s);
    else
        fputs (s, f);
    free (s);
}

/* Sets *err to "<path>: <message>[, got <value>]" (malloc'd). Returns -1. */
static int
s_fail (char **err, const s_loc *loc, const cJSON *got, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (char **err, const s_loc *loc, const cJSON *got, const char *fmt, ...)
{
    if (!err || *err)
        return -1;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&buf, &size);
    if (!f)
        return -1;
    if (s_path_print (f, loc))
        fputs (": ", f);
    va_list ap;
    va_start (ap, fmt);
    vfprintf (f, fmt, ap);
    va_end (ap);
    if (got) {
        fputs (", got ", f);
        s_describe (f, got);
    }
    if (fclose (f) == 0)
        *err = buf;
    else
        free (buf);
    return -1;
}

/* Size of one element of a repeated field's array, as protobuf-c lays it out. */
static size_t
s_elt_size (ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof (protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof (char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof (ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof (ProtobufCMessage *);
    default:
        return 4;
    }
}

/* A JSON number that is a whole number within [min, max]; range is their text. */
static int
s_number_int (const cJSON *v, double min, double max, const char *range, double *out,
              const s_loc *loc, char **err)
{
    double d = v->valuedouble;
    if (isnan (d) || isinf (d))
        return s_fail (err, loc, v, "expected an integer");
    bool exact = d <= S_EXACT_MAX && d >= -S_EXACT_MAX;
    if (exact && d != (double) (int64_t) d)
        return s_fail (err, loc, v, "expected an integer");
    if (!exact && (max > S_EXACT_MAX || min < -S_EXACT_MAX) && d >= min && d <= max)
        return s_fail (err, loc, v,
                       "integers beyond 2^53 are not exact as JSON numbers; send it as a string");
    if (d < min || d > max)
        return s_fail (err, loc, v, "out of range %s", range);
    *out = d;
    return 0;
}

/* A signed integer in [min, max]: a number, or for 64-bit types a decimal string. */
static int
s_get_signed (const cJSON *v, int64_t min, int64_t max, bool str_ok, int64_t *out,
              const s_loc *loc, char **err)
{
    char range[64];
    snprintf (range, sizeof range, "[%" PRId64 ", %" PRId64 "]", min, max);
    if (cJSON_IsNumber (v)) {
        double d;
        if (s_number_int (v, (double) min, (double) max, range, &d, loc, err) < 0)
            return -1;
        *out = (int64_t) d;
        return 0;
    }
    if (str_ok && cJSON_IsString (v)) {
        const char *s = v->valuestring;
        const char *digits = s[0] == '-' ? s + 1 : s;
        if (*digits < '0' || *digits > '9')
            return s_fail (err, loc, v, "expected an integer");
        char *end = NULL;
        errno = 0;
        long long x = strtoll (s, &end, 10);
        if (*end)
            return s_fail (err, loc, v, "expected an integer");
        if (errno == ERANGE || x < min || x > max)
            return s_fail (err, loc, v, "out of range %s", range);
        *out = x;
        return 0;
    }
    return s_fail (err, loc, v, "expected a number");
}

/* An unsigned integer up to max: a number, or for 64-bit types a decimal string. */
static int
s_get_unsigned (const cJSON *v, uint64_t max, bool str_ok, uint64_t *out, const s_loc *loc,
                char **err)
{
    char range[64];
    snprintf (range, sizeof range, "[0, %" PRIu64 "]", max);
    if (cJSON_IsNumber (v)) {
        double d;
        if (s_number_int (v, 0.0, (double) max, range, &d, loc, err) < 0)
            return -1;
        *out = (uint64_t) d;
        return 0;
    }
    if (str_ok && cJSON_IsString (v)) {
        const char *s = v->valuestring;
        if (*s < '0' || *s > '9')
            return s_fail (err, loc, v, "expected a non-negative integer");
        char *end = NULL;
        errno = 0;
        unsigned long long x = strtoull (s, &end, 10);
        if (*end)
            return s_fail (err, loc, v, "expected a non-negative integer");
        if (errno == ERANGE || x > max)
            return s_fail (err, loc, v, "out of range %s", range);
        *out = x;
        return 0;
    }
    return s_fail (err, loc, v, "expected a number");
}

/* A float or double: a number, or "NaN" / "Infinity" / "-Infinity". */
static int
s_get_double (const cJSON *v, bool is_float, double *out, const s_loc *loc, char **err)
{
    if (cJSON_IsNumber (v)) {
        double d = v->valuedouble;
        if (is_float && (d > FLT_MAX || d < -FLT_MAX))
            return s_fail (err, loc, v, "out of range for a float");
        *out = d;
        return 0;
    }
    if (cJSON_IsString (v)) {
        if (strcmp (v->valuestring, "NaN") == 0) {
            *out = NAN;
            return 0;
        }
        if (strcmp (v->valuestring, "Infinity") == 0) {
            *out = INFINITY;
            return 0;
        }
        if (strcmp (v->valuestring, "-Infinity") == 0) {
            *out = -INFINITY;
            return 0;
        }
    }
    return s_fail (err, loc, v, "expected a number");
}

/* Error for an enum value that does not exist, listing the names. */
static int
s_bad_enum (const ProtobufCEnumDescriptor *ed, const cJSON *v, const s_loc *loc, char **err)
{
    char *names = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&names, &size);
    if (!f)
        pm_oom ("open_memstream", 0);
    for (unsigned i = 0; i < ed->n_values; i++)
        fprintf (f, "%s%s", i ? ", " : "", ed->values[i].name);
    if (fclose (f) != 0)
        pm_oom ("open_memstream", size);
    if (cJSON_IsString (v))
        s_fail (err, loc, NULL, "unknown value \"%s\" for %s; values: %s", v->valuestring,
                ed->name, names);
    else
        s_fail (err, loc, NULL, "unknown value %.0f for %s; values: %s", v->valuedouble,
                ed->name, names);
    free (names);
    return -1;
}

/* An enum by value name, or by number (which must be a defined value). */
static int
s_get_enum (const ProtobufCEnumDescriptor *ed, const cJSON *v, int *out, const s_loc *loc,
            char **err)
{
    if (cJSON_IsString (v)) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name (ed,
                                                                               v->valuestring);
        if (!ev)
            return s_bad_enum (ed, v, loc, err);
        *out = ev->value;
        return 0;
    }
    if (cJSON_IsNumber (v)) {
        int64_t x;
        if (s_get_signed (v, INT32_MIN, INT32_MAX, false, &x, loc, err) < 0)
            return -1;
        if (!protobuf_c_enum_descriptor_get_value (ed, (int) x))
            return s_bad_enum (ed, v, loc, err);
        *out = (int) x;
        return 0;
    }
    return s_fail (err, loc, v, "expected a %s value name", ed->name);
}

/* Standard base64 text to malloc'd bytes (data NULL when empty). */
static int
s_get_bytes (const cJSON *v, ProtobufCBinaryData *out, const s_loc *loc, char **err)
{
    if (!cJSON_IsString (v))
        return s_fail (err, loc, v, "expected a base64 string");
    pthread_once (&s_sodium_once, s_sodium_init);
    size_t n = strlen (v->valuestring);
    if (n == 0) {
        out->len = 0;
        out->data = NULL;
        return 0;
    }
    size_t max = n / 4 * 3 + 3;
    unsigned char *bin = pm_xmalloc (max);
    size_t len = 0;
    if (sodium_base642bin (bin, max, v->valuestring, n, NULL, &len, NULL,
                           sodium_base64_VARIANT_ORIGINAL) != 0) {
        free (bin);
        return s_fail (err, loc, v, "expected standard base64 (with padding)");
    }
    out->len = len;
    out->data = bin;
    return 0;
}

static int s_fill (ProtobufCMessage *msg, const cJSON *json, const s_loc *loc, char **err);

/* A fresh message of type desc, initialised to its defaults, or NULL. */
static ProtobufCMessage *
s_new (const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = pm_xmalloc (desc->sizeof_message);
    if (desc->message_init) {
        desc->message_init (m);
    } else {
        memset (m, 0, desc->sizeof_message);
        m->descriptor = desc;
    }
    return m;
}

/* Reads one value of field fd's type from v into dst (the field or array slot). */
static int
s_set_value (const ProtobufCFieldDescriptor *fd, void *dst, const cJSON *v, const s_loc *loc,
             char **err)
{
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (s_get_signed (v, INT32_MIN, INT32_MAX, false, &i, loc, err) < 0)
            return -1;
        *(int32_t *) dst = (int32_t) i;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (s_get_signed (v, INT64_MIN, INT64_MAX, true, &i, loc, err) < 0)
            return -1;
        *(int64_t *) dst = i;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (s_get_unsigned (v, UINT32_MAX, false, &u, loc, err) < 0)
            return -1;
        *(uint32_t *) dst = (uint32_t) u;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (s_get_unsigned (v, UINT64_MAX, true, &u, loc, err) < 0)
            return -1;
        *(uint64_t *) dst = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (s_get_double (v, true, &d, loc, err) < 0)
            return -1;
        *(float *) dst = (float) d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (s_get_double (v, false, &d, loc, err) < 0)
            return -1;
        *(double *) dst = d;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!cJSON_IsBool (v))
            return s_fail (err, loc, v, "expected true or false");
        *(protobuf_c_boolean *) dst = cJSON_IsTrue (v) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return s_get_enum (fd->descriptor, v, (int *) dst, loc, err);
    case PROTOBUF_C_TYPE_STRING: {
        if (!cJSON_IsString (v))
            return s_fail (err, loc, v, "expected a string");
        char *s = pm_xstrdup (v->valuestring);
        *(char **) dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return s_get_bytes (v, dst, loc, err);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = fd->descriptor;
        if (!cJSON_IsObject (v))
            return s_fail (err, loc, v, "expected an object (%s)", sd->name);
        ProtobufCMessage *sub = s_new (sd);
        *(ProtobufCMessage **) dst = sub;  /* attached first: freed with the parent */
        return s_fill (sub, v, loc, err);
    }
    }
    return s_fail (err, loc, NULL, "unsupported field type %d", (int) fd->type);
}

/* Error for a key that names no field of desc, listing the field names. */
static int
s_unknown_field (const ProtobufCMessageDescriptor *desc, const char *key, const s_loc *loc,
                 char **err)
{
    char *names = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&names, &size);
    if (!f)
        pm_oom ("open_memstream", 0);
    for (unsigned i = 0; i < desc->n_fields; i++)
        fprintf (f, "%s%s", i ? ", " : "", desc->fields[i].name);
    if (desc->n_fields == 0)
        fputs ("(none)", f);
    if (fclose (f) != 0)
        pm_oom ("open_memstream", size);
    s_fail (err, loc, NULL, "unknown field '%s' in %s; fields: %s", key, desc->name, names);
    free (names);
    return -1;
}

/* Reads a repeated field from array v: allocates and attaches the array, then fills it. */
static int
s_set_repeated (ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd, const cJSON *v,
                const s_loc *loc, char **err)
{
    if (!cJSON_IsArray (v))
        return s_fail (err, loc, v, "expected an array");
    int n = cJSON_GetArraySize (v);
    if (n <= 0)
        return 0;
    size_t esize = s_elt_size (fd->type);
    char *arr = pm_xcalloc ((size_t) n, esize);
    *(void **) S_MEMBER (msg, fd->offset) = arr;
    *(size_t *) S_MEMBER (msg, fd->quantifier_offset) = (size_t) n;
    size_t k = 0;
    const cJSON *item;
    cJSON_ArrayForEach (item, v) {
        s_loc at = { loc, NULL, k };
        if (cJSON_IsNull (item))
            return s_fail (err, &at, NULL, "null is not allowed in an array");
        if (s_set_value (fd, arr + k * esize, item, &at, err) < 0)
            return -1;
        k++;
    }
    return 0;
}

/* Fills msg (already initialised) from the members of object json. */
static int
s_fill (ProtobufCMessage *msg, const cJSON *json, const s_loc *loc, char **err)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    if (!cJSON_IsObject (json))
        return s_fail (err, loc, json, "expected an object (%s)", desc->name);
    bool *seen = pm_xcalloc (desc->n_fields ? desc->n_fields : 1, sizeof *seen);
    int rc = 0;
    const cJSON *item;
    cJSON_ArrayForEach (item, json) {
        const char *key = item->string ? item->string : "";
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field_by_name (desc, key);
        if (!fd) {
            rc = s_unknown_field (desc, key, loc, err);
            break;
        }
        s_loc at = { loc, fd->name, 0 };
        size_t idx = (size_t) (fd - desc->fields);
        if (seen[idx]) {
            rc = s_fail (err, &at, NULL, "field given twice");
            break;
        }
        seen[idx] = true;
        if (cJSON_IsNull (item))
            continue;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *cs = S_MEMBER (msg, fd->quantifier_offset);
            if (*cs != 0 && *cs != fd->id) {
                const ProtobufCFieldDescriptor *other =
                    protobuf_c_message_descriptor_get_field (desc, *cs);
                rc = s_fail (err, loc, NULL,
                             "'%s' and '%s' are members of the same oneof; set only one",
                             other ? other->name : "?", fd->name);
                break;
            }
            *cs = fd->id;
            rc = s_set_value (fd, S_MEMBER (msg, fd->offset), item, &at, err);
        } else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = s_set_repeated (msg, fd, item, &at, err);
        } else {
            rc = s_set_value (fd, S_MEMBER (msg, fd->offset), item, &at, err);
            /* proto2 / proto3 `optional` scalars carry a has_ flag */
            if (rc == 0 && fd->label == PROTOBUF_C_LABEL_OPTIONAL
                && fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE)
                *(protobuf_c_boolean *) S_MEMBER (msg, fd->quantifier_offset) = 1;
        }
        if (rc < 0)
            break;
    }
    free (seen);
    return rc;
}

ProtobufCMessage *
pm_json_to_msg (const ProtobufCMessageDescriptor *desc, const cJSON *json, char **err)
{
    if (err)
        *err = NULL;
    if (!desc) {
        s_fail (err, NULL, NULL, "no message type");
        return NULL;
    }
    if (!cJSON_IsObject (json)) {
        s_fail (err, NULL, json, "expected a JSON object for %s", desc->name);
        return NULL;
    }
    ProtobufCMessage *msg = s_new (desc);
    if (s_fill (msg, json, NULL, err) < 0) {
        protobuf_c_message_free_unpacked (msg, NULL);
        return NULL;
    }
    return msg;
}

/* ---- output --------------------------------------------------------------- */

static cJSON *s_to_json (const ProtobufCMessage *msg);

/* A 64-bit integer: a JSON number when exact as a double, else a decimal string. */
static cJSON *
s_int64_json (int64_t x)
{
    if ((double) x <= S_EXACT_MAX && (double) x >= -S_EXACT_MAX)
        return cJSON_CreateNumber ((double) x);
    char buf[32];
    snprintf (buf, sizeof buf, "%" PRId64, x);
    return cJSON_CreateString (buf);
}

static cJSON *
s_uint64_json (uint64_t x)
{
    if (x <= (uint64_t) S_EXACT_MAX)
        return cJSON_CreateNumber ((double) x);
    char buf[32];
    snprintf (buf, sizeof buf, "%" PRIu64, x);
    return cJSON_CreateString (buf);
}

/* A float or double: a number, or "NaN" / "Infinity" / "-Infinity" (not JSON numbers). */
static cJSON *
s_double_json (double d)
{
    if (isnan (d))
        return cJSON_CreateString ("NaN");
    if (isinf (d))
        return cJSON_CreateString (d > 0 ? "Infinity" : "-Infinity");
    return cJSON_CreateNumber (d);
}

static cJSON *
s_bytes_json (const ProtobufCBinaryData *b)
{
    if (b->len == 0 || !b->data)
        return cJSON_CreateString ("");
    pthread_once (&s_sodium_once, s_sodium_init);
    size_t n = sodium_base64_ENCODED_LEN (b->len, sodium_base64_VARIANT_ORIGINAL);
    char *s = pm_xmalloc (n);
    sodium_bin2base64 (s, n, b->data, b->len, sodium_base64_VARIANT_ORIGINAL);
    cJSON *j = cJSON_CreateString (s);
    free (s);
    return j;
}

/* JSON for one value of fd's type stored at src (the field or an array slot). */
static cJSON *
s_value_json (const ProtobufCFieldDescriptor *fd, const void *src)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return cJSON_CreateNumber (*(const int32_t *) src);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return cJSON_CreateNumber (*(const uint32_t *) src);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return s_int64_json (*(const int64_t *) src);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return s_uint64_json (*(const uint64_t *) src);
    case PROTOBUF_C_TYPE_FLOAT:
        return s_double_json (*(const float *) src);
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_double_json (*(const double *) src);
    case PROTOBUF_C_TYPE_BOOL:
        return cJSON_CreateBool (*(const protobuf_c_boolean *) src);
    case PROTOBUF_C_TYPE_ENUM: {
        int x = *(const int *) src;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value (fd->descriptor, x);
        return ev ? cJSON_CreateString (ev->name) : cJSON_CreateNumber (x);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *) src;
        return cJSON_CreateString (s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return s_bytes_json (src);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *) src;
        return sub ? s_to_json (sub) : cJSON_CreateObject ();
    }
    }
    return cJSON_CreateNull ();
}

/* Whether a singular proto3 field holds its default (0, "", false, empty, NULL). */
static bool
s_is_default (const ProtobufCFieldDescriptor *fd, const void *src)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *) src == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *) src == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *) src == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *) src;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *) src;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *) src)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *) src == NULL;
    default:
        return *(const uint32_t *) src == 0;
    }
}

/* Whether fd is present in msg, as the packer would decide (proto3 omits defaults). */
static bool
s_present (const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
    const void *src = (const char *) msg + fd->offset;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *) ((const char *) msg + fd->quantifier_offset) == fd->id;
    switch (fd->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return true;
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            const void *p = *(const void *const *) src;
            return p && p != fd->default_value;
        }
        return *(const protobuf_c_boolean *) ((const char *) msg + fd->quantifier_offset);
    case PROTOBUF_C_LABEL_REPEATED:
        return *(const size_t *) ((const char *) msg + fd->quantifier_offset) > 0;
    default:
        return !s_is_default (fd, src);
    }
}

/* JSON array of a repeated field's values, or NULL on OOM. */
static cJSON *
s_repeated_json (const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
    size_t n = *(const size_t *) ((const char *) msg + fd->quantifier_offset);
    const char *arr = *(const char *const *) ((const char *) msg + fd->offset);
    size_t esize = s_elt_size (fd->type);
    cJSON *a = cJSON_CreateArray ();
    if (!a)
        return NULL;
    for (size_t k = 0; arr && k < n; k++) {
        cJSON *v = s_value_json (fd, arr + k * esize);
        if (!v || !cJSON_AddItemToArray (a, v)) {
            cJSON_Delete (v);
            cJSON_Delete (a);
            return NULL;
        }
    }
    return a;
}

static cJSON *
s_to_json (const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    cJSON *obj = cJSON_CreateObject ();
    if (!obj)
        return NULL;
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        if (!s_present (msg, fd))
            continue;
        cJSON *v = fd->label == PROTOBUF_C_LABEL_REPEATED
                       ? s_repeated_json (msg, fd)
                       : s_value_json (fd, (const char *) msg + fd->offset);
        if (!v || !cJSON_AddItemToObject (obj, fd->name, v)) {
            cJSON_Delete (v);
            cJSON_Delete (obj);
            return NULL;
        }
    }
    return obj;
}

cJSON *
pm_msg_to_json (const ProtobufCMessage *msg)
{
    if (!msg)
        return NULL;
    return s_to_json (msg);
}
