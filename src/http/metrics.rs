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

    for series in SERIES {
        metrics::header(&mut out, series.name, series.kind, series.help);
        for (labels, value) in (series.samples)(app) {
            let _ = writeln!(out, "{}{labels} {value}", series.name);
        }
    }
    metrics::header(
        &mut out,
        "spis_thumbnail_generation_seconds",
        "histogram",
        "Time to make one file's renditions.",
    );
    app.thumbs.stats.render_time.write(&mut out, "spis_thumbnail_generation_seconds", "");

    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(full(out))
        .expect("static headers are valid")
}

/// A series read from the running server at each scrape: its samples, each with its labels
/// (`{kind="image"}`, or empty).
struct Series {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: fn(&App) -> Vec<(String, f64)>,
}

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

fn one(value: impl Into<f64>) -> Vec<(String, f64)> {
    vec![(String::new(), value.into())]
}

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// Every series but the request counters and the histograms, read top to bottom.
const SERIES: &[Series] = &[
    Series {
        name: "spis_index_items",
        kind: GAUGE,
        help: "Photos and videos in the index.",
        samples: |app| {
            let c = app.lib.read().counts();
            vec![(r#"{kind="image"}"#.into(), c.images as f64), (r#"{kind="video"}"#.into(), c.videos as f64)]
        },
    },
    Series {
        name: "spis_favorites",
        kind: GAUGE,
        help: "Items marked favorite.",
        samples: |app| one(app.lib.read().counts().favorites as f64),
    },
    Series {
        name: "spis_indexing_done",
        kind: GAUGE,
        help: "1 once the first index is complete.",
        samples: |app| one(u8::from(app.lib.progress.done.load(Ordering::Acquire))),
    },
    Series {
        name: "spis_thumbnail_queue_length",
        kind: GAUGE,
        help: "Items waiting for a thumbnail.",
        samples: |app| {
            let t = &app.thumbs.stats;
            let background = load(&t.background_total) - load(&t.background_done);
            one(background.max(0.0) + app.thumbs.fresh_queued() as f64)
        },
    },
    Series {
        name: "spis_thumbnails_generated_total",
        kind: COUNTER,
        help: "Files decoded into a thumbnail and preview (or a resize).",
        samples: |app| one(load(&app.thumbs.stats.decoded)),
    },
    Series {
        name: "spis_thumbnail_failures_total",
        kind: COUNTER,
        help: "Files that got a placeholder.",
        samples: |app| one(load(&app.thumbs.stats.failed)),
    },
    Series {
        name: "spis_thumbnail_cache_requests_total",
        kind: COUNTER,
        help: "Rendition lookups: from memory, from the disk cache, or made (miss).",
        samples: |app| {
            let t = &app.thumbs.stats;
            vec![
                (r#"{result="memory"}"#.into(), load(&t.memory_hits)),
                (r#"{result="disk"}"#.into(), load(&t.disk_hits)),
                (r#"{result="miss"}"#.into(), load(&t.decoded)),
            ]
        },
    },
    Series {
        name: "spis_thumbnail_cache_hit_ratio",
        kind: GAUGE,
        help: "Share of rendition lookups served from a cache.",
        samples: |app| {
            let t = &app.thumbs.stats;
            let hits = load(&t.memory_hits) + load(&t.disk_hits);
            let lookups = hits + load(&t.decoded);
            one(if lookups == 0.0 { 0.0 } else { hits / lookups })
        },
    },
    Series {
        name: "spis_websocket_clients",
        kind: GAUGE,
        help: "Open /api/events connections.",
        samples: |app| one(*app.sockets.borrow() as f64),
    },
    Series {
        name: "spis_watch_changes_total",
        kind: COUNTER,
        help: "Files added, changed or removed live.",
        samples: |app| one(load(&app.lib.live.applied)),
    },
    Series {
        name: "spis_watch_rescans_total",
        kind: COUNTER,
        help: "Rescans of the media folder.",
        samples: |app| one(load(&app.lib.live.rescans)),
    },
    Series {
        name: "spis_watch_overflows_total",
        kind: COUNTER,
        help: "Times file events were lost and replaced by a rescan.",
        samples: |app| one(load(&app.lib.live.overflows)),
    },
    Series {
        name: "spis_media_missing",
        kind: GAUGE,
        help: "1 while the media folder is gone (unplugged, unmounted).",
        samples: |app| one(u8::from(app.lib.live.media_missing.load(Ordering::Relaxed))),
    },
    Series {
        name: "spis_process_resident_memory_bytes",
        kind: GAUGE,
        help: "Resident memory of the server.",
        samples: |_| one(resident_bytes() as f64),
    },
    Series {
        name: "spis_uptime_seconds",
        kind: GAUGE,
        help: "Seconds since start.",
        samples: |app| one(app.lib.started.elapsed().as_secs() as f64),
    },
    Series {
        name: "spis_build_info",
        kind: GAUGE,
        help: "The running version.",
        samples: |_| vec![(format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1.0)],
    },
];

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
    fn series_names_are_unique_and_prometheus_shaped() {
        let names: std::collections::HashSet<_> = SERIES.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), SERIES.len());
        for s in SERIES {
            assert!(
                s.name.starts_with("spis_") && s.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert_eq!(s.name.ends_with("_total"), s.kind == COUNTER, "{}", s.name);
            assert!(s.help.ends_with('.'), "{}", s.name);
        }
    }

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
