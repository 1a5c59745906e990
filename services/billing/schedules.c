/* schedules.c - fee schedules (收费标准): one version per estate and effective
 * date, from the schedule file ([billing] schedule) and billing.schedule.set.
 *
 * An invoice takes the version in force when it is issued (move-in: the
 * check-in; monthly: the first day of its period) and keeps its amounts for
 * good: a later version never changes an issued invoice.
 *
 * The file is read at start, into the store. A version from the file
 * replaces the one the file gave before (and one the file no longer has is
 * removed), but never a version set by billing.schedule.set: the operator's
 * command wins, and the start says so. Format (INI-like, one section per
 * version; errors name the file and the line):
 *
 *   [E01 2026-01-01]
 *   property_fee = 2.80              ; 物业费 元/m2/月
 *   property_fee.commercial = 4.50   ; by unit type
 *   maintenance_fund = 60.00         ; 维修基金 元/m2, once
 *   parking = 150.00                 ; 停车费 元/space/月
 *   prepaid_months = 12
 *   item = 垃圾清运费, 300.00
 *   deposit = 装修押金, 2000.00 */
#define _GNU_SOURCE
#include "billing.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"
#include "pm/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ITEMS 32
#define S_MAX_TYPES 16
#define S_MAX_PREPAID 60

/* --- checking a version ------------------------------------------------------- */

#define S_REFUSE(f, v, w) \
    do { \
        *field = (f); \
        *value = (v); \
        *why = (w); \
        return false; \
    } while (0)

static bool
s_estate_ok (const char *e)
{
    size_t n = strlen (e);
    if (n == 0 || n > 32)
        return false;
    for (const char *p = e; *p; p++)
        if (*p == '/' || isspace ((unsigned char) *p) || !isprint ((unsigned char) *p))
            return false;
    return true;
}

