/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The publisher: the one place where producers (generators, replay, HTTP
 * ingest) turn records into Confluent-framed Avro values and hand them to
 * the bus. It registers the built-in schemas under the TopicNameStrategy
 * subjects "<topic>-value" and keeps one encoder per topic.
 *
 * With tracing on, each record begins a "produce" span, and a sampled one
 * carries the span's W3C traceparent in its bus headers, so the stages
 * that consume it continue the trace. The span ends once the bus accepted
 * or refused the record: at once when publishing record by record, and
 * when its batch is settled when batching.
 *
 * A full batch goes to the bus without waiting for its acknowledgements
 * (sl_bus_publish_start), and the next one fills meanwhile. On Kafka a
 * batch of a few thousand records is acknowledged tens of milliseconds
 * after it was queued, far longer than encoding it takes, so waiting for
 * each in turn left the producer idle most of the time. Up to
 * PUBLISH_IN_FLIGHT batches are in the bus at once. When one more fills,
 * the oldest is waited for and settled first, so reports come in the
 * order the records were given.
 */
#include "pipeline/publish.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/trace.h"
#include "pipeline/dlq.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Maximum encoded record, in bytes. A reading needs at most about 500
 * bytes: a 127-byte id, a 255-byte location, a 31-byte unit and fixed
 * fields. An event has eleven strings of at most 255 bytes each plus fixed
 * fields, under 3.5 KiB. Both fit with the 5-byte frame header. */
#define SL_PUBLISH_MAX_BYTES 8192

/* Reports without a report function are logged one by one up to this
 * many, then every PUBLISH_LOG_EVERY-th. */
#define PUBLISH_LOG_LIMIT 100
#define PUBLISH_LOG_EVERY 10000

/* queued_t.span of a record that is not traced. */
#define NO_SPAN SIZE_MAX

/* Batches handed to the bus and not yet settled, at most. In `sluice
 * bench` on librdkafka's mock cluster, 1, 2, 4 and 8 all gave 270k-290k
 * readings/s, against 130k waiting for each batch. Four is an estimate
 * of what covers a real cluster's longer round trips. Each batch takes up
 * to SL_PUBLISH_BATCH_MAX_BYTES plus one record. */
#define PUBLISH_IN_FLIGHT 4
#define PUBLISH_SLOTS (PUBLISH_IN_FLIGHT + 1)

/* A queued record. Its topic, key and value live in the publisher's
 * arena, at these offsets, because the arena moves when it grows. */
typedef struct queued {
    size_t topic_at;
    size_t key_at;
    size_t key_len;
    size_t value_at;
    size_t value_len;
    uint64_t tag;
    size_t span;      /* index in spans, or NO_SPAN */
    size_t parent_at; /* its traceparent in the arena, when traced */
} queued_t;

/* One batch: queue[0..count) with their bytes in arena[0..arena_len),
 * and the bus records built from them when it is sent. */
typedef struct batch {
    queued_t *queue;
    sl_bus_record_t *records;
    sl_header_t *headers; /* one per record: its traceparent */
    size_t count;
    size_t cap;
    /* The produce spans of the batch's sampled records, open until the
     * batch is settled. */
    sl_span_t *spans;
    size_t span_count;
    size_t span_cap;
    uint8_t *arena;
    size_t arena_len;
    size_t arena_cap;
    sl_bus_flight_t *flight; /* while the bus still acknowledges it */
} batch_t;

struct sl_publisher {
    sl_bus_t *bus;
    sl_registry_t *reg;
    int timeout_ms;
    int32_t reading_schema_id;
    int32_t event_schema_id;
    sl_encoder_t *reading_enc;
    sl_encoder_t *event_enc;

    size_t max_payload;
    size_t batch_max; /* records per batch; <= 1: no batching */
    bool closed;      /* a settled record found the bus closed */
    uint64_t tag;
    sl_publish_report_fn report;
    void *report_ctx;
    sl_publisher_stats_t stats;

    /* A ring: the in_flight slots from oldest on are in the bus, oldest
     * first, and the slot after them is filling. */
    batch_t slots[PUBLISH_SLOTS];
    size_t oldest;
    size_t in_flight;
    int first_error; /* of the records settled since the last flush */
};

