/* unit.c - `pmctl unit UNIT_ID`: one unit's whole move-in case, each daemon's
 * part of it, and the fan-out (pmctl_ask) that `pmctl top` uses too.
 *
 * Every daemon in the config is asked `<daemon>.unit.get {unit_id}` at once,
 * each on its own DEALER. Intake's part (owners masked, notice, appointment,
 * check-in, key gate, key ledger) is shown as an operator reads it; any other
 * daemon's body is shown field by field from its descriptor, so a daemon that
 * learns the method is shown without a change here. A daemon that is down,
 * or does not answer the method, is named as not available, with why. */
#include "pmctl.h"

#include "pm/clock.h"
#include "pm/err.h"
#include "pm/json.h"
#include "pm/log.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* --- the fan-out ------------------------------------------------------------------ */

void
pmctl_ask (const pmctl_t *ctl, void *zctx, pmctl_ask_t *asks, size_t n, int timeout_ms)
{
    pm_inflight_t *fl = pm_inflight_new (timeout_ms / 2 > 0 ? timeout_ms / 2 : 1);
    for (size_t i = 0; i < n; i++) {
        pmctl_ask_t *a = &asks[i];
        a->reply = NULL;
        a->why = NULL;
        const char *endpoint = pmctl_endpoint (ctl, a->daemon, "command");
        if (!endpoint) {
            a->why = "not in the config";
            continue;
        }
        if (!pm_method_field (&pm__v1__request__descriptor, a->method)) {
            a->why = "this pmctl knows no such method";
            continue;
        }
        a->client = pmctl_client (ctl, zctx, a->daemon);
        if (!a->client) {
            a->why = "its endpoint is unusable";
            continue;
        }
        Pm__V1__Request req;
        char id[27];
        pmctl_request (ctl, &req, id, a->method, a->body);
        if (pm_inflight_add (fl, a->client, &req, timeout_ms, a) != PM_OK)
            a->why = "cannot send to it";
    }
    while (pm_inflight_size (fl) > 0) {
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (fl, -1, &r, &user);
        if (rc == PM_OK) {
            pmctl_ask_t *a = user;
            a->reply = r;
            if (!r)
                a->why = "no answer: is it running? (./pm status)";
        }
        else if (rc == PM_EIO && errno != EINTR)
            break;
    }
    pm_inflight_destroy (&fl);
    for (size_t i = 0; i < n; i++)
        if (!asks[i].reply && !asks[i].why)
            asks[i].why = "no answer";
}

void
pmctl_ask_free (pmctl_ask_t *asks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pm_client_destroy (&asks[i].client);
        if (asks[i].reply)
            pm__v1__reply__free_unpacked (asks[i].reply, NULL);
        asks[i].reply = NULL;
    }
}

/* --- showing a part ---------------------------------------------------------------- */

/* The estates' offset from UTC ([intake] utc_offset_minutes, as intake reads it). */
static int64_t s_offset_ms = 480 * 60000;

/* ms as estate time: "2026-12-05 09:30". */
static const char *
s_time (int64_t ms, char *buf, size_t size)
{
    if (!ms)
        return "-";
    char iso[40];
    pm_time_format (ms + s_offset_ms, iso, sizeof iso); /* "2026-12-05T09:30:00.000Z" */
    snprintf (buf, size, "%.10s %.5s", iso, iso + 11);
    return buf;
}

/* A JSON value as lines "  name: value", nested objects indented (any daemon's body). */
static void
s_print_json (const cJSON *j, int depth)
{
    for (const cJSON *c = j->child; c; c = c->next) {
        printf ("%*s", 2 + 2 * depth, "");
        if (c->string)
            printf ("%s: ", c->string);
        else
            printf ("- ");
        if (cJSON_IsObject (c)) {
            putchar ('\n');
            s_print_json (c, depth + 1);
        }
        else if (cJSON_IsArray (c)) {
            bool scalars = true;
            for (const cJSON *e = c->child; e; e = e->next)
                scalars &= !cJSON_IsObject (e) && !cJSON_IsArray (e);
            if (scalars) {
                for (const cJSON *e = c->child; e; e = e->next) {
                    char *v = cJSON_IsString (e) ? NULL : cJSON_PrintUnformatted (e);
                    printf ("%s%s", e == c->child ? "" : ", ", v ? v : e->valuestring);
                    free (v);
                }
                putchar ('\n');
            }
            else {
                putchar ('\n');
                s_print_json (c, depth + 1);
            }
        }
        else if (cJSON_IsString (c))
            printf ("%s\n", c->valuestring);
        else {
            char *v = cJSON_PrintUnformatted (c);
            printf ("%s\n", v ? v : "?");
            free (v);
        }
    }
}

