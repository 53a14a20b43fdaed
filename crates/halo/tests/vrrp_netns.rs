//! End-to-end VRRP tests: halo with halo and with keepalived 2.2.7, in network namespaces on a bridge,
//! addresses in 198.18.0.0/15. They need root (CI runs them with HALO_REQUIRE_NETNS=1).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use halo_testkit::{require_root, Lan};

const VIP: &str = "198.18.0.100";
const HOSTS: [&str; 2] = ["lb1", "lb2"];

fn vip() -> IpAddr {
    VIP.parse().unwrap()
}

/// Two balancers and a client on one LAN: lb1 .1, lb2 .2, cl .10.
fn lan(tag: &str) -> Lan {
    let lan = Lan::new(tag, &["lb1", "lb2", "cl"]).unwrap();
    lan.add_addr("lb1", "198.18.0.1/24").unwrap();
    lan.add_addr("lb2", "198.18.0.2/24").unwrap();
    lan.add_addr("cl", "198.18.0.10/24").unwrap();
    lan
}

/// RFC 3768 §6.1 / RFC 5798 §6.1: Master_Down_Interval = 3 × interval + Skew_Time.
fn master_down(version: u8, interval: Duration, priority: u8) -> Duration {
    let skew = skew(version, interval, priority);
    interval * 3 + skew
}

fn skew(version: u8, interval: Duration, priority: u8) -> Duration {
    let f = f64::from(256 - u32::from(priority)) / 256.0;
    if version == 2 {
        Duration::from_secs_f64(f)
    } else {
        interval.mul_f64(f)
    }
}

/// The client reaches the VIP (TCP) within 1 s, and the answer comes from `want`.
fn client_reaches(lan: &Lan, want: &str) {
    let cl = lan.host("cl");
    let took = halo_testkit::wait_until(Duration::from_secs(1), Duration::from_millis(20), || {
        ask_name(cl, vip()).as_deref() == Some(want)
    });
    assert!(
        took.is_ok(),
        "client did not reach {want} through the VIP within 1 s"
    );
    assert!(ping(cl, vip()), "client cannot ping the VIP");
}

#[test]
fn halo_pair_v3_100ms_crash_term_and_preempt() {
    if !require_root("halo_pair_v3_100ms_crash_term_and_preempt") {
        return;
    }
    let lan = lan("v3fast");
    let s = Scratch::new("v3fast");
    serve_name(lan.host("lb1"), "lb1");
    serve_name(lan.host("lb2"), "lb2");
    let mut c1 = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    c1.state = "MASTER";
    let c2 = KaConf::new(3, 100, "0.1", "198.18.0.100/24");
    let n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    let n2 = start_halo(lan.host("lb2"), &s, "lb2", &c2.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(5)).unwrap();
    client_reaches(&lan, "lb1");
    assert_eq!(instance_state(&n2.state_file).as_deref(), Some("BACKUP"));

    // Host crash of the master: lb2 takes over within Master_Down_Interval + 100 ms.
    let t0 = crash_host(&lan, "lb1");
    drop(n1);
    let limit = master_down(3, Duration::from_millis(100), 100) + Duration::from_millis(100);
    halo_testkit::wait_until(limit * 3, Duration::from_millis(5), || {
        holders(&lan, &["lb2"], vip()) == ["lb2"]
    })
    .unwrap();
    let took = t0.elapsed();
    eprintln!("crash takeover (v3, 100 ms adverts): {took:?} (limit {limit:?})");
    assert!(took <= limit, "takeover took {took:?}, limit {limit:?}");
    client_reaches(&lan, "lb2");

    // lb1 comes back (cable in, halo restarted): it preempts (priority 150 > 100).
    // (The test's own name service in lb1 survived: only the namespace's processes were killed.)
    lan.set_port_up("lb1", true).unwrap();
    let n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(3)).unwrap();
    client_reaches(&lan, "lb1");

    // SIGTERM of the master: priority-0 advert, lb2 takes over after Skew_Time (+100 ms).
    let t0 = Instant::now();
    n1.child.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let limit = skew(3, Duration::from_millis(100), 100) + Duration::from_millis(100);
    halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(5), || {
        holders(&lan, &["lb2"], vip()) == ["lb2"]
    })
    .unwrap();
    let took = t0.elapsed();
    eprintln!("SIGTERM takeover (v3, 100 ms adverts): {took:?} (limit {limit:?})");
    assert!(took <= limit, "takeover took {took:?}, limit {limit:?}");
    // The stopping master released the VIP once lb2 had it (after the handoff grace).
    wait_sole_holder(&lan, &HOSTS, vip(), "lb2", Duration::from_secs(1)).unwrap();
    let mut n1 = n1;
    let status = n1.child.wait_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "halo did not exit 0 on SIGTERM"
    );
    client_reaches(&lan, "lb2");
    let log = std::fs::read_to_string(s.path("lb2.log")).unwrap();
    assert!(log.contains("BACKUP -> MASTER"), "lb2 log: {log}");
}

