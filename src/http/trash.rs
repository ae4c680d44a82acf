//! The trash routes: delete (to the trash), "Recently deleted", restore, and delete for good.
//!
//! The rule: a delete is a move the user can undo for `trash_days`; the answer comes once the
//! move is durable and the index no longer lists the item.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde::Serialize;

use super::error::ApiError;
use super::{App, Body, api, blocking, file, full, json_no_store, rfc3339, session};
use crate::fs::trash::Trashed;
use crate::library::id;
use crate::library::trash::TrashError;
use crate::thumbs::{Rendition, Served};

/// The most ids one `POST /api/trash` takes.
const MAX_IDS: usize = 10_000;

/// One file in the trash, as the API shows it.
#[derive(Serialize)]
struct EntryJson {
    id: String,
    /// The id it had in the gallery (and has again once restored to its place).
    media_id: String,
    name: String,
    dir: String,
    kind: &'static str,
    size: u64,
    /// RFC 3339.
    deleted: String,
    /// When it goes for good, RFC 3339.
    purge: String,
    thumb: String,
}

impl EntryJson {
    fn new(e: &Trashed, days: u64) -> EntryJson {
        let name = String::from_utf8_lossy(&e.name).into_owned();
        let kind = crate::media::Format::from_extension(name.rsplit_once('.').map_or("", |(_, x)| x))
            .map_or("image", |f| f.kind().as_str());
        EntryJson {
            media_id: id::encode(id::from_rel_path(&crate::fs::join(&e.dir, &e.name))),
            thumb: format!("/api/trash/{}/thumb", e.id),
            id: e.id.clone(),
            name,
            dir: String::from_utf8_lossy(&e.dir).into_owned(),
            kind,
            size: e.size,
            deleted: rfc3339(e.deleted),
            purge: rfc3339(
                e.deleted.saturating_add(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX)),
            ),
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn classify(e: TrashError, what: &str) -> ApiError {
    match e {
        TrashError::NotFound => ApiError::NotInTrash(what.chars().take(64).collect()),
        TrashError::Io(e) => match e.raw_os_error() {
            Some(libc::EROFS) => ApiError::ReadOnly,
            Some(libc::EXDEV) => ApiError::CannotMove("its folder is now on another drive".into()),
            Some(libc::EACCES | libc::EPERM) => {
                ApiError::CannotMove("the server may not change that folder".into())
            }
            _ if e.kind() == std::io::ErrorKind::PermissionDenied => {
                ApiError::CannotMove("its folder is hidden or spis's own".into())
            }
            _ if e.kind() == std::io::ErrorKind::AlreadyExists => ApiError::CannotMove(e.to_string()),
            _ => ApiError::Io(e),
        },
    }
}

/// Moves items to the trash (for good at once with `trash_days = 0`).
fn trash_ids(app: &App, ids: &[u64]) -> Result<Vec<EntryJson>, ApiError> {
    let now = now();
    let mut out = Vec::with_capacity(ids.len());
    for &media in ids {
        let entry = app.lib.trash(media, now).map_err(|e| match e {
            TrashError::NotFound => ApiError::UnknownMedia(id::encode(media)),
            other => classify(other, ""),
        })?;
        tracing::info!(
            file = %String::from_utf8_lossy(&crate::fs::join(&entry.dir, &entry.name)),
            "moved to the trash"
        );
        if app.trash_days == 0 {
            app.lib.fs.purge(&entry.id).map_err(ApiError::Io)?;
        }
        out.push(EntryJson::new(&entry, app.trash_days));
    }
    Ok(out)
}

/// `DELETE /api/media/{id}`: to the trash; the answer is its trash entry.
pub(super) async fn delete_item(app: &Arc<App>, media: u64) -> Result<Response<Body>, ApiError> {
    let app2 = Arc::clone(app);
    let mut entries = blocking(move || trash_ids(&app2, &[media])).await?;
    Ok(json_no_store(StatusCode::OK, &entries.pop().expect("one")))
}

/// `GET /api/trash` (the list), `POST /api/trash` (move `{"ids": [...]}` there), `DELETE
/// /api/trash` (empty it now).
pub(super) async fn trash(app: &Arc<App>, req: &mut Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let app2 = Arc::clone(app);
    match *req.method() {
        Method::POST => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Ids {
                ids: Vec<String>,
            }
            let ids: Ids = session::read_json(req).await?;
            if ids.ids.is_empty() || ids.ids.len() > MAX_IDS {
                return Err(ApiError::bad("ids", format!("1 to {MAX_IDS} ids of items")));
            }
            let ids: Vec<u64> = ids
                .ids
                .iter()
                .map(|raw| {
                    id::decode(raw).ok_or_else(|| ApiError::UnknownMedia(raw.chars().take(64).collect()))
                })
                .collect::<Result<_, _>>()?;
            let entries = blocking(move || trash_ids(&app2, &ids)).await?;
            Ok(json_no_store(StatusCode::OK, &serde_json::json!({ "items": entries })))
        }
        Method::DELETE => {
            let purged = blocking(move || app2.lib.empty_trash_older_than(0, i64::MAX)).await;
            tracing::info!(purged, "trash emptied");
            Ok(json_no_store(StatusCode::OK, &serde_json::json!({ "purged": purged })))
        }
        _ => {
            let days = app.trash_days;
            let entries = blocking(move || app2.lib.fs.trash_list()).await;
            let items: Vec<EntryJson> = entries.iter().map(|e| EntryJson::new(e, days)).collect();
            Ok(json_no_store(StatusCode::OK, &serde_json::json!({ "items": items, "trash_days": days })))
        }
    }
}

/// `DELETE /api/trash/{trash}`: delete one file for good.
pub(super) async fn purge(app: &Arc<App>, trash_id: &str) -> Result<Response<Body>, ApiError> {
    let (app2, tid) = (Arc::clone(app), trash_id.to_owned());
    blocking(move || app2.lib.fs.purge(&tid))
        .await
        .map_err(|e| classify(TrashError::from_io(e), trash_id))?;
    tracing::info!(id = trash_id, "deleted from the trash for good");
    Ok(Response::builder().status(StatusCode::NO_CONTENT).body(full("")).expect("valid"))
}

/// `POST /api/trash/{trash}/restore`: back to its place; the answer is the item.
pub(super) async fn restore(app: &Arc<App>, trash_id: &str) -> Result<Response<Body>, ApiError> {
    let (app2, tid) = (Arc::clone(app), trash_id.to_owned());
    let item = blocking(move || app2.lib.restore(&tid)).await.map_err(|e| classify(e, trash_id))?;
    tracing::info!(id = trash_id, "restored from the trash");
    api::item(&app.lib, item.id(), None)
}

/// `GET /api/trash/{trash}/thumb`: its thumbnail (the one made before the delete when cached).
pub(super) async fn thumb(
    app: &Arc<App>,
    trash_id: &str,
    req: &Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (app2, tid) = (Arc::clone(app), trash_id.to_owned());
    let _slot = app.thumbs.decode_slot().await;
    let served = blocking(move || {
        let entry = app2.lib.fs.trash_entry(&tid).ok()?;
        let (item, dir) = app2.lib.trashed_item(&entry)?;
        Some((app2.thumbs.get_blocking(&item, &dir, Rendition::Thumb).0, item.kind()))
    })
    .await
    .ok_or_else(|| ApiError::NotInTrash(trash_id.chars().take(64).collect()))?;
    Ok(match served {
        (Served::Ready(r), _) => file::serve_bytes(
            req.method(),
            req.headers(),
            r.bytes.clone(),
            "image/jpeg",
            &r.etag,
            "private, max-age=3600",
        ),
        (Served::Placeholder(reason), kind) => Response::builder()
            .header(header::CONTENT_TYPE, "image/svg+xml")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-spis-placeholder", reason)
            .body(full(super::assets::placeholder_svg(kind, reason)))
            .expect("static headers are valid"),
    })
}
