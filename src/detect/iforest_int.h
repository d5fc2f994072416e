/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the Isolation Forest shared by iforest.c (training and
 * scoring) and iforest_io.c (the file format). Not for other modules.
 */
#ifndef SLUICE_DETECT_IFOREST_INT_H
#define SLUICE_DETECT_IFOREST_INT_H

#include <stddef.h>
#include <stdint.h>

#include "detect/iforest.h"

/* One tree node. An inner node sends x to left when x[feature] < split and
 * to left + 1 otherwise; left is relative to the tree's first node. A leaf
 * has feature == feature_count (the padding slot, always -inf), left ==
 * its own index, and its path length depth + c(size) in split. */
typedef struct sl_iforest_node {
    float split;
    uint16_t feature;
    uint16_t left;
} sl_iforest_node_t;

struct sl_iforest {
    uint32_t feature_count;
    uint32_t tree_count;
    uint32_t sample_size; /* psi */
    uint32_t depth_max;   /* deepest leaf: the steps of a tree walk */
    uint32_t node_count;
    uint64_t seed;
    uint64_t row_count;   /* finite rows trained on */
    double contamination; /* 0 for "auto" */
    double offset;
    double c_psi;         /* c(sample_size), the score's normaliser */
    double *mean;         /* per feature, from the training rows */
    double *scale;        /* per feature std, 1 where the std is 0 */
    uint32_t *tree_start; /* tree_count + 1 entries into nodes */
    sl_iforest_node_t *nodes;
};

/** Allocates a zeroed model with room for node_capacity nodes. */
sl_iforest_t *sl_iforest__alloc(uint32_t feature_count, uint32_t tree_count,
                                uint32_t node_capacity);

/** Computes the derived fields (c_psi) once the stored ones are set. */
void sl_iforest__finish(sl_iforest_t *forest);

/** Formats a message into err when err is not NULL. */
void sl_iforest__set_error(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
