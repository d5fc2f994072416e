/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay reader: every file format parsed from temporary files, malformed
 * lines reported with their numbers while the reader goes on, format
 * detection, time rebasing, and the real NAB and REES46 files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/validate.h"
#include "pipeline/replay.h"
#include "test_files.h"
#include "util/err.h"
#include "util/timeutil.h"

#define MAX_ITEMS 64

/* Everything a reader produced from one file. */
typedef struct outcome {
    int items;
    int errors;
    sl_replay_item_t item[MAX_ITEMS];
    char error[MAX_ITEMS][512];
} outcome_t;

static int group_setup(void **state)
{
    (void)state;
    test_dir_create();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    test_dir_remove();
    return 0;
}

/* Reads a whole file, keeping items and error messages in file order. */
static outcome_t *read_all(const char *path, const sl_replay_options_t *opt)
{
    outcome_t *out = calloc(1, sizeof(*out));
    sl_replay_item_t item;
    char err[512] = "";
    sl_replay_reader_t *rd;
    int rc;

    assert_non_null(out);
    rd = sl_replay_open(path, opt, err, sizeof(err));
    if (rd == NULL)
        fail_msg("open %s: %s", path, err);
    while ((rc = sl_replay_next(rd, &item, err, sizeof(err))) != 0) {
        if (rc == 1) {
            assert_true(out->items < MAX_ITEMS);
            out->item[out->items++] = item;
        } else {
            assert_int_equal(rc, SL_EINVAL);
            assert_true(out->errors < MAX_ITEMS);
            snprintf(out->error[out->errors++], sizeof(out->error[0]), "%s",
                     err);
        }
    }
    sl_replay_close(rd);
    return out;
}

static void assert_prefix(const char *text, const char *prefix)
{
    if (strncmp(text, prefix, strlen(prefix)) != 0)
        fail_msg("'%s' does not start with '%s'", text, prefix);
}

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("'%s' does not contain '%s'", text, part);
}

static int64_t iso(const char *text)
{
    int64_t ms = 0;

    assert_int_equal(sl_time_parse_iso8601(text, &ms), SL_OK);
    return ms;
}

/* ---- NAB ---------------------------------------------------------------- */

static void nab_rows_parse(void **state)
{
    const char *path =
        test_file_text("boiler_temp.csv", "timestamp,value\n"
                                          "2014-01-01 00:00:00,1.5\n"
                                          "2014-01-01 00:05:00,-2\n");
    sl_replay_options_t opt;
    outcome_t *o;

    (void)state;
    sl_replay_options_init(&opt);
    opt.sensor_type = SL_SENSOR_TEMPERATURE;
    opt.unit = "celsius";
    o = read_all(path, &opt);

    assert_int_equal(o->items, 2);
    assert_int_equal(o->errors, 0);
    assert_int_equal(o->item[0].kind, SL_REPLAY_ITEM_READING);
    assert_int_equal(o->item[0].line, 2);
    assert_string_equal(o->item[0].reading.sensor_id, "boiler_temp");
    assert_string_equal(o->item[0].reading.location, "replay");
    assert_int_equal(o->item[0].reading.sensor_type, SL_SENSOR_TEMPERATURE);
    assert_true(o->item[0].reading.has_unit);
    assert_string_equal(o->item[0].reading.unit, "celsius");
    assert_true(o->item[0].reading.value == 1.5);
    assert_int_equal(o->item[0].reading.timestamp_ms,
                     iso("2014-01-01T00:00:00Z"));
    assert_int_equal(o->item[0].timestamp_ms, o->item[0].reading.timestamp_ms);
    assert_true(o->item[1].reading.value == -2.0);
    assert_int_equal(o->item[1].reading.timestamp_ms -
                         o->item[0].reading.timestamp_ms,
                     300000);
    assert_null(sl_reading_validate(&o->item[1].reading,
                                    o->item[1].reading.timestamp_ms));
    free(o);
}

