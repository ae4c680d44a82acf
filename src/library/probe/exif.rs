//! EXIF, the TIFF-structured block most formats embed (JPEG APP1, PNG `eXIf`, WebP `EXIF`, a
//! HEIF item, a TIFF file itself), read by kamadak-exif.
//!
//! The one rule: a damaged block gives whatever parsed before the damage, never an error.

use exif::{Context, In, Tag};

use super::dates::{self, DateSource, Taken};
use super::{Probe, maker, xmp};

/// TIFF tag 700, XMLPacket, which kamadak-exif has no name for.
const XMP_TAG: Tag = Tag(Context::Tiff, 700);

/// Reads a TIFF-structured EXIF block, keeping whatever parsed before any damage.
pub(super) fn apply_exif(p: &mut Probe, tiff: Vec<u8>) {
    if let Some(exif) = read(tiff) {
        apply_exif_fields(p, &exif);
    }
}

/// Only the dates of an EXIF block that viewers ignore (ImageMagick's PNG text profile): its
/// orientation, applied to our thumbnails but not by browsers to the original, would show the
/// picture two ways round.
pub(super) fn apply_exif_dates(p: &mut Probe, tiff: Vec<u8>) {
    if let Some(exif) = read(tiff) {
        apply_dates(p, &exif);
    }
}

fn read(mut tiff: Vec<u8>) -> Option<exif::Exif> {
    // Some writers keep JPEG's "Exif\0\0" prefix in PNG and WebP chunks, where it does not belong.
    if tiff.starts_with(b"Exif\0\0") {
        tiff.drain(..6);
    }
    usable_exif(exif::Reader::new().continue_on_error(true).read_raw(tiff))
}

pub(super) fn usable_exif(result: Result<exif::Exif, exif::Error>) -> Option<exif::Exif> {
    result.or_else(|e| e.distill_partial_result(drop)).ok()
}

pub(super) fn apply_exif_fields(p: &mut Probe, exif: &exif::Exif) {
    let field = |tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let orientation = field(Tag::Orientation).and_then(|v| v.get_uint(0));
    p.orientation = orientation.filter(|o| (1..=8).contains(o)).map_or(1, |o| o as u8);
    (p.make, p.model, p.lens) = (text(exif, Tag::Make), text(exif, Tag::Model), text(exif, Tag::LensModel));
    apply_dates(p, exif);
}

/// An ASCII field's first string, trimmed; `None` when absent, of another type or blank.
fn text(exif: &exif::Exif, tag: Tag) -> Option<String> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        exif::Value::Ascii(parts) => {
            let s = String::from_utf8_lossy(parts.first()?);
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            // Cameras pad with NULs; hostile files pad with megabytes.
            (!s.is_empty()).then(|| s.chars().take(100).collect::<String>())
        }
        _ => None,
    }
}

/// Offers the block's dates: its three own, a maker note's, and its XMP packet's (a TIFF's).
fn apply_dates(p: &mut Probe, exif: &exif::Exif) {
    let candidates = [
        (Tag::DateTimeOriginal, Tag::SubSecTimeOriginal, Tag::OffsetTimeOriginal, DateSource::Exif),
        (
            Tag::DateTimeDigitized,
            Tag::SubSecTimeDigitized,
            Tag::OffsetTimeDigitized,
            DateSource::ExifDigitized,
        ),
        (Tag::DateTime, Tag::SubSecTime, Tag::OffsetTime, DateSource::ExifModified),
    ];
    for (date, subsec, offset, source) in candidates {
        let (subsec, offset) = (text(exif, subsec), text(exif, offset));
        let parsed = text(exif, date)
            .and_then(|d| dates::parse_exif_datetime(&d, subsec.as_deref(), offset.as_deref()));
        if let Some(t) = parsed {
            p.offer(Taken { source, ..t });
        }
    }
    let bytes = |tag| match &exif.get_field(tag, In::PRIMARY)?.value {
        exif::Value::Undefined(b, _) | exif::Value::Byte(b) => Some(b.as_slice()),
        _ => None,
    };
    let make = text(exif, Tag::Make);
    if let Some(t) = bytes(Tag::MakerNote).and_then(|note| maker::reconyx(note, make.as_deref())) {
        p.offer(t);
    }
    // A TIFF's XMP packet is a tag of its first directory.
    if let Some(packet) = bytes(XMP_TAG) {
        xmp::apply(p, packet);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::probe_corpus_file;

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
}
