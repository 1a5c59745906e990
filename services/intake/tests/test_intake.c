/* test_intake - intake's handlers on a real LMDB, through the runtime's group
 * commit (pm_daemon_apply), without sockets: what an operator importing a
 * sales list, or a daemon consuming intake's events, would notice. */
#define _GNU_SOURCE
#include "support.h"

#include "intake.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/text.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ROWS 32

static const char *const s_columns[] = { "estate_id", "estate_name", "building", "unit",  "floor",
                                         "area_m2",   "owner_name",  "phone",    "email", "id_number" };
#define S_NCOLUMNS (sizeof s_columns / sizeof s_columns[0])

typedef struct {
    char *dir;
    char *data;
    char *key_file;
    struct ev_loop *loop;
    pm_daemon_t *d;
    int map_mb;       /* [intake] map_size_mb */
    char extra[512];  /* more [intake] lines */
    unsigned next_id; /* request ids */
} s_fixture_t;

/* One import row and the storage for its text. */
typedef struct {
    Pm__V1__ImportRow row;
    char text[12][96];
} s_row_t;

/* An intake.import request under construction (test-owned memory). */
typedef struct {
    Pm__V1__Request req;
    Pm__V1__IntakeImportRequest body;
    Pm__V1__ImportRow *rowp[S_MAX_ROWS];
    s_row_t rows[S_MAX_ROWS];
    char id[64], batch_id[64], file_name[64];
} s_import_t;

/* --- resident ID numbers ----------------------------------------------------- */

/* The ISO 7064 MOD 11-2 check character of 17 digits. */
static char
s_id_check (const char *digits17)
{
    static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    static const char check[] = "10X98765432";
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (digits17[i] - '0') * w[i];
    return check[sum % 11];
}

/* A valid 18-character resident ID, distinct per n, into out (>= 19 bytes). */
static const char *
s_resident_id (char *out, unsigned n)
{
    snprintf (out, 19, "110101199001%05u", n % 100000);
    out[17] = s_id_check (out);
    out[18] = '\0';
    return out;
}

/* The same, with a wrong check character. */
static const char *
s_resident_id_bad (char *out, unsigned n)
{
    s_resident_id (out, n);
    out[17] = out[17] == '0' ? '1' : '0';
    return out;
}

/* "1101**********1234" */
static const char *
s_masked_id (char *out, const char *id)
{
    size_t n = strlen (id);
    memcpy (out, id, 4);
    memset (out + 4, '*', n - 8);
    memcpy (out + n - 4, id + n - 4, 4);
    out[n] = '\0';
    return out;
}

/* --- the daemon -------------------------------------------------------------- */

static pm_daemon_t *
s_daemon_try (s_fixture_t *f)
{
    char *text = NULL;
    char *err = NULL;
    if (asprintf (&text,
                  "[general]\n"
                  "manual_clock = true\n"
                  "[intake]\n"
                  "command = ipc://%s/i.cmd\n"
                  "events = ipc://%s/i.pub\n"
                  "data = %s\n"
                  "map_size_mb = %d\n"
                  "key_file = %s\n"
                  "max_owners_per_unit = 3\n"
                  "%s\n"
                  "[inspection]\ncommand = ipc://%s/in.cmd\nevents = ipc://%s/in.pub\n"
                  "[billing]\ncommand = ipc://%s/b.cmd\nevents = ipc://%s/b.pub\n"
                  "[notify]\ncommand = ipc://%s/n.cmd\nevents = ipc://%s/n.pub\n",
                  f->dir, f->dir, f->data, f->map_mb, f->key_file, f->extra, f->dir, f->dir, f->dir, f->dir, f->dir,
                  f->dir)
        < 0)
        abort ();
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    if (!cfg)
        fail_msg ("config: %s", err ? err : "?");
    return pm_daemon_new (&intake_spec, cfg, f->loop);
}

static void
s_daemon_start (s_fixture_t *f)
{
    f->d = s_daemon_try (f);
    assert_non_null (f->d);
}

static void
s_daemon_stop (s_fixture_t *f)
{
    pm_daemon_destroy (&f->d);
    assert_null (f->d);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    if (!f)
        return -1;
    f->dir = pmt_tmpdir ();
    if (asprintf (&f->data, "%s/intake", f->dir) < 0 || asprintf (&f->key_file, "%s/k.key", f->dir) < 0)
        return -1;
    f->loop = ev_loop_new (0);
    if (!f->loop)
        return -1;
    f->map_mb = 8;
    *state = f;
    s_daemon_start (f);
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    pm_daemon_destroy (&f->d);
    ev_loop_destroy (f->loop);
    free (f->data);
    free (f->key_file);
    pmt_rmdir (f->dir);
    free (f);
    return 0;
}

/* --- requests ---------------------------------------------------------------- */

static s_import_t *
s_import_new (s_fixture_t *f, const char *batch_id, const char *file_name)
{
    s_import_t *m = calloc (1, sizeof *m);
    assert_non_null (m);
    pm__v1__request__init (&m->req);
    pm__v1__intake_import_request__init (&m->body);
    snprintf (m->id, sizeof m->id, "req-%u", ++f->next_id);
    snprintf (m->batch_id, sizeof m->batch_id, "%s", batch_id);
    snprintf (m->file_name, sizeof m->file_name, "%s", file_name);
    m->req.id = m->id;
    m->req.method = "intake.import";
    m->req.actor = "test";
    m->body.batch_id = m->batch_id;
    m->body.file_name = m->file_name;
    m->body.chunk_no = 1;
    m->body.columns = (char **) s_columns;
    m->body.n_columns = S_NCOLUMNS;
    m->body.rows = m->rowp;
    assert_int_equal (pm_body_set (&m->req.base, "intake.import", &m->body.base), PM_OK);
    return m;
}

/* Gives the request a new id (a new request with the same rows). */
static void
s_import_new_id (s_fixture_t *f, s_import_t *m)
{
    snprintf (m->id, sizeof m->id, "req-%u", ++f->next_id);
}

/* Adds a row: the ten columns in file order. */
static Pm__V1__ImportRow *
s_import_row (s_import_t *m, uint32_t line, const char *estate_id, const char *estate_name, const char *building,
              const char *unit, const char *floor, const char *area_m2, const char *owner_name, const char *phone,
              const char *email, const char *id_number)
{
    assert_true (m->body.n_rows < S_MAX_ROWS);
    s_row_t *r = &m->rows[m->body.n_rows];
    m->rowp[m->body.n_rows++] = &r->row;
    pm__v1__import_row__init (&r->row);
    const char *v[10] = { estate_id, estate_name, building, unit, floor, area_m2, owner_name, phone, email, id_number };
    char **dst[10] = { &r->row.estate_id, &r->row.estate_name, &r->row.building, &r->row.unit,
                       &r->row.floor,     &r->row.area_m2,     &r->row.owner_name, &r->row.phone,
                       &r->row.email,     &r->row.id_number };
    for (int i = 0; i < 10; i++) {
        snprintf (r->text[i], sizeof r->text[i], "%s", v[i] ? v[i] : "");
        *dst[i] = r->text[i];
    }
    r->row.line = line;
    r->row.delivery_date = r->text[10];
    r->row.parking_spaces = r->text[11];
    return &r->row;
}

/* Sets the optional columns of a row. */
static void
s_row_optional (Pm__V1__ImportRow *row, const char *delivery_date, const char *parking_spaces)
{
    s_row_t *r = (s_row_t *) row; /* the row is the first member */
    snprintf (r->text[10], sizeof r->text[10], "%s", delivery_date);
    snprintf (r->text[11], sizeof r->text[11], "%s", parking_spaces);
}

/* Row i (0-based) of a standard estate E01 list: unit 1-0101, 1-0102, ... */
static Pm__V1__ImportRow *
s_import_std_row (s_import_t *m, unsigned i)
{
    char unit[24], floor[16], owner[32], phone[24], email[48], id[19];
    snprintf (unit, sizeof unit, "0%u%02u", 1 + i / 4, 1 + i % 4);
    snprintf (floor, sizeof floor, "%u", 1 + i / 4);
    snprintf (owner, sizeof owner, "Owner %u", i);
    snprintf (phone, sizeof phone, "138%08u", 10000000 + i);
    snprintf (email, sizeof email, "owner%u@example.com", i);
    return s_import_row (m, 2 + i, "E01", "Riverside Gardens", "1", unit, floor, "89.50", owner, phone, email,
                         s_resident_id (id, 1000 + i));
}

static void
s_import_free (s_import_t **m)
{
    free (*m);
    *m = NULL;
}

