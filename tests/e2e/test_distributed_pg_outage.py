#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL stopped for 10 s (pg_ctl stop -m fast, then started again on
the same socket) while `sluice process` stores a replay from the mock
Kafka cluster (see cluster.py). The processor pauses and retries the batch
in hand instead of dead-lettering it: at the end every reading is stored
exactly once, dlq_errors is empty, and the processor logged the outage
and the recovery.

Retention: 100,000 readings are about 7 MB on the wire over 6 partitions,
under the mock cluster's 5 MiB per partition even if nothing were
consumed; the stored sequence check would show any record dropped.
"""
import re
import sys
import time

from cluster import Cluster, check_sequence, read_file, stop, wait_until

ROWS = 100000
SENSORS = 200
# 1 s of event time per SENSORS readings: at 12x the replay takes ~42 s.
SPEED = "12"
OUTAGE_S = 10


def main():
    began = time.time()
    cl = Cluster("pg-outage")
    log = cl.log("process")

    process = cl.process("process")
    replay = cl.replay_sequence(ROWS, SENSORS, SPEED)

    wait_until(lambda: cl.count() >= ROWS // 5, "a fifth of the input "
               "stored", [log])
    stored_before = cl.count()
    assert stored_before < ROWS, "the input was stored before the outage"
    cl.pg.stop()
    down_at = time.time()
    time.sleep(OUTAGE_S)
    assert process.poll() is None, "the processor died during the " \
        "outage:\n" + read_file(log)[-3000:]
    cl.pg.start()
    outage_s = time.time() - down_at

    code = replay.wait(timeout=180)
    assert code == 0, "replay exited with %d:\n%s" % (
        code, read_file(cl.log("replay")))
    wait_until(lambda: cl.count() >= ROWS, "%d rows in PostgreSQL" % ROWS,
               [log], timeout=180)
    time.sleep(2)  # a late duplicate delivery would show up as extra rows
    summary = check_sequence(cl.pg, ROWS, SENSORS)
    stop(process, "process", log)
    cl.close()

    text = read_file(log)
    assert "store write failed, pausing and retrying" in text, text[-3000:]
    assert re.search(r"store available again after \d+ retries", text), \
        text[-3000:]
    stats = re.findall(r"processed consumed=\d+ stored=(\d+) "
                       r"duplicates=\d+ dead_lettered=(\d+)", text)
    assert stats and stats[-1][1] == "0", stats
    assert int(stats[-1][0]) == ROWS, stats
    print("distributed_pg_outage: PostgreSQL down %.1f s with %d stored; "
          "%s; %.0f s" % (outage_s, stored_before, summary,
                          time.time() - began))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
