//! Share links against the real server, with access control on: the household makes a link to a
//! folder, a selection or a month; a guest opens it (with its password, under the login back-off)
//! and reads only its items through the same routes; every other route of the table refuses the
//! guest; a revocation holds at once on a second replica; an expired link is gone.

use serde_json::{Value, json};

use crate::util::{Dirs, PLAIN_JPEG, Reply, Server, agent, copy_from_corpus, read, set_mtime, wait_until};

/// 2024-05-10 and 2023-01-02, 12:00 UTC: the photos have no EXIF date, so these are their dates.
const MAY_2024: u64 = 1_715_342_400;
const JAN_2023: u64 = 1_672_660_800;

fn post(server: &Server, path: &str, body: &Value, cookie: &str) -> Reply {
    let mut req = agent().post(server.url(path)).header("Content-Type", "application/json");
    if !cookie.is_empty() {
        req = req.header("Cookie", cookie);
    }
    read(req.send(body.to_string()).unwrap())
}

fn get(server: &Server, path: &str, cookie: &str) -> Reply {
    server.get_with(path, &[("Cookie", cookie)])
}

/// The `name=value` of a Set-Cookie, checked for its attributes.
fn cookie_of(r: &Reply, name: &str) -> String {
    let set =
        r.header("set-cookie").unwrap_or_else(|| panic!("no cookie: {}", String::from_utf8_lossy(&r.body)));
    assert!(set.starts_with(&format!("{name}=")), "{set}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

/// A server with access control on, its household's session cookie, and four photos in three
/// folders, taken in two months.
fn start() -> (Dirs, Server, String) {
    let dirs = Dirs::new();
    let files = [
        ("Trips/Rome/a.jpg", MAY_2024),
        ("Trips/Rome/Day 2/b.jpg", MAY_2024),
        ("Trips/Paris/c.jpg", JAN_2023),
        ("d.jpg", JAN_2023),
    ];
    for (name, at) in files {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, name)]);
        set_mtime(&dirs.media.join(name), at);
    }
    let server = Server::start_with_env(&dirs.media, &dirs.state, &[], &[("SPIS_NO_AUTH", "false")]);
    let r = post(&server, "/api/setup", &json!({"password": "correct horse"}), "");
    let household = cookie_of(&r, "spis_session");
    wait_until("indexed", || get(&server, "/api/status", &household).json()["indexing"]["done"] == true);
    (dirs, server, household)
}

/// `DIR/NAME` of each item on the first page.
fn names(page: &Value) -> Vec<String> {
    let mut n: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}/{}", i["dir"].as_str().unwrap(), i["name"].as_str().unwrap()))
        .collect();
    n.sort();
    n
}

