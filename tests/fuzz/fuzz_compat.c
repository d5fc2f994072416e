/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the schema compatibility checks (src/schema/compat.c)
 * and the resolution they share with the decoder: two schema texts from
 * the input are checked against each other in both directions and under
 * every level, with the built-in sensor schema as an older version.
 *
 * Input: byte 0 picks the level (modulo the level count); the rest is the
 * new schema, a NUL byte, then the old one (absent: the new one again).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "util/err.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *olds[2];
    char err[512];
    char *text;
    const char *new_json;
    const char *old_json;
    size_t first;
    sl_compat_level_t level;

    if (size == 0)
        return 0;
    sl_log_set_level(SL_LOG_ERROR);
    level = (sl_compat_level_t)(data[0] % SL_COMPAT_LEVEL_COUNT);
    /* Copy with a NUL after the end, so both parts are C strings. */
    text = malloc(size);
    if (text == NULL)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    new_json = text;
    first = strlen(text);
    old_json = first + 1 < size ? text + first + 1 : text;

    sl_schema_can_read(new_json, old_json, err, sizeof(err));
    sl_schema_can_read(old_json, new_json, err, sizeof(err));
    olds[0] = sl_schema_builtin("sensor_reading.avsc");
    olds[1] = old_json;
    sl_schema_compat_check(level, new_json, olds, 2, err, sizeof(err));
    free(text);
    return 0;
}
