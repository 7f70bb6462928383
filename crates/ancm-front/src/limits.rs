//! Request size limits with clear answers: URI too long (414), header block too large (431),
//! body too large (413).
//!
//! ```
//! use ancm_front::Body;
//! use ancm_front::limits::{LimitsLayer, RequestLimits};
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|_req: Request<_>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
//! });
//! let svc = LimitsLayer::new(RequestLimits::default().max_request_body(Some(30_000_000))).layer(app);
//! let big = Request::post("/upload").header("content-length", "40000000").body(Body::empty()).unwrap();
//! assert_eq!(svc.oneshot(big).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
//! # });
//! ```
//!
//! * The URI limit counts the request-target as received (scheme and authority too, when the
//!   client sent absolute-form or HTTP/2 pseudo-headers). Default 8 KiB (Kestrel's
//!   `MaxRequestLineSize`).
//! * The path and query limits (off by default) count the path and the query string (after
//!   `?`) as received, like IIS request filtering's `maxUrl` and `maxQueryString`; both
//!   answer 414.
//! * The header limit counts every header line as `name: value\r\n`. Default 32 KiB
//!   (Kestrel's `MaxRequestHeadersTotalSize`).
//! * The body limit is off by default (as in ANCM, where IIS request filtering upstream
//!   enforces it). When on, a declared `Content-Length` over the limit gets 413 before
//!   anything is forwarded; a chunked body that goes over it mid-stream fails with
//!   [`BodyTooLarge`]: before the backend answered, the forwarder turns that into 413, after
//!   it the exchange is aborted.
//! * A [`RequestLimits`] in a request's extensions replaces the layer's own for that request:
//!   a gateway whose limits change while it runs (`ancm run` follows each application's
//!   web.config) inserts the current ones in front of the layer.
//!
//! hyper's own limits apply before this layer sees a request: an HTTP/1.1 head larger than
//! the server's `max_buf_size` (default about 400 KiB) is refused by hyper itself with 431,
//! and HTTP/2 header lists above `max_header_list_size` (hyper's default 16 KiB) are refused
//! by h2. A gateway should set both at least as large as these limits, e.g. with
//! hyper-util's `auto::Builder`:
//! `builder.http1().max_buf_size(64 * 1024)` (its minimum is 8 KiB) and
//! `builder.http2().max_header_list_size(64 * 1024)`, so that this layer, not the
//! transport, answers with its clear status.
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::Body;
use crate::error_page::ErrorPage;
use crate::future::ResponseFuture;
use crate::step::inner_service_accessors;

/// The limits a [`LimitsLayer`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLimits {
    /// Longest request-target, in bytes. Default 8 KiB.
    pub max_uri_length: usize,
    /// Largest header block (`name: value\r\n` per line), in bytes. Default 32 KiB.
    pub max_header_bytes: usize,
    /// Largest request body, in bytes; `None` (default) for no limit.
    pub max_request_body: Option<u64>,
    /// Longest path (the request-target's path, without the query), in bytes; `None`
    /// (default) for no limit beyond `max_uri_length`.
    pub max_path_length: Option<usize>,
    /// Longest query string (after `?`), in bytes; `None` (default) for no limit beyond
    /// `max_uri_length`.
    pub max_query_length: Option<usize>,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_uri_length: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_request_body: None,
            max_path_length: None,
            max_query_length: None,
        }
    }
}

impl RequestLimits {
    /// Set [`max_uri_length`](Self::max_uri_length).
    pub fn max_uri_length(mut self, max: usize) -> Self {
        self.max_uri_length = max;
        self
    }

    /// Set [`max_header_bytes`](Self::max_header_bytes).
    pub fn max_header_bytes(mut self, max: usize) -> Self {
        self.max_header_bytes = max;
        self
    }

    /// Set [`max_request_body`](Self::max_request_body).
    pub fn max_request_body(mut self, max: Option<u64>) -> Self {
        self.max_request_body = max;
        self
    }

