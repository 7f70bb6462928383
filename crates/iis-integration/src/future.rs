//! The response future every layer of this crate returns.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Response, StatusCode};
use pin_project_lite::pin_project;

pin_project! {
    /// Either the inner service's future, or the layer's own empty-bodied answer (a 400 for a
    /// bad token, a 202 for the shutdown event) when the app is not called.
    ///
    /// # Panics
    ///
    /// Polling it again after it returned `Poll::Ready` panics with
    /// `"ResponseFuture polled after completion"`.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[project_replace = KindOwn]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Answer { response: Response<B> },
        // Returned its output: polling again panics.
        Done,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn answer(status: StatusCode) -> Self
    where
        B: Default,
    {
        let mut response = Response::new(B::default());
        *response.status_mut() = status;
        Self {
            kind: Kind::Answer { response },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        if let KindProj::Inner { future } = kind.as_mut().project() {
            let output = ready!(future.poll(cx));
            // A second poll then panics below rather than polling a finished future.
            kind.set(Kind::Done);
            return Poll::Ready(output);
        }
        match kind.project_replace(Kind::Done) {
            KindOwn::Answer { response } => Poll::Ready(Ok(response)),
            KindOwn::Inner { .. } | KindOwn::Done => {
                panic!("ResponseFuture polled after completion")
            }
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ready = std::future::Ready<Result<Response<()>, ()>>;

    fn poll_twice(future: ResponseFuture<Ready, ()>) {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_ready());
        let _ = future.as_mut().poll(&mut cx);
    }

    #[test]
    #[should_panic(expected = "ResponseFuture polled after completion")]
    fn an_answer_polled_after_completion_panics() {
        poll_twice(ResponseFuture::answer(StatusCode::ACCEPTED));
    }

    #[test]
    #[should_panic(expected = "ResponseFuture polled after completion")]
    fn the_inner_future_polled_after_completion_panics() {
        poll_twice(ResponseFuture::inner(std::future::ready(Ok(
            Response::new(()),
        ))));
    }
}
