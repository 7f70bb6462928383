//! The backend of the bundled example site (`examples/site`): an axum app built on
//! `iis-integration` that shows, in a plain HTML page, what it learned about each request.
//!
//! `ancm run examples/site` starts it (web.config `processPath`); it also runs on its own, on
//! 127.0.0.1:5000, when no ANCM environment is set.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::SystemTime;

use axum::extract::Request;
use axum::response::Html;
use axum::{Router, ServiceExt};
use iis_integration::{
    ClientAddr, IisConfig, IisIntegrationLayer, PathBase, Scheme, ShutdownSignal, bind_listener,
    graceful_shutdown,
};
use tower::ServiceBuilder;

const DEV_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5000);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = match IisConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ancm-site-demo: invalid ANCM environment: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match bind_listener(config.as_ref(), DEV_ADDR).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("ancm-site-demo: cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Every request that reaches the handler passed the token check when ANCM started us.
    let behind_ancm = config.is_some();
    let shutdown = ShutdownSignal::new();
    let iis = config
        .as_ref()
        .map(|c| IisIntegrationLayer::new(c).with_shutdown_signal(shutdown.clone()));
    let router = Router::new().fallback(move |req: Request| page(req, behind_ancm));
    let app = ServiceBuilder::new().option_layer(iis).service(router);
    let served = axum::serve(
        listener,
        ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(graceful_shutdown(shutdown))
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ancm-site-demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn page(req: Request, behind_ancm: bool) -> Html<String> {
    let ext = req.extensions();
    let client = ext.get::<ClientAddr>().map(|c| c.0);
    let scheme = ext.get::<Scheme>().map_or("http", |s| s.as_str());
    let base = ext.get::<PathBase>().map_or("", |b| b.as_str());
    let rows = [
        (
            "Client IP",
            client.map_or("unknown".into(), |c| c.ip().to_string()),
        ),
        (
            "Client port",
            client.map_or("unknown".into(), |c| c.port().to_string()),
        ),
        ("Scheme", scheme.to_owned()),
        (
            "Path base",
            if base.is_empty() {
                "(none)".into()
            } else {
                base.to_owned()
            },
        ),
        ("Path", req.uri().path().to_owned()),
        (
            "Pairing token",
            if behind_ancm {
                "verified".into()
            } else {
                "not behind ANCM (dev mode)".into()
            },
        ),
        (
            "Server time (UTC)",
            httpdate::fmt_http_date(SystemTime::now()),
        ),
    ];
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>ancm-rs example site</title></head>\n\
         <body>\n<h1>Hello from behind ancm</h1>\n<p>What the backend learned about this request:</p>\n<table>\n",
    );
    for (name, value) in rows {
        html.push_str(&format!(
            "<tr><th align=\"left\">{name}</th><td>{}</td></tr>\n",
            escape(&value)
        ));
    }
    html.push_str("</table>\n</body>\n</html>\n");
    Html(html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
