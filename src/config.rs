//! Command line, environment and config file, validated once into a [`Config`].
//!
//! Every option exists three times: a `--flag`, an `SPIS_*` environment variable and a key in the
//! optional TOML file (rendered through `tera` first). Precedence is defaults < file < env < flags;
//! clap resolves env and flags together, so every clap option is an `Option` and the file and the
//! defaults only fill what both left empty. The rule: nothing else in the crate reads the
//! environment or the config file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// Where the config file is looked for when `--config` is not given.
const DEFAULT_CONFIG_FILE: &str = "/etc/spis/spis.toml";

/// The default config file, when it exists (and so is read).
pub fn default_config_file() -> Option<&'static Path> {
    Some(Path::new(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file())
}

/// spis: the Simple Private Image Server.
///
/// Serves a private gallery of the photos and videos in a folder. What is extracted from each file
/// is remembered on the file itself (extended attributes), so a restart is near instant.
#[derive(Debug, Parser)]
#[command(name = "spis", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// TOML config file, rendered through tera first ({{ env(name="HOME") }} works).
    /// [default: /etc/spis/spis.toml when it exists]
    #[arg(long, env = "SPIS_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub opts: Opts,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when none is given.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gallery (the default).
    Serve,
    /// Ask a running server on --listen whether it is healthy; exit 0 when it is (for Docker
    /// HEALTHCHECK and scripts).
    Healthcheck,
    /// Read a password from stdin and print its argon2id hash, for `password_hash`.
    HashPassword,
    /// API tokens for scripts (`Authorization: Bearer TOKEN`), kept hashed in the state dir.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print a deployment file made from this configuration: a reverse proxy in front of spis
    /// (nginx, caddy), a hardened systemd unit, or a docker compose file.
    Template(TemplateArgs),
}

/// `spis template ...`
#[derive(Debug, Clone, clap::Args)]
pub struct TemplateArgs {
    /// What to render.
    #[arg(value_enum)]
    pub kind: TemplateKind,
    /// The name the gallery is reached by (the proxy's server name and TLS certificate).
    #[arg(long, default_value = "photos.example.org", value_name = "NAME")]
    pub server_name: String,
    /// Where the proxy listens. [default: 443 with TLS, 80 without]
    #[arg(long, value_name = "ADDR")]
    pub proxy_listen: Option<String>,
    /// Plain HTTP in the proxy (a LAN without certificates); the default terminates TLS there.
    #[arg(long)]
    pub no_tls: bool,
    /// The spis servers to proxy to, comma-separated (replicas are balanced round robin).
    /// [default: the configured listen address]
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...")]
    pub upstream: Vec<SocketAddr>,
    /// TLS certificate for nginx. [default: certbot's path for --server-name]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// TLS key for nginx. [default: certbot's path for --server-name]
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
}

/// See `spis template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemplateKind {
    Nginx,
    Caddy,
    Systemd,
    DockerCompose,
}

impl TemplateKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::Nginx => "nginx",
            TemplateKind::Caddy => "caddy",
            TemplateKind::Systemd => "systemd",
            TemplateKind::DockerCompose => "docker-compose",
        }
    }
}

/// `spis token ...`
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (it is shown only this once).
    Create { name: String },
    /// List the tokens' names.
    List,
    /// Revoke a token: requests with it are refused from now on.
    Revoke { name: String },
}

