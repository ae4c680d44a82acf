//! Requests that try to break in, as tables, over raw TCP (no client library tidies them first):
//! traversal in every part of the URL, files the gallery must not reveal, oversized and slow
//! requests, symlinks out of the media folder.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{Dirs, PLAIN_JPEG, Server, copy_from_corpus, corpus};

/// Bytes that only exist outside what the gallery may serve; no answer may contain them.
const SECRET: &[u8] = b"SPIS-TEST-SECRET-7c1d";

/// One raw request; the status and the body (the connection is closed after one answer).
fn raw(server: &Server, request: &[u8]) -> (u16, Vec<u8>) {
    let stream = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    let (status, _, body) = crate::util::exchange(stream, request);
    (status, body.unwrap_or_default())
}

fn get(server: &Server, target: &str) -> (u16, Vec<u8>) {
    raw(server, format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
}

/// A media folder with one photo, and beside and inside it things that must stay private: a file
/// outside, hidden files, the state dir, and a symlink out of the folder.
fn setup(args: &[&str]) -> (Dirs, Server, std::path::PathBuf) {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "visible.jpg")]);
    let outside = dirs.media.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let mut secret_jpeg = std::fs::read(corpus().join(PLAIN_JPEG)).unwrap();
    secret_jpeg.extend_from_slice(SECRET);
    std::fs::write(outside.join("secret.jpg"), &secret_jpeg).unwrap();
    std::fs::write(dirs.media.join(".hidden.jpg"), &secret_jpeg).unwrap();
    std::fs::create_dir_all(dirs.media.join(".private")).unwrap();
    std::fs::write(dirs.media.join(".private/x.jpg"), &secret_jpeg).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.jpg"), dirs.media.join("link.jpg")).unwrap();
    std::os::unix::fs::symlink(&outside, dirs.media.join("linkdir")).unwrap();
    // The state dir inside the media folder, as a careless config might have it.
    let state = dirs.media.join("state");
    std::fs::create_dir_all(state.join("cache")).unwrap();
    std::fs::write(state.join("cache/planted.jpg"), &secret_jpeg).unwrap();
    let server = Server::start(&dirs.media, &state, args);
    server.wait_indexed();
    (dirs, server, outside)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn traversal_in_any_part_of_the_url_reaches_nothing() {
    let (_dirs, server, _outside) = setup(&[]);
    let items = server.all_items("", 100);
    assert_eq!(items.len(), 1, "only the visible photo: {items:?}");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let cases: Vec<String> = [
        "/../../../../etc/passwd",
        "/api/../../../etc/passwd",
        "/api/media/../../../../etc/passwd",
        "/api/media/..%2f..%2f..%2fetc%2fpasswd/original",
        "/api/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd/original",
        "/api/media/%252e%252e%252fetc%252fpasswd/original",
        "/api/media/..%5c..%5cetc%5cpasswd/original",
        "/api/media/\\..\\..\\etc\\passwd/original",
        "/api/media/..%255c..%255cetc/original",
        "/api/media/%00/original",
        "/api/media/ID%00/original",
        "/api/media/ID%00.jpg/thumb",
        "/api/media//etc/passwd/original",
        "/api/media/%2fetc%2fpasswd/original",
        "/api/media/ID/original/../../../../etc/passwd",
        "/api/media/ID/..%2f..%2fstate%2fcache%2fplanted.jpg",
        "/api/media/ID/resize?w=../../etc/passwd",
        "/api/media/ID/resize?w=320&format=../../../etc/passwd",
        "/api/media/ID/thumb/..%2f..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/assets/x/../../../../etc/passwd",
        "/assets/x/..%2f..%2f..%2fCargo.toml",
        "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/x/%2e%2e%5c%2e%2e%5cCargo.toml",
        "/index.html/../../../etc/passwd",
        "/state/cache/planted.jpg",
        "/.hidden.jpg",
        "/link.jpg",
        "/linkdir/secret.jpg",
        "/api/media/link.jpg/original",
        "/api/media/.hidden.jpg/original",
        "http://127.0.0.1/../../etc/passwd",
    ]
    .iter()
    .map(|c| c.replace("ID", &id))
    .collect();
    for target in &cases {
        let (status, body) = get(&server, target);
        assert!((400..500).contains(&status), "{target}: {status} {}", String::from_utf8_lossy(&body));
        assert!(!contains(&body, b"root:") && !contains(&body, SECRET), "{target} leaked");
        if target.contains("/api/") && !body.is_empty() {
            let j: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{target}: not JSON: {}", String::from_utf8_lossy(&body)));
            assert!(j["code"].is_string() && j["error"].is_string(), "{target}: {j}");
        }
    }
    // Filters are only filters: a path in one matches no folder and reveals nothing.
    for query in
        ["dir=../../etc", "dir=%2Fetc", "dir=..%5C..%5Cetc", "dir=.private", "dir=state", "dir=linkdir"]
    {
        let page = server.json(&format!("/api/media?{query}"));
        assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{query}: {page}");
    }
    // Raw bytes a browser would never send: refused before any handler.
    for target in ["/api/media/a b/original", "/api/\x01", "/api/media/\x7f/original"] {
        let (status, body) = get(&server, target);
        assert_eq!(status, 400, "{target:?}");
        assert!(!contains(&body, b"root:"), "{target:?}");
    }
    // The one photo is served, and is the photo.
    let original = server.get(&format!("/api/media/{id}/original"));
    assert_eq!(original.body, std::fs::read(corpus().join(PLAIN_JPEG)).unwrap());
}

