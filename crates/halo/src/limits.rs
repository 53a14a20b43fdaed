//! Process limits: enough file descriptors for `worker_connections`.

/// Raises RLIMIT_NOFILE so that `connections` client connections (each may need an upstream socket
/// too) fit, up to the hard limit. Logs when it cannot.
pub fn raise_nofile(connections: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let want = connections.saturating_mul(2).saturating_add(64);
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < want => {
            let target = want.min(hard);
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
                tracing::warn!("cannot raise the open files limit to {target}: {e}");
            } else if target < want {
                tracing::warn!(
                    "open files limited to {target} (hard limit), {want} wanted for worker_connections"
                );
            }
        }
        _ => {}
    }
}
