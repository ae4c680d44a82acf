//! The JSON API handlers: parse the request, ask the library, write JSON.
//!
//! Each handler is a short list of steps: parse and validate parameters (400 naming the
//! parameter), resolve ids through the index (404), call the library, serialize. The rule:
//! nothing a client sends is ever used as a path; files are reached only through indexed items.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::display::Base64Display;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use serde::Serialize;

use super::error::ApiError;
use super::file::{self, FileInfo};
use super::{App, Body, full};
use crate::fs::RelPath;
use crate::imgurl::Wanted;
use crate::library::dates::{self, DateSource};
use crate::library::probe::{Format, Kind};
use crate::library::{FavoriteError, Filter, Index, Item, Library, Order, id};
use crate::shares::Link;
use crate::thumbs::{Encoded, Rendition, RenditionUrl, Served, Thumbs, render};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(full(to_json(value)))
        .expect("static headers are valid")
}

pub(super) fn health(lib: &Library) -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok", "ready": lib.is_ready() }))
}

pub(super) fn status(app: &App) -> Response<Body> {
    let lib = &app.lib;
    let p = &lib.progress;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (counts, len) = {
        let index = lib.read();
        (index.counts(), index.len())
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": lib.started.elapsed().as_secs(),
            "items": len,
            "images": counts.images,
            "videos": counts.videos,
            "favorites": counts.favorites,
            "indexing": {
                "done": p.done.load(Ordering::Acquire),
                "walking": p.walking.load(Ordering::Relaxed),
                "found": n(&p.found),
                "indexed": n(&p.indexed),
                "errors": n(&p.errors),
                "elapsed_ms": n(&p.elapsed_ms),
            },
            "metadata": {
                "from_xattr": n(&p.from_xattr),
                "from_state_dir": n(&p.from_state_dir),
                "extracted": n(&p.extracted),
            },
            "thumbnails": thumbnail_status(&app.thumbs),
            "watch": watch_status(lib),
            "hooks": hooks_status(&app.hooks),
            "config_error": app.config_error,
        }),
    )
}

/// How the folder is followed, and what that has done so far.
fn watch_status(lib: &Library) -> serde_json::Value {
    let w = &lib.live;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    serde_json::json!({
        "mode": w.mode(),
        "watched_folders": n(&w.watched_folders),
        "unwatched_folders": n(&w.unwatched_folders),
        "overflows": n(&w.overflows),
        "rescans": n(&w.rescans),
        "changes": n(&w.applied),
        "media_missing": w.media_missing.load(Ordering::Relaxed),
    })
}

/// Delivery counters of each webhook (URL without its query, which may hold a token) and of the
/// hook program.
fn hooks_status(hooks: &crate::hooks::Hooks) -> serde_json::Value {
    let webhooks: Vec<_> = hooks
        .webhooks
        .iter()
        .map(|(url, hook)| {
            let s = hook.stats();
            serde_json::json!({
                "url": url.split('?').next().unwrap_or(""),
                "delivered": s.delivered,
                "failed": s.failed,
                "dropped": s.dropped,
                "retries": s.retries,
                "queued": s.queued,
            })
        })
        .collect();
    let command = hooks.command.as_ref().map(|c| {
        let s = c.stats();
        serde_json::json!({
            "started": s.started,
            "succeeded": s.succeeded,
            "failed": s.failed,
            "timed_out": s.timed_out,
            "dropped": s.dropped,
        })
    });
    serde_json::json!({ "webhooks": webhooks, "command": command })
}

