//! What the accept loop knows about the client connection, as a request extension.
//!
//! ```
//! use ancm_front::AddExtensionLayer;
//! use ancm_front::conn::ConnectionInfo;
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // In the accept loop: one `ConnectionInfo` per connection, cloned into each request.
//! let info = ConnectionInfo::plain("203.0.113.7:51000".parse().unwrap(), "0.0.0.0:80".parse().unwrap());
//! let app = service_fn(|req: Request<()>| async move {
//!     let info = req.extensions().get::<ConnectionInfo>().cloned();
//!     Ok::<_, std::convert::Infallible>(info.map(|i| i.peer_addr()))
//! });
//! let svc = AddExtensionLayer::new(info).layer(app);
//! let peer = svc.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(peer, Some("203.0.113.7:51000".parse().unwrap()));
//! # });
//! ```
//!
//! A hyper accept loop builds one per connection:
//!
//! ```no_run
//! use ancm_front::AddExtensionLayer;
//! use ancm_front::conn::ConnectionInfo;
//! use hyper_util::rt::TokioIo;
//! use tower::{Layer, ServiceExt};
//!
//! # async fn serve<S>(app: S) -> std::io::Result<()>
//! # where
//! #     S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<ancm_front::Body>, Error = std::convert::Infallible>
//! #         + Clone + Send + 'static,
//! #     S::Future: Send,
//! # {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     let svc = AddExtensionLayer::new(ConnectionInfo::from_tcp(&stream)?).layer(app.clone());
//!     let svc = hyper::service::service_fn(move |req| svc.clone().oneshot(req));
//!     tokio::spawn(
//!         hyper::server::conn::http1::Builder::new()
//!             .serve_connection(TokioIo::new(stream), svc)
//!             .with_upgrades(),
//!     );
//! }
//! # }
//! ```
//!
//! With TLS, use [`ConnectionInfo::tls`] with the peer's certificate from the handshake. In
//! tests, [`AddExtensionLayer::mock`](crate::AddExtensionLayer::mock) stands in for the
//! accept loop (like axum's `MockConnectInfo`: only requests without a `ConnectionInfo` get
//! it), e.g. to test TLS and client-certificate behaviour without a TLS handshake.
//!
//! The layers that need the client's endpoint, scheme or certificate
//! ([`forwarded_for`](crate::forwarded_for), [`forwarded_proto`](crate::forwarded_proto),
//! [`client_cert`](crate::client_cert)) read it from here. The header values they add are
//! computed once per connection, when the [`ConnectionInfo`] is built, so a request only
//! clones them.
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use ancm_protocol::{client_cert, forwarded};
use bytes::Bytes;
use http::HeaderValue;

/// Facts about the client connection a request arrived on. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct ConnectionInfo(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
    trusted_proxy: bool,
    client_cert: Option<Bytes>,
    // Precomputed once per connection so the per-request layers only clone `Bytes`.
    for_with_port: HeaderValue,
    for_without_port: HeaderValue,
    client_cert_header: Option<HeaderValue>,
}

impl ConnectionInfo {
    /// A plain-HTTP connection from `peer`, accepted on `local`.
    pub fn plain(peer: SocketAddr, local: SocketAddr) -> Self {
        Self::build(peer, local, false, None)
    }

    /// A TLS connection from `peer`, accepted on `local`, with the client certificate (DER)
    /// if the client presented one (with rustls: the first of
    /// `ServerConnection::peer_certificates()`).
    pub fn tls(peer: SocketAddr, local: SocketAddr, client_cert: Option<Bytes>) -> Self {
        Self::build(peer, local, true, client_cert)
    }

    /// The facts of an accepted plain TCP stream.
    pub fn from_tcp(stream: &tokio::net::TcpStream) -> std::io::Result<Self> {
        Ok(Self::plain(stream.peer_addr()?, stream.local_addr()?))
    }

