//! The web app, embedded in the binary and served with its content hash in every URL.
//!
//! `index.html`, `sw.js` and `manifest.webmanifest` are served at the root with `no-cache`; every
//! other file of `web/` under `/assets/<version>/`, where the version is a hash of all the files,
//! with `immutable` caching. Text files may say `__ASSETS__` (replaced by `/assets/<version>`),
//! `__VERSION__` and `__PRECACHE__` (a JSON array of every asset URL, for the service worker).
//! Text is gzipped once, at first use. With `--web-dir` the files are read from disk on every
//! request instead, for working on the front end without rebuilding. The rule: the binary is the
//! whole product; nothing under `web/` is needed at run time.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;
use hyper::{HeaderMap, Response, StatusCode, header};

use super::{Body, file, full};
use crate::library::probe::Kind;

/// Every file of the web app; `every_web_file_is_embedded` keeps this list complete.
const FILES: &[(&str, &[u8])] = &[
    ("api.js", include_bytes!("../../web/api.js")),
    ("app.js", include_bytes!("../../web/app.js")),
    ("favorites.js", include_bytes!("../../web/favorites.js")),
    ("filters.js", include_bytes!("../../web/filters.js")),
    ("gestures.js", include_bytes!("../../web/gestures.js")),
    ("grid.js", include_bytes!("../../web/grid.js")),
    ("guest.js", include_bytes!("../../web/guest.js")),
    ("icons/apple-touch-icon.png", include_bytes!("../../web/icons/apple-touch-icon.png")),
    ("icons/favicon.svg", include_bytes!("../../web/icons/favicon.svg")),
    ("icons/icon-192.png", include_bytes!("../../web/icons/icon-192.png")),
    ("icons/icon-512.png", include_bytes!("../../web/icons/icon-512.png")),
    ("icons/icon-maskable-512.png", include_bytes!("../../web/icons/icon-maskable-512.png")),
    ("index.html", include_bytes!("../../web/index.html")),
    ("live.js", include_bytes!("../../web/live.js")),
    ("login.js", include_bytes!("../../web/login.js")),
    ("manifest.webmanifest", include_bytes!("../../web/manifest.webmanifest")),
    ("scrubber.js", include_bytes!("../../web/scrubber.js")),
    ("secure.js", include_bytes!("../../web/secure.js")),
    ("select.js", include_bytes!("../../web/select.js")),
    ("share.js", include_bytes!("../../web/share.js")),
    ("style.css", include_bytes!("../../web/style.css")),
    ("sw.js", include_bytes!("../../web/sw.js")),
    ("thumbhash-worker.js", include_bytes!("../../web/thumbhash-worker.js")),
    ("thumbhash.js", include_bytes!("../../web/thumbhash.js")),
    ("timeline.js", include_bytes!("../../web/timeline.js")),
    ("trash.js", include_bytes!("../../web/trash.js")),
    ("ui.js", include_bytes!("../../web/ui.js")),
    ("upload.js", include_bytes!("../../web/upload.js")),
    ("viewer.js", include_bytes!("../../web/viewer.js")),
    ("zoom.js", include_bytes!("../../web/zoom.js")),
];

/// Files served at the root rather than under `/assets/<version>/`: the page, the service worker
/// (its scope is its folder) and the manifest (linked from the page, names the icons).
const ROOT_FILES: &[&str] = &["index.html", "sw.js", "manifest.webmanifest"];

/// The policy the front end keeps: nothing but this server, no inline script.
// SECURITY: limits what an injected file name or a compromised asset could load or run.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self'; script-src 'self'; style-src 'self'; worker-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Debug)]
struct Asset {
    mime: &'static str,
    body: Bytes,
    gzip: Option<Bytes>,
    etag: String,
}

impl Asset {
    fn new(mime: &'static str, body: Bytes) -> Asset {
        let gzip = is_text(mime).then(|| gzip(&body)).filter(|g| g.len() < body.len());
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&body));
        Asset { mime, body, gzip, etag }
    }
}

/// The key of `index.html` as served to a logged-in household (`<html data-session="in">`).
const SESSION_PAGE: &str = "index.html (session)";

/// A preload of what the unfiltered gallery asks for first: exactly the URL and the CORS mode of
/// `getFacets(noFilter)` in web/api.js, or the browser fetches it twice.
const FIRST_FACETS: &str = "</api/facets?>; rel=preload; as=fetch; crossorigin";

