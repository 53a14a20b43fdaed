//! `halo demo --tour` in CI: the seed's system (two halo balancers on the seed's own nginx.conf and
//! keepalived.conf, two web servers, a client probing with a new connection every 20 ms) passes the
//! seed's five tests, with one SMTP alert per VRRP transition, and leaves nothing behind. `halo demo`
//! (the live view) stops cleanly on Ctrl-C. Needs root.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The two demos run one at a time: each is a whole system with its own timing assertions.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn demo_namespaces(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("halo-{pid}-demo")))
        .map(str::to_string)
        .collect()
}

#[test]
fn demo_tour_passes_the_seeds_five_tests() {
    if !halo_testkit::require_root("demo_tour_passes_the_seeds_five_tests") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let child = Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(["demo", "--tour"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "the tour failed");
    assert_eq!(stdout.matches("PASS").count(), 5);
    assert!(stdout.contains("All 5 steps passed."));
    // The SMTP sink (python3-aiosmtpd, installed by .ci/run) got one alert per transition.
    let smtp = stdout
        .lines()
        .find(|l| l.contains("SMTP:"))
        .expect("no SMTP line: is python3-aiosmtpd installed?");
    let numbers: Vec<u32> = smtp
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "{smtp}");
    assert_eq!(numbers[0], numbers[1], "{smtp}");
    assert!(numbers[0] >= 6, "{smtp}");
    assert!(demo_namespaces(pid).is_empty(), "namespaces left behind");
}

#[test]
fn demo_live_view_stops_cleanly_on_ctrl_c() {
    if !halo_testkit::require_root("demo_live_view_stops_cleanly_on_ctrl_c") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(env!("CARGO_BIN_EXE_halo"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    // Read lines until two live-view lines have appeared (bounded).
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(40) {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
            if text.matches("VIP held by").count() >= 2 {
                break;
            }
        }
        (text, stdout)
    });
    let (text, mut stdout) = reader.join().unwrap();
    assert!(text.matches("VIP held by lb1").count() >= 2, "{text}");
    // The live view serves HTTPS and HTTP/2 through the VIP with a certificate made at start,
    // checked by a TLS client in the client namespace that trusts only that certificate.
    assert!(
        text.contains("HTTPS: https://198.18.2.242/ answered over TLSv1.3 by web"),
        "{text}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "demo did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    use std::io::Read;
    let _ = stdout.read_to_string(&mut rest);
    assert!(status.success(), "{rest}");
    assert!(rest.contains("Removed every namespace"), "{rest}");
    assert!(demo_namespaces(pid).is_empty(), "namespaces left behind");
}