fn id_of(server: &Server, household: &str, name: &str) -> String {
    let page = get(server, "/api/media?limit=500", household).json();
    let item = page["items"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap().clone();
    item["id"].as_str().unwrap().to_owned()
}

/// Makes a share; answers it and its token.
fn share(server: &Server, household: &str, body: Value) -> (Value, String) {
    let r = post(server, "/api/shares", &body, household);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let s = r.json();
    let token = s["url"].as_str().unwrap().strip_prefix("/s/").unwrap().to_owned();
    (s, token)
}

fn open(server: &Server, token: &str) -> String {
    let r = post(server, "/api/guest", &json!({ "token": token }), "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    cookie_of(&r, "spis_guest")
}

#[test]
fn a_folder_share_shows_its_folder_with_what_is_added_later_and_nothing_else() {
    let (dirs, server, household) = start();
    let (s, token) = share(&server, &household, json!({ "dir": "Trips/Rome" }));
    assert_eq!(
        (s["title"].as_str(), s["kind"].as_str(), s["count"].as_u64()),
        (Some("Rome"), Some("folder"), Some(2))
    );
    assert!(!s["expired"].as_bool().unwrap() && s["expires"].is_string(), "7 days by default: {s}");
    // The link is the app's page; opening it lets the guest in.
    let page = server.get(&format!("/s/{token}"));
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<html"));
    let guest = open(&server, &token);
    let me = get(&server, "/api/guest", &guest).json();
    assert_eq!((me["id"].as_str(), me["count"].as_u64()), (s["id"].as_str(), Some(2)));
    assert_eq!(
        get(&server, "/api/session", &guest).json()["logged_in"],
        false,
        "a guest is not the household"
    );

    // Only the share, with folders relative to it.
    let list = get(&server, "/api/media", &guest).json();
    assert_eq!(names(&list), ["/a.jpg", "Day 2/b.jpg"]);
    let facets = get(&server, "/api/facets", &guest).json();
    let folders = &facets["folders"];
    assert_eq!(
        (folders["total"].as_u64(), folders["children"][0]["path"].as_str()),
        (Some(2), Some("Day 2"))
    );
    assert_eq!(folders["children"].as_array().unwrap().len(), 1, "{folders}");
    assert_eq!(facets["years"].as_array().unwrap().len(), 1, "only the share's year: {facets}");
    assert_eq!(names(&get(&server, "/api/media?dir=Day%202", &guest).json()), ["Day 2/b.jpg"]);
    get(&server, "/api/media?dir=../Paris", &guest).assert_error(400, "bad_parameter");
    // The household's own preview of it is the same.
    assert_eq!(
        names(&get(&server, &format!("/api/media?share={}", s["id"].as_str().unwrap()), &household).json()),
        names(&list)
    );
    get(&server, "/api/media?share=AAAAAAAAAAAAAAAA", &household).assert_error(404, "unknown_share");

    // The household's favorites are its own.
    let inside = id_of(&server, &household, "a.jpg");
    let put = read(
        agent()
            .put(server.url(&format!("/api/media/{inside}/favorite")))
            .header("Cookie", &household)
            .send_empty()
            .unwrap(),
    );
    assert_eq!(put.status, 200);
    let list = get(&server, "/api/media", &guest).json();
    assert!(list["items"].as_array().unwrap().iter().all(|i| i["favorite"] == false), "{list}");
    assert_eq!(get(&server, "/api/facets", &guest).json()["favorites"], 0);
    get(&server, "/api/media?favorite=true", &guest).assert_error(400, "bad_parameter");
    assert_eq!(get(&server, &format!("/api/media/{inside}"), &guest).json()["favorite"], false);

    // Inside: the item, its pictures and its file; outside: as if it did not exist.
    let outside = id_of(&server, &household, "c.jpg");
    for what in ["", "/thumb", "/preview", "/original", "/details"] {
        assert_eq!(get(&server, &format!("/api/media/{inside}{what}"), &guest).status, 200, "{what}");
        get(&server, &format!("/api/media/{outside}{what}"), &guest).assert_error(404, "unknown_media");
    }
    // A guest changes nothing, even inside the share.
    let put = read(
        agent()
            .put(server.url(&format!("/api/media/{inside}/favorite")))
            .header("Cookie", &guest)
            .send_empty()
            .unwrap(),
    );
    put.assert_error(403, "not_in_share");
    server
        .request("DELETE", &format!("/api/media/{inside}"), &[("Cookie", &guest)])
        .assert_error(403, "not_in_share");

    // What is added to the folder later is shared too.
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "Trips/Rome/e.jpg")]);
    wait_until("the new photo is shared", || {
        get(&server, "/api/media", &guest).json()["items"].as_array().unwrap().len() == 3
    });

    // The ZIP holds the share, named after it, with paths inside it.
    let r = get(&server, "/api/zip", &guest);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition").unwrap().contains("Rome.zip"),
        "{:?}",
        r.header("content-disposition")
    );
    let zip = dirs.root().join("share.zip");
    std::fs::write(&zip, &r.body).unwrap();
    let mut entries: Vec<String> =
        crate::zip::python_entries(&zip).iter().map(|e| e.split('\t').next().unwrap().to_owned()).collect();
    entries.sort();
    assert_eq!(entries, ["Day 2/b.jpg", "a.jpg", "e.jpg"]);
    get(&server, &format!("/api/zip?ids={outside}"), &guest).assert_error(404, "unknown_media");

    // The household sees the link with its view.
    let listed = get(&server, "/api/shares", &household).json();
    assert_eq!(
        (listed["items"][0]["views"].as_u64(), listed["items"][0]["count"].as_u64()),
        (Some(1), Some(3))
    );
}

