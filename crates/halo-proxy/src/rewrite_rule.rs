//! The `FROM TO` rules of nginx's `proxy_redirect`, `proxy_cookie_domain` and
//! `proxy_cookie_path` (`ngx_http_proxy_rewrite_*_handler`): FROM is a text with variables
//! (matched as a prefix, or as a whole cookie domain) or a `~`/`~*` regex whose captures TO
//! may use.

use regex::Regex;

use crate::variables::{Template, Var, VarSource};

/// What a rule's FROM is.
#[derive(Debug)]
pub(crate) enum RuleFrom {
    /// A text without variables.
    Text(String),
    /// A text with variables, rendered per request.
    Template(Template),
    /// `~regex` or `~*regex`: matched anywhere in the value, which it then replaces whole.
    Regex(Regex),
}

/// One `FROM TO` rule.
#[derive(Debug)]
pub(crate) struct RewriteRule {
    pub from: RuleFrom,
    pub to: Template,
}

/// How a text FROM must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextMatch {
    /// A prefix, case-sensitive (`proxy_redirect`, `proxy_cookie_path`); the prefix is
    /// replaced.
    Prefix,
    /// The whole value, case-insensitive, after a leading `.` that is kept
    /// (`proxy_cookie_domain`).
    Domain,
}

impl RewriteRule {
    /// Compiles `from` / `to`; `domain` strips a leading `.` of a text FROM and TO as nginx's
    /// `proxy_cookie_domain` does.
    pub fn new(from: &str, to: &str, user: &[String], domain: bool) -> Result<Self, String> {
        let from = if let Some(re) = from.strip_prefix("~*") {
            RuleFrom::Regex(
                regex::RegexBuilder::new(re)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| format!("invalid regex {re:?}: {e}"))?,
            )
        } else if let Some(re) = from.strip_prefix('~') {
            RuleFrom::Regex(
                crate::pcre::compile(re).map_err(|e| format!("invalid regex {re:?}: {e}"))?,
            )
        } else {
            let text = if domain {
                from.strip_prefix('.').unwrap_or(from)
            } else {
                from
            };
            let template = Template::parse_with(text, user)?;
            match template.as_constant() {
                Some(constant) => RuleFrom::Text(constant.to_owned()),
                None => RuleFrom::Template(template),
            }
        };
        let to = if domain && !matches!(from, RuleFrom::Regex(_)) {
            to.strip_prefix('.').unwrap_or(to)
        } else {
            to
        };
        Ok(RewriteRule {
            from,
            to: Template::parse_with(to, user)?,
        })
    }

    /// `value` rewritten by this rule, `None` when it does not match.
    pub fn apply(&self, value: &str, how: TextMatch, source: &dyn VarSource) -> Option<String> {
        let rendered;
        let pattern = match &self.from {
            RuleFrom::Regex(re) => {
                let caps = re.captures(value)?;
                let mut out = String::new();
                self.to.render_into(
                    &WithCaptures {
                        inner: source,
                        caps: &caps,
                    },
                    &mut out,
                );
                return Some(out);
            }
            RuleFrom::Text(text) => text.as_str(),
            RuleFrom::Template(template) => {
                rendered = template.render(source);
                rendered.as_str()
            }
        };
        match how {
            TextMatch::Prefix => {
                let rest = value.strip_prefix(pattern)?;
                let mut out = self.to.render(source);
                out.push_str(rest);
                Some(out)
            }
            TextMatch::Domain => {
                let (dot, name) = match value.strip_prefix('.') {
                    Some(name) => (".", name),
                    None => ("", value),
                };
                if !name.eq_ignore_ascii_case(pattern) {
                    return None;
                }
                let mut out = dot.to_owned();
                self.to.render_into(source, &mut out);
                Some(out)
            }
        }
    }
}

/// The first rule of `rules` that matches `value`, applied.
pub(crate) fn first_match(
    rules: &[RewriteRule],
    value: &str,
    how: TextMatch,
    source: &dyn VarSource,
) -> Option<String> {
    rules.iter().find_map(|r| r.apply(value, how, source))
}

/// The request's variables, with `$1`..`$9` from the rule's regex.
struct WithCaptures<'a> {
    inner: &'a dyn VarSource,
    caps: &'a regex::Captures<'a>,
}

impl VarSource for WithCaptures<'_> {
    fn write_var(&self, var: &Var, out: &mut String) {
        match var {
            Var::Capture(n) => {
                if let Some(m) = self.caps.get(*n) {
                    out.push_str(m.as_str());
                }
            }
            other => self.inner.write_var(other, out),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Vars;
    impl VarSource for Vars {
        fn write_var(&self, var: &Var, out: &mut String) {
            if *var == Var::Host {
                out.push_str("front.example");
            }
        }
    }

    fn rule(from: &str, to: &str, domain: bool) -> RewriteRule {
        RewriteRule::new(from, to, &[], domain).unwrap()
    }

    #[test]
    fn prefix_rules_replace_the_prefix_and_render_variables_on_both_sides() {
        let r = rule("http://$host/app/", "/", false);
        assert_eq!(
            r.apply("http://front.example/app/x?y", TextMatch::Prefix, &Vars)
                .as_deref(),
            Some("/x?y")
        );
        assert_eq!(
            r.apply("http://other/app/x", TextMatch::Prefix, &Vars),
            None
        );
    }

    #[test]
    fn regex_rules_replace_the_whole_value_with_captures() {
        // ngx_http_proxy_rewrite_regex_handler: the match may be anywhere, all is replaced.
        let r = rule("~*/API/(\\w+)", "/v2/$1", false);
        assert_eq!(
            r.apply("http://b/api/users/7", TextMatch::Prefix, &Vars)
                .as_deref(),
            Some("/v2/users")
        );
        assert_eq!(
            rule("~/API/", "/", false).apply("/api/", TextMatch::Prefix, &Vars),
            None
        );
    }

    #[test]
    fn domain_rules_match_whole_names_ignoring_case_and_keep_a_leading_dot() {
        // ngx_http_proxy_rewrite_domain_handler; leading dots of FROM and TO are dropped at
        // configuration time (ngx_http_proxy_cookie_domain).
        let r = rule(".Backend.Local", ".$host", true);
        assert_eq!(
            r.apply(".backend.local", TextMatch::Domain, &Vars)
                .as_deref(),
            Some(".front.example")
        );
        assert_eq!(
            r.apply("backend.local", TextMatch::Domain, &Vars)
                .as_deref(),
            Some("front.example")
        );
        assert_eq!(r.apply("x.backend.local", TextMatch::Domain, &Vars), None);
    }
}
