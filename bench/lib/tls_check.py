#!/usr/bin/env python3
"""TLS checks of one listener before it is benchmarked: HOST PORT PATH.

1. a TLS 1.3 connection, GET PATH with "Connection: close": the server must answer and close;
2. a second connection offering the first one's session (and any ticket it got): it must not be
   resumed, so https-close measures a full handshake per request;
3. ALPN "h2, http/1.1" must select h2.
Prints "TLSv1.3 CIPHER, resumption refused, ALPN h2" and exits 0, or prints what failed and exits 1.
"""
import socket
import ssl
import sys


def connect(host, port, alpn, session=None):
    ctx = CTX[alpn]
    sock = socket.create_connection((host, port), timeout=5)
    return ctx.wrap_socket(sock, server_hostname="localhost", session=session)


def get_close(host, port, path, session=None):
    s = connect(host, port, "http/1.1", session)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:  # read to EOF: the server must close; session tickets arrive on the way
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    info = (s.version(), s.cipher()[0], s.session_reused, s.session)
    s.close()
    return data, info


def ctx_for(alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2", "http/1.1"] if alpn == "h2" else ["http/1.1"])
    return ctx


CTX = {"h2": ctx_for("h2"), "http/1.1": ctx_for("http/1.1")}


def main() -> int:
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        data, (version, cipher, _, session) = get_close(host, port, path)
        if not data.startswith(b"HTTP/1.1 200"):
            print(f"GET {path} over TLS: {data[:40]!r}")
            return 1
        if version != "TLSv1.3":
            print(f"negotiated {version}, want TLSv1.3")
            return 1
        _, (_, _, reused, _) = get_close(host, port, path, session)
        if reused:
            print("the second connection resumed the first one's session (want a full handshake)")
            return 1
        s = connect(host, port, "h2")
        alpn = s.selected_alpn_protocol()
        s.close()
        if alpn != "h2":
            print(f"ALPN selected {alpn}, want h2")
            return 1
    except (OSError, ssl.SSLError) as e:
        print(f"{type(e).__name__}: {e}")
        return 1
    print(f"{version} {cipher}, resumption refused, ALPN h2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
