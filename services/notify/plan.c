/* plan.c - from an event to its messages, in the event's own transaction.
 *
 * For each rule of the event's type (rules.c) whose condition holds: the
 * recipients (the unit's owners, from the payload or notify's contacts; the
 * technician, team lead or manager, from the staff directory), for each the
 * rule's channels, each message rendered and handed to deliveries.c, which
 * writes it PENDING (or DEFERRED, DROPPED, FAILED) with its dedupe key.
 *
 * A reminder scheduled against a time of its event (at=slot_start-1d) belongs
 * to its topic (the event's family and unit): the unit's next event of that
 * family (the appointment moved or cancelled) drops it if still unsent.
 *
 * Owners are a second fact for the events that do not carry them (inspection,
 * work orders, billing): when notify has no contacts for the unit yet, the
 * event waits in `awaiting` until intake's unit event arrives (contacts.c),
 * and is dead-lettered if it never does (timer notify.await).
 *
 * Snapshot events are ignored: they restate state, they are not news. */
#include "notify.h"
#include "pm/log.h"

#include <stdio.h>
#include <string.h>

enum { S_ALL, S_OWNERS, S_OWNERS_EXPIRED };

typedef struct {
    const char *name, *role, *owner_key, *phone, *email;
    const char *missing; /* set: nobody to address (why) */
} s_recipient_t;

typedef struct {
    pm_ctx_t *ctx;
    pm_txn_t *txn;
    pm_out_t *out;
    const Pm__V1__Event *ev;
    notify_vals_t vals;
    Pm__Notify__ContactRecord *contacts;
    bool parked;
    int mode;
} s_plan_t;

static void
s_send (s_plan_t *p, const notify_rule_t *r, const s_recipient_t *who, int64_t due, const char *topic)
{
    pm_ctx_t *ctx = p->ctx;
    for (int ch = 0; ch < NOTIFY_NCHANNELS; ch++) {
        if (!r->tpl[ch])
            continue;
        const char *address = who->missing ? "" : ch == NOTIFY_SMS ? who->phone : who->email;
        const char *fail = who->missing;
        if (!fail && !*address) {
            if (r->optional[ch]) {
                notify_count (p->txn, ch == NOTIFY_SMS ? "total:skipped:no_phone" : "total:skipped:no_email", 1);
                continue;
            }
            fail = pm_arena_printf (ctx->arena, "no %s on file for %s (%s%s%s)",
                                    ch == NOTIFY_SMS ? "mobile number" : "email address", who->name, who->role,
                                    *p->vals.unit_id ? " of " : "", p->vals.unit_id);
        }
        else if (!fail && !notify_address_ok (ch, address))
            fail = pm_arena_printf (ctx->arena, "'%s' is not %s (%s, %s)", address,
                                    ch == NOTIFY_SMS ? "a mobile number" : "an email address", who->name, who->role);
        p->vals.v[V_NAME] = who->name;
        notify_draft_t dr = {
            .ev = p->ev,
            .rule = r,
            .channel = ch,
            .address = address,
            .name = who->name,
            .role = who->role,
            .owner_key = who->owner_key,
            .unit_id = p->vals.unit_id,
            .estate_id = p->vals.estate_id,
            .notice_id = p->vals.notice_id,
            .invoice_id = p->vals.invoice_id,
            .topic = topic,
            .due_ms = due,
            .fail_reason = fail,
        };
        notify_render (ctx->arena, r->tpl[ch], &p->vals, &dr.subject, &dr.body);
        notify_message_create (ctx, p->txn, &dr, p->out);
    }
}

/* Parks the event until the unit's contacts arrive (once per event). */
static void
s_park (s_plan_t *p)
{
    if (p->parked || p->mode != S_ALL)
        return;
    p->parked = true;
    const notify_app_t *app = p->ctx->app;
    Pm__Notify__Awaiting a = PM__NOTIFY__AWAITING__INIT;
    a.event = (Pm__V1__Event *) p->ev;
    a.since_ms = p->ctx->now_ms;
    pm_key_t k;
    pm_txn_put_msg (p->txn, NOTIFY_AWAITING, pm_key (&k, "ss", p->vals.unit_id, p->ev->id), &a.base);
    int64_t due;
    if (pm_timer_due (p->txn, "notify.await", p->vals.unit_id, &due) != PM_OK)
        pm_timer_set (p->txn, "notify.await", p->vals.unit_id, p->ctx->now_ms + app->limits.await_ms, NULL, 0);
    notify_count (p->txn, "total:awaiting_contacts", 1);
}

