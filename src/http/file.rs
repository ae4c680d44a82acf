//! Answers GET and HEAD for one already opened file: validators, conditional requests, a single
//! byte range, and a body streamed in fixed-size chunks straight from the disk.
//!
//! The one rule it keeps: nothing from the request decides what is read except a byte range that
//! has been checked against the file's length, and nothing from the file name reaches a header
//! unescaped. The caller resolves ids to paths and opens the file; this module never sees a path.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use httpdate::HttpDate;
use hyper::body::{Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::fs::File;

use super::Body;
use super::error::ApiError;

/// Bytes read from the disk per body frame. tokio_util's 4 KiB default measured 0.1 GB/s and
/// 64-256 KiB 0.8-1.4 GB/s; hyper queues at most about two frames of this size, so a 1 GB file
/// went out at 2.3 GB/s over loopback (page cache) with a 6.5 MB peak RSS for the whole process.
const CHUNK: usize = 256 * 1024;

/// What the caller knows about the file it opened (the caller resolved the id to a path; this
/// module never sees a path or any user-supplied name except the download file name).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileInfo<'a> {
    pub len: u64,
    pub modified: SystemTime,
    pub content_type: &'static str,
    /// Strong validator the caller derives from identity + size + mtime, without quotes
    /// (quoted here by this module). Must be visible ASCII without `"`.
    pub etag: &'a str,
    /// When Some, `Content-Disposition: attachment` with this file name.
    pub download_name: Option<&'a str>,
    /// Cache-Control value, e.g. "private, max-age=0, must-revalidate" for originals.
    pub cache_control: &'static str,
}

/// Answers GET or HEAD for an already opened file (RFC 9110 §13 conditionals, §14 ranges).
pub(crate) async fn serve(
    method: &Method,
    headers: &HeaderMap,
    file: File,
    info: &FileInfo<'_>,
) -> Response<Body> {
    let head = *method == Method::HEAD;
    if !head && *method != Method::GET {
        return ApiError::MethodNotAllowed { method: method.to_string(), allow: "GET, HEAD" }.into_response();
    }
    let last_modified = http_date(info.modified);

    // 1. A client whose copy is current gets 304, whatever Range it sent (RFC 9110 §13.2.2).
    if is_not_modified(headers, info.etag, last_modified) {
        return reply(StatusCode::NOT_MODIFIED, info, last_modified, true);
    }

    // 2. Which bytes: the whole file unless a valid Range applies to this very version.
    let (status, start, len) = match requested_range(headers, info, last_modified) {
        RangeOutcome::Full => (StatusCode::OK, 0, info.len),
        RangeOutcome::Partial(start, end) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeOutcome::Unsatisfiable => return ApiError::RangeNotSatisfiable(info.len).into_response(),
    };

    // 3. Headers, identical for GET and HEAD.
    let mut response = reply(status, info, last_modified, true);
    let h = response.headers_mut();
    insert_static(h, header::CONTENT_TYPE, info.content_type);
    insert(h, header::CONTENT_LENGTH, len);
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {start}-{}/{}", start + len - 1, info.len);
        insert(h, header::CONTENT_RANGE, range);
    }
    if let Some(name) = info.download_name {
        insert(h, header::CONTENT_DISPOSITION, content_disposition(name));
    }

    // 4. Body: only the selected bytes, read lazily as hyper asks for them.
    if head || len == 0 {
        return response;
    }
    *response.body_mut() = FileBody::new(file.into_std().await, start, len).boxed_unsync();
    response
}

/// Answers GET or HEAD for bytes already in memory (a cached rendition): 304 when the client's
/// `If-None-Match` names `etag`, else 200 with the bytes. No ranges: renditions are small.
pub(crate) fn serve_bytes(
    method: &Method,
    headers: &HeaderMap,
    bytes: Bytes,
    content_type: &'static str,
    etag: &str,
    cache_control: &'static str,
) -> Response<Body> {
    let info = FileInfo {
        len: bytes.len() as u64,
        modified: UNIX_EPOCH,
        content_type,
        etag,
        download_name: None,
        cache_control,
    };
    if is_not_modified(headers, etag, None) {
        return reply(StatusCode::NOT_MODIFIED, &info, None, false);
    }
    let mut response = reply(StatusCode::OK, &info, None, false);
    let h = response.headers_mut();
    insert_static(h, header::CONTENT_TYPE, content_type);
    insert(h, header::CONTENT_LENGTH, bytes.len());
    if *method != Method::HEAD {
        *response.body_mut() = Full::new(bytes).map_err(|never| match never {}).boxed_unsync();
    }
    response
}

