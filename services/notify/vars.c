/* vars.c - what each event of the contract gives a message: the variables
 * templates may use (with the longest value each is expected to take, for
 * SMS budgets), the times a scheduled rule may be set against, and how both
 * are read off the event. Also the formats people read: ¥3,240.00,
 * 12月5日 09:00, 翠湖花园1栋101室. */
#include "notify.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *const notify_channels[NOTIFY_NCHANNELS] = { "sms", "email" };
const char *const notify_to_names[NOTIFY_NTO] = { "owners", "technician", "team_lead", "manager" };
const char *const notify_time_names[NOTIFY_NTIMES] = { "slot_start", "due", "deadline", "complete_by" };

int
notify_channel (const char *name)
{
    for (int i = 0; i < NOTIFY_NCHANNELS; i++)
        if (strcmp (notify_channels[i], name) == 0)
            return i;
    return -1;
}

const notify_var_def_t notify_vars[NOTIFY_NVARS] = {
    [V_NAME] = { "name", 10 },             /* the person addressed */
    [V_UNIT_NAME] = { "unit_name", 24 },   /* 翠湖花园1栋101室 */
    [V_UNIT_ID] = { "unit_id", 40 },
    [V_ESTATE_NAME] = { "estate_name", 16 },
    [V_NOTICE_ID] = { "notice_id", 24 },
    [V_WINDOW] = { "window", 30 },
    [V_PLACE] = { "place", 24 },
    [V_BRING] = { "bring", 40 },
    [V_FEES_NOTE] = { "fees_note", 60 },
    [V_SLOT] = { "slot", 18 },             /* 12月25日 09:00-09:30 */
    [V_PREVIOUS_SLOT] = { "previous_slot", 18 },
    [V_COUNTER] = { "counter", 3 },
    [V_REASON] = { "reason", 30 },
    [V_KEY_SET] = { "key_set", 4 },
    [V_KEYS] = { "keys", 3 },
    [V_RECEIVED_BY] = { "received_by", 10 },
    [V_ROUND_NO] = { "round_no", 3 },
    [V_INSPECTOR] = { "inspector", 10 },
    [V_DEFECTS] = { "defects", 4 },
    [V_DEFECT_ID] = { "defect_id", 32 },
    [V_ROOM] = { "room", 8 },
    [V_CATEGORY] = { "category", 10 },
    [V_DESCRIPTION] = { "description", 40 },
    [V_DEADLINE] = { "deadline", 12 },     /* 12月25日 18:00 */
    [V_SEVERITY] = { "severity", 4 },
    [V_ORDER_ID] = { "order_id", 20 },
    [V_TECHNICIAN] = { "technician", 10 },
    [V_TEAM] = { "team", 12 },
    [V_COMPLETE_BY] = { "complete_by", 12 },
    [V_SOURCE] = { "source", 10 },         /* defect, repair, complaint (for if=) */
    [V_SOURCE_TEXT] = { "source_text", 4 },/* 整改, 报修, 投诉 */
    [V_PRIORITY] = { "priority", 8 },
    [V_TEAM_LEAD] = { "team_lead", 10 },
    [V_DEADLINE_KIND] = { "deadline_kind", 4 }, /* 响应, 完工 */
    [V_SLA_KIND] = { "sla_kind", 10 },     /* respond, complete (for if=) */
    [V_DUE] = { "due", 12 },
    [V_INVOICE_ID] = { "invoice_id", 20 },
    [V_AMOUNT] = { "amount", 16 },         /* ¥1,234,567.00 */
    [V_OPEN_AMOUNT] = { "open_amount", 16 },
    [V_DUE_DATE] = { "due_date", 8 },      /* 12月25日 */
    [V_PERIOD] = { "period", 8 },
    [V_KIND] = { "kind", 10 },             /* move_in, monthly (for if=) */
    [V_RECEIPT_NO] = { "receipt_no", 20 },
    [V_PAID_AT] = { "paid_at", 12 },
    [V_PAY_CHANNEL] = { "pay_channel", 8 },
    [V_STEP] = { "step", 6 },              /* T-7, T+15 */
    [V_ACTION] = { "action", 12 },         /* message, call, visit, letter (for if=) */
};

int
notify_var_find (const char *name, size_t len)
{
    for (int i = 0; i < NOTIFY_NVARS; i++)
        if (strlen (notify_vars[i].name) == len && memcmp (notify_vars[i].name, name, len) == 0)
            return i;
    return -1;
}

/* --- formats -------------------------------------------------------------------------- */

