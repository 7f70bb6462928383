//! Both halves over real sockets: client → front (the ANCM bundle + the real forwarder) →
//! backend (`iis-integration` in front of an app reporting what it learned).
use std::convert::Infallible;
use std::net::SocketAddr;

use ancm_front::backend::BackendTarget;
use ancm_front::conn::ConnectionInfo;
use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::win_auth_token::WindowsIdentity;
use ancm_front::{AddExtensionLayer, AncmConfig, AncmLayer, Body};
use ancm_protocol::{AppPath, PairingToken, client_cert};
use bytes::Bytes;
use http::{Request, Response as HttpResponse, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use iis_integration::{
    ClientAddr, ClientCertificate, IisConfig, IisIntegrationLayer, PeerAddr, Scheme,
    ShutdownSignal, WindowsUser,
};
use test_support::client::{self, Response, request, request_from};
use test_support::server::TestServer;
use tokio::net::TcpListener;
use tower::Layer as _;

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

/// What the app saw, one `key: value` line each.
#[derive(Debug)]
struct AppView(Vec<(String, String)>);

impl AppView {
    fn parse(body: &[u8]) -> Self {
        let text = std::str::from_utf8(body).expect("utf-8");
        Self(
            text.lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn headers_starting(&self, prefix: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == "header" && v.starts_with(prefix))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

struct Backend {
    addr: SocketAddr,
    token: PairingToken,
    shutdown: ShutdownSignal,
}

/// The app behind `IisIntegrationLayer`, served by hyper with `PeerAddr` per connection.
async fn backend(app_path: &str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("addr");
    let token = PairingToken::generate();
    let config = IisConfig::new(
        addr.port(),
        AppPath::parse(app_path).expect("path"),
        token.clone(),
    )
    .with_auth_enabled(true);
    let iis = IisIntegrationLayer::new(&config);
    let shutdown = iis.shutdown_signal();
    let app = tower::service_fn(|req: Request<Incoming>| async move {
        let ext = req.extensions();
        let mut out = String::new();
        let mut line = |k: &str, v: String| {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(&v);
            out.push('\n');
        };
        line("path", req.uri().path().to_owned());
        if let Some(ClientAddr(client)) = ext.get::<ClientAddr>() {
            line("client", client.to_string());
        }
        if let Some(scheme) = ext.get::<Scheme>() {
            line("scheme", scheme.as_str().to_owned());
        }
        if let Some(cert) = ext.get::<ClientCertificate>() {
            line(
                "cert",
                client_cert::encode(cert.der())
                    .to_str()
                    .expect("b64")
                    .to_owned(),
            );
        }
        if let Some(user) = ext.get::<WindowsUser>() {
            line("winuser", format!("{:x}", user.raw_handle()));
        }
        for (name, value) in req.headers() {
            line(
                "header",
                format!("{name}={}", String::from_utf8_lossy(value.as_bytes())),
            );
        }
        Ok::<_, Infallible>(HttpResponse::new(Full::new(Bytes::from(out))))
    });
    let svc = iis.layer(app);
    TestServer::on(listener, move |peer| {
        AddExtensionLayer::new(PeerAddr(peer)).layer(svc.clone())
    })
    .detach();
    Backend {
        addr,
        token,
        shutdown,
    }
}

/// The front: `facts` → the backend's target → the bundle → the real forwarder.
async fn front(bind: &str, backend: &Backend, config: AncmConfig, facts: Facts) -> SocketAddr {
    let target = BackendTarget::new(backend.addr, Some(backend.token.clone()));
    let svc = AncmLayer::new(config).layer(Forwarder::new(ForwardConfig::default()));
    serve(bind, target, facts, svc).await
}

#[tokio::test]
async fn client_address_port_and_scheme_are_restored_exactly() {
    let be = backend("/").await;
    let front = front("127.0.0.1:0", &be, AncmConfig::default(), Facts::Tcp).await;
    let (client, Response { status, body, .. }) = request_from(front, get("/hello?x=1", &[])).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let view = AppView::parse(&body);
    assert_eq!(view.get("client"), Some(client.to_string().as_str()));
    assert_eq!(view.get("scheme"), Some("http"));
    assert_eq!(view.get("path"), Some("/hello"));
    // The token verified (200 above) and the backend removed it before the app.
    assert!(view.headers_starting("ms-aspnetcore").is_empty());
}

#[tokio::test]
async fn the_backend_rejects_requests_that_bypass_the_front() {
    let be = backend("/").await;
    // Straight to the backend: no token → 400.
    let Response { status, .. } = request(be.addr, get("/", &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Through a front with the wrong token → 400 as well.
    let target = BackendTarget::new(be.addr, Some(PairingToken::generate()));
    let svc = AncmLayer::default().layer(Forwarder::new(ForwardConfig::default()));
    let wrong = serve("127.0.0.1:0", target, Facts::Tcp, svc).await;
    let Response { status, .. } = request(wrong, get("/", &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ipv6_client_is_restored() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback; skipped");
        return;
    }
    let be = backend("/").await;
    let front = front("[::1]:0", &be, AncmConfig::default(), Facts::Tcp).await;
    let (client, Response { status, body, .. }) = request_from(front, get("/", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(client.is_ipv6());
    let view = AppView::parse(&body);
    assert_eq!(view.get("client"), Some(client.to_string().as_str()));
}

#[tokio::test]
async fn tls_client_facts_reach_the_app() {
    let be = backend("/").await;
    let der = Bytes::from_static(&[0x30, 0x03, 0x02, 0x01, 0x05]);
    let info = ConnectionInfo::tls(
        "[2001:db8::42]:50123".parse().expect("addr"),
        "[::]:443".parse().expect("addr"),
        Some(der),
    );
    let front = front("127.0.0.1:0", &be, AncmConfig::default(), Facts::Mock(info)).await;
    let Response { status, body, .. } = request(front, get("/", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let view = AppView::parse(&body);
    assert_eq!(view.get("client"), Some("[2001:db8::42]:50123"));
    assert_eq!(view.get("scheme"), Some("https"));
    assert_eq!(view.get("cert"), Some("MAMCAQU="));
}

#[tokio::test]
async fn client_sent_module_headers_never_reach_the_app() {
    let be = backend("/").await;
    let front = front("127.0.0.1:0", &be, AncmConfig::default(), Facts::Tcp).await;
    let forged = [
        ("MS-ASPNETCORE-TOKEN", "forged"),
        ("MS-ASPNETCORE-EVENT", "shutdown"),
        ("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU="),
        ("MS-ASPNETCORE-WINAUTHTOKEN", "2a4"),
    ];
    let mut req = get("/iisintegration", &forged);
    *req.method_mut() = http::Method::POST;
    let Response { status, body, .. } = request(front, req).await;
    // Not the shutdown answer (202): the event header was removed on the way.
    assert_eq!(status, StatusCode::OK);
    assert!(!be.shutdown.is_triggered());
    let view = AppView::parse(&body);
    assert_eq!(view.get("cert"), None);
    assert_eq!(view.get("winuser"), None);
    assert!(view.headers_starting("ms-aspnetcore").is_empty());
}

#[tokio::test]
async fn connection_nominated_headers_cannot_remove_injected_ones() {
    let be = backend("/").await;
    let front = front("127.0.0.1:0", &be, AncmConfig::default(), Facts::Tcp).await;
    let req = get(
        "/",
        &[
            (
                "connection",
                "MS-ASPNETCORE-TOKEN, X-Forwarded-For, X-Forwarded-Proto, keep-alive",
            ),
            ("x-forwarded-for", "192.0.2.66"),
            ("x-forwarded-proto", "https"),
        ],
    );
    let (client, Response { status, body, .. }) = request_from(front, req).await;
    assert_eq!(status, StatusCode::OK, "the token was removed");
    let view = AppView::parse(&body);
    assert_eq!(view.get("client"), Some(client.to_string().as_str()));
    assert_eq!(view.get("scheme"), Some("http"));
}

#[tokio::test]
async fn spoofed_forwarded_values_to_the_left_do_not_win() {
    let be = backend("/").await;
    let front = front("127.0.0.1:0", &be, AncmConfig::default(), Facts::Tcp).await;
    let req = get(
        "/",
        &[
            ("x-forwarded-for", "192.0.2.66:1234"),
            ("x-forwarded-proto", "https"),
        ],
    );
    let (client, Response { body, .. }) = request_from(front, req).await;
    let view = AppView::parse(&body);
    // The backend reads one hop from the right (ForwardLimit 1): ours.
    assert_eq!(view.get("client"), Some(client.to_string().as_str()));
    assert_eq!(view.get("scheme"), Some("http"));
}

#[tokio::test]
async fn app_path_round_trip() {
    let be = backend("/shop").await;
    let config = AncmConfig {
        app_path: AppPath::parse("/shop").expect("path"),
        ..AncmConfig::default()
    };
    let front = front("127.0.0.1:0", &be, config, Facts::Tcp).await;
    let Response { status, body, .. } = request(front, get("/Shop/cart", &[])).await;
    assert_eq!(status, StatusCode::OK);
    // The front forwarded the full path; the backend stripped its base.
    assert_eq!(AppView::parse(&body).get("path"), Some("/cart"));
    let Response { status, .. } = request(front, get("/shopping", &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Stands in for an authentication layer: every request is a Negotiate user.
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
            .insert(WindowsIdentity::new("Negotiate", 0x2a4));
        self.0.call(req)
    }
}

#[cfg(not(windows))]
#[tokio::test]
async fn windows_identity_reaches_the_app_as_its_handle_value() {
    let be = backend("/").await;
    let target = BackendTarget::new(be.addr, Some(be.token.clone()));
    let svc = FakeWindowsAuth(AncmLayer::default().layer(Forwarder::new(ForwardConfig::default())));
    let front = serve("127.0.0.1:0", target, Facts::Tcp, svc).await;
    let Response { status, body, .. } =
        request(front, get("/", &[("ms-aspnetcore-winauthtoken", "1")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(AppView::parse(&body).get("winuser"), Some("2a4"));
}

#[cfg(windows)]
#[tokio::test]
async fn windows_identity_without_a_backend_process_handle_is_502_3() {
    let be = backend("/").await;
    // A fixed target has no process handle to duplicate the token into.
    let target = BackendTarget::new(be.addr, Some(be.token.clone()));
    let svc = FakeWindowsAuth(AncmLayer::default().layer(Forwarder::new(ForwardConfig::default())));
    let front = serve("127.0.0.1:0", target, Facts::Tcp, svc).await;
    let Response { status, body, .. } = request(front, get("/", &[])).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&body).contains("HTTP Error 502.3"));
}

/// A WebSocket upgrade goes through the bundle and the real forwarder intact: the backend
/// gets `Upgrade`/`Connection: upgrade`, the token, and no `Sec-WebSocket-Extensions`
/// (protocol §1.9); messages then flow both ways.
#[tokio::test]
async fn websocket_upgrade_survives_the_bundle() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::handshake::server::{
        ErrorResponse, Request as WsRequest, Response as WsResponse,
    };

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let backend_addr = listener.local_addr().expect("addr");
    let token = PairingToken::generate();
    let expected = token.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let expected = expected.clone();
            tokio::spawn(async move {
                // tungstenite's callback type fixes the (large) error type.
                #[allow(clippy::result_large_err)]
                let check = move |req: &WsRequest, resp: WsResponse| {
                    let h = req.headers();
                    let token_ok = h
                        .get("ms-aspnetcore-token")
                        .is_some_and(|v| expected.matches(v.as_bytes()));
                    let clean = h.get("sec-websocket-extensions").is_none()
                        && h.get("x-hop").is_none()
                        && h.get("connection").is_some_and(|v| v == "upgrade");
                    if token_ok && clean {
                        Ok(resp)
                    } else {
                        let mut err = ErrorResponse::new(Some("unexpected headers".into()));
                        *err.status_mut() = StatusCode::BAD_REQUEST;
                        Err(err)
                    }
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let target = BackendTarget::new(backend_addr, Some(token));
    let svc = AncmLayer::default().layer(Forwarder::new(ForwardConfig::default()));
    let front = serve("127.0.0.1:0", target, Facts::Tcp, svc).await;

    let mut req = format!("ws://{front}/chat")
        .into_client_request()
        .expect("request");
    let h = req.headers_mut();
    h.insert(
        "sec-websocket-extensions",
        "permessage-deflate".parse().expect("v"),
    );
    h.insert(
        "connection",
        "keep-alive, Upgrade, x-hop".parse().expect("v"),
    );
    h.insert("x-hop", "1".parse().expect("v"));
    h.insert("ms-aspnetcore-token", "forged".parse().expect("v"));
    let stream = tokio::net::TcpStream::connect(front)
        .await
        .expect("connect");
    let (mut ws, resp) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("handshake through the bundle");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("ping")).await.expect("send");
    let echoed = ws.next().await.expect("a message").expect("ok");
    assert_eq!(echoed.into_text().expect("text").as_str(), "ping");
}
