/* SPDX-License-Identifier: Apache-2.0 */
/* Non-cryptographic hashes for partitioning and hash tables. */
#ifndef SLUICE_UTIL_HASH_H
#define SLUICE_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/** Kafka's murmur2 (seed 0x9747b28c), as its Java default partitioner
 * uses, so the memory bus and Kafka place a key on the same partition. */
uint32_t sl_hash_murmur2(const void *data, size_t len);

/** 64-bit FNV-1a, for in-process hash tables. */
uint64_t sl_hash_fnv1a(const void *data, size_t len);

#endif