/* Applies an import that must be answered OK; returns its reply body. */
static Pm__V1__IntakeImportReply *
s_import_ok (s_fixture_t *f, s_import_t *m)
{
    Pm__V1__Reply *r = pmt_apply (f->d, &m->req);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("intake.import %s: %s: %s", m->id, pm_status_name (r->status), r->message);
    assert_string_equal (r->id, m->id);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_INTAKE_IMPORT);
    assert_non_null (r->intake_import);
    return r->intake_import;
}

/* intake.unit.get (a READ route); the reply is valid until the next apply. */
static Pm__V1__Reply *
s_unit_get (s_fixture_t *f, const char *unit_id)
{
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    Pm__V1__IntakeUnitGetRequest body = PM__V1__INTAKE_UNIT_GET_REQUEST__INIT;
    body.unit_id = (char *) unit_id;
    req.id = "read-unit";
    req.method = "intake.unit.get";
    assert_int_equal (pm_body_set (&req.base, "intake.unit.get", &body.base), PM_OK);
    return pmt_apply (f->d, &req);
}

static Pm__V1__Unit *
s_unit_ok (s_fixture_t *f, const char *unit_id, Pm__V1__IntakeUnitGetReply **body)
{
    Pm__V1__Reply *r = s_unit_get (f, unit_id);
    if (r->status != PM__V1__STATUS__OK)
        fail_msg ("intake.unit.get %s: %s: %s", unit_id, pm_status_name (r->status), r->message);
    assert_int_equal (r->body_case, PM__V1__REPLY__BODY_INTAKE_UNIT_GET);
    assert_non_null (r->intake_unit_get->unit);
    if (body)
        *body = r->intake_unit_get;
    return r->intake_unit_get->unit;
}

static Pm__V1__Reply *
s_estate_get (s_fixture_t *f, const char *estate_id)
{
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    Pm__V1__IntakeEstateGetRequest body = PM__V1__INTAKE_ESTATE_GET_REQUEST__INIT;
    body.estate_id = (char *) estate_id;
    req.id = "read-estate";
    req.method = "intake.estate.get";
    assert_int_equal (pm_body_set (&req.base, "intake.estate.get", &body.base), PM_OK);
    return pmt_apply (f->d, &req);
}

/* Packs a reply into malloc'd memory (to compare it after the next apply). */
static uint8_t *
s_pack_reply (const Pm__V1__Reply *r, size_t *len)
{
    *len = pm__v1__reply__get_packed_size (r);
    uint8_t *buf = malloc (*len ? *len : 1);
    assert_non_null (buf);
    pm__v1__reply__pack (r, buf);
    return buf;
}

/* --- reading the store ----------------------------------------------------------- */

static size_t
s_count (s_fixture_t *f, int table)
{
    return pm_store_count (pm_daemon_store (f->d), table);
}

/* The committed event of seq (unpacked, caller frees), or NULL. */
static Pm__V1__Event *
s_outbox_event (s_fixture_t *f, uint64_t seq, uint8_t **raw, size_t *raw_len)
{
    pm_txn_t t;
    MDB_val v;
    unsigned char key[8];
    Pm__V1__Event *ev = NULL;
    pm_u64_be (seq, key);
    assert_int_equal (pm_txn_begin_read (&t, pm_daemon_store (f->d)), PM_OK);
    if (pm_txn_get (&t, PM_DB_OUTBOX, key, sizeof key, &v) == PM_OK) {
        ev = pm__v1__event__unpack (NULL, v.mv_size, v.mv_data);
        assert_non_null (ev);
        if (raw) {
            *raw = malloc (v.mv_size ? v.mv_size : 1);
            assert_non_null (*raw);
            memcpy (*raw, v.mv_data, v.mv_size);
            *raw_len = v.mv_size;
        }
    }
    pm_txn_abort (&t);
    return ev;
}

/* Whether needle occurs in any value of table. */
static bool
s_table_contains (s_fixture_t *f, int table, const char *needle)
{
    pm_txn_t t;
    MDB_cursor *c;
    MDB_val k, v;
    bool found = false;
    size_t nl = strlen (needle);
    pm_store_t *s = pm_daemon_store (f->d);
    assert_int_equal (pm_txn_begin_read (&t, s), PM_OK);
    assert_int_equal (mdb_cursor_open (t.txn, pm_store_dbi (s, table), &c), 0);
    int rc = mdb_cursor_get (c, &k, &v, MDB_FIRST);
    while (rc == 0 && !found) {
        found = memmem (v.mv_data, v.mv_size, needle, nl) || memmem (k.mv_data, k.mv_size, needle, nl);
        rc = mdb_cursor_get (c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (c);
    pm_txn_abort (&t);
    return found;
}

static const Pm__V1__Owner *
s_owner (const Pm__V1__Unit *u, const char *name)
{
    for (size_t i = 0; i < u->n_owners; i++)
        if (strcmp (u->owners[i]->name, name) == 0)
            return u->owners[i];
    return NULL;
}

static const Pm__V1__RowRejection *
s_rejection (const Pm__V1__IntakeImportReply *r, uint32_t line)
{
    for (size_t i = 0; i < r->n_rejections; i++)
        if (r->rejections[i]->line == line)
            return r->rejections[i];
    return NULL;
}

/* A chunk with rows 2..4 valid (units 0101, 0102, 0103) plus, when bad is
 * set, line 5 with area_m2 "abc" (unit 0104) and line 6 with an empty
 * owner_name (unit 0201). */
static s_import_t *
s_import_mixed (s_fixture_t *f, const char *file_name, bool bad)
{
    char id[19];
    s_import_t *m = s_import_new (f, "import:mixed", file_name);
    for (unsigned i = 0; i < 3; i++)
        s_import_std_row (m, i);
    if (bad) {
        s_import_row (m, 5, "E01", "Riverside Gardens", "1", "0104", "1", "abc", "Owner 3", "13810000003",
                      "owner3@example.com", s_resident_id (id, 1003));
        s_import_row (m, 6, "E01", "Riverside Gardens", "2", "0201", "2", "75.5", "", "13810000004",
                      "owner4@example.com", s_resident_id (id, 1004));
    }
    else {
        s_import_row (m, 5, "E01", "Riverside Gardens", "1", "0104", "1", "92.00", "Owner 3", "13810000003",
                      "owner3@example.com", s_resident_id (id, 1003));
        s_import_row (m, 6, "E01", "Riverside Gardens", "2", "0201", "2", "75.5", "Owner 4", "13810000004",
                      "owner4@example.com", s_resident_id (id, 1004));
    }
    return m;
}

/* --- tests ----------------------------------------------------------------------- */

static void
test_valid_rows_create_units (void **state)
{
    s_fixture_t *f = *state;
    char id[19];
    s_import_t *m = s_import_new (f, "import:abc123", "sales.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "89.50", "Zhang Wei", "13812345678",
                  "zhang@example.com", s_resident_id (id, 1));
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "1201", "12", "120", "Li Na", "+86 138-1234-0000", "",
                  s_resident_id (id, 2));
    s_import_row (m, 4, "E01", "Riverside Gardens", "B2", "0003", "-1", "7.5", "Wang Fang", "+852 9123 4567",
                  "wang@example.com", "E12345678");
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 3);
    assert_int_equal (r->updated, 0);
    assert_int_equal (r->unchanged, 0);
    assert_int_equal (r->rejected, 0);
    assert_int_equal (r->n_rejections, 0);
    s_import_free (&m);

    Pm__V1__IntakeUnitGetReply *body;
    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0101", &body);
    assert_string_equal (u->unit_id, "E01/1/0101");
    assert_string_equal (u->estate_id, "E01");
    assert_string_equal (u->estate_name, "Riverside Gardens");
    assert_string_equal (u->building, "1");
    assert_string_equal (u->unit, "0101");
    assert_int_equal (u->floor, 1);
    assert_int_equal (u->area_cm2, 8950);
    assert_int_equal (u->n_owners, 1);
    assert_string_equal (u->owners[0]->name, "Zhang Wei");
    assert_string_equal (u->owners[0]->phone, "13812345678");
    assert_string_equal (u->owners[0]->email, "zhang@example.com");
    assert_int_equal (body->n_id_numbers_masked, 1);
    assert_true (body->registered_ms > 0);

    u = s_unit_ok (f, "E01/1/1201", NULL);
    assert_int_equal (u->floor, 12);
    assert_int_equal (u->area_cm2, 12000);
    assert_string_equal (u->owners[0]->name, "Li Na");
    assert_string_equal (u->owners[0]->email, "");
    assert_string_equal (u->owners[0]->phone, "13812340000"); /* "+86 138-1234-0000" as SMS needs it */

    u = s_unit_ok (f, "E01/B2/0003", NULL);
    assert_int_equal (u->floor, -1);
    assert_int_equal (u->area_cm2, 750);
    assert_string_equal (u->owners[0]->phone, "+85291234567");
    assert_int_equal (strlen (u->owners[0]->owner_key), 32); /* the owner's keyed hash, hex */

    /* an id that was not imported */
    Pm__V1__Reply *rep = s_unit_get (f, "E01/1/0102");
    assert_int_equal (rep->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (rep->message, "E01/1/0102"));
    assert_int_equal (s_count (f, INTAKE_UNITS), 3);
}

