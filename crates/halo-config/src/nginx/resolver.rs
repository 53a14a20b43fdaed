//! nginx's `resolver` and `resolver_timeout` -> [`Resolver`], each inherited on its own as
//! nginx merges them (an inner level that sets one replaces the outer value).

use std::net::SocketAddr;
use std::time::Duration;

use super::{Importer, Node};
use crate::resolver::{parse_server, Resolver};

/// What one level (http, server, location) set of `resolver` and `resolver_timeout`.
#[derive(Clone, Default)]
pub(super) struct ResolverScope {
    servers: Option<(Vec<SocketAddr>, Option<Duration>, bool)>,
    timeout: Option<Duration>,
}

impl ResolverScope {
    /// This level's settings, falling back to `outer` for what it does not set.
    pub(super) fn over(&self, outer: &ResolverScope) -> ResolverScope {
        ResolverScope {
            servers: self.servers.clone().or_else(|| outer.servers.clone()),
            timeout: self.timeout.or(outer.timeout),
        }
    }

    /// The resolver in effect, `None` without a `resolver` directive.
    pub(super) fn resolver(&self) -> Option<Resolver> {
        let (servers, valid, ipv6) = self.servers.clone()?;
        Some(Resolver {
            servers,
            valid,
            ipv6,
            timeout: self.timeout.unwrap_or(Duration::from_secs(30)),
        })
    }
}

/// Whether `name` is one of the directives of this file.
pub(super) fn is_resolver_directive(name: &str) -> bool {
    matches!(name, "resolver" | "resolver_timeout")
}

impl Importer<'_> {
    /// `resolver` and `resolver_timeout`; false for any other directive.
    pub(super) fn resolver_directive(&mut self, node: &Node, scope: &mut ResolverScope) -> bool {
        match node.name.as_str() {
            "resolver_timeout" => scope.timeout = self.time_one(node).or(scope.timeout),
            "resolver" => {
                if !self.no_block(node) {
                    return true;
                }
                let mut servers = Vec::new();
                let (mut valid, mut ipv6) = (None, true);
                for arg in &node.args {
                    let text = arg.text.as_str();
                    if let Some(time) = text.strip_prefix("valid=") {
                        let value = super::Arg {
                            text: time.to_owned(),
                            pos: arg.pos.clone(),
                        };
                        valid = self.time(node, &value).or(valid);
                    } else if let Some(flag) = text.strip_prefix("ipv6=") {
                        match flag {
                            "on" => ipv6 = true,
                            "off" => ipv6 = false,
                            _ => self.err(
                                &arg.pos,
                                format!("invalid parameter: {text}"),
                                Some("ipv6=on or ipv6=off"),
                            ),
                        }
                    } else if text.starts_with("status_zone=") {
                        self.warn(
                            node,
                            "resolver: status_zone is not implemented by halo; ignored",
                        );
                    } else {
                        match parse_server(text) {
                            Some(addr) => servers.push(addr),
                            None => self.err(
                                &arg.pos,
                                format!("resolver address \"{text}\" is not an IP address"),
                                Some("resolver IP[:PORT]... [valid=TIME] [ipv6=on|off] (halo takes no host names here)"),
                            ),
                        }
                    }
                }
                if servers.is_empty() {
                    self.err(
                        &node.pos,
                        "invalid number of arguments in \"resolver\" directive",
                        Some("resolver ADDRESS[:PORT]... [valid=TIME] [ipv6=on|off];"),
                    );
                    return true;
                }
                scope.servers = Some((servers, valid, ipv6));
            }
            _ => return false,
        }
        true
    }
}
