//! `GET|POST /api/zip`: the items of a selection or of a list filter as one ZIP download,
//! streamed in constant memory with its exact length up front.
//!
//! Steps: parse the ids or the filter (400), resolve them through the index (404), lay the
//! archive out ([`crate::zip::Plan`]), answer the headers, then stream from a blocking thread
//! that reads each file through `fs` as the client takes the bytes (a bounded channel of
//! 256 KiB chunks). The rule: only indexed items go in, reached by their indexed paths, and a
//! file that changed since the plan ends the connection rather than send a wrong archive.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Method, Request, Response, header};

use super::error::ApiError;
use super::{App, Body, api, session};
use crate::fs::RelPath;
use crate::library::{Filter, Order, Within, id};
use crate::shares::Link;
use crate::zip::{self, Entry, Plan};

/// The longest form body a POST may send: about 80,000 ids.
const MAX_FORM: usize = 1 << 20;
/// Bytes per frame, and frames queued ahead of the client.
const CHUNK: usize = 256 * 1024;
const QUEUED: usize = 2;

/// What to put in the archive.
#[derive(Debug, Default)]
struct ZipQuery {
    ids: Vec<u64>,
    filter: Filter,
}

impl ZipQuery {
    fn parse(query: &[u8]) -> Result<ZipQuery, ApiError> {
        let mut q = ZipQuery::default();
        q.add(query)?;
        Ok(q)
    }

    /// Adds the parameters of a query string or form.
    fn add(&mut self, query: &[u8]) -> Result<(), ApiError> {
        let q = self;
        for (key, value) in form_urlencoded::parse(query) {
            match key.as_ref() {
                "ids" => {
                    for raw in value.split(',').filter(|s| !s.is_empty()) {
                        q.ids.push(
                            id::decode(raw)
                                .ok_or_else(|| ApiError::bad("ids", "ids of items, comma-separated"))?,
                        );
                    }
                }
                other if api::set_filter(&mut q.filter, other, &value)? => {}
                // Which share: already decided by `share::view`.
                "share" => {}
                other => return Err(ApiError::UnknownParameter(other.chars().take(64).collect())),
            }
        }
        Ok(())
    }
}

/// One file to read: where it is, and its entry in the plan.
struct Source {
    dir: Vec<u8>,
    name: Box<[u8]>,
}

pub(super) async fn download(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    view: Option<&Link>,
) -> Result<Response<Body>, ApiError> {
    if view.is_some_and(|v| !v.share.downloads) {
        return Err(ApiError::DownloadsOff);
    }
    let mut q = ZipQuery::parse(req.uri().query().unwrap_or("").as_bytes())?;
    if *req.method() == Method::POST {
        let form = "application/x-www-form-urlencoded";
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        match content_type {
            Some(t) if t.starts_with(form) => {
                let body = session::read_body(req, MAX_FORM, "form").await?;
                q.add(&body)?;
            }
            // An empty POST is the query alone.
            None if req.headers().get(header::CONTENT_LENGTH).is_none_or(|l| l == "0") => {}
            _ => return Err(ApiError::BadContentType(form)),
        }
    }
    if let Some(v) = view {
        super::share::narrow(&mut q.filter, v)?;
    }
    let (sources, entries, mut archive) = select(app, &q)?;
    if let Some(v) = view {
        archive = v.share.title.replace(['/', '\\'], "-");
    }
    let plan = Plan::new(entries);
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(header::CONTENT_LENGTH, plan.len())
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_DISPOSITION, super::file::content_disposition(&format!("{archive}.zip")))
        .body(super::full(Bytes::new()))
        .expect("valid headers");
    if *req.method() == Method::HEAD {
        return Ok(resp);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUED);
    let remaining = plan.len();
    let lib = Arc::clone(&app.lib);
    tokio::task::spawn_blocking(move || {
        let mut out = Sender { tx, buf: BytesMut::with_capacity(CHUNK) };
        let open = |i: usize| {
            let s: &Source = &sources[i];
            lib.fs.open_blocking(RelPath { dir: &s.dir, name: &s.name })
        };
        if let Err(e) = zip::write(&plan, open, &mut out)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            tracing::warn!(error = %e, "zip download stopped");
            let _ = out.tx.blocking_send(Err(e));
        }
    });
    *resp.body_mut() = Channel { rx, remaining }.boxed_unsync();
    Ok(resp)
}

