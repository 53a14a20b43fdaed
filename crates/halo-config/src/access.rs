//! Access control and the client's address: nginx's access module (`allow`, `deny`),
//! `satisfy`, `limit_except`, and the realip module (`set_real_ip_from`, `real_ip_header`,
//! `real_ip_recursive`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::http::AuthBasic;

/// Which clients an `allow`/`deny` rule or a `set_real_ip_from` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrMatch {
    /// `all`: every client.
    All,
    /// `unix:`: clients on UNIX-domain sockets (halo listens on TCP only, so none).
    Unix,
    /// An address or a CIDR network (host bits cleared).
    Net(IpNet),
}

impl AddrMatch {
    /// Parses `all`, `unix:`, `ADDR` or `ADDR/LEN`. A network with host bits set is accepted
    /// with its host bits cleared, and the returned flag says so (nginx warns then).
    pub fn parse(text: &str) -> Result<(AddrMatch, bool), String> {
        match text {
            "all" => return Ok((AddrMatch::All, false)),
            "unix:" => return Ok((AddrMatch::Unix, false)),
            _ => {}
        }
        if let Ok(ip) = IpAddr::from_str(text) {
            return Ok((AddrMatch::Net(IpNet::from(ip)), false));
        }
        let net = IpNet::from_str(text).map_err(|_| {
            format!(
                "invalid address {text:?} (expected an address, ADDR/LEN, \"all\" or \"unix:\")"
            )
        })?;
        let trunc = net.trunc();
        Ok((AddrMatch::Net(trunc), trunc != net))
    }

    /// Whether `client` is named by this rule. An IPv4-mapped IPv6 client is an IPv4 client,
    /// as in nginx: IPv4 rules see it, IPv6 rules do not.
    pub fn matches(&self, client: IpAddr) -> bool {
        match self {
            AddrMatch::All => true,
            AddrMatch::Unix => false,
            AddrMatch::Net(net) => net.contains(&canonical(client)),
        }
    }
}

/// The address nginx judges: IPv4-mapped IPv6 addresses as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl fmt::Display for AddrMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrMatch::All => f.write_str("all"),
            AddrMatch::Unix => f.write_str("unix:"),
            AddrMatch::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            AddrMatch::Net(net) => write!(f, "{net}"),
        }
    }
}

impl Serialize for AddrMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddrMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match AddrMatch::parse(&text) {
            Ok((m, false)) => Ok(m),
            Ok((_, true)) => Err(serde::de::Error::custom(format!(
                "{text:?} has host bits set; write the network address"
            ))),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}

/// One `allow` or `deny` rule. TOML: `{ allow = "198.18.0.0/15" }`, `{ deny = "all" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessRule {
    /// `allow ADDR`.
    Allow(AddrMatch),
    /// `deny ADDR` (403).
    Deny(AddrMatch),
}

/// The verdict of a list of `allow`/`deny` rules for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessVerdict {
    /// No rule names the client (nginx's DECLINED: the next check decides).
    NoMatch,
    /// The first rule naming the client is `allow`.
    Allowed,
    /// The first rule naming the client is `deny`.
    Denied,
}

/// nginx's access module: the first rule naming the client decides.
pub fn judge(rules: &[AccessRule], client: IpAddr) -> AccessVerdict {
    for rule in rules {
        match rule {
            AccessRule::Allow(m) if m.matches(client) => return AccessVerdict::Allowed,
            AccessRule::Deny(m) if m.matches(client) => return AccessVerdict::Denied,
            _ => {}
        }
    }
    AccessVerdict::NoMatch
}

/// nginx `satisfy`: whether every access check must pass (`all`, the default) or one is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfy {
    /// Every check that applies must allow the request.
    #[default]
    All,
    /// One allowing check is enough (address allowed, or a valid password).
    Any,
}

impl Satisfy {
    /// `true` for the default.
    pub fn is_default(&self) -> bool {
        *self == Satisfy::All
    }
}

/// `limit_except METHOD... { ... }`: requests whose method is not listed are judged by these
/// rules instead of the location's. GET implies HEAD. The importer fills every field with the
/// effective value (what the block sets, else the location's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitExcept {
    /// Methods the location's own rules judge (upper case, e.g. `["GET", "POST"]`).
    pub methods: Vec<String>,
    /// `allow`/`deny` rules for the other methods.
    #[serde(default)]
    pub access: Vec<AccessRule>,
    /// Basic authentication for the other methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_basic: Option<AuthBasic>,
    /// `satisfy` for the other methods.
    #[serde(default, skip_serializing_if = "Satisfy::is_default")]
    pub satisfy: Satisfy,
}

