/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Isolation Forest file format, version 1. All integers and floats are
 * little-endian:
 *
 *   offset 0   8 bytes  magic "SLIFORST"
 *          8   u32      format version (1)
 *         12   u32      reserved, 0
 *         16   u64      body length in bytes
 *         24   u64      FNV-1a 64 of the body
 *         32   body:
 *                u32 feature_count, tree_count, sample_size, depth_max
 *                u64 seed, row_count
 *                f64 contamination, offset
 *                f64 mean[feature_count], scale[feature_count]
 *                u32 tree_start[tree_count + 1]
 *                node[tree_start[tree_count]]: f32 split, u16 feature,
 *                                              u16 left
 *
 * A loader trusts nothing in the file: the length must match the header,
 * the checksum must match, and every count and index is checked against
 * its bound before it is used.
 */
#include "detect/iforest.h"
#include "detect/iforest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/hash.h"

#define MAGIC_LEN 8
#define FORMAT_VERSION 1
#define HEADER_LEN 32
#define BODY_FIXED_LEN 48
#define NODE_LEN 8

static const uint8_t magic[MAGIC_LEN] = {'S', 'L', 'I', 'F',
                                         'O', 'R', 'S', 'T'};
/* The largest body any valid model has: every tree full. */
#define BODY_MAX                                                               \
    ((uint64_t)BODY_FIXED_LEN + 16ull * SL_IFOREST_MAX_FEATURES +              \
     4ull * (SL_IFOREST_MAX_TREES + 1) +                                       \
     (uint64_t)NODE_LEN * SL_IFOREST_MAX_TREES *                               \
         (2ull * SL_IFOREST_MAX_SAMPLES - 1))

/* ------------------------------------------------------------ encoding */

typedef struct writer {
    uint8_t *buf;
    size_t len;
} writer_t;

static void put_u16(writer_t *w, uint16_t v)
{
    w->buf[w->len++] = (uint8_t)v;
    w->buf[w->len++] = (uint8_t)(v >> 8);
}

static void put_u32(writer_t *w, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        w->buf[w->len++] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(writer_t *w, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        w->buf[w->len++] = (uint8_t)(v >> (8 * i));
    }
}

static void put_f32(writer_t *w, float v)
{
    uint32_t bits;

    memcpy(&bits, &v, sizeof(bits));
    put_u32(w, bits);
}

static void put_f64(writer_t *w, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    put_u64(w, bits);
}

static size_t body_length(uint32_t d, uint32_t trees, uint32_t nodes)
{
    return BODY_FIXED_LEN + 16 * (size_t)d + 4 * ((size_t)trees + 1) +
           NODE_LEN * (size_t)nodes;
}

static void encode_body(const sl_iforest_t *forest, writer_t *w)
{
    put_u32(w, forest->feature_count);
    put_u32(w, forest->tree_count);
    put_u32(w, forest->sample_size);
    put_u32(w, forest->depth_max);
    put_u64(w, forest->seed);
    put_u64(w, forest->row_count);
    put_f64(w, forest->contamination);
    put_f64(w, forest->offset);
    for (uint32_t f = 0; f < forest->feature_count; f++) {
        put_f64(w, forest->mean[f]);
    }
    for (uint32_t f = 0; f < forest->feature_count; f++) {
        put_f64(w, forest->scale[f]);
    }
    for (uint32_t t = 0; t <= forest->tree_count; t++) {
        put_u32(w, forest->tree_start[t]);
    }
    for (uint32_t i = 0; i < forest->node_count; i++) {
        put_f32(w, forest->nodes[i].split);
        put_u16(w, forest->nodes[i].feature);
        put_u16(w, forest->nodes[i].left);
    }
}

