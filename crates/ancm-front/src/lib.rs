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
//! # Where ancm-rs deliberately differs from ANCM
//!
//! * Hop-by-hop request and response headers are removed as RFC 9110 §7.6.1 says, before any
//!   header is injected (contract §8.2); ANCM only removes `Connection`.
//! * The pairing token header is marked sensitive and never logged (contract §8.1).
#![deny(unsafe_code)]

pub mod backend;
pub mod body;
pub mod bundle;
pub mod client_cert;
pub mod conn;
pub mod error_page;
pub mod forward;
pub mod forwarded_for;
pub mod forwarded_proto;
pub mod hop_by_hop;
pub mod limits;
pub mod module_headers;
pub mod pairing_token;
pub mod path_base;
pub mod win_auth_token;

pub use backend::{BackendProcess, BackendTarget};
pub use body::Body;
pub use bundle::{AncmConfig, AncmLayer};
pub use conn::ConnectionInfo;

/// The error type of boxed bodies and services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