    fn build(peer: SocketAddr, local: SocketAddr, tls: bool, client_cert: Option<Bytes>) -> Self {
        let none = std::iter::empty::<&HeaderValue>();
        Self(Arc::new(Inner {
            peer,
            local,
            tls,
            trusted_proxy: false,
            for_with_port: forwarded::append_for(none.clone(), peer, true),
            for_without_port: forwarded::append_for(none, peer, false),
            client_cert_header: client_cert
                .as_deref()
                .filter(|der| !der.is_empty())
                .map(client_cert::encode),
            client_cert,
        }))
    }

    /// The same connection, marked as coming from a proxy the gateway trusts (or not): the
    /// [`trusting_proxies`](crate::forwarded_for::AddForwardedForLayer::trusting_proxies)
    /// modes keep what such a peer sent in `X-Forwarded-For` / `-Proto` as it sent it.
    /// Connections are untrusted unless marked.
    pub fn with_trusted_proxy(mut self, trusted: bool) -> Self {
        Arc::make_mut(&mut self.0).trusted_proxy = trusted;
        self
    }

    /// Whether the peer is a proxy the gateway trusts ([`with_trusted_proxy`](Self::with_trusted_proxy)).
    pub fn is_trusted_proxy(&self) -> bool {
        self.0.trusted_proxy
    }

    /// The client's address and port: the TCP peer, or the client a PROXY protocol header
    /// named.
    pub fn peer_addr(&self) -> SocketAddr {
        self.0.peer
    }

    /// The local address the connection was accepted on.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local
    }

    /// Whether the client connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.0.tls
    }

    /// The client certificate (DER), if the client presented one over TLS.
    pub fn client_cert(&self) -> Option<&Bytes> {
        self.0.client_cert.as_ref()
    }

    /// The `X-Forwarded-For` item for this client (`ip:port`, or `ip`).
    pub(crate) fn forwarded_for_item(&self, include_port: bool) -> &HeaderValue {
        if include_port {
            &self.0.for_with_port
        } else {
            &self.0.for_without_port
        }
    }

    /// The `MS-ASPNETCORE-CLIENTCERT` value, if there is a certificate.
    pub(crate) fn client_cert_header(&self) -> Option<&HeaderValue> {
        self.0.client_cert_header.as_ref()
    }
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("peer", &self.0.peer)
            .field("local", &self.0.local)
            .field("tls", &self.0.tls)
            .field("trusted_proxy", &self.0.trusted_proxy)
            .field(
                "client_cert_len",
                &self.0.client_cert.as_ref().map(Bytes::len),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precomputes_header_values() {
        let info = ConnectionInfo::tls(
            "[2001:db8::1]:51000".parse().unwrap(),
            "[::1]:443".parse().unwrap(),
            Some(Bytes::from_static(&[0x30, 0x03, 0x02, 0x01, 0x05])),
        );
        assert_eq!(info.forwarded_for_item(true), "[2001:db8::1]:51000");
        assert_eq!(info.forwarded_for_item(false), "2001:db8::1");
        assert_eq!(info.client_cert_header().unwrap(), "MAMCAQU=");
        assert!(info.is_tls());
        let plain = ConnectionInfo::plain(
            "203.0.113.7:1".parse().unwrap(),
            "0.0.0.0:80".parse().unwrap(),
        );
        assert!(!plain.is_tls());
        assert!(plain.client_cert_header().is_none());
        assert_eq!(plain.forwarded_for_item(true), "203.0.113.7:1");
    }

    #[test]
    fn empty_certificate_is_no_certificate() {
        let info = ConnectionInfo::tls(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            Some(Bytes::new()),
        );
        assert!(info.client_cert_header().is_none());
    }

    #[test]
    fn debug_does_not_dump_the_certificate() {
        let info = ConnectionInfo::tls(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            Some(Bytes::from_static(b"secretish")),
        );
        let text = format!("{info:?}");
        assert!(text.contains("client_cert_len: Some(9)"), "{text}");
    }
}
