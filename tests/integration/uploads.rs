//! Uploads: `PUT /api/upload/DIR/NAME` and the tus 1.0 routes, against the real server and real
//! files: where they land, what is refused, that nothing partial is ever visible, and that a
//! resumable upload goes on after a kill -9.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{Dirs, PLAIN_JPEG, Reply, Server, agent, corpus, exchange, read, spis_cli, wait_until};

fn jpeg() -> Vec<u8> {
    std::fs::read(corpus().join(PLAIN_JPEG)).unwrap()
}

/// The same picture in other bytes (bytes after the end-of-image marker change the file, not
/// the picture).
fn other_jpeg() -> Vec<u8> {
    let mut b = jpeg();
    b.extend_from_slice(b"another file");
    b
}

fn put(server: &Server, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().put(server.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send(body).unwrap())
}

/// Every file below `dir`, relative, hidden ones included.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, top: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(&p, top, out);
            } else {
                out.push(p.strip_prefix(top).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn records(state: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state.join("uploads"))
        .map_or_else(|_| Vec::new(), |d| d.map(|e| e.unwrap().path()).collect())
}

#[test]
fn a_put_lands_under_its_name_once_and_a_different_file_of_that_name_becomes_a_copy() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let bytes = jpeg();
    let r = put(&server, "/api/upload/Cameras/front%20door/snap.jpg?mtime=1623758400", &bytes, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let item = r.json();
    assert_eq!((item["dir"].as_str(), item["name"].as_str()), (Some("Cameras/front door"), Some("snap.jpg")));
    let stored = dirs.media.join("Cameras/front door/snap.jpg");
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    let mtime = std::fs::metadata(&stored).unwrap().modified().unwrap();
    assert_eq!(
        mtime.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        1_623_758_400,
        "the file's own mtime"
    );
    assert_eq!(server.get(&format!("/api/media/{}", item["id"].as_str().unwrap())).status, 200, "listed");

    // The same bytes again (a phone backup run twice): the item that is there, nothing added.
    let again = put(&server, "/api/upload/Cameras/front%20door/snap.jpg", &bytes, &[]);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], item["id"]);
    // Other bytes under the same name: a copy beside it, the first one untouched.
    let other = other_jpeg();
    let copy = put(&server, "/api/upload/Cameras/front%20door/snap.jpg", &other, &[]);
    assert_eq!(copy.status, 201);
    assert_eq!(copy.json()["name"], "snap (2).jpg");
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    // And those other bytes again are that copy.
    assert_eq!(
        put(&server, "/api/upload/Cameras/front%20door/snap.jpg", &other, &[]).json()["name"],
        "snap (2).jpg"
    );
    assert_eq!(files(&dirs.media), ["Cameras/front door/snap (2).jpg", "Cameras/front door/snap.jpg"]);
    assert!(records(&dirs.state).is_empty(), "{:?}", records(&dirs.state));
    // The existing file's hash was kept on it, for the next comparison.
    assert!(crate::util::get_xattr(&stored, "user.spis.sha256").is_some());
}

#[test]
fn without_a_folder_an_upload_goes_to_the_month_of_its_mtime() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let r = put(&server, "/api/upload/IMG_0001.JPG?mtime=1623758400", &jpeg(), &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["dir"], "Uploads/2021/06");
    assert!(dirs.media.join("Uploads/2021/06/IMG_0001.JPG").is_file());
}

