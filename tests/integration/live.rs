//! The live gallery: files written, moved and deleted while the server runs, seen through the
//! list API and a real WebSocket client; webhooks to a receiver on 127.0.0.1; the hook program.

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::Mac as _;
use serde_json::Value;

use crate::util::{Dirs, Events, Mounted, PLAIN_JPEG, Server, corpus, wait_until};

/// A 979-byte real JPEG (32x32): thousands of copies stay small.
const TINY_JPEG: &str = "image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-progressive.jpg";

fn start(args: &[&str]) -> (Dirs, Server) {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, args);
    server.wait_indexed();
    (dirs, server)
}

fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}

#[test]
fn a_jpeg_written_slowly_appears_once_and_only_after_it_is_closed() {
    let (dirs, server) = start(&[]);
    let mut events = Events::connect(&server, "");
    let bytes = std::fs::read(corpus().join(PLAIN_JPEG)).unwrap();
    let mut file = std::fs::File::create(dirs.media.join("snapshot.jpg")).unwrap();
    for chunk in bytes.chunks(bytes.len() / 4 + 1) {
        file.write_all(chunk).unwrap();
        file.sync_data().unwrap();
        // Open and half written, like a camera uploading over FTP: not news yet.
        assert_eq!(events.next(Duration::from_millis(250)), None);
        assert!(server.names().is_empty());
    }
    drop(file);
    let added = events.expect("added", Duration::from_secs(1));
    assert_eq!(added["item"]["name"], "snapshot.jpg");
    assert_eq!(added["item"]["size"], bytes.len(), "indexed complete: {added}");
    assert!(added["item"]["width"].as_u64().is_some_and(|w| w > 0), "{added}");
    assert_eq!(added["item"], server.item_named("snapshot.jpg"), "same shape as the list API");
    let rest = events.drain(Duration::from_millis(500));
    assert!(of_type(&rest, "added").is_empty(), "announced twice: {rest:?}");
    assert_eq!(server.names(), ["/snapshot.jpg"]);
}

#[test]
fn a_folder_tree_moved_in_appears_whole() {
    let (dirs, server) = start(&[]);
    let mut events = Events::connect(&server, "");
    let outside = dirs.media.parent().unwrap().join("card");
    let files = ["trip/day1/a.jpg", "trip/day1/b.jpg", "trip/day2/c.jpg", "trip/day2/late/d.jpg"];
    for f in files {
        let p = outside.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(corpus().join(TINY_JPEG), p).unwrap();
    }
    std::fs::rename(outside.join("trip"), dirs.media.join("trip")).unwrap();
    wait_until("the moved tree is listed", || server.names().len() == files.len());
    assert_eq!(
        server.names(),
        ["trip/day1/a.jpg", "trip/day1/b.jpg", "trip/day2/c.jpg", "trip/day2/late/d.jpg"]
    );
    let messages = events.drain(Duration::from_millis(500));
    let added: HashSet<&str> =
        of_type(&messages, "added").iter().map(|m| m["item"]["name"].as_str().unwrap()).collect();
    assert_eq!(added.len(), files.len(), "{messages:?}");
    assert_eq!(of_type(&messages, "added").len(), files.len(), "each once: {messages:?}");

    // Files written into a folder the moment it is made are not lost to the race with its watch.
    let deep = dirs.media.join("new/x/y");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::copy(corpus().join(TINY_JPEG), deep.join("e.jpg")).unwrap();
    wait_until("a file in a brand-new folder is listed", || {
        server.names().contains(&"new/x/y/e.jpg".to_owned())
    });

    // And the moved-in folder is watched: a later file in it shows up too.
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("trip/day2/late/f.jpg")).unwrap();
    wait_until("a later file in the moved tree is listed", || server.names().len() == files.len() + 2);
}

