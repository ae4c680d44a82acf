//! Request errors and their one mapping to HTTP status and JSON body.
//!
//! Every failure a client can see is an [`ApiError`]; [`ApiError::into_response`] is the single
//! `match` that decides its status and stable `code`. The rule: not-found, permission and I/O
//! failure are different answers, and a 5xx never leaks a path or an OS message to the client.

use hyper::{Response, StatusCode, header};

use super::{Body, full};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no media with id {0:?}")]
    UnknownMedia(String),
    #[error("no such endpoint: {0}")]
    NoRoute(String),
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
    #[error("this media cannot be resized: {0}")]
    CannotResize(String),
    #[error("this endpoint is a WebSocket: connect with a WebSocket client (Upgrade: websocket)")]
    WebSocketRequired,
}

impl ApiError {
    pub fn bad(name: &str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter { name: name.to_owned(), reason: reason.into() }
    }

    /// An I/O error from reading a media file, classified.
    pub fn from_media_io(e: std::io::Error) -> ApiError {
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
            ApiError::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            ApiError::UnknownParameter(_) => (StatusCode::BAD_REQUEST, "unknown_parameter"),
            ApiError::FileMissing => (StatusCode::NOT_FOUND, "file_missing"),
            ApiError::FileForbidden => (StatusCode::FORBIDDEN, "file_forbidden"),
            ApiError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
            ApiError::FavoriteNotStored(_) => (StatusCode::INTERNAL_SERVER_ERROR, "favorite_not_stored"),
            ApiError::CannotResize(_) => (StatusCode::UNPROCESSABLE_ENTITY, "cannot_resize"),
            ApiError::WebSocketRequired => (StatusCode::UPGRADE_REQUIRED, "websocket_required"),
        }
    }

    pub fn into_response(self) -> Response<Body> {
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
        if let ApiError::WebSocketRequired = &self {
            resp = resp.header(header::UPGRADE, "websocket").header(header::CONNECTION, "Upgrade");
        }
        resp.body(full(body.to_string())).expect("static headers are valid")
    }
}
