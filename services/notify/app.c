/* app.c - notify's app context: its [notify] settings, the rules, templates
 * and staff directory (files checked whole at start: an error names the file
 * and the line and the daemon does not start), and the dispatcher. */
#define _GNU_SOURCE
#include "notify.h"
#include "pm/err.h"
#include "pm/log.h"
#include "pm/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* deploy/notify/{rules,templates,staff}.conf, built into the binary (notify_files.c, generated) */
extern const char notify_default_rules[];
extern const char notify_default_templates[];
extern const char notify_default_staff[];

/* The text of [notify] key's file, or of its embedded default when the key is
 * empty. *name is what errors call it. NULL (logged) when unreadable. */
static char *
s_file (const pm_config_t *cfg, const char *key, const char *embedded, const char *def_name, char **name)
{
    const char *path = pm_config_get (cfg, "notify", key, "");
    if (!*path) {
        *name = pm_xstrdup (def_name);
        return pm_xstrdup (embedded);
    }
    *name = pm_xstrdup (path);
    FILE *f = fopen (path, "re");
    if (!f) {
        char *why = pm_xasprintf ("cannot read %s: %s", path, strerror (errno));
        char *msg = pm_config_error (cfg, "notify", key, why);
        pm_error ("%s", msg);
        free (msg);
        free (why);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream (&text, &len);
    char buf[8192];
    size_t n;
    while ((n = fread (buf, 1, sizeof buf, f)) > 0)
        fwrite (buf, 1, n, m);
    fclose (f);
    fclose (m);
    return text;
}

static int
s_duration (const pm_config_t *cfg, const char *key, const char *def, int64_t *out)
{
    const char *v = pm_config_get (cfg, "notify", key, def);
    if (pm_duration_parse (v, out) != PM_OK || *out <= 0) {
        char *msg = pm_config_error (cfg, "notify", key, "expected a duration such as 30s, 15m, 1h or 1d");
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    return PM_OK;
}

static int
s_uint (const pm_config_t *cfg, const char *key, int64_t def, int64_t min, int64_t *out)
{
    char *err = NULL;
    if (pm_config_int (cfg, "notify", key, def, out, &err) != PM_OK || *out < min) {
        char *msg = err ? err : pm_config_error (cfg, "notify", key, min ? "expected at least 1" : "expected 0 or more");
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    return PM_OK;
}

static int
s_limits (const pm_config_t *cfg, notify_limits_t *l)
{
    const char *tz = pm_config_get (cfg, "notify", "timezone", "Asia/Shanghai");
    if (notify_parse_zone (tz, &l->tz_min) != PM_OK) {
        char *msg = pm_config_error (cfg, "notify", "timezone",
                                     "expected a zone without daylight saving (Asia/Shanghai, UTC) or an offset (+08:00)");
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    snprintf (l->tz_name, sizeof l->tz_name, "%s", tz);
    const char *q = pm_config_get (cfg, "notify", "quiet_hours", "21:00-08:00");
    if (notify_parse_quiet (q, &l->quiet_from, &l->quiet_to) != PM_OK) {
        char *msg = pm_config_error (cfg, "notify", "quiet_hours", "expected HH:MM-HH:MM (e.g. 21:00-08:00) or none");
        pm_error ("%s", msg);
        free (msg);
        return PM_ECONFIG;
    }
    int64_t cap, attempts;
    if (s_uint (cfg, "sms_daily_cap", 5, 0, &cap) || s_uint (cfg, "max_attempts", 8, 1, &attempts)
        || s_duration (cfg, "retry_base", "30s", &l->retry_base_ms) || s_duration (cfg, "retry_max", "1h", &l->retry_max_ms)
        || s_duration (cfg, "max_age", "24h", &l->max_age_ms) || s_duration (cfg, "await_contacts", "24h", &l->await_ms))
        return PM_ECONFIG;
    l->sms_daily_cap = (uint32_t) cap;
    l->max_attempts = (uint32_t) attempts;
    if (l->retry_max_ms < l->retry_base_ms)
        l->retry_max_ms = l->retry_base_ms;
    return PM_OK;
}

void *
notify_app_new (pm_daemon_t *d, const pm_config_t *cfg)
{
    notify_app_t *app = pm_xcalloc (1, sizeof *app);
    app->d = d;
    char *name = NULL, *text = NULL, *err = NULL;
    if (s_limits (cfg, &app->limits) != PM_OK)
        goto fail;
    if (!(text = s_file (cfg, "templates", notify_default_templates, "deploy/notify/templates.conf", &name)))
        goto fail;
    app->templates = notify_templates_load (name, text, &err);
    free (text);
    free (name);
    text = name = NULL;
    if (!app->templates)
        goto fail_err;
    if (!(text = s_file (cfg, "rules", notify_default_rules, "deploy/notify/rules.conf", &name)))
        goto fail;
    app->rules = notify_rules_load (name, text, app->templates, &err);
    free (text);
    free (name);
    text = name = NULL;
    if (!app->rules)
        goto fail_err;
    if (!(text = s_file (cfg, "staff", notify_default_staff, "deploy/notify/staff.conf", &name)))
        goto fail;
    app->staff = notify_staff_load (name, text, &err);
    free (text);
    free (name);
    text = name = NULL;
    if (!app->staff)
        goto fail_err;
    app->dispatch = notify_dispatch_new (app, cfg);
    if (!app->dispatch)
        goto fail;
    pm_info ("notify: %zu rules, %zu staff, quiet hours %02d:%02d-%02d:%02d %s, %u SMS a day a recipient at most",
             notify_rules_count (app->rules), notify_staff_count (app->staff), app->limits.quiet_from / 60,
             app->limits.quiet_from % 60, app->limits.quiet_to / 60, app->limits.quiet_to % 60, app->limits.tz_name,
             app->limits.sms_daily_cap);
    return app;
fail_err:
    pm_error ("notify: %s", err);
    free (err);
fail:
    free (text);
    free (name);
    notify_app_destroy (app);
    return NULL;
}

void
notify_app_destroy (void *p)
{
    notify_app_t *app = p;
    if (!app)
        return;
    notify_dispatch_destroy (&app->dispatch);
    notify_rules_destroy (&app->rules);
    notify_templates_destroy (&app->templates);
    notify_staff_destroy (&app->staff);
    free (app);
}

void
notify_app_committed (void *p)
{
    notify_app_t *app = p;
    notify_dispatch_kick (app->dispatch);
}
