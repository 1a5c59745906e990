/* templates.c - checklists (验房登记表): the lines a full round records.
 *
 * The default comes from a CSV file, [inspection] checklist, or when that is
 * empty from the copy of deploy/inspection/checklist.csv built into the
 * binary. Its header names the columns (room, category and an optional check:
 * what to look for; 房间, 类别, 检查要点 work too); each row is one line of
 * the checklist. An estate may have its own (inspection.template.set, as
 * items or as CSV text in the same format); a round copies the checklist when
 * it starts, so changing it never changes a round in progress.
 *
 * Categories are the nine of the industry's 验房 forms, so defects can be
 * counted and compared across estates; rooms are free text (主卧, 书房, ...). */
#define _GNU_SOURCE
#include "inspection.h"
#include "pm/csv.h"
#include "pm/log.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const inspection_categories[] = {
    "墙面/天花", "地面", "门窗", "给排水", "电气", "燃气", "固定设施", "消防", "其他",
};
const size_t inspection_ncategories = sizeof inspection_categories / sizeof inspection_categories[0];

/* deploy/inspection/checklist.csv, built in (embed.cmake). */
extern const char inspection_builtin_checklist[];
extern const size_t inspection_builtin_checklist_len;

#define S_NAME_MAX 64     /* bytes of a room or category name */
#define S_CHECK_MAX 512   /* bytes of a line's check text */
#define S_ITEMS_MAX 500   /* lines of one checklist */
#define S_ERRORS_MAX 8    /* errors reported at once */

/* --- validation, shared by files and requests --------------------------------- */

/* Errors collected while reading a checklist (malloc'd text). */
typedef struct {
    char *text;
    int n;
} s_errors_t;

