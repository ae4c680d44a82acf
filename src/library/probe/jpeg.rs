//! JPEG (and MPO, JPEGs one after another): marker segments up to the frame header.
//!
//! The one rule: only a segment we want (EXIF, XMP, IPTC, a maker's record) is read, at most
//! 64 KiB as the format says, and only once its first bytes show what it is; every other is
//! skipped by its stated length, so megabytes of extended XMP are seeked over.

use std::io::{self, BufRead, Read, Seek};

use super::exif::apply_exif;
use super::source::{Source, damaged, read_array, read_up_to};
use super::{Probe, iptc, maker, xmp};

/// How far into a JPEG to look for the frame header: far, because phones put megabytes of depth
/// maps in extended-XMP segments before it, but those are seeked over, not read.
const JPEG_HEADER_LIMIT: u64 = 16 << 20;
/// Stray bytes skipped between two JPEG segments before giving up.
const JPEG_JUNK_LIMIT: u32 = 64 << 10;

/// JPEG: marker segments from SOI to the frame header (SOF), keeping the first segment of each
/// kind we read on the way (EXIF, XMP, IPTC, and makers' records). A segment is at most 64 KiB,
/// so each read is bounded by the format itself, and a segment is read only once its first
/// bytes say it is one of those.
pub(super) fn jpeg<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    r.seek_to(0)?;
    if read_array(r)? != [0xFF, 0xD8] {
        return Err(damaged("no JPEG SOI"));
    }
    let mut seen = Vec::new();
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
            0xE0..=0xEF => {
                let mut bytes = read_up_to(r, u64::from(body.min(SIGNATURE_LEN)))?;
                if let Some(app) = App::of(marker, &bytes).filter(|app| !seen.contains(app)) {
                    seen.push(app);
                    bytes.extend(read_up_to(r, u64::from(body) - bytes.len() as u64)?);
                    app.apply(p, bytes);
                }
            }
            // SOF0..SOF15, but for DHT (C4), JPG (C8) and DAC (CC) that share the range. The
            // metadata comes before it, so the walk is done.
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

/// Bytes of an application segment read to tell what it holds.
const SIGNATURE_LEN: u16 = 32;
const EXIF_SIGNATURE: &[u8] = b"Exif\0\0";
const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const PHOTOSHOP_SIGNATURE: &[u8] = b"Photoshop 3.0\0";

/// The application segments read, by what their first bytes say they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum App {
    Exif,
    Xmp,
    Iptc,
    /// Olympus' APP12 `[picture info]` text (the other APP12, Photoshop's `Ducky`, is not).
    OlympusInfo,
    /// Canon's CIFF heap in APP0, after the JFIF one.
    CanonCiff,
}

impl App {
    fn of(marker: u8, head: &[u8]) -> Option<App> {
        Some(match marker {
            0xE1 if head.starts_with(EXIF_SIGNATURE) => App::Exif,
            0xE1 if head.starts_with(XMP_SIGNATURE) => App::Xmp,
            0xED if head.starts_with(PHOTOSHOP_SIGNATURE) => App::Iptc,
            0xEC if !head.starts_with(b"Ducky") => App::OlympusInfo,
            0xE0 if head.get(6..14) == Some(b"HEAPJPGM") => App::CanonCiff,
            _ => return None,
        })
    }

    fn apply(self, p: &mut Probe, mut body: Vec<u8>) {
        let found = match self {
            App::Exif => {
                body.drain(..EXIF_SIGNATURE.len());
                return apply_exif(p, body);
            }
            App::Xmp => return xmp::apply(p, &body[XMP_SIGNATURE.len()..]),
            App::Iptc => iptc::from_photoshop(&body[PHOTOSHOP_SIGNATURE.len()..]),
            App::OlympusInfo => maker::olympus_app12(&body),
            App::CanonCiff => maker::canon_ciff(&body),
        };
        if let Some(t) = found {
            p.offer(t);
        }
    }
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

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::library::dates;
    use crate::library::probe::Format;
    use crate::library::probe::iptc::tests::photoshop_iptc;
    use crate::library::probe::tests::probe_bytes;

    /// A little-endian EXIF block: IFD0 holding DateTime `modified`, and an Exif IFD holding
    /// DateTimeOriginal and DateTimeDigitized, each where given.
    fn exif(modified: Option<&str>, original: Option<&str>, digitized: Option<&str>) -> Vec<u8> {
        let ifd0: Vec<(u16, &str)> = modified.map(|d| (0x0132, d)).into_iter().collect();
        let sub: Vec<(u16, &str)> = [(0x9003, original), (0x9004, digitized)]
            .into_iter()
            .filter_map(|(tag, d)| Some((tag, d?)))
            .collect();
        let dir_len = |n: usize| 2 + 12 * n + 4;
        let n0 = ifd0.len() + usize::from(!sub.is_empty());
        let sub_at = 8 + dir_len(n0);
        let mut data_at = sub_at + if sub.is_empty() { 0 } else { dir_len(sub.len()) };
        let (mut dirs, mut data) = (b"II*\0\x08\0\0\0".to_vec(), Vec::new());
        for (entries, pointer) in [(&ifd0, !sub.is_empty()), (&sub, false)] {
            if entries.is_empty() && !pointer {
                continue;
            }
            dirs.extend_from_slice(&((entries.len() + usize::from(pointer)) as u16).to_le_bytes());
            for &(tag, date) in entries.iter() {
                let value = [date.as_bytes(), b"\0"].concat();
                dirs.extend_from_slice(&tag.to_le_bytes());
                dirs.extend_from_slice(&2u16.to_le_bytes()); // ASCII
                dirs.extend_from_slice(&(value.len() as u32).to_le_bytes());
                dirs.extend_from_slice(&(data_at as u32).to_le_bytes());
                data_at += value.len();
                data.extend(value);
            }
            if pointer {
                dirs.extend_from_slice(&[0x69, 0x87, 4, 0, 1, 0, 0, 0]); // ExifIFD, LONG, 1
                dirs.extend_from_slice(&(sub_at as u32).to_le_bytes());
            }
            dirs.extend_from_slice(&[0; 4]); // no next directory
        }
        [dirs, data].concat()
    }

