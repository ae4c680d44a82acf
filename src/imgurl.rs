//! Signed image URLs for static sites, in imgproxy's spirit:
//! `/img/<signature>/<size>/<fit>/<path under the media folder>.<format>`.
//!
//! `<size>` is `w800`, `w800-h600`, either with `-e<unix seconds>` for an expiry; `<fit>` is
//! `contain` or `cover`; the path is the photo's own (percent-encoded as in any URL) followed by
//! the output format's extension (`Blog/2024/IMG_1.jpg.jpeg`): `.jpeg`, `.png`, `.avif`, or
//! `.auto` for AVIF to browsers that say they take it and JPEG to the rest (with `Vary: Accept`). The signature is HMAC-SHA256, with
//! a key of its own in the state dir, over the URL text after the signature, exactly as sent:
//! there is nothing to canonicalize. In the folder given by `public_dir` the signature may be `_`.
//!
//! The rule: a URL is served only when its signature is right (or it is public), it has not
//! expired, its size is one of `resize_sizes`, and its path is an indexed photo; everything
//! else is refused before any file is touched.

use std::path::Path;

use crate::thumbs::render::{Encoding, Fit};

/// The key file in the state dir (32 random bytes, made on first use, shared by replicas).
const KEY_FILE: &str = "url.key";
/// The signature of a URL in the public folder.
pub(crate) const PUBLIC: &str = "_";

/// The key that signs image URLs.
pub(crate) type UrlKey = crate::auth::SigningKey;

/// The state dir's image URL key, made when there is none.
pub(crate) fn load_key(state_dir: &Path) -> anyhow::Result<UrlKey> {
    UrlKey::load_or_make(&state_dir.join(KEY_FILE))
}

/// The encoding a URL or query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    Is(Encoding),
    /// AVIF where the `Accept` header names it, else JPEG.
    Auto,
}

impl Wanted {
    /// `jpeg` (or `jpg`), `png`, `avif` or `auto`; WebP is refused with the reason.
    pub(crate) fn parse(s: &[u8]) -> Result<Wanted, &'static str> {
        match s {
            b"jpeg" | b"jpg" => Ok(Wanted::Is(Encoding::Jpeg)),
            b"png" => Ok(Wanted::Is(Encoding::Png)),
            b"avif" => Ok(Wanted::Is(Encoding::Avif)),
            b"auto" => Ok(Wanted::Auto),
            b"webp" => Err("WebP is not made (no lossy WebP encoder in pure Rust): ask for avif or auto"),
            _ => Err("the format is jpeg, png, avif or auto"),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Wanted::Is(Encoding::Jpeg) => "jpeg",
            Wanted::Is(Encoding::Png) => "png",
            Wanted::Is(Encoding::Avif) => "avif",
            Wanted::Auto => "auto",
        }
    }

    /// The encoding to make, given whether the client takes AVIF.
    pub(crate) fn pick(self, takes_avif: bool) -> Encoding {
        match self {
            Wanted::Is(e) => e,
            Wanted::Auto if takes_avif => Encoding::Avif,
            Wanted::Auto => Encoding::Jpeg,
        }
    }
}

/// Whether an `Accept` header names `image/avif` with a quality above zero. Wildcards do not
/// count: `*/*` (curl, old browsers) gets JPEG.
pub(crate) fn accepts_avif(accept: &[u8]) -> bool {
    accept.split(|&b| b == b',').any(|range| {
        let mut parts = range.split(|&b| b == b';').map(<[u8]>::trim_ascii);
        let kind = parts.next().unwrap_or_default();
        let zero =
            parts.any(|p| p.strip_prefix(b"q=").is_some_and(|q| q.iter().all(|&b| b == b'0' || b == b'.')));
        kind.eq_ignore_ascii_case(b"image/avif") && !zero
    })
}

/// What an image URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImgRequest {
    pub width: u32,
    pub height: Option<u32>,
    /// Unix seconds after which the URL is refused.
    pub expires: Option<i64>,
    pub fit: Fit,
    pub wanted: Wanted,
    /// The photo: folder and name, decoded.
    pub dir: Vec<u8>,
    pub name: Vec<u8>,
}

/// Why an image URL is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    #[error("{0}")]
    Malformed(String),
    #[error("the size {0} is not one of resize_sizes")]
    Size(u32),
}

