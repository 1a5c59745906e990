/* inspection.c - `pmctl checklist ESTATE [FILE.csv]`: an estate's inspection
 * checklist (验房登记表), shown, or replaced from a CSV file.
 *
 * The file is sent as it is (inspection.template.set {estate_id, csv}):
 * inspection parses it with the same rules as its default checklist file, so
 * an error names the line exactly as it would at the daemon's start. */
#define _GNU_SOURCE
#include "pmctl.h"
#include "pm/json.h"
#include "pm/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FILE_MAX (1 << 20) /* a checklist is a few KiB */

/* The file's bytes (malloc'd, NUL-terminated), or NULL after printing why. */
static char *
s_read (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "pmctl: checklist: cannot open %s: %s\n", path, strerror (errno));
        return NULL;
    }
    char *buf = pm_xmalloc (S_FILE_MAX + 1);
    size_t n = fread (buf, 1, S_FILE_MAX + 1, f);
    bool err = ferror (f);
    fclose (f);
    if (err || n > S_FILE_MAX) {
        fprintf (stderr, "pmctl: checklist: %s: %s\n", path, err ? "read error" : "larger than 1 MiB: not a checklist");
        free (buf);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen (buf) != n) {
        fprintf (stderr, "pmctl: checklist: %s holds a NUL byte: not a CSV text file\n", path);
        free (buf);
        return NULL;
    }
    return buf;
}

/* One CSV field, quoted when it must be (RFC 4180). */
static void
s_field (const char *v, char after)
{
    if (!strpbrk (v, ",\"\r\n"))
        fputs (v, stdout);
    else {
        fputc ('"', stdout);
        for (; *v; v++) {
            if (*v == '"')
                fputc ('"', stdout);
            fputc (*v, stdout);
        }
        fputc ('"', stdout);
    }
    fputc (after, stdout);
}

int
pmctl_checklist (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option none[] = { { NULL, 0, NULL, 0 } };
    int code = PMCTL_OK;
    if (pmctl_getopt (ctl, argc, argv, "", none, &code) != PMCTL_OPT_END)
        return code;
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    int npos = argc - optind;
    if (npos < 1 || npos > 2)
        return npos < 1 ? pmctl_usage_error (ctl, "needs ESTATE") : pmctl_usage_error (ctl, "unexpected '%s'", argv[optind + 2]);
    const char *estate = argv[optind], *path = npos == 2 ? argv[optind + 1] : NULL;
    const char *endpoint = pmctl_endpoint (ctl, "inspection", "command");
    if (!endpoint) {
        pmctl_unknown_daemon (ctl, "inspection");
        return PMCTL_USAGE;
    }
    char *csv = NULL;
    if (path && !(csv = s_read (path)))
        return PMCTL_USAGE;
    Pm__V1__InspectionTemplateSetRequest set = PM__V1__INSPECTION_TEMPLATE_SET_REQUEST__INIT;
    Pm__V1__InspectionTemplateGetRequest get = PM__V1__INSPECTION_TEMPLATE_GET_REQUEST__INIT;
    set.estate_id = get.estate_id = (char *) estate;
    set.csv = csv;
    set.file_name = (char *) path;
    const char *method = path ? "inspection.template.set" : "inspection.template.get";
    pm_client_t *c = pmctl_client (ctl, NULL, "inspection");
    if (!c) {
        fprintf (stderr, "pmctl: inspection: bad endpoint %s\n", endpoint);
        free (csv);
        return PMCTL_USAGE;
    }
    Pm__V1__Request req;
    char id[27];
    pmctl_request (ctl, &req, id, method, path ? &set.base : &get.base);
    Pm__V1__Reply *r = NULL;
    code = pmctl_call (ctl, c, "inspection", endpoint, &req, &r);
    pm_client_destroy (&c);
    free (csv);
    if (code != PMCTL_OK)
        return code;
    if (r->status != PM__V1__STATUS__OK) {
        fprintf (stderr, "pmctl: inspection: %s: %s\n", pm_status_name (r->status), r->message);
        code = PMCTL_FAIL;
    } else if (ctl->json) {
        ProtobufCMessage *b = pm_body_get (&r->base, method);
        code = b ? pmctl_print_json (pm_msg_to_json (b), false) : PMCTL_OK;
    } else if (path) {
        printf ("%s\n", r->message);
    } else {
        /* the lines in the file's format, so `pmctl checklist E01 > e01.csv` can be edited and sent back */
        fprintf (stderr, "%s\n", r->message);
        const Pm__V1__InspectionTemplateGetReply *t = r->inspection_template_get;
        printf ("room,category,check\n");
        for (size_t i = 0; t && i < t->n_items; i++) {
            s_field (t->items[i]->room, ',');
            s_field (t->items[i]->category, ',');
            s_field (t->items[i]->check, '\n');
        }
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}
