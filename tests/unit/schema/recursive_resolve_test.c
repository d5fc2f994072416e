/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resolution of writer records that refer to their own type through an
 * array, a map, another record or a union. With libavro 1.11.1 such a
 * writer's top-level resolver outlived its last decref, about 4 KB per
 * decoder writer and per compatibility check. A resolved map value kept
 * every entry it had read, and with a record type that refers to itself
 * the third read crashed. These tests check that repeated checks and
 * decodes do not grow the heap, that rejected pairs free what they built,
 * and that decoding still reads every level of the tree. Under
 * AddressSanitizer a leak also fails the run at exit, and under valgrind
 * it is a definite leak.
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "schema/schema.h"
#include "util/err.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#ifdef HAVE_ASAN
/* Declared in <sanitizer/allocator_interface.h>, which GCC does not ship. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* A tree whose children are an array of the record itself. */
static const char array_self[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"N\"}}]}";

/* array_self read with a long id and a defaulted tag on every node. */
static const char array_self_reader[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"N\"}},"
    "{\"name\":\"tag\",\"type\":\"string\",\"default\":\"t\"}]}";

/* array_self plus a reader field without a default. */
static const char array_self_strict[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"N\"}},"
    "{\"name\":\"must\",\"type\":\"int\"}]}";

/* array_self with an id that an int cannot be read as. */
static const char array_self_bool_id[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"boolean\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"N\"}}]}";

static const char map_self[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"map\",\"values\":\"N\"}}]}";

static const char map_self_reader[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"map\",\"values\":\"N\"}}]}";

/* A refers to itself through B, which contains an array of A. */
static const char indirect[] =
    "{\"type\":\"record\",\"name\":\"A\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"v\",\"type\":\"int\"},"
    "{\"name\":\"b\",\"type\":{\"type\":\"record\",\"name\":\"B\","
    "\"fields\":[{\"name\":\"as\",\"type\":{\"type\":\"array\","
    "\"items\":\"A\"}}]}}]}";

static const char indirect_reader[] =
    "{\"type\":\"record\",\"name\":\"A\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"v\",\"type\":\"long\"},"
    "{\"name\":\"b\",\"type\":{\"type\":\"record\",\"name\":\"B\","
    "\"fields\":[{\"name\":\"as\",\"type\":{\"type\":\"array\","
    "\"items\":\"A\"}}]}}]}";

/* indirect, but B needs a field that the writer's B lacks. */
static const char indirect_strict[] =
    "{\"type\":\"record\",\"name\":\"A\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"v\",\"type\":\"int\"},"
    "{\"name\":\"b\",\"type\":{\"type\":\"record\",\"name\":\"B\","
    "\"fields\":[{\"name\":\"as\",\"type\":{\"type\":\"array\","
    "\"items\":\"A\"}},{\"name\":\"w\",\"type\":\"int\"}]}}]}";

/* Children are null or an array of the record. */
static const char union_array_self[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"kids\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":\"N\"}]}]}";

static const char union_array_self_reader[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},"
    "{\"name\":\"kids\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":\"N\"}]}]}";

/* A linked list: the record is a branch of a union with null. */
static const char union_self[] =
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"next\",\"type\":[\"null\",\"N\"]}]}";

static size_t heap_in_use(void)
{
#ifdef HAVE_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

/* Checks that reader can read writer, once directly and once as the
 * registry does for a new version over two earlier ones. */
static void check_pair(const char *reader, const char *writer, int expected)
{
    char err[512] = "";

    assert_int_equal(sl_schema_can_read(reader, writer, err, sizeof(err)),
                     expected);
    if (expected == SL_OK) {
        const char *olds[] = {writer, reader};
        int rc = sl_schema_compat_check(SL_COMPAT_BACKWARD_TRANSITIVE, reader,
                                        olds, 2, err, sizeof(err));

        if (rc != SL_OK) {
            fail_msg("BACKWARD_TRANSITIVE check failed (%d): %s", rc, err);
        }
    }
}

/* Runs check_pair 64 times after one warm-up and fails when the heap
 * grew by more than 16 KB. The leak was about 4 KB per check. */
static void assert_checks_keep_heap(const char *reader, const char *writer,
                                    int expected)
{
    size_t before;
    size_t after;

    check_pair(reader, writer, expected);
    before = heap_in_use();
    for (int i = 0; i < 64; i++) {
        check_pair(reader, writer, expected);
    }
    after = heap_in_use();
    if (after > before + 16 * 1024) {
        fail_msg("64 checks grew the heap by %zu bytes", after - before);
    }
}

static void test_array_of_self_checks_keep_heap(void **state)
{
    (void)state;
    assert_checks_keep_heap(array_self, array_self, SL_OK);
    assert_checks_keep_heap(array_self_reader, array_self, SL_OK);
}

static void test_map_of_self_checks_keep_heap(void **state)
{
    (void)state;
    assert_checks_keep_heap(map_self, map_self, SL_OK);
    assert_checks_keep_heap(map_self_reader, map_self, SL_OK);
}

static void test_indirect_self_checks_keep_heap(void **state)
{
    (void)state;
    assert_checks_keep_heap(indirect, indirect, SL_OK);
    assert_checks_keep_heap(indirect_reader, indirect, SL_OK);
}

static void test_union_of_self_checks_keep_heap(void **state)
{
    (void)state;
    assert_checks_keep_heap(union_array_self, union_array_self, SL_OK);
    assert_checks_keep_heap(union_array_self_reader, union_array_self, SL_OK);
    assert_checks_keep_heap(union_self, union_self, SL_OK);
}

static void test_rejected_recursive_pairs_keep_heap(void **state)
{
    (void)state;
    assert_checks_keep_heap(array_self_strict, array_self, SL_EREJECTED);
    assert_checks_keep_heap(array_self_bool_id, array_self, SL_EREJECTED);
    assert_checks_keep_heap(indirect_strict, indirect, SL_EREJECTED);
    /* An array of records does not resolve to a map of them. */
    assert_checks_keep_heap(map_self, array_self, SL_EREJECTED);
}

static void test_rejection_names_missing_field(void **state)
{
    char err[512] = "";

    (void)state;
    assert_int_equal(
        sl_schema_can_read(array_self_strict, array_self, err, sizeof(err)),
        SL_EREJECTED);
    assert_non_null(strstr(err, "reader field must of record N is missing"));
    /* The link that resolve.c puts on top stays out of the message. */
    assert_null(strstr(err, "Link target"));

    assert_int_equal(
        sl_schema_can_read(indirect_strict, indirect, err, sizeof(err)),
        SL_EREJECTED);
    assert_non_null(strstr(err, "field b: reader field w of record B is"));
}

/* ---- Decoding ----------------------------------------------------------- */

/* Registers writer and reader, frames body with the writer's id and
 * decodes it with a new decoder. The decoder and registry stay open for
 * the caller's checks. */
typedef struct decoded {
    sl_registry_t *reg;
    int32_t writer_id;
    avro_schema_t reader;
    sl_decoder_t *dec;
    avro_value_t *value;
} decoded_t;

/* Writes the wire-format header for id, then body, into frame. Returns
 * the frame's length. */
static size_t build_frame(uint8_t *frame, size_t frame_size, int32_t id,
                          const uint8_t *body, size_t body_len)
{
    assert_true(body_len + 5 <= frame_size);
    frame[0] = 0;
    frame[1] = (uint8_t)(id >> 24);
    frame[2] = (uint8_t)(id >> 16);
    frame[3] = (uint8_t)(id >> 8);
    frame[4] = (uint8_t)id;
    memcpy(frame + 5, body, body_len);
    return body_len + 5;
}

static sl_decode_err_t decode(decoded_t *d, const char *writer_json,
                              const char *reader_json, const uint8_t *body,
                              size_t body_len)
{
    uint8_t frame[64];
    size_t frame_len;
    int32_t rid;
    sl_decode_err_t err = SL_DECODE_OK;

    memset(d, 0, sizeof(*d));
    d->reg = sl_registry_create();
    assert_non_null(d->reg);
    assert_int_equal(
        sl_registry_register(d->reg, "w", writer_json, &d->writer_id, NULL, 0),
        SL_OK);
    assert_int_equal(
        sl_registry_register(d->reg, "r", reader_json, &rid, NULL, 0), SL_OK);
    d->reader = sl_registry_lookup(d->reg, rid);
    assert_non_null(d->reader);
    d->dec = sl_decoder_create(d->reg, d->reader);
    assert_non_null(d->dec);

    frame_len = build_frame(frame, sizeof(frame), d->writer_id, body, body_len);
    /* Later reads reuse the writer's resolved value, which libavro's map
     * reset left broken by the third read. */
    for (int i = 0; i < 3; i++) {
        err = sl_decoder_decode(d->dec, frame, frame_len, &d->value, NULL);
    }
    return err;
}

static void decoded_free(decoded_t *d)
{
    sl_decoder_destroy(d->dec);
    sl_registry_destroy(d->reg);
}

static avro_value_t field_of(avro_value_t *record, const char *name)
{
    avro_value_t field;

    if (avro_value_get_by_name(record, name, &field, NULL) != 0) {
        fail_msg("no field %s: %s", name, avro_strerror());
    }
    return field;
}

static int64_t long_of(avro_value_t *record, const char *name)
{
    avro_value_t field = field_of(record, name);
    int64_t n = -1;

    assert_int_equal(avro_value_get_long(&field, &n), 0);
    return n;
}

static size_t size_of(avro_value_t *value)
{
    size_t n = 0;

    assert_int_equal(avro_value_get_size(value, &n), 0);
    return n;
}

static avro_value_t item_of(avro_value_t *array, size_t index)
{
    avro_value_t item;

    assert_int_equal(avro_value_get_by_index(array, index, &item, NULL), 0);
    return item;
}

static void assert_tag(avro_value_t *record)
{
    avro_value_t field = field_of(record, "tag");
    const char *s = NULL;

    assert_int_equal(avro_value_get_string(&field, &s, NULL), 0);
    assert_string_equal(s, "t");
}

static void test_array_of_self_decodes(void **state)
{
    /* {id 1, kids [{id 2, kids []}, {id 3, kids [{id 4, kids []}]}]} */
    static const uint8_t body[] = {0x02, 0x04, 0x04, 0x00, 0x06,
                                   0x02, 0x08, 0x00, 0x00, 0x00};
    decoded_t d;
    avro_value_t kids, second, grandkids, leaf;

    (void)state;
    assert_int_equal(
        decode(&d, array_self, array_self_reader, body, sizeof(body)),
        SL_DECODE_OK);
    assert_int_equal(long_of(d.value, "id"), 1);
    assert_tag(d.value);
    kids = field_of(d.value, "kids");
    assert_int_equal(size_of(&kids), 2);
    second = item_of(&kids, 1);
    assert_int_equal(long_of(&second, "id"), 3);
    assert_tag(&second);
    grandkids = field_of(&second, "kids");
    assert_int_equal(size_of(&grandkids), 1);
    leaf = item_of(&grandkids, 0);
    assert_int_equal(long_of(&leaf, "id"), 4);
    assert_tag(&leaf);
    leaf = field_of(&leaf, "kids");
    assert_int_equal(size_of(&leaf), 0);
    decoded_free(&d);

    /* The same body read with the writer's own schema. */
    assert_int_equal(decode(&d, array_self, array_self, body, sizeof(body)),
                     SL_DECODE_OK);
    kids = field_of(d.value, "kids");
    second = item_of(&kids, 1);
    grandkids = field_of(&second, "kids");
    leaf = item_of(&grandkids, 0);
    {
        avro_value_t id = field_of(&leaf, "id");
        int32_t n = -1;

        assert_int_equal(avro_value_get_int(&id, &n), 0);
        assert_int_equal(n, 4);
    }
    decoded_free(&d);
}

static void test_map_of_self_decodes(void **state)
{
    /* {id 1, kids {"a": {id 2, kids {}}}} */
    static const uint8_t body[] = {0x02, 0x02, 0x02, 'a', 0x04, 0x00, 0x00};
    decoded_t d;
    avro_value_t kids, child;

    (void)state;
    assert_int_equal(decode(&d, map_self, map_self_reader, body, sizeof(body)),
                     SL_DECODE_OK);
    assert_int_equal(long_of(d.value, "id"), 1);
    kids = field_of(d.value, "kids");
    assert_int_equal(size_of(&kids), 1);
    assert_int_equal(avro_value_get_by_name(&kids, "a", &child, NULL), 0);
    assert_int_equal(long_of(&child, "id"), 2);
    child = field_of(&child, "kids");
    assert_int_equal(size_of(&child), 0);
    decoded_free(&d);
}

static void test_indirect_self_decodes(void **state)
{
    /* {v 1, b {as [{v 2, b {as []}}]}} */
    static const uint8_t body[] = {0x02, 0x02, 0x04, 0x00, 0x00};
    decoded_t d;
    avro_value_t b, as, inner;

    (void)state;
    assert_int_equal(decode(&d, indirect, indirect_reader, body, sizeof(body)),
                     SL_DECODE_OK);
    assert_int_equal(long_of(d.value, "v"), 1);
    b = field_of(d.value, "b");
    as = field_of(&b, "as");
    assert_int_equal(size_of(&as), 1);
    inner = item_of(&as, 0);
    assert_int_equal(long_of(&inner, "v"), 2);
    b = field_of(&inner, "b");
    as = field_of(&b, "as");
    assert_int_equal(size_of(&as), 0);
    decoded_free(&d);
}

static void test_union_of_self_decodes(void **state)
{
    /* {id 1, kids [{id 2, kids null}]}: branch 1 is the array. */
    static const uint8_t body[] = {0x02, 0x02, 0x02, 0x04, 0x00, 0x00};
    decoded_t d;
    avro_value_t kids, array, child;
    int branch = -1;

    (void)state;
    assert_int_equal(decode(&d, union_array_self, union_array_self_reader, body,
                            sizeof(body)),
                     SL_DECODE_OK);
    assert_int_equal(long_of(d.value, "id"), 1);
    kids = field_of(d.value, "kids");
    assert_int_equal(avro_value_get_discriminant(&kids, &branch), 0);
    assert_int_equal(branch, 1);
    assert_int_equal(avro_value_get_current_branch(&kids, &array), 0);
    assert_int_equal(size_of(&array), 1);
    child = item_of(&array, 0);
    assert_int_equal(long_of(&child, "id"), 2);
    kids = field_of(&child, "kids");
    assert_int_equal(avro_value_get_discriminant(&kids, &branch), 0);
    assert_int_equal(branch, 0);
    decoded_free(&d);
}

/* Decodes body 4096 times after the three reads of decode() and fails when the
 * heap grew by more than 16 KB. A resolved map value grew by at least 16 bytes
 * per map entry read. */
static void assert_decoding_keeps_heap(const char *writer_json,
                                       const uint8_t *body, size_t body_len)
{
    decoded_t d;
    uint8_t frame[64];
    size_t frame_len;
    size_t before;
    size_t after;

    assert_int_equal(decode(&d, writer_json, writer_json, body, body_len),
                     SL_DECODE_OK);
    frame_len = build_frame(frame, sizeof(frame), d.writer_id, body, body_len);

    before = heap_in_use();
    for (int i = 0; i < 4096; i++) {
        assert_int_equal(
            sl_decoder_decode(d.dec, frame, frame_len, &d.value, NULL),
            SL_DECODE_OK);
    }
    after = heap_in_use();
    if (after > before + 16 * 1024) {
        fail_msg("4096 decodes grew the heap by %zu bytes", after - before);
    }
    decoded_free(&d);
}

static void test_map_decoding_keeps_heap(void **state)
{
    static const char map_long[] =
        "{\"type\":\"record\",\"name\":\"M\",\"fields\":["
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":"
        "\"long\"}}]}";
    /* {m {"a": 1, "b": 2}} */
    static const uint8_t map_long_body[] = {0x04, 0x02, 'a',  0x02,
                                            0x02, 'b',  0x04, 0x00};
    /* {id 1, kids {"a": {id 2, kids {}}}} */
    static const uint8_t map_self_body[] = {0x02, 0x02, 0x02, 'a',
                                            0x04, 0x00, 0x00};
    /* {id 1, kids [{id 2, kids []}]} */
    static const uint8_t array_self_body[] = {0x02, 0x02, 0x04, 0x00, 0x00};

    (void)state;
    assert_decoding_keeps_heap(map_long, map_long_body, sizeof(map_long_body));
    assert_decoding_keeps_heap(map_self, map_self_body, sizeof(map_self_body));
    assert_decoding_keeps_heap(array_self, array_self_body,
                               sizeof(array_self_body));
}

static void test_missing_field_fails_decode(void **state)
{
    static const uint8_t body[] = {0x02, 0x00};
    decoded_t d;

    (void)state;
    assert_int_equal(
        decode(&d, array_self, array_self_strict, body, sizeof(body)),
        SL_DECODE_SCHEMA_RESOLUTION_FAILED);
    decoded_free(&d);
}

/* ---- A record that fails after resolving a field ------------------------ */

/* An optional record, and an int after it. */
static const char optional_v1[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"loc\",\"type\":[\"null\",{\"type\":\"record\","
    "\"name\":\"L\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}]},"
    "{\"name\":\"n\",\"type\":\"int\"}]}";

/* L gains a field without a default after x. libavro 1.11.1 resolves x,
 * fails on y, and its cleanup frees the resolver that n then reuses: valgrind
 * shows invalid writes and a double free. */
static const char optional_y_last[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"loc\",\"type\":[\"null\",{\"type\":\"record\","
    "\"name\":\"L\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"},"
    "{\"name\":\"y\",\"type\":\"int\"}]}]},"
    "{\"name\":\"n\",\"type\":\"int\"}]}";

/* The same field first, so L fails before it resolves anything. */
static const char optional_y_first[] =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"loc\",\"type\":[\"null\",{\"type\":\"record\","
    "\"name\":\"L\",\"fields\":[{\"name\":\"y\",\"type\":\"int\"},"
    "{\"name\":\"x\",\"type\":\"int\"}]}]},"
    "{\"name\":\"n\",\"type\":\"int\"}]}";

static void test_union_branch_missing_field_rejected(void **state)
{
    char err[512] = "";

    (void)state;
    /* Data with loc set cannot be read, so neither is compatible. */
    assert_int_equal(
        sl_schema_can_read(optional_y_last, optional_v1, err, sizeof(err)),
        SL_EREJECTED);
    assert_non_null(strstr(err, "reader field y of record L is missing"));
    assert_int_equal(
        sl_schema_can_read(optional_y_first, optional_v1, err, sizeof(err)),
        SL_EREJECTED);
    assert_non_null(strstr(err, "reader field y of record L is missing"));
    assert_checks_keep_heap(optional_y_last, optional_v1, SL_EREJECTED);
    /* The other way round, y is a writer-only field and is skipped. */
    assert_int_equal(
        sl_schema_can_read(optional_v1, optional_y_last, err, sizeof(err)),
        SL_OK);
}

static void test_union_branch_failure_in_decoder(void **state)
{
    /* {loc null, n 7} */
    static const uint8_t body[] = {0x00, 0x0e};
    decoded_t d;

    (void)state;
    /* L fails before resolving a field: the writer is accepted, and a
     * value with loc null reads. */
    assert_int_equal(
        decode(&d, optional_v1, optional_y_first, body, sizeof(body)),
        SL_DECODE_OK);
    {
        avro_value_t n = field_of(d.value, "n");
        int32_t value = -1;

        assert_int_equal(avro_value_get_int(&n, &value), 0);
        assert_int_equal(value, 7);
    }
    decoded_free(&d);

    /* L fails after resolving x, which libavro cannot undo safely: every
     * value of this writer is rejected. */
    assert_int_equal(
        decode(&d, optional_v1, optional_y_last, body, sizeof(body)),
        SL_DECODE_SCHEMA_RESOLUTION_FAILED);
    decoded_free(&d);
}

static void test_array_items_mismatch_rejected(void **state)
{
    static const char ints[] =
        "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\","
        "\"type\":[\"null\",{\"type\":\"array\",\"items\":\"int\"}]}]}";
    static const char strings[] =
        "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"a\","
        "\"type\":[\"null\",{\"type\":\"array\",\"items\":\"string\"}]}]}";
    /* {a null} */
    static const uint8_t body[] = {0x00};
    char err[512] = "";
    decoded_t d;

    (void)state;
    /* libavro 1.11.1 dereferences NULL when array items do not resolve,
     * so these must be decided before it is called. */
    assert_int_equal(sl_schema_can_read(strings, ints, err, sizeof(err)),
                     SL_EREJECTED);
    assert_non_null(
        strstr(err, "array items: writer type int cannot be read as string"));
    assert_int_equal(decode(&d, ints, strings, body, sizeof(body)),
                     SL_DECODE_SCHEMA_INCOMPATIBLE);
    decoded_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_of_self_checks_keep_heap),
        cmocka_unit_test(test_map_of_self_checks_keep_heap),
        cmocka_unit_test(test_indirect_self_checks_keep_heap),
        cmocka_unit_test(test_union_of_self_checks_keep_heap),
        cmocka_unit_test(test_rejected_recursive_pairs_keep_heap),
        cmocka_unit_test(test_rejection_names_missing_field),
        cmocka_unit_test(test_array_of_self_decodes),
        cmocka_unit_test(test_map_of_self_decodes),
        cmocka_unit_test(test_indirect_self_decodes),
        cmocka_unit_test(test_union_of_self_decodes),
        cmocka_unit_test(test_map_decoding_keeps_heap),
        cmocka_unit_test(test_missing_field_fails_decode),
        cmocka_unit_test(test_union_branch_missing_field_rejected),
        cmocka_unit_test(test_union_branch_failure_in_decoder),
        cmocka_unit_test(test_array_items_mismatch_rejected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