/// A master that crashes and is restarted at once by its supervisor (as Docker's restart policy does
/// for the seed's nginx) resumes as master without waiting Master_Down_Interval: the VIP is dark only
/// while the process restarts, and the backup never takes over.
#[test]
fn crash_restart_resumes_master_without_takeover() {
    if !require_root("crash_restart_resumes_master_without_takeover") {
        return;
    }
    let lan = lan("resume");
    let s = Scratch::new("resume");
    serve_name(lan.host("lb1"), "lb1");
    let c1 = KaConf::new(2, 150, "1", "198.18.0.100/24");
    let mut c2 = c1.clone();
    c2.priority = 100;
    let mut n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    let n2 = start_halo(lan.host("lb2"), &s, "lb2", &c2.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(8)).unwrap();
    n1.child.kill();
    let t0 = Instant::now();
    let _n1 = start_halo(lan.host("lb1"), &s, "lb1b", &c1.render());
    halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(5), || {
        instance_state(&s.path("lb1b.state.json")).as_deref() == Some("MASTER")
    })
    .expect("restarted master did not resume");
    eprintln!("crash-restart: master again after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(1));
    client_reaches(&lan, "lb1");
    // Longer than lb2's Master_Down_Interval: it never took over.
    std::thread::sleep(master_down(2, Duration::from_secs(1), 100));
    assert_eq!(holders(&lan, &HOSTS, vip()), ["lb1"]);
    assert_eq!(counter(&n2.state_file, "became_master"), 0);
}

#[test]
fn nopreempt_and_preempt_delay() {
    if !require_root("nopreempt_and_preempt_delay") {
        return;
    }
    let lan = lan("preempt");
    let s = Scratch::new("preempt");
    let c2 = KaConf::new(3, 100, "0.1", "198.18.0.100/24");
    let _n2 = start_halo(lan.host("lb2"), &s, "lb2", &c2.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb2", Duration::from_secs(3)).unwrap();

    // nopreempt: the higher priority node joins and stays backup.
    let mut c1 = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    c1.nopreempt = true;
    let n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        instance_state(&n1.state_file).as_deref() == Some("BACKUP")
    })
    .unwrap();
    // Ten master-down intervals without a takeover.
    let observe = master_down(3, Duration::from_millis(100), 150) * 10;
    let deadline = Instant::now() + observe;
    while Instant::now() < deadline {
        assert_eq!(
            holders(&lan, &HOSTS, vip()),
            ["lb2"],
            "nopreempt node took over"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(n1);

    // preempt_delay 1: takeover no sooner than 1 s after start, and not much later.
    let mut c1 = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    c1.preempt_delay = Some("1");
    let t0 = Instant::now();
    let _n1 = start_halo(lan.host("lb1"), &s, "lb1b", &c1.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(5)).unwrap();
    let took = t0.elapsed();
    eprintln!("preempt_delay 1 s: took over after {took:?}");
    assert!(
        took >= Duration::from_secs(1),
        "preempted after {took:?} < 1 s"
    );
    assert!(
        took <= Duration::from_millis(2000),
        "preempted only after {took:?}"
    );
}

/// halo and keepalived, VRRPv2 with PASS authentication, both ways round.
#[test]
fn keepalived_interop_v2_pass() {
    if !require_root("keepalived_interop_v2_pass") {
        return;
    }
    interop(2, "kav2", Some("1111"));
}

/// halo and keepalived, VRRPv3 (IPv4 pseudo-header checksum), both ways round.
#[test]
fn keepalived_interop_v3() {
    if !require_root("keepalived_interop_v3") {
        return;
    }
    interop(3, "kav3", None);
}

fn interop(version: u8, tag: &str, pass: Option<&'static str>) {
    let lan = lan(tag);
    let s = Scratch::new(tag);
    serve_name(lan.host("lb1"), "lb1");
    serve_name(lan.host("lb2"), "lb2");
    // Phase 1: halo (lb1, 150) is master, keepalived (lb2, 100) backup.
    let mut ch = KaConf::new(version, 150, "1", "198.18.0.100/24");
    ch.auth_pass = pass;
    let mut ck = KaConf::new(version, 100, "1", "198.18.0.100/24");
    ck.auth_pass = pass;
    let ka = start_keepalived(lan.host("lb2"), &s, "ka", &ck.render());
    let h = start_halo(lan.host("lb1"), &s, "halo", &ch.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(8)).unwrap();
    client_reaches(&lan, "lb1");
    // keepalived must have seen our adverts and stayed backup for several intervals.
    let ka_log = || std::fs::read_to_string(s.path("ka.log")).unwrap_or_default();
    halo_testkit::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        ka_log().contains("Entering BACKUP STATE")
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(holders(&lan, &HOSTS, vip()), ["lb1"]);
    // Phase 2: halo stops (priority 0), keepalived takes over; halo comes back at priority 50 and
    // stays backup while keepalived is master.
    h.child.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_sole_holder(&lan, &HOSTS, vip(), "lb2", Duration::from_secs(3)).unwrap();
    client_reaches(&lan, "lb2");
    drop(h);
    let mut ch = ch.clone();
    ch.priority = 50;
    let h2 = start_halo(lan.host("lb1"), &s, "halo2", &ch.render());
    halo_testkit::wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        counter(&h2.state_file, "rx_adverts") >= 3
    })
    .unwrap();
    assert_eq!(instance_state(&h2.state_file).as_deref(), Some("BACKUP"));
    assert_eq!(holders(&lan, &HOSTS, vip()), ["lb2"]);
    for c in [
        "drop_checksum",
        "drop_auth",
        "drop_interval",
        "drop_addr_list",
        "drop_ttl",
        "drop_length",
    ] {
        assert_eq!(
            counter(&h2.state_file, c),
            0,
            "halo dropped keepalived's adverts: {c}"
        );
    }
    let log = ka_log();
    let complaints = keepalived_complaints(&log);
    assert!(
        complaints.is_empty(),
        "keepalived complained about halo's adverts:\n{}\n--- full log ---\n{log}",
        complaints.join("\n")
    );
    drop(ka);
}

