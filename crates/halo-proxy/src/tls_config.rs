//! rustls server configurations compiled from the `ssl_*` settings of each server block, and
//! the per-address SNI tables that pick one at handshake time.
//!
//! Crypto provider: aws-lc-rs. Its ECDSA P-256 signing and AES-GCM are the fastest available
//! to rustls (a full ECDSA handshake costs a fraction of an RSA one), and it needs only a C
//! compiler to build. Post-quantum key exchange is not preferred by default (X25519 first, as
//! OpenSSL 3.0 in Debian does): X25519MLKEM768 can be asked for with `ssl_ecdh_curve`.
//!
//! Everything is built when a configuration is compiled (start, reload, `halo check`), so a
//! certificate that is missing, unreadable or does not match its key fails the reload and the
//! certificates in use keep serving.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use halo_config::http::{CertificatePair, ServerBlock, ServerTls, SessionCache, TlsVersion};
use halo_config::tls::{select_groups, select_tls12_suites};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::routing::ServerNames;

/// The TLS side of one server block, ready for handshakes.
pub(crate) struct ServerTlsRt {
    /// `None`: `ssl_reject_handshake on` (or no certificate): handshakes are refused.
    pub config: Option<Arc<ServerConfig>>,
    /// Each certificate file with the time it expires (seconds since the epoch).
    pub expiry: Vec<(String, i64)>,
    /// How client certificates are judged after the handshake (`ssl_verify_client`).
    pub client_auth: Option<Arc<crate::tls_client_auth::ClientAuth>>,
    /// HTTP/2 settings of the server block (stream limits and windows).
    pub http2: halo_config::http::Http2Settings,
}

impl fmt::Debug for ServerTlsRt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsRt")
            .field("rejects", &self.config.is_none())
            .field("expiry", &self.expiry)
            .finish()
    }
}

/// What a TLS listening address needs at handshake time.
#[derive(Debug)]
pub(crate) struct TlsListener {
    /// SNI -> server index (the same rules as Host routing).
    pub names: ServerNames,
    /// By server index.
    pub servers: HashMap<usize, Arc<ServerTlsRt>>,
    /// Some handshake on this address may be refused (`ssl_reject_handshake`): the
    /// ClientHello is then peeked at before the handshake.
    pub may_reject: bool,
}

impl TlsListener {
    pub fn new(names: ServerNames, servers: HashMap<usize, Arc<ServerTlsRt>>) -> Self {
        let may_reject = servers.values().any(|s| s.config.is_none());
        TlsListener {
            names,
            servers,
            may_reject,
        }
    }

    /// The server configuration for a ClientHello's SNI (`None` when the name is absent, the
    /// port's default server).
    pub fn select(&self, sni: Option<&str>) -> Option<&Arc<ServerTlsRt>> {
        let name = sni.map(|s| s.to_ascii_lowercase()).unwrap_or_default();
        // A server without certificates of its own hands its handshakes to the default
        // server's, as nginx does.
        self.servers
            .get(&self.names.find(&name))
            .or_else(|| self.servers.get(&self.names.default_index()))
    }
}

/// Session ticket encrypters carried across reloads, so tickets stay valid when the
/// configuration changes: one per server block identity (names and client-auth mode, so a
/// session never resumes into a server with other client-certificate rules).
#[derive(Default)]
pub(crate) struct Ticketers {
    by_key: std::sync::Mutex<HashMap<String, Arc<dyn rustls::server::ProducesTickets>>>,
}

impl fmt::Debug for Ticketers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ticketers")
    }
}

impl Ticketers {
    fn get(&self, key: String) -> Result<Arc<dyn rustls::server::ProducesTickets>, String> {
        let mut map = self
            .by_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = map.get(&key) {
            return Ok(t.clone());
        }
        let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| format!("cannot make a session ticket key: {e}"))?;
        map.insert(key, ticketer.clone());
        Ok(ticketer)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prefixes `plain` with the time it was made (8 bytes, big endian).
fn stamped(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + plain.len());
    out.extend_from_slice(&unix_now().to_be_bytes());
    out.extend_from_slice(plain);
    out
}

/// The payload of a [`stamped`] value no older than `max_age` seconds.
fn unstamped(value: &[u8], max_age: u64) -> Option<Vec<u8>> {
    let (time, rest) = value.split_first_chunk::<8>()?;
    let made = u64::from_be_bytes(*time);
    (unix_now().saturating_sub(made) <= max_age).then(|| rest.to_vec())
}