/// Background progress (done/total, rate, ETA) and cache counters.
fn thumbnail_status(thumbs: &Thumbs) -> serde_json::Value {
    let t = &thumbs.stats;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let progress = thumbs.background_progress();
    serde_json::json!({
        "background": {
            "total": progress.total,
            "done": progress.done,
            "per_second": (progress.per_second * 10.0).round() / 10.0,
            "eta_s": progress.eta_s,
        },
        "avif": { "total": n(&t.avif_total), "done": n(&t.avif_done) },
        "decoders": {
            "heif": thumbs.tools().heif.is_some(),
            "ffmpeg": thumbs.tools().ffmpeg.is_some(),
        },
        "decoded": n(&t.decoded),
        "failed": n(&t.failed),
        "memory_hits": n(&t.memory_hits),
        "disk_hits": n(&t.disk_hits),
    })
}

/// `GET /api/media`: one page of items, newest first by default (of a share's, for its view).
pub(super) fn list(
    app: &App,
    req: &Request<Incoming>,
    view: Option<&Link>,
) -> Result<Response<Body>, ApiError> {
    memoized(app, req, "media", view, |index, query| {
        let q = ListQuery::parse(query, view)?;
        let (items, more) = index.page(&q.filter, q.order, q.cursor, q.limit);
        let next_cursor = if more { items.last().map(|i| id::encode_cursor(i.key())) } else { None };
        // Serialized straight from structs: a serde_json::Value per item was most of the time spent.
        #[derive(Serialize)]
        struct Page<'a> {
            items: Vec<ItemJson<'a>>,
            next_cursor: Option<String>,
        }
        let items = items.iter().map(|i| ItemJson::new(index, i).seen_from(view)).collect();
        Ok(to_json(&Page { items, next_cursor }))
    })
}

/// What the unfiltered gallery asks for right after [`FIRST_FACETS`](super::assets), as preloads
/// to send with its page: the newest month's first page (exactly the URL of `listMedia` in
/// web/api.js for a first screen) and the newest photo's thumbnail, the top-left tile on every
/// screen and so the first screen's largest paint. Empty for an empty library.
pub(super) fn first_screen_preloads(lib: &Library) -> Vec<String> {
    let index = lib.read();
    let (items, _) = index.page(&Filter::default(), Order::NewestFirst, None, 1);
    let Some(item) = items.first() else { return Vec::new() };
    let (year, month) = dates::year_month(item.taken_ms());
    vec![
        format!(
            "</api/media?year={year}&month={month}&limit={FIRST_PAGE}>; rel=preload; as=fetch; crossorigin"
        ),
        format!("<{}>; rel=preload; as=image; fetchpriority=high", RenditionUrl::new(item, Rendition::Thumb)),
    ]
}

/// The size of the first page of a month the web app asks for (`PAGE` in web/api.js).
const FIRST_PAGE: usize = 120;

/// `GET /api/facets`: years with months, and the folder tree, each with counts.
pub(super) fn facets(
    app: &App,
    req: &Request<Incoming>,
    view: Option<&Link>,
) -> Result<Response<Body>, ApiError> {
    memoized(app, req, "facets", view, |index, query| {
        let q = ListQuery::parse(query, view)?;
        let f = index.facets(&q.filter);
        let years: Vec<_> = f
            .years
            .iter()
            .map(|(year, count, months)| {
                let months: Vec<_> =
                    months.iter().map(|(m, c)| serde_json::json!({"month": m, "count": c})).collect();
                serde_json::json!({ "year": year, "count": count, "months": months })
            })
            .collect();
        Ok(to_json(&serde_json::json!({
            "years": years,
            "folders": folder_tree(index, &f.folder_counts, view),
            "images": f.images,
            "videos": f.videos,
            "favorites": if view.is_some() { 0 } else { f.favorites },
        })))
    })
}

/// Answers smaller than this go as they are, even to a client that takes gzip.
const GZIP_MIN: usize = 1024;

