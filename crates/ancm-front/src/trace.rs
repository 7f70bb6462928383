//! Propagates the W3C Trace Context (`traceparent`, `tracestate`) to the backend, so the
//! front's access log and the backend's logs carry one trace id per request (protocol §1.3
//! step 10).
//!
//! ```
//! use ancm_protocol::trace::TraceParent;
//! use ancm_front::trace::PropagateTraceLayer;
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let backend = service_fn(|req: Request<()>| async move {
//!     // What the backend gets: the same trace, the front's own span as parent.
//!     let sent = TraceParent::parse(req.headers()["traceparent"].as_bytes()).unwrap();
//!     assert_eq!(req.extensions().get::<TraceParent>(), Some(&sent));
//!     assert_eq!(req.headers()["tracestate"], "congo=t61rcWkgMzE");
//!     Ok::<_, std::convert::Infallible>(Response::new(()))
//! });
//! let svc = PropagateTraceLayer::new().layer(backend);
//! let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
//! let req = Request::builder()
//!     .header("traceparent", incoming)
//!     .header("tracestate", "congo=t61rcWkgMzE")
//!     .body(())
//!     .unwrap();
//! let resp = svc.oneshot(req).await.unwrap();
//! // The response carries the hop's trace context too, for an access log around the stack.
//! let hop = resp.extensions().get::<TraceParent>().unwrap();
//! assert_eq!(hop.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_ne!(hop.to_string(), incoming);
//! # });
//! ```
//!
//! For each request:
//!
//! * A valid incoming `traceparent` (one header line; [`TraceParent::parse`]) is kept as the
//!   trace: the request goes on with [`TraceParent::child`] of it, a new parent id for this
//!   hop, the same trace id and flags. Its `tracestate` is kept when every line of it is
//!   valid ([`is_valid_tracestate`]; several lines are joined with `,` and checked as one).
//! * An absent or invalid `traceparent` (malformed, all-zero ids, version `ff`, more than one
//!   line) starts a new trace ([`TraceParent::generate`], not sampled) and any `tracestate`
//!   is dropped, as the specification asks of a vendor that cannot read `traceparent`.
//! * A client that names `traceparent` or `tracestate` in `Connection` marks them hop-by-hop:
//!   they are not read, and the names are taken out of `Connection`, so that the hop-by-hop
//!   removal further in cannot delete the header this layer sets (protocol §8.2: no client
//!   can have a header the front adds removed).
//! * The [`TraceParent`] sent on is put into the request's extensions and into the
//!   response's, so an access log or metrics layer around this one reads the trace id of
//!   every response, including the ones the front answers itself (404, 502.5, 503).
//!   [`PropagateTraceLayer::request_only`] leaves the response's out, for a stack nothing
//!   reads responses' extensions around.
//!
//! Generating ids reads the OS random generator; this layer allocates the header value only.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ancm_protocol::headers::{TRACEPARENT, TRACESTATE};
use ancm_protocol::trace::{TraceParent, is_valid_tracestate};
use http::header::CONNECTION;
use http::{HeaderMap, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::hop_by_hop::list_contains;
use crate::step::inner_service_accessors;

/// Layer of [`PropagateTrace`]: see the [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct PropagateTraceLayer {
    to_response: bool,
}

impl PropagateTraceLayer {
    /// The layer: the hop's [`TraceParent`] goes into the request's and the response's
    /// extensions.
    pub fn new() -> Self {
        Self { to_response: true }
    }

    /// The layer for a stack where nothing around it reads the response's extensions: the
    /// [`TraceParent`] goes into the request's only, which saves the response an extensions
    /// map (three allocations).
    pub fn request_only() -> Self {
        Self { to_response: false }
    }
}

impl Default for PropagateTraceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for PropagateTraceLayer {
    type Service = PropagateTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateTrace {
            inner,
            to_response: self.to_response,
        }
    }
}

/// Keeps or starts the request's trace, sends this hop's `traceparent` on, and records it in
/// the request's and the response's extensions; see the [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct PropagateTrace<S> {
    inner: S,
    to_response: bool,
}

