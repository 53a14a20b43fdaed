//! halo: VRRP failover of a virtual IP and an HTTP reverse proxy in one binary.
//!
//! `main` only parses the command line and hands over; each verb lives in its own module.

mod admin;
mod cli;
mod command_line;
mod commands;
mod config_source;
mod demo;
mod error_log;
mod http;
mod limits;
mod nginx_cli;
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
    // Large proxy buffers are freed and allocated again all the time: keep them in the process.
    halo_sys::retain_freed_memory();
    // Every configuration loader (check, run, reload, nginx -t) compiles the HTTP side as the
    // proxy does, TLS files included: check never passes what run refuses.
    halo_config::set_file_checker(halo_proxy::check);
    // nginx's command line is read by nginx's rules, not clap's (`-tq`, `-p/srv/`), and logs to
    // nginx's error log: run as `nginx` (a symbolic link) or as `halo nginx ...`.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if invoked_as.as_deref() == Some("nginx") {
        return nginx_cli::main("nginx", &args[1..]);
    }
    if args.get(1).map(String::as_str) == Some("nginx") {
        return nginx_cli::main("halo", &args[2..]);
    }
    let cli = cli::Cli::parse();
    if let cli::Command::Nginx { args } = &cli.command {
        // `halo --log X nginx ...`: the error log replaces --log.
        return nginx_cli::main("halo", args);
    }
    init_logging(cli.log.as_deref());
    let result = match cli.command {
        cli::Command::Run {
            source,
            pid_file,
            state_file,
        } => run::run(run::RunOptions {
            source,
            pid_file,
            state_file,
            config: None,
            on_ready: None,
        }),
        cli::Command::Check { source, .. } => commands::check(&source),
        cli::Command::Import { source } => commands::import(&source),
        cli::Command::Reload { pid_file } => commands::reload(&pid_file),
        cli::Command::Status { state_file } => commands::status(&state_file),
        cli::Command::Demo { tour } => demo::demo(tour),
        cli::Command::Nginx { .. } => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("halo: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
