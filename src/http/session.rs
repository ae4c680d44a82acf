//! The login flow: `GET /api/session`, `POST /api/login`, `/api/logout`, `/api/setup` (the
//! first-run password) and `/api/password` (change it).
//!
//! Each answers JSON and sets or clears the session cookie. The rule: password checks run on a
//! blocking thread (argon2 is slow on purpose), and request bodies are read with a small limit.

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use serde::Deserialize;

use super::error::ApiError;
use super::guard::{self, Caller};
use super::{App, Body};
use crate::auth::COOKIE;

const MAX_BODY: usize = 4096;
/// The longest a small JSON body may take to arrive after its headers.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET /api/session`: whether a login is needed, whether a password must be chosen first, and
/// whether this request is logged in.
pub(super) fn status(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let caller = guard::caller(&app.auth, &app.shares, req.headers());
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "required": app.auth.required(),
            "setup": app.auth.needs_setup(),
            "logged_in": !matches!(caller, Caller::Anonymous | Caller::Guest(_)),
        }),
        None,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    old: String,
    new: String,
}

/// `POST /api/login` with `{"password": "..."}`.
pub(super) async fn login(
    app: &App,
    req: &mut Request<Incoming>,
    ip: IpAddr,
    https: bool,
) -> Result<Response<Body>, ApiError> {
    let body: PasswordBody = read_json(req).await?;
    let auth = std::sync::Arc::clone(&app.auth);
    let cookie = blocking(move || auth.login(ip, &body.password)).await?;
    Ok(with_cookie(app, &cookie, https))
}

/// `POST /api/setup` with `{"password": "..."}`: only while no password is set.
pub(super) async fn setup(
    app: &App,
    req: &mut Request<Incoming>,
    https: bool,
) -> Result<Response<Body>, ApiError> {
    let body: PasswordBody = read_json(req).await?;
    let auth = std::sync::Arc::clone(&app.auth);
    let cookie = blocking(move || auth.setup(&body.password)).await?;
    tracing::info!("a password was chosen on the first-run page");
    Ok(with_cookie(app, &cookie, https))
}

/// `POST /api/password` with `{"old": "...", "new": "..."}`: every other session ends.
pub(super) async fn change(
    app: &App,
    req: &mut Request<Incoming>,
    ip: IpAddr,
    https: bool,
) -> Result<Response<Body>, ApiError> {
    let body: ChangeBody = read_json(req).await?;
    let auth = std::sync::Arc::clone(&app.auth);
    let cookie = blocking(move || auth.change_password(ip, &body.old, &body.new)).await?;
    tracing::info!("the password was changed; other sessions ended");
    Ok(with_cookie(app, &cookie, https))
}

/// `POST /api/logout`: clears the cookie.
/// `POST /api/logout`: clears the cookie, and ends the session on the server too, so a copy of
/// the cookie (another browser tab's excepted: they share it) stops working.
pub(super) async fn logout(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    if let Some(value) = guard::session_cookie(req.headers()).map(str::to_owned) {
        let auth = std::sync::Arc::clone(&app.auth);
        blocking(move || auth.logout(&value)).await?;
    }
    let clear = set_cookie(COOKIE, "", 0, false);
    Ok(json(StatusCode::OK, &serde_json::json!({ "logged_in": false }), Some(clear)))
}

fn with_cookie(app: &App, value: &str, https: bool) -> Response<Body> {
    let cookie = set_cookie(COOKIE, value, app.auth.session_max_age().as_secs(), https);
    json(StatusCode::OK, &serde_json::json!({ "logged_in": true }), Some(cookie))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, for the whole site, `Secure` when the client
/// came over TLS; a `max_age` of 0 clears the cookie.
pub(super) fn set_cookie(name: &str, value: &str, max_age: u64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::auth::AuthError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Io(std::io::Error::other(e)))?
        .map_err(ApiError::from)
}

pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    req: &mut Request<Incoming>,
) -> Result<T, ApiError> {
    let bytes = read_body(req, MAX_BODY, "JSON").await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadBody(e.to_string()))
}

/// A small request body, whole: at most `max` bytes of `what`.
pub(super) async fn read_body(
    req: &mut Request<Incoming>,
    max: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    // SECURITY: bounded in size and in time, so a body trickled a byte at a time (slowloris after
    // the headers) does not hold the request open.
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(req.body_mut(), max).collect());
    Ok(read
        .await
        .map_err(|_| {
            ApiError::BadBody(format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs()))
        })?
        .map_err(|_| ApiError::BadBody(format!("at most {max} bytes of {what}")))?
        .to_bytes())
}

/// A JSON answer that no cache keeps, setting a cookie when given one.
pub(super) fn json(
    status: StatusCode,
    value: &impl serde::Serialize,
    cookie: Option<String>,
) -> Response<Body> {
    let mut resp = super::json_no_store(status, value);
    if let Some(c) = cookie {
        resp.headers_mut().insert(header::SET_COOKIE, c.parse().expect("a valid cookie header"));
    }
    resp
}