impl LimitExcept {
    /// Whether `method` is one of the listed ones (GET implies HEAD).
    pub fn lists(&self, method: &str) -> bool {
        self.methods
            .iter()
            .any(|m| m == method || (m == "GET" && method == "HEAD"))
    }
}

/// Methods `limit_except` accepts (nginx's list).
pub const LIMIT_EXCEPT_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "MKCOL",
    "COPY",
    "MOVE",
    "OPTIONS",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "PATCH",
];

/// Where the realip module takes the client's address from (nginx `real_ip_header`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RealIpHeader {
    /// `X-Real-IP` (the default).
    #[default]
    XRealIp,
    /// `X-Forwarded-For`: a list, judged right to left.
    XForwardedFor,
    /// The address of the PROXY protocol header (`listen ... proxy_protocol`).
    ProxyProtocol,
    /// Any other request header holding one address.
    Other(String),
}

impl RealIpHeader {
    /// Reads nginx's spelling (header names are case-insensitive).
    pub fn parse(text: &str) -> RealIpHeader {
        if text.eq_ignore_ascii_case("x-real-ip") {
            RealIpHeader::XRealIp
        } else if text.eq_ignore_ascii_case("x-forwarded-for") {
            RealIpHeader::XForwardedFor
        } else if text == "proxy_protocol" {
            RealIpHeader::ProxyProtocol
        } else {
            RealIpHeader::Other(text.to_owned())
        }
    }

    /// nginx's spelling.
    pub fn name(&self) -> &str {
        match self {
            RealIpHeader::XRealIp => "X-Real-IP",
            RealIpHeader::XForwardedFor => "X-Forwarded-For",
            RealIpHeader::ProxyProtocol => "proxy_protocol",
            RealIpHeader::Other(name) => name,
        }
    }
}

impl Serialize for RealIpHeader {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RealIpHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RealIpHeader::parse(&String::deserialize(d)?))
    }
}

/// The realip module: when the connection comes from a trusted address, the client's address
/// is taken from a header (or the PROXY protocol header) for `$remote_addr`, `allow`/`deny`,
/// limits, `ip_hash` and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealIp {
    /// Trusted addresses (nginx `set_real_ip_from`).
    pub from: Vec<AddrMatch>,
    /// Where the address is (nginx `real_ip_header`, default `X-Real-IP`).
    #[serde(default)]
    pub header: RealIpHeader,
    /// Skip trusted addresses in the list from the right (nginx `real_ip_recursive`, off).
    #[serde(default)]
    pub recursive: bool,
}

impl RealIp {
    /// Whether `addr` is trusted.
    pub fn trusts(&self, addr: IpAddr) -> bool {
        self.from.iter().any(|m| m.matches(addr))
    }

