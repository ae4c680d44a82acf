//! Share links over HTTP: the household makes, lists and revokes them (`/api/shares`); a guest
//! opens one (`/api/guest`, from the page at `/s/TOKEN`) and then reads its items through the
//! household's own routes, narrowed to the share.
//!
//! The rule: what a guest may see is decided in two places only: [`check_item`], which the guard
//! runs for every route that names an item, and [`view`] with [`narrow`], for lists, facets and
//! ZIPs, whose filter then carries the share's scope (facets included).

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::guard::{self, Caller};
use super::{App, Body, api, blocking, full, json_no_store, rfc3339, session};
use crate::library::{Filter, Index, Library, id};
use crate::shares::{GUEST_COOKIE, Link, NewShare, Scope, Shares};

/// The most items one selection share may hold.
const MAX_IDS: usize = 10_000;
/// The longest share expiry that is not "never", in days.
const MAX_DAYS: u32 = 3650;
/// A share lasts this long unless told otherwise.
const DEFAULT_DAYS: u32 = 7;

/// SECURITY: the guard's check for a guest on every route that names an item: any item outside
/// the share is as unknown as one that does not exist.
pub(super) fn check_item(lib: &Library, link: &Link, media: u64) -> Result<(), ApiError> {
    let index = lib.read();
    match index.get(media) {
        Some(item) if index.matches(&narrowed(link), item) => Ok(()),
        _ => Err(ApiError::UnknownMedia(id::encode(media))),
    }
}

/// The share a list, facets or ZIP request is seen through: a guest's own, whatever it asks;
/// for the household, the one named by `share=` (a preview of what its guests see).
pub(super) fn view(app: &App, caller: &Caller, query: Option<&str>) -> Result<Option<Arc<Link>>, ApiError> {
    let asked = api::query_pairs(query).find(|(k, _)| k == "share").map(|(_, v)| v.into_owned());
    match (caller, asked) {
        (Caller::Guest(link), Some(other)) if other != link.share.id => Err(ApiError::UnknownShare),
        (Caller::Guest(link), _) => Ok(Some(Arc::clone(link))),
        (_, None) => Ok(None),
        (_, Some(share)) => Ok(Some(app.shares.get(&share)?)),
    }
}

/// A filter of just the share's items.
fn narrowed(link: &Link) -> Filter {
    Filter { within: Some(Arc::clone(&link.within)), ..Filter::default() }
}

/// Narrows a request's filter to a share. A guest's `dir` is relative to the shared folder (it
/// never learns the folders above), and names no folder in other shares; `favorite` is refused.
pub(super) fn narrow(filter: &mut Filter, link: &Link) -> Result<(), ApiError> {
    filter.within = Some(Arc::clone(&link.within));
    // The household's favorites are its own: a guest can neither see nor filter by them.
    if filter.favorite.is_some() {
        return Err(ApiError::bad("favorite", "not in a share link"));
    }
    let Some(asked) = filter.dir.take() else { return Ok(()) };
    let asked = asked.trim_matches('/');
    if asked.is_empty() {
        return Ok(());
    }
    let root = link.folder().ok_or_else(|| ApiError::bad("dir", "this share link is not a folder"))?;
    if !crate::fs::is_clean(asked.as_bytes()) {
        return Err(ApiError::bad("dir", "a folder inside the shared folder"));
    }
    filter.dir = Some(format!("{root}/{asked}"));
    Ok(())
}

/// An item's folder as the share's guests see it: below the shared folder, else nothing.
pub(super) fn seen_dir<'a>(link: &Link, dir: &'a str) -> &'a str {
    match link.folder() {
        Some(root) if dir == root => "",
        Some(root) => dir.strip_prefix(root).and_then(|d| d.strip_prefix('/')).unwrap_or(""),
        None => "",
    }
}