/// An empty answer with the headers every success carries, 304 included (RFC 9110 §15.4.5);
/// `ranges`: whether it says byte ranges are taken.
fn reply(
    status: StatusCode,
    info: &FileInfo<'_>,
    last_modified: Option<HttpDate>,
    ranges: bool,
) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = status;
    let h = response.headers_mut();
    // SECURITY: a caller bug must not let a quote or a control character into the ETag line.
    if info.etag.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        insert(h, header::ETAG, format!("\"{}\"", info.etag));
    } else {
        debug_assert!(false, "invalid etag {:?}", info.etag);
    }
    if let Some(date) = last_modified {
        insert(h, header::LAST_MODIFIED, date.to_string());
    }
    if !info.cache_control.is_empty() {
        insert_static(h, header::CACHE_CONTROL, info.cache_control);
    }
    if ranges {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    // SECURITY: never let a browser sniff a photo into HTML or script.
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Whether the request's `If-None-Match` names `etag` (so the answer is a 304).
pub(crate) fn etag_matches_request(headers: &HeaderMap, etag: &str) -> bool {
    is_not_modified(headers, etag, None)
}

fn is_not_modified(headers: &HeaderMap, etag: &str, last_modified: Option<HttpDate>) -> bool {
    let if_none_match = list_header(headers, &header::IF_NONE_MATCH);
    let if_modified_since = single_header(headers, &header::IF_MODIFIED_SINCE);
    not_modified(if_none_match.as_deref(), if_modified_since, etag, last_modified)
}

/// The Range to honour: none unless If-Range (RFC 9110 §13.1.5) says the client's copy is this one.
fn requested_range(
    headers: &HeaderMap,
    info: &FileInfo<'_>,
    last_modified: Option<HttpDate>,
) -> RangeOutcome {
    let Some(range) = single_header(headers, &header::RANGE) else {
        return RangeOutcome::Full;
    };
    let current = match headers.get(header::IF_RANGE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| if_range_matches(v, info.etag, last_modified)),
    };
    if current { parse_range(range, info.len) } else { RangeOutcome::Full }
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Sets a header from a value that is valid by construction; a value that is not (a caller's
/// odd content type, say) is dropped rather than allowed to panic the connection.
fn insert<V: TryInto<HeaderValue>>(h: &mut HeaderMap, name: HeaderName, value: V) {
    match value.try_into() {
        Ok(value) => {
            h.insert(name, value);
        }
        Err(_) => debug_assert!(false, "invalid value for header {name}"),
    }
}

/// Sets a header from a constant, without copying it; one with a byte a header cannot hold is
/// dropped, as [`insert`] does.
fn insert_static(h: &mut HeaderMap, name: HeaderName, value: &'static str) {
    // What HeaderValue::from_static accepts (it panics on anything else).
    if value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        h.insert(name, HeaderValue::from_static(value));
    } else {
        debug_assert!(false, "invalid value for header {name}");
    }
}

/// The value of a header that must appear once; two copies are ambiguous, so neither counts.
fn single_header<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// All lines of a list-valued header joined into one list, as RFC 9110 §5.3 allows. Bytes that are
/// not ASCII become U+FFFD, which no ETag of ours contains, so they can never match.
fn list_header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<_> =
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes())).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Streams `remaining` bytes from `offset`, one CHUNK per frame, so memory stays bounded whatever
/// the file size and a disconnect stops the reading (the body is dropped). Each chunk is read
/// straight into the buffer that becomes the frame (no copy through an intermediate buffer,
/// nothing zero-filled first): on the runtime's own thread when the page cache holds it (a
/// `preadv2` with `RWF_NOWAIT` never waits for the disk), else by `pread` on the blocking pool.
/// After a chunk came from the disk the next read starts at once, so reading a cold file
/// overlaps writing the socket; a warm file costs no thread hop per chunk.
#[derive(Debug)]
struct FileBody {
    file: Arc<std::fs::File>,
    offset: u64,
    /// Bytes not yet handed out, the read in flight included.
    remaining: u64,
    /// The read in flight on the blocking pool: the chunk at `offset`.
    next: Option<tokio::task::JoinHandle<io::Result<Bytes>>>,
}

impl FileBody {
    fn new(file: std::fs::File, offset: u64, len: u64) -> FileBody {
        FileBody { file: Arc::new(file), offset, remaining: len, next: None }
    }

    fn want(&self) -> usize {
        usize::try_from(self.remaining).map_or(CHUNK, |r| r.min(CHUNK))
    }

