//! Share links: a selection, a folder or a month shown to people outside the household.
//!
//! Each link is one small JSON file in the state dir (`shares/ID.json`), written once and never
//! edited; revoking deletes it. Every use of a link stats its file, so a revocation on any replica
//! that shares the state dir holds on all of them at the next request. A link's URL carries the
//! share's id and an HMAC of it under a key of its own (`share.key`, apart from the session key),
//! and a guest's cookie carries the id, when it was issued and an HMAC. The rule: a guest's
//! credential names one share and grants only its items, and nothing that fails its signature
//! check ever reaches the disk.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::auth::{SigningKey, unix_now};
use crate::fs::private;
use crate::library::{Within, id};

/// The cookie that carries a guest's share.
pub(crate) const GUEST_COOKIE: &str = "spis_guest";
const KEY_FILE: &str = "share.key";
const DIR: &str = "shares";
/// How long a guest stays let in after opening a link (never beyond the link's own expiry).
pub(crate) const GUEST_MAX_AGE: u64 = 30 * 24 * 3600;
/// The views file stops growing here (one byte per view).
const MAX_VIEWS: u64 = 1 << 20;
/// The shortest password a link may have.
pub(crate) const MIN_PASSWORD_CHARS: usize = 6;

/// One share link, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Share {
    pub id: String,
    pub title: String,
    pub scope: Scope,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; `None` never expires.
    pub expires: Option<u64>,
    /// An argon2id PHC string: the link asks for this password first.
    pub password: Option<String>,
    /// Whether guests may save originals and ZIPs (else they see pictures and play videos only).
    pub downloads: bool,
}

impl Share {
    pub(crate) fn is_expired(&self) -> bool {
        self.expires.is_some_and(|e| e <= unix_now())
    }
}

/// What a link shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Scope {
    /// These items, fixed when the link was made.
    Items { ids: Vec<String> },
    /// This folder and below, including what is added later.
    Folder { dir: String },
    /// Everything taken in this month, including what is added later.
    Month { year: i32, month: u8 },
}

impl Scope {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Scope::Items { .. } => "items",
            Scope::Folder { .. } => "folder",
            Scope::Month { .. } => "month",
        }
    }
}

/// A share that may be used now, with its scope ready for the index.
#[derive(Debug)]
pub(crate) struct Link {
    pub share: Share,
    pub within: Arc<Within>,
}

impl Link {
    /// The share's folder, for folder shares: guests see paths below it.
    pub(crate) fn folder(&self) -> Option<&str> {
        match &self.share.scope {
            Scope::Folder { dir } => Some(dir),
            _ => None,
        }
    }
}

/// Why a link cannot be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShareError {
    #[error("this link is not valid (it may have been revoked)")]
    Unknown,
    #[error("this link has expired")]
    Expired,
    #[error("this link needs its password")]
    PasswordNeeded,
    #[error("wrong password")]
    WrongPassword,
}

/// What a new share is made of (checked by the caller against the index).
#[derive(Debug)]
pub(crate) struct NewShare {
    pub title: String,
    pub scope: Scope,
    pub expires: Option<u64>,
    pub password: Option<String>,
    pub downloads: bool,
}

/// A file's (mtime, inode).
type FileVersion = (Option<std::time::SystemTime>, u64);

#[derive(Debug)]
pub(crate) struct Shares {
    dir: PathBuf,
    key: SigningKey,
    /// Parsed shares by id, with the version of the file they were read from.
    cache: Mutex<HashMap<String, (FileVersion, Arc<Link>)>>,
}

impl Shares {
    pub(crate) fn try_new(state_dir: &Path) -> anyhow::Result<Shares> {
        let key = SigningKey::load_or_make(&state_dir.join(KEY_FILE))?;
        Ok(Shares { dir: state_dir.join(DIR), key, cache: Mutex::default() })
    }

    /// Stores a new share; answers it with its link token. The password, if any, is hashed here
    /// (slow on purpose: call it off the async threads).
    pub(crate) fn create(&self, new: NewShare) -> std::io::Result<(Share, String)> {
        loop {
            let id = URL_SAFE_NO_PAD.encode(crate::auth::random::<12>());
            let share = Share {
                id: id.clone(),
                title: new.title.clone(),
                scope: new.scope.clone(),
                created: unix_now(),
                expires: new.expires,
                password: new.password.as_deref().map(crate::auth::hash_password),
                downloads: new.downloads,
            };
            let bytes = serde_json::to_vec_pretty(&share).expect("a share serializes");
            // 96 random bits never collide in practice; the loop is for the proof, not the odds.
            if private::create_new(&self.path(&id, "json"), &bytes)? {
                return Ok((share, self.token(&id)));
            }
        }
    }