/// Answers a read-only query from the memo while the index is unchanged, with an ETag of the
/// index generation so a client that has the answer gets a 304; gzipped for clients that take it.
fn memoized(
    app: &App,
    req: &Request<Incoming>,
    endpoint: &str,
    view: Option<&Link>,
    make: impl FnOnce(&Index, Option<&str>) -> Result<Bytes, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let query = req.uri().query();
    // A share's guests get answers of their own.
    let key = format!("{endpoint}?{}#{}", query.unwrap_or(""), view.map_or("", |v| v.share.id.as_str()));
    let index = app.lib.read();
    let generation = index.generation();
    // Pages of JSON shrink to a fifth with gzip; each encoding is a representation of its own,
    // with its own validator.
    let gzip = super::assets::accepts_gzip(req.headers());
    let etag = format!(
        "{:x}-{generation:x}-{:08x}{}",
        app.run_id,
        xxhash_rust::xxh3::xxh3_64(key.as_bytes()) as u32,
        if gzip { "-gz" } else { "" }
    );
    if file::etag_matches_request(req.headers(), &etag) {
        return Ok(Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, format!("\"{etag}\""))
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::VARY, "Accept-Encoding")
            .body(full(Bytes::new()))
            .expect("static headers are valid"));
    }
    let answer = app.memo.get_or_make(&key, generation, || make(&index, query))?;
    drop(index);
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::ETAG, format!("\"{etag}\""))
        .header(header::VARY, "Accept-Encoding");
    // Below about a kilobyte gzip saves too little to be worth a client's inflate.
    let body = if gzip && answer.plain.len() >= GZIP_MIN {
        resp = resp.header(header::CONTENT_ENCODING, "gzip");
        answer.gzip()
    } else {
        answer.plain.clone()
    };
    Ok(resp.body(full(body)).expect("static headers are valid"))
}

fn to_json(value: &impl Serialize) -> Bytes {
    let mut body = Vec::with_capacity(4096);
    serde_json::to_writer(&mut body, value).expect("API values always serialize");
    body.into()
}

/// `GET /api/media/{id}`.
pub(super) fn item(lib: &Library, id: u64, view: Option<&Link>) -> Result<Response<Body>, ApiError> {
    let index = lib.read();
    let item = index.get(id).ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
    Ok(json(StatusCode::OK, &ItemJson::new(&index, item).seen_from(view)))
}

/// `GET /api/media/{id}/details`: camera make, model and lens, read from the file on demand.
pub(super) async fn details(lib: &Arc<Library>, id: u64) -> Result<Response<Body>, ApiError> {
    let lib = Arc::clone(lib);
    let probe = tokio::task::spawn_blocking(move || lib.details(id))
        .await
        .map_err(|e| ApiError::Io(std::io::Error::other(e)))?
        .map_err(ApiError::from_media_io)?
        .ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "make": probe.make, "model": probe.model, "lens": probe.lens }),
    ))
}

/// `PUT`/`DELETE /api/media/{id}/favorite`: answers only once the change is durable.
pub(super) async fn favorite(lib: &Library, id: u64, on: bool) -> Result<Response<Body>, ApiError> {
    // Writing and fsyncing blocks; block_in_place hands this worker's other tasks to another
    // thread meanwhile (the runtime is multi-threaded).
    let result = tokio::task::block_in_place(|| lib.set_favorite(id, on));
    match result {
        Ok(item) => {
            let index = lib.read();
            Ok(json(StatusCode::OK, &ItemJson::new(&index, &item)))
        }
        Err(FavoriteError::NotFound) => Err(ApiError::UnknownMedia(id::encode(id))),
        // Gone since it was indexed (or a link swapped in on the way): nothing was written.
        Err(FavoriteError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::FileMissing),
        Err(FavoriteError::Io(e)) => Err(ApiError::FavoriteNotStored(e)),
    }
}

