//! The upload routes: tus 1.0 (core, creation and termination) for resumable uploads, and a plain
//! `PUT /api/upload/DIR/NAME` for cameras and scripts (`curl -T`).
//!
//! The rule: this module speaks HTTP and nothing else. It reads headers and streams the body in
//! chunks to [`crate::upload`], which decides where the bytes go and what is refused; a success
//! is sent only once `upload` says the file is durable.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, header};

use super::error::ApiError;
use super::{App, Body, api, full};
use crate::library::MediaEvent;
use crate::upload::{Landed, Scope, Upload, UploadError};

const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,termination";
/// Bytes gathered from the body before each write to disk.
const CHUNK: usize = 1 << 20;
/// How long a finished upload waits for the index to list it, so the answer can be the item.
const INDEX_WAIT: Duration = Duration::from_secs(5);
/// The header naming the media id of a finished tus upload.
const MEDIA_ID: &str = "spis-media-id";

/// `POST /api/uploads` (tus creation) and `OPTIONS /api/uploads` (tus discovery).
pub(super) async fn start(
    app: &Arc<App>,
    req: &Request<Incoming>,
    scope: Scope<'_>,
) -> Result<Response<Body>, ApiError> {
    if *req.method() == Method::OPTIONS {
        return Ok(tus(StatusCode::NO_CONTENT)
            .header("tus-version", TUS_VERSION)
            .header("tus-extension", TUS_EXTENSIONS)
            .header("tus-max-size", app.uploads.max_bytes().to_string())
            .body(full(""))
            .expect("valid headers"));
    }
    check_tus(req.headers())?;
    let length = number_header(req.headers(), "upload-length")?.ok_or(ApiError::BadHeader {
        name: "upload-length",
        reason: "required (deferred lengths are not supported)".into(),
    })?;
    let meta = Metadata::parse(req.headers())?;
    let name = meta.name.as_deref().ok_or(ApiError::BadHeader {
        name: "upload-metadata",
        reason: "it must name the file: filename (base64)".into(),
    })?;
    let target = app.uploads.target(meta.dir.as_deref(), name, meta.mtime, scope)?;
    if length == 0 {
        return Err(UploadError::NotMedia("the file is empty".into()).into());
    }
    let uploads = Arc::clone(&app.uploads);
    let owned = owned_scope(scope);
    let id = blocking(move || {
        let upload = uploads.start(target, Some(length), true, owned.as_scope())?;
        let id = upload.id().to_owned();
        upload.pause()?;
        Ok(id)
    })
    .await?;
    tracing::info!(id, length, "resumable upload started");
    Ok(tus(StatusCode::CREATED)
        .header(header::LOCATION, format!("/api/uploads/{id}"))
        .header(header::CACHE_CONTROL, "no-store")
        .body(full(""))
        .expect("valid headers"))
}

/// `HEAD`, `PATCH` and `DELETE /api/uploads/{upload}` (tus core and termination).
pub(super) async fn resume(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    id: &str,
    scope: Scope<'_>,
) -> Result<Response<Body>, ApiError> {
    check_tus(req.headers())?;
    let uploads = Arc::clone(&app.uploads);
    let (owned, id) = (owned_scope(scope), id.to_owned());
    match *req.method() {
        Method::HEAD => {
            let p = blocking(move || uploads.progress(&id, owned.as_scope())).await?;
            let mut resp = tus(StatusCode::OK)
                .header(header::CACHE_CONTROL, "no-store")
                .header("upload-offset", p.offset.to_string());
            if let Some(length) = p.length {
                resp = resp.header("upload-length", length.to_string());
            }
            if let Some(landed) = &p.landed {
                resp = resp.header(MEDIA_ID, crate::library::id::encode(landed.id()));
            }
            Ok(resp.body(full("")).expect("valid headers"))
        }
        Method::DELETE => {
            blocking(move || uploads.cancel(&id, owned.as_scope())).await?;
            Ok(tus(StatusCode::NO_CONTENT).body(full("")).expect("valid headers"))
        }
        _ => patch(app, req, id, owned).await,
    }
}

