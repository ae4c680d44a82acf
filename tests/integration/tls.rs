//! HTTPS on the same port as HTTP, with the device's own certificate authority or the owner's
//! certificate: a real rustls client, openssl s_client for what rustls cannot offer, and
//! Python's plistlib for the iOS profile.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::util::{Dirs, Server, wait_until};

#[allow(deprecated)] // ring has no post-quantum key exchange; the server uses it too
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA certificate in the state dir (`tls/ca.pem` holds its key too).
fn ca_on_disk(state: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(state.join("tls/ca.pem")).unwrap()
}

fn client(root: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A GET over TLS to the server's port, as `name`: the status line and body, or why it failed.
fn https_get(
    server: &Server,
    config: &Arc<rustls::ClientConfig>,
    name: &str,
    path: &str,
) -> Result<(u16, String), String> {
    https_get_at(server.base.trim_start_matches("http://"), config, name, path)
}

/// [`https_get`] to `addr` (`IP:PORT`).
fn https_get_at(
    addr: &str,
    config: &Arc<rustls::ClientConfig>,
    name: &str,
    path: &str,
) -> Result<(u16, String), String> {
    let text = https_exchange(addr, config, name, "GET", path)?;
    let status =
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// One request over TLS to `addr` as `name`: the whole answer as text, or why it failed.
fn https_exchange(
    addr: &str,
    config: &Arc<rustls::ClientConfig>,
    name: &str,
    method: &str,
    path: &str,
) -> Result<String, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // Closed without close_notify after the whole answer: what hyper does after Connection: close.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// The head of an answer over TLS (status line and headers).
fn https_head(server: &Server, config: &Arc<rustls::ClientConfig>, name: &str, path: &str) -> String {
    https_exchange(server.base.trim_start_matches("http://"), config, name, "HEAD", path).unwrap()
}

fn json(body: &str) -> serde_json::Value {
    // Chunked bodies: the JSON is the one line that starts with '{'.
    let line = body.lines().find(|l| l.starts_with('{')).unwrap_or(body);
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[test]
fn https_and_http_share_the_port_and_the_certificate_names_the_device() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &["--hostname", "kitchen"]);
    let plain = server.json("/api/tls");
    assert_eq!(plain["tls"], "auto");
    assert_eq!(plain["secure"], false);
    let crt = server.get("/spis-ca.crt");
    assert_eq!(crt.status, 200);
    assert_eq!(crt.header("content-type"), Some("application/x-x509-ca-cert"));
    let ca = ca_on_disk(&dirs.state);
    assert_eq!(crt.body, ca.as_ref(), "the download is the CA the server uses");
    assert_eq!(plain["ca"]["fingerprint_sha256"], fingerprint(&crt.body));
    assert!(plain["ca"]["name"].as_str().unwrap().starts_with("kitchen.local"), "{plain}");

    let config = client(&ca);
    for name in ["kitchen.local", "spis.local", "localhost", "127.0.0.1"] {
        let (status, body) =
            https_get(&server, &config, name, "/api/tls").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(status, 200, "{name}");
        assert_eq!(json(&body)["secure"], true, "{name}");
    }
    // Browsers that got through the handshake keep to HTTPS; plain HTTP says nothing of it.
    let head = https_head(&server, &config, "kitchen.local", "/");
    assert!(head.to_ascii_lowercase().contains("strict-transport-security: max-age=2592000"), "{head}");
    assert!(server.get("/").header("strict-transport-security").is_none());
    for wrong in ["example.com", "kitchen"] {
        let err = https_get(&server, &config, wrong, "/api/tls").unwrap_err();
        assert!(err.contains("NotValidForName") || err.contains("not valid for"), "{wrong}: {err}");
    }
    // Plain HTTP still works on the same port after TLS connections.
    assert_eq!(server.get("/api/health").status, 200);
}

#[test]
fn the_local_ca_can_vouch_for_nothing_but_local_names_and_private_addresses() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let pem = std::fs::read_to_string(dirs.state.join("tls/ca.pem")).unwrap();
    // Whoever takes the CA's key from the device can still only sign for the LAN.
    let ca_key = rcgen::KeyPair::from_pem(&pem).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(&ca_on_disk(&dirs.state), ca_key).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new({
            let mut r = rustls::RootCertStore::empty();
            r.add(ca_on_disk(&dirs.state)).unwrap();
            r
        }),
        provider(),
    )
    .build()
    .unwrap();
    let check = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            cert.der(),
            &[],
            &server_name,
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
    };
    for ok in ["other.local", "192.168.7.7", "10.9.9.9"] {
        check(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for refused in ["example.com", "bank.example", "8.8.8.8", "local.evil.com", "spis"] {
        let err = check(refused).expect_err(refused);
        assert!(format!("{err:?}").contains("NameConstraint"), "{refused}: {err:?}");
    }
    drop(server);
}

#[test]
fn old_protocols_and_weak_ciphers_are_refused() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    // The client at security level 0, so that it really offers what it is asked to.
    let s_client = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-servername", "localhost"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl (setup-test-deps installs it)");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        text.lines()
            .find(|l| l.contains("Cipher is"))
            .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
            .filter(|c| c != "(NONE)")
    };
    assert_eq!(s_client(&["-tls1_3"]).as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(
        s_client(&["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"]).as_deref(),
        Some("ECDHE-ECDSA-CHACHA20-POLY1305")
    );
    for weak in [
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"][..],
        &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
        &["-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0"],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:@SECLEVEL=0"],
    ] {
        assert_eq!(s_client(weak), None, "{weak:?} was accepted");
    }
}

