//! In-memory LAN of VRRP routers with a simulated clock, per-link loss and partitions.
//! Nothing sleeps: the loop jumps from one timer or packet delivery to the next.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use halo_vrrp::{Action, Instance, InstanceConfig, State};

/// One router on the LAN.
pub struct Router {
    pub name: String,
    pub address: IpAddr,
    pub instance: Option<Instance>,
    /// Virtual addresses currently installed on this router.
    pub installed: BTreeSet<IpAddr>,
    /// (time, from, to, reason) of every transition.
    pub transitions: Vec<(Instant, State, State, String)>,
    /// Times this router sent adverts, with their priority.
    pub adverts_sent: Vec<(Instant, u8)>,
    pub announces: Vec<Instant>,
}

struct InFlight {
    deliver_at: Instant,
    seq: u64,
    from: usize,
    to: usize,
    dst: IpAddr,
    packet: Vec<u8>,
}

/// The LAN: routers, the clock, the wire.
pub struct Lan {
    pub t0: Instant,
    pub now: Instant,
    pub routers: Vec<Router>,
    in_flight: Vec<InFlight>,
    seq: u64,
    /// One-way delay of every delivery.
    pub delay: Duration,
    /// Directed links that drop everything (from, to).
    cut: HashSet<(usize, usize)>,
    /// Directed loss probability in parts per million.
    loss_ppm: HashMap<(usize, usize), u32>,
    rng: u64,
}

impl Lan {
    /// Starts every router at `t0` with its configuration.
    pub fn new(configs: Vec<InstanceConfig>) -> Lan {
        let t0 = Instant::now();
        let mut lan = Lan {
            t0,
            now: t0,
            routers: Vec::new(),
            in_flight: Vec::new(),
            seq: 0,
            delay: Duration::ZERO,
            cut: HashSet::new(),
            loss_ppm: HashMap::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
        };
        for cfg in configs {
            lan.routers.push(Router {
                name: cfg.name.clone(),
                address: cfg.primary_address,
                instance: None,
                installed: BTreeSet::new(),
                transitions: Vec::new(),
                adverts_sent: Vec::new(),
                announces: Vec::new(),
            });
            let i = lan.routers.len() - 1;
            lan.start(i, cfg);
        }
        lan
    }

    /// Seconds since t0 as an Instant.
    pub fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    pub fn at_micros(&self, micros: u64) -> Instant {
        self.t0 + Duration::from_micros(micros)
    }

    /// (Re)starts router `i` now with `cfg`.
    pub fn start(&mut self, i: usize, cfg: InstanceConfig) {
        let instance = Instance::new(cfg, self.now).unwrap();
        self.routers[i].instance = Some(instance);
        self.drain(i);
    }

    /// Kills router `i` without a goodbye (kill -9, power loss). Its addresses vanish with it.
    pub fn crash(&mut self, i: usize) {
        self.routers[i].instance = None;
        self.routers[i].installed.clear();
        self.in_flight.retain(|p| p.from != i);
    }

    /// Graceful stop (RFC 5798 §6.4.3 Shutdown).
    pub fn shutdown(&mut self, i: usize) {
        let now = self.now;
        if let Some(inst) = self.routers[i].instance.as_mut() {
            inst.shutdown(now);
        }
        self.drain(i);
    }

    pub fn instance(&mut self, i: usize) -> &mut Instance {
        self.routers[i].instance.as_mut().unwrap()
    }

    pub fn state(&self, i: usize) -> Option<State> {
        self.routers[i].instance.as_ref().map(|r| r.state())
    }

    /// Cuts both directions between `a` and `b`.
    pub fn partition(&mut self, a: usize, b: usize) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts one direction only.
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Drops a fraction of packets from `a` to `b` (deterministic pseudo-random).
    pub fn set_loss(&mut self, from: usize, to: usize, fraction: f64) {
        self.loss_ppm
            .insert((from, to), (fraction * 1_000_000.0) as u32);
    }

