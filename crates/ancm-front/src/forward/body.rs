//! Bodies on both legs of the forwarder: the per-chunk idle timeout (protocol §1.7), the
//! request body handed to the backend connection, and the backend's response body that
//! returns its connection to the pool once it has been read to the end.
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::error::BodyError;
use super::pool::Checkout;
use crate::{BoxError, RequestTimeout};

pin_project_lite::pin_project! {
    /// Fails a body with [`BodyError::IdleTimeout`] when its source has been pending for
    /// longer than the timeout. The timer only runs while the inner body is pending, so a
    /// slow reader on the other side (back-pressure) never counts, and a body whose data is
    /// always ready never touches the timer wheel.
    #[derive(Debug)]
    pub(crate) struct IdleTimeout<B> {
        #[pin]
        inner: B,
        timeout: RequestTimeout,
        // Boxed and created lazily: most small bodies are ready at the first poll.
        sleep: Option<Pin<Box<Sleep>>>,
        armed: bool,
    }
}

impl<B> IdleTimeout<B> {
    pub(crate) fn new(inner: B, timeout: RequestTimeout) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
            armed: false,
        }
    }
}

/// A polled frame, or the idle timeout that fired.
type Polled<B> =
    Result<Option<Result<Frame<<B as HttpBody>::Data>, <B as HttpBody>::Error>>, Duration>;

impl<B> IdleTimeout<B>
where
    B: HttpBody,
{
    /// Polls the inner body; on `Pending` arms (or keeps) the idle timer and reports whether
    /// it has fired.
    fn poll_inner(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Polled<B>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.armed = false;
                Poll::Ready(Ok(frame))
            }
            Poll::Pending => {
                let Some(timeout) = this.timeout.limit() else {
                    return Poll::Pending;
                };
                let sleep = match this.sleep {
                    Some(sleep) => {
                        if !*this.armed {
                            sleep.as_mut().reset(Instant::now() + timeout);
                        }
                        sleep
                    }
                    None => this.sleep.insert(Box::pin(tokio::time::sleep(timeout))),
                };
                *this.armed = true;
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timeout)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// The request body sent to the backend: nothing for body-less requests (no allocation), or
/// the client's body behind the idle timeout.
pub(crate) struct RequestBody {
    inner: Option<Pin<Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send>>>,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("streamed", &self.inner.is_some())
            .finish()
    }
}

impl RequestBody {
    /// No body.
    pub(crate) fn empty() -> Self {
        Self { inner: None }
    }

    /// Whether the request has no body at all (known when it was made).
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    pub(crate) fn new<B>(body: B, timeout: RequestTimeout) -> Self
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if body.is_end_stream() {
            return Self::empty();
        }
        Self {
            inner: Some(Box::pin(ClientBody {
                inner: IdleTimeout::new(body, timeout),
            })),
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // An exact hint lets hyper send Content-Length instead of chunking a body whose
        // length the client declared.
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

pin_project_lite::pin_project! {
    /// The client's body with its errors tagged, so a failed forward can tell a client
    /// fault (400, 413) from a backend fault (502.3).
    struct ClientBody<B> {
        #[pin]
        inner: IdleTimeout<B>,
    }
}

impl<B> HttpBody for ClientBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match ready!(self.project().inner.poll_inner(cx)) {
            Ok(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Ok(Some(Err(err))) => {
                let err: BoxError = err.into();
                // The limits layer's error passes unchanged so the forwarder can answer 413.
                if err.is::<crate::limits::BodyTooLarge>() {
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Some(Err(BodyError::Client(err).into())))
            }
            Ok(None) => Poll::Ready(None),
            Err(timeout) => Poll::Ready(Some(Err(BodyError::IdleTimeout(timeout).into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The backend's response body: streamed as it arrives, failed on an idle gap longer than
    /// `requestTimeout` or when the backend cuts it short, and giving its keep-alive
    /// connection back to the pool only once read to the very end. Dropped early (client
    /// gone), the connection is closed instead of pooled. Either way its place under the
    /// connection limit comes free then.
    #[derive(Debug)]
    pub(crate) struct ResponseBody {
        #[pin]
        inner: IdleTimeout<Incoming>,
        checkout: Option<Checkout>,
    }
}

impl ResponseBody {
    pub(crate) fn new(body: Incoming, timeout: RequestTimeout, checkout: Checkout) -> Self {
        let mut this = Self {
            inner: IdleTimeout::new(body, timeout),
            checkout: Some(checkout),
        };
        if this.inner.inner.is_end_stream() {
            this.release();
        }
        this
    }

    fn release(&mut self) {
        if let Some(checkout) = self.checkout.take() {
            checkout.release();
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = ready!(this.inner.as_mut().poll_inner(cx));
        match polled {
            Ok(Some(Ok(frame))) => {
                if this.inner.inner.is_end_stream()
                    && let Some(checkout) = this.checkout.take()
                {
                    checkout.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Ok(None) => {
                if let Some(checkout) = this.checkout.take() {
                    checkout.release();
                }
                Poll::Ready(None)
            }
            Ok(Some(Err(err))) => {
                // Dropping the checkout closes the connection: it is in an unknown state.
                this.checkout.take();
                tracing::warn!(error = %super::error::Chain(&err), "backend response body failed; aborting the client response");
                Poll::Ready(Some(Err(BodyError::Backend(err).into())))
            }
            Err(timeout) => {
                this.checkout.take();
                tracing::warn!(
                    ?timeout,
                    "backend response body idle for longer than requestTimeout; aborting the client response"
                );
                Poll::Ready(Some(Err(BodyError::IdleTimeout(timeout).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.inner.size_hint()
    }
}