impl<S> PropagateTrace<S> {
    /// Wrap `inner` (as [`PropagateTraceLayer::new`]).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            to_response: true,
        }
    }

    /// Wrap `inner`, recording the trace in the request's extensions only (as
    /// [`PropagateTraceLayer::request_only`]).
    pub fn request_only(inner: S) -> Self {
        Self {
            inner,
            to_response: false,
        }
    }

    inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PropagateTrace<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let hop = propagate(req.headers_mut());
        req.extensions_mut().insert(hop);
        ResponseFuture {
            inner: self.inner.call(req),
            hop: Some(hop),
            to_response: self.to_response,
        }
    }
}

/// Decides this hop's trace context from the incoming headers and rewrites them to send it
/// on.
fn propagate(headers: &mut HeaderMap) -> TraceParent {
    let hop_by_hop = headers.contains_key(CONNECTION) && unlist_trace_headers(headers);
    let incoming = if hop_by_hop {
        None
    } else {
        incoming_parent(headers)
    };
    let hop = match incoming {
        Some(parent) => {
            keep_valid_tracestate(headers);
            parent.child()
        }
        None => {
            headers.remove(TRACESTATE);
            TraceParent::generate()
        }
    };
    headers.insert(TRACEPARENT, hop.header_value());
    hop
}

/// The incoming `traceparent` when there is exactly one line and it is valid.
fn incoming_parent(headers: &HeaderMap) -> Option<TraceParent> {
    let mut lines = headers.get_all(TRACEPARENT).iter();
    let first = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    TraceParent::parse(first.as_bytes())
}

/// Keeps `tracestate` when all of it is valid (several lines become one, joined with `,`);
/// removes it otherwise.
fn keep_valid_tracestate(headers: &mut HeaderMap) {
    let mut lines = headers.get_all(TRACESTATE).iter();
    let Some(first) = lines.next() else {
        return;
    };
    if lines.next().is_none() {
        if !is_valid_tracestate(first.as_bytes()) {
            headers.remove(TRACESTATE);
        }
        return;
    }
    let joined = headers
        .get_all(TRACESTATE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b","[..]);
    match HeaderValue::from_bytes(&joined) {
        Ok(value) if is_valid_tracestate(&joined) => {
            headers.insert(TRACESTATE, value);
        }
        _ => {
            headers.remove(TRACESTATE);
        }
    }
}

/// When `Connection` names `traceparent` or `tracestate`, takes those names out of it (and
/// removes the headers: the client marked them hop-by-hop); whether it did.
fn unlist_trace_headers(headers: &mut HeaderMap) -> bool {
    let named = headers.get_all(CONNECTION).iter().any(|value| {
        list_contains(value, TRACEPARENT.as_str()) || list_contains(value, TRACESTATE.as_str())
    });
    if !named {
        return false;
    }
    let kept: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| {
            !token.is_empty()
                && !token.eq_ignore_ascii_case(TRACEPARENT.as_str())
                && !token.eq_ignore_ascii_case(TRACESTATE.as_str())
        })
        .map(str::to_owned)
        .collect();
    headers.remove(CONNECTION);
    if let Ok(value) = HeaderValue::from_str(&kept.join(", "))
        && !kept.is_empty()
    {
        headers.insert(CONNECTION, value);
    }
    headers.remove(TRACEPARENT);
    headers.remove(TRACESTATE);
    true
}

