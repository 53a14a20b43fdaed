//! nginx's `proxy_cookie_domain` and `proxy_cookie_path`: the `Domain` and `Path` attributes of
//! an upstream's `Set-Cookie` rewritten (`ngx_http_proxy_rewrite_cookie`).

use crate::rewrite_rule::{first_match, RewriteRule, TextMatch};
use crate::variables::VarSource;

/// A `Set-Cookie` value with its Domain and Path rewritten by the first matching rule of
/// each list; `None` when nothing changed (the header then stays byte for byte).
///
/// As nginx: the value is split at `;` into `name[=value]` attributes with spaces around
/// them trimmed; the first must have a `=`; every `Domain`/`Path` attribute (any case) with a
/// value is rewritten; a changed header is rebuilt with `; ` between attributes.
pub(crate) fn rewrite_set_cookie(
    value: &str,
    domains: &[RewriteRule],
    paths: &[RewriteRule],
    source: &dyn VarSource,
) -> Option<String> {
    let mut attrs: Vec<(&str, Option<std::borrow::Cow<'_, str>>)> = value
        .split(';')
        .map(|attr| {
            let attr = attr.trim_start_matches(' ');
            match attr.split_once('=') {
                Some((key, val)) => (
                    key.trim_end_matches(' '),
                    Some(val.trim_matches(' ').into()),
                ),
                None => (attr.trim_end_matches(' '), None),
            }
        })
        .collect();
    if attrs.first().is_none_or(|(_, v)| v.is_none()) {
        return None;
    }
    let mut changed = false;
    for (key, val) in attrs.iter_mut().skip(1) {
        let Some(current) = val.as_ref() else {
            continue;
        };
        let rewritten = if key.eq_ignore_ascii_case("domain") {
            first_match(domains, current, TextMatch::Domain, source)
        } else if key.eq_ignore_ascii_case("path") {
            first_match(paths, current, TextMatch::Prefix, source)
        } else {
            None
        };
        if let Some(new) = rewritten {
            *val = Some(new.into());
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 16);
    for (i, (key, val)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(key);
        if let Some(val) = val {
            out.push('=');
            out.push_str(val);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::variables::Var;

    struct NoVars;
    impl VarSource for NoVars {
        fn write_var(&self, _: &Var, _: &mut String) {}
    }

    fn rules(list: &[(&str, &str)], domain: bool) -> Vec<RewriteRule> {
        list.iter()
            .map(|(f, t)| RewriteRule::new(f, t, &[], domain).unwrap())
            .collect()
    }

    #[test]
    fn domain_and_path_are_rewritten_and_the_header_rebuilt_with_semicolon_space() {
        let d = rules(&[("backend.local", "example.com")], true);
        let p = rules(&[("/app/", "/")], false);
        assert_eq!(
            rewrite_set_cookie(
                "sid=1;path=/app/x;  Domain=.BACKEND.local ;HttpOnly",
                &d,
                &p,
                &NoVars
            )
            .as_deref(),
            Some("sid=1; path=/x; Domain=.example.com; HttpOnly")
        );
    }

    #[test]
    fn unchanged_cookies_and_cookies_without_a_value_stay_as_they_are() {
        let d = rules(&[("backend.local", "example.com")], true);
        assert_eq!(
            rewrite_set_cookie("a=b;domain=other", &d, &[], &NoVars),
            None
        );
        assert_eq!(
            rewrite_set_cookie("flag; Domain=backend.local", &d, &[], &NoVars),
            None
        );
    }

    #[test]
    fn regex_rules_use_their_captures() {
        let d = rules(&[("~^(\\w+)\\.backend\\.local$", "$1.example.com")], true);
        assert_eq!(
            rewrite_set_cookie("a=b; Domain=eu.backend.local", &d, &[], &NoVars).as_deref(),
            Some("a=b; Domain=eu.example.com")
        );
    }
}
