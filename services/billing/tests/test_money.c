/* test_money - fee arithmetic and the rounding rule, amounts as people type
 * them, amounts in words, the estate's calendar, the ladder's config and
 * document numbers: the pure functions every invoice depends on. */
#include "billing_test.h"

static void
test_half_up_rounds_half_away_from_zero_once (void **state)
{
    assert_int_equal (billing_round_half_up (5, 10), 1);   /* 0.5 up */
    assert_int_equal (billing_round_half_up (4, 10), 0);
    assert_int_equal (billing_round_half_up (15, 10), 2);  /* 1.5 up */
    assert_int_equal (billing_round_half_up (25, 10), 3);  /* 2.5 up, where banker's rounding gives 2 */
    assert_int_equal (billing_round_half_up (14999, 10000), 1);
    assert_int_equal (billing_round_half_up (0, 7), 0);
    assert_int_equal (billing_round_half_up (7, 3), 2);    /* 2.33 */
    assert_int_equal (billing_round_half_up (8, 3), 3);    /* 2.67 */
}

static void
test_line_is_exact_then_rounded_once (void **state)
{
    /* 89.53 m2 x 2.85 元 x 12 months = 3061.926 元: 306193 fen (up) */
    assert_int_equal (billing_line_fen (8953, 100, 285, 12, 1), 306193);
    /* 89.51 m2 x 2.85 x 12 = 3061.242 元: 306124 fen (down) */
    assert_int_equal (billing_line_fen (8951, 100, 285, 12, 1), 306124);
    /* 89.50 m2 x 2.83 = 253.285 元 a month: half-up gives 25329 (half-even would give 25328) */
    assert_int_equal (billing_line_fen (8950, 100, 283, 1, 1), 25329);
    /* ... but twelve months are one line, rounded once: 3039.42 元 exactly, not 12 x 253.29 */
    assert_int_equal (billing_line_fen (8950, 100, 283, 12, 1), 303942);
    assert_true (billing_line_fen (8950, 100, 283, 12, 1) != 12 * billing_line_fen (8950, 100, 283, 1, 1));
    /* a first month of 22 days out of 31: 89.50 x 2.80 x 22/31 = 177.845 元 -> 17785 fen */
    assert_int_equal (billing_line_fen (8950, 100, 280, 22, 31), 17785);
    /* parking: 2 spaces x 150.00 x 12 */
    assert_int_equal (billing_line_fen (2, 1, 15000, 12, 1), 360000);
    /* overflow is refused, not wrapped */
    assert_int_equal (billing_line_fen (INT64_MAX / 2, 1, 1000, 1000, 1), -1);
    assert_int_equal (billing_line_fen (1, 0, 1, 1, 1), -1);
}

static void
test_yuan_as_people_write_it (void **state)
{
    int64_t fen = -1;
    const char *why = NULL;
    assert_true (billing_yuan_parse ("3240", false, &fen, &why));
    assert_int_equal (fen, 324000);
    assert_true (billing_yuan_parse ("3240.5", false, &fen, &why));
    assert_int_equal (fen, 324050);
    assert_true (billing_yuan_parse ("3,240.05", false, &fen, &why));
    assert_int_equal (fen, 324005);
    assert_true (billing_yuan_parse (" ¥1,234,567.89 ", false, &fen, &why));
    assert_int_equal (fen, 123456789);
    assert_true (billing_yuan_parse ("0.01", false, &fen, &why));
    assert_int_equal (fen, 1);
    assert_true (billing_yuan_parse ("0", true, &fen, &why));
    assert_int_equal (fen, 0);

    assert_false (billing_yuan_parse ("12.345", false, &fen, &why));
    assert_non_null (strstr (why, "more than two decimals"));
    assert_false (billing_yuan_parse ("0", false, &fen, &why));
    assert_non_null (strstr (why, "zero"));
    assert_false (billing_yuan_parse ("0.00", false, &fen, &why));
    assert_false (billing_yuan_parse ("-5.00", false, &fen, &why));
    assert_non_null (strstr (why, "negative"));
    assert_false (billing_yuan_parse ("", false, &fen, &why));
    assert_non_null (strstr (why, "missing"));
    assert_false (billing_yuan_parse ("12,34.00", false, &fen, &why));
    assert_non_null (strstr (why, "comma"));
    assert_false (billing_yuan_parse ("1.2.3", false, &fen, &why));
    assert_false (billing_yuan_parse ("12元", false, &fen, &why));
    assert_false (billing_yuan_parse ("1e5", false, &fen, &why));
    assert_false (billing_yuan_parse ("99999999999999999999", false, &fen, &why));

    assert_true (billing_fen_parse ("324000", &fen, &why));
    assert_int_equal (fen, 324000);
    assert_false (billing_fen_parse ("3240.00", &fen, &why));
    assert_non_null (strstr (why, "whole fen"));
    assert_false (billing_fen_parse ("0", &fen, &why));
    assert_false (billing_fen_parse ("-1", &fen, &why));
    assert_false (billing_fen_parse ("", &fen, &why));
}

