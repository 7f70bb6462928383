//! Turn `MS-ASPNETCORE-WINAUTHTOKEN` into a [`WindowsUser`] extension (protocol §4.3 step 6).
//!
//! ```
//! use iis_integration::{ForwardWindowsIdentityLayer, WindowsUser};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(ForwardWindowsIdentityLayer::new())
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let user = req.extensions().get::<WindowsUser>().cloned();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(user))
//!     }));
//! let req = http::Request::get("/")
//!     .header("ms-aspnetcore-winauthtoken", "2a4")
//!     .body(())
//!     .unwrap();
//! let user = svc.oneshot(req).await.unwrap().into_body();
//! # #[cfg(not(windows))]
//! assert_eq!(user.unwrap().raw_handle(), 0x2a4);
//! # });
//! ```
//!
//! The value is a token handle the front duplicated into this process, as hexadecimal
//! (32-bit, no `0x`); anything else is ignored silently.
//!
//! On Windows the token is resolved to the account (`DOMAIN\name`, via `GetTokenInformation`
//! and `LookupAccountSidW`) and SID string, and the handle is always closed, as ANCM's
//! middleware closes it once its identity holds a duplicate. A handle that does not resolve
//! logs a warning and gives no user. The lookup may consult a domain controller, so it can
//! block briefly on a cold cache.
//!
//! Elsewhere the extension carries only the raw handle value, which is meaningless outside
//! the Windows process it was duplicated into; it is exposed so tests and non-Windows
//! gateways can see what the front sent.
//!
//! [`IisIntegrationLayer`](crate::IisIntegrationLayer) applies this step only when
//! `ASPNETCORE_IIS_HTTPAUTH` enables authentication.
use std::ops::ControlFlow;

use http::{Request, StatusCode};
use tower_layer::Layer as _;

use ancm_protocol::headers::WIN_AUTH_TOKEN;
use ancm_protocol::win_token;

use crate::extensions::WindowsUser;
use crate::headers;
use crate::step::{Step, step_middleware};

/// Reads the forwarded Windows identity; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardWindowsIdentityLayer {
    step: WindowsIdentityStep,
}

/// The service of [`ForwardWindowsIdentityLayer`].
#[derive(Clone, Copy, Debug)]
pub struct ForwardWindowsIdentity<S> {
    inner: S,
    step: WindowsIdentityStep,
}

impl ForwardWindowsIdentityLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> ForwardWindowsIdentity<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        ForwardWindowsIdentityLayer::new().layer(inner)
    }
}

step_middleware!(ForwardWindowsIdentityLayer, ForwardWindowsIdentity);

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WindowsIdentityStep;

impl Step for WindowsIdentityStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        // The first line, as `HeaderMap::get`, without hashing the long name.
        let [lines] = headers::find(req.headers(), [&WIN_AUTH_TOKEN]);
        let raw_handle = lines.first.and_then(|v| win_token::decode(v.as_bytes()));
        if let Some(user) = raw_handle.and_then(resolve) {
            req.extensions_mut().insert(user);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(not(windows))]
fn resolve(raw_handle: u32) -> Option<WindowsUser> {
    Some(WindowsUser::from_raw_handle(raw_handle))
}

#[cfg(windows)]
fn resolve(raw_handle: u32) -> Option<WindowsUser> {
    match crate::windows_ffi::resolve_token_user_and_close(raw_handle) {
        Ok((name, sid)) => Some(WindowsUser::new(raw_handle, &name, &sid)),
        Err(error) => {
            tracing::warn!(%error, "the forwarded Windows token does not resolve to a user");
            None
        }
    }
}
