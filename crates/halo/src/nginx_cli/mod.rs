//! `halo nginx`: nginx's command line (`-t`, `-T`, `-q`, `-s`, `-p`, `-c`, `-e`, `-g`, `-v`,
//! `-V`, `-h`), so that scripts, logrotate, service units and nginx's own test harness drive halo
//! as they drive nginx. The configuration goes through the same loader as `halo check` and
//! `halo run --nginx`; what nginx.conf says about the process itself (`daemon`, `pid`,
//! `error_log`) is applied here.
//!
//! Messages follow nginx's: `halo: [emerg] MESSAGE in FILE:LINE`, `halo: the configuration file
//! FILE syntax is ok`, with the program name nginx prints replaced by the name halo was run as
//! (`halo`, or `nginx` through a symbolic link of that name).

mod conf_scan;
mod daemon;
pub mod modules;
mod options;
mod settings;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use halo_config::Diagnostic;

use crate::cli::ConfigSource;
use crate::config_source::load;
use crate::error_log::{ErrorLog, Target};
use options::{ErrorLogArg, Options};

/// `nginx`'s `N: description` of an OS error, e.g. `2: No such file or directory`.
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{n}: {}", nix::errno::Errno::from_raw(n).desc()),
        None => e.to_string(),
    }
}

/// The command line as given, and the name to print in messages.
struct Cli<'a> {
    prog: &'a str,
    args: &'a [String],
    opts: Options,
    /// The startup log file (`-e FILE`): messages go there as well as to stderr, as nginx's do.
    startup_log: Option<PathBuf>,
}

impl Cli<'_> {
    fn say(&self, message: &str) {
        eprintln!("{}: {message}", self.prog);
    }

    fn log(&self, level: &str, message: &str) {
        eprintln!("{}: [{level}] {message}", self.prog);
        if let Some(path) = &self.startup_log {
            let _ = crate::error_log::append_line(path, level, message);
        }
    }

    /// Configuration test failed: the closing line of `-t`, exit 1.
    fn failed(&self, conf: &Path) -> ExitCode {
        if self.opts.test_config {
            self.say(&format!(
                "configuration file {} test failed",
                conf.display()
            ));
        }
        ExitCode::FAILURE
    }
}

/// Runs `halo nginx ARGS` (`args` without the program name). `prog` names the program in
/// messages.
pub fn main(prog: &str, args: &[String]) -> ExitCode {
    let opts = match options::parse(args) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{prog}: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut cli = Cli {
        prog,
        args,
        opts,
        startup_log: None,
    };
    if cli.opts.show_version {
        eprintln!("{}", modules::version_line());
        if cli.opts.show_help {
            eprint!("{}", modules::usage(prog));
        }
        if cli.opts.show_configure {
            for line in modules::FEATURE_LINES {
                eprintln!("{line}");
            }
            eprintln!("{}", modules::configure_arguments());
        }
        if !cli.opts.test_config {
            return ExitCode::SUCCESS;
        }
    }
    run_or_test(&mut cli)
}

