//! `$https` and the `$ssl_*` variables of nginx's `ngx_http_ssl_module`, rendered from what a
//! connection's handshake settled. On a plain connection each is empty, as in nginx.

use std::fmt::Write as _;

use base64::Engine as _;
use sha1::Digest as _;

use crate::tls_accept::TlsInfo;

/// A TLS variable halo knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsVar {
    /// `$https`: `on` on TLS connections.
    Https,
    Protocol,
    Cipher,
    ServerName,
    SessionReused,
    AlpnProtocol,
    ClientVerify,
    ClientSubjectDn,
    ClientIssuerDn,
    ClientSerial,
    ClientFingerprint,
    ClientCert,
    ClientRawCert,
    ClientValidFrom,
    ClientValidUntil,
}

impl TlsVar {
    pub fn from_name(name: &str) -> Option<TlsVar> {
        use TlsVar::*;
        Some(match name {
            "https" => Https,
            "ssl_protocol" => Protocol,
            "ssl_cipher" => Cipher,
            "ssl_server_name" => ServerName,
            "ssl_session_reused" => SessionReused,
            "ssl_alpn_protocol" => AlpnProtocol,
            "ssl_client_verify" => ClientVerify,
            "ssl_client_s_dn" => ClientSubjectDn,
            "ssl_client_i_dn" => ClientIssuerDn,
            "ssl_client_serial" => ClientSerial,
            "ssl_client_fingerprint" => ClientFingerprint,
            "ssl_client_cert" => ClientCert,
            "ssl_client_raw_cert" => ClientRawCert,
            "ssl_client_v_start" => ClientValidFrom,
            "ssl_client_v_end" => ClientValidUntil,
            _ => return None,
        })
    }

    /// Appends the value for a connection (`None`: plain, every value empty).
    pub fn write(self, tls: Option<&TlsInfo>, out: &mut String) {
        let Some(tls) = tls else {
            return;
        };
        match self {
            TlsVar::Https => out.push_str("on"),
            TlsVar::Protocol => out.push_str(tls.protocol),
            TlsVar::Cipher => out.push_str(tls.cipher),
            TlsVar::ServerName => out.push_str(tls.server_name.as_deref().unwrap_or("")),
            TlsVar::SessionReused => out.push(if tls.reused { 'r' } else { '.' }),
            TlsVar::AlpnProtocol => out.push_str(tls.alpn.unwrap_or("")),
            TlsVar::ClientVerify => out.push_str(&tls.client_verify),
            _ => {
                if let Some(leaf) = tls.client_chain.first() {
                    client_cert_var(self, leaf, out);
                }
            }
        }
    }
}

fn client_cert_var(var: TlsVar, der: &[u8], out: &mut String) {
    match var {
        TlsVar::ClientFingerprint => {
            for b in sha1::Sha1::digest(der) {
                let _ = write!(out, "{b:02x}");
            }
            return;
        }
        TlsVar::ClientRawCert | TlsVar::ClientCert => {
            let text = base64::engine::general_purpose::STANDARD.encode(der);
            // $ssl_client_cert is the PEM with a tab before every line but the first.
            let sep = if var == TlsVar::ClientCert {
                "\n\t"
            } else {
                "\n"
            };
            out.push_str("-----BEGIN CERTIFICATE-----");
            for line in text.as_bytes().chunks(64) {
                out.push_str(sep);
                out.push_str(&String::from_utf8_lossy(line));
            }
            out.push_str(sep);
            out.push_str("-----END CERTIFICATE-----");
            if var == TlsVar::ClientRawCert {
                out.push('\n');
            }
            return;
        }
        _ => {}
    }
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return;
    };
    match var {
        TlsVar::ClientSubjectDn => write_dn(cert.subject(), out),
        TlsVar::ClientIssuerDn => write_dn(cert.issuer(), out),
        TlsVar::ClientSerial => {
            out.push_str(&cert.raw_serial_as_string().replace(':', "").to_uppercase())
        }
        TlsVar::ClientValidFrom => write_time(cert.validity().not_before, out),
        TlsVar::ClientValidUntil => write_time(cert.validity().not_after, out),
        _ => {}
    }
}

/// RFC 2253 order (last RDN first), comma separated, as nginx 1.11.6+ writes DNs.
fn write_dn(name: &x509_parser::x509::X509Name<'_>, out: &mut String) {
    let registry = x509_parser::objects::oid_registry();
    let mut first = true;
    for rdn in name.iter_rdn().collect::<Vec<_>>().into_iter().rev() {
        for attr in rdn.iter() {
            if !first {
                out.push(',');
            }
            first = false;
            let key = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                .map(str::to_owned)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            let value = attr.as_str().unwrap_or("");
            out.push_str(&key);
            out.push('=');
            for c in value.chars() {
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
}

/// OpenSSL's `Mon DD HH:MM:SS YYYY GMT`.
fn write_time(t: x509_parser::time::ASN1Time, out: &mut String) {
    let dt = t.to_datetime();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let _ = write!(
        out,
        "{} {:2} {:02}:{:02}:{:02} {} GMT",
        MONTHS[usize::from(u8::from(dt.month())) - 1],
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.year()
    );
}