#[test]
fn ipv6_halo_pair() {
    if !require_root("ipv6_halo_pair") {
        return;
    }
    let lan = lan("v6");
    lan.add_addr("cl", "fd00:198:18::10/64").unwrap();
    let s = Scratch::new("v6");
    let vip6: IpAddr = "fd00:198:18::100".parse().unwrap();
    let mut c1 = KaConf::new(3, 150, "0.1", "fd00:198:18::100/64");
    c1.vrid = 61;
    let mut c2 = c1.clone();
    c2.priority = 100;
    let n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    let _n2 = start_halo(lan.host("lb2"), &s, "lb2", &c2.render());
    wait_sole_holder(&lan, &HOSTS, vip6, "lb1", Duration::from_secs(5)).unwrap();
    let t0 = crash_host(&lan, "lb1");
    drop(n1);
    wait_sole_holder(&lan, &["lb2"], vip6, "lb2", Duration::from_secs(2)).unwrap();
    eprintln!("IPv6 crash takeover: {:?}", t0.elapsed());
    assert!(
        t0.elapsed()
            <= master_down(3, Duration::from_millis(100), 100) + Duration::from_millis(100)
    );
    let ok = halo_testkit::wait_until(Duration::from_secs(1), Duration::from_millis(50), || {
        lan.host("cl")
            .exec(&["ping", "-6", "-c1", "-W1", "fd00:198:18::100"])
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        ok.is_ok(),
        "client cannot reach the IPv6 VIP after takeover"
    );
}

#[test]
fn vip_removed_by_someone_else_is_restored() {
    if !require_root("vip_removed_by_someone_else_is_restored") {
        return;
    }
    let lan = lan("restore");
    let s = Scratch::new("restore");
    let c = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    let n = start_halo(lan.host("lb1"), &s, "lb1", &c.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(3)).unwrap();
    for _ in 0..3 {
        lan.host("lb1")
            .exec_checked(&["ip", "addr", "del", "198.18.0.100/24", "dev", "eth0"])
            .unwrap();
        let took = wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(1))
            .expect("VIP not restored within 1 s");
        eprintln!("VIP restored after {took:?}");
    }
    let restored = || {
        read_state(&n.state_file)
            .and_then(|v| v["instances"]["VI_1"]["addresses_restored"].as_u64())
    };
    halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
        restored() == Some(3)
    })
    .unwrap_or_else(|_| panic!("addresses_restored is {:?}, want 3", restored()));
}

