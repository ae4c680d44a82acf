//! The web front end, embedded in the binary at compile time.
//!
//! The rule: the binary is the whole product; no file under `web/` is read at run time.

use hyper::{Response, StatusCode, header};

use super::{Body, full};
use crate::library::probe::Kind;

/// (URL name, content type, bytes) of every file under `web/` that is served.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../web/app.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../web/style.css")),
];

const INDEX_HTML: &[u8] = include_bytes!("../../web/index.html");

pub fn index() -> Response<Body> {
    html(StatusCode::OK, INDEX_HTML)
}

pub fn exists(name: &str) -> bool {
    ASSETS.iter().any(|(n, _, _)| *n == name)
}

pub fn get(name: &str) -> Response<Body> {
    let (_, content_type, bytes) = ASSETS.iter().find(|(n, _, _)| *n == name).expect("checked by exists()");
    Response::builder()
        .header(header::CONTENT_TYPE, *content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(full(*bytes))
        .expect("static headers are valid")
}

pub fn not_found_page() -> Response<Body> {
    html(
        StatusCode::NOT_FOUND,
        b"<!doctype html><meta charset=utf-8><title>Not found</title><p>Nothing here. <a href=\"/\">Back to the gallery</a>.",
    )
}

fn html(status: StatusCode, bytes: &'static [u8]) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(full(bytes))
        .expect("static headers are valid")
}

/// A neutral tile standing in for a picture that cannot be shown, with the reason written small
/// along its bottom (e.g. which tool to install).
pub fn placeholder_svg(kind: Kind, reason: &str) -> String {
    let icon = match kind {
        Kind::Image => {
            r##"<path d="M110 280l70-90 50 60 35-40 45 70z" fill="#8888"/><circle cx="260" cy="150" r="22" fill="#8888"/>"##
        }
        Kind::Video => r##"<path d="M165 140v120l100-60z" fill="#8888"/>"##,
    };
    let reason: String = reason
        .chars()
        .map(|c| match c {
            '<' | '>' | '&' | '"' => ' ',
            c => c,
        })
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400"><rect width="400" height="400" fill="#8884"/>{icon}<text x="200" y="370" font-family="sans-serif" font-size="16" fill="#888" text-anchor="middle">{reason}</text></svg>"##
    )
}
