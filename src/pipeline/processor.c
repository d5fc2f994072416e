/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stream processor: consumes sensor-readings and ecommerce-events,
 * decodes and validates each record, writes the valid ones to the store in
 * one transaction per polled batch, feeds readings into the tumbling
 * windows, and sends every failure to the dead-letter queue. Offsets are
 * committed only after the batch's rows are committed and its dead-letter
 * copies accepted, so a crash redelivers instead of losing records. The
 * store's idempotent writes absorb the redelivery.
 *
 * The sensor_latest rows are not written with each batch: under load a
 * batch is a few hundred readings of as many sensors, and a latest upsert
 * per reading cost more than the reading itself. The newest stored reading
 * of each sensor is kept here instead and written every
 * latest_interval_ms, and offsets are committed only after the write that
 * covers their readings. A crash in between redelivers those records, and
 * their redelivery writes the latest rows again.
 *
 * A record whose bus headers carry a sampled W3C traceparent gets a
 * "process" span, child of the producer's, from poll to commit, and a
 * "store.write" span, child of that, around the batch's store commit.
 * The commit is shared by the whole batch, so each sampled record's
 * store.write span covers the same transaction and records the batch's
 * size. A record without the header costs one header lookup.
 */
#include "pipeline/pipeline.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/validate.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "pipeline/dlq.h"
#include "pipeline/latest.h"
#include "pipeline/offsets.h"
#include "pipeline/window.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Windows of a sensor silent for the allowed lateness (processing time),
 * but at least this long, are closed: had it kept reporting in real time,
 * its watermark would have passed them by then. */
#define MIN_IDLE_CLOSE_MS 10000
#define SWEEP_INTERVAL_MS 1000
#define DLQ_PUBLISH_TIMEOUT_MS 1000

/* Event times both stores accept: years 0001..9999 UTC, the CHECK on
 * timestamp_ms of sensor_readings and ecommerce_events in both schemas. */
#define STORABLE_MIN_TS_MS INT64_C(-62135596800000)
#define STORABLE_MAX_TS_MS INT64_C(253402300799999)

typedef struct processor_metrics {
    sl_counter_t *consumed[2];
    sl_counter_t *stored[2];
    sl_counter_t *duplicates[2];
    sl_counter_t *dead_lettered[2][4];
    sl_counter_t *decode_errors[SL_DECODE_ERR_COUNT];
    sl_counter_t *late;
    sl_counter_t *aggregates;
    sl_counter_t *dlq_resolved;
    sl_histogram_t *batch_size;
    sl_histogram_t *store_latency;
    sl_gauge_t *lag;
} processor_metrics_t;

/* Sampled records per batch that get spans. The spans live in the
 * processor so that a batch allocates nothing.
 * XXX: sampled records of a batch past this many are processed untraced,
 * so a ratio near 1 under load loses the processor's part of some
 * traces. */
#define TRACED_MAX 32

struct sl_processor {
    sl_processor_config_t cfg;
    sl_store_t *st;
    sl_consumer_t *consumer;
    sl_decoder_t *reading_decoder;
    sl_decoder_t *event_decoder;
    sl_windows_t *windows;
    sl_msg_t *msgs;
    sl_reading_t *readings;
    bool *reading_duplicate;
    bool *reading_rejected; /* rejected by the store: not in any window */
    /* Offset expected next per partition of sensor-readings, -1 before
     * the first; another offset means the partition was consumed
     * elsewhere meanwhile. Partitions past SL_OFFSETS_MAX are not
     * tracked. */
    int64_t next_reading_offset[SL_OFFSETS_MAX];
    /* Newest stored reading per sensor whose latest row is not written
     * yet, and the offsets of the batches since that write. */
    sl_latest_set_t *latest;
    sl_offsets_t pending_offsets;
    int64_t latest_written_ms; /* monotonic */
    sl_event_t *events;
    /* Scratch of process_batch, sized for a full batch once at start so a
     * batch allocates nothing. failures has room for two per record (a
     * decode or validation failure, then a store rejection). */
    struct failure *failures;
    const sl_msg_t **reading_msgs;
    const sl_msg_t **event_msgs;
    sl_span_t process_spans[TRACED_MAX];
    sl_span_t store_spans[TRACED_MAX];
    size_t traced_count;
    processor_metrics_t metrics;
    pthread_t thread;
    bool started;
    int64_t last_sweep_ms;
    atomic_uint_least64_t consumed;
    atomic_uint_least64_t stored;
    atomic_uint_least64_t duplicates;
    atomic_uint_least64_t dead_lettered;
    atomic_uint_least64_t late;
    atomic_uint_least64_t aggregates;
};

enum { TOPIC_READINGS = 0, TOPIC_EVENTS = 1 };
static const char *const topic_names[] = {SL_TOPIC_SENSOR_READINGS,
                                          SL_TOPIC_ECOMMERCE_EVENTS};

static atomic_bool writes_abandoned;

void sl_pipeline_abandon_writes(void)
{
    atomic_store(&writes_abandoned, true);
}

