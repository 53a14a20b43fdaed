//! The seed's system in network namespaces: two balancers running halo on the seed's own nginx.conf
//! and keepalived.conf (addresses moved into 198.18.0.0/15), two web servers, one client.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use halo_testkit::{Lan, Netns, SpawnedChild};

/// The seed's addresses (192.168.2.x) moved into the benchmarking range.
pub const VIP: &str = "198.18.2.242";
pub const LB1: &str = "198.18.2.228";
pub const LB2: &str = "198.18.2.229";
pub const WEB1: &str = "198.18.2.226";
pub const WEB2: &str = "198.18.2.227";
pub const CLIENT: &str = "198.18.2.10";
/// Extra client source addresses, each in its own /24 so that ip_hash spreads them.
pub const CLIENT_SOURCES: usize = 8;

pub fn client_source(i: usize) -> String {
    format!("198.19.{}.10", i + 1)
}

const SEED_NGINX: &str = include_str!("../../../../examples/seed/nginx.conf");
const SEED_MYHOST: &str = include_str!("../../../../examples/seed/conf.d/myhost.conf");
const SEED_XUAD: &str = include_str!("../../../../examples/seed/conf.d/xuad.conf");
const SEED_KA_MASTER: &str = include_str!("../../../../examples/seed/keepalived.conf");
const SEED_KA_BACKUP: &str = include_str!("../../../../examples/seed/keepalived-backup.conf");

/// Where the demo's SMTP sink listens (in the client namespace), standing in for `mail.xuad.com`.
pub const SMTP_PORT: u16 = 2525;

/// The seed's files with its addresses, interface, mail server and check script adapted to the
/// namespaces. (The seed's check script looks for an nginx process, which a halo node has not.)
fn rewrite(text: &str) -> String {
    text.replace("192.168.2.", "198.18.2.")
        .replace("ens32", "eth0")
        .replace("mail.xuad.com", &format!("{CLIENT} {SMTP_PORT}"))
        .replace("/etc/keepalived/nginx_pid.sh", "/bin/true")
}

/// A supervised halo process: restarted at once when it dies, as Docker's `--restart=always` restarts
/// the seed's nginx container, unless it was stopped on purpose.
pub struct Supervised {
    pub name: &'static str,
    child: Arc<Mutex<Option<SpawnedChild>>>,
    pub supervise: Arc<AtomicBool>,
    pub restarts: Arc<Mutex<u32>>,
    start: Arc<dyn Fn() -> anyhow::Result<SpawnedChild> + Send + Sync>,
    pub state_file: PathBuf,
}

impl Supervised {
    fn new(
        name: &'static str,
        state_file: PathBuf,
        start: Arc<dyn Fn() -> anyhow::Result<SpawnedChild> + Send + Sync>,
    ) -> anyhow::Result<Supervised> {
        let child = Arc::new(Mutex::new(Some(start()?)));
        let s = Supervised {
            name,
            child,
            supervise: Arc::new(AtomicBool::new(true)),
            restarts: Arc::new(Mutex::new(0)),
            start,
            state_file,
        };
        s.spawn_supervisor();
        Ok(s)
    }

