/* test_templates - notify's files as an operator edits them: templates, rules
 * and the staff directory, each mistake a start-up error naming the file and
 * line; and what a message reads like (amounts, times, unit names, SMS
 * segments), quiet hours and backoff. No daemon needed. */
#define _GNU_SOURCE
#include "support.h"

#include "notify.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char notify_default_rules[];
extern const char notify_default_templates[];
extern const char notify_default_staff[];

#define T_OK "[hello.sms]\ntext = {name}您好，{unit_name}的钥匙已交付。\n"

static notify_templates_t *
s_templates (const char *text, char **err)
{
    *err = NULL;
    return notify_templates_load ("templates.conf", text, err);
}

/* Loading text fails with an error that contains want. */
static void
s_templates_fail (const char *text, const char *want)
{
    char *err;
    notify_templates_t *t = s_templates (text, &err);
    if (t || !err || !strstr (err, want))
        fail_msg ("templates: expected an error with \"%s\", got %s", want, err ? err : "success");
    free (err);
}

static void
test_default_files_load (void **state)
{
    char *err = NULL;
    notify_templates_t *t = notify_templates_load ("deploy/notify/templates.conf", notify_default_templates, &err);
    if (!t)
        fail_msg ("%s", err);
    notify_rules_t *r = notify_rules_load ("deploy/notify/rules.conf", notify_default_rules, t, &err);
    if (!r)
        fail_msg ("%s", err);
    notify_directory_t *s = notify_staff_load ("deploy/notify/staff.conf", notify_default_staff, &err);
    if (!s)
        fail_msg ("%s", err);
    /* every message the issue lists has a rule */
    static const char *const types[] = {
        "intake.notice.requested",   "intake.appointment.booked", "intake.appointment.moved",
        "intake.appointment.missed", "inspection.round.passed",   "inspection.round.failed",
        "inspection.reinspection.due", "workorder.order.created", "workorder.sla.warning",
        "workorder.sla.breached",    "billing.invoice.issued",    "billing.payment.recorded",
        "billing.dunning.step",      "intake.keys.handed",        "inspection.defect.overdue",
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t n;
        notify_rules_for (r, types[i], &n);
        if (!n)
            fail_msg ("no rule for %s", types[i]);
    }
    size_t n;
    const notify_rule_t *const *appt = notify_rules_for (r, "intake.appointment.booked", &n);
    assert_int_equal (n, 2);
    assert_int_equal (appt[1]->at, T_SLOT_START);
    assert_true (appt[1]->at_offset_ms == -86400000LL); /* the day before */
    const notify_rule_t *const *sla = notify_rules_for (r, "workorder.sla.breached", &n);
    assert_true (sla[0]->urgent);
    assert_int_equal (sla[0]->to, NOTIFY_TO_TEAM_LEAD);
    const notify_rule_t *const *dun = notify_rules_for (r, "billing.dunning.step", &n);
    assert_true (dun[0]->unless_settled);
    assert_string_equal (dun[0]->cond_value, "message");
    assert_non_null (notify_staff_find (s, NOTIFY_TO_TECHNICIAN, "王建国", "E01", NULL));
    notify_rules_destroy (&r);
    notify_staff_destroy (&s);
    notify_templates_destroy (&t);
}

