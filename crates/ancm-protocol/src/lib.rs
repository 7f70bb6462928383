//! The ASP.NET Core Module (ANCM) wire contract, shared by both halves of ancm-rs.
//!
//! Everything the front (IIS + ANCM, or the `ancm` gateway) and the backend (a service using
//! `iis-integration`) must agree on lives here and nowhere else: header names, environment
//! variable names, the shutdown event, the [`PairingToken`], and the codecs for
//! `X-Forwarded-For`, `X-Forwarded-Proto`, `MS-ASPNETCORE-CLIENTCERT` and
//! `MS-ASPNETCORE-WINAUTHTOKEN`, plus the add-extension layer both halves use. The crate
//! does no I/O, except waiting for the OS stop signals behind the `signal` feature.
//!
//! ```
//! use ancm_protocol::{forwarded, headers, PairingToken};
//!
//! // The front appends the client endpoint; the backend reads it back from the right.
//! let xff = forwarded::append_for(None, "[2001:db8::1]:51000".parse().unwrap(), true);
//! assert_eq!(xff.to_str().unwrap(), "[2001:db8::1]:51000");
//! let last = forwarded::list_items(xff.to_str().unwrap()).next_back().unwrap();
//! assert_eq!(forwarded::parse_for(last), Some(("2001:db8::1".parse().unwrap(), 51000)));
//!
//! let token = PairingToken::generate();
//! assert!(token.matches(token.expose_secret().as_bytes()));
//! assert_eq!(format!("{token:?}"), "PairingToken(<redacted>)");
//! assert_eq!(headers::TOKEN.as_str(), "ms-aspnetcore-token");
//! ```
//!
//! # Where ancm-rs deliberately differs from ANCM
//!
//! The pairing token is compared in constant time ([`PairingToken::matches`]) and is never
//! printed: `Debug` and `Display` redact it and its header value is marked sensitive
//! (protocol §8.1). ANCM's backend middleware compares it with plain string equality and logs
//! the expected value on a mismatch.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod app_path;
pub mod client_cert;
pub mod env;
pub mod extension;
pub mod forwarded;
pub mod headers;
pub mod http_auth;
pub mod shutdown;
#[cfg(feature = "signal")]
#[cfg_attr(docsrs, doc(cfg(feature = "signal")))]
pub mod signal;
mod token;
pub mod trace;
pub mod win_token;

pub use app_path::AppPath;
pub use token::{InvalidToken, PairingToken};

// The README's example (what crates.io shows) must keep compiling and passing.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