    fn spawn_supervisor(&self) {
        let child = self.child.clone();
        let supervise = self.supervise.clone();
        let restarts = self.restarts.clone();
        let start = self.start.clone();
        let name = self.name;
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(5));
            let Ok(mut guard) = child.lock() else { return };
            let exited = match guard.as_mut() {
                Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                None => false,
            };
            if exited && supervise.load(Ordering::SeqCst) {
                match start() {
                    Ok(c) => {
                        *guard = Some(c);
                        if let Ok(mut r) = restarts.lock() {
                            *r += 1;
                        }
                    }
                    Err(e) => eprintln!("demo: cannot restart {name}: {e:#}"),
                }
            }
        });
    }

    /// Sends a signal to the running process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let guard = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        match guard.as_ref() {
            Some(c) => c.signal(sig),
            None => anyhow::bail!("{} is not running", self.name),
        }
    }

    /// Stops it on purpose (SIGTERM) and waits for the exit; the supervisor leaves it down.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.supervise.store(false, Ordering::SeqCst);
        self.signal(nix::sys::signal::Signal::SIGTERM)?;
        let mut guard = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(c) = guard.as_mut() {
            c.wait_timeout(Duration::from_secs(10))?;
        }
        *guard = None;
        Ok(())
    }

    /// Starts it again after [`Supervised::stop`] and supervises it again.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let mut guard = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        *guard = Some((self.start)()?);
        self.supervise.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub fn restart_count(&self) -> u32 {
        self.restarts.lock().map(|r| *r).unwrap_or(0)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.supervise.store(false, Ordering::SeqCst);
        if let Ok(mut g) = self.child.lock() {
            if let Some(mut c) = g.take() {
                c.kill();
            }
        }
    }
}

/// Everything the demo built; dropping it removes it all.
pub struct Topology {
    /// A real SMTP server (Python's aiosmtpd) in the client namespace, when installed.
    pub smtp_sink: Option<SpawnedChild>,
    pub balancers: Vec<Supervised>,
    pub webs: Vec<Supervised>,
    pub lan: Lan,
    pub dir: PathBuf,
    /// Keep `dir` (the logs) when dropped: set when the tour fails, so that its message can point at them.
    pub keep_logs: std::cell::Cell<bool>,
    /// The certificate made at start for the balancers' HTTPS server on port 443 (live view).
    pub https: Option<super::https::DemoCertificate>,
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.smtp_sink = None;
        self.balancers.clear();
        self.webs.clear();
        if !self.keep_logs.get() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

impl Topology {
    pub fn lan_host(&self, name: &str) -> &Netns {
        self.lan.host(name)
    }