static void
test_amounts_shown_to_the_fen (void **state)
{
    char buf[48];
    assert_string_equal (billing_yuan_fmt (324000, buf, sizeof buf), "3,240.00");
    assert_string_equal (billing_yuan_fmt (5, buf, sizeof buf), "0.05");
    assert_string_equal (billing_yuan_fmt (-150, buf, sizeof buf), "-1.50");
    assert_string_equal (billing_yuan_fmt (100000000, buf, sizeof buf), "1,000,000.00");
    assert_string_equal (billing_yuan_fmt (99999, buf, sizeof buf), "999.99");
    assert_string_equal (billing_area_fmt (8950, buf, sizeof buf), "89.50");
}

static void
test_amounts_in_chinese_capitals (void **state)
{
    char buf[256];
    assert_string_equal (billing_amount_words (0, buf, sizeof buf), "人民币零元整");
    assert_string_equal (billing_amount_words (324000, buf, sizeof buf), "人民币叁仟贰佰肆拾元整");
    assert_string_equal (billing_amount_words (123405, buf, sizeof buf), "人民币壹仟贰佰叁拾肆元零伍分");
    assert_string_equal (billing_amount_words (168032, buf, sizeof buf), "人民币壹仟陆佰捌拾元叁角贰分");
    assert_string_equal (billing_amount_words (50, buf, sizeof buf), "人民币伍角");
    assert_string_equal (billing_amount_words (1000100, buf, sizeof buf), "人民币壹万零壹元整");
    assert_string_equal (billing_amount_words (10100000, buf, sizeof buf), "人民币壹拾万零壹仟元整");
    assert_string_equal (billing_amount_words (11100000, buf, sizeof buf), "人民币壹拾壹万壹仟元整");
    assert_string_equal (billing_amount_words (10000000010LL, buf, sizeof buf), "人民币壹亿元壹角");
    assert_string_equal (billing_amount_words (10000000100LL, buf, sizeof buf), "人民币壹亿零壹元整");
    assert_string_equal (billing_amount_words (100500, buf, sizeof buf), "人民币壹仟零伍元整");
    assert_string_equal (billing_amount_words (1253373, buf, sizeof buf), "人民币壹万贰仟伍佰叁拾叁元柒角叁分");
}

