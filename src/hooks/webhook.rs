//! Webhooks: spis POSTs each event as JSON to the configured URLs, signed the way GitHub signs its
//! webhooks (`X-Spis-Signature: sha256=<HMAC of the body>`), and retries failures with backoff.
//!
//! One task per URL delivers that URL's events in order, one at a time, from a bounded queue. The
//! rule: a slow or dead receiver costs dropped events and a few log lines, never a waiting caller
//! — [`Webhook::send`] never blocks, and a full queue gives up its oldest event.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use data_encoding::HEXLOWER;
use hmac::{Hmac, Mac as _};
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use sha2::Sha256;
use tokio::sync::{Notify, watch};

const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A burst of drops is one log line, then at most one line per this interval.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
/// Responses are only read so the connection can be reused; nobody looks at them.
const MAX_RESPONSE_READ: usize = 4096;

/// Where and how to deliver; [`WebhookOpts::new`] fills in the defaults.
pub(crate) struct WebhookOpts {
    pub url: String,
    pub secret: Option<Vec<u8>>,
    /// Per attempt, including reading the response.
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Doubles after each failed attempt, up to a minute.
    pub first_backoff: Duration,
    pub queue: usize,
}

impl WebhookOpts {
    pub(crate) fn new(url: impl Into<String>) -> WebhookOpts {
        WebhookOpts {
            url: url.into(),
            secret: None,
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            first_backoff: Duration::from_secs(1),
            queue: 1000,
        }
    }
}

// By hand, so that printing the options never prints the secret.
impl fmt::Debug for WebhookOpts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookOpts")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("first_backoff", &self.first_backoff)
            .field("queue", &self.queue)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WebhookStats {
    pub delivered: u64,
    /// Given up on: refused by the receiver, or failed on every attempt.
    pub failed: u64,
    /// Pushed out of a full queue.
    pub dropped: u64,
    pub retries: u64,
    pub queued: u64,
}

/// Checks a webhook URL at start-up, so that a typo stops spis instead of failing every delivery.
pub(crate) fn check_url(url: &str) -> Result<Uri, String> {
    // Without this, "receiver.lan:8080" parses as a URL whose scheme is "receiver.lan".
    if !url.contains("://") {
        return Err(format!("webhook URL {url:?} must start with http://"));
    }
    let uri: Uri = url.parse().map_err(|e| format!("webhook URL {url:?} is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(format!(
                "https webhooks are not supported: spis has no TLS client; use http:// to a receiver \
                 on your network or a local proxy such as stunnel, nginx or Caddy that forwards to \
                 the https URL (got {url:?})"
            ));
        }
        Some(s) => return Err(format!("webhook URL {url:?} uses {s}:, but only http:// URLs work")),
        None => return Err(format!("webhook URL {url:?} must start with http://")),
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(format!("webhook URL {url:?} has no host"));
    };
    // The HTTP connector would silently ignore them, so the receiver would see no credentials.
    if authority.as_str().contains('@') {
        return Err(format!(
            "webhook URL {url:?} contains a user name or password, which spis cannot send; \
             use a secret to sign the deliveries instead"
        ));
    }
    Ok(uri)
}

/// A handle to one URL's delivery task; the task stops when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Webhook {
    shared: Arc<Shared>,
    // Only held: when the last clone drops it, the task's receiver sees the channel closed.
    _alive: Arc<watch::Sender<()>>,
}

struct Shared {
    /// The URL without its query string, which may hold a token that does not belong in logs.
    log_url: String,
    capacity: usize,
    queue: Mutex<Queue>,
    wake: Notify,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
}

struct Queue {
    events: VecDeque<Event>,
    last_drop_log: Option<Instant>,
}

