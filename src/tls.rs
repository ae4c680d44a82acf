//! HTTPS, on the same port as plain HTTP: a connection whose first byte is 22 (a TLS handshake
//! record) is TLS, anything else is HTTP. rustls with ring as its crypto provider.
//!
//! `tls = "auto"`: the device's own certificate authority, made on its first start in the state
//! dir (`tls/ca.pem`: the CA's key and certificate in one file, created atomically, so replicas
//! sharing the state dir all use the first one written), and a certificate it issues for the
//! device's names (`tls/server.pem`): `<hostname>.local`, `spis.local`, `localhost`, and the
//! device's loopback and private addresses. The CA is name-constrained to
//! such names and addresses, so a phone that trusts it trusts it for nothing else, whoever gets
//! the key. The certificate is issued again 30 days before it expires and whenever the device
//! has an address the certificate lacks (a new DHCP lease: the kernel says so at once, through
//! rtnetlink, [`AddressWatch`]); a replica that finds a new one on disk loads it.
//!
//! `tls = "cert=FILE,key=FILE"`: a certificate of the user's own (certbot, `tailscale cert`),
//! PEM, read again when either file changes.
//!
//! Why ring and not a pure-Rust provider: graviola needs the ARMv8 crypto extensions, which the
//! CM4's BCM2711 lacks, and rustls-rustcrypto is an alpha that says not to use it in production.
//! ring is compiled by the same C compiler as the allocator (scripts/check-pure-rust.sh).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{IpNet, TlsMode};
use crate::fs::private;

/// How long a certificate the local CA issues is valid: within Mozilla's guideline (less than 366
/// days, checked by tests/api/sslyze.sh) and what Apple accepts (398).
const SERVER_DAYS: u64 = 365;
/// Issued again when less than this is left.
const RENEW_BEFORE_DAYS: u64 = 30;
/// How long the local CA is valid.
const CA_DAYS: u64 = 3650;
/// At most this many names on a certificate (a replica adds its own to what is there).
const MAX_NAMES: usize = 32;
const DAY: u64 = 86_400;

/// The first byte of every TLS connection: a handshake record.
pub(crate) const HANDSHAKE_RECORD: u8 = 22;

/// What changes when a file is rewritten ([`private::version`]).
type FileVersion = Option<(Option<SystemTime>, u64)>;

/// The server side of TLS: the certificate in use, and where it comes from.
#[derive(Debug)]
pub(crate) struct Tls {
    config: Arc<rustls::ServerConfig>,
    current: Arc<Current>,
    source: Source,
    /// The version of the files the certificate was read from.
    version: Mutex<Vec<FileVersion>>,
}

#[derive(Debug)]
enum Source {
    Local { dir: PathBuf, hostname: String, listen: IpAddr, ca_der: Vec<u8> },
    Files { cert: PathBuf, key: PathBuf },
}

/// The certificate handed to every handshake, swapped when it is renewed or reloaded.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }
}

impl Tls {
    /// TLS as `mode` says, or `None` for `off`.
    pub(crate) fn start(
        mode: &TlsMode,
        state_dir: &Path,
        hostname: &str,
        listen: IpAddr,
    ) -> anyhow::Result<Option<Tls>> {
        // Deprecated in rustls 0.23.48 for its lack of a post-quantum key exchange (X25519MLKEM768,
        // which only the aws-lc-rs provider has): see the module comment.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let source = match mode {
            TlsMode::Off => return Ok(None),
            TlsMode::Files { cert, key } => Source::Files { cert: cert.clone(), key: key.clone() },
            TlsMode::Auto => {
                let dir = state_dir.join("tls");
                let ca = load_or_make_ca(&dir, hostname)?;
                Source::Local { dir, hostname: hostname.to_owned(), listen, ca_der: ca.cert_der }
            }
        };
        let (key, files) = source.load(&provider, None)?.expect("loaded when nothing is known");
        let current = Arc::new(Current(RwLock::new(Arc::new(key))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("TLS 1.2 and 1.3 with ring")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Tls { config: Arc::new(config), current, source, version: Mutex::new(files) }))
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config))
    }

    /// Whether the certificate names the machine's addresses, so a new one calls for
    /// [`Tls::refresh`] ([`AddressWatch`]).
    pub(crate) fn follows_addresses(&self) -> bool {
        matches!(&self.source, Source::Local { listen, .. } if listen.is_unspecified())
    }

    /// The local CA's certificate (DER), for phones to trust; `None` with a certificate of the
    /// user's own.
    pub(crate) fn ca_der(&self) -> Option<&[u8]> {
        match &self.source {
            Source::Local { ca_der, .. } => Some(ca_der),
            Source::Files { .. } => None,
        }
    }

    /// Renews or reloads the certificate when needed: run every few minutes, on SIGHUP and when
    /// an address is added (blocking: files, and a signature when a certificate is issued).
    pub(crate) fn refresh(&self) -> anyhow::Result<()> {
        let provider = self.config.crypto_provider();
        let mut version = self.version.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((key, files)) = self.source.load(provider, Some(&version))? else { return Ok(()) };
        *self.current.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        *version = files;
        tracing::info!("TLS certificate loaded anew");
        Ok(())
    }
}

