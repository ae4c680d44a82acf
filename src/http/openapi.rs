//! `GET /api/openapi.json`: the API as an OpenAPI 3.1 document, generated from the route table.
//!
//! The rule: paths, methods, parameters and who may call each operation come from
//! [`super::routes::ROUTES`] and nowhere else; this module only adds the JSON schemas of the
//! bodies (kept beside the types they describe in `api.rs` and `session.rs`, and checked against
//! the running server by schemathesis in `make test`).

use bytes::Bytes;
use hyper::{Method, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use super::routes::{Access, ROUTES};
use super::{Body, full};

/// A query parameter of a route.
#[derive(Debug)]
pub(crate) struct Param {
    name: &'static str,
    description: &'static str,
    kind: ParamKind,
    required: bool,
}

#[derive(Debug)]
enum ParamKind {
    Text,
    /// Text of this form (a regular expression, anchored).
    Pattern(&'static str),
    Int {
        min: i64,
        max: i64,
    },
    /// One of the configured `resize_sizes`.
    Size,
    Choice(&'static [&'static str]),
}

impl Param {
    pub(super) const fn text(name: &'static str, description: &'static str) -> Param {
        Param { name, description, kind: ParamKind::Text, required: false }
    }

    pub(super) const fn int(name: &'static str, description: &'static str, min: i64, max: i64) -> Param {
        Param { name, description, kind: ParamKind::Int { min, max }, required: false }
    }

    pub(super) const fn pattern(
        name: &'static str,
        description: &'static str,
        pattern: &'static str,
    ) -> Param {
        Param { name, description, kind: ParamKind::Pattern(pattern), required: false }
    }

    /// One of the configured `resize_sizes`.
    pub(super) const fn size(name: &'static str, description: &'static str) -> Param {
        Param { name, description, kind: ParamKind::Size, required: false }
    }

    pub(super) const fn required(mut self) -> Param {
        self.required = true;
        self
    }

    pub(super) const fn choice(
        name: &'static str,
        description: &'static str,
        values: &'static [&'static str],
    ) -> Param {
        Param { name, description, kind: ParamKind::Choice(values), required: false }
    }

    fn document(&self, sizes: &[u32]) -> Value {
        let schema = match self.kind {
            ParamKind::Text => json!({ "type": "string" }),
            ParamKind::Pattern(p) => json!({ "type": "string", "pattern": p }),
            ParamKind::Size => json!({ "type": "integer", "enum": sizes }),
            ParamKind::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
            ParamKind::Choice(values) => json!({ "type": "string", "enum": values }),
        };
        json!({
            "name": self.name,
            "in": "query",
            "description": self.description,
            "required": self.required,
            "schema": schema,
        })
    }
}

