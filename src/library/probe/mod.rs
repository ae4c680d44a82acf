//! What kind of media a file is, and the facts its header states: pixel size, orientation, when
//! it was taken, camera and lens, video duration.
//!
//! The one rule: read as little as possible, and trust no length from the file. Each format is
//! walked by its own structure (JPEG markers, PNG and RIFF chunks, ISO-BMFF boxes), seeking over
//! payloads, and every probe runs within fixed limits on bytes read, structures visited and
//! memory, because a photo library is untrusted input. A damaged file is not an error: it is
//! listed with whatever was read before the damage. Only the disk failing is an error.
//!
//! One file per container family; this one recognises the format and hands the file, behind the
//! limits below, to that family's walker.

mod ebml;
mod exif;
mod iptc;
mod isobmff;
mod jpeg;
mod maker;
mod png;
mod source;
mod tiff;
mod webp;
mod xmp;

use std::io::{self, BufRead, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

use super::dates::{self, Taken};
use source::{Source, is_damage, le_u32, read_up_to};

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
/// The most of an XMP packet (PNG `iTXt`, WebP `XMP `, an MP4 box, a sidecar) read into memory:
/// dates come near its start, and editors' histories and thumbnails can make it megabytes.
pub(crate) const XMP_LIMIT: u64 = 1 << 20;

pub(crate) use crate::media::{Format, Kind};

impl Format {
    /// The format that a file's first bytes ([`HEAD_LEN`] are plenty) show, if we handle it.
    pub(crate) fn sniff(head: &[u8]) -> Option<Format> {
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
            _ if at(4, b"ftyp") => isobmff::sniff_ftyp(head),
            _ if at(0, b"\x1A\x45\xDF\xA3") => return ebml::sniff_ebml(head),
            _ if old_quicktime.iter().any(|atom| at(4, *atom)) => Format::Mov,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Probe {
    pub format: Format,
    /// Stored pixel size, before EXIF orientation.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF orientation 1..=8 (1 when absent or invalid). For HEIF/AVIF it comes from the primary
    /// item's `irot`/`imir` boxes instead, with `width`/`height` from its `ispe` (before them):
    /// decoders apply those boxes themselves, and the format says to ignore the EXIF tag. For
    /// MP4/MOV it comes from the video track's matrix (6 or 8 for a quarter turn, 3 for a half).
    pub orientation: u8,
    /// The best date the header states (EXIF, XMP, IPTC, a maker's record or the video
    /// container; see [`dates::DateSource`] for the order); the file name and mtime are the
    /// caller's to weigh.
    pub taken: Option<Taken>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub lens: Option<String>,
    /// Video duration in milliseconds when the container says.
    pub duration_ms: Option<u64>,
}

/// The size as shown: width and height swapped for EXIF orientations 5..=8 (the quarter turns).
pub(crate) fn display_size(width: Option<u32>, height: Option<u32>, orientation: u8) -> Option<(u32, u32)> {
    let (w, h) = (width?, height?);
    Some(if (5..=8).contains(&orientation) { (h, w) } else { (w, h) })
}

impl Probe {
    fn empty(format: Format) -> Probe {
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

    /// The size as shown: width and height swapped for orientations 5..=8.
    #[cfg(test)]
    pub(crate) fn display_size(&self) -> Option<(u32, u32)> {
        display_size(self.width, self.height, self.orientation)
    }

    /// Weighs in the dates of an XMP packet kept beside the file (a sidecar), as if the file
    /// held it. Only the first [`XMP_LIMIT`] bytes are looked at.
    pub(crate) fn add_xmp(&mut self, packet: &[u8]) {
        xmp::apply(self, &packet[..packet.len().min(XMP_LIMIT as usize)]);
    }

    /// Keeps `t` unless a date from a better source is known; among equals, the first found.
    fn offer(&mut self, t: Taken) {
        if self.taken.is_none_or(|known| t.source < known.source) {
            self.taken = Some(t);
        }
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
pub(crate) fn probe<R: BufRead + Seek>(
    r: &mut R,
    ext_format: Format,
    tz: &jiff::tz::TimeZone,
) -> io::Result<Probe> {
    r.seek(SeekFrom::Start(0))?;
    let r = &mut Source::new(r, READ_BUDGET, MAX_STRUCTURES);
    let head = read_up_to(r, HEAD_LEN)?;
    let mut p = Probe::empty(Format::sniff(&head).unwrap_or(ext_format));
    let result = match p.format {
        Format::Jpeg => jpeg::jpeg(r, &mut p),
        Format::Png => png::png(r, &mut p),
        Format::Webp => webp::webp(r, &mut p),
        Format::Gif | Format::Bmp => tiff::size_by_imagesize(r, &mut p),
        Format::Tiff => tiff::tiff(r, &mut p),
        Format::Heif | Format::Avif => isobmff::heif(r, &mut p),
        Format::Mp4 | Format::Mov => isobmff::quicktime(r, &mut p, tz),
        Format::Webm | Format::Mkv => ebml::matroska(r, &mut p, tz),
    };
    match result {
        Err(e) if !is_damage(&e) => Err(e),
        _ => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebml::tests::matroska_file;
    use isobmff::tests::{bmff, movie};
    use std::collections::BTreeMap;
    use std::io::{BufReader, Cursor, Read};
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
    pub(super) fn probe_bytes(bytes: &[u8], ext: Format, tz: &TimeZone) -> (Probe, u64) {
        let counting = Counting { inner: Cursor::new(bytes), read: 0 };
        let mut r = BufReader::new(counting);
        let p = probe(&mut r, ext, tz).expect("in-memory reads never fail");
        (p, r.get_ref().read)
    }

    pub(super) fn corpus() -> PathBuf {
        let candidates = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"),
            // A scratch crate a level deeper than the project.
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"),
        ];
        let found = candidates.into_iter().map(PathBuf::from);
        let mut found = found.filter(|p| p.join("MANIFEST.tsv").is_file());
        found.next().expect("the shared test corpus, ../shared/corpus, is missing")
    }

    pub(super) fn probe_corpus_file(path: &str) -> (Probe, u64) {
        let bytes = std::fs::read(corpus().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let ext = path.rsplit('.').next().and_then(Format::from_extension);
        probe_bytes(&bytes, ext.unwrap_or(Jpeg), &TimeZone::UTC)
    }

    /// Manifest answers that are knowingly not ours, and why.
    const KNOWN_DIFFERENCES: &[&str] = &[
        // exiftool finds this date in FLIR's own APP1 records (spread over several segments).
        "date of drewnoakes-metadata-extractor-images/jpg/FLIR iPhone device.jpg",
        // Canon CIFF in APP0 holds the make; we read only its date.
        "make of ianare-exif-samples/jpg/exif-org/sony-powershota5.jpg",
        // These facts are in XMP, or in ImageMagick's hex "Raw profile type exif" text chunk,
        // which we read for dates only: browsers ignore both when they show the picture.
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
        for (name, ext, bytes) in cases {
            // Through a real file too: a file refuses seeks that a Cursor allows.
            let mut scratch = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut scratch, &bytes).unwrap();
            std::io::Seek::rewind(&mut scratch).unwrap();
            let mut file = BufReader::new(scratch);
            let from_file = probe(&mut file, ext, &TimeZone::UTC);
            assert!(from_file.is_ok(), "{name}: {from_file:?}");
            let (p, read) = probe_bytes(&bytes, ext, &TimeZone::UTC);
            assert_eq!((p.display_size(), p.taken), (None, None), "{name}");
            assert!(read <= READ_BUDGET + (64 << 10), "{name}: read {read} bytes");
        }
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
            // XMP and IPTC; ImageMagick's zlib'd hex profiles; a Reconyx maker note.
            "drewnoakes-metadata-extractor-images/jpg/Issue 258 (dotnet).jpg",
            "link-u-avif-sample-images/fox.png",
            "ianare-exif-samples/jpg/Reconyx_HC500_Hyperfire.jpg",
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
}
