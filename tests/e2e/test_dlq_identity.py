#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Dead-letter rows of `sluice run` keep their identity across restarts.

The in-process bus numbers offsets from 0 in every process, so a
dlq_errors row there is named by the record's content offset (a hash of
its key and value), not by its bus offset. Checked on one database:

- two runs with different bad frames: every bad frame has a row of its
  own, and each row's source_offset is the content offset computed here
  from the documented formula;
- a run killed with kill -9 after it recorded some rows, then the same
  file replayed, and a whole earlier file replayed again: no row is
  added, and the earlier rows keep their ids;
- byte-identical bad frames share one row, as identical readings share
  one stored row;
- `sluice dlq replay ID` and the HTTP API reach a row by its id: the
  replayed frame fails again and updates that same row.
"""
import collections
import hashlib
import os
import signal
import sqlite3
import struct
import subprocess
import tempfile

from harness import Sluice, reading_frame

T0 = 1767225600000       # 2026-01-01T00:00:00Z
BINARY = os.environ["SLUICE_BINARY"]
COUNT = 30               # bad frames per file
SETTINGS = ["--no-generators", "--no-detector", "--format", "frames"]


def content_offset(key, value):
    """The content offset of sl_dlq_content_offset, computed independently:
    SHA-256 of (1, key length as 8 bytes big-endian, key, value), first 8
    bytes big-endian with the top bit cleared."""
    digest = hashlib.sha256(b"\x01" + struct.pack(">Q", len(key)) + key +
                            value).digest()
    return struct.unpack(">Q", digest[:8])[0] & 0x7FFFFFFFFFFFFFFF


def bad_frames(prefix, count):
    """Returns count (key, frame) pairs that never decode, keyed
    PREFIX-NNNN: half with a wrong magic byte, half cut short."""
    frames = []
    for i in range(count):
        key = "%s-%04d" % (prefix, i)
        good = reading_frame(1, key, "temperature", 1.0, T0 + i)
        frame = b"\x07" + good[1:] if i % 2 else good[:9]
        frames.append((key.encode(), frame))
    return frames


def write_frames(path, frames):
    with open(path, "w") as f:
        for key, frame in frames:
            f.write("sensor-readings\t%s\t%s\n" % (key.hex(), frame.hex()))


def run_to_idle(workdir, path):
    """Runs `sluice run` on path until it is idle, and checks it exited
    cleanly."""
    s = Sluice(*SETTINGS, "--replay", path, "--exit-when-idle",
               workdir=workdir, wait=False)
    code = s.proc.wait(timeout=120)
    s.log.close()
    assert code == 0, "sluice run exited with %d:\n%s" % (code,
                                                           s.read_log())


def rows(db_path):
    """Returns {key: [(id, partition, offset, payload, status, retries)]}
    for every dlq_errors row."""
    db = sqlite3.connect(db_path, timeout=30)
    try:
        out = collections.defaultdict(list)
        for row in db.execute("SELECT key, id, source_partition, "
                              "source_offset, payload, status, retry_count "
                              "FROM dlq_errors ORDER BY id"):
            out[bytes(row[0])].append(tuple(row[1:]))
        return out
    finally:
        db.close()


def check_own_rows(found, frames):
    """Each frame has exactly one row, named by its content offset."""
    for key, frame in frames:
        assert len(found[key]) == 1, (key, found[key])
        _, partition, offset, payload, status, _ = found[key][0]
        assert bytes(payload) == frame, (key, payload)
        assert offset == content_offset(key, frame), (key, offset)
        assert 0 <= partition < 6, (key, partition)
        assert status == "dead", (key, status)


def check_two_runs(workdir, db_path):
    """Two runs with different bad frames: neither takes the other's
    rows."""
    first, second = bad_frames("first", COUNT), bad_frames("second", COUNT)
    write_frames(os.path.join(workdir, "first.frames"), first)
    write_frames(os.path.join(workdir, "second.frames"), second)
    run_to_idle(workdir, os.path.join(workdir, "first.frames"))
    check_own_rows(rows(db_path), first)
    run_to_idle(workdir, os.path.join(workdir, "second.frames"))
    found = rows(db_path)
    check_own_rows(found, first)
    check_own_rows(found, second)
    assert sum(len(v) for v in found.values()) == 2 * COUNT, found
    return first + second


def check_crash_replay(workdir, db_path, earlier):
    """kill -9 after some rows were recorded, then the same file again:
    no second row; and an earlier file replayed whole: no change of ids."""
    third = bad_frames("third", COUNT)
    path = os.path.join(workdir, "third.frames")
    write_frames(path, third)
    ids_before = {k: v[0][0] for k, v in rows(db_path).items()}

    s = Sluice(*SETTINGS, "--replay", path, workdir=workdir, wait=False)
    s.wait_until(lambda: any(k.startswith(b"third-") for k in rows(db_path)),
                 "a row of the third file")
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=30)
    s.log.close()

    run_to_idle(workdir, path)
    run_to_idle(workdir, os.path.join(workdir, "first.frames"))
    found = rows(db_path)
    check_own_rows(found, earlier + third)
    assert sum(len(v) for v in found.values()) == 3 * COUNT, found
    for key, row_id in ids_before.items():
        assert found[key][0][0] == row_id, (key, row_id, found[key])


def check_identical_frames(workdir, db_path):
    """Two byte-identical bad frames in one file, and the same frame again
    in the next run, share one row; a frame that differs in one byte has
    a row of its own."""
    key, frame = b"twin", b"\x07twin-frame"
    other = b"\x07twin-framf"
    path = os.path.join(workdir, "twins.frames")
    write_frames(path, [(key, frame), (key, frame), (key, other)])
    before = sum(len(v) for v in rows(db_path).values())
    run_to_idle(workdir, path)
    run_to_idle(workdir, path)
    found = rows(db_path)
    assert sorted(bytes(r[3]) for r in found[key]) == [frame, other], found
    assert sum(len(v) for v in found.values()) == before + 2, found


def sluice_cli(*args):
    done = subprocess.run([BINARY] + list(args), capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def check_operator_replay(workdir, db_path):
    """`sluice dlq replay ID` republishes a parked frame; it fails to
    decode again and its failure updates the same row."""
    key = b"first-0001"
    row_id, partition, offset = rows(db_path)[key][0][:3]
    total = sum(len(v) for v in rows(db_path).values())
    s = Sluice(*SETTINGS, workdir=workdir)
    try:
        status, body = s.get("/api/v1/dlq/%d" % row_id)
        assert status == 200, body
        assert (body["partition"], body["offset"]) == (partition, offset), \
            body
        status, body = s.get("/api/v1/dlq?limit=100")
        assert status == 200 and body["count"] == total, body
        code, _, err = sluice_cli("dlq", "replay", str(row_id), "--db",
                                  db_path)
        assert code == 0, err
        s.wait_until(lambda: rows(db_path)[key][0][4:] == ("dead", 1),
                     "the replayed row dead again after one retry",
                     timeout=60)
        found = rows(db_path)
        assert len(found[key]) == 1, found[key]
        assert found[key][0][:3] == (row_id, partition, offset), found[key]
        assert sum(len(v) for v in found.values()) == total, found
        code, out, err = sluice_cli("dlq", "list", "--db", db_path)
        assert code == 0, err
        assert str(offset) in out, out
    finally:
        code = s.stop()
    assert code == 0, s.read_log()


def main():
    workdir = tempfile.mkdtemp(prefix="sluice-dlq-identity-")
    db_path = os.path.join(workdir, "sluice.db")
    earlier = check_two_runs(workdir, db_path)
    check_crash_replay(workdir, db_path, earlier)
    check_identical_frames(workdir, db_path)
    check_operator_replay(workdir, db_path)
    print("dead-letter rows keep their identity across runs")


if __name__ == "__main__":
    main()
