//! Every route of the server in one table, read top to bottom.
//!
//! The rule: a route is one entry in [`ROUTES`] (its path, methods, who may call it, its metric
//! label and its OpenAPI description) and one arm in [`dispatch`]; the 405 answers, the guard,
//! the metric labels and `/api/openapi.json` are all read from the table. Handlers receive typed
//! arguments (a decoded id, never a path), and anything unmatched is a JSON 404 or 405.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::error::ApiError;
use super::guard::{self, Caller};
use super::openapi::{Doc, Param, Reply};
use super::{
    App, Body, Peer, api, assets, events, img, metrics, openapi, session, share, tls, trash, upload, zip,
};
use crate::library::id;
use crate::thumbs::Rendition;

/// What a route does: the arm of [`dispatch`] that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Route {
    Session,
    Login,
    Logout,
    Setup,
    Password,
    Health,
    Status,
    List,
    Facets,
    Events,
    Item,
    Original,
    Details,
    Resize,
    Thumb,
    Preview,
    Favorite,
    Trash,
    TrashEntry,
    TrashRestore,
    TrashThumb,
    Zip,
    UploadStart,
    UploadResume,
    UploadFile,
    UploadForm,
    OpenApi,
    Metrics,
    Img,
    Shares,
    ShareEntry,
    Guest,
    Tls,
    CaCert,
    CaProfile,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone: the login flow and health checks.
    Public,
    /// The household: a session cookie or an API token (or anyone with `--no-auth`).
    Household,
    /// The household, or an upload-only token (inside its folder): adding files.
    Upload,
    /// The household; and a guest of a share link, to read (GET, HEAD) that share's items only.
    Shared,
}

/// The methods a route answers, and the `Allow` header that lists them.
#[derive(Debug)]
pub(crate) struct Methods {
    pub list: &'static [Method],
    pub allow: &'static str,
}

const GET: Methods = Methods { list: &[Method::GET, Method::HEAD], allow: "GET, HEAD" };
/// A WebSocket upgrade is a GET; a HEAD cannot upgrade.
const GET_ONLY: Methods = Methods { list: &[Method::GET], allow: "GET" };
const POST: Methods = Methods { list: &[Method::POST], allow: "POST" };
const PUT_DELETE: Methods = Methods { list: &[Method::PUT, Method::DELETE], allow: "PUT, DELETE" };
const POST_OPTIONS: Methods = Methods { list: &[Method::POST, Method::OPTIONS], allow: "POST, OPTIONS" };
const HEAD_PATCH_DELETE: Methods =
    Methods { list: &[Method::HEAD, Method::PATCH, Method::DELETE], allow: "HEAD, PATCH, DELETE" };
const PUT: Methods = Methods { list: &[Method::PUT], allow: "PUT" };
const GET_DELETE: Methods =
    Methods { list: &[Method::GET, Method::HEAD, Method::DELETE], allow: "GET, HEAD, DELETE" };
const GET_POST_DELETE: Methods = Methods {
    list: &[Method::GET, Method::HEAD, Method::POST, Method::DELETE],
    allow: "GET, HEAD, POST, DELETE",
};
const DELETE: Methods = Methods { list: &[Method::DELETE], allow: "DELETE" };
const GET_POST: Methods =
    Methods { list: &[Method::GET, Method::HEAD, Method::POST], allow: "GET, HEAD, POST" };
const GET_POST_DELETE_NO_HEAD: Methods =
    Methods { list: &[Method::GET, Method::POST, Method::DELETE], allow: "GET, POST, DELETE" };

/// One entry of the table.
#[derive(Debug)]
pub(crate) struct Spec {
    pub route: Route,
    /// Path segments; `{id}` stands for a media id, `{upload}` for an upload's id, `{trash}` for a
    /// trash entry's id, and a last
    /// `{path*}` for one or more segments (a folder and a file name).
    pub path: &'static [&'static str],
    pub methods: Methods,
    pub access: Access,
    /// The `route` label of its metrics.
    pub label: &'static str,
    pub doc: Doc,
}

use Access::{Household, Public, Shared, Upload};

