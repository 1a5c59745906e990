/* fuzz_csv - the CSV scanner every importer reads with (units, bank files,
 * checklist templates): any bytes give records or a line-numbered error,
 * never a crash; each record starts on a later line than the one before (a
 * broken row spanning lines is re-read from its second line, so only the
 * first lines are bound to increase). */
#define _GNU_SOURCE
#include "pm/csv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    FILE *f = fmemopen ((void *) data, size, "r");
    if (!f)
        return 0;
    pm_csv_t *c = pm_csv_new (f, 4096);
    uint32_t last = 0;
    pm_csv_record_t *r;
    while (c && (r = pm_csv_next (c))) {
        if (r->first_line <= last || r->last_line < r->first_line)
            abort ();
        last = r->first_line;
    }
    pm_csv_destroy (&c);
    fclose (f);
    return 0;
}
