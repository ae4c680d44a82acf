//! spis behind a real nginx (Debian's), configured by `spis template nginx`, on 127.0.0.1 only:
//! the app, thumbnails, Range requests and WebSocket events through the proxy, and forwarded
//! headers believed only from the trusted proxy.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Dirs, Events, PLAIN_JPEG, Server, copy_from_corpus, wait_until};

/// A real nginx master process with the rendered config, stopped on drop.
pub(crate) struct Nginx {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Renders `spis template nginx` for `upstreams` and starts nginx on a free 127.0.0.1 port.
    pub(crate) fn start(upstreams: &[&str]) -> Nginx {
        let port = free_port();
        let rendered = Command::new(env!("CARGO_BIN_EXE_spis"))
            .args(["template", "nginx", "--no-tls", "--server-name", "127.0.0.1"])
            .arg("--proxy-listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--upstream")
            .arg(upstreams.join(","))
            .env_remove("SPIS_CONFIG")
            .output()
            .unwrap();
        assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
        Nginx::start_with(port, &String::from_utf8(rendered.stdout).unwrap())
    }

    /// Starts nginx on `port` with `conf` as the contents of its `http` block (a `conf.d` file).
    /// `@DIR@` in it is replaced by a temporary directory that nginx's workers may write.
    pub(crate) fn start_with(port: u16, conf: &str) -> Nginx {
        assert!(Path::new("/usr/sbin/nginx").exists(), "nginx is not installed (make test installs it)");
        let dir = tempfile::tempdir().unwrap();
        // Workers run as nobody when the master is root: they need to reach the temp dirs.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        std::fs::write(
            dir.path().join("spis.conf"),
            conf.replace("@DIR@", &dir.path().display().to_string()),
        )
        .unwrap();
        let d = dir.path().display();
        let mut temps = String::new();
        for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let p = dir.path().join(t);
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
            temps.push_str(&format!("    {t}_temp_path {};\n", p.display()));
        }
        // The rendered file is what a user drops into conf.d; this is the rest of an nginx.conf.
        let main = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log {d}/access.log;\n{temps}    include {d}/spis.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let nginx = Nginx { child, port, _dir: dir };
        wait_until("nginx listens", || TcpStream::connect(("127.0.0.1", port)).is_ok());
        nginx
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        crate::util::signal(&self.child, libc::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP connection from a chosen loopback address (127.0.0.0/8 is all local), so tests can be
/// several clients.
fn connect_from(src: Ipv4Addr, dest: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd as _;
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    };
    let SocketAddr::V4(dest) = dest else { panic!("IPv4 only") };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own, with valid sockaddr_in structs; the
    // descriptor is handed to TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let stream = TcpStream::from_raw_fd(fd);
        let from = sockaddr(src, 0);
        assert_eq!(libc::bind(fd, (&raw const from).cast(), len), 0, "binding {src}");
        let to = sockaddr(*dest.ip(), dest.port());
        assert_eq!(libc::connect(fd, (&raw const to).cast(), len), 0, "connecting to {dest}");
        stream
    }
}

/// One request from `src` (`head`: the request line and headers, each ending in CRLF); the
/// status, head and body of the answer.
fn request_from(src: Ipv4Addr, base: &str, head: &str) -> (u16, String, Vec<u8>) {
    post_from(src, base, head, "")
}

/// As [`request_from`], with a JSON body.
fn post_from(src: Ipv4Addr, base: &str, head: &str, body: &str) -> (u16, String, Vec<u8>) {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())
    };
    let request = format!("{head}{length}Host: {addr}\r\nConnection: close\r\n\r\n{body}");
    let (status, head, body) = crate::util::exchange(connect_from(src, addr), request.as_bytes());
    (status, head, body.expect("an HTTP answer"))
}

