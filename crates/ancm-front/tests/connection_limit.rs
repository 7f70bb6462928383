//! The cap on backend connections in use (issue 9 §2): requests over it wait a bounded time,
//! then get 503.2; forwarders made from one configuration count together.
#![allow(missing_docs)]

mod keepalive_common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use ancm_front::backend::BackendTarget;
use ancm_front::forward::{ConnectionLimit, ForwardConfig, Forwarder};
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use keepalive_common::*;
use test_support::client;
use test_support::server::TestServer;

const SLOW: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_cap_wait_then_get_503() {
    let backend = TestServer::start(tower::service_fn(|_req| async {
        tokio::time::sleep(SLOW).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"slow"))))
    }))
    .await;
    let target = BackendTarget::new(backend.addr(), None);
    let config = ForwardConfig::default().connection_limit(ConnectionLimit::new(2).wait(WAIT));
    let limit = config.connection_limit.clone();
    // Two pools, as `ancm run` has one per runtime thread, from one configuration.
    let a = gateway_for(&Forwarder::new(config.clone()), target.clone()).await;
    let b = gateway_for(&Forwarder::new(config), target).await;

    let (a_addr, b_addr) = (a.addr(), b.addr());
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { client::send(a_addr, "GET", "/", &[]).await }))
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || limit.in_use() == 2).await,
        "both slow requests hold a connection"
    );

    let start = Instant::now();
    let (over_a, over_b) = tokio::join!(
        client::send(a_addr, "GET", "/", &[]),
        client::send(b_addr, "GET", "/", &[]),
    );
    let waited = start.elapsed();
    for res in [&over_a, &over_b] {
        assert_eq!(res.status, 503);
        let body = String::from_utf8_lossy(&res.body);
        assert!(body.contains("HTTP Error 503.2"), "{body}");
    }
    assert!(
        waited >= WAIT,
        "they waited for a connection first: {waited:?}"
    );
    assert!(
        slow.iter().any(|t| !t.is_finished()),
        "the 503s came while the cap was taken, not after"
    );

    for t in slow {
        let res = t.await.expect("slow request");
        assert_eq!((res.status, res.body.as_slice()), (200, &b"slow"[..]));
    }
    assert!(
        eventually(Duration::from_secs(10), || limit.in_use() == 0).await,
        "finished exchanges free their places"
    );
    let res = client::send(b_addr, "GET", "/", &[]).await;
    assert_eq!(res.status, 200);
}
