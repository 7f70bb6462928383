//! Header names of the contract (protocol §1.3, §4.3, §4.5).
//!
//! `http::HeaderName` is lowercase; the wire is case-insensitive.
//!
//! ```
//! use ancm_protocol::headers;
//! assert!(headers::is_module_header(&"MS-ASPNETCOREfoo".parse().unwrap()));
//! assert!(!headers::is_module_header(&headers::X_FORWARDED_FOR));
//! ```
use http::HeaderName;

/// The pairing token the front adds to every request and the backend checks.
pub const TOKEN: HeaderName = HeaderName::from_static("ms-aspnetcore-token");
/// The event header of the shutdown request (value [`crate::shutdown::EVENT_SHUTDOWN`]).
pub const EVENT: HeaderName = HeaderName::from_static("ms-aspnetcore-event");
/// The client certificate, standard base64 of its DER encoding.
pub const CLIENT_CERT: HeaderName = HeaderName::from_static("ms-aspnetcore-clientcert");
/// A Windows token handle, duplicated into the backend process, in lowercase hex.
pub const WIN_AUTH_TOKEN: HeaderName = HeaderName::from_static("ms-aspnetcore-winauthtoken");
/// Every header whose name starts with this (any case) is private to the module: the front
/// removes client-sent ones before it adds its own.
pub const MODULE_PREFIX: &str = "ms-aspnetcore";

/// Client endpoint list, `ip:port`, appended by each proxy.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// Client scheme list, `http`/`https`, appended by each proxy.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// Original Host list (not sent by ANCM, which preserves Host).
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// Path prefix list (not sent by ANCM; optional in the `ancm` front).
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
/// The connection peer the backend replaced with the forwarded client endpoint.
pub const X_ORIGINAL_FOR: HeaderName = HeaderName::from_static("x-original-for");
/// The scheme the backend replaced with the forwarded one.
pub const X_ORIGINAL_PROTO: HeaderName = HeaderName::from_static("x-original-proto");
/// The Host the backend replaced with the forwarded one.
pub const X_ORIGINAL_HOST: HeaderName = HeaderName::from_static("x-original-host");
/// The path base the backend replaced with the forwarded prefix.
pub const X_ORIGINAL_PREFIX: HeaderName = HeaderName::from_static("x-original-prefix");

/// W3C Trace Context: version, trace id, parent id and flags of the request's trace.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// W3C Trace Context: vendor-specific trace state, forwarded with a valid `traceparent`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// `Sec-WebSocket-Extensions`, removed from upgrade requests (protocol §1.9).
pub const SEC_WEBSOCKET_EXTENSIONS: HeaderName =
    HeaderName::from_static("sec-websocket-extensions");
/// `Keep-Alive`, hop-by-hop (RFC 9110 §7.6.1).
pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `Proxy-Connection`, hop-by-hop by convention (RFC 9110 §7.6.1).
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Whether `name` starts with [`MODULE_PREFIX`] (ANCM compares the first 13 characters,
/// ignoring case; `HeaderName` is already lowercase).
pub fn is_module_header(name: &HeaderName) -> bool {
    name.as_str()
        .as_bytes()
        .starts_with(MODULE_PREFIX.as_bytes())
}
