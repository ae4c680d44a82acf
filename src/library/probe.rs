//! What kind of media a file is, and the facts its header states: pixel size, orientation, when
//! it was taken, camera and lens, video duration.
//!
//! The one rule: read as little as possible, and trust no length from the file. Each format is
//! walked by its own structure (JPEG markers, PNG and RIFF chunks, ISO-BMFF boxes), seeking over
//! payloads, and every probe runs within fixed limits on bytes read, structures visited and
//! memory, because a photo library is untrusted input. A damaged file is not an error: it is
//! listed with whatever was read before the damage. Only the disk failing is an error.

use std::io::ErrorKind::{InvalidData, UnexpectedEof};
use std::io::{self, BufRead, Read, Seek, SeekFrom};

use exif::{In, Tag};
use serde::{Deserialize, Serialize};

use super::dates::{self, DateSource, Taken};

/// Bytes read from the start of a file to recognise its format.
const HEAD_LEN: u64 = 512;
/// Bytes one probe may read in all, a seek counting as [`SEEK_COST`] (about the buffer refill it
/// causes). Typical files need a few KiB; a TIFF's directory up to [`EXIF_LIMIT`].
const READ_BUDGET: u64 = 8 << 20;
const SEEK_COST: u64 = 8 << 10;
/// Segments, chunks or boxes one probe may visit.
const MAX_STRUCTURES: u32 = 4096;
/// The largest EXIF block (PNG `eXIf`, WebP `EXIF`, the start of a TIFF) read into memory.
const EXIF_LIMIT: u64 = 4 << 20;
/// The largest ISO-BMFF box body (`ipma`, `mvhd`, `tkhd`, ...) read into memory.
const BOX_LIMIT: u64 = 1 << 20;
/// How far into a JPEG to look for the frame header: far, because phones put megabytes of depth
/// maps in extended-XMP segments before it, but those are seeked over, not read.
const JPEG_HEADER_LIMIT: u64 = 16 << 20;
/// Stray bytes skipped between two JPEG segments before giving up.
const JPEG_JUNK_LIMIT: u32 = 64 << 10;
/// Seconds from 1904-01-01 (the QuickTime epoch) to 1970-01-01.
const QUICKTIME_EPOCH_OFFSET: i64 = 2_082_844_800;

pub use crate::media::{Format, Kind};

impl Format {
    /// The format that a file's first bytes ([`HEAD_LEN`] are plenty) show, if we handle it.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
        // "BM" alone is a weak signature: the DIB header's size makes it a bitmap.
        let bmp_header = matches!(le_u32(head, 14), Some(12 | 40 | 52 | 56 | 64 | 108 | 124));
        // QuickTime files from before `ftyp` existed start straight with an atom.
        let old_quicktime = [b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"];
        Some(match () {
            _ if at(0, b"\xFF\xD8\xFF") => Format::Jpeg,
            _ if at(0, b"\x89PNG\r\n\x1A\n") => Format::Png,
            _ if at(0, b"GIF87a") || at(0, b"GIF89a") => Format::Gif,
            _ if at(0, b"RIFF") && at(8, b"WEBP") => Format::Webp,
            _ if at(0, b"II*\0") || at(0, b"MM\0*") => Format::Tiff,
            _ if at(0, b"BM") && bmp_header => Format::Bmp,
            _ if at(4, b"ftyp") => sniff_ftyp(head),
            _ if at(0, b"\x1A\x45\xDF\xA3") => return sniff_ebml(head),
            _ if old_quicktime.iter().any(|atom| at(4, *atom)) => Format::Mov,
            _ => return None,
        })
    }
}

