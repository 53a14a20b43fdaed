//! nginx's `ssl_*`, `http2*` and `proxy_ssl_*` directives -> [`ServerTls`], [`Http2Settings`]
//! and [`UpstreamTls`], with nginx's inheritance (an inner level that sets a directive replaces
//! the outer value; the certificate and key lists inherit as a whole).

use super::{Importer, Node, Pos};
use crate::http::{
    CertificatePair, Http2Settings, ServerTls, SessionCache, TlsVersion, UpstreamTls, VerifyClient,
};

/// What one level (http, server, location) set of the TLS and HTTP/2 directives.
#[derive(Clone, Default)]
pub(super) struct TlsScope {
    certificates: Option<Vec<(String, Pos)>>,
    keys: Option<Vec<String>>,
    protocols: Option<Vec<TlsVersion>>,
    ciphers: Option<String>,
    prefer_server_ciphers: Option<bool>,
    ecdh_curve: Option<String>,
    password_file: Option<String>,
    session_cache: Option<SessionCache>,
    session_timeout: Option<std::time::Duration>,
    session_tickets: Option<bool>,
    session_ticket_keys: Option<Vec<String>>,
    reject_handshake: Option<bool>,
    verify_client: Option<VerifyClient>,
    client_certificate: Option<String>,
    trusted_certificate: Option<String>,
    verify_depth: Option<u32>,
    crl: Option<String>,
    stapling_file: Option<String>,
    early_data: Option<bool>,
    http2: Option<bool>,
    http2_max_concurrent_streams: Option<u32>,
    http2_body_preread_size: Option<u64>,
    http2_recv_buffer_size: Option<u64>,
    http2_chunk_size: Option<u64>,
    proxy: UpstreamScope,
    /// `grpc_ssl_*`, the same settings for `grpc_pass` locations.
    grpc: UpstreamScope,
}

/// `proxy_ssl_*` of one level.
#[derive(Clone, Default)]
struct UpstreamScope {
    verify: Option<bool>,
    trusted_certificate: Option<String>,
    verify_depth: Option<u32>,
    name: Option<String>,
    server_name: Option<bool>,
    certificate: Option<String>,
    certificate_key: Option<String>,
    password_file: Option<String>,
    protocols: Option<Vec<TlsVersion>>,
    ciphers: Option<String>,
    session_reuse: Option<bool>,
}

fn pick<T: Clone>(inner: &Option<T>, outer: &Option<T>) -> Option<T> {
    inner.clone().or_else(|| outer.clone())
}

impl TlsScope {
    /// This level's settings over `outer`'s.
    pub(super) fn over(&self, outer: &TlsScope) -> TlsScope {
        TlsScope {
            certificates: pick(&self.certificates, &outer.certificates),
            keys: pick(&self.keys, &outer.keys),
            protocols: pick(&self.protocols, &outer.protocols),
            ciphers: pick(&self.ciphers, &outer.ciphers),
            prefer_server_ciphers: pick(&self.prefer_server_ciphers, &outer.prefer_server_ciphers),
            ecdh_curve: pick(&self.ecdh_curve, &outer.ecdh_curve),
            password_file: pick(&self.password_file, &outer.password_file),
            session_cache: pick(&self.session_cache, &outer.session_cache),
            session_timeout: pick(&self.session_timeout, &outer.session_timeout),
            session_tickets: pick(&self.session_tickets, &outer.session_tickets),
            session_ticket_keys: pick(&self.session_ticket_keys, &outer.session_ticket_keys),
            reject_handshake: pick(&self.reject_handshake, &outer.reject_handshake),
            verify_client: pick(&self.verify_client, &outer.verify_client),
            client_certificate: pick(&self.client_certificate, &outer.client_certificate),
            trusted_certificate: pick(&self.trusted_certificate, &outer.trusted_certificate),
            verify_depth: pick(&self.verify_depth, &outer.verify_depth),
            crl: pick(&self.crl, &outer.crl),
            stapling_file: pick(&self.stapling_file, &outer.stapling_file),
            early_data: pick(&self.early_data, &outer.early_data),
            http2: pick(&self.http2, &outer.http2),
            http2_max_concurrent_streams: pick(
                &self.http2_max_concurrent_streams,
                &outer.http2_max_concurrent_streams,
            ),
            http2_body_preread_size: pick(
                &self.http2_body_preread_size,
                &outer.http2_body_preread_size,
            ),
            http2_recv_buffer_size: pick(
                &self.http2_recv_buffer_size,
                &outer.http2_recv_buffer_size,
            ),
            http2_chunk_size: pick(&self.http2_chunk_size, &outer.http2_chunk_size),
            proxy: self.proxy.over(&outer.proxy),
            grpc: self.grpc.over(&outer.grpc),
        }
    }
}