static void nab_malformed_lines_numbered(void **state)
{
    const char *path =
        test_file_text("nab_bad.csv", "timestamp,value\n"         /* 1 */
                                      "2014-01-01 00:00:00,1\n"   /* 2 */
                                      "yesterday,1\n"             /* 3 */
                                      "\n"                        /* 4 */
                                      "2014-01-01 00:10:00,abc\n" /* 5 */
                                      "2014-01-01 00:15:00,1,2\n" /* 6 */
                                      "2014-02-30 00:00:00,1\n"   /* 7 */
                                      "2014-01-01 00:20:00,nan\n" /* 8 */
                                      "   \n"                     /* 9 */
                                      "2014-01-01 00:25:00,7\n"); /* 10 */
    outcome_t *o = read_all(path, NULL);

    (void)state;
    assert_int_equal(o->items, 2);
    assert_int_equal(o->item[0].line, 2);
    assert_int_equal(o->item[1].line, 10);
    assert_true(o->item[1].reading.value == 7.0);
    assert_int_equal(o->errors, 5);
    assert_prefix(o->error[0], "line 3: ");
    assert_contains(o->error[0], "yesterday");
    assert_prefix(o->error[1], "line 5: ");
    assert_contains(o->error[1], "value 'abc'");
    assert_prefix(o->error[2], "line 6: ");
    assert_contains(o->error[2], "expected 2 fields");
    assert_prefix(o->error[3], "line 7: ");
    assert_prefix(o->error[4], "line 8: ");
    free(o);
}

static void crlf_bom_and_epoch_ms(void **state)
{
    const char *path =
        test_file_text("crlf.csv", "\xEF\xBB\xBFtimestamp,value\r\n"
                                   "2014-01-01T00:00:00+01:00,3\r\n"
                                   "\r\n"
                                   "1388534700000,4\r\n");
    outcome_t *o = read_all(path, NULL);

    (void)state;
    assert_int_equal(o->errors, 0);
    assert_int_equal(o->items, 2);
    assert_int_equal(o->item[0].reading.timestamp_ms,
                     iso("2013-12-31T23:00:00Z"));
    assert_int_equal(o->item[1].line, 4);
    assert_int_equal(o->item[1].reading.timestamp_ms, INT64_C(1388534700000));
    assert_true(o->item[1].reading.value == 4.0);
    free(o);
}

static void long_lines_not_truncated(void **state)
{
    /* A 100 kB sensor id is reported as too long; a value written with
     * 50,000 leading zeros still parses, so nothing cuts lines short. */
    size_t big = 100000;
    char *text = malloc(2 * big + 512);
    size_t n = 0;
    outcome_t *o;
    const char *path;

    (void)state;
    assert_non_null(text);
    n += (size_t)sprintf(text + n, "sensor_id,timestamp,value\n");
    memset(text + n, 'x', big);
    n += big;
    n += (size_t)sprintf(text + n, ",2014-01-01T00:00:00Z,1\n");
    n += (size_t)sprintf(text + n, "s1,2014-01-01T00:00:00Z,");
    memset(text + n, '0', 50000);
    n += 50000;
    n += (size_t)sprintf(text + n, "1.25\n");
    path = test_file_write("long.csv", text, n);
    o = read_all(path, NULL);

    assert_int_equal(o->errors, 1);
    assert_prefix(o->error[0], "line 2: ");
    assert_contains(o->error[0], "sensor_id is 100000 bytes long");
    assert_int_equal(o->items, 1);
    assert_int_equal(o->item[0].line, 3);
    assert_true(o->item[0].reading.value == 1.25);
    free(o);
    free(text);
}

/* ---- Sensor CSV --------------------------------------------------------- */

static void sensor_csv_any_column_order(void **state)
{
    const char *path = test_file_text(
        "fleet.csv",
        "value,location,sensor_id,timestamp,sensor_type,unit,"
        "battery_level,signal_strength,anomaly\n"
        "21.5,\"building-a, floor \"\"2\"\"\",s-1,2024-05-01T10:00:00Z,"
        "temperature,celsius,87,-61,false\n"
        "55,,s-2,1714557600000,HUMIDITY,,,,1\n");
    outcome_t *o = read_all(path, NULL);
    const sl_reading_t *r;

    (void)state;
    assert_int_equal(o->errors, 0);
    assert_int_equal(o->items, 2);
    r = &o->item[0].reading;
    assert_string_equal(r->sensor_id, "s-1");
    assert_string_equal(r->location, "building-a, floor \"2\"");
    assert_int_equal(r->sensor_type, SL_SENSOR_TEMPERATURE);
    assert_true(r->value == 21.5);
    assert_int_equal(r->timestamp_ms, iso("2024-05-01T10:00:00Z"));
    assert_true(r->has_unit);
    assert_string_equal(r->unit, "celsius");
    assert_int_equal(r->battery_level, 87);
    assert_int_equal(r->signal_strength, -61);
    assert_false(r->anomaly);

    /* Empty optional cells keep the defaults. */
    r = &o->item[1].reading;
    assert_string_equal(r->sensor_id, "s-2");
    assert_int_equal(r->sensor_type, SL_SENSOR_HUMIDITY);
    assert_int_equal(r->timestamp_ms, INT64_C(1714557600000));
    assert_string_equal(r->location, "replay");
    assert_false(r->has_unit);
    assert_int_equal(r->battery_level, 100);
    assert_int_equal(r->signal_strength, -50);
    assert_true(r->anomaly);
    assert_null(sl_reading_validate(r, r->timestamp_ms));
    free(o);
}

