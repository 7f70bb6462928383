//! Backends die with the gateway: a gateway killed outright, which cannot stop its children
//! itself, takes them with it — through the parent-death signal on Linux (SIGKILL), through
//! the kill-on-close job object on Windows (`TerminateProcess`) (protocol §2.1, §8.5).
#![cfg(any(target_os = "linux", windows))]
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use test_support::client::get;
use test_support::process::{Gateway, is_running};
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// Wait up to 2 s for `pid` to be gone.
async fn gone_soon(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_running(pid) {
        assert!(
            Instant::now() < deadline,
            "backend {pid} outlived its killed gateway by 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_gateway_takes_its_backend_with_it() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let mut gw = Gateway::start(ANCM, site.path(), &[]);
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let backend = r.json()["pid"].as_u64().unwrap() as u32;
    assert!(is_running(backend));
    let _reaper = KillOnDrop(backend);

    gw.kill();

    gone_soon(backend).await;
}

/// Leaves no backend behind when the test fails.
#[cfg(target_os = "linux")]
struct KillOnDrop(u32);

#[cfg(target_os = "linux")]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if is_running(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[cfg(windows)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_gateway_takes_its_backend_tree_with_it_through_the_job_object() {
    // The gateway's child starts the process that listens: both are in the child's job.
    let site = site::with_config(&site::test_backend_config("grandchild", "", &[]));
    let mut gw = Gateway::start(ANCM, site.path(), &[]);
    let r = get(gw.addr, "/pid", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listener: u32 = r.text().parse().unwrap();
    assert!(is_running(listener));

    gw.kill();

    gone_soon(listener).await;
}