const LIST_FILTERS: &[Param] = &[
    Param::int("year", "Only items taken in this year", 1, 9999),
    Param::int("month", "Only items taken in this month (with year)", 1, 12),
    Param::text(
        "dir",
        "Only items in this folder and below (a `dir` of an item, or a folder from /api/facets)",
    ),
    Param::choice("favorite", "Only favorites (true) or only the others (false)", &["true", "false"]),
    Param::choice("kind", "Only images or only videos", &["image", "video"]),
];
/// The household's view of a share link, as its guests see it.
const SHARE_VIEW: &[Param] = &[Param::pattern(
    "share",
    "Only the items of this share link, as its guests see them",
    openapi::SHARE_PATTERN,
)];
const LIST_PAGING: &[Param] = &[
    Param::int("limit", "Items on this page", 1, 500),
    Param::pattern("cursor", "The `next_cursor` of the previous page", openapi::CURSOR_PATTERN),
    Param::choice("order", "Newest first (desc, the default) or oldest first", &["desc", "asc"]),
];
const PICTURE: Reply = Reply::Binary(&["image/jpeg", "image/svg+xml"]);
const THUMB: Reply = Reply::Binary(&["image/jpeg", "image/avif", "image/svg+xml"]);

/// Every route, read top to bottom.
pub(crate) const ROUTES: &[Spec] = &[
    // Logging in.
    Spec {
        route: Route::Session,
        path: &["api", "session"],
        methods: GET,
        access: Public,
        label: "session",
        doc: Doc::new("Whether a password is needed or must be chosen, and whether this client is logged in")
            .reply(Reply::Json("Session")),
    },
    Spec {
        route: Route::Login,
        path: &["api", "login"],
        methods: POST,
        access: Public,
        label: "login",
        doc: Doc::new("Log in with the household password: sets the session cookie")
            .body("Password")
            .reply(Reply::Json("Ok")),
    },
    Spec {
        route: Route::Logout,
        path: &["api", "logout"],
        methods: POST,
        access: Public,
        label: "logout",
        doc: Doc::new("End this session, here and on every replica").reply(Reply::Json("Ok")),
    },
    Spec {
        route: Route::Setup,
        path: &["api", "setup"],
        methods: POST,
        access: Public,
        label: "setup",
        doc: Doc::new("Choose the household password on the first visit")
            .body("NewPassword")
            .reply(Reply::Json("Ok")),
    },
    Spec {
        route: Route::Password,
        path: &["api", "password"],
        methods: POST,
        access: Household,
        label: "password",
        doc: Doc::new("Change the household password; every other session ends")
            .body("PasswordChange")
            .reply(Reply::Json("Ok")),
    },
    // The JSON API.
    Spec {
        route: Route::Health,
        path: &["api", "health"],
        methods: GET,
        access: Public,
        label: "health",
        doc: Doc::new("Liveness, and whether the first index is complete").reply(Reply::Json("Health")),
    },
    Spec {
        route: Route::Status,
        path: &["api", "status"],
        methods: GET,
        access: Household,
        label: "status",
        doc: Doc::new("Index, thumbnail, watch and hook counters").reply(Reply::Json("Status")),
    },
    Spec {
        route: Route::List,
        path: &["api", "media"],
        methods: GET,
        access: Shared,
        label: "list",
        doc: Doc::new("One page of photos and videos, newest first by default")
            .params(LIST_PAGING)
            .params(LIST_FILTERS)
            .params(SHARE_VIEW)
            .reply(Reply::Json("Page")),
    },
    Spec {
        route: Route::Facets,
        path: &["api", "facets"],
        methods: GET,
        access: Shared,
        label: "facets",
        doc: Doc::new("Years and months, folders, and kind and favorite totals, with counts")
            .params(LIST_FILTERS)
            .params(SHARE_VIEW)
            .reply(Reply::Json("Facets")),
    },
    Spec {
        route: Route::Events,
        path: &["api", "events"],
        methods: GET_ONLY,
        access: Household,
        label: "events",
        doc: Doc::new("WebSocket: items added, changed and removed as they happen (426 without an upgrade)")
            .params(LIST_FILTERS)
            .reply(Reply::Upgrade),
    },
    Spec {
        route: Route::Item,
        path: &["api", "media", "{id}"],
        methods: GET_DELETE,
        access: Shared,
        label: "item",
        doc: Doc::new(
            "One item (GET), or move its file to the trash (DELETE: answers with the trash entry once the \
             move is durable)",
        )
        .reply(Reply::Json("Item"))
        .delete_reply(Reply::Json("TrashEntry")),
    },
    Spec {
        route: Route::Original,
        path: &["api", "media", "{id}", "original"],
        methods: GET,
        access: Shared,
        label: "original",
        doc: Doc::new("The file itself, with ranges and validators")
            .params(&[Param::choice("download", "Ask the browser to save it (1)", &["0", "1"])])
            .reply(Reply::Binary(&["*/*"])),
    },
    Spec {
        route: Route::Details,
        path: &["api", "media", "{id}", "details"],
        methods: GET,
        access: Shared,
        label: "details",
        doc: Doc::new("Camera make, model and lens, read from the file").reply(Reply::Json("Details")),
    },
    Spec {
        route: Route::Resize,
        path: &["api", "media", "{id}", "resize"],
        methods: GET,
        access: Shared,
        label: "resize",
        doc: Doc::new("The picture fitted into a box of a configured size (resize_sizes)")
            .params(&[
                Param::size("w", "Width of the box, one of resize_sizes").required(),
                Param::size("h", "Height of the box, one of resize_sizes (none: as tall as needed)"),
                Param::choice(
                    "fit",
                    "Fit inside the box, or cover it and crop the middle",
                    &["contain", "cover"],
                ),
                Param::choice(
                    "format",
                    "Encoding; auto is AVIF when Accept names image/avif, else JPEG (Vary: Accept)",
                    &["jpeg", "png", "avif", "auto"],
                ),
            ])
            .reply(Reply::Binary(&["image/jpeg", "image/png", "image/avif"])),
    },
    Spec {
        route: Route::Thumb,
        path: &["api", "media", "{id}", "thumb"],
        methods: GET,
        access: Shared,
        label: "thumb",
        doc: Doc::new(
            "The 400 px thumbnail: AVIF when Accept names image/avif and the background pass has made \
             it, else JPEG (Vary: Accept; with --thumb-avif); a placeholder picture when none can be made",
        )
        .reply(THUMB),
    },
    Spec {
        route: Route::Preview,
        path: &["api", "media", "{id}", "preview"],
        methods: GET,
        access: Shared,
        label: "preview",
        doc: Doc::new("The 1600 px preview (a placeholder picture when none can be made)").reply(PICTURE),
    },
    Spec {
        route: Route::Favorite,
        path: &["api", "media", "{id}", "favorite"],
        methods: PUT_DELETE,
        access: Household,
        label: "favorite",
        doc: Doc::new("Mark (PUT) or unmark (DELETE) a favorite; answers once it is durable")
            .reply(Reply::Json("Item")),
    },
    Spec {
        route: Route::Zip,
        path: &["api", "zip"],
        methods: GET_POST,
        access: Shared,
        label: "zip",
        doc: Doc::new(
            "The items named by `ids`, or else every item the filters match, as one ZIP (stored entries, \
             ZIP64 where needed) with its exact Content-Length; paths inside are relative to the folder \
             the items share. POST also takes them as an application/x-www-form-urlencoded body, for \
             selections too long for a URL",
        )
        .params(&[Param::pattern("ids", "Ids of items, comma-separated (a selection)", openapi::IDS_PATTERN)])
        .params(LIST_FILTERS)
        .params(SHARE_VIEW)
        .form_body("ZipForm")
        .reply(Reply::Attachment("application/zip")),
    },
    // The trash ("Recently deleted"): `<top>/.trash` on the file's own filesystem.
    Spec {
        route: Route::Trash,
        path: &["api", "trash"],
        methods: GET_POST_DELETE,
        access: Household,
        label: "trash",
        doc: Doc::new(
            "What is in the trash, most recently deleted first (GET); move items there, `{\"ids\": [...]}` \
             (POST); or empty it now (DELETE). Files go for good after trash_days",
        )
        .body("TrashIds")
        .reply(Reply::Json("Trash")),
    },
    Spec {
        route: Route::TrashEntry,
        path: &["api", "trash", "{trash}"],
        methods: DELETE,
        access: Household,
        label: "trash_entry",
        doc: Doc::new("Delete one file in the trash for good").reply(Reply::NoContent),
    },
    Spec {
        route: Route::TrashRestore,
        path: &["api", "trash", "{trash}", "restore"],
        methods: POST,
        access: Household,
        label: "trash_restore",
        doc: Doc::new(
            "Put a file back where it was (its folders made again; `NAME (2).EXT` when its name was taken \
             since): answers with the item",
        )
        .reply(Reply::Json("Item")),
    },
    Spec {
        route: Route::TrashThumb,
        path: &["api", "trash", "{trash}", "thumb"],
        methods: GET,
        access: Household,
        label: "trash_thumb",
        doc: Doc::new("The 400 px thumbnail of a file in the trash").reply(PICTURE),
    },
    // Adding files: tus 1.0 (core, creation, termination) for resumable uploads, PUT for one.
    Spec {
        route: Route::UploadStart,
        path: &["api", "uploads"],
        methods: POST_OPTIONS,
        access: Upload,
        label: "upload_start",
        doc: Doc::new(
            "tus 1.0 creation: start a resumable upload (Upload-Length, Upload-Metadata with filename, \
             and optionally filetype, mtime in Unix seconds and dir); OPTIONS tells the tus version, \
             extensions and maximum size",
        )
        .reply(Reply::Created),
    },
    Spec {
        route: Route::UploadResume,
        path: &["api", "uploads", "{upload}"],
        methods: HEAD_PATCH_DELETE,
        access: Upload,
        label: "upload_resume",
        doc: Doc::new(
            "tus 1.0: the upload's offset (HEAD), more of its bytes at Upload-Offset (PATCH, \
             application/offset+octet-stream; the last one puts the file in place and names it in \
             Spis-Media-Id), or cancel it (DELETE)",
        )
        .reply(Reply::Empty),
    },
    Spec {
        route: Route::UploadFile,
        path: &["api", "upload", "{path*}"],
        methods: PUT,
        access: Upload,
        label: "upload_file",
        doc: Doc::new(
            "Upload one file to a folder below the media folder (`curl -T photo.jpg .../api/upload/DIR/NAME`): \
             201 with the new item, 200 with the existing one when that name already has the same bytes, \
             `NAME (2).EXT` when it has other bytes",
        )
        .params(&[Param::int("mtime", "The file's own modification time, Unix seconds", 0, 253402300799)])
        .binary_body()
        .reply(Reply::Stored("Item")),
    },
    Spec {
        route: Route::UploadForm,
        path: &["api", "upload"],
        methods: POST,
        access: Upload,
        label: "upload_form",
        doc: Doc::new(
            "Upload files as a multipart/form-data form (`curl -F file=@snap.jpg .../api/upload?dir=DIR`): \
             each part with a filename is stored as PUT stores it, in `dir` (the query, or a field before \
             the files; else the default folder); 201 names them, 200 when all were there already",
        )
        .params(&[
            Param::text("dir", "The folder below the media folder"),
            Param::int("mtime", "The files' own modification time, Unix seconds", 0, 253402300799),
        ])
        .multipart_body("UploadForm")
        .reply(Reply::Stored("Uploaded")),
    },
    Spec {
        route: Route::OpenApi,
        path: &["api", "openapi.json"],
        methods: GET,
        access: Household,
        label: "openapi",
        doc: Doc::new("This document").reply(Reply::Json("OpenApi")),
    },
    Spec {
        route: Route::Metrics,
        path: &["metrics"],
        methods: GET,
        access: Household,
        label: "metrics",
        doc: Doc::new("Prometheus metrics (send an API token)").reply(Reply::Binary(&["text/plain"])),
    },
    // Pictures for static sites: signed URLs, no session.
    Spec {
        route: Route::Img,
        path: &["img", "{path*}"],
        methods: GET,
        access: Public,
        label: "img",
        doc: Doc::new(
            "A picture for a static site: \
             /img/SIGNATURE/w800[-h600][-eEXPIRY]/contain|cover/PATH.jpeg|png|avif|auto, where PATH \
             is the photo's own path below the media folder and SIGNATURE comes from `spis url sign` \
             (or is `_` inside public_dir); `.auto` is AVIF when Accept names image/avif, else JPEG \
             (Vary: Accept); 403 for a bad or expired signature, sizes only from resize_sizes; \
             cacheable for a year",
        )
        .reply(Reply::Binary(&["image/jpeg", "image/png", "image/avif"])),
    },
    // Share links: guests see a selection, a folder or a month, and nothing else.
    Spec {
        route: Route::Shares,
        path: &["api", "shares"],
        methods: GET_POST,
        access: Household,
        label: "shares",
        doc: Doc::new(
            "The share links, newest first, with their views (GET); or make one (POST) of a selection \
             (`ids`: fixed), a folder (`dir`) or a month (`year`, `month`), the last two showing what \
             is added later: it expires after `expires_days` (7; 0 never), may ask a password, and \
             lets guests download originals and ZIPs only with `downloads`",
        )
        .body("NewShare")
        .reply(Reply::Json("Shares"))
        .post_reply(Reply::Made("Share")),
    },
    Spec {
        route: Route::ShareEntry,
        path: &["api", "shares", "{share}"],
        methods: DELETE,
        access: Household,
        label: "share_entry",
        doc: Doc::new("Revoke a share link: it and every guest let in through it stop working at once")
            .reply(Reply::NoContent),
    },
    Spec {
        route: Route::Guest,
        path: &["api", "guest"],
        methods: GET_POST_DELETE_NO_HEAD,
        access: Public,
        label: "guest",
        doc: Doc::new(
            "The share link this browser opened (GET); open one, `{\"token\": ..., \"password\": ...}` \
             from its URL /s/TOKEN (POST: sets the guest cookie; 401 share_password when it needs its \
             password, 410 when it expired); or leave it (DELETE)",
        )
        .body("GuestOpen")
        .reply(Reply::Json("Guest"))
        .delete_reply(Reply::NoContent),
    },
    // HTTPS at home: what a phone needs to trust the device's own certificate authority.
    Spec {
        route: Route::Tls,
        path: &["api", "tls"],
        methods: GET,
        access: Public,
        label: "tls",
        doc: Doc::new(
            "Whether this connection is HTTPS, and the fingerprint of the device's own certificate \
             authority to compare with what the phone shows when trusting it",
        )
        .reply(Reply::Json("Tls")),
    },
    Spec {
        route: Route::CaCert,
        path: &["spis-ca.crt"],
        methods: GET,
        access: Public,
        label: "ca_cert",
        doc: Doc::new("The device's certificate authority (DER), for Android, macOS, Windows and Linux to trust")
            .reply(Reply::Binary(&["application/x-x509-ca-cert"])),
    },
    Spec {
        route: Route::CaProfile,
        path: &["spis-ca.mobileconfig"],
        methods: GET,
        access: Public,
        label: "ca_profile",
        doc: Doc::new("The device's certificate authority as an iOS and iPadOS configuration profile")
            .reply(Reply::Binary(&["application/x-apple-aspen-config"])),
    },
];

