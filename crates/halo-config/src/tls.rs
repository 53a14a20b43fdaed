//! TLS and HTTP/2 settings of the HTTP side: what a server block terminates (nginx
//! `ngx_http_ssl_module`, `ngx_http_v2_module`) and how a location talks TLS to its upstream
//! (`proxy_ssl_*`).
//!
//! Defaults are nginx's (1.27.3 and later): TLS 1.2 and 1.3, no client certificates, session
//! tickets on, no session cache, 5 minutes session timeout; upstream certificates NOT verified
//! (`proxy_ssl_verify off`) and no SNI sent upstream (`proxy_ssl_server_name off`).
//! Paths are kept as written after the importer resolved them against nginx's prefix.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::{duration, size};

/// A TLS protocol version halo can speak (rustls implements 1.2 and 1.3 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 (`TLSv1.2`).
    #[serde(rename = "TLSv1.2")]
    Tls12,
    /// TLS 1.3 (`TLSv1.3`).
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

fn default_protocols() -> Vec<TlsVersion> {
    vec![TlsVersion::Tls12, TlsVersion::Tls13]
}

/// One `ssl_certificate` with its `ssl_certificate_key` (PEM files; the certificate file may
/// hold the whole chain, leaf first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificatePair {
    /// Certificate chain (PEM).
    pub certificate: String,
    /// Private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC; encrypted PKCS#8 with `password_file`).
    pub key: String,
}

/// `ssl_verify_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyClient {
    /// No client certificate is asked for (nginx default).
    #[default]
    Off,
    /// A valid client certificate is required: a request without one gets 400 (nginx's 496),
    /// with an invalid one 400 (nginx's 495).
    On,
    /// A certificate is asked for; if one is sent it must verify.
    Optional,
    /// A certificate is asked for; its issuer need not be known (other checks still apply).
    OptionalNoCa,
}

/// `ssl_session_cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionCache {
    /// `none` (nginx default): no server-side cache, but clients are told sessions may be
    /// reused (tickets still work when on).
    #[default]
    None,
    /// `off`: no session reuse through a cache.
    Off,
    /// `shared:NAME:SIZE` / `builtin[:N]`: one cache for all threads, holding about this many
    /// sessions (nginx: about 4000 per megabyte).
    Sessions(usize),
}

/// The TLS side of a server block (`ssl_*` directives, inherited http -> server by the
/// importer). Used when the block listens with `ssl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTls {
    /// Certificate and key pairs (`ssl_certificate` / `ssl_certificate_key`); with several
    /// (e.g. ECDSA and RSA) each handshake takes the first the client can verify.
    pub certificates: Vec<CertificatePair>,
    /// `ssl_protocols` (default TLSv1.2 TLSv1.3).
    #[serde(default = "default_protocols")]
    pub protocols: Vec<TlsVersion>,
    /// `ssl_ciphers` in OpenSSL syntax (default `HIGH:!aNULL:!MD5`), applied to TLS 1.2 suites.
    pub ciphers: String,
    /// `ssl_prefer_server_ciphers` (off): the server's order decides.
    pub prefer_server_ciphers: bool,
    /// `ssl_ecdh_curve` (default `auto`): colon-separated groups.
    pub ecdh_curve: String,
    /// `ssl_password_file`: passphrases for encrypted keys, one per line, tried in turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// `ssl_session_cache`.
    pub session_cache: SessionCache,
    /// `ssl_session_timeout` (5m): how long a session may be resumed.
    #[serde(with = "duration")]
    pub session_timeout: Duration,
    /// `ssl_session_tickets` (on).
    pub session_tickets: bool,
    /// `ssl_session_ticket_key` files (48 or 80 bytes each); the first encrypts new tickets,
    /// all decrypt. Empty = random keys, rotated, shared by every thread of this process.
    pub session_ticket_keys: Vec<String>,
    /// `ssl_reject_handshake on`: handshakes that select this server are refused.
    pub reject_handshake: bool,
    /// `ssl_verify_client`.
    pub verify_client: VerifyClient,
    /// `ssl_client_certificate`: CAs that client certificates must chain to (and are named
    /// to clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// `ssl_trusted_certificate`: more CAs for verifying client certificates, not named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_certificate: Option<String>,
    /// `ssl_verify_depth` (1): longest client chain below the trusted CA.
    pub verify_depth: u32,
    /// `ssl_crl`: revoked client certificates (PEM CRLs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl: Option<String>,
    /// `ssl_stapling_file`: a DER OCSP response stapled to every handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stapling_file: Option<String>,
    /// `ssl_early_data` (off): accept TLS 1.3 0-RTT data; requests other than GET/HEAD/OPTIONS
    /// that arrive in early data get 425.
    pub early_data: bool,
}

