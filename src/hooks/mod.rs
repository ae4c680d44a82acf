//! Telling the outside world about media as it comes and goes: webhooks (`--webhook`) and the
//! program run for each new file (`--on-new-media`).
//!
//! One task listens to the library's events and hands each to the hooks, which queue it and
//! deliver it on their own tasks. The rule: hooks never slow down the library or a request; when
//! they cannot keep up, events are dropped with a log line, never buffered without bound.

pub(crate) mod command;
pub(crate) mod webhook;

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use crate::config::Config;
use crate::fs::RelPath;
use crate::library::{Library, MediaEvent, dates, id};
use command::{CommandHook, CommandOpts};
use webhook::{Webhook, WebhookOpts};

/// Renders an event as the JSON body a webhook receives (the WebSocket message).
pub(crate) type Render = fn(&Library, &MediaEvent) -> Bytes;

/// The running hooks, for `/api/status`.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    pub webhooks: Vec<(String, Webhook)>,
    pub command: Option<CommandHook>,
}

/// Checks the hook options, so that a typo stops start-up instead of failing every event.
pub(crate) fn check(config: &Config) -> anyhow::Result<()> {
    for url in &config.webhooks {
        if let Err(e) = webhook::check_url(url) {
            bail!("--webhook {url}: {e}");
        }
    }
    if let Some(program) = &config.on_new_media
        && let Err(e) = command::check_program(program)
    {
        bail!("--on-new-media: {e}");
    }
    Ok(())
}

/// Starts the hooks the config names (inside the runtime) and the task that feeds them.
pub(crate) fn start(lib: &Arc<Library>, config: &Config, render: Render) -> anyhow::Result<Arc<Hooks>> {
    let mut hooks = Hooks::default();
    for url in &config.webhooks {
        let mut opts = WebhookOpts::new(url.clone());
        opts.secret = config.webhook_secret.as_ref().map(|s| s.as_bytes().to_vec());
        let hook = Webhook::spawn(opts).map_err(|e| anyhow::anyhow!("--webhook {url}: {e}"))?;
        hooks.webhooks.push((url.clone(), hook));
    }
    if let Some(program) = &config.on_new_media {
        let mut opts = CommandOpts::new(program.clone());
        opts.timeout = config.hook_timeout;
        opts.concurrency = config.hook_concurrency;
        hooks.command = Some(CommandHook::spawn(opts).map_err(|e| anyhow::anyhow!("--on-new-media: {e}"))?);
    }
    let hooks = Arc::new(hooks);
    if !hooks.webhooks.is_empty() || hooks.command.is_some() {
        tracing::info!(webhooks = hooks.webhooks.len(), command = hooks.command.is_some(), "hooks ready");
        tokio::spawn(feed(Arc::clone(lib), lib.subscribe(), Arc::clone(&hooks), render));
    }
    Ok(hooks)
}

async fn feed(
    lib: Arc<Library>,
    mut events: tokio::sync::broadcast::Receiver<Arc<MediaEvent>>,
    hooks: Arc<Hooks>,
    render: Render,
) {
    let mut missed_total = 0u64;
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                missed_total += n;
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_warning = Some(tokio::time::Instant::now());
                    tracing::warn!(
                        missed = missed_total,
                        "too many changes at once: some events were not passed to the hooks"
                    );
                }
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        // Hooks hear about files coming and going; favorites and thumbnails are not news to them.
        if matches!(*event, MediaEvent::Changed(_)) {
            continue;
        }
        if !hooks.webhooks.is_empty() {
            let body = render(&lib, &event);
            for (_, hook) in &hooks.webhooks {
                hook.send(event.name(), body.clone());
            }
        }
        if let (Some(cmd), MediaEvent::Added(item)) = (&hooks.command, &*event) {
            let (path, rel) = {
                let index = lib.read();
                let rel = RelPath { dir: index.dir_of(item), name: &item.name };
                (lib.fs.path_of(rel), String::from_utf8_lossy(&rel.key()).into_owned())
            };
            let env = vec![
                ("SPIS_EVENT".to_owned(), "added".to_owned()),
                ("SPIS_ID".to_owned(), id::encode(item.id())),
                ("SPIS_REL_PATH".to_owned(), rel),
                ("SPIS_KIND".to_owned(), item.kind().as_str().to_owned()),
                ("SPIS_TAKEN".to_owned(), dates::Iso8601(item.taken()).to_string()),
            ];
            cmd.run(path, env);
        }
    }
}
