//! The listener for the front over a Unix-domain socket (protocol §8.42): `ANCM_UNIX_SOCKET`
//! is read, bound, and served with the whole layer; the front counts as the loopback peer.
#![cfg(unix)]
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use ancm_protocol::{AppPath, PairingToken};
use axum::extract::Request;
use axum::routing::get;
use axum::{Router, ServiceExt};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use iis_integration::{
    ClientAddr, FrontListener, IisConfig, IisIntegrationLayer, PeerAddr, bind_front_listener,
};
use tower::ServiceBuilder;

const TOKEN: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

#[test]
fn the_socket_path_comes_from_ancm_unix_socket() {
    let vars = [
        ("ASPNETCORE_PORT", "41234"),
        ("ASPNETCORE_APPL_PATH", "/"),
        ("ASPNETCORE_TOKEN", TOKEN),
        ("ANCM_UNIX_SOCKET", "/tmp/ancm-1-2.sock"),
    ];
    let lookup = |name: &str| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let config = IisConfig::from_lookup(lookup).unwrap().unwrap();
    assert_eq!(
        config.unix_socket(),
        Some(std::path::Path::new("/tmp/ancm-1-2.sock"))
    );
    let tcp_only =
        IisConfig::from_lookup(|name| (name != "ANCM_UNIX_SOCKET").then(|| lookup(name)).flatten())
            .unwrap()
            .unwrap();
    assert_eq!(tcp_only.unix_socket(), None);
}

/// Sends `GET /` with `headers` over the Unix-domain socket at `path`; status and body.
async fn get_over(path: &std::path::Path, headers: &[(&str, &str)]) -> (u16, String) {
    let stream = tokio::net::UnixStream::connect(path).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::get("/").header("host", "localhost");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        tx.send_request(req.body(Empty::<bytes::Bytes>::new()).unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn an_app_served_on_the_socket_gets_the_whole_layer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.sock");
    let config = IisConfig::new(1, AppPath::root(), PairingToken::new(TOKEN).unwrap())
        .with_unix_socket(&path);
    let listener = bind_front_listener(Some(&config), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(matches!(listener, FrontListener::Unix(_)));
    let app = ServiceBuilder::new()
        .layer(IisIntegrationLayer::new(&config))
        .service(Router::new().route(
            "/",
            get(|ClientAddr(client): ClientAddr| async move { client.to_string() }),
        ));
    tokio::spawn(async move {
        axum::serve(
            listener,
            ServiceExt::<Request>::into_make_service_with_connect_info::<PeerAddr>(app),
        )
        .await
    });

    // The front's appended entry is trusted: the socket's peer is loopback.
    let (status, body) = get_over(
        &path,
        &[
            ("ms-aspnetcore-token", TOKEN),
            ("x-forwarded-for", "203.0.113.7:51000"),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "203.0.113.7:51000"));
    // The pairing token is still required.
    let (status, _) = get_over(&path, &[("x-forwarded-for", "203.0.113.7:51000")]).await;
    assert_eq!(status, 400);
}
