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

fn default_true() -> bool {
    true
}
