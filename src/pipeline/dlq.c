/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dead-letter headers: publishing a failed record to dlq-messages, reading
 * the headers back (the handler, and the processor for retried records),
 * republishing a record for a retry, and the backoff schedule. Also the
 * content offset, which replaces the offset of a record of the in-process
 * bus in its dead-letter row (see dlq.h).
 */
#include "pipeline/dlq.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/err.h"

static const char *const class_names[] = {"decode", "validation", "storage",
                                          "processing"};

int sl_dlq_class_parse(const char *name, size_t len, sl_dlq_class_t *out)
{
    for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++) {
        if (strlen(class_names[i]) == len &&
            memcmp(class_names[i], name, len) == 0) {
            *out = (sl_dlq_class_t)i;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

bool sl_dlq_class_permanent(sl_dlq_class_t cls)
{
    return cls == SL_DLQ_DECODE || cls == SL_DLQ_VALIDATION;
}

/* Text of the numeric headers of one dead-letter record. */
typedef struct header_text {
    char partition[16];
    char offset[24];
    char attempt[16];
    char first[24];
    char last[24];
} header_text_t;

/* Fills the 8 dead-letter headers; every pointer refers to the arguments
 * or to text. */
static void fill_headers(sl_header_t *headers, header_text_t *text,
                         const char *topic, int32_t partition, int64_t offset,
                         sl_dlq_class_t cls, const char *error, int32_t attempt,
                         int64_t first_ms, int64_t last_ms)
{
    const char *cls_name = class_names[cls];

    snprintf(text->partition, sizeof(text->partition), "%" PRId32, partition);
    snprintf(text->offset, sizeof(text->offset), "%" PRId64, offset);
    snprintf(text->attempt, sizeof(text->attempt), "%" PRId32, attempt);
    snprintf(text->first, sizeof(text->first), "%" PRId64, first_ms);
    snprintf(text->last, sizeof(text->last), "%" PRId64, last_ms);
    headers[0] = (sl_header_t){SL_DLQ_HDR_TOPIC, topic, strlen(topic)};
    headers[1] = (sl_header_t){SL_DLQ_HDR_PARTITION, text->partition,
                               strlen(text->partition)};
    headers[2] =
        (sl_header_t){SL_DLQ_HDR_OFFSET, text->offset, strlen(text->offset)};
    headers[3] = (sl_header_t){SL_DLQ_HDR_CLASS, cls_name, strlen(cls_name)};
    headers[4] = (sl_header_t){SL_DLQ_HDR_ERROR, error, strlen(error)};
    headers[5] =
        (sl_header_t){SL_DLQ_HDR_ATTEMPT, text->attempt, strlen(text->attempt)};
    headers[6] = (sl_header_t){SL_DLQ_HDR_FIRST_FAILURE, text->first,
                               strlen(text->first)};
    headers[7] =
        (sl_header_t){SL_DLQ_HDR_LAST_FAILURE, text->last, strlen(text->last)};
}

int sl_dlq_content_offset(const void *key, size_t key_len, const void *value,
                          size_t value_len, int64_t *out)
{
    unsigned char prefix[9], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    uint64_t id = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok;

    /* The flag and the length make the split between key and value
     * unambiguous, so "ab"+"c" and "a"+"bc" differ, and so do a NULL key
     * and an empty one. */
    prefix[0] = key != NULL;
    for (int i = 0; i < 8; i++)
        prefix[1 + i] = (unsigned char)((uint64_t)key_len >> (56 - 8 * i));
    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, prefix, sizeof(prefix)) == 1 &&
         (key_len == 0 || EVP_DigestUpdate(ctx, key, key_len) == 1) &&
         (value_len == 0 || EVP_DigestUpdate(ctx, value, value_len) == 1) &&
         EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return SL_EIO;
    for (int i = 0; i < 8; i++)
        id = id << 8 | md[i];
    /* 63 bits keep the offset non-negative: the store merges only rows
     * with an offset >= 0. Two records of one topic and partition share a
     * row by chance with a probability of about n^2 / 2^64 among n rows. */
    *out = (int64_t)(id & (uint64_t)INT64_MAX);
    return SL_OK;
}

/* Writes the source offset of the dead-letter row of orig's first
 * failure: orig's offset, unless the in-process bus gave it one that the
 * next process will give to another record (see dlq.h).
 * XXX: the row keeps orig's partition, which follows from the key and
 * --bus-partitions. A replay under another partition count therefore adds
 * a second row for each bad record. */
static int first_failure_offset(sl_bus_t *bus, const sl_msg_t *orig,
                                int64_t *out)
{
    if (!sl_bus_is_memory(bus)) {
        *out = orig->offset;
        return SL_OK;
    }
    return sl_dlq_content_offset(orig->key, orig->key_len, orig->value,
                                 orig->value_len, out);
}

/* Fills the 8 dead-letter headers of orig's copy: a retried record keeps
 * its original position and first-failure time. Returns SL_OK or SL_EIO
 * when hashing failed. */
static int fill_copy_headers(sl_header_t *headers, header_text_t *text,
                             sl_bus_t *bus, const sl_msg_t *orig,
                             const sl_dlq_origin_t *origin, sl_dlq_class_t cls,
                             const char *error, int64_t now_ms)
{
    int64_t offset;
    int rc;

    if (origin != NULL) {
        fill_headers(headers, text, origin->topic, origin->partition,
                     origin->offset, cls, error, origin->attempt + 1,
                     origin->first_failure_ms, now_ms);
        return SL_OK;
    }
    rc = first_failure_offset(bus, orig, &offset);
    if (rc != SL_OK)
        return rc;
    fill_headers(headers, text, orig->topic, orig->partition, offset, cls,
                 error, 1, now_ms, now_ms);
    return SL_OK;
}

int sl_dlq_publish(sl_bus_t *bus, const sl_msg_t *orig,
                   const sl_dlq_origin_t *origin, sl_dlq_class_t cls,
                   const char *error, int64_t now_ms, int timeout_ms)
{
    sl_header_t headers[8];
    header_text_t text = {0};
    int rc = fill_copy_headers(headers, &text, bus, orig, origin, cls, error,
                               now_ms);

    if (rc != SL_OK)
        return rc;
    return sl_bus_publish(bus, SL_TOPIC_DLQ, -1, orig->key, orig->key_len,
                          orig->value, orig->value_len, headers, 8, timeout_ms,
                          NULL);
}

/* Writes the SHA-256 of data as 64 lowercase hex digits and a NUL. */
static int sha256_hex(const void *data, size_t len, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32)
        return SL_EIO;
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0x0f];
    }
    out[64] = '\0';
    return SL_OK;
}

