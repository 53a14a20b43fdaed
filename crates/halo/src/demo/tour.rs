//! `halo demo --tour`: the seed's five acceptance tests on the demo topology, each step printed with
//! its measured outage and failed requests. Exits non-zero if one fails.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;

use super::probe::{Outcome, Prober, REQUEST_DEADLINE};
use super::topology::{Topology, CLIENT, VIP};
use super::wait_for_master;

/// What a window of client requests looked like.
struct Window {
    total: usize,
    failed: usize,
    slowest: Duration,
    /// Longest run without a successful answer (first failure to next success).
    outage: Duration,
    first_error: Option<String>,
}

fn summarize(outcomes: &[Outcome]) -> Window {
    let mut w = Window {
        total: outcomes.len(),
        failed: 0,
        slowest: Duration::ZERO,
        outage: Duration::ZERO,
        first_error: None,
    };
    let mut down_since: Option<Instant> = None;
    for o in outcomes {
        w.slowest = w.slowest.max(o.took);
        if o.backend.is_none() {
            w.failed += 1;
            if w.first_error.is_none() {
                w.first_error = o.error.clone();
            }
            down_since.get_or_insert(o.at);
        } else if let Some(since) = down_since.take() {
            w.outage = w.outage.max(o.at.duration_since(since));
        }
    }
    if let (Some(since), Some(last)) = (down_since, outcomes.last()) {
        w.outage = w.outage.max(last.at.duration_since(since) + last.took);
    }
    w
}

/// Polls `f` every 5 ms for at most `timeout` (halo_testkit's bounded wait); how long it took.
fn wait_until(timeout: Duration, f: impl FnMut() -> bool) -> Option<Duration> {
    halo_testkit::wait_until(timeout, Duration::from_millis(5), f).ok()
}

/// Lets requests run for `d` (bounded wait, not a guess: the window is what is measured).
fn settle(d: Duration) {
    std::thread::sleep(d);
}

/// `GET path` to the VIP from inside `ns`: the status code and the body.
fn http_status(ns: &halo_testkit::Netns, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let path = path.to_string();
    ns.run_in(move || {
        let addr = std::net::SocketAddr::new(VIP.parse().ok()?, 80);
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        Some((code, body))
    })
    .ok()
    .flatten()
}

struct Step {
    passed: bool,
}

fn report(n: usize, title: &str, ok: bool, detail: String) -> Step {
    println!(
        "[{n}/5] {:<60} {}\n      {detail}",
        title,
        if ok { "PASS" } else { "FAIL" }
    );
    Step { passed: ok }
}