#[test]
fn a_guest_reaches_no_route_of_the_table_outside_its_share() {
    let (_dirs, server, household) = start();
    let (s, token) = share(&server, &household, json!({ "dir": "Trips/Rome" }));
    let (other, _) = share(&server, &household, json!({ "dir": "Trips/Paris" }));
    let guest = open(&server, &token);
    let outside = id_of(&server, &household, "c.jpg");
    let inside = id_of(&server, &household, "a.jpg");
    let doc = get(&server, "/api/openapi.json", &household).json();
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            // The login flow, health, the guest's own door and signed image URLs are public by design.
            if op["security"].as_array().unwrap().is_empty() {
                continue;
            }
            let shared = op["security"].as_array().unwrap().iter().any(|s| s.get("guest").is_some());
            for id in [&outside, &inside] {
                let url = path
                    .replace("{id}", id)
                    .replace("{trash}", "AHguanBn")
                    .replace("{upload}", "abcdefghijklmnopqrstuvwx")
                    .replace("{share}", s["id"].as_str().unwrap())
                    .replace("{path}", "Trips/Rome/x.jpg");
                let reads = matches!(method.as_str(), "get" | "head");
                let mut req = ureq::http::Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(server.url(&url))
                    .header("Cookie", &guest);
                if !reads {
                    req = req.header("Content-Type", "application/json");
                }
                let r = read(agent().run(req.body("{}".to_owned()).unwrap()).unwrap());
                let allowed = shared && reads && (id == &inside || !path.contains("{id}"));
                if allowed {
                    // Let in (a resize without its width is still a 400 about the width).
                    assert!(!matches!(r.status, 401 | 403) && r.status < 500, "{method} {url}: {}", r.status);
                } else {
                    assert!(
                        matches!(r.status, 403 | 404),
                        "{method} {url}: {} {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    );
                }
                walked += 1;
            }
            // Another share's view is not this guest's.
            if shared && path != "/api/media/{id}" && !path.contains('{') {
                let url = format!("{path}?share={}", other["id"].as_str().unwrap());
                get(&server, &url, &guest).assert_error(404, "unknown_share");
            }
        }
    }
    assert!(walked >= 60, "walked {walked} requests");
}

#[test]
fn a_selection_with_a_password_and_no_downloads_shows_pictures_only() {
    let (_dirs, server, household) = start();
    let (a, d) = (id_of(&server, &household, "a.jpg"), id_of(&server, &household, "d.jpg"));
    let (s, token) = share(
        &server,
        &household,
        json!({ "ids": [a, d, a], "password": "grandma1", "downloads": false, "expires_days": 1, "title": "For Nan" }),
    );
    assert_eq!(
        (s["count"].as_u64(), s["password"].as_bool(), s["title"].as_str()),
        (Some(2), Some(true), Some("For Nan"))
    );
    post(&server, "/api/shares", &json!({ "ids": [a], "password": "short" }), &household)
        .assert_error(400, "bad_parameter");
    post(&server, "/api/shares", &json!({ "ids": [a], "dir": "Trips" }), &household)
        .assert_error(400, "bad_body");
    post(&server, "/api/shares", &json!({ "dir": "Nowhere" }), &household)
        .assert_error(404, "nothing_to_share");

    post(&server, "/api/guest", &json!({ "token": token }), "").assert_error(401, "share_password");
    // The household's login back-off: five free mistakes, then a wait.
    for _ in 0..6 {
        post(&server, "/api/guest", &json!({ "token": token, "password": "grandpa1" }), "")
            .assert_error(401, "wrong_password");
    }
    post(&server, "/api/guest", &json!({ "token": token, "password": "grandma1" }), "")
        .assert_error(429, "too_many_attempts");
    post(&server, "/api/login", &json!({ "password": "correct horse" }), "")
        .assert_error(429, "too_many_attempts");
    let mut guest = String::new();
    wait_until("the back-off ends", || {
        let r = post(&server, "/api/guest", &json!({ "token": token, "password": "grandma1" }), "");
        if r.status == 200 {
            guest = cookie_of(&r, "spis_guest");
        }
        r.status == 200
    });

    let list = get(&server, "/api/media", &guest).json();
    assert_eq!(names(&list), ["/a.jpg", "/d.jpg"], "a selection shows no folders");
    assert!(get(&server, "/api/facets", &guest).json()["folders"]["children"].as_array().unwrap().is_empty());
    get(&server, "/api/media?dir=Trips", &guest).assert_error(400, "bad_parameter");
    // Pictures yes, the files no.
    assert_eq!(get(&server, &format!("/api/media/{a}/preview"), &guest).status, 200);
    get(&server, &format!("/api/media/{a}/original"), &guest).assert_error(403, "downloads_off");
    get(&server, "/api/zip", &guest).assert_error(403, "downloads_off");
}