    /// Every stored share, newest first, with its views and link token (expired ones included,
    /// so they can be seen and removed).
    pub(crate) fn list(&self) -> std::io::Result<Vec<(Arc<Link>, u64, String)>> {
        let mut out = Vec::new();
        for name in private::names(&self.dir)? {
            let Some(id) = name.strip_suffix(".json").filter(|id| valid_id(id)) else { continue };
            if let Some(link) = self.load(id) {
                out.push((link, private::size(&self.path(id, "views")), self.token(id)));
            }
        }
        out.sort_by(|a, b| b.0.share.created.cmp(&a.0.share.created).then(a.0.share.id.cmp(&b.0.share.id)));
        Ok(out)
    }

    /// Revokes a share: its link and every guest let in through it stop working. `false` when
    /// there was no such share.
    pub(crate) fn revoke(&self, id: &str) -> std::io::Result<bool> {
        if !valid_id(id) {
            return Ok(false);
        }
        let gone = private::remove(&self.path(id, "json"))?;
        let _ = private::remove(&self.path(id, "views"));
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(gone)
    }

    /// A share that may be used now, by id (for the household's own previews).
    pub(crate) fn get(&self, id: &str) -> Result<Arc<Link>, ShareError> {
        if !valid_id(id) {
            return Err(ShareError::Unknown);
        }
        let link = self.load(id).ok_or(ShareError::Unknown)?;
        if link.share.is_expired() {
            return Err(ShareError::Expired);
        }
        Ok(link)
    }

    /// The share a link token names, checked: signature, still stored, not expired.
    pub(crate) fn by_token(&self, token: &str) -> Result<Arc<Link>, ShareError> {
        let (id, sig) = token.split_once('.').ok_or(ShareError::Unknown)?;
        if !valid_id(id) || !self.verify(&["link", id], sig) {
            return Err(ShareError::Unknown);
        }
        self.get(id)
    }

    /// Lets a guest in: checks the password, if the link has one (slow on purpose, like a login:
    /// call it off the async threads), counts a view and answers the guest cookie's value.
    pub(crate) fn open(&self, link: &Link, password: Option<&str>) -> Result<String, ShareError> {
        if let Some(hash) = &link.share.password {
            let given = password.ok_or(ShareError::PasswordNeeded)?;
            if !crate::auth::verify(hash, given) {
                return Err(ShareError::WrongPassword);
            }
        }
        let id = &link.share.id;
        if let Err(e) = private::append_below(&self.path(id, "views"), b".", MAX_VIEWS) {
            tracing::debug!(error = %e, "cannot count a share view");
        }
        let issued = unix_now().to_string();
        let sig = self.sign(&["guest", id, &issued]);
        Ok(format!("g1.{id}.{issued}.{sig}"))
    }

    /// The share a guest cookie lets in, if it is valid now.
    pub(crate) fn guest(&self, cookie: &str) -> Option<Arc<Link>> {
        let mut parts = cookie.split('.');
        let (Some("g1"), Some(id), Some(issued), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if !valid_id(id) || !self.verify(&["guest", id, issued], sig) {
            return None;
        }
        let issued: u64 = issued.parse().ok()?;
        let now = unix_now();
        if issued > now + 60 || now.saturating_sub(issued) >= GUEST_MAX_AGE {
            return None;
        }
        self.get(id).ok()
    }

    /// How long a guest cookie for this link should live, in seconds.
    pub(crate) fn guest_max_age(link: &Link) -> u64 {
        let left = link.share.expires.map_or(u64::MAX, |e| e.saturating_sub(unix_now()));
        left.min(GUEST_MAX_AGE)
    }

    /// The link token of a share id: the id and its signature.
    fn token(&self, id: &str) -> String {
        format!("{id}.{}", self.sign(&["link", id]))
    }

    /// The share as stored, read again when its file changed; `None` once it is gone.
    fn load(&self, id: &str) -> Option<Arc<Link>> {
        let path = self.path(id, "json");
        let version = private::version(&path)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, link)) = cache.get(id)
            && *seen == version
        {
            return Some(Arc::clone(link));
        }
        let bytes = private::read_optional(&path).ok()??;
        let share: Share = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "a share file is damaged; its link is refused");
                return None;
            }
        };
        if share.id != id {
            return None;
        }
        let link = Arc::new(Link { within: Arc::new(within(&share.scope)), share });
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id.to_owned(), (version, Arc::clone(&link)));
        Some(link)
    }

    fn path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    fn sign(&self, parts: &[&str]) -> String {
        self.key.sign(&message(parts))
    }

    fn verify(&self, parts: &[&str], sig: &str) -> bool {
        self.key.verify(sig, &message(parts))
    }
}

