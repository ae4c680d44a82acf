//! Thumbnails and previews over HTTP: upright, cached in memory and on disk, made once.

use std::collections::HashMap;

use crate::util::{
    Dirs, PLAIN_JPEG, Server, copy_folder_from_corpus, copy_from_corpus, set_mtime, wait_until,
};

/// No background workers, so every decode in these tests is one the test asked for.
const ON_DEMAND: &[&str] = &["--thumb-workers", "0"];

fn decode(jpeg: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).expect("a JPEG").to_rgb8()
}

/// A media folder holding one small photo, `a.jpg`, served with thumbnails made on request only.
fn one_photo() -> (Dirs, Server) {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "a.jpg")]);
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    (dirs, server)
}

/// The JPEG at `url`, decoded; fails the test when the server answers anything else (with the
/// placeholder's reason, when it sent one).
fn jpeg_at(server: &Server, url: &str) -> image::RgbImage {
    let r = server.get(url);
    assert_eq!(r.status, 200, "{url}");
    assert_eq!(r.header("content-type"), Some("image/jpeg"), "{url}: {:?}", r.header("x-spis-placeholder"));
    decode(&r.body)
}

fn thumbnail_stat(server: &Server, key: &str) -> u64 {
    server.json("/api/status")["thumbnails"][key].as_u64().unwrap()
}

/// Mean absolute difference per channel between two images of the same size, 0-255.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn all_eight_orientations_give_upright_thumbnails() {
    let dirs = Dirs::new();
    copy_folder_from_corpus(&dirs.media, "recurser-exif-orientation-examples");
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    let thumbs: HashMap<String, image::RgbImage> = server
        .all_items("", 100)
        .iter()
        .map(|i| {
            let r = server.get(i["thumb"].as_str().unwrap());
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-type"), Some("image/jpeg"));
            (i["name"].as_str().unwrap().to_owned(), decode(&r.body))
        })
        .collect();
    for shape in ["Landscape", "Portrait"] {
        let reference = &thumbs[&format!("{shape}_1.jpg")];
        let (w, h) = reference.dimensions();
        assert_eq!(w.max(h), 400, "{shape}: the long side is the thumbnail size");
        assert_eq!(w > h, shape == "Landscape");
        for n in 0..=8 {
            let name = format!("{shape}_{n}.jpg");
            let diff = difference(&thumbs[&name], reference);
            // Same picture, only re-encoded: a wrong turn or mirror differs by far more than 10.
            assert!(diff < 10.0, "{name} is not upright: mean difference {diff:.1}");
        }
    }
}

#[test]
fn previews_are_bigger_than_thumbnails_and_never_upscaled() {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[
            ("debian-lomiri-wallpapers-16.04/backgrounds/seeding_by_Clements_Engelhardt.jpg", "big.jpg"),
            (PLAIN_JPEG, "small.jpg"),
        ],
    );
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    let big = server.item_named("big.jpg");
    let preview = jpeg_at(&server, big["preview"].as_str().unwrap());
    assert_eq!(preview.dimensions(), (1600, 900));
    let thumb = jpeg_at(&server, big["thumb"].as_str().unwrap());
    assert_eq!(thumb.dimensions(), (400, 225));
    // rocket.jpg is 640x427: the preview keeps its size instead of inventing pixels.
    let small = server.item_named("small.jpg");
    let preview = jpeg_at(&server, small["preview"].as_str().unwrap());
    assert_eq!(preview.dimensions(), (640, 427));
}

#[test]
fn renditions_are_cached_with_immutable_etags_and_answer_304() {
    let (_dirs, server) = one_photo();
    let url = server.item_named("a.jpg")["thumb"].as_str().unwrap().to_owned();
    let first = server.get(&url);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("cache-control"), Some("public, max-age=31536000, immutable"));
    let etag = first.header("etag").unwrap().to_owned();
    let again = server.get_with(&url, &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(server.get(&url).body, first.body);
    assert_eq!(thumbnail_stat(&server, "decoded"), 1);
    assert!(thumbnail_stat(&server, "memory_hits") >= 2);
}