async fn patch(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    id: String,
    scope: OwnedScope,
) -> Result<Response<Body>, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.eq_ignore_ascii_case("application/offset+octet-stream") {
        return Err(ApiError::BadContentType("application/offset+octet-stream (tus PATCH)"));
    }
    let sent = number_header(req.headers(), "upload-offset")?
        .ok_or(ApiError::BadHeader { name: "upload-offset", reason: "required".into() })?;
    let uploads = Arc::clone(&app.uploads);
    let upload = blocking(move || uploads.resume(&id, scope.as_scope())).await?;
    if upload.offset() != sent {
        return Err(UploadError::WrongOffset { have: upload.offset(), sent }.into());
    }
    if let (Some(length), Some(body)) = (upload.length(), number_header(req.headers(), "content-length")?)
        && sent.saturating_add(body) > length
    {
        return Err(UploadError::TooLong(length).into());
    }
    let events = app.lib.subscribe();
    let (upload, written) = write_body(upload, req.body_mut()).await;
    let upload = match written {
        Ok(()) => upload,
        Err(e) => {
            refuse_or_keep(upload, &e).await;
            return Err(e);
        }
    };
    if !upload.is_complete() {
        let offset = blocking(move || upload.pause()).await?;
        return Ok(tus(StatusCode::NO_CONTENT)
            .header("upload-offset", offset.to_string())
            .body(full(""))
            .expect("valid"));
    }
    let length = upload.offset();
    let landed = finish(upload).await?;
    let _ = indexed(app, &landed, events).await;
    Ok(tus(StatusCode::NO_CONTENT)
        .header("upload-offset", length.to_string())
        .header(MEDIA_ID, crate::library::id::encode(landed.id()))
        // The same name had the same bytes already: nothing was added.
        .header("spis-existed", if landed.existed { "true" } else { "false" })
        .body(full(""))
        .expect("valid headers"))
}

/// `PUT /api/upload/{path*}`: one file, the whole body, to `DIR/NAME` (or to the default folder
/// with only a `NAME`).
pub(super) async fn put(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    path: &[&str],
    scope: Scope<'_>,
) -> Result<Response<Body>, ApiError> {
    let parts: Vec<String> = path.iter().map(|p| decode_segment(p)).collect::<Result<_, _>>()?;
    let (name, dir) = parts.split_last().ok_or_else(|| ApiError::bad("path", "DIR/NAME of the file"))?;
    let dir = dir.join("/");
    let mtime = mtime_param(req.uri().query())?;
    let target =
        app.uploads.target(Some(&dir).filter(|d| !d.is_empty()).map(String::as_str), name, mtime, scope)?;
    let length = number_header(req.headers(), "content-length")?;
    if length == Some(0) {
        return Err(UploadError::NotMedia("the file is empty".into()).into());
    }
    let events = app.lib.subscribe();
    let body = req.body_mut().into_data_stream();
    let landed = store_one_shot(app, target, length, scope, body, |_| ApiError::BodyCut).await?;
    tracing::info!(dir = landed.dir, name = landed.name, existed = landed.existed, "upload stored");
    let status = if landed.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok(indexed(app, &landed, events).await.map_or_else(
        || {
            // Not indexed yet (watching is off, or the index is busy): say where it is.
            let body = serde_json::json!({
                "id": crate::library::id::encode(landed.id()), "dir": landed.dir, "name": landed.name,
            });
            Response::builder()
                .status(StatusCode::ACCEPTED)
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(body.to_string()))
                .expect("valid headers")
        },
        |resp| {
            let mut resp = resp;
            *resp.status_mut() = status;
            resp
        },
    ))
}

