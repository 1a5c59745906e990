/* units.c - intake's events: the projection of units (area, parking, type),
 * the move-in invoice at check-in, and monthly billing from the keys.
 *
 * Every handler is idempotent per unit (a unit has one move-in invoice; a
 * second check-in, or the same fact restated by intake's snapshot, issues
 * nothing new), so a rebuild from intake's snapshot is safe. */
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"

#include <string.h>

Pm__Billing__UnitRecord *
billing_unit (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id)
{
    Pm__Billing__UnitRecord *u;
    pm_key_t k;
    if (pm_txn_get_msg (txn, BILLING_UNITS, pm_key (&k, "s", unit_id), &pm__billing__unit_record__descriptor, &u)
        != PM_OK)
        return NULL;
    return u;
}

Pm__Billing__Account *
billing_account (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, bool *fresh)
{
    Pm__Billing__Account *a;
    pm_key_t k;
    if (pm_txn_get_msg (txn, BILLING_ACCOUNTS, pm_key (&k, "s", unit_id), &pm__billing__account__descriptor, &a)
        == PM_OK) {
        if (fresh)
            *fresh = false;
        return a;
    }
    a = pm_arena_alloc (ctx->arena, sizeof *a);
    pm__billing__account__init (a);
    a->unit_id = pm_arena_strdup (ctx->arena, unit_id);
    char *estate = billing_unit_estate (ctx->arena, unit_id);
    a->estate_id = estate ? estate : "";
    if (fresh)
        *fresh = true;
    return a;
}

void
billing_account_save (pm_txn_t *txn, const Pm__Billing__Account *a)
{
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_ACCOUNTS, pm_key (&k, "s", a->unit_id), &a->base);
}

/* The projection row from a Unit of intake's. INVALID (the event goes to
 * dead_events) when the unit cannot be billed. */
static int
s_project (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__Event *ev, const Pm__V1__Unit *u)
{
    if (!*u->unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries a unit without unit_id", ev->type);
    if (u->area_cm2 <= 0)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit %s: area_cm2 %lld is not positive", u->unit_id,
                         (long long) u->area_cm2);
    Pm__Billing__UnitRecord rec = PM__BILLING__UNIT_RECORD__INIT;
    char *estate = billing_unit_estate (ctx->arena, u->unit_id);
    rec.estate_id = *u->estate_id ? u->estate_id : estate ? estate : "";
    rec.area_cm2 = u->area_cm2;
    rec.from_event = ev->id;
    rec.building = u->building;
    rec.parking_spaces = u->parking_spaces;
    rec.unit_type = u->unit_type;
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_UNITS, pm_key (&k, "s", u->unit_id), &rec.base);
    return PM__V1__STATUS__OK;
}

int
billing_on_unit (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    return s_project (ctx, txn, out, ev, ev->unit);
}

int
billing_issue_move_in (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *unit_id, int64_t at_ms)
{
    const billing_t *b = ctx->app;
    bool fresh;
    Pm__Billing__Account *acct = billing_account (ctx, txn, unit_id, &fresh);
    if (*acct->move_in_invoice)
        return PM__V1__STATUS__OK; /* one move-in invoice per unit */
    Pm__Billing__UnitRecord *u = billing_unit (ctx, txn, unit_id);
    if (!u)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "unit %s checked in, but billing has no area for it (no intake.unit.registered applied, "
                         "and the event carries no unit)", unit_id);
    if (!acct->checked_in_ms)
        acct->checked_in_ms = at_ms;
    acct->estate_id = u->estate_id;
    acct->building = u->building;
    pm_key_t wk;
    pm_key (&wk, "ss", u->estate_id, unit_id);
    Pm__V1__FeeSchedule *s;
    if (billing_schedule_at (ctx, txn, u->estate_id, at_ms, &s) != PM_OK) {
        Pm__V1__QueueItem *item = pm_queue_item (
            ctx, unit_id, u->estate_id, unit_id, at_ms,
            pm_arena_printf (ctx->arena, "checked in on %s, but estate %s has no fee schedule in force then: set one "
                                         "(billing.schedule.set, or the schedule file) and the move-in invoice is issued",
                             billing_date_of (ctx->arena, b, at_ms), u->estate_id));
        pm_queue_field (ctx, item, "checked_in", "%s", billing_date_of (ctx->arena, b, at_ms));
        pm_queue_put (txn, BILLING_WAITING, &wk, item);
        billing_account_save (txn, acct);
        pm_warn ("unit %s: no fee schedule for %s on %s; move-in invoice waits", unit_id, u->estate_id,
                 billing_date_of (ctx->arena, b, at_ms));
        return PM__V1__STATUS__OK;
    }
    Pm__V1__InvoiceLine **lines;
    bool *deposit;
    int from, to;
    size_t n = billing_move_in_lines (ctx, s, u, at_ms, &lines, &deposit, &from, &to);
    if (n == (size_t) -1)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit %s: the move-in invoice's amounts overflow", unit_id);
    int y, m, d;
    billing_local_date (b, at_ms, &y, &m, &d);
    billing_new_invoice_t in = {
        .unit_id = unit_id,
        .estate_id = u->estate_id,
        .building = u->building,
        .kind = "move_in",
        .period = "",
        .collection_period = billing_period_of (ctx->arena, b, at_ms),
        .lines = lines,
        .deposit = deposit,
        .nlines = n,
        .due_ms = billing_local_ms (b, y, m, d) + (int64_t) b->move_in_due_days * BILLING_DAY_MS,
    };
    Pm__Billing__InvoiceRecord *rec;
    int rc = billing_issue (ctx, txn, out, &in, acct, &rec);
    if (rc != PM__V1__STATUS__OK)
        return rc;
    acct->move_in_invoice = rec->invoice->invoice_id;
    char buf[16];
    acct->prepaid_from = to >= from ? pm_arena_strdup (ctx->arena, billing_period_fmt (from, buf, sizeof buf)) : "";
    acct->prepaid_to = to >= from ? pm_arena_strdup (ctx->arena, billing_period_fmt (to, buf, sizeof buf)) : "";
    billing_account_save (txn, acct);
    pm_txn_del_key (txn, BILLING_WAITING, &wk);
    return PM__V1__STATUS__OK;
}

