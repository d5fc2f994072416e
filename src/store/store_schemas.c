/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end-neutral half of the schema registry rows: argument checks
 * and dispatch through the optional schema_* entries of the operation
 * table. A back end without them returns SL_EINVAL, so the registry
 * server reports the store as unsupported instead of crashing.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/err.h"

int sl_store_schema_insert(sl_store_t *st, const char *subject,
                           const char *schema, int64_t now_ms, int32_t *id,
                           int32_t *version)
{
    if (st == NULL || subject == NULL || schema == NULL || id == NULL ||
        version == NULL || st->ops->schema_insert == NULL)
        return SL_EINVAL;
    return st->ops->schema_insert(st, subject, schema, now_ms, id, version);
}

int sl_store_schema_list(sl_store_t *st, const char *subject,
                         sl_store_schema_row_t **rows, size_t *n)
{
    if (st == NULL || rows == NULL || n == NULL || st->ops->schema_list == NULL)
        return SL_EINVAL;
    *rows = NULL;
    *n = 0;
    return st->ops->schema_list(st, subject, rows, n);
}

int sl_store_schema_get(sl_store_t *st, int32_t id, sl_store_schema_row_t *row)
{
    if (st == NULL || row == NULL || st->ops->schema_get == NULL)
        return SL_EINVAL;
    return st->ops->schema_get(st, id, row);
}

void sl_store_schema_row_fini(sl_store_schema_row_t *row)
{
    free(row->subject);
    free(row->schema);
    memset(row, 0, sizeof(*row));
}

void sl_store_schema_rows_free(sl_store_schema_row_t *rows, size_t n)
{
    if (rows == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        sl_store_schema_row_fini(&rows[i]);
    free(rows);
}