static void
test_each_new_unit_emits_one_event (void **state)
{
    s_fixture_t *f = *state;
    const unsigned n = 5;
    char ids[5][19];
    s_import_t *m = s_import_new (f, "import:batch-7", "sales.csv");
    for (unsigned i = 0; i < n; i++) {
        s_import_std_row (m, i);
        snprintf (ids[i], sizeof ids[i], "%s", m->rows[i].row.id_number);
    }
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, n);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), n);
    assert_true (pm_daemon_last_seq (f->d) == n);

    for (unsigned seq = 1; seq <= n; seq++) {
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        Pm__V1__Event *ev = s_outbox_event (f, seq, &raw, &raw_len);
        if (!ev)
            fail_msg ("no event at seq %u", seq);
        assert_string_equal (ev->type, "intake.unit.registered");
        assert_string_equal (ev->source, "intake");
        assert_true (ev->seq == seq);
        char want_id[32];
        snprintf (want_id, sizeof want_id, "intake:%u", seq);
        assert_string_equal (ev->id, want_id);
        assert_string_equal (ev->estate_id, "E01");
        assert_string_equal (ev->correlation_id, "import:batch-7");
        assert_int_equal (ev->payload_case, PM__V1__EVENT__PAYLOAD_UNIT);
        const Pm__V1__Unit *u = ev->unit;
        assert_non_null (u);
        assert_string_equal (ev->unit_id, u->unit_id);
        /* events come in row order */
        const Pm__V1__ImportRow *row = m->rowp[seq - 1];
        char unit_id[64];
        snprintf (unit_id, sizeof unit_id, "E01/1/%s", row->unit);
        assert_string_equal (u->unit_id, unit_id);
        assert_int_equal (u->area_cm2, 8950);
        assert_int_equal (u->n_owners, 1);
        assert_string_equal (u->owners[0]->name, row->owner_name);
        assert_string_equal (u->owners[0]->phone, row->phone);
        assert_string_equal (u->owners[0]->email, row->email);
        /* no ID number anywhere in what other daemons receive */
        for (unsigned i = 0; i < n; i++)
            if (memmem (raw, raw_len, ids[i], strlen (ids[i])))
                fail_msg ("event %u carries the ID number %s", seq, ids[i]);
        pm__v1__event__free_unpacked (ev, NULL);
        free (raw);
    }
    assert_null (s_outbox_event (f, n + 1, NULL, NULL));
    s_import_free (&m);
}

/* A key file that is not exactly a key (another file put there, e.g. a
 * CurveZMQ key pair) is refused: using its first bytes would seal with a key
 * nobody keeps. */
static Pm__V1__IntakeSealRotateReply *
s_rotate (s_fixture_t *f, const char *id, uint32_t max)
{
    Pm__V1__IntakeSealRotateRequest body = PM__V1__INTAKE_SEAL_ROTATE_REQUEST__INIT;
    body.max = max;
    Pm__V1__Reply *r = pmt_call_expect (f->d, id, "intake.seal.rotate", &body.base, PM__V1__STATUS__OK);
    return r->intake_seal_rotate;
}

/* Rotating the sealing key: the old key opens what it sealed until
 * intake.seal.rotate has sealed everything again with the new one; then the
 * old key can go, and every ID number still opens. */
static void
test_sealing_key_rotation (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_new (f, "import:rot", "rot.csv");
    for (unsigned i = 0; i < 5; i++)
        s_import_std_row (m, i);
    assert_int_equal (s_import_ok (f, m)->created, 5);
    s_import_free (&m);
    Pm__V1__IntakeUnitGetReply *before;
    s_unit_ok (f, "E01/1/0101", &before);
    char masked[64];
    snprintf (masked, sizeof masked, "%s", before->id_numbers_masked[0]);

    /* a new key; the old one kept aside, named in old_key_files */
    pm_daemon_destroy (&f->d);
    char *old = NULL;
    if (asprintf (&old, "%s/old.key", f->dir) < 0)
        abort ();
    assert_int_equal (rename (f->key_file, old), 0);
    snprintf (f->extra, sizeof f->extra, "old_key_files = %s", old);
    s_daemon_start (f); /* makes the new key */
    Pm__V1__IntakeUnitGetReply *during;
    s_unit_ok (f, "E01/1/0101", &during);
    assert_string_equal (during->id_numbers_masked[0], masked); /* the old key still opens it */
    unsigned resealed = 0, calls = 0;
    Pm__V1__IntakeSealRotateReply *r;
    do {
        char id[32];
        snprintf (id, sizeof id, "rotate-%u", calls++);
        r = s_rotate (f, id, 2); /* two units a call: the cursor carries over */
        resealed += r->resealed;
        assert_int_equal (r->unopenable, 0);
        assert_true (calls < 20);
    } while (!r->done);
    assert_int_equal (resealed, 5);

    /* without the old key, everything still opens */
    pm_daemon_destroy (&f->d);
    f->extra[0] = '\0';
    s_daemon_start (f);
    Pm__V1__IntakeUnitGetReply *after;
    s_unit_ok (f, "E01/1/0101", &after);
    assert_string_equal (after->id_numbers_masked[0], masked);
    r = s_rotate (f, "rotate-final", 100); /* a whole clean pass */
    assert_true (r->done);
    assert_int_equal (r->resealed, 0);
    /* an old key that is not there is an error at start, never a new key */
    pm_daemon_destroy (&f->d);
    snprintf (f->extra, sizeof f->extra, "old_key_files = %s/nosuch.key", f->dir);
    pmt_log_start ();
    assert_null (s_daemon_try (f));
    assert_true (pmt_log_has ("an old key is never created"));
    pmt_log_stop ();
    f->extra[0] = '\0';
    s_daemon_start (f);
    free (old);
}

static void
test_wrong_key_file_is_refused (void **state)
{
    s_fixture_t *f = *state;
    pm_daemon_destroy (&f->d);
    FILE *k = fopen (f->key_file, "w");
    assert_non_null (k);
    fputs ("# pm CurveZMQ key pair of intake: keep this file secret\npublic-key = 0123456789\n", k);
    fclose (k);
    free (f->data);
    if (asprintf (&f->data, "%s/intake-wrongkey", f->dir) < 0)
        abort ();
    char *text = NULL, *err = NULL;
    if (asprintf (&text, "[general]\n[intake]\ncommand = ipc://%s/i.cmd\nevents = ipc://%s/i.pub\ndata = %s\n"
                         "key_file = %s\n[inspection]\ncommand = ipc://%s/in.cmd\nevents = ipc://%s/in.pub\n"
                         "[billing]\ncommand = ipc://%s/b.cmd\nevents = ipc://%s/b.pub\n"
                         "[notify]\ncommand = ipc://%s/n.cmd\nevents = ipc://%s/n.pub\n",
                  f->dir, f->dir, f->data, f->key_file, f->dir, f->dir, f->dir, f->dir, f->dir, f->dir)
        < 0)
        abort ();
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    assert_non_null (cfg);
    pmt_log_start ();
    f->d = pm_daemon_new (&intake_spec, cfg, f->loop);
    bool said = pmt_log_has ("expected a 32-byte");
    pmt_log_stop ();
    assert_null (f->d);
    assert_true (said);
}

static void
test_id_number_sealed_and_shown_masked (void **state)
{
    s_fixture_t *f = *state;
    char id1[19], id2[19], masked[19];
    s_resident_id (id1, 4321);
    s_resident_id (id2, 8765);
    s_import_t *m = s_import_new (f, "import:ids", "ids.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "89.50", "Zhang Wei", "13812345678",
                  "zhang@example.com", id1);
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "0101", "1", "89.50", "Zhang Min", "13812345679", "",
                  id2);
    /* a rejected row that carries an ID number too (phone is wrong) */
    s_import_row (m, 4, "E01", "Riverside Gardens", "1", "0102", "1", "89.50", "Zhao Lei", "12", "", id2);
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 1);
    assert_int_equal (r->updated, 1);
    assert_int_equal (r->rejected, 1);
    s_import_free (&m);

    /* not in plaintext in the units table, nor anywhere else intake stores */
    static const int tables[] = { INTAKE_UNITS, INTAKE_ESTATES, INTAKE_REJECTS, PM_DB_OUTBOX, PM_DB_IDEM,
                                  PM_DB_META };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (s_table_contains (f, tables[i], id1))
            fail_msg ("table %d holds the ID number %s in plaintext", tables[i], id1);
        if (s_table_contains (f, tables[i], id2))
            fail_msg ("table %d holds the ID number %s in plaintext", tables[i], id2);
    }
    assert_true (s_table_contains (f, INTAKE_UNITS, "Zhang Wei")); /* the scan does see values */

    Pm__V1__IntakeUnitGetReply *body;
    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0101", &body);
    assert_int_equal (u->n_owners, 2);
    assert_int_equal (body->n_id_numbers_masked, 2);
    assert_string_equal (body->id_numbers_masked[0], s_masked_id (masked, id1));
    assert_string_equal (body->id_numbers_masked[1], s_masked_id (masked, id2));
    /* the "1101**********1234" form: first 4 and last 4 kept */
    assert_int_equal (strlen (body->id_numbers_masked[0]), 18);
    assert_int_equal (strncmp (body->id_numbers_masked[0], "1101**********", 14), 0);
    assert_memory_equal (body->id_numbers_masked[0] + 14, id1 + 14, 4);
}