/// What a successful answer is.
#[derive(Debug)]
pub(crate) enum Reply {
    /// JSON of the named schema (see [`schemas`]).
    Json(&'static str),
    /// Bytes of one of these media types, with ranges and validators.
    Binary(&'static [&'static str]),
    /// A WebSocket upgrade.
    Upgrade,
    /// 201 Created with a `Location` and no body (tus creation).
    Created,
    /// 200 or 204 with headers only (tus).
    Empty,
    /// 201 with JSON of the named schema for something new, 200 for what was there already.
    Stored(&'static str),
    /// 200 with a file to save (no ranges, no validators).
    Attachment(&'static str),
    /// 204 with no body: done.
    NoContent,
    /// 201 with JSON of the named schema: made.
    Made(&'static str),
}

/// A route's description in the document.
#[derive(Debug)]
pub(crate) struct Doc {
    summary: &'static str,
    params: [&'static [Param]; 3],
    body: Option<&'static str>,
    /// The request body is the bytes of a file.
    binary_body: bool,
    /// The request body is a form of this media type and the named schema (for POST).
    form_body: Option<(&'static str, &'static str)>,
    reply: Reply,
    /// What DELETE answers, where it differs.
    delete_reply: Option<Reply>,
    /// What POST answers, where it differs.
    post_reply: Option<Reply>,
}

impl Doc {
    pub(super) const fn new(summary: &'static str) -> Doc {
        Doc {
            summary,
            params: [&[], &[], &[]],
            body: None,
            binary_body: false,
            form_body: None,
            reply: Reply::Json("Ok"),
            delete_reply: None,
            post_reply: None,
        }
    }

    /// Query parameters (at most three lists, e.g. paging, filters and the share view).
    pub(super) const fn params(mut self, params: &'static [Param]) -> Doc {
        if self.params[0].is_empty() {
            self.params[0] = params;
        } else if self.params[1].is_empty() {
            self.params[1] = params;
        } else {
            self.params[2] = params;
        }
        self
    }

    /// A JSON request body of the named schema.
    pub(super) const fn body(mut self, schema: &'static str) -> Doc {
        self.body = Some(schema);
        self
    }

    /// The request body is a file's bytes.
    pub(super) const fn binary_body(mut self) -> Doc {
        self.binary_body = true;
        self
    }

    /// An optional `application/x-www-form-urlencoded` body of the named schema, for POST.
    pub(super) const fn form_body(mut self, schema: &'static str) -> Doc {
        self.form_body = Some(("application/x-www-form-urlencoded", schema));
        self
    }

    /// A `multipart/form-data` body of the named schema, for POST.
    pub(super) const fn multipart_body(mut self, schema: &'static str) -> Doc {
        self.form_body = Some(("multipart/form-data", schema));
        self
    }

    pub(super) const fn reply(mut self, reply: Reply) -> Doc {
        self.reply = reply;
        self
    }

    /// What POST answers, where it is not [`Doc::reply`].
    pub(super) const fn post_reply(mut self, reply: Reply) -> Doc {
        self.post_reply = Some(reply);
        self
    }

    /// What DELETE answers, where it is not [`Doc::reply`].
    pub(super) const fn delete_reply(mut self, reply: Reply) -> Doc {
        self.delete_reply = Some(reply);
        self
    }
}

/// The document for a server that resizes to `sizes`, made once at startup.
pub(crate) fn document(sizes: &[u32]) -> Bytes {
    serde_json::to_vec(&build(sizes)).expect("the document serializes").into()
}

pub(crate) fn serve(document: &Bytes) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(full(document.clone()))
        .expect("static headers are valid")
}

/// A media id: 11 URL-safe base64 characters spelling 64 bits (so the last one carries 4).
pub(crate) const ID_PATTERN: &str = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$";
/// A list cursor: version 1 and 16 bytes, in 23 URL-safe base64 characters.
/// Ids, comma-separated (a selection to download).
pub(crate) const IDS_PATTERN: &str =
    "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048](,[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048])*$";
/// A share link's id: 12 random bytes in 16 URL-safe base64 characters.
pub(crate) const SHARE_PATTERN: &str = "^[A-Za-z0-9_-]{16}$";
pub(crate) const CURSOR_PATTERN: &str = "^A[Q-Za-f][A-Za-z0-9_-]{20}[AEIMQUYcgkosw048]$";

fn build(sizes: &[u32]) -> Value {
    let mut paths = Map::new();
    for spec in ROUTES {
        let path = path_template(spec);
        let mut ops = Map::new();
        for method in documented_methods(spec) {
            ops.insert(method.as_str().to_ascii_lowercase(), operation(spec, method, sizes));
        }
        paths.insert(path, Value::Object(ops));
    }
    let mut all_schemas = schemas();
    if let (Some(all), Value::Object(more)) = (all_schemas.as_object_mut(), share_schemas()) {
        all.extend(more);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "spis",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Simple Private Image Server's API. Every error is JSON: {\"error\": \"...\", \"code\": \"...\"}.",
            "license": { "name": "MIT", "identifier": "MIT" },
        },
        "paths": paths,
        "components": {
            "schemas": all_schemas,
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": crate::auth::COOKIE },
                "token": { "type": "http", "scheme": "bearer", "description": "spis token create NAME" },
                "guest": {
                    "type": "apiKey", "in": "cookie", "name": crate::shares::GUEST_COOKIE,
                    "description": "Set by POST /api/guest: the items of one share link, read only",
                },
            },
        },
    })
}

