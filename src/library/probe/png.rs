//! PNG: chunks from the signature up to the image data.
//!
//! The one rule: a chunk is read only when it is one we want, and within [`EXIF_LIMIT`] or
//! [`XMP_LIMIT`]; every other is seeked over by its stated length.

use std::io::{self, BufRead, Read as _, Seek};

use super::exif::{apply_exif, apply_exif_dates};
use super::source::{Source, read_array, read_up_to};
use super::{EXIF_LIMIT, Probe, XMP_LIMIT, iptc, xmp};

/// The keyword of the international text chunk that holds XMP, with its terminating NUL.
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp\0";
/// The start of the keyword of ImageMagick's text chunks that hold a profile in hex.
const RAW_PROFILE: &[u8] = b"Raw profile type ";
/// The longest keyword PNG allows, 79 bytes, and its NUL.
const KEYWORD_LEN: u64 = 80;
/// ImageMagick's profiles read from one file: EXIF, XMP, IPTC, 8BIM.
const MAX_PROFILES: u32 = 4;

/// PNG: IHDR gives the size; an `eXIf` chunk and an XMP `iTXt` chunk, when there are any, come
/// before the image data (the specification says so for `eXIf`; writers do it for XMP).
pub(super) fn png<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    // SECURITY: each profile is inflated up to megabytes; a file of thousands of tiny zlib bombs
    // must not cost thousands of those.
    let (mut pos, mut profiles_left) = (8, MAX_PROFILES);
    loop {
        r.step()?;
        r.seek_to(pos)?;
        let len = u32::from_be_bytes(read_array(r)?);
        match &read_array(r)? {
            b"IHDR" => {
                let [w, h] = [read_array(r)?, read_array(r)?].map(u32::from_be_bytes);
                p.set_size(w, h);
            }
            b"eXIf" if u64::from(len) <= EXIF_LIMIT => apply_exif(p, read_up_to(r, len.into())?),
            b"iTXt" => {
                let keyword = read_up_to(r, u64::from(len).min(XMP_KEYWORD.len() as u64))?;
                if keyword == XMP_KEYWORD {
                    let rest = u64::from(len) - XMP_KEYWORD.len() as u64;
                    if let Some(packet) = itxt_text(&read_up_to(r, rest.min(XMP_LIMIT))?) {
                        xmp::apply(p, packet);
                    }
                }
            }
            // ImageMagick keeps EXIF, XMP and IPTC as hex text, compressed or not.
            kind @ (b"tEXt" | b"zTXt") if u64::from(len) <= EXIF_LIMIT && profiles_left > 0 => {
                let mut chunk = read_up_to(r, u64::from(len).min(KEYWORD_LEN))?;
                if chunk.starts_with(RAW_PROFILE) {
                    profiles_left -= 1;
                    chunk.extend(read_up_to(r, u64::from(len) - chunk.len() as u64)?);
                    raw_profile(p, &chunk, kind == b"zTXt");
                }
            }
            b"IDAT" | b"IEND" => return Ok(()),
            _ => {}
        }
        // Length, type, data, CRC.
        pos += 12 + u64::from(len);
    }
}

/// The text of an `iTXt` chunk after its keyword: a compression flag and method, a language tag
/// and a translated keyword (both NUL-terminated), then the text. XMP is never compressed there,
/// by the XMP specification; a compressed one is skipped.
fn itxt_text(after_keyword: &[u8]) -> Option<&[u8]> {
    let [0, _method, rest @ ..] = after_keyword else { return None };
    let language_end = rest.iter().position(|&b| b == 0)?;
    let rest = &rest[language_end + 1..];
    let translated_end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[translated_end + 1..])
}

