/* test_config - embedded default, ${home}, environment overrides, errors. */
#define _GNU_SOURCE
#include "support.h"

#include "pm/config.h"
#include "pm/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every variable a test sets, cleared around each test. */
static const char *const s_env[] = {
    "PM_HOME", "PM_INTAKE_MAP_SIZE_MB", "PM_GENERAL_MANUAL_CLOCK", "PM_GENERAL_LOG_LEVEL",
    "PM_A_B_C_D", "PM_T_FLAG",
};

static int
s_clear_env (void **state)
{
    for (size_t i = 0; i < sizeof s_env / sizeof s_env[0]; i++)
        unsetenv (s_env[i]);
    return 0;
}

static void
s_assert_contains (const char *s, const char *part)
{
    if (!s || !strstr (s, part))
        fail_msg ("\"%s\" does not contain \"%s\"", s ? s : "(null)", part);
}

/* Loads text as a config that must fail; returns the error (caller frees). */
static char *
s_load_error (const char *text, const char *name)
{
    char *err = NULL;
    pm_config_t *c = pm_config_load_string (text, name, &err);
    assert_null (c);
    assert_non_null (err);
    return err;
}

static pm_config_t *
s_load_ok (const char *text)
{
    char *err = NULL;
    pm_config_t *c = pm_config_load_string (text, "t.conf", &err);
    if (!c)
        fail_msg ("load failed: %s", err ? err : "(no message)");
    assert_null (err);
    return c;
}

static void
test_embedded_default (void **state)
{
    char *err = NULL;
    pm_config_t *c = pm_config_load (NULL, &err);
    assert_non_null (c);
    assert_null (err);
    assert_string_equal (pm_config_name (c), "<embedded pm.conf>");

    size_t n = 0;
    const char *const *d = pm_config_daemons (c, &n);
    static const char *const want[] = { "intake", "inspection", "workorder", "billing", "notify", "gateway" };
    assert_int_equal (n, 6);
    for (size_t i = 0; i < n; i++)
        assert_string_equal (d[i], want[i]);

    assert_string_equal (pm_config_get (c, "general", "log_level", NULL), "info");
    assert_string_equal (pm_config_get (c, "intake", "command", NULL), "ipc://var/run/intake.cmd");
    assert_string_equal (pm_config_home (c), "var");
    assert_string_equal (pm_config_get (c, "intake", "nope", "dflt"), "dflt");
    assert_null (pm_config_get (c, "nosection", "command", NULL));

    int64_t v = 0;
    assert_int_equal (pm_config_int (c, "intake", "map_size_mb", 1, &v, &err), PM_OK);
    assert_int_equal (v, 64);
    assert_int_equal (pm_config_int (c, "general", "batch_max_us", 1, &v, &err), PM_OK);
    assert_int_equal (v, 30000);
    bool b = true;
    assert_int_equal (pm_config_bool (c, "general", "manual_clock", true, &b, &err), PM_OK);
    assert_false (b);
    pm_config_destroy (&c);
    assert_null (c);
    pm_config_destroy (&c);
}

static void
test_home_expansion (void **state)
{
    pm_config_t *c = pm_config_load (NULL, NULL);
    assert_non_null (c);

    setenv ("PM_HOME", "/srv/pm", 1);
    const char *cmd = pm_config_get (c, "intake", "command", NULL);
    assert_string_equal (cmd, "ipc:///srv/pm/run/intake.cmd");
    assert_string_equal (pm_config_get (c, "billing", "data", NULL), "/srv/pm/billing");
    assert_string_equal (pm_config_home (c), "/srv/pm");

    /* A value handed out stays valid after the environment changes. */
    setenv ("PM_HOME", "/other", 1);
    assert_string_equal (pm_config_get (c, "intake", "command", NULL), "ipc:///other/run/intake.cmd");
    assert_string_equal (cmd, "ipc:///srv/pm/run/intake.cmd");

    /* Empty PM_HOME means the default. */
    setenv ("PM_HOME", "", 1);
    assert_string_equal (pm_config_home (c), "var");
    assert_string_equal (pm_config_get (c, "intake", "data", NULL), "var/intake");

    /* Repeated lookups return the same string. */
    setenv ("PM_HOME", "/srv/pm", 1);
    assert_ptr_equal (pm_config_get (c, "intake", "command", NULL),
                      pm_config_get (c, "intake", "command", NULL));

    pm_config_t *t = s_load_ok ("[s]\nk = ${home}:${home}/x ${other}\n");
    assert_string_equal (pm_config_get (t, "s", "k", NULL), "/srv/pm:/srv/pm/x ${other}");
    pm_config_destroy (&t);
    pm_config_destroy (&c);
}

