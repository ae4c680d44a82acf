//! Renditions of one image: decode once, shrink, turn upright, and encode one JPEG per target.
//!
//! [`render`] is a pure function over bytes or a file the caller opened ([`Input`]; no paths, no
//! global state, no threads of its own), so the caller decides where the input comes from, which
//! thread pays for it and what is cached.
//! The rule it keeps: an image is untrusted input, so its size is checked against [`Limits`] from
//! the header before any pixel buffer is allocated, and nothing a file says can make this code
//! panic.
//!
//! JPEG, nearly every photo, takes the fast path: `jpeg-decoder` shrinks by 1/2, 1/4 or 1/8 in the
//! DCT domain while it decodes (the smallest scale still at least the largest target), so a 12 MP
//! photo is never held at full size; `fast_image_resize` (SIMD) makes the exact size; the EXIF
//! orientation is applied to that small image; `jpeg-encoder` writes it. Each smaller target is
//! resized from the previous result. JPEGs the scaled decoder rejects (arithmetic coding, 12-bit,
//! some damaged files) and every other format are decoded whole by the `image` crate.
//!
//! One thing is not ours to choose: built without its `rayon` feature, as here, `jpeg-decoder`
//! still hands each colour component of an image wider than 128 pixels to a short-lived thread of
//! its own while it decodes (about a tenth of the decode's CPU time).

use std::io::{Cursor, Read};

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use jpeg_decoder::{CodingProcess, PixelFormat};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::media::Format;

/// Where a rendition is displayed: the long side in pixels. The aspect ratio is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub long_side: u32,
}

/// What one render may cost. Anything over a limit is refused before pixels are allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Largest input in bytes. Default 200 MB: above any camera file, below a stitched panorama.
    pub max_file_bytes: u64,
    /// Largest image in pixels, as its header states. Default 100 MP: a phone photo is 12-50.
    pub max_pixels: u64,
    /// Most bytes a decoder may hold for one image: its pixels (`image::Limits::max_alloc`, the
    /// output of the JPEG fast path) or a progressive JPEG's coefficients. Default 512 MiB: 100 MP
    /// of 8-bit RGBA is 400 MB.
    pub max_decode_bytes: u64,
    /// Longest a render may take. Enforced by the caller (`thumbs`), which runs each render on a
    /// thread of its own and stops waiting; pure Rust cannot stop a decoder midway. Default 20 s:
    /// a 100 MP photo takes 2-3 s here.
    pub max_decode_time: std::time::Duration,
    /// Most bytes the renders in flight may hold together, by [`estimate_bytes`] plus their
    /// files, whatever the number of workers and requests: the caller (`thumbs`) waits for room
    /// before it starts one, and one larger than this runs alone. Default 32 MiB: two 12 MP
    /// camera photos at once (each about 14 MB at the preview's 1/2 scale, with its file), or
    /// one alongside many small ones, so the 3 workers of a Pi add at most this to the index.
    pub decode_budget_bytes: u64,
}

impl Limits {
    pub(crate) fn sane_defaults() -> Limits {
        Limits {
            max_file_bytes: 200_000_000,
            max_pixels: 100_000_000,
            max_decode_bytes: 512 << 20,
            max_decode_time: std::time::Duration::from_secs(20),
            decode_budget_bytes: 32 << 20,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::sane_defaults()
    }
}

/// One encoded rendition and its size as displayed (orientation applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// What [`render`] makes of one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Renditions {
    /// One per target, in the order the targets were given.
    pub outputs: Vec<Rendered>,
    /// A binary ThumbHash (about 25 bytes) of the smallest output, for a blurred placeholder.
    pub thumbhash: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    /// A format, or a variant of one, that no decoder here reads (HEIF, AVIF, video, arithmetic-
    /// coded JPEG, ...): an external decoder may still manage.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// Over one of the [`Limits`].
    #[error("too large: {what} (limit {limit})")]
    TooLarge { what: String, limit: u64 },
    /// No decoder could make a picture of it; the message says what each one said. (Also, never
    /// expected, a failure to resize or encode.)
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// Over [`Limits::max_decode_time`].
    #[error("took longer than {0:?}")]
    TooSlow(std::time::Duration),
}

impl RenderError {
    /// A short, stable reason for a placeholder's header and the log.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            RenderError::Unsupported(_) => "unsupported format",
            RenderError::TooLarge { .. } => "too large",
            RenderError::Corrupt(_) => "corrupt",
            RenderError::TooSlow(_) => "too slow",
        }
    }
}

/// Transparent pixels are composited over mid grey: black and white marks both stay visible, and
/// grey keeps a grey image grey.
const BACKGROUND: u8 = 0x80;
/// The filter of every resize: Lanczos3, libvips' choice for thumbnails. CatmullRom is a little
/// softer and saves only about 1 ms (AVX2) of the 50-150 ms that a 12 MP photo's two renditions
/// cost, nearly all of which is decoding.
const FILTER: FilterType = FilterType::Lanczos3;
/// JPEG stores sizes in 16 bits.
const MAX_JPEG_SIDE: u32 = u16::MAX as u32;
/// ThumbHash reads at most 100x100 pixels.
const THUMBHASH_SIDE: u32 = 100;
/// An ICC profile is copied into the renditions, so that wide-gamut photos (Adobe RGB, Display P3,
/// about 0.5 KiB each) keep their colours, when it is this small: larger ones would weigh on a
/// 20 KiB thumbnail. sRGB profiles are left out, as sRGB is what browsers assume anyway.
const MAX_ICC_BYTES: usize = 4 << 10;

/// Decodes `bytes` once, applies the EXIF `orientation` (1..=8; anything else means 1), and
/// encodes one JPEG of `quality` (1..=100, 80 is a good default) per target, largest first, each
/// from the previous result and never larger than the source. `targets` may come in any order;
/// with none, only the thumbhash is made.
pub(crate) fn render(
    input: Input,
    format: Format,
    orientation: u8,
    targets: &[Target],
    quality: u8,
    limits: &Limits,
) -> Result<Renditions, RenderError> {
    let long_side = |i: usize| targets[i].long_side.clamp(1, MAX_JPEG_SIDE);
    let largest = (0..targets.len()).map(long_side).max().unwrap_or(THUMBHASH_SIDE);
    let Decoded { mut image, icc } = decode_input(input, format, largest, limits)?;
    let icc = icc.filter(|profile| profile_fits(profile, image.layout));

    let mut resizer = Resizer::new();
    let mut largest_first: Vec<usize> = (0..targets.len()).collect();
    largest_first.sort_by_key(|&i| std::cmp::Reverse(long_side(i)));
    let mut outputs = vec![None; targets.len()];
    let mut upright = false;
    for i in largest_first {
        image = image.fit(long_side(i), &mut resizer)?;
        if !upright {
            image = image.orient(orientation);
            upright = true;
        }
        outputs[i] = Some(encode(&image, quality, icc.as_deref())?);
    }
    let mut tiny = image.fit(THUMBHASH_SIDE, &mut resizer)?;
    if !upright {
        tiny = tiny.orient(orientation);
    }
    Ok(Renditions { outputs: outputs.into_iter().flatten().collect(), thumbhash: tiny.thumbhash() })
}

/// About the most bytes [`render`] holds at once for `bytes` and a largest target of `long_side`,
/// read from the header alone (0 when the header says nothing usable; the render then fails
/// early). For the caller's budget of decodes in flight. A scaled JPEG: its scaled pixels twice
/// (the decoder's planes and its output), a progressive one also its coefficients (two bytes a
/// sample at full size); anything else its RGBA pixels twice (the decode and the conversion);
/// then the largest target's pixels, made while its source is still held.
fn estimate_bytes(bytes: &[u8], format: Format, long_side: u32) -> u64 {
    if format == Format::Jpeg {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        return match decoder.read_info().ok().and(decoder.info()) {
            Some(info) => estimate_jpeg(&info, long_side),
            None => 0,
        };
    }
    match imagesize::blob_size(bytes) {
        // A hostile header may claim any size: the render refuses it, the sum only saturates.
        Ok(size) => {
            let (w, h) = (size.width as u64, size.height as u64);
            let (tw, th) = (w.min(u64::from(u32::MAX)), h.min(u64::from(u32::MAX)));
            w.saturating_mul(h).saturating_mul(8).saturating_add(fitted_bytes(tw, th, long_side))
        }
        Err(_) => 0,
    }
}

/// [`estimate_bytes`] for what [`render`] is handed, the bytes it holds included: an open
/// baseline JPEG's file is read as the decoder goes, a progressive one's whole.
pub(crate) fn estimate_input(input: &Input, format: Format, long_side: u32, limits: &Limits) -> u64 {
    match input {
        Input::Bytes(bytes) => estimate_bytes(bytes, format, long_side).saturating_add(bytes.len() as u64),
        Input::Jpeg(file) => {
            let Ok(reader) = jpeg_reader(file, limits) else { return 0 };
            let mut decoder = jpeg_decoder::Decoder::new(reader);
            let Some(info) = decoder.read_info().ok().and(decoder.info()) else { return 0 };
            let held = match info.coding_process {
                CodingProcess::DctSequential => 64 << 10,
                _ => file.metadata().map_or(0, |m| m.len()),
            };
            estimate_jpeg(&info, long_side).saturating_add(held)
        }
    }
}

