/* pm/err.h - one error space for the whole library.
 *
 * Every int-returning function answers PM_OK (0) or a negative pm_err code.
 * LMDB and errno codes are mapped here, once, so callers compare against
 * PM_E* names and print pm_strerror(). */
#ifndef PM_ERR_H
#define PM_ERR_H

enum pm_err {
    PM_OK = 0,
    PM_ENOMEM = -1,     /* out of memory */
    PM_EIO = -2,        /* I/O or system error; errno kept by the caller */
    PM_ENOTFOUND = -3,  /* key / record / name not found */
    PM_EEXIST = -4,     /* already exists */
    PM_EINVAL = -5,     /* bad argument or bad input */
    PM_EMAPFULL = -6,   /* LMDB map full: grow and retry */
    PM_ENOSPC = -7,     /* disk full */
    PM_ETIMEDOUT = -8,  /* no answer in time */
    PM_EPROTO = -9,     /* malformed message on the wire */
    PM_ESTORE = -10,    /* any other LMDB error */
    PM_ECONFIG = -11,   /* configuration error */
    PM_ETXN = -12,      /* transaction already failed earlier */
};

/* Text for a pm_err code. Borrowed, static. */
const char *pm_strerror (int err);

/* Maps an LMDB return code (MDB_SUCCESS, MDB_NOTFOUND, MDB_MAP_FULL, errno...) to pm_err. */
int pm_err_from_mdb (int rc);

#endif
