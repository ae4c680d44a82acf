//! Dates in camera makers' own records, for cameras that put them nowhere else: the maker note
//! of Reconyx trail cameras, the `[picture info]` text of Olympus' APP12 segment, and the CIFF
//! heap that early Canon PowerShots wrote into APP0.
//!
//! The one rule: a record is read at offsets checked against the bytes in hand, already in
//! memory and bounded by the segment or tag that holds them; nothing here reads the file.

use super::dates::{self, DateSource, Taken};

/// Reconyx maker notes, little-endian as exiftool's `Reconyx.pm` documents them: HyperFire
/// (`01 F1`, the date six 16-bit words at byte 22), UltraFire (`RECONYXUF`, seven bytes at 59)
/// and HyperFire 2 (`RECONYXH2`, six 16-bit words at 62).
pub(super) fn reconyx(note: &[u8], make: Option<&str>) -> Option<Taken> {
    let word = |at: usize| note.get(at..at + 2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])));
    let words = |at: usize| -> Option<[u32; 6]> {
        let w = [word(at)?, word(at + 2)?, word(at + 4)?, word(at + 6)?, word(at + 8)?, word(at + 10)?];
        Some(w)
    };
    let hyperfire = note.starts_with(b"\x01\xF1")
        && (matches!(note.get(2..4), Some([2 | 3, 0])) || make == Some("RECONYX"));
    let (sec, min, hour, day, month, year) = if hyperfire {
        let mut w = words(22)?;
        // Some firmware writes these words big-endian when all else is little-endian.
        if w[0] & 0xFF00 != 0 && w[0] & 0xFF == 0 {
            w = w.map(|v| (v >> 8) | (v & 0xFF) << 8);
        }
        let [sec, min, hour, month, day, year] = w;
        (sec, min, hour, day, month, year)
    } else if note.starts_with(b"RECONYXUF\0") {
        let b = note.get(59..66)?;
        let [sec, min, hour, day, month, lo, hi] = [b[0], b[1], b[2], b[3], b[4], b[5], b[6]].map(u32::from);
        (sec, min, hour, day, month, lo | hi << 8)
    } else if note.starts_with(b"RECONYXH2\0") {
        let [sec, min, hour, day, month, year] = words(62)?;
        (sec, min, hour, day, month, year)
    } else {
        return None;
    };
    dates::from_civil((year, month, day), (hour, min, sec), DateSource::MakerNote)
}

/// Olympus APP12: `[picture info]` text whose `TimeDate=` is the camera clock in seconds.
pub(super) fn olympus_app12(body: &[u8]) -> Option<Taken> {
    let info = find(body, b"[picture info]")?;
    let rest = &body[info..];
    let value = &rest[find(rest, b"TimeDate=")? + 9..];
    let digits = &value[..value.iter().position(|b| !b.is_ascii_digit()).unwrap_or(value.len())];
    let secs = std::str::from_utf8(digits).ok()?.parse().ok()?;
    dates::from_wall_clock_secs(secs, DateSource::MakerNote)
}

/// Canon CIFF in APP0 (`II`, a header length, `HEAPJPGM`): a heap whose last four bytes place
/// its directory, 10-byte entries of which TimeStamp (0x180E) starts with the camera clock in
/// seconds. Sub-heaps are searched a few levels deep, as raw files nest it.
pub(super) fn canon_ciff(body: &[u8]) -> Option<Taken> {
    let little = match body.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    if body.get(6..14)? != b"HEAPJPGM" {
        return None;
    }
    let u32_at = |b: &[u8], at: usize| {
        let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) } as usize)
    };
    let heap = body.get(u32_at(body, 2)?..)?;
    // Sub-heaps may point anywhere, the whole heap included: entries visited in all are bounded.
    ciff_timestamp(heap, &u32_at, little, 3, &mut 1024)
}

