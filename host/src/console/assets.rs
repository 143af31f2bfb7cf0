//! The console's stylesheet and script, compiled into the binary and served
//! with long-lived caching: their URLs carry a hash of their content.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The stylesheet's URL, changing whenever its content does.
pub(super) static CSS_URL: LazyLock<String> = LazyLock::new(|| url("console.css", CSS));
/// The script's URL, changing whenever its content does.
pub(super) static JS_URL: LazyLock<String> = LazyLock::new(|| url("console.js", JS));

fn url(name: &str, content: &str) -> String {
    let digest = hex::encode(&Sha256::digest(content.as_bytes())[..6]);
    format!("/console/assets/{name}?v={digest}")
}

/// `GET /console/assets/{file}`.
pub(super) async fn serve(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "console.js" => ("text/javascript; charset=utf-8", JS),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
