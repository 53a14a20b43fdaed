//! Single-instance behaviour: receive validation, start-up, actions on transitions, GARP schedule,
//! tracking, fault, shutdown, configuration checks, sync groups. Each test names its source.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use halo_vrrp::{
    Action, Advert, Authentication, ConfigError, Instance, InstanceConfig, State, SyncGroup,
    Version,
};

const ME: &str = "198.18.0.1";
const PEER: &str = "198.18.0.2";
const GROUP: &str = "224.0.0.18";
const VIP: &str = "198.18.0.242";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg() -> InstanceConfig {
    InstanceConfig::new("VI_1", 51, ip(ME), vec![ip(VIP)])
}

fn advert_from(version: Version, priority: u8) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority,
        adver_int: if version == Version::V2 { 1 } else { 100 },
        authentication: Authentication::None,
        addresses: vec![ip(VIP)],
    }
}

fn packet(advert: &Advert) -> Vec<u8> {
    advert.encode(ip(PEER), ip(GROUP)).unwrap()
}

/// Delivers `advert` as the peer's multicast advertisement with the TTL RFC 5798 §7.1 requires (255).
fn receive_from_peer(vi: &mut Instance, now: Instant, advert: &Advert) {
    vi.handle_packet(now, ip(PEER), ip(GROUP), 255, &packet(advert));
}

/// Delivers a well-formed VRRPv2 advertisement from the peer with the given priority.
fn peer_advert(vi: &mut Instance, now: Instant, priority: u8) {
    receive_from_peer(vi, now, &advert_from(Version::V2, priority));
}

fn drain(vi: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| vi.poll_action()).collect()
}

fn advert_priorities(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert { packet, .. } => Some(packet[2]),
            _ => None,
        })
        .collect()
}

fn announces(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Announce(_)))
        .count()
}

/// An instance already master at the returned instant, with its actions drained.
fn master(cfg: InstanceConfig) -> (Instance, Instant) {
    let t0 = Instant::now();
    let mut vi = Instance::new(cfg, t0).unwrap();
    let t = vi.poll_timeout().unwrap();
    vi.handle_timeout(t);
    assert_eq!(vi.state(), State::Master);
    drain(&mut vi);
    (vi, t)
}

// ----- receive validation (RFC 5798 §7.1, RFC 3768 §7.1) -----

