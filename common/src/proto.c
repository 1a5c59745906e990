/* proto.c - method <-> body field convention (see pm/proto.h). */
#include "pm/proto.h"
#include "pm/err.h"

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
