//! The HTTP server: hyper 1 connections over a tokio listener, with graceful shutdown.
//!
//! Each connection is served by hyper's HTTP/1 machinery with a header-read timeout; a request
//! goes to [`routes::route`]. The rule: on shutdown the listener closes first, in-flight requests
//! finish, and only then does the process exit.

mod api;
mod assets;
mod error;
mod events;
pub(crate) mod file;
mod guard;
mod img;
mod memo;
mod metrics;
mod openapi;
mod routes;
mod session;
mod share;
mod tls;
mod trash;
mod upload;
mod zip;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::library::Library;

/// Every response body: in-memory bytes or a streamed file.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// A body from bytes already in memory.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What every request handler can reach.
#[derive(Debug)]
pub(crate) struct App {
    pub lib: Arc<Library>,
    pub thumbs: Arc<crate::thumbs::Thumbs>,
    pub uploads: Arc<crate::upload::Uploads>,
    /// `trash_days`: how long a deleted file stays in the trash.
    pub trash_days: u64,
    /// Signs and checks `/img/...` URLs.
    url_key: crate::imgurl::UrlKey,
    /// `public_dir`: the folder whose image URLs need no signature.
    public_dir: Option<String>,
    /// For their counters in `/api/status`.
    hooks: Arc<crate::hooks::Hooks>,
    /// Where the web app's files come from.
    web: assets::Source,
    auth: Arc<crate::auth::Auth>,
    /// Share links and their guests.
    shares: Arc<crate::shares::Shares>,
    limiter: guard::RateLimiter,
    trusted_proxies: Vec<crate::config::IpNet>,
    /// List and facet answers, reused while the index is unchanged.
    memo: memo::Memo,
    /// Differs between runs, so an ETag from an earlier run never matches an index generation
    /// that happens to have the same number now.
    run_id: u64,
    /// Requests by route and status, and their latency, for `/metrics`.
    pub metrics: metrics::HttpMetrics,
    /// `/api/openapi.json`, made from the route table and this server's resize sizes.
    openapi: bytes::Bytes,
    /// Flips to true on shutdown, so WebSocket clients get a close frame.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Open WebSocket connections (they outlive their HTTP connection), waited for on shutdown.
    sockets: tokio::sync::watch::Sender<usize>,
    /// See [`HttpOpts::config_error`].
    config_error: Option<String>,
    /// See [`HttpOpts::tls`].
    tls: Option<Arc<crate::tls::Tls>>,
}

pub(crate) use events::event_json;

/// Unix seconds as RFC 3339 (`2026-12-04T21:00:00Z`), as the API writes times.
pub(super) fn rfc3339(secs: impl TryInto<i64>) -> String {
    let secs = secs.try_into().unwrap_or(i64::MAX);
    jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH).to_string()
}

/// A JSON answer that no cache keeps (the state of something that changes).
pub(super) fn json_no_store(
    status: hyper::StatusCode,
    value: &impl serde::Serialize,
) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .body(full(serde_json::to_vec(value).expect("API values serialize")))
        .expect("valid headers")
}

/// Runs blocking work (disk, decoding) off the async threads; a panic there goes on here.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Parses a list/facets query string as the API does (for the fuzz targets).
#[doc(hidden)]
pub(crate) fn parse_list_query(query: &str) -> bool {
    api::ListQuery::parse(Some(query), None).is_ok()
}

