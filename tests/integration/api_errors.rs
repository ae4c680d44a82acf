//! Bad requests get a 4xx with a JSON body naming what was wrong.

use crate::util::{Dirs, PLAIN_JPEG, Server, agent, copy_from_corpus, read};

fn server() -> (Dirs, Server) {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "x.jpg")]);
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    (dirs, server)
}

#[test]
fn bad_parameters_answer_400_naming_the_parameter() {
    let (_d, server) = server();
    let cases = [
        ("/api/media?limit=0", "limit"),
        ("/api/media?limit=501", "limit"),
        ("/api/media?limit=ten", "limit"),
        ("/api/media?year=20x3", "year"),
        ("/api/media?month=13", "month"),
        ("/api/media?month=0", "month"),
        ("/api/media?favorite=yes", "favorite"),
        ("/api/media?kind=audio", "kind"),
        ("/api/media?order=random", "order"),
        ("/api/media?cursor=not-a-cursor", "cursor"),
        ("/api/media?cursor=%00%00", "cursor"),
        ("/api/media?cursor=AAAAAAAAAAAAAAAAAAAAAAA", "cursor"),
        ("/api/facets?year=-1", "year"),
    ];
    for (url, param) in cases {
        let r = server.get(url);
        r.assert_error(400, "bad_parameter");
        let msg = r.json()["error"].as_str().unwrap().to_owned();
        assert!(msg.contains(param), "{url}: {msg}");
    }
    let r = server.get("/api/media?favourite=true");
    r.assert_error(400, "unknown_parameter");
    assert!(r.json()["error"].as_str().unwrap().contains("favourite"));
}

#[test]
fn unknown_ids_and_paths_answer_json_404() {
    let (_d, server) = server();
    for url in [
        "/api/media/AAAAAAAAAAA",
        "/api/media/..%2F..%2Fetc%2Fpasswd",
        "/api/media/%00/original",
        "/api/media/AAAAAAAAAAA/original",
        "/api/media/AAAAAAAAAAA/thumb",
        "/api/media/x.jpg/preview",
    ] {
        server.get(url).assert_error(404, "unknown_media");
    }
    server.get("/api/nothing-here").assert_error(404, "no_route");
}

#[test]
fn wrong_methods_answer_405_with_allow() {
    let (_d, server) = server();
    let r = read(agent().post(server.url("/api/media")).send_empty().unwrap());
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let id = server.item_named("x.jpg")["id"].as_str().unwrap().to_owned();
    let r = server.get(&format!("/api/media/{id}/favorite"));
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("PUT, DELETE"));
}

#[test]
fn status_and_health_answer_while_and_after_indexing() {
    let (_d, server) = server();
    let h = server.json("/api/health");
    assert_eq!(h["status"], "ok");
    let s = server.json("/api/status");
    assert_eq!(s["items"], 1);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
}