#[test]
fn oversized_and_slow_requests_are_cut_off() {
    let (_dirs, server, _outside) = setup(&["--header-timeout", "1", "--max-header-bytes", "16384"]);
    // A head over the limit: one header, many headers, a huge query string.
    let big = "a".repeat(20_000);
    let (status, _) = raw(&server, format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    assert_eq!(status, 431);
    let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
    let (status, _) = raw(&server, format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes());
    assert_eq!(status, 431);
    let (status, _) = get(&server, &format!("/api/media?dir={big}"));
    assert_eq!(status, 431);
    // Long but within the limit: an ordinary answer.
    let (status, body) = get(&server, &format!("/api/media?dir={}", "a".repeat(8000)));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let addr = server.base.trim_start_matches("http://");
    let closed_within = |mut s: TcpStream, limit: Duration| {
        s.set_read_timeout(Some(limit)).unwrap();
        let started = Instant::now();
        let mut buf = [0; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return started.elapsed() < limit,
            }
        }
    };
    // Slowloris: headers started and never finished.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    assert!(closed_within(slow, Duration::from_secs(10)), "a half-sent head keeps its connection");
    // An idle keep-alive connection after one answer.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_within(idle, Duration::from_secs(10)), "an idle keep-alive connection stays open");
    // A body trickled after the headers: refused after the body timeout, not held for ever.
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle
        .write_all(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    trickle.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let _ = trickle.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("bad_body"), "{answer}");
    // And the server still answers everyone else.
    assert_eq!(server.get("/api/health").status, 200);
}

#[test]
fn symlinks_out_of_the_media_folder_are_only_followed_when_asked() {
    let (dirs, server, outside) = setup(&[]);
    let names: Vec<_> =
        server.all_items("", 100).iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["visible.jpg"]);
    drop(server);

    // A loop back up, and a link to a folder that links back to the media folder.
    std::os::unix::fs::symlink(&dirs.media, dirs.media.join("loop")).unwrap();
    std::os::unix::fs::symlink(&dirs.media, outside.join("back")).unwrap();
    let server = Server::start(&dirs.media, &dirs.media.join("state"), &["--follow-symlinks"]);
    server.wait_indexed();
    let items = server.all_items("", 100);
    let mut paths: Vec<String> = items
        .iter()
        .map(|i| format!("{}/{}", i["dir"].as_str().unwrap_or(""), i["name"].as_str().unwrap()))
        .collect();
    paths.sort();
    assert_eq!(paths, ["/link.jpg", "/visible.jpg", "linkdir/secret.jpg"], "{items:?}");
    // A linked file is served with the bytes of what it leads to.
    let link = items.iter().find(|i| i["name"] == "link.jpg").unwrap();
    let original = server.get(&format!("/api/media/{}/original", link["id"].as_str().unwrap()));
    assert_eq!(original.body, std::fs::read(outside.join("secret.jpg")).unwrap());
    // Favorites on a link land in the state dir: the target's file is never written.
    let id = link["id"].as_str().unwrap();
    assert_eq!(server.put(&format!("/api/media/{id}/favorite")).status, 200);
    assert!(crate::util::get_xattr(&outside.join("secret.jpg"), "user.spis.favorite").is_none());
    // A new file in a linked folder is found (the folder it leads to is watched).
    copy_from_corpus(Path::new(&outside), &[(PLAIN_JPEG, "later.jpg")]);
    crate::util::wait_until("a file added through a followed link appears", || {
        server.all_items("", 100).iter().any(|i| i["name"] == "later.jpg")
    });
}

