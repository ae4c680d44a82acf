//! Favorites: stored on the file (xattr) or in the state dir, durable once acknowledged.

use crate::util::{Dirs, Mounted, PLAIN_JPEG, Server, copy_from_corpus, get_xattr};

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
    let _mount = Mounted::new("ramfs", "", &dirs.media);
    setup(&dirs);
    favorites_survive_restart(&dirs, &[]);
    assert_eq!(std::fs::read_to_string(dirs.state.join("favorites.txt")).unwrap(), "a/one.jpg\n");
    // The metadata records went to the state-dir cache instead, and are used on restart.
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let status = server.wait_indexed();
    assert_eq!(status["metadata"]["from_state_dir"], 3, "{status}");
    assert_eq!(status["metadata"]["extracted"], 0, "{status}");
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
fn kill_9_in_a_loop_during_favorite_writes_loses_no_acknowledged_favorite() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    const FILES: usize = 24;
    const WRITERS: usize = 4;
    for args in [&[][..], &["--xattr", "off"][..]] {
        let dirs = Dirs::new();
        let names: Vec<String> = (0..FILES).map(|i| format!("f{i:02}.jpg")).collect();
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (PLAIN_JPEG, n.as_str())).collect();
        copy_from_corpus(&dirs.media, &pairs);
        let original = std::fs::read(dirs.media.join("f00.jpg")).unwrap();
        // What the server acknowledged last for each file, and what was in flight when it died.
        let acked: Arc<Mutex<HashMap<String, bool>>> = Arc::default();
        let mut in_flight: HashMap<String, bool> = HashMap::new();
        let toggles = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for round in 0..6u64 {
            let server = Server::start(&dirs.media, &dirs.state, args);
            server.wait_indexed();
            // Every state after a crash is one the server acknowledged, or the one in flight.
            for item in server.all_items("", 100) {
                let name = item["name"].as_str().unwrap().to_owned();
                let now = item["favorite"].as_bool().unwrap();
                let expected = acked.lock().unwrap().get(&name).copied().unwrap_or(false);
                assert!(
                    now == expected || in_flight.get(&name) == Some(&now),
                    "{args:?} round {round}: {name} is {now}, acknowledged {expected}"
                );
                acked.lock().unwrap().insert(name, now);
            }
            in_flight.clear();
            let ids: Vec<(String, String)> = server
                .all_items("", 100)
                .iter()
                .map(|i| (i["name"].as_str().unwrap().to_owned(), i["id"].as_str().unwrap().to_owned()))
                .collect();
            let base = server.base.clone();
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let mine: Vec<(String, String)> = ids.iter().skip(w).step_by(WRITERS).cloned().collect();
                    let (acked, base, toggles) = (Arc::clone(&acked), base.clone(), Arc::clone(&toggles));
                    std::thread::spawn(move || {
                        for step in 0..10_000usize {
                            let (name, id) = &mine[step % mine.len()];
                            let on = !acked.lock().unwrap().get(name).copied().unwrap_or(false);
                            let url = format!("{base}/api/media/{id}/favorite");
                            let agent = crate::util::agent();
                            let sent =
                                if on { agent.put(&url).send_empty() } else { agent.delete(&url).call() };
                            match sent {
                                Ok(r) if r.status() == 200 => {
                                    acked.lock().unwrap().insert(name.clone(), on);
                                    toggles.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                // Killed mid-request: the outcome of this one is unknown.
                                _ => return Some((name.clone(), on)),
                            }
                        }
                        None
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(40 + round * 37));
            server.kill9();
            for w in writers {
                if let Some((name, on)) = w.join().unwrap() {
                    in_flight.insert(name, on);
                }
            }
        }
        let toggles = toggles.load(std::sync::atomic::Ordering::Relaxed);
        assert!(toggles >= 24, "{args:?}: only {toggles} writes were acknowledged before the kills");
        eprintln!("{args:?}: {toggles} acknowledged favorite writes across 6 kill -9s");
        assert_eq!(std::fs::read(dirs.media.join("f00.jpg")).unwrap(), original, "the photo is untouched");
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