/// `POST /api/upload`: a `multipart/form-data` form, for cameras and scripts that can only post
/// one (`curl -F file=@snap.jpg`). Each part with a file name is stored as a `PUT` would store it,
/// in the folder named by `dir` (the query, or a form field before the files); other fields are
/// ignored. The files before a refused one stay stored (each was acknowledged as it landed).
pub(super) async fn form(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    scope: Scope<'_>,
) -> Result<Response<Body>, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::BadContentType("multipart/form-data with a boundary"))?;
    let (mut dir, mut mtime) = form_params(req.uri().query())?;
    let mut form = multer::Multipart::new(req.body_mut().into_data_stream(), boundary);
    let mut landed = Vec::new();
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            let key = field.name().unwrap_or("").to_owned();
            let value = small_field(&mut field).await?;
            match &*key {
                "dir" => dir = Some(value),
                "mtime" => mtime = Some(mtime_value(&value)?),
                _ => {}
            }
            continue;
        };
        let target =
            app.uploads.target(dir.as_deref().filter(|d| !d.is_empty()), &file_name, mtime, scope)?;
        let file = store_one_shot(app, target, None, scope, field, bad_form).await?;
        tracing::info!(dir = file.dir, name = file.name, existed = file.existed, "upload stored (form)");
        landed.push(file);
    }
    if landed.is_empty() {
        return Err(ApiError::bad("file", "the form has no file (a part with a filename)"));
    }
    // Listed before the answer, as for a PUT, so a client can go straight to the items.
    for file in &landed {
        if indexed(app, file, app.lib.subscribe()).await.is_none() {
            break;
        }
    }
    let status = if landed.iter().all(|f| f.existed) { StatusCode::OK } else { StatusCode::CREATED };
    let files: Vec<_> = landed
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": crate::library::id::encode(f.id()), "dir": f.dir, "name": f.name, "existed": f.existed,
            })
        })
        .collect();
    Ok(Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(full(serde_json::json!({ "files": files }).to_string()))
        .expect("valid headers"))
}

/// One file, the whole of `body`, put at `target` (a PUT, or one part of a form): refused before
/// a byte is read when `length` is too large or there is no room, abandoned on any error, and
/// durable when this returns.
async fn store_one_shot<S, E>(
    app: &Arc<App>,
    target: crate::upload::Target,
    length: Option<u64>,
    scope: Scope<'_>,
    body: S,
    cut: impl Fn(E) -> ApiError,
) -> Result<Landed, ApiError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let uploads = Arc::clone(&app.uploads);
    let owned = owned_scope(scope);
    let upload = blocking(move || uploads.start(target, length, false, owned.as_scope())).await?;
    let (upload, written) = write_stream(upload, body, cut).await;
    if let Err(e) = written {
        super::blocking(move || upload.abandon()).await;
        return Err(e);
    }
    finish(upload).await
}

/// A form's text field, up to 4 KiB.
async fn small_field(field: &mut multer::Field<'_>) -> Result<String, ApiError> {
    const MAX: usize = 4096;
    let mut value = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
        value.extend_from_slice(&chunk);
        if value.len() > MAX {
            return Err(ApiError::bad(field.name().unwrap_or("field"), "longer than 4 KiB"));
        }
    }
    String::from_utf8(value).map_err(|_| ApiError::bad(field.name().unwrap_or("field"), "not UTF-8"))
}

fn bad_form(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamReadFailed(_) => ApiError::BodyCut,
        other => ApiError::bad("body", format!("not a valid multipart/form-data body: {other}")),
    }
}

/// `dir` and `mtime` from the query of a form upload.
fn form_params(query: Option<&str>) -> Result<(Option<String>, Option<i64>), ApiError> {
    let (mut dir, mut mtime) = (None, None);
    for (k, v) in super::api::query_pairs(query) {
        match &*k {
            "dir" => dir = Some(v.into_owned()),
            "mtime" => mtime = Some(mtime_value(&v)?),
            other => return Err(ApiError::UnknownParameter(other.chars().take(64).collect())),
        }
    }
    Ok((dir, mtime))
}

/// Streams the body into the upload in chunks, each written off the async threads. The upload
/// comes back either way, for the caller to finish, keep or abandon.
async fn write_body(upload: Upload, body: &mut Incoming) -> (Upload, Result<(), ApiError>) {
    write_stream(upload, body.into_data_stream(), |_| ApiError::BodyCut).await
}

