//! The tower layer of an [`Application`]: admission and backend choice in front of the inner
//! service (the front layers and the forwarder).
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ancm_front::Body;
use ancm_front::error_page::SubStatus;
use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::Application;

/// Layer of [`Application`]: see the [module docs](super).
#[derive(Debug, Clone)]
pub struct ApplicationLayer {
    app: Application,
}

impl ApplicationLayer {
    /// The layer for `app` (also [`Application::layer`]).
    pub fn new(app: Application) -> Self {
        Self { app }
    }
}

impl<S> Layer<S> for ApplicationLayer {
    type Service = ApplicationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApplicationService::new(inner, self.app.clone())
    }
}

/// Service of [`ApplicationLayer`]: admission, backend selection, then the inner service.
///
/// A request counts as in flight at its backend from admission until the inner service
/// answered it, so a stop lets it reach the backend first. An answer `502` makes the
/// application look whether the backend still listens (one loopback connect); a backend that
/// refuses connections gets no further request. A `502.3` counts toward the backend's
/// passive health check, any other answer resets it (protocol §8.34).
#[derive(Debug, Clone)]
pub struct ApplicationService<S> {
    app: Application,
    inner: S,
}

impl<S> ApplicationService<S> {
    /// Wraps `inner` so each request is admitted by `app` and given its backend.
    pub fn new(inner: S, app: Application) -> Self {
        Self { app, inner }
    }

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

impl<S, B> Service<Request<B>> for ApplicationService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness of the inner service is awaited in the call, on the clone that serves it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.app.clone();
        Box::pin(async move {
            match app.admit().await {
                Ok((target, admission)) => {
                    req.extensions_mut().insert(target);
                    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
                    // In flight until answered: a stop of this child waits for that.
                    let resp = inner.call(req).await?;
                    // 502.3: the request failed at the backend's port (refused, reset, no
                    // answer in time), which the passive health check counts.
                    admission.record_answer(
                        resp.status() == StatusCode::BAD_GATEWAY
                            && resp.extensions().get::<SubStatus>() == Some(&SubStatus(3)),
                    );
                    if resp.status() == StatusCode::BAD_GATEWAY {
                        // Boxed: on 502s only; kept out of every request's future.
                        Box::pin(admission.check_after_bad_gateway()).await;
                    }
                    Ok(resp)
                }
                Err(resp) => Ok(resp),
            }
        })
    }
}
