//! `ancm run --max-backend-connections`: the cap is per application, across worker threads;
//! requests over it wait `--backend-connection-wait` seconds, then get 503.2.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use test_support::client::get;
use test_support::process::Gateway;
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_backend_connection_cap_get_503_2_on_every_thread() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--threads",
            "2",
            "--max-backend-connections",
            "1",
            "--backend-connection-wait",
            "1",
        ],
    );
    assert_eq!(get(gw.addr, "/", &[]).await.status, 200);
    let addr = gw.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow?ms=5000", &[]).await });
    // Until the slow request holds the one connection, others are answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(addr, "/", &[]).await.status != 503 {
        assert!(
            Instant::now() < deadline,
            "the slow request never took the connection"
        );
    }
    // Each on its own connection, so they land on either worker thread.
    let start = Instant::now();
    let over = futures_util::future::join_all((0..4).map(|_| get(addr, "/", &[]))).await;
    let waited = start.elapsed();
    for r in &over {
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.text().contains("HTTP Error 503.2"), "{}", r.text());
    }
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(!slow.is_finished(), "answered while the cap was taken");
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(get(gw.addr, "/", &[]).await.status, 200);
}
