//! What every request passes before its handler: the per-client rate limit, authentication and
//! the cross-origin check.
//!
//! The rule: who may call a route is written in the route table (`routes::ROUTES`): only the
//! page, its assets, the manifest, `/api/health` and the login endpoints are public; every other
//! `/api` path (media URLs included) needs a valid session cookie or API token, and a browser
//! request from another origin can never change anything.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::{HeaderMap, Method, header};

use super::error::ApiError;
use crate::auth::{Auth, COOKIE, TokenScope};
use crate::config::IpNet;
use crate::shares::{GUEST_COOKIE, Link, Shares};

/// Who is asking, as far as the guard cares.
#[derive(Debug, Clone)]
pub(super) enum Caller {
    /// Auth is off (`--no-auth`).
    Anyone,
    Session,
    Token,
    /// An upload-only token (`spis token create --upload-only --dir DIR`): uploads into DIR and
    /// below, nothing else.
    Uploader(String),
    /// Someone outside the household who opened a share link: reads that share's items only.
    Guest(Arc<Link>),
    Anonymous,
}

impl Caller {
    /// Where this caller may put uploads.
    pub(super) fn upload_scope(&self) -> crate::upload::Scope<'_> {
        match self {
            Caller::Uploader(dir) => crate::upload::Scope::Below(dir),
            _ => crate::upload::Scope::Anywhere,
        }
    }

    /// The share link a guest may see.
    pub(super) fn share(&self) -> Option<&Link> {
        match self {
            Caller::Guest(link) => Some(link),
            _ => None,
        }
    }
}

/// Identifies the caller from the cookies or bearer token. The household's credentials come
/// first: a member who opened a share link in the same browser is still a member.
pub(super) fn caller(auth: &Auth, shares: &Shares, headers: &HeaderMap) -> Caller {
    if !auth.required() {
        return Caller::Anyone;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // SECURITY: every credential a request presents must hold: a forged or stale cookie beside a
    // good token (or a bad token beside a good cookie) is refused, not skipped over.
    match (token, session_cookie(headers)) {
        (Some(t), cookie) => match auth.check_token(t) {
            Some(scope) if cookie.is_none_or(|c| auth.check_session(c)) => match scope {
                TokenScope::Full => Caller::Token,
                TokenScope::UploadOnly(dir) => Caller::Uploader(dir),
            },
            _ => Caller::Anonymous,
        },
        (None, Some(c)) if auth.check_session(c) => Caller::Session,
        (None, _) => match cookie(headers, GUEST_COOKIE).and_then(|c| shares.guest(c)) {
            Some(link) => Caller::Guest(link),
            None => Caller::Anonymous,
        },
    }
}

/// The session cookie's value, if the request has one.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// A cookie's value, if the request has it.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Refuses a request that would change something when a browser sent it from another site.
// SECURITY: SameSite=Lax already keeps the cookie off cross-site POST/PUT/DELETE in current
// browsers; this also covers older ones and same-site-but-cross-origin pages (another port).
pub(super) fn check_origin(method: &Method, headers: &HeaderMap, websocket: bool) -> Result<(), ApiError> {
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !changes && !websocket {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(ApiError::CrossOrigin);
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest).trim_end_matches('/');
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            return Err(ApiError::CrossOrigin);
        }
    }
    Ok(())
}

/// A token bucket per client address: `rate` requests a second on average, bursts of `burst`.
#[derive(Debug)]
pub(super) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` 0 turns limiting off.
    pub(super) fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(rate) * 4.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn allow(&self, ip: IpAddr) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 50_000 {
            // Bounded under a flood of addresses: full buckets carry no information.
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(ip))
}

/// The client's address: the peer, or, from a trusted proxy, the nearest address in
/// X-Forwarded-For that is not itself a trusted proxy (a chain such as CDN, then ingress).
pub(super) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) else { return peer };
    let mut nearest = peer;
    for hop in forwarded.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        nearest = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    nearest
}

/// Whether the client reached us over TLS (through a trusted proxy that says so).
pub(super) fn is_https(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> bool {
    is_trusted(peer, trusted)
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cross_origin_changes_are_refused_and_same_origin_ones_pass() {
        let put = Method::PUT;
        let ok = [
            headers(&[("host", "spis.local")]),
            headers(&[("host", "spis.local"), ("origin", "http://spis.local")]),
            headers(&[
                ("host", "spis.local:8080"),
                ("origin", "https://spis.local:8080"),
                ("sec-fetch-site", "same-origin"),
            ]),
        ];
        for h in ok {
            assert!(check_origin(&put, &h, false).is_ok(), "{h:?}");
        }
        let bad = [
            headers(&[("host", "spis.local"), ("origin", "http://evil.example")]),
            headers(&[("host", "spis.local"), ("origin", "null")]),
            headers(&[("host", "spis.local:8080"), ("origin", "http://spis.local:9090")]),
            headers(&[("host", "spis.local"), ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "spis.local"), ("sec-fetch-site", "same-site")]),
        ];
        for h in bad {
            assert!(check_origin(&put, &h, false).is_err(), "{h:?}");
            assert!(check_origin(&Method::GET, &h, false).is_ok(), "reads are not changes");
            assert!(check_origin(&Method::GET, &h, true).is_err(), "but a WebSocket is checked");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; spis_session=v1.x; b=2")]);
        assert_eq!(session_cookie(&h), Some("v1.x"));
        assert_eq!(session_cookie(&headers(&[("cookie", "spis_sessionx=1")])), None);
    }

    #[test]
    fn buckets_allow_a_burst_then_refuse() {
        let limiter = RateLimiter::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let allowed = (0..20).filter(|_| limiter.allow(ip)).count();
        assert_eq!(allowed, 8, "a burst of 4x the rate");
        assert!(limiter.allow("192.0.2.2".parse().unwrap()), "per address");
        assert!(RateLimiter::new(0).allow(ip));
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.4"), ("x-forwarded-proto", "https")]);
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let one: IpNet = "10.0.0.2".parse().unwrap();
        assert_eq!(client_ip(proxy, &h, &[one]), "198.51.100.4".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
        assert!(is_https(proxy, &h, &[one]) && !is_https(proxy, &h, &[]));
        // A network of proxies, and a chain through two of them: the nearest untrusted hop.
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        let chain = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.2.3")]);
        assert_eq!(client_ip(proxy, &chain, &[net]), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip("10.9.9.9".parse().unwrap(), &h, &[one]), "10.9.9.9".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert!(net.contains(mapped) && !net.contains("11.0.0.1".parse().unwrap()));
        assert!("fd00::/8".parse::<IpNet>().unwrap().contains("fd12::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err() && "nope".parse::<IpNet>().is_err());
        assert_eq!("0.0.0.0/0".parse::<IpNet>().unwrap().to_string(), "0.0.0.0/0");
    }
}
