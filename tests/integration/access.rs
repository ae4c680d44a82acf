//! Access control against the running server: the first-run password, logins, sessions, tokens,
//! cross-origin requests, brute force and rate limits.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{Dirs, Events, PLAIN_JPEG, Reply, Server, agent, copy_from_corpus, read, wait_until};

/// A server with access control on (the other tests run with --no-auth).
fn start(args: &[&str]) -> (Dirs, Server) {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "a.jpg")]);
    let server = Server::start_with_env(&dirs.media, &dirs.state, args, &[("SPIS_NO_AUTH", "false")]);
    (dirs, server)
}

fn post(server: &Server, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().post(server.url(path)).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send(body).unwrap())
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Reply {
    server.get_with(path, headers)
}

/// The `spis_session=...` pair of a response's Set-Cookie, checked for its attributes.
fn session_cookie(r: &Reply) -> String {
    let set =
        r.header("set-cookie").unwrap_or_else(|| panic!("no cookie: {}", String::from_utf8_lossy(&r.body)));
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP from a client that is not a trusted proxy: {set}");
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn first_run_asks_for_a_password_then_only_logged_in_clients_get_in() {
    let (_dirs, server) = start(&[]);
    let s = get(&server, "/api/session", &[]).json();
    assert_eq!((&s["required"], &s["setup"], &s["logged_in"]), (&true.into(), &true.into(), &false.into()));
    // Public: the page, health. Everything else under /api, media URLs included: 401 JSON.
    assert_eq!(get(&server, "/", &[]).status, 200);
    assert_eq!(get(&server, "/api/health", &[]).status, 200);
    for path in [
        "/api/media",
        "/api/status",
        "/api/facets",
        "/api/media/AAAAAAAAAAA/thumb",
        "/api/media/AAAAAAAAAAA/original",
        "/api/nope",
    ] {
        get(&server, path, &[]).assert_error(401, "unauthorized");
    }
    post(&server, "/api/setup", r#"{"password":"short"}"#, &[]).assert_error(422, "password_too_short");
    post(&server, "/api/setup", r#"{"password":1}"#, &[]).assert_error(400, "bad_body");
    post(&server, "/api/login", r#"{"password":"whatever1"}"#, &[]).assert_error(409, "password_not_set");
    let r = post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]);
    assert_eq!(r.status, 200);
    let cookie = session_cookie(&r);
    post(&server, "/api/setup", r#"{"password":"another one"}"#, &[])
        .assert_error(409, "password_already_set");
    let with = [("Cookie", cookie.as_str())];
    assert_eq!(get(&server, "/api/media", &with).status, 200);
    assert_eq!(get(&server, "/api/session", &with).json()["logged_in"], true);
    assert_eq!(get(&server, "/api/session", &[]).json()["setup"], false);

    // A restart keeps both the password and the session.
    let (media, state) = (_dirs.media.clone(), _dirs.state.clone());
    drop(server);
    let server = Server::start_with_env(&media, &state, &[], &[("SPIS_NO_AUTH", "false")]);
    assert_eq!(get(&server, "/api/media", &with).status, 200);
    let r = post(&server, "/api/login", r#"{"password":"correct horse"}"#, &[]);
    assert_eq!(r.status, 200);
    session_cookie(&r);
    post(&server, "/api/login", r#"{"password":"wrong horse"}"#, &[]).assert_error(401, "wrong_password");
}

/// The page a logged-in household gets says so (`<html data-session="in">`), so the app skips
/// its `/api/session` round trip; anyone else, a guest's share page and a forged cookie get the
/// plain page, which asks. The two are different representations: their own ETags, and
/// `Vary: Cookie` so no cache hands one to the other.
#[test]
fn the_page_tells_a_logged_in_household_that_it_is() {
    const MARK: &str = "<html data-session=\"in\" ";
    let (_dirs, server) = start(&[]);
    let page = |headers: &[(&str, &str)]| {
        let r = get(&server, "/", headers);
        assert_eq!(r.status, 200);
        assert!(r.header("vary").is_some_and(|v| v.contains("Cookie")), "{:?}", r.header("vary"));
        (String::from_utf8(r.body.clone()).unwrap().contains(MARK), r.header("etag").unwrap().to_owned())
    };
    let (marked, anonymous_etag) = page(&[]);
    assert!(!marked, "no session yet");
    let cookie = session_cookie(&post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]));
    let (marked, household_etag) = page(&[("Cookie", &cookie)]);
    assert!(marked, "logged in");
    assert_ne!(anonymous_etag, household_etag);
    assert_eq!(get(&server, "/", &[("If-None-Match", &anonymous_etag), ("Cookie", &cookie)]).status, 200);
    assert_eq!(get(&server, "/", &[("If-None-Match", &household_etag), ("Cookie", &cookie)]).status, 304);
    // The marked, unfiltered page preloads its first request; a filtered one does not guess.
    let link =
        |path: &str, headers: &[(&str, &str)]| get(&server, path, headers).header("link").map(str::to_owned);
    // The facets, then the newest month's first page and the newest photo's thumbnail, exactly as
    // the web app asks for them (the photo is there once the index has it).
    let items = || {
        let r = get(&server, "/api/media?limit=1", &[("Cookie", &cookie)]);
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["items"].clone()
    };
    wait_until("the photo is indexed", || items().as_array().is_some_and(|a| !a.is_empty()));
    let newest = items()[0].clone();
    let taken = newest["taken"].as_str().unwrap();
    let (year, month) = (&taken[..4], taken[5..7].trim_start_matches('0'));
    assert_eq!(
        link("/", &[("Cookie", &cookie)]).unwrap(),
        format!(
            "</api/facets?>; rel=preload; as=fetch; crossorigin, \
             </api/media?year={year}&month={month}&limit=120>; rel=preload; as=fetch; crossorigin, \
             <{}>; rel=preload; as=image; fetchpriority=high",
            newest["thumb"].as_str().unwrap()
        )
    );
    assert_eq!(link("/?year=2024", &[("Cookie", &cookie)]), None);
    assert_eq!(link("/", &[]), None, "not before the login");
    assert!(!page(&[("Cookie", &format!("{cookie}x"))]).0, "a forged cookie");
    assert!(!page(&[]).0, "still not without the cookie");
    let share = get(&server, "/s/AAAAAAAAAAAAAAAAAAAAAA", &[("Cookie", &cookie)]);
    assert!(!String::from_utf8(share.body).unwrap().contains(MARK), "a share link's page opens the link");
    // With access control off, everyone is the household.
    let dirs = Dirs::new();
    let open = Server::start(&dirs.media, &dirs.state, &[]);
    assert!(String::from_utf8(open.get("/").body).unwrap().contains(MARK));
}

#[test]
fn forged_and_stale_sessions_are_refused() {
    let (_dirs, server) = start(&[]);
    let cookie = session_cookie(&post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]));
    let value = cookie.strip_prefix("spis_session=").unwrap();
    let mut parts: Vec<&str> = value.split('.').collect();
    let forged_time = "1".to_owned();
    parts[1] = &forged_time;
    let cases = [
        "spis_session=".to_owned(),
        "spis_session=garbage".to_owned(),
        format!("spis_session={}", parts.join(".")),
        format!("spis_session={}x", value),
        format!("other={value}"),
    ];
    for c in &cases {
        get(&server, "/api/media", &[("Cookie", c)]).assert_error(401, "unauthorized");
    }
    // Changing the password ends every session but the one that changed it.
    let with = [("Cookie", cookie.as_str())];
    let r = post(&server, "/api/password", r#"{"old":"correct horse","new":"battery staple"}"#, &with);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let fresh = session_cookie(&r);
    get(&server, "/api/media", &with).assert_error(401, "unauthorized");
    assert_eq!(get(&server, "/api/media", &[("Cookie", fresh.as_str())]).status, 200);
    // Logging out clears the cookie, and ends the session on the server: a copy is refused.
    let out = post(&server, "/api/logout", "", &[("Cookie", fresh.as_str())]);
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    get(&server, "/api/media", &[("Cookie", fresh.as_str())]).assert_error(401, "unauthorized");
    // Other sessions go on.
    let other = session_cookie(&post(&server, "/api/login", r#"{"password":"battery staple"}"#, &[]));
    assert_eq!(get(&server, "/api/media", &[("Cookie", other.as_str())]).status, 200);
}

#[test]
fn a_correctly_signed_but_expired_session_is_refused() {
    use base64::Engine as _;
    use hmac::Mac as _;
    let (dirs, server) = start(&["--session-days", "1"]);
    let cookie = session_cookie(&post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]));
    assert_eq!(get(&server, "/api/media", &[("Cookie", cookie.as_str())]).status, 200);
    // Sign sessions with the server's own key, issued just inside and just outside the day.
    let key = std::fs::read(dirs.state.join("session.key")).unwrap();
    let value = cookie.strip_prefix("spis_session=").unwrap();
    let (payload, _) = value.rsplit_once('.').unwrap();
    let fields: Vec<&str> = payload.split('.').collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signed = |issued: u64| {
        let payload = format!("{}.{issued}.{}.{}", fields[0], fields[2], fields[3]);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(payload.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("spis_session={payload}.{sig}")
    };
    let fresh = signed(now - 86_400 + 120);
    assert_eq!(
        get(&server, "/api/media", &[("Cookie", fresh.as_str())]).status,
        200,
        "the test signs correctly"
    );
    let expired = signed(now - 86_400 - 1);
    get(&server, "/api/media", &[("Cookie", expired.as_str())]).assert_error(401, "unauthorized");
    let future = signed(now + 3600);
    get(&server, "/api/media", &[("Cookie", future.as_str())]).assert_error(401, "unauthorized");
}

#[test]
fn cross_origin_changes_and_websockets_are_refused() {
    let (_dirs, server) = start(&[]);
    let cookie = session_cookie(&post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]));
    let items = || get(&server, "/api/media", &[("Cookie", &cookie)]).json()["items"].clone();
    wait_until("a.jpg is indexed", || items().as_array().is_some_and(|a| !a.is_empty()));
    let id = items()[0]["id"].as_str().unwrap().to_owned();
    let fav = server.url(&format!("/api/media/{id}/favorite"));
    let put = |headers: &[(&str, &str)]| {
        let mut req = agent().put(&fav).header("Cookie", &cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send_empty().unwrap())
    };
    put(&[("Origin", "http://evil.example")]).assert_error(403, "cross_origin");
    put(&[("Sec-Fetch-Site", "cross-site")]).assert_error(403, "cross_origin");
    post(&server, "/api/login", r#"{"password":"correct horse"}"#, &[("Origin", "http://evil.example")])
        .assert_error(403, "cross_origin");
    let host = server.base.trim_start_matches("http://").to_owned();
    assert_eq!(put(&[("Origin", &format!("http://{host}")), ("Sec-Fetch-Site", "same-origin")]).status, 200);

    // The WebSocket needs the cookie, and a page of this origin.
    let ws = server.base.replacen("http://", "ws://", 1) + "/api/events";
    let handshake = |headers: &[(&'static str, &str)]| {
        use tungstenite::client::IntoClientRequest as _;
        let mut req = ws.as_str().into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(*k, v.parse().unwrap());
        }
        match tungstenite::connect(req) {
            Ok((_, resp)) => resp.status().as_u16(),
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(handshake(&[]), 401);
    assert_eq!(handshake(&[("Cookie", &cookie), ("Origin", "http://evil.example")]), 403);
    assert_eq!(handshake(&[("Cookie", &cookie), ("Origin", &format!("http://{host}"))]), 101);
}

#[test]
fn brute_force_logins_are_slowed_down() {
    let (_dirs, server) = start(&[]);
    post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]);
    for _ in 0..6 {
        post(&server, "/api/login", r#"{"password":"guess guess"}"#, &[]).assert_error(401, "wrong_password");
    }
    // Even the right password must wait now.
    let r = post(&server, "/api/login", r#"{"password":"correct horse"}"#, &[]);
    r.assert_error(429, "too_many_attempts");
    assert!(r.header("retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
}

#[test]
fn api_tokens_work_until_revoked() {
    let (dirs, server) = start(&[]);
    post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]);
    let spis = |args: &[&str]| crate::util::spis_cli(&dirs.state, args);
    let token = spis(&["token", "create", "backup-script"]).trim().to_owned();
    assert!(token.starts_with("spis_") && token.len() > 40, "{token}");
    assert_eq!(spis(&["token", "list"]), "backup-script\n");
    let bearer = format!("Bearer {token}");
    assert_eq!(get(&server, "/api/media", &[("Authorization", &bearer)]).status, 200);
    get(&server, "/api/media", &[("Authorization", "Bearer spis_wrong")]).assert_error(401, "unauthorized");
    spis(&["token", "revoke", "backup-script"]);
    wait_until("the revoked token is refused", || {
        get(&server, "/api/media", &[("Authorization", &bearer)]).status == 401
    });
}

#[test]
fn a_configured_password_hash_logs_in_and_cannot_be_changed_online() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spis"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"from the config\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let (_dirs, server) = start(&["--password-hash", &hash]);
    assert_eq!(get(&server, "/api/session", &[]).json()["setup"], false);
    post(&server, "/api/setup", r#"{"password":"hijack attempt"}"#, &[])
        .assert_error(409, "password_already_set");
    let cookie = session_cookie(&post(&server, "/api/login", r#"{"password":"from the config"}"#, &[]));
    post(
        &server,
        "/api/password",
        r#"{"old":"from the config","new":"something else"}"#,
        &[("Cookie", &cookie)],
    )
    .assert_error(409, "password_from_config");
    assert!(!server.log().contains("from the config"), "the password leaked into the log");
}

#[test]
fn a_client_over_the_rate_limit_gets_429_and_others_do_not() {
    let (_dirs, server) = start(&["--no-auth", "--rate-limit", "5"]);
    let statuses: Vec<u16> = (0..40).map(|_| get(&server, "/api/health", &[]).status).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let limited = get(&server, "/api/health", &[]);
    if limited.status == 429 {
        limited.assert_error(429, "rate_limited");
        assert_eq!(limited.header("retry-after"), Some("1"));
    }
    // A client behind a trusted proxy is its own client (the proxy is 127.0.0.1 here).
    let (_d2, proxied) = start(&["--no-auth", "--rate-limit", "5", "--trusted-proxies", "127.0.0.1"]);
    for i in 0..40 {
        let ip = format!("198.51.100.{i}");
        assert_eq!(get(&proxied, "/api/health", &[("X-Forwarded-For", &ip)]).status, 200, "{ip}");
    }
}

#[test]
fn no_auth_opens_everything() {
    let (_dirs, server) = start(&["--no-auth"]);
    let s: Value = get(&server, "/api/session", &[]).json();
    assert_eq!((&s["required"], &s["logged_in"]), (&false.into(), &true.into()));
    assert_eq!(get(&server, "/api/media", &[]).status, 200);
    Events::connect(&server, "");
}

#[test]
fn metrics_are_prometheus_text_for_a_scraper_with_a_token() {
    let (dirs, server) = start(&[]);
    post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]);
    get(&server, "/metrics", &[]).assert_error(401, "unauthorized");
    let token = crate::util::spis_cli(&dirs.state, &["token", "create", "prometheus"]);
    let bearer = format!("Bearer {}", token.trim());
    let auth = [("Authorization", bearer.as_str())];
    wait_until("indexed", || get(&server, "/api/health", &[]).json()["ready"] == true);
    let list = get(&server, "/api/media", &auth).json();
    let thumb = list["items"][0]["thumb"].as_str().unwrap().to_owned();
    assert_eq!(get(&server, &thumb, &auth).status, 200);
    get(&server, "/api/media/AAAAAAAAAAA", &auth).assert_error(404, "unknown_media");
    let r = get(&server, "/metrics", &auth);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.body).unwrap();
    let sample = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(sample(r#"spis_http_requests_total{route="list",status="200"}"#), 1.0);
    assert_eq!(sample(r#"spis_http_requests_total{route="item",status="404"}"#), 1.0);
    assert_eq!(sample(r#"spis_http_requests_total{route="metrics",status="401"}"#), 1.0);
    assert_eq!(sample(r#"spis_http_request_duration_seconds_count{route="thumb"}"#), 1.0);
    assert_eq!(sample(r#"spis_http_request_duration_seconds_bucket{route="thumb",le="+Inf"}"#), 1.0);
    assert_eq!(sample(r#"spis_index_items{kind="image"}"#), 1.0);
    assert_eq!(sample("spis_thumbnails_generated_total"), 1.0);
    assert_eq!(sample("spis_thumbnail_generation_seconds_count"), 1.0);
    assert_eq!(sample(r#"spis_thumbnail_cache_requests_total{result="miss"}"#), 1.0);
    assert_eq!(sample("spis_websocket_clients"), 0.0);
    assert!(sample("spis_process_resident_memory_bytes") > 1e6);
    // Every line is a comment or `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

/// The route table, as the server publishes it, walked path by path and method by method:
/// anonymous callers get 401 on every private route and never on a public one, and a method the
/// table does not list is a 405 naming the ones it does.
#[test]
fn every_route_of_the_table_refuses_anonymous_callers_unless_public() {
    let (dirs, server) = start(&[]);
    post(&server, "/api/setup", r#"{"password":"correct horse"}"#, &[]);
    let token = crate::util::spis_cli(&dirs.state, &["token", "create", "walker"]);
    let bearer = format!("Bearer {}", token.trim());
    let auth = [("Authorization", bearer.as_str())];
    wait_until("indexed", || get(&server, "/api/health", &[]).json()["ready"] == true);
    get(&server, "/api/openapi.json", &[]).assert_error(401, "unauthorized");
    let doc = get(&server, "/api/openapi.json", &auth).json();
    assert_eq!(doc["openapi"], "3.1.0");
    let id = get(&server, "/api/media", &auth).json()["items"][0]["id"].as_str().unwrap().to_owned();
    let paths = doc["paths"].as_object().unwrap();
    for known in ["/api/media", "/api/media/{id}/original", "/api/login", "/api/openapi.json", "/metrics"] {
        assert!(paths.contains_key(known), "{known} is missing from the document");
    }
    let (mut public, mut private) = (0, 0);
    for (template, ops) in paths {
        let path = template
            .replace("{id}", &id)
            .replace("{upload}", "aaaaaaaaaaaaaaaaaaaaaaaa")
            .replace("{path}", "a/b.jpg");
        let ops = ops.as_object().unwrap();
        let mut allowed: Vec<String> = ops.keys().map(|m| m.to_uppercase()).collect();
        for (method, op) in ops {
            let method = method.to_uppercase();
            let anonymous = server.request(&method, &path, &[]);
            if op["security"].as_array().unwrap().is_empty() {
                public += 1;
                assert_ne!(anonymous.status, 401, "{method} {path} is public");
            } else {
                private += 1;
                // A forged token is no better than none.
                let forged = server.request(&method, &path, &[("Authorization", "Bearer spis_forged")]);
                for r in [anonymous, forged] {
                    // A HEAD answer has the status and headers of the GET one, and no body.
                    match method.as_str() {
                        "HEAD" => assert_eq!(r.status, 401, "HEAD {path}"),
                        _ => r.assert_error(401, "unauthorized"),
                    }
                }
            }
        }
        // Any other method: still 401 for an anonymous caller on a private path, else a 405
        // whose Allow header lists exactly the document's methods.
        let r = server.request("TRACE", &path, &auth);
        r.assert_error(405, "method_not_allowed");
        // HEAD goes with GET (except for the WebSocket) and is not written in the document then.
        let listed: Vec<&str> = r.header("allow").unwrap().split(", ").collect();
        let mut allow: Vec<String> = listed
            .iter()
            .filter(|m| **m != "HEAD" || !listed.contains(&"GET"))
            .map(|m| m.to_string())
            .collect();
        allow.sort();
        allowed.sort();
        assert_eq!(allow, allowed, "{path}");
    }
    assert!(public >= 5 && private >= 14, "{public} public and {private} private operations");
    // An upload-only token is refused on every route but the upload ones.
    let cam =
        crate::util::spis_cli(&dirs.state, &["token", "create", "cam", "--upload-only", "--dir", "cam"]);
    let cam = format!("Bearer {}", cam.trim());
    for (template, ops) in paths {
        let path = template
            .replace("{id}", &id)
            .replace("{upload}", "aaaaaaaaaaaaaaaaaaaaaaaa")
            .replace("{path}", "cam/b.jpg");
        for method in ops.as_object().unwrap().keys() {
            let r = server.request(&method.to_uppercase(), &path, &[("Authorization", &cam)]);
            if template.starts_with("/api/upload") {
                assert!(![401, 403].contains(&r.status), "{method} {path}: {}", r.status);
            } else if method == "head" {
                assert_eq!(r.status, 403, "HEAD {path}");
            } else {
                r.assert_error(403, "upload_only_token");
            }
        }
    }
    // Every credential presented must hold: a forged cookie beside a good token is refused.
    let forged = [auth[0], ("Cookie", "spis_session=forged")];
    get(&server, "/api/status", &forged).assert_error(401, "unauthorized");
    // Outside the table: an unknown API path says nothing to an anonymous client.
    get(&server, "/api/nowhere", &[]).assert_error(401, "unauthorized");
    get(&server, "/api/nowhere", &auth).assert_error(404, "no_route");
}
