//! XMP, the RDF/XML packet that Adobe's tools, phones and photo managers write into a file or a
//! sidecar beside it, scanned for the dates it states.
//!
//! The one rule: this is a scan, not an XML parser. It looks for the few properties it knows, in
//! their attribute (`exif:DateTimeOriginal="..."`) and element (`<exif:DateTimeOriginal>...<`)
//! forms, under the prefixes the packet binds their namespaces to, and every step of it moves
//! forward through the bytes given, so any input is scanned in a few passes and never retained.

use super::Probe;
use super::dates::{self, DateSource};

const EXIF_NS: &[u8] = b"http://ns.adobe.com/exif/1.0/";
const PHOTOSHOP_NS: &[u8] = b"http://ns.adobe.com/photoshop/1.0/";
const XMP_NS: &[u8] = b"http://ns.adobe.com/xap/1.0/";

/// A property read: its namespace, the prefix everyone binds that to, its name, and what its
/// date is.
struct Property {
    ns: &'static [u8],
    usual: &'static [u8],
    name: &'static [u8],
    source: DateSource,
}

const PROPERTIES: [Property; 3] = [
    Property { ns: EXIF_NS, usual: b"exif", name: b"DateTimeOriginal", source: DateSource::Xmp },
    Property { ns: PHOTOSHOP_NS, usual: b"photoshop", name: b"DateCreated", source: DateSource::Xmp },
    Property { ns: XMP_NS, usual: b"xmp", name: b"CreateDate", source: DateSource::XmpCreated },
];

/// Prefixes bound to one namespace that are tried; a packet that binds more is hostile.
const MAX_PREFIXES: usize = 4;
/// See [`window`].
const WINDOW: usize = 512;

/// Offers every date of the packet `xmp` to `p`.
pub(super) fn apply(p: &mut Probe, xmp: &[u8]) {
    for Property { ns, usual, name, source } in PROPERTIES {
        let mut prefixes = prefixes_of(xmp, ns);
        if prefixes.is_empty() {
            // A packet that never declares the namespace (a careless writer) still means it.
            prefixes.push(usual);
        }
        let value = values(xmp, &prefixes, name)
            .find_map(|v| dates::parse_iso8601(std::str::from_utf8(v).ok()?, source));
        if let Some(t) = value {
            p.offer(t);
        }
    }
}

/// The prefixes that `xmlns:PREFIX="ns"` declarations in the packet bind to `ns`.
fn prefixes_of<'a>(xmp: &'a [u8], ns: &[u8]) -> Vec<&'a [u8]> {
    let mut found = Vec::new();
    for at in find_all(xmp, b"xmlns:") {
        let rest = window(&xmp[at + 6..]);
        let Some(end) = rest.iter().position(|&b| !is_name_byte(b)) else { continue };
        let (prefix, rest) = rest.split_at(end);
        if quoted_value(rest).is_some_and(|uri| uri == ns) && !found.contains(&prefix) {
            found.push(prefix);
            if found.len() == MAX_PREFIXES {
                break;
            }
        }
    }
    found
}

/// The values of `name` under any of `prefixes` in the packet, attributes and elements alike,
/// in order.
fn values<'a>(xmp: &'a [u8], prefixes: &'a [&'a [u8]], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    find_all(xmp, name).filter_map(move |at| {
        let before = xmp[..at].strip_suffix(b":")?;
        let before = prefixes.iter().find_map(|prefix| before.strip_suffix(*prefix))?;
        let after = window(&xmp[at + name.len()..]);
        match before.last()? {
            b'<' => {
                let close = after.iter().position(|&b| b == b'>')?;
                let attributes = &after[..close];
                // `<exif:DateTimeOriginalX>` is another property; `<exif:DateTimeOriginal/>`
                // has no value.
                if attributes.first().is_some_and(|&b| b > b' ') || attributes.last() == Some(&b'/') {
                    return None;
                }
                let text = &after[close + 1..];
                Some(trim(&text[..text.iter().position(|&b| b == b'<')?]))
            }
            &b if b <= b' ' => quoted_value(after),
            _ => None,
        }
    })
}

/// How far past a name its value is looked for. Values we want are short; the bound keeps a
/// packet of a million unterminated names from costing a million scans to its end.
fn window(b: &[u8]) -> &[u8] {
    &b[..b.len().min(WINDOW)]
}

/// The value after an attribute's name: optional blanks, `=`, blanks, then a quoted string.
fn quoted_value(after_name: &[u8]) -> Option<&[u8]> {
    let rest = trim_start(after_name).strip_prefix(b"=")?;
    let rest = trim_start(rest);
    let (&quote, rest) = rest.split_first().filter(|(q, _)| matches!(q, b'"' | b'\''))?;
    Some(&rest[..rest.iter().position(|&b| b == quote)?])
}

/// Where `needle` starts in `hay`, each occurrence once, left to right.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + hay.get(from..)?.windows(needle.len()).position(|w| w == needle)?;
        from = at + 1;
        Some(at)
    })
}

/// Bytes that can be part of an XML name (ASCII only: the prefixes we want are ASCII).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn trim_start(b: &[u8]) -> &[u8] {
    &b[b.iter().position(|&c| c > b' ').unwrap_or(b.len())..]
}

