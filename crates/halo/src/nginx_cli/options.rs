//! nginx's command line, read by nginx's rules: every argument starts with `-` and may hold
//! several flags (`-tq`); an option that takes a value takes the rest of its argument (`-p/srv/`)
//! or, when nothing is left, the next argument (`-p /srv/`). A repeated option keeps the last
//! value. Messages are nginx's, without the program name.

/// The four signals `-s` knows, and what they ask of a running halo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalName {
    /// Fast shutdown (SIGTERM).
    Stop,
    /// Graceful shutdown (SIGQUIT).
    Quit,
    /// Reopen log files (SIGUSR1).
    Reopen,
    /// Re-read the configuration (SIGHUP).
    Reload,
}

impl SignalName {
    fn parse(s: &str) -> Option<SignalName> {
        Some(match s {
            "stop" => SignalName::Stop,
            "quit" => SignalName::Quit,
            "reopen" => SignalName::Reopen,
            "reload" => SignalName::Reload,
            _ => return None,
        })
    }

    /// The Unix signal nginx sends for this name.
    pub fn signal(self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal;
        match self {
            SignalName::Stop => Signal::SIGTERM,
            SignalName::Quit => Signal::SIGQUIT,
            SignalName::Reopen => Signal::SIGUSR1,
            SignalName::Reload => Signal::SIGHUP,
        }
    }
}

/// Where `-e` sends the startup error log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorLogArg {
    /// `-e stderr`.
    Stderr,
    /// `-e FILE` (relative to the prefix).
    File(String),
}

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-v`, `-V`, `-h`, `-?`: print the version line.
    pub show_version: bool,
    /// `-h`, `-?`: print the usage too.
    pub show_help: bool,
    /// `-V`: print the configure arguments too.
    pub show_configure: bool,
    /// `-t` or `-T`: check the configuration and exit.
    pub test_config: bool,
    /// `-T`: print the configuration files after a successful check.
    pub dump_config: bool,
    /// `-q`: no "syntax is ok" / "test is successful" lines.
    pub quiet: bool,
    /// `-p DIR`.
    pub prefix: Option<String>,
    /// `-e FILE`.
    pub error_log: Option<ErrorLogArg>,
    /// `-c FILE`.
    pub conf_file: Option<String>,
    /// `-g DIRECTIVES`.
    pub globals: Option<String>,
    /// `-s SIGNAL`.
    pub signal: Option<SignalName>,
}

/// Reads `args` (without the program name) as nginx reads its own.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(flags) = arg.strip_prefix('-') else {
            return Err(format!("invalid option: \"{arg}\""));
        };
        for (at, flag) in flags.char_indices() {
            let rest = &flags[at + flag.len_utf8()..];
            // An option with a value takes the rest of this argument, or else the next one.
            let mut value = |what: &str| -> Result<String, String> {
                if !rest.is_empty() {
                    return Ok(rest.to_string());
                }
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| format!("option \"-{flag}\" requires {what}"))
            };
            match flag {
                '?' | 'h' => {
                    o.show_version = true;
                    o.show_help = true;
                }
                'v' => o.show_version = true,
                'V' => {
                    o.show_version = true;
                    o.show_configure = true;
                }
                't' => o.test_config = true,
                'T' => {
                    o.test_config = true;
                    o.dump_config = true;
                }
                'q' => o.quiet = true,
                'p' => {
                    o.prefix = Some(value("directory name")?);
                    break;
                }
                'e' => {
                    let v = value("file name")?;
                    o.error_log = Some(if v == "stderr" {
                        ErrorLogArg::Stderr
                    } else {
                        ErrorLogArg::File(v)
                    });
                    break;
                }
                'c' => {
                    o.conf_file = Some(value("file name")?);
                    break;
                }
                'g' => {
                    o.globals = Some(value("parameter")?);
                    break;
                }
                's' => {
                    let v = value("parameter")?;
                    match SignalName::parse(&v) {
                        Some(s) => o.signal = Some(s),
                        None => return Err(format!("invalid option: \"-s {v}\"")),
                    }
                    break;
                }
                other => return Err(format!("invalid option: \"{other}\"")),
            }
        }
        i += 1;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_combine_in_one_argument_as_in_ngx_get_options() {
        let o = p(&["-tq"]).unwrap();
        assert!(o.test_config && o.quiet && !o.dump_config);
        let o = p(&["-Tq"]).unwrap();
        assert!(o.test_config && o.dump_config && o.quiet);
        let o = p(&["-V"]).unwrap();
        assert!(o.show_version && o.show_configure && !o.show_help);
        let o = p(&["-?"]).unwrap();
        assert!(o.show_version && o.show_help);
    }

    #[test]
    fn values_are_glued_or_the_next_argument() {
        let o = p(&["-p/srv/", "-c", "x.conf", "-gdaemon off;", "-e", "stderr"]).unwrap();
        assert_eq!(o.prefix.as_deref(), Some("/srv/"));
        assert_eq!(o.conf_file.as_deref(), Some("x.conf"));
        assert_eq!(o.globals.as_deref(), Some("daemon off;"));
        assert_eq!(o.error_log, Some(ErrorLogArg::Stderr));
        // A value option ends the flag run: `-tp/srv` is -t then -p /srv.
        let o = p(&["-tp/srv", "-elogs/e.log"]).unwrap();
        assert!(o.test_config);
        assert_eq!(o.prefix.as_deref(), Some("/srv"));
        assert_eq!(o.error_log, Some(ErrorLogArg::File("logs/e.log".into())));
        // The value may itself start with a dash.
        assert_eq!(p(&["-c", "-t"]).unwrap().conf_file.as_deref(), Some("-t"));
    }

    #[test]
    fn signals_and_errors_use_nginx_messages() {
        assert_eq!(p(&["-sreload"]).unwrap().signal, Some(SignalName::Reload));
        assert_eq!(p(&["-s", "quit"]).unwrap().signal, Some(SignalName::Quit));
        assert_eq!(
            p(&["-s", "kill"]).unwrap_err(),
            "invalid option: \"-s kill\""
        );
        assert_eq!(p(&["-s"]).unwrap_err(), "option \"-s\" requires parameter");
        assert_eq!(
            p(&["-p"]).unwrap_err(),
            "option \"-p\" requires directory name"
        );
        assert_eq!(p(&["-c"]).unwrap_err(), "option \"-c\" requires file name");
        assert_eq!(p(&["-e"]).unwrap_err(), "option \"-e\" requires file name");
        assert_eq!(p(&["-g"]).unwrap_err(), "option \"-g\" requires parameter");
        assert_eq!(p(&["-x"]).unwrap_err(), "invalid option: \"x\"");
        assert_eq!(p(&["-tx"]).unwrap_err(), "invalid option: \"x\"");
        assert_eq!(p(&["t"]).unwrap_err(), "invalid option: \"t\"");
        // A lone dash holds no flag and is accepted, as by nginx.
        assert_eq!(p(&["-"]).unwrap(), Options::default());
    }
}