/* Returns the whole file image in a malloc'ed buffer, or NULL. */
static uint8_t *encode(const sl_iforest_t *forest, size_t *len)
{
    size_t body_len = body_length(forest->feature_count, forest->tree_count,
                                  forest->node_count);
    writer_t w = {.buf = malloc(HEADER_LEN + body_len), .len = 0};

    if (w.buf == NULL) {
        return NULL;
    }
    memcpy(w.buf, magic, MAGIC_LEN);
    w.len = MAGIC_LEN;
    put_u32(&w, FORMAT_VERSION);
    put_u32(&w, 0);
    put_u64(&w, body_len);
    w.len = HEADER_LEN;
    encode_body(forest, &w);
    *len = w.len;

    writer_t sum = {.buf = w.buf, .len = 24};

    put_u64(&sum, sl_hash_fnv1a(w.buf + HEADER_LEN, body_len));
    return w.buf;
}

/* -------------------------------------------------------------- saving */

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes the rename durable: fsync(2) of the directory holding path. */
static int sync_directory(const char *path)
{
    char copy[PATH_MAX];
    int fd;
    int rc;

    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy)) {
        return -1;
    }
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    rc = fsync(fd);
    close(fd);
    return rc;
}

int sl_iforest_save(const sl_iforest_t *forest, const char *path, char *err,
                    size_t err_size)
{
    char tmp[PATH_MAX];
    uint8_t *image;
    size_t len = 0;
    int fd;

    if (forest == NULL || path == NULL) {
        sl_iforest__set_error(err, err_size, "invalid argument: NULL");
        return SL_EINVAL;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
        sl_iforest__set_error(err, err_size, "%s: path too long", path);
        return SL_EINVAL;
    }
    image = encode(forest, &len);
    if (image == NULL) {
        sl_iforest__set_error(err, err_size, "%s: out of memory", path);
        return SL_ENOMEM;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        sl_iforest__set_error(err, err_size, "%s: mkstemp failed: %s", tmp,
                              strerror(errno));
        free(image);
        return SL_EIO;
    }
    if (write_all(fd, image, len) != 0 || fsync(fd) != 0) {
        sl_iforest__set_error(err, err_size, "%s: write failed: %s", tmp,
                              strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        sl_iforest__set_error(err, err_size, "%s: close failed: %s", tmp,
                              strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        sl_iforest__set_error(err, err_size, "%s: rename from %s failed: %s",
                              path, tmp, strerror(errno));
        goto fail;
    }
    free(image);
    if (sync_directory(path) != 0) {
        sl_iforest__set_error(err, err_size,
                              "%s: fsync of its directory failed: %s", path,
                              strerror(errno));
        return SL_EIO;
    }
    return SL_OK;

fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    free(image);
    return SL_EIO;
}

/* ------------------------------------------------------------- loading */

typedef struct reader {
    const uint8_t *buf;
    size_t pos;
} reader_t;

static uint16_t get_u16(reader_t *r)
{
    const uint8_t *p = r->buf + r->pos;

    r->pos += 2;
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(reader_t *r)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        v |= (uint32_t)r->buf[r->pos + i] << (8 * i);
    }
    r->pos += 4;
    return v;
}

static uint64_t get_u64(reader_t *r)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)r->buf[r->pos + i] << (8 * i);
    }
    r->pos += 8;
    return v;
}

