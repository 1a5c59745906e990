/* test_metrics - counters, gauges, histograms and the Prometheus text. */
#define _GNU_SOURCE
#include "support.h"

#include "pm/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_setup (void **state)
{
    *state = pm_metrics_new ();
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    pm_metrics_t *m = *state;
    pm_metrics_destroy (&m);
    return 0;
}

static void
s_assert_contains (const char *s, const char *part)
{
    if (!s || !strstr (s, part))
        fail_msg ("\"%s\" does not contain \"%s\"", s ? s : "(null)", part);
}

static size_t
s_occurrences (const char *s, const char *part)
{
    size_t n = 0;
    for (const char *p = strstr (s, part); p; p = strstr (p + 1, part))
        n++;
    return n;
}

static void
test_counter (void **state)
{
    pm_metrics_t *m = *state;
    pm_metric_t *c = pm_metric (m, PM_COUNTER, "pm_requests_total", "method=\"a\"", "Requests");
    assert_non_null (c);
    assert_int_equal (pm_metric_kind (c), PM_COUNTER);
    assert_true (pm_metric_value (c) == 0);
    pm_metric_inc (c, 1);
    pm_metric_inc (c, 2.5);
    assert_true (pm_metric_value (c) == 3.5);
    assert_int_equal (pm_metric_count (c), 2);

    pm_count (m, "pm_requests_total", "method=\"a\"", 1);
    assert_true (pm_metric_value (c) == 4.5);
    pm_count (m, "pm_errors_total", NULL, 3);
    pm_metric_t *e = pm_metric (m, PM_COUNTER, "pm_errors_total", "", NULL);
    assert_true (pm_metric_value (e) == 3);

    /* histogram-only operations leave a counter alone */
    pm_metric_observe (c, 100);
    assert_true (pm_metric_value (c) == 4.5);
    assert_true (pm_metric_quantile (c, 0.5) == 0);

    /* NULL metrics are ignored */
    pm_metric_inc (NULL, 1);
    pm_metric_set (NULL, 1);
    pm_metric_observe (NULL, 1);
}

static void
test_gauge (void **state)
{
    pm_metrics_t *m = *state;
    pm_metric_t *g = pm_metric (m, PM_GAUGE, "pm_queue_depth", "queue=\"sla\"", "Items waiting");
    pm_metric_set (g, 5);
    pm_metric_set (g, 3);
    assert_true (pm_metric_value (g) == 3);
    pm_metric_inc (g, -1);
    assert_true (pm_metric_value (g) == 2);
    pm_gauge (m, "pm_queue_depth", "queue=\"sla\"", "Items waiting", 10);
    assert_true (pm_metric_value (g) == 10);
    assert_int_equal (pm_metric_kind (g), PM_GAUGE);
}

