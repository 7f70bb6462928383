//! Each layer on its own (composed by hand) over real sockets, in front of the echo backend.
use std::convert::Infallible;
use std::net::SocketAddr;

use ancm_front::app_path::RequireAppPathLayer;
use ancm_front::backend::BackendTarget;
use ancm_front::client_cert::SetClientCertLayer;
use ancm_front::conn::ConnectionInfo;
use ancm_front::forwarded_for::AddForwardedForLayer;
use ancm_front::forwarded_proto::AddForwardedProtoLayer;
use ancm_front::hop_by_hop::RemoveHopByHopLayer;
use ancm_front::module_headers::StripModuleHeadersLayer;
use ancm_front::pairing_token::SetPairingTokenLayer;
use ancm_front::win_auth_token::{ForwardWindowsTokenLayer, WindowsIdentity};
use ancm_front::{AddExtensionLayer, Body};
use ancm_protocol::{AppPath, PairingToken};
use bytes::Bytes;
use http::{Request, Response as HttpResponse, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use test_support::backends::{Proxy, echo_backend, parse_seen};
use test_support::client::{self, Response, request};
use test_support::server::TestServer;
use tokio::net::TcpListener;
use tower::{Layer as _, ServiceBuilder};

/// Which connection facts the front attaches.
#[derive(Clone)]
enum Facts {
    /// From the accepted TCP connection.
    Tcp,
    /// A fixed mock (TLS tests).
    Mock(ConnectionInfo),
}

/// A front on `bind` serving `svc`, with the connection facts and `target` attached to each
/// request as the accept loop and a backend selector would.
async fn serve<S>(bind: &str, target: BackendTarget, facts: Facts, svc: S) -> SocketAddr
where
    S: tower::Service<Request<Incoming>, Response = HttpResponse<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind(bind).await.expect("bind front");
    let local = listener.local_addr().expect("front addr");
    let svc = AddExtensionLayer::new(target).layer(svc);
    TestServer::on(listener, move |peer| {
        let info = match &facts {
            Facts::Tcp => ConnectionInfo::plain(peer, local),
            Facts::Mock(info) => info.clone(),
        };
        AddExtensionLayer::new(info).layer(svc.clone())
    })
    .detach()
}

/// A GET with these header lines (repeated names give repeated lines).
fn get(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    client::get_request("example.test", path, headers)
}

/// The smallest forwarder's route: the backend the request's `BackendTarget` names.
fn to_backend(req: &mut Request<Incoming>) -> Option<SocketAddr> {
    req.extensions()
        .get::<BackendTarget>()
        .map(|target| target.addr)
}

#[tokio::test]
async fn hand_composed_stack_in_the_documented_order() {
    let backend = echo_backend("127.0.0.1:0").await;
    let token = PairingToken::new("fixed-for-this-test").expect("token");
    let fallback = tower::service_fn(|_req: Request<hyper::body::Incoming>| async {
        let mut resp = HttpResponse::new(Body::full("fallback"));
        *resp.status_mut() = StatusCode::MISDIRECTED_REQUEST;
        Ok::<_, Infallible>(resp)
    });
    let svc = ServiceBuilder::new()
        .layer(RemoveHopByHopLayer::new())
        .layer(StripModuleHeadersLayer::new())
        .layer(
            RequireAppPathLayer::new(AppPath::parse("/app").expect("path"))
                .with_fallback(fallback)
                .send_prefix(),
        )
        .layer(SetPairingTokenLayer::fixed(token))
        .layer(AddForwardedForLayer::overriding().without_port())
        .layer(AddForwardedProtoLayer::appending())
        .layer(SetClientCertLayer::new())
        .layer(ForwardWindowsTokenLayer::forwarding())
        .service(Proxy::new(to_backend, Body::new));
    let der = Bytes::from_static(b"\x30\x03\x02\x01\x05");
    let info = ConnectionInfo::tls(
        "198.51.100.20:40000".parse().expect("addr"),
        "0.0.0.0:443".parse().expect("addr"),
        Some(der),
    );
    let front = serve(
        "127.0.0.1:0",
        BackendTarget::new(backend, None),
        Facts::Mock(info),
        svc,
    )
    .await;

    let req = get(
        "/app/x",
        &[
            ("connection", "ms-aspnetcore-token, x-drop"),
            ("x-drop", "1"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "http"),
            ("ms-aspnetcore-event", "shutdown"),
        ],
    );
    let Response { status, body, .. } = request(front, req).await;
    assert_eq!(status, StatusCode::OK);
    let seen = parse_seen(&body);
    assert_eq!(seen.one("ms-aspnetcore-token"), Some("fixed-for-this-test"));
    assert_eq!(seen.one("x-forwarded-for"), Some("198.51.100.20"));
    assert_eq!(seen.one("x-forwarded-proto"), Some("http, https"));
    assert_eq!(seen.one("x-forwarded-prefix"), Some("/app"));
    assert_eq!(seen.one("ms-aspnetcore-clientcert"), Some("MAMCAQU="));
    assert!(!seen.has("x-drop"));
    assert!(!seen.has("ms-aspnetcore-event"));
    assert!(!seen.has("ms-aspnetcore-winauthtoken"));

    let Response { status, body, .. } = request(front, get("/elsewhere", &[])).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(&body[..], b"fallback");
}

/// Stands in for an authentication layer: every request is `NTLM` user with a token.
#[derive(Clone)]
struct FakeWindowsAuth<S>(S);

impl<S, B> tower::Service<Request<B>> for FakeWindowsAuth<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut()
            .insert(WindowsIdentity::new("NTLM", 0x3a8).with_user("CONTOSO\\alice"));
        self.0.call(req)
    }
}

#[cfg(not(windows))]
#[tokio::test]
async fn windows_token_is_forwarded_as_given_off_windows() {
    let backend = echo_backend("127.0.0.1:0").await;
    let svc = FakeWindowsAuth(
        ServiceBuilder::new()
            .layer(StripModuleHeadersLayer::new())
            .layer(ForwardWindowsTokenLayer::forwarding())
            .service(Proxy::new(to_backend, Body::new)),
    );
    let front = serve(
        "127.0.0.1:0",
        BackendTarget::new(backend, None),
        Facts::Tcp,
        svc,
    )
    .await;
    let Response { body, .. } =
        request(front, get("/", &[("ms-aspnetcore-winauthtoken", "1")])).await;
    let seen = parse_seen(&body);
    assert_eq!(seen.all("ms-aspnetcore-winauthtoken"), ["3a8"]);
}

#[tokio::test]
async fn windows_token_is_not_sent_when_forwarding_is_off() {
    let backend = echo_backend("127.0.0.1:0").await;
    let svc = FakeWindowsAuth(
        ServiceBuilder::new()
            .layer(ForwardWindowsTokenLayer::disabled())
            .service(Proxy::new(to_backend, Body::new)),
    );
    let front = serve(
        "127.0.0.1:0",
        BackendTarget::new(backend, None),
        Facts::Tcp,
        svc,
    )
    .await;
    let Response { status, body, .. } =
        request(front, get("/", &[("ms-aspnetcore-winauthtoken", "1")])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!parse_seen(&body).has("ms-aspnetcore-winauthtoken"));
}
