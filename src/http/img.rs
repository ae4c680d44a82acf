//! `GET /img/<signature>/<size>/<fit>/<path>.<format>`: pictures for static sites, readable with
//! no session, cacheable for a year (see [`crate::imgurl`]).
//!
//! The rule: the signature (or the public folder) is checked first, then the expiry and the
//! size; only then is the index asked for the photo, and only an indexed photo is read.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};

use super::error::ApiError;
use super::{App, Body, api, file};
use crate::imgurl::{ImgRequest, PUBLIC, UrlError};
use crate::library::{Item, id};

/// A year: the URL names the picture, and a changed photo gets a new URL (see the README).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub(super) async fn serve(
    app: &Arc<App>,
    req: &Request<Incoming>,
    tail: &[&str],
) -> Result<Response<Body>, ApiError> {
    let (signature, rest) = tail.split_first().ok_or(ApiError::BadSignature("no signature"))?;
    let sizes = &app.thumbs.opts().resize_sizes;
    let parsed = ImgRequest::parse(rest, sizes);
    let public = *signature == PUBLIC;
    if public {
        // Unsigned: only inside the public folder, and never when there is none.
        let inside = match (&app.public_dir, &parsed) {
            (Some(top), Ok(r)) => crate::fs::watch::is_within(&r.dir, top.as_bytes()),
            _ => false,
        };
        if !inside {
            return Err(ApiError::BadSignature("unsigned, and not in the public folder"));
        }
    } else if !app.url_key.verify(signature, signed_part(req.uri().path(), signature, rest).as_bytes()) {
        return Err(ApiError::BadSignature("the signature does not match this URL"));
    }
    let r = parsed.map_err(|e| match e {
        UrlError::Malformed(why) => ApiError::bad("path", why),
        UrlError::Size(_) => ApiError::bad("size", e.to_string()),
    })?;
    let now = jiff::Timestamp::now().as_second();
    if r.expires.is_some_and(|e| e <= now) {
        return Err(ApiError::BadSignature("the URL has expired"));
    }
    let media = id::from_rel_path(&crate::fs::join(&r.dir, &r.name));
    let (h, fit) = api::open_box(r.height, r.fit);
    let encoding = api::negotiate(r.wanted, req.headers());
    let names = |item: &Item, dir: &[u8]| *dir == *r.dir && *item.name == *r.name;
    let encoded = api::resized(app, media, names, (r.width, h), fit, encoding)
        .await?
        .ok_or_else(|| ApiError::UnknownMedia(String::from_utf8_lossy(&r.name).chars().take(64).collect()))?;
    let mut resp = file::serve_bytes(
        req.method(),
        req.headers(),
        encoded.bytes.clone(),
        encoding.mime(),
        &encoded.etag,
        "",
    );
    api::vary_on_accept(&mut resp, r.wanted);
    // An expiring URL is not cached past its expiry.
    let cache = match r.expires {
        None => HeaderValue::from_static(IMMUTABLE),
        Some(e) => format!("public, max-age={}", (e - now).clamp(0, 31_536_000)).parse().expect("ASCII"),
    };
    resp.headers_mut().insert(hyper::header::CACHE_CONTROL, cache);
    // Any site may show these pictures: that is what they are for.
    resp.headers_mut().insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    Ok(resp)
}

/// What the signature covers: the path after `/img/<signature>/`, as sent (a slice of it, not a
/// copy, on the hot path of a CDN origin).
fn signed_part<'a>(path: &'a str, signature: &str, rest: &[&str]) -> std::borrow::Cow<'a, str> {
    let after = path.trim_start_matches('/').strip_prefix("img/").and_then(|p| p.strip_prefix(signature));
    match after.and_then(|p| p.strip_prefix('/')) {
        Some(part) => part.into(),
        None => rest.join("/").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::signed_part;

    #[test]
    fn the_signed_part_is_the_path_after_the_signature() {
        let rest = ["w320", "contain", "a b", "c.jpg.webp"];
        assert_eq!(
            signed_part("/img/SIG/w320/contain/a b/c.jpg.webp", "SIG", &rest),
            "w320/contain/a b/c.jpg.webp"
        );
        assert_eq!(
            signed_part("//img/SIG/w320/contain/a b/c.jpg.webp", "SIG", &rest),
            "w320/contain/a b/c.jpg.webp"
        );
        assert_eq!(signed_part("/img/SIG", "SIG", &[]), "");
    }
}
