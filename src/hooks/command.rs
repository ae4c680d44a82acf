//! The "on new media" hook: a program the admin names, run once for each new file with the file's
//! path as its only argument (and in `SPIS_PATH`), plus whatever environment the caller adds.
//!
//! The program runs directly, never through a shell, in its own process group, with a time limit
//! after which the whole group is killed. The rule: a missing, failing, slow or chatty hook costs a
//! log line, never a stalled library or a pile of processes — [`CommandHook::run`] never blocks,
//! a full queue drops the new run, and at most `concurrency` programs run at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::{Semaphore, mpsc};

/// Output kept from each stream; the rest is read and thrown away so the program never blocks on
/// a full pipe.
const OUTPUT_CAP: usize = 64 * 1024;
/// How much of stderr goes into a warning.
const STDERR_IN_LOG: usize = 500;
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// The hook program and its limits; [`CommandOpts::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub(crate) struct CommandOpts {
    pub program: PathBuf,
    pub timeout: Duration,
    /// At least 1 (the config refuses 0): programs run at once.
    pub concurrency: usize,
    /// Runs waiting for a free slot.
    pub queue: usize,
}

impl CommandOpts {
    pub(crate) fn new(program: impl Into<PathBuf>) -> CommandOpts {
        CommandOpts { program: program.into(), timeout: Duration::from_secs(30), concurrency: 2, queue: 1000 }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CommandStats {
    /// Runs taken from the queue, including those whose program then failed to start.
    pub started: u64,
    pub succeeded: u64,
    /// Non-zero exit, killed by a signal, or could not be started.
    pub failed: u64,
    pub timed_out: u64,
    /// Turned away by a full queue.
    pub dropped: u64,
}

/// Checks the hook program at start-up, so that a typo stops spis instead of failing every run.
pub(crate) fn check_program(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("the hook program {} does not exist", p.display()),
        _ => format!("cannot read the hook program {}: {e}", p.display()),
    })?;
    if meta.is_dir() {
        Err(format!("the hook program {} is a directory, not a program", p.display()))
    } else if !meta.is_file() {
        Err(format!("the hook program {} is not a regular file", p.display()))
    } else if meta.permissions().mode() & 0o111 == 0 {
        Err(format!("the hook program {} is not executable (chmod +x it)", p.display()))
    } else {
        Ok(())
    }
}

/// A handle to the hook's dispatcher; it stops once the last clone is dropped and the queue is empty.
#[derive(Clone)]
pub(crate) struct CommandHook {
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    program: PathBuf,
    timeout: Duration,
    capacity: usize,
    last_drop_log: std::sync::Mutex<Option<Instant>>,
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    dropped: AtomicU64,
}

struct Job {
    path: PathBuf,
    env: Vec<(String, String)>,
}

