//! Every behaviour of protocol §4, through a real server on 127.0.0.1 and raw HTTP/1.1.
//!
//! One file, over 500 lines, for the whole section: its tests share the probe app below and
//! read in the contract's order.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ancm_protocol::{AppPath, PairingToken};
use axum::extract::{ConnectInfo, Request};
use axum::{Json, Router};
use iis_integration::{
    AddExtension, ClientAddr, ClientCertificate, ForwardClientCertificateLayer,
    ForwardedHeadersLayer, ForwardedHeadersOptions, IisConfig, IisIntegrationLayer, OriginalUri,
    PathBase, PeerAddr, RequirePairingTokenLayer, Scheme, ShutdownEventLayer, ShutdownSignal,
    UsePathBaseLayer, WindowsUser, XForwarded,
};
use serde_json::{Map, Value, json};
use socket2::{Domain, Socket, Type};
use test_support::client::{self, RawResponse};
use test_support::server::TestServer;
use tokio::net::TcpListener;
use tower::Layer;

/// The app behind the layers under test, on a real server: it answers every request with
/// what the layers left for it, as JSON.
struct Probe {
    server: TestServer,
    calls: Arc<AtomicUsize>,
}

/// How the server tells the layers the socket peer of each connection.
#[derive(Clone, Copy)]
enum PeerInfo {
    /// axum's `ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info` gives.
    ConnectInfo,
    /// [`PeerAddr`], as a plain hyper server inserts it.
    PeerAddr,
    /// Not at all.
    Untold,
}

/// A layer the probe can run behind: one whose service a real server can run.
trait UnderTest:
    Layer<
        Router,
        Service: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
                     + Send
                     + 'static,
    >
{
}

impl<L> UnderTest for L
where
    L: Layer<Router>,
    L::Service: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static,
{
}

impl Probe {
    /// The probe behind `layer` on a fresh 127.0.0.1 port, with axum's connect info.
    async fn behind(layer: impl UnderTest) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, layer, PeerInfo::ConnectInfo)
    }

    /// The probe behind `layer` on `listener`, telling it the peer as `peer` says.
    fn on(listener: TcpListener, layer: impl UnderTest, peer: PeerInfo) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = layer.layer(probe(calls.clone()));
        let server = match peer {
            PeerInfo::ConnectInfo => TestServer::on(listener, move |peer| {
                AddExtension::new(app.clone(), ConnectInfo(peer))
            }),
            PeerInfo::PeerAddr => TestServer::on(listener, move |peer| {
                AddExtension::new(app.clone(), PeerAddr(peer))
            }),
            PeerInfo::Untold => TestServer::on(listener, move |_peer| app.clone()),
        };
        Self { server, calls }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// How many requests reached the app.
    fn app_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn send(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> RawResponse {
        client::send(self.addr(), method, target, headers).await
    }

    /// What the app saw of `GET target` with `headers`.
    async fn seen(&self, target: &str, headers: &[(&str, &str)]) -> Value {
        self.send("GET", target, headers).await.json()
    }
}

fn probe(calls: Arc<AtomicUsize>) -> Router {
    Router::new().fallback(move |req: Request| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Json(report(req))
        }
    })
}

fn report(req: Request) -> Value {
    let ext = req.extensions();
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        if let Value::Array(values) = headers
            .entry(name.as_str())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            values.push(Value::String(value.to_str().unwrap_or("<bin>").to_owned()));
        }
    }
    json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "path_base": ext.get::<PathBase>().map(|p| p.to_string()),
        "original_uri": ext.get::<OriginalUri>().map(|u| u.0.to_string()),
        "client": ext.get::<ClientAddr>().map(|c| c.0.to_string()),
        "scheme": ext.get::<Scheme>().map(|s| s.to_string()),
        "cert": ext.get::<ClientCertificate>().map(|c| c.der().to_vec()),
        "windows_handle": ext.get::<WindowsUser>().map(|u| u.raw_handle()),
        "upgrade": ext.get::<hyper::upgrade::OnUpgrade>().is_some(),
        "headers": headers,
    })
}