/// A share as the household sees it.
#[derive(Serialize)]
struct ShareJson<'a> {
    id: &'a str,
    title: &'a str,
    #[serde(flatten)]
    scope: &'a Scope,
    /// Items it shows now.
    count: usize,
    created: String,
    expires: Option<String>,
    expired: bool,
    password: bool,
    downloads: bool,
    views: u64,
    /// The link to send: `/s/TOKEN` on this server.
    url: String,
}

/// A share as its guests see it.
#[derive(Serialize)]
struct GuestJson<'a> {
    id: &'a str,
    title: &'a str,
    kind: &'static str,
    count: usize,
    expires: Option<String>,
    downloads: bool,
}

fn share_json<'a>(index: &Index, link: &'a Link, views: u64, token: &str) -> ShareJson<'a> {
    let s = &link.share;
    ShareJson {
        id: &s.id,
        title: &s.title,
        scope: &s.scope,
        count: index.count(&narrowed(link)),
        created: rfc3339(s.created),
        expires: s.expires.map(rfc3339),
        expired: s.is_expired(),
        password: s.password.is_some(),
        downloads: s.downloads,
        views,
        url: format!("/s/{token}"),
    }
}

/// `GET /api/shares`.
pub(super) async fn list(app: &Arc<App>) -> Result<Response<Body>, ApiError> {
    let shares = Arc::clone(&app.shares);
    let all = blocking(move || shares.list()).await.map_err(ApiError::Io)?;
    let index = app.lib.read();
    let items: Vec<_> =
        all.iter().map(|(link, views, token)| share_json(&index, link, *views, token)).collect();
    Ok(json_no_store(StatusCode::OK, &serde_json::json!({ "items": items })))
}

/// The body of `POST /api/shares`: one of `ids`, `dir` or `year` with `month`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewShareBody {
    ids: Option<Vec<String>>,
    dir: Option<String>,
    /// Numbers as JSON has them: `5.0` is the integer 5 too.
    year: Option<serde_json::Number>,
    month: Option<serde_json::Number>,
    title: Option<String>,
    expires_days: Option<serde_json::Number>,
    password: Option<String>,
    downloads: Option<bool>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `POST /api/shares`: 201 with the new share and its link.
pub(super) async fn create(app: &Arc<App>, req: &mut Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let bytes = session::read_body(req, 1 << 20, "JSON").await?;
    let body: NewShareBody = serde_json::from_slice(&bytes).map_err(|e| ApiError::BadBody(e.to_string()))?;
    let (scope, default_title) = {
        let index = app.lib.read();
        scope_of(&index, &body)?
    };
    let title = body.title.as_deref().map(str::trim).filter(|t| !t.is_empty()).unwrap_or(&default_title);
    if title.chars().count() > 200 {
        return Err(ApiError::bad("title", "at most 200 characters"));
    }
    let days = match &body.expires_days {
        None => DEFAULT_DAYS,
        Some(n) => whole(n).filter(|d| (0..=i64::from(MAX_DAYS)).contains(d)).map_or(u32::MAX, |d| d as u32),
    };
    if days > MAX_DAYS {
        return Err(ApiError::bad("expires_days", format!("0 (never) or up to {MAX_DAYS} days")));
    }
    let password = body.password.filter(|p| !p.is_empty());
    if password.as_ref().is_some_and(|p| p.chars().count() < crate::shares::MIN_PASSWORD_CHARS) {
        return Err(ApiError::bad(
            "password",
            format!("at least {} characters (or none)", crate::shares::MIN_PASSWORD_CHARS),
        ));
    }
    let now = crate::auth::unix_now();
    let new = NewShare {
        title: title.to_owned(),
        scope,
        expires: (days > 0).then(|| now + u64::from(days) * 86_400),
        password,
        downloads: body.downloads.unwrap_or(true),
    };
    let shares = Arc::clone(&app.shares);
    let (share, token) = blocking(move || shares.create(new)).await.map_err(ApiError::Io)?;
    tracing::info!(id = share.id, kind = share.scope.kind(), "a share link was made");
    let link = app.shares.get(&share.id)?;
    let index = app.lib.read();
    Ok(json_no_store(StatusCode::CREATED, &share_json(&index, &link, 0, &token)))
}