/// [`write_body`] for any stream of bytes (a whole body, or one part of a form); `cut` says what
/// a failed read means. Two buffers take turns: one chunk is written on a blocking thread while
/// the next arrives, so the network and the disk work at the same time.
async fn write_stream<S, E>(
    upload: Upload,
    mut stream: S,
    cut: impl Fn(E) -> ApiError,
) -> (Upload, Result<(), ApiError>)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    use futures_util::StreamExt as _;
    type Written = (Upload, Result<(), UploadError>, Vec<u8>);
    let mut buf = Vec::with_capacity(CHUNK);
    let mut spare = Some(Vec::with_capacity(CHUNK));
    let mut held = Some(upload);
    let mut in_flight: Option<tokio::task::JoinHandle<Written>> = None;
    // Waits for the write in flight; its buffer comes back for reuse.
    async fn settle(
        in_flight: &mut Option<tokio::task::JoinHandle<Written>>,
        held: &mut Option<Upload>,
        spare: &mut Option<Vec<u8>>,
    ) -> Result<(), UploadError> {
        let Some(handle) = in_flight.take() else { return Ok(()) };
        let (upload, written, buf) = match handle.await {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        *held = Some(upload);
        *spare = Some(buf);
        written
    }
    let failed = loop {
        match stream.next().await {
            Some(Ok(data)) => {
                buf.extend_from_slice(&data);
                if buf.len() < CHUNK {
                    continue;
                }
            }
            // What arrived is still written below, so a resumable upload goes on from there.
            Some(Err(e)) => break Some(cut(e)),
            None => break None,
        }
        if let Err(e) = settle(&mut in_flight, &mut held, &mut spare).await {
            return (held.take().expect("back from the write"), Err(e.into()));
        }
        let mut upload = held.take().expect("not in flight");
        let chunk = std::mem::replace(&mut buf, spare.take().unwrap_or_else(|| Vec::with_capacity(CHUNK)));
        in_flight = Some(tokio::task::spawn_blocking(move || {
            let mut chunk = chunk;
            let r = upload.write(&chunk);
            chunk.clear();
            (upload, r, chunk)
        }));
    };
    if let Err(e) = settle(&mut in_flight, &mut held, &mut spare).await {
        return (held.take().expect("back from the write"), Err(e.into()));
    }
    let (upload, written) = write_chunk(held.take().expect("not in flight"), buf).await;
    match failed {
        Some(e) => (upload, Err(e)),
        None => (upload, written),
    }
}

async fn write_chunk(mut upload: Upload, buf: Vec<u8>) -> (Upload, Result<(), ApiError>) {
    if buf.is_empty() {
        return (upload, Ok(()));
    }
    let (upload, r) = super::blocking(move || {
        let r = upload.write(&buf);
        (upload, r)
    })
    .await;
    (upload, r.map_err(ApiError::from))
}

/// After a failed PATCH: a refusal of the file itself (not media, too large) ends the upload;
/// a cut connection keeps what arrived for the client to go on from.
async fn refuse_or_keep(upload: Upload, e: &ApiError) {
    let keep =
        matches!(e, ApiError::BodyCut | ApiError::Upload(UploadError::Busy | UploadError::NoSpace { .. }));
    let _ = tokio::task::spawn_blocking(move || {
        if keep {
            let _ = upload.pause();
        } else {
            upload.abandon();
        }
    })
    .await;
}

async fn finish(upload: Upload) -> Result<Landed, ApiError> {
    blocking(move || upload.finish()).await
}

/// The item's JSON once the index lists it (the watcher sees the rename at once), `None` after
/// [`INDEX_WAIT`].
async fn indexed(
    app: &Arc<App>,
    landed: &Landed,
    mut events: tokio::sync::broadcast::Receiver<Arc<MediaEvent>>,
) -> Option<Response<Body>> {
    let id = landed.id();
    let deadline = tokio::time::Instant::now() + INDEX_WAIT;
    loop {
        if let Ok(resp) = api::item(&app.lib, id, None) {
            return Some(resp);
        }
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return None,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
            Ok(_) => {}
        }
    }
}

/// Runs blocking upload work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UploadError> + Send + 'static,
) -> Result<T, ApiError> {
    super::blocking(f).await.map_err(ApiError::from)
}

/// A [`Scope`] that can move to a blocking thread.
#[derive(Debug, Clone)]
struct OwnedScope(Option<String>);

impl OwnedScope {
    fn as_scope(&self) -> Scope<'_> {
        self.0.as_deref().map_or(Scope::Anywhere, Scope::Below)
    }
}

fn owned_scope(scope: Scope<'_>) -> OwnedScope {
    match scope {
        Scope::Anywhere => OwnedScope(None),
        Scope::Below(dir) => OwnedScope(Some(dir.to_owned())),
    }
}

fn tus(status: StatusCode) -> hyper::http::response::Builder {
    Response::builder().status(status).header("tus-resumable", TUS_VERSION)
}