const char *
notify_fen_text (int64_t fen, char *buf, size_t size)
{
    char digits[32];
    uint64_t a = fen < 0 ? (uint64_t) 0 - (uint64_t) fen : (uint64_t) fen;
    int n = snprintf (digits, sizeof digits, "%llu", (unsigned long long) (a / 100));
    char grouped[48];
    int g = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            grouped[g++] = ',';
        grouped[g++] = digits[i];
    }
    grouped[g] = '\0';
    snprintf (buf, size, "%s¥%s.%02u", fen < 0 ? "-" : "", grouped, (unsigned) (a % 100));
    return buf;
}

/* Civil date of a day count (Howard Hinnant's days_from_civil, inverted). */
static void
s_civil (int64_t days, int *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned) (days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int) (yoe + era * 400) + (*m <= 2);
}

static void
s_local (int64_t ms, int tz_min, unsigned *mon, unsigned *day, unsigned *hh, unsigned *mm)
{
    int64_t local_s = ms / 1000 + (int64_t) tz_min * 60;
    int64_t days = local_s >= 0 ? local_s / 86400 : (local_s - 86399) / 86400;
    int64_t sec = local_s - days * 86400;
    int y;
    s_civil (days, &y, mon, day);
    *hh = (unsigned) (sec / 3600);
    *mm = (unsigned) (sec % 3600 / 60);
}

char *
notify_time_text (pm_arena_t *a, int64_t ms, int tz_min)
{
    unsigned mon, day, hh, mm;
    s_local (ms, tz_min, &mon, &day, &hh, &mm);
    return pm_arena_printf (a, "%u月%u日 %02u:%02u", mon, day, hh, mm);
}

char *
notify_date_text (pm_arena_t *a, int64_t ms, int tz_min)
{
    unsigned mon, day, hh, mm;
    s_local (ms, tz_min, &mon, &day, &hh, &mm);
    return pm_arena_printf (a, "%u月%u日", mon, day);
}

static char *
s_clock_text (pm_arena_t *a, int64_t ms, int tz_min)
{
    unsigned mon, day, hh, mm;
    s_local (ms, tz_min, &mon, &day, &hh, &mm);
    return pm_arena_printf (a, "%02u:%02u", hh, mm);
}

static bool
s_digits (const char *s, const char *also)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit ((unsigned char) *s) && !strchr (also, *s))
            return false;
    return true;
}

char *
notify_unit_name (pm_arena_t *a, const char *estate_name, const char *building, const char *unit, const char *unit_id)
{
    if (!building || !*building || !unit || !*unit)
        return pm_arena_strdup (a, unit_id ? unit_id : "");
    return pm_arena_printf (a, "%s%s%s%s%s", estate_name ? estate_name : "", building, s_digits (building, "") ? "栋" : "",
                            unit, s_digits (unit, "-") ? "室" : "");
}

/* --- reading the events ------------------------------------------------------------- */

static const char *
s_u32 (pm_ctx_t *ctx, uint32_t v)
{
    return pm_arena_printf (ctx->arena, "%u", v);
}

static const char *
s_fen (pm_ctx_t *ctx, int64_t fen)
{
    char buf[48];
    return pm_arena_strdup (ctx->arena, notify_fen_text (fen, buf, sizeof buf));
}

static const char *
s_time (pm_ctx_t *ctx, const notify_app_t *app, int64_t ms)
{
    return ms ? notify_time_text (ctx->arena, ms, app->limits.tz_min) : "";
}

static const char *
s_join (pm_ctx_t *ctx, char **parts, size_t n, const char *sep)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen (parts[i]) + strlen (sep);
    char *s = pm_arena_alloc (ctx->arena, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat (s, sep);
        strcat (s, parts[i]);
    }
    return s;
}

static void
s_unit (pm_ctx_t *ctx, const Pm__V1__Unit *u, notify_vals_t *vals)
{
    if (!u)
        return;
    vals->owners = u->owners;
    vals->n_owners = u->n_owners;
    vals->v[V_ESTATE_NAME] = u->estate_name;
    vals->v[V_UNIT_NAME] = notify_unit_name (ctx->arena, u->estate_name, u->building, u->unit, u->unit_id);
}

static void
s_fill_unit (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    s_unit (ctx, ev->unit, vals);
}

static void
s_fill_notice (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__Notice *n = ev->notice;
    vals->owners = n->owners;
    vals->n_owners = n->n_owners;
    vals->notice_id = n->notice_id;
    vals->v[V_NOTICE_ID] = n->notice_id;
    vals->v[V_WINDOW] = n->window;
    vals->v[V_PLACE] = n->place;
    vals->v[V_BRING] = s_join (ctx, n->bring, n->n_bring, "、");
    vals->v[V_FEES_NOTE] = n->fees_note;
}

