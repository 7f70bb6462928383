//! An axum app hosted the ANCM way: it echoes, as JSON, what it sees of every request after
//! the IIS integration layer.
//!
//! ```text
//! cargo run --example iis_echo                      # not behind IIS: 127.0.0.1:5000
//! ASPNETCORE_PORT=41234 ASPNETCORE_APPL_PATH=/app ASPNETCORE_TOKEN=secret \
//!     cargo run --example iis_echo                  # as ANCM starts it: 127.0.0.1:41234
//! ```
//!
//! With `ANCM_UNIX_SOCKET` set too (`ancm` sets it for an application with the handler
//! setting `backendTransport` = `unix`), it listens on that Unix-domain socket instead.
//!
//! Every request that reaches the app gets `200` and
//! `{"method","path","path_base","query","scheme","client_ip","client_port","headers",
//! "client_cert_der_base64","windows_user","windows_token","websocket_upgrade_available"}`.
//! The request body is read to its end before answering, so a request in flight at shutdown
//! finishes. `websocket_upgrade_available` is true when hyper offers an upgrade (HTTP/1.1
//! requests asking for one) and the front relays WebSockets. After ANCM's shutdown event
//! (or SIGINT/SIGTERM) the server finishes the requests in flight and exits 0; a malformed
//! ANCM environment exits 2 with a message on stderr.
use std::net::SocketAddr;
use std::process::ExitCode;

use ancm_protocol::{client_cert, win_token};
use axum::body::Body;
use axum::extract::Request;
use axum::{Json, Router, ServiceExt};
use http_body_util::BodyExt;
use iis_integration::{
    ClientAddr, ClientCertificate, FrontListener, IisConfig, IisIntegrationLayer, PathBase,
    PeerAddr, Scheme, ShutdownSignal, TraceContext, WindowsUser, bind_front_listener,
    graceful_shutdown,
};
use serde_json::{Map, Value, json};
use tower::ServiceBuilder;

/// Where the app listens when it is not started by ANCM.
const DEV_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5000);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // ANCM redirects stdout/stderr to log files: no colour codes.
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let config = match IisConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("iis_echo: invalid ANCM environment: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match bind_front_listener(config.as_ref(), DEV_ADDR).await {
        Ok(listener) => listener,
        Err(error) => {
            let addr = match config.as_ref() {
                Some(config) => config.unix_socket().map_or_else(
                    || config.listen_addr().to_string(),
                    |path| path.display().to_string(),
                ),
                None => DEV_ADDR.to_string(),
            };
            eprintln!("iis_echo: cannot listen on {addr}: {error}");
            return ExitCode::from(1);
        }
    };
    match &listener {
        FrontListener::Tcp(tcp) => match tcp.local_addr() {
            Ok(addr) => tracing::info!(%addr, behind_iis = config.is_some(), "listening"),
            Err(error) => tracing::warn!(%error, "listening on an unknown address"),
        },
        #[cfg(unix)]
        FrontListener::Unix(_) => tracing::info!(
            unix_socket = ?config.as_ref().and_then(IisConfig::unix_socket),
            behind_iis = config.is_some(),
            "listening"
        ),
    }

    let shutdown = ShutdownSignal::new();
    let iis = config
        .as_ref()
        .map(|config| IisIntegrationLayer::new(config).with_shutdown_signal(shutdown.clone()));
    let app = ServiceBuilder::new()
        .option_layer(iis)
        .service(Router::new().fallback(echo));
    let served = axum::serve(
        listener,
        ServiceExt::<Request>::into_make_service_with_connect_info::<PeerAddr>(app),
    )
    .with_graceful_shutdown(graceful_shutdown(shutdown))
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iis_echo: server error: {error}");
            ExitCode::from(1)
        }
    }
}

async fn echo(
    ClientAddr(client): ClientAddr,
    scheme: Scheme,
    path_base: PathBase,
    cert: Option<ClientCertificate>,
    user: Option<WindowsUser>,
    trace: Option<TraceContext>,
    request: Request,
) -> Json<Value> {
    let (parts, body) = request.into_parts();
    // The trace id of the front's access log line for this request.
    let trace_id = trace.as_ref().map(TraceContext::trace_id_hex);
    tracing::debug!(trace_id = %trace_id.as_deref().unwrap_or("-"), method = %parts.method, path = parts.uri.path(), "request");
    let websocket_upgrade_available = parts
        .extensions
        .get::<hyper::upgrade::OnUpgrade>()
        .is_some();
    drain(body).await;

    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let values = headers
            .entry(name.as_str())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = values {
            values.push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
    }
    let cert = cert.map(|cert| {
        String::from_utf8_lossy(client_cert::encode(cert.der()).as_bytes()).into_owned()
    });
    let windows_token = user.as_ref().map(|user| {
        String::from_utf8_lossy(win_token::encode(u64::from(user.raw_handle())).as_bytes())
            .into_owned()
    });
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "path_base": path_base.as_str(),
        "query": parts.uri.query().unwrap_or(""),
        "scheme": scheme.as_str(),
        "client_ip": client.ip().to_string(),
        "client_port": client.port(),
        "headers": headers,
        "client_cert_der_base64": cert,
        "windows_user": user.as_ref().and_then(WindowsUser::name),
        "windows_token": windows_token,
        "websocket_upgrade_available": websocket_upgrade_available,
    }))
}

/// Read the body to its end, discarding it, so the request is complete before the answer.
async fn drain(mut body: Body) {
    while let Some(frame) = body.frame().await {
        if let Err(error) = frame {
            tracing::debug!(%error, "request body ended early");
            break;
        }
    }
}