void sl_pipeline_commit(sl_consumer_t *consumer, const sl_offsets_t *offsets,
                        const char *component)
{
    int rc = sl_offsets_commit(offsets, consumer);

    /* SL_EBUSY: a rebalance moved the partition; its new owner starts
     * from the last commit and the store absorbs the redelivery. */
    if (rc != SL_OK)
        sl_log_warn(component, "offset commit failed: %s", sl_strerror(rc));
}

void sl_processor_config_init(sl_processor_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->group = "sluice-processor";
    cfg->batch_size = 5000;
    cfg->poll_timeout_ms = 50;
    cfg->latest_interval_ms = 250;
    cfg->window_ms = 60000;
    cfg->lateness_ms = 300000;
    cfg->max_payload_bytes = SL_FRAME_MAX_BYTES;
}

int sl_pipeline_store_write(sl_store_t *st, const sl_store_batch_t *batch,
                            sl_store_result_t *result,
                            sl_store_reject_cb reject, void *reject_ctx,
                            const char *component)
{
    sl_gauge_t *outage =
        sl_metrics_gauge("sluice_store_unavailable",
                         "1 while a stage waits for the store to come back",
                         (const char *[]){"stage", component, NULL});
    int64_t delay_ms = 100;
    int attempts = 0;

    for (;;) {
        int rc = sl_store_write(st, batch, result, reject, reject_ctx);
        if (rc != SL_OK && atomic_load(&writes_abandoned)) {
            sl_log_error(component,
                         "store still unavailable at shutdown; "
                         "batch not written: %s",
                         sl_strerror(rc));
            return rc;
        }
        if (rc == SL_OK) {
            if (attempts > 0) {
                sl_log_info(component,
                            "store available again after %d "
                            "retries",
                            attempts);
                sl_gauge_set(outage, 0);
            }
            return SL_OK;
        }
        if (attempts == 0) {
            sl_log_error(component,
                         "store write failed, pausing and "
                         "retrying: %s",
                         sl_strerror(rc));
            sl_gauge_set(outage, 1);
        }
        attempts++;
        sl_time_sleep_ms(delay_ms);
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
}

static void metrics_init(processor_metrics_t *m)
{
    static const double batch_bounds[] = {1, 10, 100, 1000, 5000, 10000};
    static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025, 0.05,   0.1,
                                            0.25,   0.5,   1,      2.5};

    for (int t = 0; t < 2; t++) {
        const char *topic = topic_names[t];
        m->consumed[t] = sl_metrics_counter(
            "sluice_records_consumed_total", "Records read from the bus",
            (const char *[]){"topic", topic, NULL});
        m->stored[t] = sl_metrics_counter(
            "sluice_records_stored_total", "Records newly written to the store",
            (const char *[]){"topic", topic, NULL});
        m->duplicates[t] = sl_metrics_counter(
            "sluice_records_duplicate_total",
            "Records already stored, ignored by the idempotent write",
            (const char *[]){"topic", topic, NULL});
        for (int c = 0; c < 4; c++) {
            m->dead_lettered[t][c] = sl_metrics_counter(
                "sluice_dlq_records_total",
                "Records sent to the dead-letter queue",
                (const char *[]){"topic", topic, "class",
                                 sl_dlq_class_name((sl_dlq_class_t)c), NULL});
        }
    }
    for (int e = 1; e < SL_DECODE_ERR_COUNT; e++) {
        m->decode_errors[e] = sl_metrics_counter(
            "sluice_decode_errors_total", "Records that could not be decoded",
            (const char *[]){"reason", sl_decode_err_name((sl_decode_err_t)e),
                             NULL});
    }
    m->late = sl_metrics_counter(
        "sluice_window_late_events_total",
        "Readings that arrived after their window closed; the window is "
        "recomputed",
        NULL);
    m->aggregates = sl_metrics_counter("sluice_window_aggregates_total",
                                       "Window aggregates written", NULL);
    m->dlq_resolved = sl_metrics_counter(
        "sluice_dlq_resolved_total",
        "Dead-lettered records stored by a retry, their rows resolved", NULL);
    m->batch_size = sl_metrics_histogram(
        "sluice_processor_batch_records", "Records per processed batch",
        batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]), NULL);
    m->store_latency = sl_metrics_histogram(
        "sluice_store_write_duration_seconds",
        "Time to commit one batch to the store", latency_bounds,
        sizeof(latency_bounds) / sizeof(latency_bounds[0]),
        (const char *[]){"stage", "processor", NULL});
    m->lag = sl_metrics_gauge("sluice_consumer_lag_records",
                              "Records not yet committed by the group",
                              (const char *[]){"group", "processor", NULL});
}

/* A record that failed: what it was and why. */
typedef struct failure {
    const sl_msg_t *msg;
    const sl_dlq_origin_t *origin; /* NULL unless msg is a retry */
    sl_dlq_class_t cls;
    bool excerpt; /* too large to copy: the DLQ gets an excerpt */
    bool cut_key; /* the excerpt keeps only the key's first bytes too */
    char error[SL_TEXT_MAX + 1];
} failure_t;

/* The origin headers of a batch's retried records; origin[i] is valid
 * when retried[i]. Allocated only for a batch that holds a retry. */
typedef struct batch_origins {
    sl_dlq_origin_t *origin;
    bool *retried;
    sl_dlq_resolution_t *resolutions;
    size_t resolution_count;
} batch_origins_t;