#[test]
fn each_invalid_packet_is_counted_under_its_reason() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.auth_pass = Some(*b"secret\0\0");
    let mut vi = Instance::new(c, t0).unwrap();
    let good = Advert {
        authentication: Authentication::Password(*b"secret\0\0"),
        ..advert_from(Version::V2, 100)
    };
    let send = |vi: &mut Instance, ttl: u8, bytes: &[u8]| {
        vi.handle_packet(t0, ip(PEER), ip(GROUP), ttl, bytes)
    };

    send(&mut vi, 254, &packet(&good)); // §7.1 TTL must be 255
    send(
        &mut vi,
        255,
        &packet(&Advert {
            version: Version::V3,
            adver_int: 100,
            authentication: Authentication::None,
            ..good.clone()
        }),
    );
    let mut wrong_type = packet(&good);
    wrong_type[0] = 0x22;
    send(&mut vi, 255, &wrong_type);
    send(
        &mut vi,
        255,
        &packet(&Advert {
            vrid: 52,
            ..good.clone()
        }),
    );
    send(&mut vi, 255, &packet(&good)[..10]);
    let mut bad_sum = packet(&good);
    bad_sum[7] ^= 0xff;
    send(&mut vi, 255, &bad_sum);
    send(
        &mut vi,
        255,
        &packet(&Advert {
            authentication: Authentication::Password(*b"wrong\0\0\0"),
            ..good.clone()
        }),
    );
    send(
        &mut vi,
        255,
        &packet(&Advert {
            authentication: Authentication::None,
            ..good.clone()
        }),
    );
    send(
        &mut vi,
        255,
        &packet(&Advert {
            adver_int: 2,
            ..good.clone()
        }),
    ); // RFC 3768 §7.1 interval
    send(
        &mut vi,
        255,
        &packet(&Advert {
            addresses: vec![ip("198.18.0.99")],
            ..good.clone()
        }),
    );
    vi.handle_packet(
        t0,
        ip(PEER),
        ip("198.18.0.1"),
        255,
        &good.encode(ip(PEER), ip(ME)).unwrap(),
    );
    vi.handle_packet(
        t0,
        ip(ME),
        ip(GROUP),
        255,
        &good.encode(ip(ME), ip(GROUP)).unwrap(),
    );
    let v6 = Advert {
        version: Version::V3,
        adver_int: 100,
        authentication: Authentication::None,
        addresses: vec![ip("fd00::1")],
        ..good.clone()
    };
    vi.handle_packet(
        t0,
        ip("fe80::2"),
        ip("ff02::12"),
        255,
        &v6.encode(ip("fe80::2"), ip("ff02::12")).unwrap(),
    );
    send(&mut vi, 255, &packet(&good));

    let c = vi.counters();
    assert_eq!(
        [
            c.drop_ttl,
            c.drop_version,
            c.drop_type,
            c.drop_vrid,
            c.drop_length,
            c.drop_checksum,
            c.drop_auth
        ],
        [1, 2, 1, 1, 1, 1, 2],
        "{c:?}"
    );
    assert_eq!(
        [
            c.drop_interval,
            c.drop_addr_list,
            c.drop_destination,
            c.drop_own_address
        ],
        [1, 1, 1, 1],
        "{c:?}"
    );
    assert_eq!(c.rx_adverts, 1);
}

#[test]
fn unicast_instances_do_not_check_ttl() {
    // keepalived vrrp_check_packet: "MUST verify that the IPv4 TTL/IPv6 HL is 255 (but not if unicast)".
    let t0 = Instant::now();
    let mut c = cfg();
    c.unicast_peers = vec![ip(PEER)];
    let mut vi = Instance::new(c, t0).unwrap();
    let bytes = advert_from(Version::V2, 100)
        .encode(ip(PEER), ip(ME))
        .unwrap();
    vi.handle_packet(t0, ip(PEER), ip(ME), 64, &bytes);
    assert_eq!(vi.counters().rx_adverts, 1);
    // and a multicast advert is refused on a unicast instance
    peer_advert(&mut vi, t0, 100);
    assert_eq!(vi.counters().drop_destination, 1);
}

#[test]
fn skip_check_adv_addr_only_for_the_known_master() {
    // keepalived vrrp_state_backup: with skip_check_adv_addr the address list is checked only when the
    // sender differs from the master we follow.
    let t0 = Instant::now();
    let mut c = cfg();
    c.skip_check_adv_addr = true;
    let mut vi = Instance::new(c, t0).unwrap();
    let other_list = Advert {
        addresses: vec![ip("198.18.0.99")],
        ..advert_from(Version::V2, 150)
    };
    receive_from_peer(&mut vi, t0, &other_list);
    assert_eq!(vi.counters().drop_addr_list, 1, "unknown sender: checked");
    peer_advert(&mut vi, t0, 150);
    receive_from_peer(&mut vi, t0, &other_list);
    assert_eq!(vi.counters().drop_addr_list, 1, "known master: not checked");
    assert_eq!(vi.counters().rx_adverts, 2);
}

// ----- start-up (RFC 5798 §6.4.1, keepalived 2.2.7 vrrp_init_state) -----

