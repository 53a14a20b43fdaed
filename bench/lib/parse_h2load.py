#!/usr/bin/env python3
"""Reads one h2load output (and its --log-file, OUTPUT.log) and prints
"REQ_PER_S P99_MS ERRORS REQUESTS" on one line, as parse_wrk.py does for wrk.

h2load prints no percentiles: P99 comes from the per-request times of the log file (third column,
microseconds). ERRORS = failed + errored + timeout requests + non-2xx responses. Exits 1 if the
output has no "finished in" line (h2load failed) or the protocol was not h2.
"""
import math
import re
import sys


def main() -> int:
    path = sys.argv[1]
    text = open(path).read()
    fin = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", text)
    if not fin:
        return 1
    proto = re.search(r"Application protocol: (\S+)", text)
    if not proto or proto.group(1) != "h2":
        print(f"{path}: protocol {proto.group(1) if proto else '?'}, want h2", file=sys.stderr)
        return 1
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored, (\d+) timeout", text)
    succeeded = int(req.group(4)) if req else 0
    errors = sum(int(x) for x in req.groups()[4:7]) if req else 0
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if codes:
        errors += int(codes.group(3)) + int(codes.group(4))
    times = []
    try:
        with open(path + ".log") as f:
            for line in f:
                cols = line.split("\t")
                if len(cols) >= 3:
                    times.append(int(cols[2]))
    except OSError:
        pass
    p99_ms = float("nan")
    if times:
        times.sort()
        p99_ms = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)] / 1000.0
    print(f"{float(fin.group(1)):.0f} {p99_ms:.3f} {errors} {succeeded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
