//! The http block's `geo` and `split_clients` -> [`crate::vars`], and where each variable is
//! first used (so an unknown variable found later, when the proxy compiles the configuration,
//! is reported at the line of the directive that uses it).

use std::net::IpAddr;

use super::{Arg, Importer, Node};
use crate::vars::{GeoConfig, GeoNetwork, SplitBucket, SplitClientsConfig};

/// The first position of every `$name` in the arguments of `nodes` (recursively) is recorded
/// as `http.vars.NAME` (lower case).
pub(super) fn variable_uses(nodes: &[Node], out: &mut Vec<(String, super::Pos)>) {
    for node in nodes {
        for arg in &node.args {
            for name in names_in(&arg.text) {
                let key = format!("http.vars.{name}");
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, arg.pos.clone()));
                }
            }
        }
        if let Some(block) = &node.block {
            variable_uses(block, out);
        }
    }
}

/// The variable names `text` mentions (`$name`, `${name}`), lower case; `$1`.. excluded.
fn names_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 1),
            }
        } else {
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&after[..len], len.max(1).min(after.len()))
        };
        if !name.is_empty() && !name.bytes().all(|b| b.is_ascii_digit()) {
            names.push(name.to_ascii_lowercase());
        }
        rest = &after[consumed.min(after.len())..];
    }
    names
}

/// `ADDR[/LEN]` as a network with its host bits clear; `Some(true)` in the second place when
/// the address had host bits set (nginx warns "low address bits ... are meaningless").
fn parse_network(text: &str) -> Option<(IpAddr, u8, bool)> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(len) if !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) => {
            len.parse::<u8>().ok().filter(|l| *l <= max)?
        }
        Some(_) => return None,
        None => max,
    };
    let masked = match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    };
    Some((masked, len, masked != addr))
}

/// nginx's `ngx_atofp(text, len, 2)`: a decimal with at most two digits after the point, in
/// hundredths.
fn hundredths(text: &str) -> Option<u32> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (whole.is_empty() && frac.is_empty())
    {
        return None;
    }
    let mut value: u64 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    for _ in frac.len()..2 {
        value = value.checked_mul(10)?;
    }
    u32::try_from(value).ok()
}

