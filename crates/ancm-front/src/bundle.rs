//! Every front layer in the one right order, from one configuration.
//!
//! ```
//! use ancm_front::backend::BackendTarget;
//! use ancm_front::conn::ConnectionInfo;
//! use ancm_front::{AddExtensionLayer, AncmConfig, AncmLayer, Body};
//! use ancm_protocol::{AppPath, PairingToken};
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let token = PairingToken::generate();
//! let expected = token.clone();
//! let backend = service_fn(move |req: Request<()>| {
//!     let h = req.headers();
//!     assert!(h.get("x-secret").is_none()); // named in Connection
//!     assert_eq!(h["x-forwarded-for"], "203.0.113.7:51000");
//!     assert_eq!(h["x-forwarded-proto"], "https");
//!     assert!(expected.matches(h["ms-aspnetcore-token"].as_bytes()));
//!     async { Ok::<_, std::convert::Infallible>(Response::new(Body::empty())) }
//! });
//! let config = AncmConfig { app_path: AppPath::parse("/shop").unwrap(), ..AncmConfig::default() };
//! let target = BackendTarget::new("127.0.0.1:5000".parse().unwrap(), Some(token));
//! let info = ConnectionInfo::tls("203.0.113.7:51000".parse().unwrap(), "0.0.0.0:443".parse().unwrap(), None);
//! // Outermost first: connection facts (from the accept loop), the backend choice, the bundle.
//! let svc = AddExtensionLayer::mock(info)
//!     .layer(AddExtensionLayer::new(target)
//!     .layer(AncmLayer::new(config).layer(backend)));
//! let req = Request::get("/shop/cart")
//!     .header("host", "www.example.com")
//!     .header("connection", "x-secret, ms-aspnetcore-token")
//!     .header("x-secret", "1")
//!     .header("MS-ASPNETCORE-TOKEN", "forged")
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), 200);
//! let outside = Request::get("/other").header("host", "www.example.com").body(()).unwrap();
//! assert_eq!(svc.clone().oneshot(outside).await.unwrap().status(), 404);
//! // HTTP/1.1 without Host: refused before anything else (protocol §8.25).
//! let no_host = Request::get("/shop/cart").body(()).unwrap();
//! assert_eq!(svc.oneshot(no_host).await.unwrap().status(), 400);
//! # });
//! ```
//!
//! Over 500 lines with its unit tests, which check the order and each layer's part through
//! the one service; the code itself is under 300.
//!
//! [`AncmLayer`] applies, in this order (protocol §1.3, §8.2):
//!
//! 1. the [`Host` check](crate::host): a missing, repeated, invalid or (HTTP/2) conflicting
//!    `Host` answers `400`, `CONNECT` `405` (protocol §8.25);
//! 2. [hop-by-hop](crate::hop_by_hop) removal, so a client cannot name an added header in
//!    `Connection` to delete it (responses are cleaned on the way back, and lose their
//!    `MS-ASPNETCORE*` headers too, protocol §8.26);
//! 3. [`MS-ASPNETCORE*` removal](crate::module_headers);
//! 4. the [application path](crate::app_path): requests outside it get `404` or go to the
//!    fallback ([`AncmLayer::with_fallback`]);
//! 5. the [pairing token](crate::pairing_token);
//! 6. [`X-Forwarded-For`](crate::forwarded_for);
//! 7. [`X-Forwarded-Proto`](crate::forwarded_proto);
//! 8. the [client certificate](crate::client_cert);
//! 9. the [Windows token](crate::win_auth_token) (a failure answers `502.3`).
//!
//! It is one service, not nine nested ones: one pass over the header names decides which
//! removals are needed, one extension lookup per kind, no boxing, and the configuration is
//! shared behind an `Arc`.
//!
//! # What it needs on the request
//!
//! * a [`ConnectionInfo`] extension, from the accept loop
//!   ([`AddExtensionLayer`](crate::AddExtensionLayer), see [`conn`](crate::conn)); without
//!   one the `X-Forwarded-*` headers are left as they came and no client certificate is sent;
//! * a [`BackendTarget`](crate::BackendTarget) extension for the default token source and
//!   for Windows token duplication, from the backend selector (or an
//!   [`AddExtensionLayer`](crate::AddExtensionLayer) for one fixed upstream), layered outside
//!   this one;
//! * a [`WindowsIdentity`](crate::win_auth_token::WindowsIdentity) from an authentication
//!   layer, to forward a Windows token.
//!
//! # Response body
//!
//! The inner service's response body must implement `From<`[`Body`]`>` (for the `400`, `405`
//! and `502.3` pages) and `Default` (for the `404`). [`Body`] does both, as does the
//! forwarder's response.
use std::sync::Arc;
use std::task::{Context, Poll};