static void
test_reimport_changes_nothing (void **state)
{
    s_fixture_t *f = *state;
    const unsigned n = 6;
    s_import_t *m = s_import_new (f, "import:same", "sales.csv");
    for (unsigned i = 0; i < n; i++)
        s_import_std_row (m, i);
    assert_int_equal (s_import_ok (f, m)->created, n);
    size_t events = s_count (f, PM_DB_OUTBOX);
    assert_int_equal (events, n);

    s_import_new_id (f, m);
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 0);
    assert_int_equal (r->updated, 0);
    assert_int_equal (r->unchanged, n);
    assert_int_equal (r->rejected, 0);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), events);
    assert_true (pm_daemon_last_seq (f->d) == n);
    assert_int_equal (s_count (f, INTAKE_UNITS), n);

    Pm__V1__Reply *e = s_estate_get (f, "E01");
    assert_int_equal (e->status, PM__V1__STATUS__OK);
    assert_int_equal (e->intake_estate_get->units, n);
    assert_int_equal (e->intake_estate_get->owners, n);
    s_import_free (&m);
}

static void
test_retried_request_id_gets_stored_reply (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_mixed (f, "retry.csv", true);
    Pm__V1__Reply *first = pmt_apply (f->d, &m->req);
    assert_int_equal (first->status, PM__V1__STATUS__OK);
    assert_int_equal (first->intake_import->created, 3);
    assert_int_equal (first->intake_import->rejected, 2);
    size_t len1;
    uint8_t *buf1 = s_pack_reply (first, &len1);
    size_t events = s_count (f, PM_DB_OUTBOX);

    /* the same id again: the stored reply, not "3 unchanged" */
    Pm__V1__Reply *again = pmt_apply (f->d, &m->req);
    size_t len2;
    uint8_t *buf2 = s_pack_reply (again, &len2);
    assert_int_equal (len1, len2);
    assert_memory_equal (buf1, buf2, len1);
    assert_int_equal (again->intake_import->created, 3);
    assert_int_equal (again->intake_import->unchanged, 0);
    free (buf2);

    /* and again twice within one batch */
    pm_batch_item_t items[2] = { { &m->req, NULL, NULL }, { &m->req, NULL, NULL } };
    assert_int_equal (pm_daemon_apply (f->d, items, 2), PM_OK);
    for (int i = 0; i < 2; i++) {
        buf2 = s_pack_reply (items[i].reply, &len2);
        assert_int_equal (len1, len2);
        assert_memory_equal (buf1, buf2, len1);
        free (buf2);
    }
    free (buf1);

    /* nothing applied twice */
    assert_int_equal (s_count (f, PM_DB_OUTBOX), events);
    assert_int_equal (s_count (f, INTAKE_UNITS), 3);
    Pm__V1__Reply *e = s_estate_get (f, "E01");
    assert_int_equal (e->status, PM__V1__STATUS__OK);
    assert_int_equal (e->intake_estate_get->units, 3);
    s_import_free (&m);
}

static void
test_same_new_id_twice_in_one_batch_applies_once (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_new (f, "import:dup", "dup.csv");
    s_import_std_row (m, 0);
    s_import_std_row (m, 1);
    pm_batch_item_t items[2] = { { &m->req, NULL, NULL }, { &m->req, NULL, NULL } };
    assert_int_equal (pm_daemon_apply (f->d, items, 2), PM_OK);
    assert_int_equal (items[0].reply->status, PM__V1__STATUS__OK);
    assert_int_equal (items[1].reply->status, PM__V1__STATUS__OK);
    assert_int_equal (items[0].reply->intake_import->created, 2);
    assert_int_equal (items[1].reply->intake_import->created, 2);
    assert_int_equal (items[1].reply->intake_import->unchanged, 0);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), 2);
    s_import_free (&m);
}

static void
test_bad_rows_rejected_with_line_and_column (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_mixed (f, "mixed.csv", true);
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 3);
    assert_int_equal (r->rejected, 2);
    assert_int_equal (r->n_rejections, 2);

    const Pm__V1__RowRejection *x = s_rejection (r, 5);
    assert_non_null (x);
    assert_string_equal (x->field, "area_m2");
    assert_int_equal (x->column, 6);
    assert_string_equal (x->value, "abc");
    assert_non_null (strstr (x->reason, "not a number"));

    x = s_rejection (r, 6);
    assert_non_null (x);
    assert_string_equal (x->field, "owner_name");
    assert_int_equal (x->column, 7);
    assert_non_null (strstr (x->reason, "missing"));

    /* the valid rows of the chunk are there, the rejected ones are not */
    s_unit_ok (f, "E01/1/0101", NULL);
    s_unit_ok (f, "E01/1/0102", NULL);
    s_unit_ok (f, "E01/1/0103", NULL);
    assert_int_equal (s_unit_get (f, "E01/1/0104")->status, PM__V1__STATUS__NOT_FOUND);
    assert_int_equal (s_unit_get (f, "E01/2/0201")->status, PM__V1__STATUS__NOT_FOUND);
    assert_int_equal (s_count (f, INTAKE_UNITS), 3);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), 3);
    s_import_free (&m);
}

static void
test_rejections_queue_until_fixed (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_mixed (f, "sales.csv", true);
    assert_int_equal (s_import_ok (f, m)->rejected, 2);
    s_import_free (&m);

    Pm__V1__Queue *q = pmt_queue (f->d, "import_rejections");
    assert_true (q->count == 2);
    assert_int_equal (q->n_items, 2);
    const Pm__V1__QueueItem *it = pmt_queue_item (q, "sales.csv:5");
    if (!it)
        fail_msg ("no queue item sales.csv:5 (first: %s)", q->items[0]->key);
    assert_string_equal (pmt_queue_field (it, "field"), "area_m2");
    assert_string_equal (pmt_queue_field (it, "value"), "abc");
    assert_string_equal (pmt_queue_field (it, "column"), "6");
    assert_non_null (strstr (it->reason, "not a number"));
    it = pmt_queue_item (q, "sales.csv:6");
    assert_non_null (it);
    assert_string_equal (pmt_queue_field (it, "field"), "owner_name");

    /* another file with the same lines fixed does not clear them */
    m = s_import_mixed (f, "other.csv", false);
    s_import_ok (f, m);
    s_import_free (&m);
    assert_true (pmt_queue (f->d, "import_rejections")->count == 2);

    /* the same file, fixed: both leave the queue and the units are created */
    m = s_import_mixed (f, "sales.csv", false);
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->rejected, 0);
    s_import_free (&m);
    q = pmt_queue (f->d, "import_rejections");
    assert_true (q->count == 0);
    assert_int_equal (q->n_items, 0);
    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0104", NULL);
    assert_int_equal (u->area_cm2, 9200);
    u = s_unit_ok (f, "E01/2/0201", NULL);
    assert_string_equal (u->owners[0]->name, "Owner 4");
}

static void
test_changed_phone_updates_owner (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_new (f, "import:v1", "sales.csv");
    s_import_std_row (m, 0);
    s_import_std_row (m, 1);
    assert_int_equal (s_import_ok (f, m)->created, 2);
    size_t events = s_count (f, PM_DB_OUTBOX);

    /* the same file again, one owner's phone changed */
    s_import_new_id (f, m);
    snprintf (m->rows[1].text[7], sizeof m->rows[1].text[7], "13999998888");
    snprintf (m->batch_id, sizeof m->batch_id, "import:v2");
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 0);
    assert_int_equal (r->updated, 1);
    assert_int_equal (r->unchanged, 1);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), events + 1);

    Pm__V1__Event *ev = s_outbox_event (f, events + 1, NULL, NULL);
    assert_non_null (ev);
    assert_string_equal (ev->type, "intake.unit.updated");
    assert_string_equal (ev->unit_id, "E01/1/0102");
    assert_string_equal (ev->correlation_id, "import:v2");
    assert_int_equal (ev->payload_case, PM__V1__EVENT__PAYLOAD_UNIT);
    assert_int_equal (ev->unit->n_owners, 1);
    assert_string_equal (ev->unit->owners[0]->phone, "13999998888");
    pm__v1__event__free_unpacked (ev, NULL);

    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0102", NULL);
    assert_int_equal (u->n_owners, 1);
    assert_string_equal (u->owners[0]->phone, "13999998888");
    u = s_unit_ok (f, "E01/1/0101", NULL);
    assert_string_equal (u->owners[0]->phone, "13810000000");
    Pm__V1__Reply *e = s_estate_get (f, "E01");
    assert_int_equal (e->intake_estate_get->units, 2);
    assert_int_equal (e->intake_estate_get->owners, 2);
    s_import_free (&m);
}