int sl_dlq_publish_excerpt(sl_bus_t *bus, const sl_msg_t *orig,
                           const sl_dlq_origin_t *origin, sl_dlq_class_t cls,
                           const char *error, int64_t now_ms, int timeout_ms)
{
    sl_header_t headers[10];
    header_text_t text = {0};
    char sha[65], size[24], full_error[SL_TEXT_MAX + 1];
    size_t excerpt = orig->value_len < SL_DLQ_EXCERPT_BYTES
                         ? orig->value_len
                         : SL_DLQ_EXCERPT_BYTES;
    int rc = sha256_hex(orig->value, orig->value_len, sha);

    if (rc != SL_OK)
        return rc;
    snprintf(size, sizeof(size), "%zu", orig->value_len);
    snprintf(full_error, sizeof(full_error),
             "%s; sha256=%s; the payload holds its first %zu bytes", error, sha,
             excerpt);
    rc = fill_copy_headers(headers, &text, bus, orig, origin, cls, full_error,
                           now_ms);
    if (rc != SL_OK)
        return rc;
    headers[8] = (sl_header_t){SL_DLQ_HDR_ORIGINAL_SIZE, size, strlen(size)};
    headers[9] = (sl_header_t){SL_DLQ_HDR_SHA256, sha, 64};
    return sl_bus_publish(bus, SL_TOPIC_DLQ, -1, orig->key, orig->key_len,
                          orig->value, excerpt, headers, 10, timeout_ms, NULL);
}

int sl_dlq_publish_oversized(sl_bus_t *bus, const char *topic, const void *key,
                             size_t key_len, const void *value,
                             size_t value_len, size_t max_bytes, int64_t now_ms,
                             int timeout_ms)
{
    sl_header_t headers[10];
    header_text_t text = {0};
    char sha[65], size[24], error[SL_TEXT_MAX + 1];
    size_t excerpt =
        value_len < SL_DLQ_EXCERPT_BYTES ? value_len : SL_DLQ_EXCERPT_BYTES;
    int64_t offset = -1;
    int rc = sha256_hex(value, value_len, sha);

    /* Without a position the row is never merged; on the in-process bus,
     * whose input is replayed after a crash, its bytes name it instead. */
    if (rc == SL_OK && sl_bus_is_memory(bus))
        rc = sl_dlq_content_offset(key, key_len, value, value_len, &offset);
    if (rc != SL_OK)
        return rc;
    snprintf(size, sizeof(size), "%zu", value_len);
    /* The bus refuses the whole value, and a copy of it would be refused
     * too, so the digest identifies it by size and hash. */
    snprintf(error, sizeof(error),
             "payload_too_large: value of %zu bytes is over the limit of %zu;"
             " sha256=%s; the payload holds its first %zu bytes",
             value_len, max_bytes, sha, excerpt);
    fill_headers(headers, &text, topic, -1, offset, SL_DLQ_VALIDATION, error, 1,
                 now_ms, now_ms);
    headers[8] = (sl_header_t){SL_DLQ_HDR_ORIGINAL_SIZE, size, strlen(size)};
    headers[9] = (sl_header_t){SL_DLQ_HDR_SHA256, sha, 64};
    return sl_bus_publish(bus, SL_TOPIC_DLQ, -1, key, key_len, value, excerpt,
                          headers, 10, timeout_ms, NULL);
}

