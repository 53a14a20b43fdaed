//! nginx's `resolver`: the DNS servers named by the directive (never /etc/resolv.conf or
//! /etc/hosts), asked in turn, answers kept for their TTL or for `valid=`, AAAA records too
//! unless `ipv6=off`, a lookup given up after `resolver_timeout`.

use std::net::IpAddr;
use std::sync::OnceLock;

use halo_config::resolver::Resolver as ResolverConfig;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig as HickoryConfig,
    ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

/// One location's `resolver`, built on first use (inside the tokio runtime).
pub(crate) struct DnsResolver {
    cfg: ResolverConfig,
    inner: OnceLock<TokioResolver>,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Why a name has no address; the text is what nginx logs in parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupError {
    /// NXDOMAIN or no record of the asked types (nginx: "3: Host not found").
    NotFound,
    /// No answer within `resolver_timeout` (nginx: "110: Operation timed out").
    TimedOut,
    /// Any other failure (nginx: "2: Server failure").
    Failed(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotFound => f.write_str("3: Host not found"),
            LookupError::TimedOut => f.write_str("110: Operation timed out"),
            LookupError::Failed(why) => write!(f, "2: Server failure: {why}"),
        }
    }
}

impl DnsResolver {
    pub fn new(cfg: &ResolverConfig) -> DnsResolver {
        DnsResolver {
            cfg: cfg.clone(),
            inner: OnceLock::new(),
        }
    }

    fn resolver(&self) -> &TokioResolver {
        self.inner.get_or_init(|| {
            let mut servers = NameServerConfigGroup::with_capacity(self.cfg.servers.len() * 2);
            for addr in &self.cfg.servers {
                let one = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
                servers.merge(one);
            }
            let config = HickoryConfig::from_parts(None, Vec::new(), servers);
            let mut opts = ResolverOpts::default();
            opts.timeout = self.cfg.timeout;
            opts.attempts = 2;
            opts.ndots = 0;
            opts.use_hosts_file = ResolveHosts::Never;
            opts.server_ordering_strategy = ServerOrderingStrategy::RoundRobin;
            opts.ip_strategy = if self.cfg.ipv6 {
                LookupIpStrategy::Ipv4AndIpv6
            } else {
                LookupIpStrategy::Ipv4Only
            };
            if let Some(valid) = self.cfg.valid {
                opts.positive_min_ttl = Some(valid);
                opts.positive_max_ttl = Some(valid);
                opts.negative_min_ttl = Some(valid);
                opts.negative_max_ttl = Some(valid);
            }
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build()
        })
    }

    /// The addresses of `host` (A records first, then AAAA), from the cache while valid.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        // A trailing dot makes the name absolute: no search domain is ever tried.
        let name = if host.ends_with('.') {
            host.to_owned()
        } else {
            format!("{host}.")
        };
        let lookup = self.resolver().lookup_ip(name);
        let answer = match tokio::time::timeout(self.cfg.timeout, lookup).await {
            Err(_) => return Err(LookupError::TimedOut),
            Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => {
                return Err(LookupError::NotFound)
            }
            Ok(Err(e)) => return Err(LookupError::Failed(e.to_string())),
            Ok(Ok(answer)) => answer,
        };
        let mut addrs: Vec<IpAddr> = answer.iter().collect();
        addrs.sort_by_key(IpAddr::is_ipv6);
        if addrs.is_empty() {
            return Err(LookupError::NotFound);
        }
        Ok(addrs)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A DNS server on 127.0.0.1 answering `a.test` A 127.0.0.7 (TTL 60), NOERROR without
    /// records for its AAAA, NXDOMAIN for other names; counts the A queries for `a.test`.
    fn dns_server() -> (u16, Arc<AtomicUsize>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                let q = &buf[..len];
                let mut at = 12;
                let mut labels = Vec::new();
                while at < len && q[at] != 0 {
                    let l = usize::from(q[at]);
                    labels.push(String::from_utf8_lossy(&q[at + 1..at + 1 + l]).to_string());
                    at += 1 + l;
                }
                let qtype = u16::from_be_bytes([q[at + 1], q[at + 2]]);
                let known = labels.join(".") == "a.test";
                let answer = known && qtype == 1;
                if answer {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let mut out = q[..2].to_vec();
                out.extend_from_slice(&[0x85, if known { 0x80 } else { 0x83 }, 0, 1, 0]);
                out.push(u8::from(answer));
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(&q[12..at + 5]);
                if answer {
                    out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 7]);
                }
                let _ = socket.send_to(&out, from);
            }
        });
        (port, asked)
    }

    fn config(port: u16, timeout: Duration) -> ResolverConfig {
        ResolverConfig {
            servers: vec![SocketAddr::from(([127, 0, 0, 1], port))],
            valid: None,
            ipv6: true,
            timeout,
        }
    }

    use std::net::SocketAddr;

    #[tokio::test]
    async fn names_resolve_through_the_listed_server_and_answers_are_cached() {
        let (port, asked) = dns_server();
        let resolver = DnsResolver::new(&config(port, Duration::from_secs(5)));
        let first = resolver.lookup("a.test").await.unwrap();
        assert_eq!(first, vec![IpAddr::from([127, 0, 0, 7])]);
        let again = resolver.lookup("A.TEST").await.unwrap();
        assert_eq!(again, first);
        assert_eq!(asked.load(Ordering::SeqCst), 1, "the TTL keeps the answer");
        assert_eq!(resolver.lookup("b.test").await, Err(LookupError::NotFound));
    }

    #[tokio::test]
    async fn a_silent_server_times_out_after_resolver_timeout() {
        // Bound and never read: queries go unanswered.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let resolver = DnsResolver::new(&config(port, Duration::from_millis(300)));
        let started = std::time::Instant::now();
        assert_eq!(resolver.lookup("a.test").await, Err(LookupError::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