/// A folder of the media folder swapped for a symlink after indexing (a share user, a camera
/// account or another local user can do this), with the watcher off so nothing re-indexes: the
/// old item's URLs reach nothing outside, for every route, with and without
/// `--follow-symlinks`, and its favorite lands nowhere.
#[test]
fn a_folder_swapped_for_a_link_after_indexing_reaches_nothing_outside() {
    for follow in [false, true] {
        for depth in [1, 2] {
            let dirs = Dirs::new();
            copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "a/b/second.jpg")]);
            // The same names outside, holding a different (valid) photo with the secret appended.
            let outside = dirs.media.parent().unwrap().join("outside");
            let mut secret_jpeg =
                std::fs::read(corpus().join("pypi-scikit-image-0.26.0/skimage/data/retina.jpg")).unwrap();
            secret_jpeg.extend_from_slice(SECRET);
            std::fs::create_dir_all(outside.join("b")).unwrap();
            std::fs::write(outside.join("second.jpg"), &secret_jpeg).unwrap();
            std::fs::write(outside.join("b/second.jpg"), &secret_jpeg).unwrap();
            let mut args = vec!["--watch", "off", "--thumb-workers", "0", "--resize-sizes", "64"];
            if follow {
                args.push("--follow-symlinks");
            }
            let server = Server::start(&dirs.media, &dirs.state, &args);
            server.wait_indexed();
            let id = server.item_named("second.jpg")["id"].as_str().unwrap().to_owned();
            // One level up (a/b) or two (a) becomes a link to the folder outside.
            let swapped = if depth == 1 { dirs.media.join("a/b") } else { dirs.media.join("a") };
            std::fs::rename(&swapped, swapped.with_file_name("moved")).unwrap();
            std::os::unix::fs::symlink(&outside, &swapped).unwrap();
            let target = if depth == 1 { outside.join("second.jpg") } else { outside.join("b/second.jpg") };
            assert!(std::fs::read(dirs.media.join("a/b/second.jpg")).unwrap().ends_with(SECRET));

            let case = format!("follow={follow} depth={depth}");
            for route in ["original", "thumb", "preview", "resize?w=64", "details"] {
                let (status, body) = get(&server, &format!("/api/media/{id}/{route}"));
                assert!(!contains(&body, SECRET), "{case} {route}: the secret leaked");
                // Nothing made from the file outside: a 404, or the placeholder picture for a
                // file that cannot be read (thumbnails), or a 422 (resize).
                assert!(!body.starts_with(b"\xff\xd8"), "{case} {route}: a JPEG made from the target");
                let text = String::from_utf8_lossy(&body);
                match route {
                    "thumb" | "preview" => {
                        assert!(status == 404 || text.starts_with("<svg"), "{case} {route}: {status} {text}")
                    }
                    "resize?w=64" => assert!(matches!(status, 404 | 422), "{case} {route}: {status} {text}"),
                    _ => assert_eq!(status, 404, "{case} {route}: {text}"),
                }
            }
            let fav = server.put(&format!("/api/media/{id}/favorite"));
            fav.assert_error(404, "file_missing");
            assert!(
                crate::util::get_xattr(&target, "user.spis.favorite").is_none(),
                "{case}: xattr on the target"
            );
            assert!(crate::util::get_xattr(&target, "user.spis.meta").is_none(), "{case}");
            // Put back, the same item is served again (the refusal was the link, not the item).
            std::fs::remove_file(&swapped).unwrap();
            std::fs::rename(swapped.with_file_name("moved"), &swapped).unwrap();
            let original = server.get(&format!("/api/media/{id}/original"));
            assert_eq!(original.status, 200, "{case}");
            assert_eq!(original.body, std::fs::read(corpus().join(PLAIN_JPEG)).unwrap());
        }
    }
}