/// The options shared by the command line, the environment and the config file.
///
/// The field names are the config file keys; `deny_unknown_fields` makes a typo a start-up error
/// that names the key.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opts {
    /// Folder of photos and videos to serve (read recursively). [default: ./media]
    #[arg(long, env = "SPIS_MEDIA", global = true, value_name = "DIR")]
    pub media: Option<PathBuf>,

    /// Address and port to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "SPIS_LISTEN", global = true, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Folder for caches and state that cannot live on the media files.
    /// [default: $STATE_DIRECTORY (systemd), $XDG_STATE_HOME/spis, ~/.local/state/spis, or
    /// /var/lib/spis as root]
    #[arg(long, env = "SPIS_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Whether metadata and favorites are kept in extended attributes on the media files
    /// (`auto`: where the filesystem allows, else in the state dir) or only in the state dir
    /// (`off`: the media files are never written to at all). [default: auto]
    #[arg(long, env = "SPIS_XATTR", global = true, value_name = "MODE")]
    pub xattr: Option<XattrMode>,

    /// Follow symbolic links to files and folders, also ones that lead out of the media folder
    /// (loops are skipped). Without it, links are ignored: only what is really inside the media
    /// folder is ever indexed or served. New links are found by rescans, not by inotify.
    #[arg(long, env = "SPIS_FOLLOW_SYMLINKS", global = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub follow_symlinks: Option<bool>,

    /// Log filter, e.g. `info`, `debug`, `spis=trace` (RUST_LOG is read when this is unset).
    /// [default: info]
    #[arg(long, env = "SPIS_LOG", global = true, value_name = "FILTER")]
    pub log: Option<String>,

    /// Threads that extract metadata while indexing. [default: number of cores]
    #[arg(long, env = "SPIS_INDEX_THREADS", global = true, value_name = "N")]
    pub index_threads: Option<usize>,

    /// Megabytes of encoded thumbnails and previews kept in memory. [default: 64]
    #[arg(long, env = "SPIS_THUMB_CACHE_MB", global = true, value_name = "MB")]
    pub thumb_cache_mb: Option<usize>,

    /// Background threads that make thumbnails after indexing, at low priority; 0 makes them
    /// only when requested. [default: number of cores - 1, at least 1]
    #[arg(long, env = "SPIS_THUMB_WORKERS", global = true, value_name = "N")]
    pub thumb_workers: Option<usize>,

    /// The widths and heights (pixels) that /api/media/{id}/resize accepts, comma-separated;
    /// any other size is refused, so nobody can fill the disk with variants.
    /// [default: 320,480,640,800,1024,1280,1600,1920,2560]
    #[arg(long, env = "SPIS_RESIZE_SIZES", global = true, value_name = "PX,PX,...", value_delimiter = ',')]
    pub resize_sizes: Option<Vec<u32>>,

    /// How changes in the media folder are noticed: `inotify` (instant), `poll` (a rescan every
    /// --poll-interval, for network filesystems whose other clients inotify cannot see), `auto`
    /// (inotify, plus the rescan when the folder is on NFS/SMB/FUSE) or `off`. [default: auto]
    #[arg(long, env = "SPIS_WATCH", global = true, value_name = "MODE")]
    pub watch: Option<WatchMode>,

    /// Seconds between rescans in poll mode (a rescan only lists folders whose mtime changed).
    /// [default: 300]
    #[arg(long, env = "SPIS_POLL_INTERVAL", global = true, value_name = "SECONDS")]
    pub poll_interval: Option<u64>,

    /// Changes buffered between the watcher and the indexer; when they pile up beyond this, spis
    /// falls back to a full rescan, as it does when the kernel's own queue overflows.
    /// [default: 16384]
    #[arg(long, env = "SPIS_WATCH_QUEUE", global = true, value_name = "N")]
    pub watch_queue: Option<usize>,

    /// Most folders watched with inotify; folders past it are rescanned every --poll-interval
    /// instead (as when the kernel's fs.inotify.max_user_watches runs out). [default: no limit]
    #[arg(long, env = "SPIS_MAX_WATCHES", global = true, value_name = "N")]
    pub max_watches: Option<usize>,

    /// URL to POST a JSON event to when media is added or removed (repeatable; http:// only).
    #[arg(long, env = "SPIS_WEBHOOK", global = true, value_name = "URL", value_delimiter = ',')]
    pub webhook: Option<Vec<String>>,

    /// Secret for the `X-Spis-Signature: sha256=<HMAC of the body>` header of webhook deliveries.
    #[arg(long, env = "SPIS_WEBHOOK_SECRET", global = true, value_name = "SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Program run for each new media file, with its absolute path as the argument and
    /// SPIS_PATH, SPIS_ID, SPIS_KIND, SPIS_TAKEN in the environment (never through a shell).
    #[arg(long, env = "SPIS_ON_NEW_MEDIA", global = true, value_name = "PROGRAM")]
    pub on_new_media: Option<PathBuf>,

    /// Serve the web app from this folder, read on every request, instead of the copy built into
    /// the binary: for working on the front end without rebuilding.
    #[arg(long, env = "SPIS_WEB_DIR", global = true, value_name = "DIR")]
    pub web_dir: Option<PathBuf>,

    /// Serve the gallery to anyone who can reach it, without a password. Without this flag and
    /// without a password, the web app asks for one to be chosen on first use.
    #[arg(long, env = "SPIS_NO_AUTH", global = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub no_auth: Option<bool>,

    /// The gallery password as an argon2id hash (make one with `spis hash-password`); when set,
    /// it cannot be changed from the web app. [default: the one chosen on first use]
    #[arg(long, env = "SPIS_PASSWORD_HASH", global = true, value_name = "HASH", hide_env_values = true)]
    pub password_hash: Option<String>,

    /// Days a login lasts. [default: 90]
    #[arg(long, env = "SPIS_SESSION_DAYS", global = true, value_name = "DAYS")]
    pub session_days: Option<u64>,

    /// Requests a second each client address may make on average (bursts of 4x); 0: no limit.
    /// [default: 100]
    #[arg(long, env = "SPIS_RATE_LIMIT", global = true, value_name = "N")]
    pub rate_limit: Option<u32>,

    /// Connections served at once; more wait until one closes. [default: 512]
    #[arg(long, env = "SPIS_MAX_CONNECTIONS", global = true, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Seconds a client may take to send a request's headers, and that an idle keep-alive
    /// connection stays open (slow clients and idle sockets do not pile up). [default: 15]
    #[arg(long, env = "SPIS_HEADER_TIMEOUT", global = true, value_name = "SECONDS")]
    pub header_timeout: Option<u64>,

    /// Bytes a request line and its headers may take; more is refused with 431. [default: 65536]
    #[arg(long, env = "SPIS_MAX_HEADER_BYTES", global = true, value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,

    /// Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses or
    /// networks (`10.0.0.0/8`, for an ingress whose address changes), comma-separated.
    #[arg(
        long,
        env = "SPIS_TRUSTED_PROXIES",
        global = true,
        value_name = "IP[/BITS],...",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<IpNet>>,

    /// Seconds an --on-new-media run may take before it is killed. [default: 30]
    #[arg(long, env = "SPIS_HOOK_TIMEOUT", global = true, value_name = "SECONDS")]
    pub hook_timeout: Option<u64>,

    /// --on-new-media runs at once; more wait their turn. [default: 2]
    #[arg(long, env = "SPIS_HOOK_CONCURRENCY", global = true, value_name = "N")]
    pub hook_concurrency: Option<usize>,
}

