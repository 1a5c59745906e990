/* keys_gate.c - the key gate and the key ledger (交付钥匙, 钥匙领用登记).
 *
 * intake follows inspection's and billing's events into each unit's case
 * (its own view: DESIGN.md section 2, no daemon reads another's store). The
 * events of one source arrive in order, those of two sources in any order,
 * so each fact is recorded as it comes and the gate is judged when keys are
 * asked for: the move-in invoice settled, and the inspection passed or the
 * unit accepted with open defects. A unit checked in and not yet through the
 * gate waits in ops.queues `blocked_at_key_gate` with what it waits for.
 *
 * The ledger records every key set that went to someone, came back, or was
 * lost, with who and when; keys out = handed - returned - lost. */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"

#include <string.h>

/* The case of the unit an event is about, or a status: OK with *ok false
 * when intake does not hold the unit (nothing to follow). */
static int
s_event_case (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, const char *unit_id, intake_case_t *c,
              bool *ok, pm_out_t *out)
{
    *ok = false;
    const char *id = unit_id && *unit_id ? unit_id : ev->unit_id;
    pm_key_t k;
    if (!*id || !pm_txn_has (txn, INTAKE_UNITS, intake_unit_key (&k, id)))
        return PM__V1__STATUS__OK;
    if (intake_case_load (ctx, txn, id, c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "case of %s does not decode", id);
    *ok = true;
    return PM__V1__STATUS__OK;
}

static Pm__Intake__InspectionFacts *
s_inspection (pm_ctx_t *ctx, Pm__Intake__CaseRecord *r)
{
    if (!r->inspection) {
        r->inspection = pm_arena_alloc (ctx->arena, sizeof *r->inspection);
        pm__intake__inspection_facts__init (r->inspection);
    }
    return r->inspection;
}

static int
s_save (pm_ctx_t *ctx, pm_txn_t *txn, intake_case_t *c, pm_out_t *out)
{
    return intake_case_save (ctx, txn, c) == PM_OK ? PM__V1__STATUS__OK
                                                    : pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage");
}

/* inspection.round.passed | .failed */
int
intake_on_round (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__InspectionRound *round = ev->round;
    intake_case_t c;
    bool ok;
    int st = s_event_case (ctx, txn, ev, round->unit_id, &c, &ok, out);
    if (!ok)
        return st;
    Pm__Intake__InspectionFacts *f = s_inspection (ctx, c.rec);
    if (round->round_no && round->round_no < f->round_no)
        return PM__V1__STATUS__OK; /* an earlier round restated (a snapshot): the later one stands */
    bool passed = strcmp (ev->type, "inspection.round.passed") == 0;
    f->round_no = round->round_no;
    f->passed = passed;
    f->failed = !passed;
    f->open_defects = passed ? 0 : (uint32_t) round->n_defects;
    f->reinspection_due = false;
    f->from_event = ev->id;
    return s_save (ctx, txn, &c, out);
}

/* inspection.accepted_with_defects: the owner signed to take the unit as it is. */
int
intake_on_accepted (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__AcceptedWithDefects *a = ev->accepted;
    intake_case_t c;
    bool ok;
    int st = s_event_case (ctx, txn, ev, a->unit_id, &c, &ok, out);
    if (!ok)
        return st;
    Pm__Intake__InspectionFacts *f = s_inspection (ctx, c.rec);
    f->accepted = true;
    f->accepted_open = a->open_defects ? a->open_defects : (uint32_t) a->n_defect_ids;
    f->from_event = ev->id;
    return s_save (ctx, txn, &c, out);
}

/* inspection.reinspection.due: the failed round's defects are all rectified. */
int
intake_on_reinspection (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__ReinspectionDue *d = ev->reinspection;
    intake_case_t c;
    bool ok;
    int st = s_event_case (ctx, txn, ev, d->unit_id, &c, &ok, out);
    if (!ok)
        return st;
    Pm__Intake__InspectionFacts *f = s_inspection (ctx, c.rec);
    if (d->round_no && f->round_no && d->round_no != f->round_no)
        return PM__V1__STATUS__OK;
    if (!f->round_no)
        f->round_no = d->round_no;
    f->reinspection_due = true;
    f->from_event = ev->id;
    return s_save (ctx, txn, &c, out);
}

/* billing.invoice.issued | .updated | .settled: the move-in invoice's state. */
int
intake_on_invoice (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Event *ev, pm_out_t *out)
{
    const Pm__V1__Invoice *inv = ev->invoice;
    if (strcmp (inv->kind, "move_in") != 0 || !*inv->invoice_id)
        return PM__V1__STATUS__OK; /* monthly invoices do not gate keys */
    intake_case_t c;
    bool ok;
    int st = s_event_case (ctx, txn, ev, inv->unit_id, &c, &ok, out);
    if (!ok)
        return st;
    Pm__Intake__CaseRecord *r = c.rec;
    Pm__Intake__InvoiceFacts *f = NULL;
    for (size_t i = 0; i < r->n_invoices && !f; i++)
        if (strcmp (r->invoices[i]->invoice_id, inv->invoice_id) == 0)
            f = r->invoices[i];
    if (!f) {
        Pm__Intake__InvoiceFacts **all = pm_arena_alloc (ctx->arena, (r->n_invoices + 1) * sizeof *all);
        if (r->n_invoices)
            memcpy (all, r->invoices, r->n_invoices * sizeof *all);
        f = all[r->n_invoices] = pm_arena_alloc (ctx->arena, sizeof *f);
        pm__intake__invoice_facts__init (f);
        f->invoice_id = inv->invoice_id;
        r->invoices = all;
        r->n_invoices++;
    }
    f->total_fen = inv->total_fen;
    f->open_fen = inv->open_fen;
    f->state = inv->state;
    if (strcmp (ev->type, "billing.invoice.settled") == 0)
        f->state = PM__V1__INVOICE_STATE__SETTLED;
    else if (f->state == PM__V1__INVOICE_STATE__INVOICE_STATE_UNSET)
        f->state = PM__V1__INVOICE_STATE__ISSUED;
    if (f->state == PM__V1__INVOICE_STATE__SETTLED)
        f->open_fen = 0;
    f->from_event = ev->id;
    return s_save (ctx, txn, &c, out);
}

/* --- the ledger ---------------------------------------------------------------- */

size_t
intake_ledger (pm_ctx_t *ctx, pm_txn_t *txn, const char *unit_id, Pm__V1__KeyLedgerEntry ***entries,
               uint32_t *outstanding, uint32_t *lost)
{
    size_t n = 0, cap = 8;
    *entries = pm_arena_alloc (ctx->arena, cap * sizeof **entries);
    *outstanding = *lost = 0;
    int64_t out = 0;
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, INTAKE_LEDGER, pm_key (&k, "s", unit_id)); s.ok; pm_scan_next (&s)) {
        Pm__V1__KeyLedgerEntry *e;
        if (pm_scan_msg (&s, &pm__v1__key_ledger_entry__descriptor, &e) != PM_OK)
            continue;
        if (n == cap) {
            Pm__V1__KeyLedgerEntry **more = pm_arena_alloc (ctx->arena, 2 * cap * sizeof *more);
            memcpy (more, *entries, cap * sizeof *more);
            *entries = more;
            cap *= 2;
        }
        (*entries)[n++] = e;
        if (strcmp (e->kind, "handed") == 0)
            out += e->keys;
        else
            out -= e->keys;
        if (strcmp (e->kind, "lost") == 0)
            *lost += e->keys;
    }
    *outstanding = out > 0 ? (uint32_t) out : 0;
    return n;
}