fn trim(b: &[u8]) -> &[u8] {
    let b = trim_start(b);
    &b[..b.iter().rposition(|&c| c > b' ').map_or(0, |i| i + 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::probe::Format;

    fn dates_of(xmp: &str) -> Option<String> {
        let mut p = Probe::empty(Format::Jpeg);
        apply(&mut p, xmp.as_bytes());
        p.taken.map(|t| format!("{} {:?}", dates::to_iso8601(&t), t.source))
    }

    /// A packet as Adobe's XMP toolkit lays it out, around `inner`.
    fn packet(namespaces: &str, inner: &str) -> String {
        format!(
            "<?xpacket begin='\u{feff}' id='W5M0MpCehiHzreSzNTczkc9d'?>\n\
             <x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF \
             xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>\n\
             <rdf:Description rdf:about='' {namespaces}>{inner}</rdf:Description>\
             </rdf:RDF></x:xmpmeta>\n<?xpacket end='w'?>"
        )
    }

    const EXIF: &str = "xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"";
    const PHOTOSHOP: &str = "xmlns:photoshop=\"http://ns.adobe.com/photoshop/1.0/\"";
    const XMP: &str = "xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"";

    #[test]
    fn dates_are_read_from_attributes_and_elements_with_and_without_offset() {
        let cases = [
            (
                packet(EXIF, "").replace("''", "'' exif:DateTimeOriginal=\"2023-01-14T09:30:12+01:00\""),
                "2023-01-14T09:30:12+01:00 Xmp",
            ),
            (
                packet(EXIF, "<exif:DateTimeOriginal>2023-01-14T09:30:12.5</exif:DateTimeOriginal>"),
                "2023-01-14T09:30:12.500 Xmp",
            ),
            (
                packet(
                    PHOTOSHOP,
                    "\n  <photoshop:DateCreated>\n 2019-10-16T19:01:00Z </photoshop:DateCreated>",
                ),
                "2019-10-16T19:01:00+00:00 Xmp",
            ),
            (
                packet(XMP, "<xmp:CreateDate>2012-06-29T09:29-04:00</xmp:CreateDate>"),
                "2012-06-29T09:29:00-04:00 XmpCreated",
            ),
            (
                packet(PHOTOSHOP, "<photoshop:DateCreated>2003-08-31</photoshop:DateCreated>"),
                "2003-08-31T00:00:00 Xmp",
            ),
            // Single quotes, blanks round the `=`, and EXIF's own notation inside XMP.
            (
                packet(XMP, "").replace("''", "'' xmp:CreateDate = '2009:03:06 22:15:29'"),
                "2009-03-06T22:15:29 XmpCreated",
            ),
        ];
        for (xmp, want) in cases {
            assert_eq!(dates_of(&xmp).as_deref(), Some(want), "{xmp}");
        }
    }

    #[test]
    fn the_best_property_wins_and_prefixes_follow_the_declarations() {
        let all = format!("{EXIF} {PHOTOSHOP} {XMP}");
        let inner = "<xmp:CreateDate>2020-01-01T00:00:00</xmp:CreateDate>\
                     <photoshop:DateCreated>2021-01-01T00:00:00</photoshop:DateCreated>";
        assert_eq!(dates_of(&packet(&all, inner)).as_deref(), Some("2021-01-01T00:00:00 Xmp"));
        // Any prefix bound to the namespace counts; the usual one bound elsewhere does not.
        let odd = "xmlns:e='http://ns.adobe.com/exif/1.0/' xmlns:exif='urn:other'";
        let inner = "<exif:DateTimeOriginal>2020-01-01T00:00</exif:DateTimeOriginal>\
                     <e:DateTimeOriginal>2022-02-02T02:02</e:DateTimeOriginal>";
        assert_eq!(dates_of(&packet(odd, inner)).as_deref(), Some("2022-02-02T02:02:00 Xmp"));
    }

    #[test]
    fn what_is_not_a_date_is_skipped() {
        let cases = [
            packet(EXIF, "<exif:DateTimeOriginal/>"),
            packet(EXIF, "<exif:DateTimeOriginal></exif:DateTimeOriginal>"),
            packet(EXIF, "<exif:DateTimeOriginalX>2020-01-01</exif:DateTimeOriginalX>"),
            packet(EXIF, "<exif:DateTimeOriginal>2020</exif:DateTimeOriginal>"),
            packet(EXIF, "<exif:DateTimeOriginal>2020-13-01</exif:DateTimeOriginal>"),
            packet(EXIF, "").replace("''", "'' myexif:DateTimeOriginal='2020-01-01'"),
            "exif:DateTimeOriginal=\"2020-01-01".into(),
            "<exif:DateTimeOriginal".into(),
            "xmlns:".into(),
            "xmlns:exif=\"http://ns.adobe.com/exif/1.0/".into(),
            String::new(),
        ];
        for xmp in cases {
            assert_eq!(dates_of(&xmp), None, "{xmp}");
        }
        // A later good value still counts after a bad one.
        let xmp = packet(
            EXIF,
            "<exif:DateTimeOriginal>garbage</exif:DateTimeOriginal>\
             <exif:DateTimeOriginal>2020-01-01T10:00:00</exif:DateTimeOriginal>",
        );
        assert_eq!(dates_of(&xmp).as_deref(), Some("2020-01-01T10:00:00 Xmp"));
    }
}
