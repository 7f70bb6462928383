//! Request extensions: what the layers read (the socket peer) and what they learned.
//!
//! ```
//! use iis_integration::{ClientAddr, PeerAddr, Scheme};
//! let mut req = http::Request::new(());
//! req.extensions_mut().insert(PeerAddr("127.0.0.1:50000".parse().unwrap()));
//! req.extensions_mut().insert(ClientAddr("203.0.113.7:51000".parse().unwrap()));
//! req.extensions_mut().insert(Scheme::HTTPS);
//! assert_eq!(req.extensions().get::<ClientAddr>().unwrap().port(), 51000);
//! assert!(req.extensions().get::<Scheme>().unwrap().is_https());
//! ```
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ancm_protocol::trace::TraceParent;
use bytes::Bytes;
use http::{HeaderValue, Uri};

/// The socket peer of the connection a request came in on.
///
/// The forwarded-headers step reads it (or axum's `ConnectInfo<SocketAddr>` or
/// `ConnectInfo<PeerAddr>`); hyper users insert it per connection. It is never taken from a
/// header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// The client endpoint: the one restored from `X-Forwarded-For`, or the socket peer when no
/// forwarded value applied. A forwarded address without a port has port 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// The client IP address.
    pub fn ip(&self) -> IpAddr {
        self.0.ip()
    }

    /// The client port (0 when the forwarded value had none).
    pub fn port(&self) -> u16 {
        self.0.port()
    }
}

/// The request scheme: from `X-Forwarded-Proto` as given (not lower-cased), else the
/// connection's (`http` for a plain listener).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scheme(SchemeText);

#[derive(Clone, PartialEq, Eq, Hash)]
enum SchemeText {
    Static(&'static str),
    Owned(Arc<str>),
}

impl Scheme {
    /// `http`.
    pub const HTTP: Scheme = Scheme(SchemeText::Static(ancm_protocol::forwarded::HTTP));
    /// `https`.
    pub const HTTPS: Scheme = Scheme(SchemeText::Static(ancm_protocol::forwarded::HTTPS));

    /// A scheme from text: `None` unless it is non-empty and only `A–Z a–z 0–9 + - .`
    /// (the `X-Forwarded-Proto` rule).
    pub fn parse(text: &str) -> Option<Self> {
        // The usual two are valid: no need to check them character by character.
        match text {
            ancm_protocol::forwarded::HTTP => Some(Self::HTTP),
            ancm_protocol::forwarded::HTTPS => Some(Self::HTTPS),
            other if ancm_protocol::forwarded::is_valid_proto(other) => {
                Some(Scheme(SchemeText::Owned(other.into())))
            }
            _ => None,
        }
    }

    /// The scheme text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            SchemeText::Static(s) => s,
            SchemeText::Owned(s) => s,
        }
    }

    /// Whether this is `https`, ignoring case.
    pub fn is_https(&self) -> bool {
        self.as_str()
            .eq_ignore_ascii_case(ancm_protocol::forwarded::HTTPS)
    }
}

impl fmt::Debug for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of the path the app is mounted under, as the request spelled it (its casing,
/// its percent-encoding); empty when there is none. The request's URI path is what follows.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PathBase(Option<Arc<str>>);

impl PathBase {
    /// A path base; `""` is none.
    pub fn new(text: &str) -> Self {
        Self::from_shared(text.into())
    }

    pub(crate) fn from_shared(text: Arc<str>) -> Self {
        if text.is_empty() {
            PathBase(None)
        } else {
            PathBase(Some(text))
        }
    }

    /// The text, `""` when none.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// Whether there is no path base.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for PathBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PathBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request URI before the path base was removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginalUri(pub Uri);

/// The client certificate forwarded in `MS-ASPNETCORE-CLIENTCERT`, as DER.
///
/// The front vouches for it; nothing here validates a chain.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientCertificate(Bytes);

impl ClientCertificate {
    /// A certificate from its DER encoding.
    pub fn from_der(der: impl Into<Bytes>) -> Self {
        ClientCertificate(der.into())
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.0
    }

    /// The DER encoding, owned.
    pub fn into_der(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("der_len", &self.0.len())
            .finish()
    }
}

/// The Windows user the front authenticated, from `MS-ASPNETCORE-WINAUTHTOKEN`.
///
/// On Windows the forwarded token is resolved to the account name (`DOMAIN\name`) and SID
/// string, then closed. Elsewhere only [`raw_handle`](Self::raw_handle) is known, and it is
/// meaningless: the number names a handle in a Windows process table.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WindowsUser {
    raw_handle: u32,
    name: Option<Arc<str>>,
    sid: Option<Arc<str>>,
}

impl WindowsUser {
    /// A user known only by its forwarded handle value.
    pub fn from_raw_handle(raw_handle: u32) -> Self {
        Self {
            raw_handle,
            name: None,
            sid: None,
        }
    }

    /// A resolved user (for tests and mocks).
    pub fn new(raw_handle: u32, name: &str, sid: &str) -> Self {
        Self {
            raw_handle,
            name: Some(name.into()),
            sid: Some(sid.into()),
        }
    }

    /// The handle value the front sent (already closed on Windows).
    pub fn raw_handle(&self) -> u32 {
        self.raw_handle
    }

    /// `DOMAIN\name`, on Windows.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The SID string (`S-1-5-21-…`), on Windows.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }
}

impl fmt::Debug for WindowsUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowsUser")
            .field("raw_handle", &format_args!("{:x}", self.raw_handle))
            .field("name", &self.name)
            .field("sid", &self.sid)
            .finish()
    }
}

/// The W3C Trace Context the front sent: its `traceparent` (the trace id the front's access
/// log shows, and the front's span as parent) and its valid `tracestate`, if any.
///
/// Log [`trace_id_hex`](Self::trace_id_hex) to correlate the app's log lines with the
/// front's; start the app's own spans as children of [`parent`](Self::parent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    parent: TraceParent,
    state: Option<HeaderValue>,
}

impl TraceContext {
    /// A trace context (for tests and mocks, and for apps that read the headers themselves).
    pub fn new(parent: TraceParent, state: Option<HeaderValue>) -> Self {
        Self { parent, state }
    }

    /// The `traceparent` the front sent.
    pub fn parent(&self) -> TraceParent {
        self.parent
    }

    /// The trace id as 32 lowercase hex digits, as the front's access log shows it.
    pub fn trace_id_hex(&self) -> String {
        self.parent.trace_id_hex()
    }

    /// The `tracestate` the front sent, when it was valid.
    pub fn tracestate(&self) -> Option<&HeaderValue> {
        self.state.as_ref()
    }
}

/// The socket peer: [`PeerAddr`], else axum's `ConnectInfo<SocketAddr>` or
/// `ConnectInfo<PeerAddr>` (served from a [`FrontListener`](crate::FrontListener)).
pub(crate) fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(PeerAddr(addr))) =
        extensions.get::<axum::extract::ConnectInfo<PeerAddr>>()
    {
        return Some(*addr);
    }
    None
}
