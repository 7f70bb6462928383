//! An axum app behind IIS and ANCM, or behind the `ancm` gateway: the IIS integration layer
//! around the router, the crate's extractors in the handler, and a graceful stop on ANCM's
//! shutdown event or on Ctrl+C / SIGTERM.
//!
//! ```text
//! cargo run -p iis-integration --example axum_app     # not behind IIS: 127.0.0.1:5000
//! ASPNETCORE_PORT=41234 ASPNETCORE_TOKEN=secret ASPNETCORE_APPL_PATH=/app \
//!     cargo run -p iis-integration --example axum_app # as ANCM starts it
//! ```
//!
//! Everything after this header is the crate README's example, character for character
//! (`tests/readme_example.rs` checks it).
use std::net::SocketAddr;

use axum::{Router, ServiceExt, extract::Request, routing::get};
use iis_integration::{
    ClientAddr, IisConfig, IisIntegrationLayer, PathBase, Scheme, ShutdownSignal, bind_listener,
    graceful_shutdown,
};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `None` when not started by IIS/ANCM: then serve on a development address.
    let config = IisConfig::from_env()?;
    let listener = bind_listener(config.as_ref(), "127.0.0.1:5000".parse()?).await?;
    // Fired by ANCM's shutdown event; `graceful_shutdown` also waits for Ctrl+C / SIGTERM.
    let shutdown = ShutdownSignal::new();
    let iis = config
        .as_ref()
        .map(|config| IisIntegrationLayer::new(config).with_shutdown_signal(shutdown.clone()));
    let router = Router::new().route("/", get(hello));
    // Around the router, not inside it: the path base is removed before routing.
    let app = ServiceBuilder::new().option_layer(iis).service(router);
    axum::serve(
        listener,
        ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(graceful_shutdown(shutdown))
    .await?;
    Ok(())
}

/// What the layer learned about the request, through the crate's extractors.
async fn hello(ClientAddr(client): ClientAddr, scheme: Scheme, path_base: PathBase) -> String {
    format!("hello {client}: {scheme}, application at '{path_base}'\n")
}
