//! Three replicas over one media folder and one state dir, behind a real nginx (round robin):
//! sessions, favorites and new files are seen through every replica; thumbnails made by several
//! replicas at once are identical and whole; a replica killed mid-load costs at most the request
//! in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::proxy::Nginx;
use crate::util::{Dirs, PLAIN_JPEG, Reply, Server, agent, copy_from_corpus, read, wait_until};

fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = match body {
        Some(b) => agent().run(req.header("Content-Type", "application/json").body(b.to_owned()).unwrap()),
        None => agent().run(req.body(()).unwrap()),
    };
    read(resp.unwrap())
}

#[test]
fn replicas_behind_nginx_share_sessions_favorites_files_and_thumbnails() {
    let dirs = Dirs::new();
    for i in 0..6 {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, &format!("p{i}.jpg"))]);
    }
    // A token for talking to each replica directly (tokens live in the shared state dir).
    let token = crate::util::spis_cli(&dirs.state, &["token", "create", "test"]);
    let bearer = format!("Bearer {}", token.trim());
    let token = [("Authorization", bearer.as_str())];
    // No rate limit: all the load comes from this test, through nginx.
    let env = [("SPIS_NO_AUTH", "false"), ("SPIS_RATE_LIMIT", "0")];
    // One replica with inotify; two that only rescan, as on NFS where inotify sees nothing.
    let poll = ["--watch", "poll", "--poll-interval", "1"];
    let replicas = [
        Server::start_with_env(&dirs.media, &dirs.state, &[], &env),
        Server::start_with_env(&dirs.media, &dirs.state, &poll, &env),
        Server::start_with_env(&dirs.media, &dirs.state, &poll, &env),
    ];
    for r in &replicas {
        wait_until("indexed", || r.get("/api/health").json()["ready"] == true);
    }
    let ids = |r: &Server| {
        let mut v: Vec<String> = call("GET", &r.url("/api/media?limit=500"), &token, None).json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&replicas[0]).len(), 6);
    assert!(replicas.iter().all(|r| ids(r) == ids(&replicas[0])), "the same ids on every replica");

    let upstreams: Vec<&str> = replicas.iter().map(|r| r.base.trim_start_matches("http://")).collect();
    let nginx = Nginx::start(&upstreams);
    let base = nginx.base();
    let origin = [("Origin", base.as_str())];

    // The first-run password through one replica, then the session works on all of them.
    let setup = call("POST", &format!("{base}/api/setup"), &origin, Some(r#"{"password":"correct horse"}"#));
    assert_eq!(setup.status, 200, "{}", String::from_utf8_lossy(&setup.body));
    let cookie = setup.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    for r in &replicas {
        wait_until("the password is known to every replica", || {
            r.get("/api/session").json()["setup"] == false
        });
        let me = call("GET", &r.url("/api/media?limit=1"), &[("Cookie", &cookie)], None);
        assert_eq!(me.status, 200, "a session made on one replica is valid on every replica");
    }

    // A favorite set through the balancer is seen by every replica on its next request.
    let id = ids(&replicas[0])[0].clone();
    let with_cookie = [("Cookie", cookie.as_str()), ("Origin", base.as_str())];
    assert_eq!(call("PUT", &format!("{base}/api/media/{id}/favorite"), &with_cookie, None).status, 200);
    for r in &replicas {
        let item = call("GET", &r.url(&format!("/api/media/{id}")), &token, None).json();
        assert_eq!(item["favorite"], true, "{}", r.base);
        let favs = call("GET", &r.url("/api/media?favorite=true"), &token, None).json();
        assert_eq!(favs["items"].as_array().unwrap().len(), 1, "{}", r.base);
    }
    // A phone watching another replica hears of it live, without asking that replica anything.
    let ws_url = format!("{}/api/events", replicas[2].base.replacen("http://", "ws://", 1));
    let mut events = crate::util::Events::connect_url(&ws_url, &token);
    assert_eq!(
        call("PUT", &replicas[0].url(&format!("/api/media/{}/favorite", ids(&replicas[0])[1])), &token, None)
            .status,
        200
    );
    let changed =
        events.next(Duration::from_secs(30)).expect("a changed event from the other replica's favorite");
    assert_eq!(
        (changed["type"].as_str(), changed["item"]["favorite"].as_bool()),
        (Some("changed"), Some(true)),
        "{changed}"
    );
    drop(events);

    // And unset directly on one replica, seen by the others.
    assert_eq!(
        call("DELETE", &replicas[1].url(&format!("/api/media/{id}/favorite")), &token, None).status,
        200
    );
    for r in &replicas {
        assert_eq!(call("GET", &r.url(&format!("/api/media/{id}")), &token, None).json()["favorite"], false);
    }

    // A new file appears on every replica: at once where inotify sees it, within the rescan
    // interval on the others.
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "new.jpg")]);
    for r in &replicas {
        wait_until("the new file is listed", || ids(r).len() == 7);
    }
    // Its thumbnail, asked of all three at once: made concurrently, identical, whole.
    let new_id = call("GET", &replicas[0].url("/api/media?limit=500"), &token, None).json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "new.jpg")
        .unwrap()["thumb"]
        .as_str()
        .unwrap()
        .to_owned();
    let thumbs: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = replicas
            .iter()
            .map(|r| {
                let url = r.url(&new_id);
                let token = &token;
                s.spawn(move || call("GET", &url, token, None))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).map(|r| r.body).collect()
    });
    for t in &thumbs {
        assert!(t.starts_with(b"\xff\xd8") && t.ends_with(b"\xff\xd9"), "a whole JPEG");
        assert_eq!(t, &thumbs[0], "every replica made the same bytes");
    }

    // A replica killed mid-load: nginx retries the request on another, clients see no error
    // beyond the one in flight.
    let failures = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (failures, stop, url, cookie) =
            (Arc::clone(&failures), Arc::clone(&stop), format!("{base}/api/media?limit=5"), cookie.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 3000 {
                n += 1;
                let ok = agent().get(&url).header("Cookie", &cookie).call().is_ok_and(|r| r.status() == 200);
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let [a, b, c] = replicas;
    c.kill9();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let requests = load.join().unwrap();
    assert!(requests > 20, "the load ran ({requests} requests)");
    assert!(
        failures.load(Ordering::Relaxed) <= 1,
        "{} of {requests} failed",
        failures.load(Ordering::Relaxed)
    );
    drop((a, b));
}