#[test]
fn bad_uploads_get_a_clear_error_and_leave_nothing_behind() {
    let dirs = Dirs::new();
    std::fs::create_dir_all(dirs.media.join(".hidden")).unwrap();
    std::os::unix::fs::symlink("/tmp", dirs.media.join("link")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &["--upload-max-mb", "1"]);
    let bytes = jpeg();
    put(&server, "/api/upload/a/notes.txt", b"hello", &[]).assert_error(415, "not_media");
    put(&server, "/api/upload/a/fake.jpg", &[b'x'; 4096], &[]).assert_error(415, "not_media");
    put(&server, "/api/upload/a/tiny.jpg", b"\xFF\xD8", &[]).assert_error(415, "not_media");
    put(&server, "/api/upload/a/.secret.jpg", &bytes, &[]).assert_error(400, "bad_name");
    put(&server, "/api/upload/a/bell%07.jpg", &bytes, &[]).assert_error(400, "bad_name");
    put(&server, "/api/upload/a/sl%2Fash.jpg", &bytes, &[]).assert_error(400, "bad_name");
    put(&server, "/api/upload/.hidden/x.jpg", &bytes, &[]).assert_error(400, "bad_name");
    put(&server, "/api/upload/a/../../x.jpg", &bytes, &[]).assert_error(400, "bad_name");
    put(&server, "/api/upload/a/%2E%2E/x.jpg", &bytes, &[]).assert_error(400, "bad_name");
    put(&server, &format!("/api/upload/a/{}.jpg", "n".repeat(250)), &bytes, &[])
        .assert_error(400, "bad_name");
    // Through a symlink: refused, and nothing lands where it points.
    let r = put(&server, "/api/upload/link/x.jpg", &bytes, &[]);
    r.assert_error(400, "bad_name");
    // Over the limit: a resumable upload is refused when it says its length.
    let len = (2u64 << 20).to_string();
    let big = [
        ("Tus-Resumable", "1.0.0"),
        ("Upload-Length", len.as_str()),
        ("Upload-Metadata", "filename YS5qcGc="),
    ];
    server.request("POST", "/api/uploads", &big).assert_error(413, "too_large");
    put(&server, "/api/upload/a/x.jpg?size=1", &bytes, &[]).assert_error(400, "unknown_parameter");
    // Over the limit by its Content-Length alone: answered before any of the body is sent.
    let stream = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    let (status, _, body) = exchange(
        stream,
        b"PUT /api/upload/a/huge.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n\xFF\xD8\xFF",
    );
    assert_eq!(status, 413, "{:?}", body.map(|b| String::from_utf8_lossy(&b).into_owned()));
    // No room: a reserve larger than any disk.
    let full = Server::start(&dirs.media, &dirs.state.join("2"), &["--upload-reserve-mb", "1000000000"]);
    put(&full, "/api/upload/a/x.jpg", &bytes, &[]).assert_error(507, "insufficient_storage");
    assert!(
        !files(&dirs.media).iter().any(|f| f.ends_with(".jpg") || f.contains("spis-upload")),
        "{:?}",
        files(&dirs.media)
    );
    assert!(!std::path::Path::new("/tmp/x.jpg").exists());
    assert!(records(&dirs.state).is_empty());
}

