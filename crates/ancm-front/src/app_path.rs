//! Lets through only requests under the application's virtual path; others get `404` or go
//! to a fallback service.
//!
//! ```
//! use ancm_front::app_path::RequireAppPathLayer;
//! use ancm_protocol::AppPath;
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     // The path is forwarded unchanged: the backend strips its own ASPNETCORE_APPL_PATH.
//!     Ok::<_, std::convert::Infallible>(Response::new(req.uri().path().to_owned()))
//! });
//! let svc = RequireAppPathLayer::new(AppPath::parse("/shop").unwrap()).layer(app);
//! let ok = svc.clone().oneshot(Request::get("/SHOP/cart").body(()).unwrap()).await.unwrap();
//! assert_eq!(ok.body(), "/SHOP/cart");
//! let other = svc.oneshot(Request::get("/shopping").body(()).unwrap()).await.unwrap();
//! assert_eq!(other.status(), StatusCode::NOT_FOUND);
//! # });
//! ```
//!
//! A request is under the path when its path starts with it, ignoring ASCII case, at a
//! segment boundary ([`AppPath::match_len`]): with `/shop`, `/shop`, `/Shop/` and `/shop/x`
//! match, `/shopping` does not. The root `/` matches everything. The path is compared as
//! sent (not percent-decoded), so an encoded spelling of the prefix does not match: it fails
//! closed with `404`.
//!
//! The request goes on with its path unchanged, as ANCM forwards it; the backend strips the
//! base itself. [`RequireAppPathLayer::send_prefix`] also sets `X-Forwarded-Prefix` to the
//! configured path (replacing any client value) for backends that read it instead.
//!
//! Unmatched requests get an empty `404` (the response body must be `Default`), or go to the
//! service given to [`RequireAppPathLayer::with_fallback`] (a clone of it, driven to readiness on
//! its own; the inner service's readiness is then left unused, as with axum's `Router`).
use std::future::{Future, Ready, ready};
use std::task::{Context, Poll};

use ancm_protocol::AppPath;
use ancm_protocol::headers::X_FORWARDED_PREFIX;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::ServiceExt as _;
use tower::util::Oneshot;
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::step::inner_service_accessors;

/// The application path check, precomputed.
#[derive(Clone, Debug)]
pub(crate) struct AppPathCheck {
    app_path: AppPath,
    prefix: Option<HeaderValue>,
}

impl AppPathCheck {
    pub(crate) fn new(app_path: AppPath) -> Self {
        Self {
            app_path,
            prefix: None,
        }
    }

    pub(crate) fn send_prefix(&mut self) {
        // The root has no prefix to send; `AppPath` is valid header text.
        if !self.app_path.is_root() {
            self.prefix = HeaderValue::from_str(self.app_path.as_str()).ok();
        }
    }

    pub(crate) fn app_path(&self) -> &AppPath {
        &self.app_path
    }

    /// Whether the request is under the path; on a match, sets the prefix header if asked to.
    pub(crate) fn admit<B>(&self, req: &mut Request<B>) -> bool {
        if self.app_path.match_len(req.uri().path()).is_none() {
            tracing::debug!(
                path = req.uri().path(),
                app_path = self.app_path.as_str(),
                "request outside the application path"
            );
            return false;
        }
        if let Some(prefix) = &self.prefix {
            req.headers_mut().insert(X_FORWARDED_PREFIX, prefix.clone());
        }
        true
    }
}

/// What answers a request outside the application path.
///
/// Implemented by [`NotFound`] (the default) and [`Fallback`]; there is no need to implement
/// it elsewhere.
pub trait Unmatched<B, ResBody, E> {
    /// The response future.
    type Future: Future<Output = Result<Response<ResBody>, E>>;
    /// Answer `req`.
    fn respond(&mut self, req: Request<B>) -> Self::Future;
}

/// Answers with an empty `404 Not Found`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotFound {
    _priv: (),
}

impl NotFound {
    /// An empty `404` response.
    pub fn response<ResBody: Default>() -> Response<ResBody> {
        let mut resp = Response::new(ResBody::default());
        *resp.status_mut() = StatusCode::NOT_FOUND;
        resp
    }
}

impl<B, ResBody: Default, E> Unmatched<B, ResBody, E> for NotFound {
    type Future = Ready<Result<Response<ResBody>, E>>;
    fn respond(&mut self, _req: Request<B>) -> Self::Future {
        ready(Ok(Self::response()))
    }
}

/// Sends requests outside the application path to a service (made by
/// [`RequireAppPathLayer::with_fallback`]).
#[derive(Clone, Debug)]
pub struct Fallback<G>(G);

