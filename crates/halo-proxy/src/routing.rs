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
                    let regex = crate::pcre::compile(pattern)
                        .map_err(|e| format!("server_name {name:?}: {e}"))?;
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

/// The locations of one server, as nginx's tree: each level has its exact, prefix and regex
/// locations, and a location may have a level of its own (nested locations). Indices are the
/// depth-first order of [`Location::all`].
#[derive(Debug, Default)]
pub(crate) struct Locations {
    level: Level,
    /// The regex of each regex location, by index.
    regex_of: HashMap<usize, Regex>,
}

#[derive(Debug, Default)]
struct Level {
    exact: HashMap<String, usize>,
    /// (prefix, is `^~`, index), longest first.
    prefixes: Vec<(String, bool, usize)>,
    regexes: Vec<(Regex, usize)>,
    /// The levels nested in this level's locations, by index.
    nested: HashMap<usize, Level>,
}

/// Which location matched, and the matched prefix (for proxy_pass URI replacement and alias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocationMatch {
    pub index: usize,
    /// Length of the matched prefix (0 for regex matches).
    pub prefix_len: usize,
}

/// How a level's search ended (nginx's `ngx_http_core_find_location` return codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// An exact or regex match: the search is over.
    Final,
    /// The longest prefix: regexes may still take the request.
    Prefix,
    /// Nothing at this level.
    Nothing,
}

impl Locations {
    pub fn new(locations: &[Location]) -> Result<Self, String> {
        let mut regex_of = HashMap::new();
        let mut next = 0;
        let level = Level::build(locations, &mut next, &mut regex_of)?;
        Ok(Locations { level, regex_of })
    }

    /// The regex of the location at `index`, if it is a regex location.
    pub fn regex(&self, index: usize) -> Option<&Regex> {
        self.regex_of.get(&index)
    }

    /// nginx's order at each level: `=` exact ends the search; else the longest prefix is
    /// remembered and its nested locations are searched (an exact or regex match there ends
    /// the search); then, unless that prefix is `^~`, this level's regexes in configuration
    /// order (the first that matches wins, with its own nested locations searched); else the
    /// remembered prefix.
    pub fn find(&self, uri: &str) -> Option<LocationMatch> {
        let mut found = None;
        self.level.find(uri, &mut found);
        found
    }
}

impl Level {
    fn build(
        locations: &[Location],
        next: &mut usize,
        regex_of: &mut HashMap<usize, Regex>,
    ) -> Result<Level, String> {
        let mut level = Level::default();
        for loc in locations {
            let index = *next;
            *next += 1;
            match loc.match_kind {
                MatchKind::Exact => {
                    level.exact.entry(loc.path.clone()).or_insert(index);
                }
                MatchKind::Prefix => level.prefixes.push((loc.path.clone(), false, index)),
                MatchKind::PrefixNoRegex => level.prefixes.push((loc.path.clone(), true, index)),
                MatchKind::Regex | MatchKind::RegexCaseInsensitive => {
                    let pattern = if loc.match_kind == MatchKind::RegexCaseInsensitive {
                        format!("(?i){}", loc.path)
                    } else {
                        loc.path.clone()
                    };
                    let regex = crate::pcre::compile(&pattern)
                        .map_err(|e| format!("location {:?}: {e}", loc.path))?;
                    regex_of.insert(index, regex.clone());
                    level.regexes.push((regex, index));
                }
                // Reached by name only.
                MatchKind::Named => {}
            }
            if !loc.locations.is_empty() {
                let nested = Level::build(&loc.locations, next, regex_of)?;
                level.nested.insert(index, nested);
            }
        }
        level
            .prefixes
            .sort_by_key(|(p, _, _)| std::cmp::Reverse(p.len()));
        Ok(level)
    }

    fn find(&self, uri: &str, found: &mut Option<LocationMatch>) -> Found {
        if let Some(&index) = self.exact.get(uri) {
            *found = Some(LocationMatch {
                index,
                prefix_len: uri.len(),
            });
            return Found::Final;
        }
        let mut result = Found::Nothing;
        let mut no_regex = false;
        if let Some((prefix, nr, index)) = self
            .prefixes
            .iter()
            .find(|(prefix, _, _)| uri.starts_with(prefix.as_str()))
        {
            *found = Some(LocationMatch {
                index: *index,
                prefix_len: prefix.len(),
            });
            no_regex = *nr;
            result = Found::Prefix;
            if let Some(nested) = self.nested.get(index) {
                match nested.find(uri, found) {
                    Found::Final => return Found::Final,
                    // nginx keeps "prefix found" (NGX_AGAIN) when the nested level had a prefix
                    // or nothing: this level's regexes come next either way.
                    Found::Prefix | Found::Nothing => {}
                }
            }
        }
        if !no_regex {
            if let Some((_, index)) = self.regexes.iter().find(|(regex, _)| regex.is_match(uri)) {
                *found = Some(LocationMatch {
                    index: *index,
                    prefix_len: 0,
                });
                if let Some(nested) = self.nested.get(index) {
                    nested.find(uri, found);
                }
                return Found::Final;
            }
        }
        result
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
