/* proto.c - method <-> body field convention (see pm/proto.h). */
#include "pm/proto.h"
#include "pm/err.h"

#include <stdbool.h>
#include <string.h>

const ProtobufCFieldDescriptor *
pm_method_field (const ProtobufCMessageDescriptor *desc, const char *method)
{
    char name[128];
    size_t n = strlen (method);
    if (n == 0 || n >= sizeof name)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        name[i] = method[i] == '.' ? '_' : method[i];
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name (desc, name);
    if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    return f;
}

const char *
pm_status_name (int status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value (&pm__v1__status__descriptor, status);
    return v ? v->name : "UNKNOWN";
}

int
pm_body_set (ProtobufCMessage *msg, const char *method, ProtobufCMessage *body)
{
    const ProtobufCFieldDescriptor *f = pm_method_field (msg->descriptor, method);
    if (!f)
        return PM_ENOTFOUND;
    if (!body)
        return PM_OK; /* no body: the daemon treats it as the empty one */
    *(uint32_t *) ((char *) msg + f->quantifier_offset) = f->id;
    *(ProtobufCMessage **) ((char *) msg + f->offset) = body;
    return PM_OK;
}

ProtobufCMessage *
pm_body_get (const ProtobufCMessage *msg, const char *method)
{
    const ProtobufCFieldDescriptor *f = pm_method_field (msg->descriptor, method);
    if (!f || *(const uint32_t *) ((const char *) msg + f->quantifier_offset) != f->id)
        return NULL;
    return *(ProtobufCMessage *const *) ((const char *) msg + f->offset);
}

/* The protobuf wire format, as much as pm_event_peek needs: a varint, and
 * skipping a field by its wire type. Hand-written because protobuf-c decodes
 * a whole message or nothing; this reads two fields and validates the rest. */
static bool
s_varint (const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

int
pm_event_peek (const void *buf, size_t len, uint64_t *seq, const char **type, size_t *type_len)
{
    const uint8_t *p = buf, *end = p + len;
    *seq = 0;
    *type = "";
    *type_len = 0;
    while (p < end) {
        uint64_t key, v;
        if (!s_varint (&p, end, &key))
            return PM_EPROTO;
        switch (key & 7) {
        case 0: /* varint */
            if (!s_varint (&p, end, &v))
                return PM_EPROTO;
            if (key >> 3 == 2)
                *seq = v;
            break;
        case 1: /* 64-bit */
            if (end - p < 8)
                return PM_EPROTO;
            p += 8;
            break;
        case 2: /* length-delimited */
            if (!s_varint (&p, end, &v) || v > (uint64_t) (end - p))
                return PM_EPROTO;
            if (key >> 3 == 4) {
                *type = (const char *) p;
                *type_len = (size_t) v;
            }
            p += v;
            break;
        case 5: /* 32-bit */
            if (end - p < 4)
                return PM_EPROTO;
            p += 4;
            break;
        default:
            return PM_EPROTO;
        }
    }
    return PM_OK;
}
