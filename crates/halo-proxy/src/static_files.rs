//! Serving files from `root`/`alias` with `index` (enough for error pages and small sites).

use std::path::{Path, PathBuf};

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::body::{FileBody, ResponseBody, ResponseKind};
use crate::runtime::Runtime;

/// Outcome of a static lookup.
pub(crate) enum StaticResult {
    Found(Box<Response<ResponseBody>>),
    /// A directory requested without the trailing slash: redirect to `uri/`.
    AddSlash,
    Status(StatusCode),
}

/// Maps the normalised URI to a file: `root + uri`, or `alias + (uri - location prefix)`.
pub(crate) fn file_path(
    root: &Path,
    alias: Option<&Path>,
    uri: &str,
    prefix_len: usize,
) -> PathBuf {
    match alias {
        Some(alias) => {
            let rest = uri.get(prefix_len..).unwrap_or("");
            let mut path = alias.as_os_str().to_owned();
            path.push(rest);
            PathBuf::from(path)
        }
        None => {
            let mut path = root.as_os_str().to_owned();
            path.push(uri);
            PathBuf::from(path)
        }
    }
}

/// Serves `path` (a directory gets its index files tried).
pub(crate) async fn serve(
    rt: &Runtime,
    method: &Method,
    path: PathBuf,
    uri: &str,
    index: &[String],
) -> StaticResult {
    if method != Method::GET && method != Method::HEAD {
        return StaticResult::Status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let mut target = path;
    if uri.ends_with('/') {
        let mut found = None;
        for name in index {
            let candidate = target.join(name);
            if tokio::fs::metadata(&candidate)
                .await
                .is_ok_and(|m| m.is_file())
            {
                found = Some(candidate);
                break;
            }
        }
        match found {
            Some(file) => target = file,
            // nginx answers 403 for a directory without index (autoindex off), 404 if missing.
            None => {
                return match tokio::fs::metadata(&target).await {
                    Ok(m) if m.is_dir() => StaticResult::Status(StatusCode::FORBIDDEN),
                    _ => StaticResult::Status(StatusCode::NOT_FOUND),
                };
            }
        }
    }
    let meta = match tokio::fs::metadata(&target).await {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return StaticResult::Status(StatusCode::FORBIDDEN)
        }
        Err(_) => return StaticResult::Status(StatusCode::NOT_FOUND),
    };
    if meta.is_dir() {
        return StaticResult::AddSlash;
    }
    let file = match tokio::fs::File::open(&target).await {
        Ok(file) => file,
        Err(_) => return StaticResult::Status(StatusCode::FORBIDDEN),
    };
    let kind = target
        .extension()
        .and_then(|e| e.to_str())
        .and_then(|e| rt.mime.get(&e.to_ascii_lowercase()))
        .cloned()
        .unwrap_or_else(|| rt.default_type.clone());
    let len = meta.len();
    let mut response = Response::new(ResponseBody::new(ResponseKind::File(FileBody::new(
        file, len,
    ))));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, kind);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(modified) = meta.modified() {
        if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            headers.insert(header::LAST_MODIFIED, value);
        }
    }
    StaticResult::Found(Box::new(response))
}
