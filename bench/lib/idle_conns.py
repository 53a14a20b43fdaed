#!/usr/bin/env python3
"""Opens COUNT client connections to HOST:PORT and holds them idle, for bench/run's memory case.

Usage: idle_conns.py HOST PORT COUNT READY_FILE [--mode request|silent] [--path /small.txt] [--hold 120]

--mode request (default): each connection sends one keep-alive GET and reads the whole response
first, so the proxy holds it as an idle keep-alive connection after a request (its usual state).
--mode silent: connect only, never send a byte.
When all are open, writes "opened=N failed=M seconds=S" to READY_FILE and then holds the sockets
until killed or --hold seconds pass (bounded). Raise `ulimit -n` above COUNT first.
"""
import argparse
import socket
import sys
import time


def read_response(s: socket.socket) -> bool:
    """Reads one HTTP/1.1 response with a Content-Length body; True on a 200."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return False
        data += chunk
        if len(data) > 65536:
            return False
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    ok = lines[0].split()[1:2] == [b"200"]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            return False
        body += chunk
    return ok


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("count", type=int)
    p.add_argument("ready_file")
    p.add_argument("--mode", choices=["request", "silent"], default="request")
    p.add_argument("--path", default="/small.txt")
    p.add_argument("--hold", type=float, default=120.0)
    args = p.parse_args()

    t0 = time.monotonic()
    socks: list[socket.socket] = []
    failed = 0
    for _ in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5.0)
        try:
            s.connect((args.host, args.port))
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    if args.mode == "request":
        req = f"GET {args.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
        # In batches: send on a batch, then read the batch, so responses never pile up unread.
        alive: list[socket.socket] = []
        for i in range(0, len(socks), 200):
            batch = socks[i:i + 200]
            sent = []
            for s in batch:
                try:
                    s.sendall(req)
                    sent.append(s)
                except OSError:
                    failed += 1
                    s.close()
            for s in sent:
                try:
                    if read_response(s):
                        alive.append(s)
                        continue
                except (OSError, ValueError, IndexError):
                    pass
                failed += 1
                s.close()
        socks = alive
    with open(args.ready_file, "w") as f:
        f.write(f"opened={len(socks)} failed={failed} seconds={time.monotonic() - t0:.1f}\n")
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
