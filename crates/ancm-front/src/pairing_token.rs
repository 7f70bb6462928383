//! Sets `MS-ASPNETCORE-TOKEN` to the pairing token of the backend the request goes to
//! (protocol §1.3 step 3).
//!
//! ```
//! use ancm_front::backend::BackendTarget;
//! use ancm_front::pairing_token::SetPairingTokenLayer;
//! use ancm_protocol::{PairingToken, headers};
//! use http::Request;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let token = PairingToken::generate();
//! let expected = token.clone();
//! let app = service_fn(move |req: Request<()>| {
//!     let ok = req.headers().get(headers::TOKEN).is_some_and(|v| expected.matches(v.as_bytes()));
//!     async move { Ok::<_, std::convert::Infallible>(ok) }
//! });
//! // The default source reads the `BackendTarget` extension the backend selector inserted.
//! let svc = SetPairingTokenLayer::from_backend_target().layer(app);
//! let mut req = Request::builder().header("MS-ASPNETCORE-TOKEN", "forged").body(()).unwrap();
//! req.extensions_mut().insert(BackendTarget::new("127.0.0.1:5000".parse().unwrap(), Some(token)));
//! assert!(svc.oneshot(req).await.unwrap());
//! # });
//! ```
//!
//! The header value is marked sensitive ([`PairingToken::header_value`]) and the token is
//! never logged. When the source has no token for a request the header is removed, so a
//! client-sent one never reaches the backend.
use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

use ancm_protocol::PairingToken;
use ancm_protocol::headers::TOKEN;
use http::{Extensions, HeaderMap, HeaderValue, Request};

use crate::backend::BackendTarget;
use crate::step::{Step, inner_service_accessors, step_middleware};

/// Where the pairing token of a request comes from.
///
/// A supervisor with several backend processes gives each request the token of its own
/// backend, normally through the [`BackendTarget`] extension ([`FromBackendTarget`]).
pub trait TokenSource {
    /// The token for the request with these extensions, or `None` to send no token.
    fn token<'a>(&'a self, extensions: &'a Extensions) -> Option<&'a PairingToken>;
}

/// Reads the token of the [`BackendTarget`] request extension (the default). No extension,
/// or a target without a token, sends no token.
#[derive(Clone, Copy, Debug, Default)]
pub struct FromBackendTarget;

impl TokenSource for FromBackendTarget {
    fn token<'a>(&'a self, extensions: &'a Extensions) -> Option<&'a PairingToken> {
        extensions
            .get::<BackendTarget>()
            .and_then(|t| t.token.as_ref())
    }
}

/// One fixed token for every request.
impl TokenSource for PairingToken {
    fn token<'a>(&'a self, _: &'a Extensions) -> Option<&'a PairingToken> {
        Some(self)
    }
}

/// `None` never sends a token.
impl<T: TokenSource> TokenSource for Option<T> {
    fn token<'a>(&'a self, extensions: &'a Extensions) -> Option<&'a PairingToken> {
        self.as_ref().and_then(|s| s.token(extensions))
    }
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn token<'a>(&'a self, extensions: &'a Extensions) -> Option<&'a PairingToken> {
        (**self).token(extensions)
    }
}

/// The token sources [`AncmConfig`](crate::AncmConfig) can hold: the common two without a
/// type parameter, and any other behind an `Arc`.
#[derive(Clone, Default)]
pub enum TokenFrom {
    /// [`FromBackendTarget`] (the default).
    #[default]
    BackendTarget,
    /// One fixed token for every request.
    Fixed(PairingToken),
    /// Any other source.
    Source(Arc<dyn TokenSource + Send + Sync>),
}

impl TokenSource for TokenFrom {
    fn token<'a>(&'a self, extensions: &'a Extensions) -> Option<&'a PairingToken> {
        match self {
            TokenFrom::BackendTarget => FromBackendTarget.token(extensions),
            TokenFrom::Fixed(token) => Some(token),
            TokenFrom::Source(source) => source.token(extensions),
        }
    }
}