static void sensor_csv_unknown_column_rejected(void **state)
{
    const char *path = test_file_text(
        "colour.csv",
        "sensor_id,timestamp,value,colour\ns,1714557600000,1,red\n");
    char err[512] = "";
    sl_replay_options_t opt;

    (void)state;
    sl_replay_options_init(&opt);
    opt.format = SL_REPLAY_SENSOR_CSV;
    assert_null(sl_replay_open(path, &opt, err, sizeof(err)));
    assert_contains(err, "unknown column 'colour'");
    assert_contains(err, "line 1");

    /* Detection picks sensor CSV too and reports the same column. */
    err[0] = '\0';
    assert_null(sl_replay_open(path, NULL, err, sizeof(err)));
    assert_contains(err, "unknown column 'colour'");
}

static void sensor_csv_header_errors(void **state)
{
    char err[512] = "";
    const char *path;

    (void)state;
    path = test_file_text("noid.csv", "timestamp,value,location\n");
    assert_null(sl_replay_open(path, NULL, err, sizeof(err)));
    assert_contains(err, "required column 'sensor_id' is missing");

    path = test_file_text("twice.csv", "sensor_id,value,timestamp,value\n");
    assert_null(sl_replay_open(path, NULL, err, sizeof(err)));
    assert_contains(err, "column 'value' appears twice");

    path = test_file_text("empty.csv", "\n\n");
    assert_null(sl_replay_open(path, NULL, err, sizeof(err)));
    assert_contains(err, "empty");
}

static void csv_quoting_errors_skip_line(void **state)
{
    const char *path = test_file_text(
        "quotes.csv", "sensor_id,timestamp,value,location\n" /* 1 */
                      "s,1714557600000,1,\"open\n"           /* 2 */
                      "s,1714557600000,2,\"a\"b\n"           /* 3 */
                      "s,1714557600000,3,a\"b\n"             /* 4 */
                      ",1714557600000,4,x\n"                 /* 5 */
                      "s,1714557600000,5,\"\"\n"             /* 6 */
                      "s,1714557600000,6,\"x,y\"\n"          /* 7 */
                      "s,1714557600000,7,x,y\n"              /* 8 */
                      "s,1714557600000,8,\"\xff\"\n");       /* 9 */
    outcome_t *o = read_all(path, NULL);

    (void)state;
    assert_int_equal(o->errors, 6);
    assert_prefix(o->error[0], "line 2: ");
    assert_contains(o->error[0], "unterminated quoted field");
    assert_prefix(o->error[1], "line 3: ");
    assert_contains(o->error[1], "after the closing quote");
    assert_prefix(o->error[2], "line 4: ");
    assert_contains(o->error[2], "quote inside an unquoted field");
    assert_prefix(o->error[3], "line 5: ");
    assert_contains(o->error[3], "sensor_id is empty");
    assert_prefix(o->error[4], "line 8: ");
    assert_contains(o->error[4], "expected 4 fields");
    assert_prefix(o->error[5], "line 9: ");
    assert_contains(o->error[5], "UTF-8");

    assert_int_equal(o->items, 2);
    assert_int_equal(o->item[0].line, 6);
    assert_string_equal(o->item[0].reading.location, "replay");
    assert_int_equal(o->item[1].line, 7);
    assert_string_equal(o->item[1].reading.location, "x,y");
    free(o);
}

/* ---- NDJSON ------------------------------------------------------------- */