static void
test_template_errors_name_file_and_line (void **state)
{
    s_templates_fail ("# a comment\n\n[hello.sms]\ntext = {owner}您好\n", "templates.conf:4: [hello.sms] text: unknown variable {owner}; known: name");
    s_templates_fail ("[hello.sms]\ntext = {name您好\n", "templates.conf:2: [hello.sms] text: '{' without its '}'");
    s_templates_fail ("[hello.sms]\ntext = 您好}\n", "templates.conf:2: [hello.sms] text: a lone '}'");
    s_templates_fail ("[hello.fax]\ntext = 您好\n", "templates.conf:1: [hello.fax]: unknown channel 'fax'");
    s_templates_fail ("[hello.sms]\nsegments = 2\n", "templates.conf:1: [hello.sms]: no text");
    s_templates_fail ("[hello.email]\nsubject = 您好\n", "templates.conf:1: [hello.email]: no body");
    s_templates_fail ("[hello.sms]\ntext = 好\n[hello.sms]\ntext = 好\n", "templates.conf:3: [hello.sms]: defined twice (first on line 1)");
    s_templates_fail ("[hello.sms]\nsubject = 好\n", "templates.conf:2: [hello.sms]: unknown key 'subject'");
    s_templates_fail ("text = 好\n", "templates.conf:1: 'text' before any [TEMPLATE.CHANNEL] section");
    s_templates_fail ("[hello.sms]\ntext = \xb2\xe2\n", "templates.conf:2: not UTF-8");
    s_templates_fail ("[hello.email]\nsubject = 好\n| 续\nbody = 好\n", "templates.conf:2: [hello.email] subject: one line only");
    s_templates_fail ("| 好\n", "templates.conf:1: a '|' line continues a value");
    /* the budget: 4 fixed characters + {fees_note} at 60 + {bring} at 40 > 70 */
    s_templates_fail ("[hello.sms]\nsegments = 1\ntext = 请携带{bring}，{fees_note}\n",
                      "templates.conf:3: [hello.sms] text: up to 104 characters with every variable at its longest "
                      "({bring} 40, {fees_note} 60) make 2 SMS segments; the budget is 1");
    s_templates_fail ("[hello.sms]\nsegments = 0\ntext = 好\n", "templates.conf:2: [hello.sms] segments = '0'");
}

static void
test_template_renders_values_and_braces (void **state)
{
    char *err;
    notify_templates_t *t = s_templates ("[bill.email]\nsubject = 账单{{{invoice_id}}}\nbody = {name}您好：\n"
                                         "  |\n  | 金额{amount}。\n[bill.sms]\ntext = {name}：{amount}\n",
                                         &err);
    if (!t)
        fail_msg ("%s", err);
    const notify_template_t *e = notify_template_find (t, "bill", NOTIFY_EMAIL);
    assert_non_null (e);
    assert_null (notify_template_find (t, "bill_x", NOTIFY_EMAIL));
    assert_true (notify_template_vars (e) == (NOTIFY_VAR (V_INVOICE_ID) | NOTIFY_VAR (V_NAME) | NOTIFY_VAR (V_AMOUNT)));
    notify_vals_t v;
    memset (&v, 0, sizeof v);
    v.v[V_NAME] = "张伟";
    v.v[V_INVOICE_ID] = "INV-E01-000123";
    char buf[48];
    v.v[V_AMOUNT] = notify_fen_text (324000, buf, sizeof buf);
    pm_arena_t *a = pm_arena_new ();
    const char *subject, *body;
    notify_render (a, e, &v, &subject, &body);
    assert_string_equal (subject, "账单{INV-E01-000123}");
    assert_string_equal (body, "张伟您好：\n\n金额¥3,240.00。");
    notify_render (a, notify_template_find (t, "bill", NOTIFY_SMS), &v, &subject, &body);
    assert_null (subject);
    assert_string_equal (body, "张伟：¥3,240.00");
    pm_arena_destroy (&a);
    notify_templates_destroy (&t);
}

static void
test_amounts_in_yuan (void **state)
{
    char b[48];
    assert_string_equal (notify_fen_text (324000, b, sizeof b), "¥3,240.00");
    assert_string_equal (notify_fen_text (5, b, sizeof b), "¥0.05");
    assert_string_equal (notify_fen_text (0, b, sizeof b), "¥0.00");
    assert_string_equal (notify_fen_text (99999, b, sizeof b), "¥999.99");
    assert_string_equal (notify_fen_text (123456789012, b, sizeof b), "¥1,234,567,890.12");
    assert_string_equal (notify_fen_text (-150050, b, sizeof b), "-¥1,500.50");
}

