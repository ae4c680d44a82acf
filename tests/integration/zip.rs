//! Zip downloads: `/api/zip` against the real server, fetched with curl and checked with the
//! readers people use (`unzip -t` and Python's `zipfile`): a folder of 5,000 files, a selection,
//! a ZIP64 archive past 4 GiB made of a sparse file, and the refusals.

use std::path::Path;
use std::process::Command;

use crate::util::{Dirs, PLAIN_JPEG, Server, corpus, wait_until};

/// A 4.5 KB JPEG of the corpus: 5,000 links to it make a folder quickly.
const SMALL_JPEG: &str =
    "drewnoakes-metadata-extractor-images/jpg/ImageTestSuite/5315c35bbcc28d8eee419028ac9f38e0.jpg";

/// Downloads with curl (which fails on a body shorter than its Content-Length): status, headers
/// and the file.
fn curl(args: &[&str], out: &Path) -> (u16, String) {
    let headers = out.with_extension("headers");
    let o = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(out)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let status = String::from_utf8_lossy(&o.stdout).parse().unwrap();
    (status, std::fs::read_to_string(headers).unwrap().to_lowercase())
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::trim))
}

/// `unzip -t` says the archive is whole.
fn unzip_test(zip: &Path) {
    let o = Command::new("unzip").arg("-tq").arg(zip).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("No errors detected"), "unzip -t: {out}");
}

/// Python's zipfile: every CRC checks; prints the names, sizes and times, one entry per line.
pub(crate) fn python_entries(zip: &Path) -> Vec<String> {
    let script = r#"
import sys, zipfile, time
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    assert bad is None, f"bad CRC in {bad}"
    for i in z.infolist():
        print(f"{i.filename}\t{i.file_size}\t{i.compress_type}\t{i.date_time[0]}")
"#;
    let o = Command::new("python3").args(["-c", script]).arg(zip).output().unwrap();
    assert!(o.status.success(), "zipfile: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn a_folder_of_five_thousand_files_is_one_exact_zip_that_readers_accept() {
    let dirs = Dirs::new();
    let folder = dirs.media.join("2024/Trip");
    std::fs::create_dir_all(folder.join("day2")).unwrap();
    std::fs::copy(corpus().join(SMALL_JPEG), folder.join("0.jpg")).unwrap();
    for i in 1..5000 {
        let sub = if i % 10 == 0 { "day2/" } else { "" };
        std::fs::hard_link(folder.join("0.jpg"), folder.join(format!("{sub}{i}.jpg"))).unwrap();
    }
    std::fs::copy(corpus().join(PLAIN_JPEG), dirs.media.join("elsewhere.jpg")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "0"]);
    wait_until("5,001 items", || server.wait_indexed()["items"] == 5001);

    let zip = dirs.root().join("trip.zip");
    let (status, headers) = curl(&[&server.url("/api/zip?dir=2024/Trip")], &zip);
    assert_eq!(status, 200, "{headers}");
    assert_eq!(header(&headers, "content-type"), Some("application/zip"));
    let len = std::fs::metadata(&zip).unwrap().len();
    assert_eq!(header(&headers, "content-length"), Some(len.to_string().as_str()));
    assert!(header(&headers, "content-disposition").unwrap().contains("filename=\"trip.zip\""), "{headers}");
    unzip_test(&zip);
    let entries = python_entries(&zip);
    assert_eq!(entries.len(), 5000);
    // Paths are relative to the folder asked for; stored, with the files' own sizes and years.
    let year = jiff::Timestamp::now().to_string()[..4].to_owned();
    assert!(entries.contains(&format!("0.jpg\t4573\t0\t{year}")), "{:?}", &entries[..3]);
    assert!(entries.contains(&format!("day2/10.jpg\t4573\t0\t{year}")));
    assert!(!entries.iter().any(|e| e.contains("elsewhere")));
    // A HEAD tells the same length without a body.
    let head = dirs.root().join("head");
    let (status, headers) = curl(&["-I", &server.url("/api/zip?dir=2024/Trip")], &head);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-length"), Some(len.to_string().as_str()));
}

