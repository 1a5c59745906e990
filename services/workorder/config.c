/* config.c - workorder's files (categories and their SLAs, the staff roster,
 * the dispatch mode of each estate), its [workorder] keys, and the calendar
 * arithmetic of deadlines in the estates' time zone.
 *
 * The files are CSV (a spreadsheet's export), columns found by header name.
 * Each [workorder] key `categories`, `staff`, `estates` names a file; empty
 * means the copy of deploy/workorder/<name>.csv built into the binary. They
 * are read once at start: a bad value stops the start with the file, the line
 * and what is wrong ("staff.csv:4: skills 'plumbing': ...").
 *
 * Durations: "30m", "24h", "90s" are exact; whole days ("3d") run to the end
 * of the local day that many days after the start's day, so "土建 within 3
 * days" of a report on Monday 16:00 is due at Thursday 23:59:59.999 local
 * time (and counts for Thursday in the KPIs). */
#define _GNU_SOURCE
#include "workorder.h"
#include "pm/csv.h"
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

/* the files built into the binary (workorder_files.c, generated) */
extern const char wo_default_categories[];
extern const char wo_default_staff[];
extern const char wo_default_estates[];

/* --- CSV with columns by header name -------------------------------------------------- */

#define S_MAX_COLS 16

/* What one row gives its parser: the fields in the order of the column list. */
typedef struct {
    const char *v[S_MAX_COLS];
    unsigned line;
} s_row_t;

typedef int (*s_row_fn) (workorder_t *wo, const char *file, const s_row_t *row, char **err);

static char *
s_err (const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *what = NULL;
    if (vasprintf (&what, fmt, ap) < 0)
        pm_oom ("config error", 0);
    va_end (ap);
    char *e = pm_xasprintf ("%s:%u: %s", file, line, what);
    free (what);
    return e;
}

/* Scans text as CSV; cols[i] (NULL-terminated, "?name" = optional) is found
 * in the header; every record goes to fn. */
static int
s_csv (workorder_t *wo, const char *file, const char *text, size_t len, const char *const *cols, s_row_fn fn,
       char **err)
{
    int ncols = 0;
    while (cols[ncols])
        ncols++;
    FILE *f = fmemopen ((void *) text, len ? len : 1, "r");
    if (!f) {
        *err = pm_xasprintf ("%s: cannot read: %s", file, strerror (errno));
        return PM_ECONFIG;
    }
    if (len == 0) { /* fmemopen of nothing: an empty stream */
        fclose (f);
        *err = s_err (file, 1, "empty: expected a header line naming the columns %s ...", cols[0]);
        return PM_ECONFIG;
    }
    pm_csv_t *c = pm_csv_new (f, 0);
    int idx[S_MAX_COLS];
    int rc = PM_OK;
    bool header = true;
    pm_csv_record_t *r;
    while (rc == PM_OK && (r = pm_csv_next (c))) {
        if (r->error != PM_CSV_OK) {
            *err = s_err (file, r->first_line, "%s", r->why);
            rc = PM_ECONFIG;
            break;
        }
        for (size_t i = 0; i < r->nfields; i++)
            if (!pm_utf8_valid (r->fields[i], r->lens[i])) {
                *err = s_err (file, r->first_line, "field %zu is not UTF-8 text (save the file as UTF-8)", i + 1);
                rc = PM_ECONFIG;
                break;
            }
        if (rc != PM_OK)
            break;
        if (header) {
            header = false;
            for (int k = 0; k < ncols; k++) {
                const char *want = cols[k][0] == '?' ? cols[k] + 1 : cols[k];
                idx[k] = -1;
                for (size_t i = 0; i < r->nfields; i++)
                    if (strcmp (pm_trim (r->fields[i]), want) == 0)
                        idx[k] = (int) i;
                if (idx[k] < 0 && cols[k][0] != '?') {
                    *err = s_err (file, r->first_line, "no column '%s' in the header (it needs %s", want, cols[0]);
                    for (int j = 1; j < ncols; j++) {
                        char *t = pm_xasprintf ("%s, %s", *err, cols[j][0] == '?' ? cols[j] + 1 : cols[j]);
                        free (*err);
                        *err = t;
                    }
                    char *t = pm_xasprintf ("%s)", *err);
                    free (*err);
                    *err = t;
                    rc = PM_ECONFIG;
                    break;
                }
            }
            continue;
        }
        s_row_t row = { .line = r->first_line };
        for (int k = 0; k < ncols; k++)
            row.v[k] = idx[k] >= 0 && (size_t) idx[k] < r->nfields ? pm_trim (r->fields[idx[k]]) : "";
        rc = fn (wo, file, &row, err);
    }
    if (rc == PM_OK && header) {
        *err = s_err (file, 1, "empty: expected a header line naming the columns %s ...", cols[0]);
        rc = PM_ECONFIG;
    }
    pm_csv_destroy (&c);
    fclose (f);
    return rc;
}

