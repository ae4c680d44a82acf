//! Who may see the gallery: one household password, signed session cookies, and API tokens.
//!
//! The password is kept only as an argon2id hash (in the config, or in the state dir when it was
//! chosen on the first-run page). Sessions are stateless: a cookie carries when it was issued and
//! a fingerprint of the password hash, signed with a key in the state dir, so every replica that
//! shares the state dir accepts it, a restart logs nobody out, and changing the password ends every
//! session. API tokens are random, shown once, and stored as SHA-256 hashes. The rule: nothing
//! secret is ever logged or stored in the clear, and every comparison of secrets is constant-time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use data_encoding::HEXLOWER;
use hmac::Mac as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::fs::private;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The cookie that carries a session.
pub(crate) const COOKIE: &str = "spis_session";
const KEY_FILE: &str = "session.key";
const PASSWORD_FILE: &str = "password.hash";
const TOKENS_FILE: &str = "tokens.txt";
/// Sessions ended by a logout before they expired: `<nonce> <expiry unix seconds>` per line.
const LOGGED_OUT_FILE: &str = "logged-out.txt";
/// Failed logins from one address allowed before each further attempt must wait (1 s, then 2 s,
/// 4 s, ... up to 15 minutes after the latest failure).
const FREE_FAILURES: u32 = 5;
const MAX_LOGIN_DELAY: Duration = Duration::from_secs(15 * 60);

/// How access is configured.
#[derive(Debug, Clone)]
pub(crate) struct AuthOpts {
    /// `--no-auth`: the gallery is open to anyone who can reach it.
    pub disabled: bool,
    /// `--password-hash`: an argon2id PHC string; when set, the password cannot be changed online.
    pub password_hash: Option<String>,
    pub session_max_age: Duration,
}

/// Why a login or password change was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("wrong password")]
    WrongPassword,
    #[error("too many failed logins from this address; try again in {0} s")]
    TooManyAttempts(u64),
    #[error("a password is already set")]
    AlreadySet,
    #[error("no password is set yet")]
    NotSet,
    #[error("the password is set in the configuration (password_hash) and cannot be changed here")]
    FromConfig,
    #[error("the password must be at least 8 characters")]
    TooShort,
    #[error("the password could not be stored: {0}")]
    Io(#[from] std::io::Error),
}

/// A file's (mtime, inode): changes whenever it is rewritten.
type FileVersion = (Option<SystemTime>, u64);

#[derive(Debug)]
pub(crate) struct Auth {
    disabled: bool,
    from_config: bool,
    state_dir: PathBuf,
    key: [u8; 32],
    /// The argon2id PHC string, `None` until one is chosen.
    password: RwLock<Option<String>>,
    /// The stored password file's version when last read, and when it was last checked: another
    /// replica sharing the state dir may set or change the password.
    password_seen: Mutex<(Option<FileVersion>, Instant)>,
    max_age: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// The stored tokens: name, hex SHA-256 of the token, scope.
    tokens: Mutex<private::Reloaded<Vec<TokenEntry>>>,
    /// The logged-out sessions' nonces.
    logged_out: Mutex<private::Reloaded<std::collections::HashSet<String>>>,
}

impl Auth {
    pub(crate) fn try_new(opts: &AuthOpts, state_dir: &Path) -> anyhow::Result<Auth> {
        let key = load_or_make_key(&state_dir.join(KEY_FILE))?;
        let stored = private::read_optional(&state_dir.join(PASSWORD_FILE))
            .context("reading the password hash in the state dir")?
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
        let password = opts.password_hash.clone().or(stored);
        if let Some(p) = &password
            && PasswordHash::new(p).is_err()
        {
            bail!("the password hash is not an argon2 PHC string (make one with `spis hash-password`)");
        }
        Ok(Auth {
            disabled: opts.disabled,
            from_config: opts.password_hash.is_some(),
            state_dir: state_dir.to_path_buf(),
            key,
            password: RwLock::new(password),
            password_seen: Mutex::new((private::version(&state_dir.join(PASSWORD_FILE)), Instant::now())),
            max_age: opts.session_max_age,
            failures: Mutex::new(HashMap::new()),
            tokens: Mutex::default(),
            logged_out: Mutex::default(),
        })
    }

    /// Whether requests need a session or token at all.
    pub(crate) fn required(&self) -> bool {
        !self.disabled
    }

