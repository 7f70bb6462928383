//! The gateway's admin listener (`ancm run --admin-listen`), read by tests: the `/status`
//! JSON of an application, its serving pids, and bounded waits on it.
//!
//! ```
//! use test_support::admin::serving_pids;
//!
//! let app = serde_json::json!({"slots": [{"pid": 7}, {"pid": null}, {"pid": 9}]});
//! assert_eq!(serving_pids(&app), [7, 9]);
//! ```
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::LIMIT;
use crate::client::get;

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// The `/status` entry of the first application.
///
/// # Panics
///
/// If the admin listener does not answer with JSON.
pub async fn app_status(admin: SocketAddr) -> serde_json::Value {
    let status = get(admin, "/status", &[]).await.json();
    status["applications"][0].clone()
}

/// The `/status` entry of the application at `path` (`/`, `/shop`).
///
/// # Panics
///
/// If the admin listener does not answer with JSON or has no such application.
pub async fn app_status_at(admin: SocketAddr, path: &str) -> serde_json::Value {
    let status = get(admin, "/status", &[]).await.json();
    status["applications"]
        .as_array()
        .and_then(|apps| apps.iter().find(|app| app["path"] == path))
        .cloned()
        .unwrap_or_else(|| panic!("no application {path}: {status:#}"))
}

/// The pids of an application's serving slots, in slot order.
pub fn serving_pids(app: &serde_json::Value) -> Vec<u64> {
    app["slots"]
        .as_array()
        .map(|slots| slots.iter().filter_map(|s| s["pid"].as_u64()).collect())
        .unwrap_or_default()
}

/// Waits until `cond` holds for the first application's `/status` entry; that entry.
///
/// # Panics
///
/// If it does not within [`LIMIT`]; the message names `what` and shows the last entry.
pub async fn wait_app(
    admin: SocketAddr,
    what: &str,
    cond: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_app_at(admin, None, what, cond).await
}

/// [`wait_app`] for the application at `path` (the first one when `None`).
///
/// # Panics
///
/// If `cond` does not hold within [`LIMIT`]; the message names `what` and shows the last
/// entry.
pub async fn wait_app_at(
    admin: SocketAddr,
    path: Option<&str>,
    what: &str,
    mut cond: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let app = match path {
            Some(path) => app_status_at(admin, path).await,
            None => app_status(admin).await,
        };
        if cond(&app) {
            return app;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {LIMIT:?}: {app:#}"
        );
        tokio::time::sleep(POLL).await;
    }
}