/// `GET /api/media/{id}/original`: the file itself, with ranges and validators.
pub(super) async fn original(
    lib: &Library,
    id: u64,
    req: &Request<Incoming>,
    view: Option<&Link>,
) -> Result<Response<Body>, ApiError> {
    let mut download = false;
    for (key, value) in query_pairs(req.uri().query()) {
        match (key.as_ref(), value.as_ref()) {
            ("download", "0") => download = false,
            ("download", "1") => download = true,
            ("download", _) => return Err(ApiError::bad("download", "0 or 1")),
            (other, _) => return Err(ApiError::UnknownParameter(other.chars().take(64).collect())),
        }
    }
    // Without downloads a guest still plays videos (they stream from the original), and sees
    // pictures as previews. Not DRM: what a screen shows can be saved.
    if let Some(v) = view
        && !v.share.downloads
        && (download || lib.read().get(id).is_some_and(|i| i.kind() == Kind::Image))
    {
        return Err(ApiError::DownloadsOff);
    }
    serve_file(lib, id, req, download, "private, no-cache").await
}

/// `GET /api/media/{id}/thumb|preview`: from memory when cached, else made on the blocking pool
/// (bounded, so a burst of requests cannot start a decode per request); a placeholder picture
/// when none can be made.
pub(super) async fn rendition(
    app: &App,
    id: u64,
    which: Rendition,
    req: &Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (item, dir) = app.lib.locate(id).ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
    let kind = item.kind();
    // Thumbnails come in AVIF too, once the background pass has made them: the answer then
    // depends on `Accept`, and a JPEG sent for want of the AVIF is not cached for good.
    let negotiated = which == Rendition::Thumb && app.thumbs.opts().avif;
    let wants_avif = negotiated && negotiate(Wanted::Auto, req.headers()) == render::Encoding::Avif;
    let answer = |r: &Encoded, mime: &'static str, cache: &'static str| {
        let mut resp = file::serve_bytes(req.method(), req.headers(), r.bytes.clone(), mime, &r.etag, cache);
        if negotiated {
            vary_on_accept(&mut resp, Wanted::Auto);
        }
        resp
    };
    if wants_avif {
        let avif = match app.thumbs.avif_cached(&item) {
            Some(hit) => Some(hit),
            None => {
                let (thumbs, item) = (Arc::clone(&app.thumbs), item.clone());
                tokio::task::spawn_blocking(move || thumbs.avif_blocking(&item))
                    .await
                    .map_err(|e| ApiError::Io(std::io::Error::other(e)))?
            }
        };
        if let Some(r) = avif {
            return Ok(answer(&r, "image/avif", "public, max-age=31536000, immutable"));
        }
    }
    let served = match app.thumbs.cached(&item, which) {
        Some(hit) => Served::Ready(hit),
        None => {
            let _slot = app.thumbs.decode_slot().await;
            let (lib, thumbs) = (Arc::clone(&app.lib), Arc::clone(&app.thumbs));
            tokio::task::spawn_blocking(move || {
                let (served, thumbhash) = thumbs.get_blocking(&item, &dir, which);
                if let Some((id, version, hash)) = thumbhash {
                    lib.set_thumbhash(id, version, &hash);
                }
                served
            })
            .await
            .map_err(|e| ApiError::Io(std::io::Error::other(e)))?
        }
    };
    Ok(match served {
        // The URL carries the file and pipeline version, so a cached copy is never stale; but an
        // AVIF may come for it later.
        Served::Ready(r) => answer(
            &r,
            "image/jpeg",
            if wants_avif { "public, max-age=3600" } else { "public, max-age=31536000, immutable" },
        ),
        Served::Placeholder(reason) => Response::builder()
            .header(header::CONTENT_TYPE, "image/svg+xml")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-spis-placeholder", reason)
            .body(full(super::assets::placeholder_svg(kind, reason)))
            .expect("static headers are valid"),
    })
}

