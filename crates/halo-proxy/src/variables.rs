//! nginx-style `$variables` in header values, `return` texts and log formats: compiled once at
//! configuration time into [`Template`]s, rendered per request without re-parsing.

use std::fmt::Write as _;

use http::HeaderName;

/// A variable halo knows how to produce. Unknown names are a configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Var {
    Host,
    RemoteAddr,
    RemotePort,
    /// `$realip_remote_addr`, `$realip_remote_port`: the connection's address, whatever the
    /// realip module made of `$remote_addr`.
    RealipRemoteAddr,
    RealipRemotePort,
    /// `$proxy_protocol_addr`, `_port`, `_server_addr`, `_server_port`: the PROXY protocol
    /// header's addresses (empty without one).
    ProxyProtocol(ProxyProtocolVar),
    BinaryRemoteAddr,
    ProxyAddXForwardedFor,
    Scheme,
    RequestUri,
    Uri,
    Args,
    IsArgs,
    RequestMethod,
    ServerName,
    ServerPort,
    ServerAddr,
    ServerProtocol,
    ProxyHost,
    Request,
    Status,
    BodyBytesSent,
    BytesSent,
    TimeLocal,
    TimeIso8601,
    Msec,
    RemoteUser,
    RequestTime,
    RequestLength,
    UpstreamAddr,
    UpstreamStatus,
    UpstreamResponseTime,
    UpstreamConnectTime,
    ConnectionRequests,
    Connection,
    Pid,
    /// `$http_NAME`: a request header (lines joined with ", " as nginx does for known multi headers).
    HttpHeader(HeaderName),
    /// `$sent_http_NAME`: a response header.
    SentHttpHeader(HeaderName),
    /// `$arg_NAME`: a query argument.
    Arg(String),
    /// `$cookie_NAME`: a cookie of the request ([`crate::request_vars::cookie`]).
    Cookie(String),
    /// `$upstream_http_NAME`: a header of the upstream's response (of an `auth_request`
    /// subrequest's, in `auth_request_set`).
    UpstreamHttp(HeaderName),
    /// `$request_id`, `$nginx_version`, `$hostname`, `$content_length`, `$content_type`
    /// ([`crate::request_vars`]).
    RequestId,
    NginxVersion,
    Hostname,
    ContentLength,
    ContentType,
    /// `$https`, `$ssl_*`: what the TLS handshake settled ([`crate::tls_vars`]).
    Tls(crate::tls_vars::TlsVar),
    /// A variable made by `set` or a named regex capture, by its index in the configuration's
    /// table of such names.
    User(usize),
    /// `$1`..`$9` (and `$0`): a capture of the last regex that matched.
    Capture(usize),
    /// `$request_filename`: the file the URI maps to under the root.
    RequestFilename,
    /// `$document_root`.
    DocumentRoot,
    /// `$connections_active`, `_reading`, `_writing`, `_waiting`: the stub_status numbers.
    Connections(ConnectionsVar),
}

/// Which address of the PROXY protocol header a `$proxy_protocol_*` variable is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyProtocolVar {
    Addr,
    Port,
    ServerAddr,
    ServerPort,
}

impl ProxyProtocolVar {
    /// Writes the value for a connection's header, if it had one with addresses.
    pub fn write(self, proxied: Option<&crate::proxy_protocol::Proxied>, out: &mut String) {
        let Some(p) = proxied else { return };
        match self {
            ProxyProtocolVar::Addr => push_display(out, p.source.ip()),
            ProxyProtocolVar::Port => push_display(out, p.source.port()),
            ProxyProtocolVar::ServerAddr => push_display(out, p.destination.ip()),
            ProxyProtocolVar::ServerPort => push_display(out, p.destination.port()),
        }
    }
}

/// Which stub_status number a `$connections_*` variable is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionsVar {
    Active,
    Reading,
    Writing,
    Waiting,
}

