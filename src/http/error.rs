//! Request errors and their one mapping to HTTP status and JSON body.
//!
//! Every failure a client can see is an [`ApiError`]; [`ApiError::into_response`] is the single
//! `match` that decides its status and stable `code`. The rule: not-found, permission and I/O
//! failure are different answers, and a 5xx never leaks a path or an OS message to the client.

use hyper::{Response, StatusCode, header};

use super::{Body, full};

#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    #[error("no media with id {0:?}")]
    UnknownMedia(String),
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    #[error(
        "this server has no certificate authority of its own to trust (tls is off, or a certificate of the owner's own is served)"
    )]
    NoLocalCa,
    #[error("method {method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("invalid parameter `{name}`: {reason}")]
    BadParameter { name: String, reason: String },
    #[error("unknown parameter `{0}`")]
    UnknownParameter(String),
    #[error("the media file is no longer on disk")]
    FileMissing,
    #[error("the server is not allowed to read this media file")]
    FileForbidden,
    #[error("reading or writing the media failed")]
    Io(#[source] std::io::Error),
    #[error("the favorite could not be stored")]
    FavoriteNotStored(#[source] std::io::Error),
    #[error("the requested range is outside the file ({0} bytes)")]
    RangeNotSatisfiable(u64),
    #[error("this media cannot be resized: {0}")]
    CannotResize(String),
    #[error("this endpoint is a WebSocket: connect with a WebSocket client (Upgrade: websocket)")]
    WebSocketRequired,
    #[error("log in first (POST /api/login), or send an API token as `Authorization: Bearer ...`")]
    Unauthorized,
    #[error("cross-origin requests cannot change anything here")]
    CrossOrigin,
    #[error("too many requests; slow down")]
    RateLimited,
    #[error("wrong password")]
    WrongPassword,
    #[error("too many failed logins from this address; try again in {0} s")]
    TooManyAttempts(u64),
    #[error("a password is already set; log in with it")]
    PasswordAlreadySet,
    #[error("no password is set yet; choose one with POST /api/setup")]
    PasswordNotSet,
    #[error("the password is set in the configuration (password_hash) and cannot be changed here")]
    PasswordFromConfig,
    #[error("the password must be at least 8 characters")]
    PasswordTooShort,
    #[error("the request body is not what this endpoint takes: {0}")]
    BadBody(String),
    #[error("the password could not be stored")]
    PasswordNotStored(#[source] std::io::Error),
    #[error("this token may only upload files (spis token create --upload-only)")]
    UploadOnlyToken,
    #[error(transparent)]
    Upload(#[from] crate::upload::UploadError),
    #[error("this server speaks tus 1.0.0; send Tus-Resumable: 1.0.0")]
    TusVersion,
    #[error("invalid header `{name}`: {reason}")]
    BadHeader { name: &'static str, reason: String },
    #[error("the body must be {0}")]
    BadContentType(&'static str),
    #[error("the connection ended before the whole body arrived")]
    BodyCut,
    #[error("nothing to download: no item matches")]
    NothingToZip,
    #[error("nothing in the trash has id {0:?}")]
    NotInTrash(String),
    #[error("the media folder is read-only here; nothing can be deleted or restored")]
    ReadOnly,
    #[error("the file could not be moved: {0}")]
    CannotMove(String),
    #[error("this image URL is refused: {0}")]
    BadSignature(&'static str),
    #[error("a share link's guest sees only what was shared, and changes nothing")]
    NotInShare,
    #[error("this share link is not valid (it may have been revoked)")]
    UnknownShare,
    #[error("this share link has expired")]
    ShareExpired,
    #[error("this share link needs its password")]
    SharePassword,
    #[error("downloads are off for this share link")]
    DownloadsOff,
    #[error("this browser has not opened a share link")]
    NotAGuest,
    #[error("nothing to share: no item is in that folder or month")]
    NothingToShare,
}

impl From<crate::shares::ShareError> for ApiError {
    fn from(e: crate::shares::ShareError) -> ApiError {
        use crate::shares::ShareError as S;
        match e {
            S::Unknown => ApiError::UnknownShare,
            S::Expired => ApiError::ShareExpired,
            S::PasswordNeeded => ApiError::SharePassword,
            S::WrongPassword => ApiError::WrongPassword,
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> ApiError {
        use crate::auth::AuthError as A;
        match e {
            A::WrongPassword => ApiError::WrongPassword,
            A::TooManyAttempts(s) => ApiError::TooManyAttempts(s),
            A::AlreadySet => ApiError::PasswordAlreadySet,
            A::NotSet => ApiError::PasswordNotSet,
            A::FromConfig => ApiError::PasswordFromConfig,
            A::TooShort => ApiError::PasswordTooShort,
            A::Io(e) => ApiError::PasswordNotStored(e),
        }
    }
}

impl ApiError {
    pub(super) fn bad(name: &str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter { name: name.to_owned(), reason: reason.into() }
    }

    /// An I/O error from reading a media file, classified.
    pub(super) fn from_media_io(e: std::io::Error) -> ApiError {
        match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::FileMissing,
            std::io::ErrorKind::PermissionDenied => ApiError::FileForbidden,
            _ => ApiError::Io(e),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::UnknownMedia(_) => (StatusCode::NOT_FOUND, "unknown_media"),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "no_route"),
            ApiError::NoLocalCa => (StatusCode::NOT_FOUND, "no_local_ca"),
            ApiError::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            ApiError::UnknownParameter(_) => (StatusCode::BAD_REQUEST, "unknown_parameter"),
            ApiError::FileMissing => (StatusCode::NOT_FOUND, "file_missing"),
            ApiError::FileForbidden => (StatusCode::FORBIDDEN, "file_forbidden"),
            ApiError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
            ApiError::FavoriteNotStored(_) => (StatusCode::INTERNAL_SERVER_ERROR, "favorite_not_stored"),
            ApiError::RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            ApiError::CannotResize(_) => (StatusCode::UNPROCESSABLE_ENTITY, "cannot_resize"),
            ApiError::WebSocketRequired => (StatusCode::UPGRADE_REQUIRED, "websocket_required"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin"),
            ApiError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::WrongPassword => (StatusCode::UNAUTHORIZED, "wrong_password"),
            ApiError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::PasswordAlreadySet => (StatusCode::CONFLICT, "password_already_set"),
            ApiError::PasswordNotSet => (StatusCode::CONFLICT, "password_not_set"),
            ApiError::PasswordFromConfig => (StatusCode::CONFLICT, "password_from_config"),
            ApiError::PasswordTooShort => (StatusCode::UNPROCESSABLE_ENTITY, "password_too_short"),
            ApiError::BadBody(_) => (StatusCode::BAD_REQUEST, "bad_body"),
            ApiError::PasswordNotStored(_) => (StatusCode::INTERNAL_SERVER_ERROR, "password_not_stored"),
            ApiError::UploadOnlyToken => (StatusCode::FORBIDDEN, "upload_only_token"),
            ApiError::Upload(e) => {
                use crate::upload::UploadError as U;
                match e {
                    U::BadName(_) => (StatusCode::BAD_REQUEST, "bad_name"),
                    U::NotMedia(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_media"),
                    U::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
                    U::NoSpace { .. } => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
                    U::ReadOnly => (StatusCode::CONFLICT, "media_read_only"),
                    U::OutsideScope(_) => (StatusCode::FORBIDDEN, "outside_upload_folder"),
                    U::UnknownUpload => (StatusCode::NOT_FOUND, "unknown_upload"),
                    U::WrongOffset { .. } => (StatusCode::CONFLICT, "wrong_offset"),
                    U::TooLong(_) => (StatusCode::PAYLOAD_TOO_LARGE, "longer_than_declared"),
                    U::Busy => (StatusCode::LOCKED, "upload_busy"),
                    U::TooManyCopies => (StatusCode::CONFLICT, "too_many_copies"),
                    U::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "upload_failed"),
                }
            }
            ApiError::TusVersion => (StatusCode::PRECONDITION_FAILED, "tus_version"),
            ApiError::BadHeader { .. } => (StatusCode::BAD_REQUEST, "bad_header"),
            ApiError::BadContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_content_type"),
            ApiError::BodyCut => (StatusCode::BAD_REQUEST, "body_cut"),
            ApiError::NothingToZip => (StatusCode::NOT_FOUND, "nothing_to_zip"),
            ApiError::NotInTrash(_) => (StatusCode::NOT_FOUND, "not_in_trash"),
            ApiError::ReadOnly => (StatusCode::CONFLICT, "read_only"),
            ApiError::CannotMove(_) => (StatusCode::CONFLICT, "cannot_move"),
            ApiError::BadSignature(_) => (StatusCode::FORBIDDEN, "bad_signature"),
            ApiError::NotInShare => (StatusCode::FORBIDDEN, "not_in_share"),
            ApiError::UnknownShare => (StatusCode::NOT_FOUND, "unknown_share"),
            ApiError::ShareExpired => (StatusCode::GONE, "share_expired"),
            ApiError::SharePassword => (StatusCode::UNAUTHORIZED, "share_password"),
            ApiError::DownloadsOff => (StatusCode::FORBIDDEN, "downloads_off"),
            ApiError::NotAGuest => (StatusCode::NOT_FOUND, "not_a_guest"),
            ApiError::NothingToShare => (StatusCode::NOT_FOUND, "nothing_to_share"),
        }
    }

    pub(super) fn into_response(self) -> Response<Body> {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            // The details go to the log; the client gets the stable sentence only.
            tracing::error!(code, error = ?self, "request failed");
        }
        let body = serde_json::json!({ "error": self.to_string(), "code": code });
        let mut resp = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-store");
        if let ApiError::MethodNotAllowed { allow, .. } = &self {
            resp = resp.header(header::ALLOW, *allow);
        }
        match &self {
            ApiError::TooManyAttempts(s) => resp = resp.header(header::RETRY_AFTER, s.to_string()),
            ApiError::RateLimited => resp = resp.header(header::RETRY_AFTER, "1"),
            ApiError::Unauthorized => resp = resp.header(header::WWW_AUTHENTICATE, "Bearer realm=\"spis\""),
            ApiError::RangeNotSatisfiable(len) => {
                resp = resp
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .header(header::ACCEPT_RANGES, "bytes")
            }
            _ => {}
        }
        if matches!(self, ApiError::TusVersion) {
            resp = resp.header("tus-version", "1.0.0");
        }
        if let ApiError::WebSocketRequired = &self {
            resp = resp.header(header::UPGRADE, "websocket").header(header::CONNECTION, "Upgrade");
        }
        resp.body(full(body.to_string())).expect("static headers are valid")
    }
}
