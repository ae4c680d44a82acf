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
