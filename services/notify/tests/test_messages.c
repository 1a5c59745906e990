/* test_messages - events of every daemon turned into messages, in the
 * event's own transaction, on a real LMDB (pm_daemon_apply, no sockets, the
 * dispatcher never runs): who gets what, when it may go (quiet hours,
 * reminders the day before), what is never sent (settled invoices, opt-outs,
 * superseded reminders), what becomes a dead letter at once, and the
 * operator's commands and reads. */
#include "notify_test.h"

static int
s_setup (void **state)
{
    *state = nt_new (NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    nt_destroy ((nt_t **) state);
    return 0;
}

#define UNIT "E01/1-101"

static void
test_notice_goes_to_each_owner_on_each_channel (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), nt_li (t));
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), nt_li (t)));

    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", "张伟");
    assert_string_equal (m->state, "PENDING");
    assert_string_equal (m->recipient, "138****5678");
    assert_string_equal (m->role, "owner");
    assert_string_equal (m->notice_id, "NOTICE-E01-1");
    assert_string_equal (m->source_event_id, "intake:2");
    assert_non_null (strstr (m->dedupe_key, "intake:2/move_in_notice/sms/"));
    Pm__V1__MessageView *full = nt_get (t, m->message_id);
    assert_non_null (strstr (full->text, "【翠湖花园物业】张伟您好！您的房屋翠湖花园1栋101室已具备交付条件"));
    assert_non_null (strstr (full->text, "请携带身份证、购房合同"));
    assert_int_equal (full->segments, notify_sms_segments (full->text));
    unsigned segments = full->segments;
    assert_true (segments >= 2);
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "sms", "李娜")->recipient, "139****4321");
    char e_id[24];
    snprintf (e_id, sizeof e_id, "%s", nt_message (t, UNIT, "move_in_notice", "email", "张伟")->message_id);
    Pm__V1__MessageView *e = nt_get (t, e_id);
    assert_string_equal (e->subject, "入住通知书：翠湖花园1栋101室");
    assert_non_null (strstr (e->text, "尊敬的张伟：\n\n您好！"));
    assert_string_equal (e->recipient, "z***@example.com");
    /* Li Na has no email: "email?" skips her, counted, no dead letter */
    assert_null (nt_find (t, UNIT, "move_in_notice", "email", "李娜"));
    assert_int_equal (nt_metric (t, "notify_skipped_total", "reason=\"no_email\""), 1);
    assert_int_equal (nt_metric (t, "notify_messages", "state=\"PENDING\""), 3);
    assert_int_equal (nt_metric (t, "notify_backlog", "channel=\"sms\""), 2);
    assert_int_equal (pmt_queue (t->f->d, "dead_letters")->count, 0);
    assert_true (segments >= 2);
    assert_int_equal (nt_metric (t, "notify_sms_segments_total", ""), 0); /* counted when sent: what the provider bills */
}

static void
test_snapshot_events_tell_nobody_anything (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    Pm__V1__Event *ev = nt_notice (t, UNIT, nt_zhang (t), NULL);
    ev->snapshot = true; /* a rebuild restates it: not news */
    assert_int_equal (pmt_apply_event (t->f->d, ev)->status, PM__V1__STATUS__OK);
    assert_int_equal (nt_unit_get (t, UNIT)->total, 0);
    assert_int_equal (nt_metric (t, "notify_messages_created_total", ""), 0);
}

