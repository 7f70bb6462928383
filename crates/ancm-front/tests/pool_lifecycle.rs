//! Which pooled connection a request may use: only one to the same backend process, never
//! one to a retired process, never one idle past the pool's idle timeout.
#![allow(missing_docs)]

mod keepalive_common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ancm_front::BackendProcess;
use ancm_front::backend::BackendTarget;
use ancm_front::forward::{ForwardConfig, Forwarder};
use keepalive_common::*;
use test_support::client;

fn target_of(addr: std::net::SocketAddr, process: &Arc<BackendProcess>) -> BackendTarget {
    let mut target = BackendTarget::new(addr, None);
    target.process = Some(process.clone());
    target
}

#[tokio::test]
async fn retiring_a_process_drops_every_pools_idle_connections_to_it() {
    let (backend, seen) = scripted_backend(None, |_, _| Act::Answer).await;
    let process = Arc::new(BackendProcess::new(1));
    // Two pools, as `ancm run` has one per runtime thread.
    let (one, two) = (
        Forwarder::new(ForwardConfig::default()),
        Forwarder::new(ForwardConfig::default()),
    );
    let gw_one = gateway_for(&one, target_of(backend, &process)).await;
    let gw_two = gateway_for(&two, target_of(backend, &process)).await;
    assert_eq!(
        client::send(gw_one.addr(), "GET", "/", &[]).await.status,
        200
    );
    assert_eq!(
        client::send(gw_two.addr(), "GET", "/", &[]).await.status,
        200
    );
    assert_eq!(
        (one.idle_connections(backend), two.idle_connections(backend)),
        (1, 1)
    );

    process.retire();
    assert_eq!(
        (one.idle_connections(backend), two.idle_connections(backend)),
        (0, 0)
    );
    assert!(
        eventually(Duration::from_secs(10), || seen
            .closed_by_peer
            .load(Ordering::SeqCst)
            == 2)
        .await,
        "the backend sees both idle connections closed"
    );

    // A request that still carries the retired process gets a new connection, not pooled.
    assert_eq!(
        client::send(gw_one.addr(), "GET", "/", &[]).await.status,
        200
    );
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(one.idle_connections(backend), 0);
    assert!(
        eventually(Duration::from_secs(10), || seen
            .closed_by_peer
            .load(Ordering::SeqCst)
            == 3)
        .await,
        "closed after its exchange"
    );
}

#[tokio::test]
async fn a_new_process_on_the_same_port_gets_its_own_connections() {
    let (backend, seen) = scripted_backend(None, |_, _| Act::Answer).await;
    let forwarder = Forwarder::new(ForwardConfig::default());
    let old = Arc::new(BackendProcess::new(1));
    let new = Arc::new(BackendProcess::new(2));
    let gw_old = gateway_for(&forwarder, target_of(backend, &old)).await;
    let gw_new = gateway_for(&forwarder, target_of(backend, &new)).await;
    for _ in 0..2 {
        assert_eq!(
            client::send(gw_old.addr(), "GET", "/", &[]).await.status,
            200
        );
    }
    assert_eq!(
        seen.accepted.load(Ordering::SeqCst),
        1,
        "reused for the same process"
    );
    assert_eq!(
        client::send(gw_new.addr(), "GET", "/", &[]).await.status,
        200
    );
    assert_eq!(
        seen.accepted.load(Ordering::SeqCst),
        2,
        "never the old process's"
    );
    assert_eq!(forwarder.idle_connections(backend), 2);
}

#[tokio::test]
async fn connections_idle_past_the_pool_idle_timeout_are_closed_not_used() {
    let (backend, seen) = scripted_backend(None, |_, _| Act::Answer).await;
    let forwarder =
        Forwarder::new(ForwardConfig::default().pool_idle_timeout(Duration::from_millis(100)));
    let gw = gateway_for(&forwarder, BackendTarget::new(backend, None)).await;
    assert_eq!(client::send(gw.addr(), "GET", "/", &[]).await.status, 200);
    assert_eq!(forwarder.idle_connections(backend), 1);
    assert!(
        eventually(Duration::from_secs(10), || forwarder
            .idle_connections(backend)
            == 0)
        .await,
        "no longer usable after 100 ms"
    );
    assert_eq!(client::send(gw.addr(), "GET", "/", &[]).await.status, 200);
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 2, "a new connection");
    assert!(
        eventually(Duration::from_secs(10), || seen
            .closed_by_peer
            .load(Ordering::SeqCst)
            == 1)
        .await,
        "the stale one was closed by the forwarder"
    );
}