static void
test_second_owner_row_adds_co_owner (void **state)
{
    s_fixture_t *f = *state;
    char id[19];
    s_import_t *m = s_import_new (f, "import:first", "sales.csv");
    s_import_std_row (m, 0);
    assert_int_equal (s_import_ok (f, m)->created, 1);
    s_import_free (&m);

    m = s_import_new (f, "import:second", "co.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "89.50", "Co Owner", "13700001111",
                  "co@example.com", s_resident_id (id, 77));
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 0);
    assert_int_equal (r->updated, 1);
    s_import_free (&m);

    Pm__V1__IntakeUnitGetReply *body;
    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0101", &body);
    assert_int_equal (u->n_owners, 2);
    const Pm__V1__Owner *o = s_owner (u, "Owner 0");
    assert_non_null (o);
    assert_string_equal (o->phone, "13810000000");
    o = s_owner (u, "Co Owner");
    assert_non_null (o);
    assert_string_equal (o->phone, "13700001111");
    assert_string_equal (o->email, "co@example.com");
    assert_int_equal (body->n_id_numbers_masked, 2);
    char masked[19];
    assert_string_equal (body->id_numbers_masked[1], s_masked_id (masked, id));

    Pm__V1__Event *ev = s_outbox_event (f, 2, NULL, NULL);
    assert_non_null (ev);
    assert_string_equal (ev->type, "intake.unit.updated");
    assert_int_equal (ev->unit->n_owners, 2);
    pm__v1__event__free_unpacked (ev, NULL);

    Pm__V1__Reply *e = s_estate_get (f, "E01");
    assert_int_equal (e->intake_estate_get->units, 1);
    assert_int_equal (e->intake_estate_get->owners, 2);
}

static void
test_invalid_resident_id_rejected (void **state)
{
    s_fixture_t *f = *state;
    char bad[19], good[19];
    s_resident_id_bad (bad, 555);
    s_import_t *m = s_import_new (f, "import:badid", "ids.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "89.50", "Zhang Wei", "13812345678", "",
                  bad);
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "0102", "1", "89.50", "Li Na", "13812345679", "",
                  s_resident_id (good, 556));
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 1);
    assert_int_equal (r->rejected, 1);
    const Pm__V1__RowRejection *x = s_rejection (r, 2);
    assert_non_null (x);
    assert_string_equal (x->field, "id_number");
    assert_int_equal (x->column, 10);
    assert_non_null (strstr (x->reason, "check character"));
    /* even a wrong ID number is not shown back in full */
    assert_null (strstr (x->value, bad));
    char masked[19];
    assert_string_equal (x->value, s_masked_id (masked, bad));
    assert_false (s_table_contains (f, INTAKE_REJECTS, bad));
    assert_int_equal (s_unit_get (f, "E01/1/0101")->status, PM__V1__STATUS__NOT_FOUND);
    s_import_free (&m);
}

static void
test_estate_get_counts_and_unknown (void **state)
{
    s_fixture_t *f = *state;
    Pm__V1__Reply *e = s_estate_get (f, "E99");
    assert_int_equal (e->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (e->message, "E99"));

    s_import_t *m = s_import_new (f, "import:est", "sales.csv");
    for (unsigned i = 0; i < 4; i++)
        s_import_std_row (m, i);
    s_import_ok (f, m);
    s_import_free (&m);

    e = s_estate_get (f, "E01");
    assert_int_equal (e->status, PM__V1__STATUS__OK);
    assert_int_equal (e->body_case, PM__V1__REPLY__BODY_INTAKE_ESTATE_GET);
    assert_string_equal (e->intake_estate_get->estate_id, "E01");
    assert_string_equal (e->intake_estate_get->estate_name, "Riverside Gardens");
    assert_int_equal (e->intake_estate_get->units, 4);
    assert_int_equal (e->intake_estate_get->owners, 4);

    e = s_estate_get (f, "E99");
    assert_int_equal (e->status, PM__V1__STATUS__NOT_FOUND);
    assert_non_null (strstr (e->message, "E99"));
}

static void
test_empty_batch_id_is_invalid (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_mixed (f, "sales.csv", true);
    m->batch_id[0] = '\0';
    Pm__V1__Reply *r = pmt_apply (f->d, &m->req);
    assert_int_equal (r->status, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "batch_id"));
    assert_int_equal (s_count (f, INTAKE_UNITS), 0);
    assert_int_equal (s_count (f, INTAKE_ESTATES), 0);
    assert_int_equal (s_count (f, INTAKE_REJECTS), 0);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), 0);
    assert_true (pm_daemon_last_seq (f->d) == 0);
    assert_int_equal (s_unit_get (f, "E01/1/0101")->status, PM__V1__STATUS__NOT_FOUND);
    s_import_free (&m);
}

static void
test_state_survives_restart (void **state)
{
    s_fixture_t *f = *state;
    char id[19], masked[19];
    s_import_t *m = s_import_new (f, "import:before", "sales.csv");
    for (unsigned i = 0; i < 3; i++)
        s_import_std_row (m, i);
    Pm__V1__Reply *first = pmt_apply (f->d, &m->req);
    assert_int_equal (first->status, PM__V1__STATUS__OK);
    assert_int_equal (first->intake_import->created, 3);
    size_t len1, len2;
    uint8_t *buf1 = s_pack_reply (first, &len1);

    s_daemon_stop (f);
    s_daemon_start (f);

    assert_true (pm_daemon_last_seq (f->d) == 3);
    Pm__V1__IntakeUnitGetReply *body;
    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0102", &body);
    assert_int_equal (u->area_cm2, 8950);
    assert_string_equal (u->owners[0]->name, "Owner 1");
    /* the ID number still unseals with the key file */
    assert_string_equal (body->id_numbers_masked[0], s_masked_id (masked, s_resident_id (id, 1001)));

    /* a client retrying across the restart gets the stored reply */
    Pm__V1__Reply *again = pmt_apply (f->d, &m->req);
    uint8_t *buf2 = s_pack_reply (again, &len2);
    assert_int_equal (len1, len2);
    assert_memory_equal (buf1, buf2, len1);
    free (buf1);
    free (buf2);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), 3);
    s_import_free (&m);

    /* new events continue the sequence */
    m = s_import_new (f, "import:after", "sales.csv");
    s_import_std_row (m, 3);
    assert_int_equal (s_import_ok (f, m)->created, 1);
    s_import_free (&m);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), 4);
    Pm__V1__Event *ev = s_outbox_event (f, 4, NULL, NULL);
    assert_non_null (ev);
    assert_string_equal (ev->unit_id, "E01/1/0104");
    pm__v1__event__free_unpacked (ev, NULL);
    ev = s_outbox_event (f, 1, NULL, NULL);
    assert_non_null (ev);
    assert_string_equal (ev->unit_id, "E01/1/0101");
    pm__v1__event__free_unpacked (ev, NULL);
    Pm__V1__Reply *e = s_estate_get (f, "E01");
    assert_int_equal (e->intake_estate_get->units, 4);
}