static void
test_quiet_hours_defer_sms_until_morning (void **state)
{
    nt_t *t = *state;
    pmt_clock_set (t->f->d, NT_NIGHT); /* 22:00 in Shanghai */
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    Pm__V1__MessageView *sms = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_string_equal (sms->state, "DEFERRED");
    int64_t morning;
    pm_time_parse ("2026-12-02T00:00:00Z", &morning); /* 08:00 the next day */
    assert_true (sms->due_ms == morning);
    assert_non_null (strstr (sms->reason, "quiet hours 21:00-08:00 (Asia/Shanghai): goes at 12月2日 08:00"));
    /* email is not held back by quiet hours */
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "email", NULL)->state, "PENDING");
    assert_int_equal (nt_metric (t, "notify_deferred_total", "reason=\"quiet_hours\""), 1);
    /* what is due now: the email, not the deferred SMS; at 08:00 the SMS too */
    assert_int_equal (nt_metric (t, "notify_backlog", "channel=\"sms\""), 1);
    assert_int_equal (nt_metric (t, "notify_due", "channel=\"sms\""), 0);
    assert_int_equal (nt_metric (t, "notify_due", "channel=\"email\""), 1);
    pmt_clock_set (t->f->d, "2026-12-02T00:00:00Z");
    assert_int_equal (nt_metric (t, "notify_due", "channel=\"sms\""), 1);
}

static void
test_urgent_staff_alert_goes_in_quiet_hours (void **state)
{
    nt_t *t = *state;
    pmt_clock_set (t->f->d, NT_NIGHT);
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_sla (t, "workorder.sla.breached", UNIT, "WO-E01-000042", "李明"));
    Pm__V1__MessageView *m = nt_message (t, UNIT, "sla_breached", "sms", "李明");
    assert_string_equal (m->state, "PENDING"); /* urgent in rules.conf */
    assert_true (m->urgent);
    assert_string_equal (m->role, "team_lead");
    assert_string_equal (m->recipient, "139****1003");
    char sla_id[24];
    snprintf (sla_id, sizeof sla_id, "%s", m->message_id);
    assert_non_null (strstr (nt_get (t, sla_id)->text, "【SLA超时】工单WO-E01-000042（翠湖花园1栋101室，water）已超过完工时限"));
    /* the warning is not urgent: it waits for the morning */
    nt_apply (t, nt_sla (t, "workorder.sla.warning", UNIT, "WO-E01-000043", ""));
    m = nt_message (t, UNIT, "sla_warning", "sms", NULL);
    assert_string_equal (m->state, "DEFERRED");
    assert_string_equal (m->recipient_name, "李明"); /* the alert named nobody: the lead of 水电组 in E01 */
}

static void
test_reminder_the_day_before_is_superseded_when_moved (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_appointment (t, "intake.appointment.booked", UNIT, "2026-12-05T01:30:00Z", nt_zhang (t)));
    assert_string_equal (nt_message (t, UNIT, "appointment_booked", "sms", NULL)->state, "PENDING");
    Pm__V1__MessageView *r = nt_message (t, UNIT, "appointment_reminder", "sms", NULL);
    int64_t due;
    pm_time_parse ("2026-12-04T01:30:00Z", &due); /* 09:30 the day before */
    assert_true (r->due_ms == due);
    assert_string_equal (r->state, "PENDING");
    assert_non_null (strstr (r->reason, "scheduled for 12月4日 09:30"));
    char first[24];
    snprintf (first, sizeof first, "%s", r->message_id);
    assert_non_null (strstr (nt_get (t, first)->text, "入住办理时间为12月5日 09:30-10:00"));

    /* moved to the 8th: the reminder for the 5th is dropped, one for the 8th made */
    Pm__V1__Event *mv = nt_appointment (t, "intake.appointment.moved", UNIT, "2026-12-08T06:00:00Z", nt_zhang (t));
    pm_time_parse ("2026-12-05T01:30:00Z", &mv->appointment->previous_start_ms);
    nt_apply (t, mv);
    assert_int_equal (nt_emitted (t, "notify.message.failed"), 1);
    Pm__V1__MessageView *old = nt_get (t, first);
    assert_string_equal (old->state, "DROPPED");
    assert_non_null (strstr (old->reason, "superseded by intake.appointment.moved (intake:3)"));
    char moved_id[24];
    snprintf (moved_id, sizeof moved_id, "%s", nt_message (t, UNIT, "appointment_moved", "sms", NULL)->message_id);
    Pm__V1__MessageView *moved = nt_get (t, moved_id);
    assert_non_null (strstr (moved->text, "已由12月5日 09:30改为12月8日 14:00-14:30"));
    Pm__V1__NotifyUnitGetReply *u = nt_unit_get (t, UNIT);
    int pending_reminders = 0;
    for (size_t i = 0; i < u->n_messages; i++)
        if (strcmp (u->messages[i]->template_, "appointment_reminder") == 0
            && strcmp (u->messages[i]->state, "PENDING") == 0) {
            pm_time_parse ("2026-12-07T06:00:00Z", &due);
            assert_true (u->messages[i]->due_ms == due);
            pending_reminders++;
        }
    assert_int_equal (pending_reminders, 1);

    /* cancelled: no reminder is left to go */
    nt_apply (t, nt_appointment (t, "intake.appointment.cancelled", UNIT, "2026-12-08T06:00:00Z", nt_zhang (t)));
    u = nt_unit_get (t, UNIT);
    for (size_t i = 0; i < u->n_messages; i++)
        if (strcmp (u->messages[i]->template_, "appointment_reminder") == 0)
            assert_string_equal (u->messages[i]->state, "DROPPED");
    assert_int_equal (nt_metric (t, "notify_dropped_total", "reason=\"superseded\""), 2);
}

