//! `--trusted-proxy` end to end (protocol §8.40): from a client in a trusted network the
//! `X-Forwarded-For` / `X-Forwarded-Proto` it sent reach the backend as it sent them, ours
//! appended; from any other client they are sanitized as always.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use test_support::backends::header_values;
use test_support::client::RawResponse;
use test_support::process::Gateway;
use test_support::site;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// One request from `from` (a loopback address) with a proxy's `X-Forwarded-*` headers; the
/// response and the local address.
async fn request_from(from: [u8; 4], to: SocketAddr) -> (SocketAddr, RawResponse) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\
              X-Forwarded-For: _edge1, 203.0.113.9:4711\r\n\
              X-Forwarded-Proto: https\r\nX-Forwarded-Proto: wss\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    (local, RawResponse::parse(&answer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_forwarded_headers_are_kept_and_ours_appended() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--trusted-proxy",
            "127.0.0.2/32",
            "--trusted-proxy",
            "10.0.0.0/8",
        ],
    );

    let (local, resp) = request_from([127, 0, 0, 2], gw.addr).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let json = resp.json();
    assert_eq!(
        header_values(&json, "x-forwarded-for"),
        [format!("_edge1, 203.0.113.9:4711, {local}")]
    );
    assert_eq!(
        header_values(&json, "x-forwarded-proto"),
        ["https, wss, http"]
    );

    // Anyone else: the items that are no address or scheme are dropped, as without the flag.
    let (local, resp) = request_from([127, 0, 0, 1], gw.addr).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let json = resp.json();
    assert_eq!(
        header_values(&json, "x-forwarded-for"),
        [format!("203.0.113.9:4711, {local}")]
    );
    assert_eq!(header_values(&json, "x-forwarded-proto"), ["https, http"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_client_is_what_trust_is_judged_by() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--proxy-protocol", "--trusted-proxy", "192.0.2.0/24"],
    );
    let header = "PROXY TCP4 192.0.2.10 10.0.0.2 40000 80\r\n";
    let request = format!(
        "{header}GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Forwarded-For: _edge1\r\n\r\n"
    );
    let resp = test_support::client::send_raw(gw.addr, request.as_bytes()).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        header_values(&resp.json(), "x-forwarded-for"),
        ["_edge1, 192.0.2.10:40000"]
    );
}
