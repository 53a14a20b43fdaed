//! Shared pieces of the end-to-end tests: config writers, process starters, probes.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use halo_testkit::{has_address, Lan, Netns, SpawnedChild, HOST_IFNAME};

/// The halo binary cargo built for these tests.
pub fn halo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_halo")
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("halo-e2e-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("HALO_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One VRRP instance in keepalived.conf syntax (read by both keepalived and halo).
#[derive(Clone)]
pub struct KaConf {
    pub version: u8,
    pub state: &'static str,
    pub priority: u8,
    pub advert_int: &'static str,
    pub auth_pass: Option<&'static str>,
    pub vip: &'static str,
    pub vrid: u8,
    pub nopreempt: bool,
    pub preempt_delay: Option<&'static str>,
    pub extra_instance: String,
    pub extra_top: String,
}

impl KaConf {
    pub fn new(version: u8, priority: u8, advert_int: &'static str, vip: &'static str) -> KaConf {
        KaConf {
            version,
            state: "BACKUP",
            priority,
            advert_int,
            auth_pass: None,
            vip,
            vrid: 51,
            nopreempt: false,
            preempt_delay: None,
            extra_instance: String::new(),
            extra_top: String::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s += "global_defs {\n    router_id halo_test\n";
        s += &format!("    vrrp_version {}\n", self.version);
        s += "}\n";
        s += &self.extra_top;
        s += "vrrp_instance VI_1 {\n";
        s += &format!("    state {}\n    interface {HOST_IFNAME}\n", self.state);
        s += &format!(
            "    virtual_router_id {}\n    priority {}\n    advert_int {}\n",
            self.vrid, self.priority, self.advert_int
        );
        if let Some(p) = self.auth_pass {
            s += &format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}\n"
            );
        }
        if self.nopreempt {
            s += "    nopreempt\n";
        }
        if let Some(d) = self.preempt_delay {
            s += &format!("    preempt_delay {d}\n");
        }
        s += &format!("    virtual_ipaddress {{\n        {}\n    }}\n", self.vip);
        s += &self.extra_instance;
        s += "}\n";
        s
    }
}

/// A halo or keepalived process on one host of a LAN.
pub struct Node {
    pub child: SpawnedChild,
    pub state_file: PathBuf,
}

/// Starts `halo run --keepalived CONF` in `ns`, with a state file.
pub fn start_halo(ns: &Netns, scratch: &Scratch, name: &str, conf: &str) -> Node {
    let conf_path = scratch.write(&format!("{name}.conf"), conf);
    let state_file = scratch.path(&format!("{name}.state.json"));
    let _ = std::fs::remove_file(&state_file);
    let log = scratch.path(&format!("{name}.log"));
    let child = ns
        .spawn(
            &[
                halo_bin(),
                "run",
                "--keepalived",
                conf_path.to_str().unwrap(),
                "--state-file",
                state_file.to_str().unwrap(),
            ],
            &log,
        )
        .unwrap();
    Node { child, state_file }
}

/// Starts keepalived 2.2.7 (VRRP only, foreground, console log) in `ns`.
pub fn start_keepalived(ns: &Netns, scratch: &Scratch, name: &str, conf: &str) -> Node {
    let conf_path = scratch.write(&format!("{name}.conf"), conf);
    let log = scratch.path(&format!("{name}.log"));
    let child = ns
        .spawn(
            &[
                "keepalived",
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--vrrp",
                "--use-file",
                conf_path.to_str().unwrap(),
                "--pid",
                scratch.path(&format!("{name}.pid")).to_str().unwrap(),
                "--vrrp_pid",
                scratch.path(&format!("{name}.vrrp.pid")).to_str().unwrap(),
            ],
            &log,
        )
        .unwrap();
    Node {
        child,
        state_file: PathBuf::new(),
    }
}

/// The JSON a halo writes to its state file, if there is one yet.
pub fn read_state(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The state of instance VI_1 from a halo state file ("MASTER", "BACKUP", ...).
pub fn instance_state(path: &Path) -> Option<String> {
    read_state(path)?["instances"]["VI_1"]["state"]
        .as_str()
        .map(str::to_string)
}

/// One counter of instance VI_1.
pub fn counter(path: &Path, name: &str) -> u64 {
    read_state(path)
        .and_then(|v| v["instances"]["VI_1"]["counters"][name].as_u64())
        .unwrap_or(0)
}

/// Which of `hosts` hold `vip` on eth0 now.
pub fn holders<'a>(lan: &Lan, hosts: &[&'a str], vip: IpAddr) -> Vec<&'a str> {
    hosts
        .iter()
        .copied()
        .filter(|h| has_address(lan.host(h), HOST_IFNAME, vip))
        .collect()
}

