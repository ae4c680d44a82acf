//! What a media file is: its [`Format`], and whether that makes it an image or a video.
//!
//! The index, the probe, the thumbnails and the HTTP answers all name formats with these types.
//! The rule: this module depends on nothing else in the crate, so any of them can use it without
//! depending on another. Recognising a format from a file's first bytes ([`Format::sniff`]) stays
//! with the header parsers in `library::probe`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Image,
    Video,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Tiff,
    Bmp,
    Heif,
    Avif,
    Mp4,
    Mov,
    Webm,
    Mkv,
}

impl Format {
    /// The format a file extension (any case, with or without the dot) claims.
    pub(crate) fn from_extension(ext: &str) -> Option<Format> {
        let ext = ext.strip_prefix('.').unwrap_or(ext).to_ascii_lowercase();
        Some(match ext.as_str() {
            // MPO (3D and some phone cameras) is a JPEG followed by more JPEGs.
            "jpg" | "jpeg" | "jpe" | "mpo" => Format::Jpeg,
            "png" => Format::Png,
            "gif" => Format::Gif,
            "webp" => Format::Webp,
            "tif" | "tiff" => Format::Tiff,
            "bmp" => Format::Bmp,
            "heic" | "heif" => Format::Heif,
            "avif" => Format::Avif,
            "mp4" | "m4v" => Format::Mp4,
            "mov" => Format::Mov,
            "webm" => Format::Webm,
            "mkv" => Format::Mkv,
            _ => return None,
        })
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Format::Mp4 | Format::Mov | Format::Webm | Format::Mkv => Kind::Video,
            _ => Kind::Image,
        }
    }

    pub(crate) fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Tiff => "image/tiff",
            Format::Bmp => "image/bmp",
            Format::Heif => "image/heic",
            Format::Avif => "image/avif",
            Format::Mp4 => "video/mp4",
            Format::Mov => "video/quicktime",
            Format::Webm => "video/webm",
            Format::Mkv => "video/x-matroska",
        }
    }
}
