/* test_clock - durations, RFC 3339 time, manual clock. */
#include "support.h"

#include "pm/clock.h"
#include "pm/err.h"

#include <string.h>
#include <time.h>

#define S_DAY_MS ((int64_t) 86400 * 1000)

static int64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_duration_ok (void **state)
{
    static const struct {
        const char *s;
        int64_t ms;
    } cases[] = {
        { "500ms", 500 },
        { "90s", 90 * 1000 },
        { "15m", 15 * 60 * 1000 },
        { "3h", 3 * 3600 * 1000 },
        { "3d", 3 * S_DAY_MS },
        { "1d12h", S_DAY_MS + 12 * 3600 * 1000 },
        { "1h30m15s250ms", 3600 * 1000 + 30 * 60 * 1000 + 15 * 1000 + 250 },
        { "1m1ms", 60 * 1000 + 1 },
        { "0s", 0 },
        { "0ms", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        assert_int_equal (pm_duration_parse (cases[i].s, &ms), PM_OK);
        assert_int_equal (ms, cases[i].ms);
    }
}

static void
test_duration_errors (void **state)
{
    static const char *const bad[] = {
        "", "-5s", "+5s", "5", "5x", "5 s", " 5s", "5s ", "s", "ms", "1.5h", "1h-30m", "1ms5",
        "5S", "9223372036854775808ms", "99999999999999999999s", "106751991168d",
        "9223372036854775807ms1ms",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        int rc = pm_duration_parse (bad[i], &ms);
        if (rc != PM_EINVAL)
            fail_msg ("\"%s\" was accepted", bad[i]);
        assert_int_equal (ms, 42);
    }
    int64_t ms;
    assert_int_equal (pm_duration_parse (NULL, &ms), PM_EINVAL);
    assert_int_equal (pm_duration_parse ("9223372036854775807ms", &ms), PM_OK);
    assert_int_equal (ms, INT64_MAX);
}

static void
test_time_parse_format (void **state)
{
    int64_t ms = 0;
    char buf[32];
    assert_int_equal (pm_time_parse ("2026-12-01T09:00:00Z", &ms), PM_OK);
    assert_int_equal (ms, INT64_C (1796115600000));
    assert_string_equal (pm_time_format (ms, buf, sizeof buf), "2026-12-01T09:00:00.000Z");

    assert_int_equal (pm_time_parse ("2026-12-01T09:00:00.123Z", &ms), PM_OK);
    assert_int_equal (ms, INT64_C (1796115600123));
    assert_string_equal (pm_time_format (ms, buf, sizeof buf), "2026-12-01T09:00:00.123Z");

    assert_int_equal (pm_time_parse ("2026-12-01T09:00:00.5Z", &ms), PM_OK);
    assert_int_equal (ms, INT64_C (1796115600500));

    assert_int_equal (pm_time_parse ("2024-02-29T23:59:59Z", &ms), PM_OK);
    assert_int_equal (ms, INT64_C (1709251199000));

    assert_string_equal (pm_time_format (0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    assert_string_equal (pm_time_format (-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
}

static void
test_time_round_trip (void **state)
{
    static const int64_t values[] = {
        0, 1, 999, 1000, INT64_C (1796115600123), INT64_C (1709251199999), -1000, -1,
        INT64_C (253402300799999),  /* 9999-12-31T23:59:59.999Z */
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char buf[32];
        int64_t back = 0;
        pm_time_format (values[i], buf, sizeof buf);
        assert_int_equal (pm_time_parse (buf, &back), PM_OK);
        assert_int_equal (back, values[i]);
    }
}

static void
test_time_errors (void **state)
{
    static const char *const bad[] = {
        "", "2026-12-01", "2026-12-01T09:00:00", "2026-12-01 09:00:00Z",
        "2026-12-01T09:00:00+08:00", "2026-12-01T09:00:00.Z", "2026-12-01T09:00:00ZZ",
        "2026-13-01T09:00:00Z", "2026-00-01T09:00:00Z", "2026-02-29T09:00:00Z",
        "2026-04-31T09:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T09:60:00Z",
        "2026-12-01T09:00:60Z", "26-12-01T09:00:00Z", "2026-1-01T09:00:00Z",
        "2026-12-01T09:00:00.1234567890Z", "x2026-12-01T09:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (pm_time_parse (bad[i], &ms) != PM_EINVAL)
            fail_msg ("\"%s\" was accepted", bad[i]);
        assert_int_equal (ms, 42);
    }
}

static void
test_wall_clock (void **state)
{
    pm_clock_t *c = pm_clock_new (false);
    assert_non_null (c);
    assert_false (pm_clock_is_manual (c));
    assert_false (pm_clock_manual_allowed (c));
    int64_t before = s_wall_ms ();
    int64_t now = pm_clock_now_ms (c);
    int64_t after = s_wall_ms ();
    assert_true (now >= before && now <= after);
    pm_clock_destroy (&c);
    assert_null (c);
    pm_clock_destroy (&c);
}

static void
test_manual_set_advance (void **state)
{
    pm_clock_t *c = pm_clock_new (true);
    assert_true (pm_clock_manual_allowed (c));
    assert_false (pm_clock_is_manual (c));

    int64_t t0 = INT64_C (1796115600000);
    assert_int_equal (pm_clock_set_ms (c, t0), PM_OK);
    assert_true (pm_clock_is_manual (c));
    assert_int_equal (pm_clock_now_ms (c), t0);
    assert_int_equal (pm_clock_now_ms (c), t0);   /* frozen */

    assert_int_equal (pm_clock_advance_ms (c, 3 * S_DAY_MS), PM_OK);
    assert_int_equal (pm_clock_now_ms (c), t0 + 3 * S_DAY_MS);
    assert_int_equal (pm_clock_advance_ms (c, 0), PM_OK);
    assert_int_equal (pm_clock_now_ms (c), t0 + 3 * S_DAY_MS);

    assert_int_equal (pm_clock_advance_ms (c, -1), PM_EINVAL);
    assert_int_equal (pm_clock_now_ms (c), t0 + 3 * S_DAY_MS);

    /* set may move back */
    assert_int_equal (pm_clock_set_ms (c, t0), PM_OK);
    assert_int_equal (pm_clock_now_ms (c), t0);
    pm_clock_destroy (&c);
}

static void
test_advance_starts_from_wall (void **state)
{
    pm_clock_t *c = pm_clock_new (true);
    int64_t before = s_wall_ms ();
    assert_int_equal (pm_clock_advance_ms (c, 60 * 1000), PM_OK);
    int64_t after = s_wall_ms ();
    assert_true (pm_clock_is_manual (c));
    int64_t now = pm_clock_now_ms (c);
    assert_true (now >= before + 60 * 1000 && now <= after + 60 * 1000);
    pm_clock_destroy (&c);
}

static void
test_manual_refused (void **state)
{
    pm_clock_t *c = pm_clock_new (false);
    assert_int_equal (pm_clock_set_ms (c, INT64_C (1796115600000)), PM_EINVAL);
    assert_int_equal (pm_clock_advance_ms (c, 1000), PM_EINVAL);
    assert_false (pm_clock_is_manual (c));
    int64_t before = s_wall_ms ();
    int64_t now = pm_clock_now_ms (c);
    assert_true (now >= before && now <= s_wall_ms ());
    pm_clock_destroy (&c);
}

static void
test_monotonic (void **state)
{
    int64_t a = pm_mono_ms ();
    int64_t au = pm_mono_us ();
    struct timespec d = { 0, 20 * 1000 * 1000 };
    nanosleep (&d, NULL);
    int64_t b = pm_mono_ms ();
    int64_t bu = pm_mono_us ();
    assert_true (b - a >= 19);
    assert_true (bu - au >= 19000);
    assert_true (bu / 1000 - b <= 1 && b - bu / 1000 <= 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_duration_ok),
        cmocka_unit_test (test_duration_errors),
        cmocka_unit_test (test_time_parse_format),
        cmocka_unit_test (test_time_round_trip),
        cmocka_unit_test (test_time_errors),
        cmocka_unit_test (test_wall_clock),
        cmocka_unit_test (test_manual_set_advance),
        cmocka_unit_test (test_advance_starts_from_wall),
        cmocka_unit_test (test_manual_refused),
        cmocka_unit_test (test_monotonic),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
