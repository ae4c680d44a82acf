//! `GET /metrics`: Prometheus text, protected like the API (a scraper sends an API token as
//! `Authorization: Bearer`). Requests by route and status, latency by route, the index, the
//! thumbnail queue, generation time and cache, WebSocket clients, watching, memory.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::{Response, StatusCode, header};

use super::routes::{APP_SLOT, OTHER_SLOT, ROUTES};
use super::{App, Body, full};
use crate::metrics::{self, Histogram};

/// Route labels: the route table's, then the web app's and unknown paths'; a fixed set, so a
/// scan of random URLs cannot grow the series.
fn label(slot: usize) -> &'static str {
    match ROUTES.get(slot) {
        Some(spec) => spec.label,
        None if slot == APP_SLOT => "app",
        None => "other",
    }
}
const SLOTS: usize = OTHER_SLOT + 1;
/// Status labels kept apart; any other code is counted under "other".
const CODES: &[u16] = &[200, 204, 206, 304, 400, 401, 403, 404, 405, 406, 413, 416, 426, 429, 431, 500, 503];

/// Per route: requests by status, and a latency histogram.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    requests: Box<[AtomicU64]>,
    latency: Box<[Histogram]>,
}

impl Default for HttpMetrics {
    fn default() -> HttpMetrics {
        HttpMetrics {
            requests: (0..SLOTS * (CODES.len() + 1)).map(|_| AtomicU64::new(0)).collect(),
            latency: (0..SLOTS).map(|_| Histogram::new(metrics::REQUEST_BOUNDS)).collect(),
        }
    }
}

impl HttpMetrics {
    /// Counts one answered request of the route in `slot` (see `routes::Matched::slot`; the
    /// method does not matter: a 405 is still that route).
    pub(crate) fn record(&self, route: usize, status: StatusCode, took: Duration) {
        let route = route.min(SLOTS - 1);
        let code = CODES.iter().position(|&c| c == status.as_u16()).unwrap_or(CODES.len());
        self.requests[route * (CODES.len() + 1) + code].fetch_add(1, Ordering::Relaxed);
        self.latency[route].observe(took);
    }
}