bool
billing_schedule_check (pm_ctx_t *ctx, const Pm__V1__BillingScheduleSetRequest *q, Pm__V1__FeeSchedule *out,
                        const char **field, const char **value, const char **why)
{
    const billing_t *b = ctx->app;
    const char *w;
    pm__v1__fee_schedule__init (out);
    if (!*q->estate_id)
        S_REFUSE ("estate_id", "", "missing: the estate the fees apply to, e.g. E01");
    if (!s_estate_ok (q->estate_id))
        S_REFUSE ("estate_id", q->estate_id, "not an estate id: 1-32 printable characters without '/' or blanks, e.g. E01");
    int y, m, d;
    if (!billing_date_parse (q->effective_date, &y, &m, &d))
        S_REFUSE ("effective_date", q->effective_date,
                  *q->effective_date ? "not a date: expected YYYY-MM-DD, e.g. 2026-01-01"
                                     : "missing: the date the version applies from, e.g. 2026-01-01");
    out->estate_id = q->estate_id;
    out->effective_date = pm_arena_printf (ctx->arena, "%04d-%02d-%02d", y, m, d);
    out->effective_ms = billing_local_ms (b, y, m, d);
    if (!*q->property_fee)
        S_REFUSE ("property_fee", "", "missing: 物业费 in 元 per m2 per month, e.g. 2.80 (every schedule needs "
                                      "property_fee, maintenance_fund and parking; write 0 for a fee not charged)");
    if (!billing_yuan_parse (q->property_fee, true, &out->property_fee_fen, &w))
        S_REFUSE ("property_fee", q->property_fee, w);
    if (!*q->maintenance_fund)
        S_REFUSE ("maintenance_fund", "", "missing: 维修基金 in 元 per m2, e.g. 60.00 (write 0 when the estate "
                                          "collects none)");
    if (!billing_yuan_parse (q->maintenance_fund, true, &out->maintenance_fund_fen, &w))
        S_REFUSE ("maintenance_fund", q->maintenance_fund, w);
    if (!*q->parking)
        S_REFUSE ("parking", "", "missing: 停车费 in 元 per space per month, e.g. 150.00 (write 0 when parking is free)");
    if (!billing_yuan_parse (q->parking, true, &out->parking_fen, &w))
        S_REFUSE ("parking", q->parking, w);
    if (q->prepaid_months > S_MAX_PREPAID)
        S_REFUSE ("prepaid_months", pm_arena_printf (ctx->arena, "%u", q->prepaid_months),
                  "more than 60 months prepaid at move-in");
    out->prepaid_months = q->prepaid_months;
    if (q->n_property_fee_by_type > S_MAX_TYPES)
        S_REFUSE ("property_fee_by_type", "", "more than 16 unit types");
    out->property_fee_by_type = pm_arena_alloc (ctx->arena, (q->n_property_fee_by_type + 1) * sizeof (void *));
    for (size_t i = 0; i < q->n_property_fee_by_type; i++) {
        const Pm__V1__FeeTypeRate *t = q->property_fee_by_type[i];
        if (!*t->unit_type || !pm_utf8_valid_str (t->unit_type) || strlen (t->unit_type) > 32)
            S_REFUSE ("property_fee_by_type.unit_type", t->unit_type, "missing or not a unit type (up to 32 characters)");
        for (size_t j = 0; j < i; j++)
            if (strcmp (q->property_fee_by_type[j]->unit_type, t->unit_type) == 0)
                S_REFUSE ("property_fee_by_type.unit_type", t->unit_type, "given twice");
        Pm__V1__FeeTypeRate *r = pm_arena_alloc (ctx->arena, sizeof *r);
        pm__v1__fee_type_rate__init (r);
        r->unit_type = t->unit_type;
        r->property_fee = t->property_fee;
        if (!*t->property_fee)
            S_REFUSE ("property_fee_by_type.property_fee", "", "missing: the rate for this unit type, e.g. 4.50");
        if (!billing_yuan_parse (t->property_fee, true, &r->property_fee_fen, &w))
            S_REFUSE ("property_fee_by_type.property_fee", t->property_fee, w);
        out->property_fee_by_type[out->n_property_fee_by_type++] = r;
    }
    if (q->n_items > S_MAX_ITEMS)
        S_REFUSE ("items", "", "more than 32 one-off items");
    out->items = pm_arena_alloc (ctx->arena, (q->n_items + 1) * sizeof (void *));
    for (size_t i = 0; i < q->n_items; i++) {
        const Pm__V1__FeeItem *it = q->items[i];
        if (!*it->name || !pm_utf8_valid_str (it->name) || strlen (it->name) > 64)
            S_REFUSE ("items.name", it->name, "missing or not a name (UTF-8, up to 64 bytes), e.g. 垃圾清运费");
        for (size_t j = 0; j < i; j++)
            if (strcmp (q->items[j]->name, it->name) == 0)
                S_REFUSE ("items.name", it->name, "given twice");
        Pm__V1__FeeItem *x = pm_arena_alloc (ctx->arena, sizeof *x);
        pm__v1__fee_item__init (x);
        x->name = it->name;
        x->amount = it->amount;
        x->deposit = it->deposit;
        if (*it->amount) {
            if (!billing_yuan_parse (it->amount, false, &x->amount_fen, &w))
                S_REFUSE ("items.amount", it->amount, w);
        }
        else if (it->amount_fen > 0)
            x->amount_fen = it->amount_fen;
        else
            S_REFUSE ("items.amount", "", "missing: the item's amount in 元, e.g. 300.00");
        out->items[out->n_items++] = x;
    }
    return true;
}

int64_t
billing_property_rate (const Pm__V1__FeeSchedule *s, const char *unit_type)
{
    for (size_t i = 0; unit_type && *unit_type && i < s->n_property_fee_by_type; i++)
        if (strcmp (s->property_fee_by_type[i]->unit_type, unit_type) == 0)
            return s->property_fee_by_type[i]->property_fee_fen;
    return s->property_fee_fen;
}

int
billing_schedule_at (pm_ctx_t *ctx, pm_txn_t *txn, const char *estate, int64_t at_ms, Pm__V1__FeeSchedule **out)
{
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix_rev (&s, txn, BILLING_SCHEDULES, pm_key (&k, "s", estate)); s.ok; pm_scan_next (&s)) {
        int64_t eff;
        if (pm_key_parse (s.key.mv_data, s.key.mv_size, "st", NULL, &eff) != PM_OK || eff > at_ms)
            continue;
        if (pm_scan_msg (&s, &pm__v1__fee_schedule__descriptor, out) == PM_OK) {
            pm_scan_end (&s);
            return PM_OK;
        }
    }
    pm_scan_end (&s);
    return PM_ENOTFOUND;
}