static int topic_index(const char *topic)
{
    return strcmp(topic, SL_TOPIC_ECOMMERCE_EVENTS) == 0 ? TOPIC_EVENTS
                                                         : TOPIC_READINGS;
}

static int publish_failure(sl_processor_t *proc, const failure_t *f,
                           int64_t now_ms)
{
    sl_msg_t cut;

    if (f->cut_key) {
        cut = *f->msg;
        if (cut.key_len > SL_DLQ_EXCERPT_BYTES)
            cut.key_len = SL_DLQ_EXCERPT_BYTES;
        return sl_dlq_publish_excerpt(proc->cfg.bus, &cut, f->origin, f->cls,
                                      f->error, now_ms, DLQ_PUBLISH_TIMEOUT_MS);
    }
    if (f->excerpt)
        return sl_dlq_publish_excerpt(proc->cfg.bus, f->msg, f->origin, f->cls,
                                      f->error, now_ms, DLQ_PUBLISH_TIMEOUT_MS);
    return sl_dlq_publish(proc->cfg.bus, f->msg, f->origin, f->cls, f->error,
                          now_ms, DLQ_PUBLISH_TIMEOUT_MS);
}

/* Notes in f's error that the bus rejected its copy with rc, so the
 * dlq_errors row shows why the payload (or the key) is cut. */
static void note_cut(failure_t *f, const char *what, int rc)
{
    size_t len = strlen(f->error);

    snprintf(f->error + len, sizeof(f->error) - len,
             "; the bus rejected the %s as a dead-letter copy: %s", what,
             sl_strerror(rc));
}

/*
 * Publishes one failure until the bus accepts it or closes. A copy the bus
 * rejects as too large (SL_ETOOBIG, or SL_EINVAL, which the in-process bus
 * returns for a record larger than a partition) is never accepted, so an
 * excerpt with the original size and hash is sent in its place. When the
 * key alone is near the limit, the excerpt's key is cut too. Other errors
 * are retried, with a pause unless the publish itself waited (a full
 * bus), which pauses consumption. Returns SL_OK or SL_ECLOSED.
 */
static int publish_until_accepted(sl_processor_t *proc, failure_t *f,
                                  int64_t now_ms)
{
    int64_t pause_ms = 100;

    for (;;) {
        int rc = publish_failure(proc, f, now_ms);

        if (rc == SL_OK)
            return SL_OK;
        if ((rc == SL_ETOOBIG || rc == SL_EINVAL) && !f->cut_key) {
            sl_log_warn("processor",
                        "dead-letter copy rejected, sending %s topic=%s "
                        "partition=%d offset=%" PRId64
                        " key_bytes=%zu value_bytes=%zu error=%s",
                        f->excerpt ? "the excerpt with the key cut"
                                   : "an excerpt",
                        f->msg->topic, (int)f->msg->partition, f->msg->offset,
                        f->msg->key_len, f->msg->value_len, sl_strerror(rc));
            /* XXX: a retryable failure keeps its class, so the handler
             * retries the excerpt, which then fails to decode and is
             * parked; only its size and hash identify the whole value. */
            if (f->excerpt) {
                f->cut_key = true;
                note_cut(f, "whole key", rc);
            } else {
                f->excerpt = true;
                note_cut(f, "whole value", rc);
            }
            continue;
        }
        sl_log_error("processor",
                     "dead-letter publish failed topic=%s partition=%d "
                     "offset=%" PRId64 " error=%s%s",
                     f->msg->topic, (int)f->msg->partition, f->msg->offset,
                     sl_strerror(rc),
                     rc == SL_ECLOSED ? "; batch left uncommitted"
                                      : "; retrying");
        if (rc == SL_ECLOSED)
            return rc;
        if (rc != SL_EFULL) {
            sl_time_sleep_ms(pause_ms);
            pause_ms = pause_ms * 2 > 5000 ? 5000 : pause_ms * 2;
        }
    }
}

/*
 * Publishes the batch's failures to the dead-letter queue, each until it
 * is accepted: offsets must not be committed for a record that is in
 * neither the store nor the DLQ. Returns true when every failure was
 * accepted, false when the bus closed first, and the caller must then not
 * commit the batch.
 */
static bool dead_letter(sl_processor_t *proc, failure_t *failures, size_t count)
{
    int64_t now_ms = sl_time_now_ms();

    for (size_t i = 0; i < count; i++) {
        failure_t *f = &failures[i];
        int t = topic_index(f->msg->topic);

        if (publish_until_accepted(proc, f, now_ms) != SL_OK)
            return false;
        sl_counter_add(proc->metrics.dead_lettered[t][f->cls], 1);
        atomic_fetch_add(&proc->dead_lettered, 1);
        sl_log_debug("processor",
                     "dead-lettered topic=%s partition=%d "
                     "offset=%" PRId64 " class=%s attempt=%d error=%s",
                     f->msg->topic, (int)f->msg->partition, f->msg->offset,
                     sl_dlq_class_name(f->cls),
                     f->origin != NULL ? (int)f->origin->attempt + 1 : 1,
                     f->error);
    }
    return true;
}

