//! What the engine asks its driver to do, and the states it reports.

use std::fmt;
use std::net::IpAddr;

/// State of an instance (RFC 5798 §6.4, plus keepalived's FAULT and STOP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started (RFC 5798 §6.4.1); only seen as the `from` of the first transition.
    Initialize,
    /// Monitoring the master (RFC 5798 §6.4.2).
    Backup,
    /// Forwarding for the virtual addresses (RFC 5798 §6.4.3).
    Master,
    /// keepalived FAULT: tracking says we must not serve; no adverts, no addresses.
    Fault,
    /// Shut down; the instance ignores all further input.
    Stopped,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stopped => "STOP",
        })
    }
}

/// One thing the driver must do now, in the order [`crate::Instance::poll_action`] yields them.
///
/// On every transition `StateChanged` comes first, then the actions that carry it out (for example on
/// becoming master: `StateChanged`, `SendAdvert`, `AddAddresses`, `Announce` × `garp.master_repeat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this complete VRRP message (checksum included) as the payload of an IP packet with protocol
    /// 112, TTL/hop limit 255, source `primary_address`, destination `dst`.
    SendAdvert {
        /// Multicast group or one unicast peer.
        dst: IpAddr,
        /// The VRRP message.
        packet: Vec<u8>,
    },
    /// Install these virtual addresses on the interface.
    AddAddresses(Vec<IpAddr>),
    /// Remove these virtual addresses from the interface.
    RemoveAddresses(Vec<IpAddr>),
    /// Send one round of gratuitous ARP (IPv4) / unsolicited NA (IPv6) for these addresses now.
    /// Bursts, repeats and refreshes are scheduled by the engine per `GarpConfig`.
    Announce(Vec<IpAddr>),
    /// The instance changed state; `reason` is a human sentence for logs and hooks.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why, e.g. "master down timer expired (no advert for 3.61 s)".
        reason: String,
    },
}