static uint32_t
s_versions (pm_txn_t *txn, const char *estate)
{
    pm_key_t k;
    pm_scan_t s;
    uint32_t n = 0;
    for (pm_scan_prefix (&s, txn, BILLING_SCHEDULES, pm_key (&k, "s", estate)); s.ok; pm_scan_next (&s))
        n++;
    pm_scan_end (&s);
    return n;
}

/* --- the commands -------------------------------------------------------------- */

int
billing_on_schedule_set (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingScheduleSetRequest *q = req->billing_schedule_set;
    Pm__V1__FeeSchedule *s = pm_arena_alloc (ctx->arena, sizeof *s);
    const char *field, *value, *why;
    if (!billing_schedule_check (ctx, q, s, &field, &value, &why))
        return pm_reply (out, PM__V1__STATUS__INVALID, "%s: '%s' %s; nothing was changed", field, value, why);
    s->source = pm_arena_printf (ctx->arena, "request %s by %s", req->id, *req->actor ? req->actor : "?");
    s->set_ms = ctx->now_ms;
    pm_key_t k;
    pm_txn_put_msg (txn, BILLING_SCHEDULES, pm_key (&k, "st", s->estate_id, s->effective_ms), &s->base);
    Pm__V1__BillingScheduleSetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_schedule_set_reply__init (r);
    r->schedule = s;
    r->versions = s_versions (txn, s->estate_id);
    r->invoices_issued = billing_issue_waiting (ctx, txn, out, s->estate_id);
    pm_reply_body (out, &r->base);
    char rate[32];
    return pm_reply (out, PM__V1__STATUS__OK, "%s from %s: 物业费 %s 元/m2/月, %u months prepaid; %u version(s)%s",
                     s->estate_id, s->effective_date, billing_yuan_fmt (s->property_fee_fen, rate, sizeof rate),
                     s->prepaid_months, r->versions,
                     r->invoices_issued ? pm_arena_printf (ctx->arena, "; %u waiting move-in invoice(s) issued",
                                                           r->invoices_issued)
                                        : "");
}

int
billing_on_schedule_get (pm_ctx_t *ctx, pm_txn_t *txn, const Pm__V1__Request *req, pm_out_t *out)
{
    const Pm__V1__BillingScheduleGetRequest *q = req->billing_schedule_get;
    const billing_t *b = ctx->app;
    if (!*q->estate_id)
        return pm_reply (out, PM__V1__STATUS__INVALID, "estate_id: empty; expected an estate id such as E01");
    int64_t at = ctx->now_ms;
    int y, m, d;
    if (*q->date) {
        if (!billing_date_parse (q->date, &y, &m, &d))
            return pm_reply (out, PM__V1__STATUS__INVALID, "date: '%s' is not a date; expected YYYY-MM-DD", q->date);
        at = billing_local_ms (b, y, m, d);
    }
    Pm__V1__BillingScheduleGetReply *r = pm_arena_alloc (ctx->arena, sizeof *r);
    pm__v1__billing_schedule_get_reply__init (r);
    uint32_t n = s_versions (txn, q->estate_id);
    if (n == 0)
        return pm_reply (out, PM__V1__STATUS__NOT_FOUND,
                         "estate_id: no fee schedule for '%s'; set one with billing.schedule.set or in the schedule file",
                         q->estate_id);
    r->versions = pm_arena_alloc (ctx->arena, n * sizeof (void *));
    pm_key_t k;
    pm_scan_t s;
    for (pm_scan_prefix (&s, txn, BILLING_SCHEDULES, pm_key (&k, "s", q->estate_id)); s.ok && r->n_versions < n;
         pm_scan_next (&s)) {
        Pm__V1__FeeSchedule *v;
        if (pm_scan_msg (&s, &pm__v1__fee_schedule__descriptor, &v) == PM_OK)
            r->versions[r->n_versions++] = v;
    }
    pm_scan_end (&s);
    billing_schedule_at (ctx, txn, q->estate_id, at, &r->effective);
    pm_reply_body (out, &r->base);
    if (!r->effective)
        return pm_reply (out, PM__V1__STATUS__OK, "%s: %u version(s); none in force on %s (the first applies from %s)",
                         q->estate_id, n, billing_date_of (ctx->arena, b, at),
                         r->n_versions ? r->versions[0]->effective_date : "?");
    return pm_reply (out, PM__V1__STATUS__OK, "%s: %u version(s); in force on %s: the one from %s", q->estate_id, n,
                     billing_date_of (ctx->arena, b, at), r->effective->effective_date);
}