/// `GET /api/media/{id}/resize?w=&h=&fit=contain|cover&format=jpeg|png|avif|auto`: one picture
/// for a box, for static sites. Sizes must come from the configured list, so the cache stays
/// bounded.
pub(super) async fn resize(app: &App, id: u64, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let ResizeQuery { w, h, fit, wanted } =
        ResizeQuery::parse(req.uri().query(), &app.thumbs.opts().resize_sizes)?;
    let encoding = negotiate(wanted, req.headers());
    let encoded = resized(app, id, |_, _| true, (w, h), fit, encoding)
        .await?
        .ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
    // The URL names no file version: caches revalidate after an hour (the ETag does name it).
    let mut resp = file::serve_bytes(
        req.method(),
        req.headers(),
        encoded.bytes.clone(),
        encoding.mime(),
        &encoded.etag,
        "public, max-age=3600",
    );
    vary_on_accept(&mut resp, wanted);
    Ok(resp)
}

/// The encoding to make for what was asked and the request's `Accept` header.
pub(super) fn negotiate(wanted: Wanted, headers: &hyper::HeaderMap) -> render::Encoding {
    let accept = headers.get(header::ACCEPT).map_or(&b""[..], |v| v.as_bytes());
    wanted.pick(crate::imgurl::accepts_avif(accept))
}

/// With `auto` the answer depends on `Accept`, and a cache in front has to know it.
pub(super) fn vary_on_accept(resp: &mut Response<Body>, wanted: Wanted) {
    if wanted == Wanted::Auto {
        resp.headers_mut().append(header::VARY, header::HeaderValue::from_static("Accept"));
    }
}

/// An item's picture for a box, made (or found cached) off the async threads within the decode
/// slots: `/resize` and the `/img` URLs. The memory cache is asked under the index's read lock,
/// so a cached answer copies neither the item nor its folder (a miss copies them, in the same
/// lookup). `None`: no such item, or not one `belongs` accepts (an `/img` URL's path must name
/// it exactly).
pub(super) async fn resized(
    app: &App,
    id: u64,
    belongs: impl FnOnce(&Item, &[u8]) -> bool,
    size: (u32, u32),
    fit: render::Fit,
    encoding: render::Encoding,
) -> Result<Option<Arc<crate::thumbs::Encoded>>, ApiError> {
    let found = app.lib.with_item(id, |item, dir| {
        belongs(item, dir).then(|| {
            app.thumbs.resized_cached(item, size, fit, encoding).ok_or_else(|| (item.clone(), dir.to_vec()))
        })
    });
    let (item, dir) = match found.flatten() {
        None => return Ok(None),
        Some(Ok(hit)) => return Ok(Some(hit)),
        Some(Err(miss)) => miss,
    };
    let made = {
        let _slot = app.thumbs.decode_slot().await;
        let thumbs = Arc::clone(&app.thumbs);
        tokio::task::spawn_blocking(move || thumbs.resized_blocking(&item, &dir, size, fit, encoding))
            .await
            .map_err(|e| ApiError::Io(std::io::Error::other(e)))?
    };
    made.map(Some).map_err(|reason| ApiError::CannotResize(reason.to_owned()))
}

/// The box for a width and an optional height: without a height it is as tall as it needs to
/// be, and covering it then means fitting it.
pub(super) fn open_box(h: Option<u32>, fit: render::Fit) -> (u32, render::Fit) {
    match h {
        Some(h) => (h, fit),
        None => (u32::from(u16::MAX), render::Fit::Contain),
    }
}

async fn serve_file(
    lib: &Library,
    id: u64,
    req: &Request<Incoming>,
    download: bool,
    cache_control: &'static str,
) -> Result<Response<Body>, ApiError> {
    let (item, dir) = lib.locate(id).ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
    let rel = RelPath { dir: &dir, name: &item.name };
    let (file, meta) = lib.fs.open_original(rel).await.map_err(ApiError::from_media_io)?;
    let etag = format!("{}-{}", id::encode(id), id::version(meta.len(), crate::fs::mtime_ns(&meta)));
    let name = String::from_utf8_lossy(&item.name);
    let info = FileInfo {
        len: meta.len(),
        modified: meta.modified().map_err(ApiError::Io)?,
        content_type: item.format.mime(),
        etag: &etag,
        download_name: download.then_some(&*name),
        cache_control,
    };
    Ok(file::serve(req.method(), req.headers(), file, &info).await)
}