use ancm_protocol::AppPath;
use ancm_protocol::headers::TOKEN;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::Body;
use crate::app_path::{AppPathCheck, Fallback, NotFound, Unmatched};
use crate::conn::ConnectionInfo;
use crate::forwarded_for::ForwardedMode;
use crate::future::ResponseFuture;
use crate::hop_by_hop::Found;
use crate::pairing_token::TokenFrom;
use crate::step::{inner_service_accessors, with_extensions};
use crate::{
    client_cert, forwarded_for, forwarded_proto, hop_by_hop, host, module_headers, pairing_token,
    win_auth_token,
};

/// What the front does to each request; the defaults are ANCM's.
#[derive(Clone, Debug)]
pub struct AncmConfig {
    /// The application's virtual path; requests outside it get `404` (default `/`: all).
    pub app_path: AppPath,
    /// Where the pairing token comes from (default: the request's
    /// [`BackendTarget`](crate::BackendTarget)).
    pub token: TokenFrom,
    /// `X-Forwarded-For`: append (ANCM, default), override, or keep what trusted proxies
    /// sent.
    pub forwarded_for: ForwardedMode,
    /// Whether the `X-Forwarded-For` item has the client port (ANCM: yes, default).
    pub include_port: bool,
    /// `X-Forwarded-Proto`: append (ANCM, default), override, or keep what trusted proxies
    /// sent.
    pub forwarded_proto: ForwardedMode,
    /// web.config `forwardWindowsAuthToken` (default `true`).
    pub forward_windows_auth_token: bool,
    /// Also send `X-Forwarded-Prefix` with the application path (default `false`; ANCM does
    /// not).
    pub send_prefix: bool,
    /// Whether WebSocket upgrades are passed (IIS: the WebSocket module is installed;
    /// default `true`).
    pub websockets: bool,
}

impl Default for AncmConfig {
    fn default() -> Self {
        Self {
            app_path: AppPath::root(),
            token: TokenFrom::BackendTarget,
            forwarded_for: ForwardedMode::Appending,
            include_port: true,
            forwarded_proto: ForwardedMode::Appending,
            forward_windows_auth_token: true,
            send_prefix: false,
            websockets: true,
        }
    }
}

/// The configuration as the service uses it.
#[derive(Debug)]
struct Prepared {
    app_path: AppPathCheck,
    token: TokenFrom,
    forwarded_for: ForwardedMode,
    include_port: bool,
    forwarded_proto: ForwardedMode,
    forward_windows_auth_token: bool,
    websockets: bool,
}

impl From<AncmConfig> for Prepared {
    fn from(c: AncmConfig) -> Self {
        let mut app_path = AppPathCheck::new(c.app_path);
        if c.send_prefix {
            app_path.send_prefix();
        }
        Self {
            app_path,
            token: c.token,
            forwarded_for: c.forwarded_for,
            include_port: c.include_port,
            forwarded_proto: c.forwarded_proto,
            forward_windows_auth_token: c.forward_windows_auth_token,
            websockets: c.websockets,
        }
    }
}