fn fitted_bytes(w: u64, h: u64, long_side: u32) -> u64 {
    let (w, h) = fitted_size(w as u32, h as u32, long_side.max(1));
    u64::from(w) * u64::from(h) * 3
}

/// The JPEG part of [`estimate_bytes`], from its header.
fn estimate_jpeg(info: &jpeg_decoder::ImageInfo, long_side: u32) -> u64 {
    let target = |w: u64, h: u64| fitted_bytes(w, h, long_side);
    let (w, h) = (u64::from(info.width), u64::from(info.height));
    let channels = info.pixel_format.pixel_bytes() as u64;
    let coefficients =
        if info.coding_process == CodingProcess::DctProgressive { 2 * w * h * channels } else { 0 };
    // The decoder's scale: the smallest of 1/8, 1/4, 1/2 and 1 that keeps the long side at
    // least `long_side` (none for lossless).
    let denominator =
        if info.coding_process == CodingProcess::Lossless { 1 } else { idct_scale(w.max(h), long_side) };
    let (sw, sh) = (w.div_ceil(denominator), h.div_ceil(denominator));
    2 * sw * sh * channels + coefficients + target(sw, sh)
}

/// How a picture meets a box in [`resize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The whole picture inside the box; one side may be shorter.
    Contain,
    /// The box filled, the middle kept, what sticks out cut off.
    Cover,
}

/// The encoding of a [`resize`] output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Jpeg,
    Png,
    /// AV1 in HEIF (rav1e through ravif, pure Rust): a quarter to two thirds of the JPEG's bytes
    /// for the same picture, at several times the CPU: see [`AVIF_SPEED`].
    Avif,
}

impl Encoding {
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Encoding::Jpeg => "image/jpeg",
            Encoding::Png => "image/png",
            Encoding::Avif => "image/avif",
        }
    }

    /// The file extension, as the thumbnail cache names its files.
    pub(crate) fn ext(self) -> &'static str {
        match self {
            Encoding::Jpeg => "jpg",
            Encoding::Png => "png",
            Encoding::Avif => "avif",
        }
    }
}

/// ravif's speed (1 slow ..= 10 fast). Measured on one x86_64 core, release, 640 px pictures,
/// SSIM of the luma against the lossless resize (BENCHMARKS.md, "AVIF"): speed 10 takes 0.18 s
/// and needs about 1.5 times the bytes of speed 8 for the same SSIM; speed 8 takes 0.53 s;
/// 7 and 6 are no smaller. An AVIF is made once per URL and cached, so bytes win.
const AVIF_SPEED: u8 = 8;

/// The AVIF quality (ravif's 1..=100 scale) for the JPEG quality. At q80 JPEG and q70 AVIF
/// (speed 8) a detailed picture has the same SSIM in 0.61 of the bytes; a smooth camera photo
/// 0.28 of the bytes at a slightly lower SSIM.
fn avif_quality(jpeg_quality: u8) -> f32 {
    f32::from(jpeg_quality.saturating_sub(10).clamp(1, 100))
}

/// One picture for a `width` x `height` box (static-site use), oriented, never enlarged: with
/// `Cover` the result is exactly the box unless the picture is smaller than it. `displayed` is
/// the picture's displayed size when known, so that the decoder can shrink while decoding.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize(
    input: Input,
    format: Format,
    orientation: u8,
    displayed: Option<(u32, u32)>,
    (width, height): (u32, u32),
    fit: Fit,
    encoding: Encoding,
    quality: u8,
    limits: &Limits,
) -> Result<Rendered, RenderError> {
    let (width, height) = (width.clamp(1, MAX_JPEG_SIDE), height.clamp(1, MAX_JPEG_SIDE));
    // The long side the scaled picture needs, if its size is known; else decode whole.
    let needed = displayed.map_or(MAX_JPEG_SIDE, |(w, h)| {
        let (sw, sh) = (f64::from(width) / f64::from(w.max(1)), f64::from(height) / f64::from(h.max(1)));
        let scale = match fit {
            Fit::Contain => sw.min(sh),
            Fit::Cover => sw.max(sh),
        };
        ((f64::from(w.max(h)) * scale).ceil() as u32).clamp(1, MAX_JPEG_SIDE)
    });
    let Decoded { image, icc } = decode_input(input, format, needed, limits)?;
    let icc = icc.filter(|profile| profile_fits(profile, image.layout));
    // Shrunk first and turned upright after, so the turn copies the small picture, not the
    // decoded one; the long side is the same either way.
    let turned = matches!(orientation, 5..=8);
    let (w, h) = if turned { (image.height, image.width) } else { (image.width, image.height) };
    let (w, h) = (f64::from(w), f64::from(h));
    let (sw, sh) = (f64::from(width) / w, f64::from(height) / h);
    let scale = match fit {
        Fit::Contain => sw.min(sh),
        Fit::Cover => sw.max(sh),
    };
    let long = ((w.max(h) * scale).round() as u32).max(1);
    let mut image = image.fit(long, &mut Resizer::new())?.orient(orientation);
    if fit == Fit::Cover {
        image = image.crop_middle(width, height);
    }
    match encoding {
        Encoding::Jpeg => encode(&image, quality, icc.as_deref()),
        Encoding::Png => encode_png(&image),
        Encoding::Avif => encode_avif(&image, quality),
    }
}

/// 8-bit pixels, row by row, in one of the two layouts the pipeline carries.
struct Pixels {
    width: u32,
    height: u32,
    layout: Layout,
    data: Vec<u8>,
}

/// Grey stays one channel all the way to a one-channel JPEG, so it cannot pick up a tint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Gray,
    Rgb,
}

impl Layout {
    fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::Rgb => 3,
        }
    }
}

struct Decoded {
    image: Pixels,
    icc: Option<Vec<u8>>,
}

impl Pixels {
    fn try_new(width: u32, height: u32, layout: Layout, data: Vec<u8>) -> Result<Pixels, RenderError> {
        let expected = width as usize * height as usize * layout.channels();
        if width == 0 || height == 0 || data.len() != expected {
            return Err(RenderError::Corrupt(format!(
                "the decoder gave {} bytes for {width}x{height} {layout:?}",
                data.len()
            )));
        }
        Ok(Pixels { width, height, layout, data })
    }

    /// Shrinks to fit a `long_side` square, keeping the aspect ratio; never enlarges.
    fn fit(self, long_side: u32, resizer: &mut Resizer) -> Result<Pixels, RenderError> {
        let (width, height) = fitted_size(self.width, self.height, long_side);
        if (width, height) == (self.width, self.height) {
            return Ok(self);
        }
        let pixel_type = match self.layout {
            Layout::Gray => PixelType::U8,
            Layout::Rgb => PixelType::U8x3,
        };
        let resize_failed = |e: &dyn std::fmt::Display| RenderError::Corrupt(format!("resizing: {e}"));
        let source = Image::from_vec_u8(self.width, self.height, self.data, pixel_type)
            .map_err(|e| resize_failed(&e))?;
        // In bands of rows: the resizer's intermediate (the source's width by the target's
        // height, 8 MB for a 16 MP photo decoded at 1/2 and fitted to 1600) is then only a
        // band's. Each band's source window is its share of the source, and the filter still
        // reads the rows beyond it, so the pixels are the whole-image resize's.
        let row_bytes = width as usize * self.layout.channels();
        let mut data = vec![0; row_bytes * height as usize];
        let scale = f64::from(self.height) / f64::from(height);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FILTER));
        for (band, rows) in data.chunks_mut(row_bytes * RESIZE_BAND_ROWS as usize).enumerate() {
            let rows_in = (rows.len() / row_bytes) as u32;
            let top = f64::from(band as u32 * RESIZE_BAND_ROWS) * scale;
            let tall = (f64::from(rows_in) * scale).min(f64::from(self.height) - top);
            let mut target =
                Image::from_slice_u8(width, rows_in, rows, pixel_type).map_err(|e| resize_failed(&e))?;
            let band_options = options.crop(0.0, top, f64::from(self.width), tall);
            resizer.resize(&source, &mut target, &band_options).map_err(|e| resize_failed(&e))?;
        }
        Ok(Pixels { width, height, layout: self.layout, data })
    }

    /// Turns the stored pixels the way EXIF `orientation` says they are displayed.
    ///
    /// Each orientation is a walk over the stored image: the displayed pixel (x, y) is the stored
    /// one at `start + x * across + y * down` (offsets in bytes), where `across` and `down` are
    /// one stored pixel or one stored row, forwards or backwards.
    fn orient(self, orientation: u8) -> Pixels {
        let channels = self.layout.channels();
        let (w, h) = (self.width as isize, self.height as isize);
        let (pixel, row) = (channels as isize, w * channels as isize);
        let last_pixel = (w - 1) * pixel;
        let last_row = (h - 1) * row;
        let (start, across, down) = match orientation {
            2 => (last_pixel, -pixel, row),             // mirrored left-right
            3 => (last_row + last_pixel, -pixel, -row), // turned 180°
            4 => (last_row, pixel, -row),               // mirrored top-bottom
            5 => (0, row, pixel),                       // transposed
            6 => (last_row, -row, pixel),               // turned 90° clockwise
            7 => (last_row + last_pixel, -row, -pixel), // transverse
            8 => (last_pixel, row, -pixel),             // turned 90° anticlockwise
            _ => return self,
        };
        let (width, height) =
            if orientation >= 5 { (self.height, self.width) } else { (self.width, self.height) };
        let walk = match self.layout {
            Layout::Gray => walk::<1>,
            Layout::Rgb => walk::<3>,
        };
        let data = walk(&self.data, start, across, down, width, height);
        Pixels { width, height, layout: self.layout, data }
    }

    /// The middle `width` x `height` pixels (or fewer, when the image is smaller).
    fn crop_middle(self, width: u32, height: u32) -> Pixels {
        let (w, h) = (width.min(self.width), height.min(self.height));
        if (w, h) == (self.width, self.height) {
            return self;
        }
        let channels = self.layout.channels();
        let (left, top) = ((self.width - w) / 2, (self.height - h) / 2);
        let stride = self.width as usize * channels;
        let mut data = Vec::with_capacity(w as usize * h as usize * channels);
        for y in top..top + h {
            let from = y as usize * stride + left as usize * channels;
            data.extend_from_slice(&self.data[from..from + w as usize * channels]);
        }
        Pixels { width: w, height: h, layout: self.layout, data }
    }

    /// The ThumbHash of an image already at most [`THUMBHASH_SIDE`] on each side.
    fn thumbhash(&self) -> Vec<u8> {
        let rgba: Vec<u8> = match self.layout {
            Layout::Gray => self.data.iter().flat_map(|&v| [v, v, v, u8::MAX]).collect(),
            Layout::Rgb => self.data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], u8::MAX]).collect(),
        };
        thumbhash::rgba_to_thumb_hash(self.width as usize, self.height as usize, &rgba)
    }
}

