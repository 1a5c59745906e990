/* pm/metrics.h - counters, gauges and latency histograms, in memory.
 *
 * A metric is a name plus a rendered label set ("method=\"intake.import\"").
 * Looking one up creates it; the pointer stays valid for the registry's life,
 * so hot paths look up once and keep it. Histograms have log2 buckets and
 * report p50/p90/p99/max. Exposed through ops.metrics and Prometheus text. */
#ifndef PM_METRICS_H
#define PM_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pm_metrics pm_metrics_t;
typedef struct pm_metric pm_metric_t;

enum pm_metric_kind { PM_COUNTER = 0, PM_GAUGE = 1, PM_HISTOGRAM = 2 };

pm_metrics_t *pm_metrics_new (void);
void pm_metrics_destroy (pm_metrics_t **p);

/* Finds or creates; labels may be NULL or "". help is borrowed (static text). */
pm_metric_t *pm_metric (pm_metrics_t *m, int kind, const char *name, const char *labels,
                        const char *help);
void pm_metric_inc (pm_metric_t *x, double by);
void pm_metric_set (pm_metric_t *x, double v);
void pm_metric_observe (pm_metric_t *x, double v);
double pm_metric_value (const pm_metric_t *x);
uint64_t pm_metric_count (const pm_metric_t *x);
/* Histogram quantile (q in 0..1), an upper bound from the buckets. */
double pm_metric_quantile (const pm_metric_t *x, double q);

/* Shortcuts: find-or-create then act. */
void pm_count (pm_metrics_t *m, const char *name, const char *labels, double by);
void pm_gauge (pm_metrics_t *m, const char *name, const char *labels, const char *help, double v);

/* Iterates in creation order; returns NULL at the end. */
pm_metric_t *pm_metrics_at (pm_metrics_t *m, size_t i);
const char *pm_metric_name (const pm_metric_t *x);
const char *pm_metric_labels (const pm_metric_t *x);
const char *pm_metric_help (const pm_metric_t *x);
int pm_metric_kind (const pm_metric_t *x);

/* Prometheus text exposition, with "daemon" label added. Caller frees. */
char *pm_metrics_prometheus (pm_metrics_t *m, const char *daemon);

#endif
