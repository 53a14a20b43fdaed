//! The demo without root: one halo on loopback balancing two halo web servers.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::probe::Prober;

const BALANCER: &str = "127.0.0.1:18080";

pub fn run() -> anyhow::Result<()> {
    let halo = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("halo-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut children = Vec::new();
    for (name, port) in [("web1", 18081), ("web2", 18082)] {
        let conf = dir.join(format!("{name}.toml"));
        std::fs::write(
            &conf,
            format!(
                "[http]\nworker_threads = 1\n\n[[http.servers]]\nlisten = [{{ addr = \"127.0.0.1:{port}\" }}]\n\n\
                 [[http.servers.locations]]\npath = \"/\"\naction = {{ type = \"return\", code = 200, text = \"{name}\\n\" }}\n"
            ),
        )?;
        children.push(spawn(&halo, &conf, &dir.join(format!("{name}.log")))?);
    }
    let conf = dir.join("balancer.toml");
    std::fs::write(
        &conf,
        format!(
            "[http]\nworker_threads = 1\n\n[[http.upstreams]]\nname = \"web\"\nservers = [\n  \
             {{ address = \"127.0.0.1:18081\" }},\n  {{ address = \"127.0.0.1:18082\" }},\n]\n\n\
             [[http.servers]]\nlisten = [{{ addr = \"{BALANCER}\" }}]\n\n[[http.servers.locations]]\npath = \"/\"\n\
             action = {{ type = \"proxy\", pass = \"http://web\" }}\n"
        ),
    )?;
    children.push(spawn(&halo, &conf, &dir.join("balancer.log"))?);
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(BALANCER).is_ok()
    });
    if !up {
        anyhow::bail!(
            "the balancer did not start; see {}",
            dir.join("balancer.log").display()
        );
    }
    println!("halo balances http://{BALANCER}/ over web1 and web2 (round robin). Ctrl-C to stop.");
    let prober = Prober::start_local(
        BALANCER.parse::<std::net::SocketAddr>()?.ip(),
        18080,
        Duration::from_millis(20),
    );
    let ticks = super::SecondsUntilCtrlC::new()?;
    let mut last = Instant::now();
    loop {
        if !ticks.next() {
            break;
        }
        let window = prober.since(last);
        last = Instant::now();
        let count = |n: &str| {
            window
                .iter()
                .filter(|o| o.backend.as_deref() == Some(n))
                .count()
        };
        println!(
            "web1 {:>4} req  web2 {:>4} req  failed {}",
            count("web1"),
            count("web2"),
            window.iter().filter(|o| o.backend.is_none()).count()
        );
    }
    drop(prober);
    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(
    halo: &std::path::Path,
    conf: &std::path::Path,
    log: &std::path::Path,
) -> anyhow::Result<KillOnDrop> {
    let log = std::fs::File::create(log)?;
    let child = std::process::Command::new(halo)
        .args(["run", "--config"])
        .arg(conf)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting halo")?;
    Ok(KillOnDrop(child))
}