/* --- the schedule file ------------------------------------------------------------- */

/* One version being read: the request it becomes, and where it was. */
typedef struct {
    Pm__V1__BillingScheduleSetRequest q;
    unsigned line;
    bool seen_prepaid;
    char *seen[4]; /* keys given once: property_fee, maintenance_fund, parking, prepaid_months */
} s_version_t;

typedef struct {
    pm_arena_t *a;
    const char *path;
    s_version_t *v;
    size_t n, cap;
    char *err;
} s_file_t;

static char *
s_trimmed (pm_arena_t *a, const char *s, size_t n)
{
    while (n && isspace ((unsigned char) *s)) {
        s++;
        n--;
    }
    while (n && isspace ((unsigned char) s[n - 1]))
        n--;
    char *t = pm_arena_alloc (a, n + 1);
    memcpy (t, s, n);
    return t;
}

static void
s_fail (s_file_t *f, unsigned line, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fail (s_file_t *f, unsigned line, const char *fmt, ...)
{
    if (f->err)
        return;
    va_list ap;
    va_start (ap, fmt);
    char *msg = pm_arena_vprintf (f->a, fmt, ap);
    va_end (ap);
    f->err = pm_arena_printf (f->a, "%s:%u: %s", f->path, line, msg);
}

static void
s_add_item (s_file_t *f, s_version_t *v, unsigned line, const char *key, const char *value, bool deposit)
{
    const char *comma = strchr (value, ',');
    if (!comma) {
        s_fail (f, line, "%s = '%s': expected NAME, AMOUNT (e.g. %s)", key, value,
                deposit ? "装修押金, 2000.00" : "垃圾清运费, 300.00");
        return;
    }
    char *name = s_trimmed (f->a, value, (size_t) (comma - value));
    char *amount = s_trimmed (f->a, comma + 1, strlen (comma + 1));
    int64_t fen;
    const char *why;
    if (!*name) {
        s_fail (f, line, "%s = '%s': the item has no name", key, value);
        return;
    }
    if (!billing_yuan_parse (amount, false, &fen, &why)) {
        s_fail (f, line, "%s %s: '%s' %s", key, name, amount, why);
        return;
    }
    Pm__V1__FeeItem *it = pm_arena_alloc (f->a, sizeof *it);
    pm__v1__fee_item__init (it);
    it->name = name;
    it->amount = amount;
    it->deposit = deposit;
    if (v->q.n_items == S_MAX_ITEMS) {
        s_fail (f, line, "more than %d items in one schedule", S_MAX_ITEMS);
        return;
    }
    if (!v->q.items)
        v->q.items = pm_arena_alloc (f->a, S_MAX_ITEMS * sizeof (void *));
    for (size_t i = 0; i < v->q.n_items; i++)
        if (strcmp (v->q.items[i]->name, name) == 0) {
            s_fail (f, line, "item '%s' given twice in this schedule", name);
            return;
        }
    v->q.items[v->q.n_items++] = it;
}

static void
s_set (s_file_t *f, s_version_t *v, unsigned line, const char *key, const char *value)
{
    static const char *const once[4] = { "property_fee", "maintenance_fund", "parking", "prepaid_months" };
    const char *why;
    int64_t fen;
    for (int i = 0; i < 4; i++) {
        if (strcmp (key, once[i]) != 0)
            continue;
        if (v->seen[i]) {
            s_fail (f, line, "%s: given twice in this schedule (first on line %s)", key, v->seen[i]);
            return;
        }
        v->seen[i] = pm_arena_printf (f->a, "%u", line);
        if (i == 3) {
            char *end;
            errno = 0;
            long months = strtol (value, &end, 10);
            if (!*value || *end || errno || months < 0 || months > S_MAX_PREPAID) {
                s_fail (f, line, "prepaid_months = '%s': expected a whole number of months from 0 to %d", value,
                        S_MAX_PREPAID);
                return;
            }
            v->q.prepaid_months = (uint32_t) months;
            v->seen_prepaid = true;
            return;
        }
        if (!billing_yuan_parse (value, true, &fen, &why)) {
            s_fail (f, line, "%s = '%s': %s", key, value, why);
            return;
        }
        if (i == 0)
            v->q.property_fee = (char *) value;
        else if (i == 1)
            v->q.maintenance_fund = (char *) value;
        else
            v->q.parking = (char *) value;
        return;
    }
    if (strncmp (key, "property_fee.", 13) == 0 && key[13]) {
        if (!billing_yuan_parse (value, true, &fen, &why)) {
            s_fail (f, line, "%s = '%s': %s", key, value, why);
            return;
        }
        if (v->q.n_property_fee_by_type == S_MAX_TYPES) {
            s_fail (f, line, "more than %d unit types in one schedule", S_MAX_TYPES);
            return;
        }
        if (!v->q.property_fee_by_type)
            v->q.property_fee_by_type = pm_arena_alloc (f->a, S_MAX_TYPES * sizeof (void *));
        for (size_t i = 0; i < v->q.n_property_fee_by_type; i++)
            if (strcmp (v->q.property_fee_by_type[i]->unit_type, key + 13) == 0) {
                s_fail (f, line, "%s: given twice in this schedule", key);
                return;
            }
        Pm__V1__FeeTypeRate *r = pm_arena_alloc (f->a, sizeof *r);
        pm__v1__fee_type_rate__init (r);
        r->unit_type = pm_arena_strdup (f->a, key + 13);
        r->property_fee = (char *) value;
        v->q.property_fee_by_type[v->q.n_property_fee_by_type++] = r;
        return;
    }
    if (strcmp (key, "item") == 0 || strcmp (key, "deposit") == 0) {
        s_add_item (f, v, line, key, value, key[0] == 'd');
        return;
    }
    s_fail (f, line, "unknown key '%s' (known: property_fee, property_fee.<unit type>, maintenance_fund, parking, "
                     "prepaid_months, item, deposit)", key);
}

/* The text of a line without its comment (';' or '#' at the start or after a blank). */
static char *
s_uncomment (char *s)
{
    for (char *p = s; *p; p++)
        if ((*p == ';' || *p == '#') && (p == s || isspace ((unsigned char) p[-1]))) {
            *p = '\0';
            break;
        }
    return pm_trim (s);
}

static void
s_section (s_file_t *f, unsigned line, char *text)
{
    size_t n = strlen (text);
    if (text[n - 1] != ']') {
        s_fail (f, line, "'%s': a section is [ESTATE YYYY-MM-DD], e.g. [E01 2026-01-01]", text);
        return;
    }
    char *inner = s_trimmed (f->a, text + 1, n - 2);
    char *sp = inner;
    while (*sp && !isspace ((unsigned char) *sp))
        sp++;
    char *date = *sp ? s_trimmed (f->a, sp, strlen (sp)) : "";
    *sp = '\0';
    int y, m, d;
    if (!*inner || !*date || !billing_date_parse (date, &y, &m, &d)) {
        s_fail (f, line, "'%s': a section is [ESTATE YYYY-MM-DD], e.g. [E01 2026-01-01]", text);
        return;
    }
    for (size_t i = 0; i < f->n; i++)
        if (strcmp (f->v[i].q.estate_id, inner) == 0 && strcmp (f->v[i].q.effective_date, date) == 0) {
            s_fail (f, line, "[%s %s] given twice (first on line %u)", inner, date, f->v[i].line);
            return;
        }
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        s_version_t *grown = pm_arena_alloc (f->a, f->cap * sizeof *grown);
        if (f->n)
            memcpy (grown, f->v, f->n * sizeof *grown);
        f->v = grown;
    }
    s_version_t *v = &f->v[f->n++];
    memset (v, 0, sizeof *v);
    pm__v1__billing_schedule_set_request__init (&v->q);
    v->q.estate_id = inner;
    v->q.effective_date = date;
    v->line = line;
}

