//! `spis template nginx|caddy|systemd|docker-compose`: deployment files rendered with `tera` from
//! the configuration in effect (listen address, media folder, state dir, trusted proxies), so what
//! is deployed matches what spis runs with.

use std::net::SocketAddr;

use anyhow::Context as _;

use crate::config::{Config, TemplateArgs, TemplateKind};

const NGINX: &str = include_str!("template/nginx.conf.tera");
const CADDY: &str = include_str!("template/Caddyfile.tera");
const COMPOSE: &str = include_str!("template/docker-compose.yml.tera");
/// The hardened unit of the appliance, the one source of truth for every systemd install.
const UNIT: &str = include_str!("../rootfs/usr/lib/systemd/system/spis.service");

/// Renders one deployment file.
pub(crate) fn render(
    config: &Config,
    config_file: Option<&std::path::Path>,
    args: &TemplateArgs,
) -> anyhow::Result<String> {
    let upstreams: Vec<SocketAddr> = if args.upstream.is_empty() {
        vec![reachable(config.listen)]
    } else {
        args.upstream.iter().map(|&a| reachable(a)).collect()
    };
    let tls = !args.no_tls;
    let proxy_listen = args.proxy_listen.clone().unwrap_or_else(|| if tls { "443" } else { "80" }.to_owned());
    // Where the proxy connects from: this machine when spis is on it, else the proxy's own address.
    let proxy_address =
        if upstreams.iter().all(|u| u.ip().is_loopback()) { "127.0.0.1" } else { "THE.PROXY.ADDRESS" };
    let mut ctx = tera::Context::new();
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    ctx.insert("server_name", &args.server_name);
    ctx.insert("tls", &tls);
    ctx.insert("proxy_listen", &proxy_listen);
    ctx.insert("proxy_address", proxy_address);
    ctx.insert("upstreams", &upstreams.iter().map(SocketAddr::to_string).collect::<Vec<_>>());
    let live = format!("/etc/letsencrypt/live/{}", args.server_name);
    ctx.insert("tls_cert", &args.tls_cert.clone().unwrap_or_else(|| format!("{live}/fullchain.pem")));
    ctx.insert("tls_key", &args.tls_key.clone().unwrap_or_else(|| format!("{live}/privkey.pem")));
    let site = if tls { args.server_name.clone() } else { format!("http://{proxy_listen}") };
    ctx.insert("site", &site);
    ctx.insert("port", &config.listen.port());
    ctx.insert("media", &config.media.display().to_string());
    let trusted: Vec<String> = config.trusted_proxies.iter().map(ToString::to_string).collect();
    ctx.insert("trusted_proxies", &trusted.join(","));
    let template = match args.kind {
        TemplateKind::Nginx => NGINX,
        TemplateKind::Caddy => CADDY,
        TemplateKind::DockerCompose => COMPOSE,
        TemplateKind::Systemd => return Ok(systemd_unit(config, config_file)),
    };
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.render_str(template, &ctx).context("rendering the template (a bug)")
}

/// A wildcard listen address is reached on loopback.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    addr
}

/// The appliance's unit, pointed at this binary and config and allowed to write where this
/// configuration keeps its media and state.
fn systemd_unit(config: &Config, config_file: Option<&std::path::Path>) -> String {
    let exe =
        std::env::current_exe().map_or_else(|_| "/usr/local/bin/spis".into(), |p| p.display().to_string());
    let mut exec = format!("ExecStart={exe} serve");
    if let Some(f) = config_file {
        exec.push_str(&format!(" --config {}", f.display()));
    }
    let mut out = format!(
        "# spis {} as a systemd service, rendered by `spis template systemd`.\n\
         # Install: save as /etc/systemd/system/spis.service, create the user (`systemd-sysusers` with\n\
         # the sysusers.d/spis.conf of the repository, or `useradd --system spis`), give it read access\n\
         # to {}, then `systemctl daemon-reload && systemctl enable --now spis`.\n",
        env!("CARGO_PKG_VERSION"),
        config.media.display()
    );
    for line in UNIT.lines() {
        if line.starts_with("ExecStart=") {
            out.push_str(&exec);
        } else if line.starts_with("ReadWritePaths=") {
            out.push_str(&format!("{line} -{} -{}", config.media.display(), config.state_dir.display()));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        use clap::Parser as _;
        let mut argv = vec!["spis", "--media", "/srv/photos", "--state-dir", "/var/lib/spis"];
        argv.extend_from_slice(args);
        let cli = crate::config::Cli::parse_from(argv);
        Config::try_from_cli(&cli, &Default::default()).unwrap()
    }

    fn args(kind: TemplateKind, extra: &[&str]) -> TemplateArgs {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            t: TemplateArgs,
        }
        let mut argv = vec!["t", kind.name()];
        argv.extend_from_slice(extra);
        T::parse_from(argv).t
    }

    #[test]
    fn nginx_with_tls_redirects_and_lists_every_replica() {
        let c = config(&["--listen", "0.0.0.0:8080"]);
        let a = args(
            TemplateKind::Nginx,
            &["--server-name", "photos.example.org", "--upstream", "10.0.0.2:8080,10.0.0.3:8080"],
        );
        let out = render(&c, None, &a).unwrap();
        assert!(
            out.contains("server 10.0.0.2:8080 max_fails") && out.contains("server 10.0.0.3:8080 max_fails")
        );
        assert!(out.contains("listen 443 ssl http2;") && out.contains("return 301 https://"));
        assert!(out.contains("/etc/letsencrypt/live/photos.example.org/fullchain.pem"));
        assert!(out.contains("THE.PROXY.ADDRESS"), "remote replicas: the proxy's own address");
    }

    #[test]
    fn plain_http_nginx_proxies_the_configured_listen_address() {
        let c = config(&["--listen", "0.0.0.0:9000"]);
        let out =
            render(&c, None, &args(TemplateKind::Nginx, &["--no-tls", "--proxy-listen", "127.0.0.1:81"]))
                .unwrap();
        assert!(out.contains("server 127.0.0.1:9000 max_fails"), "{out}");
        assert!(out.contains("listen 127.0.0.1:81;") && !out.contains("ssl"));
        assert!(out.contains(r#"trusted_proxies = ["127.0.0.1"]"#));
    }

    #[test]
    fn caddy_compose_and_systemd_carry_the_configuration() {
        let c = config(&["--listen", "127.0.0.1:8080", "--trusted-proxies", "127.0.0.1"]);
        let caddy =
            render(&c, None, &args(TemplateKind::Caddy, &["--server-name", "p.example.org"])).unwrap();
        assert!(
            caddy.contains("p.example.org {") && caddy.contains("reverse_proxy 127.0.0.1:8080 {"),
            "{caddy}"
        );
        let compose = render(&c, None, &args(TemplateKind::DockerCompose, &[])).unwrap();
        assert!(
            compose.contains(r#""/srv/photos:/media:ro""#) && compose.contains(r#""8080:8080""#),
            "{compose}"
        );
        assert!(compose.contains(r#"SPIS_TRUSTED_PROXIES: "127.0.0.1""#));
        let unit =
            render(&c, Some(std::path::Path::new("/etc/spis/spis.toml")), &args(TemplateKind::Systemd, &[]))
                .unwrap();
        assert!(unit.contains(" serve --config /etc/spis/spis.toml\n"), "{unit}");
        assert!(unit.contains("ReadWritePaths=-/data -/media -/mnt -/srv -/srv/photos -/var/lib/spis\n"));
        assert!(unit.contains("Type=notify") && unit.contains("ProtectSystem=strict"));
    }
}