#[test]
fn split_brain_heals_to_one_master() {
    if !require_root("split_brain_heals_to_one_master") {
        return;
    }
    let lan = lan("split");
    let s = Scratch::new("split");
    let c1 = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    let mut c2 = c1.clone();
    c2.priority = 100;
    let _n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    let _n2 = start_halo(lan.host("lb2"), &s, "lb2", &c2.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(3)).unwrap();
    let sw = lan.switch();
    sw.exec_checked(&["nft", "add", "table", "bridge", "halosplit"])
        .unwrap();
    sw.exec_checked(&[
        "nft",
        "add chain bridge halosplit vrrpdrop { type filter hook forward priority 0 ; }",
    ])
    .unwrap();
    sw.exec_checked(&[
        "nft",
        "add rule bridge halosplit vrrpdrop ip protocol vrrp drop",
    ])
    .unwrap();
    halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        holders(&lan, &HOSTS, vip()).len() == 2
    })
    .expect("both should become master while VRRP is dropped");
    std::thread::sleep(Duration::from_secs(5));
    // Let the client learn the loser's MAC last, as can happen during a real split brain.
    let lb2_mac = halo_testkit::link_mac(lan.host("lb2"), "eth0").unwrap();
    let lb1_mac = halo_testkit::link_mac(lan.host("lb1"), "eth0").unwrap();
    let t0 = Instant::now();
    sw.exec_checked(&["nft", "delete", "table", "bridge", "halosplit"])
        .unwrap();
    halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(5), || {
        instance_state(&s.path("lb2.state.json")).as_deref() == Some("BACKUP")
    })
    .unwrap();
    let took = t0.elapsed();
    eprintln!("split brain healed after {took:?}");
    // One advert interval (100 ms), plus the state file's 20 ms write delay and polling.
    assert!(took <= Duration::from_millis(100) + Duration::from_millis(100));
    assert_eq!(
        instance_state(&s.path("lb1.state.json")).as_deref(),
        Some("MASTER")
    );
    // The loser releases the VIP after the handoff grace.
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(1)).unwrap();
    // The winner re-announced: the client's neighbour entry points at lb1.
    let _ = ping(lan.host("cl"), vip());
    let mac = halo_testkit::neigh_mac(lan.host("cl"), vip());
    assert_eq!(mac.as_deref(), Some(lb1_mac.as_str()), "lb2 is {lb2_mac}");
}

/// 20 rapid transitions driven by a tracked file: notify hooks ran in order, with keepalived's
/// arguments, and the last one matches the final state.
#[test]
fn notify_hooks_follow_20_transitions_in_order() {
    if !require_root("notify_hooks_follow_20_transitions_in_order") {
        return;
    }
    let lan = lan("notify");
    let s = Scratch::new("notify");
    let flag = s.path("maintenance");
    std::fs::write(&flag, "0\n").unwrap();
    let log = s.path("notify.log");
    let mut c = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    c.extra_top = format!(
        "track_file maint {{\n    file {}\n    weight 0\n}}\n",
        flag.display()
    );
    c.extra_instance = format!(
        "    track_file {{\n        maint\n    }}\n    notify \"/bin/sh -c 'echo $* >> {}' sh\"\n",
        log.display()
    );
    let n = start_halo(lan.host("lb1"), &s, "lb1", &c.render());
    let state = || instance_state(&n.state_file);
    halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        state().as_deref() == Some("MASTER")
    })
    .unwrap();
    for i in 0..10 {
        std::fs::write(&flag, "1\n").unwrap();
        halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
            state().as_deref() == Some("FAULT")
        })
        .unwrap_or_else(|_| panic!("round {i}: no FAULT"));
        std::fs::write(&flag, "0\n").unwrap();
        halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
            state().as_deref() == Some("MASTER")
        })
        .unwrap_or_else(|_| panic!("round {i}: no MASTER"));
    }
    let final_state = state().unwrap();
    let lines = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    halo_testkit::wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        lines().last().is_some_and(|l| l.contains(&final_state))
    })
    .unwrap();
    let lines = lines();
    // BACKUP at start, MASTER, then 10 × (FAULT, BACKUP on recovery, MASTER).
    assert_eq!(lines.len(), 32, "notify lines: {lines:?}");
    for l in &lines {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w.len(), 4, "keepalived passes 4 arguments: {l}");
        assert_eq!(w[0], "INSTANCE");
        assert_eq!(w[1], "VI_1");
    }
    // In order: after the startup BACKUP, MASTER / FAULT alternate (through BACKUP on recovery).
    let states: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    let masters = states.iter().filter(|s| **s == "MASTER").count();
    let faults = states.iter().filter(|s| **s == "FAULT").count();
    let backups = states.iter().filter(|s| **s == "BACKUP").count();
    assert_eq!(faults, 10, "{states:?}");
    assert_eq!(masters, 11, "{states:?}");
    assert_eq!(backups, 11, "{states:?}");
    for w in states.windows(2) {
        assert_ne!(w[0], w[1], "a state repeated: {states:?}");
        if w[1] == "FAULT" {
            assert_eq!(w[0], "MASTER", "{states:?}");
        }
    }
    assert_eq!(*states.last().unwrap(), final_state);
}

