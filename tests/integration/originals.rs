//! Originals over HTTP: exact bytes, ranges, validators, HEAD, download names.

use crate::util::{Dirs, Server, agent, copy_from_corpus, corpus, read};

const PHOTO: &str = "debian-lomiri-wallpapers-16.04/backgrounds/Picture_0B_by_freespace.jpg";

fn start() -> (Dirs, Server, String, Vec<u8>) {
    start_with(&[])
}

fn start_with(args: &[&str]) -> (Dirs, Server, String, Vec<u8>) {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PHOTO, "Ünïcode \"name\".jpg")]);
    let bytes = std::fs::read(corpus().join(PHOTO)).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, args);
    server.wait_indexed();
    let url = server.all_items("", 10)[0]["original"].as_str().unwrap().to_owned();
    (dirs, server, url, bytes)
}

#[test]
fn original_is_served_byte_for_byte_with_validators() {
    let (_d, server, url, bytes) = start();
    let r = server.get(&url);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-length"), Some(bytes.len().to_string().as_str()));
    assert!(r.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(r.header("last-modified").is_some());
}

#[test]
fn ranges_answer_206_and_416() {
    let (_d, server, url, bytes) = start();
    let len = bytes.len();
    let r = server.get_with(&url, &[("Range", "bytes=0-99")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &bytes[..100]);
    assert_eq!(r.header("content-range"), Some(format!("bytes 0-99/{len}").as_str()));
    let r = server.get_with(&url, &[("Range", "bytes=-10")]);
    assert_eq!((r.status, &r.body[..]), (206, &bytes[len - 10..]));
    let r = server.get_with(&url, &[("Range", &format!("bytes={}-", len - 5))]);
    assert_eq!((r.status, &r.body[..]), (206, &bytes[len - 5..]));
    let r = server.get_with(&url, &[("Range", &format!("bytes={len}-"))]);
    r.assert_error(416, "range_not_satisfiable");
    assert_eq!(r.header("content-range"), Some(format!("bytes */{len}").as_str()));
}

#[test]
fn conditional_requests_answer_304() {
    let (_d, server, url, _) = start();
    let first = server.get(&url);
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let r = server.get_with(&url, &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = server.get_with(&url, &[("If-Modified-Since", &modified)]);
    assert_eq!(r.status, 304);
    let r = server.get_with(&url, &[("If-None-Match", "\"something-else\"")]);
    assert_eq!(r.status, 200);
    // If-Range with a stale validator: the whole file, not a slice of a different version.
    let r = server.get_with(&url, &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")]);
    assert_eq!(r.status, 200);
    let r = server.get_with(&url, &[("Range", "bytes=0-9"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
}

#[test]
fn head_has_the_headers_and_no_body() {
    let (_d, server, url, bytes) = start();
    let r = read(agent().head(server.url(&url)).call().unwrap());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(bytes.len().to_string().as_str()));
    assert!(r.body.is_empty());
}

#[test]
fn download_names_the_real_file_safely() {
    let (_d, server, url, _) = start();
    let r = server.get(&format!("{url}?download=1"));
    let cd = r.header("content-disposition").unwrap();
    assert!(cd.starts_with("attachment"), "{cd}");
    assert!(cd.contains("filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22name%22.jpg"), "{cd}");
    assert!(server.get(&url).header("content-disposition").is_none());
}

#[test]
fn a_file_deleted_after_indexing_is_a_json_404_not_a_crash() {
    // Without the watcher the index still lists the file, as it may for a moment with it.
    let (dirs, server, url, _) = start_with(&["--watch", "off"]);
    std::fs::remove_file(dirs.media.join("Ünïcode \"name\".jpg")).unwrap();
    server.get(&url).assert_error(404, "file_missing");
    assert_eq!(server.get("/api/health").status, 200);
}