/// Copies the pixels met on the walk that [`Pixels::orient`] describes. `N`, the bytes per pixel, is
/// a constant so that each copy is a move rather than a call to `memcpy`.
fn walk<const N: usize>(
    pixels: &[u8],
    start: isize,
    across: isize,
    down: isize,
    width: u32,
    height: u32,
) -> Vec<u8> {
    let mut walked = Vec::with_capacity(pixels.len());
    for y in 0..height as isize {
        let mut at = start + y * down;
        for _ in 0..width {
            let from = at as usize;
            walked.extend_from_slice(&pixels[from..from + N]);
            at += across;
        }
    }
    walked
}

/// Rows of the target [`Pixels::fit`] resizes at a time. Each band costs fast_image_resize its
/// coefficients again: 2304x1728 -> 1600x1200 took 9.0 ms whole, 9.5 in bands of 300 rows
/// (intermediate 2 MB instead of 8.3), 16 in bands of 64, 50 in bands of 16.
const RESIZE_BAND_ROWS: u32 = 300;

/// The size that fits a `long_side` square with the aspect ratio kept, never larger than now.
fn fitted_size(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= long_side {
        return (width, height);
    }
    let (long, long_side) = (u64::from(long), u64::from(long_side));
    // Rounded, and at least one pixel: a 10000x3 panorama still has a height.
    let scale = |side: u32| ((u64::from(side) * long_side + long / 2) / long).max(1) as u32;
    (scale(width), scale(height))
}

/// What [`render`] decodes: a file's bytes, or an open JPEG, which the scaled decoder reads as it
/// goes, so a camera photo's file is not held beside the decoder's planes and picture at the
/// render's largest moment (its 3-8 MB were a fifth of the render's peak). The caller opens the
/// file; this module only reads from it.
#[derive(Debug)]
pub(crate) enum Input {
    Bytes(Vec<u8>),
    Jpeg(std::fs::File),
}

/// [`decode`] of an [`Input`], which is let go once decoded: a camera photo's few megabytes are not
/// held through the resize.
fn decode_input(
    input: Input,
    format: Format,
    long_side: u32,
    limits: &Limits,
) -> Result<Decoded, RenderError> {
    match input {
        Input::Bytes(bytes) => {
            check_file_len(bytes.len() as u64, limits)?;
            decode(&bytes, format, long_side, limits)
        }
        Input::Jpeg(file) => decode_jpeg_file(&file, long_side, limits),
    }
}

fn check_file_len(len: u64, limits: &Limits) -> Result<(), RenderError> {
    if len > limits.max_file_bytes {
        return Err(RenderError::TooLarge { what: format!("{len} bytes"), limit: limits.max_file_bytes });
    }
    Ok(())
}

/// Reads at most the file limit of `file` from its start, with a buffer for the decoder's
/// byte-by-byte reads.
fn jpeg_reader<'f>(
    file: &'f std::fs::File,
    limits: &Limits,
) -> std::io::Result<std::io::BufReader<std::io::Take<&'f std::fs::File>>> {
    use std::io::Seek as _;
    let mut file = file;
    file.rewind()?;
    Ok(std::io::BufReader::with_capacity(64 << 10, file.take(limits.max_file_bytes)))
}

/// An open JPEG: the scaled decoder reads a baseline one straight from the file. A progressive
/// one, or one that decoder gives up on, is read whole and decoded as bytes are (the progressive
/// one's coefficients dwarf its file; the cut to its DC scans and the full decoder need bytes).
fn decode_jpeg_file(file: &std::fs::File, long_side: u32, limits: &Limits) -> Result<Decoded, RenderError> {
    let io = |e: std::io::Error| RenderError::Corrupt(format!("cannot read the file: {e}"));
    check_file_len(file.metadata().map_err(io)?.len(), limits)?;
    let mut decoder = jpeg_decoder::Decoder::new(jpeg_reader(file, limits).map_err(io)?);
    let baseline = decoder.read_info().is_ok()
        && decoder.info().is_some_and(|i| i.coding_process == CodingProcess::DctSequential);
    if baseline {
        match decode_jpeg_header_read(decoder, None, long_side, limits) {
            Ok(decoded) => return Ok(decoded),
            Err(too_large @ RenderError::TooLarge { .. }) => return Err(too_large),
            Err(_) => {}
        }
    }
    let mut bytes = Vec::new();
    jpeg_reader(file, limits).and_then(|mut r| r.read_to_end(&mut bytes)).map_err(io)?;
    decode_jpeg(&bytes, long_side, limits)
}

