//! `GET /api/events`: a WebSocket that pushes changes to the gallery as they happen.
//!
//! Messages are JSON text frames: `added`, `changed` and `removed` for media (an item in the same
//! shape as the list API), `indexing` with progress while the folder is being read, and `resync`
//! when the client fell behind and must refetch. A client may pass the `/api/media` filters and
//! then hears only about matching items (an item that stops matching, say a favorite unmarked
//! under `favorite=true`, arrives as `removed`). The rule: a client costs bounded memory whatever
//! it does; one that cannot keep up is told to resync, one that stops answering pings is dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, handshake::derive_accept_key};

use super::api::{ItemJson, ListQuery};
use super::error::ApiError;
use super::{App, Body, full};
use crate::library::{Filter, Library, MediaEvent, id};
use crate::thumbs::Thumbs;

/// How often the server pings, and how long a client may stay silent before it is dropped.
const PING_EVERY: Duration = Duration::from_secs(20);
const SILENT_LIMIT: Duration = Duration::from_secs(60);
/// A message that cannot be written within this time means a stuck client.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Answers the WebSocket handshake and starts the client's task.
pub(super) fn upgrade(app: &Arc<App>, req: &mut Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let q = ListQuery::parse(req.uri().query(), None)?;
    let h = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    let key = h.get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes().to_vec());
    let (Some(key), true, true) =
        (key, has_token(header::UPGRADE, "websocket"), has_token(header::CONNECTION, "upgrade"))
    else {
        return Err(ApiError::WebSocketRequired);
    };
    if h.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        return Err(ApiError::WebSocketRequired);
    }
    // Subscribe before answering, so nothing that happens after the 101 is missed.
    let events = app.lib.subscribe();
    let on_upgrade = hyper::upgrade::on(req);
    let (lib, thumbs) = (Arc::clone(&app.lib), Arc::clone(&app.thumbs));
    let mut shutdown = app.shutdown.subscribe();
    let app = Arc::clone(app);
    app.sockets.send_modify(|n| *n += 1);
    tokio::spawn(async move {
        let _open = OpenSocket(Arc::clone(&app));
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let mut config = WebSocketConfig::default();
        // Clients only send control frames; anything big is a mistake or an attack.
        config.max_message_size = Some(64 << 10);
        config.max_frame_size = Some(64 << 10);
        config.max_write_buffer_size = 1 << 20;
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        let reason = client(lib, thumbs, ws, events, q.filter, &mut shutdown).await;
        tracing::debug!(reason, "websocket client left");
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, derive_accept_key(&key))
        .body(full(Bytes::new()))
        .expect("static headers are valid"))
}

