//! A custom ANCM-style gateway in front of any HTTP/1.1 backend, composed from `ancm-front`.
//!
//! ```text
//! custom_gateway --listen 127.0.0.1:8080 --upstream 127.0.0.1:5000 --token 0f6c... [--app-path /shop]
//! ```
//!
//! Per accepted connection the accept loop builds a [`ConnectionInfo`] (peer, local
//! address, plain HTTP); per request the stack is, outermost first: connection facts → the
//! fixed backend choice → request limits (414/431/413) → the ANCM bundle (hop-by-hop,
//! `MS-ASPNETCORE-*` removal, application path, pairing token, `X-Forwarded-For`/`-Proto`, client
//! certificate, Windows token) → the streaming forwarder. hyper-util's server speaks HTTP/1.1
//! and h2c to clients, with upgrades on so WebSockets pass.
use std::net::SocketAddr;
use std::time::Duration;

use ancm_front::backend::BackendTarget;
use ancm_front::conn::ConnectionInfo;
use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::limits::{LimitsLayer, RequestLimits};
use ancm_front::{AddExtension, AddExtensionLayer, AncmConfig, AncmLayer, RequestTimeout};
use ancm_protocol::{AppPath, PairingToken};
use clap::Parser;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt as _};

/// An ANCM-style reverse proxy in front of one backend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: SocketAddr,
    /// The backend, HOST:PORT (normally 127.0.0.1:PORT).
    #[arg(long)]
    upstream: String,
    /// The pairing token the backend expects in MS-ASPNETCORE-TOKEN (its ASPNETCORE_TOKEN).
    #[arg(long)]
    token: String,
    /// The application's virtual path; requests outside it get 404.
    #[arg(long, default_value = "/")]
    app_path: String,
    /// requestTimeout in seconds: per connect, response head and body gap (0 = none).
    #[arg(long, default_value_t = RequestTimeout::WEB_CONFIG_DEFAULT.as_secs())]
    request_timeout: u64,
    /// Largest request body in bytes (413 above); unlimited when absent.
    #[arg(long)]
    max_request_body: Option<u64>,
    /// Speak h2c (HTTP/2 prior knowledge) to the backend.
    #[arg(long)]
    http2_upstream: bool,
    /// Runtime worker threads; 1 runs everything on one thread (least CPU per request).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let upstream = tokio::net::lookup_host(&args.upstream)
        .await?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", args.upstream))?;
    let token = PairingToken::new(&args.token)?;
    let app_path = AppPath::parse(&args.app_path)?;

    let target = BackendTarget {
        app_path: app_path.clone(),
        ..BackendTarget::new(upstream, Some(token))
    };
    let timeout = RequestTimeout::from_web_config(Duration::from_secs(args.request_timeout));
    let forwarder = Forwarder::new(
        ForwardConfig::default()
            .request_timeout(timeout)
            .http2(args.http2_upstream),
    );
    let stack = ServiceBuilder::new()
        .layer(AddExtensionLayer::new(target))
        .layer(LimitsLayer::new(
            RequestLimits::default().max_request_body(args.max_request_body),
        ))
        .layer(AncmLayer::new(AncmConfig {
            app_path,
            ..AncmConfig::default()
        }))
        .service(forwarder);

    // hyper's own head limits must not undercut the limits layer's (see `ancm_front::limits`).
    let mut server = auto::Builder::new(TokioExecutor::new());
    server.http1().max_buf_size(64 * 1024);
    server.http2().max_header_list_size(64 * 1024);

    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, %upstream, "custom gateway listening");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(args.listen);
        let svc = AddExtension::new(stack.clone(), ConnectionInfo::plain(peer, local));
        let server = server.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                svc.clone().oneshot(req)
            });
            if let Err(error) = server
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%peer, error = %error, "client connection ended with an error");
            }
        });
    }
}
