//! `ancm run`: assemble the applications, listeners and shutdown.
use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use ancm_front::Body;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::cli::RunArgs;
use crate::server::{self, Listener};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Nothing to serve.
    #[error("no site folder given: pass SITE_DIR or --app PATH=SITE_DIR")]
    NoSite,
    /// A site folder is missing.
    #[error("site folder {0} does not exist")]
    MissingSite(PathBuf),
}

/// Run until SIGINT/SIGTERM.
pub async fn run(args: RunArgs) -> Result<(), GatewayError> {
    init_logging();
    let mut apps = args.apps.clone();
    if let Some(dir) = &args.site_dir {
        apps.push((args.app_path.clone(), dir.clone()));
    }
    if apps.is_empty() {
        return Err(GatewayError::NoSite);
    }
    for (_, dir) in &apps {
        if !dir.is_dir() {
            return Err(GatewayError::MissingSite(dir.clone()));
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) if !args.https_listen.is_empty() => Some(crate::tls::server_config(
            cert,
            key,
            args.client_ca.as_deref(),
            args.client_cert,
        )?),
        _ => None,
    };
    let mut plain = args.listen.clone();
    if plain.is_empty() && args.https_listen.is_empty() {
        plain.push(std::net::SocketAddr::from(([127, 0, 0, 1], 8080)));
    }
    let mut listeners = Vec::new();
    for addr in plain {
        listeners.push(bind(addr, None).await?);
    }
    for addr in &args.https_listen {
        listeners.push(bind(*addr, tls.clone()).await?);
    }
    let service = tower::service_fn(|_req: Request<Incoming>| async {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(resp)
    });
    server::serve(listeners, service, shutdown_signal(), Duration::from_secs(args.drain_timeout))
        .await;
    Ok(())
}

async fn bind(
    addr: std::net::SocketAddr,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Result<Listener, GatewayError> {
    let https = tls.is_some();
    let listener = Listener::bind(addr, tls).await.map_err(|source| GatewayError::Bind { addr, source })?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, https, "listening");
    Ok(listener)
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Resolves on SIGINT or SIGTERM (Ctrl+C / Ctrl+Break on Windows).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => tracing::info!("SIGINT received"),
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_c};
        match (ctrl_c(), ctrl_break()) {
            (Ok(mut c), Ok(mut b)) => {
                tokio::select! {
                    _ = c.recv() => tracing::info!("Ctrl+C received"),
                    _ = b.recv() => tracing::info!("Ctrl+Break received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
