//! The child's stdout/stderr (protocol §2.11): a log file per start, or the first 30 000
//! characters kept for the startup-failure report while the rest is drained.
//!
//! The log file is opened for appending, never truncated (two starts in the same second
//! share a name; ANCM overwrites), without following a symbolic link in its last component,
//! and created with mode 0640 on Unix, before the umask (protocol §8.22). A `stdoutLogFile`
//! that resolves outside the site folder is allowed, as in IIS, with a warning.
//!
//! Retention, which ANCM does not have ([`StdoutLogRetention`], protocol §8.22): with a
//! file count, creating a log file removes the oldest of the application's log files
//! beyond it; with a size, the child's output goes through a pipe to the gateway, which
//! starts a new timestamped file before one would grow past the size. Without a size the
//! child writes to its file directly, as before.
use std::fs::File;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::command;
use crate::sync;

/// How much output is kept for the startup-failure report.
pub(crate) const CAPTURE_LIMIT: usize = 30_000;

/// How many `stdoutLogFile` files an application keeps, and how large each may grow: an
/// ancm-rs addition (ANCM keeps every file, whole). `ancm run` sets it with
/// `--stdout-log-max-files` and `--stdout-log-max-bytes`; web.config's handler settings
/// `stdoutLogMaxFiles` and `stdoutLogMaxBytes` (ancm-rs names, which ANCM ignores) win for
/// their application. Default: neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StdoutLogRetention {
    /// Keep at most this many of the application's log files: creating one removes the
    /// oldest beyond it (by the time in their names, then their modification time).
    pub max_files: Option<NonZeroUsize>,
    /// Start a new file (named with the current time) before one would grow past this many
    /// bytes. The output then goes through the gateway instead of straight to the file.
    pub max_bytes: Option<u64>,
}

impl StdoutLogRetention {
    /// The handler setting that overrides [`max_files`](Self::max_files).
    pub const MAX_FILES_SETTING: &str = "stdoutLogMaxFiles";
    /// The handler setting that overrides [`max_bytes`](Self::max_bytes).
    pub const MAX_BYTES_SETTING: &str = "stdoutLogMaxBytes";

    /// Keep at most `max` files.
    pub fn max_files(mut self, max: NonZeroUsize) -> Self {
        self.max_files = Some(max);
        self
    }

    /// Cap each file at `max` bytes (at least 1).
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = Some(max.max(1));
        self
    }

    /// These settings with web.config's handler settings in their place where they are set
    /// to a positive whole number; other values are ignored with a warning.
    pub(crate) fn with_handler_settings(self, setting: &dyn Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str| -> Option<u64> {
            let raw = setting(name)?;
            match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!(setting = name, value = %raw, "ignoring a handler setting that is not a positive whole number");
                    None
                }
            }
        };
        let mut out = self;
        if let Some(n) = read(Self::MAX_FILES_SETTING) {
            out.max_files = NonZeroUsize::new(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(n) = read(Self::MAX_BYTES_SETTING) {
            out.max_bytes = Some(n);
        }
        out
    }
}

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
        /// How many files are kept and how large they grow.
        retention: StdoutLogRetention,
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

/// The stdio of one start.
pub(crate) struct ChildStdio {
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
    /// The log file of this start, if any.
    pub(crate) log_file: Option<PathBuf>,
    /// The log the pipes go to, when the output is size-capped.
    pub(crate) rotating: Option<Arc<RotatingLog>>,
}

/// The stdio for one start.
pub(crate) fn stdio_for(mode: &OutputMode, site_dir: &std::path::Path) -> ChildStdio {
    let plain = |stdout, stderr, log_file| ChildStdio {
        stdout,
        stderr,
        log_file,
        rotating: None,
    };
    match mode {
        OutputMode::Null => plain(Stdio::null(), Stdio::null(), None),
        OutputMode::Capture => plain(Stdio::piped(), Stdio::piped(), None),
        OutputMode::File { base, retention } => {
            let pid = std::process::id();
            let path = stdout_log_path(base, site_dir, SystemTime::now(), pid);
            match open_log_file(&path) {
                Ok(file) => {
                    warn_if_outside(&path, site_dir);
                    tracing::info!(file = %path.display(), "child stdout/stderr log file created");
                    prune(&path, retention.max_files);
                    match retention.max_bytes {
                        Some(max_bytes) => {
                            let log = RotatingLog::new(
                                file,
                                path.clone(),
                                base,
                                site_dir,
                                *retention,
                                max_bytes,
                            );
                            ChildStdio {
                                stdout: Stdio::piped(),
                                stderr: Stdio::piped(),
                                log_file: Some(path),
                                rotating: Some(Arc::new(log)),
                            }
                        }
                        None => match file.try_clone() {
                            Ok(dup) => plain(Stdio::from(file), Stdio::from(dup), Some(path)),
                            Err(error) => {
                                tracing::warn!(file = %path.display(), %error, "could not share stdoutLogFile between stdout and stderr; starting the child without it");
                                plain(Stdio::null(), Stdio::null(), None)
                            }
                        },
                    }
                }
                Err(error) => {
                    // ANCM starts the child anyway, without stdout (protocol §2.11).
                    tracing::warn!(file = %path.display(), %error, "could not create stdoutLogFile; starting the child without it");
                    plain(Stdio::null(), Stdio::null(), None)
                }
            }
        }
    }
}