/// Layer applying every front layer in order (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct AncmLayer<F = NotFound> {
    config: Arc<Prepared>,
    unmatched: F,
}

impl AncmLayer<NotFound> {
    /// The bundle for `config`; requests outside the application path get `404`.
    pub fn new(config: AncmConfig) -> Self {
        Self {
            config: Arc::new(config.into()),
            unmatched: NotFound::default(),
        }
    }
}

impl Default for AncmLayer<NotFound> {
    fn default() -> Self {
        Self::new(AncmConfig::default())
    }
}

impl<F> AncmLayer<F> {
    /// Send requests outside the application path to `fallback` (after the hop-by-hop and
    /// `MS-ASPNETCORE*` headers were removed) instead of answering `404`.
    pub fn with_fallback<G>(self, fallback: G) -> AncmLayer<Fallback<G>> {
        AncmLayer {
            config: self.config,
            unmatched: Fallback::new(fallback),
        }
    }

    /// The application path.
    pub fn app_path(&self) -> &AppPath {
        self.config.app_path.app_path()
    }
}

impl<S, F: Clone> Layer<S> for AncmLayer<F> {
    type Service = Ancm<S, F>;
    fn layer(&self, inner: S) -> Self::Service {
        Ancm {
            inner,
            config: Arc::clone(&self.config),
            unmatched: self.unmatched.clone(),
        }
    }
}

/// Service of [`AncmLayer`].
#[derive(Clone, Debug)]
pub struct Ancm<S, F = NotFound> {
    inner: S,
    config: Arc<Prepared>,
    unmatched: F,
}

impl<S> Ancm<S, NotFound> {
    /// Wrap `inner` with every front layer for `config`; requests outside the application
    /// path get `404`.
    pub fn new(inner: S, config: AncmConfig) -> Self {
        Self {
            inner,
            config: Arc::new(config.into()),
            unmatched: NotFound::default(),
        }
    }
}

impl<S, F> Ancm<S, F> {
    inner_service_accessors!();
}

