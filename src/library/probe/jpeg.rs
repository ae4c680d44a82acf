//! JPEG (and MPO, JPEGs one after another): marker segments up to the frame header.
//!
//! The one rule: only a segment we want (EXIF) is read, at most 64 KiB as the format says; every
//! other is skipped by its stated length, so megabytes of extended XMP are seeked over.

use std::io::{self, BufRead, Read, Seek};

use super::Probe;
use super::exif::apply_exif;
use super::source::{Source, damaged, read_array, read_up_to};

/// How far into a JPEG to look for the frame header: far, because phones put megabytes of depth
/// maps in extended-XMP segments before it, but those are seeked over, not read.
const JPEG_HEADER_LIMIT: u64 = 16 << 20;
/// Stray bytes skipped between two JPEG segments before giving up.
const JPEG_JUNK_LIMIT: u32 = 64 << 10;

/// JPEG: marker segments from SOI to the frame header (SOF), keeping the first EXIF APP1 on the
/// way. A segment is at most 64 KiB, so the EXIF read is bounded by the format itself.
pub(super) fn jpeg<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    r.seek_to(0)?;
    if read_array(r)? != [0xFF, 0xD8] {
        return Err(damaged("no JPEG SOI"));
    }
    let mut seen_exif = false;
    while r.pos() < JPEG_HEADER_LIMIT {
        r.step()?;
        let marker = next_marker(r)?;
        match marker {
            // Stand-alone markers (TEM, RSTn, a stray SOI) have no length.
            0x01 | 0xD0..=0xD8 => continue,
            // EOI, or SOS: the image data starts and no frame header came.
            0xD9 | 0xDA => return Ok(()),
            _ => {}
        }
        let start = r.pos();
        let len = u16::from_be_bytes(read_array(r)?);
        let body = len.checked_sub(2).ok_or_else(|| damaged("JPEG segment length"))?;
        match marker {
            0xE1 if !seen_exif => {
                if let Some(tiff) = read_up_to(r, body.into())?.strip_prefix(b"Exif\0\0") {
                    seen_exif = true;
                    apply_exif(p, tiff.to_vec());
                }
            }
            // SOF0..SOF15, but for DHT (C4), JPG (C8) and DAC (CC) that share the range. EXIF
            // comes before it, so the walk is done.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let [_precision, h1, h0, w1, w0] = read_array(r)?;
                let (w, h) = (u16::from_be_bytes([w1, w0]), u16::from_be_bytes([h1, h0]));
                p.set_size(w.into(), h.into());
                return Ok(());
            }
            _ => {}
        }
        r.seek_to(start + u64::from(len))?;
    }
    Ok(())
}

/// Reads up to the next marker code. Editors leave stray bytes between segments, and any number
/// of 0xFF may pad a marker; decoders skip both, and so do we, though not far.
fn next_marker<R: Read>(r: &mut R) -> io::Result<u8> {
    let mut after_ff = false;
    for _ in 0..JPEG_JUNK_LIMIT {
        match read_array(r)? {
            [0xFF] => after_ff = true,
            // 0xFF00 is an escaped 0xFF in image data, not a marker.
            [0x00] => after_ff = false,
            [code] if after_ff => return Ok(code),
            _ => {}
        }
    }
    Err(damaged("no JPEG marker"))
}
