//! The variables the http block defines by lookup: `map`, `geo` and `split_clients`, each
//! computed when a request uses it.

use crate::geo::GeoRt;
use crate::handler::RequestCtx;
use crate::rewrite::MapRt;
use crate::split_clients::SplitClientsRt;

/// How one user variable is computed.
#[derive(Debug)]
pub(crate) enum DefinedVar {
    Map(MapRt),
    Geo(GeoRt),
    SplitClients(SplitClientsRt),
}

impl DefinedVar {
    /// Appends the value for the request `ctx` describes.
    pub fn write(&self, ctx: &RequestCtx<'_>, out: &mut String) {
        match self {
            DefinedVar::Map(map) => map.write(ctx, out),
            DefinedVar::Geo(geo) => geo.write(ctx, out),
            DefinedVar::SplitClients(split) => split.write(ctx, out),
        }
    }
}

/// Compiles the `map`s, `geo`s and `split_clients` of `cfg` into the slots of their variables
/// in `user` (the configuration's table of user variables); problems go to `errors`.
pub(crate) fn compile(
    cfg: &halo_config::http::HttpConfig,
    user: &[String],
    errors: &mut Vec<String>,
) -> Vec<Option<std::sync::Arc<DefinedVar>>> {
    let mut slots: Vec<Option<std::sync::Arc<DefinedVar>>> = vec![None; user.len()];
    let mut put = |name: &str, compiled: Result<DefinedVar, String>| match compiled {
        Ok(compiled) => {
            let name = name.to_ascii_lowercase();
            if let Some(i) = user.iter().position(|u| *u == name) {
                slots[i] = Some(std::sync::Arc::new(compiled));
            }
        }
        Err(e) => errors.push(e),
    };
    for map in &cfg.maps {
        put(
            &map.variable,
            MapRt::compile(map, user).map(DefinedVar::Map),
        );
    }
    for geo in &cfg.geo {
        put(
            &geo.variable,
            GeoRt::compile(geo, user).map(DefinedVar::Geo),
        );
    }
    for split in &cfg.split_clients {
        put(
            &split.variable,
            SplitClientsRt::compile(split, user).map(DefinedVar::SplitClients),
        );
    }
    slots
}

/// The variables `cfg`'s http block defines (lower case), to add to the user variable table.
pub(crate) fn names(cfg: &halo_config::http::HttpConfig) -> impl Iterator<Item = String> + '_ {
    cfg.maps
        .iter()
        .map(|m| &m.variable)
        .chain(cfg.geo.iter().map(|g| &g.variable))
        .chain(cfg.split_clients.iter().map(|s| &s.variable))
        .map(|n| n.to_ascii_lowercase())
}