/* Keys of one set still out (handed - returned - lost). */
static int64_t
s_set_out (Pm__V1__KeyLedgerEntry **e, size_t n, const char *key_set)
{
    int64_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp (e[i]->key_set, key_set) == 0)
            out += strcmp (e[i]->kind, "handed") == 0 ? (int64_t) e[i]->keys : -(int64_t) e[i]->keys;
    return out;
}

static Pm__V1__KeyLedgerEntry *
s_ledger_add (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, intake_case_t *c, const char *kind,
              const char *key_set, uint32_t keys, const char *person, const char *note)
{
    Pm__V1__KeyLedgerEntry *e = pm_arena_alloc (ctx->arena, sizeof *e);
    pm__v1__key_ledger_entry__init (e);
    e->no = ++c->rec->ledger_n;
    e->kind = (char *) kind;
    e->key_set = (char *) key_set;
    e->keys = keys;
    e->person = (char *) person;
    e->at_ms = ctx->now_ms;
    e->note = (char *) note;
    e->actor = req->actor;
    pm_key_t k;
    pm_txn_put_msg (txn, INTAKE_LEDGER, pm_key (&k, "su", c->rec->unit_id, e->no), &e->base);
    return e;
}

int
intake_on_keys_handover (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeKeysHandoverRequest *q = req->intake_keys_handover;
    intake_t *in = ctx->app;
    Pm__Intake__UnitRecord *unit;
    if (!*q->unit_id || intake_unit_load (ctx, txn, q->unit_id, &unit) != PM_OK)
        return intake_reply_no_unit (out, q->unit_id);
    if (!*q->received_by)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "received_by: empty; who signs for the keys (签领钥匙), e.g. the owner's name");
    intake_case_t c;
    if (intake_case_load (ctx, txn, q->unit_id, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: its case does not decode", q->unit_id);
    Pm__Intake__CaseRecord *r = c.rec;
    if (r->state == PM__INTAKE__UNIT_STATE__KEYS_HANDED)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: keys handed already (set %s, %u key%s, to %s at %s); a returned or lost key goes "
                         "in the ledger (intake.keys.return)",
                         r->unit_id, r->keys ? r->keys->key_set : "?", r->keys ? r->keys->keys : 0,
                         r->keys && r->keys->keys == 1 ? "" : "s", r->keys ? r->keys->received_by : "?",
                         intake_local_format (ctx->arena, in, r->keys ? r->keys->at_ms : r->since_ms));
    if (r->state != PM__INTAKE__UNIT_STATE__CHECKED_IN)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s cannot hand keys: it is %s; the owner checks in first (intake.checkin)", r->unit_id,
                         intake_state_name (r->state));
    Pm__V1__KeyGate *g = intake_gate (ctx, r);
    if (!g->open) {
        char *why = "";
        for (size_t i = 0; i < g->n_missing; i++)
            why = pm_arena_printf (ctx->arena, "%s%s%s", why, i ? "; " : "", g->missing[i]);
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "unit %s cannot hand keys: %s", r->unit_id, why);
    }
    const char *key_set = *q->key_set ? q->key_set : "A";
    uint32_t keys = q->keys ? q->keys : 1;
    if (keys > 100)
        return pm_reply (out, PM__V1__STATUS__INVALID, "keys: %u; expected how many keys go with the set (1-100)", keys);
    s_ledger_add (ctx, txn, req, &c, "handed", key_set, keys, q->received_by, "");
    Pm__V1__KeysHanded *kh = pm_arena_alloc (ctx->arena, sizeof *kh);
    pm__v1__keys_handed__init (kh);
    kh->unit_id = r->unit_id;
    kh->estate_id = r->estate_id;
    kh->key_set = (char *) key_set;
    kh->keys = keys;
    kh->received_by = q->received_by;
    kh->at_ms = ctx->now_ms;
    r->keys = kh;
    intake_case_state (ctx, &c, PM__INTAKE__UNIT_STATE__KEYS_HANDED);
    if (intake_case_save (ctx, txn, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: the handover could not be written");
    Pm__V1__KeysHanded *evk = pm_arena_alloc (ctx->arena, sizeof *evk);
    *evk = *kh;
    evk->unit = unit->unit;
    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_KEYS_HANDED;
    ev.keys_handed = evk;
    intake_emit (out, txn, "intake.keys.handed", r->estate_id, r->unit_id, &ev);
    Pm__V1__IntakeKeysHandoverReply *rep = pm_arena_alloc (ctx->arena, sizeof *rep);
    pm__v1__intake_keys_handover_reply__init (rep);
    rep->keys = kh;
    pm_reply_body (out, &rep->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: key set %s (%u key%s) handed to %s; the move-in is complete",
                     r->unit_id, key_set, keys, keys == 1 ? "" : "s", q->received_by);
}

int
intake_on_keys_return (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeKeysReturnRequest *q = req->intake_keys_return;
    pm_key_t k;
    if (!*q->unit_id || !pm_txn_has (txn, INTAKE_UNITS, intake_unit_key (&k, q->unit_id)))
        return intake_reply_no_unit (out, q->unit_id);
    if (!*q->person)
        return pm_reply (out, PM__V1__STATUS__INVALID, "person: empty; who %s the keys",
                         q->lost ? "reports the loss of" : "returns");
    const char *key_set = *q->key_set ? q->key_set : "A";
    uint32_t keys = q->keys ? q->keys : 1;
    Pm__V1__KeyLedgerEntry **entries;
    uint32_t outstanding, lost;
    size_t n = intake_ledger (ctx, txn, q->unit_id, &entries, &outstanding, &lost);
    int64_t set_out = s_set_out (entries, n, key_set);
    if (set_out <= 0)
        return pm_reply (out, PM__V1__STATUS__CONFLICT,
                         "unit %s: no key of set %s is out (%s); nothing to %s", q->unit_id, key_set,
                         n ? "all returned or lost" : "keys not handed yet", q->lost ? "report lost" : "return");
    if ((int64_t) keys > set_out)
        return pm_reply (out, PM__V1__STATUS__CONFLICT, "unit %s: only %lld key%s of set %s %s out, not %u",
                         q->unit_id, (long long) set_out, set_out == 1 ? "" : "s", key_set,
                         set_out == 1 ? "is" : "are", keys);
    intake_case_t c;
    if (intake_case_load (ctx, txn, q->unit_id, &c) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__INTERNAL, "unit %s: its case does not decode", q->unit_id);
    Pm__V1__KeyLedgerEntry *e =
        s_ledger_add (ctx, txn, req, &c, q->lost ? "lost" : "returned", key_set, keys, q->person, q->note);
    intake_case_save (ctx, txn, &c);
    Pm__V1__IntakeKeysReturnReply *rep = pm_arena_alloc (ctx->arena, sizeof *rep);
    pm__v1__intake_keys_return_reply__init (rep);
    rep->entry = e;
    rep->outstanding = (uint32_t) (set_out - keys);
    pm_reply_body (out, &rep->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %u key%s of set %s %s by %s; %u of the set still out", q->unit_id,
                     keys, keys == 1 ? "" : "s", key_set, q->lost ? "reported lost" : "returned", q->person,
                     rep->outstanding);
}

int
intake_on_keys_ledger (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeKeysLedgerRequest *q = req->intake_keys_ledger;
    pm_key_t k;
    if (!*q->unit_id || !pm_txn_has (txn, INTAKE_UNITS, intake_unit_key (&k, q->unit_id)))
        return intake_reply_no_unit (out, q->unit_id);
    Pm__V1__IntakeKeysLedgerReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_keys_ledger_reply__init (r);
    r->unit_id = q->unit_id;
    r->n_entries = intake_ledger (ctx, txn, q->unit_id, &r->entries, &r->outstanding, &r->lost);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %zu ledger entr%s, %u key%s out, %u lost", q->unit_id, r->n_entries,
                     r->n_entries == 1 ? "y" : "ies", r->outstanding, r->outstanding == 1 ? "" : "s", r->lost);
}