/// The parameters of `/api/media/{id}/resize`: a box from the configured sizes, how to fill it
/// and the encoding.
#[derive(Debug, PartialEq)]
pub(super) struct ResizeQuery {
    w: u32,
    /// `u16::MAX` when no height is asked: the box is as tall as it needs to be.
    h: u32,
    fit: render::Fit,
    wanted: Wanted,
}

impl ResizeQuery {
    pub(super) fn parse(query: Option<&str>, sizes: &[u32]) -> Result<ResizeQuery, ApiError> {
        let size = |name: &str, v: &str| {
            v.parse::<u32>().ok().filter(|n| sizes.contains(n)).ok_or_else(|| {
                let list: Vec<String> = sizes.iter().map(u32::to_string).collect();
                ApiError::bad(name, format!("one of {}", list.join(", ")))
            })
        };
        let (mut w, mut h, mut fit, mut wanted) =
            (None, None, render::Fit::Contain, Wanted::Is(render::Encoding::Jpeg));
        for (key, value) in query_pairs(query) {
            let v = value.as_ref();
            match key.as_ref() {
                "w" => w = Some(size("w", v)?),
                "h" => h = Some(size("h", v)?),
                "fit" => {
                    fit = match v {
                        "contain" => render::Fit::Contain,
                        "cover" => render::Fit::Cover,
                        _ => return Err(ApiError::bad("fit", "contain or cover")),
                    }
                }
                "format" => {
                    wanted = Wanted::parse(v.as_bytes()).map_err(|why| ApiError::bad("format", why))?
                }
                other => return Err(ApiError::UnknownParameter(other.chars().take(64).collect())),
            }
        }
        let w = w.ok_or_else(|| ApiError::bad("w", "required: the width of the box"))?;
        let (h, fit) = open_box(h, fit);
        Ok(ResizeQuery { w, h, fit, wanted })
    }
}

/// The parameters shared by `/api/media` and `/api/facets`.
#[derive(Debug, Default)]
pub(super) struct ListQuery {
    pub(super) filter: Filter,
    order: Order,
    cursor: Option<id::SortKey>,
    limit: usize,
}

impl ListQuery {
    /// The parameters, narrowed to a share's items when seen through one.
    pub(super) fn parse(query: Option<&str>, view: Option<&Link>) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery { limit: DEFAULT_LIMIT, ..ListQuery::default() };
        for (key, value) in query_pairs(query) {
            let v = value.as_ref();
            match key.as_ref() {
                "limit" => {
                    q.limit = in_range("limit", v, 1..=MAX_LIMIT, format!("a number from 1 to {MAX_LIMIT}"))?
                }
                "cursor" => {
                    q.cursor = Some(id::decode_cursor(v).ok_or_else(|| {
                        ApiError::bad("cursor", "not a cursor from a previous page's next_cursor")
                    })?)
                }
                "order" => {
                    q.order = match v {
                        "desc" => Order::NewestFirst,
                        "asc" => Order::OldestFirst,
                        _ => return Err(ApiError::bad("order", "desc or asc")),
                    }
                }
                other if set_filter(&mut q.filter, other, v)? => {}
                // Which share: already decided by `share::view`.
                "share" => {}
                other => return Err(ApiError::UnknownParameter(other.chars().take(64).collect())),
            }
        }
        if let Some(v) = view {
            super::share::narrow(&mut q.filter, v)?;
        }
        Ok(q)
    }
}

