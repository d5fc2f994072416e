/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The newest reading of each sensor seen since the last write of the
 * sensor_latest rows, so a processor committing many small batches writes
 * one latest row per sensor per interval instead of one per batch.
 */
#ifndef SLUICE_PIPELINE_LATEST_H
#define SLUICE_PIPELINE_LATEST_H

#include <stddef.h>

#include "model/record.h"

typedef struct sl_latest_set sl_latest_set_t;

/** Returns an empty set, or NULL when out of memory. */
sl_latest_set_t *sl_latest_set_create(void);

void sl_latest_set_destroy(sl_latest_set_t *set);

/**
 * Keeps a copy of rec unless the set contains a reading of its sensor with
 * the same or a newer event time: as in the store, the first of equal
 * times stays. Returns SL_OK or SL_ENOMEM (the set is unchanged).
 */
int sl_latest_set_note(sl_latest_set_t *set, const sl_reading_t *rec);

/** Number of sensors in the set. */
size_t sl_latest_set_count(const sl_latest_set_t *set);

/** The readings kept, sl_latest_set_count() of them, valid until the next
 * note or clear. */
const sl_reading_t *sl_latest_set_rows(const sl_latest_set_t *set);

/** Empties the set, keeping its memory for the next interval. */
void sl_latest_set_clear(sl_latest_set_t *set);

#endif
