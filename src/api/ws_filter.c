/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Filters of the WebSocket streams: which frames a client receives, set
 * from the query string of its URL and changed by its control messages.
 * A control message is one JSON object such as
 *   {"action": "subscribe", "sensor_id": ["s-1", "s-2"], "id": 7}
 * and gets one reply, {"type": "ack", ...} with the filter now in force or
 * {"type": "error", "error": "..."}; a message that fails changes nothing.
 */
#include "api/hub_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/record.h"
#include "util/err.h"

static const char *const severity_names[SL_WS_SEVERITY_COUNT] = {
    "info", "warning", "critical"};

const char *sl_ws__stream_name(sl_ws_stream_t stream)
{
    return stream == SL_WS_ALERTS ? "alerts" : "sensors";
}

int sl_ws__severity_parse(const char *name)
{
    for (int i = 0; i < SL_WS_SEVERITY_COUNT; i++) {
        if (strcasecmp(name, severity_names[i]) == 0)
            return i;
    }
    return -1;
}

void sl_ws__filter_init(sl_ws_filter_t *f)
{
    memset(f, 0, sizeof(*f));
    f->sensor_id.any = true;
    f->location.any = true;
    f->sensor_type.any = true;
    f->severity.any = true;
}

static bool text_match(const sl_ws_text_set_t *set, uint64_t hash,
                       const char *value)
{
    if (set->any)
        return true;
    for (size_t i = 0; i < set->count; i++) {
        if (set->hash[i] == hash && strcmp(set->value[i], value) == 0)
            return true;
    }
    return false;
}

bool sl_ws__filter_takes_sensor(const sl_ws_filter_t *f, uint64_t hash,
                                const char *sensor_id)
{
    return !f->paused && text_match(&f->sensor_id, hash, sensor_id);
}

static bool enum_match(const sl_ws_enum_set_t *set, int symbol)
{
    return set->any || (symbol >= 0 && (set->mask & (1u << symbol)) != 0);
}

bool sl_ws__filter_match(const sl_ws_filter_t *f, const sl_ws_frame_t *fr)
{
    if (!enum_match(&f->sensor_type, fr->sensor_type) ||
        !sl_ws__filter_takes_sensor(f, fr->sensor_id_hash, fr->sensor_id))
        return false;
    if (fr->stream == SL_WS_SENSORS)
        return text_match(&f->location, fr->location_hash, fr->location);
    return enum_match(&f->severity, fr->severity);
}

/* ---- fields ---------------------------------------------------------------
 */

/* The filter fields of a stream, in the order they are rendered. */
typedef enum field {
    F_SENSOR_ID,
    F_SENSOR_TYPE,
    F_LOCATION,
    F_SEVERITY,
    F_COUNT
} field_t;

static const char *const field_names[F_COUNT] = {"sensor_id", "sensor_type",
                                                 "location", "severity"};

static bool field_in_stream(field_t field, sl_ws_stream_t stream)
{
    if (field == F_LOCATION)
        return stream == SL_WS_SENSORS;
    if (field == F_SEVERITY)
        return stream == SL_WS_ALERTS;
    return true;
}

static bool field_is_text(field_t field)
{
    return field == F_SENSOR_ID || field == F_LOCATION;
}

static sl_ws_text_set_t *text_set(sl_ws_filter_t *f, field_t field)
{
    return field == F_SENSOR_ID ? &f->sensor_id : &f->location;
}

static sl_ws_enum_set_t *enum_set(sl_ws_filter_t *f, field_t field)
{
    return field == F_SENSOR_TYPE ? &f->sensor_type : &f->severity;
}

static int field_parse(const char *name, sl_ws_stream_t stream)
{
    for (int i = 0; i < F_COUNT; i++) {
        if (strcmp(name, field_names[i]) == 0 && field_in_stream(i, stream))
            return i;
    }
    return -1;
}

