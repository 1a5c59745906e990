/* err.c - pm_err texts and the LMDB / errno mapping. */
#include "pm/err.h"

#include <errno.h>
#include <lmdb.h>

const char *
pm_strerror (int err)
{
    switch (err) {
    case PM_OK: return "success";
    case PM_ENOMEM: return "out of memory";
    case PM_EIO: return "I/O or system error";
    case PM_ENOTFOUND: return "not found";
    case PM_EEXIST: return "already exists";
    case PM_EINVAL: return "invalid argument or input";
    case PM_EMAPFULL: return "store map full";
    case PM_ENOSPC: return "no space left on device";
    case PM_ETIMEDOUT: return "timed out";
    case PM_EPROTO: return "malformed message";
    case PM_ESTORE: return "store error";
    case PM_ECONFIG: return "configuration error";
    case PM_ETXN: return "transaction already failed";
    default: return "unknown error";
    }
}

int
pm_err_from_mdb (int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return PM_OK;
    case MDB_NOTFOUND: return PM_ENOTFOUND;
    case MDB_KEYEXIST: return PM_EEXIST;
    case MDB_MAP_FULL: return PM_EMAPFULL;
    case MDB_BAD_VALSIZE: return PM_EINVAL; /* empty or over-long key: the input's fault */
    case ENOSPC: return PM_ENOSPC;
    case ENOMEM: return PM_ENOMEM;
    case EIO: return PM_EIO;
    case EINVAL: return PM_EINVAL;
    default: return rc < 0 ? PM_ESTORE : PM_EIO;
    }
}