static void
test_big_batch_grows_the_map_and_commits (void **state)
{
    s_fixture_t *f = *state;
    /* start over with a 1 MiB map that cannot hold the batch below */
    s_daemon_stop (f);
    free (f->data);
    if (asprintf (&f->data, "%s/intake-small", f->dir) < 0)
        abort ();
    f->map_mb = 1;
    s_daemon_start (f);
    size_t map0 = pm_store_map_size (pm_daemon_store (f->d));
    assert_int_equal (map0, (size_t) 1 << 20);

    enum { NREQ = 64 };
    s_import_t *m[NREQ];
    pm_batch_item_t items[NREQ];
    for (unsigned r = 0; r < NREQ; r++) {
        m[r] = s_import_new (f, "import:big", "big.csv");
        for (unsigned j = 0; j < S_MAX_ROWS; j++)
            s_import_std_row (m[r], r * S_MAX_ROWS + j);
        items[r] = (pm_batch_item_t) { &m[r]->req, NULL, NULL };
    }
    assert_int_equal (pm_daemon_apply (f->d, items, NREQ), PM_OK);
    for (unsigned r = 0; r < NREQ; r++) {
        if (items[r].reply->status != PM__V1__STATUS__OK)
            fail_msg ("request %u: %s: %s", r, pm_status_name (items[r].reply->status), items[r].reply->message);
        assert_string_equal (items[r].reply->id, m[r]->id);
        assert_int_equal (items[r].reply->intake_import->created, S_MAX_ROWS);
    }
    const size_t n = (size_t) NREQ * S_MAX_ROWS;
    assert_true (pm_store_map_size (pm_daemon_store (f->d)) > map0);
    assert_int_equal (s_count (f, INTAKE_UNITS), n);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), n);
    assert_int_equal (s_count (f, PM_DB_IDEM), NREQ);
    assert_true (pm_daemon_last_seq (f->d) == n);
    Pm__V1__Event *ev = s_outbox_event (f, n, NULL, NULL);
    assert_non_null (ev);
    assert_true (ev->seq == n);
    pm__v1__event__free_unpacked (ev, NULL);
    Pm__V1__Reply *e = s_estate_get (f, "E01");
    assert_int_equal (e->intake_estate_get->units, n);
    for (unsigned r = 0; r < NREQ; r++)
        s_import_free (&m[r]);
}

static void
test_non_utf8_row_rejected (void **state)
{
    s_fixture_t *f = *state;
    char id1[19], id2[19];
    s_import_t *m = s_import_new (f, "import:gbk", "gbk.csv");
    /* "\xd5\xc5\xce\xb0" is 张伟 in GBK: a file saved from Excel without UTF-8 */
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "89.50", "\xd5\xc5\xce\xb0", "13812345678",
                  "", s_resident_id (id1, 601));
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "0102", "1", "89.50", "张伟", "13812345679", "",
                  s_resident_id (id2, 602));
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 1);
    assert_int_equal (r->rejected, 1);
    const Pm__V1__RowRejection *x = s_rejection (r, 2);
    assert_non_null (x);
    assert_string_equal (x->field, "owner_name");
    assert_int_equal (x->column, 7);
    assert_non_null (strstr (x->reason, "UTF-8"));
    s_import_free (&m);
}

/* Rows with random bytes in random fields: every row is counted once as
 * created, updated, unchanged or rejected, nothing crashes, and a second
 * import of the same rows creates nothing. */
static void
test_mutated_rows_never_crash (void **state)
{
    s_fixture_t *f = *state;
    unsigned seed = 4242;
    enum { REQS = 40 };
    s_import_t *m[REQS];
    for (int k = 0; k < REQS; k++) {
        m[k] = s_import_new (f, "import:fuzz", "fuzz.csv");
        for (unsigned i = 0; i < S_MAX_ROWS - 1; i++) {
            Pm__V1__ImportRow *row = s_import_std_row (m[k], (unsigned) k * S_MAX_ROWS + i);
            char **fields[] = { &row->estate_id, &row->estate_name, &row->building, &row->unit,
                                &row->floor,     &row->area_m2,     &row->owner_name, &row->phone,
                                &row->email,     &row->id_number };
            char *field = *fields[rand_r (&seed) % 10];
            size_t len = (size_t) rand_r (&seed) % 95;
            if (rand_r (&seed) % 2) { /* random bytes (no NUL) */
                for (size_t b = 0; b < len; b++)
                    field[b] = (char) (1 + rand_r (&seed) % 255);
                field[len] = '\0';
            }
            else if (*field) /* one byte changed */
                field[(size_t) rand_r (&seed) % strlen (field)] = (char) (1 + rand_r (&seed) % 255);
        }
        Pm__V1__IntakeImportReply *r = s_import_ok (f, m[k]);
        assert_int_equal (r->created + r->updated + r->unchanged + r->rejected, S_MAX_ROWS - 1);
        assert_int_equal (r->n_rejections, r->rejected);
    }
    for (int k = 0; k < REQS; k++) {
        s_import_new_id (f, m[k]);
        Pm__V1__IntakeImportReply *r = s_import_ok (f, m[k]);
        assert_int_equal (r->created, 0);
        s_import_free (&m[k]);
    }
    /* every stored event still decodes */
    size_t n = s_count (f, PM_DB_OUTBOX);
    assert_true (n > 0);
    for (uint64_t seq = 1; seq <= n; seq++) {
        uint8_t *raw;
        size_t len;
        Pm__V1__Event *ev = s_outbox_event (f, seq, &raw, &len);
        assert_non_null (ev);
        pm__v1__event__free_unpacked (ev, NULL);
        free (raw);
    }
}

/* --- unit ids, owners, the values people type ----------------------------------- */

/* Building and unit names chosen to collide under any join with '-': every
 * combination is its own unit, readable under its own id. */
static void
test_unit_ids_never_collide (void **state)
{
    s_fixture_t *f = *state;
    static const char *const estates[] = { "E01", "E01-3" };
    static const char *const parts[] = { "3", "3-2", "2-301", "301", "3-2-301", "2", "-", "3 2", "3／2", "2单元301",
                                         "0301", "3.2" };
    const size_t np = sizeof parts / sizeof parts[0];
    unsigned n = 0, line = 2;
    char id[19];
    s_import_t *m = NULL;
    for (size_t e = 0; e < 2; e++)
        for (size_t b = 0; b < np; b++)
            for (size_t u = 0; u < np; u++) {
                if (!m || m->body.n_rows == S_MAX_ROWS) {
                    if (m) {
                        Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
                        assert_int_equal (r->created, m->body.n_rows); /* never "updated": no two share an id */
                        s_import_free (&m);
                    }
                    m = s_import_new (f, "import:ids", "ids.csv");
                }
                char owner[32], phone[16];
                snprintf (owner, sizeof owner, "Owner %u", n);
                snprintf (phone, sizeof phone, "139%08u", n);
                s_import_row (m, line++, estates[e], "Collide Court", parts[b], parts[u], "3", "80", owner, phone, "",
                              s_resident_id (id, 3000 + n));
                n++;
            }
    assert_int_equal (s_import_ok (f, m)->created, m->body.n_rows);
    s_import_free (&m);
    assert_int_equal (s_count (f, INTAKE_UNITS), n);
    for (size_t e = 0; e < 2; e++)
        for (size_t b = 0; b < np; b++)
            for (size_t u = 0; u < np; u++) {
                char unit_id[128];
                snprintf (unit_id, sizeof unit_id, "%s/%s/%s", estates[e], parts[b], parts[u]);
                Pm__V1__Unit *x = s_unit_ok (f, unit_id, NULL);
                assert_string_equal (x->estate_id, estates[e]);
                assert_string_equal (x->building, parts[b]);
                assert_string_equal (x->unit, parts[u]);
                assert_int_equal (x->n_owners, 1);
            }
}

static void
test_slash_inside_a_part_is_refused (void **state)
{
    s_fixture_t *f = *state;
    char id[19];
    s_import_t *m = s_import_new (f, "import:slash", "slash.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "3/2", "301", "3", "80", "A", "13900000001", "",
                  s_resident_id (id, 1));
    s_import_row (m, 3, "E01", "Riverside Gardens", "3", "2/301", "3", "80", "B", "13900000002", "",
                  s_resident_id (id, 2));
    s_import_row (m, 4, "E/01", "Riverside Gardens", "3", "301", "3", "80", "C", "13900000003", "",
                  s_resident_id (id, 3));
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->rejected, 3);
    const char *fields[] = { "building", "unit", "estate_id" };
    for (uint32_t line = 2; line <= 4; line++) {
        const Pm__V1__RowRejection *x = s_rejection (r, line);
        assert_non_null (x);
        assert_string_equal (x->field, fields[line - 2]);
        assert_non_null (strstr (x->reason, "must not contain '/'"));
    }
    assert_int_equal (s_count (f, INTAKE_UNITS), 0);
    s_import_free (&m);
}

