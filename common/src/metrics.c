/* metrics.c - in-memory registry of counters, gauges and log2 histograms,
 * found by name + labels through a small open-addressing hash. */
#define _GNU_SOURCE
#include "pm/metrics.h"
#include "pm/mem.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BUCKETS 64

struct pm_metric {
    int kind;
    char *name;
    char *labels;
    const char *help;
    uint64_t hash;
    double value;           /* counter / gauge */
    uint64_t count;         /* updates; for histograms, observations */
    double sum, max;        /* histogram */
    uint64_t buckets[S_BUCKETS];
};

struct pm_metrics {
    pm_metric_t **v;        /* creation order */
    size_t n, cap;
    size_t *slots;          /* 1 + index into v, 0 = empty; size nslots (power of 2) */
    size_t nslots;
};

static uint64_t
s_hash (const char *name, const char *labels)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char) *p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = labels; *p; p++)
        h = (h ^ (unsigned char) *p) * 1099511628211ULL;
    return h;
}

/* Rebuilds the slot table at twice the size. */
static void
s_grow_slots (pm_metrics_t *m)
{
    size_t ns = m->nslots ? m->nslots * 2 : 64;
    size_t *slots = pm_xcalloc (ns, sizeof *slots);
    for (size_t i = 0; i < m->n; i++) {
        size_t j = (size_t) m->v[i]->hash & (ns - 1);
        while (slots[j])
            j = (j + 1) & (ns - 1);
        slots[j] = i + 1;
    }
    free (m->slots);
    m->slots = slots;
    m->nslots = ns;
}

pm_metrics_t *
pm_metrics_new (void)
{
    pm_metrics_t *m = pm_xcalloc (1, sizeof *m);
    s_grow_slots (m);
    return m;
}

void
pm_metrics_destroy (pm_metrics_t **p)
{
    if (!p || !*p)
        return;
    pm_metrics_t *m = *p;
    for (size_t i = 0; i < m->n; i++) {
        free (m->v[i]->name);
        free (m->v[i]->labels);
        free (m->v[i]);
    }
    free (m->v);
    free (m->slots);
    free (m);
    *p = NULL;
}

/* An existing metric keeps its kind; a later non-NULL help fills a missing
 * one. NULL on OOM (all pm_metric_* calls accept NULL and do nothing). */
pm_metric_t *
pm_metric (pm_metrics_t *m, int kind, const char *name, const char *labels, const char *help)
{
    if (!m || !name)
        return NULL;
    if (!labels)
        labels = "";
    uint64_t h = s_hash (name, labels);
    size_t j = (size_t) h & (m->nslots - 1);
    for (; m->slots[j]; j = (j + 1) & (m->nslots - 1)) {
        pm_metric_t *x = m->v[m->slots[j] - 1];
        if (x->hash == h && strcmp (x->name, name) == 0 && strcmp (x->labels, labels) == 0) {
            if (!x->help && help)
                x->help = help;
            return x;
        }
    }
    if (2 * (m->n + 1) > m->nslots)
        s_grow_slots (m);
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        pm_metric_t **v = pm_xrealloc (m->v, cap * sizeof *v);
        m->v = v;
        m->cap = cap;
    }
    pm_metric_t *x = pm_xcalloc (1, sizeof *x);
    x->name = pm_xstrdup (name);
    x->labels = pm_xstrdup (labels);
    x->kind = (kind == PM_GAUGE || kind == PM_HISTOGRAM) ? kind : PM_COUNTER;
    x->help = help;
    x->hash = h;
    m->v[m->n++] = x;
    j = (size_t) h & (m->nslots - 1);
    while (m->slots[j])
        j = (j + 1) & (m->nslots - 1);
    m->slots[j] = m->n;
    return x;
}

/* Counters and gauges; ignored for histograms. */
void
pm_metric_inc (pm_metric_t *x, double by)
{
    if (!x || x->kind == PM_HISTOGRAM)
        return;
    x->value += by;
    x->count++;
}

