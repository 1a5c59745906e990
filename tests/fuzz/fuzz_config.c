/* fuzz_config - the config loader: any text is a config or an error that
 * names its file and line, never a crash. */
#include "pm/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    memcpy (text, data, size);
    text[size] = '\0';
    char *err = NULL;
    pm_config_t *c = pm_config_load_string (text, "fuzz.conf", &err);
    if (c) {
        size_t n;
        const char *const *d = pm_config_daemons (c, &n);
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            bool b;
            char *e = NULL;
            pm_config_get (c, d[i], "command", NULL);
            if (pm_config_int (c, d[i], "map_size_mb", 1, &v, &e) != 0)
                free (e), e = NULL;
            if (pm_config_bool (c, "general", "manual_clock", false, &b, &e) != 0)
                free (e);
        }
        pm_config_destroy (&c);
    }
    else if (!err || !strstr (err, "fuzz.conf"))
        abort (); /* an error always says where */
    free (err);
    free (text);
    return 0;
}