/// Accepts connections until `shutdown` resolves, then drains in-flight requests.
/// How the server treats clients.
#[derive(Debug)]
pub(crate) struct HttpOpts {
    pub web_dir: Option<std::path::PathBuf>,
    pub auth: Arc<crate::auth::Auth>,
    /// Requests a second per client address (bursts of 4x); 0 for no limit.
    pub rate_limit: u32,
    pub trusted_proxies: Vec<crate::config::IpNet>,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take to send its request headers (slowloris guard); hyper also
    /// applies it to an idle keep-alive connection waiting for its next request.
    pub header_timeout: Duration,
    /// The most a request line and headers may take; more is a 431.
    pub max_header_bytes: usize,
    /// Why the config file was not used (see `--config-fallback`), for `/api/status`.
    pub config_error: Option<String>,
    pub url_key: crate::imgurl::UrlKey,
    pub public_dir: Option<String>,
    pub shares: Arc<crate::shares::Shares>,
    /// HTTPS on the same port, unless `tls = "off"`.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

/// Whether a request came over TLS: in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Secure(pub bool);

pub(crate) async fn serve(
    gallery: &crate::gallery::Gallery,
    hooks: Arc<crate::hooks::Hooks>,
    opts: HttpOpts,
    mut listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // The first listener is accepted from here; every other one hands its connections over.
    let listener = listeners.remove(0);
    let (more_tx, mut more) = tokio::sync::mpsc::channel::<(tokio::net::TcpStream, SocketAddr)>(64);
    let others: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            let tx = more_tx.clone();
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok(conn) => {
                            if tx.send(conn).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
        })
        .collect();
    drop(more_tx);
    let run_id =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let openapi = openapi::document(&gallery.thumbs.opts().resize_sizes);
    let app = Arc::new(App {
        lib: Arc::clone(&gallery.lib),
        thumbs: Arc::clone(&gallery.thumbs),
        uploads: Arc::clone(&gallery.uploads),
        trash_days: gallery.trash_days,
        url_key: opts.url_key,
        public_dir: opts.public_dir,
        hooks,
        web: opts.web_dir.map_or(assets::Source::Embedded, assets::Source::Dir),
        auth: opts.auth,
        shares: opts.shares,
        limiter: guard::RateLimiter::new(opts.rate_limit),
        trusted_proxies: opts.trusted_proxies,
        memo: memo::Memo::new(64),
        run_id,
        metrics: metrics::HttpMetrics::default(),
        openapi,
        shutdown: tokio::sync::watch::channel(false).0,
        sockets: tokio::sync::watch::channel(0).0,
        config_error: opts.config_error,
        tls: opts.tls,
    });
    // Each connection task holds a clone; when all are gone, every connection has finished.
    let (alive, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true)
        // SECURITY: a request head is bounded in bytes and at most 100 headers; larger is a 431.
        .max_buf_size(opts.max_header_bytes)
        .max_headers(100);
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
    tokio::pin!(shutdown);
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's backlog, not in memory.
        let slot = tokio::select! {
            s = Arc::clone(&slots).acquire_owned() => s.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            Some(conn) = more.recv() => conn,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Running out of file descriptors must not end the server: wait, then retry.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (alive, stopping) = (alive.clone(), app.shutdown.subscribe());
        let (app, http) = (Arc::clone(&app), http.clone());
        let header_timeout = opts.header_timeout;
        tokio::spawn(async move {
            let io = match &app.tls {
                Some(tls) => match Io::accept(stream, tls, header_timeout).await {
                    Ok(io) => io,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "no request: the connection went or the TLS handshake failed");
                        return;
                    }
                },
                None => Io::Plain(stream),
            };
            let secure = Secure(matches!(io, Io::Tls(_)));
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let app = Arc::clone(&app);
                req.extensions_mut().insert(secure);
                async move { Ok::<_, Infallible>(routes::route(&app, req, peer).await) }
            });
            let conn = http.serve_connection(TokioIo::new(io), service).with_upgrades();
            if let Err(e) = drive(conn, stopping).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(alive);
            drop(slot);
        });
    }
    drop(listener);
    for other in others {
        other.abort();
    }
    drop(more);
    tracing::info!("shutting down: finishing requests in flight");
    app.shutdown.send_replace(true);
    drop(alive);
    let mut sockets = app.sockets.subscribe();
    let drained = async {
        all_done.recv().await;
        let _ = sockets.wait_for(|&n| n == 0).await;
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!("some connections did not finish in time and were closed");
    }
    Ok(())
}

/// Serves a connection until it ends; on shutdown, finishes the request in flight and then closes
/// instead of keeping the connection alive.
async fn drive<S>(
    conn: hyper::server::conn::http1::UpgradeableConnection<TokioIo<Io>, S>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> hyper::Result<()>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = async { stopping.wait_for(|&s| s).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// A connection: plain HTTP, or HTTP inside TLS, told apart by its first byte.
#[derive(Debug)]
enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl Io {
    /// Waits (up to `timeout`, as for request headers) for the first byte; a TLS handshake record
    /// is answered with TLS, anything else is plain HTTP.
    async fn accept(
        stream: tokio::net::TcpStream,
        tls: &crate::tls::Tls,
        timeout: Duration,
    ) -> std::io::Result<Io> {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "nothing sent in time");
        let mut first = [0u8; 1];
        let n = tokio::time::timeout(timeout, stream.peek(&mut first)).await.map_err(|_| timed_out())??;
        if n == 0 || first[0] != crate::tls::HANDSHAKE_RECORD {
            return Ok(Io::Plain(stream));
        }
        let tls =
            tokio::time::timeout(timeout, tls.acceptor().accept(stream)).await.map_err(|_| timed_out())??;
        Ok(Io::Tls(Box::new(tls)))
    }
}

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The peer address type handlers receive (for logs now, rate limits later).
pub(crate) type Peer = SocketAddr;
