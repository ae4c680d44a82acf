//! Every route of the server in one table, read top to bottom.
//!
//! The rule: a path is split into segments and matched here only; handlers receive typed
//! arguments (a decoded id, never a path), and anything unmatched is a JSON 404 or 405.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::error::ApiError;
use super::guard::{self, Caller};
use super::{App, Body, Peer, api, assets, events, metrics, session};
use crate::library::id;
use crate::thumbs::Rendition;

pub async fn route(app: &Arc<App>, mut req: Request<Incoming>, peer: Peer) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let ip = guard::client_ip(peer.ip(), req.headers(), &app.trusted_proxies);
    if path.starts_with("/api/") {
        app.lib.sync_replicas();
    }
    let mut resp = if app.limiter.allow(ip) {
        let https = guard::is_https(peer.ip(), req.headers(), &app.trusted_proxies);
        checked(app, &mut req, &path, Client { ip, https }).await.unwrap_or_else(ApiError::into_response)
    } else {
        ApiError::RateLimited.into_response()
    };
    let h = resp.headers_mut();
    // SECURITY: on every answer, not only the page: a JSON error or an original opened directly
    // must not be sniffed into HTML or leak the gallery's URLs to other sites.
    h.entry(hyper::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(hyper::header::HeaderValue::from_static("nosniff"));
    h.entry(hyper::header::REFERRER_POLICY).or_insert(hyper::header::HeaderValue::from_static("same-origin"));
    app.metrics.record(&path, resp.status(), started.elapsed());
    tracing::debug!(
        %peer, %method, path, status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64, "request"
    );
    resp
}

/// Where a request came from, once proxies are accounted for.
#[derive(Debug, Clone, Copy)]
struct Client {
    ip: std::net::IpAddr,
    https: bool,
}

/// The guard, then the table: a cross-origin change or an unauthenticated private path never
/// reaches a handler.
async fn checked(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    path: &str,
    client: Client,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    guard::check_origin(req.method(), req.headers(), segments == ["api", "events"])?;
    if !guard::is_public(req.method(), &segments)
        && guard::caller(&app.auth, req.headers()) == Caller::Anonymous
    {
        return Err(ApiError::Unauthorized);
    }
    dispatch(app, req, path, &segments, client).await
}

async fn dispatch(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    path: &str,
    segments: &[&str],
    client: Client,
) -> Result<Response<Body>, ApiError> {
    let lib = &app.lib;
    let m = &req.method().clone();
    let get = m == Method::GET || m == Method::HEAD;
    let not_allowed = |allow| Err(ApiError::MethodNotAllowed { method: m.to_string(), allow });

    let post = m == Method::POST;
    match segments {
        // Logging in.
        ["api", "session"] if get => session::status(app, req),
        ["api", "login"] if post => session::login(app, req, client.ip, client.https).await,
        ["api", "logout"] if post => session::logout(app, req).await,
        ["api", "setup"] if post => session::setup(app, req, client.https).await,
        ["api", "password"] if post => session::change(app, req, client.ip, client.https).await,

        // The JSON API.
        ["api", "health"] if get => Ok(api::health(lib)),
        ["api", "status"] if get => Ok(api::status(app)),
        ["api", "media"] if get => api::list(app, req),
        ["api", "facets"] if get => api::facets(app, req),
        ["api", "events"] if m == Method::GET => events::upgrade(app, req),
        ["api", "media", raw] if get => api::item(lib, media_id(raw)?),
        ["api", "media", raw, "original"] if get => api::original(lib, media_id(raw)?, req).await,
        ["api", "media", raw, "details"] if get => api::details(lib, media_id(raw)?).await,
        ["api", "media", raw, "resize"] if get => api::resize(app, media_id(raw)?, req).await,
        ["api", "media", raw, which] if get && Rendition::parse(which).is_some() => {
            api::rendition(app, media_id(raw)?, Rendition::parse(which).expect("checked"), req).await
        }
        ["api", "media", raw, "favorite"] if m == Method::PUT => {
            api::favorite(lib, media_id(raw)?, true).await
        }
        ["api", "media", raw, "favorite"] if m == Method::DELETE => {
            api::favorite(lib, media_id(raw)?, false).await
        }

        // Known paths, wrong method.
        ["api", "media", _, "favorite"] => not_allowed("PUT, DELETE"),
        ["api", "login" | "logout" | "setup" | "password"] => not_allowed("POST"),
        ["api", ..] if segments_known(segments) => not_allowed("GET, HEAD"),
        ["api", ..] => Err(ApiError::NoRoute(path.to_owned())),
        ["metrics"] if get => Ok(metrics::render(app)),
        ["metrics"] => not_allowed("GET, HEAD"),
        // The web app.
        _ if get => {
            Ok(assets::serve(&app.web, segments, req.headers()).unwrap_or_else(assets::not_found_page))
        }
        _ => not_allowed("GET, HEAD"),
    }
}

/// Whether an `/api` path exists for some method (so the answer is 405, not 404).
fn segments_known(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["api", "health" | "status" | "media" | "facets" | "events" | "session"]
            | ["api", "media", _]
            | ["api", "media", _, "original" | "thumb" | "preview" | "resize" | "details"]
    )
}

fn media_id(raw: &str) -> Result<u64, ApiError> {
    // A malformed id cannot name any media: same answer as an unknown one.
    id::decode(raw).ok_or_else(|| ApiError::UnknownMedia(raw.chars().take(64).collect()))
}
