//! Backends die with the gateway: a gateway killed with SIGKILL, which cannot stop its
//! children itself, takes them with it through the parent-death signal (Linux, protocol
//! §2.1, §8.5).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod gateway_support;

use std::time::{Duration, Instant};

use gateway_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_gateway_takes_its_backend_with_it() {
    let site = site(&python_config("", &[]));
    let mut gw = Gateway::start(site.path(), &[]);
    let r = get(gw.addr, "/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let backend = r.json()["pid"].as_u64().unwrap() as u32;
    assert!(process_alive(backend));
    let _reaper = KillOnDrop(backend);

    let mut gateway = gw.child.take().unwrap();
    signal(gateway.id(), nix::sys::signal::Signal::SIGKILL);
    wait_exit(&mut gateway, Duration::from_secs(10));

    let deadline = Instant::now() + Duration::from_secs(2);
    while process_alive(backend) {
        assert!(
            Instant::now() < deadline,
            "backend {backend} outlived its SIGKILLed gateway by 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Leaves no backend behind when the test fails.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if process_alive(self.0) {
            signal(self.0, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
