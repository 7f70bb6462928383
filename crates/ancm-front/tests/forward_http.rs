//! The forwarder over real loopback sockets: request line and Host, response headers and
//! reason phrases, failures before and after the response head, timeouts, pooling, limits,
//! h2c, WebSocket.
//!
//! One file, over 500 lines, for the forwarder's whole exchange: its tests share the gateways
//! below and the backends of test-support.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ancm_front::backend::BackendTarget;
use ancm_front::conn::ConnectionInfo;
use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::limits::{LimitsLayer, RequestLimits};
use ancm_front::{AddExtension, AddExtensionLayer, AncmConfig, AncmLayer, Body, RequestTimeout};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Request, Response as HttpResponse, StatusCode, Version};
use http_body_util::{BodyExt as _, Full, StreamBody};
use test_support::backends::{hyper_backend, raw_backend};
use test_support::body::count_body;
use test_support::client::{self, Response, connect, raw_exchange, try_request};
use test_support::server::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tower::{Layer as _, ServiceBuilder};

/// A gateway: limits + forwarder, on a real server (HTTP/1.1 and h2c, upgrades on) as a real
/// gateway serves them. Its address and the forwarder (to look at the pool).
async fn gateway(config: ForwardConfig, limits: RequestLimits) -> (SocketAddr, Forwarder) {
    let forwarder = Forwarder::new(config);
    let server = TestServer::start(LimitsLayer::new(limits).layer(forwarder.clone())).await;
    (server.detach(), forwarder)
}

/// A gateway in front of `backend` with `requestTimeout` `timeout` and default limits.
async fn gateway_to(backend: SocketAddr, timeout: Duration) -> SocketAddr {
    let config = ForwardConfig::default()
        .default_target(backend)
        .request_timeout(RequestTimeout::After(timeout));
    gateway(config, RequestLimits::default()).await.0
}

/// The whole front as a gateway composes it (see `examples/custom_gateway.rs`): connection
/// facts → fixed backend → limits → ANCM bundle → forwarder.
async fn ancm_gateway(backend: SocketAddr, token: ancm_protocol::PairingToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let addr = listener.local_addr().expect("gateway addr");
    let stack = ServiceBuilder::new()
        .layer(AddExtensionLayer::new(BackendTarget::new(
            backend,
            Some(token),
        )))
        .layer(LimitsLayer::new(RequestLimits::default()))
        .layer(AncmLayer::new(AncmConfig::default()))
        .service(Forwarder::new(ForwardConfig::default()));
    TestServer::on(listener, move |peer| {
        AddExtension::new(stack.clone(), ConnectionInfo::plain(peer, addr))
    })
    .detach()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    client::get_request("app.example", path, &[])
}

/// A backend that answers with what it saw: `METHOD URI VERSION HOST` (HOST from the Host
/// header, or `:authority` on HTTP/2, as Kestrel does).
async fn echo_backend() -> SocketAddr {
    hyper_backend(|req: Request<hyper::body::Incoming>| async move {
        let host = req
            .headers()
            .get("host")
            .map(|h| h.to_str().unwrap_or("?").to_owned())
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        let text = format!(
            "{} {} {:?} {}",
            req.method(),
            req.uri(),
            req.version(),
            host.as_deref().unwrap_or("-")
        );
        HttpResponse::new(Body::from(text))
    })
    .await
}

#[tokio::test]
async fn method_path_query_and_host_are_preserved() {
    let backend = echo_backend().await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let (out, _) = raw_exchange(
        gw,
        b"PATCH /a/b%20c/%3F?x=1&y=%3F&z HTTP/1.1\r\nHost: shop.example:8443\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.ends_with("PATCH /a/b%20c/%3F?x=1&y=%3F&z HTTP/1.1 shop.example:8443"),
        "{text}"
    );
    // Nothing invented on the way back.
    let lower = text.to_ascii_lowercase();
    assert!(!lower.contains("\r\nserver:"), "{text}");
    assert!(!lower.contains("\r\nvia:"), "{text}");
}