/// An address, or a network in CIDR notation (`192.168.0.0/16`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    bits: u8,
}

impl IpNet {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let ip = match ip {
            V6(v6) => v6.to_ipv4_mapped().map_or(ip, V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (V4(net), V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (V6(net), V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.bits)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<IpNet, String> {
        let (addr, bits) = s.trim().split_once('/').map_or((s.trim(), None), |(a, b)| (a, Some(b)));
        let addr: std::net::IpAddr =
            addr.parse().map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| format!("{s:?}: bits must be 0-{max}"))?,
        };
        Ok(IpNet { addr, bits })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.bits == max { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.bits) }
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// See `--watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    Auto,
    Inotify,
    Poll,
    Off,
}

/// See `--xattr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XattrMode {
    Auto,
    Off,
}

/// The validated configuration the rest of the crate runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub media: PathBuf,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub xattr: XattrMode,
    pub follow_symlinks: bool,
    pub log: String,
    pub index_threads: usize,
    pub thumb_cache_mb: usize,
    pub thumb_workers: usize,
    pub resize_sizes: Vec<u32>,
    pub watch: WatchMode,
    pub poll_interval: std::time::Duration,
    pub watch_queue: usize,
    pub max_watches: usize,
    pub webhooks: Vec<String>,
    pub webhook_secret: Option<String>,
    pub on_new_media: Option<PathBuf>,
    pub web_dir: Option<PathBuf>,
    pub no_auth: bool,
    pub password_hash: Option<String>,
    pub session_max_age: std::time::Duration,
    pub rate_limit: u32,
    pub max_connections: usize,
    pub header_timeout: std::time::Duration,
    pub max_header_bytes: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub hook_timeout: std::time::Duration,
    pub hook_concurrency: usize,
}