/// ISO-BMFF: the major and compatible brands decide. AVIF wins over HEIF because AVIF files
/// carry the generic HEIF brands (`mif1`, `msf1`) too.
fn sniff_ftyp(head: &[u8]) -> Format {
    let end = be_u32(head, 0).map_or(0, |size| head.len().min(size as usize));
    let brands = head.get(8..end).unwrap_or_default().chunks_exact(4);
    // The second word is the minor version, not a brand.
    let brands: Vec<&[u8]> = brands.enumerate().filter(|(i, _)| *i != 1).map(|(_, b)| b).collect();
    let has = |wanted: &[&[u8; 4]]| brands.iter().any(|b| wanted.iter().any(|w| w == b));
    if has(&[b"avif", b"avis"]) {
        Format::Avif
    } else if has(&[b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"]) {
        Format::Heif
    } else if brands.first() == Some(&&b"qt  "[..]) {
        Format::Mov
    } else {
        Format::Mp4
    }
}

/// EBML: the header's DocType element (ID 0x4282, a one-byte size, then "webm" or "matroska")
/// sits in the first few dozen bytes. Matroska is the default when it is absent.
fn sniff_ebml(head: &[u8]) -> Option<Format> {
    let header = &head[..head.len().min(64)];
    let Some(at) = header.windows(2).position(|w| w == [0x42, 0x82]) else {
        return Some(Format::Mkv);
    };
    let len = usize::from(header.get(at + 2)? & 0x7F);
    match header.get(at + 3..at + 3 + len)? {
        b"webm" => Some(Format::Webm),
        b"matroska" => Some(Format::Mkv),
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub format: Format,
    /// Stored pixel size, before EXIF orientation.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF orientation 1..=8 (1 when absent or invalid). For HEIF/AVIF it comes from the primary
    /// item's `irot`/`imir` boxes instead, with `width`/`height` from its `ispe` (before them):
    /// decoders apply those boxes themselves, and the format says to ignore the EXIF tag. For
    /// MP4/MOV it comes from the video track's matrix (6 or 8 for a quarter turn, 3 for a half).
    pub orientation: u8,
    /// EXIF (or video container) date only; file name / mtime fallbacks are the caller's job.
    pub taken: Option<Taken>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub lens: Option<String>,
    /// Video duration in milliseconds when the container says.
    pub duration_ms: Option<u64>,
}

/// The size as shown: width and height swapped for EXIF orientations 5..=8 (the quarter turns).
pub fn display_size(width: Option<u32>, height: Option<u32>, orientation: u8) -> Option<(u32, u32)> {
    let (w, h) = (width?, height?);
    Some(if (5..=8).contains(&orientation) { (h, w) } else { (w, h) })
}

impl Probe {
    /// The size as shown: width and height swapped for orientations 5..=8.
    pub fn display_size(&self) -> Option<(u32, u32)> {
        display_size(self.width, self.height, self.orientation)
    }

    fn set_size(&mut self, width: u32, height: u32) {
        // Zero means "not said here" in every header that can hold it (a JPEG whose height
        // comes later in a DNL marker, an audio track).
        if width > 0 && height > 0 {
            (self.width, self.height) = (Some(width), Some(height));
        }
    }
}

/// Reads only the bytes needed. `ext_format` is what the file extension claims; sniffed content wins
/// when it is recognised (a PNG named .jpg is a PNG). Returns Ok with width/height None etc. when the
/// header cannot be read (a corrupt or empty file is still listed); Err only for I/O errors.
pub fn probe<R: BufRead + Seek>(r: &mut R, ext_format: Format, tz: &jiff::tz::TimeZone) -> io::Result<Probe> {
    r.seek(SeekFrom::Start(0))?;
    let r = &mut Source { inner: r, pos: 0, budget: READ_BUDGET, steps: MAX_STRUCTURES };
    let head = read_up_to(r, HEAD_LEN)?;
    let mut p = Probe {
        format: Format::sniff(&head).unwrap_or(ext_format),
        width: None,
        height: None,
        orientation: 1,
        taken: None,
        make: None,
        model: None,
        lens: None,
        duration_ms: None,
    };
    let result = match p.format {
        Format::Jpeg => jpeg(r, &mut p),
        Format::Png => png(r, &mut p),
        Format::Webp => webp(r, &mut p),
        Format::Gif | Format::Bmp => size_by_imagesize(r, &mut p),
        Format::Tiff => size_by_imagesize(r, &mut p).and_then(|()| {
            // The file is the EXIF structure. Its directories are usually near the start; one
            // written after megabytes of strips is out of reach, and the file listed without it.
            r.seek_to(0)?;
            apply_exif(&mut p, read_up_to(r, EXIF_LIMIT)?);
            Ok(())
        }),
        Format::Heif | Format::Avif => heif(r, &mut p),
        Format::Mp4 | Format::Mov => quicktime(r, &mut p, tz),
        Format::Webm | Format::Mkv => matroska(r, &mut p, tz),
    };
    match result {
        Err(e) if !is_damage(&e) => Err(e),
        _ => Ok(p),
    }
}

/// Errors that say the file is bad (truncated, malformed, past our limits), not the disk.
fn is_damage(e: &io::Error) -> bool {
    matches!(e.kind(), UnexpectedEof | InvalidData)
}

fn damaged(what: &'static str) -> io::Error {
    io::Error::new(InvalidData, what)
}

/// The file being probed, with where in it we are and what of our limits is left. Everything
/// reads through it, kamadak-exif and imagesize included, so the limits hold for them too: once
/// the budget is spent the file seems to end.
struct Source<'a, R> {
    inner: &'a mut R,
    pos: u64,
    budget: u64,
    steps: u32,
}

impl<R: BufRead + Seek> Source<'_, R> {
    /// Moves to `target`: a short hop forward consumes what is already buffered, because a real
    /// seek throws the buffer away (walking a HEIF `meta` box then costs one read, not one a box).
    fn seek_to(&mut self, target: u64) -> io::Result<()> {
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
    fn step(&mut self) -> io::Result<()> {
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

fn read_up_to<R: Read>(r: &mut R, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_array<const N: usize, R: Read>(r: &mut R) -> io::Result<[u8; N]> {
    let mut buf = [0; N];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// JPEG: marker segments from SOI to the frame header (SOF), keeping the first EXIF APP1 on the
/// way. A segment is at most 64 KiB, so the EXIF read is bounded by the format itself.
fn jpeg<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    r.seek_to(0)?;
    if read_array(r)? != [0xFF, 0xD8] {
        return Err(damaged("no JPEG SOI"));
    }
    let mut seen_exif = false;
    while r.pos < JPEG_HEADER_LIMIT {
        r.step()?;
        let marker = next_marker(r)?;
        match marker {
            // Stand-alone markers (TEM, RSTn, a stray SOI) have no length.
            0x01 | 0xD0..=0xD8 => continue,
            // EOI, or SOS: the image data starts and no frame header came.
            0xD9 | 0xDA => return Ok(()),
            _ => {}
        }
        let start = r.pos;
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

/// PNG: IHDR gives the size; an `eXIf` chunk, when there is one, comes before the image data.
fn png<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    let mut pos = 8;
    loop {
        r.step()?;
        r.seek_to(pos)?;
        let len = u32::from_be_bytes(read_array(r)?);
        match &read_array(r)? {
            b"IHDR" => {
                let [w, h] = [read_array(r)?, read_array(r)?].map(u32::from_be_bytes);
                p.set_size(w, h);
            }
            b"eXIf" if u64::from(len) <= EXIF_LIMIT => apply_exif(p, read_up_to(r, len.into())?),
            b"IDAT" | b"IEND" => return Ok(()),
            _ => {}
        }
        // Length, type, data, CRC.
        pos += 12 + u64::from(len);
    }
}

/// WebP: RIFF chunks. The first gives the size: a simple file is one VP8 or VP8L frame, an
/// extended one starts with a VP8X canvas that flags whether an `EXIF` chunk exists. That chunk
/// comes after every frame of an animation, so the walk seeks from chunk header to chunk header.
fn webp<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    let (mut pos, mut first) = (12, true);
    loop {
        r.step()?;
        r.seek_to(pos)?;
        let fourcc = read_array(r)?;
        let len = u32::from_le_bytes(read_array(r)?);
        match (&fourcc, first) {
            (b"VP8X", true) => {
                // Flags, 3 reserved bytes, then width - 1 and height - 1 in 24 bits each.
                let b: [u8; 10] = read_array(r)?;
                let le24 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], 0]) + 1;
                p.set_size(le24(4), le24(7));
                if b[0] & 0x08 == 0 {
                    return Ok(()); // no EXIF flag
                }
            }
            (b"VP8 ", true) => {
                // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height.
                let b: [u8; 10] = read_array(r)?;
                let le14 = |i: usize| u32::from(u16::from_le_bytes([b[i], b[i + 1]]) & 0x3FFF);
                p.set_size(le14(6), le14(8));
                return Ok(());
            }
            (b"VP8L", true) => {
                // Signature 0x2F, then 14-bit width - 1 and height - 1.
                let [_, bits @ ..] = read_array::<5, _>(r)?;
                let bits = u32::from_le_bytes(bits);
                p.set_size((bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1);
                return Ok(());
            }
            (b"EXIF", false) if u64::from(len) <= EXIF_LIMIT => {
                apply_exif(p, read_up_to(r, len.into())?);
                return Ok(());
            }
            (_, true) => return Err(damaged("WebP starts with no frame")),
            _ => {}
        }
        // Chunks are padded to an even length.
        (pos, first) = (pos + 8 + u64::from(len) + u64::from(len & 1), false);
    }
}

/// GIF, BMP and TIFF: imagesize reads just the header (for TIFF, the first directory).
fn size_by_imagesize<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    r.seek_to(0)?;
    match imagesize::reader_size(&mut *r) {
        Ok(size) => {
            let (width, mut height) = (size.width as u32, size.height as u32);
            // imagesize reads a BMP's height unsigned; top-down bitmaps store it negative.
            if p.format == Format::Bmp {
                height = (height as i32).unsigned_abs();
            }
            p.set_size(width, height);
        }
        Err(imagesize::ImageError::IoError(e)) => return Err(e),
        Err(_) => {}
    }
    Ok(())
}

/// HEIF and AVIF: kamadak-exif finds the EXIF item; the size and orientation are properties of
/// the primary item, which we read ourselves.
fn heif<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    r.seek_to(0)?;
    // SECURITY: kamadak-exif reads whole boxes and Exif extents into memory at the sizes the file
    // states, "to the end of the file" for a size of 0; `Source` ends the file at our budget.
    let exif = exif::Reader::new().continue_on_error(true).read_from_container(r);
    match exif {
        Err(exif::Error::Io(e)) if !is_damage(&e) => return Err(e),
        result => {
            if let Some(exif) = usable_exif(result) {
                apply_exif_fields(p, &exif);
            }
        }
    }
    p.orientation = 1;
    let top = boxes(r, 0, u64::MAX)?;
    match top.iter().find(|b| &b.kind == b"meta") {
        Some(&meta) => heif_meta(r, p, meta),
        None => Ok(()),
    }
}

