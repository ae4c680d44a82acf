//! ZIP archives of stored (uncompressed) files, written as a stream whose exact length is known
//! before the first byte, so a download can say `Content-Length` and the browser shows progress.
//!
//! The rule it keeps: [`Plan::len`] and [`write`] follow one layout, entry by entry, and `write`
//! fails rather than emit a byte more or less than planned (a file that changed size since it
//! was planned ends the stream with an error, never a silently wrong archive). Photos and videos
//! are already compressed, so entries are stored: the archive is the files plus about 100 bytes
//! each, and the CRC-32 of each file goes in a data descriptor after its bytes. ZIP64 records
//! appear only where a size, an offset or the entry count needs them (a file of 4 GiB or more,
//! an archive past 4 GiB, more than 65,535 entries), as APPNOTE 6.3.10 sections 4.3.9, 4.3.14,
//! 4.3.15 and 4.5.3 describe them.

use std::collections::HashSet;
use std::io::{self, Read, Write};

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Path inside the archive, `/`-separated, UTF-8.
    pub name: String,
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
}

/// The archive's layout: where each entry starts and how long the whole is.
#[derive(Debug)]
pub(crate) struct Plan {
    entries: Vec<Entry>,
    /// Offset of each entry's local header.
    offsets: Vec<u64>,
    central_start: u64,
    central_len: u64,
    len: u64,
}

const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const END_SIG: u32 = 0x0605_4b50;
const END64_SIG: u32 = 0x0606_4b50;
const LOCATOR64_SIG: u32 = 0x0706_4b50;
/// Sizes are in the data descriptor (bit 3); names are UTF-8 (bit 11).
const FLAGS: u16 = 0x0808;
/// 2.0 for plain entries, 4.5 for ZIP64 ones.
const VERSION: u16 = 20;
const VERSION64: u16 = 45;
/// Made by: Unix (3), spec 4.5; so readers take the mode in the external attributes.
const MADE_BY: u16 = (3 << 8) | 45;
/// A regular file, rw-r--r--.
const EXTERNAL_ATTRS: u32 = 0o100644 << 16;
/// The marker that says "the real value is in the ZIP64 extra field".
const MAX32: u64 = 0xFFFF_FFFF;
/// The extended-timestamp extra field (0x5455) with the modification time: 9 bytes.
const TIMESTAMP_EXTRA: u64 = 9;
/// Bytes read from a file at a time.
const CHUNK: usize = 256 * 1024;

impl Entry {
    /// Whether the entry's own sizes need ZIP64 (then its local header carries the ZIP64 extra
    /// field and its data descriptor 8-byte sizes).
    fn big(&self) -> bool {
        self.size >= MAX32
    }

    fn local_len(&self) -> u64 {
        30 + self.name.len() as u64 + TIMESTAMP_EXTRA + if self.big() { 20 } else { 0 }
    }

    fn descriptor_len(&self) -> u64 {
        if self.big() { 24 } else { 16 }
    }

    /// The values the central header moves into its ZIP64 extra field: sizes, offset.
    fn central64_fields(&self, offset: u64) -> u64 {
        (if self.big() { 2 } else { 0 }) + u64::from(offset >= MAX32)
    }

    fn central_len(&self, offset: u64) -> u64 {
        let fields = self.central64_fields(offset);
        46 + self.name.len() as u64 + TIMESTAMP_EXTRA + if fields > 0 { 4 + 8 * fields } else { 0 }
    }
}

impl Plan {
    /// Lays out `entries` in order. Names must already be unique (see [`unique_names`]).
    pub(crate) fn new(entries: Vec<Entry>) -> Plan {
        let mut offsets = Vec::with_capacity(entries.len());
        let mut at = 0u64;
        for e in &entries {
            offsets.push(at);
            at += e.local_len() + e.size + e.descriptor_len();
        }
        let central_start = at;
        let central_len: u64 = entries.iter().zip(&offsets).map(|(e, &o)| e.central_len(o)).sum();
        let mut plan = Plan { entries, offsets, central_start, central_len, len: 0 };
        plan.len = central_start + central_len + if plan.zip64_end() { 56 + 20 } else { 0 } + 22;
        plan
    }