    /// Protected, but no password chosen yet: the first-run page may set one.
    pub(crate) fn needs_setup(&self) -> bool {
        self.refresh_password();
        !self.disabled && self.password.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// Re-reads the stored password when its file changed (at most every 500 ms): set up or
    /// changed through another replica, it applies here too, and ends the old sessions here too.
    fn refresh_password(&self) {
        if self.from_config || self.disabled {
            return;
        }
        let path = self.state_dir.join(PASSWORD_FILE);
        let mut seen = self.password_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.1.elapsed() < Duration::from_millis(500) {
            return;
        }
        seen.1 = Instant::now();
        let now = private::version(&path);
        if now == seen.0 {
            return;
        }
        seen.0 = now;
        match private::read_optional(&path) {
            Ok(stored) => {
                let stored = stored.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
                if stored.as_deref().is_some_and(|p| PasswordHash::new(p).is_ok()) {
                    *self.password.write().unwrap_or_else(|p| p.into_inner()) = stored;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot re-read the password hash in the state dir"),
        }
    }

    pub(crate) fn session_max_age(&self) -> Duration {
        self.max_age
    }

    /// Whether a session cookie value is valid now.
    pub(crate) fn check_session(&self, value: &str) -> bool {
        self.refresh_password();
        let Some((payload, sig)) = value.rsplit_once('.') else { return false };
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else { return false };
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        if mac.verify_slice(&sig).is_err() {
            return false;
        }
        let mut parts = payload.split('.');
        let (Some("v1"), Some(issued), Some(epoch)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let Ok(issued) = issued.parse::<u64>() else { return false };
        let now = unix_now();
        epoch == self.epoch()
            && issued <= now + 60
            && now.saturating_sub(issued) < self.max_age.as_secs()
            && parts.next().is_none_or(|nonce| !self.is_logged_out(nonce))
    }

    /// Ends a session on the server too: a copy of the cookie stops working. Only a valid
    /// session is recorded, until it would have expired anyway.
    pub(crate) fn logout(&self, value: &str) -> Result<(), AuthError> {
        if !self.check_session(value) {
            return Ok(());
        }
        let Some(nonce) = value.split('.').nth(3) else { return Ok(()) };
        let path = self.state_dir.join(LOGGED_OUT_FILE);
        let now = unix_now();
        let mut lines: Vec<String> = private::read_optional(&path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').nth(1).and_then(|t| t.parse::<u64>().ok()).is_some_and(|t| t > now))
            .map(str::to_owned)
            .collect();
        lines.push(format!("{nonce} {}", now + self.max_age.as_secs()));
        private::write(&path, (lines.join("\n") + "\n").as_bytes())?;
        Ok(())
    }

    fn is_logged_out(&self, nonce: &str) -> bool {
        let mut cache = self.logged_out.lock().unwrap_or_else(|p| p.into_inner());
        let nonces = cache.get(&self.state_dir.join(LOGGED_OUT_FILE), |path| {
            let text = private::read_optional(path).ok().flatten().unwrap_or_default();
            String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|l| l.split(' ').next())
                .map(str::to_owned)
                .collect()
        });
        nonces.contains(nonce)
    }

    /// A new session cookie value.
    pub(crate) fn issue_session(&self) -> String {
        let payload = format!("v1.{}.{}.{}", unix_now(), self.epoch(), HEXLOWER.encode(&random::<16>()));
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// Checks a password (slow on purpose: call it off the async threads). Failures from one
    /// address beyond a few make it wait, doubling each time.
    pub(crate) fn login(&self, peer: IpAddr, password: &str) -> Result<String, AuthError> {
        if let Some(wait) = self.login_delay(peer) {
            return Err(AuthError::TooManyAttempts(wait.as_secs().max(1)));
        }
        self.refresh_password();
        let Some(hash) = self.password.read().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Err(AuthError::NotSet);
        };
        if verify(&hash, password) {
            self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&peer);
            Ok(self.issue_session())
        } else {
            self.record_failure(peer);
            Err(AuthError::WrongPassword)
        }
    }

    /// Counts a wrong password from `peer` (a login's, or a share link's: one back-off for both,
    /// so a link's password is no easier to guess than the household's).
    pub(crate) fn record_failure(&self, peer: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood from many addresses forgets the oldest entries.
        if f.len() > 10_000 {
            f.clear();
        }
        let e = f.entry(peer).or_insert((0, Instant::now()));
        *e = (e.0 + 1, Instant::now());
    }

    /// How long `peer` must wait before its next password may be checked, if at all.
    pub(crate) fn login_delay(&self, peer: IpAddr) -> Option<Duration> {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let &(count, last) = f.get(&peer)?;
        let over = count.checked_sub(FREE_FAILURES + 1)?;
        let delay = Duration::from_secs(1u64 << over.min(20)).min(MAX_LOGIN_DELAY);
        delay.checked_sub(last.elapsed())
    }

    /// Chooses the first password (the first-run page); only while none is set.
    pub(crate) fn setup(&self, password: &str) -> Result<String, AuthError> {
        check_strength(password)?;
        let mut current = self.password.write().unwrap_or_else(|p| p.into_inner());
        if current.is_some() {
            return Err(AuthError::AlreadySet);
        }
        let hash = hash_password(password);
        // Only the first: a replica sharing the state dir may have been set up a moment ago.
        if !private::create_new(&self.state_dir.join(PASSWORD_FILE), hash.as_bytes())? {
            return Err(AuthError::AlreadySet);
        }
        *current = Some(hash);
        drop(current);
        Ok(self.issue_session())
    }

    /// Changes the password; every existing session ends, and the new one for the caller begins.
    pub(crate) fn change_password(&self, peer: IpAddr, old: &str, new: &str) -> Result<String, AuthError> {
        if self.from_config {
            return Err(AuthError::FromConfig);
        }
        check_strength(new)?;
        self.login(peer, old)?;
        let hash = hash_password(new);
        private::write(&self.state_dir.join(PASSWORD_FILE), hash.as_bytes())?;
        *self.password.write().unwrap_or_else(|p| p.into_inner()) = Some(hash);
        Ok(self.issue_session())
    }

    /// What a bearer token may do, `None` when it is none of the stored ones (re-read when the
    /// file changes, so a token revoked by `spis token revoke`, or on another replica, stops
    /// working at once).
    pub(crate) fn check_token(&self, token: &str) -> Option<TokenScope> {
        let digest = HEXLOWER.encode(&sha2::Sha256::digest(token.as_bytes()));
        let mut cache = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let entries =
            cache.get(&self.state_dir.join(TOKENS_FILE), |path| read_tokens(path).unwrap_or_default());
        // Constant-time over each stored hash, so timing says nothing about how close a guess was.
        let mut found = None;
        for entry in entries.iter() {
            if bool::from(entry.hash.as_bytes().ct_eq(digest.as_bytes())) {
                found = Some(entry.scope.clone());
            }
        }
        found
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// A fingerprint of the password hash: sessions carry it, so a new password ends them.
    fn epoch(&self) -> String {
        let p = self.password.read().unwrap_or_else(|p| p.into_inner());
        let mut mac = self.mac();
        mac.update(p.as_deref().unwrap_or("").as_bytes());
        HEXLOWER.encode(&mac.finalize().into_bytes()[..6])
    }
}

/// An argon2id hash with the crate's defaults (19 MiB, 2 passes), as a PHC string.
pub(crate) fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&random::<16>()).expect("16 bytes is a valid salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 defaults are valid")
        .to_string()
}

pub(crate) fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// The shortest household password accepted.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;

fn check_strength(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS { Err(AuthError::TooShort) } else { Ok(()) }
}

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenScope {
    /// Everything a logged-in household member may.
    Full,
    /// Only add files (uploads) in this folder below the media root, or below it; read nothing.
    UploadOnly(String),
}

/// One line of the tokens file: `NAME HASH`, or `NAME HASH upload DIR` (the folder is the rest
/// of the line, so it may hold spaces).
#[derive(Debug, Clone)]
struct TokenEntry {
    name: String,
    hash: String,
    scope: TokenScope,
}

/// `spis token create NAME [--upload-only --dir DIR]`: a new token, printed once; only its hash
/// is kept.
pub(crate) fn create_token(state_dir: &Path, name: &str, scope: TokenScope) -> anyhow::Result<String> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        bail!("a token name is one word, like `backup-script`");
    }
    if let TokenScope::UploadOnly(dir) = &scope
        && (dir.is_empty() || dir.contains(['\n', '\r']))
    {
        bail!("an upload-only token needs the folder it may add files to, like --dir Cameras/cam1");
    }
    let path = state_dir.join(TOKENS_FILE);
    let mut entries = read_tokens(&path)?;
    if entries.iter().any(|e| e.name == name) {
        bail!("a token named {name} exists; revoke it first or choose another name");
    }
    let token = format!("spis_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()));
    let hash = HEXLOWER.encode(&sha2::Sha256::digest(token.as_bytes()));
    entries.push(TokenEntry { name: name.to_owned(), hash, scope });
    write_tokens(&path, &entries)?;
    Ok(token)
}

/// `spis token list`: the names, with the folder of an upload-only token.
pub(crate) fn list_tokens(state_dir: &Path) -> anyhow::Result<Vec<String>> {
    Ok(read_tokens(&state_dir.join(TOKENS_FILE))?
        .into_iter()
        .map(|e| match e.scope {
            TokenScope::Full => e.name,
            TokenScope::UploadOnly(dir) => format!("{} (upload only, to {dir})", e.name),
        })
        .collect())
}

/// `spis token revoke NAME`.
pub(crate) fn revoke_token(state_dir: &Path, name: &str) -> anyhow::Result<()> {
    let path = state_dir.join(TOKENS_FILE);
    let mut entries = read_tokens(&path)?;
    let before = entries.len();
    entries.retain(|e| e.name != name);
    if entries.len() == before {
        bail!("no token named {name}");
    }
    write_tokens(&path, &entries)
}

fn read_tokens(path: &Path) -> anyhow::Result<Vec<TokenEntry>> {
    let Some(bytes) = private::read_optional(path).with_context(|| format!("reading {}", path.display()))?
    else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(' ')?;
            let (hash, scope) = match rest.split_once(' ') {
                None => (rest.trim(), TokenScope::Full),
                Some((hash, rest)) => {
                    // SECURITY: a scope this version does not know grants nothing, rather than
                    // everything.
                    let dir = rest.strip_prefix("upload ")?;
                    (hash, TokenScope::UploadOnly(dir.to_owned()))
                }
            };
            Some(TokenEntry { name: name.to_owned(), hash: hash.to_owned(), scope })
        })
        .collect())
}