/// The path as OpenAPI writes it (`{path*}` is one `{path}` parameter that may hold slashes).
fn path_template(spec: &super::routes::Spec) -> String {
    format!("/{}", spec.path.join("/")).replace("{path*}", "{path}")
}

/// The methods with an operation of their own: HEAD only where there is no GET.
fn documented_methods(spec: &super::routes::Spec) -> impl Iterator<Item = &'static Method> {
    let list = spec.methods.list;
    list.iter().filter(move |m| **m != Method::HEAD || !list.contains(&Method::GET))
}

fn operation(spec: &super::routes::Spec, method: &Method, sizes: &[u32]) -> Value {
    let doc = &spec.doc;
    let mut params: Vec<Value> =
        doc.params.iter().flat_map(|p| p.iter()).map(|p| p.document(sizes)).collect();
    if spec.path.contains(&"{id}") {
        params.insert(
            0,
            json!({
                "name": "id", "in": "path", "required": true,
                "description": "A media id, as /api/media lists them",
                "schema": { "type": "string", "pattern": ID_PATTERN },
            }),
        );
    }
    if spec.path.contains(&"{upload}") {
        params.insert(
            0,
            json!({
                "name": "upload", "in": "path", "required": true,
                "description": "An upload's id, from the Location of its creation",
                "schema": { "type": "string", "pattern": "^[a-z2-7]{24}$" },
            }),
        );
    }
    if spec.path.contains(&"{trash}") {
        params.insert(
            0,
            json!({
                "name": "trash", "in": "path", "required": true,
                "description": "A trash entry's id, as /api/trash lists them",
                "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{2,1400}$" },
            }),
        );
    }
    if spec.path.contains(&"{share}") {
        params.insert(
            0,
            json!({
                "name": "share", "in": "path", "required": true,
                "description": "A share link's id, as /api/shares lists them",
                "schema": { "type": "string", "pattern": SHARE_PATTERN },
            }),
        );
    }
    if spec.path.contains(&"{path*}") {
        params.insert(
            0,
            json!({
                "name": "path", "in": "path", "required": true,
                "description": if spec.route == super::routes::Route::Img {
                    "SIGNATURE/SIZE/FIT/DIR/NAME.FORMAT, as `spis url sign` prints it"
                } else {
                    "The folder below the media folder and the file name: DIR/NAME"
                },
                "schema": { "type": "string" },
            }),
        );
    }
    let error = json!({ "description": "An error", "content": { "application/json": { "schema": schema_ref("Error") } } });
    let mut responses = Map::new();
    let reply = match (&doc.delete_reply, &doc.post_reply) {
        (Some(r), _) if *method == Method::DELETE => r,
        (_, Some(r)) if *method == Method::POST => r,
        _ => &doc.reply,
    };
    match *reply {
        Reply::Json(schema) => {
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": { "application/json": { "schema": schema_ref(schema) } } }),
            );
            if *method == Method::GET {
                responses.insert("304".into(), json!({ "description": "Not modified (If-None-Match)" }));
            }
        }
        Reply::Binary(types) => {
            let content: Map<String, Value> = types
                .iter()
                .map(|t| ((*t).to_owned(), json!({ "schema": { "type": "string", "format": "binary" } })))
                .collect();
            responses.insert("200".into(), json!({ "description": "OK", "content": content }));
            responses
                .insert("206".into(), json!({ "description": "Part of it (Range)", "content": content }));
            responses.insert("304".into(), json!({ "description": "Not modified (If-None-Match)" }));
        }
        Reply::Attachment(t) => {
            let content = json!({ t: { "schema": { "type": "string", "format": "binary" } } });
            responses.insert("200".into(), json!({ "description": "OK", "content": content }));
        }
        Reply::Made(schema) => {
            let body = json!({ "application/json": { "schema": schema_ref(schema) } });
            responses.insert("201".into(), json!({ "description": "Made", "content": body }));
        }
        Reply::NoContent => {
            responses.insert("204".into(), json!({ "description": "Done" }));
        }
        Reply::Upgrade => {
            responses.insert("101".into(), json!({ "description": "Switching to the WebSocket protocol" }));
        }
        Reply::Created => {
            responses.insert("201".into(), json!({ "description": "Created: see Location" }));
            responses.insert("204".into(), json!({ "description": "OPTIONS: the tus headers" }));
        }
        Reply::Empty => {
            responses.insert("200".into(), json!({ "description": "HEAD: Upload-Offset and Upload-Length" }));
            responses.insert(
                "204".into(),
                json!({ "description": "PATCH: the new Upload-Offset; DELETE: cancelled" }),
            );
        }
        Reply::Stored(schema) => {
            let body = json!({ "application/json": { "schema": schema_ref(schema) } });
            responses.insert("201".into(), json!({ "description": "Stored", "content": body }));
            responses.insert(
                "200".into(),
                json!({ "description": "The same bytes were there already", "content": body }),
            );
        }
    }
    // What a trash operation returns names the entries the others take: links let a client (and
    // schemathesis's stateful phase) follow a delete to its restore and its deletion for good.
    let entry_links = |id: &str| {
        json!({
            "restore": { "operationId": "trash_restore_post", "parameters": { "trash": id } },
            "thumb": { "operationId": "trash_thumb_get", "parameters": { "trash": id } },
            "purge": { "operationId": "trash_entry_delete", "parameters": { "trash": id } },
        })
    };
    let links = match (spec.route, method) {
        (super::routes::Route::Item, &Method::DELETE) => Some(entry_links("$response.body#/id")),
        (super::routes::Route::Trash, &Method::POST | &Method::GET) => {
            Some(entry_links("$response.body#/items/0/id"))
        }
        (super::routes::Route::Shares, &Method::POST) => Some(json!({
            "revoke": { "operationId": "share_entry_delete", "parameters": { "share": "$response.body#/id" } },
        })),
        _ => None,
    };
    if let Some(links) = links
        && let Some(ok) = responses.get_mut(if responses.contains_key("201") { "201" } else { "200" })
    {
        ok["links"] = links;
    }
    responses.insert("default".into(), error);
    let security = match spec.access {
        Access::Public => json!([]),
        Access::Household | Access::Upload => json!([{ "session": [] }, { "token": [] }]),
        Access::Shared => json!([{ "session": [] }, { "token": [] }, { "guest": [] }]),
    };
    let mut op = json!({
        "operationId": format!("{}_{}", spec.label, method.as_str().to_ascii_lowercase()),
        "summary": doc.summary,
        "parameters": params,
        "responses": responses,
        "security": security,
    });
    if doc.binary_body {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } },
        });
    }
    if let Some((media_type, form)) = doc.form_body
        && *method == Method::POST
    {
        op["requestBody"] = json!({
            "required": media_type.starts_with("multipart/"),
            "content": { media_type: { "schema": schema_ref(form) } },
        });
    }
    if let Some(body) = doc.body
        && [Method::POST, Method::PUT, Method::PATCH].contains(method)
    {
        op["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": schema_ref(body) } } });
    }
    op
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The bodies' schemas. Objects list the fields clients rely on as required; servers may add
/// fields, so none is closed.
fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let int = json!({ "type": "integer", "minimum": 0 });
    let boolean = json!({ "type": "boolean" });
    let new_password = json!({ "type": "string", "minLength": crate::auth::MIN_PASSWORD_CHARS });
    let nullable = |t: &str| json!({ "type": [t, "null"] });
    let counted = |key: &str, extra: Value| {
        let mut props = json!({ key: { "type": "integer" }, "count": { "type": "integer", "minimum": 0 } });
        if let (Some(p), Value::Object(e)) = (props.as_object_mut(), extra) {
            p.extend(e);
        }
        json!({ "type": "object", "required": [key, "count"], "properties": props })
    };
    json!({
        "ZipForm": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "ids": { "type": "string", "pattern": IDS_PATTERN },
                "year": { "type": "integer", "minimum": 1, "maximum": 9999 },
                "month": { "type": "integer", "minimum": 1, "maximum": 12 },
                "dir": string,
                "favorite": { "type": "string", "enum": ["true", "false"] },
                "kind": { "type": "string", "enum": ["image", "video"] },
            },
        },
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": { "type": "string", "description": "A sentence for people" },
                "code": { "type": "string", "pattern": "^[a-z_]+$", "description": "Stable, for programs" },
            },
        },
        "Ok": { "type": "object", "required": ["logged_in"], "properties": { "logged_in": boolean } },
        "Password": {
            "type": "object", "required": ["password"], "additionalProperties": false,
            "properties": { "password": string },
        },
        "NewPassword": {
            "type": "object", "required": ["password"], "additionalProperties": false,
            "properties": { "password": new_password },
        },
        "PasswordChange": {
            "type": "object", "required": ["old", "new"], "additionalProperties": false,
            "properties": { "old": string, "new": new_password },
        },
        "Session": {
            "type": "object",
            "required": ["required", "setup", "logged_in"],
            "properties": { "required": boolean, "setup": boolean, "logged_in": boolean },
        },
        "Tls": {
            "type": "object",
            "required": ["tls", "secure", "ca"],
            "properties": {
                "tls": { "enum": ["auto", "own", "off"] },
                "secure": boolean,
                "ca": {
                    "type": ["object", "null"],
                    "required": ["name", "fingerprint_sha256", "not_after"],
                    "properties": { "name": string, "fingerprint_sha256": string, "not_after": string },
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "ready"],
            "properties": { "status": { "const": "ok" }, "ready": boolean },
        },
        "Status": {
            "type": "object",
            "required": ["version", "uptime_s", "items", "images", "videos", "favorites", "indexing",
                         "metadata", "thumbnails", "watch", "hooks", "config_error"],
            "properties": {
                "version": string, "uptime_s": int, "items": int, "images": int, "videos": int,
                "favorites": int,
                "indexing": {
                    "type": "object",
                    "required": ["done", "walking", "found", "indexed", "errors", "elapsed_ms"],
                    "properties": { "done": boolean, "walking": boolean, "found": int, "indexed": int,
                                    "errors": int, "elapsed_ms": int },
                },
                "metadata": { "type": "object" },
                "thumbnails": { "type": "object" },
                "watch": {
                    "type": "object",
                    "required": ["mode", "media_missing"],
                    "properties": { "mode": string, "media_missing": boolean },
                },
                "hooks": { "type": "object" },
                "config_error": {
                    "type": ["string", "null"],
                    "description": "why the config file was not used, when spis started from --config-fallback",
                },
            },
        },
        "Item": {
            "type": "object",
            "required": ["id", "name", "dir", "kind", "format", "mime", "taken", "taken_source", "width",
                         "height", "orientation", "size", "favorite", "camera", "duration_ms", "thumbhash",
                         "thumb", "preview", "original"],
            "properties": {
                "id": string, "name": string, "dir": string,
                "kind": { "enum": ["image", "video"] },
                "format": string, "mime": string,
                "taken": { "type": "string", "description": "ISO 8601, with the offset where known" },
                "taken_source": string,
                "width": nullable("integer"), "height": nullable("integer"),
                "orientation": { "type": "integer", "minimum": 1, "maximum": 8 },
                "size": int, "favorite": boolean, "camera": nullable("string"),
                "duration_ms": nullable("integer"),
                "thumbhash": { "type": ["string", "null"], "description": "Base64 thumbhash" },
                "thumb": string, "preview": string, "original": string,
            },
        },
        "TrashIds": {
            "type": "object",
            "additionalProperties": false,
            "required": ["ids"],
            "properties": {
                "ids": { "type": "array", "minItems": 1, "maxItems": 10000,
                         "items": { "type": "string", "pattern": ID_PATTERN } },
            },
        },
        "TrashEntry": {
            "type": "object",
            "required": ["id", "media_id", "name", "dir", "kind", "size", "deleted", "purge", "thumb"],
            "properties": {
                "id": string, "media_id": string, "name": string, "dir": string,
                "kind": { "enum": ["image", "video"] },
                "size": int,
                "deleted": { "type": "string", "description": "RFC 3339" },
                "purge": { "type": "string", "description": "RFC 3339: when it goes for good" },
                "thumb": string,
            },
        },
        "Trash": {
            "type": "object",
            "properties": {
                "items": { "type": "array", "items": schema_ref("TrashEntry") },
                "trash_days": int,
                "purged": int,
            },
        },
        "UploadForm": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "dir": string,
                "mtime": { "type": "integer", "minimum": 0, "maximum": 253402300799_i64 },
                "file": { "type": "array", "items": { "type": "string", "format": "binary" } },
            },
        },
        "Uploaded": {
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": { "type": "array", "items": {
                    "type": "object",
                    "required": ["id", "dir", "name", "existed"],
                    "properties": { "id": string, "dir": string, "name": string, "existed": boolean },
                } },
            },
        },
        "Page": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": { "type": "array", "items": schema_ref("Item") },
                "next_cursor": nullable("string"),
            },
        },
        "Folder": {
            "type": "object",
            "required": ["name", "count", "total"],
            "properties": {
                "name": string, "count": int, "total": int,
                "children": { "type": "array", "items": schema_ref("Folder") },
            },
        },
        "Facets": {
            "type": "object",
            "required": ["years", "folders", "images", "videos", "favorites"],
            "properties": {
                "years": { "type": "array", "items": counted("year", json!({
                    "months": { "type": "array", "items": counted("month", json!({})) },
                })) },
                "folders": schema_ref("Folder"),
                "images": int, "videos": int, "favorites": int,
            },
        },
        "Details": {
            "type": "object",
            "required": ["make", "model", "lens"],
            "properties": { "make": nullable("string"), "model": nullable("string"), "lens": nullable("string") },
        },
        "OpenApi": { "type": "object", "required": ["openapi", "paths"] },
    })
}