static void
test_booked_too_late_for_a_reminder (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_appointment (t, "intake.appointment.booked", UNIT, "2026-12-01T08:00:00Z", nt_zhang (t)));
    assert_non_null (nt_find (t, UNIT, "appointment_booked", "sms", NULL));
    assert_null (nt_find (t, UNIT, "appointment_reminder", "sms", NULL));
    assert_int_equal (nt_metric (t, "notify_skipped_total", "reason=\"past\""), 1);
}

static void
test_settled_invoice_drops_its_reminders_never_the_receipt (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, "INV-E01-000123", 324000, PM__V1__INVOICE_STATE__ISSUED));
    Pm__V1__MessageView *bill = nt_message (t, UNIT, "invoice_issued", "sms", NULL);
    assert_string_equal (bill->invoice_id, "INV-E01-000123");
    char bill_id[24], rem_id[24];
    snprintf (bill_id, sizeof bill_id, "%s", bill->message_id);
    assert_non_null (strstr (nt_get (t, bill_id)->text, "账单INV-E01-000123已出，金额¥3,240.00，请于12月16日前缴纳"));
    nt_apply (t, nt_dunning (t, UNIT, "INV-E01-000123", "T-7", "message"));
    snprintf (rem_id, sizeof rem_id, "%s", nt_message (t, UNIT, "dunning_reminder", "sms", NULL)->message_id);
    assert_non_null (strstr (nt_get (t, rem_id)->text, "尚有¥3,240.00未缴"));
    nt_apply (t, nt_dunning (t, UNIT, "INV-E01-000123", "T+3", "call")); /* a call is staff's, not notify's */
    assert_int_equal (nt_unit_get (t, UNIT)->total, 3); /* bill sms + email, one reminder */

    /* paid at the counter: the receipt goes, the reminders never will */
    Pm__V1__Event *pay = nt_event (t, NT_BILLING, "billing.payment.recorded", UNIT);
    Pm__V1__Payment p = PM__V1__PAYMENT__INIT;
    p.payment_id = "PAY-1";
    p.invoice_id = "INV-E01-000123";
    p.unit_id = UNIT;
    p.amount_fen = 324000;
    p.channel = "counter_card";
    p.receipt_no = "R-000777";
    pay->payload_case = PM__V1__EVENT__PAYLOAD_PAYMENT;
    pay->payment = &p;
    nt_apply (t, pay);
    nt_apply (t, nt_invoice (t, "billing.invoice.settled", UNIT, "INV-E01-000123", 324000, PM__V1__INVOICE_STATE__SETTLED));
    assert_int_equal (nt_emitted (t, "notify.message.failed"), 3);
    Pm__V1__MessageView *r = nt_get (t, rem_id);
    assert_string_equal (r->state, "DROPPED");
    assert_non_null (strstr (r->reason, "invoice INV-E01-000123 was settled before this reminder went out"));
    assert_string_equal (nt_get (t, bill_id)->state, "DROPPED");
    Pm__V1__MessageView *receipt = nt_message (t, UNIT, "payment_receipt", "sms", NULL);
    assert_string_equal (receipt->state, "PENDING");
    char receipt_id[24];
    snprintf (receipt_id, sizeof receipt_id, "%s", receipt->message_id);
    assert_non_null (strstr (nt_get (t, receipt_id)->text, "缴费¥3,240.00（刷卡），收据号R-000777"));
    assert_int_equal (nt_metric (t, "notify_dropped_total", "reason=\"settled\""), 3);

    /* a dunning step that arrives after the settlement is dropped at once */
    nt_apply (t, nt_dunning (t, UNIT, "INV-E01-000123", "T+15", "message"));
    assert_int_equal (nt_emitted (t, "notify.message.failed"), 1);
    assert_int_equal (nt_metric (t, "notify_dropped_total", "reason=\"settled\""), 4);
    assert_int_equal (nt_metric (t, "notify_backlog", "channel=\"sms\""), 1); /* the receipt alone */
}

