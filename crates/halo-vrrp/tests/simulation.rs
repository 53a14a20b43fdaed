//! Multi-router scenarios on the simulated LAN (tests/sim): takeover timing, preemption, tie-breaks,
//! partitions. Times are exact to the microsecond because the engine uses keepalived's integer timer math.
#![allow(clippy::unwrap_used)]

mod sim;

use std::net::IpAddr;
use std::time::Duration;

use halo_vrrp::{InstanceConfig, State, Version};
use sim::Lan;

const VIP: &str = "198.18.0.242";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn router(name: &str, addr: &str, priority: u8) -> InstanceConfig {
    let mut cfg = InstanceConfig::new(name, 51, ip(addr), vec![ip(VIP)]);
    cfg.priority = priority;
    cfg
}

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

/// R1 (200) and R2 (100) with v2 1 s adverts: R1 wins the start-up election at 3 + 56/256 s.
fn two_routers() -> Lan {
    let mut lan = Lan::new(vec![
        router("r1", "198.18.0.1", 200),
        router("r2", "198.18.0.2", 100),
    ]);
    lan.run_until(lan.at(10.5));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(
        lan.became(0, State::Master, lan.t0),
        Some(lan.at_micros(3_218_750))
    );
    assert_eq!(lan.holders(ip(VIP)), vec![0]);
    lan
}

#[test]
fn crash_takeover_after_exact_master_down_interval() {
    // RFC 3768 §6.1: Master_Down_Interval = 3 * 1 s + (256 - 100)/256 s = 3.609375 s after the last advert.
    let mut lan = two_routers();
    let crash_at = lan.now;
    let last = lan.last_advert_before(0, crash_at).unwrap();
    assert_eq!(last, lan.at_micros(10_218_750));
    lan.crash(0);
    lan.run_for(Duration::from_secs(10));
    let took_over = lan.became(1, State::Master, crash_at).unwrap();
    assert_eq!(took_over - last, us(3_609_375));
    assert_eq!(lan.holders(ip(VIP)), vec![1]);
    let reason = &lan.routers[1].transitions.last().unwrap().3;
    assert!(
        reason.contains("master down timer expired (no advert for 3.61 s)"),
        "{reason}"
    );
}

#[test]
fn graceful_shutdown_takeover_after_skew_time() {
    // RFC 5798 §6.4.3 Shutdown sends priority 0; §6.4.2 backup sets Master_Down_Timer = Skew_Time.
    let mut lan = two_routers();
    let stop_at = lan.now;
    lan.shutdown(0);
    assert_eq!(lan.routers[0].adverts_sent.last().unwrap(), &(stop_at, 0));
    assert_eq!(lan.holders(ip(VIP)), Vec::<usize>::new());
    lan.run_for(Duration::from_secs(5));
    assert_eq!(
        lan.became(1, State::Master, stop_at).unwrap() - stop_at,
        us(609_375)
    );
    assert_eq!(lan.instance(1).counters().rx_priority_zero, 1);
    assert_eq!(lan.state(0), Some(State::Stopped));
}

#[test]
fn restarted_higher_priority_preempts_back() {
    // RFC 5798 §6.4.2: with Preempt_Mode a backup discards lower-priority adverts, so its own
    // Master_Down_Timer fires; §6.4.3: the old master hears the higher priority and goes Backup.
    let mut lan = two_routers();
    lan.crash(0);
    lan.run_until(lan.at(20.0));
    assert_eq!(lan.masters(), vec![1]);
    lan.start(0, router("r1", "198.18.0.1", 200));
    lan.run_until(lan.at(40.0));
    let back = lan.became(0, State::Master, lan.at(20.0)).unwrap();
    assert_eq!(
        back - lan.at(20.0),
        us(3_218_750),
        "R1's own down interval after restart"
    );
    assert_eq!(
        lan.became(1, State::Backup, lan.at(20.0)),
        Some(back),
        "R2 yields on the first advert"
    );
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.holders(ip(VIP)), vec![0]);
    assert!(lan.routers[0]
        .transitions
        .last()
        .unwrap()
        .3
        .contains("preempting lower priority master 198.18.0.2"));
}

#[test]
fn nopreempt_keeps_the_lower_priority_master() {
    // RFC 5798 §6.4.2: Preempt_Mode False => every advert resets the Master_Down_Timer.
    let mut lan = two_routers();
    lan.crash(0);
    lan.run_until(lan.at(20.0));
    let mut cfg = router("r1", "198.18.0.1", 200);
    cfg.preempt = false;
    lan.start(0, cfg);
    lan.run_until(lan.at(80.0));
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.state(0), Some(State::Backup));
    assert_eq!(lan.holders(ip(VIP)), vec![1]);
}