/// Metric slots after the table's: the web app's pages and assets, and unknown API paths.
pub(crate) const APP_SLOT: usize = ROUTES.len();
pub(crate) const OTHER_SLOT: usize = ROUTES.len() + 1;

/// What a request path is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Matched<'p> {
    /// An entry of the table, with its `{id}` segment if it has one.
    Api { slot: usize, id: Option<&'p str> },
    /// An `/api` (or `/metrics`) path that is not in the table.
    Unknown,
    /// The web app: its page, assets and manifest.
    App,
}

impl Matched<'_> {
    pub(super) fn parse<'p>(segments: &[&'p str]) -> Matched<'p> {
        'specs: for (slot, spec) in ROUTES.iter().enumerate() {
            let tail = spec.path.last() == Some(&"{path*}");
            let fits =
                if tail { segments.len() >= spec.path.len() } else { segments.len() == spec.path.len() };
            if !fits {
                continue;
            }
            let mut id = None;
            for (want, got) in spec.path.iter().zip(segments) {
                if matches!(*want, "{id}" | "{upload}" | "{trash}" | "{share}") {
                    id = Some(*got);
                } else if *want == "{path*}" {
                    break;
                } else if want != got {
                    continue 'specs;
                }
            }
            return Matched::Api { slot, id };
        }
        match segments.first() {
            Some(&"api" | &"metrics") => Matched::Unknown,
            _ => Matched::App,
        }
    }

    /// The metric slot: an index into [`ROUTES`], or [`APP_SLOT`], or [`OTHER_SLOT`].
    pub(super) fn slot(&self) -> usize {
        match self {
            Matched::Api { slot, .. } => *slot,
            Matched::Unknown => OTHER_SLOT,
            Matched::App => APP_SLOT,
        }
    }

    fn access(&self) -> Access {
        match self {
            Matched::Api { slot, .. } => ROUTES[*slot].access,
            // SECURITY: an unknown API path says nothing (not even 404) to an anonymous client.
            Matched::Unknown => Household,
            // The login page needs the page and its assets.
            Matched::App => Public,
        }
    }
}

