//! Dates taken as exiftool reads them, against what spis lists, over the whole photo corpus; and
//! XMP sidecars.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{Dirs, PLAIN_JPEG, Server, copy_from_corpus, corpus};

/// exiftool's tags (family-1 group and name) for a date taken, in spis's order of preference.
/// `Composite:DateTimeOriginal` is exiftool's own pick (IPTC or XMP DateCreated with IPTC
/// TimeCreated), made only when no DateTimeOriginal exists; `Composite:DateTimeCreated` is IPTC's
/// date and time joined. Makers' records (`Reconyx:`, `PictureInfo:`, `CIFF:`, `FLIR:` ...) are
/// any other group's DateTimeOriginal; the file name would come before `IFD0:ModifyDate`.
const PREFERENCE: &[&str] = &[
    "Composite:DateTimeOriginal",
    "ExifIFD:DateTimeOriginal",
    "XMP-exif:DateTimeOriginal",
    "XMP-photoshop:DateCreated",
    "Composite:DateTimeCreated",
    "IPTC:DateCreated",
    "ExifIFD:CreateDate",
    "*:DateTimeOriginal",
    "XMP-xmp:CreateDate",
    "QuickTime:CreateDate",
    "IFD0:ModifyDate",
];

/// Files exiftool reads a date from that spis does not, and why.
const NOT_READ: &[(&str, &str)] = &[(
    "drewnoakes-metadata-extractor-images/jpg/FLIR iPhone device.jpg",
    "FLIR's own APP1 records, reassembled from several segments",
)];

/// Every file of the corpus but its manifest and read-me, relative to it.
fn corpus_files() -> Vec<String> {
    let root = corpus();
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(&root).unwrap().to_str().unwrap().to_owned();
                if !matches!(rel.as_str(), "MANIFEST.tsv" | "README.md") {
                    files.push(rel);
                }
            }
        }
    }
    files.sort();
    files
}

/// What exiftool says of each file (its tags by `Group:Name`), from one run over all of them.
fn exiftool(files: &[String]) -> HashMap<String, serde_json::Map<String, Value>> {
    let mut child = Command::new("exiftool")
        .args([
            "-json",
            "-n",
            "-G1",
            "-time:all",
            "-api",
            "QuickTimeUTC",
            "-charset",
            "filename=utf8",
            "-@",
            "-",
        ])
        .current_dir(corpus())
        // Times exiftool converts from UTC come out in the zone the server runs in.
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("exiftool (scripts/setup-test-deps.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    for f in files {
        writeln!(stdin, "{f}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("exiftool -json output");
    all.into_iter()
        .filter_map(|v| {
            let Value::Object(tags) = v else { return None };
            Some((tags.get("SourceFile")?.as_str()?.to_owned(), tags))
        })
        .collect()
}

/// `2023:01:14 09:30:12...` (or with dashes and a `T`, or fewer fields) as spis would print
/// its start, `2023-01-14T09:30:12`; `None` for what is no date (blanks, zeros, junk).
fn wall_time(value: &str) -> Option<String> {
    let b = value.trim().as_bytes();
    let digits = |at: usize, after: &[u8]| {
        let field = b.get(at..at + 2 + usize::from(at == 0) * 2)?;
        let sep_ok = at == 0 || after.contains(&b[at - 1]);
        (sep_ok && field.iter().all(u8::is_ascii_digit)).then_some(field)
    };
    let (year, month, day) = (digits(0, b"")?, digits(5, b":-")?, digits(8, b":-")?);
    if year == b"0000" || month == b"00" || day == b"00" {
        return None;
    }
    let mut out = format!("{}-{}-{}", s(year), s(month), s(day));
    for (at, seps, sep) in [(11, &b" T"[..], 'T'), (14, b":", ':'), (17, b":", ':')] {
        match digits(at, seps) {
            Some(n) => out.push_str(&format!("{sep}{}", s(n))),
            None => break,
        }
    }
    Some(out)
}

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// The date taken exiftool reports, and the tag it is in.
fn expected(tags: &serde_json::Map<String, Value>) -> Option<(&'static str, String)> {
    PREFERENCE.iter().find_map(|&wanted| {
        let value = if let Some(name) = wanted.strip_prefix("*:") {
            tags.iter().find(|(k, _)| k.split_once(':').is_some_and(|(g, n)| n == name && !is_named(g, n)))?.1
        } else {
            tags.get(wanted)?
        };
        Some((wanted, wall_time(value.as_str()?)?))
    })
}

/// Whether `group:name` has a place of its own in [`PREFERENCE`].
fn is_named(group: &str, name: &str) -> bool {
    PREFERENCE.contains(&format!("{group}:{name}").as_str())
}

#[test]
fn dates_taken_agree_with_exiftool_over_the_corpus() {
    let files = corpus_files();
    assert!(files.len() > 400, "the corpus has {} files", files.len());
    let said = exiftool(&files);
    // The corpus is read in place; with attributes off spis writes nothing into it.
    let dirs = Dirs::new();
    let server = Server::start(&corpus(), &dirs.state, &["--xattr", "off"]);
    server.wait_indexed();
    let listed: HashMap<String, Value> = server
        .all_items("", 500)
        .into_iter()
        .map(|i| {
            let (dir, name) = (i["dir"].as_str().unwrap(), i["name"].as_str().unwrap());
            (if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }, i)
        })
        .collect();
    let (mut dated, mut agreed, mut differences) = (0, 0, Vec::new());
    for file in &files {
        let Some((tag, want)) = said.get(file).and_then(expected) else { continue };
        dated += 1;
        let Some(item) = listed.get(file) else {
            differences.push(format!("{file}: not listed; exiftool has {want} ({tag})"));
            continue;
        };
        let (taken, source) = (item["taken"].as_str().unwrap(), item["taken_source"].as_str().unwrap());
        // A date in the name is preferred to a header's modification date, which exiftool reports.
        let by_name = tag == "IFD0:ModifyDate" && source == "file_name";
        if taken.starts_with(&want) || by_name {
            agreed += 1;
        } else {
            let why = NOT_READ.iter().find(|(f, _)| f == file).map_or("", |(_, why)| why);
            differences.push(format!("{file}: spis {taken} ({source}), exiftool {want} ({tag}) {why}"));
        }
    }
    println!("exiftool gives {dated} of {} files a date taken; spis agrees on {agreed}", files.len());
    for d in &differences {
        println!("  {d}");
    }
    assert!(dated >= 150, "only {dated} dated files: is exiftool's output read right?");
    assert!(agreed * 100 >= dated * 99, "{agreed} of {dated} agree:\n{}", differences.join("\n"));
    let unexplained: Vec<&String> =
        differences.iter().filter(|d| !NOT_READ.iter().any(|(f, _)| d.starts_with(*f))).collect();
    assert!(unexplained.is_empty(), "differences not in NOT_READ: {unexplained:#?}");
}

/// An XMP sidecar holding `date` in `exif:DateTimeOriginal`, as darktable writes it.
fn sidecar(date: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"XMP Core 4.4.0-Exiv2\">\n \
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n  \
         <rdf:Description rdf:about=\"\"\n    \
         xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"\n    \
         xmlns:darktable=\"http://darktable.sf.net/\"\n   \
         exif:DateTimeOriginal=\"{date}\"\n   darktable:xmp_version=\"5\"/>\n \
         </rdf:RDF>\n</x:xmpmeta>\n"
    )
}