static void
test_histogram (void **state)
{
    pm_metrics_t *m = *state;
    pm_metric_t *h = pm_metric (m, PM_HISTOGRAM, "pm_latency_us", "method=\"x\"", "Latency");
    assert_int_equal (pm_metric_count (h), 0);
    assert_true (pm_metric_quantile (h, 0.5) == 0);

    for (int i = 1; i <= 100; i++)
        pm_metric_observe (h, i);
    assert_int_equal (pm_metric_count (h), 100);
    assert_true (pm_metric_value (h) == 5050);
    /* the 50th value (50) is in bucket (32, 64] */
    assert_true (pm_metric_quantile (h, 0.5) == 64);
    /* the 90th (90) is in (64, 128], capped at the max */
    assert_true (pm_metric_quantile (h, 0.9) == 100);
    assert_true (pm_metric_quantile (h, 0.99) == 100);
    assert_true (pm_metric_quantile (h, 1) == 100);
    /* the first value (1) is in bucket [0, 1] */
    assert_true (pm_metric_quantile (h, 0) == 1);
    assert_true (pm_metric_quantile (h, 0.01) == 1);
    assert_true (pm_metric_quantile (h, 0.02) == 2);
    assert_true (pm_metric_quantile (h, 0.04) == 4);
    assert_true (pm_metric_quantile (h, 0.05) == 8);

    /* powers of two sit at the top of their bucket */
    pm_metric_t *p = pm_metric (m, PM_HISTOGRAM, "pm_pow", NULL, NULL);
    pm_metric_observe (p, 4);
    pm_metric_observe (p, 1000);
    assert_true (pm_metric_quantile (p, 0.5) == 4);
    pm_metric_t *q = pm_metric (m, PM_HISTOGRAM, "pm_pow5", NULL, NULL);
    pm_metric_observe (q, 5);
    pm_metric_observe (q, 1000);
    assert_true (pm_metric_quantile (q, 0.5) == 8);

    /* small values: the bound is capped at the max */
    pm_metric_t *s = pm_metric (m, PM_HISTOGRAM, "pm_small", NULL, NULL);
    pm_metric_observe (s, 0.25);
    pm_metric_observe (s, 0.5);
    assert_true (pm_metric_quantile (s, 0.5) == 0.5);
    assert_true (pm_metric_value (s) == 0.75);

    /* inc / set leave a histogram alone */
    pm_metric_inc (s, 5);
    pm_metric_set (s, 5);
    assert_int_equal (pm_metric_count (s), 2);
    assert_true (pm_metric_value (s) == 0.75);

    /* huge values land in the last bucket */
    pm_metric_t *b = pm_metric (m, PM_HISTOGRAM, "pm_big", NULL, NULL);
    pm_metric_observe (b, 1e300);
    assert_true (pm_metric_quantile (b, 0.5) > 0);
    assert_true (pm_metric_quantile (b, 1) <= 1e300);
}

static void
test_identity (void **state)
{
    pm_metrics_t *m = *state;
    pm_metric_t *a = pm_metric (m, PM_COUNTER, "pm_x_total", "k=\"1\"", NULL);
    pm_metric_t *b = pm_metric (m, PM_COUNTER, "pm_x_total", "k=\"2\"", NULL);
    pm_metric_t *c = pm_metric (m, PM_COUNTER, "pm_y_total", "k=\"1\"", NULL);
    pm_metric_t *n1 = pm_metric (m, PM_COUNTER, "pm_x_total", NULL, NULL);
    pm_metric_t *n2 = pm_metric (m, PM_COUNTER, "pm_x_total", "", NULL);
    assert_ptr_not_equal (a, b);
    assert_ptr_not_equal (a, c);
    assert_ptr_not_equal (a, n1);
    assert_ptr_equal (n1, n2);
    assert_ptr_equal (pm_metric (m, PM_COUNTER, "pm_x_total", "k=\"1\"", "late help"), a);
    assert_string_equal (pm_metric_help (a), "late help");
    assert_string_equal (pm_metric_name (a), "pm_x_total");
    assert_string_equal (pm_metric_labels (a), "k=\"1\"");
    assert_string_equal (pm_metric_labels (n1), "");

    /* creation order */
    assert_ptr_equal (pm_metrics_at (m, 0), a);
    assert_ptr_equal (pm_metrics_at (m, 1), b);
    assert_ptr_equal (pm_metrics_at (m, 2), c);
    assert_ptr_equal (pm_metrics_at (m, 3), n1);
    assert_null (pm_metrics_at (m, 4));

    /* many metrics: all distinct, all found again, pointers stable */
    pm_metric_t *v[600];
    for (int i = 0; i < 600; i++) {
        char labels[32];
        snprintf (labels, sizeof labels, "i=\"%d\"", i);
        v[i] = pm_metric (m, i % 3, "pm_many", labels, NULL);
        assert_non_null (v[i]);
        pm_metric_set (v[i], i);
    }
    for (int i = 0; i < 600; i++) {
        char labels[32];
        snprintf (labels, sizeof labels, "i=\"%d\"", i);
        assert_ptr_equal (pm_metric (m, i % 3, "pm_many", labels, NULL), v[i]);
        assert_ptr_equal (pm_metrics_at (m, 4 + (size_t) i), v[i]);
    }
    assert_ptr_equal (pm_metric (m, PM_COUNTER, "pm_x_total", "k=\"1\"", NULL), a);
}