impl ImgRequest {
    /// Parses the segments after the signature: `<size>`, `<fit>`, then the path.
    pub(crate) fn parse(segments: &[&str], sizes: &[u32]) -> Result<ImgRequest, UrlError> {
        let bad = |s: &str| UrlError::Malformed(s.to_owned());
        let [size, fit, path @ ..] = segments else {
            return Err(bad("an image URL is /img/SIGNATURE/w800/contain/PATH.jpeg"));
        };
        if path.is_empty() {
            return Err(bad("the URL names no photo"));
        }
        let (mut width, mut height, mut expires) = (None, None, None);
        for part in size.split('-') {
            let (key, value) = part.split_at(part.chars().next().map_or(0, char::len_utf8));
            let n = |v: &str| v.parse::<u64>().ok().filter(|_| v.bytes().all(|b| b.is_ascii_digit()));
            match (key, n(value)) {
                ("w", Some(w)) if width.is_none() => width = Some(w),
                ("h", Some(h)) if height.is_none() => height = Some(h),
                ("e", Some(e)) if expires.is_none() => expires = Some(e),
                _ => return Err(bad("the size is w<width>, optionally -h<height> and -e<expiry>")),
            }
        }
        let in_set = |px: u64| -> Result<u32, UrlError> {
            let px32 = u32::try_from(px).unwrap_or(u32::MAX);
            if sizes.contains(&px32) { Ok(px32) } else { Err(UrlError::Size(px32)) }
        };
        let width = in_set(width.ok_or_else(|| bad("the size needs a width: w<pixels>"))?)?;
        let height = height.map(in_set).transpose()?;
        let fit = match *fit {
            "contain" => Fit::Contain,
            "cover" => Fit::Cover,
            _ => return Err(bad("the fit is contain or cover")),
        };
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(path.len());
        for p in path.iter() {
            let decoded: Vec<u8> = percent_encoding::percent_decode_str(p).collect();
            // SECURITY: decoded segments that could step out or hide: refused (the index holds
            // no such path either; this says so before looking).
            if decoded.is_empty()
                || decoded.starts_with(b".")
                || decoded.contains(&b'/')
                || decoded.contains(&0)
            {
                return Err(bad("the path is not one of an indexed photo"));
            }
            parts.push(decoded);
        }
        let last = parts.pop().expect("not empty");
        let dot = last
            .iter()
            .rposition(|&b| b == b'.')
            .ok_or_else(|| bad("the path ends in the format: .jpeg, .png, .avif or .auto"))?;
        let wanted = Wanted::parse(&last[dot + 1..]).map_err(bad)?;
        let name = last[..dot].to_vec();
        if name.is_empty() || !name.contains(&b'.') {
            return Err(bad("the path is the photo's own name, then the format: IMG_1.jpg.jpeg"));
        }
        let expires = expires.map(|e| i64::try_from(e).unwrap_or(i64::MAX));
        Ok(ImgRequest { width, height, expires, fit, wanted, dir: parts.join(&b'/'), name })
    }
}

/// The path of a signed URL (no scheme or host) for a photo at `rel` (folder/name, as the API's
/// `dir` and `name` join).
pub(crate) fn signed_path(key: Option<&UrlKey>, rel: &str, req: &UrlSpec) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let mut size = format!("w{}", req.width);
    if let Some(h) = req.height {
        size.push_str(&format!("-h{h}"));
    }
    if let Some(e) = req.expires {
        size.push_str(&format!("-e{e}"));
    }
    let fit = match req.fit {
        Fit::Contain => "contain",
        Fit::Cover => "cover",
    };
    let ext = req.wanted.name();
    let path: Vec<String> = rel
        .trim_matches('/')
        .split('/')
        .map(|p| percent_encoding::utf8_percent_encode(p, SEGMENT).to_string())
        .collect();
    let signed = format!("{size}/{fit}/{}.{ext}", path.join("/"));
    let signature = key.map_or_else(|| PUBLIC.to_owned(), |k| k.sign(signed.as_bytes()));
    format!("/img/{signature}/{signed}")
}

/// What `spis url sign` asks for.
#[derive(Debug, Clone)]
pub(crate) struct UrlSpec {
    pub width: u32,
    pub height: Option<u32>,
    pub expires: Option<i64>,
    pub fit: Fit,
    pub wanted: Wanted,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: &[u32] = &[320, 800, 1600];

    fn spec(width: u32) -> UrlSpec {
        UrlSpec { width, height: None, expires: None, fit: Fit::Contain, wanted: Wanted::Is(Encoding::Jpeg) }
    }

