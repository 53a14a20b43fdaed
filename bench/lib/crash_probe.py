#!/usr/bin/env python3
"""One crash-takeover trial for bench/failover. Run it INSIDE the client namespace.

1. Checks that VIP:PORT answers with the victim's name (so the client's ARP entry points at the
   victim), retrying for up to --ready-timeout seconds.
2. Sleeps a random fraction of --phase seconds (the crash then lands at a random point of the
   advertisement cycle instead of always just after one).
3. t0: SIGSTOPs then SIGKILLs every process in the victim's namespace (`ip netns pids`) and takes
   the victim's switch port down (`ip -n SWITCH link set PORT down`): a host crash as the LAN sees it.
4. Starts a non-blocking TCP connect to VIP:PORT every --interval seconds; each attempt lives at
   most --attempt-timeout seconds. The first attempt that connects AND reads a name other than the
   victim's ends the trial; its completion time minus t0 is the takeover time.

Prints one JSON line: {"ok": true, "takeover_ms": ..., "crash_ms": ..., "answered_by": ...,
"attempts": ...}, or {"ok": false, "error": ...} with exit status 1. Every loop is bounded.
"""
import argparse
import errno
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time


def ask_name(vip: str, port: int, timeout: float) -> str | None:
    """Blocking connect + read of the serving balancer's name (None on any failure)."""
    try:
        with socket.create_connection((vip, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while len(data) < 64:
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace")
    except OSError:
        return None


def crash(victim_ns: str, switch_ns: str, port_name: str) -> None:
    """Freeze and SIGKILL everything in victim_ns, then pull its cable.

    Every process is SIGSTOPped before any is killed: keepalived's VRRP child has a parent-death
    signal (SIGTERM), and killing the parent first would let the child send a priority-0 "shutdown"
    advert, a graceful stop rather than a crash. A stopped process cannot act on that SIGTERM.
    Raises if the cable cannot be pulled.
    """
    frozen: set[int] = set()
    for _ in range(5):  # until no new process appears (a parent may have forked meanwhile)
        out = subprocess.run(["ip", "netns", "pids", victim_ns], capture_output=True, text=True, check=False)
        pids = {int(w) for w in out.stdout.split() if w.isdigit()}
        new = pids - frozen
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        frozen |= new
    for pid in frozen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "-n", switch_ns, "link", "set", port_name, "down"], check=True)


class Attempt:
    """One in-flight non-blocking connect (and then read of the name)."""

    def __init__(self, vip: str, port: int, started: float):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.started = started
        self.connected_at: float | None = None
        self.data = b""
        err = self.sock.connect_ex((vip, port))
        self.failed = err not in (0, errno.EINPROGRESS)
        if err == 0:
            self.connected_at = time.monotonic()

    def close(self) -> None:
        self.sock.close()


def probe(args: argparse.Namespace, t0: float) -> dict:
    sel = selectors.DefaultSelector()
    inflight: list[Attempt] = []
    attempts = 0
    deadline = t0 + args.limit
    next_start = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return {"ok": False, "error": f"no takeover within {args.limit} s", "attempts": attempts}
            if now >= next_start:
                a = Attempt(args.vip, args.port, now)
                attempts += 1
                next_start += args.interval
                if a.failed:
                    a.close()
                else:
                    inflight.append(a)
                    events = selectors.EVENT_READ if a.connected_at else selectors.EVENT_WRITE
                    sel.register(a.sock, events, a)
            wait = max(0.0, min(next_start, deadline) - time.monotonic())
            for key, _ in sel.select(timeout=wait):
                a: Attempt = key.data
                if a.connected_at is None:
                    err = a.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err != 0:
                        sel.unregister(a.sock)
                        inflight.remove(a)
                        a.close()
                        continue
                    a.connected_at = time.monotonic()
                    sel.modify(a.sock, selectors.EVENT_READ, a)
                    continue
                try:
                    chunk = a.sock.recv(64)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    a.data += chunk
                    continue
                # EOF: the service wrote its whole name and closed.
                name = a.data.decode(errors="replace")
                sel.unregister(a.sock)
                inflight.remove(a)
                a.close()
                if name and name != args.victim_name:
                    return {
                        "ok": True,
                        "takeover_ms": round((a.connected_at - t0) * 1000, 1),
                        "answered_by": name,
                        "attempts": attempts,
                    }
            # Expire attempts older than the per-attempt timeout.
            now = time.monotonic()
            for a in [a for a in inflight if now - a.started > args.attempt_timeout]:
                sel.unregister(a.sock)
                inflight.remove(a)
                a.close()
    finally:
        for a in inflight:
            a.close()
        sel.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vip", required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--victim-ns", required=True)
    p.add_argument("--victim-name", required=True)
    p.add_argument("--switch-ns", required=True)
    p.add_argument("--switch-port", required=True)
    p.add_argument("--phase", type=float, default=1.0, help="random delay before the crash: U(0, PHASE) s")
    p.add_argument("--interval", type=float, default=0.010, help="seconds between connect attempts")
    p.add_argument("--attempt-timeout", type=float, default=0.200, help="lifetime of one attempt, s")
    p.add_argument("--ready-timeout", type=float, default=10.0)
    p.add_argument("--limit", type=float, default=20.0, help="give up this many seconds after the crash")
    args = p.parse_args()

    ready_deadline = time.monotonic() + args.ready_timeout
    last = None
    while True:
        last = ask_name(args.vip, args.port, 0.3)
        if last == args.victim_name:
            break
        if time.monotonic() >= ready_deadline:
            print(json.dumps({"ok": False, "error": f"before the crash the VIP answered {last!r}, "
                              f"not {args.victim_name!r}"}))
            return 1
        time.sleep(0.05)

    time.sleep(random.uniform(0.0, args.phase))
    t0 = time.monotonic()
    crash(args.victim_ns, args.switch_ns, args.switch_port)
    crash_ms = round((time.monotonic() - t0) * 1000, 1)
    result = probe(args, t0)
    result["crash_ms"] = crash_ms
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
