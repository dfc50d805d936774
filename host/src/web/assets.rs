//! The stylesheet and the script of the pages, embedded in the binary and served under a path
//! holding a hash of their content (`/assets/app-<hash>.js`), so a browser may cache them for a
//! year and still never runs an old script after an upgrade: a new file is a new path.
//!
//! The script is hand-written, about 200 lines, with no dependencies (`assets/app.js`): no Node
//! toolchain to build, nothing vendored to keep up to date. Every page reads without it.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::api::extract::PathParams;

/// One embedded file.
pub struct Asset {
    /// The path it is served under, with the hash of its content.
    pub path: String,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        let hash = hex::encode(&Sha256::digest(bytes)[..8]);
        Asset {
            path: format!("/assets/{stem}-{hash}.{extension}"),
            content_type,
            bytes,
        }
    }
}

/// The stylesheet.
pub static STYLESHEET: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("assets/app.css"),
    )
});

/// The script.
pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    )
});

/// `GET /assets/{file}`: an embedded file by its hashed name, cached for a year.
pub async fn serve(PathParams(file): PathParams<String>) -> Result<Response, ApiError> {
    let asset = [&*STYLESHEET, &*SCRIPT]
        .into_iter()
        .find(|asset| asset.path.rsplit('/').next() == Some(file.as_str()))
        .ok_or_else(|| ApiError::RouteNotFound(format!("/assets/{file}")))?;
    Ok((
        StatusCode::OK,
        [
            (CONTENT_TYPE, asset.content_type),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_carry_a_hash_of_the_content() {
        assert!(SCRIPT.path.starts_with("/assets/app-") && SCRIPT.path.ends_with(".js"));
        assert!(STYLESHEET.path.ends_with(".css"));
        assert_eq!(SCRIPT.path.len(), "/assets/app-.js".len() + 16);
        let other = Asset::new("app", "js", "text/javascript", b"changed");
        assert_ne!(other.path, SCRIPT.path, "new content, new path");
    }
}