#[test]
fn an_xmp_sidecar_dates_a_photo_that_has_no_date_of_its_own() {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[(PLAIN_JPEG, "darktable.jpg"), (PLAIN_JPEG, "lightroom.jpg"), (PLAIN_JPEG, "none.jpg")],
    );
    std::fs::write(dirs.media.join("darktable.jpg.xmp"), sidecar("2019-07-14T21:30:05.25+02:00")).unwrap();
    let lightroom = "<x:xmpmeta><rdf:RDF><rdf:Description xmlns:photoshop='http://ns.adobe.com/photoshop/1.0/'>\
                     <photoshop:DateCreated>2018-03-04T05:06:07</photoshop:DateCreated>\
                     </rdf:Description></rdf:RDF></x:xmpmeta>";
    std::fs::write(dirs.media.join("lightroom.xmp"), lightroom).unwrap();
    // A hidden sidecar is no sidecar.
    std::fs::write(dirs.media.join(".none.jpg.xmp"), sidecar("2017-01-01T00:00:00")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let items = server.all_items("", 10);
    assert_eq!(items.len(), 3, "sidecars are not media: {items:?}");
    let darktable = server.item_named("darktable.jpg");
    assert_eq!(
        (darktable["taken"].as_str(), darktable["taken_source"].as_str()),
        (Some("2019-07-14T21:30:05.250+02:00"), Some("xmp"))
    );
    let lightroom = server.item_named("lightroom.jpg");
    assert_eq!(
        (lightroom["taken"].as_str(), lightroom["taken_source"].as_str()),
        (Some("2018-03-04T05:06:07"), Some("xmp"))
    );
    assert_eq!(server.item_named("none.jpg")["taken_source"], "mtime");
}

#[test]
fn a_date_in_the_name_beats_a_header_modification_date() {
    // Its only date is IFD0's DateTime, when Photoshop last saved it.
    let edited = "ianare-exif-samples/jpg/Canon_40D_photoshop_import.jpg";
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(edited, "IMG_20230114_093012.jpg"), (edited, "edited.jpg")]);
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let named = server.item_named("IMG_20230114_093012.jpg");
    assert_eq!(
        (named["taken"].as_str(), named["taken_source"].as_str()),
        (Some("2023-01-14T09:30:12"), Some("file_name"))
    );
    let edited = server.item_named("edited.jpg");
    assert_eq!(
        (edited["taken"].as_str(), edited["taken_source"].as_str()),
        (Some("2008-07-31T10:05:49"), Some("exif_modified"))
    );
}
