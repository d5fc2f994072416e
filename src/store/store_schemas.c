/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end-neutral half of the schema registry calls: argument checks
 * and dispatch through the back end's optional registry operations. A back
 * end without them returns SL_EINVAL, so the registry server reports the
 * store as unsupported instead of crashing.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/err.h"

static const struct sl_store_registry_ops *registry_ops(sl_store_t *st)
{
    return st != NULL ? st->ops->registry : NULL;
}

/* A subject of a level call: NULL (the global level) or a non-empty name,
 * so that no subject collides with the global row. */
static bool level_subject_ok(const char *subject)
{
    return subject == NULL || subject[0] != '\0';
}

int sl_store_schema_insert(sl_store_t *st, const char *subject,
                           const char *schema, const char *normalized,
                           int64_t now_ms, int32_t *id, int32_t *version)
{
    const struct sl_store_registry_ops *ops = registry_ops(st);

    if (ops == NULL || subject == NULL || schema == NULL ||
        normalized == NULL || id == NULL || version == NULL)
        return SL_EINVAL;
    return ops->schema_insert(st, subject, schema, normalized, now_ms, id,
                              version);
}

int sl_store_schema_set_normalized(sl_store_t *st, const char *subject,
                                   int32_t version, const char *normalized)
{
    const struct sl_store_registry_ops *ops = registry_ops(st);

    if (ops == NULL || subject == NULL || normalized == NULL)
        return SL_EINVAL;
    return ops->schema_set_normalized(st, subject, version, normalized);
}

int sl_store_schema_list(sl_store_t *st, const char *subject,
                         sl_store_schema_row_t **rows, size_t *n)
{
    const struct sl_store_registry_ops *ops = registry_ops(st);

    if (ops == NULL || rows == NULL || n == NULL)
        return SL_EINVAL;
    *rows = NULL;
    *n = 0;
    return ops->schema_list(st, subject, rows, n);
}

int sl_store_schema_get(sl_store_t *st, int32_t id, sl_store_schema_row_t *row)
{
    const struct sl_store_registry_ops *ops = registry_ops(st);

    if (ops == NULL || row == NULL)
        return SL_EINVAL;
    return ops->schema_get(st, id, row);
}

void sl_store_schema_row_fini(sl_store_schema_row_t *row)
{
    free(row->subject);
    free(row->schema);
    free(row->normalized);
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

int sl_store_schema_config_get(sl_store_t *st, const char *subject,
                               char level[SL_STORE_LEVEL_MAX + 1])
{
    const struct sl_store_registry_ops *ops = registry_ops(st);

    if (ops == NULL || level == NULL || !level_subject_ok(subject))
        return SL_EINVAL;
    level[0] = '\0';
    return ops->config_get(st, subject, level);
}

int sl_store_schema_config_set(sl_store_t *st, const char *subject,
                               const char *level, int64_t now_ms)
{
    const struct sl_store_registry_ops *ops = registry_ops(st);

    if (ops == NULL || level == NULL || level[0] == '\0' ||
        strlen(level) > SL_STORE_LEVEL_MAX || !level_subject_ok(subject))
        return SL_EINVAL;
    return ops->config_set(st, subject, level, now_ms);
}

int sl_store_schema_config_delete(sl_store_t *st, const char *subject,
                                  char old_level[SL_STORE_LEVEL_MAX + 1])
{
    const struct sl_store_registry_ops *ops = registry_ops(st);
    char ignored[SL_STORE_LEVEL_MAX + 1];

    if (ops == NULL || !level_subject_ok(subject))
        return SL_EINVAL;
    if (old_level == NULL)
        old_level = ignored;
    old_level[0] = '\0';
    return ops->config_delete(st, subject, old_level);
}