#[test]
fn with_tls_off_there_is_plain_http_only() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &["--tls", "off"]);
    let j = server.json("/api/tls");
    assert_eq!((j["tls"].as_str(), j["ca"].is_null()), (Some("off"), true), "{j}");
    server.get("/spis-ca.crt").assert_error(404, "no_local_ca");
    server.get("/spis-ca.mobileconfig").assert_error(404, "no_local_ca");
    assert!(!dirs.state.join("tls").exists(), "no CA is made");
    // A TLS ClientHello is not HTTP: the server answers 400, never a handshake.
    let fake_root = CertificateDer::from(
        rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap().cert.der().to_vec(),
    );
    assert!(https_get(&server, &client(&fake_root), "localhost", "/").is_err());
}

#[test]
fn a_certificate_of_ones_own_is_served_and_read_again_on_sighup() {
    let dirs = Dirs::new();
    let (cert, key) = (dirs.root().join("cert.pem"), dirs.root().join("key.pem"));
    let make = || {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        c.cert.der().clone()
    };
    let first = make();
    let arg = format!("cert={},key={}", cert.display(), key.display());
    let server = Server::start(&dirs.media, &dirs.state, &["--tls", &arg]);
    let (status, body) = https_get(&server, &client(&first), "localhost", "/api/tls").unwrap();
    assert_eq!(status, 200);
    let j = json(&body);
    assert_eq!(
        (j["tls"].as_str(), j["ca"].is_null(), j["secure"].as_bool()),
        (Some("own"), true, Some(true))
    );
    server.get("/spis-ca.crt").assert_error(404, "no_local_ca");
    assert!(!dirs.state.join("tls").exists(), "no local CA beside one's own certificate");

    // certbot renews, its deploy hook reloads spis.
    let second = make();
    signal_server(&server);
    wait_until("the new certificate is served", || {
        https_get(&server, &client(&second), "localhost", "/api/health").is_ok()
    });
    assert!(https_get(&server, &client(&first), "localhost", "/api/health").is_err(), "the old one is gone");

    // A broken renewal keeps the certificate in use.
    std::fs::write(&key, "not a key").unwrap();
    signal_server(&server);
    wait_until("the failure is logged", || server.log().contains("could not be renewed or read"));
    assert!(https_get(&server, &client(&second), "localhost", "/api/health").is_ok());
}

fn signal_server(server: &Server) {
    crate::util::signal_pid(server.pid(), libc::SIGHUP);
}

#[test]
fn replicas_sharing_a_state_dir_trust_one_ca() {
    let dirs = Dirs::new();
    let a = Server::start(&dirs.media, &dirs.state, &[]);
    let b = Server::start(&dirs.media, &dirs.state, &[]);
    assert_eq!(a.json("/api/tls")["ca"], b.json("/api/tls")["ca"]);
    let config = client(&ca_on_disk(&dirs.state));
    assert!(https_get(&a, &config, "localhost", "/api/health").is_ok());
    assert!(https_get(&b, &config, "localhost", "/api/health").is_ok());
}

#[test]
fn the_ios_profile_is_a_plist_that_carries_the_ca() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let r = server.get("/spis-ca.mobileconfig");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-apple-aspen-config"));
    let file = dirs.root().join("spis.mobileconfig");
    std::fs::write(&file, &r.body).unwrap();
    let check = r#"