int sl_dlq_publish_retry(sl_bus_t *bus, const sl_dlq_entry_t *entry,
                         int timeout_ms)
{
    sl_header_t headers[8];
    header_text_t text = {0};

    fill_headers(headers, &text, entry->topic, entry->partition, entry->offset,
                 entry->error_class, entry->error,
                 entry->retry_count > 0 ? entry->retry_count : 1,
                 entry->first_failure_ms, entry->last_failure_ms);
    return sl_bus_publish(bus, entry->topic, -1, entry->key, entry->key_len,
                          entry->payload, entry->payload_len, headers, 8,
                          timeout_ms, NULL);
}

/* Parses a decimal header into *out. */
static int header_int(const sl_msg_t *msg, const char *name, int64_t *out)
{
    const sl_header_t *h = sl_msg_header(msg, name);
    char text[24];
    char *end;

    if (h == NULL || h->value_len == 0 || h->value_len >= sizeof(text))
        return SL_EINVAL;
    memcpy(text, h->value, h->value_len);
    text[h->value_len] = '\0';
    errno = 0;
    *out = strtoll(text, &end, 10);
    return *end == '\0' && errno == 0 ? SL_OK : SL_EINVAL;
}

static void header_text(const sl_msg_t *msg, const char *name, char *out,
                        size_t out_size)
{
    const sl_header_t *h = sl_msg_header(msg, name);
    size_t n = h == NULL ? 0 : h->value_len;

    /* Error texts are for people; a long one is cut, not rejected. */
    if (n >= out_size)
        n = out_size - 1;
    if (n > 0)
        memcpy(out, h->value, n);
    out[n] = '\0';
}

int sl_dlq_entry_from_msg(const sl_msg_t *msg, sl_dlq_entry_t *out)
{
    const sl_header_t *cls = sl_msg_header(msg, SL_DLQ_HDR_CLASS);
    int64_t partition, offset, attempt, first, last;

    memset(out, 0, sizeof(*out));
    if (cls == NULL ||
        sl_dlq_class_parse(cls->value, cls->value_len, &out->error_class) !=
            SL_OK ||
        header_int(msg, SL_DLQ_HDR_PARTITION, &partition) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_OFFSET, &offset) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_ATTEMPT, &attempt) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_FIRST_FAILURE, &first) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_LAST_FAILURE, &last) != SL_OK ||
        sl_msg_header(msg, SL_DLQ_HDR_TOPIC) == NULL || partition < INT32_MIN ||
        partition > INT32_MAX || attempt < 1 || attempt > INT32_MAX)
        return SL_EINVAL;

    header_text(msg, SL_DLQ_HDR_TOPIC, out->topic, sizeof(out->topic));
    header_text(msg, SL_DLQ_HDR_ERROR, out->error, sizeof(out->error));
    out->partition = (int32_t)partition;
    out->offset = offset;
    out->key = msg->key;
    out->key_len = msg->key_len;
    out->payload = msg->value;
    out->payload_len = msg->value_len;
    out->retry_count = (int32_t)attempt - 1;
    out->first_failure_ms = first;
    out->last_failure_ms = last;
    /* Decode and validation failures do not heal by retrying: they are
     * parked until an operator replays them. */
    out->status =
        sl_dlq_class_permanent(out->error_class) ? SL_DLQ_DEAD : SL_DLQ_PENDING;
    return SL_OK;
}

bool sl_dlq_origin_from_msg(const sl_msg_t *msg, sl_dlq_origin_t *out)
{
    const sl_header_t *topic = sl_msg_header(msg, SL_DLQ_HDR_TOPIC);
    int64_t partition, offset, attempt, first;

    if (topic == NULL || topic->value_len == 0 ||
        topic->value_len >= sizeof(out->topic) ||
        memchr(topic->value, '\0', topic->value_len) != NULL ||
        header_int(msg, SL_DLQ_HDR_PARTITION, &partition) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_OFFSET, &offset) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_ATTEMPT, &attempt) != SL_OK ||
        header_int(msg, SL_DLQ_HDR_FIRST_FAILURE, &first) != SL_OK ||
        partition < INT32_MIN || partition > INT32_MAX || attempt < 1 ||
        attempt >= INT32_MAX)
        return false;
    memcpy(out->topic, topic->value, topic->value_len);
    out->topic[topic->value_len] = '\0';
    out->partition = (int32_t)partition;
    out->offset = offset;
    out->attempt = (int32_t)attempt;
    out->first_failure_ms = first;
    return true;
}

void sl_dlq_policy_init(sl_dlq_policy_t *p)
{
    p->base_ms = 1000;
    p->cap_ms = 300000;
    p->jitter = 0.2;
    p->max_retries = 5;
}

int64_t sl_dlq_backoff_ms(const sl_dlq_policy_t *p, int retries, double u)
{
    double delay = (double)p->base_ms;

    /* Doubling stops at the cap, so a large retry count cannot overflow. */
    for (int i = 0; i < retries && delay < (double)p->cap_ms; i++)
        delay *= 2;
    if (delay > (double)p->cap_ms)
        delay = (double)p->cap_ms;
    delay *= 1.0 + p->jitter * (2.0 * u - 1.0);
    return delay > 0 ? (int64_t)llround(delay) : 0;
}