static void
s_fill_appointment (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__Appointment *a = ev->appointment;
    vals->owners = a->owners;
    vals->n_owners = a->n_owners;
    vals->t[T_SLOT_START] = a->slot_start_ms;
    vals->v[V_SLOT] = a->slot_start_ms ? pm_arena_printf (ctx->arena, "%s-%s", s_time (ctx, app, a->slot_start_ms),
                                                          s_clock_text (ctx->arena, a->slot_end_ms, app->limits.tz_min))
                                       : "";
    vals->v[V_PREVIOUS_SLOT] = s_time (ctx, app, a->previous_start_ms);
    vals->v[V_PLACE] = a->place;
    vals->v[V_COUNTER] = s_u32 (ctx, a->counter);
    vals->v[V_REASON] = a->reason;
}

static void
s_fill_checked_in (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    s_unit (ctx, ev->checked_in->unit, vals);
}

static void
s_fill_keys (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__KeysHanded *k = ev->keys_handed;
    s_unit (ctx, k->unit, vals);
    vals->v[V_KEY_SET] = k->key_set;
    vals->v[V_KEYS] = s_u32 (ctx, k->keys);
    vals->v[V_RECEIVED_BY] = k->received_by;
}

static void
s_fill_round (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__InspectionRound *r = ev->round;
    vals->v[V_ROUND_NO] = s_u32 (ctx, r->round_no);
    vals->v[V_INSPECTOR] = r->inspector;
    vals->v[V_DEFECTS] = s_u32 (ctx, (uint32_t) r->n_defects);
}

static void
s_fill_reinspection (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__ReinspectionDue *r = ev->reinspection;
    vals->v[V_ROUND_NO] = s_u32 (ctx, r->round_no);
    vals->v[V_DEFECTS] = s_u32 (ctx, (uint32_t) r->n_defect_ids);
}

static void
s_fill_accepted (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    vals->v[V_DEFECTS] = s_u32 (ctx, ev->accepted->open_defects);
}

static const char *
s_severity (int s)
{
    return s == PM__V1__SEVERITY__MINOR ? "轻微" : s == PM__V1__SEVERITY__MAJOR ? "一般" : s == PM__V1__SEVERITY__CRITICAL ? "严重" : "";
}

static void
s_fill_defect (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__Defect *d = ev->defect;
    vals->t[T_DEADLINE] = d->deadline_ms;
    vals->v[V_DEFECT_ID] = d->defect_id;
    vals->v[V_ROOM] = d->room;
    vals->v[V_CATEGORY] = d->category;
    vals->v[V_DESCRIPTION] = d->description;
    vals->v[V_DEADLINE] = s_time (ctx, app, d->deadline_ms);
    vals->v[V_SEVERITY] = s_severity (d->severity);
    vals->v[V_REASON] = d->reason;
}

static void
s_fill_order (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__WorkOrder *o = ev->order;
    vals->t[T_COMPLETE_BY] = o->complete_by_ms;
    /* people by name (the staff directory's key, and what an owner reads); an
     * order from before workorder gave names carries the roster's id only */
    vals->technician = *o->technician_name ? o->technician_name : o->technician;
    vals->team = o->team;
    vals->v[V_ORDER_ID] = o->order_id;
    vals->v[V_CATEGORY] = o->category;
    vals->v[V_DESCRIPTION] = o->description;
    vals->v[V_TECHNICIAN] = vals->technician;
    vals->v[V_TEAM] = o->team;
    vals->v[V_COMPLETE_BY] = s_time (ctx, app, o->complete_by_ms);
    vals->v[V_REASON] = o->reason;
    vals->v[V_PRIORITY] = o->priority;
    switch (o->source) {
    case PM__V1__ORDER_SOURCE__DEFECT:
        vals->v[V_SOURCE] = "defect";
        vals->v[V_SOURCE_TEXT] = "整改";
        break;
    case PM__V1__ORDER_SOURCE__REPAIR:
        vals->v[V_SOURCE] = "repair";
        vals->v[V_SOURCE_TEXT] = "报修";
        break;
    case PM__V1__ORDER_SOURCE__COMPLAINT:
        vals->v[V_SOURCE] = "complaint";
        vals->v[V_SOURCE_TEXT] = "投诉";
        break;
    default:
        vals->v[V_SOURCE] = "";
        vals->v[V_SOURCE_TEXT] = "";
    }
}