/// The whole exposition.
pub(super) fn render(app: &App) -> Response<Body> {
    let mut out = String::with_capacity(16 * 1024);
    let m = &app.metrics;
    metrics::header(
        &mut out,
        "spis_http_requests_total",
        "counter",
        "Requests answered, by route and status.",
    );
    for r in 0..SLOTS {
        let route = label(r);
        for c in 0..=CODES.len() {
            let n = m.requests[r * (CODES.len() + 1) + c].load(Ordering::Relaxed);
            if n > 0 {
                let code = CODES.get(c).map_or_else(|| "other".to_owned(), u16::to_string);
                let _ = writeln!(out, "spis_http_requests_total{{route=\"{route}\",status=\"{code}\"}} {n}");
            }
        }
    }
    metrics::header(
        &mut out,
        "spis_http_request_duration_seconds",
        "histogram",
        "Time from the request to its response head, by route.",
    );
    for r in 0..SLOTS {
        let route = label(r);
        if m.latency[r].count() > 0 {
            m.latency[r].write(
                &mut out,
                "spis_http_request_duration_seconds",
                &format!("route=\"{route}\","),
            );
        }
    }

    let lib = &app.lib;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let counts = lib.read().counts();
    metrics::header(&mut out, "spis_index_items", "gauge", "Photos and videos in the index.");
    let _ = writeln!(out, "spis_index_items{{kind=\"image\"}} {}", counts.images);
    let _ = writeln!(out, "spis_index_items{{kind=\"video\"}} {}", counts.videos);
    metrics::single(&mut out, "spis_favorites", "gauge", "Items marked favorite.", counts.favorites);
    let done = lib.progress.done.load(Ordering::Acquire);
    metrics::single(
        &mut out,
        "spis_indexing_done",
        "gauge",
        "1 once the first index is complete.",
        u8::from(done),
    );

    let t = &app.thumbs.stats;
    let queue =
        n(&t.background_total).saturating_sub(n(&t.background_done)) + app.thumbs.fresh_queued() as u64;
    metrics::single(
        &mut out,
        "spis_thumbnail_queue_length",
        "gauge",
        "Items waiting for a thumbnail.",
        queue,
    );
    metrics::single(
        &mut out,
        "spis_thumbnails_generated_total",
        "counter",
        "Files decoded into a thumbnail and preview (or a resize).",
        n(&t.decoded),
    );
    metrics::single(
        &mut out,
        "spis_thumbnail_failures_total",
        "counter",
        "Files that got a placeholder.",
        n(&t.failed),
    );
    metrics::header(
        &mut out,
        "spis_thumbnail_generation_seconds",
        "histogram",
        "Time to make one file's renditions.",
    );
    t.render_time.write(&mut out, "spis_thumbnail_generation_seconds", "");
    metrics::header(
        &mut out,
        "spis_thumbnail_cache_requests_total",
        "counter",
        "Rendition lookups: from memory, from the disk cache, or made (miss).",
    );
    let (memory, disk, miss) = (n(&t.memory_hits), n(&t.disk_hits), n(&t.decoded));
    let _ = writeln!(out, "spis_thumbnail_cache_requests_total{{result=\"memory\"}} {memory}");
    let _ = writeln!(out, "spis_thumbnail_cache_requests_total{{result=\"disk\"}} {disk}");
    let _ = writeln!(out, "spis_thumbnail_cache_requests_total{{result=\"miss\"}} {miss}");
    let lookups = memory + disk + miss;
    let ratio = if lookups == 0 { 0.0 } else { (memory + disk) as f64 / lookups as f64 };
    metrics::single(
        &mut out,
        "spis_thumbnail_cache_hit_ratio",
        "gauge",
        "Share of rendition lookups served from a cache.",
        ratio,
    );

    metrics::single(
        &mut out,
        "spis_websocket_clients",
        "gauge",
        "Open /api/events connections.",
        *app.sockets.borrow(),
    );
    let w = &lib.live;
    metrics::single(
        &mut out,
        "spis_watch_changes_total",
        "counter",
        "Files added, changed or removed live.",
        n(&w.applied),
    );
    metrics::single(
        &mut out,
        "spis_watch_rescans_total",
        "counter",
        "Rescans of the media folder.",
        n(&w.rescans),
    );
    metrics::single(
        &mut out,
        "spis_watch_overflows_total",
        "counter",
        "Times file events were lost and replaced by a rescan.",
        n(&w.overflows),
    );
    metrics::single(
        &mut out,
        "spis_media_missing",
        "gauge",
        "1 while the media folder is gone (unplugged, unmounted).",
        u8::from(w.media_missing.load(Ordering::Relaxed)),
    );
    metrics::single(
        &mut out,
        "spis_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the server.",
        resident_bytes(),
    );
    metrics::single(
        &mut out,
        "spis_uptime_seconds",
        "gauge",
        "Seconds since start.",
        lib.started.elapsed().as_secs(),
    );
    metrics::header(&mut out, "spis_build_info", "gauge", "The running version.");
    let _ = writeln!(out, "spis_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));

    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(full(out))
        .expect("static headers are valid")
}

/// Resident set size from /proc/self/statm (pages), 0 where that is unavailable.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_its_own_label() {
        let labels: std::collections::HashSet<_> = (0..SLOTS).map(label).collect();
        assert_eq!(labels.len(), SLOTS);
        assert_eq!(label(APP_SLOT), "app");
        assert_eq!(label(OTHER_SLOT), "other");
        let m = HttpMetrics::default();
        m.record(usize::MAX, StatusCode::OK, Duration::ZERO);
        assert_eq!(
            m.requests[OTHER_SLOT * (CODES.len() + 1)].load(Ordering::Relaxed),
            1,
            "out of range is other"
        );
    }
}