static void
test_prometheus (void **state)
{
    pm_metrics_t *m = *state;
    pm_metric_t *r1 = pm_metric (m, PM_COUNTER, "pm_requests_total", "method=\"intake.import\"",
                                 "Requests handled");
    pm_metric_t *g = pm_metric (m, PM_GAUGE, "pm_queue_depth", NULL, "Items waiting");
    pm_metric_t *r2 = pm_metric (m, PM_COUNTER, "pm_requests_total", "method=\"ops.ping\"", NULL);
    pm_metric_t *h = pm_metric (m, PM_HISTOGRAM, "pm_latency_us", "method=\"intake.import\"",
                                "Handler latency");
    pm_metric_inc (r1, 3);
    pm_metric_inc (r2, 1);
    pm_metric_set (g, 7);
    for (int i = 1; i <= 100; i++)
        pm_metric_observe (h, i);
    pm_metric_t *f = pm_metric (m, PM_GAUGE, "pm_ratio", "", "Fraction\nwith \\ newline");
    pm_metric_set (f, 0.25);

    char *text = pm_metrics_prometheus (m, "intake");
    assert_non_null (text);
    s_assert_contains (text, "# HELP pm_requests_total Requests handled\n"
                             "# TYPE pm_requests_total counter\n");
    s_assert_contains (text, "\npm_requests_total{daemon=\"intake\",method=\"intake.import\"} 3\n");
    s_assert_contains (text, "\npm_requests_total{daemon=\"intake\",method=\"ops.ping\"} 1\n");
    assert_int_equal (s_occurrences (text, "# HELP pm_requests_total "), 1);
    assert_int_equal (s_occurrences (text, "# TYPE pm_requests_total "), 1);

    s_assert_contains (text, "# TYPE pm_queue_depth gauge\n");
    s_assert_contains (text, "\npm_queue_depth{daemon=\"intake\"} 7\n");

    s_assert_contains (text, "# HELP pm_latency_us Handler latency\n# TYPE pm_latency_us summary\n");
    s_assert_contains (text, "\npm_latency_us{daemon=\"intake\",method=\"intake.import\",quantile=\"0.5\"} 64\n");
    s_assert_contains (text, "\npm_latency_us{daemon=\"intake\",method=\"intake.import\",quantile=\"0.9\"} 100\n");
    s_assert_contains (text, "\npm_latency_us{daemon=\"intake\",method=\"intake.import\",quantile=\"0.99\"} 100\n");
    s_assert_contains (text, "\npm_latency_us_sum{daemon=\"intake\",method=\"intake.import\"} 5050\n");
    s_assert_contains (text, "\npm_latency_us_count{daemon=\"intake\",method=\"intake.import\"} 100\n");

    s_assert_contains (text, "# HELP pm_ratio Fraction\\nwith \\\\ newline\n");
    s_assert_contains (text, "\npm_ratio{daemon=\"intake\"} 0.25\n");

    /* a name's series are grouped under its header */
    const char *hdr = strstr (text, "# TYPE pm_requests_total");
    const char *s2 = strstr (text, "method=\"ops.ping\"");
    const char *next = strstr (text, "# HELP pm_queue_depth");
    assert_true (hdr < s2 && s2 < next);
    assert_int_equal (text[strlen (text) - 1], '\n');
    free (text);

    /* empty registry: empty text */
    pm_metrics_t *empty = pm_metrics_new ();
    text = pm_metrics_prometheus (empty, "x");
    assert_non_null (text);
    assert_string_equal (text, "");
    free (text);
    pm_metrics_destroy (&empty);
    assert_null (empty);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_counter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_gauge, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_histogram, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_identity, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_prometheus, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
