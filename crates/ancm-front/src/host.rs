//! Refuses requests whose `Host` the front cannot forward faithfully, and `CONNECT` (protocol
//! §1.3 step 1, §8.25).
//!
//! ```
//! use ancm_front::Body;
//! use ancm_front::host::ValidateHostLayer;
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let app = service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
//! });
//! let svc = ValidateHostLayer::new().layer(app);
//! let ok = Request::get("/").header("host", "example.com").body(()).unwrap();
//! assert_eq!(svc.clone().oneshot(ok).await.unwrap().status(), StatusCode::OK);
//! // HTTP/1.1 without Host (RFC 9112 §3.2).
//! let no_host = Request::get("/").body(()).unwrap();
//! assert_eq!(svc.clone().oneshot(no_host).await.unwrap().status(), StatusCode::BAD_REQUEST);
//! let connect = Request::connect("example.com:443").header("host", "example.com:443").body(()).unwrap();
//! assert_eq!(svc.oneshot(connect).await.unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
//! # });
//! ```
//!
//! The backend sees the client's `Host` (protocol §1.3 step 1), so the front must know which
//! one that is, and never make one up. Refused with an error page ([`ErrorPage`]):
//!
//! * `CONNECT` → `405`: the front forwards requests to its backend; it is not a tunnel to
//!   wherever the client names. There is no `Allow` header: which methods the application
//!   takes is the backend's business.
//! * more than one `Host` line, or a `Host` that is not `host[:port]` (a reg-name of
//!   `A–Z a–z 0–9 ! $ & ' ( ) - . _ ~` or a bracketed IPv6 address, as
//!   [`is_valid_host`] says) → `400` (RFC 9112 §3.2);
//! * HTTP/1.1 without `Host` → `400` (RFC 9112 §3.2);
//! * HTTP/2: the backend's `Host` is `:authority`; a `Host` header that differs from it
//!   (ignoring ASCII case) → `400` (RFC 9113 §8.3.1), and so does a request with neither, or
//!   an `:authority` that is not `host[:port]` (user info included).
//!
//! HTTP/1.0 allows a request without `Host`. An absolute-form target (`GET http://host/`)
//! names the host, which the forwarder sends; otherwise the front sets `Host` to the local
//! address the client connected to, from the [`ConnectionInfo`] (http.sys names such a
//! request by that address too), and refuses the request (`400`) when it has no
//! [`ConnectionInfo`]. The backend's own address is never used.
//!
//! [`AncmLayer`](crate::AncmLayer) runs this check first, before anything else looks at the
//! request.
use std::net::SocketAddr;
use std::ops::ControlFlow;

use ancm_protocol::forwarded::is_valid_host;
use http::header::HOST;
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};

use crate::Body;
use crate::conn::ConnectionInfo;
use crate::error_page::ErrorPage;
use crate::step::{Step, inner_service_accessors, step_middleware};

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Connect,
    MissingHost,
    SeveralHosts,
    InvalidHost,
    AuthorityMismatch,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Connect => "CONNECT is not forwarded",
            Refusal::MissingHost => "no Host header",
            Refusal::SeveralHosts => "more than one Host header",
            Refusal::InvalidHost => "the Host or :authority is not host[:port]",
            Refusal::AuthorityMismatch => "the Host header differs from :authority",
        }
    }

    /// The error page answering the request; one `debug` event with the reason (never the
    /// values, which are the client's).
    pub(crate) fn response(self) -> Response<Body> {
        tracing::debug!(reason = self.reason(), "request refused");
        match self {
            Refusal::Connect => {
                ErrorPage::new(StatusCode::METHOD_NOT_ALLOWED, 0, "Method Not Allowed")
                    .solutions(&["The gateway does not tunnel: CONNECT is not forwarded."])
                    .into_response()
            }
            _ => ErrorPage::new(StatusCode::BAD_REQUEST, 0, "Bad Request")
                .solutions(&[
                    "Send exactly one valid Host header (HTTP/2: one that matches :authority).",
                ])
                .into_response(),
        }
    }
}

