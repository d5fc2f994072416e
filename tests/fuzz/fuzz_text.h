/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A check shared by the fuzz harnesses: text in a record's fixed buffer
 * must be NUL-terminated and valid UTF-8, as model/record.h promises.
 */
#ifndef SLUICE_TESTS_FUZZ_FUZZ_TEXT_H
#define SLUICE_TESTS_FUZZ_FUZZ_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

/* Aborts unless buf[0..size) contains a NUL and valid UTF-8 before it. */
static inline void fuzz_check_text(const char *buf, size_t size,
                                   const char *field)
{
    const char *nul = memchr(buf, '\0', size);

    if (nul == NULL || !sl_utf8_valid(buf, (size_t)(nul - buf))) {
        fprintf(stderr, "%s is not NUL-terminated UTF-8\n", field);
        abort();
    }
}

#define CHECK_TEXT(rec, field)                                                 \
    fuzz_check_text((rec).field, sizeof((rec).field), #field)

#endif
