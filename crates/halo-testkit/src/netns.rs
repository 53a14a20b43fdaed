//! One network namespace, created with `ip netns add` and deleted on drop.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context};
use nix::sched::{setns, CloneFlags};

use crate::SpawnedChild;

/// Prefix of every namespace this crate creates.
const NAME_PREFIX: &str = "halo-";

/// A network namespace named `halo-<pid>-<tag>` with `lo` up.
///
/// Dropping it kills every process still running in it (`ip netns pids` + SIGKILL) and deletes it, which also
/// destroys its interfaces (and the peers of its veth pairs).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `halo-<pid>-<tag>` and brings `lo` up.
    ///
    /// `tag` must be unique among the namespaces alive in this process (tests run in parallel threads).
    pub fn new(tag: &str) -> anyhow::Result<Netns> {
        if tag.is_empty()
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("namespace tag {tag:?} must be non-empty ASCII letters, digits, '-' or '_'");
        }
        reap_stale_namespaces();
        let name = format!("{NAME_PREFIX}{}-{tag}", std::process::id());
        run_checked(Command::new("ip").args(["netns", "add", &name]))
            .with_context(|| format!("creating network namespace {name}"))?;
        // From here on, Drop removes it even if bringing lo up fails.
        let ns = Netns { name };
        ns.exec_checked(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `cmd` inside the namespace (`ip netns exec NAME cmd...`) and returns its output, whatever its
    /// exit status.
    pub fn exec(&self, cmd: &[&str]) -> anyhow::Result<Output> {
        let Some((program, args)) = cmd.split_first() else {
            bail!("exec: empty command");
        };
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {cmd:?} in {}", self.name))
    }

    /// Runs `cmd` inside the namespace, fails unless it exits 0, and returns its stdout.
    pub fn exec_checked(&self, cmd: &[&str]) -> anyhow::Result<String> {
        let output = self.exec(cmd)?;
        if !output.status.success() {
            bail!(
                "{cmd:?} in {} failed ({}): {}",
                self.name,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `cmd` inside the namespace with stdout and stderr appended to `log_path`. The returned guard kills
    /// the process when dropped (and the namespace's own drop kills whatever is left).
    pub fn spawn(&self, cmd: &[&str], log_path: impl AsRef<Path>) -> anyhow::Result<SpawnedChild> {
        spawn_in_netns(&self.name, cmd, log_path)
    }

    /// Runs `f` on a new thread that first joined this namespace (`setns(CLONE_NEWNET)`), and returns its
    /// result. Sockets created inside `f` belong to the namespace for their whole life, so they may be returned
    /// and used from any thread. A panic inside `f` is resumed on the caller.
    pub fn run_in<F, R>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let name = self.name.clone();
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || -> anyhow::Result<R> {
                enter_netns(&name)?;
                Ok(f())
            });
            match worker.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Process ids running in the namespace.
    pub fn pids(&self) -> Vec<i32> {
        let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_namespace(&self.name, &self.pids());
    }
}

/// Kills `pids` and deletes the namespace, ignoring errors (it is cleanup).
fn delete_namespace(name: &str, pids: &[i32]) {
    let own = i32::try_from(std::process::id()).unwrap_or(0);
    // Never ourselves, even if a thread of this process moved its main thread into the namespace.
    for &pid in pids.iter().filter(|&&pid| pid != own) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deleted = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !deleted {
        eprintln!("halo-testkit: could not delete network namespace {name}");
    }
}

/// Deletes namespaces named `halo-<pid>-...` whose creating process no longer exists (left behind by a test
/// run that was killed with SIGKILL, where no destructor ran). Called by [`Netns::new`].
pub fn reap_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let ns = Netns { name };
            drop(ns);
        }
    }
}

/// Runs a host command and fails unless it exits 0.
pub(crate) fn run_checked(cmd: &mut Command) -> anyhow::Result<String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Moves the calling thread into the named network namespace (`setns(CLONE_NEWNET)`) for the rest of
/// its life. Use it at the start of a thread spawned for that purpose.
pub fn enter_netns(name: &str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{name}");
    let ns_file = File::open(&path).with_context(|| format!("opening {path}"))?;
    setns(&ns_file, CloneFlags::CLONE_NEWNET).context("setns into the namespace")?;
    Ok(())
}

/// Starts `cmd` in the named namespace (`ip netns exec`), stdout and stderr appended to `log_path`;
/// the child is killed when the returned guard drops. [`Netns::spawn`] for code that holds only the
/// namespace's name (a supervisor thread, say).
pub fn spawn_in_netns(
    name: &str,
    cmd: &[&str],
    log_path: impl AsRef<Path>,
) -> anyhow::Result<SpawnedChild> {
    let Some((program, args)) = cmd.split_first() else {
        bail!("spawn: empty command");
    };
    let log_path = log_path.as_ref().to_path_buf();
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening log {}", log_path.display()))?;
    let child = Command::new("ip")
        .args(["netns", "exec", name, program])
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("spawning {cmd:?} in {name}"))?;
    Ok(SpawnedChild::new(child, log_path))
}