/* Splits "a;b; c" (also ',' or whitespace between) into a malloc'd vector. */
static char **
s_split (const char *s, size_t *n)
{
    char **v = NULL;
    *n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ';' || *p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ';' && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (p > start) {
            v = pm_xrealloc (v, (*n + 1) * sizeof *v);
            v[(*n)++] = pm_xstrndup (start, (size_t) (p - start));
        }
    }
    return v;
}

static void
s_strv_free (char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free (v[i]);
    free (v);
}

/* A plain id: letters, digits, '_' and '-' (keys and messages stay readable). */
static bool
s_id_ok (const char *s)
{
    if (!*s || strlen (s) > 32)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum ((unsigned char) *p) && *p != '_' && *p != '-')
            return false;
    return true;
}

/* --- durations and the calendar --------------------------------------------------------- */

bool
wo_dur_parse (const char *s, wo_dur_t *d)
{
    d->ms = 0;
    d->days = 0;
    if (!*s)
        return true;
    size_t n = strlen (s);
    if (n >= 2 && s[n - 1] == 'd' && strspn (s, "0123456789") == n - 1) {
        long v = strtol (s, NULL, 10);
        if (v <= 0 || v > 3650)
            return false;
        d->days = (int) v;
        return true;
    }
    int64_t ms;
    if (pm_duration_parse (s, &ms) != PM_OK || ms <= 0)
        return false;
    d->ms = ms;
    return true;
}

static bool
s_dur_set (const wo_dur_t *d)
{
    return d->ms > 0 || d->days > 0;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil). */
static int64_t
s_days_from_civil (int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

static void
s_civil_from_days (int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned) (z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t) yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int) (yy + (*m <= 2));
}