/* Reads the file into f->v. PM_OK, PM_ENOTFOUND (no such file), or PM_EINVAL with f->err. */
static int
s_read (s_file_t *f)
{
    FILE *fp = fopen (f->path, "r");
    if (!fp)
        return errno == ENOENT ? PM_ENOTFOUND : (f->err = pm_arena_printf (f->a, "%s: %s", f->path, strerror (errno)),
                                                 PM_EINVAL);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned line = 0;
    while (!f->err && (len = getline (&buf, &cap, fp)) >= 0) {
        line++;
        if (line == 1 && len >= 3 && memcmp (buf, "\xef\xbb\xbf", 3) == 0)
            memmove (buf, buf + 3, (size_t) len - 2);
        if (!pm_utf8_valid_str (buf)) {
            s_fail (f, line, "not UTF-8 (save the file as UTF-8)");
            break;
        }
        char *text = s_uncomment (buf);
        if (!*text)
            continue;
        if (*text == '[') {
            s_section (f, line, text);
            continue;
        }
        char *eq = strchr (text, '=');
        if (!eq) {
            s_fail (f, line, "'%s': expected KEY = VALUE or a [ESTATE YYYY-MM-DD] section", text);
            break;
        }
        if (f->n == 0) {
            s_fail (f, line, "'%s' before the first [ESTATE YYYY-MM-DD] section", text);
            break;
        }
        char *key = s_trimmed (f->a, text, (size_t) (eq - text));
        char *value = s_trimmed (f->a, eq + 1, strlen (eq + 1));
        if (!*key) {
            s_fail (f, line, "'%s': a value without a key", text);
            break;
        }
        s_set (f, &f->v[f->n - 1], line, key, value);
    }
    free (buf);
    fclose (fp);
    return f->err ? PM_EINVAL : PM_OK;
}