#[test]
fn rename_keeps_the_favorite_and_delete_removes() {
    let dirs = Dirs::new();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let old = server.item_named("a.jpg");
    let old_id = old["id"].as_str().unwrap().to_owned();
    assert_eq!(server.put(&format!("/api/media/{old_id}/favorite")).status, 200);
    let mut events = Events::connect(&server, "");

    std::fs::create_dir(dirs.media.join("best")).unwrap();
    std::fs::rename(dirs.media.join("a.jpg"), dirs.media.join("best/b.jpg")).unwrap();
    // In either order: the new folder may be scanned before the move-out event is applied.
    let (mut removed, mut added) = (None, None);
    while removed.is_none() || added.is_none() {
        let m = events.next(Duration::from_secs(5)).expect("both removed and added");
        match m["type"].as_str() {
            Some("removed") => assert!(removed.replace(m).is_none(), "removed twice"),
            Some("added") => assert!(added.replace(m).is_none(), "added twice"),
            _ => {}
        }
    }
    let (removed, added) = (removed.unwrap(), added.unwrap());
    assert_eq!(removed["id"], old_id.as_str());
    assert_eq!((&added["item"]["dir"], &added["item"]["name"]), (&"best".into(), &"b.jpg".into()));
    assert_eq!(added["item"]["favorite"], true, "the favorite moved with the file: {added}");
    assert_eq!(server.names(), ["best/b.jpg"]);

    std::fs::remove_file(dirs.media.join("best/b.jpg")).unwrap();
    let removed = events.expect("removed", Duration::from_secs(5));
    assert_eq!(removed["id"], added["item"]["id"]);
    assert!(server.names().is_empty());
    assert_eq!(server.json("/api/status")["favorites"], 0);

    // A whole folder deleted takes its items with it.
    std::fs::create_dir_all(dirs.media.join("gone/sub")).unwrap();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("gone/sub/c.jpg")).unwrap();
    events.expect("added", Duration::from_secs(5));
    std::fs::remove_dir_all(dirs.media.join("gone")).unwrap();
    events.expect("removed", Duration::from_secs(5));
    assert!(server.names().is_empty());
}

#[test]
fn renames_keep_favorites_without_xattrs_too() {
    // With --xattr off favorites live in the state dir by path, so the rename must move them.
    let dirs = Dirs::new();
    std::fs::create_dir(dirs.media.join("album")).unwrap();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("album/a.jpg")).unwrap();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("album/b.jpg")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &["--xattr", "off"]);
    server.wait_indexed();
    for name in ["a.jpg", "b.jpg"] {
        let id = server.item_named(name)["id"].as_str().unwrap().to_owned();
        assert_eq!(server.put(&format!("/api/media/{id}/favorite")).status, 200);
    }
    std::fs::rename(dirs.media.join("album/a.jpg"), dirs.media.join("album/renamed.jpg")).unwrap();
    wait_until("the renamed file is listed", || server.names().contains(&"album/renamed.jpg".to_owned()));
    assert_eq!(server.item_named("renamed.jpg")["favorite"], true);
    std::fs::rename(dirs.media.join("album"), dirs.media.join("2024 album")).unwrap();
    wait_until("the renamed folder is listed", || {
        server.names() == ["2024 album/b.jpg", "2024 album/renamed.jpg"]
    });
    let favorites: Vec<Value> = server.all_items("favorite=true", 10);
    assert_eq!(favorites.len(), 2, "{favorites:?}");
    // And it is on disk, not only in memory.
    drop(server);
    let server = Server::start(&dirs.media, &dirs.state, &["--xattr", "off"]);
    server.wait_indexed();
    assert_eq!(server.all_items("favorite=true", 10).len(), 2);
}

/// Copies the tiny JPEG into `n` new files across 10 folders, as fast as it can.
fn copy_many(media: &Path, n: usize) -> Vec<String> {
    let bytes = std::fs::read(corpus().join(TINY_JPEG)).unwrap();
    let mut expected = Vec::new();
    for d in 0..10 {
        std::fs::create_dir_all(media.join(format!("burst/{d}"))).unwrap();
    }
    for i in 0..n {
        let rel = format!("burst/{}/img_{i:05}.jpg", i % 10);
        std::fs::write(media.join(&rel), &bytes).unwrap();
        expected.push(rel);
    }
    expected.sort();
    expected
}