static float get_f32(reader_t *r)
{
    uint32_t bits = get_u32(r);
    float v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

static double get_f64(reader_t *r)
{
    uint64_t bits = get_u64(r);
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* Reads the whole file; the size is checked against max_len before any
 * allocation. Returns a malloc'ed buffer or NULL with err set. */
static uint8_t *read_file(const char *path, size_t max_len, size_t *len,
                          char *err, size_t err_size)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        sl_iforest__set_error(err, err_size, "%s: open failed: %s", path,
                              strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        sl_iforest__set_error(err, err_size, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > max_len) {
        sl_iforest__set_error(err, err_size,
                              "%s: invalid model file: %lld bytes exceed "
                              "the maximum %zu",
                              path, (long long)st.st_size, max_len);
        goto fail;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        sl_iforest__set_error(err, err_size, "%s: out of memory", path);
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            sl_iforest__set_error(err, err_size, "%s: read failed: %s", path,
                                  n == 0 ? "file shrank" : strerror(errno));
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;

fail:
    free(buf);
    close(fd);
    return NULL;
}

/* Checks magic, version, length and checksum. Returns 0 or -1. */
static int check_header(const uint8_t *buf, size_t len, const char *path,
                        char *err, size_t err_size)
{
    reader_t r = {.buf = buf, .pos = MAGIC_LEN};
    uint32_t version;
    uint64_t body_len;
    uint64_t checksum;

    if (len < HEADER_LEN || memcmp(buf, magic, MAGIC_LEN) != 0) {
        sl_iforest__set_error(err, err_size,
                              "%s: not an Isolation Forest model file "
                              "(bad magic or shorter than the header)",
                              path);
        return -1;
    }
    version = get_u32(&r);
    (void)get_u32(&r);
    body_len = get_u64(&r);
    checksum = get_u64(&r);
    if (version != FORMAT_VERSION) {
        sl_iforest__set_error(err, err_size,
                              "%s: unsupported model format version %u "
                              "(expected %d)",
                              path, version, FORMAT_VERSION);
        return -1;
    }
    if (body_len != len - HEADER_LEN) {
        sl_iforest__set_error(err, err_size,
                              "%s: truncated or padded model file: header "
                              "states a %llu-byte body, file has %zu bytes",
                              path, (unsigned long long)body_len,
                              len - HEADER_LEN);
        return -1;
    }
    if (sl_hash_fnv1a(buf + HEADER_LEN, (size_t)body_len) != checksum) {
        sl_iforest__set_error(
            err, err_size, "%s: model file checksum mismatch (corrupt)", path);
        return -1;
    }
    return 0;
}

static bool node_valid(const sl_iforest_node_t *node, uint32_t self,
                       uint32_t tree_size, uint32_t d)
{
    if (node->feature == d) {
        return node->left == self && isfinite(node->split) &&
               node->split >= 0.0f;
    }
    return node->feature < d && !isnan(node->split) && node->left > self &&
           (uint32_t)node->left + 1 < tree_size;
}

/* Reads the counts and tree offsets and checks them against their bounds
 * and against the body length. */
static sl_iforest_t *decode_shape(reader_t *r, size_t body_len,
                                  const char *path, char *err, size_t err_size)
{
    uint32_t d = get_u32(r);
    uint32_t trees = get_u32(r);
    uint32_t psi = get_u32(r);
    uint32_t depth = get_u32(r);
    uint32_t node_count;
    size_t starts_at;
    sl_iforest_t *forest;

    if (d < 1 || d > SL_IFOREST_MAX_FEATURES || trees < 1 ||
        trees > SL_IFOREST_MAX_TREES || psi < 2 ||
        psi > SL_IFOREST_MAX_SAMPLES || depth > psi) {
        sl_iforest__set_error(err, err_size,
                              "%s: invalid model shape: %u features, %u "
                              "trees, sample size %u, depth %u",
                              path, d, trees, psi, depth);
        return NULL;
    }
    starts_at = BODY_FIXED_LEN + 16 * (size_t)d;
    if (body_len < starts_at + 4 * ((size_t)trees + 1)) {
        sl_iforest__set_error(err, err_size,
                              "%s: model body too short for %u trees", path,
                              trees);
        return NULL;
    }
    reader_t last = {.buf = r->buf,
                     .pos = HEADER_LEN + starts_at + 4 * (size_t)trees};

    node_count = get_u32(&last);
    if ((uint64_t)node_count > (uint64_t)trees * (2 * psi - 1) ||
        body_length(d, trees, node_count) != body_len) {
        sl_iforest__set_error(err, err_size,
                              "%s: model body length %zu does not match %u "
                              "nodes",
                              path, body_len, node_count);
        return NULL;
    }
    forest = sl_iforest__alloc(d, trees, node_count > 0 ? node_count : 1);
    if (forest == NULL) {
        sl_iforest__set_error(err, err_size, "%s: out of memory", path);
        return NULL;
    }
    forest->sample_size = psi;
    forest->depth_max = depth;
    forest->node_count = node_count;
    return forest;
}

static int decode_values(sl_iforest_t *forest, reader_t *r, const char *path,
                         char *err, size_t err_size)
{
    forest->seed = get_u64(r);
    forest->row_count = get_u64(r);
    forest->contamination = get_f64(r);
    forest->offset = get_f64(r);
    if (!(forest->contamination >= 0.0 && forest->contamination <= 0.5) ||
        !isfinite(forest->offset)) {
        sl_iforest__set_error(err, err_size,
                              "%s: invalid contamination or offset", path);
        return -1;
    }
    for (uint32_t f = 0; f < forest->feature_count; f++) {
        forest->mean[f] = get_f64(r);
    }
    for (uint32_t f = 0; f < forest->feature_count; f++) {
        forest->scale[f] = get_f64(r);
    }
    for (uint32_t f = 0; f < forest->feature_count; f++) {
        if (!isfinite(forest->mean[f]) || !(forest->scale[f] > 0.0) ||
            !isfinite(forest->scale[f])) {
            sl_iforest__set_error(err, err_size,
                                  "%s: invalid scaling of feature %u", path, f);
            return -1;
        }
    }
    return 0;
}

static int decode_trees(sl_iforest_t *forest, reader_t *r, const char *path,
                        char *err, size_t err_size)
{
    uint32_t max_tree = 2 * forest->sample_size - 1;

    for (uint32_t t = 0; t <= forest->tree_count; t++) {
        forest->tree_start[t] = get_u32(r);
    }
    for (uint32_t i = 0; i < forest->node_count; i++) {
        forest->nodes[i].split = get_f32(r);
        forest->nodes[i].feature = get_u16(r);
        forest->nodes[i].left = get_u16(r);
    }
    if (forest->tree_start[0] != 0) {
        sl_iforest__set_error(err, err_size, "%s: invalid tree offsets", path);
        return -1;
    }
    for (uint32_t t = 0; t < forest->tree_count; t++) {
        uint32_t lo = forest->tree_start[t];
        uint32_t hi = forest->tree_start[t + 1];

        if (hi <= lo || hi - lo > max_tree) {
            sl_iforest__set_error(err, err_size, "%s: invalid size of tree %u",
                                  path, t);
            return -1;
        }
        for (uint32_t i = lo; i < hi; i++) {
            if (!node_valid(&forest->nodes[i], i - lo, hi - lo,
                            forest->feature_count)) {
                sl_iforest__set_error(err, err_size,
                                      "%s: invalid node %u of tree %u", path,
                                      i - lo, t);
                return -1;
            }
        }
    }
    return 0;
}

sl_iforest_t *sl_iforest_load(const char *path, char *err, size_t err_size)
{
    sl_iforest_t *forest = NULL;
    uint8_t *buf;
    size_t len = 0;
    reader_t r;

    if (path == NULL) {
        sl_iforest__set_error(err, err_size, "invalid argument: NULL path");
        return NULL;
    }
    buf = read_file(path, HEADER_LEN + BODY_MAX, &len, err, err_size);
    if (buf == NULL) {
        return NULL;
    }
    if (check_header(buf, len, path, err, err_size) != 0) {
        goto fail;
    }
    r = (reader_t){.buf = buf, .pos = HEADER_LEN};
    forest = decode_shape(&r, len - HEADER_LEN, path, err, err_size);
    if (forest == NULL || decode_values(forest, &r, path, err, err_size) != 0 ||
        decode_trees(forest, &r, path, err, err_size) != 0) {
        goto fail;
    }
    sl_iforest__finish(forest);
    free(buf);
    return forest;

fail:
    sl_iforest_destroy(forest);
    free(buf);
    return NULL;
}
