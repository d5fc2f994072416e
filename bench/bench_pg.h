/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The raw PostgreSQL baseline that the benchmarks compare sluice's store
 * with: binary COPY of readings into a copy of sensor_readings (same
 * columns, primary key and CHECKs, nothing else), one transaction per
 * batch.
 */
#ifndef SLUICE_BENCH_BENCH_PG_H
#define SLUICE_BENCH_BENCH_PG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "model/record.h"

/* Fills rec with reading number i of a benchmark's deterministic series. */
typedef void (*sl_bench_reading_fn)(void *ctx, size_t i, sl_reading_t *rec);

/**
 * Creates table (LIKE sensor_readings INCLUDING ALL) on conn and writes
 * readings 0..rows-1 of next into it with binary COPY, batch rows per
 * transaction. Returns the seconds taken by the writes, or -1 after
 * printing the error to stderr.
 */
double sl_bench_raw_copy(PGconn *conn, const char *table, size_t rows,
                         size_t batch, sl_bench_reading_fn next, void *ctx);

#endif
