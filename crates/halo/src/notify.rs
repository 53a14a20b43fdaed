//! Notify hooks as keepalived runs them, but in order.
//!
//! keepalived starts `notify_master`/`notify_backup`/`notify_fault`/`notify_stop` with only their
//! configured arguments, then the generic `notify` with four more: `INSTANCE|GROUP`, the name, the new
//! state (`MASTER`, `BACKUP`, `FAULT`, `STOP`) and the priority. keepalived forks them without waiting,
//! so two quick transitions can run their scripts out of order (keepalived issues #996, #1055). halo
//! queues them per instance and runs them one after another in event order, on a task of their own, so
//! a slow script never delays an advertisement.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::command_line::ScriptCommand;

/// The states a notify hook is told about, spelled as keepalived spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    Stop,
}

impl NotifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
        }
    }
}

/// Whether hooks belong to a VRRP instance or a sync group (the first extra argument of `notify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Instance,
    Group,
}

/// The hooks configured for one instance or sync group.
#[derive(Debug, Clone, Default)]
pub struct NotifyHooks {
    pub master: Option<ScriptCommand>,
    pub backup: Option<ScriptCommand>,
    pub fault: Option<ScriptCommand>,
    pub stop: Option<ScriptCommand>,
    pub generic: Option<ScriptCommand>,
}

impl NotifyHooks {
    pub fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.generic.is_none()
    }
}

/// One transition to report.
#[derive(Debug, Clone)]
pub struct NotifyEvent {
    pub state: NotifyState,
    pub priority: u8,
}

/// Longest a notify script may run before it is killed (keepalived's default script timeout is
/// unbounded for notify scripts; an unbounded hook would stall the queue forever).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// A per-instance queue: events go in without waiting, scripts run serially in arrival order.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: Option<mpsc::UnboundedSender<NotifyEvent>>,
}

impl Notifier {
    /// Starts the queue's task on the current runtime (nothing is started when there are no hooks).
    pub fn spawn(scope: Scope, name: String, hooks: NotifyHooks) -> Notifier {
        if hooks.is_empty() {
            return Notifier { tx: None };
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<NotifyEvent>();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                run_hooks(scope, &name, &hooks, &ev).await;
            }
        });
        Notifier { tx: Some(tx) }
    }

    /// Queues an event; returns at once.
    pub fn send(&self, ev: NotifyEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(ev);
        }
    }
}

async fn run_hooks(scope: Scope, name: &str, hooks: &NotifyHooks, ev: &NotifyEvent) {
    let specific = match ev.state {
        NotifyState::Master => &hooks.master,
        NotifyState::Backup => &hooks.backup,
        NotifyState::Fault => &hooks.fault,
        NotifyState::Stop => &hooks.stop,
    };
    if let Some(cmd) = specific {
        cmd.run(&[], Some(NOTIFY_TIMEOUT)).await;
    }
    if let Some(cmd) = &hooks.generic {
        let args = [
            match scope {
                Scope::Instance => "INSTANCE".to_string(),
                Scope::Group => "GROUP".to_string(),
            },
            name.to_string(),
            ev.state.as_str().to_string(),
            ev.priority.to_string(),
        ];
        cmd.run(&args, Some(NOTIFY_TIMEOUT)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// 20 quick events: the generic hook sees them in order with keepalived's arguments, each specific
    /// hook runs before the generic one of the same event.
    #[tokio::test]
    async fn hooks_run_serially_in_event_order() {
        let log = std::env::temp_dir().join(format!("halo-notify-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let l = log.display();
        // The specific hook sleeps a little so that a concurrent runner would reorder lines.
        let hooks = NotifyHooks {
            master: Some(ScriptCommand::new(
                &format!("/bin/sh -c 'sleep 0.02; echo specific-master >> {l}'"),
                None,
                None,
            )),
            backup: Some(ScriptCommand::new(
                &format!("/bin/sh -c 'echo specific-backup >> {l}'"),
                None,
                None,
            )),
            generic: Some(ScriptCommand::new(
                &format!("/bin/sh -c 'echo \"$@\" >> {l}' sh"),
                None,
                None,
            )),
            ..Default::default()
        };
        let n = Notifier::spawn(Scope::Instance, "VI_1".into(), hooks);
        let mut expected = Vec::new();
        for i in 0..20 {
            let state = if i % 2 == 0 {
                NotifyState::Master
            } else {
                NotifyState::Backup
            };
            n.send(NotifyEvent {
                state,
                priority: 100,
            });
            expected.push(format!("specific-{}", state.as_str().to_lowercase()));
            expected.push(format!("INSTANCE VI_1 {} 100", state.as_str()));
        }
        // Wait (bounded) until all 40 lines are there.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let lines = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= 40 || std::time::Instant::now() > deadline {
                break lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let _ = std::fs::remove_file(&log);
        assert_eq!(lines, expected);
    }
}
