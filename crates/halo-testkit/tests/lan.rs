//! The testkit's own topologies, checked as root inside namespaces it creates.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use halo_testkit::{has_address, link_mac, neigh_mac, require_root, wait_until, Lan, Netns};

fn namespace_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn two_hosts_ping_each_other_and_everything_is_removed_on_drop() {
    if !require_root("two_hosts_ping_each_other_and_everything_is_removed_on_drop") {
        return;
    }
    let lan = Lan::new("tk-ping", &["a", "b"]).unwrap();
    lan.add_addr("a", "198.18.0.11/24").unwrap();
    lan.add_addr("b", "198.18.0.12/24").unwrap();
    lan.add_addr("a", "fd00:198:18::11/64").unwrap();
    lan.add_addr("b", "fd00:198:18::12/64").unwrap();

    let b_ip: IpAddr = "198.18.0.12".parse().unwrap();
    assert!(has_address(lan.host("b"), "eth0", b_ip));
    assert!(!has_address(lan.host("a"), "eth0", b_ip));

    let ping = lan
        .host("a")
        .exec(&["ping", "-c", "1", "-W", "2", "198.18.0.12"])
        .unwrap();
    assert!(
        ping.status.success(),
        "ping v4: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let ping6 = lan
        .host("a")
        .exec(&["ping", "-6", "-c", "1", "-W", "2", "fd00:198:18::12"])
        .unwrap();
    assert!(
        ping6.status.success(),
        "ping v6: {}",
        String::from_utf8_lossy(&ping6.stdout)
    );

    // The ping taught a the MAC of b.
    let b_mac = link_mac(lan.host("b"), "eth0").unwrap();
    assert_eq!(neigh_mac(lan.host("a"), b_ip), Some(b_mac));

    // Pulling b's cable makes b unreachable, putting it back heals.
    lan.set_port_up("b", false).unwrap();
    let ping = lan
        .host("a")
        .exec(&["ping", "-c", "1", "-W", "1", "198.18.0.12"])
        .unwrap();
    assert!(!ping.status.success());
    lan.set_port_up("b", true).unwrap();
    wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        lan.host("a")
            .exec(&["ping", "-c", "1", "-W", "1", "198.18.0.12"])
            .is_ok_and(|o| o.status.success())
    })
    .unwrap();

    let names: Vec<String> = ["a", "b"]
        .iter()
        .map(|h| lan.host(h).name().to_string())
        .chain([lan.switch().name().to_string()])
        .collect();
    assert!(names.iter().all(|n| namespace_exists(n)));
    drop(lan);
    assert!(
        names.iter().all(|n| !namespace_exists(n)),
        "namespaces left behind: {names:?}"
    );
}

#[test]
fn netns_kills_spawned_processes_and_is_deleted_even_on_panic() {
    if !require_root("netns_kills_spawned_processes_and_is_deleted_even_on_panic") {
        return;
    }
    let log = std::env::temp_dir().join(format!("halo-testkit-{}-sleep.log", std::process::id()));
    let (name, pid) = std::panic::catch_unwind(|| {
        let ns = Netns::new("tk-panic").unwrap();
        // A process the guard forgets about: the namespace's drop must kill it.
        let child = ns.spawn(&["sleep", "30"], &log).unwrap();
        let pid = child.id();
        std::mem::forget(child);
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            ns.pids().contains(&(pid as i32))
        })
        .unwrap();
        let name = ns.name().to_string();
        std::panic::panic_any((name, pid));
    })
    .unwrap_err()
    .downcast::<(String, u32)>()
    .map(|b| *b)
    .unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(!namespace_exists(&name), "{name} survived the panic");
    // SIGKILL was sent by the drop; delivery is asynchronous, so wait (bounded) until it is gone or a zombie
    // (it was our child and nobody reaps it).
    let dead = || {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        state.is_empty() || state.contains(") Z")
    };
    wait_until(Duration::from_secs(5), Duration::from_millis(10), dead)
        .expect("sleep survived the namespace drop");
}

#[test]
fn run_in_executes_inside_the_namespace() {
    if !require_root("run_in_executes_inside_the_namespace") {
        return;
    }
    let ns = Netns::new("tk-runin").unwrap();
    let own = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let inside = ns
        .run_in(|| std::fs::read_link("/proc/thread-self/ns/net").unwrap())
        .unwrap();
    assert_ne!(own, inside);
    // Only lo exists inside.
    let names = ns
        .run_in(|| {
            nix::net::if_::if_nameindex()
                .unwrap()
                .iter()
                .map(|i| i.name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(names, ["lo"]);
}

#[test]
fn wait_until_is_bounded_and_reports_elapsed() {
    let err = wait_until(Duration::from_millis(50), Duration::from_millis(10), || {
        false
    });
    assert!(err.is_err());
    let mut calls = 0;
    let took = wait_until(Duration::from_secs(1), Duration::from_millis(1), || {
        calls += 1;
        calls == 3
    })
    .unwrap();
    assert!(took < Duration::from_secs(1));
    assert_eq!(calls, 3);
}