#[test]
fn preempt_delay_is_added_on_top_of_the_down_interval() {
    // keepalived vrrp_state_backup: lower-priority adverts are accepted until preempt_time (first such
    // advert + preempt_delay); after that they are discarded and the down timer runs out.
    let mut lan = two_routers();
    lan.crash(0);
    lan.run_until(lan.at(20.0));
    // R2 became master at 10.21875 + 3.609375 = 13.828125 s and advertises at .828125.
    assert_eq!(
        lan.became(1, State::Master, lan.t0),
        Some(lan.at_micros(13_828_125))
    );
    let mut cfg = router("r1", "198.18.0.1", 200);
    cfg.preempt_delay = Duration::from_secs(10);
    lan.start(0, cfg);
    lan.run_until(lan.at(60.0));
    // First R2 advert heard at 20.828125 => preempt_time 30.828125; the advert at that instant is
    // already discarded, the last accepted one is 29.828125; takeover = 29.828125 + 3.21875.
    assert_eq!(
        lan.became(0, State::Master, lan.at(20.0)),
        Some(lan.at_micros(33_046_875))
    );
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn equal_priority_simultaneous_masters_resolve_by_higher_address() {
    // RFC 5798 §6.4.3: a master hearing an equal priority from a higher primary address goes Backup.
    let mut lan = Lan::new(vec![
        router("r1", "198.18.0.1", 100),
        router("r2", "198.18.0.2", 100),
    ]);
    // 1 ms of wire delay so that both timers fire before either advert arrives.
    lan.delay = Duration::from_millis(1);
    lan.run_until(lan.at(10.0));
    let t = lan.at_micros(3_609_375);
    assert_eq!(
        lan.became(0, State::Master, lan.t0),
        Some(t),
        "both time out together"
    );
    assert_eq!(lan.became(1, State::Master, lan.t0), Some(t));
    let arrival = t + Duration::from_millis(1);
    assert_eq!(
        lan.became(0, State::Backup, t),
        Some(arrival),
        "the lower address yields on the first advert"
    );
    assert_eq!(lan.became(1, State::Backup, t), None);
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.holders(ip(VIP)), vec![1]);
}

#[test]
fn equal_priority_backup_does_not_preempt_a_running_master() {
    // RFC 5798 §6.4.2: "Priority ... greater than or equal to the local Priority" resets the timer;
    // the address tie-break applies only between masters.
    let mut lan = Lan::new(vec![router("r1", "198.18.0.1", 100)]);
    lan.run_until(lan.at(5.0));
    assert_eq!(lan.masters(), vec![0]);
    let mut lan2 = Lan::new(vec![
        router("r1", "198.18.0.1", 100),
        router("r2", "198.18.0.2", 100),
    ]);
    lan2.crash(1);
    lan2.run_until(lan2.at(5.0));
    lan2.start(1, router("r2", "198.18.0.2", 100));
    lan2.run_until(lan2.at(60.0));
    assert_eq!(lan2.masters(), vec![0]);
}

#[test]
fn split_brain_heals_within_one_interval() {
    let mut lan = two_routers();
    lan.partition(0, 1);
    lan.run_until(lan.at(20.0));
    assert_eq!(
        lan.masters(),
        vec![0, 1],
        "both sides are master while partitioned"
    );
    assert_eq!(lan.holders(ip(VIP)), vec![0, 1]);
    let healed = lan.now;
    lan.heal();
    lan.run_for(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.holders(ip(VIP)), vec![0]);
    assert!(lan.became(1, State::Backup, healed).unwrap() - healed <= Duration::from_secs(1));
}