static void ndjson_readings_and_events(void **state)
{
    const char *path = test_file_text(
        "mixed.ndjson",
        "{\"sensor_id\":\"t-1\",\"sensor_type\":\"temperature\",\"value\":"
        "20.5,\"timestamp\":\"2024-05-01T10:00:00Z\",\"location\":\"lab\","
        "\"metadata\":{\"battery_level\":90,\"signal_strength\":-60}}\n"
        "\n"
        "{\"event_id\":\"e-1\",\"event_type\":\"purchase\",\"user_id\":\"u-1\","
        "\"timestamp\":1714557600000,\"session_id\":\"s-1\",\"device\":"
        "\"mobile\",\"ip_address\":\"192.0.2.7\",\"price\":9.5,\"quantity\":2,"
        "\"total\":19}\n"
        "{\"sensor_id\":\"t-1\",\n"
        "[1,2,3]\n"
        "{\"sensor_id\":\"t-2\",\"sensor_type\":\"temperature\"}\n"
        "{\"sensor_id\":\"t-3\",\"sensor_type\":\"humidity\",\"value\":40,"
        "\"timestamp\":1714557600000,\"location\":\"lab\",\"metadata\":"
        "{\"battery_level\":50,\"signal_strength\":-70}}\r\n");
    outcome_t *o = read_all(path, NULL);

    (void)state;
    assert_int_equal(o->items, 3);
    assert_int_equal(o->item[0].kind, SL_REPLAY_ITEM_READING);
    assert_int_equal(o->item[0].line, 1);
    assert_string_equal(o->item[0].reading.sensor_id, "t-1");
    assert_int_equal(o->item[0].timestamp_ms, iso("2024-05-01T10:00:00Z"));
    assert_int_equal(o->item[0].reading.battery_level, 90);

    assert_int_equal(o->item[1].kind, SL_REPLAY_ITEM_EVENT);
    assert_int_equal(o->item[1].line, 3);
    assert_string_equal(o->item[1].event.event_id, "e-1");
    assert_int_equal(o->item[1].event.event_type, SL_EVENT_PURCHASE);
    assert_int_equal(o->item[1].event.quantity, 2);
    assert_int_equal(o->item[1].timestamp_ms, INT64_C(1714557600000));

    assert_int_equal(o->item[2].line, 7);
    assert_string_equal(o->item[2].reading.sensor_id, "t-3");

    assert_int_equal(o->errors, 3);
    assert_prefix(o->error[0], "line 4: ");
    assert_contains(o->error[0], "invalid JSON");
    assert_prefix(o->error[1], "line 5: ");
    assert_contains(o->error[1], "expected a JSON object");
    assert_prefix(o->error[2], "line 6: ");
    assert_contains(o->error[2], "value");
    free(o);
}

/* ---- Commerce CSV ------------------------------------------------------- */

static void commerce_csv_mapping(void **state)
{
    const char *path = test_file_text(
        "shop.csv",
        "event_time,event_type,product_id,category_id,category_code,brand,"
        "price,user_id,user_session\n"
        "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,"
        "35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
        "2019-10-01 00:00:05 UTC,cart,1004,1,\"electronics.phone, case\",,"
        "10.00,7,s\n"
        "2019-10-01 00:00:06 UTC,remove_from_cart,1004,1,,,10.00,7,s\n"
        "2019-10-01 00:00:07 UTC,purchase,1005,1,,apple,999.99,7,s\n"
        "2019-10-01 00:00:08 UTC,wishlist,1005,1,,,1,7,s\n"
        "2019-10-01 00:00:09 UTC,view,1005,1,,,1,,s\n"
        "2019-10-01 00:00:10 UTC,view,abc,1,,,1,7,s\n");
    outcome_t *o = read_all(path, NULL);
    outcome_t *again;
    const sl_event_t *ev;

    (void)state;
    assert_int_equal(o->items, 4);
    ev = &o->item[0].event;
    assert_int_equal(o->item[0].kind, SL_REPLAY_ITEM_EVENT);
    assert_int_equal(ev->event_type, SL_EVENT_PAGE_VIEW);
    assert_int_equal(ev->timestamp_ms, iso("2019-10-01T00:00:00Z"));
    assert_int_equal(ev->product_id, 44600062);
    assert_true(ev->present & SL_EV_PRODUCT_ID);
    assert_string_equal(ev->product_name, "shiseido");
    assert_true(ev->present & SL_EV_PRODUCT_NAME);
    assert_false(ev->present & SL_EV_CATEGORY);
    assert_true(ev->price == 35.79);
    assert_false(ev->present & SL_EV_QUANTITY);
    assert_string_equal(ev->user_id, "541312140");
    assert_string_equal(ev->session_id, "72d76fde-8bb3-4e00-8c23-a032dfed738c");
    assert_int_equal(ev->device, SL_DEVICE_OTHER);
    assert_string_equal(ev->ip_address, "");
    assert_prefix(ev->event_id, "rees46-2-");
    assert_null(sl_event_validate(ev, ev->timestamp_ms));

    ev = &o->item[1].event;
    assert_int_equal(ev->event_type, SL_EVENT_ADD_TO_CART);
    assert_string_equal(ev->category, "electronics.phone, case");
    assert_false(ev->present & SL_EV_PRODUCT_NAME);
    assert_int_equal(ev->quantity, 1);
    assert_false(ev->present & SL_EV_TOTAL);
    assert_int_equal(o->item[2].event.event_type, SL_EVENT_REMOVE_FROM_CART);
    ev = &o->item[3].event;
    assert_int_equal(ev->event_type, SL_EVENT_PURCHASE);
    assert_true(ev->present & SL_EV_TOTAL);
    assert_true(ev->total == 999.99);

    assert_int_equal(o->errors, 3);
    assert_prefix(o->error[0], "line 6: ");
    assert_contains(o->error[0], "event_type 'wishlist'");
    assert_prefix(o->error[1], "line 7: ");
    assert_contains(o->error[1], "user_id is empty");
    assert_prefix(o->error[2], "line 8: ");
    assert_contains(o->error[2], "product_id 'abc'");

    /* Event ids are unique within the file and the same on a second
     * replay. */
    again = read_all(path, NULL);
    for (int i = 0; i < o->items; i++) {
        assert_string_equal(o->item[i].event.event_id,
                            again->item[i].event.event_id);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(o->item[i].event.event_id,
                                    o->item[k].event.event_id);
    }
    free(again);
    free(o);
}