const TOKEN: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

fn token() -> PairingToken {
    PairingToken::new(TOKEN).unwrap()
}

fn config(app_path: &str) -> IisConfig {
    IisConfig::new(1, AppPath::parse(app_path).unwrap(), token())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- pairing token (protocol §4.3 step 1)

#[tokio::test]
async fn token_missing_wrong_or_duplicated_is_400_without_calling_the_app() {
    let server = Probe::behind(RequirePairingTokenLayer::new(token())).await;
    let wrong = "3f2504e0-4f89-41d3-9a0c-0305e82c3302";
    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("MS-ASPNETCORE-TOKEN", wrong)],
        &[("MS-ASPNETCORE-TOKEN", "")],
        &[("MS-ASPNETCORE-TOKEN", &TOKEN[..35])],
        &[
            ("MS-ASPNETCORE-TOKEN", TOKEN),
            ("ms-aspnetcore-token", TOKEN),
        ],
    ];
    for headers in cases {
        let res = server.send("GET", "/", headers).await;
        assert_eq!(res.status, 400, "{headers:?}");
        assert!(res.body.is_empty());
    }
    assert_eq!(server.app_calls(), 0);

    let res = server
        .send("GET", "/", &[("ms-aspnetcore-token", TOKEN)])
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(server.app_calls(), 1);
    // Accepted, then removed: the app cannot echo the secret.
    assert!(res.json()["headers"].get("ms-aspnetcore-token").is_none());
    assert!(!String::from_utf8_lossy(&res.body).contains(TOKEN));
}