    /// nginx's `ngx_http_get_forwarded_addr`: the client's address from the header `lines`
    /// (each an address list, as repeated `X-Forwarded-For` lines are one list), given the
    /// connection's address `peer`. `None` when the peer is not trusted or no address parses.
    ///
    /// Without `recursive` the last address is taken. With it, addresses are taken from the
    /// right while the one taken so far is trusted: the rightmost untrusted address, or the
    /// leftmost when every one is trusted. Elements are separated by commas or spaces. An
    /// element that does not parse ends the walk; the last good address stays.
    pub fn client_from<'a>(
        &self,
        peer: IpAddr,
        lines: impl DoubleEndedIterator<Item = &'a str>,
    ) -> Option<(IpAddr, Option<u16>)> {
        if !self.trusts(peer) {
            return None;
        }
        let mut found: Option<(IpAddr, Option<u16>)> = None;
        let mut current = peer;
        for line in lines.rev() {
            for element in line.rsplit([',', ' ']) {
                if element.is_empty() {
                    continue;
                }
                if found.is_some() && !(self.recursive && self.trusts(current)) {
                    return found;
                }
                let Some((ip, port)) = parse_addr_port(element) else {
                    return found;
                };
                found = Some((ip, port));
                current = ip;
            }
        }
        found
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]` or `[V6]:PORT`, as nginx's `ngx_parse_addr_port`.
pub fn parse_addr_port(text: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = IpAddr::from_str(text) {
        return Some((ip, None));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']')?;
        let ip = IpAddr::from_str(addr).ok()?;
        return match tail {
            "" => Some((ip, None)),
            _ => Some((ip, Some(tail.strip_prefix(':')?.parse().ok()?))),
        };
    }
    let (addr, port) = text.rsplit_once(':')?;
    let ip: std::net::Ipv4Addr = addr.parse().ok()?;
    Some((IpAddr::V4(ip), Some(port.parse().ok()?)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn m(s: &str) -> AddrMatch {
        AddrMatch::parse(s).unwrap().0
    }

    #[test]
    fn networks_match_their_addresses_and_mapped_clients_are_ipv4() {
        assert!(m("198.18.0.0/15").matches(ip("198.19.255.1")));
        assert!(!m("198.18.0.0/15").matches(ip("198.20.0.1")));
        assert!(m("198.18.0.1").matches(ip("::ffff:198.18.0.1")));
        assert!(!m("::/0").matches(ip("::ffff:198.18.0.1")));
        assert!(m("::/0").matches(ip("2001:db8::1")));
        assert!(m("all").matches(ip("::1")));
        assert!(!m("unix:").matches(ip("127.0.0.1")));
    }

    #[test]
    fn host_bits_are_cleared_and_reported() {
        let (net, trimmed) = AddrMatch::parse("198.18.1.7/16").unwrap();
        assert!(trimmed);
        assert_eq!(net.to_string(), "198.18.0.0/16");
        assert!(AddrMatch::parse("198.18.0.0/33").is_err());
        assert!(AddrMatch::parse("localhost").is_err());
    }

    #[test]
    fn first_matching_rule_decides() {
        let rules = [
            AccessRule::Deny(m("198.18.0.1")),
            AccessRule::Allow(m("198.18.0.0/24")),
            AccessRule::Deny(m("all")),
        ];
        assert_eq!(judge(&rules, ip("198.18.0.1")), AccessVerdict::Denied);
        assert_eq!(judge(&rules, ip("198.18.0.2")), AccessVerdict::Allowed);
        assert_eq!(judge(&rules, ip("198.19.0.2")), AccessVerdict::Denied);
        assert_eq!(judge(&rules[..2], ip("198.19.0.2")), AccessVerdict::NoMatch);
    }

    #[test]
    fn toml_spelling_round_trips() {
        #[derive(Serialize, Deserialize)]
        struct T {
            rules: Vec<AccessRule>,
        }
        let t: T =
            toml::from_str(r#"rules = [{ allow = "198.18.0.0/15" }, { deny = "all" }]"#).unwrap();
        assert_eq!(t.rules[1], AccessRule::Deny(AddrMatch::All));
        let back = toml::to_string(&t).unwrap();
        assert!(back.contains("198.18.0.0/15"), "{back}");
        assert!(toml::from_str::<T>(r#"rules = [{ allow = "198.18.0.1/8" }]"#).is_err());
    }

    fn realip(from: &[&str], recursive: bool) -> RealIp {
        RealIp {
            from: from.iter().map(|s| m(s)).collect(),
            header: RealIpHeader::XForwardedFor,
            recursive,
        }
    }

    #[test]
    fn forwarded_address_follows_nginx() {
        let peer = ip("198.18.0.1");
        let r = realip(&["198.18.0.0/24"], false);
        // Untrusted peer: nothing changes.
        assert_eq!(
            r.client_from(ip("198.19.0.1"), ["198.18.5.5"].into_iter()),
            None
        );
        // Not recursive: the last element, trusted or not.
        assert_eq!(
            r.client_from(peer, ["198.18.9.9, 198.18.0.7"].into_iter()),
            Some((ip("198.18.0.7"), None))
        );
        let r = realip(&["198.18.0.0/24"], true);
        // Recursive: the rightmost untrusted.
        assert_eq!(
            r.client_from(peer, ["198.18.9.9, 198.18.0.7, 198.18.0.8"].into_iter()),
            Some((ip("198.18.9.9"), None))
        );
        // All trusted: the leftmost; lines form one list.
        assert_eq!(
            r.client_from(peer, ["198.18.0.3", "198.18.0.7"].into_iter()),
            Some((ip("198.18.0.3"), None))
        );
        // A bad element ends the walk with the last good address.
        assert_eq!(
            r.client_from(peer, ["junk, 198.18.0.7"].into_iter()),
            Some((ip("198.18.0.7"), None))
        );
        assert_eq!(r.client_from(peer, ["junk"].into_iter()), None);
        // Ports are kept.
        assert_eq!(
            r.client_from(peer, ["198.18.9.9:4321"].into_iter()),
            Some((ip("198.18.9.9"), Some(4321)))
        );
        assert_eq!(
            parse_addr_port("[2001:db8::1]:80"),
            Some((ip("2001:db8::1"), Some(80)))
        );
    }
}
