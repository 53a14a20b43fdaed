//! `access_log` + `log_format`: lines rendered when a response is finished, appended to
//! buffered files that are flushed periodically and can be reopened (log rotation).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::variables::{push_display, Template, Var, VarSource};

/// nginx's built-in `combined` format.
pub(crate) const COMBINED: &str =
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

const DEFAULT_BUFFER: usize = 64 * 1024;

#[derive(Debug)]
struct LogFileInner {
    file: File,
    buf: Vec<u8>,
}

/// One open log file shared by every sink writing to it.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: String,
    capacity: usize,
    inner: Mutex<LogFileInner>,
}

fn open_append(path: &str) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    fn append(&self, line: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.buf.extend_from_slice(line);
        if inner.buf.len() >= self.capacity {
            Self::write_out(&mut inner, &self.path);
        }
    }

    fn write_out(inner: &mut LogFileInner, path: &str) {
        if inner.buf.is_empty() {
            return;
        }
        let LogFileInner { file, buf } = inner;
        if let Err(error) = file.write_all(buf) {
            tracing::error!(path, %error, "cannot write access log");
        }
        buf.clear();
    }

    /// Writes buffered lines out.
    pub fn flush(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Self::write_out(&mut inner, &self.path);
    }

    /// Flushes, then reopens the path (after the file was moved away by log rotation).
    pub fn reopen(&self) -> std::io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Self::write_out(&mut inner, &self.path);
        inner.file = open_append(&self.path)?;
        Ok(())
    }
}

/// Every log file opened by any configuration, by path (kept open across reloads).
#[derive(Debug, Default)]
pub(crate) struct LogFiles {
    files: Mutex<HashMap<String, Arc<LogFile>>>,
}

impl LogFiles {
    /// Opens (or shares) `path`. Buffered lines are flushed at least every second (`flush=` is
    /// accepted; halo's flusher runs every second whatever it says).
    pub fn open(
        &self,
        path: &str,
        buffer: Option<u64>,
        _flush: Option<Duration>,
    ) -> std::io::Result<Arc<LogFile>> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = files.get(path) {
            return Ok(file.clone());
        }
        let file = Arc::new(LogFile {
            path: path.to_owned(),
            capacity: buffer
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(DEFAULT_BUFFER)
                .max(1),
            inner: Mutex::new(LogFileInner {
                file: open_append(path)?,
                buf: Vec::new(),
            }),
        });
        files.insert(path.to_owned(), file.clone());
        Ok(file)
    }

    /// The open files, copied out so that no lock is held while writing to them.
    fn open_files(&self) -> Vec<Arc<LogFile>> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    pub fn flush_all(&self) {
        for file in self.open_files() {
            file.flush();
        }
    }

    pub fn reopen_all(&self) -> Vec<(String, std::io::Error)> {
        self.open_files()
            .iter()
            .filter_map(|f| f.reopen().err().map(|e| (f.path.clone(), e)))
            .collect()
    }
}

/// A file plus the format written to it.
#[derive(Debug)]
pub(crate) struct LogSink {
    file: Arc<LogFile>,
    format: Template,
    /// Request headers the format reads (`$http_*`), captured when the request starts.
    pub wanted_headers: Vec<HeaderName>,
}

impl LogSink {
    pub fn new(file: Arc<LogFile>, format: Template) -> Self {
        let wanted_headers = format
            .vars()
            .filter_map(|v| match v {
                Var::HttpHeader(name) => Some(name.clone()),
                Var::Cookie(_) => Some(http::header::COOKIE),
                Var::ContentLength => Some(http::header::CONTENT_LENGTH),
                Var::ContentType => Some(http::header::CONTENT_TYPE),
                _ => None,
            })
            .collect();
        LogSink {
            file,
            format,
            wanted_headers,
        }
    }
}

