//! Extended attributes through the raw `fgetxattr`/`fsetxattr`/`fremovexattr` syscalls.
//!
//! They act on a file already opened beneath the media root (see `beneath`), never on a path, so
//! a link planted anywhere on the way cannot make spis read or write a file outside it. The rule: an attribute that is
//! unsupported where it lives is `Ok(None)` on read and [`XattrError::Unsupported`] on write, so
//! callers can fall back to the state dir instead of failing.

use std::io;
use std::os::fd::AsFd;

use rustix::io::Errno;

/// Why an attribute could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum XattrError {
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

/// Reads attribute `name` of an open file into `buf`; `Ok(None)` when it is absent or attributes
/// are unsupported. Values larger than `buf` are treated as absent: spis never writes them, so
/// they are not ours.
pub(crate) fn get<'b>(fd: impl AsFd, name: &str, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
    match rustix::fs::fgetxattr(fd, name, &mut *buf) {
        Ok(len) => Ok(Some(&buf[..len])),
        Err(Errno::NODATA | Errno::NOTSUP | Errno::RANGE | Errno::ACCESS | Errno::PERM) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sets attribute `name` of an open file to `value`.
pub(crate) fn set(fd: impl AsFd, name: &str, value: &[u8]) -> Result<(), XattrError> {
    rustix::fs::fsetxattr(fd, name, value, rustix::fs::XattrFlags::empty())
        .map_err(|e| XattrError::classify(e.into()))
}

/// Removes attribute `name` of an open file; removing an absent attribute succeeds.
pub(crate) fn remove(fd: impl AsFd, name: &str) -> Result<(), XattrError> {
    match rustix::fs::fremovexattr(fd, name) {
        Ok(()) | Err(Errno::NODATA) => Ok(()),
        Err(e) => Err(XattrError::classify(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove_round_trip_on_a_real_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let fd = file.as_file();
        let mut buf = [0u8; 64];
        assert_eq!(get(fd, "user.spis.test", &mut buf).unwrap(), None);
        set(fd, "user.spis.test", b"hello").unwrap();
        assert_eq!(get(fd, "user.spis.test", &mut buf).unwrap(), Some(&b"hello"[..]));
        remove(fd, "user.spis.test").unwrap();
        remove(fd, "user.spis.test").unwrap();
        assert_eq!(get(fd, "user.spis.test", &mut buf).unwrap(), None);
    }

    #[test]
    fn a_value_larger_than_the_buffer_counts_as_absent() {
        let file = tempfile::NamedTempFile::new().unwrap();
        set(file.as_file(), "user.spis.test", &[7u8; 100]).unwrap();
        let mut small = [0u8; 8];
        assert_eq!(get(file.as_file(), "user.spis.test", &mut small).unwrap(), None);
    }
}
