//! `app_offline.htm` (protocol §2.10): while the file exists in the site root every request
//! gets 503 with its bytes as a `text/html` body.
//!
//! [`AppOffline`] tracks the file; [`crate::application::Application`] polls it on requests
//! (at most every 200 ms) and from a file watcher, and stops the children when it appears.
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
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use ancm_front::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::sync;

/// The file name ANCM looks for in the application's physical root.
pub const FILE_NAME: &str = "app_offline.htm";

/// Files this large cannot be read by ANCM either (served as an empty body).
const MAX_LEN: u64 = 4 * 1024 * 1024 * 1024;

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

/// The offline state of one site and the page to serve while offline.
#[derive(Debug)]
pub struct AppOffline {
    path: PathBuf,
    present: AtomicBool,
    body: RwLock<Bytes>,
}

impl AppOffline {
    /// Tracks `<site_dir>/app_offline.htm`; call [`AppOffline::check`] to read its state.
    pub fn new(site_dir: &Path) -> Self {
        Self {
            path: site_dir.join(FILE_NAME),
            present: AtomicBool::new(false),
            body: RwLock::new(Bytes::new()),
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

    /// Looks at the file now; re-reads the page while it exists.
    pub fn check(&self) -> Change {
        let exists = match std::fs::symlink_metadata(&self.path) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        if exists {
            // Read before publishing the state so the first 503 already has the page.
            let body = self.read_body();
            *sync::write(&self.body) = body;
        }
        let was = self.present.swap(exists, Ordering::AcqRel);
        match (was, exists) {
            (false, true) => Change::WentOffline,
            (true, false) => Change::CameOnline,
            _ => Change::None,
        }
    }

    fn read_body(&self) -> Bytes {
        let too_big = std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= MAX_LEN);
        if too_big {
            tracing::warn!(file = %self.path.display(), "app_offline.htm is too large to serve; using an empty body");
            return Bytes::new();
        }
        match std::fs::read(&self.path) {
            Ok(b) => Bytes::from(b),
            Err(error) => {
                // A locked or unreadable file still means offline, with an empty body.
                tracing::debug!(file = %self.path.display(), %error, "could not read app_offline.htm; serving an empty body");
                Bytes::new()
            }
        }
    }

    /// The 503 response: `Content-Type: text/html` and the file's bytes.
    pub fn response(&self) -> Response<Body> {
        let body = sync::read(&self.body).clone();
        let mut resp = Response::new(Body::full(body));
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        resp
    }
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
