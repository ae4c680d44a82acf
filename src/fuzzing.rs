//! Entry points for the fuzz targets in `tests/fuzz` (not part of the API): each takes arbitrary
//! bytes and must return without panicking, hanging or allocating without bound.

use std::io::{BufReader, Cursor};

use crate::library::probe::{self, Format};
use crate::library::{dates, id};
use crate::thumbs::render;

/// Header probing (EXIF, BMFF, EBML, ...) of a file claiming every format in turn.
pub fn probe(bytes: &[u8]) {
    for format in
        [Format::Jpeg, Format::Png, Format::Webp, Format::Heif, Format::Mp4, Format::Mkv, Format::Tiff]
    {
        let mut r = BufReader::new(Cursor::new(bytes));
        let _ = probe::probe(&mut r, format, &jiff::tz::TimeZone::UTC);
    }
}

/// Dates in file names and EXIF date strings.
pub fn dates(bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    let _ = dates::from_file_name(&s);
    let mut parts = s.splitn(3, '\n');
    let (a, b, c) = (parts.next().unwrap_or(""), parts.next(), parts.next());
    let _ = dates::parse_exif_datetime(a, b, c);
}

/// The query strings of `/api/media` and `/api/facets`, and cursors.
pub fn query(bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    let _ = crate::http::parse_list_query(&s);
    let _ = id::decode_cursor(&s);
    let _ = id::decode(&s);
}

/// The thumbnail pipeline on arbitrary bytes, as JPEG and as whatever the bytes sniff as, with
/// small limits so a fuzzer's "image" cannot take all its memory.
pub fn thumbnail(bytes: &[u8]) {
    let limits = render::Limits {
        max_file_bytes: 1 << 20,
        max_pixels: 4_000_000,
        max_decode_bytes: 64 << 20,
        ..render::Limits::sane_defaults()
    };
    let target = [render::Target { long_side: 64 }];
    for format in [Format::Jpeg, Format::sniff(bytes).unwrap_or(Format::Png)] {
        let _ = render::render(
            render::Input::Bytes(bytes.to_vec()),
            format,
            bytes.first().map_or(1, |b| b % 9),
            &target,
            80,
            &limits,
        );
    }
}