#[test]
fn cache_survives_a_restart_without_decoding_again() {
    let (dirs, server) = one_photo();
    let item = server.item_named("a.jpg");
    let thumb = server.get(item["thumb"].as_str().unwrap()).body;
    assert_eq!(thumbnail_stat(&server, "decoded"), 1);
    drop(server);

    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    assert_eq!(server.get(item["thumb"].as_str().unwrap()).body, thumb);
    assert_eq!(server.get(item["preview"].as_str().unwrap()).status, 200);
    assert_eq!(thumbnail_stat(&server, "decoded"), 0);
    assert_eq!(thumbnail_stat(&server, "disk_hits"), 2);
}

#[test]
fn a_changed_file_gets_a_new_url_and_a_new_thumbnail() {
    let (dirs, server) = one_photo();
    let before = server.item_named("a.jpg");
    let old = server.get(before["thumb"].as_str().unwrap()).body;
    drop(server);
    copy_from_corpus(
        &dirs.media,
        &[("debian-lomiri-wallpapers-16.04/backgrounds/Wine_by_Jakkub_Mede.jpg", "a.jpg")],
    );
    set_mtime(&dirs.media.join("a.jpg"), 1_700_000_000);
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    let after = server.item_named("a.jpg");
    assert_ne!(after["thumb"], before["thumb"]);
    let new = server.get(after["thumb"].as_str().unwrap()).body;
    assert_ne!(new, old);
    assert_eq!(decode(&new).dimensions(), (267, 400));
    assert_eq!(thumbnail_stat(&server, "decoded"), 1);
}

#[test]
fn concurrent_requests_for_one_thumbnail_decode_once() {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[("debian-lomiri-wallpapers-16.04/backgrounds/seeding_by_Clements_Engelhardt.jpg", "big.jpg")],
    );
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    let item = server.item_named("big.jpg");
    let urls = [item["thumb"].as_str().unwrap(), item["preview"].as_str().unwrap()];
    let server = &server;
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|n| s.spawn(move || server.get(urls[n % 2]).body)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(bodies.iter().all(|b| !b.is_empty()));
    assert!(bodies.iter().step_by(2).all(|b| *b == bodies[0]));
    assert_eq!(thumbnail_stat(server, "decoded"), 1, "one decode makes both renditions");
}

#[test]
fn formats_without_a_decoder_get_a_placeholder_not_an_error() {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[
            ("ianare-exif-samples/heic/mobile/HMD_Nokia_8.3_5G.heif", "phone.heif"),
            ("link-u-avif-sample-images/fox.profile0.8bpc.yuv420.avif", "fox.avif"),
        ],
    );
    std::fs::write(dirs.media.join("broken.jpg"), b"\xff\xd8\xff\xe0 not really").unwrap();
    std::fs::write(dirs.media.join("clip.mp4"), b"\0\0\0\x18ftypisom not a real video").unwrap();
    // No external decoders on PATH: HEIC, AVIF and video have nothing to turn them into pixels.
    let no_tools = [("PATH", "/nonexistent")];
    let server = Server::start_with_env(&dirs.media, &dirs.state, ON_DEMAND, &no_tools);
    server.wait_indexed();
    assert_eq!(server.json("/api/status")["thumbnails"]["decoders"]["ffmpeg"], false);
    for item in server.all_items("", 10) {
        for url in [item["thumb"].as_str().unwrap(), item["preview"].as_str().unwrap()] {
            let r = server.get(url);
            assert_eq!(r.status, 200, "{url}");
            assert_eq!(r.header("content-type"), Some("image/svg+xml"), "{}", item["name"]);
            let why = r.header("x-spis-placeholder").unwrap();
            let hint = match item["name"].as_str().unwrap() {
                "phone.heif" | "fox.avif" => "install libheif",
                "clip.mp4" => "install ffmpeg",
                _ => "",
            };
            assert!(why.contains(hint), "{}: {why}", item["name"]);
            assert!(String::from_utf8_lossy(&r.body).contains(why), "the tile says why");
        }
    }
    // A failure is remembered: asking again does not decode again.
    let decoded = thumbnail_stat(&server, "decoded");
    let broken = server.item_named("broken.jpg");
    server.get(broken["thumb"].as_str().unwrap());
    assert_eq!(thumbnail_stat(&server, "decoded"), decoded);
}