/* ---- Frames ------------------------------------------------------------- */

static void frames_hex_lines(void **state)
{
    const char *path = test_file_text(
        "capture.frames", "sensor-readings\t6b6579\t000102FF\n" /* 1 */
                          "ecommerce-events\t\t\r\n"            /* 2 */
                          "t\tabc\t00\n"                        /* 3 */
                          "t\t00\tzz\n"                         /* 4 */
                          "t\t00\n"                             /* 5 */
                          "bad topic\t00\t00\n"                 /* 6 */
                          "t\t00\t00\t00\n"                     /* 7 */
                          "\n"                                  /* 8 */
                          "ecommerce-events\t61\t62\n");        /* 9 */
    sl_replay_item_t item;
    char err[256];
    sl_replay_reader_t *rd;
    int errors = 0;

    (void)state;
    rd = sl_replay_open(path, NULL, err, sizeof(err));
    assert_non_null(rd);
    assert_int_equal(sl_replay_reader_format(rd), SL_REPLAY_FRAMES);

    assert_int_equal(sl_replay_next(rd, &item, err, sizeof(err)), 1);
    assert_int_equal(item.kind, SL_REPLAY_ITEM_FRAME);
    assert_string_equal(item.topic, "sensor-readings");
    assert_int_equal(item.key_len, 3);
    assert_memory_equal(item.key, "key", 3);
    assert_int_equal(item.value_len, 4);
    assert_memory_equal(item.value, "\x00\x01\x02\xff", 4);
    assert_int_equal(item.timestamp_ms, 0);

    assert_int_equal(sl_replay_next(rd, &item, err, sizeof(err)), 1);
    assert_string_equal(item.topic, "ecommerce-events");
    assert_int_equal(item.key_len, 0);
    assert_int_equal(item.value_len, 0);

    for (int line = 3; line <= 7; line++) {
        char prefix[32];

        assert_int_equal(sl_replay_next(rd, &item, err, sizeof(err)),
                         SL_EINVAL);
        snprintf(prefix, sizeof(prefix), "line %d: ", line);
        assert_prefix(err, prefix);
        errors++;
    }
    assert_int_equal(errors, 5);
    assert_int_equal(sl_replay_next(rd, &item, err, sizeof(err)), 1);
    assert_int_equal(item.line, 9);
    assert_string_equal(item.topic, "ecommerce-events");
    assert_memory_equal(item.value, "b", 1);
    assert_int_equal(sl_replay_next(rd, &item, err, sizeof(err)), 0);
    sl_replay_close(rd);
}

