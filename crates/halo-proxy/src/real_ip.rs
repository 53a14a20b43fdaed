//! The realip module (nginx's POST_READ phase at server level, PREACCESS at location level):
//! when the connection comes from a trusted address, the client's address is read from a
//! request header or the PROXY protocol header, and every later stage (`$remote_addr`,
//! `allow`/`deny`, limits, `ip_hash`, logs) sees that address. `$realip_remote_addr` keeps the
//! connection's.

use std::net::SocketAddr;

use halo_config::access::{RealIp, RealIpHeader};
use http::{HeaderMap, HeaderName};

/// A compiled `set_real_ip_from` / `real_ip_header` / `real_ip_recursive` set.
#[derive(Debug)]
pub(crate) struct RealIpRt {
    cfg: RealIp,
    header: Option<HeaderName>,
}

impl RealIpRt {
    pub fn build(cfg: &RealIp) -> Result<RealIpRt, String> {
        let header = match &cfg.header {
            RealIpHeader::ProxyProtocol => None,
            other => Some(
                HeaderName::from_bytes(other.name().as_bytes())
                    .map_err(|_| format!("invalid real_ip_header {:?}", other.name()))?,
            ),
        };
        Ok(RealIpRt {
            cfg: cfg.clone(),
            header,
        })
    }

    /// The client's address for a request on a connection from `peer`, if the module changes
    /// it. `proxied` is the source address the PROXY protocol header gave, if any.
    pub fn client(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        proxied: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        match &self.header {
            None => {
                let source = proxied?;
                let text = source.ip().to_string();
                let (ip, _) = self
                    .cfg
                    .client_from(peer.ip(), std::iter::once(text.as_str()))?;
                // nginx takes the PROXY header's port along with its address.
                Some(SocketAddr::new(ip, source.port()))
            }
            Some(name) => {
                let lines = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
                let lines: Vec<&str> = lines.collect();
                if lines.is_empty() {
                    return None;
                }
                let (ip, port) = self.cfg.client_from(peer.ip(), lines.into_iter())?;
                Some(SocketAddr::new(ip, port.unwrap_or(0)))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use halo_config::access::AddrMatch;

    fn rt(header: RealIpHeader, recursive: bool) -> RealIpRt {
        RealIpRt::build(&RealIp {
            from: vec![AddrMatch::parse("198.18.0.0/24").unwrap().0],
            header,
            recursive,
        })
        .unwrap()
    }

    #[test]
    fn header_and_proxy_protocol_sources() {
        let peer: SocketAddr = "198.18.0.1:40000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "198.19.0.9, 198.18.0.4".parse().unwrap());
        let xff = rt(RealIpHeader::XForwardedFor, true);
        assert_eq!(
            xff.client(peer, &h, None),
            Some("198.19.0.9:0".parse().unwrap())
        );
        // X-Real-IP absent: unchanged.
        assert_eq!(
            rt(RealIpHeader::XRealIp, false).client(peer, &h, None),
            None
        );
        let pp = rt(RealIpHeader::ProxyProtocol, false);
        let source: SocketAddr = "198.19.1.1:5555".parse().unwrap();
        assert_eq!(pp.client(peer, &h, Some(source)), Some(source));
        assert_eq!(pp.client(peer, &h, None), None);
        // An untrusted connection changes nothing.
        let outsider: SocketAddr = "198.19.0.1:1".parse().unwrap();
        assert_eq!(xff.client(outsider, &h, None), None);
    }
}
