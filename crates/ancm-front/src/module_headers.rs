//! Removes every client-sent request header whose name starts with `MS-ASPNETCORE` (protocol
//! §1.3 step 2).
//!
//! ```
//! use ancm_front::module_headers::StripModuleHeadersLayer;
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(req.headers().len())
//! });
//! let svc = StripModuleHeadersLayer::new().layer(app);
//! let req = Request::builder()
//!     .header("MS-ASPNETCORE-TOKEN", "forged")
//!     .header("ms-aspnetcorefoo", "x")
//!     .header("accept", "*/*")
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap(), 1);
//! # });
//! ```
//!
//! This removes a forged `MS-ASPNETCORE-TOKEN`, `-EVENT`, `-WINAUTHTOKEN` or `-CLIENTCERT`
//! before the front adds its own; it must run before those layers, which
//! [`AncmLayer`](crate::AncmLayer) guarantees.
//!
//! These headers belong to the front–backend hop, so the response cleaning of
//! [`RemoveHopByHop`](crate::hop_by_hop::RemoveHopByHop) and [`AncmLayer`](crate::AncmLayer)
//! also removes any a backend sends back, before the client sees them (protocol §8.26).
use std::convert::Infallible;
use std::ops::ControlFlow;

use ancm_protocol::headers::is_module_header;
use http::{HeaderMap, Request};

use crate::step::{Step, inner_service_accessors, step_middleware};

/// Remove every header named `MS-ASPNETCORE*` (any case).
pub(crate) fn strip(headers: &mut HeaderMap) {
    // Almost no request has one: one scan of the names, no allocation.
    if headers.keys().any(is_module_header) {
        strip_present(headers);
    }
}

/// [`strip`] once a scan found at least one in a request.
pub(crate) fn strip_present(headers: &mut HeaderMap) {
    let removed = remove_all(headers);
    tracing::debug!(removed, "removed client-sent MS-ASPNETCORE-* headers");
}

/// Remove every `MS-ASPNETCORE*` header of a response, once a scan found at least one.
pub(crate) fn strip_present_in_response(headers: &mut HeaderMap) {
    let removed = remove_all(headers);
    tracing::debug!(
        removed,
        "removed MS-ASPNETCORE-* headers from the backend's response"
    );
}

/// Remove every `MS-ASPNETCORE*` header; returns how many names were removed.
fn remove_all(headers: &mut HeaderMap) -> usize {
    // Usually one: find, remove, look again; no list to allocate.
    let mut removed = 0_usize;
    while let Some(name) = headers.keys().find(|n| is_module_header(n)).cloned() {
        headers.remove(&name);
        removed += 1;
    }
    removed
}

/// Layer that removes client-sent `MS-ASPNETCORE*` request headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct StripModuleHeadersLayer {
    _priv: (),
}

impl StripModuleHeadersLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Service of [`StripModuleHeadersLayer`].
#[derive(Clone, Debug)]
pub struct StripModuleHeaders<S> {
    inner: S,
    layer: StripModuleHeadersLayer,
}

impl<S> StripModuleHeaders<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            layer: StripModuleHeadersLayer::new(),
        }
    }

    inner_service_accessors!();
}

step_middleware!(passing StripModuleHeadersLayer, StripModuleHeaders);

impl Step for StripModuleHeadersLayer {
    type Answer = Infallible;

    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Infallible> {
        strip(req.headers_mut());
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_every_prefixed_header_in_any_case_and_all_lines() {
        let mut h = HeaderMap::new();
        h.append("MS-ASPNETCORE-TOKEN", "a".parse().unwrap());
        h.append("ms-aspnetcore-token", "b".parse().unwrap());
        h.append("Ms-AspNetCore-Event", "shutdown".parse().unwrap());
        h.append("MS-ASPNETCORE-WINAUTHTOKEN", "2a4".parse().unwrap());
        h.append("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU=".parse().unwrap());
        h.append("ms-aspnetcorefoo", "x".parse().unwrap());
        h.append("ms-aspnet", "kept".parse().unwrap());
        h.append("x-ms-aspnetcore-token", "kept".parse().unwrap());
        strip(&mut h);
        let mut names: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["ms-aspnet", "x-ms-aspnetcore-token"]);
    }

    #[test]
    fn leaves_other_headers_alone() {
        let mut h = HeaderMap::new();
        h.append("accept", "*/*".parse().unwrap());
        h.append("accept", "text/html".parse().unwrap());
        strip(&mut h);
        assert_eq!(h.get_all("accept").iter().count(), 2);
    }
}