/* A line over the limit is reported and skipped without being held in
 * memory, and the reader goes on with the next line. */
static void overlong_line_is_skipped(void **state)
{
    size_t big = SL_REPLAY_MAX_LINE + 100;
    char *text = malloc(big + 64);
    const char *path;
    outcome_t *o;

    (void)state;
    assert_non_null(text);
    strcpy(text, "timestamp,value\n2020-01-01 00:00:00,");
    size_t len = strlen(text);
    memset(text + len, '7', big);
    strcpy(text + len + big, "\n2020-01-01 00:05:00,2.5\n");
    path = test_file_text("long.csv", text);
    free(text);
    o = read_all(path, NULL);
    assert_int_equal(o->errors, 1);
    assert_contains(o->error[0], "line 2: longer than");
    assert_int_equal(o->items, 1);
    assert_true(o->item[0].reading.value == 2.5);
    free(o);
}

static void frames_error_reasons(void **state)
{
    const char *path = test_file_text("reasons.tsv", "t\tabc\t00\n"
                                                     "t\t00\t0g\n"
                                                     "dlq-messages\t00\t00\n");
    outcome_t *o = read_all(path, NULL);

    (void)state;
    assert_int_equal(o->errors, 3);
    assert_contains(o->error[2], "unknown topic 'dlq-messages'");
    assert_contains(o->error[0], "key hex has odd length 3");
    assert_contains(o->error[1], "value hex has a non-hex character at "
                                 "offset 1");
    free(o);
}

/* ---- Detection and options ---------------------------------------------- */

static sl_replay_format_t detected(const char *name, const char *text)
{
    char err[256] = "";
    sl_replay_reader_t *rd =
        sl_replay_open(test_file_text(name, text), NULL, err, sizeof(err));
    sl_replay_format_t f;

    if (rd == NULL)
        fail_msg("open %s: %s", name, err);
    f = sl_replay_reader_format(rd);
    sl_replay_close(rd);
    return f;
}

static void format_detection(void **state)
{
    (void)state;
    assert_int_equal(detected("a.jsonl", "{}\n"), SL_REPLAY_NDJSON);
    assert_int_equal(detected("a.ndjson", "\n"), SL_REPLAY_NDJSON);
    assert_int_equal(detected("a.txt", "\xEF\xBB\xBF{\"a\":1}\n"),
                     SL_REPLAY_NDJSON);
    assert_int_equal(detected("a.tsv", "t\t\t\n"), SL_REPLAY_FRAMES);
    assert_int_equal(detected("a.dat", "t\t00\t00\n"), SL_REPLAY_FRAMES);
    assert_int_equal(detected("a.csv", "timestamp,value\n"), SL_REPLAY_NAB);
    assert_int_equal(detected("b.csv", " Value , TIMESTAMP\n"), SL_REPLAY_NAB);
    assert_int_equal(detected("c.csv", "sensor_id,timestamp,value\n"),
                     SL_REPLAY_SENSOR_CSV);
    assert_int_equal(detected("d.csv", "event_time,event_type,user_id\n"),
                     SL_REPLAY_COMMERCE_CSV);
}

static void format_names_parse(void **state)
{
    static const struct {
        const char *name;
        sl_replay_format_t format;
    } cases[] = {{"auto", SL_REPLAY_AUTO},
                 {"nab", SL_REPLAY_NAB},
                 {"sensor-csv", SL_REPLAY_SENSOR_CSV},
                 {"ndjson", SL_REPLAY_NDJSON},
                 {"commerce-csv", SL_REPLAY_COMMERCE_CSV},
                 {"frames", SL_REPLAY_FRAMES}};
    sl_replay_format_t f;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f = SL_REPLAY_AUTO;
        assert_int_equal(sl_replay_format_parse(cases[i].name, &f), SL_OK);
        assert_int_equal(f, cases[i].format);
    }
    assert_int_equal(sl_replay_format_parse("xml", &f), SL_EINVAL);
}

static void open_errors(void **state)
{
    sl_replay_options_t opt;
    char err[256] = "";

    (void)state;
    assert_null(
        sl_replay_open("/nonexistent/sluice.csv", NULL, err, sizeof(err)));
    assert_contains(err, "cannot open /nonexistent/sluice.csv");

    sl_replay_options_init(&opt);
    opt.rebase_time = true;
    assert_null(sl_replay_open("-", &opt, err, sizeof(err)));
    assert_contains(err, "standard input");
}

