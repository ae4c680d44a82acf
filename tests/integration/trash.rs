//! The trash and retention, against the real server and real files: a delete is a durable move
//! to `.trash` on the file's own filesystem (freedesktop.org layout), "Recently deleted" lists
//! and restores, events and webhooks say `removed` and `restored`, old files go after
//! `trash_days`, and retention folders keep their age and the free-space floor.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::live::{Receiver, header};
use crate::util::{
    Dirs, Events, Mounted, PLAIN_JPEG, Server, agent, copy_from_corpus, corpus, read, set_mtime, spis_cli,
    wait_until,
};

fn post_json(server: &Server, path: &str, body: &Value) -> crate::util::Reply {
    read(
        agent()
            .post(server.url(path))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap(),
    )
}

fn trash_list(server: &Server) -> Vec<Value> {
    server.json("/api/trash")["items"].as_array().unwrap().clone()
}

fn start(args: &[&str]) -> (Dirs, Server) {
    let dirs = Dirs::new();
    copy_from_corpus(
        &dirs.media,
        &[(PLAIN_JPEG, "Trip/a.jpg"), (PLAIN_JPEG, "Trip/b.jpg"), (PLAIN_JPEG, "c.jpg")],
    );
    let server = Server::start(&dirs.media, &dirs.state, args);
    server.wait_indexed();
    (dirs, server)
}

#[test]
fn a_delete_moves_the_file_to_the_trash_and_a_restore_brings_it_back_with_its_favorite() {
    let receiver = Receiver::start(&[]);
    let (dirs, server) = start(&["--webhook", &receiver.url]);
    let item = server.item_named("a.jpg");
    let id = item["id"].as_str().unwrap().to_owned();
    assert_eq!(server.put(&format!("/api/media/{id}/favorite")).status, 200);
    let thumb_before = server.get(&format!("/api/media/{id}/thumb")).body;
    let mut events = Events::connect(&server, "");

    let r = server.delete(&format!("/api/media/{id}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let entry = r.json();
    assert_eq!((entry["name"].as_str(), entry["dir"].as_str()), (Some("a.jpg"), Some("Trip")));
    assert_eq!(entry["media_id"], id.as_str());
    // Gone from the folder and from the index by the time the answer came.
    assert!(!dirs.media.join("Trip/a.jpg").exists());
    assert_eq!(server.names(), ["/c.jpg", "Trip/b.jpg"]);
    server.get(&format!("/api/media/{id}")).assert_error(404, "unknown_media");
    assert_eq!(events.expect("removed", Duration::from_secs(5))["id"], id.as_str());
    // In the freedesktop.org layout, the info naming where it was.
    let trashed = dirs.media.join(".trash/files/a.jpg");
    assert_eq!(std::fs::read(&trashed).unwrap(), std::fs::read(corpus().join(PLAIN_JPEG)).unwrap());
    let info = std::fs::read_to_string(dirs.media.join(".trash/info/a.jpg.trashinfo")).unwrap();
    assert!(info.starts_with("[Trash Info]\nPath=Trip/a.jpg\nDeletionDate=20"), "{info}");

    // "Recently deleted" lists it, with the thumbnail it had.
    let listed = trash_list(&server);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], entry["id"]);
    let thumb = server.get(listed[0]["thumb"].as_str().unwrap());
    assert_eq!((thumb.status, thumb.header("content-type")), (200, Some("image/jpeg")));
    assert_eq!(thumb.body, thumb_before, "the thumbnail made before the delete");

    // Back where it was, the same id, still a favorite; `restored`, not `added`.
    let tid = entry["id"].as_str().unwrap();
    let back = read(agent().post(server.url(&format!("/api/trash/{tid}/restore"))).send_empty().unwrap());
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
    assert_eq!(
        (back.json()["id"].as_str(), back.json()["favorite"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    assert!(dirs.media.join("Trip/a.jpg").is_file());
    assert!(trash_list(&server).is_empty());
    assert!(!dirs.media.join(".trash/info/a.jpg.trashinfo").exists());
    let restored = events.expect("restored", Duration::from_secs(5));
    assert_eq!(restored["item"]["id"], id.as_str());
    let later = events.drain(Duration::from_millis(500));
    assert!(later.iter().all(|m| m["type"] != "added" && m["type"] != "removed"), "{later:?}");
    wait_until("both webhooks are delivered", || receiver.deliveries().len() >= 2);
    let kinds: Vec<_> =
        receiver.deliveries().iter().map(|d| header(&d.0, "x-spis-event").unwrap().to_owned()).collect();
    assert_eq!(kinds, ["removed", "restored"]);
}

#[test]
fn a_restore_remakes_the_folder_and_never_overwrites_a_file_that_took_the_name() {
    let (dirs, server) = start(&[]);
    let (a, b) = (server.item_named("a.jpg"), server.item_named("b.jpg"));
    // Both at once, as the selection bar sends them.
    let r = post_json(&server, "/api/trash", &json!({ "ids": [a["id"], b["id"]] }));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    std::fs::remove_dir(dirs.media.join("Trip")).unwrap();
    // Deleted twice under one name: the trash keeps both.
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "Trip/a.jpg")]);
    wait_until("the new a.jpg is listed", || server.names().contains(&"Trip/a.jpg".to_owned()));
    let again = server.delete(&format!("/api/media/{}", server.item_named("a.jpg")["id"].as_str().unwrap()));
    assert_eq!(again.json()["name"], "a.jpg");
    assert!(dirs.media.join(".trash/files/a (2).jpg").is_file());
    assert!(!dirs.media.join("Trip").join("a.jpg").exists());
    std::fs::remove_dir(dirs.media.join("Trip")).unwrap();

    let listed = trash_list(&server);
    assert_eq!(listed.len(), 3, "{listed:?}");
    let restore = |e: &Value| {
        read(
            agent()
                .post(server.url(&format!("/api/trash/{}/restore", e["id"].as_str().unwrap())))
                .send_empty()
                .unwrap(),
        )
    };
    for e in &listed {
        assert_eq!(restore(e).status, 200);
    }
    // The folder was made again; the second a.jpg became a copy beside the first.
    assert_eq!(server.names(), ["/c.jpg", "Trip/a (2).jpg", "Trip/a.jpg", "Trip/b.jpg"]);
    restore(&listed[0]).assert_error(404, "not_in_trash");
}

