//! The forwarder over a Unix-domain socket (protocol §8.42): a target with `unix_socket` is
//! reached there, not at its address, and its keep-alive connections are pooled apart.
#![cfg(unix)]
#![allow(missing_docs, clippy::unwrap_used)]

mod keepalive_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ancm_front::backend::BackendTarget;
use ancm_front::forward::{ForwardConfig, Forwarder};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use keepalive_common::gateway_for;
use test_support::client;
use tokio::net::UnixListener;

/// A backend on a Unix-domain socket answering the request path; counts its connections.
fn unix_backend(listener: UnixListener) -> Arc<AtomicUsize> {
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: hyper::Request<_>| async move {
                    let body = format!("unix {}", req.uri().path());
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    connections
}

#[tokio::test]
async fn a_target_with_a_unix_socket_is_reached_there_on_a_pooled_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.sock");
    let connections = unix_backend(UnixListener::bind(&path).unwrap());
    // Nothing listens at the address: it only names the backend.
    let addr: SocketAddr = ([127, 0, 0, 1], test_support::process::free_port()).into();
    let mut target = BackendTarget::new(addr, None);
    target.unix_socket = Some(Arc::from(path.as_path()));
    let forwarder = Forwarder::new(ForwardConfig::default());
    let gateway = gateway_for(&forwarder, target).await;

    for path in ["/one", "/two"] {
        let r = client::send(gateway.addr(), "GET", path, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("unix {path}").as_bytes());
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    assert_eq!(forwarder.idle_connections(addr), 1);
}

#[tokio::test]
async fn a_unix_socket_nobody_listens_on_is_a_forwarding_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut target = BackendTarget::new(([127, 0, 0, 1], 9).into(), None);
    target.unix_socket = Some(Arc::from(dir.path().join("missing.sock").as_path()));
    let forwarder = Forwarder::new(ForwardConfig::default());
    let gateway = gateway_for(&forwarder, target).await;
    let r = client::send(gateway.addr(), "GET", "/", &[]).await;
    assert_eq!(r.status, 502);
}
