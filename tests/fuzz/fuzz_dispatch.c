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

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
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
