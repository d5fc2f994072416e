/* SPDX-License-Identifier: Apache-2.0 */
#include "util/hash.h"

#include <string.h>

uint32_t sl_hash_murmur2(const void *data, size_t len)
{
    const uint32_t seed = 0x9747b28c;
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    const unsigned char *p = data;
    uint32_t h = seed ^ (uint32_t)len;

    while (len >= 4) {
        uint32_t k;
        memcpy(&k, p, 4); /* little-endian, as the Java reference reads */
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
        p += 4;
        len -= 4;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

uint64_t sl_hash_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3u;
    }
    return h;
}
