//! Restore the client address, scheme, host and path prefix from `X-Forwarded-*` headers
//! sent by trusted proxies (protocol §4.5).
//!
//! ```
//! use iis_integration::{ClientAddr, ForwardedHeadersLayer, PeerAddr, Scheme};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(ForwardedHeadersLayer::iis())
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let client = req.extensions().get::<ClientAddr>().copied().unwrap();
//!         let scheme = req.extensions().get::<Scheme>().cloned().unwrap();
//!         let original = req.headers()["x-original-for"].to_str().unwrap().to_owned();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(format!("{} {scheme} {original}", client.0)))
//!     }));
//! let mut req = http::Request::get("/")
//!     .header("x-forwarded-for", "203.0.113.7:51000")
//!     .header("x-forwarded-proto", "https")
//!     .body(())
//!     .unwrap();
//! // The socket peer, which axum users get from `ConnectInfo<SocketAddr>` instead.
//! req.extensions_mut().insert(PeerAddr("127.0.0.1:60000".parse().unwrap()));
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.body(), "203.0.113.7:51000 https 127.0.0.1:60000");
//! # });
//! ```
//!
//! The input is the socket peer — the [`PeerAddr`](crate::PeerAddr) extension or axum's
//! `ConnectInfo<SocketAddr>` — never a header. Lists are read from the right, one entry per
//! trusted hop, at most [`forward_limit`](ForwardedHeadersOptions::forward_limit) of them;
//! each entry is applied only while the current peer is a known proxy (IPv4-mapped IPv6
//! peers are also checked as IPv4), and an unparsable `X-Forwarded-For` entry stops the walk.
//!
//! # The entry the trusted proxy appended
//!
//! Every proxy appends `, item` to `X-Forwarded-For` and `-Proto`, so those two are split at
//! **every** comma, with no quote handling: the entry the socket peer appended is the text
//! after the last comma, whatever the client put before it (`"`, `6.6.6.6"`, bytes that are
//! not UTF-8). ASP.NET Core honours quotes there, which lets one client `"` swallow the
//! appended entry. When the socket peer is trusted (a known proxy, or any peer when both
//! lists are empty) and `X-Forwarded-For` is enabled and has entries, the peer's own entry
//! must be an IP endpoint: if it is not (garbage, `unknown`, or empty as in `1.2.3.4,`), the
//! request is answered `400` with an empty body and a `warn` event that names the peer but
//! not the value, instead of falling back to the peer as ASP.NET Core does, which would show
//! the app its own front (often `127.0.0.1`) as the client (protocol §8.24). A header whose
//! entries are all empty counts as absent. With a forward limit above 1, an unparsable entry
//! further left still stops the walk, as in ASP.NET Core. `X-Forwarded-Host` and `-Prefix`
//! are read as ASP.NET Core reads them, quotes honoured.
//!
//! ```
//! use iis_integration::{ForwardedHeadersLayer, PeerAddr};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(ForwardedHeadersLayer::iis())
//!     .service(service_fn(|_req: http::Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     }));
//! let mut req = http::Request::get("/")
//!     .header("x-forwarded-for", "198.51.100.1, garbage")
//!     .body(())
//!     .unwrap();
//! req.extensions_mut().insert(PeerAddr("127.0.0.1:60000".parse().unwrap()));
//! assert_eq!(svc.oneshot(req).await.unwrap().status(), 400);
//! # });
//! ```
//! When something applied, the replaced value goes to `X-Original-For` / `-Proto` / `-Host`
//! / `-Prefix`, the consumed entries are removed from the right of the forwarded header (the
//! rest kept as one header line per entry, or the header removed), and the new value is
//! set: [`ClientAddr`](crate::ClientAddr), [`Scheme`](crate::Scheme) (as given, not
//! lower-cased), the `Host` header, [`PathBase`](crate::PathBase) (percent-decoded except
//! `%2F`).
//!
//! [`ClientAddr`](crate::ClientAddr) and [`Scheme`](crate::Scheme) are inserted for every
//! request, so the app reads the same extensions whether or not a header applied (then the
//! socket peer, and the scheme of the URI or an existing [`Scheme`](crate::Scheme)
//! extension, else `http`).
//!
//! Fails closed: with known proxies or networks configured (the default) and no socket peer
//! in the extensions, nothing is applied. With both lists empty every peer is trusted.
mod apply;
mod list;
mod options;

use std::sync::Arc;

use tower_layer::Layer as _;

pub use options::{ForwardedHeadersOptions, XForwarded};

use crate::step::step_middleware;
pub(crate) use apply::ForwardedStep;

/// Applies `X-Forwarded-*` headers; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ForwardedHeadersLayer {
    step: Arc<ForwardedStep>,
}

/// The service of [`ForwardedHeadersLayer`].
#[derive(Clone, Debug)]
pub struct ForwardedHeaders<S> {
    inner: S,
    step: Arc<ForwardedStep>,
}

impl ForwardedHeadersLayer {
    /// Apply headers as `options` say.
    pub fn new(options: ForwardedHeadersOptions) -> Self {
        Self {
            step: Arc::new(ForwardedStep::new(options)),
        }
    }

    /// What ANCM's backend applies: `X-Forwarded-For` and `-Proto`, one entry, from loopback.
    pub fn iis() -> Self {
        Self::new(ForwardedHeadersOptions::iis())
    }
}

impl<S> ForwardedHeaders<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, options: ForwardedHeadersOptions) -> Self {
        ForwardedHeadersLayer::new(options).layer(inner)
    }
}

step_middleware!(ForwardedHeadersLayer, ForwardedHeaders);
