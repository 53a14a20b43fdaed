//! The live state of every VRRP instance, shared with the state file and `halo status`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// What one instance looks like right now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub state: String,
    pub priority: u8,
    pub effective_priority: u8,
    pub virtual_addresses: Vec<String>,
    /// Number of transitions since start.
    pub transitions: u64,
    /// The reason given for the last transition.
    pub last_reason: String,
    /// Virtual addresses put back after someone else removed them while we were master.
    pub addresses_restored: u64,
    /// The engine's counters (adverts in and out, drops by reason).
    pub counters: BTreeMap<String, u64>,
}

/// The whole board: instances by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub pid: u32,
    pub instances: BTreeMap<String, InstanceStatus>,
    /// Adverts that arrived for a VRID no instance of ours has, by interface.
    pub unknown_vrid: BTreeMap<String, u64>,
}

/// Shared, cheaply updated status; a writer task mirrors it to a JSON file when asked to.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<StatusSnapshot>>,
    changed: Arc<Notify>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusBoard {
    pub fn new() -> Self {
        let snap = StatusSnapshot {
            pid: std::process::id(),
            ..Default::default()
        };
        StatusBoard {
            inner: Arc::new(Mutex::new(snap)),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Replaces one instance's entry.
    pub fn set(&self, status: InstanceStatus) {
        if let Ok(mut g) = self.inner.lock() {
            let entry = g.instances.entry(status.name.clone()).or_default();
            if *entry == status {
                return;
            }
            *entry = status;
        }
        self.changed.notify_one();
    }

    /// Removes an instance (after a reload dropped it).
    pub fn remove(&self, name: &str) {
        if let Ok(mut g) = self.inner.lock() {
            g.instances.remove(name);
        }
        self.changed.notify_one();
    }

    /// Counts an advert for an unknown VRID.
    pub fn count_unknown_vrid(&self, ifname: &str) {
        if let Ok(mut g) = self.inner.lock() {
            *g.unknown_vrid.entry(ifname.to_string()).or_default() += 1;
        }
        self.changed.notify_one();
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        self.inner.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Mirrors the board to `path` (atomically: temporary file, then rename) after each change,
    /// at most every 20 ms.
    pub fn spawn_writer(&self, path: PathBuf) {
        let board = self.clone();
        tokio::spawn(async move {
            loop {
                let snap = board.snapshot();
                if let Ok(json) = serde_json::to_vec_pretty(&snap) {
                    let tmp = path.with_extension("tmp");
                    if tokio::fs::write(&tmp, &json).await.is_ok() {
                        let _ = tokio::fs::rename(&tmp, &path).await;
                    }
                }
                board.changed.notified().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
}
