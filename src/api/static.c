/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lookup of the web files compiled into the binary by
 * cmake/embed_static.cmake: the OpenAPI document, the /docs page, the
 * dashboard and the uPlot chart library.
 */
#include "api/api_int.h"

#include <string.h>

struct sl_api_static_file {
    const char *path;
    const char *type;
    const unsigned char *data;
    size_t len;
};

/* Generated: embedded_static.c in the build tree. */
extern const struct sl_api_static_file sl_api_static_files[];

bool sl_api__static_find(const char *path, const char **data, size_t *len,
                         const char **content_type)
{
    for (const struct sl_api_static_file *f = sl_api_static_files;
         f->path != NULL; f++) {
        if (strcmp(f->path, path) == 0) {
            *data = (const char *)f->data;
            *len = f->len;
            *content_type = f->type;
            return true;
        }
    }
    return false;
}
