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

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
intake_key_file (const pm_config_t *cfg)
{
    static char path[4096];
    const char *v = pm_config_get (cfg, "intake", "key_file", NULL);
    if (v && *v)
        return v;
    snprintf (path, sizeof path, "%s/keys/intake.key", pm_config_home (cfg));
    return path;
}

int
intake_load_key (intake_t *in, const char *path)
{
    if (sodium_init () < 0) {
        pm_error ("libsodium failed to initialise");
        return PM_EIO;
    }
    randombytes_buf (in->nonce_prefix, sizeof in->nonce_prefix);
    in->nonce_n = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read (fd, in->key, sizeof in->key);
        close (fd);
        if (n != (ssize_t) sizeof in->key) {
            pm_error ("%s: expected a %zu-byte key; refusing to start rather than lose sealed ID numbers",
                      path, sizeof in->key);
            return PM_EIO;
        }
        return PM_OK;
    }
    if (errno != ENOENT) {
        pm_error ("cannot read %s: %s", path, strerror (errno));
        return PM_EIO;
    }
    char *dir = strdup (path), *slash = dir ? strrchr (dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        pm_mkdirs (dir);
    }
    free (dir);
    crypto_secretbox_keygen (in->key);
    fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write (fd, in->key, sizeof in->key) != (ssize_t) sizeof in->key || fsync (fd) != 0) {
        pm_error ("cannot create %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return PM_EIO;
    }
    close (fd);
    pm_info ("created the ID-number sealing key %s (back it up with the data)", path);
    return PM_OK;
}

/* Seals an ID number: nonce || secretbox. The nonce is a 128-bit random
 * prefix drawn at start plus a counter: unique for the key without a
 * getrandom() call per owner (XSalsa20 needs unique nonces, not secret ones). */
static ProtobufCBinaryData
s_seal (pm_ctx_t *ctx, intake_t *in, const char *id)
{
    size_t n = strlen (id);
    ProtobufCBinaryData b;
    b.len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    b.data = pm_arena_alloc (ctx->arena, b.len);
    memcpy (b.data, in->nonce_prefix, sizeof in->nonce_prefix);
    pm_u64_be (++in->nonce_n, b.data + sizeof in->nonce_prefix);
    crypto_secretbox_easy (b.data + crypto_secretbox_NONCEBYTES, (const unsigned char *) id, n, b.data, in->key);
    return b;
}

/* Opens a sealed ID number into arena memory; NULL if it does not open. */
static char *
s_open (pm_ctx_t *ctx, const intake_t *in, ProtobufCBinaryData b)
{
    if (b.len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return NULL;
    size_t n = b.len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *out = pm_arena_alloc (ctx->arena, n + 1);
    if (crypto_secretbox_open_easy ((unsigned char *) out, b.data + crypto_secretbox_NONCEBYTES,
                                    b.len - crypto_secretbox_NONCEBYTES, b.data, in->key) != 0)
        return NULL;
    return out;
}

/* s without surrounding blanks: s itself when there are none (the common case). */
static char *
s_trim (pm_ctx_t *ctx, char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen (s), n = len;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n == len)
        return s;
    char *t = pm_arena_alloc (ctx->arena, n + 1);
    memcpy (t, s, n);
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
        const char *c = q->columns[i];
        while (*c == ' ' || *c == '\t')
            c++;
        size_t m = strlen (c);
        while (m && (c[m - 1] == ' ' || c[m - 1] == '\t' || c[m - 1] == '\r'))
            m--;
        if (m == n && strncasecmp (c, field, n) == 0)
            return (uint32_t) i + 1;
    }
    return 0;
}

/* The value as it may be shown back: phones and ID numbers masked. */
static const char *
s_shown (pm_ctx_t *ctx, const char *field, const char *value)
{
    char buf[64];
    if (strcmp (field, "phone") == 0)
        return pm_arena_strdup (ctx->arena, pm_mask_phone (value, buf, sizeof buf));
    if (strcmp (field, "id_number") == 0)
        return pm_arena_strdup (ctx->arena, pm_mask_id (value, buf, sizeof buf));
    return value;
}

static int
s_put_msg (pm_ctx_t *ctx, pm_txn_t *txn, int table, const char *key, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size (m);
    void *buf = pm_arena_alloc (ctx->arena, len ? len : 1);
    protobuf_c_message_pack (m, buf);
    return pm_txn_put (txn, table, key, strlen (key), buf, len);
}

static void *
s_get_msg (pm_ctx_t *ctx, pm_txn_t *txn, int table, const char *key, const ProtobufCMessageDescriptor *desc)
{
    MDB_val v;
    if (pm_txn_get (txn, table, key, strlen (key), &v) != PM_OK)
        return NULL;
    return protobuf_c_message_unpack (desc, pm_arena_pb (ctx->arena), v.mv_size, v.mv_data);
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
    if (!q->file_name || !*q->file_name)
        return; /* the queue keeps rejections per file and line: none without a name */
    unsigned char key[300];
    size_t klen = intake_reject_key (key, sizeof key, q->file_name, row->line);
    char *val = pm_arena_printf (ctx->arena, "%s\t%s\t%u\t%s\t%s", q->batch_id, x->field, x->column, x->value,
                                 x->reason);
    pm_txn_put (txn, INTAKE_REJECTS, key, klen, val, strlen (val));
}

