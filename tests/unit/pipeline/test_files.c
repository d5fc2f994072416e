/* SPDX-License-Identifier: Apache-2.0 */
/* Temporary files for the pipeline tests. */
#include "test_files.h"

#include <assert.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir_path[256];

const char *test_dir_create(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(dir_path, sizeof(dir_path), "%s/sluice-pipeline-XXXXXX",
             base && *base ? base : "/tmp");
    if (mkdtemp(dir_path) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return dir_path;
}

void test_dir_remove(void)
{
    char path[512];
    DIR *dir = opendir(dir_path);
    struct dirent *ent;

    if (dir == NULL)
        return;
    while ((ent = readdir(dir)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir_path, ent->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(dir_path);
}

const char *test_file_write(const char *name, const char *text, size_t len)
{
    static char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir_path, name);
    fp = fopen(path, "wb");
    if (fp == NULL || fwrite(text, 1, len, fp) != len || fclose(fp) != 0) {
        perror(path);
        abort();
    }
    return path;
}

const char *test_file_text(const char *name, const char *text)
{
    return test_file_write(name, text, strlen(text));
}

const char *test_shared_data(const char *relative)
{
    static char path[1024];
    const char *shared = getenv("SLUICE_SHARED_DIR");

    if (shared == NULL || *shared == '\0') {
        fprintf(stderr,
                "*** SLUICE_SHARED_DIR is not set: the real-data "
                "check of %s runs on generated data instead ***\n",
                relative);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/data/%s", shared, relative);
    if (access(path, R_OK) != 0) {
        fprintf(stderr,
                "*** %s is missing: the real-data check runs on "
                "generated data instead ***\n",
                path);
        return NULL;
    }
    return path;
}
