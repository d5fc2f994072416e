/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The raw SQLite baseline that the benchmarks compare sluice's store
 * with: a prepared INSERT of readings into a table with the definition and
 * indexes of sensor_readings, in large transactions, with nothing else.
 */
#ifndef SLUICE_BENCH_BENCH_SQLITE_H
#define SLUICE_BENCH_BENCH_SQLITE_H

#include <stddef.h>

#include "bench_pg.h"

/**
 * Copies the definition of sensor_readings and its indexes from the
 * SQLite file schema_from into a new file raw_path, then inserts readings
 * 0..rows-1 of next into it, batch rows per transaction, in WAL mode with
 * synchronous=NORMAL as sluice runs. Returns the seconds the inserts
 * took, or -1 after printing the error to stderr.
 */
double sl_bench_raw_sqlite(const char *schema_from, const char *raw_path,
                           size_t rows, size_t batch, sl_bench_reading_fn next,
                           void *ctx);

#endif
