//! A switched LAN: one bridge namespace, one namespace per host, a veth pair for each.

use anyhow::{bail, Context};

use crate::Netns;

/// Name of the bridge in the switch namespace.
const BRIDGE: &str = "br0";
/// Name of each host's interface.
pub const HOST_IFNAME: &str = "eth0";
/// Linux limits interface names to 15 bytes; a port is named `p-<host>`.
const MAX_HOST_NAME: usize = 13;

/// A LAN of hosts on one switch.
///
/// The switch is a namespace `halo-<pid>-<tag>-sw` holding a bridge `br0` with multicast snooping off (so
/// VRRP multicast floods like on a dumb switch). Each host is a namespace `halo-<pid>-<tag>-<host>` whose
/// `eth0` is a veth whose peer, [`Lan::port`], is enslaved to `br0`. Everything is up; hosts have IPv6 DAD
/// off on `eth0` so link-local and added IPv6 addresses are usable at once. Dropping the `Lan` (also during a
/// panic) deletes every namespace, which removes the veths and the bridge with them.
#[derive(Debug)]
pub struct Lan {
    // Hosts are dropped first (declaration order), then the switch.
    hosts: Vec<(String, Netns)>,
    switch: Netns,
}

impl Lan {
    /// Builds the switch and one namespace per name in `hosts` (names: up to 13 ASCII letters/digits).
    pub fn new(tag: &str, hosts: &[&str]) -> anyhow::Result<Lan> {
        let switch = Netns::new(&format!("{tag}-sw"))?;
        switch.exec_checked(&[
            "ip",
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        switch.exec_checked(&["ip", "link", "set", BRIDGE, "up"])?;
        let mut lan = Lan {
            hosts: Vec::new(),
            switch,
        };
        for &host in hosts {
            lan.attach_host(tag, host)
                .with_context(|| format!("adding host {host} to LAN {tag}"))?;
        }
        Ok(lan)
    }

    fn attach_host(&mut self, tag: &str, host: &str) -> anyhow::Result<()> {
        if host.is_empty()
            || host.len() > MAX_HOST_NAME
            || !host.chars().all(|c| c.is_ascii_alphanumeric())
        {
            bail!("host name {host:?} must be 1..={MAX_HOST_NAME} ASCII letters or digits");
        }
        if self.hosts.iter().any(|(name, _)| name == host) {
            bail!("host {host} given twice");
        }
        let ns = Netns::new(&format!("{tag}-{host}"))?;
        let port = port_name(host);
        // Created from inside the switch namespace, the veth never appears in the root namespace.
        self.switch.exec_checked(&[
            "ip",
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            HOST_IFNAME,
            "netns",
            ns.name(),
        ])?;
        self.hosts.push((host.to_string(), ns));
        let ns = self.host(host);
        ns.exec_checked(&["sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"])?;
        ns.exec_checked(&["ip", "link", "set", HOST_IFNAME, "up"])?;
        self.switch
            .exec_checked(&["ip", "link", "set", &port, "master", BRIDGE])?;
        self.switch
            .exec_checked(&["ip", "link", "set", &port, "up"])?;
        Ok(())
    }

    /// The namespace of `host`.
    ///
    /// # Panics
    /// If `host` is not part of this LAN (a bug in the test).
    pub fn host(&self, host: &str) -> &Netns {
        match self.hosts.iter().find(|(name, _)| name == host) {
            Some((_, ns)) => ns,
            None => panic!("no host {host:?} on this LAN"),
        }
    }

    /// The switch namespace (holds `br0` and the ports).
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// The switch-side interface name of `host`'s cable, inside [`Lan::switch`] (for `ip link set ... down`
    /// or nft rules on the bridge).
    pub fn port(&self, host: &str) -> String {
        port_name(host)
    }

    /// Host names in creation order.
    pub fn host_names(&self) -> Vec<&str> {
        self.hosts.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Adds `cidr` (e.g. `198.18.0.11/24` or `fd00:198:18::11/64`) to `host`'s `eth0`.
    pub fn add_addr(&self, host: &str, cidr: &str) -> anyhow::Result<()> {
        let mut cmd = vec!["ip", "addr", "add", cidr, "dev", HOST_IFNAME];
        if cidr.contains(':') {
            cmd.push("nodad");
        }
        self.host(host).exec_checked(&cmd)?;
        Ok(())
    }

    /// Takes `host`'s cable out (switch port down) or puts it back.
    pub fn set_port_up(&self, host: &str, up: bool) -> anyhow::Result<()> {
        let port = self.port(host);
        self.switch
            .exec_checked(&["ip", "link", "set", &port, if up { "up" } else { "down" }])?;
        Ok(())
    }
}

fn port_name(host: &str) -> String {
    format!("p-{host}")
}
