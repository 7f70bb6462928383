//! Appends `http` or `https` to `X-Forwarded-Proto` (protocol §1.3 step 6).
//!
//! ```
//! use ancm_front::AddExtensionLayer;
//! use ancm_front::conn::ConnectionInfo;
//! use ancm_front::forwarded_proto::AddForwardedProtoLayer;
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(req.headers()["x-forwarded-proto"].clone())
//! });
//! let info = ConnectionInfo::tls("203.0.113.7:51000".parse().unwrap(), "0.0.0.0:443".parse().unwrap(), None);
//! let svc = AddExtensionLayer::mock(info).layer(AddForwardedProtoLayer::overriding().layer(app));
//! let req = Request::builder().header("x-forwarded-proto", "http").body(()).unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap(), "https");
//! # });
//! ```
//!
//! The scheme is `https` when the [`ConnectionInfo`] says the client connection is TLS.
//! Several incoming lines are combined into one value first, keeping only the client's items
//! that are `http` or `https` in any case ([`is_proto_token`]), in order and as sent, so no
//! quote or other text can confuse the backend's reading of the item appended here (protocol
//! §1.3 step 6, §8.24; ANCM keeps every item). A request without [`ConnectionInfo`] is passed
//! on with the header untouched (and a `debug` event).
use std::convert::Infallible;
use std::ops::ControlFlow;

use ancm_protocol::forwarded::{HTTP, HTTPS, is_proto_token};
use ancm_protocol::headers::X_FORWARDED_PROTO;
use http::{HeaderMap, HeaderValue, Request};

use crate::conn::ConnectionInfo;
pub use crate::forwarded_for::ForwardedMode;
use crate::forwarded_for::set_list_item;
use crate::step::{Step, inner_service_accessors, step_middleware, with_extensions};

/// Apply the layer to one request's headers.
pub(crate) fn apply(headers: &mut HeaderMap, info: Option<&ConnectionInfo>, mode: ForwardedMode) {
    let Some(info) = info else {
        tracing::debug!(
            "no ConnectionInfo on the request; X-Forwarded-Proto left as the client sent it"
        );
        return;
    };
    let item = HeaderValue::from_static(if info.is_tls() { HTTPS } else { HTTP });
    set_list_item(
        headers,
        X_FORWARDED_PROTO,
        is_proto_token,
        &item,
        mode,
        info,
    );
}

/// Layer that appends the client connection's scheme to `X-Forwarded-Proto`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddForwardedProtoLayer {
    mode: ForwardedMode,
}

impl AddForwardedProtoLayer {
    /// Append to the `http`/`https` items the client sent (ANCM's behaviour, except that ANCM
    /// keeps any item).
    pub fn appending() -> Self {
        Self {
            mode: ForwardedMode::Appending,
        }
    }

    /// Replace what the client sent.
    pub fn overriding() -> Self {
        Self {
            mode: ForwardedMode::Overriding,
        }
    }

    /// Keep what a trusted proxy sent (a connection marked with
    /// [`ConnectionInfo::with_trusted_proxy`]) as it sent it and append to it; from any other
    /// peer, as [`appending`](Self::appending) (protocol §8.40).
    pub fn trusting_proxies() -> Self {
        Self {
            mode: ForwardedMode::TrustingProxies,
        }
    }
}

/// Service of [`AddForwardedProtoLayer`].
#[derive(Clone, Debug)]
pub struct AddForwardedProto<S> {
    inner: S,
    layer: AddForwardedProtoLayer,
}

impl<S> AddForwardedProto<S> {
    /// Wrap `inner`, appending the scheme (ANCM's behaviour; the layer has the other mode).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            layer: AddForwardedProtoLayer::appending(),
        }
    }

    inner_service_accessors!();
}

step_middleware!(passing AddForwardedProtoLayer, AddForwardedProto);

impl Step for AddForwardedProtoLayer {
    type Answer = Infallible;

    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Infallible> {
        with_extensions(req, |headers, ext| apply(headers, ext.get(), self.mode));
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_scheme() {
        let plain =
            ConnectionInfo::plain("1.1.1.1:1".parse().unwrap(), "2.2.2.2:2".parse().unwrap());
        let tls = ConnectionInfo::tls(
            "1.1.1.1:1".parse().unwrap(),
            "2.2.2.2:2".parse().unwrap(),
            None,
        );
        let mut h = HeaderMap::new();
        apply(&mut h, Some(&plain), ForwardedMode::Appending);
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        h.append(X_FORWARDED_PROTO, "wss, \"HTTPS".parse().unwrap());
        h.append(X_FORWARDED_PROTO, "HTTPS\", ".parse().unwrap());
        apply(&mut h, Some(&tls), ForwardedMode::Appending);
        let lines: Vec<_> = h.get_all(X_FORWARDED_PROTO).iter().collect();
        // Only the client's `http`/`https` items are kept, in any case and as sent.
        assert_eq!(lines, ["http, https"]);
        h.append(X_FORWARDED_PROTO, "HTTP".parse().unwrap());
        apply(&mut h, Some(&plain), ForwardedMode::Appending);
        let lines: Vec<_> = h.get_all(X_FORWARDED_PROTO).iter().collect();
        assert_eq!(lines, ["http, https, HTTP, http"]);
        apply(&mut h, Some(&plain), ForwardedMode::Overriding);
        assert_eq!(
            h.get_all(X_FORWARDED_PROTO).iter().collect::<Vec<_>>(),
            ["http"]
        );
        apply(&mut h, None, ForwardedMode::Overriding);
        assert_eq!(h[X_FORWARDED_PROTO], "http");
    }

    #[test]
    fn a_trusted_proxys_items_are_kept_as_sent() {
        let proxy =
            ConnectionInfo::plain("10.0.0.5:1".parse().unwrap(), "2.2.2.2:2".parse().unwrap());
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_PROTO, "wss".parse().unwrap());
        apply(
            &mut h,
            Some(&proxy.clone().with_trusted_proxy(true)),
            ForwardedMode::TrustingProxies,
        );
        assert_eq!(h[X_FORWARDED_PROTO], "wss, http");
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_PROTO, "wss".parse().unwrap());
        apply(&mut h, Some(&proxy), ForwardedMode::TrustingProxies);
        assert_eq!(h[X_FORWARDED_PROTO], "http");
    }
}
