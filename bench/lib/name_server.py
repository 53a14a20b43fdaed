#!/usr/bin/env python3
"""A trivial TCP service for bench/failover: answers every connection with NAME and closes it.

Usage: name_server.py NAME [PORT]   (binds 0.0.0.0:PORT, default 8080)
It stands in for the proxy on a balancer: once a client's connect through the VIP succeeds and
reads a name, ARP points at that balancer and it is serving.
"""
import socket
import sys


def main() -> None:
    name = sys.argv[1].encode()
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(512)
    while True:
        conn, _ = srv.accept()
        try:
            conn.sendall(name)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
