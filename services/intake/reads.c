/* reads.c - what intake answers without writing: estates, units, its queues,
 * its gauges and its snapshot (every unit, for a consumer rebuilding). */
#include "intake.h"
#include "pm/log.h"

#include <string.h>

int
intake_on_estate_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->intake_estate_get->estate_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    Pm__Intake__EstateRecord *est;
    pm_key_t k;
    if (pm_txn_get_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, id), &pm__intake__estate_record__descriptor, &est)
        != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "estate_id: no estate '%s' (%zu estates are known; import its units first)", id,
                         pm_txn_count (txn, INTAKE_ESTATES));
    Pm__V1__IntakeEstateGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_estate_get_reply__init (r);
    r->estate_id = est->estate_id;
    r->estate_name = est->estate_name;
    r->units = est->units;
    r->owners = est->owners;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s %s: %u units, %u owners", est->estate_id, est->estate_name,
                     est->units, est->owners);
}

int
intake_on_unit_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->intake_unit_get->unit_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "unit_id: empty; expected estate/building-unit, e.g. E01/3-1201");
    Pm__Intake__UnitRecord *rec;
    pm_key_t k;
    if (pm_txn_get_msg (txn, INTAKE_UNITS, intake_unit_key (&k, id), &pm__intake__unit_record__descriptor, &rec)
        != PM_OK)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "unit_id: no unit '%s' (expected estate/building-unit, e.g. E01/3-1201)", id);
    Pm__V1__IntakeUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_unit_get_reply__init (r);
    r->unit = rec->unit;
    r->registered_ms = rec->registered_ms;
    r->id_numbers_masked = pm_arena_alloc (ctx->arena, (rec->n_id_numbers_sealed + 1) * sizeof (char *));
    for (size_t i = 0; i < rec->n_id_numbers_sealed; i++) {
        char buf[64];
        const char *plain = intake_unseal (ctx, ctx->app, rec->id_numbers_sealed[i]);
        r->id_numbers_masked[r->n_id_numbers_masked++] =
            pm_arena_strdup (ctx->arena, plain ? pm_mask_id (plain, buf, sizeof buf) : "(cannot unseal: wrong key_file?)");
    }
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %zu owner(s)", rec->unit->unit_id, rec->unit->n_owners);
}

void
intake_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    pm_queue_from_table (ctx, txn, r, "import_rejections",
                         "import rows rejected and not yet fixed: correct the file and import it again "
                         "(a row that then passes leaves this queue)",
                         INTAKE_REJECTS, limit);
}

void
intake_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_gauge (ctx->metrics, "intake_units", NULL, "Units registered", (double) pm_txn_count (txn, INTAKE_UNITS));
    pm_gauge (ctx->metrics, "intake_estates", NULL, "Estates with registered units",
              (double) pm_txn_count (txn, INTAKE_ESTATES));
    pm_gauge (ctx->metrics, "intake_import_rejections", NULL, "Rejected import rows not yet fixed",
              (double) pm_txn_count (txn, INTAKE_REJECTS));
}

/* Every unit as an intake.unit.registered event (no ID numbers), in key order. */
int
intake_snapshot (pm_ctx_t *ctx, pm_txn_t *txn, pm_snapshot_t *snap)
{
    size_t alen;
    const void *after = pm_snapshot_after (snap, &alen);
    pm_scan_t s;
    for (pm_scan_after (&s, txn, INTAKE_UNITS, after, alen); s.ok; pm_scan_next (&s)) {
        Pm__Intake__UnitRecord *rec;
        if (pm_scan_msg (&s, &pm__intake__unit_record__descriptor, &rec) != PM_OK || !rec->unit)
            continue;
        Pm__V1__Event *ev = pm_arena_alloc (ctx->arena, sizeof *ev);
        pm__v1__event__init (ev);
        ev->type = "intake.unit.registered";
        ev->estate_id = rec->unit->estate_id;
        ev->unit_id = rec->unit->unit_id;
        ev->payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
        ev->unit = rec->unit;
        if (!pm_snapshot_add (snap, ev, s.key.mv_data, s.key.mv_size))
            break;
    }
    return PM_OK;
}