/// `ssl_session_timeout` for session tickets: each ticket carries the time it was issued (inside
/// the encryption) and is refused once older than the timeout; keys rotate underneath.
#[derive(Debug)]
struct TimedTickets {
    inner: Arc<dyn rustls::server::ProducesTickets>,
    timeout: u32,
}

impl rustls::server::ProducesTickets for TimedTickets {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }
    fn lifetime(&self) -> u32 {
        self.timeout
    }
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.inner.encrypt(&stamped(plain))
    }
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        unstamped(&self.inner.decrypt(cipher)?, u64::from(self.timeout))
    }
}

/// `ssl_session_timeout` for the session cache: entries older than the timeout are not resumed.
#[derive(Debug)]
struct TimedCache {
    inner: Arc<dyn rustls::server::StoresServerSessions>,
    timeout: u64,
}

impl rustls::server::StoresServerSessions for TimedCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, stamped(&value))
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        unstamped(&self.inner.get(key)?, self.timeout)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        unstamped(&self.inner.take(key)?, self.timeout)
    }
    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

/// The crypto provider for one server block: its cipher suites and key-exchange groups.
fn provider_for(protocols: &[TlsVersion], ciphers: &str, curves: &str) -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let (tls12, _) = select_tls12_suites(ciphers);
    let mut suites = Vec::new();
    if protocols.contains(&TlsVersion::Tls13) {
        suites.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .copied(),
        );
    }
    if protocols.contains(&TlsVersion::Tls12) {
        for name in tls12 {
            if let Some(s) = provider
                .cipher_suites
                .iter()
                .find(|s| openssl_suite_name(s.suite()) == name)
            {
                suites.push(*s);
            }
        }
    }
    provider.cipher_suites = suites;
    let (groups, _) = select_groups(curves);
    if let Some(groups) = groups {
        let all = rustls::crypto::aws_lc_rs::ALL_KX_GROUPS;
        provider.kx_groups = groups
            .iter()
            .filter_map(|g| {
                all.iter()
                    .find(|k| group_name(k.name()) == Some(*g))
                    .copied()
            })
            .collect();
    } else {
        // `auto`: X25519, P-256, P-384 (no post-quantum hybrid unless asked for).
        provider
            .kx_groups
            .retain(|k| k.name() != rustls::NamedGroup::X25519MLKEM768);
    }
    provider
}

fn group_name(group: rustls::NamedGroup) -> Option<&'static str> {
    Some(match group {
        rustls::NamedGroup::X25519 => "X25519",
        rustls::NamedGroup::secp256r1 => "secp256r1",
        rustls::NamedGroup::secp384r1 => "secp384r1",
        rustls::NamedGroup::X25519MLKEM768 => "X25519MLKEM768",
        _ => return None,
    })
}

/// OpenSSL's name of a cipher suite (what nginx logs in `$ssl_cipher`).
pub(crate) fn openssl_suite_name(suite: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite as C;
    match suite {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "UNKNOWN",
    }
}

/// Several certificates of one server (`ssl_certificate` more than once, e.g. ECDSA and RSA):
/// the first whose key can sign with a scheme the client offers.
#[derive(Debug)]
struct CertificateChoice(Vec<Arc<CertifiedKey>>);

impl ResolvesServerCert for CertificateChoice {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        self.0
            .iter()
            .find(|k| k.key.choose_scheme(schemes).is_some())
            .or_else(|| self.0.first())
            .cloned()
    }
}

