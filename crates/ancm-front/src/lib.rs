//! The front half of the ASP.NET Core Module as tower layers, plus a streaming forwarder.
//!
//! What IIS + ANCM do to each request on its way to an out-of-process backend: strip
//! client-sent `MS-ASPNETCORE-*` headers, remove hop-by-hop headers, add the pairing token,
//! append `X-Forwarded-For` / `X-Forwarded-Proto`, forward the client certificate and the
//! Windows token, and carry the request to `http://127.0.0.1:PORT` with bodies streamed both
//! ways. Every layer is usable on its own; [`AncmLayer`] stacks them in the right order.
//!
//! Header names and formats come from [`ancm_protocol`]; nothing here spells them again.
//!
//! ```
//! use ancm_front::forward::{ForwardConfig, Forwarder};
//! use ancm_front::{AddExtensionLayer, AncmConfig, AncmLayer, BackendTarget};
//! use ancm_protocol::PairingToken;
//! use tower::ServiceBuilder;
//!
//! // One upstream on loopback; per connection, wrap this in an `AddExtensionLayer` of the
//! // connection's `ConnectionInfo` (see `conn`).
//! let target = BackendTarget::new("127.0.0.1:5000".parse().unwrap(), Some(PairingToken::generate()));
//! let gateway = ServiceBuilder::new()
//!     .layer(AddExtensionLayer::new(target))
//!     .layer(AncmLayer::new(AncmConfig::default()))
//!     .service(Forwarder::new(ForwardConfig::default()));
//! # let _ = gateway;
//! ```
//!
//! # The layers
//!
//! Each is an `XLayer` making an `X` service named for what it does; [`AncmLayer`] is all of
//! them in one service.
//!
//! | module | layer | service |
//! | --- | --- | --- |
//! | [`host`] | [`ValidateHostLayer`] | [`ValidateHost`] |
//! | [`hop_by_hop`] | [`RemoveHopByHopLayer`] | [`RemoveHopByHop`] |
//! | [`module_headers`] | [`StripModuleHeadersLayer`] | [`StripModuleHeaders`] |
//! | [`app_path`] | [`RequireAppPathLayer`] | [`RequireAppPath`] |
//! | [`pairing_token`] | [`SetPairingTokenLayer`] | [`SetPairingToken`] |
//! | [`forwarded_for`] | [`AddForwardedForLayer`] | [`AddForwardedFor`] |
//! | [`forwarded_proto`] | [`AddForwardedProtoLayer`] | [`AddForwardedProto`] |
//! | [`client_cert`] | [`SetClientCertLayer`] | [`SetClientCert`] |
//! | [`win_auth_token`] | [`ForwardWindowsTokenLayer`] | [`ForwardWindowsToken`] |
//! | [`limits`] | [`LimitsLayer`] | [`Limits`] |
//! | [`trace`] | [`PropagateTraceLayer`] | [`PropagateTrace`] |
//! | [`bundle`] | [`AncmLayer`] | [`Ancm`] |
//!
//! [`ValidateHostLayer`]: host::ValidateHostLayer
//! [`ValidateHost`]: host::ValidateHost
//! [`RemoveHopByHopLayer`]: hop_by_hop::RemoveHopByHopLayer
//! [`RemoveHopByHop`]: hop_by_hop::RemoveHopByHop
//! [`StripModuleHeadersLayer`]: module_headers::StripModuleHeadersLayer
//! [`StripModuleHeaders`]: module_headers::StripModuleHeaders
//! [`RequireAppPathLayer`]: app_path::RequireAppPathLayer
//! [`RequireAppPath`]: app_path::RequireAppPath
//! [`SetPairingTokenLayer`]: pairing_token::SetPairingTokenLayer
//! [`SetPairingToken`]: pairing_token::SetPairingToken
//! [`AddForwardedForLayer`]: forwarded_for::AddForwardedForLayer
//! [`AddForwardedFor`]: forwarded_for::AddForwardedFor
//! [`AddForwardedProtoLayer`]: forwarded_proto::AddForwardedProtoLayer
//! [`AddForwardedProto`]: forwarded_proto::AddForwardedProto
//! [`SetClientCertLayer`]: client_cert::SetClientCertLayer
//! [`SetClientCert`]: client_cert::SetClientCert
//! [`ForwardWindowsTokenLayer`]: win_auth_token::ForwardWindowsTokenLayer
//! [`ForwardWindowsToken`]: win_auth_token::ForwardWindowsToken
//! [`LimitsLayer`]: limits::LimitsLayer
//! [`Limits`]: limits::Limits
//! [`PropagateTraceLayer`]: trace::PropagateTraceLayer
//! [`PropagateTrace`]: trace::PropagateTrace
//! [`Ancm`]: bundle::Ancm
//!
//! The request facts they read are request extensions, put there with [`AddExtensionLayer`]:
//! a [`ConnectionInfo`] per client connection and a [`BackendTarget`] per backend. The
//! services that can answer a request themselves return [`future::ResponseFuture`]; the
//! others return their inner service's future.
//!
//! # Where ancm-rs deliberately differs from ANCM
//!
//! * Hop-by-hop request and response headers are removed before any header is injected
//!   (protocol §8.2): `Connection` and the headers it names, `Keep-Alive`,
//!   `Proxy-Connection`, `TE` except `trailers`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
//!   keeping a WebSocket upgrade intact. ANCM only removes `Connection`. Since `Trailer` goes,
//!   trailer fields cross the front only where no HTTP/1.1 hop needs it announced.
//! * The pairing token header is marked sensitive and never logged (protocol §8.1).
//! * A Windows identity with no known backend process handle fails the request with 502.3;
//!   ANCM sends the value `0` ([`win_auth_token`]).
//! * Without a [`ConnectionInfo`] on the request, `X-Forwarded-For`/`-Proto` are left as they
//!   came (a debug event says so); ANCM always knows its client.
//! * `requestTimeout` is a per-phase timeout like WinHTTP's ([`RequestTimeout`]); a backend
//!   that dies mid-body makes the client connection abort (never a silently truncated
//!   response).
//! * Client-sent `X-Forwarded-For` / `-Proto` items that are not valid tokens (an address or
//!   `unknown`; `http` or `https`) are dropped before the front appends its own, so no quote
//!   or stray byte can hide the appended item from the backend (protocol §8.24); ANCM
//!   appends to whatever the client sent. The `trusting_proxies` modes of
//!   [`forwarded_for`] and [`forwarded_proto`] keep every item a trusted proxy sent
//!   ([`ConnectionInfo::with_trusted_proxy`], protocol §8.40).
//! * Requests without a usable `Host` (HTTP/1.1 without one, several, an invalid one, an
//!   HTTP/2 `Host` that differs from `:authority`) get `400` and `CONNECT` gets `405`
//!   ([`host`], protocol §8.25); the backend's address is never sent as `Host`. In IIS,
//!   http.sys refuses most of these before ANCM sees them.
//! * `MS-ASPNETCORE*` response headers are removed before the client sees them (protocol
//!   §8.26); ANCM passes them on.
//! * A body-less idempotent request lost with a reused keep-alive connection before any
//!   response byte is sent once more on a new connection, and backend connections in use are
//!   capped with `503.2` past the cap ([`forward`], protocol §8.27, §8.28).
//! * [`trace`] keeps or starts a W3C Trace Context and sends it to the backend with the
//!   front's own span id (protocol §8.33); ANCM forwards `traceparent` as it came, or none.
//! * A [`BackendTarget`] may name a Unix-domain socket to reach the backend on instead of its
//!   TCP address ([`transport`], protocol §8.42); ANCM speaks TCP only.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod app_path;
pub mod backend;
pub mod body;
pub mod bundle;
pub mod client_cert;
pub mod conn;
pub mod error_page;
pub mod forward;
pub mod forwarded_for;
pub mod forwarded_proto;
pub mod future;
pub mod hop_by_hop;
pub mod host;
pub mod limits;
pub mod module_headers;
pub mod pairing_token;
mod step;
pub mod timeout;
pub mod trace;
pub mod transport;
pub mod win_auth_token;

pub use ancm_protocol::extension::{AddExtension, AddExtensionLayer};
pub use backend::{BackendProcess, BackendTarget};
pub use body::Body;
pub use bundle::{AncmConfig, AncmLayer};
pub use conn::ConnectionInfo;
pub use timeout::RequestTimeout;

/// The error type of boxed bodies and services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// The README's example (what crates.io shows) must keep compiling and passing.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
