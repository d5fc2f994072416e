/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Status codes shared by every sluice module. Functions that can fail return
 * SL_OK (zero) or one of the negative codes below; constructors return a
 * pointer or NULL instead. sl_strerror() gives the text for logs.
 */
#ifndef SLUICE_UTIL_ERR_H
#define SLUICE_UTIL_ERR_H

typedef enum sl_err {
    SL_OK = 0,
    SL_EINVAL = -1,    /* an argument or input value is invalid */
    SL_ENOMEM = -2,    /* an allocation failed */
    SL_EIO = -3,       /* a file, socket or database call failed */
    SL_ENOTFOUND = -4, /* the named thing does not exist */
    SL_EFULL = -5,     /* a bounded queue stayed full until the timeout */
    SL_ECLOSED = -6,   /* the object is shutting down */
    SL_ETIMEDOUT = -7, /* nothing arrived before the timeout */
    SL_EDECODE = -8,   /* bytes do not form a valid record */
    SL_EREJECTED = -9, /* a record failed validation */
    SL_EBUSY = -10,    /* a resource is locked by someone else */
    SL_ETOOBIG = -11,  /* a record is larger than the limit allows */
} sl_err_t;

/** Returns a static English description of an sl_err_t value. */
const char *sl_strerror(int err);

#endif
