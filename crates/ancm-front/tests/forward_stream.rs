//! Large bodies through the forwarder over real sockets, at flat memory: the process's peak
//! RSS (`VmHWM`) may not grow with the body size.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::limits::{LimitsLayer, RequestLimits};
use ancm_front::{Body, RequestTimeout};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use test_support::backends::hyper_backend;
use test_support::body::{GenBody, count_body};
use test_support::client::{self, connect, try_request};
use test_support::process::peak_rss_kib;
use test_support::server::TestServer;
use tower::Layer as _;

const MIB: u64 = 1024 * 1024;

/// A gateway (limits + forwarder, on a real server) in front of `backend` with
/// `requestTimeout` `timeout`.
async fn gateway_to(backend: SocketAddr, timeout: Duration) -> SocketAddr {
    let config = ForwardConfig::default()
        .default_target(backend)
        .request_timeout(RequestTimeout::After(timeout));
    let gateway = LimitsLayer::new(RequestLimits::default()).layer(Forwarder::new(config));
    TestServer::start(gateway).await.detach()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    client::get_request("app.example", path, &[])
}

/// Upload then download `len` bytes through a gateway; returns the peak RSS growth (KiB).
async fn stream_both_ways(len: u64) -> u64 {
    // Upload: the backend counts what arrives. Download: the backend generates `len` bytes.
    let backend = hyper_backend(move |req: Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/up" {
            let n = count_body(req.into_body()).await.unwrap_or(u64::MAX);
            Response::new(Body::from(n.to_string()))
        } else {
            Response::new(Body::new(GenBody::new(len, 64 * 1024)))
        }
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(30)).await;
    // Warm up allocator arenas and connections before taking the baseline.
    let _ = try_request(gw, get("/up")).await.expect("warm-up");
    let before = peak_rss_kib();
    let started = Instant::now();

    let req = Request::post("/up")
        .header("host", "app.example")
        .body(GenBody::new(len, 64 * 1024))
        .expect("request");
    let res = try_request(gw, req).await.expect("upload response");
    assert_eq!(res.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&res.body),
        len.to_string(),
        "backend got every byte"
    );

    let resp = connect::<http_body_util::Empty<Bytes>>(gw)
        .await
        .send_request(
            Request::get("/down")
                .header("host", "app.example")
                .body(http_body_util::Empty::new())
                .expect("request"),
        )
        .await
        .expect("download response");
    assert_eq!(resp.status(), 200);
    let got = count_body(resp.into_body()).await.expect("download body");
    assert_eq!(got, len, "client got every byte");

    let growth = peak_rss_kib().saturating_sub(before);
    eprintln!(
        "streamed {} MiB up and down in {:?}; peak RSS growth {} KiB",
        len / MIB,
        started.elapsed(),
        growth
    );
    growth
}

/// 1 GiB each way (about 3 s in a debug build on 2 vCPUs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_up_and_down_at_flat_memory() {
    let growth = stream_both_ways(1024 * MIB).await;
    // Buffering either body whole would add 1 GiB; socket and hyper buffers stay far below
    // (the target for the gateway is 16 MiB).
    assert!(growth < 16 * 1024, "peak RSS grew by {growth} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_duplex_echo() {
    // The backend streams the request body straight back while it is still arriving.
    let backend = hyper_backend(|req: Request<hyper::body::Incoming>| async move {
        Response::new(Body::new(req.into_body()))
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(30)).await;
    let len = 16 * MIB;
    let req = Request::post("/echo")
        .header("host", "app.example")
        .body(GenBody::new(len, 16 * 1024))
        .expect("request");
    let resp = connect(gw).await.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        count_body(resp.into_body()).await.expect("echoed body"),
        len
    );
}
