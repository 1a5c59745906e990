/* import.c - intake.import: one chunk of an import file, applied row by row.
 *
 * A row is validated before anything is written, so a rejected row changes
 * nothing and the rest of the chunk still applies (the reply lists each
 * rejection with its line, column and reason). Re-importing the same rows
 * changes nothing: a row equal to what is stored counts as unchanged and
 * emits no event. The chunk is one idempotent request: a retried chunk gets
 * its first reply.
 *
 * A unit is ESTATE/BUILDING/UNIT; more rows for it add co-owners, each known
 * by the keyed hash of its ID number (never by name), up to
 * max_owners_per_unit. A row whose estate name contradicts the estate's is
 * rejected, naming both.
 *
 * A dry run (dry_run) does all of it in a nested transaction that is then
 * thrown away, emitting nothing: the reply says exactly what the import
 * would do. Rows of one file depend on earlier rows (a co-owner row after its
 * unit's first row, an estate's name), so pmctl carries the would-be state of
 * the units later chunks touch again, and of the estates the run would
 * create, from one dry chunk to the next (dry_units, dry_estates). */
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
    r->delivery_date = s_trim (ctx, in->delivery_date);
    r->parking_spaces = s_trim (ctx, in->parking_spaces);
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

static bool
s_same (const char *a, const char *b)
{
    return strcmp (a ? a : "", b ? b : "") == 0;
}

/* The row's unit id for a queue item, or "" when its parts are not fit to show. */
static const char *
s_shown_unit_id (pm_ctx_t *ctx, const Pm__V1__ImportRow *row)
{
    char unit_id[INTAKE_UNIT_ID_MAX];
    if (!pm_utf8_valid_str (row->estate_id) || !pm_utf8_valid_str (row->building) || !pm_utf8_valid_str (row->unit)
        || intake_has_resident_id (row->estate_id) || intake_has_resident_id (row->building)
        || intake_has_resident_id (row->unit)
        || intake_unit_id (unit_id, sizeof unit_id, row->estate_id, row->building, row->unit) != PM_OK)
        return "";
    return pm_arena_strdup (ctx->arena, unit_id);
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
    x->value = (char *) e->value;
    x->reason = (char *) e->reason;
    r->rejections[r->n_rejections++] = x;
    r->rejected++;
    if (!*q->file_name || q->dry_run)
        return; /* the queue keeps rejections per file and line: none without a name, none in a dry run */
    bool id_part = intake_has_resident_id (row->estate_id);
    char *key = pm_arena_printf (ctx->arena, "%s:%u", q->file_name, row->line);
    Pm__V1__QueueItem *item = pm_queue_item (ctx, key, id_part ? "" : row->estate_id, s_shown_unit_id (ctx, row),
                                             ctx->now_ms, pm_arena_printf (ctx->arena, "%s: %s", x->field, x->reason));
    if (!pm_utf8_valid_str (item->estate_id))
        item->estate_id = "";
    pm_queue_field (ctx, item, "batch", "%s", q->batch_id);
    pm_queue_field (ctx, item, "field", "%s", x->field);
    pm_queue_field (ctx, item, "column", "%u", x->column);
    pm_queue_field (ctx, item, "value", "%s", x->value);
    pm_key_t k;
    pm_queue_put (txn, INTAKE_REJECTS, intake_reject_key (&k, q->file_name, row->line), item);
}

/* The estate a chunk's rows were last checked against: rows of one estate
 * come together, so its record is read once per chunk, not once per row. */
typedef struct {
    char *estate_id, *estate_name; /* arena; NULL: none yet */
} s_estate_seen_t;

/* The rule that needs what intake holds: the estate's name. NULL when the
 * row may go on (*held: whether intake holds the estate); else the reason. */
