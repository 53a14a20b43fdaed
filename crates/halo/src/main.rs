//! halo: VRRP failover of a virtual IP and an HTTP reverse proxy in one binary.
//!
//! `main` only parses the command line and hands over; each verb lives in its own module.

mod admin;
mod cli;
mod command_line;
mod commands;
mod config_source;
mod demo;
mod http;
mod limits;
mod notify;
mod run;
mod vrrp;

use clap::Parser;

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("HALO_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .try_init();
}

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.log.as_deref());
    // Large proxy buffers are freed and allocated again all the time: keep them in the process.
    halo_sys::retain_freed_memory();
    let result = match cli.command {
        cli::Command::Run {
            source,
            pid_file,
            state_file,
        } => run::run(run::RunOptions {
            source,
            pid_file,
            state_file,
        }),
        cli::Command::Check { source, .. } => commands::check(&source),
        cli::Command::Import { source } => commands::import(&source),
        cli::Command::Reload { pid_file } => commands::reload(&pid_file),
        cli::Command::Status { state_file } => commands::status(&state_file),
        cli::Command::Demo { tour } => demo::demo(tour),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("halo: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
