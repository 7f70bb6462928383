//! The backend a request is routed to, as a request extension.
//!
//! Whoever selects the backend — the supervisor in `ancm-hosting`, or
//! [`FixedBackendLayer`] for a single known upstream — inserts a [`BackendTarget`]; the
//! pairing-token layer, the Windows-token layer and the forwarder read it.
//!
//! ```
//! use ancm_front::backend::{BackendTarget, FixedBackendLayer};
//! use ancm_protocol::PairingToken;
//! let target = BackendTarget::new("127.0.0.1:5000".parse().unwrap(), Some(PairingToken::generate()));
//! let _layer = FixedBackendLayer::new(target);
//! ```
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ancm_protocol::{AppPath, PairingToken};
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

/// Where a request goes: the backend's loopback address, its pairing token, and its process.
#[derive(Clone, Debug)]
pub struct BackendTarget {
    /// The backend's listening address, normally `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    /// The token the backend expects in `MS-ASPNETCORE-TOKEN`; `None` sends none.
    pub token: Option<PairingToken>,
    /// The backend's application path (its `ASPNETCORE_APPL_PATH`).
    pub app_path: AppPath,
    /// The process listening on `addr`, when the front owns it (needed to duplicate Windows
    /// token handles into it).
    pub process: Option<Arc<BackendProcess>>,
    /// The backend's `requestTimeout` (per phase), overriding the forwarder's own, so a
    /// recycle with a new web.config applies it; `Duration::ZERO` (web.config `00:00:00`)
    /// means no limit.
    pub request_timeout: Option<Duration>,
}

impl BackendTarget {
    /// A target at `addr` with `token`, app path `/`, no known process.
    pub fn new(addr: SocketAddr, token: Option<PairingToken>) -> Self {
        Self {
            addr,
            token,
            app_path: AppPath::root(),
            process: None,
            request_timeout: None,
        }
    }
}

/// The backend process, as far as the front needs to know it.
#[derive(Debug)]
pub struct BackendProcess {
    /// Process id of the process that listens on the backend port.
    pub pid: u32,
    /// A handle to that process with `PROCESS_DUP_HANDLE` access (Windows only).
    #[cfg(windows)]
    pub handle: Option<std::os::windows::io::OwnedHandle>,
}

/// Inserts a fixed [`BackendTarget`] into every request (for a gateway in front of one
/// upstream that the front does not supervise).
#[derive(Clone, Debug)]
pub struct FixedBackendLayer {
    target: BackendTarget,
}

impl FixedBackendLayer {
    /// Route every request to `target`.
    pub fn new(target: BackendTarget) -> Self {
        Self { target }
    }
}

impl<S> Layer<S> for FixedBackendLayer {
    type Service = FixedBackend<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FixedBackend {
            inner,
            target: self.target.clone(),
        }
    }
}

/// Service of [`FixedBackendLayer`].
#[derive(Clone, Debug)]
pub struct FixedBackend<S> {
    inner: S,
    target: BackendTarget,
}

impl<S, B> Service<Request<B>> for FixedBackend<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.target.clone());
        self.inner.call(req)
    }
}
