/* pm/config.h - INI configuration (libinih) with environment overrides.
 *
 * The file is deploy/pm.conf, embedded in every binary; -c FILE or PM_CONFIG
 * picks another. A value may use ${home}, which is PM_HOME (default "var").
 * Any key can be overridden by the environment as PM_<SECTION>_<KEY>
 * (upper case), e.g. PM_INTAKE_MAP_SIZE_MB=256. Errors name the file, the line
 * and the key. */
#ifndef PM_CONFIG_H
#define PM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pm_config pm_config_t;

/* Loads path, or the embedded default when path is NULL. On failure returns NULL
 * and sets *err to a malloc'd message ("pm.conf:12: [intake] map_size_mb: ...")
 * the caller frees. */
pm_config_t *pm_config_load (const char *path, char **err);
/* Loads from a string (tests); name is used in error messages. */
pm_config_t *pm_config_load_string (const char *text, const char *name, char **err);
void pm_config_destroy (pm_config_t **p);

/* Value after env override and ${home} expansion, or def. Borrowed. */
const char *pm_config_get (const pm_config_t *c, const char *section, const char *key, const char *def);
/* Integer value. PM_ECONFIG with *err set (malloc'd, names file:line [section] key) if not one. */
int pm_config_int (const pm_config_t *c, const char *section, const char *key, int64_t def,
                   int64_t *out, char **err);
int pm_config_bool (const pm_config_t *c, const char *section, const char *key, bool def,
                    bool *out, char **err);
/* "<file>:<line>: [section] key = 'value': why" (or "environment PM_X = ..."
 * when the environment set it), for a value the caller found wrong. Caller frees. */
char *pm_config_error (const pm_config_t *c, const char *section, const char *key, const char *why);
/* PM_HOME as used for ${home}. Borrowed. */
const char *pm_config_home (const pm_config_t *c);
/* The daemon sections in file order (those with a "command" key). Borrowed, n set. */
const char *const *pm_config_daemons (const pm_config_t *c, size_t *n);
/* File name as given (or "<embedded pm.conf>"). Borrowed. */
const char *pm_config_name (const pm_config_t *c);

#endif