/* Returns the symbol of an enum field's value, or -1 after writing why. */
static int enum_parse(field_t field, const char *value, char *err,
                      size_t err_size)
{
    sl_sensor_type_t type;
    int symbol;

    if (field == F_SENSOR_TYPE) {
        if (sl_sensor_type_parse(value, &type) == SL_OK)
            return (int)type;
        snprintf(err, err_size,
                 "sensor_type: '%.64s' is not one of temperature, humidity, "
                 "pressure, vibration, power, other",
                 value);
        return -1;
    }
    symbol = sl_ws__severity_parse(value);
    if (symbol < 0)
        snprintf(err, err_size,
                 "severity: '%.64s' is not one of info, warning, critical",
                 value);
    return symbol;
}

/* Adds value to a field. A field that matched everything then matches
 * only the values added. */
static int field_add(sl_ws_filter_t *f, field_t field, const char *value,
                     char *err, size_t err_size)
{
    if (field_is_text(field)) {
        sl_ws_text_set_t *set = text_set(f, field);
        uint64_t hash = sl_ws__hash(value);
        size_t len = strlen(value);

        if (len == 0 || len > SL_WS_VALUE_MAX) {
            snprintf(err, err_size, "%s: values must have 1 to %d bytes",
                     field_names[field], SL_WS_VALUE_MAX);
            return SL_EINVAL;
        }
        if (set->any) {
            set->any = false;
            set->count = 0;
        }
        if (text_match(set, hash, value))
            return SL_OK;
        if (set->count == SL_WS_FILTER_VALUES) {
            snprintf(err, err_size, "%s: at most %d values", field_names[field],
                     SL_WS_FILTER_VALUES);
            return SL_EINVAL;
        }
        set->hash[set->count] = hash;
        memcpy(set->value[set->count], value, len + 1);
        set->count++;
        return SL_OK;
    }

    sl_ws_enum_set_t *set = enum_set(f, field);
    int symbol = enum_parse(field, value, err, err_size);

    if (symbol < 0)
        return SL_EINVAL;
    if (set->any) {
        set->any = false;
        set->mask = 0;
    }
    set->mask |= 1u << symbol;
    return SL_OK;
}

static int field_remove(sl_ws_filter_t *f, field_t field, const char *value,
                        char *err, size_t err_size)
{
    if (field_is_text(field)) {
        sl_ws_text_set_t *set = text_set(f, field);
        uint64_t hash = sl_ws__hash(value);

        for (size_t i = 0; !set->any && i < set->count; i++) {
            if (set->hash[i] == hash && strcmp(set->value[i], value) == 0) {
                set->count--;
                set->hash[i] = set->hash[set->count];
                memcpy(set->value[i], set->value[set->count],
                       sizeof(set->value[i]));
                return SL_OK;
            }
        }
    } else {
        sl_ws_enum_set_t *set = enum_set(f, field);
        int symbol = enum_parse(field, value, err, err_size);

        if (symbol < 0)
            return SL_EINVAL;
        if (!set->any && (set->mask & (1u << symbol)) != 0) {
            set->mask &= ~(1u << symbol);
            return SL_OK;
        }
    }
    snprintf(err, err_size,
             "%s: '%.64s' is not in the filter; the filter lists only the "
             "values subscribed to (see \"filter\" in the last ack)",
             field_names[field], value);
    return SL_EINVAL;
}

static void field_any(sl_ws_filter_t *f, field_t field)
{
    if (field_is_text(field)) {
        text_set(f, field)->any = true;
        text_set(f, field)->count = 0;
    } else {
        enum_set(f, field)->any = true;
        enum_set(f, field)->mask = 0;
    }
}

int sl_ws__filter_param(sl_ws_filter_t *f, sl_ws_stream_t stream,
                        const char *name, const char *value, char *err,
                        size_t err_size)
{
    int field = field_parse(name, stream);
    char copy[SL_WS_VALUE_MAX + 1];
    char *save = NULL;

    if (field < 0) {
        snprintf(err, err_size, "%.64s: unknown parameter; /ws/%s takes %s",
                 name, sl_ws__stream_name(stream),
                 stream == SL_WS_SENSORS ? "sensor_id, sensor_type, location"
                                         : "sensor_id, sensor_type, severity");
        return SL_EINVAL;
    }
    if (field_is_text(field))
        return field_add(f, field, value, err, err_size);

    /* Enum symbols contain no commas, so a list may be comma-separated. */
    if (strlen(value) >= sizeof(copy)) {
        snprintf(err, err_size, "%s: value too long", name);
        return SL_EINVAL;
    }
    memcpy(copy, value, strlen(value) + 1);
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (field_add(f, field, tok, err, err_size) != SL_OK)
            return SL_EINVAL;
    }
    return SL_OK;
}