#[test]
fn an_upload_only_token_adds_files_to_its_folder_and_reads_nothing() {
    let dirs = Dirs::new();
    let server = Server::start_with_env(&dirs.media, &dirs.state, &[], &[("SPIS_NO_AUTH", "false")]);
    let setup = agent()
        .post(server.url("/api/setup"))
        .header("Content-Type", "application/json")
        .send(r#"{"password":"correct horse"}"#)
        .unwrap();
    assert_eq!(setup.status(), 200);
    let cam = spis_cli(&dirs.state, &["token", "create", "cam1", "--upload-only", "--dir", "Cameras/cam1/"]);
    let full = spis_cli(&dirs.state, &["token", "create", "admin"]);
    assert_eq!(spis_cli(&dirs.state, &["token", "list"]), "cam1 (upload only, to Cameras/cam1)\nadmin\n");
    let cam = format!("Bearer {}", cam.trim());
    let full = format!("Bearer {}", full.trim());
    let auth = [("Authorization", cam.as_str())];
    let bytes = jpeg();
    put(&server, "/api/upload/Cameras/cam1/snap.jpg", &bytes, &[]).assert_error(401, "unauthorized");
    let r = put(&server, "/api/upload/Cameras/cam1/2026-12-04/snap.jpg", &bytes, &auth);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // Without a folder: its own.
    assert_eq!(put(&server, "/api/upload/snap2.jpg", &bytes, &auth).json()["dir"], "Cameras/cam1");
    put(&server, "/api/upload/Cameras/cam2/snap.jpg", &bytes, &auth)
        .assert_error(403, "outside_upload_folder");
    // A posted form too goes to its folder by default, and no further.
    let src = tempfile::tempdir().unwrap();
    let snap = src.path().join("form.jpg");
    std::fs::write(&snap, other_jpeg()).unwrap();
    let (header, part) = (format!("Authorization: {cam}"), format!("file=@{}", snap.display()));
    let (status, body) = curl_form(&server, "", &["-H", &header, "-F", &part]);
    assert_eq!((status, body["files"][0]["dir"].as_str()), (201, Some("Cameras/cam1")), "{body}");
    let (status, body) = curl_form(&server, "?dir=Cameras", &["-H", &header, "-F", &part]);
    assert_eq!((status, body["code"].as_str()), (403, Some("outside_upload_folder")), "{body}");
    put(&server, "/api/upload/Cameras/cam1x/snap.jpg", &bytes, &auth)
        .assert_error(403, "outside_upload_folder");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    for path in
        ["/api/media", "/api/status", "/api/session", "/api/facets", &format!("/api/media/{id}/original")]
    {
        server.get_with(path, &auth).assert_error(403, "upload_only_token");
    }
    server.request("PUT", &format!("/api/media/{id}/favorite"), &auth).assert_error(403, "upload_only_token");
    // The household's token reads what the camera sent.
    let listed = server.get_with("/api/media", &[("Authorization", full.as_str())]).json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
    // A resumable upload made by the camera is the camera's; the household may not resume it
    // as if it were its own, and the camera cannot reach the household's.
    let tus_head = [("Tus-Resumable", "1.0.0")];
    let created = tus_create(&server, "x.jpg", 10, &[auth[0], tus_head[0]]);
    let location = created.header("location").unwrap().to_owned();
    let household = tus_create(&server, "y.jpg", 10, &[("Authorization", full.as_str()), tus_head[0]]);
    let theirs = household.header("location").unwrap().to_owned();
    assert_eq!(server.request("HEAD", &theirs, &[auth[0], tus_head[0]]).status, 404);
    assert_eq!(server.request("HEAD", &location, &[auth[0], tus_head[0]]).status, 200);
}

fn tus_create(server: &Server, name: &str, length: u64, headers: &[(&str, &str)]) -> Reply {
    use base64::Engine as _;
    let meta = format!(
        "filename {},mtime {}",
        base64::engine::general_purpose::STANDARD.encode(name),
        base64::engine::general_purpose::STANDARD.encode("1623758400")
    );
    let len = length.to_string();
    let mut all = vec![("Upload-Length", len.as_str()), ("Upload-Metadata", meta.as_str())];
    all.extend_from_slice(headers);
    let r = server.request("POST", "/api/uploads", &all);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r
}

fn patch(server: &Server, location: &str, offset: u64, body: &[u8]) -> Reply {
    let req = ureq::http::Request::builder()
        .method("PATCH")
        .uri(server.url(location))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(body.to_vec())
        .unwrap();
    read(agent().run(req).unwrap())
}

#[test]
fn a_tus_upload_goes_on_from_its_offset_after_a_kill_9() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let options = server.request("OPTIONS", "/api/uploads", &[]);
    assert_eq!(options.status, 204);
    assert_eq!(options.header("tus-version"), Some("1.0.0"));
    assert!(options.header("tus-extension").unwrap().contains("creation"));
    assert_eq!(
        server.request("POST", "/api/uploads", &[("Upload-Length", "5")]).status,
        412,
        "no Tus-Resumable"
    );
    let bytes = jpeg();
    let tus = [("Tus-Resumable", "1.0.0")];
    let created = tus_create(&server, "IMG_0002.JPG", bytes.len() as u64, &tus);
    let location = created.header("location").unwrap().to_owned();
    assert!(location.starts_with("/api/uploads/"), "{location}");
    let half = bytes.len() / 2;
    let r = patch(&server, &location, 0, &bytes[..half]);
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("upload-offset"), Some(half.to_string().as_str()));
    // Nothing visible yet: only the hidden temp file in its folder.
    assert!(files(&dirs.media).iter().all(|f| f.contains("/.spis-upload-")), "{:?}", files(&dirs.media));
    patch(&server, &location, 3, b"xyz").assert_error(409, "wrong_offset");
    server.kill9();

    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let head = server.request("HEAD", &location, &tus);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("upload-offset"), Some(half.to_string().as_str()));
    assert_eq!(head.header("upload-length"), Some(bytes.len().to_string().as_str()));
    let done = patch(&server, &location, half as u64, &bytes[half..]);
    assert_eq!(done.status, 204, "{}", String::from_utf8_lossy(&done.body));
    let id = done.header("spis-media-id").unwrap().to_owned();
    assert_eq!(std::fs::read(dirs.media.join("Uploads/2021/06/IMG_0002.JPG")).unwrap(), bytes);
    wait_until("the upload is listed", || server.get(&format!("/api/media/{id}")).status == 200);
    // A client that lost that answer asks again and hears it is complete.
    let head = server.request("HEAD", &location, &tus);
    assert_eq!(head.header("upload-offset"), Some(bytes.len().to_string().as_str()));
    assert_eq!(head.header("spis-media-id"), Some(id.as_str()));

    // Termination: the temp file goes.
    let cancelled = tus_create(&server, "later.jpg", 1000, &tus);
    let location = cancelled.header("location").unwrap().to_owned();
    assert_eq!(patch(&server, &location, 0, &bytes[..100]).status, 204);
    assert_eq!(server.request("DELETE", &location, &tus).status, 204);
    assert_eq!(server.request("HEAD", &location, &tus).status, 404, "a HEAD answer has no body");
    assert!(!files(&dirs.media).iter().any(|f| f.contains("spis-upload")), "{:?}", files(&dirs.media));
    // A body that is not a photo ends its upload.
    let junk = tus_create(&server, "junk.jpg", 100, &tus);
    let location = junk.header("location").unwrap().to_owned();
    patch(&server, &location, 0, &[b'j'; 100]).assert_error(415, "not_media");
    assert_eq!(server.request("HEAD", &location, &tus).status, 404);
    patch(&server, "/api/uploads/nosuchupload", 0, b"x").assert_error(404, "unknown_upload");
}