    /// A JPEG of the given segments (marker, body), then a 64x48 frame header.
    fn jpeg_file(segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        for (marker, body) in segments {
            out.extend_from_slice(&[0xFF, *marker]);
            out.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
            out.extend_from_slice(body);
        }
        out.extend_from_slice(b"\xFF\xC0\0\x11\x08\0\x30\0\x40\x03\x01\x22\0\x02\x11\x01\x03\x11\x01");
        out
    }

    fn app1_exif(block: Vec<u8>) -> (u8, Vec<u8>) {
        (0xE1, [EXIF_SIGNATURE.to_vec(), block].concat())
    }

    fn app1_xmp(property: &str, date: &str) -> (u8, Vec<u8>) {
        let packet = format!(
            "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><rdf:Description \
             xmlns:exif='http://ns.adobe.com/exif/1.0/' xmlns:xmp='http://ns.adobe.com/xap/1.0/' \
             xmlns:photoshop='http://ns.adobe.com/photoshop/1.0/' {property}='{date}'/>\
             </rdf:RDF></x:xmpmeta>"
        );
        (0xE1, [XMP_SIGNATURE, packet.as_bytes()].concat())
    }

    fn app13_iptc(date: &str, time: &str) -> (u8, Vec<u8>) {
        (0xED, photoshop_iptc(&[(2, 55, date), (2, 60, time)]))
    }

    fn taken(segments: &[(u8, Vec<u8>)]) -> Option<String> {
        let (p, _) = probe_bytes(&jpeg_file(segments), Format::Jpeg, &TimeZone::UTC);
        assert_eq!((p.width, p.height), (Some(64), Some(48)));
        p.taken.map(|t| format!("{} {:?}", dates::to_iso8601(&t), t.source))
    }

    #[test]
    fn the_best_date_wins_whatever_segment_holds_it() {
        let modified = Some("2021:01:01 01:01:01");
        let cases = [
            // The modification date (IFD0 DateTime) loses to IPTC's creation date.
            (
                vec![app1_exif(exif(modified, None, None)), app13_iptc("20200202", "020202+0100")],
                "2020-02-02T02:02:02+01:00 Iptc",
            ),
            (vec![app1_exif(exif(modified, None, None))], "2021-01-01T01:01:01 ExifModified"),
            // IPTC, whether before or after, loses to XMP's DateTimeOriginal.
            (
                vec![
                    app13_iptc("20200202", "020202"),
                    app1_xmp("exif:DateTimeOriginal", "2019-03-03T03:03:03Z"),
                ],
                "2019-03-03T03:03:03+00:00 Xmp",
            ),
            (
                vec![
                    app1_xmp("photoshop:DateCreated", "2019-03-03T03:03:03"),
                    app13_iptc("20200202", "020202"),
                ],
                "2019-03-03T03:03:03 Xmp",
            ),
            // EXIF DateTimeOriginal beats them all; DateTimeDigitized beats only xmp:CreateDate.
            (
                vec![
                    app1_xmp("exif:DateTimeOriginal", "2019-03-03T03:03:03"),
                    app1_exif(exif(modified, Some("2018:04:04 04:04:04"), Some("2018:04:04 04:04:05"))),
                    app13_iptc("20200202", "020202"),
                ],
                "2018-04-04T04:04:04 Exif",
            ),
            (
                vec![
                    app1_exif(exif(modified, None, Some("2018:04:04 04:04:05"))),
                    app1_xmp("xmp:CreateDate", "2017-05-05T05:05:05"),
                ],
                "2018-04-04T04:04:05 ExifDigitized",
            ),
            (
                vec![
                    app1_exif(exif(modified, None, None)),
                    app1_xmp("xmp:CreateDate", "2017-05-05T05:05:05-07:00"),
                ],
                "2017-05-05T05:05:05-07:00 XmpCreated",
            ),
            // A blank camera clock is no date, so the next one counts.
            (
                vec![app1_exif(exif(None, Some("    :  :     :  :  "), None)), app13_iptc("20200202", "")],
                "2020-02-02T00:00:00 Iptc",
            ),
        ];
        for (segments, want) in cases {
            assert_eq!(taken(&segments).as_deref(), Some(want));
        }
    }

    #[test]
    fn extended_xmp_and_thumbnails_are_seeked_over() {
        let extended = (0xE1, [&b"http://ns.adobe.com/xmp/extension/\0"[..], &[0x55; 65_000]].concat());
        let thumbnail = (0xE0, [&b"JFXX\0\x10"[..], &[0xAA; 65_000]].concat());
        let mut segments = vec![thumbnail];
        segments.extend(std::iter::repeat_n(extended, 100));
        segments.push(app1_xmp("xmp:CreateDate", "2017-05-05T05:05:05"));
        let bytes = jpeg_file(&segments);
        let (p, read) = probe_bytes(&bytes, Format::Jpeg, &TimeZone::UTC);
        assert_eq!(p.taken.map(|t| dates::to_iso8601(&t)).as_deref(), Some("2017-05-05T05:05:05"));
        // Each segment skipped costs at most the refill of the reader's 8 KiB buffer.
        let bound = segments.len() as u64 * (8 << 10) + (64 << 10);
        assert!(read < bound, "read {read} of {} bytes", bytes.len());
    }
}