static void
test_env_override (void **state)
{
    pm_config_t *c = pm_config_load (NULL, NULL);
    setenv ("PM_INTAKE_MAP_SIZE_MB", "256", 1);
    setenv ("PM_GENERAL_MANUAL_CLOCK", "true", 1);
    setenv ("PM_HOME", "/h", 1);
    setenv ("PM_GENERAL_LOG_LEVEL", "${home}/debug", 1);

    int64_t v = 0;
    char *err = NULL;
    assert_int_equal (pm_config_int (c, "intake", "map_size_mb", 1, &v, &err), PM_OK);
    assert_int_equal (v, 256);
    assert_string_equal (pm_config_get (c, "intake", "map_size_mb", NULL), "256");
    bool b = false;
    assert_int_equal (pm_config_bool (c, "general", "manual_clock", false, &b, &err), PM_OK);
    assert_true (b);
    assert_string_equal (pm_config_get (c, "general", "log_level", NULL), "/h/debug");
    /* other daemons keep the file value */
    assert_int_equal (pm_config_int (c, "inspection", "map_size_mb", 1, &v, &err), PM_OK);
    assert_int_equal (v, 32);

    /* An empty variable does not override. */
    setenv ("PM_INTAKE_MAP_SIZE_MB", "", 1);
    assert_int_equal (pm_config_int (c, "intake", "map_size_mb", 1, &v, &err), PM_OK);
    assert_int_equal (v, 64);

    /* Non-alphanumerics become '_'; keys absent from the file can be set. */
    pm_config_t *t = s_load_ok ("[a-b]\nother = 1\n");
    setenv ("PM_A_B_C_D", "yes", 1);
    assert_string_equal (pm_config_get (t, "a-b", "c.d", NULL), "yes");
    pm_config_destroy (&t);
    pm_config_destroy (&c);
}

static void
test_value_error_names_where (void **state)
{
    pm_config_t *c = s_load_ok ("[general]\n\nlog_level = loud\n");
    char *msg = pm_config_error (c, "general", "log_level", "expected debug, info, warn or error");
    assert_string_equal (msg, "t.conf:3: [general] log_level = 'loud': expected debug, info, warn or error");
    free (msg);
    setenv ("PM_GENERAL_LOG_LEVEL", "shout", 1);
    msg = pm_config_error (c, "general", "log_level", "expected debug, info, warn or error");
    s_assert_contains (msg, "PM_GENERAL_LOG_LEVEL = 'shout'");
    free (msg);
    unsetenv ("PM_GENERAL_LOG_LEVEL");
    pm_config_destroy (&c);
}

static void
test_bad_int_file (void **state)
{
    char *dir = pmt_tmpdir ();
    char *path = NULL;
    assert_true (asprintf (&path, "%s/pm.conf", dir) > 0);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs ("; test\n[general]\nlog_level = info\n\n[intake]\ncommand = ipc://x\nmap_size_mb = abc\n",
           f);
    fclose (f);

    char *err = NULL;
    pm_config_t *c = pm_config_load (path, &err);
    assert_non_null (c);
    assert_string_equal (pm_config_name (c), path);
    int64_t v = 7;
    assert_int_equal (pm_config_int (c, "intake", "map_size_mb", 1, &v, &err), PM_ECONFIG);
    assert_int_equal (v, 7);
    char *want = NULL;
    assert_true (asprintf (&want, "%s:7: [intake] map_size_mb = 'abc': expected a whole number",
                           path) > 0);
    assert_string_equal (err, want);
    free (want);
    free (err);
    err = NULL;

    /* the same without an err pointer */
    assert_int_equal (pm_config_int (c, "intake", "map_size_mb", 1, &v, NULL), PM_ECONFIG);

    setenv ("PM_INTAKE_MAP_SIZE_MB", "12x", 1);
    assert_int_equal (pm_config_int (c, "intake", "map_size_mb", 1, &v, &err), PM_ECONFIG);
    assert_string_equal (err, "environment PM_INTAKE_MAP_SIZE_MB = '12x': expected a whole number");
    free (err);

    pm_config_destroy (&c);
    free (path);
    pmt_rmdir (dir);
}

static void
test_ints (void **state)
{
    pm_config_t *c = s_load_ok ("[n]\npos = +7\nneg = -12\nzero = 0\nbig = 9223372036854775807\n"
                                "huge = 9223372036854775808\nfrac = 1.5\nempty =\nsign = -\n");
    int64_t v = 0;
    char *err = NULL;
    assert_int_equal (pm_config_int (c, "n", "pos", 0, &v, &err), PM_OK);
    assert_int_equal (v, 7);
    assert_int_equal (pm_config_int (c, "n", "neg", 0, &v, &err), PM_OK);
    assert_int_equal (v, -12);
    assert_int_equal (pm_config_int (c, "n", "zero", 5, &v, &err), PM_OK);
    assert_int_equal (v, 0);
    assert_int_equal (pm_config_int (c, "n", "big", 0, &v, &err), PM_OK);
    assert_int_equal (v, INT64_MAX);
    assert_int_equal (pm_config_int (c, "n", "missing", 99, &v, &err), PM_OK);
    assert_int_equal (v, 99);

    static const char *const bad[] = { "huge", "frac", "empty", "sign" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (pm_config_int (c, "n", bad[i], 0, &v, &err), PM_ECONFIG);
        s_assert_contains (err, "t.conf:");
        s_assert_contains (err, bad[i]);
        free (err);
        err = NULL;
    }
    pm_config_destroy (&c);
}

