/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small seeded PRNG (xoshiro256**, seeded through splitmix64) so that
 * generators and models are reproducible for a given seed. Not for secrets.
 */
#ifndef SLUICE_UTIL_RNG_H
#define SLUICE_UTIL_RNG_H

#include <stdint.h>

typedef struct sl_rng {
    uint64_t s[4];
} sl_rng_t;

void sl_rng_seed(sl_rng_t *rng, uint64_t seed);
uint64_t sl_rng_next(sl_rng_t *rng);

/** Returns a double uniform in [0, 1). */
double sl_rng_uniform(sl_rng_t *rng);

/** Returns an integer uniform in [0, n); n > 0. */
uint64_t sl_rng_below(sl_rng_t *rng, uint64_t n);

/** Returns a standard normal variate (Box-Muller). */
double sl_rng_normal(sl_rng_t *rng);

#endif
