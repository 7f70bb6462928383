//! Sets `MS-ASPNETCORE-CLIENTCERT` to the client certificate (base64 DER) of the TLS
//! connection, and removes it when there is none (contract §1.3 step 7).
//!
//! ```
//! use ancm_front::client_cert::ClientCertLayer;
//! use ancm_front::conn::{ConnectionInfo, MockConnectionInfo};
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(req.headers().get("ms-aspnetcore-clientcert").cloned())
//! });
//! let der = bytes::Bytes::from_static(&[0x30, 0x03, 0x02, 0x01, 0x05]);
//! let info = ConnectionInfo::tls("203.0.113.7:1".parse().unwrap(), "0.0.0.0:443".parse().unwrap(), Some(der));
//! let svc = MockConnectionInfo::new(info).layer(ClientCertLayer::new().layer(app));
//! assert_eq!(svc.oneshot(Request::new(())).await.unwrap().unwrap(), "MAMCAQU=");
//! # });
//! ```
//!
//! The certificate comes from the [`ConnectionInfo`] extension and is encoded once per
//! connection. No [`ConnectionInfo`], a plain connection or no certificate: the header is
//! removed, so a client-sent one never reaches the backend.
use std::task::{Context, Poll};

use ancm_protocol::headers::CLIENT_CERT;
use http::{HeaderMap, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::conn::ConnectionInfo;

/// Set or remove the header.
pub(crate) fn apply(headers: &mut HeaderMap, info: Option<&ConnectionInfo>) {
    if !set(headers, info) {
        headers.remove(CLIENT_CERT);
    }
}

/// Set the header if there is a certificate; whether it did. For maps already without it.
pub(crate) fn set(headers: &mut HeaderMap, info: Option<&ConnectionInfo>) -> bool {
    match info.and_then(ConnectionInfo::client_cert_header) {
        Some(value) => {
            headers.insert(CLIENT_CERT, value.clone());
            true
        }
        None => false,
    }
}

/// Layer that forwards the TLS client certificate in `MS-ASPNETCORE-CLIENTCERT`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCertLayer {
    _priv: (),
}

impl ClientCertLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for ClientCertLayer {
    type Service = ClientCert<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientCert { inner }
    }
}

/// Service of [`ClientCertLayer`].
#[derive(Clone, Debug)]
pub struct ClientCert<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for ClientCert<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        crate::conn::with_extensions(&mut req, |headers, ext| apply(headers, ext.get()));
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn sets_or_removes() {
        let peer = "1.1.1.1:1".parse().unwrap();
        let local = "2.2.2.2:2".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append(CLIENT_CERT, "forged".parse().unwrap());
        h.append(CLIENT_CERT, "forged2".parse().unwrap());
        let with = ConnectionInfo::tls(peer, local, Some(Bytes::from_static(&[1, 2, 3])));
        apply(&mut h, Some(&with));
        assert_eq!(h.get_all(CLIENT_CERT).iter().collect::<Vec<_>>(), ["AQID"]);
        for info in [
            None,
            Some(ConnectionInfo::tls(peer, local, None)),
            Some(ConnectionInfo::plain(peer, local)),
        ] {
            h.insert(CLIENT_CERT, "forged".parse().unwrap());
            apply(&mut h, info.as_ref());
            assert!(h.get(CLIENT_CERT).is_none());
        }
    }
}