impl Config {
    /// Merges flags and env (already in `cli`) over the config file over the defaults.
    ///
    /// `env` is the process environment, passed in so tests can give their own.
    pub fn try_from_cli(cli: &Cli, env: &HashMap<String, String>) -> anyhow::Result<Config> {
        let file = match &cli.config {
            Some(path) => Some(load_file(path)?),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Some(load_file(Path::new(DEFAULT_CONFIG_FILE))?)
            }
            None => None,
        };
        let file = file.unwrap_or_default();
        let opts = &cli.opts;
        let pick = |flag: &Option<PathBuf>, key: &Option<PathBuf>| flag.clone().or(key.clone());

        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let index_threads = opts.index_threads.or(file.index_threads).unwrap_or(cores);
        let thumb_workers =
            opts.thumb_workers.or(file.thumb_workers).unwrap_or(cores.saturating_sub(1).max(1));
        if index_threads == 0 {
            bail!("index_threads must be at least 1");
        }
        let poll_interval = opts.poll_interval.or(file.poll_interval).unwrap_or(300);
        if poll_interval == 0 {
            bail!("poll_interval must be at least 1 second");
        }
        let hook_concurrency = opts.hook_concurrency.or(file.hook_concurrency).unwrap_or(2);
        if hook_concurrency == 0 {
            bail!("hook_concurrency must be at least 1");
        }
        Ok(Config {
            media: pick(&opts.media, &file.media).unwrap_or_else(|| PathBuf::from("media")),
            listen: opts.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            state_dir: pick(&opts.state_dir, &file.state_dir).unwrap_or_else(|| default_state_dir(env)),
            xattr: opts.xattr.or(file.xattr).unwrap_or(XattrMode::Auto),
            follow_symlinks: opts.follow_symlinks.or(file.follow_symlinks).unwrap_or(false),
            log: opts
                .log
                .clone()
                .or_else(|| env.get("RUST_LOG").cloned())
                .or(file.log)
                .unwrap_or_else(|| "info".to_owned()),
            index_threads,
            thumb_cache_mb: opts.thumb_cache_mb.or(file.thumb_cache_mb).unwrap_or(64),
            thumb_workers,
            resize_sizes: opts
                .resize_sizes
                .clone()
                .or(file.resize_sizes)
                .unwrap_or_else(|| vec![320, 480, 640, 800, 1024, 1280, 1600, 1920, 2560]),
            watch: opts.watch.or(file.watch).unwrap_or(WatchMode::Auto),
            poll_interval: std::time::Duration::from_secs(poll_interval),
            watch_queue: opts.watch_queue.or(file.watch_queue).unwrap_or(16384).max(1),
            max_watches: opts.max_watches.or(file.max_watches).unwrap_or(usize::MAX),
            webhooks: opts.webhook.clone().or(file.webhook).unwrap_or_default(),
            webhook_secret: opts.webhook_secret.clone().or(file.webhook_secret).filter(|s| !s.is_empty()),
            on_new_media: pick(&opts.on_new_media, &file.on_new_media),
            web_dir: pick(&opts.web_dir, &file.web_dir),
            no_auth: opts.no_auth.or(file.no_auth).unwrap_or(false),
            password_hash: opts.password_hash.clone().or(file.password_hash).filter(|s| !s.is_empty()),
            session_max_age: std::time::Duration::from_secs(
                86_400 * opts.session_days.or(file.session_days).unwrap_or(90).max(1),
            ),
            rate_limit: opts.rate_limit.or(file.rate_limit).unwrap_or(100),
            max_connections: opts.max_connections.or(file.max_connections).unwrap_or(512).max(1),
            header_timeout: std::time::Duration::from_secs(
                opts.header_timeout.or(file.header_timeout).unwrap_or(15).max(1),
            ),
            // hyper needs room for at least one read buffer.
            max_header_bytes: opts.max_header_bytes.or(file.max_header_bytes).unwrap_or(64 << 10).max(8192),
            trusted_proxies: opts.trusted_proxies.clone().or(file.trusted_proxies).unwrap_or_default(),
            hook_timeout: std::time::Duration::from_secs(
                opts.hook_timeout.or(file.hook_timeout).unwrap_or(30),
            ),
            hook_concurrency,
        })
    }
}

/// `$XDG_STATE_HOME/spis`, else `~/.local/state/spis`; `/var/lib/spis` for root, as system
/// services keep their state there.
fn default_state_dir(env: &HashMap<String, String>) -> PathBuf {
    // Under systemd with StateDirectory= (the unit): the directory it made for us.
    if let Some(dir) = env.get("STATE_DIRECTORY").and_then(|d| d.split(':').next()).filter(|d| !d.is_empty())
    {
        return PathBuf::from(dir);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        return PathBuf::from("/var/lib/spis");
    }
    if let Some(xdg) = env.get("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Path::new(xdg).join("spis");
    }
    match env.get("HOME").filter(|s| !s.is_empty()) {
        Some(home) => Path::new(home).join(".local/state/spis"),
        None => PathBuf::from(".spis-state"),
    }
}