/// The share links' schemas (apart, so each `json!` stays within the macro's recursion limit).
fn share_schemas() -> Value {
    let string = json!({ "type": "string" });
    let int = json!({ "type": "integer", "minimum": 0 });
    let boolean = json!({ "type": "boolean" });
    json!({
        "NewShare": new_share(),
        "Share": {
            "type": "object",
            "required": ["id", "title", "kind", "count", "created", "expires", "expired", "password",
                         "downloads", "views", "url"],
            "properties": {
                "id": { "type": "string", "pattern": SHARE_PATTERN },
                "title": string,
                "kind": { "enum": ["items", "folder", "month"] },
                "ids": { "type": "array", "items": { "type": "string", "pattern": ID_PATTERN } },
                "dir": string,
                "year": int, "month": int,
                "count": int,
                "created": { "type": "string", "description": "RFC 3339" },
                "expires": { "type": ["string", "null"], "description": "RFC 3339; null: never" },
                "expired": boolean, "password": boolean, "downloads": boolean, "views": int,
                "url": { "type": "string", "description": "The link to send, /s/TOKEN" },
            },
        },
        "Shares": {
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema_ref("Share") } },
        },
        "GuestOpen": {
            "type": "object", "required": ["token"], "additionalProperties": false,
            "properties": { "token": string, "password": string },
        },
        "Guest": {
            "type": "object",
            "required": ["id", "title", "kind", "count", "expires", "downloads"],
            "properties": {
                "id": { "type": "string", "pattern": SHARE_PATTERN },
                "title": string,
                "kind": { "enum": ["items", "folder", "month"] },
                "count": int,
                "expires": { "type": ["string", "null"] },
                "downloads": boolean,
            },
        },
    })
}

