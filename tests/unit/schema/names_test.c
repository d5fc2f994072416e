/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A named type defined twice in one schema, or a record with two fields
 * of one name, is rejected before libavro sees the text: libavro 1.11.1
 * leaks memory on both, when parsing or when resolving. The fuzz targets
 * fuzz_compat and fuzz_registry found the leaks; under AddressSanitizer
 * these tests also fail if one comes back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "schema/schema.h"
#include "util/err.h"

/* Two enums with the full name E. */
static const char dup_enum[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\"]}},"
    "{\"name\":\"b\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\"]}}]}";

/* x.F twice: once dotted, once through the enclosing namespace, inside a
 * union. */
static const char dup_fixed_ns[] =
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"x\",\"fields\":["
    "{\"name\":\"a\",\"type\":{\"type\":\"fixed\",\"name\":\"x.F\","
    "\"size\":1}},"
    "{\"name\":\"b\",\"type\":[\"null\",{\"type\":\"fixed\",\"name\":\"F\","
    "\"size\":1}]}]}";

/* The record itself and an array item are both named E. */
static const char dup_record_item[] =
    "{\"type\":\"record\",\"name\":\"E\",\"fields\":["
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":"
    "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}}}]}";

/* ".R" is R in the empty namespace, so the inner record R defines it
 * again. */
static const char dup_leading_dot[] =
    "{\"type\":\"record\",\"name\":\".R\",\"fields\":["
    "{\"name\":\"f\",\"type\":{\"type\":\"record\",\"name\":\"R\","
    "\"fields\":[]}}]}";

/* Two fields named a; libavro accepts the schema, then leaks when it
 * resolves it. */
static const char dup_field[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"string\"},"
    "{\"name\":\"a\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

/* E in two namespaces: two different full names, a valid schema. */
static const char two_namespaces[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"namespace\":\"x\",\"symbols\":[\"A\"]}},"
    "{\"name\":\"b\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"namespace\":\"y\",\"symbols\":[\"A\"]}}]}";

static void can_read_rejects(const char *schema, const char *name)
{
    char err[256] = "";

    assert_int_equal(sl_schema_can_read(schema, schema, err, sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "defined twice"));
    assert_non_null(strstr(err, name));
}

static void test_compat_rejects_duplicate_names(void **state)
{
    (void)state;
    can_read_rejects(dup_enum, "E");
    can_read_rejects(dup_fixed_ns, "x.F");
    can_read_rejects(dup_record_item, "E");
    can_read_rejects(dup_leading_dot, "R");
}

static void test_compat_rejects_duplicate_fields(void **state)
{
    char err[256] = "";
    const char *const olds[1] = {two_namespaces};

    (void)state;
    assert_int_equal(sl_schema_compat_check(SL_COMPAT_FULL, dup_field, olds, 1,
                                            err, sizeof(err)),
                     SL_EINVAL);
    assert_non_null(strstr(err, "two fields named a"));
}

static void test_registry_rejects_duplicate_names(void **state)
{
    sl_registry_t *reg = sl_registry_create();
    char err[256] = "";
    int32_t id = 0;

    (void)state;
    assert_int_equal(
        sl_registry_register(reg, "s-value", dup_enum, &id, err, sizeof(err)),
        SL_EINVAL);
    assert_non_null(strstr(err, "defined twice"));
    assert_int_equal(
        sl_registry_add(reg, 7, "s-value", dup_fixed_ns, err, sizeof(err)),
        SL_EINVAL);
    assert_null(sl_registry_lookup(reg, 7));
    sl_registry_destroy(reg);
}

static void test_same_name_in_two_namespaces(void **state)
{
    sl_registry_t *reg = sl_registry_create();
    char err[256] = "";
    int32_t id = 0;

    (void)state;
    assert_int_equal(
        sl_schema_can_read(two_namespaces, two_namespaces, err, sizeof(err)),
        SL_OK);
    assert_int_equal(sl_registry_register(reg, "s-value", two_namespaces, &id,
                                          err, sizeof(err)),
                     SL_OK);
    assert_non_null(sl_registry_lookup(reg, id));
    sl_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compat_rejects_duplicate_names),
        cmocka_unit_test(test_compat_rejects_duplicate_fields),
        cmocka_unit_test(test_registry_rejects_duplicate_names),
        cmocka_unit_test(test_same_name_in_two_namespaces),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