impl fmt::Debug for TokenFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenFrom::BackendTarget => f.write_str("BackendTarget"),
            // PairingToken's Debug redacts the value.
            TokenFrom::Fixed(token) => f.debug_tuple("Fixed").field(token).finish(),
            TokenFrom::Source(_) => f.write_str("Source(..)"),
        }
    }
}

/// The (sensitive) header value to send, if any.
pub(crate) fn header_value<T: TokenSource + ?Sized>(
    source: &T,
    extensions: &Extensions,
) -> Option<HeaderValue> {
    source.token(extensions).map(|t| t.header_value().clone())
}

/// Set (replace) or remove the token header.
pub(crate) fn apply(headers: &mut HeaderMap, value: Option<HeaderValue>) {
    match value {
        Some(value) => {
            headers.insert(TOKEN, value);
        }
        None => {
            headers.remove(TOKEN);
        }
    }
}

/// Layer that sets `MS-ASPNETCORE-TOKEN` from a [`TokenSource`].
#[derive(Clone, Debug)]
pub struct SetPairingTokenLayer<T = FromBackendTarget> {
    source: T,
}

impl SetPairingTokenLayer<FromBackendTarget> {
    /// The token of the request's [`BackendTarget`] (the default).
    pub fn from_backend_target() -> Self {
        Self {
            source: FromBackendTarget,
        }
    }
}

impl Default for SetPairingTokenLayer<FromBackendTarget> {
    fn default() -> Self {
        Self::from_backend_target()
    }
}

impl SetPairingTokenLayer<PairingToken> {
    /// One fixed token for every request (a gateway in front of one backend).
    pub fn fixed(token: PairingToken) -> Self {
        Self { source: token }
    }
}

impl<T: TokenSource> SetPairingTokenLayer<T> {
    /// Tokens from any [`TokenSource`].
    pub fn with_source(source: T) -> Self {
        Self { source }
    }
}

/// Service of [`SetPairingTokenLayer`].
#[derive(Clone, Debug)]
pub struct SetPairingToken<S, T = FromBackendTarget> {
    inner: S,
    layer: SetPairingTokenLayer<T>,
}

impl<S, T: TokenSource> SetPairingToken<S, T> {
    /// Wrap `inner`, with tokens from `source`.
    pub fn new(inner: S, source: T) -> Self {
        Self {
            inner,
            layer: SetPairingTokenLayer::with_source(source),
        }
    }
}

impl<S, T> SetPairingToken<S, T> {
    inner_service_accessors!();
}

step_middleware!(passing SetPairingTokenLayer<T: TokenSource>, SetPairingToken);

impl<T: TokenSource> Step for SetPairingTokenLayer<T> {
    type Answer = Infallible;

    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Infallible> {
        let value = header_value(&self.source, req.extensions());
        apply(req.headers_mut(), value);
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let t = PairingToken::new("abc").unwrap();
        let mut ext = Extensions::new();
        assert!(FromBackendTarget.token(&ext).is_none());
        ext.insert(BackendTarget::new(
            "127.0.0.1:1".parse().unwrap(),
            Some(t.clone()),
        ));
        assert_eq!(FromBackendTarget.token(&ext), Some(&t));
        let other = PairingToken::new("xyz").unwrap();
        assert_eq!(other.token(&ext), Some(&other));
        assert_eq!(None::<PairingToken>.token(&ext), None);
        assert_eq!(TokenFrom::default().token(&ext), Some(&t));
        let dynamic = TokenFrom::Source(Arc::new(other.clone()));
        assert_eq!(dynamic.token(&ext), Some(&other));
        assert!(!format!("{:?}", TokenFrom::Fixed(t)).contains("abc"));
    }

    #[test]
    fn replaces_or_removes() {
        let t = PairingToken::new("abc").unwrap();
        let mut h = HeaderMap::new();
        h.append(TOKEN, "forged".parse().unwrap());
        h.append(TOKEN, "forged2".parse().unwrap());
        apply(&mut h, header_value(&t, &Extensions::new()));
        assert_eq!(h.get_all(TOKEN).iter().collect::<Vec<_>>(), ["abc"]);
        assert!(h[TOKEN].is_sensitive());
        apply(&mut h, None);
        assert!(h.get(TOKEN).is_none());
    }
}
