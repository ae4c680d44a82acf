//! PNG: chunks from the signature up to the image data.
//!
//! The one rule: a chunk is read only when it is one we want and within [`EXIF_LIMIT`]; every
//! other is seeked over by its stated length.

use std::io::{self, BufRead, Seek};

use super::exif::apply_exif;
use super::source::{Source, read_array, read_up_to};
use super::{EXIF_LIMIT, Probe};

/// PNG: IHDR gives the size; an `eXIf` chunk, when there is one, comes before the image data.
pub(super) fn png<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    let mut pos = 8;
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
            b"IDAT" | b"IEND" => return Ok(()),
            _ => {}
        }
        // Length, type, data, CRC.
        pos += 12 + u64::from(len);
    }
}
