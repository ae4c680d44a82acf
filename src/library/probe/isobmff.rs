//! ISO-BMFF, the box structure of HEIF, AVIF, MP4 and QuickTime.
//!
//! The one rule: boxes are walked header to header, and a body is read only when it is one we
//! want and within [`BOX_LIMIT`]; the media data, before or after `moov`, is seeked over.

use std::io::ErrorKind::UnexpectedEof;
use std::io::{self, BufRead, Seek};

use super::dates::{self, DateSource};
use super::exif::{apply_exif_fields, usable_exif};
use super::source::{Source, be_u16, be_u32, be_u64, damaged, is_damage, read_array, read_up_to};
use super::{BOX_LIMIT, Format, Probe, XMP_LIMIT, xmp};

/// Seconds from 1904-01-01 (the QuickTime epoch) to 1970-01-01.
const QUICKTIME_EPOCH_OFFSET: i64 = 2_082_844_800;

/// ISO-BMFF: the major and compatible brands decide. AVIF wins over HEIF because AVIF files
/// carry the generic HEIF brands (`mif1`, `msf1`) too.
pub(super) fn sniff_ftyp(head: &[u8]) -> Format {
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

/// HEIF and AVIF: kamadak-exif finds the EXIF item; the size and orientation are properties of
/// the primary item, which we read ourselves.
pub(super) fn heif<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
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
/// XMP is a top-level `uuid` box (Adobe's tools) or `moov`/`udta`/`XMP_` (QuickTime's place).
pub(super) fn quicktime<R: BufRead + Seek>(
    r: &mut Source<R>,
    p: &mut Probe,
    tz: &jiff::tz::TimeZone,
) -> io::Result<()> {
    let top = boxes(r, 0, u64::MAX)?;
    for b in top.iter().filter(|b| &b.kind == b"uuid") {
        r.seek_to(b.body)?;
        if read_up_to(r, 16)? == XMP_UUID {
            let len = b.end.saturating_sub(b.body + 16).min(XMP_LIMIT);
            xmp::apply(p, &read_up_to(r, len)?);
        }
    }
    let Some(moov) = top.iter().find(|b| &b.kind == b"moov") else {
        return Ok(());
    };
    for b in boxes(r, moov.body, moov.end)? {
        match &b.kind {
            b"mvhd" => mvhd(&read_body(r, &b)?, p, tz),
            b"trak" if p.width.is_none() => trak(r, p, b)?,
            b"udta" => {
                if let Some(packet) = boxes(r, b.body, b.end)?.iter().find(|b| &b.kind == b"XMP_") {
                    xmp::apply(p, &read_body(r, packet)?);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `uuid` box type of XMP, BE7ACFCB-97A9-42E8-9C71-999491E3AFAC.
const XMP_UUID: [u8; 16] =
    [0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC];

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
        p.offer(dates::from_unix_utc(secs, 0, tz, DateSource::Container));
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::library::probe::Format::*;
    use crate::library::probe::tests::probe_bytes;
    use jiff::tz::TimeZone;

    /// An ISO-BMFF box.
    pub(in crate::library::probe) fn bmff(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
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
    pub(in crate::library::probe) fn movie(
        version: u8,
        matrix: [i32; 4],
        created: u64,
        media_len: usize,
    ) -> Vec<u8> {
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
}