static void
test_times_and_unit_names (void **state)
{
    pm_arena_t *a = pm_arena_new ();
    int64_t ms;
    assert_int_equal (pm_time_parse ("2026-12-05T01:30:00Z", &ms), PM_OK); /* 09:30 in Shanghai */
    assert_string_equal (notify_time_text (a, ms, 480), "12月5日 09:30");
    assert_string_equal (notify_date_text (a, ms, 480), "12月5日");
    assert_int_equal (pm_time_parse ("2026-12-31T16:00:00Z", &ms), PM_OK); /* midnight, new year's day */
    assert_string_equal (notify_time_text (a, ms, 480), "1月1日 00:00");
    assert_string_equal (notify_unit_name (a, "翠湖花园", "1", "101", "E01/1-101"), "翠湖花园1栋101室");
    assert_string_equal (notify_unit_name (a, "翠湖花园", "A座", "2-301", "E01/A座-2-301"), "翠湖花园A座2-301室");
    assert_string_equal (notify_unit_name (a, "翠湖花园", "", "", "E01/1-101"), "E01/1-101");
    pm_arena_destroy (&a);
}

static void
test_sms_segments (void **state)
{
    char s[512];
    memset (s, 0, sizeof s);
    for (int i = 0; i < 70; i++)
        strcat (s, "好");
    assert_int_equal (notify_sms_segments (s), 1); /* 70 Chinese characters: one SMS */
    strcat (s, "好");
    assert_int_equal (notify_sms_segments (s), 2); /* 71: two parts of 67 */
    for (int i = 71; i < 134; i++)
        strcat (s, "好");
    assert_int_equal (notify_sms_segments (s), 2);
    strcat (s, "a");
    assert_int_equal (notify_sms_segments (s), 3);
    memset (s, 'a', 160);
    s[160] = '\0';
    assert_int_equal (notify_sms_segments (s), 1); /* plain ASCII: 160 */
    s[160] = 'a';
    s[161] = '\0';
    assert_int_equal (notify_sms_segments (s), 2);
    assert_int_equal (notify_sms_segments ("Hi 张"), 1);
}

static notify_templates_t *
s_rule_templates (void)
{
    char *err;
    notify_templates_t *t = s_templates ("[booked.sms]\ntext = {name}，{slot}\n[bill.sms]\ntext = {amount}\n"
                                         "[bill.email]\nsubject = {invoice_id}\nbody = {amount}\n",
                                         &err);
    if (!t)
        fail_msg ("%s", err);
    return t;
}

static void
s_rules_fail (const char *text, const char *want)
{
    notify_templates_t *t = s_rule_templates ();
    char *err = NULL;
    notify_rules_t *r = notify_rules_load ("rules.conf", text, t, &err);
    if (r || !err || !strstr (err, want))
        fail_msg ("rules: expected an error with \"%s\", got %s", want, err ? err : "success");
    free (err);
    notify_templates_destroy (&t);
}

static void
test_rule_errors_name_file_and_line (void **state)
{
    s_rules_fail ("\n# bills\nbilling.invoice.issue bill owners sms\n",
                  "rules.conf:3: unknown event type 'billing.invoice.issue'");
    s_rules_fail ("billing.invoice.issued bill owners fax\n", "rules.conf:1: unknown channel 'fax'");
    s_rules_fail ("billing.invoice.issued bill tenants sms\n", "rules.conf:1: unknown recipient 'tenants'");
    s_rules_fail ("billing.invoice.issued invoice owners sms\n",
                  "rules.conf:1: template invoice.sms is missing from templates.conf");
    /* a template using what the event does not give: both lines named */
    s_rules_fail ("billing.invoice.issued bill owners sms\nintake.appointment.booked bill owners sms\n",
                  "rules.conf:2: template bill.sms (templates.conf:3) uses {amount}, which intake.appointment.booked "
                  "does not give");
    s_rules_fail ("intake.appointment.booked booked owners sms soon\n", "rules.conf:1: unknown option 'soon'");
    s_rules_fail ("intake.appointment.booked booked owners sms at=due-1d\n",
                  "rules.conf:1: at=due-1d: intake.appointment.booked gives no time 'due'; it gives slot_start");
    s_rules_fail ("intake.appointment.booked booked owners sms at=slot_start-tomorrow\n",
                  "rules.conf:1: at=slot_start-tomorrow: 'tomorrow' is not a duration");
    s_rules_fail ("intake.appointment.booked booked owners sms unless_settled\n",
                  "rules.conf:1: unless_settled: intake.appointment.booked is not about an invoice");
    s_rules_fail ("billing.invoice.issued bill owners sms if=colour=red\n",
                  "rules.conf:1: if=colour=red: billing.invoice.issued gives no variable 'colour'");
    s_rules_fail ("billing.invoice.issued bill owners\n", "rules.conf:1: expected EVENT TEMPLATE TO CHANNELS");
    s_rules_fail ("billing.invoice.issued bill owners sms\nbilling.invoice.issued bill owners email\n",
                  "rules.conf:2: the same rule as line 1");
    s_rules_fail ("# nothing\n", "rules.conf:1: no rules");
}