struct Event {
    name: &'static str,
    body: Bytes,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The lock is never held across anything that can panic; a poisoned queue is still sound.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Webhook {
    /// Checks the URL and starts the delivery task; must be called inside a tokio runtime.
    pub(crate) fn spawn(opts: WebhookOpts) -> Result<Webhook, String> {
        let uri = check_url(&opts.url)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "webhooks must be started inside the tokio runtime".to_string())?;
        let authority = uri.authority().map_or("", |a| a.as_str());
        let shared = Arc::new(Shared {
            log_url: format!("http://{authority}{}", uri.path()),
            capacity: opts.queue.max(1),
            queue: Mutex::new(Queue { events: VecDeque::new(), last_drop_log: None }),
            wake: Notify::new(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        });
        let (alive, closed) = watch::channel(());
        let mut client = Client::builder(TokioExecutor::new());
        client.pool_timer(TokioTimer::new()).pool_idle_timeout(Duration::from_secs(30));
        let worker = Worker {
            shared: shared.clone(),
            client: client.build(HttpConnector::new()),
            uri,
            secret: opts.secret,
            timeout: opts.timeout,
            max_attempts: opts.max_attempts.max(1),
            first_backoff: opts.first_backoff,
            closed,
        };
        runtime.spawn(worker.run());
        Ok(Webhook { shared, _alive: Arc::new(alive) })
    }

    /// Queues an event; when the queue is full the oldest queued event is dropped to make room.
    pub(crate) fn send(&self, event: &'static str, body: Bytes) {
        let s = &self.shared;
        let log_drop = {
            let mut q = s.queue();
            let mut log = false;
            if q.events.len() >= s.capacity {
                q.events.pop_front();
                s.dropped.fetch_add(1, Relaxed);
                log = q.last_drop_log.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY);
                if log {
                    q.last_drop_log = Some(Instant::now());
                }
            }
            q.events.push_back(Event { name: event, body });
            log
        };
        if log_drop {
            tracing::warn!(
                url = %s.log_url,
                capacity = s.capacity,
                dropped_so_far = s.dropped.load(Relaxed),
                "webhook queue full: dropping the oldest events"
            );
        }
        s.wake.notify_one();
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        let s = &self.shared;
        WebhookStats {
            delivered: s.delivered.load(Relaxed),
            failed: s.failed.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
            retries: s.retries.load(Relaxed),
            queued: s.queue().events.len() as u64,
        }
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook").field("url", &self.shared.log_url).field("stats", &self.stats()).finish()
    }
}

struct Worker {
    shared: Arc<Shared>,
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    secret: Option<Vec<u8>>,
    timeout: Duration,
    max_attempts: u32,
    first_backoff: Duration,
    closed: watch::Receiver<()>,
}

enum Failure {
    Retry(String),
    GiveUp(String),
}

impl Worker {
    async fn run(mut self) {
        loop {
            let next = self.shared.queue().events.pop_front();
            match next {
                Some(event) => self.deliver(event).await,
                None => tokio::select! {
                    () = self.shared.wake.notified() => {}
                    _ = self.closed.changed() => return,
                },
            }
            if self.closed.has_changed().is_err() {
                return;
            }
        }
    }

    async fn deliver(&mut self, event: Event) {
        let delivery = delivery_id();
        let signature = self.secret.as_deref().map(|key| format!("sha256={}", sign(key, &event.body)));
        let url = self.shared.log_url.clone();
        let mut attempt = 1;
        loop {
            let error = match self.attempt(&event, &delivery, signature.as_deref()).await {
                Ok(()) => {
                    self.shared.delivered.fetch_add(1, Relaxed);
                    tracing::debug!(%url, event = event.name, %delivery, attempt, "webhook delivered");
                    return;
                }
                Err(Failure::GiveUp(e)) => {
                    self.shared.failed.fetch_add(1, Relaxed);
                    tracing::warn!(
                        %url,
                        event = event.name,
                        %delivery,
                        error = %e,
                        "webhook refused; not retrying"
                    );
                    return;
                }
                Err(Failure::Retry(e)) => e,
            };
            if attempt >= self.max_attempts {
                self.shared.failed.fetch_add(1, Relaxed);
                tracing::warn!(
                    %url,
                    event = event.name,
                    %delivery,
                    attempts = attempt,
                    %error,
                    "webhook delivery failed; giving up"
                );
                return;
            }
            let delay = self.first_backoff.saturating_mul(1 << (attempt - 1).min(16)).min(MAX_BACKOFF);
            tracing::debug!(%url, event = event.name, %delivery, attempt, %error, ?delay, "webhook retry");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = self.closed.changed() => return,
            }
            self.shared.retries.fetch_add(1, Relaxed);
            attempt += 1;
        }
    }

    async fn attempt(&self, event: &Event, id: &str, signature: Option<&str>) -> Result<(), Failure> {
        let mut req = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("spis/", env!("CARGO_PKG_VERSION")))
            .header("x-spis-event", event.name)
            .header("x-spis-delivery", id);
        if let Some(signature) = signature {
            req = req.header("x-spis-signature", signature);
        }
        let req = req
            .body(Full::new(event.body.clone()))
            .map_err(|e| Failure::GiveUp(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| Failure::Retry(error_chain(&e)))?;
            let status = resp.status();
            let mut body = resp.into_body();
            let mut read = 0;
            while read < MAX_RESPONSE_READ {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                    _ => break,
                }
            }
            Ok(status)
        };
        let status = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Failure::Retry(format!("no response within {:?}", self.timeout)))??;
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::Retry(format!("HTTP {status}")))
        } else {
            Err(Failure::GiveUp(format!("HTTP {status}")))
        }
    }
}