/* Registers a built-in schema under "<topic>-value" and creates its
 * encoder. The schema itself is borrowed from the registry, which outlives
 * the publisher. */
static int register_topic(sl_registry_t *reg, const char *topic,
                          const char *file_name, int32_t *id_out,
                          sl_encoder_t **enc_out)
{
    char subject[SL_ID_MAX + 1];
    char err[256] = "";
    const char *json = sl_schema_builtin(file_name);
    avro_schema_t schema;

    if (json == NULL) {
        sl_log_error("publish", "built-in schema not found file=%s", file_name);
        return SL_ENOTFOUND;
    }
    snprintf(subject, sizeof(subject), "%s-value", topic);
    if (sl_registry_register(reg, subject, json, id_out, err, sizeof(err)) !=
        SL_OK) {
        sl_log_error("publish", "schema registration failed subject=%s: %s",
                     subject, err);
        return SL_EINVAL;
    }
    schema = sl_registry_lookup(reg, *id_out);
    if (schema == NULL) {
        sl_log_error("publish", "registered schema id=%d not found",
                     (int)*id_out);
        return SL_ENOTFOUND;
    }
    *enc_out = sl_encoder_create(schema, *id_out);
    if (*enc_out == NULL) {
        sl_log_error("publish", "sl_encoder_create failed subject=%s", subject);
        return SL_ENOMEM;
    }
    return SL_OK;
}

sl_publisher_t *sl_publisher_create(sl_bus_t *bus, sl_registry_t *reg,
                                    int timeout_ms)
{
    sl_publisher_t *pub;

    if (bus == NULL || reg == NULL)
        return NULL;
    pub = calloc(1, sizeof(*pub));
    if (pub == NULL)
        return NULL;
    pub->bus = bus;
    pub->reg = reg;
    pub->timeout_ms = timeout_ms;
    pub->max_payload = SL_PUBLISH_MAX_PAYLOAD_DEFAULT;

    if (register_topic(reg, SL_TOPIC_SENSOR_READINGS, "sensor_reading.avsc",
                       &pub->reading_schema_id, &pub->reading_enc) != SL_OK)
        goto err;
    if (register_topic(reg, SL_TOPIC_ECOMMERCE_EVENTS, "ecommerce_event.avsc",
                       &pub->event_schema_id, &pub->event_enc) != SL_OK)
        goto err;
    return pub;

err:
    sl_publisher_destroy(pub);
    return NULL;
}

void sl_publisher_destroy(sl_publisher_t *pub)
{
    if (pub == NULL)
        return;
    sl_publisher_flush(pub);
    sl_encoder_destroy(pub->reading_enc);
    sl_encoder_destroy(pub->event_enc);
    for (size_t i = 0; i < PUBLISH_SLOTS; i++) {
        batch_t *b = &pub->slots[i];

        free(b->queue);
        free(b->records);
        free(b->headers);
        free(b->spans);
        free(b->arena);
    }
    free(pub);
}

int sl_publisher_set_batch(sl_publisher_t *pub, size_t max_records)
{
    int rc = sl_publisher_flush(pub);

    pub->batch_max = max_records;
    return rc;
}

void sl_publisher_set_report(sl_publisher_t *pub, sl_publish_report_fn fn,
                             void *ctx)
{
    pub->report = fn;
    pub->report_ctx = ctx;
}

void sl_publisher_set_tag(sl_publisher_t *pub, uint64_t tag)
{
    pub->tag = tag;
}

void sl_publisher_set_max_payload(sl_publisher_t *pub, size_t max_bytes)
{
    pub->max_payload =
        max_bytes > 0 ? max_bytes : SL_PUBLISH_MAX_PAYLOAD_DEFAULT;
}

void sl_publisher_stats(const sl_publisher_t *pub, sl_publisher_stats_t *out)
{
    *out = pub->stats;
    out->queued = 0;
    for (size_t k = 0; k <= pub->in_flight; k++)
        out->queued += pub->slots[(pub->oldest + k) % PUBLISH_SLOTS].count;
}