static void
test_rule_options (void **state)
{
    notify_templates_t *t = s_rule_templates ();
    char *err = NULL;
    notify_rules_t *r = notify_rules_load ("rules.conf",
                                           "intake.appointment.booked booked owners sms at=slot_start-1d\n"
                                           "billing.invoice.issued bill owners sms,email? unless_settled if=kind!=monthly urgent\n",
                                           t, &err);
    if (!r)
        fail_msg ("%s", err);
    size_t n;
    const notify_rule_t *const *b = notify_rules_for (r, "billing.invoice.issued", &n);
    assert_int_equal (n, 1);
    assert_true (b[0]->unless_settled && b[0]->urgent && b[0]->cond_neg);
    assert_int_equal (b[0]->cond_var, V_KIND);
    assert_false (b[0]->optional[NOTIFY_SMS]);
    assert_true (b[0]->optional[NOTIFY_EMAIL]);
    assert_non_null (b[0]->tpl[NOTIFY_EMAIL]);
    assert_null (notify_rules_for (r, "intake.keys.handed", &n));
    assert_int_equal (n, 0);
    notify_rules_destroy (&r);
    notify_templates_destroy (&t);
}

static void
s_staff_fail (const char *text, const char *want)
{
    char *err = NULL;
    notify_directory_t *d = notify_staff_load ("staff.conf", text, &err);
    if (d || !err || !strstr (err, want))
        fail_msg ("staff: expected an error with \"%s\", got %s", want, err ? err : "success");
    free (err);
}

static void
test_staff_directory (void **state)
{
    s_staff_fail ("王五 plumber E01 - 13900000000 -\n", "staff.conf:1: 王五: unknown role 'plumber'");
    s_staff_fail ("\n王五 technician E01 - 12345 -\n", "staff.conf:2: 王五: phone '12345' is not a mobile number");
    s_staff_fail ("王五 technician E01 -\n", "staff.conf:1: expected NAME ROLE ESTATE TEAM PHONE EMAIL");
    s_staff_fail ("王五 technician E01 - - -\n", "staff.conf:1: 王五: neither a phone nor an email");
    s_staff_fail ("王五 technician E01 - 13900000000 -\n王五 technician E01 - 13900000001 -\n",
                  "staff.conf:2: 王五 (technician, E01) is listed twice (first on line 1)");
    char *err = NULL;
    notify_directory_t *d = notify_staff_load ("staff.conf",
                                               "王五 technician E01 水电组 13900000001 -\n"
                                               "王五 technician E02 水电组 13900000002 -\n"
                                               "李四 team_lead E01 水电组 13900000003 li@example.com\n"
                                               "赵六 team_lead E01 土建组 13900000004 -\n"
                                               "陈七 manager E02 - 13900000005 -\n",
                                               &err);
    if (!d)
        fail_msg ("%s", err);
    /* the same name in the event's estate first */
    assert_string_equal (notify_staff_find (d, NOTIFY_TO_TECHNICIAN, "王五", "E02", NULL)->phone, "13900000002");
    assert_null (notify_staff_find (d, NOTIFY_TO_TECHNICIAN, "王八", "E01", NULL));
    /* a team lead by the order's team when the alert names nobody */
    assert_string_equal (notify_staff_find (d, NOTIFY_TO_TEAM_LEAD, "", "E01", "土建组")->name, "赵六");
    assert_string_equal (notify_staff_find (d, NOTIFY_TO_MANAGER, NULL, "E02", NULL)->name, "陈七");
    assert_null (notify_staff_find (d, NOTIFY_TO_MANAGER, NULL, "E01", NULL));
    notify_staff_destroy (&d);
}

