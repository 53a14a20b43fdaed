//! nginx's error log, as a tracing layer: `halo nginx` writes its log where `error_log` (or `-e`)
//! says, one line per event in nginx's format,
//!
//! ```text
//! 2026/12/01 12:00:00 [error] 4711#4712: *5 connect() to upstream failed, addr: 127.0.0.1:8081
//! ```
//!
//! local time, nginx's level name, process id `#` thread id, then `*N ` when the event carries a
//! `connection` field, the message, and the event's other fields as nginx appends context
//! (`, key: value`). tracing's levels map to nginx's: ERROR -> error, WARN -> warn, INFO ->
//! notice, DEBUG and TRACE -> debug. Each destination has its own threshold (`error_log FILE
//! LEVEL`, default `error`); files are reopened by [`reopen`] (SIGUSR1, `-s reopen`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where one `error_log` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stderr,
    File(PathBuf),
}

/// One `error_log` destination and the least severe level it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub target: Target,
    /// The most verbose tracing level written (ERROR = only errors).
    pub level: Level,
}

/// nginx's level names, most severe first, and the tracing level each threshold admits.
pub fn parse_level(name: &str) -> Option<Level> {
    Some(match name {
        "emerg" | "alert" | "crit" | "error" => Level::ERROR,
        "warn" => Level::WARN,
        "notice" | "info" => Level::INFO,
        n if n == "debug" || n.starts_with("debug_") => Level::DEBUG,
        _ => return None,
    })
}

fn nginx_level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "notice",
        _ => "debug",
    }
}

struct Sink {
    destination: Destination,
    /// `None` for stderr.
    file: Mutex<Option<File>>,
}

/// The open error log: every destination.
pub struct ErrorLog {
    sinks: Vec<Sink>,
}

fn open_append(path: &PathBuf) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl ErrorLog {
    /// Opens every destination (files created if missing, appended to).
    pub fn open(destinations: &[Destination]) -> Result<ErrorLog, (PathBuf, std::io::Error)> {
        let mut sinks = Vec::new();
        for d in destinations {
            let file = match &d.target {
                Target::Stderr => None,
                Target::File(p) => Some(open_append(p).map_err(|e| (p.clone(), e))?),
            };
            sinks.push(Sink {
                destination: d.clone(),
                file: Mutex::new(file),
            });
        }
        Ok(ErrorLog { sinks })
    }

    /// The most verbose level any destination records.
    pub fn max_level(&self) -> Level {
        self.sinks
            .iter()
            .map(|s| s.destination.level)
            .max()
            .unwrap_or(Level::ERROR)
    }

    /// Opens every file again (after logrotate moved it away); a file that cannot be opened
    /// keeps the old handle and the failure is reported on stderr.
    pub fn reopen(&self) {
        for sink in &self.sinks {
            if let Target::File(p) = &sink.destination.target {
                match open_append(p) {
                    Ok(f) => {
                        if let Ok(mut guard) = sink.file.lock() {
                            *guard = Some(f);
                        }
                    }
                    Err(e) => eprintln!("halo: [alert] reopening \"{}\" failed: {e}", p.display()),
                }
            }
        }
    }

    fn write(&self, level: &Level, line: &str) {
        for sink in &self.sinks {
            if *level > sink.destination.level {
                continue;
            }
            let Ok(mut guard) = sink.file.lock() else {
                continue;
            };
            // One write per line: with O_APPEND, lines from threads never interleave.
            let _ = match guard.as_mut() {
                Some(f) => f.write_all(line.as_bytes()),
                None => std::io::stderr().write_all(line.as_bytes()),
            };
        }
    }
}

static INSTALLED: OnceLock<Arc<ErrorLog>> = OnceLock::new();

/// Makes `log` the process's tracing subscriber. Only the first call takes effect.
pub fn install(log: ErrorLog) {
    use tracing_subscriber::layer::SubscriberExt;
    let log = Arc::new(log);
    let max = tracing_subscriber::filter::LevelFilter::from_level(log.max_level());
    if INSTALLED.set(log.clone()).is_err() {
        return;
    }
    let subscriber = tracing_subscriber::registry()
        .with(ErrorLogLayer { log })
        .with(max);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Reopens the installed error log's files; nothing when none is installed (`halo run`).
pub fn reopen() {
    if let Some(log) = INSTALLED.get() {
        log.reopen();
    }
}

struct ErrorLogLayer {
    log: Arc<ErrorLog>,
}

impl<S: Subscriber> Layer<S> for ErrorLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // nginx's debug log is about nginx; ours is about halo, not the libraries under it.
        if *meta.level() >= Level::DEBUG && !meta.target().starts_with("halo") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format_line(
            now_unix(),
            nginx_level(meta.level()),
            std::process::id(),
            nix::unistd::gettid().as_raw(),
            fields.connection,
            &fields.message,
            &fields.context,
        );
        self.log.write(meta.level(), &line);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    connection: Option<u64>,
    context: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "connection" {
            self.connection = Some(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.context, ", {}: {value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.context, ", {}: {value}", field.name());
        }
    }
}

/// Appends one line at nginx level `level` (`emerg`, `alert`...) to the file at `path`: the
/// startup log, for what `halo nginx` says before the error log is set up.
pub fn append_line(path: &std::path::Path, level: &str, message: &str) -> std::io::Result<()> {
    let line = format_line(
        now_unix(),
        level,
        std::process::id(),
        nix::unistd::gettid().as_raw(),
        None,
        message,
        "",
    );
    open_append(&path.to_path_buf())?.write_all(line.as_bytes())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// One error log line, newline included. `unix` is converted to local time.
fn format_line(
    unix: i64,
    level: &str,
    pid: u32,
    tid: i32,
    connection: Option<u64>,
    message: &str,
    context: &str,
) -> String {
    let local = unix + i64::from(halo_sys::local_utc_offset(unix).unwrap_or(0));
    let mut line = format!("{} [{level}] {pid}#{tid}: ", format_time(local),);
    if let Some(c) = connection {
        let _ = write!(line, "*{c} ");
    }
    line.push_str(message);
    line.push_str(context);
    line.push('\n');
    line
}

/// `YYYY/MM/DD HH:MM:SS` of seconds since the epoch (already shifted to local time).
fn format_time(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_across_leap_years_and_eras() {
        assert_eq!(format_time(0), "1970/01/01 00:00:00");
        assert_eq!(format_time(951_782_400), "2000/02/29 00:00:00");
        assert_eq!(format_time(1_795_953_600), "2026/11/29 12:00:00");
        assert_eq!(format_time(4_107_542_399), "2100/02/28 23:59:59");
        assert_eq!(format_time(-1), "1969/12/31 23:59:59");
    }

    #[test]
    fn levels_follow_nginx_names() {
        assert_eq!(parse_level("crit"), Some(Level::ERROR));
        assert_eq!(parse_level("notice"), Some(Level::INFO));
        assert_eq!(parse_level("debug_http"), Some(Level::DEBUG));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(nginx_level(&Level::INFO), "notice");
        assert_eq!(nginx_level(&Level::TRACE), "debug");
    }

    #[test]
    fn a_line_has_nginx_layout() {
        let line = format_line(
            0,
            "warn",
            7,
            8,
            Some(5),
            "upstream attempt failed",
            ", addr: 127.0.0.1:1",
        );
        // The time part depends on the local zone; the rest does not.
        let (_, rest) = line.split_at(19);
        assert_eq!(
            rest,
            " [warn] 7#8: *5 upstream attempt failed, addr: 127.0.0.1:1\n"
        );
    }
}
