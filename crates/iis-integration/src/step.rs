//! One request-rewriting step, and the `Layer` + `Service` pair every step gets.
use std::ops::ControlFlow;

use http::{Request, StatusCode};

/// A step rewrites the request in place, or answers it itself.
pub(crate) trait Step {
    /// `Continue`: the request goes on (to the next step, then the app). `Break(status)`:
    /// answer with that status and an empty body; the app is not called. Steps compose
    /// with `?`.
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode>;
}

/// Implements `Layer` for `$layer { step }` and `Service` for `$service<S> { inner, step }`,
/// where `step` is cheap to clone and implements [`Step`], and gives `$service` the
/// `get_ref`, `get_mut` and `into_inner` of every service (each one writes its own `new`).
macro_rules! step_middleware {
    ($layer:ident, $service:ident) => {
        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    step: self.step.clone(),
                }
            }
        }

        impl<S> $service<S> {
            /// The wrapped service.
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            /// The wrapped service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            /// Unwrap the inner service.
            pub fn into_inner(self) -> S {
                self.inner
            }
        }

        impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for $service<S>
        where
            S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
            ResBody: Default,
        {
            type Response = http::Response<ResBody>;
            type Error = S::Error;
            type Future = $crate::future::ResponseFuture<S::Future, ResBody>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
                match $crate::step::Step::apply(&self.step, &mut req) {
                    std::ops::ControlFlow::Continue(()) => {
                        $crate::future::ResponseFuture::inner(self.inner.call(req))
                    }
                    std::ops::ControlFlow::Break(status) => {
                        $crate::future::ResponseFuture::answer(status)
                    }
                }
            }
        }
    };
}

pub(crate) use step_middleware;

/// Steps are shared behind an `Arc` in layers and services.
impl<T: Step + ?Sized> Step for std::sync::Arc<T> {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        (**self).apply(req)
    }
}

/// A step the configuration leaves out lets every request through.
impl<T: Step> Step for Option<T> {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        match self {
            Some(step) => step.apply(req),
            None => ControlFlow::Continue(()),
        }
    }
}
