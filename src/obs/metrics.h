/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process-wide Prometheus metrics. A series (family name plus label values)
 * is looked up once, when a module starts or first meets a label value, and
 * the returned handle is then updated with relaxed atomics: no lock on the
 * hot path. sl_metrics_render() writes the text exposition format 0.0.4.
 *
 * Label values are escaped as the format requires (backslash, double quote
 * and line feed), so any UTF-8 text is safe as a value; a value that is
 * not valid UTF-8 is refused (the lookup returns NULL). Callers keep label
 * cardinality bounded: no per-sensor or per-user labels.
 */
#ifndef SLUICE_OBS_METRICS_H
#define SLUICE_OBS_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_counter sl_counter_t;
typedef struct sl_gauge sl_gauge_t;
typedef struct sl_histogram sl_histogram_t;

/* Most label pairs one series may carry. */
#define SL_METRICS_MAX_LABELS 4

/**
 * Returns the counter series of family name with the given labels,
 * creating family and series on first use. labels is a NULL-terminated
 * list of alternating names and values, or NULL for none:
 *     sl_metrics_counter("sluice_decode_errors_total", "help",
 *                        (const char *[]){"reason", "bad_magic_byte", NULL});
 * The handle lives until sl_metrics_reset(). Returns NULL on OOM or when
 * name is already a family of another type. Also returns NULL for input
 * the exposition format cannot carry: an invalid metric name (valid ones
 * match [a-zA-Z_:][a-zA-Z0-9_:]*), an invalid label name (valid ones match
 * [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__"), a repeated label
 * name, a missing value, or more than SL_METRICS_MAX_LABELS pairs.
 * The first registration's help text is kept. Thread-safe.
 */
sl_counter_t *sl_metrics_counter(const char *name, const char *help,
                                 const char *const *labels);

sl_gauge_t *sl_metrics_gauge(const char *name, const char *help,
                             const char *const *labels);

/**
 * Returns a histogram series; bounds are the upper bucket limits in the
 * metric's unit, ascending, bound_count at most 32 (+Inf is implicit).
 * Every series of one family must use the same bounds. Returns NULL, as
 * sl_metrics_counter() does, also when the bounds are not finite and
 * strictly ascending, differ from the family's, or a label is named "le".
 */
sl_histogram_t *sl_metrics_histogram(const char *name, const char *help,
                                     const double *bounds, size_t bound_count,
                                     const char *const *labels);

/** Adds n to a counter. NULL is ignored, so a failed lookup is harmless. */
void sl_counter_add(sl_counter_t *counter, uint64_t n);

/** Returns a counter's current value. */
uint64_t sl_counter_value(const sl_counter_t *counter);

void sl_gauge_set(sl_gauge_t *gauge, double value);
void sl_gauge_add(sl_gauge_t *gauge, double delta);
double sl_gauge_value(const sl_gauge_t *gauge);

/** Records one observation. */
void sl_histogram_observe(sl_histogram_t *hist, double value);

/**
 * Renders every family in the text exposition format into a new buffer.
 * OUT: *text (caller frees with free()), *len. Returns SL_OK or SL_ENOMEM.
 */
int sl_metrics_render(char **text, size_t *len);

/** Frees every family and series; handles become invalid. For tests. */
void sl_metrics_reset(void);

/**
 * Sets sluice_build_info{version="..."} to 1, the series dashboards join
 * on to show which release each process runs. Call once per process.
 */
void sl_metrics_build_info(const char *version);

/**
 * Returns the series of sluice_event_latency_seconds for stage, the time
 * from a record's event timestamp to the moment stage finished with it
 * (stored, scored). Every stage shares the bucket bounds, 5 ms to 1 h, so
 * the stages compare on one panel. A replay of old data lands in +Inf.
 */
sl_histogram_t *sl_metrics_event_latency(const char *stage);

/*
 * A small HTTP/1.1 server for the roles that have no API. It responds to
 * GET /metrics with sl_metrics_render() and GET / with a health line, on
 * one background thread, one connection at a time. Every response closes
 * its connection. A client that sends no complete request head within a
 * few seconds is dropped, so one stalled client delays scrapes by that
 * much at most.
 */
typedef struct sl_metrics_server sl_metrics_server_t;

/**
 * Starts listening on host:port (port 0 picks a free one; host may be a
 * name, an IPv4 or an IPv6 address). Returns NULL with the reason in err
 * when the address does not resolve or cannot be bound.
 */
sl_metrics_server_t *sl_metrics_server_start(const char *host, int port,
                                             char *err, size_t err_size);

/** Returns the port the server is bound to. */
int sl_metrics_server_port(const sl_metrics_server_t *srv);

/** Stops the thread, closes the socket and frees srv. NULL is ignored. */
void sl_metrics_server_stop(sl_metrics_server_t *srv);

#endif