    pub fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|i| self.state(*i) == Some(State::Master))
            .collect()
    }

    /// Routers that currently have `vip` installed.
    pub fn holders(&self, vip: IpAddr) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|i| self.routers[*i].installed.contains(&vip))
            .collect()
    }

    /// Time of the first transition of `i` into `to` at or after `after`.
    pub fn became(&self, i: usize, to: State, after: Instant) -> Option<Instant> {
        self.routers[i]
            .transitions
            .iter()
            .find(|(t, _, s, _)| *s == to && *t >= after)
            .map(|(t, ..)| *t)
    }

    pub fn last_advert_before(&self, i: usize, before: Instant) -> Option<Instant> {
        self.routers[i]
            .adverts_sent
            .iter()
            .filter(|(t, _)| *t <= before)
            .map(|(t, _)| *t)
            .next_back()
    }

    fn next_random(&mut self) -> u32 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as u32 % 1_000_000
    }

    fn drain(&mut self, i: usize) {
        let now = self.now;
        while let Some(action) = self.routers[i]
            .instance
            .as_mut()
            .and_then(|inst| inst.poll_action())
        {
            match action {
                Action::SendAdvert { dst, packet } => {
                    self.routers[i].adverts_sent.push((now, packet[2]));
                    let targets: Vec<usize> = if dst.is_multicast() {
                        (0..self.routers.len()).filter(|j| *j != i).collect()
                    } else {
                        (0..self.routers.len())
                            .filter(|j| self.routers[*j].address == dst)
                            .collect()
                    };
                    for to in targets {
                        if self.cut.contains(&(i, to)) {
                            continue;
                        }
                        if let Some(ppm) = self.loss_ppm.get(&(i, to)).copied() {
                            if self.next_random() < ppm {
                                continue;
                            }
                        }
                        self.seq += 1;
                        self.in_flight.push(InFlight {
                            deliver_at: now + self.delay,
                            seq: self.seq,
                            from: i,
                            to,
                            dst,
                            packet: packet.clone(),
                        });
                    }
                }
                Action::AddAddresses(addrs) => self.routers[i].installed.extend(addrs),
                Action::RemoveAddresses(addrs) => {
                    for a in addrs {
                        self.routers[i].installed.remove(&a);
                    }
                }
                Action::Announce(_) => self.routers[i].announces.push(now),
                Action::StateChanged { from, to, reason } => {
                    self.routers[i].transitions.push((now, from, to, reason))
                }
            }
        }
    }

    /// Runs every event up to and including `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Instant) {
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(
                steps < 10_000_000,
                "simulation does not converge (timer loop?)"
            );
            let next_timer = (0..self.routers.len())
                .filter_map(|i| {
                    self.routers[i]
                        .instance
                        .as_ref()
                        .and_then(|r| r.poll_timeout())
                        .map(|t| (t, i))
                })
                .min();
            let next_packet = self.in_flight.iter().map(|p| (p.deliver_at, p.seq)).min();
            let packet_first = match (next_packet, next_timer) {
                (Some((p, _)), Some((t, _))) => p <= t,
                (Some(_), None) => true,
                _ => false,
            };
            if packet_first {
                let (at, seq) = next_packet.unwrap();
                if at > until {
                    break;
                }
                let idx = self.in_flight.iter().position(|p| p.seq == seq).unwrap();
                let p = self.in_flight.swap_remove(idx);
                self.now = self.now.max(at);
                let (src, now) = (self.routers[p.from].address, self.now);
                if let Some(inst) = self.routers[p.to].instance.as_mut() {
                    inst.handle_packet(now, src, p.dst, 255, &p.packet);
                }
                self.drain(p.to);
            } else if let Some((t, i)) = next_timer {
                if t > until {
                    break;
                }
                self.now = self.now.max(t);
                let now = self.now;
                self.instance(i).handle_timeout(now);
                self.drain(i);
            } else {
                break;
            }
        }
        assert!(self.now <= until, "simulation overran");
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }
}
