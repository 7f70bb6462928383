//! Everything ANCM's backend does, in its order (protocol §4.2): path base → forwarded
//! headers → pairing token → trace context → shutdown event → client certificate → Windows
//! identity → WebSockets flag → app.
//!
//! ```
//! use ancm_protocol::{AppPath, PairingToken};
//! use iis_integration::{ClientAddr, IisConfig, IisIntegrationLayer, PathBase, PeerAddr};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let token = PairingToken::generate();
//! let config = IisConfig::new(41234, AppPath::parse("/shop").unwrap(), token.clone());
//! let layer = IisIntegrationLayer::new(&config);
//! let svc = ServiceBuilder::new()
//!     .layer(layer.clone())
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let base = req.extensions().get::<PathBase>().unwrap().clone();
//!         let client = req.extensions().get::<ClientAddr>().unwrap().0;
//!         Ok::<_, std::convert::Infallible>(http::Response::new(format!("{base} {} {client}", req.uri())))
//!     }));
//! let mut req = http::Request::get("/shop/cart")
//!     .header("ms-aspnetcore-token", token.header_value())
//!     .header("x-forwarded-for", "203.0.113.7:51000")
//!     .body(())
//!     .unwrap();
//! req.extensions_mut().insert(PeerAddr("127.0.0.1:60000".parse().unwrap()));
//! let res = svc.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.body(), "/shop /cart 203.0.113.7:51000");
//!
//! let req = http::Request::post("/shop/iisintegration")
//!     .header("ms-aspnetcore-token", token.header_value())
//!     .header("ms-aspnetcore-event", "shutdown")
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap().status(), 202);
//! layer.shutdown_signal().triggered().await;
//! # });
//! ```
//!
//! Apply it around the whole app (`layer.layer(router)`, or `ServiceBuilder` around the
//! router), not with `Router::layer`: axum runs route layers after routing, which must see
//! the path without its base.
use std::ops::ControlFlow;
use std::sync::Arc;

use http::{Request, StatusCode};
use tower_layer::Layer as _;

use crate::client_cert::ClientCertStep;
use crate::config::IisConfig;
use crate::forwarded::{ForwardedHeadersOptions, ForwardedStep};
use crate::pairing_token::TokenStep;
use crate::path_base::PathBaseStep;
use crate::serve::ShutdownSignal;
use crate::shutdown_event::ShutdownStep;
use crate::step::{Step, step_middleware};
use crate::trace_context::TraceContextStep;
use crate::websockets::DisableUpgradeStep;
use crate::windows_identity::WindowsIdentityStep;

/// The whole backend integration; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct IisIntegrationLayer {
    step: Arc<IisSteps>,
}

/// The service of [`IisIntegrationLayer`].
#[derive(Clone, Debug)]
pub struct IisIntegration<S> {
    inner: S,
    step: Arc<IisSteps>,
}

#[derive(Clone, Debug)]
pub(crate) struct IisSteps {
    path_base: Option<Arc<PathBaseStep>>,
    forwarded: Arc<ForwardedStep>,
    token: Arc<TokenStep>,
    trace: TraceContextStep,
    shutdown: ShutdownStep,
    client_cert: ClientCertStep,
    windows_identity: Option<WindowsIdentityStep>,
    disable_upgrade: Option<DisableUpgradeStep>,
}

impl IisIntegrationLayer {
    /// The integration for `config`: its path base and token, `X-Forwarded-For` and `-Proto`
    /// from loopback with a forward limit of 1, the front's trace context read, client
    /// certificates forwarded, the Windows
    /// identity step when `config` enables authentication, upgrades hidden when it says the
    /// front does not relay WebSockets, and a new [`ShutdownSignal`].
    pub fn new(config: &IisConfig) -> Self {
        let path_base = PathBaseStep::new(config.app_path().clone());
        Self {
            step: Arc::new(IisSteps {
                path_base: (!path_base.is_root()).then(|| Arc::new(path_base)),
                forwarded: Arc::new(ForwardedStep::new(ForwardedHeadersOptions::iis())),
                token: Arc::new(TokenStep {
                    token: config.token().clone(),
                }),
                trace: TraceContextStep,
                shutdown: ShutdownStep {
                    signal: ShutdownSignal::new(),
                },
                client_cert: ClientCertStep::Forward,
                windows_identity: config.auth_enabled().then_some(WindowsIdentityStep),
                disable_upgrade: (!config.websockets_supported()).then_some(DisableUpgradeStep),
            }),
        }
    }

    /// Fire `signal` on the shutdown event instead of the layer's own.
    pub fn with_shutdown_signal(mut self, signal: ShutdownSignal) -> Self {
        Arc::make_mut(&mut self.step).shutdown = ShutdownStep { signal };
        self
    }

    /// Apply forwarded headers as `options` say instead of ANCM's For + Proto from loopback.
    pub fn with_forwarded_headers(mut self, options: ForwardedHeadersOptions) -> Self {
        Arc::make_mut(&mut self.step).forwarded = Arc::new(ForwardedStep::new(options));
        self
    }

    /// Remove `MS-ASPNETCORE-CLIENTCERT` instead of turning it into a
    /// [`ClientCertificate`](crate::ClientCertificate).
    pub fn ignore_client_certificate(mut self) -> Self {
        Arc::make_mut(&mut self.step).client_cert = ClientCertStep::Ignore;
        self
    }

    /// The signal the shutdown event fires; pass it to
    /// [`graceful_shutdown`](crate::graceful_shutdown).
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.step.shutdown.signal.clone()
    }
}

impl<S> IisIntegration<S> {
    /// Wrap `inner` in the integration [`IisIntegrationLayer::new`] makes for `config`.
    pub fn new(inner: S, config: &IisConfig) -> Self {
        IisIntegrationLayer::new(config).layer(inner)
    }
}

step_middleware!(IisIntegrationLayer, IisIntegration);

impl Step for IisSteps {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        // Each step either rewrites the request or answers it; the first answer wins.
        self.path_base.apply(req)?;
        self.forwarded.apply(req)?;
        self.token.apply(req)?;
        self.trace.apply(req)?;
        self.shutdown.apply(req)?;
        self.client_cert.apply(req)?;
        self.windows_identity.apply(req)?;
        self.disable_upgrade.apply(req)?;
        ControlFlow::Continue(())
    }
}
