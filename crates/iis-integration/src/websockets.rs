//! Hide hyper's connection upgrade from the app when the front does not relay WebSockets
//! (protocol §4.3 step 7).
//!
//! ```
//! use iis_integration::DisableUpgradeLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(DisableUpgradeLayer::new())
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let can_upgrade = req.extensions().get::<hyper::upgrade::OnUpgrade>().is_some();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(can_upgrade))
//!     }));
//! assert!(!svc.oneshot(http::Request::new(())).await.unwrap().into_body());
//! # });
//! ```
//!
//! hyper puts an [`OnUpgrade`](hyper::upgrade::OnUpgrade) extension on HTTP/1.1 requests that
//! ask for an upgrade (and on extended CONNECT over HTTP/2); this layer removes it, so
//! WebSocket extractors reject the request as not upgradable.
use std::ops::ControlFlow;

use http::{Request, StatusCode};
use tower_layer::Layer as _;

use crate::step::{Step, step_middleware};

/// Removes the upgrade; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct DisableUpgradeLayer {
    step: DisableUpgradeStep,
}

/// The service of [`DisableUpgradeLayer`].
#[derive(Clone, Copy, Debug)]
pub struct DisableUpgrade<S> {
    inner: S,
    step: DisableUpgradeStep,
}

impl DisableUpgradeLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> DisableUpgrade<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        DisableUpgradeLayer::new().layer(inner)
    }
}

step_middleware!(DisableUpgradeLayer, DisableUpgrade);

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DisableUpgradeStep;

impl Step for DisableUpgradeStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
        ControlFlow::Continue(())
    }
}