static const char *
s_estate_conflict (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__ImportRow *row, s_estate_seen_t *seen, bool *held)
{
    *held = true;
    if (!seen->estate_id || strcmp (seen->estate_id, row->estate_id) != 0) {
        pm_key_t k;
        Pm__Intake__EstateRecord *est;
        if (pm_txn_get_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, row->estate_id),
                            &pm__intake__estate_record__descriptor, &est)
            != PM_OK) {
            *held = false;
            return NULL;
        }
        seen->estate_id = est->estate_id;
        seen->estate_name = est->estate_name;
    }
    if (s_same (seen->estate_name, row->estate_name))
        return NULL;
    return pm_arena_printf (ctx->arena,
                            "contradicts the name intake holds for estate %s: '%s' (this row says '%s'); one estate "
                            "id has one name: correct the row, or give the other estate its own estate_id",
                            row->estate_id, seen->estate_name, row->estate_name);
}

/* Counter changes of a chunk, added up and written once at its end: the
 * rows of a chunk mostly share an estate and a building, so a chunk of 500
 * new units moves two counters once instead of a thousand times. */
typedef struct {
    const char *estate_id, *building, *name;
    int64_t delta;
} s_tally_t;

typedef struct {
    s_tally_t *v;
    size_t n, cap;
} s_tallies_t;

static void
s_tally (pm_ctx_t *ctx, s_tallies_t *t, const char *estate_id, const char *building, const char *name)
{
    for (size_t i = t->n; i-- > 0 && i + 8 >= t->n;) /* the last few: rows come grouped */
        if (t->v[i].name == name && strcmp (t->v[i].building, building) == 0
            && strcmp (t->v[i].estate_id, estate_id) == 0) {
            t->v[i].delta++;
            return;
        }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        s_tally_t *v = pm_arena_alloc (ctx->arena, cap * sizeof *v);
        if (t->n)
            memcpy (v, t->v, t->n * sizeof *v);
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (s_tally_t) { estate_id, building, name, 1 };
}

static int
s_tallies_flush (pm_txn_t *txn, s_tallies_t *t)
{
    int rc = PM_OK;
    for (size_t i = 0; i < t->n && rc == PM_OK; i++)
        rc = intake_count_add (txn, t->v[i].estate_id, t->v[i].building, t->v[i].name, t->v[i].delta);
    t->n = 0;
    return rc;
}

static const char s_registered[] = "s:REGISTERED", s_owners[] = "owners";

/* Applies one valid row. Returns 0 unchanged, 1 created, 2 updated, a
 * rejection reason through *why (nothing written), or a pm_err. */