/* Counters and gauges; ignored for histograms. */
void
pm_metric_set (pm_metric_t *x, double v)
{
    if (!x || x->kind == PM_HISTOGRAM)
        return;
    x->value = v;
    x->count++;
}

/* v lands in bucket ceil(log2(max(v, 1))), whose upper bound is 2^bucket.
 * Ignored for counters and gauges, and for NaN. */
void
pm_metric_observe (pm_metric_t *x, double v)
{
    if (!x || x->kind != PM_HISTOGRAM || isnan (v))
        return;
    int b = 0;
    if (isinf (v) && v > 0)
        b = S_BUCKETS - 1;
    else if (v > 1) {
        int e;
        double f = frexp (v, &e);   /* v = f * 2^e, f in [0.5, 1) */
        b = f == 0.5 ? e - 1 : e;
        if (b >= S_BUCKETS)
            b = S_BUCKETS - 1;
    }
    x->buckets[b]++;
    x->max = x->count == 0 || v > x->max ? v : x->max;
    x->count++;
    x->sum += v;
}

/* Counter / gauge value; for a histogram, the sum of observations. */
double
pm_metric_value (const pm_metric_t *x)
{
    if (!x)
        return 0;
    return x->kind == PM_HISTOGRAM ? x->sum : x->value;
}

/* Observations of a histogram; updates of a counter or gauge. */
uint64_t
pm_metric_count (const pm_metric_t *x)
{
    return x ? x->count : 0;
}

/* The upper bound of the bucket holding the ceil(q * count)-th observation,
 * capped at the largest observation (so q = 1 gives the max). 0 if empty. */
double
pm_metric_quantile (const pm_metric_t *x, double q)
{
    if (!x || x->kind != PM_HISTOGRAM || x->count == 0)
        return 0;
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    /* the epsilon keeps 0.07 * 100 = 7.000000000000001 at rank 7 */
    uint64_t rank = (uint64_t) ceil (q * (double) x->count - 1e-9);
    if (rank < 1)
        rank = 1;
    if (rank > x->count)
        rank = x->count;
    uint64_t seen = 0;
    int b = 0;
    for (; b < S_BUCKETS - 1; b++) {
        seen += x->buckets[b];
        if (seen >= rank)
            break;
    }
    double upper = ldexp (1.0, b);
    return upper < x->max ? upper : x->max;
}

void
pm_count (pm_metrics_t *m, const char *name, const char *labels, double by)
{
    pm_metric_inc (pm_metric (m, PM_COUNTER, name, labels, NULL), by);
}

void
pm_gauge (pm_metrics_t *m, const char *name, const char *labels, const char *help, double v)
{
    pm_metric_set (pm_metric (m, PM_GAUGE, name, labels, help), v);
}

pm_metric_t *
pm_metrics_at (pm_metrics_t *m, size_t i)
{
    return m && i < m->n ? m->v[i] : NULL;
}

const char *
pm_metric_name (const pm_metric_t *x)
{
    return x ? x->name : "";
}

const char *
pm_metric_labels (const pm_metric_t *x)
{
    return x ? x->labels : "";
}

/* "" when no help was given. */
const char *
pm_metric_help (const pm_metric_t *x)
{
    return x && x->help ? x->help : "";
}

int
pm_metric_kind (const pm_metric_t *x)
{
    return x ? x->kind : PM_COUNTER;
}

/* Prometheus float: integers plainly, others in the shortest exact form. */
static void
s_put_value (FILE *f, double v)
{
    if (isnan (v))
        fputs ("NaN", f);
    else if (isinf (v))
        fputs (v > 0 ? "+Inf" : "-Inf", f);
    else if (v == floor (v) && fabs (v) < 9007199254740992.0)
        fprintf (f, "%.0f", v);
    else {
        char buf[40];
        snprintf (buf, sizeof buf, "%.15g", v);
        if (strtod (buf, NULL) != v)
            snprintf (buf, sizeof buf, "%.17g", v);
        fputs (buf, f);
    }
}

