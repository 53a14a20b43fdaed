//! The process settings of an nginx configuration: `daemon`, `pid`, `error_log` (and
//! `master_process`, accepted: halo is one process), from `-g` first and then the main context
//! of the file, as nginx reads them.

use std::path::{Path, PathBuf};

use super::conf_scan::Directive;
use crate::error_log::{parse_level, Destination, Target};
use tracing::Level;

/// What the configuration says about the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// `daemon` (nginx's default: on).
    pub daemon: bool,
    /// `pid` (default: Debian's /run/nginx.pid), resolved against the prefix.
    pub pid: PathBuf,
    /// Every `error_log` destination; the startup log (`-e`) when there is none.
    pub error_log: Vec<Destination>,
    /// Positions (file, line) of the directives applied here: the importer's "ignored" warnings
    /// about them do not hold for `halo nginx`.
    pub applied: Vec<(PathBuf, u32)>,
    /// Warnings, nginx-worded with their place.
    pub warnings: Vec<String>,
}

/// Reads the settings from `-g` directives and then the file's main context. `startup_log` is
/// the `-e` destination (or the default). Errors are nginx-worded with their place.
pub fn settle(
    globals: &[Directive],
    main: &[Directive],
    prefix: &Path,
    startup_log: Target,
) -> Result<ProcessSettings, Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut applied = Vec::new();
    let mut daemon: Option<bool> = None;
    let mut master_process: Option<bool> = None;
    let mut pid: Option<PathBuf> = None;
    let mut error_log = Vec::new();
    for d in globals.iter().chain(main) {
        let place = d.place();
        let mut applied_here = true;
        match d.name.as_str() {
            name @ ("daemon" | "master_process") => {
                let slot = if name == "daemon" {
                    &mut daemon
                } else {
                    &mut master_process
                };
                match d.args.as_slice() {
                    _ if slot.is_some() => {
                        errors.push(format!("\"{name}\" directive is duplicate {place}"))
                    }
                    [v] if v == "on" || v == "off" => *slot = Some(v == "on"),
                    [v] => errors.push(format!(
                        "invalid value \"{v}\" in \"{name}\" directive, it must be \"on\" or \"off\" {place}"
                    )),
                    _ => errors.push(format!(
                        "invalid number of arguments in \"{name}\" directive {place}"
                    )),
                }
            }
            "pid" => match d.args.as_slice() {
                _ if pid.is_some() => {
                    errors.push(format!("\"pid\" directive is duplicate {place}"))
                }
                [p] => pid = Some(prefix.join(p)),
                _ => errors.push(format!(
                    "invalid number of arguments in \"pid\" directive {place}"
                )),
            },
            "error_log" => {
                let (file, level) = match d.args.as_slice() {
                    [f] => (f, Some(Level::ERROR)),
                    [f, l] => (f, parse_level(l)),
                    _ => {
                        errors.push(format!(
                            "invalid number of arguments in \"error_log\" directive {place}"
                        ));
                        continue;
                    }
                };
                let Some(level) = level else {
                    errors.push(format!("invalid log level \"{}\" {place}", d.args[1]));
                    continue;
                };
                if file.starts_with("syslog:") || file.starts_with("memory:") {
                    warnings.push(format!(
                        "error_log to \"{file}\" is not supported by halo; ignored {place}"
                    ));
                } else {
                    let target = if file == "stderr" {
                        Target::Stderr
                    } else {
                        Target::File(prefix.join(file))
                    };
                    error_log.push(Destination { target, level });
                }
            }
            other if d.file.is_none() => errors.push(format!(
                "\"{other}\" is not supported in -g by halo (daemon, master_process, pid and \
                 error_log are); set it in the configuration file {place}"
            )),
            _ => applied_here = false,
        }
        if let (true, Some(f)) = (applied_here, &d.file) {
            applied.push((f.clone(), d.line));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if error_log.is_empty() {
        error_log.push(Destination {
            target: startup_log,
            level: Level::ERROR,
        });
    }
    Ok(ProcessSettings {
        daemon: daemon.unwrap_or(true),
        pid: pid.unwrap_or_else(|| prefix.join(super::modules::DEFAULT_PID)),
        error_log,
        applied,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::nginx_cli::conf_scan::scan_globals;

    fn file_directive(name: &str, args: &[&str], line: u32) -> Directive {
        Directive {
            name: name.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            file: Some(PathBuf::from("/c/nginx.conf")),
            line,
        }
    }

    #[test]
    fn defaults_are_nginx_s_daemon_on_and_debian_s_pid() {
        let s = settle(&[], &[], Path::new("/p/"), Target::Stderr).unwrap();
        assert!(s.daemon);
        assert_eq!(s.pid, PathBuf::from("/run/nginx.pid"));
        assert_eq!(
            s.error_log,
            [Destination {
                target: Target::Stderr,
                level: Level::ERROR
            }]
        );
    }

    #[test]
    fn globals_come_first_and_duplicates_are_errors() {
        let g = scan_globals("daemon off; error_log logs/g.log warn;").unwrap();
        let main = [
            file_directive("pid", &["run/x.pid"], 1),
            file_directive("error_log", &["/var/e.log", "debug"], 2),
            file_directive("worker_processes", &["2"], 3),
        ];
        let s = settle(&g, &main, Path::new("/p/"), Target::Stderr).unwrap();
        assert!(!s.daemon);
        assert_eq!(s.pid, PathBuf::from("/p/run/x.pid"));
        assert_eq!(s.error_log.len(), 2);
        assert_eq!(s.error_log[0].target, Target::File("/p/logs/g.log".into()));
        assert_eq!(s.error_log[1].level, Level::DEBUG);
        assert_eq!(
            s.applied,
            [
                (PathBuf::from("/c/nginx.conf"), 1),
                (PathBuf::from("/c/nginx.conf"), 2)
            ]
        );
        let dup = [file_directive("daemon", &["on"], 4)];
        let e = settle(&g, &dup, Path::new("/p/"), Target::Stderr).unwrap_err();
        assert_eq!(e, ["\"daemon\" directive is duplicate in /c/nginx.conf:4"]);
        let e = settle(
            &scan_globals("daemon maybe; worker_processes 2;").unwrap(),
            &[],
            Path::new("/p/"),
            Target::Stderr,
        )
        .unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[0].starts_with("invalid value \"maybe\" in \"daemon\" directive"));
        assert!(e[1].ends_with("in command line"));
    }
}