static void
test_phones_normalised_for_sms (void **state)
{
    s_fixture_t *f = *state;
    pm_arena_t *a = pm_arena_new ();
    const char *why;
    static const char *const good[][2] = {
        { "１３８１２３４５６７８", "13812345678" }, { "138 1234 5678", "13812345678" },
        { "138-1234-5678", "13812345678" },        { "+86 138 1234 5678", "13812345678" },
        { "+86-13812345678", "13812345678" },       { "0086 138 1234 5678", "13812345678" },
        { "＋８６　１３８１２３４５６７８", "13812345678" }, { "(+86) 138.1234.5678", "13812345678" },
        { "+852 9123 4567", "+85291234567" },      { "+1 (415) 555-0134", "+14155550134" },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *n = intake_phone_normalise (a, good[i][0], &why);
        if (!n || strcmp (n, good[i][1]) != 0)
            fail_msg ("'%s' -> '%s', expected '%s'", good[i][0], n ? n : why, good[i][1]);
    }
    static const char *const bad[][2] = {
        { "12345678901", "after the 1 comes 3 to 9" }, { "02012345678", "landline" },
        { "010-8888 6666", "landline" },               { "88776655", "local landline" },
        { "1381234567", "mainland mobile" },           { "138x1234", "expected digits" },
        { "+0 123", "international" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (intake_phone_normalise (a, bad[i][0], &why) || !why || !strstr (why, bad[i][1]))
            fail_msg ("'%s': expected a refusal saying '%s', got '%s'", bad[i][0], bad[i][1], why ? why : "(accepted)");
    }
    pm_arena_destroy (&a);

    /* through the import: stored normalised, refused with the reason, masked by character */
    char id[19];
    s_import_t *m = s_import_new (f, "import:phones", "phones.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "80", "A", "１３８ ０００１ ２３４５", "",
                  s_resident_id (id, 1));
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "0102", "1", "80", "B", "12345678901", "",
                  s_resident_id (id, 2));
    s_import_row (m, 4, "E01", "Riverside Gardens", "1", "0103", "1", "80", "C", "１２３４５６７８９０１", "",
                  s_resident_id (id, 3));
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 1);
    assert_string_equal (s_unit_ok (f, "E01/1/0101", NULL)->owners[0]->phone, "13800012345");
    const Pm__V1__RowRejection *x = s_rejection (r, 3);
    assert_non_null (x);
    assert_string_equal (x->field, "phone");
    assert_string_equal (x->value, "123****8901");
    assert_non_null (strstr (x->reason, "cannot receive SMS"));
    x = s_rejection (r, 4);
    assert_non_null (x);
    assert_true (pm_utf8_valid_str (x->value)); /* masked by character: no half of a full-width digit */
    assert_string_equal (x->value, "１２３****８９０１");
    s_import_free (&m);
}

static void
test_same_name_co_owners_stay_two (void **state)
{
    s_fixture_t *f = *state;
    char id1[19], id2[19];
    s_resident_id (id1, 41);
    s_resident_id (id2, 42);
    s_import_t *m = s_import_new (f, "import:wang", "wang.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "80", "王伟", "13900000001", "", id1);
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "0101", "1", "80", "王伟", "13900000002", "", id2);
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 1);
    assert_int_equal (r->updated, 1);
    s_import_free (&m);
    Pm__V1__IntakeUnitGetReply *body;
    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0101", &body);
    assert_int_equal (u->n_owners, 2);
    assert_string_equal (u->owners[0]->phone, "13900000001"); /* the first 王伟 keeps his phone */
    assert_string_equal (u->owners[1]->phone, "13900000002");
    assert_string_not_equal (u->owners[0]->owner_key, u->owners[1]->owner_key);
    char masked[19];
    assert_string_equal (body->id_numbers_masked[0], s_masked_id (masked, id1));
    assert_string_equal (body->id_numbers_masked[1], s_masked_id (masked, id2));

    /* the second one's ID number again, with a new phone and a lower-case x: the same owner, updated */
    m = s_import_new (f, "import:wang2", "wang2.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "80", "王伟", "13900000009", "", id2);
    r = s_import_ok (f, m);
    assert_int_equal (r->updated, 1);
    s_import_free (&m);
    u = s_unit_ok (f, "E01/1/0101", NULL);
    assert_int_equal (u->n_owners, 2);
    assert_string_equal (u->owners[0]->phone, "13900000001");
    assert_string_equal (u->owners[1]->phone, "13900000009");
    assert_int_equal (s_estate_get (f, "E01")->intake_estate_get->owners, 2);
}

static void
test_owners_per_unit_capped (void **state)
{
    s_fixture_t *f = *state; /* the fixture sets max_owners_per_unit = 3 */
    char id[19];
    s_import_t *m = s_import_new (f, "import:cap", "cap.csv");
    for (unsigned i = 0; i < 5; i++) {
        char name[16];
        snprintf (name, sizeof name, "Owner %u", i);
        s_import_row (m, 2 + i, "E01", "Riverside Gardens", "1", "0101", "1", "80", name, "13900000001", "",
                      s_resident_id (id, 500 + i));
    }
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 1);
    assert_int_equal (r->updated, 2);
    assert_int_equal (r->rejected, 2);
    const Pm__V1__RowRejection *x = s_rejection (r, 5);
    assert_non_null (x);
    assert_non_null (strstr (x->reason, "has 3 owners already"));
    assert_non_null (strstr (x->reason, "max_owners_per_unit = 3"));
    assert_int_equal (s_unit_ok (f, "E01/1/0101", NULL)->n_owners, 3);
    assert_int_equal (s_count (f, PM_DB_OUTBOX), 3); /* the rejected rows emitted nothing */
    /* an owner already there is still updated */
    s_import_new_id (f, m);
    r = s_import_ok (f, m);
    assert_int_equal (r->unchanged, 3);
    assert_int_equal (r->rejected, 2);
    s_import_free (&m);
}

static void
test_resident_id_in_another_column_never_kept (void **state)
{
    s_fixture_t *f = *state;
    char id[19], other[19];
    s_resident_id (id, 777);
    s_resident_id (other, 778);
    pmt_log_start ();
    s_import_t *m = s_import_new (f, "import:leak", "leak.csv");
    char email[64];
    snprintf (email, sizeof email, "%s@example.com", id);
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "80", "A", "13900000001", email, other);
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "0102", "1", id, "B", "13900000002", "", other);
    s_import_row (m, 4, "E01", "Riverside Gardens", "1", "0103", "1", "80", id, "13900000003", "", other);
    char fullwidth[64] = "";
    for (const char *p = id; *p; p++) /* the same number in full-width digits */
        snprintf (fullwidth + strlen (fullwidth), sizeof fullwidth - strlen (fullwidth), "%s",
                  *p == 'X' ? "Ｘ" : (char[]) { (char) 0xef, (char) 0xbc, (char) (0x90 + *p - '0'), 0 });
    s_import_row (m, 5, "E01", "Riverside Gardens", "1", fullwidth, "1", "80", "D", "13900000004", "", other);
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    pmt_log_stop ();
    assert_int_equal (r->rejected, 4);
    const char *fields[] = { "email", "area_m2", "owner_name", "unit" };
    for (uint32_t line = 2; line <= 5; line++) {
        const Pm__V1__RowRejection *x = s_rejection (r, line);
        assert_non_null (x);
        assert_string_equal (x->field, fields[line - 2]);
        assert_non_null (strstr (x->reason, "resident ID number"));
        assert_null (strstr (x->value, id));
        assert_null (strstr (x->value, id + 4)); /* not even most of it */
    }
    static const int tables[] = { INTAKE_UNITS, INTAKE_REJECTS, INTAKE_CASES, PM_DB_OUTBOX, PM_DB_IDEM };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (s_table_contains (f, tables[i], id) || s_table_contains (f, tables[i], id + 6))
            fail_msg ("table %d holds the ID number", tables[i]);
    assert_false (pmt_log_has (id));
    assert_int_equal (s_count (f, PM_DB_OUTBOX), 0);
    s_import_free (&m);
}

static void
test_rejections_of_two_files_with_one_name_are_kept_apart (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_mixed (f, "/data/a/units.csv", true);
    s_import_ok (f, m);
    s_import_free (&m);
    m = s_import_mixed (f, "/data/b/units.csv", true);
    s_import_ok (f, m);
    s_import_free (&m);
    assert_true (pmt_queue (f->d, "import_rejections")->count == 4);
    /* b fixed: a's rejections stay */
    m = s_import_mixed (f, "/data/b/units.csv", false);
    s_import_ok (f, m);
    s_import_free (&m);
    Pm__V1__Queue *q = pmt_queue (f->d, "import_rejections");
    assert_true (q->count == 2);
    assert_non_null (pmt_queue_item (q, "/data/a/units.csv:5"));
    assert_null (pmt_queue_item (q, "/data/b/units.csv:5"));
}

static void
test_estate_name_contradiction_rejected (void **state)
{
    s_fixture_t *f = *state;
    char id[19];
    s_import_t *m = s_import_new (f, "import:names", "names.csv");
    s_import_row (m, 2, "E01", "翠湖花园", "1", "0101", "1", "80", "A", "13900000001", "", s_resident_id (id, 1));
    s_import_row (m, 3, "E01", "翠湖花园二期", "1", "0102", "1", "80", "B", "13900000002", "", s_resident_id (id, 2));
    s_import_row (m, 4, "E01", " 翠湖花园 ", "1", "0103", "1", "80", "C", "13900000003", "", s_resident_id (id, 3));
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 2);
    assert_int_equal (r->rejected, 1);
    const Pm__V1__RowRejection *x = s_rejection (r, 3);
    assert_non_null (x);
    assert_string_equal (x->field, "estate_name");
    assert_non_null (strstr (x->reason, "'翠湖花园'"));
    assert_non_null (strstr (x->reason, "'翠湖花园二期'"));
    assert_int_equal (s_unit_get (f, "E01/1/0102")->status, PM__V1__STATUS__NOT_FOUND);
    s_import_free (&m);
}

