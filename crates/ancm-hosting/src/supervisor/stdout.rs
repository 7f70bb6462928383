//! The child's stdout/stderr (contract §2.11): a log file per start, or the first 30 000
//! characters kept for the startup-failure report while the rest is drained.
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// How much output is kept for the startup-failure report.
pub(crate) const CAPTURE_LIMIT: usize = 30_000;

/// Where the child's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutputMode {
    /// `enableOutOfProcessConsoleRedirection=false`: no handles at all.
    Null,
    /// Piped; the first [`CAPTURE_LIMIT`] characters are kept.
    Capture,
    /// A log file per start, named from this base (`stdoutLogFile` resolved against the site).
    File {
        /// `stdoutLogFile` as configured (expanded).
        base: String,
    },
}

/// The first characters the child wrote (shared by the stdout and stderr readers).
#[derive(Debug, Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<String>>);

impl Captured {
    /// The text captured so far.
    pub(crate) fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn push(&self, bytes: &[u8]) -> bool {
        let Ok(mut s) = self.0.lock() else {
            return false;
        };
        let have = s.chars().count();
        if have >= CAPTURE_LIMIT {
            return false;
        }
        let text = String::from_utf8_lossy(bytes);
        s.extend(text.chars().take(CAPTURE_LIMIT - have));
        true
    }

    /// Reads `pipe` to its end, keeping what fits and discarding the rest so the child
    /// never blocks on a full pipe.
    pub(crate) fn drain<R: AsyncRead + Unpin + Send + 'static>(&self, mut pipe: R) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut keep = true;
            loop {
                match pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if keep {
                            keep = this.push(&buf[..n]);
                        }
                    }
                }
            }
        });
    }
}

/// The stdio for one start: `(stdout, stderr, log file path if any)`.
pub(crate) fn stdio_for(
    mode: &OutputMode,
    site_dir: &std::path::Path,
) -> (Stdio, Stdio, Option<PathBuf>) {
    match mode {
        OutputMode::Null => (Stdio::null(), Stdio::null(), None),
        OutputMode::Capture => (Stdio::piped(), Stdio::piped(), None),
        OutputMode::File { base } => {
            let path = super::command::stdout_log_path(
                base,
                site_dir,
                std::time::SystemTime::now(),
                std::process::id(),
            );
            match open_log(&path) {
                Ok((out, err)) => {
                    tracing::info!(file = %path.display(), "child stdout/stderr log file created");
                    (out, err, Some(path))
                }
                Err(error) => {
                    // ANCM starts the child anyway, without stdout (contract §2.11).
                    tracing::warn!(file = %path.display(), %error, "could not create stdoutLogFile; starting the child without it");
                    (Stdio::null(), Stdio::null(), None)
                }
            }
        }
    }
}

fn open_log(path: &std::path::Path) -> std::io::Result<(Stdio, Stdio)> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::File::create(path)?;
    let dup = file.try_clone()?;
    Ok((Stdio::from(file), Stdio::from(dup)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_first_characters() {
        let c = Captured::default();
        assert!(c.push(b"hello "));
        let big = vec![b'x'; CAPTURE_LIMIT];
        assert!(c.push(&big));
        assert!(!c.push(b"more"));
        let t = c.text();
        assert_eq!(t.chars().count(), CAPTURE_LIMIT);
        assert!(t.starts_with("hello x"));
    }

    #[test]
    fn log_file_is_created_with_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, _, path) = stdio_for(
            &OutputMode::File {
                base: r".\logs\deep\stdout".into(),
            },
            dir.path(),
        );
        let path = path.expect("created");
        assert!(path.is_file());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        assert!(
            name.starts_with("stdout_") && name.ends_with(&format!("_{}.log", std::process::id())),
            "{name}"
        );
    }

    #[test]
    fn log_file_failure_still_gives_stdio() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("blocker"), b"").expect("write");
        let (_, _, path) = stdio_for(
            &OutputMode::File {
                base: "blocker/sub/stdout".into(),
            },
            dir.path(),
        );
        assert!(path.is_none());
    }
}