#[test]
fn background_workers_fill_the_cache_newest_first() {
    let dirs = Dirs::new();
    for n in 0..6 {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, &format!("IMG_2020010{n}_120000.jpg"))]);
    }
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "2"]);
    server.wait_indexed();
    wait_until("the background pass has made all 6", || {
        let t = &server.json("/api/status")["thumbnails"];
        t["background"]["total"] == 6 && t["background"]["done"] == 6
    });
    assert_eq!(thumbnail_stat(&server, "decoded"), 6);
    let item = server.all_items("", 1).remove(0);
    let before = thumbnail_stat(&server, "decoded");
    assert_eq!(server.get(item["thumb"].as_str().unwrap()).status, 200);
    assert_eq!(thumbnail_stat(&server, "decoded"), before, "served from the cache");
}

#[test]
fn the_background_pass_walks_every_item_once_across_its_batches() {
    // The pass reads the index 256 items at a time: 600 photos cross two batch boundaries.
    // Each is decoded once, none is missed.
    let dirs = Dirs::new();
    let tiny = "image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-progressive.jpg";
    let tiny = std::fs::read(crate::util::corpus().join(tiny)).unwrap();
    for n in 0..600 {
        std::fs::write(dirs.media.join(format!("IMG_{n:04}.jpg")), &tiny).unwrap();
        set_mtime(&dirs.media.join(format!("IMG_{n:04}.jpg")), 1_600_000_000 + n);
    }
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "2", "--thumb-avif", "false"]);
    server.wait_indexed();
    let mut last = serde_json::Value::Null;
    let made = (0..3000).any(|_| {
        last = server.json("/api/status")["thumbnails"].clone();
        let done = last["background"]["total"] == 600 && last["background"]["done"] == 600;
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        done
    });
    assert!(made, "the background pass did not make all 600: {last}");
    assert_eq!(thumbnail_stat(&server, "decoded"), 600, "each photo decoded once");
    let items = server.all_items("", 100);
    let with_hash = items.iter().filter(|i| i["thumbhash"].is_string()).count();
    assert_eq!(with_hash, 600, "every photo has its thumbhash");
}

#[test]
fn the_background_pass_sweeps_stale_cache_entries() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "a.jpg")]);
    // Left over from a file that changed, and from an older pipeline.
    let shard = dirs.state.join("cache/A");
    std::fs::create_dir_all(&shard).unwrap();
    let stale = [
        "AAAAAAAAAAA-00000000-thumb-p1.jpg",
        "AAAAAAAAAAA-00000000-preview-p0.jpg",
        "AAAAAAAAAAA-00000000-thumb-p1.avif",
    ]
    .map(|n| shard.join(n));
    for path in &stale {
        std::fs::write(path, b"old").unwrap();
    }
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "1"]);
    server.wait_indexed();
    wait_until("stale entries are swept", || stale.iter().all(|p| !p.exists()));
    wait_until("the AVIF pass is done", || server.json("/api/status")["thumbnails"]["avif"]["done"] == 1);
    let entries: usize = std::fs::read_dir(dirs.state.join("cache"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|shard| shard.is_dir())
        .map(|shard| std::fs::read_dir(shard).unwrap().count())
        .sum();
    assert_eq!(entries, 3, "the current thumbnail, its AVIF and the preview stay");
}

#[test]
fn items_carry_a_thumbhash_once_their_thumbnail_exists_and_after_a_restart() {
    let (dirs, server) = one_photo();
    let item = server.item_named("a.jpg");
    assert_eq!(item["thumbhash"], serde_json::Value::Null, "no thumbnail made yet");
    assert_eq!(server.get(item["thumb"].as_str().unwrap()).status, 200);
    let hash = server.item_named("a.jpg")["thumbhash"].as_str().expect("a thumbhash").to_owned();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(&hash).unwrap();
    assert!((5..=40).contains(&bytes.len()), "{} bytes", bytes.len());
    drop(server);

    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    wait_until("the remembered thumbhash is attached", || {
        server.item_named("a.jpg")["thumbhash"] == hash.as_str()
    });
    assert_eq!(thumbnail_stat(&server, "decoded"), 0);
}