fn run_or_test(cli: &mut Cli<'_>) -> ExitCode {
    let opts = &cli.opts.clone();
    // nginx's prefix always ends in a slash; relative paths go under it.
    let prefix = match &opts.prefix {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(modules::DEFAULT_PREFIX),
    };
    let conf = prefix.join(opts.conf_file.as_deref().unwrap_or(modules::DEFAULT_CONF));
    let startup_log = match &opts.error_log {
        Some(ErrorLogArg::Stderr) => Target::Stderr,
        Some(ErrorLogArg::File(f)) => Target::File(prefix.join(f)),
        None if modules::DEFAULT_ERROR_LOG == "stderr" => Target::Stderr,
        None => Target::File(prefix.join(modules::DEFAULT_ERROR_LOG)),
    };
    // nginx opens (creates) the startup log before reading the configuration.
    if let Target::File(path) = &startup_log {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(_) => cli.startup_log = Some(path.clone()),
            Err(e) => cli.log(
                "alert",
                &format!(
                    "could not open error log file: open() \"{}\" failed ({})",
                    path.display(),
                    errno_text(&e)
                ),
            ),
        }
    }
    let cli = &*cli;
    let globals = match opts.globals.as_deref().map(conf_scan::scan_globals) {
        None => Vec::new(),
        Some(Ok(g)) => g,
        Some(Err(message)) => {
            cli.log("emerg", &format!("{message} in command line"));
            return cli.failed(&conf);
        }
    };
    let scan = match conf_scan::scan_files(&conf) {
        Ok(s) => s,
        Err(message) => {
            cli.log("emerg", &message);
            return cli.failed(&conf);
        }
    };
    let settings = match settings::settle(&globals, &scan.main, &prefix, startup_log) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                cli.log("emerg", &e);
            }
            return cli.failed(&conf);
        }
    };
    if let Some(signal) = opts.signal {
        return send_signal(cli, &settings.pid, signal);
    }
    let is_daemon = daemon::is_daemon();
    if settings.daemon && !opts.test_config && !is_daemon {
        return match daemon::detach(cli.args) {
            Ok(code) => code,
            Err(e) => {
                cli.log("emerg", &format!("starting the daemon failed: {e:#}"));
                ExitCode::FAILURE
            }
        };
    }
    if is_daemon {
        daemon::start_session();
    }
    for w in &settings.warnings {
        cli.log("warn", w);
    }
    let source = ConfigSource {
        nginx: Some(conf.clone()),
        prefix: Some(prefix.clone()),
        ..ConfigSource::default()
    };
    let applied_here =
        |d: &Diagnostic| !d.is_error() && settings.applied.contains(&(d.file.clone(), d.line));
    let loaded = match load(&source) {
        Ok(l) => l,
        Err(diags) => {
            for d in diags.iter().filter(|d| !applied_here(d)) {
                cli.log(
                    if d.is_error() { "emerg" } else { "warn" },
                    &nginx_worded(d),
                );
            }
            return cli.failed(&conf);
        }
    };
    for d in loaded.warnings.iter().filter(|d| !applied_here(d)) {
        cli.log("warn", &nginx_worded(d));
    }
    if opts.test_config {
        if !opts.quiet {
            cli.say(&format!(
                "the configuration file {} syntax is ok",
                conf.display()
            ));
            cli.say(&format!(
                "configuration file {} test is successful",
                conf.display()
            ));
        }
        if opts.dump_config {
            for (path, text) in &scan.files {
                println!("# configuration file {}:", path.display());
                println!("{text}");
            }
        }
        return ExitCode::SUCCESS;
    }
    serve(cli, source, loaded.config, &settings, is_daemon)
}

fn serve(
    cli: &Cli<'_>,
    source: ConfigSource,
    config: halo_config::Config,
    settings: &settings::ProcessSettings,
    is_daemon: bool,
) -> ExitCode {
    match ErrorLog::open(&settings.error_log) {
        Ok(log) => crate::error_log::install(log),
        Err((path, e)) => {
            cli.log(
                "emerg",
                &format!("open() \"{}\" failed ({})", path.display(), errno_text(&e)),
            );
            return ExitCode::FAILURE;
        }
    }
    let result = crate::run::run(crate::run::RunOptions {
        source,
        pid_file: Some(settings.pid.clone()),
        state_file: None,
        config: Some(config),
        on_ready: is_daemon.then(|| {
            let log_file = settings.error_log.iter().find_map(|d| match &d.target {
                Target::File(p) => Some(p.clone()),
                Target::Stderr => None,
            });
            Box::new(move || daemon::notify_ready(log_file.as_deref())) as Box<dyn FnOnce() + Send>
        }),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            cli.log("emerg", &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// A diagnostic as nginx words one: `message (expected ...) in FILE:LINE`.
fn nginx_worded(d: &Diagnostic) -> String {
    let mut s = d.message.clone();
    if let Some(e) = &d.expected {
        s += &format!(" (expected {e})");
    }
    if d.line > 0 {
        s += &format!(" in {}:{}", d.file.display(), d.line);
    } else {
        s += &format!(" in {}", d.file.display());
    }
    s
}

/// `-s SIGNAL`: the pid from the pid file, then the signal, with nginx's messages.
fn send_signal(cli: &Cli<'_>, pid_file: &Path, signal: options::SignalName) -> ExitCode {
    let text = match std::fs::read(pid_file) {
        Ok(t) => t,
        Err(e) => {
            cli.log(
                "error",
                &format!(
                    "open() \"{}\" failed ({})",
                    pid_file.display(),
                    errno_text(&e)
                ),
            );
            return ExitCode::FAILURE;
        }
    };
    let text = String::from_utf8_lossy(&text);
    let number = text.trim_end_matches(['\r', '\n']);
    let pid = match number.parse::<i32>() {
        Ok(p) if p > 0 => p,
        _ => {
            cli.log(
                "error",
                &format!(
                    "invalid PID number \"{number}\" in \"{}\"",
                    pid_file.display()
                ),
            );
            return ExitCode::FAILURE;
        }
    };
    let sig = signal.signal();
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
        Ok(()) => ExitCode::SUCCESS,
        Err(errno) => {
            cli.log(
                "alert",
                &format!(
                    "kill({pid}, {}) failed ({}: {})",
                    sig as i32,
                    errno as i32,
                    errno.desc()
                ),
            );
            ExitCode::FAILURE
        }
    }
}