impl Source {
    fn files(&self) -> Vec<PathBuf> {
        match self {
            Source::Local { dir, .. } => vec![dir.join("server.pem")],
            Source::Files { cert, key } => vec![cert.clone(), key.clone()],
        }
    }

    /// The certificate to serve now (issued first if it is missing, expiring or lacks a name),
    /// and the versions of the files it came from; `None` when it is the one read at `known`.
    fn load(
        &self,
        provider: &Arc<rustls::crypto::CryptoProvider>,
        known: Option<&[FileVersion]>,
    ) -> anyhow::Result<Option<(CertifiedKey, Vec<FileVersion>)>> {
        // Taken before reading: a file rewritten meanwhile is read again next time.
        let files: Vec<_> = self.files().iter().map(|p| private::version(p)).collect();
        let unchanged = known == Some(&files[..]);
        let (chain, key) = match self {
            Source::Files { cert, key } => {
                if unchanged {
                    return Ok(None);
                }
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
                if chain.is_empty() {
                    bail!("{} has no certificate (PEM, BEGIN CERTIFICATE)", cert.display());
                }
                let key = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("reading the TLS key {}", key.display()))?;
                (chain, key)
            }
            Source::Local { dir, hostname, listen, .. } => {
                let server = dir.join("server.pem");
                let wanted = names(hostname, *listen);
                let pem = match read_server(&server)? {
                    // A replica may have issued one that covers this device's names too.
                    Some(s) if s.covers(&wanted) && !s.expiring() => {
                        if unchanged {
                            return Ok(None);
                        }
                        s.pem
                    }
                    other => {
                        // This device's names first, then those another replica put on it (so a
                        // full certificate drops a replica's old address, never one of ours).
                        let mut all = wanted;
                        for n in other.map(|s| s.names).unwrap_or_default() {
                            if !all.contains(&n) {
                                all.push(n);
                            }
                        }
                        all.truncate(MAX_NAMES);
                        let ca = load_or_make_ca(dir, hostname)?;
                        let pem = issue(&ca, &all, SERVER_DAYS)?;
                        private::write(&server, pem.as_bytes())
                            .with_context(|| format!("writing {}", server.display()))?;
                        tracing::info!(names = %all.join(", "), "issued a TLS certificate with the local CA");
                        pem
                    }
                };
                let chain = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
                let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())?;
                (chain, key)
            }
        };
        let files = self.files().iter().map(|p| private::version(p)).collect();
        let key = CertifiedKey::from_der(chain, key, provider)
            .context("the TLS key does not match its certificate")?;
        Ok(Some((key, files)))
    }
}

/// The local CA: its certificate, and the PEM of its key and certificate.
struct Ca {
    cert_der: Vec<u8>,
    pem: String,
}

impl Ca {
    /// The certificate's part of the PEM (written after the key).
    fn cert_pem(&self) -> &str {
        self.pem.find("-----BEGIN CERTIFICATE-----").map_or("", |at| &self.pem[at..])
    }
}

fn load_or_make_ca(dir: &Path, hostname: &str) -> anyhow::Result<Ca> {
    let path = dir.join("ca.pem");
    if let Some(bytes) =
        private::read_optional(&path).with_context(|| format!("reading {}", path.display()))?
    {
        let pem = String::from_utf8(bytes).with_context(|| format!("{} is damaged", path.display()))?;
        let cert = CertificateDer::from_pem_slice(pem.as_bytes())
            .with_context(|| format!("{} has no certificate: delete it to make a new CA", path.display()))?;
        return Ok(Ca { cert_der: cert.to_vec(), pem });
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::default();
    let short = data_encoding::HEXUPPER.encode(&crate::auth::random::<3>());
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("{hostname}.local (spis CA {short})"));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "spis");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params.name_constraints =
        Some(rcgen::NameConstraints { permitted_subtrees: permitted(), excluded_subtrees: Vec::new() });
    (params.not_before, params.not_after) = validity(CA_DAYS)?;
    let cert = params.self_signed(&key)?;
    let pem = format!("{}{}", key.serialize_pem(), cert.pem());
    // Replicas starting together: the first CA written is everyone's.
    if private::create_new(&path, pem.as_bytes()).with_context(|| format!("writing {}", path.display()))? {
        tracing::info!(ca = %path.display(), "made the local certificate authority for HTTPS");
        return Ok(Ca { cert_der: cert.der().to_vec(), pem });
    }
    load_or_make_ca(dir, hostname)
}

