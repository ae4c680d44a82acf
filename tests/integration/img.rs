//! Image URLs for static sites: `spis url sign` and `srcset` make them, the server answers them
//! with no session, and refuses a changed, expired or unsigned one, sizes outside resize_sizes
//! and anything that is not an indexed photo.

use std::process::Command;

use crate::util::{Dirs, PLAIN_JPEG, Reply, Server, agent, copy_from_corpus, read, spis_cli};

/// What Chrome sends for an `<img>`.
pub(crate) const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

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

fn get_accepting(server: &Server, path: &str, accept: &str) -> Reply {
    read(agent().get(server.url(path)).header("Accept", accept).call().unwrap())
}

/// An AVIF decoded by libheif (the oracle: not our code), as RGB.
pub(crate) fn decode_avif(avif: &[u8]) -> image::RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.avif"), dir.path().join("out.png"));
    std::fs::write(&input, avif).unwrap();
    let tool = ["heif-dec", "heif-convert"]
        .into_iter()
        .find(|t| Command::new(t).arg("--version").output().is_ok())
        .expect("libheif's heif-dec or heif-convert (scripts/setup-test-deps.sh installs it)");
    let out = Command::new(tool).arg(&input).arg(&output).output().unwrap();
    assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
    image::open(&output).unwrap().to_rgb8()
}

/// The mean absolute difference of two pictures of one size, per channel, 0..=255.
fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
    sum as f64 / a.as_raw().len() as f64
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
        &sign(&dirs, &["Private/b c.jpg", "--width", "320", "--height", "320", "--cover", "--format", "png"]),
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

