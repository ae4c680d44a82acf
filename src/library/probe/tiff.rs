//! TIFF, whose file is itself the EXIF structure, and the sizes of GIF, BMP and TIFF, which
//! imagesize reads from their headers.
//!
//! The one rule: only the start of a TIFF ([`EXIF_LIMIT`]) is read; directories written after
//! megabytes of strips are out of reach, and the file is listed without them.

use std::io::{self, BufRead, Seek};

use super::exif::apply_exif;
use super::source::{Source, read_up_to};
use super::{EXIF_LIMIT, Format, Probe};

/// TIFF: the size, then the EXIF fields of the whole file.
pub(super) fn tiff<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    size_by_imagesize(r, p)?;
    r.seek_to(0)?;
    apply_exif(p, read_up_to(r, EXIF_LIMIT)?);
    Ok(())
}

/// GIF, BMP and TIFF: imagesize reads just the header (for TIFF, the first directory).
pub(super) fn size_by_imagesize<R: BufRead + Seek>(r: &mut Source<R>, p: &mut Probe) -> io::Result<()> {
    r.seek_to(0)?;
    match imagesize::reader_size(&mut *r) {
        Ok(size) => {
            let (width, mut height) = (size.width as u32, size.height as u32);
            // imagesize reads a BMP's height unsigned; top-down bitmaps store it negative.
            if p.format == Format::Bmp {
                height = (height as i32).unsigned_abs();
            }
            p.set_size(width, height);
        }
        Err(imagesize::ImageError::IoError(e)) => return Err(e),
        Err(_) => {}
    }
    Ok(())
}
