//! `halo nginx`: nginx's command line, run the way scripts and nginx's test harness run nginx
//! (no root needed; loopback only).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{free_port, halo_bin, http_get, wait_port, KillOnDrop, Scratch};

fn nginx(args: &[&str]) -> Output {
    Command::new(halo_bin())
        .arg("nginx")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A configuration in `dir` as nginx's harness writes them: pid and error log in the directory,
/// one server on `port`.
fn conf(dir: &Scratch, port: u16, main_extra: &str) -> String {
    let d = dir.0.display();
    format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n{main_extra}\nevents {{ }}\n\
         http {{\n    server {{\n        listen 127.0.0.1:{port};\n        \
         location / {{ return 200 \"hello\\n\"; }}\n    }}\n}}\n"
    )
}

/// Polls (bounded) until `cond` holds.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn process_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Checks one error log line's layout: `YYYY/MM/DD HH:MM:SS [level] PID#TID: message`.
fn assert_nginx_log_line(line: &str, pid: u32) {
    let b = line.as_bytes();
    assert!(line.len() > 20, "{line:?}");
    for (i, c) in b[..19].iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'/', "{line:?}"),
            10 => assert_eq!(*c, b' ', "{line:?}"),
            13 | 16 => assert_eq!(*c, b':', "{line:?}"),
            _ => assert!(c.is_ascii_digit(), "{line:?}"),
        }
    }
    let rest = &line[19..];
    let level_end = rest.find("] ").unwrap();
    let level = &rest[2..level_end];
    assert!(
        ["error", "warn", "notice", "debug"].contains(&level),
        "{line:?}"
    );
    let ids = &rest[level_end + 2..];
    let (pid_text, tid_rest) = ids.split_once('#').unwrap();
    assert_eq!(pid_text, pid.to_string(), "{line:?}");
    let (tid, _) = tid_rest.split_once(": ").unwrap();
    assert!(tid.parse::<u32>().is_ok(), "{line:?}");
}

#[test]
fn flags_glue_as_in_nginx_and_bad_ones_are_refused_with_its_messages() {
    let dir = Scratch::new("nginx-flags");
    dir.write("nginx.conf", &conf(&dir, free_port(), "daemon off;"));
    // -t, -q and -p in one argument, the prefix glued; -c relative to the prefix.
    let prefix = format!("-tqp{}/", dir.0.display());
    let o = nginx(&[&prefix, "-cnginx.conf"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "-q leaves nothing to say");
    let o = nginx(&["-x"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "halo: invalid option: \"x\"\n");
    let o = nginx(&["-s", "kill"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "halo: invalid option: \"-s kill\"\n");
    let o = nginx(&["-c"]);
    assert_eq!(stderr(&o), "halo: option \"-c\" requires file name\n");
    let o = nginx(&["conf"]);
    assert_eq!(stderr(&o), "halo: invalid option: \"conf\"\n");
}

#[test]
fn t_reports_success_in_two_lines_and_failure_with_file_and_line() {
    let dir = Scratch::new("nginx-t");
    let good = dir.write("nginx.conf", &conf(&dir, free_port(), "daemon off;"));
    let o = nginx(&["-t", "-c", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let g = good.display();
    assert_eq!(
        stderr(&o),
        format!(
            "halo: the configuration file {g} syntax is ok\n\
             halo: configuration file {g} test is successful\n"
        )
    );
    let bad = dir.write(
        "bad.conf",
        "daemon off;\nevents { }\nhttp {\n    server {\n        frobnicate on;\n    }\n}\n",
    );
    let o = nginx(&["-t", "-c", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let b = bad.display();
    assert_eq!(
        stderr(&o),
        format!(
            "halo: [emerg] unknown directive \"frobnicate\" in {b}:5\n\
             halo: configuration file {b} test failed\n"
        )
    );
    // -g is checked as nginx checks it.
    let o = nginx(&["-t", "-c", good.to_str().unwrap(), "-g", "daemon off"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(
            "halo: [emerg] unexpected end of parameter, expecting \";\" in command line\n"
        ),
        "{}",
        stderr(&o)
    );
    let o = nginx(&["-t", "-c", good.to_str().unwrap(), "-g", "daemon on;"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "[emerg] \"daemon\" directive is duplicate in {g}:3"
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn capital_t_dumps_every_file_after_the_check() {
    let dir = Scratch::new("nginx-dump");
    dir.write("extra.conf", "daemon off;\n");
    let main = conf(&dir, free_port(), "include extra.conf;");
    let path = dir.write("nginx.conf", &main);
    let o = nginx(&["-T", "-q", "-c", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout,
        format!(
            "# configuration file {}:\n{main}\n# configuration file {}:\ndaemon off;\n\n",
            path.display(),
            dir.path("extra.conf").display()
        )
    );
}

#[test]
fn s_without_a_pid_file_fails_with_nginx_message() {
    let dir = Scratch::new("nginx-s");
    let path = dir.write("nginx.conf", &conf(&dir, free_port(), "daemon off;"));
    let o = nginx(&["-s", "reload", "-c", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "halo: [error] open() \"{}\" failed (2: No such file or directory)\n",
            dir.path("nginx.pid").display()
        )
    );
    std::fs::write(dir.path("nginx.pid"), "12ab\n").unwrap();
    let o = nginx(&["-sreload", "-c", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "halo: [error] invalid PID number \"12ab\" in \"{}\"\n",
            dir.path("nginx.pid").display()
        )
    );
}

#[test]
fn capital_v_names_modules_as_nginx_test_harness_reads_them() {
    let o = nginx(&["-V"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stderr(&o);
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("nginx version: nginx/1.22.1 (halo/"));
    let configure = text
        .lines()
        .find(|l| l.starts_with("configure arguments:"))
        .unwrap();
    for present in [
        "--with-http_stub_status_module",
        "--prefix=/usr/share/nginx",
    ] {
        assert!(configure.contains(present), "{configure}");
    }
    for absent in ["--without-http_ssi_module", "--without-http_charset_module"] {
        assert!(configure.contains(absent), "{configure}");
    }
    // What halo implements of nginx's default modules is not listed as missing.
    for implemented in [
        "proxy",
        "upstream_least_conn",
        "limit_req",
        "auth_basic",
        "access",
    ] {
        assert!(!configure.contains(&format!("--without-http_{implemented}")));
    }
    let v = nginx(&["-v"]);
    assert_eq!(stderr(&v).lines().count(), 1);
}

#[test]
fn running_writes_the_pid_file_and_nginx_error_log_reopened_on_usr1() {
    let dir = Scratch::new("nginx-run");
    let port = free_port();
    dir.write("nginx.conf", &conf(&dir, port, "daemon off;"));
    let prefix = format!("{}/", dir.0.display());
    let console = dir.path("console.log");
    let mut child = KillOnDrop(
        Command::new(halo_bin())
            .args([
                "nginx",
                "-p",
                &prefix,
                "-c",
                "nginx.conf",
                "-e",
                "error.log",
            ])
            .stderr(std::fs::File::create(&console).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid_file = dir.path("nginx.pid");
    wait_for("the pid file", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n'))
    });
    let pid = child.0.id();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{pid}\n")
    );
    wait_port(port);
    assert!(http_get(port, "/").ends_with("hello\n"));
    let log = dir.path("error.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("[notice]") && text.contains("running"),
        "{text}"
    );
    for line in text.lines() {
        assert_nginx_log_line(line, pid);
    }
    // logrotate: move the log away, then `-s reopen` (SIGUSR1) opens a new one.
    let rotated = dir.path("error.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let o = nginx(&["-p", &prefix, "-c", "nginx.conf", "-s", "reopen"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    wait_for("a reopened error log", || log.exists());
    wait_for("the reopen notice in the rotated log", || {
        std::fs::read_to_string(&rotated).is_ok_and(|t| t.contains("reopening"))
    });
    // A message after the reopen lands in the new file.
    let o = nginx(&["-p", &prefix, "-c", "nginx.conf", "-s", "quit"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!pid_file.exists(), "the pid file is removed at exit");
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(new.contains("[notice]") && new.contains("stop"), "{new}");
    for line in new.lines() {
        assert_nginx_log_line(line, pid);
    }
}

#[test]
fn daemon_on_returns_once_serving_and_s_stop_ends_the_daemon() {
    let dir = Scratch::new("nginx-daemon");
    let port = free_port();
    let path = dir.write("nginx.conf", &conf(&dir, port, ""));
    let path = path.to_str().unwrap();
    // nginx's default is `daemon on`; systemd units say so with -g.
    let o = nginx(&["-c", path, "-g", "daemon on; master_process on;"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Serving and its pid file written when the command returned.
    let pid_file = dir.path("nginx.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_alive(pid));
    assert!(http_get(port, "/").ends_with("hello\n"));
    let session = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Field 6 of /proc/PID/stat is the session id: the daemon leads its own session.
    let after_name = &session[session.rfind(')').unwrap() + 2..];
    let sid: i32 = after_name.split(' ').nth(3).unwrap().parse().unwrap();
    assert_eq!(sid, pid, "{session}");
    let o = nginx(&["-c", path, "-s", "stop"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    wait_for("the daemon to exit", || !process_alive(pid));
    assert!(!pid_file.exists());
}

#[test]
fn daemon_start_failure_is_reported_by_the_starting_command() {
    let dir = Scratch::new("nginx-daemon-fail");
    // The pid file cannot be written: the daemon fails after binding, the command says so.
    let port = free_port();
    let text = conf(&dir, port, "").replace(
        &format!("pid {}/nginx.pid;", dir.0.display()),
        &format!("pid {}/missing/dir/nginx.pid;", dir.0.display()),
    );
    let path = dir.write("nginx.conf", &text);
    let o = nginx(&["-c", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("[emerg]"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nginx.pid"), "{}", stderr(&o));
}
