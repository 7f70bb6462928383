//! Sets `MS-ASPNETCORE-CLIENTCERT` to the client certificate (base64 DER) of the TLS
//! connection, and removes it when there is none (protocol §1.3 step 7).
//!
//! ```
//! use ancm_front::AddExtensionLayer;
//! use ancm_front::client_cert::SetClientCertLayer;
//! use ancm_front::conn::ConnectionInfo;
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(req.headers().get("ms-aspnetcore-clientcert").cloned())
//! });
//! let der = bytes::Bytes::from_static(&[0x30, 0x03, 0x02, 0x01, 0x05]);
//! let info = ConnectionInfo::tls("203.0.113.7:1".parse().unwrap(), "0.0.0.0:443".parse().unwrap(), Some(der));
//! let svc = AddExtensionLayer::mock(info).layer(SetClientCertLayer::new().layer(app));
//! assert_eq!(svc.oneshot(Request::new(())).await.unwrap().unwrap(), "MAMCAQU=");
//! # });
//! ```
//!
//! The certificate comes from the [`ConnectionInfo`] extension and is encoded once per
//! connection. No [`ConnectionInfo`], a plain connection or no certificate: the header is
//! removed, so a client-sent one never reaches the backend.
use std::convert::Infallible;
use std::ops::ControlFlow;

use ancm_protocol::headers::CLIENT_CERT;
use http::{HeaderMap, Request};

use crate::conn::ConnectionInfo;
use crate::step::{Step, inner_service_accessors, step_middleware, with_extensions};

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
pub struct SetClientCertLayer {
    _priv: (),
}

impl SetClientCertLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Service of [`SetClientCertLayer`].
#[derive(Clone, Debug)]
pub struct SetClientCert<S> {
    inner: S,
    layer: SetClientCertLayer,
}

impl<S> SetClientCert<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            layer: SetClientCertLayer::new(),
        }
    }

    inner_service_accessors!();
}

step_middleware!(passing SetClientCertLayer, SetClientCert);

impl Step for SetClientCertLayer {
    type Answer = Infallible;

    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Infallible> {
        with_extensions(req, |headers, ext| apply(headers, ext.get()));
        ControlFlow::Continue(())
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