fn auth_server(dirs: &Dirs, args: &[&str]) -> Server {
    Server::start_with_env(&dirs.media, &dirs.state, args, &[("SPIS_NO_AUTH", "false")])
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn the_app_thumbnails_ranges_and_events_work_through_nginx() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "photo.jpg")]);
    crate::util::make_video(&dirs.media.join("clip.mp4"), "2", &[]);
    let server = auth_server(&dirs, &["--trusted-proxies", "127.0.0.1"]);
    wait_until("indexed", || server.json("/api/health")["ready"] == true);
    let nginx = Nginx::start(&[server.base.trim_start_matches("http://")]);
    let base = nginx.base();
    let origin = format!("Origin: {base}\r\n");
    let lo = Ipv4Addr::LOCALHOST;

    // The page, then the first-run password through the proxy (its Origin is the proxy's).
    let (status, head, body) = request_from(lo, &base, "GET / HTTP/1.1\r\n");
    assert_eq!(status, 200, "{head}\n{}", nginx.error_log());
    assert!(
        header(&head, "content-security-policy").is_some()
            && String::from_utf8_lossy(&body).contains("<html")
    );
    let body = r#"{"password":"correct horse"}"#;
    let (status, head, _) = post_from(lo, &base, &format!("POST /api/setup HTTP/1.1\r\n{origin}"), body);
    assert_eq!(status, 200, "{head}");
    let set_cookie = header(&head, "set-cookie").unwrap();
    assert!(!set_cookie.contains("Secure"), "plain HTTP at the proxy: no Secure flag: {set_cookie}");
    let cookie = format!("Cookie: {}\r\n", set_cookie.split(';').next().unwrap());

    // Without the cookie, the API is closed through the proxy too.
    let (status, _, _) = request_from(lo, &base, "GET /api/media HTTP/1.1\r\n");
    assert_eq!(status, 401);
    let (status, _, list) = request_from(lo, &base, &format!("GET /api/media HTTP/1.1\r\n{cookie}"));
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let photo = items.iter().find(|i| i["name"] == "photo.jpg").unwrap();
    let clip = items.iter().find(|i| i["name"] == "clip.mp4").unwrap();
    let (status, head, thumb) =
        request_from(lo, &base, &format!("GET {} HTTP/1.1\r\n{cookie}", photo["thumb"].as_str().unwrap()));
    assert_eq!((status, header(&head, "content-type")), (200, Some("image/jpeg")));
    assert_eq!(&thumb[..2], b"\xff\xd8");

    // A video is played with Range requests: exactly the bytes asked for.
    let video = std::fs::read(dirs.media.join("clip.mp4")).unwrap();
    let id = clip["id"].as_str().unwrap();
    let (status, head, part) = request_from(
        lo,
        &base,
        &format!("GET /api/media/{id}/original HTTP/1.1\r\n{cookie}Range: bytes=100-1099\r\n"),
    );
    assert_eq!(status, 206, "{head}");
    assert_eq!(header(&head, "content-range"), Some(format!("bytes 100-1099/{}", video.len()).as_str()));
    assert_eq!(part, video[100..1100]);

    // Live events through the proxy's WebSocket upgrade, with the browser's Origin and cookie.
    let ws_cookie = cookie.trim_start_matches("Cookie: ").trim_end();
    let mut events = Events::connect_url(
        &format!("ws://127.0.0.1:{}/api/events", nginx.port),
        &[("Origin", &base), ("Cookie", ws_cookie)],
    );
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "new.jpg")]);
    let added = events.next(Duration::from_secs(30)).expect("an event through nginx");
    assert_eq!(
        (added["type"].as_str(), added["item"]["name"].as_str()),
        (Some("added"), Some("new.jpg")),
        "{added}"
    );
    // A WebSocket from another origin is refused through the proxy as well.
    let (status, _, _) = request_from(
        lo,
        &base,
        &format!(
            "GET /api/events HTTP/1.1\r\n{cookie}Origin: http://evil.example\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        ),
    );
    assert_eq!(status, 403);
}

#[test]
fn forwarded_headers_are_believed_only_from_the_trusted_proxy() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "photo.jpg")]);
    // Two requests a second per client (bursts of 8): easy to run out of on purpose.
    let server = auth_server(&dirs, &["--trusted-proxies", "127.0.0.1", "--rate-limit", "2"]);
    let nginx = Nginx::start(&[server.base.trim_start_matches("http://")]);
    let health = "GET /api/health HTTP/1.1\r\n";
    let exhaust = |src: Ipv4Addr, base: &str, extra: &dyn Fn(usize) -> String| {
        (0..40).filter(|&i| request_from(src, base, &format!("{health}{}", extra(i))).0 == 429).count()
    };

    // Straight to spis from an untrusted address: a made-up X-Forwarded-For changes nothing,
    // all its requests share one bucket.
    let limited =
        exhaust(Ipv4Addr::new(127, 0, 0, 7), &server.base, &|i| format!("X-Forwarded-For: 10.9.8.{i}\r\n"));
    assert!(limited >= 20, "spoofed X-Forwarded-For was believed: only {limited} of 40 limited");
    // X-Forwarded-Proto from it is not believed either: the cookie is not marked Secure.
    let body = r#"{"password":"correct horse"}"#;
    let (status, head, _) = post_from(
        Ipv4Addr::new(127, 0, 0, 8),
        &server.base,
        "POST /api/setup HTTP/1.1\r\nX-Forwarded-Proto: https\r\n",
        body,
    );
    assert_eq!(status, 200, "{head}");
    let cookie = header(&head, "set-cookie").unwrap();
    assert!(!cookie.contains("Secure"), "X-Forwarded-Proto from an untrusted address was believed: {cookie}");

    // Through nginx (trusted), each client has its own bucket: one client running out does not
    // limit another, although both reach spis from nginx's address.
    let a = exhaust(Ipv4Addr::new(127, 0, 0, 5), &nginx.base(), &|_| String::new());
    assert!(a >= 20, "client A was not limited: {a}");
    let (status, _, _) = request_from(Ipv4Addr::new(127, 0, 0, 6), &nginx.base(), health);
    assert_eq!(status, 200, "client B shares client A's bucket: the proxy's header was not believed");
    // And a client cannot smuggle an address through nginx: it sets, not appends.
    let smuggled =
        exhaust(Ipv4Addr::new(127, 0, 0, 9), &nginx.base(), &|i| format!("X-Forwarded-For: 10.1.2.{i}\r\n"));
    assert!(smuggled >= 20, "an X-Forwarded-For sent through nginx was believed: {smuggled}");
}
