//! Answer ANCM's shutdown event and fire the shutdown signal (protocol §2.9, §4.3 step 2).
//!
//! ```
//! use iis_integration::{ShutdownEventLayer, ShutdownSignal};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let signal = ShutdownSignal::new();
//! let svc = ServiceBuilder::new()
//!     .layer(ShutdownEventLayer::new(signal.clone()))
//!     .service(service_fn(|_req: http::Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("app")))
//!     }));
//! let req = http::Request::post("/IISIntegration")
//!     .header("ms-aspnetcore-event", "Shutdown")
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap().status(), 202);
//! assert!(signal.is_triggered());
//! signal.triggered().await; // resolves at once now
//! # });
//! ```
//!
//! `POST` to `/iisintegration` (the path after the path base, ignoring case) with
//! `MS-ASPNETCORE-EVENT: shutdown` (ignoring case) is answered `202 Accepted` with an empty
//! body, the app is not called, and the [`ShutdownSignal`] fires (once; repeats are answered
//! the same way). Any other method, path or event value goes to the app. Put it after the
//! token check: only the front may stop the app.
use std::ops::ControlFlow;

use http::{Request, StatusCode};
use tower_layer::Layer as _;

use ancm_protocol::headers::EVENT;
use ancm_protocol::shutdown::{ACCEPTED, is_shutdown_request};

use crate::serve::ShutdownSignal;
use crate::step::{Step, step_middleware};

/// Answers the shutdown event; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ShutdownEventLayer {
    step: ShutdownStep,
}

/// The service of [`ShutdownEventLayer`].
#[derive(Clone, Debug)]
pub struct ShutdownEvent<S> {
    inner: S,
    step: ShutdownStep,
}

impl ShutdownEventLayer {
    /// Fire `signal` on the event.
    pub fn new(signal: ShutdownSignal) -> Self {
        Self {
            step: ShutdownStep { signal },
        }
    }
}

impl<S> ShutdownEvent<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, signal: ShutdownSignal) -> Self {
        ShutdownEventLayer::new(signal).layer(inner)
    }
}

step_middleware!(ShutdownEventLayer, ShutdownEvent);

#[derive(Clone, Debug)]
pub(crate) struct ShutdownStep {
    pub(crate) signal: ShutdownSignal,
}

impl Step for ShutdownStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        if !req.method().as_str().eq_ignore_ascii_case("POST") {
            return ControlFlow::Continue(());
        }
        // ASP.NET Core joins repeated lines with `,`, which never equals `shutdown`.
        let mut lines = req.headers().get_all(EVENT).iter();
        let event = match (lines.next(), lines.next()) {
            (Some(value), None) => Some(value.as_bytes()),
            _ => None,
        };
        if !is_shutdown_request(req.method(), req.uri().path(), event) {
            return ControlFlow::Continue(());
        }
        if self.signal.trigger() {
            tracing::info!("shutdown event received from the front; stopping");
        } else {
            tracing::debug!("shutdown event received again");
        }
        ControlFlow::Break(ACCEPTED)
    }
}
