//! `app_offline.htm` (protocol §2.10): while the file exists in the site root every request
//! gets 503 with its bytes as a `text/html` body.
//!
//! [`AppOffline`] tracks the file; [`crate::application::Application`] checks it on requests
//! (at most every 200 ms) and from a file watcher, always off the async runtime's threads
//! ([`AppOffline::check`] does blocking file I/O), and stops the children when it appears.
//!
//! ```
//! use ancm_hosting::app_offline::{AppOffline, Change};
//! let site = tempfile::tempdir().unwrap();
//! let offline = AppOffline::new(site.path());
//! assert_eq!(offline.check(), Change::None);
//! std::fs::write(site.path().join("app_offline.htm"), "<p>back soon</p>").unwrap();
//! assert_eq!(offline.check(), Change::WentOffline);
//! let resp = offline.response();
//! assert_eq!(resp.status(), 503);
//! assert_eq!(resp.headers()["content-type"], "text/html");
//! ```
//!
//! # Where ancm-rs deliberately differs from ANCM (protocol §8.21)
//!
//! * A symbolic link named `app_offline.htm` is followed only to a file inside the site
//!   folder. One that leads outside is not read: a warning is logged and the built-in 503
//!   page is served (the application is offline all the same), so a link cannot publish a
//!   file from elsewhere on the machine.
//! * At most [`MAX_PAGE_BYTES`] (1 MiB) are served. A larger file is not read: a warning is
//!   logged and the built-in 503 page is served (a truncated page would be broken HTML, and
//!   every request would hold a copy of it).
//! * The file is re-read only when its size, modification time or identity (inode) changed,
//!   or, for a link, its target's.
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use ancm_front::Body;
use ancm_front::error_page::ErrorPage;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::file_stamp::FileStamp;
use crate::sync;

/// The file name ANCM looks for in the application's physical root.
pub const FILE_NAME: &str = "app_offline.htm";

/// The largest page served; a larger file gets the built-in 503 page.
pub const MAX_PAGE_BYTES: u64 = 1024 * 1024;

/// What a [`AppOffline::check`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Same state as before.
    None,
    /// The file appeared.
    WentOffline,
    /// The file disappeared.
    CameOnline,
}

/// The page served while offline.
#[derive(Debug)]
enum Page {
    /// The file's bytes.
    File(Bytes),
    /// The file could not be served (a link leading outside the site, too large).
    BuiltIn,
}

/// What the file looked like when it was last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    /// The directory entry itself.
    entry: FileStamp,
    /// The target, when the entry is a symbolic link.
    target: Option<FileStamp>,
}

#[derive(Debug)]
struct Served {
    /// `None` when the file could not be looked at: read again at the next check.
    stamp: Option<Stamp>,
    page: Page,
}

/// The offline state of one site and the page to serve while offline.
#[derive(Debug)]
pub struct AppOffline {
    path: PathBuf,
    /// The site folder with symbolic links resolved: a link's target must be inside it.
    root: PathBuf,
    present: AtomicBool,
    served: RwLock<Served>,
}

