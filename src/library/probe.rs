//! What kind of media a file is, and the facts its header states: pixel size, orientation, the
//! date it was taken, camera and lens, video duration.
//!
//! The one rule: read as little as possible, and never trust a length from the file. Every format
//! is walked by its own structure (JPEG markers, PNG chunks, RIFF chunks, ISO-BMFF boxes), seeking
//! past payloads instead of reading them, and every read, loop and allocation has a fixed bound
//! below, because a photo library is untrusted input. A damaged file is not an error: it is
//! listed with whatever could be read before the damage. Only real I/O failures are errors.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

use exif::{In, Tag};
use serde::{Deserialize, Serialize};

use super::dates::{self, DateSource, Taken};

/// Bytes read from the start of every file to recognise its format.
const HEAD_LEN: u64 = 512;
/// How far into a JPEG we walk looking for the frame header. Larger than typical (a few KiB)
/// because phones put megabytes of depth maps in extended-XMP segments before it; we seek over
/// segments, so this bounds seeking, not reading.
const JPEG_HEADER_LIMIT: u64 = 16 << 20;
/// Segments, chunks or boxes visited in one file, whatever the format.
const MAX_STRUCTURES: u32 = 4096;
/// The largest EXIF block (PNG `eXIf`, WebP `EXIF`, the head of a TIFF) read into memory.
const EXIF_LIMIT: u64 = 4 << 20;
/// The largest HEIF/MP4 leaf box read into memory (`ipma`, `mvhd`, `tkhd`, ...).
const BOX_LIMIT: u64 = 1 << 20;
/// Everything kamadak-exif may read from a HEIF/AVIF file (see [`Budget`]).
const HEIF_EXIF_BUDGET: u64 = 8 << 20;
/// Seconds from 1904-01-01 (the QuickTime epoch) to 1970-01-01.
const QUICKTIME_EPOCH_OFFSET: i64 = 2_082_844_800;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Image,
    Video,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Tiff,
    Bmp,
    Heif,
    Avif,
    Mp4,
    Mov,
    Webm,
    Mkv,
}

impl Format {
    /// The format a file extension (without the dot, any case) claims.
    pub fn from_extension(ext: &str) -> Option<Format> {
        let ext = ext.strip_prefix('.').unwrap_or(ext).to_ascii_lowercase();
        Some(match ext.as_str() {
            "jpg" | "jpeg" | "jpe" => Format::Jpeg,
            "png" => Format::Png,
            "gif" => Format::Gif,
            "webp" => Format::Webp,
            "tif" | "tiff" => Format::Tiff,
            "bmp" => Format::Bmp,
            "heic" | "heif" => Format::Heif,
            "avif" => Format::Avif,
            "mp4" | "m4v" => Format::Mp4,
            "mov" => Format::Mov,
            "webm" => Format::Webm,
            "mkv" => Format::Mkv,
            _ => return None,
        })
    }

    /// The format the first bytes of a file show (512 are plenty), if they show one we handle.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
        if at(0, b"\xFF\xD8\xFF") {
            Some(Format::Jpeg)
        } else if at(0, b"\x89PNG\r\n\x1A\n") {
            Some(Format::Png)
        } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
            Some(Format::Gif)
        } else if at(0, b"RIFF") && at(8, b"WEBP") {
            Some(Format::Webp)
        } else if at(0, b"II*\0") || at(0, b"MM\0*") {
            Some(Format::Tiff)
        } else if at(0, b"BM") && matches!(le_u32(head, 14), Some(12 | 40 | 52 | 56 | 64 | 108 | 124)) {
            // "BM" alone is too weak a signature; the DIB header size makes it a bitmap.
            Some(Format::Bmp)
        } else if at(4, b"ftyp") {
            Some(sniff_ftyp(head))
        } else if at(0, b"\x1A\x45\xDF\xA3") {
            sniff_ebml(head)
        } else if ["moov", "mdat", "wide", "free", "skip", "pnot"].iter().any(|b| at(4, b.as_bytes())) {
            // QuickTime files from before `ftyp` existed start straight with an atom.
            Some(Format::Mov)
        } else {
            None
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Format::Mp4 | Format::Mov | Format::Webm | Format::Mkv => Kind::Video,
            _ => Kind::Image,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Tiff => "image/tiff",
            Format::Bmp => "image/bmp",
            Format::Heif => "image/heic",
            Format::Avif => "image/avif",
            Format::Mp4 => "video/mp4",
            Format::Mov => "video/quicktime",
            Format::Webm => "video/webm",
            Format::Mkv => "video/x-matroska",
        }
    }
}

