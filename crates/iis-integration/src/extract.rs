//! axum extractors for what the layers learned (feature `axum`).
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use iis_integration::{AddExtensionLayer, ClientAddr, ClientCertificate, OriginalUri, PathBase, Scheme, WindowsUser};
//! use tower::ServiceExt;
//!
//! async fn handler(
//!     ClientAddr(client): ClientAddr,
//!     scheme: Scheme,
//!     path_base: PathBase,
//!     OriginalUri(original): OriginalUri,
//!     cert: Option<ClientCertificate>,
//!     user: Option<WindowsUser>,
//! ) -> String {
//!     format!("{client} {scheme} {path_base} {original} {} {}", cert.is_some(), user.is_some())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // In tests, stand in for the layers (like axum's `MockConnectInfo`): the mock applies only
//! // to requests that do not carry a `ClientAddr` already.
//! let app = Router::new()
//!     .route("/", get(handler))
//!     .layer(AddExtensionLayer::mock(ClientAddr("203.0.113.7:51000".parse().unwrap())));
//! let body = |res: axum::response::Response| axum::body::to_bytes(res.into_body(), 1024);
//! let res = app.clone().oneshot(http::Request::new(Body::empty())).await.unwrap();
//! assert_eq!(body(res).await.unwrap(), "203.0.113.7:51000 http  / false false");
//!
//! // What a layer in front put there wins over the mock.
//! let mut req = http::Request::new(Body::empty());
//! req.extensions_mut().insert(ClientAddr("198.51.100.1:443".parse().unwrap()));
//! let res = app.oneshot(req).await.unwrap();
//! assert!(body(res).await.unwrap().starts_with(b"198.51.100.1:443 "));
//! # });
//! ```
//!
//! Each extension type is its own extractor:
//!
//! * [`ClientAddr`]: the extension, else the socket peer ([`PeerAddr`] or
//!   `ConnectInfo<SocketAddr>`); rejects with 500 when there is neither (the server was not
//!   started with connect info).
//! * [`Scheme`], [`PathBase`], [`OriginalUri`]: never reject; without the extension they fall
//!   back to the URI's scheme or `http`, no path base, and the current URI.
//! * [`ClientCertificate`] and [`WindowsUser`]: use `Option<_>`; required, they reject with
//!   403 and 401 respectively when absent.
//! * [`TraceContext`]: use `Option<_>` (a request need not carry one; the `ancm` front always
//!   sends one); required, it rejects with 400 when absent.
//!
//! ```
//! use ancm_protocol::trace::TraceParent;
//! use axum::{Router, body::Body, routing::get};
//! use iis_integration::{AddExtensionLayer, TraceContext};
//! use tower::ServiceExt;
//!
//! async fn handler(trace: Option<TraceContext>) -> String {
//!     // Log lines carrying this id match the front's access log line of the request.
//!     let id = trace.map(|t| t.trace_id_hex()).unwrap_or_default();
//!     tracing::info!(trace_id = %id, "handled");
//!     id
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let parent = TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! let app = Router::new()
//!     .route("/", get(handler))
//!     .layer(AddExtensionLayer::mock(TraceContext::new(parent, None)));
//! let res = app.oneshot(http::Request::new(Body::empty())).await.unwrap();
//! let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
//! assert_eq!(body, "4bf92f3577b34da6a3ce929d0e0e4736");
//! # });
//! ```
use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::extensions::{
    ClientAddr, ClientCertificate, OriginalUri, PathBase, PeerAddr, Scheme, TraceContext,
    WindowsUser, peer_addr,
};

/// [`ClientAddr`] found neither the extension nor a socket peer.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "no client address: serve with `into_make_service_with_connect_info::<SocketAddr>()` or insert `PeerAddr`"
)]
pub struct MissingClientAddr;

impl IntoResponse for MissingClientAddr {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// A required [`ClientCertificate`] is absent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a client certificate is required")]
pub struct MissingClientCertificate;

impl IntoResponse for MissingClientCertificate {
    fn into_response(self) -> Response {
        (StatusCode::FORBIDDEN, self.to_string()).into_response()
    }
}

/// A required [`WindowsUser`] is absent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("Windows authentication is required")]
pub struct MissingWindowsUser;

impl IntoResponse for MissingWindowsUser {
    fn into_response(self) -> Response {
        // As ASP.NET Core's Windows challenge: the status only; IIS adds WWW-Authenticate.
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// A required [`TraceContext`] is absent: the request had no valid `traceparent`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no valid traceparent header")]
pub struct MissingTraceContext;

impl IntoResponse for MissingTraceContext {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = MissingClientAddr;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<ClientAddr>() {
            return Ok(*client);
        }
        peer_addr(&parts.extensions)
            .map(ClientAddr)
            .ok_or(MissingClientAddr)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = MissingClientAddr;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        peer_addr(&parts.extensions)
            .map(PeerAddr)
            .ok_or(MissingClientAddr)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scheme {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<Scheme>() {
            Some(scheme) => scheme.clone(),
            None => parts
                .uri
                .scheme_str()
                .and_then(Scheme::parse)
                .unwrap_or(Scheme::HTTP),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathBase {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<PathBase>()
            .cloned()
            .unwrap_or_default())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OriginalUri {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<OriginalUri>()
            .cloned()
            .unwrap_or_else(|| OriginalUri(parts.uri.clone())))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientCertificate {
    type Rejection = MissingClientCertificate;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientCertificate>()
            .cloned()
            .ok_or(MissingClientCertificate)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientCertificate {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ClientCertificate>().cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WindowsUser {
    type Rejection = MissingWindowsUser;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<WindowsUser>()
            .cloned()
            .ok_or(MissingWindowsUser)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for WindowsUser {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<WindowsUser>().cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = MissingTraceContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TraceContext>()
            .cloned()
            .ok_or(MissingTraceContext)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for TraceContext {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<TraceContext>().cloned())
    }
}
