//! Forwards an authenticated Windows identity as `MS-ASPNETCORE-WINAUTHTOKEN` (protocol §1.3
//! step 4).
//!
//! ```
//! use ancm_front::win_auth_token::{ForwardWindowsTokenLayer, WindowsIdentity};
//! use ancm_front::Body;
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|req: Request<()>| async move {
//!     let mut resp = Response::new(Body::empty());
//!     if let Some(v) = req.headers().get("ms-aspnetcore-winauthtoken") {
//!         resp.headers_mut().insert("seen", v.clone());
//!     }
//!     Ok::<_, std::convert::Infallible>(resp)
//! });
//! let svc = ForwardWindowsTokenLayer::forwarding().layer(app);
//! let mut req = Request::new(());
//! // Put there by an authentication layer upstream.
//! req.extensions_mut().insert(WindowsIdentity::new("Negotiate", 0x2a4));
//! let resp = svc.oneshot(req).await.unwrap();
//! // Off Windows the value is forwarded as is; on Windows this request has no backend
//! // process to duplicate into, so it fails with 502.3.
//! # #[cfg(not(windows))]
//! assert_eq!(resp.headers()["seen"], "2a4");
//! # #[cfg(windows)]
//! # assert_eq!(resp.status(), 502);
//! # });
//! ```
//!
//! An authentication layer upstream inserts a [`WindowsIdentity`]. The header is sent only
//! when forwarding is on ([`ForwardWindowsTokenLayer::forwarding`], web.config
//! `forwardWindowsAuthToken`) and the identity's scheme is `Negotiate` or `NTLM` (any case);
//! otherwise it is removed, so a client-sent one never reaches the backend.
//!
//! # On Windows
//!
//! The identity's token handle belongs to this process. The layer duplicates it into the
//! backend process (`DuplicateHandle` with `DUPLICATE_SAME_ACCESS`, target =
//! [`BackendProcess::handle`](crate::backend::BackendProcess) of the request's
//! [`BackendTarget`]) and sends the new handle value in lowercase hex; the backend closes it.
//! If that fails, or the request has no [`BackendTarget`] with a process handle, the request
//! is answered with `502.3` ([`ErrorPage::forwarding_failure`]) and does not reach the inner
//! service. (ANCM sends `0` when it knows no process; ancm-rs fails closed instead.)
//!
//! # Elsewhere
//!
//! There are no Windows token handles, so nothing is duplicated: the layer sends
//! [`WindowsIdentity::token`] unchanged, for an upstream that already made it valid in the
//! backend.
//!
//! # Response body
//!
//! The `502.3` page is an [`ancm_front::Body`](crate::Body), so the inner service's
//! response body must implement `From<Body>` (`Body` itself does).
use std::ops::ControlFlow;

use ancm_protocol::headers::WIN_AUTH_TOKEN;
use ancm_protocol::win_token;
use http::{Extensions, HeaderMap, Request, Response};

use crate::Body;
use crate::backend::BackendTarget;
use crate::error_page::ErrorPage;
use crate::step::{Step, inner_service_accessors, step_middleware, with_extensions};

/// A Windows identity an authentication layer established for the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowsIdentity {
    /// The authentication scheme, e.g. `Negotiate`, `NTLM`, `Basic`.
    pub scheme: String,
    /// The raw value of the user's token handle in this process (on Windows, a `HANDLE`
    /// owned by the authentication layer; this layer never closes it).
    pub token: u64,
    /// The user name, if known (not forwarded; for logging and the app's own use).
    pub user: Option<String>,
}

impl WindowsIdentity {
    /// An identity authenticated with `scheme`, whose token handle is `token`.
    pub fn new(scheme: impl Into<String>, token: u64) -> Self {
        Self {
            scheme: scheme.into(),
            token,
            user: None,
        }
    }

    /// With the user name.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Whether ANCM forwards the token of this scheme: `Negotiate` or `NTLM`, any case.
    pub fn forwards_token(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("negotiate") || self.scheme.eq_ignore_ascii_case("ntlm")
    }
}

