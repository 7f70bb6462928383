//! Large bodies through the forwarder over real sockets, at flat memory: the process's peak
//! RSS (`VmHWM`) may not grow with the body size.
#![allow(missing_docs)]

mod forward_common;

use std::time::{Duration, Instant};

use ancm_front::Body;
use bytes::Bytes;
use forward_common::*;
use http::{Request, Response};

const MIB: u64 = 1024 * 1024;

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
    let _ = send(gw, get("/up")).await.expect("warm-up");
    let before = vm_hwm_kib();
    let started = Instant::now();

    let req = Request::post("/up")
        .header("host", "app.example")
        .body(GenBody::new(len, 64 * 1024))
        .expect("request");
    let (parts, body) = send(gw, req).await.expect("upload response");
    assert_eq!(parts.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        len.to_string(),
        "backend got every byte"
    );

    let resp = client::<http_body_util::Empty<Bytes>>(gw)
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

    let growth = vm_hwm_kib().saturating_sub(before);
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
    let resp = client(gw).await.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        count_body(resp.into_body()).await.expect("echoed body"),
        len
    );
}