    /// Starts reading the chunk at `offset` on the blocking pool, unless everything has been read.
    fn start_read(&mut self) {
        if self.remaining == 0 {
            return;
        }
        let (file, offset, want) = (Arc::clone(&self.file), self.offset, self.want());
        self.next = Some(tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(want);
            rustix::io::pread(&*file, rustix::buffer::spare_capacity(&mut buf), offset)?;
            Ok(Bytes::from(buf))
        }));
    }

    /// Hands out a chunk: moves past it, or fails the body if the file ended early.
    fn advance(&mut self, chunk: Bytes) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if chunk.is_empty() {
            // Content-Length is already on the wire: fail the connection rather than send less.
            self.remaining = 0;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being sent",
            ))));
        }
        self.offset += chunk.len() as u64;
        self.remaining -= chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

/// The bytes at `offset` (at most `want`, at least one) if the page cache holds them, without
/// waiting for the disk. None when it would wait (EAGAIN), when the file system or kernel cannot
/// tell (EOPNOTSUPP, ENOSYS), at the end of the file or on any error: the blocking read that
/// follows gives the real answer.
fn read_cached(file: &std::fs::File, offset: u64, want: usize) -> Option<Bytes> {
    use std::os::fd::AsRawFd as _;
    let mut buf = Vec::<u8>::with_capacity(want);
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: want };
    let offset = libc::off_t::try_from(offset).ok()?;
    // SAFETY: the one iovec describes `want` bytes of `buf`'s allocation, which the kernel may
    // write and nothing reads until `set_len` below, and then only the `n` bytes it wrote.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    let n = usize::try_from(n).ok().filter(|&n| n > 0 && n <= want)?;
    // SAFETY: the kernel initialized the first `n` bytes (checked above: 0 < n <= capacity).
    unsafe { buf.set_len(n) };
    Some(Bytes::from(buf))
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.next.is_none() {
            if this.remaining == 0 {
                return Poll::Ready(None);
            }
            if let Some(chunk) = read_cached(&this.file, this.offset, this.want()) {
                return this.advance(chunk);
            }
            this.start_read();
        }
        let Some(read) = this.next.as_mut() else {
            return Poll::Ready(None);
        };
        let chunk = ready!(Pin::new(read).poll(cx));
        this.next = None;
        let chunk = chunk.map_err(io::Error::other)??;
        let frame = this.advance(chunk);
        // The file is being read from the disk: read ahead while this chunk goes out.
        this.start_read();
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

