//! Puts a value into every request's extensions: the one add-extension layer both halves use.
//!
//! ```
//! use ancm_protocol::extension::AddExtensionLayer;
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! #[derive(Clone, Debug, PartialEq)]
//! struct Peer(&'static str);
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(req.extensions().get::<Peer>().cloned())
//! });
//! // What the accept loop knows: replaces whatever the request carries.
//! let svc = AddExtensionLayer::new(Peer("real")).layer(app.clone());
//! assert_eq!(svc.oneshot(Request::new(())).await.unwrap(), Some(Peer("real")));
//!
//! // A stand-in for tests: used only when the real value is absent, like axum's
//! // `MockConnectInfo`.
//! let svc = AddExtensionLayer::mock(Peer("mock")).layer(app);
//! let mut req = Request::new(());
//! req.extensions_mut().insert(Peer("real"));
//! assert_eq!(svc.clone().oneshot(req).await.unwrap(), Some(Peer("real")));
//! assert_eq!(svc.oneshot(Request::new(())).await.unwrap(), Some(Peer("mock")));
//! # });
//! ```
//!
//! The front uses it for the connection facts of the accept loop and for a fixed backend
//! target; the backend's tests use it to stand in for what the IIS layers learn. It is the
//! only piece of tower plumbing in this crate, so that neither half spells it again.
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

/// When the value is inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Always, replacing a value of the same type.
    Overriding,
    /// Only when the request has no value of the type.
    IfAbsent,
}

/// Layer that inserts a clone of a value into every request (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct AddExtensionLayer<T> {
    value: T,
    mode: Mode,
}

impl<T> AddExtensionLayer<T> {
    /// Insert `value` into every request, replacing a value of the same type.
    pub fn new(value: T) -> Self {
        Self {
            value,
            mode: Mode::Overriding,
        }
    }

    /// Insert `value` only into requests that have no value of its type: a stand-in for
    /// tests, like axum's `MockConnectInfo`.
    pub fn mock(value: T) -> Self {
        Self {
            value,
            mode: Mode::IfAbsent,
        }
    }
}

impl<S, T: Clone> Layer<S> for AddExtensionLayer<T> {
    type Service = AddExtension<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AddExtension {
            inner,
            value: self.value.clone(),
            mode: self.mode,
        }
    }
}

/// Service of [`AddExtensionLayer`].
#[derive(Clone, Debug)]
pub struct AddExtension<S, T> {
    inner: S,
    value: T,
    mode: Mode,
}

impl<S, T> AddExtension<S, T> {
    /// Wrap `inner` so every request carries `value` (replacing one of the same type).
    pub fn new(inner: S, value: T) -> Self {
        Self {
            inner,
            value,
            mode: Mode::Overriding,
        }
    }

    /// Wrap `inner` so requests without a value of `T` get `value`.
    pub fn mock(inner: S, value: T) -> Self {
        Self {
            inner,
            value,
            mode: Mode::IfAbsent,
        }
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

impl<S, T, B> Service<Request<B>> for AddExtension<S, T>
where
    S: Service<Request<B>>,
    T: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let extensions = req.extensions_mut();
        if self.mode == Mode::Overriding || extensions.get::<T>().is_none() {
            extensions.insert(self.value.clone());
        }
        self.inner.call(req)
    }
}