static void
test_messages_name_the_real_fault (void **state)
{
    s_fixture_t *f = *state;
    char id[19];
    s_import_t *m = s_import_new (f, "import:faults", "faults.csv");
    s_import_row (m, 2, "E01", "Riverside Gardens", "1", "0101", "1", "-80", "A", "13900000001", "",
                  s_resident_id (id, 1));
    s_import_row (m, 3, "E01", "Riverside Gardens", "1", "0102", "1", "89.505", "B", "13900000002", "",
                  s_resident_id (id, 2));
    s_import_row (m, 4, "E01", "Riverside Gardens", "1", "0103", "1", "0", "C", "13900000003", "",
                  s_resident_id (id, 3));
    s_import_row (m, 5, "E01", "Riverside Gardens", "1", "0104", "1", "８９.５", "D", "13900000004", "",
                  s_resident_id (id, 4));
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 1);
    assert_non_null (strstr (s_rejection (r, 2)->reason, "negative"));
    assert_non_null (strstr (s_rejection (r, 3)->reason, "at most two"));
    assert_non_null (strstr (s_rejection (r, 4)->reason, "zero"));
    assert_int_equal (s_unit_ok (f, "E01/1/0104", NULL)->area_cm2, 8950); /* full-width digits read as such */
    s_import_free (&m);
}

static void
test_delivery_date_and_parking_spaces (void **state)
{
    s_fixture_t *f = *state;
    s_import_t *m = s_import_new (f, "import:opt", "opt.csv");
    s_row_optional (s_import_std_row (m, 0), "2026/12/5", "2");
    s_row_optional (s_import_std_row (m, 1), "2026-02-30", "");
    s_row_optional (s_import_std_row (m, 2), "", "two");
    s_row_optional (s_import_std_row (m, 3), "", "");
    Pm__V1__IntakeImportReply *r = s_import_ok (f, m);
    assert_int_equal (r->created, 2);
    assert_int_equal (r->rejected, 2);
    const Pm__V1__RowRejection *x = s_rejection (r, 3);
    assert_string_equal (x->field, "delivery_date");
    assert_non_null (strstr (x->reason, "YYYY-MM-DD"));
    x = s_rejection (r, 4);
    assert_string_equal (x->field, "parking_spaces");
    Pm__V1__Unit *u = s_unit_ok (f, "E01/1/0101", NULL);
    assert_string_equal (u->delivery_date, "2026-12-05");
    assert_int_equal (u->parking_spaces, 2);
    u = s_unit_ok (f, "E01/1/0104", NULL);
    assert_string_equal (u->delivery_date, "");
    assert_int_equal (u->parking_spaces, 0);
    /* a changed parking count is an update */
    s_import_free (&m);
    m = s_import_new (f, "import:opt2", "opt.csv");
    s_row_optional (s_import_std_row (m, 0), "2026-12-05", "3");
    assert_int_equal (s_import_ok (f, m)->updated, 1);
    assert_int_equal (s_unit_ok (f, "E01/1/0101", NULL)->parking_spaces, 3);
    s_import_free (&m);
}

/* What a table holds, as one number per table, to see that nothing changed. */
static size_t
s_all_counts (s_fixture_t *f)
{
    size_t n = 0;
    for (int t = PM_DB_OUTBOX; t < INTAKE_NTABLES; t++)
        if (t != PM_DB_IDEM)
            n = n * 31 + s_count (f, t);
    return n;
}

static void
test_dry_run_reports_what_the_import_would_do (void **state)
{
    s_fixture_t *f = *state;
    char id[19];
    s_import_t *m = s_import_mixed (f, "dry.csv", false);
    s_import_ok (f, m);
    s_import_free (&m);
    size_t before = s_all_counts (f);
    uint64_t seq = pm_daemon_last_seq (f->d);

    /* chunk 1: an unchanged unit, a changed one, a new one, a bad one */
    s_import_t *c1 = s_import_new (f, "import:dry", "dry.csv");
    c1->body.dry_run = true;
    s_import_std_row (c1, 0);
    Pm__V1__ImportRow *row = s_import_std_row (c1, 1);
    snprintf (((s_row_t *) row)->text[7], 96, "13999990000");
    s_import_row (c1, 10, "E01", "Riverside Gardens", "5", "0501", "5", "99", "New", "13900000005", "",
                  s_resident_id (id, 9001));
    s_import_row (c1, 11, "E01", "Riverside Gardens", "5", "0502", "5", "abc", "Bad", "13900000006", "",
                  s_resident_id (id, 9002));
    static char *carry[] = { "E01/5/0501" };
    c1->body.dry_carry = carry;
    c1->body.n_dry_carry = 1;
    Pm__V1__IntakeImportReply *r = s_import_ok (f, c1);
    assert_int_equal (r->unchanged, 1);
    assert_int_equal (r->updated, 1);
    assert_int_equal (r->created, 1);
    assert_int_equal (r->rejected, 1);
    assert_int_equal (r->n_dry_units, 1);
    assert_string_equal (r->dry_units[0]->unit_id, "E01/5/0501");
    assert_int_equal (r->n_dry_estates, 1);
    /* the reply lives until the next apply: keep a copy of what it carries, as pmctl does */
    size_t clen = pm__v1__unit__get_packed_size (r->dry_units[0]);
    uint8_t *cbuf = malloc (clen + 1);
    pm__v1__unit__pack (r->dry_units[0], cbuf);
    Pm__V1__Unit *carriedp = pm__v1__unit__unpack (NULL, clen, cbuf);
    free (cbuf);
    assert_non_null (carriedp);
    assert_int_equal (s_all_counts (f), before); /* nothing written ... */
    assert_true (pm_daemon_last_seq (f->d) == seq); /* ... nothing emitted */
    assert_int_equal (s_unit_get (f, "E01/5/0501")->status, PM__V1__STATUS__NOT_FOUND);
    assert_true (pmt_queue (f->d, "import_rejections")->count == 0);

    /* chunk 2: a co-owner of the unit chunk 1 would create: "updated", as the real import says */
    s_import_t *c2 = s_import_new (f, "import:dry", "dry.csv");
    c2->body.dry_run = true;
    s_import_row (c2, 12, "E01", "Riverside Gardens", "5", "0501", "5", "99", "Co", "13900000007", "",
                  s_resident_id (id, 9003));
    c2->body.dry_units = &carriedp;
    c2->body.n_dry_units = 1;
    r = s_import_ok (f, c2);
    assert_int_equal (r->updated, 1);
    assert_int_equal (r->created, 0);
    c2->body.dry_units = NULL;
    c2->body.n_dry_units = 0;
    pm__v1__unit__free_unpacked (carriedp, NULL);
    assert_int_equal (s_all_counts (f), before);

    /* the real import of the same rows says the same */
    c1->body.dry_run = false;
    c1->body.dry_carry = NULL;
    c1->body.n_dry_carry = 0;
    s_import_new_id (f, c1);
    r = s_import_ok (f, c1);
    assert_int_equal (r->unchanged, 1);
    assert_int_equal (r->updated, 1);
    assert_int_equal (r->created, 1);
    assert_int_equal (r->rejected, 1);
    c2->body.dry_run = false;
    s_import_new_id (f, c2);
    assert_int_equal (s_import_ok (f, c2)->updated, 1);
    s_import_free (&c1);
    s_import_free (&c2);
}

int
main (void)
{
    pm_log_init ("test_intake", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_valid_rows_create_units, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_each_new_unit_emits_one_event, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_wrong_key_file_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sealing_key_rotation, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_id_number_sealed_and_shown_masked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reimport_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retried_request_id_gets_stored_reply, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_same_new_id_twice_in_one_batch_applies_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_rows_rejected_with_line_and_column, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rejections_queue_until_fixed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_changed_phone_updates_owner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_second_owner_row_adds_co_owner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_invalid_resident_id_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_non_utf8_row_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_mutated_rows_never_crash, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_estate_get_counts_and_unknown, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_empty_batch_id_is_invalid, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_state_survives_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_big_batch_grows_the_map_and_commits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unit_ids_never_collide, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_slash_inside_a_part_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_phones_normalised_for_sms, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_same_name_co_owners_stay_two, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_owners_per_unit_capped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_resident_id_in_another_column_never_kept, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rejections_of_two_files_with_one_name_are_kept_apart, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_estate_name_contradiction_rejected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_messages_name_the_real_fault, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_delivery_date_and_parking_spaces, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dry_run_reports_what_the_import_would_do, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