impl Default for ServerTls {
    fn default() -> Self {
        Self {
            certificates: Vec::new(),
            protocols: default_protocols(),
            ciphers: "HIGH:!aNULL:!MD5".to_owned(),
            prefer_server_ciphers: false,
            ecdh_curve: "auto".to_owned(),
            password_file: None,
            session_cache: SessionCache::None,
            session_timeout: Duration::from_secs(300),
            session_tickets: true,
            session_ticket_keys: Vec::new(),
            reject_handshake: false,
            verify_client: VerifyClient::Off,
            client_certificate: None,
            trusted_certificate: None,
            verify_depth: 1,
            crl: None,
            stapling_file: None,
            early_data: false,
        }
    }
}

impl ServerTls {
    /// Whether every field has its default (TOML output leaves it out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// HTTP/2 of a server block (`http2 on`, `http2_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http2Settings {
    /// `http2 on` (nginx 1.25.1+; or `listen ... http2`): offered by ALPN over TLS, and
    /// prior-knowledge h2c on plain listeners.
    pub enabled: bool,
    /// `http2_max_concurrent_streams` (128).
    pub max_concurrent_streams: u32,
    /// `http2_body_preread_size` (64k): the initial flow-control window of each stream.
    #[serde(with = "size")]
    pub body_preread_size: u64,
    /// `http2_recv_buffer_size` (256k): the connection-level receive window halo advertises.
    #[serde(with = "size")]
    pub recv_buffer_size: u64,
    /// `http2_chunk_size` (8k): the largest DATA frame halo sends.
    #[serde(with = "size")]
    pub chunk_size: u64,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            enabled: false,
            max_concurrent_streams: 128,
            body_preread_size: 64 * 1024,
            recv_buffer_size: 256 * 1024,
            chunk_size: 8 * 1024,
        }
    }
}

impl Http2Settings {
    /// Whether every field has its default.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// TLS toward upstreams (`proxy_ssl_*`), used when `proxy_pass` starts with `https://`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamTls {
    /// `proxy_ssl_verify` (off, as nginx: any certificate is accepted).
    pub verify: bool,
    /// `proxy_ssl_trusted_certificate`: CAs for `verify` (required when it is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_certificate: Option<String>,
    /// `proxy_ssl_verify_depth` (1).
    pub verify_depth: u32,
    /// `proxy_ssl_name`: the name verified and sent as SNI; `None` = the proxy_pass host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `proxy_ssl_server_name` (off): send SNI.
    pub server_name: bool,
    /// `proxy_ssl_certificate` / `proxy_ssl_certificate_key`: client certificate (mutual TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificatePair>,
    /// `proxy_ssl_password_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// `proxy_ssl_protocols` (TLSv1.2 TLSv1.3).
    #[serde(default = "default_protocols")]
    pub protocols: Vec<TlsVersion>,
    /// `proxy_ssl_ciphers` (`DEFAULT`).
    pub ciphers: String,
    /// `proxy_ssl_session_reuse` (on).
    pub session_reuse: bool,
}

impl Default for UpstreamTls {
    fn default() -> Self {
        Self {
            verify: false,
            trusted_certificate: None,
            verify_depth: 1,
            name: None,
            server_name: false,
            certificate: None,
            password_file: None,
            protocols: default_protocols(),
            ciphers: "DEFAULT".to_owned(),
            session_reuse: true,
        }
    }
}