/* Reads the origin headers of the batch's retried records. Returns SL_OK
 * (o->origin NULL when the batch holds none) or SL_ENOMEM. */
static int read_origins(const sl_msg_t *msgs, size_t n, batch_origins_t *o)
{
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < n; i++) {
        if (sl_msg_header(&msgs[i], SL_DLQ_HDR_TOPIC) == NULL)
            continue;
        if (o->origin == NULL) {
            o->origin = calloc(n, sizeof(*o->origin));
            o->retried = calloc(n, sizeof(*o->retried));
            o->resolutions = calloc(n, sizeof(*o->resolutions));
            if (o->origin == NULL || o->retried == NULL ||
                o->resolutions == NULL)
                return SL_ENOMEM;
        }
        o->retried[i] = sl_dlq_origin_from_msg(&msgs[i], &o->origin[i]);
    }
    return SL_OK;
}

static void free_origins(batch_origins_t *o)
{
    free(o->origin);
    free(o->retried);
    free(o->resolutions);
}

/* Notes that a retried record sits at row index of the batch, so that
 * storing it resolves its dead-letter row. */
static void add_resolution(batch_origins_t *o, size_t msg_index, bool is_event,
                           size_t index)
{
    const sl_dlq_origin_t *origin;

    if (o->origin == NULL || !o->retried[msg_index])
        return;
    origin = &o->origin[msg_index];
    o->resolutions[o->resolution_count++] = (sl_dlq_resolution_t){
        origin->topic, origin->partition, origin->offset, is_event, index};
}

/* Returns the origin of the batch's record msg, or NULL for a first
 * delivery. */
static const sl_dlq_origin_t *origin_of(const batch_origins_t *o,
                                        const sl_processor_t *proc,
                                        const sl_msg_t *msg)
{
    size_t i = (size_t)(msg - proc->msgs);

    if (o->origin == NULL || !o->retried[i])
        return NULL;
    return &o->origin[i];
}

/* Notes a value over max_payload_bytes as a decode failure, without
 * decoding it: its dead-letter copy keeps an excerpt. */
static void reject_oversized(sl_processor_t *proc, const sl_msg_t *msg,
                             failure_t *failure)
{
    sl_counter_add(proc->metrics.decode_errors[SL_DECODE_PAYLOAD_TOO_LARGE], 1);
    failure->cls = SL_DLQ_DECODE;
    failure->excerpt = true;
    snprintf(failure->error, sizeof(failure->error),
             "%s: value of %zu bytes is over max-payload-bytes %zu",
             sl_decode_err_name(SL_DECODE_PAYLOAD_TOO_LARGE), msg->value_len,
             proc->cfg.max_payload_bytes);
}

/* Returns NULL when both stores can hold event time ts_ms, else the
 * reason, with the detail written to detail. */
static const char *check_storable_time(int64_t ts_ms, char *detail,
                                       size_t detail_size)
{
    if (ts_ms >= STORABLE_MIN_TS_MS && ts_ms <= STORABLE_MAX_TS_MS)
        return NULL;
    snprintf(detail, detail_size,
             "timestamp %" PRId64 " ms is outside the years 0001..9999 "
             "(%" PRId64 "..%" PRId64 " ms) that the store holds",
             ts_ms, STORABLE_MIN_TS_MS, STORABLE_MAX_TS_MS);
    return "ts_out_of_range";
}

/* Decodes and validates one record into the batch, or notes a failure. */
static void classify(sl_processor_t *proc, const sl_msg_t *msg,
                     size_t *reading_count, size_t *event_count,
                     failure_t *failure, bool *failed, int64_t now_ms)
{
    int t = topic_index(msg->topic);
    sl_decode_err_t derr;
    const char *reason = NULL;
    char detail[160] = "";

    *failed = false;
    failure->msg = msg;
    failure->excerpt = false;
    failure->cut_key = false;
    if (msg->value_len > proc->cfg.max_payload_bytes) {
        reject_oversized(proc, msg, failure);
        *failed = true;
        return;
    }
    if (t == TOPIC_READINGS) {
        sl_reading_t *rec = &proc->readings[*reading_count];
        derr = sl_reading_decode(proc->reading_decoder, msg->value,
                                 msg->value_len, rec);
        if (derr == SL_DECODE_OK)
            reason =
                check_storable_time(rec->timestamp_ms, detail, sizeof(detail));
        if (derr == SL_DECODE_OK && reason == NULL)
            reason = sl_reading_validate(rec, now_ms);
        if (derr == SL_DECODE_OK && reason == NULL)
            (*reading_count)++;
    } else {
        sl_event_t *ev = &proc->events[*event_count];
        derr = sl_event_decode(proc->event_decoder, msg->value, msg->value_len,
                               ev);
        if (derr == SL_DECODE_OK)
            reason =
                check_storable_time(ev->timestamp_ms, detail, sizeof(detail));
        if (derr == SL_DECODE_OK && reason == NULL)
            reason = sl_event_validate(ev, now_ms);
        if (derr == SL_DECODE_OK && reason == NULL)
            (*event_count)++;
    }

    if (derr != SL_DECODE_OK) {
        sl_counter_add(proc->metrics.decode_errors[derr], 1);
        /* An unreachable registry is no fault of the record, so the record
         * is retried with backoff instead of parked as undecodable.
         * XXX: pausing consumption until the registry is back would keep
         * such records out of the DLQ altogether. */
        failure->cls = derr == SL_DECODE_REGISTRY_UNAVAILABLE
                           ? SL_DLQ_PROCESSING
                           : SL_DLQ_DECODE;
        snprintf(failure->error, sizeof(failure->error), "%s",
                 sl_decode_err_name(derr));
        *failed = true;
    } else if (reason != NULL) {
        failure->cls = SL_DLQ_VALIDATION;
        snprintf(failure->error, sizeof(failure->error), "%s%s%s", reason,
                 detail[0] != '\0' ? ": " : "", detail);
        *failed = true;
    }
}

