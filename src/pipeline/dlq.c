/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dead-letter publishing and the recorder that turns dlq-messages records
 * into dlq_errors rows. The retrying handler builds on the same headers.
 */
#include "pipeline/dlq.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/metrics.h"
#include "pipeline/offsets.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#define RECORDER_BATCH 512

static const char *const class_names[] = {"decode", "validation", "storage",
                                          "processing"};

int sl_dlq_class_parse(const char *name, size_t len, sl_dlq_class_t *out)
{
    for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++) {
        if (strlen(class_names[i]) == len &&
            memcmp(class_names[i], name, len) == 0) {
            *out = (sl_dlq_class_t)i;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

int sl_dlq_publish(sl_bus_t *bus, const sl_msg_t *orig, sl_dlq_class_t cls,
                   const char *error, int timeout_ms)
{
    char partition[16], offset[24], now[24];
    sl_header_t headers[8];
    const char *cls_name = class_names[cls];

    snprintf(partition, sizeof(partition), "%" PRId32, orig->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, orig->offset);
    snprintf(now, sizeof(now), "%" PRId64, sl_time_now_ms());
    headers[0] =
        (sl_header_t){SL_DLQ_HDR_TOPIC, orig->topic, strlen(orig->topic)};
    headers[1] =
        (sl_header_t){SL_DLQ_HDR_PARTITION, partition, strlen(partition)};
    headers[2] = (sl_header_t){SL_DLQ_HDR_OFFSET, offset, strlen(offset)};
    headers[3] = (sl_header_t){SL_DLQ_HDR_CLASS, cls_name, strlen(cls_name)};
    headers[4] = (sl_header_t){SL_DLQ_HDR_ERROR, error, strlen(error)};
    headers[5] = (sl_header_t){SL_DLQ_HDR_ATTEMPT, "1", 1};
    headers[6] = (sl_header_t){SL_DLQ_HDR_FIRST_FAILURE, now, strlen(now)};
    headers[7] = (sl_header_t){SL_DLQ_HDR_LAST_FAILURE, now, strlen(now)};
    return sl_bus_publish(bus, SL_TOPIC_DLQ, -1, orig->key, orig->key_len,
                          orig->value, orig->value_len, headers, 8, timeout_ms,
                          NULL);
}

/* Parses a decimal header into *out. */
static int header_int(const sl_msg_t *msg, const char *name, int64_t *out)
{
    const sl_header_t *h = sl_msg_header(msg, name);
    char text[24];
    char *end;

    if (h == NULL || h->value_len == 0 || h->value_len >= sizeof(text))
        return SL_EINVAL;
    memcpy(text, h->value, h->value_len);
    text[h->value_len] = '\0';
    errno = 0;
    *out = strtoll(text, &end, 10);
    return *end == '\0' && errno == 0 ? SL_OK : SL_EINVAL;
}

static void header_text(const sl_msg_t *msg, const char *name, char *out,
                        size_t out_size)
{
    const sl_header_t *h = sl_msg_header(msg, name);
    size_t n = h == NULL ? 0 : h->value_len;

    /* Error texts are for people; a long one is cut, not rejected. */
    if (n >= out_size)
        n = out_size - 1;
    if (n > 0)
        memcpy(out, h->value, n);
    out[n] = '\0';
}

int sl_dlq_entry_from_msg(const sl_msg_t *msg, sl_dlq_entry_t *out)
{
    const sl_header_t *cls = sl_msg_header(msg, SL_DLQ_HDR_CLASS);
    int64_t partition, offset, attempt, first, last;

    memset(out, 0, sizeof(*out));
    if (cls == NULL ||
        sl_dlq_class_parse(cls->value, cls->value_len, &out->error_class) !=
            SL_OK ||
        header_int(msg, SL_DLQ_HDR_PARTITION, &partition) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_OFFSET, &offset) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_ATTEMPT, &attempt) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_FIRST_FAILURE, &first) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_LAST_FAILURE, &last) != SL_OK ||
        sl_msg_header(msg, SL_DLQ_HDR_TOPIC) == NULL || partition < INT32_MIN ||
        partition > INT32_MAX || attempt < 1 || attempt > INT32_MAX)
        return SL_EINVAL;

    header_text(msg, SL_DLQ_HDR_TOPIC, out->topic, sizeof(out->topic));
    header_text(msg, SL_DLQ_HDR_ERROR, out->error, sizeof(out->error));
    out->partition = (int32_t)partition;
    out->offset = offset;
    out->key = msg->key;
    out->key_len = msg->key_len;
    out->payload = msg->value;
    out->payload_len = msg->value_len;
    out->retry_count = (int32_t)attempt - 1;
    out->first_failure_ms = first;
    out->last_failure_ms = last;
    /* Decode and validation failures do not heal by retrying: they are
     * parked until an operator replays them. */
    out->status = out->error_class == SL_DLQ_DECODE ||
                          out->error_class == SL_DLQ_VALIDATION
                      ? SL_DLQ_DEAD
                      : SL_DLQ_PENDING;
    return SL_OK;
}

