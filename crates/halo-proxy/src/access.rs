//! The access phase (nginx's ACCESS and POST_ACCESS): `allow`/`deny` first, then `auth_basic`,
//! combined by `satisfy`; `limit_except` swaps in other rules for methods it does not list.
//! `internal` (a FIND_CONFIG rule in nginx) is judged here too, before the others.

use std::net::IpAddr;
use std::sync::Arc;

use halo_config::access::{judge, AccessRule, AccessVerdict, LimitExcept, Satisfy};
use halo_config::http::AuthBasic;
use http::{HeaderMap, HeaderValue, Method};

use crate::auth::{AuthBasicRt, AuthOutcome};
use crate::variables::VarSource;

/// Why a request may not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 403: an address rule denies the client.
    Forbidden,
    /// 401 with this `WWW-Authenticate` challenge.
    Unauthorized(HeaderValue),
    /// 500: the password file could not be read.
    Failed,
}

/// What the address rules and the password made of a request, before `auth_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Allowed by a check that applied (with `satisfy any`, enough on its own); the user name
    /// when a password was checked.
    Granted(Option<String>),
    /// No check applied, or (`satisfy all`) every one that applied allowed.
    Passed(Option<String>),
    /// Refused.
    Refused(Refusal),
}

/// Address rules, password file and `satisfy` of one level (a location, its `limit_except`
/// block, or a server for requests no location takes).
#[derive(Debug, Default)]
pub(crate) struct AccessRt {
    rules: Vec<AccessRule>,
    satisfy: Satisfy,
    auth: Option<Arc<AuthBasicRt>>,
}

impl AccessRt {
    pub fn build(
        rules: &[AccessRule],
        satisfy: Satisfy,
        auth_basic: Option<&AuthBasic>,
        user_vars: &[String],
    ) -> Result<AccessRt, String> {
        let auth = match auth_basic {
            Some(AuthBasic {
                realm,
                user_file: Some(path),
                conf_dir,
            }) => Some(Arc::new(AuthBasicRt::build(
                realm,
                path,
                conf_dir.as_deref(),
                user_vars,
            )?)),
            _ => None,
        };
        Ok(AccessRt {
            rules: rules.to_vec(),
            satisfy,
            auth,
        })
    }

    /// Nothing to check.
    pub fn is_open(&self) -> bool {
        self.rules.is_empty() && self.auth.is_none()
    }

    /// `satisfy` of this level.
    pub fn satisfy(&self) -> Satisfy {
        self.satisfy
    }

    /// nginx's order: the address rules, then the password. With `satisfy all` the first
    /// refusal ends the request; with `satisfy any` the first check that allows grants it
    /// (and `auth_request` is then skipped), and when none does the remembered refusal is
    /// given (401 before 403). Checks that do not apply (no rule names the client, no password
    /// file) allow nothing and refuse nothing. The user name comes with a valid password.
    pub fn judge(&self, client: IpAddr, vars: &dyn VarSource, headers: &HeaderMap) -> Verdict {
        let any = self.satisfy == Satisfy::Any;
        let mut refused = match judge(&self.rules, client) {
            AccessVerdict::Allowed if any => return Verdict::Granted(None),
            AccessVerdict::Denied if !any => return Verdict::Refused(Refusal::Forbidden),
            AccessVerdict::Denied => Some(Refusal::Forbidden),
            AccessVerdict::Allowed | AccessVerdict::NoMatch => None,
        };
        let mut user = None;
        if let Some(auth) = &self.auth {
            match auth.check(vars, headers) {
                AuthOutcome::Off => {}
                AuthOutcome::User(name) if any => return Verdict::Granted(Some(name)),
                AuthOutcome::User(name) => user = Some(name),
                AuthOutcome::Challenge(c) if !any => {
                    return Verdict::Refused(Refusal::Unauthorized(c))
                }
                AuthOutcome::Challenge(c) => refused = Some(Refusal::Unauthorized(c)),
                // `satisfy any`: a 401 remembered before stays.
                AuthOutcome::Forbidden => {
                    return Verdict::Refused(refused.unwrap_or(Refusal::Forbidden))
                }
                AuthOutcome::Failed => return Verdict::Refused(Refusal::Failed),
            }
        }
        match refused {
            Some(r) => Verdict::Refused(r),
            None => Verdict::Passed(user),
        }
    }

    /// [`AccessRt::judge`] as allowed (with the user name) or refused.
    pub fn check(
        &self,
        client: IpAddr,
        vars: &dyn VarSource,
        headers: &HeaderMap,
    ) -> Result<Option<String>, Refusal> {
        match self.judge(client, vars, headers) {
            Verdict::Granted(user) | Verdict::Passed(user) => Ok(user),
            Verdict::Refused(refusal) => Err(refusal),
        }
    }
}

/// The access rules of a location.
#[derive(Debug, Default)]
pub(crate) struct LocationAccess {
    pub main: AccessRt,
    /// `limit_except`: the listed methods, and the rules for the others.
    pub except: Option<(Vec<String>, AccessRt)>,
    /// `internal`.
    pub internal: bool,
}