static void s_error (s_errors_t *e, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_error (s_errors_t *e, const char *fmt, ...)
{
    if (++e->n > S_ERRORS_MAX)
        return;
    va_list ap;
    va_start (ap, fmt);
    char *msg = NULL;
    if (vasprintf (&msg, fmt, ap) < 0)
        pm_oom ("checklist error", 0);
    va_end (ap);
    char *t = pm_xasprintf ("%s%s%s", e->text ? e->text : "", e->text ? "; " : "", msg);
    free (msg);
    free (e->text);
    e->text = t;
}

static bool
s_category_known (const char *c)
{
    for (size_t i = 0; i < inspection_ncategories; i++)
        if (strcmp (inspection_categories[i], c) == 0)
            return true;
    return false;
}

static const char *
s_category_list (void)
{
    return "墙面/天花, 地面, 门窗, 给排水, 电气, 燃气, 固定设施, 消防, 其他";
}

/* Checks one line; where says where it is ("checklist.csv:12", "items[3]"). */
static void
s_check_item (s_errors_t *e, const char *where, const Pm__V1__ChecklistItem *it)
{
    if (!pm_utf8_valid_str (it->room) || !pm_utf8_valid_str (it->category) || !pm_utf8_valid_str (it->check)) {
        s_error (e, "%s: not UTF-8 text (save the file as UTF-8)", where);
        return;
    }
    if (!*it->room)
        s_error (e, "%s: room is empty; expected a room such as 客厅", where);
    else if (strlen (it->room) > S_NAME_MAX)
        s_error (e, "%s: room '%.20s...' is longer than %d bytes", where, it->room, S_NAME_MAX);
    if (!*it->category)
        s_error (e, "%s: category is empty; expected one of %s", where, s_category_list ());
    else if (!s_category_known (it->category))
        s_error (e, "%s: category '%s' is not one of %s", where, it->category, s_category_list ());
    if (strlen (it->check) > S_CHECK_MAX)
        s_error (e, "%s: check text is longer than %d bytes", where, S_CHECK_MAX);
}

/* --- CSV ------------------------------------------------------------------------ */

static char *
s_trimmed_dup (const char *s)
{
    const char *start;
    size_t len;
    pm_trim_span (s, &start, &len);
    return pm_xstrndup (start, len);
}

static int
s_column (pm_csv_record_t *rec, const char *a, const char *b)
{
    for (size_t i = 0; i < rec->nfields; i++) {
        char *h = s_trimmed_dup (rec->fields[i]);
        bool hit = strcasecmp (h, a) == 0 || strcmp (h, b) == 0;
        free (h);
        if (hit)
            return (int) i;
    }
    return -1;
}

static void
s_item_free (Pm__V1__ChecklistItem *it)
{
    if (!it)
        return;
    free (it->room);
    free (it->category);
    free (it->check);
    free (it);
}

void
inspection_checklist_free (inspection_checklist_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        s_item_free (c->items[i]);
    free (c->items);
    free (c->source);
    memset (c, 0, sizeof *c);
}

int
inspection_checklist_parse (FILE *f, const char *name, inspection_checklist_t *out, char **err)
{
    memset (out, 0, sizeof *out);
    s_errors_t e = { NULL, 0 };
    pm_csv_t *csv = pm_csv_new (f, 0);
    pm_csv_record_t *rec;
    int col_room = -1, col_cat = -1, col_check = -1;
    bool header = false;
    uint32_t *lines = NULL;
    size_t cap = 0;
    while ((rec = pm_csv_next (csv)) != NULL) {
        if (rec->error != PM_CSV_OK) {
            s_error (&e, "%s:%u: %s", name, rec->first_line, rec->why);
            continue;
        }
        if (!header) {
            header = true;
            col_room = s_column (rec, "room", "房间");
            col_cat = s_column (rec, "category", "类别");
            col_check = s_column (rec, "check", "检查要点");
            if (col_room < 0 || col_cat < 0) {
                s_error (&e, "%s:%u: the header names no %s column; expected a first line such as "
                         "'room,category,check'", name, rec->first_line, col_room < 0 ? "room" : "category");
                break;
            }
            continue;
        }
        char where[300];
        snprintf (where, sizeof where, "%s:%u", name, rec->first_line);
        size_t need = (size_t) (col_room > col_cat ? col_room : col_cat) + 1;
        if (rec->nfields < need) {
            s_error (&e, "%s: %zu field(s); expected room and category", where, rec->nfields);
            continue;
        }
        bool nul = false;
        for (size_t i = 0; i < rec->nfields; i++)
            nul |= strlen (rec->fields[i]) != rec->lens[i];
        if (nul) {
            s_error (&e, "%s: a NUL byte inside a field", where);
            continue;
        }
        Pm__V1__ChecklistItem *it = pm_xcalloc (1, sizeof *it);
        pm__v1__checklist_item__init (it);
        it->room = s_trimmed_dup (rec->fields[col_room]);
        it->category = s_trimmed_dup (rec->fields[col_cat]);
        it->check = s_trimmed_dup (col_check >= 0 && (size_t) col_check < rec->nfields ? rec->fields[col_check] : "");
        int before = e.n;
        s_check_item (&e, where, it);
        for (size_t i = 0; e.n == before && i < out->n; i++)
            if (strcmp (out->items[i]->room, it->room) == 0 && strcmp (out->items[i]->category, it->category) == 0)
                s_error (&e, "%s: %s / %s is already on line %u", where, it->room, it->category, lines[i]);
        if (e.n != before) {
            s_item_free (it);
            continue;
        }
        if (out->n == S_ITEMS_MAX) {
            s_error (&e, "%s: more than %d lines; a checklist holds at most %d", where, S_ITEMS_MAX, S_ITEMS_MAX);
            s_item_free (it);
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 32;
            out->items = pm_xrealloc (out->items, cap * sizeof *out->items);
            lines = pm_xrealloc (lines, cap * sizeof *lines);
        }
        lines[out->n] = rec->first_line;
        out->items[out->n++] = it;
    }
    if (pm_csv_errno (csv))
        s_error (&e, "%s: read error: %s", name, strerror (pm_csv_errno (csv)));
    pm_csv_destroy (&csv);
    free (lines);
    if (!e.n && !header)
        s_error (&e, "%s: empty; expected a header 'room,category,check' and one line per room and category", name);
    else if (!e.n && out->n == 0)
        s_error (&e, "%s: a header but no lines; add one line per room and category", name);
    if (e.n) {
        if (e.n > S_ERRORS_MAX) {
            char *t = pm_xasprintf ("%s; and %d more", e.text, e.n - S_ERRORS_MAX);
            free (e.text);
            e.text = t;
        }
        *err = e.text;
        inspection_checklist_free (out);
        return PM_EINVAL;
    }
    out->source = pm_xstrdup (name);
    return PM_OK;
}

/* Parses text[0..len) as checklist CSV named name. */
static int
s_parse_text (const char *text, size_t len, const char *name, inspection_checklist_t *out, char **err)
{
    if (len == 0) {
        *err = pm_xasprintf ("%s: empty; expected a header 'room,category,check' and one line per room and category",
                             name);
        return PM_EINVAL;
    }
    FILE *f = fmemopen ((void *) text, len, "r");
    if (!f) {
        *err = pm_xasprintf ("%s: cannot read: %s", name, strerror (errno));
        return PM_EINVAL;
    }
    int rc = inspection_checklist_parse (f, name, out, err);
    fclose (f);
    return rc;
}

/* --- the app context ---------------------------------------------------------- */

static bool
s_duration (const pm_config_t *cfg, const char *key, const char *def, int64_t *ms)
{
    const char *v = pm_config_get (cfg, "inspection", key, def);
    if (pm_duration_parse (v, ms) != PM_OK || *ms <= 0) {
        char *why = pm_config_error (cfg, "inspection", key, "expected a positive duration such as 3d, 36h or 90m");
        pm_error ("%s", why);
        free (why);
        return false;
    }
    return true;
}

void *
inspection_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    inspection_t *in = pm_xcalloc (1, sizeof *in);
    if (!s_duration (cfg, "deadline_minor", "7d", &in->deadline_ms[PM__V1__SEVERITY__MINOR])
        || !s_duration (cfg, "deadline_major", "3d", &in->deadline_ms[PM__V1__SEVERITY__MAJOR])
        || !s_duration (cfg, "deadline_critical", "1d", &in->deadline_ms[PM__V1__SEVERITY__CRITICAL])
        || !s_duration (cfg, "uninspected_after", "3d", &in->uninspected_ms))
        goto fail;
    const char *path = pm_config_get (cfg, "inspection", "checklist", "");
    char *err = NULL;
    int rc;
    if (!*path) {
        rc = s_parse_text (inspection_builtin_checklist, inspection_builtin_checklist_len,
                           "deploy/inspection/checklist.csv (built in)", &in->checklist, &err);
    } else {
        FILE *f = fopen (path, "rb");
        if (!f) {
            char *why = pm_xasprintf ("cannot open %s: %s", path, strerror (errno));
            char *msg = pm_config_error (cfg, "inspection", "checklist", why);
            pm_error ("%s", msg);
            free (msg);
            free (why);
            goto fail;
        }
        rc = inspection_checklist_parse (f, path, &in->checklist, &err);
        fclose (f);
    }
    if (rc != PM_OK) {
        pm_error ("checklist: %s", err);
        free (err);
        goto fail;
    }
    pm_info ("checklist %s: %zu lines", in->checklist.source, in->checklist.n);
    return in;
fail:
    inspection_app_destroy (in);
    return NULL;
}