/// What is signed for a token of `parts`: each length-prefixed, so ("ab", "c") and ("a", "bc")
/// sign differently.
fn message(parts: &[&str]) -> Vec<u8> {
    let mut m = Vec::new();
    for p in parts {
        m.extend_from_slice(&(p.len() as u32).to_be_bytes());
        m.extend_from_slice(p.as_bytes());
    }
    m
}

/// A share id: 16 URL-safe base64 characters (12 random bytes). SECURITY: only these ever name
/// a file, so a request cannot reach any other path in the state dir.
fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn within(scope: &Scope) -> Within {
    match scope {
        Scope::Items { ids } => Within::Ids(ids.iter().filter_map(|i| id::decode(i)).collect::<HashSet<_>>()),
        Scope::Folder { dir } => Within::Folder(dir.clone()),
        Scope::Month { year, month } => Within::Month(*year, *month),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(scope: Scope, password: Option<&str>, expires: Option<u64>) -> NewShare {
        NewShare {
            title: "Summer".into(),
            scope,
            expires,
            password: password.map(str::to_owned),
            downloads: true,
        }
    }

    #[test]
    fn a_link_lets_a_guest_in_until_it_is_revoked_on_any_replica() {
        let dir = tempfile::tempdir().unwrap();
        let a = Shares::try_new(dir.path()).unwrap();
        let (share, token) = a.create(new(Scope::Folder { dir: "Trips/Rome".into() }, None, None)).unwrap();
        let link = a.by_token(&token).unwrap();
        assert_eq!(link.folder(), Some("Trips/Rome"));
        let cookie = a.open(&link, None).unwrap();
        // Another replica with the same state dir honours both, and counts the view.
        let b = Shares::try_new(dir.path()).unwrap();
        assert_eq!(b.guest(&cookie).unwrap().share.id, share.id);
        assert_eq!(b.list().unwrap()[0].1, 1, "one view");
        // Tampering with any part fails the signature.
        let forged = cookie.replacen(".1", ".2", 1);
        assert!(b.guest(&forged).is_none());
        assert!(b.by_token(&token.replacen('.', "x.", 1)).is_err());
        assert!(b.by_token(&format!("{}.{}", share.id, "A".repeat(22))).is_err());
        assert!(b.revoke(&share.id).unwrap());
        assert!(a.guest(&cookie).is_none() && a.by_token(&token).is_err(), "revoked everywhere");
        assert!(!a.revoke(&share.id).unwrap() && !a.revoke("../session.key").unwrap());
    }

    #[test]
    fn passwords_and_expiry_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let s = Shares::try_new(dir.path()).unwrap();
        let (_, token) = s.create(new(Scope::Month { year: 2024, month: 5 }, Some("grandma"), None)).unwrap();
        let link = s.by_token(&token).unwrap();
        assert!(matches!(s.open(&link, None), Err(ShareError::PasswordNeeded)));
        assert!(matches!(s.open(&link, Some("grandpa")), Err(ShareError::WrongPassword)));
        assert!(s.open(&link, Some("grandma")).is_ok());
        let stored =
            std::fs::read_to_string(dir.path().join(DIR).join(format!("{}.json", link.share.id))).unwrap();
        assert!(!stored.contains("grandma") && stored.contains("$argon2id$"), "{stored}");
        let (_, old) = s.create(new(Scope::Items { ids: vec![] }, None, Some(unix_now() - 1))).unwrap();
        assert!(matches!(s.by_token(&old), Err(ShareError::Expired)));
        assert_eq!(s.list().unwrap().len(), 2, "expired links are still listed");
    }
}