/// Why the token could not be given to the backend.
#[derive(Debug, thiserror::Error)]
pub enum WinTokenError {
    /// The request has no [`BackendTarget`] with a process handle to duplicate into.
    #[error("no backend process handle to duplicate the Windows token into")]
    NoBackendProcess,
    /// `DuplicateHandle` failed.
    #[error("DuplicateHandle into the backend process failed: {0}")]
    Duplicate(#[source] std::io::Error),
}

/// Set or remove the header; an error means the request must fail with 502.3.
pub(crate) fn apply(
    headers: &mut HeaderMap,
    extensions: &Extensions,
    forward: bool,
) -> Result<(), WinTokenError> {
    headers.remove(WIN_AUTH_TOKEN);
    set(headers, extensions, forward)
}

/// [`apply`] for maps already without the header.
pub(crate) fn set(
    headers: &mut HeaderMap,
    extensions: &Extensions,
    forward: bool,
) -> Result<(), WinTokenError> {
    if !forward {
        return Ok(());
    }
    let Some(identity) = extensions.get::<WindowsIdentity>() else {
        return Ok(());
    };
    if !identity.forwards_token() {
        return Ok(());
    }
    let value = token_for_backend(identity.token, extensions.get::<BackendTarget>())?;
    headers.insert(WIN_AUTH_TOKEN, win_token::encode(value));
    Ok(())
}

#[cfg(not(windows))]
fn token_for_backend(token: u64, _target: Option<&BackendTarget>) -> Result<u64, WinTokenError> {
    Ok(token)
}

#[cfg(windows)]
fn token_for_backend(token: u64, target: Option<&BackendTarget>) -> Result<u64, WinTokenError> {
    let process = target
        .and_then(|t| t.process.as_deref())
        .and_then(|p| p.handle.as_ref())
        .ok_or(WinTokenError::NoBackendProcess)?;
    ffi::duplicate_into(token, process).map_err(WinTokenError::Duplicate)
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod ffi {
    use std::os::windows::io::{AsRawHandle, OwnedHandle};

    use windows_sys::Win32::Foundation::{DUPLICATE_SAME_ACCESS, DuplicateHandle, HANDLE};
    use windows_sys::Win32::System::Threading::GetCurrentProcess;

    /// Duplicate the handle `token` of this process into `process`, same access rights.
    pub(super) fn duplicate_into(token: u64, process: &OwnedHandle) -> std::io::Result<u64> {
        let source = usize::try_from(token).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "handle value out of range",
            )
        })?;
        let mut duplicated: HANDLE = std::ptr::null_mut();
        // SAFETY: all handles are passed by value and only used by the kernel, which
        // validates them; `duplicated` is a valid out pointer for the duration of the call.
        // `process` stays open (borrowed) for the call.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                source as HANDLE,
                process.as_raw_handle() as HANDLE,
                &mut duplicated,
                0,
                0,
                DUPLICATE_SAME_ACCESS,
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The value is only meaningful inside the backend process, which closes it.
        Ok(duplicated as usize as u64)
    }
}

/// Layer that forwards the Windows token of Negotiate/NTLM identities.
#[derive(Clone, Copy, Debug)]
pub struct ForwardWindowsTokenLayer {
    forward: bool,
}

impl ForwardWindowsTokenLayer {
    /// Forward the token (`forwardWindowsAuthToken="true"`, the web.config default).
    pub fn forwarding() -> Self {
        Self { forward: true }
    }

    /// Never forward a token; only remove client-sent headers.
    pub fn disabled() -> Self {
        Self { forward: false }
    }
}

/// Service of [`ForwardWindowsTokenLayer`].
#[derive(Clone, Debug)]
pub struct ForwardWindowsToken<S> {
    inner: S,
    layer: ForwardWindowsTokenLayer,
}

impl<S> ForwardWindowsToken<S> {
    /// Wrap `inner`, forwarding the token (the web.config default; the layer can disable it).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            layer: ForwardWindowsTokenLayer::forwarding(),
        }
    }

    inner_service_accessors!();
}

step_middleware!(answering ForwardWindowsTokenLayer, ForwardWindowsToken);

impl Step for ForwardWindowsTokenLayer {
    type Answer = Response<Body>;

    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Response<Body>> {
        match with_extensions(req, |headers, ext| apply(headers, ext, self.forward)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => ControlFlow::Break(failure_response(&error)),
        }
    }
}

/// Log the failure and build the 502.3 response.
pub(crate) fn failure_response<ResBody: From<Body>>(error: &WinTokenError) -> Response<ResBody> {
    tracing::warn!(%error, "cannot forward the Windows identity; answering 502.3");
    ErrorPage::forwarding_failure()
        .into_response()
        .map(ResBody::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(identity: Option<WindowsIdentity>) -> Extensions {
        let mut e = Extensions::new();
        if let Some(id) = identity {
            e.insert(id);
        }
        e
    }

    #[test]
    fn scheme_decides() {
        for (scheme, forwards) in [
            ("Negotiate", true),
            ("NTLM", true),
            ("ntlm", true),
            ("NEGOTIATE", true),
            ("Basic", false),
            ("Kerberos", false),
            ("", false),
        ] {
            assert_eq!(
                WindowsIdentity::new(scheme, 1).forwards_token(),
                forwards,
                "{scheme}"
            );
        }
    }

    #[test]
    fn absent_unless_forwarding_a_negotiate_or_ntlm_identity() {
        let cases = [
            (None, true),
            (Some(WindowsIdentity::new("Basic", 0x2a4)), true),
            (Some(WindowsIdentity::new("NTLM", 0x2a4)), false),
        ];
        for (identity, forward) in cases {
            let mut h = HeaderMap::new();
            h.insert(WIN_AUTH_TOKEN, "forged".parse().unwrap());
            apply(&mut h, &ext(identity), forward).unwrap();
            assert!(h.get(WIN_AUTH_TOKEN).is_none());
        }
    }

    #[cfg(not(windows))]
    #[test]
    fn off_windows_the_value_is_forwarded_unchanged() {
        let mut h = HeaderMap::new();
        h.insert(WIN_AUTH_TOKEN, "forged".parse().unwrap());
        let id = WindowsIdentity::new("negotiate", 0x2a4).with_user("DOMAIN\\user");
        apply(&mut h, &ext(Some(id)), true).unwrap();
        assert_eq!(h[WIN_AUTH_TOKEN], "2a4");
        assert!(h[WIN_AUTH_TOKEN].is_sensitive());
    }

    #[cfg(windows)]
    #[test]
    fn on_windows_no_backend_process_fails() {
        let mut h = HeaderMap::new();
        let id = WindowsIdentity::new("negotiate", 0x2a4);
        assert!(matches!(
            apply(&mut h, &ext(Some(id)), true),
            Err(WinTokenError::NoBackendProcess)
        ));
    }
}