static void
test_bools (void **state)
{
    pm_config_t *c = s_load_ok ("[t]\na = true\nb = FALSE\nc = yes\nd = no\ne = On\nf = off\n"
                                "g = 1\nh = 0\nbad = maybe\n");
    static const struct {
        const char *key;
        bool want;
    } cases[] = {
        { "a", true }, { "b", false }, { "c", true }, { "d", false },
        { "e", true }, { "f", false }, { "g", true }, { "h", false },
    };
    char *err = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool b = !cases[i].want;
        assert_int_equal (pm_config_bool (c, "t", cases[i].key, !cases[i].want, &b, &err), PM_OK);
        assert_int_equal (b, cases[i].want);
    }
    bool b = true;
    assert_int_equal (pm_config_bool (c, "t", "missing", true, &b, &err), PM_OK);
    assert_true (b);
    assert_int_equal (pm_config_bool (c, "t", "missing", false, &b, &err), PM_OK);
    assert_false (b);

    assert_int_equal (pm_config_bool (c, "t", "bad", false, &b, &err), PM_ECONFIG);
    s_assert_contains (err, "t.conf:10: [t] bad = 'maybe'");
    free (err);

    setenv ("PM_T_FLAG", "nope", 1);
    assert_int_equal (pm_config_bool (c, "t", "flag", false, &b, &err), PM_ECONFIG);
    s_assert_contains (err, "environment PM_T_FLAG = 'nope'");
    free (err);
    pm_config_destroy (&c);
}

static void
test_duplicate_key (void **state)
{
    char *err = s_load_error ("[a]\nx = 1\ny = 2\nx = 3\n", "dup.conf");
    assert_string_equal (err, "dup.conf:4: [a] x: duplicate key");
    free (err);

    /* also across two headers of the same section */
    err = s_load_error ("[a]\nx = 1\n[b]\nx = 1\n[a]\nx = 2\n", "dup.conf");
    s_assert_contains (err, "dup.conf:6: [a] x");
    free (err);

    /* the same key in different sections is fine */
    pm_config_t *c = s_load_ok ("[a]\nx = 1\n[b]\nx = 2\n");
    assert_string_equal (pm_config_get (c, "a", "x", NULL), "1");
    assert_string_equal (pm_config_get (c, "b", "x", NULL), "2");
    pm_config_destroy (&c);
}

static void
test_key_outside_section (void **state)
{
    char *err = s_load_error ("; comment\nx = 1\n[a]\ny = 2\n", "out.conf");
    s_assert_contains (err, "out.conf:2: ");
    s_assert_contains (err, "x");
    s_assert_contains (err, "section");
    free (err);
}

static void
test_syntax_errors (void **state)
{
    char *err = s_load_error ("[a]\nx = 1\nthis is not a key\n", "syn.conf");
    s_assert_contains (err, "syn.conf:3:");
    free (err);

    err = s_load_error ("[a\nx = 1\n", "syn.conf");
    s_assert_contains (err, "syn.conf:1:");
    free (err);

    /* continuation lines would silently join values: refused */
    err = s_load_error ("[a]\nx = 1\n  more\n", "syn.conf");
    s_assert_contains (err, "syn.conf:3: [a] x");
    free (err);

    /* lines too long for the parser are refused, not split */
    char text[600];
    snprintf (text, sizeof text, "[a]\nx = %0500d\n", 1);
    err = s_load_error (text, "syn.conf");
    s_assert_contains (err, "syn.conf:2:");
    free (err);

    /* err may be NULL */
    assert_null (pm_config_load_string ("x = 1\n", "n.conf", NULL));
}

static void
test_missing_file (void **state)
{
    char *err = NULL;
    assert_null (pm_config_load ("/nonexistent/dir/pm.conf", &err));
    s_assert_contains (err, "/nonexistent/dir/pm.conf");
    free (err);
}

static void
test_daemons_and_order (void **state)
{
    pm_config_t *c = s_load_ok ("[general]\nlog_level = info\n[zeta]\ncommand = a\n"
                                "[mid]\nother = 1\n[alpha]\nevents = e\ncommand = b\n");
    size_t n = 0;
    const char *const *d = pm_config_daemons (c, &n);
    assert_int_equal (n, 2);
    assert_string_equal (d[0], "zeta");
    assert_string_equal (d[1], "alpha");
    pm_config_destroy (&c);

    c = s_load_ok ("");
    d = pm_config_daemons (c, &n);
    assert_int_equal (n, 0);
    assert_non_null (d);
    pm_config_destroy (&c);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_embedded_default, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_home_expansion, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_env_override, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_bad_int_file, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_value_error_names_where, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_ints, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_bools, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_duplicate_key, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_key_outside_section, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_syntax_errors, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_missing_file, s_clear_env, s_clear_env),
        cmocka_unit_test_setup_teardown (test_daemons_and_order, s_clear_env, s_clear_env),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
