//! The child's stdout/stderr (protocol §2.11): a log file per start, or the first 30 000
//! characters kept for the startup-failure report while the rest is drained.
//!
//! The log file is opened for appending, never truncated (two starts in the same second
//! share a name; ANCM overwrites), without following a symbolic link in its last component,
//! and created with mode 0640 on Unix, before the umask (protocol §8.22). A `stdoutLogFile`
//! that resolves outside the site folder is allowed, as in IIS, with a warning.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::command;
use crate::sync;

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
        sync::lock(&self.0).clone()
    }

    fn push(&self, bytes: &[u8]) -> bool {
        let mut s = sync::lock(&self.0);
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
            let path = stdout_log_path(
                base,
                site_dir,
                std::time::SystemTime::now(),
                std::process::id(),
            );
            match open_log(&path) {
                Ok((out, err)) => {
                    warn_if_outside(&path, site_dir);
                    tracing::info!(file = %path.display(), "child stdout/stderr log file created");
                    (out, err, Some(path))
                }
                Err(error) => {
                    // ANCM starts the child anyway, without stdout (protocol §2.11).
                    tracing::warn!(file = %path.display(), %error, "could not create stdoutLogFile; starting the child without it");
                    (Stdio::null(), Stdio::null(), None)
                }
            }
        }
    }
}

/// Opens the log file: created if missing (with its folders), appended to if not, never
/// through a symbolic link in its last component, mode 0640 (Unix).
fn open_log(path: &Path) -> std::io::Result<(Stdio, Stdio)> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o640).custom_flags(nix::libc::O_NOFOLLOW);
    }
    let file = options.open(path)?;
    let dup = file.try_clone()?;
    Ok((Stdio::from(file), Stdio::from(dup)))
}

/// Warns when the log file's folder, with links resolved, is outside the site folder: IIS
/// allows it, and so do we, but it may not be what was meant.
fn warn_if_outside(path: &Path, site_dir: &Path) {
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let folder = path.parent().map(resolve);
    if folder.is_some_and(|folder| !folder.starts_with(resolve(site_dir))) {
        tracing::warn!(file = %path.display(), site = %site_dir.display(), "stdoutLogFile is outside the site folder");
    }
}

/// `stdoutLogFile` resolved against the site folder, plus `_<UTC yyyyMMddHHmmss>_<pid>.log`.
pub(crate) fn stdout_log_path(
    stdout_log_file: &str,
    site_dir: &Path,
    now: std::time::SystemTime,
    pid: u32,
) -> PathBuf {
    let native = command::native_separators(stdout_log_file);
    let base = command::normalise(&site_dir.join(native));
    let mut name = base.into_os_string();
    name.push(format!("_{}_{pid}.log", utc_stamp(now)));
    PathBuf::from(name)
}

/// `yyyyMMddHHmmss` in UTC.
pub(crate) fn utc_stamp(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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

    #[cfg(unix)]
    #[test]
    fn log_file_is_appended_to_never_through_a_link_and_not_world_readable() {
        use std::os::unix::fs::PermissionsExt as _;
        let site = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");

        // A link planted at the log file's name is not followed; its target is untouched.
        let target = elsewhere.path().join("precious");
        std::fs::write(&target, b"keep me").expect("write");
        let planted = site.path().join("stdout_link.log");
        std::os::unix::fs::symlink(&target, &planted).expect("symlink");
        assert!(open_log(&planted).is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");

        // An existing file (a second start in the same second) is appended to.
        let existing = site.path().join("stdout_same_second.log");
        std::fs::write(&existing, b"first start\n").expect("write");
        let (out, _err) = open_log(&existing).expect("open");
        drop(out);
        assert_eq!(std::fs::read(&existing).expect("read"), b"first start\n");

        // A new file: owner read/write, group read at most, nothing for others.
        let fresh = site.path().join("stdout_new.log");
        open_log(&fresh).expect("open");
        let mode = std::fs::metadata(&fresh)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777 & !0o640, 0, "mode {mode:o}");
    }

    #[test]
    fn stdout_names() {
        let t = UNIX_EPOCH + Duration::from_secs(1_704_164_645); // 2024-01-02 03:04:05 UTC
        assert_eq!(utc_stamp(t), "20240102030405");
        let p = stdout_log_path(r".\logs\stdout", Path::new("/site"), t, 4242);
        if cfg!(windows) {
            assert!(
                p.to_string_lossy()
                    .ends_with(r"logs\stdout_20240102030405_4242.log")
            );
        } else {
            assert_eq!(
                p,
                PathBuf::from("/site/logs/stdout_20240102030405_4242.log")
            );
        }
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229000000"
        );
    }
}