static int
s_apply_row (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__IntakeImportRequest *q,
             const Pm__V1__ImportRow *row, const intake_row_values_t *v, s_estate_seen_t *seen,
             s_tallies_t *tallies, intake_row_error_t *why)
{
    intake_t *in = ctx->app;
    char unit_id[INTAKE_UNIT_ID_MAX];
    if (intake_unit_id (unit_id, sizeof unit_id, row->estate_id, row->building, row->unit) != PM_OK)
        return PM_EINVAL;
    bool held;
    const char *conflict = s_estate_conflict (ctx, txn, row, seen, &held);
    if (conflict) {
        *why = (intake_row_error_t) { "estate_name", row->estate_name, conflict };
        return 3;
    }
    char owner_key[2 * INTAKE_OWNER_KEY_BYTES + 1];
    intake_owner_key (in, v->id_number, owner_key);

    pm_key_t k;
    Pm__Intake__UnitRecord *rec;
    int result = 0;
    if (intake_unit_load (ctx, txn, unit_id, &rec) != PM_OK) {
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
    size_t o;
    for (o = 0; o < u->n_owners; o++)
        if (strcmp (u->owners[o]->owner_key, owner_key) == 0)
            break;
    if (o == u->n_owners && u->n_owners >= in->max_owners) {
        *why = (intake_row_error_t) {
            "id_number", "",
            pm_arena_printf (ctx->arena,
                             "unit %s has %zu owners already, the most a unit may have (max_owners_per_unit = %u): "
                             "is this row meant for another unit?",
                             unit_id, u->n_owners, in->max_owners) };
        return 3;
    }
    if (!s_same (u->estate_name, row->estate_name) || u->floor != v->floor || u->area_cm2 != v->area_cm2
        || !s_same (u->delivery_date, v->delivery_date) || u->parking_spaces != v->parking_spaces) {
        u->estate_name = row->estate_name;
        u->floor = v->floor;
        u->area_cm2 = v->area_cm2;
        u->delivery_date = (char *) v->delivery_date;
        u->parking_spaces = v->parking_spaces;
        if (!result)
            result = 2;
    }
    bool new_owner = false;
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
        owners[o]->phone = (char *) v->phone;
        owners[o]->email = row->email;
        owners[o]->owner_key = pm_arena_strdup (ctx->arena, owner_key);
        if (!q->dry_run)
            sealed[o] = intake_seal (ctx, in, v->id_number);
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
        if (!s_same (ow->name, row->owner_name) || !s_same (ow->phone, v->phone) || !s_same (ow->email, row->email)) {
            ow->name = row->owner_name;
            ow->phone = (char *) v->phone;
            ow->email = row->email;
            if (!result)
                result = 2;
        }
    }
    if (result == 0)
        return 0;

    pm_txn_put_msg (txn, INTAKE_UNITS, intake_unit_key (&k, unit_id), &rec->base);
    if (!held) {
        Pm__Intake__EstateRecord e = PM__INTAKE__ESTATE_RECORD__INIT;
        e.estate_id = row->estate_id;
        e.estate_name = row->estate_name;
        e.created_ms = ctx->now_ms;
        pm_txn_put_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, row->estate_id), &e.base);
        seen->estate_id = row->estate_id;
        seen->estate_name = row->estate_name;
    }
    if (q->dry_run)
        return result;
    if (result == 1)
        s_tally (ctx, tallies, row->estate_id, row->building, s_registered);
    if (new_owner)
        s_tally (ctx, tallies, row->estate_id, row->building, s_owners);

    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.correlation_id = q->batch_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
    ev.unit = u; /* owners without ID numbers: no other daemon needs them */
    int rc = intake_emit (out, txn, result == 1 ? "intake.unit.registered" : "intake.unit.updated", row->estate_id,
                          u->unit_id, &ev);
    return rc != PM_OK ? rc : result;
}

/* A dry run starts from what the earlier chunks of the run would have written. */
static void
s_dry_load (pm_txn_t *txn, const Pm__V1__IntakeImportRequest *q)
{
    pm_key_t k;
    for (size_t i = 0; i < q->n_dry_estates; i++) {
        Pm__Intake__EstateRecord e = PM__INTAKE__ESTATE_RECORD__INIT;
        e.estate_id = q->dry_estates[i]->estate_id;
        e.estate_name = q->dry_estates[i]->estate_name;
        pm_txn_put_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, e.estate_id), &e.base);
    }
    for (size_t i = 0; i < q->n_dry_units; i++) {
        Pm__Intake__UnitRecord r = PM__INTAKE__UNIT_RECORD__INIT;
        r.unit = q->dry_units[i];
        if (*r.unit->unit_id)
            pm_txn_put_msg (txn, INTAKE_UNITS, intake_unit_key (&k, r.unit->unit_id), &r.base);
    }
}