/// Decodes to at least `long_side` on the long side where the decoder can shrink while decoding, to
/// full size otherwise.
fn decode(bytes: &[u8], format: Format, long_side: u32, limits: &Limits) -> Result<Decoded, RenderError> {
    let format = match format {
        Format::Jpeg => return decode_jpeg(bytes, long_side, limits),
        Format::Png => ImageFormat::Png,
        Format::Gif => ImageFormat::Gif,
        Format::Webp => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
        Format::Bmp => ImageFormat::Bmp,
        Format::Heif => return Err(RenderError::Unsupported("HEIF")),
        Format::Avif => return Err(RenderError::Unsupported("AVIF")),
        Format::Mp4 | Format::Mov | Format::Webm | Format::Mkv => {
            return Err(RenderError::Unsupported("video"));
        }
    };
    decode_whole(bytes, format, limits)
}

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), RenderError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(RenderError::TooLarge {
            what: format!("{width}x{height} pixels"),
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// A JPEG: the scaled decoder first, the full one when it gives up.
fn decode_jpeg(bytes: &[u8], long_side: u32, limits: &Limits) -> Result<Decoded, RenderError> {
    let scaled = match decode_jpeg_scaled(bytes, long_side, limits) {
        Ok(decoded) => return Ok(decoded),
        // Both decoders read the same header: a second opinion would not change the answer.
        Err(too_large @ RenderError::TooLarge { .. }) => return Err(too_large),
        Err(e) => e,
    };
    decode_whole(bytes, ImageFormat::Jpeg, limits).map_err(|whole| match (scaled, whole) {
        (_, too_large @ RenderError::TooLarge { .. }) => too_large,
        // Arithmetic coding, hierarchical, 12-bit...: an external decoder may still read it.
        (unsupported @ RenderError::Unsupported(_), _) => unsupported,
        (RenderError::Corrupt(scaled), RenderError::Corrupt(whole)) => {
            RenderError::Corrupt(format!("scaled decoder: {scaled}; full decoder: {whole}"))
        }
        (_, whole) => whole,
    })
}

/// What a jpeg-decoder error means for the render.
fn jpeg_error(e: jpeg_decoder::Error) -> RenderError {
    match e {
        jpeg_decoder::Error::Unsupported(_) => RenderError::Unsupported("JPEG variant"),
        e => RenderError::Corrupt(e.to_string()),
    }
}

/// The fast path: a JPEG decoded straight to the smallest DCT scale that still covers `long_side`.
fn decode_jpeg_scaled(bytes: &[u8], long_side: u32, limits: &Limits) -> Result<Decoded, RenderError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(jpeg_error)?;
    decode_jpeg_header_read(decoder, Some(bytes), long_side, limits)
}

/// The rest of [`decode_jpeg_scaled`], once the decoder has read the header; `bytes` are the
/// whole file when the caller has them (a progressive JPEG decoded at 1/8 is cut to its DC scans
/// first).
fn decode_jpeg_header_read<R: Read + Send>(
    decoder: jpeg_decoder::Decoder<R>,
    bytes: Option<&[u8]>,
    long_side: u32,
    limits: &Limits,
) -> Result<Decoded, RenderError> {
    let info = decoder.info().ok_or_else(|| RenderError::Corrupt("no frame header".into()))?;
    check_pixels(info.width.into(), info.height.into(), limits)?;
    // A progressive JPEG keeps every DCT coefficient until its last scan, two bytes a sample, even
    // when it is decoded small.
    if info.coding_process == CodingProcess::DctProgressive {
        let samples = u64::from(info.width) * u64::from(info.height) * info.pixel_format.pixel_bytes() as u64;
        if 2 * samples > limits.max_decode_bytes {
            return Err(RenderError::TooLarge {
                what: format!("{} bytes of progressive JPEG coefficients", 2 * samples),
                limit: limits.max_decode_bytes,
            });
        }
    }
    let icc = decoder.icc_profile();
    // At 1/8 each 8x8 block becomes one pixel, its DC coefficient: a progressive JPEG's AC scans
    // (most of its bytes and of its decoding time) change nothing in that picture, so they are
    // left out before decoding. The same pixels in a fraction of the time.
    let dc_only = (info.coding_process == CodingProcess::DctProgressive
        && idct_scale(info.width.max(info.height).into(), long_side) == 8)
        .then(|| bytes.and_then(dc_scans_only))
        .flatten();
    match &dc_only {
        Some(stream) => {
            let mut cut = jpeg_decoder::Decoder::new(&stream[..]);
            cut.read_info().map_err(jpeg_error)?;
            decode_jpeg_pixels(cut, icc, &info, long_side, limits)
        }
        None => decode_jpeg_pixels(decoder, icc, &info, long_side, limits),
    }
}

/// The pixels of a JPEG whose header `info` the decoder has read, scaled for `long_side`.
fn decode_jpeg_pixels<R: Read + Send>(
    mut decoder: jpeg_decoder::Decoder<R>,
    icc: Option<Vec<u8>>,
    info: &jpeg_decoder::ImageInfo,
    long_side: u32,
    limits: &Limits,
) -> Result<Decoded, RenderError> {
    // The decoder picks the smallest scale at which either side reaches the size asked for; with a
    // square, the long side reaches it first. Lossless JPEG has no DCT to scale in: jpeg-decoder
    // would report the scaled size but return every pixel.
    if info.coding_process != CodingProcess::Lossless {
        let side = u16::try_from(long_side).unwrap_or(u16::MAX);
        decoder.scale(side, side).map_err(jpeg_error)?;
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_decode_bytes).unwrap_or(usize::MAX));
    // jpeg-decoder hands each colour component of an image wider than 128 px to a thread of its
    // own and sends it every row through a channel: about 10 % more CPU than decoding in one
    // thread (measured: 70 -> 64 CPU ms a 12 MP photo, one core), and no faster on two cores. Its
    // rayon worker is the only other choice it offers; inside a one-thread pool that worker's
    // "parallel" rows all run on that one thread, so the decode is a plain sequential one. The
    // pool is the calling thread's, kept for its next decode instead of a new thread each time.
    thread_local! {
        static POOL: std::cell::OnceCell<Result<rayon::ThreadPool, String>> = const { std::cell::OnceCell::new() };
    }
    let data = POOL.with(|pool| {
        let pool = pool.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(|_| "spis-jpeg".into())
                .build()
                .map_err(|e| e.to_string())
        });
        match pool {
            Ok(pool) => pool.install(|| decoder.decode()).map_err(jpeg_error),
            Err(e) => Err(RenderError::Corrupt(format!("cannot start the decode thread: {e}"))),
        }
    })?;
    let info = decoder.info().ok_or_else(|| RenderError::Corrupt("no frame header".into()))?;
    let (width, height) = (info.width.into(), info.height.into());
    let image = match info.pixel_format {
        PixelFormat::L8 => Pixels::try_new(width, height, Layout::Gray, data)?,
        PixelFormat::L16 => Pixels::try_new(width, height, Layout::Gray, gray16_to_gray8(&data))?,
        PixelFormat::RGB24 => Pixels::try_new(width, height, Layout::Rgb, data)?,
        PixelFormat::CMYK32 => Pixels::try_new(width, height, Layout::Rgb, cmyk_to_rgb(&data))?,
    };
    Ok(Decoded { image, icc })
}

/// How many times smaller jpeg-decoder decodes a DCT JPEG whose long side is `long` for a target
/// of `long_side`: the largest of 8, 4, 2 and 1 that keeps the long side at least `long_side`.
fn idct_scale(long: u64, long_side: u32) -> u64 {
    let mut denominator = 8;
    while denominator > 1 && long.div_ceil(denominator) < u64::from(long_side) {
        denominator /= 2;
    }
    denominator
}

/// A progressive JPEG with only its DC scans (spectral selection starting at 0): every other
/// segment as it was, then EOI. None when the stream does not parse to its end; the caller then
/// decodes it whole, as before.
fn dc_scans_only(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4);
    out.extend_from_slice(&bytes[..2]);
    let mut at = 2;
    loop {
        // A marker, after any fill bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (&0xFF, &marker) = (bytes.get(at)?, bytes.get(at + 1)?) else { return None };
        if marker == 0xD9 {
            out.extend_from_slice(&[0xFF, 0xD9]);
            return Some(out);
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]));
        let header = bytes.get(at..at + 2 + len)?;
        let mut end = at + 2 + len;
        let keep = if marker == 0xDA {
            // SOS: Ns, then Ns (component, tables) pairs, then Ss. The entropy-coded data runs
            // to the next marker that is neither a stuffed 0xFF00 nor a restart marker.
            let ns = usize::from(*header.get(4)?);
            let ss = *header.get(5 + 2 * ns)?;
            loop {
                let i = end + bytes.get(end..)?.iter().position(|&b| b == 0xFF)?;
                match *bytes.get(i + 1)? {
                    0x00 | 0xD0..=0xD7 => end = i + 2,
                    _ => {
                        end = i;
                        break;
                    }
                }
            }
            ss == 0
        } else {
            true
        };
        if keep {
            out.extend_from_slice(&bytes[at..end]);
        }
        at = end;
    }
}

/// 9- to 16-bit grey (lossless JPEG, native-endian) to 8 bits. The decoder does not say how many
/// bits the samples have (often 12 in a 16-bit container), so the brightest sample decides: keeping
/// its top 8 bits keeps such an image from coming out black.
fn gray16_to_gray8(samples: &[u8]) -> Vec<u8> {
    let samples: Vec<u16> = samples.chunks_exact(2).map(|s| u16::from_ne_bytes([s[0], s[1]])).collect();
    let bits = 16 - samples.iter().max().map_or(0, |max| max.leading_zeros());
    let shift = bits.saturating_sub(8);
    samples.iter().map(|&s| (s >> shift) as u8).collect()
}

/// CMYK as jpeg-decoder gives it (ink amounts: it has already undone the inversion that Adobe
/// APP14 files, Photoshop's among them, are stored with, and the YCCK transform) to RGB, without
/// colour management: the same naive formula browsers use when they ignore the profile.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let ink = |c: u8, k: u8| ((255 - u32::from(c)) * (255 - u32::from(k)) / 255) as u8;
    cmyk.chunks_exact(4).flat_map(|p| [ink(p[0], p[3]), ink(p[1], p[3]), ink(p[2], p[3])]).collect()
}

