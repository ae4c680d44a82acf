//! EXIF, the TIFF-structured block most formats embed (JPEG APP1, PNG `eXIf`, WebP `EXIF`, a
//! HEIF item, a TIFF file itself), read by kamadak-exif.
//!
//! The one rule: a damaged block gives whatever parsed before the damage, never an error.

use exif::{In, Tag};

use super::Probe;
use super::dates;

/// Reads a TIFF-structured EXIF block, keeping whatever parsed before any damage.
pub(super) fn apply_exif(p: &mut Probe, mut tiff: Vec<u8>) {
    // Some writers keep JPEG's "Exif\0\0" prefix in PNG and WebP chunks, where it does not belong.
    if tiff.starts_with(b"Exif\0\0") {
        tiff.drain(..6);
    }
    let result = exif::Reader::new().continue_on_error(true).read_raw(tiff);
    if let Some(exif) = usable_exif(result) {
        apply_exif_fields(p, &exif);
    }
}

pub(super) fn usable_exif(result: Result<exif::Exif, exif::Error>) -> Option<exif::Exif> {
    result.or_else(|e| e.distill_partial_result(drop)).ok()
}

pub(super) fn apply_exif_fields(p: &mut Probe, exif: &exif::Exif) {
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