/// An ImageMagick profile chunk: `Raw profile type NAME`, a NUL, (for `zTXt`, a compression
/// method and zlib data,) then the text: a blank line, the name, the length in bytes, and that
/// many bytes in hex across lines. Only dates are taken from it: browsers ignore these chunks,
/// so an orientation from one would turn our thumbnail but not the picture they show.
fn raw_profile(p: &mut Probe, chunk: &[u8], compressed: bool) {
    let Some(nul) = chunk.iter().position(|&b| b == 0) else { return };
    let (name, mut text) = (&chunk[RAW_PROFILE.len()..nul], &chunk[nul + 1..]);
    let inflated;
    if compressed {
        let [0, data @ ..] = text else { return };
        let mut out = Vec::new();
        // SECURITY: zlib can expand a thousandfold; the hex of the largest profile we take is
        // twice its size, plus line breaks and the header.
        let limit = 2 * EXIF_LIMIT + EXIF_LIMIT / 32 + 64;
        if flate2::read::ZlibDecoder::new(data).take(limit).read_to_end(&mut out).is_err() {
            return;
        }
        inflated = out;
        text = &inflated;
    }
    let Some(profile) = unhex_profile(text) else { return };
    match name {
        b"exif" => apply_exif_dates(p, profile),
        b"xmp" => xmp::apply(p, &profile),
        b"iptc" => {
            // Bare IIM datasets, or Photoshop's resource blocks around them.
            let found = if profile.starts_with(b"8BIM") {
                iptc::from_photoshop(&profile)
            } else {
                iptc::from_iim(&profile)
            };
            if let Some(t) = found {
                p.offer(t);
            }
        }
        b"8bim" => {
            if let Some(t) = iptc::from_photoshop(&profile) {
                p.offer(t);
            }
        }
        _ => {}
    }
}

/// The bytes of a raw profile's text: `\nNAME\n    LENGTH\nHEX...`, the hex broken into lines.
fn unhex_profile(text: &[u8]) -> Option<Vec<u8>> {
    let mut lines = text.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    let _name = lines.next()?;
    let len: u64 = std::str::from_utf8(lines.next()?).ok()?.trim().parse().ok()?;
    if len > EXIF_LIMIT {
        return None;
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut digits = lines.flatten().copied().filter(|b| !b.is_ascii_whitespace()).map(hex);
    let mut out = Vec::with_capacity((len as usize).min(text.len() / 2));
    while (out.len() as u64) < len {
        out.push(digits.next()?? << 4 | digits.next()??);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::dates::{self, DateSource};
    use crate::library::probe::tests::probe_corpus_file;

    #[test]
    fn png_xmp_gives_the_date_created() {
        let (p, _) = probe_corpus_file("pypi-scikit-image-0.26.0/skimage/data/chelsea.png");
        let t = p.taken.expect("the XMP date");
        assert_eq!((dates::to_iso8601(&t).as_str(), t.source), ("2009-02-09T09:11:30", DateSource::Xmp));
    }

    #[test]
    fn imagemagick_profiles_give_dates_but_not_orientation() {
        let (p, _) = probe_corpus_file("link-u-avif-sample-images/fox.png");
        let t = p.taken.expect("the hex EXIF date");
        assert_eq!(
            (dates::to_iso8601(&t).as_str(), t.source),
            ("2020-01-29T00:22:17", DateSource::ExifModified)
        );
        let (p, _) = probe_corpus_file("python-pillow-Pillow/Tests/images/exif_imagemagick_orientation.png");
        assert_eq!(p.orientation, 1);
        let png = "drewnoakes-metadata-extractor-images/png/ImageTestSuite/c-m1-b977e74d9de1f6689fdd84c4e38830f5.png";
        let t = probe_corpus_file(png).0.taken.expect("the hex XMP date");
        assert_eq!(
            (dates::to_iso8601(&t).as_str(), t.source),
            ("2007-04-04T14:47:26-04:00", DateSource::XmpCreated)
        );
    }

    #[test]
    fn raw_profiles_are_hex_of_the_length_they_state() {
        assert_eq!(unhex_profile(b"\nexif\n       4\n4578\n6966\n"), Some(b"Exif".to_vec()));
        assert_eq!(unhex_profile(b"\nexif\n       4\n4578\n"), None, "short");
        assert_eq!(unhex_profile(b"\nexif\n       2\n45zz\n"), None, "not hex");
        assert_eq!(unhex_profile(b"\nexif\n  99999999999\n45\n"), None, "too long");
        assert_eq!(unhex_profile(b""), None);
    }

    #[test]
    fn itxt_text_follows_the_language_and_translated_keyword() {
        assert_eq!(itxt_text(b"\0\0en\0Titel\0<x:xmpmeta/>"), Some(&b"<x:xmpmeta/>"[..]));
        assert_eq!(itxt_text(b"\0\0\0\0"), Some(&b""[..]));
        assert_eq!(itxt_text(b"\x01\0\0\0compressed"), None);
        assert_eq!(itxt_text(b"\0\0no terminator"), None);
        assert_eq!(itxt_text(b""), None);
    }
}
