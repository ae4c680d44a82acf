//! WebP: the RIFF chunks of a simple (VP8, VP8L) or extended (VP8X) file.
//!
//! The one rule: chunks are walked header to header, so the frames of an animation before its
//! `EXIF` and `XMP ` chunks are seeked over, never read.

use std::io::{self, BufRead, Seek};

use super::exif::apply_exif;
use super::source::{Source, damaged, read_array, read_up_to};
use super::{EXIF_LIMIT, Probe, XMP_LIMIT, xmp};

/// VP8X flags: the file has an `EXIF` chunk, an `XMP ` chunk.
const EXIF_FLAG: u8 = 0x08;
const XMP_FLAG: u8 = 0x04;

/// WebP: RIFF chunks. The first gives the size: a simple file is one VP8 or VP8L frame, an
/// extended one starts with a VP8X canvas that flags whether `EXIF` and `XMP ` chunks exist.
/// They come after every frame of an animation, so the walk seeks from chunk header to chunk
/// header until it has seen those the canvas promised.
pub(super) fn webp<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    let (mut pos, mut first, mut wanted) = (12, true, 0);
    loop {
        r.step()?;
        r.seek_to(pos)?;
        let fourcc = read_array(r)?;
        let len = u32::from_le_bytes(read_array(r)?);
        match (&fourcc, first) {
            (b"VP8X", true) => {
                // Flags, 3 reserved bytes, then width - 1 and height - 1 in 24 bits each.
                let b: [u8; 10] = read_array(r)?;
                let le24 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], 0]) + 1;
                p.set_size(le24(4), le24(7));
                wanted = b[0] & (EXIF_FLAG | XMP_FLAG);
            }
            (b"VP8 ", true) => {
                // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height.
                let b: [u8; 10] = read_array(r)?;
                let le14 = |i: usize| u32::from(u16::from_le_bytes([b[i], b[i + 1]]) & 0x3FFF);
                p.set_size(le14(6), le14(8));
                return Ok(());
            }
            (b"VP8L", true) => {
                // Signature 0x2F, then 14-bit width - 1 and height - 1.
                let [_, bits @ ..] = read_array::<5, _>(r)?;
                let bits = u32::from_le_bytes(bits);
                p.set_size((bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1);
                return Ok(());
            }
            (b"EXIF", false) if u64::from(len) <= EXIF_LIMIT && wanted & EXIF_FLAG != 0 => {
                apply_exif(p, read_up_to(r, len.into())?);
                wanted &= !EXIF_FLAG;
            }
            (b"XMP ", false) if wanted & XMP_FLAG != 0 => {
                xmp::apply(p, &read_up_to(r, u64::from(len).min(XMP_LIMIT))?);
                wanted &= !XMP_FLAG;
            }
            (_, true) => return Err(damaged("WebP starts with no frame")),
            _ => {}
        }
        if wanted == 0 {
            return Ok(());
        }
        // Chunks are padded to an even length.
        (pos, first) = (pos + 8 + u64::from(len) + u64::from(len & 1), false);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::probe_corpus_file;
    use crate::library::dates::{self, DateSource};

    #[test]
    fn webp_exif_is_found_after_the_image() {
        for orientation in [6, 8] {
            let path = format!("python-pillow-Pillow/Tests/images/hopper_orientation_{orientation}.webp");
            assert_eq!(probe_corpus_file(&path).0.orientation, orientation, "{path}");
        }
    }

    #[test]
    fn webp_xmp_is_found_after_the_image() {
        let (p, _) = probe_corpus_file("python-pillow-Pillow/Tests/images/flower2.webp");
        let t = p.taken.expect("the XMP date");
        assert_eq!(
            (dates::to_iso8601(&t).as_str(), t.source),
            ("2013-07-04T17:23:10-03:00", DateSource::XmpCreated)
        );
    }
}