void
inspection_app_destroy (void *app)
{
    inspection_t *in = app;
    if (!in)
        return;
    inspection_checklist_free (&in->checklist);
    free (in);
}

/* --- lookups ------------------------------------------------------------------ */

void
inspection_checklist_of (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate_id, inspection_checklist_t *out)
{
    const inspection_t *in = ctx->app;
    Pm__Inspection__TemplateRecord *t;
    pm_key_t k;
    if (*estate_id
        && pm_txn_get_msg (txn, INSP_TEMPLATES, pm_key (&k, "s", estate_id), &pm__inspection__template_record__descriptor,
                           &t)
               == PM_OK
        && t->n_items) {
        out->items = t->items;
        out->n = t->n_items;
        out->source = t->source;
        return;
    }
    *out = in->checklist;
}

const Pm__V1__ChecklistItem *
inspection_checklist_find (const inspection_checklist_t *c, const char *room, const char *category)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp (c->items[i]->room, room) == 0 && strcmp (c->items[i]->category, category) == 0)
            return c->items[i];
    return NULL;
}

char *
inspection_checklist_rooms (pm_ctx_t *ctx, const inspection_checklist_t *c)
{
    char *s = pm_arena_strdup (ctx->arena, "");
    for (size_t i = 0; i < c->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp (c->items[j]->room, c->items[i]->room) == 0;
        if (!seen)
            s = pm_arena_printf (ctx->arena, "%s%s%s", s, *s ? ", " : "", c->items[i]->room);
    }
    return s;
}

char *
inspection_checklist_categories (pm_ctx_t *ctx, const inspection_checklist_t *c, const char *room)
{
    char *s = pm_arena_strdup (ctx->arena, "");
    for (size_t i = 0; i < c->n; i++)
        if (strcmp (c->items[i]->room, room) == 0)
            s = pm_arena_printf (ctx->arena, "%s%s%s", s, *s ? ", " : "", c->items[i]->category);
    return s;
}

/* --- inspection.template.set / .get -------------------------------------------- */

