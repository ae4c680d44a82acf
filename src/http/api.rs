//! The JSON API handlers: parse the request, ask the library, write JSON.
//!
//! Each handler is a short list of steps: parse and validate parameters (400 naming the
//! parameter), resolve ids through the index (404), call the library, serialize. The rule:
//! nothing a client sends is ever used as a path; files are reached only through indexed items.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use serde::Serialize;

use super::error::ApiError;
use super::file::{self, FileInfo};
use super::{Body, full};
use crate::fs::RelPath;
use crate::library::dates::{self, DateSource};
use crate::library::probe::{Format, Kind};
use crate::library::{FavoriteError, Filter, Index, Item, Library, Order, id};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("API values always serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(full(body))
        .expect("static headers are valid")
}

pub fn health(lib: &Library) -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok", "ready": lib.is_ready() }))
}

pub fn status(lib: &Library) -> Response<Body> {
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
        }),
    )
}

/// `GET /api/media`: one page of items, newest first by default.
pub fn list(lib: &Library, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let q = ListQuery::parse(query)?;
    let index = lib.read();
    let (items, more) = index.page(&q.filter, q.order, q.cursor, q.limit);
    let next_cursor = if more { items.last().map(|i| id::encode_cursor(i.key())) } else { None };
    let body = serde_json::json!({
        "items": items.iter().map(|i| ItemJson::new(&index, i)).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    });
    Ok(json(StatusCode::OK, &body))
}

/// `GET /api/facets`: years with months, and the folder tree, each with counts.
pub fn facets(lib: &Library, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let q = ListQuery::parse(query)?;
    let index = lib.read();
    let f = index.facets(&q.filter);
    let years: Vec<_> = f
        .years
        .iter()
        .map(|(year, count, months)| {
            serde_json::json!({
                "year": year,
                "count": count,
                "months": months.iter().map(|(m, c)| serde_json::json!({"month": m, "count": c})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let body = serde_json::json!({
        "years": years,
        "folders": folder_tree(&index, &f.folder_counts),
        "images": f.images,
        "videos": f.videos,
        "favorites": f.favorites,
    });
    Ok(json(StatusCode::OK, &body))
}

/// `GET /api/media/{id}`.
pub fn item(lib: &Library, id: u64) -> Result<Response<Body>, ApiError> {
    let index = lib.read();
    let item = index.get(id).ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
    Ok(json(StatusCode::OK, &ItemJson::new(&index, item)))
}

/// `PUT`/`DELETE /api/media/{id}/favorite`: answers only once the change is durable.
pub async fn favorite(lib: &Library, id: u64, on: bool) -> Result<Response<Body>, ApiError> {
    // Writing and fsyncing blocks; block_in_place hands this worker's other tasks to another
    // thread meanwhile (the runtime is multi-threaded).
    let result = tokio::task::block_in_place(|| lib.set_favorite(id, on));
    match result {
        Ok(item) => {
            let index = lib.read();
            Ok(json(StatusCode::OK, &ItemJson::new(&index, &item)))
        }
        Err(FavoriteError::NotFound) => Err(ApiError::UnknownMedia(id::encode(id))),
        Err(FavoriteError::Io(e)) => Err(ApiError::FavoriteNotStored(e)),
    }
}

/// `GET /api/media/{id}/original`: the file itself, with ranges and validators.
pub async fn original(lib: &Library, id: u64, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let download = query_pairs(req.uri().query()).any(|(k, v)| k == "download" && v != "0");
    serve_file(lib, id, req, download, "private, no-cache").await
}

/// `GET /api/media/{id}/thumb|preview`. Until the thumbnail pipeline exists, small originals a
/// browser can show are served as they are and everything else gets a placeholder picture.
pub async fn rendition(
    lib: &Library,
    id: u64,
    rendition: &str,
    req: &Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (item, _) = lib.locate(id).ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
    let browser_can_show = matches!(item.format, Format::Jpeg | Format::Png | Format::Gif | Format::Webp);
    let small = item.size <= if rendition == "thumb" { 2 << 20 } else { 8 << 20 };
    if browser_can_show && small {
        return serve_file(lib, id, req, false, "private, no-cache").await;
    }
    let svg = super::assets::placeholder_svg(item.kind());
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "image/svg+xml")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(full(svg))
        .expect("static headers are valid"))
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
    use std::os::unix::fs::MetadataExt as _;
    let mtime_ns = meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec());
    let etag = format!("{}-{}", id::encode(id), id::version(meta.len(), mtime_ns));
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

/// The parameters shared by `/api/media` and `/api/facets`.
#[derive(Debug, Default)]
struct ListQuery {
    filter: Filter,
    order: Order,
    cursor: Option<id::SortKey>,
    limit: usize,
}

impl ListQuery {
    fn parse(query: Option<&str>) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery { limit: DEFAULT_LIMIT, ..ListQuery::default() };
        for (key, value) in query_pairs(query) {
            let v = value.as_ref();
            match key.as_ref() {
                "limit" => {
                    q.limit =
                        v.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                            ApiError::bad("limit", format!("a number from 1 to {MAX_LIMIT}"))
                        })?
                }
                "cursor" => {
                    q.cursor = Some(id::decode_cursor(v).ok_or_else(|| {
                        ApiError::bad("cursor", "not a cursor from a previous page's next_cursor")
                    })?)
                }
                "year" => {
                    q.filter.year = Some(
                        v.parse()
                            .ok()
                            .filter(|y| (1..=9999).contains(y))
                            .ok_or_else(|| ApiError::bad("year", "a year like 2023"))?,
                    )
                }
                "month" => {
                    q.filter.month = Some(
                        v.parse()
                            .ok()
                            .filter(|m| (1..=12).contains(m))
                            .ok_or_else(|| ApiError::bad("month", "a month from 1 to 12"))?,
                    )
                }
                "dir" => q.filter.dir = Some(v.to_owned()),
                "favorite" => {
                    q.filter.favorite = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(ApiError::bad("favorite", "true or false")),
                    })
                }
                "kind" => {
                    q.filter.kind = Some(match v {
                        "image" => Kind::Image,
                        "video" => Kind::Video,
                        _ => return Err(ApiError::bad("kind", "image or video")),
                    })
                }
                "order" => {
                    q.order = match v {
                        "desc" => Order::NewestFirst,
                        "asc" => Order::OldestFirst,
                        _ => return Err(ApiError::bad("order", "desc or asc")),
                    }
                }
                other => return Err(ApiError::UnknownParameter(other.chars().take(64).collect())),
            }
        }
        Ok(q)
    }
}