/// Reads one certificate/key pair; the error names the file and what is wrong with it.
pub(crate) fn load_pair(
    pair: &CertificatePair,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, i64), String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pair.certificate)
        .map_err(|e| format!("cannot load certificate \"{}\": {e}", pair.certificate))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot load certificate \"{}\": {e}", pair.certificate))?;
    let Some(leaf) = certs.first() else {
        return Err(format!(
            "cannot load certificate \"{}\": no PEM certificate in it",
            pair.certificate
        ));
    };
    let (not_after, leaf_spki) = match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => (
            cert.validity().not_after.timestamp(),
            cert.tbs_certificate.subject_pki.raw.to_vec(),
        ),
        Err(e) => {
            return Err(format!(
                "cannot load certificate \"{}\": not a valid X.509 certificate ({e})",
                pair.certificate
            ))
        }
    };
    let key = PrivateKeyDer::from_pem_file(&pair.key).map_err(|e| {
        let encrypted = std::fs::read_to_string(&pair.key)
            .map(|t| t.contains("ENCRYPTED"))
            .unwrap_or(false);
        if encrypted {
            format!(
                "cannot load certificate key \"{}\": encrypted private keys are not supported by halo; decrypt it (openssl pkey -in KEY -out PLAIN)",
                pair.key
            )
        } else {
            format!("cannot load certificate key \"{}\": {e}", pair.key)
        }
    })?;
    let mismatch = |why: &dyn fmt::Display| {
        format!(
            "certificate \"{}\" and key \"{}\" do not belong together: {why}",
            pair.certificate, pair.key
        )
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("cannot load certificate key \"{}\": {e}", pair.key))?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(mismatch(&"the key is not the certificate's"))
        }
        // rustls could not parse the certificate (X.509 v1, which OpenSSL makes by default and
        // nginx accepts) or cannot derive the key's public half: compare the keys here.
        Err(_) => {
            if let Some(spki) = certified.key.public_key() {
                if spki.as_ref() != leaf_spki.as_slice() {
                    return Err(mismatch(&"the key is not the certificate's"));
                }
            }
        }
    }
    Ok((certified, not_after))
}