/// ISO-BMFF: the major and compatible brands decide. AVIF wins over HEIF because AVIF files also
/// carry the generic HEIF brands (`mif1`, `msf1`).
fn sniff_ftyp(head: &[u8]) -> Format {
    let end = be_u32(head, 0).map_or(0, |size| (size as usize).min(head.len()));
    let brands: Vec<&[u8]> = head.get(8..end).unwrap_or_default().chunks_exact(4).collect();
    // brands[1] is the minor version, not a brand.
    let has = |wanted: &[&[u8]]| brands.iter().enumerate().any(|(i, b)| i != 1 && wanted.contains(b));
    let heif: &[&[u8]] = &[b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"];
    if has(&[b"avif", b"avis"]) {
        Format::Avif
    } else if has(heif) {
        Format::Heif
    } else if brands.first() == Some(&&b"qt  "[..]) {
        Format::Mov
    } else {
        Format::Mp4
    }
}

/// EBML: the header's DocType says WebM or Matroska (Matroska when absent, per the spec).
fn sniff_ebml(head: &[u8]) -> Option<Format> {
    let (size, len) = ebml_vint(head.get(4..)?)?;
    let header = head.get(4 + len..)?;
    let header = &header[..header.len().min(size as usize)];
    let mut pos = 0;
    while pos < header.len() {
        let (id, id_len) = ebml_vint(&header[pos..])?;
        let (size, size_len) = ebml_vint(&header[pos + id_len..])?;
        let data = pos + id_len + size_len;
        let value = header.get(data..data.checked_add(usize::try_from(size).ok()?)?)?;
        // 0x4282 is DocType; `ebml_vint` strips the length marker, so it reads 0x282.
        if id == 0x282 {
            return match value.split(|&b| b == 0).next()? {
                b"webm" => Some(Format::Webm),
                b"matroska" => Some(Format::Mkv),
                _ => None,
            };
        }
        pos = data + value.len();
    }
    Some(Format::Mkv)
}

/// An EBML variable-length integer (marker bit removed) and its length in bytes.
fn ebml_vint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = first.leading_zeros() as usize + 1;
    let bytes = buf.get(..len).filter(|_| len <= 8)?;
    let value = bytes[1..].iter().fold(u64::from(first) & (0xFF >> len), |v, &b| v << 8 | u64::from(b));
    Some((value, len))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub format: Format,
    /// Stored pixel size, before EXIF orientation.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF orientation 1..=8 (1 when absent or invalid). For HEIF/AVIF it is derived from the
    /// primary item's `irot`/`imir` boxes instead, with `width`/`height` from its `ispe` (before
    /// rotation): decoders apply those boxes themselves and the format says to ignore the EXIF tag.
    /// For MP4/MOV it comes from the video track's rotation matrix (6 or 8 for quarter turns).
    pub orientation: u8,
    /// EXIF (or video container) date only; file name / mtime fallbacks are the caller's job.
    pub taken: Option<Taken>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub lens: Option<String>,
    /// Video duration in milliseconds when the container says.
    pub duration_ms: Option<u64>,
}

impl Probe {
    /// The size as shown: stored size with width and height swapped for orientations 5..=8.
    pub fn display_size(&self) -> Option<(u32, u32)> {
        let (w, h) = (self.width?, self.height?);
        Some(if (5..=8).contains(&self.orientation) { (h, w) } else { (w, h) })
    }

    fn empty(format: Format) -> Self {
        Probe {
            format,
            width: None,
            height: None,
            orientation: 1,
            taken: None,
            make: None,
            model: None,
            lens: None,
            duration_ms: None,
        }
    }

    fn set_size(&mut self, width: u32, height: u32) {
        // Zero means "unknown" in every header that can hold it (JPEG with DNL, audio tracks).
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
    let head = read_up_to(r, HEAD_LEN)?;
    let mut p = Probe::empty(Format::sniff(&head).unwrap_or(ext_format));
    let mut steps = MAX_STRUCTURES;
    let result = match p.format {
        Format::Jpeg => jpeg(r, &mut p, &mut steps),
        Format::Png => png(r, &mut p, &mut steps),
        Format::Webp => webp(r, &mut p, &mut steps),
        Format::Gif => size_by_imagesize(r, &mut p),
        Format::Tiff => tiff(r, &mut p),
        Format::Bmp => {
            bmp(&head, &mut p);
            Ok(())
        }
        Format::Heif | Format::Avif => heif(r, &mut p, &mut steps),
        Format::Mp4 | Format::Mov => quicktime(r, &mut p, tz, &mut steps),
        // Only sniffed: reading EBML for size and date is left for when videos need it.
        Format::Webm | Format::Mkv => Ok(()),
    };
    match result {
        Err(e) if !is_damage(&e) => Err(e),
        _ => Ok(p),
    }
}

/// Errors that say the *file* is bad (truncated, malformed, over a limit) rather than the disk.
fn is_damage(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData)
}