import plistlib, sys
p = plistlib.load(open(sys.argv[1], 'rb'))
assert p['PayloadType'] == 'Configuration', p
(ca,) = p['PayloadContent']
assert ca['PayloadType'] == 'com.apple.security.root', ca
sys.stdout.buffer.write(ca['PayloadContent'])
"#;
    let out = std::process::Command::new("python3").args(["-c", check]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, ca_on_disk(&dirs.state).as_ref());
    // The same CA is the same profile (installing it again replaces, not duplicates).
    assert_eq!(server.get("/spis-ca.mobileconfig").body, r.body);
}

#[test]
fn a_client_that_starts_a_handshake_and_goes_quiet_is_dropped() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &["--header-timeout", "1"]);
    let mut tcp = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&[22, 3, 1]).unwrap();
    let mut buf = [0u8; 16];
    // Ok(0): the server closed it (its 1 s header timeout); the client's 10 s would be an error.
    assert_eq!(tcp.read(&mut buf).map_err(|e| e.kind()), Ok(0));
}

#[test]
fn every_listen_address_answers_both_protocols() {
    let dirs = Dirs::new();
    // The appliance's way: 80 and 443 (here two free ports), one server.
    let server = Server::start(&dirs.media, &dirs.state, &["--listen", "127.0.0.1:0,127.0.0.1:0"]);
    let mut second = None;
    wait_until("the second address is logged", || {
        // A log to a file is plain text (no colours).
        second = server
            .log()
            .lines()
            .find(|l| l.contains("listening there too"))
            .and_then(|l| l.split("addr=").nth(1))
            .map(|a| a.split_whitespace().next().unwrap_or("").trim_matches('"').to_owned());
        second.is_some()
    });
    let second = second.unwrap();
    assert_ne!(format!("http://{second}"), server.base);
    let health = crate::util::agent().get(format!("http://{second}/api/health")).call().unwrap();
    assert_eq!(crate::util::read(health).status, 200);
    let (status, body) =
        https_get_at(&second, &client(&ca_on_disk(&dirs.state)), "localhost", "/api/tls").unwrap();
    assert_eq!((status, json(&body)["secure"].as_bool()), (200, Some(true)));
}

#[test]
fn an_address_the_machine_gets_later_is_on_the_certificate_at_once() {
    // The server alone in a new network namespace (as root: CI is), listening on every address;
    // then the namespace gets an address, as when a DHCP lease comes after spis started.
    let dirs = Dirs::new();
    let server = Server::start_under(
        &["unshare", "--net", "--"],
        &dirs.media,
        &dirs.state,
        &["--listen", "0.0.0.0:0"],
        &[],
    );
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let netns = format!("/proc/{}/ns/net", server.pid());
    let ip = |args: &[&str]| {
        let ok = std::process::Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .arg("ip")
            .args(args)
            .status()
            .expect("nsenter and ip (util-linux, iproute2)")
            .success();
        assert!(ok, "ip {args:?}");
    };
    ip(&["link", "set", "lo", "up"]);
    let names = || {
        let pem = std::fs::read(dirs.state.join("tls/server.pem")).unwrap_or_default();
        let Ok(der) = CertificateDer::from_pem_slice(&pem) else { return String::new() };
        let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
        format!("{:?}", x509.subject_alternative_name().ok().flatten().map(|s| &s.value.general_names))
    };
    assert!(!names().contains("10.77.0.5"), "{}", names());
    ip(&["addr", "add", "10.77.0.5/24", "dev", "lo"]);
    // Well before the 10-minute check: the kernel said so (rtnetlink).
    wait_until("the new address is on the certificate", || names().contains("[10, 77, 0, 5]"));

    // A client in that namespace that trusts the CA reaches the server by that address.
    let config = client(&ca_on_disk(&dirs.state));
    let answer = std::thread::spawn(move || {
        let ns = std::fs::File::open(&netns).unwrap();
        // SAFETY: setns on this thread's own network namespace, with an open namespace file.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        https_get_at(&format!("10.77.0.5:{port}"), &config, "10.77.0.5", "/api/health")
    })
    .join()
    .unwrap();
    assert_eq!(answer.map(|(status, _)| status), Ok(200));
    assert!(server.log().contains("issued a TLS certificate"), "{}", server.log());
}
