/* pm/proto.h - the generated messages and the method <-> body convention.
 *
 * A method "a.b.c" carries its typed body in the Request (and Reply) oneof
 * field named "a_b_c". These helpers find that field from the descriptors, so
 * no code is written per method. */
#ifndef PM_PROTO_H
#define PM_PROTO_H

#include "pm/v1/envelope.pb-c.h"
#include <stddef.h>

/* The field of msg_desc (Request or Reply) that carries method's body, or NULL. */
const ProtobufCFieldDescriptor *pm_method_field (const ProtobufCMessageDescriptor *msg_desc,
                                                 const char *method);
/* Status name ("OK", "NOT_FOUND", ...). */
const char *pm_status_name (int status);

/* Sets the body of a Request or Reply: finds method's field, sets the oneof case
 * and the pointer (body borrowed; NULL leaves the body unset, which daemons
 * read as the empty body). PM_ENOTFOUND for an unknown method. */
int pm_body_set (ProtobufCMessage *msg, const char *method, ProtobufCMessage *body);
/* The body of a Request or Reply if its case is method's field, else NULL. */
ProtobufCMessage *pm_body_get (const ProtobufCMessage *msg, const char *method);

/* Reads seq (field 2) and type (field 4) of a packed pm.v1.Event without
 * decoding the rest, so a consumer skips the events it does not handle for
 * the price of a few bytes read. *type points into buf (not terminated).
 * PM_OK, or PM_EPROTO when buf is not a well-formed message. */
int pm_event_peek (const void *buf, size_t len, uint64_t *seq, const char **type, size_t *type_len);

#endif
