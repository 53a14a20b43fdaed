//! SMTP alerts on VRRP transitions, as keepalived sends them (`smtp_alert`, `notification_email`,
//! `notification_email_from`, `smtp_server`, `smtp_connect_timeout`).
//!
//! Alerts queue on a task of their own, so a slow or dead mail server never delays VRRP. A server
//! that does not answer is logged and the alert retried until `smtp_connect_timeout` has passed since
//! the transition; then it is dropped with an error in the log.

use std::time::Duration;

use halo_config::vrrp::GlobalDefs;
use halo_vrrp::State;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One alert to send.
#[derive(Debug)]
struct Alert {
    instance: String,
    to: State,
    at: Instant,
}

/// The sending side of the alert queue.
#[derive(Debug, Clone)]
pub struct Alerter {
    tx: mpsc::UnboundedSender<Alert>,
}

impl Alerter {
    /// Starts the queue when the global settings name a server and at least one recipient.
    pub fn spawn(global: &GlobalDefs) -> Option<Alerter> {
        let server = global.smtp_server.clone()?;
        if global.notification_email.is_empty() {
            return None;
        }
        let from = global
            .notification_email_from
            .clone()
            .unwrap_or_else(|| format!("keepalived@{}", hostname()));
        let from: Mailbox = match from.parse() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(
                    "notification_email_from {from:?} is not a mail address ({e}); no alerts"
                );
                return None;
            }
        };
        let to: Vec<Mailbox> = global
            .notification_email
            .iter()
            .filter_map(|e| match e.parse() {
                Ok(m) => Some(m),
                Err(err) => {
                    tracing::error!(
                        "notification_email {e:?} is not a mail address ({err}); skipped"
                    );
                    None
                }
            })
            .collect();
        let router_id = global.router_id.clone().unwrap_or_else(hostname);
        let timeout = global.smtp_connect_timeout.max(Duration::from_secs(1));
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
                .port(server.port)
                .timeout(Some(timeout))
                .build();
        let (tx, mut rx) = mpsc::unbounded_channel::<Alert>();
        tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                let Some(message) = message(&from, &to, &router_id, &alert) else {
                    continue;
                };
                let deadline = alert.at + timeout;
                let mut attempt = 0u32;
                loop {
                    attempt += 1;
                    match tokio::time::timeout_at(deadline, transport.send(message.clone())).await {
                        Ok(Ok(_)) => {
                            tracing::info!(
                                "SMTP alert sent for {} entering {}",
                                alert.instance,
                                alert.to
                            );
                            break;
                        }
                        Ok(Err(e)) if Instant::now() + Duration::from_millis(500) < deadline => {
                            tracing::warn!(
                                "SMTP alert for {} (attempt {attempt}) failed: {e}; retrying",
                                alert.instance
                            );
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::error!("SMTP alert for {} dropped: {e}", alert.instance);
                            break;
                        }
                        Err(_) => {
                            tracing::error!(
                                "SMTP alert for {} dropped: no answer from {}:{} within smtp_connect_timeout",
                                alert.instance,
                                server.host,
                                server.port
                            );
                            break;
                        }
                    }
                }
            }
        });
        Some(Alerter { tx })
    }

    /// Queues an alert for a transition; returns at once.
    pub fn transition(&self, instance: &str, to: State) {
        if matches!(to, State::Master | State::Backup | State::Fault) {
            let _ = self.tx.send(Alert {
                instance: instance.to_string(),
                to,
                at: Instant::now(),
            });
        }
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// keepalived's alert: subject `[router_id] VRRP Instance NAME - Entering STATE state` and a
/// one-line body.
fn message(from: &Mailbox, to: &[Mailbox], router_id: &str, alert: &Alert) -> Option<Message> {
    let body = match alert.to {
        State::Master => "=> VRRP Instance is now owning VRRP VIPs <=",
        State::Backup => "=> VRRP Instance is nolonger owning VRRP VIPs <=",
        _ => "=> VRRP Instance is in FAULT state <=",
    };
    let mut b = Message::builder().from(from.clone()).subject(format!(
        "[{router_id}] VRRP Instance {} - Entering {} state",
        alert.instance, alert.to
    ));
    for m in to {
        b = b.to(m.clone());
    }
    match b.body(format!("{body}\r\n")) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!("cannot build the SMTP alert: {e}");
            None
        }
    }
}