#[test]
fn a_put_cut_short_by_kill_9_leaves_no_visible_file_and_its_temp_is_swept() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let bytes = jpeg();
    let mut stream = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    use std::io::Write as _;
    write!(
        stream,
        "PUT /api/upload/cut/x.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    stream.write_all(&bytes[..bytes.len() / 2]).unwrap();
    wait_until("the temp file is made", || files(&dirs.media).iter().any(|f| f.contains("spis-upload")));
    server.kill9();
    drop(stream);
    let left = files(&dirs.media);
    assert!(left.iter().all(|f| f.contains("/.spis-upload-")), "{left:?}");
    // An hour later, the next start sweeps it.
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3700);
    for f in left.iter().map(|f| dirs.media.join(f)).chain(records(&dirs.state)) {
        std::fs::File::options().write(true).open(&f).unwrap().set_modified(an_hour_ago).unwrap();
    }
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    // The temp file goes first, its record just after: wait for both rather than race the second.
    wait_until("the temp file and its record are swept", || {
        files(&dirs.media).is_empty() && records(&dirs.state).is_empty()
    });
    // Logged just after the file is gone: wait for it rather than race it.
    wait_until("the sweep is logged", || server.log().contains("abandoned upload removed"));
}

/// `curl -F`, the form a camera or a script posts: `(status, body)`.
fn curl_form(server: &Server, query: &str, args: &[&str]) -> (u16, serde_json::Value) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-w", "\n%{http_code}"]).args(args).arg(server.url(&format!("/api/upload{query}")));
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "curl: {}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let (body, status) = out.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

