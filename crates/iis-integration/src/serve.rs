//! Listening and stopping: the listener address and the graceful-shutdown future.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{Router, ServiceExt, extract::Request, routing::get};
//! use iis_integration::{IisConfig, IisIntegrationLayer, ShutdownSignal, bind_listener, graceful_shutdown};
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = IisConfig::from_env()?;
//! let listener = bind_listener(config.as_ref(), "127.0.0.1:5000".parse()?).await?;
//! let shutdown = ShutdownSignal::new();
//! let iis = config.as_ref().map(|c| IisIntegrationLayer::new(c).with_shutdown_signal(shutdown.clone()));
//! let app = ServiceBuilder::new()
//!     .option_layer(iis)
//!     .service(Router::new().route("/", get(|| async { "hello" })));
//! axum::serve(listener, ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app))
//!     .with_graceful_shutdown(graceful_shutdown(shutdown))
//!     .await?;
//! # Ok(()) }
//! ```
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::IisConfig;

/// A one-shot, cloneable stop signal: fired by the shutdown event (or by anyone holding a
/// clone), awaited by the server.
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    fired: Arc<watch::Sender<bool>>,
}

impl ShutdownSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self {
            fired: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Fire the signal. Returns `true` the first time, `false` if it had already fired.
    pub fn trigger(&self) -> bool {
        !self.fired.send_replace(true)
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.fired.borrow()
    }

    /// Resolves once the signal has fired (at once if it already has).
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut fired = self.fired.subscribe();
        async move {
            // The sender lives in `self`'s Arc, which this receiver does not keep alive; if
            // every signal handle is dropped the signal can never fire, so wait forever.
            if fired.wait_for(|fired| *fired).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// Bind `127.0.0.1:PORT` when behind IIS (`config` is `Some`), else `dev_addr`.
pub async fn bind_listener(
    config: Option<&IisConfig>,
    dev_addr: SocketAddr,
) -> io::Result<TcpListener> {
    let addr = config.map_or(dev_addr, IisConfig::listen_addr);
    TcpListener::bind(addr).await
}

/// Resolves on the first of: `signal` firing (the ANCM shutdown event), SIGINT or SIGTERM
/// (Ctrl+C or Ctrl+Break on Windows); a process signal is logged by name (the shutdown event
/// is logged where it is received). Made for
/// `axum::serve(..).with_graceful_shutdown(graceful_shutdown(signal))`, which then stops
/// accepting connections and finishes the requests in flight.
///
/// A process signal that cannot be watched is logged and left out (see
/// [`ancm_protocol::signal::stop_requested`]).
pub async fn graceful_shutdown(signal: ShutdownSignal) {
    tokio::select! {
        () = signal.triggered() => {}
        name = ancm_protocol::signal::stop_requested() => tracing::info!(signal = name, "stopping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_once_and_wakes_waiters() {
        let signal = ShutdownSignal::new();
        let waiter = tokio::spawn(signal.triggered());
        assert!(!signal.is_triggered());
        assert!(signal.clone().trigger());
        assert!(!signal.trigger());
        waiter.await.unwrap();
        signal.triggered().await;
        graceful_shutdown(signal).await;
    }
}
