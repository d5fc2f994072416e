/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A dry run of libavro 1.11.1's avro_resolved_writer_new(): it follows the
 * same steps (links skipped on the reader side, memoized pairs, reader
 * union branches tried in order, writer union branches allowed to fail)
 * without building any resolver.
 *
 * libavro cannot undo a record resolver once one of its fields has
 * resolved. When a later reader field is missing or does not resolve, it
 * releases the resolvers of the earlier fields. A release that drops a
 * count to zero frees every resolver reachable from that one, whatever
 * their own counts. Those can still be in use: the memo hands out one
 * resolver per pair of writer and reader schemas, libavro's primitive
 * schemas are shared (so int fields share one resolver), and a link leads
 * back to an enclosing record that is still being built. Valgrind then shows
 * reads and writes of freed memory and double frees, for example when an
 * optional record gains a field without a default after its first field.
 * An array or a map whose items do not resolve is worse: libavro then frees
 * the array resolver's missing item resolver and dereferences NULL, even
 * for array<int> read as array<string>. A writer union tolerates such a
 * failing branch and still succeeds. So a pair is rejected whenever one of
 * these failures would happen, and libavro only gets pairs that it
 * resolves without them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema/schema_int.h"

/* Deepest recursion of the dry run. JSON parsing bounds schema nesting
 * below this, so only a bug would reach it. */
#define DRY_RUN_MAX_DEPTH 4096

typedef struct dry_run {
    avro_schema_t (*memo)[2]; /* (writer, reader) pairs resolved or begun */
    size_t memo_count;
    int strict_unions; /* every writer union branch must resolve */
    int nomem;
    int depth;
    /* The latest failure, as libavro reports it: its class and message. */
    sl_decode_err_t err;
    char msg[512];
    /* The first failure that libavro cannot undo safely. */
    sl_decode_err_t unsafe_err;
    char unsafe_msg[512];
} dry_run_t;

static void set_msg(dry_run_t *dr, sl_decode_err_t err, const char *fmt, ...)
{
    va_list ap;

    dr->err = err;
    va_start(ap, fmt);
    vsnprintf(dr->msg, sizeof(dr->msg), fmt, ap);
    va_end(ap);
}

/* Puts "field x: " and the like before the latest message. */
static void prefix_msg(dry_run_t *dr, const char *fmt, const char *arg)
{
    char head[256];
    char joined[sizeof(head) + sizeof(dr->msg)];

    snprintf(head, sizeof(head), fmt, arg);
    snprintf(joined, sizeof(joined), "%s%s", head, dr->msg);
    snprintf(dr->msg, sizeof(dr->msg), "%.*s", (int)sizeof(dr->msg) - 1,
             joined);
}

static int memo_find(const dry_run_t *dr, avro_schema_t w, avro_schema_t r)
{
    for (size_t i = 0; i < dr->memo_count; i++) {
        if (dr->memo[i][0] == w && dr->memo[i][1] == r) {
            return (int)i;
        }
    }
    return -1;
}

