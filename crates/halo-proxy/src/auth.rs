//! `auth_basic` with an htpasswd file (`ngx_http_auth_basic_module.c`): `user:hash` lines,
//! `#` comments; a missing or wrong `Authorization: Basic` answers 401 with
//! `WWW-Authenticate: Basic realm="..."`.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};

use crate::variables::{Template, VarSource};

/// What `auth_basic` made of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    /// The realm is `off` (by its variables): no password asked.
    Off,
    /// Valid credentials of this user.
    User(String),
    /// 401 with this `WWW-Authenticate` challenge.
    Challenge(HeaderValue),
    /// 403: the password file does not exist (nginx's `ENOENT`).
    Forbidden,
    /// 500: the password file could not be read.
    Failed,
}

/// `auth_basic` + `auth_basic_user_file` of one level: both may hold variables, and the
/// file is read when first needed and again whenever its modification time, size or inode
/// changes, so an edited file applies to the next request, as nginx (which reads it on every
/// request) does.
#[derive(Debug)]
pub(crate) struct AuthBasicRt {
    realm: Template,
    file: Template,
    /// Where a relative file name made by variables is looked up.
    conf_dir: Option<String>,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    stamp: (i64, i64, u64, u64),
    file: Arc<Htpasswd>,
}

/// Most files kept by one `auth_basic_user_file` with variables.
const CACHE_LIMIT: usize = 64;

impl AuthBasicRt {
    pub fn build(
        realm: &str,
        file: &str,
        conf_dir: Option<&str>,
        user_vars: &[String],
    ) -> Result<AuthBasicRt, String> {
        Ok(AuthBasicRt {
            realm: Template::parse_with(realm, user_vars)
                .map_err(|e| format!("auth_basic: {e}"))?,
            file: Template::parse_with(file, user_vars)
                .map_err(|e| format!("auth_basic_user_file: {e}"))?,
            conf_dir: conf_dir.map(str::to_owned),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// nginx's order: the realm (`off` = no check), then the `Authorization` header (none or
    /// malformed: 401), then the file (missing: 403, unreadable: 500), then the user and
    /// password (unknown or wrong: 401).
    pub fn check(&self, vars: &dyn VarSource, headers: &HeaderMap) -> AuthOutcome {
        let realm = self.realm.render(vars);
        if realm == "off" {
            return AuthOutcome::Off;
        }
        let challenge = || {
            HeaderValue::from_str(&format!("Basic realm=\"{}\"", realm.replace('"', "\\\"")))
                .map_or(AuthOutcome::Failed, AuthOutcome::Challenge)
        };
        let Some((user, password)) = credentials(headers) else {
            return challenge();
        };
        let mut path = self.file.render(vars);
        if let (Some(dir), false) = (&self.conf_dir, path.starts_with('/')) {
            path = format!("{}/{path}", dir.trim_end_matches('/'));
        }
        let file = match self.load(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return AuthOutcome::Forbidden,
            Err(_) => return AuthOutcome::Failed,
        };
        match file.verify_user(&user, &password) {
            true => AuthOutcome::User(user),
            false => challenge(),
        }
    }

    /// The parsed file at `path`, from the cache while it is unchanged.
    fn load(&self, path: &str) -> std::io::Result<Arc<Htpasswd>> {
        let meta = std::fs::metadata(path)?;
        let stamp = (meta.mtime(), meta.mtime_nsec(), meta.len(), meta.ino());
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache.get(path).filter(|c| c.stamp == stamp) {
                return Ok(hit.file.clone());
            }
        }
        let file = Arc::new(Htpasswd::load(path)?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(
                path.to_owned(),
                Cached {
                    stamp,
                    file: file.clone(),
                },
            );
        }
        Ok(file)
    }
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
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
    Some((user.to_owned(), password.to_owned()))
}

/// A loaded htpasswd file.
#[derive(Debug, Default)]
pub(crate) struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    /// Reads the file.
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
    #[cfg(test)]
    pub fn check(&self, headers: &HeaderMap) -> Option<String> {
        let (user, password) = credentials(headers)?;
        self.verify_user(&user, &password).then_some(user)
    }

    /// Whether `user` is in the file with this password.
    pub fn verify_user(&self, user: &str, password: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|hash| verify(password, hash))
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
    if let Some(encoded) = hash.strip_prefix("{SSHA}") {
        // base64(SHA-1(password + salt) + salt), as nginx's `ngx_crypt_ssha`.
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        let Some((digest, salt)) = decoded.split_at_checked(20) else {
            return false;
        };
        let mut salted = password.as_bytes().to_vec();
        salted.extend_from_slice(salt);
        return constant_time_eq(&crate::auth_hashes::sha1(&salted), digest);
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

    struct Args(&'static str);
    impl VarSource for Args {
        fn write_var(&self, _var: &crate::variables::Var, out: &mut String) {
            out.push_str(self.0);
        }
    }

    /// nginx reads the file on every request: an edit applies to the next one, a missing
    /// file is 403 (once credentials are sent), a relative name made by variables is looked
    /// up in the conf directory, and a realm that evaluates to `off` turns the check off.
    #[test]
    fn file_edits_apply_at_once_and_names_take_variables() {
        let dir = std::env::temp_dir().join(format!("halo-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users");
        std::fs::write(&path, "alice:{PLAIN}one\n").unwrap();
        let conf_dir = dir.to_string_lossy().into_owned();
        let rt = AuthBasicRt::build("r", "$arg_f", Some(&conf_dir), &[]).unwrap();
        let vars = Args("users");
        assert_eq!(
            rt.check(&vars, &header("alice:one")),
            AuthOutcome::User("alice".into())
        );
        // Same second, other size: noticed.
        std::fs::write(&path, "alice:{PLAIN}second\n").unwrap();
        assert!(matches!(
            rt.check(&vars, &header("alice:one")),
            AuthOutcome::Challenge(_)
        ));
        assert_eq!(
            rt.check(&vars, &header("alice:second")),
            AuthOutcome::User("alice".into())
        );
        assert!(matches!(
            rt.check(&vars, &HeaderMap::new()),
            AuthOutcome::Challenge(_)
        ));
        assert_eq!(
            rt.check(&Args("missing"), &header("alice:second")),
            AuthOutcome::Forbidden
        );
        let off = AuthBasicRt::build("$arg_r", "users", None, &[]).unwrap();
        assert_eq!(off.check(&Args("off"), &HeaderMap::new()), AuthOutcome::Off);
        std::fs::remove_dir_all(&dir).unwrap();
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
        // `{SSHA}`: nginx-tests' auth_basic.t entry for "password" with salt "salt".
        let ssha = Htpasswd::parse("ssha:{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0\n");
        assert_eq!(ssha.check(&header("ssha:password")), Some("ssha".into()));
        assert_eq!(ssha.check(&header("ssha:wrong")), None);
        assert_eq!(file.check(&HeaderMap::new()), None);
    }
}
