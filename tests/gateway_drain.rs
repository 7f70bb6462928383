//! `--drain-delay` end to end (protocol §8.41): on SIGTERM `/readyz` answers `503` at once,
//! the listeners go on accepting and serving for the delay, and only then does the gateway
//! stop accepting, drain and exit.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_support::client::{get, send};
use test_support::process::{
    Gateway, eventually, free_port, is_running, terminate, wait_listening,
};
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_first_then_still_serving_for_the_delay_then_gone() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin_arg = admin.to_string();
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--admin-listen", &admin_arg, "--drain-delay", "3"],
    );
    wait_listening(admin);
    assert_eq!(send(gw.addr, "GET", "/", &[]).await.status, 200);
    assert_eq!(get(admin, "/readyz", &[]).await.status, 200);

    let pid = gw.pid();
    terminate(pid);
    let signalled = Instant::now();
    // Polled: the first answer after the signal may come before the gateway has seen it.
    loop {
        let status = get(admin, "/readyz", &[]).await.status;
        if status == 503 {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "/readyz still {status} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New connections are accepted and served meanwhile, to the end of the delay.
    let mut served = 0;
    while signalled.elapsed() < Duration::from_millis(2500) {
        assert_eq!(send(gw.addr, "GET", "/", &[]).await.status, 200);
        served += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served >= 5, "{served}");
    // Then the drain: the listener closes and the gateway exits.
    assert!(
        eventually(Duration::from_secs(20), || std::net::TcpStream::connect(
            gw.addr
        )
        .is_err())
        .await,
        "still accepting long after the delay"
    );
    assert!(signalled.elapsed() >= Duration::from_secs(3));
    assert!(eventually(Duration::from_secs(20), || !is_running(pid)).await);
}
