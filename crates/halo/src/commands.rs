//! The short verbs: check, import, reload, status.

use std::path::Path;

use anyhow::{bail, Context};

use crate::cli::ConfigSource;
use crate::config_source::{load, print_diagnostics};
use crate::vrrp::status::StatusSnapshot;

/// `halo check`: exit 1 on errors, 0 when valid; warnings printed either way.
pub fn check(source: &ConfigSource) -> anyhow::Result<()> {
    match load(source) {
        Ok(l) => {
            print_diagnostics(&l.warnings);
            println!(
                "configuration is valid: {} VRRP instance(s), HTTP {}",
                l.config.vrrp.instances.len(),
                if l.config.http.is_some() { "on" } else { "off" }
            );
            Ok(())
        }
        Err(diags) => {
            print_diagnostics(&diags);
            let n = diags.iter().filter(|d| d.is_error()).count();
            bail!("configuration has {n} error(s)")
        }
    }
}

/// `halo import`: the native TOML equivalent on stdout.
pub fn import(source: &ConfigSource) -> anyhow::Result<()> {
    match load(source) {
        Ok(l) => {
            print_diagnostics(&l.warnings);
            print!("{}", halo_config::to_toml(&l.config));
            Ok(())
        }
        Err(diags) => {
            print_diagnostics(&diags);
            bail!("nothing imported: the configuration has errors")
        }
    }
}

/// `halo reload`: SIGHUP to the pid in the pid file.
pub fn reload(pid_file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(pid_file)
        .with_context(|| format!("reading {}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("{}: not a process id", pid_file.display()))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("signalling process {pid}"))?;
    println!("reload requested from process {pid}");
    Ok(())
}

/// `halo status`: a table of the VRRP instances from the state file.
pub fn status(state_file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(state_file)
        .with_context(|| format!("reading {}", state_file.display()))?;
    let snap: StatusSnapshot = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a halo state file", state_file.display()))?;
    println!("halo process {}", snap.pid);
    println!(
        "{:<16} {:<10} {:>4} {:<7} {:>8} {:>10} {:>10}  virtual addresses",
        "instance", "interface", "vrid", "state", "priority", "adverts in", "adverts out"
    );
    for i in snap.instances.values() {
        println!(
            "{:<16} {:<10} {:>4} {:<7} {:>8} {:>10} {:>10}  {}",
            i.name,
            i.interface,
            i.vrid,
            i.state,
            i.effective_priority,
            i.counters.get("rx_adverts").copied().unwrap_or(0),
            i.counters.get("tx_adverts").copied().unwrap_or(0),
            i.virtual_addresses.join(" ")
        );
        let drops: Vec<String> = i
            .counters
            .iter()
            .filter(|(k, v)| k.starts_with("drop_") && **v > 0)
            .map(|(k, v)| format!("{}={v}", &k[5..]))
            .collect();
        if !drops.is_empty() {
            println!("{:<16} dropped: {}", "", drops.join(" "));
        }
    }
    Ok(())
}