#[test]
fn revoking_holds_at_once_on_every_replica_and_expired_links_are_gone() {
    let (dirs, server, household) = start();
    let (s, token) = share(&server, &household, json!({ "year": 2024, "month": 5, "expires_days": 0 }));
    assert_eq!((s["title"].as_str(), s["expires"].as_str()), (Some("May 2024"), None));
    let guest = open(&server, &token);
    assert_eq!(names(&get(&server, "/api/media", &guest).json()), ["/a.jpg", "/b.jpg"], "May 2024 only");
    let years = get(&server, "/api/facets?year=2023", &guest).json();
    assert_eq!(years["years"].as_array().unwrap().len(), 1, "a month share's facets stay in it: {years}");

    // A second replica on the same state dir honours the guest, until the household revokes.
    let replica = Server::start_with_env(&dirs.media, &dirs.state, &[], &[("SPIS_NO_AUTH", "false")]);
    wait_until("the replica indexed", || {
        get(&replica, "/api/status", &household).json()["indexing"]["done"] == true
    });
    assert_eq!(get(&replica, "/api/media", &guest).status, 200);
    let id = s["id"].as_str().unwrap();
    assert_eq!(server.request("DELETE", &format!("/api/shares/{id}"), &[("Cookie", &household)]).status, 204);
    get(&replica, "/api/media", &guest).assert_error(401, "unauthorized");
    get(&server, "/api/media", &guest).assert_error(401, "unauthorized");
    post(&replica, "/api/guest", &json!({ "token": token }), "").assert_error(404, "unknown_share");
    server
        .request("DELETE", &format!("/api/shares/{id}"), &[("Cookie", &household)])
        .assert_error(404, "unknown_share");

    // An expired link: its time passed (the stored expiry is moved back, as a clock would).
    let (s, token) = share(&server, &household, json!({ "dir": "Trips" }));
    let guest = open(&server, &token);
    let file = dirs.state.join("shares").join(format!("{}.json", s["id"].as_str().unwrap()));
    let mut stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    stored["expires"] = json!(1);
    std::fs::write(&file, stored.to_string()).unwrap();
    post(&server, "/api/guest", &json!({ "token": token }), "").assert_error(410, "share_expired");
    get(&server, "/api/media", &guest).assert_error(401, "unauthorized");
    assert_eq!(get(&server, "/api/shares", &household).json()["items"][0]["expired"], true);
    // A forged token never reaches the disk.
    post(
        &server,
        "/api/guest",
        &json!({ "token": format!("{}.AAAAAAAAAAAAAAAAAAAAAA", s["id"].as_str().unwrap()) }),
        "",
    )
    .assert_error(404, "unknown_share");
    post(&server, "/api/guest", &json!({ "token": "../../session.key" }), "")
        .assert_error(404, "unknown_share");
}
