//! What the real `ancm` binary does with what it finds in the site folder (protocol §2.10,
//! §8.21): an `app_offline.htm` that is a symbolic link is followed only inside the site
//! folder, and one over 1 MiB is not served; both still take the application offline, with
//! the built-in 503 page.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_support::client::{Response, get};
use test_support::process::Gateway;
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The title of the built-in page served when app_offline.htm cannot be.
const BUILT_IN: &str = "HTTP Error 503.0 - Application Offline";

/// GET / until `done` holds (bounded).
async fn poll_until(addr: SocketAddr, done: impl Fn(&Response) -> bool) -> Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(addr, "/", &[]).await;
        if done(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting; last: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// Symbolic links need a privilege on Windows.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_offline_link_is_followed_only_inside_the_site_folder() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let elsewhere = tempfile::tempdir().unwrap();
    let secret = elsewhere.path().join("secret.txt");
    std::fs::write(&secret, "db-password=hunter2").unwrap();
    let gw = Gateway::start(ANCM, site.path(), &[]);
    assert_eq!(get(gw.addr, "/", &[]).await.status, 200);

    let offline = site.path().join("app_offline.htm");
    std::os::unix::fs::symlink(&secret, &offline).unwrap();
    let r = poll_until(gw.addr, |r| r.status == 503).await;
    assert!(!r.text().contains("hunter2"), "{}", r.text());
    assert!(r.text().contains(BUILT_IN), "{}", r.text());

    // A link to a page inside the site folder is served.
    let page = site.path().join("maintenance.html");
    std::fs::write(&page, "<p>maintenance</p>").unwrap();
    std::fs::remove_file(&offline).unwrap();
    std::os::unix::fs::symlink(&page, &offline).unwrap();
    let r = poll_until(gw.addr, |r| r.status == 503 && !r.text().contains(BUILT_IN)).await;
    assert_eq!(r.text(), "<p>maintenance</p>");
    assert_eq!(r.headers["content-type"], "text/html");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_offline_page_over_1_mib_is_not_served() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let offline = site.path().join("app_offline.htm");
    std::fs::write(&offline, vec![b'x'; 1024 * 1024 + 1]).unwrap();
    let r = poll_until(gw.addr, |r| r.status == 503).await;
    assert!(r.body.len() < 64 * 1024, "{} bytes served", r.body.len());
    assert!(r.text().contains(BUILT_IN), "{}", r.text());

    // Exactly 1 MiB is served; the changed file is read again.
    std::fs::write(&offline, vec![b'y'; 1024 * 1024]).unwrap();
    let r = poll_until(gw.addr, |r| !r.text().contains(BUILT_IN)).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body.len(), 1024 * 1024);
}