/// The primary item's `ispe` (stored size), `irot` and `imir`, in their association order, the
/// transforms turned into the EXIF orientation that does the same.
fn heif_meta<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe, meta: Bmff) -> io::Result<()> {
    let (mut primary, mut properties, mut associations) = (None, Vec::new(), Vec::new());
    // `meta` is a full box: version and flags come before its children.
    for b in boxes(r, meta.body + 4, meta.end)? {
        match &b.kind {
            b"pitm" => primary = Some(read_body(r, &b)?),
            b"iprp" => {
                for b in boxes(r, b.body, b.end)? {
                    match &b.kind {
                        b"ipco" => properties = boxes(r, b.body, b.end)?,
                        b"ipma" => associations = read_body(r, &b)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // pitm: version, flags, then the item id in 16 bits (32 from version 1).
    let primary = primary
        .and_then(|b| if b.first() == Some(&0) { be_u16(&b, 4).map(u32::from) } else { be_u32(&b, 4) });
    let Some(indices) = primary.and_then(|item| item_properties(&associations, item)) else {
        return Ok(());
    };
    // As EXIF orientations are listed: so many clockwise quarter turns, then maybe a mirror.
    let (mut turns, mut mirror) = (0, false);
    for index in indices {
        // Property indices count from 1.
        let Some(b) = index.checked_sub(1).and_then(|i| properties.get(i)) else {
            continue;
        };
        let body = read_body(r, b)?;
        match &b.kind {
            // A full box: version and flags, then width and height.
            b"ispe" => p.set_size(be_u32(&body, 4).unwrap_or(0), be_u32(&body, 8).unwrap_or(0)),
            // Anti-clockwise quarter turns; after a mirror, a turn goes the other way round.
            b"irot" => {
                let ccw = body.first().map_or(0, |a| a & 3);
                turns = if mirror { turns + ccw } else { turns + 4 - ccw } % 4;
            }
            // Axis 0 mirrors left-right; axis 1 top-bottom, which is a half turn, then left-right.
            b"imir" => {
                if body.first().is_some_and(|a| a & 1 == 1) {
                    turns = (turns + 2) % 4;
                }
                mirror = !mirror;
            }
            _ => {}
        }
    }
    p.orientation = [[1, 6, 3, 8], [2, 5, 4, 7]][usize::from(mirror)][usize::from(turns)];
    Ok(())
}

/// The property indices, in order, that an `ipma` box associates with `item`.
fn item_properties(ipma: &[u8], item: u32) -> Option<Vec<usize>> {
    let (version, wide) = (*ipma.first()?, ipma.get(3)? & 1 == 1);
    let mut pos = 8;
    // An entry takes at least 3 bytes, so a lying count runs out of box, not of time.
    for _ in 0..be_u32(ipma, 4)? {
        let id = if version == 0 { be_u16(ipma, pos).map(u32::from)? } else { be_u32(ipma, pos)? };
        pos += if version == 0 { 2 } else { 4 };
        let count = usize::from(*ipma.get(pos)?);
        let size = if wide { 2 } else { 1 };
        let entries = ipma.get(pos + 1..pos + 1 + count * size)?;
        pos += 1 + count * size;
        if id == item {
            // The top bit of each is "essential", the rest the index.
            let index = |e: &[u8]| {
                if wide {
                    usize::from(e[0] & 0x7F) << 8 | usize::from(e[1])
                } else {
                    usize::from(e[0] & 0x7F)
                }
            };
            return Some(entries.chunks_exact(size).map(index).collect());
        }
    }
    None
}

/// MP4 and QuickTime: `moov` may come before or after the media data, which is seeked over.
/// `mvhd` gives the creation time and duration, the first video track's `tkhd` size and rotation.
fn quicktime<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe, tz: &jiff::tz::TimeZone) -> io::Result<()> {
    let top = boxes(r, 0, u64::MAX)?;
    let Some(moov) = top.iter().find(|b| &b.kind == b"moov") else {
        return Ok(());
    };
    for b in boxes(r, moov.body, moov.end)? {
        match &b.kind {
            b"mvhd" => mvhd(&read_body(r, &b)?, p, tz),
            b"trak" if p.width.is_none() => trak(r, p, b)?,
            _ => {}
        }
    }
    Ok(())
}

/// Movie header: version, flags, creation and modification times (32 bits, 64 from version 1),
/// timescale, duration.
fn mvhd(b: &[u8], p: &mut Probe, tz: &jiff::tz::TimeZone) {
    let (created, timescale, duration) = match b.first() {
        Some(0) => (
            be_u32(b, 4).map(u64::from),
            be_u32(b, 12),
            be_u32(b, 16).filter(|&d| d != u32::MAX).map(u64::from),
        ),
        _ => (be_u64(b, 4), be_u32(b, 20), be_u64(b, 24).filter(|&d| d != u64::MAX)),
    };
    // 0 means "not set"; a time before 1970 is a device that counted from the wrong epoch.
    let unix = created.and_then(|c| i64::try_from(c).ok()?.checked_sub(QUICKTIME_EPOCH_OFFSET));
    if let Some(secs) = unix.filter(|&s| s > 0) {
        p.taken = Some(dates::from_unix_utc(secs, 0, tz, DateSource::Container));
    }
    if let (Some(duration), Some(timescale)) = (duration, timescale.filter(|&t| t > 0)) {
        p.duration_ms = u64::try_from(u128::from(duration) * 1000 / u128::from(timescale)).ok();
    }
}

/// A track: its header, used when its media handler (`mdia`/`hdlr`) says video.
fn trak<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe, trak: Bmff) -> io::Result<()> {
    let (mut header, mut is_video) = (Vec::new(), false);
    for b in boxes(r, trak.body, trak.end)? {
        match &b.kind {
            b"tkhd" => header = read_body(r, &b)?,
            b"mdia" => {
                if let Some(hdlr) = boxes(r, b.body, b.end)?.iter().find(|b| &b.kind == b"hdlr") {
                    // Version and flags, pre_defined, then the handler type.
                    is_video = read_body(r, hdlr)?.get(8..12) == Some(b"vide");
                }
            }
            _ => {}
        }
    }
    if !is_video {
        return Ok(());
    }
    // After the times, track id and duration (wider from version 1) come reserved words, layer,
    // alternate group, volume, a 3x3 matrix, then width and height in 16.16 fixed point.
    let matrix = if header.first() == Some(&0) { 40 } else { 52 };
    let fixed = |at: usize| be_u32(&header, at).map_or(0, |v| v.saturating_add(0x8000) >> 16);
    p.set_size(fixed(matrix + 36), fixed(matrix + 40));
    // The matrix maps (x, y) to (a x + c y, b x + d y), y pointing down.
    let entry = |i: usize| be_u32(&header, matrix + 4 * i).map_or(0, |v| (v as i32).signum());
    p.orientation = match (entry(0), entry(1), entry(3), entry(4)) {
        (0, 1, -1, 0) => 6,
        (-1, 0, 0, -1) => 3,
        (0, -1, 1, 0) => 8,
        _ => 1,
    };
    Ok(())
}

/// Matroska / WebM: `Segment` > `Info` (timecode scale, duration, date) and `Tracks` > the first
/// video `TrackEntry` > `Video` (pixel size). Both come before the first `Cluster` in every muxer
/// we know of, so the walk stops there instead of reading the media.
fn matroska<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe, tz: &jiff::tz::TimeZone) -> io::Result<()> {
    const SEGMENT: u32 = 0x1853_8067;
    const INFO: u32 = 0x1549_A966;
    const TRACKS: u32 = 0x1654_AE6B;
    const CLUSTER: u32 = 0x1F43_B675;
    let top = ebml_children(r, 0, u64::MAX, 2)?;
    let Some(segment) = top.iter().find(|e| e.id == SEGMENT) else {
        return Ok(());
    };
    let (mut info, mut tracks) = (None, None);
    let (mut pos, end) = (segment.body, segment.end);
    while info.is_none() || tracks.is_none() {
        let Some(e) = ebml_children(r, pos, end, 1)?.pop() else { break };
        match e.id {
            INFO => info = Some(e),
            TRACKS => tracks = Some(e),
            CLUSTER => break,
            _ => {}
        }
        // An element of unknown size (live streams) ends the walk: nothing says where it ends.
        if e.end == u64::MAX {
            break;
        }
        pos = e.end;
    }
    if let Some(info) = info {
        let body = ebml_body(r, &info)?;
        let mut scale_ns = 1_000_000u64;
        let (mut duration, mut date) = (None, None);
        for (id, value) in ebml_elements(&body) {
            match id {
                0x2A_D7B1 => scale_ns = ebml_uint(value).filter(|&s| s > 0).unwrap_or(scale_ns),
                0x4489 => duration = ebml_float(value),
                0x4461 if value.len() == 8 => {
                    date = Some(i64::from_be_bytes(value.try_into().expect("8 bytes")))
                }
                _ => {}
            }
        }
        if let Some(d) = duration.filter(|d| d.is_finite() && *d > 0.0) {
            p.duration_ms = Some((d * scale_ns as f64 / 1e6) as u64);
        }
        // Nanoseconds since 2001-01-01T00:00:00 UTC; 0 is a muxer that wrote no real date.
        if let Some(ns) = date.filter(|&ns| ns != 0) {
            let secs = ns.div_euclid(1_000_000_000) + 978_307_200;
            p.taken = Some(dates::from_unix_utc(
                secs,
                ns.rem_euclid(1_000_000_000) as u32,
                tz,
                DateSource::Container,
            ));
        }
    }
    if let Some(tracks) = tracks {
        let body = ebml_body(r, &tracks)?;
        for (id, entry) in ebml_elements(&body) {
            if id != 0xAE {
                continue;
            }
            let fields: Vec<(u32, &[u8])> = ebml_elements(entry).collect();
            // TrackType 1 is video.
            if !fields.iter().any(|&(id, v)| id == 0x83 && ebml_uint(v) == Some(1)) {
                continue;
            }
            if let Some(&(_, video)) = fields.iter().find(|(id, _)| *id == 0xE0) {
                let (mut w, mut h) = (0, 0);
                for (id, v) in ebml_elements(video) {
                    match id {
                        0xB0 => w = ebml_uint(v).and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
                        0xBA => h = ebml_uint(v).and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
                        _ => {}
                    }
                }
                p.set_size(w, h);
                break;
            }
        }
    }
    Ok(())
}

/// An EBML element: its id (with the length marker kept, as specifications write them), and
/// where its body starts and ends in the file (`u64::MAX` for an unknown size).
#[derive(Clone, Copy, Debug)]
struct Ebml {
    id: u32,
    body: u64,
    end: u64,
}

/// Up to `max` elements from `start`, headers only.
fn ebml_children<R: BufRead + Seek>(
    r: &mut Source<R>,
    start: u64,
    end: u64,
    max: usize,
) -> io::Result<Vec<Ebml>> {
    let (mut found, mut pos) = (Vec::new(), start);
    while found.len() < max && pos < end {
        r.step()?;
        r.seek_to(pos)?;
        let head = read_up_to(r, 12)?;
        let Some((id, id_len)) = vint(&head, true) else { break };
        let Some((size, size_len)) = head.get(id_len..).and_then(|rest| vint(rest, false)) else { break };
        let body = pos + (id_len + size_len) as u64;
        let all_ones = size == (1u64 << (7 * size_len)) - 1;
        let elem_end = if all_ones {
            u64::MAX
        } else {
            body.checked_add(size).ok_or_else(|| damaged("element size"))?
        };
        found.push(Ebml { id: id as u32, body, end: elem_end });
        if all_ones {
            break;
        }
        pos = elem_end;
    }
    Ok(found)
}

fn ebml_body<R: BufRead + Seek>(r: &mut Source<R>, e: &Ebml) -> io::Result<Vec<u8>> {
    r.seek_to(e.body)?;
    read_up_to(r, e.end.saturating_sub(e.body).min(BOX_LIMIT))
}

/// The (id, body) elements packed in `b`, until the bytes end or stop making sense.
fn ebml_elements(mut b: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        let (id, id_len) = vint(b, true)?;
        let (size, size_len) = vint(b.get(id_len..)?, false)?;
        let start = id_len + size_len;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        let body = b.get(start..end)?;
        b = &b[end..];
        Some((id as u32, body))
    })
}

