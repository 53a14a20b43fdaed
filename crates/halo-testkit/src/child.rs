//! A process started inside a namespace, killed when the guard drops.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// A child process started by [`crate::Netns::spawn`]. Dropping it kills the process (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct SpawnedChild {
    child: Child,
    log_path: PathBuf,
}

impl SpawnedChild {
    pub(crate) fn new(child: Child, log_path: PathBuf) -> Self {
        Self { child, log_path }
    }

    /// The process id (the command itself: `ip netns exec` execs it in place).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log written so far (empty if it cannot be read).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends `signal` to the process (for example SIGTERM to test a graceful stop).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(self.child.id())?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)?;
        Ok(())
    }

    /// Returns the exit status if the process has exited.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let mut status = None;
        let _ = crate::wait_until(timeout, Duration::from_millis(20), || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        Ok(status)
    }

    /// Kills the process now and reaps it.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for SpawnedChild {
    fn drop(&mut self) {
        self.kill();
    }
}