static bool batching(const sl_publisher_t *pub)
{
    return pub->batch_max > 1;
}

/* The batch that records are added to. */
static batch_t *filling(sl_publisher_t *pub)
{
    return &pub->slots[(pub->oldest + pub->in_flight) % PUBLISH_SLOTS];
}

/* Counts a queued record that did not reach its topic and passes it to the
 * report function, or logs it when there is none. */
static void report_failure(sl_publisher_t *pub, const sl_bus_record_t *rec,
                           uint64_t tag, int status)
{
    sl_publish_report_t report = {rec->topic,     rec->key, rec->key_len,
                                  rec->value_len, tag,      status};
    uint64_t n;

    if (status == SL_EREJECTED)
        pub->stats.dead_lettered++;
    else
        pub->stats.failed++;
    if (pub->report != NULL) {
        pub->report(pub->report_ctx, &report);
        return;
    }
    n = pub->stats.failed + pub->stats.dead_lettered;
    if (n <= PUBLISH_LOG_LIMIT || n % PUBLISH_LOG_EVERY == 0)
        sl_log_warn("publish",
                    "batched publish failed topic=%s value_bytes=%zu "
                    "failed_total=%" PRIu64 " dead_lettered_total=%" PRIu64
                    ": %s",
                    rec->topic, rec->value_len, pub->stats.failed,
                    pub->stats.dead_lettered, sl_strerror(status));
}

/* Publishes the digest of an oversized record. Returns SL_EREJECTED once
 * it is in dlq-messages, or the bus's error. */
static int dead_letter_oversized(sl_publisher_t *pub, const char *topic,
                                 const void *key, size_t key_len,
                                 const void *value, size_t value_len)
{
    int rc = sl_dlq_publish_oversized(pub->bus, topic, key, key_len, value,
                                      value_len, pub->max_payload,
                                      sl_time_now_ms(), pub->timeout_ms);
    uint64_t n = pub->stats.dead_lettered + 1;

    if (n <= PUBLISH_LOG_LIMIT || n % PUBLISH_LOG_EVERY == 0)
        sl_log_warn("publish",
                    "record too large for the bus topic=%s value_bytes=%zu "
                    "max_bytes=%zu too_large_total=%" PRIu64 ": %s",
                    topic, value_len, pub->max_payload, n,
                    rc == SL_OK ? "its digest went to " SL_TOPIC_DLQ
                                : sl_strerror(rc));
    return rc == SL_OK ? SL_EREJECTED : rc;
}

/* Builds the bus records of b from the arena offsets. */
static void batch_records(batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        const queued_t *q = &b->queue[i];

        b->records[i] = (sl_bus_record_t){
            .topic = (const char *)b->arena + q->topic_at,
            .partition = -1,
            .key = b->arena + q->key_at,
            .key_len = q->key_len,
            .value = b->arena + q->value_at,
            .value_len = q->value_len,
        };
        if (q->span != NO_SPAN) {
            b->headers[i] =
                (sl_header_t){SL_TRACEPARENT_HEADER, b->arena + q->parent_at,
                              SL_TRACEPARENT_LEN};
            b->records[i].headers = &b->headers[i];
            b->records[i].header_count = 1;
        }
    }
}

/* Begins the record's produce span: a child of the calling thread's
 * current span (an HTTP ingest request's), else a root span sampled by the
 * configured ratio. Returns whether it is sampled; with tracing off that
 * costs one flag check. */
static bool produce_begin(sl_span_t *span, const char *topic)
{
    char parent[SL_TRACEPARENT_LEN + 1];
    bool has_parent;

    if (!sl_trace_enabled())
        return false;
    has_parent = sl_trace_current_parent(parent);
    if (!sl_span_begin(span, "produce", SL_SPAN_PRODUCER,
                       has_parent ? parent : NULL))
        return false;
    sl_span_attr_text(span, "messaging.destination.name", topic);
    return true;
}

/* Ends a produce span with the record's outcome. */
static void produce_end(sl_span_t *span, int rc)
{
    if (rc == SL_EREJECTED)
        sl_span_set_error(span, "too large, dead-lettered");
    else if (rc != SL_OK)
        sl_span_set_error(span, sl_strerror(rc));
    sl_span_end(span);
}