typedef struct reject_ctx {
    sl_processor_t *proc;
    const batch_origins_t *origins;
    failure_t *failures;
    size_t *failure_count;
    const sl_msg_t **reading_msgs;
    const sl_msg_t **event_msgs;
} reject_ctx_t;

/* A row the store rejected while its batch was committed: dead-letter it
 * with class storage so the retrying handler can try it again. */
static void on_reject(void *arg, const char *kind, size_t index,
                      const char *error)
{
    reject_ctx_t *ctx = arg;
    const sl_msg_t *msg;
    failure_t *f;

    if (strcmp(kind, "reading") == 0) {
        msg = ctx->reading_msgs[index];
        ctx->proc->reading_rejected[index] = true;
    } else if (strcmp(kind, "event") == 0) {
        msg = ctx->event_msgs[index];
    } else {
        /* Aggregates and latest-state rows derive from stored records;
         * there is no source record to dead-letter. */
        sl_log_error("processor", "store rejected a %s row: %s", kind, error);
        return;
    }
    f = &ctx->failures[(*ctx->failure_count)++];
    f->msg = msg;
    f->origin = origin_of(ctx->origins, ctx->proc, msg);
    f->cls = SL_DLQ_STORAGE;
    f->excerpt = false;
    f->cut_key = false;
    snprintf(f->error, sizeof(f->error), "db_rejected: %s", error);
}

/* A latest row the store rejected: its reading is stored, so there is no
 * record to dead-letter. */
static void on_latest_reject(void *arg, const char *kind, size_t index,
                             const char *error)
{
    (void)arg;
    sl_log_error("processor", "store rejected a %s row (index %zu): %s", kind,
                 index, error);
}

static void write_windows(sl_processor_t *proc)
{
    sl_window_output_t out;

    sl_windows_take(proc->windows, &out);
    if (out.aggregate_count == 0 && out.recompute_count == 0)
        return;
    sl_store_batch_t batch = {.aggregates = out.aggregates,
                              .aggregate_count = out.aggregate_count,
                              .recompute = out.recompute,
                              .recompute_count = out.recompute_count};
    sl_pipeline_store_write(proc->st, &batch, NULL, NULL, NULL, "processor");
    sl_counter_add(proc->metrics.aggregates,
                   out.aggregate_count + out.recompute_count);
    atomic_fetch_add(&proc->aggregates,
                     out.aggregate_count + out.recompute_count);
}

/*
 * Resyncs the windows of a partition of sensor-readings whose records do
 * not continue where this processor left off: another member of the group
 * consumed it in between (a rebalance moved it away and back), or it is
 * redelivered. The rows the others stored are then only in the store.
 */
static void check_continuity(sl_processor_t *proc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const sl_msg_t *msg = &proc->msgs[i];
        int64_t *next;

        if (topic_index(msg->topic) != TOPIC_READINGS || msg->partition < 0 ||
            msg->partition >= SL_OFFSETS_MAX)
            continue;
        next = &proc->next_reading_offset[msg->partition];
        if (*next >= 0 && msg->offset != *next) {
            size_t sensors =
                sl_windows_resync_partition(proc->windows, msg->partition);
            sl_log_info("processor",
                        "partition resumed elsewhere than it stopped, windows "
                        "recomputed topic=%s partition=%d expected=%" PRId64
                        " offset=%" PRId64 " sensors=%zu",
                        msg->topic, (int)msg->partition, *next, msg->offset,
                        sensors);
        }
        *next = msg->offset + 1;
    }
}

static void update_windows(sl_processor_t *proc, size_t reading_count,
                           const sl_msg_t **reading_msgs)
{
    for (size_t i = 0; i < reading_count; i++) {
        if (proc->reading_rejected[i])
            continue;
        int rc = sl_windows_add_from(proc->windows, &proc->readings[i],
                                     proc->reading_duplicate[i],
                                     reading_msgs[i]->partition);
        if (rc == 1) {
            sl_counter_add(proc->metrics.late, 1);
            atomic_fetch_add(&proc->late, 1);
        } else if (rc < 0) {
            sl_log_error("processor", "window state: %s", sl_strerror(rc));
        }
    }
}

/* Begins a process span for each record of the batch that carries a
 * sampled traceparent, up to TRACED_MAX. */
