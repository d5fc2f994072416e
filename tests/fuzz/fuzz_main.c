/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A plain main for the fuzz harnesses, for builds without libFuzzer: it
 * feeds every file named on the command line, or found directly inside a
 * folder named there, to LLVMFuzzerTestOneInput once. The ctest entries
 * fuzz_<name>_corpus run it over the seed corpus and the regression inputs,
 * so every sanitizer build re-checks them. A crash or a sanitizer report
 * fails the test; the file being run is printed first to name the culprit.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file. Returns a heap buffer (never NULL on success, also
 * for an empty file) or NULL with the reason printed. */
static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;

    if (fp == NULL) {
        perror(path);
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        perror(path);
        fclose(fp);
        return NULL;
    }
    /* One spare byte, so an empty file still gets a valid pointer. */
    buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, fp) != (size_t)len) {
        fprintf(stderr, "%s: read failed\n", path);
        free(buf);
        fclose(fp);
        return NULL;
    }
    fclose(fp);
    *size = (size_t)len;
    return buf;
}

/* Runs one file. Returns 0, or 1 when it could not be read. */
static int run_file(const char *path)
{
    size_t size = 0;
    uint8_t *data = read_file(path, &size);

    if (data == NULL)
        return 1;
    fprintf(stderr, "running %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file directly inside dir, in name order so that a
 * failure reproduces in the same sequence. Returns the number of files
 * that could not be read, or -1 when dir cannot be listed. */
static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char **paths = NULL;
    size_t n = 0;
    int failed = 0;

    if (d == NULL) {
        perror(dir);
        return -1;
    }
    while ((ent = readdir(d)) != NULL) {
        char path[4096];
        struct stat sb;
        char **grown;

        snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
        if (ent->d_name[0] == '.' || stat(path, &sb) != 0 ||
            !S_ISREG(sb.st_mode))
            continue;
        grown = realloc(paths, (n + 1) * sizeof(*paths));
        if (grown == NULL || (grown[n] = strdup(path)) == NULL) {
            fprintf(stderr, "out of memory listing %s\n", dir);
            exit(1);
        }
        paths = grown;
        n++;
    }
    closedir(d);

    qsort(paths, n, sizeof(*paths), compare_names);
    for (size_t i = 0; i < n; i++) {
        failed += run_file(paths[i]);
        free(paths[i]);
    }
    free(paths);
    *count += n;
    return failed;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat sb;

        if (stat(argv[i], &sb) != 0) {
            perror(argv[i]);
            failed++;
        } else if (S_ISDIR(sb.st_mode)) {
            int rc = run_dir(argv[i], &count);

            failed += rc < 0 ? 1 : rc;
        } else {
            failed += run_file(argv[i]);
            count++;
        }
    }
    fprintf(stderr, "%zu inputs run, %d unreadable\n", count, failed);
    /* An empty corpus would pass without checking anything. */
    return failed == 0 && count > 0 ? 0 : 1;
}