/* An email with its local part masked: "w***@example.com". */
static const char *
s_mask_email (const char *e, char *buf, size_t size)
{
    const char *at = strchr (e, '@');
    if (!at)
        return pm_mask_chars (e, 1, 0, buf, size);
    char local[128];
    snprintf (local, sizeof local, "%.*s", (int) (at - e), e);
    char masked[160];
    pm_mask_chars (local, 1, 0, masked, sizeof masked);
    snprintf (buf, size, "%s%s", masked, at);
    return buf;
}

static void
s_list (const char *label, char **items, size_t n)
{
    printf ("%s", label);
    for (size_t i = 0; i < n; i++)
        printf ("%s%s", i ? ", " : "", items[i]);
    if (!n)
        printf ("(none)");
}

/* Intake's part, as an operator reads it. */
static void
s_print_intake (const Pm__V1__IntakeUnitGetReply *r)
{
    const Pm__V1__Unit *u = r->unit;
    char t[40], b1[128], b2[160];
    printf ("intake: %s\n", r->state);
    if (u) {
        printf ("  unit        %s  %s  building %s, unit %s, floor %d, %lld.%02lld m2", u->unit_id, u->estate_name,
                u->building, u->unit, u->floor, (long long) (u->area_cm2 / 100), (long long) (u->area_cm2 % 100));
        if (u->parking_spaces)
            printf (", %u parking", u->parking_spaces);
        if (*u->delivery_date)
            printf (", delivered %s", u->delivery_date);
        putchar ('\n');
        for (size_t i = 0; i < u->n_owners; i++) {
            const Pm__V1__Owner *o = u->owners[i];
            printf ("  owner %zu     %s  %s", i, o->name, pm_mask_phone (o->phone, b1, sizeof b1));
            if (*o->email)
                printf ("  %s", s_mask_email (o->email, b2, sizeof b2));
            if (i < r->n_id_numbers_masked)
                printf ("  ID %s", r->id_numbers_masked[i]);
            putchar ('\n');
        }
    }
    if (r->n_notices) {
        printf ("  notice      %s", r->notices[r->n_notices - 1]);
        if (r->notified_ms)
            printf (", sent %s", s_time (r->notified_ms, t, sizeof t));
        else
            printf (", not sent yet%s%s", *r->notice_failure ? ": " : "", r->notice_failure);
        putchar ('\n');
    }
    if (r->appointment) {
        const Pm__V1__Appointment *a = r->appointment;
        printf ("  appointment %s", s_time (a->slot_start_ms, t, sizeof t));
        const char *end = s_time (a->slot_end_ms, b1, sizeof b1);
        printf ("-%s, counter %u%s%s (%s)\n", strlen (end) > 11 ? end + 11 : end, a->counter,
                *a->place ? ", " : "", a->place, a->state);
    }
    else if (r->waitlisted)
        printf ("  appointment none: on the waitlist\n");
    if (r->checked_in) {
        const Pm__V1__CheckedIn *c = r->checked_in;
        printf ("  check-in    %s, owner %u %s%s\n", s_time (c->at_ms, t, sizeof t), c->owner_index, c->owner_name,
                c->walk_in ? " (walk-in)" : "");
        s_list ("  documents   ", c->documents, c->n_documents);
        putchar ('\n');
        s_list ("  agreements  ", c->agreements, c->n_agreements);
        putchar ('\n');
    }
    if (r->gate) {
        printf ("  inspection  %s\n", r->gate->inspection);
        printf ("  invoice     %s\n", r->gate->invoice);
        if (!r->keys)
            printf ("  key gate    %s\n", r->gate->open ? "open" : "waits");
    }
    if (r->keys)
        printf ("  keys        set %s (%u) to %s, %s\n", r->keys->key_set, r->keys->keys, r->keys->received_by,
                s_time (r->keys->at_ms, t, sizeof t));
    for (size_t i = 0; i < r->n_key_ledger; i++) {
        const Pm__V1__KeyLedgerEntry *e = r->key_ledger[i];
        printf ("  ledger #%-3u %s %s x%u, %s, %s%s%s\n", e->no, e->kind, e->key_set, e->keys, e->person,
                s_time (e->at_ms, t, sizeof t), *e->note ? ": " : "", e->note);
    }
}

