/* notices.c - the move-in notice (入住通知书): intake asks, notify sends.
 *
 * intake.notice.send emits one intake.notice.requested per unit, at most once
 * per unit and notice (a notice is named by notice_id, or by its content when
 * none is given, so sending the same notice again asks nothing twice). A unit
 * becomes NOTIFIED when notify.message.sent for that notice arrives. A notice
 * not sent within [intake] notice_overdue_h (a durable timer) waits in
 * ops.queues `notices_undelivered`, with the last failure notify reported. */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"

#include <string.h>

#define S_OVERDUE_TIMER "intake.notice.overdue"

static const char *const s_default_bring[] = { "身份证", "购房合同", "入住通知书" };

/* The notice's id from its content: the same notice sent again has the same id. */
static char *
s_notice_id (pm_ctx_t *ctx, const Pm__V1__IntakeNoticeSendRequest *q)
{
    crypto_generichash_state st;
    unsigned char h[8];
    char hex[17];
    crypto_generichash_init (&st, NULL, 0, sizeof h);
    const char *parts[] = { q->window, q->place, q->fees_note };
    for (size_t i = 0; i < 3; i++)
        crypto_generichash_update (&st, (const unsigned char *) parts[i], strlen (parts[i]) + 1);
    for (size_t i = 0; i < q->n_bring; i++)
        crypto_generichash_update (&st, (const unsigned char *) q->bring[i], strlen (q->bring[i]) + 1);
    crypto_generichash_final (&st, h, sizeof h);
    sodium_bin2hex (hex, sizeof hex, h, sizeof h);
    return pm_arena_printf (ctx->arena, "N-%s", hex);
}

/* Asks for the notice for one unit: 0 requested, 1 had it already, 2 checked
 * in already (no notice needed), or a pm_err. */
static int
s_request (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__IntakeNoticeSendRequest *q,
           const char *notice_id, char **bring, size_t n_bring, const Pm__Intake__UnitRecord *unit)
{
    intake_t *in = ctx->app;
    intake_case_t c;
    int rc = intake_case_load (ctx, txn, unit->unit->unit_id, &c);
    if (rc != PM_OK)
        return rc;
    Pm__Intake__CaseRecord *r = c.rec;
    if (r->state >= PM__INTAKE__UNIT_STATE__CHECKED_IN)
        return 2;
    for (size_t i = 0; i < r->n_notices; i++)
        if (strcmp (r->notices[i], notice_id) == 0)
            return 1;
    char **notices = pm_arena_alloc (ctx->arena, (r->n_notices + 1) * sizeof *notices);
    if (r->n_notices)
        memcpy (notices, r->notices, r->n_notices * sizeof *notices);
    notices[r->n_notices++] = (char *) notice_id;
    r->notices = notices;
    r->notice_requested_ms = ctx->now_ms;
    r->notice_overdue = false;
    if (r->notified_ms == 0)
        pm_timer_set (txn, S_OVERDUE_TIMER, r->unit_id, ctx->now_ms + in->notice_overdue_ms, NULL, 0);
    if ((rc = intake_case_save (ctx, txn, &c)) != PM_OK)
        return rc;
    Pm__V1__Notice *n = pm_arena_alloc (ctx->arena, sizeof *n);
    pm__v1__notice__init (n);
    n->notice_id = (char *) notice_id;
    n->unit_id = unit->unit->unit_id;
    n->estate_id = unit->unit->estate_id;
    n->owners = unit->unit->owners;
    n->n_owners = unit->unit->n_owners;
    n->window = q->window;
    n->place = q->place;
    n->bring = bring;
    n->n_bring = n_bring;
    n->fees_note = q->fees_note;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_NOTICE;
    ev.notice = n;
    return intake_emit (out, txn, "intake.notice.requested", n->estate_id, n->unit_id, &ev);
}

