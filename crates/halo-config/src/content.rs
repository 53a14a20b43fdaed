//! Content settings of a location that nginx's core and autoindex modules read: `types { }`,
//! `default_type` and `autoindex*`.

use serde::{Deserialize, Serialize};

/// nginx `autoindex on` with its `autoindex_*` settings: a directory URI (ending in `/`)
/// without an index file is answered with a listing of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoindex {
    /// `autoindex_format` (html).
    #[serde(default)]
    pub format: AutoindexFormat,
    /// `autoindex_exact_size` (on): sizes in bytes; off = rounded to K, M or G (html only).
    #[serde(default = "default_true")]
    pub exact_size: bool,
    /// `autoindex_localtime` (off): dates in local time rather than GMT (html and xml).
    #[serde(default)]
    pub localtime: bool,
}

impl Default for Autoindex {
    fn default() -> Self {
        Self {
            format: AutoindexFormat::Html,
            exact_size: true,
            localtime: false,
        }
    }
}

/// `autoindex_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoindexFormat {
    /// An HTML page with a `<pre>` table (nginx's default).
    #[default]
    Html,
    /// A JSON array of `{ "name", "type", "mtime", "size" }`.
    Json,
    /// JSON wrapped in `CALLBACK(...);` when the request has a `callback` argument.
    Jsonp,
    /// An XML `<list>` document.
    Xml,
}

/// nginx `if_modified_since`: how If-Modified-Since is compared with a file's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IfModifiedSince {
    /// Never "not modified" by date.
    Off,
    /// Only the very same second (nginx's default).
    #[default]
    Exact,
    /// The file's time is not later than the date.
    Before,
}

impl IfModifiedSince {
    /// Whether a file of `mtime` counts as modified for If-Modified-Since `since` (`None` =
    /// unparsable), as nginx's `ngx_http_test_if_modified`.
    pub fn modified(self, since: Option<i64>, mtime: i64) -> bool {
        let since = since.unwrap_or(-1);
        match self {
            IfModifiedSince::Off => true,
            _ if since == mtime => false,
            IfModifiedSince::Exact => true,
            IfModifiedSince::Before => since < mtime,
        }
    }
}

fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nginx's `ngx_http_test_if_modified`: the same second is never modified (except with
    /// `off`), `before` also takes later dates, an unparsable date is -1.
    #[test]
    fn if_modified_since_modes() {
        use IfModifiedSince::*;
        assert!(!Exact.modified(Some(100), 100));
        assert!(Exact.modified(Some(101), 100));
        assert!(!Before.modified(Some(101), 100));
        assert!(Before.modified(Some(99), 100));
        assert!(Before.modified(None, 100));
        assert!(Off.modified(Some(100), 100));
    }
}
