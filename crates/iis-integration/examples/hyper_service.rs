//! A hyper service behind IIS and ANCM, or behind the `ancm` gateway, without axum: the IIS
//! integration layer around a `tower::service_fn`, served by hyper-util, with the socket peer
//! given to the layer as a [`PeerAddr`] per connection, and a graceful stop that finishes the
//! requests in flight.
//!
//! ```text
//! cargo run -p iis-integration --no-default-features --example hyper_service   # 127.0.0.1:5000
//! ASPNETCORE_PORT=41234 ASPNETCORE_TOKEN=secret ASPNETCORE_APPL_PATH=/app \
//!     cargo run -p iis-integration --no-default-features --example hyper_service
//! ```
//!
//! `GET` anything: `hello CLIENT: SCHEME, application at 'PATH_BASE'`, from the request
//! extensions the layer fills in.
use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use iis_integration::{
    AddExtensionLayer, ClientAddr, IisConfig, IisIntegrationLayer, PathBase, PeerAddr, Scheme,
    ShutdownSignal, bind_listener, graceful_shutdown,
};
use tower::{ServiceBuilder, ServiceExt as _};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `None` when not started by IIS/ANCM: then serve on a development address.
    let config = IisConfig::from_env()?;
    let listener = bind_listener(config.as_ref(), "127.0.0.1:5000".parse()?).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let shutdown = ShutdownSignal::new();
    let iis = config
        .as_ref()
        .map(|config| IisIntegrationLayer::new(config).with_shutdown_signal(shutdown.clone()));

    let server = auto::Builder::new(TokioExecutor::new());
    let connections = GracefulShutdown::new();
    let stop = graceful_shutdown(shutdown);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept failed: {error}");
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // The forwarded-headers step trusts only what the socket peer appended: without
        // `PeerAddr` (axum's `ConnectInfo` elsewhere) it refuses every request.
        let app = ServiceBuilder::new()
            .layer(AddExtensionLayer::new(PeerAddr(peer)))
            .option_layer(iis.clone())
            .service_fn(hello);
        let service = hyper::service::service_fn(move |request| app.clone().oneshot(request));
        let connection = server
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
    // Stop accepting, let the requests in flight finish, then exit (ANCM waits for the exit).
    connections.shutdown().await;
    Ok(())
}

/// What the layer learned about the request, from its extensions. Without the layer (not
/// behind IIS) there is no `ClientAddr`, and the socket peer is the client.
async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let extensions = request.extensions();
    let client = match (extensions.get::<ClientAddr>(), extensions.get::<PeerAddr>()) {
        (Some(ClientAddr(client)), _) | (None, Some(PeerAddr(client))) => client.to_string(),
        (None, None) => "unknown".to_owned(),
    };
    let scheme = extensions.get::<Scheme>().unwrap_or(&Scheme::HTTP);
    let path_base = extensions.get::<PathBase>().map_or("", PathBase::as_str);
    let text = format!("hello {client}: {scheme}, application at '{path_base}'\n");
    Ok(Response::new(Full::new(Bytes::from(text))))
}