#[test]
fn five_thousand_files_copied_at_once_all_appear_exactly_once() {
    let (dirs, server) = start(&[]);
    let mut events = Events::connect(&server, "");
    let expected = copy_many(&dirs.media, 5000);
    wait_until("all 5000 files are listed", || server.json("/api/status")["items"] == 5000);
    assert_eq!(server.names(), expected);
    let messages = events.drain(Duration::from_millis(1000));
    let added: Vec<&str> =
        of_type(&messages, "added").iter().map(|m| m["item"]["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = added.iter().copied().collect();
    assert_eq!(unique.len(), added.len(), "an item was announced twice");
    // A client that could not keep up is told to resync rather than silently missing some.
    assert!(added.len() == 5000 || !of_type(&messages, "resync").is_empty(), "{} added", added.len());
}

/// Reads raw messages (progress included) until an `indexing` message says the index is done.
fn hears_index_done(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
) -> bool {
    let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() else { unreachable!() };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while let Ok(msg) = ws.read() {
        let tungstenite::Message::Text(t) = msg else { continue };
        let m: Value = serde_json::from_str(&t).unwrap();
        if m["type"] == "indexing" && m["done"] == true {
            return true;
        }
    }
    false
}

#[test]
fn a_client_greeted_before_the_index_is_ready_hears_when_it_is_done() {
    // The index of a small folder can end between the greeting and the first progress message:
    // the client must still hear `done`, or it waits for ever (it did, before the fix).
    let dirs = Dirs::new();
    copy_many(&dirs.media, 300);
    let mut early = 0;
    for _ in 0..5 {
        let server = Server::start(&dirs.media, &dirs.state, &[]);
        let url = format!("{}/api/events", server.base.replacen("http://", "ws://", 1));
        let (mut ws, _) = tungstenite::connect(url).unwrap();
        let tungstenite::Message::Text(t) = ws.read().unwrap() else { panic!("no hello") };
        let hello: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(hello["type"], "hello", "{hello}");
        if hello["ready"] == false {
            early += 1;
            assert!(
                hears_index_done(&mut ws),
                "greeted with ready: false, then never told the index is done"
            );
        }
        server.stop();
    }
    eprintln!("{early} of 5 clients were greeted before the index was ready");
}

#[test]
fn a_client_that_stops_reading_is_told_to_resync() {
    let (dirs, server) = start(&[]);
    let mut events = Events::connect(&server, "");
    // More events than the server's ring (4096) plus what the socket buffers hold, while this
    // client reads nothing.
    copy_many(&dirs.media, 15_000);
    wait_until("all files are listed", || server.json("/api/status")["items"] == 15_000);
    let messages = events.drain(Duration::from_millis(1000));
    // Told at least once (again only if it lagged a whole ring behind once more, after the
    // server skipped to the newest event: on a loaded machine, possible).
    let resync = of_type(&messages, "resync");
    assert!(!resync.is_empty(), "{} messages, no resync", messages.len());
    assert!(resync[0]["missed"].as_u64().unwrap() > 0);
    assert!(of_type(&messages, "added").len() < 15_000);
    assert_eq!(server.get("/api/health").status, 200);
}

#[test]
fn an_overflowing_event_queue_recovers_by_rescanning() {
    // A queue of 4 changes cannot hold a burst: the same path as a kernel IN_Q_OVERFLOW.
    let (dirs, server) = start(&["--watch-queue", "4"]);
    server.wait_indexed();
    for d in 0..10 {
        std::fs::create_dir_all(dirs.media.join(format!("burst/{d}"))).unwrap();
    }
    wait_until("the folders are watched", || server.json("/api/status")["watch"]["watched_folders"] == 12);
    // Stopped while the files are written, the server finds their events waiting in the
    // kernel's queue and reads them in one go: more than 4 at once, every time (not a race).
    crate::util::signal_pid(server.pid(), libc::SIGSTOP);
    let expected = copy_many(&dirs.media, 2000);
    crate::util::signal_pid(server.pid(), libc::SIGCONT);
    wait_until("all 2000 files are listed", || server.json("/api/status")["items"] == 2000);
    assert_eq!(server.names(), expected);
    let watch = &server.json("/api/status")["watch"];
    assert!(watch["overflows"].as_u64().unwrap() >= 1, "{watch}");
    assert!(server.log().contains("rescanning the whole folder"), "{}", server.log());
}

#[test]
fn the_event_queue_holds_memory_only_for_what_is_queued() {
    // A queue bound of 2^22 changes: allocated up front, as `sync_channel` does, it would be
    // 256 MiB resident before the first event. The bound must cost nothing until it is used.
    let (dirs, server) = start(&["--watch-queue", "4194304"]);
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    wait_until("a new file is listed", || server.names() == ["/a.jpg"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kib < 128 * 1024, "VmRSS {rss_kib} kB with an empty queue");
}

#[test]
fn poll_mode_sees_changes_without_inotify() {
    let (dirs, server) = start(&["--watch", "poll", "--poll-interval", "1"]);
    assert_eq!(server.json("/api/status")["watch"]["mode"], "poll");
    std::fs::create_dir(dirs.media.join("nfs")).unwrap();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("nfs/a.jpg")).unwrap();
    wait_until("a new file is found by polling", || server.names() == ["nfs/a.jpg"]);
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("top.jpg")).unwrap();
    wait_until("a second file is found", || server.names().len() == 2);
    std::fs::remove_file(dirs.media.join("nfs/a.jpg")).unwrap();
    wait_until("a deleted file is dropped", || server.names() == ["/top.jpg"]);
    std::fs::remove_dir(dirs.media.join("nfs")).unwrap();
    std::fs::remove_file(dirs.media.join("top.jpg")).unwrap();
    wait_until("everything is gone", || server.names().is_empty());
}

#[test]
fn folders_past_the_watch_limit_are_rescanned_instead() {
    let dirs = Dirs::new();
    for d in ["a", "b", "c"] {
        std::fs::create_dir(dirs.media.join(d)).unwrap();
    }
    let server = Server::start(&dirs.media, &dirs.state, &["--max-watches", "2", "--poll-interval", "1"]);
    server.wait_indexed();
    let watch = server.json("/api/status")["watch"].clone();
    assert_eq!(
        (&watch["mode"], &watch["watched_folders"], &watch["unwatched_folders"]),
        (&"inotify+poll".into(), &2.into(), &2.into()),
        "{watch}"
    );
    assert!(server.log().contains("out of inotify watches"), "{}", server.log());
    for d in ["a", "b", "c"] {
        std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join(d).join("new.jpg")).unwrap();
    }
    wait_until("files in watched and unwatched folders are listed", || server.names().len() == 3);
    assert_eq!(server.names(), ["a/new.jpg", "b/new.jpg", "c/new.jpg"]);
}

