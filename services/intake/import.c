/* import.c - intake.import: one chunk of an import file, applied row by row.
 *
 * A row is validated before anything is written, so a rejected row changes
 * nothing and the rest of the chunk still applies (the reply lists each
 * rejection with its line, column and reason). Re-importing the same rows
 * changes nothing: a row equal to what is stored counts as unchanged and
 * emits no event. The chunk is one idempotent request: a retried chunk gets
 * its first reply. */
#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/text.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* s without surrounding blanks: s itself when there are none (the common case). */
static char *
s_trim (pm_ctx_t *ctx, char *s)
{
    const char *start;
    size_t len;
    pm_trim_span (s, &start, &len);
    if (start == s && len == strlen (s))
        return s;
    char *t = pm_arena_alloc (ctx->arena, len + 1);
    memcpy (t, start, len);
    return t;
}

/* The row as it will be checked and stored: every field without surrounding blanks. */
static const Pm__V1__ImportRow *
s_trimmed (pm_ctx_t *ctx, const Pm__V1__ImportRow *in)
{
    Pm__V1__ImportRow *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__import_row__init (r);
    r->line = in->line;
    r->estate_id = s_trim (ctx, in->estate_id);
    r->estate_name = s_trim (ctx, in->estate_name);
    r->building = s_trim (ctx, in->building);
    r->unit = s_trim (ctx, in->unit);
    r->floor = s_trim (ctx, in->floor);
    r->area_m2 = s_trim (ctx, in->area_m2);
    r->owner_name = s_trim (ctx, in->owner_name);
    r->phone = s_trim (ctx, in->phone);
    r->email = s_trim (ctx, in->email);
    r->id_number = s_trim (ctx, in->id_number);
    return r;
}

static uint32_t
s_column (const Pm__V1__IntakeImportRequest *q, const char *field)
{
    size_t n = strlen (field);
    for (size_t i = 0; i < q->n_columns; i++) { /* header names as written: " Area_M2 " is area_m2 */
        const char *c;
        size_t m;
        pm_trim_span (q->columns[i], &c, &m);
        if (m == n && strncasecmp (c, field, n) == 0)
            return (uint32_t) i + 1;
    }
    return 0;
}

/* The value as it may be shown back: phones and ID numbers masked. */
static const char *
s_shown (pm_ctx_t *ctx, const char *field, const char *value)
{
    char buf[128];
    if (strcmp (field, "phone") == 0)
        return pm_arena_strdup (ctx->arena, pm_mask_phone (value, buf, sizeof buf));
    if (strcmp (field, "id_number") == 0)
        return pm_arena_strdup (ctx->arena, pm_mask_id (value, buf, sizeof buf));
    return value;
}

static bool
s_same (const char *a, const char *b)
{
    return strcmp (a ? a : "", b ? b : "") == 0;
}

static void
s_reject (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__IntakeImportRequest *q, const Pm__V1__ImportRow *row,
          const intake_row_error_t *e, Pm__V1__IntakeImportReply *r)
{
    Pm__V1__RowRejection *x = pm_arena_alloc (ctx->arena, sizeof *x);
    pm__v1__row_rejection__init (x);
    x->line = row->line;
    x->column = s_column (q, e->field);
    x->field = (char *) e->field;
    x->value = (char *) s_shown (ctx, e->field, e->value);
    x->reason = (char *) e->reason;
    r->rejections[r->n_rejections++] = x;
    r->rejected++;
    if (!*q->file_name)
        return; /* the queue keeps rejections per file and line: none without a name */
    char unit_id[256] = "";
    intake_unit_id (unit_id, sizeof unit_id, row->estate_id, row->building, row->unit);
    char *key = pm_arena_printf (ctx->arena, "%s:%u", q->file_name, row->line);
    Pm__V1__QueueItem *item =
        pm_queue_item (ctx, key, row->estate_id, pm_arena_strdup (ctx->arena, unit_id), ctx->now_ms,
                       pm_arena_printf (ctx->arena, "%s: %s", x->field, x->reason));
    pm_queue_field (ctx, item, "batch", "%s", q->batch_id);
    pm_queue_field (ctx, item, "field", "%s", x->field);
    pm_queue_field (ctx, item, "column", "%u", x->column);
    pm_queue_field (ctx, item, "value", "%s", x->value);
    pm_key_t k;
    pm_queue_put (txn, INTAKE_REJECTS, intake_reject_key (&k, q->file_name, row->line), item);
}