static void
test_quiet_hours_and_days (void **state)
{
    notify_limits_t l;
    memset (&l, 0, sizeof l);
    l.tz_min = 480;
    assert_int_equal (notify_parse_quiet ("21:00-08:00", &l.quiet_from, &l.quiet_to), PM_OK);
    assert_int_equal (notify_parse_quiet ("25:00-08:00", &l.quiet_from, &l.quiet_from), PM_EINVAL);
    int64_t t, end;
    pm_time_parse ("2026-12-01T12:59:00Z", &t); /* 20:59 Shanghai */
    assert_false (notify_quiet (&l, t));
    pm_time_parse ("2026-12-01T13:00:00Z", &t); /* 21:00 */
    assert_true (notify_quiet (&l, t));
    pm_time_parse ("2026-12-02T00:00:00Z", &end); /* 08:00 the next morning */
    assert_true (notify_quiet_end (&l, t) == end);
    pm_time_parse ("2026-12-01T18:30:00Z", &t); /* 02:30 */
    assert_true (notify_quiet (&l, t) && notify_quiet_end (&l, t) == end);
    assert_false (notify_quiet (&l, end));
    /* the local day changes at midnight in Shanghai, not in UTC */
    int64_t a, b;
    pm_time_parse ("2026-12-01T15:59:00Z", &a);
    pm_time_parse ("2026-12-01T16:00:00Z", &b);
    assert_int_equal (notify_local_day (&l, b), notify_local_day (&l, a) + 1);
    assert_true (notify_next_morning (&l, a) == end);
    int tz;
    assert_int_equal (notify_parse_zone ("Asia/Shanghai", &tz), PM_OK);
    assert_int_equal (tz, 480);
    assert_int_equal (notify_parse_zone ("-03:30", &tz), PM_OK);
    assert_int_equal (tz, -210);
    assert_int_equal (notify_parse_zone ("Mars/Olympus", &tz), PM_EINVAL);
}

static void
test_backoff_grows_with_jitter_and_is_pure (void **state)
{
    notify_limits_t l;
    memset (&l, 0, sizeof l);
    l.retry_base_ms = 30000;
    l.retry_max_ms = 3600000;
    for (uint32_t n = 1; n <= 12; n++) {
        int64_t full = 30000LL << (n - 1 < 20 ? n - 1 : 20);
        if (full > 3600000)
            full = 3600000;
        int64_t d = notify_backoff_ms (&l, "M0000000001", n);
        assert_true (d >= full / 2 && d <= full);
        assert_true (d == notify_backoff_ms (&l, "M0000000001", n)); /* a redone batch decides the same */
    }
    /* two messages failing together do not come back together */
    int same = 0;
    for (int i = 0; i < 20; i++) {
        char a[16], b[16];
        snprintf (a, sizeof a, "M%010d", i);
        snprintf (b, sizeof b, "M%010d", i + 100);
        same += notify_backoff_ms (&l, a, 3) == notify_backoff_ms (&l, b, 3);
    }
    assert_true (same < 3);
}

int
main (void)
{
    pm_log_init ("test_templates", PM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_default_files_load),
        cmocka_unit_test (test_template_errors_name_file_and_line),
        cmocka_unit_test (test_template_renders_values_and_braces),
        cmocka_unit_test (test_amounts_in_yuan),
        cmocka_unit_test (test_times_and_unit_names),
        cmocka_unit_test (test_sms_segments),
        cmocka_unit_test (test_rule_errors_name_file_and_line),
        cmocka_unit_test (test_rule_options),
        cmocka_unit_test (test_staff_directory),
        cmocka_unit_test (test_quiet_hours_and_days),
        cmocka_unit_test (test_backoff_grows_with_jitter_and_is_pure),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