/// keepalived `vrrp_sync_group`: a fault on one member takes the other member down with it, and both
/// come back together.
#[test]
fn sync_group_members_move_together() {
    if !require_root("sync_group_members_move_together") {
        return;
    }
    let lan = lan("sync");
    let s = Scratch::new("sync");
    let flag = s.path("down");
    std::fs::write(&flag, "0\n").unwrap();
    let conf = format!(
        "vrrp_sync_group G1 {{\n    group {{\n        VI_1\n        VI_2\n    }}\n}}\n\
         track_file down {{\n    file {}\n    weight 0\n}}\n\
         vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n        198.18.0.100/24\n    }}\n    track_file {{\n        down\n    }}\n}}\n\
         vrrp_instance VI_2 {{\n    interface eth0\n    virtual_router_id 52\n    priority 150\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n        198.18.0.101/24\n    }}\n}}\n\
         global_defs {{\n    vrrp_version 3\n}}\n",
        flag.display()
    );
    let n = start_halo(lan.host("lb1"), &s, "lb1", &conf);
    let states = || {
        let v = read_state(&n.state_file)?;
        Some((
            v["instances"]["VI_1"]["state"].as_str()?.to_string(),
            v["instances"]["VI_2"]["state"].as_str()?.to_string(),
        ))
    };
    let both = |want: &str| {
        halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
            states() == Some((want.to_string(), want.to_string()))
        })
    };
    both("MASTER").unwrap();
    std::fs::write(&flag, "1\n").unwrap();
    both("FAULT").expect("the group member without the fault did not follow into FAULT");
    let vip2: IpAddr = "198.18.0.101".parse().unwrap();
    assert!(!halo_testkit::has_address(lan.host("lb1"), "eth0", vip2));
    std::fs::write(&flag, "0\n").unwrap();
    both("MASTER").unwrap();
    assert!(halo_testkit::has_address(lan.host("lb1"), "eth0", vip2));
}

/// Sends one raw VRRP datagram from `ns` (address `src`) to 224.0.0.18 with the given TTL.
fn inject(ns: &halo_testkit::Netns, src: std::net::Ipv4Addr, ttl: u32, payload: Vec<u8>) {
    ns.run_in(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
        sock.bind(&std::net::SocketAddr::new(src.into(), 0).into())
            .unwrap();
        sock.set_multicast_if_v4(&src).unwrap();
        sock.set_multicast_ttl_v4(ttl).unwrap();
        let dst = std::net::SocketAddr::new(std::net::Ipv4Addr::new(224, 0, 0, 18).into(), 0);
        sock.send_to(&payload, &dst.into()).unwrap();
    })
    .unwrap();
}

/// Spoofed or broken adverts (all claiming priority 254) change nothing and are counted by reason;
/// a well-formed one from the same sender does take the master down, which proves they arrive.
#[test]
fn spoofed_and_broken_adverts_are_counted_and_ignored() {
    if !require_root("spoofed_and_broken_adverts_are_counted_and_ignored") {
        return;
    }
    use halo_vrrp::{Advert, Authentication, Version};
    let lan = lan("spoof");
    let s = Scratch::new("spoof");
    let mut c = KaConf::new(2, 100, "1", "198.18.0.100/24");
    c.auth_pass = Some("1111");
    c.state = "MASTER";
    let n = start_halo(lan.host("lb1"), &s, "lb1", &c.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(6)).unwrap();
    let src = std::net::Ipv4Addr::new(198, 18, 0, 10);
    let dst: IpAddr = std::net::Ipv4Addr::new(224, 0, 0, 18).into();
    let advert = |vrid: u8, pass: &[u8; 8], interval: u16| {
        Advert {
            version: Version::V2,
            vrid,
            priority: 254,
            adver_int: interval,
            authentication: Authentication::Password(*pass),
            addresses: vec![vip()],
        }
        .encode(src.into(), dst)
        .unwrap()
    };
    let good_pass = b"1111\0\0\0\0";
    let cl = lan.host("cl");
    let cases: Vec<(&str, u32, Vec<u8>)> = vec![
        ("drop_ttl", 254, advert(51, good_pass, 1)),
        ("drop_auth", 255, advert(51, b"2222\0\0\0\0", 1)),
        ("drop_checksum", 255, {
            let mut p = advert(51, good_pass, 1);
            p[7] ^= 0x5a;
            p
        }),
        ("drop_length", 255, advert(51, good_pass, 1)[..10].to_vec()),
        ("drop_interval", 255, advert(51, good_pass, 2)),
    ];
    for (counter_name, ttl, packet) in cases {
        let before = counter(&n.state_file, counter_name);
        inject(cl, src, ttl, packet);
        halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
            counter(&n.state_file, counter_name) == before + 1
        })
        .unwrap_or_else(|_| panic!("{counter_name} was not counted"));
        assert_eq!(instance_state(&n.state_file).as_deref(), Some("MASTER"));
    }
    // Wrong VRID: nobody's advert; counted at the socket.
    let unknown = |n: &Node| {
        read_state(&n.state_file)
            .and_then(|v| v["unknown_vrid"]["eth0"].as_u64())
            .unwrap_or(0)
    };
    let before = unknown(&n);
    inject(cl, src, 255, advert(52, good_pass, 1));
    halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
        unknown(&n) == before + 1
    })
    .expect("wrong VRID not counted");
    assert_eq!(holders(&lan, &HOSTS, vip()), ["lb1"]);
    // Control: the same sender with a valid advert of priority 254 is obeyed.
    inject(cl, src, 255, advert(51, good_pass, 1));
    halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
        instance_state(&n.state_file).as_deref() == Some("BACKUP")
    })
    .expect("a valid higher-priority advert should make the master step down");
}