static void
test_event_waits_for_its_units_contacts (void **state)
{
    nt_t *t = *state;
    /* billing knew the unit before notify applied intake's event */
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, "INV-E01-000001", 100000, PM__V1__INVOICE_STATE__ISSUED));
    Pm__V1__Queue *q = pmt_queue (t->f->d, "awaiting_contacts");
    assert_int_equal (q->count, 1);
    assert_string_equal (q->items[0]->key, "billing:1");
    nt_unit (t, UNIT, nt_zhang (t), nt_li (t));
    assert_int_equal (pmt_queue (t->f->d, "awaiting_contacts")->count, 0);
    assert_non_null (nt_find (t, UNIT, "invoice_issued", "sms", "张伟"));
    assert_non_null (nt_find (t, UNIT, "invoice_issued", "sms", "李娜"));
    assert_non_null (nt_find (t, UNIT, "invoice_issued", "email", "张伟"));
    assert_int_equal (nt_metric (t, "notify_awaiting_contacts_total", ""), 1);

    /* a unit intake never registers: dead letters after await_contacts (24 h) */
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", "E01/9-909", "INV-E01-000002", 100000,
                             PM__V1__INVOICE_STATE__ISSUED));
    pmt_clock_advance (t->f->d, "25h");
    Pm__V1__Queue *dead = pmt_queue (t->f->d, "dead_letters");
    assert_int_equal (dead->count, 2); /* sms and email */
    assert_non_null (strstr (dead->items[0]->reason, "no contacts for unit E01/9-909 after 24 h"));
    assert_int_equal (pmt_queue (t->f->d, "awaiting_contacts")->count, 0);
}

static void
test_unusable_address_is_a_dead_letter_at_once (void **state)
{
    nt_t *t = *state;
    Pm__V1__Owner *bad = nt_owner (t, "王五", "12345", "wang@");
    nt_unit (t, UNIT, bad, NULL);
    nt_apply (t, nt_notice (t, UNIT, bad, NULL));
    assert_int_equal (nt_emitted (t, "notify.message.failed"), 2);
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_string_equal (m->state, "FAILED");
    assert_string_equal (m->reason, "'12345' is not a mobile number (王五, owner)");
    Pm__V1__Queue *dead = pmt_queue (t->f->d, "dead_letters");
    assert_int_equal (dead->count, 2);
    const Pm__V1__QueueItem *it = pmt_queue_item (dead, m->message_id);
    assert_non_null (it);
    assert_non_null (strstr (it->reason, "pmctl notify retry"));
    assert_string_equal (pmt_queue_field (it, "template"), "move_in_notice");
    assert_int_equal (nt_metric (t, "notify_no_address_total", ""), 2);
    assert_int_equal (nt_metric (t, "notify_failed_total", "channel=\"sms\""), 1);
    assert_int_equal (nt_metric (t, "notify_dead_letters", ""), 2);
}