/// Whether a tool the external-decoder tests need is installed (`make test` installs them).
fn have(tool: &str) -> bool {
    std::process::Command::new(tool).arg("-version").output().is_ok()
        || std::process::Command::new(tool).arg("--help").output().is_ok()
}

#[test]
fn heic_and_avif_get_real_thumbnails_through_libheif() {
    assert!(
        have("heif-convert") || have("heif-dec"),
        "libheif-examples is not installed (make test installs it)"
    );
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[
            ("ianare-exif-samples/heic/mobile/HMD_Nokia_8.3_5G.heif", "phone.heif"),
            ("link-u-avif-sample-images/fox.profile0.8bpc.yuv420.avif", "fox.avif"),
        ],
    );
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    assert_eq!(server.json("/api/status")["thumbnails"]["decoders"]["heif"], true);
    for (name, size) in [("phone.heif", (300, 400)), ("fox.avif", (400, 266))] {
        let item = server.item_named(name);
        // The displayed size: libheif applies the HEIF rotation itself, and spis does not again.
        assert_eq!(jpeg_at(&server, item["thumb"].as_str().unwrap()).dimensions(), size, "{name}");
        assert_eq!(
            (item["width"].as_u64().unwrap() > item["height"].as_u64().unwrap()),
            size.0 > size.1,
            "{name}"
        );
    }
    // The same picture as a JPEG, through the pure-Rust pipeline: the AVIF was really decoded.
    copy_from_corpus(&dirs.media, &[("link-u-avif-sample-images/fox.jpg", "fox.jpg")]);
    drop(server);
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    let thumb = |name: &str| jpeg_at(&server, server.item_named(name)["thumb"].as_str().unwrap());
    let diff = difference(&thumb("fox.avif"), &thumb("fox.jpg"));
    assert!(diff < 10.0, "the AVIF thumbnail differs from the JPEG one by {diff:.1}");
}

#[test]
fn videos_get_a_poster_frame_through_ffmpeg() {
    assert!(have("ffmpeg"), "ffmpeg is not installed (make test installs it)");
    let dirs = Dirs::new();
    // Real videos made by ffmpeg itself: a 2 s MP4, a WebM shorter than the 1 s seek, and a
    // Matroska file with a recording date.
    for (name, secs) in [("clip.mp4", "2"), ("short.webm", "0.3"), ("dated.mkv", "1.5")] {
        crate::util::make_video(
            &dirs.media.join(name),
            secs,
            &["-metadata", "creation_time=2019-02-03T04:05:06Z"],
        );
    }
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    let clip = server.item_named("clip.mp4");
    assert_eq!((clip["kind"].as_str(), clip["duration_ms"].as_u64()), (Some("video"), Some(2000)));
    for (name, format, ms) in [("short.webm", "webm", 300), ("dated.mkv", "mkv", 1500)] {
        let item = server.item_named(name);
        assert_eq!(
            (item["format"].as_str(), item["duration_ms"].as_u64()),
            (Some(format), Some(ms)),
            "{item}"
        );
        assert_eq!((item["width"].as_u64(), item["height"].as_u64()), (Some(320), Some(240)), "{item}");
        assert_eq!(item["taken"], "2019-02-03T04:05:06+00:00", "{item}");
        assert_eq!(item["taken_source"], "container");
    }
    for name in ["clip.mp4", "short.webm", "dated.mkv"] {
        let item = server.item_named(name);
        for url in [item["thumb"].as_str().unwrap(), item["preview"].as_str().unwrap()] {
            assert_eq!(jpeg_at(&server, url).dimensions(), (320, 240), "{name}");
        }
    }
    assert_eq!(thumbnail_stat(&server, "decoded"), 3);
}