impl<G> Fallback<G> {
    pub(crate) fn new(service: G) -> Self {
        Self(service)
    }
}

impl<G, B, ResBody, E> Unmatched<B, ResBody, E> for Fallback<G>
where
    G: Service<Request<B>, Response = Response<ResBody>, Error = E> + Clone,
{
    type Future = Oneshot<G, Request<B>>;
    fn respond(&mut self, req: Request<B>) -> Self::Future {
        // A clone, driven to readiness by `Oneshot`, so the fallback's readiness never
        // gates requests that match.
        self.0.clone().oneshot(req)
    }
}

/// Layer that admits only requests under the application path.
#[derive(Clone, Debug)]
pub struct RequireAppPathLayer<F = NotFound> {
    check: AppPathCheck,
    unmatched: F,
}

impl RequireAppPathLayer<NotFound> {
    /// Admit requests under `app_path`; answer others with `404`.
    pub fn new(app_path: AppPath) -> Self {
        Self {
            check: AppPathCheck::new(app_path),
            unmatched: NotFound::default(),
        }
    }
}

impl<F> RequireAppPathLayer<F> {
    /// Send requests outside the path to `fallback` instead of answering `404`.
    pub fn with_fallback<G>(self, fallback: G) -> RequireAppPathLayer<Fallback<G>> {
        RequireAppPathLayer {
            check: self.check,
            unmatched: Fallback(fallback),
        }
    }

    /// Also set `X-Forwarded-Prefix` to the application path (not for the root).
    pub fn send_prefix(mut self) -> Self {
        self.check.send_prefix();
        self
    }

    /// The application path.
    pub fn app_path(&self) -> &AppPath {
        self.check.app_path()
    }
}

impl<S, F: Clone> Layer<S> for RequireAppPathLayer<F> {
    type Service = RequireAppPath<S, F>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireAppPath {
            inner,
            check: self.check.clone(),
            unmatched: self.unmatched.clone(),
        }
    }
}

/// Service of [`RequireAppPathLayer`].
#[derive(Clone, Debug)]
pub struct RequireAppPath<S, F = NotFound> {
    inner: S,
    check: AppPathCheck,
    unmatched: F,
}

impl<S> RequireAppPath<S, NotFound> {
    /// Wrap `inner`, admitting requests under `app_path` and answering others with `404`.
    pub fn new(inner: S, app_path: AppPath) -> Self {
        Self {
            inner,
            check: AppPathCheck::new(app_path),
            unmatched: NotFound::default(),
        }
    }
}

impl<S, F> RequireAppPath<S, F> {
    inner_service_accessors!();
}

impl<S, F, B, ResBody> Service<Request<B>> for RequireAppPath<S, F>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    F: Unmatched<B, ResBody, S::Error>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, F::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if self.check.admit(&mut req) {
            ResponseFuture::inner(self.inner.call(req))
        } else {
            ResponseFuture::unmatched(self.unmatched.respond(req))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> Request<()> {
        Request::get(path).body(()).unwrap()
    }

    #[test]
    fn admits_at_segment_boundary_ignoring_case() {
        let c = AppPathCheck::new(AppPath::parse("/shop/api").unwrap());
        for ok in ["/shop/api", "/SHOP/Api/", "/shop/api/x?q=1", "/Shop/API?x"] {
            assert!(c.admit(&mut req(ok)), "{ok}");
        }
        for bad in ["/shop", "/shop/apis", "/", "/shop/ap", "/%73hop/api"] {
            assert!(!c.admit(&mut req(bad)), "{bad}");
        }
        let root = AppPathCheck::new(AppPath::root());
        assert!(root.admit(&mut req("/anything")));
    }

    #[test]
    fn prefix_is_sent_only_when_asked_and_not_for_root() {
        let mut c = AppPathCheck::new(AppPath::parse("/Shop").unwrap());
        let mut r = req("/shop/x");
        r.headers_mut()
            .insert(X_FORWARDED_PREFIX, "/forged".parse().unwrap());
        assert!(c.admit(&mut r));
        assert_eq!(r.headers()[X_FORWARDED_PREFIX], "/forged");
        c.send_prefix();
        assert!(c.admit(&mut r));
        assert_eq!(r.headers()[X_FORWARDED_PREFIX], "/Shop");
        let mut root = AppPathCheck::new(AppPath::root());
        root.send_prefix();
        let mut r = req("/x");
        assert!(root.admit(&mut r));
        assert!(r.headers().get(X_FORWARDED_PREFIX).is_none());
    }
}
