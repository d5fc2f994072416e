# SPDX-License-Identifier: Apache-2.0
"""Helpers of the WebSocket end-to-end tests: a raw-socket client that
can stop reading (python3-websockets keeps reading into its own buffers),
a parser of the frames such a client received, and a /metrics reader."""
import base64
import os
import re
import socket
import struct
import urllib.request


def raw_connect(port, path, rcvbuf=4096):
    """Opens a WebSocket on 127.0.0.1:port with a small receive buffer and
    returns the socket after the 101 response, plus any bytes read past
    the response headers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  % (path, port, key)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed during the handshake: %r"
                                 % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def parse_frames(data):
    """Splits server frames (unmasked). Returns [(opcode, payload)] and the
    bytes of an incomplete last frame."""
    frames = []
    pos = 0
    while pos + 2 <= len(data):
        opcode = data[pos] & 0x0F
        length = data[pos + 1] & 0x7F
        head = 2
        if length == 126:
            if pos + 4 > len(data):
                break
            length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
            head = 4
        elif length == 127:
            if pos + 10 > len(data):
                break
            length = struct.unpack(">Q", data[pos + 2:pos + 10])[0]
            head = 10
        if pos + head + length > len(data):
            break
        frames.append((opcode, data[pos + head:pos + head + length]))
        pos += head + length
    return frames, data[pos:]


def metric(port, name, labels=None):
    """Returns the sum of the samples of name whose labels include every
    pair of labels, from the API's /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in (labels or {}).items()):
            total += float(m.group(3))
    return total


def rss_bytes(pid):
    """Returns the resident set size of a process."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)