/* ---- rendering ------------------------------------------------------------
 */

static json_t *field_json(sl_ws_filter_t *f, field_t field)
{
    json_t *list;

    if (field_is_text(field) ? text_set(f, field)->any
                             : enum_set(f, field)->any)
        return json_null();
    list = json_array();
    if (list == NULL)
        return NULL;
    if (field_is_text(field)) {
        sl_ws_text_set_t *set = text_set(f, field);
        for (size_t i = 0; i < set->count; i++)
            json_array_append_new(list, json_string(set->value[i]));
        return list;
    }
    for (int s = 0; s < 32; s++) {
        if ((enum_set(f, field)->mask & (1u << s)) == 0)
            continue;
        json_array_append_new(
            list, json_string(field == F_SENSOR_TYPE
                                  ? sl_sensor_type_name((sl_sensor_type_t)s)
                                  : severity_names[s]));
    }
    return list;
}

json_t *sl_ws__filter_object(const sl_ws_filter_t *filter,
                             sl_ws_stream_t stream)
{
    sl_ws_filter_t f = *filter;
    json_t *obj = json_object();

    if (obj == NULL)
        return NULL;
    for (int i = 0; i < F_COUNT; i++) {
        if (field_in_stream(i, stream))
            json_object_set_new(obj, field_names[i], field_json(&f, i));
    }
    json_object_set_new(obj, "paused", json_boolean(f.paused));
    return obj;
}

char *sl_ws__filter_json(const sl_ws_filter_t *f, sl_ws_stream_t stream)
{
    json_t *obj = sl_ws__filter_object(f, stream);
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    return text;
}

/* ---- control messages -----------------------------------------------------
 */

typedef enum action {
    A_SUBSCRIBE,
    A_UNSUBSCRIBE,
    A_SET_FILTER,
    A_GET_FILTER,
    A_COUNT
} action_t;

static const char *const action_names[A_COUNT] = {"subscribe", "unsubscribe",
                                                  "set_filter", "get_filter"};

/* Applies one field of a control message to f. value is a string, an
 * array of strings, or null (set_filter only: match every value). */
