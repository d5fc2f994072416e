# SPDX-License-Identifier: Apache-2.0
"""A WebSocket client that stops reading while thousands of readings flow
through `sluice run`: the server's memory stays within the client's queue
bound, the server drops the client's oldest messages, closes it with 1008
and a reason once it has lost messages for longer than ws-stall-ms, and
frees it; a client that reads on meanwhile loses nothing.

The stalled client is a raw socket with a 4 KiB receive buffer that reads
nothing after the handshake, so the TCP window fills; the reading client
is python3-websockets.
"""
import asyncio
import calendar
import os
import sys
import threading
import time

import websockets

from harness import Sluice, strict_json
from ws_client import metric, parse_frames, raw_connect, rss_bytes

RATE = 4000          # readings per second
QUEUE = 4096         # --ws-queue-messages: 1 s of readings
FLOW_SECONDS = 16    # readings flowing while the client is stalled
# --ws-stall-ms: the close comes after the flow, and the test reads it
# within the grace time the server gives a closed client to read it.
STALL_MS = (FLOW_SECONDS + 2) * 1000
# An unbounded queue would hold FLOW_SECONDS * RATE messages of about
# 450 bytes each with their bookkeeping, 29 MB; the bounded one holds QUEUE
# of them, under 2 MB. The rest of the bound is room for the store's cache
# and the in-process bus, whose backlog varies with the machine's load.
RSS_BOUND = 16 * 1024 * 1024


def iso_ms(text):
    """Parses an ISO-8601 UTC time with milliseconds."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) \
        * 1000 + int(text[20:23])


class Reader(threading.Thread):
    """Reads /ws/sensors until stopped, counting readings and drops."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.readings = 0
        self.delays_ms = []
        self.dropped = []
        self.stop_flag = False
        self.error = None

    async def loop(self):
        async with websockets.connect(self.url) as ws:
            while not self.stop_flag:
                try:
                    text = await asyncio.wait_for(ws.recv(), 1)
                except asyncio.TimeoutError:
                    continue
                msg = strict_json(text)
                if msg["type"] == "sensor_reading":
                    self.readings += 1
                    if self.readings % 50 == 0:  # parsing costs the reader
                        self.delays_ms.append(time.time() * 1000 -
                                              iso_ms(msg["received_at"]))
                elif msg["type"] == "dropped":
                    self.dropped.append(msg)

    def run(self):
        try:
            asyncio.run(self.loop())
        except Exception as e:  # reported by the main thread
            self.error = e


def main():
    # AddressSanitizer keeps freed memory in a quarantine, which counts in
    # the RSS; the bound is about memory the server holds on to.
    os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                  ":quarantine_size_mb=1").lstrip(":")
    sluice = Sluice("--rate", str(RATE), "--no-detector",
                    "--ws-queue-messages", str(QUEUE),
                    "--ws-stall-ms", str(STALL_MS))
    port = sluice.port
    reader = Reader("ws://127.0.0.1:%d/ws/sensors" % port)
    reader.start()
    sluice.wait_until(lambda: reader.readings > RATE, "readings flowing")
    time.sleep(3)  # the store's cache and the allocator settle
    baseline = rss_bytes(sluice.proc.pid)

    stalled, _ = raw_connect(port, "/ws/sensors")
    sluice.wait_until(lambda: metric(port, "sluice_ws_clients",
                                     {"stream": "sensors"}) == 2,
                      "the stalled client counted")
    before = reader.readings
    peak = baseline
    deadline = time.time() + FLOW_SECONDS
    while time.time() < deadline:
        peak = max(peak, rss_bytes(sluice.proc.pid))
        time.sleep(0.2)
    flowed = reader.readings - before
    assert flowed > RATE * FLOW_SECONDS / 4, flowed
    growth = peak - baseline
    print("RSS baseline %.1f MiB, peak growth %.2f MiB over %d readings"
          % (baseline / 2**20, growth / 2**20, flowed))
    assert growth < RSS_BOUND, growth

    dropped = metric(port, "sluice_ws_messages_dropped_total",
                     {"stream": "sensors", "reason": "queue_full"})
    assert dropped > 0, dropped
    sluice.wait_until(lambda: metric(port, "sluice_ws_disconnects_total",
                                     {"reason": "too_slow"}) == 1,
                      "the stalled client closed as too slow", timeout=30)
    assert rss_bytes(sluice.proc.pid) - baseline < RSS_BOUND

    # Reading now, the client finds the close frame behind the messages
    # its socket buffers held.
    stalled.settimeout(10)
    data = b""
    while True:
        chunk = stalled.recv(65536)
        if not chunk:
            break
        data += chunk
        frames, _ = parse_frames(data)
        if frames and frames[-1][0] == 0x8:
            break
    stalled.close()
    frames, _ = parse_frames(data)
    assert frames and frames[-1][0] == 0x8, "no close frame"
    code = int.from_bytes(frames[-1][1][:2], "big")
    reason = frames[-1][1][2:].decode()
    assert code == 1008, code
    assert "too slow" in reason, reason
    sluice.wait_until(lambda: metric(port, "sluice_ws_clients",
                                     {"stream": "sensors"}) == 1,
                      "the stalled client freed")

    reader.stop_flag = True
    reader.join(10)
    assert reader.error is None, reader.error
    assert reader.dropped == [], reader.dropped[:3]
    delays = sorted(reader.delays_ms)
    print("reading client: %d samples, delivery delay p50 %.0f ms, p99 %.0f "
          "ms" % (len(delays), delays[len(delays) // 2],
                  delays[int(len(delays) * 0.99)]))
    assert sluice.stop() == 0
    print("stalled client: %d messages dropped, closed with %d '%s'; "
          "the reading client lost none" % (dropped, code, reason))
    return 0


if __name__ == "__main__":
    sys.exit(main())
