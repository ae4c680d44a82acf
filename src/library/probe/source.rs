//! The file being probed, seen through the probe's limits, and the byte helpers every format
//! shares.
//!
//! The one rule: every read and seek of a probe goes through [`Source`], which charges it to the
//! probe's budget, so no format walker (nor a crate it calls) can read more than the limits in
//! [`super`] allow, whatever lengths the file states.

use std::io::ErrorKind::{InvalidData, UnexpectedEof};
use std::io::{self, BufRead, Read, Seek, SeekFrom};

use super::SEEK_COST;

/// Errors that say the file is bad (truncated, malformed, past our limits), not the disk.
pub(super) fn is_damage(e: &io::Error) -> bool {
    matches!(e.kind(), UnexpectedEof | InvalidData)
}

pub(super) fn damaged(what: &'static str) -> io::Error {
    io::Error::new(InvalidData, what)
}

/// The file being probed, with where in it we are and what of our limits is left. Everything
/// reads through it, kamadak-exif and imagesize included, so the limits hold for them too: once
/// the budget is spent the file seems to end.
pub(super) struct Source<'a, R> {
    inner: &'a mut R,
    pos: u64,
    budget: u64,
    steps: u32,
}

impl<'a, R: BufRead + Seek> Source<'a, R> {
    /// `inner` positioned at its start, allowed `budget` bytes and `steps` structures.
    pub(super) fn new(inner: &'a mut R, budget: u64, steps: u32) -> Self {
        Source { inner, pos: 0, budget, steps }
    }

    /// Where in the file the next read starts.
    pub(super) fn pos(&self) -> u64 {
        self.pos
    }

    /// Moves to `target`: a short hop forward consumes what is already buffered, because a real
    /// seek throws the buffer away (walking a HEIF `meta` box then costs one read, not one a box).
    pub(super) fn seek_to(&mut self, target: u64) -> io::Result<()> {
        // SECURITY: offsets come from the file. No seek past i64::MAX can succeed, and its error
        // would pass for the disk failing rather than for damage.
        if target > i64::MAX as u64 {
            return Err(damaged("offset out of range"));
        }
        if let Some(ahead) = target.checked_sub(self.pos) {
            if ahead == 0 {
                return Ok(());
            }
            if let Ok(ahead) = usize::try_from(ahead)
                && ahead <= self.fill_buf()?.len()
            {
                self.consume(ahead);
                return Ok(());
            }
        }
        self.budget = self.budget.saturating_sub(SEEK_COST);
        self.pos = self.inner.seek(SeekFrom::Start(target))?;
        Ok(())
    }

    /// Counts one more structure visited; errs when a file has more than we will walk.
    pub(super) fn step(&mut self) -> io::Result<()> {
        let left = self.steps.checked_sub(1);
        self.steps = left.ok_or_else(|| damaged("too many structures"))?;
        Ok(())
    }

    fn allowed(&self, want: usize) -> usize {
        want.min(usize::try_from(self.budget).unwrap_or(usize::MAX))
    }

    fn advance(&mut self, n: usize) {
        self.pos += n as u64;
        self.budget = self.budget.saturating_sub(n as u64);
    }
}

impl<R: BufRead + Seek> Read for Source<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowed = self.allowed(buf.len());
        let n = self.inner.read(&mut buf[..allowed])?;
        self.advance(n);
        Ok(n)
    }
}

impl<R: BufRead + Seek> BufRead for Source<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let allowed = self.allowed(usize::MAX);
        let buf = self.inner.fill_buf()?;
        Ok(&buf[..buf.len().min(allowed)])
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.advance(n);
    }
}

impl<R: BufRead + Seek> Seek for Source<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(n) => self.pos.checked_add_signed(n),
            SeekFrom::End(_) => {
                self.budget = self.budget.saturating_sub(SEEK_COST);
                self.pos = self.inner.seek(to)?;
                return Ok(self.pos);
            }
        };
        self.seek_to(target.ok_or_else(|| damaged("offset out of range"))?)?;
        Ok(self.pos)
    }
}

pub(super) fn read_up_to<R: Read>(r: &mut R, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

pub(super) fn read_array<const N: usize, R: Read>(r: &mut R) -> io::Result<[u8; N]> {
    let mut buf = [0; N];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

pub(super) fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(super) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(super) fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

pub(super) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