static void rebase_time_moves_last_to_now(void **state)
{
    const char *path = test_file_text("rebase.csv", "timestamp,value\n"
                                                    "2014-01-01 00:05:00,2\n"
                                                    "2014-01-01 00:00:00,1\n"
                                                    "garbage\n"
                                                    "2014-01-01 00:10:00,3\n");
    sl_replay_options_t opt;
    int64_t before, after;
    outcome_t *o;

    (void)state;
    sl_replay_options_init(&opt);
    opt.rebase_time = true;
    before = sl_time_now_ms();
    o = read_all(path, &opt);
    after = sl_time_now_ms();

    assert_int_equal(o->items, 3);
    assert_int_equal(o->errors, 1);
    assert_in_range(o->item[2].timestamp_ms, before, after);
    assert_int_equal(o->item[2].reading.timestamp_ms, o->item[2].timestamp_ms);
    assert_int_equal(o->item[2].timestamp_ms - o->item[0].timestamp_ms, 300000);
    assert_int_equal(o->item[0].timestamp_ms - o->item[1].timestamp_ms, 300000);
    assert_null(sl_reading_validate(&o->item[2].reading, after));
    free(o);
}

static void rebase_time_ndjson(void **state)
{
    const char *path = test_file_text(
        "rebase.ndjson",
        "{\"event_id\":\"e-1\",\"event_type\":\"search\",\"user_id\":\"u\","
        "\"timestamp\":1000000000000,\"session_id\":\"s\",\"device\":"
        "\"desktop\",\"ip_address\":\"\"}\n"
        "{\"event_id\":\"e-2\",\"event_type\":\"search\",\"user_id\":\"u\","
        "\"timestamp\":1000000060000,\"session_id\":\"s\",\"device\":"
        "\"desktop\",\"ip_address\":\"\"}\n");
    sl_replay_options_t opt;
    int64_t before, after;
    outcome_t *o;

    (void)state;
    sl_replay_options_init(&opt);
    opt.rebase_time = true;
    before = sl_time_now_ms();
    o = read_all(path, &opt);
    after = sl_time_now_ms();
    assert_int_equal(o->items, 2);
    assert_in_range(o->item[1].event.timestamp_ms, before, after);
    assert_int_equal(
        o->item[1].event.timestamp_ms - o->item[0].event.timestamp_ms, 60000);
    free(o);
}

/* ---- Real data ---------------------------------------------------------- */

/* Writes a NAB-shaped file of rows rows, for when the real one is absent. */
static const char *generated_nab(size_t rows)
{
    size_t cap = rows * 40 + 64, n = 0;
    char *text = malloc(cap);
    const char *path;

    assert_non_null(text);
    n += (size_t)snprintf(text, cap, "timestamp,value\n");
    for (size_t i = 0; i < rows; i++) {
        char ts[SL_ISO8601_MAX];

        sl_time_format_iso8601(INT64_C(1386018900000) + (int64_t)i * 300000, ts,
                               sizeof(ts));
        ts[10] = ' ';
        ts[19] = '\0';
        n += (size_t)snprintf(text + n, cap - n, "%s,%zu.5\n", ts, i);
    }
    path = test_file_write("generated_nab.csv", text, n);
    free(text);
    return path;
}

static void nab_real_machine_temperature(void **state)
{
    const char *path = test_shared_data(
        "nab/data/realKnownCause/machine_temperature_system_failure.csv");
    bool real = path != NULL;
    sl_replay_reader_t *rd;
    sl_replay_item_t item, first = {0}, last = {0};
    char err[256] = "";
    size_t count = 0, errors = 0;
    int rc;

    (void)state;
    if (!real)
        path = generated_nab(22695);
    rd = sl_replay_open(path, NULL, err, sizeof(err));
    assert_non_null(rd);
    assert_int_equal(sl_replay_reader_format(rd), SL_REPLAY_NAB);
    while ((rc = sl_replay_next(rd, &item, err, sizeof(err))) != 0) {
        if (rc != 1) {
            errors++;
            continue;
        }
        if (count++ == 0)
            first = item;
        last = item;
    }
    sl_replay_close(rd);

    assert_int_equal(errors, 0);
    assert_int_equal(count, 22695);
    assert_int_equal(first.line, 2);
    assert_int_equal(last.line, 22696);
    if (real) {
        /* First and last rows of the file:
         * 2013-12-02 21:15:00,73.96732207 and 2014-02-19 15:25:00,
         * 96.90386085. */
        assert_string_equal(first.reading.sensor_id,
                            "machine_temperature_system_failure");
        assert_int_equal(first.timestamp_ms, iso("2013-12-02T21:15:00Z"));
        assert_true(first.reading.value == 73.96732207);
        assert_int_equal(last.timestamp_ms, iso("2014-02-19T15:25:00Z"));
        assert_true(last.reading.value == 96.90386085);
    } else {
        assert_int_equal(first.timestamp_ms, INT64_C(1386018900000));
        assert_true(last.reading.value == 22694.5);
    }
}