/// The general path: the `image` crate decodes the whole image (the first frame of an animation).
fn decode_whole(bytes: &[u8], format: ImageFormat, limits: &Limits) -> Result<Decoded, RenderError> {
    let failed = |e: ImageError| match e {
        ImageError::Limits(e) => {
            RenderError::TooLarge { what: e.to_string(), limit: limits.max_decode_bytes }
        }
        ImageError::Unsupported(_) => RenderError::Unsupported(variant_name(format)),
        e => RenderError::Corrupt(e.to_string()),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = image::Limits::default();
    // No side can be longer than the pixel limit; the product is checked once the header is read.
    let max_side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    image_limits.max_image_width = Some(max_side);
    image_limits.max_image_height = Some(max_side);
    image_limits.max_alloc = Some(limits.max_decode_bytes);
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(failed)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limits)?;
    if decoder.total_bytes() > limits.max_decode_bytes {
        return Err(RenderError::TooLarge {
            what: format!("{} bytes of pixels", decoder.total_bytes()),
            limit: limits.max_decode_bytes,
        });
    }
    // A broken profile costs the profile, not the picture.
    let icc = decoder.icc_profile().ok().flatten();
    let decoded = DynamicImage::from_decoder(decoder).map_err(failed)?;
    let color = decoded.color();
    let image = match (color.has_color(), color.has_alpha()) {
        (false, false) => Pixels::try_new(width, height, Layout::Gray, decoded.into_luma8().into_raw())?,
        (false, true) => {
            let gray = flatten_alpha(&decoded.into_luma_alpha8().into_raw(), 2);
            Pixels::try_new(width, height, Layout::Gray, gray)?
        }
        (true, false) => Pixels::try_new(width, height, Layout::Rgb, decoded.into_rgb8().into_raw())?,
        (true, true) => {
            let rgb = flatten_alpha(&decoded.into_rgba8().into_raw(), 4);
            Pixels::try_new(width, height, Layout::Rgb, rgb)?
        }
    };
    Ok(Decoded { image, icc })
}

fn variant_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG variant",
        ImageFormat::Png => "PNG variant",
        ImageFormat::Gif => "GIF variant",
        ImageFormat::WebP => "WebP variant",
        ImageFormat::Tiff => "TIFF variant",
        ImageFormat::Bmp => "BMP variant",
        _ => "image variant",
    }
}

/// Composites pixels whose last channel is alpha over [`BACKGROUND`], dropping the alpha.
///
/// Done before resizing, which gives the same result as resizing with premultiplied alpha and
/// compositing after, since both steps are linear.
fn flatten_alpha(pixels: &[u8], channels: usize) -> Vec<u8> {
    pixels
        .chunks_exact(channels)
        .flat_map(|p| {
            let (color, alpha) = p.split_at(channels - 1);
            let alpha = u32::from(alpha[0]);
            color.iter().map(move |&c| {
                ((u32::from(c) * alpha + u32::from(BACKGROUND) * (255 - alpha) + 127) / 255) as u8
            })
        })
        .collect()
}

/// Whether an ICC profile is worth copying: small, not sRGB, and describing the pixels we encode (a
/// CMYK profile does not describe the RGB we made of CMYK).
fn profile_fits(profile: &[u8], layout: Layout) -> bool {
    // The profile header's data colour space, at bytes 16..20.
    let space: &[u8] = match layout {
        Layout::Gray => b"GRAY",
        Layout::Rgb => b"RGB ",
    };
    // The description of sRGB profiles names it ("sRGB IEC61966-2.1", "Nikon sRGB 4.0.0.3000").
    let srgb = profile.windows(4).any(|w| w == b"sRGB");
    profile.len() <= MAX_ICC_BYTES && profile.get(16..20) == Some(space) && !srgb
}

fn encode(image: &Pixels, quality: u8, icc: Option<&[u8]>) -> Result<Rendered, RenderError> {
    let failed = |e: &dyn std::fmt::Display| RenderError::Corrupt(format!("encoding: {e}"));
    let side = |n: u32| u16::try_from(n).map_err(|e| failed(&e));
    let (width, height) = (side(image.width)?, side(image.height)?);
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, quality.clamp(1, 100));
    // 4:2:0, as phones write: colour at half resolution is invisible at these sizes. Optimised
    // Huffman tables would save 3-4% of the bytes for as much time; progressive files come out
    // larger from this encoder. Both stay off.
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    if let Some(profile) = icc {
        encoder.add_icc_profile(profile).map_err(|e| failed(&e))?;
    }
    let color = match image.layout {
        Layout::Gray => ColorType::Luma,
        Layout::Rgb => ColorType::Rgb,
    };
    encoder.encode(&image.data, width, height, color).map_err(|e| failed(&e))?;
    Ok(Rendered { jpeg, width: image.width, height: image.height })
}

fn encode_png(image: &Pixels) -> Result<Rendered, RenderError> {
    use image::ImageEncoder as _;
    let mut png = Vec::new();
    let color = match image.layout {
        Layout::Gray => image::ExtendedColorType::L8,
        Layout::Rgb => image::ExtendedColorType::Rgb8,
    };
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&image.data, image.width, image.height, color)
        .map_err(|e| RenderError::Corrupt(format!("encoding PNG: {e}")))?;
    Ok(Rendered { jpeg: png, width: image.width, height: image.height })
}