/// Opens a log file: created if missing (with its folders), appended to if not, never
/// through a symbolic link in its last component, mode 0640 (Unix).
fn open_log_file(path: &Path) -> std::io::Result<File> {
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
    options.open(path)
}

/// A size-capped log: the child's pipes are copied into it, and it moves on to a new
/// timestamped file before the current one would grow past the cap.
#[derive(Debug)]
pub(crate) struct RotatingLog {
    current: Mutex<Current>,
    /// `stdoutLogFile` as configured (expanded), and the site it is resolved against.
    base: String,
    site_dir: PathBuf,
    retention: StdoutLogRetention,
    max_bytes: u64,
}

#[derive(Debug)]
struct Current {
    file: File,
    path: PathBuf,
    written: u64,
    /// Files started within the same second as the current one (their names get `_N`).
    same_second: u32,
    /// A failed rotation was reported: the next one is not, until one succeeds.
    warned: bool,
}

impl RotatingLog {
    fn new(
        file: File,
        path: PathBuf,
        base: &str,
        site_dir: &Path,
        retention: StdoutLogRetention,
        max_bytes: u64,
    ) -> Self {
        // Appending to a file of a start in the same second: count what it has.
        let written = file.metadata().map_or(0, |m| m.len());
        Self {
            current: Mutex::new(Current {
                file,
                path,
                written,
                same_second: 0,
                warned: false,
            }),
            base: base.to_owned(),
            site_dir: site_dir.to_path_buf(),
            retention,
            max_bytes,
        }
    }

    /// Copies `pipe` into the log until it ends, on a task of the runtime.
    pub(crate) fn drain<R: AsyncRead + Unpin + Send + 'static>(self: &Arc<Self>, mut pipe: R) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                match pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => this.write(&buf[..n]),
                }
            }
        });
    }

    /// Appends `bytes`, moving on to a new file before the current one would grow past the
    /// cap. What does not fit is cut after its last whole line that does; a line longer
    /// than the cap is cut at the cap.
    fn write(&self, mut bytes: &[u8]) {
        let mut current = sync::lock(&self.current);
        while !bytes.is_empty() {
            let room = usize::try_from(self.max_bytes.saturating_sub(current.written))
                .unwrap_or(usize::MAX);
            let take = if bytes.len() <= room {
                bytes.len()
            } else {
                match bytes[..room].iter().rposition(|&b| b == b'\n') {
                    Some(newline) => newline + 1,
                    None if current.written > 0 => {
                        self.rotate(&mut current);
                        continue;
                    }
                    None => room.max(1),
                }
            };
            let (now, rest) = bytes.split_at(take);
            if let Err(error) = current.file.write_all(now) {
                tracing::debug!(file = %current.path.display(), %error, "cannot write the child's output to its log file");
            }
            current.written = current
                .written
                .saturating_add(u64::try_from(take).unwrap_or(u64::MAX));
            bytes = rest;
            if !bytes.is_empty() {
                self.rotate(&mut current);
            }
        }
    }

    /// Opens its file again by name (after logrotate moved it away: a new file is created
    /// at the same path); on failure keeps the open one.
    pub(crate) fn reopen(&self) {
        let mut current = sync::lock(&self.current);
        match open_log_file(&current.path) {
            Ok(file) => {
                current.written = file.metadata().map_or(0, |m| m.len());
                current.file = file;
                tracing::info!(file = %current.path.display(), "child stdout/stderr log file opened again");
            }
            Err(error) => {
                tracing::warn!(file = %current.path.display(), %error, "could not open the child's log file again; writing on in the open one");
            }
        }
    }

    /// Moves on to a new file named with the current time; on failure keeps the current one
    /// (output is never dropped for want of a new file).
    fn rotate(&self, current: &mut Current) {
        let pid = std::process::id();
        let mut path = stdout_log_path(&self.base, &self.site_dir, SystemTime::now(), pid);
        if path == current.path || same_second_name(&current.path, &path) {
            current.same_second += 1;
            path = numbered(&path, current.same_second);
        } else {
            current.same_second = 0;
        }
        match open_log_file(&path) {
            Ok(file) => {
                tracing::info!(file = %path.display(), previous = %current.path.display(), max_bytes = self.max_bytes, "child stdout/stderr log file full; continuing in a new one");
                current.written = file.metadata().map_or(0, |m| m.len());
                current.file = file;
                current.path = path;
                current.warned = false;
                prune(&current.path, self.retention.max_files);
            }
            Err(error) => {
                if !current.warned {
                    current.warned = true;
                    tracing::warn!(file = %path.display(), %error, "could not start a new stdoutLogFile; writing on in the full one");
                }
                // Go on in the current file until the next cap's worth.
                current.written = 0;
            }
        }
    }
}

