//! What the index reports about real photos: dates, sizes, orientation, order, filters, facets.

use std::collections::HashSet;

use serde_json::Value;

use crate::util::{
    self, Dirs, PLAIN_JPEG, Server, copy_folder_from_corpus, copy_from_corpus, corpus, set_mtime,
};

/// Photos whose manifest date we do not find: FLIR keeps it in its own APP1 records, spread
/// over several segments (see `KNOWN_DIFFERENCES` in `probe/mod.rs`).
const DATE_NOT_FOUND: &[&str] = &["drewnoakes-metadata-extractor-images/jpg/FLIR iPhone device.jpg"];

/// (corpus path, ISO date prefix) for every photo the manifest gives a DateTimeOriginal.
fn manifest_dates() -> Vec<(String, String)> {
    let manifest = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).unwrap();
    manifest
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let (path, format, has, date) = (cols[0], cols[3], cols[8], cols[9]);
            // exiftool prints blanks as ":  :     :  :"; only full dates are expectations.
            let d = date.get(..19)?;
            let valid = has == "yes"
                && matches!(format, "JPEG" | "HEIC" | "MPO")
                && d.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                && !d.starts_with("0000")
                && !DATE_NOT_FOUND.contains(&path);
            valid.then(|| {
                let iso = format!("{}-{}-{}T{}", &d[..4], &d[5..7], &d[8..10], &d[11..19]);
                (path.to_owned(), iso)
            })
        })
        .collect()
}

#[test]
fn dates_taken_match_the_manifest() {
    let dirs = Dirs::new();
    let expected = manifest_dates();
    assert!(expected.len() > 100, "the manifest lists {} dated photos", expected.len());
    // Flatten into one folder under unique names so each item can be found by name.
    let files: Vec<(String, String)> =
        expected.iter().enumerate().map(|(n, (p, _))| (p.clone(), format!("{n:03}.{}", ext(p)))).collect();
    let pairs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    copy_from_corpus(&dirs.media, &pairs);
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let items = server.all_items("", 500);
    let mut wrong = Vec::new();
    for (n, (path, iso)) in expected.iter().enumerate() {
        let name = format!("{n:03}.{}", ext(path));
        let item =
            items.iter().find(|i| i["name"] == name.as_str()).unwrap_or_else(|| panic!("{path} not listed"));
        let taken = item["taken"].as_str().unwrap();
        // From the file's own metadata (EXIF, XMP, IPTC, a maker's record), not its name or mtime.
        let source = item["taken_source"].as_str().unwrap();
        if !taken.starts_with(iso.as_str()) || matches!(source, "file_name" | "mtime") {
            wrong.push(format!("{path}: expected {iso}, got {taken} ({})", item["taken_source"]));
        }
    }
    assert!(wrong.is_empty(), "{} of {} dates wrong:\n{}", wrong.len(), expected.len(), wrong.join("\n"));
}

fn ext(path: &str) -> &str {
    path.rsplit('.').next().unwrap()
}

#[test]
fn file_name_dates_are_used_without_exif() {
    let dirs = Dirs::new();
    let names = [
        ("IMG_20230114_093012.jpg", "2023-01-14T09:30:12"),
        ("PXL_20230114_093012123.jpg", "2023-01-14T09:30:12.123"),
        ("Screenshot_2023-01-14-09-30-12.jpg", "2023-01-14T09:30:12"),
        ("IMG-20230114-WA0001.jpg", "2023-01-14T00:00:00"),
        ("2023-01-14 09.30.12.jpg", "2023-01-14T09:30:12"),
    ];
    for (name, _) in names {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, name)]);
    }
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    for (name, iso) in names {
        let item = server.item_named(name);
        assert_eq!(item["taken"], iso, "{name}");
        assert_eq!(item["taken_source"], "file_name", "{name}");
    }
}

#[test]
fn mtime_is_the_last_resort_in_the_servers_zone() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "plain.jpg")]);
    // 2020-01-01T03:00:00Z is still 2019 on a New York wall clock.
    set_mtime(&dirs.media.join("plain.jpg"), 1_577_847_600);
    let tz = [("TZ", "EST5EDT,M3.2.0,M11.1.0")];
    let server = Server::start_with_env(&dirs.media, &dirs.state, &[], &tz);
    server.wait_indexed();
    let item = server.item_named("plain.jpg");
    assert_eq!(item["taken"], "2019-12-31T22:00:00-05:00");
    assert_eq!(item["taken_source"], "mtime");
    let facets = server.json("/api/facets");
    assert_eq!(facets["years"][0]["year"], 2019);
    assert_eq!(facets["years"][0]["months"][0]["month"], 12);
}

