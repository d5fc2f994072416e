/* SPDX-License-Identifier: Apache-2.0 */
/* Enum symbols of the schemas, and the text helpers every decoder uses. */
#include "model/record.h"

#include <string.h>
#include <strings.h>

#include "util/err.h"

/* Symbol order is the schema's: an enum's Avro index is its C value. */
static const char *const sensor_type_names[SL_SENSOR_TYPE_COUNT] = {
    "temperature", "humidity", "pressure", "vibration", "power", "other"};
static const char *const event_type_names[SL_EVENT_TYPE_COUNT] = {
    "page_view", "add_to_cart",      "purchase",
    "search",    "remove_from_cart", "other"};
static const char *const device_names[SL_DEVICE_COUNT] = {"mobile", "desktop",
                                                          "tablet", "other"};

static int lookup(const char *const *names, int count, const char *name)
{
    for (int i = 0; i < count; i++) {
        if (strcasecmp(names[i], name) == 0)
            return i;
    }
    return -1;
}

const char *sl_sensor_type_name(sl_sensor_type_t type)
{
    if ((unsigned)type >= SL_SENSOR_TYPE_COUNT)
        return "other";
    return sensor_type_names[type];
}

int sl_sensor_type_parse(const char *name, sl_sensor_type_t *out)
{
    int i = lookup(sensor_type_names, SL_SENSOR_TYPE_COUNT, name);

    if (i < 0)
        return SL_ENOTFOUND;
    *out = (sl_sensor_type_t)i;
    return SL_OK;
}

const char *sl_event_type_name(sl_event_type_t type)
{
    if ((unsigned)type >= SL_EVENT_TYPE_COUNT)
        return "other";
    return event_type_names[type];
}

int sl_event_type_parse(const char *name, sl_event_type_t *out)
{
    int i = lookup(event_type_names, SL_EVENT_TYPE_COUNT, name);

    if (i < 0)
        return SL_ENOTFOUND;
    *out = (sl_event_type_t)i;
    return SL_OK;
}

const char *sl_device_name(sl_device_t device)
{
    if ((unsigned)device >= SL_DEVICE_COUNT)
        return "other";
    return device_names[device];
}

int sl_device_parse(const char *name, sl_device_t *out)
{
    int i = lookup(device_names, SL_DEVICE_COUNT, name);

    if (i < 0)
        return SL_ENOTFOUND;
    *out = (sl_device_t)i;
    return SL_OK;
}

int sl_text_copy(char *dst, size_t dst_size, const char *src)
{
    size_t len = strlen(src);

    if (len >= dst_size) {
        dst[0] = '\0';
        return SL_EINVAL;
    }
    memcpy(dst, src, len + 1);
    return SL_OK;
}