static void
s_owners (s_plan_t *p, const notify_rule_t *r, int64_t due, const char *topic)
{
    Pm__V1__Owner **owners = p->vals.owners;
    size_t n = p->vals.n_owners;
    if (!n && p->contacts) {
        owners = p->contacts->owners;
        n = p->contacts->n_owners;
    }
    if (p->mode == S_OWNERS_EXPIRED) {
        const notify_app_t *app = p->ctx->app;
        s_recipient_t who = { "owners", "owner", "", "", "", NULL };
        who.missing = pm_arena_printf (p->ctx->arena, "no contacts for unit %s after %lld h: intake never registered it",
                                       p->vals.unit_id, (long long) (app->limits.await_ms / 3600000));
        s_send (p, r, &who, due, topic);
        return;
    }
    if (!n && !p->contacts) {
        if (!*p->vals.unit_id) { /* no unit to wait for: nobody to tell */
            notify_count (p->txn, "total:skipped:no_unit", 1);
            return;
        }
        s_park (p);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        s_recipient_t who = { owners[i]->name, "owner", owners[i]->owner_key, owners[i]->phone, owners[i]->email, NULL };
        s_send (p, r, &who, due, topic);
    }
}

static void
s_staff (s_plan_t *p, const notify_rule_t *r, int64_t due, const char *topic)
{
    const notify_app_t *app = p->ctx->app;
    const char *name = r->to == NOTIFY_TO_TECHNICIAN  ? p->vals.technician
                       : r->to == NOTIFY_TO_TEAM_LEAD ? p->vals.team_lead
                                                      : NULL;
    if (r->to == NOTIFY_TO_TECHNICIAN && (!name || !*name))
        return; /* an order not yet assigned has no technician to tell */
    const notify_staff_t *s = notify_staff_find (app->staff, r->to, name, p->vals.estate_id, p->vals.team);
    s_recipient_t who = { name && *name ? name : notify_to_names[r->to], notify_to_names[r->to], "", "", "", NULL };
    if (!s) {
        who.missing = pm_arena_printf (p->ctx->arena, "%s%s%s%s%s is not in the staff directory (deploy/notify/staff.conf)",
                                       notify_to_names[r->to], name && *name ? " " : "", name ? name : "",
                                       *p->vals.estate_id ? " of " : "", p->vals.estate_id);
        notify_count (p->txn, "total:unknown_staff", 1);
    }
    else {
        who.name = s->name;
        who.phone = s->phone;
        who.email = s->email;
    }
    s_send (p, r, &who, due, topic);
}

static bool
s_condition (const s_plan_t *p, const notify_rule_t *r)
{
    if (r->cond_var < 0)
        return true;
    const char *v = p->vals.v[r->cond_var] ? p->vals.v[r->cond_var] : "";
    return (strcmp (v, r->cond_value) == 0) != r->cond_neg;
}

/* The family of a type: "intake.appointment.moved" -> "intake.appointment" (arena). */
static const char *
s_topic (pm_ctx_t *ctx, const char *type, const char *unit_id)
{
    const char *dot = strrchr (type, '.');
    return pm_arena_printf (ctx->arena, "%.*s:%s", (int) (dot ? dot - type : (long) strlen (type)), type, unit_id);
}