int
inspection_on_template_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionTemplateSetRequest *q = req->inspection_template_set;
    if (!q || !*q->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "estate_id: empty; expected the estate whose checklist this is, e.g. {\"estate_id\":\"E01\", "
                         "\"csv\":\"room,category\\n客厅,地面\\n\"}");
    if (strchr (q->estate_id, '/') || strlen (q->estate_id) > 64)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: '%s' is not an estate id (no '/', e.g. E01)",
                         q->estate_id);
    if (q->n_items && *q->csv)
        return pm_reply (out, PM__V1__STATUS__INVALID,
                         "items and csv both given; send the checklist one way: items, or csv text");
    inspection_checklist_t c = { 0 };
    char *err = NULL;
    int status = PM__V1__STATUS__OK;
    if (*q->csv) {
        const char *name = *q->file_name && pm_utf8_valid_str (q->file_name) && strlen (q->file_name) < 256
                               ? q->file_name
                               : "csv";
        if (s_parse_text (q->csv, strlen (q->csv), name, &c, &err) != PM_OK) {
            status = pm_reply (out, PM__V1__STATUS__INVALID, "checklist for %s refused, nothing changed: %s",
                               q->estate_id, err);
            free (err);
            return status;
        }
    } else {
        if (!q->n_items)
            return pm_reply (out, PM__V1__STATUS__INVALID,
                             "items: empty and no csv; give the checklist's lines, e.g. "
                             "{\"estate_id\":\"E01\",\"items\":[{\"room\":\"客厅\",\"category\":\"地面\"}]}");
        if (q->n_items > S_ITEMS_MAX)
            return pm_reply (out, PM__V1__STATUS__INVALID, "items: %zu lines; a checklist holds at most %d",
                             q->n_items, S_ITEMS_MAX);
        s_errors_t e = { NULL, 0 };
        for (size_t i = 0; i < q->n_items; i++) {
            char where[32];
            snprintf (where, sizeof where, "items[%zu]", i);
            int before = e.n;
            s_check_item (&e, where, q->items[i]);
            for (size_t j = 0; e.n == before && j < i; j++)
                if (strcmp (q->items[j]->room, q->items[i]->room) == 0
                    && strcmp (q->items[j]->category, q->items[i]->category) == 0)
                    s_error (&e, "%s: %s / %s is already items[%zu]", where, q->items[i]->room,
                             q->items[i]->category, j);
        }
        if (e.n) {
            status = pm_reply (out, PM__V1__STATUS__INVALID, "checklist for %s refused, nothing changed: %s%s",
                               q->estate_id, e.text, e.n > S_ERRORS_MAX ? "; and more" : "");
            free (e.text);
            return status;
        }
    }
    Pm__Inspection__TemplateRecord rec = PM__INSPECTION__TEMPLATE_RECORD__INIT;
    rec.estate_id = q->estate_id;
    rec.items = *q->csv ? c.items : q->items;
    rec.n_items = *q->csv ? c.n : q->n_items;
    rec.source = pm_arena_printf (ctx->arena, "set by %s at %s", req->actor && *req->actor ? req->actor : "?",
                                  inspection_time (ctx, ctx->now_ms));
    pm_key_t k;
    pm_txn_put_msg (txn, INSP_TEMPLATES, pm_key (&k, "s", q->estate_id), &rec.base);
    inspection_checklist_t now = { rec.items, rec.n_items, NULL };
    uint32_t rooms = 0;
    for (size_t i = 0; i < now.n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp (now.items[j]->room, now.items[i]->room) == 0;
        rooms += !seen;
    }
    Pm__V1__InspectionTemplateSetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_template_set_reply__init (r);
    r->estate_id = q->estate_id;
    r->items = (uint32_t) now.n;
    r->rooms = rooms;
    pm_reply_body (out, &r->base);
    status = pm_reply (out, PM__V1__STATUS__OK, "checklist of %s: %u lines in %u rooms (%s); rounds already "
                       "started keep the checklist they started with",
                       q->estate_id, r->items, rooms, inspection_checklist_rooms (ctx, &now));
    inspection_checklist_free (&c);
    return status;
}

int
inspection_on_template_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__InspectionTemplateGetRequest *q = req->inspection_template_get;
    const char *estate = q ? q->estate_id : "";
    inspection_checklist_t c;
    inspection_checklist_of (ctx, txn, estate, &c);
    Pm__V1__InspectionTemplateGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__inspection_template_get_reply__init (r);
    r->estate_id = (char *) estate;
    r->items = c.items;
    r->n_items = c.n;
    r->source = c.source;
    pm_reply_body (out, &r->base);
    return pm_reply (out, PM__V1__STATUS__OK, "checklist of %s: %zu lines (%s); rooms: %s", *estate ? estate : "(default)",
                     c.n, c.source, inspection_checklist_rooms (ctx, &c));
}
