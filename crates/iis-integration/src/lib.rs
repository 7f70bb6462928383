//! Host a Rust HTTP service behind IIS and the ASP.NET Core Module (ANCM) out-of-process, or
//! behind the `ancm` gateway: the backend half of ancm-rs, as tower layers.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{Router, ServiceExt, extract::Request, routing::get};
//! use iis_integration::{ClientAddr, IisConfig, IisIntegrationLayer, ShutdownSignal, bind_listener, graceful_shutdown};
//! use tower::ServiceBuilder;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // `None` when not started by ANCM: then serve on a development address.
//!     let config = IisConfig::from_env()?;
//!     let listener = bind_listener(config.as_ref(), "127.0.0.1:5000".parse()?).await?;
//!     let shutdown = ShutdownSignal::new();
//!     let iis = config.as_ref().map(|c| IisIntegrationLayer::new(c).with_shutdown_signal(shutdown.clone()));
//!     let router = Router::new().route("/", get(|ClientAddr(client): ClientAddr| async move {
//!         format!("hello {client}")
//!     }));
//!     // Around the router, so that the path base is removed before routing.
//!     let app = ServiceBuilder::new().option_layer(iis).service(router);
//!     axum::serve(listener, ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app))
//!         .with_graceful_shutdown(graceful_shutdown(shutdown))
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! When ANCM starts the process it sets `ASPNETCORE_PORT`, `ASPNETCORE_APPL_PATH` and
//! `ASPNETCORE_TOKEN` (protocol §4.1); [`IisConfig::from_env`] reads them, and
//! [`IisIntegrationLayer`] does what ASP.NET Core's IIS integration does, in its order
//! (protocol §4.2):
//!
//! 1. [`path_base`]: strip the application's virtual path.
//! 2. [`forwarded`]: restore the client address and scheme from `X-Forwarded-For` / `-Proto`.
//! 3. [`pairing_token`]: reject requests without the pairing token (400).
//! 4. [`trace_context`]: the front's W3C Trace Context, so the app logs the front's trace id.
//! 5. [`shutdown_event`]: answer ANCM's shutdown request (202) and fire the [`ShutdownSignal`].
//! 6. [`client_cert`]: the forwarded client certificate.
//! 7. [`windows_identity`]: the forwarded Windows user, when IIS authentication is on.
//! 8. [`websockets`]: hide connection upgrades when the front does not relay WebSockets.
//!
//! Every step is also a layer of its own. Rejections are responses with empty bodies, so
//! services stay `Infallible` when the inner one is. What the layers learned is in request
//! extensions ([`ClientAddr`], [`Scheme`], [`PathBase`], [`OriginalUri`],
//! [`ClientCertificate`], [`WindowsUser`], [`TraceContext`]), which are also axum extractors
//! with the `axum` feature. In tests, [`AddExtensionLayer::mock`] stands in for the layers: it inserts a value
//! only into requests that do not already carry one, like axum's `MockConnectInfo`.
//!
//! # Where ancm-rs deliberately differs from ANCM
//!
//! * The pairing token is compared in constant time and never logged; a mismatch logs that
//!   it did not match and the socket peer (protocol §8.1). ANCM logs the expected token. The
//!   accepted token header is also removed from the request, so the app cannot echo it.
//! * The forwarded-headers step fails closed when the socket peer is unknown (no
//!   [`PeerAddr`] / `ConnectInfo`), as the 2026 ASP.NET Core change recommends.
//! * `X-Forwarded-For` and `-Proto` are split at every comma, quotes being ordinary
//!   characters, so a client's `"` cannot swallow the entry the front appended; when that
//!   entry, the one the trusted socket peer appended, is no IP endpoint, the request gets
//!   `400` instead of the app seeing the proxy (often loopback) as the client (protocol
//!   §8.24). ASP.NET Core honours quotes and falls back to the proxy's address.
//! * A request whose path equals the path base reaches the app with path `/` (ASP.NET Core:
//!   an empty path), since a URI path cannot be empty.
//! * Off Windows, the forwarded Windows token is exposed as its raw handle value only.
//! * With `ANCM_UNIX_SOCKET` (set only by the `ancm` gateway, for applications that opt in),
//!   [`bind_front_listener`] listens on that Unix-domain socket instead of the port, and its
//!   connections' peer is reported as `127.0.0.1:0` (protocol §8.42).
//! * ANCM's `DEBUG`-verb answer (only with a debugger attached) and its request-body-size
//!   switch have no equivalent here.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client_cert;
mod config;
mod extensions;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
pub mod forwarded;
mod future;
mod headers;
pub mod integration;
pub mod listener;
pub mod pairing_token;
pub mod path_base;
mod serve;
pub mod shutdown_event;
mod step;
pub mod trace_context;
pub mod websockets;
#[cfg(windows)]
mod windows_ffi;
pub mod windows_identity;

pub use ancm_protocol::extension::{AddExtension, AddExtensionLayer};
pub use client_cert::{ForwardClientCertificate, ForwardClientCertificateLayer};
pub use config::{IisConfig, IisConfigError};
pub use extensions::{
    ClientAddr, ClientCertificate, OriginalUri, PathBase, PeerAddr, Scheme, TraceContext,
    WindowsUser,
};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{
    MissingClientAddr, MissingClientCertificate, MissingTraceContext, MissingWindowsUser,
};
pub use forwarded::{ForwardedHeaders, ForwardedHeadersLayer, ForwardedHeadersOptions, XForwarded};
pub use future::ResponseFuture;
pub use integration::{IisIntegration, IisIntegrationLayer};
pub use listener::{FrontListener, FrontStream, bind_front_listener};
pub use pairing_token::{RequirePairingToken, RequirePairingTokenLayer};
pub use path_base::{UsePathBase, UsePathBaseLayer};
pub use serve::{ShutdownSignal, bind_listener, graceful_shutdown};
pub use shutdown_event::{ShutdownEvent, ShutdownEventLayer};
pub use trace_context::{ReadTraceContext, ReadTraceContextLayer};
pub use websockets::{DisableUpgrade, DisableUpgradeLayer};
pub use windows_identity::{ForwardWindowsIdentity, ForwardWindowsIdentityLayer};

// The README's example (what crates.io shows) must keep compiling; it uses the extractors.
// tests/readme_example.rs keeps it equal to examples/axum_app.rs and the repository README's.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
