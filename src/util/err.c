/* SPDX-License-Identifier: Apache-2.0 */
#include "util/err.h"

const char *sl_strerror(int err)
{
    switch (err) {
    case SL_OK:
        return "success";
    case SL_EINVAL:
        return "invalid argument";
    case SL_ENOMEM:
        return "out of memory";
    case SL_EIO:
        return "input/output error";
    case SL_ENOTFOUND:
        return "not found";
    case SL_EFULL:
        return "queue full";
    case SL_ECLOSED:
        return "closed";
    case SL_ETIMEDOUT:
        return "timed out";
    case SL_EDECODE:
        return "decode error";
    case SL_EREJECTED:
        return "rejected by validation";
    case SL_EBUSY:
        return "busy";
    case SL_ETOOBIG:
        return "record too large";
    }
    return "unknown error";
}
