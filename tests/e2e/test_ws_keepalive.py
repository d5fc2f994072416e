# SPDX-License-Identifier: Apache-2.0
"""WebSocket keepalive of a real `sluice run`: the server pings a client
that has been silent for 30 s and hangs up on one that has not answered
by 40 s, while a python3-websockets client, which answers pings, stays
connected."""
import asyncio
import socket
import sys
import threading
import time

import websockets

from harness import Sluice
from ws_client import metric, parse_frames, raw_connect


async def answering_client(port, seconds):
    """Stays connected for seconds without sending a message; returns
    whether the connection is still open."""
    async with websockets.connect("ws://127.0.0.1:%d/ws/sensors" % port,
                                  ping_interval=None) as ws:
        await asyncio.sleep(seconds)
        return ws.open


def main():
    sluice = Sluice("--no-generators", "--no-detector")
    silent, data = raw_connect(sluice.port, "/ws/sensors")
    silent.settimeout(1)
    loop_result = {}

    def run_answering():
        loop_result["open"] = asyncio.run(answering_client(sluice.port, 48))

    thread = threading.Thread(target=run_answering)
    thread.start()

    start = time.time()
    closed = False
    while time.time() - start < 60:
        try:
            chunk = silent.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            closed = True
            closed_after = time.time() - start
            break
        data += chunk
    silent.close()
    opcodes = [op for op, _ in parse_frames(data)[0]]
    assert 0x9 in opcodes, opcodes  # the server's ping
    assert closed, "the server kept a client that never answered a ping"

    thread.join(60)
    assert loop_result.get("open") is True, loop_result
    assert metric(sluice.port, "sluice_ws_clients", {"stream": "sensors"}) \
        == 0
    assert sluice.stop() == 0
    print("silent client pinged and closed after %.0f s; the answering "
          "client stayed" % closed_after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
