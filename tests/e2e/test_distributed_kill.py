#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kill -9 of `sluice process` at random points of a 200,000-reading replay
into the mock Kafka cluster and PostgreSQL (see cluster.py), with a new
processor started after each kill. At the end every reading is stored
exactly once and the dead-letter queue is empty.

The kill points are drawn from a seeded generator; the seed is printed,
and SLUICE_CHAOS_SEED repeats a run.

Retention: the mock cluster keeps about 5 MiB per partition and silently
drops older data. The whole input is about 70 bytes a record on the wire
(Avro value, key and record overhead), 14 MB over 6 partitions, so even
with nothing consumed each partition stays under 3 MiB. The stored
sequence check below would show any record that was dropped.
"""
import os
import random
import signal
import sys
import time

from cluster import Cluster, check_sequence, read_file, stop, wait_until

ROWS = int(os.environ.get("SLUICE_CHAOS_ROWS", "200000"))
SENSORS = 200
KILLS = int(os.environ.get("SLUICE_CHAOS_KILLS", "10"))
# Event time advances 1 s per SENSORS readings; at 8x the replay of
# 200,000 readings takes about 125 s, about as long as the ten kill and
# restart cycles, so most kills fall while the input streams in.
SPEED = "8"
# Seconds a processor runs once it has partitions, before its kill: drawn
# uniformly, so kills land at random points of fetching, storing and
# committing batches.
RUN_MIN_S, RUN_MAX_S = 0.2, 4.0
# After a kill -9 the partitions of the dead processor wait this long for
# a new owner; 6 s is the smallest session a Kafka broker accepts by
# default (group.min.session.timeout.ms).
SESSION_MS = 6000


def main():
    seed = int(os.environ.get("SLUICE_CHAOS_SEED", "0")) or \
        random.SystemRandom().randrange(1, 2**31)
    print("distributed_kill: seed %d (set SLUICE_CHAOS_SEED=%d to repeat)" %
          (seed, seed), flush=True)
    rng = random.Random(seed)
    began = time.time()
    cl = Cluster("kill")

    process = cl.process("process-0", session_timeout_ms=SESSION_MS)
    replay = cl.replay_sequence(ROWS, SENSORS, SPEED)

    stored_at_kill = []
    name = "process-0"
    logs = [cl.log(name)]
    for k in range(KILLS):
        wait_until(lambda: "partitions assigned" in read_file(cl.log(name)),
                   "%s to get partitions" % name, [cl.log(name)], timeout=60,
                   step=0.1)
        time.sleep(rng.uniform(RUN_MIN_S, RUN_MAX_S))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        stored_at_kill.append(cl.count())
        name = "process-%d" % (k + 1)
        logs.append(cl.log(name))
        process = cl.process(name, session_timeout_ms=SESSION_MS)

    code = replay.wait(timeout=300)
    replay_log = read_file(cl.log("replay"))
    assert code == 0, "replay exited with %d:\n%s" % (code, replay_log)
    assert "published=%d malformed=0 failed=0" % ROWS in replay_log, \
        replay_log[-3000:]
    wait_until(lambda: cl.count() >= ROWS, "%d rows in PostgreSQL" % ROWS,
               logs[-2:], timeout=240)
    # XXX: SIGTERM to a processor still joining its group aborts it in
    # librdkafka 2.0.2 (assertion `assignor_state' in
    # rd_kafka_sticky_assignor_state_destroy), so the last processor is
    # stopped only once it has partitions.
    wait_until(lambda: "partitions assigned" in read_file(logs[-1]),
               "the last processor to get partitions", logs[-1:], timeout=60)
    assert process.poll() is None, read_file(logs[-1])
    time.sleep(2)  # a late duplicate delivery would show up as extra rows
    summary = check_sequence(cl.pg, ROWS, SENSORS)

    # The kills must have hit the stream, not only its ends.
    mid = [n for n in stored_at_kill if 0 < n < ROWS]
    assert len(mid) >= KILLS // 2, stored_at_kill
    stop(process, "process", logs[-1])
    cl.close()
    print("distributed_kill: %d kills at stored counts %s; %s; %.0f s" % (
        KILLS, stored_at_kill, summary, time.time() - began))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
