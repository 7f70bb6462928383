//! Turn `MS-ASPNETCORE-CLIENTCERT` into a [`ClientCertificate`] extension (protocol §4.3
//! step 5).
//!
//! ```
//! use iis_integration::{ClientCertificate, ForwardClientCertificateLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(ForwardClientCertificateLayer::new())
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let cert = req.extensions().get::<ClientCertificate>().cloned();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(cert))
//!     }));
//! let req = http::Request::get("/")
//!     .header("ms-aspnetcore-clientcert", "MAMCAQU=")
//!     .body(())
//!     .unwrap();
//! let cert = svc.oneshot(req).await.unwrap().into_body().unwrap();
//! assert_eq!(cert.der(), [0x30, 0x03, 0x02, 0x01, 0x05]);
//! # });
//! ```
//!
//! The header is decoded eagerly (standard base64 of the DER). A value that is not valid
//! base64, or a header sent on more than one line, logs a warning and gives no certificate.
//! The certificate is trusted as the front forwarded it: no chain validation happens here.
//! [`ForwardClientCertificateLayer::ignore`] removes the header instead, so nothing
//! downstream can read a certificate from it.
use std::ops::ControlFlow;

use http::{Request, StatusCode};
use tower_layer::Layer as _;

use ancm_protocol::client_cert;
use ancm_protocol::headers::CLIENT_CERT;

use crate::extensions::ClientCertificate;
use crate::headers::{self, Lines};
use crate::step::{Step, step_middleware};

/// Reads or drops the forwarded client certificate; see the [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct ForwardClientCertificateLayer {
    step: ClientCertStep,
}

/// The service of [`ForwardClientCertificateLayer`].
#[derive(Clone, Copy, Debug)]
pub struct ForwardClientCertificate<S> {
    inner: S,
    step: ClientCertStep,
}

impl ForwardClientCertificateLayer {
    /// Decode the header into a [`ClientCertificate`] extension.
    pub fn new() -> Self {
        Self {
            step: ClientCertStep::Forward,
        }
    }

    /// Remove the header; never produce a certificate.
    pub fn ignore() -> Self {
        Self {
            step: ClientCertStep::Ignore,
        }
    }
}

impl Default for ForwardClientCertificateLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> ForwardClientCertificate<S> {
    /// Wrap `inner`, decoding the header.
    pub fn new(inner: S) -> Self {
        ForwardClientCertificateLayer::new().layer(inner)
    }
}

step_middleware!(ForwardClientCertificateLayer, ForwardClientCertificate);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientCertStep {
    Forward,
    Ignore,
}

impl Step for ClientCertStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        if *self == ClientCertStep::Ignore {
            req.headers_mut().remove(CLIENT_CERT);
            return ControlFlow::Continue(());
        }
        // Usually absent: finding that out is cheaper without hashing the long name.
        let [lines] = headers::find(req.headers(), [&CLIENT_CERT]);
        let decoded = match lines {
            Lines { first: None, .. } => return ControlFlow::Continue(()),
            Lines {
                first: Some(value),
                more: false,
            } if value.is_empty() => return ControlFlow::Continue(()),
            Lines {
                first: Some(value),
                more: false,
            } => client_cert::decode(value.as_bytes()).map_err(|e| e.to_string()),
            Lines { more: true, .. } => Err("the header is sent more than once".to_owned()),
        };
        match decoded {
            Ok(der) => {
                req.extensions_mut()
                    .insert(ClientCertificate::from_der(der));
            }
            Err(error) => tracing::warn!(%error, "failed to read the client certificate"),
        }
        ControlFlow::Continue(())
    }
}
