/* pm/json.h - JSON <-> protobuf through protobuf-c's descriptors (cJSON).
 *
 * One generic mapping for every message: field names as in .proto, int64 and
 * uint64 as JSON numbers, enums by name (numbers accepted on input), bytes as
 * base64, repeated as arrays, nested messages as objects, a oneof as whichever
 * of its fields is present. Proto3 defaults (0, "", false, empty) are omitted
 * on output unless the field is a member of a oneof. */
#ifndef PM_JSON_H
#define PM_JSON_H

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

/* Builds a message of type desc from json (an object). On failure returns NULL
 * and sets *err (malloc'd) to e.g. "rows[2].line: expected a number, got \"abc\"".
 * The result is the caller's: free with protobuf_c_message_free_unpacked (NULL allocator). */
ProtobufCMessage *pm_json_to_msg (const ProtobufCMessageDescriptor *desc, const cJSON *json,
                                  char **err);
/* JSON object for msg. Caller owns (cJSON_Delete). NULL only on OOM. */
cJSON *pm_msg_to_json (const ProtobufCMessage *msg);

#endif
