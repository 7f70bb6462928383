//! `--proxy-protocol` listeners end to end (protocol §8.39): the client a PROXY v1 or v2 header
//! names reaches the backend in `X-Forwarded-For` and the access log's `c-ip`, also on an
//! HTTPS listener (the header before the TLS handshake); a connection without a valid header
//! is closed without an answer, within the header timeout; a header sent to an ordinary
//! listener is a `400`.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use rustls::pki_types::{CertificateDer, ServerName};
use test_support::backends::header_values;
use test_support::client::{raw_exchange, send_raw};
use test_support::process::{Gateway, free_port, wait_listening};
use test_support::site;
use tokio::io::AsyncWriteExt as _;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

const REQUEST: &[u8] = b"GET /who HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n";

fn v2_header(client: &str, local: &str) -> Vec<u8> {
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (
            client.parse::<SocketAddr>().unwrap(),
            local.parse::<SocketAddr>().unwrap(),
        ),
    )
    .build()
    .unwrap()
}

fn with_request(header: &[u8]) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(REQUEST);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_a_proxy_header_names_is_the_client() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let logs = tempfile::tempdir().unwrap();
    let logs_dir = logs.path().to_str().unwrap();
    let mut gw = Gateway::start(
        ANCM,
        site.path(),
        &["--proxy-protocol", "--access-log", logs_dir],
    );

    let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.2 51000 80\r\n";
    let resp = send_raw(gw.addr, &with_request(v1)).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        header_values(&resp.json(), "x-forwarded-for"),
        ["203.0.113.7:51000"]
    );

    let v2 = v2_header("[2001:db8::7]:40000", "[2001:db8::2]:80");
    // Sent in two pieces, the header cut in the middle: the gateway waits for the rest.
    let bytes = with_request(&v2);
    let (first, rest) = bytes.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(rest).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    let resp = test_support::client::RawResponse::parse(&answer);
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        header_values(&resp.json(), "x-forwarded-for"),
        ["[2001:db8::7]:40000"]
    );

    // A LOCAL header (a balancer's own health check) keeps the socket peer.
    let local = ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Local,
        ppp::v2::Protocol::Unspecified,
        ppp::v2::Addresses::Unspecified,
    )
    .build()
    .unwrap();
    let resp = send_raw(gw.addr, &with_request(&local)).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let xff = header_values(&resp.json(), "x-forwarded-for");
    assert!(xff[0].starts_with("127.0.0.1:"), "{xff:?}");

    // The access log's c-ip is the client the header named.
    gw.terminate();
    let log = std::fs::read_dir(logs.path().join("ROOT"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect::<String>();
    let c_ips: Vec<&str> = log
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(' ').nth(8).unwrap())
        .collect();
    assert_eq!(c_ips, ["203.0.113.7", "2001:db8::7", "127.0.0.1"], "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_header_the_connection_is_closed_unanswered() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--proxy-protocol", "--header-timeout", "2"],
    );
    // A plain request, a malformed header: closed, nothing written back.
    for bytes in [
        REQUEST.to_vec(),
        with_request(b"PROXY TCP4 not.an.address 10.0.0.2 1 2\r\n"),
    ] {
        let (answer, _) = raw_exchange(gw.addr, &bytes).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    }
    // Half a header and then silence: closed when the header timeout runs out.
    let started = Instant::now();
    let (answer, _) = raw_exchange(gw.addr, b"PROXY TCP4 203.0.").await;
    assert!(answer.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_on_an_ordinary_listener_is_a_bad_request() {
    let site = site::with_config(&site::python_echo_config("", &[]));
    let proxied = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let proxied_arg = proxied.to_string();
    // The first --listen (the helper's) has no --proxy-protocol; the second one has.
    let gw = Gateway::start(
        ANCM,
        site.path(),
        &["--listen", &proxied_arg, "--proxy-protocol"],
    );
    wait_listening(proxied);
    for header in [
        b"PROXY TCP4 203.0.113.7 10.0.0.2 51000 80\r\n".to_vec(),
        v2_header("203.0.113.7:51000", "10.0.0.2:80"),
    ] {
        let (answer, _) = raw_exchange(gw.addr, &with_request(&header)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
        let resp = send_raw(proxied, &with_request(&header)).await;
        assert_eq!(resp.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_https_listener_the_header_comes_before_the_handshake() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = tempfile::tempdir().unwrap();
    let cert_path = pem.path().join("cert.pem");
    let key_path = pem.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let site = site::with_config(&site::python_echo_config("", &[]));
    let https = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let https_arg = https.to_string();
    let _gw = Gateway::start(
        ANCM,
        site.path(),
        &[
            "--https-listen",
            &https_arg,
            "--proxy-protocol",
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    wait_listening(https);

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let mut tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    tcp.write_all(&v2_header("198.51.100.20:443", "10.0.0.2:443"))
        .await
        .unwrap();
    let tls = tokio::time::timeout(
        Duration::from_secs(30),
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap()
    .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/who")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        header_values(&json, "x-forwarded-for"),
        ["198.51.100.20:443"]
    );
    assert_eq!(header_values(&json, "x-forwarded-proto"), ["https"]);

    // Without the header the handshake never starts: the TLS client hello is refused.
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap();
    assert!(refused.is_err());
}