    /// Builds the namespaces, writes the configuration files and starts every halo.
    /// `https`: add a TLS + HTTP/2 server block on port 443 to the balancers.
    pub fn build(https: bool) -> anyhow::Result<Topology> {
        let halo = std::env::current_exe().context("finding the halo binary")?;
        let dir = std::env::temp_dir().join(format!("halo-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let lan = Lan::new("demo", &["lb1", "lb2", "web1", "web2", "client"])?;
        for (host, addr) in [
            ("lb1", LB1),
            ("lb2", LB2),
            ("web1", WEB1),
            ("web2", WEB2),
            ("client", CLIENT),
        ] {
            lan.add_addr(host, &format!("{addr}/24"))?;
        }
        for i in 0..CLIENT_SOURCES {
            lan.add_addr("client", &format!("{}/32", client_source(i)))?;
        }
        for lb in ["lb1", "lb2"] {
            lan.host(lb).exec_checked(&[
                "ip",
                "route",
                "add",
                "198.19.0.0/16",
                "via",
                CLIENT,
                "dev",
                "eth0",
            ])?;
        }
        // The seed's files, unchanged but for the addresses, the interface and the check script.
        write(&dir.join("nginx/nginx.conf"), SEED_NGINX)?;
        write(&dir.join("nginx/conf.d/myhost.conf"), &rewrite(SEED_MYHOST))?;
        write(&dir.join("nginx/conf.d/xuad.conf"), SEED_XUAD)?;
        let https = if https {
            Some(super::https::prepare(&dir, VIP)?)
        } else {
            None
        };
        write(
            &dir.join("nginx/html/404.html"),
            "<html><body><h1>Sorry, the site is not available</h1></body></html>\n",
        )?;
        write(&dir.join("lb1/keepalived.conf"), &rewrite(SEED_KA_MASTER))?;
        write(&dir.join("lb2/keepalived.conf"), &rewrite(SEED_KA_BACKUP))?;
        for (web, addr) in [("web1", WEB1), ("web2", WEB2)] {
            write(
                &dir.join(format!("{web}/halo.toml")),
                &format!(
                    "[http]\nworker_threads = 1\n\n[[http.servers]]\nlisten = [{{ addr = \"{addr}:80\" }}]\n\n\
                     [[http.servers.locations]]\npath = \"/\"\naction = {{ type = \"return\", code = 200, text = \"{web}\\n\" }}\n"
                ),
            )?;
        }
        let smtp_sink = start_smtp_sink(lan.host("client"), &dir.join("smtp-sink.log"));
        let mut topo = Topology {
            smtp_sink,
            balancers: Vec::new(),
            webs: Vec::new(),
            lan,
            dir: dir.clone(),
            keep_logs: std::cell::Cell::new(false),
            https,
        };
        for web in ["web1", "web2"] {
            let ns_name = topo.lan.host(web).name().to_string();
            let conf = dir.join(format!("{web}/halo.toml"));
            let log = dir.join(format!("{web}/halo.log"));
            let halo = halo.clone();
            let start: Arc<dyn Fn() -> anyhow::Result<SpawnedChild> + Send + Sync> =
                Arc::new(move || {
                    spawn_in(&ns_name, &halo, &["run", "--config", path(&conf)], &log)
                });
            topo.webs.push(Supervised::new(web, PathBuf::new(), start)?);
        }
        for lb in ["lb1", "lb2"] {
            let ns_name = topo.lan.host(lb).name().to_string();
            let nginx = dir.join("nginx/nginx.conf");
            let ka = dir.join(format!("{lb}/keepalived.conf"));
            let state = dir.join(format!("{lb}/state.json"));
            let log = dir.join(format!("{lb}/halo.log"));
            let etc = format!("/etc/nginx={}", dir.join("nginx").display());
            let var = format!("/var/log/nginx={}", dir.join(lb).display());
            let halo = halo.clone();
            let state2 = state.clone();
            let start: Arc<dyn Fn() -> anyhow::Result<SpawnedChild> + Send + Sync> =
                Arc::new(move || {
                    spawn_in(
                        &ns_name,
                        &halo,
                        &[
                            "run",
                            "--nginx",
                            path(&nginx),
                            "--path-map",
                            &etc,
                            "--path-map",
                            &var,
                            "--keepalived",
                            path(&ka),
                            "--state-file",
                            path(&state2),
                        ],
                        &log,
                    )
                });
            topo.balancers.push(Supervised::new(
                if lb == "lb1" { "lb1" } else { "lb2" },
                state,
                start,
            )?);
        }
        Ok(topo)
    }

    /// Which balancer holds the VIP now ("lb1", "lb2", both or none).
    pub fn vip_holders(&self) -> Vec<&'static str> {
        let vip: std::net::IpAddr = VIP
            .parse()
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        ["lb1", "lb2"]
            .into_iter()
            .filter(|h| halo_testkit::has_address(self.lan.host(h), "eth0", vip))
            .collect()
    }

    pub fn balancer(&self, name: &str) -> Option<&Supervised> {
        self.balancers.iter().find(|b| b.name == name)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or("")
}

fn spawn_in(ns: &str, bin: &Path, args: &[&str], log: &Path) -> anyhow::Result<SpawnedChild> {
    let mut cmd: Vec<&str> = vec![path(bin)];
    cmd.extend_from_slice(args);
    halo_testkit::spawn_in_netns(ns, &cmd, log)
}

/// Starts aiosmtpd (Debian python3-aiosmtpd) printing every message it receives, if it is installed.
fn start_smtp_sink(ns: &Netns, log: &Path) -> Option<SpawnedChild> {
    let python = "/usr/bin/python3";
    let has = std::process::Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        println!("  (no python3-aiosmtpd: SMTP alerts go nowhere)");
        return None;
    }
    let listen = format!("{CLIENT}:{SMTP_PORT}");
    let child = ns
        .spawn(
            &[
                python,
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &listen,
                "-c",
                "aiosmtpd.handlers.Debugging",
            ],
            log,
        )
        .ok()?;
    println!("  a real SMTP server (aiosmtpd) on {listen} receives the balancers' alerts.");
    Some(child)
}
