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
