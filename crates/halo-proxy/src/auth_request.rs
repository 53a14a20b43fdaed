//! nginx's auth_request (part of the access phase): a GET subrequest to a local URI, with the
//! request's headers and no body, decides. 2xx allows; 401 refuses with the subrequest's
//! `WWW-Authenticate`; 403 refuses; anything else is an error (500). `auth_request_set`
//! variables are then computed from the subrequest's answer.

use http::{HeaderMap, HeaderValue, StatusCode};

use crate::variables::{push_display, Template, Var, VarSource};

/// A compiled `auth_request` with its `auth_request_set` lines.
#[derive(Debug)]
pub(crate) struct AuthRequestRt {
    /// The subrequest's URI (with `?args` if written).
    pub uri: String,
    /// Variables to set afterwards: (index among the user variables, value).
    pub sets: Vec<(usize, Template)>,
}

impl AuthRequestRt {
    pub fn build(
        uri: &str,
        sets: &[halo_config::http::AuthRequestSet],
        user: &[String],
    ) -> Result<AuthRequestRt, String> {
        let sets = sets
            .iter()
            .map(|s| {
                let name = s.variable.to_ascii_lowercase();
                let index = user
                    .iter()
                    .position(|u| *u == name)
                    .ok_or_else(|| format!("auth_request_set: unknown variable ${name}"))?;
                Ok((index, Template::parse_with(&s.value, user)?))
            })
            .collect::<Result<_, String>>()?;
        Ok(AuthRequestRt {
            uri: uri.to_owned(),
            sets,
        })
    }
}

/// What the subrequest decided.
#[derive(Debug)]
pub(crate) enum AuthAnswer {
    Allow,
    /// 401, with the subrequest's challenge if it sent one.
    Unauthorized(Option<HeaderValue>),
    Forbidden,
    /// Any other status: the request fails with 500.
    Error(StatusCode),
}

impl AuthAnswer {
    pub fn of(status: StatusCode, headers: &HeaderMap) -> AuthAnswer {
        match status.as_u16() {
            200..=299 => AuthAnswer::Allow,
            401 => AuthAnswer::Unauthorized(headers.get(http::header::WWW_AUTHENTICATE).cloned()),
            403 => AuthAnswer::Forbidden,
            _ => AuthAnswer::Error(status),
        }
    }
}

/// The subrequest's answer as variables for `auth_request_set`: `$upstream_http_NAME` and
/// `$upstream_status` from it, everything else from the main request.
pub(crate) struct SubAnswer<'a> {
    pub main: &'a (dyn VarSource + Sync),
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
}

impl VarSource for SubAnswer<'_> {
    fn write_var(&self, var: &Var, out: &mut String) {
        match var {
            Var::UpstreamHttp(name) => {
                let mut first = true;
                for value in self.headers.get_all(name) {
                    if !first {
                        out.push_str(", ");
                    }
                    out.push_str(&String::from_utf8_lossy(value.as_bytes()));
                    first = false;
                }
            }
            Var::UpstreamStatus => push_display(out, self.status.as_u16()),
            other => self.main.write_var(other, out),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            AuthAnswer::of(StatusCode::NO_CONTENT, &h),
            AuthAnswer::Allow
        ));
        assert!(matches!(
            AuthAnswer::of(StatusCode::UNAUTHORIZED, &h),
            AuthAnswer::Unauthorized(None)
        ));
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        assert!(matches!(
            AuthAnswer::of(StatusCode::UNAUTHORIZED, &h),
            AuthAnswer::Unauthorized(Some(_))
        ));
        assert!(matches!(
            AuthAnswer::of(StatusCode::FORBIDDEN, &h),
            AuthAnswer::Forbidden
        ));
        assert!(matches!(
            AuthAnswer::of(StatusCode::FOUND, &h),
            AuthAnswer::Error(_)
        ));
    }

    struct Empty;
    impl VarSource for Empty {
        fn write_var(&self, _: &Var, _: &mut String) {}
    }

    #[test]
    fn sets_read_the_answer() {
        let user = vec!["user".to_owned()];
        let set = halo_config::http::AuthRequestSet {
            variable: "user".into(),
            value: "$upstream_http_x_user:$upstream_status".into(),
        };
        let rt = AuthRequestRt::build("/auth", &[set], &user).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("alice"));
        let src = SubAnswer {
            main: &Empty,
            status: StatusCode::OK,
            headers: &h,
        };
        assert_eq!(rt.sets[0].1.render(&src), "alice:200");
    }
}