int
billing_on_checked_in (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__CheckedIn *ci = ev->checked_in;
    const char *unit_id = *ci->unit_id ? ci->unit_id : ci->unit ? ci->unit->unit_id : ev->unit_id;
    if (!unit_id || !*unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries no unit_id", ev->type);
    if (ci->unit && *ci->unit->unit_id) {
        int rc = s_project (ctx, txn, out, ev, ci->unit);
        if (rc != PM__V1__STATUS__OK)
            return rc;
    }
    return billing_issue_move_in (ctx, txn, out, unit_id, ci->at_ms ? ci->at_ms : ev->at_ms);
}

int
billing_on_keys_handed (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__KeysHanded *kh = ev->keys_handed;
    const char *unit_id = *kh->unit_id ? kh->unit_id : kh->unit ? kh->unit->unit_id : ev->unit_id;
    if (!unit_id || !*unit_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s carries no unit_id", ev->type);
    if (kh->unit && *kh->unit->unit_id) {
        int rc = s_project (ctx, txn, out, ev, kh->unit);
        if (rc != PM__V1__STATUS__OK)
            return rc;
    }
    Pm__Billing__UnitRecord *u = billing_unit (ctx, txn, unit_id);
    if (!u)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "unit %s: keys handed, but billing has no area for it (no intake.unit.registered applied)",
                         unit_id);
    Pm__Billing__Account *acct = billing_account (ctx, txn, unit_id, NULL);
    if (acct->keys_handed_ms)
        return PM__V1__STATUS__OK; /* billed from the first handover */
    acct->keys_handed_ms = kh->at_ms ? kh->at_ms : ev->at_ms;
    acct->estate_id = u->estate_id;
    acct->building = u->building;
    billing_account_save (txn, acct);
    Pm__Billing__Billable bl = PM__BILLING__BILLABLE__INIT;
    bl.since_ms = acct->keys_handed_ms;
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_BILLABLE, pm_key (&k, "ss", u->estate_id, unit_id), &bl.base);
    billing_next_no (txn, "BILLABLE", u->estate_id); /* the estate's count of billable units */
    return PM__V1__STATUS__OK;
}

uint32_t
billing_issue_waiting (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const char *estate)
{
    /* first the units, then the issuing (which deletes from the table) */
    size_t n = 0, cap = 16;
    char **units = pm_arena_alloc (ctx->arena, cap * sizeof *units);
    int64_t *at = pm_arena_alloc (ctx->arena, cap * sizeof *at);
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, BILLING_WAITING, estate ? pm_key (&k, "s", estate) : NULL); s.ok; pm_scan_next (&s)) {
        Pm__V1__QueueItem *item;
        if (pm_scan_msg (&s, &pm__v1__queue_item__descriptor, &item) != PM_OK)
            continue;
        Pm__V1__FeeSchedule *sched;
        if (billing_schedule_at (ctx, txn, item->estate_id, item->since_ms, &sched) != PM_OK)
            continue;
        if (n == cap) {
            char **u2 = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *u2);
            int64_t *a2 = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *a2);
            memcpy (u2, units, n * sizeof *u2);
            memcpy (a2, at, n * sizeof *a2);
            units = u2;
            at = a2;
            cap *= 2;
        }
        units[n] = item->unit_id;
        at[n++] = item->since_ms;
    }
    pm_scan_end (&s);
    uint32_t issued = 0;
    for (size_t i = 0; i < n; i++) {
        Pm__Billing__Account *acct = billing_account (ctx, txn, units[i], NULL);
        bool had = *acct->move_in_invoice;
        if (billing_issue_move_in (ctx, txn, out, units[i], at[i]) == PM__V1__STATUS__OK && !had)
            issued++;
    }
    return issued;
}

int
billing_on_waiting_timer (pm_ctx_t *ctx, pm_txn_t *txn, const char *key, const void *payload, size_t plen,
                          pm_out_t *out)
{
    uint32_t n = billing_issue_waiting (ctx, txn, out, NULL);
    if (n)
        pm_info ("%u move-in invoice(s) that waited for a fee schedule issued", n);
    return PM__V1__STATUS__OK;
}
