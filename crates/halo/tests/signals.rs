//! Signals on a running proxy (loopback only): SIGQUIT lets an in-flight request finish before
//! exiting; SIGUSR1 reopens the access log after rotation.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{free_port, http_get, spawn_halo, spawn_halo_with_env, wait_port, KillOnDrop};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("halo-signals-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A backend that answers every request after `delay`, telling `arrived` when a request came in.
fn slow_backend(delay: Duration, arrived: std::sync::mpsc::Sender<()>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = arrived.send(());
                std::thread::sleep(delay);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
                );
            });
        }
    });
    port
}

fn start(dir: &std::path::Path, conf: &str) -> KillOnDrop {
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    spawn_halo(
        &["run", "--nginx", path.to_str().unwrap()],
        &dir.join("halo.log"),
    )
}

#[test]
fn sigquit_drains_in_flight_requests_then_exits() {
    let dir = scratch("quit");
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    let backend = slow_backend(Duration::from_millis(800), arrived_tx);
    let port = free_port();
    let mut halo = start(
        &dir,
        &format!(
            "events {{}}\nhttp {{\n  server {{\n    listen 127.0.0.1:{port};\n    \
             location / {{ proxy_pass http://127.0.0.1:{backend}; }}\n  }}\n}}\n"
        ),
    );
    wait_port(port);
    let request = std::thread::spawn(move || http_get(port, "/"));
    // The request is in flight once the backend has it.
    arrived.recv_timeout(Duration::from_secs(5)).unwrap();
    kill(Pid::from_raw(halo.0.id() as i32), Signal::SIGQUIT).unwrap();
    let reply = request.join().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("slow"), "{reply}");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = halo.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "halo did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigusr1_reopens_the_access_log() {
    let dir = scratch("usr1");
    let port = free_port();
    let access = dir.join("access.log");
    let path = dir.join("nginx.conf");
    std::fs::write(
        &path,
        format!(
            "events {{}}\nhttp {{\n  access_log {} combined;\n  server {{\n    listen 127.0.0.1:{port};\n    \
             location / {{ return 200 \"ok\"; }}\n  }}\n}}\n",
            access.display()
        ),
    )
    .unwrap();
    // $time_local is in the local time zone, as nginx writes it: a fixed zone 5:30 east of UTC.
    let halo = spawn_halo_with_env(
        &["run", "--nginx", path.to_str().unwrap()],
        &dir.join("halo.log"),
        &[("TZ", "IST-5:30")],
    );
    wait_port(port);
    assert!(http_get(port, "/").ends_with("ok"));
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // Buffered: wait (bounded) for the first line to be written out.
    let t0 = Instant::now();
    while lines(&access) < 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "access log never written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = std::fs::read_to_string(&access).unwrap();
    assert!(first.contains(" +0530] \"GET / HTTP/1.1\""), "{first}");
    let rotated = dir.join("access.log.1");
    std::fs::rename(&access, &rotated).unwrap();
    kill(Pid::from_raw(halo.0.id() as i32), Signal::SIGUSR1).unwrap();
    let t0 = Instant::now();
    while !access.exists() {
        assert!(t0.elapsed() < Duration::from_secs(5), "log not reopened");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(http_get(port, "/").ends_with("ok"));
    let t0 = Instant::now();
    while lines(&access) < 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "new log never written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lines(&rotated), 1, "the rotated file got new lines");
    let _ = std::fs::remove_dir_all(&dir);
}