/// What a new share shows, checked against the index, and the title it gets unless given one.
fn scope_of(index: &Index, body: &NewShareBody) -> Result<(Scope, String), ApiError> {
    let one_of = "one of `ids`, `dir`, or `year` with `month`";
    let nothing = || ApiError::NothingToShare;
    let (year, month) = (body.year.as_ref().map(whole), body.month.as_ref().map(whole));
    match (&body.ids, &body.dir, year, month) {
        (Some(ids), None, None, None) => {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(ApiError::bad("ids", format!("1 to {MAX_IDS} ids of items")));
            }
            let mut seen = std::collections::HashSet::new();
            let (mut photos, mut videos) = (0, 0);
            let mut kept = Vec::new();
            for raw in ids {
                let media = id::decode(raw).ok_or_else(|| ApiError::bad("ids", "ids of items"))?;
                let item = index.get(media).ok_or_else(|| ApiError::UnknownMedia(raw.clone()))?;
                if seen.insert(media) {
                    match item.kind() {
                        crate::media::Kind::Image => photos += 1,
                        crate::media::Kind::Video => videos += 1,
                    }
                    kept.push(id::encode(media));
                }
            }
            let title = match (photos, videos) {
                (1, 0) => "1 photo".to_owned(),
                (n, 0) => format!("{n} photos"),
                (0, 1) => "1 video".to_owned(),
                (0, n) => format!("{n} videos"),
                (p, v) => format!("{} items", p + v),
            };
            Ok((Scope::Items { ids: kept }, title))
        }
        (None, Some(dir), None, None) => {
            let dir = dir.trim_matches('/');
            if dir.is_empty() || !crate::fs::is_clean(dir.as_bytes()) {
                return Err(ApiError::bad("dir", "a folder below the media folder, like Trips/Rome"));
            }
            let filter = Filter { dir: Some(dir.to_owned()), ..Filter::default() };
            if index.count(&filter) == 0 {
                return Err(nothing());
            }
            let title = dir.rsplit('/').next().unwrap_or(dir).to_owned();
            Ok((Scope::Folder { dir: dir.to_owned() }, title))
        }
        (None, None, Some(year), Some(month)) => {
            let (Some(year @ 1..=9999), Some(month @ 1..=12)) = (year, month) else {
                return Err(ApiError::bad("month", "a year from 1 to 9999 and a month from 1 to 12"));
            };
            let (year, month) = (year as i32, month as u8);
            let filter = Filter { year: Some(year), month: Some(month), ..Filter::default() };
            if index.count(&filter) == 0 {
                return Err(nothing());
            }
            Ok((Scope::Month { year, month }, format!("{} {year}", MONTHS[usize::from(month) - 1])))
        }
        _ => Err(ApiError::BadBody(format!("a share is {one_of}"))),
    }
}

/// A JSON number that is a whole one (`5` or `5.0`).
fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64))
}