static void rees46_real_events(void **state)
{
    const char *path =
        test_shared_data("ecommerce/rees46_2019-Oct_first1000.csv");
    int counts[SL_EVENT_TYPE_COUNT] = {0};
    sl_replay_reader_t *rd;
    sl_replay_item_t item, first = {0};
    char err[256] = "";
    size_t count = 0, errors = 0;
    int rc;

    (void)state;
    if (path == NULL) {
        /* Same header and row shapes as the real file. */
        path = test_file_text(
            "rees46_generated.csv",
            "event_time,event_type,product_id,category_id,category_code,"
            "brand,price,user_id,user_session\n"
            "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,"
            "shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
            "2019-10-01 00:00:01 UTC,cart,1,2,a.b,x,1.00,2,s\n"
            "2019-10-01 00:00:02 UTC,purchase,1,2,a.b,x,1.00,2,s\n");
    }
    rd = sl_replay_open(path, NULL, err, sizeof(err));
    assert_non_null(rd);
    assert_int_equal(sl_replay_reader_format(rd), SL_REPLAY_COMMERCE_CSV);
    while ((rc = sl_replay_next(rd, &item, err, sizeof(err))) != 0) {
        if (rc != 1) {
            fprintf(stderr, "%s\n", err);
            errors++;
            continue;
        }
        assert_int_equal(item.kind, SL_REPLAY_ITEM_EVENT);
        assert_null(sl_event_validate(&item.event, item.timestamp_ms));
        if (item.event.event_type == SL_EVENT_PURCHASE)
            assert_true(item.event.total == item.event.price);
        counts[item.event.event_type]++;
        if (count++ == 0)
            first = item;
    }
    sl_replay_close(rd);

    assert_int_equal(errors, 0);
    assert_string_equal(first.event.user_id, "541312140");
    assert_string_equal(first.event.product_name, "shiseido");
    assert_int_equal(first.event.product_id, 44600062);
    assert_true(first.event.price == 35.79);
    if (strstr(path, "generated") != NULL) {
        assert_int_equal(count, 3);
        return;
    }
    /* The first 1,000 REES46 rows are 987 view, 3 cart and 10 purchase. */
    assert_int_equal(count, 1000);
    assert_int_equal(counts[SL_EVENT_PAGE_VIEW], 987);
    assert_int_equal(counts[SL_EVENT_ADD_TO_CART], 3);
    assert_int_equal(counts[SL_EVENT_PURCHASE], 10);
    assert_int_equal(counts[SL_EVENT_REMOVE_FROM_CART], 0);
    assert_int_equal(first.timestamp_ms, iso("2019-10-01T00:00:00Z"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nab_rows_parse),
        cmocka_unit_test(nab_malformed_lines_numbered),
        cmocka_unit_test(crlf_bom_and_epoch_ms),
        cmocka_unit_test(long_lines_not_truncated),
        cmocka_unit_test(sensor_csv_any_column_order),
        cmocka_unit_test(sensor_csv_unknown_column_rejected),
        cmocka_unit_test(sensor_csv_header_errors),
        cmocka_unit_test(csv_quoting_errors_skip_line),
        cmocka_unit_test(ndjson_readings_and_events),
        cmocka_unit_test(commerce_csv_mapping),
        cmocka_unit_test(frames_hex_lines),
        cmocka_unit_test(frames_error_reasons),
        cmocka_unit_test(overlong_line_is_skipped),
        cmocka_unit_test(format_detection),
        cmocka_unit_test(format_names_parse),
        cmocka_unit_test(open_errors),
        cmocka_unit_test(rebase_time_moves_last_to_now),
        cmocka_unit_test(rebase_time_ndjson),
        cmocka_unit_test(nab_real_machine_temperature),
        cmocka_unit_test(rees46_real_events),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