#[test]
fn a_new_years_eve_photo_stays_in_december_in_any_zone() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "PXL_20191231_233012345.jpg")]);
    for tz in ["UTC", "JST-9", "HST10"] {
        let server = Server::start_with_env(&dirs.media, &dirs.state, &[], &[("TZ", tz)]);
        server.wait_indexed();
        let page = server.json("/api/media?year=2019&month=12");
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "TZ={tz}");
        assert!(server.json("/api/media?year=2020")["items"].as_array().unwrap().is_empty());
    }
}

#[test]
fn all_eight_orientations_report_the_displayed_size() {
    let dirs = Dirs::new();
    copy_folder_from_corpus(&dirs.media, "recurser-exif-orientation-examples");
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let items = server.all_items("", 100);
    assert_eq!(items.len(), 18);
    for item in &items {
        let name = item["name"].as_str().unwrap();
        let (w, h) = (item["width"].as_u64().unwrap(), item["height"].as_u64().unwrap());
        let n: u64 = name[name.len() - 5..name.len() - 4].parse().unwrap();
        let expect_orientation = if n == 0 { 1 } else { n };
        assert_eq!(item["orientation"], expect_orientation, "{name}");
        if name.starts_with("Landscape") {
            assert_eq!((w, h), (1800, 1200), "{name}");
        } else {
            assert_eq!((w, h), (1200, 1800), "{name}");
        }
    }
}

#[test]
fn cursor_pagination_reaches_every_item_once_with_equal_dates() {
    let dirs = Dirs::new();
    // 230 files with one and the same mtime and no other date: every sort key ties on the date.
    for n in 0..230 {
        let name = format!("same/{n}.jpg");
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, &name)]);
        set_mtime(&dirs.media.join(&name), 1_600_000_000);
    }
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    for (order, limit) in [("desc", 7), ("asc", 7), ("desc", 100), ("asc", 500)] {
        let items = server.all_items(&format!("order={order}"), limit);
        let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), 230, "{order} {limit}");
        assert_eq!(unique.len(), 230, "{order} {limit}: duplicates");
    }
    // Stable: the same order every time, and asc is desc reversed.
    let desc: Vec<Value> = server.all_items("order=desc", 50).iter().map(|i| i["id"].clone()).collect();
    let mut asc: Vec<Value> = server.all_items("order=asc", 50).iter().map(|i| i["id"].clone()).collect();
    asc.reverse();
    assert_eq!(desc, asc);
}

#[test]
fn pages_stay_exact_while_files_come_and_go() {
    let dirs = Dirs::new();
    for n in 0..30 {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, &format!("IMG_20200101_0000{n:02}.jpg"))]);
    }
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let first = server.json("/api/media?limit=10");
    let cursor = first["next_cursor"].as_str().unwrap();
    // The cursor names a position, not an offset: a second page is the same whatever came before.
    let second = server.json(&format!("/api/media?limit=10&cursor={cursor}"));
    let names: Vec<&str> =
        second["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"IMG_20200101_000019.jpg"));
    assert_eq!(names.last(), Some(&"IMG_20200101_000010.jpg"));
}

