//! `listen ... proxy_protocol`: the PROXY protocol header (v1 text or v2 binary, as HAProxy,
//! ELB and others send it) read before anything else on the connection. Exactly the header's
//! bytes are consumed, so TLS or HTTP starts on the next byte; the `ppp` crate parses it.

use std::io;
use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// What the header says of the connection the proxy accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proxied {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// v1's longest header, CRLF included (the specification's 107).
const V1_MAX: usize = 107;
/// The largest v2 header halo reads (nginx reads it within its header buffer too).
const V2_MAX: usize = 4096;

/// How far a header is known from its first bytes.
#[derive(Debug, PartialEq, Eq)]
enum Extent {
    /// The header is this many bytes.
    Complete(usize),
    /// Every byte so far belongs to the header; more are needed.
    NeedMore,
    Invalid,
}

fn extent(bytes: &[u8]) -> Extent {
    if bytes.len() >= V2_SIGNATURE.len() && bytes.starts_with(V2_SIGNATURE) {
        if bytes.len() < 16 {
            return Extent::NeedMore;
        }
        let total = 16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        return match total {
            t if t > V2_MAX => Extent::Invalid,
            t if bytes.len() >= t => Extent::Complete(t),
            _ => Extent::NeedMore,
        };
    }
    if bytes.len() >= V1_PREFIX.len() && bytes.starts_with(V1_PREFIX) {
        return match bytes.windows(2).position(|w| w == b"\r\n") {
            Some(at) if at + 2 <= V1_MAX => Extent::Complete(at + 2),
            Some(_) => Extent::Invalid,
            None if bytes.len() >= V1_MAX => Extent::Invalid,
            None => Extent::NeedMore,
        };
    }
    let n = bytes.len();
    if V2_SIGNATURE.starts_with(&bytes[..n.min(12)]) || V1_PREFIX.starts_with(&bytes[..n.min(6)]) {
        Extent::NeedMore
    } else {
        Extent::Invalid
    }
}

/// The addresses of a complete header; `None` for `LOCAL` / `UNKNOWN` (health checks of the
/// proxy itself), which keep the connection's own addresses.
fn addresses(header: &[u8]) -> io::Result<Option<Proxied>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    // nginx reads nothing after v1's UNKNOWN (the specification allows anything there).
    if header.starts_with(b"PROXY UNKNOWN") {
        return Ok(None);
    }
    // A v2 address family the specification does not define: nginx keeps the connection,
    // without addresses.
    if header.starts_with(V2_SIGNATURE)
        && header.len() >= 16
        && header[12] >> 4 == 2
        && header[12] & 0x0f <= 1
        && header[13] >> 4 > 3
    {
        return Ok(None);
    }
    match ppp::HeaderResult::parse(header) {
        ppp::HeaderResult::V1(Ok(h)) => Ok(match h.addresses {
            ppp::v1::Addresses::Tcp4(a) => Some(Proxied {
                source: SocketAddr::from((a.source_address, a.source_port)),
                destination: SocketAddr::from((a.destination_address, a.destination_port)),
            }),
            ppp::v1::Addresses::Tcp6(a) => Some(Proxied {
                source: SocketAddr::from((a.source_address, a.source_port)),
                destination: SocketAddr::from((a.destination_address, a.destination_port)),
            }),
            ppp::v1::Addresses::Unknown => None,
        }),
        ppp::HeaderResult::V2(Ok(h)) => {
            if h.command == ppp::v2::Command::Local {
                return Ok(None);
            }
            Ok(match h.addresses {
                ppp::v2::Addresses::IPv4(a) => Some(Proxied {
                    source: SocketAddr::from((a.source_address, a.source_port)),
                    destination: SocketAddr::from((a.destination_address, a.destination_port)),
                }),
                ppp::v2::Addresses::IPv6(a) => Some(Proxied {
                    source: SocketAddr::from((a.source_address, a.source_port)),
                    destination: SocketAddr::from((a.destination_address, a.destination_port)),
                }),
                ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
            })
        }
        ppp::HeaderResult::V1(Err(e)) => Err(bad(format!("broken PROXY v1 header: {e}"))),
        ppp::HeaderResult::V2(Err(e)) => Err(bad(format!("broken PROXY v2 header: {e}"))),
    }
}

/// Reads the header off `stream`: peeks at what arrived, consumes exactly the header, and
/// waits for more only when the bytes so far are a header's beginning. The caller bounds the
/// time (`client_header_timeout`).
pub(crate) async fn read_header(stream: &mut TcpStream) -> io::Result<Option<Proxied>> {
    let mut taken: Vec<u8> = Vec::new();
    let mut peeked = [0u8; 512];
    loop {
        let n = stream.peek(&mut peeked).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut seen = taken.clone();
        seen.extend_from_slice(&peeked[..n]);
        match extent(&seen) {
            Extent::Complete(total) => {
                let mut rest = vec![0u8; total - taken.len()];
                stream.read_exact(&mut rest).await?;
                taken.extend_from_slice(&rest);
                return addresses(&taken);
            }
            Extent::NeedMore => {
                // For a v2 header whose length is known, wait for all of it at once.
                let want = match seen.len() >= 16 && seen.starts_with(V2_SIGNATURE) {
                    true => {
                        16 + usize::from(u16::from_be_bytes([seen[14], seen[15]])) - taken.len()
                    }
                    false => n,
                };
                let mut more = vec![0u8; want];
                stream.read_exact(&mut more).await?;
                taken.extend_from_slice(&more);
            }
            Extent::Invalid => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "no PROXY protocol header",
                ))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn extents() {
        assert_eq!(extent(b"PROX"), Extent::NeedMore);
        assert_eq!(extent(b"PROXY TCP4 1.2.3.4"), Extent::NeedMore);
        assert_eq!(
            extent(b"PROXY TCP4 198.18.0.1 198.18.0.2 1000 80\r\nGET /"),
            Extent::Complete(42)
        );
        assert_eq!(extent(b"GET / HTTP/1.1\r\n"), Extent::Invalid);
        assert_eq!(extent(&[0x16, 3, 1]), Extent::Invalid);
        assert_eq!(extent(b"\r\n\r\n\0"), Extent::NeedMore);
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0, 12]);
        assert_eq!(extent(&v2), Extent::NeedMore);
        v2.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2, 0x03, 0xe8, 0, 80]);
        assert_eq!(extent(&v2), Extent::Complete(28));
        assert_eq!(
            addresses(&v2).unwrap(),
            Some(Proxied {
                source: "198.18.0.1:1000".parse().unwrap(),
                destination: "198.18.0.2:80".parse().unwrap(),
            })
        );
        assert_eq!(
            addresses(b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 443\r\n")
                .unwrap()
                .map(|p| p.source),
            Some("[2001:db8::1]:1000".parse().unwrap())
        );
        assert_eq!(addresses(b"PROXY UNKNOWN\r\n").unwrap(), None);
        assert_eq!(addresses(b"PROXY UNKNOWN 1 2 3 4 5 6\r\n").unwrap(), None);
        let mut odd = V2_SIGNATURE.to_vec();
        odd.extend_from_slice(&[0x21, 0x41, 0, 4, 1, 2, 3, 4]);
        assert_eq!(addresses(&odd).unwrap(), None);
        assert!(addresses(b"PROXY TCP4 junk 198.18.0.2 1 2\r\n").is_err());
    }
}