pub fn run(topo: &Topology) -> anyhow::Result<()> {
    let vip: IpAddr = VIP.parse()?;
    println!("Waiting for a master (VRRPv2, 1 s adverts as in the seed: about 3.6 s)...");
    let first = wait_for_master(topo, Duration::from_secs(15))?;
    if first != "lb1" {
        bail!("{first} became master first; the seed's priorities make lb1 master");
    }
    let client_ns = topo.lan_host("client").name().to_string();
    let prober = Prober::start(
        &client_ns,
        vec![CLIENT.parse()?],
        vip,
        Duration::from_millis(20),
    );
    let mut steps = Vec::new();

    // 1. Both healthy: the master holds the VIP, the backup does not, the site works.
    let t = Instant::now();
    settle(Duration::from_millis(600));
    let w = summarize(&prober.since(t));
    let holders = topo.vip_holders();
    let status = http_status(topo.lan_host("client"), "/NginxStatus");
    let status_ok = status
        .as_ref()
        .is_some_and(|(c, b)| *c == 200 && b.starts_with("Active connections:"));
    steps.push(report(
        1,
        "master holds the VIP, backup does not, site works",
        holders == ["lb1"] && w.failed == 0 && w.total > 0 && status_ok,
        format!(
            "VIP on {holders:?}; {} requests, {} failed; /NginxStatus {}",
            w.total,
            w.failed,
            status.map_or("unreachable".to_string(), |(c, _)| c.to_string())
        ),
    ));

    // 2. The proxy on the master crashes (SIGKILL) and its supervisor restarts it at once.
    let lb1 = topo.balancer("lb1").context("no lb1")?;
    let lb2 = topo.balancer("lb2").context("no lb2")?;
    let restarts = lb1.restart_count();
    let t = Instant::now();
    lb1.signal(Signal::SIGKILL)?;
    let restarted = wait_until(Duration::from_secs(5), || lb1.restart_count() > restarts);
    let back = wait_until(Duration::from_secs(5), || {
        prober
            .since(t + Duration::from_millis(1))
            .iter()
            .rev()
            .take(3)
            .filter(|o| o.backend.is_some())
            .count()
            == 3
            && topo.vip_holders() == ["lb1"]
    });
    settle(Duration::from_millis(400));
    let w = summarize(&prober.since(t));
    let lb2_master = state_counter(&lb2.state_file, "became_master");
    steps.push(report(
        2,
        "master's halo is SIGKILLed and restarted: service back < 1 s",
        restarted.is_some() && back.is_some() && w.outage < Duration::from_secs(1) && lb2_master == 0,
        format!(
            "restarted after {:?}; outage {:?}, {} of {} requests failed; VIP on {:?}; lb2 took over {} time(s)",
            restarted.unwrap_or_default(),
            w.outage,
            w.failed,
            w.total,
            topo.vip_holders(),
            lb2_master
        ),
    ));

    // 3. halo on the master is stopped: the backup takes the VIP, no request fails.
    let t = Instant::now();
    lb1.stop()?;
    let moved =
        wait_until(Duration::from_secs(6), || topo.vip_holders() == ["lb2"]).map(|_| t.elapsed());
    settle(Duration::from_millis(500));
    let w = summarize(&prober.since(t));
    steps.push(report(
        3,
        "master stopped: backup holds the VIP, zero failed requests",
        moved.is_some() && w.failed == 0,
        format!(
            "lb1 handed over and exited; VIP on lb2 only {:?} after the stop; {} requests, {} failed{}",
            moved.unwrap_or_default(),
            w.total,
            w.failed,
            w.first_error.map(|e| format!(" (first: {e})")).unwrap_or_default()
        ),
    ));

    // 4. It starts again: the VIP returns to the master (preemption), no request fails.
    let t = Instant::now();
    lb1.start_again()?;
    let back =
        wait_until(Duration::from_secs(10), || topo.vip_holders() == ["lb1"]).map(|_| t.elapsed());
    settle(Duration::from_millis(500));
    let w = summarize(&prober.since(t));
    steps.push(report(
        4,
        "master started again: the VIP returns, zero failed requests",
        back.is_some() && w.failed == 0,
        format!(
            "VIP back on lb1 after {:?}; {} requests, {} failed{}",
            back.unwrap_or_default(),
            w.total,
            w.failed,
            w.first_error
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ),
    ));

    // 5. The web server serving the client loses its link: the site keeps working, no request fails
    //    or waits more than 3 s.
    let recent = prober.since(Instant::now() - Duration::from_millis(300));
    let serving = recent
        .iter()
        .rev()
        .find_map(|o| o.backend.clone())
        .unwrap_or_else(|| "web1".to_string());
    let t = Instant::now();
    topo.lan.set_port_up(&serving, false)?;
    settle(Duration::from_secs(5));
    let w = summarize(&prober.since(t));
    let others = prober
        .since(t)
        .iter()
        .filter(|o| o.backend.as_deref().is_some_and(|b| b != serving))
        .count();
    steps.push(report(
        5,
        &format!("{serving} loses its link: no request fails or waits > 3 s"),
        w.failed == 0 && w.slowest <= REQUEST_DEADLINE && others > 0,
        format!(
            "{} requests, {} failed, slowest {:?}, {} answered by the other web server",
            w.total, w.failed, w.slowest, others
        ),
    ));
    topo.lan.set_port_up(&serving, true)?;
    drop(prober);

    // Alerts: one mail per VRRP transition to MASTER, BACKUP or FAULT on either balancer.
    if topo.smtp_sink.is_some() {
        let transitions = || -> usize {
            ["lb1", "lb2"]
                .iter()
                .map(|lb| {
                    std::fs::read_to_string(topo.dir.join(lb).join("halo.log"))
                        .unwrap_or_default()
                        .lines()
                        .filter(|l| {
                            l.contains("-> MASTER:")
                                || l.contains("-> BACKUP:")
                                || l.contains("-> FAULT:")
                        })
                        .count()
                })
                .sum()
        };
        let mails = || -> usize {
            std::fs::read_to_string(topo.dir.join("smtp-sink.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("Subject:") && l.contains("VRRP Instance"))
                .count()
        };
        let done = wait_until(Duration::from_secs(10), || mails() >= transitions());
        let (m, t) = (mails(), transitions());
        println!(
            "      SMTP: {m} alert(s) received for {t} VRRP transition(s){}",
            if done.is_some() && m == t {
                ""
            } else {
                "  MISMATCH"
            }
        );
        if m != t {
            steps.push(Step { passed: false });
        }
    }

    let failed = steps.iter().filter(|s| !s.passed).count();
    if failed > 0 {
        topo.keep_logs.set(true);
        bail!(
            "{failed} of 5 steps failed (logs under {})",
            topo.dir.display()
        );
    }
    println!("All 5 steps passed.");
    Ok(())
}

fn state_counter(path: &std::path::Path, name: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["instances"]["VI_1"]["counters"][name].as_u64())
        .unwrap_or(0)
}
