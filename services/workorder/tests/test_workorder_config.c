/* test_config - workorder's files and calendar: the built-in files load; a
 * wrong value is reported with the file, the line and what is expected, and
 * stops the start; durations, dates and owners' windows parse as people
 * write them. */
#include "wo_test.h"

static char *
s_parse (int (*parse) (workorder_t *, const char *, const char *, size_t, char **), workorder_t *wo, const char *text)
{
    char *err = NULL;
    int rc = parse (wo, "x.csv", text, strlen (text), &err);
    if (rc == PM_OK)
        assert_null (err);
    else
        assert_non_null (err);
    return err;
}

static void
s_expect_error (int (*parse) (workorder_t *, const char *, const char *, size_t, char **), const char *text,
                const char *want)
{
    workorder_t wo = { 0 };
    wo.utc_offset_ms = 8 * WT_HOUR;
    if (parse != wo_categories_parse) { /* staff need the skills of the categories */
        char *e = s_parse (wo_categories_parse, &wo,
                           "category,name,kind,respond,complete\n"
                           "water,给排水,repair,30m,24h\ncomplaint,投诉,complaint,24h,7d\ndefect,整改,defect,24h,\n");
        assert_null (e);
    }
    char *err = s_parse (parse, &wo, text);
    if (!err || !strstr (err, want))
        fail_msg ("expected an error with '%s', got '%s'", want, err ? err : "(none)");
    free (err);
    wo_files_free (&wo);
}

static void
test_files_name_file_line_and_what_is_wrong (void **state)
{
    (void) state;
    s_expect_error (wo_categories_parse,
                    "category,name,kind,respond,complete\nwater,给排水,repair,30m,24h\nfloor,地面,repair,30x,3d\n",
                    "x.csv:3: respond '30x': not a duration");
    s_expect_error (wo_categories_parse, "category,name,kind,complete\n", "x.csv:1: no column 'respond'");
    s_expect_error (wo_categories_parse, "category,name,kind,respond,complete\nwater,给排水,fix,30m,24h\n",
                    "x.csv:2: kind 'fix': expected repair, complaint or defect");
    s_expect_error (wo_categories_parse, "category,name,kind,respond,complete\nwater,给排水,repair,30m,\n",
                    "x.csv:2: complete: empty");
    s_expect_error (wo_categories_parse,
                    "category,name,kind,respond,complete\nwater,给排水,repair,30m,24h\nwater,水,repair,1h,2h\n",
                    "x.csv:3: category 'water' is defined twice (first on line 2)");
    s_expect_error (wo_categories_parse, "category,name,kind,respond,complete\nwater,给排水,repair,30m,24h\n",
                    "needs at least one category of each kind");
    s_expect_error (wo_categories_parse, "", "x.csv:1: empty");
    s_expect_error (wo_staff_parse,
                    "technician,name,team,estates,skills\nT01,王,A,E01,water\nT02,李,A,E01,plumbing\n",
                    "x.csv:3: skills 'plumbing': no category needs it; known skills: water, complaint, defect");
    s_expect_error (wo_staff_parse, "technician,name,team,estates,skills,on_shift\nT01,王,A,E01,water,maybe\n",
                    "x.csv:2: on_shift 'maybe': expected yes or no");
    s_expect_error (wo_staff_parse, "technician,name,team,estates,skills\nT01,王,A,,water\n",
                    "x.csv:2: estates: empty");
    s_expect_error (wo_staff_parse, "technician,name,team,estates,skills\nT 1,王,A,E01,water\n",
                    "x.csv:2: technician 'T 1'");
    s_expect_error (wo_staff_parse, "technician,name,team,estates,skills\n\"T01,王,A,E01,water\n", "x.csv:2:");
    s_expect_error (wo_estates_parse, "estate_id,dispatch\nE01,auto\nE02,robot\n",
                    "x.csv:3: dispatch 'robot': expected manual, auto or claim");
}

