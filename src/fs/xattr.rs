//! Extended attributes through the raw `lgetxattr`/`lsetxattr`/`lremovexattr` syscalls.
//!
//! The `l` variants act on a symlink itself, never on what it points to, so a link planted in the
//! media folder cannot make spis write to a file outside it. The one rule: an attribute that is
//! unsupported where it lives is `Ok(None)` on read and [`XattrError::Unsupported`] on write, so
//! callers can fall back to the state dir instead of failing.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why an attribute could not be written.
#[derive(Debug, thiserror::Error)]
pub enum XattrError {
    /// The filesystem, the mount or the permissions do not allow user attributes here
    /// (vfat/exFAT, read-only media, files owned by someone else, a full attribute block).
    #[error("extended attributes unavailable here: {0}")]
    Unsupported(io::Error),
    #[error(transparent)]
    Io(io::Error),
}

impl XattrError {
    fn classify(e: io::Error) -> XattrError {
        match e.raw_os_error() {
            Some(
                libc::ENOTSUP
                | libc::EROFS
                | libc::EACCES
                | libc::EPERM
                | libc::ENOSPC
                | libc::E2BIG
                | libc::EDQUOT
                | libc::ERANGE,
            ) => XattrError::Unsupported(e),
            _ => XattrError::Io(e),
        }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn c_name(name: &str) -> CString {
    CString::new(name).expect("attribute names are constants without NUL")
}

/// Reads attribute `name` into `buf`; `Ok(None)` when it is absent or attributes are unsupported.
/// Values larger than `buf` are treated as absent: spis never writes them, so they are not ours.
pub fn get<'b>(path: &Path, name: &str, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
    let p = c_path(path)?;
    let n = c_name(name);
    // SAFETY: both strings are NUL-terminated and live across the call; buf is valid for
    // buf.len() writable bytes.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len >= 0 {
        return Ok(Some(&buf[..len as usize]));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODATA | libc::ENOTSUP | libc::ERANGE | libc::EACCES | libc::EPERM) => Ok(None),
        _ => Err(e),
    }
}

/// Sets attribute `name` to `value`.
pub fn set(path: &Path, name: &str, value: &[u8]) -> Result<(), XattrError> {
    let p = c_path(path).map_err(XattrError::Io)?;
    let n = c_name(name);
    // SAFETY: both strings are NUL-terminated; value is valid for value.len() bytes.
    let rc = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 { Ok(()) } else { Err(XattrError::classify(io::Error::last_os_error())) }
}

/// Removes attribute `name`; removing an absent attribute succeeds.
pub fn remove(path: &Path, name: &str) -> Result<(), XattrError> {
    let p = c_path(path).map_err(XattrError::Io)?;
    let n = c_name(name);
    // SAFETY: both strings are NUL-terminated and live across the call.
    let rc = unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODATA) => Ok(()),
        _ => Err(XattrError::classify(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove_round_trip_on_a_real_file() {
        let path = std::env::temp_dir().join(format!("spis-xattr-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(get(&path, "user.spis.test", &mut buf).unwrap(), None);
        set(&path, "user.spis.test", b"hello").unwrap();
        assert_eq!(get(&path, "user.spis.test", &mut buf).unwrap(), Some(&b"hello"[..]));
        remove(&path, "user.spis.test").unwrap();
        remove(&path, "user.spis.test").unwrap();
        assert_eq!(get(&path, "user.spis.test", &mut buf).unwrap(), None);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn missing_file_is_an_error_not_absent() {
        let mut buf = [0u8; 8];
        assert!(get(Path::new("/nonexistent/spis"), "user.x", &mut buf).is_err());
    }
}