/* Applies one valid row. Returns 0 unchanged, 1 created, 2 updated, or a pm_err. */
static int
s_apply_row (pm_ctx_t *ctx, pm_txn_t *txn, pm_out_t *out, const Pm__V1__IntakeImportRequest *q,
             const Pm__V1__ImportRow *row, int64_t area_cm2, int32_t floor)
{
    intake_t *in = ctx->app;
    char unit_id[256];
    const char *estate_id = row->estate_id, *building = row->building, *unit = row->unit,
               *estate_name = row->estate_name, *owner_name = row->owner_name, *phone = row->phone,
               *email = row->email, *id_number = row->id_number;
    if (intake_unit_key (unit_id, sizeof unit_id, estate_id, building, unit) != PM_OK)
        return PM_EINVAL;

    Pm__V1__IntakeUnitRecord *rec = s_get_msg (ctx, txn, INTAKE_UNITS, unit_id, &pm__v1__intake_unit_record__descriptor);
    int result = 0;
    bool new_owner = false;
    if (!rec) {
        rec = pm_arena_alloc (ctx->arena, sizeof *rec);
        pm__v1__intake_unit_record__init (rec);
        rec->unit = pm_arena_alloc (ctx->arena, sizeof *rec->unit);
        pm__v1__unit__init (rec->unit);
        rec->unit->unit_id = pm_arena_strdup (ctx->arena, unit_id);
        rec->unit->estate_id = (char *) estate_id;
        rec->unit->building = (char *) building;
        rec->unit->unit = (char *) unit;
        rec->registered_ms = ctx->now_ms;
        rec->registered_by = q->batch_id;
        result = 1;
    }
    Pm__V1__Unit *u = rec->unit;
    if (!s_same (u->estate_name, estate_name) || u->floor != floor || u->area_cm2 != area_cm2) {
        u->estate_name = (char *) estate_name;
        u->floor = floor;
        u->area_cm2 = area_cm2;
        if (!result)
            result = 2;
    }
    size_t k;
    for (k = 0; k < u->n_owners; k++)
        if (strcmp (u->owners[k]->name, owner_name) == 0)
            break;
    if (k == u->n_owners) { /* a new owner (co-owners come as more rows for the unit) */
        Pm__V1__Owner **owners = pm_arena_alloc (ctx->arena, (k + 1) * sizeof *owners);
        ProtobufCBinaryData *sealed = pm_arena_alloc (ctx->arena, (k + 1) * sizeof *sealed);
        if (k)
            memcpy (owners, u->owners, k * sizeof *owners);
        for (size_t i = 0; i < k && i < rec->n_id_numbers_sealed; i++)
            sealed[i] = rec->id_numbers_sealed[i];
        owners[k] = pm_arena_alloc (ctx->arena, sizeof *owners[k]);
        pm__v1__owner__init (owners[k]);
        owners[k]->name = (char *) owner_name;
        owners[k]->phone = (char *) phone;
        owners[k]->email = (char *) email;
        sealed[k] = s_seal (ctx, in, id_number);
        u->owners = owners;
        u->n_owners = k + 1;
        rec->id_numbers_sealed = sealed;
        rec->n_id_numbers_sealed = k + 1;
        new_owner = true;
        if (!result)
            result = 2;
    }
    else {
        Pm__V1__Owner *o = u->owners[k];
        const char *stored_id = k < rec->n_id_numbers_sealed ? s_open (ctx, in, rec->id_numbers_sealed[k]) : NULL;
        if (!s_same (o->phone, phone) || !s_same (o->email, email) || !s_same (stored_id, id_number)) {
            o->phone = (char *) phone;
            o->email = (char *) email;
            if (!s_same (stored_id, id_number))
                rec->id_numbers_sealed[k] = s_seal (ctx, in, id_number);
            if (!result)
                result = 2;
        }
    }
    if (result == 0)
        return 0;

    s_put_msg (ctx, txn, INTAKE_UNITS, unit_id, &rec->base);
    Pm__V1__IntakeEstateRecord *est = s_get_msg (ctx, txn, INTAKE_ESTATES, estate_id,
                                                 &pm__v1__intake_estate_record__descriptor);
    if (!est) {
        est = pm_arena_alloc (ctx->arena, sizeof *est);
        pm__v1__intake_estate_record__init (est);
        est->estate_id = (char *) estate_id;
    }
    est->estate_name = (char *) estate_name;
    est->units += result == 1;
    est->owners += new_owner;
    s_put_msg (ctx, txn, INTAKE_ESTATES, estate_id, &est->base);

    Pm__V1__Event ev = PM__V1__EVENT__INIT;
    ev.type = result == 1 ? "intake.unit.registered" : "intake.unit.updated";
    ev.estate_id = (char *) estate_id;
    ev.unit_id = u->unit_id;
    ev.correlation_id = q->batch_id;
    ev.payload_case = PM__V1__EVENT__PAYLOAD_UNIT;
    ev.unit = u; /* owners without ID numbers: no other daemon needs them */
    int rc = pm_emit (ctx, txn, out, &ev);
    return rc != PM_OK ? rc : result;
}