#[test]
fn startup_non_owner_waits_master_down_interval_even_with_state_master() {
    // keepalived 2.2.7: `state MASTER` with priority < 255 starts BACKUP like `state BACKUP`
    // (tests/fixtures/timeline.txt: VRIDs 51 and 54 both became master at ~3.61 s).
    for start_as_master in [false, true] {
        let t0 = Instant::now();
        let mut c = cfg();
        c.start_as_master = start_as_master;
        let mut vi = Instance::new(c, t0).unwrap();
        assert_eq!(vi.state(), State::Backup);
        assert_eq!(
            vi.poll_timeout(),
            Some(t0 + Duration::from_micros(3_609_375))
        );
        let actions = drain(&mut vi);
        assert!(matches!(
            &actions[0],
            Action::StateChanged {
                from: State::Initialize,
                to: State::Backup,
                ..
            }
        ));
        assert_eq!(
            actions[1],
            Action::RemoveAddresses(vec![ip(VIP)]),
            "keepalived removes leftover VIPs at start"
        );
    }
}

#[test]
fn startup_owner_with_state_master_is_master_at_once() {
    // RFC 5798 §6.4.1 / keepalived.conf(5) `state`: priority 255 + state MASTER transitions immediately.
    let t0 = Instant::now();
    let mut c = cfg();
    c.priority = 255;
    c.start_as_master = true;
    let mut vi = Instance::new(c.clone(), t0).unwrap();
    assert_eq!(vi.state(), State::Master);
    assert_eq!(advert_priorities(&drain(&mut vi)), vec![255]);
    // Without `state MASTER` keepalived waits 3 intervals + the owner's skew (1/256 s).
    c.start_as_master = false;
    let vi = Instance::new(c, t0).unwrap();
    assert_eq!(vi.state(), State::Backup);
    assert_eq!(
        vi.poll_timeout(),
        Some(t0 + Duration::from_micros(3_003_906))
    );
}

// ----- becoming master and GARP schedule (keepalived vrrp_state_master_tx / become_master) -----

#[test]
fn becoming_master_orders_actions_and_schedules_the_second_garp_burst() {
    let t0 = Instant::now();
    let mut vi = Instance::new(cfg(), t0).unwrap();
    drain(&mut vi);
    let t = vi.poll_timeout().unwrap();
    vi.handle_timeout(t);
    let actions = drain(&mut vi);
    assert!(
        matches!(&actions[0], Action::StateChanged { from: State::Backup, to: State::Master, reason } if reason.starts_with("master down timer expired"))
    );
    assert!(matches!(&actions[1], Action::SendAdvert { dst, .. } if *dst == ip(GROUP)));
    assert_eq!(actions[2], Action::AddAddresses(vec![ip(VIP)]));
    assert_eq!(
        &actions[3..],
        vec![Action::Announce(vec![ip(VIP)]); 5].as_slice(),
        "garp_master_repeat 5"
    );
    // Adver_Timer at +1 s, the second burst (garp_master_delay 5 s) at +5 s.
    assert_eq!(vi.poll_timeout(), Some(t + Duration::from_secs(1)));
    let mut burst = 0;
    let mut adverts = 0;
    while let Some(next) = vi
        .poll_timeout()
        .filter(|n| *n <= t + Duration::from_secs(5))
    {
        vi.handle_timeout(next);
        let a = drain(&mut vi);
        adverts += advert_priorities(&a).len();
        if next == t + Duration::from_secs(5) {
            burst += announces(&a);
        } else {
            assert_eq!(announces(&a), 0);
        }
    }
    assert_eq!((adverts, burst), (5, 5));
    assert_eq!(vi.counters().became_master, 1);
}