static void trace_begin(sl_processor_t *proc, size_t n)
{
    char parent[SL_TRACEPARENT_LEN + 1];

    proc->traced_count = 0;
    if (!sl_trace_enabled())
        return;
    for (size_t i = 0; i < n && proc->traced_count < TRACED_MAX; i++) {
        const sl_msg_t *msg = &proc->msgs[i];
        const sl_header_t *h = sl_msg_header(msg, SL_TRACEPARENT_HEADER);
        sl_span_t *span = &proc->process_spans[proc->traced_count];

        if (h == NULL ||
            !sl_trace_sampled_parent(h->value, h->value_len, parent))
            continue;
        sl_span_begin(span, "process", SL_SPAN_CONSUMER, parent);
        sl_span_attr_text(span, "messaging.destination.name", msg->topic);
        sl_span_attr_int(span, "messaging.destination.partition.id",
                         msg->partition);
        sl_span_attr_int(span, "messaging.kafka.offset", msg->offset);
        sl_span_attr_int(span, "messaging.batch.message_count", (int64_t)n);
        proc->traced_count++;
    }
}

/* Begins the store.write span of each traced record; rows is what the
 * batch's one transaction writes. */
static void trace_store_begin(sl_processor_t *proc, size_t rows)
{
    char parent[SL_TRACEPARENT_LEN + 1];

    for (size_t k = 0; k < proc->traced_count; k++) {
        sl_span_traceparent(&proc->process_spans[k], parent);
        sl_span_begin(&proc->store_spans[k], "store.write", SL_SPAN_CLIENT,
                      parent);
        sl_span_attr_int(&proc->store_spans[k], "db.operation.batch.size",
                         (int64_t)rows);
    }
}

static void trace_store_end(sl_processor_t *proc, bool stored_ok)
{
    for (size_t k = 0; k < proc->traced_count; k++) {
        if (!stored_ok)
            sl_span_set_error(&proc->store_spans[k], "store write failed");
        sl_span_end(&proc->store_spans[k]);
    }
}

static void trace_end(sl_processor_t *proc, bool committed)
{
    for (size_t k = 0; k < proc->traced_count; k++) {
        if (!committed)
            sl_span_set_error(&proc->process_spans[k],
                              "batch left uncommitted");
        sl_span_end(&proc->process_spans[k]);
    }
    proc->traced_count = 0;
}

/* Adds a committed batch's offsets to those awaiting the latest write.
 * The set outlives the polled records, so topics point at topic_names. */
static void defer_offsets(sl_processor_t *proc, const sl_offsets_t *offsets)
{
    for (size_t i = 0; i < offsets->count; i++) {
        sl_msg_t done = {.topic =
                             topic_names[topic_index(offsets->items[i].topic)],
                         .partition = offsets->items[i].partition,
                         .offset = offsets->items[i].next_offset - 1};

        sl_offsets_add(&proc->pending_offsets, &done);
    }
}

/* Keeps the newest of the batch's stored readings per sensor for the next
 * latest write. A reading the set has no memory for gets its latest row
 * written at once instead, through an idempotent rewrite of the reading. */
static void note_latest(sl_processor_t *proc, size_t reading_count)
{
    for (size_t i = 0; i < reading_count; i++) {
        if (proc->reading_rejected[i] ||
            sl_latest_set_note(proc->latest, &proc->readings[i]) == SL_OK)
            continue;
        sl_store_batch_t one = {.readings = &proc->readings[i],
                                .reading_count = 1};
        sl_pipeline_store_write(proc->st, &one, NULL, NULL, NULL, "processor");
    }
}

/* Writes the latest rows kept so far, then commits the offsets they
 * cover. Leaves both for the next try when the store is unavailable. */
static void write_latest(sl_processor_t *proc)
{
    size_t count = sl_latest_set_count(proc->latest);

    if (count > 0) {
        sl_store_batch_t batch = {.latest_deferred = true,
                                  .latest = sl_latest_set_rows(proc->latest),
                                  .latest_count = count};
        if (sl_pipeline_store_write(proc->st, &batch, NULL, on_latest_reject,
                                    NULL, "processor") != SL_OK)
            return;
        sl_latest_set_clear(proc->latest);
    }
    proc->latest_written_ms = sl_time_mono_ms();
    if (proc->pending_offsets.count > 0) {
        sl_pipeline_commit(proc->consumer, &proc->pending_offsets, "processor");
        sl_offsets_clear(&proc->pending_offsets);
    }
}