pub(super) async fn route(app: &Arc<App>, mut req: Request<Incoming>, peer: Peer) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let matched = Matched::parse(&segments);
    let secure = req.extensions().get::<super::Secure>().is_some_and(|s| s.0);
    let ip = guard::client_ip(peer.ip(), req.headers(), &app.trusted_proxies);
    if segments.first() == Some(&"api") {
        app.lib.sync_replicas();
    }
    let mut resp = if app.limiter.allow(ip) {
        let https = secure || guard::is_https(peer.ip(), req.headers(), &app.trusted_proxies);
        checked(app, &mut req, &path, &segments, matched, Client { ip, https })
            .await
            .unwrap_or_else(ApiError::into_response)
    } else {
        ApiError::RateLimited.into_response()
    };
    if resp.status().is_client_error() {
        drain_small_body(&mut req).await;
    }
    let h = resp.headers_mut();
    // SECURITY: on every answer, not only the page: a JSON error or an original opened directly
    // must not be sniffed into HTML or leak the gallery's URLs to other sites.
    h.entry(hyper::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(hyper::header::HeaderValue::from_static("nosniff"));
    h.entry(hyper::header::REFERRER_POLICY).or_insert(hyper::header::HeaderValue::from_static("same-origin"));
    // Over spis's own TLS only (a proxy in front decides for itself): a browser that got this far
    // trusts the certificate, and keeps to HTTPS for 30 days. Browsers ignore it on a certificate
    // error and for IP addresses, so a device still reaches http://ADDRESS/ to trust a new CA.
    if secure {
        h.entry(hyper::header::STRICT_TRANSPORT_SECURITY)
            .or_insert(hyper::header::HeaderValue::from_static("max-age=2592000"));
    }
    app.metrics.record(matched.slot(), resp.status(), started.elapsed());
    tracing::debug!(
        %peer, %method, path, status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64, "request"
    );
    resp
}