char *
billing_schedule_path (const pm_config_t *cfg, const char *path)
{
    const char *name = pm_config_name (cfg);
    const char *slash = name ? strrchr (name, '/') : NULL;
    if (path[0] == '/' || !slash || name[0] == '<')
        return pm_xstrdup (path);
    return pm_xasprintf ("%.*s/%s", (int) (slash - name), name, path);
}

/* Whether two versions say the same (their source and time aside). */
static bool
s_same (const Pm__V1__FeeSchedule *x, const Pm__V1__FeeSchedule *y)
{
    Pm__V1__FeeSchedule a = *x, b = *y;
    a.source = b.source = "";
    a.set_ms = b.set_ms = 0;
    size_t la = pm__v1__fee_schedule__get_packed_size (&a), lb = pm__v1__fee_schedule__get_packed_size (&b);
    if (la != lb)
        return false;
    unsigned char *pa = pm_xmalloc (la + 1), *pb = pm_xmalloc (lb + 1);
    pm__v1__fee_schedule__pack (&a, pa);
    pm__v1__fee_schedule__pack (&b, pb);
    bool same = memcmp (pa, pb, la) == 0;
    free (pa);
    free (pb);
    return same;
}

int
billing_schedule_file_load (pm_daemon_t *d, const billing_t *b, const char *path, bool *changed)
{
    *changed = false;
    pm_arena_t *a = pm_arena_new ();
    s_file_t f = { .a = a, .path = path };
    pm_ctx_t ctx = { .name = "billing", .arena = a, .now_ms = pm_clock_now_ms (pm_daemon_clock (d)), .app = (void *) b };
    int rc = s_read (&f);
    if (rc == PM_ENOTFOUND) {
        pm_warn ("schedule file %s: not found; fee schedules come from billing.schedule.set only "
                 "(set [billing] schedule to the file, or leave it empty)", path);
        pm_arena_destroy (&a);
        return PM_OK;
    }
    Pm__V1__FeeSchedule *vs = pm_arena_alloc (a, (f.n + 1) * sizeof *vs);
    for (size_t i = 0; rc == PM_OK && i < f.n; i++) {
        s_version_t *v = &f.v[i];
        const char *field, *value, *why;
        if (!billing_schedule_check (&ctx, &v->q, &vs[i], &field, &value, &why)) {
            s_fail (&f, v->line, "[%s %s] %s%s%s: %s", v->q.estate_id, v->q.effective_date, field,
                    *value ? " = " : "", value, why);
            rc = PM_EINVAL;
        }
        else if (!v->seen_prepaid) {
            s_fail (&f, v->line, "[%s %s] prepaid_months: missing: how many months of 物业费 and 停车费 the move-in "
                                 "invoice asks for (write 0 for none)", v->q.estate_id, v->q.effective_date);
            rc = PM_EINVAL;
        }
        else
            vs[i].source = pm_arena_printf (a, "file:%s:%u", path, v->line);
    }
    if (rc != PM_OK) {
        pm_error ("%s", f.err);
        pm_arena_destroy (&a);
        return PM_ECONFIG;
    }

    pm_txn_t txn;
    if (pm_txn_begin (&txn, pm_daemon_store (d), NULL) != PM_OK) {
        pm_arena_destroy (&a);
        return PM_EIO;
    }
    txn.arena = a;
    unsigned added = 0, replaced = 0, removed = 0, kept = 0;
    /* versions the file gave before and no longer gives */
    pm_scan_t s;
    for (pm_scan_prefix (&s, &txn, BILLING_SCHEDULES, NULL); s.ok; pm_scan_next (&s)) {
        Pm__V1__FeeSchedule *old;
        if (pm_scan_msg (&s, &pm__v1__fee_schedule__descriptor, &old) != PM_OK || strncmp (old->source, "file:", 5) != 0)
            continue;
        bool still = false;
        for (size_t i = 0; i < f.n && !still; i++)
            still = strcmp (vs[i].estate_id, old->estate_id) == 0 && vs[i].effective_ms == old->effective_ms;
        if (!still) {
            pm_scan_del (&s);
            removed++;
        }
    }
    pm_scan_end (&s);
    for (size_t i = 0; i < f.n; i++) {
        pm_key_t k;
        Pm__V1__FeeSchedule *old;
        pm_key (&k, "st", vs[i].estate_id, vs[i].effective_ms);
        int got = pm_txn_get_msg (&txn, BILLING_SCHEDULES, &k, &pm__v1__fee_schedule__descriptor, &old);
        if (got == PM_OK && strncmp (old->source, "file:", 5) != 0) {
            pm_warn ("%s:%u: [%s %s] not loaded: that version was set by %s, which wins over the file", path,
                     f.v[i].line, vs[i].estate_id, vs[i].effective_date, old->source);
            kept++;
            continue;
        }
        if (got == PM_OK && s_same (old, &vs[i])) {
            if (strcmp (old->source, vs[i].source) != 0) { /* moved within the file */
                old->source = vs[i].source;
                pm_txn_put_msg (&txn, BILLING_SCHEDULES, &k, &old->base);
            }
            continue;
        }
        vs[i].set_ms = ctx.now_ms;
        pm_txn_put_msg (&txn, BILLING_SCHEDULES, &k, &vs[i].base);
        if (got == PM_OK)
            replaced++;
        else
            added++;
    }
    *changed = added + replaced + removed > 0;
    if (*changed && pm_txn_count (&txn, BILLING_WAITING) > 0)
        pm_timer_set (&txn, BILLING_TIMER_WAITING, "file", ctx.now_ms, NULL, 0);
    rc = pm_txn_commit (&txn);
    if (rc == PM_OK)
        pm_info ("schedule file %s: %zu version(s): %u added, %u replaced, %u removed, %u left to billing.schedule.set",
                 path, f.n, added, replaced, removed, kept);
    else
        pm_error ("schedule file %s: cannot store it: %s", path, pm_strerror (rc));
    pm_arena_destroy (&a);
    return rc;
}