/// `POST /api/shares`: a selection, a folder or a month, and how the link behaves.
fn new_share() -> Value {
    let common = |required: &[&str], what: Value| {
        let mut props = json!({
            "title": { "type": "string", "maxLength": 200 },
            "expires_days": { "type": "integer", "minimum": 0, "maximum": 3650, "description": "0: never; default 7" },
            "password": { "type": "string", "minLength": crate::shares::MIN_PASSWORD_CHARS, "maxLength": 1024 },
            "downloads": { "type": "boolean", "description": "Guests may save originals and ZIPs (default true)" },
        });
        if let (Some(p), Value::Object(w)) = (props.as_object_mut(), what) {
            p.extend(w);
        }
        json!({ "type": "object", "additionalProperties": false, "required": required, "properties": props })
    };
    json!({ "oneOf": [
        common(&["ids"], json!({ "ids": { "type": "array", "minItems": 1, "maxItems": 10000,
                                          "items": { "type": "string", "pattern": ID_PATTERN } } })),
        common(&["dir"], json!({ "dir": { "type": "string", "minLength": 1 } })),
        common(&["year", "month"], json!({ "year": { "type": "integer", "minimum": 1, "maximum": 9999 },
                                             "month": { "type": "integer", "minimum": 1, "maximum": 12 } })),
    ] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_documented_with_its_methods() {
        let doc: Value = serde_json::from_slice(&document(&[320, 640])).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), ROUTES.len());
        for spec in ROUTES {
            let path = path_template(spec);
            let ops = paths[&path].as_object().unwrap_or_else(|| panic!("{path}"));
            let want: Vec<String> =
                documented_methods(spec).map(|m| m.as_str().to_ascii_lowercase()).collect();
            assert_eq!(ops.keys().cloned().collect::<Vec<_>>().len(), want.len(), "{path}");
            for m in &want {
                let op = &ops[m];
                assert_eq!(op["operationId"], format!("{}_{m}", spec.label));
                assert_eq!(
                    op["security"].as_array().unwrap().is_empty(),
                    spec.access == Access::Public,
                    "{path}"
                );
                // Every $ref names a schema that exists.
                let text = op.to_string();
                for name in text.split("#/components/schemas/").skip(1) {
                    let name = name.split('"').next().unwrap();
                    assert!(doc["components"]["schemas"].get(name).is_some(), "{path}: {name}");
                }
            }
        }
    }

    /// The patterns, checked by hand: the last character of an id or a cursor carries 4 bits, the
    /// first two of a cursor spell its version.
    #[test]
    fn links_lead_from_a_delete_to_operations_that_exist() {
        let doc: Value = serde_json::from_slice(&document(&[320])).unwrap();
        let mut ids = std::collections::HashSet::new();
        for ops in doc["paths"].as_object().unwrap().values() {
            for op in ops.as_object().unwrap().values() {
                ids.insert(op["operationId"].as_str().unwrap().to_owned());
            }
        }
        let links = &doc["paths"]["/api/media/{id}"]["delete"]["responses"]["200"]["links"];
        assert_eq!(links["restore"]["parameters"]["trash"], "$response.body#/id");
        let from_post = doc["paths"]["/api/trash"]["post"]["responses"]["200"]["links"].as_object().unwrap();
        for link in links.as_object().unwrap().values().chain(from_post.values()) {
            assert!(ids.contains(link["operationId"].as_str().unwrap()), "{link}");
        }
    }

    #[test]
    fn ids_and_cursors_match_their_documented_patterns() {
        let last = |s: &str| "AEIMQUYcgkosw048".contains(s.chars().last().unwrap());
        let alphabet = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        for n in [0u64, 1, 7, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            let id = crate::library::id::encode(n);
            assert!(id.len() == 11 && alphabet(&id) && last(&id), "{id}");
            let cursor = crate::library::id::encode_cursor((n as i64, n));
            let second = cursor.chars().nth(1).unwrap();
            assert!(cursor.len() == 23 && alphabet(&cursor) && last(&cursor), "{cursor}");
            assert!(
                cursor.starts_with('A') && (('Q'..='Z').contains(&second) || ('a'..='f').contains(&second))
            );
        }
        assert!(ID_PATTERN.contains("{10}") && CURSOR_PATTERN.contains("{20}"));
    }
}