/// Compiles the TLS side of `server`. `h2`: offer HTTP/2 by ALPN.
pub(crate) fn build_server_tls(
    server: &ServerBlock,
    h2: bool,
    ticketers: &Ticketers,
) -> Result<ServerTlsRt, Vec<String>> {
    let tls: &ServerTls = &server.tls;
    let provider = Arc::new(provider_for(&tls.protocols, &tls.ciphers, &tls.ecdh_curve));
    let mut errors = Vec::new();
    let mut keys = Vec::new();
    let mut expiry = Vec::new();
    for pair in &tls.certificates {
        match load_pair(pair, &provider) {
            Ok((mut key, not_after)) => {
                if let Some(file) = &tls.stapling_file {
                    match std::fs::read(file) {
                        Ok(der) => key.ocsp = Some(der),
                        Err(e) => {
                            errors.push(format!("cannot read ssl_stapling_file \"{file}\": {e}"))
                        }
                    }
                }
                keys.push(Arc::new(key));
                expiry.push((pair.certificate.clone(), not_after));
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if tls.reject_handshake || keys.is_empty() {
        return Ok(ServerTlsRt {
            config: None,
            expiry,
            client_auth: None,
            http2: server.http2,
        });
    }
    let client_auth = crate::tls_client_auth::client_auth(tls, &provider).map_err(|e| vec![e])?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&crate::tls_signature::versions(&tls.protocols))
        .map_err(|e| vec![format!("TLS settings: {e}")])?;
    let verifier = crate::tls_client_auth::verifier(tls, &provider).map_err(|e| vec![e])?;
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(CertificateChoice(keys)));
    config.ignore_client_order = tls.prefer_server_ciphers;
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let timeout = u32::try_from(tls.session_timeout.as_secs())
        .unwrap_or(u32::MAX)
        .max(1);
    config.session_storage = match tls.session_cache {
        SessionCache::Sessions(n) => Arc::new(TimedCache {
            inner: rustls::server::ServerSessionMemoryCache::new(n.max(1)),
            timeout: u64::from(timeout),
        }),
        // `none`: nginx keeps no cache either; `off` likewise.
        SessionCache::None | SessionCache::Off => {
            Arc::new(rustls::server::NoServerSessionStorage {})
        }
    };
    if tls.session_tickets {
        let key = format!("{:?}/{:?}", server.server_name, tls.verify_client);
        config.ticketer = Arc::new(TimedTickets {
            inner: ticketers.get(key).map_err(|e| vec![e])?,
            timeout,
        });
    } else if tls.session_cache == SessionCache::None || tls.session_cache == SessionCache::Off {
        config.send_tls13_tickets = 0;
    }
    Ok(ServerTlsRt {
        config: Some(Arc::new(config)),
        expiry,
        client_auth,
        http2: server.http2,
    })
}

/// Everything `halo run` checks before serving `cfg`, without serving: the TLS files
/// ([`check_files`]), then the whole configuration compiled as the proxy compiles it (regexes,
/// variables, log formats, upstream names). Registered with [`halo_config::set_file_checker`]
/// by the binary, so `halo check` and `halo nginx -t` refuse what `halo run` would.
pub fn check(
    cfg: &halo_config::http::HttpConfig,
) -> Vec<(halo_config::http::HttpConfigError, halo_config::Severity)> {
    let mut out = check_files(cfg);
    if out.iter().any(|(_, s)| *s == halo_config::Severity::Error) {
        return out;
    }
    let pools = Arc::new(crate::pool::Pools::default());
    let logs = crate::access_log::LogFiles::default();
    if let Err(error) = crate::runtime::Runtime::build(Arc::new(cfg.clone()), None, &pools, &logs) {
        let messages = match error {
            crate::error::ProxyError::Config(list) => list,
            other => vec![other.to_string()],
        };
        for message in messages {
            out.push((
                halo_config::http::HttpConfigError {
                    at: unknown_variable_at(&message),
                    message,
                },
                halo_config::Severity::Error,
            ));
        }
    }
    out
}

/// Where an error about an unknown variable is reported: `vars.NAME`, which the nginx
/// importer records at the first directive using `$NAME`; other errors: the http block.
fn unknown_variable_at(message: &str) -> String {
    const MARK: &str = "unknown variable \"$";
    message
        .find(MARK)
        .map(|i| &message[i + MARK.len()..])
        .and_then(|rest| rest.split('"').next())
        .map(|name| {
            let name = name.trim_start_matches('{').trim_end_matches('}');
            format!("vars.{}", name.to_ascii_lowercase())
        })
        .unwrap_or_default()
}

/// How long before expiry `halo check` starts warning about a certificate.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// Loads every file the TLS settings of `cfg` name (certificates, keys, CA bundles, CRLs,
/// OCSP files) as serving would, without serving: errors for what cannot be used, warnings for
/// certificates that expired or expire within 14 days. Registered with
/// [`halo_config::set_file_checker`] by the binary, so `halo check` runs it.
pub fn check_files(
    cfg: &halo_config::http::HttpConfig,
) -> Vec<(halo_config::http::HttpConfigError, halo_config::Severity)> {
    use halo_config::http::HttpConfigError;
    use halo_config::Severity;
    let mut out = Vec::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for (i, server) in cfg.servers.iter().enumerate() {
        if !server.listen.iter().any(|l| l.ssl) {
            continue;
        }
        let tls = &server.tls;
        let provider = Arc::new(provider_for(&tls.protocols, &tls.ciphers, &tls.ecdh_curve));
        for (k, pair) in tls.certificates.iter().enumerate() {
            let at = format!("servers[{i}].tls.certificates[{k}]");
            match load_pair(pair, &provider) {
                Ok((_, not_after)) => {
                    let days = (not_after - now).div_euclid(86_400);
                    let message = if not_after <= now {
                        Some(format!("certificate \"{}\" has expired", pair.certificate))
                    } else if days < EXPIRY_WARNING_DAYS {
                        Some(format!(
                            "certificate \"{}\" expires in {days} day(s)",
                            pair.certificate
                        ))
                    } else {
                        None
                    };
                    if let Some(message) = message {
                        out.push((HttpConfigError { at, message }, Severity::Warning));
                    }
                }
                Err(message) => out.push((HttpConfigError { at, message }, Severity::Error)),
            }
        }
        let at = format!("servers[{i}].tls");
        if let Err(message) = crate::tls_client_auth::client_auth(tls, &provider) {
            out.push((
                HttpConfigError {
                    at: at.clone(),
                    message,
                },
                Severity::Error,
            ));
        }
        if let Some(file) = &tls.stapling_file {
            if let Err(e) = std::fs::metadata(file) {
                out.push((
                    HttpConfigError {
                        at,
                        message: format!("cannot read ssl_stapling_file \"{file}\": {e}"),
                    },
                    Severity::Error,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// ssl_session_timeout: a stamped session is resumable within the timeout, not after.
    #[test]
    fn sessions_expire_after_the_timeout() {
        let fresh = stamped(b"session");
        assert_eq!(unstamped(&fresh, 300).as_deref(), Some(&b"session"[..]));
        let mut old = fresh.clone();
        old[..8].copy_from_slice(&(unix_now() - 301).to_be_bytes());
        assert_eq!(unstamped(&old, 300), None);
        assert_eq!(unstamped(b"short", 300), None);
        let tickets = TimedTickets {
            inner: rustls::crypto::aws_lc_rs::Ticketer::new().unwrap(),
            timeout: 300,
        };
        use rustls::server::ProducesTickets;
        let ticket = tickets.encrypt(b"state").unwrap();
        assert_eq!(tickets.decrypt(&ticket).as_deref(), Some(&b"state"[..]));
        assert_eq!(tickets.lifetime(), 300);
    }
}