/* Settles one record of a batch whose outcome is known. The bus stops
 * queueing a batch at the first record it cannot queue and fails the rest
 * with the same status. When the batch was settled at once (queued is
 * false), a record that got SL_EINVAL is therefore tried again on its
 * own. The records after an invalid one were not sent, and no later batch
 * was started, so they get through in order. An SL_EINVAL from a delivery
 * report is final, because a resend would overtake later batches. */
static int settle(sl_publisher_t *pub, sl_bus_record_t *rec, uint64_t tag,
                  bool queued)
{
    int status = rec->status;

    if (status == SL_EINVAL && !queued)
        status =
            sl_bus_publish(pub->bus, rec->topic, -1, rec->key, rec->key_len,
                           rec->value, rec->value_len, rec->headers,
                           rec->header_count, pub->timeout_ms, NULL);
    if (status == SL_ETOOBIG)
        status = dead_letter_oversized(pub, rec->topic, rec->key, rec->key_len,
                                       rec->value, rec->value_len);
    if (status == SL_OK) {
        pub->stats.published++;
        return SL_OK;
    }
    if (status == SL_ECLOSED)
        pub->closed = true;
    report_failure(pub, rec, tag, status);
    return status;
}

/* Waits for the oldest batch in the bus, settles its records and empties
 * its slot. */
static void settle_oldest(sl_publisher_t *pub)
{
    batch_t *b = &pub->slots[pub->oldest];
    bool queued = b->flight != NULL;

    if (queued) {
        sl_bus_publish_finish(b->flight);
        b->flight = NULL;
    }
    for (size_t i = 0; i < b->count; i++) {
        int rc = settle(pub, &b->records[i], b->queue[i].tag, queued);

        if (b->queue[i].span != NO_SPAN)
            produce_end(&b->spans[b->queue[i].span], rc);
        /* A dead-lettered record is settled, not failed. */
        if (rc != SL_OK && rc != SL_EREJECTED && pub->first_error == SL_OK)
            pub->first_error = rc;
    }
    b->count = 0;
    b->span_count = 0;
    b->arena_len = 0;
    pub->oldest = (pub->oldest + 1) % PUBLISH_SLOTS;
    pub->in_flight--;
}

/* Hands the filling batch to the bus without waiting for its outcome,
 * after settling the oldest batch when PUBLISH_IN_FLIGHT are in the bus.
 * When the bus settled the batch at once (an error, or a bus that
 * publishes synchronously), every batch before it is settled too, so
 * reports keep their order. */
static void send_filling(sl_publisher_t *pub)
{
    batch_t *b = filling(pub);

    if (b->count == 0)
        return;
    /* Settling the oldest leaves the filling slot where it is. */
    if (pub->in_flight == PUBLISH_IN_FLIGHT)
        settle_oldest(pub);
    batch_records(b);
    sl_bus_publish_start(pub->bus, b->records, b->count, pub->timeout_ms,
                         &b->flight);
    pub->in_flight++;
    if (b->flight == NULL) {
        size_t slot = (size_t)(b - pub->slots);

        while (pub->in_flight > 0)
            settle_oldest(pub);
        /* Nothing is in flight, so any slot can fill next. Reusing this
         * one keeps a bus that publishes at once to one batch's memory. */
        pub->oldest = slot;
    }
}

int sl_publisher_flush(sl_publisher_t *pub)
{
    int rc;

    if (pub == NULL)
        return SL_EINVAL;
    send_filling(pub);
    while (pub->in_flight > 0)
        settle_oldest(pub);
    rc = pub->first_error;
    pub->first_error = SL_OK;
    return rc;
}

/* Makes room in the filling batch for one more record and for need more
 * arena bytes, plus its traceparent. */