/// Check `req` (see the [module docs](self)); an HTTP/1.0 request without a host gets the
/// local address as its `Host`.
pub(crate) fn check<B>(req: &mut Request<B>) -> Result<(), Refusal> {
    if req.method() == Method::CONNECT {
        return Err(Refusal::Connect);
    }
    let mut lines = req.headers().get_all(HOST).iter();
    let host = match (lines.next(), lines.next()) {
        (_, Some(_)) => return Err(Refusal::SeveralHosts),
        (Some(host), None) => {
            if !host.to_str().is_ok_and(is_valid_host) {
                return Err(Refusal::InvalidHost);
            }
            Some(host)
        }
        (None, None) => None,
    };
    match req.version() {
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11 => {
            if host.is_some() {
                return Ok(());
            }
            if req.version() == Version::HTTP_11 {
                return Err(Refusal::MissingHost);
            }
            if let Some(authority) = req.uri().authority() {
                // Absolute-form: the forwarder sends this host.
                return if is_valid_host(authority.as_str()) {
                    Ok(())
                } else {
                    Err(Refusal::InvalidHost)
                };
            }
            let Some(local) = req
                .extensions()
                .get::<ConnectionInfo>()
                .map(ConnectionInfo::local_addr)
            else {
                return Err(Refusal::MissingHost);
            };
            let local = SocketAddr::new(local.ip().to_canonical(), local.port());
            let value = HeaderValue::try_from(local.to_string())
                .unwrap_or_else(|_| unreachable!("a socket address is a valid header value"));
            req.headers_mut().insert(HOST, value);
            Ok(())
        }
        // HTTP/2 and later: `:authority` is the target's authority.
        _ => match (req.uri().authority(), host) {
            (Some(authority), _) if !is_valid_host(authority.as_str()) => Err(Refusal::InvalidHost),
            (Some(authority), Some(host))
                if !authority
                    .as_str()
                    .as_bytes()
                    .eq_ignore_ascii_case(host.as_bytes()) =>
            {
                Err(Refusal::AuthorityMismatch)
            }
            (None, None) => Err(Refusal::MissingHost),
            _ => Ok(()),
        },
    }
}

/// Layer that refuses requests with a missing, repeated, invalid or conflicting `Host`, and
/// `CONNECT`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidateHostLayer {
    _priv: (),
}

impl ValidateHostLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Service of [`ValidateHostLayer`].
#[derive(Clone, Debug)]
pub struct ValidateHost<S> {
    inner: S,
    layer: ValidateHostLayer,
}

impl<S> ValidateHost<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            layer: ValidateHostLayer::new(),
        }
    }

    inner_service_accessors!();
}

step_middleware!(answering ValidateHostLayer, ValidateHost);