/// What the CA may vouch for: `.local` names, `localhost`, and loopback, private, shared
/// (Tailscale's 100.64/10) and link-local addresses. Not the device's bare name: it may be
/// renamed, and a certificate with one name outside the constraints is refused whole.
fn permitted() -> Vec<rcgen::GeneralSubtree> {
    use rcgen::{CidrSubnet, GeneralSubtree};
    let mut out: Vec<_> =
        ["local", "localhost"].into_iter().map(|n| GeneralSubtree::DnsName(n.to_owned())).collect();
    for net in PRIVATE_NETS {
        out.push(GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(net.addr(), net.bits())));
    }
    out
}

const PRIVATE_NETS: &[IpNet] = &[
    IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
    IpNet::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
    IpNet::new(IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 12),
    IpNet::new(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16),
    IpNet::new(IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10),
    IpNet::new(IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
    IpNet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    IpNet::new(IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
];

fn is_private(ip: IpAddr) -> bool {
    PRIVATE_NETS.iter().any(|net| net.contains(ip))
}

/// The names a certificate for this device carries: its `.local` name, `spis.local`,
/// `localhost`, and its loopback and private addresses (a public one would break the CA's name
/// constraints, and is what a certificate of the user's own is for).
fn names(hostname: &str, listen: IpAddr) -> Vec<String> {
    let mut out = vec![format!("{hostname}.local"), "spis.local".to_owned(), "localhost".to_owned()];
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    if listen.is_unspecified() {
        ips.extend(local_addresses());
    } else {
        ips.push(listen);
    }
    for ip in ips.into_iter().filter(|ip| is_private(*ip)) {
        out.push(ip.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

/// The addresses of this machine's interfaces (getifaddrs(3)).
fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list it allocated, freed below by freeifaddrs.
    if unsafe { libc::getifaddrs(&raw mut head) } != 0 {
        return out;
    }
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` is a node of the list, valid until freeifaddrs; an address is a sockaddr_in
        // when its family is AF_INET and a sockaddr_in6 when AF_INET6.
        unsafe {
            let addr = (*p).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*addr.cast::<libc::sockaddr_in>();
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*addr.cast::<libc::sockaddr_in6>();
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            p = (*p).ifa_next;
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

fn validity(days: u64) -> anyhow::Result<(time::OffsetDateTime, time::OffsetDateTime)> {
    let now = crate::auth::unix_now();
    // An hour back, for clocks a little behind.
    let from = time::OffsetDateTime::from_unix_timestamp(now.saturating_sub(3600).try_into()?)?;
    let until = time::OffsetDateTime::from_unix_timestamp(now.saturating_add(days * DAY).try_into()?)?;
    Ok((from, until))
}

/// A certificate for `names`, valid for `days`, signed by the CA: the PEM of its key, itself and
/// the CA.
fn issue(ca: &Ca, names: &[String], days: u64) -> anyhow::Result<String> {
    let ca_key = rcgen::KeyPair::from_pem(&ca.pem).context("the local CA's key")?;
    let issuer = rcgen::Issuer::from_ca_cert_der(&CertificateDer::from(ca.cert_der.clone()), ca_key)
        .context("the local CA's certificate")?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0].clone());
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(days)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(format!("{}{}{}", key.serialize_pem(), cert.pem(), ca.cert_pem()))
}

/// The server certificate on disk: what it says of itself.
struct Server {
    pem: String,
    names: Vec<String>,
    not_after: i64,
}

impl Server {
    fn covers(&self, wanted: &[String]) -> bool {
        wanted.iter().all(|n| self.names.contains(n))
    }

    fn expiring(&self) -> bool {
        let now = i64::try_from(crate::auth::unix_now()).unwrap_or(i64::MAX);
        self.not_after - now < i64::try_from(RENEW_BEFORE_DAYS * DAY).unwrap_or(0)
    }
}

fn read_server(path: &Path) -> anyhow::Result<Option<Server>> {
    let Some(bytes) = private::read_optional(path).with_context(|| format!("reading {}", path.display()))?
    else {
        return Ok(None);
    };
    let Ok(pem) = String::from_utf8(bytes) else { return Ok(None) };
    let Ok(cert) = CertificateDer::from_pem_slice(pem.as_bytes()) else { return Ok(None) };
    let Ok((_, x509)) = x509_parser::parse_x509_certificate(&cert) else { return Ok(None) };
    let mut names = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(*b).expect("4 bytes"))),
                        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(*b).expect("16 bytes"))),
                        _ => continue,
                    };
                    names.push(ip.to_string());
                }
                _ => {}
            }
        }
    }
    let not_after = x509.validity().not_after.timestamp();
    Ok(Some(Server { pem, names, not_after }))
}

/// A certificate's subject common name and its expiry (Unix seconds).
pub(crate) fn describe(der: &[u8]) -> (String, i64) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, x509)) => {
            let cn = x509.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or("spis");
            (cn.to_owned(), x509.validity().not_after.timestamp())
        }
        Err(_) => ("spis".to_owned(), 0),
    }
}

/// The SHA-256 of a certificate as the trust dialogs of phones show it: `AB:CD:...`.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(der);
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Told by the kernel when an address is added to an interface (an rtnetlink socket in the IPv4
/// and IPv6 address groups): a DHCP lease that comes after spis started.
pub(crate) struct AddressWatch(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>);

impl AddressWatch {
    pub(crate) fn new() -> std::io::Result<AddressWatch> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, netlink};
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None, // NETLINK_ROUTE
        )?;
        let groups = libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR;
        rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, u32::try_from(groups).unwrap_or(0)))?;
        // SAFETY: the AsyncFd owns `fd` (an OwnedFd), so it stays open and the same until dropped.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(std::io::Error::from)?;
        Ok(AddressWatch(fd))
    }

    /// Waits until an address is added (or the kernel dropped messages, so one may have been).
    pub(crate) async fn added(&self) -> std::io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|fd| Ok(rustix::net::recv(fd, &mut buf[..], rustix::net::RecvFlags::empty())?))
            {
                Ok(Ok((n, _))) if has_new_address(&buf[..n.min(buf.len())]) => return Ok(()),
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(()),
                Ok(Err(e)) => return Err(e),
            }
        }
    }
}

/// Whether a datagram of netlink messages holds an RTM_NEWADDR.
fn has_new_address(mut msgs: &[u8]) -> bool {
    // struct nlmsghdr: u32 length (header included), u16 type, u16 flags, u32 seq, u32 pid.
    while msgs.len() >= 16 {
        let len = u32::from_ne_bytes([msgs[0], msgs[1], msgs[2], msgs[3]]) as usize;
        if u16::from_ne_bytes([msgs[4], msgs[5]]) == libc::RTM_NEWADDR {
            return true;
        }
        if len < 16 {
            break;
        }
        // Messages are aligned to 4 bytes.
        msgs = len.checked_next_multiple_of(4).and_then(|at| msgs.get(at..)).unwrap_or_default();
    }
    false
}

/// How often the certificate is checked for renewal, for new addresses and for new files.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_those_the_ca_may_name() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "172.31.255.1",
            "192.168.1.20",
            "100.101.102.103",
            "::1",
            "fd12::1",
            "::ffff:192.168.0.2",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:db8::1", "100.128.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_names_are_the_devices_and_only_private_addresses() {
        let n = names("kitchen", "192.168.1.20".parse().unwrap());
        assert_eq!(&n[..3], ["kitchen.local", "spis.local", "localhost"]);
        assert!(n.contains(&"192.168.1.20".to_owned()) && n.contains(&"127.0.0.1".to_owned()));
        let public = names("spis", "203.0.113.5".parse().unwrap());
        assert!(!public.contains(&"203.0.113.5".to_owned()));
        assert_eq!(public.iter().filter(|n| *n == "spis.local").count(), 1, "no name twice");
    }

    #[test]
    fn a_ca_is_made_once_and_its_certificate_names_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let tls =
            Tls::start(&TlsMode::Auto, dir.path(), "kitchen", "127.0.0.1".parse().unwrap()).unwrap().unwrap();
        let ca = tls.ca_der().unwrap().to_vec();
        let again =
            Tls::start(&TlsMode::Auto, dir.path(), "kitchen", "127.0.0.1".parse().unwrap()).unwrap().unwrap();
        assert_eq!(again.ca_der().unwrap(), ca, "the CA is kept");
        let server = read_server(&dir.path().join("tls/server.pem")).unwrap().unwrap();
        assert!(server.covers(&["kitchen.local".into(), "127.0.0.1".into(), "localhost".into()]));
        assert!(!server.expiring());
        let (_, x509) = x509_parser::parse_x509_certificate(&ca).unwrap();
        assert!(x509.is_ca());
        let nc = x509.name_constraints().unwrap().expect("the CA is name-constrained");
        assert!(nc.critical);
    }

    #[test]
    fn a_new_address_gets_a_new_certificate_that_keeps_the_old_names() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            Tls::start(&TlsMode::Auto, dir.path(), "spis", "10.0.0.5".parse().unwrap()).unwrap().unwrap();
        drop(first);
        let second =
            Tls::start(&TlsMode::Auto, dir.path(), "spis", "10.0.0.6".parse().unwrap()).unwrap().unwrap();
        second.refresh().unwrap();
        let server = read_server(&dir.path().join("tls/server.pem")).unwrap().unwrap();
        assert!(server.covers(&["10.0.0.5".into(), "10.0.0.6".into()]), "{:?}", server.names);
    }

    #[test]
    fn a_certificate_near_its_end_is_issued_again_and_an_unchanged_one_is_not_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let tls =
            Tls::start(&TlsMode::Auto, dir.path(), "spis", "127.0.0.1".parse().unwrap()).unwrap().unwrap();
        let served = || Arc::clone(&tls.current.0.read().unwrap());
        let first = served();
        tls.refresh().unwrap();
        assert!(Arc::ptr_eq(&first, &served()), "nothing changed, nothing reloaded");

        // As if the clock had moved on to 10 days before the end: the same names, 10 days left.
        let path = dir.path().join("tls/server.pem");
        let ca = load_or_make_ca(&dir.path().join("tls"), "spis").unwrap();
        let old = read_server(&path).unwrap().unwrap();
        private::write(&path, issue(&ca, &old.names, 10).unwrap().as_bytes()).unwrap();
        assert!(read_server(&path).unwrap().unwrap().expiring());
        tls.refresh().unwrap();
        let renewed = read_server(&path).unwrap().unwrap();
        assert!(!renewed.expiring() && renewed.names == old.names, "{:?}", renewed.names);
        let now = i64::try_from(crate::auth::unix_now()).unwrap();
        assert!(renewed.not_after - now > 360 * 86_400);
        assert_eq!(
            served().cert[0].as_ref(),
            CertificateDer::from_pem_slice(renewed.pem.as_bytes()).unwrap().as_ref()
        );
    }

    #[test]
    fn a_full_certificate_keeps_this_devices_names_first() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let ca = load_or_make_ca(&tls, "spis").unwrap();
        // Another replica filled it with addresses of its own.
        let full: Vec<String> = (0..MAX_NAMES).map(|i| format!("10.1.0.{i}")).collect();
        private::write(&tls.join("server.pem"), issue(&ca, &full, 365).unwrap().as_bytes()).unwrap();
        Tls::start(&TlsMode::Auto, dir.path(), "spis", "10.0.0.6".parse().unwrap()).unwrap().unwrap();
        let server = read_server(&tls.join("server.pem")).unwrap().unwrap();
        assert_eq!(server.names.len(), MAX_NAMES);
        assert!(server.covers(&names("spis", "10.0.0.6".parse().unwrap())), "{:?}", server.names);
    }

    #[test]
    fn netlink_datagrams_are_read_for_new_addresses() {
        let msg = |kind: u16, len: u32| {
            let mut m = len.to_ne_bytes().to_vec();
            m.extend(kind.to_ne_bytes());
            m.extend([0; 10]);
            m.resize(len as usize, 0);
            m
        };
        assert!(has_new_address(&msg(libc::RTM_NEWADDR, 24)));
        assert!(!has_new_address(&msg(libc::RTM_DELADDR, 24)));
        // A deletion, then an address, in one datagram; lengths not a multiple of 4 are padded.
        let mut two = msg(libc::RTM_DELADDR, 22);
        two.extend([0, 0]);
        two.extend(msg(libc::RTM_NEWADDR, 16));
        assert!(has_new_address(&two));
        assert!(!has_new_address(&msg(libc::RTM_NEWADDR, 24)[..15]), "too short for a header");
        assert!(!has_new_address(&[0xff; 64]), "garbage ends the walk");
    }

    #[test]
    fn fingerprints_are_colon_separated_hex() {
        assert_eq!(fingerprint(b"").len(), 32 * 3 - 1);
        assert!(fingerprint(b"").starts_with("E3:B0:C4:42"));
    }
}