impl UpstreamTls {
    /// Whether every field has its default.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Checks a server's TLS settings that need no file access.
pub(crate) fn check_server_tls(at: &str, tls: &ServerTls, err: &mut dyn FnMut(String, String)) {
    if tls.certificates.is_empty() && !tls.reject_handshake {
        // No TLS context of its own (nginx skips these checks too).
        return;
    }
    if tls.protocols.is_empty() {
        err(
            format!("{at}.protocols"),
            "no TLS protocol left (halo speaks TLSv1.2 and TLSv1.3)".into(),
        );
    }
    for (i, pair) in tls.certificates.iter().enumerate() {
        if pair.key.is_empty() {
            err(
                format!("{at}.certificates[{i}].key"),
                format!(
                    "no \"ssl_certificate_key\" is defined for certificate \"{}\"",
                    pair.certificate
                ),
            );
        }
    }
    let has_ca = tls.client_certificate.is_some() || tls.trusted_certificate.is_some();
    if matches!(tls.verify_client, VerifyClient::On | VerifyClient::Optional) && !has_ca {
        err(
            format!("{at}.verify_client"),
            "no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client".into(),
        );
    }
    if tls.verify_depth == 0 {
        err(format!("{at}.verify_depth"), "must be at least 1".into());
    }
    if tls.protocols.contains(&TlsVersion::Tls12) && select_tls12_suites(&tls.ciphers).0.is_empty()
    {
        err(
            format!("{at}.ciphers"),
            format!(
                "\"{}\" selects no TLS 1.2 cipher suite halo has (ECDHE with AES-GCM or ChaCha20-Poly1305)",
                tls.ciphers
            ),
        );
    }
    if select_groups(&tls.ecdh_curve)
        .0
        .is_some_and(|g| g.is_empty())
    {
        err(
            format!("{at}.ecdh_curve"),
            format!(
                "\"{}\" names no key-exchange group halo has",
                tls.ecdh_curve
            ),
        );
    }
    if tls.early_data {
        err(
            format!("{at}.early_data"),
            "TLS 1.3 early data is not accepted by halo; leave it off".into(),
        );
    }
}

/// Checks a location's upstream TLS settings that need no file access.
pub(crate) fn check_upstream_tls(at: &str, tls: &UpstreamTls, err: &mut dyn FnMut(String, String)) {
    if tls.verify && tls.trusted_certificate.is_none() {
        err(
            format!("{at}.verify"),
            "no proxy_ssl_trusted_certificate for proxy_ssl_verify".into(),
        );
    }
    if tls.protocols.is_empty() {
        err(
            format!("{at}.protocols"),
            "no TLS protocol left (halo speaks TLSv1.2 and TLSv1.3)".into(),
        );
    }
    if let Some(pair) = &tls.certificate {
        if pair.key.is_empty() {
            err(
                format!("{at}.certificate.key"),
                "no proxy_ssl_certificate_key for proxy_ssl_certificate".into(),
            );
        }
    }
}

/// The TLS 1.2 cipher suites halo implements, by OpenSSL name, in OpenSSL's default order
/// (rustls has ECDHE with AES-GCM and ChaCha20-Poly1305 only; TLS 1.3 suites are not chosen
/// by `ssl_ciphers`, as in nginx).
pub const TLS12_SUITES: [&str; 6] = [
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
];

/// Whether the OpenSSL cipher-string word `word` (one element of a `+` group) selects `suite`.
fn word_selects(word: &str, suite: &str) -> bool {
    let ecdsa = suite.contains("ECDSA");
    let aes128 = suite.contains("AES128");
    let aes256 = suite.contains("AES256");
    let chacha = suite.contains("CHACHA20");
    match word {
        "ALL"
        | "DEFAULT"
        | "HIGH"
        | "COMPLEMENTOFDEFAULT"
        | "ECDHE"
        | "EECDH"
        | "kEECDH"
        | "kECDHE"
        | "AEAD"
        | "TLSv1.2"
        | "SSLv3"
        | "TLSv1" => true,
        "aECDSA" | "ECDSA" => ecdsa,
        "aRSA" | "RSA" => !ecdsa,
        "AESGCM" => aes128 || aes256,
        "AES" => aes128 || aes256,
        "AES128" => aes128,
        "AES256" => aes256,
        "CHACHA20" => chacha,
        "SHA256" => aes128 || chacha,
        "SHA384" => aes256,
        _ => word == suite,
    }
}

/// Evaluates an OpenSSL cipher string (`ssl_ciphers`) against [`TLS12_SUITES`]: the suites it
/// selects in its order, and the words that name nothing halo has (for a warning).
pub fn select_tls12_suites(ciphers: &str) -> (Vec<&'static str>, Vec<String>) {
    let mut chosen: Vec<&'static str> = Vec::new();
    let mut banned: Vec<&'static str> = Vec::new();
    let mut unknown = Vec::new();
    for element in ciphers.split([':', ',', ' ']).filter(|e| !e.is_empty()) {
        let (op, spec) = match element.as_bytes()[0] {
            b'!' | b'-' | b'+' => (element.as_bytes()[0], &element[1..]),
            _ => (0, element),
        };
        if spec.starts_with('@') {
            continue; // @STRENGTH, @SECLEVEL=n
        }
        let matching: Vec<&'static str> = TLS12_SUITES
            .iter()
            .copied()
            .filter(|suite| spec.split('+').all(|w| word_selects(w, suite)))
            .collect();
        if matching.is_empty() && op != b'!' && op != b'-' {
            unknown.push(element.to_owned());
        }
        for suite in matching {
            match op {
                b'!' => {
                    banned.push(suite);
                    chosen.retain(|s| *s != suite);
                }
                b'-' => chosen.retain(|s| *s != suite),
                b'+' => {
                    if let Some(i) = chosen.iter().position(|s| *s == suite) {
                        let s = chosen.remove(i);
                        chosen.push(s);
                    }
                }
                _ => {
                    if !banned.contains(&suite) && !chosen.contains(&suite) {
                        chosen.push(suite);
                    }
                }
            }
        }
    }
    (chosen, unknown)
}

/// The key-exchange groups of an `ssl_ecdh_curve` value by halo's names (`X25519`,
/// `secp256r1`, `secp384r1`, `X25519MLKEM768`), and the names it does not know. `auto` = None.
pub fn select_groups(curves: &str) -> (Option<Vec<&'static str>>, Vec<String>) {
    if curves == "auto" {
        return (None, Vec::new());
    }
    let mut groups = Vec::new();
    let mut unknown = Vec::new();
    for name in curves.split(':').filter(|n| !n.is_empty()) {
        let group = match name {
            "X25519" | "x25519" => "X25519",
            "prime256v1" | "secp256r1" | "P-256" => "secp256r1",
            "secp384r1" | "P-384" => "secp384r1",
            "X25519MLKEM768" => "X25519MLKEM768",
            other => {
                unknown.push(other.to_owned());
                continue;
            }
        };
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    (Some(groups), unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_default_cipher_string_selects_every_suite_halo_has() {
        let (chosen, unknown) = select_tls12_suites("HIGH:!aNULL:!MD5");
        assert_eq!(chosen, TLS12_SUITES.to_vec());
        assert!(unknown.is_empty(), "{unknown:?}");
    }

    #[test]
    fn mozilla_intermediate_keeps_its_order_and_names_what_halo_lacks() {
        let (chosen, unknown) = select_tls12_suites(
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256",
        );
        assert_eq!(
            chosen,
            vec![
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384"
            ]
        );
        assert_eq!(unknown, vec!["DHE-RSA-AES128-GCM-SHA256".to_owned()]);
    }

    #[test]
    fn exclusions_and_combinations_follow_openssl() {
        let (chosen, _) = select_tls12_suites("EECDH+AESGCM:!AES256");
        assert_eq!(
            chosen,
            vec![
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        let (chosen, unknown) = select_tls12_suites("RC4:3DES");
        assert!(chosen.is_empty());
        assert_eq!(unknown.len(), 2);
    }

    #[test]
    fn curves_map_openssl_names() {
        assert_eq!(select_groups("auto").0, None);
        let (groups, unknown) = select_groups("prime256v1:X25519:secp521r1");
        assert_eq!(groups, Some(vec!["secp256r1", "X25519"]));
        assert_eq!(unknown, vec!["secp521r1".to_owned()]);
    }
}
