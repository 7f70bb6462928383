//! The ANCM bundle over real sockets: client → front (bundle + minimal forwarder) → echo
//! backend.
use std::convert::Infallible;
use std::net::SocketAddr;

use ancm_front::backend::BackendTarget;
use ancm_front::conn::ConnectionInfo;
use ancm_front::forwarded_for::ForwardedMode;
use ancm_front::pairing_token::TokenFrom;
use ancm_front::{AddExtensionLayer, AncmConfig, AncmLayer, Body};
use ancm_protocol::{AppPath, PairingToken, client_cert};
use bytes::Bytes;
use http::{Request, Response as HttpResponse, StatusCode};
use http_body_util::{Full, StreamBody};
use hyper::body::Incoming;
use test_support::backends::{Proxy, Seen, echo_backend, parse_seen};
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

/// The smallest forwarder's route: the backend the request's `BackendTarget` names.
fn to_backend(req: &mut Request<Incoming>) -> Option<SocketAddr> {
    req.extensions()
        .get::<BackendTarget>()
        .map(|target| target.addr)
}

/// A front on `bind`: connection facts → fixed backend → the ANCM bundle → the smallest
/// forwarder.
async fn front(bind: &str, target: BackendTarget, config: AncmConfig, facts: Facts) -> SocketAddr {
    front_with(bind, target, AncmLayer::new(config), facts).await
}

/// [`front`] with a prepared bundle (e.g. with a fallback).
async fn front_with<F>(
    bind: &str,
    target: BackendTarget,
    bundle: AncmLayer<F>,
    facts: Facts,
) -> SocketAddr
where
    F: Clone + Send + Sync + 'static,
    F: ancm_front::app_path::Unmatched<Incoming, Body, Infallible>,
    F::Future: Send,
{
    serve(
        bind,
        target,
        facts,
        bundle.layer(Proxy::new(to_backend, Body::new)),
    )
    .await
}

async fn setup(config: AncmConfig, facts: Facts) -> (std::net::SocketAddr, PairingToken) {
    let backend = echo_backend("127.0.0.1:0").await;
    let token = PairingToken::generate();
    let target = BackendTarget::new(backend, Some(token.clone()));
    (front("127.0.0.1:0", target, config, facts).await, token)
}