static void memo_set(dry_run_t *dr, avro_schema_t w, avro_schema_t r)
{
    avro_schema_t(*grown)[2];

    grown = realloc(dr->memo, (dr->memo_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        dr->nomem = 1;
        return;
    }
    dr->memo = grown;
    dr->memo[dr->memo_count][0] = w;
    dr->memo[dr->memo_count][1] = r;
    dr->memo_count++;
}

static void memo_delete(dry_run_t *dr, avro_schema_t w, avro_schema_t r)
{
    int i = memo_find(dr, w, r);

    /* memo is never NULL when i >= 0. The test states it for the analyzer. */
    if (i >= 0 && dr->memo != NULL) {
        dr->memo[i][0] = dr->memo[dr->memo_count - 1][0];
        dr->memo[i][1] = dr->memo[dr->memo_count - 1][1];
        dr->memo_count--;
    }
}

static avro_schema_t skip_links(avro_schema_t schema)
{
    while (is_avro_link(schema)) {
        schema = avro_schema_link_target(schema);
    }
    return schema;
}

/* Keeps the first failure that libavro cannot undo safely. */
static void note_unsafe(dry_run_t *dr)
{
    if (dr->unsafe_msg[0] == '\0') {
        dr->unsafe_err = dr->err;
        memcpy(dr->unsafe_msg, dr->msg, sizeof(dr->msg));
    }
}

/* Outcome of one try_* step of libavro: the reader type does not match
 * (NO_MATCH, the next reader union branch is tried), the pair resolves
 * (MATCH), or a child failed (FAILED, no further branch is tried). */
typedef enum { NO_MATCH, MATCH, FAILED } step_t;

static int resolves(dry_run_t *dr, avro_schema_t w, avro_schema_t r);

/* Primitive writer types against one reader type, with libavro's
 * promotions: no string-bytes promotion. */
static step_t try_primitive(avro_schema_t w, avro_schema_t r)
{
    avro_type_t rt = avro_typeof(r);

    switch (avro_typeof(w)) {
    case AVRO_INT32:
        return rt == AVRO_INT32 || rt == AVRO_INT64 || rt == AVRO_FLOAT ||
                       rt == AVRO_DOUBLE
                   ? MATCH
                   : NO_MATCH;
    case AVRO_INT64:
        return rt == AVRO_INT64 || rt == AVRO_FLOAT || rt == AVRO_DOUBLE
                   ? MATCH
                   : NO_MATCH;
    case AVRO_FLOAT:
        return rt == AVRO_FLOAT || rt == AVRO_DOUBLE ? MATCH : NO_MATCH;
    default:
        return rt == avro_typeof(w) ? MATCH : NO_MATCH;
    }
}

/* Arrays and maps: the items (values) must resolve. */
static step_t try_container(dry_run_t *dr, avro_schema_t w, avro_schema_t r,
                            avro_schema_t root)
{
    int array = is_avro_array(w);

    if (avro_typeof(r) != avro_typeof(w)) {
        return NO_MATCH;
    }
    memo_set(dr, w, root);
    if (resolves(
            dr, array ? avro_schema_array_items(w) : avro_schema_map_values(w),
            array ? avro_schema_array_items(r) : avro_schema_map_values(r))) {
        return MATCH;
    }
    memo_delete(dr, w, root);
    prefix_msg(dr, "%s: ", array ? "array items" : "map values");
    note_unsafe(dr);
    return FAILED;
}

/* Records: same short name, and every reader field resolves from the
 * writer field of that name. libavro 1.11.1 ignores defaults, which
 * resolve.c has already added to the writer where it could. */
static step_t try_record(dry_run_t *dr, avro_schema_t w, avro_schema_t r,
                         avro_schema_t root)
{
    size_t rfields;
    size_t ri;

    if (!is_avro_record(r) ||
        strcmp(avro_schema_name(w), avro_schema_name(r)) != 0) {
        return NO_MATCH;
    }
    memo_set(dr, w, root);
    rfields = avro_schema_record_size(r);
    for (ri = 0; ri < rfields; ri++) {
        const char *name = avro_schema_record_field_name(r, (int)ri);
        int wi = avro_schema_record_field_get_index(w, name);

        if (wi < 0) {
            set_msg(dr, SL_DECODE_SCHEMA_RESOLUTION_FAILED,
                    "reader field %s of record %s is missing from the writer "
                    "and has no usable default",
                    name, avro_schema_name(r));
            break;
        }
        if (!resolves(dr, avro_schema_record_field_get_by_index(w, wi),
                      avro_schema_record_field_get_by_index(r, (int)ri))) {
            prefix_msg(dr, "field %s: ", name);
            break;
        }
    }
    if (ri == rfields) {
        return MATCH;
    }
    memo_delete(dr, w, root);
    if (ri > 0) {
        note_unsafe(dr);
    }
    return FAILED;
}

/* Writer links: the target must resolve against the reader as given,
 * union or not. */
static step_t try_link(dry_run_t *dr, avro_schema_t w, avro_schema_t r,
                       avro_schema_t root)
{
    memo_set(dr, w, root);
    if (resolves(dr, avro_schema_link_target(w), r)) {
        return MATCH;
    }
    memo_delete(dr, w, root);
    return FAILED;
}

/* One try_* step of libavro for writer w against reader type r. The memo
 * key root is the reader union when r is one of its branches, else r. */
static step_t try_type(dry_run_t *dr, avro_schema_t w, avro_schema_t r,
                       avro_schema_t root)
{
    step_t step;

    switch (avro_typeof(w)) {
    case AVRO_ARRAY:
    case AVRO_MAP:
        return try_container(dr, w, r, root);
    case AVRO_RECORD:
        return try_record(dr, w, r, root);
    case AVRO_LINK:
        return try_link(dr, w, r, root);
    case AVRO_ENUM:
        step = is_avro_enum(r) &&
                       strcmp(avro_schema_name(w), avro_schema_name(r)) == 0
                   ? MATCH
                   : NO_MATCH;
        break;
    case AVRO_FIXED:
        step = avro_schema_equal(w, r) ? MATCH : NO_MATCH;
        break;
    default:
        step = try_primitive(w, r);
        break;
    }
    if (step == MATCH) {
        memo_set(dr, w, root);
    }
    return step;
}

/* A writer union resolves when one of its branches does, or in strict
 * mode when all of them do. */
static int resolves_union(dry_run_t *dr, avro_schema_t w, avro_schema_t r)
{
    int some = 0;

    memo_set(dr, w, r);
    for (size_t i = 0; i < avro_schema_union_size(w); i++) {
        avro_schema_t branch = avro_schema_union_branch(w, (int)i);

        if (resolves(dr, branch, r)) {
            some = 1;
        } else if (dr->strict_unions) {
            memo_delete(dr, w, r);
            prefix_msg(
                dr, "writer union branch %s: ", avro_schema_type_name(branch));
            return 0;
        }
    }
    if (some) {
        return 1;
    }
    memo_delete(dr, w, r);
    set_msg(dr, SL_DECODE_SCHEMA_INCOMPATIBLE,
            "no branch of the writer union can be read as %s",
            avro_schema_type_name(r));
    return 0;
}

static int resolves(dry_run_t *dr, avro_schema_t w, avro_schema_t r)
{
    step_t step;
    int ok = 0;

    r = skip_links(r);
    if (memo_find(dr, w, r) >= 0) {
        return 1;
    }
    if (dr->nomem) {
        set_msg(dr, SL_DECODE_INTERNAL, "out of memory");
        return 0;
    }
    if (dr->depth >= DRY_RUN_MAX_DEPTH) {
        set_msg(dr, SL_DECODE_SCHEMA_INCOMPATIBLE, "schema nested too deeply");
        return 0;
    }
    dr->depth++;
    if (is_avro_union(w)) {
        ok = resolves_union(dr, w, r);
        goto out;
    }
    step = try_type(dr, w, r, r);
    if (step == NO_MATCH && is_avro_union(r)) {
        for (size_t i = 0; i < avro_schema_union_size(r) && step == NO_MATCH;
             i++) {
            step = try_type(dr, w,
                            skip_links(avro_schema_union_branch(r, (int)i)), r);
        }
    }
    ok = step == MATCH;
    if (step == NO_MATCH) {
        set_msg(dr, SL_DECODE_SCHEMA_INCOMPATIBLE,
                "writer type %s cannot be read as %s", avro_schema_type_name(w),
                avro_schema_type_name(r));
    }
out:
    dr->depth--;
    return ok;
}

sl_decode_err_t sl_avro__resolvable(avro_schema_t writer, avro_schema_t reader,
                                    int strict_unions, char *err,
                                    size_t err_size)
{
    dry_run_t *dr = calloc(1, sizeof(*dr));
    sl_decode_err_t rc;

    if (dr == NULL) {
        snprintf(err, err_size, "out of memory");
        return SL_DECODE_INTERNAL;
    }
    dr->strict_unions = strict_unions;
    if (!resolves(dr, writer, reader)) {
        rc = dr->nomem ? SL_DECODE_INTERNAL : dr->err;
        snprintf(err, err_size, "%s", dr->msg);
    } else if (dr->nomem) {
        rc = SL_DECODE_INTERNAL;
        snprintf(err, err_size, "out of memory");
    } else if (dr->unsafe_msg[0] != '\0') {
        rc = dr->unsafe_err;
        snprintf(err, err_size, "a writer union branch: %s", dr->unsafe_msg);
    } else {
        rc = SL_DECODE_OK;
        err[0] = '\0';
    }
    free(dr->memo);
    free(dr);
    return rc;
}