static void
test_the_estates_calendar (void **state)
{
    billing_t b = { .utc_offset_ms = 8 * 3600 * 1000LL };
    assert_int_equal (billing_days_from_civil (1970, 1, 1), 0);
    int y, m, d;
    for (int64_t days = -1000; days < 30000; days += 17) {
        billing_civil_from_days (days, &y, &m, &d);
        assert_int_equal (billing_days_from_civil (y, m, d), days);
    }
    assert_int_equal (billing_days_in_month (2028, 2), 29);
    assert_int_equal (billing_days_in_month (2100, 2), 28);
    assert_int_equal (billing_days_in_month (2026, 12), 31);
    /* local midnight of 2026-12-01 is 16:00 UTC the day before */
    int64_t t;
    assert_int_equal (pm_time_parse ("2026-11-30T16:00:00Z", &t), PM_OK);
    assert_int_equal (billing_local_ms (&b, 2026, 12, 1), t);
    billing_local_date (&b, t, &y, &m, &d);
    assert_int_equal (y * 10000 + m * 100 + d, 20261201);
    billing_local_date (&b, t - 1, &y, &m, &d);
    assert_int_equal (y * 10000 + m * 100 + d, 20261130);

    /* payment times as banks and cashiers write them (estate time unless marked) */
    int64_t want;
    assert_int_equal (pm_time_parse ("2026-12-20T02:15:00Z", &want), PM_OK);
    assert_true (billing_time_parse (&b, "2026-12-20 10:15", &t));
    assert_true (t == want);
    assert_true (billing_time_parse (&b, "2026/12/20 10:15:00", &t));
    assert_true (t == want);
    assert_true (billing_time_parse (&b, "20261220101500", &t));
    assert_true (t == want);
    assert_true (billing_time_parse (&b, "2026-12-20T02:15:00Z", &t));
    assert_true (t == want);
    assert_true (billing_time_parse (&b, "2026-12-20T10:15:00+08:00", &t));
    assert_true (t == want);
    assert_true (billing_time_parse (&b, "2026-12-20", &t));
    assert_true (t == billing_local_ms (&b, 2026, 12, 20));
    assert_false (billing_time_parse (&b, "2026-13-01", &t));
    assert_false (billing_time_parse (&b, "2026-02-30 10:00", &t));
    assert_false (billing_time_parse (&b, "20.12.2026", &t));
    assert_false (billing_time_parse (&b, "2026-12-20 25:00", &t));

    assert_true (billing_period_parse ("2026-12", &y, &m));
    assert_int_equal (billing_month_index (y, m), 2026 * 12 + 11);
    assert_false (billing_period_parse ("2026-13", &y, &m));
    assert_false (billing_period_parse ("2026-1", &y, &m));
    char buf[16];
    assert_string_equal (billing_period_fmt (billing_month_index (2026, 12) + 1, buf, sizeof buf), "2027-01");
    assert_true (billing_date_parse ("2028-02-29", &y, &m, &d));
    assert_false (billing_date_parse ("2027-02-29", &y, &m, &d));
}

static void
test_ladder_config (void **state)
{
    billing_step_t steps[BILLING_MAX_STEPS];
    uint32_t n;
    char why[160];
    assert_true (billing_ladder_parse ("T-7:message, T+3:call, T+7:visit, T+15:letter, T+30:escalation", steps, &n, why,
                                       sizeof why));
    assert_int_equal (n, 5);
    assert_string_equal (steps[0].label, "T-7");
    assert_int_equal (steps[0].days, -7);
    assert_int_equal (steps[0].action, BILLING_ACT_MESSAGE);
    assert_string_equal (steps[4].label, "T+30");
    assert_int_equal (steps[4].action, BILLING_ACT_ESCALATION);
    assert_false (billing_ladder_parse ("T+3:call, T-7:message", steps, &n, why, sizeof why));
    assert_non_null (strstr (why, "time order"));
    assert_false (billing_ladder_parse ("T+3:fly", steps, &n, why, sizeof why));
    assert_non_null (strstr (why, "unknown action"));
    assert_false (billing_ladder_parse ("3:call", steps, &n, why, sizeof why));
    assert_false (billing_ladder_parse ("", steps, &n, why, sizeof why));
}

static void
test_document_numbers (void **state)
{
    char estate[64];
    uint64_t no;
    assert_true (billing_doc_parse ("INV-E01-000123", "INV", estate, sizeof estate, &no));
    assert_string_equal (estate, "E01");
    assert_int_equal (no, 123);
    assert_true (billing_doc_parse ("INV-NORTH-PARK-1234567", "INV", estate, sizeof estate, &no));
    assert_string_equal (estate, "NORTH-PARK");
    assert_int_equal (no, 1234567);
    assert_false (billing_doc_parse ("PAY-E01-000001", "INV", estate, sizeof estate, &no));
    assert_false (billing_doc_parse ("INV-E01-", "INV", estate, sizeof estate, &no));
    assert_false (billing_doc_parse ("INV-E01-12a", "INV", estate, sizeof estate, &no));
    assert_false (billing_doc_parse ("INV-000001", "INV", estate, sizeof estate, &no));
    assert_false (billing_doc_parse ("INV-E01-000000", "INV", estate, sizeof estate, &no));
}

int
main (void)
{
    pm_log_init ("test_money", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_half_up_rounds_half_away_from_zero_once),
        cmocka_unit_test (test_line_is_exact_then_rounded_once),
        cmocka_unit_test (test_yuan_as_people_write_it),
        cmocka_unit_test (test_amounts_shown_to_the_fen),
        cmocka_unit_test (test_amounts_in_chinese_capitals),
        cmocka_unit_test (test_the_estates_calendar),
        cmocka_unit_test (test_ladder_config),
        cmocka_unit_test (test_document_numbers),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