int
intake_on_import (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__IntakeImportRequest *q = req->intake_import;
    if (!q->batch_id || !*q->batch_id)
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
        if (q->file_name && *q->file_name) { /* a fixed row leaves the rejections queue */
            unsigned char key[300];
            size_t klen = intake_reject_key (key, sizeof key, q->file_name, row->line);
            pm_txn_del (txn, INTAKE_REJECTS, key, klen);
        }
    }
    if (r->rejected)
        pm_info ("import %s chunk %u: %u created, %u updated, %u unchanged, %u rejected", q->batch_id,
                 q->chunk_no, r->created, r->updated, r->unchanged, r->rejected);
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%u created, %u updated, %u unchanged, %u rejected", r->created,
                     r->updated, r->unchanged, r->rejected);
}

int
intake_on_estate_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const char *id = req->intake_estate_get->estate_id;
    if (!*id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    Pm__V1__IntakeEstateRecord *est = s_get_msg (ctx, txn, INTAKE_ESTATES, id, &pm__v1__intake_estate_record__descriptor);
    if (!est)
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
    Pm__V1__IntakeUnitRecord *rec = s_get_msg (ctx, txn, INTAKE_UNITS, id, &pm__v1__intake_unit_record__descriptor);
    if (!rec)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND, "unit_id: no unit '%s' (expected estate/building-unit, e.g. E01/3-1201)", id);
    Pm__V1__IntakeUnitGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__intake_unit_get_reply__init (r);
    r->unit = rec->unit;
    r->registered_ms = rec->registered_ms;
    r->id_numbers_masked = pm_arena_alloc (ctx->arena, (rec->n_id_numbers_sealed + 1) * sizeof (char *));
    for (size_t i = 0; i < rec->n_id_numbers_sealed; i++) {
        char buf[64];
        const char *plain = s_open (ctx, ctx->app, rec->id_numbers_sealed[i]);
        r->id_numbers_masked[r->n_id_numbers_masked++] =
            pm_arena_strdup (ctx->arena, plain ? pm_mask_id (plain, buf, sizeof buf) : "(cannot unseal: wrong key_file?)");
    }
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %zu owner(s)", rec->unit->unit_id, rec->unit->n_owners);
}

/* rejects: file NUL line(u32 BE) -> batch \t field \t column \t value \t reason */
static void
s_reject_item (pm_ctx_t *ctx, const MDB_val *k, const MDB_val *v, Pm__V1__QueueItem *item)
{
    uint32_t line = 0;
    size_t flen = intake_reject_key_parse (k->mv_data, k->mv_size, &line);
    item->key = pm_arena_printf (ctx->arena, "%.*s:%u", (int) flen, (const char *) k->mv_data, line);
    item->detail = pm_arena_printf (ctx->arena, "%.*s", (int) v->mv_size, (char *) v->mv_data);
}

void
intake_queues (pm_ctx_t *ctx, pm_txn_t *txn, uint32_t limit, Pm__V1__OpsQueuesReply *r)
{
    pm_queue_from_table (ctx, txn, r, "import_rejections",
                         "import rows rejected and not yet fixed: correct the file and import it again "
                         "(a row that then passes leaves this queue)",
                         INTAKE_REJECTS, limit, s_reject_item);
}

void
intake_gauges (pm_ctx_t *ctx, pm_txn_t *txn)
{
    pm_gauge (ctx->metrics, "intake_units", NULL, "Units registered", (double) pm_txn_count (txn, INTAKE_UNITS));
    pm_gauge (ctx->metrics, "intake_estates", NULL, "Estates with registered units", (double) pm_txn_count (txn, INTAKE_ESTATES));
    pm_gauge (ctx->metrics, "intake_import_rejections", NULL, "Rejected import rows not yet fixed", (double) pm_txn_count (txn, INTAKE_REJECTS));
}

static const char *const s_tables[] = { "units", "estates", "rejects", NULL };

static const pm_route_t s_routes[] = {
    { "intake.import", intake_on_import, PM_ROUTE_WRITE },
    { "intake.estate.get", intake_on_estate_get, PM_ROUTE_READ },
    { "intake.unit.get", intake_on_unit_get, PM_ROUTE_READ },
    { NULL, NULL, 0 },
};

const pm_daemon_spec_t intake_spec = {
    .name = "intake",
    .tables = s_tables,
    .routes = s_routes,
    .queues = intake_queues,
    .gauges = intake_gauges,
};
