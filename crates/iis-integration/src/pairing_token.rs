//! Reject requests that do not carry the pairing token (protocol §4.3 step 1, §8.1).
//!
//! ```
//! use ancm_protocol::PairingToken;
//! use iis_integration::RequirePairingTokenLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let token = PairingToken::new("3f2504e0-4f89-41d3-9a0c-0305e82c3301").unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(RequirePairingTokenLayer::new(token.clone()))
//!     .service(service_fn(|_req: http::Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("app")))
//!     }));
//! let res = svc.clone().oneshot(http::Request::new(())).await.unwrap();
//! assert_eq!(res.status(), 400);
//! assert_eq!(res.body(), "");
//! let req = http::Request::get("/")
//!     .header("ms-aspnetcore-token", token.header_value())
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap().body(), "app");
//! # });
//! ```
//!
//! A request whose `MS-ASPNETCORE-TOKEN` is missing, wrong, or sent on more than one line is
//! answered `400 Bad Request` with an empty body and the app is not called.
//!
//! Where this differs from ANCM (protocol §8.1): the comparison is constant-time, and the
//! rejection is logged (at error level, like ANCM) with the socket peer but never with the
//! expected or presented value; ANCM logs the expected token. An accepted token header is
//! removed before the app sees the request, so an app that echoes headers cannot leak it.
use std::sync::Arc;

use ancm_protocol::PairingToken;
use ancm_protocol::headers::TOKEN;
use std::ops::ControlFlow;

use http::{Request, StatusCode};
use tower_layer::Layer as _;

use crate::extensions::peer_addr;
use crate::step::{Step, step_middleware};

/// Requires the pairing token; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct RequirePairingTokenLayer {
    step: Arc<TokenStep>,
}

/// The service of [`RequirePairingTokenLayer`].
#[derive(Clone, Debug)]
pub struct RequirePairingToken<S> {
    inner: S,
    step: Arc<TokenStep>,
}

impl RequirePairingTokenLayer {
    /// Require `token`.
    pub fn new(token: PairingToken) -> Self {
        Self {
            step: Arc::new(TokenStep { token }),
        }
    }
}

impl<S> RequirePairingToken<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, token: PairingToken) -> Self {
        RequirePairingTokenLayer::new(token).layer(inner)
    }
}

step_middleware!(RequirePairingTokenLayer, RequirePairingToken);

#[derive(Debug)]
pub(crate) struct TokenStep {
    pub(crate) token: PairingToken,
}

impl Step for TokenStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        // The header goes whether the request is accepted or not (a rejected request is
        // dropped), so remove it at once: one lookup instead of a read and then a removal.
        // `remove` takes every line and returns the first; the length says how many there
        // were. (Not `entry()`: it reserves room for an insert and may grow the map.)
        let headers = req.headers_mut();
        let before = headers.len();
        let first = headers.remove(TOKEN);
        let problem = match (first, before - headers.len()) {
            (Some(value), 1) if self.token.matches(value.as_bytes()) => None,
            (Some(_), 1) => Some("does not match"),
            (None, _) => Some("is missing"),
            (Some(_), _) => Some("is sent more than once"),
        };
        if let Some(problem) = problem {
            tracing::error!(
                peer = ?peer_addr(req.extensions()),
                method = %req.method(),
                "MS-ASPNETCORE-TOKEN {problem}: the request does not carry the pairing token; rejected with 400"
            );
            return ControlFlow::Break(StatusCode::BAD_REQUEST);
        }
        ControlFlow::Continue(())
    }
}
