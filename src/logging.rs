//! Logging: `tracing` to stderr, or to journald when systemd started us.
//!
//! The rule: a bad log filter never stops the server; it falls back to `info` and says so.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

pub(crate) fn init(filter: &str, under_systemd: bool) {
    let (filter, bad) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    // JOURNAL_STREAM is set when stderr goes to the journal; structured fields then survive.
    let journald = if under_systemd { tracing_journald::layer().ok() } else { None };
    let registry = tracing_subscriber::registry();
    if let Some(journald) = journald {
        registry.with(journald.with_filter(filter)).init();
    } else {
        // Colours only for a person at a terminal: a file, a pipe or `docker logs` gets plain text.
        let colour =
            std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(colour);
        registry.with(fmt.with_filter(filter)).init();
    }
    if let Some(e) = bad {
        tracing::warn!(error = %e, "invalid log filter, using `info`");
    }
}