#[test]
fn resize_serves_listed_sizes_only_and_caches_them() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[("recurser-exif-orientation-examples/Landscape_6.jpg", "l6.jpg")]);
    let server =
        Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "0", "--resize-sizes", "100,300"]);
    server.wait_indexed();
    let id = server.item_named("l6.jpg")["id"].as_str().unwrap().to_owned();
    let url = |q: &str| format!("/api/media/{id}/resize?{q}");

    let r = server.get(&url("w=300&h=300&fit=cover"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/jpeg")));
    assert_eq!(decode(&r.body).dimensions(), (300, 300));
    let etag = r.header("etag").unwrap().to_owned();
    assert_eq!(server.get_with(&url("w=300&h=300&fit=cover"), &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(jpeg_at(&server, &url("w=300")).dimensions(), (300, 200));
    let png = server.get(&url("w=100&h=100&fit=contain&format=png"));
    assert_eq!(png.header("content-type"), Some("image/png"));
    let png = image::load_from_memory(&png.body).unwrap();
    assert_eq!((png.width(), png.height()), (100, 67));
    // Asked again: from the cache, no new decode.
    let decoded = thumbnail_stat(&server, "decoded");
    server.get(&url("w=300&h=300&fit=cover"));
    assert_eq!(thumbnail_stat(&server, "decoded"), decoded);

    for (q, param) in [
        ("w=301", "w"),
        ("w=300&h=5000", "h"),
        ("h=300", "w"),
        ("w=300&fit=fill", "fit"),
        ("w=300&format=gif", "format"),
    ] {
        let r = server.get(&url(q));
        r.assert_error(400, "bad_parameter");
        assert!(r.json()["error"].as_str().unwrap().contains(param), "{q}");
    }
    server.get(&url("w=300&x=1")).assert_error(400, "unknown_parameter");
}

#[test]
fn every_corpus_file_gets_a_thumbnail_or_a_placeholder_in_bounded_time() {
    let dirs = Dirs::new();
    let manifest = std::fs::read_to_string(crate::util::corpus().join("MANIFEST.tsv")).unwrap();
    let files: Vec<(String, String)> = manifest
        .lines()
        .skip(1)
        .enumerate()
        .map(|(n, line)| {
            let path = line.split('\t').next().unwrap().to_owned();
            // Flattened under unique names that keep the extension (which decides what is listed).
            let ext = path.rsplit('.').next().unwrap_or("").to_owned();
            (path, format!("f{n:03}.{ext}"))
        })
        .collect();
    let pairs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    copy_from_corpus(&dirs.media, &pairs);
    let server = Server::start(&dirs.media, &dirs.state, ON_DEMAND);
    server.wait_indexed();
    let items = server.all_items("", 500);
    assert!(items.len() > 400, "{} of {} corpus files listed", items.len(), files.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<(String, String, std::time::Duration)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    while let Some(item) = items.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let started = std::time::Instant::now();
                        let r = server.get(item["thumb"].as_str().unwrap());
                        assert_eq!(r.status, 200, "{}", item["name"]);
                        let kind = match r.header("content-type") {
                            Some("image/jpeg") => {
                                decode(&r.body);
                                "thumbnail".to_owned()
                            }
                            Some("image/svg+xml") => {
                                format!("placeholder: {}", r.header("x-spis-placeholder").unwrap())
                            }
                            other => panic!("{}: content type {other:?}", item["name"]),
                        };
                        seen.push((item["name"].as_str().unwrap().to_owned(), kind, started.elapsed()));
                    }
                    seen
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(outcomes.len(), items.len());
    let thumbnails = outcomes.iter().filter(|(_, k, _)| k == "thumbnail").count();
    // Most of the corpus is ordinary photos; the rest is deliberately broken test files.
    assert!(thumbnails * 10 >= outcomes.len() * 8, "only {thumbnails} of {} got a thumbnail", outcomes.len());
    let slowest = outcomes.iter().max_by_key(|(_, _, t)| *t).unwrap();
    assert!(slowest.2 < std::time::Duration::from_secs(30), "{} took {:?}", slowest.0, slowest.2);
    assert_eq!(server.get("/api/health").status, 200, "still answering");
}

#[test]
fn grid_thumbnails_come_in_avif_to_browsers_that_accept_it_once_the_pass_made_them() {
    use crate::img::{CHROME_ACCEPT, decode_avif};
    use crate::util::{agent, read};
    let asking = |server: &Server, url: &str, accept: &str, etag: Option<&str>| {
        let mut req = agent().get(server.url(url)).header("Accept", accept);
        if let Some(etag) = etag {
            req = req.header("If-None-Match", etag);
        }
        read(req.call().unwrap())
    };
    let (dirs, server) = one_photo();
    let url = server.item_named("a.jpg")["thumb"].as_str().unwrap().to_owned();
    // No background pass, so no AVIF: a browser that wants one gets the JPEG, not for good.
    let jpeg = asking(&server, &url, CHROME_ACCEPT, None);
    assert_eq!(jpeg.header("content-type"), Some("image/jpeg"));
    assert_eq!(jpeg.header("cache-control"), Some("public, max-age=3600"));
    assert!(jpeg.header("vary").is_some_and(|v| v.contains("Accept")), "{:?}", jpeg.header("vary"));
    let plain = asking(&server, &url, "*/*", None);
    assert_eq!(plain.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(plain.body, jpeg.body);
    drop(server);

    // The background pass makes every JPEG, then the AVIFs from the previews.
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "1"]);
    server.wait_indexed();
    wait_until("the AVIF pass is done", || server.json("/api/status")["thumbnails"]["avif"]["done"] == 1);
    let jpeg_etag = jpeg.header("etag").unwrap();
    let avif = asking(&server, &url, CHROME_ACCEPT, Some(jpeg_etag));
    assert_eq!(
        (avif.status, avif.header("content-type")),
        (200, Some("image/avif")),
        "not a 304 for the JPEG's ETag"
    );
    assert_eq!(avif.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert!(avif.header("vary").is_some_and(|v| v.contains("Accept")));
    assert_ne!(avif.header("etag"), Some(jpeg_etag));
    let (from_avif, from_jpeg) = (decode_avif(&avif.body), decode(&jpeg.body));
    assert_eq!(from_avif.dimensions(), from_jpeg.dimensions(), "the same 400 px picture");
    let diff = difference(&from_avif, &from_jpeg);
    assert!(diff < 6.0, "the AVIF shows the thumbnail's picture: mean difference {diff:.2}");
    assert!(avif.body.len() < jpeg.body.len(), "AVIF {} bytes, JPEG {}", avif.body.len(), jpeg.body.len());
    let again = asking(&server, &url, CHROME_ACCEPT, avif.header("etag"));
    assert_eq!(again.status, 304);
    assert_eq!(asking(&server, &url, "image/webp,*/*;q=0.8", None).body, jpeg.body, "JPEG to the others");
    drop(server);

    // Switched off: JPEG for everyone, for good, and nothing varies.
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "0", "--thumb-avif", "false"]);
    server.wait_indexed();
    let r = asking(&server, &url, CHROME_ACCEPT, None);
    assert_eq!((r.header("content-type"), r.header("vary")), (Some("image/jpeg"), None));
    assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
}

#[test]
fn a_new_photo_gets_its_jpeg_thumbnail_first_and_its_avif_soon_after() {
    use crate::img::CHROME_ACCEPT;
    use crate::util::{agent, read};
    let (dirs, server) = one_photo();
    drop(server);
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "1"]);
    server.wait_indexed();
    wait_until("the AVIF pass is done", || server.json("/api/status")["thumbnails"]["avif"]["done"] == 1);

    // A camera's snapshot, after the pass: made by the new-file path, the AVIF on its own thread.
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "b.jpg")]);
    let mut url = String::new();
    wait_until("b.jpg is listed with its thumbhash", || {
        let listed = server.all_items("", 500).into_iter().find(|i| i["name"] == "b.jpg");
        listed.is_some_and(|item| {
            url = item["thumb"].as_str().unwrap_or_default().to_owned();
            item["thumbhash"].is_string()
        })
    });
    let jpeg = server.get(&url);
    assert_eq!((jpeg.status, jpeg.header("content-type")), (200, Some("image/jpeg")));
    wait_until("b.jpg's AVIF thumbnail", || {
        let r = read(agent().get(server.url(&url)).header("Accept", CHROME_ACCEPT).call().unwrap());
        r.header("content-type") == Some("image/avif")
    });
}