/// Everything a log line may need, collected while the request is served.
#[derive(Debug, Default)]
pub(crate) struct LogRecord {
    /// The client's address (after the realip module).
    pub peer: Option<SocketAddr>,
    /// The connection's address (`$realip_remote_addr`).
    pub conn_peer: Option<SocketAddr>,
    /// The PROXY protocol header's addresses.
    pub proxied: Option<crate::proxy_protocol::Proxied>,
    pub local: Option<SocketAddr>,
    pub remote_user: Option<String>,
    pub request_line: String,
    pub method: String,
    pub request_uri: String,
    pub uri: String,
    pub host: String,
    pub server_name: String,
    pub protocol: &'static str,
    pub status: u16,
    pub started: Option<Instant>,
    pub request_headers: Vec<(HeaderName, HeaderValue)>,
    pub response_headers: HeaderMap,
    pub upstream_addr: String,
    pub upstream_status: String,
    pub upstream_response_time: String,
    pub upstream_connect_time: String,
    pub connection: u64,
    /// The connection's TLS facts (`$ssl_*`), on TLS connections.
    pub tls: Option<std::sync::Arc<crate::tls_accept::TlsInfo>>,
    pub connection_requests: u64,
    pub request_length: u64,
    /// Filled when the body finished.
    pub body_bytes_sent: u64,
    /// `$request_id` (and when the request started).
    pub stamp: Option<Arc<crate::request_vars::RequestStamp>>,
    /// The response came from an upstream (`$upstream_http_NAME` are its headers).
    pub from_upstream: bool,
}

/// A log record waiting for its response to finish.
#[derive(Debug)]
pub(crate) struct PendingLog {
    pub sinks: Vec<Arc<LogSink>>,
    pub record: LogRecord,
}

impl PendingLog {
    /// Renders and appends the line to every sink.
    pub fn write(mut self: Box<Self>, body_bytes_sent: u64) {
        self.record.body_bytes_sent = body_bytes_sent;
        let mut line = String::with_capacity(256);
        for sink in &self.sinks {
            line.clear();
            sink.format.render_into(&self.record, &mut line);
            line.push('\n');
            sink.file.append(line.as_bytes());
        }
    }
}

fn dash_if_empty(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('-');
    } else {
        out.push_str(value);
    }
}

