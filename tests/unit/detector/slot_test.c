/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The forest slot: a reference taken before a swap keeps scoring the old
 * forest. A scoring thread that acquires and releases while another thread
 * swaps forests in a loop always scores a whole, live forest. Run it
 * under ThreadSanitizer as well as ASan (see README.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "detect/detector.h"
#include "util/err.h"

#define FEATURES 3
#define ROWS 64
#define SEEDS 8
#define SWAPS 400

static double rows[ROWS * FEATURES];
static const double probe[FEATURES] = {4.0, -3.0, 10.0};
static double expected[SEEDS]; /* probe score of the forest of seed i */

/* Trains a small forest whose probe score depends on seed. */
static sl_iforest_t *train(uint64_t seed)
{
    sl_iforest_params_t params;
    char err[256] = "";
    sl_iforest_t *forest;

    sl_iforest_params_default(&params);
    params.tree_count = 8;
    params.max_samples = 32;
    params.seed = seed;
    forest = sl_iforest_train(rows, ROWS, FEATURES, &params, err, sizeof(err));
    if (forest == NULL)
        fail_msg("sl_iforest_train failed: %s", err);
    return forest;
}

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < ROWS; i++) {
        rows[i * FEATURES + 0] = (double)(i % 7);
        rows[i * FEATURES + 1] = (double)((i * 3) % 11) - 5.0;
        rows[i * FEATURES + 2] = (double)(i % 5) * 0.5;
    }
    for (int s = 0; s < SEEDS; s++) {
        sl_iforest_t *forest = train((uint64_t)s);
        expected[s] = sl_iforest_score(forest, probe);
        sl_iforest_destroy(forest);
    }
    return 0;
}

static void test_slot_starts_empty(void **state)
{
    sl_forest_slot_t *slot = sl_forest_slot_create();

    (void)state;
    assert_non_null(slot);
    assert_null(sl_forest_slot_acquire(slot));
    assert_int_equal(sl_forest_slot_changes(slot), 0);
    sl_forest_slot_destroy(slot);
}

static void test_old_ref_survives_swap(void **state)
{
    sl_forest_slot_t *slot = sl_forest_slot_create();
    sl_forest_ref_t *first, *second;

    (void)state;
    /* The seeds must give different scores or the checks prove nothing. */
    assert_true(expected[0] != expected[1]);
    assert_int_equal(sl_forest_slot_publish(slot, train(0)), SL_OK);
    first = sl_forest_slot_acquire(slot);
    assert_non_null(first);
    assert_int_equal(sl_forest_ref_generation(first), 0);

    assert_int_equal(sl_forest_slot_changes(slot), 1);
    assert_int_equal(sl_forest_slot_publish(slot, train(1)), SL_OK);
    assert_int_equal(sl_forest_slot_changes(slot), 2);
    /* The slot dropped its reference; ours keeps the forest alive. */
    assert_true(sl_iforest_score(sl_forest_ref_get(first), probe) ==
                expected[0]);

    second = sl_forest_slot_acquire(slot);
    assert_non_null(second);
    assert_int_equal(sl_forest_ref_generation(second), 1);
    assert_true(sl_iforest_score(sl_forest_ref_get(second), probe) ==
                expected[1]);
    sl_forest_ref_release(first);

    /* Emptying the slot leaves a held reference valid too. */
    assert_int_equal(sl_forest_slot_publish(slot, NULL), SL_OK);
    assert_null(sl_forest_slot_acquire(slot));
    assert_true(sl_iforest_score(sl_forest_ref_get(second), probe) ==
                expected[1]);
    sl_forest_ref_release(second);
    sl_forest_slot_destroy(slot);
}

typedef struct scorer {
    sl_forest_slot_t *slot;
    atomic_bool stop;
    atomic_uint_least64_t scored;
    uint64_t mismatches;
    uint64_t max_generation;
} scorer_t;

static void *scorer_main(void *arg)
{
    scorer_t *sc = arg;

    while (!atomic_load(&sc->stop)) {
        sl_forest_ref_t *ref = sl_forest_slot_acquire(sc->slot);
        uint64_t gen;

        if (ref == NULL)
            continue;
        gen = sl_forest_ref_generation(ref);
        /* Score twice, so a swap can land between the two. */
        for (int i = 0; i < 2; i++) {
            if (sl_iforest_score(sl_forest_ref_get(ref), probe) !=
                expected[gen % SEEDS])
                sc->mismatches++;
        }
        if (gen > sc->max_generation)
            sc->max_generation = gen;
        atomic_fetch_add(&sc->scored, 1);
        sl_forest_ref_release(ref);
    }
    return NULL;
}

static void test_swap_under_concurrent_scoring(void **state)
{
    scorer_t sc = {.slot = sl_forest_slot_create()};
    pthread_t thread;

    (void)state;
    assert_non_null(sc.slot);
    assert_int_equal(sl_forest_slot_publish(sc.slot, train(0)), SL_OK);
    assert_int_equal(pthread_create(&thread, NULL, scorer_main, &sc), 0);
    /* The swaps start once the scorer runs, however slow the machine
     * (valgrind), so they overlap its scoring. */
    for (int i = 0; i < 30000 && atomic_load(&sc.scored) == 0; i++)
        usleep(1000);

    /* Generation g contains the forest of seed g % SEEDS. */
    for (uint64_t g = 1; g <= SWAPS; g++)
        assert_int_equal(sl_forest_slot_publish(sc.slot, train(g % SEEDS)),
                         SL_OK);
    atomic_store(&sc.stop, true);
    pthread_join(thread, NULL);

    assert_true(atomic_load(&sc.scored) > 0);
    assert_int_equal(sc.mismatches, 0);
    assert_true(sc.max_generation <= SWAPS);
    sl_forest_slot_destroy(sc.slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_starts_empty),
        cmocka_unit_test(test_old_ref_survives_swap),
        cmocka_unit_test(test_swap_under_concurrent_scoring),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