static int reserve(sl_publisher_t *pub, size_t need)
{
    batch_t *b = filling(pub);

    need += SL_TRACEPARENT_LEN + 1;
    if (b->count == b->cap) {
        size_t cap = b->cap == 0 ? 64 : b->cap * 2;
        queued_t *queue = realloc(b->queue, cap * sizeof(*queue));
        sl_bus_record_t *records;
        sl_header_t *headers;

        if (queue == NULL)
            return SL_ENOMEM;
        b->queue = queue;
        records = realloc(b->records, cap * sizeof(*records));
        if (records == NULL)
            return SL_ENOMEM;
        b->records = records;
        headers = realloc(b->headers, cap * sizeof(*headers));
        if (headers == NULL)
            return SL_ENOMEM;
        b->headers = headers;
        b->cap = cap;
    }
    if (need > b->arena_cap - b->arena_len) {
        size_t cap = b->arena_cap == 0 ? 64 * 1024 : b->arena_cap;
        uint8_t *arena;

        while (need > cap - b->arena_len)
            cap *= 2;
        arena = realloc(b->arena, cap);
        if (arena == NULL)
            return SL_ENOMEM;
        b->arena = arena;
        b->arena_cap = cap;
    }
    return SL_OK;
}

/* Copies len bytes to the end of b's arena and returns their offset. The
 * caller reserved the room. */
static size_t arena_put(batch_t *b, const void *data, size_t len)
{
    size_t at = b->arena_len;

    if (len > 0)
        memcpy(b->arena + at, data, len);
    b->arena_len += len;
    return at;
}

/* Begins the produce span of the record q of b, about to be queued, and
 * keeps its traceparent in the arena, whose room reserve() made. Without
 * memory for the span the record goes untraced. */
static void trace_queued(batch_t *b, queued_t *q, const char *topic)
{
    if (b->span_count == b->span_cap) {
        size_t cap = b->span_cap == 0 ? 16 : b->span_cap * 2;
        sl_span_t *spans = realloc(b->spans, cap * sizeof(*spans));

        if (spans == NULL)
            return;
        b->spans = spans;
        b->span_cap = cap;
    }
    if (!produce_begin(&b->spans[b->span_count], topic))
        return;
    q->span = b->span_count++;
    q->parent_at = b->arena_len;
    sl_span_traceparent(&b->spans[q->span], (char *)b->arena + q->parent_at);
    b->arena_len += SL_TRACEPARENT_LEN + 1;
}

/* Queues the record whose topic and key are given and whose value_len
 * bytes of value the caller already wrote at value_at, then sends the
 * batch when it is full. Returns SL_OK: what becomes of the record is
 * reported. */
static int enqueue(sl_publisher_t *pub, const char *topic, const void *key,
                   size_t key_len, size_t value_at, size_t value_len)
{
    batch_t *b = filling(pub);
    queued_t *q = &b->queue[b->count++];

    q->value_at = value_at;
    q->value_len = value_len;
    q->key_at = arena_put(b, key, key_len);
    q->key_len = key_len;
    q->topic_at = arena_put(b, topic, strlen(topic) + 1);
    q->tag = pub->tag;
    q->span = NO_SPAN;
    if (sl_trace_enabled())
        trace_queued(b, q, topic);
    if (b->count >= pub->batch_max ||
        b->arena_len >= SL_PUBLISH_BATCH_MAX_BYTES)
        send_filling(pub);
    return SL_OK;
}

/* Counts the outcome of a record published on its own. */
static int count_direct(sl_publisher_t *pub, int rc)
{
    if (rc == SL_OK)
        pub->stats.published++;
    else if (rc == SL_EREJECTED)
        pub->stats.dead_lettered++;
    else
        pub->stats.failed++;
    return rc;
}

/* Publishes one record on its own; a record the bus refuses for its size
 * is dead-lettered. */
static int publish_direct(sl_publisher_t *pub, const char *topic,
                          const void *key, size_t key_len, const void *value,
                          size_t value_len)
{
    char parent[SL_TRACEPARENT_LEN + 1];
    sl_header_t header = {SL_TRACEPARENT_HEADER, parent, SL_TRACEPARENT_LEN};
    sl_span_t span;
    bool traced = produce_begin(&span, topic);
    int rc;

    if (traced)
        sl_span_traceparent(&span, parent);
    rc = sl_bus_publish(pub->bus, topic, -1, key, key_len, value, value_len,
                        traced ? &header : NULL, traced ? 1 : 0,
                        pub->timeout_ms, NULL);
    if (rc == SL_ETOOBIG)
        rc = dead_letter_oversized(pub, topic, key, key_len, value, value_len);
    if (traced)
        produce_end(&span, rc);
    return count_direct(pub, rc);
}