#[tokio::test]
async fn client_endpoint_scheme_and_token_reach_the_backend() {
    let (front, token) = setup(AncmConfig::default(), Facts::Tcp).await;
    let (client, Response { status, body, .. }) = request_from(front, get("/a/b?c=d", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let seen = parse_seen(&body);
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/a/b?c=d");
    assert_eq!(seen.one("host"), Some("example.test"));
    assert_eq!(
        seen.one("x-forwarded-for"),
        Some(client.to_string().as_str())
    );
    assert_eq!(seen.one("x-forwarded-proto"), Some("http"));
    let sent = seen.one("ms-aspnetcore-token").expect("token sent");
    assert!(token.matches(sent.as_bytes()));
    assert!(!seen.has("ms-aspnetcore-clientcert"));
    assert!(!seen.has("ms-aspnetcore-winauthtoken"));
}

#[tokio::test]
async fn several_incoming_lines_become_one_value() {
    let (front, _) = setup(AncmConfig::default(), Facts::Tcp).await;
    let req = get(
        "/",
        &[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "198.51.100.2, 198.51.100.3"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-proto", "http"),
        ],
    );
    let (client, Response { body, .. }) = request_from(front, req).await;
    let seen = parse_seen(&body);
    assert_eq!(
        seen.all("x-forwarded-for"),
        [format!(
            "198.51.100.1, 198.51.100.2, 198.51.100.3, {client}"
        )]
    );
    assert_eq!(seen.all("x-forwarded-proto"), ["https, http, http"]);
}

#[tokio::test]
async fn overriding_mode_and_no_port() {
    let config = AncmConfig {
        forwarded_for: ForwardedMode::Overriding,
        forwarded_proto: ForwardedMode::Overriding,
        include_port: false,
        ..AncmConfig::default()
    };
    let (front, _) = setup(config, Facts::Tcp).await;
    let req = get(
        "/",
        &[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-proto", "https"),
        ],
    );
    let Response { body, .. } = request(front, req).await;
    let seen = parse_seen(&body);
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-proto"), ["http"]);
}

#[tokio::test]
async fn ipv6_client_is_bracketed() {
    // Skip quietly where the machine has no IPv6 loopback.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback; skipped");
        return;
    }
    let backend = echo_backend("127.0.0.1:0").await;
    let target = BackendTarget::new(backend, None);
    let front = front("[::1]:0", target, AncmConfig::default(), Facts::Tcp).await;
    let (client, Response { body, .. }) = request_from(front, get("/", &[])).await;
    assert!(client.is_ipv6());
    let seen = parse_seen(&body);
    assert_eq!(
        seen.one("x-forwarded-for"),
        Some(format!("[::1]:{}", client.port()).as_str())
    );
    // A target without a token sends none, even if the client tried.
    assert!(!seen.has("ms-aspnetcore-token"));
}

#[tokio::test]
async fn client_sent_module_headers_never_reach_the_backend() {
    let (front, token) = setup(AncmConfig::default(), Facts::Tcp).await;
    let req = get(
        "/",
        &[
            ("MS-ASPNETCORE-TOKEN", "forged"),
            ("ms-aspnetcore-token", "forged-again"),
            ("MS-ASPNETCORE-EVENT", "shutdown"),
            ("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU="),
            ("MS-ASPNETCORE-WINAUTHTOKEN", "2a4"),
            ("Ms-AspNetCoreFoo", "x"),
            ("x-ms-aspnetcore-kept", "y"),
        ],
    );
    let Response { body, .. } = request(front, req).await;
    let seen = parse_seen(&body);
    let module: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("ms-aspnetcore"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(module, ["ms-aspnetcore-token"]);
    assert!(token.matches(seen.all("ms-aspnetcore-token")[0].as_bytes()));
    assert_eq!(seen.one("x-ms-aspnetcore-kept"), Some("y"));
}

#[tokio::test]
async fn connection_cannot_remove_injected_headers() {
    let (front, token) = setup(AncmConfig::default(), Facts::Tcp).await;
    let req = get(
        "/",
        &[
            (
                "connection",
                "keep-alive, MS-ASPNETCORE-TOKEN, X-Forwarded-For, x-forwarded-proto, x-secret",
            ),
            ("connection", "Host, ms-aspnetcore-clientcert"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-secret", "1"),
            ("x-forwarded-for", "198.51.100.1"),
            ("te", "gzip"),
        ],
    );
    let (client, Response { body, .. }) = request_from(front, req).await;
    let seen = parse_seen(&body);
    assert!(token.matches(seen.one("ms-aspnetcore-token").expect("token").as_bytes()));
    // The client's own XFF item was hop-by-hop (named in Connection); ours is there.
    assert_eq!(
        seen.one("x-forwarded-for"),
        Some(client.to_string().as_str())
    );
    assert_eq!(seen.one("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.one("host"), Some("example.test"));
    for gone in ["x-secret", "keep-alive", "proxy-connection", "te"] {
        assert!(!seen.has(gone), "{gone} reached the backend");
    }
    // hyper's client may add its own `connection` management; never the client's tokens.
    for v in seen.all("connection") {
        assert!(!v.to_ascii_lowercase().contains("x-secret"), "{v}");
    }
}

#[tokio::test]
async fn te_trailers_is_kept_alone() {
    let (front, _) = setup(AncmConfig::default(), Facts::Tcp).await;
    let req = get("/", &[("te", "gzip, trailers"), ("connection", "TE")]);
    let Response { body, .. } = request(front, req).await;
    let seen = parse_seen(&body);
    assert_eq!(seen.all("te"), ["trailers"]);
}

#[tokio::test]
async fn request_bodies_keep_their_framing_without_the_hop_by_hop_headers() {
    let (front, _) = setup(AncmConfig::default(), Facts::Tcp).await;
    // Chunked: the client's Transfer-Encoding is removed, hyper's client re-chunks.
    let chunks: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = vec![
        Ok(http_body::Frame::data(Bytes::from_static(b"hello "))),
        Ok(http_body::Frame::data(Bytes::from_static(b"chunked world"))),
    ];
    let stream = futures_util::stream::iter(chunks);
    let req = Request::post("/upload")
        .header("host", "example.test")
        .header("transfer-encoding", "chunked")
        .body(StreamBody::new(stream))
        .expect("request");
    let seen = send_streaming(front, req).await;
    assert_eq!(seen.body, b"hello chunked world");
    assert_eq!(seen.one("transfer-encoding"), Some("chunked"));
    assert!(!seen.has("content-length"));

    // Content-Length: forwarded as is.
    let req = Request::post("/upload")
        .header("host", "example.test")
        .body(Full::new(Bytes::from_static(b"0123456789")))
        .expect("request");
    let Response { body, .. } = request(front, req).await;
    let seen = parse_seen(&body);
    assert_eq!(seen.body, b"0123456789");
    assert_eq!(seen.one("content-length"), Some("10"));
    assert!(!seen.has("transfer-encoding"));
}

async fn send_streaming<B>(front: SocketAddr, req: Request<B>) -> Seen
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<test_support::BoxError>,
{
    parse_seen(&request(front, req).await.body)
}

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let (front, _) = setup(AncmConfig::default(), Facts::Tcp).await;
    let Response {
        status, headers, ..
    } = request(front, get("/hop-response", &[])).await;
    assert_eq!(status, StatusCode::OK);
    for gone in ["x-hop-resp", "keep-alive", "proxy-connection", "upgrade"] {
        assert!(headers.get(gone).is_none(), "{gone} reached the client");
    }
    assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
    assert_eq!(headers["x-end"], "kept");
}

#[tokio::test]
async fn websocket_upgrade_request_keeps_upgrade_and_loses_extensions() {
    let (front, _) = setup(AncmConfig::default(), Facts::Tcp).await;
    let req = get(
        "/ws",
        &[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ],
    );
    // The echo backend answers 200, so the exchange continues as plain HTTP.
    let Response { status, body, .. } = request(front, req).await;
    assert_eq!(status, StatusCode::OK);
    let seen = parse_seen(&body);
    assert_eq!(seen.one("upgrade"), Some("websocket"));
    assert_eq!(seen.one("connection"), Some("upgrade"));
    assert!(!seen.has("sec-websocket-extensions"));
    assert_eq!(
        seen.one("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
}

#[tokio::test]
async fn upgrade_other_than_websocket_is_removed() {
    let (front, _) = setup(AncmConfig::default(), Facts::Tcp).await;
    let req = get(
        "/",
        &[("connection", "upgrade"), ("upgrade", "websocket, h2c")],
    );
    let Response { body, .. } = request(front, req).await;
    let seen = parse_seen(&body);
    assert!(!seen.has("upgrade"));
    assert!(
        seen.all("connection")
            .iter()
            .all(|v| !v.eq_ignore_ascii_case("upgrade"))
    );
}

#[tokio::test]
async fn app_path_admits_its_own_requests_unchanged_and_404s_others() {
    let config = AncmConfig {
        app_path: AppPath::parse("/Shop").expect("path"),
        send_prefix: true,
        ..AncmConfig::default()
    };
    let (front, _) = setup(config, Facts::Tcp).await;
    let Response { status, body, .. } = request(
        front,
        get("/SHOP/cart?x=1", &[("x-forwarded-prefix", "/forged")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seen = parse_seen(&body);
    assert_eq!(seen.path, "/SHOP/cart?x=1");
    assert_eq!(seen.all("x-forwarded-prefix"), ["/Shop"]);
    for outside in ["/shopping", "/", "/other/shop"] {
        let Response { status, body, .. } = request(front, get(outside, &[])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{outside}");
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn tls_client_facts_via_the_mock() {
    let der = Bytes::from_static(&[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00]);
    let info = ConnectionInfo::tls(
        "[2001:db8::7]:51000".parse().expect("addr"),
        "[::]:443".parse().expect("addr"),
        Some(der.clone()),
    );
    let (front, _) = setup(AncmConfig::default(), Facts::Mock(info)).await;
    let Response { body, .. } = request(front, get("/", &[("x-forwarded-proto", "http")])).await;
    let seen = parse_seen(&body);
    assert_eq!(seen.one("x-forwarded-for"), Some("[2001:db8::7]:51000"));
    assert_eq!(seen.one("x-forwarded-proto"), Some("http, https"));
    let cert = seen
        .one("ms-aspnetcore-clientcert")
        .expect("certificate sent");
    assert_eq!(
        client_cert::decode(cert.as_bytes()).expect("base64"),
        der.to_vec()
    );
}

#[tokio::test]
async fn fixed_token_source() {
    let backend = echo_backend("127.0.0.1:0").await;
    let fixed = PairingToken::new("fixed-token-value").expect("token");
    let config = AncmConfig {
        token: TokenFrom::Fixed(fixed.clone()),
        ..AncmConfig::default()
    };
    // The target's own token is ignored with a fixed source.
    let target = BackendTarget::new(backend, Some(PairingToken::generate()));
    let front = front("127.0.0.1:0", target, config, Facts::Tcp).await;
    let Response { body, .. } = request(front, get("/", &[])).await;
    assert_eq!(
        parse_seen(&body).one("ms-aspnetcore-token"),
        Some("fixed-token-value")
    );
}