/// The web app as served: its version and its files by path.
#[derive(Debug)]
pub(super) struct Bundle {
    version: String,
    files: HashMap<String, Asset>,
}

/// Where the web app comes from.
#[derive(Debug)]
pub(super) enum Source {
    Embedded,
    /// `--web-dir`: read from disk on every request.
    Dir(std::path::PathBuf),
}

impl Bundle {
    fn build(files: Vec<(String, Vec<u8>)>) -> Bundle {
        let mut all = Vec::new();
        for (path, bytes) in &files {
            all.extend_from_slice(path.as_bytes());
            all.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(bytes).to_le_bytes());
        }
        let version = format!("{:010x}", xxhash_rust::xxh3::xxh3_64(&all) & 0xff_ffff_ffff);
        let prefix = format!("/assets/{version}");
        let precache: Vec<String> = files
            .iter()
            .filter(|(p, _)| !ROOT_FILES.contains(&p.as_str()))
            .map(|(p, _)| format!("{prefix}/{p}"))
            .collect();
        let precache = serde_json::to_string(&precache).expect("strings serialize");
        let mut files = files
            .into_iter()
            .map(|(path, bytes)| {
                let mime = mime(&path);
                let body: Bytes = if is_text(mime) {
                    String::from_utf8_lossy(&bytes)
                        .replace("__ASSETS__", &prefix)
                        .replace("__VERSION__", &version)
                        .replace("__PRECACHE__", &precache)
                        .into()
                } else {
                    bytes.into()
                };
                (path, Asset::new(mime, body))
            })
            .collect::<HashMap<_, _>>();
        // The page as a logged-in household gets it: marked, so it skips asking whether it is
        // (one round trip fewer before the first screen).
        if let Some(page) = files.get("index.html").map(|a| String::from_utf8_lossy(&a.body).into_owned()) {
            let marked = page.replacen("<html ", "<html data-session=\"in\" ", 1);
            files.insert(SESSION_PAGE.to_owned(), Asset::new(mime("index.html"), marked.into()));
        }
        Bundle { version, files }
    }

    fn embedded() -> &'static Bundle {
        static BUNDLE: OnceLock<Bundle> = OnceLock::new();
        BUNDLE.get_or_init(|| Bundle::build(FILES.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect()))
    }

    fn from_dir(dir: &Path) -> Bundle {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let p = e.path();
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if let (Ok(bytes), Some(rel)) =
                    (std::fs::read(&p), p.strip_prefix(dir).ok().and_then(|r| r.to_str()))
                {
                    files.push((rel.to_owned(), bytes));
                }
            }
        }
        files.sort();
        Bundle::build(files)
    }
}

/// The preloads of the unfiltered gallery's page: [`FIRST_FACETS`], then `more` (what the
/// first screen shows, from the index).
pub(super) fn first_screen(more: impl FnOnce() -> Vec<String>) -> Vec<String> {
    let mut links = vec![FIRST_FACETS.to_owned()];
    links.extend(more());
    links
}

/// Serves a web app path (`segments` of the URL path), or `None` when it is not one. `session`:
/// the request may see the household's gallery (its page then says so, see [`SESSION_PAGE`]);
/// `preload`: `Link` values to send with the page ([`first_screen`]).
pub(super) fn serve(
    source: &Source,
    segments: &[&str],
    headers: &HeaderMap,
    session: bool,
    preload: &[String],
) -> Option<Response<Body>> {
    let loaded;
    let bundle = match source {
        Source::Embedded => Bundle::embedded(),
        Source::Dir(dir) => {
            loaded = Bundle::from_dir(dir);
            &loaded
        }
    };
    let dev = matches!(source, Source::Dir(_));
    let (path, immutable) = match segments {
        // A share link's page is the app, which finds the link in its own URL.
        [""] | ["s", _] => ("index.html".to_owned(), false),
        [name] if ROOT_FILES.contains(name) => ((*name).to_owned(), false),
        ["assets", version, rest @ ..] if !rest.is_empty() => {
            // An old version's URL still gets today's file, but not cached forever under it.
            (rest.join("/"), *version == bundle.version && !dev)
        }
        _ => return None,
    };
    if ROOT_FILES.contains(&path.as_str()) && segments.first() == Some(&"assets") {
        return None;
    }
    let asset = match (segments, session) {
        ([""], true) => bundle.files.get(SESSION_PAGE)?,
        _ => bundle.files.get(&path)?,
    };
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut resp = Response::builder()
        .header(header::CACHE_CONTROL, cache)
        .header(header::ETAG, &asset.etag)
        .header(
            header::VARY,
            if path == "index.html" { "Accept-Encoding, Cookie" } else { "Accept-Encoding" },
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if path == "index.html" {
        resp = resp
            .header(header::CONTENT_SECURITY_POLICY, CSP)
            .header(header::REFERRER_POLICY, "same-origin")
            .header(header::X_FRAME_OPTIONS, "DENY")
            .header(
                "permissions-policy",
                "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
            );
    }
    if !preload.is_empty() {
        resp = resp.header(header::LINK, preload.join(", "));
    }
    if file::etag_matches_request(headers, asset.etag.trim_matches('"')) {
        return Some(resp.status(StatusCode::NOT_MODIFIED).body(full(Bytes::new())).expect("valid headers"));
    }
    resp = resp.header(header::CONTENT_TYPE, asset.mime);
    let body = match &asset.gzip {
        Some(gz) if accepts_gzip(headers) => {
            resp = resp.header(header::CONTENT_ENCODING, "gzip");
            gz.clone()
        }
        _ => asset.body.clone(),
    };
    Some(resp.body(full(body)).expect("valid headers"))
}

/// Whether the client takes gzip (`Accept-Encoding`, without `q=0`).
pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|t| {
            let mut parts = t.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q0 = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q0
        })
    })
}