/// The most of a refused request's body that is read and dropped before the answer.
const DRAIN_MAX: u64 = 1 << 20;

/// A request refused before its body was read (401, 403, 415...): reads what is left of a small
/// body first, within a second, so a client still sending it reads the answer instead of a
/// connection reset (closing a socket with unread data resets it). A large or undeclared body is
/// never read (a 413 is answered before the body, and clients that send `Expect: 100-continue`
/// never send it); hyper then closes the connection.
async fn drain_small_body(req: &mut Request<Incoming>) {
    use http_body_util::BodyExt as _;
    use hyper::body::Body as _;
    if req.body().is_end_stream() {
        return;
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n <= DRAIN_MAX) {
        let limited = http_body_util::Limited::new(req.body_mut(), DRAIN_MAX as usize);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), limited.collect()).await;
    }
}

/// Where a request came from, once proxies are accounted for.
#[derive(Debug, Clone, Copy)]
struct Client {
    ip: std::net::IpAddr,
    https: bool,
}

/// The guard, then the table: a cross-origin change or an unauthenticated private path never
/// reaches a handler, and a known path with another method is a 405 naming the right ones.
async fn checked(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    path: &str,
    segments: &[&str],
    matched: Matched<'_>,
    client: Client,
) -> Result<Response<Body>, ApiError> {
    let websocket = matches!(matched, Matched::Api { slot, .. } if ROUTES[slot].route == Route::Events);
    guard::check_origin(req.method(), req.headers(), websocket)?;
    let caller = guard::caller(&app.auth, &app.shares, req.headers());
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    match (matched.access(), &caller) {
        (Public, _) if !matches!(matched, Matched::Api { .. }) => {}
        // SECURITY: an upload-only token adds files and reads nothing, not even what is public.
        (Public | Household | Shared, Caller::Uploader(_)) => return Err(ApiError::UploadOnlyToken),
        (Household | Upload | Shared, Caller::Anonymous) => return Err(ApiError::Unauthorized),
        // SECURITY: a guest reads its share and changes nothing.
        (Household | Upload, Caller::Guest(_)) => return Err(ApiError::NotInShare),
        (Shared, Caller::Guest(_)) if !reads => return Err(ApiError::NotInShare),
        _ => {}
    }
    let method = req.method();
    match matched {
        Matched::Api { slot, id } => {
            let spec = &ROUTES[slot];
            if !spec.methods.list.contains(method) {
                return Err(ApiError::MethodNotAllowed {
                    method: method.to_string(),
                    allow: spec.methods.allow,
                });
            }
            let tail = &segments[spec.path.len().min(segments.len()).saturating_sub(1)..];
            // SECURITY: one check for every route that names an item: a guest reaches only the
            // items of its share, and any other id is as unknown as one that does not exist.
            if let (Caller::Guest(link), true) = (&caller, spec.path.contains(&"{id}")) {
                share::check_item(&app.lib, link, media_id(id.unwrap_or(""))?)?;
            }
            let call = Call { route: spec.route, id, tail, client, caller: &caller };
            dispatch(app, req, call).await
        }
        Matched::Unknown => Err(ApiError::NoRoute(path.to_owned())),
        Matched::App if *method == Method::GET || *method == Method::HEAD => {
            let session = matches!(caller, Caller::Anyone | Caller::Session | Caller::Token);
            // The gallery's first screen, asked for with the page instead of after its scripts.
            let first = session && segments == [""] && req.uri().query().is_none_or(str::is_empty);
            let preload = if first {
                assets::first_screen(|| api::first_screen_preloads(&app.lib))
            } else {
                Vec::new()
            };
            Ok(assets::serve(&app.web, segments, req.headers(), session, &preload)
                .unwrap_or_else(assets::not_found_page))
        }
        Matched::App => Err(ApiError::MethodNotAllowed { method: method.to_string(), allow: GET.allow }),
    }
}