static void
s_plan (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out, int mode)
{
    const notify_app_t *app = ctx->app;
    size_t n;
    const notify_rule_t *const *rules = notify_rules_for (app->rules, ev->type, &n);
    const notify_event_kind_t *kind = notify_event_kind (ev->type);
    if (!kind || (int) ev->payload_case != kind->payload)
        return;
    if (mode == S_ALL && *ev->unit_id && pm_txn_count (txn, NOTIFY_TOPICS)) {
        const char *topic = s_topic (ctx, ev->type, ev->unit_id);
        notify_drop_indexed (ctx, txn, NOTIFY_TOPICS, topic, "superseded",
                             pm_arena_printf (ctx->arena, "superseded by %s (%s)", ev->type, ev->id), out);
    }
    if (!n)
        return;
    s_plan_t p = { .ctx = ctx, .txn = txn, .out = out, .ev = ev, .mode = mode };
    p.vals.unit_id = ev->unit_id;
    p.vals.estate_id = ev->estate_id;
    kind->fill (ctx, app, ev, &p.vals);
    p.contacts = notify_contacts (ctx, txn, ev->unit_id);
    if (!p.vals.v[V_UNIT_NAME])
        p.vals.v[V_UNIT_NAME] = p.contacts ? notify_unit_name (ctx->arena, p.contacts->estate_name, p.contacts->building,
                                                               p.contacts->unit, ev->unit_id)
                                           : ev->unit_id;
    if (!p.vals.v[V_ESTATE_NAME])
        p.vals.v[V_ESTATE_NAME] = p.contacts ? p.contacts->estate_name : ev->estate_id;
    p.vals.v[V_UNIT_ID] = ev->unit_id;
    if (!*p.vals.estate_id && p.contacts)
        p.vals.estate_id = p.contacts->estate_id;
    for (size_t i = 0; i < n; i++) {
        const notify_rule_t *r = rules[i];
        if ((mode != S_ALL && r->to != NOTIFY_TO_OWNERS) || !s_condition (&p, r))
            continue;
        int64_t due = 0;
        const char *topic = NULL;
        if (r->at >= 0) {
            if (!p.vals.t[r->at])
                continue; /* the event does not say when */
            due = p.vals.t[r->at] + r->at_offset_ms;
            if (due <= ctx->now_ms) {
                notify_count (txn, "total:skipped:past", 1); /* booked too late for a reminder the day before */
                continue;
            }
            topic = s_topic (ctx, ev->type, ev->unit_id);
        }
        if (r->to == NOTIFY_TO_OWNERS)
            s_owners (&p, r, due, topic);
        else
            s_staff (&p, r, due, topic);
    }
}

int
notify_on_event (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    if (ev->snapshot)
        return PM__V1__STATUS__OK; /* restated state, not news: nobody is told anything */
    s_plan (ctx, txn, ev, out, S_ALL);
    return PM__V1__STATUS__OK;
}

/* Plans (mode S_OWNERS) or dead-letters (S_OWNERS_EXPIRED) the events waiting for unit_id. */
static void
s_awaiting (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, pm_out_t *out, int mode)
{
    pm_key_t k;
    pm_scan_t s;
    Pm__V1__Event **evs = NULL;
    size_t n = 0, cap = 0;
    for (pm_scan_prefix (&s, txn, NOTIFY_AWAITING, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        Pm__Notify__Awaiting *a;
        if (pm_scan_msg (&s, &pm__notify__awaiting__descriptor, &a) != PM_OK || !a->event)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            Pm__V1__Event **grown = pm_arena_alloc (ctx->arena, cap * sizeof *grown);
            if (n)
                memcpy (grown, evs, n * sizeof *grown);
            evs = grown;
        }
        evs[n++] = a->event;
    }
    pm_scan_end (&s);
    for (size_t i = 0; i < n; i++) {
        pm_txn_del_key (txn, NOTIFY_AWAITING, pm_key (&k, "ss", unit_id, evs[i]->id));
        s_plan (ctx, txn, evs[i], out, mode);
    }
    if (n)
        pm_timer_cancel (txn, "notify.await", unit_id);
}

void
notify_plan_awaiting (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, pm_out_t *out)
{
    if (pm_txn_count (txn, NOTIFY_AWAITING))
        s_awaiting (ctx, txn, unit_id, out, S_OWNERS);
}

/* Timer notify.await (key: unit id): the unit's contacts never came. */
int
notify_on_await_expired (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                         pm_out_t *out)
{
    s_awaiting (ctx, txn, key, out, S_OWNERS_EXPIRED);
    return PM__V1__STATUS__OK;
}