fn query_pairs(query: Option<&str>) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
}

/// One item as the API shows it.
#[derive(Serialize)]
struct ItemJson<'a> {
    id: String,
    name: Cow<'a, str>,
    dir: Cow<'a, str>,
    kind: Kind,
    format: Format,
    mime: &'static str,
    taken: String,
    taken_source: DateSource,
    width: Option<u32>,
    height: Option<u32>,
    orientation: u8,
    size: u64,
    favorite: bool,
    camera: Option<Cow<'a, str>>,
    lens: Option<Cow<'a, str>>,
    duration_ms: Option<u32>,
    thumb: String,
    preview: String,
    original: String,
}

impl<'a> ItemJson<'a> {
    fn new(index: &'a Index, item: &'a Item) -> ItemJson<'a> {
        let id = id::encode(item.id);
        let v = id::version(item.size, item.mtime_ns);
        let label = |n: u32| (n != 0).then(|| String::from_utf8_lossy(index.labels.get(n)));
        ItemJson {
            thumb: format!("/api/media/{id}/thumb?v={v}"),
            preview: format!("/api/media/{id}/preview?v={v}"),
            original: format!("/api/media/{id}/original"),
            id,
            name: String::from_utf8_lossy(&item.name),
            dir: String::from_utf8_lossy(index.dir_of(item)),
            kind: item.kind(),
            format: item.format,
            mime: item.format.mime(),
            taken: dates::to_iso8601(&item.taken()),
            taken_source: item.date_source,
            width: (item.width != 0).then_some(item.width),
            height: (item.height != 0).then_some(item.height),
            orientation: item.orientation,
            size: item.size,
            favorite: item.favorite,
            camera: label(item.camera),
            lens: label(item.lens),
            duration_ms: item.duration_ms,
        }
    }
}

/// Folder tree from per-folder counts: each node has its direct `count` and the `total` below it.
fn folder_tree(index: &Index, counts: &[u64]) -> serde_json::Value {
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