pin_project_lite::pin_project! {
    /// The inner service's future; puts the hop's [`TraceParent`] into the response's
    /// extensions.
    ///
    /// # Panics
    ///
    /// Polling it again after it returned `Ready` panics with the message
    /// `"ResponseFuture polled after completion"`.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        hop: Option<TraceParent>,
        to_response: bool,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(this.hop.is_some(), "ResponseFuture polled after completion");
        let result = ready!(this.inner.poll(cx));
        let hop = this.hop.take();
        let to_response = *this.to_response;
        Poll::Ready(result.map(|mut response| {
            if let Some(hop) = hop.filter(|_| to_response) {
                response.extensions_mut().insert(hop);
            }
            response
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_only_leaves_the_response_extensions_alone() {
        use futures_util::FutureExt as _;
        let echo = tower::service_fn(|req: Request<()>| async move {
            assert!(req.extensions().get::<TraceParent>().is_some());
            Ok::<_, std::convert::Infallible>(Response::new(()))
        });
        for (layer, recorded) in [
            (PropagateTraceLayer::new(), true),
            (PropagateTraceLayer::request_only(), false),
            (PropagateTraceLayer::default(), true),
        ] {
            let mut svc = layer.layer(echo);
            let resp = svc
                .call(Request::new(()))
                .now_or_never()
                .expect("ready")
                .expect("infallible");
            assert_eq!(resp.extensions().get::<TraceParent>().is_some(), recorded);
            assert!(resp.headers().is_empty());
        }
    }

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

    fn sent(map: &HeaderMap) -> TraceParent {
        let mut lines = map.get_all(TRACEPARENT).iter();
        let value = lines.next().expect("a traceparent");
        assert!(lines.next().is_none(), "one traceparent line");
        TraceParent::parse(value.as_bytes()).expect("a valid traceparent")
    }

    #[test]
    fn a_valid_trace_is_continued_with_a_new_span() {
        let mut map = headers(&[("traceparent", VALID), ("tracestate", "a=1")]);
        let hop = propagate(&mut map);
        assert_eq!(sent(&map), hop);
        assert_eq!(hop.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            hop.parent_id(),
            TraceParent::parse(VALID.as_bytes()).unwrap().parent_id()
        );
        assert!(hop.sampled());
        assert_eq!(map[TRACESTATE], "a=1");
    }

    #[test]
    fn no_or_an_invalid_traceparent_starts_a_new_trace_without_tracestate() {
        let bad = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        for mut map in [
            headers(&[]),
            headers(&[("tracestate", "a=1")]),
            headers(&[("traceparent", bad), ("tracestate", "a=1")]),
            headers(&[
                ("traceparent", VALID),
                ("traceparent", VALID),
                ("tracestate", "a=1"),
            ]),
            headers(&[("traceparent", "garbage")]),
        ] {
            let hop = propagate(&mut map);
            assert_eq!(sent(&map), hop);
            assert_ne!(hop.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert!(!hop.sampled());
            assert!(map.get(TRACESTATE).is_none());
        }
    }

    #[test]
    fn tracestate_lines_are_joined_or_dropped_when_invalid() {
        let mut map = headers(&[
            ("traceparent", VALID),
            ("tracestate", "a=1"),
            ("tracestate", "b=2"),
        ]);
        propagate(&mut map);
        assert_eq!(
            map.get_all(TRACESTATE).iter().collect::<Vec<_>>(),
            ["a=1,b=2"]
        );

        let long = "x".repeat(300);
        let mut map = headers(&[
            ("traceparent", VALID),
            ("tracestate", &long),
            ("tracestate", &long),
        ]);
        propagate(&mut map);
        assert!(map.get(TRACESTATE).is_none());

        let mut map = headers(&[("traceparent", VALID)]);
        map.append(TRACESTATE, HeaderValue::from_bytes(b"a=\xff").unwrap());
        propagate(&mut map);
        assert!(map.get(TRACESTATE).is_none());
    }

    #[test]
    fn connection_cannot_remove_the_header_the_front_sets() {
        let mut map = headers(&[
            ("connection", "keep-alive, TraceParent"),
            ("connection", "tracestate"),
            ("traceparent", VALID),
            ("tracestate", "a=1"),
        ]);
        let hop = propagate(&mut map);
        // Named hop-by-hop by the client: not the trace of this request.
        assert_ne!(hop.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sent(&map), hop);
        assert!(map.get(TRACESTATE).is_none());
        assert_eq!(
            map.get_all(CONNECTION).iter().collect::<Vec<_>>(),
            ["keep-alive"]
        );

        let mut map = headers(&[("connection", "traceparent"), ("traceparent", VALID)]);
        propagate(&mut map);
        assert!(map.get(CONNECTION).is_none());
    }

    #[test]
    #[should_panic(expected = "ResponseFuture polled after completion")]
    fn polling_after_completion_panics() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut fut = Box::pin(ResponseFuture {
            inner: std::future::ready(Ok::<_, ()>(Response::new(()))),
            hop: Some(TraceParent::generate()),
            to_response: true,
        });
        let Poll::Ready(Ok(resp)) = fut.as_mut().poll(&mut cx) else {
            panic!("ready at once");
        };
        assert!(resp.extensions().get::<TraceParent>().is_some());
        let _ = fut.as_mut().poll(&mut cx);
    }
}
