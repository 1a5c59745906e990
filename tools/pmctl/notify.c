/* notify.c - `pmctl notify`: what an operator does with notify's messages.
 *
 *   pmctl notify show ID                      one message, its text and why it is where it is
 *   pmctl notify retry ID                     a dead letter (FAILED) back to the queue
 *   pmctl notify drop ID [--reason TEXT]      a waiting message or a dead letter given up
 *   pmctl notify optout sms|email ADDRESS [--in]   an owner (no longer) wants that channel
 *
 * Dead letters and their ids are listed by `pmctl queues notify`. */
#include "pmctl.h"
#include "pm/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_call (pmctl_t *ctl, const char *method, ProtobufCMessage *body, Pm__V1__Reply **reply)
{
    const char *endpoint = pmctl_endpoint (ctl, "notify", "command");
    if (!endpoint) {
        pmctl_unknown_daemon (ctl, "notify");
        return PMCTL_USAGE;
    }
    pm_client_t *c = pmctl_client (ctl, NULL, "notify");
    if (!c) {
        fprintf (stderr, "pmctl: cannot use notify's endpoint %s\n", endpoint);
        return PMCTL_FAIL;
    }
    Pm__V1__Request req;
    char id[27];
    pmctl_request (ctl, &req, id, method, body);
    int code = pmctl_call (ctl, c, "notify", endpoint, &req, reply);
    pm_client_destroy (&c);
    return code;
}

static void
s_print_view (const Pm__V1__MessageView *m, bool text)
{
    printf ("%s  %s  %s %s to %s %s (%s), attempt %u\n", m->message_id, m->state, m->template_, m->channel,
            m->recipient_name, m->recipient, m->role, m->attempts);
    printf ("  from %s (%s), unit %s\n", m->source_event_type, m->source_event_id, m->unit_id);
    if (*m->reason)
        printf ("  %s\n", m->reason);
    if (text && *m->subject)
        printf ("  subject: %s\n", m->subject);
    if (text && *m->text)
        printf ("  text: %s%s\n", m->text, m->segments ? "" : "");
    if (text && m->segments)
        printf ("  %u SMS segment(s)\n", m->segments);
}

/* Prints the reply: its message and the message it carries; the exit code. */
static int
s_show (pmctl_t *ctl, Pm__V1__Reply *r, const Pm__V1__MessageView *m, bool text)
{
    int code = PMCTL_OK;
    if (r->status != PM__V1__STATUS__OK) {
        fprintf (stderr, "pmctl: notify: %s: %s\n", pm_status_name (r->status), r->message);
        code = PMCTL_FAIL;
    }
    else if (ctl->json)
        code = pmctl_print_json (pm_msg_to_json (&r->base), false);
    else {
        if (!text)
            printf ("%s\n", r->message);
        if (m)
            s_print_view (m, text);
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return code;
}

int
pmctl_notify (pmctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "reason", required_argument, NULL, 'r' },
        { "in", no_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    const char *reason = "";
    bool in = false;
    int code = PMCTL_OK, opt;
    while ((opt = pmctl_getopt (ctl, argc, argv, "", opts, &code)) != PMCTL_OPT_END) {
        if (opt == PMCTL_OPT_STOP)
            return code;
        if (opt == 'r')
            reason = optarg;
        else
            in = true;
    }
    if ((code = pmctl_load_config (ctl)) != PMCTL_OK)
        return code;
    int n = argc - optind;
    if (n < 1)
        return pmctl_usage_error (ctl, "needs show, retry, drop or optout");
    const char *sub = argv[optind];
    Pm__V1__Reply *r;
    if (strcmp (sub, "show") == 0 || strcmp (sub, "retry") == 0 || strcmp (sub, "drop") == 0) {
        if (n != 2)
            return pmctl_usage_error (ctl, "%s needs one message ID (pmctl queues notify lists dead letters)", sub);
        const char *id = argv[optind + 1];
        if (sub[0] == 's') {
            Pm__V1__NotifyMessageGetRequest b = PM__V1__NOTIFY_MESSAGE_GET_REQUEST__INIT;
            b.message_id = (char *) id;
            if ((code = s_call (ctl, "notify.message.get", &b.base, &r)) != PMCTL_OK)
                return code;
            return s_show (ctl, r, r->body_case == PM__V1__REPLY__BODY_NOTIFY_MESSAGE_GET ? r->notify_message_get->message : NULL,
                           true);
        }
        if (sub[0] == 'r') {
            Pm__V1__NotifyMessageRetryRequest b = PM__V1__NOTIFY_MESSAGE_RETRY_REQUEST__INIT;
            b.message_id = (char *) id;
            if ((code = s_call (ctl, "notify.message.retry", &b.base, &r)) != PMCTL_OK)
                return code;
            return s_show (ctl, r,
                           r->body_case == PM__V1__REPLY__BODY_NOTIFY_MESSAGE_RETRY ? r->notify_message_retry->message : NULL,
                           false);
        }
        Pm__V1__NotifyMessageDropRequest b = PM__V1__NOTIFY_MESSAGE_DROP_REQUEST__INIT;
        b.message_id = (char *) id;
        b.reason = (char *) reason;
        if ((code = s_call (ctl, "notify.message.drop", &b.base, &r)) != PMCTL_OK)
            return code;
        return s_show (ctl, r, r->body_case == PM__V1__REPLY__BODY_NOTIFY_MESSAGE_DROP ? r->notify_message_drop->message : NULL,
                       false);
    }
    if (strcmp (sub, "optout") == 0) {
        if (n != 3)
            return pmctl_usage_error (ctl, "optout needs CHANNEL (sms or email) and ADDRESS");
        Pm__V1__NotifyOptoutSetRequest b = PM__V1__NOTIFY_OPTOUT_SET_REQUEST__INIT;
        b.channel = argv[optind + 1];
        b.address = argv[optind + 2];
        b.opted_out = !in;
        b.reason = (char *) reason;
        if ((code = s_call (ctl, "notify.optout.set", &b.base, &r)) != PMCTL_OK)
            return code;
        return s_show (ctl, r, NULL, false);
    }
    return pmctl_usage_error (ctl, "unknown '%s'; expected show, retry, drop or optout", sub);
}