/// What [`dispatch`] needs besides the request: the route, its path arguments and the caller.
struct Call<'a> {
    route: Route,
    /// The `{id}` or `{upload}` segment.
    id: Option<&'a str>,
    /// The `{path*}` segments (for other routes, the last segment or none).
    tail: &'a [&'a str],
    client: Client,
    caller: &'a Caller,
}

/// One arm per route of the table.
async fn dispatch(
    app: &Arc<App>,
    req: &mut Request<Incoming>,
    call: Call<'_>,
) -> Result<Response<Body>, ApiError> {
    let Call { route, id: raw_id, tail, client, caller } = call;
    let lib = &app.lib;
    let id = || media_id(raw_id.unwrap_or(""));
    let scope = caller.upload_scope();
    // What a guest may see; or, for the household, a share link's view (`?share=`).
    let view = || share::view(app, caller, req.uri().query());
    match route {
        Route::Session => session::status(app, req),
        Route::Login => session::login(app, req, client.ip, client.https).await,
        Route::Logout => session::logout(app, req).await,
        Route::Setup => session::setup(app, req, client.https).await,
        Route::Password => session::change(app, req, client.ip, client.https).await,
        Route::Health => Ok(api::health(lib)),
        Route::Status => Ok(api::status(app)),
        Route::List => api::list(app, req, view()?.as_deref()),
        Route::Facets => api::facets(app, req, view()?.as_deref()),
        Route::Events => events::upgrade(app, req),
        Route::Item if *req.method() == Method::DELETE => trash::delete_item(app, id()?).await,
        Route::Item => api::item(lib, id()?, caller.share()),
        Route::Original => api::original(lib, id()?, req, caller.share()).await,
        Route::Details => api::details(lib, id()?).await,
        Route::Resize => api::resize(app, id()?, req).await,
        Route::Thumb => api::rendition(app, id()?, Rendition::Thumb, req).await,
        Route::Preview => api::rendition(app, id()?, Rendition::Preview, req).await,
        Route::Favorite => api::favorite(lib, id()?, *req.method() == Method::PUT).await,
        Route::Zip => {
            let view = view()?;
            zip::download(app, req, view.as_deref()).await
        }
        Route::Trash => trash::trash(app, req).await,
        Route::TrashEntry => trash::purge(app, raw_id.unwrap_or("")).await,
        Route::TrashRestore => trash::restore(app, raw_id.unwrap_or("")).await,
        Route::TrashThumb => trash::thumb(app, raw_id.unwrap_or(""), req).await,
        Route::UploadStart => upload::start(app, req, scope).await,
        Route::UploadResume => upload::resume(app, req, raw_id.unwrap_or(""), scope).await,
        Route::UploadFile => upload::put(app, req, tail, scope).await,
        Route::UploadForm => upload::form(app, req, scope).await,
        Route::OpenApi => Ok(openapi::serve(&app.openapi)),
        Route::Metrics => Ok(metrics::render(app)),
        Route::Img => img::serve(app, req, tail).await,
        Route::Shares if *req.method() == Method::POST => share::create(app, req).await,
        Route::Shares => share::list(app).await,
        Route::ShareEntry => share::revoke(app, raw_id.unwrap_or("")).await,
        Route::Guest => share::guest(app, req, client.ip, client.https).await,
        Route::Tls => Ok(tls::status(app, client.https)),
        Route::CaCert => tls::ca_cert(app),
        Route::CaProfile => tls::ca_profile(app),
    }
}