#[test]
fn garp_interval_spaces_the_rounds_and_refresh_rides_on_adverts() {
    // keepalived: vrrp_garp_interval spaces messages; garp_master_refresh is checked when an advert is sent.
    let mut c = cfg();
    c.garp.interval = Duration::from_millis(10);
    c.garp.master_delay = Duration::ZERO;
    c.garp.master_refresh = Duration::from_millis(2500);
    c.garp.refresh_repeat = 2;
    let (mut vi, t) = master(c);
    let mut times = Vec::new();
    let end = t + Duration::from_secs(4);
    while let Some(next) = vi.poll_timeout().filter(|n| *n <= end) {
        vi.handle_timeout(next);
        for a in drain(&mut vi) {
            if matches!(a, Action::Announce(_)) {
                times.push(next - t);
            }
        }
    }
    let ms = Duration::from_millis;
    // 4 remaining spaced rounds of the first burst, then the refresh with the 3 s advert (first after 2.5 s).
    assert_eq!(
        times,
        vec![ms(10), ms(20), ms(30), ms(40), ms(3000), ms(3010)]
    );
}

// ----- receiving as master (RFC 5798 §6.4.3) -----

#[test]
fn master_answers_priority_zero_at_once_and_resets_its_timer() {
    let (mut vi, t) = master(cfg());
    let now = t + Duration::from_millis(300);
    peer_advert(&mut vi, now, 0);
    assert_eq!(advert_priorities(&drain(&mut vi)), vec![100]);
    assert_eq!(vi.poll_timeout(), Some(now + Duration::from_secs(1)));
    assert_eq!(vi.counters().rx_priority_zero, 1);
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn master_hearing_lower_priority_reasserts_unless_lower_prio_no_advert() {
    // keepalived vrrp_state_master_rx: advert unless lower_prio_no_advert; GARPs per garp_lower_prio_repeat.
    let (mut vi, t) = master(cfg());
    peer_advert(&mut vi, t, 50);
    let a = drain(&mut vi);
    assert_eq!((advert_priorities(&a), announces(&a)), (vec![100], 5));

    let mut c = cfg();
    c.lower_prio_no_advert = true;
    c.garp.lower_prio_repeat = 0;
    let (mut vi, t) = master(c);
    peer_advert(&mut vi, t, 50);
    assert!(drain(&mut vi).is_empty(), "RFC 5798 §6.4.3: discard");
    assert_eq!(vi.state(), State::Master);
    // Equal priority from a lower address is also "lower" (RFC 5798 §6.4.3 tie-break).
    let mut c = cfg();
    c.primary_address = ip("198.18.0.3");
    let (mut vi, t) = master(c);
    peer_advert(&mut vi, t, 100);
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn master_hearing_higher_priority_goes_backup_and_removes_addresses() {
    let (mut vi, t) = master(cfg());
    peer_advert(&mut vi, t, 150);
    let a = drain(&mut vi);
    assert!(
        matches!(&a[0], Action::StateChanged { to: State::Backup, reason, .. } if reason.contains("priority 150 > ours 100"))
    );
    assert_eq!(a[1], Action::RemoveAddresses(vec![ip(VIP)]));
    assert_eq!(
        vi.poll_timeout(),
        Some(t + Duration::from_micros(3_609_375))
    );
    assert_eq!(vi.counters().released_master, 1);
}

#[test]
fn two_owners_lower_the_local_priority() {
    // keepalived: "CONFIGURATION ERROR: local instance and a remote instance are both configured as
    // address owner ... reducing local priority".
    let mut c = cfg();
    c.priority = 255;
    c.start_as_master = true;
    let t0 = Instant::now();
    let mut vi = Instance::new(c, t0).unwrap();
    drain(&mut vi);
    peer_advert(&mut vi, t0, 255);
    assert_eq!(vi.effective_priority(), 254);
    assert_eq!(vi.state(), State::Backup);
}

// ----- receiving as backup (RFC 5798 §6.4.2) -----

#[test]
fn backup_priority_zero_sets_down_timer_to_skew_time() {
    let t0 = Instant::now();
    let mut vi = Instance::new(cfg(), t0).unwrap();
    let now = t0 + Duration::from_secs(1);
    peer_advert(&mut vi, now, 0);
    assert_eq!(
        vi.poll_timeout(),
        Some(now + Duration::from_micros(609_375))
    );
    vi.handle_timeout(now + Duration::from_micros(609_375));
    let a = drain(&mut vi);
    assert!(a.iter().any(
        |x| matches!(x, Action::StateChanged { reason, .. } if reason.contains("sent priority 0"))
    ));
}

// ----- tracking, fault, shutdown -----

#[test]
fn tracking_priority_is_clamped_and_owner_is_fixed() {
    // keepalived vrrp_set_effective_priority: total clamped to 1..=254; owner stays 255.
    let (mut vi, t) = master(cfg());
    vi.set_tracking(t, 3, false);
    assert_eq!(vi.effective_priority(), 103);
    vi.handle_timeout(vi.poll_timeout().unwrap());
    assert_eq!(
        advert_priorities(&drain(&mut vi)),
        vec![103],
        "new priority goes out with the next advert"
    );
    vi.set_tracking(t, 1000, false);
    assert_eq!(vi.effective_priority(), 254);
    vi.set_tracking(t, -1000, false);
    assert_eq!(vi.effective_priority(), 1);
    let mut c = cfg();
    c.priority = 255;
    let mut owner = Instance::new(c, t).unwrap();
    owner.set_tracking(t, -50, false);
    assert_eq!(owner.effective_priority(), 255);
}

#[test]
fn fault_as_master_sends_priority_zero_and_recovery_waits_in_backup() {
    // keepalived vrrp_state_leave_master (wantstate FAULT) and try_up_instance.
    let (mut vi, t) = master(cfg());
    vi.set_tracking(t, 0, true);
    let a = drain(&mut vi);
    assert!(matches!(
        &a[0],
        Action::StateChanged {
            from: State::Master,
            to: State::Fault,
            ..
        }
    ));
    assert_eq!(advert_priorities(&a), vec![0]);
    assert!(a.contains(&Action::RemoveAddresses(vec![ip(VIP)])));
    assert_eq!(vi.poll_timeout(), None, "FAULT sends no adverts");
    assert_eq!(vi.counters().tx_priority_zero, 1);
    // adverts are ignored in FAULT
    peer_advert(&mut vi, t, 0);
    assert!(drain(&mut vi).is_empty());
    let later = t + Duration::from_secs(10);
    vi.set_tracking(later, 0, false);
    assert_eq!(vi.state(), State::Backup);
    assert_eq!(
        vi.poll_timeout(),
        Some(later + Duration::from_micros(3_609_375))
    );
}

#[test]
fn shutdown_of_a_backup_sends_nothing_and_stops_everything() {
    let t0 = Instant::now();
    let mut vi = Instance::new(cfg(), t0).unwrap();
    drain(&mut vi);
    vi.shutdown(t0);
    let a = drain(&mut vi);
    assert_eq!(advert_priorities(&a), Vec::<u8>::new());
    assert_eq!(vi.state(), State::Stopped);
    assert_eq!(vi.poll_timeout(), None);
    peer_advert(&mut vi, t0, 100);
    assert_eq!(vi.counters().rx_adverts, 0);
}

// ----- configuration -----

#[test]
fn invalid_configurations_are_refused() {
    let t = Instant::now();
    let bad = |f: &dyn Fn(&mut InstanceConfig)| {
        let mut c = cfg();
        f(&mut c);
        Instance::new(c, t).unwrap_err()
    };
    assert_eq!(bad(&|c| c.vrid = 0), ConfigError::Vrid);
    assert_eq!(bad(&|c| c.priority = 0), ConfigError::Priority);
    // keepalived issue #2191: v2 silently rounds 0.4 s to 0 s; we refuse fractional v2 intervals.
    assert!(matches!(
        bad(&|c| c.advert_interval = Duration::from_millis(500)),
        ConfigError::V2Interval(_)
    ));
    assert!(matches!(
        bad(&|c| c.advert_interval = Duration::from_secs(256)),
        ConfigError::V2Interval(_)
    ));
    assert_eq!(
        bad(&|c| {
            c.primary_address = ip("fe80::1");
            c.virtual_addresses = vec![ip("fd00::1")];
            c.version = Version::V2
        }),
        ConfigError::V2WithIpv6
    );
    assert!(matches!(
        bad(&|c| c.virtual_addresses.push(ip("fd00::1"))),
        ConfigError::MixedFamilies(_)
    ));
    assert!(matches!(
        bad(&|c| {
            c.version = Version::V3;
            c.advert_interval = Duration::from_millis(40_960)
        }),
        ConfigError::V3Interval(_)
    ));
    assert_eq!(
        bad(&|c| {
            c.version = Version::V3;
            c.auth_pass = Some([1; 8])
        }),
        ConfigError::V3Authentication
    );
    assert_eq!(
        bad(&|c| {
            c.version = Version::V3;
            c.virtual_addresses.clear()
        }),
        ConfigError::NoVirtualAddress
    );
    assert!(matches!(
        bad(&|c| c.preempt_delay = Duration::from_secs(1001)),
        ConfigError::PreemptDelay(_)
    ));
}

#[test]
fn configuration_is_normalised_like_keepalived() {
    let t = Instant::now();
    let mut c = cfg();
    c.version = Version::V3;
    c.advert_interval = Duration::from_millis(924); // v3: centisecond resolution (RFC 5798 §5.2.7)
    c.start_as_master = true;
    c.preempt = false; // keepalived: "nopreempt will not work with initial state MASTER - clearing"
    let vi = Instance::new(c, t).unwrap();
    assert_eq!(vi.config().advert_interval, Duration::from_millis(920));
    assert!(vi.config().preempt);
}

// ----- sync groups (keepalived vrrp_sync.c) -----

#[test]
fn sync_group_moves_members_together() {
    let t0 = Instant::now();
    let mut a = Instance::new(cfg(), t0).unwrap();
    let mut b_cfg = InstanceConfig::new("VI_2", 52, ip(ME), vec![ip("198.18.1.242")]);
    b_cfg.priority = 50;
    let mut b = Instance::new(b_cfg, t0).unwrap();
    let mut group = SyncGroup::new("G");
    // A's timer fires first (higher priority => shorter skew); the group pulls B up with it.
    a.handle_timeout(a.poll_timeout().unwrap());
    let now = a.poll_timeout().unwrap() - Duration::from_secs(1);
    for cmd in group.reconcile(&[a.sync_status(), b.sync_status()]) {
        [&mut a, &mut b][cmd.member].sync_to(now, cmd.target, &group.name);
    }
    assert_eq!((a.state(), b.state()), (State::Master, State::Master));
    // A's tracking faults: the whole group goes FAULT; B (master) sends its priority-0 advert.
    drain(&mut b);
    a.set_tracking(now, 0, true);
    for cmd in group.reconcile(&[a.sync_status(), b.sync_status()]) {
        [&mut a, &mut b][cmd.member].sync_to(now, cmd.target, &group.name);
    }
    assert_eq!((a.state(), b.state()), (State::Fault, State::Fault));
    assert_eq!(advert_priorities(&drain(&mut b)), vec![0]);
    // A recovers: A goes Backup by itself, the group releases B to Backup.
    a.set_tracking(now, 0, false);
    for cmd in group.reconcile(&[a.sync_status(), b.sync_status()]) {
        [&mut a, &mut b][cmd.member].sync_to(now, cmd.target, &group.name);
    }
    assert_eq!((a.state(), b.state()), (State::Backup, State::Backup));
    assert_eq!(group.state(), State::Backup);
}

#[test]
fn advert_of_the_other_family_is_a_family_drop() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.version = Version::V3;
    let mut vi = Instance::new(c, t0).unwrap();
    let v6 = Advert {
        version: Version::V3,
        adver_int: 100,
        addresses: vec![ip("fd00::1")],
        ..advert_from(Version::V3, 100)
    };
    vi.handle_packet(
        t0,
        ip("fe80::2"),
        ip("ff02::12"),
        255,
        &v6.encode(ip("fe80::2"), ip("ff02::12")).unwrap(),
    );
    assert_eq!(vi.counters().drop_family, 1);
    // A v3 advert with a zero interval would zero the down timer: refused.
    let zero = Advert {
        adver_int: 0,
        ..advert_from(Version::V3, 100)
    };
    receive_from_peer(&mut vi, t0, &zero);
    assert_eq!(vi.counters().drop_interval, 1);
}

/// halo extension: after a crash-restart with the addresses still on the interface, the instance
/// resumes as master at once (no Master_Down_Interval outage), and a higher-priority master still
/// takes over from it on its next advert (RFC 5798 §6.4.3 rules apply unchanged).
#[test]
fn resume_master_starts_as_master_and_yields_to_a_higher_priority() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.resume_master = true;
    let mut vi = Instance::new(c, t0).unwrap();
    assert_eq!(vi.state(), State::Master);
    let actions = drain(&mut vi);
    assert_eq!(advert_priorities(&actions), vec![100]);
    assert!(actions.contains(&Action::AddAddresses(vec![ip(VIP)])));
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::RemoveAddresses(_))));
    peer_advert(&mut vi, t0 + Duration::from_millis(10), 200);
    assert_eq!(vi.state(), State::Backup);
}

