//! The W3C Trace Context the front sent (`traceparent`, `tracestate`), as a [`TraceContext`]
//! extension, so the app's logs carry the trace id of the front's access log (protocol §4.3
//! step 8).
//!
//! ```
//! use iis_integration::{ReadTraceContextLayer, TraceContext};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(ReadTraceContextLayer::new())
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let trace = req.extensions().get::<TraceContext>().map(TraceContext::trace_id_hex);
//!         Ok::<_, std::convert::Infallible>(http::Response::new(trace))
//!     }));
//! let req = http::Request::builder()
//!     .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
//!     .body(())
//!     .unwrap();
//! let trace = svc.clone().oneshot(req).await.unwrap().into_body();
//! assert_eq!(trace.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
//! // No (valid) traceparent: no extension.
//! assert_eq!(svc.oneshot(http::Request::new(())).await.unwrap().into_body(), None);
//! # });
//! ```
//!
//! The step only parses: a request with exactly one valid `traceparent` line gets the
//! extension, with its `tracestate` when every line of that is valid (several lines joined
//! with `,`). Nothing else changes: the headers stay for the app, and no id is made up for a
//! request without one (the `ancm` front always sends one; IIS forwards the client's, if
//! any). [`IisIntegrationLayer`](crate::IisIntegrationLayer) runs it after the pairing token
//! check, so only the front's trace context is read.
use std::ops::ControlFlow;

use ancm_protocol::headers::{TRACEPARENT, TRACESTATE};
use ancm_protocol::trace::{TraceParent, is_valid_tracestate};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use tower_layer::Layer as _;

use crate::extensions::TraceContext;
use crate::headers::{self, Lines};
use crate::step::{Step, step_middleware};

/// Reads the trace context; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadTraceContextLayer {
    step: TraceContextStep,
}

/// The service of [`ReadTraceContextLayer`].
#[derive(Clone, Copy, Debug)]
pub struct ReadTraceContext<S> {
    inner: S,
    step: TraceContextStep,
}

impl ReadTraceContextLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> ReadTraceContext<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        ReadTraceContextLayer::new().layer(inner)
    }
}

step_middleware!(ReadTraceContextLayer, ReadTraceContext);

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TraceContextStep;

impl Step for TraceContextStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        if let Some(context) = read(req.headers()) {
            req.extensions_mut().insert(context);
        }
        ControlFlow::Continue(())
    }
}

/// The trace context of `headers`: one valid `traceparent` line, and its valid `tracestate`.
fn read(headers: &HeaderMap) -> Option<TraceContext> {
    // Both headers in one pass, without hashing their names.
    let [parent, state] = headers::find(headers, [&TRACEPARENT, &TRACESTATE]);
    let first = match parent {
        Lines {
            first: Some(first),
            more: false,
        } => first,
        _ => return None,
    };
    let parent = TraceParent::parse(first.as_bytes())?;
    Some(TraceContext::new(parent, tracestate(headers, state)))
}

/// The valid `tracestate` of `headers`, whose lines `lines` is what
/// [`find`](headers::find) saw.
fn tracestate(headers: &HeaderMap, lines: Lines<'_>) -> Option<HeaderValue> {
    let first = lines.first?;
    if !lines.more {
        return is_valid_tracestate(first.as_bytes()).then(|| first.clone());
    }
    let joined = headers
        .get_all(TRACESTATE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b","[..]);
    if !is_valid_tracestate(&joined) {
        return None;
    }
    HeaderValue::from_bytes(&joined).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn reads_one_valid_traceparent_and_its_valid_tracestate() {
        let context = read(&headers(&[("traceparent", VALID), ("tracestate", "a=1")])).unwrap();
        assert_eq!(context.parent().to_string(), VALID);
        assert_eq!(context.tracestate().unwrap(), "a=1");
        let joined = read(&headers(&[
            ("traceparent", VALID),
            ("tracestate", "a=1"),
            ("tracestate", "b=2"),
        ]))
        .unwrap();
        assert_eq!(joined.tracestate().unwrap(), "a=1,b=2");
        let mut map = headers(&[("traceparent", VALID)]);
        map.append(TRACESTATE, HeaderValue::from_bytes(b"a=\xff").unwrap());
        assert_eq!(read(&map).unwrap().tracestate(), None);
    }

    #[test]
    fn nothing_without_exactly_one_valid_traceparent() {
        assert_eq!(read(&headers(&[("tracestate", "a=1")])), None);
        assert_eq!(read(&headers(&[("traceparent", "00-x")])), None);
        assert_eq!(
            read(&headers(&[("traceparent", VALID), ("traceparent", VALID)])),
            None
        );
    }
}
