/* SPDX-License-Identifier: Apache-2.0 */
/* Hexadecimal digits, for percent-decoding and captured frames. */
#ifndef SLUICE_UTIL_HEX_H
#define SLUICE_UTIL_HEX_H

/** Returns the value 0-15 of a hex digit (either case), or -1. */
static inline int sl_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