/// Whether `numbered` is `plain` with a `_N` before `.log` (a file of the same second).
fn same_second_name(numbered: &Path, plain: &Path) -> bool {
    let (Some(numbered), Some(plain)) = (
        numbered.file_name().and_then(|n| n.to_str()),
        plain.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    let Some(stem) = plain.strip_suffix(".log") else {
        return false;
    };
    numbered
        .strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|rest| rest.strip_suffix(".log"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `…_<stamp>_<pid>.log` → `…_<stamp>_<pid>_<n>.log`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    if let Some(text) = path.to_str().and_then(|t| t.strip_suffix(".log")) {
        name = format!("{text}_{n}.log").into();
    }
    PathBuf::from(name)
}

/// Removes the oldest log files of the same `stdoutLogFile` as `newest` beyond `keep`: the
/// files in its folder named `<base>_<yyyyMMddHHmmss>_<pid>[_<n>].log`, ordered by the
/// time in their names, then their modification time. Blocking (reads the folder).
fn prune(newest: &Path, keep: Option<NonZeroUsize>) {
    let Some(keep) = keep else {
        return;
    };
    let (Some(folder), Some(prefix)) = (newest.parent(), log_prefix(newest)) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut logs: Vec<((String, u64), SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let key = log_key(&name, &prefix)?;
            // A link or folder with a log's name is not ours to remove.
            let meta = entry.path().symlink_metadata().ok()?;
            meta.is_file().then(|| {
                (
                    key,
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    entry.path(),
                )
            })
        })
        .collect();
    if logs.len() <= keep.get() {
        return;
    }
    logs.sort();
    let excess = logs.len() - keep.get();
    for (_, _, path) in logs.into_iter().take(excess) {
        if path == newest {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), keep = keep.get(), "removed an old stdoutLogFile")
            }
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "could not remove an old stdoutLogFile")
            }
        }
    }
}

/// `<base>_` of a log file's name (everything before its `_<stamp>_<pid>…`).
fn log_prefix(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    // `<base>_<stamp>_<pid>` or `<base>_<stamp>_<pid>_<n>`: the stamp is the 14 digits
    // after the last `_` that is followed by exactly 14 digits and another `_`.
    let bytes = name.as_bytes();
    (0..bytes.len())
        .rev()
        .filter(|&i| bytes[i] == b'_')
        .find(|&i| {
            bytes.len() > i + 15
                && bytes[i + 1..i + 15].iter().all(u8::is_ascii_digit)
                && bytes[i + 15] == b'_'
        })
        .map(|i| name[..=i].to_owned())
}