#[test]
fn avif_is_made_on_request_and_auto_follows_the_accept_header() {
    let (dirs, server) = start(&[]);
    let jpeg = get(&server, &sign(&dirs, &["Private/b c.jpg", "--width", "640"]));
    let avif_url = sign(&dirs, &["Private/b c.jpg", "--width", "640", "--format", "avif"]);
    assert!(avif_url.ends_with("/w640/contain/Private/b%20c.jpg.avif"), "{avif_url}");
    let avif = get(&server, &avif_url);
    assert_eq!((avif.status, avif.header("content-type")), (200, Some("image/avif")));
    assert_eq!(avif.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert!(avif.header("vary").is_none(), "a fixed format does not vary: {:?}", avif.header("vary"));
    // The same picture, as libheif sees it, in a fraction of the bytes.
    let (from_avif, from_jpeg) =
        (decode_avif(&avif.body), image::load_from_memory(&jpeg.body).unwrap().to_rgb8());
    let diff = mean_difference(&from_avif, &from_jpeg);
    assert!(diff < 6.0, "the AVIF shows the JPEG's picture: mean difference {diff:.2}");
    // (19 KB against 34 KB for this detailed picture; a quarter for smoother camera photos.)
    assert!(
        avif.body.len() * 4 < jpeg.body.len() * 3,
        "AVIF {} bytes against JPEG {}",
        avif.body.len(),
        jpeg.body.len()
    );

    // `.auto`: AVIF to a browser that names it, JPEG to one that does not, and caches told so.
    let auto = sign(&dirs, &["Private/b c.jpg", "--width", "640", "--format", "auto"]);
    assert!(auto.ends_with(".jpg.auto"), "{auto}");
    let to_chrome = get_accepting(&server, &auto, CHROME_ACCEPT);
    assert_eq!(to_chrome.header("content-type"), Some("image/avif"));
    assert_eq!(to_chrome.body, avif.body, "the same cached AVIF");
    for accept in ["*/*", "image/webp,*/*;q=0.8", "image/avif;q=0"] {
        let r = get_accepting(&server, &auto, accept);
        assert_eq!(r.header("content-type"), Some("image/jpeg"), "{accept}");
        assert_eq!(r.body, jpeg.body, "{accept}");
        assert!(r.header("vary").is_some_and(|v| v.contains("Accept")), "{:?}", r.header("vary"));
    }
    assert!(to_chrome.header("vary").is_some_and(|v| v.contains("Accept")));
    // Each encoding has its own validator: a JPEG client never gets a 304 for the AVIF's ETag.
    let avif_etag = to_chrome.header("etag").unwrap().to_owned();
    let revalidated = read(
        agent()
            .get(server.url(&auto))
            .header("Accept", "*/*")
            .header("If-None-Match", &avif_etag)
            .call()
            .unwrap(),
    );
    assert_eq!((revalidated.status, revalidated.header("content-type")), (200, Some("image/jpeg")));
    let same = read(
        agent()
            .get(server.url(&auto))
            .header("Accept", CHROME_ACCEPT)
            .header("If-None-Match", &avif_etag)
            .call()
            .unwrap(),
    );
    assert_eq!(same.status, 304);

    // WebP: refused with the reason, in the URL and in the CLI alike.
    let webp = auto.replace(".auto", ".webp");
    let r = get(&server, &webp);
    assert_eq!(r.status, 403, "a changed URL is refused before its format is looked at");
    let out = Command::new(env!("CARGO_BIN_EXE_spis"))
        .args(["url", "sign", "Private/b c.jpg", "--width", "640", "--format", "webp", "--state-dir"])
        .arg(&dirs.state)
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no lossy WebP"));
    let r = get(&server, "/img/_/w640/contain/Blog/2024/a.jpg.webp");
    r.assert_error(403, "bad_signature");

    // The session API's /resize takes the same formats.
    let token = spis_cli(&dirs.state, &["token", "create", "site-builder"]).trim().to_owned();
    let bearer = format!("Bearer {token}");
    let with = |path: &str, accept: &str| {
        read(
            agent()
                .get(server.url(path))
                .header("Authorization", &bearer)
                .header("Accept", accept)
                .call()
                .unwrap(),
        )
    };
    let page = with("/api/media?limit=5", "application/json").json();
    let id = page["items"].as_array().unwrap().iter().find(|i| i["name"] == "b c.jpg").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resize = format!("/api/media/{id}/resize?w=640&format=auto");
    let r = with(&resize, CHROME_ACCEPT);
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/avif")));
    assert_eq!(r.body, avif.body, "one cache entry for both routes");
    assert!(r.header("vary").is_some_and(|v| v.contains("Accept")));
    assert_eq!(with(&resize, "*/*").header("content-type"), Some("image/jpeg"));
    let r = with(&format!("/api/media/{id}/resize?w=640&format=webp"), CHROME_ACCEPT);
    r.assert_error(400, "bad_parameter");
    assert!(
        String::from_utf8_lossy(&r.body).contains("no lossy WebP"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn the_readme_nginx_cache_keeps_one_answer_per_format() {
    let (dirs, server) = start(&[]);
    // The README's recipe, as written, pointed at this server and a temporary cache.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let recipe = readme
        .split("```nginx\n")
        .find(|block| block.contains("proxy_cache spis_img"))
        .and_then(|block| block.split("```").next())
        .expect("the README's nginx cache recipe");
    let port = crate::proxy::free_port();
    let conf = recipe
        .replace("/var/cache/nginx/spis-img", "@DIR@/img-cache")
        .replace("http://127.0.0.1:8080", &server.url(""))
        .replace("server {", &format!("server {{\n    listen 127.0.0.1:{port};"));
    let nginx = crate::proxy::Nginx::start_with(port, &conf);
    let auto = sign(&dirs, &["Private/b c.jpg", "--width", "320", "--format", "auto"]);
    let via = |accept: &str| {
        read(agent().get(format!("{}{auto}", nginx.base())).header("Accept", accept).call().unwrap())
    };
    let (first_avif, first_jpeg) = (via(CHROME_ACCEPT), via("*/*"));
    assert_eq!(first_avif.header("x-cache"), Some("MISS"), "{}", nginx.error_log());
    assert_eq!(first_jpeg.header("x-cache"), Some("MISS"), "another key for the JPEG");
    assert!(first_avif.header("vary").is_some_and(|v| v.contains("Accept")), "browsers' caches still told");
    for _ in 0..2 {
        for (accept, kind, first) in
            [(CHROME_ACCEPT, "image/avif", &first_avif), ("image/webp,*/*", "image/jpeg", &first_jpeg)]
        {
            let r = via(accept);
            assert_eq!(
                (r.header("x-cache"), r.header("content-type")),
                (Some("HIT"), Some(kind)),
                "{accept}"
            );
            assert_eq!(r.body, first.body);
        }
    }
}