static void
test_work_orders_reach_technician_and_owner (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_order (t, "workorder.order.created", UNIT, "WO-E01-000001", PM__V1__ORDER_SOURCE__REPAIR, ""));
    char c_id[24];
    snprintf (c_id, sizeof c_id, "%s", nt_message (t, UNIT, "order_created", "sms", "张伟")->message_id);
    assert_non_null (strstr (nt_get (t, c_id)->text, "您的报修已受理，工单号WO-E01-000001（water）"));
    nt_apply (t, nt_order (t, "workorder.order.assigned", UNIT, "WO-E01-000001", PM__V1__ORDER_SOURCE__REPAIR, "王建国"));
    Pm__V1__MessageView *tech = nt_message (t, UNIT, "order_assigned", "sms", "王建国");
    assert_string_equal (tech->role, "technician");
    assert_string_equal (tech->recipient, "139****1001");
    assert_non_null (nt_find (t, UNIT, "order_technician", "sms", "张伟"));
    /* a defect's order: the owner hears from inspection, not of the order */
    nt_apply (t, nt_order (t, "workorder.order.created", UNIT, "WO-E01-000002", PM__V1__ORDER_SOURCE__DEFECT, ""));
    nt_apply (t, nt_order (t, "workorder.order.assigned", UNIT, "WO-E01-000002", PM__V1__ORDER_SOURCE__DEFECT, "王八"));
    /* ... nor when it is done: it is not the owner's to confirm (the inspector verifies it) */
    nt_apply (t, nt_order (t, "workorder.order.done", UNIT, "WO-E01-000002", PM__V1__ORDER_SOURCE__DEFECT, "王八"));
    Pm__V1__NotifyUnitGetReply *u = nt_unit_get (t, UNIT);
    int owner_msgs = 0;
    for (size_t i = 0; i < u->n_messages; i++)
        owner_msgs += strcmp (u->messages[i]->role, "owner") == 0;
    assert_int_equal (owner_msgs, 2);
    /* a technician missing from the directory: a dead letter that says so */
    Pm__V1__MessageView *x = nt_message (t, UNIT, "order_assigned", "sms", "王八");
    assert_string_equal (x->state, "FAILED");
    assert_string_equal (x->reason, "technician 王八 of E01 is not in the staff directory (deploy/notify/staff.conf)");
    assert_int_equal (nt_metric (t, "notify_unknown_staff_total", ""), 1);
}

/* workorder names a technician by the roster's id ("T02") and gives the name
 * beside it: the staff directory is searched by name, and the owner reads it */
static void
test_work_orders_name_people_as_the_staff_directory_does (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    Pm__V1__Event *ev = nt_order (t, "workorder.order.assigned", UNIT, "WO-E01-000007", PM__V1__ORDER_SOURCE__REPAIR, "T02");
    ev->order->technician_name = "李师傅";
    ev->order->team_lead = "T01 王建国";
    ev->order->team_lead_name = "王建国";
    nt_apply (t, ev);
    Pm__V1__MessageView *tech = nt_message (t, UNIT, "order_assigned", "sms", "李师傅");
    assert_string_equal (tech->state, "PENDING");
    assert_string_equal (tech->role, "technician");
    assert_string_equal (tech->recipient, "139****0002");
    char o_id[24];
    snprintf (o_id, sizeof o_id, "%s", nt_message (t, UNIT, "order_technician", "sms", "张伟")->message_id);
    assert_non_null (strstr (nt_get (t, o_id)->text, "已派给维修师傅李师傅"));
    /* an SLA breach goes to the team lead by name */
    ev = nt_sla (t, "workorder.sla.breached", UNIT, "WO-E01-000007", "T01 王建国");
    ev->sla->technician = "T02";
    ev->sla->technician_name = "李师傅";
    ev->sla->team_lead_name = "王建国";
    nt_apply (t, ev);
    Pm__V1__MessageView *lead = nt_message (t, UNIT, "sla_breached", "sms", "王建国");
    assert_string_equal (lead->state, "PENDING");
    assert_string_equal (lead->role, "team_lead");
    snprintf (o_id, sizeof o_id, "%s", lead->message_id);
    assert_non_null (strstr (nt_get (t, o_id)->text, "责任人李师傅"));
    assert_int_equal (nt_metric (t, "notify_unknown_staff_total", ""), 0);
    assert_int_equal (pmt_queue (t->f->d, "dead_letters")->count, 0);
}

