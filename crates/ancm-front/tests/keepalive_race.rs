//! The keep-alive race (issue 18): a backend closes a pooled connection just as a request is
//! written to it. Body-less idempotent requests lost that way are sent again once on a new
//! connection; a request with a body, a non-idempotent one, or one whose response had
//! started is never sent twice.
#![allow(missing_docs)]

mod keepalive_common;

use std::time::{Duration, Instant};

use ancm_front::backend::BackendTarget;
use ancm_front::forward::{ForwardConfig, Forwarder};
use keepalive_common::*;
use test_support::client;

/// A request line as the backend sees it.
fn line(method: &str, path: &str) -> String {
    format!("{method} {path} HTTP/1.1")
}

/// Lets a pooled connection idle long enough that a lost request on it may be sent again.
async fn pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_keep_alive_timeout_costs_no_request() {
    // Each client has its own backend, so its connection idles exactly its own gaps, which
    // sweep across the backend's timeout and the lag before the socket closes.
    const KEEP_ALIVE: KeepAlive = KeepAlive {
        timeout: Duration::from_millis(100),
        lag: Duration::from_millis(30),
    };
    const CLIENTS: u64 = 4;
    const RUN: Duration = Duration::from_secs(4);
    let forwarder = Forwarder::new(ForwardConfig::default());
    let mut clients = Vec::new();
    let mut backends = Vec::new();
    let mut gateways = Vec::new();
    for client_no in 0..CLIENTS {
        let (backend, seen) = scripted_backend(Some(KEEP_ALIVE), |_, _| Act::Answer).await;
        let gateway = gateway_for(&forwarder, BackendTarget::new(backend, None)).await;
        let addr = gateway.addr();
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let end = Instant::now() + RUN;
            let mut i = 0u64;
            while Instant::now() < end {
                statuses.push(client::send(addr, "GET", "/", &[]).await.status);
                let gap = 70 + (i * 7 + client_no * 13) % 71;
                tokio::time::sleep(Duration::from_millis(gap)).await;
                i += 1;
            }
            statuses
        }));
        backends.push(seen);
        gateways.push(gateway);
    }
    let mut total = 0;
    let mut failed = Vec::new();
    for c in clients {
        for status in c.await.expect("client task") {
            total += 1;
            if status != 200 {
                failed.push(status);
            }
        }
    }
    let lost: usize = backends
        .iter()
        .map(|s| {
            s.lost_to_keep_alive
                .load(std::sync::atomic::Ordering::SeqCst)
        })
        .sum();
    assert!(
        lost > 0,
        "no request met a closing connection in {total}: the race was not exercised"
    );
    assert!(
        failed.is_empty(),
        "{} of {total} requests failed ({lost} met a closing connection): {failed:?}",
        failed.len()
    );
}

#[tokio::test]
async fn a_lost_request_is_sent_again_only_without_a_body_and_when_idempotent() {
    // Every connection answers its first request and drops the second unanswered.
    let (backend, seen) =
        scripted_backend(None, |n, _| if n == 1 { Act::Answer } else { Act::Close }).await;
    let gateway = gateway_for(
        &Forwarder::new(ForwardConfig::default()),
        BackendTarget::new(backend, None),
    )
    .await;
    let gw = gateway.addr();

    assert_eq!(client::send(gw, "GET", "/warm", &[]).await.status, 200);
    pause().await;
    // Lost on the pooled connection, answered on a new one.
    assert_eq!(client::send(gw, "GET", "/again", &[]).await.status, 200);
    assert_eq!(seen.count(&line("GET", "/again")), 2);

    // That new connection is pooled now; its second request is lost too.
    pause().await;
    let upload = b"PUT /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let res = client::send_raw(gw, upload).await;
    assert_eq!(res.status, 502, "a streamed body is never sent twice");
    assert_eq!(seen.count(&line("PUT", "/upload")), 1);

    assert_eq!(client::send(gw, "GET", "/warm", &[]).await.status, 200);
    pause().await;
    let res = client::send(gw, "POST", "/submit", &[("Content-Length", "0")]).await;
    assert_eq!(
        res.status, 502,
        "a non-idempotent request is never sent twice"
    );
    assert_eq!(seen.count(&line("POST", "/submit")), 1);
}

#[tokio::test]
async fn no_request_is_sent_again_once_its_response_started() {
    // Every connection answers its first request; on the second it starts a response to
    // `/partial` and drops anything else unanswered.
    let (backend, seen) = scripted_backend(None, |n, line| match (n, line) {
        (1, _) => Act::Answer,
        (_, l) if l.contains("/partial") => Act::CloseMidHead,
        _ => Act::Close,
    })
    .await;
    let gateway = gateway_for(
        &Forwarder::new(ForwardConfig::default()),
        BackendTarget::new(backend, None),
    )
    .await;
    let gw = gateway.addr();

    assert_eq!(client::send(gw, "GET", "/warm", &[]).await.status, 200);
    pause().await;
    // Nothing came back: sent again.
    assert_eq!(client::send(gw, "GET", "/silent", &[]).await.status, 200);
    assert_eq!(seen.count(&line("GET", "/silent")), 2);
    pause().await;
    // A response had started: not sent again.
    let res = client::send(gw, "GET", "/partial", &[]).await;
    assert_eq!(res.status, 502);
    assert_eq!(seen.count(&line("GET", "/partial")), 1);
}
