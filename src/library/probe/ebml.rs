//! EBML, the element structure of Matroska and WebM.
//!
//! The one rule: the walk stops at the first `Cluster` (or an element of unknown size), because
//! everything we want comes before the media; bodies are read within [`BOX_LIMIT`].

use std::io::{self, BufRead, Seek};

use super::dates::{self, DateSource};
use super::source::{Source, damaged, read_up_to};
use super::{BOX_LIMIT, Format, Probe};

/// EBML: the header's DocType element (ID 0x4282, a one-byte size, then "webm" or "matroska")
/// sits in the first few dozen bytes. Matroska is the default when it is absent.
pub(super) fn sniff_ebml(head: &[u8]) -> Option<Format> {
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

/// Matroska / WebM: `Segment` > `Info` (timecode scale, duration, date) and `Tracks` > the first
/// video `TrackEntry` > `Video` (pixel size). Both come before the first `Cluster` in every muxer
/// we know of, so the walk stops there instead of reading the media.
pub(super) fn matroska<R: BufRead + Seek>(
    r: &mut Source<R>,
    p: &mut Probe,
    tz: &jiff::tz::TimeZone,
) -> io::Result<()> {
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
            p.offer(dates::from_unix_utc(
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::library::probe::Format::*;
    use crate::library::probe::tests::probe_bytes;
    use jiff::tz::TimeZone;

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
    pub(in crate::library::probe) fn matroska_file(unknown_segment: bool) -> Vec<u8> {
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