#[test]
fn split_brain_heal_winner_reannounces_on_hearing_the_loser() {
    // keepalived vrrp_state_master_rx: a master hearing a lower priority sends an advert and a GARP burst
    // (garp_lower_prio_repeat, default 5) so the LAN relearns the VIP's MAC.
    let mut lan = two_routers();
    lan.partition(0, 1);
    lan.run_until(lan.at(20.9)); // R2 (master since 13.828125) advertises at x.828125, R1 at x.21875
    assert_eq!(lan.masters(), vec![0, 1]);
    // Heal one direction first: R1 hears R2's advert at 21.828125 while R2 still hears nothing.
    lan.heal();
    lan.cut(0, 1);
    let before = lan.routers[0].announces.len();
    let r1_adverts = lan.routers[0].adverts_sent.len();
    lan.run_until(lan.at(21.9));
    // R1's own advert at 21.21875, then it hears R2's lower-priority advert at 21.828125: an immediate
    // extra advert (which also restarts its Adver_Timer) + 5 announces.
    assert_eq!(lan.routers[0].adverts_sent.len(), r1_adverts + 2);
    assert_eq!(
        lan.routers[0].adverts_sent.last().unwrap().0,
        lan.at_micros(21_828_125)
    );
    assert_eq!(lan.routers[0].announces.len(), before + 5);
    assert_eq!(lan.instance(0).counters().rx_lower_priority_as_master, 1);
    assert_eq!(lan.masters(), vec![0, 1]);
    lan.heal();
    lan.run_until(lan.at(23.0));
    assert_eq!(
        lan.became(1, State::Backup, lan.at(21.9)),
        Some(lan.at_micros(22_828_125))
    );
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn v3_100ms_adverts_crash_takeover() {
    // RFC 5798 §6.1: 3 * 10 cs + (256 - 100) * 10 / 256 cs = 0.3 s + 60.937 ms.
    let mut cfgs = vec![
        router("r1", "198.18.0.1", 200),
        router("r2", "198.18.0.2", 100),
    ];
    for c in &mut cfgs {
        c.version = Version::V3;
        c.advert_interval = Duration::from_millis(100);
    }
    let mut lan = Lan::new(cfgs);
    lan.run_until(lan.at(2.05));
    assert_eq!(lan.masters(), vec![0]);
    let crash_at = lan.now;
    let last = lan.last_advert_before(0, crash_at).unwrap();
    lan.crash(0);
    lan.run_for(Duration::from_secs(1));
    assert_eq!(
        lan.became(1, State::Master, crash_at).unwrap() - last,
        us(360_937)
    );
}

#[test]
fn v3_backup_learns_the_master_interval() {
    // RFC 5798 §6.4.2: a v3 backup sets Master_Adver_Interval from the advert and derives its timers.
    let mut r1 = router("r1", "198.18.0.1", 200);
    r1.version = Version::V3;
    r1.advert_interval = Duration::from_millis(500);
    let mut r2 = router("r2", "198.18.0.2", 100);
    r2.version = Version::V3;
    r2.advert_interval = Duration::from_secs(2);
    let mut lan = Lan::new(vec![r1, r2]);
    lan.run_until(lan.at(5.0));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(
        lan.instance(1).master_adver_interval(),
        Duration::from_millis(500)
    );
    let crash_at = lan.now;
    let last = lan.last_advert_before(0, crash_at).unwrap();
    lan.crash(0);
    lan.run_for(Duration::from_secs(10));
    // 3 * 0.5 s + 156 * 50 cs / 256 = 1.5 s + 304.6875 ms (keepalived integer: 304_687 µs).
    assert_eq!(
        lan.became(1, State::Master, crash_at).unwrap() - last,
        us(1_804_687)
    );
    // As master it advertises its own configured interval again (keepalived vrrp_state_become_master).
    assert_eq!(
        lan.instance(1).master_adver_interval(),
        Duration::from_secs(2)
    );
}

#[test]
fn three_routers_next_highest_priority_takes_over() {
    // Lower Skew_Time for the higher priority backup makes it win (RFC 5798 §6.1 rationale).
    let mut lan = Lan::new(vec![
        router("r1", "198.18.0.1", 200),
        router("r2", "198.18.0.2", 150),
        router("r3", "198.18.0.3", 100),
    ]);
    lan.run_until(lan.at(10.5));
    assert_eq!(lan.masters(), vec![0]);
    let crash_at = lan.now;
    let last = lan.last_advert_before(0, crash_at).unwrap();
    lan.crash(0);
    lan.run_for(Duration::from_secs(20));
    assert_eq!(
        lan.became(1, State::Master, crash_at).unwrap() - last,
        us(3_414_062)
    );
    assert_eq!(
        lan.became(2, State::Master, crash_at),
        None,
        "R3 hears R2 before its own timer fires"
    );
    assert_eq!(lan.masters(), vec![1]);
}

#[test]
fn lossy_link_converges_to_the_highest_priority() {
    // 20 % loss both ways for 10 minutes: occasional 3-in-a-row losses make R2 take over briefly, but
    // preemption always brings R1 back; never two masters for more than one interval after a flap.
    let mut lan = two_routers();
    lan.set_loss(0, 1, 0.2);
    lan.set_loss(1, 0, 0.2);
    let start = lan.now;
    lan.run_until(lan.at(610.0));
    assert_eq!(lan.masters(), vec![0]);
    let flaps = lan.routers[1]
        .transitions
        .iter()
        .filter(|(t, _, s, _)| *t > start && *s == State::Master)
        .count();
    for (t, _, s, _) in lan.routers[1]
        .transitions
        .iter()
        .filter(|(t, _, s, _)| *t > start && *s == State::Master)
    {
        let _ = s;
        let back = lan.became(1, State::Backup, *t).unwrap();
        assert!(
            back - *t <= Duration::from_secs(3),
            "R2 yields once R1's adverts get through"
        );
    }
    assert!(
        flaps > 0,
        "the seed should produce at least one flap with 20 % loss"
    );
}

#[test]
fn unicast_peers_receive_one_advert_each() {
    let mut r1 = router("r1", "198.18.0.1", 200);
    r1.unicast_peers = vec![ip("198.18.0.2"), ip("198.18.0.3")];
    let mut r2 = router("r2", "198.18.0.2", 100);
    r2.unicast_peers = vec![ip("198.18.0.1"), ip("198.18.0.3")];
    let mut r3 = router("r3", "198.18.0.3", 50);
    r3.unicast_peers = vec![ip("198.18.0.1"), ip("198.18.0.2")];
    let mut lan = Lan::new(vec![r1, r2, r3]);
    lan.run_until(lan.at(10.5));
    assert_eq!(lan.masters(), vec![0]);
    let c = lan.instance(0).counters().clone();
    assert_eq!(
        c.tx_adverts,
        2 * 8,
        "8 advert rounds (3.21875 .. 10.21875) to 2 peers"
    );
    assert_eq!(lan.instance(1).counters().rx_adverts, 8);
}
