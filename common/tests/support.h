/* Test support: temp directories that clean up after themselves. */
#ifndef PM_TEST_SUPPORT_H
#define PM_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* mkdtemp under $TMPDIR (or /tmp) with a short name (ipc paths are short). Caller frees. */
char *pmt_tmpdir (void);
/* rm -rf dir, then free(dir). */
void pmt_rmdir (char *dir);

#endif
