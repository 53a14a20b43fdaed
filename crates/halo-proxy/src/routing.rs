//! Choosing the virtual server (`server_name`, `ngx_http_find_virtual_server`) and the location
//! (`ngx_http_core_find_location`) for a request.

use std::collections::HashMap;

use halo_config::http::{Location, MatchKind};
use regex::Regex;

/// The server names of the servers listening on one address, with its default server.
#[derive(Debug)]
pub(crate) struct ServerNames {
    exact: HashMap<String, usize>,
    /// `*.example.com` / `.example.com` stored as the suffix `.example.com`, longest first.
    leading: Vec<(String, usize)>,
    /// `www.example.*` stored as the prefix `www.example.`, longest first.
    trailing: Vec<(String, usize)>,
    regexes: Vec<(Regex, usize)>,
    default: usize,
}

impl ServerNames {
    /// `servers`: (server index, its names), in configuration order; `default`: the server marked
    /// `default_server` or else the first one.
    pub fn new<'a>(
        servers: impl IntoIterator<Item = (usize, &'a [String])>,
        default: usize,
    ) -> Result<Self, String> {
        let mut table = ServerNames {
            exact: HashMap::new(),
            leading: Vec::new(),
            trailing: Vec::new(),
            regexes: Vec::new(),
            default,
        };
        for (index, names) in servers {
            for name in names {
                let lower = name.to_ascii_lowercase();
                if let Some(pattern) = name.strip_prefix('~') {
                    let regex =
                        Regex::new(pattern).map_err(|e| format!("server_name {name:?}: {e}"))?;
                    table.regexes.push((regex, index));
                } else if let Some(suffix) = lower.strip_prefix('*') {
                    table.leading.push((suffix.to_owned(), index));
                } else if let Some(domain) = lower.strip_prefix('.') {
                    // `.example.com` = `example.com` + `*.example.com`.
                    table.exact.entry(domain.to_owned()).or_insert(index);
                    table.leading.push((lower.clone(), index));
                } else if let Some(prefix) = lower.strip_suffix('*') {
                    table.trailing.push((prefix.to_owned(), index));
                } else {
                    // The first server with a name wins (nginx warns "conflicting server name").
                    table.exact.entry(lower).or_insert(index);
                }
            }
        }
        table
            .leading
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        table
            .trailing
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Ok(table)
    }

    /// The default server's index.
    pub fn default_index(&self) -> usize {
        self.default
    }

    /// The server for a `Host` value (port removed, lower-cased by the caller), nginx order:
    /// exact, longest leading wildcard, longest trailing wildcard, first matching regex, default.
    pub fn find(&self, host: &str) -> usize {
        self.find_match(host).0
    }

    /// [`ServerNames::find`], with the regex that chose the server if one did (its captures
    /// become variables).
    pub fn find_match(&self, host: &str) -> (usize, Option<&Regex>) {
        if let Some(&index) = self.exact.get(host) {
            return (index, None);
        }
        if let Some((_, index)) = self
            .leading
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
        {
            return (*index, None);
        }
        if let Some((_, index)) = self
            .trailing
            .iter()
            .find(|(prefix, _)| host.len() > prefix.len() && host.starts_with(prefix.as_str()))
        {
            return (*index, None);
        }
        if !host.is_empty() {
            if let Some((regex, index)) =
                self.regexes.iter().find(|(regex, _)| regex.is_match(host))
            {
                return (*index, Some(regex));
            }
        }
        (self.default, None)
    }
}

/// The locations of one server.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    exact: HashMap<String, usize>,
    /// (prefix, is `^~`, index), longest first.
    prefixes: Vec<(String, bool, usize)>,
    regexes: Vec<(Regex, usize)>,
}

/// Which location matched, and the matched prefix (for proxy_pass URI replacement and alias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocationMatch {
    pub index: usize,
    /// Length of the matched prefix (0 for regex matches).
    pub prefix_len: usize,
}