fn gzip(bytes: &[u8]) -> Bytes {
    gzip_with(bytes, flate2::Compression::best())
}

/// `bytes` gzipped at `level`.
pub(super) fn gzip_with(bytes: &[u8], level: flate2::Compression) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4 + 64), level);
    enc.write_all(bytes).expect("writing to memory");
    enc.finish().expect("writing to memory").into()
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn is_text(mime: &str) -> bool {
    mime.starts_with("text/") || mime.contains("json") || mime.contains("svg")
}

pub(super) fn not_found_page() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(full(
            &b"<!doctype html><meta charset=utf-8><title>Not found</title><p>Nothing here. <a href=\"/\">Back to the gallery</a>."[..],
        ))
        .expect("static headers are valid")
}

/// A neutral tile standing in for a picture that cannot be shown, with the reason written small
/// along its bottom (e.g. which tool to install).
pub(super) fn placeholder_svg(kind: Kind, reason: &str) -> String {
    let icon = match kind {
        Kind::Image => {
            r##"<path d="M110 280l70-90 50 60 35-40 45 70z" fill="#8888"/><circle cx="260" cy="150" r="22" fill="#8888"/>"##
        }
        Kind::Video => r##"<path d="M165 140v120l100-60z" fill="#8888"/>"##,
    };
    let reason: String = reason
        .chars()
        .map(|c| match c {
            '<' | '>' | '&' | '"' => ' ',
            c => c,
        })
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400"><rect width="400" height="400" fill="#8884"/>{icon}<text x="200" y="370" font-family="sans-serif" font-size="16" fill="#888" text-anchor="middle">{reason}</text></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_web_file_is_embedded() {
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let on_disk: Vec<String> = Bundle::from_dir(&web)
            .files
            .into_keys()
            .filter(|k| k != SESSION_PAGE)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let embedded: Vec<&str> = FILES.iter().map(|(p, _)| *p).collect();
        assert_eq!(on_disk, embedded, "list every file of web/ in FILES (sorted)");
        for (path, bytes) in FILES {
            assert_eq!(std::fs::read(web.join(path)).unwrap(), *bytes, "{path} is stale");
        }
    }

    #[test]
    fn text_names_the_versioned_asset_urls() {
        let b = Bundle::build(vec![
            ("index.html".into(), b"<script src=\"__ASSETS__/app.js\"></script>".to_vec()),
            ("app.js".into(), b"const v = '__VERSION__', all = __PRECACHE__;".to_vec()),
        ]);
        let v = &b.version;
        assert_eq!(b.files["index.html"].body, format!("<script src=\"/assets/{v}/app.js\"></script>"));
        assert_eq!(b.files["app.js"].body, format!("const v = '{v}', all = [\"/assets/{v}/app.js\"];"));
    }

    #[test]
    fn gzip_is_offered_only_when_accepted() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "gzip, deflate, br".parse().unwrap());
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "gzip;q=0, identity".parse().unwrap());
        assert!(!accepts_gzip(&h));
    }
}
