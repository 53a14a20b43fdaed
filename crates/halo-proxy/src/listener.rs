//! Listening sockets: SO_REUSEADDR, IP_FREEBIND (so a VRRP backup can listen on the virtual IP
//! before it holds it), backlog 4096.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::error::ProxyError;

/// nginx uses 511 on Linux by default; halo asks for more and lets `somaxconn` cap it.
const BACKLOG: i32 = 4096;

/// Creates a non-blocking listening socket on `addr` registered with the current tokio runtime.
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    let wrap = |source| ProxyError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(wrap)?;
    socket.set_reuse_address(true).map_err(wrap)?;
    if addr.is_ipv6() {
        // nginx's default `ipv6only=on`: `[::]:80` does not take IPv4 connections.
        socket.set_only_v6(true).map_err(wrap)?;
        socket.set_freebind_v6(true).map_err(wrap)?;
    } else {
        socket.set_freebind_v4(true).map_err(wrap)?;
    }
    socket.set_tcp_nodelay(true).map_err(wrap)?;
    socket.set_nonblocking(true).map_err(wrap)?;
    socket.bind(&addr.into()).map_err(wrap)?;
    socket.listen(BACKLOG).map_err(wrap)?;
    TcpListener::from_std(socket.into()).map_err(wrap)
}