impl LogRecord {
    /// The captured lines of request header `name`.
    fn request_headers<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl Iterator<Item = &'a HeaderValue> + 'a {
        self.request_headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

impl VarSource for LogRecord {
    fn write_var(&self, var: &Var, out: &mut String) {
        let r = self;
        match var {
            Var::RemoteAddr => match r.peer {
                Some(peer) => push_display(out, peer.ip()),
                None => out.push('-'),
            },
            Var::RemotePort => {
                if let Some(peer) = r.peer.filter(|p| p.port() != 0) {
                    push_display(out, peer.port());
                }
            }
            Var::ProxyProtocol(which) => which.write(r.proxied.as_ref(), out),
            Var::RealipRemoteAddr => {
                if let Some(peer) = r.conn_peer {
                    push_display(out, peer.ip());
                }
            }
            Var::RealipRemotePort => {
                if let Some(peer) = r.conn_peer {
                    push_display(out, peer.port());
                }
            }
            Var::ServerAddr => {
                if let Some(local) = r.local {
                    push_display(out, local.ip());
                }
            }
            Var::ServerPort => {
                if let Some(local) = r.local {
                    push_display(out, local.port());
                }
            }
            Var::RemoteUser => dash_if_empty(out, r.remote_user.as_deref().unwrap_or("")),
            Var::TimeLocal => out.push_str(&time_local(SystemTime::now())),
            Var::TimeIso8601 => out.push_str(&time_iso8601(SystemTime::now())),
            Var::Msec => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                push_display(
                    out,
                    format_args!("{}.{:03}", now.as_secs(), now.subsec_millis()),
                );
            }
            Var::Request => out.push_str(&r.request_line),
            Var::RequestMethod => out.push_str(&r.method),
            Var::RequestUri => out.push_str(&r.request_uri),
            Var::Uri => out.push_str(&r.uri),
            Var::Args => {
                if let Some((_, args)) = r.request_uri.split_once('?') {
                    out.push_str(args);
                }
            }
            Var::IsArgs => {
                if r.request_uri.contains('?') {
                    out.push('?');
                }
            }
            Var::Host => out.push_str(&r.host),
            Var::ServerName => out.push_str(&r.server_name),
            Var::ServerProtocol => out.push_str(r.protocol),
            Var::Status => push_display(out, format_args!("{:03}", r.status)),
            Var::BodyBytesSent => push_display(out, r.body_bytes_sent),
            Var::BytesSent => push_display(out, r.body_bytes_sent + 128),
            Var::RequestTime => {
                let elapsed = r.started.map(|s| s.elapsed()).unwrap_or_default();
                push_display(
                    out,
                    format_args!("{}.{:03}", elapsed.as_secs(), elapsed.subsec_millis()),
                );
            }
            Var::RequestLength => push_display(out, r.request_length),
            Var::UpstreamAddr => dash_if_empty(out, &r.upstream_addr),
            Var::UpstreamStatus => dash_if_empty(out, &r.upstream_status),
            Var::UpstreamResponseTime => dash_if_empty(out, &r.upstream_response_time),
            Var::UpstreamConnectTime => dash_if_empty(out, &r.upstream_connect_time),
            Var::Connection => push_display(out, r.connection),
            Var::ConnectionRequests => push_display(out, r.connection_requests),
            Var::Pid => push_display(out, std::process::id()),
            Var::Scheme => out.push_str(if r.tls.is_some() { "https" } else { "http" }),
            Var::Tls(var) => var.write(r.tls.as_deref(), out),
            // Request-time values the record does not keep.
            Var::User(_)
            | Var::Capture(_)
            | Var::RequestFilename
            | Var::DocumentRoot
            | Var::Connections(_) => {}
            Var::HttpHeader(name) => {
                let lines = r.request_headers(name);
                if !crate::request_vars::write_header(name, lines, out) {
                    out.push('-');
                }
            }
            Var::Cookie(name) => {
                let lines = r.request_headers(&http::header::COOKIE);
                match crate::request_vars::cookie(lines, name) {
                    Some(value) => out.push_str(&String::from_utf8_lossy(value)),
                    None => out.push('-'),
                }
            }
            Var::ContentLength | Var::ContentType => {
                let name = if *var == Var::ContentLength {
                    http::header::CONTENT_LENGTH
                } else {
                    http::header::CONTENT_TYPE
                };
                let first = r.request_headers(&name).next().cloned();
                match first {
                    Some(value) => out.push_str(&String::from_utf8_lossy(value.as_bytes())),
                    None => out.push('-'),
                }
            }
            Var::RequestId => match &r.stamp {
                Some(stamp) => stamp.write_id(out),
                None => out.push('-'),
            },
            Var::NginxVersion => out.push_str(crate::request_vars::NGINX_VERSION),
            Var::Hostname => out.push_str(crate::request_vars::hostname()),
            Var::UpstreamHttp(name) => match r.response_headers.get(name) {
                Some(value) if r.from_upstream => {
                    out.push_str(&String::from_utf8_lossy(value.as_bytes()))
                }
                _ => out.push('-'),
            },
            Var::SentHttpHeader(name) => match r.response_headers.get(name) {
                Some(value) => out.push_str(&String::from_utf8_lossy(value.as_bytes())),
                None => out.push('-'),
            },
            Var::BinaryRemoteAddr | Var::ProxyAddXForwardedFor | Var::ProxyHost | Var::Arg(_) => {
                out.push('-')
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, usize::try_from(month - 1).unwrap_or(0), day)
}

/// The local time zone's offset from UTC in seconds, as last told by [`set_local_utc_offset`].
static LOCAL_UTC_OFFSET: AtomicI32 = AtomicI32::new(0);

/// Sets the offset `$time_local` and `$time_iso8601` are written in (seconds east of UTC; 0,
/// UTC, until called). The binary asks the C library (TZ, /etc/localtime) and calls this on
/// start and every few hundred milliseconds, so a daylight-saving change shows within that.
pub fn set_local_utc_offset(seconds: i32) {
    LOCAL_UTC_OFFSET.store(seconds, Ordering::Relaxed);
}

/// Civil date and time of `t` shifted by `offset` seconds.
fn split_time(t: SystemTime, offset: i32) -> (i64, usize, i64, i64, i64, i64) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(0) + i64::from(offset);
    let (year, month, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The offset as `+hhmm` (with `colon`, `+hh:mm`).
fn offset_text(offset: i32, colon: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    let sep = if colon { ":" } else { "" };
    format!("{sign}{:02}{sep}{:02}", minutes / 60, minutes % 60)
}

/// `$time_local` as nginx writes it (`10/Oct/2000:13:55:36 -0700`), in the local time zone.
/// The local time zone's offset from UTC in seconds (see [`set_local_utc_offset`]).
pub(crate) fn local_utc_offset() -> i32 {
    LOCAL_UTC_OFFSET.load(Ordering::Relaxed)
}

pub(crate) fn time_local(t: SystemTime) -> String {
    time_local_at(t, LOCAL_UTC_OFFSET.load(Ordering::Relaxed))
}

fn time_local_at(t: SystemTime, offset: i32) -> String {
    let (year, month, day, h, m, s) = split_time(t, offset);
    format!(
        "{day:02}/{}/{year}:{h:02}:{m:02}:{s:02} {}",
        MONTHS.get(month).unwrap_or(&"Jan"),
        offset_text(offset, false)
    )
}

/// `$time_iso8601` (`2000-10-10T13:55:36-07:00`), in the local time zone.
pub(crate) fn time_iso8601(t: SystemTime) -> String {
    time_iso8601_at(t, LOCAL_UTC_OFFSET.load(Ordering::Relaxed))
}

fn time_iso8601_at(t: SystemTime, offset: i32) -> String {
    let (year, month, day, h, m, s) = split_time(t, offset);
    format!(
        "{year}-{:02}-{day:02}T{h:02}:{m:02}:{s:02}{}",
        month + 1,
        offset_text(offset, true)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn time_local_matches_nginx_layout() {
        // 2000-10-10 13:55:36 UTC
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(971_186_136);
        assert_eq!(time_local_at(t, 0), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(time_iso8601_at(t, 0), "2000-10-10T13:55:36+00:00");
        // nginx's own example: the same instant in UTC-7.
        assert_eq!(time_local_at(t, -7 * 3600), "10/Oct/2000:06:55:36 -0700");
        assert_eq!(time_iso8601_at(t, -7 * 3600), "2000-10-10T06:55:36-07:00");
        // Across midnight, and a half-hour zone.
        assert_eq!(
            time_local_at(t, 10 * 3600 + 1800),
            "11/Oct/2000:00:25:36 +1030"
        );
    }

    #[test]
    fn combined_line_renders_dashes_for_missing_values() {
        let record = LogRecord {
            peer: Some("198.18.0.1:5000".parse().unwrap()),
            request_line: "GET / HTTP/1.1".into(),
            status: 200,
            body_bytes_sent: 12,
            request_headers: vec![(http::header::USER_AGENT, HeaderValue::from_static("curl/8"))],
            ..LogRecord::default()
        };
        let line = Template::parse(COMBINED).unwrap().render(&record);
        assert!(line.starts_with("198.18.0.1 - - ["), "{line}");
        assert!(
            line.ends_with("] \"GET / HTTP/1.1\" 200 12 \"-\" \"curl/8\""),
            "{line}"
        );
    }
}