/// Waits until exactly `want` holds the VIP among `hosts`; returns how long it took.
pub fn wait_sole_holder(
    lan: &Lan,
    hosts: &[&str],
    vip: IpAddr,
    want: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    halo_testkit::wait_until(timeout, Duration::from_millis(5), || {
        holders(lan, hosts, vip) == vec![want]
    })
}

/// Simulates a host crash: every process in the namespace is SIGKILLed and its cable pulled.
pub fn crash_host(lan: &Lan, host: &str) -> Instant {
    let ns = lan.host(host);
    let t0 = Instant::now();
    for pid in ns.pids() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    lan.set_port_up(host, false).unwrap();
    t0
}

/// A TCP service on port 8080 of `ns` that answers every connection with `name`.
pub fn serve_name(ns: &Netns, name: &'static str) {
    let listener = ns
        .run_in(|| TcpListener::bind("0.0.0.0:8080"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(name.as_bytes());
        }
    });
}

/// Connects from `ns` to `vip:8080` and reads the name of the host that answered.
pub fn ask_name(ns: &Netns, vip: IpAddr) -> Option<String> {
    ns.run_in(move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::new(vip, 8080), Duration::from_millis(200))
                .ok()?;
        s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    })
    .ok()
    .flatten()
}

/// Pings `vip` once from `ns` (1 s timeout).
pub fn ping(ns: &Netns, vip: IpAddr) -> bool {
    ns.exec(&["ping", "-c1", "-W1", &vip.to_string()])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Lines of a keepalived log that complain about a peer's packets.
pub fn keepalived_complaints(log: &str) -> Vec<String> {
    const BAD: [&str; 7] = [
        "bogus",
        "checksum",
        "authentication",
        "auth",
        "invalid",
        "not present",
        "mismatch",
    ];
    log.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            BAD.iter().any(|b| l.contains(b))
        })
        .map(str::to_string)
        .collect()
}

/// A child process killed (and reaped) on drop.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `halo ARGS...` on this host (loopback tests), output to `log`.
pub fn spawn_halo(args: &[&str], log: &Path) -> KillOnDrop {
    spawn_halo_with_env(args, log, &[])
}

/// [`spawn_halo`] with extra environment variables.
pub fn spawn_halo_with_env(args: &[&str], log: &Path, env: &[(&str, &str)]) -> KillOnDrop {
    let log = std::fs::File::create(log).unwrap();
    KillOnDrop(
        std::process::Command::new(halo_bin())
            .args(args)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until something listens on 127.0.0.1:`port`.
pub fn wait_port(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "port {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` on a new connection to 127.0.0.1:`port`; the whole raw response.
pub fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Debian's nginx on `DIR/nginx.conf` and `halo run --nginx` on `DIR/halo.conf`, both in the
/// foreground and killed on drop, for tests that ask both the same questions. A missing nginx
/// fails the test.
pub fn spawn_nginx_and_halo(dir: &Scratch) -> (KillOnDrop, KillOnDrop) {
    let d = dir.0.display().to_string();
    let nginx = std::process::Command::new("/usr/sbin/nginx")
        .args(["-p", &d, "-c", "nginx.conf", "-e", "nginx-error.log"])
        .args([
            "-g",
            &format!("daemon off; master_process off; pid {d}/nginx.pid; user root;"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx must be installed (Debian: apt-get install nginx-light)");
    let nginx = KillOnDrop(nginx);
    let halo_conf = dir.path("halo.conf");
    let halo = spawn_halo(
        &["run", "--nginx", halo_conf.to_str().expect("a UTF-8 path")],
        &dir.path("halo.log"),
    );
    (nginx, halo)
}

/// One request as a test backend thread read it: header names in lower case.
pub struct BackendRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads one HTTP/1.x request (a Content-Length body, if any) off a test backend's connection;
/// `None` when the peer sent nothing readable.
pub fn read_backend_request(stream: &std::net::TcpStream) -> Option<BackendRequest> {
    use std::io::{BufRead, Read};
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split(' ');
    let method = words.next().unwrap_or("").to_owned();
    let target = words.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let (name, value) = h.trim_end().split_once(':').unwrap_or((h.trim_end(), ""));
        let (name, value) = (name.to_ascii_lowercase(), value.trim().to_owned());
        if name == "content-length" {
            length = value.parse().unwrap_or(0);
        }
        headers.push((name, value));
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    Some(BackendRequest {
        method,
        target,
        headers,
        body,
    })
}

/// The status code of a raw HTTP/1.x response head (0 when there is none).
pub fn head_status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The first value of header `name` (any case) in a raw response head, trimmed; empty when
/// the head has none.
pub fn head_header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}
