//! Reload under load: wrk drives keepalive traffic through halo while 20 SIGHUPs alternate two valid
//! configurations and one invalid one. No request may fail and no client connection may be closed by
//! halo (stub_status `accepts` stays at wrk's connection count). Loopback only; needs `wrk`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, http_get, spawn_halo, wait_port};

fn accepts(port: u16) -> u64 {
    // "Active connections: N \nserver accepts handled requests\n A H R \n..."
    let text = http_get(port, "/status");
    let line = text.lines().find(|l| l.starts_with(' ')).unwrap();
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn twenty_reloads_under_wrk_lose_nothing() {
    if Command::new("wrk").arg("--version").output().is_err() {
        assert!(
            std::env::var("HALO_REQUIRE_NETNS").is_err(),
            "wrk is required in CI"
        );
        eprintln!("skipping: wrk not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("halo-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (b1, b2, front) = (free_port(), free_port(), free_port());
    let mut backends = Vec::new();
    for (name, port) in [("b1", b1), ("b2", b2)] {
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "events {{}}\nhttp {{\n  keepalive_requests 1000000;\n  server {{\n    listen 127.0.0.1:{port};\n    \
                 location / {{ return 200 \"{name}\\n\"; }}\n  }}\n}}\n"
            ),
        )
        .unwrap();
        backends.push(spawn_halo(
            &["run", "--nginx", conf.to_str().unwrap()],
            &dir.join(format!("{name}.log")),
        ));
        wait_port(port);
    }
    let config = |w1: u32, w2: u32| {
        format!(
            "events {{}}\nhttp {{\n  keepalive_requests 1000000;\n  keepalive_timeout 120;\n  \
             upstream be {{\n    server 127.0.0.1:{b1} weight={w1};\n    server 127.0.0.1:{b2} weight={w2};\n  }}\n  \
             server {{\n    listen 127.0.0.1:{front};\n    location / {{ proxy_pass http://be; }}\n    \
             location = /status {{ stub_status on; }}\n  }}\n}}\n"
        )
    };
    let valid_a = config(1, 1);
    let valid_b = config(3, 1);
    let invalid = valid_a.replace("upstream be {", "upstream be {{");
    let conf = dir.join("front.conf");
    std::fs::write(&conf, &valid_a).unwrap();
    let pid_file = dir.join("front.pid");
    let log = dir.join("front.log");
    let _front = spawn_halo(
        &[
            "run",
            "--nginx",
            conf.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        &log,
    );
    wait_port(front);
    // How many connections a wrk run opens with no reload at all (its 20, plus whatever it opens
    // itself), and our own probe.
    let run_wrk = |secs: &str| {
        Command::new("wrk")
            .args(["-t1", "-c20", &format!("-d{secs}")])
            .arg(format!("http://127.0.0.1:{front}/"))
            .output()
            .unwrap()
    };
    let before = accepts(front);
    assert!(run_wrk("1s").status.success());
    let baseline = accepts(front) - before;
    let before = accepts(front);
    let wrk = Command::new("wrk")
        .args(["-t1", "-c20", "-d6s", "--latency"])
        .arg(format!("http://127.0.0.1:{front}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 20 reloads during the run: valid A, valid B, invalid, ...
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(220));
        let text = match i % 3 {
            0 => &valid_b,
            1 => &invalid,
            _ => &valid_a,
        };
        std::fs::write(&conf, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_halo"))
            .args(["reload", "--pid-file", pid_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = wrk.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{report}");
    assert!(out.status.success());
    assert!(
        !report.contains("Non-2xx"),
        "failed requests:\n{report}\n{}",
        http_get(front, "/")
    );
    assert!(
        !report.contains("Socket errors"),
        "socket errors:\n{report}"
    );
    let requests: u64 = report
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        requests > 1000,
        "too few requests to mean anything: {requests}"
    );
    // Exactly as many connections as a run without reloads: nothing reconnected.
    let after = accepts(front);
    assert!(baseline >= 21, "baseline {baseline}");
    assert_eq!(
        after - before,
        baseline,
        "halo closed keepalive connections"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    // 13 valid files applied, 7 invalid ones refused (i % 3 == 1 for i in 0..20).
    assert_eq!(log_text.matches("reload done").count(), 13, "{log_text}");
    assert_eq!(log_text.matches("reload refused").count(), 7, "{log_text}");
    let _ = std::fs::remove_dir_all(&dir);
}
