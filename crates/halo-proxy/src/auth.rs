//! `auth_basic` with an htpasswd file (`ngx_http_auth_basic_module.c`): `user:hash` lines,
//! `#` comments; a missing or wrong `Authorization: Basic` answers 401 with
//! `WWW-Authenticate: Basic realm="..."`.

use std::collections::HashMap;

use base64::Engine as _;
use http::HeaderMap;

/// A loaded htpasswd file.
#[derive(Debug, Default)]
pub(crate) struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    /// Reads the file (at configuration time).
    pub fn load(path: &str) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    pub fn parse(text: &str) -> Self {
        let users = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(user, hash)| {
                (
                    user.to_owned(),
                    hash.split(':').next().unwrap_or(hash).to_owned(),
                )
            })
            .collect();
        Htpasswd { users }
    }

    /// The user name when `headers` carry valid credentials.
    pub fn check(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let hash = self.users.get(user)?;
        verify(password, hash).then(|| user.to_owned())
    }
}

/// Checks `password` against an htpasswd hash. Supported: `{PLAIN}`, `{SHA}` (base64 SHA-1),
/// and anything `pwhash` knows (`$2y$`/`$2b$` bcrypt, `$1$` md5-crypt, `$5$`/`$6$` sha-crypt,
/// DES crypt); `$apr1$` (Apache MD5) is handled by our own md5-crypt variant.
fn verify(password: &str, hash: &str) -> bool {
    if let Some(plain) = hash.strip_prefix("{PLAIN}") {
        return constant_time_eq(plain.as_bytes(), password.as_bytes());
    }
    if let Some(expected) = hash.strip_prefix("{SHA}") {
        let digest = crate::auth_hashes::sha1(password.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
        return constant_time_eq(encoded.as_bytes(), expected.as_bytes());
    }
    if hash.starts_with("$apr1$") {
        return crate::auth_hashes::apr1_verify(password, hash);
    }
    pwhash::unix::verify(password, hash)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(user_pass: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        );
        headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn plain_sha_and_apr1_entries() {
        // `htpasswd -bs` for "secret" and `openssl passwd -apr1 -salt abcdefgh secret`.
        let file = Htpasswd::parse(
            "# comment\nplain:{PLAIN}secret\nsha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\napr:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\nmd5:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1\n",
        );
        assert_eq!(file.check(&header("plain:secret")), Some("plain".into()));
        assert_eq!(file.check(&header("plain:wrong")), None);
        assert_eq!(file.check(&header("sha:secret")), Some("sha".into()));
        assert_eq!(file.check(&header("apr:secret")), Some("apr".into()));
        assert_eq!(file.check(&header("apr:Secret")), None);
        assert_eq!(file.check(&header("md5:secret")), Some("md5".into()));
        assert_eq!(file.check(&header("nobody:secret")), None);
        assert_eq!(file.check(&HeaderMap::new()), None);
    }
}