    /// Set [`max_path_length`](Self::max_path_length).
    pub fn max_path_length(mut self, max: Option<usize>) -> Self {
        self.max_path_length = max;
        self
    }

    /// Set [`max_query_length`](Self::max_query_length).
    pub fn max_query_length(mut self, max: Option<usize>) -> Self {
        self.max_query_length = max;
        self
    }
}

/// The request body went over [`RequestLimits::max_request_body`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request body larger than {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit that was exceeded.
    pub limit: u64,
}

/// Layer enforcing [`RequestLimits`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitsLayer {
    limits: RequestLimits,
}

impl LimitsLayer {
    /// Enforce `limits`.
    pub fn new(limits: RequestLimits) -> Self {
        Self { limits }
    }
}

impl<S> Layer<S> for LimitsLayer {
    type Service = Limits<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Limits::new(inner, self.limits)
    }
}

/// Service of [`LimitsLayer`].
#[derive(Debug, Clone)]
pub struct Limits<S> {
    inner: S,
    limits: RequestLimits,
}

impl<S> Limits<S> {
    /// Wrap `inner`, enforcing `limits`.
    pub fn new(inner: S, limits: RequestLimits) -> Self {
        Self { inner, limits }
    }

    inner_service_accessors!();
}

fn uri_length(uri: &Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + 3);
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let pq = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    scheme + authority + pq
}

fn reject(status: StatusCode, kind: &'static str) -> Response<Body> {
    ErrorPage::new(status, 0, kind).into_response()
}

impl<S, B> Service<Request<B>> for Limits<S>
where
    S: Service<Request<LimitedBody<B>>, Response = Response<Body>>,
    B: HttpBody<Data = Bytes>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, Body>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let limits = req
            .extensions()
            .get::<RequestLimits>()
            .copied()
            .unwrap_or(self.limits);
        let uri = req.uri();
        let path_length = uri.path().len();
        let query_length = uri.query().map_or(0, str::len);
        if uri_length(uri) > limits.max_uri_length
            || limits.max_path_length.is_some_and(|max| path_length > max)
            || limits
                .max_query_length
                .is_some_and(|max| query_length > max)
        {
            tracing::info!(
                limit = limits.max_uri_length,
                path_limit = limits.max_path_length,
                query_limit = limits.max_query_length,
                path_length,
                query_length,
                "request-target too long (414)"
            );
            return ResponseFuture::ready(reject(StatusCode::URI_TOO_LONG, "URI Too Long"));
        }
        let header_bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > limits.max_header_bytes {
            tracing::info!(
                limit = limits.max_header_bytes,
                header_bytes,
                "request headers too large (431)"
            );
            return ResponseFuture::ready(reject(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Request Header Fields Too Large",
            ));
        }
        if let Some(limit) = limits.max_request_body {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .or_else(|| req.body().size_hint().exact());
            if declared.is_some_and(|len| len > limit) {
                tracing::info!(limit, declared, "request body too large (413)");
                return ResponseFuture::ready(reject(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Entity Too Large",
                ));
            }
        }
        let limit = limits.max_request_body;
        ResponseFuture::inner(self.inner.call(req.map(|inner| LimitedBody {
            inner,
            limit,
            seen: 0,
        })))
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyTooLarge`] once more than the limit has arrived.
    #[derive(Debug)]
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        limit: Option<u64>,
        seen: u64,
    }
}

impl<B> LimitedBody<B> {
    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> HttpBody for LimitedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<crate::BoxError>,
{
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
            None => return Poll::Ready(None),
        };
        if let (Some(limit), Some(data)) = (*this.limit, frame.data_ref()) {
            *this.seen += data.len() as u64;
            if *this.seen > limit {
                tracing::info!(
                    limit,
                    "request body went over the limit mid-stream; aborting"
                );
                return Poll::Ready(Some(Err(BodyTooLarge { limit }.into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
