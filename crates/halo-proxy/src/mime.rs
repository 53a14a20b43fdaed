//! `types { }` and `default_type` set at server or location level (the http level's are
//! [`Runtime::mime`] and [`Runtime::default_type`]).

use std::collections::HashMap;

use halo_config::http::Location;
use http::HeaderValue;

use crate::runtime::Runtime;

/// A location's own type table and default, each `None` when the http level's applies.
#[derive(Debug, Default)]
pub(crate) struct LocTypes {
    map: Option<HashMap<String, HeaderValue>>,
    default: Option<HeaderValue>,
}

impl LocTypes {
    /// `None` when the location sets neither.
    pub fn build(loc: &Location) -> Result<Option<LocTypes>, String> {
        if loc.mime_types.is_none() && loc.default_type.is_none() {
            return Ok(None);
        }
        let map = match &loc.mime_types {
            Some(table) => {
                let mut map = HashMap::new();
                for (ext, kind) in table {
                    let value = HeaderValue::from_str(kind)
                        .map_err(|_| format!("types: invalid type {kind:?}"))?;
                    map.insert(ext.to_ascii_lowercase(), value);
                }
                Some(map)
            }
            None => None,
        };
        let default = match &loc.default_type {
            Some(kind) => Some(
                HeaderValue::from_str(kind)
                    .map_err(|_| format!("default_type: invalid type {kind:?}"))?,
            ),
            None => None,
        };
        Ok(Some(LocTypes { map, default }))
    }
}

/// The type for a file extension (any case), else `default_type`: the location's table and
/// default where it has them, the http level's otherwise.
pub(crate) fn type_for(rt: &Runtime, types: Option<&LocTypes>, ext: Option<&str>) -> HeaderValue {
    let map = types.and_then(|t| t.map.as_ref()).unwrap_or(&rt.mime);
    ext.and_then(|e| map.get(&e.to_ascii_lowercase()))
        .or_else(|| types.and_then(|t| t.default.as_ref()))
        .unwrap_or(&rt.default_type)
        .clone()
}