static void process_batch(sl_processor_t *proc, size_t n)
{
    failure_t *failures = proc->failures;
    const sl_msg_t **reading_msgs = proc->reading_msgs;
    const sl_msg_t **event_msgs = proc->event_msgs;
    size_t reading_count = 0, event_count = 0, failure_count = 0;
    int64_t now_ms = sl_time_now_ms();
    batch_origins_t origins = {0};
    sl_offsets_t offsets;
    sl_store_result_t result;
    bool committed = false;

    trace_begin(proc, n);
    if (read_origins(proc->msgs, n, &origins) != SL_OK) {
        /* Nothing is committed, so the batch comes back after a pause. */
        sl_log_error("processor", "out of memory for a batch of %zu", n);
        goto done;
    }
    sl_offsets_clear(&offsets);
    for (size_t i = 0; i < n; i++) {
        const sl_msg_t *msg = &proc->msgs[i];
        size_t before_r = reading_count, before_e = event_count;
        bool failed;

        sl_counter_add(proc->metrics.consumed[topic_index(msg->topic)], 1);
        classify(proc, msg, &reading_count, &event_count,
                 &failures[failure_count], &failed, now_ms);
        if (failed) {
            failures[failure_count].origin = origin_of(&origins, proc, msg);
            failure_count++;
        }
        if (reading_count > before_r) {
            reading_msgs[before_r] = msg;
            add_resolution(&origins, i, false, before_r);
        }
        if (event_count > before_e) {
            event_msgs[before_e] = msg;
            add_resolution(&origins, i, true, before_e);
        }
        sl_offsets_add(&offsets, msg);
    }

    reject_ctx_t ctx = {proc,           &origins,     failures,
                        &failure_count, reading_msgs, event_msgs};
    sl_store_batch_t batch = {.readings = proc->readings,
                              .reading_count = reading_count,
                              .events = proc->events,
                              .event_count = event_count,
                              .resolutions = origins.resolutions,
                              .resolution_count = origins.resolution_count,
                              .reading_duplicate = proc->reading_duplicate,
                              .latest_deferred = true};
    int64_t start_ns = sl_time_mono_ns();
    memset(&result, 0, sizeof(result));
    memset(proc->reading_rejected, 0, reading_count * sizeof(bool));
    trace_store_begin(proc, reading_count + event_count);
    bool stored_ok =
        sl_pipeline_store_write(proc->st, &batch, &result, on_reject, &ctx,
                                "processor") == SL_OK;
    trace_store_end(proc, stored_ok);
    sl_histogram_observe(proc->metrics.store_latency,
                         (double)(sl_time_mono_ns() - start_ns) / 1e9);
    sl_histogram_observe(proc->metrics.batch_size, (double)n);
    if (stored_ok && proc->cfg.on_stored != NULL)
        proc->cfg.on_stored(proc->cfg.on_stored_ctx, proc->readings,
                            reading_count);
    if (stored_ok)
        note_latest(proc, reading_count);

    bool dead_lettered_ok = dead_letter(proc, failures, failure_count);
    check_continuity(proc, n);
    update_windows(proc, reading_count, reading_msgs);
    write_windows(proc);
    if (stored_ok && dead_lettered_ok) {
        defer_offsets(proc, &offsets);
        committed = true;
    }

    if (result.dlq_resolved > 0) {
        sl_counter_add(proc->metrics.dlq_resolved, result.dlq_resolved);
        sl_log_info("processor", "retried records stored, resolved=%zu",
                    result.dlq_resolved);
    }
    sl_counter_add(proc->metrics.stored[TOPIC_READINGS],
                   result.readings_inserted);
    sl_counter_add(proc->metrics.stored[TOPIC_EVENTS], result.events_inserted);
    sl_counter_add(proc->metrics.duplicates[TOPIC_READINGS],
                   result.readings_duplicate);
    sl_counter_add(proc->metrics.duplicates[TOPIC_EVENTS],
                   result.events_duplicate);
    atomic_fetch_add(&proc->consumed, n);
    atomic_fetch_add(&proc->stored,
                     result.readings_inserted + result.events_inserted);
    atomic_fetch_add(&proc->duplicates,
                     result.readings_duplicate + result.events_duplicate);

done:
    trace_end(proc, committed);
    free_origins(&origins);
}

static void *processor_main(void *arg)
{
    sl_processor_t *proc = arg;
    size_t n;

    /* Names the thread in top -H and perf. */
    pthread_setname_np(pthread_self(), "sl-processor");
    for (;;) {
        int rc = sl_consumer_poll(proc->consumer, proc->msgs,
                                  (size_t)proc->cfg.batch_size, &n,
                                  proc->cfg.poll_timeout_ms);
        if (rc == SL_ECLOSED)
            break;
        if (rc == SL_OK && n > 0)
            process_batch(proc, n);

        int64_t now = sl_time_mono_ms();
        if (now - proc->latest_written_ms >= proc->cfg.latest_interval_ms &&
            (sl_latest_set_count(proc->latest) > 0 ||
             proc->pending_offsets.count > 0))
            write_latest(proc);
        if (now - proc->last_sweep_ms >= SWEEP_INTERVAL_MS) {
            proc->last_sweep_ms = now;
            sl_windows_sweep(proc->windows, now,
                             proc->cfg.lateness_ms > MIN_IDLE_CLOSE_MS
                                 ? proc->cfg.lateness_ms
                                 : MIN_IDLE_CLOSE_MS);
            write_windows(proc);
            sl_gauge_set(proc->metrics.lag,
                         (double)sl_consumer_lag(proc->consumer));
        }
    }

    /* Drained: the windows still open are written with what they hold. */
    sl_windows_sweep(proc->windows, sl_time_mono_ms(), -1);
    write_windows(proc);
    write_latest(proc);
    return NULL;
}

