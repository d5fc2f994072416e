/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 well-formedness as RFC 3629 defines it: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
#ifndef SLUICE_UTIL_UTF8_H
#define SLUICE_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/**
 * Returns the length (1-4) of the well-formed UTF-8 sequence at the start
 * of the len bytes at s (len > 0), or 0 when it is malformed or cut off.
 */
size_t sl_utf8_sequence(const unsigned char *s, size_t len);

/** Returns true when the len bytes at s are well-formed UTF-8 and hold no
 * NUL byte. */
bool sl_utf8_valid(const char *s, size_t len);

#endif