fn damaged(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Counts one more structure visited; errs when a file has more than we are willing to walk.
fn step(steps: &mut u32) -> io::Result<()> {
    *steps = steps.checked_sub(1).ok_or_else(|| damaged("too many structures"))?;
    Ok(())
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

fn read_be_u32<R: Read>(r: &mut R) -> io::Result<u32> {
    Ok(u32::from_be_bytes(read_array(r)?))
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

/// JPEG: walk the marker segments from SOI to the frame header (SOF), keeping the first EXIF
/// APP1 on the way. Segments are at most 64 KiB, so the EXIF read is bounded by the format.
fn jpeg<R: BufRead + Seek>(r: &mut R, p: &mut Probe, steps: &mut u32) -> io::Result<()> {
    r.seek(SeekFrom::Start(0))?;
    if read_array(r)? != [0xFF, 0xD8] {
        return Err(damaged("no JPEG SOI"));
    }
    let mut pos = 2u64;
    let mut seen_exif = false;
    while pos < JPEG_HEADER_LIMIT {
        step(steps)?;
        let [ff, mut marker] = read_array(r)?;
        if ff != 0xFF {
            return Err(damaged("JPEG marker expected"));
        }
        pos += 2;
        // Any number of 0xFF fill bytes may precede a marker code (bounded by `pos`).
        while marker == 0xFF && pos < JPEG_HEADER_LIMIT {
            marker = read_array::<1, _>(r)?[0];
            pos += 1;
        }
        match marker {
            0x01 | 0xD0..=0xD7 => continue, // stand-alone markers, no length
            0xD9 | 0xDA => break,           // EOI, or SOS: the image data starts, no SOF came
            _ => {}
        }
        let len = u64::from(u16::from_be_bytes(read_array(r)?));
        let body = len.checked_sub(2).ok_or_else(|| damaged("JPEG segment length"))?;
        match marker {
            0xE1 if !seen_exif => {
                let segment = read_up_to(r, body)?;
                if let Some(tiff) = segment.strip_prefix(b"Exif\0\0") {
                    seen_exif = true;
                    apply_exif(p, tiff.to_vec());
                }
            }
            // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC) that share the range.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let [_precision, h1, h0, w1, w0] = read_array(r)?;
                p.set_size(u16::from_be_bytes([w1, w0]).into(), u16::from_be_bytes([h1, h0]).into());
                // EXIF comes before the frame header, so the walk is done.
                return Ok(());
            }
            _ => {}
        }
        pos += len;
        r.seek(SeekFrom::Start(pos))?;
    }
    Ok(())
}

/// PNG: IHDR gives the size; an `eXIf` chunk, when there is one, comes before the image data.
fn png<R: BufRead + Seek>(r: &mut R, p: &mut Probe, steps: &mut u32) -> io::Result<()> {
    let mut pos = 8u64;
    loop {
        step(steps)?;
        r.seek(SeekFrom::Start(pos))?;
        let len = u64::from(read_be_u32(r)?);
        match &read_array(r)? {
            b"IHDR" => {
                let (width, height) = (read_be_u32(r)?, read_be_u32(r)?);
                p.set_size(width, height);
            }
            b"eXIf" if len <= EXIF_LIMIT => apply_exif(p, strip_exif_id(read_up_to(r, len)?)),
            b"IDAT" | b"IEND" => return Ok(()),
            _ => {}
        }
        // Length, type, data, CRC.
        pos = pos.saturating_add(12 + len);
    }
}

/// WebP: RIFF chunks. The first chunk gives the size (VP8X canvas, or the lone VP8/VP8L frame);
/// an extended file flags whether an `EXIF` chunk exists, which then usually comes last, after
/// every animation frame, so the walk seeks from chunk header to chunk header.
fn webp<R: BufRead + Seek>(r: &mut R, p: &mut Probe, steps: &mut u32) -> io::Result<()> {
    let mut pos = 12u64;
    loop {
        step(steps)?;
        r.seek(SeekFrom::Start(pos))?;
        let fourcc: [u8; 4] = read_array(r)?;
        let len = u64::from(u32::from_le_bytes(read_array(r)?));
        match &fourcc {
            b"VP8X" => {
                let b: [u8; 10] = read_array(r)?;
                let le24 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], 0]) + 1;
                p.set_size(le24(4), le24(7));
                const HAS_EXIF: u8 = 0x08;
                if b[0] & HAS_EXIF == 0 {
                    return Ok(());
                }
            }
            b"VP8 " => {
                // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height.
                let b: [u8; 10] = read_array(r)?;
                let le14 = |i: usize| u32::from(u16::from_le_bytes([b[i], b[i + 1]]) & 0x3FFF);
                p.set_size(le14(6), le14(8));
                return Ok(());
            }
            b"VP8L" => {
                // Signature 0x2F, then 14-bit width-1 and height-1.
                let [_, b0, b1, b2, b3] = read_array(r)?;
                let bits = u32::from_le_bytes([b0, b1, b2, b3]);
                p.set_size((bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1);
                return Ok(());
            }
            b"EXIF" if len <= EXIF_LIMIT => {
                apply_exif(p, strip_exif_id(read_up_to(r, len)?));
                return Ok(());
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = pos.saturating_add(8 + len + (len & 1));
    }
}

/// TIFF: the file *is* the EXIF structure. Its directories are usually near the start; one written
/// after megabytes of strips is beyond what we read, and the file is listed without EXIF facts.
fn tiff<R: BufRead + Seek>(r: &mut R, p: &mut Probe) -> io::Result<()> {
    size_by_imagesize(r, p)?;
    r.seek(SeekFrom::Start(0))?;
    apply_exif(p, read_up_to(r, EXIF_LIMIT)?);
    Ok(())
}

/// GIF and TIFF sizes: imagesize reads only the header (TIFF: the first directory's entries).
fn size_by_imagesize<R: BufRead + Seek>(r: &mut R, p: &mut Probe) -> io::Result<()> {
    r.seek(SeekFrom::Start(0))?;
    match imagesize::reader_size(&mut *r) {
        Ok(size) => {
            p.set_size(u32::try_from(size.width).unwrap_or(0), u32::try_from(size.height).unwrap_or(0))
        }
        Err(imagesize::ImageError::IoError(e)) if !is_damage(&e) => return Err(e),
        Err(_) => {}
    }
    Ok(())
}

/// BMP: our own few lines rather than imagesize's, which misreads top-down bitmaps (their height
/// is negative).
fn bmp(head: &[u8], p: &mut Probe) {
    let size = match le_u32(head, 14) {
        // BITMAPCOREHEADER: unsigned 16-bit sizes.
        Some(12) => head
            .get(18..22)
            .map(|b| (u16::from_le_bytes([b[0], b[1]]).into(), u16::from_le_bytes([b[2], b[3]]).into())),
        _ => le_u32(head, 18)
            .zip(le_u32(head, 22))
            .map(|(w, h)| ((w as i32).unsigned_abs(), (h as i32).unsigned_abs())),
    };
    if let Some((width, height)) = size {
        p.set_size(width, height);
    }
}

/// HEIF and AVIF: kamadak-exif finds the EXIF item (within [`Budget`]); the size and orientation
/// come from the primary item's properties in `meta`/`iprp`, which we read ourselves.
fn heif<R: BufRead + Seek>(r: &mut R, p: &mut Probe, steps: &mut u32) -> io::Result<()> {
    r.seek(SeekFrom::Start(0))?;
    let mut limited = Budget { inner: &mut *r, left: HEIF_EXIF_BUDGET };
    match exif::Reader::new().continue_on_error(true).read_from_container(&mut limited) {
        Err(exif::Error::Io(e)) if !is_damage(&e) => return Err(e),
        result => {
            if let Some(exif) = usable_exif(result) {
                apply_exif_fields(p, &exif);
            }
        }
    }
    p.orientation = 1;
    let mut top = Boxes::file();
    while let Some(b) = top.next(r, steps)? {
        if &b.kind == b"meta" {
            return heif_meta(r, p, b, steps);
        }
    }
    Ok(())
}

/// Properties of the primary item: `ispe` (stored size), then `irot` and `imir`, applied in that
/// order (MIAF requires it), turned into the EXIF orientation that does the same.
fn heif_meta<R: BufRead + Seek>(r: &mut R, p: &mut Probe, meta: Bmff, steps: &mut u32) -> io::Result<()> {
    let mut primary = None;
    // (1-based property index, type, body) of the properties we care about.
    let mut properties: Vec<(usize, [u8; 4], Vec<u8>)> = Vec::new();
    let mut associations = Vec::new();
    let mut children = meta.children(4); // `meta` is a full box: version and flags first
    while let Some(b) = children.next(r, steps)? {
        match &b.kind {
            b"pitm" => primary = Some(read_body(r, &b)?),
            b"iprp" => {
                let mut iprp = b.children(0);
                while let Some(b) = iprp.next(r, steps)? {
                    match &b.kind {
                        b"ipco" => {
                            let mut ipco = b.children(0);
                            let mut index = 0;
                            while let Some(b) = ipco.next(r, steps)? {
                                index += 1;
                                if matches!(&b.kind, b"ispe" | b"irot" | b"imir") {
                                    properties.push((index, b.kind, read_body(r, &b)?));
                                }
                            }
                        }
                        b"ipma" => associations = read_body(r, &b)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // pitm: version (1 byte), flags (3), item id (u16, or u32 from version 1).
    let primary = primary.and_then(|b| match b.first()? {
        0 => be_u16(&b, 4).map(u32::from),
        _ => be_u32(&b, 4),
    });
    let Some(indices) = primary.and_then(|item| item_properties(&associations, item)) else {
        return Ok(());
    };
    // The transform as "turn clockwise, then maybe mirror left-right", which is how the EXIF
    // orientations enumerate.
    let (mut turns_cw, mut mirror) = (0u8, false);
    for index in indices {
        let Some((_, kind, body)) = properties.iter().find(|(i, ..)| *i == index) else {
            continue;
        };
        match kind {
            // A full box: version and flags, then width and height.
            b"ispe" => p.set_size(be_u32(body, 4).unwrap_or(0), be_u32(body, 8).unwrap_or(0)),
            // Anti-clockwise quarter turns in the low two bits; after a mirror a turn goes the
            // other way round.
            b"irot" => {
                let ccw = body.first().map_or(0, |a| a & 3);
                turns_cw = if mirror { turns_cw + ccw } else { turns_cw + 4 - ccw } % 4;
            }
            // Bit 0 is the axis: 0 mirrors left-right, 1 top-bottom (a half turn, then left-right).
            b"imir" => {
                if body.first().is_some_and(|a| a & 1 == 1) {
                    turns_cw = (turns_cw + 2) % 4;
                }
                mirror = !mirror;
            }
            _ => {}
        }
    }
    p.orientation = [[1, 6, 3, 8], [2, 5, 4, 7]][usize::from(mirror)][usize::from(turns_cw)];
    Ok(())
}

/// The property indices (1-based, in order) that an `ipma` box associates with `item`.
fn item_properties(ipma: &[u8], item: u32) -> Option<Vec<usize>> {
    let (version, wide_indices) = (*ipma.first()?, ipma.get(3)? & 1 == 1);
    let mut pos = 8;
    // Every entry takes at least 3 bytes, so a lying count runs out of box, not of time.
    for _ in 0..be_u32(ipma, 4)? {
        let id = if version == 0 { be_u16(ipma, pos).map(u32::from)? } else { be_u32(ipma, pos)? };
        pos += if version == 0 { 2 } else { 4 };
        let count = *ipma.get(pos)?;
        pos += 1;
        let mut indices = Vec::with_capacity(count.into());
        for _ in 0..count {
            // The top bit of each association is "essential", the rest the index.
            if wide_indices {
                indices.push(usize::from(be_u16(ipma, pos)? & 0x7FFF));
                pos += 2;
            } else {
                indices.push(usize::from(ipma.get(pos)? & 0x7F));
                pos += 1;
            }
        }
        if id == item {
            return Some(indices);
        }
    }
    None
}

/// MP4 and QuickTime: `moov` may sit before or after the media data (`mdat`), which we seek over.
/// `mvhd` gives the creation time and duration, the first video track's `tkhd` the size and the
/// rotation.
fn quicktime<R: BufRead + Seek>(
    r: &mut R,
    p: &mut Probe,
    tz: &jiff::tz::TimeZone,
    steps: &mut u32,
) -> io::Result<()> {
    let mut top = Boxes::file();
    let Some(moov) = top.find(r, b"moov", steps)? else {
        return Ok(());
    };
    let mut children = moov.children(0);
    while let Some(b) = children.next(r, steps)? {
        match &b.kind {
            b"mvhd" => mvhd(&read_body(r, &b)?, p, tz),
            b"trak" if p.width.is_none() => trak(r, p, b, steps)?,
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
    // Zero means "not set"; a time before 1970 is a device that counted from the wrong epoch.
    let unix = created.and_then(|c| i64::try_from(c).ok()).map(|c| c - QUICKTIME_EPOCH_OFFSET);
    if let Some(secs) = unix.filter(|&s| s > 0) {
        p.taken = Some(dates::from_unix_utc(secs, 0, tz, DateSource::Container));
    }
    if let (Some(duration), Some(timescale)) = (duration, timescale.filter(|&t| t > 0)) {
        p.duration_ms = u64::try_from(u128::from(duration) * 1000 / u128::from(timescale)).ok();
    }
}

/// A track: its header, and whether its media handler (`mdia`/`hdlr`) says video.
fn trak<R: BufRead + Seek>(r: &mut R, p: &mut Probe, trak: Bmff, steps: &mut u32) -> io::Result<()> {
    let (mut header, mut is_video) = (None, false);
    let mut children = trak.children(0);
    while let Some(b) = children.next(r, steps)? {
        match &b.kind {
            b"tkhd" => header = Some(read_body(r, &b)?),
            b"mdia" => {
                if let Some(hdlr) = b.children(0).find(r, b"hdlr", steps)? {
                    // Version and flags, pre_defined, then the handler type.
                    is_video = read_body(r, &hdlr)?.get(8..12) == Some(b"vide");
                }
            }
            _ => {}
        }
    }
    if let Some(b) = header.filter(|_| is_video) {
        // After the times, track id and duration (wider from version 1): reserved, layer,
        // alternate group, volume, reserved, a 3x3 matrix, then width and height in 16.16.
        let matrix = if b.first() == Some(&0) { 40 } else { 52 };
        let fixed = |at: usize| be_u32(&b, at).map_or(0, |v| (v + 0x8000) >> 16);
        p.set_size(fixed(matrix + 36), fixed(matrix + 40));
        let entry = |i: usize| be_u32(&b, matrix + 4 * i).map_or(0, |v| (v as i32).signum());
        // The matrix maps (x, y) to (a x + c y, b x + d y) with y pointing down.
        p.orientation = match (entry(0), entry(1), entry(3), entry(4)) {
            (0, 1, -1, 0) => 6,
            (-1, 0, 0, -1) => 3,
            (0, -1, 1, 0) => 8,
            _ => 1,
        };
    }
    Ok(())
}

/// An ISO-BMFF box: its type and where its body starts and ends in the file.
#[derive(Clone, Copy, Debug)]
struct Bmff {
    kind: [u8; 4],
    body: u64,
    end: u64,
}

impl Bmff {
    /// The boxes inside this one, after `skip` bytes of its own fields.
    fn children(&self, skip: u64) -> Boxes {
        Boxes { pos: self.body.saturating_add(skip), end: self.end }
    }
}

/// A cursor over consecutive boxes in `pos..end`. Each box header is read where it sits; bodies
/// are seeked over, and every box moves the cursor forward by at least its 8-byte header.
struct Boxes {
    pos: u64,
    end: u64,
}

impl Boxes {
    fn file() -> Self {
        Boxes { pos: 0, end: u64::MAX }
    }

    fn next<R: Read + Seek>(&mut self, r: &mut R, steps: &mut u32) -> io::Result<Option<Bmff>> {
        if self.end.saturating_sub(self.pos) < 8 {
            return Ok(None);
        }
        step(steps)?;
        r.seek(SeekFrom::Start(self.pos))?;
        let mut header = [0; 8];
        // The end of the file is the end of the top level: not damage.
        if let Err(e) = r.read_exact(&mut header) {
            return if e.kind() == io::ErrorKind::UnexpectedEof { Ok(None) } else { Err(e) };
        }
        let (size, kind) = (be_u32(&header, 0).unwrap_or(0), [header[4], header[5], header[6], header[7]]);
        let (body, end) = match size {
            // Size 0: the box runs to the end of its parent (of the file, at the top level).
            0 => (self.pos + 8, self.end),
            // Size 1: a 64-bit size follows the type.
            1 => {
                let large = u64::from_be_bytes(read_array(r)?);
                let end = self.pos.checked_add(large).filter(|_| large >= 16);
                (self.pos + 16, end.ok_or_else(|| damaged("box size"))?)
            }
            2..=7 => return Err(damaged("box size")),
            _ => (self.pos + 8, self.pos.saturating_add(size.into())),
        };
        let end = end.min(self.end);
        self.pos = end;
        Ok(Some(Bmff { kind, body, end }))
    }

    fn find<R: Read + Seek>(
        &mut self,
        r: &mut R,
        kind: &[u8; 4],
        steps: &mut u32,
    ) -> io::Result<Option<Bmff>> {
        while let Some(b) = self.next(r, steps)? {
            if &b.kind == kind {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }
}

/// A box body, up to [`BOX_LIMIT`] bytes (all the leaf boxes we read are far smaller).
fn read_body<R: Read + Seek>(r: &mut R, b: &Bmff) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(b.body))?;
    read_up_to(r, b.end.saturating_sub(b.body).min(BOX_LIMIT))
}

/// SECURITY: kamadak-exif's HEIF reader trusts the file's sizes: it reads the whole `meta` box,
/// and the Exif item's extents, into memory, and a size or extent length of 0 means "to the end
/// of the file". It reads through this adapter, which ends the file after `left` bytes. Seeking
/// stays free, so an Exif item at the far end of a large file is still found.
struct Budget<'a, R> {
    inner: &'a mut R,
    left: u64,
}

impl<R: Read> Read for Budget<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowed = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..allowed])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Budget<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let left = usize::try_from(self.left).unwrap_or(usize::MAX);
        let buf = self.inner.fill_buf()?;
        Ok(&buf[..buf.len().min(left)])
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.inner.consume(amount);
        self.left -= amount as u64;
    }
}

impl<R: Seek> Seek for Budget<'_, R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Some writers keep JPEG's "Exif\0\0" prefix in PNG and WebP EXIF chunks, where it does not belong.
fn strip_exif_id(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(b"Exif\0\0") {
        data.drain(..6);
    }
    data
}

/// Reads a TIFF-structured EXIF block, keeping whatever parsed before any damage.
fn apply_exif(p: &mut Probe, tiff: Vec<u8>) {
    let result = exif::Reader::new().continue_on_error(true).read_raw(tiff);
    if let Some(exif) = usable_exif(result) {
        apply_exif_fields(p, &exif);
    }
}

fn usable_exif(result: Result<exif::Exif, exif::Error>) -> Option<exif::Exif> {
    match result {
        Ok(exif) => Some(exif),
        Err(e) => e.distill_partial_result(|_errors| ()).ok(),
    }
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
    p.make = text(Tag::Make);
    p.model = text(Tag::Model);
    p.lens = text(Tag::LensModel);
    // Best first: when the shutter fired, when it was digitised, when the file was last written.
    let candidates = [
        (Tag::DateTimeOriginal, Tag::SubSecTimeOriginal, Tag::OffsetTimeOriginal),
        (Tag::DateTimeDigitized, Tag::SubSecTimeDigitized, Tag::OffsetTimeDigitized),
        (Tag::DateTime, Tag::SubSecTime, Tag::OffsetTime),
    ];
    p.taken = candidates.into_iter().find_map(|(date, subsec, offset)| {
        dates::parse_exif_datetime(&text(date)?, text(subsec).as_deref(), text(offset).as_deref())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs::File;
    use std::io::{BufReader, Cursor};
    use std::path::{Path, PathBuf};

    use jiff::tz::TimeZone;

    #[test]
    fn formats_are_recognised_by_their_first_bytes() {
        let ftyp = |brands: &[&[u8; 4]]| {
            let mut b = ((8 + 4 * brands.len()) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(b"ftyp");
            for (i, brand) in brands.iter().enumerate() {
                b.extend_from_slice(*brand);
                if i == 0 {
                    b.extend_from_slice(&[0; 4]); // minor version
                }
            }
            b[3] += 4;
            b
        };
        let ebml = |doctype: &[u8]| {
            let mut b = vec![0x1A, 0x45, 0xDF, 0xA3, 0x80 | (3 + doctype.len() as u8)];
            b.extend_from_slice(&[0x42, 0x82, 0x80 | doctype.len() as u8]);
            b.extend_from_slice(doctype);
            b
        };
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        let cases: Vec<(Vec<u8>, Option<Format>)> = vec![
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF".to_vec(), Some(Format::Jpeg)),
            (b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR".to_vec(), Some(Format::Png)),
            (b"GIF89a\x01\0\x01\0".to_vec(), Some(Format::Gif)),
            (b"GIF87a".to_vec(), Some(Format::Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ".to_vec(), Some(Format::Webp)),
            (b"RIFF\0\0\0\0AVI LIST".to_vec(), None),
            (b"II*\0\x08\0\0\0".to_vec(), Some(Format::Tiff)),
            (b"MM\0*\0\0\0\x08".to_vec(), Some(Format::Tiff)),
            (bmp, Some(Format::Bmp)),
            (b"BMW is a car, not a bitmap".to_vec(), None),
            (ftyp(&[b"heic", b"mif1", b"heic"]), Some(Format::Heif)),
            (ftyp(&[b"mif1", b"heic"]), Some(Format::Heif)),
            (ftyp(&[b"msf1", b"hevc"]), Some(Format::Heif)),
            (ftyp(&[b"avif", b"mif1", b"miaf"]), Some(Format::Avif)),
            (ftyp(&[b"mif1", b"avif"]), Some(Format::Avif)),
            (ftyp(&[b"avis", b"msf1"]), Some(Format::Avif)),
            (ftyp(&[b"isom", b"iso2", b"avc1", b"mp41"]), Some(Format::Mp4)),
            (ftyp(&[b"mp42", b"isom"]), Some(Format::Mp4)),
            (ftyp(&[b"M4V ", b"M4V "]), Some(Format::Mp4)),
            (ftyp(&[b"qt  ", b"qt  "]), Some(Format::Mov)),
            (b"\0\0\0\x08wide\0\0\0\0mdat".to_vec(), Some(Format::Mov)),
            (ebml(b"webm"), Some(Format::Webm)),
            (ebml(b"matroska"), Some(Format::Mkv)),
            (ebml(b"something"), None),
            (b"\x1A\x45\xDF\xA3".to_vec(), None),
            (b"".to_vec(), None),
            (b"\xFF\xD8".to_vec(), None),
            (b"hello, world".to_vec(), None),
        ];
        for (head, want) in cases {
            assert_eq!(Format::sniff(&head), want, "{:?}", String::from_utf8_lossy(&head));
        }
    }

    #[test]
    fn extensions_map_to_formats_whatever_their_case() {
        let cases = [
            ("jpg", Some(Format::Jpeg)),
            ("JPEG", Some(Format::Jpeg)),
            ("jpe", Some(Format::Jpeg)),
            (".png", Some(Format::Png)),
            ("Tif", Some(Format::Tiff)),
            ("HEIC", Some(Format::Heif)),
            ("heif", Some(Format::Heif)),
            ("avif", Some(Format::Avif)),
            ("m4v", Some(Format::Mp4)),
            ("MOV", Some(Format::Mov)),
            ("webm", Some(Format::Webm)),
            ("mkv", Some(Format::Mkv)),
            ("txt", None),
            ("", None),
        ];
        for (ext, want) in cases {
            assert_eq!(Format::from_extension(ext), want, "{ext}");
        }
        assert_eq!(Format::Heif.mime(), "image/heic");
        assert_eq!(Format::Mov.mime(), "video/quicktime");
        assert_eq!(Format::Mkv.kind(), Kind::Video);
        assert_eq!(Format::Avif.kind(), Kind::Image);
    }

    /// A reader that counts the bytes it hands out, to check that probing stays in the headers.
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

    /// Probes `bytes`, returning the result and how many bytes were read.
    fn probe_bytes(bytes: &[u8], ext: Format) -> (Probe, u64) {
        let mut r = BufReader::new(Counting { inner: Cursor::new(bytes), read: 0 });
        let p = probe(&mut r, ext, &TimeZone::UTC).expect("in-memory reads never fail");
        (p, r.get_ref().read)
    }

    fn corpus() -> PathBuf {
        let candidates = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"),
            // A scratch crate one level deeper than the project.
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"),
        ];
        let found = candidates.iter().map(PathBuf::from).find(|p| p.join("MANIFEST.tsv").is_file());
        found.expect("the shared test corpus (../shared/corpus) is missing")
    }

    fn probe_file(path: &Path) -> (Probe, u64) {
        let ext = path.extension().and_then(|e| e.to_str()).and_then(Format::from_extension);
        let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut r = BufReader::new(Counting { inner: file, read: 0 });
        let p = probe(&mut r, ext.unwrap_or(Format::Jpeg), &TimeZone::UTC)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (p, r.get_ref().read)
    }

    /// Manifest rows whose expected answer is knowingly not ours, and why.
    const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

    #[test]
    fn corpus_files_match_the_manifest() {
        let root = corpus();
        let manifest = std::fs::read_to_string(root.join("MANIFEST.tsv")).unwrap();
        let mut lines = manifest.lines();
        let columns: Vec<&str> = lines.next().unwrap().split('\t').collect();
        let mut mismatches = Vec::new();
        let mut checked = 0;
        for line in lines {
            let row: BTreeMap<&str, &str> = columns.iter().copied().zip(line.split('\t')).collect();
            let path = row["path"];
            let (p, read) = probe_file(&root.join(path));
            checked += 1;
            let mut expect = |what: &str, want: String, got: String| {
                let known = KNOWN_DIFFERENCES.iter().any(|(f, w)| *f == path && *w == what);
                if want != got && !known {
                    mismatches.push(format!("{path}: {what} manifest {want}, probe {got}"));
                }
            };
            if !row["width"].is_empty() {
                let want = format!("{}x{}", row["width"], row["height"]);
                let got = format!("{:?}x{:?}", p.width, p.height).replace("Some(", "").replace(')', "");
                expect("size", want, got);
            }
            if row["has_DateTimeOriginal"] == "yes" {
                let got = p.taken.map(|t| dates::to_iso8601(&t)[..19].replace('-', ":").replace('T', " "));
                expect("date", row["DateTimeOriginal"].to_string(), got.unwrap_or_default());
            }
            if !row["orientation"].is_empty() {
                expect("orientation", row["orientation"].to_string(), p.orientation.to_string());
            }
            if !row["make"].is_empty() {
                expect("make", row["make"].trim().to_string(), p.make.clone().unwrap_or_default());
            }
            // Headers only: the largest files here are 16 MB.
            if read > 1 << 20 {
                mismatches.push(format!("{path}: read {read} bytes"));
            }
        }
        assert!(checked > 400, "only {checked} manifest rows");
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }

    #[test]
    fn orientation_examples_display_the_right_way_up() {
        let dir = corpus().join("recurser-exif-orientation-examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let (p, _) = probe_file(&path);
            let (w, h) = p.display_size().unwrap_or_else(|| panic!("{name}: no size"));
            if name.starts_with("Landscape_") {
                assert!(w > h, "{name}: {w}x{h}");
            } else if name.starts_with("Portrait_") {
                assert!(w < h, "{name}: {w}x{h}");
            } else {
                continue;
            }
            seen += 1;
        }
        assert_eq!(seen, 18);
    }
}