static void
s_fill_sla (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__SlaAlert *s = ev->sla;
    vals->t[T_DUE] = s->due_ms;
    vals->technician = *s->technician_name ? s->technician_name : s->technician;
    vals->team = s->team;
    vals->team_lead = *s->team_lead_name ? s->team_lead_name : s->team_lead;
    vals->v[V_ORDER_ID] = s->order_id;
    vals->v[V_CATEGORY] = s->category;
    vals->v[V_TECHNICIAN] = vals->technician;
    vals->v[V_TEAM] = s->team;
    vals->v[V_TEAM_LEAD] = vals->team_lead;
    vals->v[V_SLA_KIND] = s->deadline;
    vals->v[V_DEADLINE_KIND] = strcmp (s->deadline, "respond") == 0    ? "响应"
                               : strcmp (s->deadline, "complete") == 0 ? "完工"
                                                                       : s->deadline;
    vals->v[V_DUE] = s_time (ctx, app, s->due_ms);
}

static void
s_fill_invoice (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__Invoice *i = ev->invoice;
    vals->t[T_DUE] = i->due_ms;
    vals->invoice_id = i->invoice_id;
    vals->v[V_INVOICE_ID] = i->invoice_id;
    vals->v[V_AMOUNT] = s_fen (ctx, i->total_fen);
    vals->v[V_OPEN_AMOUNT] = s_fen (ctx, i->open_fen);
    vals->v[V_DUE_DATE] = i->due_ms ? notify_date_text (ctx->arena, i->due_ms, app->limits.tz_min) : "";
    vals->v[V_PERIOD] = i->period;
    vals->v[V_KIND] = i->kind;
}

static const char *
s_pay_channel (const char *c)
{
    return strcmp (c, "counter_cash") == 0       ? "现金"
           : strcmp (c, "counter_card") == 0     ? "刷卡"
           : strcmp (c, "bank_withholding") == 0 ? "银行代扣"
           : strcmp (c, "online") == 0           ? "线上支付"
                                                 : c;
}

static void
s_fill_payment (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__Payment *p = ev->payment;
    vals->invoice_id = p->invoice_id;
    vals->v[V_INVOICE_ID] = p->invoice_id;
    vals->v[V_AMOUNT] = s_fen (ctx, p->amount_fen);
    vals->v[V_RECEIPT_NO] = p->receipt_no;
    vals->v[V_PAID_AT] = s_time (ctx, app, p->paid_at_ms);
    vals->v[V_PAY_CHANNEL] = s_pay_channel (p->channel);
}

static void
s_fill_dunning (pm_ctx_t *ctx, const notify_app_t *app, const Pm__V1__Event *ev, notify_vals_t *vals)
{
    const Pm__V1__DunningStep *s = ev->dunning;
    vals->t[T_DUE] = s->due_ms;
    vals->invoice_id = s->invoice_id;
    vals->v[V_INVOICE_ID] = s->invoice_id;
    vals->v[V_STEP] = s->step;
    vals->v[V_ACTION] = s->action;
    vals->v[V_OPEN_AMOUNT] = s_fen (ctx, s->open_fen);
    vals->v[V_DUE_DATE] = s->due_ms ? notify_date_text (ctx->arena, s->due_ms, app->limits.tz_min) : "";
}

/* --- the kinds ------------------------------------------------------------------------ */

#define VB(v) NOTIFY_VAR (V_##v)
#define COMMON (VB (NAME) | VB (UNIT_NAME) | VB (UNIT_ID) | VB (ESTATE_NAME))
#define T(t) (1u << (t))
#define P(x) PM__V1__EVENT__PAYLOAD_##x

#define K_UNIT COMMON, 0, s_fill_unit
#define K_NOTICE COMMON | VB (NOTICE_ID) | VB (WINDOW) | VB (PLACE) | VB (BRING) | VB (FEES_NOTE), 0, s_fill_notice
#define K_APPT COMMON | VB (SLOT) | VB (PREVIOUS_SLOT) | VB (PLACE) | VB (COUNTER) | VB (REASON), T (T_SLOT_START), \
               s_fill_appointment
#define K_ROUND COMMON | VB (ROUND_NO) | VB (INSPECTOR) | VB (DEFECTS), 0, s_fill_round
#define K_DEFECT COMMON | VB (DEFECT_ID) | VB (ROOM) | VB (CATEGORY) | VB (DESCRIPTION) | VB (DEADLINE) \
                     | VB (SEVERITY) | VB (REASON), T (T_DEADLINE), s_fill_defect