#[test]
fn a_media_folder_that_goes_away_and_comes_back_is_followed_without_a_restart() {
    let dirs = Dirs::new();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    // Like a USB stick pulled out: the folder is simply not there any more.
    let away = dirs.media.with_extension("unplugged");
    std::fs::rename(&dirs.media, &away).unwrap();
    wait_until("status says the folder is missing", || {
        server.json("/api/status")["watch"]["media_missing"] == true
    });
    assert_eq!(server.names(), ["/a.jpg"], "what was indexed is still listed");
    assert_eq!(server.get("/api/health").status, 200);
    std::fs::copy(corpus().join(TINY_JPEG), away.join("b.jpg")).unwrap();
    std::fs::rename(&away, &dirs.media).unwrap();
    wait_until("the folder is back", || server.json("/api/status")["watch"]["media_missing"] == false);
    wait_until("what changed meanwhile is found", || server.names() == ["/a.jpg", "/b.jpg"]);
    // And it is watched again.
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("c.jpg")).unwrap();
    wait_until("a new file appears", || server.names().len() == 3);
}

fn inotify_threads(server: &Server) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap();
    tasks
        .filter(|t| {
            let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).unwrap_or_default();
            comm.trim() == "spis-inotify"
        })
        .count()
}

#[test]
fn a_drive_mounted_in_the_media_folder_is_indexed_after_sighup() {
    let dirs = Dirs::new();
    std::fs::create_dir(dirs.media.join("usb")).unwrap();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    // A real mount (tmpfs standing in for a USB drive): inotify watches the folder under it.
    let _mount = Mounted::new("tmpfs", "size=8m", &dirs.media.join("usb"));
    std::fs::create_dir(dirs.media.join("usb/DCIM")).unwrap();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("usb/DCIM/b.jpg")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.names(), ["/a.jpg"], "inotify does not see into a new mount");

    crate::util::signal_pid(server.pid(), libc::SIGHUP);
    wait_until("the drive's photo is listed", || server.names() == ["/a.jpg", "usb/DCIM/b.jpg"]);
    // Watched from now on, by exactly one inotify thread (the old one let its watches go).
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("usb/DCIM/c.jpg")).unwrap();
    wait_until("a new file on the drive appears", || server.names().len() == 3);
    wait_until("one inotify thread", || inotify_threads(&server) == 1);
    assert_eq!(server.json("/api/status")["watch"]["watched_folders"], 3);
    assert!(server.log().contains("SIGHUP"), "{}", server.log());
}

#[test]
fn watch_off_only_indexes_at_start() {
    let (dirs, server) = start(&["--watch", "off"]);
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    // Give a watcher, had there been one, ample time.
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.names().is_empty());
    assert_eq!(server.json("/api/status")["watch"]["mode"], "off");
}

