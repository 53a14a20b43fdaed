//! `daemon on`: go to the background the way service managers expect of nginx (systemd's
//! `Type=forking`): the command returns 0 once the server is serving and its pid file is written,
//! or non-zero with the error on stderr if it could not start.
//!
//! halo does not fork a running process (forking a multi-threaded program is unsafe, and halo
//! allows no `unsafe` outside halo-sys). It starts itself again instead, with the same arguments,
//! as the daemon: the daemon opens a session of its own (no controlling terminal, not in the
//! shell's process group), serves, and writes one line to its stdout, a pipe the first process
//! reads, when it is ready. The first process then exits 0 and the daemon carries on, adopted
//! by init; had the daemon exited instead, the first process exits with its status.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

/// Set in the environment of the process started as the daemon.
const DAEMON_ENV: &str = "HALO_NGINX_DAEMON";
/// What the daemon says on its stdout when it is serving.
const READY_LINE: &str = "halo: ready\n";

/// Whether this process is the daemon started by [`detach`].
pub fn is_daemon() -> bool {
    std::env::var_os(DAEMON_ENV).is_some()
}

/// Starts `halo nginx ARGS` as the daemon and waits until it is serving (exit 0) or has
/// exited (its status).
pub fn detach(args: &[String]) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("nginx")
        .args(args)
        .env(DAEMON_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if line == READY_LINE {
        return Ok(ExitCode::SUCCESS);
    }
    let status = child.wait()?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// In the daemon, first thing: a session of its own.
pub fn start_session() {
    if let Err(e) = nix::unistd::setsid() {
        eprintln!("halo: [alert] setsid() failed ({e})");
    }
}

/// In the daemon, once serving: tells the first process, then points stdin and stdout at
/// /dev/null (the pipe's reader is gone) and, as nginx does, stderr at the error log file when
/// there is one (`error_log stderr` keeps it where the service manager collects it). Until
/// then startup errors reach the terminal of the command that started the daemon.
pub fn notify_ready(stderr_to: Option<&Path>) {
    let mut out = std::io::stdout();
    let _ = out.write_all(READY_LINE.as_bytes());
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stdin(&null);
    }
    if let Some(path) = stderr_to {
        if let Ok(log) = std::fs::OpenOptions::new().append(true).open(path) {
            let _ = nix::unistd::dup2_stderr(&log);
        }
    }
}
