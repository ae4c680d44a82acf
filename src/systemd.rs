//! The systemd notify protocol (`sd_notify(3)`): a few datagrams to `$NOTIFY_SOCKET`, no C library.
//!
//! `READY=1` once the port is open (`Type=notify`), `WATCHDOG=1` at half of `$WATCHDOG_USEC` from
//! the async runtime, so a server whose runtime is wedged stops petting and systemd restarts it,
//! `STOPPING=1` when the drain starts, and a one-line `STATUS=` shown by `systemctl status`.
//! Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing.

use std::collections::HashMap;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where to send notifications, and how often systemd wants to hear from us.
#[derive(Debug)]
pub(crate) struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// Half the watchdog timeout: the recommended petting period.
    pub watchdog_every: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `env`. A socket that cannot
    /// be used is logged once and ignored: notifications are never worth failing start-up for.
    pub(crate) fn from_env(env: &HashMap<String, String>) -> Notifier {
        let socket = env.get("NOTIFY_SOCKET").filter(|p| !p.is_empty()).and_then(|path| {
            match address(path).and_then(|addr| Ok((UnixDatagram::unbound()?, addr))) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(socket = %path, error = %e, "cannot use NOTIFY_SOCKET; not telling systemd when ready");
                    None
                }
            }
        });
        // WATCHDOG_PID, when set, names the process meant; a child started with our environment
        // must not pet for us.
        let ours = env.get("WATCHDOG_PID").is_none_or(|pid| pid.parse() == Ok(std::process::id()));
        let watchdog_every = env
            .get("WATCHDOG_USEC")
            .and_then(|us| us.parse::<u64>().ok())
            .filter(|&us| us > 0 && ours && socket.is_some())
            .map(|us| Duration::from_micros(us / 2));
        Notifier { socket, watchdog_every }
    }

    /// Sends one notification (`KEY=value` lines); errors are logged at debug and otherwise ignored.
    pub(crate) fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            tracing::debug!(error = %e, "cannot notify systemd");
        }
    }
}

/// `NOTIFY_SOCKET` is a path, or `@name` for an abstract socket.
fn address(path: &str) -> std::io::Result<SocketAddr> {
    match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None if path.starts_with('/') => SocketAddr::from_pathname(path),
        None => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an absolute path or @name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn abstract_sockets_receive_notifications() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("spis-notify-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        let n =
            Notifier::from_env(&env(&[("NOTIFY_SOCKET", &format!("@{name}")), ("WATCHDOG_USEC", "3000000")]));
        assert_eq!(n.watchdog_every, Some(Duration::from_millis(1500)));
        n.send("READY=1");
        let mut buf = [0; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn the_watchdog_is_only_ours_when_the_pid_matches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let _listener = UnixDatagram::bind(&path).unwrap();
        let socket = path.to_str().unwrap();
        let other = Notifier::from_env(&env(&[
            ("NOTIFY_SOCKET", socket),
            ("WATCHDOG_USEC", "10"),
            ("WATCHDOG_PID", "1"),
        ]));
        assert_eq!(other.watchdog_every, None);
        let pid = std::process::id().to_string();
        let ours = Notifier::from_env(&env(&[
            ("NOTIFY_SOCKET", socket),
            ("WATCHDOG_USEC", "10"),
            ("WATCHDOG_PID", &pid),
        ]));
        assert!(ours.watchdog_every.is_some());
    }

    #[test]
    fn no_or_bad_socket_means_silence() {
        assert!(Notifier::from_env(&env(&[])).socket.is_none());
        let relative =
            Notifier::from_env(&env(&[("NOTIFY_SOCKET", "relative/path"), ("WATCHDOG_USEC", "10")]));
        assert!(relative.socket.is_none() && relative.watchdog_every.is_none());
        relative.send("READY=1");
    }
}