int
intake_on_notice_send (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeNoticeSendRequest *q = req->intake_notice_send;
    if (!*q->estate_id && q->n_unit_ids == 0)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "estate_id or unit_ids: neither given; name the estate (every unit not yet checked in) "
                         "or the units, e.g. {\"estate_id\":\"E01\",\"window\":\"2026-12-05 to 2026-12-20\",...}");
    if (*q->estate_id && q->n_unit_ids)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "estate_id and unit_ids: both given; give one (the estate, or a list of its units)");
    if (!*q->window)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "window: empty; say when to come, e.g. \"2026-12-05 to 2026-12-20\"");
    if (!*q->place)
        return pm_reply (out, PM__V1__STATUS__INVALID, "place: empty; say where to come, e.g. \"3号楼一层物业服务中心\"");
    char **bring = q->bring;
    size_t n_bring = q->n_bring;
    if (n_bring == 0) {
        bring = (char **) s_default_bring;
        n_bring = sizeof s_default_bring / sizeof s_default_bring[0];
    }
    const char *notice_id = *q->notice_id ? q->notice_id : s_notice_id (ctx, q);
    Pm__V1__IntakeNoticeSendReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_notice_send_reply__init (r);
    r->notice_id = (char *) notice_id;
    int rc = PM_OK;
    if (*q->estate_id) {
        pm_key_t k;
        if (!pm_txn_has (txn, INTAKE_ESTATES, intake_estate_key (&k, q->estate_id)))
            return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "estate_id: no estate '%s' (import its units first)",
                             q->estate_id);
        pm_scan_t s;
        for (pm_scan_prefix (&s, txn, INTAKE_UNITS, pm_key (&k, "p", pm_arena_printf (ctx->arena, "%s/", q->estate_id)));
             s.ok && rc >= 0; pm_scan_next (&s)) {
            Pm__Intake__UnitRecord *u;
            if (pm_scan_msg (&s, &pm__intake__unit_record__descriptor, &u) != PM_OK || !u->unit)
                continue;
            rc = s_request (ctx, txn, out, q, notice_id, bring, n_bring, u);
            r->requested += rc == 0;
            r->already += rc == 1;
            r->skipped += rc == 2;
        }
    }
    else
        for (size_t i = 0; i < q->n_unit_ids && rc >= 0; i++) {
            Pm__Intake__UnitRecord *u;
            if (intake_unit_load (ctx, txn, q->unit_ids[i], &u) != PM_OK)
                return intake_reply_no_unit (out, q->unit_ids[i]); /* nothing is kept: the reply is not OK */
            rc = s_request (ctx, txn, out, q, notice_id, bring, n_bring, u);
            r->requested += rc == 0;
            r->already += rc == 1;
            r->skipped += rc == 2;
        }
    if (rc < 0)
        return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: %s", pm_strerror (rc));
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "notice %s: requested for %u unit%s, %u had it already, %u checked in",
                     notice_id, r->requested, r->requested == 1 ? "" : "s", r->already, r->skipped);
}

/* notify.message.sent | .failed: a notice delivered (the unit is NOTIFIED) or not. */
int
intake_on_message (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__MessageOutcome *m = ev->message;
    if (!*m->notice_id || !*m->unit_id)
        return PM__V1__STATUS__OK; /* not a move-in notice */
    pm_key_t k;
    if (!pm_txn_has (txn, INTAKE_UNITS, intake_unit_key (&k, m->unit_id)))
        return PM__V1__STATUS__OK; /* a unit intake does not hold: nothing to follow */
    intake_case_t c;
    if (intake_case_load (ctx, txn, m->unit_id, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "case of %s does not decode", m->unit_id);
    Pm__Intake__CaseRecord *r = c.rec;
    bool ours = false;
    for (size_t i = 0; i < r->n_notices && !ours; i++)
        ours = strcmp (r->notices[i], m->notice_id) == 0;
    if (!ours)
        return PM__V1__STATUS__OK; /* a notice this unit was not sent (or from before a rebuild) */
    if (strcmp (ev->type, "notify.message.sent") == 0) {
        if (r->notified_ms)
            return PM__V1__STATUS__OK; /* another channel or owner: NOTIFIED already */
        r->notified_ms = m->at_ms ? m->at_ms : ev->at_ms;
        r->notice_failure = "";
        if (r->state == PM__INTAKE__UNIT_STATE__REGISTERED)
            intake_case_state (ctx, &c, PM__INTAKE__UNIT_STATE__NOTIFIED);
        pm_timer_cancel (txn, S_OVERDUE_TIMER, r->unit_id);
    }
    else if (strcmp (ev->type, "notify.message.failed") == 0) {
        if (r->notified_ms)
            return PM__V1__STATUS__OK;
        r->notice_failure = pm_arena_printf (ctx->arena, "%s to %s failed: %s", *m->channel ? m->channel : "message",
                                             *m->recipient ? m->recipient : "the owner",
                                             *m->reason ? m->reason : "no reason given");
    }
    else
        return PM__V1__STATUS__OK;
    return intake_case_save (ctx, txn, &c) == PM_OK ? PM__V1__STATUS__OK
                                                      : pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage");
}

/* A notice requested a day ago and still not sent: it joins the queue. */
int
intake_on_notice_overdue (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                          pm_out_t *out)
{
    intake_case_t c;
    if (intake_case_load (ctx, txn, key, &c) != PM_OK)
        return PM__V1__STATUS__OK;
    if (c.rec->notified_ms || c.rec->notice_overdue)
        return PM__V1__STATUS__OK;
    c.rec->notice_overdue = true;
    return intake_case_save (ctx, txn, &c) == PM_OK ? PM__V1__STATUS__OK
                                                      : pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage");
}