impl<S, F, B, ResBody> Service<Request<B>> for Ancm<S, F>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    F: Unmatched<B, ResBody, S::Error>,
    ResBody: From<Body>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, F::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let c = &*self.config;
        if let Err(refusal) = host::check(&mut req) {
            return ResponseFuture::ready(refusal.response().map(ResBody::from));
        }
        let headers = req.headers_mut();
        // One pass over the names decides which removals are needed at all.
        let found = Found::scan(headers);
        hop_by_hop::strip_request_found(headers, c.websockets, found);
        if found.module_headers() {
            module_headers::strip_present(headers);
        }
        // From here on no `MS-ASPNETCORE*` header is left: the steps below only add.
        if !c.app_path.admit(&mut req) {
            return ResponseFuture::unmatched(self.unmatched.respond(req)).strip_hop_by_hop();
        }
        let injected = with_extensions(&mut req, |h, ext| {
            if let Some(token) = pairing_token::header_value(&c.token, ext) {
                h.insert(TOKEN, token);
            }
            let info = ext.get::<ConnectionInfo>();
            forwarded_for::apply(h, info, c.forwarded_for, c.include_port);
            forwarded_proto::apply(h, info, c.forwarded_proto);
            client_cert::set(h, info);
            win_auth_token::set(h, ext, c.forward_windows_auth_token)
        });
        match injected {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)).strip_hop_by_hop(),
            Err(error) => ResponseFuture::ready(win_auth_token::failure_response(&error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use ancm_protocol::PairingToken;
    use futures_util::FutureExt as _;
    use http::{HeaderMap, StatusCode};
    use tower::{ServiceExt as _, service_fn};

    use super::*;
    use crate::backend::BackendTarget;
    use crate::win_auth_token::WindowsIdentity;

    /// A backend that answers with the request's headers as `seen-*` response headers (plus
    /// a hop-by-hop one of its own).
    fn echo() -> impl Service<
        Request<()>,
        Response = Response<Body>,
        Error = Infallible,
        Future = std::future::Ready<Result<Response<Body>, Infallible>>,
    > + Clone {
        service_fn(|req: Request<()>| {
            let mut resp = Response::new(Body::empty());
            // Under other names, so the response's own hop-by-hop cleaning does not hide what
            // the backend saw.
            for (name, value) in req.headers() {
                let seen =
                    http::HeaderName::from_bytes(format!("seen-{name}").as_bytes()).expect("name");
                resp.headers_mut().append(seen, value.clone());
            }
            resp.headers_mut()
                .insert("x-path", req.uri().path().parse().expect("path"));
            resp.headers_mut()
                .insert("keep-alive", "timeout=1".parse().expect("value"));
            std::future::ready(Ok(resp))
        })
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get(path);
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            b = b.header("host", "example.test");
        }
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let mut req = b.body(()).expect("request");
        req.extensions_mut().insert(ConnectionInfo::plain(
            "203.0.113.7:51000".parse().expect("addr"),
            "0.0.0.0:80".parse().expect("addr"),
        ));
        req.extensions_mut().insert(BackendTarget::new(
            "127.0.0.1:5000".parse().expect("addr"),
            Some(PairingToken::new("the-token").expect("token")),
        ));
        req
    }

    fn call<S>(svc: S, req: Request<()>) -> Response<Body>
    where
        S: Service<Request<()>, Response = Response<Body>, Error = Infallible>,
    {
        match svc.oneshot(req).now_or_never() {
            Some(Ok(resp)) => resp,
            Some(Err(e)) => match e {},
            None => panic!("the test services are always ready"),
        }
    }

    fn seen(resp: &Response<Body>) -> &HeaderMap {
        resp.headers()
    }

    #[test]
    fn injected_headers_survive_connection_nomination() {
        let svc = AncmLayer::default().layer(echo());
        let resp = call(
            svc,
            request(
                "/",
                &[
                    (
                        "connection",
                        "ms-aspnetcore-token, x-forwarded-for, x-forwarded-proto, \
                         ms-aspnetcore-clientcert, ms-aspnetcore-winauthtoken",
                    ),
                    ("x-forwarded-for", "198.51.100.1"),
                ],
            ),
        );
        let h = seen(&resp);
        assert_eq!(h["seen-ms-aspnetcore-token"], "the-token");
        assert_eq!(h["seen-x-forwarded-for"], "203.0.113.7:51000");
        assert_eq!(h["seen-x-forwarded-proto"], "http");
        assert!(h.get("seen-connection").is_none());
        // The response's own hop-by-hop header was removed on the way back.
        assert!(h.get("keep-alive").is_none());
    }

    #[test]
    fn forged_module_headers_are_replaced_or_removed() {
        let mut req = request(
            "/",
            &[
                ("ms-aspnetcore-token", "forged"),
                ("ms-aspnetcore-event", "shutdown"),
                ("ms-aspnetcore-clientcert", "MAMCAQU="),
                ("ms-aspnetcore-winauthtoken", "1"),
            ],
        );
        req.extensions_mut()
            .insert(WindowsIdentity::new("Basic", 7));
        let resp = call(AncmLayer::default().layer(echo()), req);
        let h = seen(&resp);
        let module: Vec<_> = h
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("seen-ms-aspnetcore"))
            .map(|(n, v)| (n.as_str(), v.to_str().expect("ascii")))
            .collect();
        assert_eq!(module, [("seen-ms-aspnetcore-token", "the-token")]);
    }

    #[test]
    fn app_path_404_and_fallback() {
        let config = AncmConfig {
            app_path: AppPath::parse("/app").expect("path"),
            ..AncmConfig::default()
        };
        let resp = call(
            AncmLayer::new(config.clone()).layer(echo()),
            request("/other", &[]),
        );
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers().is_empty());

        let fallback = service_fn(|req: Request<()>| {
            // The fallback sees the request after hop-by-hop and module headers are gone.
            assert!(req.headers().get("ms-aspnetcore-token").is_none());
            assert!(req.headers().get("x-secret").is_none());
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::IM_A_TEAPOT;
            resp.headers_mut()
                .insert("connection", "close".parse().expect("value"));
            std::future::ready(Ok::<_, Infallible>(resp))
        });
        let svc = AncmLayer::new(config).with_fallback(fallback).layer(echo());
        let resp = call(
            svc.clone(),
            request(
                "/other",
                &[
                    ("ms-aspnetcore-token", "forged"),
                    ("connection", "x-secret"),
                    ("x-secret", "1"),
                ],
            ),
        );
        assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
        assert!(resp.headers().get("connection").is_none());
        let resp = call(svc, request("/APP/x", &[]));
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-path"], "/APP/x");
    }

    #[test]
    fn without_connection_info_forwarded_headers_are_left_alone() {
        let mut req = request("/", &[("x-forwarded-for", "198.51.100.1")]);
        req.extensions_mut().remove::<ConnectionInfo>();
        let resp = call(AncmLayer::default().layer(echo()), req);
        assert_eq!(resp.headers()["seen-x-forwarded-for"], "198.51.100.1");
        assert!(resp.headers().get("seen-x-forwarded-proto").is_none());
        assert_eq!(resp.headers()["seen-ms-aspnetcore-token"], "the-token");
    }

    #[cfg(not(windows))]
    #[test]
    fn windows_token_forwarding_follows_the_config() {
        let identity = WindowsIdentity::new("NTLM", 0x1f4).with_user("CONTOSO\\alice");
        let mut req = request("/", &[]);
        req.extensions_mut().insert(identity.clone());
        let resp = call(AncmLayer::default().layer(echo()), req);
        assert_eq!(resp.headers()["seen-ms-aspnetcore-winauthtoken"], "1f4");

        let config = AncmConfig {
            forward_windows_auth_token: false,
            ..AncmConfig::default()
        };
        let mut req = request("/", &[]);
        req.extensions_mut().insert(identity);
        let resp = call(AncmLayer::new(config).layer(echo()), req);
        assert!(
            resp.headers()
                .get("seen-ms-aspnetcore-winauthtoken")
                .is_none()
        );
    }

    #[cfg(windows)]
    #[test]
    fn windows_token_without_backend_process_is_502_3() {
        let mut req = request("/", &[]);
        req.extensions_mut()
            .insert(WindowsIdentity::new("Negotiate", 4));
        let resp = call(AncmLayer::default().layer(echo()), req);
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    }

    proptest::proptest! {
        /// Whatever the client sends, the backend sees exactly one token (ours), one
        /// `X-Forwarded-For` line ending with the client, no hop-by-hop header and no header
        /// the client named in `Connection` unless the front injected it.
        #[test]
        fn invariants_hold_for_any_client_headers(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "x-forwarded-for", "x-forwarded-proto",
                        "ms-aspnetcore-token", "MS-ASPNETCORE-EVENT", "ms-aspnetcorex",
                        "ms-aspnetcore-clientcert", "x-a", "x-b", "host",
                    ]),
                    proptest::sample::select(vec![
                        "x-a", "X-B, keep-alive", "ms-aspnetcore-token", "close",
                        "x-forwarded-for, upgrade", "1.2.3.4", "websocket", "trailers", "",
                    ]),
                ),
                0..12,
            ),
        ) {
            let pairs: Vec<(&str, &str)> = lines.iter().map(|(n, v)| (*n, *v)).collect();
            let nominated: Vec<String> = pairs
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .flat_map(|(_, v)| v.split(','))
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect();
            let config = AncmConfig { websockets: false, ..AncmConfig::default() };
            let resp = call(AncmLayer::new(config).layer(echo()), request("/", &pairs));
            // A missing `Host` gets a valid one from `request`; several or an invalid one are
            // refused before anything else.
            let hosts: Vec<&str> = pairs
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| *v)
                .collect();
            if hosts.len() > 1 || hosts.iter().any(|h| !ancm_protocol::forwarded::is_valid_host(h)) {
                proptest::prop_assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
                return Ok(());
            }
            let h = resp.headers();
            let token: Vec<_> = h.get_all("seen-ms-aspnetcore-token").iter().collect();
            proptest::prop_assert_eq!(token, ["the-token"]);
            let xff: Vec<_> = h.get_all("seen-x-forwarded-for").iter().collect();
            proptest::prop_assert_eq!(xff.len(), 1);
            proptest::prop_assert!(xff[0].as_bytes().ends_with(b"203.0.113.7:51000"));
            for (name, value) in h {
                let Some(seen) = name.as_str().strip_prefix("seen-") else { continue };
                proptest::prop_assert!(
                    !seen.starts_with("ms-aspnetcore") || seen == "ms-aspnetcore-token",
                    "{seen}"
                );
                proptest::prop_assert!(
                    !["connection", "keep-alive", "proxy-connection", "transfer-encoding",
                      "upgrade"].contains(&seen),
                    "{seen}"
                );
                if seen == "te" {
                    proptest::prop_assert_eq!(value, "trailers");
                }
                let injected = ["ms-aspnetcore-token", "x-forwarded-for", "x-forwarded-proto"];
                proptest::prop_assert!(
                    !nominated.iter().any(|t| t == seen) || injected.contains(&seen)
                        || seen == "host" || seen == "te",
                    "{seen} was named in Connection"
                );
            }
        }
    }

    #[test]
    fn host_problems_and_connect_are_answered_before_anything_else() {
        let no_host = {
            let mut req = request("/", &[]);
            req.headers_mut().remove("host");
            req
        };
        let two_hosts = request("/", &[("host", "a.test"), ("host", "b.test")]);
        let mut connect = request("/", &[]);
        *connect.method_mut() = http::Method::CONNECT;
        for (req, status) in [
            (no_host, StatusCode::BAD_REQUEST),
            (two_hosts, StatusCode::BAD_REQUEST),
            (connect, StatusCode::METHOD_NOT_ALLOWED),
        ] {
            let resp = call(AncmLayer::default().layer(echo()), req);
            assert_eq!(resp.status(), status);
            // The backend was not called: none of what it echoes is there.
            assert!(resp.headers().get("seen-ms-aspnetcore-token").is_none());
            assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        }
    }

    #[test]
    fn module_headers_of_the_response_never_reach_the_client() {
        let leaky = service_fn(|_req: Request<()>| {
            let mut resp = Response::new(Body::empty());
            for (name, value) in [
                ("ms-aspnetcore-token", "the-token"),
                ("MS-ASPNETCORE-EVENT", "shutdown"),
                ("ms-aspnetcorefoo", "x"),
                ("x-kept", "1"),
            ] {
                resp.headers_mut().append(
                    http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    value.parse().expect("value"),
                );
            }
            std::future::ready(Ok::<_, Infallible>(resp))
        });
        let resp = call(AncmLayer::default().layer(leaky), request("/", &[]));
        let names: Vec<_> = resp.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn websocket_flag() {
        let ws = [("connection", "upgrade"), ("upgrade", "websocket")];
        let resp = call(AncmLayer::default().layer(echo()), request("/", &ws));
        assert_eq!(resp.headers()["seen-upgrade"], "websocket");
        assert_eq!(resp.headers()["seen-connection"], "upgrade");
        let config = AncmConfig {
            websockets: false,
            ..AncmConfig::default()
        };
        let resp = call(AncmLayer::new(config).layer(echo()), request("/", &ws));
        assert!(resp.headers().get("seen-upgrade").is_none());
    }
}
