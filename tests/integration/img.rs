//! Image URLs for static sites: `spis url sign` and `srcset` make them, the server answers them
//! with no session, and refuses a changed, expired or unsigned one, sizes outside resize_sizes
//! and anything that is not an indexed photo.

use std::process::Command;

use crate::util::{Dirs, PLAIN_JPEG, Reply, Server, agent, copy_from_corpus, read, spis_cli};

fn start(args: &[&str]) -> (Dirs, Server) {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "Blog/2024/a.jpg"), (PLAIN_JPEG, "Private/b c.jpg")]);
    // The gallery itself is private: a password is required for everything but these URLs.
    let server = Server::start_with_env(&dirs.media, &dirs.state, args, &[("SPIS_NO_AUTH", "false")]);
    server.get("/api/health");
    crate::util::wait_until("indexed", || server.get("/api/health").json()["ready"] == true);
    (dirs, server)
}

fn get(server: &Server, path: &str) -> Reply {
    read(agent().get(server.url(path)).call().unwrap())
}

fn sign(dirs: &Dirs, args: &[&str]) -> String {
    spis_cli(&dirs.state, &[&["url", "sign"][..], args].concat()).trim().to_owned()
}

#[test]
fn a_signed_url_serves_the_picture_to_anyone_and_any_change_to_it_is_refused() {
    let (dirs, server) = start(&[]);
    let url = sign(&dirs, &["Private/b c.jpg", "--width", "320"]);
    assert!(url.starts_with("/img/") && url.ends_with("/w320/contain/Private/b%20c.jpg.jpeg"), "{url}");
    let r = get(&server, &url);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/jpeg")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
    let picture = image::load_from_memory(&r.body).unwrap();
    assert!(picture.width() <= 320 && picture.width() >= 300, "{}x{}", picture.width(), picture.height());
    // The rest of the gallery stays closed to the same client.
    get(&server, "/api/media").assert_error(401, "unauthorized");
    // Validators: a cache in front revalidates for nothing.
    let etag = r.header("etag").unwrap().to_owned();
    let again = read(agent().get(server.url(&url)).header("If-None-Match", &etag).call().unwrap());
    assert_eq!(again.status, 304);

    // Another size, another photo, another signature: refused, 403.
    let sig = url.split('/').nth(2).unwrap();
    let mut flipped = sig.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    for changed in [
        url.replace("/w320/", "/w480/"),
        url.replace("b%20c.jpg", "a.jpg"),
        url.replace("/contain/", "/cover/"),
        url.replace(".jpeg", ".png"),
        url.replace(sig, &String::from_utf8(flipped).unwrap()),
        url.replace(sig, "_"),
    ] {
        get(&server, &changed).assert_error(403, "bad_signature");
    }
    // PNG and a cover crop of a box, signed as such.
    let png = get(
        &server,
        &sign(&dirs, &["Private/b c.jpg", "--width", "320", "--height", "320", "--cover", "--png"]),
    );
    assert_eq!(png.header("content-type"), Some("image/png"));
    let p = image::load_from_memory(&png.body).unwrap();
    assert_eq!((p.width(), p.height()), (320, 320));
}

#[test]
fn expired_unlisted_and_unindexed_urls_are_refused_before_any_file_is_read() {
    let (dirs, server) = start(&[]);
    let expired = sign(&dirs, &["Blog/2024/a.jpg", "--width", "320", "--expires-days", "0"]);
    get(&server, &expired).assert_error(403, "bad_signature");
    let later = sign(&dirs, &["Blog/2024/a.jpg", "--width", "320", "--expires-days", "7"]);
    let r = get(&server, &later);
    assert_eq!(r.status, 200);
    let max_age: u64 =
        r.header("cache-control").unwrap().trim_start_matches("public, max-age=").parse().unwrap();
    assert!(max_age <= 7 * 86_400 && max_age > 6 * 86_400, "cached no longer than it lives: {max_age}");
    // Signed with the same key for a size this server does not make: 400, the size named.
    let odd = spis_cli(
        &dirs.state,
        &["--resize-sizes", "320,333", "url", "sign", "Blog/2024/a.jpg", "--width", "333"],
    );
    let r = get(&server, odd.trim());
    r.assert_error(400, "bad_parameter");
    assert!(String::from_utf8_lossy(&r.body).contains("333"), "{}", String::from_utf8_lossy(&r.body));
    // The CLI refuses what the server would.
    let out = Command::new(env!("CARGO_BIN_EXE_spis"))
        .args(["url", "sign", "Blog/2024/a.jpg", "--width", "333", "--state-dir"])
        .arg(&dirs.state)
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("resize_sizes"));
    // Right signatures for what is not an indexed photo: nothing outside the index is read.
    std::fs::write(dirs.media.join("Blog/notes.jpg.txt"), "not a photo").unwrap();
    std::fs::write(
        dirs.root().join("outside.jpg"),
        std::fs::read(dirs.media.join("Blog/2024/a.jpg")).unwrap(),
    )
    .unwrap();
    for path in ["Blog/missing.jpg", "Blog/notes.jpg.txt"] {
        let url = spis_cli(&dirs.state, &["url", "sign", path, "--width", "320"]);
        get(&server, url.trim()).assert_error(404, "unknown_media");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_spis"))
        .args(["url", "sign", "../outside.jpg", "--width", "320", "--state-dir"])
        .arg(&dirs.state)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the CLI signs no path that could leave the media folder");
}

#[test]
fn the_public_folder_needs_no_signature_and_srcset_lists_every_width() {
    let (dirs, server) = start(&["--public-dir", "Blog"]);
    let r = get(&server, "/img/_/w800/contain/Blog/2024/a.jpg.jpeg");
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/jpeg")));
    get(&server, "/img/_/w800/contain/Private/b%20c.jpg.jpeg").assert_error(403, "bad_signature");
    get(&server, "/img/_/w800/contain/Bloggers/x.jpg.jpeg").assert_error(403, "bad_signature");

    let srcset = spis_cli(
        &dirs.state,
        &["--public-dir", "Blog", "url", "srcset", "Blog/2024/a.jpg", "--base", "https://photos.example.org"],
    );
    let entries: Vec<&str> = srcset.trim().split(",\n").collect();
    let widths = [320, 480, 640, 800, 1024, 1280, 1600, 1920, 2560];
    assert_eq!(entries.len(), widths.len(), "{srcset}");
    for (entry, w) in entries.iter().zip(widths) {
        let (url, descriptor) = entry.rsplit_once(' ').unwrap();
        assert_eq!(descriptor, format!("{w}w"));
        let path = url.strip_prefix("https://photos.example.org").unwrap();
        assert_eq!(path, format!("/img/_/w{w}/contain/Blog/2024/a.jpg.jpeg"), "public: unsigned");
        assert_eq!(get(&server, path).status, 200, "{path}");
    }
    // Outside the public folder srcset signs each one.
    let private = spis_cli(&dirs.state, &["url", "srcset", "Private/b c.jpg"]);
    let first = private.split(",\n").next().unwrap().rsplit_once(' ').unwrap().0;
    assert!(!first.starts_with("/img/_/"), "{first}");
    assert_eq!(get(&server, first).status, 200);
}