impl LocationAccess {
    pub fn build(
        rules: &[AccessRule],
        satisfy: Satisfy,
        auth_basic: Option<&AuthBasic>,
        limit_except: Option<&LimitExcept>,
        internal: bool,
        user_vars: &[String],
    ) -> Result<LocationAccess, String> {
        let except = match limit_except {
            Some(le) => Some((
                le.methods.clone(),
                AccessRt::build(&le.access, le.satisfy, le.auth_basic.as_ref(), user_vars)?,
            )),
            None => None,
        };
        Ok(LocationAccess {
            main: AccessRt::build(rules, satisfy, auth_basic, user_vars)?,
            except,
            internal,
        })
    }

    /// Nothing to check for any request.
    pub fn is_open(&self) -> bool {
        !self.internal
            && self.main.is_open()
            && self.except.as_ref().is_none_or(|(_, e)| e.is_open())
    }

    /// The rules that judge `method` (the `limit_except` block's for unlisted methods).
    pub fn rules_for(&self, method: &Method) -> &AccessRt {
        match &self.except {
            Some((methods, other)) if !lists(methods, method) => other,
            _ => &self.main,
        }
    }
}

/// Whether `limit_except`'s list names `method` (GET names HEAD too).
fn lists(methods: &[String], method: &Method) -> bool {
    let m = method.as_str();
    methods
        .iter()
        .any(|l| l == m || (l == "GET" && m == "HEAD"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use halo_config::access::AddrMatch;

    fn rule(allow: bool, text: &str) -> AccessRule {
        let m = AddrMatch::parse(text).unwrap().0;
        if allow {
            AccessRule::Allow(m)
        } else {
            AccessRule::Deny(m)
        }
    }

    struct NoVars;
    impl VarSource for NoVars {
        fn write_var(&self, _var: &crate::variables::Var, _out: &mut String) {}
    }

    fn with_auth(rules: Vec<AccessRule>, satisfy: Satisfy) -> AccessRt {
        let path = std::env::temp_dir().join(format!("halo-access-{}", std::process::id()));
        std::fs::write(&path, "alice:{PLAIN}secret\n").unwrap();
        let auth = AuthBasic {
            realm: "r".into(),
            user_file: Some(path.to_string_lossy().into_owned()),
            conf_dir: None,
        };
        AccessRt::build(&rules, satisfy, Some(&auth), &[]).unwrap()
    }

    fn creds(good: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        // alice:secret / alice:wrong
        let v = if good {
            "Basic YWxpY2U6c2VjcmV0"
        } else {
            "Basic YWxpY2U6d3Jvbmc="
        };
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static(v));
        h
    }

    const INSIDE: &str = "198.18.0.5";
    const OUTSIDE: &str = "198.19.0.5";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn satisfy_all_needs_both() {
        let a = with_auth(
            vec![rule(true, "198.18.0.0/24"), rule(false, "all")],
            Satisfy::All,
        );
        assert_eq!(
            a.check(ip(INSIDE), &NoVars, &creds(true)),
            Ok(Some("alice".into()))
        );
        assert!(matches!(
            a.check(ip(INSIDE), &NoVars, &creds(false)),
            Err(Refusal::Unauthorized(_))
        ));
        assert_eq!(
            a.check(ip(OUTSIDE), &NoVars, &creds(true)),
            Err(Refusal::Forbidden)
        );
    }

    #[test]
    fn satisfy_any_needs_one_and_prefers_401() {
        let a = with_auth(
            vec![rule(true, "198.18.0.0/24"), rule(false, "all")],
            Satisfy::Any,
        );
        // An allowed address skips the password.
        assert_eq!(a.check(ip(INSIDE), &NoVars, &HeaderMap::new()), Ok(None));
        assert_eq!(
            a.check(ip(OUTSIDE), &NoVars, &creds(true)),
            Ok(Some("alice".into()))
        );
        assert!(matches!(
            a.check(ip(OUTSIDE), &NoVars, &creds(false)),
            Err(Refusal::Unauthorized(_))
        ));
        // Without a password file, the address rule's 403 stands.
        let b = AccessRt {
            rules: vec![rule(false, "all")],
            satisfy: Satisfy::Any,
            auth: None,
        };
        assert_eq!(
            b.check(ip(INSIDE), &NoVars, &HeaderMap::new()),
            Err(Refusal::Forbidden)
        );
        // No rule names the client and no password: allowed.
        let c = AccessRt {
            rules: vec![rule(false, "198.20.0.0/16")],
            satisfy: Satisfy::Any,
            auth: None,
        };
        assert_eq!(c.check(ip(INSIDE), &NoVars, &HeaderMap::new()), Ok(None));
    }

    #[test]
    fn limit_except_judges_unlisted_methods_and_internal_hides() {
        let la = LocationAccess {
            main: AccessRt::default(),
            except: Some((
                vec!["GET".into()],
                AccessRt {
                    rules: vec![rule(false, "all")],
                    satisfy: Satisfy::All,
                    auth: None,
                },
            )),
            internal: false,
        };
        let h = HeaderMap::new();
        let check = |m: Method| la.rules_for(&m).check(ip(INSIDE), &NoVars, &h);
        assert_eq!(check(Method::GET), Ok(None));
        assert_eq!(check(Method::HEAD), Ok(None));
        assert_eq!(check(Method::POST), Err(Refusal::Forbidden));
        let hidden = LocationAccess {
            internal: true,
            ..LocationAccess::default()
        };
        assert!(!hidden.is_open());
    }
}