/// halo extension: taking over from a live master (it sent priority 0) holds the gratuitous ARP back
/// by `handoff_announce_delay`; taking over after silence (a crash) announces at once.
#[test]
fn handoff_delays_the_announcement_but_a_crash_takeover_does_not() {
    let delay = Duration::from_millis(100);
    let t0 = Instant::now();
    let mut c = cfg();
    c.handoff_announce_delay = delay;
    let mut vi = Instance::new(c.clone(), t0).unwrap();
    drain(&mut vi);
    let now = t0 + Duration::from_secs(1);
    peer_advert(&mut vi, now, 0);
    let takeover = now + Duration::from_micros(609_375);
    vi.handle_timeout(takeover);
    let a = drain(&mut vi);
    assert_eq!(vi.state(), State::Master);
    assert_eq!(
        advert_priorities(&a),
        vec![100],
        "the advert goes out at once"
    );
    assert_eq!(announces(&a), 0, "no GARP before the handoff delay");
    assert_eq!(vi.poll_timeout(), Some(takeover + delay));
    vi.handle_timeout(takeover + delay);
    assert!(announces(&drain(&mut vi)) >= 1);

    // Silence: the master down timer expires and the announcement is immediate.
    let mut vi = Instance::new(c, t0).unwrap();
    drain(&mut vi);
    let down = vi.poll_timeout().unwrap();
    vi.handle_timeout(down);
    let a = drain(&mut vi);
    assert_eq!(vi.state(), State::Master);
    assert!(announces(&a) >= 1);
}

/// keepalived `vrrp_mcast_group4`: adverts go to the configured group; a unicast address there is
/// a configuration error.
#[test]
fn configured_multicast_group_is_the_advert_destination() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.multicast_group = Some(ip("224.0.0.19"));
    c.priority = 255;
    c.start_as_master = true;
    let mut vi = Instance::new(c.clone(), t0).unwrap();
    let dsts: Vec<IpAddr> = drain(&mut vi)
        .into_iter()
        .filter_map(|a| match a {
            Action::SendAdvert { dst, .. } => Some(dst),
            _ => None,
        })
        .collect();
    assert_eq!(dsts, vec![ip("224.0.0.19")]);
    c.multicast_group = Some(ip("198.18.0.9"));
    assert!(matches!(
        Instance::new(c, t0),
        Err(ConfigError::NotMulticast(_))
    ));
}