impl UpstreamScope {
    fn over(&self, o: &UpstreamScope) -> UpstreamScope {
        let p = self;
        UpstreamScope {
            verify: pick(&p.verify, &o.verify),
            trusted_certificate: pick(&p.trusted_certificate, &o.trusted_certificate),
            verify_depth: pick(&p.verify_depth, &o.verify_depth),
            name: pick(&p.name, &o.name),
            server_name: pick(&p.server_name, &o.server_name),
            certificate: pick(&p.certificate, &o.certificate),
            certificate_key: pick(&p.certificate_key, &o.certificate_key),
            password_file: pick(&p.password_file, &o.password_file),
            protocols: pick(&p.protocols, &o.protocols),
            ciphers: pick(&p.ciphers, &o.ciphers),
            session_reuse: pick(&p.session_reuse, &o.session_reuse),
        }
    }
}

/// Whether `name` is one of the directives of this module (for the importer's "handled" list).
pub(super) fn is_tls_directive(name: &str) -> bool {
    SERVER_LEVEL.contains(&name)
        || LOCATION_LEVEL.contains(&name)
        || name
            .strip_prefix("grpc_")
            .is_some_and(|rest| LOCATION_LEVEL.contains(&format!("proxy_{rest}").as_str()))
}

/// Directives of http and server level.
const SERVER_LEVEL: &[&str] = &[
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_protocols",
    "ssl_ciphers",
    "ssl_prefer_server_ciphers",
    "ssl_ecdh_curve",
    "ssl_password_file",
    "ssl_session_cache",
    "ssl_session_timeout",
    "ssl_session_tickets",
    "ssl_session_ticket_key",
    "ssl_reject_handshake",
    "ssl_verify_client",
    "ssl_client_certificate",
    "ssl_trusted_certificate",
    "ssl_verify_depth",
    "ssl_crl",
    "ssl_stapling",
    "ssl_stapling_file",
    "ssl_stapling_verify",
    "ssl_stapling_responder",
    "ssl_early_data",
    "ssl_dhparam",
    "ssl_buffer_size",
    "http2",
    "http2_max_concurrent_streams",
    "http2_body_preread_size",
    "http2_recv_buffer_size",
    "http2_chunk_size",
    "http2_push",
    "http2_push_preload",
    "http2_idle_timeout",
    "http2_recv_timeout",
    "http2_max_requests",
    "http2_max_field_size",
    "http2_max_header_size",
];

/// Directives of http, server and location level.
const LOCATION_LEVEL: &[&str] = &[
    "proxy_ssl_verify",
    "proxy_ssl_trusted_certificate",
    "proxy_ssl_verify_depth",
    "proxy_ssl_name",
    "proxy_ssl_server_name",
    "proxy_ssl_certificate",
    "proxy_ssl_certificate_key",
    "proxy_ssl_password_file",
    "proxy_ssl_protocols",
    "proxy_ssl_ciphers",
    "proxy_ssl_session_reuse",
];