impl CommandHook {
    /// Checks the program and starts the dispatcher; must be called inside a tokio runtime.
    pub(crate) fn spawn(opts: CommandOpts) -> Result<CommandHook, String> {
        check_program(&opts.program)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the command hook must be started inside the tokio runtime".to_string())?;
        // A bare name would be looked up on PATH by `Command`, not where it was checked.
        let program = std::path::absolute(&opts.program)
            .map_err(|e| format!("cannot resolve the hook program {}: {e}", opts.program.display()))?;
        let capacity = opts.queue.max(1);
        let (queue, mut jobs) = mpsc::channel::<Job>(capacity);
        let shared = Arc::new(Shared {
            program,
            timeout: opts.timeout,
            capacity,
            last_drop_log: std::sync::Mutex::new(None),
            started: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let slots = Arc::new(Semaphore::new(opts.concurrency));
        let s = shared.clone();
        runtime.spawn(async move {
            // A slot first, then a job: waiting runs stay in the bounded queue, where `run` sees
            // them, instead of one hiding here.
            while let Ok(slot) = slots.clone().acquire_owned().await {
                let Some(job) = jobs.recv().await else { return };
                let s = s.clone();
                tokio::spawn(async move {
                    s.run_one(job).await;
                    drop(slot);
                });
            }
        });
        Ok(CommandHook { queue, shared })
    }

    /// Queues a run of the program for `path`; when the queue is full this run is dropped.
    pub(crate) fn run(&self, path: PathBuf, env: Vec<(String, String)>) {
        let Err(e) = self.queue.try_send(Job { path, env }) else { return };
        let s = &self.shared;
        let dropped = s.dropped.fetch_add(1, Relaxed) + 1;
        let log = {
            let mut last = s.last_drop_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let log = last.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY);
            if log {
                *last = Some(Instant::now());
            }
            log
        };
        if log {
            let job = e.into_inner();
            tracing::warn!(
                program = %s.program.display(),
                path = %job.path.display(),
                capacity = s.capacity,
                dropped_so_far = dropped,
                "hook queue full: dropping new runs"
            );
        }
    }

    pub(crate) fn stats(&self) -> CommandStats {
        let s = &self.shared;
        CommandStats {
            started: s.started.load(Relaxed),
            succeeded: s.succeeded.load(Relaxed),
            failed: s.failed.load(Relaxed),
            timed_out: s.timed_out.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
        }
    }
}

impl fmt::Debug for CommandHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandHook")
            .field("program", &self.shared.program)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Shared {
    async fn run_one(&self, job: Job) {
        self.started.fetch_add(1, Relaxed);
        let (program, path) = (self.program.display(), job.path.display());
        let began = Instant::now();
        let mut child = match tokio::process::Command::new(&self.program)
            .arg(&job.path)
            .envs(job.env)
            .env("SPIS_PATH", &job.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own group, so a timeout also kills whatever the program started.
            .process_group(0)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                self.failed.fetch_add(1, Relaxed);
                tracing::warn!(%program, %path, error = %e, "cannot start the hook program");
                return;
            }
        };
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let finished = tokio::time::timeout(self.timeout, async {
            tokio::join!(child.wait(), read_capped(stdout), read_capped(stderr))
        })
        .await;
        match finished {
            Err(_) => {
                if let Some(pgid) = pgid {
                    // The group id is still ours: its leader is unreaped, or a member still holds
                    // the pipes we were waiting on. SAFETY: kill(2) touches no memory of ours.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                let _ = child.wait().await;
                self.timed_out.fetch_add(1, Relaxed);
                let timeout = self.timeout;
                tracing::warn!(%program, %path, ?timeout, "hook program took too long; killed it");
            }
            Ok((Err(e), _, _)) => {
                self.failed.fetch_add(1, Relaxed);
                tracing::warn!(%program, %path, error = %e, "cannot wait for the hook program");
            }
            Ok((Ok(status), _, stderr)) if !status.success() => {
                self.failed.fetch_add(1, Relaxed);
                let stderr = summary(&stderr);
                tracing::warn!(%program, %path, %status, %stderr, "hook program failed");
            }
            Ok((Ok(_), stdout, _)) => {
                self.succeeded.fetch_add(1, Relaxed);
                let stdout = summary(&stdout);
                tracing::debug!(%program, %path, elapsed = ?began.elapsed(), %stdout, "hook program ran");
            }
        }
    }
}

/// Reads a whole stream, keeping the first [`OUTPUT_CAP`] bytes.
async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut stream) = stream else { return kept };
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_CAP - kept.len();
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The first lines of some output, on one line and at most [`STDERR_IN_LOG`] bytes.
fn summary(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(&output[..output.len().min(STDERR_IN_LOG * 2)]);
    let mut line = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ");
    if line.len() > STDERR_IN_LOG {
        let mut end = STDERR_IN_LOG;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// Written by a child process: a write descriptor open in this one could leak into a program
    /// another test is forking at that moment and make exec fail with ETXTBSY.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", r#"printf '#!/bin/sh\n%s\n' "$1" > "$2" && chmod 755 "$2""#, "sh", body])
            .arg(&p)
            .status()
            .unwrap();
        assert!(status.success());
        p
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn env(pairs: &[(&str, &Path)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string())).collect()
    }

    #[tokio::test]
    async fn passes_the_path_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let prog = script(dir.path(), "hook", r#"printf '%s\n%s\n%s\n' "$1" "$SPIS_PATH" "$EXTRA" > "$OUT""#);
        let hook = CommandHook::spawn(CommandOpts::new(&prog)).unwrap();
        let path = PathBuf::from(format!(
            "{d}/new photo; touch {d}/pwned1 $(touch {d}/pwned2) `touch {d}/pwned3`.jpg"
        ));
        let out = dir.path().join("out");
        let mut vars = env(&[("OUT", &out)]);
        vars.push(("EXTRA".into(), "a b $HOME".into()));
        hook.run(path.clone(), vars);
        wait_for("the run", || hook.stats().succeeded == 1).await;

        let p = path.to_str().unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{p}\n{p}\na b $HOME\n"));
        for name in ["pwned1", "pwned2", "pwned3"] {
            assert!(!dir.path().join(name).exists(), "{name} exists: the path went through a shell");
        }
        assert_eq!(hook.stats(), CommandStats { started: 1, succeeded: 1, ..CommandStats::default() });
    }

    #[tokio::test]
    async fn counts_a_non_zero_exit_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let prog = script(dir.path(), "hook", "echo 'no such album' >&2\nexit 3");
        let hook = CommandHook::spawn(CommandOpts::new(prog)).unwrap();
        hook.run("/photos/a.jpg".into(), Vec::new());
        wait_for("the failure", || hook.stats().failed == 1).await;
        assert_eq!(hook.stats(), CommandStats { started: 1, failed: 1, ..CommandStats::default() });
    }

    /// Gone, or a zombie waiting for an init that may never reap it.
    fn is_running(pid: i32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        !matches!(state, Some(Some('Z' | 'X')))
    }

    #[tokio::test]
    async fn kills_the_whole_group_on_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let prog = script(dir.path(), "hook", "sleep 30 &\necho $! > \"$PIDFILE\"\nwait");
        let pidfile = dir.path().join("pid");
        let opts = CommandOpts { timeout: Duration::from_millis(300), ..CommandOpts::new(prog) };
        let hook = CommandHook::spawn(opts).unwrap();
        hook.run("/photos/a.jpg".into(), env(&[("PIDFILE", &pidfile)]));
        wait_for("the timeout", || hook.stats().timed_out == 1).await;
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        wait_for("the background sleep to die", || !is_running(pid)).await;
        assert_eq!(hook.stats(), CommandStats { started: 1, timed_out: 1, ..CommandStats::default() });
    }

    #[tokio::test]
    async fn runs_at_most_concurrency_programs_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let body = "start=$(date +%s%N)\nsleep 0.2\necho \"$start $(date +%s%N)\" >> \"$LOG\"";
        let prog = script(dir.path(), "hook", body);
        let log = dir.path().join("log");
        let hook = CommandHook::spawn(CommandOpts { concurrency: 2, ..CommandOpts::new(prog) }).unwrap();
        for i in 0..6 {
            hook.run(format!("/photos/{i}.jpg").into(), env(&[("LOG", &log)]));
        }
        wait_for("six runs", || hook.stats().succeeded == 6).await;

        // +1 at each start, -1 at each end; ends sort before starts at the same instant.
        let mut edges: Vec<(u128, i32)> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .flat_map(|l| {
                let (a, b) = l.split_once(' ').unwrap();
                [(a.parse().unwrap(), 1), (b.parse().unwrap(), -1)]
            })
            .collect();
        assert_eq!(edges.len(), 12);
        edges.sort();
        let most = edges
            .iter()
            .scan(0, |n, (_, d)| {
                *n += d;
                Some(*n)
            })
            .max();
        assert_eq!(most, Some(2));
    }

    #[tokio::test]
    async fn a_full_queue_drops_new_runs() {
        let dir = tempfile::tempdir().unwrap();
        let gate = dir.path().join("gate");
        let prog = script(dir.path(), "hook", "while [ ! -e \"$GATE\" ]; do sleep 0.01; done");
        let hook =
            CommandHook::spawn(CommandOpts { concurrency: 1, queue: 1, ..CommandOpts::new(prog) }).unwrap();
        hook.run("/photos/0.jpg".into(), env(&[("GATE", &gate)]));
        wait_for("the first run", || hook.stats().started == 1).await;
        // Run 0 holds the only slot, run 1 takes the only queue place, 2 and 3 are turned away.
        for i in 1..4 {
            hook.run(format!("/photos/{i}.jpg").into(), env(&[("GATE", &gate)]));
        }
        assert_eq!(hook.stats().dropped, 2);
        std::fs::write(&gate, "").unwrap();
        wait_for("two runs", || hook.stats().succeeded == 2).await;
        assert_eq!(
            hook.stats(),
            CommandStats { started: 2, succeeded: 2, dropped: 2, ..CommandStats::default() }
        );
    }

    #[test]
    fn checks_programs() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(check_program(&missing).unwrap_err().contains("does not exist"));
        assert!(check_program(dir.path()).unwrap_err().contains("is a directory"));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_program(&plain).unwrap_err().contains("not executable"));
        assert_eq!(check_program(&script(dir.path(), "ok", "true")), Ok(()));
        assert!(CommandHook::spawn(CommandOpts::new(missing)).is_err());
    }

    #[test]
    fn summarizes_output_on_one_short_line() {
        assert_eq!(summary(b"\nfirst\n  second  \n\n"), "first | second");
        let long = summary("é".repeat(400).as_bytes());
        assert!(long.len() <= STDERR_IN_LOG + '…'.len_utf8() && long.ends_with('…'));
    }
}
