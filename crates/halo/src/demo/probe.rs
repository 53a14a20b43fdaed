//! The demo's client: HTTP requests through the VIP, each on a new connection, from chosen source
//! addresses, recording every outcome.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

/// How long one request may take before it counts as failed (the seed test 5 bound).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(3);

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: Instant,
    pub took: Duration,
    /// The web server that answered ("web1", "web2"), or `None` on failure.
    pub backend: Option<String>,
    pub error: Option<String>,
}

/// A running prober; stops when dropped.
pub struct Prober {
    stop: Arc<AtomicBool>,
    pub outcomes: Arc<Mutex<Vec<Outcome>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Prober {
    /// Starts one thread per source address in namespace `ns`, each sending a request to `vip:80`
    /// every `every`.
    pub fn start(ns: &str, sources: Vec<IpAddr>, vip: IpAddr, every: Duration) -> Prober {
        Self::spawn(Some(ns.to_string()), sources, vip, 80, every)
    }

    /// Like [`Prober::start`] without a namespace: one source, `127.0.0.1` to `target:port`.
    pub fn start_local(target: IpAddr, port: u16, every: Duration) -> Prober {
        let src = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        Self::spawn(None, vec![src], target, port, every)
    }

    fn spawn(
        ns: Option<String>,
        sources: Vec<IpAddr>,
        vip: IpAddr,
        port: u16,
        every: Duration,
    ) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for src in sources {
            let (stop, outcomes, ns) = (stop.clone(), outcomes.clone(), ns.clone());
            threads.push(std::thread::spawn(move || {
                if let Some(ns) = &ns {
                    if let Err(e) = halo_testkit::enter_netns(ns) {
                        eprintln!("demo: prober cannot enter {ns}: {e:#}");
                        return;
                    }
                }
                let mut next = Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    let at = Instant::now();
                    let result = request(src, SocketAddr::new(vip, port));
                    let o = Outcome {
                        at,
                        took: at.elapsed(),
                        backend: result.as_ref().ok().cloned(),
                        error: result.err(),
                    };
                    if let Ok(mut v) = outcomes.lock() {
                        v.push(o);
                    }
                    next += every;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            }));
        }
        Prober {
            stop,
            outcomes,
            threads,
        }
    }

    /// Outcomes recorded since `since`.
    pub fn since(&self, since: Instant) -> Vec<Outcome> {
        self.outcomes
            .lock()
            .map(|v| v.iter().filter(|o| o.at >= since).cloned().collect())
            .unwrap_or_default()
    }
}

/// One `GET /` on a new connection from `src`; returns the body's first word (the web server's name).
fn request(src: IpAddr, target: SocketAddr) -> Result<String, String> {
    let start = Instant::now();
    let domain = if target.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::STREAM, None).map_err(|e| e.to_string())?;
    sock.bind(&SocketAddr::new(src, 0).into())
        .map_err(|e| format!("bind: {e}"))?;
    sock.connect_timeout(&target.into(), REQUEST_DEADLINE)
        .map_err(|e| format!("connect: {e}"))?;
    let mut stream: TcpStream = sock.into();
    let left = REQUEST_DEADLINE
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(512);
    stream
        .read_to_end(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let status_ok = text.starts_with("HTTP/1.1 200");
    if !status_ok {
        return Err(format!(
            "status: {}",
            text.lines().next().unwrap_or("(empty response)")
        ));
    }
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    Ok(body.trim().to_string())
}
