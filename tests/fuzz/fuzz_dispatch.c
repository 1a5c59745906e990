/* fuzz_dispatch - one daemon's dispatch: any bytes, taken as a Request or as
 * an event from one of its upstreams, go through the runtime's group commit
 * (pm_daemon_apply) on a real LMDB; nothing may crash, and every request gets
 * a reply with a status. Compiled once per daemon with FUZZ_SPEC naming its
 * pm_daemon_spec_t. */
#define _GNU_SOURCE
#include "support.h"
#include "pm/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const pm_daemon_spec_t FUZZ_SPEC;

static pm_daemon_t *s_d;
static char *s_dir; /* the daemon's temp dir, for the life of the process */
static uint64_t s_next[8]; /* the next seq of each upstream, so events apply */

static void
s_seed (const char *dir, const char *name, uint8_t mode, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size (m);
    uint8_t *buf = malloc (len + 1);
    buf[0] = mode;
    protobuf_c_message_pack (m, buf + 1);
    char path[512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    if (f) {
        fwrite (buf, 1, len + 1, f);
        fclose (f);
    }
    free (buf);
}

/* PM_FUZZ_WRITE_SEEDS=DIR: one seed per route of the spec (a request with its
 * method and an empty body with a unit id where it has one) and per event
 * route (an event of that type with the payload it expects), then exit: the
 * fuzzer starts from what the daemon answers instead of from noise. */
static void
s_write_seeds (const char *dir)
{
    int k = 0;
    for (const pm_route_t *r = FUZZ_SPEC.routes; r && r->method; r++, k++) {
        Pm__V1__Request req = PM__V1__REQUEST__INIT;
        req.id = "seed";
        req.method = (char *) r->method;
        const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, r->method);
        ProtobufCMessage *body = NULL;
        if (f) {
            const ProtobufCMessageDescriptor *bd = f->descriptor;
            body = calloc (1, bd->sizeof_message);
            bd->message_init (body);
            for (unsigned i = 0; i < bd->n_fields; i++) /* a plausible unit and estate */
                if (bd->fields[i].type == PROTOBUF_C_TYPE_STRING && bd->fields[i].label != PROTOBUF_C_LABEL_REPEATED) {
                    const char *fn = bd->fields[i].name;
                    *(const char **) ((char *) body + bd->fields[i].offset) =
                        strstr (fn, "unit") ? "E01/1/101" : strstr (fn, "estate") ? "E01" : "x";
                }
            pm_body_set (&req.base, r->method, body);
        }
        char name[64];
        snprintf (name, sizeof name, "route-%02d", k);
        s_seed (dir, name, 0, &req.base);
        free (body);
    }
    for (int u = 0; FUZZ_SPEC.upstreams && FUZZ_SPEC.upstreams[u].source; u++)
        for (const pm_event_route_t *r = FUZZ_SPEC.upstreams[u].routes; r && r->type; r++, k++) {
            Pm__V1__Event ev = PM__V1__EVENT__INIT;
            ev.source = (char *) FUZZ_SPEC.upstreams[u].source;
            ev.seq = 1;
            char type[128];
            snprintf (type, sizeof type, "%s%s", r->type, r->type[strlen (r->type) - 1] == '.' ? "x" : "");
            ev.type = type;
            ev.unit_id = "E01/1/101";
            ev.estate_id = "E01";
            ProtobufCMessage *payload = NULL;
            const ProtobufCFieldDescriptor *f =
                r->payload > 0 ? protobuf_c_message_descriptor_get_field (&pm__v1__event__descriptor, (unsigned) r->payload)
                               : NULL;
            if (f) {
                const ProtobufCMessageDescriptor *pd = f->descriptor;
                payload = calloc (1, pd->sizeof_message);
                pd->message_init (payload);
                ev.payload_case = (Pm__V1__Event__PayloadCase) r->payload;
                *(ProtobufCMessage **) ((char *) &ev + f->offset) = payload;
            }
            char name[64];
            snprintf (name, sizeof name, "event-%02d", k);
            s_seed (dir, name, (uint8_t) (u + 1), &ev.base);
            free (payload);
        }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    const char *seeds = getenv ("PM_FUZZ_WRITE_SEEDS");
    if (seeds && *seeds) {
        s_write_seeds (seeds);
        exit (0);
    }
    pm_log_init ("fuzz", PM_LOG_ERROR);
    char *dir = s_dir = pmt_tmpdir (); /* left behind: the process exits with the fuzzer */
    const char *names[10];
    int n = 0;
    names[n++] = FUZZ_SPEC.name;
    for (int i = 0; FUZZ_SPEC.upstreams && FUZZ_SPEC.upstreams[i].source && n < 9; i++)
        names[n++] = FUZZ_SPEC.upstreams[i].source;
    names[n] = NULL;
    char *extra = NULL;
    if (asprintf (&extra, "[%s]\nkey_file = %s/fuzz.key\n", FUZZ_SPEC.name, dir) < 0)
        abort ();
    char *text = pmt_config (dir, names, extra), *err = NULL;
    free (extra);
    pm_config_t *cfg = pm_config_load_string (text, "fuzz.conf", &err);
    free (text);
    if (!cfg || !(s_d = pm_daemon_new (&FUZZ_SPEC, cfg, ev_loop_new (0)))) {
        fprintf (stderr, "fuzz_dispatch: %s did not start: %s\n", FUZZ_SPEC.name, err ? err : "see above");
        abort ();
    }
    for (int i = 0; i < 8; i++)
        s_next[i] = 1;
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int nups = 0;
    while (FUZZ_SPEC.upstreams && FUZZ_SPEC.upstreams[nups].source)
        nups++;
    int which = nups ? data[0] % (nups + 1) : 0; /* 0: a request; k: an event of upstream k */
    pm_batch_item_t item = { NULL, NULL, NULL };
    if (which == 0) {
        item.req = pm__v1__request__unpack (NULL, size - 1, data + 1);
        if (!item.req)
            return 0;
        pm_daemon_apply (s_d, &item, 1);
        if (!item.reply || item.reply->status > PM__V1__STATUS__INTERNAL)
            abort ();
        pm__v1__request__free_unpacked (item.req, NULL);
        return 0;
    }
    item.ev = pm__v1__event__unpack (NULL, size - 1, data + 1);
    if (!item.ev)
        return 0;
    /* an event as its upstream would send it: the next seq of that source */
    char *src = item.ev->source;
    item.ev->source = (char *) FUZZ_SPEC.upstreams[which - 1].source;
    item.ev->seq = s_next[which - 1];
    pm_daemon_apply (s_d, &item, 1);
    if (!item.reply)
        abort ();
    if (pm_daemon_applied (s_d, item.ev->source) == item.ev->seq)
        s_next[which - 1]++;
    item.ev->source = src;
    pm__v1__event__free_unpacked (item.ev, NULL);
    return 0;
}
