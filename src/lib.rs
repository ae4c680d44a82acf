//! spis, the Simple Private Image Server: a private photo and video gallery in one binary.
//!
//! Data flows one way: [`http`] parses requests and writes JSON, [`library`] holds the in-memory
//! index and the domain rules, [`thumbs`] makes the pictures, [`fs`] is the only module that
//! touches the disk. [`gallery`] wires the library and the thumbnails together; [`run`] wires the
//! rest for `main`.

mod auth;
mod config;
mod fs;
mod gallery;
mod hooks;
mod http;
mod imgurl;
mod library;
mod logging;
mod media;
pub mod memory;
mod metrics;
mod shares;
mod systemd;
mod template;
mod thumbs;
mod tls;
mod upload;
mod zip;

#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod memcopy;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;

use config::{Cli, Command, Config, TokenAction};

/// The `spis` command: parses the command line, runs what it asks, and prints an error as one
/// clear sentence with its causes, for the person who started us. With the fuzz targets in
/// [`fuzzing`], the crate's only public item.
pub fn main() -> std::process::ExitCode {
    match run(Cli::parse_with_defaults()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spis: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the command the user asked for.
fn run(cli: Cli) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::try_from_cli(&cli, &env)?;
    logging::init(&config.log, env.contains_key("JOURNAL_STREAM"));
    if let Some(why) = &config.config_error {
        // The reason goes into the message itself: `journalctl -u spis` shows messages, not fields.
        tracing::error!("the config file is wrong, so spis started with the fallback config: {why}");
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, systemd::Notifier::from_env(&env)),
        Command::Healthcheck => healthcheck(&config),
        Command::HashPassword => hash_password(),
        Command::Hostname => {
            println!("{}", config.hostname);
            Ok(())
        }
        Command::Token { action } => token(&config, action),
        Command::Url { action } => url(&config, action),
        Command::Template(args) => {
            let file = cli.config.clone().or_else(|| config::default_config_file().map(Into::into));
            print!("{}", template::render(&config, file.as_deref(), &args)?);
            Ok(())
        }
    }
}