#[test]
fn filtered_clients_hear_only_about_matching_items() {
    let dirs = Dirs::new();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    let id = server.item_named("a.jpg")["id"].as_str().unwrap().to_owned();
    let mut favorites = Events::connect(&server, "?favorite=true");
    let mut videos = Events::connect(&server, "?kind=video");

    assert_eq!(server.put(&format!("/api/media/{id}/favorite")).status, 200);
    let changed = favorites.expect("changed", Duration::from_secs(5));
    assert_eq!((&changed["item"]["id"], &changed["item"]["favorite"]), (&id.as_str().into(), &true.into()));
    assert_eq!(server.delete(&format!("/api/media/{id}/favorite")).status, 200);
    // No longer a favorite: gone from this client's view.
    assert_eq!(favorites.expect("removed", Duration::from_secs(5))["id"], id.as_str());

    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("b.jpg")).unwrap();
    wait_until("b.jpg is listed", || server.names().len() == 2);
    assert_eq!(favorites.drain(Duration::from_millis(300)), Vec::<Value>::new());
    let to_videos = videos.drain(Duration::from_millis(300));
    assert!(
        to_videos.iter().all(|m| m["type"] == "removed"),
        "photos are not news to a video filter: {to_videos:?}"
    );
    assert!(of_type(&to_videos, "added").is_empty());

    assert_eq!(server.get("/api/events?favorite=maybe").status, 400);
}

#[test]
fn events_without_a_websocket_handshake_are_a_json_426() {
    let (_dirs, server) = start(&[]);
    server.get("/api/events").assert_error(426, "websocket_required");
}

#[test]
fn new_files_get_their_thumbnail_right_away() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "1"]);
    server.wait_indexed();
    let mut events = Events::connect(&server, "");
    std::fs::copy(corpus().join(PLAIN_JPEG), dirs.media.join("new.jpg")).unwrap();
    let added = events.expect("added", Duration::from_secs(5));
    assert_eq!(added["item"]["thumbhash"], Value::Null);
    let ready = events.expect("changed", Duration::from_secs(30));
    assert_eq!(ready["item"]["id"], added["item"]["id"]);
    assert!(ready["item"]["thumbhash"].is_string(), "{ready}");
    let thumb = server.get(ready["item"]["thumb"].as_str().unwrap());
    assert_eq!(thumb.status, 200);
    let stats = &server.json("/api/status")["thumbnails"];
    assert!(stats["memory_hits"].as_u64().unwrap() >= 1, "made ahead and kept in memory: {stats}");
}

#[test]
fn clients_hear_the_background_thumbnail_progress_until_it_ends() {
    let dirs = Dirs::new();
    let bytes = std::fs::read(corpus().join(PLAIN_JPEG)).unwrap();
    for i in 0..60 {
        std::fs::write(dirs.media.join(format!("p{i:03}.jpg")), &bytes).unwrap();
    }
    let server = Server::start(&dirs.media, &dirs.state, &["--thumb-workers", "1"]);
    let url = format!("{}/api/events", server.base.replacen("http://", "ws://", 1));
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() else { unreachable!() };
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut during = 0;
    loop {
        let tungstenite::Message::Text(t) = ws.read().expect("progress until the end") else { continue };
        let m: Value = serde_json::from_str(&t).unwrap();
        if m["type"] != "indexing" || m["thumbnails"]["total"] != 60 {
            continue;
        }
        if m["thumbnails"]["done"] == 60 {
            break;
        }
        during += 1;
        assert!(m["thumbnails"]["per_second"].is_number(), "{m}");
    }
    assert!(during > 0, "no progress was heard before the end");
}

#[test]
fn websocket_clients_are_closed_cleanly_on_shutdown() {
    let (_dirs, server) = start(&[]);
    let mut events = Events::connect(&server, "");
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(events.expect("closed", Duration::from_secs(5))["type"], "closed");
}

/// An HTTP receiver on 127.0.0.1 that answers each POST with the next status of `statuses`
/// (then 200) and keeps (headers, body) of each.
pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
}

/// The request head (lowercased) and body of one delivery.
pub(crate) type Delivery = (String, Vec<u8>);

impl Receiver {
    pub(crate) fn start(statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let (seen, mut statuses) = (Arc::clone(&got), statuses.to_vec());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1000) {
                let Ok(mut s) = stream else { return };
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, body) = loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break (String::new(), Vec::new());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < end + 4 + len {
                            let n = s.read(&mut chunk).unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buf[end + 4..].to_vec());
                    }
                };
                if head.is_empty() {
                    continue;
                }
                let status = if statuses.is_empty() { 200 } else { statuses.remove(0) };
                seen.lock().unwrap().push((head, body));
                let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Receiver { url, got }
    }

    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }
}

pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(str::trim)
}

#[test]
fn webhooks_are_signed_and_retried_after_a_500() {
    let receiver = Receiver::start(&[500]);
    let (dirs, server) = start(&["--webhook", &receiver.url, "--webhook-secret", "s3cret"]);
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    wait_until("the delivery is retried after the 500", || receiver.deliveries().len() >= 2);
    let got = receiver.deliveries();
    let (first, second) = (&got[0], &got[1]);
    assert!(first.0.starts_with("post /hook "), "{}", first.0);
    assert_eq!(
        header(&first.0, "x-spis-delivery"),
        header(&second.0, "x-spis-delivery"),
        "one delivery, retried"
    );
    assert_eq!(first.1, second.1);
    assert_eq!(header(&second.0, "x-spis-event"), Some("added"));
    let body: Value = serde_json::from_slice(&second.1).unwrap();
    assert_eq!((&body["type"], &body["item"]["name"]), (&"added".into(), &"a.jpg".into()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(&second.1);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(header(&second.0, "x-spis-signature"), Some(format!("sha256={expected}").as_str()));

    std::fs::remove_file(dirs.media.join("a.jpg")).unwrap();
    wait_until("the removal is delivered", || receiver.deliveries().len() >= 3);
    let got = receiver.deliveries();
    assert_eq!(header(&got[2].0, "x-spis-event"), Some("removed"));
    let body: Value = serde_json::from_slice(&got[2].1).unwrap();
    assert_eq!((&body["type"], &body["name"]), (&"removed".into(), &"a.jpg".into()));
    wait_until("status counts both deliveries", || {
        server.json("/api/status")["hooks"]["webhooks"][0]["delivered"] == 2
    });
    let stats = &server.json("/api/status")["hooks"]["webhooks"][0];
    assert_eq!(
        (&stats["retries"], &stats["failed"], &stats["url"]),
        (&1.into(), &0.into(), &receiver.url.as_str().into())
    );
    assert!(!server.log().contains("s3cret"), "the secret leaked into the log");
}

#[test]
fn the_hook_program_runs_for_each_new_file_without_a_shell() {
    let dirs = Dirs::new();
    let out = dirs.state.with_extension("hook-out");
    let script = dirs.state.with_extension("hook.sh");
    // Written by a child process: a file this test process had open for writing could be
    // inherited by a concurrently forked child and make the script "busy" to exec.
    let body = format!(
        "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$1\" \"$SPIS_KIND\" \"$SPIS_REL_PATH\" >> '{}'\n",
        out.display()
    );
    let status = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "printf '%s' \"$1\" > \"$2\" && chmod 755 \"$2\"",
            "sh",
            &body,
            script.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let server = Server::start(&dirs.media, &dirs.state, &["--on-new-media", script.to_str().unwrap()]);
    server.wait_indexed();
    let name = "it's $(touch pwned); a.jpg";
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join(name)).unwrap();
    wait_until("the hook ran", || out.exists());
    let line = std::fs::read_to_string(&out).unwrap();
    let abs = dirs.media.canonicalize().unwrap().join(name);
    assert_eq!(line, format!("{}|image|{name}\n", abs.display()));
    assert!(!dirs.media.join("pwned").exists() && !Path::new("pwned").exists());
    wait_until("status counts the run", || server.json("/api/status")["hooks"]["command"]["succeeded"] == 1);
}

#[test]
fn a_failing_hook_program_is_logged_and_harmless() {
    let dirs = Dirs::new();
    let script = dirs.state.with_extension("fail.sh");
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", "printf '#!/bin/sh\\necho broken >&2\\nexit 3\\n' > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    let server = Server::start(&dirs.media, &dirs.state, &["--on-new-media", script.to_str().unwrap()]);
    server.wait_indexed();
    std::fs::copy(corpus().join(TINY_JPEG), dirs.media.join("a.jpg")).unwrap();
    wait_until("the failure is logged", || server.log().contains("broken"));
    assert_eq!(server.json("/api/status")["hooks"]["command"]["failed"], 1);
    assert_eq!(server.names(), ["/a.jpg"]);
    assert_eq!(server.get("/api/health").status, 200);
}
