//! The real `spis` binary on 127.0.0.1:0 over real folders, and a small HTTP client for it.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The shared test corpus of real photos, beside the repository.
pub(crate) fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(p.join("MANIFEST.tsv").is_file(), "the photo corpus is missing at {}", p.display());
    p
}

/// Copies corpus files (paths relative to the corpus) into `media`, under the given names.
pub(crate) fn copy_from_corpus(media: &Path, files: &[(&str, &str)]) {
    for (from, to) in files {
        let dest = media.join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(corpus().join(from), &dest).unwrap_or_else(|e| panic!("copying {from}: {e}"));
    }
}

/// Copies every file of a corpus folder into `media`, keeping their names.
pub(crate) fn copy_folder_from_corpus(media: &Path, folder: &str) {
    for entry in std::fs::read_dir(corpus().join(folder)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), media.join(entry.file_name())).unwrap();
    }
}

/// Polls `done` every 20 ms until it returns true; fails the test with `what` after 60 s.
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small real JPEG without an EXIF date (public domain, from the corpus).
pub(crate) const PLAIN_JPEG: &str = "pypi-scikit-image-0.26.0/skimage/data/rocket.jpg";

pub(crate) fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    })
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a JSON error with this status and code.
    pub(crate) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), Some("application/json"));
        let j = self.json();
        assert_eq!(j["code"], code, "{j}");
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{j}");
    }
}

pub(crate) fn read(resp: ureq::http::Response<ureq::Body>) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().with_config().limit(1 << 30).read_to_vec().unwrap_or_default();
    Reply { status, headers, body }
}

/// A running server; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Server {
    /// Starts `spis` over `media` with its state in `state`, plus `args`, and waits for its port.
    pub(crate) fn start(media: &Path, state: &Path, args: &[&str]) -> Server {
        Self::start_with_env(media, state, args, &[])
    }

    pub(crate) fn start_with_env(media: &Path, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_under(&[], media, state, args, env)
    }

    /// [`Server::start_with_env`] through a wrapper that ends by exec'ing its arguments (e.g.
    /// `unshare --net --`), so that the pid is still the server's.
    pub(crate) fn start_under(
        wrapper: &[&str],
        media: &Path,
        state: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        // One log per server, even for servers started one after another on the same state.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let log = state.with_extension(format!("log-{}", STARTED.fetch_add(1, Ordering::Relaxed)));
        let bin = env!("CARGO_BIN_EXE_spis");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--media")
            .arg(media)
            .arg("--state-dir")
            .arg(state)
            .args(["--log", "info,spis=debug"])
            .args(args)
            .env_remove("SPIS_CONFIG")
            .env("TZ", "UTC")
            // Background thumbnails only where a test asks for them (a flag overrides this).
            .env("SPIS_THUMB_WORKERS", "0")
            // Open access except in the tests of access itself (which set it to false).
            .env("SPIS_NO_AUTH", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting spis");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("spis listening on ") else {
            let _ = child.wait();
            panic!("spis did not start: {line:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        };
        Server { child, base: base.to_owned(), log }
    }

    /// Polls `/api/status` until the initial index is complete.
    pub(crate) fn wait_indexed(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.get("/api/status").json();
            if s["indexing"]["done"] == true {
                return s;
            }
            assert!(Instant::now() < deadline, "indexing did not finish: {s}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        read(agent().get(self.url(path)).call().unwrap())
    }

    pub(crate) fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = agent().get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.call().unwrap())
    }

    pub(crate) fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// Every item, following `next_cursor` pages of `limit` from `query`.
    pub(crate) fn all_items(&self, query: &str, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100_000 {
            let mut path = format!("/api/media?limit={limit}");
            if !query.is_empty() {
                path.push('&');
                path.push_str(query);
            }
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.json(&path);
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
        panic!("pagination did not end");
    }

    /// The item whose file name is `name`.
    /// `DIR/NAME` of every listed item, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .all_items("", 500)
            .iter()
            .map(|i| format!("{}/{}", i["dir"].as_str().unwrap(), i["name"].as_str().unwrap()))
            .collect();
        n.sort();
        n
    }

    pub(crate) fn item_named(&self, name: &str) -> Value {
        self.all_items("", 500)
            .into_iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed"))
    }

    /// A request with any method and no body.
    pub(crate) fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = ureq::http::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(agent().run(req.body(()).unwrap()).unwrap())
    }

    pub(crate) fn put(&self, path: &str) -> Reply {
        read(agent().put(self.url(path)).send_empty().unwrap())
    }

    pub(crate) fn delete(&self, path: &str) -> Reply {
        read(agent().delete(self.url(path)).call().unwrap())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        signal(&self.child, libc::SIGTERM);
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// SIGKILL: no chance to flush anything.
    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn signal(child: &Child, sig: i32) {
    signal_pid(child.id(), sig);
}

pub(crate) fn signal_pid(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned and still own.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// A media folder and a state dir in fresh temp dirs.
pub(crate) struct Dirs {
    _tmp: tempfile::TempDir,
    pub media: PathBuf,
    pub state: PathBuf,
}

impl Dirs {
    pub(crate) fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let media = tmp.path().join("media");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&media).unwrap();
        Dirs { media, state, _tmp: tmp }
    }

    /// The folder that holds both, for a test's other files.
    pub(crate) fn root(&self) -> &Path {
        self._tmp.path()
    }
}