#[tokio::test]
async fn absolute_form_target_goes_out_in_origin_form() {
    let backend = echo_backend().await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let (out, _) = raw_exchange(
        gw,
        b"GET http://shop.example/p?q=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.ends_with("GET /p?q=1 HTTP/1.1 shop.example"), "{text}");
}

#[tokio::test]
async fn http2_client_host_comes_from_authority() {
    let backend = echo_backend().await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let stream = TcpStream::connect(gw).await.expect("connect");
    let (mut tx, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = Request::get("http://app.example:1234/p/q?r=s")
        .version(Version::HTTP_2)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = tx.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"GET /p/q?r=s HTTP/1.1 app.example:1234");
}

#[tokio::test]
async fn h2c_to_the_backend() {
    let backend = echo_backend().await;
    let config = ForwardConfig::default().default_target(backend).http2(true);
    let (gw, _) = gateway(config, RequestLimits::default()).await;
    for _ in 0..3 {
        let res = try_request(gw, get("/over/h2?x=1"))
            .await
            .expect("response");
        assert_eq!(res.status, 200);
        // The backend sees HTTP/2 with the client's host as :authority.
        assert_eq!(
            &res.body[..],
            b"GET http://app.example/over/h2?x=1 HTTP/2.0 app.example"
        );
    }
}

#[tokio::test]
async fn repeated_headers_all_reach_the_client_and_redirects_are_not_followed() {
    let backend = raw_backend(|mut s: TcpStream, _head| async move {
        let _ = s
            .write_all(
                b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2; Path=/\r\n\
                  X-Multi: one\r\nSet-Cookie: c=3\r\nX-Multi: two\r\nContent-Length: 2\r\n\r\nok",
            )
            .await;
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let res = try_request(gw, get("/")).await.expect("response");
    assert_eq!(res.status, StatusCode::FOUND);
    assert_eq!(res.headers["location"], "/elsewhere");
    let cookies: Vec<_> = res.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2; Path=/", "c=3"]);
    let multi: Vec<_> = res.headers.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["one", "two"]);
    assert_eq!(&res.body[..], b"ok");
}

async fn status_line_through_gateway(backend_status_line: &'static str) -> String {
    let backend = raw_backend(move |mut s: TcpStream, _head| async move {
        let resp = format!("{backend_status_line}\r\nContent-Length: 0\r\n\r\n");
        let _ = s.write_all(resp.as_bytes()).await;
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let (out, _) = raw_exchange(
        gw,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn reason_phrases_are_kept() {
    assert_eq!(
        status_line_through_gateway("HTTP/1.1 499 Client Closed").await,
        "HTTP/1.1 499 Client Closed"
    );
    assert_eq!(
        status_line_through_gateway("HTTP/1.1 200 Fine").await,
        "HTTP/1.1 200 Fine"
    );
    assert_eq!(
        status_line_through_gateway("HTTP/1.1 404 Not Found").await,
        "HTTP/1.1 404 Not Found"
    );
}

fn assert_502_3(res: &Response) {
    assert_eq!(res.status, StatusCode::BAD_GATEWAY);
    let html = String::from_utf8_lossy(&res.body);
    assert!(html.contains("HTTP Error 502.3 - Bad Gateway"), "{html}");
}

#[tokio::test]
async fn connect_refused_is_502_3() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = listener.local_addr().expect("addr");
    drop(listener);
    let gw = gateway_to(dead, Duration::from_secs(5)).await;
    let res = try_request(gw, get("/")).await.expect("response");
    assert_502_3(&res);
}

#[tokio::test]
async fn no_target_is_502_3() {
    let (gw, _) = gateway(ForwardConfig::default(), RequestLimits::default()).await;
    let res = try_request(gw, get("/")).await.expect("response");
    assert_502_3(&res);
}

#[tokio::test]
async fn invalid_backend_response_is_502_3() {
    let backend = raw_backend(|mut s: TcpStream, _head| async move {
        let _ = s.write_all(b"this is not http\r\n\r\n").await;
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let res = try_request(gw, get("/")).await.expect("response");
    assert_502_3(&res);
}

#[tokio::test]
async fn slow_response_head_is_502_3() {
    let backend = raw_backend(|mut s: TcpStream, _head| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await;
    })
    .await;
    let gw = gateway_to(backend, Duration::from_millis(300)).await;
    let res = try_request(gw, get("/")).await.expect("response");
    assert_502_3(&res);
}

#[tokio::test]
async fn slow_but_steady_body_is_fine() {
    // Twelve chunks 100 ms apart: 1.2 s in total, four times the 300 ms timeout, but no gap
    // reaches it (protocol §1.7: per-phase, not a deadline).
    let backend = hyper_backend(|_req| async move {
        let chunks = futures_util::stream::unfold(0u32, |i| async move {
            if i == 12 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(format!(
                    "{i};"
                )))),
                i + 1,
            ))
        });
        HttpResponse::new(Body::new(StreamBody::new(chunks)))
    })
    .await;
    let gw = gateway_to(backend, Duration::from_millis(300)).await;
    let res = try_request(gw, get("/")).await.expect("complete response");
    assert_eq!(res.status, 200);
    assert_eq!(&res.body[..], b"0;1;2;3;4;5;6;7;8;9;10;11;");
}

#[tokio::test]
async fn body_gap_longer_than_timeout_aborts_the_client_response() {
    let backend = raw_backend(|mut s: TcpStream, _head| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let _ = s.write_all(b"world").await;
    })
    .await;
    let gw = gateway_to(backend, Duration::from_millis(300)).await;
    let err = try_request(gw, get("/"))
        .await
        .expect_err("the body must fail, not complete");
    assert!(
        err.is_incomplete_message()
            || err.is_closed()
            || err.is_body_write_aborted()
            || err.to_string().contains("body"),
        "{err:?}"
    );
}

#[tokio::test]
async fn backend_closing_mid_content_length_body_resets_the_client() {
    let backend = raw_backend(|mut s: TcpStream, _head| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            .await;
        let _ = s.write_all(&[b'a'; 100]).await;
        // Then the backend dies: the socket closes with 900 bytes owed.
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    // Raw client: the head may arrive, but never all 1000 bytes, and the connection ends.
    let (out, _) = raw_exchange(gw, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let text = String::from_utf8_lossy(&out);
    let body_len = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    assert!(
        body_len < 1000,
        "client must not get a complete body: {body_len}"
    );
    // hyper client: the body is an error, not a short success.
    let err = try_request(gw, get("/"))
        .await
        .expect_err("truncated body must be an error");
    assert!(
        err.is_incomplete_message()
            || err.to_string().contains("body")
            || err.to_string().contains("closed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn backend_closing_mid_chunked_body_resets_the_client() {
    let backend = raw_backend(|mut s: TcpStream, _head| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            .await;
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let (out, _) = raw_exchange(gw, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no terminating chunk may be invented: {text:?}"
    );
    assert!(try_request(gw, get("/")).await.is_err());
}

#[tokio::test]
async fn client_gone_drops_the_backend_exchange() {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let closed_tx = Arc::new(std::sync::Mutex::new(Some(closed_tx)));
    let backend = raw_backend(move |mut s: TcpStream, _head| {
        let closed_tx = closed_tx.clone();
        async move {
            // Never answer; wait for the forwarder to give up on this connection.
            let mut buf = [0u8; 16];
            if let Ok(0) | Err(_) = s.read(&mut buf).await
                && let Some(tx) = closed_tx.lock().ok().and_then(|mut t| t.take())
            {
                let _ = tx.send(());
            }
        }
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(60)).await;
    let mut client = TcpStream::connect(gw).await.expect("connect");
    client
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("backend connection closed after the client left")
        .expect("signal");
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = listener.local_addr().expect("addr");
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(HttpResponse::new(Full::new(
                        Bytes::from_static(b"hi"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let config = ForwardConfig::default().default_target(backend);
    let (gw, forwarder) = gateway(config, RequestLimits::default()).await;
    let mut tx = connect::<Full<Bytes>>(gw).await;
    for _ in 0..5 {
        tx.ready().await.expect("ready");
        let resp = tx.send_request(get("/")).await.expect("response");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"hi");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one backend connection for five requests"
    );
    assert_eq!(forwarder.idle_connections(backend), 1);
}

#[tokio::test]
async fn request_bodies_stream_with_their_framing() {
    // The backend reports the framing it saw and the body length.
    let backend = hyper_backend(|req: Request<hyper::body::Incoming>| async move {
        let cl = req
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        let te = req
            .headers()
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        let n = count_body(req.into_body()).await.unwrap_or(u64::MAX);
        HttpResponse::new(Body::from(format!("cl={cl:?} te={te:?} n={n}")))
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let (out, _) = raw_exchange(
        gw,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    assert!(String::from_utf8_lossy(&out).ends_with("cl=Some(\"5\") te=None n=5"));
    let (out, _) = raw_exchange(
        gw,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out).ends_with("cl=None te=Some(\"chunked\") n=7"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test]
async fn limits_answer_414_431_413() {
    let backend = hyper_backend(|req: Request<hyper::body::Incoming>| async move {
        let n = count_body(req.into_body()).await.unwrap_or(u64::MAX);
        HttpResponse::new(Body::from(format!("n={n}")))
    })
    .await;
    let config = ForwardConfig::default().default_target(backend);
    let limits = RequestLimits::default()
        .max_uri_length(100)
        .max_header_bytes(1000)
        .max_request_body(Some(10));
    let (gw, _) = gateway(config, limits).await;

    let long = format!("/{}", "a".repeat(200));
    let res = try_request(gw, get(&long)).await.expect("response");
    assert_eq!(res.status, StatusCode::URI_TOO_LONG);

    let req = Request::get("/")
        .header("host", "x")
        .header("x-big", "b".repeat(2000))
        .body(Full::new(Bytes::new()))
        .expect("req");
    let res = try_request(gw, req).await.expect("response");
    assert_eq!(res.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let req = Request::post("/")
        .header("host", "x")
        .body(Full::new(Bytes::from_static(b"0123456789ABC")))
        .expect("req");
    let res = try_request(gw, req).await.expect("response");
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Chunked (no declared length): goes over the limit mid-stream, before the backend
    // answered → 413 as well.
    let chunks = futures_util::stream::iter(["01234", "56789", "ABCDE"].map(|c| {
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(c.as_bytes())))
    }));
    let req = Request::post("/")
        .header("host", "x")
        .body(StreamBody::new(chunks))
        .expect("req");
    let res = try_request(gw, req).await.expect("response");
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Within every limit → forwarded.
    let req = Request::post("/ok")
        .header("host", "x")
        .body(Full::new(Bytes::from_static(b"0123456789")))
        .expect("req");
    let res = try_request(gw, req).await.expect("response");
    assert_eq!(res.status, 200);
    assert_eq!(&res.body[..], b"n=10");
}

#[tokio::test]
async fn websocket_echo_round_trip() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                    } else if msg.is_close() {
                        return;
                    }
                }
            });
        }
    });
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{gw}/chat"))
        .await
        .expect("websocket handshake through the gateway");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    for text in ["hello", "world", &"x".repeat(100_000)] {
        ws.send(Message::text(text)).await.expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo in time");
        assert_eq!(
            echoed
                .expect("message")
                .expect("ok")
                .into_text()
                .expect("text")
                .as_str(),
            text
        );
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    let echoed = ws.next().await.expect("message").expect("ok");
    assert_eq!(echoed.into_data().as_ref(), &[0u8, 1, 2, 255]);
    ws.close(None).await.expect("close");
}

/// A WebSocket echo backend (tokio-tungstenite) that also requires the pairing token.
// tungstenite's handshake callback type fixes the error type.
#[allow(clippy::result_large_err)]
async fn websocket_backend(token: Option<String>) -> SocketAddr {
    use tokio_tungstenite::tungstenite::handshake::server::{
        ErrorResponse, Request as WsRequest, Response as WsResponse,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let token = token.clone();
            tokio::spawn(async move {
                let check =
                    move |req: &WsRequest, resp: WsResponse| -> Result<WsResponse, ErrorResponse> {
                        let seen = req
                            .headers()
                            .get("ms-aspnetcore-token")
                            .and_then(|v| v.to_str().ok());
                        if token.is_some() && seen != token.as_deref() {
                            let mut err = ErrorResponse::new(Some("bad token".into()));
                            *err.status_mut() = StatusCode::BAD_REQUEST;
                            return Err(err);
                        }
                        Ok(resp)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                    } else if msg.is_close() {
                        return;
                    }
                }
            });
        }
    });
    backend
}

#[tokio::test]
async fn websocket_through_the_whole_ancm_stack() {
    let token = ancm_protocol::PairingToken::generate();
    let backend = websocket_backend(Some(token.expose_secret().to_owned())).await;
    let gw = ancm_gateway(backend, token).await;
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{gw}/hub"))
        .await
        .expect("websocket handshake through hop-by-hop, token and forwarder");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("ping")).await.expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("in time");
    assert_eq!(
        echoed
            .expect("message")
            .expect("ok")
            .into_text()
            .expect("text")
            .as_str(),
        "ping"
    );
    ws.close(None).await.expect("close");
}

#[tokio::test]
async fn whole_stack_forwards_client_facts_and_token() {
    let token = ancm_protocol::PairingToken::generate();
    let expected = token.expose_secret().to_owned();
    let backend = hyper_backend(move |req: Request<hyper::body::Incoming>| {
        let expected = expected.clone();
        async move {
            let h = req.headers();
            let ok = h.get("ms-aspnetcore-token").and_then(|v| v.to_str().ok())
                == Some(expected.as_str());
            let text = format!(
                "token_ok={ok} xff={:?} proto={:?} host={:?}",
                h.get("x-forwarded-for"),
                h.get("x-forwarded-proto"),
                h.get("host")
            );
            HttpResponse::new(Body::from(text))
        }
    })
    .await;
    let gw = ancm_gateway(backend, token).await;
    let mut stream = TcpStream::connect(gw).await.expect("connect");
    let port = stream.local_addr().expect("addr").port();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: site.example\r\nMS-ASPNETCORE-TOKEN: forged\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).await.expect("read");
    let expected = format!(
        "token_ok=true xff=Some(\"127.0.0.1:{port}\") proto=Some(\"http\") host=Some(\"site.example\")"
    );
    assert!(out.ends_with(&expected), "{out}");
}

#[tokio::test]
async fn client_gone_mid_body_closes_the_backend_connection() {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let closed_tx = Arc::new(std::sync::Mutex::new(Some(closed_tx)));
    let backend = raw_backend(move |mut s: TcpStream, _head| {
        let closed_tx = closed_tx.clone();
        async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            // An endless body, one chunk every 20 ms, until writing fails.
            loop {
                if s.write_all(b"4\r\ndata\r\n").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if let Some(tx) = closed_tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(());
            }
        }
    })
    .await;
    let config = ForwardConfig::default().default_target(backend);
    let (gw, forwarder) = gateway(config, RequestLimits::default()).await;
    let mut client = TcpStream::connect(gw).await.expect("connect");
    client
        .write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = client.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("backend connection closed after the client left mid-body")
        .expect("signal");
    assert_eq!(
        forwarder.idle_connections(backend),
        0,
        "never pooled mid-body"
    );
}

#[tokio::test]
async fn response_trailers_pass_to_a_client_that_accepts_them() {
    let backend = hyper_backend(|_req| async move {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", http::HeaderValue::from_static("abc123"));
        let frames = futures_util::stream::iter([
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(
                b"payload",
            ))),
            Ok(http_body::Frame::trailers(trailers)),
        ]);
        let mut resp = HttpResponse::new(Body::new(StreamBody::new(frames)));
        resp.headers_mut()
            .insert("trailer", http::HeaderValue::from_static("x-checksum"));
        resp
    })
    .await;
    let gw = gateway_to(backend, Duration::from_secs(5)).await;
    let (out, _) = raw_exchange(
        gw,
        b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(text.contains("payload"), "{text}");
    assert!(
        text.ends_with("0\r\nx-checksum: abc123\r\n\r\n"),
        "{text:?}"
    );
}
