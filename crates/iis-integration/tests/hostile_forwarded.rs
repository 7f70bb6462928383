//! Hostile `X-Forwarded-For` / `-Proto` values as a front that appends without looking (IIS's
//! ANCM) passes them on, through `IisIntegrationLayer` on a real server and raw HTTP/1.1
//! (protocol §4.5, §8.24): a client's quote never makes the app see the front as the client.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ancm_protocol::{AppPath, PairingToken};
use axum::Router;
use axum::extract::Request;
use iis_integration::{AddExtension, ClientAddr, IisConfig, IisIntegrationLayer, PeerAddr, Scheme};
use serde_json::json;
use test_support::client::{self, RawResponse};
use test_support::server::TestServer;
use tokio::net::TcpListener;
use tower::Layer;

const TOKEN: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

/// The client endpoint the front appends in every request below.
const CLIENT: &str = "203.0.113.7:51000";

/// An app behind the whole IIS integration layer that answers with the client endpoint and
/// scheme it learned; the server tells the layer each connection's peer (127.0.0.1 here, a
/// known proxy).
struct App {
    server: TestServer,
    calls: Arc<AtomicUsize>,
}

impl App {
    async fn start() -> Self {
        let config = IisConfig::new(1, AppPath::root(), PairingToken::new(TOKEN).unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let router = Router::new().fallback(move |req: Request| {
            let calls = counted.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let ext = req.extensions();
                axum::Json(json!({
                    "client": ext.get::<ClientAddr>().map(|c| c.0.to_string()),
                    "scheme": ext.get::<Scheme>().map(|s| s.to_string()),
                }))
            }
        });
        let app = IisIntegrationLayer::new(&config).layer(router);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = TestServer::on(listener, move |peer| {
            AddExtension::new(app.clone(), PeerAddr(peer))
        });
        Self { server, calls }
    }

    /// `GET /` with the token and the two forwarded headers as raw bytes.
    async fn send(&self, xff: &[u8], xfp: &[u8]) -> RawResponse {
        let mut raw = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nMS-ASPNETCORE-TOKEN: {TOKEN}\r\n",
            client::HOST
        )
        .into_bytes();
        for (name, value) in [
            (&b"X-Forwarded-For: "[..], xff),
            (b"X-Forwarded-Proto: ", xfp),
        ] {
            raw.extend_from_slice(name);
            raw.extend_from_slice(value);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        client::send_raw(self.server.addr(), &raw).await
    }
}

/// `client_sent`, then what the front appends: `, <item>`.
fn appended(client_sent: &[u8], item: &str) -> Vec<u8> {
    let mut value = client_sent.to_vec();
    value.extend_from_slice(b", ");
    value.extend_from_slice(item.as_bytes());
    value
}

#[tokio::test]
async fn a_client_quote_cannot_hide_the_entry_the_front_appended() {
    let app = App::start().await;
    for client_sent in [
        &b"\""[..],
        b"6.6.6.6\"",
        b"\"6.6.6.6\", \"",
        b"\xff\"",
        b"127.0.0.1\", \"x",
    ] {
        let res = app
            .send(
                &appended(client_sent, CLIENT),
                &appended(client_sent, "https"),
            )
            .await;
        assert_eq!(res.status, 200, "{client_sent:?}");
        let seen = res.json();
        assert_eq!(seen["client"], CLIENT, "{client_sent:?}");
        assert_eq!(seen["scheme"], "https", "{client_sent:?}");
    }
}

#[tokio::test]
async fn an_entry_from_the_trusted_front_that_is_no_endpoint_is_400() {
    let app = App::start().await;
    for xff in [
        &b"1.2.3.4, garbage"[..],
        b"\"",
        b"1.2.3.4,",
        b"unknown",
        b"203.0.113.7:51000\"",
    ] {
        let res = app.send(xff, b"http").await;
        assert_eq!(res.status, 400, "{xff:?}");
        assert!(res.body.is_empty());
    }
    assert_eq!(
        app.calls.load(Ordering::SeqCst),
        0,
        "the app is never called"
    );
    // No header, or nothing but empty entries: nothing was appended; the peer it is.
    let res = app.send(b", ,", b"http").await;
    assert_eq!(res.status, 200);
    assert!(
        res.json()["client"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}