struct sl_dlq_recorder {
    sl_bus_t *bus;
    sl_store_t *st;
    sl_consumer_t *consumer;
    pthread_t thread;
    bool started;
};

static void *recorder_main(void *arg)
{
    sl_dlq_recorder_t *rec = arg;
    sl_msg_t msgs[RECORDER_BATCH];
    sl_dlq_entry_t entries[RECORDER_BATCH];
    sl_offsets_t offsets;
    sl_counter_t *malformed = sl_metrics_counter(
        "sluice_dlq_malformed_total",
        "dlq-messages records without valid dead-letter headers", NULL);
    size_t n;

    for (;;) {
        int rc = sl_consumer_poll(rec->consumer, msgs, RECORDER_BATCH, &n, 200);
        if (rc == SL_ECLOSED)
            break;
        if (rc != SL_OK || n == 0)
            continue;

        size_t count = 0;
        sl_offsets_clear(&offsets);
        for (size_t i = 0; i < n; i++) {
            if (sl_dlq_entry_from_msg(&msgs[i], &entries[count]) == SL_OK) {
                count++;
            } else {
                sl_counter_add(malformed, 1);
                sl_log_warn("dlq",
                            "record without dead-letter headers "
                            "skipped partition=%d offset=%" PRId64,
                            (int)msgs[i].partition, msgs[i].offset);
            }
            sl_offsets_add(&offsets, &msgs[i]);
        }
        sl_store_batch_t batch = {.dlq = entries, .dlq_count = count};
        if (sl_pipeline_store_write(rec->st, &batch, NULL, NULL, NULL, "dlq") ==
            SL_OK)
            sl_pipeline_commit(rec->consumer, &offsets, "dlq");
    }
    return NULL;
}

sl_dlq_recorder_t *sl_dlq_recorder_start(sl_bus_t *bus,
                                         const char *store_location, char *err,
                                         size_t err_size)
{
    const char *topics[] = {SL_TOPIC_DLQ};
    sl_dlq_recorder_t *rec = calloc(1, sizeof(*rec));

    if (rec == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    rec->bus = bus;
    rec->st = sl_store_open(store_location, err, err_size);
    if (rec->st == NULL)
        goto fail;
    rec->consumer = sl_consumer_create(bus, "sluice-dlq-recorder", topics, 1);
    if (rec->consumer == NULL) {
        snprintf(err, err_size, "dlq: cannot join the consumer group");
        goto fail;
    }
    if (pthread_create(&rec->thread, NULL, recorder_main, rec) != 0) {
        snprintf(err, err_size, "dlq: pthread_create failed");
        goto fail;
    }
    rec->started = true;
    return rec;

fail:
    sl_dlq_recorder_stop(rec);
    return NULL;
}

int64_t sl_dlq_recorder_lag(sl_dlq_recorder_t *rec)
{
    return sl_consumer_lag(rec->consumer);
}

void sl_dlq_recorder_stop(sl_dlq_recorder_t *rec)
{
    if (rec == NULL)
        return;
    if (rec->started)
        pthread_join(rec->thread, NULL);
    sl_consumer_destroy(rec->consumer);
    sl_store_close(rec->st);
    free(rec);
}