    /// The archive's exact length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the end of the central directory needs the ZIP64 record and locator.
    fn zip64_end(&self) -> bool {
        self.entries.len() >= 0xFFFF || self.central_start >= MAX32 || self.central_len >= MAX32
    }
}

/// Writes the archive `plan` describes to `out`, reading entry `i` from `open(i)`. Fails (and
/// stops writing) when a file is not exactly the size it was planned with.
pub(crate) fn write<R: Read>(
    plan: &Plan,
    mut open: impl FnMut(usize) -> io::Result<(R, u64)>,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut crcs = Vec::with_capacity(plan.entries.len());
    let mut buf = vec![0u8; CHUNK];
    for (i, e) in plan.entries.iter().enumerate() {
        let (mut file, len) = open(i)?;
        if len != e.size {
            return Err(changed(e));
        }
        out.write_all(&local_header(e))?;
        let mut crc = crc32fast::Hasher::new();
        let mut left = e.size;
        while left > 0 {
            let want = (left as usize).min(CHUNK);
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => return Err(changed(e)),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            crc.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        let crc = crc.finalize();
        out.write_all(&descriptor(e, crc))?;
        crcs.push(crc);
    }
    let mut central = Vec::with_capacity(CHUNK);
    for ((e, &offset), &crc) in plan.entries.iter().zip(&plan.offsets).zip(&crcs) {
        central.extend_from_slice(&central_header(e, offset, crc));
        if central.len() >= CHUNK {
            out.write_all(&central)?;
            central.clear();
        }
    }
    central.extend_from_slice(&end_records(plan));
    out.write_all(&central)?;
    out.flush()
}

fn changed(e: &Entry) -> io::Error {
    io::Error::other(format!("{} changed while it was being zipped", e.name))
}

/// Little-endian field writers.
struct Le(Vec<u8>);

impl Le {
    fn with_capacity(n: usize) -> Le {
        Le(Vec::with_capacity(n))
    }
    fn u16(&mut self, v: u16) -> &mut Le {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Le {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Le {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Le {
        self.0.extend_from_slice(v);
        self
    }
    /// A 32-bit field, or the ZIP64 marker when the value does not fit.
    fn u32_or_max(&mut self, v: u64, big: bool) -> &mut Le {
        self.u32(if big { MAX32 as u32 } else { v as u32 })
    }
    /// The extended timestamp: flags (modification time present) and the time, 32-bit.
    fn timestamp(&mut self, mtime: i64) -> &mut Le {
        self.u16(0x5455).u16(5).bytes(&[1]).u32(mtime.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

fn local_header(e: &Entry) -> Vec<u8> {
    let (time, date) = dos_time(e.mtime);
    let big = e.big();
    let extra = TIMESTAMP_EXTRA as u16 + if big { 20 } else { 0 };
    let mut h = Le::with_capacity(e.local_len() as usize);
    h.u32(LOCAL_SIG)
        .u16(if big { VERSION64 } else { VERSION })
        .u16(FLAGS)
        .u16(0) // stored
        .u16(time)
        .u16(date)
        .u32(0) // the CRC-32 and the sizes follow the data (bit 3)
        .u32_or_max(0, big)
        .u32_or_max(0, big)
        .u16(e.name.len() as u16)
        .u16(extra)
        .bytes(e.name.as_bytes())
        .timestamp(e.mtime);
    if big {
        h.u16(0x0001).u16(16).u64(0).u64(0);
    }
    h.0
}

fn descriptor(e: &Entry, crc: u32) -> Vec<u8> {
    let mut d = Le::with_capacity(24);
    d.u32(DESCRIPTOR_SIG).u32(crc);
    if e.big() {
        d.u64(e.size).u64(e.size);
    } else {
        d.u32(e.size as u32).u32(e.size as u32);
    }
    d.0
}

fn central_header(e: &Entry, offset: u64, crc: u32) -> Vec<u8> {
    let (time, date) = dos_time(e.mtime);
    let (big, far) = (e.big(), offset >= MAX32);
    let fields = e.central64_fields(offset) as u16;
    let extra = TIMESTAMP_EXTRA as u16 + if fields > 0 { 4 + 8 * fields } else { 0 };
    let mut h = Le::with_capacity(e.central_len(offset) as usize);
    h.u32(CENTRAL_SIG)
        .u16(MADE_BY)
        .u16(if big || far { VERSION64 } else { VERSION })
        .u16(FLAGS)
        .u16(0)
        .u16(time)
        .u16(date)
        .u32(crc)
        .u32_or_max(e.size, big)
        .u32_or_max(e.size, big)
        .u16(e.name.len() as u16)
        .u16(extra)
        .u16(0) // comment
        .u16(0) // disk
        .u16(0) // internal attributes
        .u32(EXTERNAL_ATTRS)
        .u32_or_max(offset, far)
        .bytes(e.name.as_bytes())
        .timestamp(e.mtime);
    if fields > 0 {
        h.u16(0x0001).u16(8 * fields);
        if big {
            h.u64(e.size).u64(e.size);
        }
        if far {
            h.u64(offset);
        }
    }
    h.0
}

fn end_records(plan: &Plan) -> Vec<u8> {
    let count = plan.entries.len() as u64;
    let mut r = Le::with_capacity(98);
    let zip64 = plan.zip64_end();
    if zip64 {
        let record_at = plan.central_start + plan.central_len;
        r.u32(END64_SIG)
            .u64(44)
            .u16(MADE_BY)
            .u16(VERSION64)
            .u32(0)
            .u32(0)
            .u64(count)
            .u64(count)
            .u64(plan.central_len)
            .u64(plan.central_start);
        r.u32(LOCATOR64_SIG).u32(0).u64(record_at).u32(1);
    }
    let count16 = if zip64 { 0xFFFF } else { count as u16 };
    r.u32(END_SIG)
        .u16(0)
        .u16(0)
        .u16(count16)
        .u16(count16)
        .u32_or_max(plan.central_len, zip64)
        .u32_or_max(plan.central_start, zip64)
        .u16(0);
    r.0
}

/// MS-DOS time and date fields (UTC; the extended timestamp carries the exact time), clamped to
/// the range they can hold (1980 to 2107).
fn dos_time(mtime: i64) -> (u16, u16) {
    let Ok(ts) = jiff::Timestamp::from_second(mtime) else { return (0, 0x21) };
    let t = jiff::tz::TimeZone::UTC.to_datetime(ts);
    if t.year() < 1980 {
        return (0, (1 << 5) | 1);
    }
    if t.year() > 2107 {
        return ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
    }
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    let date = (((t.year() - 1980) as u16) << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    (time, date)
}

/// Makes paths unique inside an archive, also for readers on case-insensitive file systems:
/// a later `a.jpg` beside `A.JPG` becomes `a (2).jpg`.
pub(crate) fn unique_names(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .map(|name| {
            if seen.insert(name.to_lowercase()) {
                return name;
            }
            let (stem, ext) = match name.rfind('.') {
                Some(dot) if dot > name.rfind('/').map_or(0, |s| s + 1) => name.split_at(dot),
                _ => (name.as_str(), ""),
            };
            (2..)
                .map(|n| format!("{stem} ({n}){ext}"))
                .find(|candidate| seen.insert(candidate.to_lowercase()))
                .expect("some number is free")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: u64) -> Entry {
        Entry { name: name.to_owned(), size, mtime: 1_700_000_000 }
    }

    fn archive(entries: Vec<Entry>) -> (Plan, Vec<u8>) {
        let plan = Plan::new(entries);
        let mut out = Vec::new();
        let sizes: Vec<u64> = plan.entries.iter().map(|e| e.size).collect();
        write(&plan, |i| Ok((io::repeat(b'x').take(sizes[i]), sizes[i])), &mut out).unwrap();
        (plan, out)
    }

    #[test]
    fn the_written_archive_is_exactly_as_long_as_planned() {
        for entries in [
            vec![],
            vec![entry("a.jpg", 0)],
            vec![entry("Trip/a.jpg", 1000), entry("Trip/Été.jpg", 3), entry("b.mp4", 300_000)],
            (0..70_000).map(|i| entry(&format!("{i}.jpg"), 1)).collect(),
        ] {
            let n = entries.len();
            let (plan, out) = archive(entries);
            assert_eq!(out.len() as u64, plan.len(), "{n} entries");
            // The end record is where a reader looks first: last 22 bytes, its signature.
            assert_eq!(out[out.len() - 22..out.len() - 18], END_SIG.to_le_bytes());
            let zip64 = out.len() >= 98 && out[out.len() - 98..out.len() - 94] == END64_SIG.to_le_bytes();
            assert_eq!(zip64, n >= 0xFFFF, "{n} entries");
        }
    }

    #[test]
    fn big_files_and_far_offsets_get_zip64_fields_in_the_layout() {
        let small = entry("a.jpg", 10);
        let big = entry("big.mp4", 5 << 30);
        assert_eq!(small.local_len(), 30 + 5 + 9);
        assert_eq!(big.local_len(), 30 + 7 + 9 + 20);
        assert_eq!(big.descriptor_len(), 24);
        assert_eq!(small.central_len(0), 46 + 5 + 9);
        assert_eq!(small.central_len(5 << 30), 46 + 5 + 9 + 12);
        assert_eq!(big.central_len(5 << 30), 46 + 7 + 9 + 28);
        let plan = Plan::new(vec![big.clone(), small.clone()]);
        assert!(plan.zip64_end());
        assert_eq!(plan.offsets[1], big.local_len() + big.size + 24);
        let h = central_header(&small, plan.offsets[1], 0);
        assert_eq!(h.len() as u64, small.central_len(plan.offsets[1]));
        assert_eq!(h[42..46], [0xFF; 4], "the offset is in the ZIP64 field");
        assert_eq!(local_header(&big).len() as u64, big.local_len());
        assert_eq!(central_header(&big, 0, 0).len() as u64, big.central_len(0));
    }

    #[test]
    fn a_file_that_changed_size_stops_the_archive() {
        let plan = Plan::new(vec![entry("a.jpg", 10), entry("b.jpg", 10)]);
        let mut out = Vec::new();
        let shorter = write(&plan, |_| Ok((io::repeat(0).take(4), 10)), &mut out).unwrap_err();
        assert!(shorter.to_string().contains("a.jpg changed"), "{shorter}");
        let grown = write(&plan, |_| Ok((io::repeat(0).take(11), 11)), &mut Vec::new()).unwrap_err();
        assert!(grown.to_string().contains("changed"), "{grown}");
    }

    #[test]
    fn dos_times_are_clamped_to_what_they_can_hold() {
        // 2023-11-14 22:13:20 UTC.
        assert_eq!(dos_time(1_700_000_000), ((22 << 11) | (13 << 5) | 10, (43 << 9) | (11 << 5) | 14));
        assert_eq!(dos_time(0), (0, 0x21));
        assert_eq!(dos_time(-5), (0, 0x21));
        assert_eq!(dos_time(i64::MAX).1, 0x21, "out of range for a timestamp");
    }

    #[test]
    fn names_are_unique_ignoring_case() {
        let names =
            ["a.jpg", "A.JPG", "a.jpg", "x/a.jpg", "noext", "noext", "d.x/f"].map(String::from).to_vec();
        assert_eq!(
            unique_names(names),
            ["a.jpg", "A (2).JPG", "a (3).jpg", "x/a.jpg", "noext", "noext (2)", "d.x/f"]
        );
    }
}