static int64_t
s_floor_div (int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t
wo_day (const workorder_t *wo, int64_t ms)
{
    return s_floor_div (ms + wo->utc_offset_ms, WO_DAY_MS);
}

int64_t
wo_day_start (const workorder_t *wo, int64_t day)
{
    return day * WO_DAY_MS - wo->utc_offset_ms;
}

bool
wo_date_parse (const char *s, int64_t *day)
{
    int y;
    unsigned m, d;
    int n = 0;
    if (sscanf (s, "%4d-%2u-%2u%n", &y, &m, &d, &n) != 3 || n != 10 || s[n] || m < 1 || m > 12 || d < 1 || d > 31
        || y < 1970)
        return false;
    int64_t z = s_days_from_civil (y, m, d);
    int yy;
    unsigned mm, dd;
    s_civil_from_days (z, &yy, &mm, &dd);
    if (mm != m || dd != d) /* 2026-02-30 */
        return false;
    *day = z;
    return true;
}

const char *
wo_date_format (int64_t day, char *buf, size_t size)
{
    int y;
    unsigned m, d;
    s_civil_from_days (day, &y, &m, &d);
    snprintf (buf, size, "%04d-%02u-%02u", y, m, d);
    return buf;
}

char *
wo_local_time (pm_arena_t *a, const workorder_t *wo, int64_t ms)
{
    int64_t day = wo_day (wo, ms);
    int64_t in = ms + wo->utc_offset_ms - day * WO_DAY_MS;
    char date[16];
    wo_date_format (day, date, sizeof date);
    return pm_arena_printf (a, "%s %02d:%02d", date, (int) (in / 3600000), (int) (in / 60000 % 60));
}

/* "14:00" -> ms into the day; false when not a time of day. */
static bool
s_hhmm (const char *s, size_t len, int64_t *ms)
{
    unsigned h, m;
    int n = 0;
    char buf[8];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy (buf, s, len);
    buf[len] = '\0';
    if (sscanf (buf, "%2u:%2u%n", &h, &m, &n) != 2 || (size_t) n != len || h > 24 || m > 59 || (h == 24 && m))
        return false;
    *ms = (int64_t) h * 3600000 + (int64_t) m * 60000;
    return true;
}

bool
wo_window_parse (const workorder_t *wo, const char *s, int64_t *from_ms, int64_t *to_ms)
{
    char date[16];
    int64_t day;
    if (strlen (s) < 10)
        return false;
    memcpy (date, s, 10);
    date[10] = '\0';
    if (!wo_date_parse (date, &day))
        return false;
    const char *rest = s + 10;
    if (!*rest) { /* the whole day */
        *from_ms = wo_day_start (wo, day);
        *to_ms = wo_day_start (wo, day + 1);
        return true;
    }
    if (*rest != ' ' && *rest != 'T')
        return false;
    rest++;
    const char *dash = strchr (rest, '-');
    int64_t a, b;
    if (!dash || !s_hhmm (rest, (size_t) (dash - rest), &a) || !s_hhmm (dash + 1, strlen (dash + 1), &b))
        return false;
    *from_ms = wo_day_start (wo, day) + a;
    *to_ms = wo_day_start (wo, day) + b;
    if (*to_ms <= *from_ms) /* "22:00-02:00": over midnight */
        *to_ms += WO_DAY_MS;
    return true;
}

int64_t
wo_deadline (const workorder_t *wo, int64_t start_ms, wo_dur_t d)
{
    if (d.days > 0) /* the last ms of the local day d.days after the start's */
        return wo_day_start (wo, wo_day (wo, start_ms) + d.days + 1) - 1;
    return d.ms > 0 ? start_ms + d.ms : 0;
}

void
wo_deadlines (const workorder_t *wo, const wo_category_t *c, bool urgent, int64_t created_ms, int64_t pref_from_ms,
              int64_t pref_to_ms, int64_t defect_deadline_ms, int64_t *respond_by, int64_t *complete_by)
{
    wo_dur_t respond = urgent && s_dur_set (&c->urgent_respond) ? c->urgent_respond : c->respond;
    wo_dur_t complete = urgent && s_dur_set (&c->urgent_complete) ? c->urgent_complete : c->complete;
    /* the clock starts when the owner lets the technician in */
    int64_t start = pref_from_ms > created_ms ? pref_from_ms : created_ms;
    int64_t r = wo_deadline (wo, start, respond);
    if (r && pref_to_ms > r) /* arriving anywhere in the owner's window is on time */
        r = pref_to_ms;
    int64_t cb = defect_deadline_ms > 0 ? defect_deadline_ms : wo_deadline (wo, start, complete);
    if (cb && r > cb)
        r = cb;
    *respond_by = r;
    *complete_by = cb;
}

/* --- categories ------------------------------------------------------------------------- */

static const char *const s_cat_cols[] = { "category", "name", "kind", "respond", "complete", "?urgent_respond",
                                          "?urgent_complete", "?warn_before", "?skill", "?defect_categories", NULL };

static int
s_cat_row (workorder_t *wo, const char *file, const s_row_t *row, char **err)
{
    const char *const *v = row->v;
    if (!s_id_ok (v[0])) {
        *err = s_err (file, row->line, "category '%s': expected a short id of letters, digits, '_' or '-' (e.g. water)",
                      v[0]);
        return PM_ECONFIG;
    }
    if (wo_category (wo, v[0])) {
        *err = s_err (file, row->line, "category '%s' is defined twice (first on line %d)", v[0],
                      wo_category (wo, v[0])->line);
        return PM_ECONFIG;
    }
    wo_category_t c = { .line = (int) row->line };
    if (strcmp (v[2], "repair") == 0)
        c.kind = WO_KIND_REPAIR;
    else if (strcmp (v[2], "complaint") == 0)
        c.kind = WO_KIND_COMPLAINT;
    else if (strcmp (v[2], "defect") == 0)
        c.kind = WO_KIND_DEFECT;
    else {
        *err = s_err (file, row->line, "kind '%s': expected repair, complaint or defect", v[2]);
        return PM_ECONFIG;
    }
    static const char *const names[] = { "respond", "complete", "urgent_respond", "urgent_complete" };
    wo_dur_t *durs[] = { &c.respond, &c.complete, &c.urgent_respond, &c.urgent_complete };
    for (int i = 0; i < 4; i++)
        if (!wo_dur_parse (v[3 + i], durs[i])) {
            *err = s_err (file, row->line, "%s '%s': not a duration; expected e.g. 30m, 4h, 24h or whole days 3d",
                          names[i], v[3 + i]);
            return PM_ECONFIG;
        }
    if (!s_dur_set (&c.complete) && c.kind != WO_KIND_DEFECT) {
        *err = s_err (file, row->line, "complete: empty; a %s category needs a completion time, e.g. 24h or 3d", v[2]);
        return PM_ECONFIG;
    }
    wo_dur_t warn;
    if (!wo_dur_parse (v[7], &warn)) {
        *err = s_err (file, row->line, "warn_before '%s': not a duration; expected e.g. 10m or 4h", v[7]);
        return PM_ECONFIG;
    }
    c.warn_before_ms = warn.days ? (int64_t) warn.days * WO_DAY_MS : warn.ms;
    const char *skill = *v[8] ? v[8] : v[0];
    if (!s_id_ok (skill)) {
        *err = s_err (file, row->line, "skill '%s': expected a short id of letters, digits, '_' or '-'", skill);
        return PM_ECONFIG;
    }
    if (!*v[1]) {
        *err = s_err (file, row->line, "name: empty; expected what people call it, e.g. 给排水");
        return PM_ECONFIG;
    }
    c.id = pm_xstrdup (v[0]);
    c.name = pm_xstrdup (v[1]);
    c.skill = pm_xstrdup (skill);
    c.defect_categories = s_split (v[9], &c.ndefect_categories);
    wo->cats = pm_xrealloc (wo->cats, (wo->ncats + 1) * sizeof *wo->cats);
    wo->cats[wo->ncats++] = c;
    return PM_OK;
}

int
wo_categories_parse (workorder_t *wo, const char *name, const char *text, size_t len, char **err)
{
    int rc = s_csv (wo, name, text, len, s_cat_cols, s_cat_row, err);
    if (rc != PM_OK)
        return rc;
    if (!wo_category_of_kind (wo, WO_KIND_REPAIR) || !wo_category_of_kind (wo, WO_KIND_COMPLAINT)
        || !wo_category_of_kind (wo, WO_KIND_DEFECT)) {
        *err = pm_xasprintf ("%s: needs at least one category of each kind (repair, complaint, defect)", name);
        return PM_ECONFIG;
    }
    return PM_OK;
}

const wo_category_t *
wo_category (const workorder_t *wo, const char *id)
{
    for (size_t i = 0; i < wo->ncats; i++)
        if (strcmp (wo->cats[i].id, id) == 0)
            return &wo->cats[i];
    return NULL;
}

const wo_category_t *
wo_category_of_kind (const workorder_t *wo, int kind)
{
    for (size_t i = 0; i < wo->ncats; i++)
        if (wo->cats[i].kind == kind)
            return &wo->cats[i];
    return NULL;
}

char *
wo_category_list (pm_arena_t *a, const workorder_t *wo, int kind)
{
    char *s = "";
    for (size_t i = 0; i < wo->ncats; i++)
        if (kind < 0 || wo->cats[i].kind == kind)
            s = pm_arena_printf (a, "%s%s%s", s, *s ? ", " : "", wo->cats[i].id);
    return s;
}

bool
wo_skill_known (const workorder_t *wo, const char *s)
{
    for (size_t i = 0; i < wo->ncats; i++)
        if (strcmp (wo->cats[i].skill, s) == 0)
            return true;
    return false;
}

char *
wo_skill_list (pm_arena_t *a, const workorder_t *wo)
{
    char *s = "";
    for (size_t i = 0; i < wo->ncats; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp (wo->cats[j].skill, wo->cats[i].skill) == 0;
        if (!seen)
            s = pm_arena_printf (a, "%s%s%s", s, *s ? ", " : "", wo->cats[i].skill);
    }
    return s;
}

const char *
wo_defect_skill (const workorder_t *wo, const char *defect_category)
{
    for (size_t i = 0; i < wo->ncats; i++)
        for (size_t j = 0; j < wo->cats[i].ndefect_categories; j++)
            if (strcmp (wo->cats[i].defect_categories[j], defect_category) == 0)
                return wo->cats[i].skill;
    return wo_category_of_kind (wo, WO_KIND_DEFECT)->skill;
}

/* --- staff ------------------------------------------------------------------------------ */

static const char *const s_staff_cols[] = { "technician", "name", "?phone", "team", "?team_name", "?role",
                                            "estates", "skills", "?on_shift", NULL };

static bool
s_yes (const char *s, bool *v)
{
    if (!*s || !strcasecmp (s, "yes") || !strcasecmp (s, "y") || !strcmp (s, "1") || !strcasecmp (s, "true")
        || !strcmp (s, "是")) {
        *v = true;
        return true;
    }
    if (!strcasecmp (s, "no") || !strcasecmp (s, "n") || !strcmp (s, "0") || !strcasecmp (s, "false")
        || !strcmp (s, "否")) {
        *v = false;
        return true;
    }
    return false;
}

static int
s_staff_row (workorder_t *wo, const char *file, const s_row_t *row, char **err)
{
    const char *const *v = row->v;
    if (!s_id_ok (v[0])) {
        *err = s_err (file, row->line, "technician '%s': expected a short id of letters, digits, '_' or '-' (e.g. T01)",
                      v[0]);
        return PM_ECONFIG;
    }
    for (size_t i = 0; i < wo->nstaff; i++)
        if (strcmp (wo->staff[i]->technician, v[0]) == 0) {
            *err = s_err (file, row->line, "technician '%s' is listed twice", v[0]);
            return PM_ECONFIG;
        }
    if (!*v[1]) {
        *err = s_err (file, row->line, "name: empty; expected the technician's name, e.g. 王建国");
        return PM_ECONFIG;
    }
    if (!s_id_ok (v[3])) {
        *err = s_err (file, row->line, "team '%s': expected a short id of letters, digits, '_' or '-' (e.g. A)", v[3]);
        return PM_ECONFIG;
    }
    const char *role = *v[5] ? v[5] : "technician";
    if (strcmp (role, "technician") != 0 && strcmp (role, "lead") != 0) {
        *err = s_err (file, row->line, "role '%s': expected technician or lead", v[5]);
        return PM_ECONFIG;
    }
    bool on_shift;
    if (!s_yes (v[8], &on_shift)) {
        *err = s_err (file, row->line, "on_shift '%s': expected yes or no", v[8]);
        return PM_ECONFIG;
    }
    size_t nest, nskill;
    char **est = s_split (v[6], &nest), **skills = s_split (v[7], &nskill);
    int rc = PM_OK;
    if (nest == 0) {
        *err = s_err (file, row->line, "estates: empty; expected the estates covered, e.g. E01;E02 (or * for all)");
        rc = PM_ECONFIG;
    }
    for (size_t i = 0; rc == PM_OK && i < nest; i++)
        if (strcmp (est[i], "*") != 0 && (strchr (est[i], '/') || strlen (est[i]) > 32)) {
            *err = s_err (file, row->line, "estates '%s': expected estate ids such as E01 (no '/'), or *", est[i]);
            rc = PM_ECONFIG;
        }
    if (rc == PM_OK && nskill == 0) {
        *err = s_err (file, row->line, "skills: empty; expected category skills, e.g. water;electric");
        rc = PM_ECONFIG;
    }
    for (size_t i = 0; rc == PM_OK && i < nskill; i++)
        if (!wo_skill_known (wo, skills[i])) {
            pm_arena_t *a = pm_arena_new ();
            *err = s_err (file, row->line, "skills '%s': no category needs it; known skills: %s", skills[i],
                          wo_skill_list (a, wo));
            pm_arena_destroy (&a);
            rc = PM_ECONFIG;
        }
    if (rc != PM_OK) {
        s_strv_free (est, nest);
        s_strv_free (skills, nskill);
        return rc;
    }
    Pm__V1__Technician *t = pm_xcalloc (1, sizeof *t);
    pm__v1__technician__init (t);
    t->technician = pm_xstrdup (v[0]);
    t->name = pm_xstrdup (v[1]);
    t->phone = pm_xstrdup (v[2]);
    t->team = pm_xstrdup (v[3]);
    t->team_name = pm_xstrdup (*v[4] ? v[4] : v[3]);
    t->role = pm_xstrdup (role);
    t->estates = est;
    t->n_estates = nest;
    t->skills = skills;
    t->n_skills = nskill;
    t->on_shift = on_shift;
    t->origin = pm_xstrdup ("file");
    wo->staff = pm_xrealloc (wo->staff, (wo->nstaff + 1) * sizeof *wo->staff);
    wo->staff[wo->nstaff++] = t;
    return PM_OK;
}

/* FNV-1a, 64 bits: has the staff file changed since it was applied? */
static uint64_t
s_hash (const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int
wo_staff_parse (workorder_t *wo, const char *name, const char *text, size_t len, char **err)
{
    /* the version of what applying writes (staff, pick index, teams) is part
     * of the hash: a daemon that indexes staff differently applies it again */
    wo->staff_hash = s_hash (text, len) ^ 0x5741465f30303032ULL; /* "WAF_0002" */
    free (wo->staff_name);
    wo->staff_name = pm_xstrdup (name);
    return s_csv (wo, name, text, len, s_staff_cols, s_staff_row, err);
}

/* --- estates --------------------------------------------------------------------------- */

static const char *const s_estate_cols[] = { "estate_id", "dispatch", NULL };

static int
s_estate_row (workorder_t *wo, const char *file, const s_row_t *row, char **err)
{
    const char *const *v = row->v;
    if (!*v[0] || strchr (v[0], '/') || strlen (v[0]) > 32) {
        *err = s_err (file, row->line, "estate_id '%s': expected an estate id such as E01", v[0]);
        return PM_ECONFIG;
    }
    int mode = wo_mode_parse (v[1]);
    if (mode < 0) {
        *err = s_err (file, row->line, "dispatch '%s': expected manual, auto or claim", v[1]);
        return PM_ECONFIG;
    }
    for (size_t i = 0; i < wo->nestates; i++)
        if (strcmp (wo->estates[i].estate_id, v[0]) == 0) {
            *err = s_err (file, row->line, "estate '%s' is listed twice", v[0]);
            return PM_ECONFIG;
        }
    wo->estates = pm_xrealloc (wo->estates, (wo->nestates + 1) * sizeof *wo->estates);
    wo->estates[wo->nestates++] = (wo_estate_t) { pm_xstrdup (v[0]), mode };
    return PM_OK;
}

int
wo_estates_parse (workorder_t *wo, const char *name, const char *text, size_t len, char **err)
{
    return s_csv (wo, name, text, len, s_estate_cols, s_estate_row, err);
}

void
wo_files_free (workorder_t *wo)
{
    for (size_t i = 0; i < wo->ncats; i++) {
        free (wo->cats[i].id);
        free (wo->cats[i].name);
        free (wo->cats[i].skill);
        s_strv_free (wo->cats[i].defect_categories, wo->cats[i].ndefect_categories);
    }
    free (wo->cats);
    wo->cats = NULL;
    wo->ncats = 0;
    for (size_t i = 0; i < wo->nestates; i++)
        free (wo->estates[i].estate_id);
    free (wo->estates);
    wo->estates = NULL;
    wo->nestates = 0;
    for (size_t i = 0; i < wo->nstaff; i++)
        pm__v1__technician__free_unpacked (wo->staff[i], NULL);
    free (wo->staff);
    wo->staff = NULL;
    wo->nstaff = 0;
    free (wo->staff_name);
    wo->staff_name = NULL;
}

/* --- the app context ------------------------------------------------------------------- */

/* Reads [workorder] key's file (or the built-in text) and parses it. */
static int
s_load (workorder_t *wo, const pm_config_t *cfg, const char *key, const char *builtin,
        int (*parse) (workorder_t *, const char *, const char *, size_t, char **), char **err)
{
    const char *path = pm_config_get (cfg, "workorder", key, "");
    if (!*path) {
        char *name = pm_xasprintf ("<built-in deploy/workorder/%s.csv>", key);
        int rc = parse (wo, name, builtin, strlen (builtin), err);
        free (name);
        return rc;
    }
    FILE *f = fopen (path, "rb");
    if (!f) {
        char *why = pm_xasprintf ("cannot open: %s", strerror (errno));
        *err = pm_config_error (cfg, "workorder", key, why);
        free (why);
        return PM_ECONFIG;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char buf[8192];
    while ((got = fread (buf, 1, sizeof buf, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            text = pm_xrealloc (text, cap);
        }
        memcpy (text + len, buf, got);
        len += got;
    }
    fclose (f);
    int rc = parse (wo, path, text ? text : "", len, err);
    free (text);
    return rc;
}

void *
workorder_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    workorder_t *wo = pm_xcalloc (1, sizeof *wo);
    char *err = NULL;
    const char *v = pm_config_get (cfg, "workorder", "dispatch", "auto");
    wo->dispatch_default = wo_mode_parse (v);
    if (wo->dispatch_default < 0) {
        err = pm_config_error (cfg, "workorder", "dispatch", "expected manual, auto or claim");
        goto fail;
    }
    v = pm_config_get (cfg, "workorder", "utc_offset", "+08:00");
    unsigned hh, mm;
    char sign;
    int n = 0;
    if (sscanf (v, "%c%2u:%2u%n", &sign, &hh, &mm, &n) != 3 || (size_t) n != strlen (v) || (sign != '+' && sign != '-')
        || hh > 14 || mm > 59) {
        err = pm_config_error (cfg, "workorder", "utc_offset", "expected the estates' offset from UTC, e.g. +08:00");
        goto fail;
    }
    wo->utc_offset_ms = (sign == '-' ? -1 : 1) * ((int64_t) hh * 3600000 + (int64_t) mm * 60000);
    v = pm_config_get (cfg, "workorder", "unsigned_after", "3d");
    if (pm_duration_parse (v, &wo->unsigned_after_ms) != PM_OK || wo->unsigned_after_ms <= 0) {
        err = pm_config_error (cfg, "workorder", "unsigned_after", "expected a duration, e.g. 3d or 72h");
        goto fail;
    }
    if (s_load (wo, cfg, "categories", wo_default_categories, wo_categories_parse, &err) != PM_OK
        || s_load (wo, cfg, "staff", wo_default_staff, wo_staff_parse, &err) != PM_OK
        || s_load (wo, cfg, "estates", wo_default_estates, wo_estates_parse, &err) != PM_OK)
        goto fail;
    if (wo_staff_apply_file (pm_daemon_store (d), wo) != PM_OK) {
        err = pm_xasprintf ("%s: could not be written to the store", wo->staff_name);
        goto fail;
    }
    pm_info ("workorder: %zu categories, %zu technicians in %s, %zu estates with a dispatch mode (default %s)",
             wo->ncats, wo->nstaff, wo->staff_name, wo->nestates, wo_mode_name (wo->dispatch_default));
    return wo;
fail:
    pm_error ("workorder: %s", err ? err : "cannot start");
    free (err);
    workorder_app_destroy (wo);
    return NULL;
}

void
workorder_app_destroy (void *app)
{
    workorder_t *wo = app;
    if (!wo)
        return;
    wo_files_free (wo);
    free (wo);
}