fn ciff_timestamp(
    heap: &[u8],
    u32_at: &dyn Fn(&[u8], usize) -> Option<usize>,
    little: bool,
    depth: u8,
    entries_left: &mut u32,
) -> Option<Taken> {
    let dir = u32_at(heap, heap.len().checked_sub(4)?)?;
    let entries = heap.get(dir.checked_add(2)?..)?;
    let count = usize::from(if little {
        u16::from_le_bytes([heap[dir], heap[dir + 1]])
    } else {
        u16::from_be_bytes([heap[dir], heap[dir + 1]])
    });
    // Entries past the heap's end are not there: the count is only a bound.
    for entry in entries.chunks_exact(10).take(count) {
        *entries_left = entries_left.checked_sub(1)?;
        let tag = if little {
            u16::from_le_bytes([entry[0], entry[1]])
        } else {
            u16::from_be_bytes([entry[0], entry[1]])
        };
        // 0x4000: the value is in the entry itself, not in the heap.
        if tag & 0xC000 == 0x4000 {
            continue;
        }
        let (size, offset) = (u32_at(entry, 2)?, u32_at(entry, 6)?);
        let Some(data) = offset.checked_add(size).and_then(|end| heap.get(offset..end)) else { continue };
        match tag & 0x3FFF {
            0x180E => {
                let secs = i64::try_from(u32_at(data, 0)?).ok()?;
                return dates::from_wall_clock_secs(secs, DateSource::MakerNote);
            }
            // Data types 0x2800 and 0x3000 are heaps themselves.
            t if matches!(t & 0x3800, 0x2800 | 0x3000) && depth > 0 => {
                if let Some(t) = ciff_timestamp(data, u32_at, little, depth - 1, entries_left) {
                    return Some(t);
                }
            }
            _ => {}
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(t: Option<Taken>) -> Option<String> {
        t.map(|t| format!("{} {:?}", dates::to_iso8601(&t), t.source))
    }

    #[test]
    fn reconyx_maker_notes_give_the_trigger_time() {
        let mut hyperfire = b"\x01\xF1\x03\x00".to_vec();
        hyperfire.resize(22, 0);
        for w in [12u16, 34, 10, 3, 16, 2020] {
            hyperfire.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(iso(reconyx(&hyperfire, None)).as_deref(), Some("2020-03-16T10:34:12 MakerNote"));
        let mut swapped = hyperfire.clone();
        for w in swapped[22..34].chunks_exact_mut(2) {
            w.swap(0, 1);
        }
        assert_eq!(iso(reconyx(&swapped, None)).as_deref(), Some("2020-03-16T10:34:12 MakerNote"));
        let mut ultrafire = b"RECONYXUF\0".to_vec();
        ultrafire.resize(59, 0);
        ultrafire.extend_from_slice(&[5, 4, 3, 2, 1, 0xE4, 0x07]);
        assert_eq!(iso(reconyx(&ultrafire, None)).as_deref(), Some("2020-01-02T03:04:05 MakerNote"));
        assert_eq!(reconyx(&hyperfire[..30], None), None);
        assert_eq!(reconyx(b"\x01\xF1\x07\x00", Some("Canon")), None);
    }

    #[test]
    fn olympus_picture_info_and_canon_ciff_give_the_camera_clock() {
        let app12 = b"OLYMPUS OPTICAL CO.,LTD.   \0 713\r\n[picture info]\r\nTimeDate=909698819\r\nShutter=1";
        assert_eq!(iso(olympus_app12(app12)).as_deref(), Some("1998-10-29T22:06:59 MakerNote"));
        assert_eq!(olympus_app12(b"[picture info]\r\nTimeDate=\r\n"), None);
        // A heap of one entry: TimeStamp (12 bytes at heap offset 0), the directory after it.
        let mut ciff = b"II\x0E\0\0\0HEAPJPGM".to_vec();
        ciff.extend_from_slice(&972_687_386u32.to_le_bytes());
        ciff.extend_from_slice(&[0; 8]);
        ciff.extend_from_slice(&1u16.to_le_bytes());
        ciff.extend_from_slice(&0x180Eu16.to_le_bytes());
        ciff.extend_from_slice(&12u32.to_le_bytes());
        ciff.extend_from_slice(&0u32.to_le_bytes());
        ciff.extend_from_slice(&12u32.to_le_bytes());
        assert_eq!(iso(canon_ciff(&ciff)).as_deref(), Some("2000-10-27T22:56:26 MakerNote"));
        for cut in 0..ciff.len() {
            assert_eq!(canon_ciff(&ciff[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn a_ciff_heap_that_contains_itself_ends() {
        // 6000 entries, each a sub-heap (0x300A) that is the whole heap again.
        let mut heap = 6000u16.to_le_bytes().to_vec();
        let len = 2 + 6000 * 10 + 4;
        for _ in 0..6000 {
            heap.extend_from_slice(&0x300Au16.to_le_bytes());
            heap.extend_from_slice(&(len as u32).to_le_bytes());
            heap.extend_from_slice(&0u32.to_le_bytes());
        }
        heap.extend_from_slice(&0u32.to_le_bytes());
        let ciff = [&b"II\x0E\0\0\0HEAPJPGM"[..], &heap].concat();
        let started = std::time::Instant::now();
        assert_eq!(canon_ciff(&ciff), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
