/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the frame decoder: any bytes go through
 * sl_decoder_decode against both built-in schemas, registered as ids 1 and
 * 2, so the walk, the resolution rewrite and libavro's read all see hostile
 * input. Bit 0 of the first byte picks the record decoder, bit 7 the
 * reader of the generic decode.
 *
 * Build (not wired into CMake yet):
 *   clang -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     tests/fuzz/fuzz_frame.c src/schema/?*.c src/model/record.c \
 *     src/util/err.c src/util/log.c src/util/timeutil.c \
 *     build/src/schema/embedded_schemas.c \
 *     $(pkg-config --cflags --libs avro-c jansson) -lpthread -o fuzz_frame
 */
#include <stddef.h>
#include <stdint.h>

#include "schema/schema.h"
#include "util/err.h"
#include "util/log.h"

static sl_registry_t *registry;
static sl_decoder_t *decoders[2];

static void setup(void)
{
    static const char *const files[2] = {"sensor_reading.avsc",
                                         "ecommerce_event.avsc"};

    sl_log_set_level(SL_LOG_ERROR);
    registry = sl_registry_create();
    for (int i = 0; i < 2; i++) {
        int32_t id;

        sl_registry_register(registry, files[i], sl_schema_builtin(files[i]),
                             &id, NULL, 0);
        decoders[i] =
            sl_decoder_create(registry, sl_registry_lookup(registry, id));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    avro_value_t *value;
    sl_reading_t reading;
    sl_event_t event;

    if (registry == NULL) {
        setup();
    }
    if (size == 0) {
        return 0;
    }
    if (data[0] & 1) {
        sl_event_decode(decoders[1], data + 1, size - 1, &event);
    } else {
        sl_reading_decode(decoders[0], data + 1, size - 1, &reading);
    }
    sl_decoder_decode(decoders[data[0] >> 7], data + 1, size - 1, &value, NULL);
    return 0;
}
