//! Reading interface state from inside a namespace (`ip -j`), for assertions.

use std::net::IpAddr;

use crate::Netns;

/// The addresses on `ifname` in `ns` as `ip -j addr show dev IFNAME` lists them (empty on any error).
pub fn addresses(ns: &Netns, ifname: &str) -> Vec<IpAddr> {
    let Ok(json) = ns.exec_checked(&["ip", "-j", "addr", "show", "dev", ifname]) else {
        return Vec::new();
    };
    json_string_values(&json, "local")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// Whether `ifname` in `ns` currently carries `ip` (any prefix length).
pub fn has_address(ns: &Netns, ifname: &str, ip: IpAddr) -> bool {
    addresses(ns, ifname).contains(&ip)
}

/// The link-layer address (lower-case `aa:bb:cc:dd:ee:ff`) of `ip`'s neighbour entry in `ns`, if there is a
/// complete one (`ip -j neigh show to IP`; entries without an lladdr, e.g. FAILED, give `None`).
pub fn neigh_mac(ns: &Netns, ip: IpAddr) -> Option<String> {
    let json = ns
        .exec_checked(&["ip", "-j", "neigh", "show", "to", &ip.to_string()])
        .ok()?;
    json_string_values(&json, "lladdr")
        .first()
        .map(|mac| mac.to_ascii_lowercase())
}

/// The MAC address (lower-case) of `ifname` in `ns` (`ip -j link show dev IFNAME`).
pub fn link_mac(ns: &Netns, ifname: &str) -> Option<String> {
    let json = ns
        .exec_checked(&["ip", "-j", "link", "show", "dev", ifname])
        .ok()?;
    json_string_values(&json, "address")
        .first()
        .map(|mac| mac.to_ascii_lowercase())
}

/// Every string value of `"key":"value"` pairs in `ip -j` output. `ip` never escapes inside these values
/// (addresses and MACs), so a scan is enough and avoids a JSON dependency.
fn json_string_values(json: &str, key: &str) -> Vec<String> {
    let needle = format!("\"{key}\":\"");
    json.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &json[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scans_local_addresses_from_ip_json() {
        let json = r#"[{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"198.18.0.11","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#;
        let found = json_string_values(json, "local");
        assert_eq!(found, ["198.18.0.11", "fe80::1"]);
        assert!(json_string_values("[]", "local").is_empty());
    }
}