/// Crash and stop takeover at keepalived's default timing (VRRPv2, 1 s adverts).
#[test]
fn halo_pair_v2_1s_crash_and_term() {
    if !require_root("halo_pair_v2_1s_crash_and_term") {
        return;
    }
    let lan = lan("v2slow");
    let s = Scratch::new("v2slow");
    let mut c1 = KaConf::new(2, 150, "1", "198.18.0.100/24");
    c1.auth_pass = Some("1111");
    let mut c2 = c1.clone();
    c2.priority = 100;
    let n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    let _n2 = start_halo(lan.host("lb2"), &s, "lb2", &c2.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(8)).unwrap();
    let t0 = crash_host(&lan, "lb1");
    drop(n1);
    let limit = master_down(2, Duration::from_secs(1), 100) + Duration::from_millis(100);
    wait_sole_holder(&lan, &["lb2"], vip(), "lb2", limit * 2).unwrap();
    let took = t0.elapsed();
    eprintln!("crash takeover (v2, 1 s adverts): {took:?} (limit {limit:?})");
    assert!(took <= limit);
    lan.set_port_up("lb1", true).unwrap();
    let n1 = start_halo(lan.host("lb1"), &s, "lb1b", &c1.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(8)).unwrap();
    let t0 = Instant::now();
    n1.child.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_sole_holder(&lan, &["lb2"], vip(), "lb2", Duration::from_secs(3)).unwrap();
    let took = t0.elapsed();
    let limit = skew(2, Duration::from_secs(1), 100) + Duration::from_millis(100);
    eprintln!("SIGTERM takeover (v2, 1 s adverts): {took:?} (limit {limit:?})");
    assert!(took <= limit);
    wait_sole_holder(&lan, &HOSTS, vip(), "lb2", Duration::from_secs(1)).unwrap();
}

/// `vrrp_script` with a negative weight: when the check fails, the master's priority drops below the
/// backup's and the backup takes over; when it succeeds again, the master preempts back.
#[test]
fn failing_vrrp_script_moves_the_vip() {
    if !require_root("failing_vrrp_script_moves_the_vip") {
        return;
    }
    let lan = lan("script");
    let s = Scratch::new("script");
    let healthy = s.path("healthy");
    std::fs::write(&healthy, "").unwrap();
    let mut c1 = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    c1.extra_top = format!(
        "vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval 0.2\n    weight -100\n    fall 1\n    rise 1\n}}\n",
        healthy.display()
    );
    c1.extra_instance = "    track_script {\n        chk\n    }\n".into();
    let c2 = KaConf::new(3, 100, "0.1", "198.18.0.100/24");
    let n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    let _n2 = start_halo(lan.host("lb2"), &s, "lb2", &c2.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(5)).unwrap();
    std::fs::remove_file(&healthy).unwrap();
    wait_sole_holder(&lan, &HOSTS, vip(), "lb2", Duration::from_secs(3)).unwrap();
    let prio = read_state(&n1.state_file).unwrap()["instances"]["VI_1"]["effective_priority"]
        .as_u64()
        .unwrap();
    assert_eq!(prio, 50);
    std::fs::write(&healthy, "").unwrap();
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(3)).unwrap();
}

