/* SPDX-License-Identifier: Apache-2.0 */
/* Temporary files for the pipeline tests. */
#ifndef SLUICE_TESTS_PIPELINE_TEST_FILES_H
#define SLUICE_TESTS_PIPELINE_TEST_FILES_H

#include <stddef.h>

/** Creates a fresh temporary folder and returns its path (static buffer). */
const char *test_dir_create(void);

/** Removes the folder of test_dir_create and every file in it. */
void test_dir_remove(void);

/**
 * Writes len bytes into a file called name inside the test folder and
 * returns its path in a static buffer that the next call overwrites.
 */
const char *test_file_write(const char *name, const char *text, size_t len);

/** Writes a NUL-terminated text, as test_file_write. */
const char *test_file_text(const char *name, const char *text);

/**
 * Returns the path of a file under $SLUICE_SHARED_DIR/data, or NULL (and
 * prints why on stderr) when the variable is unset or the file is absent.
 */
const char *test_shared_data(const char *relative);

#endif