/// The files, their entries (named relative to the folder they all share), and the archive's
/// name.
fn select(app: &App, q: &ZipQuery) -> Result<(Vec<Source>, Vec<Entry>, String), ApiError> {
    let index = app.lib.read();
    let items = if q.ids.is_empty() {
        index.page(&q.filter, Order::OldestFirst, None, index.len()).0
    } else {
        let mut items = Vec::with_capacity(q.ids.len());
        let mut seen = std::collections::HashSet::new();
        for &id in &q.ids {
            let item = index.get(id).ok_or_else(|| ApiError::UnknownMedia(id::encode(id)))?;
            // SECURITY: outside a share's view, an id is as unknown as one that does not exist.
            if q.filter.within.is_some()
                && !index.matches(&Filter { within: q.filter.within.clone(), ..Filter::default() }, item)
            {
                return Err(ApiError::UnknownMedia(id::encode(id)));
            }
            if index.matches(&q.filter, item) && seen.insert(id) {
                items.push(item);
            }
        }
        items
    };
    if items.is_empty() {
        return Err(ApiError::NothingToZip);
    }
    let dirs: Vec<&[u8]> = items.iter().map(|i| index.dir_of(i)).collect();
    // A selection or a month shared with guests names no folder: they never saw one.
    let flat = matches!(q.filter.within.as_deref(), Some(Within::Ids(_) | Within::Month(..)));
    let common = if flat { 0 } else { common_dir(&dirs) };
    let names = zip::unique_names(items.iter().zip(&dirs).map(|(item, dir)| {
        let rel = if flat { &[][..] } else { dir.get(common..).unwrap_or_default() };
        let rel = rel.strip_prefix(b"/").unwrap_or(rel);
        let name = String::from_utf8_lossy(&item.name);
        if rel.is_empty() { name.into_owned() } else { format!("{}/{name}", String::from_utf8_lossy(rel)) }
    }));
    let entries = names
        .into_iter()
        .zip(&items)
        .map(|(name, item)| Entry { name, size: item.size, mtime: item.mtime_ns.div_euclid(1_000_000_000) })
        .collect();
    let sources =
        items.iter().zip(&dirs).map(|(i, d)| Source { dir: d.to_vec(), name: i.name.clone() }).collect();
    let folder = String::from_utf8_lossy(dirs[0].get(..common).unwrap_or_default()).into_owned();
    Ok((sources, entries, archive_name(q, &folder)))
}

/// The length of the longest folder prefix (whole path components) all `dirs` share.
fn common_dir(dirs: &[&[u8]]) -> usize {
    let first = dirs[0];
    let mut len = first.len();
    for d in &dirs[1..] {
        len = len.min(d.len());
        let same = first.iter().zip(d.iter()).take(len).take_while(|(a, b)| a == b).count();
        len = same;
        // Back to a component boundary in both.
        while len > 0 && !(boundary(first, len) && boundary(d, len)) {
            len -= 1;
        }
    }
    len
}

fn boundary(dir: &[u8], at: usize) -> bool {
    at == dir.len() || dir.get(at) == Some(&b'/')
}

/// `Trip.zip` for a folder, `2024-05.zip` for a month, `spis-favorites.zip` and so on.
fn archive_name(q: &ZipQuery, folder: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(last) = folder.rsplit('/').next().filter(|s| !s.is_empty()) {
        parts.push(last.to_owned());
    }
    match (q.filter.year, q.filter.month) {
        (Some(y), Some(m)) => parts.push(format!("{y}-{m:02}")),
        (Some(y), None) => parts.push(y.to_string()),
        _ => {}
    }
    if q.filter.favorite == Some(true) {
        parts.push("favorites".into());
    }
    match q.filter.kind {
        Some(crate::media::Kind::Video) => parts.push("videos".into()),
        Some(crate::media::Kind::Image) => parts.push("photos".into()),
        None => {}
    }
    if parts.is_empty() {
        parts.push(if q.ids.is_empty() { "spis".into() } else { "spis-selection".into() });
    }
    parts.join("-")
}

/// The writer side: fills 256 KiB chunks and hands each to the response.
struct Sender {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: BytesMut,
}

impl std::io::Write for Sender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(CHUNK);
        // The client went away: stop reading files.
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}

/// The response side: frames as the writer makes them.
struct Channel {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: u64,
}

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        match std::task::ready!(this.rx.poll_recv(cx)) {
            Some(Ok(chunk)) => {
                this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None if this.remaining > 0 => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the archive ended early",
            )))),
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_folder_ends_at_a_whole_component() {
        let cases: &[(&[&str], &str)] = &[
            (&["2024/Trip", "2024/Trip"], "2024/Trip"),
            (&["2024/Trip", "2024/Trip/day2"], "2024/Trip"),
            (&["2024/Trip", "2024/Tripod"], "2024"),
            (&["2024/Trip", "2025"], ""),
            (&["", "a"], ""),
            (&["a/b/c"], "a/b/c"),
        ];
        for (dirs, want) in cases {
            let dirs: Vec<&[u8]> = dirs.iter().map(|d| d.as_bytes()).collect();
            assert_eq!(&String::from_utf8_lossy(&dirs[0][..common_dir(&dirs)]), want, "{dirs:?}");
        }
    }

    #[test]
    fn ids_and_filters_parse_and_anything_else_is_refused() {
        let a = id::encode(7);
        let q = ZipQuery::parse(format!("ids={a},{a}&year=2024&dir=Trip").as_bytes()).unwrap();
        assert_eq!(q.ids, [7, 7]);
        assert_eq!(q.filter.year, Some(2024));
        assert!(matches!(ZipQuery::parse(b"ids=zz!"), Err(ApiError::BadParameter { .. })));
        assert!(matches!(ZipQuery::parse(b"limit=3"), Err(ApiError::UnknownParameter(_))));
        assert!(matches!(ZipQuery::parse(b"month=13"), Err(ApiError::BadParameter { .. })));
    }

    #[test]
    fn archives_are_named_for_what_they_hold() {
        let mut q = ZipQuery::default();
        assert_eq!(archive_name(&q, ""), "spis");
        assert_eq!(archive_name(&q, "2024/Trip"), "Trip");
        q.filter.year = Some(2024);
        q.filter.month = Some(5);
        assert_eq!(archive_name(&q, ""), "2024-05");
        q.filter = Filter { favorite: Some(true), ..Filter::default() };
        assert_eq!(archive_name(&q, ""), "favorites");
        q = ZipQuery { ids: vec![1], ..ZipQuery::default() };
        assert_eq!(archive_name(&q, ""), "spis-selection");
    }
}