impl Step for ValidateHostLayer {
    type Answer = Response<Body>;

    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<Response<Body>> {
        match check(req) {
            Ok(()) => ControlFlow::Continue(()),
            Err(refusal) => ControlFlow::Break(refusal.response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().method(method).version(version).uri(uri);
        for host in hosts {
            b = b.header(HOST, *host);
        }
        b.body(()).expect("request")
    }

    fn checked(mut req: Request<()>) -> (Result<(), Refusal>, Vec<String>) {
        let result = check(&mut req);
        let hosts = req
            .headers()
            .get_all(HOST)
            .iter()
            .map(|h| h.to_str().expect("ascii").to_owned())
            .collect();
        (result, hosts)
    }

    #[test]
    fn http1_needs_exactly_one_valid_host() {
        use Version as V;
        for (version, hosts, expected) in [
            (V::HTTP_11, &["example.com"][..], Ok(())),
            (V::HTTP_11, &["[::1]:8080"], Ok(())),
            (V::HTTP_11, &["EXAMPLE.com:80"], Ok(())),
            (V::HTTP_11, &[], Err(Refusal::MissingHost)),
            (V::HTTP_11, &["a", "a"], Err(Refusal::SeveralHosts)),
            (V::HTTP_10, &["a", "b"], Err(Refusal::SeveralHosts)),
            (V::HTTP_11, &[""], Err(Refusal::InvalidHost)),
            (V::HTTP_11, &["a b"], Err(Refusal::InvalidHost)),
            (V::HTTP_11, &["user@example.com"], Err(Refusal::InvalidHost)),
            (V::HTTP_11, &["example.com/x"], Err(Refusal::InvalidHost)),
            (V::HTTP_11, &["example.com:x"], Err(Refusal::InvalidHost)),
            (V::HTTP_10, &["example.com"], Ok(())),
        ] {
            let req = request(Method::GET, version, "/", hosts);
            assert_eq!(checked(req).0, expected, "{version:?} {hosts:?}");
        }
        // An absolute-form target does not excuse a missing Host in HTTP/1.1.
        let req = request(Method::GET, V::HTTP_11, "http://example.com/", &[]);
        assert_eq!(checked(req).0, Err(Refusal::MissingHost));
    }

    #[test]
    fn http10_without_host_gets_the_local_address_never_the_backend() {
        let mut req = request(Method::GET, Version::HTTP_10, "/", &[]);
        assert_eq!(checked(req).0, Err(Refusal::MissingHost));
        req = request(Method::GET, Version::HTTP_10, "/", &[]);
        req.extensions_mut().insert(ConnectionInfo::plain(
            "203.0.113.7:51000".parse().expect("addr"),
            "[::ffff:192.0.2.1]:8080".parse().expect("addr"),
        ));
        assert_eq!(checked(req), (Ok(()), vec!["192.0.2.1:8080".to_owned()]));
        req = request(Method::GET, Version::HTTP_10, "/", &[]);
        req.extensions_mut().insert(ConnectionInfo::plain(
            "[2001:db8::7]:51000".parse().expect("addr"),
            "[2001:db8::1]:443".parse().expect("addr"),
        ));
        assert_eq!(checked(req), (Ok(()), vec!["[2001:db8::1]:443".to_owned()]));
        // Absolute-form: the target's host, which the forwarder sends; none added here.
        let req = request(Method::GET, Version::HTTP_10, "http://example.com/", &[]);
        assert_eq!(checked(req), (Ok(()), vec![]));
    }

    #[test]
    fn http2_host_comes_from_authority() {
        let h2 = |uri: &str, hosts: &[&str]| {
            checked(request(Method::GET, Version::HTTP_2, uri, hosts)).0
        };
        assert_eq!(h2("http://example.com/", &[]), Ok(()));
        assert_eq!(h2("http://example.com/", &["EXAMPLE.COM"]), Ok(()));
        assert_eq!(h2("/", &["example.com"]), Ok(()));
        assert_eq!(
            h2("http://example.com/", &["evil.test"]),
            Err(Refusal::AuthorityMismatch)
        );
        assert_eq!(
            h2("http://example.com:8443/", &["example.com"]),
            Err(Refusal::AuthorityMismatch)
        );
        assert_eq!(h2("http://u@example.com/", &[]), Err(Refusal::InvalidHost));
        assert_eq!(h2("/", &[]), Err(Refusal::MissingHost));
        assert_eq!(
            h2("http://example.com/", &["a", "a"]),
            Err(Refusal::SeveralHosts)
        );
    }

    #[test]
    fn connect_is_refused_whatever_else() {
        for version in [Version::HTTP_11, Version::HTTP_2] {
            let req = request(
                Method::CONNECT,
                version,
                "example.com:443",
                &["example.com:443"],
            );
            assert_eq!(checked(req).0, Err(Refusal::Connect));
        }
        let page = Refusal::Connect.response();
        assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(
            Refusal::SeveralHosts.response().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
