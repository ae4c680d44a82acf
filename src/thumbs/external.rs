//! External decoders for what pure Rust cannot decode: HEIC/HEIF/AVIF (libheif's `heif-convert`
//! or `heif-dec`) and video poster frames (`ffmpeg`).
//!
//! Each runs as a subprocess with a fixed argument list (never a shell), its output written to a
//! temp file in the cache, and a time limit after which it is killed. The rule: a missing,
//! failing or slow tool costs a placeholder and one log line, never a stalled worker.
//!
//! SECURITY: a tool never gets a path below the media folder to resolve itself (a folder swapped
//! for a link would lead it outside): it gets the file spis opened beneath the root as its
//! standard input, and the name [`INPUT`], which reopens exactly that file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the tools are told to read: their own standard input, reopened as a seekable file
/// (MP4's index may be at its end), not a pipe.
const INPUT: &str = "/proc/self/fd/0";

/// The tools found on `PATH` at start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tools {
    pub heif: Option<PathBuf>,
    pub ffmpeg: Option<PathBuf>,
}

impl Tools {
    /// Looks for the tools once; spis does not notice tools installed while it runs.
    pub(crate) fn find() -> Tools {
        Tools {
            heif: find_on_path("heif-dec").or_else(|| find_on_path("heif-convert")),
            ffmpeg: find_on_path("ffmpeg"),
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Decodes a HEIF/AVIF file to a JPEG (quality 92, orientation applied by libheif) at `out`.
pub(crate) fn heif_to_jpeg(tool: &Path, input: File, out: &Path, limit: Duration) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(tool);
    cmd.args(["-q", "92", INPUT]).arg(out);
    run(cmd, input, out, limit)
}

/// The frame one second into a video (or its first frame, for shorter ones) as a JPEG at `out`.
pub(crate) fn video_poster(
    ffmpeg: &Path,
    input: File,
    out: &Path,
    limit: Duration,
) -> Result<Vec<u8>, String> {
    let attempt = |seek: &str| {
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-ss", seek, "-i", INPUT])
            // Square pixels and at most 1600 px wide: the pipeline never needs more.
            .args(["-frames:v", "1", "-vf", "scale='min(1600,iw)':-2", "-q:v", "3", "-f", "image2"])
            .arg(out);
        run(cmd, input.try_clone().map_err(|e| e.to_string())?, out, limit)
    };
    attempt("1").or_else(|_| attempt("0"))
}

/// Runs a tool to completion within `limit` (killed after it) and reads the file it wrote.
fn run(mut cmd: Command, input: File, out: &Path, limit: Duration) -> Result<Vec<u8>, String> {
    let _ = std::fs::remove_file(out);
    let mut child = cmd
        .stdin(Stdio::from(input))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{:?} took longer than {limit:?}", cmd.get_program()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let bytes = std::fs::read(out).ok().filter(|b| !b.is_empty());
    let _ = std::fs::remove_file(out);
    match bytes {
        Some(b) if status.success() => Ok(b),
        _ => {
            use std::io::Read as _;
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.by_ref().take(4096).read_to_string(&mut err);
            }
            Err(format!("{:?} failed ({status}): {}", cmd.get_program(), err.trim()))
        }
    }
}