#[test]
fn filters_and_facets_agree() {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[
            (PLAIN_JPEG, "2021/a/IMG_20210105_100000.jpg"),
            (PLAIN_JPEG, "2021/a/IMG_20210106_100000.jpg"),
            (PLAIN_JPEG, "2021/b/IMG_20210320_100000.jpg"),
            (PLAIN_JPEG, "2022/IMG_20220704_100000.jpg"),
            ("pypi-scikit-image-0.26.0/skimage/data/coffee.png", "2022/IMG_20221224_100000.png"),
            (PLAIN_JPEG, "2021-old/IMG_20210101_100000.jpg"),
        ],
    );
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let count = |q: &str| server.all_items(q, 2).len();
    assert_eq!(count(""), 6);
    assert_eq!(count("year=2021"), 4);
    assert_eq!(count("year=2021&month=1"), 3);
    assert_eq!(count("month=12"), 1);
    assert_eq!(count("dir=2021"), 3);
    assert_eq!(count("dir=2021/b"), 1);
    assert_eq!(count("dir=2021&year=2021&month=3"), 1);
    assert_eq!(count("kind=video"), 0);
    assert_eq!(count("kind=image&dir=2022"), 2);

    let f = server.json("/api/facets?dir=2021");
    assert_eq!(f["years"].as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f["years"][0]["count"], 3);
    // The folder facet ignores the folder filter, so other folders stay selectable.
    assert_eq!(f["folders"]["total"], 6);
    let f = server.json("/api/facets?year=2022");
    let folders = f["folders"]["children"].as_array().unwrap();
    let by_name = |n: &str| folders.iter().find(|c| c["name"] == n).cloned();
    assert_eq!(by_name("2022").unwrap()["total"], 2);
    assert!(by_name("2021").is_none(), "{f}");
    // Every year/month count equals what the list returns for it.
    for y in server.json("/api/facets")["years"].as_array().unwrap() {
        for m in y["months"].as_array().unwrap() {
            let q = format!("year={}&month={}", y["year"], m["month"]);
            assert_eq!(count(&q) as u64, m["count"].as_u64().unwrap(), "{q}");
        }
    }
}

#[test]
fn formats_are_sniffed_and_odd_files_are_listed_not_fatal() {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[
            ("pypi-scikit-image-0.26.0/skimage/data/coffee.png", "really-a-png.jpg"),
            (PLAIN_JPEG, "UPPER.JPEG"),
            (PLAIN_JPEG, ".hidden.jpg"),
            (PLAIN_JPEG, ".hidden-folder/inside.jpg"),
            (PLAIN_JPEG, "notes.txt"),
        ],
    );
    std::fs::write(dirs.media.join("empty.jpg"), b"").unwrap();
    std::fs::write(dirs.media.join("garbage.png"), b"this is not a picture at all").unwrap();
    let mut truncated = std::fs::read(corpus().join(PLAIN_JPEG)).unwrap();
    truncated.truncate(300);
    std::fs::write(dirs.media.join("truncated.jpg"), truncated).unwrap();
    // SAFETY: mkfifo with a valid C path; a FIFO must never hang the indexer.
    let fifo = std::ffi::CString::new(dirs.media.join("pipe.jpg").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let status = server.wait_indexed();
    let items = server.all_items("", 100);
    let mut names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["UPPER.JPEG", "empty.jpg", "garbage.png", "really-a-png.jpg", "truncated.jpg"],
        "{status}"
    );
    let png = server.item_named("really-a-png.jpg");
    assert_eq!((png["format"].as_str(), png["mime"].as_str()), (Some("png"), Some("image/png")));
    assert_eq!((png["width"].as_u64(), png["height"].as_u64()), (Some(600), Some(400)));
    let empty = server.item_named("empty.jpg");
    assert_eq!(empty["width"], Value::Null);
    // Still answering after all of that.
    assert_eq!(server.get("/api/health").status, 200);
}

#[test]
fn item_json_has_the_documented_fields() {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[("drewnoakes-metadata-extractor-images/jpg/Canon EOS 1000D.jpg", "trip/c.jpg")],
    );
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let item = server.item_named("c.jpg");
    for key in [
        "id", "name", "dir", "kind", "taken", "width", "height", "size", "favorite", "thumb", "preview",
        "original",
    ] {
        assert!(item.get(key).is_some(), "{key} missing from {item}");
    }
    assert_eq!(item["dir"], "trip");
    assert_eq!(item["kind"], "image");
    assert_eq!(item["camera"], "Canon EOS 1000D");
    // Orientation 6: a 3888x2592 sensor image displays as portrait.
    assert_eq!((item["width"].as_u64(), item["height"].as_u64()), (Some(2592), Some(3888)));
    let id = item["id"].as_str().unwrap();
    assert_eq!(server.json(&format!("/api/media/{id}")), item);
    // Thumbnails and previews always answer with a picture, never an error.
    for url in [item["thumb"].as_str().unwrap(), item["preview"].as_str().unwrap()] {
        let r = server.get(url);
        assert_eq!(r.status, 200, "{url}");
        assert!(r.header("content-type").unwrap().starts_with("image/"), "{url}");
    }
}