impl Drop for FileBody {
    fn drop(&mut self) {
        // A client gone mid-file: a read not started yet never starts; one under way finishes
        // and its chunk is dropped.
        if let Some(read) = self.next.take() {
            read.abort();
        }
    }
}

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeOutcome {
    /// No usable range: send the whole file with 200.
    Full,
    /// Send bytes `start..=end`, both within the file, with 206.
    Partial(u64, u64),
    /// A valid range that selects nothing in this file: 416.
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b | a- | -n` (RFC 9110 §14.1.2) against a file of `len` bytes.
fn parse_range(header: &str, len: u64) -> RangeOutcome {
    // Anything we do not understand is ignored, which RFC 9110 §14.2 allows for any Range.
    let Some((unit, set)) = header.trim().split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeOutcome::Full;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        // SECURITY: several ranges get the plain 200. multipart/byteranges is rarely used (players
        // and browsers ask for one range), and many small or overlapping ranges are a known way to
        // make a server do far more work than the file is worth (CVE-2011-3192).
        return RangeOutcome::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Full;
    };
    match (position(first), position(last)) {
        // Suffix `-n`: the last n bytes. `-0` selects nothing, and neither does any suffix of an
        // empty file: RFC 9110 calls that satisfiable, but no Content-Range can describe it.
        (None, Some(n)) if first.is_empty() => match n.min(len) {
            0 => RangeOutcome::Unsatisfiable,
            n => RangeOutcome::Partial(len - n, len - 1),
        },
        (Some(start), None) if last.is_empty() => satisfiable(start, u64::MAX, len),
        (Some(start), Some(end)) if start <= end => satisfiable(start, end, len),
        _ => RangeOutcome::Full,
    }
}

/// `start..=end` clamped to the file: an end past it means "to the end" (RFC 9110 §14.1.1).
fn satisfiable(start: u64, end: u64, len: u64) -> RangeOutcome {
    if start >= len { RangeOutcome::Unsatisfiable } else { RangeOutcome::Partial(start, end.min(len - 1)) }
}

/// A byte position: digits only (`u64::from_str` would also take `+`). The grammar allows any
/// number of digits, so a number too large for u64 means "past any file", not "invalid".
fn position(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

/// RFC 9110 §13.2.2 steps 3 and 4 for GET and HEAD: If-None-Match decides alone when present,
/// since an ETag is more precise than a date with one-second resolution.
fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    last_modified: Option<HttpDate>,
) -> bool {
    match (if_none_match, if_modified_since, last_modified) {
        (Some(inm), _, _) => etag_matches(inm, etag),
        (None, Some(ims), Some(lm)) => ims.trim().parse::<HttpDate>().is_ok_and(|ims| lm <= ims),
        _ => false,
    }
}

/// Weak comparison of our (unquoted) `etag` against an If-None-Match list: `*`, `"x"`, `W/"x"`,
/// comma separated. A malformed list matches nothing, so the client just gets the file.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let mut rest = if_none_match;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        if rest.starts_with('*') {
            return true;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        // Scan quote to quote rather than split on commas: a comma is legal inside an entity-tag.
        let Some((opaque, after)) = tag.strip_prefix('"').and_then(|t| t.split_once('"')) else {
            return false;
        };
        if opaque == etag {
            return true;
        }
        rest = after;
    }
}

/// If-Range uses strong comparison: a weak tag never matches, a date must equal Last-Modified.
fn if_range_matches(if_range: &str, etag: &str, last_modified: Option<HttpDate>) -> bool {
    let value = if_range.trim();
    if value.starts_with('"') {
        return value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) == Some(etag);
    }
    match (value.parse::<HttpDate>(), last_modified) {
        (Ok(date), Some(lm)) => date == lm,
        _ => false,
    }
}

/// Last-Modified for an mtime, if HTTP can express it. httpdate panics before 1970 and after
/// year 9999; a photo with a broken mtime must still be served, just without the date.
fn http_date(time: SystemTime) -> Option<HttpDate> {
    const YEAR_10000: u64 = 253_402_300_800;
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (secs < YEAR_10000).then(|| HttpDate::from(time))
}

/// `attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266 §4.3, RFC 8187).
pub(super) fn content_disposition(name: &str) -> String {
    // SECURITY: the name is the only file-derived text in a header. In the fallback every
    // character that could end the quoted string or the line (`"`, `\`, CR, LF, other controls)
    // or is not ASCII becomes `_`; the extended form percent-encodes all but RFC 8187 attr-chars.
    // Either way no byte of the name can start a new parameter or a new header.
    let fallback: String = name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn range_header_table() {
        use RangeOutcome::{Full, Partial, Unsatisfiable};
        let len = 1000;
        let cases: &[(&str, u64, RangeOutcome)] = &[
            ("bytes=0-499", len, Partial(0, 499)),
            ("bytes=500-999", len, Partial(500, 999)),
            ("bytes=0-0", len, Partial(0, 0)),
            ("bytes=999-999", len, Partial(999, 999)),
            ("bytes=500-", len, Partial(500, 999)),
            ("bytes=0-", len, Partial(0, 999)),
            ("bytes=-1", len, Partial(999, 999)),
            ("bytes=-100", len, Partial(900, 999)),
            ("bytes=-5000", len, Partial(0, 999)),
            ("bytes=-99999999999999999999", len, Partial(0, 999)),
            ("bytes=900-5000", len, Partial(900, 999)),
            ("bytes=0-99999999999999999999", len, Partial(0, 999)),
            ("BYTES=1-2", len, Partial(1, 2)),
            ("  bytes=1-2  ", len, Partial(1, 2)),
            ("bytes= 1-2 ", len, Partial(1, 2)),
            ("bytes=1-2, ", len, Partial(1, 2)),
            ("bytes=1000-", len, Unsatisfiable),
            ("bytes=1000-2000", len, Unsatisfiable),
            ("bytes=5000-", len, Unsatisfiable),
            ("bytes=99999999999999999999-", len, Unsatisfiable),
            ("bytes=-0", len, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-2", len, Full),
            ("bytes=0-1,5-6", len, Full),
            ("bytes=0-1,0-1,0-1", len, Full),
            ("items=0-1", len, Full),
            ("bytes 0-1", len, Full),
            ("bytes=", len, Full),
            ("bytes=-", len, Full),
            ("bytes=a-b", len, Full),
            ("bytes=+1-2", len, Full),
            ("bytes=1-+2", len, Full),
            ("bytes=--1", len, Full),
            ("bytes=1--2", len, Full),
            ("bytes=1 - 2", len, Full),
            ("bytes=0x10-0x20", len, Full),
            ("", len, Full),
            ("bytes=a-b", 0, Full),
        ];
        for &(header, len, expected) in cases {
            assert_eq!(parse_range(header, len), expected, "{header:?} on {len} bytes");
        }
    }

    #[test]
    fn if_none_match_uses_weak_comparison_over_lists() {
        let cases: &[(&str, bool)] = &[
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("*", true),
            (" * ", true),
            ("\"x\", \"abc\"", true),
            ("\"x\",W/\"abc\"", true),
            ("\"x\"   ,\t \"abc\"", true),
            ("\"a,b\", \"abc\"", true),
            ("\"x\", *", true),
            ("\"abcd\"", false),
            ("\"ab\"", false),
            ("abc", false),
            ("\"abc", false),
            ("w/\"abc\"", false),
            ("\"x\" \"y\"", false),
            ("", false),
            (",,", false),
        ];
        for &(header, expected) in cases {
            assert_eq!(etag_matches(header, "abc"), expected, "{header:?}");
        }
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let lm = http_date(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert!(if_range_matches("\"abc\"", "abc", lm));
        assert!(!if_range_matches("W/\"abc\"", "abc", lm));
        assert!(!if_range_matches("\"other\"", "abc", lm));
        assert!(if_range_matches("Tue, 14 Nov 2023 22:13:20 GMT", "abc", lm));
        assert!(!if_range_matches("Tue, 14 Nov 2023 22:13:21 GMT", "abc", lm));
        assert!(!if_range_matches("Tue, 14 Nov 2023 22:13:20 GMT", "abc", None));
        assert!(!if_range_matches("yesterday", "abc", lm));
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        let lm = http_date(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let same = Some("Tue, 14 Nov 2023 22:13:20 GMT");
        let later = Some("Wed, 15 Nov 2023 00:00:00 GMT");
        let earlier = Some("Mon, 13 Nov 2023 00:00:00 GMT");
        assert!(not_modified(Some("\"abc\""), None, "abc", lm));
        assert!(!not_modified(Some("\"old\""), later, "abc", lm), "a failed If-None-Match wins");
        assert!(not_modified(None, same, "abc", lm));
        assert!(not_modified(None, later, "abc", lm));
        assert!(!not_modified(None, earlier, "abc", lm));
        assert!(!not_modified(None, Some("not a date"), "abc", lm));
        assert!(!not_modified(None, later, "abc", None), "no Last-Modified, nothing to compare");
        assert!(!not_modified(None, None, "abc", lm));
    }

    #[test]
    fn subsecond_mtime_still_matches_its_own_last_modified() {
        let lm = http_date(UNIX_EPOCH + Duration::from_millis(1_700_000_000_999));
        assert!(not_modified(None, Some("Tue, 14 Nov 2023 22:13:20 GMT"), "abc", lm));
    }

    #[test]
    fn mtimes_http_cannot_express_give_no_date_instead_of_a_panic() {
        assert!(http_date(UNIX_EPOCH - Duration::from_secs(1)).is_none());
        assert!(http_date(UNIX_EPOCH + Duration::from_secs(253_402_300_800)).is_none());
        assert!(http_date(UNIX_EPOCH + Duration::from_secs(253_402_300_799)).is_some());
        assert_eq!(http_date(UNIX_EPOCH).unwrap().to_string(), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn content_disposition_escapes_every_name() {
        let cases: &[(&str, &str)] = &[
            ("IMG_0001.JPG", "attachment; filename=\"IMG_0001.JPG\"; filename*=UTF-8''IMG_0001.JPG"),
            (
                "Été à Noël.jpg",
                "attachment; filename=\"_t_ _ No_l.jpg\"; filename*=UTF-8''%C3%89t%C3%A9%20%C3%A0%20No%C3%ABl.jpg",
            ),
            (
                "say \"hi\"\\.png",
                "attachment; filename=\"say _hi__.png\"; filename*=UTF-8''say%20%22hi%22%5C.png",
            ),
            (
                "a\r\nSet-Cookie: s=1\".jpg",
                "attachment; filename=\"a__Set-Cookie: s=1_.jpg\"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20s%3D1%22.jpg",
            ),
            (
                "tab\there\u{7f}\0.mp4",
                "attachment; filename=\"tab_here__.mp4\"; filename*=UTF-8''tab%09here%7F%00.mp4",
            ),
            (
                "a;b=c'd%e.jpg",
                "attachment; filename=\"a;b=c'd%e.jpg\"; filename*=UTF-8''a%3Bb%3Dc%27d%25e.jpg",
            ),
        ];
        for &(name, expected) in cases {
            let value = content_disposition(name);
            assert_eq!(value, expected, "{name:?}");
            assert!(HeaderValue::from_str(&value).is_ok(), "{name:?} must make a valid header");
            assert!(value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()), "{name:?}");
            assert_eq!(value.matches('"').count(), 2, "{name:?}: the quoted string must not be closed early");
        }
    }

    /// A temp file holding `bytes`, removed on drop.
    pub(super) fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        file
    }

    /// Deterministic pseudo-random bytes (xorshift), so slices at any offset are distinct.
    pub(super) fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    async fn collect(mut body: FileBody) -> (Vec<usize>, Result<Vec<u8>, io::Error>) {
        use http_body_util::BodyExt as _;
        let (mut sizes, mut out) = (Vec::new(), Vec::new());
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    let data = frame.into_data().unwrap();
                    sizes.push(data.len());
                    out.extend_from_slice(&data);
                }
                Err(e) => return (sizes, Err(e)),
            }
        }
        (sizes, Ok(out))
    }

    #[tokio::test]
    async fn body_streams_in_bounded_chunks() {
        let data = noise(3 * CHUNK + 123);
        let tmp = temp_file(&data);
        let file = std::fs::File::open(tmp.path()).unwrap();
        let len = data.len() as u64;
        let (sizes, bytes) = collect(FileBody::new(file, 0, len)).await;
        assert!(sizes.iter().all(|&n| n > 0 && n <= CHUNK), "{sizes:?}");
        assert_eq!(bytes.unwrap(), data);
    }

    /// A file just written is in the page cache: read there, at any offset, with no thread hop.
    /// Once its pages are dropped the cached read declines, and the body still sends every byte
    /// (from the blocking pool), cold chunks and warm ones alike.
    #[tokio::test]
    async fn warm_chunks_are_read_in_place_and_cold_ones_on_the_pool() {
        use rustix::fs::{Advice, fadvise};
        let data = noise(3 * CHUNK + 123);
        let tmp = temp_file(&data);
        let file = std::fs::File::open(tmp.path()).unwrap();
        // A file system that cannot tell (EOPNOTSUPP) always declines, which is correct there but
        // leaves nothing to check in place: only the body's bytes are.
        let mut probe = [0u8; 1];
        let told = rustix::io::preadv2(
            &file,
            &mut [io::IoSliceMut::new(&mut probe)],
            0,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) != Err(rustix::io::Errno::OPNOTSUPP);
        if !told {
            eprintln!("{}: RWF_NOWAIT not supported here; only the body is checked", tmp.path().display());
            let (_, bytes) = collect(FileBody::new(file, 0, data.len() as u64)).await;
            assert_eq!(bytes.unwrap(), data);
            return;
        }
        let got = read_cached(&file, 5, CHUNK).expect("a file just written is in the page cache");
        assert_eq!(&got[..], &data[5..5 + CHUNK]);
        let tail = read_cached(&file, data.len() as u64 - 3, CHUNK).unwrap();
        assert_eq!(&tail[..], &data[data.len() - 3..]);
        assert!(read_cached(&file, data.len() as u64, CHUNK).is_none(), "the end of the file");

        // Clean pages of a synced file go when asked (tmpfs keeps them: it has no disk).
        tmp.as_file().sync_all().unwrap();
        fadvise(&file, 0, None, Advice::DontNeed).unwrap();
        #[allow(clippy::unnecessary_cast)] // the field's type differs between libcs
        if rustix::fs::statfs(tmp.path()).unwrap().f_type as i64 != libc::TMPFS_MAGIC as i64 {
            assert!(read_cached(&file, CHUNK as u64, CHUNK).is_none(), "dropped pages are not read in place");
        }
        // Warm the first chunk again: the body mixes both kinds of read.
        std::fs::read(tmp.path()).unwrap();
        fadvise(&file, CHUNK as u64, None, Advice::DontNeed).unwrap();
        let (sizes, bytes) = collect(FileBody::new(file, 0, data.len() as u64)).await;
        assert!(sizes.iter().all(|&n| n > 0 && n <= CHUNK), "{sizes:?}");
        assert_eq!(bytes.unwrap(), data);
    }

    #[tokio::test]
    async fn body_fails_instead_of_sending_less_than_promised() {
        let tmp = temp_file(&noise(1000));
        let file = std::fs::File::open(tmp.path()).unwrap();
        let (_, result) = collect(FileBody::new(file, 0, 2000)).await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}

/// The real thing over TCP: a hyper server on 127.0.0.1:0 serving a 3 MB temp file, and a raw
/// HTTP/1.1 client so the test sees exactly the bytes on the wire.
#[cfg(test)]
mod wire_tests {
    use super::tests::{noise, temp_file};
    use super::*;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const ETAG: &str = "v1-3000000";
    const EVIL_NAME: &str = "Été\r\nSet-Cookie: stolen=1\".jpg";

    struct Server {
        addr: SocketAddr,
        data: Vec<u8>,
        last_modified: String,
        _file: tempfile::NamedTempFile,
    }

    /// Serves `data` at every path; `/download` also asks for an attachment named EVIL_NAME.
    async fn start(data: Vec<u8>) -> Server {
        let file = temp_file(&data);
        let path = Arc::new(file.path().to_path_buf());
        let modified = std::fs::metadata(file.path()).unwrap().modified().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let len = data.len() as u64;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let path = Arc::clone(&path);
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let path = Arc::clone(&path);
                    async move {
                        let file = File::open(&*path).await.unwrap();
                        let info = FileInfo {
                            len,
                            modified,
                            content_type: "image/jpeg",
                            etag: ETAG,
                            download_name: (req.uri().path() == "/download").then_some(EVIL_NAME),
                            cache_control: "private, max-age=0, must-revalidate",
                        };
                        Ok::<_, Infallible>(serve(req.method(), req.headers(), file, &info).await)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        let last_modified = http_date(modified).unwrap().to_string();
        Server { addr, data, last_modified, _file: file }
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        raw_head: String,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    async fn send(server: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();

        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers");
        let raw_head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut lines = raw_head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_string(), value.trim().to_string())
            })
            .collect();
        Reply { status, headers, raw_head, body: raw[split + 4..].to_vec() }
    }

    fn three_megabytes() -> Vec<u8> {
        noise(3_000_000)
    }

    #[tokio::test]
    async fn get_returns_the_whole_file_with_its_headers() {
        let server = start(three_megabytes()).await;
        let reply = send(&server, "GET", "/", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-length"), Some("3000000"));
        assert_eq!(reply.header("content-type"), Some("image/jpeg"));
        assert_eq!(reply.header("accept-ranges"), Some("bytes"));
        assert_eq!(reply.header("etag"), Some("\"v1-3000000\""));
        assert_eq!(reply.header("last-modified"), Some(server.last_modified.as_str()));
        assert_eq!(reply.header("cache-control"), Some("private, max-age=0, must-revalidate"));
        assert_eq!(reply.header("content-range"), None);
        assert_eq!(reply.header("content-disposition"), None);
        assert!(reply.body == server.data, "body differs from the file");
    }

    #[tokio::test]
    async fn ranges_return_exactly_the_requested_slices() {
        let server = start(three_megabytes()).await;
        let cases: &[(&str, usize, usize)] = &[
            ("bytes=0-0", 0, 0),
            ("bytes=0-99999", 0, 99_999),
            ("bytes=1234567-1999999", 1_234_567, 1_999_999),
            ("bytes=2999000-", 2_999_000, 2_999_999),
            ("bytes=2999990-9999999", 2_999_990, 2_999_999),
            ("bytes=-500", 2_999_500, 2_999_999),
            ("bytes=-9999999", 0, 2_999_999),
        ];
        for &(range, start, end) in cases {
            let reply = send(&server, "GET", "/", &[("Range", range)]).await;
            assert_eq!(reply.status, 206, "{range}");
            assert_eq!(reply.header("content-range"), Some(format!("bytes {start}-{end}/3000000").as_str()));
            assert_eq!(reply.header("content-length"), Some((end - start + 1).to_string().as_str()));
            assert!(reply.body == server.data[start..=end], "{range}: body differs from the slice");
        }
    }

    #[tokio::test]
    async fn unusable_ranges_get_the_whole_file() {
        let server = start(three_megabytes()).await;
        for range in ["bytes=0-1,5-9", "bytes=9-2", "pages=1-2", "bytes=x-"] {
            let reply = send(&server, "GET", "/", &[("Range", range)]).await;
            assert_eq!(reply.status, 200, "{range}");
            assert_eq!(reply.body.len(), 3_000_000, "{range}");
        }
    }

    #[tokio::test]
    async fn range_past_the_end_is_416_with_json() {
        let server = start(three_megabytes()).await;
        let reply = send(&server, "GET", "/", &[("Range", "bytes=3000000-")]).await;
        assert_eq!(reply.status, 416);
        assert_eq!(reply.header("content-range"), Some("bytes */3000000"));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(json["code"], "range_not_satisfiable");
        assert!(json["error"].is_string());
    }

    #[tokio::test]
    async fn matching_if_none_match_is_304_without_body() {
        let server = start(three_megabytes()).await;
        for inm in ["\"v1-3000000\"", "W/\"v1-3000000\"", "\"old\", \"v1-3000000\"", "*"] {
            let reply = send(&server, "GET", "/", &[("If-None-Match", inm), ("Range", "bytes=0-9")]).await;
            assert_eq!(reply.status, 304, "{inm}");
            assert_eq!(reply.header("etag"), Some("\"v1-3000000\""));
            assert_eq!(reply.header("cache-control"), Some("private, max-age=0, must-revalidate"));
            assert!(reply.body.is_empty());
        }
        let stale = send(&server, "GET", "/", &[("If-None-Match", "\"old\"")]).await;
        assert_eq!(stale.status, 200);
    }

    #[tokio::test]
    async fn if_modified_since_is_304_only_without_if_none_match() {
        let server = start(three_megabytes()).await;
        let ims = server.last_modified.clone();
        let reply = send(&server, "GET", "/", &[("If-Modified-Since", &ims)]).await;
        assert_eq!(reply.status, 304);
        assert!(reply.body.is_empty());

        let with_etag = [("If-Modified-Since", ims.as_str()), ("If-None-Match", "\"old\"")];
        let reply = send(&server, "GET", "/", &with_etag).await;
        assert_eq!(reply.status, 200, "a stale ETag wins over a fresh date");

        let old = send(&server, "GET", "/", &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")]).await;
        assert_eq!(old.status, 200);
    }

    #[tokio::test]
    async fn if_range_mismatch_sends_the_whole_file() {
        let server = start(three_megabytes()).await;
        let lm = server.last_modified.clone();
        let full = send(&server, "GET", "/", &[("Range", "bytes=0-9"), ("If-Range", "\"v0-old\"")]).await;
        assert_eq!(full.status, 200);
        assert!(full.body == server.data);
        let weak =
            send(&server, "GET", "/", &[("Range", "bytes=0-9"), ("If-Range", "W/\"v1-3000000\"")]).await;
        assert_eq!(weak.status, 200);

        let by_tag =
            send(&server, "GET", "/", &[("Range", "bytes=0-9"), ("If-Range", "\"v1-3000000\"")]).await;
        assert_eq!(by_tag.status, 206);
        let by_date = send(&server, "GET", "/", &[("Range", "bytes=0-9"), ("If-Range", &lm)]).await;
        assert_eq!(by_date.status, 206);
        assert_eq!(by_date.body, server.data[..10]);
    }

    #[tokio::test]
    async fn head_has_the_get_headers_and_no_body() {
        let server = start(three_megabytes()).await;
        let get = send(&server, "GET", "/", &[]).await;
        let head = send(&server, "HEAD", "/", &[]).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("3000000"));
        assert!(head.body.is_empty());
        let without_date =
            |r: &Reply| r.headers.iter().filter(|(n, _)| n != "date").cloned().collect::<Vec<_>>();
        assert_eq!(without_date(&head), without_date(&get));

        let partial = send(&server, "HEAD", "/", &[("Range", "bytes=10-19")]).await;
        assert_eq!(partial.status, 206);
        assert_eq!(partial.header("content-length"), Some("10"));
        assert!(partial.body.is_empty());
    }

    #[tokio::test]
    async fn other_methods_are_405() {
        let server = start(three_megabytes()).await;
        let reply = send(&server, "DELETE", "/", &[]).await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }

    #[tokio::test]
    async fn download_name_cannot_inject_a_header() {
        let server = start(three_megabytes()).await;
        let reply = send(&server, "GET", "/download", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-disposition"),
            Some(
                "attachment; filename=\"_t___Set-Cookie: stolen=1_.jpg\"; filename*=UTF-8''%C3%89t%C3%A9%0D%0ASet-Cookie%3A%20stolen%3D1%22.jpg"
            )
        );
        assert!(reply.header("set-cookie").is_none(), "{}", reply.raw_head);
        assert!(reply.body == server.data);
    }

    #[tokio::test]
    async fn empty_file_is_200_and_any_range_is_416() {
        let server = start(Vec::new()).await;
        let reply = send(&server, "GET", "/", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-length"), Some("0"));
        assert!(reply.body.is_empty());
        for range in ["bytes=0-", "bytes=0-0", "bytes=-1"] {
            let reply = send(&server, "GET", "/", &[("Range", range)]).await;
            assert_eq!(reply.status, 416, "{range}");
            assert_eq!(reply.header("content-range"), Some("bytes */0"));
        }
    }
}