/// Counts a WebSocket as open until dropped, whichever way its task ends.
struct OpenSocket(Arc<App>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.sockets.send_modify(|n| *n -= 1);
    }
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Serves one client until it leaves, stalls or the server stops; returns why it ended.
async fn client(
    lib: Arc<Library>,
    thumbs: Arc<Thumbs>,
    mut ws: Ws,
    mut events: tokio::sync::broadcast::Receiver<Arc<MediaEvent>>,
    filter: Filter,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> &'static str {
    let ready = lib.is_ready();
    let hello = serde_json::json!({ "type": "hello", "ready": ready, "generation": lib.read().generation() });
    if send(&mut ws, hello.to_string().into()).await.is_err() {
        return "could not greet";
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    let mut last_heard = Instant::now();
    // A client greeted with `ready: false` is owed the message that says the index is done, even
    // when the index finishes before the first progress tick.
    let mut last_progress = (!ready).then_some(serde_json::Value::Null);
    loop {
        let mut lagged = false;
        let out: Option<Bytes> = tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => render_for(&lib, &ev, &filter),
                Err(RecvError::Lagged(missed)) => {
                    lagged = true;
                    Some(serde_json::json!({ "type": "resync", "missed": missed }).to_string().into())
                }
                Err(RecvError::Closed) => return "server stopped",
            },
            msg = ws.next() => match msg {
                // tungstenite answers pings itself (on the next write or flush).
                Some(Ok(Message::Close(_))) | None => return "closed by client",
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    None
                }
                Some(Err(_)) => return "protocol error",
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENT_LIMIT {
                    return "stopped answering pings";
                }
                if tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Ping(Bytes::new()))).await.map_or(true, |r| r.is_err()) {
                    return "stuck";
                }
                None
            },
            _ = progress.tick() => {
                let now = indexing(&lib, &thumbs);
                // While the folder is read or the background thumbnails are made, and once more
                // when that ends; a client that connects to an idle server hears nothing.
                let thumbs = &now["thumbnails"];
                let busy = now["done"] == false || thumbs["done"] != thumbs["total"];
                if last_progress.as_ref() != Some(&now) && (busy || last_progress.is_some()) {
                    last_progress = Some(now.clone());
                    Some(now.to_string().into())
                } else {
                    None
                }
            },
            _ = shutdown.changed() => {
                let close = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.send(Message::Close(Some(close)))).await;
                return "server stopped";
            },
        };
        if lagged {
            // The client reloads what it shows after a resync: the rest of the ring is old news,
            // and sending it would only make a slow client lag (and resync) again. From now on.
            events = events.resubscribe();
        }
        if let Some(text) = out
            && send(&mut ws, text).await.is_err()
        {
            // A slow client is not waited for: its events pile up in the shared ring, and when
            // it lags past it, it gets a resync instead of an ever-growing queue.
            return "stuck or gone";
        }
    }
}

async fn send(ws: &mut Ws, text: Bytes) -> Result<(), ()> {
    let text = tokio_tungstenite::tungstenite::Utf8Bytes::try_from(text).map_err(|_| ())?;
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// The `indexing` message: progress of the first index and of the thumbnails.
fn indexing(lib: &Library, thumbs: &Thumbs) -> serde_json::Value {
    let p = &lib.progress;
    let t = thumbs.background_progress();
    serde_json::json!({
        "type": "indexing",
        "done": p.done.load(Ordering::Acquire),
        "found": p.found.load(Ordering::Relaxed),
        "indexed": p.indexed.load(Ordering::Relaxed),
        "thumbnails": { "done": t.done, "total": t.total, "per_second": (t.per_second * 10.0).round() / 10.0, "eta_s": t.eta_s },
    })
}

/// The message for one event as this client should see it, or `None` when it is not for it.
fn render_for(lib: &Library, event: &MediaEvent, filter: &Filter) -> Option<Bytes> {
    let index = lib.read();
    let item = event.item();
    if index.matches(filter, item) {
        return Some(render(&index, event));
    }
    match event {
        // It may have matched before the change: the client drops it if it has it.
        MediaEvent::Changed(_) => Some(removed_json(&index, item)),
        _ => None,
    }
}

/// An event as JSON, the same for WebSocket clients and webhooks.
pub(crate) fn event_json(lib: &Library, event: &MediaEvent) -> Bytes {
    render(&lib.read(), event)
}

fn render(index: &crate::library::Index, event: &MediaEvent) -> Bytes {
    match event {
        MediaEvent::Removed(item) => removed_json(index, item),
        MediaEvent::Added(item) | MediaEvent::Changed(item) | MediaEvent::Restored(item) => {
            #[derive(serde::Serialize)]
            struct Msg<'a> {
                r#type: &'static str,
                item: ItemJson<'a>,
            }
            let msg = Msg { r#type: event.name(), item: ItemJson::new(index, item) };
            serde_json::to_vec(&msg).expect("events always serialize").into()
        }
    }
}

fn removed_json(index: &crate::library::Index, item: &crate::library::Item) -> Bytes {
    serde_json::json!({
        "type": "removed",
        "id": id::encode(item.id()),
        "name": String::from_utf8_lossy(&item.name),
        "dir": String::from_utf8_lossy(index.dir_of(item)),
    })
    .to_string()
    .into()
}