#[test]
fn bad_trash_requests_get_clear_errors_and_change_nothing() {
    let (dirs, server) = start(&[]);
    let c = server.item_named("c.jpg");
    let tid = server.delete(&format!("/api/media/{}", c["id"].as_str().unwrap())).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.delete("/api/media/AAAAAAAAAAA").assert_error(404, "unknown_media");
    post_json(&server, "/api/trash", &json!({ "ids": [] })).assert_error(400, "bad_parameter");
    post_json(&server, "/api/trash", &json!({ "ids": "x" })).assert_error(400, "bad_body");
    post_json(&server, "/api/trash", &json!({ "ids": ["AAAAAAAAAAA"] })).assert_error(404, "unknown_media");
    // Ids that would name something else than an entry of the trash: nothing is touched.
    use base64::Engine as _;
    let b64 = |raw: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    std::fs::write(dirs.root().join("secret.txt"), "keep").unwrap();
    for hostile in
        [b64(b"..\0secret.txt"), b64(b"\0../secret.txt"), b64(b"\0.."), "%2e%2e".into(), b64(b"Trip\0b.jpg")]
    {
        server.delete(&format!("/api/trash/{hostile}")).assert_error(404, "not_in_trash");
        let r =
            read(agent().post(server.url(&format!("/api/trash/{hostile}/restore"))).send_empty().unwrap());
        r.assert_error(404, "not_in_trash");
    }
    assert!(dirs.root().join("secret.txt").exists() && dirs.media.join("Trip/b.jpg").exists());
    let b = server.item_named("b.jpg");
    // Delete for good: one entry, then all.
    assert_eq!(server.delete(&format!("/api/trash/{tid}")).status, 204);
    assert!(!dirs.media.join(".trash/files/c.jpg").exists());
    server.delete(&format!("/api/trash/{tid}")).assert_error(404, "not_in_trash");
    server.delete(&format!("/api/media/{}", b["id"].as_str().unwrap()));
    assert_eq!(server.delete("/api/trash").json()["purged"], 1);
    assert!(trash_list(&server).is_empty());
}