static void
test_built_in_files_load (void **state)
{
    wt_t *t = wt_new (NULL);
    workorder_t *wo = pm_daemon_app (wt_d (t));
    assert_int_equal (wo->ncats, 7);
    assert_int_equal (wo->nstaff, 12);
    assert_int_equal (wo->nestates, 2);
    assert_string_equal (wo_defect_skill (wo, "电气"), "electric");
    assert_string_equal (wo_defect_skill (wo, "燃气"), "electric");
    assert_string_equal (wo_defect_skill (wo, "门窗"), "civil");
    assert_string_equal (wo_defect_skill (wo, "未知"), "civil"); /* the defect category's own skill */
    assert_int_equal (pmt_metric (wt_d (t), "workorder_technicians", ""), 12);
    wt_free (&t);
    (void) state;
}

static void
test_a_bad_file_stops_the_start_and_says_where (void **state)
{
    (void) state;
    char *dir = pmt_tmpdir ();
    char path[256], extra[512];
    snprintf (path, sizeof path, "%s/categories.csv", dir);
    FILE *f = fopen (path, "w");
    fputs ("category,name,kind,respond,complete\nwater,给排水,repair,half an hour,24h\n", f);
    fclose (f);
    snprintf (extra, sizeof extra, "[workorder]\ncategories = %s\n", path);
    const char *names[] = { "workorder", "intake", "inspection", NULL };
    char *text = pmt_config (dir, names, extra), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    assert_non_null (cfg);
    pmt_log_start ();
    pm_daemon_t *d = pm_daemon_new (&workorder_spec, cfg, NULL);
    assert_null (d);
    char want[300];
    snprintf (want, sizeof want, "%s:2: respond 'half an hour': not a duration", path);
    assert_true (pmt_log_has (want));
    pmt_log_stop ();
    pmt_rmdir (dir);
}

static void
test_durations_dates_and_windows (void **state)
{
    (void) state;
    workorder_t wo = { .utc_offset_ms = 8 * WT_HOUR };
    wo_dur_t d;
    assert_true (wo_dur_parse ("30m", &d) && d.ms == 30 * WT_MIN && d.days == 0);
    assert_true (wo_dur_parse ("3d", &d) && d.days == 3 && d.ms == 0);
    assert_true (wo_dur_parse ("1d12h", &d) && d.ms == 36 * WT_HOUR);
    assert_true (wo_dur_parse ("", &d) && d.ms == 0 && d.days == 0);
    assert_false (wo_dur_parse ("0d", &d));
    assert_false (wo_dur_parse ("soon", &d));
    int64_t day;
    assert_true (wo_date_parse ("2026-12-01", &day));
    assert_true (wo_day_start (&wo, day) == WT_T0_MS - 9 * WT_HOUR); /* 00:00 local = 16:00 UTC the day before */
    assert_true (wo_day (&wo, WT_T0_MS) == day);
    assert_true (wo_day (&wo, WT_T0_MS + 15 * WT_HOUR - 1) == day);
    assert_true (wo_day (&wo, WT_T0_MS + 15 * WT_HOUR) == day + 1);
    assert_false (wo_date_parse ("2026-02-30", &day));
    assert_false (wo_date_parse ("2026-12-1", &day));
    int64_t a, b;
    assert_true (wo_window_parse (&wo, "2026-12-01 14:00-18:00", &a, &b));
    assert_true (a == WT_T0_MS + 5 * WT_HOUR && b == WT_T0_MS + 9 * WT_HOUR);
    assert_true (wo_window_parse (&wo, "2026-12-01 22:00-02:00", &a, &b) && b - a == 4 * WT_HOUR);
    assert_false (wo_window_parse (&wo, "2026-12-01 14:00", &a, &b));
    assert_false (wo_window_parse (&wo, "2026-12-01 25:00-26:00", &a, &b));
    pm_arena_t *ar = pm_arena_new ();
    assert_string_equal (wo_local_time (ar, &wo, WT_T0_MS), "2026-12-01 09:00");
    pm_arena_destroy (&ar);
}

int
main (void)
{
    pm_log_init ("test_config", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_files_name_file_line_and_what_is_wrong),
        cmocka_unit_test (test_built_in_files_load),
        cmocka_unit_test (test_a_bad_file_stops_the_start_and_says_where),
        cmocka_unit_test (test_durations_dates_and_windows),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