impl Importer<'_> {
    /// Handles a TLS / HTTP/2 directive at `level` ("http", "server" or "location"); false if
    /// `node` is not one of them. A server-level directive in a location is refused.
    pub(super) fn tls_directive(&mut self, node: &Node, level: &str, scope: &mut TlsScope) -> bool {
        let name = node.name.as_str();
        if LOCATION_LEVEL.contains(&name) {
            self.proxy_ssl_directive(node, name, &mut scope.proxy);
            return true;
        }
        if let Some(rest) = name.strip_prefix("grpc_") {
            let as_proxy = format!("proxy_{rest}");
            if LOCATION_LEVEL.contains(&as_proxy.as_str()) {
                self.proxy_ssl_directive(node, &as_proxy, &mut scope.grpc);
                return true;
            }
        }
        if !SERVER_LEVEL.contains(&name) {
            return false;
        }
        if level == "location" && name == "http2_chunk_size" {
            // nginx allows it per location; halo sizes DATA frames per server.
            self.warn(
                node,
                "http2_chunk_size: halo applies this per server; ignored in a location",
            );
            return true;
        }
        if level == "location" {
            self.err(
                &node.pos,
                format!("\"{name}\" directive is not allowed here (in location)"),
                Some("http or server"),
            );
            return true;
        }
        match name {
            "ssl_certificate" => {
                if let Some(a) = self.one(node).cloned() {
                    if a.text.contains('$') {
                        self.err(&a.pos, "certificates named by variables are not supported by halo", Some("a file path"));
                    } else {
                        let path = self.conf_path(&a.text);
                        // An inner level's first ssl_certificate starts a new list.
                        scope.certificates.get_or_insert_with(Vec::new).push((path, node.pos.clone()));
                    }
                }
            }
            "ssl_certificate_key" => {
                if let Some(a) = self.one(node).cloned() {
                    if a.text.contains('$') || a.text.starts_with("engine:") || a.text.starts_with("store:") {
                        self.err(&a.pos, "keys named by variables, engines or stores are not supported by halo", Some("a PEM file path"));
                    } else {
                        let path = self.conf_path(&a.text);
                        scope.keys.get_or_insert_with(Vec::new).push(path);
                    }
                }
            }
            "ssl_protocols" => {
                if self.no_block(node) {
                    scope.protocols = Some(self.protocols(node));
                }
            }
            "ssl_ciphers" => {
                if let Some(a) = self.one(node).cloned() {
                    let (_, unknown) = crate::tls::select_tls12_suites(&a.text);
                    if !unknown.is_empty() {
                        self.diags.push(a.pos.warning(format!(
                            "ssl_ciphers: {} not offered by halo (TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305 only); dropped",
                            unknown.join(", ")
                        )));
                    }
                    scope.ciphers = Some(a.text);
                }
            }
            "ssl_prefer_server_ciphers" => scope.prefer_server_ciphers = self.flag(node).or(scope.prefer_server_ciphers),
            "ssl_ecdh_curve" => {
                if let Some(a) = self.one(node).cloned() {
                    let (_, unknown) = crate::tls::select_groups(&a.text);
                    if !unknown.is_empty() {
                        self.diags.push(a.pos.warning(format!(
                            "ssl_ecdh_curve: {} not offered by halo (X25519, prime256v1, secp384r1, X25519MLKEM768); dropped",
                            unknown.join(", ")
                        )));
                    }
                    scope.ecdh_curve = Some(a.text);
                }
            }
            "ssl_password_file" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.password_file = Some(self.conf_path(&a.text));
                }
            }
            "ssl_session_cache" => {
                if self.no_block(node) {
                    scope.session_cache = self.session_cache(node).or(scope.session_cache);
                }
            }
            "ssl_session_timeout" => scope.session_timeout = self.time_one(node).or(scope.session_timeout),
            "ssl_session_tickets" => scope.session_tickets = self.flag(node).or(scope.session_tickets),
            "ssl_session_ticket_key" => {
                self.warn(node, "ssl_session_ticket_key: halo encrypts tickets with its own random keys, rotated and shared by every thread (tickets are not shared with other nodes); the file is not used");
                if let Some(a) = self.one(node).cloned() {
                    let path = self.conf_path(&a.text);
                    scope.session_ticket_keys.get_or_insert_with(Vec::new).push(path);
                }
            }
            "ssl_reject_handshake" => scope.reject_handshake = self.flag(node).or(scope.reject_handshake),
            "ssl_verify_client" => {
                if let Some(a) = self.one(node).cloned() {
                    let mode = match a.text.as_str() {
                        "off" => Some(VerifyClient::Off),
                        "on" => Some(VerifyClient::On),
                        "optional" => Some(VerifyClient::Optional),
                        "optional_no_ca" => Some(VerifyClient::OptionalNoCa),
                        other => {
                            self.err(&a.pos, format!("invalid value \"{other}\" in \"ssl_verify_client\" directive"), Some("on, off, optional or optional_no_ca"));
                            None
                        }
                    };
                    scope.verify_client = mode.or(scope.verify_client);
                }
            }
            "ssl_client_certificate" | "ssl_trusted_certificate" | "ssl_crl" | "ssl_stapling_file" => {
                if let Some(a) = self.one(node).cloned() {
                    let path = Some(self.conf_path(&a.text));
                    match name {
                        "ssl_client_certificate" => scope.client_certificate = path,
                        "ssl_trusted_certificate" => scope.trusted_certificate = path,
                        "ssl_crl" => scope.crl = path,
                        _ => scope.stapling_file = path,
                    }
                }
            }
            "ssl_verify_depth" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.verify_depth = self.number(node, &a).or(scope.verify_depth);
                }
            }
            "ssl_early_data" => {
                if self.flag(node) == Some(true) {
                    self.warn(node, "ssl_early_data: halo does not accept TLS 1.3 early data (clients send the request after the handshake instead; nothing is replayable); ignored");
                }
            }
            "ssl_stapling" => {
                if self.flag(node) == Some(true) {
                    self.warn(node, "ssl_stapling: halo does not fetch OCSP responses itself; staple a file with ssl_stapling_file; ignored");
                }
            }
            "ssl_stapling_verify" | "ssl_stapling_responder" => {
                self.warn(node, format!("{name}: halo does not fetch OCSP responses itself; ignored"));
            }
            "ssl_dhparam" => self.warn(node, "ssl_dhparam: halo offers no DHE cipher suites (ECDHE only), so DH parameters are not used; ignored"),
            "ssl_buffer_size" => self.warn(node, "ssl_buffer_size: halo sizes TLS records itself; ignored"),
            "http2" => scope.http2 = self.flag(node).or(scope.http2),
            "http2_max_concurrent_streams" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.http2_max_concurrent_streams = self.number(node, &a).or(scope.http2_max_concurrent_streams);
                }
            }
            "http2_body_preread_size" | "http2_recv_buffer_size" | "http2_chunk_size" => {
                if let Some(a) = self.one(node).cloned() {
                    let size = self.size(node, &a);
                    if size == Some(0) && name != "http2_body_preread_size" {
                        self.err(&a.pos, format!("\"{name}\" must be greater than zero"), Some("a size such as 8k"));
                    } else {
                        match name {
                            "http2_body_preread_size" => scope.http2_body_preread_size = size.or(scope.http2_body_preread_size),
                            "http2_recv_buffer_size" => scope.http2_recv_buffer_size = size.or(scope.http2_recv_buffer_size),
                            _ => scope.http2_chunk_size = size.or(scope.http2_chunk_size),
                        }
                    }
                }
            }
            // Obsolete in nginx (1.19.7 and 1.25.1): nginx itself only warns.
            _ => self.warn(node, format!("{name}: obsolete in nginx; ignored")),
        }
        true
    }

    fn protocols(&mut self, node: &Node) -> Vec<TlsVersion> {
        let mut out = Vec::new();
        for a in &node.args {
            match a.text.as_str() {
                "TLSv1.2" => out.push(TlsVersion::Tls12),
                "TLSv1.3" => out.push(TlsVersion::Tls13),
                "SSLv2" | "SSLv3" | "TLSv1" | "TLSv1.1" => {
                    self.diags.push(a.pos.warning(format!(
                        "{}: {} is insecure and not offered by halo (TLSv1.2 and TLSv1.3 only); dropped",
                        node.name, a.text
                    )));
                }
                other => self.err(
                    &a.pos,
                    format!("invalid value \"{other}\" in \"{}\" directive", node.name),
                    Some("TLSv1.2 and/or TLSv1.3"),
                ),
            }
        }
        if node.args.is_empty() {
            self.err(
                &node.pos,
                format!("invalid number of arguments in \"{}\" directive", node.name),
                Some("at least one protocol"),
            );
        } else if out.is_empty() {
            self.err(
                &node.pos,
                format!("\"{}\" leaves no protocol halo can speak", node.name),
                Some("TLSv1.2 and/or TLSv1.3"),
            );
        }
        out.sort();
        out.dedup();
        out
    }

    /// `ssl_session_cache off | none | [builtin[:size]] [shared:name:size]`.
    fn session_cache(&mut self, node: &Node) -> Option<SessionCache> {
        let mut sessions = 0usize;
        for a in &node.args {
            match a.text.as_str() {
                "off" if node.args.len() == 1 => return Some(SessionCache::Off),
                "none" if node.args.len() == 1 => return Some(SessionCache::None),
                "builtin" => sessions += 20480,
                text => {
                    if let Some(n) = text.strip_prefix("builtin:") {
                        match n.parse::<usize>() {
                            Ok(n) => sessions += n,
                            Err(_) => {
                                self.err(
                                    &a.pos,
                                    format!("invalid session cache \"{text}\""),
                                    Some("builtin:NUMBER"),
                                );
                                return None;
                            }
                        }
                    } else if let Some(spec) = text.strip_prefix("shared:") {
                        let size = spec.rsplit_once(':').and_then(|(name, size)| {
                            (!name.is_empty())
                                .then(|| crate::http::parse_size(size).ok())
                                .flatten()
                        });
                        match size {
                            // nginx: about 4000 sessions per megabyte.
                            Some(bytes) => {
                                sessions +=
                                    usize::try_from(bytes / 256).unwrap_or(usize::MAX).max(1)
                            }
                            None => {
                                self.err(
                                    &a.pos,
                                    format!("invalid session cache \"{text}\""),
                                    Some("shared:NAME:SIZE"),
                                );
                                return None;
                            }
                        }
                    } else {
                        self.err(
                            &a.pos,
                            format!("invalid session cache \"{text}\""),
                            Some("off, none, builtin[:N] or shared:NAME:SIZE"),
                        );
                        return None;
                    }
                }
            }
        }
        if node.args.is_empty() {
            self.err(
                &node.pos,
                "invalid number of arguments in \"ssl_session_cache\" directive",
                Some("off, none, builtin[:N] or shared:NAME:SIZE"),
            );
            return None;
        }
        Some(SessionCache::Sessions(sessions))
    }

    /// `name`: the directive as `proxy_ssl_*` (a `grpc_ssl_*` one is handled under that name).
    fn proxy_ssl_directive(&mut self, node: &Node, name: &str, scope: &mut UpstreamScope) {
        match name {
            "proxy_ssl_verify" => scope.verify = self.flag(node).or(scope.verify),
            "proxy_ssl_server_name" => scope.server_name = self.flag(node).or(scope.server_name),
            "proxy_ssl_session_reuse" => {
                scope.session_reuse = self.flag(node).or(scope.session_reuse)
            }
            "proxy_ssl_verify_depth" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.verify_depth = self.number(node, &a).or(scope.verify_depth);
                }
            }
            "proxy_ssl_protocols" => {
                if self.no_block(node) {
                    scope.protocols = Some(self.protocols(node));
                }
            }
            "proxy_ssl_name" | "proxy_ssl_ciphers" => {
                if let Some(a) = self.one(node).cloned() {
                    if name == "proxy_ssl_name" {
                        scope.name = Some(a.text);
                    } else {
                        scope.ciphers = Some(a.text);
                    }
                }
            }
            _ => {
                if let Some(a) = self.one(node).cloned() {
                    if a.text.contains('$') {
                        self.err(
                            &a.pos,
                            format!("\"{name}\" with variables is not supported by halo"),
                            Some("a file path"),
                        );
                        return;
                    }
                    let path = Some(self.conf_path(&a.text));
                    match name {
                        "proxy_ssl_trusted_certificate" => scope.trusted_certificate = path,
                        "proxy_ssl_certificate" => scope.certificate = path,
                        "proxy_ssl_certificate_key" => scope.certificate_key = path,
                        _ => scope.password_file = path,
                    }
                }
            }
        }
    }

    /// The server's TLS and HTTP/2 settings from its effective scope. nginx pairs
    /// `ssl_certificate` and `ssl_certificate_key` by order; fewer keys than certificates is an
    /// error.
    pub(super) fn server_tls(&mut self, scope: &TlsScope, at: &str) -> (ServerTls, Http2Settings) {
        let d = ServerTls::default();
        let mut certificates = Vec::new();
        let keys = scope.keys.clone().unwrap_or_default();
        for (i, (cert, pos)) in scope.certificates.iter().flatten().enumerate() {
            self.record(format!("{at}.tls.certificates[{i}]"), pos);
            match keys.get(i) {
                Some(key) => certificates.push(CertificatePair {
                    certificate: cert.clone(),
                    key: key.clone(),
                }),
                None => self.err(
                    pos,
                    format!("no \"ssl_certificate_key\" is defined for certificate \"{cert}\""),
                    Some("an ssl_certificate_key for each ssl_certificate"),
                ),
            }
        }
        let tls = ServerTls {
            certificates,
            protocols: scope.protocols.clone().unwrap_or(d.protocols),
            ciphers: scope.ciphers.clone().unwrap_or(d.ciphers),
            prefer_server_ciphers: scope
                .prefer_server_ciphers
                .unwrap_or(d.prefer_server_ciphers),
            ecdh_curve: scope.ecdh_curve.clone().unwrap_or(d.ecdh_curve),
            password_file: scope.password_file.clone(),
            session_cache: scope.session_cache.unwrap_or(d.session_cache),
            session_timeout: scope.session_timeout.unwrap_or(d.session_timeout),
            session_tickets: scope.session_tickets.unwrap_or(d.session_tickets),
            session_ticket_keys: scope.session_ticket_keys.clone().unwrap_or_default(),
            reject_handshake: scope.reject_handshake.unwrap_or(d.reject_handshake),
            verify_client: scope.verify_client.unwrap_or(d.verify_client),
            client_certificate: scope.client_certificate.clone(),
            trusted_certificate: scope.trusted_certificate.clone(),
            verify_depth: scope.verify_depth.unwrap_or(d.verify_depth),
            crl: scope.crl.clone(),
            stapling_file: scope.stapling_file.clone(),
            early_data: scope.early_data.unwrap_or(d.early_data),
        };
        let h = Http2Settings::default();
        let http2 = Http2Settings {
            enabled: scope.http2.unwrap_or(h.enabled),
            max_concurrent_streams: scope
                .http2_max_concurrent_streams
                .unwrap_or(h.max_concurrent_streams),
            body_preread_size: scope.http2_body_preread_size.unwrap_or(h.body_preread_size),
            recv_buffer_size: scope.http2_recv_buffer_size.unwrap_or(h.recv_buffer_size),
            chunk_size: scope.http2_chunk_size.unwrap_or(h.chunk_size),
        };
        (tls, http2)
    }

    /// A location's upstream TLS settings from its effective scope (`grpc_ssl_*` for a
    /// `grpc_pass` location, else `proxy_ssl_*`).
    pub(super) fn upstream_tls(&mut self, scope: &TlsScope, pos: &Pos, grpc: bool) -> UpstreamTls {
        let p = if grpc { &scope.grpc } else { &scope.proxy };
        let d = UpstreamTls::default();
        let certificate = match (&p.certificate, &p.certificate_key) {
            (Some(certificate), Some(key)) => Some(CertificatePair {
                certificate: certificate.clone(),
                key: key.clone(),
            }),
            (Some(certificate), None) => {
                self.err(
                    pos,
                    format!("no \"proxy_ssl_certificate_key\" is defined for \"{certificate}\""),
                    Some("proxy_ssl_certificate_key"),
                );
                None
            }
            _ => None,
        };
        UpstreamTls {
            verify: p.verify.unwrap_or(d.verify),
            trusted_certificate: p.trusted_certificate.clone(),
            verify_depth: p.verify_depth.unwrap_or(d.verify_depth),
            name: p.name.clone(),
            server_name: p.server_name.unwrap_or(d.server_name),
            certificate,
            password_file: p.password_file.clone(),
            protocols: p.protocols.clone().unwrap_or(d.protocols),
            ciphers: p.ciphers.clone().unwrap_or(d.ciphers),
            session_reuse: p.session_reuse.unwrap_or(d.session_reuse),
        }
    }
}