static void
test_opted_out_owner_is_not_texted (void **state)
{
    nt_t *t = *state;
    Pm__V1__NotifyOptoutSetRequest o = PM__V1__NOTIFY_OPTOUT_SET_REQUEST__INIT;
    o.channel = "sms";
    o.address = "13812345678";
    o.opted_out = true;
    Pm__V1__Reply *r = pmt_call_expect (t->f->d, "opt-1", "notify.optout.set", &o.base, PM__V1__STATUS__OK);
    assert_string_equal (r->notify_optout_set->recipient, "138****5678");
    o.channel = "fax";
    r = pmt_call_expect (t->f->d, "opt-2", "notify.optout.set", &o.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "channel: 'fax' is not a channel"));
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    assert_string_equal (m->state, "DROPPED");
    assert_string_equal (m->reason, "138****5678 opted out of sms");
    assert_string_equal (nt_message (t, UNIT, "move_in_notice", "email", NULL)->state, "PENDING");
    assert_int_equal (nt_metric (t, "notify_dropped_total", "reason=\"opted_out\""), 1);
    /* back in */
    o.channel = "sms";
    o.opted_out = false;
    pmt_call_expect (t->f->d, "opt-3", "notify.optout.set", &o.base, PM__V1__STATUS__OK);
    nt_apply (t, nt_invoice (t, "billing.invoice.issued", UNIT, "INV-E01-000009", 100, PM__V1__INVOICE_STATE__ISSUED));
    assert_string_equal (nt_message (t, UNIT, "invoice_issued", "sms", NULL)->state, "PENDING");
}

static void
test_reads_refuse_clearly (void **state)
{
    nt_t *t = *state;
    Pm__V1__NotifyUnitGetRequest u = PM__V1__NOTIFY_UNIT_GET_REQUEST__INIT;
    u.unit_id = "E01/9-999";
    Pm__V1__Reply *r = pmt_call (t->f->d, "", "notify.unit.get", &u.base);
    assert_int_equal (r->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (r->message, "E01/9-999"));
    u.unit_id = "";
    assert_int_equal (pmt_call (t->f->d, "", "notify.unit.get", &u.base)->status, PM__V1__STATUS__INVALID);
    Pm__V1__NotifyMessageGetRequest g = PM__V1__NOTIFY_MESSAGE_GET_REQUEST__INIT;
    g.message_id = "M9";
    assert_int_equal (pmt_call (t->f->d, "", "notify.message.get", &g.base)->status, PM__V1__STATUS__NOT_FOUND);
    /* the unit's owners with their addresses masked */
    nt_unit (t, UNIT, nt_zhang (t), nt_li (t));
    Pm__V1__NotifyUnitGetReply *got = nt_unit_get (t, UNIT);
    assert_int_equal (got->n_owners, 2);
    assert_string_equal (got->owners[0]->phone, "138****5678");
    assert_string_equal (got->owners[0]->email, "z***@example.com");
    assert_int_equal (got->total, 0);
}