#[test]
fn an_upload_only_token_deletes_nothing() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "Cameras/b.jpg")]);
    let server = Server::start_with_env(&dirs.media, &dirs.state, &[], &[("SPIS_NO_AUTH", "false")]);
    let household = format!("Bearer {}", spis_cli(&dirs.state, &["token", "create", "admin"]).trim());
    let token = spis_cli(&dirs.state, &["token", "create", "cam", "--upload-only", "--dir", "Cameras"]);
    let auth = format!("Bearer {}", token.trim());
    let media = server.get_with("/api/media", &[("Authorization", &household)]).json();
    let id = media["items"][0]["id"].as_str().unwrap().to_owned();
    for (method, path) in [
        ("DELETE", format!("/api/media/{id}")),
        ("DELETE", "/api/trash".into()),
        ("GET", "/api/trash".into()),
    ] {
        server.request(method, &path, &[("Authorization", &auth)]).assert_error(403, "upload_only_token");
        server.request(method, &path, &[]).assert_error(401, "unauthorized");
    }
    assert!(dirs.media.join("Cameras/b.jpg").is_file());
    // The household's token may.
    assert_eq!(
        server.request("DELETE", &format!("/api/media/{id}"), &[("Authorization", &household)]).status,
        200
    );
}

#[test]
fn an_acknowledged_delete_survives_kill_9_and_old_trash_goes_after_trash_days() {
    let (dirs, server) = start(&[]);
    let a = server.item_named("a.jpg");
    assert_eq!(server.delete(&format!("/api/media/{}", a["id"].as_str().unwrap())).status, 200);
    server.kill9();
    // An entry deleted 31 days ago by the freedesktop.org rules (another tool's, without our key).
    let old = dirs.media.join(".trash/files/old.jpg");
    std::fs::copy(corpus().join(PLAIN_JPEG), &old).unwrap();
    let info = dirs.media.join(".trash/info/old.jpg.trashinfo");
    std::fs::write(&info, "[Trash Info]\nPath=Trip/old.jpg\nDeletionDate=2026-01-01T00:00:00\n").unwrap();
    let month_ago =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 31 * 86_400;
    set_mtime(&info, month_ago);
    // An info whose file is gone (a crash between the two steps of a delete).
    std::fs::write(dirs.media.join(".trash/info/lost.jpg.trashinfo"), "[Trash Info]\nPath=lost.jpg\n")
        .unwrap();

    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    assert_eq!(server.names(), ["/c.jpg", "Trip/b.jpg"], "the delete held");
    wait_until("the month-old entry is emptied", || !old.exists());
    let listed = trash_list(&server);
    assert_eq!(listed.iter().map(|e| e["name"].as_str().unwrap()).collect::<Vec<_>>(), ["a.jpg"]);
    assert!(!info.exists() && !dirs.media.join(".trash/info/lost.jpg.trashinfo").exists());
    assert_eq!(server.json("/api/trash")["trash_days"], 30);
    drop(server);

    // trash_days = 0: a delete is for good at once.
    let server = Server::start(&dirs.media, &dirs.state, &["--trash-days", "0"]);
    server.wait_indexed();
    let b = server.item_named("b.jpg");
    assert_eq!(server.delete(&format!("/api/media/{}", b["id"].as_str().unwrap())).status, 200);
    assert!(!dirs.media.join(".trash/files/b.jpg").exists() && !dirs.media.join("Trip/b.jpg").exists());
}

#[test]
fn a_file_on_another_drive_goes_to_that_drives_own_trash() {
    let (dirs, server) = start(&[]);
    let usb = dirs.media.join("usb");
    std::fs::create_dir(&usb).unwrap();
    let _mount = Mounted::new("tmpfs", "size=8m", &usb);
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "usb/DCIM/x.jpg")]);
    crate::util::signal_pid(server.pid(), libc::SIGHUP);
    wait_until("the drive's photo is listed", || server.names().contains(&"usb/DCIM/x.jpg".to_owned()));
    let x = server.item_named("x.jpg");
    let entry = server.delete(&format!("/api/media/{}", x["id"].as_str().unwrap())).json();
    assert!(usb.join(".trash/files/x.jpg").is_file(), "moved on its own drive, never copied across");
    assert!(!dirs.media.join(".trash").exists());
    let info = std::fs::read_to_string(usb.join(".trash/info/x.jpg.trashinfo")).unwrap();
    assert!(info.contains("\nPath=DCIM/x.jpg\n"), "relative to the drive's top, as the spec says: {info}");
    assert_eq!(trash_list(&server)[0]["dir"], "usb/DCIM");
    let tid = entry["id"].as_str().unwrap();
    let back = read(agent().post(server.url(&format!("/api/trash/{tid}/restore"))).send_empty().unwrap());
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
    assert!(usb.join("DCIM/x.jpg").is_file());
}

