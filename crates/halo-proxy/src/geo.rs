//! `geo` (`ngx_http_geo_module.c` of nginx 1.22, CIDR form): the value of the most specific
//! network holding an address. IPv4-mapped IPv6 addresses are looked up as IPv4; an address
//! that does not parse is looked up as 255.255.255.255, as nginx does.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use halo_config::vars::GeoConfig;

use crate::handler::RequestCtx;
use crate::variables::{Template, VarSource};

/// A compiled `geo`.
#[derive(Debug)]
pub(crate) struct GeoRt {
    /// `$SOURCE`, when the address is not the client's.
    source: Option<Template>,
    /// Per family, per prefix length (longest first): network bits -> value.
    v4: Vec<(u8, HashMap<u32, String>)>,
    v6: Vec<(u8, HashMap<u128, String>)>,
}

fn mask4(addr: u32, len: u8) -> u32 {
    addr & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(addr: u128, len: u8) -> u128 {
    addr & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl GeoRt {
    pub fn compile(cfg: &GeoConfig, user: &[String]) -> Result<GeoRt, String> {
        let source = match &cfg.source {
            Some(name) => Some(Template::parse_with(&format!("${{{name}}}"), user)?),
            None => None,
        };
        let mut v4: HashMap<u8, HashMap<u32, String>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, String>> = HashMap::new();
        for net in &cfg.networks {
            let bad = || format!("geo ${}: invalid network {:?}", cfg.variable, net.network);
            let (addr, len) = net.network.split_once('/').ok_or_else(bad)?;
            let len: u8 = len.parse().map_err(|_| bad())?;
            match addr.parse::<IpAddr>().map_err(|_| bad())? {
                IpAddr::V4(a) if len <= 32 => {
                    v4.entry(len)
                        .or_default()
                        .insert(mask4(a.into(), len), net.value.clone());
                }
                IpAddr::V6(a) if len <= 128 => {
                    v6.entry(len)
                        .or_default()
                        .insert(mask6(a.into(), len), net.value.clone());
                }
                _ => return Err(bad()),
            }
        }
        let mut v4: Vec<_> = v4.into_iter().collect();
        v4.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
        let mut v6: Vec<_> = v6.into_iter().collect();
        v6.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
        Ok(GeoRt { source, v4, v6 })
    }

    /// The value for `addr`: its most specific network's, else "".
    pub fn lookup(&self, addr: IpAddr) -> &str {
        let addr = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, nets)| nets.get(&mask4(bits, *len)))
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, nets)| nets.get(&mask6(bits, *len)))
            }
        }
        .map_or("", String::as_str)
    }

    pub fn write(&self, ctx: &RequestCtx<'_>, out: &mut String) {
        out.push_str(self.lookup(self.address(ctx)));
    }

    /// The address looked up: the client's (after realip), or `$SOURCE` parsed as an address.
    fn address(&self, ctx: &RequestCtx<'_>) -> IpAddr {
        match &self.source {
            None => ctx.peer.ip(),
            Some(source) => {
                let mut text = String::new();
                source.render_into(ctx as &dyn VarSource, &mut text);
                text.parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use halo_config::vars::GeoNetwork;

    fn geo(nets: &[(&str, &str)]) -> GeoRt {
        GeoRt::compile(
            &GeoConfig {
                source: None,
                variable: "g".into(),
                networks: nets
                    .iter()
                    .map(|(n, v)| GeoNetwork {
                        network: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
            },
            &[],
        )
        .unwrap()
    }

    #[test]
    fn the_most_specific_network_wins() {
        let g = geo(&[
            ("0.0.0.0/0", "default"),
            ("::/0", "default6"),
            ("10.0.0.0/8", "ten"),
            ("10.1.0.0/16", "ten-one"),
            ("10.1.2.3/32", "host"),
            ("2001:db8::/32", "doc"),
            ("2001:db8:1::/48", "doc-1"),
        ]);
        let at = |a: &str| g.lookup(a.parse().unwrap()).to_owned();
        assert_eq!(at("10.9.9.9"), "ten");
        assert_eq!(at("10.1.9.9"), "ten-one");
        assert_eq!(at("10.1.2.3"), "host");
        assert_eq!(at("192.0.2.1"), "default");
        assert_eq!(at("::ffff:10.1.2.3"), "host");
        assert_eq!(at("2001:db8:1::5"), "doc-1");
        assert_eq!(at("2001:db8:2::5"), "doc");
        assert_eq!(at("2001:db9::"), "default6");
        // Without default: "".
        let g = geo(&[("192.0.2.0/24", "doc")]);
        assert_eq!(g.lookup("192.0.2.200".parse().unwrap()), "doc");
        assert_eq!(g.lookup("192.0.3.1".parse().unwrap()), "");
        assert_eq!(g.lookup("::1".parse().unwrap()), "");
    }
}