    #[test]
    fn a_signed_path_parses_back_and_verifies_only_unchanged() {
        let key = UrlKey::from_bytes([7; 32]);
        let url = signed_path(
            Some(&key),
            "Blog/2024 Trip/IMG 1.jpg",
            &UrlSpec { height: Some(320), expires: Some(1_900_000_000), ..spec(800) },
        );
        assert!(url.starts_with("/img/"), "{url}");
        let rest: Vec<&str> = url.trim_start_matches("/img/").split('/').collect();
        let (sig, segments) = rest.split_first().unwrap();
        let signed = segments.join("/");
        assert_eq!(signed, "w800-h320-e1900000000/contain/Blog/2024%20Trip/IMG%201.jpg.jpeg");
        let verify = |k: &UrlKey, sig: &str, signed: &str| k.verify(sig, signed.as_bytes());
        assert!(verify(&key, sig, &signed));
        assert!(!verify(&key, sig, &signed.replace("w800", "w1600")), "another size");
        assert!(!verify(&key, sig, &signed.replace("IMG%201", "IMG%202")), "another photo");
        assert!(!verify(&UrlKey::from_bytes([8; 32]), sig, &signed), "another key");
        assert!(!verify(&key, "AAAA", &signed) && !verify(&key, "not base64!", &signed));
        let r = ImgRequest::parse(segments, SIZES).unwrap();
        assert_eq!((r.width, r.height, r.expires), (800, Some(320), Some(1_900_000_000)));
        assert_eq!((r.dir.as_slice(), r.name.as_slice()), (&b"Blog/2024 Trip"[..], &b"IMG 1.jpg"[..]));
        assert_eq!(r.wanted, Wanted::Is(Encoding::Jpeg));
    }

    #[test]
    fn sizes_fits_formats_and_paths_outside_the_rules_are_refused() {
        let parse = |s: &str| ImgRequest::parse(&s.split('/').collect::<Vec<_>>(), SIZES);
        assert_eq!(parse("w801/contain/a.jpg.jpeg"), Err(UrlError::Size(801)));
        assert_eq!(parse("w800-h99999999999/contain/a.jpg.jpeg"), Err(UrlError::Size(u32::MAX)));
        for bad in [
            "800/contain/a.jpg.jpeg",
            "w800-w320/contain/a.jpg.jpeg",
            "w800-x1/contain/a.jpg.jpeg",
            "w+800/contain/a.jpg.jpeg",
            "w800/stretch/a.jpg.jpeg",
            "w800/contain/a.jpg.gif",
            "w800/contain/a.jpg.webp",
            "w800/contain/a.jpg.AVIF",
            "w800/contain/a.jpeg",
            "w800/contain/..%2Fsecret.jpg.jpeg",
            "w800/contain/%2e%2e/a.jpg.jpeg",
            "w800/contain/.trash/files/a.jpg.jpeg",
            "w800/contain",
        ] {
            assert!(matches!(parse(bad), Err(UrlError::Malformed(_))), "{bad}: {:?}", parse(bad));
        }
        assert_eq!(parse("w320/cover/x/y.png.png").unwrap().wanted, Wanted::Is(Encoding::Png));
        assert_eq!(parse("w320/cover/x/y.png.avif").unwrap().wanted, Wanted::Is(Encoding::Avif));
        assert_eq!(parse("w320/cover/x/y.png.auto").unwrap().wanted, Wanted::Auto);
        let webp = parse("w320/cover/x/y.png.webp");
        assert!(matches!(&webp, Err(UrlError::Malformed(why)) if why.contains("no lossy WebP")), "{webp:?}");
    }

    #[test]
    fn avif_is_chosen_only_when_the_accept_header_names_it() {
        for (accept, avif) in [
            // Chrome, Firefox and Safari as they send it for <img>.
            ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", true),
            ("image/avif,image/webp,*/*", true),
            (
                "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
                true,
            ),
            ("Image/AVIF ; q=0.9", true),
            ("*/*", false),
            ("image/*", false),
            ("image/webp,*/*;q=0.8", false),
            ("image/avif;q=0", false),
            ("image/avif;q=0.000, image/jpeg", false),
            ("image/avifx", false),
            ("", false),
        ] {
            assert_eq!(accepts_avif(accept.as_bytes()), avif, "{accept}");
            assert_eq!(Wanted::Auto.pick(avif), if avif { Encoding::Avif } else { Encoding::Jpeg });
        }
        assert_eq!(Wanted::Is(Encoding::Png).pick(true), Encoding::Png);
    }
}