/// One AVIF, 8-bit 4:4:4 (ravif always keeps full-resolution colour), on the calling thread
/// only: the caller's decode slot is its share of the cores. An embedded ICC profile is not
/// carried: ravif writes the sRGB colour description, which is what a wide-gamut photo's
/// thumbnail is then shown as.
fn encode_avif(image: &Pixels, jpeg_quality: u8) -> Result<Rendered, RenderError> {
    let (width, height) = (image.width as usize, image.height as usize);
    let rgb: Vec<ravif::RGB8> = match image.layout {
        Layout::Gray => image.data.iter().map(|&g| ravif::RGB8::new(g, g, g)).collect(),
        Layout::Rgb => image.data.chunks_exact(3).map(|p| ravif::RGB8::new(p[0], p[1], p[2])).collect(),
    };
    let encoded = ravif::Encoder::new()
        .with_quality(avif_quality(jpeg_quality))
        .with_speed(AVIF_SPEED)
        .with_bit_depth(ravif::BitDepth::Eight)
        .with_num_threads(Some(1))
        .encode_rgb(ravif::Img::new(&rgb[..], width, height))
        .map_err(|e| RenderError::Corrupt(format!("encoding AVIF: {e}")))?;
    Ok(Rendered { jpeg: encoded.avif_file, width: image.width, height: image.height })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

    fn corpus(path: &str) -> Vec<u8> {
        std::fs::read(Path::new(CORPUS).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn render_to(
        bytes: &[u8],
        format: Format,
        orientation: u8,
        long_side: u32,
    ) -> Result<Rendered, RenderError> {
        let targets = [Target { long_side }];
        let mut renditions = render(
            Input::Bytes(bytes.to_vec()),
            format,
            orientation,
            &targets,
            80,
            &Limits::sane_defaults(),
        )?;
        Ok(renditions.outputs.remove(0))
    }

    /// One of our JPEGs read back (by the `image` crate, so not by the decoder that made it).
    fn rgb_of(rendered: &Rendered) -> RgbImage {
        let image =
            image::load_from_memory_with_format(&rendered.jpeg, ImageFormat::Jpeg).expect("our own JPEG");
        assert_eq!((image.width(), image.height()), (rendered.width, rendered.height));
        image.into_rgb8()
    }

    fn mean_rgb(image: &RgbImage) -> [f64; 3] {
        let mut sum = [0.0; 3];
        for pixel in image.pixels() {
            for (s, &c) in sum.iter_mut().zip(&pixel.0) {
                *s += f64::from(c);
            }
        }
        sum.map(|s| s / f64::from(image.width() * image.height()))
    }

    fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
        total as f64 / a.as_raw().len() as f64
    }

    fn assert_close(what: &str, got: [f64; 3], want: [f64; 3], tolerance: f64) {
        let off = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
        assert!(off <= tolerance, "{what}: mean colour {got:.1?}, expected {want:.1?} (off by {off:.1})");
    }

    /// Whether one of our JPEGs has a single (grey) channel.
    fn is_one_channel(jpeg: &[u8]) -> bool {
        let mut decoder = jpeg_decoder::Decoder::new(jpeg);
        decoder.read_info().unwrap();
        decoder.info().unwrap().pixel_format == PixelFormat::L8
    }

    /// The ICC profile embedded in a JPEG, if any.
    fn profile_of(jpeg: &[u8]) -> Option<Vec<u8>> {
        let mut decoder = jpeg_decoder::Decoder::new(jpeg);
        decoder.read_info().unwrap();
        decoder.icc_profile()
    }

    fn png_of(image: impl Into<DynamicImage>) -> Vec<u8> {
        let mut png = Cursor::new(Vec::new());
        image.into().write_to(&mut png, ImageFormat::Png).unwrap();
        png.into_inner()
    }

    /// The EXIF definition of each orientation, made of plain mirror and quarter-turn steps.
    fn reference_orientation(rows: Vec<Vec<u8>>, orientation: u8) -> Vec<Vec<u8>> {
        let mirror = |rows: Vec<Vec<u8>>| rows.into_iter().map(|r| r.into_iter().rev().collect()).collect();
        let flip = |rows: Vec<Vec<u8>>| rows.into_iter().rev().collect();
        let turn_clockwise = |rows: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
            (0..rows[0].len()).map(|x| rows.iter().rev().map(|row| row[x]).collect()).collect()
        };
        match orientation {
            1 => rows,
            2 => mirror(rows),
            3 => turn_clockwise(turn_clockwise(rows)),
            4 => flip(rows),
            5 => mirror(turn_clockwise(rows)),
            6 => turn_clockwise(rows),
            7 => flip(turn_clockwise(rows)),
            8 => turn_clockwise(turn_clockwise(turn_clockwise(rows))),
            _ => unreachable!(),
        }
    }

    /// jpeg-decoder's own picture of a JPEG at the scale it picks for `long_side`.
    fn decode_at(bytes: &[u8], long_side: u16) -> (u16, u16, Vec<u8>) {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        let (w, h) = decoder.scale(long_side, long_side).unwrap();
        (w, h, decoder.decode().unwrap())
    }

    #[test]
    fn progressive_thumbnails_skip_the_ac_scans_with_the_same_pixels() {
        for path in [
            "debian-lomiri-wallpapers-16.04/backgrounds/Dragonfly_by_Bolly.jpg",
            "debian-lomiri-wallpapers-16.04/backgrounds/seeding_by_Clements_Engelhardt.jpg",
            "image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-progressive.jpg",
        ] {
            let photo = corpus(path);
            let stream = dc_scans_only(&photo).unwrap_or_else(|| panic!("{path}: did not parse"));
            // (The small one is mostly its headers.)
            assert!(
                photo.len() < 100_000 || stream.len() * 3 < photo.len(),
                "{path}: {} of {} bytes kept",
                stream.len(),
                photo.len()
            );
            let (w, h, _) = decode_at(&photo, u16::MAX);
            let side = (w.max(h) / 8).max(1);
            assert_eq!(decode_at(&stream, side), decode_at(&photo, side), "{path}");
            // And what render decodes at that size is that picture.
            let limits = Limits::default();
            let decoded = decode_jpeg_scaled(&photo, side.into(), &limits).unwrap();
            assert_eq!(decoded.image.data, decode_at(&photo, side).2, "{path}");
        }
        // A cut stream is refused; a garbled one is answered somehow, never with a panic.
        let photo = corpus("debian-lomiri-wallpapers-16.04/backgrounds/Dragonfly_by_Bolly.jpg");
        for cut in (0..photo.len()).step_by(997) {
            assert!(dc_scans_only(&photo[..cut]).is_none(), "cut at {cut}");
        }
        let mut garbled = photo.clone();
        for i in (4..garbled.len()).step_by(311) {
            garbled[i] = 0xFF;
        }
        let _ = dc_scans_only(&garbled);
    }

    #[test]
    fn resizing_in_bands_gives_the_whole_image_resize() {
        // A camera photo at the 1/2 scale of its 1600 px preview, and a gray picture whose
        // height is no multiple of the band (the last band is short) nor of the target's.
        let photo = corpus("drewnoakes-metadata-extractor-images/jpg/Canon EOS 1000D.jpg");
        let (w, h, rgb) = decode_at(&photo, 1600);
        let gray: Vec<u8> = (0..777u32 * 1001).map(|i| (i * 7 % 251) as u8).collect();
        for (width, height, layout, data, long) in [
            (u32::from(w), u32::from(h), Layout::Rgb, rgb, 1600),
            (777, 1001, Layout::Gray, gray.clone(), 400),
            (777, 1001, Layout::Gray, gray, 1000),
        ] {
            let pixel_type = if layout == Layout::Rgb { PixelType::U8x3 } else { PixelType::U8 };
            let (tw, th) = fitted_size(width, height, long);
            assert!(th > RESIZE_BAND_ROWS, "{width}x{height}: more than one band");
            let source = Image::from_vec_u8(width, height, data.clone(), pixel_type).unwrap();
            let mut whole = Image::new(tw, th, pixel_type);
            let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FILTER));
            Resizer::new().resize(&source, &mut whole, &options).unwrap();
            let banded = Pixels { width, height, layout, data }.fit(long, &mut Resizer::new()).unwrap();
            assert_eq!((banded.width, banded.height), (tw, th));
            let whole = whole.into_vec();
            let worst = whole.iter().zip(&banded.data).map(|(a, b)| a.abs_diff(*b)).max();
            assert_eq!(worst, Some(0), "{width}x{height} -> {tw}x{th}");
        }
    }

    #[test]
    fn estimates_follow_the_scale_the_decoder_picks() {
        // Canon EOS 1000D: 3888x2592 baseline. The 1600 px preview decodes at 1/2 (1944x1296),
        // a 400 px thumbnail alone at 1/8 (486x324).
        let photo = corpus("drewnoakes-metadata-extractor-images/jpg/Canon EOS 1000D.jpg");
        let preview = estimate_bytes(&photo, Format::Jpeg, 1600);
        assert_eq!(preview, 2 * 1944 * 1296 * 3 + 1600 * 1067 * 3);
        assert_eq!(estimate_bytes(&photo, Format::Jpeg, 400), 2 * 486 * 324 * 3 + 400 * 267 * 3);
        // Progressive: every coefficient at full size on top.
        let progressive = corpus("image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-progressive.jpg");
        let mut decoder = jpeg_decoder::Decoder::new(&progressive[..]);
        decoder.read_info().unwrap();
        let info = decoder.info().unwrap();
        let (w, h) = (u64::from(info.width), u64::from(info.height));
        assert!(estimate_bytes(&progressive, Format::Jpeg, 1600) >= 2 * w * h * 3);
        // No usable header: nothing to reserve beyond the file.
        assert_eq!(estimate_bytes(b"not a picture", Format::Png, 400), 0);
        assert_eq!(estimate_bytes(b"\xff\xd8 broken", Format::Jpeg, 400), 0);
    }

    #[test]
    fn resize_fills_or_fits_the_box_and_never_enlarges() {
        let bytes = corpus("recurser-exif-orientation-examples/Landscape_6.jpg");
        let shown = Some((1800, 1200));
        let limits = Limits::sane_defaults();
        let r = |w, h, fit, enc| {
            resize(Input::Bytes(bytes.clone()), Format::Jpeg, 6, shown, (w, h), fit, enc, 80, &limits)
                .unwrap()
        };
        let cover = r(300, 300, Fit::Cover, Encoding::Jpeg);
        assert_eq!((cover.width, cover.height), (300, 300));
        let contain = r(300, 300, Fit::Contain, Encoding::Jpeg);
        assert_eq!((contain.width, contain.height), (300, 200));
        let png = r(90, 40, Fit::Cover, Encoding::Png);
        assert_eq!((png.width, png.height), (90, 40));
        assert!(png.jpeg.starts_with(b"\x89PNG"));
        // An odd-sized, upright AVIF: an ISO BMFF file of the avif brand (decoded by libheif in
        // tests/integration/img.rs).
        let avif = r(91, 41, Fit::Cover, Encoding::Avif);
        assert_eq!((avif.width, avif.height), (91, 41));
        assert_eq!(&avif.jpeg[4..12], b"ftypavif");
        let big = r(4000, 4000, Fit::Contain, Encoding::Jpeg);
        assert_eq!((big.width, big.height), (1800, 1200), "never enlarged");
        // The same upright picture as the landscape reference, cut the same way.
        let upright = "recurser-exif-orientation-examples/Landscape_1.jpg";
        let cut = |input| {
            resize(input, Format::Jpeg, 1, shown, (300, 300), Fit::Cover, Encoding::Jpeg, 80, &limits)
                .unwrap()
        };
        let reference = cut(Input::Bytes(corpus(upright)));
        assert!(mean_abs_diff(&rgb_of(&cover), &rgb_of(&reference)) < 10.0);
        // Read from the open file (as /img and /resize do), the same bytes out.
        let from_file = cut(Input::Jpeg(std::fs::File::open(Path::new(CORPUS).join(upright)).unwrap()));
        assert_eq!(from_file.jpeg, reference.jpeg);
    }

    #[test]
    fn every_exif_orientation_matches_its_reference_transform() {
        // 3x2, every pixel different, so any wrong mirror or turn shows.
        let rows: Vec<Vec<u8>> = vec![vec![0, 1, 2], vec![3, 4, 5]];
        for orientation in 1..=8 {
            let want = reference_orientation(rows.clone(), orientation);
            let (want_w, want_h) = (want[0].len() as u32, want.len() as u32);

            let gray = Pixels::try_new(3, 2, Layout::Gray, rows.concat()).unwrap().orient(orientation);
            assert_eq!((gray.width, gray.height), (want_w, want_h), "orientation {orientation}");
            assert_eq!(gray.data, want.concat(), "grey, orientation {orientation}");

            // The same walk with three bytes per pixel: pixel v is [v, v + 10, v + 20].
            let rgb_of = |v: &u8| [*v, v + 10, v + 20];
            let rgb = rows.concat().iter().flat_map(rgb_of).collect();
            let rgb = Pixels::try_new(3, 2, Layout::Rgb, rgb).unwrap().orient(orientation);
            assert_eq!(
                rgb.data,
                want.concat().iter().flat_map(rgb_of).collect::<Vec<_>>(),
                "RGB, {orientation}"
            );
        }
    }

    #[test]
    fn unknown_orientation_values_leave_the_image_as_stored() {
        for orientation in [0, 9, 255] {
            let image =
                Pixels::try_new(3, 2, Layout::Gray, vec![0, 1, 2, 3, 4, 5]).unwrap().orient(orientation);
            assert_eq!((image.width, image.height, image.data), (3, 2, vec![0, 1, 2, 3, 4, 5]));
        }
    }

    const ORIENTATION_DIR: &str = "recurser-exif-orientation-examples";

    #[test]
    fn exif_orientation_examples_all_render_upright() {
        for shape in ["Landscape", "Portrait"] {
            let upright = rgb_of(
                &render_to(&corpus(&format!("{ORIENTATION_DIR}/{shape}_1.jpg")), Format::Jpeg, 1, 96)
                    .unwrap(),
            );
            for orientation in 0..=8 {
                let bytes = corpus(&format!("{ORIENTATION_DIR}/{shape}_{orientation}.jpg"));
                let rendered = rgb_of(&render_to(&bytes, Format::Jpeg, orientation, 96).unwrap());
                assert_eq!(rendered.dimensions(), upright.dimensions(), "{shape}_{orientation}");
                let diff = mean_abs_diff(&rendered, &upright);
                assert!(diff < 8.0, "{shape}_{orientation} differs from upright by {diff:.1}");
            }
            // The check can fail: a file rendered without its orientation is far from upright.
            let stored = rgb_of(
                &render_to(&corpus(&format!("{ORIENTATION_DIR}/{shape}_3.jpg")), Format::Jpeg, 1, 96)
                    .unwrap(),
            );
            assert!(mean_abs_diff(&stored, &upright) > 30.0, "{shape}_3 looks the same upside down");
        }
    }

    #[test]
    fn cmyk_and_ycck_jpegs_have_the_colours_of_a_reference_decode() {
        // Photoshop writes inverted CMYK with an Adobe APP14 marker, sometimes as YCCK; read the
        // wrong way round, a picture comes out as its negative, far off these means.
        for path in [
            "python-pillow-Pillow/Tests/images/pil_sample_cmyk.jpg",
            "image-rs-jpeg-decoder/tests/reftest/images/ycck.jpg",
            "image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-cmyk-1.jpg",
            "image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-cmyk-2.jpg",
            "drewnoakes-metadata-extractor-images/jpg/Multiple ICC segments.jpg",
        ] {
            let bytes = corpus(path);
            let ours = mean_rgb(&rgb_of(&render_to(&bytes, Format::Jpeg, 1, 4096).unwrap()));
            let reference = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).unwrap();
            assert_close(path, ours, mean_rgb(&reference.into_rgb8()), 6.0);
        }
        // And against the same pictures saved as RGB.
        for (cmyk, rgb) in [
            (
                "python-pillow-Pillow/Tests/images/pil_sample_cmyk.jpg",
                "python-pillow-Pillow/Tests/images/pil_sample_rgb.jpg",
            ),
            (
                "image-rs-jpeg-decoder/tests/reftest/images/ycck.jpg",
                "image-rs-jpeg-decoder/tests/reftest/images/rgb.jpg",
            ),
        ] {
            let ours = mean_rgb(&rgb_of(&render_to(&corpus(cmyk), Format::Jpeg, 1, 4096).unwrap()));
            let reference = mean_rgb(&rgb_of(&render_to(&corpus(rgb), Format::Jpeg, 1, 4096).unwrap()));
            assert_close(cmyk, ours, reference, 6.0);
        }
    }

    #[test]
    fn grayscale_stays_a_one_channel_gray_jpeg() {
        let cases = [
            ("python-pillow-Pillow/Tests/images/hopper_gray.jpg", Format::Jpeg),
            ("drewnoakes-metadata-extractor-images/png/PngSuite/basn0g16.png", Format::Png),
            ("drewnoakes-metadata-extractor-images/png/PngSuite/basn4a08.png", Format::Png), // grey + alpha
        ];
        for (path, format) in cases {
            let rendered = render_to(&corpus(path), format, 6, 64).unwrap();
            assert!(is_one_channel(&rendered.jpeg), "{path} became colour");
        }
        let colour =
            render_to(&corpus("python-pillow-Pillow/Tests/images/hopper.jpg"), Format::Jpeg, 1, 64).unwrap();
        assert!(!is_one_channel(&colour.jpeg));
    }

    #[test]
    fn sixteen_bit_and_palette_pngs_keep_their_colours() {
        for path in [
            "drewnoakes-metadata-extractor-images/png/PngSuite/basi2c16.png", // 16-bit RGB, interlaced
            "drewnoakes-metadata-extractor-images/png/PngSuite/oi1n2c16.png", // 16-bit RGB
            "drewnoakes-metadata-extractor-images/png/PngSuite/basn3p08.png", // 8-bit palette
            "drewnoakes-metadata-extractor-images/png/PngSuite/s39n3p04.png", // 4-bit palette
            "drewnoakes-metadata-extractor-images/png/photoshop-8x12-16colorpalette.png",
        ] {
            let bytes = corpus(path);
            let ours = mean_rgb(&rgb_of(&render_to(&bytes, Format::Png, 1, 4096).unwrap()));
            let reference = image::load_from_memory_with_format(&bytes, ImageFormat::Png).unwrap();
            assert_close(path, ours, mean_rgb(&reference.into_rgb8()), 8.0);
        }
    }

    #[test]
    fn transparent_pixels_show_the_grey_background() {
        // Left half transparent red, right half opaque blue, bottom row half-transparent white.
        let image = RgbaImage::from_fn(32, 32, |x, y| match (x, y) {
            (_, 24..) => Rgba([255, 255, 255, 128]),
            (..16, _) => Rgba([255, 0, 0, 0]),
            _ => Rgba([0, 0, 255, 255]),
        });
        let rendered = rgb_of(&render_to(&png_of(image), Format::Png, 1, 32).unwrap());
        let near = |(x, y): (u32, u32), want: [u8; 3]| {
            let got = rendered.get_pixel(x, y).0;
            let off = got.iter().zip(want).map(|(&g, w)| g.abs_diff(w)).max().unwrap_or(0);
            assert!(off <= 12, "pixel ({x}, {y}) is {got:?}, expected about {want:?}");
        };
        near((4, 8), [128; 3]);
        near((28, 8), [0, 0, 255]);
        near((16, 29), [191; 3]); // (255 * 128 + 128 * 127) / 255

        let gray = image::GrayAlphaImage::from_fn(16, 16, |_, _| image::LumaA([0, 0]));
        let rendered = render_to(&png_of(gray), Format::Png, 1, 16).unwrap();
        assert!(is_one_channel(&rendered.jpeg));
        assert_close("transparent grey", mean_rgb(&rgb_of(&rendered)), [128.0; 3], 2.0);
    }

    #[test]
    fn wide_gamut_profiles_are_kept_and_srgb_ones_left_out() {
        for path in [
            "drewnoakes-metadata-extractor-images/jpg/Canon EOS 7D.jpg",
            "pypi-scikit-image-0.26.0/skimage/data/rocket.jpg",
        ] {
            let bytes = corpus(path);
            let rendered = render_to(&bytes, Format::Jpeg, 1, 64).unwrap();
            let profile = profile_of(&rendered.jpeg).unwrap_or_else(|| panic!("{path} lost its profile"));
            assert_eq!(Some(profile), profile_of(&bytes), "{path}");
        }
        for path in [
            "python-pillow-Pillow/Tests/images/pil_sample_rgb.jpg", // sRGB
            "python-pillow-Pillow/Tests/images/icc_profile_big.jpg", // 390 KiB
            "image-rs-jpeg-decoder/tests/reftest/images/ycck.jpg",  // CMYK
        ] {
            let rendered = render_to(&corpus(path), Format::Jpeg, 1, 64).unwrap();
            assert_eq!(profile_of(&rendered.jpeg), None, "{path}");
        }
    }

    #[test]
    fn animated_gif_renders_its_first_frame() {
        let frame = |colour: [u8; 4]| image::Frame::new(RgbaImage::from_pixel(24, 16, Rgba(colour)));
        let mut gif = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut gif)
            .encode_frames([frame([255, 0, 0, 255]), frame([0, 0, 255, 255])])
            .unwrap();
        let first = rgb_of(&render_to(&gif, Format::Gif, 1, 400).unwrap());
        assert_eq!(first.dimensions(), (24, 16));
        assert_close("first frame", mean_rgb(&first), [255.0, 0.0, 0.0], 12.0);

        // A real animated GIF and an animated WebP from the corpus render too.
        let gif =
            "drewnoakes-metadata-extractor-images/gif/ImageTestSuite/243d9798466d64aba0acaa41f980bea6.gif";
        assert_eq!(render_to(&corpus(gif), Format::Gif, 1, 400).unwrap().width, 192);
        let webp = "python-pillow-Pillow/Tests/images/iss634.webp";
        assert_eq!(render_to(&corpus(webp), Format::Webp, 1, 400).unwrap().width, 245);
    }

    #[test]
    fn outputs_follow_the_targets_order_and_never_enlarge() {
        let png = png_of(RgbImage::from_fn(100, 50, |x, _| Rgb([(x * 2) as u8, 100, 50])));
        let targets = [50, 400, 20].map(|long_side| Target { long_side });
        let renditions =
            render(Input::Bytes(png.clone()), Format::Png, 6, &targets, 80, &Limits::sane_defaults())
                .unwrap();
        let sizes: Vec<_> = renditions.outputs.iter().map(|o| (o.width, o.height)).collect();
        // Turned a quarter by orientation 6, so portrait.
        assert_eq!(sizes, [(25, 50), (50, 100), (10, 20)]);
        let aspect = thumbhash::thumb_hash_to_approximate_aspect_ratio(&renditions.thumbhash).unwrap();
        assert!((aspect - 0.5).abs() < 0.1, "thumbhash aspect {aspect}");
    }

    #[test]
    fn truncated_jpegs_render_what_is_there_or_are_corrupt() {
        let whole = corpus("drewnoakes-metadata-extractor-images/jpg/Olympus C3030Z.jpg");
        let mut rendered = 0;
        for percent in [1, 5, 20, 50, 80, 99] {
            match render_to(&whole[..whole.len() * percent / 100], Format::Jpeg, 1, 400) {
                Ok(_) => rendered += 1,
                Err(RenderError::Corrupt(_)) => {}
                Err(e) => panic!("{percent}% of a JPEG: {e}"),
            }
        }
        assert!(rendered >= 3, "only {rendered} of the cut JPEGs gave a picture");
        // Files from cameras and tools that lost their end.
        for path in [
            "python-pillow-Pillow/Tests/images/truncated_jpeg.jpg",
            "drewnoakes-metadata-extractor-images/jpg/FujiFilm SP-2500.jpg",
            "drewnoakes-metadata-extractor-images/jpg/Olympus C2040Z.jpg",
        ] {
            render_to(&corpus(path), Format::Jpeg, 1, 400).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }

    /// A PNG chunk: length, type, data, CRC-32 of type and data.
    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut crc = !0u32;
        for &byte in kind.iter().chain(data) {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        [&(data.len() as u32).to_be_bytes()[..], kind, data, &(!crc).to_be_bytes()].concat()
    }

    #[test]
    fn decompression_bombs_are_refused_from_the_header() {
        // A 100000x100000 RGBA PNG would need 40 GB; its file is under 100 bytes.
        let side = 100_000u32.to_be_bytes();
        let ihdr = [&side[..], &side, &[8, 6, 0, 0, 0]].concat();
        let png = [
            &b"\x89PNG\r\n\x1a\n"[..],
            &png_chunk(b"IHDR", &ihdr),
            &png_chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
            &png_chunk(b"IEND", &[]),
        ]
        .concat();
        // A 65500x65500 JPEG frame header: 4.3 gigapixels.
        let jpeg = [
            &b"\xFF\xD8\xFF\xC0\x00\x11\x08\xFF\xDC\xFF\xDC\x03"[..],
            b"\x01\x22\x00\x02\x11\x01\x03\x11\x01\xFF\xD9",
        ]
        .concat();
        for (bytes, format) in [(png, Format::Png), (jpeg, Format::Jpeg)] {
            let started = Instant::now();
            let result = render_to(&bytes, format, 1, 400);
            assert!(matches!(result, Err(RenderError::TooLarge { .. })), "{format:?}: {result:?}");
            assert!(
                started.elapsed() < Duration::from_millis(200),
                "{format:?} took {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn limits_refuse_big_files_and_images() {
        let png = png_of(RgbImage::from_pixel(100, 50, Rgb([1, 2, 3])));
        let tight = |f: fn(&mut Limits)| {
            let mut limits = Limits::sane_defaults();
            f(&mut limits);
            render(Input::Bytes(png.clone()), Format::Png, 1, &[Target { long_side: 10 }], 80, &limits)
        };
        assert!(matches!(tight(|l| l.max_file_bytes = 10), Err(RenderError::TooLarge { .. })));
        assert!(matches!(tight(|l| l.max_pixels = 4999), Err(RenderError::TooLarge { .. })));
        assert!(matches!(tight(|l| l.max_decode_bytes = 1000), Err(RenderError::TooLarge { .. })));
        assert!(tight(|l| l.max_pixels = 5000).is_ok());
    }

    #[test]
    fn heif_avif_and_video_are_unsupported_at_once() {
        let heic = corpus("strukturag-libheif/examples/example.heic");
        for format in [Format::Heif, Format::Avif, Format::Mp4, Format::Mov, Format::Webm, Format::Mkv] {
            let result = render_to(&heic, format, 1, 400);
            assert!(matches!(result, Err(RenderError::Unsupported(_))), "{format:?}: {result:?}");
        }
    }

    #[test]
    fn every_corpus_file_renders_or_fails_cleanly() {
        // Unoptimised, the decoders and the SIMD resizer are ten to a hundred times slower: a debug
        // build makes small thumbnails of the files up to 256 KiB, `cargo test --release` both
        // renditions of everything.
        let (targets, max_bytes, budget) = if cfg!(debug_assertions) {
            (&[Target { long_side: 256 }][..], 256 << 10, Duration::from_secs(20))
        } else {
            (&[Target { long_side: 1600 }, Target { long_side: 400 }][..], usize::MAX, Duration::from_secs(3))
        };
        let manifest = String::from_utf8(corpus("MANIFEST.tsv")).unwrap();
        let (mut tried, mut rendered, mut refused) = (0, 0, Vec::new());
        for row in manifest.lines().skip(1) {
            let fields: Vec<&str> = row.split('\t').collect();
            let (path, format, orientation, notes) = (fields[0], fields[3], fields[10], fields[15]);
            let format = match format {
                "JPEG" | "MPO" => Format::Jpeg,
                "PNG" | "APNG" => Format::Png,
                "GIF" => Format::Gif,
                "WEBP" | "Extended WEBP" => Format::Webp,
                "TIFF" => Format::Tiff,
                "BMP" => Format::Bmp,
                "HEIC" | "HEIF" => Format::Heif,
                "AVIF" => Format::Avif,
                // Unreadable to exiftool: go by the name, as the indexer would.
                _ => match path.rsplit('.').next() {
                    Some("png") => Format::Png,
                    Some("gif") => Format::Gif,
                    _ => Format::Jpeg,
                },
            };
            let bytes = corpus(path);
            if bytes.len() > max_bytes {
                continue;
            }
            tried += 1;
            let started = Instant::now();
            let orientation = orientation.parse().unwrap_or(1);
            let result = render(
                Input::Bytes(bytes.clone()),
                format,
                orientation,
                targets,
                80,
                &Limits::sane_defaults(),
            );
            assert!(started.elapsed() < budget, "{path} took {:?}", started.elapsed());
            if format == Format::Jpeg {
                // Read from the open file instead, as the background pass does: the same answer.
                let file = std::fs::File::open(Path::new(CORPUS).join(path)).unwrap();
                let from_file =
                    render(Input::Jpeg(file), format, orientation, targets, 80, &Limits::sane_defaults());
                match (&result, &from_file) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a.thumbhash, b.thumbhash, "{path}");
                        assert!(a.outputs.iter().zip(&b.outputs).all(|(a, b)| a.jpeg == b.jpeg), "{path}");
                    }
                    (Err(a), Err(b)) => {
                        assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b), "{path}: {a} / {b}")
                    }
                    (a, b) => panic!("{path}: from bytes {:?}, from the file {:?}", a.is_ok(), b.is_ok()),
                }
            }
            match result {
                Ok(renditions) => {
                    rendered += 1;
                    for (output, target) in renditions.outputs.iter().zip(targets) {
                        assert!(output.width.max(output.height) <= target.long_side, "{path}");
                        assert!(output.jpeg.starts_with(b"\xFF\xD8"), "{path}");
                    }
                }
                Err(RenderError::Unsupported(_)) if matches!(format, Format::Heif | Format::Avif) => {}
                Err(e) => refused.push((path, notes, e)),
            }
        }
        for (path, notes, e) in &refused {
            eprintln!("not rendered: {path} ({notes}): {e}");
        }
        // Damaged files may be refused, cleanly (ImageTestSuite holds fuzzed files); a file nothing
        // is known to be wrong with must render or be an unsupported variant.
        let damaged = |path: &str, notes: &str| {
            path.contains("/ImageTestSuite/")
                || ["error", "warning", "truncated"].iter().any(|n| notes.contains(n))
        };
        let unexpected: Vec<_> = refused
            .iter()
            .filter(|(path, notes, e)| !damaged(path, notes) && !matches!(e, RenderError::Unsupported(_)))
            .collect();
        assert!(unexpected.is_empty(), "sound files not rendered: {unexpected:?}");
        assert!(rendered * 3 >= tried * 2, "only {rendered} of {tried} files rendered");
    }
}