fn write_tokens(path: &Path, entries: &[TokenEntry]) -> anyhow::Result<()> {
    let text: String = entries
        .iter()
        .map(|e| match &e.scope {
            TokenScope::Full => format!("{} {}\n", e.name, e.hash),
            TokenScope::UploadOnly(dir) => format!("{} {} upload {dir}\n", e.name, e.hash),
        })
        .collect();
    private::write(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Bytes of an HMAC kept in a short signed token (an image URL, a share link): 128 bits.
const SHORT_TAG_BYTES: usize = 16;

/// A key of its own (a file in the state dir) that signs short tokens: HMAC-SHA256 cut to
/// 128 bits, in URL-safe base64. Image URLs and share links each have one. Kept as the HMAC
/// state after the key, so a check (one per `/img` request) hashes only the message.
#[derive(Clone)]
pub(crate) struct SigningKey(HmacSha256);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// The key in `path`, made when there is none (see [`load_or_make_key`]).
    pub(crate) fn load_or_make(path: &Path) -> anyhow::Result<SigningKey> {
        Ok(SigningKey::keyed(&load_or_make_key(path)?))
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> SigningKey {
        SigningKey::keyed(&bytes)
    }

    fn keyed(key: &[u8; 32]) -> SigningKey {
        SigningKey(HmacSha256::new_from_slice(key).expect("HMAC takes any key length"))
    }

    fn mac(&self, message: &[u8]) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(message);
        mac
    }

    /// The signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        let tag = self.mac(message).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..SHORT_TAG_BYTES])
    }

    /// Whether `signature` is this key's for `message`, compared in constant time.
    pub(crate) fn verify(&self, signature: &str, message: &[u8]) -> bool {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).is_ok_and(|tag| {
            tag.len() == SHORT_TAG_BYTES && self.mac(message).verify_truncated_left(&tag).is_ok()
        })
    }
}

