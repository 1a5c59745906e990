/* fuzz_json - the generic JSON <-> protobuf mapping (what pmctl call and the
 * gateway feed it): any text, for any method's body, never crashes; what it
 * accepts maps back to JSON and again to the same message. */
#include "pm/json.h"
#include "pm/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *req = &pm__v1__request__descriptor;
    const ProtobufCFieldDescriptor *f = &req->fields[data[0] % req->n_fields];
    const ProtobufCMessageDescriptor *desc = f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : req;
    char *text = malloc (size);
    memcpy (text, data + 1, size - 1);
    text[size - 1] = '\0';
    cJSON *j = cJSON_Parse (text);
    free (text);
    if (!j)
        return 0;
    char *err = NULL;
    ProtobufCMessage *m = pm_json_to_msg (desc, j, &err);
    cJSON_Delete (j);
    free (err);
    if (!m)
        return 0;
    cJSON *back = pm_msg_to_json (m);
    if (back) {
        ProtobufCMessage *again = pm_json_to_msg (desc, back, &err);
        if (!again)
            abort (); /* what we print must be what we read */
        size_t a = protobuf_c_message_get_packed_size (m), b = protobuf_c_message_get_packed_size (again);
        if (a != b)
            abort ();
        protobuf_c_message_free_unpacked (again, NULL);
        cJSON_Delete (back);
    }
    free (err);
    protobuf_c_message_free_unpacked (m, NULL);
    return 0;
}