fn serve(config: Config, systemd: systemd::Notifier) -> anyhow::Result<()> {
    limit_malloc_arenas();
    hooks::check(&config)?;
    let gallery = gallery::Gallery::try_open(&config)?;
    let library = std::sync::Arc::clone(&gallery.lib);
    let auth = std::sync::Arc::new(auth::Auth::try_new(
        &auth::AuthOpts {
            disabled: config.no_auth,
            password_hash: config.password_hash.clone(),
            session_max_age: config.session_max_age,
        },
        library.fs.state_dir(),
    )?);
    if config.no_auth && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "--no-auth on an address other machines can reach: anyone on the network sees every photo");
    } else if auth.needs_setup() && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "no password yet, on an address other machines can reach: the first visitor chooses it; open the gallery now, or set password_hash");
    } else if auth.needs_setup() {
        tracing::info!("no password yet: the first visit to the web app chooses one");
    }
    let tls = tls::Tls::start(&config.tls, &config.state_dir, &config.hostname, config.listen.ip())
        .context("setting up HTTPS (tls; off turns it off)")?
        .map(std::sync::Arc::new);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("spis-http")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut listeners = Vec::new();
        for at in std::iter::once(config.listen).chain(config.listen_also.iter().copied()) {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (choose another with --listen)"))?;
            listeners.push(listener);
        }
        let addr = listeners[0].local_addr()?;
        for more in &listeners[1..] {
            tracing::info!(addr = %more.local_addr()?, "listening there too");
        }
        // Tests and scripts read this line to find the port when listening on port 0.
        println!("spis listening on http://{addr}");
        let _ = std::io::stdout().flush();
        tracing::info!(%addr, media = %library.fs.root().display(), state_dir = %library.fs.state_dir().display(), "listening");
        let hooks = hooks::start(&library, &config, http::event_json)?;
        gallery.start(library::LiveOpts {
            mode: config.watch,
            poll_interval: config.poll_interval,
            queue: config.watch_queue,
            max_watches: config.max_watches,
        });
        tokio::spawn(reload_on_sighup(std::sync::Arc::clone(&library), tls.clone()));
        if let Some(tls) = &tls {
            tracing::info!(%addr, "HTTPS on the same port");
            tokio::spawn(refresh_tls(std::sync::Arc::clone(tls)));
        }
        let systemd = std::sync::Arc::new(systemd);
        systemd.send(&format!("READY=1\nSTATUS=serving {} on http://{addr}", library.fs.root().display()));
        if let Some(every) = systemd.watchdog_every {
            // Petted from the runtime that serves requests: if it stalls, systemd restarts us.
            let systemd = std::sync::Arc::clone(&systemd);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    systemd.send("WATCHDOG=1");
                }
            });
        }
        let stopping = {
            let systemd = std::sync::Arc::clone(&systemd);
            async move {
                shutdown_signal().await;
                systemd.send("STOPPING=1\nSTATUS=finishing requests in flight");
            }
        };
        let opts = http::HttpOpts {
            web_dir: config.web_dir.clone(),
            auth,
            rate_limit: config.rate_limit,
            trusted_proxies: config.trusted_proxies.clone(),
            max_connections: config.max_connections,
            header_timeout: config.header_timeout,
            max_header_bytes: config.max_header_bytes,
            config_error: config.config_error.clone(),
            tls,
            url_key: imgurl::load_key(&config.state_dir)
                .context("reading or making url.key (the key that signs image URLs) in the state dir")?,
            public_dir: config.public_dir.clone(),
            shares: std::sync::Arc::new(
                shares::Shares::try_new(&config.state_dir)
                    .context("reading or making share.key (the key that signs share links) in the state dir")?,
            ),
        };
        http::serve(&gallery, hooks, opts, listeners, stopping).await?;
        library.fs.leave_replicas();
        Ok::<_, anyhow::Error>(())
    })?;
    tracing::info!("stopped");
    Ok(())
}

/// glibc gives each thread that allocates concurrently its own arena (up to 8 per core), and the
/// decoders' short-lived threads leave memory stranded in them: a 1000-photo thumbnail run peaked
/// at 195 MiB. Two arenas are plenty for a server whose hot path barely allocates. musl's
/// allocator (the static builds) has no arenas.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before the other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

/// Renews the certificate, or reads the user's again, when it is due or has changed; at once
/// when the machine gets a new address and the certificate names its addresses.
async fn refresh_tls(tls: std::sync::Arc<tls::Tls>) {
    let mut tick = tokio::time::interval(tls::REFRESH_EVERY);
    tick.tick().await;
    let mut watch = if tls.follows_addresses() {
        tls::AddressWatch::new()
            .inspect_err(|e| tracing::warn!(error = %e, "not told of new addresses (rtnetlink); the certificate gets them within 10 minutes"))
            .ok()
    } else {
        None
    };
    loop {
        let added = async {
            match &watch {
                Some(w) => w.added().await,
                None => std::future::pending().await,
            }
        };
        let heard = tokio::select! {
            _ = tick.tick() => None,
            r = added => Some(r),
        };
        match heard {
            None => {}
            // A lease brings its addresses in a burst: one certificate for all of them.
            Some(Ok(())) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            // The socket is not read again (a failing one would fail every time): the tick goes on.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "no longer told of new addresses (rtnetlink); the certificate gets them within 10 minutes");
                watch = None;
                continue;
            }
        }
        refresh_tls_once(std::sync::Arc::clone(&tls)).await;
    }
}

async fn refresh_tls_once(tls: std::sync::Arc<tls::Tls>) {
    match tokio::task::spawn_blocking(move || tls.refresh()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(
            error = %format!("{e:#}"),
            "the TLS certificate could not be renewed or read; the one in use stays"
        ),
        Err(e) => tracing::warn!(error = %e, "renewing the TLS certificate failed"),
    }
}