fn check_tus(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("tus-resumable").map(|v| v.as_bytes()) {
        Some(b"1.0.0") => Ok(()),
        _ => Err(ApiError::TusVersion),
    }
}

fn number_header(headers: &HeaderMap, name: &'static str) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(name) else { return Ok(None) };
    let text = v.to_str().unwrap_or("");
    // Digits only: no sign, no spaces, no exponent.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadHeader { name, reason: "not a number of bytes".into() });
    }
    text.parse().map(Some).map_err(|_| ApiError::BadHeader { name, reason: "too large".into() })
}

/// What `Upload-Metadata` says: comma-separated `key base64value` pairs.
#[derive(Debug, Default)]
struct Metadata {
    name: Option<String>,
    dir: Option<String>,
    mtime: Option<i64>,
}

impl Metadata {
    fn parse(headers: &HeaderMap) -> Result<Metadata, ApiError> {
        let bad = |reason: &str| ApiError::BadHeader { name: "upload-metadata", reason: reason.to_owned() };
        let Some(v) = headers.get("upload-metadata") else { return Ok(Metadata::default()) };
        let text = v.to_str().map_err(|_| bad("not ASCII"))?;
        let mut meta = Metadata::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
            let value = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| bad(&format!("the value of {key} is not base64")))?;
            let value =
                String::from_utf8(value).map_err(|_| bad(&format!("the value of {key} is not UTF-8")))?;
            match key {
                "filename" | "name" => meta.name = Some(value),
                "dir" | "folder" => meta.dir = Some(value),
                // JavaScript's File.lastModified is in milliseconds; `mtime` is in seconds.
                "lastModified" => {
                    meta.mtime = Some(parse_time(&value, 1000).ok_or_else(|| bad("lastModified"))?)
                }
                "mtime" => meta.mtime = Some(parse_time(&value, 1).ok_or_else(|| bad("mtime"))?),
                _ => {}
            }
        }
        Ok(meta)
    }
}

/// A non-negative time in units of `1/per` seconds before year 10000, as seconds.
fn parse_time(text: &str, per: i64) -> Option<i64> {
    let secs = text.split('.').next()?.parse::<i64>().ok()? / per;
    (0..=253_402_300_799).contains(&secs).then_some(secs)
}

/// An `mtime` parameter or form field: Unix seconds.
fn mtime_value(v: &str) -> Result<i64, ApiError> {
    parse_time(v, 1).ok_or_else(|| ApiError::bad("mtime", "Unix seconds"))
}

fn mtime_param(query: Option<&str>) -> Result<Option<i64>, ApiError> {
    let mut mtime = None;
    for (k, v) in super::api::query_pairs(query) {
        match &*k {
            "mtime" => mtime = Some(mtime_value(&v)?),
            other => return Err(ApiError::UnknownParameter(other.chars().take(64).collect())),
        }
    }
    Ok(mtime)
}

/// A path segment, percent-decoded, as UTF-8.
fn decode_segment(raw: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad("path", "not UTF-8 once percent-decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tus_metadata_names_the_file_its_folder_and_time() {
        let mut h = HeaderMap::new();
        // filename "IMG 1.jpg", dir "Cameras/cam1", lastModified 1700000000123 (ms), unknown key.
        h.insert(
            "upload-metadata",
            "filename SU1HIDEuanBn,dir Q2FtZXJhcy9jYW0x, lastModified MTcwMDAwMDAwMDEyMw==,is_confidential"
                .parse()
                .unwrap(),
        );
        let m = Metadata::parse(&h).unwrap();
        assert_eq!(m.name.as_deref(), Some("IMG 1.jpg"));
        assert_eq!(m.dir.as_deref(), Some("Cameras/cam1"));
        assert_eq!(m.mtime, Some(1_700_000_000));
        h.insert("upload-metadata", "filename !!!".parse().unwrap());
        assert!(Metadata::parse(&h).is_err());
    }

    #[test]
    fn byte_counts_are_plain_digits() {
        let mut h = HeaderMap::new();
        for (v, ok) in [
            ("0", true),
            ("123", true),
            ("-1", false),
            ("1e3", false),
            (" 1", false),
            ("99999999999999999999999", false),
        ] {
            h.insert("upload-length", v.parse().unwrap());
            assert_eq!(number_header(&h, "upload-length").is_ok(), ok, "{v}");
        }
    }
}
