/* test_templates - checklists: the built-in default, a file named in the
 * config (its errors name the file and the line, and stop the start), an
 * estate's own checklist set by inspection.template.set (items or CSV), and a
 * round keeping the checklist it started with. */
#include "insp_test.h"

#include "pm/mem.h"

#include <unistd.h>

#define U1 "E01/3/2-301"
#define U2 "E02/1/1-101"

/* Writes text to a new file in the fixture's dir; returns its path (malloc'd). */
static char *
s_file (const char *dir, const char *name, const char *text)
{
    char *path = pm_xasprintf ("%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
    return path;
}

/* Tries to start inspection with extra config; returns whether it started. */
static bool
s_starts (const char *dir, const char *extra)
{
    const char *names[] = { "inspection", "intake", "workorder", NULL };
    char *text = pmt_config (dir, names, extra), *err = NULL;
    pm_config_t *cfg = pm_config_load_string (text, "test.conf", &err);
    free (text);
    assert_non_null (cfg);
    pm_daemon_t *d = pm_daemon_new (&inspection_spec, cfg, NULL);
    bool ok = d != NULL;
    pm_daemon_destroy (&d);
    return ok;
}

static void
test_the_default_checklist_is_built_in (void **state)
{
    Pm__V1__InspectionTemplateGetRequest b = PM__V1__INSPECTION_TEMPLATE_GET_REQUEST__INIT;
    b.estate_id = "E01";
    Pm__V1__Reply *r = t_call ("inspection.template.get", &b.base, PM__V1__STATUS__OK);
    Pm__V1__InspectionTemplateGetReply *t = r->inspection_template_get;
    assert_int_equal (t->n_items, 35);
    assert_non_null (strstr (t->source, "deploy/inspection/checklist.csv"));
    assert_non_null (strstr (r->message, "客厅, 餐厅, 卧室, 厨房, 卫生间, 阳台"));
    /* every category is one of the nine, every line has what to check */
    for (size_t i = 0; i < t->n_items; i++) {
        bool known = false;
        for (size_t c = 0; c < inspection_ncategories; c++)
            known |= strcmp (t->items[i]->category, inspection_categories[c]) == 0;
        assert_true (known);
        assert_true (*t->items[i]->check);
    }
    assert_string_equal (t->items[0]->room, "入户门厅");
    assert_string_equal (t->items[0]->category, "门窗");
}

static void
test_file_errors_name_the_file_and_the_line (void **state)
{
    char *dir = pmt_tmpdir ();
    char *bad = s_file (dir, "bad.csv",
                        "room,category,check\n"
                        "客厅,地面,平整\n"
                        "客厅,燃起,typo\n"
                        "厨房,,\n"
                        "客厅,地面,again\n"
                        "\"broken,地面\n");
    char *extra = pm_xasprintf ("[inspection]\nchecklist = %s\n", bad);
    pmt_log_start ();
    assert_false (s_starts (dir, extra));
    char *want = pm_xasprintf ("%s:3: category '燃起' is not one of 墙面/天花", bad);
    assert_true (pmt_log_has (want));
    free (want);
    want = pm_xasprintf ("%s:4: category is empty", bad);
    assert_true (pmt_log_has (want));
    free (want);
    want = pm_xasprintf ("%s:5: 客厅 / 地面 is already on line 2", bad);
    assert_true (pmt_log_has (want));
    free (want);
    free (extra);

    /* no header, a missing file, an empty file */
    char *noheader = s_file (dir, "noheader.csv", "客厅,地面\n");
    extra = pm_xasprintf ("[inspection]\nchecklist = %s\n", noheader);
    assert_false (s_starts (dir, extra));
    want = pm_xasprintf ("%s:1: the header names no room column", noheader);
    assert_true (pmt_log_has (want));
    free (want);
    free (extra);
    extra = pm_xasprintf ("[inspection]\nchecklist = %s/missing.csv\n", dir);
    assert_false (s_starts (dir, extra));
    assert_true (pmt_log_has ("[inspection] checklist"));
    assert_true (pmt_log_has ("missing.csv: No such file"));
    free (extra);
    char *empty = s_file (dir, "empty.csv", "");
    extra = pm_xasprintf ("[inspection]\nchecklist = %s\n", empty);
    assert_false (s_starts (dir, extra));
    assert_true (pmt_log_has ("empty.csv: empty"));
    free (extra);
    /* a bad deadline names its key */
    assert_false (s_starts (dir, "[inspection]\ndeadline_major = soon\n"));
    assert_true (pmt_log_has ("[inspection] deadline_major = 'soon'"));
    pmt_log_stop ();
    free (bad);
    free (noheader);
    free (empty);
    pmt_rmdir (dir);
}

static void
test_a_checklist_file_from_the_config (void **state)
{
    t_teardown (state);
    char *dir = pmt_tmpdir ();
    char *path = s_file (dir, "small.csv",
                         "\xEF\xBB\xBF房间,类别,检查要点,备注\r\n"
                         "书房, 地面 ,平整,extra column\r\n"
                         "书房,\"墙面/天花\",\"无裂缝, 无渗水\",\r\n");
    char *extra = pm_xasprintf ("[inspection]\nchecklist = %s\n", path);
    t_setup_with (state, extra);
    t_checked_in (U1);
    Pm__V1__Reply *r = t_start (U1, false, PM__V1__STATUS__OK);
    Pm__V1__InspectionRoundStartReply *s = r->inspection_round_start;
    assert_int_equal (s->n_items, 2);
    assert_string_equal (s->items[0]->room, "书房");
    assert_string_equal (s->items[0]->category, "地面");
    assert_string_equal (s->items[1]->check, "无裂缝, 无渗水");
    free (extra);
    free (path);
    pmt_rmdir (dir);
}

static void
test_an_estate_gets_its_own_checklist (void **state)
{
    t_checked_in (U1);
    t_checked_in (U2);
    Pm__V1__InspectionTemplateSetRequest b = PM__V1__INSPECTION_TEMPLATE_SET_REQUEST__INIT;
    Pm__V1__ChecklistItem i1 = PM__V1__CHECKLIST_ITEM__INIT, i2 = PM__V1__CHECKLIST_ITEM__INIT,
                          i3 = PM__V1__CHECKLIST_ITEM__INIT;
    i1.room = "主卧";
    i1.category = "门窗";
    i2.room = "主卧";
    i2.category = "地板";
    i3.room = "主卧";
    i3.category = "门窗";
    Pm__V1__ChecklistItem *items[] = { &i1, &i2, &i3 };
    b.estate_id = "E02";
    b.items = items;
    b.n_items = 3;
    Pm__V1__Reply *r = t_call ("inspection.template.set", &b.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "items[1]: category '地板' is not one of"));
    assert_non_null (strstr (r->message, "items[2]: 主卧 / 门窗 is already items[0]"));
    b.n_items = 0;
    r = t_call ("inspection.template.set", &b.base, PM__V1__STATUS__INVALID);
    b.csv = "room,category\n主卧,门窗\n主卧,天花\n";
    r = t_call ("inspection.template.set", &b.base, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "csv:3: category '天花'"));
    /* refused: nothing changed */
    Pm__V1__InspectionTemplateGetRequest get = PM__V1__INSPECTION_TEMPLATE_GET_REQUEST__INIT;
    get.estate_id = "E02";
    assert_int_equal (t_call ("inspection.template.get", &get.base, PM__V1__STATUS__OK)->inspection_template_get->n_items,
                      35);

    /* E01's round 1 starts on the default before E02 changes */
    t_start (U1, false, PM__V1__STATUS__OK);
    b.csv = "room,category,check\n主卧,门窗,开关顺畅\n主卧,墙面/天花,无裂缝\n厨房,燃气,无泄漏\n";
    r = t_call ("inspection.template.set", &b.base, PM__V1__STATUS__OK);
    assert_int_equal (r->inspection_template_set->items, 3);
    assert_int_equal (r->inspection_template_set->rooms, 2);
    Pm__V1__InspectionTemplateGetReply *t = t_call ("inspection.template.get", &get.base, PM__V1__STATUS__OK)
                                                ->inspection_template_get;
    assert_int_equal (t->n_items, 3);
    assert_non_null (strstr (t->source, "set by test"));
    r = t_start (U2, false, PM__V1__STATUS__OK);
    assert_int_equal (r->inspection_round_start->n_items, 3);
    r = t_defect_sev (U2, "客厅", "地面", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "主卧, 厨房"));
    t_defect (U2, "主卧", "门窗");
    t_all_ok (U2, PM__V1__STATUS__OK);
    t_complete (U2, PM__V1__STATUS__OK);

    /* replacing E01's checklist leaves its open round as it started */
    b.estate_id = "E01";
    t_call ("inspection.template.set", &b.base, PM__V1__STATUS__OK);
    r = t_all_ok (U1, PM__V1__STATUS__OK);
    assert_int_equal (r->inspection_items_record->recorded, 35);
    t_complete (U1, PM__V1__STATUS__OK);
    /* and a defect in a re-inspection round is checked against the estate's checklist now */
    t_start (U2, true, PM__V1__STATUS__OK);
    r = t_defect_sev (U2, "主卧", "电气", PM__V1__SEVERITY__MINOR, PM__V1__STATUS__INVALID);
    assert_non_null (strstr (r->message, "门窗, 墙面/天花"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_the_default_checklist_is_built_in, t_setup, t_teardown),
        cmocka_unit_test (test_file_errors_name_the_file_and_the_line),
        cmocka_unit_test_setup_teardown (test_a_checklist_file_from_the_config, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_an_estate_gets_its_own_checklist, t_setup, t_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
