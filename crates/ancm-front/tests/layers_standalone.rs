//! Each layer on its own (composed by hand) over real sockets, in front of the echo backend.
mod layers_support;

use std::convert::Infallible;

use ancm_front::Body;
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
use ancm_protocol::{AppPath, PairingToken};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use layers_support::{Facts, MiniForwarder, echo_backend, get, parse_seen, send, serve};
use tower::ServiceBuilder;

#[tokio::test]
async fn hand_composed_stack_in_the_documented_order() {
    let backend = echo_backend("127.0.0.1:0").await;
    let token = PairingToken::new("fixed-for-this-test").expect("token");
    let fallback = tower::service_fn(|_req: Request<hyper::body::Incoming>| async {
        let mut resp = Response::new(Body::full("fallback"));
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
        .service(MiniForwarder::new());
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
    let (_, status, _, body) = send(front, req).await;
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

    let (_, status, _, body) = send(front, get("/elsewhere", &[])).await;
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
            .service(MiniForwarder::new()),
    );
    let front = serve(
        "127.0.0.1:0",
        BackendTarget::new(backend, None),
        Facts::Tcp,
        svc,
    )
    .await;
    let (_, _, _, body) = send(front, get("/", &[("ms-aspnetcore-winauthtoken", "1")])).await;
    let seen = parse_seen(&body);
    assert_eq!(seen.all("ms-aspnetcore-winauthtoken"), ["3a8"]);
}

#[tokio::test]
async fn windows_token_is_not_sent_when_forwarding_is_off() {
    let backend = echo_backend("127.0.0.1:0").await;
    let svc = FakeWindowsAuth(
        ServiceBuilder::new()
            .layer(ForwardWindowsTokenLayer::disabled())
            .service(MiniForwarder::new()),
    );
    let front = serve(
        "127.0.0.1:0",
        BackendTarget::new(backend, None),
        Facts::Tcp,
        svc,
    )
    .await;
    let (_, status, _, body) = send(front, get("/", &[("ms-aspnetcore-winauthtoken", "1")])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!parse_seen(&body).has("ms-aspnetcore-winauthtoken"));
}
