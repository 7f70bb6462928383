//! The front's W3C Trace Context reaches the app as `TraceContext` (extension and axum
//! extractor) through `IisIntegrationLayer` (protocol §4.3 step 8), over a real server on
//! 127.0.0.1.
#![allow(clippy::unwrap_used)]

use ancm_protocol::{AppPath, PairingToken};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use iis_integration::{AddExtension, IisConfig, IisIntegrationLayer, TraceContext};
use test_support::client;
use test_support::server::TestServer;
use tokio::net::TcpListener;
use tower::Layer;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The app behind the integration: `/optional` answers the trace id and tracestate it got
/// (or `none`), `/required` uses the required extractor.
async fn app_behind_integration(token: &PairingToken) -> TestServer {
    let router = Router::new()
        .route(
            "/optional",
            get(|trace: Option<TraceContext>| async move {
                match trace {
                    Some(trace) => format!(
                        "{} {}",
                        trace.trace_id_hex(),
                        trace
                            .tracestate()
                            .map_or("-", |s| s.to_str().unwrap_or("?"))
                    ),
                    None => "none".to_owned(),
                }
            }),
        )
        .route(
            "/required",
            get(|trace: TraceContext| async move { trace.parent().to_string() }),
        );
    let config = IisConfig::new(41234, AppPath::root(), token.clone());
    let app = IisIntegrationLayer::new(&config).layer(router);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    TestServer::on(listener, move |peer| {
        AddExtension::new(app.clone(), ConnectInfo(peer))
    })
}

#[tokio::test]
async fn the_app_reads_the_trace_context_the_front_sent() {
    let token = PairingToken::generate();
    let server = app_behind_integration(&token).await;
    let token = token.expose_secret().to_owned();
    let res = client::send(
        server.addr(),
        "GET",
        "/optional",
        &[
            ("MS-ASPNETCORE-TOKEN", &token),
            ("traceparent", TRACEPARENT),
            ("tracestate", "congo=t61rcWkgMzE"),
        ],
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.body,
        b"4bf92f3577b34da6a3ce929d0e0e4736 congo=t61rcWkgMzE"
    );

    let res = client::send(
        server.addr(),
        "GET",
        "/required",
        &[
            ("MS-ASPNETCORE-TOKEN", &token),
            ("traceparent", TRACEPARENT),
        ],
    )
    .await;
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, TRACEPARENT.as_bytes())
    );
}

#[tokio::test]
async fn no_valid_traceparent_means_no_trace_context() {
    let token = PairingToken::generate();
    let server = app_behind_integration(&token).await;
    let token = token.expose_secret().to_owned();
    for traceparent in [
        None,
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
    ] {
        let mut headers = vec![
            ("MS-ASPNETCORE-TOKEN", token.as_str()),
            ("tracestate", "a=1"),
        ];
        headers.extend(traceparent.map(|value| ("traceparent", value)));
        let res = client::send(server.addr(), "GET", "/optional", &headers).await;
        assert_eq!((res.status, res.body.as_slice()), (200, &b"none"[..]));
        let res = client::send(server.addr(), "GET", "/required", &headers).await;
        assert_eq!(res.status, 400, "{traceparent:?}");
    }
}
