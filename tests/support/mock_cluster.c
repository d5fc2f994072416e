/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice_mock_cluster: hosts librdkafka's mock Kafka cluster in its own
 * process so that multi-process tests talk to it over the real Kafka
 * protocol on loopback. It prints the bootstrap address as the first line
 * on stdout, then runs until stdin reaches end of file or the process gets
 * SIGTERM or SIGINT.
 *
 * Usage: sluice_mock_cluster [--brokers N] [--topic NAME:PARTITIONS]...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS 16

static volatile sig_atomic_t stop_requested;

static void on_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: sluice_mock_cluster [--brokers N(1..%d)] "
            "[--topic NAME:PARTITIONS]...\n",
            MAX_BROKERS);
}

/* Creates a topic from a "NAME:PARTITIONS" argument. Returns 0 on success.
 */
static int topic_create(rd_kafka_mock_cluster_t *cluster, const char *spec,
                        int brokers)
{
    char name[256];
    const char *colon = strrchr(spec, ':');
    char *end;
    long partitions;
    size_t len;
    rd_kafka_resp_err_t err;

    if (colon == NULL || colon == spec)
        return -1;
    len = (size_t)(colon - spec);
    if (len >= sizeof(name))
        return -1;
    partitions = strtol(colon + 1, &end, 10);
    if (*end != '\0' || partitions < 1 || partitions > 10000)
        return -1;
    memcpy(name, spec, len);
    name[len] = '\0';

    err = rd_kafka_mock_topic_create(cluster, name, (int)partitions,
                                     brokers < 3 ? brokers : 3);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sluice_mock_cluster: creating topic %s failed: %s\n",
                name, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Blocks until stdin is closed or a stop signal arrives. */
static void wait_for_stop(void)
{
    char buf[256];

    while (!stop_requested) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

        if (n == 0 || (n < 0 && errno != EINTR))
            return;
    }
}

int main(int argc, char **argv)
{
    char reason[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *cluster;
    struct sigaction sa;
    int brokers = 1;
    int i;

    for (i = 1; i + 1 < argc && strcmp(argv[i], "--brokers") == 0; i += 2)
        brokers = atoi(argv[i + 1]);
    if (brokers < 1 || brokers > MAX_BROKERS) {
        usage();
        return 2;
    }

    /* The mock cluster needs a client instance for its bookkeeping; this
     * one never connects anywhere. */
    host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof(reason));
    if (host == NULL) {
        fprintf(stderr, "sluice_mock_cluster: rd_kafka_new failed: %s\n",
                reason);
        return 1;
    }
    cluster = rd_kafka_mock_cluster_new(host, brokers);
    if (cluster == NULL) {
        fprintf(stderr, "sluice_mock_cluster: mock cluster start failed\n");
        rd_kafka_destroy(host);
        return 1;
    }

    for (; i < argc; i++) {
        if (strcmp(argv[i], "--topic") != 0 || i + 1 >= argc ||
            topic_create(cluster, argv[++i], brokers) != 0) {
            usage();
            rd_kafka_mock_cluster_destroy(cluster);
            rd_kafka_destroy(host);
            return 2;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: read() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    fflush(stdout);
    wait_for_stop();

    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(host);
    return 0;
}