/// Sets the list filter a parameter names, if it names one (year, month, dir, favorite, kind).
pub(super) fn set_filter(filter: &mut Filter, key: &str, v: &str) -> Result<bool, ApiError> {
    match key {
        "year" => filter.year = Some(in_range("year", v, 1..=9999, "a year like 2023")?),
        "month" => filter.month = Some(in_range("month", v, 1..=12, "a month from 1 to 12")?),
        "dir" => filter.dir = Some(v.to_owned()),
        "favorite" => {
            filter.favorite = Some(match v {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ApiError::bad("favorite", "true or false")),
            })
        }
        "kind" => {
            filter.kind = Some(match v {
                "image" => Kind::Image,
                "video" => Kind::Video,
                _ => return Err(ApiError::bad("kind", "image or video")),
            })
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A number parameter within `range`, or a 400 naming the parameter and what it takes.
fn in_range<T: std::str::FromStr + PartialOrd>(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<T>,
    expected: impl Into<String>,
) -> Result<T, ApiError> {
    value.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| ApiError::bad(name, expected))
}

pub(super) fn query_pairs(query: Option<&str>) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
}

/// One item as the API shows it. Text fields are `Display` values written straight into the
/// response, so a page of 500 items costs no allocation per item.
#[derive(Serialize)]
pub(super) struct ItemJson<'a> {
    #[serde(serialize_with = "as_text")]
    id: id::Text,
    name: Cow<'a, str>,
    dir: Cow<'a, str>,
    kind: Kind,
    format: Format,
    mime: &'static str,
    #[serde(serialize_with = "as_text")]
    taken: dates::Iso8601,
    taken_source: DateSource,
    width: Option<u32>,
    height: Option<u32>,
    orientation: u8,
    size: u64,
    favorite: bool,
    camera: Option<Cow<'a, str>>,
    duration_ms: Option<u32>,
    /// Base64 thumbhash (https://evanw.github.io/thumbhash/) for a blurred stand-in while the
    /// thumbnail loads; null until the thumbnail has been made.
    #[serde(serialize_with = "as_optional_text")]
    thumbhash: Option<Base64Display<'a, 'static, base64::engine::GeneralPurpose>>,
    #[serde(serialize_with = "as_text")]
    thumb: RenditionUrl,
    #[serde(serialize_with = "as_text")]
    preview: RenditionUrl,
    #[serde(serialize_with = "as_text")]
    original: OriginalUrl,
}

impl<'a> ItemJson<'a> {
    /// As a share's guests see it: its folder relative to the shared one, or none, and no
    /// favorite (the household's favorites are its own).
    pub(super) fn seen_from(mut self, view: Option<&Link>) -> ItemJson<'a> {
        if let Some(v) = view {
            self.favorite = false;
            self.dir = match self.dir {
                Cow::Borrowed(d) => Cow::Borrowed(super::share::seen_dir(v, d)),
                Cow::Owned(d) => Cow::Owned(super::share::seen_dir(v, &d).to_owned()),
            };
        }
        self
    }

    pub(super) fn new(index: &'a Index, item: &'a Item) -> ItemJson<'a> {
        let text = |bytes: &'a [u8]| String::from_utf8_lossy(bytes);
        ItemJson {
            id: id::Text::new(item.id()),
            name: text(&item.name),
            dir: text(index.dir_of(item)),
            kind: item.kind(),
            format: item.format,
            mime: item.format.mime(),
            taken: dates::Iso8601(item.taken()),
            taken_source: item.date_source,
            width: (item.width != 0).then_some(item.width),
            height: (item.height != 0).then_some(item.height),
            orientation: item.orientation,
            size: item.size,
            favorite: item.favorite,
            camera: (item.camera != 0).then(|| text(index.labels.get(item.camera))),
            duration_ms: item.duration_ms.map(std::num::NonZeroU32::get),
            thumbhash: index
                .thumbhash(item)
                .map(|h| Base64Display::new(h, &base64::engine::general_purpose::STANDARD)),
            thumb: RenditionUrl::new(item, Rendition::Thumb),
            preview: RenditionUrl::new(item, Rendition::Preview),
            original: OriginalUrl(id::Text::new(item.id())),
        }
    }
}