/// SIGHUP: an unchanged instance does not transition; an invalid file keeps the running
/// configuration; a changed priority is applied.
#[test]
fn sighup_reload_keeps_unchanged_instances() {
    if !require_root("sighup_reload_keeps_unchanged_instances") {
        return;
    }
    let lan = lan("reload");
    let s = Scratch::new("reload");
    let c1 = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    let n1 = start_halo(lan.host("lb1"), &s, "lb1", &c1.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(3)).unwrap();
    let transitions =
        || read_state(&n1.state_file).and_then(|v| v["instances"]["VI_1"]["transitions"].as_u64());
    halo_testkit::wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
        instance_state(&n1.state_file).as_deref() == Some("MASTER")
    })
    .unwrap();
    let before = transitions();
    assert_eq!(before, Some(2), "INIT -> BACKUP -> MASTER");
    let log = || std::fs::read_to_string(s.path("lb1.log")).unwrap_or_default();
    let hup = || n1.child.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    // 1. Same file again.
    hup();
    halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        log().matches("reload done").count() == 1
    })
    .unwrap();
    // 2. A broken file: refused, the old configuration keeps running.
    std::fs::write(
        s.path("lb1.conf"),
        c1.render().replace("priority 150", "priority 300"),
    )
    .unwrap();
    hup();
    halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        log().contains("reload refused")
    })
    .unwrap();
    assert_eq!(transitions(), before, "a reload transitioned the instance");
    assert_eq!(instance_state(&n1.state_file).as_deref(), Some("MASTER"));
    assert!(log().contains(":") && log().contains("300"), "{}", log());
    // 3. A valid change (priority 150 -> 160) is applied.
    std::fs::write(
        s.path("lb1.conf"),
        c1.render().replace("priority 150", "priority 160"),
    )
    .unwrap();
    hup();
    halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        read_state(&n1.state_file).and_then(|v| v["instances"]["VI_1"]["priority"].as_u64())
            == Some(160)
    })
    .unwrap();
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(3)).unwrap();
}

/// SMTP alerts reach a real SMTP server (aiosmtpd) once per transition, with keepalived's subject.
#[test]
fn smtp_alert_per_transition() {
    if !require_root("smtp_alert_per_transition") {
        return;
    }
    let lan = lan("smtp");
    let s = Scratch::new("smtp");
    let _sink = lan
        .host("cl")
        .spawn(
            &[
                "/usr/bin/python3",
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                "198.18.0.10:2525",
                "-c",
                "aiosmtpd.handlers.Debugging",
            ],
            s.path("sink.log"),
        )
        .unwrap();
    halo_testkit::wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        lan.host("cl")
            .exec(&["ss", "-ltn", "sport = :2525"])
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("2525"))
    })
    .expect("SMTP sink did not start");
    let mut c = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    c.extra_top = "global_defs {\n    router_id LB_TEST\n    notification_email {\n        ops@example.test\n    }\n    \
                   notification_email_from halo@example.test\n    smtp_server 198.18.0.10 2525\n    smtp_connect_timeout 5\n}\n"
        .into();
    c.extra_instance = "    smtp_alert\n".into();
    let n = start_halo(lan.host("lb1"), &s, "lb1", &c.render());
    let subjects = || -> Vec<String> {
        std::fs::read_to_string(s.path("sink.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Subject:"))
            .map(str::to_string)
            .collect()
    };
    halo_testkit::wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        subjects().len() >= 2
    })
    .unwrap_or_else(|_| panic!("alerts received: {:?}", subjects()));
    assert_eq!(
        subjects(),
        [
            "Subject: [LB_TEST] VRRP Instance VI_1 - Entering BACKUP state",
            "Subject: [LB_TEST] VRRP Instance VI_1 - Entering MASTER state"
        ]
    );
    assert_eq!(instance_state(&n.state_file).as_deref(), Some("MASTER"));
}

/// The native TOML configuration with nothing but the essentials: halo's defaults (VRRPv3, 100 ms
/// adverts) give a crash takeover in well under a second.
#[test]
fn native_toml_defaults_fail_over_in_under_half_a_second() {
    if !require_root("native_toml_defaults_fail_over_in_under_half_a_second") {
        return;
    }
    let lan = lan("native");
    let s = Scratch::new("native");
    // Each node also serves its status endpoint on its own loopback.
    let toml = |prio: u8| {
        format!(
            "[admin]\nstatus_listen = \"127.0.0.1:9100\"\n\n\
             [[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {prio}\n\
             virtual_ipaddress = [{{ addr = \"198.18.0.100\", prefix_len = 24 }}]\n"
        )
    };
    let start = |host: &str, name: &str, prio: u8| {
        let conf = s.write(&format!("{name}.toml"), &toml(prio));
        let state = s.path(&format!("{name}.state.json"));
        let child = lan
            .host(host)
            .spawn(
                &[
                    halo_bin(),
                    "run",
                    "--config",
                    conf.to_str().unwrap(),
                    "--state-file",
                    state.to_str().unwrap(),
                ],
                s.path(&format!("{name}.log")),
            )
            .unwrap();
        Node {
            child,
            state_file: state,
        }
    };
    let n1 = start("lb1", "lb1", 150);
    let _n2 = start("lb2", "lb2", 100);
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(3)).unwrap();
    let t0 = crash_host(&lan, "lb1");
    drop(n1);
    wait_sole_holder(&lan, &["lb2"], vip(), "lb2", Duration::from_secs(2)).unwrap();
    let took = t0.elapsed();
    eprintln!("native defaults, crash takeover: {took:?}");
    assert!(took <= Duration::from_millis(461), "took {took:?}");
    // The new master's metrics say so.
    let metrics = lan
        .host("lb2")
        .run_in(|| common::http_get(9100, "/metrics"))
        .unwrap();
    assert!(
        metrics.contains("halo_vrrp_master{instance=\"VI_1\",vrid=\"51\"} 1"),
        "{metrics}"
    );
    assert!(metrics
        .contains("halo_vrrp_packets_total{instance=\"VI_1\",vrid=\"51\",kind=\"received\"}"));
}

