//! The embedded web app as HTTP serves it: versioned asset URLs, caching, compression, CSP.

use crate::util::{Dirs, Server};

fn asset_urls(html: &str) -> Vec<String> {
    html.split('"').filter(|s| s.starts_with("/assets/")).map(str::to_owned).collect()
}

#[test]
fn the_page_names_versioned_assets_that_are_cached_forever() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    assert!(page.header("permissions-policy").is_some_and(|p| p.contains("camera=()")));
    let api = server.get("/api/nope");
    assert_eq!(
        (api.header("x-content-type-options"), api.header("referrer-policy")),
        (Some("nosniff"), Some("same-origin"))
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(!html.contains("__ASSETS__"), "placeholders are replaced");
    let urls = asset_urls(&html);
    assert!(urls.iter().any(|u| u.ends_with(".js")), "{html}");
    for url in &urls {
        let r = server.get(url);
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"), "{url}");
        assert!(r.header("etag").is_some());
        // A stale version's URL still answers, but is not pinned in caches under that name.
        let version = url.split('/').nth(2).unwrap();
        let stale = server.get(&url.replacen(version, "0000000000", 1));
        assert_eq!((stale.status, stale.header("cache-control")), (200, Some("no-cache")), "{url}");
        assert_eq!(stale.body, r.body);
    }
    assert_eq!(server.get("/assets/0000000000/nope.js").status, 404);
    assert_eq!(server.get("/assets/0000000000/index.html").status, 404, "root files only at the root");
}

#[test]
fn text_assets_are_gzipped_for_clients_that_accept_it() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let html = String::from_utf8(server.get("/").body).unwrap();
    let js = asset_urls(&html).into_iter().find(|u| u.ends_with(".js")).unwrap();
    let plain = server.get(&js);
    assert_eq!(plain.header("content-encoding"), None);
    let gz = server.get_with(&js, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, plain.body);
    let etag = plain.header("etag").unwrap();
    assert_eq!(server.get_with(&js, &[("If-None-Match", etag)]).status, 304);
}

#[test]
fn a_web_dir_is_read_on_every_request() {
    let dirs = Dirs::new();
    let web = dirs.state.with_extension("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), "<p>one <script src=\"__ASSETS__/a.js\"></script>").unwrap();
    std::fs::write(web.join("a.js"), "1").unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &["--web-dir", web.to_str().unwrap()]);
    let first = String::from_utf8(server.get("/").body).unwrap();
    assert!(first.starts_with("<p>one"), "{first}");
    std::fs::write(web.join("index.html"), "<p>two").unwrap();
    assert_eq!(server.get("/").body, b"<p>two");
    let js = asset_urls(&first).pop().unwrap();
    assert_eq!(server.get(&js).header("cache-control"), Some("no-cache"), "never pinned while developing");
}