#[test]
fn ids_are_the_same_after_a_restart_and_for_another_replica() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "a/one.jpg"), (PLAIN_JPEG, "b/two.jpg")]);
    let ids = |server: &Server| {
        let mut v: Vec<String> =
            server.all_items("", 10).iter().map(|i| format!("{}={}", i["name"], i["id"])).collect();
        v.sort();
        v
    };
    let first = Server::start(&dirs.media, &dirs.state, &[]);
    first.wait_indexed();
    let before = ids(&first);
    // A second replica with its own state dir over the same folder, at the same time.
    let other_state = dirs.state.with_file_name("state-2");
    let second = Server::start(&dirs.media, &other_state, &[]);
    second.wait_indexed();
    assert_eq!(ids(&second), before);
    drop(first);
    let again = Server::start(&dirs.media, &dirs.state, &[]);
    again.wait_indexed();
    assert_eq!(ids(&again), before);
    let _ = util::agent();
}

#[test]
fn details_read_the_lens_from_the_file_on_demand() {
    let dirs = Dirs::new();
    // The standard EXIF LensModel tag (makers' own notes, like Canon's, are not read).
    copy_from_corpus(&dirs.media, &[("ianare-exif-samples/jpg/hdr/iphone_hdr_YES.jpg", "phone.jpg")]);
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let id = server.item_named("phone.jpg")["id"].as_str().unwrap().to_owned();
    let d = server.json(&format!("/api/media/{id}/details"));
    assert_eq!(d["lens"], "iPhone 6 back camera 4.15mm f/2.2", "{d}");
    assert_eq!((d["make"].as_str(), d["model"].as_str()), (Some("Apple"), Some("iPhone 6")));
    server.get("/api/media/AAAAAAAAAAA/details").assert_error(404, "unknown_media");
    std::fs::remove_file(dirs.media.join("phone.jpg")).unwrap();
    let gone = server.get(&format!("/api/media/{id}/details"));
    assert_eq!(gone.status, 404, "{}", String::from_utf8_lossy(&gone.body));
}

#[test]
fn pages_and_facets_are_gzipped_for_clients_that_take_it() {
    let dirs = Dirs::new();
    // 40 folders: the facets' folder tree too is over the 1 KiB below which nothing is packed.
    for i in 0..40 {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, &format!("Trip {i}/IMG_{i:04}.jpg"))]);
    }
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    for path in ["/api/media?limit=100", "/api/facets"] {
        let plain = server.get(path);
        assert_eq!(plain.header("content-encoding"), None, "{path}: not asked for");
        let gz = server.get_with(path, &[("Accept-Encoding", "gzip, deflate, br")]);
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(gz.header("vary"), Some("Accept-Encoding"), "{path}");
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut unpacked).unwrap();
        assert_eq!(unpacked, plain.body, "{path}: the same answer");
        if path.starts_with("/api/media") {
            assert!(
                gz.body.len() * 3 < plain.body.len(),
                "{path}: {} of {} bytes",
                gz.body.len(),
                plain.body.len()
            );
        }
        // Each encoding has its validator: a 304 only for the one the client holds.
        let (etag, plain_etag) = (gz.header("etag").unwrap(), plain.header("etag").unwrap());
        assert_ne!(etag, plain_etag);
        let again = server.get_with(path, &[("Accept-Encoding", "gzip"), ("If-None-Match", etag)]);
        assert_eq!(again.status, 304, "{path}");
        let other = server.get_with(path, &[("If-None-Match", etag)]);
        assert_eq!((other.status, other.header("content-encoding")), (200, None), "{path}");
    }
    // curl, a real client, unpacks it to the same JSON.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--compressed", "-w", "\n%{size_download}"])
        .arg(server.url("/api/media?limit=100"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, downloaded) = text.rsplit_once('\n').unwrap();
    assert_eq!(body.as_bytes(), server.get("/api/media?limit=100").body);
    assert!(
        downloaded.parse::<usize>().unwrap() * 3 < body.len(),
        "{downloaded} bytes sent for {}",
        body.len()
    );
}
