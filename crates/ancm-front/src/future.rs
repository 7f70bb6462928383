//! The response future of every ancm-front service that can answer a request itself.
//!
//! ```
//! use ancm_front::Body;
//! use ancm_front::future::ResponseFuture;
//! use ancm_front::limits::{LimitsLayer, RequestLimits};
//! use http::{Request, Response};
//! use tower::{Layer, Service, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|_req: Request<_>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
//! });
//! let mut svc = LimitsLayer::new(RequestLimits::default().max_uri_length(8)).layer(app);
//! // The limits layer answers this one itself (414); the app is not called.
//! let future: ResponseFuture<_, Body> = svc.call(Request::get("/a/long/path").body(Body::empty()).unwrap());
//! assert_eq!(future.await.unwrap().status(), 414);
//! # });
//! ```
//!
//! Services that only rewrite the request (say
//! [`StripModuleHeaders`](crate::module_headers::StripModuleHeaders)) return the inner
//! service's future unchanged; the [forwarder](crate::forward::Forwarder) returns this type
//! around its boxed exchange.
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;

use crate::hop_by_hop;

pin_project_lite::pin_project! {
    /// The inner service's future, a response the layer made itself (an error page, a
    /// `404`), or the future of the service that answers requests outside the application
    /// path (`U`). For [`RemoveHopByHop`](crate::hop_by_hop::RemoveHopByHop) and
    /// [`Ancm`](crate::bundle::Ancm) it also removes the hop-by-hop and `MS-ASPNETCORE*`
    /// headers of the response the inner or unmatched service gave.
    ///
    /// # Panics
    ///
    /// Polling it again after it returned `Ready` panics with the message
    /// `"ResponseFuture polled after completion"`.
    pub struct ResponseFuture<F, B, U = F> {
        #[pin]
        kind: Kind<F, B, U>,
        strip_hop_by_hop: bool,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    #[project_replace = KindOwned]
    enum Kind<F, B, U> {
        Inner { #[pin] future: F },
        Unmatched { #[pin] future: U },
        Ready { response: Response<B> },
        // Dropped the inner future or handed out the response.
        Done,
    }
}

impl<F, B, U> ResponseFuture<F, B, U> {
    /// The inner service's future.
    pub(crate) fn inner(future: F) -> Self {
        Self::new(Kind::Inner { future })
    }

    /// The future of the service answering a request outside the application path.
    pub(crate) fn unmatched(future: U) -> Self {
        Self::new(Kind::Unmatched { future })
    }

    /// A response the layer made itself (never cleaned: the front writes no hop-by-hop
    /// headers).
    pub(crate) fn ready(response: Response<B>) -> Self {
        Self::new(Kind::Ready { response })
    }

    /// Also remove hop-by-hop headers from the inner or unmatched service's response.
    pub(crate) fn strip_hop_by_hop(mut self) -> Self {
        self.strip_hop_by_hop = true;
        self
    }

    fn new(kind: Kind<F, B, U>) -> Self {
        Self {
            kind,
            strip_hop_by_hop: false,
        }
    }
}

impl<F, B, U, E> Future for ResponseFuture<F, B, U>
where
    F: Future<Output = Result<Response<B>, E>>,
    U: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut kind = this.kind;
        let output = match kind.as_mut().project() {
            KindProj::Inner { future } => ready!(future.poll(cx)),
            KindProj::Unmatched { future } => ready!(future.poll(cx)),
            KindProj::Ready { .. } | KindProj::Done => {
                return match kind.project_replace(Kind::Done) {
                    KindOwned::Ready { response } => Poll::Ready(Ok(response)),
                    _ => panic!("ResponseFuture polled after completion"),
                };
            }
        };
        kind.set(Kind::Done);
        let mut response = output?;
        if *this.strip_hop_by_hop {
            let status = response.status();
            hop_by_hop::strip_response(status, response.headers_mut());
        }
        Poll::Ready(Ok(response))
    }
}

impl<F, B, U> fmt::Debug for ResponseFuture<F, B, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("strip_hop_by_hop", &self.strip_hop_by_hop)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use futures_util::FutureExt as _;
    use http::StatusCode;

    use super::*;

    type Answer = Result<Response<()>, Infallible>;

    fn response(status: StatusCode) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        response
    }

    #[test]
    fn yields_each_kind_once() {
        let inner = ResponseFuture::<Ready<Answer>, ()>::inner(ready(Ok(response(StatusCode::OK))));
        let made = ResponseFuture::<Ready<Answer>, ()>::ready(response(StatusCode::NOT_FOUND));
        let unmatched = ResponseFuture::<Ready<Answer>, ()>::unmatched(ready(Ok(response(
            StatusCode::IM_A_TEAPOT,
        ))));
        for (future, status) in [
            (inner, StatusCode::OK),
            (made, StatusCode::NOT_FOUND),
            (unmatched, StatusCode::IM_A_TEAPOT),
        ] {
            let Some(Ok(resp)) = future.now_or_never() else {
                panic!("ready futures complete at once");
            };
            assert_eq!(resp.status(), status);
            assert_eq!(resp.headers()["connection"], "close");
        }
    }

    #[test]
    fn strips_hop_by_hop_headers_of_the_inner_answer_only_when_asked() {
        let future =
            ResponseFuture::<Ready<Answer>, ()>::inner(ready(Ok(response(StatusCode::OK))))
                .strip_hop_by_hop();
        let Some(Ok(resp)) = future.now_or_never() else {
            panic!("ready futures complete at once");
        };
        assert!(resp.headers().is_empty());
    }

    #[test]
    fn polling_after_completion_panics() {
        for made in [false, true] {
            let mut future = if made {
                ResponseFuture::<Ready<Answer>, ()>::ready(response(StatusCode::OK))
            } else {
                ResponseFuture::inner(ready(Ok(response(StatusCode::OK))))
            };
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(Pin::new(&mut future).poll(&mut cx).is_ready());
            let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = Pin::new(&mut future).poll(&mut cx);
            }));
            let message = again.expect_err("second poll panics");
            assert_eq!(
                message.downcast_ref::<&str>(),
                Some(&"ResponseFuture polled after completion")
            );
        }
    }
}
