//! One request-rewriting step, and the `Layer` + `Service` pair every step gets.
use http::{Request, StatusCode};

/// A step rewrites the request in place, or answers it itself.
pub(crate) trait Step {
    /// `Some(status)`: answer with that status and an empty body; the app is not called.
    fn apply<B>(&self, req: &mut Request<B>) -> Option<StatusCode>;
}

/// Implements `Layer` for `$layer { step }` and `Service` for `$service<S> { inner, step }`,
/// where `step: $step` is cheap to clone and implements [`Step`].
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
                    None => $crate::future::ResponseFuture::inner(self.inner.call(req)),
                    Some(status) => $crate::future::ResponseFuture::answer(status),
                }
            }
        }
    };
}

pub(crate) use step_middleware;

/// Steps are shared behind an `Arc` in layers and services.
impl<T: Step + ?Sized> Step for std::sync::Arc<T> {
    fn apply<B>(&self, req: &mut Request<B>) -> Option<StatusCode> {
        (**self).apply(req)
    }
}