#[test]
fn a_multipart_form_stores_each_file_part_and_refuses_a_bad_one_without_losing_the_others() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let src = tempfile::tempdir().unwrap();
    let (a, b, text) = (src.path().join("a.jpg"), src.path().join("b.jpg"), src.path().join("notes.jpg"));
    std::fs::write(&a, jpeg()).unwrap();
    std::fs::write(&b, other_jpeg()).unwrap();
    std::fs::write(&text, "not a photo at all, whatever its name says ......................").unwrap();
    let file = |p: &Path| format!("file=@{}", p.display());

    // Two files; the folder as a field before them; a field spis does not know is ignored.
    let (status, body) = curl_form(
        &server,
        "",
        &["-F", "dir=Cameras/yard", "-F", "camera=hik-01", "-F", &file(&a), "-F", &file(&b)],
    );
    assert_eq!(status, 201, "{body}");
    let names: Vec<_> =
        body["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a.jpg", "b.jpg"]);
    assert_eq!(std::fs::read(dirs.media.join("Cameras/yard/b.jpg")).unwrap(), other_jpeg());
    let id = body["files"][0]["id"].as_str().unwrap();
    assert_eq!(server.get(&format!("/api/media/{id}")).status, 200, "listed before the answer");

    // The same again: nothing added, 200. The folder from the query this time.
    let (status, body) = curl_form(&server, "?dir=Cameras/yard", &["-F", &file(&a)]);
    assert_eq!((status, body["files"][0]["existed"].as_bool()), (200, Some(true)), "{body}");

    // A bad part after a good one: the answer is the refusal; the good one stays, nothing partial.
    let (status, body) = curl_form(&server, "?dir=Cameras/porch", &["-F", &file(&b), "-F", &file(&text)]);
    assert_eq!((status, body["code"].as_str()), (415, Some("not_media")), "{body}");
    assert_eq!(files(&dirs.media.join("Cameras/porch")), ["b.jpg"]);
    // No file part, not multipart, a hostile folder, an unknown parameter.
    let (status, body) = curl_form(&server, "", &["-F", "dir=Cameras"]);
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_parameter")), "{body}");
    let (status, body) = curl_form(&server, "", &["--data-binary", "@/dev/null"]);
    assert_eq!((status, body["code"].as_str()), (415, Some("bad_content_type")), "{body}");
    let (status, body) = curl_form(&server, "?dir=../../etc", &["-F", &file(&a)]);
    assert_eq!(status, 400, "{body}");
    let (status, body) = curl_form(&server, "?folder=x", &["-F", &file(&a)]);
    assert_eq!((status, body["code"].as_str()), (400, Some("unknown_parameter")), "{body}");
    assert!(records(&dirs.state).is_empty(), "no upload record left behind");
}

#[test]
fn a_refused_upload_of_a_small_file_is_answered_not_reset() {
    use std::io::{Read as _, Write as _};
    let dirs = Dirs::new();
    let server = Server::start_with_env(&dirs.media, &dirs.state, &[], &[("SPIS_NO_AUTH", "false")]);
    let addr = server.url("/").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let body = vec![0xffu8; 512 << 10];
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // No credentials: refused before the body is read. A client that is still sending the body
    // when the refusal comes (no Expect: 100-continue, as most libraries) must still read it.
    write!(s, "PUT /api/upload/a/b.jpg HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", body.len())
        .unwrap();
    s.write_all(&body[..64 << 10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&body[64 << 10..]).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("the answer was lost: {e} (after {} bytes)", answer.len()),
        }
        if answer.windows(14).any(|w| w == b"\"unauthorized\"") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("\"code\":\"unauthorized\""), "{text}");
}