impl Var {
    fn from_name(name: &str) -> Option<Var> {
        use Var::*;
        Some(match name {
            "host" => Host,
            "remote_addr" => RemoteAddr,
            "remote_port" => RemotePort,
            "realip_remote_addr" => RealipRemoteAddr,
            "realip_remote_port" => RealipRemotePort,
            "proxy_protocol_addr" => ProxyProtocol(ProxyProtocolVar::Addr),
            "proxy_protocol_port" => ProxyProtocol(ProxyProtocolVar::Port),
            "proxy_protocol_server_addr" => ProxyProtocol(ProxyProtocolVar::ServerAddr),
            "proxy_protocol_server_port" => ProxyProtocol(ProxyProtocolVar::ServerPort),
            "binary_remote_addr" => BinaryRemoteAddr,
            "proxy_add_x_forwarded_for" => ProxyAddXForwardedFor,
            "scheme" => Scheme,
            "request_uri" => RequestUri,
            "uri" | "document_uri" => Uri,
            "args" | "query_string" => Args,
            "is_args" => IsArgs,
            "request_method" => RequestMethod,
            "server_name" => ServerName,
            "server_port" => ServerPort,
            "server_addr" => ServerAddr,
            "server_protocol" => ServerProtocol,
            "proxy_host" => ProxyHost,
            "request" => Request,
            "status" => Status,
            "body_bytes_sent" => BodyBytesSent,
            "bytes_sent" => BytesSent,
            "time_local" => TimeLocal,
            "time_iso8601" => TimeIso8601,
            "msec" => Msec,
            "remote_user" => RemoteUser,
            "request_time" => RequestTime,
            "request_length" => RequestLength,
            "upstream_addr" => UpstreamAddr,
            "upstream_status" => UpstreamStatus,
            "upstream_response_time" => UpstreamResponseTime,
            "upstream_connect_time" => UpstreamConnectTime,
            "connection_requests" => ConnectionRequests,
            "connection" => Connection,
            "pid" => Pid,
            "request_id" => RequestId,
            "nginx_version" => NginxVersion,
            "hostname" => Hostname,
            "content_length" => ContentLength,
            "content_type" => ContentType,
            "request_filename" => RequestFilename,
            "connections_active" => Connections(ConnectionsVar::Active),
            "connections_reading" => Connections(ConnectionsVar::Reading),
            "connections_writing" => Connections(ConnectionsVar::Writing),
            "connections_waiting" => Connections(ConnectionsVar::Waiting),
            "document_root" | "realpath_root" => DocumentRoot,
            _ => {
                if let Some(var) = crate::tls_vars::TlsVar::from_name(name) {
                    return Some(Tls(var));
                }
                if let Some(header) = name.strip_prefix("http_") {
                    return HeaderName::from_bytes(header.replace('_', "-").as_bytes())
                        .ok()
                        .map(HttpHeader);
                }
                if let Some(header) = name.strip_prefix("sent_http_") {
                    return HeaderName::from_bytes(header.replace('_', "-").as_bytes())
                        .ok()
                        .map(SentHttpHeader);
                }
                if let Some(arg) = name.strip_prefix("arg_") {
                    return Some(Arg(arg.to_owned()));
                }
                if let Some(cookie) = name.strip_prefix("cookie_") {
                    return Some(Cookie(cookie.to_owned()));
                }
                if let Some(header) = name.strip_prefix("upstream_http_") {
                    return HeaderName::from_bytes(header.replace('_', "-").as_bytes())
                        .ok()
                        .map(UpstreamHttp);
                }
                return None;
            }
        })
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    Var(Var),
}

/// A compiled text with variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// Something that can produce variable values: a request being proxied, or a finished one being logged.
pub(crate) trait VarSource {
    /// Appends the value of `var` to `out`; appends nothing when the value is empty/unknown.
    fn write_var(&self, var: &Var, out: &mut String);
}

impl Template {
    /// Compiles `text`; `$name` and `${name}` are variables, everything else literal.
    pub fn parse(text: &str) -> Result<Template, String> {
        Self::parse_with(text, &[])
    }

    /// Like [`Template::parse`], also knowing the names `set` and named captures define
    /// (`user`, by index) and the regex captures `$0`..`$9`.
    pub fn parse_with(text: &str, user: &[String]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            literal.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
                (&braced[..end], end + 2)
            } else if after.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                // nginx: `$1x` is capture 1 followed by "x".
                (&after[..1], 1)
            } else {
                let len = after
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                (&after[..len], len)
            };
            if name.is_empty() {
                literal.push('$');
                rest = after;
                continue;
            }
            let lower = name.to_ascii_lowercase();
            let var = if let Ok(n) = lower.parse::<usize>() {
                if n > 9 {
                    return Err(format!("capture \"${name}\" out of range in {text:?}"));
                }
                Var::Capture(n)
            } else if let Some(i) = user.iter().position(|u| *u == lower) {
                Var::User(i)
            } else {
                Var::from_name(&lower)
                    .ok_or_else(|| format!("unknown variable \"${name}\" in {text:?}"))?
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var(var));
            rest = &after[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The text when the template has no variables.
    pub fn as_constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// The variables used, in order.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Literal(_) => None,
        })
    }

    /// Renders into `out`.
    pub fn render_into(&self, source: &dyn VarSource, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(var) => source.write_var(var, out),
            }
        }
    }

    /// Renders into a new string.
    pub fn render(&self, source: &dyn VarSource) -> String {
        let mut out = String::new();
        self.render_into(source, &mut out);
        out
    }
}

/// Writes `value` with `write!`, for numbers.
pub(crate) fn push_display(out: &mut String, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Fixed;
    impl VarSource for Fixed {
        fn write_var(&self, var: &Var, out: &mut String) {
            match var {
                Var::Host => out.push_str("example.com"),
                Var::HttpHeader(name) => out.push_str(name.as_str()),
                _ => out.push('?'),
            }
        }
    }

    #[test]
    fn parses_plain_braced_and_header_variables() {
        let t = Template::parse("a $host-${host}x $http_x_real_ip $").unwrap();
        assert_eq!(t.render(&Fixed), "a example.com-example.comx x-real-ip $");
        assert_eq!(
            Template::parse("plain").unwrap().as_constant(),
            Some("plain")
        );
        assert!(Template::parse("$nonsense").is_err());
        assert!(Template::parse("${host").is_err());
    }
}
