//! Shared parts of the layer tests: an echo backend, a front on a real socket (the ANCM
//! bundle in front of a minimal hyper-client forwarder), and a client.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use ancm_front::backend::BackendTarget;
use ancm_front::conn::ConnectionInfo;
use ancm_front::{AddExtensionLayer, AncmConfig, AncmLayer, Body};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer as _, ServiceExt as _};

/// What the echo backend saw.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Every header line, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// Every line of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single line of `name`, panicking if there are several.
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} has {} lines: {all:?}", all.len());
        all.first().copied()
    }

    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }
}

/// A hyper HTTP/1.1 backend that answers with what it saw: `METHOD PATH`, then one
/// `name: value` line per header, an empty line, then the body. `/hop-response` also sends
/// hop-by-hop response headers.
pub async fn echo_backend(bind: &str) -> SocketAddr {
    let listener = TcpListener::bind(bind).await.expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let mut text = format!("{} {}\n", parts.method, parts.uri);
                    for (name, value) in &parts.headers {
                        text.push_str(name.as_str());
                        text.push_str(": ");
                        text.push_str(&String::from_utf8_lossy(value.as_bytes()));
                        text.push('\n');
                    }
                    text.push('\n');
                    let mut out = text.into_bytes();
                    out.extend_from_slice(&body);
                    let mut resp = Response::new(Full::new(Bytes::from(out)));
                    if parts.uri.path() == "/hop-response" {
                        let h = resp.headers_mut();
                        h.append("connection", "x-hop-resp".parse().expect("value"));
                        h.append("x-hop-resp", "1".parse().expect("value"));
                        h.append("keep-alive", "timeout=5".parse().expect("value"));
                        h.append("proxy-connection", "keep-alive".parse().expect("value"));
                        h.append("upgrade", "foo".parse().expect("value"));
                        h.append("set-cookie", "a=1".parse().expect("value"));
                        h.append("set-cookie", "b=2".parse().expect("value"));
                        h.append("x-end", "kept".parse().expect("value"));
                    }
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Parse the echo backend's body.
pub fn parse_seen(body: &[u8]) -> Seen {
    let split = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("echo body has a blank line");
    let head = std::str::from_utf8(&body[..split]).expect("utf-8 head");
    let mut lines = head.lines();
    let first = lines.next().expect("request line");
    let (method, path) = first.split_once(' ').expect("METHOD PATH");
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap_or((l.trim_end_matches(':'), ""));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Seen {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: body[split + 2..].to_vec(),
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The smallest forwarder: the request, as the layers left it, to the request's
/// `BackendTarget` with hyper's pooled client. The real one is `ancm_front::forward`.
#[derive(Clone)]
pub struct MiniForwarder {
    client: Client<HttpConnector, Incoming>,
}

impl MiniForwarder {
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl tower::Service<Request<Incoming>> for MiniForwarder {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let Some(target) = req.extensions().get::<BackendTarget>().cloned() else {
                return Ok(status(StatusCode::BAD_GATEWAY));
            };
            let pq = req
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned();
            let Ok(uri) = format!("http://{}{}", target.addr, pq).parse::<Uri>() else {
                return Ok(status(StatusCode::BAD_GATEWAY));
            };
            *req.uri_mut() = uri;
            match client.request(req).await {
                Ok(resp) => Ok(resp.map(Body::new)),
                Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
            }
        })
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

/// Which connection facts the front attaches.
#[derive(Clone)]
pub enum Facts {
    /// From the accepted TCP stream.
    Tcp,
    /// A fixed mock (TLS tests).
    Mock(ConnectionInfo),
}

/// A front on `bind`: connection facts → fixed backend → the ANCM bundle → `MiniForwarder`.
pub async fn front(
    bind: &str,
    target: BackendTarget,
    config: AncmConfig,
    facts: Facts,
) -> SocketAddr {
    front_with(bind, target, AncmLayer::new(config), facts).await
}

/// [`front`] with a prepared bundle (e.g. with a fallback).
pub async fn front_with<F>(
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
    serve(bind, target, facts, bundle.layer(MiniForwarder::new())).await
}

/// A front on `bind` serving `svc`, with the connection facts and `target` attached to each
/// request as the accept loop and a backend selector would.
pub async fn serve<S>(bind: &str, target: BackendTarget, facts: Facts, svc: S) -> SocketAddr
where
    S: tower::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = TcpListener::bind(bind).await.expect("bind front");
    let addr = listener.local_addr().expect("front addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let info = match &facts {
                Facts::Tcp => ConnectionInfo::from_tcp(&stream).expect("tcp facts"),
                Facts::Mock(info) => info.clone(),
            };
            let svc = AddExtensionLayer::new(info)
                .layer(AddExtensionLayer::new(target.clone()).layer(svc.clone()));
            tokio::spawn(async move {
                let hyper_svc = service_fn(move |req: Request<Incoming>| svc.clone().oneshot(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper_svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// Send one request on a fresh connection; the client's local address and the response.
pub async fn send(
    front: SocketAddr,
    req: Request<Full<Bytes>>,
) -> (SocketAddr, StatusCode, HeaderMap, Bytes) {
    let stream = TcpStream::connect(front).await.expect("connect front");
    let local = stream.local_addr().expect("client addr");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (local, parts.status, parts.headers, body)
}

/// A GET with these header lines (repeated names give repeated lines).
pub fn get(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::get(path).header("host", "example.test");
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Full::new(Bytes::new())).expect("request")
}