/// `track_interface`: a tracked link going down puts the instance in FAULT (and back when it comes
/// up); so does the instance's own interface losing carrier, as keepalived tracks it implicitly.
#[test]
fn tracked_and_own_interface_down_means_fault() {
    if !require_root("tracked_and_own_interface_down_means_fault") {
        return;
    }
    let lan = lan("ifdown");
    let s = Scratch::new("ifdown");
    let lb1 = lan.host("lb1");
    lb1.exec_checked(&[
        "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1",
    ])
    .unwrap();
    lb1.exec_checked(&["ip", "link", "set", "uplink1", "up"])
        .unwrap();
    lb1.exec_checked(&["ip", "link", "set", "uplink0", "up"])
        .unwrap();
    let mut c = KaConf::new(3, 150, "0.1", "198.18.0.100/24");
    c.extra_instance = "    track_interface {\n        uplink0\n    }\n".into();
    let n = start_halo(lb1, &s, "lb1", &c.render());
    let state_is = |want: &str| {
        halo_testkit::wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
            instance_state(&n.state_file).as_deref() == Some(want)
        })
    };
    state_is("MASTER").unwrap();
    lb1.exec_checked(&["ip", "link", "set", "uplink0", "down"])
        .unwrap();
    state_is("FAULT").expect("tracked interface down: no FAULT");
    assert!(holders(&lan, &HOSTS, vip()).is_empty());
    lb1.exec_checked(&["ip", "link", "set", "uplink0", "up"])
        .unwrap();
    state_is("MASTER").unwrap();
    // The instance's own interface loses carrier (cable pulled at the switch).
    lan.set_port_up("lb1", false).unwrap();
    state_is("FAULT").expect("own interface down: no FAULT");
    lan.set_port_up("lb1", true).unwrap();
    state_is("MASTER").unwrap();
}

/// keepalived's `vrrp_mcast_group4`: halo sends to and listens on the configured group, so it keeps
/// interoperating with a keepalived that uses it (neither hears adverts sent to another group).
#[test]
fn custom_multicast_group_interoperates_with_keepalived() {
    if !require_root("custom_multicast_group_interoperates_with_keepalived") {
        return;
    }
    let lan = lan("mcgrp");
    let s = Scratch::new("mcgrp");
    let group = "global_defs {\n    vrrp_mcast_group4 224.0.0.19\n}\n".to_string();
    let mut ch = KaConf::new(2, 150, "1", "198.18.0.100/24");
    ch.extra_top = group.clone();
    let mut ck = KaConf::new(2, 100, "1", "198.18.0.100/24");
    ck.extra_top = group;
    let _ka = start_keepalived(lan.host("lb2"), &s, "ka", &ck.render());
    let h = start_halo(lan.host("lb1"), &s, "halo", &ch.render());
    wait_sole_holder(&lan, &HOSTS, vip(), "lb1", Duration::from_secs(8)).unwrap();
    let ka_log = || std::fs::read_to_string(s.path("ka.log")).unwrap_or_default();
    halo_testkit::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        ka_log().contains("Entering BACKUP STATE")
    })
    .unwrap();
    // Several advert intervals later keepalived still follows halo.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(holders(&lan, &HOSTS, vip()), ["lb1"], "{}", ka_log());
    // And halo hears keepalived on that group: stopping halo hands over, a restart at a lower
    // priority stays backup while receiving keepalived's adverts.
    h.child.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_sole_holder(&lan, &HOSTS, vip(), "lb2", Duration::from_secs(5)).unwrap();
    drop(h);
    let mut ch2 = ch.clone();
    ch2.priority = 50;
    let h2 = start_halo(lan.host("lb1"), &s, "halo2", &ch2.render());
    halo_testkit::wait_until(Duration::from_secs(6), Duration::from_millis(20), || {
        counter(&h2.state_file, "rx_adverts") >= 2
    })
    .expect("halo heard no advert on 224.0.0.19");
    assert_eq!(instance_state(&h2.state_file).as_deref(), Some("BACKUP"));
}