/// The sort key of `name` when it is a log file of `prefix`: the time in its name and its
/// number within that second (0 without one).
fn log_key(name: &str, prefix: &str) -> Option<(String, u64)> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(".log")?;
    let (stamp, tail) = rest.split_at_checked(14)?;
    let tail = tail.strip_prefix('_')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(stamp) {
        return None;
    }
    let n = match tail.split_once('_') {
        Some((pid, n)) if digits(pid) && digits(n) => n.parse().ok()?,
        None if digits(tail) => 0,
        _ => return None,
    };
    Some((stamp.to_owned(), n))
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
    let t = time::OffsetDateTime::from(now);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
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
        let path = stdio_for(
            &OutputMode::File {
                base: r".\logs\deep\stdout".into(),
                retention: StdoutLogRetention::default(),
            },
            dir.path(),
        )
        .log_file;
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
        let path = stdio_for(
            &OutputMode::File {
                base: "blocker/sub/stdout".into(),
                retention: StdoutLogRetention::default(),
            },
            dir.path(),
        )
        .log_file;
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
        assert!(open_log_file(&planted).is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");

        // An existing file (a second start in the same second) is appended to.
        let existing = site.path().join("stdout_same_second.log");
        std::fs::write(&existing, b"first start\n").expect("write");
        let file = open_log_file(&existing).expect("open");
        drop(file);
        assert_eq!(std::fs::read(&existing).expect("read"), b"first start\n");

        // A new file: owner read/write, group read at most, nothing for others.
        let fresh = site.path().join("stdout_new.log");
        open_log_file(&fresh).expect("open");
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

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn log_names_are_recognised_and_ordered() {
        let p = Path::new("/site/logs/stdout_20240102030405_4242.log");
        let prefix = log_prefix(p).expect("a log name");
        assert_eq!(prefix, "stdout_");
        assert_eq!(
            log_key("stdout_20240102030405_4242.log", &prefix),
            Some(("20240102030405".into(), 0))
        );
        assert_eq!(
            log_key("stdout_20240102030405_4242_10.log", &prefix),
            Some(("20240102030405".into(), 10))
        );
        for other in [
            "stdout_2024010203040_4242.log",
            "stdout_20240102030405_.log",
            "stdout_20240102030405_42x.log",
            "stdout_20240102030405_4242.txt",
            "other_20240102030405_4242.log",
            "stdout_x_20240102030405_4242.log",
        ] {
            assert_eq!(log_key(other, &prefix), None, "{other}");
        }
        // A base with underscores and digits of its own.
        let odd = Path::new("/l/my_app_20240101_20240102030405_7_2.log");
        assert_eq!(log_prefix(odd).as_deref(), Some("my_app_20240101_"));
        assert!(same_second_name(
            Path::new("/l/stdout_20240102030405_7_3.log"),
            Path::new("/l/stdout_20240102030405_7.log")
        ));
        assert_eq!(
            numbered(Path::new("/l/stdout_20240102030405_7.log"), 2),
            PathBuf::from("/l/stdout_20240102030405_7_2.log")
        );
    }

    #[test]
    fn pruning_keeps_the_newest_files_of_the_same_base_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "stdout_20240101000000_1.log",
            "stdout_20240102000000_1.log",
            "stdout_20240102000000_1_2.log",
            "stdout_20240102000000_1_10.log",
            "stdout_20240103000000_1.log",
            "other_20240101000000_1.log",
            "stdout_notes.log",
        ] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        prune(
            &dir.path().join("stdout_20240103000000_1.log"),
            NonZeroUsize::new(3),
        );
        assert_eq!(
            names(dir.path()),
            [
                "other_20240101000000_1.log",
                "stdout_20240102000000_1_10.log",
                "stdout_20240102000000_1_2.log",
                "stdout_20240103000000_1.log",
                "stdout_notes.log",
            ]
        );
    }

    #[test]
    fn a_capped_log_moves_on_to_new_files_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let retention = StdoutLogRetention::default()
            .max_bytes(10)
            .max_files(NonZeroUsize::new(2).expect("2"));
        let stdio = stdio_for(
            &OutputMode::File {
                base: "logs/stdout".into(),
                retention,
            },
            dir.path(),
        );
        let log = stdio
            .rotating
            .expect("size-capped output goes through the gateway");
        log.write(b"0123456\n");
        log.write(b"abcdefgh\n");
        log.write(&[b'z'; 25]);
        let logs = dir.path().join("logs");
        let files = names(&logs);
        // 9 + 9 + 25 bytes at 10 per file: four files, the newest two kept.
        assert_eq!(files.len(), 2, "{files:?}");
        let sizes: Vec<u64> = files
            .iter()
            .map(|f| std::fs::metadata(logs.join(f)).expect("metadata").len())
            .collect();
        assert!(sizes.iter().all(|&s| s <= 10), "{files:?} {sizes:?}");
        let text: String = files
            .iter()
            .map(|f| std::fs::read_to_string(logs.join(f)).expect("read"))
            .collect();
        assert!(text.ends_with(&"z".repeat(15)), "{text:?}");
    }

    #[test]
    fn lines_stay_whole_across_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stdio = stdio_for(
            &OutputMode::File {
                base: "stdout".into(),
                retention: StdoutLogRetention::default().max_bytes(12),
            },
            dir.path(),
        );
        let log = stdio.rotating.expect("capped");
        // One read of the pipe with several lines: cut after the last line that fits.
        log.write(b"aaaa\nbbbb\ncccc\ndddd\n");
        let texts: Vec<String> = names(dir.path())
            .iter()
            .map(|f| std::fs::read_to_string(dir.path().join(f)).expect("read"))
            .collect();
        assert_eq!(texts, ["aaaa\nbbbb\n", "cccc\ndddd\n"]);
    }

    #[test]
    fn handler_settings_override_positive_numbers_only() {
        let base = StdoutLogRetention::default().max_bytes(100);
        let settings = |name: &str| match name {
            "stdoutLogMaxFiles" => Some(" 5 ".to_owned()),
            "stdoutLogMaxBytes" => Some("lots".to_owned()),
            _ => None,
        };
        let r = base.with_handler_settings(&settings);
        assert_eq!(r.max_files, NonZeroUsize::new(5));
        assert_eq!(r.max_bytes, Some(100));
        let zero = |_: &str| Some("0".to_owned());
        assert_eq!(base.with_handler_settings(&zero), base);
    }
}