/// An EBML variable-length integer: its value (the length marker kept for ids, stripped for
/// sizes) and its length in bytes. Ids are at most 4 bytes, sizes at most 8.
fn vint(b: &[u8], keep_marker: bool) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > if keep_marker { 4 } else { 8 } {
        return None;
    }
    let bytes = b.get(..len)?;
    let mut v = if keep_marker { u64::from(first) } else { u64::from(first) & (0xFF_u64 >> len) };
    for &byte in &bytes[1..] {
        v = v << 8 | u64::from(byte);
    }
    Some((v, len))
}

fn ebml_uint(b: &[u8]) -> Option<u64> {
    (b.len() <= 8).then(|| b.iter().fold(0u64, |v, &byte| v << 8 | u64::from(byte)))
}

fn ebml_float(b: &[u8]) -> Option<f64> {
    match b.len() {
        4 => Some(f64::from(f32::from_be_bytes(b.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(b.try_into().ok()?)),
        _ => None,
    }
}

/// An ISO-BMFF box: its type, and where its body starts and ends in the file.
#[derive(Clone, Copy, Debug)]
struct Bmff {
    kind: [u8; 4],
    body: u64,
    end: u64,
}

/// The boxes in `start..end`, headers only: bodies are seeked over, and each box moves on by at
/// least its 8-byte header.
fn boxes<R: BufRead + Seek>(r: &mut Source<R>, start: u64, end: u64) -> io::Result<Vec<Bmff>> {
    let (mut found, mut pos) = (Vec::new(), start);
    while end.saturating_sub(pos) >= 8 {
        r.step()?;
        r.seek_to(pos)?;
        let size = match read_array(r) {
            // The end of the file ends the top level.
            Err(e) if e.kind() == UnexpectedEof => break,
            size => u32::from_be_bytes(size?),
        };
        let kind = read_array(r)?;
        let (body, box_end) = match size {
            // To the end of the parent (the file, at the top level).
            0 => (pos + 8, end),
            // A 64-bit size follows the type.
            1 => {
                let large = u64::from_be_bytes(read_array(r)?);
                let box_end = pos.checked_add(large).filter(|_| large >= 16);
                (pos + 16, box_end.ok_or_else(|| damaged("box size"))?)
            }
            2..=7 => return Err(damaged("box size")),
            _ => (pos + 8, pos + u64::from(size)),
        };
        pos = box_end.min(end);
        found.push(Bmff { kind, body, end: pos });
    }
    Ok(found)
}

fn read_body<R: BufRead + Seek>(r: &mut Source<R>, b: &Bmff) -> io::Result<Vec<u8>> {
    r.seek_to(b.body)?;
    read_up_to(r, b.end.saturating_sub(b.body).min(BOX_LIMIT))
}

/// Reads a TIFF-structured EXIF block, keeping whatever parsed before any damage.
fn apply_exif(p: &mut Probe, mut tiff: Vec<u8>) {
    // Some writers keep JPEG's "Exif\0\0" prefix in PNG and WebP chunks, where it does not belong.
    if tiff.starts_with(b"Exif\0\0") {
        tiff.drain(..6);
    }
    let result = exif::Reader::new().continue_on_error(true).read_raw(tiff);
    if let Some(exif) = usable_exif(result) {
        apply_exif_fields(p, &exif);
    }
}

fn usable_exif(result: Result<exif::Exif, exif::Error>) -> Option<exif::Exif> {
    result.or_else(|e| e.distill_partial_result(drop)).ok()
}

fn apply_exif_fields(p: &mut Probe, exif: &exif::Exif) {
    let field = |tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let text = |tag| match field(tag)? {
        exif::Value::Ascii(parts) => {
            let s = String::from_utf8_lossy(parts.first()?);
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            // Cameras pad with NULs; hostile files pad with megabytes.
            (!s.is_empty()).then(|| s.chars().take(100).collect::<String>())
        }
        _ => None,
    };
    let orientation = field(Tag::Orientation).and_then(|v| v.get_uint(0));
    p.orientation = orientation.filter(|o| (1..=8).contains(o)).map_or(1, |o| o as u8);
    (p.make, p.model, p.lens) = (text(Tag::Make), text(Tag::Model), text(Tag::LensModel));
    // Best first: when the shutter fired, when it was digitised, when the file was last written.
    let candidates = [
        (Tag::DateTimeOriginal, Tag::SubSecTimeOriginal, Tag::OffsetTimeOriginal),
        (Tag::DateTimeDigitized, Tag::SubSecTimeDigitized, Tag::OffsetTimeDigitized),
        (Tag::DateTime, Tag::SubSecTime, Tag::OffsetTime),
    ];
    p.taken = candidates.into_iter().find_map(|(date, subsec, offset)| {
        let (subsec, offset) = (text(subsec), text(offset));
        dates::parse_exif_datetime(&text(date)?, subsec.as_deref(), offset.as_deref())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::{BufReader, Cursor};
    use std::path::PathBuf;

    use Format::*;
    use jiff::tz::TimeZone;

    #[test]
    fn formats_are_recognised_by_their_first_bytes() {
        let bmp = [&b"BM"[..], &[0; 12], &40u32.to_le_bytes()].concat();
        let cases: &[(&[u8], Option<Format>)] = &[
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", Some(Jpeg)),
            (b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR", Some(Png)),
            (b"GIF89a\x01\0\x01\0", Some(Gif)),
            (b"GIF87a", Some(Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(Webp)),
            (b"RIFF\0\0\0\0AVI LIST", None),
            (b"II*\0\x08\0\0\0", Some(Tiff)),
            (b"MM\0*\0\0\0\x08", Some(Tiff)),
            (&bmp, Some(Bmp)),
            (b"BMW is a car, not a bitmap", None),
            (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", Some(Heif)),
            (b"\0\0\0\x14ftypmif1\0\0\0\0heic", Some(Heif)),
            (b"\0\0\0\x14ftypmsf1\0\0\0\0hevc", Some(Heif)),
            (b"\0\0\0\x1CftypavifS\0\0\0avifmif1miaf", Some(Avif)),
            (b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif", Some(Avif)),
            (b"\0\0\0\x14ftypavis\0\0\0\0msf1", Some(Avif)),
            (b"\0\0\0\x14ftypisomavifisom", Some(Mp4)), // the minor version is not a brand
            (b"\0\0\0\x1Cftypisom\0\0\x02\0isomiso2mp41", Some(Mp4)),
            (b"\0\0\0\x14ftypM4V \0\0\0\0M4V ", Some(Mp4)),
            (b"\0\0\0\x14ftypqt  \0\0\x02\0qt  ", Some(Mov)),
            (b"\0\0\0\x08wide\0\0\0\0mdat", Some(Mov)),
            (b"\x1A\x45\xDF\xA3\x87\x42\x82\x84webm", Some(Webm)),
            (b"\x1A\x45\xDF\xA3\x8B\x42\x82\x88matroska", Some(Mkv)),
            (b"\x1A\x45\xDF\xA3\x88\x42\x82\x85other", None),
            (b"\x1A\x45\xDF\xA3\x80", Some(Mkv)),
            (b"", None),
            (b"\xFF\xD8", None),
            (b"hello, world", None),
        ];
        for &(head, want) in cases {
            assert_eq!(Format::sniff(head), want, "{}", head.escape_ascii());
        }
    }

    #[test]
    fn extensions_map_to_formats_whatever_their_case() {
        let cases = [
            ("jpg", Some(Jpeg)),
            ("JPEG", Some(Jpeg)),
            ("jpe", Some(Jpeg)),
            (".png", Some(Png)),
            ("Tif", Some(Tiff)),
            ("HEIC", Some(Heif)),
            ("m4v", Some(Mp4)),
            ("MOV", Some(Mov)),
            ("mkv", Some(Mkv)),
            ("txt", None),
            ("", None),
        ];
        for (ext, want) in cases {
            assert_eq!(Format::from_extension(ext), want, "{ext}");
        }
        assert_eq!((Heif.mime(), Heif.kind()), ("image/heic", Kind::Image));
        assert_eq!((Mov.mime(), Mov.kind()), ("video/quicktime", Kind::Video));
    }

    /// A reader that counts the bytes it hands out, to check that probes stay in the headers.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    /// Probes a file's bytes: what was found, and how many bytes that took.
    fn probe_bytes(bytes: &[u8], ext: Format, tz: &TimeZone) -> (Probe, u64) {
        let counting = Counting { inner: Cursor::new(bytes), read: 0 };
        let mut r = BufReader::new(counting);
        let p = probe(&mut r, ext, tz).expect("in-memory reads never fail");
        (p, r.get_ref().read)
    }

    fn corpus() -> PathBuf {
        let candidates = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"),
            // A scratch crate a level deeper than the project.
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"),
        ];
        let found = candidates.into_iter().map(PathBuf::from);
        let mut found = found.filter(|p| p.join("MANIFEST.tsv").is_file());
        found.next().expect("the shared test corpus, ../shared/corpus, is missing")
    }

    fn probe_corpus_file(path: &str) -> (Probe, u64) {
        let bytes = std::fs::read(corpus().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let ext = path.rsplit('.').next().and_then(Format::from_extension);
        probe_bytes(&bytes, ext.unwrap_or(Jpeg), &TimeZone::UTC)
    }

    /// Manifest answers that are knowingly not ours, and why.
    const KNOWN_DIFFERENCES: &[&str] = &[
        // exiftool finds these dates outside EXIF: in FLIR's own APP1 records, XMP, a Reconyx
        // maker note, Olympus APP12, and Canon CIFF in APP0 (which holds the make too).
        "date of drewnoakes-metadata-extractor-images/jpg/FLIR iPhone device.jpg",
        "date of drewnoakes-metadata-extractor-images/jpg/Issue 258 (dotnet).jpg",
        "date of ianare-exif-samples/jpg/Reconyx_HC500_Hyperfire.jpg",
        "date of ianare-exif-samples/jpg/exif-org/olympus-d320l.jpg",
        "date of ianare-exif-samples/jpg/exif-org/sony-powershota5.jpg",
        "make of ianare-exif-samples/jpg/exif-org/sony-powershota5.jpg",
        // Its Exif IFD pointer is typed as a string, which kamadak-exif will not follow, so the
        // date is IFD0's DateTime (when it was edited) rather than DateTimeOriginal.
        "date of ianare-exif-samples/jpg/tests/30-type_error.jpg",
        // These facts are in XMP, or in ImageMagick's hex "Raw profile type exif" text chunk:
        // we do not read those, nor do browsers when they show the picture.
        "make of pypi-scikit-image-0.26.0/skimage/data/chelsea.png",
        "orientation of python-pillow-Pillow/Tests/images/avif/xmp_tags_orientation.avif",
        "orientation of python-pillow-Pillow/Tests/images/exif_imagemagick_orientation.png",
        "orientation of python-pillow-Pillow/Tests/images/xmp_tags_orientation.png",
        // The frame header's height is 0 (for a DNL marker to give later): we say unknown.
        "size of drewnoakes-metadata-extractor-images/jpg/beach.jpg",
        // Orientation 0 is invalid, which we report as 1.
        "orientation of recurser-exif-orientation-examples/Landscape_0.jpg",
        "orientation of recurser-exif-orientation-examples/Portrait_0.jpg",
        // Its `irot` turns the picture a quarter: HEIF decoders obey it and ignore the EXIF tag.
        "orientation of ianare-exif-samples/heic/mobile/HMD_Nokia_8.3_5G.heif",
    ];

    #[test]
    fn corpus_files_match_the_manifest() {
        let manifest = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).unwrap();
        let mut lines = manifest.lines();
        let columns: Vec<&str> = lines.next().unwrap().split('\t').collect();
        let (mut mismatches, mut rows) = (Vec::new(), 0);
        for line in lines {
            let row: BTreeMap<&str, &str> = columns.iter().copied().zip(line.split('\t')).collect();
            let path = row["path"];
            let (p, read) = probe_corpus_file(path);
            rows += 1;
            let mut expect = |what: &str, want: String, got: Option<String>| {
                let got = got.unwrap_or_default();
                let known = KNOWN_DIFFERENCES.contains(&format!("{what} of {path}").as_str());
                if want != got && !known {
                    mismatches.push(format!("{what} of {path} is {got:?}, manifest: {want:?}"));
                }
            };
            if !row["width"].is_empty() {
                let got = p.width.zip(p.height).map(|(w, h)| format!("{w}x{h}"));
                expect("size", format!("{}x{}", row["width"], row["height"]), got);
            }
            // exiftool adds sub-seconds and offsets, and shows an unset clock as blanks.
            let want_date = row["DateTimeOriginal"].get(..19).unwrap_or_default();
            if row["has_DateTimeOriginal"] == "yes" && want_date.starts_with(['1', '2']) {
                let got = p.taken.map(|t| dates::to_iso8601(&t)[..19].replace(['-', 'T'], ":"));
                expect("date", want_date.replace(' ', ":"), got);
            }
            if !row["orientation"].is_empty() {
                expect("orientation", row["orientation"].into(), Some(p.orientation.to_string()));
            }
            if !row["make"].is_empty() {
                expect("make", row["make"].trim().into(), p.make.clone());
            }
            if read > 1 << 20 {
                mismatches.push(format!("{path}: read {read} bytes of headers"));
            }
        }
        assert!(rows > 400, "only {rows} manifest rows");
        let count = mismatches.len();
        assert!(count == 0, "{count} mismatches:\n{}", mismatches.join("\n"));
    }

    #[test]
    fn webp_exif_is_found_after_the_image() {
        for orientation in [6, 8] {
            let path = format!("python-pillow-Pillow/Tests/images/hopper_orientation_{orientation}.webp");
            assert_eq!(probe_corpus_file(&path).0.orientation, orientation, "{path}");
        }
    }

    #[test]
    fn orientation_examples_display_the_right_way_up() {
        for orientation in 0..=8 {
            for (shape, landscape) in [("Landscape", true), ("Portrait", false)] {
                let name = format!("recurser-exif-orientation-examples/{shape}_{orientation}.jpg");
                let (p, _) = probe_corpus_file(&name);
                let (w, h) = p.display_size().unwrap_or_else(|| panic!("{name}: no size"));
                assert_eq!(w > h, landscape, "{name}: {w}x{h}");
            }
        }
    }

    /// An ISO-BMFF box.
    fn bmff(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&(8 + body.len() as u32).to_be_bytes()[..], kind, body].concat()
    }

    /// Big-endian fields, each given as (value, width in bytes).
    fn fields(values: &[(u64, usize)]) -> Vec<u8> {
        let field = |&(v, width): &(u64, usize)| v.to_be_bytes()[8 - width..].to_vec();
        values.iter().flat_map(field).collect()
    }

    /// A movie whose `moov` comes after `media_len` bytes of media data (in a box with a 64-bit
    /// size), with version 0 or 1 headers and, after an audio track, a 1920x1080 video track with
    /// the matrix (a, b, c, d).
    fn movie(version: u8, matrix: [i32; 4], created: u64, media_len: usize) -> Vec<u8> {
        let (full_box, wide) = ((u64::from(version) << 24, 4), if version == 0 { 4 } else { 8 });
        let mvhd = fields(&[full_box, (created, wide), (created, wide), (600, 4), (750_300, wide)]);
        let track = |width: u64, matrix: [i32; 4], handler: &[u8; 4]| {
            let mut tkhd = fields(&[full_box, (0, wide), (0, wide), (1, 4), (0, 4), (0, wide)]);
            tkhd.extend_from_slice(&[0; 16]); // reserved, layer, alternate group, volume
            let [a, b, c, d] = matrix.map(|m| m << 16);
            tkhd.extend(fields(&[a, b, 0, c, d, 0, 0, 0, 1 << 30].map(|m| (m as u32 as u64, 4))));
            tkhd.extend(fields(&[(width << 16, 4), ((width * 9 / 16) << 16, 4)]));
            let hdlr = bmff(b"hdlr", &[&[0; 8][..], handler, &[0; 13]].concat());
            let mdia = bmff(b"mdia", &[bmff(b"mdhd", &[0; 24]), hdlr].concat());
            bmff(b"trak", &[bmff(b"tkhd", &tkhd), mdia].concat())
        };
        let moov = [
            track(0, [1, 0, 0, 1], b"soun"),
            bmff(b"mvhd", &[mvhd, vec![0; 80]].concat()),
            track(1920, matrix, b"vide"),
        ];
        let mdat_len = (media_len as u64 + 16).to_be_bytes();
        let mdat = [&1u32.to_be_bytes()[..], b"mdat", &mdat_len, &vec![0; media_len]].concat();
        let ftyp = bmff(b"ftyp", b"isom\0\0\0\0isomavc1mp41");
        [ftyp, mdat, bmff(b"moov", &moov.concat())].concat()
    }

    #[test]
    fn movies_give_date_duration_size_and_rotation_from_a_moov_at_the_end() {
        let paris = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let utc = dates::parse_exif_datetime("2023:01:14 08:30:12", None, None).unwrap();
        let created = (utc.local_ms / 1000 + QUICKTIME_EPOCH_OFFSET) as u64;
        let cases = [
            (0, [1, 0, 0, 1], 1, (1920, 1080)),
            (1, [1, 0, 0, 1], 1, (1920, 1080)),
            (0, [0, 1, -1, 0], 6, (1080, 1920)),
            (1, [0, -1, 1, 0], 8, (1080, 1920)),
            (0, [-1, 0, 0, -1], 3, (1920, 1080)),
        ];
        for (version, matrix, orientation, display) in cases {
            let case = format!("version {version}, matrix {matrix:?}");
            let bytes = movie(version, matrix, created, 8 << 20);
            let (p, read) = probe_bytes(&bytes, Mov, &paris);
            assert_eq!(p.format, Mp4, "{case}");
            assert_eq!((p.width, p.height), (Some(1920), Some(1080)), "{case}");
            assert_eq!((p.orientation, p.display_size()), (orientation, Some(display)), "{case}");
            assert_eq!(p.duration_ms, Some(1_250_500), "{case}");
            let taken = p.taken.expect("a creation time");
            assert_eq!(dates::to_iso8601(&taken), "2023-01-14T09:30:12+01:00", "{case}");
            assert_eq!(taken.source, DateSource::Container);
            assert!(read < 64 << 10, "{case}: read {read} bytes");
        }
        let (p, _) = probe_bytes(&movie(0, [1, 0, 0, 1], 0, 100), Mp4, &paris);
        assert_eq!(p.taken, None, "a creation time of 0 is unknown");
    }

    #[test]
    fn hostile_headers_are_listed_without_facts_not_errors() {
        let heif = |rest: &[u8]| [&b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"[..], rest].concat();
        let jpeg = |rest: &[u8]| [&b"\xFF\xD8"[..], rest].concat();
        // One entry (orientation 6), then "next IFD" pointing back at itself.
        let ifd_loop = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\x08";
        let cases: Vec<(&str, Format, Vec<u8>)> = vec![
            ("empty", Jpeg, vec![]),
            ("empty movie", Mp4, vec![]),
            ("empty heif", Heif, vec![]),
            ("jpeg, segment length 0", Jpeg, jpeg(b"\xFF\xE1\0\0")),
            ("jpeg, truncated APP1", Jpeg, jpeg(b"\xFF\xE1\xFF\xFFExif\0\0MM")),
            ("jpeg, no markers", Jpeg, jpeg(&[0x55; 200_000])),
            ("jpeg, endless fill", Jpeg, jpeg(&[0xFF; 200_000])),
            ("jpeg, wild EXIF offset", Jpeg, jpeg(b"\xFF\xE1\0\x10Exif\0\0MM\0*\xFF\xFF\xFF\xF0")),
            ("jpeg, truncated SOF", Jpeg, jpeg(b"\xFF\xC0\0\x11\x08\x01")),
            ("tiff, IFD loop", Tiff, ifd_loop.into()),
            ("tiff, directory past the end", Tiff, b"II*\0\xFF\xFF\xFF\x7F".into()),
            ("png, 4 GiB chunk", Png, b"\x89PNG\r\n\x1A\n\xFF\xFF\xFF\xFFeXIf".into()),
            ("png, truncated IHDR", Png, b"\x89PNG\r\n\x1A\n\0\0\0\x0DIHDR\0\0".into()),
            ("webp, 4 GiB chunk", Webp, b"RIFF\xFF\xFF\xFF\xFFWEBPEXIF\xFF\xFF\xFF\xFF".into()),
            ("webp, truncated VP8X", Webp, b"RIFF\xFF\xFF\xFF\xFFWEBPVP8X\x0A\0\0\0\x08\0".into()),
            ("box size 2", Heif, heif(b"\0\0\0\x02meta")),
            ("box size 1, large size 8", Heif, heif(b"\0\0\0\x01meta\0\0\0\0\0\0\0\x08")),
            ("box past i64::MAX", Heif, heif(b"\0\0\0\x01free\x80\0\0\0\0\0\0\0")),
            ("box to u64::MAX", Heif, heif(b"\0\0\0\x01meta\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF")),
            ("meta to the end, truncated", Heif, heif(b"\0\0\0\0meta\0\0\0\0\0\0\0\x40iprp")),
            // kamadak-exif would read all of a `meta` box "to the end of the file".
            ("meta to the end of 16 MiB", Heif, heif(&[&b"\0\0\0\0meta"[..], &[0; 16 << 20]].concat())),
            ("heif of empty boxes", Heif, heif(&b"\0\0\0\x08free".repeat(200_000))),
            ("moov child bigger than moov", Mp4, bmff(b"moov", b"\0\0\xFF\xFFtrak")),
            ("moov of empty boxes", Mov, bmff(b"moov", &b"\0\0\0\x08free".repeat(20_000))),
        ];
        let scratch = std::env::temp_dir().join(format!("spis-probe-{}", std::process::id()));
        for (name, ext, bytes) in cases {
            // Through a real file too: a file refuses seeks that a Cursor allows.
            std::fs::write(&scratch, &bytes).unwrap();
            let mut file = BufReader::new(std::fs::File::open(&scratch).unwrap());
            let from_file = probe(&mut file, ext, &TimeZone::UTC);
            assert!(from_file.is_ok(), "{name}: {from_file:?}");
            let (p, read) = probe_bytes(&bytes, ext, &TimeZone::UTC);
            assert_eq!((p.display_size(), p.taken), (None, None), "{name}");
            assert!(read <= READ_BUDGET + (64 << 10), "{name}: read {read} bytes");
        }
        std::fs::remove_file(&scratch).unwrap();
    }

    #[test]
    fn damaged_files_never_panic_or_read_far() {
        let files = [
            "ianare-exif-samples/heic/mobile/iphone_13_pro_max.HEIC",
            "python-pillow-Pillow/Tests/images/avif/rot1mir0.avif",
            "python-pillow-Pillow/Tests/images/hopper_orientation_6.webp",
            "python-pillow-Pillow/Tests/images/frozenpond.mpo",
            "ianare-exif-samples/tiff/Arbitro.tiff",
            "pypi-scikit-image-0.26.0/skimage/data/chelsea.png",
        ];
        let mut samples = vec![movie(1, [0, 1, -1, 0], 3_000_000_000, 100), matroska_file(true)];
        samples.extend(files.map(|f| std::fs::read(corpus().join(f)).unwrap()));
        // A fixed xorshift sequence: the same damage on every run.
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for original in samples {
            let format = Format::sniff(&original).unwrap();
            for round in 0..300 {
                // Flip bits where the headers are, and every third time cut the file short.
                let mut bytes = original.clone();
                let reach = bytes.len().min(8192);
                for _ in 0..1 + random(8) {
                    bytes[random(reach)] ^= 1 << random(8);
                }
                if round % 3 == 0 {
                    bytes.truncate(random(reach));
                }
                let (_, read) = probe_bytes(&bytes, format, &TimeZone::UTC);
                assert!(read <= READ_BUDGET + (64 << 10), "{format:?} #{round}: read {read}");
            }
        }
    }

    /// An EBML element, its size in one byte when it fits, else in eight as some muxers write.
    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        if body.len() < 127 {
            out.push(0x80 | body.len() as u8);
        } else {
            out.push(0x01); // the marker bit of an 8-byte size, then seven bytes
            out.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        }
        out.extend_from_slice(body);
        out
    }

    /// A WebM header: 2.5 s at the default scale, dated 2021-06-05T10:20:30Z, an audio track
    /// before a 320x240 video track, then a cluster of media. With `unknown_segment`, the
    /// segment's size is "unknown" (all ones), as live recorders write it.
    fn matroska_file(unknown_segment: bool) -> Vec<u8> {
        let date_ns: i64 = (1_622_888_430 - 978_307_200) * 1_000_000_000;
        let info = [
            element(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
            element(&[0x44, 0x89], &2500f32.to_be_bytes()),
            element(&[0x44, 0x61], &date_ns.to_be_bytes()),
        ]
        .concat();
        let audio = element(&[0xAE], &element(&[0x83], &[2]));
        let video = [
            element(&[0x83], &[1]),
            element(&[0xE0], &[element(&[0xB0], &[0x01, 0x40]), element(&[0xBA], &[0xF0])].concat()),
        ]
        .concat();
        let tracks = element(&[0x16, 0x54, 0xAE, 0x6B], &[audio, element(&[0xAE], &video)].concat());
        let segment_body = [
            element(&[0xEC], &[0; 16]),
            element(&[0x15, 0x49, 0xA9, 0x66], &info),
            tracks,
            element(&[0x1F, 0x43, 0xB6, 0x75], &vec![0x55; 1 << 20]),
        ]
        .concat();
        let mut out = element(&[0x1A, 0x45, 0xDF, 0xA3], &element(&[0x42, 0x82], b"webm"));
        if unknown_segment {
            out.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
            out.extend_from_slice(&segment_body);
        } else {
            out.extend(element(&[0x18, 0x53, 0x80, 0x67], &segment_body));
        }
        out
    }

    #[test]
    fn matroska_gives_size_duration_and_date_without_reading_the_media() {
        for unknown in [false, true] {
            let bytes = matroska_file(unknown);
            let (p, read) = probe_bytes(&bytes, Mkv, &TimeZone::UTC);
            assert_eq!(p.format, Webm);
            assert_eq!((p.width, p.height), (Some(320), Some(240)), "{p:?}");
            assert_eq!(p.duration_ms, Some(2500));
            assert_eq!(
                p.taken.map(|t| dates::Iso8601(t).to_string()).as_deref(),
                Some("2021-06-05T10:20:30+00:00")
            );
            assert!(read < 64 << 10, "the cluster was not read: {read} of {}", bytes.len());
        }
    }

    #[test]
    fn ebml_integers_take_their_length_from_the_first_byte() {
        assert_eq!(vint(&[0x81], false), Some((1, 1)));
        assert_eq!(vint(&[0x40, 0x02], false), Some((2, 2)));
        assert_eq!(vint(&[0x01, 0, 0, 0, 0, 0, 0, 7], false), Some((7, 8)));
        assert_eq!(vint(&[0x1A, 0x45, 0xDF, 0xA3], true), Some((0x1A45_DFA3, 4)));
        assert_eq!(vint(&[0x08, 0, 0, 0, 0], true), None, "ids are at most 4 bytes");
        assert_eq!(vint(&[0x00, 1, 2, 3, 4, 5, 6, 7, 8], false), None);
        assert_eq!(vint(&[0x40], false), None, "truncated");
    }
}