/// On SIGHUP (`systemctl reload spis`, e.g. from certbot's deploy hook): watch and list the whole
/// media folder again, and read the TLS certificate again if it changed.
async fn reload_on_sighup(library: std::sync::Arc<library::Library>, tls: Option<std::sync::Arc<tls::Tls>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: watching and rescanning the whole media folder");
        library.request_rescan();
        if let Some(tls) = &tls {
            refresh_tls_once(std::sync::Arc::clone(tls)).await;
        }
    }
}

/// `spis hash-password`: one line from stdin (no echo needed: pipe it in), its hash to stdout.
fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(password.chars().count() >= 8, "the password must be at least 8 characters");
    println!("{}", auth::hash_password(password));
    Ok(())
}

/// `spis token create|list|revoke`.
fn token(config: &Config, action: TokenAction) -> anyhow::Result<()> {
    let dir = &config.state_dir;
    match action {
        TokenAction::Create { name, upload_only, dir: upload_dir } => {
            let scope = match upload_dir.filter(|_| upload_only) {
                Some(d) => auth::TokenScope::UploadOnly(upload::clean_dir(&d)?),
                None => auth::TokenScope::Full,
            };
            println!("{}", auth::create_token(dir, &name, scope)?)
        }
        TokenAction::List => auth::list_tokens(dir)?.iter().for_each(|n| println!("{n}")),
        TokenAction::Revoke { name } => auth::revoke_token(dir, &name)?,
    }
    Ok(())
}

/// `spis url sign|srcset`: image URLs for a static site.
fn url(config: &Config, action: config::UrlAction) -> anyhow::Result<()> {
    use thumbs::render::Fit;
    let (path, opts, widths) = match &action {
        config::UrlAction::Sign { path, width, opts } => (path, opts, vec![*width]),
        config::UrlAction::Srcset { path, opts } => (path, opts, config.resize_sizes.clone()),
    };
    let sizes = &config.resize_sizes;
    let listed = |px: u32| {
        anyhow::ensure!(sizes.contains(&px), "{px} px is not one of resize_sizes ({sizes:?})");
        Ok(px)
    };
    let height = opts.height.map(listed).transpose()?;
    let rel = path.trim_matches('/');
    anyhow::ensure!(
        !rel.is_empty() && rel.split('/').all(|p| !p.is_empty() && !p.starts_with('.')),
        "{path:?} is not a photo's path below the media folder (as DIR/NAME)"
    );
    let public = config.public_dir.as_deref().is_some_and(|top| {
        fs::watch::is_within(rel.rsplit_once('/').map_or("", |(d, _)| d).as_bytes(), top.as_bytes())
    });
    let key =
        if public && opts.expires_days.is_none() { None } else { Some(imgurl::load_key(&config.state_dir)?) };
    let expires = opts.expires_days.map(|d| {
        jiff::Timestamp::now().as_second() + i64::try_from(d.saturating_mul(86_400)).unwrap_or(i64::MAX / 2)
    });
    let mut out = Vec::new();
    for w in widths {
        let spec = imgurl::UrlSpec {
            width: listed(w)?,
            height,
            expires,
            fit: if opts.cover { Fit::Cover } else { Fit::Contain },
            wanted: opts.format,
        };
        let url =
            format!("{}{}", opts.base.trim_end_matches('/'), imgurl::signed_path(key.as_ref(), rel, &spec));
        out.push(if matches!(action, config::UrlAction::Srcset { .. }) {
            format!("{url} {w}w")
        } else {
            url
        });
    }
    println!("{}", out.join(",\n"));
    Ok(())
}

/// `spis healthcheck`: GET /api/health on the configured address, exit 0 on 200.
fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .with_context(|| format!("nothing answers on {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(stream, "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).context("no HTTP answer")?;
    anyhow::ensure!(head.starts_with(b"HTTP/1.1 200"), "unhealthy: {}", String::from_utf8_lossy(&head));
    Ok(())
}
