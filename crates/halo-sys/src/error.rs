//! The errors of this crate.

use std::io;

/// Everything that can go wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// A system call failed; `context` says which operation.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No interface of that name exists in this network namespace.
    #[error("no network interface named {0:?}")]
    NoSuchInterface(String),
    /// The interface has no 6-byte link-layer address (not Ethernet-like).
    #[error("interface {0:?} has no Ethernet MAC address")]
    NoMacAddress(String),
    /// An address of the wrong family was given (for example an IPv6 source on an IPv4 socket).
    #[error("address family mismatch: {0}")]
    FamilyMismatch(String),
    /// A netlink request was refused or failed.
    #[error("netlink {operation}: {source}")]
    Netlink {
        /// What was being done.
        operation: String,
        /// The rtnetlink error (kernel errno inside for refusals).
        #[source]
        source: rtnetlink::Error,
    },
}

/// Result with [`SysError`].
pub type Result<T> = std::result::Result<T, SysError>;

/// Adds context to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| SysError::Io {
            context: context(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| SysError::Io {
            context: context(),
            source: io::Error::from(errno),
        })
    }
}
