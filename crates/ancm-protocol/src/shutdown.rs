//! The shutdown event: `POST {app path}/iisintegration` with `MS-ASPNETCORE-EVENT: shutdown`
//! and the pairing token; the backend answers 202 and stops (protocol §2.9, §4.3).
//!
//! ```
//! use ancm_protocol::{shutdown, AppPath};
//! assert_eq!(shutdown::request_path(&AppPath::root()), "/iisintegration");
//! assert_eq!(shutdown::request_path(&AppPath::parse("/sub").unwrap()), "/sub/iisintegration");
//! ```
use crate::AppPath;

/// Path of the shutdown request, after the application's path base.
pub const PATH: &str = "/iisintegration";
/// Value of [`crate::headers::EVENT`] that asks for a shutdown (compared ignoring case).
pub const EVENT_SHUTDOWN: &str = "shutdown";
/// Status the backend answers a shutdown request with.
pub const ACCEPTED: http::StatusCode = http::StatusCode::ACCEPTED;

/// The path the front posts the shutdown event to: the app path is prepended only when it is
/// longer than `/`.
pub fn request_path(app_path: &AppPath) -> String {
    let mut path = String::with_capacity(app_path.as_str().len() + PATH.len());
    if !app_path.is_root() {
        path.push_str(app_path.as_str());
    }
    path.push_str(PATH);
    path
}

/// Whether a request (method, path after the base, event header value) is the shutdown event.
pub fn is_shutdown_request(method: &http::Method, path: &str, event: Option<&[u8]>) -> bool {
    method.as_str().eq_ignore_ascii_case("POST")
        && path.eq_ignore_ascii_case(PATH)
        && event.is_some_and(|e| e.eq_ignore_ascii_case(EVENT_SHUTDOWN.as_bytes()))
}
