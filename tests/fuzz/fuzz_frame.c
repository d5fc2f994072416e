/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the frame decoder: any bytes go through the Confluent
 * framing, the bounded body walk and libavro's read into the reader
 * schema. The registry contains both built-in schemas (ids 1 and 2) and the
 * evolved writer schemas of tests/fixtures/schemas (ids 3 and up), so a
 * frame naming one of those ids also runs the resolution rewrite.
 *
 * Input: byte 0 picks the decoders (bit 0: commerce event instead of
 * reading, bit 7: the commerce reader for the generic decode); the rest is
 * the frame. A decoded record must hold NUL-terminated, valid UTF-8 text,
 * as record.h promises.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "util/err.h"
#include "util/log.h"
#include "fuzz_text.h"

static sl_registry_t *registry;
static sl_decoder_t *decoders[2];

/* Writer schemas of other versions; each gets the next free id. */
static const char *const evolved[] = {
    "sensor_reading_v2.avsc", "sensor_reading_enum_co2.avsc",
    "sensor_reading_no_location.avsc", "sensor_reading_value_string.avsc",
    "sensor_reading_required_site.avsc"};

static void add_evolved(const char *file)
{
    char path[512];
    char err[256] = "";
    FILE *fp;
    char *text;
    long len;
    int32_t id;

    snprintf(path, sizeof(path), "%s/%s", SLUICE_FUZZ_SCHEMA_DIR, file);
    fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        abort();
    }
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    text = calloc(1, (size_t)len + 1);
    if (text == NULL || fread(text, 1, (size_t)len, fp) != (size_t)len) {
        fprintf(stderr, "%s: read failed\n", path);
        abort();
    }
    fclose(fp);
    if (sl_registry_register(registry, file, text, &id, err, sizeof(err)) !=
        SL_OK) {
        fprintf(stderr, "%s: %s\n", path, err);
        abort();
    }
    free(text);
}

/* Frees what setup() made, so that the leak check at exit reports only
 * memory that decoding lost. */
static void teardown(void)
{
    sl_decoder_destroy(decoders[0]);
    sl_decoder_destroy(decoders[1]);
    sl_registry_destroy(registry);
}

static void setup(void)
{
    static const char *const builtins[2] = {"sensor_reading.avsc",
                                            "ecommerce_event.avsc"};
    char err[256] = "";

    sl_log_set_level(SL_LOG_ERROR);
    registry = sl_registry_create();
    for (int i = 0; i < 2; i++) {
        int32_t id;

        if (sl_registry_register(registry, builtins[i],
                                 sl_schema_builtin(builtins[i]), &id, err,
                                 sizeof(err)) != SL_OK) {
            fprintf(stderr, "%s: %s\n", builtins[i], err);
            abort();
        }
        decoders[i] =
            sl_decoder_create(registry, sl_registry_lookup(registry, id));
    }
    for (size_t i = 0; i < sizeof(evolved) / sizeof(evolved[0]); i++)
        add_evolved(evolved[i]);
    atexit(teardown);
}

static void check_reading(const sl_reading_t *r)
{
    CHECK_TEXT(*r, sensor_id);
    CHECK_TEXT(*r, location);
    if (r->has_unit)
        CHECK_TEXT(*r, unit);
    if ((unsigned)r->sensor_type >= SL_SENSOR_TYPE_COUNT) {
        fprintf(stderr, "decoded sensor_type %d\n", (int)r->sensor_type);
        abort();
    }
}

static void check_event(const sl_event_t *e)
{
    CHECK_TEXT(*e, event_id);
    CHECK_TEXT(*e, user_id);
    CHECK_TEXT(*e, session_id);
    CHECK_TEXT(*e, ip_address);
    if (e->present & SL_EV_PRODUCT_NAME)
        CHECK_TEXT(*e, product_name);
    if (e->present & SL_EV_CATEGORY)
        CHECK_TEXT(*e, category);
    if (e->present & SL_EV_CURRENCY)
        CHECK_TEXT(*e, currency);
    if (e->present & SL_EV_PAGE)
        CHECK_TEXT(*e, page);
    if (e->present & SL_EV_PAYMENT_METHOD)
        CHECK_TEXT(*e, payment_method);
    if (e->present & SL_EV_SHIPPING_ADDRESS)
        CHECK_TEXT(*e, shipping_address);
    if (e->present & SL_EV_QUERY)
        CHECK_TEXT(*e, query);
    if ((unsigned)e->event_type >= SL_EVENT_TYPE_COUNT ||
        (unsigned)e->device >= SL_DEVICE_COUNT) {
        fprintf(stderr, "decoded event_type %d device %d\n", (int)e->event_type,
                (int)e->device);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    avro_value_t *value;
    sl_reading_t reading;
    sl_event_t event;

    if (registry == NULL)
        setup();
    if (size == 0)
        return 0;

    if (data[0] & 1) {
        if (sl_event_decode(decoders[1], data + 1, size - 1, &event) ==
            SL_DECODE_OK)
            check_event(&event);
    } else {
        if (sl_reading_decode(decoders[0], data + 1, size - 1, &reading) ==
            SL_DECODE_OK)
            check_reading(&reading);
    }
    sl_decoder_decode(decoders[data[0] >> 7], data + 1, size - 1, &value, NULL);
    return 0;
}