#[test]
fn a_selection_is_posted_and_keeps_only_what_it_names() {
    let dirs = Dirs::new();
    for (dir, name) in [("a", "one.jpg"), ("a", "ONE.JPG"), ("b/c", "two.jpg")] {
        std::fs::create_dir_all(dirs.media.join(dir)).unwrap();
        std::fs::copy(corpus().join(PLAIN_JPEG), dirs.media.join(dir).join(name)).unwrap();
    }
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "0"]);
    server.wait_indexed();
    let id = |name: &str| server.item_named(name)["id"].as_str().unwrap().to_owned();
    let (one, upper, two) = (id("one.jpg"), id("ONE.JPG"), id("two.jpg"));
    let zip = dirs.root().join("sel.zip");

    // Two files of one folder: flat, and names that differ only in case stay apart.
    let form = format!("ids={one},{upper}");
    let (status, headers) = curl(&["--data", &form, &server.url("/api/zip")], &zip);
    assert_eq!(status, 200, "{headers}");
    assert!(header(&headers, "content-disposition").unwrap().contains("a.zip"), "{headers}");
    unzip_test(&zip);
    let names: Vec<String> =
        python_entries(&zip).iter().map(|e| e.split('\t').next().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| !n.contains('/')), "{names:?}");
    let mut lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    lower.dedup();
    assert_eq!(lower.len(), 2, "{names:?}");

    // Across folders: paths from the folder they share (the root here).
    let url = server.url(&format!("/api/zip?ids={one},{two}"));
    let (status, _) = curl(&[&url], &zip);
    assert_eq!(status, 200);
    let names: Vec<String> =
        python_entries(&zip).iter().map(|e| e.split('\t').next().unwrap().to_owned()).collect();
    assert_eq!(names, ["a/one.jpg", "b/c/two.jpg"]);
    // The bytes are the file's.
    let o = Command::new("unzip").arg("-p").arg(&zip).arg("b/c/two.jpg").output().unwrap();
    assert_eq!(o.stdout, std::fs::read(corpus().join(PLAIN_JPEG)).unwrap());

    // Refusals, each a JSON error.
    for (args, status, code) in [
        (vec![server.url("/api/zip?ids=nonsense")], 400, "bad_parameter"),
        (vec![server.url("/api/zip?ids=AAAAAAAAAAA")], 404, "unknown_media"),
        (vec![server.url("/api/zip?dir=nowhere")], 404, "nothing_to_zip"),
        (vec![server.url("/api/zip?size=1")], 400, "unknown_parameter"),
        (
            vec![
                "-H".into(),
                "Content-Type: text/plain".into(),
                "--data".into(),
                form.clone(),
                server.url("/api/zip"),
            ],
            415,
            "bad_content_type",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (got, _) = curl(&args, &zip);
        let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&zip).unwrap()).unwrap();
        assert_eq!((got, body["code"].as_str().unwrap()), (status, code), "{args:?}");
    }
}

#[test]
fn past_four_gibibytes_the_archive_is_zip64_and_still_exact() {
    let dirs = Dirs::new();
    let big = dirs.media.join("big");
    std::fs::create_dir_all(&big).unwrap();
    // A real picture followed by a hole: 4.2 GiB on the listing, a few KB on the disk.
    let huge = big.join("huge.jpg");
    std::fs::copy(corpus().join(SMALL_JPEG), &huge).unwrap();
    let size = (4u64 << 30) + (200 << 20);
    std::fs::OpenOptions::new().write(true).open(&huge).unwrap().set_len(size).unwrap();
    std::fs::copy(corpus().join(PLAIN_JPEG), big.join("after.jpg")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "0"]);
    server.wait_indexed();
    assert_eq!(server.item_named("huge.jpg")["size"], size);

    let zip = dirs.root().join("big.zip");
    let (status, headers) = curl(&[&server.url("/api/zip?dir=big")], &zip);
    assert_eq!(status, 200);
    let len = std::fs::metadata(&zip).unwrap().len();
    assert!(len > size);
    assert_eq!(header(&headers, "content-length"), Some(len.to_string().as_str()));
    unzip_test(&zip);
    let entries = python_entries(&zip);
    let sizes: Vec<&str> = entries.iter().map(|e| e.split('\t').nth(1).unwrap()).collect();
    assert_eq!(sizes.len(), 2);
    assert!(sizes.contains(&size.to_string().as_str()), "{entries:?}");
    std::fs::remove_file(&zip).unwrap();
}