impl Locations {
    pub fn new(locations: &[Location]) -> Result<Self, String> {
        let mut table = Locations::default();
        for (index, loc) in locations.iter().enumerate() {
            match loc.match_kind {
                MatchKind::Exact => {
                    table.exact.entry(loc.path.clone()).or_insert(index);
                }
                MatchKind::Prefix => table.prefixes.push((loc.path.clone(), false, index)),
                MatchKind::PrefixNoRegex => table.prefixes.push((loc.path.clone(), true, index)),
                MatchKind::Regex | MatchKind::RegexCaseInsensitive => {
                    let pattern = if loc.match_kind == MatchKind::RegexCaseInsensitive {
                        format!("(?i){}", loc.path)
                    } else {
                        loc.path.clone()
                    };
                    let regex = Regex::new(&pattern)
                        .map_err(|e| format!("location {:?}: {e}", loc.path))?;
                    table.regexes.push((regex, index));
                }
                // Reached by name only.
                MatchKind::Named => {}
            }
        }
        table
            .prefixes
            .sort_by_key(|(p, _, _)| std::cmp::Reverse(p.len()));
        Ok(table)
    }

    /// The regex of the location at `index`, if it is a regex location.
    pub fn regex(&self, index: usize) -> Option<&Regex> {
        self.regexes
            .iter()
            .find(|(_, i)| *i == index)
            .map(|(regex, _)| regex)
    }

    /// nginx order: `=` exact ends the search; else the longest prefix is remembered; if it is
    /// `^~` it wins, else regexes are tried in configuration order and the first match wins;
    /// else the remembered prefix.
    pub fn find(&self, uri: &str) -> Option<LocationMatch> {
        if let Some(&index) = self.exact.get(uri) {
            return Some(LocationMatch {
                index,
                prefix_len: uri.len(),
            });
        }
        let longest = self
            .prefixes
            .iter()
            .find(|(prefix, _, _)| uri.starts_with(prefix.as_str()));
        if let Some((prefix, true, index)) = longest {
            return Some(LocationMatch {
                index: *index,
                prefix_len: prefix.len(),
            });
        }
        if let Some((_, index)) = self.regexes.iter().find(|(regex, _)| regex.is_match(uri)) {
            return Some(LocationMatch {
                index: *index,
                prefix_len: 0,
            });
        }
        longest.map(|(prefix, _, index)| LocationMatch {
            index: *index,
            prefix_len: prefix.len(),
        })
    }
}

/// The host part of a `Host` header value, lower-cased, without port or trailing dot.
pub(crate) fn host_without_port(host: &str) -> std::borrow::Cow<'_, str> {
    let host = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn loc(kind: MatchKind, path: &str) -> Location {
        Location {
            match_kind: kind,
            path: path.into(),
            ..Location::default()
        }
    }

    #[test]
    fn location_precedence_follows_nginx_docs_example() {
        // The example of the nginx `location` documentation: A `= /`, B `/`, C `/documents/`,
        // D `^~ /images/`, E `~* \.(gif|jpg|jpeg)$`.
        let table = Locations::new(&[
            loc(MatchKind::Exact, "/"),
            loc(MatchKind::Prefix, "/"),
            loc(MatchKind::Prefix, "/documents/"),
            loc(MatchKind::PrefixNoRegex, "/images/"),
            loc(MatchKind::RegexCaseInsensitive, r"\.(gif|jpg|jpeg)$"),
        ])
        .unwrap();
        let at = |uri| table.find(uri).unwrap().index;
        assert_eq!(at("/"), 0);
        assert_eq!(at("/index.html"), 1);
        assert_eq!(at("/documents/document.html"), 2);
        assert_eq!(at("/images/1.gif"), 3);
        assert_eq!(at("/documents/1.JPG"), 4);
    }

    #[test]
    fn server_names_exact_wildcard_regex_default() {
        let names = [
            vec!["example.com".to_owned()],
            vec!["*.example.com".to_owned()],
            vec!["www.example.*".to_owned()],
            vec![r"~^api\d+\.test$".to_owned()],
            vec![".org.test".to_owned()],
        ];
        let table =
            ServerNames::new(names.iter().enumerate().map(|(i, n)| (i, n.as_slice())), 0).unwrap();
        assert_eq!(table.find("example.com"), 0);
        assert_eq!(table.find("a.example.com"), 1);
        assert_eq!(table.find("www.example.net"), 2);
        assert_eq!(table.find("api7.test"), 3);
        assert_eq!(table.find("org.test"), 4);
        assert_eq!(table.find("x.org.test"), 4);
        assert_eq!(table.find("other"), 0);
        assert_eq!(host_without_port("Example.COM:8080"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
    }
}
