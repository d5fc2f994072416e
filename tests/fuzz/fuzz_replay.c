/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the replay parsers (NAB CSV, sensor CSV, NDJSON, commerce
 * CSV, hex frames). The input goes into a memfd, which is opened through
 * the public reader API as /proc/self/fd/N, read to the end and closed, as
 * `sluice replay` does with a file. One memfd serves every input, emptied
 * and rewritten each time, because creating and closing one per input only
 * costs system calls that are not the reader's.
 *
 * Input: byte 0 picks the format (low three bits: auto, nab, sensor-csv,
 * ndjson, commerce-csv, frames; 6 and 7 are auto) and bit 3 turns on
 * rebase_time, which reads the file twice; the rest is the file. Every
 * record returned must hold NUL-terminated, valid UTF-8 text and frame
 * bytes inside the lengths given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pipeline/replay.h"
#include "util/err.h"
#include "util/log.h"
#include "fuzz_text.h"

static const sl_replay_format_t formats[8] = {
    SL_REPLAY_AUTO,   SL_REPLAY_NAB,          SL_REPLAY_SENSOR_CSV,
    SL_REPLAY_NDJSON, SL_REPLAY_COMMERCE_CSV, SL_REPLAY_FRAMES,
    SL_REPLAY_AUTO,   SL_REPLAY_AUTO};

/* Where the frame bytes are summed, so the reads cannot be dropped. */
static volatile uint8_t frame_sum;

static int memfd = -1;
static char memfd_path[64];

static void close_memfd(void)
{
    close(memfd);
}

/* Makes the memfd contain exactly data[0..size). */
static void fill_memfd(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_replay", 0);
        if (memfd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
        atexit(close_memfd);
    }
    if (ftruncate(memfd, 0) != 0 ||
        pwrite(memfd, data, size, 0) != (ssize_t)size) {
        perror("memfd");
        abort();
    }
}

static void check_item(const sl_replay_item_t *item)
{
    switch (item->kind) {
    case SL_REPLAY_ITEM_READING:
        CHECK_TEXT(item->reading, sensor_id);
        CHECK_TEXT(item->reading, location);
        if (item->reading.has_unit)
            CHECK_TEXT(item->reading, unit);
        break;
    case SL_REPLAY_ITEM_EVENT:
        CHECK_TEXT(item->event, event_id);
        CHECK_TEXT(item->event, user_id);
        CHECK_TEXT(item->event, session_id);
        if (item->event.present & SL_EV_CATEGORY)
            CHECK_TEXT(item->event, category);
        if (item->event.present & SL_EV_PRODUCT_NAME)
            CHECK_TEXT(item->event, product_name);
        break;
    case SL_REPLAY_ITEM_FRAME:
        CHECK_TEXT(*item, topic);
        /* Touch every byte, so ASan reports a frame longer than its buffer. */
        for (size_t i = 0; i < item->key_len; i++)
            frame_sum += item->key[i];
        for (size_t i = 0; i < item->value_len; i++)
            frame_sum += item->value[i];
        break;
    default:
        fprintf(stderr, "replay item of kind %d\n", (int)item->kind);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_replay_item_t item;
    sl_replay_options_t opt;
    sl_replay_reader_t *rd;
    char err[256];
    int rc;

    if (size == 0)
        return 0;
    sl_log_set_level(SL_LOG_ERROR);
    fill_memfd(data + 1, size - 1);

    sl_replay_options_init(&opt);
    opt.format = formats[data[0] & 7];
    opt.rebase_time = (data[0] & 8) != 0;
    opt.sensor_id = "fuzz-1";
    opt.unit = "C";
    rd = sl_replay_open(memfd_path, &opt, err, sizeof(err));
    if (rd != NULL) {
        /* A malformed line is reported and skipped; the reader goes on. */
        while ((rc = sl_replay_next(rd, &item, err, sizeof(err))) != 0 &&
               rc != SL_EIO) {
            if (rc == 1)
                check_item(&item);
        }
        sl_replay_close(rd);
    }
    return 0;
}