/// hyper's errors say "client error (Connect)" and keep the useful part in their sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let _ = write!(s, ": {inner}");
        source = inner.source();
    }
    s
}

fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    HEXLOWER.encode(&mac.finalize().into_bytes())
}

/// 128 random bits, so receivers can tell a retry from a new event.
fn delivery_id() -> String {
    HEXLOWER.encode(&crate::auth::random::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::sync::Semaphore;

    #[derive(Debug, Clone)]
    struct Received {
        target: String,
        headers: hyper::HeaderMap,
        body: Bytes,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }
    }

    /// A real HTTP server on a free loopback port that records every request. Each request waits
    /// for a permit from `gate` before it is answered with `status(n)`, n counting from 0.
    struct Receiver {
        url: String,
        got: Arc<Mutex<Vec<Received>>>,
        gate: Arc<Semaphore>,
    }

    impl Receiver {
        async fn start(status: fn(usize) -> u16, blocked: bool) -> Receiver {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook?token=t", listener.local_addr().unwrap());
            let got = Arc::new(Mutex::new(Vec::new()));
            let gate = Arc::new(Semaphore::new(if blocked { 0 } else { Semaphore::MAX_PERMITS }));
            let (got2, gate2) = (got.clone(), gate.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (got, gate) = (got2.clone(), gate2.clone());
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (got, gate) = (got.clone(), gate.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let target = parts.uri.to_string();
                            let n = {
                                let mut got = got.lock().unwrap();
                                got.push(Received { target, headers: parts.headers, body });
                                got.len() - 1
                            };
                            gate.acquire().await.unwrap().forget();
                            let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"thanks")));
                            *resp.status_mut() = StatusCode::from_u16(status(n)).unwrap();
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
                }
            });
            Receiver { url, got, gate }
        }

        fn got(&self) -> Vec<Received> {
            self.got.lock().unwrap().clone()
        }
    }

    fn opts(url: &str) -> WebhookOpts {
        WebhookOpts { first_backoff: Duration::from_millis(50), ..WebhookOpts::new(url) }
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn is_delivery_id(s: &str) -> bool {
        s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[tokio::test]
    async fn delivers_a_signed_event() {
        let rx = Receiver::start(|_| 204, false).await;
        let hook = Webhook::spawn(WebhookOpts { secret: Some(b"s3cret".to_vec()), ..opts(&rx.url) }).unwrap();
        let body = Bytes::from_static(br#"{"path":"2024/beach.jpg"}"#);
        hook.send("media.added", body.clone());
        wait_for("the delivery", || hook.stats().delivered == 1).await;

        let got = rx.got();
        assert_eq!(got.len(), 1);
        let req = &got[0];
        assert_eq!(req.body, body);
        assert_eq!(req.target, "/hook?token=t");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("user-agent"), Some(concat!("spis/", env!("CARGO_PKG_VERSION"))));
        assert_eq!(req.header("x-spis-event"), Some("media.added"));
        assert!(is_delivery_id(req.header("x-spis-delivery").unwrap()));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&body);
        let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(req.header("x-spis-signature"), Some(format!("sha256={expected}").as_str()));
        assert_eq!(hook.stats(), WebhookStats { delivered: 1, ..WebhookStats::default() });
    }

    #[test]
    fn signature_matches_rfc_4231() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(is_delivery_id(&delivery_id()));
        assert_ne!(delivery_id(), delivery_id());
    }

    #[test]
    fn debug_hides_the_secret() {
        let o = WebhookOpts { secret: Some(b"s3cret".to_vec()), ..WebhookOpts::new("http://h/") };
        assert!(!format!("{o:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn retries_a_5xx_with_the_same_delivery_id() {
        let rx = Receiver::start(|n| if n == 0 { 500 } else { 200 }, false).await;
        let hook = Webhook::spawn(opts(&rx.url)).unwrap();
        hook.send("media.added", Bytes::from_static(b"{}"));
        wait_for("the retried delivery", || hook.stats().delivered == 1).await;
        let got = rx.got();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].header("x-spis-delivery"), got[1].header("x-spis-delivery"));
        assert_eq!(hook.stats(), WebhookStats { delivered: 1, retries: 1, ..WebhookStats::default() });
    }

    #[tokio::test]
    async fn gives_up_at_once_on_a_4xx() {
        let rx = Receiver::start(|_| 400, false).await;
        let hook = Webhook::spawn(opts(&rx.url)).unwrap();
        hook.send("media.added", Bytes::from_static(b"{}"));
        wait_for("the refusal", || hook.stats().failed == 1).await;
        assert_eq!(rx.got().len(), 1);
        assert_eq!(hook.stats(), WebhookStats { failed: 1, ..WebhookStats::default() });
    }

    #[tokio::test]
    async fn gives_up_on_a_dead_port_after_max_attempts() {
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let o = WebhookOpts { max_attempts: 3, first_backoff: Duration::from_millis(10), ..opts("") };
        let hook = Webhook::spawn(WebhookOpts { url: format!("http://127.0.0.1:{port}/"), ..o }).unwrap();
        hook.send("media.added", Bytes::from_static(b"{}"));
        wait_for("the failure", || hook.stats().failed == 1).await;
        assert_eq!(hook.stats(), WebhookStats { failed: 1, retries: 2, ..WebhookStats::default() });
    }

    #[tokio::test]
    async fn times_out_a_receiver_that_never_answers() {
        let rx = Receiver::start(|_| 200, true).await;
        let o = WebhookOpts { timeout: Duration::from_millis(100), max_attempts: 2, ..opts(&rx.url) };
        let hook = Webhook::spawn(o).unwrap();
        hook.send("media.added", Bytes::from_static(b"{}"));
        wait_for("the failure", || hook.stats().failed == 1).await;
        let got = rx.got();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].header("x-spis-delivery"), got[1].header("x-spis-delivery"));
    }

    #[tokio::test]
    async fn keeps_the_order_of_events() {
        let rx = Receiver::start(|_| 200, false).await;
        let hook = Webhook::spawn(opts(&rx.url)).unwrap();
        for i in 0..10 {
            hook.send("media.added", Bytes::from(format!("{i}")));
        }
        wait_for("ten deliveries", || hook.stats().delivered == 10).await;
        let bodies: Vec<Bytes> = rx.got().into_iter().map(|r| r.body).collect();
        assert_eq!(bodies, (0..10).map(|i| Bytes::from(format!("{i}"))).collect::<Vec<_>>());
        assert!(rx.got().iter().all(|r| r.header("x-spis-signature").is_none()));
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_events() {
        let rx = Receiver::start(|_| 200, true).await;
        let hook = Webhook::spawn(WebhookOpts { queue: 2, ..opts(&rx.url) }).unwrap();
        hook.send("media.added", Bytes::from_static(b"0"));
        // Event 0 is in flight, held by the receiver; 1..4 compete for the two queue slots.
        wait_for("the first request", || rx.got().len() == 1).await;
        for body in [b"1", b"2", b"3", b"4"] {
            hook.send("media.added", Bytes::from_static(body));
        }
        assert_eq!(hook.stats(), WebhookStats { dropped: 2, queued: 2, ..WebhookStats::default() });
        rx.gate.add_permits(100);
        wait_for("three deliveries", || hook.stats().delivered == 3).await;
        let bodies: Vec<Bytes> = rx.got().into_iter().map(|r| r.body).collect();
        assert_eq!(bodies, [&b"0"[..], b"3", b"4"]);
    }

    #[tokio::test]
    async fn the_task_ends_with_the_last_handle() {
        let rx = Receiver::start(|_| 200, false).await;
        let hook = Webhook::spawn(opts(&rx.url)).unwrap();
        let task_state = Arc::downgrade(&hook.shared);
        let clone = hook.clone();
        drop(hook);
        clone.send("media.added", Bytes::from_static(b"{}"));
        wait_for("the delivery", || clone.stats().delivered == 1).await;
        drop(clone);
        wait_for("the task to end", || task_state.strong_count() == 0).await;
    }

    #[test]
    fn checks_urls() {
        assert_eq!(check_url("http://127.0.0.1:8080/hook").unwrap().port_u16(), Some(8080));
        assert!(check_url("http://receiver.lan/a/b?token=x").is_ok());
        assert!(check_url("https://example.com/hook").unwrap_err().contains("no TLS client"));
        for bad in [
            "",
            "receiver.lan/hook",
            "ftp://h/x",
            "http://",
            "http:///x",
            "not a url",
            "http://u:p@h/",
            "h:80",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.starts_with("webhook URL"), "{bad:?}: {e}");
        }
    }
}
