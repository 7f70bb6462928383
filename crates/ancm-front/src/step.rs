//! One request-rewriting step, and the `Layer` + `Service` pair every step gets.
//!
//! A step's layer holds its settings and rewrites the request; the service holds the inner
//! service and a clone of the layer. [`step_middleware!`] writes the `Layer` and `Service`
//! impls; each module writes its structs, constructors and docs. The composed
//! [`Ancm`](crate::bundle::Ancm) service does not go through here: it calls the same
//! `pub(crate)` functions the steps call, in one pass.
use std::ops::ControlFlow;

use http::{Extensions, HeaderMap, Request};

/// A step rewrites the request in place, or answers it itself.
pub(crate) trait Step {
    /// What the step answers with instead of calling the inner service:
    /// [`Infallible`](std::convert::Infallible) for steps that always pass the request on,
    /// `Response<Body>` for those that can refuse it.
    type Answer;

    /// Rewrite `req`; `Break(answer)` answers it and the inner service is not called.
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Self::Answer>;
}

/// Implements `Layer` for `$layer` (a [`Step`], cheap to clone) and `Service` for
/// `$service<S>` (fields `inner: S` and `layer: $layer`); both may take one more type
/// parameter, with the bound under which the layer is a [`Step`] (`SetPairingTokenLayer<T:
/// TokenSource>`).
///
/// * `passing`: the step's `Answer` is `Infallible`; the service's future is the inner
///   service's own, and any response type passes.
/// * `answering`: the step's `Answer` is `Response<Body>`; the service's future is
///   [`ResponseFuture`](crate::future::ResponseFuture) and the response body must implement
///   `From<Body>`.
macro_rules! step_middleware {
    (passing $layer:ident $(<$param:ident: $bound:path>)?, $service:ident) => {
        $crate::step::step_middleware!(@layer $layer $(<$param>)?, $service);

        impl<S, $($param: $bound,)? ReqBody> tower_service::Service<http::Request<ReqBody>>
            for $service<S $(, $param)?>
        where
            S: tower_service::Service<http::Request<ReqBody>>,
        {
            type Response = S::Response;
            type Error = S::Error;
            type Future = S::Future;

            $crate::step::step_middleware!(@poll_ready);

            fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
                match $crate::step::Step::apply(&self.layer, &mut req) {
                    std::ops::ControlFlow::Continue(()) => self.inner.call(req),
                    std::ops::ControlFlow::Break(never) => match never {},
                }
            }
        }
    };
    (answering $layer:ident $(<$param:ident: $bound:path>)?, $service:ident) => {
        $crate::step::step_middleware!(@layer $layer $(<$param>)?, $service);

        impl<S, $($param: $bound,)? ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>>
            for $service<S $(, $param)?>
        where
            S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
            ResBody: From<$crate::Body>,
        {
            type Response = http::Response<ResBody>;
            type Error = S::Error;
            type Future = $crate::future::ResponseFuture<S::Future, ResBody>;

            $crate::step::step_middleware!(@poll_ready);

            fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
                match $crate::step::Step::apply(&self.layer, &mut req) {
                    std::ops::ControlFlow::Continue(()) => {
                        $crate::future::ResponseFuture::inner(self.inner.call(req))
                    }
                    std::ops::ControlFlow::Break(response) => {
                        $crate::future::ResponseFuture::ready(response.map(ResBody::from))
                    }
                }
            }
        }
    };
    (@poll_ready) => {
        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }
    };
    (@layer $layer:ident $(<$param:ident>)?, $service:ident) => {
        impl<S $(, $param: Clone)?> tower_layer::Layer<S> for $layer $(<$param>)? {
            type Service = $service<S $(, $param)?>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    layer: self.clone(),
                }
            }
        }
    };
}

/// `get_ref`, `get_mut` and `into_inner` for a service whose inner service is `self.inner`
/// (used inside its `impl` block, as tower-http does).
macro_rules! inner_service_accessors {
    () => {
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
    };
}

pub(crate) use {inner_service_accessors, step_middleware};

/// Run `f` with a request's headers (mutable) and its extensions (shared).
///
/// `Request` offers no disjoint borrows; moving the extension map out and back is a pointer
/// move.
pub(crate) fn with_extensions<B, R>(
    req: &mut Request<B>,
    f: impl FnOnce(&mut HeaderMap, &Extensions) -> R,
) -> R {
    let extensions = std::mem::take(req.extensions_mut());
    let out = f(req.headers_mut(), &extensions);
    *req.extensions_mut() = extensions;
    out
}
