//! The stylesheet and the script, embedded in the binary (no CDN, nothing to install).
//! Pages link them with a digest of their contents (`/static/app.css?v=…`), so a browser
//! keeps them for a year and fetches them again only when a new version of the node
//! changes them; they hold nothing personal.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::Digest;

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

fn versioned(file: &str, body: &str) -> String {
    let digest = sha2::Sha256::digest(body.as_bytes());
    format!(
        "/static/{file}?v={}",
        data_encoding::HEXLOWER.encode(&digest[..6])
    )
}

/// The stylesheet's address, with its version.
pub static CSS_HREF: LazyLock<String> = LazyLock::new(|| versioned("app.css", CSS));
/// The script's address, with its version.
pub static JS_HREF: LazyLock<String> = LazyLock::new(|| versioned("app.js", JS));

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
