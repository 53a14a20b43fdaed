//! nginx's `resolver` and `resolver_timeout`: the DNS servers that resolve the names of
//! `proxy_pass` URLs made of variables, at request time.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `resolver ADDRESS[:PORT]... [valid=TIME] [ipv6=on|off]` + `resolver_timeout TIME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolver {
    /// The DNS servers, asked in turn (port 53 unless given).
    pub servers: Vec<SocketAddr>,
    /// `valid=`: how long an answer is kept, whatever its TTL; `None` = the answer's TTL.
    #[serde(
        default,
        with = "crate::http::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid: Option<Duration>,
    /// `ipv6=` (on): AAAA records are asked for too.
    #[serde(default = "yes")]
    pub ipv6: bool,
    /// `resolver_timeout` (30s).
    #[serde(default = "thirty_seconds", with = "crate::http::duration")]
    pub timeout: Duration,
}

fn yes() -> bool {
    true
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

/// Parses one `resolver` address: `IP`, `IP:PORT`, `[IPV6]`, `[IPV6]:PORT`; port 53 by default.
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_take_port_53_by_default() {
        assert_eq!(parse_server("127.0.0.1"), "127.0.0.1:53".parse().ok());
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            "127.0.0.1:5353".parse().ok()
        );
        assert_eq!(parse_server("[::1]"), "[::1]:53".parse().ok());
        assert_eq!(parse_server("[::1]:54"), "[::1]:54".parse().ok());
        assert_eq!(parse_server("::1"), "[::1]:53".parse().ok());
        assert_eq!(parse_server("dns.example"), None);
    }
}