struct OriginalUrl(id::Text);

impl std::fmt::Display for OriginalUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/api/media/{}/original", self.0)
    }
}

fn as_text<S: serde::Serializer>(value: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn as_optional_text<S: serde::Serializer>(
    value: &Option<impl std::fmt::Display>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Folder tree from per-folder counts: each node has its direct `count` and the `total` below it.
/// Seen through a share, the tree starts at the shared folder (and has no folders for a selection
/// or a month), with paths relative to it.
fn folder_tree(index: &Index, counts: &[u64], view: Option<&Link>) -> serde_json::Value {
    #[derive(Default)]
    struct Node {
        count: u64,
        total: u64,
        children: std::collections::BTreeMap<String, Node>,
    }
    let mut root = Node::default();
    for (dir_id, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let path = String::from_utf8_lossy(index.dirs.get(dir_id as u32)).into_owned();
        let mut node = &mut root;
        node.total += count;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node.children.entry(part.to_owned()).or_default();
            node.total += count;
        }
        node.count += count;
    }
    if let Some(v) = view {
        let mut shared = Node::default();
        if let Some(folder) = v.folder() {
            let mut node = Some(&mut root);
            for part in folder.split('/') {
                node = node.and_then(|n| n.children.get_mut(part));
            }
            if let Some(n) = node {
                shared = std::mem::take(n);
            }
        } else {
            shared.total = root.total;
            shared.count = root.total;
        }
        root = shared;
    }
    fn to_json(name: &str, path: &str, node: &Node) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "path": path,
            "count": node.count,
            "total": node.total,
            "children": node.children.iter().map(|(n, child)| {
                let p = if path.is_empty() { n.clone() } else { format!("{path}/{n}") };
                to_json(n, &p, child)
            }).collect::<Vec<_>>(),
        })
    }
    to_json("", "", &root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_queries_take_configured_sizes_and_nothing_else() {
        let sizes = [320, 640];
        let q = ResizeQuery::parse(Some("w=640&h=320&fit=cover&format=png"), &sizes).unwrap();
        assert_eq!(
            q,
            ResizeQuery {
                w: 640,
                h: 320,
                fit: render::Fit::Cover,
                wanted: Wanted::Is(render::Encoding::Png)
            }
        );
        // No height: as tall as needed, and covering means fitting.
        let q = ResizeQuery::parse(Some("fit=cover&w=320"), &sizes).unwrap();
        assert_eq!((q.h, q.fit, q.wanted), (65535, render::Fit::Contain, Wanted::Is(render::Encoding::Jpeg)));
        for bad in [
            "",
            "h=320",
            "w=1",
            "w=640&h=100",
            "w=x",
            "w=640&fit=fill",
            "w=640&format=gif",
            "w=640&format=webp",
            "w=640&q=9",
        ] {
            assert!(ResizeQuery::parse(Some(bad), &sizes).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_queries_refuse_what_they_do_not_know() {
        let q = ListQuery::parse(Some("limit=5&order=asc&year=2020&month=2&kind=video&favorite=1"), None)
            .unwrap();
        assert_eq!(
            (q.limit, q.order, q.filter.year, q.filter.month),
            (5, Order::OldestFirst, Some(2020), Some(2))
        );
        assert_eq!(q.cursor, None);
        let c = id::encode_cursor((-5, 7));
        assert_eq!(ListQuery::parse(Some(&format!("cursor={c}")), None).unwrap().cursor, Some((-5, 7)));
        for bad in
            ["limit=0", "limit=501", "cursor=", "month=13", "kind=gif", "favorite=yes", "order=up", "x=1"]
        {
            assert!(ListQuery::parse(Some(bad), None).is_err(), "{bad}");
        }
    }
}