/// Reads an extended attribute with the raw syscall, as an outside observer would.
pub(crate) fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and a buffer of the given length.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

/// Sets a file's mtime (seconds since the epoch).
pub(crate) fn set_mtime(path: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

/// A WebSocket client of `/api/events`.
pub(crate) struct Events {
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
}

impl Events {
    /// Connects to `/api/events` with the given query (may be empty) and waits for `hello`.
    pub(crate) fn connect(server: &Server, query: &str) -> Events {
        let url = format!("{}/api/events{query}", server.base.replacen("http://", "ws://", 1));
        let (ws, resp) = tungstenite::connect(url).expect("connecting to /api/events");
        assert_eq!(resp.status(), 101);
        let mut events = Events { ws };
        let hello = events.next(Duration::from_secs(10)).expect("a hello message");
        assert_eq!(hello["type"], "hello", "{hello}");
        events
    }

    /// Connects to a full `ws://` URL with extra request headers (a cookie, an Origin), e.g.
    /// through a proxy, and waits for `hello`.
    pub(crate) fn connect_url(url: &str, headers: &[(&str, &str)]) -> Events {
        use tungstenite::client::IntoClientRequest as _;
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut()
                .insert(tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let (ws, resp) = tungstenite::connect(req).expect("connecting to /api/events");
        assert_eq!(resp.status(), 101);
        let mut events = Events { ws };
        let hello = events.next(Duration::from_secs(10)).expect("a hello message");
        assert_eq!(hello["type"], "hello", "{hello}");
        events
    }

    /// The next JSON message (pings are answered, `indexing` progress skipped), or `None` when
    /// nothing came within `timeout`.
    pub(crate) fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let tungstenite::stream::MaybeTlsStream::Plain(s) = self.ws.get_mut() else { unreachable!() };
            s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("events are JSON");
                    if v["type"] != "indexing" {
                        return Some(v);
                    }
                }
                Ok(tungstenite::Message::Close(_)) => return Some(serde_json::json!({"type": "closed"})),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Some(serde_json::json!({"type": "closed"}));
                }
                Err(e) => panic!("websocket error: {e}"),
            }
        }
    }

    /// The next message of `kind` (others are skipped); fails the test after `timeout`.
    pub(crate) fn expect(&mut self, kind: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(v) if v["type"] == kind => return v,
                Some(_) => {}
                None => panic!("no {kind:?} message within {timeout:?}"),
            }
        }
    }

    /// Every message until none comes for `quiet`.
    pub(crate) fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.next(quiet) {
            out.push(v);
        }
        out
    }
}

/// Runs a `spis` subcommand on the state dir `state` (`--state-dir` appended), asserts that it
/// succeeded, and returns what it printed.
pub(crate) fn spis_cli(state: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_spis"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env_remove("SPIS_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A real video made by ffmpeg (a test pattern, `secs` long), with more output options in `extra`.
pub(crate) fn make_video(path: &Path, secs: &str, extra: &[&str]) {
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10",
            "-t",
            secs,
        ])
        .args(["-pix_fmt", "yuv420p"])
        .args(extra)
        .arg(path)
        .status()
        .expect("ffmpeg (make test installs it)");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
}

/// Sends raw request bytes over `stream` and reads until the server closes: the status (0 when
/// there is none), the head, and the body (`None` when no blank line ends a head).
pub(crate) fn exchange(mut stream: std::net::TcpStream, request: &[u8]) -> (u16, String, Option<Vec<u8>>) {
    use std::io::{Read as _, Write as _};
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n");
    let head = String::from_utf8_lossy(&answer[..split.unwrap_or(answer.len())]).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head, split.map(|i| answer[i + 4..].to_vec()))
}

/// A real filesystem mounted over a folder for the length of a test, unmounted on drop so a
/// failing test leaves no mount behind. The tests that need one run as root, like `make test`
/// (which installs packages): without the privilege they fail with this message, never skip.
pub(crate) struct Mounted(PathBuf);

impl Mounted {
    pub(crate) fn new(fstype: &str, options: &str, at: &Path) -> Mounted {
        let mut mount = Command::new("mount");
        mount.args(["-t", fstype]);
        if !options.is_empty() {
            mount.args(["-o", options]);
        }
        let status = mount.arg(format!("spis-test-{fstype}")).arg(at).status().expect("running mount");
        assert!(
            status.success(),
            "mounting {fstype} on {} failed: this test needs root (CAP_SYS_ADMIN), as make test has",
            at.display()
        );
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
