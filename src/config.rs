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
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// Where the config file is looked for when `--config` is not given.
const DEFAULT_CONFIG_FILE: &str = "/etc/spis/spis.toml";

/// The default config file, when it exists (and so is read).
pub(crate) fn default_config_file() -> Option<&'static Path> {
    Some(Path::new(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file())
}

/// Every option's default, written only here: `--help` shows it, [`Config`] falls back to it, and a
/// test checks that spis.example.toml and the README say the same.
///
/// A [`Fixed`](DefaultValue::Fixed) default is written as in the config file and parsed by the
/// same code, as the layer under the file. A [`Described`](DefaultValue::Described) one is worked
/// out at start-up (or is nothing) and said in words.
const DEFAULTS: &[(&str, DefaultValue)] = {
    use DefaultValue::{Described, Fixed};
    &[
        ("media", Fixed(r#""./media""#)),
        ("listen", Fixed(r#""127.0.0.1:8080""#)),
        (
            "state_dir",
            Described(
                "$STATE_DIRECTORY (systemd), $XDG_STATE_HOME/spis, ~/.local/state/spis, or /var/lib/spis \
                 as root",
            ),
        ),
        ("xattr", Fixed(r#""auto""#)),
        ("follow_symlinks", Fixed("false")),
        ("log", Fixed(r#""info""#)),
        ("index_threads", Described("the number of cores")),
        ("thumb_cache_mb", Fixed("16")),
        ("thumb_workers", Described("the number of cores - 1, at least 1")),
        ("thumb_avif", Fixed("true")),
        ("resize_sizes", Fixed("[320, 480, 640, 800, 1024, 1280, 1600, 1920, 2560]")),
        ("watch", Fixed(r#""auto""#)),
        ("poll_interval", Fixed("300")),
        ("watch_queue", Fixed("16384")),
        ("max_watches", Described("no limit")),
        ("webhook", Described("none")),
        ("webhook_secret", Described("none: deliveries are unsigned")),
        ("on_new_media", Described("none")),
        ("web_dir", Described("the web app built into the binary")),
        ("no_auth", Fixed("false")),
        ("password_hash", Described("the one chosen on first use")),
        ("session_days", Fixed("90")),
        ("rate_limit", Fixed("100")),
        ("max_connections", Fixed("512")),
        ("header_timeout", Fixed("15")),
        ("max_header_bytes", Fixed("65536")),
        ("trusted_proxies", Described("none")),
        ("hook_timeout", Fixed("30")),
        ("hook_concurrency", Fixed("2")),
        ("hostname", Fixed(r#""spis""#)),
        ("decoder_timeout", Fixed("30")),
        ("upload_max_mb", Fixed("8192")),
        ("upload_reserve_mb", Fixed("256")),
        ("trash_days", Fixed("30")),
        ("retention", Described("none: files are kept until deleted")),
        ("retention_free_mb", Described("none")),
        ("public_dir", Described("none: every image URL is signed")),
        ("tls", Fixed(r#""auto""#)),
    ]
};

/// One row of [`DEFAULTS`].
#[derive(Debug, Clone, Copy)]
enum DefaultValue {
    /// A TOML value, as it would be written in the config file.
    Fixed(&'static str),
    /// Worked out at start-up, or nothing; in words.
    Described(&'static str),
}

impl DefaultValue {
    /// As `--help` shows it (given [`fixed_defaults`]): a list in the flag's comma-separated
    /// form, a string without its quotes.
    fn for_help(self, key: &str, fixed: &toml::Table) -> String {
        match (self, fixed.get(key)) {
            (DefaultValue::Described(words), _) => words.to_owned(),
            (_, Some(toml::Value::String(s))) => s.clone(),
            (_, Some(toml::Value::Array(items))) => {
                items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            }
            (DefaultValue::Fixed(value), _) => value.to_owned(),
        }
    }
}

/// The [`Fixed`](DefaultValue::Fixed) defaults as a parsed TOML table.
fn fixed_defaults() -> toml::Table {
    let doc: String = DEFAULTS
        .iter()
        .filter_map(|(key, d)| match d {
            DefaultValue::Fixed(value) => Some(format!("{key} = {value}\n")),
            DefaultValue::Described(_) => None,
        })
        .collect();
    doc.parse().expect("DEFAULTS is valid TOML (checked by a test)")
}

/// The defaults layer: [`Opts`] with every fixed default filled in.
fn default_opts() -> Opts {
    fixed_defaults().try_into().expect("DEFAULTS fit Opts (checked by a test)")
}

/// spis: the Simple Private Image Server.
///
/// Serves a private gallery of the photos and videos in a folder. What is extracted from each file
/// is remembered on the file itself (extended attributes), so a restart is near instant.
#[derive(Debug, Parser)]
#[command(name = "spis", version, about, long_about, max_term_width = 100)]
pub(crate) struct Cli {
    /// TOML config file, rendered through tera first ({{ env(name="HOME") }} works).
    #[arg(long, env = "SPIS_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// A config file to start with when the --config file cannot be read or is wrong, so that a
    /// mistyped key does not leave a device unreachable: the error goes to the log and to the
    /// web app (`config_error` in /api/status). Without it, such an error stops spis.
    #[arg(long, env = "SPIS_CONFIG_FALLBACK", global = true, value_name = "FILE")]
    pub config_fallback: Option<PathBuf>,

    #[command(flatten)]
    pub opts: Opts,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The command line, with every option's default from [`DEFAULTS`] in its help. (clap's own
    /// `default_value` cannot be used: it would make the default beat the config file.)
    pub(crate) fn command_with_defaults() -> clap::Command {
        let fixed = fixed_defaults();
        <Cli as clap::CommandFactory>::command()
            .mut_arg("config", |a| with_default(a, &format!("{DEFAULT_CONFIG_FILE} when it exists")))
            .mut_args(|a| match DEFAULTS.iter().find(|(key, _)| a.get_id() == *key) {
                Some((key, d)) => {
                    let shown = d.for_help(key, &fixed);
                    with_default(a, &shown)
                }
                None => a,
            })
    }

    /// Parses the process's arguments like `Cli::parse`, with the defaults in `--help`.
    pub(crate) fn parse_with_defaults() -> Cli {
        let mut cmd = Cli::command_with_defaults();
        let matches = cmd.get_matches_mut();
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
            .unwrap_or_else(|e| e.format(&mut cmd).exit())
    }
}

/// Appends `[default: ...]` to an option's help.
fn with_default(arg: clap::Arg, shown: &str) -> clap::Arg {
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    let long_help = arg.get_long_help().map(|h| format!("{h} [default: {shown}]"));
    let arg = arg.help(format!("{help} [default: {shown}]"));
    match long_help {
        Some(long) => arg.long_help(long),
        None => arg,
    }
}

/// What to do; `serve` when none is given.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the gallery (the default).
    Serve,
    /// Ask a running server on --listen whether it is healthy; exit 0 when it is (for Docker
    /// HEALTHCHECK and scripts).
    Healthcheck,
    /// Read a password from stdin and print its argon2id hash, for `password_hash`.
    HashPassword,
    /// Print the device name (`hostname`), for the appliance's boot to set as its host name.
    Hostname,
    /// API tokens for scripts (`Authorization: Bearer TOKEN`), kept hashed in the state dir.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Image URLs for a static site (`/img/...`): one signed URL, or a srcset of every width in
    /// resize_sizes.
    Url {
        #[command(subcommand)]
        action: UrlAction,
    },
    /// Print a deployment file made from this configuration: a reverse proxy in front of spis
    /// (nginx, caddy), a hardened systemd unit, or a docker compose file.
    Template(TemplateArgs),
}

/// `spis template ...`
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TemplateArgs {
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
pub(crate) enum TemplateKind {
    Nginx,
    Caddy,
    Systemd,
    DockerCompose,
}

impl TemplateKind {
    /// The name on the command line.
    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            TemplateKind::Nginx => "nginx",
            TemplateKind::Caddy => "caddy",
            TemplateKind::Systemd => "systemd",
            TemplateKind::DockerCompose => "docker-compose",
        }
    }
}

/// `spis url ...`
#[derive(Debug, Subcommand)]
pub(crate) enum UrlAction {
    /// Print the URL of a photo fitted into one box.
    Sign {
        /// The photo's path below the media folder (DIR/NAME, as /api/media gives `dir` and `name`).
        path: String,
        /// The width of the box: one of resize_sizes.
        #[arg(long, value_name = "PX")]
        width: u32,
        #[command(flatten)]
        opts: UrlOpts,
    },
    /// Print `srcset` text: the photo's URL at every width of resize_sizes.
    Srcset {
        /// The photo's path below the media folder (DIR/NAME).
        path: String,
        #[command(flatten)]
        opts: UrlOpts,
    },
}

/// What `spis url sign` and `srcset` share.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UrlOpts {
    /// The height of the box (one of resize_sizes); without it the picture is as tall as it needs.
    #[arg(long, value_name = "PX")]
    pub height: Option<u32>,
    /// Fill the box and crop the middle (with --height) instead of fitting inside it.
    #[arg(long)]
    pub cover: bool,
    /// The encoding: jpeg, png, avif, or auto (AVIF to browsers that take it, else JPEG; the
    /// answer varies by the Accept header, so a cache in front must too).
    #[arg(long, default_value = "jpeg", value_parser = parse_wanted)]
    pub format: crate::imgurl::Wanted,
    /// The URL is refused (403) after this many days; without it, it works until url.key changes.
    #[arg(long, value_name = "DAYS")]
    pub expires_days: Option<u64>,
    /// What goes before the path: the address the site reaches spis by (https://photos.example.org).
    #[arg(long, default_value = "", value_name = "URL")]
    pub base: String,
}

fn parse_wanted(s: &str) -> Result<crate::imgurl::Wanted, String> {
    crate::imgurl::Wanted::parse(s.as_bytes()).map_err(str::to_owned)
}

/// `spis token ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenAction {
    /// Create a token and print it (it is shown only this once).
    Create {
        name: String,
        /// The token may only add files (uploads) under --dir, and read nothing: for a camera or
        /// a script that delivers photos.
        #[arg(long, requires = "dir")]
        upload_only: bool,
        /// The folder below the media folder that an --upload-only token adds files to.
        #[arg(long, requires = "upload_only", value_name = "DIR")]
        dir: Option<String>,
    },
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
pub(crate) struct Opts {
    /// Folder of photos and videos to serve (read recursively).
    #[arg(long, env = "SPIS_MEDIA", global = true, value_name = "DIR")]
    pub media: Option<PathBuf>,

    /// Address and port to listen on; several, comma-separated (a list in the file), e.g.
    /// `0.0.0.0:80,0.0.0.0:443`. Every port answers both HTTP and HTTPS.
    #[arg(long, env = "SPIS_LISTEN", global = true, value_name = "ADDR:PORT,...")]
    pub listen: Option<Listen>,

    /// Folder for caches and state that cannot live on the media files.
    #[arg(long, env = "SPIS_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Whether metadata and favorites are kept in extended attributes on the media files
    /// (`auto`: where the filesystem allows, else in the state dir) or only in the state dir
    /// (`off`: the media files are never written to at all).
    #[arg(long, env = "SPIS_XATTR", global = true, value_name = "MODE")]
    pub xattr: Option<XattrMode>,

    /// Follow symbolic links to files and folders, also ones that lead out of the media folder
    /// (loops are skipped). Without it, links are ignored: only what is really inside the media
    /// folder is ever indexed or served. New links are found by rescans, not by inotify.
    #[arg(long, env = "SPIS_FOLLOW_SYMLINKS", global = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub follow_symlinks: Option<bool>,

    /// Log filter, e.g. `info`, `debug`, `spis=trace` (RUST_LOG is read when this is unset).
    #[arg(long, env = "SPIS_LOG", global = true, value_name = "FILTER")]
    pub log: Option<String>,

    /// Threads that extract metadata while indexing.
    #[arg(long, env = "SPIS_INDEX_THREADS", global = true, value_name = "N")]
    pub index_threads: Option<usize>,

    /// Megabytes of encoded thumbnails and previews kept in memory; 0 keeps none there.
    #[arg(long, env = "SPIS_THUMB_CACHE_MB", global = true, value_name = "MB")]
    pub thumb_cache_mb: Option<usize>,

    /// Background threads that make thumbnails after indexing, at low priority; 0 makes them
    /// only when requested.
    #[arg(long, env = "SPIS_THUMB_WORKERS", global = true, value_name = "N")]
    pub thumb_workers: Option<usize>,

    /// Also make an AVIF of each grid thumbnail (from its preview, after the JPEG pass, at low
    /// priority), served to browsers that accept AVIF: the grid then costs about 0.4x the bytes.
    #[arg(long, env = "SPIS_THUMB_AVIF", global = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub thumb_avif: Option<bool>,

    /// The widths and heights (pixels) that /api/media/{id}/resize accepts, comma-separated;
    /// any other size is refused, so nobody can fill the disk with variants (an empty list refuses
    /// every size).
    #[arg(long, env = "SPIS_RESIZE_SIZES", global = true, value_name = "PX,PX,...", value_delimiter = ',')]
    pub resize_sizes: Option<Vec<u32>>,

    /// How changes in the media folder are noticed: `inotify` (instant), `poll` (a rescan every
    /// --poll-interval, for network filesystems whose other clients inotify cannot see), `auto`
    /// (inotify, plus the rescan when the folder is on NFS/SMB/FUSE) or `off`.
    #[arg(long, env = "SPIS_WATCH", global = true, value_name = "MODE")]
    pub watch: Option<WatchMode>,

    /// Seconds between rescans in poll mode (a rescan only lists folders whose mtime changed).
    #[arg(long, env = "SPIS_POLL_INTERVAL", global = true, value_name = "SECONDS")]
    pub poll_interval: Option<u64>,

    /// Changes buffered between the watcher and the indexer; when they pile up beyond this, spis
    /// falls back to a full rescan, as it does when the kernel's own queue overflows.
    #[arg(long, env = "SPIS_WATCH_QUEUE", global = true, value_name = "N")]
    pub watch_queue: Option<usize>,

    /// Most folders watched with inotify; folders past it are rescanned every --poll-interval
    /// instead (as when the kernel's fs.inotify.max_user_watches runs out); 0 rescans them all.
    #[arg(long, env = "SPIS_MAX_WATCHES", global = true, value_name = "N")]
    pub max_watches: Option<usize>,

    /// URL to POST a JSON event to when media is added or removed (repeatable; http:// only).
    #[arg(long, env = "SPIS_WEBHOOK", global = true, value_name = "URL", value_delimiter = ',')]
    pub webhook: Option<Vec<String>>,

    /// Secret for the `X-Spis-Signature: sha256=<HMAC of the body>` header of webhook deliveries
    /// (empty: unsigned).
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
    /// it cannot be changed from the web app (empty: none).
    #[arg(long, env = "SPIS_PASSWORD_HASH", global = true, value_name = "HASH", hide_env_values = true)]
    pub password_hash: Option<String>,

    /// Days a login lasts.
    #[arg(long, env = "SPIS_SESSION_DAYS", global = true, value_name = "DAYS")]
    pub session_days: Option<u64>,

    /// Requests a second each client address may make on average (bursts of 4x); 0: no limit.
    #[arg(long, env = "SPIS_RATE_LIMIT", global = true, value_name = "N")]
    pub rate_limit: Option<u32>,

    /// Connections served at once; more wait until one closes.
    #[arg(long, env = "SPIS_MAX_CONNECTIONS", global = true, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Seconds a client may take to send a request's headers, and that an idle keep-alive
    /// connection stays open (slow clients and idle sockets do not pile up).
    #[arg(long, env = "SPIS_HEADER_TIMEOUT", global = true, value_name = "SECONDS")]
    pub header_timeout: Option<u64>,

    /// Bytes a request line and its headers may take (at least 8192); more is refused with 431.
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

    /// Seconds an --on-new-media run may take before it is killed.
    #[arg(long, env = "SPIS_HOOK_TIMEOUT", global = true, value_name = "SECONDS")]
    pub hook_timeout: Option<u64>,

    /// --on-new-media runs at once; more wait their turn.
    #[arg(long, env = "SPIS_HOOK_CONCURRENCY", global = true, value_name = "N")]
    pub hook_concurrency: Option<usize>,

    /// The device's name on the network, one DNS label (letters, digits and inner `-`, at most
    /// 63): the appliance takes it as its hostname and answers for NAME.local by mDNS, so two
    /// boxes on one network can be told apart. `spis hostname` prints it.
    #[arg(long, env = "SPIS_HOSTNAME", global = true, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Seconds heif-dec or ffmpeg may take for one file's picture before it is killed and the
    /// file gets a placeholder (a hostile file costs no more; raise it only for slow machines).
    #[arg(long, env = "SPIS_DECODER_TIMEOUT", global = true, value_name = "SECONDS")]
    pub decoder_timeout: Option<u64>,

    /// The largest file accepted by upload, in megabytes (a larger one is refused before its
    /// body is read).
    #[arg(long, env = "SPIS_UPLOAD_MAX_MB", global = true, value_name = "MB")]
    pub upload_max_mb: Option<u64>,

    /// Megabytes an upload must leave free on the media folder's disk; one that would leave
    /// less is refused (507), so uploads never fill the card.
    #[arg(long, env = "SPIS_UPLOAD_RESERVE_MB", global = true, value_name = "MB")]
    pub upload_reserve_mb: Option<u64>,

    /// Days a deleted file stays in the trash ("Recently deleted", on its own drive) before it
    /// goes for good; 0: deleted files go for good at once.
    #[arg(long, env = "SPIS_TRASH_DAYS", global = true, value_name = "DAYS")]
    pub trash_days: Option<u64>,

    /// Folders whose files go for good once older than a time, oldest first, and not through
    /// the trash (a camera's snapshots): `FOLDER=AGE,...` with AGE in hours, days or weeks
    /// (`Cameras=30d,Doorbell=72h`); in the config file a table.
    #[arg(long, env = "SPIS_RETENTION", global = true, value_name = "FOLDER=AGE,...")]
    pub retention: Option<Retention>,

    /// Megabytes to keep free on the drive of each retention folder: below that, its oldest
    /// files go too, whatever their age, so a snapshot box never fills its card.
    #[arg(long, env = "SPIS_RETENTION_FREE_MB", global = true, value_name = "MB")]
    pub retention_free_mb: Option<u64>,

    /// A folder below the media folder whose pictures anyone may fetch through unsigned image
    /// URLs (`/img/_/w800/contain/DIR/NAME.jpeg`), e.g. a blog's photos.
    #[arg(long, env = "SPIS_PUBLIC_DIR", global = true, value_name = "DIR")]
    pub public_dir: Option<String>,

    /// HTTPS, on the same port as HTTP: `auto` makes the device its own certificate authority in
    /// the state dir and a certificate for its names (each phone trusts it once: README,
    /// HTTPS at home); `cert=FILE,key=FILE` serves a certificate of your own (PEM, read again when it
    /// changes); `off` serves plain HTTP only.
    #[arg(long, env = "SPIS_TLS", global = true, value_name = "auto|off|cert=FILE,key=FILE")]
    pub tls: Option<TlsMode>,
}

/// `listen`: one address or several; the first is the one logs and templates name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listen(pub Vec<SocketAddr>);

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Listen, String> {
        let addrs = s
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse().map_err(|_| format!("listen: {a:?} is not ADDRESS:PORT (0.0.0.0:8080, [::]:80)"))
            })
            .collect::<Result<Vec<SocketAddr>, _>>()?;
        if addrs.is_empty() {
            return Err("listen: no address".to_owned());
        }
        Ok(Listen(addrs))
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Listen, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let joined = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => s,
            OneOrMany::Many(v) => v.join(","),
        };
        joined.parse().map_err(serde::de::Error::custom)
    }
}

/// `tls`: where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsMode {
    Off,
    /// The device's own CA (see `crate::tls`).
    Auto,
    /// The user's own certificate chain and key, PEM.
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<TlsMode, String> {
        match s.trim() {
            "off" => return Ok(TlsMode::Off),
            "auto" => return Ok(TlsMode::Auto),
            _ => {}
        }
        let (mut cert, mut key) = (None, None);
        for part in s.split(',') {
            match part.trim().split_once('=') {
                Some(("cert", f)) if !f.is_empty() => cert = Some(PathBuf::from(f)),
                Some(("key", f)) if !f.is_empty() => key = Some(PathBuf::from(f)),
                _ => return Err(format!("tls: {s:?} is not auto, off or cert=FILE,key=FILE")),
            }
        }
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(TlsMode::Files { cert, key }),
            _ => Err(format!("tls: {s:?} needs both cert=FILE and key=FILE")),
        }
    }
}

impl<'de> Deserialize<'de> for TlsMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TlsMode, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `retention`: (folder below the media folder, maximum age) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Retention(pub Vec<(String, Duration)>);

impl Retention {
    fn rule(folder: &str, age: &str) -> Result<(String, Duration), String> {
        let folder = folder.trim().trim_matches('/').to_owned();
        if folder.is_empty()
            || folder.split('/').any(|p| p.is_empty() || p == "." || p == ".." || p.starts_with('.'))
        {
            return Err(format!("retention: {folder:?} is not a folder below the media folder"));
        }
        let age = age.trim();
        let (n, unit) = age.split_at(age.find(|c: char| !c.is_ascii_digit()).unwrap_or(age.len()));
        let hours = match unit {
            "h" => 1,
            "d" => 24,
            "w" => 24 * 7,
            _ => {
                return Err(format!(
                    "retention: {age:?} for {folder:?} is not an age such as 72h, 30d or 4w"
                ));
            }
        };
        let n: u64 = n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("retention: {age:?} for {folder:?} must be at least 1{unit}"))?;
        Ok((folder, Duration::from_secs(n.saturating_mul(hours * 3600))))
    }
}

impl std::str::FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Retention, String> {
        let rules = s
            .split(',')
            .filter(|r| !r.trim().is_empty())
            .map(|r| {
                let (folder, age) =
                    r.split_once('=').ok_or_else(|| format!("retention: {r:?} is not FOLDER=AGE"))?;
                Retention::rule(folder, age)
            })
            .collect::<Result<_, _>>()?;
        Ok(Retention(rules))
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Retention, D::Error> {
        let table = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let rules = table
            .iter()
            .map(|(folder, age)| Retention::rule(folder, age))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)?;
        Ok(Retention(rules))
    }
}

/// An address, or a network in CIDR notation (`192.168.0.0/16`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: std::net::IpAddr,
    bits: u8,
}

impl IpNet {
    /// `addr/bits`; `bits` at most 32 (IPv4) or 128 (IPv6).
    pub(crate) const fn new(addr: std::net::IpAddr, bits: u8) -> IpNet {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        assert!(bits <= max, "a prefix longer than the address");
        IpNet { addr, bits }
    }

    pub(crate) fn addr(&self) -> std::net::IpAddr {
        self.addr
    }

    pub(crate) fn bits(&self) -> u8 {
        self.bits
    }

    pub(crate) fn contains(&self, ip: std::net::IpAddr) -> bool {
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
pub(crate) enum WatchMode {
    Auto,
    Inotify,
    Poll,
    Off,
}

/// See `--xattr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum XattrMode {
    Auto,
    Off,
}

/// The validated configuration the rest of the crate runs on.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub media: PathBuf,
    /// The first `listen` address: the one logs, templates and the health check use.
    pub listen: SocketAddr,
    /// The other `listen` addresses.
    pub listen_also: Vec<SocketAddr>,
    pub state_dir: PathBuf,
    pub xattr: XattrMode,
    pub follow_symlinks: bool,
    pub log: String,
    pub index_threads: usize,
    pub thumb_cache_mb: usize,
    pub thumb_workers: usize,
    pub thumb_avif: bool,
    pub resize_sizes: Vec<u32>,
    pub watch: WatchMode,
    pub poll_interval: Duration,
    pub watch_queue: usize,
    pub max_watches: usize,
    pub webhooks: Vec<String>,
    pub webhook_secret: Option<String>,
    pub on_new_media: Option<PathBuf>,
    pub web_dir: Option<PathBuf>,
    pub no_auth: bool,
    pub password_hash: Option<String>,
    pub session_max_age: Duration,
    pub rate_limit: u32,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub hook_timeout: Duration,
    pub hook_concurrency: usize,
    pub hostname: String,
    pub decoder_timeout: Duration,
    pub upload_max_bytes: u64,
    pub upload_reserve_bytes: u64,
    pub trash_days: u64,
    pub retention: Retention,
    pub retention_free_bytes: Option<u64>,
    pub public_dir: Option<String>,
    pub tls: TlsMode,
    /// Why the --config file was not used, when spis started from --config-fallback instead.
    pub config_error: Option<String>,
}

impl Config {
    /// Merges flags and env (already in `cli`) over the config file over [`DEFAULTS`], then
    /// [validates](Config::validate) the result.
    ///
    /// `env` is the process environment, passed in so tests can give their own.
    ///
    /// When that fails and `--config-fallback` is given, the same again with the fallback file in
    /// place of the config file; [`Config::config_error`] then says what was wrong.
    pub(crate) fn try_from_cli(cli: &Cli, env: &HashMap<String, String>) -> anyhow::Result<Config> {
        let path = cli.config.as_deref().or_else(|| default_config_file());
        let err = match Config::try_from_file(cli, env, path) {
            Ok(config) => return Ok(config),
            Err(e) => e,
        };
        let Some(fallback) = &cli.config_fallback else { return Err(err) };
        let mut config = Config::try_from_file(cli, env, Some(fallback)).with_context(|| {
            format!("{err:#}; and the fallback config {} did not work either", fallback.display())
        })?;
        config.config_error = Some(format!("{err:#}"));
        Ok(config)
    }

    /// [`Config::try_from_cli`] with the config file at `path`, or none.
    fn try_from_file(
        cli: &Cli,
        env: &HashMap<String, String>,
        path: Option<&Path>,
    ) -> anyhow::Result<Config> {
        let file = path.map(load_file).transpose()?;
        let (opts, file, defaults) = (&cli.opts, file.unwrap_or_default(), default_opts());
        // Flags and env, else the file.
        macro_rules! pick {
            ($key:ident) => {
                opts.$key.clone().or_else(|| file.$key.clone())
            };
        }
        // The same, else the key's fixed default.
        macro_rules! fixed {
            ($key:ident) => {
                pick!($key)
                    .or_else(|| defaults.$key.clone())
                    .expect(concat!(stringify!($key), " has a fixed default in DEFAULTS"))
            };
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Never empty (Listen's parser refuses an empty list).
        let listen = fixed!(listen).0;
        let config = Config {
            media: fixed!(media),
            listen: listen[0],
            listen_also: listen[1..].to_vec(),
            state_dir: pick!(state_dir).unwrap_or_else(|| default_state_dir(env)),
            xattr: fixed!(xattr),
            follow_symlinks: fixed!(follow_symlinks),
            // RUST_LOG ranks below SPIS_LOG and above the file.
            log: opts.log.clone().or_else(|| env.get("RUST_LOG").cloned()).unwrap_or_else(|| fixed!(log)),
            index_threads: pick!(index_threads).unwrap_or(cores),
            thumb_cache_mb: fixed!(thumb_cache_mb),
            thumb_workers: pick!(thumb_workers).unwrap_or(cores.saturating_sub(1).max(1)),
            thumb_avif: fixed!(thumb_avif),
            resize_sizes: fixed!(resize_sizes),
            watch: fixed!(watch),
            poll_interval: Duration::from_secs(fixed!(poll_interval)),
            watch_queue: fixed!(watch_queue),
            max_watches: pick!(max_watches).unwrap_or(usize::MAX),
            webhooks: pick!(webhook).unwrap_or_default(),
            webhook_secret: pick!(webhook_secret).filter(|s| !s.is_empty()),
            on_new_media: pick!(on_new_media),
            web_dir: pick!(web_dir),
            no_auth: fixed!(no_auth),
            password_hash: pick!(password_hash).filter(|s| !s.is_empty()),
            session_max_age: Duration::from_secs(fixed!(session_days).saturating_mul(DAY)),
            rate_limit: fixed!(rate_limit),
            max_connections: fixed!(max_connections),
            header_timeout: Duration::from_secs(fixed!(header_timeout)),
            max_header_bytes: fixed!(max_header_bytes),
            trusted_proxies: pick!(trusted_proxies).unwrap_or_default(),
            hook_timeout: Duration::from_secs(fixed!(hook_timeout)),
            hook_concurrency: fixed!(hook_concurrency),
            hostname: fixed!(hostname),
            decoder_timeout: Duration::from_secs(fixed!(decoder_timeout)),
            upload_max_bytes: fixed!(upload_max_mb).saturating_mul(1 << 20),
            upload_reserve_bytes: fixed!(upload_reserve_mb).saturating_mul(1 << 20),
            trash_days: fixed!(trash_days),
            retention: pick!(retention).unwrap_or_default(),
            retention_free_bytes: pick!(retention_free_mb).map(|mb| mb.saturating_mul(1 << 20)),
            public_dir: pick!(public_dir).map(|d| d.trim_matches('/').to_owned()).filter(|d| !d.is_empty()),
            tls: fixed!(tls),
            config_error: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Refuses a value that cannot work, with an error naming its key; nothing is silently raised
    /// or lowered. The zeros that mean something are documented with their option instead:
    /// `thumb_cache_mb` (nothing kept in memory), `thumb_workers` (only on request), `max_watches`
    /// (every folder rescanned), `rate_limit` (no limit), and an empty `resize_sizes` (none allowed).
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.index_threads >= 1, "index_threads must be at least 1");
        // Port 0 is any free port, a new one each time.
        let all: Vec<_> =
            std::iter::once(&self.listen).chain(&self.listen_also).filter(|a| a.port() != 0).collect();
        ensure!(all.iter().enumerate().all(|(i, a)| !all[..i].contains(a)), "listen names an address twice");
        // The megabytes are counted in bytes, in a usize (32 bits on a 32-bit Pi).
        let max_cache_mb = usize::MAX >> 20;
        ensure!(self.thumb_cache_mb <= max_cache_mb, "thumb_cache_mb must be at most {max_cache_mb}");
        if let Some(px) = self.resize_sizes.iter().find(|&&px| px == 0 || px > MAX_RESIZE_SIDE) {
            bail!("resize_sizes must each be 1 to {MAX_RESIZE_SIDE} pixels, not {px}");
        }
        ensure!(!self.poll_interval.is_zero(), "poll_interval must be at least 1 second");
        ensure!(self.watch_queue >= 1, "watch_queue must be at least 1");
        let days = self.session_max_age.as_secs() / DAY;
        ensure!((1..=MAX_SESSION_DAYS).contains(&days), "session_days must be 1 to {MAX_SESSION_DAYS}");
        ensure!(self.max_connections >= 1, "max_connections must be at least 1");
        ensure!(!self.header_timeout.is_zero(), "header_timeout must be at least 1 second");
        // hyper panics on a limit smaller than its first read buffer.
        ensure!(
            self.max_header_bytes >= MIN_HEADER_BYTES,
            "max_header_bytes must be at least {MIN_HEADER_BYTES}"
        );
        ensure!(!self.hook_timeout.is_zero(), "hook_timeout must be at least 1 second");
        ensure!(self.hook_concurrency >= 1, "hook_concurrency must be at least 1");
        ensure!(!self.decoder_timeout.is_zero(), "decoder_timeout must be at least 1 second");
        ensure!(
            is_dns_label(&self.hostname),
            "hostname must be one DNS label (letters, digits and inner '-', at most 63), not {:?}",
            self.hostname
        );
        Ok(())
    }
}

/// An RFC 1123 host name label: what `<name>.local` may be.
fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

const DAY: u64 = 86_400;
/// A hundred years: as good as forever, and far from overflowing a timestamp.
const MAX_SESSION_DAYS: u64 = 36_500;
/// The largest side a JPEG can have.
const MAX_RESIZE_SIDE: u32 = u16::MAX as u32;
/// hyper's smallest `max_buf_size`.
const MIN_HEADER_BYTES: usize = 8192;

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

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spis.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
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
    fn a_broken_config_file_falls_back_and_says_why() {
        let (_d, path) = write_config("medai = \"/typo\"\n");
        let (_f, fallback) = write_config("media = \"/safe\"\nlisten = \"0.0.0.0:80\"\n");
        let c = cli(&["--config", path.to_str().unwrap(), "--config-fallback", fallback.to_str().unwrap()]);
        let cfg = Config::try_from_cli(&c, &HashMap::new()).unwrap();
        assert_eq!(cfg.media, PathBuf::from("/safe"));
        assert_eq!(cfg.listen, "0.0.0.0:80".parse().unwrap());
        let why = cfg.config_error.unwrap();
        assert!(why.contains("medai") && why.contains(path.to_str().unwrap()), "{why}");
        // A good file is used as it is, with no error.
        let (_g, good) = write_config("media = \"/good\"\n");
        let c = cli(&["--config", good.to_str().unwrap(), "--config-fallback", fallback.to_str().unwrap()]);
        let cfg = Config::try_from_cli(&c, &HashMap::new()).unwrap();
        assert_eq!((cfg.media, cfg.config_error), (PathBuf::from("/good"), None));
        // Flags still beat the fallback file; a broken fallback is an error naming both.
        let c = cli(&["--config", path.to_str().unwrap(), "--config-fallback", path.to_str().unwrap()]);
        let err = format!("{:#}", Config::try_from_cli(&c, &HashMap::new()).unwrap_err());
        assert!(err.contains("fallback") && err.contains("medai"), "{err}");
    }

    #[test]
    fn hostname_is_one_dns_label() {
        let cfg = |name: &str| Config::try_from_cli(&cli(&[&format!("--hostname={name}")]), &HashMap::new());
        assert_eq!(Config::try_from_cli(&cli(&[]), &HashMap::new()).unwrap().hostname, "spis");
        assert_eq!(cfg("spis-kitchen2").unwrap().hostname, "spis-kitchen2");
        for bad in ["", "-spis", "spis-", "spis.local", "my spis", "sp\u{e9}s", &"a".repeat(64)] {
            assert!(cfg(bad).is_err(), "{bad:?} was accepted");
        }
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
    fn values_that_cannot_work_are_refused_naming_the_key() {
        for (args, key) in [
            (&["--index-threads", "0"][..], "index_threads"),
            (&["--resize-sizes", "320,0"], "resize_sizes"),
            (&["--resize-sizes", "70000"], "resize_sizes"),
            (&["--poll-interval", "0"], "poll_interval"),
            (&["--watch-queue", "0"], "watch_queue"),
            (&["--session-days", "0"], "session_days"),
            (&["--session-days", "18446744073709551615"], "session_days"),
            (&["--max-connections", "0"], "max_connections"),
            (&["--header-timeout", "0"], "header_timeout"),
            (&["--max-header-bytes", "8191"], "max_header_bytes"),
            (&["--hook-timeout", "0"], "hook_timeout"),
            (&["--hook-concurrency", "0"], "hook_concurrency"),
        ] {
            let err = format!("{:#}", Config::try_from_cli(&cli(args), &HashMap::new()).unwrap_err());
            assert!(err.starts_with(key), "{args:?}: {err}");
        }
    }

    #[test]
    fn zeros_with_a_documented_meaning_are_kept() {
        // An empty list can only be written in the file.
        let (_d, path) = write_config("resize_sizes = []\n");
        let c = cli(&[
            "--config",
            path.to_str().unwrap(),
            "--thumb-cache-mb=0",
            "--thumb-workers=0",
            "--max-watches=0",
            "--rate-limit=0",
        ]);
        let cfg = Config::try_from_cli(&c, &HashMap::new()).unwrap();
        assert_eq!((cfg.thumb_cache_mb, cfg.thumb_workers, cfg.max_watches, cfg.rate_limit), (0, 0, 0, 0));
        assert!(cfg.resize_sizes.is_empty());
    }

    #[test]
    fn the_defaults_table_fills_every_fixed_key_and_makes_a_valid_config() {
        // Parsing into Opts type-checks each fixed default and refuses an unknown key.
        let (_, fixed) = (default_opts(), fixed_defaults());
        for (key, d) in DEFAULTS {
            assert_eq!(fixed.contains_key(*key), matches!(d, DefaultValue::Fixed(_)), "{key}");
        }
        // Every `fixed!` in try_from_cli finds its default.
        let cfg = Config::try_from_cli(&cli(&[]), &HashMap::new()).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(cfg.session_max_age, Duration::from_secs(90 * DAY));
        assert_eq!(cfg.resize_sizes, [320, 480, 640, 800, 1024, 1280, 1600, 1920, 2560]);
    }

    /// The options' keys, as clap and serde both name them (the field names).
    fn option_keys() -> Vec<String> {
        Cli::command_with_defaults()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .filter(|id| !["config", "config_fallback", "help", "version"].contains(&id.as_str()))
            .collect()
    }

    #[test]
    fn help_shows_every_default_from_the_table_and_every_env_var() {
        let keys = option_keys();
        let mut table: Vec<String> = DEFAULTS.iter().map(|(k, _)| (*k).to_owned()).collect();
        let (mut sorted_keys, fixed) = (keys.clone(), fixed_defaults());
        sorted_keys.sort();
        table.sort();
        assert_eq!(sorted_keys, table, "DEFAULTS has a row for each option, and only those");

        let mut cmd = Cli::command_with_defaults();
        let help = cmd.render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for (key, d) in DEFAULTS {
            let shown = format!("[default: {}]", d.for_help(key, &fixed));
            let arg = cmd.get_arguments().find(|a| a.get_id() == *key).unwrap();
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env_var(key).as_str()), "{key}");
            assert!(help.contains(&shown), "{key}: {shown} is not in the help:\n{help}");
            assert!(help.contains(&format!("--{} ", key.replace('_', "-"))), "{key}");
        }
        assert!(help.contains(&format!("[default: {DEFAULT_CONFIG_FILE} when it exists]")));
    }

    fn env_var(key: &str) -> String {
        format!("SPIS_{}", key.to_uppercase())
    }

    #[test]
    fn the_sample_config_names_each_key_its_env_var_and_the_tables_default() {
        let sample = include_str!("../spis.example.toml");
        for (key, d) in DEFAULTS {
            // The block of comment lines that ends with `key = ...` (set or commented out).
            let blocks: Vec<&str> = sample
                .split("\n\n")
                .filter(|b| b.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))))
                .collect();
            assert_eq!(blocks.len(), 1, "{key} is set in one block of spis.example.toml");
            let text: Vec<&str> = blocks[0].lines().map(|l| l.trim_start_matches('#').trim()).collect();
            let text = text.join(" ");
            let words: Vec<&str> = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
            assert!(words.contains(&env_var(key).as_str()), "{key}: no {} in {text:?}", env_var(key));
            let value = match d {
                DefaultValue::Fixed(value) | DefaultValue::Described(value) => value,
            };
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(text.contains(&format!("Default: {value}")), "{key}: not `Default: {value}` in {text:?}");
        }
    }

    #[test]
    fn the_readme_shows_the_tables_fixed_defaults() {
        let readme = include_str!("../README.md");
        let fixed = fixed_defaults();
        // `| flag | env | config key | default |` rows; `\|` inside a cell is not a separator.
        let rows = readme.lines().filter(|l| l.starts_with("| `")).map(|l| {
            let cells: Vec<String> =
                l.replace("\\|", "\u{0}").split('|').map(|c| c.trim().to_owned()).collect();
            cells
        });
        let mut checked = 0;
        let mut rowed = std::collections::HashSet::new();
        for cells in rows {
            let (Some(key), Some(default)) = (cells.get(3), cells.get(4)) else { continue };
            let Some(key) = key.split('`').nth(1) else { continue };
            rowed.insert(key.to_owned());
            let Some((_, d)) = DEFAULTS.iter().find(|(k, _)| *k == key) else { continue };
            if let DefaultValue::Fixed(_) = d {
                let shown = format!("`{}`", d.for_help(key, &fixed));
                assert!(default.starts_with(&shown), "README says {default:?} for {key}, not {shown}");
                checked += 1;
            }
        }
        assert!(checked >= 10, "the README's option table was not found ({checked} rows)");
        let missing: Vec<_> = DEFAULTS.iter().map(|(k, _)| *k).filter(|k| !rowed.contains(*k)).collect();
        assert!(missing.is_empty(), "options without a row in the README's table: {missing:?}");
    }
}
