//! Favorites: stored on the file (xattr) or in the state dir, durable once acknowledged.

use std::path::Path;

use crate::util::{Dirs, PLAIN_JPEG, Server, copy_from_corpus, get_xattr};

fn setup(dirs: &Dirs) {
    copy_from_corpus(
        &dirs.media,
        &[(PLAIN_JPEG, "a/one.jpg"), (PLAIN_JPEG, "b/two.jpg"), (PLAIN_JPEG, "three.jpg")],
    );
}

fn id_of(server: &Server, name: &str) -> String {
    server.item_named(name)["id"].as_str().unwrap().to_owned()
}

fn favorite_names(server: &Server) -> Vec<String> {
    let mut v: Vec<String> = server
        .all_items("favorite=true", 100)
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// Marks one.jpg and two.jpg, unmarks two.jpg, restarts, and checks what survived.
fn favorites_survive_restart(dirs: &Dirs, args: &[&str]) {
    let server = Server::start(&dirs.media, &dirs.state, args);
    server.wait_indexed();
    let one = id_of(&server, "one.jpg");
    let two = id_of(&server, "two.jpg");
    let r = server.put(&format!("/api/media/{one}/favorite"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["favorite"], true);
    assert_eq!(server.put(&format!("/api/media/{two}/favorite")).status, 200);
    // Setting twice is fine (idempotent).
    assert_eq!(server.put(&format!("/api/media/{two}/favorite")).status, 200);
    let r = server.delete(&format!("/api/media/{two}/favorite"));
    assert_eq!(r.json()["favorite"], false);
    assert_eq!(favorite_names(&server), ["one.jpg"]);
    assert_eq!(server.json("/api/status")["favorites"], 1);
    assert_eq!(server.stop().code(), Some(0));

    let server = Server::start(&dirs.media, &dirs.state, args);
    server.wait_indexed();
    assert_eq!(favorite_names(&server), ["one.jpg"]);
}

#[test]
fn favorite_survives_restart_in_an_xattr() {
    let dirs = Dirs::new();
    setup(&dirs);
    favorites_survive_restart(&dirs, &[]);
    assert_eq!(get_xattr(&dirs.media.join("a/one.jpg"), "user.spis.favorite").as_deref(), Some(&b"1"[..]));
    assert_eq!(get_xattr(&dirs.media.join("b/two.jpg"), "user.spis.favorite"), None);
    assert!(!dirs.state.join("favorites.txt").exists());
}

#[test]
fn favorite_survives_restart_in_the_state_dir_when_xattrs_are_off() {
    let dirs = Dirs::new();
    setup(&dirs);
    favorites_survive_restart(&dirs, &["--xattr", "off"]);
    assert_eq!(std::fs::read_to_string(dirs.state.join("favorites.txt")).unwrap(), "a/one.jpg\n");
    // `off` means the media files are never written to, not even their attributes.
    for f in ["a/one.jpg", "b/two.jpg", "three.jpg"] {
        assert_eq!(get_xattr(&dirs.media.join(f), "user.spis.favorite"), None);
        assert_eq!(get_xattr(&dirs.media.join(f), "user.spis.meta"), None);
    }
}

/// ramfs supports no user xattrs at all: the real fallback path, not a flag.
#[test]
fn favorite_survives_restart_on_a_filesystem_without_xattrs() {
    let dirs = Dirs::new();
    let Some(_mount) = RamfsMount::try_new(&dirs.media) else {
        // Mounting needs CAP_SYS_ADMIN (CI runs as root); the flag-based test above still runs.
        eprintln!("SKIPPED favorite_survives_restart_on_a_filesystem_without_xattrs: cannot mount ramfs");
        return;
    };
    setup(&dirs);
    favorites_survive_restart(&dirs, &[]);
    assert_eq!(std::fs::read_to_string(dirs.state.join("favorites.txt")).unwrap(), "a/one.jpg\n");
    // The metadata records went to the state-dir cache instead, and are used on restart.
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let status = server.wait_indexed();
    assert_eq!(status["metadata"]["from_state_dir"], 3, "{status}");
    assert_eq!(status["metadata"]["extracted"], 0, "{status}");
}

/// A ramfs mounted over a folder for the length of a test.
struct RamfsMount(std::path::PathBuf);

impl RamfsMount {
    fn try_new(at: &Path) -> Option<RamfsMount> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "ramfs", "spis-test"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| RamfsMount(at.to_path_buf()))
    }
}

impl Drop for RamfsMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn an_acknowledged_favorite_survives_kill_9() {
    for args in [&[][..], &["--xattr", "off"][..]] {
        let dirs = Dirs::new();
        setup(&dirs);
        let server = Server::start(&dirs.media, &dirs.state, args);
        server.wait_indexed();
        let ids: Vec<String> =
            ["one.jpg", "two.jpg", "three.jpg"].iter().map(|n| id_of(&server, n)).collect();
        for id in &ids {
            assert_eq!(server.put(&format!("/api/media/{id}/favorite")).status, 200);
        }
        // No graceful shutdown: the process dies right after the last 2xx.
        server.kill9();
        let server = Server::start(&dirs.media, &dirs.state, args);
        server.wait_indexed();
        assert_eq!(favorite_names(&server), ["one.jpg", "three.jpg", "two.jpg"], "{args:?}");
    }
}

#[test]
fn favorites_never_change_the_original() {
    let dirs = Dirs::new();
    setup(&dirs);
    let path = dirs.media.join("a/one.jpg");
    let before = (std::fs::read(&path).unwrap(), std::fs::metadata(&path).unwrap().modified().unwrap());
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let id = id_of(&server, "one.jpg");
    assert_eq!(server.put(&format!("/api/media/{id}/favorite")).status, 200);
    assert_eq!(server.delete(&format!("/api/media/{id}/favorite")).status, 200);
    let after = (std::fs::read(&path).unwrap(), std::fs::metadata(&path).unwrap().modified().unwrap());
    assert!(before == after, "the original's bytes or mtime changed");
}

#[test]
fn favorite_of_an_unknown_id_is_a_json_404() {
    let dirs = Dirs::new();
    setup(&dirs);
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    server.put("/api/media/AAAAAAAAAAA/favorite").assert_error(404, "unknown_media");
    server.delete("/api/media/nonsense/favorite").assert_error(404, "unknown_media");
}

#[test]
fn list_answers_are_reused_only_while_nothing_changed() {
    let dirs = Dirs::new();
    setup(&dirs);
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let url = "/api/media?favorite=true";
    let first = server.get(url);
    assert!(first.json()["items"].as_array().unwrap().is_empty());
    let etag = first.header("etag").unwrap().to_owned();
    assert_eq!(server.get_with(url, &[("If-None-Match", &etag)]).status, 304);
    let facets_etag = server.get("/api/facets").header("etag").unwrap().to_owned();

    let id = id_of(&server, "one.jpg");
    assert_eq!(server.put(&format!("/api/media/{id}/favorite")).status, 200);
    // The favorite changed the index: the remembered answer and its ETag are stale.
    let after = server.get_with(url, &[("If-None-Match", &etag)]);
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["items"].as_array().unwrap().len(), 1);
    assert_ne!(after.header("etag").unwrap(), etag);
    let facets = server.get_with("/api/facets", &[("If-None-Match", &facets_etag)]);
    assert_eq!(facets.status, 200);
    assert_eq!(facets.json()["favorites"], 1);
}