static int apply_field(sl_ws_filter_t *f, action_t action, field_t field,
                       json_t *value, char *err, size_t err_size)
{
    size_t n = json_is_array(value) ? json_array_size(value) : 1;

    if (json_is_null(value) && action == A_SET_FILTER) {
        field_any(f, field);
        return SL_OK;
    }
    if (!json_is_string(value) && !json_is_array(value)) {
        snprintf(err, err_size, "%s: must be a string or an array of strings%s",
                 field_names[field],
                 action == A_SET_FILTER ? ", or null for any" : "");
        return SL_EINVAL;
    }
    if (action == A_SET_FILTER) {
        /* An empty list in set_filter matches nothing. */
        field_any(f, field);
        if (field_is_text(field)) {
            text_set(f, field)->any = false;
        } else {
            enum_set(f, field)->any = false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_is_array(value) ? json_array_get(value, i) : value;
        const char *text = json_string_value(item);

        if (text == NULL || strlen(text) != json_string_length(item)) {
            snprintf(err, err_size,
                     "%s: every value must be a string without NUL bytes",
                     field_names[field]);
            return SL_EINVAL;
        }
        int rc = action == A_UNSUBSCRIBE
                     ? field_remove(f, field, text, err, err_size)
                     : field_add(f, field, text, err, err_size);
        if (rc != SL_OK)
            return rc;
    }
    return SL_OK;
}

/* Applies a parsed control message to *f. Returns SL_OK or SL_EINVAL
 * with the reason in err; *f is changed only on SL_OK. */
static int apply_message(sl_ws_filter_t *f, sl_ws_stream_t stream, json_t *msg,
                         action_t action, char *err, size_t err_size)
{
    sl_ws_filter_t next = *f;
    bool any_field = false;
    const char *key;
    json_t *value;

    json_object_foreach(msg, key, value)
    {
        int field;

        if (strcmp(key, "action") == 0 || strcmp(key, "id") == 0)
            continue;
        field = field_parse(key, stream);
        if (field < 0) {
            snprintf(
                err, err_size, "%.64s: unknown field; /ws/%s filters on %s",
                key, sl_ws__stream_name(stream),
                stream == SL_WS_SENSORS ? "sensor_id, sensor_type, location"
                                        : "sensor_id, sensor_type, severity");
            return SL_EINVAL;
        }
        if (action == A_GET_FILTER) {
            snprintf(err, err_size, "get_filter takes no fields");
            return SL_EINVAL;
        }
        any_field = true;
        if (apply_field(&next, action, field, value, err, err_size) != SL_OK)
            return SL_EINVAL;
    }

    /* Subscribe always resumes the stream; unsubscribe without fields
     * pauses it. set_filter resets each field it omits to "everything". */
    if (action == A_SUBSCRIBE) {
        next.paused = false;
    } else if (action == A_UNSUBSCRIBE && !any_field) {
        next.paused = true;
    } else if (action == A_SET_FILTER) {
        for (int i = 0; i < F_COUNT; i++) {
            if (json_object_get(msg, field_names[i]) == NULL)
                field_any(&next, i);
        }
        next.paused = false;
    }
    *f = next;
    return SL_OK;
}

/* Builds the reply object. id and action may be NULL. */
static char *reply_text(const sl_ws_filter_t *f, sl_ws_stream_t stream,
                        const char *action, json_t *id, const char *error)
{
    json_t *obj = json_object();
    char *text = NULL;

    if (obj == NULL)
        return NULL;
    json_object_set_new(obj, "type", json_string(error ? "error" : "ack"));
    json_object_set_new(obj, "action",
                        action != NULL ? json_string(action) : json_null());
    if (id != NULL)
        json_object_set(obj, "id", id);
    if (error != NULL)
        json_object_set_new(obj, "error", json_string(error));
    else
        json_object_set_new(obj, "filter", sl_ws__filter_object(f, stream));
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

int sl_ws__control(sl_ws_filter_t *f, sl_ws_stream_t stream, const char *text,
                   size_t len, char **reply)
{
    char err[256] = "";
    const char *action_name = NULL;
    json_t *msg, *id = NULL, *action_value;
    json_error_t jerr;
    int action = -1;

    msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (msg == NULL) {
        snprintf(err, sizeof(err), "invalid JSON: %s at byte %d", jerr.text,
                 jerr.position);
    } else if (!json_is_object(msg)) {
        snprintf(err, sizeof(err),
                 "a control message must be a JSON object with an \"action\"");
    } else {
        id = json_object_get(msg, "id");
        if (id != NULL && !json_is_string(id) && !json_is_integer(id)) {
            id = NULL;
            snprintf(err, sizeof(err), "id: must be a string or an integer");
        }
        action_value = json_object_get(msg, "action");
        action_name = json_string_value(action_value);
        for (int i = 0; action_name != NULL && i < A_COUNT; i++) {
            if (strcmp(action_name, action_names[i]) == 0)
                action = i;
        }
        if (err[0] != '\0') {
            /* keep the error about the id */
        } else if (action < 0) {
            snprintf(err, sizeof(err),
                     "action: missing or unknown; use subscribe, "
                     "unsubscribe, set_filter or get_filter");
            action_name = NULL;
        } else {
            apply_message(f, stream, msg, action, err, sizeof(err));
        }
    }

    *reply =
        reply_text(f, stream, action_name, id, err[0] != '\0' ? err : NULL);
    json_decref(msg);
    return *reply != NULL ? SL_OK : SL_ENOMEM;
}