fn media_id(raw: &str) -> Result<u64, ApiError> {
    // A malformed id cannot name any media: same answer as an unknown one.
    id::decode(raw).ok_or_else(|| ApiError::UnknownMedia(raw.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Matched<'_> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // The segments borrow from `path`, so the match can be returned.
        match Matched::parse(&segments) {
            Matched::Api { slot, id } => Matched::Api { slot, id },
            other => other,
        }
    }

    #[test]
    fn every_path_of_the_table_matches_its_own_entry_only() {
        for (slot, spec) in ROUTES.iter().enumerate() {
            let path = format!(
                "/{}",
                spec.path
                    .join("/")
                    .replace("{id}", "AAAAAAAAAAA")
                    .replace("{upload}", "abc")
                    .replace("{trash}", "AHguanBn")
                    .replace("{share}", "AAAAAAAAAAAAAAAA")
                    .replace("{path*}", "Cameras/cam1/snap.jpg")
            );
            match parse(&path) {
                Matched::Api { slot: s, id } => {
                    assert_eq!(s, slot, "{path}");
                    let one_segment =
                        spec.path.iter().any(|p| matches!(*p, "{id}" | "{upload}" | "{trash}" | "{share}"));
                    assert_eq!(id.is_some(), one_segment, "{path}");
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        let labels: std::collections::HashSet<_> = ROUTES.iter().map(|s| s.label).collect();
        assert_eq!(labels.len(), ROUTES.len(), "metric labels are unique");
        let routes: std::collections::HashSet<_> = ROUTES.iter().map(|s| s.route).collect();
        assert_eq!(routes.len(), ROUTES.len(), "each route has one entry");
    }

    #[test]
    fn paths_outside_the_table_are_unknown_api_paths_or_the_app() {
        for p in ["/api/media/x/nonsense", "/api/whatever/deep/path", "/api", "/api/", "/metrics/x"] {
            assert!(matches!(parse(p), Matched::Unknown), "{p}");
        }
        for p in ["/", "/assets/v1/app.js", "/manifest.webmanifest", "/apix"] {
            assert!(matches!(parse(p), Matched::App), "{p}");
        }
        assert_eq!(ROUTES[parse("/api/media").slot()].label, "list");
        assert_eq!(parse("/").slot(), APP_SLOT);
        // `{path*}` takes one or more segments, never none.
        assert_eq!(ROUTES[parse("/api/upload/a.jpg").slot()].label, "upload_file");
        assert_eq!(ROUTES[parse("/api/upload").slot()].label, "upload_form");
        assert_eq!(parse("/api/nope").slot(), OTHER_SLOT);
    }
}