#[tokio::test]
async fn token_is_checked_by_the_whole_stack_before_the_shutdown_event() {
    let layer = IisIntegrationLayer::new(&config("/"));
    let signal = layer.shutdown_signal();
    let server = Probe::behind(layer).await;
    let res = server
        .send(
            "POST",
            "/iisintegration",
            &[("MS-ASPNETCORE-EVENT", "shutdown")],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(!signal.is_triggered());
    assert_eq!(server.app_calls(), 0);
}

// ---------------------------------------------------------------- shutdown event (protocol §4.3 step 2)

#[tokio::test]
async fn shutdown_event_is_202_and_fires_once() {
    let signal = ShutdownSignal::new();
    let server = Probe::behind(ShutdownEventLayer::new(signal.clone())).await;
    let waiter = tokio::spawn(signal.triggered());
    let res = server
        .send(
            "post",
            "/IISIntegration",
            &[("MS-ASPNETCORE-EVENT", "SHUTDOWN")],
        )
        .await;
    // `post` is not POST: methods are case-sensitive in HTTP, hyper keeps it as an extension
    // method and ANCM compares ignoring case.
    assert_eq!(res.status, 202);
    assert!(res.body.is_empty());
    tokio::time::timeout(test_support::LIMIT, waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(signal.is_triggered());
    // A repeat is answered the same way; the signal stays fired.
    let res = server
        .send(
            "POST",
            "/iisintegration",
            &[("ms-aspnetcore-event", "shutdown")],
        )
        .await;
    assert_eq!(res.status, 202);
    assert!(!signal.trigger(), "already fired");
    assert_eq!(server.app_calls(), 0);
}

#[tokio::test]
async fn anything_else_goes_to_the_app() {
    let signal = ShutdownSignal::new();
    let server = Probe::behind(ShutdownEventLayer::new(signal.clone())).await;
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 8] = [
        (
            "PUT",
            "/iisintegration",
            &[("MS-ASPNETCORE-EVENT", "shutdown")],
        ),
        (
            "GET",
            "/iisintegration",
            &[("MS-ASPNETCORE-EVENT", "shutdown")],
        ),
        (
            "POST",
            "/path/iisintegration",
            &[("MS-ASPNETCORE-EVENT", "shutdown")],
        ),
        (
            "POST",
            "/iisintegration/",
            &[("MS-ASPNETCORE-EVENT", "shutdown")],
        ),
        ("POST", "/iisintegration", &[("MS-ASPNETCORE-EVENT", "")]),
        (
            "POST",
            "/iisintegration",
            &[("MS-ASPNETCORE-EVENT", "shutdownx")],
        ),
        ("POST", "/iisintegration", &[]),
        (
            "POST",
            "/iisintegration",
            &[
                ("MS-ASPNETCORE-EVENT", "shutdown"),
                ("MS-ASPNETCORE-EVENT", "shutdown"),
            ],
        ),
    ];
    for (method, path, headers) in cases {
        let res = server.send(method, path, headers).await;
        assert_eq!(res.status, 200, "{method} {path} {headers:?}");
        assert_eq!(res.json()["method"], method);
    }
    assert_eq!(server.app_calls(), cases.len());
    assert!(!signal.is_triggered());
}

#[tokio::test]
async fn shutdown_path_is_matched_after_the_path_base() {
    let layer = IisIntegrationLayer::new(&config("/app"));
    let signal = layer.shutdown_signal();
    let server = Probe::behind(layer).await;
    let auth = ("MS-ASPNETCORE-TOKEN", TOKEN);
    let res = server
        .send(
            "POST",
            "/app/sub/iisintegration",
            &[auth, ("MS-ASPNETCORE-EVENT", "shutdown")],
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(!signal.is_triggered());
    let res = server
        .send(
            "POST",
            "/APP/IISIntegration",
            &[auth, ("MS-ASPNETCORE-EVENT", "shutdown")],
        )
        .await;
    assert_eq!(res.status, 202);
    assert!(signal.is_triggered());
}

// ---------------------------------------------------------------- path base (§4.4)

#[tokio::test]
async fn path_base_match_case_boundary_and_no_match() {
    let server = Probe::behind(UsePathBaseLayer::new(AppPath::parse("/Base/").unwrap())).await;
    let cases = [
        ("/base/x/y?q=1&r", "/x/y?q=1&r", Some("/base")),
        ("/BASE/x", "/x", Some("/BASE")),
        ("/Base", "/", Some("/Base")),
        ("/base/", "/", Some("/base")),
        ("/base?q", "/?q", Some("/base")),
        ("/baseandsomething", "/baseandsomething", None),
        ("/ba", "/ba", None),
        ("/something/base", "/something/base", None),
        ("/", "/", None),
    ];
    for (target, uri, base) in cases {
        let res = server.send("GET", target, &[]).await;
        assert_eq!(res.status, 200, "{target}: no 404, no redirect");
        let seen = res.json();
        assert_eq!(seen["uri"], uri, "{target}");
        assert_eq!(seen["path_base"], json!(base), "{target}");
        assert_eq!(seen["original_uri"], target, "{target}");
    }
}

// ---------------------------------------------------------------- forwarded headers (§4.5)

#[tokio::test]
async fn forwarded_for_and_proto_as_behind_ancm() {
    let server = Probe::behind(ForwardedHeadersLayer::iis()).await;
    let res = server
        .send(
            "GET",
            "/",
            &[
                ("X-Forwarded-For", "198.51.100.1, 203.0.113.7:51000"),
                ("X-Forwarded-Proto", "https, https"),
            ],
        )
        .await;
    let seen = res.json();
    assert_eq!(seen["client"], "203.0.113.7:51000");
    assert_eq!(seen["scheme"], "https");
    let h = &seen["headers"];
    assert_eq!(strings(&h["x-forwarded-for"]), ["198.51.100.1"]);
    assert_eq!(strings(&h["x-forwarded-proto"]), ["https"]);
    assert_eq!(strings(&h["x-original-proto"]), ["http"]);
    let original_for = strings(&h["x-original-for"]);
    let peer: SocketAddr = original_for[0].parse().unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.1");
    assert_ne!(peer.port(), server.addr().port());
}

#[tokio::test]
async fn without_forwarded_headers_the_app_sees_the_peer_and_http() {
    let server = Probe::behind(ForwardedHeadersLayer::iis()).await;
    let seen = server.seen("/", &[("X-Original-For", "client-sent")]).await;
    let client: SocketAddr = seen["client"].as_str().unwrap().parse().unwrap();
    assert!(client.ip().is_loopback());
    assert_eq!(seen["scheme"], "http");
    // Nothing applied: client-sent X-Original-* survive.
    assert_eq!(strings(&seen["headers"]["x-original-for"]), ["client-sent"]);
}

#[tokio::test]
async fn forward_limit_and_known_networks() {
    // Limit 1 (default): only the rightmost entry.
    let server = Probe::behind(ForwardedHeadersLayer::iis()).await;
    let seen = server
        .seen("/", &[("X-Forwarded-For", "10.0.0.9:1, 198.51.100.2:2")])
        .await;
    assert_eq!(seen["client"], "198.51.100.2:2");
    assert_eq!(strings(&seen["headers"]["x-forwarded-for"]), ["10.0.0.9:1"]);

    // Unlimited with 10/8 known: walks through 10.0.0.9 to the entry before it.
    let options = ForwardedHeadersOptions::iis()
        .forward_limit(None)
        .known_networks([
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
    let server = Probe::behind(ForwardedHeadersLayer::new(options)).await;
    let seen = server
        .seen(
            "/",
            &[
                ("X-Forwarded-For", "192.0.2.1:3, 198.51.100.2:2, 10.0.0.9:1"),
                ("X-Forwarded-Proto", "a, b, c"),
            ],
        )
        .await;
    // 198.51.100.2 is not a known proxy, so its entry is the last one applied.
    assert_eq!(seen["client"], "198.51.100.2:2");
    assert_eq!(seen["scheme"], "b");
    assert_eq!(
        strings(&seen["headers"]["x-forwarded-for"]),
        ["192.0.2.1:3"]
    );
    assert_eq!(strings(&seen["headers"]["x-forwarded-proto"]), ["a"]);

    // Multiple header lines form one list.
    let seen = server
        .seen(
            "/",
            &[
                ("X-Forwarded-For", "192.0.2.1:3"),
                ("X-Forwarded-For", "10.0.0.9:1, 10.0.0.8:1"),
            ],
        )
        .await;
    assert_eq!(seen["client"], "192.0.2.1:3");
    assert!(
        seen["headers"].get("x-forwarded-for").is_none(),
        "all consumed"
    );
}

#[tokio::test]
async fn unknown_peer_applies_nothing() {
    let options = ForwardedHeadersOptions::iis()
        .known_proxies([])
        .known_networks(["10.0.0.0/8".parse().unwrap()]);
    let server = Probe::behind(ForwardedHeadersLayer::new(options)).await;
    let seen = server
        .seen(
            "/",
            &[
                ("X-Forwarded-For", "203.0.113.7:51000"),
                ("X-Forwarded-Proto", "https"),
            ],
        )
        .await;
    assert!(seen["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(seen["scheme"], "http");
    assert_eq!(
        strings(&seen["headers"]["x-forwarded-for"]),
        ["203.0.113.7:51000"]
    );
    assert!(seen["headers"].get("x-original-for").is_none());

    // Trusting every peer applies it.
    let server = Probe::behind(ForwardedHeadersLayer::new(
        ForwardedHeadersOptions::iis().trust_all_peers(),
    ))
    .await;
    let seen = server
        .seen("/", &[("X-Forwarded-For", "203.0.113.7:51000")])
        .await;
    assert_eq!(seen["client"], "203.0.113.7:51000");
}

#[tokio::test]
async fn malformed_values_are_not_applied() {
    let server = Probe::behind(ForwardedHeadersLayer::iis()).await;
    for bad in ["unknown", "1.2.3.4:99999", "[::1", "1.2.3", "_hidden"] {
        let res = server
            .send(
                "GET",
                "/",
                &[("X-Forwarded-For", bad), ("X-Forwarded-Proto", "https")],
            )
            .await;
        // The entry the trusted peer (127.0.0.1) appended is no endpoint: refused, rather
        // than the app seeing its proxy as the client (protocol §8.24).
        assert_eq!(res.status, 400, "{bad}");
        assert!(res.body.is_empty());
    }
    assert_eq!(server.app_calls(), 0);
    for bad_proto in ["ht tp", "a/b", "\"\""] {
        let seen = server.seen("/", &[("X-Forwarded-Proto", bad_proto)]).await;
        assert_eq!(seen["scheme"], "http", "{bad_proto}");
    }
    // Scheme kept as given, not lower-cased.
    let seen = server.seen("/", &[("X-Forwarded-Proto", "HTTPS")]).await;
    assert_eq!(seen["scheme"], "HTTPS");
}

#[tokio::test]
async fn ipv6_peer_and_entries() {
    let listener = TcpListener::bind("[::1]:0").await.expect("IPv6 loopback");
    let server = Probe::on(
        listener,
        ForwardedHeadersLayer::iis(),
        PeerInfo::ConnectInfo,
    );
    let seen = server
        .seen("/", &[("X-Forwarded-For", "[2001:db8::1]:51000")])
        .await;
    assert_eq!(seen["client"], "[2001:db8::1]:51000");
    let original: SocketAddr = strings(&seen["headers"]["x-original-for"])[0]
        .parse()
        .unwrap();
    assert_eq!(original.ip().to_string(), "::1");
    let seen = server
        .seen("/", &[("X-Forwarded-For", "2001:db8::2")])
        .await;
    assert_eq!(seen["client"], "[2001:db8::2]:0");
}

#[tokio::test]
async fn ipv4_mapped_peer_is_checked_as_ipv4() {
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. Dual-stack is asked for:
    // Linux defaults to it, Windows to IPv6 only (IPV6_V6ONLY).
    let socket = Socket::new(Domain::IPV6, Type::STREAM, None).expect("an IPv6 socket");
    socket.set_only_v6(false).expect("clear IPV6_V6ONLY");
    socket
        .bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())
        .expect("bind [::]:0");
    socket.listen(128).expect("listen");
    socket.set_nonblocking(true).expect("non-blocking");
    let listener =
        TcpListener::from_std(std::net::TcpListener::from(socket)).expect("dual-stack listener");
    let port = listener.local_addr().unwrap().port();
    let server = Probe::on(
        listener,
        ForwardedHeadersLayer::iis(),
        PeerInfo::ConnectInfo,
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let seen = client::send(
        addr,
        "GET",
        "/",
        &[("X-Forwarded-For", "203.0.113.7:51000")],
    )
    .await
    .json();
    assert_eq!(seen["client"], "203.0.113.7:51000");
    let original = strings(&seen["headers"]["x-original-for"]);
    assert!(
        original[0].starts_with("[::ffff:127.0.0.1]:"),
        "{original:?}"
    );
    drop(server);
}

#[tokio::test]
async fn symmetry_host_and_prefix() {
    let options = ForwardedHeadersOptions::new(XForwarded::ALL)
        .require_header_symmetry(true)
        .allowed_hosts(["*.example.com"]);
    let server = Probe::behind(ForwardedHeadersLayer::new(options)).await;
    // Mismatched counts: nothing applied.
    let seen = server
        .seen(
            "/",
            &[
                ("X-Forwarded-For", "203.0.113.7:1"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "www.example.com"),
            ],
        )
        .await;
    assert!(seen["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(strings(&seen["headers"]["host"]), ["test.local"]);
    // All four, one entry each: everything applied, originals recorded.
    let seen = server
        .seen(
            "/",
            &[
                ("X-Forwarded-For", "203.0.113.7:1"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "www.example.com"),
                ("X-Forwarded-Prefix", "/pre%20fix"),
            ],
        )
        .await;
    assert_eq!(seen["client"], "203.0.113.7:1");
    assert_eq!(seen["scheme"], "https");
    assert_eq!(seen["path_base"], "/pre fix");
    let h = &seen["headers"];
    assert_eq!(strings(&h["host"]), ["www.example.com"]);
    assert_eq!(strings(&h["x-original-host"]), ["test.local"]);
    assert!(
        h.get("x-original-prefix").is_none(),
        "no previous path base"
    );
    for consumed in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-prefix",
    ] {
        assert!(h.get(consumed).is_none(), "{consumed}");
    }
    // A host outside the allowed list breaks symmetry.
    let seen = server
        .seen(
            "/",
            &[
                ("X-Forwarded-For", "203.0.113.7:1"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "evil.test"),
                ("X-Forwarded-Prefix", "/p"),
            ],
        )
        .await;
    assert_eq!(seen["scheme"], "http");
    assert_eq!(strings(&seen["headers"]["host"]), ["test.local"]);
}

#[tokio::test]
async fn no_socket_peer_fails_closed() {
    // A plain hyper server that does not tell the layer about the peer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Probe::on(listener, ForwardedHeadersLayer::iis(), PeerInfo::Untold);
    let seen = server
        .seen("/", &[("X-Forwarded-For", "203.0.113.7:51000")])
        .await;
    assert_eq!(seen["client"], Value::Null);
    assert_eq!(
        strings(&seen["headers"]["x-forwarded-for"]),
        ["203.0.113.7:51000"]
    );

    // With the peer inserted as `PeerAddr` by the server, the same layer applies it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Probe::on(listener, ForwardedHeadersLayer::iis(), PeerInfo::PeerAddr);
    let seen = server
        .seen("/", &[("X-Forwarded-For", "203.0.113.7:51000")])
        .await;
    assert_eq!(seen["client"], "203.0.113.7:51000");
}

// ---------------------------------------------------------------- client certificate (protocol §4.3 step 5)

#[tokio::test]
async fn client_certificate_valid_invalid_and_ignored() {
    let server = Probe::behind(ForwardClientCertificateLayer::new()).await;
    let seen = server
        .seen("/", &[("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU=")])
        .await;
    assert_eq!(seen["cert"], json!([0x30, 0x03, 0x02, 0x01, 0x05]));
    for bad in [
        &[("MS-ASPNETCORE-CLIENTCERT", "not base64!")][..],
        &[("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU")],
        &[("MS-ASPNETCORE-CLIENTCERT", "")],
        &[],
    ] {
        let res = server.send("GET", "/", bad).await;
        assert_eq!(res.status, 200, "an invalid certificate is not an error");
        assert_eq!(res.json()["cert"], Value::Null, "{bad:?}");
    }

    let server = Probe::behind(ForwardClientCertificateLayer::ignore()).await;
    let seen = server
        .seen("/", &[("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU=")])
        .await;
    assert_eq!(seen["cert"], Value::Null);
    assert!(seen["headers"].get("ms-aspnetcore-clientcert").is_none());

    let layer = IisIntegrationLayer::new(&config("/")).ignore_client_certificate();
    let server = Probe::behind(layer).await;
    let seen = server
        .seen(
            "/",
            &[
                ("MS-ASPNETCORE-TOKEN", TOKEN),
                ("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU="),
            ],
        )
        .await;
    assert_eq!(seen["cert"], Value::Null);
}

// ---------------------------------------------------------------- Windows identity (protocol §4.3 step 6)

#[cfg(not(windows))]
#[tokio::test]
async fn windows_token_parsing() {
    use iis_integration::ForwardWindowsIdentityLayer;
    let server = Probe::behind(ForwardWindowsIdentityLayer::new()).await;
    for (value, handle) in [
        ("2a4", json!(0x2a4)),
        ("2A4", json!(0x2a4)),
        ("FFFFFFFF", json!(u32::MAX)),
        ("0", json!(0)),
        ("0x2a4", Value::Null),
        ("-1", Value::Null),
        ("100000000", Value::Null),
        ("zz", Value::Null),
        ("", Value::Null),
    ] {
        let seen = server
            .seen("/", &[("MS-ASPNETCORE-WINAUTHTOKEN", value)])
            .await;
        assert_eq!(seen["windows_handle"], handle, "{value:?}");
    }
}

#[cfg(not(windows))]
#[tokio::test]
async fn windows_identity_only_when_auth_is_enabled() {
    let headers = [
        ("MS-ASPNETCORE-TOKEN", TOKEN),
        ("MS-ASPNETCORE-WINAUTHTOKEN", "2a4"),
    ];
    let server = Probe::behind(IisIntegrationLayer::new(&config("/"))).await;
    assert_eq!(
        server.seen("/", &headers).await["windows_handle"],
        json!(0x2a4)
    );
    let server = Probe::behind(IisIntegrationLayer::new(
        &config("/").with_auth_enabled(false),
    ))
    .await;
    assert_eq!(
        server.seen("/", &headers).await["windows_handle"],
        Value::Null
    );
}

// ---------------------------------------------------------------- WebSockets flag (protocol §4.3 step 7)

#[tokio::test]
async fn websockets_flag_controls_the_upgrade() {
    let upgrade = [
        ("MS-ASPNETCORE-TOKEN", TOKEN),
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let server = Probe::behind(IisIntegrationLayer::new(&config("/"))).await;
    assert_eq!(server.seen("/", &upgrade).await["upgrade"], true);
    let server = Probe::behind(IisIntegrationLayer::new(
        &config("/").with_websockets_supported(false),
    ))
    .await;
    assert_eq!(server.seen("/", &upgrade).await["upgrade"], false);
}

// ---------------------------------------------------------------- the whole stack (§4.2)

#[tokio::test]
async fn whole_stack_in_ancm_order() {
    let server = Probe::behind(IisIntegrationLayer::new(&config("/app"))).await;
    let res = server
        .send(
            "GET",
            "/APP/items?id=7",
            &[
                ("MS-ASPNETCORE-TOKEN", TOKEN),
                ("X-Forwarded-For", "[2001:db8::1]:51000"),
                ("X-Forwarded-Proto", "https"),
                ("MS-ASPNETCORE-CLIENTCERT", "MAMCAQU="),
            ],
        )
        .await;
    assert_eq!(res.status, 200);
    let seen = res.json();
    assert_eq!(seen["uri"], "/items?id=7");
    assert_eq!(seen["path_base"], "/APP");
    assert_eq!(seen["original_uri"], "/APP/items?id=7");
    assert_eq!(seen["client"], "[2001:db8::1]:51000");
    assert_eq!(seen["scheme"], "https");
    assert_eq!(seen["cert"], json!([0x30, 0x03, 0x02, 0x01, 0x05]));
    assert_eq!(strings(&seen["headers"]["x-original-proto"]), ["http"]);
    assert!(seen["headers"].get("ms-aspnetcore-token").is_none());
    // X-Forwarded-Prefix/Host are not applied behind ANCM.
    let seen = server
        .seen(
            "/app",
            &[
                ("MS-ASPNETCORE-TOKEN", TOKEN),
                ("X-Forwarded-Host", "evil.test"),
                ("X-Forwarded-Prefix", "/evil"),
            ],
        )
        .await;
    assert_eq!(seen["uri"], "/");
    assert_eq!(seen["path_base"], "/app");
    assert_eq!(strings(&seen["headers"]["host"]), ["test.local"]);
}
