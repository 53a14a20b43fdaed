#!/usr/bin/env python3
"""Reads one `wrk --latency` output and prints "REQ_PER_S P99_MS ERRORS REQUESTS" on one line.

ERRORS = socket errors (connect + read + write + timeout) + non-2xx/3xx responses.
Exits 1 if the output has no Requests/sec line (wrk failed).
"""
import re
import sys

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def main() -> int:
    text = open(sys.argv[1]).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        return 1
    p99 = re.search(r"^\s+99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p99_ms = float(p99.group(1)) * UNIT_MS[p99.group(2)] if p99 else float("nan")
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    total = re.search(r"(\d+) requests in", text)
    print(f"{float(rps.group(1)):.0f} {p99_ms:.3f} {errors} {total.group(1) if total else 0}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