/// `DELETE /api/shares/{share}`.
pub(super) async fn revoke(app: &Arc<App>, share: &str) -> Result<Response<Body>, ApiError> {
    let (shares, id) = (Arc::clone(&app.shares), share.to_owned());
    if !blocking(move || shares.revoke(&id)).await.map_err(ApiError::Io)? {
        return Err(ApiError::UnknownShare);
    }
    tracing::info!(id = share, "a share link was revoked");
    Ok(Response::builder().status(StatusCode::NO_CONTENT).body(full(bytes::Bytes::new())).expect("valid"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    token: String,
    password: Option<String>,
}

/// `GET|POST|DELETE /api/guest`: the share this browser opened, open one, or leave it.
pub(super) async fn guest(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    ip: IpAddr,
    https: bool,
) -> Result<Response<Body>, ApiError> {
    match *req.method() {
        Method::GET => {
            let link = guard::cookie(req.headers(), GUEST_COOKIE)
                .and_then(|c| app.shares.guest(c))
                .ok_or(ApiError::NotAGuest)?;
            Ok(guest_answer(app, &link, None))
        }
        Method::DELETE => {
            let clear = session::set_cookie(GUEST_COOKIE, "", 0, false);
            let mut resp = Response::builder().status(StatusCode::NO_CONTENT).body(full(bytes::Bytes::new()));
            if let Ok(r) = &mut resp {
                r.headers_mut().insert(header::SET_COOKIE, clear.parse().expect("a valid header"));
            }
            Ok(resp.expect("valid headers"))
        }
        _ => {
            let body: OpenBody = session::read_json(req).await?;
            let link = app.shares.by_token(&body.token)?;
            // Opened before in this browser (a reload): no password again, and not a new view.
            let current = guard::cookie(req.headers(), GUEST_COOKIE).and_then(|c| app.shares.guest(c));
            if current.is_some_and(|c| c.share.id == link.share.id) {
                return Ok(guest_answer(app, &link, None));
            }
            if link.share.password.is_some()
                && let Some(wait) = app.auth.login_delay(ip)
            {
                return Err(ApiError::TooManyAttempts(wait.as_secs().max(1)));
            }
            let (shares, auth, opened) = (Arc::clone(&app.shares), Arc::clone(&app.auth), Arc::clone(&link));
            let cookie = blocking(move || {
                let cookie = shares.open(&opened, body.password.as_deref());
                // The household's login back-off: a link's password is no easier to guess.
                if matches!(cookie, Err(crate::shares::ShareError::WrongPassword)) {
                    auth.record_failure(ip);
                }
                cookie
            })
            .await?;
            let set = session::set_cookie(GUEST_COOKIE, &cookie, Shares::guest_max_age(&link), https);
            Ok(guest_answer(app, &link, Some(set)))
        }
    }
}

fn guest_answer(app: &App, link: &Link, cookie: Option<String>) -> Response<Body> {
    let s = &link.share;
    let count = app.lib.read().count(&narrowed(link));
    let body = GuestJson {
        id: &s.id,
        title: &s.title,
        kind: s.scope.kind(),
        count,
        expires: s.expires.map(rfc3339),
        downloads: s.downloads,
    };
    session::json(StatusCode::OK, &body, cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Within;

    fn link(scope: Scope) -> Link {
        let within = match &scope {
            Scope::Folder { dir } => Within::Folder(dir.clone()),
            _ => Within::Month(2024, 5),
        };
        let share = crate::shares::Share {
            id: "AAAAAAAAAAAAAAAA".into(),
            title: "t".into(),
            scope,
            created: 0,
            expires: None,
            password: None,
            downloads: true,
        };
        Link { share, within: Arc::new(within) }
    }

    #[test]
    fn guests_see_folders_below_the_shared_one_only() {
        let l = link(Scope::Folder { dir: "Trips/Rome".into() });
        assert_eq!(seen_dir(&l, "Trips/Rome"), "");
        assert_eq!(seen_dir(&l, "Trips/Rome/Day 1"), "Day 1");
        assert_eq!(seen_dir(&l, "Trips/Romeo"), "");
        let mut f = Filter { dir: Some("Day 1/".into()), ..Filter::default() };
        narrow(&mut f, &l).unwrap();
        assert_eq!(f.dir.as_deref(), Some("Trips/Rome/Day 1"));
        for bad in ["../Paris", "a//b", "./x"] {
            assert!(narrow(&mut Filter { dir: Some(bad.into()), ..Filter::default() }, &l).is_err(), "{bad}");
        }
        let month = link(Scope::Month { year: 2024, month: 5 });
        assert_eq!(seen_dir(&month, "Trips/Rome"), "");
        assert!(narrow(&mut Filter { dir: Some("Trips".into()), ..Filter::default() }, &month).is_err());
    }
}
