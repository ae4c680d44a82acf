//! IPTC IIM, the news agencies' record, as Photoshop keeps it in a JPEG's APP13 segment: image
//! resource blocks (`8BIM` ...), of which resource 0x0404 holds the IIM datasets.
//!
//! The one rule: every length is checked against the bytes there are and every step moves
//! forward, so a hostile segment ends the walk early, never the probe.

use super::dates::{self, Taken};
use super::source::be_u32;

/// The date taken in a Photoshop image resource block: DateCreated (2:55) with TimeCreated
/// (2:60), the first of each.
pub(super) fn from_photoshop(mut irb: &[u8]) -> Option<Taken> {
    // Signature, resource id, a Pascal-string name padded to an even length, a 32-bit size,
    // and the data, padded to an even length too.
    while let [s0, s1, s2, s3, id0, id1, name_len, rest @ ..] = irb {
        if !matches!(&[*s0, *s1, *s2, *s3], b"8BIM" | b"PHUT" | b"DCSR" | b"AgHg" | b"MeSa") {
            return None;
        }
        let rest = rest.get(usize::from(*name_len) + usize::from(name_len % 2 == 0)..)?;
        let size = usize::try_from(be_u32(rest, 0)?).ok()?;
        let data = rest.get(4..4usize.checked_add(size)?)?;
        if u16::from_be_bytes([*id0, *id1]) == 0x0404 {
            return from_iim(data);
        }
        irb = rest.get(4 + size + size % 2..).unwrap_or_default();
    }
    None
}

/// The date taken in IIM datasets: each a 0x1C tag marker, record and dataset numbers, and a
/// 16-bit length.
pub(super) fn from_iim(mut b: &[u8]) -> Option<Taken> {
    let (mut date, mut time) = (None, None);
    while let [0x1C, record, dataset, len0, len1, rest @ ..] = b {
        // The top bit marks an extended dataset, longer than 32 KiB: never a date, and past it
        // nothing we want follows in practice.
        if len0 & 0x80 != 0 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([*len0, *len1]));
        let Some(value) = rest.get(..len) else { break };
        match (record, dataset) {
            (2, 55) => date = date.or(Some(value)),
            (2, 60) => time = time.or(Some(value)),
            _ => {}
        }
        b = &rest[len..];
    }
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    dates::parse_iptc(&text(date?), time.map(text).as_deref())
}

#[cfg(test)]
pub(in crate::library::probe) mod tests {
    use super::*;

    /// An APP13 segment's body: the Photoshop signature and one IPTC resource holding `datasets`
    /// ((record, dataset, value)), after an unrelated resource with a name.
    pub(in crate::library::probe) fn photoshop_iptc(datasets: &[(u8, u8, &str)]) -> Vec<u8> {
        let mut iim = Vec::new();
        for &(record, dataset, value) in datasets {
            iim.extend_from_slice(&[0x1C, record, dataset]);
            iim.extend_from_slice(&(value.len() as u16).to_be_bytes());
            iim.extend_from_slice(value.as_bytes());
        }
        let mut out = b"Photoshop 3.0\0".to_vec();
        // Resource 0x03ED (resolution) named "ab": length byte + 2 bytes, padded to 4.
        out.extend_from_slice(b"8BIM\x03\xED\x02ab\0\0\0\0\x03xyz\0");
        out.extend_from_slice(b"8BIM\x04\x04\0\0");
        out.extend_from_slice(&(iim.len() as u32).to_be_bytes());
        out.extend_from_slice(&iim);
        if iim.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn date_of(body: &[u8]) -> Option<String> {
        from_photoshop(body.strip_prefix(b"Photoshop 3.0\0").unwrap()).map(|t| dates::to_iso8601(&t))
    }

    #[test]
    fn date_and_time_created_give_the_date_with_its_offset() {
        type Datasets<'a> = &'a [(u8, u8, &'a str)];
        let cases: &[(Datasets, Option<&str>)] = &[
            (&[(2, 55, "20230114"), (2, 60, "093012+0100")], Some("2023-01-14T09:30:12+01:00")),
            (
                &[(1, 90, "\x1B%G"), (2, 60, "235959-0530"), (2, 55, "19991231")],
                Some("1999-12-31T23:59:59-05:30"),
            ),
            (&[(2, 55, "20230114"), (2, 60, "093012")], Some("2023-01-14T09:30:12")),
            (&[(2, 55, "2023-01-14"), (2, 60, "09:30:12+01:00")], Some("2023-01-14T09:30:12+01:00")),
            (&[(2, 55, "20230114")], Some("2023-01-14T00:00:00")),
            (&[(2, 55, "20230114"), (2, 60, "junk")], Some("2023-01-14T00:00:00")),
            (&[(2, 55, "20231314"), (2, 60, "093012")], None),
            (&[(2, 60, "093012+0100")], None),
            (&[(2, 62, "20230114"), (2, 63, "093012")], None),
            (&[], None),
        ];
        for &(datasets, want) in cases {
            assert_eq!(date_of(&photoshop_iptc(datasets)).as_deref(), want, "{datasets:?}");
        }
    }

    #[test]
    fn damaged_resource_blocks_give_nothing() {
        let good = photoshop_iptc(&[(2, 55, "20230114"), (2, 60, "093012")]);
        for cut in 14..good.len() - 1 {
            let _ = date_of(&good[..cut]);
        }
        let mut wrong_signature = good.clone();
        wrong_signature[14..18].copy_from_slice(b"XXXX");
        assert_eq!(date_of(&wrong_signature), None);
        let mut huge = good.clone();
        huge[14 + 10..14 + 14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(date_of(&huge), None);
    }
}