/* Writes s escaped for a label value (\\, \", \n) or, with quotes false,
 * for HELP text (\\, \n). */
static void
s_put_escaped (FILE *f, const char *s, bool quotes)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs ("\\\\", f);
        else if (*s == '\n')
            fputs ("\\n", f);
        else if (*s == '"' && quotes)
            fputs ("\\\"", f);
        else
            fputc (*s, f);
    }
}

/* name{daemon="d",labels[,extra]} with the braces left out when empty. */
static void
s_put_series (FILE *f, const char *name, const char *suffix, const char *daemon,
              const char *labels, const char *extra)
{
    fputs (name, f);
    fputs (suffix, f);
    bool any = false;
    if (*daemon || *labels || (extra && *extra))
        fputc ('{', f);
    if (*daemon) {
        fputs ("daemon=\"", f);
        s_put_escaped (f, daemon, true);
        fputc ('"', f);
        any = true;
    }
    if (*labels) {
        if (any)
            fputc (',', f);
        fputs (labels, f);
        any = true;
    }
    if (extra && *extra) {
        if (any)
            fputc (',', f);
        fputs (extra, f);
        any = true;
    }
    if (any)
        fputc ('}', f);
    fputc (' ', f);
}

static void
s_put_metric (FILE *f, const pm_metric_t *x, const char *daemon)
{
    static const struct {
        double q;
        const char *label;
    } qs[] = {
        { 0.5, "quantile=\"0.5\"" },
        { 0.9, "quantile=\"0.9\"" },
        { 0.99, "quantile=\"0.99\"" },
    };
    if (x->kind != PM_HISTOGRAM) {
        s_put_series (f, x->name, "", daemon, x->labels, NULL);
        s_put_value (f, x->value);
        fputc ('\n', f);
        return;
    }
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        s_put_series (f, x->name, "", daemon, x->labels, qs[i].label);
        s_put_value (f, pm_metric_quantile (x, qs[i].q));
        fputc ('\n', f);
    }
    s_put_series (f, x->name, "_sum", daemon, x->labels, NULL);
    s_put_value (f, x->sum);
    fputc ('\n', f);
    s_put_series (f, x->name, "_count", daemon, x->labels, NULL);
    fprintf (f, "%llu\n", (unsigned long long) x->count);
}

/* Metrics sharing a name are written together under one HELP/TYPE (TYPE of
 * the first one created, HELP the first given, else the name), groups in
 * creation order. NULL on OOM. */
char *
pm_metrics_prometheus (pm_metrics_t *m, const char *daemon)
{
    static const char *const types[] = { "counter", "gauge", "summary" };
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream (&out, &len);
    if (!f)
        return NULL;
    if (!daemon)
        daemon = "";
    size_t n = m ? m->n : 0;
    bool *done = pm_xcalloc (n ? n : 1, sizeof *done);
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        const pm_metric_t *x = m->v[i];
        const char *help = NULL;
        for (size_t j = i; j < n && !help; j++)
            if (m->v[j]->help && *m->v[j]->help && strcmp (m->v[j]->name, x->name) == 0)
                help = m->v[j]->help;
        fprintf (f, "# HELP %s ", x->name);
        s_put_escaped (f, help ? help : x->name, false);
        fprintf (f, "\n# TYPE %s %s\n", x->name, types[x->kind]);
        for (size_t j = i; j < n; j++) {
            if (done[j] || strcmp (m->v[j]->name, x->name) != 0)
                continue;
            done[j] = true;
            s_put_metric (f, m->v[j], daemon);
        }
    }
    free (done);
    if (fclose (f) != 0) {
        free (out);
        return NULL;
    }
    return out;
}