static sl_decoder_t *decoder_for(sl_registry_t *reg, const char *file,
                                 char *err, size_t err_size)
{
    avro_schema_t schema;
    sl_decoder_t *dec;

    if (avro_schema_from_json_length(sl_schema_builtin(file),
                                     strlen(sl_schema_builtin(file)),
                                     &schema) != 0) {
        snprintf(err, err_size, "schema %s: %s", file, avro_strerror());
        return NULL;
    }
    dec = sl_decoder_create(reg, schema);
    avro_schema_decref(schema);
    if (dec == NULL)
        snprintf(err, err_size, "out of memory");
    return dec;
}

sl_processor_t *sl_processor_start(const sl_processor_config_t *cfg, char *err,
                                   size_t err_size)
{
    const char *topics[] = {SL_TOPIC_SENSOR_READINGS,
                            SL_TOPIC_ECOMMERCE_EVENTS};
    size_t batch = (size_t)cfg->batch_size;
    sl_processor_t *proc = calloc(1, sizeof(*proc));

    if (proc == NULL) {
        snprintf(err, err_size, "processor: out of memory");
        return NULL;
    }
    if (cfg->batch_size <= 0) {
        snprintf(err, err_size, "processor: batch size %d is not positive",
                 cfg->batch_size);
        free(proc);
        return NULL;
    }
    if (cfg->max_payload_bytes == 0 ||
        cfg->max_payload_bytes > SL_FRAME_MAX_BYTES) {
        snprintf(err, err_size,
                 "processor: max payload bytes %zu is outside 1..%d, the "
                 "range the decoder accepts",
                 cfg->max_payload_bytes, SL_FRAME_MAX_BYTES);
        free(proc);
        return NULL;
    }
    proc->cfg = *cfg;
    metrics_init(&proc->metrics);
    proc->st = sl_store_open(cfg->store_location, err, err_size);
    if (proc->st == NULL)
        goto fail;
    proc->reading_decoder =
        decoder_for(cfg->registry, "sensor_reading.avsc", err, err_size);
    proc->event_decoder =
        decoder_for(cfg->registry, "ecommerce_event.avsc", err, err_size);
    if (proc->reading_decoder == NULL || proc->event_decoder == NULL)
        goto fail;
    proc->windows = sl_windows_create(cfg->window_ms, cfg->lateness_ms);
    proc->latest = sl_latest_set_create();
    proc->msgs = calloc(batch, sizeof(*proc->msgs));
    proc->readings = calloc(batch, sizeof(*proc->readings));
    proc->reading_duplicate = calloc(batch, sizeof(bool));
    proc->reading_rejected = calloc(batch, sizeof(bool));
    proc->events = calloc(batch, sizeof(*proc->events));
    proc->failures = calloc(batch * 2, sizeof(*proc->failures));
    proc->reading_msgs = calloc(batch, sizeof(*proc->reading_msgs));
    proc->event_msgs = calloc(batch, sizeof(*proc->event_msgs));
    if (proc->windows == NULL || proc->latest == NULL || proc->msgs == NULL ||
        proc->readings == NULL || proc->events == NULL ||
        proc->reading_duplicate == NULL || proc->reading_rejected == NULL ||
        proc->failures == NULL || proc->reading_msgs == NULL ||
        proc->event_msgs == NULL) {
        snprintf(err, err_size, "processor: out of memory");
        goto fail;
    }
    proc->consumer = sl_consumer_create(cfg->bus, cfg->group, topics, 2);
    if (proc->consumer == NULL) {
        snprintf(err, err_size, "processor: cannot join group %s", cfg->group);
        goto fail;
    }
    for (size_t i = 0; i < SL_OFFSETS_MAX; i++)
        proc->next_reading_offset[i] = -1;
    proc->last_sweep_ms = sl_time_mono_ms();
    proc->latest_written_ms = proc->last_sweep_ms;
    if (pthread_create(&proc->thread, NULL, processor_main, proc) != 0) {
        snprintf(err, err_size, "processor: pthread_create failed");
        goto fail;
    }
    proc->started = true;
    return proc;

fail:
    sl_processor_stop(proc);
    return NULL;
}

int64_t sl_processor_lag(sl_processor_t *proc)
{
    return sl_consumer_lag(proc->consumer);
}

void sl_processor_stats(sl_processor_t *proc, sl_processor_stats_t *out)
{
    out->consumed = atomic_load(&proc->consumed);
    out->stored = atomic_load(&proc->stored);
    out->duplicates = atomic_load(&proc->duplicates);
    out->dead_lettered = atomic_load(&proc->dead_lettered);
    out->late = atomic_load(&proc->late);
    out->aggregates = atomic_load(&proc->aggregates);
}

void sl_processor_stop(sl_processor_t *proc)
{
    if (proc == NULL)
        return;
    if (proc->started)
        pthread_join(proc->thread, NULL);
    sl_consumer_destroy(proc->consumer);
    sl_decoder_destroy(proc->reading_decoder);
    sl_decoder_destroy(proc->event_decoder);
    sl_windows_destroy(proc->windows);
    sl_latest_set_destroy(proc->latest);
    sl_store_close(proc->st);
    free(proc->msgs);
    free(proc->readings);
    free(proc->reading_duplicate);
    free(proc->reading_rejected);
    free(proc->events);
    free(proc->failures);
    free(proc->reading_msgs);
    free(proc->event_msgs);
    free(proc);
}