/* `unit UNIT_ID`: every daemon's part of one unit's case. */
int
pmctl_unit (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option none[] = { { NULL, 0, NULL, 0 } };
    int code = PMCTL_OK;
    if (pmctl_getopt (ctl, argc, argv, "", none, &code) != PMCTL_OPT_END)
        return code;
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    if (argc - optind != 1)
        return argc - optind > 1 ? pmctl_usage_error (ctl, "unexpected '%s'", argv[optind + 1])
                                 : pmctl_usage_error (ctl, "needs UNIT_ID (ESTATE/BUILDING/UNIT, e.g. E01/3/2-301)");
    const char *unit_id = argv[optind];
    int64_t offset;
    char *err = NULL;
    if (pm_config_int (ctl->cfg, "intake", "utc_offset_minutes", 480, &offset, &err) == PM_OK)
        s_offset_ms = offset * 60000;
    free (err);
    size_t n;
    const char *const *daemons = pm_config_daemons (ctl->cfg, &n);
    pmctl_ask_t *asks = pm_xcalloc (n ? n : 1, sizeof *asks);
    ProtobufCMessage **bodies = pm_xcalloc (n ? n : 1, sizeof *bodies);
    cJSON *arg = cJSON_CreateObject ();
    cJSON_AddStringToObject (arg, "unit_id", unit_id);
    for (size_t i = 0; i < n; i++) {
        asks[i].daemon = daemons[i];
        asks[i].method = pm_xasprintf ("%s.unit.get", daemons[i]);
        const ProtobufCFieldDescriptor *f = pm_method_field (&pm__v1__request__descriptor, asks[i].method);
        if (f) {
            char *err = NULL;
            bodies[i] = pm_json_to_msg (f->descriptor, arg, &err); /* {unit_id} */
            free (err);
            asks[i].body = bodies[i];
        }
    }
    cJSON_Delete (arg);
    void *zctx = zmq_ctx_new ();
    pmctl_ask (ctl, zctx, asks, n, ctl->timeout_ms);
    cJSON *all = ctl->json ? cJSON_CreateObject () : NULL;
    bool intake_ok = false, any_ok = false;
    for (size_t i = 0; i < n; i++) {
        const pmctl_ask_t *a = &asks[i];
        const Pm__V1__Reply *r = a->reply;
        ProtobufCMessage *body = r && r->status == PM__V1__STATUS__OK ? pm_body_get (&r->base, a->method) : NULL;
        bool is_intake = strcmp (a->daemon, "intake") == 0;
        if (body) {
            any_ok = true;
            intake_ok |= is_intake;
        }
        /* why a part is missing: down, no such method, or no record of the unit */
        char *why = NULL;
        if (!r)
            why = pm_xasprintf ("not available (%s)", a->why ? a->why : "no answer");
        else if (!body && r->status == PM__V1__STATUS__NOT_FOUND)
            why = pm_xasprintf ("nothing on this unit (%s)", r->message);
        else if (!body)
            why = pm_xasprintf ("not available (%s: %s)", pm_status_name (r->status), r->message);
        if (all) {
            cJSON *part = body ? pm_msg_to_json (body) : cJSON_CreateObject ();
            if (why)
                cJSON_AddStringToObject (part, "error", why);
            cJSON_AddItemToObject (all, a->daemon, part);
        }
        else if (why)
            printf ("%s: %s\n", a->daemon, why);
        else if (is_intake && r->body_case == PM__V1__REPLY__BODY_INTAKE_UNIT_GET)
            s_print_intake (r->intake_unit_get);
        else {
            printf ("%s:\n", a->daemon);
            cJSON *j = pm_msg_to_json (body);
            if (j)
                s_print_json (j, 0);
            cJSON_Delete (j);
        }
        free (why);
    }
    if (all) {
        cJSON *o = cJSON_CreateObject ();
        cJSON_AddStringToObject (o, "unit_id", unit_id);
        cJSON_AddItemToObject (o, "parts", all);
        code = pmctl_print_json (o, false);
    }
    pmctl_ask_free (asks, n);
    for (size_t i = 0; i < n; i++) {
        free ((char *) asks[i].method);
        if (bodies[i])
            protobuf_c_message_free_unpacked (bodies[i], NULL);
    }
    free (asks);
    free (bodies);
    zmq_ctx_term (zctx);
    if (code != PMCTL_OK)
        return code;
    if (!intake_ok && !ctl->json)
        fprintf (stderr, "pmctl: %s: intake %s\n", unit_id,
                 any_ok ? "did not answer for it" : "holds no such unit (or is down): is the id ESTATE/BUILDING/UNIT?");
    return intake_ok ? PMCTL_OK : PMCTL_FAIL;
}