/* Applies one valid row. Returns 0 unchanged, 1 created, 2 updated, or a pm_err. */
static int
s_apply_row (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__IntakeImportRequest *q,
             const Pm__V1__ImportRow *row, int64_t area_cm2, int32_t floor)
{
    intake_t *in = ctx->app;
    char unit_id[256];
    if (intake_unit_id (unit_id, sizeof unit_id, row->estate_id, row->building, row->unit) != PM_OK)
        return PM_EINVAL;

    pm_key_t k;
    Pm__Intake__UnitRecord *rec;
    int result = 0;
    bool new_owner = false;
    if (pm_txn_get_msg (txn, INTAKE_UNITS, intake_unit_key (&k, unit_id), &pm__intake__unit_record__descriptor, &rec)
        != PM_OK) {
        rec = pm_arena_alloc (ctx->arena, sizeof *rec);
        pm__intake__unit_record__init (rec);
        rec->unit = pm_arena_alloc (ctx->arena, sizeof *rec->unit);
        pm__v1__unit__init (rec->unit);
        rec->unit->unit_id = pm_arena_strdup (ctx->arena, unit_id);
        rec->unit->estate_id = row->estate_id;
        rec->unit->building = row->building;
        rec->unit->unit = row->unit;
        rec->registered_ms = ctx->now_ms;
        rec->registered_by = q->batch_id;
        result = 1;
    }
    Pm__V1__Unit *u = rec->unit;
    if (!s_same (u->estate_name, row->estate_name) || u->floor != floor || u->area_cm2 != area_cm2) {
        u->estate_name = row->estate_name;
        u->floor = floor;
        u->area_cm2 = area_cm2;
        if (!result)
            result = 2;
    }
    size_t o;
    for (o = 0; o < u->n_owners; o++)
        if (strcmp (u->owners[o]->name, row->owner_name) == 0)
            break;
    if (o == u->n_owners) { /* a new owner (co-owners come as more rows for the unit) */
        Pm__V1__Owner **owners = pm_arena_alloc (ctx->arena, (o + 1) * sizeof *owners);
        ProtobufCBinaryData *sealed = pm_arena_alloc (ctx->arena, (o + 1) * sizeof *sealed);
        if (o)
            memcpy (owners, u->owners, o * sizeof *owners);
        for (size_t i = 0; i < o && i < rec->n_id_numbers_sealed; i++)
            sealed[i] = rec->id_numbers_sealed[i];
        owners[o] = pm_arena_alloc (ctx->arena, sizeof *owners[o]);
        pm__v1__owner__init (owners[o]);
        owners[o]->name = row->owner_name;
        owners[o]->phone = row->phone;
        owners[o]->email = row->email;
        sealed[o] = intake_seal (ctx, in, row->id_number);
        u->owners = owners;
        u->n_owners = o + 1;
        rec->id_numbers_sealed = sealed;
        rec->n_id_numbers_sealed = o + 1;
        new_owner = true;
        if (!result)
            result = 2;
    }
    else {
        Pm__V1__Owner *ow = u->owners[o];
        const char *stored_id = o < rec->n_id_numbers_sealed ? intake_unseal (ctx, in, rec->id_numbers_sealed[o]) : NULL;
        if (!s_same (ow->phone, row->phone) || !s_same (ow->email, row->email) || !s_same (stored_id, row->id_number)) {
            ow->phone = row->phone;
            ow->email = row->email;
            if (!s_same (stored_id, row->id_number))
                rec->id_numbers_sealed[o] = intake_seal (ctx, in, row->id_number);
            if (!result)
                result = 2;
        }
    }
    if (result == 0)
        return 0;

    pm_txn_put_msg (txn, INTAKE_UNITS, &k, &rec->base);
    Pm__Intake__EstateRecord *est;
    if (pm_txn_get_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, row->estate_id),
                        &pm__intake__estate_record__descriptor, &est)
        != PM_OK) {
        est = pm_arena_alloc (ctx->arena, sizeof *est);
        pm__intake__estate_record__init (est);
        est->estate_id = row->estate_id;
    }
    est->estate_name = row->estate_name;
    est->units += result == 1;
    est->owners += new_owner;
    pm_txn_put_msg (txn, INTAKE_ESTATES, &k, &est->base);

    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = result == 1 ? "intake.unit.registered" : "intake.unit.updated";
    ev.estate_id = row->estate_id;
    ev.unit_id = u->unit_id;
    ev.correlation_id = q->batch_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
    ev.unit = u; /* owners without ID numbers: no other daemon needs them */
    int rc = pm_emit (out, txn, &ev);
    return rc != PM_OK ? rc : result;
}

int
intake_on_import (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeImportRequest *q = req->intake_import;
    if (!*q->batch_id)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "batch_id: empty; expected the import's correlation id (pmctl uses import:<file digest>)");
    if (q->n_rows > 10000)
        return pm_reply (out, PM__V1__STATUS__INVALID, "rows: %zu rows in one chunk; send at most 10000 per request",
                         q->n_rows);
    Pm__V1__IntakeImportReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_import_reply__init (r);
    r->rejections = pm_arena_alloc (ctx->arena, (q->n_rows + 1) * sizeof *r->rejections);
    for (size_t i = 0; i < q->n_rows; i++) {
        const Pm__V1__ImportRow *row = s_trimmed (ctx, q->rows[i]);
        int64_t area_cm2 = 0;
        int32_t floor = 0;
        intake_row_error_t e;
        if (!intake_row_check (row, &area_cm2, &floor, &e)) {
            s_reject (ctx, txn, q, row, &e, r);
            continue;
        }
        int rc = s_apply_row (ctx, txn, out, q, row, area_cm2, floor);
        if (rc < 0)
            return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: %s at line %u", pm_strerror (rc), row->line);
        if (rc == 1)
            r->created++;
        else if (rc == 2)
            r->updated++;
        else
            r->unchanged++;
        if (*q->file_name) { /* a fixed row leaves the rejections queue */
            pm_key_t k;
            pm_txn_del_key (txn, INTAKE_REJECTS, intake_reject_key (&k, q->file_name, row->line));
        }
    }
    if (r->rejected)
        pm_info ("import %s chunk %u: %u created, %u updated, %u unchanged, %u rejected", q->batch_id, q->chunk_no,
                 r->created, r->updated, r->unchanged, r->rejected);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%u created, %u updated, %u unchanged, %u rejected", r->created,
                     r->updated, r->unchanged, r->rejected);
}