static void
test_operator_retries_and_drops (void **state)
{
    nt_t *t = *state;
    Pm__V1__Owner *bad = nt_owner (t, "王五", "12345", "");
    bad->owner_key = "owner-wang";
    nt_unit (t, UNIT, bad, NULL);
    nt_apply (t, nt_notice (t, UNIT, bad, NULL));
    Pm__V1__MessageView *m = nt_message (t, UNIT, "move_in_notice", "sms", NULL);
    char id[24];
    snprintf (id, sizeof id, "%s", m->message_id);

    Pm__V1__NotifyMessageRetryRequest rq = PM__V1__NOTIFY_MESSAGE_RETRY_REQUEST__INIT;
    rq.message_id = id;
    Pm__V1__Reply *r = pmt_call_expect (t->f->d, "retry-1", "notify.message.retry", &rq.base, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "still has no usable sms address"));
    /* intake corrects the phone: the retry takes the new one */
    Pm__V1__Owner *fixed = nt_owner (t, "王五", "13700001111", "");
    fixed->owner_key = "owner-wang";
    nt_unit (t, UNIT, fixed, NULL);
    r = pmt_call_expect (t->f->d, "retry-2", "notify.message.retry", &rq.base, PM__V1__STATUS__OK);
    assert_string_equal (r->notify_message_retry->message->state, "PENDING");
    assert_string_equal (r->notify_message_retry->message->recipient, "137****1111");
    assert_int_equal (pmt_queue (t->f->d, "dead_letters")->count, 0);
    /* a retried request id is answered from its first reply, nothing twice */
    pmt_call_expect (t->f->d, "retry-2", "notify.message.retry", &rq.base, PM__V1__STATUS__OK);
    r = pmt_call_expect (t->f->d, "retry-3", "notify.message.retry", &rq.base, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "is PENDING; only a dead letter (FAILED) is resent by hand"));

    Pm__V1__NotifyMessageDropRequest dq = PM__V1__NOTIFY_MESSAGE_DROP_REQUEST__INIT;
    dq.message_id = id;
    dq.reason = "owner came to the office";
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = "drop-1";
    req.method = "notify.message.drop";
    req.actor = "pmctl:alice";
    pm_body_set (&req.base, "notify.message.drop", &dq.base);
    r = pmt_apply (t->f->d, &req);
    assert_int_equal (r->status, PM__V1__STATUS__OK);
    assert_string_equal (r->notify_message_drop->message->state, "DROPPED");
    assert_string_equal (r->notify_message_drop->message->reason, "dropped by pmctl:alice: owner came to the office");
    assert_int_equal (nt_emitted (t, "notify.message.failed"), 1);
    req.id = "drop-2";
    r = pmt_apply (t->f->d, &req);
    assert_int_equal (r->status, PM__V1__STATUS__CONFLICT);
    assert_non_null (strstr (r->message, "is DROPPED already"));
    dq.message_id = "M0000009999";
    assert_int_equal (pmt_call (t->f->d, "drop-3", "notify.message.drop", &dq.base)->status, PM__V1__STATUS__NOT_FOUND);
    assert_int_equal (nt_metric (t, "notify_dropped_total", "reason=\"operator\""), 1);
}

static void
test_messages_survive_restart (void **state)
{
    nt_t *t = *state;
    nt_unit (t, UNIT, nt_zhang (t), NULL);
    nt_apply (t, nt_notice (t, UNIT, nt_zhang (t), NULL));
    pmt_fixture_restart (t->f);
    assert_int_equal (nt_unit_get (t, UNIT)->total, 2);
    assert_int_equal (nt_metric (t, "notify_messages", "state=\"PENDING\""), 2);
    /* the same event replayed by intake is turned away by the cursor: nothing twice */
    t->seq[NT_INTAKE]--;
    pmt_event_ignored (t->f->d, nt_notice (t, UNIT, nt_zhang (t), NULL));
    assert_int_equal (nt_unit_get (t, UNIT)->total, 2);
}

int
main (void)
{
    pm_log_init ("test_messages", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_notice_goes_to_each_owner_on_each_channel, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_events_tell_nobody_anything, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quiet_hours_defer_sms_until_morning, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_urgent_staff_alert_goes_in_quiet_hours, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reminder_the_day_before_is_superseded_when_moved, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_booked_too_late_for_a_reminder, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_settled_invoice_drops_its_reminders_never_the_receipt, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_event_waits_for_its_units_contacts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unusable_address_is_a_dead_letter_at_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_work_orders_reach_technician_and_owner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_work_orders_name_people_as_the_staff_directory_does, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_opted_out_owner_is_not_texted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reads_refuse_clearly, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_operator_retries_and_drops, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_messages_survive_restart, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