/// Reads, renders and parses one config file.
fn load_file(path: &Path) -> anyhow::Result<Opts> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse_file(&text).with_context(|| format!("in config file {}", path.display()))
}

/// Renders the file through tera (so `{{ env(name="HOME") }}` works), then parses the TOML.
fn parse_file(text: &str) -> anyhow::Result<Opts> {
    let mut tera = tera::Tera::default();
    tera.register_function("env", env_function);
    let rendered = tera
        .render_str(text, &tera::Context::new())
        .map_err(|e| anyhow::anyhow!("template error: {}", error_chain(&e)))?;
    // toml's error names the unknown key and lists the known ones.
    Ok(toml::from_str(&rendered)?)
}

/// `env(name="VAR", default="fallback")`: the variable, else the default, else an error.
fn env_function(args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let name = args
        .get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| tera::Error::msg("env() needs name=\"VARIABLE\""))?;
    match std::env::var(name) {
        Ok(value) => Ok(tera::Value::String(value)),
        Err(_) => args.get("default").cloned().ok_or_else(|| {
            tera::Error::msg(format!("environment variable {name} is not set and env() has no default"))
        }),
    }
}

/// tera hides the useful part of its errors in `source()`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut full = vec!["spis"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).unwrap()
    }

    fn write_config(text: &str) -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("spis.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// A temp dir removed on drop, so config tests need no extra crate.
    mod tempdir {
        use std::path::{Path, PathBuf};
        pub struct Dir(PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir().join(format!("spis-cfg-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let (_d, path) = write_config("media = \"/from/file\"\nlisten = \"127.0.0.1:9000\"\n");
        let c = cli(&["--config", path.to_str().unwrap(), "--media", "/from/flag"]);
        let cfg = Config::try_from_cli(&c, &HashMap::new()).unwrap();
        assert_eq!(cfg.media, PathBuf::from("/from/flag"));
        assert_eq!(cfg.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(cfg.xattr, XattrMode::Auto);
    }

    #[test]
    fn unknown_config_key_is_an_error_naming_the_key() {
        let (_d, path) = write_config("medai = \"/typo\"\n");
        let c = cli(&["--config", path.to_str().unwrap()]);
        let err = format!("{:#}", Config::try_from_cli(&c, &HashMap::new()).unwrap_err());
        assert!(err.contains("medai"), "{err}");
    }

    #[test]
    fn config_file_is_rendered_with_env() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        let opts = parse_file("media = \"{{ env(name=\"PATH\") }}/x\"\n").unwrap();
        assert_eq!(opts.media, Some(PathBuf::from(format!("{path}/x"))));
        let opts = parse_file("media = \"{{ env(name=\"SPIS_SURELY_UNSET\", default=\"/d\") }}\"").unwrap();
        assert_eq!(opts.media, Some(PathBuf::from("/d")));
        assert!(parse_file("media = \"{{ env(name=\"SPIS_SURELY_UNSET\") }}\"").is_err());
    }

    #[test]
    fn default_state_dir_follows_systemd_then_xdg() {
        let systemd = HashMap::from([("STATE_DIRECTORY".to_owned(), "/var/lib/spis:/other".to_owned())]);
        assert_eq!(default_state_dir(&systemd), PathBuf::from("/var/lib/spis"));
        // SAFETY: as above.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(default_state_dir(&HashMap::new()), PathBuf::from("/var/lib/spis"));
            return;
        }
        let env = HashMap::from([("XDG_STATE_HOME".to_owned(), "/x".to_owned())]);
        assert_eq!(default_state_dir(&env), PathBuf::from("/x/spis"));
    }

    #[test]
    fn the_sample_config_parses() {
        let sample = include_str!("../spis.example.toml");
        let opts = parse_file(sample).unwrap();
        assert_eq!(opts.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert!(opts.media.is_some());
    }

    #[test]
    fn zero_index_threads_is_refused() {
        let c = cli(&["--index-threads", "0"]);
        assert!(Config::try_from_cli(&c, &HashMap::new()).is_err());
    }
}
