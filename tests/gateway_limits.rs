//! Request limits of the real `ancm` binary (protocol §3.4, §8.16): IIS request filtering's
//! `<requestLimits>` from web.config, IIS's defaults where it is silent, the `--max-*` flags
//! in place of those defaults, and a changed web.config applied from its recycle on.
//! `ancm` answers 414 for a long path or query string, 413 for a large body (declared or
//! chunked) and 431 for a large header block, before any backend is involved.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper_util::rt::TokioIo;
use test_support::client::{Response, get, request};
use test_support::process::Gateway;
use test_support::site;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// The echo backend's web.config with `<requestLimits ATTRS/>` beside `<aspNetCore>`.
fn config_with_limits(attrs: &str) -> String {
    site::rust_echo_config("", &[]).replace(
        "</aspNetCore>",
        &format!(
            "</aspNetCore>\n      <security><requestFiltering><requestLimits {attrs} />\
             </requestFiltering></security>"
        ),
    )
}

async fn post(addr: SocketAddr, body: usize) -> Response {
    let req = Request::post("/")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::from(vec![b'x'; body])))
        .unwrap();
    request(addr, req).await
}

/// A POST whose body is sent chunked (no declared length), `chunks` × `size` bytes.
async fn post_chunked(addr: SocketAddr, chunks: usize, size: usize) -> StatusCode {
    let frames =
        futures_util::stream::iter((0..chunks).map(move |_| {
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(vec![b'y'; size])))
        }));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/")
        .header("host", addr.to_string())
        .body(StreamBody::new(frames))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    status
}

async fn path_status(addr: SocketAddr, target: &str) -> StatusCode {
    get(addr, target, &[]).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_request_limits_answer_414_413_and_431() {
    let site = site::with_config(&config_with_limits(
        r#"maxAllowedContentLength="1000" maxUrl="64" maxQueryString="32""#,
    ));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let addr = gw.addr;

    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(63))).await,
        200
    );
    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(64))).await,
        414
    );
    assert_eq!(
        path_status(addr, &format!("/?{}", "q".repeat(32))).await,
        200
    );
    assert_eq!(
        path_status(addr, &format!("/?{}", "q".repeat(33))).await,
        414
    );

    let r = post(addr, 1000).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["body_len"], 1000);
    assert_eq!(post(addr, 1001).await.status, 413);
    assert_eq!(post_chunked(addr, 5, 400).await, 413);

    // The header limit is not an IIS attribute: the default 32 KiB.
    let big = "h".repeat(40 * 1024);
    assert_eq!(get(addr, "/", &[("x-big", &big)]).await.status, 431);
    let fits = "h".repeat(16 * 1024);
    assert_eq!(get(addr, "/", &[("x-fits", &fits)]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iis_defaults_apply_where_web_config_is_silent() {
    let site = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let addr = gw.addr;

    // maxUrl 4096 and maxQueryString 2048 bytes.
    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(4095))).await,
        200
    );
    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(4096))).await,
        414
    );
    assert_eq!(
        path_status(addr, &format!("/?{}", "q".repeat(2048))).await,
        200
    );
    assert_eq!(
        path_status(addr, &format!("/?{}", "q".repeat(2049))).await,
        414
    );

    // maxAllowedContentLength 30,000,000 bytes: a larger declared body is refused before a
    // byte of it is sent.
    let r = test_support::client::send(addr, "POST", "/", &[("Content-Length", "30000001")]).await;
    assert_eq!(r.status, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_replace_the_defaults_and_web_config_wins_where_it_speaks() {
    let flags = [
        "--max-request-body",
        "100",
        "--max-url-length",
        "50",
        "--max-query-string-length",
        "10",
        "--max-header-bytes",
        "2000",
    ];
    let silent = site::with_config(&site::rust_echo_config("", &[]));
    let gw = Gateway::start(ANCM, silent.path(), &flags);
    let addr = gw.addr;
    assert_eq!(post(addr, 100).await.status, 200);
    assert_eq!(post(addr, 101).await.status, 413);
    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(49))).await,
        200
    );
    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(50))).await,
        414
    );
    assert_eq!(
        path_status(addr, &format!("/?{}", "q".repeat(11))).await,
        414
    );
    let big = "h".repeat(3000);
    assert_eq!(get(addr, "/", &[("x-big", &big)]).await.status, 431);

    // web.config's maxUrl is the application's own: it wins over the flag; the other flags
    // still apply.
    let speaks = site::with_config(&config_with_limits(r#"maxUrl="500""#));
    let gw = Gateway::start(ANCM, speaks.path(), &flags);
    let addr = gw.addr;
    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(100))).await,
        200
    );
    assert_eq!(
        path_status(addr, &format!("/{}", "p".repeat(500))).await,
        414
    );
    assert_eq!(post(addr, 101).await.status, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_limit_applies_after_the_recycle() {
    let site = site::with_config(&config_with_limits(r#"maxAllowedContentLength="1000""#));
    let gw = Gateway::start(ANCM, site.path(), &[]);
    let addr = gw.addr;
    assert_eq!(post(addr, 600).await.status, 200);

    std::fs::write(
        site.path().join("web.config"),
        config_with_limits(r#"maxAllowedContentLength="500""#),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = post(addr, 600).await.status;
        if status == 413 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "the new maxAllowedContentLength was not applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(post(addr, 500).await.status, 200);
}

#[test]
fn check_prints_the_request_limits_iis_defaults_where_silent() {
    let s = site::with_config(&config_with_limits(r#"maxUrl="500""#));
    let out = std::process::Command::new(ANCM)
        .args(["check", "--json"])
        .arg(s.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["requestLimits"],
        serde_json::json!({
            "maxAllowedContentLength": 30_000_000,
            "maxUrl": 500,
            "maxQueryString": 2048,
        })
    );
    let out = std::process::Command::new(ANCM)
        .arg("check")
        .arg(s.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  requestLimits:\n    maxAllowedContentLength: 30000000\n    maxUrl: 500\n"),
        "{text}"
    );
}