/* Encodes a reading or event into buf, which has SL_PUBLISH_MAX_BYTES. */
static int encode(sl_publisher_t *pub, const void *rec, bool is_event,
                  uint8_t *buf, size_t *len)
{
    if (is_event)
        return sl_event_encode(pub->event_enc, rec, buf, SL_PUBLISH_MAX_BYTES,
                               len);
    return sl_reading_encode(pub->reading_enc, rec, buf, SL_PUBLISH_MAX_BYTES,
                             len);
}

/* Encodes a reading or event straight into the batch. */
static int queue_encoded(sl_publisher_t *pub, const char *topic,
                         const char *key, const void *rec, bool is_event)
{
    size_t key_len = strlen(key);
    size_t value_at, len = 0;
    batch_t *b;
    int rc;

    if (pub->closed)
        return count_direct(pub, SL_ECLOSED);
    rc = reserve(pub, SL_PUBLISH_MAX_BYTES + key_len + strlen(topic) + 1);
    if (rc != SL_OK)
        return count_direct(pub, rc);
    b = filling(pub);
    value_at = b->arena_len;
    rc = encode(pub, rec, is_event, b->arena + value_at, &len);
    if (rc != SL_OK)
        return count_direct(pub, rc);
    b->arena_len += len;
    return enqueue(pub, topic, key, key_len, value_at, len);
}

/* Encodes a reading or event and publishes it, on its own or batched. */
static int publish_encoded(sl_publisher_t *pub, const char *topic,
                           const char *key, const void *rec, bool is_event)
{
    uint8_t buf[SL_PUBLISH_MAX_BYTES];
    size_t len = 0;
    int rc;

    if (batching(pub))
        return queue_encoded(pub, topic, key, rec, is_event);
    rc = encode(pub, rec, is_event, buf, &len);
    if (rc != SL_OK)
        return count_direct(pub, rc);
    return publish_direct(pub, topic, key, strlen(key), buf, len);
}

int sl_publish_reading(sl_publisher_t *pub, const sl_reading_t *rec)
{
    if (pub == NULL || rec == NULL)
        return SL_EINVAL;
    return publish_encoded(pub, SL_TOPIC_SENSOR_READINGS, rec->sensor_id, rec,
                           false);
}

int sl_publish_event(sl_publisher_t *pub, const sl_event_t *ev)
{
    if (pub == NULL || ev == NULL)
        return SL_EINVAL;
    return publish_encoded(pub, SL_TOPIC_ECOMMERCE_EVENTS, ev->user_id, ev,
                           true);
}

int sl_publish_frame(sl_publisher_t *pub, const char *topic, const void *key,
                     size_t key_len, const void *value, size_t value_len)
{
    size_t value_at;
    int rc;

    if (pub == NULL)
        return SL_EINVAL;
    if (topic == NULL || topic[0] == '\0' || (key == NULL && key_len > 0) ||
        (value == NULL && value_len > 0))
        return count_direct(pub, SL_EINVAL);
    if (key_len > pub->max_payload || value_len > pub->max_payload - key_len)
        return count_direct(pub, dead_letter_oversized(pub, topic, key, key_len,
                                                       value, value_len));
    if (!batching(pub))
        return publish_direct(pub, topic, key, key_len, value, value_len);
    if (pub->closed)
        return count_direct(pub, SL_ECLOSED);
    rc = reserve(pub, value_len + key_len + strlen(topic) + 1);
    if (rc != SL_OK)
        return count_direct(pub, rc);
    value_at = arena_put(filling(pub), value, value_len);
    return enqueue(pub, topic, key, key_len, value_at, value_len);
}

int32_t sl_publisher_reading_schema_id(const sl_publisher_t *pub)
{
    return pub->reading_schema_id;
}

int32_t sl_publisher_event_schema_id(const sl_publisher_t *pub)
{
    return pub->event_schema_id;
}
