//! Hostile files made in the test: each costs a placeholder (or is left out), never a crash, a
//! hang or a server that stops answering.

use std::io::Write as _;

use crate::util::{Dirs, PLAIN_JPEG, Server, corpus};

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

/// A valid PNG header claiming `width` x `height` RGB pixels, with `rows` rows of zeros
/// compressed after it (a decompression bomb when the claim is huge and the rows many).
fn png(width: u32, height: u32, rows: usize) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; 1 + 3 * width.min(1 << 16) as usize];
    for _ in 0..rows {
        z.write_all(&row).unwrap();
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &z.finish().unwrap()));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// A little-endian TIFF IFD: `entries` of (tag, type, count, value or offset), then the next IFD.
fn ifd(entries: &[(u16, u16, u32, u32)], next: u32) -> Vec<u8> {
    let mut out = (entries.len() as u16).to_le_bytes().to_vec();
    for (tag, kind, count, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&next.to_le_bytes());
    out
}

/// A TIFF of 5000 IFDs chained one after another, each also pointing its EXIF and GPS sub-IFDs
/// at the previous one; the last chains back to the first (a loop).
fn deep_tiff() -> Vec<u8> {
    const N: u32 = 5000;
    const SIZE: u32 = 2 + 4 * 12 + 4;
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    for i in 0..N {
        let at = 8 + i * SIZE;
        let prev = if i == 0 { 8 } else { at - SIZE };
        let next = if i + 1 == N { 8 } else { at + SIZE };
        out.extend(ifd(
            &[(0x0100, 4, 1, 50_000), (0x0101, 4, 1, 50_000), (0x8769, 4, 1, prev), (0x8825, 4, 1, at)],
            next,
        ));
    }
    out
}

/// A real JPEG with an EXIF block whose offsets point past its end, into itself, and at a date
/// longer than the file; an orientation of 9 (there are 8).
fn jpeg_with_bad_exif(jpeg: &[u8]) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend(ifd(
        &[
            (0x0112, 3, 1, 9),
            (0x0132, 2, 20, 0x7FFF_FFF0),
            (0x8769, 4, 1, 8),
            (0x8825, 4, 1, 0xFFFF_FF00),
            (0x9003, 2, 4_000_000, 30),
        ],
        0xFFFF_FFF0,
    ));
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn looping_tiff_ifds_and_bad_exif_offsets_cost_nothing_but_their_metadata() {
    let dirs = Dirs::new();
    let jpeg = std::fs::read(corpus().join(PLAIN_JPEG)).unwrap();
    std::fs::write(dirs.media.join("deep.tif"), deep_tiff()).unwrap();
    std::fs::write(dirs.media.join("bad-exif.jpg"), jpeg_with_bad_exif(&jpeg)).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let items = server.all_items("", 100);
    assert_eq!(items.len(), 2, "{items:?}");
    let deep = items.iter().find(|i| i["name"] == "deep.tif").unwrap();
    let r = server.get(deep["thumb"].as_str().unwrap());
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/svg+xml")));
    // The picture itself is intact: a real thumbnail, upright (orientation 9 means none).
    let bad = items.iter().find(|i| i["name"] == "bad-exif.jpg").unwrap();
    assert_ne!(bad["taken_source"], "exif", "no date from a broken EXIF: {bad}");
    let r = server.get(bad["thumb"].as_str().unwrap());
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/jpeg")));
    let thumb = image::load_from_memory(&r.body).unwrap();
    let plain = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(
        thumb.width() > thumb.height(),
        plain.width() > plain.height(),
        "not rotated by a bogus orientation"
    );
    let details = server.json(&format!("/api/media/{}/details", bad["id"].as_str().unwrap()));
    assert!(details.is_object(), "{details}");
    assert_eq!(server.get("/api/health").status, 200);
}

#[test]
fn hostile_files_get_placeholders_and_the_server_keeps_answering() {
    let dirs = Dirs::new();
    let jpeg = std::fs::read(corpus().join(PLAIN_JPEG)).unwrap();
    // A JPEG whose frame header claims 60000 x 60000: find SOF0/SOF2 and rewrite the size.
    let mut lying = jpeg.clone();
    let sof = lying.windows(2).position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2)).unwrap();
    lying[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let files: [(&str, Vec<u8>); 5] = [
        ("bomb.png", png(60_000, 60_000, 2_000)),
        ("lying.jpg", lying),
        ("truncated.jpg", jpeg[..jpeg.len() / 3].to_vec()),
        ("empty.jpg", Vec::new()),
        ("garbage.heic", b"\0\0\0\x18ftypheic\0\0\0\0 not really".to_vec()),
    ];
    for (name, bytes) in &files {
        std::fs::write(dirs.media.join(name), bytes).unwrap();
    }
    // A FIFO with a photo's name: opening it must not block a worker.
    let fifo = std::ffi::CString::new(dirs.media.join("fifo.jpg").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let items = server.all_items("", 100);
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"fifo.jpg"), "special files are not listed: {names:?}");
    for (name, _) in &files {
        let item = items.iter().find(|i| i["name"] == *name).unwrap_or_else(|| panic!("{name} is listed"));
        for which in ["thumb", "preview"] {
            let r = server.get(item[which].as_str().unwrap());
            assert_eq!(r.status, 200, "{name} {which}");
            // The truncated JPEG may still give a picture (its top part); the others cannot.
            if *name != "truncated.jpg" {
                assert_eq!(r.header("content-type"), Some("image/svg+xml"), "{name} {which}");
                assert!(r.header("x-spis-placeholder").is_some(), "{name} says why");
            }
        }
    }
    let bomb = items.iter().find(|i| i["name"] == "bomb.png").unwrap();
    assert_eq!(
        (bomb["width"].as_u64(), bomb["height"].as_u64()),
        (Some(60_000), Some(60_000)),
        "listed with its claim"
    );
    assert_eq!(server.get("/api/health").status, 200);
    assert!(server.json("/api/status")["thumbnails"]["failed"].as_u64().unwrap() >= 4);
}