#define K_ORDER COMMON | VB (ORDER_ID) | VB (CATEGORY) | VB (DESCRIPTION) | VB (TECHNICIAN) | VB (TEAM) \
                    | VB (COMPLETE_BY) | VB (REASON) | VB (SOURCE) | VB (SOURCE_TEXT) | VB (PRIORITY), \
                T (T_COMPLETE_BY), s_fill_order
#define K_SLA COMMON | VB (ORDER_ID) | VB (CATEGORY) | VB (TECHNICIAN) | VB (TEAM) | VB (TEAM_LEAD) \
                  | VB (DEADLINE_KIND) | VB (SLA_KIND) | VB (DUE), T (T_DUE), s_fill_sla
#define K_INVOICE COMMON | VB (INVOICE_ID) | VB (AMOUNT) | VB (OPEN_AMOUNT) | VB (DUE_DATE) | VB (PERIOD) | VB (KIND), \
                  T (T_DUE), s_fill_invoice

const notify_event_kind_t notify_event_kinds[] = {
    { "intake.unit.registered", P (UNIT), K_UNIT },
    { "intake.unit.updated", P (UNIT), K_UNIT },
    { "intake.notice.requested", P (NOTICE), K_NOTICE },
    { "intake.appointment.booked", P (APPOINTMENT), K_APPT },
    { "intake.appointment.moved", P (APPOINTMENT), K_APPT },
    { "intake.appointment.cancelled", P (APPOINTMENT), K_APPT },
    { "intake.appointment.missed", P (APPOINTMENT), K_APPT },
    { "intake.unit.checked_in", P (CHECKED_IN), COMMON, 0, s_fill_checked_in },
    { "intake.keys.handed", P (KEYS_HANDED), COMMON | VB (KEY_SET) | VB (KEYS) | VB (RECEIVED_BY), 0, s_fill_keys },
    { "inspection.round.opened", P (ROUND), K_ROUND },
    { "inspection.round.passed", P (ROUND), K_ROUND },
    { "inspection.round.failed", P (ROUND), K_ROUND },
    { "inspection.defect.recorded", P (DEFECT), K_DEFECT },
    { "inspection.defect.rectifying", P (DEFECT), K_DEFECT },
    { "inspection.defect.rectified", P (DEFECT), K_DEFECT },
    { "inspection.defect.verified", P (DEFECT), K_DEFECT },
    { "inspection.defect.reopened", P (DEFECT), K_DEFECT },
    { "inspection.defect.overdue", P (DEFECT), K_DEFECT },
    { "inspection.reinspection.due", P (REINSPECTION), COMMON | VB (ROUND_NO) | VB (DEFECTS), 0, s_fill_reinspection },
    { "inspection.accepted_with_defects", P (ACCEPTED), COMMON | VB (DEFECTS), 0, s_fill_accepted },
    { "workorder.order.created", P (ORDER), K_ORDER },
    { "workorder.order.assigned", P (ORDER), K_ORDER },
    { "workorder.order.started", P (ORDER), K_ORDER },
    { "workorder.order.done", P (ORDER), K_ORDER },
    { "workorder.order.confirmed", P (ORDER), K_ORDER },
    { "workorder.order.rejected", P (ORDER), K_ORDER },
    { "workorder.order.reopened", P (ORDER), K_ORDER },
    { "workorder.order.cancelled", P (ORDER), K_ORDER },
    { "workorder.order.archived", P (ORDER), K_ORDER },
    { "workorder.sla.warning", P (SLA), K_SLA },
    { "workorder.sla.breached", P (SLA), K_SLA },
    { "billing.invoice.issued", P (INVOICE), K_INVOICE },
    { "billing.invoice.updated", P (INVOICE), K_INVOICE },
    { "billing.invoice.settled", P (INVOICE), K_INVOICE },
    { "billing.payment.recorded", P (PAYMENT),
      COMMON | VB (INVOICE_ID) | VB (AMOUNT) | VB (RECEIPT_NO) | VB (PAID_AT) | VB (PAY_CHANNEL), 0, s_fill_payment },
    { "billing.dunning.step", P (DUNNING),
      COMMON | VB (INVOICE_ID) | VB (STEP) | VB (ACTION) | VB (OPEN_AMOUNT) | VB (DUE_DATE), T (T_DUE), s_fill_dunning },
    { NULL, 0, 0, 0, NULL },
};

const notify_event_kind_t *
notify_event_kind (const char *type)
{
    for (const notify_event_kind_t *k = notify_event_kinds; k->type; k++)
        if (strcmp (k->type, type) == 0)
            return k;
    return NULL;
}
