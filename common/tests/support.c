#define _GNU_SOURCE
#include "support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *
pmt_tmpdir (void)
{
    const char *base = getenv ("TMPDIR");
    char *path = NULL;
    if (!base || !*base)
        base = "/tmp";
    if (asprintf (&path, "%s/pmt.XXXXXX", base) < 0)
        abort ();
    if (!mkdtemp (path))
        abort ();
    return path;
}

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove (p);
}

void
pmt_rmdir (char *dir)
{
    if (!dir)
        return;
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (dir);
}
