/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Locates the failure cases kept with the tests, in
 * $SLUICE_SOURCE_DIR/tests/fixtures/cases. A missing folder fails the test
 * with a message instead of passing silently.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "fixtures.h"
#include "util/err.h"

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *fixture_case_dir(const char *name)
{
    static char path[4096];
    const char *source = getenv("SLUICE_SOURCE_DIR");

    if (source != NULL && source[0] != '\0') {
        snprintf(path, sizeof(path), "%s/tests/fixtures/cases/%s", source,
                 name);
        if (is_dir(path)) {
            return path;
        }
    }
    fail_msg("failure case %s not found in SLUICE_SOURCE_DIR=%s/tests/"
             "fixtures/cases",
             name, source ? source : "(unset)");
    return NULL;
}

char *fixture_text(const char *case_name, const char *file)
{
    char path[4200];
    FILE *f;
    char *text = malloc(1 << 16);
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", fixture_case_dir(case_name), file);
    f = fopen(path, "rb");
    if (f == NULL) {
        free(text);
        fail_msg("cannot open %s", path);
    }
    assert_non_null(text);
    n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

size_t fixture_hex(const char *case_name, const char *file, uint8_t *buf)
{
    char *text = fixture_text(case_name, file);
    size_t n = 0;
    unsigned byte;

    for (const char *p = text; p[0] != '\0' && p[0] != '\n'; p += 2) {
        if (sscanf(p, "%2x", &byte) != 1 || n >= FIXTURE_MAX_MESSAGE) {
            free(text);
            fail_msg("bad hex in %s/%s", case_name, file);
        }
        buf[n++] = (uint8_t)byte;
    }
    free(text);
    return n;
}

sl_registry_t *fixture_registry(const char *case_name)
{
    char *text = fixture_text(case_name, "registry.json");
    json_t *root = json_loads(text, 0, NULL);
    sl_registry_t *reg = sl_registry_create();
    const char *key;
    json_t *schema;

    free(text);
    assert_non_null(root);
    assert_non_null(reg);
    json_object_foreach(root, key, schema)
    {
        char *schema_text = json_dumps(schema, JSON_COMPACT);
        char err[256] = "";
        int rc = sl_registry_add(reg, atoi(key), NULL, schema_text, err,
                                 sizeof(err));

        free(schema_text);
        if (rc != SL_OK) {
            fail_msg("registry id %s of %s rejected: %s", key, case_name, err);
        }
    }
    json_decref(root);
    return reg;
}

avro_schema_t fixture_schema(const char *case_name, const char *file)
{
    char path[4200];
    char err[256] = "";
    avro_schema_t schema;

    snprintf(path, sizeof(path), "%s/%s", fixture_case_dir(case_name), file);
    schema = sl_schema_load_file(path, err, sizeof(err));
    if (schema == NULL) {
        fail_msg("cannot load %s: %s", path, err);
    }
    return schema;
}