pub(crate) fn load_or_make_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    match private::read_optional(path).with_context(|| format!("reading {}", path.display()))? {
        Some(bytes) if bytes.len() == 32 => Ok(bytes.try_into().expect("32 bytes")),
        Some(_) => bail!(
            "{} is damaged (not 32 bytes); delete it to log everyone out and start over",
            path.display()
        ),
        None => {
            // Replicas starting together on an empty state dir: the first key written wins and
            // every replica uses it, so a session is valid on all of them.
            let key = random::<32>();
            if private::create_new(path, &key).with_context(|| format!("writing {}", path.display()))? {
                return Ok(key);
            }
            let bytes = private::read_optional(path)?.unwrap_or_default();
            bytes.try_into().map_err(|_| anyhow::anyhow!("{} is damaged (not 32 bytes)", path.display()))
        }
    }
}

/// `N` bytes from the kernel's random source (getrandom(2); the crate falls back to /dev/urandom
/// on kernels before 3.17), for keys, salts, tokens and ids. The one behaviour on failure, which
/// Linux does not do once its pool is seeded at boot: a panic. SECURITY: keys and tokens must be
/// unpredictable, and without the kernel's random source there is nothing safe to fall back to.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the kernel's random source failed");
    out
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(dir: &Path, hash: Option<String>) -> Auth {
        let opts =
            AuthOpts { disabled: false, password_hash: hash, session_max_age: Duration::from_secs(3600) };
        Auth::try_new(&opts, dir).unwrap()
    }

    #[test]
    fn sessions_verify_survive_a_restart_and_end_with_a_new_password() {
        let dir = tempfile::tempdir().unwrap();
        let a = auth(dir.path(), None);
        assert!(a.needs_setup());
        let cookie = a.setup("correct horse").unwrap();
        assert!(a.check_session(&cookie));
        assert!(!a.check_session(&cookie.replacen("v1.", "v1.1", 1)), "tampered");
        assert!(!a.check_session("v1.1.2.3.AAAA"));
        // Another process with the same state dir (a restart, a replica) accepts it.
        let b = auth(dir.path(), None);
        assert!(!b.needs_setup() && b.check_session(&cookie));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let fresh = b.change_password(peer, "correct horse", "battery staple").unwrap();
        assert!(b.check_session(&fresh) && !b.check_session(&cookie), "old sessions end");
        assert!(matches!(b.setup("whatever123"), Err(AuthError::AlreadySet)));
    }

    #[test]
    fn sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let opts = AuthOpts {
            disabled: false,
            password_hash: Some(hash_password("a password")),
            session_max_age: Duration::ZERO,
        };
        let a = Auth::try_new(&opts, dir.path()).unwrap();
        assert!(!a.check_session(&a.issue_session()));
    }

    #[test]
    fn failed_logins_beyond_a_few_must_wait() {
        let dir = tempfile::tempdir().unwrap();
        let a = auth(dir.path(), Some(hash_password("right password")));
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert!(matches!(a.login(peer, "wrong"), Err(AuthError::WrongPassword)));
        }
        assert!(matches!(a.login(peer, "wrong"), Err(AuthError::WrongPassword)));
        assert!(matches!(a.login(peer, "right password"), Err(AuthError::TooManyAttempts(_))));
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(a.login(other, "right password").is_ok(), "other addresses are not punished");
        assert!(matches!(
            a.change_password(other, "right password", "new password"),
            Err(AuthError::FromConfig)
        ));
    }

    #[test]
    fn tokens_are_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let a = auth(dir.path(), None);
        let token = create_token(dir.path(), "backup", TokenScope::Full).unwrap();
        assert_eq!(a.check_token(&token), Some(TokenScope::Full));
        assert_eq!(a.check_token("spis_nope"), None);
        let stored = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(!stored.contains(&token[5..]), "only the hash is stored");
        assert!(create_token(dir.path(), "backup", TokenScope::Full).is_err());
        let cam = TokenScope::UploadOnly("Cameras/front door".into());
        let cam_token = create_token(dir.path(), "cam1", cam.clone()).unwrap();
        assert_eq!(a.check_token(&cam_token), Some(cam));
        assert_eq!(list_tokens(dir.path()).unwrap(), ["backup", "cam1 (upload only, to Cameras/front door)"]);
        revoke_token(dir.path(), "backup").unwrap();
        assert_eq!(a.check_token(&token), None, "the rewritten file is read again");
        assert!(a.check_token(&cam_token).is_some());
        assert!(create_token(dir.path(), "cam2", TokenScope::UploadOnly(String::new())).is_err());
    }
}
