/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kafka bus against sluice_mock_cluster running as its own process:
 * the program prints a bootstrap address, serves the Kafka protocol on
 * loopback, and exits cleanly when its stdin is closed. Killing it is
 * how a test loses its broker for good.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "kafka_harness.h"
#include "util/err.h"

extern char **environ;

typedef struct mock_process {
    pid_t pid;
    int stdin_fd;
    char bootstraps[256];
} mock_process_t;

static void mock_process_start(mock_process_t *mp, char *const argv[])
{
    int to_child[2], from_child[2];
    posix_spawn_file_actions_t actions;
    FILE *out;

    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(from_child), 0);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    assert_int_equal(posix_spawn(&mp->pid, SL_MOCK_CLUSTER_PATH, &actions, NULL,
                                 argv, environ),
                     0);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    mp->stdin_fd = to_child[1];

    out = fdopen(from_child[0], "r");
    assert_non_null(out);
    assert_non_null(fgets(mp->bootstraps, sizeof(mp->bootstraps), out));
    mp->bootstraps[strcspn(mp->bootstraps, "\n")] = '\0';
    fclose(out);
}

/* Waits up to timeout_ms for the process to exit; returns its wait status
 * or -1 after killing it on timeout. */
static int mock_process_wait(mock_process_t *mp, int timeout_ms)
{
    int64_t deadline = kh_now_ms() + timeout_ms;
    int status = 0;

    while (kh_now_ms() < deadline) {
        if (waitpid(mp->pid, &status, WNOHANG) == mp->pid)
            return status;
        struct timespec pause = {0, 20 * 1000000L};
        nanosleep(&pause, NULL);
    }
    kill(mp->pid, SIGKILL);
    waitpid(mp->pid, &status, 0);
    return -1;
}

static void test_mock_process_serves_bus(void **state)
{
    char *const argv[] = {"sluice_mock_cluster", "--brokers", "2", "--topic",
                          "process-readings:3",  NULL};
    const char *topic = "process-readings";
    kh_record_t got[32];
    mock_process_t mp;
    sl_bus_t *bus;
    sl_consumer_t *consumer;
    int status;

    (void)state;
    mock_process_start(&mp, argv);
    assert_non_null(strstr(mp.bootstraps, "127.0.0.1:"));

    bus = kh_bus_create(mp.bootstraps, NULL, 0);
    assert_int_equal(sl_bus_partition_count(bus, topic), 3);
    for (int i = 0; i < 10; i++) {
        char key[8];

        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(sl_bus_publish(bus, topic, -1, key, strlen(key), "v",
                                        1, NULL, 0, 1000, NULL),
                         SL_OK);
    }
    consumer = sl_consumer_create(bus, "process", &topic, 1);
    assert_non_null(consumer);
    assert_int_equal(kh_drain(consumer, got, 32, 10, 20000, true), 10);
    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);

    close(mp.stdin_fd);
    status = mock_process_wait(&mp, 5000);
    assert_true(status >= 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* One sl_consumer_lag call on its own thread, so that a hang shows as a
 * failed wait instead of a stuck test. */
typedef struct lag_call {
    sl_consumer_t *consumer;
    int64_t lag;
    atomic_bool done;
} lag_call_t;

static void *lag_main(void *arg)
{
    lag_call_t *call = arg;

    call->lag = sl_consumer_lag(call->consumer);
    atomic_store(&call->done, true);
    return NULL;
}

/* After kill -9 of the only broker, the lag lookup fails within its
 * request timeouts (10 s each) instead of waiting for the broker to come
 * back, which held a stopping processor for as long as the broker was
 * gone. After sl_bus_close it fails at once. */
static void test_lag_after_broker_killed(void **state)
{
    char *const argv[] = {"sluice_mock_cluster", "--topic", "lag-readings:2",
                          NULL};
    const char *topic = "lag-readings";
    lag_call_t call = {0};
    kh_record_t got[8];
    sl_consumer_t *consumer;
    mock_process_t mp;
    pthread_t thread;
    int64_t deadline, started;
    sl_bus_t *bus;

    (void)state;
    mock_process_start(&mp, argv);
    bus = kh_bus_create(mp.bootstraps, NULL, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            sl_bus_publish(bus, topic, -1, "k", 1, "v", 1, NULL, 0, 1000, NULL),
            SL_OK);
    consumer = sl_consumer_create(bus, "lag", &topic, 1);
    assert_non_null(consumer);
    assert_int_equal(kh_drain(consumer, got, 8, 4, 20000, true), 4);
    assert_int_equal(sl_consumer_lag(consumer), 0);

    assert_int_equal(kill(mp.pid, SIGKILL), 0);
    assert_true(mock_process_wait(&mp, 5000) >= 0);
    close(mp.stdin_fd);
    call.consumer = consumer;
    atomic_init(&call.done, false);
    assert_int_equal(pthread_create(&thread, NULL, lag_main, &call), 0);
    deadline = kh_now_ms() + 60000;
    while (!atomic_load(&call.done) && kh_now_ms() < deadline) {
        struct timespec pause = {0, 50 * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (!atomic_load(&call.done))
        fail_msg("sl_consumer_lag still waits 60 s after the broker died");
    pthread_join(thread, NULL);
    assert_true(call.lag < 0);

    sl_bus_close(bus);
    started = kh_now_ms();
    assert_true(sl_consumer_lag(consumer) < 0);
    assert_true(kh_now_ms() - started < 1000);
    sl_consumer_destroy(consumer);
    sl_bus_destroy(bus);
}

static void test_mock_process_stops_on_sigterm(void **state)
{
    char *const argv[] = {"sluice_mock_cluster", NULL};
    mock_process_t mp;
    int status;

    (void)state;
    mock_process_start(&mp, argv);
    assert_int_equal(kill(mp.pid, SIGTERM), 0);
    status = mock_process_wait(&mp, 5000);
    close(mp.stdin_fd);
    assert_true(status >= 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_mock_process_rejects_bad_topic(void **state)
{
    char *const argv[] = {"sluice_mock_cluster", "--topic", "no-count", NULL};
    pid_t pid;
    int status;

    (void)state;
    assert_int_equal(
        posix_spawn(&pid, SL_MOCK_CLUSTER_PATH, NULL, NULL, argv, environ), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mock_process_serves_bus),
        cmocka_unit_test(test_mock_process_stops_on_sigterm),
        cmocka_unit_test(test_lag_after_broker_killed),
        cmocka_unit_test(test_mock_process_rejects_bad_topic),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
