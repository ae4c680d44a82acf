//! Media ids and list cursors: short, URL-safe, opaque strings.
//!
//! An id is the 64-bit xxh3 hash of the file's path relative to the media root, so it is the same
//! after a restart and on every replica that mounts the same folder, with nothing stored. The rule:
//! decoding never trusts its input; anything malformed is `None`, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The id of the file at `rel_key` (`dir/name` below the media root).
pub(crate) fn from_rel_path(rel_key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(rel_key)
}

/// 11 URL-safe characters.
pub(crate) fn encode(id: u64) -> String {
    Text::new(id).as_str().to_owned()
}

/// An encoded id on the stack, for writing many of them without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text([u8; 11]);

impl Text {
    pub(crate) fn new(id: u64) -> Text {
        let mut buf = [0u8; 11];
        URL_SAFE_NO_PAD.encode_slice(id.to_be_bytes(), &mut buf).expect("8 bytes encode to 11 characters");
        Text(buf)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64 is ASCII")
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn decode(s: &str) -> Option<u64> {
    if s.len() != 11 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
    let id = u64::from_be_bytes(bytes.try_into().ok()?);
    // Reject non-canonical spellings (trailing bits set) so each id has exactly one string.
    (encode(id) == s).then_some(id)
}

/// Position in the sort order: (date taken in local ms, id).
pub(crate) type SortKey = (i64, u64);

const CURSOR_VERSION: u8 = 1;

/// A cursor names the last item of the previous page, so pages stay exact while files come and go.
pub(crate) fn encode_cursor(key: SortKey) -> String {
    let mut b = [0u8; 17];
    b[0] = CURSOR_VERSION;
    b[1..9].copy_from_slice(&key.0.to_be_bytes());
    b[9..].copy_from_slice(&key.1.to_be_bytes());
    URL_SAFE_NO_PAD.encode(b)
}

pub(crate) fn decode_cursor(s: &str) -> Option<SortKey> {
    if s.len() > 32 {
        return None;
    }
    let b = URL_SAFE_NO_PAD.decode(s).ok()?;
    if b.len() != 17 || b[0] != CURSOR_VERSION {
        return None;
    }
    let taken = i64::from_be_bytes(b[1..9].try_into().ok()?);
    let id = u64::from_be_bytes(b[9..].try_into().ok()?);
    Some((taken, id))
}

/// A short validator for a file's current content, for cache-busting URLs and ETags.
pub(crate) fn version(size: u64, mtime_ns: i64) -> String {
    format!("{:08x}", version_u32(size, mtime_ns))
}

/// 32 bits of a hash of size and mtime: changes whenever the file does (but for 1 in 4 billion).
pub(crate) fn version_u32(size: u64, mtime_ns: i64) -> u32 {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&size.to_le_bytes());
    b[8..].copy_from_slice(&mtime_ns.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_stable() {
        let id = from_rel_path(b"2023/Trip/IMG_0001.jpg");
        // Pinned: ids are stored by users (bookmarks, static sites), so the hash must never change.
        assert_eq!(encode(id), encode(xxhash_rust::xxh3::xxh3_64(b"2023/Trip/IMG_0001.jpg")));
        for id in [0, 1, id, u64::MAX] {
            let s = encode(id);
            assert_eq!(s.len(), 11);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(decode(&s), Some(id));
        }
    }

    #[test]
    fn malformed_ids_and_cursors_are_rejected() {
        for bad in ["", "abc", "AAAAAAAAAAB", "AAAAAAAAAA=", "../../etc/pa", "AAAAAAAAAA\0"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        let c = encode_cursor((-5, 42));
        assert_eq!(decode_cursor(&c), Some((-5, 42)));
        for bad in ["", "x", &c[..c.len() - 1], "AAAAAAAAAAAAAAAAAAAAAAA", &"A".repeat(1000)] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }
}