impl AppOffline {
    /// Tracks `<site_dir>/app_offline.htm`; call [`AppOffline::check`] to read its state.
    pub fn new(site_dir: &Path) -> Self {
        Self {
            path: site_dir.join(FILE_NAME),
            root: std::fs::canonicalize(site_dir).unwrap_or_else(|_| site_dir.to_path_buf()),
            present: AtomicBool::new(false),
            served: RwLock::new(Served {
                stamp: None,
                page: Page::File(Bytes::new()),
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file was present at the last check.
    pub fn is_offline(&self) -> bool {
        self.present.load(Ordering::Acquire)
    }

    /// Looks at the file now, re-reading the page when the file changed since it was last
    /// read. Blocking file I/O: call it off the async runtime's threads.
    pub fn check(&self) -> Change {
        let entry = std::fs::symlink_metadata(&self.path);
        let exists = match &entry {
            Ok(_) => true,
            // A file that exists but cannot be looked at still takes the application offline.
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        if exists {
            let is_link = entry.as_ref().is_ok_and(|m| m.file_type().is_symlink());
            let stamp = entry.ok().map(|m| Stamp {
                entry: FileStamp::of(&m),
                target: is_link.then(|| FileStamp::read(&self.path)).flatten(),
            });
            let unchanged = stamp.is_some() && sync::read(&self.served).stamp == stamp;
            if !unchanged {
                // Read before publishing the state so the first 503 already has the page.
                let page = self.load(is_link);
                *sync::write(&self.served) = Served { stamp, page };
            }
        }
        let was = self.present.swap(exists, Ordering::AcqRel);
        match (was, exists) {
            (false, true) => Change::WentOffline,
            (true, false) => Change::CameOnline,
            _ => Change::None,
        }
    }

    /// Reads the page; a link is followed only to a file inside the site folder.
    fn load(&self, is_link: bool) -> Page {
        let file = if is_link {
            match std::fs::canonicalize(&self.path) {
                Ok(target) if target.starts_with(&self.root) => target,
                Ok(target) => {
                    tracing::warn!(file = %self.path.display(), target = %target.display(), "app_offline.htm is a symbolic link to a file outside the site folder; not following it, serving the built-in 503 page");
                    return Page::BuiltIn;
                }
                Err(error) => {
                    tracing::debug!(file = %self.path.display(), %error, "app_offline.htm is a symbolic link that cannot be resolved; serving an empty body");
                    return Page::File(Bytes::new());
                }
            }
        } else {
            self.path.clone()
        };
        match read_limited(&file) {
            Ok(Some(bytes)) => Page::File(bytes),
            Ok(None) => {
                tracing::warn!(file = %self.path.display(), limit = MAX_PAGE_BYTES, "app_offline.htm is larger than the limit; serving the built-in 503 page");
                Page::BuiltIn
            }
            Err(error) => {
                // A locked or unreadable file still means offline, with an empty body.
                tracing::debug!(file = %self.path.display(), %error, "could not read app_offline.htm; serving an empty body");
                Page::File(Bytes::new())
            }
        }
    }

    /// The 503 response: `Content-Type: text/html` and the file's bytes, or the built-in
    /// page when the file could not be served.
    pub fn response(&self) -> Response<Body> {
        let body = match &sync::read(&self.served).page {
            Page::File(bytes) => bytes.clone(),
            Page::BuiltIn => {
                return ErrorPage::new(StatusCode::SERVICE_UNAVAILABLE, 0, "Application Offline")
                    .into_response();
            }
        };
        let mut resp = Response::new(Body::full(body));
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        resp
    }
}

/// Reads at most [`MAX_PAGE_BYTES`] of `path`, without following a symbolic link in its last
/// component (Unix); `None` when the file is larger.
fn read_limited(path: &Path) -> std::io::Result<Option<Bytes>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // O_NONBLOCK: a FIFO of that name must not hang the checking thread in open().
        options.custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK);
    }
    let mut bytes = Vec::new();
    options
        .open(path)?
        .take(MAX_PAGE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PAGE_BYTES {
        return Ok(None);
    }
    Ok(Some(Bytes::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_and_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = AppOffline::new(dir.path());
        assert_eq!(o.check(), Change::None);
        assert!(!o.is_offline());
        std::fs::write(o.path(), b"").expect("write");
        assert_eq!(o.check(), Change::WentOffline);
        assert!(o.is_offline());
        assert_eq!(o.check(), Change::None);
        std::fs::write(o.path(), b"v2").expect("write");
        o.check();
        let resp = o.response();
        assert_eq!(resp.status(), 503);
        std::fs::remove_file(o.path()).expect("remove");
        assert_eq!(o.check(), Change::CameOnline);
        assert!(!o.is_offline());
    }

    fn body_of(o: &AppOffline) -> Bytes {
        use http_body_util::BodyExt as _;
        let body = o.response().into_body().collect();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(body)
            .expect("body")
            .to_bytes()
    }

    #[test]
    fn the_page_is_read_again_only_when_the_file_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = AppOffline::new(dir.path());
        std::fs::write(o.path(), b"aaaa").expect("write");
        assert_eq!(o.check(), Change::WentOffline);
        assert_eq!(body_of(&o), "aaaa");
        // Other bytes, same size, same modification time, same inode: not read again.
        let modified = std::fs::metadata(o.path())
            .and_then(|m| m.modified())
            .expect("mtime");
        std::fs::write(o.path(), b"bbbb").expect("write");
        std::fs::File::options()
            .write(true)
            .open(o.path())
            .and_then(|f| f.set_modified(modified))
            .expect("set mtime");
        assert_eq!(o.check(), Change::None);
        assert_eq!(body_of(&o), "aaaa");
        // A change of size is seen.
        std::fs::write(o.path(), b"ccccc").expect("write");
        o.check();
        assert_eq!(body_of(&o), "ccccc");
    }

    #[test]
    fn a_directory_named_like_the_file_counts_and_serves_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(FILE_NAME)).expect("mkdir");
        let o = AppOffline::new(dir.path());
        assert_eq!(o.check(), Change::WentOffline);
        use http_body::Body as _;
        assert!(o.response().body().is_end_stream());
    }
}