impl Importer<'_> {
    /// The `$name` of a defining directive's argument.
    fn defined_name(&mut self, arg: &Arg) -> Option<String> {
        match arg.text.strip_prefix('$').filter(|n| !n.is_empty()) {
            Some(name) => Some(name.to_owned()),
            None => {
                self.err(
                    &arg.pos,
                    format!("invalid variable name \"{}\"", arg.text),
                    Some("$name"),
                );
                None
            }
        }
    }

    /// `geo [$SOURCE] $VARIABLE { ... }`.
    pub(super) fn geo(&mut self, node: &Node, index: usize) -> Option<GeoConfig> {
        let (source, variable) = match node.args.as_slice() {
            [variable] => (None, variable),
            [source, variable] => (Some(self.defined_name(source)?), variable),
            _ => {
                self.err(
                    &node.pos,
                    "invalid number of arguments in \"geo\" directive",
                    Some("geo [$ADDRESS] $VARIABLE { ... }"),
                );
                return None;
            }
        };
        let variable = self.defined_name(variable)?;
        let block = self.block(node);
        self.record(format!("http.geo[{index}]"), &node.pos);
        let mut networks: Vec<GeoNetwork> = Vec::new();
        for entry in block {
            let add = |imp: &mut Self, networks: &mut Vec<GeoNetwork>, net: String, value: &str| {
                if let Some(old) = networks.iter_mut().find(|n| n.network == net) {
                    imp.warn(
                        entry,
                        format!(
                            "duplicate network \"{net}\", value: \"{value}\", old value: \"{}\"",
                            old.value
                        ),
                    );
                    old.value = value.to_owned();
                } else {
                    networks.push(GeoNetwork {
                        network: net,
                        value: value.to_owned(),
                    });
                }
            };
            match (entry.name.as_str(), entry.args.as_slice()) {
                ("default", [value]) => {
                    add(self, &mut networks, "0.0.0.0/0".into(), &value.text);
                    add(self, &mut networks, "::/0".into(), &value.text);
                }
                ("include" | "proxy" | "proxy_recursive" | "ranges", _) => self.err(
                    &entry.pos,
                    format!("\"{}\" inside \"geo\" is not supported by halo", entry.name),
                    Some("default, ADDRESS[/LENGTH] VALUE, delete"),
                ),
                ("delete", [net]) => match parse_network(&net.text) {
                    Some((addr, len, _)) => {
                        let net = format!("{addr}/{len}");
                        networks.retain(|n| n.network != net);
                    }
                    None => self.err(
                        &net.pos,
                        format!("invalid network \"{}\"", net.text),
                        Some("ADDRESS[/LENGTH]"),
                    ),
                },
                (net, [value]) => match parse_network(net) {
                    Some((addr, len, low_bits)) => {
                        if low_bits {
                            self.warn(entry, format!("low address bits of {net} are meaningless"));
                        }
                        add(self, &mut networks, format!("{addr}/{len}"), &value.text);
                    }
                    None => self.err(
                        &entry.pos,
                        format!("invalid network \"{net}\""),
                        Some("ADDRESS[/LENGTH] VALUE"),
                    ),
                },
                _ => self.err(
                    &entry.pos,
                    "invalid number of the geo parameters",
                    Some("ADDRESS[/LENGTH] VALUE;"),
                ),
            }
        }
        Some(GeoConfig {
            source,
            variable,
            networks,
        })
    }

    /// `split_clients STRING $VARIABLE { P% VALUE; ... * VALUE; }`.
    pub(super) fn split_clients(
        &mut self,
        node: &Node,
        index: usize,
    ) -> Option<SplitClientsConfig> {
        let [source, variable] = node.args.as_slice() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"split_clients\" directive",
                Some("split_clients STRING $VARIABLE { ... }"),
            );
            return None;
        };
        let variable = self.defined_name(variable)?;
        let block = self.block(node);
        self.record(format!("http.split_clients[{index}]"), &node.pos);
        let mut buckets = Vec::new();
        let mut sum: u32 = 0;
        for entry in block {
            let [value] = entry.args.as_slice() else {
                self.err(
                    &entry.pos,
                    "invalid number of arguments in \"split_clients\" entry",
                    Some("PERCENT% VALUE;"),
                );
                continue;
            };
            let percent = if entry.name == "*" {
                None
            } else {
                match entry
                    .name
                    .strip_suffix('%')
                    .and_then(hundredths)
                    .filter(|p| *p > 0)
                {
                    Some(p) => Some(p),
                    None => {
                        self.err(
                            &entry.pos,
                            format!("invalid percent value \"{}\"", entry.name),
                            Some("a percentage such as 12.5%, or *"),
                        );
                        continue;
                    }
                }
            };
            sum = percent.map_or(10_000, |p| sum.saturating_add(p));
            if sum > 10_000 {
                self.err(&entry.pos, "percent total is greater than 100%", None);
                return None;
            }
            buckets.push(SplitBucket {
                percent,
                value: value.text.clone(),
            });
        }
        Some(SplitClientsConfig {
            source: source.text.clone(),
            variable,
            buckets,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn networks_and_percentages_parse_as_nginx_reads_them() {
        assert_eq!(
            parse_network("192.0.2.7/24"),
            Some(("192.0.2.0".parse().unwrap(), 24, true))
        );
        assert_eq!(
            parse_network("10.1.2.3"),
            Some(("10.1.2.3".parse().unwrap(), 32, false))
        );
        assert_eq!(
            parse_network("2001:db8::/32"),
            Some(("2001:db8::".parse().unwrap(), 32, false))
        );
        assert_eq!(parse_network("10.0.0.0/33"), None);
        assert_eq!(parse_network("nonsense"), None);
        assert_eq!(hundredths("5"), Some(500));
        assert_eq!(hundredths("0.5"), Some(50));
        assert_eq!(hundredths("12.34"), Some(1234));
        assert_eq!(hundredths("12.345"), None);
        assert_eq!(hundredths("x"), None);
        assert_eq!(
            names_in("${remote_addr}AAA $Cookie_x $1 $"),
            ["remote_addr", "cookie_x"]
        );
    }
}