/* ... and hands back what the later chunks need. */
static void
s_dry_keep (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__IntakeImportRequest *q, Pm__V1__IntakeImportReply *r)
{
    r->dry_units = pm_arena_alloc (ctx->arena, (q->n_dry_carry + 1) * sizeof *r->dry_units);
    for (size_t i = 0; i < q->n_dry_carry; i++) {
        Pm__Intake__UnitRecord *rec;
        if (intake_unit_load (ctx, txn, q->dry_carry[i], &rec) == PM_OK)
            r->dry_units[r->n_dry_units++] = rec->unit;
    }
    size_t n = q->n_dry_estates + q->n_rows + 1, cap = n;
    r->dry_estates = pm_arena_alloc (ctx->arena, cap * sizeof *r->dry_estates);
    pm_key_t k;
    for (size_t i = 0; i < q->n_rows && r->n_dry_estates < cap; i++) {
        const char *id = q->rows[i]->estate_id;
        bool seen = false;
        for (size_t j = 0; j < r->n_dry_estates && !seen; j++)
            seen = strcmp (r->dry_estates[j]->estate_id, id) == 0;
        Pm__Intake__EstateRecord *est;
        if (seen || pm_txn_get_msg (txn, INTAKE_ESTATES, intake_estate_key (&k, s_trim (ctx, (char *) id)),
                                    &pm__intake__estate_record__descriptor, &est)
                        != PM_OK)
            continue;
        Pm__V1__ImportEstate *e = pm_arena_alloc (ctx->arena, sizeof *e);
        pm__v1__import_estate__init (e);
        e->estate_id = est->estate_id;
        e->estate_name = est->estate_name;
        r->dry_estates[r->n_dry_estates++] = e;
    }
    for (size_t i = 0; i < q->n_dry_estates && r->n_dry_estates < cap; i++) {
        bool seen = false;
        for (size_t j = 0; j < r->n_dry_estates && !seen; j++)
            seen = strcmp (r->dry_estates[j]->estate_id, q->dry_estates[i]->estate_id) == 0;
        if (!seen)
            r->dry_estates[r->n_dry_estates++] = q->dry_estates[i];
    }
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
    pm_txn_t dry;
    pm_txn_t *t = txn;
    if (q->dry_run) { /* everything below happens in a transaction that is thrown away */
        if (pm_txn_begin (&dry, txn->store, txn) != PM_OK)
            return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: cannot open a transaction for the dry run");
        dry.arena = txn->arena;
        t = &dry;
        s_dry_load (t, q);
    }
    s_estate_seen_t seen = { NULL, NULL };
    s_tallies_t tallies = { NULL, 0, 0 };
    for (size_t i = 0; i < q->n_rows; i++) {
        const Pm__V1__ImportRow *row = s_trimmed (ctx, q->rows[i]);
        intake_row_values_t v;
        intake_row_error_t e;
        if (!intake_row_check (ctx->arena, row, &v, &e)) {
            s_reject (ctx, txn, q, row, &e, r);
            continue;
        }
        int rc = s_apply_row (ctx, t, out, q, row, &v, &seen, &tallies, &e);
        if (rc == 3) {
            s_reject (ctx, txn, q, row, &e, r);
            continue;
        }
        if (rc < 0) {
            if (q->dry_run)
                pm_txn_abort (&dry);
            return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: %s at line %u", pm_strerror (rc), row->line);
        }
        if (rc == 1)
            r->created++;
        else if (rc == 2)
            r->updated++;
        else
            r->unchanged++;
        if (*q->file_name && !q->dry_run) { /* a fixed row leaves the rejections queue */
            pm_key_t k;
            pm_txn_del_key (txn, INTAKE_REJECTS, intake_reject_key (&k, q->file_name, row->line));
        }
    }
    if (q->dry_run) {
        s_dry_keep (ctx, t, q, r);
        pm_txn_abort (&dry);
    }
    else if (s_tallies_flush (txn, &tallies) != PM_OK)
        return pm_reply (out, PM__V1__STATUS__UNAVAILABLE, "storage: the counters could not be written");
    else if (r->rejected)
        pm_info ("import %s chunk %u: %u created, %u updated, %u unchanged, %u rejected", q->batch_id, q->chunk_no,
                 r->created, r->updated, r->unchanged, r->rejected);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s%u created, %u updated, %u unchanged, %u rejected",
                     q->dry_run ? "dry run, nothing written: would be " : "", r->created, r->updated, r->unchanged,
                     r->rejected);
}