fn snapshot(media: &Path, rel: &str, age_secs: u64) {
    copy_from_corpus(media, &[(PLAIN_JPEG, rel)]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    set_mtime(&media.join(rel), now - age_secs);
}

#[test]
fn retention_removes_what_is_older_than_its_folders_age_and_nothing_else() {
    let dirs = Dirs::new();
    let day = 86_400;
    snapshot(&dirs.media, "Cameras/door/old.jpg", 40 * day);
    snapshot(&dirs.media, "Cameras/door/new.jpg", day);
    snapshot(&dirs.media, "Doorbell/2h.jpg", 7200);
    snapshot(&dirs.media, "Family/ancient.jpg", 4000 * day);
    let server = Server::start(&dirs.media, &dirs.state, &["--retention", "Cameras=30d,Doorbell=1h"]);
    server.wait_indexed();
    wait_until("the old snapshots go", || server.names() == ["Cameras/door/new.jpg", "Family/ancient.jpg"]);
    assert!(!dirs.media.join("Cameras/door/old.jpg").exists() && !dirs.media.join(".trash").exists());
    wait_until("the removal is logged", || server.log().contains("retention removed a file"));
    // A bad rule stops the start with a sentence naming it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spis"))
        .args(["--media"])
        .arg(&dirs.media)
        .args(["--retention", "Cameras=30x", "hostname"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an age such as 72h, 30d or 4w"), "{out:?}");
}

#[test]
fn below_the_free_space_floor_the_oldest_snapshots_go_first() {
    let dirs = Dirs::new();
    let cams = dirs.media.join("Cameras");
    std::fs::create_dir(&cams).unwrap();
    // A small real filesystem, as a nearly full card.
    let _mount = Mounted::new("tmpfs", "size=4m", &cams);
    let jpeg_len = std::fs::metadata(corpus().join(PLAIN_JPEG)).unwrap().len();
    let count = (3 << 20) / jpeg_len; // about 3 MiB of snapshots, an hour apart
    for i in 0..count {
        snapshot(&dirs.media, &format!("Cameras/snap-{i:03}.jpg"), (count - i) * 3600);
    }
    snapshot(&dirs.media, "Family/keep.jpg", 9999 * 3600);
    // Keep 2 MiB free: about the oldest half must go, never the family photo.
    let server = Server::start(
        &dirs.media,
        &dirs.state,
        &["--retention", "Cameras=1000d", "--retention-free-mb", "2"],
    );
    server.wait_indexed();
    let free = || nix_free(&cams);
    wait_until("the floor is kept", || free() >= 2 << 20);
    let left = server.names();
    assert!(left.contains(&"Family/keep.jpg".to_owned()));
    let snaps: Vec<_> = left.iter().filter(|n| n.starts_with("Cameras/")).collect();
    assert!(!snaps.is_empty() && (snaps.len() as u64) < count, "{snaps:?}");
    // The newest stayed: what went was a run of the oldest.
    let first_kept = count - snaps.len() as u64;
    assert_eq!(snaps[0], &format!("Cameras/snap-{first_kept:03}.jpg"));
    // A new snapshot that takes the drive below the floor again pushes the next oldest out.
    let before = snaps.len();
    let fill = cams.join("big.jpg");
    let mut bytes = std::fs::read(corpus().join(PLAIN_JPEG)).unwrap();
    bytes.resize((free() - (1 << 20)) as usize, 0);
    std::fs::write(&fill, bytes).unwrap();
    wait_until("older snapshots make room for the new one", || free() >= 2 << 20);
    assert!(fill.exists(), "the newest file stays");
    let after = server.names().iter().filter(|n| n.starts_with("Cameras/snap-")).count();
    assert!(after < before, "{after} of {before} snapshots left");
}

/// Free bytes on the filesystem of `path`, as an unprivileged writer sees them.
fn nix_free(path: &Path) -> u64 {
    let out = std::process::Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}
